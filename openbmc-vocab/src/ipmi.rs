//! IPMI numbers shared by the command server and its front ends (IPMI 2.0): NetFns, command
//! codes, completion codes, privilege levels, and the option keys of
//! `xyz.openbmc_project.Ipmi.Server.execute` (phosphor-host-ipmid's spelling).

use serde::Deserialize;

/// Network function codes of requests (the response NetFn is the request's | 1).
pub mod netfn {
    pub const CHASSIS: u8 = 0x00;
    pub const SENSOR_EVENT: u8 = 0x04;
    pub const APP: u8 = 0x06;
    pub const STORAGE: u8 = 0x0A;
}

/// Command codes, per NetFn.
pub mod cmd {
    pub mod chassis {
        pub const GET_CHASSIS_STATUS: u8 = 0x01;
        pub const CHASSIS_CONTROL: u8 = 0x02;
    }
    pub mod sensor {
        pub const PLATFORM_EVENT: u8 = 0x02;
        pub const GET_SENSOR_THRESHOLDS: u8 = 0x27;
        pub const GET_SENSOR_READING: u8 = 0x2D;
    }
    pub mod app {
        pub const GET_DEVICE_ID: u8 = 0x01;
        pub const GET_SELF_TEST_RESULTS: u8 = 0x04;
        pub const SET_ACPI_POWER_STATE: u8 = 0x06;
        pub const GET_ACPI_POWER_STATE: u8 = 0x07;
        pub const GET_DEVICE_GUID: u8 = 0x08;
        pub const GET_SYSTEM_GUID: u8 = 0x37;
        // The session commands: a LAN front end answers these itself (it owns the sessions)
        // and never forwards them to the command server.
        pub const GET_CHANNEL_AUTH_CAPABILITIES: u8 = 0x38;
        pub const SET_SESSION_PRIVILEGE_LEVEL: u8 = 0x3B;
        pub const CLOSE_SESSION: u8 = 0x3C;
        pub const GET_SESSION_INFO: u8 = 0x3D;
        pub const GET_CHANNEL_CIPHER_SUITES: u8 = 0x54;
    }
    pub mod storage {
        pub const GET_SDR_REPOSITORY_INFO: u8 = 0x20;
        pub const RESERVE_SDR_REPOSITORY: u8 = 0x22;
        pub const GET_SDR: u8 = 0x23;
        pub const GET_SEL_INFO: u8 = 0x40;
        pub const GET_SEL_ALLOCATION_INFO: u8 = 0x41;
        pub const RESERVE_SEL: u8 = 0x42;
        pub const GET_SEL_ENTRY: u8 = 0x43;
        pub const ADD_SEL_ENTRY: u8 = 0x44;
        pub const DELETE_SEL_ENTRY: u8 = 0x46;
        pub const CLEAR_SEL: u8 = 0x47;
        pub const GET_SEL_TIME: u8 = 0x48;
        pub const SET_SEL_TIME: u8 = 0x49;
    }
}

/// Completion codes (IPMI 2.0 table 5-2), and the command-specific ones (0x80–0xBE) we use,
/// in a module per command because their meaning depends on the command.
pub mod cc {
    pub const SUCCESS: u8 = 0x00;
    /// Node busy: command processing resources temporarily unavailable (try again later).
    pub const NODE_BUSY: u8 = 0xC0;
    pub const INVALID_COMMAND: u8 = 0xC1;
    pub const RESERVATION_CANCELLED: u8 = 0xC5;
    pub const REQ_DATA_LEN_INVALID: u8 = 0xC7;
    pub const PARM_OUT_OF_RANGE: u8 = 0xC9;
    pub const CANNOT_RETURN_REQUESTED_BYTES: u8 = 0xCA;
    pub const SENSOR_NOT_PRESENT: u8 = 0xCB;
    pub const INVALID_FIELD_REQUEST: u8 = 0xCC;
    pub const ILLEGAL_COMMAND_FOR_SENSOR: u8 = 0xCD;
    pub const DESTINATION_UNAVAILABLE: u8 = 0xD3;
    pub const INSUFFICIENT_PRIVILEGE: u8 = 0xD4;
    pub const NOT_SUPPORTED_IN_PRESENT_STATE: u8 = 0xD5;
    pub const UNSPECIFIED_ERROR: u8 = 0xFF;

