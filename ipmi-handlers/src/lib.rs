//! ipmi-handlers: the IPMI command server behind `xyz.openbmc_project.Ipmi.Server`.
//!
//! [`core`] decides every command without I/O; the edge modules serve `execute` on D-Bus,
//! keep the platform view fresh, carry out effects and persist the SEL, the sensor number map
//! and the GUIDs.

pub mod core;
