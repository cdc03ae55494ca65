//! The simulated chassis power service of the machine tier (tests/machine/): runs inside the
//! test VM as a systemd service on the real system bus and stands in for the platform's power
//! control (x86-power-control or phosphor-chassis-state-manager), the only hardware-facing
//! input acpi-state-daemon needs there.
//!
//! It owns `xyz.openbmc_project.State.Chassis` and serves `CurrentPowerState` and
//! `RequestedPowerTransition` at `/xyz/openbmc_project/state/chassis0`. A write of
//! `RequestedPowerTransition` (as `busctl set-property` or obmcutil do) moves
//! `CurrentPowerState` at once and emits PropertiesChanged, as the real services do once
//! power-good follows; `PowerCycle` goes Off and then On. The objects are the bus tier's
//! (`acpigate_sim::platform`); only the connection differs: the VM's real system bus.
//!
//! It also owns `xyz.openbmc_project.State.Host` with only `xyz.openbmc_project.State.Boot.Progress`
//! at `/xyz/openbmc_project/state/host0` (writable, as phosphor-state-manager's), so the test
//! can read the BootProgress acpi-state-daemon publishes.
//!
//! usage: machine-platform [--power on|off]   (initial chassis power, default off)

use std::sync::{Arc, Mutex};

use acpigate_sim::platform::{BootProgressIface, ChassisIface, epoch_ms};
use anyhow::{Context, Result, bail};
use openbmc_vocab::names::{bus, path};
use openbmc_vocab::state::ChassisPowerState;

fn parse_args(args: &[String]) -> Result<ChassisPowerState> {
    match args {
        [] => Ok(ChassisPowerState::Off),
        [flag, v] if flag == "--power" => match v.as_str() {
            "on" => Ok(ChassisPowerState::On),
            "off" => Ok(ChassisPowerState::Off),
            other => bail!("--power takes on or off, not `{other}`"),
        },
        _ => bail!("usage: machine-platform [--power on|off]"),
    }
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let current = parse_args(&args)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    rt.block_on(async move {
        let _conn = zbus::connection::Builder::system()
            .name(bus::STATE_CHASSIS)
            .name(bus::STATE_HOST)
            .serve_at(path::CHASSIS0, ChassisIface::new(current, epoch_ms()))
            .serve_at(
                path::HOST0,
                BootProgressIface::new(Arc::new(Mutex::new(Vec::new()))),
            )
            .build()
            .await
            .context("connecting to the system bus and owning the chassis name")?;
        eprintln!(
            "machine-platform: serving {} (power {current})",
            path::CHASSIS0
        );
        std::future::pending::<Result<()>>().await
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn initial_power_from_args() {
        assert_eq!(parse_args(&args(&[])).ok(), Some(ChassisPowerState::Off));
        assert_eq!(
            parse_args(&args(&["--power", "on"])).ok(),
            Some(ChassisPowerState::On)
        );
        assert!(parse_args(&args(&["--power", "maybe"])).is_err());
        assert!(parse_args(&args(&["--bogus"])).is_err());
    }
}
