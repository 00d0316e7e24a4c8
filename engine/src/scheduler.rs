//! Runs a compiled runbook: ready steps start at once, up to a parallelism bound; failures skip
//! their dependants; retries back off with full jitter; timeouts and interruptions stop cleanly.
//!
//! One coordinator owns all run state and is the only writer of events: every state change goes
//! to the [`RunSink`] before the coordinator acts on it (starts a step, starts a retry, lets a
//! dependant go). Step attempts run as tokio tasks and report back to the coordinator.
//!
//! Time: every timestamp, step duration and `run.elapsed_seconds` reads the run's clock
//! ([`RunOptions::clock`]); backoff, step and run timeouts and the grace period are tokio timers,
//! which run on the same time (virtual on the paused runtime of a sim run, wall time otherwise).

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::clock::{RunClock, SharedClock, WallClock};
use crate::compile::{Condition, Runbook, Step};
use crate::event::{RunEvent, RunSink, RunStatus, SinkError};
use crate::scope::Scope;
use crate::secret_flow::SecretFlow;
use crate::secrets::{REDACTED, Secrets};
use crate::step::{Note, Notebook, Outputs, Reevaluate, StepContext, StepError, StepType};

/// How a run is asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Stop {
    /// Keep going.
    #[default]
    No,
    /// Start nothing new; give running steps the grace period, then cancel them.
    Graceful,
    /// Cancel running steps now.
    Now,
}

/// What a resumed run already knows from its journal.
#[derive(Debug, Clone, Default)]
pub struct Prior {
    /// Steps that succeeded, with their outputs: they are not run again.
    pub succeeded: HashMap<String, Outputs>,
    /// Attempts already made per step, so attempt numbers carry on.
    pub attempts: HashMap<String, u32>,
    /// What those attempts wrote down ([`StepContext::note`]), per step, oldest first.
    pub notes: HashMap<String, Vec<Value>>,
}

/// Settings of one run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The run's id.
    pub run_id: String,
    /// At most this many steps at once; `None` is unbounded.
    pub max_parallel: Option<usize>,
    /// The whole run's deadline.
    pub timeout: Option<Duration>,
    /// How long running steps may finish after a graceful stop before they are cancelled.
    pub grace: Duration,
    /// Present when resuming a run.
    pub prior: Option<Prior>,
    /// The parameters as the journal may show them (secrets redacted).
    pub redacted_params: Value,
    /// Where the run adds the value of every expression that reads a secret, as it evaluates
    /// it, so that the sink (journal, display) and the log writer can scrub it out of text
    /// (`Secrets` clones share their values). Give the same set the sink scrubs with.
    pub secrets: Secrets,
    /// The run's clock: every event's timestamp, step durations, `run.elapsed_seconds`, and the
    /// clock steps get ([`StepContext::clock`]). Default [`WallClock`]; a run on the simulated
    /// cloud gives a [`crate::VirtualClock`] and runs on a paused tokio runtime, so that the
    /// engine's timers (backoff, timeouts, grace) are on the same virtual time.
    pub clock: SharedClock,
}

impl RunOptions {
    /// Defaults for a new run with this id.
    pub fn new(run_id: impl Into<String>) -> RunOptions {
        RunOptions {
            run_id: run_id.into(),
            max_parallel: None,
            timeout: None,
            grace: Duration::from_secs(10),
            prior: None,
            redacted_params: Value::Object(Default::default()),
            secrets: Secrets::default(),
            clock: Arc::new(WallClock),
        }
    }
}

/// Where a step ended up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// Never started (the run stopped first).
    NotStarted,
    /// Succeeded (in this run or, when resuming, before).
    Succeeded,
    /// Failed after its last attempt.
    Failed,
    /// Did not run: its condition was false, or something it needs failed.
    Skipped,
    /// Was running when the run was interrupted.
    Interrupted,
}

impl StepStatus {
    /// The name used in reports and in `steps.<id>.status`.
    pub fn name(self) -> &'static str {
        match self {
            StepStatus::NotStarted => "not_started",
            StepStatus::Succeeded => "succeeded",
            StepStatus::Failed => "failed",
            StepStatus::Skipped => "skipped",
            StepStatus::Interrupted => "interrupted",
        }
    }
}

/// What happened to one step.
#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    /// Its id.
    pub id: String,
    /// Its type.
    pub uses: String,
    /// Where it ended up.
    pub status: StepStatus,
    /// Attempts made, counting those made before a resume.
    pub attempts: u32,
    /// From its first start to its end, in this run, on the run's clock.
    pub duration_ms: Option<u64>,
    /// The last error, when it failed.
    pub error: Option<StepError>,
    /// Why it was skipped, or a note (e.g. "restored from the journal").
    pub note: Option<String>,
    /// Its outputs, when it succeeded; secret ones are `"***"`.
    pub outputs: Option<Outputs>,
}

