//! The drill's outputs for people: the summary of one drill, the table of `--all`, and
//! `docs/drills.md`. Each is a function of [`DrillReport`]s alone and prints nothing that
//! changes from run to run (no run id, no wall time), so the docs page can be checked for drift.

use std::fmt::Write as _;

use super::model::{DrillReport, Stage};

/// `12.3 s`, or `-` for nothing.
fn seconds(s: Option<f64>) -> String {
    s.map_or_else(|| "-".to_string(), |s| format!("{s:.1} s"))
}

/// `met`, or what was not.
pub fn verdict(r: &DrillReport) -> String {
    if r.objectives_met {
        return "met".into();
    }
    let mut why = Vec::new();
    if !r.decision_right {
        why.push(format!(
            "decision {} (expected {})",
            r.decision,
            r.decision_expected.join(" or ")
        ));
    }
    if let Some(rto) = r.rto_seconds
        && rto > r.objectives.rto_seconds
    {
        why.push(format!(
            "RTO {rto:.1} s > {:.0} s",
            r.objectives.rto_seconds
        ));
    }
    if r.rpo_seconds > r.objectives.rpo_seconds {
        why.push(format!(
            "RPO {:.1} s > {:.0} s",
            r.rpo_seconds, r.objectives.rpo_seconds
        ));
    }
    format!("NOT MET: {}", why.join("; "))
}

fn stages(list: &[Stage]) -> String {
    list.iter()
        .map(|s| format!("{} {:.1} s", s.name, s.seconds))
        .collect::<Vec<_>>()
        .join(" + ")
}

/// The timeline as an aligned table: seconds from the fault, event, detail.
pub fn timeline(r: &DrillReport) -> String {
    let w = r
        .timeline
        .iter()
        .map(|e| e.event.len())
        .max()
        .unwrap_or(5)
        .max(5);
    let mut out = String::new();
    let _ = writeln!(out, "{:>9}  {:<w$}  detail", "at", "event");
    for e in &r.timeline {
        let _ = writeln!(
            out,
            "{:>9}  {:<w$}  {}",
            format!("{:+.1} s", e.at_seconds),
            e.event,
            e.detail
        );
    }
    out
}

/// The figures under the timeline: RTO against the critical path and the engine, RPO, the
/// objectives and the verdict.
fn figures(r: &DrillReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "decision  {} (expected {}){}",
        r.decision,
        r.decision_expected.join(" or "),
        if r.decision_right { "" } else { ": WRONG" }
    );
    match r.rto_seconds {
        Some(rto) => {
            let _ = writeln!(
                out,
                "RTO       {rto:.1} s (objective {:.0} s): critical path {}, engine {}",
                r.objectives.rto_seconds,
                seconds(r.critical_path_seconds),
                seconds(r.engine_seconds)
            );
        }
        None => {
            let _ = writeln!(
                out,
                "RTO       - (the client never failed; objective {:.0} s)",
                r.objectives.rto_seconds
            );
        }
    }
    if !r.critical_path.is_empty() {
        let _ = writeln!(out, "  critical path  {}", stages(&r.critical_path));
        if r.engine.is_empty() {
            let _ = writeln!(
                out,
                "  engine         none: the client recovered before any run acted"
            );
        } else {
            let _ = writeln!(out, "  engine         {}", stages(&r.engine));
        }
    }
    let _ = writeln!(
        out,
        "RPO       {:.1} s (objective {:.0} s): {} of {} acknowledged writes lost",
        r.rpo_seconds, r.objectives.rpo_seconds, r.lost_writes, r.acked_writes
    );
    if let Some(t) = &r.trigger {
        let _ = writeln!(
            out,
            "trigger   {} ({}) at {:+.1} s",
            t.trigger, t.require, t.at_seconds
        );
    }
    let _ = writeln!(out, "verdict   {}", verdict(r));
    out
}

/// The summary of one drill, for a terminal.
pub fn text(r: &DrillReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "drill {}: {}\n", r.scenario, r.description);
    out.push_str(&timeline(r));
    out.push('\n');
    out.push_str(&figures(r));
    let _ = writeln!(
        out,
        "\n{:.0} s of simulated time in {:.2} s{}",
        r.virtual_seconds,
        r.wall_ms as f64 / 1000.0,
        r.run_id
            .as_ref()
            .map(|id| format!("; the failover is run {id}"))
            .unwrap_or_default()
    );
    out
}

