//! Other masters on the DIMM buses: what the edge's scan found, logged once when it appears
//! (with what to change) and once when it goes, and published on the gate.
//!
//! The gate keeps sensor-gate's own transfers off the bus outside settled S0; it cannot stop
//! a kernel driver, another process or entity-manager's FruDevice. So the daemon says so,
//! plainly and once, instead of letting an operator believe the bus is quiet.

use super::{Action, Core};

/// What kind of other master a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MasterKind {
    /// A kernel driver bound to a device on the bus (e.g. `jc42`, polled by hwmon readers).
    Driver,
    /// A device exposing an `eeprom` file (at24, ee1004): FruDevice reads it through the
    /// driver on every scan of the bus, whatever its per-address blocklist says.
    Eeprom,
    /// Another process holding the bus's `/dev/i2c-N` open.
    OpenDevice,
    /// FruDevice is installed and its blocklist does not hold the bus (nor its root bus) as a
    /// whole: it probes every address 0x03–0x77 at start and at host power-on.
    FruDevice,
}

impl MasterKind {
    /// The name published on `org.acpigate.Gate` `OtherMasters`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Driver => "driver",
            Self::Eeprom => "eeprom",
            Self::OpenDevice => "open",
            Self::FruDevice => "frudevice",
        }
    }

    /// What to change, for the log line.
    fn remedy(self) -> &'static str {
        match self {
            Self::Driver => {
                "its driver's transfers are not gated: unbind it (echo the device name to \
                 /sys/bus/i2c/drivers/<driver>/unbind) and drop the device from the device tree \
                 or the entity-manager record that creates it"
            }
            Self::Eeprom => {
                "FruDevice reads every eeprom on a bus it scans, whatever its address blocklist \
                 says: block the bus as a whole in /usr/share/entity-manager/blacklist.json, and \
                 unbind the eeprom driver if anything else reads it"
            }
            Self::OpenDevice => {
                "that process's transfers are not gated: stop it, or keep it off this bus while \
                 the host is not settled in S0"
            }
            Self::FruDevice => {
                "add the bus number to \"buses\" in /usr/share/entity-manager/blacklist.json \
                 (meta-acpigate: ACPIGATE_FRUDEVICE_BLOCKED_BUSES in the machine configuration)"
            }
        }
    }
}

/// One other master on one configured bus.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OtherMaster {
    /// The bus's name in sensor-gate's configuration.
    pub bus: String,
    pub kind: MasterKind,
    /// What was found, for people: the device, driver, process or file.
    pub detail: String,
}

impl Core {
    /// A complete scan result: log what appeared and what went, publish the set.
    pub(super) fn on_other_masters(&mut self, mut found: Vec<OtherMaster>, out: &mut Vec<Action>) {
        found.sort();
        found.dedup();
        let before = &self.status.other_masters;
        for m in found.iter().filter(|m| !before.contains(m)) {
            out.push(Action::Log {
                warn: true,
                message: format!(
                    "another master on DIMM bus {}: {} ({}); {}",
                    m.bus,
                    m.detail,
                    m.kind.as_str(),
                    m.kind.remedy()
                ),
            });
        }
        for m in before.iter().filter(|m| !found.contains(m)) {
            out.push(Action::Log {
                warn: false,
                message: format!(
                    "no longer on DIMM bus {}: {} ({})",
                    m.bus,
                    m.detail,
                    m.kind.as_str()
                ),
            });
        }
        self.status.other_masters = found;
    }
}
