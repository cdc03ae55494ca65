//! The demo's picture: one panel per run, time left to right, one lane per thing that
//! matters — the host phase acpi-state-daemon published, sensor-gate's gate, the BMC's and
//! the firmware's SMBus transfers (collisions in red), the fan mode, the targets started, and
//! what the host did.

use std::fmt::Write;
use std::time::Instant;

use openbmc_vocab::acpigate::HostPhase;

use acpigate_sim::smbus::{Master, Outcome, Transfer};

/// Everything one run recorded.
pub struct Panel {
    pub title: String,
    pub t0: Instant,
    pub end: Instant,
    pub phases: Vec<(Instant, HostPhase)>,
    pub gate: Vec<(Instant, bool)>,
    pub transfers: Vec<Transfer>,
    pub fan_manual: Vec<(Instant, bool)>,
    pub targets: Vec<(Instant, String)>,
    pub host: Vec<(Instant, String)>,
    /// A one-line result shown under the title.
    pub summary: String,
}

const W: f64 = 1500.0;
const LEFT: f64 = 150.0;
const LANE: f64 = 26.0;
const LANES: [&str; 7] = [
    "host phase",
    "DIMM gate",
    "BMC SMBus",
    "firmware SMBus",
    "fans",
    "targets",
    "host did",
];

