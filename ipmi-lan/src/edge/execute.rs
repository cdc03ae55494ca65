//! `xyz.openbmc_project.Ipmi.Server.execute`, called as netipmid calls it on a session-based
//! channel, with a deadline; and Get System GUID through it at start-up.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Result, bail};
use openbmc_vocab::ipmi::{EXECUTE_METHOD, cmd, netfn, option};
use openbmc_vocab::names::{bus, iface, path};
use tokio::sync::mpsc;

use crate::core::{ExecuteReply, ExecuteRequest, Privilege};

/// Carry out one `execute` for the core and hand the reply back through `tx`.
pub(super) async fn execute(
    conn: zbus::Connection,
    req: ExecuteRequest,
    timeout: Duration,
    tx: mpsc::UnboundedSender<(u64, ExecuteReply)>,
) {
    let token = req.token;
    let reply = match tokio::time::timeout(timeout, call_execute(&conn, &req)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            log::warn!("execute netfn {:#04x} cmd {:#04x}: {e}", req.netfn, req.cmd);
            ExecuteReply::Failed
        }
        Err(_) => {
            log::warn!(
                "execute netfn {:#04x} cmd {:#04x}: no answer within {timeout:?}",
                req.netfn,
                req.cmd
            );
            ExecuteReply::Failed
        }
    };
    let _ = tx.send((token, reply));
}

/// One `execute` call, with the options netipmid passes on a session-based channel.
async fn call_execute(conn: &zbus::Connection, req: &ExecuteRequest) -> zbus::Result<ExecuteReply> {
    let mut options: HashMap<&str, zbus::Variant<'_>> = HashMap::new();
    options.insert(
        option::PRIVILEGE,
        zbus::Variant::from(i32::from(req.privilege.level())),
    );
    options.insert(option::USER_ID, zbus::Variant::from(i32::from(req.user_id)));
    options.insert(
        option::CURRENT_SESSION_ID,
        zbus::Variant::from(req.session_id),
    );
    let msg = conn
        .call_method(
            Some(bus::IPMI_HOST),
            path::IPMI,
            Some(iface::IPMI_SERVER),
            EXECUTE_METHOD,
            &(req.netfn, req.lun, req.cmd, &req.data, options),
        )
        .await?;
    let body = msg.body();
    // Upstream returns one struct (yyyyay); accept the flattened form too.
    let (_netfn, _lun, _cmd, cc, data) = match body.deserialize::<((u8, u8, u8, u8, Vec<u8>),)>() {
        Ok((r,)) => r,
        Err(_) => body.deserialize::<(u8, u8, u8, u8, Vec<u8>)>()?,
    };
    Ok(ExecuteReply::Ok { cc, data })
}

/// Get System GUID (App 0x37) from the command server, so the GUID in RAKP 2 is the one
/// `ipmitool mc guid` shows.
pub(super) async fn system_guid(conn: &zbus::Connection, timeout: Duration) -> Result<[u8; 16]> {
    let req = ExecuteRequest {
        token: 0,
        netfn: netfn::APP,
        lun: 0,
        cmd: cmd::app::GET_SYSTEM_GUID,
        data: Vec::new(),
        privilege: Privilege::User,
        user_id: 0,
        session_id: 0,
    };
    match tokio::time::timeout(timeout, call_execute(conn, &req)).await {
        Ok(Ok(ExecuteReply::Ok { cc: 0, data })) => <[u8; 16]>::try_from(data.as_slice())
            .map_err(|_| anyhow::anyhow!("Get System GUID answered {} bytes", data.len())),
        Ok(Ok(ExecuteReply::Ok { cc, .. })) => bail!("Get System GUID: completion code {cc:#04x}"),
        Ok(Ok(ExecuteReply::Failed)) => bail!("Get System GUID failed"),
        Ok(Err(e)) => Err(e.into()),
        Err(_) => bail!("no answer within {timeout:?}"),
    }
}
