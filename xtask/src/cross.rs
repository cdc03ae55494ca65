//! Cross builds for the two ASPEED BMC generations, their tests under qemu-arm, the binary
//! size budget, and the Yocto layer checks.
//!
//! * `cargo xtask cross [--test] [--daemon] [--record] [TARGET…]` — release build of the
//!   multi-call binary for each target, sizes printed (`--record` also writes them to
//!   BENCHMARKS.md); `--test` runs the pure crates' tests under qemu-arm, `--daemon` runs the
//!   cross-built daemon on a private bus under qemu-arm and asks it over D-Bus.
//! * `cargo xtask test cross` — all of that for the CI (x86_64 is built for the size only: its
//!   tests already ran natively in the `unit` step).
//! * `cargo xtask test oelint` — the crates file and the recipe's LICENSE / LIC_FILES_CHKSUM
//!   are current (`cargo xtask licences --check`), the recipe's applet list matches
//!   the acpigate crate's features and each applet builds alone (what a trimmed
//!   PACKAGECONFIG builds), the example images have no runtime clash (`images`), and
//!   oelint-adv (pinned) is clean on the layer.
//!
//! The toolchain is Debian's rustc-web (`/usr/bin/cargo`, `/usr/bin/rustc`), installed by
//! `scripts/cross/cross-setup.sh` with the ARMv7 std from Debian's armhf package. ARMv6
//! soft-float (the AST2500) has no prebuilt std anywhere we may fetch from, so it is built
//! from Debian's rust-web-src with `-Zbuild-std` (`RUSTC_BOOTSTRAP=1`). rustup's toolchain
//! has neither, which is why this does not use `$CARGO`.

