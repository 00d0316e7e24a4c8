//! `drflow run --plan`, and the plan a destructive command shows before it asks: the runbook
//! (or a run's rollback) run against a scratch copy of the world that the step library provides
//! ([`drflow_steps::scratch_registry`]). No journal, no lock, no event log: the real world and the
//! journal are left byte for byte as they were.

use std::sync::Arc;

use drflow_engine::{
    Outputs, Recorder, Registry, RunEvent, RunOptions, RunState, RunStatus, Runbook, Secrets,
    StepStatus, StepType, Stop,
};
use drflow_steps::Plan;
use serde_json::json;
use tokio::sync::watch;

use crate::runtime::Runtime;
use crate::{EXIT_FAILED, EXIT_OK, Failure, Global, OutputFormat};

/// What a run (or a rollback) on the scratch world did.
pub struct Outcome {
    /// The resources it created, changed and deleted.
    pub plan: Plan,
    /// Steps that failed on the scratch world, with their errors: the real run would stop there
    /// too (or retry).
    pub failed: Vec<(String, String)>,
    /// For a rollback: the steps it undid, in order.
    pub undone: Vec<String>,
    /// Steps whose outputs are secret (an input derives from a secret), so what they would
    /// change cannot be shown.
    pub hidden: Vec<String>,
    /// Whether the run (or rollback) would not finish: a step failed for good (one with
    /// `continue_on_error` is listed in `failed` but does not stop the run).
    pub would_fail: bool,
    /// For a run: every step in file order, with when it ran on the scratch world's clock.
    /// Empty for a rollback.
    pub steps: Vec<StepRun>,
    /// For a run: the runbook's outputs (secret ones `"***"`).
    pub outputs: Outputs,
    /// For a run: how long it took on the scratch world's clock, in milliseconds.
    pub duration_ms: u64,
}

/// One step of a run on the scratch world. Times are milliseconds from the run's start, on the
/// clock the run had: on the simulated cloud, the sim's virtual time, so they are the forecast
/// of the real run's timings.
pub struct StepRun {
    /// Its id.
    pub id: String,
    /// Its type.
    pub uses: String,
    /// Where it ended up.
    pub status: StepStatus,
    /// When its first attempt started (for a skipped step: when it was skipped).
    pub start_ms: Option<u64>,
    /// When it succeeded, failed or was skipped.
    pub end_ms: Option<u64>,
    /// What it created, changed and deleted.
    pub plan: Plan,
    /// Its outputs when it succeeded (secret ones `"***"`).
    pub outputs: Option<Outputs>,
    /// Its error when it failed (secrets scrubbed).
    pub error: Option<String>,
}

/// Runs `rb` with `params` on a scratch copy of the target's world and returns what it did.
/// `rb`'s steps are bound to the scratch world meanwhile and bound back afterwards.
pub fn plan_run(global: &Global, rb: &mut Runbook, params: &Outputs) -> Result<Outcome, Failure> {
    // A runtime and clock of its own: the plan's waits must not move the real world's time.
    let runtime = Runtime::start(&crate::cloud_config(global))?;
    let scratch = scratch_registry(global, &runtime)?;
    let real = bind(rb, &scratch);
    let (_tx, stop) = watch::channel(Stop::No);
    let mut sink = Recorder::default();
    // The run adds every value derived from a secret to this set as it evaluates it, so the
    // plan is scrubbed of transformed secrets too, not only of the parameters as given.
    let secrets = run_secrets(rb, params);
    let mut options = RunOptions::new("plan");
    options.secrets = secrets.clone();
    options.clock = runtime.clock();
    let report = quietly(
        &runtime,
        drflow_engine::run(rb, params, options, &mut sink, stop),
    );
    unbind(rb, real);
    let report = report?;
    let mut outcome = Outcome {
        plan: Plan::default(),
        failed: Vec::new(),
        undone: Vec::new(),
        hidden: Vec::new(),
        would_fail: report.status != RunStatus::Succeeded,
        steps: Vec::new(),
        outputs: report.outputs.clone(),
        duration_ms: report.duration_ms,
    };
    let times = step_times(&sink.events());
    for step in &report.steps {
        let mut plan = Plan::default();
        if let Some(o) = &step.outputs {
            plan.add_step_outputs(o);
        }
        let (start_ms, end_ms) = times.get(&step.id).copied().unwrap_or((None, None));
        outcome.steps.push(StepRun {
            id: step.id.clone(),
            uses: step.uses.clone(),
            status: step.status,
            start_ms,
            end_ms,
            plan,
            outputs: step.outputs.clone(),
            error: step.error.as_ref().map(ToString::to_string),
        });
    }
    for step in &report.steps {
        if let Some(o) = &step.outputs {
            if o.get("changes")
                .is_some_and(|c| c == drflow_engine::REDACTED)
            {
                outcome.hidden.push(step.id.clone());
            }
            outcome.plan.add_step_outputs(o);
        }
        if let Some(e) = &step.error {
            outcome.failed.push((step.id.clone(), e.to_string()));
        }
    }
    if outcome.would_fail && outcome.failed.is_empty() {
        outcome
            .failed
            .extend(report.errors.iter().map(|e| (String::new(), e.clone())));
    }
    scrub(&mut outcome, &secrets);
    Ok(outcome)
}

