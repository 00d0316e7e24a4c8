//! Rollback: undo a run's succeeded steps in reverse dependency order.
//!
//! Deciding and doing are split: [`plan_rollback`] is pure (runbook + [`RunState`] → what to undo,
//! in order); [`rollback`] performs the plan, journaling `undo_started` before each undo and
//! `undo_succeeded` / `undo_failed` after it.
//!
//! - Order: the reverse of a topological order of the DAG, so a step is undone only after every
//!   step that needs it was undone.
//! - Resumable: a step already undone (per the journal) is not undone again; one whose undo was
//!   started and never finished, or failed, is undone again (undo must be idempotent too).
//! - A step type without an undo action stays as it is and is listed in the report.
//! - The first undo that fails (after its retry policy) stops the unwind; the report says exactly
//!   which steps remain done and not undone, for a human to finish.
//!
//! A rollback of a run that already finished opens with `run_resumed` and ends with
//! `run_finished` (`rolled_back`, `rollback_failed`, or `interrupted` if asked to stop).

use std::fmt;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;

use crate::clock::{RunClock, SharedClock};
use crate::compile::Runbook;
use crate::event::{RunEvent, RunSink, RunStatus, SinkError};
use crate::scheduler::{Stop, backoff, evaluate_watched};
use crate::scope::Scope;
use crate::secret_flow::SecretFlow;
use crate::secrets::Secrets;
use crate::state::{RunState, StepPhase};
use crate::step::{Outputs, StepContext, StepError};

/// What a rollback will do, decided from the runbook and the journal alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RollbackPlan {
    /// Steps to undo, in this order (step indexes into the runbook).
    pub undo: Vec<usize>,
    /// Steps the journal says were already undone.
    pub already_undone: Vec<String>,
    /// Steps that succeeded but whose type has no undo action: they stay as they are.
    pub no_undo: Vec<String>,
}

/// Decides what to undo: every step in state succeeded / undoing / undo_failed whose type has an
/// undo, in reverse topological order.
pub fn plan_rollback(runbook: &Runbook, state: &RunState) -> RollbackPlan {
    let order = runbook
        .dag
        .topo_order()
        .unwrap_or_else(|| (0..runbook.steps.len()).collect());
    let mut plan = RollbackPlan {
        undo: Vec::new(),
        already_undone: Vec::new(),
        no_undo: Vec::new(),
    };
    for &i in order.iter().rev() {
        let step = &runbook.steps[i];
        match state.step_status(&step.id) {
            StepPhase::Undone => plan.already_undone.push(step.id.clone()),
            StepPhase::Succeeded | StepPhase::Undoing | StepPhase::UndoFailed => {
                if step.step_type.spec().has_undo {
                    plan.undo.push(i);
                } else {
                    plan.no_undo.push(step.id.clone());
                }
            }
            _ => {}
        }
    }
    plan
}

/// What a rollback did, and what is left for a human.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RollbackReport {
    /// How the rollback ended: `rolled_back`, `rollback_failed` or `interrupted`.
    pub status: RunStatus,
    /// Steps undone by this rollback, in order.
    pub undone: Vec<String>,
    /// Steps a previous rollback had already undone.
    pub already_undone: Vec<String>,
    /// The undo that failed, with its error.
    pub failed: Option<(String, StepError)>,
    /// Steps still done and not undone that have an undo (the failed one first), in the order a
    /// new `drflow rollback` would undo them.
    pub remaining: Vec<String>,
    /// Steps that succeeded and have no undo action: they stay as they are.
    pub no_undo: Vec<String>,
    /// Resources the undos deleted and kept, summed over the steps whose undo reports them
    /// (cloud steps list `deleted` and `kept`: they delete only what the run created).
    pub resources_deleted: usize,
    /// Resources the undos left in place because the run did not create them (one step kept
    /// and another deleted, when two steps share it, counts as deleted).
    pub resources_kept: usize,
    /// What the undos deleted, one line per resource as the steps report it (cloud steps:
    /// `deleted <kind> <name> (<region>)`), in the order they were deleted. A rollback run on a
    /// scratch copy of the world fills this to say what the real one would delete.
    pub deleted: Vec<String>,
}

