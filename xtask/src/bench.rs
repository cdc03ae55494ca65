//! `cargo xtask bench [--transitions N] [--quick] [--only gate|gate-stall|ipmi|footprint]…`:
//! measures the release-built daemons (`acpigate-bench`, tests/src/bin/acpigate-bench.rs) and
//! rewrites this command's sections of BENCHMARKS.md — `gate-latency`, `gate-stall`, `ipmi`,
//! `footprint` — with the exact command, the machine, the load average and the figures. `--only`
//! takes a prefix of a section name (`gate` is both gate sections). Other sections (`size` from
//! `cargo xtask cross --record`, and those written by hand) are left as they are. Not part of
//! `cargo xtask test`: the full run takes several minutes.

use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::{setup, sh};

/// One section of BENCHMARKS.md this command owns.
struct Section {
    name: &'static str,
    title: &'static str,
    runs: Vec<Vec<String>>,
}

pub fn run(args: &[String]) -> Result<()> {
    let mut transitions = 10_000u64;
    let mut quick = false;
    let mut only: Vec<String> = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--transitions" => {
                transitions = it
                    .next()
                    .context("--transitions N")?
                    .parse()
                    .context("--transitions N: a number")?
            }
            "--quick" => quick = true,
            "--only" => only.push(
                it.next()
                    .context("--only gate|gate-stall|ipmi|footprint")?
                    .clone(),
            ),
            other => bail!("unknown argument `{other}`"),
        }
    }
    if quick {
        transitions = transitions.min(500);
    }
    setup::host_packages(&[
        "dbus-daemon",
        "ipmitool",
        "openipmi",
        "xz-utils",
        "binutils",
    ])?;
    sh::run(sh::cargo().args(["build", "--locked", "--release", "-p", "acpigate"]))?;
    sh::run(sh::cargo().args([
        "build",
        "--locked",
        "--release",
        "-p",
        "acpigate-tests",
        "--bin",
        "acpigate-bench",
    ]))?;

    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<String>>();
    let t = transitions.to_string();
    let (idle, wake, ready, secs, rounds) = if quick {
        ("15", "5", "3", "3", "1")
    } else {
        ("60", "10", "10", "10", "3")
    };
    let sections = vec![
        Section {
            name: "gate-latency",
            title: "Gate close latency",
            runs: vec![
                s(&[
                    "gate",
                    "--transitions",
                    &t,
                    "--settle-ms",
                    "0",
                    "--poll-ms",
                    "10",
                ]),
                s(&[
                    "gate",
                    "--transitions",
                    &t,
                    "--settle-ms",
                    "0",
                    "--poll-ms",
                    "10",
                    "--load",
                ]),
            ],
        },
        Section {
            name: "gate-stall",
            title: "Gate close latency beside a stalled systemd",
            runs: vec![s(&[
                "gate-stall",
                "--transitions",
                if quick { "200" } else { "5000" },
                "--stall-ms",
                "5000",
            ])],
        },
        Section {
            name: "ipmi",
            title: "IPMI throughput",
            runs: vec![s(&[
                "ipmi", "--secs", secs, "--batch", "1000", "--rounds", rounds,
            ])],
        },
        Section {
            name: "footprint",
            title: "Footprint",
            runs: vec![s(&[
                "footprint",
                "--idle-secs",
                idle,
                "--wake-secs",
                wake,
                "--ready-runs",
                ready,
            ])],
        },
    ];
    let machine = machine()?;
    let file = sh::root().join("BENCHMARKS.md");
    for sec in sections {
        if !only.is_empty() && !only.iter().any(|o| sec.name.starts_with(o.as_str())) {
            continue;
        }
        let mut body = format!("## {}\n\n", sec.title);
        body.push_str(&format!(
            "Command: `cargo xtask bench{}` — measured {} on {machine}.\n\n",
            if args.is_empty() {
                String::new()
            } else {
                format!(" {}", args.join(" "))
            },
            sh::output(std::process::Command::new("date").args(["-u", "+%F %H:%M UTC"]))?.trim()
        ));
        for r in &sec.runs {
            body.push_str(&format!("`acpigate-bench {}`:\n\n", r.join(" ")));
            let out = sh::output(
                std::process::Command::new(bench_exe()?)
                    .args(r)
                    .current_dir(sh::root()),
            )?;
            body.push_str(out.trim_end());
            body.push_str("\n\n");
        }
        let old = std::fs::read_to_string(&file).unwrap_or_default();
        let new = replace_section(&old, sec.name, body.trim_end());
        std::fs::write(&file, new).with_context(|| format!("writing {}", file.display()))?;
        eprintln!("xtask: wrote section {} of {}", sec.name, file.display());
    }
    Ok(())
}

/// `<target>/release/acpigate-bench`; `acpigate` sits next to it, where the harness looks.
fn bench_exe() -> Result<std::path::PathBuf> {
    let exe = sh::target_dir().join("release").join("acpigate-bench");
    if !exe.is_file() {
        bail!("{} was not built", exe.display());
    }
    Ok(exe)
}