/// The result of a run.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// The run's id.
    pub run_id: String,
    /// The runbook's name.
    pub runbook: String,
    /// How it ended.
    pub status: RunStatus,
    /// Every step, in file order.
    pub steps: Vec<StepReport>,
    /// The runbook's outputs; secret ones are `"***"`.
    pub outputs: Outputs,
    /// Run-level problems (an output that could not be evaluated, why it was interrupted).
    pub errors: Vec<String>,
    /// How long the run took on its clock ([`RunOptions::clock`]): virtual time on the
    /// simulated cloud, wall time otherwise.
    pub duration_ms: u64,
}

/// Why a run could not go on at all.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The journal (or another sink) refused an event, so nothing more may happen.
    #[error(transparent)]
    Sink(#[from] SinkError),
}

enum Msg {
    Done {
        idx: usize,
        result: Result<Outputs, StepError>,
    },
    RetryDue {
        idx: usize,
    },
}

/// The step attempts under way: spawned tasks, and those that finished on their first poll.
struct Workers {
    tasks: JoinSet<Msg>,
    ids: HashMap<tokio::task::Id, usize>,
    inline: VecDeque<Msg>,
    /// Notes running attempts send to be journaled ([`StepContext::note`]).
    notes_tx: mpsc::UnboundedSender<Note>,
    notes_rx: mpsc::UnboundedReceiver<Note>,
}

struct Slot {
    status: StepStatus,
    remaining_needs: usize,
    blocked_by: Option<String>,
    attempts: u32,
    attempts_base: u32,
    /// On the run's clock, in milliseconds since the Unix epoch.
    started: Option<u64>,
    ended: Option<u64>,
    error: Option<StepError>,
    note: Option<String>,
    outputs: Option<Outputs>,
    input: Option<Arc<Outputs>>,
    in_flight: bool,
    /// What its attempts wrote down, in this run and before a resume.
    notes: Vec<Value>,
}

/// What a run keeps secret: decided from the runbook before it starts, and the values it derives
/// from secrets as it goes.
struct RunSecrets {
    flow: Arc<SecretFlow>,
    values: Secrets,
    /// Steps restored on resume whose secret outputs the journal holds only as `***`: reading
    /// them would read `***`, not the secret.
    lost: HashSet<usize>,
}

impl RunSecrets {
    /// The outputs expressions see for step `i`, which succeeded before a resume and whose
    /// journaled outputs are `journaled`: secret ones are back in clear when the step's outputs
    /// are its input (its `with:` is evaluated again); otherwise they stay `***` and the step is
    /// noted as lost, so that nothing reads them.
    fn restore(
        &mut self,
        i: usize,
        step: &Step,
        journaled: &Outputs,
        scope: &Scope,
        time: &RunClock,
    ) -> Option<Outputs> {
        if !self.flow.has_secret_outputs(i) {
            return None;
        }
        let reads_lost = step.with.iter().flat_map(|(_, t)| t.exprs()).any(|e| {
            self.flow
                .reads_secret_output_of(&e.refs, &self.lost)
                .is_some()
        });
        if step.step_type.spec().outputs_from_input
            && !reads_lost
            && let Ok(input) = evaluate_watched(
                &step.with,
                scope,
                time.elapsed_seconds(),
                &self.flow,
                &self.values,
                self.flow.secret_inputs(i),
            )
        {
            let mut clear = journaled.clone();
            for (k, v) in input {
                if self.flow.output_is_secret(i, &k) {
                    clear.insert(k, v);
                }
            }
            return Some(clear);
        }
        self.lost.insert(i);
        None
    }

    /// Why step `step` cannot run on: it reads a secret output that was lost (see `lost`).
    fn reads_lost(&self, step: &Step) -> Option<StepError> {
        if self.lost.is_empty() {
            return None;
        }
        let mut templates: Vec<&crate::expr::Template> = step.with.iter().map(|(_, t)| t).collect();
        if let Condition::If(t) = &step.condition {
            templates.push(t);
        }
        let name = templates
            .iter()
            .flat_map(|t| t.exprs())
            .find_map(|e| self.flow.reads_secret_output_of(&e.refs, &self.lost))?;
        let owner = name.split('.').nth(1).unwrap_or_default();
        Some(StepError::invalid_input(format!(
            "it reads `{name}`, a secret output of step `{owner}`, which succeeded before this \
             resume: the journal keeps secret outputs only as `***`, so this run does not have \
             the value (`{owner}` is not run again). Start a new run; or compute the value in a \
             `core.set` step, whose secret outputs a resume evaluates again"
        )))
    }
}

