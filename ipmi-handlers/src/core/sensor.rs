//! NetFn Sensor/Event: readings, thresholds, platform events.

use super::platform::{PlatformView, SensorSnapshot};
use super::sdr::{self, Linear};
use super::sel::{EVM_REV, SystemEvent};
use super::types::ChannelKind;
use super::{Cc, Core, Effect, Quota, Reply, Request};

/// The sensor a number names.
enum Target<'a> {
    Acpi,
    Temperature(&'a SensorSnapshot),
}

fn target<'a>(core: &Core, view: &'a PlatformView, number: u8) -> Result<Target<'a>, Cc> {
    let key = core.numbers().key(number).ok_or(Cc::SensorNotPresent)?;
    if key == core.config().acpi_sensor_key {
        return Ok(Target::Acpi);
    }
    // A number whose sensor is gone: not present (its number stays reserved for it).
    view.sensor(key)
        .map(Target::Temperature)
        .ok_or(Cc::SensorNotPresent)
}

fn one_byte(req: &Request) -> Result<u8, Cc> {
    match req.data[..] {
        [n] => Ok(n),
        _ => Err(Cc::ReqDataLenInvalid),
    }
}

pub(super) fn get_reading(core: &Core, req: &Request, view: &PlatformView) -> Result<Reply, Cc> {
    let number = one_byte(req)?;
    let enabled = sdr::READING_EVENTS_ENABLED | sdr::READING_SCANNING_ENABLED;
    match target(core, view, number)? {
        Target::Acpi => {
            let Some((sys, _)) = view.acpi else {
                return Ok(Reply::data(vec![
                    0x00,
                    enabled | sdr::READING_UNAVAILABLE,
                    0x00,
                    0x80,
                ]));
            };
            let bits = 1u16 << sys.sel_offset();
            Ok(Reply::data(vec![
                0x00,
                enabled,
                (bits & 0xFF) as u8,
                // Byte 4 bit 7 is reserved and returned as 1.
                0x80 | ((bits >> 8) as u8 & 0x7F),
            ]))
        }
        Target::Temperature(s) => {
            let lin = Linear::for_range(s.min, s.max);
            // Unavailable (gated) or NaN: flag it, as upstream does, so ipmitool prints "ns".
            let (raw, flags) = match lin.to_raw(s.value) {
                Some(raw) if s.available => (raw, enabled),
                _ => (0, enabled | sdr::READING_UNAVAILABLE),
            };
            let mut status = 0u8;
            for (alarm, bit) in [
                (s.warning_alarm_low, sdr::LNC),
                (s.critical_alarm_low, sdr::LC),
                (s.warning_alarm_high, sdr::UNC),
                (s.critical_alarm_high, sdr::UC),
            ] {
                if alarm {
                    status |= bit;
                }
            }
            Ok(Reply::data(vec![raw, flags, status]))
        }
    }
}

pub(super) fn get_thresholds(core: &Core, req: &Request, view: &PlatformView) -> Result<Reply, Cc> {
    let number = one_byte(req)?;
    let Target::Temperature(s) = target(core, view, number)? else {
        return Err(Cc::IllegalCommandForSensor);
    };
    let lin = Linear::for_range(s.min, s.max);
    let raw = |v: f64| {
        if v.is_finite() {
            lin.to_raw(v).unwrap_or(0)
        } else {
            0
        }
    };
    Ok(Reply::data(vec![
        sdr::readable_mask(s),
        raw(s.warning_low),
        raw(s.critical_low),
        0x00, // LNR: none on D-Bus
        raw(s.warning_high),
        raw(s.critical_high),
        0x00, // UNR
    ]))
}

/// Sensor types the spec defines (0x01–0x2C) and OEM (0xC0–0xFF); 0x00 and 0x2D–0xBF are
/// reserved.
fn sensor_type_valid(t: u8) -> bool {
    (0x01..=0x2C).contains(&t) || t >= 0xC0
}

pub(super) fn platform_event(core: &Core, req: &Request, view: &PlatformView) -> Result<Reply, Cc> {
    // From the system interface the message starts with the software generator ID; from
    // elsewhere the generator is the requester (rqSA) and the message starts at EvMRev.
    let (generator_id, msg) = if req.channel.kind == ChannelKind::SystemInterface {
        let Some((&gen_id, rest)) = req.data.split_first() else {
            return Err(Cc::ReqDataLenInvalid);
        };
        // Software IDs have bit 0 set.
        if gen_id & 0x01 == 0 {
            return Err(Cc::InvalidFieldRequest);
        }
        (u16::from(gen_id), rest)
    } else {
        let sa = req.rq_sa.unwrap_or(sdr::BMC_SLAVE_ADDR);
        let chan_lun = ((req.channel.number & 0x0F) << 4) | (req.lun & 0x03);
        (u16::from_le_bytes([sa, chan_lun]), &req.data[..])
    };
    if !(5..=7).contains(&msg.len()) {
        return Err(Cc::ReqDataLenInvalid);
    }
    let (evm_rev, sensor_type, sensor_number, dir_type) = (msg[0], msg[1], msg[2], msg[3]);
    if evm_rev != EVM_REV || !sensor_type_valid(sensor_type) {
        return Err(Cc::InvalidFieldRequest);
    }
    // Event data 2 and 3 are optional; absent ones read as "unspecified".
    let mut data = [0xFF; 3];
    data[..msg.len() - 4].copy_from_slice(&msg[4..]);
    let at = core.sel_time(view.now.wall_secs());
    let record = SystemEvent {
        timestamp: at,
        generator_id,
        sensor_type,
        sensor_number,
        event_dir_type: dir_type,
        data,
    }
    .to_record();
    let quota = Some(Quota {
        channel: req.channel.number,
        at: view.now.mono,
    });
    Ok(Reply::with(
        Vec::new(),
        vec![Effect::SelAdd { record, at, quota }],
    ))
}
