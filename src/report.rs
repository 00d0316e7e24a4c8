//! The end-of-run summary: a table of steps and the runbook's outputs, or one JSON document.

use std::fmt::Write;

use drflow_engine::{RunReport, StepStatus, format_duration};
use serde_json::{Value, json};

/// The summary table and outputs, for people.
pub fn text(report: &RunReport, target: &str) -> String {
    let mut out = String::new();
    let id_w = report
        .steps
        .iter()
        .map(|s| s.id.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let _ = writeln!(
        out,
        "\n{:<id_w$}  {:<11}  {:>8}  {:>9}  note",
        "step", "status", "attempts", "duration"
    );
    for s in &report.steps {
        let duration = s
            .duration_ms
            .map(|ms| format_duration(std::time::Duration::from_millis(ms)))
            .unwrap_or_else(|| "-".into());
        let note = match (&s.error, &s.note) {
            (Some(e), _) => e.to_string(),
            (None, Some(n)) => n.clone(),
            (None, None) => String::new(),
        };
        let _ = writeln!(
            out,
            "{:<id_w$}  {:<11}  {:>8}  {:>9}  {note}",
            s.id,
            s.status.name(),
            s.attempts,
            duration
        );
    }
    let count = |st: StepStatus| report.steps.iter().filter(|s| s.status == st).count();
    let _ = writeln!(
        out,
        "\nrun {} of {} on target {}: {} in {} ({} succeeded, {} failed, {} skipped, {} not started, {} interrupted)",
        report.run_id,
        report.runbook,
        target,
        report.status.name(),
        format_duration(std::time::Duration::from_millis(report.duration_ms)),
        count(StepStatus::Succeeded),
        count(StepStatus::Failed),
        count(StepStatus::Skipped),
        count(StepStatus::NotStarted),
        count(StepStatus::Interrupted),
    );
    for e in &report.errors {
        let _ = writeln!(out, "error: {e}");
    }
    if !report.outputs.is_empty() {
        let _ = writeln!(out, "\noutputs:");
        let w = report.outputs.keys().map(String::len).max().unwrap_or(0);
        for (k, v) in &report.outputs {
            let shown = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let _ = writeln!(out, "  {k:<w$}  {shown}");
        }
    }
    out
}

/// One JSON document: run id, status, steps, outputs, errors.
pub fn json(report: &RunReport, target: &str) -> Value {
    json!({
        "run_id": report.run_id,
        "runbook": report.runbook,
        "target": target,
        "status": report.status,
        "duration_ms": report.duration_ms,
        "steps": report.steps,
        "outputs": report.outputs,
        "errors": report.errors,
    })
}
