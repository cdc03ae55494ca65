//! Following the platform's power inputs and turning them into core inputs.
//!
//! Each input is optional: a platform without one never reports it; a service that starts late
//! reports when it starts; a service that leaves reports `None`.

use std::collections::HashMap;

use daemon_kit::watch::{self, Target, Update};
use openbmc_vocab::names::{bus, iface, path, prop};
use zbus::{Connection, OwnedVariant};

use super::Feeder;
use crate::core::Input;

const CHASSIS: Target = Target {
    bus: bus::STATE_CHASSIS,
    path: path::CHASSIS0,
    iface: iface::STATE_CHASSIS,
};
const HOST: Target = Target {
    bus: bus::STATE_HOST,
    path: path::HOST0,
    iface: iface::STATE_HOST,
};
/// POST_COMPLETE: x86-power-control serves OperatingSystem.Status under its own name on the
/// host path, `Standby` while the POST_COMPLETE GPIO is asserted and `Inactive` otherwise.
/// phosphor-state-manager also serves the interface (under `State.Host`), but there it holds
/// what the host last reported and stays `Inactive` when nothing does, so it says nothing about
/// POST and we do not follow it.
const OS_X86: Target = Target {
    bus: bus::STATE_OPERATING_SYSTEM,
    path: path::HOST0,
    iface: iface::OS_STATUS,
};
const BOOT_RAW: Target = Target {
    bus: bus::STATE_BOOT_RAW,
    path: path::BOOT_RAW0,
    iface: iface::BOOT_RAW,
};

fn get<'a>(values: &'a HashMap<String, OwnedVariant>, name: &str) -> Option<&'a OwnedVariant> {
    values.get(name)
}

/// Follow every input until the connection fails. `ready` fires once every input is
/// subscribed and its current value (if any) has been fed to the core.
pub async fn follow_all(
    conn: Connection,
    feeder: Feeder,
    ready: tokio::sync::oneshot::Sender<()>,
) -> anyhow::Result<()> {
    let (r_chassis, w_chassis) = tokio::sync::oneshot::channel();
    let (r_host, w_host) = tokio::sync::oneshot::channel();
    let (r_os, w_os) = tokio::sync::oneshot::channel();
    let (r_raw, w_raw) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        if w_chassis.await.is_ok()
            && w_host.await.is_ok()
            && w_os.await.is_ok()
            && w_raw.await.is_ok()
        {
            let _ = ready.send(());
        }
    });
    let chassis = {
        let feeder = feeder.clone();
        // LastStateChangeTime rides along with the power state, to judge a saved state.
        let mut last_change_ms: Option<u64> = None;
        watch::watch_ready(&conn, CHASSIS, Some(r_chassis), move |u| match u {
            Update::Values(v) => {
                if let Some(ms) =
                    get(&v, prop::LAST_STATE_CHANGE_TIME).and_then(|x| u64::try_from(x).ok())
                {
                    last_change_ms = Some(ms);
                }
                if let Some(x) = get(&v, prop::CURRENT_POWER_STATE) {
                    let state = watch::enum_value(x);
                    if state.is_some() {
                        feeder.feed(Input::ChassisPower {
                            state,
                            last_change_ms,
                        });
                    }
                }
            }
            Update::Gone => {
                log::warn!(
                    "{} left the bus; keeping the last known state",
                    bus::STATE_CHASSIS
                );
                last_change_ms = None;
                feeder.feed(Input::ChassisPower {
                    state: None,
                    last_change_ms: None,
                });
            }
        })
    };
    let host = {
        let feeder = feeder.clone();
        watch::watch_ready(&conn, HOST, Some(r_host), move |u| match u {
            Update::Values(v) => {
                if let Some(x) = get(&v, prop::CURRENT_HOST_STATE) {
                    let s = watch::enum_value(x);
                    if s.is_some() {
                        feeder.feed(Input::HostState(s));
                    }
                }
            }
            Update::Gone => feeder.feed(Input::HostState(None)),
        })
    };
    let os = {
        let feeder = feeder.clone();
        watch::watch_ready(&conn, OS_X86, Some(r_os), move |u| match u {
            Update::Values(v) => {
                if let Some(x) = get(&v, prop::OPERATING_SYSTEM_STATE) {
                    let s = watch::enum_value(x);
                    if s.is_some() {
                        feeder.feed(Input::OsState(s));
                    }
                }
            }
            Update::Gone => feeder.feed(Input::OsState(None)),
        })
    };
    let raw = {
        let feeder = feeder.clone();
        // Every read goes to the core, the first after postd's arrival too: whether it is news
        // or a baseline is the core's rule.
        watch::watch_ready(&conn, BOOT_RAW, Some(r_raw), move |u| match u {
            Update::Values(v) => {
                let Some(x) = get(&v, prop::VALUE) else {
                    return;
                };
                let Ok((primary, _secondary)) =
                    x.try_clone().and_then(<(Vec<u8>, Vec<u8>)>::try_from)
                else {
                    log::warn!("Boot.Raw Value is not (ayay); ignoring");
                    return;
                };
                feeder.feed(Input::PostCode(post_code(&primary)));
            }
            Update::Gone => feeder.feed(Input::PostCodeSourceGone),
        })
    };
    tokio::try_join!(chassis, host, os, raw)?;
    Ok(())
}

/// phosphor-host-postd's primary code bytes, least significant first, as one number.
pub fn post_code(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .take(8)
        .rev()
        .fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
}

#[cfg(test)]
mod tests {
    #[test]
    fn post_code_bytes_are_little_endian() {
        assert_eq!(super::post_code(&[]), 0);
        assert_eq!(super::post_code(&[0x55]), 0x55);
        assert_eq!(super::post_code(&[0x34, 0x12]), 0x1234);
    }
}
