//! phosphor-sel-logger's D-Bus method, with exactly upstream's signature
//! (openbmc/phosphor-sel-logger 9b3b0da982420b92faa3da40dd0551c37c9d6b10,
//! `include/sel_logger.hpp`, `src/sel_logger.cpp`): service and interface
//! `xyz.openbmc_project.Logging.IPMI` at `/xyz/openbmc_project/Logging/IPMI`,
//! `IpmiSelAdd(s message, s path, ay sel_data, b assert, q generator_id) -> q record_id`.
//! A call with another signature (an object path `o` for `path`) is refused by the bus
//! library, as sdbusplus refuses it; more than 3 event-data bytes are refused as upstream
//! refuses them. Each accepted call is recorded, in the order it came.

use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use openbmc_vocab::names::{bus, path};
use zbus::{Connection, interface};

use crate::BusAddress;

/// One accepted `IpmiSelAdd`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelAdd {
    pub message: String,
    pub path: String,
    pub sel_data: Vec<u8>,
    pub assert: bool,
    pub generator_id: u16,
    pub record_id: u16,
}

struct LoggingIpmi {
    calls: Arc<Mutex<Vec<SelAdd>>>,
    next_id: u16,
    /// Never answer (a sel-logger stuck on its journal or on phosphor-logging).
    hung: bool,
    /// Also write each accepted call to stderr as one line (the machine tier reads them from
    /// the journal, where upstream's records go too).
    echo: bool,
}

#[interface(name = "xyz.openbmc_project.Logging.IPMI")]
impl LoggingIpmi {
    #[zbus(name = "IpmiSelAdd")]
    async fn ipmi_sel_add(
        &mut self,
        message: String,
        path: String,
        sel_data: Vec<u8>,
        assert: bool,
        generator_id: u16,
    ) -> zbus::fdo::Result<u16> {
        if self.hung {
            return std::future::pending().await;
        }
        if sel_data.len() > 3 {
            return Err(zbus::fdo::Error::InvalidArgs("Event data too large".into()));
        }
        self.next_id = self.next_id.wrapping_add(1);
        let record_id = self.next_id;
        if self.echo {
            let data: Vec<String> = sel_data.iter().map(|b| format!("{b:#04x}")).collect();
            eprintln!(
                "IpmiSelAdd record {record_id}: message={message:?} path={path:?} \
                 sel_data=[{}] assert={assert} generator_id={generator_id:#06x}",
                data.join(",")
            );
        }
        if let Ok(mut c) = self.calls.lock() {
            c.push(SelAdd {
                message,
                path,
                sel_data,
                assert,
                generator_id,
                record_id,
            });
        }
        Ok(record_id)
    }
}

/// The simulated sel-logger.
pub struct SelLogger {
    _conn: Connection,
    calls: Arc<Mutex<Vec<SelAdd>>>,
}

impl SelLogger {
    pub async fn start(bus: &impl BusAddress) -> Result<Self> {
        Self::start_as(
            zbus::connection::Builder::address(bus.address()),
            false,
            false,
        )
        .await
    }

    /// One that takes the name and every call, and answers none.
    pub async fn start_hung(bus: &impl BusAddress) -> Result<Self> {
        Self::start_as(
            zbus::connection::Builder::address(bus.address()),
            true,
            false,
        )
        .await
    }

    /// On the system bus, each accepted call also written to stderr as one line (the machine
    /// tier's stand-in for phosphor-sel-logger, run as a systemd service).
    pub async fn start_on_system_bus() -> Result<Self> {
        Self::start_as(zbus::connection::Builder::system(), false, true).await
    }

    async fn start_as(
        builder: zbus::connection::Builder<'_>,
        hung: bool,
        echo: bool,
    ) -> Result<Self> {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let conn = builder
            .serve_at(
                path::LOGGING_IPMI,
                LoggingIpmi {
                    calls: calls.clone(),
                    next_id: 0,
                    hung,
                    echo,
                },
            )
            .name(bus::LOGGING_IPMI)
            .build()
            .await
            .context("sel-logger service")?;
        Ok(Self { _conn: conn, calls })
    }

    /// Every accepted call, in order.
    pub fn calls(&self) -> Vec<SelAdd> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }
}
