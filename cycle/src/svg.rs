//! `--svg run.svg`: the whole run in one standalone picture.
//!
//! On top, one row per cycle along a shared time axis (seconds after the command): a band
//! from the command to the first state seen, then S5 (off) to firmware init, then firmware
//! init to S0, each in its own colour, with a green mark at S0. A failed cycle's last band
//! runs on to the moment it failed, where a red cross and the failure's kind stand. Below,
//! a histogram of time to S0 over the measured passes (fixed bins on the same time axis).
//! Each band and mark carries a `<title>` with its times and source, for viewers that show
//! tooltips.
//!
//! Written by hand; the same results always give the same bytes.

use std::time::Duration;

use crate::cycle::{CycleResult, Entry, FailKind, Milestone, Source};

const WIDTH: u64 = 1040;
/// Left of the plot: the row labels.
const LEFT: u64 = 80;
/// Right of the plot: the failure texts.
const RIGHT: u64 = 300;
const PLOT: u64 = WIDTH - LEFT - RIGHT;
const ROWS_TOP: u64 = 64;
const HIST_HEIGHT: u64 = 140;
/// Histogram bins across the time axis.
pub const BINS: usize = 20;

const COLOUR_COMMAND: &str = "#9aa5b1";
const COLOUR_OFF: &str = "#3b4a5a";
const COLOUR_FIRMWARE: &str = "#e6a23c";
const COLOUR_S0: &str = "#2e9d5b";
const COLOUR_FAIL: &str = "#d62728";
const COLOUR_BARS: &str = "#4c78a8";

/// Text and attribute values, escaped for XML.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn secs(v_ms: u64) -> String {
    format!("{}.{:03} s", v_ms / 1000, v_ms % 1000)
}

/// Seconds with one decimal, for text on the picture.
fn secs1(v_ms: u64) -> String {
    format!("{}.{} s", v_ms / 1000, v_ms % 1000 / 100)
}

/// A tick step (ms) of 1, 2 or 5 times a power of ten seconds, giving at most 10 ticks up to
/// `max_ms`; and the axis end, the first tick at or past `max_ms`.
fn axis(max_ms: u64) -> (u64, u64) {
    let max_ms = max_ms.max(1000);
    let mut decade: u64 = 1000;
    loop {
        for m in [1, 2, 5] {
            let step = decade.saturating_mul(m);
            if max_ms.div_ceil(step) <= 10 {
                return (step, max_ms.div_ceil(step) * step);
            }
        }
        decade = decade.saturating_mul(10);
    }
}

/// The x of a time on the plot.
fn xf(t_ms: u64, end_ms: u64) -> f64 {
    LEFT as f64 + PLOT as f64 * (t_ms.min(end_ms) as f64) / end_ms.max(1) as f64
}

/// The x of a time on the plot, as written: one decimal.
fn x(t_ms: u64, end_ms: u64) -> String {
    format!("{:.1}", xf(t_ms, end_ms))
}

fn cycles(n: u64) -> String {
    format!("{n} {}", if n == 1 { "cycle" } else { "cycles" })
}

fn band_colour(from: Milestone) -> &'static str {
    match from {
        Milestone::CommandSent => COLOUR_COMMAND,
        Milestone::S5 => COLOUR_OFF,
        Milestone::FirmwareInit => COLOUR_FIRMWARE,
        Milestone::S0 => COLOUR_S0,
    }
}

fn band_name(from: &Entry) -> String {
    let stand_in = if from.source == Source::ChassisPower && from.milestone != Milestone::S5 {
        " (from chassis power)"
    } else {
        ""
    };
    match from.milestone {
        Milestone::CommandSent => "after the command".to_owned(),
        Milestone::S5 => format!("off{stand_in}"),
        Milestone::FirmwareInit => format!("firmware init{stand_in}"),
        Milestone::S0 => "S0".to_owned(),
    }
}