/// "N CPUs (model), Linux x.y, commit abc (+ uncommitted changes)".
fn machine() -> Result<String> {
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let kernel = sh::output(std::process::Command::new("uname").arg("-r"))?;
    let root = sh::root();
    let commit = git(&root, &["rev-parse", "--short", "HEAD"]).unwrap_or_else(|_| "?".into());
    let dirty = git(
        &root,
        &[
            "status",
            "--porcelain",
            "--",
            "acpigate",
            "acpi-state-daemon",
            "sensor-gate",
            "ipmi-handlers",
            "ipmi-lan",
            "daemon-kit",
            "openbmc-vocab",
            "sim",
            "tests",
            "Cargo.lock",
        ],
    )
    .map(|s| !s.trim().is_empty())
    .unwrap_or(false);
    Ok(format!(
        "nproc {cpus} ({model}), Linux {}, commit {}{}; the machine is shared with other \
         builds, so every figure carries the load average at the time",
        kernel.trim(),
        commit.trim(),
        if dirty {
            " + uncommitted changes in the tree"
        } else {
            ""
        }
    ))
}

fn git(root: &Path, args: &[&str]) -> Result<String> {
    sh::output(
        std::process::Command::new("git")
            .args(args)
            .current_dir(root),
    )
}

/// The head of BENCHMARKS.md, written when the file is new (a test holds the file to it).
const HEADER: &str = "# Benchmarks\n\n\
Measured figures only, each with the command that produced it and the machine it ran on; \
history is in git. Each section is delimited by `<!-- section:NAME -->` markers and rewritten \
by its command: `gate-latency`, `gate-stall`, `ipmi`, `footprint` by `cargo xtask bench`; \
`size` by `cargo xtask cross --record`; `soak`, `soak-frudevice`, `ci-tenant`, `gate-stall-before` \
and `sel` by hand, with the commands they show (`soak` from the summary line of \
`cargo xtask soak --boots 10000`).\n";

/// `doc` with the body between `<!-- section:NAME -->` and `<!-- /section:NAME -->` replaced by
/// `body`; the section is appended if absent, and the header written if `doc` is empty.
/// Everything outside the markers is kept byte for byte.
pub fn replace_section(doc: &str, name: &str, body: &str) -> String {
    let open = format!("<!-- section:{name} -->");
    let close = format!("<!-- /section:{name} -->");
    let block = format!("{open}\n{body}\n{close}");
    if let Some(a) = doc.find(&open)
        && let Some(b) = doc[a..].find(&close)
    {
        let end = a + b + close.len();
        return format!("{}{block}{}", &doc[..a], &doc[end..]);
    }
    let mut out = if doc.trim().is_empty() {
        HEADER.to_owned()
    } else {
        doc.to_owned()
    };
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&block);
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::replace_section;

    #[test]
    fn a_section_is_replaced_in_place_and_others_are_kept() {
        let doc = "# B\n\n<!-- section:size -->\nS\n<!-- /section:size -->\n\n\
                   <!-- section:ipmi -->\nold\nlines\n<!-- /section:ipmi -->\n\n\
                   <!-- section:soak -->\nK\n<!-- /section:soak -->\n";
        let new = replace_section(doc, "ipmi", "new");
        assert_eq!(
            new,
            "# B\n\n<!-- section:size -->\nS\n<!-- /section:size -->\n\n\
             <!-- section:ipmi -->\nnew\n<!-- /section:ipmi -->\n\n\
             <!-- section:soak -->\nK\n<!-- /section:soak -->\n"
        );
        // Idempotent.
        assert_eq!(replace_section(&new, "ipmi", "new"), new);
    }

    #[test]
    fn a_missing_section_is_appended_and_an_empty_file_gets_the_header() {
        let doc = replace_section("", "gate-latency", "G");
        assert!(doc.starts_with("# Benchmarks\n"));
        assert!(
            doc.ends_with("\n<!-- section:gate-latency -->\nG\n<!-- /section:gate-latency -->\n")
        );
        let doc2 = replace_section(&doc, "footprint", "F");
        assert!(doc2.starts_with(&doc));
        assert!(doc2.ends_with("<!-- section:footprint -->\nF\n<!-- /section:footprint -->\n"));
    }

    /// The file says who writes each section; a new file gets the same words.
    #[test]
    fn benchmarks_md_starts_with_the_header() {
        let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../BENCHMARKS.md");
        let text = std::fs::read_to_string(&file).expect("BENCHMARKS.md");
        assert!(
            text.starts_with(super::HEADER),
            "BENCHMARKS.md does not start with bench.rs's HEADER"
        );
    }

    #[test]
    fn a_marker_prefix_does_not_match_another_section() {
        let doc = "<!-- section:ipmi-lan -->\nX\n<!-- /section:ipmi-lan -->\n";
        let new = replace_section(doc, "ipmi", "Y");
        assert!(new.starts_with(doc));
        assert!(new.contains("<!-- section:ipmi -->\nY\n<!-- /section:ipmi -->"));
    }
}
