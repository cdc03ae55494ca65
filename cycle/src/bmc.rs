//! The IPMI commands the tool sends, over an RMCP+ console session
//! ([`ipmi_lan::console::Session`]), and what their answers say.
//!
//! Reads (Get ACPI Power State, Get Chassis Status, Get SEL Entry) may be retransmitted;
//! Chassis Control is sent once ([`Session::request_once`]): a power cycle sent twice is two
//! power cycles.

use ipmi_lan::console::{ConsoleError, Session};
use openbmc_vocab::ipmi::{cmd, netfn};

use crate::decode::SEL_RECORD_LEN;

/// A completion code other than 0: the BMC answered, and refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused(pub u8);

/// Completion code 0xC1: the command is not supported (OpenIPMI's `ipmi_sim` answers Get ACPI
/// Power State so).
pub const CC_INVALID_COMMAND: u8 = 0xC1;
/// Completion code 0xCB: the requested record is not present (a SEL cleared under us).
pub const CC_NOT_PRESENT: u8 = 0xCB;

/// Stands for an answer too short to read (completion code 0 but missing bytes): the
/// unspecified-error code, so it is never mistaken for a defined refusal.
pub const SHORT_ANSWER: u8 = 0xFF;

/// Get SEL Entry's "first record" and "last record" IDs (IPMI 2.0 §31.5).
const FIRST_RECORD: u16 = 0x0000;
const LAST_RECORD: u16 = 0xFFFF;

/// The BMC, as the tool uses it.
pub struct Bmc {
    pub session: Session,
}

impl Bmc {
    fn read(
        &mut self,
        netfn: u8,
        cmd: u8,
        data: &[u8],
    ) -> Result<Result<Vec<u8>, Refused>, ConsoleError> {
        let r = self.session.request(netfn, cmd, data)?;
        Ok(if r.cc == 0 {
            Ok(r.data)
        } else {
            Err(Refused(r.cc))
        })
    }

    /// Get ACPI Power State: the answer's data ([`crate::decode::acpi_power_state`]).
    pub fn acpi_power_state(&mut self) -> Result<Result<Vec<u8>, Refused>, ConsoleError> {
        self.read(netfn::APP, cmd::app::GET_ACPI_POWER_STATE, &[])
    }

    /// Get Chassis Status: the answer's data ([`crate::decode::chassis_power_on`]).
    pub fn chassis_status(&mut self) -> Result<Result<Vec<u8>, Refused>, ConsoleError> {
        self.read(netfn::CHASSIS, cmd::chassis::GET_CHASSIS_STATUS, &[])
    }

    /// Chassis Control, sent once.
    pub fn chassis_control(&mut self, code: u8) -> Result<Result<(), Refused>, ConsoleError> {
        let r =
            self.session
                .request_once(netfn::CHASSIS, cmd::chassis::CHASSIS_CONTROL, &[code])?;
        Ok(if r.cc == 0 {
            Ok(())
        } else {
            Err(Refused(r.cc))
        })
    }

    /// Get SEL Entry `id` (the whole record, no reservation needed for that): the next
    /// record's ID and this record's 16 bytes.
    pub fn sel_entry(&mut self, id: u16) -> Result<Result<(u16, Vec<u8>), Refused>, ConsoleError> {
        let [lo, hi] = id.to_le_bytes();
        Ok(self
            .read(
                netfn::STORAGE,
                cmd::storage::GET_SEL_ENTRY,
                &[0, 0, lo, hi, 0, 0xFF],
            )?
            .and_then(|d| match d.as_slice() {
                [n0, n1, record @ ..] if record.len() >= SEL_RECORD_LEN => {
                    Ok((u16::from_le_bytes([*n0, *n1]), record.to_vec()))
                }
                // A short answer reads as "no such record" (the walk stops there).
                _ => Err(Refused(SHORT_ANSWER)),
            }))
    }
}

/// Where the tool has read the SEL up to: records added after [`SelCursor::start`] are
/// handed out once each, in order.
#[derive(Debug, Default)]
pub struct SelCursor {
    /// The last record read, or None for an empty SEL.
    last: Option<u16>,
}

impl SelCursor {
    /// Skip every record already in the SEL (the baseline, not this run's).
    pub fn start(bmc: &mut Bmc) -> Result<Self, ConsoleError> {
        let mut c = Self::default();
        c.new_records(bmc)?;
        Ok(c)
    }

    /// The records added since the last call (16 bytes each, [`crate::decode::sel_record`]).
    pub fn new_records(&mut self, bmc: &mut Bmc) -> Result<Vec<Vec<u8>>, ConsoleError> {
        let mut out = Vec::new();
        let mut next = match self.last {
            None => FIRST_RECORD,
            Some(last) => match bmc.sel_entry(last)? {
                Ok((next, _)) => next,
                // Our last record is gone (the SEL was cleared): everything there is new.
                Err(Refused(CC_NOT_PRESENT)) => FIRST_RECORD,
                Err(_) => return Ok(out),
            },
        };
        // A bound on one call's walk (a SEL holds at most 0xFFFE records).
        for _ in 0..0xFFFE {
            if next == LAST_RECORD {
                break;
            }
            match bmc.sel_entry(next)? {
                Ok((after, rec)) => {
                    self.last = Some(u16::from_le_bytes([rec[0], rec[1]]));
                    out.push(rec);
                    next = after;
                }
                // An empty SEL, or a record deleted between two reads.
                Err(_) => break,
            }
        }
        Ok(out)
    }
}
