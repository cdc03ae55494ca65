//! The bus-tier rig: a private system-like `dbus-daemon` and the real `acpigate` binary.

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// A scratch directory removed on drop (unless `ACPIGATE_KEEP_TEST_DIRS` is set).
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(tag: &str) -> Result<Self> {
        static N: AtomicU32 = AtomicU32::new(0);
        // Short, because unix socket paths are limited to 108 bytes.
        let path = std::env::temp_dir().join(format!(
            "ag-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).with_context(|| format!("mkdir {}", path.display()))?;
        Ok(Self { path })
    }
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("ACPIGATE_KEEP_TEST_DIRS").is_none() {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// A private `dbus-daemon` with a system-bus configuration in which anyone may own any name.
pub struct PrivateBus {
    child: Child,
    address: String,
    dir: TempDir,
}

/// A private system bus's configuration: `policy`, the default context's rules, and `rest`
/// (includes, limits) after it.
fn bus_config(sock: &Path, policy: &str, rest: &str) -> String {
    format!(
        r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
{policy}  </policy>
{rest}</busconfig>
"#,
        sock.display()
    )
}

/// The rigs' bus: anyone may own any name and call anything.
const OPEN_POLICY: &str = r#"    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_type="method_return"/>
    <allow send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="signal"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow eavesdrop="true"/>
"#;

/// The default context of a standard system bus (dbus's own `system.conf`): any user may
/// connect, nobody owns a name and no method call is sent unless a policy file opens it;
/// replies, signals and the calls to the bus daemon itself are open.
const SYSTEM_POLICY: &str = r#"    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
"#;

impl PrivateBus {
    /// Start a bus; fails with a clear message if `dbus-daemon` is missing.
    pub fn start() -> Result<Self> {
        let dir = TempDir::new("bus")?;
        let sock = dir.path().join("bus");
        let cfg = dir.path().join("bus.conf");
        std::fs::write(
            &cfg,
            bus_config(
                &sock,
                OPEN_POLICY,
                "  <limit name=\"max_replies_per_connection\">50000</limit>\n",
            ),
        )?;
        let (child, address) = spawn_bus(&cfg)?;
        Ok(Self {
            child,
            address,
            dir,
        })
    }

    /// A bus with the standard system policy (see [`SYSTEM_POLICY`]) and the policy
    /// files the packages install ([`shipped_policy_files`]), as a BMC's system bus has them.
    /// Their `user="root"` rules are applied to the user running the tests, so the rig needs
    /// no root (under root they are unchanged).
    pub fn start_with_system_policy() -> Result<Self> {
        let dir = TempDir::new("bus")?;
        let sock = dir.path().join("bus");
        let me = current_user_name()?;
        let mut includes = String::new();
        for file in shipped_policy_files()? {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let name = file.file_name().context("policy file name")?;
            let copy = dir.path().join(name);
            std::fs::write(
                &copy,
                text.replace("user=\"root\"", &format!("user=\"{me}\"")),
            )?;
            includes.push_str(&format!("  <include>{}</include>\n", copy.display()));
        }
        let cfg = dir.path().join("bus.conf");
        std::fs::write(&cfg, bus_config(&sock, SYSTEM_POLICY, &includes))?;
        let (child, address) = spawn_bus(&cfg)?;
        Ok(Self {
            child,
            address,
            dir,
        })
    }

    pub fn address(&self) -> &str {
        &self.address
    }

    /// A scratch directory that lives as long as the bus.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Write a daemon's config file `name` into the bus directory; its path, for `--config`.
    pub fn write_config(&self, name: &str, contents: &str) -> Result<PathBuf> {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }

    /// A new client connection to the bus.
    pub async fn connect(&self) -> Result<zbus::Connection> {
        zbus::connection::Builder::address(self.address.as_str())
            .build()
            .await
            .context("connecting to the private bus")
    }

    /// Stop the daemon and start a new one on the same socket, as `systemctl restart dbus`
    /// would: every client is disconnected; the address keeps its path but gets a new GUID.
    pub fn restart(&mut self) -> Result<()> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(self.dir.path().join("bus"));
        let cfg = self.dir.path().join("bus.conf");
        let (child, address) = spawn_bus(&cfg)?;
        self.child = child;
        self.address = address;
        Ok(())
    }
}

/// The simulated services join the private bus by its address; the simulator knows nothing
/// else of the harness.
impl acpigate_sim::BusAddress for PrivateBus {
    fn address(&self) -> &str {
        &self.address
    }
}

/// The D-Bus policy files the recipe installs (`units/*.conf` holding a `<busconfig>`).
pub fn shipped_policy_files() -> Result<Vec<PathBuf>> {
    let units = Path::new(env!("CARGO_MANIFEST_DIR")).join("../units");
    let mut files = Vec::new();
    for entry in
        std::fs::read_dir(&units).with_context(|| format!("listing {}", units.display()))?
    {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "conf")
            && std::fs::read_to_string(&path)?.contains("<busconfig>")
        {
            files.push(path);
        }
    }
    files.sort();
    if files.is_empty() {
        bail!("no D-Bus policy file in {}", units.display());
    }
    Ok(files)
}

/// The name of the user running the tests (`id -un`), for policy rules by user.
fn current_user_name() -> Result<String> {
    let out = Command::new("id")
        .arg("-un")
        .output()
        .context("running id -un")?;
    let name = String::from_utf8(out.stdout)?.trim().to_owned();
    if !out.status.success() || name.is_empty() {
        bail!("id -un gave no user name");
    }
    Ok(name)
}

/// Start `dbus-daemon` on `cfg` and read the address it prints.
fn spawn_bus(cfg: &Path) -> Result<(Child, String)> {
    let mut child = Command::new("dbus-daemon")
        .arg(format!("--config-file={}", cfg.display()))
        .args(["--nofork", "--print-address=1", "--nopidfile"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start dbus-daemon (install the dbus-daemon package, or run `cargo xtask test` as root)")?;
    let stdout = child.stdout.take().context("dbus-daemon stdout")?;
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .context("reading the bus address")?;
    let address = line.trim().to_owned();
    if address.is_empty() {
        let _ = child.kill();
        bail!("dbus-daemon printed no address");
    }
    Ok((child, address))
}

impl Drop for PrivateBus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The multi-call binary under test: `$ACPIGATE_BIN`, else `acpigate` in the target directory
/// the test executable was built in (`cargo xtask test` builds it first).
pub fn acpigate_bin() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("ACPIGATE_BIN") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe()?;
    // Tests run from target/<profile>/deps/, binaries from target/<profile>/.
    let candidates: Vec<PathBuf> = exe
        .ancestors()
        .skip(1)
        .take(2)
        .map(|d| d.join("acpigate"))
        .collect();
    let Some(bin) = candidates.iter().find(|p| p.is_file()).cloned() else {
        bail!(
            "acpigate not found in {candidates:?}: build it first (`cargo build -p acpigate`, done by `cargo xtask test`)"
        );
    };
    // `cargo test` builds the tests, not the binary they run: a binary older than the daemons'
    // sources would test yesterday's code and pass or fail for the wrong reason. Say so.
    static STALE: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    if let Some(why) = STALE.get_or_init(|| stale_because(&bin)) {
        bail!(
            "{why}: run `cargo build -p acpigate` (done by `cargo xtask test`) or set ACPIGATE_BIN"
        );
    }
    Ok(bin)
}

/// The crates compiled into `acpigate`, relative to the workspace root.
const BINARY_CRATES: &[&str] = &[
    "openbmc-vocab",
    "daemon-kit",
    "acpi-state-daemon",
    "sensor-gate",
    "ipmi-handlers",
    "ipmi-lan",
    "acpigate",
];

/// Why `bin` is older than the code it is built from, if it is: the first source file changed
/// after it was linked. Unreadable times count as not newer (the check is a guard, not a
/// build system).
fn stale_because(bin: &Path) -> Option<String> {
    fn mtime(p: &Path) -> Option<std::time::SystemTime> {
        std::fs::metadata(p).and_then(|m| m.modified()).ok()
    }
    fn newer_in(dir: &Path, than: std::time::SystemTime) -> Option<PathBuf> {
        for entry in std::fs::read_dir(dir).ok()?.flatten() {
            let p = entry.path();
            if p.is_dir() {
                if let Some(found) = newer_in(&p, than) {
                    return Some(found);
                }
            } else if mtime(&p).is_some_and(|t| t > than) {
                return Some(p);
            }
        }
        None
    }
    let built = mtime(bin)?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent()?;
    let mut files = vec![root.join("Cargo.toml"), root.join("Cargo.lock")];
    files.extend(
        BINARY_CRATES
            .iter()
            .map(|c| root.join(c).join("Cargo.toml")),
    );
    let changed = files
        .into_iter()
        .find(|f| mtime(f).is_some_and(|t| t > built))
        .or_else(|| {
            BINARY_CRATES
                .iter()
                .find_map(|c| newer_in(&root.join(c).join("src"), built))
        })?;
    Some(format!(
        "{} is older than {} (changed after it was built)",
        bin.display(),
        changed.display()
    ))
}

/// acpi-state-daemon's saved-state file in the bus directory, as the rigs configure it.
pub const ACPI_STATE_FILE: &str = "acpi-state.json";

/// The acpi-state-daemon config of the rigs, written to `name` in the bus directory: the saved
/// state in [`ACPI_STATE_FILE`] there, plus `extra` members (`, "key": value`).
pub fn acpi_state_config(bus: &PrivateBus, name: &str, extra: &str) -> Result<PathBuf> {
    let state = bus.dir().join(ACPI_STATE_FILE);
    bus.write_config(
        name,
        &format!("{{ \"state_file\": \"{}\"{extra} }}", state.display()),
    )
}

/// acpi-state-daemon as most rigs run it: [`acpi_state_config`] in `acpi.json`, started and
/// READY. [`Daemon::restart_as_before`] brings it back on the same config and state file.
pub fn spawn_acpi_state_daemon(bus: &PrivateBus) -> Result<Daemon> {
    let config = acpi_state_config(bus, "acpi.json", "")?;
    Daemon::spawn_with_config(bus, "acpi-state-daemon", &config)
}

/// The ipmi-handlers config of the rigs, written to `name` in the bus directory: its state
/// (SEL, sensor numbers) in the folder `state_dir` there, plus `extra` members.
pub fn ipmi_handlers_config(
    bus: &PrivateBus,
    name: &str,
    state_dir: &str,
    extra: &str,
) -> Result<PathBuf> {
    let state = bus.dir().join(state_dir);
    bus.write_config(
        name,
        &format!("{{ \"state_dir\": \"{}\"{extra} }}", state.display()),
    )
}

/// ipmi-handlers as the KCS and LAN rigs run it: state in `state/`, a 64-entry SEL, config in
/// `ipmi.json`; started and READY.
pub fn spawn_ipmi_handlers(bus: &PrivateBus) -> Result<Daemon> {
    let config = ipmi_handlers_config(bus, "ipmi.json", "state", ", \"sel_capacity\": 64")?;
    Daemon::spawn_with_config(bus, "ipmi-handlers", &config)
}

/// `acpigate <applet> --config <file>` run to completion with `config` in a scratch file and no
/// bus to reach, for configs that must be refused before the bus is touched: the file's path
/// (which the error must name) and the output.
pub fn run_config_without_bus(applet: &str, config: &str) -> Result<(PathBuf, Output)> {
    let dir = TempDir::new("cfg")?;
    let file = dir.path().join(format!("{applet}.json"));
    std::fs::write(&file, config).with_context(|| format!("writing {}", file.display()))?;
    let out = Command::new(acpigate_bin()?)
        .args([applet, "--config"])
        .arg(&file)
        .env("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent")
        .output()
        .with_context(|| format!("cannot run acpigate {applet}"))?;
    Ok((file, out))
}

/// A daemon applet of the real binary, running on a private bus.
pub struct Daemon {
    child: Option<Child>,
    applet: String,
    /// The arguments and extra environment of the first start, for [`Daemon::restart_as_before`].
    args: Vec<String>,
    env: Vec<(String, String)>,
    log: PathBuf,
    notify: UnixDatagram,
    notify_path: PathBuf,
    /// Every `sd_notify` line the current invocation sent so far, in order.
    notices: Vec<String>,
}

static DAEMON_N: AtomicU32 = AtomicU32::new(0);

impl Daemon {
    /// Start `acpigate <applet> <args>` with the bus address, a notify socket and a log file,
    /// and wait until it reports `READY=1` (as systemd's `Type=notify` would).
    pub fn spawn(bus: &PrivateBus, applet: &str, args: &[&str]) -> Result<Self> {
        Self::spawn_env(bus, applet, args, &[])
    }

    /// `acpigate <applet> --config <config>`, as the systemd units start every applet.
    pub fn spawn_with_config(bus: &PrivateBus, applet: &str, config: &Path) -> Result<Self> {
        Self::spawn(bus, applet, &["--config", &config.to_string_lossy()])
    }

    /// [`Daemon::spawn`] with extra environment.
    pub fn spawn_env(
        bus: &PrivateBus,
        applet: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Self> {
        let n = DAEMON_N.fetch_add(1, Ordering::Relaxed);
        let log = bus.dir().join(format!("{applet}-{n}.log"));
        let notify_path = bus.dir().join(format!("notify-{n}"));
        let notify = UnixDatagram::bind(&notify_path)?;
        notify.set_read_timeout(Some(Duration::from_millis(100)))?;
        let mut d = Self {
            child: None,
            applet: applet.to_owned(),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            log,
            notify,
            notify_path,
            notices: Vec::new(),
        };
        d.start(bus, args, env)?;
        Ok(d)
    }

    fn start(&mut self, bus: &PrivateBus, args: &[&str], env: &[(&str, &str)]) -> Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let mut cmd = Command::new(acpigate_bin()?);
        cmd.arg(&self.applet)
            .args(args)
            .env("DBUS_SYSTEM_BUS_ADDRESS", bus.address())
            .env("NOTIFY_SOCKET", &self.notify_path)
            .env("ACPIGATE_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start acpigate {}", self.applet))?;
        self.child = Some(child);
        self.notices.clear();
        self.wait_ready(Duration::from_secs(20))
    }

    /// One datagram from the notify socket (100 ms at most), its lines recorded.
    fn take_notice(&mut self) -> bool {
        let mut buf = [0u8; 4096];
        let Ok(n) = self.notify.recv(&mut buf) else {
            return false;
        };
        let before = self.notices.len();
        self.notices.extend(
            String::from_utf8_lossy(&buf[..n])
                .lines()
                .map(str::to_owned),
        );
        self.notices[before..].iter().any(|l| l == "READY=1")
    }

    /// Keep reading the notify socket for `d`; then every line received from the current
    /// invocation since it started, in order (`READY=1`, `WATCHDOG=1`, `STATUS=…`).
    pub fn notices_after(&mut self, d: Duration) -> Vec<String> {
        let until = Instant::now() + d;
        while Instant::now() < until {
            self.take_notice();
        }
        self.notices.clone()
    }

    fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.take_notice() {
                return Ok(());
            }
            if let Some(c) = self.child.as_mut()
                && let Some(status) = c.try_wait()?
            {
                bail!(
                    "acpigate {} exited before READY ({status}):\n{}",
                    self.applet,
                    self.log_text()
                );
            }
        }
        bail!(
            "acpigate {} not READY within {timeout:?}:\n{}",
            self.applet,
            self.log_text()
        )
    }

    /// Everything the daemon wrote to stdout/stderr so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last `n` lines of [`Daemon::log_text`], headed with the applet's name.
    pub fn log_tail(&self, n: usize) -> String {
        let text = self.log_text();
        let lines: Vec<&str> = text.lines().collect();
        let from = lines.len().saturating_sub(n);
        format!(
            "--- last {} of {} lines of acpigate {} ---\n{}",
            lines.len() - from,
            lines.len(),
            self.applet,
            lines[from..].join("\n")
        )
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, and the exit status.
    pub fn terminate(&mut self) -> Result<std::process::ExitStatus> {
        let mut c = self.child.take().context("not running")?;
        let pid = c.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status()?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(s) = c.try_wait()? {
                return Ok(s);
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                bail!("acpigate {} ignored SIGTERM", self.applet);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Start again after [`Daemon::kill`] or [`Daemon::terminate`].
    pub fn restart(&mut self, bus: &PrivateBus, args: &[&str]) -> Result<()> {
        self.kill();
        self.start(bus, args, &[])
    }

    /// SIGKILL if running, and start again with the arguments and environment of the first
    /// start: what a crash and `Restart=always` do.
    pub fn restart_as_before(&mut self, bus: &PrivateBus) -> Result<()> {
        self.kill();
        let args = self.args.clone();
        let env = self.env.clone();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        self.start(bus, &args, &env)
    }

    /// The process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "--- log of acpigate {} ---\n{}",
                self.applet,
                self.log_text()
            );
        }
    }
}

