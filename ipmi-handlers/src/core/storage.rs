//! NetFn Storage: the SEL and the SDR repository.

use super::platform::PlatformView;
use super::sel::{self, OEM_NON_TIMESTAMPED, RECORD_LEN};
use super::{Cc, Core, Effect, Quota, Reply, Request};

/// SEL and SDR format version 1.5 (as IPMI 2.0 keeps it).
const VERSION_1_5: u8 = 0x51;
/// Get SEL Info operation support: delete, reserve, get allocation info (no partial add).
const SEL_OPS: u8 = 0x08 | 0x02 | 0x01;
const SEL_OVERFLOW: u8 = 0x80;
/// Get SDR Repository Info operation support: reserve only (the repository is built from
/// D-Bus, not written by IPMI).
const SDR_OPS: u8 = 0x02;
/// "Read the whole record" in Get SEL Entry / Get SDR.
const READ_ALL: u8 = 0xFF;
/// Clear SEL confirmation bytes 'C' 'L' 'R' and actions.
const CLR: [u8; 3] = *b"CLR";
const CLEAR_INITIATE: u8 = 0xAA;
const CLEAR_GET_STATUS: u8 = 0x00;
const ERASE_COMPLETED: u8 = 0x01;

fn no_data(req: &Request) -> Result<(), Cc> {
    if req.data.is_empty() {
        Ok(())
    } else {
        Err(Cc::ReqDataLenInvalid)
    }
}

fn le16(b: &[u8]) -> u16 {
    u16::from_le_bytes([b[0], b[1]])
}

fn check_reservation(current: Option<u16>, given: u16) -> Result<(), Cc> {
    if current == Some(given) {
        Ok(())
    } else {
        Err(Cc::ReservationCancelled)
    }
}

/// Bytes `offset..offset+count` of `record` (count 0xFF: to the end).
fn slice(record: &[u8], offset: u8, count: u8) -> Result<&[u8], Cc> {
    let offset = usize::from(offset);
    if offset > record.len() {
        return Err(Cc::ParmOutOfRange);
    }
    let end = if count == READ_ALL {
        record.len()
    } else {
        (offset + usize::from(count)).min(record.len())
    };
    Ok(&record[offset..end])
}

pub(super) fn sel_info(core: &Core, req: &Request, _: &PlatformView) -> Result<Reply, Cc> {
    no_data(req)?;
    let s = core.sel();
    let free = (s.free_records() * RECORD_LEN).min(0xFFFE) as u16;
    let mut out = vec![VERSION_1_5];
    out.extend_from_slice(&(s.len() as u16).to_le_bytes());
    out.extend_from_slice(&free.to_le_bytes());
    out.extend_from_slice(&s.last_add().to_le_bytes());
    out.extend_from_slice(&s.last_erase().to_le_bytes());
    out.push(SEL_OPS | if s.overflow() { SEL_OVERFLOW } else { 0 });
    Ok(Reply::data(out))
}

pub(super) fn sel_alloc_info(core: &Core, req: &Request, _: &PlatformView) -> Result<Reply, Cc> {
    no_data(req)?;
    let s = core.sel();
    let mut out = Vec::with_capacity(9);
    out.extend_from_slice(&(s.capacity() as u16).to_le_bytes()); // allocation units
    out.extend_from_slice(&(RECORD_LEN as u16).to_le_bytes()); // unit size
    out.extend_from_slice(&(s.free_records() as u16).to_le_bytes()); // free units
    out.extend_from_slice(&(s.free_records() as u16).to_le_bytes()); // largest free block
    out.push(1); // maximum record size in units
    Ok(Reply::data(out))
}

pub(super) fn reserve_sel(core: &Core, req: &Request, _: &PlatformView) -> Result<Reply, Cc> {
    reserve(core, req, Effect::SelReserve)
}

/// Reserve SEL / Reserve SDR Repository: a fresh ID, remembered by the effect.
fn reserve(core: &Core, req: &Request, remember: fn(u16) -> Effect) -> Result<Reply, Cc> {
    no_data(req)?;
    let id = core.next_reservation();
    Ok(Reply::with(id.to_le_bytes().to_vec(), vec![remember(id)]))
}

/// The request of Get SEL Entry and Get SDR: reservation, record ID, offset, byte count.
fn record_read(req: &Request) -> Result<(u16, u16, u8, u8), Cc> {
    match req.data[..] {
        [r0, r1, i0, i1, offset, count] => Ok((
            u16::from_le_bytes([r0, r1]),
            u16::from_le_bytes([i0, i1]),
            offset,
            count,
        )),
        _ => Err(Cc::ReqDataLenInvalid),
    }
}

pub(super) fn get_sel_entry(core: &Core, req: &Request, _: &PlatformView) -> Result<Reply, Cc> {
    let (res, id, offset, count) = record_read(req)?;
    // The reservation matters only for partial reads (spec: "use 0000h otherwise").
    let partial = offset != 0 || (count != READ_ALL && usize::from(count) < RECORD_LEN);
    if partial {
        check_reservation(core.sel_reservation, res)?;
    }
    let s = core.sel();
    let pos = s.position(id).ok_or(Cc::SensorNotPresent)?;
    let record = s.get(pos).ok_or(Cc::SensorNotPresent)?;
    let mut out = s.next_id_after(pos).to_le_bytes().to_vec();
    out.extend_from_slice(slice(record, offset, count)?);
    Ok(Reply::data(out))
}

