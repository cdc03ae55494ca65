//! Request, response, completion codes, privileges and channels (IPMI 2.0).

use openbmc_vocab::ipmi::cc;
pub use openbmc_vocab::ipmi::{cmd, netfn};

/// Completion codes (IPMI 2.0 table 5-2) that this server returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Cc {
    Success = cc::SUCCESS,
    InvalidCommand = cc::INVALID_COMMAND,
    ReservationCancelled = cc::RESERVATION_CANCELLED,
    ReqDataLenInvalid = cc::REQ_DATA_LEN_INVALID,
    ParmOutOfRange = cc::PARM_OUT_OF_RANGE,
    CannotReturnRequestedBytes = cc::CANNOT_RETURN_REQUESTED_BYTES,
    SensorNotPresent = cc::SENSOR_NOT_PRESENT,
    InvalidFieldRequest = cc::INVALID_FIELD_REQUEST,
    IllegalCommandForSensor = cc::ILLEGAL_COMMAND_FOR_SENSOR,
    DestinationUnavailable = cc::DESTINATION_UNAVAILABLE,
    InsufficientPrivilege = cc::INSUFFICIENT_PRIVILEGE,
    NotSupportedInPresentState = cc::NOT_SUPPORTED_IN_PRESENT_STATE,
    /// Node busy: "command processing resources are temporarily unavailable" (a rate limit).
    NodeBusy = cc::NODE_BUSY,
    UnspecifiedError = cc::UNSPECIFIED_ERROR,
}

impl Cc {
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// Privilege levels, shared with the LAN front end (upstream `ipmi::Privilege` numbering,
/// which the `privilege` option of `execute` carries).
pub use openbmc_vocab::ipmi::Privilege;

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
