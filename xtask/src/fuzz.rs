//! `cargo xtask fuzz [--secs N] [TARGET…]` and the `fuzz` test step: the ipmi-lan cargo-fuzz
//! targets (RMCP/RMCP+ packet parser, IPMI message decoder, stateful session layer), each for
//! a bounded time, starting from the committed seeds (captured ipmitool traffic). The fuzz
//! crate's Cargo.lock is kept in the shared cache, not in the tree (see [`lock_file`]).
//!
//! Cost in CI: installing cargo-fuzz (~1 min, once), building the targets with ASan (~2–4 min
//! on 2 cores) and `ACPIGATE_FUZZ_SECS` (default 60) seconds per target.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::{cache, sh};

/// The targets, in the order they run.
pub const TARGETS: &[&str] = &["packet", "ipmi_message", "session"];
const DEFAULT_SECS: u64 = 60;

fn fuzz_dir() -> PathBuf {
    sh::root().join("ipmi-lan/fuzz")
}

/// Where grown corpora live between runs (outside the source tree; seeds stay read-only).
fn work_dir(target: &str) -> PathBuf {
    sh::target_dir().join("fuzz-corpus").join(target)
}

/// Where the fuzz crate's Cargo.lock lives: in the shared cache, outside the source tree.
///
/// Not in `ipmi-lan/fuzz/`: oe-core's `bitbake -c update_crates` turns every file named
/// Cargo.lock below the recipe's source tree into SRC_URI entries, with no way to exclude
/// one, so a lock there would make every BMC build fetch libfuzzer-sys and friends for
/// nothing (and the recipe builds a developer's checkout in place, so even an untracked lock
/// would count). Not in `target/` either, which sits inside that checkout. The fuzz crate is
/// nightly-only and its dependencies are not shipped, so an unpinned resolution, made once and
/// kept in the cache, is enough.
fn lock_file() -> Result<PathBuf> {
    Ok(cache::entry("fuzz-lock")?.join("Cargo.lock"))
}

fn nightly(lock: &Path) -> Command {
    let mut c = Command::new("cargo");
    c.arg("+nightly").current_dir(fuzz_dir());
    // The fuzz crate is its own workspace; keep its (sanitizer) build out of the main target
    // directory's way unless the caller chose one.
    if std::env::var_os("CARGO_TARGET_DIR").is_none() {
        c.env("CARGO_TARGET_DIR", sh::root().join("target/fuzz"));
    }
    // cargo's `resolver.lockfile-path` (stable config from 1.97; before that behind
    // -Zlockfile-path, which the CARGO_UNSTABLE_ variable turns on silently). Environment
    // variables, because cargo-fuzz runs its own cargo commands, which inherit them.
    c.env("CARGO_RESOLVER_LOCKFILE_PATH", lock)
        .env("CARGO_UNSTABLE_LOCKFILE_PATH", "true");
    c
}

/// Resolve (and download) the fuzz crate's dependencies into [`lock_file`], and make sure
/// the nightly honoured the setting: an older one writes `ipmi-lan/fuzz/Cargo.lock`, which
/// is then removed again.
fn prepare_lock(lock: &Path) -> Result<()> {
    let in_tree = fuzz_dir().join("Cargo.lock");
    let stray = in_tree.exists();
    if stray {
        eprintln!(
            "xtask fuzz: warning: {} exists (from a `cargo fuzz` run by hand?); it is not \
             used, and `cargo xtask crates` refuses to run until it is deleted \
             (`cargo xtask clean` does that)",
            in_tree.display()
        );
    }
    sh::run(nightly(lock).arg("fetch"))?;
    if !stray && in_tree.exists() {
        std::fs::remove_file(&in_tree)
            .with_context(|| format!("cannot remove {}", in_tree.display()))?;
        bail!(
            "this nightly ignores cargo's resolver.lockfile-path and wrote {} (removed again): \
             `rustup update nightly`",
            in_tree.display()
        );
    }
    if !lock.is_file() {
        bail!("cargo +nightly fetch wrote no {}", lock.display());
    }
    Ok(())
}

/// Make sure nightly and cargo-fuzz are there (installing them if we can).
fn tools() -> Result<()> {
    let have_nightly = Command::new("cargo")
        .args(["+nightly", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !have_nightly {
        if !sh::have("rustup") {
            bail!(
                "cargo fuzz needs a nightly toolchain: install rustup, then `rustup toolchain install nightly`"
            );
        }
        sh::run(Command::new("rustup").args([
            "toolchain",
            "install",
            "nightly",
            "--profile",
            "minimal",
        ]))?;
    }
    let have_fuzz = Command::new("cargo")
        .args(["+nightly", "fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !have_fuzz {
        sh::run(Command::new("cargo").args(["install", "cargo-fuzz", "--locked"]))?;
    }
    Ok(())
}

/// Build every target, then run each for `secs` seconds; a crash fails with the reproducer
/// path that libFuzzer printed.
pub fn fuzz(secs: u64, targets: &[String]) -> Result<()> {
    tools()?;
    for t in targets {
        if !TARGETS.contains(&t.as_str()) {
            bail!("no fuzz target `{t}` (targets: {})", TARGETS.join(" "));
        }
    }
    let lock = lock_file()?;
    prepare_lock(&lock)?;
    sh::run(nightly(&lock).args(["fuzz", "build", "-O"]))?;
    for t in targets {
        let work = work_dir(t);
        std::fs::create_dir_all(&work).with_context(|| format!("mkdir {}", work.display()))?;
        let seeds = fuzz_dir().join("seeds").join(t);
        eprintln!("xtask fuzz: {t} for {secs} s (corpus {})", work.display());
        sh::run(
            nightly(&lock)
                .args(["fuzz", "run", "-O", t])
                .arg(&work)
                .arg(&seeds)
                .args([
                    "--",
                    &format!("-max_total_time={secs}"),
                    "-rss_limit_mb=1024",
                    "-print_final_stats=1",
                ]),
        )
        .with_context(|| format!("fuzz target `{t}` failed (see the crash file above)"))?;
    }
    Ok(())
}

/// `cargo xtask fuzz [--secs N] [TARGET…]`.
pub fn run(args: &[String]) -> Result<()> {
    let mut secs = DEFAULT_SECS;
    let mut targets = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--secs" => {
                secs = it
                    .next()
                    .context("--secs needs a number")?
                    .parse()
                    .context("--secs needs a number")?;
            }
            t => targets.push(t.to_owned()),
        }
    }
    if targets.is_empty() {
        targets = TARGETS.iter().map(|s| s.to_string()).collect();
    }
    fuzz(secs, &targets)
}

/// The `fuzz` step of `cargo xtask test`: every target for `ACPIGATE_FUZZ_SECS` (default 60).
pub fn step() -> Result<()> {
    let secs = match std::env::var("ACPIGATE_FUZZ_SECS") {
        Ok(v) => v
            .parse()
            .with_context(|| format!("ACPIGATE_FUZZ_SECS=`{v}`: want seconds"))?,
        Err(_) => DEFAULT_SECS,
    };
    let all: Vec<String> = TARGETS.iter().map(|s| s.to_string()).collect();
    fuzz(secs, &all)
}
