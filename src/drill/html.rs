//! `drflow drill --report FILE.html`: one drill as a page an auditor keeps.
//!
//! The page is self-contained: its style is inline, its chart is inline SVG, and it has no
//! script and no reference to anything outside itself (no `src`, no `href`, no `url(…)`), so it
//! reads the same offline, years later, and prints as it shows. Every string from the report is
//! escaped (parameters can hold anything). The output is a function of the report alone, with
//! numbers printed at a fixed precision: the same report gives the same bytes, so a page can be
//! compared or checksummed.

use std::fmt::Write as _;

use serde_json::Value;

use super::model::{ClientSample, DrillReport, StepTiming, TimelineEntry};

/// Appends formatted text to a `String` (writing to a `String` cannot fail).
macro_rules! w {
    ($out:expr, $($arg:tt)*) => {{
        let _ = write!($out, $($arg)*);
    }};
}

/// Red for a failed request, a failed step and a missed objective.
const FAILED: &str = "#c53030";
/// A request sent nowhere (DNS gave no answer).
const NO_REGION: &str = "#718096";
/// Acknowledged requests, by region in the order the client first reached them: the first
/// (the primary, as a rule) blue, the second green.
const REGION_COLOURS: [&str; 5] = ["#2b6cb0", "#2f855a", "#6b46c1", "#b7791f", "#319795"];
/// Steps by status.
const STEP_SUCCEEDED: &str = "#4a5568";
const STEP_OTHER: &str = "#a0aec0";
/// Stages of the critical path; unknown stage names take the spare colours in order.
const STAGE_COLOURS: [(&str, &str); 6] = [
    ("detection", "#dd6b20"),
    ("delivery", "#d69e2e"),
    ("promotion", "#805ad5"),
    ("capacity", "#d53f8c"),
    ("dns", "#0987a0"),
    ("clients", "#975a16"),
];
const SPARE_STAGE_COLOURS: [&str; 4] = ["#285e61", "#702459", "#2a4365", "#744210"];

/// Renders the report as one HTML5 page.
pub fn render(report: &DrillReport) -> String {
    let mut out = String::with_capacity(64 * 1024);
    let verdict = report.objectives_met && report.decision_right;
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    // The page forbids itself every load (only its inline style may apply), so a browser
    // neither fetches nor runs anything even if a reference slipped in, and says so in its
    // console, where the browser test looks.
    out.push_str("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    w!(
        out,
        "<meta name=\"generator\" content=\"drflow {}\">\n",
        esc(&report.version)
    );
    w!(
        out,
        "<title>drflow drill: {} ({})</title>\n",
        esc(&report.scenario),
        if verdict { "pass" } else { "fail" }
    );
    out.push_str("<style>\n");
    out.push_str(STYLE);
    out.push_str("</style>\n</head>\n<body>\n");

    header(&mut out, report, verdict);
    objectives(&mut out, report);
    chart_section(&mut out, report);
    timeline_table(&mut out, &report.timeline);
    evidence(&mut out, report);
    critical_path_table(&mut out, report);
    steps_table(&mut out, &report.steps);
    params_table(&mut out, report);

    w!(
        out,
        "<footer>drflow {} &middot; {} &middot; {} s of simulated time in {} ms of wall time</footer>\n",
        esc(&report.version),
        match &report.run_id {
            Some(id) => format!("failover run <code>{}</code>", esc(id)),
            None => "no failover run".to_string(),
        },
        num1(report.virtual_seconds),
        report.wall_ms
    );
    out.push_str("</body>\n</html>\n");
    out
}

