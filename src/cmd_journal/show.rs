//! `drflow runs` and `drflow show`: reading the journal.

use std::fmt::Write as _;
use std::time::Duration;

use clap::Args;
use drflow_engine::{AttemptOutcome, JOURNAL_FILE, Journal, RunState, StepPhase, iso8601, now};
use serde_json::{Value, json};

use super::durable::{journal_failure, run_key};
use super::open_existing_read_only;
use crate::{EXIT_FAILED, EXIT_OK, Failure, Global, OutputFormat};

/// `drflow runs`.
#[derive(Args)]
pub struct RunsArgs {
    /// text or json.
    #[arg(long, default_value = "text")]
    output: OutputFormat,
}

/// `drflow show`.
#[derive(Args)]
pub struct ShowArgs {
    /// The run: its id, a unique prefix of it, or `latest`.
    run: String,
    /// text (a timeline) or json (the rebuilt state and every event).
    #[arg(long, default_value = "text")]
    output: OutputFormat,
}

/// `drflow runs`.
pub fn cmd_runs(global: &Global, args: RunsArgs) -> Result<u8, Failure> {
    let path = global.state_dir.join(JOURNAL_FILE);
    if !path.exists() {
        if args.output == OutputFormat::Json {
            outln!("[]");
        } else {
            eprintln!("drflow: no runs recorded in {}", global.state_dir.display());
        }
        return Ok(EXIT_OK);
    }
    let journal = Journal::open_read_only(&path).map_err(journal_failure)?;
    let runs = journal.list_runs().map_err(journal_failure)?;
    let rows: Vec<Value> = runs
        .iter()
        .map(|r| {
            let live = r.status == "running"
                && drflow_engine::live_holder(&journal, &run_key(&r.id))
                    .ok()
                    .flatten()
                    .is_some();
            let status = if r.status == "running" && !live {
                "crashed".to_owned()
            } else {
                r.status.clone()
            };
            // A live run's duration grows with the clock; a crashed run's ends at its last
            // journaled event (about when it died), not now.
            let end = match (r.finished_at, live) {
                (Some(f), _) => f,
                (None, true) => now(),
                (None, false) => r.last_event_at.unwrap_or(r.started_at),
            };
            json!({
                "id": r.id,
                "runbook": r.runbook,
                "path": r.path,
                "status": status,
                "started_at": iso8601(r.started_at),
                "finished_at": r.finished_at.map(iso8601),
                "duration_seconds": ((end - r.started_at) * 1000.0).round() / 1000.0,
            })
        })
        .collect();
    if args.output == OutputFormat::Json {
        outln!("{:#}", Value::Array(rows));
        return Ok(EXIT_OK);
    }
    let mut out = String::new();
    let id_w = runs.iter().map(|r| r.id.len()).max().unwrap_or(6).max(6);
    let rb_w = runs
        .iter()
        .map(|r| r.runbook.len())
        .max()
        .unwrap_or(7)
        .max(7);
    let _ = writeln!(
        out,
        "{:<id_w$}  {:<rb_w$}  {:<15}  {:<24}  {:>9}",
        "run id", "runbook", "status", "started", "duration"
    );
    for row in &rows {
        let secs = row["duration_seconds"].as_f64().unwrap_or(0.0);
        let _ = writeln!(
            out,
            "{:<id_w$}  {:<rb_w$}  {:<15}  {:<24}  {:>9}",
            row["id"].as_str().unwrap_or_default(),
            row["runbook"].as_str().unwrap_or_default(),
            row["status"].as_str().unwrap_or_default(),
            row["started_at"].as_str().unwrap_or_default(),
            drflow_engine::format_duration(Duration::from_secs_f64(secs.max(0.0))),
        );
    }
    out!("{out}");
    Ok(EXIT_OK)
}

/// `drflow show RUN`.
pub fn cmd_show(global: &Global, args: ShowArgs) -> Result<u8, Failure> {
    let journal = open_existing_read_only(global)?;
    let run_id = journal.find_run(&args.run).map_err(journal_failure)?;
    let events = journal.events(&run_id).map_err(journal_failure)?;
    let state = RunState::replay(&events);
    if args.output == OutputFormat::Json {
        let doc = match &state {
            Ok(s) => json!({ "run": s, "events": events }),
            Err(e) => json!({ "error": e.to_string(), "code": e.kind.code(), "events": events }),
        };
        outln!("{doc:#}");
        return Ok(if state.is_ok() { EXIT_OK } else { EXIT_FAILED });
    }
    match state {
        Ok(s) => {
            out!("{}", timeline(&s));
            Ok(EXIT_OK)
        }
        Err(e) => {
            for (i, ev) in events.iter().enumerate() {
                outln!(
                    "#{:<4} {}",
                    i + 1,
                    serde_json::to_string(ev).unwrap_or_default()
                );
            }
            Err(Failure {
                diagnostics: Vec::new(),
                code: EXIT_FAILED,
                message: format!("error: {e}"),
            })
        }
    }
}

