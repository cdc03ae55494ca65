//! The per-state systemd targets acpi-state-daemon starts (mutually `Conflicts=`).

use crate::acpi::AcpiState;

/// One of the three host state targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HostTarget {
    S0,
    S2,
    S5,
}

/// `StartUnit` job mode: replace conflicting jobs (the targets conflict with one another).
pub const START_MODE_REPLACE: &str = "replace";

impl HostTarget {
    pub const ALL: [Self; 3] = [Self::S0, Self::S2, Self::S5];

    /// The unit name.
    pub fn unit(self) -> &'static str {
        match self {
            Self::S0 => "host-s0-state.target",
            Self::S2 => "host-s2-state.target",
            Self::S5 => "host-s5-state.target",
        }
    }

    /// The target that stands for an ACPI system state, if any. Working states start the S0
    /// target, S2 the S2 target, every flavour of off the S5 target. Sleep states (S1, S3,
    /// SLEEP, G1_SLEEP) and Unknown start none.
    pub fn for_state(state: AcpiState) -> Option<Self> {
        match state {
            AcpiState::S0G0D0 | AcpiState::LegacyOn => Some(Self::S0),
            AcpiState::S2D2 => Some(Self::S2),
            AcpiState::S4
            | AcpiState::S5G2
            | AcpiState::S4S5
            | AcpiState::G3
            | AcpiState::Override
            | AcpiState::LegacyOff => Some(Self::S5),
            AcpiState::S1D1
            | AcpiState::S3D3
            | AcpiState::Sleep
            | AcpiState::G1Sleep
            | AcpiState::Unknown => None,
        }
    }

    /// The target for a unit name.
    pub fn from_unit(unit: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.unit() == unit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DbusEnum;

    #[test]
    fn unit_names_round_trip() {
        for t in HostTarget::ALL {
            assert_eq!(HostTarget::from_unit(t.unit()), Some(t));
        }
        assert_eq!(HostTarget::from_unit("host-s3-state.target"), None);
    }

    #[test]
    fn every_state_has_a_defined_target() {
        for &s in AcpiState::ALL {
            let t = HostTarget::for_state(s);
            match s {
                AcpiState::S0G0D0 => assert_eq!(t, Some(HostTarget::S0)),
                AcpiState::S2D2 => assert_eq!(t, Some(HostTarget::S2)),
                AcpiState::S5G2 | AcpiState::G3 => assert_eq!(t, Some(HostTarget::S5)),
                AcpiState::Unknown => assert_eq!(t, None),
                _ => {}
            }
        }
    }
}
