//! The scan for other masters on the DIMM buses, as core events: kernel drivers bound to
//! devices on a bus and eeprom devices (sysfs), other processes holding its `/dev/i2c-N` open
//! (`/proc/<pid>/fd`), and whether entity-manager's FruDevice, when installed, is kept off the
//! bus by its blocklist.
//!
//! The FruDevice rules are entity-manager's (openbmc/entity-manager 3b745d22,
//! `src/fru_device/fru_device.cpp`): it skips a bus only when `blacklist.json`'s `buses`
//! holds the bus, or the bus a mux child hangs off (`i2c-N/mux_device`), as a plain number;
//! an entry `{"bus": N, "addresses": [...]}` blocks addresses only, and eeprom devices are
//! read through their driver whatever those addresses say. A bus it does not skip is probed
//! at every address 0x03–0x77 at start and at host power-on.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;

use super::smbus::i2c_dev_node;
use crate::core::{Event, MasterKind, OtherMaster};

/// A configured bus the scan covers: its name and its `/dev/i2c-N` number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannedBus {
    pub name: String,
    pub number: u32,
}

/// Where the scan looks; [`Scanner::system`] on a BMC, a scratch tree in tests.
#[derive(Debug, Clone)]
pub struct Scanner {
    pub sys: PathBuf,
    pub proc_root: PathBuf,
    /// FruDevice's binary: the blocklist matters only where it is installed.
    pub fru_device: PathBuf,
    pub blocklist: PathBuf,
    /// Our own process, which holds the buses open itself.
    pub own_pid: u32,
}

/// entity-manager's install paths (meson `datadir`/`libexecdir`, its unit's `ExecStart`).
pub const FRU_DEVICE: &str = "/usr/libexec/entity-manager/fru-device";
pub const FRU_BLOCKLIST: &str = "/usr/share/entity-manager/blacklist.json";

impl Scanner {
    pub fn system() -> Self {
        Self {
            sys: PathBuf::from("/sys"),
            proc_root: PathBuf::from("/proc"),
            fru_device: PathBuf::from(FRU_DEVICE),
            blocklist: PathBuf::from(FRU_BLOCKLIST),
            own_pid: std::process::id(),
        }
    }

    /// Every other master on `buses`, in no particular order. Unreadable entries (a process
    /// that exited mid-scan, an fd directory we may not read) are skipped, never fatal.
    pub fn scan(&self, buses: &[ScannedBus]) -> Vec<OtherMaster> {
        let mut out = Vec::new();
        if self.sees_other_processes() {
            self.holders(buses, &mut out);
        }
        let blocked = self.fru_device.exists().then(|| self.whole_buses_blocked());
        for b in buses {
            self.devices(b, &mut out);
            if let Some(blocked) = &blocked {
                let root = self.root_bus(b.number);
                let covered =
                    blocked.contains(&b.number) || root.is_some_and(|r| blocked.contains(&r));
                if !covered {
                    let root = root.map_or(String::new(), |r| format!(" nor its root bus {r}"));
                    out.push(OtherMaster {
                        bus: b.name.clone(),
                        kind: MasterKind::FruDevice,
                        detail: format!(
                            "FruDevice is installed and {} does not block bus {}{root} as a \
                             whole: it probes addresses 0x03-0x77 there at start and at host \
                             power-on",
                            self.blocklist.display(),
                            b.number
                        ),
                    });
                }
            }
        }
        out
    }