/// Runs a compiled runbook to the end, an interruption or the deadline.
pub async fn run(
    runbook: &Runbook,
    params: &Outputs,
    options: RunOptions,
    sink: &mut dyn RunSink,
    mut stop: watch::Receiver<Stop>,
) -> Result<RunReport, RunError> {
    let time = RunClock::start(options.clock.clone());
    let started_at = time.started_at();
    let resuming = options.prior.is_some();
    if resuming {
        sink.record(&RunEvent::RunResumed { at: started_at })?;
    } else {
        sink.record(&RunEvent::RunStarted {
            run_id: options.run_id.clone(),
            runbook: runbook.name.clone(),
            path: runbook.file.to_string(),
            content_hash: runbook.content_hash.clone(),
            params: options.redacted_params.clone(),
            at: started_at,
            step_hashes: runbook
                .steps
                .iter()
                .map(|s| (s.id.clone(), s.definition_hash.clone()))
                .collect(),
        })?;
    }
    let prior = options.prior.clone().unwrap_or_default();
    let scope = Scope::new(&options.run_id, started_at, params);
    let mut secrets = RunSecrets {
        flow: Arc::new(SecretFlow::of(runbook)),
        values: options.secrets.clone(),
        lost: HashSet::new(),
    };
    let mut slots: Vec<Slot> = runbook
        .steps
        .iter()
        .map(|s| Slot {
            status: StepStatus::NotStarted,
            remaining_needs: s.needs.len(),
            blocked_by: None,
            attempts: 0,
            attempts_base: prior.attempts.get(&s.id).copied().unwrap_or(0),
            started: None,
            ended: None,
            error: None,
            note: None,
            outputs: None,
            input: None,
            in_flight: false,
            notes: prior.notes.get(&s.id).cloned().unwrap_or_default(),
        })
        .collect();
    let mut ready: VecDeque<usize> = (0..slots.len())
        .filter(|&i| slots[i].remaining_needs == 0)
        .collect();
    let (notes_tx, notes_rx) = mpsc::unbounded_channel();
    let mut workers = Workers {
        tasks: JoinSet::new(),
        ids: HashMap::new(),
        inline: VecDeque::new(),
        notes_tx,
        notes_rx,
    };
    let mut running = 0usize;
    let mut waiting_retry = 0usize;
    let max_parallel = options.max_parallel.unwrap_or(usize::MAX).max(1);
    let deadline = options.timeout.map(|t| Instant::now() + t);
    let mut stopping: Option<String> = None;
    let mut grace_deadline: Option<Instant> = None;
    let mut listening = true;
    let mut inline_streak: u64 = 0;
    let mut retry_due: VecDeque<usize> = VecDeque::new();
    let mut run_errors = Vec::new();
    // Whether the run's deadline passed while something was running or waiting for a retry.
    let mut timed_out = false;
    let runbook_name: Arc<str> = Arc::from(runbook.name.as_str());
    let run_id: Arc<str> = Arc::from(options.run_id.as_str());

    loop {
        // Start (or settle without running) every ready step we may start.
        while stopping.is_none() && running < max_parallel {
            // A retry whose backoff is over goes first: it was admitted before the ready steps.
            if let Some(idx) = retry_due.pop_front() {
                running += 1;
                start_attempt(
                    sink,
                    &mut workers,
                    &runbook.steps[idx],
                    &mut slots[idx],
                    idx,
                    &run_id,
                    &runbook_name,
                    &scope,
                    &secrets,
                    &time,
                )?;
                continue;
            }
            let Some(i) = ready.pop_front() else { break };
            let step = &runbook.steps[i];
            if let Some(outputs) = prior.succeeded.get(&step.id) {
                slots[i].note =
                    Some("succeeded before the resume; outputs restored from the journal".into());
                let clear = secrets.restore(i, step, outputs, &scope, &time);
                settle(
                    &time,
                    runbook,
                    &mut slots,
                    &mut ready,
                    &scope,
                    i,
                    StepStatus::Succeeded,
                    Some(outputs.clone()),
                    clear.as_ref(),
                );
                continue;
            }
            match decide(step, i, &slots[i], &scope, &secrets, &time) {
                Decision::Skip(reason) => {
                    sink.record(&RunEvent::StepSkipped {
                        step: step.id.clone(),
                        reason: reason.clone(),
                        at: time.now(),
                    })?;
                    slots[i].note = Some(reason);
                    settle(
                        &time,
                        runbook,
                        &mut slots,
                        &mut ready,
                        &scope,
                        i,
                        StepStatus::Skipped,
                        None,
                        None,
                    );
                }
                Decision::Fail(error) => {
                    sink.record(&RunEvent::StepFailed {
                        step: step.id.clone(),
                        error: error.clone(),
                        at: time.now(),
                    })?;
                    slots[i].error = Some(error);
                    settle(
                        &time,
                        runbook,
                        &mut slots,
                        &mut ready,
                        &scope,
                        i,
                        StepStatus::Failed,
                        None,
                        None,
                    );
                }
                Decision::Run(input) => {
                    let input = Arc::new(input);
                    slots[i].input = Some(input.clone());
                    slots[i].started = Some(time.now_ms());
                    start_attempt(
                        sink,
                        &mut workers,
                        step,
                        &mut slots[i],
                        i,
                        &run_id,
                        &runbook_name,
                        &scope,
                        &secrets,
                        &time,
                    )?;
                    running += 1;
                }
            }
        }
        let all_done = waiting_retry == 0 && retry_due.is_empty() && ready.is_empty();
        if running == 0 && (all_done || stopping.is_some()) {
            if waiting_retry > 0 {
                // Stopping with only backoff timers left: nothing runs, so there is nothing to
                // give a grace period to.
                workers.tasks.abort_all();
                while workers.tasks.join_next().await.is_some() {}
            }
            break;
        }
        let sleep_until = match (grace_deadline, deadline, stopping.is_some()) {
            (Some(g), _, true) => Some(g),
            (_, Some(d), false) => Some(d),
            _ => None,
        };
        // Steps that finish on their first poll never make the coordinator wait, so look for a
        // stop request or a passed deadline here too, or a run of quick steps would ignore both.
        let urgent = (listening && stop.has_changed().unwrap_or(true))
            || sleep_until.is_some_and(|t| Instant::now() >= t);
        let next_inline = if urgent {
            None
        } else {
            workers.inline.pop_front()
        };
        let msg = match next_inline {
            Some(m) => {
                inline_streak += 1;
                if inline_streak.is_multiple_of(256) {
                    // Let other tasks (the signal handler, heartbeats) run during a long streak.
                    tokio::task::yield_now().await;
                }
                m
            }
            None => {
                if workers.inline.is_empty() {
                    sink.flush()?;
                }
                tokio::select! {
                    // A stop request or a deadline goes before further results.
                    biased;
                    changed = stop.changed(), if listening => {
                        if changed.is_err() {
                            // Nobody can ask us to stop any more.
                            listening = false;
                            continue;
                        }
                        let signal = *stop.borrow_and_update();
                        match signal {
                            Stop::No => {}
                            Stop::Graceful => {
                                if stopping.is_none() {
                                    stopping = Some("interrupted".into());
                                    grace_deadline = Some(Instant::now() + options.grace);
                                }
                            }
                            Stop::Now => {
                                stopping.get_or_insert_with(|| "interrupted".into());
                                grace_deadline = Some(Instant::now());
                                listening = false;
                            }
                        }
                        continue;
                    }
                    Some(n) = workers.notes_rx.recv() => {
                        // Written before the attempt goes on: the note is write-ahead. A note
                        // of an attempt that already ended (cancelled) is dropped unanswered.
                        let slot = &mut slots[n.idx];
                        if slot.in_flight {
                            sink.record(&RunEvent::StepNoted {
                                step: runbook.steps[n.idx].id.clone(),
                                attempt: slot.attempts_base + slot.attempts,
                                note: n.note.clone(),
                                at: time.now(),
                            })?;
                            sink.flush()?;
                            slot.notes.push(n.note);
                            let _ = n.ack.send(());
                        }
                        continue;
                    }
                    _ = sleep_opt(sleep_until) => {
                        if stopping.is_none() {
                            // A step whose time runs out at this same instant was woken with
                            // us: let it finish first, so it is not cancelled at its last step.
                            // (What it reports is kept by the cancellation below.)
                            tokio::task::yield_now().await;
                            timed_out = true;
                            stopping = Some("timeout".into());
                            // The timeout bounds the whole run: no grace period on top of it.
                            grace_deadline = Some(Instant::now());
                        } else {
                            // The grace period is over: cancel whatever still runs.
                            workers.tasks.abort_all();
                            while let Some(joined) = workers.tasks.join_next_with_id().await {
                                // An attempt that finished before the abort keeps its result: a
                                // step that succeeded must not be reported interrupted and run
                                // again on resume.
                                if let Ok((id, msg @ Msg::Done { .. })) = joined {
                                    workers.ids.remove(&id);
                                    workers.inline.push_back(msg);
                                }
                            }
                            // Finished attempts still report below.
                            running = workers.inline.len();
                            waiting_retry = 0;
                            grace_deadline = None;
                        }
                        continue;
                    }
                    joined = workers.tasks.join_next_with_id() => match joined {
                        None => continue,
                        Some(Ok((id, m))) => {
                            workers.ids.remove(&id);
                            m
                        }
                        Some(Err(e)) => {
                            let Some(idx) = workers.ids.remove(&e.id()) else { continue };
                            if e.is_cancelled() {
                                continue;
                            }
                            Msg::Done {
                                idx,
                                result: Err(StepError::permanent(
                                    "panic",
                                    format!("the step panicked ({e}); this is a bug in the step type"),
                                )),
                            }
                        }
                    },
                }
            }
        };
        match msg {
            Msg::RetryDue { idx } => {
                waiting_retry -= 1;
                if stopping.is_none() {
                    // Started by the loop above, within `--max-parallel` like any other start.
                    retry_due.push_back(idx);
                }
            }
            Msg::Done { idx, result } => {
                running -= 1;
                slots[idx].in_flight = false;
                let step = &runbook.steps[idx];
                let attempt = slots[idx].attempts_base + slots[idx].attempts;
                match result {
                    Ok(outputs) => {
                        // Secret outputs are journaled and reported as `***`; expressions of
                        // later steps see them in clear.
                        let recorded = secrets.flow.redact_outputs(idx, &outputs).into_owned();
                        sink.record(&RunEvent::StepSucceeded {
                            step: step.id.clone(),
                            attempt,
                            outputs: recorded.clone(),
                            at: time.now(),
                        })?;
                        settle(
                            &time,
                            runbook,
                            &mut slots,
                            &mut ready,
                            &scope,
                            idx,
                            StepStatus::Succeeded,
                            Some(recorded),
                            Some(&outputs),
                        );
                    }
                    Err(error) => {
                        let retryable = error.retryable || step.retry.on.contains(&error.kind);
                        let will_retry = retryable
                            && slots[idx].attempts < step.retry.attempts
                            && stopping.is_none();
                        sink.record(&RunEvent::AttemptFailed {
                            step: step.id.clone(),
                            attempt,
                            error: error.clone(),
                            will_retry,
                            at: time.now(),
                        })?;
                        if will_retry {
                            let wait = backoff(&step.retry, slots[idx].attempts);
                            waiting_retry += 1;
                            slots[idx].error = Some(error);
                            workers.tasks.spawn(async move {
                                tokio::time::sleep(wait).await;
                                Msg::RetryDue { idx }
                            });
                        } else {
                            sink.record(&RunEvent::StepFailed {
                                step: step.id.clone(),
                                error: error.clone(),
                                at: time.now(),
                            })?;
                            slots[idx].error = Some(error);
                            settle(
                                &time,
                                runbook,
                                &mut slots,
                                &mut ready,
                                &scope,
                                idx,
                                StepStatus::Failed,
                                None,
                                None,
                            );
                        }
                    }
                }
            }
        }
    }

    // A deadline that passed as the last steps ended stopped nothing: the run is decided by
    // its steps alone.
    let every_step_ended = slots.iter().all(|s| {
        matches!(
            s.status,
            StepStatus::Succeeded | StepStatus::Failed | StepStatus::Skipped
        )
    });
    if timed_out && every_step_ended {
        timed_out = false;
        stopping = None;
    }
    // Whatever was running or waiting for a retry when we stopped was interrupted.
    let interrupted = stopping.is_some();
    if timed_out {
        let cut = slots
            .iter()
            .any(|s| s.in_flight || (s.status == StepStatus::NotStarted && s.attempts > 0));
        run_errors.insert(
            0,
            format!(
                "the run's timeout of {} was reached; {}",
                crate::duration::format_duration(options.timeout.unwrap_or_default()),
                if cut {
                    "running steps were cancelled"
                } else {
                    "the running steps ended at that moment, and the steps after them were not started"
                }
            ),
        );
    }
    for (i, slot) in slots.iter_mut().enumerate() {
        let waiting = slot.status == StepStatus::NotStarted && slot.attempts > 0;
        if interrupted && (slot.in_flight || waiting) {
            sink.record(&RunEvent::StepInterrupted {
                step: runbook.steps[i].id.clone(),
                at: time.now(),
            })?;
            slot.status = StepStatus::Interrupted;
            slot.ended = Some(time.now_ms());
        }
    }
    let failed = slots
        .iter()
        .zip(&runbook.steps)
        .any(|(s, step)| s.status == StepStatus::Failed && !step.continue_on_error);
    let status = if interrupted && !timed_out {
        RunStatus::Interrupted
    } else if interrupted || failed {
        RunStatus::Failed
    } else {
        RunStatus::Succeeded
    };
    let mut outputs = Outputs::new();
    if !interrupted {
        let ctx = scope.context(time.elapsed_seconds());
        let watch = secrets.flow.watch(&secrets.values);
        for (i, (name, t)) in runbook.outputs.iter().enumerate() {
            let secret = secrets.flow.runbook_output_is_secret(i);
            // A secret output is `***` whatever it evaluates to: no need to evaluate one that
            // reads a secret output this resumed run no longer has.
            let lost = secret
                && t.exprs().iter().any(|e| {
                    secrets
                        .flow
                        .reads_secret_output_of(&e.refs, &secrets.lost)
                        .is_some()
                });
            if lost {
                outputs.insert(name.clone(), Value::String(REDACTED.into()));
                continue;
            }
            match t.eval_watched(&ctx, &watch) {
                Ok(v) => {
                    let v = if secret {
                        Value::String(REDACTED.into())
                    } else {
                        v
                    };
                    outputs.insert(name.clone(), v);
                }
                Err(e) => {
                    if status == RunStatus::Succeeded {
                        run_errors.push(format!("output `{name}` could not be evaluated: {e}"));
                    }
                    outputs.insert(name.clone(), Value::Null);
                }
            }
        }
    }
    sink.record(&RunEvent::RunFinished {
        status,
        outputs: outputs.clone(),
        at: time.now(),
    })?;
    sink.flush()?;
    let steps = slots
        .into_iter()
        .zip(&runbook.steps)
        .map(|(s, step)| StepReport {
            id: step.id.clone(),
            uses: step.uses.clone(),
            status: s.status,
            attempts: s.attempts_base + s.attempts,
            duration_ms: s
                .started
                .map(|st| s.ended.unwrap_or_else(|| time.now_ms()).saturating_sub(st)),
            error: s.error.filter(|_| s.status != StepStatus::Succeeded),
            note: s.note,
            outputs: s.outputs,
        })
        .collect();
    let mut report = RunReport {
        run_id: options.run_id,
        runbook: runbook.name.clone(),
        status,
        steps,
        outputs,
        errors: run_errors,
        duration_ms: time.elapsed_ms(),
    };
    scrub_report_text(&secrets.values, &mut report);
    Ok(report)
}

