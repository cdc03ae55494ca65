//! acpi-state-daemon (being written; see issue 2).

/// Entry point for the multi-call binary.
pub fn main_with_args(_args: Vec<String>) -> anyhow::Result<()> {
    anyhow::bail!("acpi-state-daemon is not built yet")
}