    /// Devices on the bus itself (`<N>-00<addr>`) with a driver bound; one finding each, an
    /// eeprom one when the device has an `eeprom` file (FruDevice reads those).
    fn devices(&self, b: &ScannedBus, out: &mut Vec<OtherMaster>) {
        let dir = self.sys.join("bus/i2c/devices");
        let prefix = format!("{}-", b.number);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return;
        };
        let mut names: Vec<String> = entries
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| {
                n.strip_prefix(&prefix)
                    .is_some_and(|a| a.len() == 4 && a.bytes().all(|c| c.is_ascii_hexdigit()))
            })
            .collect();
        names.sort();
        for name in names {
            let dev = dir.join(&name);
            let driver = std::fs::read_link(dev.join("driver"))
                .ok()
                .and_then(|p| p.file_name().map(|f| f.to_string_lossy().into_owned()));
            let eeprom = dev.join("eeprom").exists();
            let (kind, detail) = match (eeprom, driver) {
                (true, Some(d)) => (MasterKind::Eeprom, format!("{d} eeprom at {name}")),
                (true, None) => (MasterKind::Eeprom, format!("eeprom at {name}")),
                (false, Some(d)) => (MasterKind::Driver, format!("{d} bound to {name}")),
                // A device node with no driver makes no transfers.
                (false, None) => continue,
            };
            out.push(OtherMaster {
                bus: b.name.clone(),
                kind,
                detail,
            });
        }
    }

    /// Whether other processes' fd tables are readable here. The kernel lets a process read
    /// another's `/proc/<pid>/fd` links only with that process's capabilities (or
    /// CAP_SYS_PTRACE) in the same user namespace; the shipped unit drops every capability and
    /// runs in a user namespace of its own, so there it sees none. PID 1 (root, every
    /// capability) is the test: readable means every process is.
    pub fn sees_other_processes(&self) -> bool {
        let Ok(mut fds) = std::fs::read_dir(self.proc_root.join("1/fd")) else {
            return false;
        };
        fds.next()
            .and_then(Result::ok)
            .is_some_and(|fd| std::fs::read_link(fd.path()).is_ok())
    }

    /// A finding for each other process holding one of `buses` open (once per process and
    /// bus, however many descriptors it has).
    fn holders(&self, buses: &[ScannedBus], out: &mut Vec<OtherMaster>) {
        let Ok(procs) = std::fs::read_dir(&self.proc_root) else {
            return;
        };
        let nodes: Vec<(PathBuf, &ScannedBus)> =
            buses.iter().map(|b| (i2c_dev_node(b.number), b)).collect();
        for p in procs.flatten() {
            let Some(pid) = p.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            if pid == self.own_pid {
                continue;
            }
            let Ok(fds) = std::fs::read_dir(p.path().join("fd")) else {
                continue;
            };
            let held: BTreeSet<usize> = fds
                .flatten()
                .filter_map(|fd| std::fs::read_link(fd.path()).ok())
                .filter_map(|target| nodes.iter().position(|(node, _)| *node == target))
                .collect();
            if held.is_empty() {
                continue;
            }
            let comm = std::fs::read_to_string(p.path().join("comm"))
                .map(|c| c.trim().to_owned())
                .unwrap_or_else(|_| "?".to_owned());
            for i in held {
                let (node, b) = &nodes[i];
                out.push(OtherMaster {
                    bus: b.name.clone(),
                    kind: MasterKind::OpenDevice,
                    detail: format!("pid {pid} ({comm}) holds {} open", node.display()),
                });
            }
        }
    }

    /// The bus a mux child hangs off, as FruDevice finds it (`i2c-N/mux_device` -> `M-00aa`).
    fn root_bus(&self, bus: u32) -> Option<u32> {
        let link = std::fs::read_link(
            self.sys
                .join(format!("bus/i2c/devices/i2c-{bus}/mux_device")),
        )
        .ok()?;
        let name = link.file_name()?.to_str()?.to_owned();
        name.split_once('-')?.0.parse().ok()
    }

    /// The buses FruDevice skips as a whole. A missing or unreadable file blocks nothing
    /// (FruDevice treats a missing file so; an invalid one stops FruDevice itself).
    fn whole_buses_blocked(&self) -> BTreeSet<u32> {
        let mut blocked = BTreeSet::new();
        let Ok(text) = std::fs::read_to_string(&self.blocklist) else {
            return blocked;
        };
        let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) else {
            return blocked;
        };
        for entry in json
            .get("buses")
            .and_then(|b| b.as_array())
            .into_iter()
            .flatten()
        {
            // In file order, as FruDevice fills its map: a number blocks the whole bus, a
            // later {"bus", "addresses"} entry for it narrows it back to those addresses.
            if let Some(n) = entry.as_u64().and_then(|n| u32::try_from(n).ok()) {
                blocked.insert(n);
            } else if let Some(n) = entry
                .get("bus")
                .filter(|_| entry.get("addresses").is_some())
                .and_then(|b| b.as_u64())
                .and_then(|n| u32::try_from(n).ok())
            {
                blocked.remove(&n);
            }
        }
        blocked
    }
}

