//! `xyz.openbmc_project.Control.Power.ACPIPowerState.ACPI` and its codes in IPMI 2.0: the
//! Set/Get ACPI Power State commands' state codes, and the offsets of sensor type 22h (System
//! ACPI Power State) in SEL records, which are not the same numbers.

use crate::DbusEnum;

dbus_enum! {
    /// The ACPI power state enum, in upstream's declaration order.
    pub enum AcpiState = "xyz.openbmc_project.Control.Power.ACPIPowerState.ACPI" {
        /// Working.
        S0G0D0 = "S0_G0_D0",
        S1D1 = "S1_D1",
        /// Processor context lost; on these platforms: host firmware initialising.
        S2D2 = "S2_D2",
        /// Suspend to RAM.
        S3D3 = "S3_D3",
        /// Suspend to disk.
        S4 = "S4",
        /// Soft off.
        S5G2 = "S5_G2",
        /// S4 or S5, the firmware cannot tell which.
        S4S5 = "S4_S5",
        /// Mechanical off.
        G3 = "G3",
        /// S1–S3, cannot tell which.
        Sleep = "SLEEP",
        /// S1–S4, cannot tell which.
        G1Sleep = "G1_SLEEP",
        /// S5 entered by override.
        Override = "OVERRIDE",
        LegacyOn = "LEGACY_ON",
        LegacyOff = "LEGACY_OFF",
        /// Not initialised (upstream's default).
        Unknown = "Unknown",
    }
}

/// The IPMI "no change" code (bits 6:0 of either byte of Set ACPI Power State).
pub const IPMI_NO_CHANGE: u8 = 0x7F;

impl AcpiState {
    /// IPMI system power state code (Get/Set ACPI Power State byte 1, bits 6:0).
    pub fn ipmi_system_code(self) -> u8 {
        match self {
            Self::S0G0D0 => 0x00,
            Self::S1D1 => 0x01,
            Self::S2D2 => 0x02,
            Self::S3D3 => 0x03,
            Self::S4 => 0x04,
            Self::S5G2 => 0x05,
            Self::S4S5 => 0x06,
            Self::G3 => 0x07,
            Self::Sleep => 0x08,
            Self::G1Sleep => 0x09,
            Self::Override => 0x0A,
            Self::LegacyOn => 0x20,
            Self::LegacyOff => 0x21,
            Self::Unknown => 0x2A,
        }
    }

    /// The state for a system code; `None` for 0x7F ("no change") and invalid codes alike, so
    /// callers check [`IPMI_NO_CHANGE`] first.
    pub fn from_ipmi_system_code(code: u8) -> Option<Self> {
        Self::ALL
            .iter()
            .copied()
            .find(|s| s.ipmi_system_code() == code)
    }

    /// IPMI device power state code: D0–D3 are the first four enum values, 0x2A is Unknown.
    /// Other states have no device code; they report as Unknown (0x2A).
    pub fn ipmi_device_code(self) -> u8 {
        match self {
            Self::S0G0D0 => 0x00,
            Self::S1D1 => 0x01,
            Self::S2D2 => 0x02,
            Self::S3D3 => 0x03,
            _ => 0x2A,
        }
    }

    /// The state for a device code (0x00–0x03, 0x2A); `None` otherwise.
    pub fn from_ipmi_device_code(code: u8) -> Option<Self> {
        match code {
            0x00 => Some(Self::S0G0D0),
            0x01 => Some(Self::S1D1),
            0x02 => Some(Self::S2D2),
            0x03 => Some(Self::S3D3),
            0x2A => Some(Self::Unknown),
            _ => None,
        }
    }

    /// Event offset of sensor type 0x22 "System ACPI Power State" for this state, as ipmitool
    /// decodes it. These are not the Set command's codes (LEGACY_ON is 0x0B, Unknown 0x0E).
    pub fn sel_offset(self) -> u8 {
        match self {
            // Past G1 sleep the event offsets run on where the Set codes jump to 0x20.
            Self::LegacyOn => 0x0B,
            Self::LegacyOff => 0x0C,
            Self::Unknown => 0x0E,
            // S0/G0 … override: the same numbers as the Set command's codes.
            s => s.ipmi_system_code(),
        }
    }

