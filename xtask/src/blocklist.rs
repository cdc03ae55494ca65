//! The layer's FruDevice blocklist merge (`entity-manager_%.bbappend` runs
//! `acpigate-frudevice-blocklist.py` over the image's `blacklist.json`), run here on the
//! files a machine layer may install: CI has no bitbake, but the script is the whole of it.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};

const DIR: &str = "yocto/meta-acpigate/recipes-phosphor/configuration";

fn script() -> PathBuf {
    crate::sh::root()
        .join(DIR)
        .join("entity-manager/acpigate-frudevice-blocklist.py")
}

/// Run the script on `file` with `buses`: its exit success and stderr.
fn merge(file: &Path, buses: &[&str]) -> Result<(bool, String)> {
    let out = Command::new("python3")
        .arg(script())
        .arg(file)
        .args(buses)
        .output()
        .context("running python3 (install python3)")?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

fn json(file: &Path) -> Result<serde_json::Value> {
    serde_json::from_str(&fs::read_to_string(file)?).with_context(|| file.display().to_string())
}

/// Every case a machine layer can bring, and what the image must then hold.
pub fn check() -> Result<()> {
    let bbappend = crate::sh::root()
        .join(DIR)
        .join("entity-manager_%.bbappend");
    let text = fs::read_to_string(&bbappend).context("reading the entity-manager bbappend")?;
    for needle in [
        "file://acpigate-frudevice-blocklist.py",
        "do_install[postfuncs] .= \"${@' acpigate_frudevice_blocklist' if",
        "${D}${datadir}/${BPN}/blacklist.json ${ACPIGATE_FRUDEVICE_BLOCKED_BUSES}",
    ] {
        ensure!(
            text.contains(needle),
            "{}: no `{needle}`",
            bbappend.display()
        );
    }

    let dir = std::env::temp_dir().join(format!("acpigate-blocklist-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir)?;
    let result = cases(&dir);
    let _ = fs::remove_dir_all(&dir);
    result?;
    println!("blocklist: the FruDevice blocklist merge holds on 7 machine-layer cases");
    Ok(())
}

fn cases(dir: &Path) -> Result<()> {
    let f = dir.join("blacklist.json");
    let case = |before: Option<&str>, buses: &[&str], want: serde_json::Value| -> Result<()> {
        let _ = fs::remove_file(&f);
        if let Some(b) = before {
            fs::write(&f, b)?;
        }
        let (ok, err) = merge(&f, buses)?;
        ensure!(ok, "{before:?} + {buses:?}: failed: {err}");
        let got = json(&f)?;
        ensure!(
            got == want,
            "{before:?} + {buses:?}: got {got}, want {want}"
        );
        Ok(())
    };
    // meta-phosphor's own file
    case(
        Some(r#"{ "buses": [] }"#),
        &["3"],
        serde_json::json!({ "buses": [3] }),
    )?;
    // a machine layer's: other buses, top-level addresses and an address-only entry for our
    // bus, which would narrow the whole-bus entry back to its addresses
    case(
        Some(
            r#"{ "buses": [1, { "bus": 3, "addresses": ["0x50"] }, { "bus": 5, "addresses": ["0x51"] }], "addresses": ["0x20"] }"#,
        ),
        &["3", "7"],
        serde_json::json!({ "buses": [1, { "bus": 5, "addresses": ["0x51"] }, 3, 7], "addresses": ["0x20"] }),
    )?;
    // already there: unchanged
    case(
        Some(r#"{"buses":[3,4]}"#),
        &["3"],
        serde_json::json!({ "buses": [3, 4] }),
    )?;
    // a machine layer that installs none
    case(None, &["3"], serde_json::json!({ "buses": [3] }))?;
    // installed read-only (as meta-ampere does, 0444): merged, and still 0444
    fs::write(&f, r#"{ "buses": [2] }"#)?;
    fs::set_permissions(&f, fs::Permissions::from_mode(0o444))?;
    let (ok, err) = merge(&f, &["3"])?;
    ensure!(ok, "read-only file: {err}");
    ensure!(json(&f)? == serde_json::json!({ "buses": [2, 3] }));
    let mode = fs::metadata(&f)?.permissions().mode() & 0o777;
    ensure!(mode == 0o444, "mode {mode:o} after the merge, want 444");
    fs::set_permissions(&f, fs::Permissions::from_mode(0o644))?;
    // refused, the file untouched: a file FruDevice itself would refuse, a bus that is no number
    let broken = "{ \"buses\": [1,\n }";
    fs::write(&f, broken)?;
    let (ok, err) = merge(&f, &["3"])?;
    ensure!(
        !ok && err.contains("blacklist.json:2:"),
        "broken file: ok={ok} {err}"
    );
    ensure!(
        fs::read_to_string(&f)? == broken,
        "a refused file was changed"
    );
    let (ok, err) = merge(&f, &["i2c-3"])?;
    if ok || !err.contains("bus 'i2c-3' is not a bus number") {
        bail!("bus i2c-3: ok={ok} {err}");
    }
    Ok(())
}
