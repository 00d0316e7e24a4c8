//! The end-of-run summary: a table of steps, what happened to the cloud's resources, and the
//! runbook's outputs or, for a run that did not succeed, its errors and the command to go on;
//! or one JSON document.

use std::collections::BTreeSet;
use std::fmt::Write;
use std::path::Path;
use std::time::Duration;

use drflow_engine::{RollbackReport, RunReport, RunStatus, StepStatus, format_duration};
use drflow_steps::Change;
use serde_json::{Value, json};

/// What the summary says besides the report itself.
pub struct Summary<'a> {
    /// `sim` or `aws`.
    pub target: &'a str,
    /// Whether the run was on virtual time (the sim's): its durations are then virtual, and the
    /// summary adds the wall time.
    pub virtual_time: bool,
    /// How long the command took on the wall clock.
    pub wall_time: Duration,
    /// Where the run was journaled, for the commands that go on from it; `None` with
    /// `--no-journal`.
    pub journal: Option<&'a Path>,
    /// What the automatic rollback of a failed run (`on_failure: rollback`) did.
    pub rollback: Option<&'a RollbackReport>,
}

/// The summary table, resources, outputs or errors, and what to do next, for people.
pub fn text(report: &RunReport, summary: &Summary<'_>) -> String {
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
            .map(|ms| format_duration(Duration::from_millis(ms)))
            .unwrap_or_else(|| "-".into());
        let note = match (&s.error, &s.note, s.outputs.as_ref().and_then(step_changes)) {
            (Some(e), _, _) => e.to_string(),
            (None, Some(n), _) => n.clone(),
            (None, None, Some(c)) => c.describe_step(),
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
    let took = format_duration(Duration::from_millis(report.duration_ms));
    let took = if summary.virtual_time {
        format!(
            "{took} of {} time ({} wall)",
            summary.target,
            format_duration(summary.wall_time)
        )
    } else {
        took
    };
    let _ = writeln!(
        out,
        "\nrun {} of {} on target {}: {} in {took}",
        report.run_id,
        report.runbook,
        summary.target,
        report.status.name(),
    );
    let steps: Vec<String> = [
        StepStatus::Succeeded,
        StepStatus::Failed,
        StepStatus::Skipped,
        StepStatus::NotStarted,
        StepStatus::Interrupted,
    ]
    .into_iter()
    .map(|st| (report.steps.iter().filter(|s| s.status == st).count(), st))
    .filter(|(n, _)| *n > 0)
    .map(|(n, st)| format!("{n} {}", st.name().replace('_', " ")))
    .collect();
    if !steps.is_empty() {
        let _ = writeln!(out, "steps: {}", steps.join(", "));
    }
    if let Some(c) = changes(report) {
        // A step that failed part-way has no outputs to count from; its `+ ~ -` lines above
        // say what it did.
        let partial = report
            .steps
            .iter()
            .any(|s| matches!(s.status, StepStatus::Failed | StepStatus::Interrupted));
        let by = if partial {
            " (by the steps that succeeded)"
        } else {
            ""
        };
        let _ = writeln!(out, "resources: {}{by}", c.describe());
    }
    if let Some(r) = summary.rollback {
        let _ = write!(out, "\n{r}");
    }
    if report.status == RunStatus::Succeeded {
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
        for e in &report.errors {
            let _ = writeln!(out, "error: {e}");
        }
        return out;
    }
    // A run that did not succeed ends with why, and what to do about it.
    let errors = errors(report);
    if !errors.is_empty() {
        out.push('\n');
    }
    for e in &errors {
        let _ = writeln!(out, "error: {e}");
    }
    if let Some(next) = next_step(report, summary) {
        let _ = writeln!(out, "{next}");
    }
    out
}

/// The commands to go on from a run that did not succeed.
fn next_step(report: &RunReport, summary: &Summary<'_>) -> Option<String> {
    let Some(journal) = summary.journal else {
        return match report.status {
            RunStatus::Succeeded | RunStatus::RolledBack => None,
            _ => Some(
                "to go on: run it again once the cause is fixed (this run was not journaled \
                 (--no-journal), so it cannot be resumed or rolled back; steps find what a \
                 previous run made)"
                    .into(),
            ),
        };
    };
    let drflow = if journal == Path::new(drflow_steps::DEFAULT_STATE_DIR) {
        "drflow".to_owned()
    } else {
        format!("drflow --state-dir {}", journal.display())
    };
    let id = &report.run_id;
    let resume = format!("  {drflow} resume {id}");
    let rollback = format!("  {drflow} rollback {id}");
    Some(match report.status {
        RunStatus::Succeeded => return None,
        RunStatus::RolledBack => format!(
            "what the run did was undone; fix the cause and start a new run. What happened:\n  {drflow} show {id}"
        ),
        RunStatus::RollbackFailed => {
            format!("the rollback stopped; fix the cause, then finish it with:\n{rollback}")
        }
        RunStatus::Interrupted => format!(
            "to go on where it stopped (succeeded steps are not run again):\n{resume}\nto undo what it did instead:\n{rollback}"
        ),
        _ => format!(
            "to go on once the cause is fixed (succeeded steps are not run again):\n{resume}\nto undo what it did instead:\n{rollback}"
        ),
    })
}

/// What the run's cloud steps did to resources, counted from their `changes` and `resources`
/// outputs.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Resources created.
    pub created: usize,
    /// Resources whose drift was repaired, in place or by replacement.
    pub updated: usize,
    /// Resources deleted (teardown, superseded resources).
    pub deleted: usize,
    /// Resources the steps own that were already as they should be.
    pub unchanged: usize,
}

