//! sensor-gate: DIMM temperature sensors over SMBus, gated by the host phase (issue 3).
