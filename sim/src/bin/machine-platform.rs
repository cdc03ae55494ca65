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
//! can read the BootProgress acpi-state-daemon publishes. With `--os-status` the same
//! connection also owns `xyz.openbmc_project.State.Host0` and serves a writable
//! `xyz.openbmc_project.State.OperatingSystem.Status` there, `Inactive` until written: the host
//! object of a phosphor-state-manager platform, where nothing but acpigate (`write_os_status`)
//! writes it.
//!
//! `--sel-logger` runs the stand-in for phosphor-sel-logger instead (`acpigate_sim::sel_logger`,
//! upstream's exact `IpmiSelAdd` signature): one line on stderr per accepted call, which the
//! test reads from the journal.
//!
//! `--entity-manager FILE` runs the stand-in for entity-manager instead
//! (`acpigate_sim::inventory::EntityManager`): it owns `xyz.openbmc_project.EntityManager` and
//! publishes the board configuration FILE as entity-manager does (records, sub-objects and
//! value types).
//!
//! usage: machine-platform [--power on|off] [--os-status]   (initial chassis power, default off)
//!        machine-platform --sel-logger
//!        machine-platform --entity-manager FILE

use std::sync::{Arc, Mutex};

use acpigate_sim::platform::{BootProgressIface, ChassisIface, OsWritableIface, epoch_ms};
use acpigate_sim::sel_logger::SelLogger;
use anyhow::{Context, Result, bail};
use openbmc_vocab::names::{bus, path};
use openbmc_vocab::state::ChassisPowerState;

#[derive(Debug, PartialEq, Eq)]
enum Mode {
    Platform {
        power: ChassisPowerState,
        os_status: bool,
    },
    SelLogger,
    EntityManager(std::path::PathBuf),
}

const USAGE: &str = "usage: machine-platform [--power on|off] [--os-status] | machine-platform \
                     --sel-logger | machine-platform --entity-manager FILE";

fn parse_args(args: &[String]) -> Result<Mode> {
    if let [only] = args
        && only == "--sel-logger"
    {
        return Ok(Mode::SelLogger);
    }
    if let [flag, file] = args
        && flag == "--entity-manager"
    {
        return Ok(Mode::EntityManager(file.into()));
    }
    let (mut power, mut os_status) = (ChassisPowerState::Off, false);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--power" => {
                power = match it.next().map(String::as_str) {
                    Some("on") => ChassisPowerState::On,
                    Some("off") => ChassisPowerState::Off,
                    Some(other) => bail!("--power takes on or off, not `{other}`"),
                    None => bail!("--power takes on or off"),
                }
            }
            "--os-status" => os_status = true,
            _ => bail!("{USAGE}"),
        }
    }
    Ok(Mode::Platform { power, os_status })
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = parse_args(&args)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    rt.block_on(async move {
        match mode {
            Mode::SelLogger => serve_sel_logger().await,
            Mode::EntityManager(file) => serve_entity_manager(&file).await,
            Mode::Platform { power, os_status } => serve_platform(power, os_status).await,
        }
    })
}

async fn serve_platform(power: ChassisPowerState, os_status: bool) -> Result<()> {
    let mut b = zbus::connection::Builder::system()
        .name(bus::STATE_CHASSIS)
        .name(bus::STATE_HOST)
        .serve_at(path::CHASSIS0, ChassisIface::new(power, epoch_ms()))
        .serve_at(
            path::HOST0,
            BootProgressIface::new(Arc::new(Mutex::new(Vec::new()))),
        );
    if os_status {
        b = b.name(bus::STATE_HOST0).serve_at(
            path::HOST0,
            OsWritableIface::new(Arc::new(Mutex::new(Vec::new()))),
        );
    }
    let _conn = b
        .build()
        .await
        .context("connecting to the system bus and owning the chassis name")?;
    eprintln!(
        "machine-platform: serving {} (power {power}){}",
        path::CHASSIS0,
        if os_status {
            "; a writable OperatingSystemState on host0"
        } else {
            ""
        }
    );
    std::future::pending().await
}

async fn serve_sel_logger() -> Result<()> {
    let _sel = SelLogger::start_on_system_bus()
        .await
        .context("owning xyz.openbmc_project.Logging.IPMI on the system bus")?;
    eprintln!(
        "machine-platform: serving {} (the sel-logger stand-in)",
        path::LOGGING_IPMI
    );
    std::future::pending().await
}

async fn serve_entity_manager(file: &std::path::Path) -> Result<()> {
    let text = std::fs::read_to_string(file).with_context(|| format!("{}", file.display()))?;
    let board: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{}", file.display()))?;
    let em = acpigate_sim::inventory::EntityManager::start_on_system_bus()
        .await
        .context("owning xyz.openbmc_project.EntityManager on the system bus")?;
    let at = em.publish_board(&board).await?;
    eprintln!(
        "machine-platform: serving {} as entity-manager, board {at}",
        file.display()
    );
    std::future::pending().await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn modes_from_args() {
        let platform = |power, os_status| Some(Mode::Platform { power, os_status });
        assert_eq!(
            parse_args(&args(&[])).ok(),
            platform(ChassisPowerState::Off, false)
        );
        assert_eq!(
            parse_args(&args(&["--power", "on"])).ok(),
            platform(ChassisPowerState::On, false)
        );
        assert_eq!(
            parse_args(&args(&["--power", "off", "--os-status"])).ok(),
            platform(ChassisPowerState::Off, true)
        );
        assert_eq!(
            parse_args(&args(&["--sel-logger"])).ok(),
            Some(Mode::SelLogger)
        );
        assert!(parse_args(&args(&["--power", "maybe"])).is_err());
        assert!(parse_args(&args(&["--power"])).is_err());
        assert!(parse_args(&args(&["--sel-logger", "--os-status"])).is_err());
        assert!(parse_args(&args(&["--bogus"])).is_err());
        assert_eq!(
            parse_args(&args(&["--entity-manager", "/run/b.json"])).ok(),
            Some(Mode::EntityManager("/run/b.json".into()))
        );
        assert!(parse_args(&args(&["--entity-manager"])).is_err());
    }
}
