//! What a step needs of the machine, checked before the step starts.
//!
//! A builder whose disk fills or whose memory runs out half-way through a step loses the run
//! (and, on a small shared builder, everything else on it) with an error that does not say
//! "disk" or "memory". Each heavy step therefore states its needs, and the run stops before
//! the step with the step's name, what it needs and what there is.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::sh;

/// What a step needs free when it starts, in MiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Needs {
    /// Free disk on the filesystem that holds the build outputs (the target directory).
    pub disk_mib: u64,
    /// Available memory (`MemAvailable`: free plus what the kernel can reclaim).
    pub mem_mib: u64,
}

impl Needs {
    pub const fn new(disk_mib: u64, mem_mib: u64) -> Self {
        Self { disk_mib, mem_mib }
    }
}

/// What the machine has, in MiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Have {
    pub disk_mib: u64,
    pub mem_mib: u64,
}

/// The verdict on `have` for `step` (pure: the tests feed it numbers).
pub fn check(step: &str, needs: Needs, have: Have, disk_at: &Path) -> Result<()> {
    let mut short = Vec::new();
    if have.disk_mib < needs.disk_mib {
        short.push(format!(
            "disk: needs {} MiB free on {}, has {} MiB",
            needs.disk_mib,
            disk_at.display(),
            have.disk_mib
        ));
    }
    if have.mem_mib < needs.mem_mib {
        short.push(format!(
            "memory: needs {} MiB available, has {} MiB",
            needs.mem_mib, have.mem_mib
        ));
    }
    if !short.is_empty() {
        bail!(
            "step `{step}` not started: {} (free some space, e.g. `cargo xtask clean`, or run \
             on a larger machine)",
            short.join("; ")
        );
    }
    Ok(())
}

/// Check the machine before `step`; the disk is measured where the build outputs go.
pub fn require(step: &str, needs: Needs) -> Result<()> {
    require_at(step, needs, &sh::target_dir())
}

/// [`require`] with the disk measured at `dir` (its nearest existing ancestor).
pub fn require_at(step: &str, needs: Needs, dir: &Path) -> Result<()> {
    let at = existing_ancestor(dir);
    let have = Have {
        disk_mib: free_disk_mib(&at)?,
        mem_mib: available_mem_mib()?,
    };
    check(step, needs, have, &at)
}

/// Free disk where the build outputs go, if it can be read.
pub fn outputs_free_mib() -> Option<u64> {
    free_disk_mib(&existing_ancestor(&sh::target_dir())).ok()
}

fn existing_ancestor(dir: &Path) -> PathBuf {
    dir.ancestors()
        .find(|p| p.exists())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("/"))
}

/// Free space for an unprivileged writer (`df`'s "Available"), in MiB.
pub fn free_disk_mib(dir: &Path) -> Result<u64> {
    let out = sh::output(Command::new("df").arg("-Pk").arg(dir))?;
    out.lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse::<u64>().ok())
        .map(|kib| kib / 1024)
        .with_context(|| {
            format!(
                "cannot read the free space of {} from df: {out}",
                dir.display()
            )
        })
}

/// `MemAvailable` from `/proc/meminfo`, in MiB.
pub fn available_mem_mib() -> Result<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").context("reading /proc/meminfo")?;
    parse_mem_available_kib(&text)
        .map(|kib| kib / 1024)
        .context("no MemAvailable line in /proc/meminfo")
}

fn parse_mem_available_kib(meminfo: &str) -> Option<u64> {
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// One line for the log: what the machine has now.
pub fn summary() -> String {
    let at = existing_ancestor(&sh::target_dir());
    let disk = free_disk_mib(&at).map_or_else(|e| format!("unknown ({e})"), gib);
    let mem = available_mem_mib().map_or_else(|e| format!("unknown ({e})"), gib);
    format!(
        "{disk} free on the disk holding {}, {mem} memory available, {} cores",
        at.display(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    )
}

pub fn gib(mib: u64) -> String {
    format!("{:.1} GiB", mib as f64 / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const AT: &str = "/builder";

    #[test]
    fn enough_of_both_passes() {
        let needs = Needs::new(100, 200);
        let have = Have {
            disk_mib: 100,
            mem_mib: 200,
        };
        assert!(check("vm", needs, have, Path::new(AT)).is_ok());
    }

    #[test]
    fn too_little_disk_names_the_step_the_need_and_what_is_free() {
        let err = check(
            "cross",
            Needs::new(3072, 10),
            Have {
                disk_mib: 500,
                mem_mib: 9000,
            },
            Path::new(AT),
        )
        .expect_err("500 MiB free passed for a step needing 3072");
        let msg = err.to_string();
        for part in ["`cross`", "3072 MiB", "500 MiB", AT] {
            assert!(msg.contains(part), "{part} missing in: {msg}");
        }
        assert!(!msg.contains("memory"), "{msg}");
    }

    #[test]
    fn too_little_memory_is_named_too() {
        let msg = check(
            "vm",
            Needs::new(1, 2048),
            Have {
                disk_mib: 10,
                mem_mib: 100,
            },
            Path::new(AT),
        )
        .expect_err("100 MiB available passed for a step needing 2048")
        .to_string();
        assert!(
            msg.contains("needs 2048 MiB available, has 100 MiB"),
            "{msg}"
        );
    }

    #[test]
    fn meminfo_parses() {
        let text = "MemTotal:       24000000 kB\nMemFree:  1000 kB\nMemAvailable:   20971520 kB\n";
        assert_eq!(parse_mem_available_kib(text), Some(20971520));
        assert_eq!(parse_mem_available_kib("MemTotal: 1 kB\n"), None);
    }

    #[test]
    fn this_machine_reads() -> Result<()> {
        assert!(available_mem_mib()? > 0);
        assert!(free_disk_mib(Path::new("/"))? > 0);
        Ok(())
    }

    /// The real reading refuses a step on a small filesystem: a 16 MiB tmpfs (needs root to
    /// mount; CI runs as root). Without root the pure checks above still run.
    #[test]
    fn a_small_tmpfs_refuses_a_step_that_needs_more() -> Result<()> {
        let is_root = sh::output(Command::new("id").arg("-u")).is_ok_and(|o| o.trim() == "0");
        if !is_root {
            eprintln!("not root: the tmpfs check is skipped");
            return Ok(());
        }
        let dir = std::env::temp_dir().join(format!("xtask-tmpfs-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        sh::run(
            Command::new("mount")
                .args(["-t", "tmpfs", "-o", "size=16m", "tmpfs"])
                .arg(&dir),
        )?;
        let inside = dir.join("target/not-yet");
        let small = require_at("vm", Needs::new(64, 0), &inside);
        let fits = require_at("vm", Needs::new(8, 0), &inside);
        let _ = sh::run(Command::new("umount").arg(&dir));
        let _ = std::fs::remove_dir(&dir);
        let msg = small
            .expect_err("a 16 MiB tmpfs passed for 64 MiB")
            .to_string();
        assert!(msg.contains("needs 64 MiB free"), "{msg}");
        assert!(msg.contains("has 16 MiB"), "{msg}");
        assert!(msg.contains(&dir.display().to_string()), "{msg}");
        fits?;
        Ok(())
    }
}
