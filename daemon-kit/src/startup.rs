//! The start every daemon shares, in one place so that every applet answers the same command
//! line the same way: `--config FILE`, `--check` (validate the file and exit), `--help`, and
//! the applet's own options; logging; the configuration read before anything touches the bus
//! (a bad file stops the start with file, line and reason); then a single-threaded runtime.
//!
//! This is the binary edge, so it speaks `anyhow`: what goes wrong here is printed and ends
//! the process with a non-zero status.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

/// An option of one applet beyond the shared ones.
#[derive(Debug, Clone, Copy)]
pub struct Opt {
    /// `--name`.
    pub name: &'static str,
    /// The value's placeholder (`ADDRESS:PORT`), or `None` for a flag.
    pub value: Option<&'static str>,
    pub help: &'static str,
}

/// What an applet tells the shared start-up about itself.
#[derive(Debug, Clone, Copy)]
pub struct Applet {
    /// The applet's name: the log identifier and the first word of its usage.
    pub name: &'static str,
    /// What it does, a few lines for `--help`.
    pub about: &'static str,
    /// The file read when no `--config` is given.
    pub default_config: &'static str,
    /// Its own options.
    pub options: &'static [Opt],
}

/// The command line, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// `--config FILE`, when given (a named file must exist; the default may be absent where
    /// the applet has built-in defaults).
    pub config: Option<PathBuf>,
    /// `--check`: validate the configuration and exit.
    pub check: bool,
    given: Vec<(&'static str, Option<String>)>,
}

impl Invocation {
    /// Whether the flag `name` was given.
    pub fn flag(&self, name: &str) -> bool {
        self.given.iter().any(|(n, _)| *n == name)
    }

    /// The value of option `name`, when given.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.given
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, v)| v.as_deref())
    }
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Run(Invocation),
    Help,
}

/// A command line the applet does not understand.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsageError {
    #[error("unknown argument `{0}`")]
    Unknown(String),
    #[error("{0} needs {1}")]
    MissingValue(&'static str, &'static str),
    #[error("{0} given twice")]
    Repeated(String),
}

impl Applet {
    /// The `--help` text.
    pub fn usage(&self) -> String {
        let mut synopsis = format!("usage: {} [--config FILE] [--check]", self.name);
        let mut lines = vec![
            format!(
                "  --config FILE  the configuration (default {})",
                self.default_config
            ),
            "  --check        validate the configuration and exit".to_owned(),
        ];
        for o in self.options {
            let shown = match o.value {
                Some(v) => format!("{} {v}", o.name),
                None => o.name.to_owned(),
            };
            synopsis.push_str(&format!(" [{shown}]"));
            lines.push(format!("  {shown:<13}  {}", o.help));
        }
        format!("{synopsis}\n{}\n{}", self.about, lines.join("\n"))
    }

    /// Parse `args` (the applet's name first, as `argv`).
    pub fn parse(&self, args: &[String]) -> Result<Command, UsageError> {
        let mut inv = Invocation {
            config: None,
            check: false,
            given: Vec::new(),
        };
        let mut it = args.iter().skip(1);
        while let Some(a) = it.next() {
            match a.as_str() {
                "-h" | "--help" => return Ok(Command::Help),
                "-c" | "--config" => {
                    if inv.config.is_some() {
                        return Err(UsageError::Repeated("--config".to_owned()));
                    }
                    let file = it
                        .next()
                        .ok_or(UsageError::MissingValue("--config", "FILE"))?;
                    inv.config = Some(PathBuf::from(file));
                }
                "--check" => inv.check = true,
                other => {
                    let o = self
                        .options
                        .iter()
                        .find(|o| o.name == other)
                        .ok_or_else(|| UsageError::Unknown(other.to_owned()))?;
                    if inv.flag(o.name) {
                        return Err(UsageError::Repeated(o.name.to_owned()));
                    }
                    let value = match o.value {
                        Some(placeholder) => Some(
                            it.next()
                                .ok_or(UsageError::MissingValue(o.name, placeholder))?
                                .clone(),
                        ),
                        None => None,
                    };
                    inv.given.push((o.name, value));
                }
            }
        }
        Ok(Command::Run(inv))
    }

    /// The configuration file this invocation reads.
    pub fn config_path<'a>(&'a self, inv: &'a Invocation) -> &'a Path {
        inv.config
            .as_deref()
            .unwrap_or(Path::new(self.default_config))
    }