impl fmt::Display for RollbackReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "rollback {}", self.status.name())?;
        if !self.undone.is_empty() {
            writeln!(f, "  undone:          {}", self.undone.join(", "))?;
        }
        if self.resources_deleted + self.resources_kept > 0 {
            writeln!(
                f,
                "  resources:       {} deleted, {} kept (they were there before this run)",
                self.resources_deleted, self.resources_kept
            )?;
        }
        if !self.already_undone.is_empty() {
            writeln!(f, "  already undone:  {}", self.already_undone.join(", "))?;
        }
        if let Some((step, error)) = &self.failed {
            writeln!(f, "  undo failed:     {step}: {error}")?;
        }
        if !self.remaining.is_empty() {
            writeln!(
                f,
                "  still done, NOT undone: {}  (fix the cause, then run `drflow rollback` again)",
                self.remaining.join(", ")
            )?;
        }
        if !self.no_undo.is_empty() {
            writeln!(
                f,
                "  no undo action (left as they are): {}",
                self.no_undo.join(", ")
            )?;
        }
        Ok(())
    }
}

/// Performs the rollback of `state` (a run of `runbook`), journaling to `sink`.
///
/// `params` are the run's resolved parameters (secrets in clear: undo inputs are evaluated from
/// them and from the journaled outputs). `clock` is the clock of the command that rolls back
/// (as [`crate::RunOptions::clock`]): it stamps the events, gives `run.elapsed_seconds` (since
/// the rollback began) and is what the undos get. Stops before the next undo when `stop` asks to.
pub async fn rollback(
    runbook: &Runbook,
    state: &RunState,
    params: &Outputs,
    clock: SharedClock,
    sink: &mut dyn RunSink,
    mut stop: watch::Receiver<Stop>,
) -> Result<RollbackReport, SinkError> {
    let plan = plan_rollback(runbook, state);
    let time = RunClock::start(clock);
    sink.record(&RunEvent::RunResumed {
        at: time.started_at(),
    })?;
    let scope = Scope::new(&state.run_id, state.started_at, params);
    // Undo inputs are evaluated again: what they derive from secrets is scrubbed out of the
    // undo's error, which is journaled and reported.
    let flow = SecretFlow::of(runbook);
    let derived = Secrets::default();
    for (id, s) in &state.steps {
        scope.set_step(id, s.status.name(), s.outputs.as_ref());
    }
    let mut report = RollbackReport {
        status: RunStatus::RolledBack,
        undone: Vec::new(),
        already_undone: plan.already_undone.clone(),
        failed: None,
        remaining: Vec::new(),
        no_undo: plan.no_undo.clone(),
        resources_deleted: 0,
        resources_kept: 0,
        deleted: Vec::new(),
    };
    // What the undos kept, as `kept <what>`: a resource one step kept because it found it
    // and another step deleted because it created it (two steps share it) is not kept.
    let mut kept: Vec<String> = Vec::new();
    for (n, &i) in plan.undo.iter().enumerate() {
        if *stop.borrow_and_update() != Stop::No {
            report.status = RunStatus::Interrupted;
            report.remaining = ids(runbook, &plan.undo[n..]);
            break;
        }
        let step = &runbook.steps[i];
        sink.record(&RunEvent::UndoStarted {
            step: step.id.clone(),
            at: time.now(),
        })?;
        let outcome = undo_one(runbook, i, state, &scope, &time, &flow, &derived).await;
        match outcome {
            Ok(outputs) => {
                let count = |key: &str| {
                    outputs
                        .get(key)
                        .and_then(|v| v.as_array())
                        .map_or(0, Vec::len)
                };
                report.resources_deleted += count("deleted");
                kept.extend(
                    outputs
                        .get("kept")
                        .and_then(|v| v.as_array())
                        .into_iter()
                        .flatten()
                        .map(|l| l.as_str().unwrap_or_default().to_owned()),
                );
                if let Some(lines) = outputs.get("deleted").and_then(|v| v.as_array()) {
                    report
                        .deleted
                        .extend(lines.iter().filter_map(|l| l.as_str()).map(str::to_owned));
                }
                sink.record(&RunEvent::UndoSucceeded {
                    step: step.id.clone(),
                    at: time.now(),
                })?;
                report.undone.push(step.id.clone());
            }
            Err(mut error) => {
                if let std::borrow::Cow::Owned(clean) = derived.scrub(&error.message) {
                    error.message = clean;
                }
                sink.record(&RunEvent::UndoFailed {
                    step: step.id.clone(),
                    error: error.clone(),
                    at: time.now(),
                })?;
                report.status = RunStatus::RollbackFailed;
                report.failed = Some((step.id.clone(), error));
                report.remaining = ids(runbook, &plan.undo[n..]);
                break;
            }
        }
        sink.flush()?;
    }
    report.resources_kept = kept
        .iter()
        .filter(|k| {
            let what = k.strip_prefix("kept ").unwrap_or(k);
            !report
                .deleted
                .iter()
                .any(|d| d.strip_prefix("deleted ") == Some(what))
        })
        .count();
    sink.record(&RunEvent::RunFinished {
        status: report.status,
        outputs: state.outputs.clone(),
        at: time.now(),
    })?;
    sink.flush()?;
    Ok(report)
}