/// Rolls back the run `state` of `rb` on a scratch copy of the world and returns what it
/// deleted.
pub fn plan_rollback(
    global: &Global,
    rb: &mut Runbook,
    state: &RunState,
    params: &Outputs,
) -> Result<Outcome, Failure> {
    let runtime = Runtime::start(&crate::cloud_config(global))?;
    let scratch = scratch_registry(global, &runtime)?;
    let real = bind(rb, &scratch);
    let (_tx, stop) = watch::channel(Stop::No);
    let mut sink = Recorder::default();
    let report = quietly(
        &runtime,
        drflow_engine::rollback(rb, state, params, runtime.clock(), &mut sink, stop),
    );
    unbind(rb, real);
    let report = report?;
    let mut outcome = Outcome {
        plan: Plan::default(),
        failed: Vec::new(),
        undone: report.undone.clone(),
        hidden: Vec::new(),
        would_fail: report.status != RunStatus::RolledBack,
        steps: Vec::new(),
        outputs: Outputs::new(),
        duration_ms: 0,
    };
    outcome
        .plan
        .add_lines(report.deleted.iter().map(String::as_str));
    if let Some((step, e)) = &report.failed {
        outcome.failed.push((step.clone(), e.to_string()));
    }
    scrub(&mut outcome, &run_secrets(rb, params));
    Ok(outcome)
}

/// Each step's first start and its end (succeeded, failed, skipped or interrupted), in
/// milliseconds from the run's start, read from the run's events.
fn step_times(
    events: &[RunEvent],
) -> std::collections::HashMap<String, (Option<u64>, Option<u64>)> {
    let mut times = std::collections::HashMap::new();
    let Some(origin) = events.iter().find_map(|e| match e {
        RunEvent::RunStarted { at, .. } => Some(*at),
        _ => None,
    }) else {
        return times;
    };
    let ms = |at: f64| ((at - origin).max(0.0) * 1000.0).round() as u64;
    for e in events {
        let (step, at, ends) = match e {
            RunEvent::StepStarted { step, at, .. } => (step, *at, false),
            RunEvent::StepSucceeded { step, at, .. }
            | RunEvent::StepFailed { step, at, .. }
            | RunEvent::StepSkipped { step, at, .. }
            | RunEvent::StepInterrupted { step, at } => (step, *at, true),
            _ => continue,
        };
        let entry: &mut (Option<u64>, Option<u64>) = times.entry(step.clone()).or_default();
        if entry.0.is_none() {
            entry.0 = Some(ms(at));
        }
        if ends {
            entry.1 = Some(ms(at));
        }
    }
    times
}

fn scratch_registry(global: &Global, runtime: &Runtime) -> Result<Registry, Failure> {
    drflow_steps::scratch_registry(&crate::cloud_config(global), runtime.clock()).map_err(|e| {
        Failure {
            diagnostics: Vec::new(),
            code: EXIT_FAILED,
            message: format!("error: cannot make a scratch copy of the world to plan on: {e}"),
        }
    })
}

/// Binds `rb`'s steps to the step types of `registry`; returns the types they had.
fn bind(rb: &mut Runbook, registry: &Registry) -> Vec<Arc<dyn StepType>> {
    rb.steps
        .iter_mut()
        .map(|step| match registry.get(&step.uses) {
            Some(t) => std::mem::replace(&mut step.step_type, Arc::clone(t)),
            None => Arc::clone(&step.step_type),
        })
        .collect()
}

/// Puts back the step types [`bind`] returned.
fn unbind(rb: &mut Runbook, types: Vec<Arc<dyn StepType>>) {
    for (step, t) in rb.steps.iter_mut().zip(types) {
        step.step_type = t;
    }
}

