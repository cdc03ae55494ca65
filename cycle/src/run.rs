//! The run: log in, then for each cycle send the command the tracker asks for, poll the BMC
//! (Get ACPI Power State, Get Chassis Status, new SEL records) every `poll`, hand everything
//! to the [`CycleTracker`] and write what it decides. The only I/O of the tool besides its
//! output files; every decision is the tracker's.

use std::io::Write;
use std::time::{Duration, Instant};

use ipmi_lan::console::{ConsoleError, Session, Target};

use crate::bmc::{Bmc, CC_INVALID_COMMAND, Refused, SelCursor};
use crate::cycle::{Action, CycleConfig, CycleResult, CycleTracker, Milestone, Mode, Step};
use crate::decode;
use crate::observe::Observation;
use crate::{jsonl, summary, svg};

/// Everything the command line sets.
#[derive(Debug, Clone)]
pub struct Options {
    pub target: Target,
    pub cycles: usize,
    pub action: Action,
    pub s0_timeout: Duration,
    pub expected: Option<Vec<Milestone>>,
    pub poll: Duration,
    pub out: Option<std::path::PathBuf>,
    pub svg: Option<std::path::PathBuf>,
    pub fail_fast: bool,
    /// Progress as a bar redrawn in place (a terminal) instead of one line per cycle.
    pub tty: bool,
}

/// How a run ended, for the exit code.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every cycle passed.
    AllPassed,
    /// Some cycles failed (the summary says which).
    SomeFailed,
}

/// Why a run could not go on at all.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    Console(#[from] ConsoleError),
    #[error("writing {what}: {source}")]
    Output {
        what: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Config(#[from] crate::cycle::ConfigError),
}

impl RunError {
    /// A login the BMC refused (wrong password, refused or locked-out user, cipher suite).
    pub fn is_login_refusal(&self) -> bool {
        matches!(self, Self::Console(e) if e.is_login_refusal())
    }
}

fn output(what: &str) -> impl FnOnce(std::io::Error) -> RunError + '_ {
    move |source| RunError::Output {
        what: what.to_owned(),
        source,
    }
}

/// Run every cycle; progress and the summary go to `log`.
pub fn run(opts: &Options, log: &mut dyn Write) -> Result<(Outcome, Vec<CycleResult>), RunError> {
    let start = Instant::now();
    let at = || start.elapsed();
    let session = Session::open(opts.target.clone())?;
    let mut bmc = Bmc { session };
    writeln!(
        log,
        "logged in to {} as {} (cipher suite {}); {} cycle(s) of {}",
        opts.target.addr,
        String::from_utf8_lossy(&opts.target.user),
        opts.target.suite.id(),
        opts.cycles,
        opts.action.name()
    )
    .map_err(output("the log"))?;
    let mut sel = SelCursor::start(&mut bmc)?;
    let mut out = match &opts.out {
        Some(p) => Some(std::fs::File::create(p).map_err(output("--out"))?),
        None => None,
    };
    let mut results: Vec<CycleResult> = Vec::new();
    let mut mode = Mode::Acpi;
    for n in 1..=opts.cycles {
        let mut cfg = CycleConfig::new(opts.action);
        cfg.s0_timeout = opts.s0_timeout;
        cfg.mode = mode;
        if let Some(e) = &opts.expected {
            cfg.expected = e.clone();
        }
        let result = one_cycle(cfg, &mut bmc, &mut sel, opts.poll, &at, log)?;
        mode = result.mode;
        if let Some(f) = out.as_mut() {
            let line = jsonl::line(n, &result).map_err(|e| RunError::Output {
                what: "--out".to_owned(),
                source: std::io::Error::other(e),
            })?;
            writeln!(f, "{line}").map_err(output("--out"))?;
        }
        progress(log, opts, n, &result, &results).map_err(output("the log"))?;
        let failed = !result.passed();
        results.push(result);
        if failed && opts.fail_fast {
            writeln!(log, "stopping after cycle {n}: --fail-fast").map_err(output("the log"))?;
            break;
        }
    }
    write!(log, "{}", summary::Summary::of(&results)).map_err(output("the log"))?;
    if let Some(p) = &opts.svg {
        std::fs::write(p, svg::render(&results)).map_err(output("--svg"))?;
    }
    let outcome = if results.iter().all(CycleResult::passed) {
        Outcome::AllPassed
    } else {
        Outcome::SomeFailed
    };
    Ok((outcome, results))
}