fn phase_colour(p: HostPhase) -> &'static str {
    match p {
        HostPhase::Working => "#4caf50",
        HostPhase::FirmwareInit => "#ff9800",
        HostPhase::Sleeping => "#9c27b0",
        HostPhase::Off => "#9e9e9e",
        HostPhase::Unknown => "#e0e0e0",
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

impl Panel {
    fn x(&self, t: Instant) -> f64 {
        let span = self
            .end
            .saturating_duration_since(self.t0)
            .as_secs_f64()
            .max(1e-3);
        let dt = t.saturating_duration_since(self.t0).as_secs_f64();
        LEFT + (W - LEFT - 20.0) * (dt / span).clamp(0.0, 1.0)
    }

    /// Draw a lane of on/off (or coloured) bands from a step function.
    fn bands<T: Copy>(
        &self,
        out: &mut String,
        y: f64,
        steps: &[(Instant, T)],
        colour: impl Fn(T) -> Option<(&'static str, String)>,
    ) {
        for (i, (t, v)) in steps.iter().enumerate() {
            let until = steps.get(i + 1).map_or(self.end, |(n, _)| *n);
            let (x0, x1) = (self.x(*t), self.x(until));
            if let Some((fill, label)) = colour(*v) {
                let _ = write!(
                    out,
                    r##"<rect x="{x0:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{fill}"><title>{}</title></rect>"##,
                    y + 3.0,
                    (x1 - x0).max(0.5),
                    LANE - 6.0,
                    esc(&label)
                );
                if x1 - x0 > 60.0 {
                    let _ = write!(
                        out,
                        r##"<text x="{:.1}" y="{:.1}" font-size="11" fill="#000">{}</text>"##,
                        x0 + 3.0,
                        y + LANE - 9.0,
                        esc(&label)
                    );
                }
            }
        }
    }

    fn render(&self, out: &mut String, top: f64) -> f64 {
        let _ = write!(
            out,
            r#"<text x="10" y="{:.1}" font-size="16" font-weight="bold">{}</text><text x="10" y="{:.1}" font-size="13">{}</text>"#,
            top + 18.0,
            esc(&self.title),
            top + 36.0,
            esc(&self.summary)
        );
        let y0 = top + 48.0;
        for (i, name) in LANES.iter().enumerate() {
            let y = y0 + i as f64 * LANE;
            let _ = write!(
                out,
                r##"<rect x="{LEFT}" y="{y:.1}" width="{:.1}" height="{LANE}" fill="{}"/><text x="10" y="{:.1}" font-size="12">{name}</text>"##,
                W - LEFT - 20.0,
                if i % 2 == 0 { "#fafafa" } else { "#f0f0f0" },
                y + LANE - 9.0
            );
        }
        self.bands(out, y0, &self.phases, |p| {
            Some((phase_colour(p), p.to_string()))
        });
        self.bands(out, y0 + LANE, &self.gate, |open| {
            Some(if open {
                ("#4caf50", "open".to_owned())
            } else {
                ("#b71c1c", "closed".to_owned())
            })
        });
        for t in &self.transfers {
            let lane = match t.master {
                Master::Bmc(_) => 2.0,
                // FruDevice shares the firmware's lane: both are masters the gate cannot stop.
                Master::Firmware | Master::FruDevice => 3.0,
            };
            let y = y0 + lane * LANE;
            let (x0, x1) = (self.x(t.start), self.x(t.end));
            let (fill, h) = match t.outcome {
                Outcome::Collision => ("#d50000", LANE - 2.0),
                Outcome::Ok(_) => ("#1565c0", LANE - 10.0),
                Outcome::Nack | Outcome::Timeout => ("#90a4ae", LANE - 10.0),
            };
            let _ = write!(
                out,
                r#"<rect x="{x0:.2}" y="{:.1}" width="{:.2}" height="{h:.1}" fill="{fill}"/>"#,
                y + (LANE - h) / 2.0,
                (x1 - x0).max(0.6)
            );
        }
        self.bands(out, y0 + 4.0 * LANE, &self.fan_manual, |m| {
            Some(if m {
                ("#ffb300", "held at fixed PWM (manual)".to_owned())
            } else {
                ("#81d4fa", "pid-control".to_owned())
            })
        });
        for (t, unit) in &self.targets {
            let x = self.x(*t);
            let y = y0 + 5.0 * LANE;
            let short = unit
                .trim_end_matches("-state.target")
                .trim_start_matches("host-");
            let _ = write!(
                out,
                r##"<line x1="{x:.1}" x2="{x:.1}" y1="{:.1}" y2="{:.1}" stroke="#333"/><text x="{:.1}" y="{:.1}" font-size="10">{}</text>"##,
                y + 2.0,
                y + LANE - 2.0,
                x + 2.0,
                y + LANE - 9.0,
                esc(short)
            );
        }
        // Host actions often come in pairs a millisecond apart: stagger the labels.
        for (i, (t, what)) in self.host.iter().enumerate() {
            let x = self.x(*t);
            let y = y0 + 6.0 * LANE;
            let row = (i % 3) as f64;
            let _ = write!(
                out,
                r##"<line x1="{x:.1}" x2="{x:.1}" y1="{:.1}" y2="{:.1}" stroke="#555"/><text x="{:.1}" y="{:.1}" font-size="9">{}</text>"##,
                y + 2.0,
                y + 10.0 + row * 11.0,
                x + 2.0,
                y + 10.0 + row * 11.0,
                esc(what)
            );
        }
        y0 + LANES.len() as f64 * LANE + 60.0
    }
}

/// The whole picture.
pub fn render(panels: &[Panel], title: &str) -> String {
    let mut body = String::new();
    let mut y = 40.0;
    for p in panels {
        y = p.render(&mut body, y);
    }
    let legend = r##"<g font-size="11"><rect x="150" y="8" width="12" height="12" fill="#4caf50"/><text x="166" y="18">Working / gate open</text><rect x="300" y="8" width="12" height="12" fill="#ff9800"/><text x="316" y="18">FirmwareInit</text><rect x="410" y="8" width="12" height="12" fill="#9e9e9e"/><text x="426" y="18">Off</text><rect x="470" y="8" width="12" height="12" fill="#b71c1c"/><text x="486" y="18">gate closed</text><rect x="570" y="8" width="12" height="12" fill="#1565c0"/><text x="586" y="18">SMBus transfer</text><rect x="690" y="8" width="12" height="12" fill="#d50000"/><text x="706" y="18">collision (transfer destroyed)</text><rect x="880" y="8" width="12" height="12" fill="#90a4ae"/><text x="896" y="18">NACK (unpowered)</text><rect x="1010" y="8" width="12" height="12" fill="#ffb300"/><text x="1026" y="18">fans held</text></g>"##;
    format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{:.0}" font-family="sans-serif"><title>{}</title><rect width="100%" height="100%" fill="white"/>{legend}{body}</svg>
"#,
        y,
        esc(title)
    )
}
