//! Every applet of the real binary answers the same command line the same way (daemon-kit's
//! shared start-up): `--help`, `--check` of a good and a bad file, an unknown argument — and
//! none of them touches the bus to do it (the bus address given points nowhere).

use std::path::Path;
use std::process::{Command, Output};

use acpigate_tests::harness::acpigate_bin;
use anyhow::{Context, Result, ensure};

/// Each applet with a good configuration, a bad one, and the line the bad one's error names.
const APPLETS: &[(&str, &str, &str, usize)] = &[
    (
        "acpi-state-daemon",
        "{\n  \"call_timeout_ms\": 250\n}\n",
        "{\n  \"state_file\": \"/tmp/s.json\",\n  \"call_timeout_ms\": 5\n}\n",
        3,
    ),
    (
        "sensor-gate",
        include_str!("../../units/sensor-gate.json.example"),
        "{\n  \"buses\": [ { \"name\": \"b\", \"backend\": \"i2c-dev\", \"bus\": 3 } ],\n  \"poll_ms\": 1,\n  \"sensors\": [ { \"name\": \"D0\", \"bus\": \"b\", \"type\": \"jc42\", \"address\": 24 } ]\n}\n",
        3,
    ),
    (
        "ipmi-handlers",
        "{\n  \"sel_capacity\": 512\n}\n",
        "{\n  \"sel_capacity\": 512,\n  \"call_timeout_ms\": 0\n}\n",
        3,
    ),
    // `{dir}` is the test's directory, where a users file is written first.
    (
        "ipmi-lan",
        "{\n  \"listen\": \"127.0.0.1:6230\",\n  \"users_file\": \"{dir}/users.json\"\n}\n",
        "{\n  \"users_file\": \"{dir}/users.json\",\n  \"cipher_suites\": [0]\n}\n",
        3,
    ),
];

/// A users file as ipmi-lan requires it: one user, mode 0600, owned by whoever runs the test.
const USERS: &str =
    r#"{ "users": [ { "name": "op", "password": "secret12", "id": 2, "privilege": "admin" } ] }"#;

fn run(applet: &str, args: &[&str]) -> Result<Output> {
    Command::new(acpigate_bin()?)
        .arg(applet)
        .args(args)
        .env("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent")
        .env_remove("NOTIFY_SOCKET")
        .output()
        .with_context(|| format!("cannot run acpigate {applet}"))
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn help_names_the_shared_options_and_exits_zero() -> Result<()> {
    for (applet, ..) in APPLETS {
        let out = run(applet, &["--help"])?;
        let t = text(&out);
        ensure!(out.status.success(), "{applet} --help: {t}");
        ensure!(
            t.starts_with(&format!("usage: {applet} [--config FILE] [--check]")),
            "{applet}: {t}"
        );
    }
    Ok(())
}

#[test]
fn an_unknown_argument_is_refused_with_the_usage() -> Result<()> {
    for (applet, ..) in APPLETS {
        let out = run(applet, &["--frobnicate"])?;
        let t = text(&out);
        ensure!(!out.status.success(), "{applet} took --frobnicate");
        ensure!(
            t.contains("unknown argument `--frobnicate`") && t.contains("usage:"),
            "{applet}: {t}"
        );
    }
    Ok(())
}

#[test]
fn check_passes_a_good_file_and_names_the_line_of_a_bad_one() -> Result<()> {
    let dir = std::env::temp_dir().join(format!("acpigate-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = (|| -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let users = dir.join("users.json");
        std::fs::write(&users, USERS)?;
        std::fs::set_permissions(&users, std::fs::Permissions::from_mode(0o600))?;
        let at_dir = |text: &str| text.replace("{dir}", &path(&dir));
        for (applet, good, bad, line) in APPLETS {
            let file = dir.join(format!("{applet}.json"));
            std::fs::write(&file, at_dir(good))?;
            let out = run(applet, &["--check", "--config", &path(&file)])?;
            let t = text(&out);
            ensure!(out.status.success(), "{applet} --check (good): {t}");
            ensure!(
                t.starts_with(&format!("{}: ok (", file.display())),
                "{applet}: {t}"
            );

            std::fs::write(&file, at_dir(bad))?;
            let out = run(applet, &["--check", "--config", &path(&file)])?;
            let t = text(&out);
            ensure!(!out.status.success(), "{applet} --check passed a bad file");
            ensure!(
                t.contains(&format!("{}:{line}:", file.display())),
                "{applet}: want line {line}: {t}"
            );
        }
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

#[test]
fn sensor_gate_check_says_where_the_sensors_come_from() -> Result<()> {
    let dir = std::env::temp_dir().join(format!("acpigate-cl-em-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("sensor-gate.json");
    std::fs::write(&file, "{\n  \"sensors_from\": \"entity-manager\"\n}\n")?;
    let out = run(
        "sensor-gate",
        &["--config", &file.to_string_lossy(), "--check"],
    )?;
    let t = text(&out);
    std::fs::remove_dir_all(&dir)?;
    ensure!(out.status.success(), "{t}");
    ensure!(
        t.contains("sensors from entity-manager's AcpigateDimmTemp records"),
        "{t}"
    );
    Ok(())
}
