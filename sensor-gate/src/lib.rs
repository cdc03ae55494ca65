//! sensor-gate: DIMM temperature sensors over SMBus, gated by the host phase (issue 3).

pub mod core;
pub mod decode;
pub mod smbus;

/// Entry point for the multi-call binary.
pub fn main_with_args(_args: Vec<String>) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
