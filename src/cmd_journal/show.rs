//! `drflow show RUN`: a run read back from the journal, for a person (a timeline of what happened
//! and a table of its steps) or for a program (`--output json`: the rebuilt state, every event,
//! and the same timeline and table as data).

use std::fmt::Write as _;
use std::time::Duration;

use clap::Args;
use drflow_engine::{AttemptOutcome, RunEvent, RunState, StepError, Timestamp, iso8601};
use serde::Serialize;
use serde_json::{Value, json};

use super::durable::journal_failure;
use super::environment::Environment;
use super::open_existing_read_only;
use super::outputs::output_lines;
use super::table::{Align, render};
use crate::{EXIT_FAILED, EXIT_OK, Failure, Global, OutputFormat};

/// `drflow show`.
#[derive(Args)]
pub struct ShowArgs {
    /// The run: its id, a unique prefix of it, or `latest`.
    run: String,
    /// text (a timeline and a table of the steps) or json (the rebuilt state, every event, and
    /// the timeline and table as data).
    #[arg(long, default_value = "text")]
    output: OutputFormat,
}

/// `drflow show RUN`.
pub fn cmd_show(global: &Global, args: ShowArgs) -> Result<u8, Failure> {
    let journal = open_existing_read_only(global)?;
    let run_id = journal.find_run(&args.run).map_err(journal_failure)?;
    let events = journal.events(&run_id).map_err(journal_failure)?;
    let state = RunState::replay(&events);
    if args.output == OutputFormat::Json {
        let doc = match &state {
            Ok(s) => json!({
                "run": s,
                "events": events,
                "environment": Environment::of(&s.params).map(|e| e.json()),
                "timeline": timeline(&events, s),
                "step_table": step_table(s),
            }),
            Err(e) => json!({ "error": e.to_string(), "code": e.kind.code(), "events": events }),
        };
        outln!("{doc:#}");
        return Ok(if state.is_ok() { EXIT_OK } else { EXIT_FAILED });
    }
    match state {
        Ok(s) => {
            out!("{}", text(&s, &events));
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

/// One line of a run's timeline: an event, when it happened, and what it says.
#[derive(Debug, Serialize)]
struct Moment {
    /// When, as ISO 8601 UTC.
    at: String,
    /// Seconds since the run started.
    offset_seconds: f64,
    /// The step it is about; none for the run's own events.
    step: Option<String>,
    /// What happened: `run started`, `started`, `attempt failed`, `succeeded`, `undone`, …
    event: &'static str,
    /// The attempt it belongs to.
    attempt: Option<u32>,
    /// The error, skip reason, change (`created`, …) or final status, when there is one.
    detail: Option<String>,
}

/// One row of the step table.
#[derive(Debug, Serialize)]
struct StepRow {
    step: String,
    status: &'static str,
    attempts: u32,
    /// From its first attempt's start to its end; none while it has not ended.
    duration_seconds: Option<f64>,
    /// What a cloud step did to its resources (`created`, `updated`, `deleted`, `unchanged`).
    change: Option<String>,
}

/// An error on one line: a person reads the timeline line by line.
fn one_line(e: &StepError) -> String {
    e.to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The run's events as a timeline. An attempt that failed for good and the step failure that
/// follows it say the same thing, so they make one line. An attempt with no end in the journal
/// says what replay made of it: lost (the process died; a resume ran it again) or still running.
fn timeline(events: &[RunEvent], state: &RunState) -> Vec<Moment> {
    let start = events.iter().find_map(|e| match e {
        RunEvent::RunStarted { at, .. } => Some(*at),
        _ => None,
    });
    let mut out: Vec<Moment> = Vec::new();
    let mut iter = events.iter().peekable();
    while let Some(e) = iter.next() {
        let (at, step, event, attempt, detail): (Timestamp, Option<&str>, _, _, _) = match e {
            RunEvent::RunStarted { at, .. } => (*at, None, "run started", None, None),
            RunEvent::RunResumed { at } => (*at, None, "run resumed", None, None),
            RunEvent::StepStarted { step, attempt, at } => {
                let unended = state
                    .step(step)
                    .and_then(|s| s.history.iter().find(|a| a.attempt == *attempt))
                    .and_then(|a| match a.outcome {
                        AttemptOutcome::Lost => {
                            Some("lost: the process died; a resume ran it again".to_owned())
                        }
                        AttemptOutcome::Running => Some("no result journaled".to_owned()),
                        _ => None,
                    });
                (*at, Some(step), "started", Some(*attempt), unended)
            }
            RunEvent::AttemptFailed {
                step,
                attempt,
                error,
                will_retry,
                at,
            } => {
                let last = matches!(
                    iter.peek(),
                    Some(RunEvent::StepFailed { step: s, error: e2, .. }) if s == step && e2 == error
                );
                if last && !will_retry {
                    iter.next();
                    (
                        *at,
                        Some(step),
                        "failed",
                        Some(*attempt),
                        Some(one_line(error)),
                    )
                } else {
                    let retry = if *will_retry { "; retrying" } else { "" };
                    let detail = format!("{}{retry}", one_line(error));
                    (
                        *at,
                        Some(step),
                        "attempt failed",
                        Some(*attempt),
                        Some(detail),
                    )
                }
            }
            RunEvent::StepSucceeded {
                step,
                attempt,
                outputs,
                at,
            } => {
                let change = outputs
                    .get("change")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                (*at, Some(step), "succeeded", Some(*attempt), change)
            }
            RunEvent::StepNoted {
                step,
                attempt,
                note,
                at,
            } => (
                *at,
                Some(step),
                "noted",
                Some(*attempt),
                Some(note.to_string()),
            ),
            RunEvent::StepFailed { step, error, at } => {
                (*at, Some(step), "failed", None, Some(one_line(error)))
            }
            RunEvent::StepSkipped { step, reason, at } => {
                (*at, Some(step), "skipped", None, Some(reason.clone()))
            }
            RunEvent::StepInterrupted { step, at } => (*at, Some(step), "interrupted", None, None),
            RunEvent::UndoStarted { step, at } => (*at, Some(step), "undo started", None, None),
            RunEvent::UndoSucceeded { step, at } => (*at, Some(step), "undone", None, None),
            RunEvent::UndoFailed { step, error, at } => {
                (*at, Some(step), "undo failed", None, Some(one_line(error)))
            }
            RunEvent::RunFinished { status, at, .. } => (
                *at,
                None,
                "run finished",
                None,
                Some(status.name().to_owned()),
            ),
        };
        let offset = (at - start.unwrap_or(at)).max(0.0);
        out.push(Moment {
            at: iso8601(at),
            offset_seconds: (offset * 1000.0).round() / 1000.0,
            step: step.map(str::to_owned),
            event,
            attempt,
            detail,
        });
    }
    out
}

/// One row per step the journal knows, in the order they first appeared.
fn step_table(s: &RunState) -> Vec<StepRow> {
    s.step_order
        .iter()
        .filter_map(|id| {
            let step = s.step(id)?;
            let duration = match (step.first_started_at, step.finished_at) {
                (Some(a), Some(b)) => Some(((b - a).max(0.0) * 1000.0).round() / 1000.0),
                _ => None,
            };
            Some(StepRow {
                step: id.clone(),
                status: step.status.name(),
                attempts: step.attempts,
                duration_seconds: duration,
                change: step
                    .outputs
                    .as_ref()
                    .and_then(|o| o.get("change"))
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            })
        })
        .collect()
}

/// `+MM:SS.mmm` (or `+H:MM:SS.mmm`) since the run started: one width, so the column lines up.
fn offset(seconds: f64) -> String {
    let ms = (seconds.max(0.0) * 1000.0).round() as u64;
    let (h, m, s, ms) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    if h > 0 {
        format!("+{h}:{m:02}:{s:02}.{ms:03}")
    } else {
        format!("+{m:02}:{s:02}.{ms:03}")
    }
}

/// A duration as `drflow runs` shows it: rounded to the millisecond first, so both agree.
fn secs(d: f64) -> String {
    let ms = (d.max(0.0) * 1000.0).round() / 1000.0;
    drflow_engine::format_duration(Duration::from_secs_f64(ms))
}

/// The text of `drflow show`: a header, the timeline, the step table and the run's outputs.
fn text(s: &RunState, events: &[RunEvent]) -> String {
    let mut out = String::new();
    let env = Environment::of(&s.params).map_or_else(|| "-".to_owned(), |e| e.to_string());
    let status = match s.finished_at {
        Some(f) => format!("{} after {}", s.status.name(), secs(f - s.started_at)),
        None => s.status.name().to_owned(),
    };
    let _ = writeln!(out, "run          {}", s.run_id);
    let _ = writeln!(out, "runbook      {} ({})", s.runbook, s.path);
    let _ = writeln!(out, "environment  {env}");
    let _ = writeln!(out, "status       {status}");
    let _ = writeln!(out, "started      {}", iso8601(s.started_at));
    for r in &s.resumed_at {
        let _ = writeln!(out, "resumed      {}", iso8601(*r));
    }
    if let Some(f) = s.finished_at {
        let _ = writeln!(out, "finished     {}", iso8601(f));
    }
    let _ = writeln!(out, "hash         {}", s.content_hash);
    if let Some(params) = s.params.as_object().filter(|p| !p.is_empty()) {
        let shown: Vec<String> = params
            .iter()
            .map(|(k, v)| match v {
                Value::String(t) => format!("{k}={t}"),
                other => format!("{k}={other}"),
            })
            .collect();
        // Wrapped, so that twenty parameters do not make one 400-column line.
        let mut line = String::from("params      ");
        for p in shown {
            if line.len() > 13 && line.len() + 1 + p.len() > 100 {
                let _ = writeln!(out, "{line}");
                line = " ".repeat(12);
            }
            line.push(' ');
            line.push_str(&p);
        }
        let _ = writeln!(out, "{line}");
    }

    let moments: Vec<Vec<String>> = timeline(events, s)
        .into_iter()
        .map(|m| {
            vec![
                offset(m.offset_seconds),
                m.step.unwrap_or_default(),
                m.event.to_owned(),
                m.attempt.map(|a| a.to_string()).unwrap_or_default(),
                m.detail.unwrap_or_default(),
            ]
        })
        .collect();
    let _ = writeln!(out, "\ntimeline (time since the run started)");
    out.push_str(&render(
        "  ",
        &["time", "step", "event", "attempt", "detail"],
        &[
            Align::Left,
            Align::Left,
            Align::Left,
            Align::Right,
            Align::Left,
        ],
        &moments,
    ));

    let rows: Vec<Vec<String>> = step_table(s)
        .into_iter()
        .map(|r| {
            vec![
                r.step,
                r.status.to_owned(),
                r.attempts.to_string(),
                r.duration_seconds.map_or_else(|| "-".to_owned(), secs),
                r.change.unwrap_or_else(|| "-".to_owned()),
            ]
        })
        .collect();
    if !rows.is_empty() {
        let _ = writeln!(out, "\nsteps");
        out.push_str(&render(
            "  ",
            &["step", "status", "attempts", "duration", "change"],
            &[
                Align::Left,
                Align::Left,
                Align::Right,
                Align::Right,
                Align::Left,
            ],
            &rows,
        ));
    }
    if !s.outputs.is_empty() {
        let _ = writeln!(out, "\noutputs");
        out.push_str(&output_lines(&s.outputs));
    }
    if !s.steps.is_empty() {
        let _ = writeln!(
            out,
            "\neach step's outputs, in full: drflow show {} --output json",
            s.run_id
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_keep_one_width_below_an_hour() {
        assert_eq!(offset(0.0), "+00:00.000");
        assert_eq!(offset(62.3456), "+01:02.346");
        assert_eq!(offset(3600.0 * 2.0 + 5.0), "+2:00:05.000");
        assert_eq!(offset(-1.0), "+00:00.000");
    }
}
