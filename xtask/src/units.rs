//! `units`: `systemd-analyze verify` on every unit in `units/`.
//!
//! The installed units run `/usr/libexec/acpigate/<applet>`, which does not exist on a build
//! machine; we verify copies whose `ExecStart=` points at the freshly built binary instead, so
//! systemd checks syntax, directives and executability. Any diagnostic fails the step (systemd
//! only warns about unknown keys).
//!
//! Drop-ins for upstream units (`units/<unit>.d/*.conf`, e.g. the one that keeps ipmid from
//! starting beside ipmi-handlers) are verified on a minimal stand-in for the unit they extend,
//! so a misspelt directive in them fails here too.

use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::{setup, sh};

const INSTALLED_PREFIX: &str = "/usr/libexec/acpigate/";

pub fn verify() -> Result<()> {
    setup::host_packages(&["systemd"])?;
    sh::run(sh::cargo().args(["build", "--locked", "-p", "acpigate"]))?;
    let root = sh::root();
    let bin = root.join("target/debug/acpigate");
    let out = root.join("target/units-verify");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out)?;
    let mut units = Vec::new();
    for e in std::fs::read_dir(root.join("units"))? {
        let p = e?.path();
        let Some(name) = p.file_name().map(|n| n.to_string_lossy().into_owned()) else {
            continue;
        };
        if !(name.ends_with(".service") || name.ends_with(".target") || name.ends_with(".socket")) {
            continue;
        }
        let text = std::fs::read_to_string(&p)?;
        let rewritten: String = text
            .lines()
            .map(|l| match l.strip_prefix("ExecStart=") {
                Some(cmd) => match cmd.strip_prefix(INSTALLED_PREFIX) {
                    Some(rest) => format!("ExecStart={} {rest}\n", bin.display()),
                    None => format!("{l}\n"),
                },
                None => format!("{l}\n"),
            })
            .collect();
        std::fs::write(out.join(&name), rewritten)?;
        units.push(out.join(&name));
    }
    for e in std::fs::read_dir(root.join("units"))? {
        let p = e?.path();
        let Some(dir) = p.file_name().map(|n| n.to_string_lossy().into_owned()) else {
            continue;
        };
        let Some(unit) = dir.strip_suffix(".d").filter(|_| p.is_dir()) else {
            continue;
        };
        let stand_in = stand_in_for(unit).with_context(|| {
            format!("units/{dir}: a drop-in directory for an unknown unit type")
        })?;
        std::fs::create_dir_all(out.join(&dir))?;
        for f in std::fs::read_dir(&p)? {
            let f = f?.path();
            if let Some(name) = f.file_name() {
                std::fs::copy(&f, out.join(&dir).join(name))?;
            }
        }
        // A template cannot be verified; its instance can, and takes the template's drop-ins.
        let instance = unit.replace("@.", "@verify.");
        std::fs::write(out.join(unit), stand_in)?;
        units.push(out.join(instance));
    }
    units.sort();
    if units.is_empty() {
        bail!("no units in units/");
    }
    // The instance names above are looked up next to the files given.
    let output = Command::new("systemd-analyze")
        .arg("verify")
        .args(&units)
        .output()
        .context("cannot run systemd-analyze")?;
    let diag = String::from_utf8_lossy(&output.stderr);
    let diag = diag.trim();
    eprintln!("systemd-analyze verify: {} units", units.len());
    if !output.status.success() || !diag.is_empty() {
        bail!("systemd-analyze verify reported:\n{diag}");
    }
    Ok(())
}

/// The smallest unit of each type that loads cleanly, standing in for the upstream unit a
/// drop-in extends.
fn stand_in_for(unit: &str) -> Option<&'static str> {
    if unit.ends_with(".service") {
        Some("[Unit]\nDescription=stand-in\n\n[Service]\nExecStart=/bin/true\n")
    } else if unit.ends_with(".socket") {
        Some("[Unit]\nDescription=stand-in\n\n[Socket]\nListenDatagram=623\n")
    } else {
        None
    }
}