    /// The three event-data bytes of a "System ACPI Power State" (sensor type 0x22) record for
    /// entering this state: byte 1 the offset (bits 7:4 = 0: bytes 2 and 3 unspecified),
    /// bytes 2 and 3 0xFF. ipmi-handlers' own records and acpi-state-daemon's records through
    /// phosphor-sel-logger both use it, so the two deployments log the same bytes.
    pub fn sel_event_data(self) -> [u8; 3] {
        [self.sel_offset(), 0xFF, 0xFF]
    }

    /// The state a sensor-type-0x22 event offset stands for.
    pub fn from_sel_offset(offset: u8) -> Option<Self> {
        Self::ALL.iter().copied().find(|s| s.sel_offset() == offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_round_trips_through_its_dbus_string() {
        for &s in AcpiState::ALL {
            let full = s.dbus_str();
            assert!(full.starts_with("xyz.openbmc_project.Control.Power.ACPIPowerState.ACPI."));
            assert_eq!(full.parse::<AcpiState>(), Ok(s));
            let json = serde_json::to_string(&s).expect("serialize");
            assert_eq!(json, format!("\"{full}\""));
            assert_eq!(
                serde_json::from_str::<AcpiState>(&json).expect("deserialize"),
                s
            );
        }
        assert_eq!(AcpiState::ALL.len(), 14);
        assert_eq!(
            AcpiState::S2D2.dbus_str(),
            "xyz.openbmc_project.Control.Power.ACPIPowerState.ACPI.S2_D2"
        );
    }

    #[test]
    fn bare_or_foreign_strings_are_rejected() {
        for bad in [
            "S2_D2",
            "xyz.openbmc_project.Control.Power.ACPIPowerState.ACPI.S2",
            "xyz.openbmc_project.Control.Power.ACPIPowerState.ACPI.",
            "xyz.openbmc_project.Control.Power.ACPIPowerState.ACPIS0_G0_D0",
            "xyz.openbmc_project.State.Host.HostState.Running",
            "",
        ] {
            assert!(bad.parse::<AcpiState>().is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn ipmi_system_codes_match_the_table() {
        let table: [(u8, AcpiState); 14] = [
            (0x00, AcpiState::S0G0D0),
            (0x01, AcpiState::S1D1),
            (0x02, AcpiState::S2D2),
            (0x03, AcpiState::S3D3),
            (0x04, AcpiState::S4),
            (0x05, AcpiState::S5G2),
            (0x06, AcpiState::S4S5),
            (0x07, AcpiState::G3),
            (0x08, AcpiState::Sleep),
            (0x09, AcpiState::G1Sleep),
            (0x0A, AcpiState::Override),
            (0x20, AcpiState::LegacyOn),
            (0x21, AcpiState::LegacyOff),
            (0x2A, AcpiState::Unknown),
        ];
        for (code, state) in table {
            assert_eq!(state.ipmi_system_code(), code);
            assert_eq!(AcpiState::from_ipmi_system_code(code), Some(state));
        }
        for code in 0u8..=0xFF {
            let valid = code <= 0x0A || matches!(code, 0x20 | 0x21 | 0x2A);
            assert_eq!(
                AcpiState::from_ipmi_system_code(code).is_some(),
                valid,
                "{code:#x}"
            );
        }
    }

    #[test]
    fn ipmi_device_codes_cover_d0_to_d3_and_unknown() {
        for code in 0u8..=0xFF {
            let s = AcpiState::from_ipmi_device_code(code);
            assert_eq!(s.is_some(), code <= 3 || code == 0x2A, "{code:#x}");
            if let Some(s) = s {
                assert_eq!(s.ipmi_device_code(), code);
            }
        }
        assert_eq!(AcpiState::S5G2.ipmi_device_code(), 0x2A);
    }

    #[test]
    fn sel_offsets_are_distinct_and_round_trip() {
        let mut seen = std::collections::BTreeSet::new();
        for &s in AcpiState::ALL {
            assert!(seen.insert(s.sel_offset()), "duplicate offset for {s}");
            assert!(s.sel_offset() <= 0x0E);
            assert_eq!(AcpiState::from_sel_offset(s.sel_offset()), Some(s));
        }
        assert_eq!(AcpiState::LegacyOn.sel_offset(), 0x0B);
        assert_eq!(AcpiState::Unknown.sel_offset(), 0x0E);
        assert_eq!(AcpiState::from_sel_offset(0x0D), None);
    }
}
