//! NetFn App: device identity, self test, GUIDs, ACPI power state (Set/Get ACPI Power State,
//! IPMI 2.0 section 20.6-20.7).

use openbmc_vocab::acpi::{AcpiState, IPMI_NO_CHANGE};

use super::platform::PlatformView;
use super::{Cc, Core, Effect, Reply, Request};

/// Bit 7 of either Set ACPI byte: "set this state".
const SET_BIT: u8 = 0x80;

fn no_data(req: &Request) -> Result<(), Cc> {
    if req.data.is_empty() {
        Ok(())
    } else {
        Err(Cc::ReqDataLenInvalid)
    }
}

fn bcd(n: u8) -> u8 {
    ((n / 10 % 10) << 4) | (n % 10)
}

pub(super) fn get_device_id(core: &Core, req: &Request, _: &PlatformView) -> Result<Reply, Cc> {
    no_data(req)?;
    let d = &core.config().device_id;
    let mut out = vec![
        d.id,
        d.revision,
        d.fw_major & 0x7F, // bit 7 clear: device available (not updating)
        bcd(d.fw_minor),
        0x02, // IPMI 2.0
        d.addn_dev_support,
    ];
    out.extend_from_slice(&(d.manuf_id & 0x000F_FFFF).to_le_bytes()[..3]);
    out.extend_from_slice(&d.prod_id.to_le_bytes());
    out.extend_from_slice(&d.aux.to_le_bytes());
    Ok(Reply::data(out))
}

pub(super) fn get_self_test(_: &Core, req: &Request, _: &PlatformView) -> Result<Reply, Cc> {
    no_data(req)?;
    // 0x55: no error; second byte 0.
    Ok(Reply::data(vec![0x55, 0x00]))
}

pub(super) fn get_device_guid(core: &Core, req: &Request, _: &PlatformView) -> Result<Reply, Cc> {
    no_data(req)?;
    Ok(Reply::data(core.config().device_guid.to_vec()))
}

pub(super) fn get_system_guid(core: &Core, req: &Request, _: &PlatformView) -> Result<Reply, Cc> {
    no_data(req)?;
    Ok(Reply::data(core.config().system_guid.to_vec()))
}

/// What one Set ACPI byte asks for: nothing, or a state. Validated before anything is
/// written, for both bytes.
fn requested(byte: u8, parse: fn(u8) -> Option<AcpiState>) -> Result<Option<AcpiState>, Cc> {
    if byte & SET_BIT == 0 {
        return Ok(None);
    }
    let code = byte & !SET_BIT;
    if code == IPMI_NO_CHANGE {
        return Ok(None);
    }
    parse(code).map(Some).ok_or(Cc::ParmOutOfRange)
}

pub(super) fn set_acpi(_: &Core, req: &Request, view: &PlatformView) -> Result<Reply, Cc> {
    let [sys, dev] = req.data[..] else {
        return Err(Cc::ReqDataLenInvalid);
    };
    // Both bytes are checked before either effect exists: a bad device byte cannot leave a
    // half-applied request behind (upstream writes the system state first).
    let sys = requested(sys, AcpiState::from_ipmi_system_code)?;
    let dev = requested(dev, AcpiState::from_ipmi_device_code)?;
    let mut effects = Vec::new();
    if let Some(s) = sys {
        effects.push(Effect::SetSysAcpi(s));
    }
    if let Some(d) = dev {
        effects.push(Effect::SetDevAcpi(d));
    }
    // Two writes, system state first: the one acpi-state-daemon may refuse (a running state
    // while power is off) goes first, so its refusal leaves everything as it was. Should the
    // device write then fail, the system state is put back to what it was, so the command is
    // all or nothing and Get ACPI reads the state from before it. Without the state from
    // before there is nothing to put back: refuse rather than risk half a write.
    let mut undo = Vec::new();
    if let (Some(s), Some(_)) = (sys, dev) {
        let (before, _) = view.acpi.ok_or(Cc::UnspecifiedError)?;
        // Writing the state it already had changed nothing, so nothing is to be taken back.
        undo.push((before != s).then_some(Effect::SetSysAcpi(before)));
    }
    Ok(Reply::with(Vec::new(), effects).with_undo(undo))
}

pub(super) fn get_acpi(_: &Core, req: &Request, view: &PlatformView) -> Result<Reply, Cc> {
    no_data(req)?;
    let (sys, dev) = view.acpi.ok_or(Cc::UnspecifiedError)?;
    Ok(Reply::data(vec![
        sys.ipmi_system_code(),
        dev.ipmi_device_code(),
    ]))
}
