//! Host packages. As root we install what is missing with apt; otherwise we say what is
//! missing and how to install it.

use std::process::Command;

use anyhow::{Result, bail};

use crate::sh;

/// What the core and bus tiers need: a real dbus-daemon and busctl.
pub const BASE_PACKAGES: &[&str] = &["dbus-daemon", "systemd", "ipmitool"];

fn installed(pkg: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", pkg])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Make sure the Debian packages are installed.
pub fn host_packages(pkgs: &[&str]) -> Result<()> {
    let missing: Vec<&str> = pkgs.iter().copied().filter(|p| !installed(p)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !is_root() {
        bail!(
            "missing packages: {}\ninstall them with: sudo apt-get install --no-install-recommends {}",
            missing.join(" "),
            missing.join(" ")
        );
    }
    eprintln!("xtask: installing {}", missing.join(" "));
    let apt = || {
        let mut c = Command::new("apt-get");
        c.env("DEBIAN_FRONTEND", "noninteractive").args([
            "-q",
            "-y",
            "-o",
            "DPkg::Lock::Timeout=600",
        ]);
        c
    };
    // A fresh machine may have no package lists yet.
    if sh::run(
        apt()
            .arg("install")
            .arg("--no-install-recommends")
            .args(&missing),
    )
    .is_err()
    {
        sh::run(apt().arg("update"))?;
        sh::run(
            apt()
                .arg("install")
                .arg("--no-install-recommends")
                .args(&missing),
        )?;
    }
    Ok(())
}