/// Scan now and every `every`, each scan off the runtime's threads and under a deadline (a
/// hung sysfs read must not pile up scans), and hand each complete result to the core.
pub async fn watch(
    scanner: Scanner,
    mut buses: tokio::sync::watch::Receiver<Vec<ScannedBus>>,
    every: Duration,
    tx: UnboundedSender<Event>,
) {
    // Until there is a real bus to look at (sensors from entity-manager add theirs later).
    if buses.wait_for(|b| !b.is_empty()).await.is_err() {
        return;
    }
    if !scanner.sees_other_processes() {
        log::warn!(
            "other processes' open files are not readable here (no CAP_SYS_PTRACE, or a user \
             namespace of our own, as the shipped unit has): a process holding a DIMM bus's \
             /dev/i2c-N open is not found; bound drivers, eeprom devices and FruDevice are \
             still checked. To find such processes too, add a drop-in with PrivateUsers=no, \
             CapabilityBoundingSet=CAP_SYS_PTRACE and AmbientCapabilities=CAP_SYS_PTRACE \
             (ptrace(2) itself stays blocked by the unit's SystemCallFilter)"
        );
    }
    // Each scan looks at the buses known when it starts; the list is copied out, so a scan
    // stuck in sysfs never holds up the main loop adding a bus.
    run_scans(
        move || {
            let now: Vec<ScannedBus> = buses.borrow().clone();
            scanner.scan(&now)
        },
        every,
        tx,
    )
    .await;
}