pub(super) fn add_sel_entry(core: &Core, req: &Request, view: &PlatformView) -> Result<Reply, Cc> {
    let Ok(mut record) = <[u8; RECORD_LEN]>::try_from(&req.data[..]) else {
        return Err(Cc::ReqDataLenInvalid);
    };
    let at = core.sel_time(view.now.wall_secs());
    // Timestamped record types get the BMC's time; OEM non-timestamped ones keep theirs.
    if record[2] < OEM_NON_TIMESTAMPED {
        record[3..7].copy_from_slice(&at.to_le_bytes());
    }
    let id = core.sel().peek_next_id();
    Ok(Reply::with(
        id.to_le_bytes().to_vec(),
        vec![Effect::SelAdd {
            record,
            at,
            quota: Some(Quota {
                channel: req.channel.number,
                at: view.now.mono,
            }),
        }],
    ))
}

pub(super) fn delete_sel_entry(core: &Core, req: &Request, _: &PlatformView) -> Result<Reply, Cc> {
    if req.data.len() != 4 {
        return Err(Cc::ReqDataLenInvalid);
    }
    check_reservation(core.sel_reservation, le16(&req.data[0..]))?;
    let s = core.sel();
    let pos = s
        .position(le16(&req.data[2..]))
        .ok_or(Cc::SensorNotPresent)?;
    let id = s.get(pos).map(sel::record_id).ok_or(Cc::SensorNotPresent)?;
    Ok(Reply::with(
        id.to_le_bytes().to_vec(),
        vec![Effect::SelDelete(id)],
    ))
}

pub(super) fn clear_sel(core: &Core, req: &Request, view: &PlatformView) -> Result<Reply, Cc> {
    if req.data.len() != 6 {
        return Err(Cc::ReqDataLenInvalid);
    }
    check_reservation(core.sel_reservation, le16(&req.data[0..]))?;
    if req.data[2..5] != CLR {
        return Err(Cc::InvalidFieldRequest);
    }
    match req.data[5] {
        // Erasure is immediate, so it is always complete.
        CLEAR_GET_STATUS => Ok(Reply::data(vec![ERASE_COMPLETED])),
        CLEAR_INITIATE => Ok(Reply::with(
            vec![ERASE_COMPLETED],
            vec![Effect::SelClear {
                at: core.sel_time(view.now.wall_secs()),
            }],
        )),
        _ => Err(Cc::InvalidFieldRequest),
    }
}

pub(super) fn get_sel_time(core: &Core, req: &Request, view: &PlatformView) -> Result<Reply, Cc> {
    no_data(req)?;
    Ok(Reply::data(
        core.sel_time(view.now.wall_secs()).to_le_bytes().to_vec(),
    ))
}

pub(super) fn set_sel_time(_: &Core, req: &Request, view: &PlatformView) -> Result<Reply, Cc> {
    let Ok(t) = <[u8; 4]>::try_from(&req.data[..]) else {
        return Err(Cc::ReqDataLenInvalid);
    };
    // The SEL keeps its own clock as an offset from the BMC's; the BMC clock is left alone
    // (time sync is the job of the BMC's time service).
    let offset = i64::from(u32::from_le_bytes(t)) - i64::from(view.now.wall_secs());
    Ok(Reply::with(Vec::new(), vec![Effect::SelTimeOffset(offset)]))
}

pub(super) fn sdr_info(core: &Core, req: &Request, view: &PlatformView) -> Result<Reply, Cc> {
    no_data(req)?;
    let count = core.sdrs(view).len() as u16;
    let mut out = vec![VERSION_1_5];
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes()); // free space: not writable over IPMI
    out.extend_from_slice(&core.sdr_changed_at.to_le_bytes());
    out.extend_from_slice(&sel::NO_TIMESTAMP.to_le_bytes()); // never erased
    out.push(SDR_OPS);
    Ok(Reply::data(out))
}

pub(super) fn reserve_sdr(core: &Core, req: &Request, _: &PlatformView) -> Result<Reply, Cc> {
    reserve(core, req, Effect::SdrReserve)
}

pub(super) fn get_sdr(core: &Core, req: &Request, view: &PlatformView) -> Result<Reply, Cc> {
    let (res, id, offset, count) = record_read(req)?;
    // Spec: the reservation is required only for reads at a non-zero offset.
    if offset != 0 {
        check_reservation(core.sdr_reservation, res)?;
    }
    let sdrs = core.sdrs(view);
    let pos = match id {
        sel::FIRST_ID if !sdrs.is_empty() => Some(0),
        sel::LAST_ID if !sdrs.is_empty() => Some(sdrs.len() - 1),
        _ => sdrs.iter().position(|(rid, _)| *rid == id),
    }
    .ok_or(Cc::SensorNotPresent)?;
    let next = sdrs
        .get(pos + 1)
        .map(|(rid, _)| *rid)
        .unwrap_or(sel::LAST_ID);
    let mut out = next.to_le_bytes().to_vec();
    out.extend_from_slice(slice(&sdrs[pos].1, offset, count)?);
    Ok(Reply::data(out))
}