fn ids(runbook: &Runbook, idx: &[usize]) -> Vec<String> {
    idx.iter().map(|&i| runbook.steps[i].id.clone()).collect()
}

/// Undoes one step, retrying retryable errors under the step's retry policy.
async fn undo_one(
    runbook: &Runbook,
    i: usize,
    state: &RunState,
    scope: &Scope,
    time: &RunClock,
    flow: &SecretFlow,
    derived: &Secrets,
) -> Result<Outputs, StepError> {
    let step = &runbook.steps[i];
    let input = match &step.literal_input {
        Some(input) => input.clone(),
        None => evaluate_watched(
            &step.with,
            scope,
            time.elapsed_seconds(),
            flow,
            derived,
            flow.secret_inputs(i),
        )?,
    };
    let previous = state.step(&step.id).and_then(|s| s.outputs.clone());
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let ctx = StepContext {
            run_id: state.run_id.clone(),
            runbook: runbook.name.clone(),
            step_id: step.id.clone(),
            attempt,
            previous_outputs: previous.clone(),
            reevaluate: None,
            secret_inputs: flow.secret_inputs(i).to_vec(),
            clock: time.clock().clone(),
            notes: state
                .step(&step.id)
                .map(|s| s.notes.clone())
                .unwrap_or_default(),
            // An undo writes nothing ahead: it only removes what the journal says was made.
            notebook: None,
        };
        let fut = step.step_type.undo(&ctx, &input);
        let result = match step.timeout {
            None => fut.await,
            Some(limit) => tokio::time::timeout(limit, fut).await.unwrap_or_else(|_| {
                Err(StepError::retryable(
                    "timeout",
                    format!(
                        "the undo took longer than the step's timeout of {}",
                        crate::duration::format_duration(limit)
                    ),
                ))
            }),
        };
        match result {
            Ok(outputs) => return Ok(outputs),
            Err(e) => {
                let retryable = e.retryable || step.retry.on.contains(&e.kind);
                if !retryable || attempt >= step.retry.attempts {
                    return Err(e);
                }
                let wait: Duration = backoff(&step.retry, attempt);
                tracing::warn!(step = %step.id, attempt, error = %e, "Undo failed; retrying");
                tokio::time::sleep(wait).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Recorder;
    use crate::scheduler::{RunOptions, run};
    use crate::step::{Registry, StepFuture, StepSpec, StepType, ValueType};
    use std::sync::{Arc, Mutex};

    /// `t.res`: creates "resource" `name` (logs `do name`), undo logs `undo name` and fails when
    /// `name` is in the failing set. `t.plain`: no undo. `t.boom`: always fails.
    struct Res {
        spec: StepSpec,
        log: Arc<Mutex<Vec<String>>>,
        failing: Arc<Mutex<Vec<String>>>,
    }

    impl StepType for Res {
        fn spec(&self) -> &StepSpec {
            &self.spec
        }
        fn run<'a>(&'a self, _ctx: &'a StepContext, input: &'a Outputs) -> StepFuture<'a> {
            Box::pin(async move {
                let name = input["name"].as_str().unwrap_or_default().to_owned();
                if self.spec.name == "t.boom" {
                    return Err(StepError::permanent("failed", "boom"));
                }
                self.log.lock().unwrap().push(format!("do {name}"));
                let mut out = Outputs::new();
                out.insert("id".into(), format!("res-{name}").into());
                Ok(out)
            })
        }
        fn undo<'a>(&'a self, ctx: &'a StepContext, input: &'a Outputs) -> StepFuture<'a> {
            Box::pin(async move {
                let name = input["name"].as_str().unwrap_or_default().to_owned();
                let prev = ctx.previous_outputs.as_ref().map(|o| o["id"].clone());
                assert_eq!(prev, Some(format!("res-{name}").into()));
                if self.failing.lock().unwrap().contains(&name) {
                    return Err(StepError::permanent(
                        "failed",
                        format!("cannot delete {name}"),
                    ));
                }
                self.log.lock().unwrap().push(format!("undo {name}"));
                Ok(Outputs::new())
            })
        }
    }

    struct Fixture {
        log: Arc<Mutex<Vec<String>>>,
        failing: Arc<Mutex<Vec<String>>>,
        runbook: Runbook,
    }

    fn fixture() -> Fixture {
        let log = Arc::new(Mutex::new(Vec::new()));
        let failing = Arc::new(Mutex::new(Vec::new()));
        let mut registry = Registry::new();
        for (name, undo) in [("t.res", true), ("t.plain", false), ("t.boom", false)] {
            let mut spec =
                StepSpec::new(name, "test").required("name", ValueType::String, "resource name");
            spec = spec.output("id", ValueType::String, "id");
            if undo {
                spec = spec.with_undo();
            }
            registry.register(Arc::new(Res {
                spec,
                log: log.clone(),
                failing: failing.clone(),
            }));
        }
        // a -> b -> d(boom); a -> c(plain); b, c and d's failure trigger the unwind.
        let source = "runbook: rb
on_failure: rollback
steps:
  - id: a
    uses: t.res
    with: { name: a }
  - id: b
    needs: [a]
    uses: t.res
    with: { name: \"${{ steps.a.outputs.id }}-b\" }
  - id: c
    needs: [a]
    uses: t.plain
    with: { name: c }
  - id: d
    needs: [b, c]
    uses: t.boom
    with: { name: d }
";
        let runbook = match crate::compile::compile("rb.yaml", source, &registry) {
            Ok(rb) => rb,
            Err(d) => panic!("{}", d.render(&[("rb.yaml", source)])),
        };
        Fixture {
            log,
            failing,
            runbook,
        }
    }

    async fn failed_run(f: &Fixture) -> Recorder {
        let recorder = Recorder::default();
        let mut sink = recorder.clone();
        let (_tx, rx) = watch::channel(Stop::No);
        let report = run(
            &f.runbook,
            &Outputs::new(),
            RunOptions::new("r1"),
            &mut sink,
            rx,
        )
        .await
        .unwrap();
        assert_eq!(report.status, RunStatus::Failed);
        recorder
    }

    async fn unwind(f: &Fixture, recorder: &Recorder) -> RollbackReport {
        let state = RunState::replay(&recorder.events()).unwrap();
        let mut sink = recorder.clone();
        let (_tx, rx) = watch::channel(Stop::No);
        rollback(
            &f.runbook,
            &state,
            &Outputs::new(),
            Arc::new(crate::clock::WallClock),
            &mut sink,
            rx,
        )
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn undoes_succeeded_steps_in_reverse_dependency_order() {
        let f = fixture();
        let rec = failed_run(&f).await;
        let state = RunState::replay(&rec.events()).unwrap();
        let plan = plan_rollback(&f.runbook, &state);
        assert_eq!(ids(&f.runbook, &plan.undo), vec!["b", "a"]);
        assert_eq!(plan.no_undo, vec!["c"]);

        let report = unwind(&f, &rec).await;
        assert_eq!(report.status, RunStatus::RolledBack);
        assert_eq!(report.undone, vec!["b", "a"]);
        assert!(report.remaining.is_empty());
        let log = f.log.lock().unwrap().clone();
        let undos: Vec<_> = log.iter().filter(|l| l.starts_with("undo")).collect();
        assert_eq!(undos, vec!["undo res-a-b", "undo a"]);
        assert_eq!(log.len(), 5, "{log:?}"); // do a, do c, do res-a-b, and the two undos
        // The whole history, run and rollback, satisfies the transition table.
        let state = RunState::replay(&rec.events()).unwrap();
        assert_eq!(state.status, RunStatus::RolledBack);
        assert_eq!(state.step_status("a"), StepPhase::Undone);
        assert_eq!(state.step_status("c"), StepPhase::Succeeded);
    }

    /// A rollback is on the clock it is given, like a run: a sim rollback's journal is on
    /// virtual time, not the wall clock.
    #[tokio::test(start_paused = true)]
    async fn a_rollback_stamps_its_events_on_the_clock_it_is_given() {
        let f = fixture();
        let rec = failed_run(&f).await;
        let before = rec.events().len();
        let state = RunState::replay(&rec.events()).unwrap();
        let mut sink = rec.clone();
        let (_tx, rx) = watch::channel(Stop::No);
        let clock = Arc::new(crate::clock::VirtualClock::new(1_767_225_600_000));
        let report = rollback(&f.runbook, &state, &Outputs::new(), clock, &mut sink, rx)
            .await
            .unwrap();
        assert_eq!(report.status, RunStatus::RolledBack);
        let stamps: Vec<f64> = rec.events()[before..]
            .iter()
            .map(|e| match e {
                RunEvent::RunResumed { at }
                | RunEvent::UndoStarted { at, .. }
                | RunEvent::UndoSucceeded { at, .. }
                | RunEvent::RunFinished { at, .. } => *at,
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(stamps.len(), 6, "{stamps:?}");
        assert!(stamps.iter().all(|&t| t == 1_767_225_600.0), "{stamps:?}");
    }

    #[tokio::test]
    async fn a_failing_undo_stops_and_reports_what_is_left_then_a_second_rollback_finishes() {
        let f = fixture();
        let rec = failed_run(&f).await;
        f.failing.lock().unwrap().push("a".into());
        let report = unwind(&f, &rec).await;
        assert_eq!(report.status, RunStatus::RollbackFailed);
        assert_eq!(report.undone, vec!["b"]);
        assert_eq!(report.failed.as_ref().map(|(s, _)| s.as_str()), Some("a"));
        assert_eq!(report.remaining, vec!["a"]);
        assert_eq!(report.no_undo, vec!["c"]);
        let text = report.to_string();
        assert!(text.contains("NOT undone: a"), "{text}");

        // Fixed: the next rollback undoes only what is left; b is not undone twice.
        f.failing.lock().unwrap().clear();
        let report = unwind(&f, &rec).await;
        assert_eq!(report.status, RunStatus::RolledBack);
        assert_eq!(report.undone, vec!["a"]);
        assert_eq!(report.already_undone, vec!["b"]);
        let undos: Vec<_> = f
            .log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.starts_with("undo"))
            .cloned()
            .collect();
        assert_eq!(undos, vec!["undo res-a-b", "undo a"]);
        RunState::replay(&rec.events()).unwrap();
    }

    #[tokio::test]
    async fn a_rollback_that_crashed_mid_undo_undoes_that_step_again() {
        let f = fixture();
        let rec = failed_run(&f).await;
        // Simulate a crash right after undo_started for b.
        let mut sink = rec.clone();
        sink.record(&RunEvent::RunResumed {
            at: crate::event::now(),
        })
        .unwrap();
        sink.record(&RunEvent::UndoStarted {
            step: "b".into(),
            at: crate::event::now(),
        })
        .unwrap();
        let report = unwind(&f, &rec).await;
        assert_eq!(report.undone, vec!["b", "a"]);
        assert_eq!(
            RunState::replay(&rec.events()).unwrap().status,
            RunStatus::RolledBack
        );
    }

    #[tokio::test]
    async fn stop_before_the_next_undo_leaves_the_rest() {
        let f = fixture();
        let rec = failed_run(&f).await;
        let state = RunState::replay(&rec.events()).unwrap();
        let (tx, rx) = watch::channel(Stop::No);
        tx.send(Stop::Graceful).unwrap();
        let mut sink = rec.clone();
        let report = rollback(
            &f.runbook,
            &state,
            &Outputs::new(),
            Arc::new(crate::clock::WallClock),
            &mut sink,
            rx,
        )
        .await
        .unwrap();
        assert_eq!(report.status, RunStatus::Interrupted);
        assert_eq!(report.remaining, vec!["b", "a"]);
    }
}