/// Runs `work` on `runtime` with logging off: a step's "Created" log line would claim what did
/// not happen.
fn quietly<T, E: std::fmt::Display>(
    runtime: &Runtime,
    work: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, Failure> {
    tracing::subscriber::with_default(tracing::subscriber::NoSubscriber::default(), || {
        runtime.block_on(work)
    })
    .map_err(|e| Failure {
        diagnostics: Vec::new(),
        code: EXIT_FAILED,
        message: format!("error: the plan could not be made: {e}"),
    })
}

/// The secret parameters' values, the set a run adds derived secrets to.
fn run_secrets(rb: &Runbook, params: &Outputs) -> Secrets {
    Secrets::from_params(params, &rb.secret_params())
}

/// Secrets never show, not even inside a drifted value.
fn scrub(outcome: &mut Outcome, secrets: &Secrets) {
    if secrets.is_empty() {
        return;
    }
    for c in &mut outcome.plan.changes {
        c.name = secrets.scrub(&c.name).into_owned();
        if let Some(d) = c.detail.as_mut() {
            *d = secrets.scrub(d).into_owned();
        }
    }
    for (_, e) in &mut outcome.failed {
        *e = secrets.scrub(e).into_owned();
    }
    for step in &mut outcome.steps {
        for c in &mut step.plan.changes {
            c.name = secrets.scrub(&c.name).into_owned();
            if let Some(d) = c.detail.as_mut() {
                *d = secrets.scrub(d).into_owned();
            }
        }
        if let Some(e) = step.error.as_mut() {
            *e = secrets.scrub(e).into_owned();
        }
        for v in step.outputs.iter_mut().flat_map(|o| o.values_mut()) {
            scrub_value(v, secrets);
        }
    }
    for v in outcome.outputs.values_mut() {
        scrub_value(v, secrets);
    }
}

/// Scrubs every string inside `v`.
fn scrub_value(v: &mut serde_json::Value, secrets: &Secrets) {
    match v {
        serde_json::Value::String(s) => *s = secrets.scrub(s).into_owned(),
        serde_json::Value::Array(items) => items.iter_mut().for_each(|i| scrub_value(i, secrets)),
        serde_json::Value::Object(map) => map.values_mut().for_each(|i| scrub_value(i, secrets)),
        _ => {}
    }
}

/// The plan as text: one line per resource, the failures, a count line.
pub fn text(outcome: &Outcome) -> String {
    let mut s = String::new();
    if outcome.plan.is_empty() && outcome.failed.is_empty() && outcome.hidden.is_empty() {
        s.push_str("No changes: the world already matches the runbook.\n");
    }
    for step in &outcome.hidden {
        s.push_str(&format!(
            "? step `{step}`: its changes are not shown, because its inputs derive from a secret\n"
        ));
    }
    for c in &outcome.plan.changes {
        s.push_str(&format!("{c}\n"));
    }
    for (step, error) in &outcome.failed {
        if step.is_empty() {
            s.push_str(&format!("! the run would fail: {error}\n"));
        } else {
            s.push_str(&format!("! step `{step}` would fail: {error}\n"));
        }
    }
    s.push_str(&outcome.plan.count_line());
    s.push('\n');
    s
}

/// `drflow run FILE --plan`: prints the plan; exit 0, or 1 when the run would fail.
pub fn cmd_plan(
    global: &Global,
    rb: &mut Runbook,
    params: &Outputs,
    file: &std::path::Path,
    output: OutputFormat,
) -> Result<u8, Failure> {
    eprintln!(
        "drflow: plan of {} ({}) on target {}: run against a scratch copy of the world; nothing \
         is changed, journaled or locked",
        rb.name,
        file.display(),
        global.target.name()
    );
    let outcome = plan_run(global, rb, params)?;
    let (create, change, delete) = outcome.plan.counts();
    match output {
        OutputFormat::Text => {
            out!("{}", text(&outcome));
            if create > 0 {
                outln!(
                    "note: ids and ARNs of resources to be created are known only once they \
                     exist; on the scratch copy they got stand-in ids, so values derived from \
                     them may differ in the real run"
                );
            }
        }
        OutputFormat::Json => outln!(
            "{:#}",
            json!({
                "plan": {
                    "runbook": rb.name,
                    "target": global.target.name(),
                    "create": create,
                    "change": change,
                    "delete": delete,
                    "changes": outcome.plan.changes,
                    "hidden": outcome.hidden,
                    "failed": outcome.failed.iter().map(|(step, error)| json!({"step": step, "error": error})).collect::<Vec<_>>(),
                }
            })
        ),
    }
    Ok(if outcome.would_fail {
        EXIT_FAILED
    } else {
        EXIT_OK
    })
}