    /// Set Session Privilege Level (IPMI 2.0 §22.18).
    pub mod set_session_privilege_level {
        /// Requested level not available for this user.
        pub const REQUESTED_LEVEL_NOT_AVAILABLE_FOR_USER: u8 = 0x80;
        /// Requested level exceeds the channel and/or user privilege limit.
        pub const REQUESTED_LEVEL_EXCEEDS_LIMIT: u8 = 0x81;
    }

    /// Close Session (IPMI 2.0 §22.19).
    pub mod close_session {
        /// Invalid session ID in request.
        pub const INVALID_SESSION_ID: u8 = 0x87;
        /// Invalid session handle in request.
        pub const INVALID_SESSION_HANDLE: u8 = 0x88;
    }
}

/// IPMI privilege levels (IPMI 2.0 §6.8), ordered, numbered as the spec and upstream
/// `ipmi::Privilege` number them; the `privilege` option of `execute` carries the number.
///
/// `None` is a level a caller can have (no access), not a request: in the request fields of
/// the session messages a 0 means something else (Open Session: "highest available"; Set
/// Session Privilege Level: "no change"; RAKP 1 and Get Channel Auth Caps: reserved), which
/// the code reading those fields says explicitly.
///
/// Configuration files name levels in lowercase (`"user"`, `"operator"`, `"admin"`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
#[repr(u8)]
pub enum Privilege {
    None = 0,
    Callback = 1,
    User = 2,
    Operator = 3,
    Admin = 4,
    Oem = 5,
}

impl Privilege {
    /// The level with this number (the low nibble of the privilege fields), if there is one.
    pub const fn from_level(level: u8) -> Option<Self> {
        Some(match level {
            0 => Self::None,
            1 => Self::Callback,
            2 => Self::User,
            3 => Self::Operator,
            4 => Self::Admin,
            5 => Self::Oem,
            _ => return None,
        })
    }

    /// The level's number.
    pub const fn level(self) -> u8 {
        self as u8
    }
}

/// The SEL generator ID of records the BMC makes itself: byte 1 = 0x20, the BMC's IPMB slave
/// address (address in bits 7:1, bit 0 = 0: a slave address, not a software ID), byte 2 = 0
/// (channel 0, LUN 0). ipmi-handlers' own records carry the same.
pub const GENERATOR_ID_BMC: u16 = 0x0020;

/// The method of `xyz.openbmc_project.Ipmi.Server` that carries every request.
pub const EXECUTE_METHOD: &str = "execute";

/// Keys of the `a{sv}` options of `execute`.
pub mod option {
    /// Session privilege (int, upstream `ipmi::Privilege`: 1 Callback … 4 Admin, 5 OEM).
    pub const PRIVILEGE: &str = "privilege";
    /// Session user id (int).
    pub const USER_ID: &str = "userId";
    /// Session id (uint32).
    pub const CURRENT_SESSION_ID: &str = "currentSessionId";
    /// Requester slave address on IPMB channels (int).
    pub const RQ_SA: &str = "rqSA";
    /// Host index on multi-host IPMB channels (int).
    pub const HOST_ID: &str = "hostId";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn privilege_levels_round_trip_and_order() {
        for n in 0..=5u8 {
            assert_eq!(Privilege::from_level(n).map(Privilege::level), Some(n));
        }
        assert_eq!(Privilege::from_level(4), Some(Privilege::Admin));
        assert_eq!(Privilege::from_level(6), None);
        assert_eq!(Privilege::from_level(0x14), None);
        assert!(Privilege::None < Privilege::Callback);
        assert!(Privilege::User < Privilege::Operator);
        assert!(Privilege::Admin < Privilege::Oem);
        assert_eq!(Privilege::Operator.level(), 3);
    }

    #[test]
    fn privilege_names_in_configuration_files() {
        let p: Vec<Privilege> =
            serde_json::from_str(r#"["none", "callback", "user", "operator", "admin", "oem"]"#)
                .unwrap_or_default();
        assert_eq!(
            p,
            [
                Privilege::None,
                Privilege::Callback,
                Privilege::User,
                Privilege::Operator,
                Privilege::Admin,
                Privilege::Oem
            ]
        );
        assert!(serde_json::from_str::<Privilege>(r#""Admin""#).is_err());
        assert!(serde_json::from_str::<Privilege>(r#""administrator""#).is_err());
    }
}
