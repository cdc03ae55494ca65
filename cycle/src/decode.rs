//! The bytes of the three answers the tool reads, turned into [`Observation`]s: Get ACPI
//! Power State, Get Chassis Status and SEL records (Get SEL Entry's record data).
//!
//! Everything here comes from the network, so nothing trusts a length or a code: a short or
//! unknown answer is a [`DecodeError`] for the caller to log, never a panic.

use std::time::Duration;

use crate::observe::{AcpiState, Observation};

/// Sensor type "System ACPI Power State" (IPMI 2.0 table 42-3).
pub const SENSOR_TYPE_ACPI_POWER_STATE: u8 = 0x22;
/// Sensor type "System Boot / Restart Initiated".
pub const SENSOR_TYPE_BOOT_RESTART: u8 = 0x1D;
/// SEL record type of a system event record; 0xC0–0xFF are OEM records without sensor fields.
pub const RECORD_TYPE_SYSTEM_EVENT: u8 = 0x02;
/// A SEL record is 16 bytes.
pub const SEL_RECORD_LEN: usize = 16;

/// An answer that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("{what}: {len} data bytes, at least {need} expected")]
    Short {
        what: &'static str,
        len: usize,
        need: usize,
    },
    #[error("Get ACPI Power State: system power state code {0:#04x} is not in the IPMI table")]
    UnknownAcpiCode(u8),
    #[error("SEL record {record_id:#06x}: ACPI power state offset {offset:#04x} is reserved")]
    UnknownAcpiOffset { record_id: u16, offset: u8 },
}

/// The system power state in a Get ACPI Power State answer (data after the completion
/// code): byte 1, bits 6:0 (bit 7 is reserved in answers).
pub fn acpi_power_state(data: &[u8]) -> Result<AcpiState, DecodeError> {
    // Byte 2 (device power state) is mandatory too; an answer without it is broken.
    let [first, _, ..] = data else {
        return Err(DecodeError::Short {
            what: "Get ACPI Power State",
            len: data.len(),
            need: 2,
        });
    };
    let code = first & 0x7F;
    AcpiState::from_ipmi_system_code(code).ok_or(DecodeError::UnknownAcpiCode(code))
}

/// Whether chassis power is on, from a Get Chassis Status answer (data after the completion
/// code): byte 1 bit 0.
pub fn chassis_power_on(data: &[u8]) -> Result<bool, DecodeError> {
    match data {
        // Bytes 1–3 are mandatory; only byte 1 matters here, but a shorter answer is broken.
        [first, _, _, ..] => Ok(first & 0x01 != 0),
        _ => Err(DecodeError::Short {
            what: "Get Chassis Status",
            len: data.len(),
            need: 3,
        }),
    }
}

/// What a SEL record the tracker cares about says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SelEvent {
    /// The record's ID (bytes 1–2, least significant first).
    pub record_id: u16,
    /// The BMC's timestamp of the record (seconds, the SEL clock), for the log only: the
    /// tracker times a record by when it was read.
    pub bmc_time: u32,
    pub kind: SelKind,
}

/// The two kinds of record the tracker reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelKind {
    /// Sensor type 0x22: the host entered this state.
    Acpi(AcpiState),
    /// Sensor type 0x1D, with its event offset.
    BootRestart(u8),
}

impl SelEvent {
    /// As the tracker takes it in, read at `at`.
    pub fn observation(&self, at: Duration) -> Observation {
        match self.kind {
            SelKind::Acpi(state) => Observation::SelAcpi {
                at,
                state,
                record_id: self.record_id,
            },
            SelKind::BootRestart(offset) => Observation::SelBootRestart {
                at,
                offset,
                record_id: self.record_id,
            },
        }
    }
}

