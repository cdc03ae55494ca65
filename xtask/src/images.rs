//! The documented images checked for clashes that cannot work at runtime (CI step `oelint`).
//!
//! Each `yocto/meta-acpigate/examples/*.conf` describes an image: the acpigate applets it
//! ships and whether netipmid stays in it. For every example, on the boards it may meet (with
//! or without fan control, with or without a KCS bridge, netipmid on one interface or two),
//! this builds a model of the image from what the layer really produces — the recipe's
//! package lists, units and drop-ins, its RCONFLICTS — and from the upstream packages' facts
//! below, works out which units run under systemd, and fails on:
//! * two installed packages that RCONFLICT, or two packages shipping the same file;
//! * two running units owning the same bus name (two `Ipmi.Host` owners);
//! * two running UDP 623 listeners that overlap (netipmid binds to one interface, ipmi-lan to
//!   all of them);
//! * a running unit that needs a bus name nobody runs (SoftPowerOff without `Control.Host`,
//!   a KCS bridge without `Ipmi.Host`);
//! * an example that drops netipmid with `IMAGE_FEATURES:remove` (PAM still calls pam-ipmi's
//!   modules, so every password change fails) instead of the distro include.
//!
//! A unit runs when its package enables it or a running unit wants it, unless a
//! `ConditionPathExists=` says otherwise about a file the image's packages ship (files
//! outside the packages' paths, e.g. under /etc or /sys, count as present).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

use anyhow::{Context, Result, bail};
use openbmc_vocab::names::bus;

use crate::{cross, sh};

const UNIT_DIR: &str = "/usr/lib/systemd/system";
const DISTRO_NO_RMCP: &str = "require conf/distro/include/phosphor-no-ipmi-rmcp.inc";

/// Something only one running unit may hold.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Resource {
    Bus(String),
    /// A UDP port, on one network interface or (None) on all of them.
    Udp(u16, Option<String>),
}