/// The table of `--all`: scenario, decision, RTO, critical path, RPO, lost writes, verdict.
pub fn table(reports: &[DrillReport]) -> String {
    let rows: Vec<[String; 7]> = reports
        .iter()
        .map(|r| {
            [
                r.scenario.clone(),
                r.decision.clone(),
                seconds(r.rto_seconds),
                seconds(r.critical_path_seconds),
                format!("{:.1} s", r.rpo_seconds),
                r.lost_writes.to_string(),
                if r.objectives_met {
                    "met".into()
                } else {
                    "NOT MET".into()
                },
            ]
        })
        .collect();
    let head = [
        "scenario",
        "decision",
        "RTO",
        "critical path",
        "RPO",
        "lost writes",
        "verdict",
    ];
    let mut w = head.map(str::len);
    for row in &rows {
        for (i, c) in row.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    let line = |cells: [&str; 7]| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            if (2..=5).contains(&i) {
                let _ = write!(l, "{:>width$}  ", c, width = w[i]);
            } else {
                let _ = write!(l, "{:<width$}  ", c, width = w[i]);
            }
        }
        l.trim_end().to_string()
    };
    let _ = writeln!(out, "{}", line(head));
    for row in &rows {
        let cells: [&str; 7] = std::array::from_fn(|i| row[i].as_str());
        let _ = writeln!(out, "{}", line(cells));
    }
    out
}

/// `docs/drills.md`: how the figures are defined, the table of every scenario, and each one's
/// timeline and figures.
pub fn markdown(reports: &[DrillReport]) -> String {
    let mut out = String::from(PREAMBLE);
    out.push_str("## Every scenario\n\n");
    out.push_str(
        "| scenario | decision | RTO | critical path | engine | RPO | lost writes | verdict |\n",
    );
    out.push_str("|---|---|---:|---:|---:|---:|---:|---|\n");
    for r in reports {
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} | {} | {:.1} s | {} | {} |",
            r.scenario,
            r.decision,
            seconds(r.rto_seconds),
            seconds(r.critical_path_seconds),
            seconds(r.engine_seconds),
            r.rpo_seconds,
            r.lost_writes,
            verdict(r)
        );
    }
    for r in reports {
        let _ = write!(
            out,
            "\n## `{}`\n\n{}\n\n```text\n{}\n{}```\n",
            r.scenario,
            r.description,
            timeline(r),
            figures(r)
        );
        if !r.critical_path.is_empty() {
            out.push_str("\n| stage | seconds | from |\n|---|---:|---|\n");
            for s in r.critical_path.iter().chain(&r.engine) {
                let _ = writeln!(out, "| {} | {:.1} | {} |", s.name, s.seconds, s.source);
            }
        }
    }
    out
}

const PREAMBLE: &str = "# Drills

<!-- Generated by `drflow drill --all --output markdown`; do not edit by hand. Regenerate with
`DRFLOW_UPDATE_DOCS=1 cargo test --test docs_drift`. -->