/// The picture of `results` (cycle n is `results[n - 1]`).
pub fn render(results: &[CycleResult]) -> String {
    let n = results.len() as u64;
    // Many cycles: thinner rows, a label on every tenth.
    let (row_h, label_every) = if n <= 150 { (16, 1) } else { (6, 10) };
    let band_h = row_h * 5 / 8;
    // The axis spans what was seen, not the S0 timeout: one hung cycle must not squeeze
    // every other row into its first pixels. A timed-out row runs off the right edge.
    let seen_ms = results
        .iter()
        .flat_map(|r| {
            let timed_out = matches!(r.failure(), Some(FailKind::S0Timeout { .. }));
            let end = (!timed_out).then_some(ms(r.ended));
            r.timeline.iter().map(|e| ms(e.after)).chain(end)
        })
        .max()
        .unwrap_or(0);
    let max_ms = if seen_ms > 0 {
        seen_ms
    } else {
        results.iter().map(|r| ms(r.ended)).max().unwrap_or(0)
    };
    let (step, end) = axis(max_ms);
    let axis_y = ROWS_TOP + n * row_h + 8;
    let hist_top = axis_y + 64;
    let hist_axis_y = hist_top + HIST_HEIGHT;
    let height = hist_axis_y + 48;
    let passes = results.iter().filter(|r| r.passed()).count();

    let mut s = String::new();
    s.push_str(&format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" \
         viewBox=\"0 0 {WIDTH} {height}\" font-family=\"sans-serif\" font-size=\"11\">\n"
    ));
    s.push_str("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
    s.push_str(&format!(
        "<text x=\"{LEFT}\" y=\"20\" font-size=\"14\">{}</text>\n",
        escape(&format!(
            "acpigate-cycle: {n} cycles, {passes} passed, {} failed",
            results.len() - passes
        ))
    ));
    legend(&mut s);

    s.push_str("<g class=\"cycles\">\n");
    for (i, r) in results.iter().enumerate() {
        let y = ROWS_TOP + i as u64 * row_h;
        row(
            &mut s,
            i + 1,
            r,
            y,
            band_h,
            end,
            (i as u64).is_multiple_of(label_every),
        );
    }
    s.push_str("</g>\n");

    time_axis(&mut s, axis_y, step, end, "seconds after the command");
    histogram(&mut s, results, hist_top);
    s.push_str("</svg>\n");
    s
}

fn legend(s: &mut String) {
    let items = [
        (COLOUR_COMMAND, "after the command"),
        (COLOUR_OFF, "off (S5)"),
        (COLOUR_FIRMWARE, "firmware init"),
        (COLOUR_S0, "S0 reached"),
        (COLOUR_FAIL, "failed"),
    ];
    s.push_str("<g class=\"legend\">\n");
    let mut lx = LEFT;
    for (colour, label) in items {
        s.push_str(&format!(
            "<rect x=\"{lx}\" y=\"32\" width=\"12\" height=\"10\" fill=\"{colour}\"/>\
             <text x=\"{}\" y=\"41\">{}</text>\n",
            lx + 16,
            escape(label)
        ));
        lx += 140;
    }
    s.push_str("</g>\n");
}

fn row(s: &mut String, cycle: usize, r: &CycleResult, y: u64, band_h: u64, end: u64, label: bool) {
    s.push_str(&format!(
        "<g class=\"cycle\" data-cycle=\"{cycle}\" data-verdict=\"{}\">\n",
        if r.passed() { "pass" } else { "fail" }
    ));
    if label {
        s.push_str(&format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">cycle {cycle}</text>\n",
            LEFT - 8,
            y + band_h
        ));
    }
    // Bands between consecutive milestones, coloured by where each starts; a failed cycle's
    // last one runs on to its end.
    let ended = ms(r.ended);
    for (k, from) in r.timeline.iter().enumerate() {
        if from.milestone == Milestone::S0 {
            break;
        }
        let t0 = ms(from.after);
        let t1 = match r.timeline.get(k + 1) {
            Some(next) => ms(next.after),
            None if !r.passed() => ended,
            None => continue,
        };
        if t1 <= t0 || t0 >= end {
            continue;
        }
        s.push_str(&format!(
            "<rect class=\"band\" x=\"{}\" y=\"{y}\" width=\"{:.1}\" height=\"{band_h}\" \
             fill=\"{}\"><title>{}</title></rect>\n",
            x(t0, end),
            PLOT as f64 * ((t1.min(end) - t0.min(end)) as f64) / end as f64,
            band_colour(from.milestone),
            escape(&format!(
                "cycle {cycle}: {} from {} to {} ({})",
                band_name(from),
                secs(t0),
                secs(t1),
                from.source
            )),
        ));
    }
    if let Some(s0) = r.entry(Milestone::S0) {
        let t = ms(s0.after);
        s.push_str(&format!(
            "<rect class=\"s0\" x=\"{}\" y=\"{y}\" width=\"3\" height=\"{band_h}\" \
             fill=\"{COLOUR_S0}\"><title>{}</title></rect>\n",
            x(t, end),
            escape(&format!("cycle {cycle}: S0 at {} ({})", secs(t), s0.source)),
        ));
    }
    if let Some(kind) = r.failure() {
        let cx = xf(ended, end);
        let cy = y as f64 + band_h as f64 / 2.0;
        let d = band_h as f64 / 2.0;
        s.push_str(&format!(
            "<g class=\"failure\" stroke=\"{COLOUR_FAIL}\" stroke-width=\"2\">\
             <title>{}</title>\
             <line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\"/>\
             <line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\"/>\
             <text x=\"{}\" y=\"{}\" stroke=\"none\" fill=\"{COLOUR_FAIL}\">{}</text></g>\n",
            escape(&format!("cycle {cycle} failed at {}: {kind}", secs(ended))),
            cx - d,
            cy - d,
            cx + d,
            cy + d,
            cx - d,
            cy + d,
            cx + d,
            cy - d,
            LEFT + PLOT + 10,
            y + band_h,
            escape(&format!("{kind}, {}", secs1(ended))),
        ));
    }
    s.push_str("</g>\n");
}

