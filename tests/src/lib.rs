//! The simulated platform and the bus-tier harness.
