//! A simulated DIMM SMBus shared by two masters: the BMC (sensor-gate, over a unix socket) and
//! the host firmware (a scripted SPD scan, [`firmware`]); and, where a test puts it there, a
//! third: entity-manager's FruDevice probing every address at host power-on ([`frudevice`]).
//!
//! What it models, and why:
//! * **Transfers take bus time** (`bit_time` × the bits of the SMBus transaction; 100 kHz by
//!   default), spent in real time before the answer, so two masters can overlap.
//! * **Overlaps collide.** A transfer that starts while another is on the wire clobbers it:
//!   the one already in progress fails (its data is corrupted), the newcomer completes. This is
//!   the mechanism behind DIMMs missing at boot: a BMC poll landing in the middle of a
//!   firmware SPD read makes the firmware read garbage and skip the DIMM. Every transfer is
//!   logged with its master, address, start, end and outcome.
//! * **DIMM power.** The parts are host-powered: with the host off they NACK.
//! * **Fault switches**: NACK per address, timeout per address, a stuck bus (every transfer
//!   times out after `timeout`).
//!
//! The BMC side speaks sensor-gate's sim protocol (`sensor_gate::edge::smbus::sim`): one line in,
//! `RB|RW <addr> <reg>` in hex, one line out, `OK <hex>` or `ERR NACK|TIMEOUT|BUSY ..|IO ..`.

pub mod devices;
pub mod firmware;
pub mod frudevice;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

pub use devices::{Device, Spd5118, SpdEeprom, Tsod};

/// Who drove a transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Master {
    /// A BMC connection (sensor-gate), numbered by connection.
    Bmc(u32),
    /// The host firmware.
    Firmware,
    /// entity-manager's FruDevice probing the bus ([`frudevice`]).
    FruDevice,
}

/// How a transfer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok(u16),
    Nack,
    Timeout,
    /// Clobbered by another master's transfer starting while it was on the wire.
    Collision,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transfer {
    pub master: Master,
    pub addr: u8,
    pub reg: u8,
    pub word: bool,
    pub start: Instant,
    pub end: Instant,
    pub outcome: Outcome,
}

impl Transfer {
    /// Whether the transfer was on the wire at any time in `[from, to)`.
    pub fn overlaps(&self, from: Instant, to: Instant) -> bool {
        self.start < to && self.end > from
    }
}

/// Fault switches.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    pub nack: HashSet<u8>,
    pub timeout: HashSet<u8>,
    pub stuck: bool,
}

struct Active {
    id: u64,
    clobbered: bool,
}

struct State {
    devices: HashMap<u8, Box<dyn Device>>,
    faults: Faults,
    powered: bool,
    active: Vec<Active>,
    log: Vec<Transfer>,
}

/// The simulated bus. Clones share it.
#[derive(Clone)]
pub struct SimSmbus {
    state: Arc<Mutex<State>>,
    next_id: Arc<AtomicU64>,
    /// Time per bit on the wire (10 µs = 100 kHz).
    pub bit_time: Duration,
    /// SMBus timeout (tTIMEOUT, 25–35 ms).
    pub timeout: Duration,
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    // A panicking test thread must not hide the bus from the others.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Default for SimSmbus {
    fn default() -> Self {
        Self::new()
    }
}

impl SimSmbus {
    pub fn new() -> Self {
        Self {
            state: Arc::new(Mutex::new(State {
                devices: HashMap::new(),
                faults: Faults::default(),
                powered: true,
                active: Vec::new(),
                log: Vec::new(),
            })),
            next_id: Arc::new(AtomicU64::new(1)),
            bit_time: Duration::from_micros(10),
            timeout: Duration::from_millis(35),
        }
    }

    /// A DDR4 board: `n` DIMMs, each with a TSOD at 0x18+i and an SPD EEPROM at 0x50+i.
    pub fn ddr4_board(n: u8, celsius: f64) -> Self {
        let bus = Self::new();
        for i in 0..n {
            bus.add(0x18 + i, Box::new(Tsod { celsius }));
            bus.add(0x50 + i, Box::new(SpdEeprom::ddr4(i)));
        }
        bus
    }

    pub fn add(&self, addr: u8, dev: Box<dyn Device>) {
        lock(&self.state).devices.insert(addr, dev);
    }