const STYLE: &str = r#"*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:#1a202c;background:#fff;margin:0 auto;padding:24px 32px;max-width:1180px;line-height:1.45;font-size:14px}
h1{font-size:24px;margin:0 0 4px}
h2{font-size:17px;margin:28px 0 8px;padding-bottom:4px;border-bottom:1px solid #e2e8f0}
p{margin:6px 0}
code{font-family:ui-monospace,"SFMono-Regular",Menlo,Consolas,"DejaVu Sans Mono",monospace;font-size:12.5px}
table{border-collapse:collapse;width:100%;margin:6px 0}
th,td{text-align:left;vertical-align:top;padding:4px 8px;border-bottom:1px solid #e2e8f0}
th{background:#f7fafc;font-weight:600}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
#objectives td:first-child{white-space:nowrap}
.badge{display:inline-block;padding:2px 10px;border-radius:4px;font-weight:700;color:#fff}
.pass{background:#2f855a}.fail{background:#c53030}
.ok{color:#276749;font-weight:600}.bad{color:#c53030;font-weight:600}
.muted{color:#4a5568}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;margin:10px 0}
dl.facts dt{font-weight:600}dl.facts dd{margin:0}
figure{margin:8px 0}
figure svg{width:100%;height:auto;display:block}
figcaption{font-size:12.5px;color:#4a5568;margin-top:4px}
footer{margin-top:32px;padding-top:8px;border-top:1px solid #e2e8f0;color:#4a5568;font-size:12.5px}
*{-webkit-print-color-adjust:exact;print-color-adjust:exact}
@page{size:A4 landscape;margin:12mm}
@media print{body{padding:0;max-width:none;font-size:11px}h2{break-after:avoid}figure,tr,dl{break-inside:avoid}}
"#;

fn header(out: &mut String, r: &DrillReport, verdict: bool) {
    out.push_str("<header>\n");
    w!(out, "<h1>Drill: {}</h1>\n", esc(&r.scenario));
    w!(out, "<p class=\"muted\">{}</p>\n", esc(&r.description));
    w!(
        out,
        "<p><span id=\"verdict\" class=\"badge {}\">{}</span> {}</p>\n",
        if verdict { "pass" } else { "fail" },
        if verdict { "PASS" } else { "FAIL" },
        esc(&verdict_sentence(r))
    );
    out.push_str("<dl class=\"facts\">\n");
    w!(
        out,
        "<dt>Decision</dt><dd><strong>{}</strong> &mdash; {} (right for this scenario: {})</dd>\n",
        esc(&r.decision),
        if r.decision_right {
            "<span class=\"ok\">right</span>"
        } else {
            "<span class=\"bad\">wrong</span>"
        },
        esc(&or_list(&r.decision_expected))
    );
    w!(
        out,
        "<dt>Failover run</dt><dd>{}</dd>\n",
        match &r.run_id {
            Some(id) => format!("<code>{}</code>", esc(id)),
            None => "none started".to_string(),
        }
    );
    w!(out, "<dt>drflow</dt><dd>{}</dd>\n", esc(&r.version));
    w!(
        out,
        "<dt>Simulated</dt><dd>{} s from the fault, in {} ms of wall time</dd>\n",
        num1(r.virtual_seconds),
        r.wall_ms
    );
    out.push_str("</dl>\n</header>\n");
}

fn verdict_sentence(r: &DrillReport) -> String {
    let mut why = Vec::new();
    if !r.decision_right {
        why.push(format!(
            "the decision was {}, not {}",
            r.decision,
            or_list(&r.decision_expected)
        ));
    }
    if let Some(rto) = r.rto_seconds
        && rto > r.objectives.rto_seconds
    {
        why.push(format!(
            "RTO {} s is over the objective {} s",
            num1(rto),
            num1(r.objectives.rto_seconds)
        ));
    }
    if r.rpo_seconds > r.objectives.rpo_seconds {
        why.push(format!(
            "RPO {} s is over the objective {} s",
            num1(r.rpo_seconds),
            num1(r.objectives.rpo_seconds)
        ));
    }
    if r.objectives_met && r.decision_right {
        "The decision was right and recovery met its objectives.".to_string()
    } else if why.is_empty() {
        "The drill did not meet its objectives.".to_string()
    } else {
        format!("Not met: {}.", why.join("; "))
    }
}

fn objectives(out: &mut String, r: &DrillReport) {
    out.push_str("<section id=\"objectives\">\n<h2>Objectives and measured values</h2>\n");
    out.push_str("<table>\n<thead><tr><th>Measure</th><th class=\"n\">Objective</th><th class=\"n\">Measured</th><th>Result</th><th>What it is</th></tr></thead>\n<tbody>\n");
    let rto_met = r.rto_seconds.is_none_or(|v| v <= r.objectives.rto_seconds);
    w!(
        out,
        "<tr id=\"rto\"><td>RTO</td><td class=\"n\">{} s</td><td class=\"n\">{}</td><td>{}</td><td>The client's first failed request to its first successful one after recovery, DNS TTL included.{}</td></tr>\n",
        num1(r.objectives.rto_seconds),
        opt_s(r.rto_seconds),
        met(rto_met),
        if r.rto_seconds.is_none() {
            " The client never failed."
        } else {
            ""
        }
    );
    let rpo_met = r.rpo_seconds <= r.objectives.rpo_seconds;
    w!(
        out,
        "<tr id=\"rpo\"><td>RPO</td><td class=\"n\">{} s</td><td class=\"n\">{} s</td><td>{}</td><td>The span of acknowledged writes the new writer does not have.</td></tr>\n",
        num1(r.objectives.rpo_seconds),
        num1(r.rpo_seconds),
        met(rpo_met)
    );
    w!(
        out,
        "<tr id=\"lost-writes\"><td>Lost writes</td><td class=\"n\">&mdash;</td><td class=\"n\">{}</td><td></td><td>Acknowledged writes the new writer does not have, of {} the client had acknowledged.</td></tr>\n",
        r.lost_writes,
        r.acked_writes
    );
    w!(
        out,
        "<tr id=\"critical-path-total\"><td>Critical path</td><td class=\"n\">&mdash;</td><td class=\"n\">{}</td><td></td><td>The fastest recovery AWS and the clients allow for this scenario with these settings (the stages below).{}</td></tr>\n",
        opt_s(r.critical_path_seconds),
        match (r.rto_seconds, r.critical_path_seconds) {
            (Some(rto), Some(cp)) =>
                format!(" Measured RTO minus critical path: {} s.", num1(rto - cp)),
            (_, None) => " No failover happened.".to_string(),
            _ => String::new(),
        }
    );
    w!(
        out,
        "<tr id=\"engine-share\"><td>Engine share</td><td class=\"n\">&mdash;</td><td class=\"n\">{}</td><td></td><td>drflow's own part of the recovery: deciding, dispatching, noticing that AWS finished.</td></tr>\n",
        opt_s(r.engine_seconds)
    );
    out.push_str("</tbody>\n</table>\n</section>\n");
}

fn met(ok: bool) -> &'static str {
    if ok {
        "<span class=\"ok\">met</span>"
    } else {
        "<span class=\"bad\">missed</span>"
    }
}

fn timeline_table(out: &mut String, timeline: &[TimelineEntry]) {
    out.push_str("<section id=\"timeline\">\n<h2>Timeline</h2>\n");
    if timeline.is_empty() {
        out.push_str("<p>Nothing was recorded.</p>\n</section>\n");
        return;
    }
    out.push_str("<table>\n<thead><tr><th class=\"n\">#</th><th class=\"n\">Seconds from the fault</th><th>Event</th><th>Detail</th></tr></thead>\n<tbody>\n");
    for (i, e) in timeline.iter().enumerate() {
        w!(
            out,
            "<tr><td class=\"n\">{}</td><td class=\"n\">{}</td><td><code>{}</code></td><td>{}</td></tr>\n",
            i + 1,
            num1(e.at_seconds),
            esc(&e.event),
            esc(&e.detail)
        );
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
}

fn evidence(out: &mut String, r: &DrillReport) {
    out.push_str("<section id=\"evidence\">\n<h2>The decision and its evidence</h2>\n");
    match &r.trigger {
        Some(t) => {
            w!(
                out,
                "<p>Trigger <code>{}</code> fired at {} s (require {}), on these signals:</p>\n",
                esc(&t.trigger),
                num1(t.at_seconds),
                esc(&t.require)
            );
            if t.signals.is_empty() {
                out.push_str("<p>(no signal was recorded)</p>\n");
            } else {
                out.push_str("<table>\n<thead><tr><th>Signal</th><th>Subject</th><th>State</th><th class=\"n\">State since (s)</th><th class=\"n\">Received (s)</th></tr></thead>\n<tbody>\n");
                for s in &t.signals {
                    w!(
                        out,
                        "<tr><td><code>{}</code></td><td><code>{}</code></td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>\n",
                        esc(&s.signal),
                        esc(&s.subject),
                        esc(&s.state),
                        num1(s.state_at_seconds),
                        num1(s.received_at_seconds)
                    );
                }
                out.push_str("</tbody>\n</table>\n");
            }
        }
        None => out.push_str("<p>No trigger fired, so no failover run started.</p>\n"),
    }
    let decisions: Vec<&TimelineEntry> = r
        .timeline
        .iter()
        .filter(|e| e.event == "decision")
        .collect();
    for d in &decisions {
        w!(
            out,
            "<p>The run decided at {} s: {}</p>\n",
            num1(d.at_seconds),
            esc(&d.detail)
        );
    }
    w!(
        out,
        "<p>Outcome: <strong>{}</strong>; right for <code>{}</code>: {}.</p>\n",
        esc(&r.decision),
        esc(&r.scenario),
        esc(&or_list(&r.decision_expected))
    );
    out.push_str("</section>\n");
}

fn critical_path_table(out: &mut String, r: &DrillReport) {
    out.push_str("<section id=\"critical-path\">\n<h2>Critical path</h2>\n");
    if r.critical_path.is_empty() {
        out.push_str("<p>No failover happened, so there is no critical path.</p>\n</section>\n");
        return;
    }
    out.push_str("<table>\n<thead><tr><th>Stage</th><th class=\"n\">Seconds</th><th>Where the figure comes from</th></tr></thead>\n<tbody>\n");
    for s in &r.critical_path {
        w!(
            out,
            "<tr><td>{}</td><td class=\"n\">{}</td><td>{}</td></tr>\n",
            esc(&s.name),
            num1(s.seconds),
            esc(&s.source)
        );
    }
    w!(
        out,
        "<tr><th>Total</th><th class=\"n\">{}</th><th></th></tr>\n",
        opt_num(r.critical_path_seconds)
    );
    out.push_str("</tbody>\n</table>\n</section>\n");
}

fn steps_table(out: &mut String, steps: &[StepTiming]) {
    out.push_str("<section id=\"steps\">\n<h2>Failover steps</h2>\n");
    if steps.is_empty() {
        out.push_str("<p>No failover run, so no steps.</p>\n</section>\n");
        return;
    }
    out.push_str("<table>\n<thead><tr><th>Step</th><th>Type</th><th>Status</th><th class=\"n\">Start (s)</th><th class=\"n\">End (s)</th><th class=\"n\">Took (s)</th></tr></thead>\n<tbody>\n");
    for s in steps {
        w!(
            out,
            "<tr><td><code>{}</code></td><td><code>{}</code></td><td{}>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>\n",
            esc(&s.id),
            esc(&s.step_type),
            if s.status == "failed" {
                " class=\"bad\""
            } else {
                ""
            },
            esc(&s.status),
            num1(s.start_seconds),
            num1(s.end_seconds),
            num1(s.end_seconds - s.start_seconds)
        );
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
}

fn params_table(out: &mut String, r: &DrillReport) {
    out.push_str("<section id=\"params\">\n<h2>Parameters and version</h2>\n");
    w!(
        out,
        "<p>drflow {}. Objectives: RTO {} s, RPO {} s.</p>\n",
        esc(&r.version),
        num1(r.objectives.rto_seconds),
        num1(r.objectives.rpo_seconds)
    );
    let mut rows = Vec::new();
    flatten(&r.params, String::new(), &mut rows);
    if rows.is_empty() {
        out.push_str("<p>No parameters.</p>\n</section>\n");
        return;
    }
    out.push_str("<table>\n<thead><tr><th>Parameter</th><th>Value</th></tr></thead>\n<tbody>\n");
    for (k, v) in rows {
        w!(
            out,
            "<tr><td><code>{}</code></td><td><code>{}</code></td></tr>\n",
            esc(&k),
            esc(&v)
        );
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
}

/// Objects become dotted paths; every other value is one row (strings as they are, the rest
/// as JSON). Key order is the document's, so the rows are deterministic.
fn flatten(v: &Value, path: String, rows: &mut Vec<(String, String)>) {
    match v {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                flatten(v, p, rows);
            }
        }
        Value::Null if path.is_empty() => {}
        Value::String(s) => rows.push((path, s.clone())),
        other => rows.push((
            if path.is_empty() {
                "(params)".to_string()
            } else {
                path
            },
            other.to_string(),
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// The chart
// ---------------------------------------------------------------------------------------------

/// Chart geometry, in SVG user units (pixels at 1000 px wide).
const WIDTH: f64 = 1000.0;
const LEFT: f64 = 150.0;
const RIGHT: f64 = 24.0;
const LABEL_ROW: f64 = 15.0;
const LABEL_FONT: f64 = 11.0;
/// Width of one character of an 11 px sans-serif label, generously: labels are placed on
/// estimates (there is no text measuring without a browser), so the estimate errs wide.
const CHAR_W: f64 = 6.4;

/// Maps seconds to x.
struct Scale {
    t0: f64,
    t1: f64,
}

impl Scale {
    fn x(&self, t: f64) -> f64 {
        LEFT + (t - self.t0) / (self.t1 - self.t0) * (WIDTH - LEFT - RIGHT)
    }
    fn px_per_s(&self) -> f64 {
        (WIDTH - LEFT - RIGHT) / (self.t1 - self.t0)
    }
}

fn chart_section(out: &mut String, r: &DrillReport) {
    out.push_str("<section id=\"chart\">\n<h2>Timeline chart</h2>\n<figure>\n");
    chart(out, r);
    out.push_str("<figcaption>Seconds from the fault. Top: the timeline's events. Then every request of the synthetic client (red: failed; otherwise the colour of the region that served it; the thin band under it is the region DNS sent it to), the measured RTO against the objective, the failover run's steps, and the critical path AWS allows.</figcaption>\n</figure>\n</section>\n");
}

/// The regions the client reached, in order of first appearance, with their colours.
fn region_colours(client: &[ClientSample]) -> Vec<(String, &'static str)> {
    let mut regions: Vec<(String, &'static str)> = Vec::new();
    for c in client {
        if let Some(r) = &c.region
            && !regions.iter().any(|(n, _)| n == r)
        {
            let colour = REGION_COLOURS[regions.len() % REGION_COLOURS.len()];
            regions.push((r.clone(), colour));
        }
    }
    regions
}

fn stage_colour(
    name: &str,
    spare: &mut usize,
    used: &mut Vec<(String, &'static str)>,
) -> &'static str {
    if let Some((_, c)) = used.iter().find(|(n, _)| n == name) {
        return c;
    }
    let c = match STAGE_COLOURS.iter().find(|(n, _)| *n == name) {
        Some((_, c)) => c,
        None => {
            let c = SPARE_STAGE_COLOURS[*spare % SPARE_STAGE_COLOURS.len()];
            *spare += 1;
            c
        }
    };
    used.push((name.to_string(), c));
    c
}

/// A readable name for a timeline event in the chart's labels.
fn event_label(event: &str) -> String {
    match event {
        "fault" => "fault".into(),
        "first_failed_request" => "first failed request".into(),
        "first_failed_health_check" => "first failed check".into(),
        "health_check_unhealthy" => "check unhealthy".into(),
        "alarm" => "alarm".into(),
        "trigger" => "trigger".into(),
        "run_started" => "run started".into(),
        "decision" => "decision".into(),
        "fence" => "fence".into(),
        "promotion_done" => "promoted".into(),
        "capacity_ready" => "capacity ready".into(),
        "dns_changed" => "DNS changed".into(),
        "first_standby_success" => "standby serves".into(),
        "recovered" => "recovered".into(),
        "fault_healed" => "fault healed".into(),
        other => other.replace('_', " "),
    }
}

fn event_colour(event: &str) -> &'static str {
    match event {
        "fault" | "first_failed_request" => FAILED,
        "first_standby_success" | "recovered" | "fault_healed" => "#276749",
        "trigger" | "run_started" | "decision" => "#2c5282",
        _ => "#4a5568",
    }
}

fn chart(out: &mut String, r: &DrillReport) {
    // The time span: everything drawn, the fault (0) and the RTO objective's deadline.
    let mut lo = 0.0_f64;
    let mut hi = 0.0_f64;
    let mut span = |t: f64| {
        if t.is_finite() {
            lo = lo.min(t);
            hi = hi.max(t);
        }
    };
    r.timeline.iter().for_each(|e| span(e.at_seconds));
    r.client.iter().for_each(|c| span(c.at_seconds + 1.0));
    r.client.iter().for_each(|c| span(c.at_seconds));
    for s in &r.steps {
        span(s.start_seconds);
        span(s.end_seconds);
    }
    span(r.critical_path.iter().map(|s| fin(s.seconds)).sum::<f64>());
    let first_failure = first_failure(r);
    if let (Some(f), Some(rto)) = (first_failure, r.rto_seconds) {
        span(f + rto);
        span(f + r.objectives.rto_seconds);
    }
    // The plot spans exactly what is drawn, with a little room at either end; ticks fall on
    // round seconds inside it.
    let pad = ((hi - lo) * 0.01).max(0.5);
    let scale = Scale {
        t0: lo - pad,
        t1: hi + pad,
    };
    let step = tick_step(scale.t1 - scale.t0);
    let ticks: Vec<f64> = {
        let first = (scale.t0 / step).ceil() as i64;
        let last = (scale.t1 / step).floor() as i64;
        (first..=last).map(|i| i as f64 * step).collect()
    };

    // Event labels, greedily on rows so that none overlaps another.
    struct Placed<'a> {
        e: &'a TimelineEntry,
        x: f64,
        row: usize,
        anchor_end: bool,
        label: String,
    }
    let mut row_ends: Vec<f64> = Vec::new();
    let mut placed: Vec<Placed> = Vec::new();
    // Each label starts with the event's number in the timeline table, which ties the two
    // together on paper (several events can share a name: alarms).
    let mut events: Vec<(usize, &TimelineEntry)> = r
        .timeline
        .iter()
        .enumerate()
        .filter(|(_, e)| e.at_seconds.is_finite())
        .collect();
    // Stable: equal times keep the report's order.
    events.sort_by(|a, b| a.1.at_seconds.total_cmp(&b.1.at_seconds));
    for (i, e) in events {
        let x = scale.x(e.at_seconds);
        let label = format!("{} {}", i + 1, event_label(&e.event));
        let w = label.chars().count() as f64 * CHAR_W + 4.0;
        let anchor_end = x + w > WIDTH - 2.0;
        let (start, end) = if anchor_end {
            (x - w, x)
        } else {
            (x - 2.0, x + w)
        };
        let row = match row_ends.iter().position(|&end_at| end_at + 6.0 <= start) {
            Some(i) => i,
            None => {
                row_ends.push(f64::NEG_INFINITY);
                row_ends.len() - 1
            }
        };
        row_ends[row] = end;
        placed.push(Placed {
            e,
            x,
            row,
            anchor_end,
            label,
        });
    }
    let label_top = 8.0;
    let lanes_top = label_top + row_ends.len() as f64 * LABEL_ROW + 8.0;

    // Lanes, top to bottom.
    let client_y = lanes_top + 6.0;
    let client_h = 26.0;
    let rto_y = client_y + client_h + 8.0;
    let rto_h = if r.rto_seconds.is_some() && first_failure.is_some() {
        24.0
    } else {
        0.0
    };
    let steps_y = rto_y + rto_h + 10.0;
    let step_row = 14.0;
    let steps_h = if r.steps.is_empty() {
        18.0
    } else {
        r.steps.len() as f64 * step_row
    };
    let cp_y = steps_y + steps_h + 12.0;
    let cp_h = 22.0;
    let axis_y = cp_y + cp_h + 10.0;
    let legend_y = axis_y + 40.0;

    let regions = region_colours(&r.client);
    let mut stage_used = Vec::new();
    let mut spare = 0;
    for s in &r.critical_path {
        stage_colour(&s.name, &mut spare, &mut stage_used);
    }
    let legend = legend_items(r, &regions, &stage_used);
    let legend_rows = layout_legend(&legend);
    let height = legend_y + legend_rows.len() as f64 * 18.0 + 6.0;

    w!(
        out,
        "<svg id=\"timeline-chart\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {} {}\" width=\"{}\" height=\"{}\" role=\"img\" aria-labelledby=\"chart-title\" font-family=\"system-ui, sans-serif\" font-size=\"11\">\n",
        num1(WIDTH),
        num1(height),
        num1(WIDTH),
        num1(height)
    );
    w!(
        out,
        "<title id=\"chart-title\">Drill {}: timeline from {} s to {} s after the fault</title>\n",
        esc(&r.scenario),
        num1(scale.t0),
        num1(scale.t1)
    );
    w!(
        out,
        "<rect x=\"0\" y=\"0\" width=\"{}\" height=\"{}\" fill=\"#ffffff\"/>\n",
        num1(WIDTH),
        num1(height)
    );

    // Grid and axis.
    out.push_str("<g class=\"axis\" stroke=\"#e2e8f0\" stroke-width=\"1\">\n");
    for &t in &ticks {
        let x = scale.x(t);
        w!(
            out,
            "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\"/>\n",
            num1(x),
            num1(lanes_top),
            num1(x),
            num1(axis_y)
        );
    }
    out.push_str("</g>\n");
    w!(
        out,
        "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#4a5568\" stroke-width=\"1\"/>\n",
        num1(LEFT),
        num1(axis_y),
        num1(WIDTH - RIGHT),
        num1(axis_y)
    );
    out.push_str("<g class=\"ticks\" fill=\"#2d3748\" text-anchor=\"middle\">\n");
    for &t in &ticks {
        let x = scale.x(t);
        w!(
            out,
            "<line x1=\"{x}\" y1=\"{y0}\" x2=\"{x}\" y2=\"{y1}\" stroke=\"#4a5568\"/><text x=\"{x}\" y=\"{ty}\">{label}</text>\n",
            x = num1(x),
            y0 = num1(axis_y),
            y1 = num1(axis_y + 4.0),
            ty = num1(axis_y + 16.0),
            label = num0(t)
        );
    }
    out.push_str("</g>\n");
    w!(
        out,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#2d3748\">seconds from the fault</text>\n",
        num1(LEFT + (WIDTH - LEFT - RIGHT) / 2.0),
        num1(axis_y + 31.0)
    );

    // Lane titles.
    out.push_str("<g class=\"lane-titles\" fill=\"#1a202c\" font-weight=\"600\">\n");
    let title = |out: &mut String, y: f64, text: &str| {
        w!(
            out,
            "<text x=\"8\" y=\"{}\">{}</text>\n",
            num1(y),
            esc(text)
        )
    };
    title(out, client_y + 17.0, "Client requests");
    if rto_h > 0.0 {
        title(out, rto_y + 15.0, "RTO");
    }
    title(out, steps_y + 11.0, "Failover steps");
    title(out, cp_y + 15.0, "Critical path");
    out.push_str("</g>\n");

    // Event markers, behind the lanes, so that the bars stay whole and the lines show
    // between them.
    out.push_str("<g id=\"events\">\n");
    for p in &placed {
        let ly = label_top + p.row as f64 * LABEL_ROW + LABEL_FONT;
        w!(
            out,
            "<line class=\"event\" data-event=\"{ev}\" x1=\"{x}\" y1=\"{y0}\" x2=\"{x}\" y2=\"{y1}\" stroke=\"{c}\" stroke-width=\"1\" stroke-dasharray=\"3 3\" opacity=\"0.8\"><title>{t} s: {ev}: {detail}</title></line>\n",
            ev = esc(&p.e.event),
            t = num1(p.e.at_seconds),
            detail = esc(&p.e.detail),
            x = num1(p.x),
            y0 = num1(ly + 3.0),
            y1 = num1(axis_y),
            c = event_colour(&p.e.event),
        );
    }
    out.push_str("</g>\n");

    // Client requests: one mark per request, as wide as the gap to the next one.
    w!(
        out,
        "<g id=\"client-requests\" shape-rendering=\"crispEdges\">\n"
    );
    if r.client.is_empty() {
        w!(
            out,
            "<text x=\"{}\" y=\"{}\" fill=\"#4a5568\" paint-order=\"stroke\" stroke=\"#ffffff\" stroke-width=\"4\">no client requests recorded</text>\n",
            num1(LEFT + 4.0),
            num1(client_y + 17.0)
        );
    }
    let mut samples: Vec<&ClientSample> = r
        .client
        .iter()
        .filter(|c| c.at_seconds.is_finite())
        .collect();
    samples.sort_by(|a, b| a.at_seconds.total_cmp(&b.at_seconds));
    for (i, c) in samples.iter().enumerate() {
        let gap = samples
            .get(i + 1)
            .map(|n| n.at_seconds - c.at_seconds)
            .filter(|g| *g > 0.0)
            .unwrap_or(1.0)
            .min(5.0);
        let x = scale.x(c.at_seconds);
        // A hair wider than the gap, so that rounding to whole pixels leaves no seam.
        let wdt = (gap * scale.px_per_s()).max(1.0) + 0.4;
        let region_colour = c
            .region
            .as_ref()
            .and_then(|r| regions.iter().find(|(n, _)| n == r))
            .map_or(NO_REGION, |(_, c)| *c);
        let fill = if c.ok { region_colour } else { FAILED };
        w!(
            out,
            "<rect class=\"{}\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"18\" fill=\"{}\"><title>{} s: {} ({})</title></rect><rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"5\" fill=\"{}\"/>\n",
            if c.ok { "req ok" } else { "req failed" },
            num2(x),
            num1(client_y),
            num2(wdt),
            fill,
            num1(c.at_seconds),
            if c.ok { "acknowledged" } else { "failed" },
            esc(c.region.as_deref().unwrap_or("no region")),
            num2(x),
            num1(client_y + 20.0),
            num2(wdt),
            region_colour
        );
    }
    out.push_str("</g>\n");

    // Measured RTO against the objective.
    if let (Some(f), Some(rto), true) = (first_failure, r.rto_seconds, rto_h > 0.0) {
        let x0 = scale.x(f);
        let x1 = scale.x(f + rto);
        let xo = scale.x(f + r.objectives.rto_seconds);
        let y = rto_y + 11.0;
        let colour = if rto <= r.objectives.rto_seconds {
            "#1a202c"
        } else {
            FAILED
        };
        w!(
            out,
            "<g id=\"rto-bar\" stroke=\"{c}\" stroke-width=\"2\"><line x1=\"{x0}\" y1=\"{y}\" x2=\"{x1}\" y2=\"{y}\"/><line x1=\"{x0}\" y1=\"{ya}\" x2=\"{x0}\" y2=\"{yb}\"/><line x1=\"{x1}\" y1=\"{ya}\" x2=\"{x1}\" y2=\"{yb}\"/></g>\n",
            c = colour,
            x0 = num1(x0),
            x1 = num1(x1),
            y = num1(y),
            ya = num1(y - 6.0),
            yb = num1(y + 6.0)
        );
        let text = format!("measured RTO {} s", num1(rto));
        let tw = text.len() as f64 * CHAR_W;
        let (tx, anchor) = if x1 - x0 > tw + 8.0 {
            ((x0 + x1) / 2.0, "middle")
        } else {
            (x1 + 4.0, "start")
        };
        w!(
            out,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"{}\" fill=\"{}\" paint-order=\"stroke\" stroke=\"#ffffff\" stroke-width=\"4\">{}</text>\n",
            num1(tx),
            num1(y - 3.0),
            anchor,
            colour,
            esc(&text)
        );
        w!(
            out,
            "<g id=\"rto-objective\"><line x1=\"{x}\" y1=\"{ya}\" x2=\"{x}\" y2=\"{yb}\" stroke=\"#c05621\" stroke-width=\"2\" stroke-dasharray=\"4 2\"/><text x=\"{tx}\" y=\"{ty}\" text-anchor=\"end\" fill=\"#c05621\">objective {o} s</text></g>\n",
            x = num1(xo),
            ya = num1(rto_y),
            yb = num1(rto_y + rto_h),
            tx = num1(xo - 4.0),
            ty = num1(rto_y + 21.0),
            o = num1(r.objectives.rto_seconds)
        );
    }

    // Failover steps as a Gantt chart.
    out.push_str("<g id=\"steps-gantt\">\n");
    if r.steps.is_empty() {
        w!(
            out,
            "<text x=\"{}\" y=\"{}\" fill=\"#4a5568\" paint-order=\"stroke\" stroke=\"#ffffff\" stroke-width=\"4\">no failover run</text>\n",
            num1(LEFT + 4.0),
            num1(steps_y + 12.0)
        );
    }
    for (i, s) in r.steps.iter().enumerate() {
        let y = steps_y + i as f64 * step_row;
        let (a, b) = (
            fin(s.start_seconds),
            fin(s.end_seconds).max(fin(s.start_seconds)),
        );
        let x0 = scale.x(a);
        let wdt = (scale.x(b) - x0).max(2.0);
        w!(
            out,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" fill=\"#2d3748\" font-size=\"10\">{}</text>\n",
            num1(LEFT - 6.0),
            num1(y + 10.0),
            esc(&truncate(&s.id, 22))
        );
        let (fill, extra) = match s.status.as_str() {
            "succeeded" => (STEP_SUCCEEDED, ""),
            "failed" => (FAILED, ""),
            "skipped" => ("#ffffff", " stroke=\"#a0aec0\" stroke-dasharray=\"2 1\""),
            _ => (STEP_OTHER, ""),
        };
        w!(
            out,
            "<rect class=\"step {}\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"10\" fill=\"{}\"{}><title>{} ({}): {}, {} s to {} s</title></rect>\n",
            esc(&s.status),
            num2(x0),
            num1(y + 2.0),
            num2(wdt),
            fill,
            extra,
            esc(&s.id),
            esc(&s.step_type),
            esc(&s.status),
            num1(s.start_seconds),
            num1(s.end_seconds)
        );
        // Long steps say how long they took, beside their bar.
        if b - a >= 5.0 {
            w!(
                out,
                "<text x=\"{}\" y=\"{}\" fill=\"#2d3748\" font-size=\"10\">{} s</text>\n",
                num1(x0 + wdt + 4.0),
                num1(y + 10.0),
                num1(b - a)
            );
        }
    }
    out.push_str("</g>\n");

    // The critical path as one stacked bar from the fault.
    out.push_str("<g id=\"critical-path-bar\" shape-rendering=\"crispEdges\">\n");
    if r.critical_path.is_empty() {
        w!(
            out,
            "<text x=\"{}\" y=\"{}\" fill=\"#4a5568\" paint-order=\"stroke\" stroke=\"#ffffff\" stroke-width=\"4\">no failover, no critical path</text>\n",
            num1(LEFT + 4.0),
            num1(cp_y + 15.0)
        );
    }
    let mut at = 0.0;
    let mut spare = 0;
    let mut used = Vec::new();
    for s in &r.critical_path {
        let secs = fin(s.seconds).max(0.0);
        let x0 = scale.x(at);
        let x1 = scale.x(at + secs);
        let colour = stage_colour(&s.name, &mut spare, &mut used);
        w!(
            out,
            "<rect class=\"stage\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\"><title>{}: {} s</title></rect>\n",
            num2(x0),
            num1(cp_y),
            num2((x1 - x0).max(1.0)),
            num1(cp_h),
            colour,
            esc(&s.name),
            num1(s.seconds)
        );
        let text = format!("{} {} s", s.name, num0(secs));
        if x1 - x0 > text.chars().count() as f64 * CHAR_W + 6.0 {
            w!(
                out,
                "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#ffffff\">{}</text>\n",
                num1((x0 + x1) / 2.0),
                num1(cp_y + 15.0),
                esc(&text)
            );
        }
        at += secs;
    }
    if let Some(total) = r
        .critical_path_seconds
        .filter(|_| !r.critical_path.is_empty())
    {
        w!(
            out,
            "<text x=\"{}\" y=\"{}\" fill=\"#1a202c\">{} s</text>\n",
            num1(scale.x(at) + 4.0),
            num1(cp_y + 15.0),
            num1(total)
        );
    }
    out.push_str("</g>\n");

    // The events' labels on a white halo, drawn last so that they sit on top.
    out.push_str("<g id=\"event-labels\">\n");
    for p in &placed {
        let ly = label_top + p.row as f64 * LABEL_ROW + LABEL_FONT;
        w!(
            out,
            "<text class=\"event-label\" x=\"{tx}\" y=\"{ly}\" text-anchor=\"{anchor}\" fill=\"{c}\" paint-order=\"stroke\" stroke=\"#ffffff\" stroke-width=\"3\">{label}</text>\n",
            c = event_colour(&p.e.event),
            tx = num1(if p.anchor_end { p.x - 2.0 } else { p.x + 2.0 }),
            ly = num1(ly),
            anchor = if p.anchor_end { "end" } else { "start" },
            label = esc(&p.label)
        );
    }
    out.push_str("</g>\n");

    // Legend.
    out.push_str("<g id=\"legend\">\n");
    for (row, items) in legend_rows.iter().enumerate() {
        let y = legend_y + row as f64 * 18.0;
        let mut x = LEFT;
        for &i in items {
            let item = &legend[i];
            w!(
                out,
                "<rect x=\"{}\" y=\"{}\" width=\"14\" height=\"10\" fill=\"{}\"{}/><text x=\"{}\" y=\"{}\" fill=\"#1a202c\">{}</text>\n",
                num1(x),
                num1(y),
                item.colour,
                if item.outlined {
                    " stroke=\"#a0aec0\" stroke-dasharray=\"2 1\""
                } else {
                    ""
                },
                num1(x + 18.0),
                num1(y + 9.0),
                esc(&item.text)
            );
            x += item.width();
        }
    }
    out.push_str("</g>\n</svg>\n");
}

struct LegendItem {
    colour: &'static str,
    text: String,
    outlined: bool,
}

impl LegendItem {
    fn width(&self) -> f64 {
        18.0 + self.text.chars().count() as f64 * CHAR_W + 16.0
    }
}

fn legend_items(
    r: &DrillReport,
    regions: &[(String, &'static str)],
    stages: &[(String, &'static str)],
) -> Vec<LegendItem> {
    let mut items = Vec::new();
    let item = |colour, text: String| LegendItem {
        colour,
        text,
        outlined: false,
    };
    for (name, colour) in regions {
        items.push(item(colour, format!("acknowledged by {name}")));
    }
    if r.client.iter().any(|c| !c.ok) || r.client.is_empty() {
        items.push(item(FAILED, "request failed".into()));
    }
    if r.client.iter().any(|c| c.region.is_none()) {
        items.push(item(NO_REGION, "no DNS answer".into()));
    }
    let statuses: Vec<&str> = ["succeeded", "failed", "skipped"]
        .into_iter()
        .filter(|s| r.steps.iter().any(|st| st.status == *s))
        .collect();
    for s in statuses {
        items.push(LegendItem {
            colour: match s {
                "succeeded" => STEP_SUCCEEDED,
                "failed" => FAILED,
                _ => "#ffffff",
            },
            text: format!("step {s}"),
            outlined: s == "skipped",
        });
    }
    if r.steps
        .iter()
        .any(|st| !matches!(st.status.as_str(), "succeeded" | "failed" | "skipped"))
    {
        items.push(item(STEP_OTHER, "step, other status".into()));
    }
    for (name, colour) in stages {
        items.push(item(colour, format!("stage: {name}")));
    }
    items
}

/// Rows of legend items that fit the plot's width.
fn layout_legend(items: &[LegendItem]) -> Vec<Vec<usize>> {
    let mut rows: Vec<Vec<usize>> = Vec::new();
    let mut x = LEFT;
    for (i, item) in items.iter().enumerate() {
        if rows.is_empty() || (x + item.width() > WIDTH && x > LEFT) {
            rows.push(Vec::new());
            x = LEFT;
        }
        rows.last_mut().expect("pushed above").push(i);
        x += item.width();
    }
    rows
}

/// When the client first failed: the `first_failed_request` event, else its first failed
/// request.
fn first_failure(r: &DrillReport) -> Option<f64> {
    r.timeline
        .iter()
        .find(|e| e.event == "first_failed_request")
        .map(|e| e.at_seconds)
        .or_else(|| r.client.iter().find(|c| !c.ok).map(|c| c.at_seconds))
        .filter(|t| t.is_finite())
}

/// A round tick step giving about eight to twelve ticks over `span` seconds.
fn tick_step(span: f64) -> f64 {
    const STEPS: [f64; 14] = [
        1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0,
    ];
    let want = span.max(1.0) / 10.0;
    STEPS
        .iter()
        .copied()
        .find(|s| *s >= want)
        .unwrap_or_else(|| (want / 3600.0).ceil() * 3600.0)
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

/// "a", "a or b", "a, b or c"; "nothing" for none.
fn or_list(items: &[String]) -> String {
    match items {
        [] => "nothing".to_string(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {}", init.join(", "), last),
    }
}

/// Escapes text for HTML element content and quoted attribute values alike.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A finite number, or 0 (a report built in code could hold NaN; the page must stay valid).
fn fin(x: f64) -> f64 {
    if x.is_finite() { x } else { 0.0 }
}

/// Fixed-precision numbers; -0 prints as 0 so that equal reports print equal bytes.
fn fixed(x: f64, places: usize) -> String {
    let s = format!("{:.*}", places, fin(x));
    if s.starts_with('-') && s[1..].chars().all(|c| c == '0' || c == '.') {
        s[1..].to_string()
    } else {
        s
    }
}

fn num0(x: f64) -> String {
    fixed(x, 0)
}

fn num1(x: f64) -> String {
    fixed(x, 1)
}

fn num2(x: f64) -> String {
    fixed(x, 2)
}

fn opt_num(x: Option<f64>) -> String {
    x.map_or_else(|| "&mdash;".to_string(), num1)
}

fn opt_s(x: Option<f64>) -> String {
    x.map_or_else(|| "&mdash;".to_string(), |v| format!("{} s", num1(v)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drill::model::{Objectives, SignalEvidence, Stage};

    fn fixture(name: &str) -> DrillReport {
        let text = match name {
            "region-outage" => include_str!("../../tests/fixtures/drill/region-outage.json"),
            "no-failover" => include_str!("../../tests/fixtures/drill/no-failover.json"),
            other => panic!("no fixture {other}"),
        };
        serde_json::from_str(text).expect("the fixture is a DrillReport")
    }

    /// A report with nothing in it: no client, no run, no timeline.
    fn empty() -> DrillReport {
        DrillReport {
            scenario: "partition".into(),
            description: "Nothing happens.".into(),
            decision: "none".into(),
            decision_expected: vec!["none".into(), "hold".into()],
            decision_right: true,
            rto_seconds: None,
            critical_path_seconds: None,
            engine_seconds: None,
            critical_path: vec![],
            engine: vec![],
            rpo_seconds: 0.0,
            lost_writes: 0,
            acked_writes: 0,
            objectives: Objectives {
                rto_seconds: 300.0,
                rpo_seconds: 60.0,
            },
            objectives_met: true,
            timeline: vec![],
            trigger: None,
            steps: vec![],
            client: vec![],
            run_id: None,
            params: Value::Null,
            version: "0.1.0".into(),
            wall_ms: 0,
            virtual_seconds: 0.0,
        }
    }

    #[test]
    fn every_string_from_the_report_is_escaped() {
        const HOSTILE: &str = "<script>alert('x')</script>\"&";
        const ESCAPED: &str = "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&quot;&amp;";
        let mut r = fixture("region-outage");
        r.scenario = HOSTILE.into();
        r.description = HOSTILE.into();
        r.decision = HOSTILE.into();
        r.decision_expected = vec![HOSTILE.into()];
        r.run_id = Some(HOSTILE.into());
        r.version = HOSTILE.into();
        r.timeline[0].event = HOSTILE.into();
        r.timeline[1].detail = HOSTILE.into();
        r.critical_path[0].name = HOSTILE.into();
        r.critical_path[1].source = HOSTILE.into();
        r.steps[0].id = HOSTILE.into();
        r.steps[1].step_type = HOSTILE.into();
        r.steps[2].status = HOSTILE.into();
        r.client[0].region = Some(HOSTILE.into());
        let t = r.trigger.as_mut().unwrap();
        t.trigger = HOSTILE.into();
        t.require = HOSTILE.into();
        t.signals[0].signal = HOSTILE.into();
        t.signals[0].subject = HOSTILE.into();
        t.signals[1].state = HOSTILE.into();
        r.params = serde_json::json!({ HOSTILE: HOSTILE, "nested": { HOSTILE: [HOSTILE] } });
        let page = render(&r);
        assert!(!page.contains("<script"), "a raw <script> in the page");
        assert!(!page.contains("alert('x')"), "an unescaped quote");
        // Every field above shows, escaped (the step id is shortened in the chart, whole in
        // the table).
        let shown = page.matches(ESCAPED).count();
        assert!(shown >= 20, "only {shown} escaped copies");
        assert!(
            page.contains("<code>nested.&lt;script&gt;"),
            "params key path"
        );
    }

    #[test]
    fn the_same_report_renders_the_same_bytes() {
        for name in ["region-outage", "no-failover"] {
            let r = fixture(name);
            let again: DrillReport =
                serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
            assert_eq!(render(&r), render(&again), "{name}");
        }
    }

    #[test]
    fn every_figure_and_every_event_is_on_the_page() {
        let r = fixture("region-outage");
        let page = render(&r);
        for figure in [
            "<td class=\"n\">226.0 s</td>", // RTO
            "<td class=\"n\">300.0 s</td>", // its objective
            "<td class=\"n\">3.0 s</td>",   // RPO
            "<td class=\"n\">60.0 s</td>",  // its objective
            "<td class=\"n\">3</td>",       // lost writes
            "of 54 the client had acknowledged",
            "<td class=\"n\">225.8 s</td>", // critical path
            "<td class=\"n\">0.6 s</td>",   // engine share
            "minus critical path: 0.2 s",
            "measured RTO 226.0 s",
            "PASS",
        ] {
            assert!(page.contains(figure), "{figure} missing");
        }
        for (i, e) in r.timeline.iter().enumerate() {
            let row = format!(
                "<tr><td class=\"n\">{}</td><td class=\"n\">{}</td><td><code>{}</code></td><td>{}</td></tr>",
                i + 1,
                num1(e.at_seconds),
                esc(&e.event),
                esc(&e.detail)
            );
            assert!(page.contains(&row), "timeline row {row} missing");
            assert!(
                page.contains(&format!("data-event=\"{}\"", e.event)),
                "chart marker for {} missing",
                e.event
            );
        }
        assert_eq!(
            page.matches("<line class=\"event\"").count(),
            r.timeline.len(),
            "one marker per event"
        );
        for s in &r.steps {
            assert!(page.contains(&format!(
                "<td><code>{}</code></td><td><code>{}</code></td><td>{}</td>",
                s.id, s.step_type, s.status
            )));
        }
        for s in &r.critical_path {
            assert!(page.contains(&format!(
                "<tr><td>{}</td><td class=\"n\">{}</td>",
                s.name,
                num1(s.seconds)
            )));
        }
        for s in &r.trigger.as_ref().unwrap().signals {
            assert!(page.contains(&s.signal) && page.contains(&s.subject));
        }
        assert!(page.contains("<code>runbook.max_data_loss</code></td><td><code>60s</code>"));
        assert!(page.contains("<code>runbook.signals</code></td><td><code>[&quot;health_check&quot;,&quot;alarms&quot;,&quot;probe&quot;]</code>"));
        assert_eq!(page.matches("class=\"req ").count(), r.client.len());
        assert_eq!(
            page.matches("class=\"req failed\"").count(),
            r.client.iter().filter(|c| !c.ok).count()
        );
    }

    #[test]
    fn missed_objectives_and_a_wrong_decision_fail_the_page() {
        let mut r = fixture("region-outage");
        r.rto_seconds = Some(412.5);
        r.rpo_seconds = 75.0;
        r.decision = "hold".into();
        r.decision_right = false;
        r.objectives_met = false;
        let page = render(&r);
        assert!(page.contains(">FAIL</span>"));
        assert!(page.contains("<title>drflow drill: region-outage (fail)</title>"));
        assert_eq!(page.matches("<span class=\"bad\">missed</span>").count(), 2);
        assert!(page.contains("<span class=\"bad\">wrong</span>"));
        assert!(page.contains("the decision was hold, not failover; RTO 412.5 s is over the objective 300.0 s; RPO 75.0 s is over the objective 60.0 s"));
    }

    #[test]
    fn a_drill_without_a_failover_run_has_no_steps_and_no_critical_path() {
        let mut r = fixture("no-failover");
        r.steps.clear();
        r.trigger = None;
        r.run_id = None;
        r.decision = "none".into();
        let page = render(&r);
        assert!(page.contains("No failover run, so no steps."));
        assert!(page.contains(">no failover run</text>"));
        assert!(page.contains("No failover happened, so there is no critical path."));
        assert!(page.contains(">no failover, no critical path</text>"));
        assert!(page.contains("No trigger fired, so no failover run started."));
        assert!(!page.contains("class=\"step "));
        assert!(!page.contains("class=\"stage\""));
        // The client's failures are still drawn.
        assert!(page.contains("class=\"req failed\""));
        assert!(page.contains("measured RTO 20.0 s"));
    }

    #[test]
    fn a_client_that_never_failed_has_no_rto() {
        let mut r = fixture("no-failover");
        r.rto_seconds = None;
        r.timeline.retain(|e| e.event != "first_failed_request");
        r.client.iter_mut().for_each(|c| c.ok = true);
        let page = render(&r);
        assert!(page.contains("The client never failed."));
        assert!(page.contains("<td class=\"n\">&mdash;</td><td><span class=\"ok\">met</span>"));
        assert!(!page.contains("rto-bar"));
        assert!(!page.contains("class=\"req failed\""));
        assert!(!page.contains("request failed"), "legend for absent marks");
    }

    #[test]
    fn an_empty_report_still_renders_a_whole_page() {
        let page = render(&empty());
        assert!(page.starts_with("<!DOCTYPE html>\n"));
        assert!(page.ends_with("</html>\n"));
        assert!(page.contains("</svg>"));
        assert!(page.contains("Nothing was recorded."));
        assert!(page.contains("No parameters."));
        assert!(page.contains(">no client requests recorded</text>"));
    }

    #[test]
    fn numbers_that_are_not_finite_do_not_reach_the_page() {
        let mut r = fixture("region-outage");
        r.rto_seconds = Some(f64::NAN);
        r.timeline[3].at_seconds = f64::INFINITY;
        r.steps[0].end_seconds = f64::NEG_INFINITY;
        r.client[5].at_seconds = f64::NAN;
        r.critical_path[0].seconds = f64::NAN;
        r.critical_path.push(Stage {
            name: "extra".into(),
            seconds: -0.0,
            source: "test".into(),
        });
        r.trigger.as_mut().unwrap().signals.push(SignalEvidence {
            signal: "s".into(),
            subject: "a".into(),
            state: "ALARM".into(),
            state_at_seconds: f64::NAN,
            received_at_seconds: -0.0,
        });
        let page = render(&r);
        for bad in ["NaN", "inf", "-0.0"] {
            assert!(!page.contains(bad), "{bad} on the page");
        }
    }

    #[test]
    fn tick_steps_are_round_and_about_ten_to_a_chart() {
        assert_eq!(tick_step(0.0), 1.0);
        assert_eq!(tick_step(250.0), 30.0);
        assert_eq!(tick_step(600.0), 60.0);
        assert_eq!(tick_step(100_000.0), 3.0 * 3600.0);
    }
}
