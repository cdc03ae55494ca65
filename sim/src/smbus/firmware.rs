//! The host firmware as the second master: during firmware init it reads the SPD of every
//! DIMM slot, byte by byte, back to back. A slot whose read fails is skipped — the DIMM goes
//! missing from the memory map — because that is what the firmware in the field did; there
//! is no retry. The boot around the scan is [`crate::host_firmware`].

use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::{Master, Outcome, SimSmbus};

/// What one SPD scan saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanReport {
    /// Slots whose every SPD byte was read.
    pub found: Vec<u8>,
    /// Slots that answered but had a failed read (collision or timeout): lost at boot.
    pub lost: Vec<u8>,
    /// Slots that did not answer at all (empty).
    pub empty: Vec<u8>,
    pub reads: usize,
    pub failed_reads: usize,
    pub start: Instant,
    pub end: Instant,
}

/// The scan script.
#[derive(Debug, Clone)]
pub struct SpdScan {
    /// SPD addresses to probe (0x50–0x57).
    pub slots: Vec<u8>,
    /// Bytes read per DIMM (256 for a DDR4 SPD page).
    pub bytes: u16,
    /// First register (0 for an EEPROM, 0x80 for an SPD5118 NVM window).
    pub first_reg: u8,
    /// Idle time between two reads.
    pub gap: Duration,
}

impl SpdScan {
    pub fn ddr4(slots: u8) -> Self {
        Self {
            slots: (0x50..0x50 + slots).collect(),
            bytes: 256,
            first_reg: 0,
            gap: Duration::from_micros(20),
        }
    }

    /// Run the scan on the calling thread.
    pub fn run(&self, bus: &SimSmbus) -> ScanReport {
        let start = Instant::now();
        let mut r = ScanReport {
            found: Vec::new(),
            lost: Vec::new(),
            empty: Vec::new(),
            reads: 0,
            failed_reads: 0,
            start,
            end: start,
        };
        for &slot in &self.slots {
            let mut ok = true;
            for i in 0..self.bytes {
                let reg = self.first_reg.wrapping_add(i as u8);
                r.reads += 1;
                match bus.transfer(Master::Firmware, slot, reg, false) {
                    Outcome::Ok(_) => {}
                    Outcome::Nack if i == 0 => {
                        r.empty.push(slot);
                        ok = false;
                        break;
                    }
                    _ => {
                        r.failed_reads += 1;
                        ok = false;
                    }
                }
                thread::sleep(self.gap);
            }
            if ok {
                r.found.push(slot);
            } else if !r.empty.contains(&slot) {
                r.lost.push(slot);
            }
        }
        r.end = Instant::now();
        r
    }

    /// Run the scan on its own thread.
    pub fn spawn(&self, bus: &SimSmbus) -> JoinHandle<ScanReport> {
        let me = self.clone();
        let bus = bus.clone();
        thread::spawn(move || me.run(&bus))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quiet_bus_finds_every_dimm() {
        let bus = SimSmbus::ddr4_board(2, 30.0);
        let mut scan = SpdScan::ddr4(3);
        scan.bytes = 16;
        let r = scan.run(&bus);
        assert_eq!(r.found, vec![0x50, 0x51]);
        assert_eq!(r.empty, vec![0x52]);
        assert!(r.lost.is_empty());
        assert_eq!(r.failed_reads, 0);
    }

    #[test]
    fn a_second_master_polling_loses_dimms() {
        let bus = SimSmbus::ddr4_board(2, 30.0);
        let mut scan = SpdScan::ddr4(2);
        scan.bytes = 64;
        let h = scan.spawn(&bus);
        // A naive BMC poller: a TSOD read every millisecond while the scan runs.
        while !h.is_finished() {
            bus.transfer(Master::Bmc(1), 0x18, 5, true);
            thread::sleep(Duration::from_millis(1));
        }
        let r = h.join().expect("scan");
        assert!(r.failed_reads > 0, "{r:?}");
        assert!(!r.lost.is_empty(), "{r:?}");
    }
}