/// Scrubs secrets out of the report's free text (errors, notes): what a step error quotes of a
/// secret it was given. Outputs are already redacted whole.
fn scrub_report_text(secrets: &Secrets, report: &mut RunReport) {
    if secrets.is_empty() {
        return;
    }
    let scrub = |text: &mut String| {
        if let std::borrow::Cow::Owned(clean) = secrets.scrub(text) {
            *text = clean;
        }
    };
    for s in &mut report.steps {
        if let Some(e) = s.error.as_mut() {
            scrub(&mut e.message);
        }
        if let Some(n) = s.note.as_mut() {
            scrub(n);
        }
    }
    report.errors.iter_mut().for_each(scrub);
}

async fn sleep_opt(until: Option<Instant>) {
    match until {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

enum Decision {
    Run(Outputs),
    Skip(String),
    Fail(StepError),
}

fn decide(
    step: &Step,
    idx: usize,
    slot: &Slot,
    scope: &Scope,
    secrets: &RunSecrets,
    time: &RunClock,
) -> Decision {
    // A condition that reads a step's status decides alone, like `always` with a test.
    if let Some(blocker) = &slot.blocked_by
        && !matches!(step.condition, Condition::Always)
        && !step.condition.reads_status()
    {
        return Decision::Skip(blocker.clone());
    }
    if let Some(error) = secrets.reads_lost(step) {
        return Decision::Fail(error);
    }
    let ctx = || scope.context(time.elapsed_seconds());
    let watch = secrets.flow.watch(&secrets.values);
    if let Condition::If(t) = &step.condition {
        match t.eval_watched(&ctx(), &watch) {
            Ok(Value::Bool(true)) => {}
            Ok(Value::Bool(false)) => {
                return Decision::Skip("its `if` condition was false".into());
            }
            // Never truthiness: `"False"` is a string, and would have counted as true.
            Ok(other) => {
                let what = t
                    .exprs()
                    .first()
                    .map_or_else(String::new, |e| format!(" `{}`", e.source));
                return Decision::Fail(StepError::invalid_input(format!(
                    "its `if` condition{what} gave {}, not true or false; compare it to get a bool, \
                     e.g. `${{{{ env.X == 'true' }}}}` or `${{{{ env.X | lower == 'true' }}}}`",
                    json_kind(&other)
                )));
            }
            Err(e) => {
                return Decision::Fail(StepError::invalid_input(format!(
                    "its `if` condition could not be evaluated: {e}"
                )));
            }
        }
    }
    let input = match &step.literal_input {
        Some(input) => input.clone(),
        None => match evaluate_watched(
            &step.with,
            scope,
            time.elapsed_seconds(),
            &secrets.flow,
            &secrets.values,
            secrets.flow.secret_inputs(idx),
        ) {
            Ok(input) => input,
            Err(e) => return Decision::Fail(e),
        },
    };
    let spec = step.step_type.spec();
    let secret_inputs = secrets.flow.secret_inputs(idx);
    // A secret value that its declaration refuses is never quoted: a short secret could not be
    // scrubbed out of the message.
    for p in &spec.params {
        if let Some(v) = input.get(p.name)
            && !v.is_null()
            && secret_inputs.iter().any(|n| n == p.name)
            && (!p.ty.accepts(v) || p.check(v).is_err())
        {
            return Decision::Fail(StepError::invalid_input(format!(
                "the secret value of parameter `{}` is not {} {} its declaration allows (the \
                 value is not shown)",
                p.name,
                crate::compile::article(p.ty),
                p.ty
            )));
        }
    }
    // A rule's message quotes the values it compares; a secret one may be too short (or too
    // transformed) for the scrubber to find.
    for rule in &spec.rules {
        if rule
            .reads
            .iter()
            .any(|r| secret_inputs.iter().any(|n| n == r))
            && let Some(values) = spec.rule_input(rule, &input)
            && (rule.check)(&values).is_err()
        {
            return Decision::Fail(StepError::invalid_input(format!(
                "secret values break the rule: {} (the values are not shown)",
                rule.doc
            )));
        }
    }
    // The same declaration the compiler and the value check use: constraints and rules on
    // values only known now.
    if let Err(e) = spec.check_input(&input) {
        return Decision::Fail(e);
    }
    Decision::Run(input)
}

/// `a string`, `a number`, … for messages that must not show the value (it may be secret).
pub(crate) fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "none",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

/// Evaluates a step's `with:` block in the run's current scope, `run.elapsed_seconds` being
/// `elapsed_seconds` (seconds on the run's clock since it started).
pub fn evaluate_input(
    with: &[(String, crate::expr::Template)],
    scope: &Scope,
    elapsed_seconds: f64,
) -> Result<Outputs, StepError> {
    evaluate_watched(
        with,
        scope,
        elapsed_seconds,
        &SecretFlow::default(),
        &Secrets::default(),
        &[],
    )
}

/// [`evaluate_input`], adding to `values` the value of every expression that reads a secret,
/// and of every input named in `secret` whole (`"Bearer ${{ env.GITHUB_TOKEN }}"`).
pub(crate) fn evaluate_watched(
    with: &[(String, crate::expr::Template)],
    scope: &Scope,
    elapsed_seconds: f64,
    flow: &SecretFlow,
    values: &Secrets,
    secret: &[String],
) -> Result<Outputs, StepError> {
    let ctx = scope.context(elapsed_seconds);
    let watch = flow.watch(values);
    let mut input = Outputs::new();
    for (name, t) in with {
        match t.eval_watched(&ctx, &watch) {
            Ok(v) => {
                if secret.contains(name) {
                    values.add(&v);
                }
                input.insert(name.clone(), v);
            }
            Err(e) => {
                return Err(StepError::invalid_input(format!(
                    "parameter `{name}` could not be evaluated: {e}"
                )));
            }
        }
    }
    Ok(input)
}

#[allow(clippy::too_many_arguments)]
fn start_attempt(
    sink: &mut dyn RunSink,
    workers: &mut Workers,
    step: &Step,
    slot: &mut Slot,
    idx: usize,
    run_id: &Arc<str>,
    runbook: &Arc<str>,
    scope: &Scope,
    secrets: &RunSecrets,
    time: &RunClock,
) -> Result<(), SinkError> {
    slot.attempts += 1;
    let attempt = slot.attempts_base + slot.attempts;
    sink.record(&RunEvent::StepStarted {
        step: step.id.clone(),
        attempt,
        at: time.now(),
    })?;
    slot.in_flight = true;
    let step_type: Arc<dyn StepType> = step.step_type.clone();
    let input = slot.input.clone().unwrap_or_default();
    let ctx = StepContext {
        run_id: run_id.to_string(),
        runbook: runbook.to_string(),
        step_id: step.id.clone(),
        attempt,
        previous_outputs: None,
        reevaluate: (step.literal_input.is_none()).then(|| {
            let with = step.with.clone();
            let scope = scope.clone();
            let flow = secrets.flow.clone();
            let values = secrets.values.clone();
            let time = time.clone();
            Reevaluate(Arc::new(move || {
                evaluate_watched(
                    &with,
                    &scope,
                    time.elapsed_seconds(),
                    &flow,
                    &values,
                    flow.secret_inputs(idx),
                )
            }))
        }),
        secret_inputs: secrets.flow.secret_inputs(idx).to_vec(),
        clock: time.clock().clone(),
        notes: slot.notes.clone(),
        notebook: Some(Notebook {
            tx: workers.notes_tx.clone(),
            idx,
        }),
    };
    let timeout = step.timeout;
    let mut attempt: Pin<Box<dyn Future<Output = Msg> + Send>> = Box::pin(async move {
        let fut = step_type.run(&ctx, &input);
        let result = match timeout {
            None => fut.await,
            Some(limit) => match tokio::time::timeout(limit, fut).await {
                Ok(r) => r,
                Err(_) => Err(StepError::retryable(
                    "timeout",
                    format!(
                        "the attempt took longer than its timeout of {}",
                        crate::duration::format_duration(limit)
                    ),
                )),
            },
        };
        Msg::Done { idx, result }
    });
    // Most quick steps finish without ever waiting: poll once here and skip the trip through
    // the runtime's task queue. A step that must wait is handed to the runtime as it is.
    let mut cx = Context::from_waker(Waker::noop());
    match std::panic::catch_unwind(AssertUnwindSafe(|| attempt.as_mut().poll(&mut cx))) {
        Ok(Poll::Ready(msg)) => workers.inline.push_back(msg),
        Ok(Poll::Pending) => {
            let handle = workers.tasks.spawn(attempt);
            workers.ids.insert(handle.id(), idx);
        }
        Err(_) => workers.inline.push_back(Msg::Done {
            idx,
            result: Err(StepError::permanent(
                "panic",
                "the step panicked; this is a bug in the step type",
            )),
        }),
    }
    Ok(())
}

/// Marks step `i` as settled and releases the steps that need it. `outputs` are as recorded
/// (secret ones `***`); `clear`, when given, is what expressions see instead.
#[allow(clippy::too_many_arguments)]
fn settle(
    time: &RunClock,
    runbook: &Runbook,
    slots: &mut [Slot],
    ready: &mut VecDeque<usize>,
    scope: &Scope,
    i: usize,
    status: StepStatus,
    outputs: Option<Outputs>,
    clear: Option<&Outputs>,
) {
    let step = &runbook.steps[i];
    scope.set_step(&step.id, status.name(), clear.or(outputs.as_ref()));
    let slot = &mut slots[i];
    slot.status = status;
    slot.ended = Some(time.now_ms());
    slot.outputs = outputs;
    let blocks = match status {
        StepStatus::Failed if !step.continue_on_error => {
            Some(format!("it needs `{}`, which failed", step.id))
        }
        // A step skipped by its own condition lets its dependants run; one skipped because
        // something failed passes the failure on.
        StepStatus::Skipped if slot.blocked_by.is_some() => Some(format!(
            "it needs `{}`, which was skipped after a failure",
            step.id
        )),
        _ => None,
    };
    for d in runbook.dag.dependants(i) {
        let dep = &mut slots[d];
        if let Some(reason) = &blocks
            && dep.blocked_by.is_none()
        {
            dep.blocked_by = Some(reason.clone());
        }
        dep.remaining_needs -= 1;
        if dep.remaining_needs == 0 {
            ready.push_back(d);
        }
    }
}

/// The wait before the next attempt: full jitter over an exponentially growing cap
/// (`backoff × 2^(attempts-1)`, at most `max_backoff`), as in the AWS Architecture Blog's
/// "Exponential Backoff and Jitter".
pub fn backoff(policy: &crate::compile::RetryPolicy, attempts_made: u32) -> Duration {
    let exp = attempts_made.saturating_sub(1).min(30);
    let cap = policy
        .backoff
        .saturating_mul(1u32 << exp)
        .min(policy.max_backoff);
    if cap.is_zero() {
        return cap;
    }
    let nanos = rand::random_range(0..=cap.as_nanos().min(u64::MAX as u128) as u64);
    Duration::from_nanos(nanos)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::RetryPolicy;

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy {
            attempts: 10,
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(5),
            on: vec![],
        };
        for _ in 0..200 {
            assert!(backoff(&p, 1) <= Duration::from_secs(1));
            assert!(backoff(&p, 2) <= Duration::from_secs(2));
            assert!(backoff(&p, 9) <= Duration::from_secs(5));
        }
        // Full jitter spreads waits over the whole range rather than clustering at the cap.
        let waits: Vec<Duration> = (0..200).map(|_| backoff(&p, 9)).collect();
        assert!(waits.iter().any(|w| *w < Duration::from_millis(2500)));
        assert!(waits.iter().any(|w| *w > Duration::from_millis(2500)));
    }
}
