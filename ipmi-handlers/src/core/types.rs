//! Request, response, completion codes, privileges and channels (IPMI 2.0).

/// Network function codes (requests; the response NetFn is the request's | 1).
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

/// Completion codes (IPMI 2.0 table 5-2) that this server returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Cc {
    Success = 0x00,
    InvalidCommand = 0xC1,
    ReservationCancelled = 0xC5,
    ReqDataLenInvalid = 0xC7,
    ParmOutOfRange = 0xC9,
    CannotReturnRequestedBytes = 0xCA,
    SensorNotPresent = 0xCB,
    InvalidFieldRequest = 0xCC,
    IllegalCommandForSensor = 0xCD,
    DestinationUnavailable = 0xD3,
    InsufficientPrivilege = 0xD4,
    NotSupportedInPresentState = 0xD5,
    UnspecifiedError = 0xFF,
}

impl Cc {
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// Privilege levels, ordered (upstream `ipmi::Privilege` numbering, which the `privilege`
/// option of `execute` carries).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Privilege {
    None = 0,
    Callback = 1,
    User = 2,
    Operator = 3,
    Admin = 4,
    Oem = 5,
}

impl Privilege {
    pub fn from_level(n: i64) -> Option<Self> {
        Some(match n {
            0 => Self::None,
            1 => Self::Callback,
            2 => Self::User,
            3 => Self::Operator,
            4 => Self::Admin,
            5 => Self::Oem,
            _ => return None,
        })
    }
}

/// How a channel carries requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelKind {
    /// KCS/BT system interface: session-less, the host firmware talks here.
    SystemInterface,
    /// Another session-less channel (INTRABMC: busctl and BMC-internal callers).
    SessionLess,
    /// A session-based channel (RMCP+ LAN): privilege comes with each request.
    SessionBased,
}

/// The channel a request arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Channel {
    pub number: u8,
    pub kind: ChannelKind,
}

/// One IPMI request as the core sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub netfn: u8,
    pub lun: u8,
    pub cmd: u8,
    pub data: Vec<u8>,
    pub channel: Channel,
    /// The effective privilege (Admin on session-less channels, the session's otherwise).
    pub privilege: Privilege,
    /// The requester's slave address on IPMB channels (`rqSA` option), for generator IDs.
    pub rq_sa: Option<u8>,
}

/// The answer `execute` returns: `(netfn|1, lun, cmd, cc, data)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub netfn: u8,
    pub lun: u8,
    pub cmd: u8,
    pub cc: u8,
    pub data: Vec<u8>,
}

impl Response {
    pub fn to(req: &Request, cc: u8, data: Vec<u8>) -> Self {
        Self {
            netfn: req.netfn | 1,
            lun: req.lun,
            cmd: req.cmd,
            cc,
            data,
        }
    }
}