impl Resource {
    fn overlaps(&self, other: &Resource) -> bool {
        match (self, other) {
            (Resource::Bus(a), Resource::Bus(b)) => a == b,
            (Resource::Udp(p, a), Resource::Udp(q, b)) => {
                p == q && (a.is_none() || b.is_none() || a == b)
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for Resource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Resource::Bus(n) => write!(f, "bus name {n}"),
            Resource::Udp(p, None) => write!(f, "UDP port {p} on every interface"),
            Resource::Udp(p, Some(i)) => write!(f, "UDP port {p} on {i}"),
        }
    }
}

#[derive(Clone, Debug, Default)]
struct Unit {
    wants: Vec<String>,
    owns: Vec<Resource>,
    needs: Vec<Resource>,
    /// `ConditionPathExists=` values of the unit itself (`!` = must not exist).
    conditions: Vec<String>,
}

#[derive(Clone, Debug, Default)]
struct Package {
    name: String,
    /// Files it installs (absolute paths; units under [`UNIT_DIR`]).
    files: Vec<String>,
    /// Units it enables (instances by name).
    enabled: Vec<String>,
    /// Units it ships, by the name they run as.
    units: BTreeMap<String, Unit>,
    rconflicts: Vec<String>,
    /// Runtime dependencies that always come with it (incl. the shared-library ones
    /// do_package adds).
    rdepends: Vec<String>,
    /// Drop-in files it ships: (unit or template name, conditions).
    dropins: Vec<(String, Vec<String>)>,
}

fn bus(name: &str) -> Resource {
    Resource::Bus(name.to_string())
}

fn unit(wants: &[&str], owns: Vec<Resource>, needs: Vec<Resource>) -> Unit {
    Unit {
        wants: wants.iter().map(|s| s.to_string()).collect(),
        owns,
        needs,
        conditions: Vec::new(),
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

// ---- the upstream packages, as read in openbmc/openbmc 8e3322f34f and the named repos ----

/// phosphor-ipmi-host (meta-phosphor/recipes-phosphor/ipmi/phosphor-ipmi-host_git.bb and
/// phosphor-ipmi-host.service): ipmid, enabled, `BusName=xyz.openbmc_project.Control.Host`
/// and it requests `xyz.openbmc_project.Ipmi.Host` (phosphor-host-ipmid e6899a55,
/// ipmid-new.cpp); SoftPowerOff, linked into obmc-host-shutdown@0.target, calls
/// `Control.Host` (softoff/softoff.cpp).
fn phosphor_ipmi_host() -> Package {
    let spo = "xyz.openbmc_project.Ipmi.Internal.SoftPowerOff.service";
    Package {
        name: "phosphor-ipmi-host".into(),
        files: vec![
            format!("{UNIT_DIR}/phosphor-ipmi-host.service"),
            format!("{UNIT_DIR}/{spo}"),
            "/usr/bin/ipmid".into(),
            "/usr/lib/libipmid.so.0".into(),
        ],
        // SoftPowerOff runs whenever the host is shut down: count it as running.
        enabled: strings(&["phosphor-ipmi-host.service", spo]),
        units: BTreeMap::from([
            (
                "phosphor-ipmi-host.service".into(),
                unit(
                    &[],
                    vec![bus(bus::IPMI_HOST), bus(bus::CONTROL_HOST)],
                    vec![],
                ),
            ),
            (spo.into(), unit(&[], vec![], vec![bus(bus::CONTROL_HOST)])),
        ]),
        ..Package::default()
    }
}

/// phosphor-ipmi-net for the given RMCP+ interfaces (phosphor-ipmi-net_git.bb: one
/// `phosphor-ipmi-net@<iface>.socket` per RMCPP_IFACE, more by bbappend; phosphor-net-ipmid
/// a52ddc83 phosphor-ipmi-net@.socket: `ListenDatagram=623`, `BindToDevice=%i`). netipmid
/// links libipmid, libuserlayer and libchannellayer (meson.build), which are phosphor-ipmi-host's,
/// so do_package adds that to its runtime dependencies. It calls `Ipmi.Host` and owns
/// `Ipmi.Channel.<iface>`.
fn phosphor_ipmi_net(ifaces: &[&str]) -> Package {
    let mut p = Package {
        name: "phosphor-ipmi-net".into(),
        files: vec![
            format!("{UNIT_DIR}/phosphor-ipmi-net@.socket"),
            format!("{UNIT_DIR}/phosphor-ipmi-net@.service"),
            "/usr/bin/netipmid".into(),
        ],
        rdepends: strings(&["phosphor-ipmi-host"]),
        ..Package::default()
    };
    for i in ifaces {
        let service = format!("phosphor-ipmi-net@{i}.service");
        p.enabled.push(format!("phosphor-ipmi-net@{i}.socket"));
        p.units.insert(
            format!("phosphor-ipmi-net@{i}.socket"),
            unit(
                &[&service],
                vec![Resource::Udp(623, Some(i.to_string()))],
                vec![],
            ),
        );
        p.units.insert(
            service,
            unit(
                &[],
                vec![bus(&format!("{}{i}", bus::IPMI_CHANNEL_PREFIX))],
                vec![bus(bus::IPMI_HOST)],
            ),
        );
    }
    p
}

/// phosphor-ipmi-kcs (kcsbridge a46dd8f0, phosphor-ipmi-kcs@.service.in: `Wants=` and
/// `After=phosphor-ipmi-host.service`; the recipe RRECOMMENDS phosphor-ipmi-host). It calls
/// `Ipmi.Host`.
fn phosphor_ipmi_kcs() -> Package {
    let u = "phosphor-ipmi-kcs@ipmi-kcs3.service";
    Package {
        name: "phosphor-ipmi-kcs".into(),
        files: vec![format!("{UNIT_DIR}/phosphor-ipmi-kcs@.service")],
        enabled: strings(&[u]),
        units: BTreeMap::from([(
            u.into(),
            unit(
                &["phosphor-ipmi-host.service"],
                vec![bus("xyz.openbmc_project.Ipmi.Channel.ipmi_kcs3")],
                vec![bus(bus::IPMI_HOST)],
            ),
        )]),
        ..Package::default()
    }
}

/// phosphor-pid-control (phosphor-pid-control_git.bb ships libmanualcmds in
/// ${libdir}/ipmid-providers; ca3d666e meson.build links it with libipmid), so do_package
/// makes it depend on phosphor-ipmi-host: every image with this fan control carries ipmid.
fn phosphor_pid_control() -> Package {
    Package {
        name: "phosphor-pid-control".into(),
        files: vec![
            format!("{UNIT_DIR}/phosphor-pid-control.service"),
            "/usr/lib/ipmid-providers/libmanualcmds.so.0".into(),
        ],
        enabled: strings(&["phosphor-pid-control.service"]),
        units: BTreeMap::from([(
            "phosphor-pid-control.service".into(),
            unit(&[], vec![bus(bus::FAN_CTRL)], vec![]),
        )]),
        rdepends: strings(&["phosphor-ipmi-host"]),
        ..Package::default()
    }
}

/// Google's acpi-power-state-daemon (google-misc cf3658af, subprojects/acpi-power-state-daemon:
/// host-s0-state.target, host-s5-state.target, and it requests the ACPIPowerState name).
fn acpi_power_state_daemon() -> Package {
    Package {
        name: "acpi-power-state-daemon".into(),
        files: vec![
            format!("{UNIT_DIR}/acpi-power-state.service"),
            format!("{UNIT_DIR}/host-s0-state.target"),
            format!("{UNIT_DIR}/host-s5-state.target"),
        ],
        enabled: strings(&["acpi-power-state.service"]),
        units: BTreeMap::from([(
            "acpi-power-state.service".into(),
            unit(&[], vec![bus(bus::ACPI_POWER_STATE)], vec![]),
        )]),
        ..Package::default()
    }
}

fn upstream(name: &str, rmcpp_ifaces: &[&str]) -> Option<Package> {
    Some(match name {
        "phosphor-ipmi-host" => phosphor_ipmi_host(),
        "phosphor-ipmi-net" => phosphor_ipmi_net(rmcpp_ifaces),
        "phosphor-ipmi-kcs" => phosphor_ipmi_kcs(),
        "phosphor-pid-control" => phosphor_pid_control(),
        "acpi-power-state-daemon" => acpi_power_state_daemon(),
        _ => return None,
    })
}

// ---- our packages, from the layer ----

/// What each applet's service holds and calls on the bus (the names the daemons use).
fn applet_resources(applet: &str) -> (Vec<Resource>, Vec<Resource>) {
    match applet {
        "acpi-state-daemon" => (vec![bus(bus::ACPI_POWER_STATE)], vec![]),
        "sensor-gate" => (vec![bus(bus::DIMM_TEMP_SENSOR)], vec![]),
        "ipmi-handlers" => (vec![bus(bus::IPMI_HOST)], vec![]),
        // ipmi-lan.json's defaults: 0.0.0.0:623, channel name eth0.
        "ipmi-lan" => (
            vec![
                Resource::Udp(623, None),
                bus(&format!("{}eth0", bus::IPMI_CHANNEL_PREFIX)),
            ],
            vec![bus(bus::IPMI_HOST)],
        ),
        _ => (vec![], vec![]),
    }
}

/// The `ConditionPathExists=` values of a unit file or drop-in.
fn conditions(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("ConditionPathExists="))
        .map(str::to_string)
        .collect()
}

/// A recipe variable's words (none when the recipe does not set it).
fn recipe_words(recipe: &str, key: &str) -> Vec<String> {
    cross::recipe_var(recipe, key)
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// Our package for one applet, as the recipe packages it.
fn acpigate_package(recipe: &str, units_dir: &Path, applet: &str) -> Result<Package> {
    let pn = format!("acpigate-{applet}");
    let mut p = Package {
        name: pn.clone(),
        files: vec![format!("/usr/libexec/acpigate/{applet}")],
        rconflicts: recipe_words(recipe, &format!("RCONFLICTS:${{PN}}-{applet}")),
        rdepends: strings(&["acpigate"]),
        ..Package::default()
    };
    let (owns, needs) = applet_resources(applet);
    for f in recipe_words(recipe, &format!("ACPIGATE_UNITS[{applet}]")) {
        let text = fs::read_to_string(units_dir.join(&f))
            .with_context(|| format!("units/{f} (ACPIGATE_UNITS[{applet}])"))?;
        p.files.push(format!("{UNIT_DIR}/{f}"));
        if let Some((dir, _)) = f.split_once('/') {
            let target = dir.strip_suffix(".d").unwrap_or(dir);
            p.dropins.push((target.to_string(), conditions(&text)));
        } else if f.ends_with(".service") {
            let mut u = unit(&[], owns.clone(), needs.clone());
            u.conditions = conditions(&text);
            p.units.insert(f.to_string(), u);
        }
    }
    p.enabled = recipe_words(recipe, &format!("SYSTEMD_SERVICE:${{PN}}-{applet}"));
    Ok(p)
}

// ---- the image and what runs in it ----

/// The packages of one image, after runtime dependencies.
struct Image {
    name: String,
    packages: Vec<Package>,
}

impl Image {
    /// Every clash found, as sentences; empty when the image can work.
    fn clashes(&self) -> Vec<String> {
        let mut out = Vec::new();
        let installed: BTreeSet<&str> = self.packages.iter().map(|p| p.name.as_str()).collect();
        for p in &self.packages {
            for c in &p.rconflicts {
                if installed.contains(c.as_str()) {
                    out.push(format!(
                        "{} RCONFLICTS {c}: the image cannot be installed",
                        p.name
                    ));
                }
            }
        }
        let mut owner_of_file: BTreeMap<&str, &str> = BTreeMap::new();
        for p in &self.packages {
            for f in &p.files {
                if let Some(other) = owner_of_file.insert(f, &p.name) {
                    out.push(format!("{f} is shipped by both {other} and {}", p.name));
                }
            }
        }
        let files: BTreeSet<&str> = self
            .packages
            .iter()
            .flat_map(|p| p.files.iter().map(String::as_str))
            .collect();
        let units: BTreeMap<&str, &Unit> = self
            .packages
            .iter()
            .flat_map(|p| p.units.iter().map(|(n, u)| (n.as_str(), u)))
            .collect();
        let dropins: Vec<&(String, Vec<String>)> = self
            .packages
            .iter()
            .flat_map(|p| p.dropins.iter())
            .collect();
        let holds = |cond: &str| -> bool {
            let (negate, path) = match cond.strip_prefix('!') {
                Some(p) => (true, p),
                None => (false, cond),
            };
            // Only what the packages ship is modelled; anything else counts as present.
            let packaged_area = path.starts_with("/usr/");
            let exists = !packaged_area || files.contains(path);
            exists != negate
        };
        let may_start = |name: &str, u: &Unit| -> bool {
            let template = template_of(name);
            let from_dropins = dropins
                .iter()
                .filter(|(t, _)| t == name || Some(t.as_str()) == template.as_deref())
                .flat_map(|(_, c)| c.iter());
            u.conditions.iter().chain(from_dropins).all(|c| holds(c))
        };
        // Enabled units, then what they want, transitively.
        let mut running: BTreeSet<&str> = BTreeSet::new();
        let mut todo: Vec<&str> = self
            .packages
            .iter()
            .flat_map(|p| p.enabled.iter().map(String::as_str))
            .collect();
        while let Some(name) = todo.pop() {
            let Some(u) = units.get(name) else { continue };
            if running.contains(name) || !may_start(name, u) {
                continue;
            }
            running.insert(name);
            todo.extend(u.wants.iter().map(String::as_str));
        }
        let held: Vec<(&str, &Resource)> = running
            .iter()
            .flat_map(|n| units[n].owns.iter().map(move |r| (*n, r)))
            .collect();
        for (i, (a, ra)) in held.iter().enumerate() {
            for (b, rb) in &held[i + 1..] {
                if ra.overlaps(rb) {
                    out.push(format!("{a} ({ra}) and {b} ({rb}) both run"));
                }
            }
        }
        for n in &running {
            for need in &units[n].needs {
                if !held.iter().any(|(_, r)| r.overlaps(need)) {
                    out.push(format!("{n} runs but nothing running owns its {need}"));
                }
            }
        }
        out
    }
}

/// `foo@bar.socket` → `foo@.socket`.
fn template_of(name: &str) -> Option<String> {
    let (head, rest) = name.split_once('@')?;
    let (_, suffix) = rest.rsplit_once('.')?;
    Some(format!("{head}@.{suffix}"))
}

/// One example .conf: the applets it removes and whether it keeps netipmid.
struct Example {
    file: String,
    applets: Vec<String>,
    netipmid: bool,
}

fn read_example(path: &Path, all: &[String]) -> Result<Example> {
    let file = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let text =
        fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut removed = Vec::new();
    let mut group = false;
    let mut no_rmcp = false;
    for (n, line) in text.lines().enumerate() {
        let l = line.trim();
        if l.starts_with('#') || l.is_empty() {
            continue;
        }
        if let Some(v) = l.strip_prefix("ACPIGATE_APPLETS:remove = \"") {
            removed.extend(
                v.trim_end_matches('"')
                    .split_whitespace()
                    .map(str::to_string),
            );
        } else if l == "OBMC_IMAGE_EXTRA_INSTALL:append = \" packagegroup-acpigate\"" {
            group = true;
        } else if l == DISTRO_NO_RMCP {
            no_rmcp = true;
        } else if l.starts_with("IMAGE_FEATURES:remove") && l.contains("obmc-net-ipmi") {
            bail!(
                "examples/{file}:{}: drops netipmid with IMAGE_FEATURES:remove, which leaves PAM \
                 calling pam-ipmi's modules (every password change fails); use `{DISTRO_NO_RMCP}`",
                n + 1
            );
        }
    }
    if !group {
        bail!("examples/{file}: does not install packagegroup-acpigate");
    }
    for r in &removed {
        if !all.contains(r) {
            bail!("examples/{file}: ACPIGATE_APPLETS:remove names `{r}`, which is no applet");
        }
    }
    Ok(Example {
        file,
        applets: all
            .iter()
            .filter(|a| !removed.contains(a))
            .cloned()
            .collect(),
        netipmid: !no_rmcp,
    })
}

/// The image an example gives on a board with the given upstream packages.
fn image_for(
    recipe: &str,
    units_dir: &Path,
    applets: &[String],
    upstream_names: &[&str],
    rmcpp_ifaces: &[&str],
) -> Result<Image> {
    let mut packages = vec![Package {
        name: "acpigate".into(),
        files: strings(&["/usr/bin/acpigate"]),
        ..Package::default()
    }];
    for a in applets {
        packages.push(acpigate_package(recipe, units_dir, a)?);
    }
    let mut todo: Vec<String> = upstream_names.iter().map(|s| s.to_string()).collect();
    while let Some(n) = todo.pop() {
        if packages.iter().any(|p| p.name == n) {
            continue;
        }
        let Some(p) = upstream(&n, rmcpp_ifaces) else {
            bail!("no model of the upstream package {n}");
        };
        todo.extend(p.rdepends.iter().cloned());
        packages.push(p);
    }
    Ok(Image {
        name: format!(
            "acpigate {} + {}",
            applets.join(" "),
            upstream_names.join(" ")
        ),
        packages,
    })
}

/// The boards an example may meet: fan control or not, KCS bridge or not, and netipmid
/// (where the example keeps it) on one interface or two.
fn boards(netipmid: bool) -> Vec<(Vec<&'static str>, Vec<&'static str>)> {
    let mut out = Vec::new();
    for fans in [false, true] {
        for kcs in [false, true] {
            let mut base = Vec::new();
            if fans {
                base.push("phosphor-pid-control");
            }
            if kcs {
                base.extend(["phosphor-ipmi-kcs", "phosphor-ipmi-host"]);
            }
            if netipmid {
                for ifaces in [vec!["eth0"], vec!["eth0", "eth1"]] {
                    let mut b = base.clone();
                    b.push("phosphor-ipmi-net");
                    out.push((b, ifaces));
                }
            } else {
                out.push((base, vec![]));
            }
        }
    }
    out
}

/// CI: every example image works on every board kind.
pub fn check() -> Result<()> {
    let root = sh::root();
    let layer = root.join("yocto/meta-acpigate");
    let recipe_path = layer.join("recipes-phosphor/acpigate/acpigate_git.bb");
    let recipe = fs::read_to_string(&recipe_path)
        .with_context(|| format!("cannot read {}", recipe_path.display()))?;
    let units_dir = root.join("units");
    let all = cross::recipe_applets_all()?;
    let mut examples: Vec<_> = fs::read_dir(layer.join("examples"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "conf"))
        .collect();
    examples.sort();
    if examples.is_empty() {
        bail!("no examples/*.conf in the layer");
    }
    let mut checked = 0;
    let mut failures = Vec::new();
    for path in &examples {
        let ex = read_example(path, &all)?;
        for (upstream_names, ifaces) in boards(ex.netipmid) {
            let image = image_for(&recipe, &units_dir, &ex.applets, &upstream_names, &ifaces)?;
            checked += 1;
            for c in image.clashes() {
                failures.push(format!(
                    "examples/{} ({}, netipmid on {:?}): {c}",
                    ex.file, image.name, ifaces
                ));
            }
        }
    }
    if !failures.is_empty() {
        bail!("images that cannot work:\n  {}", failures.join("\n  "));
    }
    eprintln!(
        "xtask oelint: {} example images on {checked} board kinds: no clash (bus names, UDP 623, files, RCONFLICTS)",
        examples.len()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer() -> Result<(String, std::path::PathBuf, Vec<String>)> {
        let root = sh::root();
        let recipe = fs::read_to_string(
            root.join("yocto/meta-acpigate/recipes-phosphor/acpigate/acpigate_git.bb"),
        )?;
        Ok((recipe, root.join("units"), cross::recipe_applets_all()?))
    }

    fn clashes(
        applets: &[&str],
        upstream: &[&str],
        ifaces: &[&str],
        strip_dropins: bool,
    ) -> Result<Vec<String>> {
        let (recipe, units, _) = layer()?;
        let applets: Vec<String> = strings(applets);
        let mut image = image_for(&recipe, &units, &applets, upstream, ifaces)?;
        if strip_dropins {
            for p in &mut image.packages {
                p.dropins.clear();
            }
        }
        Ok(image.clashes())
    }

    #[test]
    fn the_full_suite_replaces_ipmid_and_netipmid_on_a_kcs_board_with_fan_control() -> Result<()> {
        let up = [
            "phosphor-pid-control",
            "phosphor-ipmi-kcs",
            "phosphor-ipmi-net",
        ];
        let all = [
            "acpi-state-daemon",
            "sensor-gate",
            "ipmi-handlers",
            "ipmi-lan",
        ];
        assert_eq!(
            clashes(&all, &up, &["eth0", "eth1"], false)?,
            Vec::<String>::new()
        );
        // Without the drop-ins both IPMI servers and both LAN listeners would run, and
        // SoftPowerOff would still run, against ipmid.
        let c = clashes(&all, &up, &["eth0", "eth1"], true)?.join("\n");
        assert!(c.contains("bus name xyz.openbmc_project.Ipmi.Host"), "{c}");
        assert!(c.contains("UDP port 623 on eth1"), "{c}");
        assert!(c.contains("UDP port 623 on every interface"), "{c}");
        Ok(())
    }

    #[test]
    fn netipmid_works_beside_ipmi_handlers_and_softpoweroff_is_skipped() -> Result<()> {
        let up = ["phosphor-ipmi-net", "phosphor-ipmi-kcs"];
        let c = clashes(
            &["acpi-state-daemon", "ipmi-handlers"],
            &up,
            &["eth0"],
            false,
        )?;
        assert_eq!(c, Vec::<String>::new());
        // With ipmid skipped but SoftPowerOff not, SoftPowerOff would call a Control.Host
        // nobody owns.
        let (recipe, units, _) = layer()?;
        let mut image = image_for(
            &recipe,
            &units,
            &strings(&["ipmi-handlers"]),
            &up,
            &["eth0"],
        )?;
        for p in &mut image.packages {
            p.dropins.retain(|(t, _)| t == "phosphor-ipmi-host.service");
        }
        let c = image.clashes().join("\n");
        assert!(c.contains("SoftPowerOff.service runs but nothing running owns its bus name xyz.openbmc_project.Control.Host"), "{c}");
        Ok(())
    }

    #[test]
    fn upstream_ipmid_and_netipmid_stay_when_only_the_state_and_sensors_are_installed() -> Result<()>
    {
        let up = [
            "phosphor-pid-control",
            "phosphor-ipmi-kcs",
            "phosphor-ipmi-net",
        ];
        let c = clashes(&["acpi-state-daemon", "sensor-gate"], &up, &["eth0"], false)?;
        assert_eq!(c, Vec::<String>::new());
        Ok(())
    }

    #[test]
    fn googles_acpi_daemon_cannot_be_installed_beside_ours() -> Result<()> {
        let c = clashes(
            &["acpi-state-daemon"],
            &["acpi-power-state-daemon"],
            &[],
            false,
        )?
        .join("\n");
        assert!(c.contains("RCONFLICTS acpi-power-state-daemon"), "{c}");
        assert!(c.contains("host-s0-state.target is shipped by both"), "{c}");
        assert!(
            c.contains("bus name xyz.openbmc_project.Control.Power.ACPIPowerState"),
            "{c}"
        );
        Ok(())
    }

    #[test]
    fn an_example_that_removes_the_image_feature_is_refused_with_its_line() -> Result<()> {
        let dir = std::env::temp_dir().join(format!("xtask-images-{}", std::process::id()));
        fs::create_dir_all(&dir)?;
        let f = dir.join("bad.conf");
        fs::write(
            &f,
            "OBMC_IMAGE_EXTRA_INSTALL:append = \" packagegroup-acpigate\"\n\nIMAGE_FEATURES:remove = \"obmc-net-ipmi\"\n",
        )?;
        let (_, _, all) = layer()?;
        let refused = |f: &Path| match read_example(f, &all) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        };
        let e = refused(&f);
        assert!(e.starts_with("examples/bad.conf:3: drops netipmid"), "{e}");
        fs::write(&f, "ACPIGATE_APPLETS:remove = \"ipmi-lan\"\n")?;
        let e = refused(&f);
        assert!(e.contains("does not install packagegroup-acpigate"), "{e}");
        fs::remove_dir_all(&dir)?;
        Ok(())
    }

    #[test]
    fn instances_take_their_templates_drop_ins() -> Result<()> {
        assert_eq!(
            template_of("phosphor-ipmi-net@eth1.socket").as_deref(),
            Some("phosphor-ipmi-net@.socket")
        );
        assert_eq!(template_of("ipmi-lan.service"), None);
        Ok(())
    }
}
