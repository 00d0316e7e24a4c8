//! The drill's outputs for people: the summary of one drill, the table of `--all`, and
//! `docs/drills.md`. Each is a function of [`DrillReport`]s alone and prints nothing that
//! changes from run to run (no run id, no wall time), so the docs page can be checked for drift.

use std::fmt::Write as _;

use super::model::{DrillReport, Stage};

/// `12.3 s`, or `-` for nothing.
fn seconds(s: Option<f64>) -> String {
    s.map_or_else(|| "-".to_string(), |s| format!("{s:.1} s"))
}

/// An objective in seconds: `300 s`, `1.5 s`, `0.001 s` (a sub-second objective is not 0).
pub fn objective(s: f64) -> String {
    let t = format!("{s:.3}");
    format!("{} s", t.trim_end_matches('0').trim_end_matches('.'))
}

/// The RTO cell of a table: seconds, `-` when the client never failed, or `not recovered`.
fn rto_cell(r: &DrillReport) -> String {
    if r.recovered {
        seconds(r.rto_seconds)
    } else {
        "not recovered".into()
    }
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
    if !r.recovered {
        why.push(format!(
            "not recovered within {:.0} s",
            r.unrecovered_seconds.unwrap_or(r.virtual_seconds)
        ));
    }
    if let Some(rto) = r.rto_seconds
        && rto > r.objectives.rto_seconds
    {
        why.push(format!(
            "RTO {rto:.1} s > {}",
            objective(r.objectives.rto_seconds)
        ));
    }
    if r.rpo_seconds > r.objectives.rpo_seconds {
        why.push(format!(
            "RPO {:.1} s > {}",
            r.rpo_seconds,
            objective(r.objectives.rpo_seconds)
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
    let outages = match r.outages {
        0 => String::new(),
        1 => format!("; 1 outage, {:.1} s down", r.downtime_seconds),
        n => format!("; {n} outages, {:.1} s down in all", r.downtime_seconds),
    };
    match r.rto_seconds {
        _ if !r.recovered => {
            let _ = writeln!(
                out,
                "RTO       not recovered within {:.0} s of the first failed request (objective {}){outages}",
                r.unrecovered_seconds.unwrap_or(r.virtual_seconds),
                objective(r.objectives.rto_seconds)
            );
        }
        Some(rto) => {
            let _ = writeln!(
                out,
                "RTO       {rto:.1} s (objective {}): critical path {}, engine {}{outages}",
                objective(r.objectives.rto_seconds),
                seconds(r.critical_path_seconds),
                seconds(r.engine_seconds)
            );
        }
        None => {
            let _ = writeln!(
                out,
                "RTO       - (the client never failed; objective {})",
                objective(r.objectives.rto_seconds)
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
        "RPO       {:.1} s (objective {}): {} of {} acknowledged writes lost",
        r.rpo_seconds,
        objective(r.objectives.rpo_seconds),
        r.lost_writes,
        r.acked_writes
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

/// What the drill used, from the report's `params.environment`: the parameter files, the
/// regions and the configuration, one line each.
pub fn environment(r: &DrillReport) -> String {
    let e = &r.params["environment"];
    if e.is_null() {
        return String::new();
    }
    let files: Vec<String> = e["params_files"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|f| {
                    format!(
                        "{} ({})",
                        f["file"].as_str().unwrap_or("?"),
                        f["from"].as_str().unwrap_or("?")
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let s = |k: &str| e[k].as_str().unwrap_or("?").to_string();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "environment  primary {}, standby {}; parameters from {}",
        s("primary_region"),
        s("standby_region"),
        files.join(", then ")
    );
    let _ = writeln!(
        out,
        "config       {}: {}, provisioned by {}",
        s("config"),
        s("runbook"),
        s("provision")
    );
    out
}

/// The summary of one drill, for a terminal. `state`: where its run is journaled, in words
/// (a kept `--state-dir`, or a temporary directory that is gone).
pub fn text(r: &DrillReport, state: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "drill {}: {}\n", r.scenario, r.description);
    out.push_str(&environment(r));
    out.push('\n');
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
            .map(|id| format!("; the failover is run {id}, {state}"))
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
                rto_cell(r),
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
            rto_cell(r),
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
resolving the public name through its own DNS cache, which keeps an answer for its TTL),
injects the scenario's faults, and lets the deployed health checks and alarms detect them. The
alarm state changes that EventBridge delivers into the alarm queue, and the state changes of
drflow's own probe of the primary from the standby region (every 10 s, `ALARM` after 150 s of
failures), go to the triggers of `drflow.yaml` (the same evaluator the daemon uses, see
[triggers.md](triggers.md)); when one fires, the drill runs its runbook
(`runbooks/failover.yaml`) in-process with the firing's parameters, while the client keeps
trading on the same virtual clock. The drill stops once the run has finished, every fault that
ends within the horizon has ended, and the client's latest request after that succeeded;
otherwise at the scenario's horizon. `drflow drill --all` plays every scenario; `--output json`
prints the report (a list for `--all`), `--output markdown` this page (with `--all` only),
`--report FILE.html` a self-contained page (its directory must exist and be writable: checked
before anything is played). The text output and the report's `params.environment` say which
parameter files (the trigger's `params_file`, else the built-in `runbooks/params/eu.yaml`, then
`--params-file`), regions and configuration (`./drflow.yaml`, `--config`, or the built-in copy
with its runbooks) the drill used. Its state is a temporary directory, removed at the end,
whatever `DRFLOW_STATE_DIR` says; `--state-dir D` (a new or empty directory) keeps it for
`drflow show`.

## What is measured

- **RTO**: from the client's first failed request after the fault to the start of its final
  stretch of successes (the client served from then to the end of the drill), as the client
  saw it (its DNS cache's TTL included). A success between two outages is not a recovery: a
  second outage (a fence taking away the region that served, a flapping primary) counts.
  Also reported: the number of separate *outages* (runs of failed requests) and the total
  *downtime* (their sum). `-` when the client never failed; *not recovered within N s* when it
  was still failing at the end of the drill, which fails the verdict whatever the decision.
- **RPO**: the writes the client had acknowledged that the writer at the end lacks, as a count
  (*lost writes*) and in seconds: the data-loss window, from the commit of the last write the
  new writer holds to the acknowledgement of the last lost write (the lost writes' span plus the
  gap before the first of them; one lost write of a client writing every second is 1 s). 0 only
  when nothing was lost.
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
  parameters (a sub-second objective is printed to the millisecond). The verdict is *met* when
  the decision is right for the scenario, the client recovered, and RTO and RPO are within the
  objectives. Right decisions: `flapping`, `partition` and `az-loss` never fail over; when the
  writer is lost (`region-outage`, `db-failure`, `capacity-short`, `lag-spike`) a failover is
  right within the data-loss budget and `blocked` beyond it: the data at risk as the run decided
  (its `database` step's `data_at_risk_ms`) against `max_data_loss`, so `lag-spike` ends
  `blocked` with the default 60s and should fail over with `-p max_data_loss=5m`. Exit code 0
  when met, 1 otherwise, 2 for bad input.

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
            recovered: true,
            unrecovered_seconds: None,
            downtime_seconds: rto.unwrap_or(0.0),
            outages: u64::from(rto.is_some()),
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
    fn an_unrecovered_client_is_said_and_fails_the_verdict() {
        let mut r = report("a", "failover", None, 0.0);
        r.recovered = false;
        r.unrecovered_seconds = Some(899.0);
        r.outages = 1;
        r.downtime_seconds = 899.0;
        r.objectives_met = false;
        let f = figures(&r);
        assert!(
            f.contains("RTO       not recovered within 899 s of the first failed request"),
            "{f}"
        );
        assert!(!f.contains("never failed"), "{f}");
        assert_eq!(verdict(&r), "NOT MET: not recovered within 899 s");
        assert!(table(&[r]).contains("not recovered"));
    }

    #[test]
    fn sub_second_objectives_are_printed_as_they_are() {
        assert_eq!(objective(0.001), "0.001 s");
        assert_eq!(objective(300.0), "300 s");
        assert_eq!(objective(1.5), "1.5 s");
        assert_eq!(objective(0.0), "0 s");
        let mut r = report("a", "failover", Some(200.0), 0.5);
        r.objectives.rpo_seconds = 0.001;
        r.objectives_met = false;
        assert!(
            figures(&r).contains("(objective 0.001 s)"),
            "{}",
            figures(&r)
        );
        assert!(
            verdict(&r).contains("RPO 0.5 s > 0.001 s"),
            "{}",
            verdict(&r)
        );
    }

    #[test]
    fn several_outages_are_counted_with_their_downtime() {
        let mut r = report("a", "switchover", Some(206.0), 0.0);
        r.outages = 2;
        r.downtime_seconds = 89.0;
        assert!(
            figures(&r).contains("; 2 outages, 89.0 s down in all"),
            "{}",
            figures(&r)
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