fn progress(
    log: &mut dyn Write,
    opts: &Options,
    n: usize,
    r: &CycleResult,
    before: &[CycleResult],
) -> std::io::Result<()> {
    let failures = before.iter().filter(|r| !r.passed()).count() + usize::from(!r.passed());
    let what = match (r.failure(), r.time_to_s0()) {
        (Some(kind), _) => format!("FAILED: {}", kind.name()),
        (None, Some(t)) => format!("S0 after {:.1} s", t.as_secs_f64()),
        (None, None) => "passed".to_owned(),
    };
    if opts.tty {
        let width = 30;
        let done = n * width / opts.cycles.max(1);
        write!(
            log,
            "\r[{}{}] {n}/{} cycles, {failures} failed; last: {what}\x1b[K",
            "#".repeat(done),
            " ".repeat(width - done),
            opts.cycles
        )?;
        if n == opts.cycles || (!r.passed() && opts.fail_fast) {
            writeln!(log)?;
        }
    } else {
        writeln!(log, "cycle {n}/{}: {what}", opts.cycles)?;
    }
    if !r.passed() {
        // A failure is reported with its timeline so far.
        for e in &r.timeline {
            writeln!(
                log,
                "    {:>8.3} s  {:<14} ({})",
                e.after.as_secs_f64(),
                e.milestone.name(),
                e.source
            )?;
        }
        for note in &r.notes {
            writeln!(log, "    note: {note}")?;
        }
    }
    Ok(())
}

fn one_cycle(
    cfg: CycleConfig,
    bmc: &mut Bmc,
    sel: &mut SelCursor,
    poll: Duration,
    at: &dyn Fn() -> Duration,
    log: &mut dyn Write,
) -> Result<CycleResult, RunError> {
    // Records logged before this cycle's command are the last cycle's.
    sel.new_records(bmc)?;
    let (mut tracker, steps) = CycleTracker::start(cfg, at())?;
    // Steps in the order the tracker gave them; each may bring more.
    let mut pending: std::collections::VecDeque<Step> = steps.into();
    loop {
        while let Some(step) = pending.pop_front() {
            match step {
                Step::Done(result) => return Ok(result),
                Step::Note(note) => {
                    let _ = writeln!(log, "    {note}");
                }
                Step::SendCommand(code) => {
                    let obs = match bmc.chassis_control(code) {
                        Ok(Ok(())) => Observation::CommandAnswered {
                            at: at(),
                            code,
                            cc: 0,
                        },
                        Ok(Err(Refused(cc))) => Observation::CommandAnswered { at: at(), code, cc },
                        Err(e) => silent_or_fatal(e, at())?,
                    };
                    pending.extend(tracker.handle(obs));
                }
            }
        }
        let next_poll = at() + poll;
        for obs in poll_once(bmc, sel, tracker.mode(), at)? {
            pending.extend(tracker.handle(obs));
            if !pending.is_empty() {
                break;
            }
        }
        if !pending.is_empty() {
            continue;
        }
        let wake = tracker
            .next_deadline()
            .map_or(next_poll, |d| d.min(next_poll));
        std::thread::sleep(wake.saturating_sub(at()));
        pending.extend(tracker.handle(Observation::Tick { at: at() }));
    }
}

/// A console error during a cycle: silence is an observation; anything else — a refused
/// login (the session was dropped and the new login refused, e.g. a lockout) above all —
/// ends the run, and the error says why.
fn silent_or_fatal(e: ConsoleError, at: Duration) -> Result<Observation, RunError> {
    match e {
        ConsoleError::NoAnswer { .. } => Ok(Observation::NoAnswer { at }),
        e => Err(e.into()),
    }
}

/// One round of polls: what each answer says, in order.
fn poll_once(
    bmc: &mut Bmc,
    sel: &mut SelCursor,
    mode: Mode,
    at: &dyn Fn() -> Duration,
) -> Result<Vec<Observation>, RunError> {
    let mut seen = Vec::new();
    if mode == Mode::Acpi {
        match bmc.acpi_power_state() {
            Ok(Ok(data)) => match decode::acpi_power_state(&data) {
                Ok(state) => seen.push(Observation::Acpi { at: at(), state }),
                Err(_) => seen.push(Observation::Answered { at: at() }),
            },
            Ok(Err(Refused(CC_INVALID_COMMAND))) => {
                seen.push(Observation::AcpiUnsupported { at: at() })
            }
            Ok(Err(_)) => seen.push(Observation::Answered { at: at() }),
            Err(e) => seen.push(silent_or_fatal(e, at())?),
        }
    }
    match bmc.chassis_status() {
        Ok(Ok(data)) => match decode::chassis_power_on(&data) {
            Ok(on) => seen.push(Observation::ChassisPower { at: at(), on }),
            Err(_) => seen.push(Observation::Answered { at: at() }),
        },
        Ok(Err(_)) => seen.push(Observation::Answered { at: at() }),
        Err(e) => seen.push(silent_or_fatal(e, at())?),
    }
    match sel.new_records(bmc) {
        Ok(records) => {
            for r in records {
                if let Ok(Some(ev)) = decode::sel_record(&r) {
                    seen.push(ev.observation(at()));
                }
            }
        }
        Err(e) => seen.push(silent_or_fatal(e, at())?),
    }
    Ok(seen)
}
