//! `acpigate-cycle`: power cycle a host through its BMC, over and over, following its ACPI
//! states (see `cycle/README.md`).
//!
//! Exit codes: 0 every cycle passed; 1 some cycle failed; 2 bad command line or the BMC could
//! not be reached; 3 the BMC refused the login (wrong password, unknown or locked-out user,
//! cipher suite) — never retried, so as not to prolong a lockout.

use std::io::IsTerminal;
use std::net::ToSocketAddrs;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use acpigate_cycle::cycle::{Action, parse_expected};
use acpigate_cycle::run::{self, Options, Outcome};
use anyhow::{Context, Result, bail};
use ipmi_lan::console::Target;
use ipmi_lan::crypto::CipherSuite;

const USAGE: &str = "usage: acpigate-cycle --host BMC[:port] --user U (--password-file F | env ACPIGATE_CYCLE_PASSWORD)
                      [--cipher 17|3] --cycles N [--action cycle|off-on|reset|warm]
                      [--expect s5,firmware-init,s0] [--s0-timeout 300s] [--poll 500ms]
                      [--timeout 1s] [--out run.jsonl] [--svg run.svg] [--fail-fast]";

/// The environment variable that may carry the password instead of a file.
const PASSWORD_ENV: &str = "ACPIGATE_CYCLE_PASSWORD";

/// `300s`, `500ms`, `5m`.
fn duration(s: &str) -> Result<Duration> {
    let (n, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map_or((s, "s"), |i| s.split_at(i));
    let n: u64 = n
        .parse()
        .with_context(|| format!("`{s}` is not a duration (e.g. 500ms, 300s, 5m)"))?;
    Ok(match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        _ => bail!("`{s}`: the unit must be ms, s or m"),
    })
}

fn parse(args: &[String]) -> Result<Options> {
    let mut it = args.iter();
    let (mut host, mut user, mut password_file) = (None, None, None);
    let mut suite = CipherSuite::Suite17;
    let mut cycles = None;
    let mut action = Action::Cycle;
    let mut expected = None;
    let (mut s0_timeout, mut poll, mut timeout) = (
        Duration::from_secs(300),
        Duration::from_millis(500),
        Duration::from_secs(1),
    );
    let (mut out, mut svg, mut fail_fast) = (None, None, false);
    while let Some(a) = it.next() {
        let mut value = || it.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--host" => host = Some(value()?.clone()),
            "--user" => user = Some(value()?.clone()),
            "--password-file" => password_file = Some(PathBuf::from(value()?)),
            "--password" => bail!(
                "--password: credentials never go on the command line (they show in ps and \
                 shell history); use --password-file F or {PASSWORD_ENV}"
            ),
            "--cipher" => {
                suite = match value()?.as_str() {
                    "17" => CipherSuite::Suite17,
                    "3" => CipherSuite::Suite3,
                    "0" => bail!(
                        "--cipher 0 sends the password unauthenticated and the session in the \
                         clear: refused; use 17 (or 3)"
                    ),
                    other => bail!("--cipher {other}: only 17 and 3 are supported"),
                }
            }
            "--cycles" => {
                let n: usize = value()?.parse().context("--cycles takes a count")?;
                if n == 0 {
                    bail!("--cycles must be at least 1");
                }
                cycles = Some(n);
            }
            "--action" => {
                action = value()?
                    .parse()
                    .map_err(|e| anyhow::anyhow!("--action: {e}"))?
            }
            "--expect" => {
                expected =
                    Some(parse_expected(value()?).map_err(|e| anyhow::anyhow!("--expect: {e}"))?)
            }
            "--s0-timeout" => s0_timeout = duration(value()?)?,
            "--poll" => poll = duration(value()?)?,
            "--timeout" => timeout = duration(value()?)?,
            "--out" => out = Some(PathBuf::from(value()?)),
            "--svg" => svg = Some(PathBuf::from(value()?)),
            "--fail-fast" => fail_fast = true,
            "--help" | "-h" => bail!("{USAGE}"),
            other => bail!("unknown argument `{other}`\n{USAGE}"),
        }
    }
    let host = host.context("--host is required")?;
    let user = user.context("--user is required")?;
    let cycles = cycles.context("--cycles is required")?;
    let password = match (password_file, std::env::var_os(PASSWORD_ENV)) {
        (Some(f), _) => {
            let text = std::fs::read_to_string(&f)
                .with_context(|| format!("--password-file {}", f.display()))?;
            // One line; the newline an editor adds is not part of the password.
            text.strip_suffix('\n').unwrap_or(&text).to_owned()
        }
        (None, Some(v)) => v
            .into_string()
            .map_err(|_| anyhow::anyhow!("{PASSWORD_ENV} is not UTF-8"))?,
        (None, None) => bail!("no password: give --password-file F or set {PASSWORD_ENV}"),
    };
    let with_port = if host.contains(':') && !host.starts_with('[') && host.matches(':').count() > 1
    {
        format!("[{host}]:623") // a bare IPv6 address
    } else if host
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        host.clone()
    } else {
        format!("{host}:623")
    };
    let addr = with_port
        .to_socket_addrs()
        .with_context(|| format!("--host {host}: cannot resolve"))?
        .next()
        .with_context(|| format!("--host {host}: no address"))?;
    Ok(Options {
        target: Target {
            addr,
            user: user.into_bytes(),
            password: password.into_bytes(),
            suite,
            role: 0x14,
            timeout,
            tries: 3,
        },
        cycles,
        action,
        s0_timeout,
        expected,
        poll,
        out,
        svg,
        fail_fast,
        tty: std::io::stderr().is_terminal(),
    })
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts = match parse(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("acpigate-cycle: {e:#}");
            return ExitCode::from(2);
        }
    };
    let mut log = std::io::stderr();
    match run::run(&opts, &mut log) {
        Ok((Outcome::AllPassed, _)) => ExitCode::SUCCESS,
        Ok((Outcome::SomeFailed, _)) => ExitCode::from(1),
        Err(e) if e.is_login_refusal() => {
            eprintln!("acpigate-cycle: {e}");
            ExitCode::from(3)
        }
        Err(e) => {
            eprintln!("acpigate-cycle: {e}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn durations() {
        assert_eq!(duration("500ms").ok(), Some(Duration::from_millis(500)));
        assert_eq!(duration("300s").ok(), Some(Duration::from_secs(300)));
        assert_eq!(duration("300").ok(), Some(Duration::from_secs(300)));
        assert_eq!(duration("5m").ok(), Some(Duration::from_secs(300)));
        assert!(duration("5h").is_err() && duration("fast").is_err());
    }

    #[test]
    fn refusals_name_the_argument() {
        let base = ["--host", "127.0.0.1", "--user", "u", "--cycles", "1"];
        let err = |extra: &[&str]| {
            let mut a = args(&base);
            a.extend(args(extra));
            parse(&a)
                .err()
                .map(|e| format!("{e:#}"))
                .unwrap_or_default()
        };
        assert!(err(&["--cipher", "0"]).contains("--cipher 0"));
        assert!(err(&["--password", "x"]).contains("never go on the command line"));
        assert!(err(&["--cycles", "0"]).contains("at least 1"));
        assert!(err(&["--action", "dance"]).contains("--action"));
        assert!(err(&["--password-file", "/nonexistent/pw"]).contains("--password-file"));
    }
}