    pub fn set_celsius(&self, addr: u8, c: f64) {
        if let Some(d) = lock(&self.state).devices.get_mut(&addr) {
            d.set_celsius(c);
        }
    }

    /// Host power for the DIMMs.
    pub fn set_powered(&self, on: bool) {
        lock(&self.state).powered = on;
    }

    pub fn set_faults(&self, f: Faults) {
        lock(&self.state).faults = f;
    }

    pub fn faults(&self) -> Faults {
        lock(&self.state).faults.clone()
    }

    /// Every transfer so far, in order of completion.
    pub fn transfers(&self) -> Vec<Transfer> {
        lock(&self.state).log.clone()
    }

    /// Transfers by BMC masters.
    pub fn bmc_transfers(&self) -> Vec<Transfer> {
        self.transfers()
            .into_iter()
            .filter(|t| matches!(t.master, Master::Bmc(_)))
            .collect()
    }

    /// Transfers that were clobbered.
    pub fn collisions(&self) -> Vec<Transfer> {
        self.transfers()
            .into_iter()
            .filter(|t| t.outcome == Outcome::Collision)
            .collect()
    }

    /// Whether a transfer is on the wire now.
    pub fn busy(&self) -> bool {
        !lock(&self.state).active.is_empty()
    }

    /// Bus time of one transaction: S, address+W, command, Sr, address+R, data bytes, P,
    /// each byte with its ACK bit.
    fn duration(&self, word: bool) -> Duration {
        let bits = 1 + 9 + 9 + 1 + 9 + if word { 18 } else { 9 } + 1;
        self.bit_time * bits
    }

    /// One transfer by `master`, taking its bus time on the calling thread.
    pub fn transfer(&self, master: Master, addr: u8, reg: u8, word: bool) -> Outcome {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let start = Instant::now();
        let (stuck, slow) = {
            let mut st = lock(&self.state);
            // Whatever is on the wire now is clobbered by this start.
            for a in &mut st.active {
                a.clobbered = true;
            }
            st.active.push(Active {
                id,
                clobbered: false,
            });
            (st.faults.stuck, st.faults.timeout.contains(&addr))
        };
        thread::sleep(if stuck || slow {
            self.timeout
        } else {
            self.duration(word)
        });
        let mut st = lock(&self.state);
        let clobbered = match st.active.iter().position(|a| a.id == id) {
            Some(i) => st.active.swap_remove(i).clobbered,
            None => false,
        };
        let powered = st.powered;
        let nack = st.faults.nack.contains(&addr);
        let outcome = if clobbered {
            Outcome::Collision
        } else if stuck || slow {
            Outcome::Timeout
        } else if !powered || nack {
            Outcome::Nack
        } else {
            match st.devices.get_mut(&addr) {
                None => Outcome::Nack,
                Some(d) => Outcome::Ok(if word {
                    d.read_word(reg)
                } else {
                    u16::from(d.read_byte(reg))
                }),
            }
        };
        st.log.push(Transfer {
            master,
            addr,
            reg,
            word,
            start,
            end: Instant::now(),
            outcome,
        });
        outcome
    }

    /// Serve BMC masters on a unix socket (sensor-gate's `sim:<path>` backend).
    pub fn serve(&self, path: &Path) -> Result<SimServer> {
        let _ = std::fs::remove_file(path);
        let listener =
            UnixListener::bind(path).with_context(|| format!("bind {}", path.display()))?;
        let stop = Arc::new(AtomicBool::new(false));
        let bus = self.clone();
        let stop2 = stop.clone();
        thread::Builder::new()
            .name("sim-smbus".to_owned())
            .spawn(move || {
                let mut n = 0u32;
                for conn in listener.incoming() {
                    if stop2.load(Ordering::Relaxed) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    n += 1;
                    let bus = bus.clone();
                    let master = Master::Bmc(n);
                    let _ = thread::Builder::new()
                        .name(format!("sim-smbus-{n}"))
                        .spawn(move || bus.serve_one(conn, master));
                }
            })?;
        Ok(SimServer {
            path: path.to_owned(),
            stop,
        })
    }