/// One 16-byte SEL record (Get SEL Entry's record data, after the next record ID):
/// `Ok(None)` for any record the tracker does not follow (OEM records, other sensor types,
/// deassertions, non-sensor-specific event types).
pub fn sel_record(record: &[u8]) -> Result<Option<SelEvent>, DecodeError> {
    let Some(r) = record.get(..SEL_RECORD_LEN) else {
        return Err(DecodeError::Short {
            what: "SEL record",
            len: record.len(),
            need: SEL_RECORD_LEN,
        });
    };
    let record_id = u16::from_le_bytes([r[0], r[1]]);
    if r[2] != RECORD_TYPE_SYSTEM_EVENT {
        return Ok(None);
    }
    let bmc_time = u32::from_le_bytes([r[3], r[4], r[5], r[6]]);
    let sensor_type = r[10];
    let event_dir_type = r[12];
    // Bit 7 set: a deassertion. Leaving a state says nothing about which state came next.
    if event_dir_type & 0x80 != 0 {
        return Ok(None);
    }
    // Both sensor types define their offsets as sensor-specific (event/reading type 0x6F).
    if event_dir_type & 0x7F != 0x6F {
        return Ok(None);
    }
    // Event data 1, bits 3:0: the offset (bits 7:4 say how bytes 2 and 3 are used).
    let offset = r[13] & 0x0F;
    let kind = match sensor_type {
        SENSOR_TYPE_ACPI_POWER_STATE => SelKind::Acpi(
            AcpiState::from_sel_offset(offset)
                .ok_or(DecodeError::UnknownAcpiOffset { record_id, offset })?,
        ),
        SENSOR_TYPE_BOOT_RESTART => SelKind::BootRestart(offset),
        _ => return Ok(None),
    };
    Ok(Some(SelEvent {
        record_id,
        bmc_time,
        kind,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A system event record: ID, timestamp, generator 0x0020, EvM rev 4, sensor type and
    /// number, event type, event data 1–3.
    fn record(id: u16, sensor_type: u8, dir_type: u8, ed1: u8) -> [u8; 16] {
        let [lo, hi] = id.to_le_bytes();
        [
            lo,
            hi,
            0x02,
            0x78,
            0x56,
            0x34,
            0x12,
            0x20,
            0x00,
            0x04,
            sensor_type,
            0x09,
            dir_type,
            ed1,
            0xFF,
            0xFF,
        ]
    }

    #[test]
    fn acpi_power_state_answers() {
        let cases: &[(&[u8], Result<AcpiState, DecodeError>)] = &[
            (&[0x00, 0x00], Ok(AcpiState::S0G0D0)),
            (&[0x02, 0x2A], Ok(AcpiState::S2D2)),
            (&[0x05, 0x2A], Ok(AcpiState::S5G2)),
            // Bit 7 is not part of the code.
            (&[0x85, 0x2A], Ok(AcpiState::S5G2)),
            (&[0x21, 0x2A], Ok(AcpiState::LegacyOff)),
            (&[0x2A, 0x2A], Ok(AcpiState::Unknown)),
            (&[0x0B, 0x00], Err(DecodeError::UnknownAcpiCode(0x0B))),
            (&[0x7F, 0x00], Err(DecodeError::UnknownAcpiCode(0x7F))),
            (
                &[0x00],
                Err(DecodeError::Short {
                    what: "Get ACPI Power State",
                    len: 1,
                    need: 2,
                }),
            ),
            (
                &[],
                Err(DecodeError::Short {
                    what: "Get ACPI Power State",
                    len: 0,
                    need: 2,
                }),
            ),
        ];
        for (data, want) in cases {
            assert_eq!(&acpi_power_state(data), want, "{data:02x?}");
        }
    }

    #[test]
    fn chassis_status_answers() {
        let cases: &[(&[u8], Option<bool>)] = &[
            (&[0x61, 0x00, 0x00], Some(true)),
            (&[0x60, 0x00, 0x00], Some(false)),
            (&[0x01, 0x00, 0x00, 0x00], Some(true)),
            (&[0x01, 0x00], None),
            (&[], None),
        ];
        for (data, want) in cases {
            assert_eq!(chassis_power_on(data).ok(), *want, "{data:02x?}");
        }
    }

    #[test]
    fn sel_records() {
        let acpi = |id, off| {
            Some((
                id,
                SelKind::Acpi(AcpiState::from_sel_offset(off).expect("offset")),
            ))
        };
        type Followed = Option<(u16, SelKind)>;
        let cases: Vec<([u8; 16], Followed)> = vec![
            (record(0x0012, 0x22, 0x6F, 0x05), acpi(0x0012, 0x05)),
            (record(0x0013, 0x22, 0x6F, 0x02), acpi(0x0013, 0x02)),
            (record(0x0014, 0x22, 0x6F, 0x00), acpi(0x0014, 0x00)),
            // Bits 7:4 of event data 1 are not part of the offset.
            (record(0x0015, 0x22, 0x6F, 0xA0), acpi(0x0015, 0x00)),
            (
                record(0x0016, 0x22, 0x6F, 0x0B),
                Some((0x0016, SelKind::Acpi(AcpiState::LegacyOn))),
            ),
            (
                record(0x0017, 0x22, 0x6F, 0x0E),
                Some((0x0017, SelKind::Acpi(AcpiState::Unknown))),
            ),
            (
                record(0x0100, 0x1D, 0x6F, 0x01),
                Some((0x0100, SelKind::BootRestart(1))),
            ),
            // A deassertion, another event type, another sensor type: not followed.
            (record(0x0018, 0x22, 0xEF, 0x05), None),
            (record(0x0019, 0x22, 0x03, 0x05), None),
            (record(0x001A, 0x01, 0x01, 0x05), None),
        ];
        for (r, want) in cases {
            let got = sel_record(&r)
                .expect("decodes")
                .map(|e| (e.record_id, e.kind));
            assert_eq!(got, want, "{r:02x?}");
        }
        let e = sel_record(&record(0x0102, 0x22, 0x6F, 0x05))
            .expect("decodes")
            .expect("followed");
        assert_eq!(e.bmc_time, 0x1234_5678);
        let at = Duration::from_secs(3);
        assert_eq!(
            e.observation(at),
            Observation::SelAcpi {
                at,
                state: AcpiState::S5G2,
                record_id: 0x0102
            }
        );
        let mut oem = record(0x0020, 0x22, 0x6F, 0x05);
        oem[2] = 0xC0;
        assert_eq!(sel_record(&oem), Ok(None));
        assert_eq!(
            sel_record(&record(0x0021, 0x22, 0x6F, 0x0D)),
            Err(DecodeError::UnknownAcpiOffset {
                record_id: 0x0021,
                offset: 0x0D
            })
        );
        assert!(matches!(
            sel_record(&[0x01, 0x00, 0x02]),
            Err(DecodeError::Short { len: 3, .. })
        ));
    }
}
