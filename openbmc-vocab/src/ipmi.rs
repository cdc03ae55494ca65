//! IPMI numbers shared by the command server and its front ends (IPMI 2.0), and the option
//! keys of `xyz.openbmc_project.Ipmi.Server.execute` (phosphor-host-ipmid's spelling).

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

/// Completion codes (IPMI 2.0 table 5-2).
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
}

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
