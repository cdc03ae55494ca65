//! NetFn Chassis: status and power control.

use openbmc_vocab::state::{ChassisTransition, HostTransition};

use super::platform::PlatformView;
use super::{Cc, Core, Effect, Reply, Request};

/// Get Chassis Status byte 1, bits 6:5: power restore policy unknown (we do not own one).
const RESTORE_POLICY_UNKNOWN: u8 = 0b11 << 5;

pub(super) fn status(_: &Core, req: &Request, view: &PlatformView) -> Result<Reply, Cc> {
    if !req.data.is_empty() {
        return Err(Cc::ReqDataLenInvalid);
    }
    let power = view.chassis_power.ok_or(Cc::UnspecifiedError)?;
    let on = u8::from(power.is_on());
    // Byte 2 (last power event) and byte 3 (misc chassis state): nothing to report.
    Ok(Reply::data(vec![RESTORE_POLICY_UNKNOWN | on, 0x00, 0x00]))
}

pub(super) fn control(_: &Core, req: &Request, _: &PlatformView) -> Result<Reply, Cc> {
    let [action] = req.data[..] else {
        return Err(Cc::ReqDataLenInvalid);
    };
    let effect = match action & 0x0F {
        0x00 => Effect::Chassis(ChassisTransition::Off),
        0x01 => Effect::Host(HostTransition::On),
        0x02 => Effect::Chassis(ChassisTransition::PowerCycle),
        0x03 => Effect::Host(HostTransition::ForceWarmReboot),
        0x05 => Effect::Host(HostTransition::Off),
        // 0x04 (diagnostic interrupt) has no D-Bus transition.
        _ => return Err(Cc::InvalidFieldRequest),
    };
    if action & 0xF0 != 0 {
        return Err(Cc::InvalidFieldRequest);
    }
    Ok(Reply::with(Vec::new(), vec![effect]))
}