use std::fs;
use std::io::{BufRead, BufReader, Read as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::{blocklist, cache, crates, images, licences, setup, sh};

/// A build target and how to build, strip and run for it.
pub struct Target {
    pub triple: &'static str,
    /// Which BMC it stands for, for the size table.
    pub board: &'static str,
    pub linker: Option<&'static str>,
    pub strip: &'static str,
    /// qemu-arm `-cpu` and `-L` (the target's glibc); None for the host.
    pub qemu: Option<(&'static str, &'static str)>,
}

pub const X86_64: Target = Target {
    triple: "x86_64-unknown-linux-gnu",
    board: "host (reference)",
    linker: None,
    strip: "strip",
    qemu: None,
};
pub const ARMV7: Target = Target {
    triple: "armv7-unknown-linux-gnueabihf",
    board: "AST2600 (Cortex-A7)",
    linker: Some("arm-linux-gnueabihf-gcc"),
    strip: "arm-linux-gnueabihf-strip",
    qemu: Some(("cortex-a7", "/usr/arm-linux-gnueabihf")),
};
pub const ARMV6: Target = Target {
    triple: "arm-unknown-linux-gnueabi",
    board: "AST2500 (ARM1176, soft-float)",
    linker: Some("arm-linux-gnueabi-gcc"),
    strip: "arm-linux-gnueabi-strip",
    qemu: Some(("arm1176", "/usr/arm-linux-gnueabi")),
};
pub const TARGETS: [&Target; 3] = [&X86_64, &ARMV7, &ARMV6];

/// The crates whose unit tests run under qemu: everything without a bus, a device or a
/// process of its own (the bus tier needs a dbus-daemon and the host binary; it runs natively).
const PURE_CRATES: &[&str] = &[
    "openbmc-vocab",
    "daemon-kit",
    "acpi-state-daemon",
    "sensor-gate",
    "ipmi-handlers",
];

/// oelint-adv from PyPI, pinned so a new rule cannot turn CI red on its own.
pub const OELINT_ADV: &str = "oelint-adv==9.11.2";

const DEBIAN_CARGO: &str = "/usr/bin/cargo";
const DEBIAN_RUSTC: &str = "/usr/bin/rustc";
const DEBIAN_RUSTDOC: &str = "/usr/bin/rustdoc";

pub fn run(args: &[String]) -> Result<()> {
    let mut test = false;
    let mut daemon = false;
    let mut record = false;
    let mut targets: Vec<&Target> = Vec::new();
    for a in args {
        match a.as_str() {
            "--test" => test = true,
            "--daemon" => daemon = true,
            "--record" => record = true,
            t => match TARGETS.iter().find(|x| x.triple == t) {
                Some(x) => targets.push(x),
                None => bail!(
                    "usage: cargo xtask cross [--test] [--daemon] [--record] [TARGET…]\n\
                     unknown argument `{t}`; targets: {}",
                    TARGETS.map(|t| t.triple).join(" ")
                ),
            },
        }
    }
    if targets.is_empty() {
        targets = TARGETS.to_vec();
    }
    if record && targets.len() != TARGETS.len() {
        bail!("--record needs every target (the section lists all three)");
    }
    toolchain()?;
    let started = Instant::now();
    let bins = build_release(&targets)?;
    let mut sizes = Vec::new();
    for (t, bin) in targets.iter().zip(&bins) {
        let bin = bin.as_path();
        sizes.push(measure(t, bin)?);
        if test && t.qemu.is_some() {
            unit_tests(t)?;
        }
        if daemon && t.qemu.is_some() {
            daemon_on_private_bus(t, bin)?;
        }
    }
    let table = size_table(&sizes);
    println!("{table}");
    if record {
        record_sizes(&table)?;
    }
    eprintln!(
        "xtask cross: done in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// CI step `cross`: both ARM builds, their unit tests and one daemon under qemu-arm, sizes.
pub fn ci() -> Result<()> {
    let t0 = Instant::now();
    toolchain()?;
    let mut timings = vec![("toolchain".to_string(), t0.elapsed().as_secs_f64())];
    let s = Instant::now();
    let bins = build_release(&TARGETS)?;
    timings.push((
        "release builds, 3 targets".to_string(),
        s.elapsed().as_secs_f64(),
    ));
    let mut sizes = Vec::new();
    for (t, bin) in TARGETS.iter().zip(&bins) {
        sizes.push(measure(t, bin)?);
    }
    for (t, bin) in TARGETS.iter().zip(&bins) {
        if t.qemu.is_some() {
            let s = Instant::now();
            unit_tests(t)?;
            daemon_on_private_bus(t, bin)?;
            timings.push((
                format!("qemu tests {}", t.triple),
                s.elapsed().as_secs_f64(),
            ));
        }
    }
    println!("{}", size_table(&sizes));
    for (what, secs) in timings {
        eprintln!("  {what:<44} {secs:>6.0} s");
    }
    Ok(())
}

/// Install (as root) or check the Debian cross toolchain.
fn toolchain() -> Result<()> {
    let script = sh::root().join("scripts/cross/cross-setup.sh");
    if is_root() {
        return sh::run(Command::new("bash").arg(&script));
    }
    let tools = [
        "arm-linux-gnueabihf-gcc",
        "arm-linux-gnueabi-gcc",
        "qemu-arm",
        "xz",
    ];
    for p in [DEBIAN_CARGO, DEBIAN_RUSTC].into_iter().chain(tools) {
        if !Path::new(p).exists() && !sh::have(p) {
            bail!(
                "{p} is missing: run `sudo {}` (Debian rustc-web + cross gcc + qemu-user)",
                script.display()
            );
        }
    }
    Ok(())
}

fn is_root() -> bool {
    sh::output(Command::new("id").arg("-u")).is_ok_and(|o| o.trim() == "0")
}

/// The sysroot's prebuilt std for `triple`, if there is one.
fn has_prebuilt_std(triple: &str) -> Result<bool> {
    let sysroot = sh::output(Command::new(DEBIAN_RUSTC).args(["--print", "sysroot"]))?;
    Ok(Path::new(sysroot.trim())
        .join("lib/rustlib")
        .join(triple)
        .join("lib")
        .is_dir())
}

/// Target directory for every cross build (all with Debian's rustc, which is not rustup's).
fn target_dir() -> PathBuf {
    sh::target_dir().join("cross")
}

/// `/usr/bin/cargo SUB --target T1 --target T2 …` with the linkers, qemu runners and, when
/// the targets have no prebuilt std, `-Zbuild-std`. All targets of one call must agree on
/// that (cargo builds std for every target of a `-Zbuild-std` call).
fn cargo_for(targets: &[&Target], sub: &str) -> Result<Command> {
    let mut build_std = None;
    for t in targets {
        let b = !has_prebuilt_std(t.triple)?;
        if build_std.is_some_and(|x| x != b) {
            bail!("cannot mix targets with and without a prebuilt std in one cargo call");
        }
        build_std = Some(b);
    }
    let mut c = Command::new(DEBIAN_CARGO);
    c.current_dir(sh::root())
        .env("RUSTC", DEBIAN_RUSTC)
        .env("RUSTDOC", DEBIAN_RUSTDOC)
        .env("CARGO_TARGET_DIR", target_dir())
        // -Zbuild-std needs it, and cargo fingerprints it: setting it for every cross build
        // lets all targets share one directory and so build the host's proc-macros and build
        // scripts once, not once per kind of target (CI time). Our code uses no unstable
        // feature; the lints would reject one anyway.
        .env("RUSTC_BOOTSTRAP", "1")
        // rustup's proxies would otherwise pick their own toolchain for nested tools.
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("CARGO_BUILD_RUSTC_WRAPPER");
    for t in targets {
        let var = t.triple.to_uppercase().replace('-', "_");
        if let Some(l) = t.linker {
            c.env(format!("CARGO_TARGET_{var}_LINKER"), l);
        }
        if let Some((cpu, lib)) = t.qemu {
            c.env(
                format!("CARGO_TARGET_{var}_RUNNER"),
                format!("qemu-arm -cpu {cpu} -L {lib}"),
            );
        }
    }
    c.arg(sub);
    if build_std == Some(true) {
        // The test harness needs unwinding and the `test` crate; the release binary aborts.
        let std = if sub == "test" {
            "std,panic_unwind,test"
        } else {
            "std,panic_abort"
        };
        c.arg(format!("-Zbuild-std={std}"));
    }
    c.arg("--locked");
    for t in targets {
        c.args(["--target", t.triple]);
    }
    Ok(c)
}

/// Release builds of the multi-call binary with every applet; returns the binaries' paths.
/// Targets with a prebuilt std go into one cargo call, so that their single-threaded fat-LTO
/// links run side by side on a two-core machine.
pub fn build_release(targets: &[&Target]) -> Result<Vec<PathBuf>> {
    let mut groups: Vec<(bool, Vec<&Target>)> = Vec::new();
    for t in targets {
        let b = !has_prebuilt_std(t.triple)?;
        match groups.iter_mut().find(|(x, _)| *x == b) {
            Some((_, g)) => g.push(t),
            None => groups.push((b, vec![t])),
        }
    }
    for (_, g) in &groups {
        let names: Vec<String> = g
            .iter()
            .map(|t| format!("{} ({})", t.triple, t.board))
            .collect();
        eprintln!("\n--- xtask cross: release build for {}", names.join(", "));
        let mut c = cargo_for(g, "build")?;
        sh::run(c.args(["--release", "-p", "acpigate", "--all-features"]))?;
    }
    let mut bins = Vec::new();
    for t in targets {
        let bin = target_dir().join(t.triple).join("release/acpigate");
        if !bin.is_file() {
            bail!("{} was not produced", bin.display());
        }
        bins.push(bin);
    }
    Ok(bins)
}

/// The pure crates' tests (dev profile), run under qemu-arm by cargo's target runner.
pub fn unit_tests(t: &Target) -> Result<()> {
    eprintln!(
        "\n--- xtask cross: unit tests for {} under qemu-arm",
        t.triple
    );
    let mut c = cargo_for(&[t], "test")?;
    let root = sh::root();
    let mut any = false;
    for p in PURE_CRATES {
        if root.join(p).join("Cargo.toml").is_file() {
            c.args(["-p", p]);
            any = true;
        }
    }
    if !any {
        bail!("none of the pure crates ({}) exist", PURE_CRATES.join(" "));
    }
    // CI time: these builds only have to prove the code right on the target CPU, so no
    // debug info and no optimisation of dependencies (the workspace's dev profile asks for
    // opt-level 1 to speed up the native bus tier; here that only costs compile time).
    c.args([
        "--config",
        "profile.dev.debug=false",
        "--config",
        "profile.dev.package.\"*\".opt-level=0",
    ]);
    // Unit and integration tests; doc tests stay native (they test documentation, not code
    // generation, and cross doc tests need a rustdoc runner setup of their own).
    sh::run(c.args(["--lib", "--bins", "--tests"]))
}

/// Size of the release binary: as built (the release profile strips), after the target's
/// strip, and xz-compressed (what a compressed flash image roughly pays).
pub struct Size {
    pub triple: &'static str,
    pub board: &'static str,
    pub built: u64,
    pub stripped: u64,
    pub xz: u64,
}

fn measure(t: &Target, bin: &Path) -> Result<Size> {
    let tmp = std::env::temp_dir().join(format!("acpigate-size-{}", std::process::id()));
    fs::create_dir_all(&tmp)?;
    let out = tmp.join(format!("acpigate-{}", t.triple));
    sh::run(Command::new(t.strip).arg("-o").arg(&out).arg(bin))?;
    let built = fs::metadata(bin)?.len();
    let stripped = fs::metadata(&out)?.len();
    let mut xz = Command::new("xz")
        .args(["-9e", "-c"])
        .arg(&out)
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot run xz")?;
    let mut compressed = 0u64;
    if let Some(mut so) = xz.stdout.take() {
        let mut buf = [0u8; 65536];
        loop {
            let n = so.read(&mut buf)?;
            if n == 0 {
                break;
            }
            compressed += n as u64;
        }
    }
    if !xz.wait()?.success() {
        bail!("xz failed on {}", out.display());
    }
    let _ = fs::remove_dir_all(&tmp);
    Ok(Size {
        triple: t.triple,
        board: t.board,
        built,
        stripped,
        xz: compressed,
    })
}

fn size_table(sizes: &[Size]) -> String {
    let mut s = String::from(
        "| target | board | release binary | stripped | xz -9e |\n|---|---|---:|---:|---:|\n",
    );
    for z in sizes {
        s.push_str(&format!(
            "| {} | {} | {} | {} ({:.0} KiB) | {} ({:.0} KiB) |\n",
            z.triple,
            z.board,
            z.built,
            z.stripped,
            z.stripped as f64 / 1024.0,
            z.xz,
            z.xz as f64 / 1024.0
        ));
    }
    s
}

const SECTION_START: &str = "<!-- section:size -->";
const SECTION_END: &str = "<!-- /section:size -->";

/// Replace our section of BENCHMARKS.md (the rest belongs to others), creating it if needed.
fn record_sizes(table: &str) -> Result<()> {
    let path = sh::root().join("BENCHMARKS.md");
    let rustc = sh::output(Command::new(DEBIAN_RUSTC).arg("--version"))?;
    let features = applet_features()?.join(", ");
    // Which source the figures belong to: the checkout's commit, or (for an exported tree)
    // what ACPIGATE_COMMIT says.
    let commit = sh::output(Command::new("git").current_dir(sh::root()).args([
        "rev-parse",
        "--short",
        "HEAD",
    ]))
    .map(|c| c.trim().to_string())
    .or_else(|_| std::env::var("ACPIGATE_COMMIT"))
    .unwrap_or_else(|_| "unknown".to_string());
    let date = sh::output(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"]))?;
    let section = format!(
        "{SECTION_START}\n## Footprint: binary size\n\n\
         Command: `cargo xtask cross --record` — {}, commit {commit}; sizes do not depend on \
         the machine. CI prints the same table in step `cross`.\n\n\
         The one multi-call binary `acpigate` with every applet ({features}), release profile \
         (opt-level z, fat LTO, one codegen unit, panic=abort; it strips, so `stripped` — \
         after the target's binutils strip — equals the build), built with {}. xz -9e is \
         what a compressed flash image roughly pays.\n\n{table}\
         {SECTION_END}\n",
        date.trim(),
        rustc.trim()
    );
    let old = fs::read_to_string(&path).unwrap_or_else(|_| "# Benchmarks\n".to_string());
    let new = match (old.find(SECTION_START), old.find(SECTION_END)) {
        (Some(a), Some(b)) if b > a => {
            let end = b + SECTION_END.len();
            let rest = old[end..].strip_prefix('\n').unwrap_or(&old[end..]);
            format!("{}{section}{rest}", &old[..a])
        }
        _ => {
            let sep = if old.ends_with("\n\n") {
                ""
            } else if old.ends_with('\n') {
                "\n"
            } else {
                "\n\n"
            };
            format!("{old}{sep}{section}")
        }
    };
    fs::write(&path, new).with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!("xtask cross: wrote the size section of {}", path.display());
    Ok(())
}

/// The applet features of the acpigate crate (every feature but `default`).
pub fn applet_features() -> Result<Vec<String>> {
    let path = sh::root().join("acpigate/Cargo.toml");
    let text =
        fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut in_features = false;
    let mut out = Vec::new();
    for line in text.lines() {
        let l = line.trim();
        if l.starts_with('[') {
            in_features = l == "[features]";
            continue;
        }
        if !in_features || l.is_empty() || l.starts_with('#') {
            continue;
        }
        if let Some((k, _)) = l.split_once('=') {
            let k = k.trim().trim_matches('"');
            if k != "default" {
                out.push(k.to_string());
            }
        }
    }
    if out.is_empty() {
        bail!("{} has no applet features", path.display());
    }
    Ok(out)
}

/// A private system-like bus: any uid may own any name, as on a BMC where everything is root.
struct PrivateBus {
    child: Child,
    address: String,
    dir: PathBuf,
}

impl PrivateBus {
    fn start(dir: &Path) -> Result<Self> {
        fs::create_dir_all(dir)?;
        let sock = dir.join("bus");
        let conf = dir.join("bus.conf");
        fs::write(
            &conf,
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
"#,
                sock.display()
            ),
        )?;
        let mut child = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", conf.display()))
            .args(["--nofork", "--print-address=1"])
            .stdout(Stdio::piped())
            .spawn()
            .context("cannot start dbus-daemon")?;
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            BufReader::new(out).read_line(&mut line)?;
        }
        let address = line.trim().to_string();
        if address.is_empty() {
            let _ = child.kill();
            let _ = child.wait();
            bail!("dbus-daemon printed no address");
        }
        Ok(Self {
            child,
            address,
            dir: dir.to_path_buf(),
        })
    }
}

impl Drop for PrivateBus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Kills the child it holds when dropped (a failed check must not leave qemu running).
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Run the cross-built acpi-state-daemon under qemu-arm on a private bus and read its
/// `SysACPIStatus` with busctl, as ipmid or an operator would.
pub fn daemon_on_private_bus(t: &Target, bin: &Path) -> Result<()> {
    let Some((cpu, lib)) = t.qemu else {
        bail!("{} is not run under qemu", t.triple)
    };
    eprintln!(
        "\n--- xtask cross: acpi-state-daemon for {} under qemu-arm -cpu {cpu} on a private bus",
        t.triple
    );
    setup::host_packages(setup::BASE_PACKAGES)?;
    let dir =
        std::env::temp_dir().join(format!("acpigate-qemu-{}-{}", std::process::id(), t.triple));
    let bus = PrivateBus::start(&dir.join("bus"))?;
    let config = dir.join("acpi-state-daemon.json");
    fs::write(
        &config,
        format!(
            "{{ \"state_file\": \"{}\" }}\n",
            dir.join("acpi-state.json").display()
        ),
    )?;
    let log = dir.join("daemon.log");
    let started = Instant::now();
    let daemon = Command::new("qemu-arm")
        .args(["-cpu", cpu, "-L", lib])
        .arg(bin)
        .arg("acpi-state-daemon")
        .arg("--config")
        .arg(&config)
        .env("DBUS_SYSTEM_BUS_ADDRESS", &bus.address)
        .env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC")
        .stdout(Stdio::null())
        .stderr(fs::File::create(&log)?)
        .spawn()
        .context("cannot start qemu-arm")?;
    let mut daemon = Reaped(daemon);
    let ask = || {
        Command::new("busctl")
            .arg(format!("--address={}", bus.address))
            .args([
                "get-property",
                openbmc_name::ACPI_SERVICE,
                openbmc_name::ACPI_PATH,
                openbmc_name::ACPI_IFACE,
                "SysACPIStatus",
            ])
            .output()
    };
    // qemu-arm translating a cold binary takes a few seconds; the bound is generous because
    // CI machines are shared, and the loop ends at the first answer.
    let deadline = Instant::now() + Duration::from_secs(60);
    let answer = loop {
        if let Some(status) = daemon.0.try_wait()? {
            let log = fs::read_to_string(&log).unwrap_or_default();
            bail!("acpi-state-daemon under qemu-arm exited early ({status}):\n{log}");
        }
        let out = ask().context("cannot run busctl")?;
        if out.status.success() {
            break String::from_utf8_lossy(&out.stdout).trim().to_string();
        }
        if Instant::now() > deadline {
            let log = fs::read_to_string(&log).unwrap_or_default();
            bail!(
                "no answer from acpi-state-daemon under qemu-arm within 60 s: {}\n{log}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let want_prefix = format!("s \"{}.ACPI.", openbmc_name::ACPI_IFACE);
    if !answer.starts_with(&want_prefix) {
        bail!("unexpected SysACPIStatus answer `{answer}` (want `{want_prefix}…\"`)");
    }
    eprintln!(
        "xtask cross: {} daemon answered after {:.1} s: SysACPIStatus {answer}",
        t.triple,
        started.elapsed().as_secs_f64()
    );
    drop(daemon);
    drop(bus);
    let _ = fs::remove_dir_all(&dir);
    Ok(())
}

/// The three names busctl needs. xtask does not link openbmc-vocab (it would pull the daemons'
/// dependency tree into every `cargo xtask` start), so they are spelled here once, for this
/// check only, and the check fails if the daemon serves anything else.
mod openbmc_name {
    pub const ACPI_SERVICE: &str = "xyz.openbmc_project.Control.Power.ACPIPowerState";
    pub const ACPI_PATH: &str = "/xyz/openbmc_project/control/host0/acpi_power_state";
    pub const ACPI_IFACE: &str = "xyz.openbmc_project.Control.Power.ACPIPowerState";
}

/// CI step `oelint`: crates file and recipe licences current, recipe applets = crate
/// features, each applet builds alone, oelint-adv clean.
pub fn oelint() -> Result<()> {
    crates::run(&["--check".to_string()])?;
    licences::run(&["--check".to_string()])?;
    check_recipe_applets()?;
    images::check()?;
    blocklist::check()?;
    // The recipe builds `--no-default-features` plus one feature per applet in
    // ACPIGATE_APPLETS: every applet must build alone. (After the clippy step the
    // dependencies are already checked, so this costs seconds.)
    for a in applet_features()? {
        sh::run(sh::cargo().args([
            "check",
            "--locked",
            "--quiet",
            "-p",
            "acpigate",
            "--no-default-features",
            "--features",
            &a,
        ]))?;
    }
    // Kept between runs and clones in the shared cache: the install is the slow part.
    let venv = cache::entry("oelint-venv")?;
    let py = venv.join("bin/python3");
    let oelint = venv.join("bin/oelint-adv");
    let pinned = venv.join(".pinned");
    if fs::read_to_string(&pinned).ok().as_deref() != Some(OELINT_ADV) {
        // Debian's python3 needs python3-venv for this; other Pythons have it built in.
        if sh::run(Command::new("python3").args(["-m", "venv"]).arg(&venv)).is_err() {
            setup::host_packages(&["python3-venv"])?;
            sh::run(
                Command::new("python3")
                    .args(["-m", "venv", "--clear"])
                    .arg(&venv),
            )?;
        }
        sh::run(
            Command::new(&py)
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                ])
                .arg(OELINT_ADV),
        )?;
        fs::write(&pinned, OELINT_ADV)?;
    }
    let layer = sh::root().join("yocto/meta-acpigate");
    let mut files = Vec::new();
    collect_recipe_files(&layer, &mut files)?;
    files.sort();
    // The layer's .oelint.cfg (release, our variables, the suppressions and why) is named
    // explicitly so that a ~/.oelint.cfg cannot change the verdict. Any finding fails.
    sh::run(
        Command::new(&oelint)
            .current_dir(&layer)
            .env("OELINT_CONFIG", layer.join(".oelint.cfg"))
            .arg("--quiet")
            .args(&files),
    )?;
    eprintln!(
        "xtask oelint: {} clean on {} files",
        OELINT_ADV,
        files.len()
    );
    Ok(())
}

fn collect_recipe_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for e in fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let p = e?.path();
        if p.is_dir() {
            collect_recipe_files(&p, out)?;
        } else if p
            .extension()
            // Include files are linted through the recipes that require them.
            .is_some_and(|x| x == "bb" || x == "bbappend" || x == "conf" || x == "bbclass")
        {
            out.push(p);
        }
    }
    Ok(())
}

