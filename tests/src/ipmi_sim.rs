//! For the IPMI bus tier: a caller of `xyz.openbmc_project.Ipmi.Server.execute` shaped like
//! kcsbridge (it owns a channel name) or like busctl (it owns none), and a third-party
//! temperature sensor service shaped like dbus-sensors (ObjectManager at
//! `/xyz/openbmc_project/sensors`, Sensor.Value + Availability + Threshold.Warning objects).

use std::collections::HashMap;

use anyhow::{Context, Result, bail};
use openbmc_vocab::names::{bus, iface, path};
use openbmc_vocab::sensor::Unit;
use zbus::object_server::SignalEmitter;
use zbus::{Connection, OwnedVariant, interface};

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

// ---------------------------------------------------------------- sensors

struct ValueIface {
    value: f64,
}

#[interface(name = "xyz.openbmc_project.Sensor.Value")]
impl ValueIface {
    #[zbus(property)]
    fn value(&self) -> f64 {
        self.value
    }
    #[zbus(property)]
    fn max_value(&self) -> f64 {
        127.0
    }
    #[zbus(property)]
    fn min_value(&self) -> f64 {
        -128.0
    }
    #[zbus(property)]
    fn unit(&self) -> Unit {
        Unit::DegreesC
    }
}

struct AvailabilityIface {
    available: bool,
}

#[interface(name = "xyz.openbmc_project.State.Decorator.Availability")]
impl AvailabilityIface {
    #[zbus(property)]
    fn available(&self) -> bool {
        self.available
    }
}

struct WarningIface {
    high: f64,
    alarm_high: bool,
}

#[interface(name = "xyz.openbmc_project.Sensor.Threshold.Warning")]
impl WarningIface {
    #[zbus(property)]
    fn warning_high(&self) -> f64 {
        self.high
    }
    #[zbus(property)]
    fn warning_low(&self) -> f64 {
        f64::NAN
    }
    #[zbus(property)]
    fn warning_alarm_high(&self) -> bool {
        self.alarm_high
    }
    #[zbus(property)]
    fn warning_alarm_low(&self) -> bool {
        false
    }
}

/// A temperature sensor service (e.g. dbus-sensors' hwmontemp) with its own connection.
pub struct TempSensors {
    conn: Connection,
}

impl TempSensors {
    pub async fn start(bus_: &PrivateBus, name: &str) -> Result<Self> {
        let conn = bus_.connect().await?;
        conn.object_server()
            .at(path::SENSORS, zbus::fdo::ObjectManager)
            .await?;
        conn.request_name(name).await?;
        Ok(Self { conn })
    }

    pub async fn add(&self, name: &str, value: f64, warning_high: f64) -> Result<()> {
        let p = path::temperature_sensor(name);
        let os = self.conn.object_server();
        os.at(p.as_str(), ValueIface { value }).await?;
        os.at(p.as_str(), AvailabilityIface { available: true })
            .await?;
        os.at(
            p.as_str(),
            WarningIface {
                high: warning_high,
                alarm_high: value >= warning_high,
            },
        )
        .await?;
        Ok(())
    }

    pub async fn remove(&self, name: &str) -> Result<()> {
        let p = path::temperature_sensor(name);
        let os = self.conn.object_server();
        os.remove::<WarningIface, _>(p.as_str()).await?;
        os.remove::<AvailabilityIface, _>(p.as_str()).await?;
        os.remove::<ValueIface, _>(p.as_str()).await?;
        Ok(())
    }

    /// Mark a sensor (un)available, as a gated sensor is, with PropertiesChanged.
    pub async fn set_available(&self, name: &str, available: bool) -> Result<()> {
        let p = path::temperature_sensor(name);
        let r = self
            .conn
            .object_server()
            .interface::<_, AvailabilityIface>(p.as_str())
            .await?;
        r.get_mut().await.available = available;
        let e: &SignalEmitter<'_> = r.signal_emitter();
        r.get().await.available_changed(e).await?;
        Ok(())
    }
}