/// Poll `f` until it returns `Some`, or fail after `timeout` with `what`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A stand-in owner of the ACPI object's name says its last word and leaves: `conn` emits
/// PropertiesChanged of `interface` with `changed` on the ACPI object, then closes at once, so
/// that the announcement and the departure reach the bus back to back.
pub async fn announce_on_acpi_object_and_leave(
    conn: zbus::Connection,
    interface: &str,
    changed: std::collections::HashMap<&str, zbus::Variant<'_>>,
) -> Result<()> {
    use openbmc_vocab::names::{iface, path};
    conn.emit_signal(
        None::<&str>,
        path::ACPI_POWER_STATE,
        iface::PROPERTIES,
        "PropertiesChanged",
        &(interface, changed, Vec::<&str>::new()),
    )
    .await?;
    conn.close().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    /// A file standing in for the binary, last modified at `t`.
    fn binary_built_at(name: &str, t: SystemTime) -> Result<PathBuf> {
        let bin = std::env::temp_dir().join(format!("acpigate-{}-{name}", std::process::id()));
        let f = std::fs::File::create(&bin)?;
        f.set_modified(t)?;
        Ok(bin)
    }

    #[test]
    fn a_binary_older_than_the_sources_is_stale() -> Result<()> {
        let bin = binary_built_at("old", SystemTime::UNIX_EPOCH + Duration::from_secs(1))?;
        let why = stale_because(&bin);
        std::fs::remove_file(&bin)?;
        let why = why.context("a 1970 binary passed as current")?;
        assert!(why.contains("is older than"), "{why}");
        Ok(())
    }

    /// [`BINARY_CRATES`] is what `acpigate` is built from, as cargo sees it: the workspace
    /// crates it depends on, directly or not, with every applet on; not the simulator, not
    /// this crate. A crate added to the binary and missing here would let a stale binary pass.
    #[test]
    fn the_staleness_check_watches_exactly_the_crates_in_the_binary() -> Result<()> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .context("workspace root")?;
        let out = Command::new(env!("CARGO"))
            .args([
                "metadata",
                "--format-version",
                "1",
                "--no-deps",
                "--offline",
            ])
            .current_dir(root)
            .output()
            .context("running cargo metadata")?;
        anyhow::ensure!(
            out.status.success(),
            "cargo metadata: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let meta: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        let packages = meta["packages"].as_array().context("packages")?;
        // Workspace crate name -> (its directory under the root, its non-dev path deps).
        let mut crates = std::collections::BTreeMap::new();
        for p in packages {
            let name = p["name"].as_str().context("package name")?;
            let manifest = Path::new(p["manifest_path"].as_str().context("manifest_path")?);
            let dir = manifest
                .parent()
                .and_then(|d| d.strip_prefix(root).ok())
                .context("package outside the workspace")?
                .to_string_lossy()
                .into_owned();
            let deps: Vec<String> = p["dependencies"]
                .as_array()
                .context("dependencies")?
                .iter()
                .filter(|d| d["path"].is_string() && d["kind"].as_str() != Some("dev"))
                .filter_map(|d| d["name"].as_str().map(str::to_owned))
                .collect();
            crates.insert(name.to_owned(), (dir, deps));
        }
        let mut todo = vec!["acpigate".to_owned()];
        let mut built_from = std::collections::BTreeSet::new();
        while let Some(name) = todo.pop() {
            let (dir, deps) = crates.get(&name).context(format!("no crate {name}"))?;
            if built_from.insert(dir.clone()) {
                todo.extend(deps.iter().cloned());
            }
        }
        let watched: std::collections::BTreeSet<String> =
            BINARY_CRATES.iter().map(|c| (*c).to_owned()).collect();
        assert_eq!(watched, built_from);
        Ok(())
    }

    #[test]
    fn a_binary_newer_than_the_sources_is_current() -> Result<()> {
        let bin = binary_built_at("new", SystemTime::now() + Duration::from_secs(3600))?;
        let why = stale_because(&bin);
        std::fs::remove_file(&bin)?;
        assert_eq!(why, None);
        Ok(())
    }
}
