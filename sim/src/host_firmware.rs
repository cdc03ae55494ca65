//! The host firmware model: power-on, POST codes, memory enumeration over the shared SMBus
//! (one SPD read per DIMM, each a run of timed transfers; a failed read skips that DIMM for
//! this boot), the ACPI states the firmware reports (S2 at firmware init, S0 at the OS
//! hand-off, S5 at shutdown), firmware that starts enumerating before it sends S2, warm
//! resets that re-enumerate memory without S5, clean shutdowns and abrupt power loss.
//!
//! It is the other side of the problem acpigate solves: the second master on the DIMM bus
//! and the source of the ACPI states. It runs on a [`Board`], which gives it the hardware it
//! touches (the SMBus, port 80, power) and the channel its ACPI states take to the BMC
//! (over KCS to ipmi-handlers, or written as ipmid writes them), and keeps the record of what
//! it did; the harness's simulated server is one.

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use openbmc_vocab::acpi::AcpiState;
use openbmc_vocab::state::ChassisPowerState;

use crate::smbus::SimSmbus;
use crate::smbus::firmware::{ScanReport, SpdScan};

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
    /// ipmi-handlers) instead of writing the ACPI object as ipmid would (see
    /// [`Board::report`]).
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

/// What the firmware did, for the board's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostEvent {
    /// A step of power or boot, in words: "power on", "memory enumeration", "warm reset",
    /// "power off", "power lost".
    Step(&'static str),
    /// The firmware handed over to the OS (sent S0) at this instant: the host works from
    /// then on.
    EnteredS0(Instant),
    /// The host stopped working at this instant: a warm reset, the OS's shutdown (after
    /// S5), or power lost.
    LeftS0(Instant),
}

/// The board the firmware runs on. The simulated server implements it with the services
/// of [`crate::platform`]; a unit test can implement it with a log.
pub trait Board {
    /// The DIMM SMBus, shared with the BMC.
    fn smbus(&self) -> &SimSmbus;
    /// DIMMs fitted.
    fn dimms(&self) -> u8;
    /// The firmware writes `code` to port 80 (phosphor-host-postd snoops it:
    /// [`crate::platform::PostCodes::post`]).
    fn post(&self, code: u8) -> impl Future<Output = Result<()>>;
    /// Power goes on or off (power-good as power control sees it:
    /// [`crate::platform::Chassis::set_power`]).
    fn set_power(&mut self, p: ChassisPowerState) -> impl Future<Output = Result<()>>;
    /// The firmware tells the BMC it is in `s`: with IPMI Set ACPI Power State over KCS when
    /// `via_ipmi` and the board has that channel, else by writing the ACPI object the way
    /// ipmid's handler does. Returns once the BMC has taken it (KCS is synchronous).
    fn report(&self, s: AcpiState, via_ipmi: bool) -> impl Future<Output = Result<()>>;
    /// Note what the firmware did, when it did it.
    fn record(&mut self, e: HostEvent);
}

async fn enumerate(board: &mut impl Board, t: &Timing) -> Result<ScanReport> {
    let mut scan = SpdScan::ddr4(8);
    scan.bytes = t.spd_bytes;
    board.record(HostEvent::Step("memory enumeration"));
    let handle = scan.spawn(board.smbus());
    if !t.s2_first {
        // Late S2: the firmware is already on the bus when it says so.
        tokio::time::sleep(Duration::from_millis(2)).await;
        board.report(AcpiState::S2D2, t.via_ipmi).await?;
    }
    let bus_scan = tokio::task::spawn_blocking(move || handle.join());
    let report = bus_scan
        .await
        .context("scan task")?
        .map_err(|_| anyhow::anyhow!("SPD scan thread panicked"))?;
    Ok(report)
}

async fn post_and_enumerate(board: &mut impl Board, t: &Timing, warm: bool) -> Result<BootReport> {
    board.post(0x01).await?;
    if t.s2_first {
        board.report(AcpiState::S2D2, t.via_ipmi).await?;
    }
    tokio::time::sleep(t.to_enum).await;
    board.post(0x19).await?;
    let scan = enumerate(board, t).await?;
    board.post(0x62).await?;
    tokio::time::sleep(t.to_s0).await;
    let s0_at = Instant::now();
    board.report(AcpiState::S0G0D0, t.via_ipmi).await?;
    board.record(HostEvent::EnteredS0(s0_at));
    Ok(BootReport {
        warm,
        present: usize::from(board.dimms()),
        scan,
        s0_at,
    })
}

/// Power on from off and boot to S0.
pub async fn cold_boot(board: &mut impl Board, t: &Timing) -> Result<BootReport> {
    board.record(HostEvent::Step("power on"));
    board.smbus().set_powered(true);
    board.set_power(ChassisPowerState::On).await?;
    post_and_enumerate(board, t, false).await
}

/// Reset while working: memory is enumerated again, without S5.
pub async fn warm_reset(board: &mut impl Board, t: &Timing) -> Result<BootReport> {
    let at = Instant::now();
    board.record(HostEvent::Step("warm reset"));
    board.record(HostEvent::LeftS0(at));
    post_and_enumerate(board, t, true).await
}

/// The OS shuts down: S5, then power off.
pub async fn shutdown(board: &mut impl Board, via_ipmi: bool) -> Result<()> {
    // The OS has stopped when the firmware reports S5; from then on the host is not in S0
    // (KCS is synchronous: the host waits for the BMC's answer before it powers off).
    board.report(AcpiState::S5G2, via_ipmi).await?;
    board.record(HostEvent::LeftS0(Instant::now()));
    board.record(HostEvent::Step("power off"));
    board.set_power(ChassisPowerState::Off).await?;
    board.smbus().set_powered(false);
    Ok(())
}