fn time_axis(s: &mut String, y: u64, step: u64, end: u64, title: &str) {
    s.push_str("<g class=\"axis\" stroke=\"black\">\n");
    s.push_str(&format!(
        "<line x1=\"{LEFT}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\"/>\n",
        LEFT + PLOT
    ));
    let mut t = 0;
    while t <= end {
        let tx = x(t, end);
        s.push_str(&format!(
            "<line x1=\"{tx}\" y1=\"{y}\" x2=\"{tx}\" y2=\"{}\"/>\
             <text x=\"{tx}\" y=\"{}\" stroke=\"none\" text-anchor=\"middle\">{}</text>\n",
            y + 4,
            y + 16,
            t / 1000
        ));
        t += step;
    }
    s.push_str(&format!(
        "<text x=\"{}\" y=\"{}\" stroke=\"none\" text-anchor=\"middle\">{}</text>\n",
        LEFT + PLOT / 2,
        y + 32,
        escape(title)
    ));
    s.push_str("</g>\n");
}

/// Over its own axis: the measured times to S0 only.
fn histogram(s: &mut String, results: &[CycleResult], top: u64) {
    let times: Vec<u64> = results
        .iter()
        .filter_map(|r| r.time_to_s0())
        .map(ms)
        .collect();
    let (step, end) = axis(times.iter().copied().max().unwrap_or(0));
    let mut bins = [0u64; BINS];
    let bin_ms = end.div_ceil(BINS as u64).max(1);
    for t in &times {
        let i = usize::try_from(t / bin_ms).unwrap_or(BINS).min(BINS - 1);
        bins[i] += 1;
    }
    let max = bins.iter().copied().max().unwrap_or(0);
    let base = top + HIST_HEIGHT;
    s.push_str("<g class=\"histogram\">\n");
    s.push_str(&format!(
        "<text x=\"{LEFT}\" y=\"{}\" font-size=\"13\">{}</text>\n",
        top - 12,
        escape(&format!(
            "time to S0, {} measured, {BINS} bins of {}",
            cycles(times.len() as u64),
            secs(bin_ms)
        ))
    ));
    // The count axis: 0 and the tallest bin.
    s.push_str(&format!(
        "<line x1=\"{LEFT}\" y1=\"{top}\" x2=\"{LEFT}\" y2=\"{base}\" stroke=\"black\"/>\n\
         <text x=\"{}\" y=\"{base}\" text-anchor=\"end\">0</text>\n\
         <text x=\"{}\" y=\"{}\" text-anchor=\"end\">{max}</text>\n\
         <text x=\"{}\" y=\"{}\" text-anchor=\"middle\" transform=\"rotate(-90 {} {})\">cycles</text>\n",
        LEFT - 6,
        LEFT - 6,
        top + 8,
        LEFT - 30,
        top + HIST_HEIGHT / 2,
        LEFT - 30,
        top + HIST_HEIGHT / 2,
    ));
    if max == 0 {
        s.push_str(&format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">no measured S0 times</text>\n",
            LEFT + PLOT / 2,
            top + HIST_HEIGHT / 2
        ));
    }
    for (i, &count) in bins.iter().enumerate() {
        if count == 0 {
            continue;
        }
        let from = i as u64 * bin_ms;
        let h = HIST_HEIGHT as f64 * count as f64 / max as f64;
        s.push_str(&format!(
            "<rect class=\"bar\" x=\"{}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\" \
             fill=\"{COLOUR_BARS}\"><title>{}</title></rect>\n",
            x(from, end),
            base as f64 - h,
            (PLOT as f64 / BINS as f64 - 1.0).max(1.0),
            escape(&format!(
                "{} from {} to {}",
                cycles(count),
                secs(from),
                secs(from + bin_ms)
            )),
        ));
    }
    s.push_str("</g>\n");
    time_axis(s, base, step, end, "time to S0, seconds");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cycle::{FailKind, Verdict};

    fn result(verdict: Verdict, entries: &[(Milestone, u64, Source)], ended: u64) -> CycleResult {
        CycleResult::made_up(verdict, entries, ended)
    }

    fn run() -> Vec<CycleResult> {
        use Milestone::*;
        let cmd = (CommandSent, 0, Source::Command);
        vec![
            result(
                Verdict::Pass,
                &[
                    cmd,
                    (S5, 600, Source::AcpiPoll),
                    (FirmwareInit, 2600, Source::Sel(0x12)),
                    (S0, 8100, Source::AcpiPoll),
                ],
                8100,
            ),
            result(
                Verdict::Fail(FailKind::S0Timeout {
                    last_seen: FirmwareInit,
                }),
                &[
                    cmd,
                    (S5, 500, Source::AcpiPoll),
                    (FirmwareInit, 2500, Source::AcpiPoll),
                ],
                60_000,
            ),
            result(
                Verdict::Pass,
                &[
                    cmd,
                    (S5, 700, Source::ChassisPower),
                    (FirmwareInit, 2700, Source::ChassisPower),
                    (S0, 8700, Source::AcpiPoll),
                ],
                8700,
            ),
            result(
                Verdict::Fail(FailKind::SkippedState(S5)),
                &[
                    cmd,
                    (FirmwareInit, 3000, Source::AcpiPoll),
                    (S0, 7000, Source::AcpiPoll),
                ],
                7000,
            ),
        ]
    }

    /// Enough of XML to catch what string building gets wrong: every tag closed in order,
    /// one root, no stray `<`, `>` or `&` in text, attribute values quoted.
    fn check_well_formed(doc: &str) -> Result<(), String> {
        let mut stack: Vec<&str> = Vec::new();
        let mut roots = 0;
        let mut rest = doc;
        while let Some(open) = rest.find('<') {
            check_text(&rest[..open])?;
            let after = &rest[open + 1..];
            let close = after.find('>').ok_or("unclosed tag")?;
            let tag = &after[..close];
            if tag.contains('<') {
                return Err(format!("`<` inside tag `{tag}`"));
            }
            if let Some(name) = tag.strip_prefix('/') {
                match stack.pop() {
                    Some(top) if top == name => {}
                    other => return Err(format!("`</{name}>` closes {other:?}")),
                }
            } else {
                let self_closing = tag.ends_with('/');
                let body = tag.trim_end_matches('/');
                let name = body.split_whitespace().next().ok_or("empty tag")?;
                if !body.matches('"').count().is_multiple_of(2) {
                    return Err(format!("unbalanced quotes in `{tag}`"));
                }
                check_text(&body.replace('"', ""))?;
                if stack.is_empty() {
                    roots += 1;
                }
                if !self_closing {
                    stack.push(name);
                }
            }
            rest = &after[close + 1..];
        }
        check_text(rest)?;
        match (stack.is_empty(), roots) {
            (true, 1) => Ok(()),
            _ => Err(format!("open at the end: {stack:?}, {roots} roots")),
        }
    }

    fn check_text(t: &str) -> Result<(), String> {
        if t.contains('>') {
            return Err(format!("`>` in text `{t}`"));
        }
        for (i, _) in t.match_indices('&') {
            let entity = &t[i..];
            if !["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"]
                .iter()
                .any(|e| entity.starts_with(e))
            {
                return Err(format!("bare `&` in `{t}`"));
            }
        }
        Ok(())
    }

    #[test]
    fn the_checker_catches_what_it_should() {
        for bad in [
            "<svg><g></svg>",
            "<svg></g>",
            "<svg>a & b</svg>",
            "<svg x=\"1></svg>",
            "<svg/><svg/>",
            "<svg>1 > 0</svg>",
        ] {
            assert!(check_well_formed(bad).is_err(), "{bad}");
        }
        assert_eq!(
            check_well_formed("<svg a=\"&amp;\"><g><rect/></g>x &lt; y</svg>"),
            Ok(())
        );
    }

    #[test]
    fn a_run_renders_as_well_formed_svg_with_a_row_per_cycle() {
        let results = run();
        let doc = render(&results);
        assert!(doc.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(doc.ends_with("</svg>\n"));
        check_well_formed(&doc).expect("well formed");
        assert_eq!(doc.matches("<g ").count(), doc.matches("</g>").count());
        assert_eq!(doc.matches("<g class=\"cycle\"").count(), results.len());
        for c in 1..=results.len() {
            assert!(doc.contains(&format!("data-cycle=\"{c}\"")), "row {c}");
            assert!(doc.contains(&format!(">cycle {c}</text>")), "label {c}");
        }
        // The two failures are marked, with their kind.
        assert_eq!(doc.matches("<g class=\"failure\"").count(), 2);
        assert!(doc.contains(">no S0 in time (last seen: firmware-init), 60.0 s</text>"));
        assert!(doc.contains(">skipped s5, 7.0 s</text>"));
        // The timeout's last band runs to its end (off the picture: the axis spans what was
        // seen, to 9 s); the cross stands at the right edge.
        assert!(doc.contains("firmware init from 2.500 s to 60.000 s (acpi-poll)"));
        assert!(doc.contains(&format!("<line x1=\"{:.1}\"", xf(9000, 9000) - 5.0)));
        assert!(doc.contains(">8</text>"), "axis to 9 s in steps of 1 s");
        assert!(doc.contains("firmware init (from chassis power) from 2.700 s to 8.700 s"));
        // The legend, every colour in it.
        for c in [
            COLOUR_COMMAND,
            COLOUR_OFF,
            COLOUR_FIRMWARE,
            COLOUR_S0,
            COLOUR_FAIL,
        ] {
            assert!(doc.contains(&format!("fill=\"{c}\"/><text")), "legend {c}");
        }
        // Two measured passes (8.1 s and 8.7 s) on the histogram's own axis, to 9 s: bins
        // of 450 ms. The skipped-state S0 is not a pass.
        assert!(doc.contains("time to S0, 2 cycles measured, 20 bins of 0.450 s"));
        assert_eq!(doc.matches("<rect class=\"bar\"").count(), 2);
        assert!(doc.contains("1 cycle from 8.100 s to 8.550 s"));
        assert!(doc.contains("1 cycle from 8.550 s to 9.000 s"));
        // The same results, the same bytes.
        assert_eq!(render(&results), doc);
    }

    #[test]
    fn no_cycles_and_many_cycles() {
        let empty = render(&[]);
        check_well_formed(&empty).expect("well formed");
        assert!(empty.contains("no measured S0 times"));
        assert_eq!(empty.matches("<g class=\"cycle\"").count(), 0);

        let many: Vec<CycleResult> = run().into_iter().cycle().take(400).collect();
        let doc = render(&many);
        check_well_formed(&doc).expect("well formed");
        assert_eq!(doc.matches("<g class=\"cycle\"").count(), 400);
        assert_eq!(doc.matches("<g class=\"failure\"").count(), 200);
        // Labels thin out to every tenth row.
        assert_eq!(doc.matches("text-anchor=\"end\">cycle ").count(), 40);
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            escape("a<b & \"c\" 'd'>"),
            "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;"
        );
    }

    #[test]
    fn axis_steps() {
        for (max_ms, want) in [
            (0, (1000, 1000)),
            (900, (1000, 1000)),
            (8100, (1000, 9000)),
            (10_000, (1000, 10_000)),
            (10_001, (2000, 12_000)),
            (60_000, (10_000, 60_000)),
            (299_999, (50_000, 300_000)),
            (3_600_000, (500_000, 4_000_000)),
        ] {
            assert_eq!(axis(max_ms), want, "{max_ms}");
        }
    }
}