/// The layer's `ACPIGATE_APPLETS_ALL` (`acpigate-applets.inc`): every applet the recipe can
/// build, in the order written.
pub fn recipe_applets_all() -> Result<Vec<String>> {
    let inc = sh::root().join("yocto/meta-acpigate/recipes-phosphor/acpigate/acpigate-applets.inc");
    let text =
        fs::read_to_string(&inc).with_context(|| format!("cannot read {}", inc.display()))?;
    let Some(value) = text
        .lines()
        .find_map(|l| l.strip_prefix("ACPIGATE_APPLETS_ALL = \""))
        .and_then(|v| v.strip_suffix('"'))
    else {
        bail!(
            "{}: no one-line ACPIGATE_APPLETS_ALL = \"…\"",
            inc.display()
        );
    };
    let applets: Vec<String> = value.split_whitespace().map(str::to_string).collect();
    if applets.is_empty() {
        bail!("{}: ACPIGATE_APPLETS_ALL is empty", inc.display());
    }
    Ok(applets)
}

/// The layer's `ACPIGATE_APPLETS_ALL` must name exactly the applet features of the acpigate
/// crate, and the recipe must map each to its Cargo feature and its units: a new daemon
/// without a package (or a package for a dropped one) fails here, not on a BMC team's build.
fn check_recipe_applets() -> Result<()> {
    let dir = sh::root().join("yocto/meta-acpigate/recipes-phosphor/acpigate");
    let inc = dir.join("acpigate-applets.inc");
    let recipe = dir.join("acpigate_git.bb");
    let recipe_text =
        fs::read_to_string(&recipe).with_context(|| format!("cannot read {}", recipe.display()))?;
    src_uri_before_crates(&recipe_text).with_context(|| format!("{}", recipe.display()))?;
    let mut layer = recipe_applets_all()?;
    let value = layer.join(" ");
    layer.sort_unstable();
    let mut features = applet_features()?;
    features.sort();
    if layer != features {
        bail!(
            "{}: ACPIGATE_APPLETS_ALL is `{}` but acpigate/Cargo.toml has the applet features `{}`",
            inc.display(),
            layer.join(" "),
            features.join(" ")
        );
    }
    let units = sh::root().join("units");
    let mut claimed: Vec<String> = Vec::new();
    let packages = recipe_text
        .lines()
        .find_map(|l| l.strip_prefix("PACKAGE_BEFORE_PN = \""))
        .unwrap_or_default();
    for a in &layer {
        if !packages
            .split_whitespace()
            .any(|p| p.trim_end_matches('"') == format!("${{PN}}-{a}"))
        {
            bail!("{}: PACKAGE_BEFORE_PN lacks ${{PN}}-{a}", recipe.display());
        }
        let files = format!("FILES:${{PN}}-{a} += \"${{@acpigate_package_files(d, '{a}')}}\"");
        if !recipe_text.lines().any(|l| l == files) {
            bail!("{}: missing the line `{files}`", recipe.display());
        }
        let pc = format!("PACKAGECONFIG[{a}] = \"--features {a},,\"");
        if !recipe_text.lines().any(|l| l == pc) {
            bail!("{}: missing the line `{pc}`", recipe.display());
        }
        for flag in ["ACPIGATE_UNITS", "ACPIGATE_DBUS_POLICY"] {
            let Some(files) = recipe_var(&recipe_text, &format!("{flag}[{a}]")) else {
                bail!("{}: missing `{flag}[{a}] = \"…\"`", recipe.display());
            };
            for f in files.split_whitespace() {
                if !units.join(f).is_file() {
                    bail!(
                        "{}: {flag}[{a}] names units/{f}, which does not exist",
                        recipe.display()
                    );
                }
                claimed.push(f.to_string());
            }
        }
    }
    // Every unit and policy file must reach a package, or the image silently lacks it.
    let mut names = Vec::new();
    for e in fs::read_dir(&units).with_context(|| format!("cannot list {}", units.display()))? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if e.path().is_dir() {
            // <unit>.d/: drop-ins for an upstream unit, named with their directory.
            for f in fs::read_dir(e.path())? {
                names.push(format!("{name}/{}", f?.file_name().to_string_lossy()));
            }
        } else {
            names.push(name);
        }
    }
    for name in names {
        let shipped = [".service", ".target", ".socket", ".timer", ".path", ".conf"]
            .iter()
            .any(|x| name.ends_with(x));
        if shipped && !claimed.contains(&name) {
            bail!(
                "units/{name} is in no applet's ACPIGATE_UNITS / ACPIGATE_DBUS_POLICY in {}",
                recipe.display()
            );
        }
    }
    eprintln!("xtask oelint: layer applets match the crate features ({value})");
    Ok(())
}

