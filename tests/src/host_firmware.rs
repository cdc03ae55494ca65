//! The host firmware model: power-on, POST codes, memory enumeration over the shared SMBus
//! (one SPD read per DIMM, each a run of timed transfers; a failed read skips that DIMM for
//! this boot), the ACPI states the firmware reports the way ipmid writes them, warm resets
//! that re-enumerate memory without S5, clean shutdowns and abrupt power loss.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use openbmc_vocab::acpi::AcpiState;
use openbmc_vocab::ipmi::{cmd, netfn};
use openbmc_vocab::state::ChassisPowerState;

use crate::smbus::firmware::{ScanReport, SpdScan};
use crate::world::{Mark, World};

/// Firmware timing.
#[derive(Debug, Clone)]
pub struct Timing {
    /// Power-on (or reset) to the start of memory enumeration.
    pub to_enum: Duration,
    /// Whether the firmware sends S2 before enumerating (well-behaved) or only after it has
    /// started (the case the early firmware-init signs exist for).
    pub s2_first: bool,
    /// Enumeration end to the OS hand-off (S0).
    pub to_s0: Duration,
    /// SPD bytes read per DIMM.
    pub spd_bytes: u16,
    /// Report states with IPMI Set ACPI Power State over the KCS channel (through the real
    /// ipmi-handlers) instead of writing the ACPI object as ipmid would.
    pub via_ipmi: bool,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            to_enum: Duration::from_millis(60),
            s2_first: true,
            to_s0: Duration::from_millis(10),
            spd_bytes: 24,
            via_ipmi: false,
        }
    }
}

/// What one boot (cold or warm) came to.
#[derive(Debug, Clone)]
pub struct BootReport {
    pub warm: bool,
    pub scan: ScanReport,
    /// DIMMs fitted.
    pub present: usize,
    /// When S0 was sent.
    pub s0_at: Instant,
}

impl BootReport {
    pub fn lost(&self) -> usize {
        self.present.saturating_sub(self.scan.found.len())
    }
}

impl World {
    /// The firmware reports an ACPI state: through IPMI Set ACPI Power State on the KCS
    /// channel when `via_ipmi` (and ipmi-handlers runs), else by writing the ACPI object the
    /// way ipmid's handler does.
    async fn report(&self, s: AcpiState, via_ipmi: bool) -> Result<()> {
        if via_ipmi && let Some(kcs) = self.kcs.as_ref() {
            self.mark(Mark::Host(format!("IPMI Set ACPI {s}")));
            // Byte 1: bit 7 "set system state" + code; byte 2: bit 7 clear, device unchanged.
            let data = [0x80 | s.ipmi_system_code(), 0x00];
            kcs.ok(netfn::APP, cmd::app::SET_ACPI_POWER_STATE, &data)
                .await
                .with_context(|| format!("host reporting {s} over IPMI"))?;
            return Ok(());
        }
        self.mark(Mark::Host(format!("sends {s}")));
        self.acpi
            .set_sys(s)
            .await
            .with_context(|| format!("host reporting {s}"))
    }

    async fn enumerate(&mut self, t: &Timing) -> Result<ScanReport> {
        let mut scan = SpdScan::ddr4(8);
        scan.bytes = t.spd_bytes;
        self.mark(Mark::Host("memory enumeration".into()));
        let handle = scan.spawn(&self.smbus);
        if !t.s2_first {
            // Late S2: the firmware is already on the bus when it says so.
            tokio::time::sleep(Duration::from_millis(2)).await;
            self.report(AcpiState::S2D2, t.via_ipmi).await?;
        }
        let bus_scan = tokio::task::spawn_blocking(move || handle.join());
        let report = bus_scan
            .await
            .context("scan task")?
            .map_err(|_| anyhow::anyhow!("SPD scan thread panicked"))?;
        Ok(report)
    }

    async fn post_and_enumerate(&mut self, t: &Timing, warm: bool) -> Result<BootReport> {
        self.postd.post(0x01).await?;
        if t.s2_first {
            self.report(AcpiState::S2D2, t.via_ipmi).await?;
        }
        tokio::time::sleep(t.to_enum).await;
        self.postd.post(0x19).await?;
        let scan = self.enumerate(t).await?;
        self.postd.post(0x62).await?;
        tokio::time::sleep(t.to_s0).await;
        let s0_at = Instant::now();
        self.report(AcpiState::S0G0D0, t.via_ipmi).await?;
        self.open_window(s0_at);
        Ok(BootReport {
            warm,
            present: usize::from(self.opts.dimms),
            scan,
            s0_at,
        })
    }

    /// Power on from off and boot to S0.
    pub async fn cold_boot(&mut self, t: &Timing) -> Result<BootReport> {
        self.mark(Mark::Host("power on".into()));
        self.smbus.set_powered(true);
        self.chassis.set_power(ChassisPowerState::On).await?;
        self.post_and_enumerate(t, false).await
    }

    /// Reset while working: memory is enumerated again, without S5.
    pub async fn warm_reset(&mut self, t: &Timing) -> Result<BootReport> {
        let at = Instant::now();
        self.mark(Mark::Host("warm reset".into()));
        self.close_window(at);
        self.post_and_enumerate(t, true).await
    }

    /// The OS shuts down: S5, then power off.
    pub async fn shutdown(&mut self, via_ipmi: bool) -> Result<()> {
        // The OS has stopped when the firmware reports S5; from then on the host is not in S0
        // (KCS is synchronous: the host waits for the BMC's answer before it powers off).
        self.report(AcpiState::S5G2, via_ipmi).await?;
        self.close_window(Instant::now());
        self.mark(Mark::Host("power off".into()));
        self.chassis.set_power(ChassisPowerState::Off).await?;
        self.smbus.set_powered(false);
        Ok(())
    }

    /// Power is cut: nobody says S5.
    pub async fn power_loss(&mut self) -> Result<()> {
        self.close_window(Instant::now());
        self.mark(Mark::Host("power lost".into()));
        self.chassis.set_power(ChassisPowerState::Off).await?;
        self.smbus.set_powered(false);
        Ok(())
    }
}