`drflow drill --scenario NAME` plays one failure on the simulated cloud, in its own temporary
state directory (or `--state-dir D`): it provisions the environment (`runbooks/provision.yaml`
with the trigger's parameter file, the `--params-file` and `-p` on top), lets it settle until it
serves, starts a synthetic trading client (one write with a sequence number every second,
resolving the public name through its own DNS cache, which keeps an answer for its TTL), injects
the scenario's faults, and lets the deployed health checks and alarms detect them. The alarm
state changes that EventBridge delivers into the alarm queue, and the state changes of drflow's
own probe of the primary from the standby region (every 10 s, `ALARM` after 150 s of failures),
go to the triggers of `drflow.yaml` (the same evaluator the daemon uses, see
[triggers.md](triggers.md)); when one fires, the drill runs its runbook
(`runbooks/failover.yaml`) in-process with the firing's parameters, while the client keeps
trading on the same virtual clock. The drill stops when the client is served again after the
run, or at the scenario's horizon. `drflow drill --all` plays every scenario; `--output json`
prints the report (a list for `--all`), `--report FILE.html` a self-contained page.

## What is measured

- **RTO**: from the client's first failed request after the fault to its first successful one
  after recovery, as the client saw it (its DNS cache's TTL included). After a promotion,
  recovery is a write acknowledged in the promoted region; without one, any acknowledged write.
  `-` when the client never failed.
- **RPO**: the writes the client had acknowledged that the writer at the end lacks, as a count
  (*lost writes*) and in seconds: the span of their acknowledgement times (0 when none).
- **Critical path**: the stages AWS and the client impose on the scenario with these settings,
  each from the simulated world's record (the `SimConfig` figure behind it is named):
  *detection* (the first failed request → the alarm or probe state change that completed the
  trigger), *delivery* (that state change → its event in the alarm queue: EventBridge to SQS;
  for the probe, its event read by the drill, after the probe's timeout),
  *promotion* or *capacity* (whichever ends later, from its request: the Aurora promotion until
  the new writer is available, or the standby's scaling until it is in service, or until the
  run stopped waiting for capacity that could not launch), *dns* (the record change submitted
  → `INSYNC`) and *clients* (`INSYNC` → the client's first success there: its cached answer
  expiring, then its next request).
- **Engine share**: what drflow adds on top: *trigger* (the event in the queue → the trigger
  firing), *dispatch* (the firing → the promotion or scaling request: the run's start,
  discovery, signals, decision and fence) and *noticing* (the promotion or scaling done → the
  DNS change submitted: the run's polling).
- The stages are measured back to back from the first failed request, each from where the
  previous one ended, so **RTO = critical path + engine share**.
- **Objectives**: `rto_objective` (default 5m) and `rpo_objective` (default 1m), the drill's own
  parameters. The verdict is *met* when the decision is right for the scenario (`flapping`,
  `partition` and `az-loss` never fail over, `lag-spike` ends `blocked`) and RTO and RPO are
  within the objectives. Exit code 0 when met, 1 otherwise, 2 for bad input.

Times in the timelines are seconds from the fault, on the simulated cloud's clock, with the
default parameters.

";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drill::model::{Objectives, TimelineEntry};

    fn report(scenario: &str, decision: &str, rto: Option<f64>, rpo: f64) -> DrillReport {
        let expected = vec!["failover".to_string()];
        let objectives = Objectives {
            rto_seconds: 300.0,
            rpo_seconds: 60.0,
        };
        let decision_right = expected.iter().any(|d| d == decision);
        DrillReport {
            scenario: scenario.into(),
            description: "A test.".into(),
            decision: decision.into(),
            decision_expected: expected,
            decision_right,
            rto_seconds: rto,
            critical_path_seconds: rto.map(|r| r - 0.5),
            engine_seconds: rto.map(|_| 0.5),
            critical_path: Vec::new(),
            engine: Vec::new(),
            rpo_seconds: rpo,
            lost_writes: 1,
            acked_writes: 40,
            objectives,
            objectives_met: decision_right && rto.is_none_or(|r| r <= 300.0) && rpo <= 60.0,
            timeline: vec![
                TimelineEntry {
                    at_seconds: 0.0,
                    event: "fault".into(),
                    detail: "region-outage in eu-south-1".into(),
                },
                TimelineEntry {
                    at_seconds: 1.0,
                    event: "first_failed_request".into(),
                    detail: "write #32".into(),
                },
            ],
            trigger: None,
            steps: Vec::new(),
            client: Vec::new(),
            run_id: None,
            params: serde_json::Value::Null,
            version: "0".into(),
            wall_ms: 0,
            virtual_seconds: 300.0,
        }
    }

    #[test]
    fn the_verdict_says_what_was_not_met() {
        assert_eq!(verdict(&report("a", "failover", Some(200.0), 0.0)), "met");
        assert_eq!(
            verdict(&report("a", "hold", Some(320.0), 61.0)),
            "NOT MET: decision hold (expected failover); RTO 320.0 s > 300 s; RPO 61.0 s > 60 s"
        );
    }

    #[test]
    fn the_table_has_a_row_per_scenario_under_aligned_headings() {
        let t = table(&[
            report("region-outage", "failover", Some(269.0), 0.0),
            report("partition", "none", None, 0.0),
        ]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3, "{t}");
        assert!(lines[0].starts_with("scenario"));
        assert!(
            lines[1].contains("269.0 s") && lines[1].ends_with("met"),
            "{t}"
        );
        assert!(
            lines[2].contains(" - ") && lines[2].ends_with("NOT MET"),
            "{t}"
        );
        // The RTO column is right-aligned: its values end where its heading does.
        let end = lines[0].find("RTO").unwrap() + 3;
        assert_eq!(&lines[1][end - 7..end], "269.0 s", "{t}");
    }

    #[test]
    fn the_timeline_lists_events_with_seconds_from_the_fault() {
        let t = timeline(&report("a", "failover", Some(1.0), 0.0));
        assert!(t.contains("   +0.0 s  fault"), "{t}");
        assert!(
            t.contains("   +1.0 s  first_failed_request  write #32"),
            "{t}"
        );
    }
}
