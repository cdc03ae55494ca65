//! One executable for every acpigate daemon. Dispatch is by the name it was run as
//! (`/usr/libexec/acpigate/acpi-state-daemon` is a link to it) or by the first argument
//! (`acpigate acpi-state-daemon --config …`). One binary saves ~1 MB of flash per daemon.

use std::path::Path;

type Entry = fn(Vec<String>) -> anyhow::Result<()>;

/// The applets compiled into this build (each behind its Cargo feature, so a platform can
/// drop one). Add a line here and a feature in Cargo.toml for a new daemon.
const APPLETS: &[(&str, Entry)] = &[
    #[cfg(feature = "acpi-state-daemon")]
    ("acpi-state-daemon", acpi_state_daemon::main_with_args),
    #[cfg(feature = "sensor-gate")]
    ("sensor-gate", sensor_gate::main_with_args),
    #[cfg(feature = "ipmi-handlers")]
    ("ipmi-handlers", ipmi_handlers::main_with_args),
    #[cfg(feature = "ipmi-lan")]
    ("ipmi-lan", ipmi_lan::main_with_args),
];

fn main() {
    let mut args: Vec<String> = std::env::args().collect();
    let argv0 = args.first().cloned().unwrap_or_default();
    let called_as = Path::new(&argv0)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let table = APPLETS;
    let entry = if let Some((_, f)) = table.iter().find(|(n, _)| *n == called_as) {
        Some(*f)
    } else if let Some((_, f)) = args.get(1).and_then(|a| table.iter().find(|(n, _)| n == a)) {
        args.remove(0);
        Some(*f)
    } else {
        None
    };
    let Some(entry) = entry else {
        let names: Vec<&str> = table.iter().map(|(n, _)| *n).collect();
        eprintln!(
            "usage: acpigate <applet> [args…]   (or run it as a link named after the applet)"
        );
        eprintln!("applets in this build: {}", names.join(" "));
        std::process::exit(2);
    };
    if let Err(e) = entry(args) {
        eprintln!("{}: error: {e:#}", called_as);
        std::process::exit(1);
    }
}
