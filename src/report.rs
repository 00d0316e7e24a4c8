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
        let change = s
            .outputs
            .as_ref()
            .and_then(|o| o.get("change"))
            .and_then(Value::as_str);
        let note = match (&s.error, &s.note, change) {
            (Some(e), _, _) => e.to_string(),
            (None, Some(n), _) => n.clone(),
            (None, None, Some(c)) => c.to_string(),
            (None, None, None) => String::new(),
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
    if let Some(c) = changes(report) {
        if c.created + c.updated + c.deleted == 0 {
            let _ = writeln!(
                out,
                "no changes: {} provisioning step(s) found everything as it should be",
                c.unchanged
            );
        } else {
            let _ = writeln!(
                out,
                "changes, counted in steps: {} created resources, {} repaired drift, {} deleted resources, {} found nothing to change (each step's `changes` output lists its resources)",
                c.created, c.updated, c.deleted, c.unchanged
            );
        }
    }
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

/// What provisioning steps (those with a `change` output) did.
pub struct Changes {
    /// Steps that created something.
    pub created: usize,
    /// Steps that repaired drift.
    pub updated: usize,
    /// Steps that deleted resources (destroy, cleanup of replaced ones).
    pub deleted: usize,
    /// Steps that found everything as it should be.
    pub unchanged: usize,
}

/// Counts the `change` outputs of the run's steps; `None` when no step reports one.
pub fn changes(report: &RunReport) -> Option<Changes> {
    let mut c = Changes {
        created: 0,
        updated: 0,
        deleted: 0,
        unchanged: 0,
    };
    let mut any = false;
    for s in &report.steps {
        match s
            .outputs
            .as_ref()
            .and_then(|o| o.get("change"))
            .and_then(Value::as_str)
        {
            Some("created") => c.created += 1,
            Some("updated") => c.updated += 1,
            Some("deleted") => c.deleted += 1,
            Some(_) => c.unchanged += 1,
            None => continue,
        }
        any = true;
    }
    any.then_some(c)
}

/// Run-level errors, then one line per step that failed or was interrupted.
fn errors(report: &RunReport) -> Vec<String> {
    let mut out = report.errors.clone();
    for s in &report.steps {
        match (s.status, &s.error) {
            (StepStatus::Failed, Some(e)) => out.push(format!("step `{}` failed: {e}", s.id)),
            (StepStatus::Interrupted, _) => out.push(format!("step `{}` was interrupted", s.id)),
            _ => {}
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
        "errors": errors(report),
        "changes": changes(report).map(|c| json!({
            "created": c.created,
            "updated": c.updated,
            "deleted": c.deleted,
            "unchanged": c.unchanged,
        })),
    })
}