    /// The whole start: parse the command line, install logging, `load` the configuration
    /// (before anything else, so a bad file stops the start), then either report it
    /// (`--check`: `FILE: ok (<what describe says>)`) or `serve` it on a single-threaded
    /// runtime until it returns.
    pub fn main<C, Fut>(
        &self,
        args: &[String],
        load: impl FnOnce(&Invocation) -> anyhow::Result<C>,
        describe: impl FnOnce(&C) -> String,
        serve: impl FnOnce(C, Invocation) -> Fut,
    ) -> anyhow::Result<()>
    where
        Fut: Future<Output = anyhow::Result<()>>,
    {
        let inv = match self.parse(args) {
            Ok(Command::Run(inv)) => inv,
            Ok(Command::Help) => {
                println!("{}", self.usage());
                return Ok(());
            }
            Err(e) => anyhow::bail!("{e}\n{}", self.usage()),
        };
        crate::logging::init(self.name);
        // Its error reaches the journal through stderr (the multi-call binary prints it once).
        let cfg = load(&inv)?;
        if inv.check {
            println!(
                "{}: ok ({})",
                self.config_path(&inv).display(),
                describe(&cfg)
            );
            return Ok(());
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot build the tokio runtime")?;
        let result = rt.block_on(serve(cfg, inv));
        // Blocking work stuck on a hung disk (a state save on flash that does not answer)
        // must not keep the process from exiting: give it a moment, then leave it.
        rt.shutdown_timeout(Duration::from_secs(1));
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const APPLET: Applet = Applet {
        name: "demo",
        about: "  Does a demonstration.",
        default_config: "/etc/acpigate/demo.json",
        options: &[
            Opt {
                name: "--listen",
                value: Some("ADDRESS:PORT"),
                help: "where to listen",
            },
            Opt {
                name: "--test-stall-signal",
                value: None,
                help: "for tests only",
            },
        ],
    };

    fn args(a: &[&str]) -> Vec<String> {
        std::iter::once("demo")
            .chain(a.iter().copied())
            .map(str::to_owned)
            .collect()
    }

    fn run(a: &[&str]) -> Invocation {
        match APPLET.parse(&args(a)) {
            Ok(Command::Run(inv)) => inv,
            other => panic!("{a:?}: {other:?}"),
        }
    }

    #[test]
    fn shared_and_own_options() {
        let inv = run(&["--config", "/tmp/x.json", "--listen", "[::]:623", "--check"]);
        assert_eq!(inv.config.as_deref(), Some(Path::new("/tmp/x.json")));
        assert!(inv.check);
        assert_eq!(inv.value("--listen"), Some("[::]:623"));
        assert!(!inv.flag("--test-stall-signal"));
        let inv = run(&["-c", "a.json", "--test-stall-signal"]);
        assert!(inv.flag("--test-stall-signal") && !inv.check);
        assert_eq!(APPLET.config_path(&inv), Path::new("a.json"));
        let inv = run(&[]);
        assert_eq!(
            APPLET.config_path(&inv),
            Path::new("/etc/acpigate/demo.json")
        );
        assert_eq!(
            APPLET.parse(&args(&["--listen", "x", "--help"])),
            Ok(Command::Help)
        );
    }

    #[test]
    fn bad_command_lines_say_what_is_wrong() {
        let cases: [(&[&str], UsageError); 5] = [
            (&["--bogus"], UsageError::Unknown("--bogus".to_owned())),
            (&["--config"], UsageError::MissingValue("--config", "FILE")),
            (
                &["--listen"],
                UsageError::MissingValue("--listen", "ADDRESS:PORT"),
            ),
            (
                &["-c", "a", "--config", "b"],
                UsageError::Repeated("--config".to_owned()),
            ),
            (
                &["--listen", "a", "--listen", "b"],
                UsageError::Repeated("--listen".to_owned()),
            ),
        ];
        for (a, want) in cases {
            assert_eq!(APPLET.parse(&args(a)), Err(want), "{a:?}");
        }
    }

    #[test]
    fn usage_lists_every_option() {
        let u = APPLET.usage();
        assert!(u.starts_with(
            "usage: demo [--config FILE] [--check] [--listen ADDRESS:PORT] [--test-stall-signal]\n"
        ));
        for want in [
            "/etc/acpigate/demo.json",
            "where to listen",
            "for tests only",
            "Does a",
        ] {
            assert!(u.contains(want), "{want}: {u}");
        }
    }

    #[test]
    fn check_loads_and_stops_before_serving() {
        let served = std::cell::Cell::new(false);
        let r = APPLET.main(
            &args(&["--check", "--config", "/tmp/c.json"]),
            |inv| Ok(inv.config.clone()),
            |c| format!("{c:?}"),
            |_, _| {
                served.set(true);
                async { Ok(()) }
            },
        );
        assert!(r.is_ok() && !served.get());
        let r = APPLET.main(
            &args(&[]),
            |_| anyhow::bail!("/etc/acpigate/demo.json:3:7: nonsense"),
            |_: &()| String::new(),
            |_, _| async { Ok(()) },
        );
        let e = format!("{:#}", r.expect_err("a bad file stops the start"));
        assert!(e.contains("demo.json:3:7: nonsense"), "{e}");
        let r = APPLET.main(
            &args(&["--listen", "x"]),
            |inv| Ok(inv.value("--listen").map(str::to_owned)),
            |_| String::new(),
            |c, _| async move {
                assert_eq!(c.as_deref(), Some("x"));
                anyhow::bail!("served and failed")
            },
        );
        assert!(format!("{:#}", r.expect_err("serve's error")).contains("served and failed"));
    }
}