/// Power is cut: nobody says S5.
pub async fn power_loss(board: &mut impl Board) -> Result<()> {
    board.record(HostEvent::LeftS0(Instant::now()));
    board.record(HostEvent::Step("power lost"));
    board.set_power(ChassisPowerState::Off).await?;
    board.smbus().set_powered(false);
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;
    use crate::smbus::{Master, Outcome};

    /// A board that writes down, in order, everything the firmware does to it.
    struct LogBoard {
        smbus: SimSmbus,
        log: RefCell<Vec<String>>,
    }

    impl LogBoard {
        fn new() -> Self {
            let smbus = SimSmbus::ddr4_board(4, 30.0);
            smbus.set_powered(false);
            Self {
                smbus,
                log: RefCell::new(Vec::new()),
            }
        }
        fn note(&self, what: String) {
            self.log.borrow_mut().push(what);
        }
        fn take(&self) -> Vec<String> {
            std::mem::take(&mut *self.log.borrow_mut())
        }
        /// Whether the DIMMs answer, i.e. have power.
        fn dimms_powered(&self) -> bool {
            matches!(
                self.smbus.transfer(Master::Bmc(0), 0x18, 0x05, true),
                Outcome::Ok(_)
            )
        }
    }

    impl Board for LogBoard {
        fn smbus(&self) -> &SimSmbus {
            &self.smbus
        }
        fn dimms(&self) -> u8 {
            4
        }
        async fn post(&self, code: u8) -> Result<()> {
            self.note(format!("POST {code:#04x}"));
            Ok(())
        }
        async fn set_power(&mut self, p: ChassisPowerState) -> Result<()> {
            self.note(format!("power {p}"));
            Ok(())
        }
        async fn report(&self, s: AcpiState, via_ipmi: bool) -> Result<()> {
            self.note(format!("{s}{}", if via_ipmi { " over KCS" } else { "" }));
            Ok(())
        }
        fn record(&mut self, e: HostEvent) {
            self.note(match e {
                HostEvent::Step(s) => s.to_owned(),
                HostEvent::EnteredS0(_) => "entered S0".to_owned(),
                HostEvent::LeftS0(_) => "left S0".to_owned(),
            });
        }
    }

    fn quick(s2_first: bool, via_ipmi: bool) -> Timing {
        Timing {
            to_enum: Duration::from_millis(1),
            s2_first,
            to_s0: Duration::from_millis(1),
            spd_bytes: 4,
            via_ipmi,
        }
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[tokio::test]
    async fn a_cold_boot_says_s2_before_it_touches_the_bus_and_s0_after() -> Result<()> {
        let mut b = LogBoard::new();
        let r = cold_boot(&mut b, &quick(true, false)).await?;
        assert_eq!(
            b.take(),
            strings(&[
                "power on",
                "power On",
                "POST 0x01",
                "S2_D2",
                "POST 0x19",
                "memory enumeration",
                "POST 0x62",
                "S0_G0_D0",
                "entered S0",
            ])
        );
        assert!(!r.warm);
        assert_eq!((r.present, r.lost()), (4, 0), "{r:?}");
        assert_eq!(r.scan.found, vec![0x50, 0x51, 0x52, 0x53]);
        assert!(b.dimms_powered());
        Ok(())
    }

    #[tokio::test]
    async fn late_firmware_says_s2_only_once_it_enumerates() -> Result<()> {
        let mut b = LogBoard::new();
        cold_boot(&mut b, &quick(false, true)).await?;
        assert_eq!(
            b.take(),
            strings(&[
                "power on",
                "power On",
                "POST 0x01",
                "POST 0x19",
                "memory enumeration",
                "S2_D2 over KCS",
                "POST 0x62",
                "S0_G0_D0 over KCS",
                "entered S0",
            ])
        );
        Ok(())
    }

    #[tokio::test]
    async fn a_warm_reset_leaves_s0_and_enumerates_again_without_s5() -> Result<()> {
        let mut b = LogBoard::new();
        cold_boot(&mut b, &quick(true, false)).await?;
        b.take();
        let r = warm_reset(&mut b, &quick(true, false)).await?;
        assert_eq!(
            b.take(),
            strings(&[
                "warm reset",
                "left S0",
                "POST 0x01",
                "S2_D2",
                "POST 0x19",
                "memory enumeration",
                "POST 0x62",
                "S0_G0_D0",
                "entered S0",
            ])
        );
        assert!(r.warm);
        assert_eq!(r.lost(), 0, "{r:?}");
        Ok(())
    }

    #[tokio::test]
    async fn a_shutdown_says_s5_before_power_goes() -> Result<()> {
        let mut b = LogBoard::new();
        cold_boot(&mut b, &quick(true, false)).await?;
        b.take();
        shutdown(&mut b, true).await?;
        assert_eq!(
            b.take(),
            strings(&["S5_G2 over KCS", "left S0", "power off", "power Off"])
        );
        assert!(!b.dimms_powered());
        Ok(())
    }

    #[tokio::test]
    async fn a_power_loss_says_nothing() -> Result<()> {
        let mut b = LogBoard::new();
        cold_boot(&mut b, &quick(true, false)).await?;
        b.take();
        power_loss(&mut b).await?;
        assert_eq!(b.take(), strings(&["left S0", "power lost", "power Off"]));
        assert!(!b.dimms_powered());
        Ok(())
    }
}