impl Changes {
    fn describe(&self) -> String {
        if self.created + self.updated + self.deleted == 0 {
            return match self.unchanged {
                0 => "no changes".into(),
                1 => "no changes (1 resource as it should be)".into(),
                n => format!("no changes ({n} resources as they should be)"),
            };
        }
        let mut parts = vec![
            format!("{} created", self.created),
            format!("{} changed", self.updated),
            format!("{} deleted", self.deleted),
        ];
        if self.unchanged > 0 {
            parts.push(format!("{} unchanged", self.unchanged));
        }
        parts.join(", ")
    }

    fn add(&mut self, other: &Changes) {
        self.created += other.created;
        self.updated += other.updated;
        self.deleted += other.deleted;
    }
}

/// The changes one step reports in its outputs, `None` for a step without a `change` output
/// (it does not provision). `unchanged` is left at 0: it is counted over the whole run, where a
/// resource two steps share counts once.
fn step_changes(outputs: &drflow_engine::Outputs) -> Option<Changes> {
    outputs.get("change")?;
    let mut c = Changes::default();
    for line in outputs
        .get("changes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        match Change::of_line(line) {
            Some(Change::Created) => c.created += 1,
            Some(Change::Updated) => c.updated += 1,
            Some(Change::Deleted) => c.deleted += 1,
            Some(Change::Unchanged) | None => {}
        }
    }
    Some(c)
}

/// Counts what the run's provisioning steps did to resources; `None` when no step provisions.
pub fn changes(report: &RunReport) -> Option<Changes> {
    let mut total = Changes::default();
    let mut owned: BTreeSet<(&str, &str, &str, &str)> = BTreeSet::new();
    let mut any = false;
    for o in report.steps.iter().filter_map(|s| s.outputs.as_ref()) {
        let Some(c) = step_changes(o) else { continue };
        any = true;
        total.add(&c);
        for r in o
            .get("resources")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let field = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or_default();
            // A child (a route, a record) is named within its parent.
            owned.insert((
                field("kind"),
                field("region"),
                field("parent"),
                field("name"),
            ));
        }
    }
    total.unchanged = owned.len().saturating_sub(total.created + total.updated);
    any.then_some(total)
}

impl Changes {
    /// Describes one step's changes for the table: `3 created, 1 changed`, or `unchanged`.
    fn describe_step(&self) -> String {
        let parts: Vec<String> = [
            (self.created, "created"),
            (self.updated, "changed"),
            (self.deleted, "deleted"),
        ]
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
        if parts.is_empty() {
            "unchanged".into()
        } else {
            parts.join(", ")
        }
    }
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

/// One JSON document: run id, status, steps, outputs, errors, resource changes.
pub fn json(report: &RunReport, summary: &Summary<'_>) -> Value {
    json!({
        "run_id": report.run_id,
        "runbook": report.runbook,
        "target": summary.target,
        "status": report.status,
        "duration_ms": report.duration_ms,
        "virtual_duration_ms": summary.virtual_time.then_some(report.duration_ms),
        "wall_duration_ms": summary.wall_time.as_millis() as u64,
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