fn timeline(s: &RunState) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "run       {}", s.run_id);
    let _ = writeln!(out, "runbook   {} ({})", s.runbook, s.path);
    let _ = writeln!(out, "hash      {}", s.content_hash);
    let _ = writeln!(out, "status    {}", s.status.name());
    let _ = writeln!(out, "started   {}", iso8601(s.started_at));
    for r in &s.resumed_at {
        let _ = writeln!(out, "resumed   {}", iso8601(*r));
    }
    if let Some(f) = s.finished_at {
        let _ = writeln!(
            out,
            "finished  {} (after {})",
            iso8601(f),
            secs(f - s.started_at)
        );
    }
    let _ = writeln!(out, "params    {}", s.params);
    if !s.outputs.is_empty() {
        let _ = writeln!(out, "outputs   {}", Value::Object(s.outputs.clone()));
    }
    let _ = writeln!(out);
    let w = s
        .step_order
        .iter()
        .map(String::len)
        .max()
        .unwrap_or(4)
        .max(4);
    for id in &s.step_order {
        let Some(step) = s.step(id) else { continue };
        let _ = writeln!(out, "{id:<w$}  {}", step.status.name());
        if let Some(reason) = &step.skip_reason
            && step.status == StepPhase::Skipped
        {
            let _ = writeln!(out, "{:w$}    skipped: {reason}", "");
        }
        for a in &step.history {
            let ended = match a.ended_at {
                Some(e) => format!(" → {} ({})", time_of_day(e), secs(e - a.started_at)),
                None => String::new(),
            };
            let outcome = match &a.outcome {
                AttemptOutcome::Running => "running (no result journaled)".to_owned(),
                AttemptOutcome::Succeeded => "succeeded".to_owned(),
                AttemptOutcome::Failed { error, will_retry } => format!(
                    "failed: {error}{}",
                    if *will_retry { "; retrying" } else { "" }
                ),
                AttemptOutcome::Interrupted => "interrupted".to_owned(),
                AttemptOutcome::Lost => "lost: the process died; run again on resume".to_owned(),
            };
            let _ = writeln!(
                out,
                "{:w$}    attempt {} {}{ended}  {outcome}",
                "",
                a.attempt,
                iso8601(a.started_at),
            );
        }
        if let Some(u) = step.undo_started_at {
            let result = match (step.status, step.undo_finished_at) {
                (StepPhase::Undone, Some(e)) => format!("undone {}", time_of_day(e)),
                (StepPhase::UndoFailed, Some(e)) => format!(
                    "undo FAILED {}: {}",
                    time_of_day(e),
                    step.last_error
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_default()
                ),
                _ => "undo started, not finished".to_owned(),
            };
            let _ = writeln!(out, "{:w$}    undo    {} {result}", "", iso8601(u));
        }
        if let Some(o) = &step.outputs
            && !o.is_empty()
        {
            let _ = writeln!(out, "{:w$}    outputs {}", "", Value::Object(o.clone()));
        }
    }
    out
}

fn time_of_day(t: f64) -> String {
    iso8601(t).get(11..23).unwrap_or_default().to_owned()
}

fn secs(d: f64) -> String {
    drflow_engine::format_duration(Duration::from_secs_f64(d.max(0.0)))
}

/// `drflow outputs`.
#[derive(Args)]
pub struct OutputsArgs {
    /// The run: its id, a unique prefix of it, or `latest`. Without it: the latest run that
    /// succeeded (of `--runbook`, when given).
    run: Option<String>,
    /// Only consider runs of this runbook (its `runbook:` name, e.g. `provision`).
    #[arg(long)]
    runbook: Option<String>,
    /// text (one `name  value` line each) or json (one object).
    #[arg(long, default_value = "text")]
    output: OutputFormat,
}

/// `drflow outputs`: a finished run's outputs again, from the journal.
pub fn cmd_outputs(global: &Global, args: OutputsArgs) -> Result<u8, Failure> {
    let journal = open_existing_read_only(global)?;
    let run_id = match &args.run {
        Some(run) => journal.find_run(run).map_err(journal_failure)?,
        None => {
            let runs = journal.list_runs().map_err(journal_failure)?;
            runs.iter()
                .filter(|r| r.status == "succeeded")
                .filter(|r| args.runbook.as_ref().is_none_or(|name| &r.runbook == name))
                .max_by(|a, b| a.started_at.total_cmp(&b.started_at))
                .map(|r| r.id.clone())
                .ok_or_else(|| {
                    let which = args
                        .runbook
                        .as_ref()
                        .map_or_else(String::new, |n| format!(" of runbook `{n}`"));
                    Failure::invalid(format!(
                        "error: no succeeded run{which} in {}\n  hint: run one first, e.g. `drflow run runbooks/provision.yaml`, or name a run: `drflow runs` lists them",
                        journal.path().display()
                    ))
                })?
        }
    };
    let events = journal.events(&run_id).map_err(journal_failure)?;
    let state = RunState::replay(&events).map_err(|e| Failure {
        diagnostics: Vec::new(),
        code: EXIT_FAILED,
        message: format!("error: {e}"),
    })?;
    if state.finished_at.is_none() {
        return Err(Failure::invalid(format!(
            "error: run {run_id} has not finished ({}), so it has no outputs yet\n  hint: `drflow resume {run_id}` finishes it",
            state.status.name()
        )));
    }
    if args.output == OutputFormat::Json {
        outln!(
            "{:#}",
            json!({ "run_id": run_id, "runbook": state.runbook, "status": state.status, "outputs": state.outputs })
        );
        return Ok(EXIT_OK);
    }
    outln!(
        "run {run_id} of {} ({})",
        state.runbook,
        state.status.name()
    );
    let w = state.outputs.keys().map(String::len).max().unwrap_or(0);
    for (k, v) in &state.outputs {
        let shown = match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        outln!("  {k:<w$}  {shown}");
    }
    Ok(EXIT_OK)
}