    fn serve_one(&self, conn: UnixStream, master: Master) {
        let mut r = BufReader::new(conn);
        let mut line = String::new();
        loop {
            line.clear();
            match r.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let reply = match parse_request(line.trim_end()) {
                Some((addr, reg, word)) => match self.transfer(master, addr, reg, word) {
                    Outcome::Ok(v) => format!("OK {v:x}\n"),
                    Outcome::Nack => "ERR NACK\n".to_owned(),
                    Outcome::Timeout => "ERR TIMEOUT\n".to_owned(),
                    Outcome::Collision => "ERR BUSY collision with another master\n".to_owned(),
                },
                None => format!("ERR IO bad request `{}`\n", line.trim_end()),
            };
            if r.get_mut().write_all(reply.as_bytes()).is_err() {
                return;
            }
        }
    }
}

fn parse_request(line: &str) -> Option<(u8, u8, bool)> {
    let mut it = line.split(' ');
    let word = match it.next()? {
        "RB" => false,
        "RW" => true,
        _ => return None,
    };
    let addr = u8::from_str_radix(it.next()?, 16).ok()?;
    let reg = u8::from_str_radix(it.next()?, 16).ok()?;
    if it.next().is_some() || addr > 0x7F {
        return None;
    }
    Some((addr, reg, word))
}

/// The listening socket; stops accepting when dropped.
pub struct SimServer {
    path: PathBuf,
    stop: Arc<AtomicBool>,
}

impl SimServer {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees the flag.
        let _ = UnixStream::connect(&self.path);
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse() {
        assert_eq!(parse_request("RW 18 05"), Some((0x18, 0x05, true)));
        assert_eq!(parse_request("RB 50 80"), Some((0x50, 0x80, false)));
        assert_eq!(parse_request("RW 80 05"), None);
        assert_eq!(parse_request("WW 18 05"), None);
        assert_eq!(parse_request("RW 18"), None);
    }

    #[test]
    fn reads_take_bus_time_and_answer() {
        let bus = SimSmbus::ddr4_board(2, 25.0);
        let t = Instant::now();
        assert_eq!(
            bus.transfer(Master::Bmc(1), 0x18, 5, true),
            Outcome::Ok(0x9001)
        );
        assert!(t.elapsed() >= bus.duration(true));
        assert_eq!(
            bus.transfer(Master::Firmware, 0x51, 2, false),
            Outcome::Ok(0x0C)
        );
        assert_eq!(bus.transfer(Master::Bmc(1), 0x1A, 5, true), Outcome::Nack);
        bus.set_powered(false);
        assert_eq!(bus.transfer(Master::Bmc(1), 0x18, 5, true), Outcome::Nack);
    }

    #[test]
    fn an_overlapping_start_clobbers_the_transfer_on_the_wire() {
        // Slow bits, and wait until the firmware's transfer is on the wire: on a loaded machine
        // a fixed sleep could start the BMC's first.
        let mut bus = SimSmbus::ddr4_board(1, 25.0);
        bus.bit_time = Duration::from_millis(2);
        let b2 = bus.clone();
        let fw = thread::spawn(move || b2.transfer(Master::Firmware, 0x50, 0, false));
        let deadline = Instant::now() + Duration::from_secs(10);
        while !bus.busy() {
            assert!(
                Instant::now() < deadline,
                "the firmware transfer never started"
            );
            thread::yield_now();
        }
        let bmc = bus.transfer(Master::Bmc(1), 0x18, 5, true);
        let fw = fw.join().expect("firmware thread");
        assert_eq!(
            fw,
            Outcome::Collision,
            "the firmware's read was on the wire first"
        );
        assert_eq!(bmc, Outcome::Ok(0x9001));
        assert_eq!(bus.collisions().len(), 1);
    }

    #[test]
    fn fault_switches() {
        let bus = SimSmbus::ddr4_board(1, 25.0);
        bus.set_faults(Faults {
            nack: [0x18].into(),
            ..Faults::default()
        });
        assert_eq!(bus.transfer(Master::Bmc(1), 0x18, 5, true), Outcome::Nack);
        bus.set_faults(Faults {
            stuck: true,
            ..Faults::default()
        });
        let t = Instant::now();
        assert_eq!(
            bus.transfer(Master::Bmc(1), 0x50, 0, false),
            Outcome::Timeout
        );
        assert!(t.elapsed() >= bus.timeout);
    }
}
