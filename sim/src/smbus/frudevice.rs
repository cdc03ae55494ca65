//! entity-manager's FruDevice as a third master on the DIMM bus: at host power-on it probes
//! every address 0x03–0x77 and reads the FRU header of each device that answers
//! (openbmc/entity-manager 3b745d22, `src/fru_device/fru_device.cpp` `getBusFRUs`: an SMBus
//! read at each address, then the header bytes of the ones present), unless its blocklist
//! holds the bus as a whole, in which case it never touches it. Nothing gates it: it does not
//! know what the host is doing.

use std::thread::{self, JoinHandle};

use super::{Master, Outcome, SimSmbus};

/// The probe's address range (FruDevice's, which is i2cdetect's default).
pub const FIRST: u8 = 0x03;
pub const LAST: u8 = 0x77;
/// FRU common header bytes read from each device that answers.
pub const HEADER_BYTES: u8 = 8;

/// One FruDevice scan of the bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FruDeviceProbe {
    /// Whether `blacklist.json` holds this bus as a whole (`"buses": [N]`).
    pub blocked: bool,
}

/// What one scan did on the bus.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProbeReport {
    /// Transfers put on the wire.
    pub transfers: usize,
    /// Addresses that answered.
    pub present: usize,
}

impl FruDeviceProbe {
    /// Scan on the calling thread.
    pub fn run(&self, bus: &SimSmbus) -> ProbeReport {
        let mut r = ProbeReport::default();
        if self.blocked {
            return r;
        }
        for addr in FIRST..=LAST {
            r.transfers += 1;
            if !matches!(
                bus.transfer(Master::FruDevice, addr, 0, false),
                Outcome::Ok(_)
            ) {
                continue;
            }
            r.present += 1;
            for reg in 0..HEADER_BYTES {
                r.transfers += 1;
                bus.transfer(Master::FruDevice, addr, reg, false);
            }
        }
        r
    }

    /// Scan on a thread of its own.
    pub fn spawn(self, bus: &SimSmbus) -> JoinHandle<ProbeReport> {
        let bus = bus.clone();
        thread::spawn(move || self.run(&bus))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smbus::firmware::SpdScan;

    #[test]
    fn an_unblocked_probe_covers_every_address_and_reads_each_header() {
        let bus = SimSmbus::ddr4_board(2, 30.0);
        let r = FruDeviceProbe { blocked: false }.run(&bus);
        // 117 addresses; TSODs at 0x18, 0x19 and SPDs at 0x50, 0x51 answer
        assert_eq!(r.present, 4);
        assert_eq!(r.transfers, 117 + 4 * usize::from(HEADER_BYTES));
        let t = bus.transfers();
        assert!(t.iter().all(|t| t.master == Master::FruDevice));
        assert_eq!(t.first().map(|t| t.addr), Some(FIRST));
    }

    #[test]
    fn a_blocked_bus_is_never_touched() {
        let bus = SimSmbus::ddr4_board(2, 30.0);
        assert_eq!(
            FruDeviceProbe { blocked: true }.run(&bus),
            ProbeReport::default()
        );
        assert!(bus.transfers().is_empty());
    }

    #[test]
    fn probing_during_the_spd_scan_loses_dimms() {
        let bus = SimSmbus::ddr4_board(4, 30.0);
        let mut scan = SpdScan::ddr4(4);
        scan.bytes = 64;
        let spd = scan.spawn(&bus);
        let fru = FruDeviceProbe { blocked: false }.spawn(&bus);
        let r = spd.join().expect("scan");
        fru.join().expect("probe");
        assert!(r.failed_reads > 0, "{r:?}");
        assert!(!r.lost.is_empty(), "{r:?}");
    }
}