/// [`watch`]'s loop, for any scan: one every `every`, each off the runtime's threads under
/// that deadline, each complete result sent to the core.
async fn run_scans<F>(scan: F, every: Duration, tx: UnboundedSender<Event>)
where
    F: Fn() -> Vec<OtherMaster> + Send + Sync + 'static,
{
    let scan_fn = std::sync::Arc::new(scan);
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // A scan that overran its deadline keeps its thread (a blocking read cannot be
    // cancelled): it is waited for again at the next tick instead of a new one starting, so
    // a hung sysfs read never piles up scans.
    let mut overran = None;
    loop {
        tick.tick().await;
        let (mut scan, again) = match overran.take() {
            Some(scan) => (scan, true),
            None => {
                let f = scan_fn.clone();
                (tokio::task::spawn_blocking(move || f()), false)
            }
        };
        match tokio::time::timeout(every, &mut scan).await {
            Ok(Ok(found)) => {
                if tx.send(Event::OtherMasters(found)).is_err() {
                    return;
                }
            }
            Ok(Err(e)) => log::warn!("the scan for other masters failed: {e}"),
            Err(_) => {
                if !again {
                    log::warn!(
                        "the scan for other masters has taken over {} ms; waiting for it",
                        every.as_millis()
                    );
                }
                overran = Some(scan);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A scratch sysfs/proc/entity-manager tree.
    struct Tree {
        root: PathBuf,
    }

    impl Tree {
        fn new(tag: &str) -> Self {
            let root =
                std::env::temp_dir().join(format!("sg-masters-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&root);
            std::fs::create_dir_all(root.join("sys/bus/i2c/devices")).expect("tree");
            std::fs::create_dir_all(root.join("proc")).expect("tree");
            std::fs::create_dir_all(root.join("em")).expect("tree");
            Self { root }
        }
        fn scanner(&self) -> Scanner {
            Scanner {
                sys: self.root.join("sys"),
                proc_root: self.root.join("proc"),
                fru_device: self.root.join("em/fru-device"),
                blocklist: self.root.join("em/blacklist.json"),
                own_pid: 4242,
            }
        }
        fn device(&self, name: &str, driver: Option<&str>, eeprom: bool) {
            let d = self.root.join("sys/bus/i2c/devices").join(name);
            std::fs::create_dir_all(&d).expect("device");
            if let Some(drv) = driver {
                symlink(format!("../../../bus/i2c/drivers/{drv}"), d.join("driver")).expect("l");
            }
            if eeprom {
                std::fs::write(d.join("eeprom"), b"").expect("eeprom");
            }
        }
        fn mux_child(&self, bus: u32, mux_device: &str) {
            let d = self.root.join(format!("sys/bus/i2c/devices/i2c-{bus}"));
            std::fs::create_dir_all(&d).expect("adapter");
            symlink(format!("../{mux_device}"), d.join("mux_device")).expect("l");
        }
        fn process(&self, pid: u32, comm: &str, fds: &[&str]) {
            let p = self.root.join(format!("proc/{pid}"));
            std::fs::create_dir_all(p.join("fd")).expect("proc");
            std::fs::write(p.join("comm"), format!("{comm}\n")).expect("comm");
            for (i, target) in fds.iter().enumerate() {
                symlink(target, p.join(format!("fd/{}", i + 3))).expect("fd");
            }
        }
        fn fru_device(&self, blocklist: Option<&str>) {
            std::fs::write(self.root.join("em/fru-device"), b"").expect("bin");
            if let Some(b) = blocklist {
                std::fs::write(self.root.join("em/blacklist.json"), b).expect("blocklist");
            }
        }
    }

    impl Drop for Tree {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }

    fn dimm(number: u32) -> Vec<ScannedBus> {
        vec![ScannedBus {
            name: "dimm".to_owned(),
            number,
        }]
    }

    fn kinds(found: &[OtherMaster]) -> Vec<(MasterKind, String)> {
        let mut v: Vec<_> = found.iter().map(|m| (m.kind, m.detail.clone())).collect();
        v.sort();
        v
    }

    #[test]
    fn a_clean_bus_reports_nothing() {
        let t = Tree::new("clean");
        // a device node without a driver, devices on other buses, our own open fd
        t.device("3-0018", None, false);
        t.device("4-0050", Some("at24"), true);
        t.device("13-0018", Some("jc42"), false);
        t.process(1, "systemd", &["/dev/null"]);
        t.process(4242, "sensor-gate", &["/dev/i2c-3"]);
        t.process(900, "ipmid", &["/dev/i2c-4", "/dev/null"]);
        assert_eq!(t.scanner().scan(&dimm(3)), vec![]);
    }

    #[test]
    fn drivers_eeproms_and_holders_are_found_and_named() {
        let t = Tree::new("found");
        t.process(1, "systemd", &["/dev/null"]);
        t.device("3-0018", Some("jc42"), false);
        t.device("3-0050", Some("ee1004"), true);
        t.process(812, "i2cget", &["/dev/i2c-3"]);
        t.process(813, "busy", &["/dev/i2c-3", "/dev/i2c-3"]);
        let found = t.scanner().scan(&dimm(3));
        assert!(found.iter().all(|m| m.bus == "dimm"));
        assert_eq!(
            kinds(&found),
            vec![
                (MasterKind::Driver, "jc42 bound to 3-0018".to_owned()),
                (MasterKind::Eeprom, "ee1004 eeprom at 3-0050".to_owned()),
                (
                    MasterKind::OpenDevice,
                    "pid 812 (i2cget) holds /dev/i2c-3 open".to_owned()
                ),
                (
                    MasterKind::OpenDevice,
                    "pid 813 (busy) holds /dev/i2c-3 open".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn holders_are_not_reported_where_other_processes_cannot_be_seen() {
        let t = Tree::new("blind");
        t.process(812, "i2cget", &["/dev/i2c-3"]);
        // no readable /proc/1/fd: the shipped unit's view
        assert!(!t.scanner().sees_other_processes());
        assert_eq!(t.scanner().scan(&dimm(3)), vec![]);
        t.process(1, "systemd", &["/dev/null"]);
        assert!(t.scanner().sees_other_processes());
        assert_eq!(t.scanner().scan(&dimm(3)).len(), 1);
    }

    fn fru_findings(t: &Tree, bus: u32) -> usize {
        t.scanner()
            .scan(&dimm(bus))
            .iter()
            .filter(|m| m.kind == MasterKind::FruDevice)
            .count()
    }

    #[test]
    fn fru_device_counts_only_where_installed_and_not_blocking_the_whole_bus() {
        let t = Tree::new("fru");
        // Not installed: the blocklist does not matter.
        assert_eq!(fru_findings(&t, 3), 0);
        // Installed, no file: FruDevice probes every bus.
        t.fru_device(None);
        assert_eq!(fru_findings(&t, 3), 1);
        let cases = [
            (r#"{ "buses": [] }"#, 1),
            (r#"{ "buses": [3] }"#, 0),
            (r#"{ "buses": [1, 3, 7] }"#, 0),
            // addresses only: not the whole bus
            (r#"{ "buses": [ { "bus": 3, "addresses": ["0x50"] } ] }"#, 1),
            // a later address entry narrows a whole-bus one, as FruDevice's map does
            (
                r#"{ "buses": [3, { "bus": 3, "addresses": ["0x50"] }] }"#,
                1,
            ),
            (
                r#"{ "buses": [{ "bus": 3, "addresses": ["0x50"] }, 3] }"#,
                0,
            ),
            (r#"{ "addresses": ["0x50"] }"#, 1),
            ("not json", 1),
        ];
        for (file, want) in cases {
            t.fru_device(Some(file));
            assert_eq!(fru_findings(&t, 3), want, "{file}");
        }
    }

    /// A scan stuck on a read is waited for, not joined by a new scan at every tick (a
    /// blocking read cannot be cancelled, so each new one would be another stuck thread);
    /// once it returns, its result arrives and scanning goes on.
    #[test]
    fn a_hung_scan_is_waited_for_not_piled_up() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::{Arc, Mutex, mpsc};
        let started = Arc::new(AtomicUsize::new(0));
        let (release, released) = mpsc::channel::<()>();
        let released = Arc::new(Mutex::new(released));
        let (s, r) = (started.clone(), released.clone());
        // Every scan blocks until released (or 5 s, so no test thread outlives the test).
        let scan = move || {
            s.fetch_add(1, Ordering::SeqCst);
            let _ = r.lock().map(|rx| rx.recv_timeout(Duration::from_secs(5)));
            Vec::new()
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime");
        let every = Duration::from_millis(40);
        let (while_stuck, results) = rt.block_on(async {
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            let scans = tokio::spawn(run_scans(scan, every, tx));
            tokio::time::sleep(every * 10).await;
            let while_stuck = started.load(Ordering::SeqCst);
            release.send(()).expect("the scan waits");
            tokio::time::sleep(every * 3).await;
            scans.abort();
            let mut n = 0;
            while rx.try_recv().is_ok() {
                n += 1;
            }
            (while_stuck, n)
        });
        rt.shutdown_background();
        assert_eq!(
            while_stuck, 1,
            "scans started during ten ticks of one stuck scan"
        );
        assert_eq!(results, 1, "results once it returned");
    }

    #[test]
    fn a_mux_child_is_covered_by_its_root_bus() {
        let t = Tree::new("mux");
        t.mux_child(9, "1-0070");
        t.fru_device(Some(r#"{ "buses": [1] }"#));
        assert_eq!(fru_findings(&t, 9), 0);
        t.fru_device(Some(r#"{ "buses": [2] }"#));
        let found = t.scanner().scan(&dimm(9));
        assert_eq!(found.len(), 1);
        assert!(
            found[0]
                .detail
                .contains("does not block bus 9 nor its root bus 1 as a whole"),
            "{}",
            found[0].detail
        );
    }
}
