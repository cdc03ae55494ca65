//! An IPMI client of our ipmi-handlers: calls `xyz.openbmc_project.Ipmi.Server.execute` the
//! way kcsbridge does (owning a channel name, which is how ipmi-handlers tells channels
//! apart) or the way busctl does (owning none), and walks the SEL and the SDR as ipmitool
//! does.
//!
//! Harness, not simulator: it drives and reads our own daemon. The host firmware of the
//! simulated server ([`crate::world`]) uses it as its KCS channel.

use std::collections::HashMap;

use anyhow::{Context, Result, bail};
use openbmc_vocab::names::{bus, iface, path};
use zbus::{Connection, OwnedVariant};

use crate::harness::PrivateBus;

/// One answer of `execute`: `(netfn|1, lun, cmd, cc, data)`.
pub type Answer = (u8, u8, u8, u8, Vec<u8>);

/// An IPMI caller with its own connection.
pub struct IpmiCaller {
    conn: Connection,
    options: HashMap<String, OwnedVariant>,
}

impl IpmiCaller {
    /// A caller owning `xyz.openbmc_project.Ipmi.Channel.<channel>` (kcsbridge uses
    /// `ipmi_kcs3`), or no channel name at all (`None`, as busctl).
    pub async fn new(bus_: &PrivateBus, channel: Option<&str>) -> Result<Self> {
        let conn = bus_.connect().await?;
        // kcsbridge (sd-bus) answers every method call, with an error for objects it does not
        // serve; a zbus connection answers none until its object server is started. A caller
        // that owns a well-known name and never answers is asked by ipmi-handlers for its
        // sensors like anyone else, and each such question waits out the call deadline.
        conn.object_server();
        if let Some(ch) = channel {
            let name = format!("{}{ch}", bus::IPMI_CHANNEL_PREFIX);
            conn.request_name(name.as_str())
                .await
                .with_context(|| format!("owning {name}"))?;
        }
        Ok(Self {
            conn,
            options: HashMap::new(),
        })
    }

    /// Set an `a{sv}` option sent with every request (`privilege`, `userId`…), as int.
    pub fn option(&mut self, key: &str, value: i32) {
        self.options
            .insert(key.to_owned(), OwnedVariant::from(value));
    }

    pub async fn execute(&self, netfn: u8, cmd: u8, data: &[u8]) -> Result<Answer> {
        let reply = self
            .conn
            .call_method(
                Some(bus::IPMI_HOST),
                path::IPMI,
                Some(iface::IPMI_SERVER),
                "execute",
                &(netfn, 0u8, cmd, data.to_vec(), &self.options),
            )
            .await
            .context("calling execute")?;
        let body = reply.body();
        anyhow::ensure!(
            body.signature().to_string() == "(yyyyay)",
            "reply signature {}, not one struct (yyyyay)",
            body.signature()
        );
        let (answer,): (Answer,) = body.deserialize()?;
        anyhow::ensure!(
            answer.0 == netfn | 1 && answer.2 == cmd,
            "reply header {:?} for {netfn:#x}/{cmd:#x}",
            (answer.0, answer.1, answer.2)
        );
        Ok(answer)
    }

    /// Completion code and data; the caller checks the code.
    pub async fn cc_data(&self, netfn: u8, cmd: u8, data: &[u8]) -> Result<(u8, Vec<u8>)> {
        let a = self.execute(netfn, cmd, data).await?;
        Ok((a.3, a.4))
    }

    /// Data of a command that must succeed.
    pub async fn ok(&self, netfn: u8, cmd: u8, data: &[u8]) -> Result<Vec<u8>> {
        let (cc, d) = self.cc_data(netfn, cmd, data).await?;
        if cc != 0 {
            bail!("{netfn:#04x}/{cmd:#04x} {data:02x?}: completion code {cc:#04x}");
        }
        Ok(d)
    }

    /// Every SEL record, walked with Get SEL Entry as ipmitool does.
    pub async fn sel_records(&self) -> Result<Vec<[u8; 16]>> {
        let mut out = Vec::new();
        let mut id = 0u16;
        loop {
            let [lo, hi] = id.to_le_bytes();
            let (cc, d) = self.cc_data(0x0A, 0x43, &[0, 0, lo, hi, 0, 0xFF]).await?;
            if cc == 0xCB && out.is_empty() {
                return Ok(out);
            }
            anyhow::ensure!(
                cc == 0 && d.len() == 18,
                "Get SEL Entry {id:#x}: cc {cc:#x} {d:02x?}"
            );
            out.push(d[2..].try_into()?);
            id = u16::from_le_bytes([d[0], d[1]]);
            if id == 0xFFFF {
                return Ok(out);
            }
        }
    }

    /// Every SDR, read in pieces under a reservation as ipmitool does: (record ID, bytes).
    pub async fn sdrs(&self) -> Result<Vec<(u16, Vec<u8>)>> {
        let res = self.ok(0x0A, 0x22, &[]).await?;
        let mut out = Vec::new();
        let mut id = 0u16;
        loop {
            let [lo, hi] = id.to_le_bytes();
            let head = self.ok(0x0A, 0x23, &[res[0], res[1], lo, hi, 0, 5]).await?;
            anyhow::ensure!(head.len() == 7, "SDR header {head:02x?}");
            let next = u16::from_le_bytes([head[0], head[1]]);
            let this = u16::from_le_bytes([head[2], head[3]]);
            let mut rec = head[2..].to_vec();
            let total = 5 + usize::from(head[6]);
            while rec.len() < total {
                let off = rec.len() as u8;
                let n = (total - rec.len()).min(16) as u8;
                let part = self
                    .ok(0x0A, 0x23, &[res[0], res[1], lo, hi, off, n])
                    .await?;
                rec.extend_from_slice(&part[2..]);
            }
            out.push((this, rec));
            if next == 0xFFFF {
                return Ok(out);
            }
            id = next;
        }
    }

    /// SDR ID string → sensor number.
    pub async fn sensor_numbers(&self) -> Result<HashMap<String, u8>> {
        let mut m = HashMap::new();
        for (_, r) in self.sdrs().await? {
            let id_at = match r[3] {
                0x01 => 47,
                0x02 => 31,
                t => bail!("unexpected SDR type {t:#x}"),
            };
            let len = usize::from(r[id_at] & 0x1F);
            let name = String::from_utf8_lossy(&r[id_at + 1..id_at + 1 + len]).into_owned();
            m.insert(name, r[7]);
        }
        Ok(m)
    }
}