/// The value of a one-line `KEY = "value"` in a recipe (KEY may carry an override or a
/// flag: `RCONFLICTS:${PN}-x`, `ACPIGATE_UNITS[x]`), or None when no such line exists.
pub fn recipe_var<'a>(recipe: &'a str, key: &str) -> Option<&'a str> {
    recipe.lines().find_map(|l| {
        l.strip_prefix(key)?
            .trim_start()
            .strip_prefix("= \"")?
            .strip_suffix('"')
    })
}

/// The crates file adds every crate with `SRC_URI +=`: a plain assignment to `SRC_URI`
/// after it is required would silently drop them all, and the build would fail far from
/// the cause (cargo cannot find a crate, offline).
fn src_uri_before_crates(recipe: &str) -> Result<()> {
    let Some(require) = recipe
        .lines()
        .position(|l| l.trim() == "require ${BPN}-crates.inc")
    else {
        bail!("no `require ${{BPN}}-crates.inc`");
    };
    for (n, l) in recipe.lines().enumerate().skip(require + 1) {
        let l = l.trim_start();
        if let Some(rest) = l.strip_prefix("SRC_URI") {
            let op = rest.trim_start();
            if op.starts_with("= ") || op.starts_with(":= ") || op.starts_with("=\"") {
                bail!(
                    "line {}: `SRC_URI =` after `require ${{BPN}}-crates.inc` (line {}) drops every crate; assign it before",
                    n + 1,
                    require + 1
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_src_uri_assignment_after_the_crates_file_is_refused() {
        let ok = "SRC_URI = \"git://x;branch=main\"\nrequire ${BPN}-crates.inc\nSRC_URI += \"file://a\"\n";
        assert!(src_uri_before_crates(ok).is_ok());
        let bad = "require ${BPN}-crates.inc\n\nSRC_URI = \"${ACPIGATE_GIT_URI}\"\n";
        let e = src_uri_before_crates(bad)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.starts_with("line 3: `SRC_URI =` after"), "{e}");
        assert!(src_uri_before_crates("SRC_URI = \"x\"\n").is_err());
    }
}
