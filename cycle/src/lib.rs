//! The pure core of `acpigate-cycle`, the operator-side power-cycle regression tool (issue
//! 18): it power cycles a host through its BMC, over and over, and follows the host's ACPI
//! power states — not "pingable or not" — to judge each cycle.
//!
//! This crate is the part without I/O: what the tool makes of what the BMC says, the verdict
//! of each cycle, and the reports (closing summary, one JSON line per cycle, an SVG of the
//! run) — plus the two thin edges: [`bmc`] (the IPMI commands over
//! `ipmi_lan::console`) and [`run`] (the loop that polls, feeds the tracker and writes what it
//! decides); the binary (`src/main.rs`) only parses the command line. The crate README
//! (`cycle/README.md`) documents the command and everything below for operators. Like the daemons' cores, everything here is a
//! synchronous state machine: observations go in, each stamped by the caller with a
//! [`std::time::Duration`] since the run started; decisions come out; nothing reads a clock.
//!
//! # Modules
//!
//! * [`observe`]: the [`Observation`]s the transport hands in.
//! * [`decode`]: the bytes of Get ACPI Power State, Get Chassis Status and SEL records.
//! * [`cycle`]: [`CycleTracker`], one cycle's state machine, and its [`CycleResult`].
//! * [`summary`]: the closing summary over all cycles.
//! * [`jsonl`]: one JSON line per cycle.
//! * [`svg`]: the picture of the run.
//! * [`bmc`]: the commands sent, and the SEL cursor; [`run`]: the run.
//!
//! # The rules of a cycle
//!
//! **Milestones.** Each cycle records, with times after the command and what told it:
//! the command sent (time zero), S5, firmware init, S0. A milestone's time is its first
//! sign; later signs of it (a SEL record of what a poll already showed) change nothing.
//!
//! * *S5*: an off state reported (S5/G2, S4/S5, S4, G3, S5 by override, legacy off), by a
//!   poll or a SEL record, or chassis power seen off. Power off is the host off whatever its
//!   ACPI state says.
//! * *Firmware init*: S2 reported, by a poll or a SEL record. When the host reports no S2,
//!   chassis power seen back on after off stands in (source `chassis-power`), and the cycle
//!   says so in a note (`no S2 reported: firmware init seen only from chassis power`). An S2
//!   reported later in the same boot, before S0, replaces the stand-in (if it came
//!   [`cycle::LATE_S2`] or more after power, a note gives both times).
//! * *S0*: S0 (or legacy on) reported by a SEL record — a record is a transition logged
//!   after the command, so the host had left S0 and entered it again — or by a poll, but a
//!   poll's S0 counts only once an ACPI report (poll or record) has shown the host out of S0
//!   since the command. Until then it is the state from before the command took effect, or
//!   a BMC whose ACPI state does not follow power (noted if the cycle times out so).
//!
//! **Verdict.** A cycle passes when S0 is seen before `s0_timeout` after the command with
//! every expected milestone recorded before it. It fails, ending at once with the timeline
//! so far, as:
//!
//! * [`FailKind::S0Timeout`]: no S0 before the timeout (an S0 at or after it is too late),
//!   with the last milestone seen;
//! * [`FailKind::SkippedState`]: S0 reached without an expected milestone (the first missing
//!   one in boot order);
//! * [`FailKind::UnexpectedState`]: S5 during a warm reset;
//! * [`FailKind::BmcSilent`]: no answer to anything for `bmc_silence_limit` (if that limit
//!   falls after the S0 timeout, the timeout is the failure);
//! * [`FailKind::CommandRefused`]: the BMC refused a chassis control;
//! * [`FailKind::LockedOut`]: the transport's call, through [`CycleTracker::abort`].
//!
//! **Actions.** `cycle` sends power cycle (0x02) and expects S5, firmware init, S0.
//! `off-on` sends power down (0x00), then power up (0x01) once S5 has been seen and
//! `off_time` has passed; it expects the same. `reset` sends hard reset (0x03) and expects
//! firmware init and S0; an S5 on the way is allowed (some platforms power cycle for a
//! reset). `warm` is the same hard reset — IPMI's Chassis Control has no warm reset, and
//! OpenBMC's IPMI servers (ipmi-handlers among them) carry out 0x03 as the host's
//! `ForceWarmReboot`, the reset line with power left on — held to what a warm reset is:
//! firmware init to S0 with no S5 at all. Any sign of S5, an off state reported or chassis
//! power seen off, fails a warm cycle as [`FailKind::UnexpectedState`].
//!
//! **Fallback.** A BMC that answers Get ACPI Power State with 0xC1 (OpenIPMI's `ipmi_sim`)
//! is followed through chassis power and the SEL; the tracker says so in a note once per run
//! (the result's [`Mode`] carries the switch to the next cycle's configuration). S5 and
//! firmware init then come from chassis power (or ACPI SEL records, where the BMC logs
//! them). S0:
//!
//! * from a SEL record of S0, if the BMC logs ACPI records — once any ACPI record has been
//!   read in a cycle, only a record of S0 is S0;
//! * otherwise, when chassis power came back on after being seen off and a Get Chassis
//!   Status answered "on" again at least `fallback_s0_after` (10 s) later, with no "off"
//!   between: S0 is *assumed*, with source `chassis-power` and a note. Such a pass says that
//!   power came back and stayed on with the BMC answering, nothing about the OS; the
//!   summary counts these passes apart and leaves their times out of the statistics.
//!
//! With neither polls nor ACPI records, a `reset` or `warm` cycle keeps power on, so
//! nothing can show the host restarting: such cycles time out, with a note saying why.
//!
//! **Inputs the caller owes.** SEL observations are records added after the cycle's command
//! was sent (the caller notes the last record ID before sending), each at the time it was
//! read. A [`observe::Observation::Tick`] at [`CycleTracker::next_deadline`] at the latest.
//! [`cycle::Step::SendCommand`] is sent at once; its answer comes back as
//! [`observe::Observation::CommandAnswered`].

pub mod bmc;
pub mod cycle;
pub mod decode;
pub mod jsonl;
pub mod observe;
pub mod run;
pub mod summary;
pub mod svg;

pub use cycle::{
    Action, CycleConfig, CycleResult, CycleTracker, Entry, FailKind, Milestone, Mode, Source, Step,
    Verdict,
};
pub use observe::Observation;
pub use summary::Summary;
