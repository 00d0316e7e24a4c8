//! The state of a run, rebuilt from its events: pure, no I/O.
//!
//! [`RunState::apply`] is the run's state machine. It is one explicit
//! `match (run phase, step status, event)` table: every legal pair has an arm, and any other pair
//! is a [`TransitionError`] with a stable code. Replay never guesses: a journal that does not
//! describe a run drflow could have produced fails loudly instead of resuming from a wrong state.
//!
//! The table, per step (`resumed` means a [`RunEvent::RunResumed`] came after the step's last
//! event):
//!
//! | step status                | event                                  | next status      |
//! |----------------------------|----------------------------------------|------------------|
//! | pending                    | step_started                           | running          |
//! | pending                    | step_skipped                           | skipped          |
//! | pending                    | step_failed (input could not be built) | failed           |
//! | running                    | attempt_failed, will_retry             | retry_waiting    |
//! | running                    | attempt_failed, last attempt           | failing          |
//! | running, failing           | step_failed                            | failed           |
//! | running                    | step_succeeded                         | succeeded        |
//! | running                    | step_noted                             | running          |
//! | running, retry_waiting     | step_interrupted                       | interrupted      |
//! | retry_waiting              | step_started (next attempt)            | running          |
//! | retry_waiting              | step_failed (run stopped in backoff)   | failed           |
//! | running, failing, failed, interrupted, skipped — if resumed | step_started | running |
//! | failed, interrupted, skipped — if resumed | step_failed             | failed           |
//! | running, retry_waiting, failing, failed, interrupted, skipped — if resumed | step_skipped | skipped |
//! | succeeded, undo_failed (if resumed), undoing (if resumed) | undo_started | undoing     |
//! | undoing                    | undo_succeeded                         | undone           |
//! | undoing                    | undo_failed                            | undo_failed      |
//!
//! and per run: nothing → `run_started` → running; running → `run_finished` → finished;
//! running or finished → `run_resumed` → running (a crashed run never wrote `run_finished`).
//! A step event after `run_finished` without a `run_resumed` in between is an error.
//!
//! Attempt numbers only grow: a `step_started` must carry a higher attempt than any before it,
//! and `attempt_failed` / `step_succeeded` / `step_noted` must name the attempt that is running.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;

use crate::event::{RunEvent, RunStatus, Timestamp};
use crate::step::{Outputs, StepError};

/// Where one step stands after replaying a run's events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepPhase {
    /// No event about it yet.
    Pending,
    /// An attempt started and has not ended.
    Running,
    /// An attempt failed and another one will follow after a backoff.
    RetryWaiting,
    /// The last attempt failed; `step_failed` follows.
    Failing,
    /// It succeeded; its outputs are kept.
    Succeeded,
    /// It failed for good.
    Failed,
    /// It did not run (condition false, or something it needs failed).
    Skipped,
    /// It was running when the run was interrupted.
    Interrupted,
    /// Rollback started undoing it.
    Undoing,
    /// Rollback undid it.
    Undone,
    /// Its undo failed; a human has to look.
    UndoFailed,
}

impl StepPhase {
    /// The lowercase name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            StepPhase::Pending => "pending",
            StepPhase::Running => "running",
            StepPhase::RetryWaiting => "retry_waiting",
            StepPhase::Failing => "failing",
            StepPhase::Succeeded => "succeeded",
            StepPhase::Failed => "failed",
            StepPhase::Skipped => "skipped",
            StepPhase::Interrupted => "interrupted",
            StepPhase::Undoing => "undoing",
            StepPhase::Undone => "undone",
            StepPhase::UndoFailed => "undo_failed",
        }
    }
}

/// How one attempt of a step ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum AttemptOutcome {
    /// Still running (as far as the journal knows).
    Running,
    /// It succeeded.
    Succeeded,
    /// It failed with this error.
    Failed {
        /// What went wrong.
        error: StepError,
        /// Whether another attempt followed.
        will_retry: bool,
    },
    /// The run was interrupted while it ran.
    Interrupted,
    /// The process died while it ran: a resume found it unfinished and ran it again.
    Lost,
}

/// One attempt of a step, for the timeline of `drflow show`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attempt {
    /// 1 for the first attempt; numbers keep growing across resumes.
    pub attempt: u32,
    /// When it started.
    pub started_at: Timestamp,
    /// When it ended, if the journal knows.
    pub ended_at: Option<Timestamp>,
    /// How it ended.
    #[serde(flatten)]
    pub outcome: AttemptOutcome,
}

/// The state of one step of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepState {
    /// Where it stands.
    pub status: StepPhase,
    /// The highest attempt number started so far (0 if it never started).
    pub attempts: u32,
    /// Its outputs, once it succeeded.
    pub outputs: Option<Outputs>,
    /// The last error it reported (attempt or undo).
    pub last_error: Option<StepError>,
    /// Why it was skipped, if it was.
    pub skip_reason: Option<String>,
    /// When its first attempt started.
    pub first_started_at: Option<Timestamp>,
    /// When it last reached a final status (succeeded, failed, skipped, interrupted, undone).
    pub finished_at: Option<Timestamp>,
    /// Every attempt, oldest first.
    pub history: Vec<Attempt>,
    /// What its attempts wrote down while they ran ([`RunEvent::StepNoted`]), oldest first;
    /// kept across attempts and resumes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<Value>,
    /// When its undo started, if rollback reached it.
    pub undo_started_at: Option<Timestamp>,
    /// When its undo ended.
    pub undo_finished_at: Option<Timestamp>,
    /// The number of `run_resumed` events before this step's last event.
    #[serde(skip)]
    epoch: u32,
}

impl StepState {
    fn new() -> StepState {
        StepState {
            status: StepPhase::Pending,
            attempts: 0,
            outputs: None,
            last_error: None,
            skip_reason: None,
            first_started_at: None,
            finished_at: None,
            history: Vec::new(),
            notes: Vec::new(),
            undo_started_at: None,
            undo_finished_at: None,
            epoch: 0,
        }
    }

    fn close_attempt(&mut self, at: Timestamp, outcome: AttemptOutcome) {
        if let Some(last) = self.history.last_mut()
            && last.outcome == AttemptOutcome::Running
        {
            last.ended_at = Some(at);
            last.outcome = outcome;
        }
    }
}

/// What a resumed run does with a step, from the journal alone.
#[derive(Debug, Clone, PartialEq)]
pub enum ResumePoint {
    /// It succeeded: do not run it again, use these outputs.
    Done {
        /// The outputs it recorded.
        outputs: Outputs,
    },
    /// It started and never finished (crash or interruption): run it again.
    Rerun {
        /// Attempt numbers already used; the next attempt is `attempts_used + 1`.
        attempts_used: u32,
    },
    /// It failed: try again under its retry policy, with a fresh budget of attempts.
    Retry {
        /// Attempt numbers already used; the next attempt is `attempts_used + 1`.
        attempts_used: u32,
        /// The error it failed with.
        last_error: Option<StepError>,
    },
    /// It never started, or was skipped: schedule it as if new (its condition is evaluated again).
    NotStarted,
}

/// The state of a whole run, rebuilt from its events by [`RunState::replay`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunState {
    /// The run's id.
    pub run_id: String,
    /// The runbook's name.
    pub runbook: String,
    /// The runbook file the run was started from.
    pub path: String,
    /// The SHA-256 of the runbook file's content when the run started.
    pub content_hash: String,
    /// The resolved parameters, secrets already replaced by `"***"`.
    pub params: Value,
    /// A hash of each step's definition when the run started (empty for older journals).
    #[serde(default)]
    pub step_hashes: BTreeMap<String, String>,
    /// `running` until `run_finished` (also for a run whose process died).
    pub status: RunStatus,
    /// When the run started.
    pub started_at: Timestamp,
    /// When it last finished.
    pub finished_at: Option<Timestamp>,
    /// The runbook's outputs, once finished.
    pub outputs: Outputs,
    /// When each resume happened.
    pub resumed_at: Vec<Timestamp>,
    /// Every step that has at least one event, by id.
    pub steps: BTreeMap<String, StepState>,
    /// Step ids in the order of their first event.
    pub step_order: Vec<String>,
    /// How many events were applied.
    pub events: usize,
    /// When set, step events must name one of these steps.
    #[serde(skip)]
    known_steps: Option<BTreeSet<String>>,
}

/// The phase of a run, the first half of the transition table's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RunPhase {
    Running,
    Finished(RunStatus),
}

/// Why replay refused an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransitionErrorKind {
    /// The first event is not `run_started` (or there are no events).
    NoRunStarted,
    /// A second `run_started`.
    RunAlreadyStarted,
    /// `run_finished` for a run that already finished (no resume in between).
    AlreadyFinished,
    /// `run_finished` with status `running`.
    InvalidFinalStatus,
    /// A step event after `run_finished`, with no resume in between.
    EventAfterFinish,
    /// A step event that its step's status does not allow.
    IllegalStepTransition,
    /// An attempt number that does not follow the attempts before it.
    AttemptMismatch {
        /// What the table expected (e.g. `> 2` or `= 3`).
        expected: String,
        /// What the event said.
        found: u32,
    },
    /// A step event for a step the runbook does not have.
    UnknownStep,
}

impl TransitionErrorKind {
    /// A stable code, for scripts and for searching the docs (`docs/journal.md`).
    pub fn code(&self) -> &'static str {
        match self {
            TransitionErrorKind::NoRunStarted => "DRJ001",
            TransitionErrorKind::RunAlreadyStarted => "DRJ002",
            TransitionErrorKind::AlreadyFinished => "DRJ003",
            TransitionErrorKind::InvalidFinalStatus => "DRJ004",
            TransitionErrorKind::EventAfterFinish => "DRJ005",
            TransitionErrorKind::IllegalStepTransition => "DRJ006",
            TransitionErrorKind::AttemptMismatch { .. } => "DRJ007",
            TransitionErrorKind::UnknownStep => "DRJ008",
        }
    }

    fn describe(&self) -> String {
        match self {
            TransitionErrorKind::NoRunStarted => {
                "a run's journal must begin with run_started".into()
            }
            TransitionErrorKind::RunAlreadyStarted => "the run had already started".into(),
            TransitionErrorKind::AlreadyFinished => {
                "the run had already finished and was not resumed".into()
            }
            TransitionErrorKind::InvalidFinalStatus => {
                "run_finished cannot carry the status `running`".into()
            }
            TransitionErrorKind::EventAfterFinish => {
                "a step event after run_finished needs a run_resumed first".into()
            }
            TransitionErrorKind::IllegalStepTransition => {
                "the step's status does not allow this event".into()
            }
            TransitionErrorKind::AttemptMismatch { expected, found } => {
                format!("attempt {found} does not follow (expected attempt {expected})")
            }
            TransitionErrorKind::UnknownStep => "the runbook has no step of that id".into(),
        }
    }
}

/// An event that the run's state does not allow: the journal does not describe a run drflow
/// could have produced (edited by hand, truncated, or written by a different runbook).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "journal replay failed [{code}] at event #{seq} ({event}{step_part}) in state {state}: {what}; \
     the journal was not changed — inspect it with `drflow show RUN_ID --output json`, and start \
     a new run rather than resuming this one",
    code = self.kind.code(),
    step_part = self.step.as_deref().map(|s| format!(" for step `{s}`")).unwrap_or_default(),
    what = self.kind.describe()
)]
pub struct TransitionError {
    /// Why.
    pub kind: TransitionErrorKind,
    /// The 1-based position of the event in the run's journal.
    pub seq: usize,
    /// The event's name, e.g. `step_started`.
    pub event: &'static str,
    /// The step it named, if any.
    pub step: Option<String>,
    /// The state it met: the run's phase and, for a step event, the step's status.
    pub state: String,
}

impl TransitionError {
    /// The refusal in one line, without the replay advice: `[DRJ006] step_failed for step `b` in
    /// state run running, step failed: the step's status does not allow this event`.
    pub fn brief(&self) -> String {
        format!(
            "[{}] {}{} in state {}: {}",
            self.kind.code(),
            self.event,
            self.step
                .as_deref()
                .map(|s| format!(" for step `{s}`"))
                .unwrap_or_default(),
            self.state,
            self.kind.describe()
        )
    }
}

/// The snake_case name of an event, as journaled.
pub fn event_name(event: &RunEvent) -> &'static str {
    match event {
        RunEvent::RunStarted { .. } => "run_started",
        RunEvent::RunResumed { .. } => "run_resumed",
        RunEvent::StepStarted { .. } => "step_started",
        RunEvent::AttemptFailed { .. } => "attempt_failed",
        RunEvent::StepSucceeded { .. } => "step_succeeded",
        RunEvent::StepNoted { .. } => "step_noted",
        RunEvent::StepFailed { .. } => "step_failed",
        RunEvent::StepSkipped { .. } => "step_skipped",
        RunEvent::StepInterrupted { .. } => "step_interrupted",
        RunEvent::UndoStarted { .. } => "undo_started",
        RunEvent::UndoSucceeded { .. } => "undo_succeeded",
        RunEvent::UndoFailed { .. } => "undo_failed",
        RunEvent::RunFinished { .. } => "run_finished",
    }
}

impl RunState {
    /// Rebuilds a run's state from its events, oldest first.
    pub fn replay<'a>(
        events: impl IntoIterator<Item = &'a RunEvent>,
    ) -> Result<RunState, TransitionError> {
        Self::replay_inner(events, None)
    }

    /// Like [`RunState::replay`], and also refuses events about steps not in `step_ids` (the
    /// compiled runbook's steps): resuming a run against a runbook that lost a step is an error.
    pub fn replay_checked<'a>(
        events: impl IntoIterator<Item = &'a RunEvent>,
        step_ids: impl IntoIterator<Item = impl Into<String>>,
    ) -> Result<RunState, TransitionError> {
        Self::replay_inner(events, Some(step_ids.into_iter().map(Into::into).collect()))
    }

    fn replay_inner<'a>(
        events: impl IntoIterator<Item = &'a RunEvent>,
        known_steps: Option<BTreeSet<String>>,
    ) -> Result<RunState, TransitionError> {
        let mut events = events.into_iter();
        let first = events.next();
        let mut state = match first {
            Some(RunEvent::RunStarted {
                run_id,
                runbook,
                path,
                content_hash,
                params,
                at,
                step_hashes,
            }) => RunState {
                step_hashes: step_hashes.clone(),
                run_id: run_id.clone(),
                runbook: runbook.clone(),
                path: path.clone(),
                content_hash: content_hash.clone(),
                params: params.clone(),
                status: RunStatus::Running,
                started_at: *at,
                finished_at: None,
                outputs: Outputs::new(),
                resumed_at: Vec::new(),
                steps: BTreeMap::new(),
                step_order: Vec::new(),
                events: 1,
                known_steps,
            },
            other => {
                return Err(TransitionError {
                    kind: TransitionErrorKind::NoRunStarted,
                    seq: 1,
                    event: other.map(event_name).unwrap_or("no event"),
                    step: other.and_then(|e| e.step()).map(str::to_owned),
                    state: "nothing".into(),
                });
            }
        };
        for event in events {
            state.apply(event)?;
        }
        Ok(state)
    }

    fn phase(&self) -> RunPhase {
        match self.status {
            RunStatus::Running => RunPhase::Running,
            done => RunPhase::Finished(done),
        }
    }

    fn epoch(&self) -> u32 {
        self.resumed_at.len() as u32
    }

    /// The state of a step (pending if the journal never mentioned it).
    pub fn step(&self, id: &str) -> Option<&StepState> {
        self.steps.get(id)
    }

    /// The status of a step, [`StepPhase::Pending`] if the journal never mentioned it.
    pub fn step_status(&self, id: &str) -> StepPhase {
        self.steps.get(id).map_or(StepPhase::Pending, |s| s.status)
    }

    /// Whether a rollback has begun (some step is undoing, undone or failed to undo).
    pub fn rollback_started(&self) -> bool {
        self.steps.values().any(|s| {
            matches!(
                s.status,
                StepPhase::Undoing | StepPhase::Undone | StepPhase::UndoFailed
            )
        })
    }

    /// What a resumed run does with step `id`.
    pub fn resume_point(&self, id: &str) -> ResumePoint {
        let Some(step) = self.steps.get(id) else {
            return ResumePoint::NotStarted;
        };
        match step.status {
            StepPhase::Pending | StepPhase::Skipped => ResumePoint::NotStarted,
            StepPhase::Succeeded => ResumePoint::Done {
                outputs: step.outputs.clone().unwrap_or_default(),
            },
            StepPhase::Running | StepPhase::RetryWaiting | StepPhase::Interrupted => {
                ResumePoint::Rerun {
                    attempts_used: step.attempts,
                }
            }
            StepPhase::Failing | StepPhase::Failed => ResumePoint::Retry {
                attempts_used: step.attempts,
                last_error: step.last_error.clone(),
            },
            // A rollback touched it: only a rollback may go on from here; a resume of the run
            // treats the undone work as done (`drflow resume` refuses rolled-back runs anyway).
            StepPhase::Undoing | StepPhase::Undone | StepPhase::UndoFailed => ResumePoint::Done {
                outputs: step.outputs.clone().unwrap_or_default(),
            },
        }
    }

    /// Applies one event: the run's transition table (see the module docs).
    pub fn apply(&mut self, event: &RunEvent) -> Result<(), TransitionError> {
        use RunEvent as E;
        use StepPhase as S;

        let seq = self.events + 1;
        let phase = self.phase();
        let step_id = event.step();
        if let (Some(id), Some(known)) = (step_id, &self.known_steps)
            && !known.contains(id)
        {
            return Err(self.error(TransitionErrorKind::UnknownStep, seq, event));
        }
        let step_status = step_id.map(|id| self.step_status(id));
        // A resume since the step's last event lets a step that had stopped start again.
        let resumed =
            step_id.is_some_and(|id| self.steps.get(id).is_none_or(|s| s.epoch < self.epoch()));
        let attempts = step_id
            .and_then(|id| self.steps.get(id))
            .map_or(0, |s| s.attempts);

        match (phase, step_status, event) {
            // ---- the run ----
            (_, _, E::RunStarted { .. }) => {
                Err(self.error(TransitionErrorKind::RunAlreadyStarted, seq, event))
            }
            (RunPhase::Running | RunPhase::Finished(_), None, E::RunResumed { at }) => {
                // Whatever was running when the process died is lost; a resume runs it again.
                for step in self.steps.values_mut() {
                    step.close_attempt(*at, AttemptOutcome::Lost);
                }
                self.resumed_at.push(*at);
                self.status = RunStatus::Running;
                Ok(())
            }
            (
                RunPhase::Running,
                None,
                E::RunFinished {
                    status: RunStatus::Running,
                    ..
                },
            ) => Err(self.error(TransitionErrorKind::InvalidFinalStatus, seq, event)),
            (
                RunPhase::Running,
                None,
                E::RunFinished {
                    status,
                    outputs,
                    at,
                },
            ) => {
                self.status = *status;
                self.outputs = outputs.clone();
                self.finished_at = Some(*at);
                Ok(())
            }
            (RunPhase::Finished(_), None, E::RunFinished { .. }) => {
                Err(self.error(TransitionErrorKind::AlreadyFinished, seq, event))
            }
            (RunPhase::Finished(_), Some(_), _) => {
                Err(self.error(TransitionErrorKind::EventAfterFinish, seq, event))
            }

            // ---- a step attempt ----
            (RunPhase::Running, Some(S::Pending), E::StepStarted { step, attempt, at })
            | (RunPhase::Running, Some(S::RetryWaiting), E::StepStarted { step, attempt, at }) => {
                if *attempt <= attempts {
                    return Err(self.attempt_error(format!("> {attempts}"), *attempt, seq, event));
                }
                self.start_attempt(step, *attempt, *at);
                Ok(())
            }
            (
                RunPhase::Running,
                Some(S::Running | S::Failing | S::Failed | S::Interrupted | S::Skipped),
                E::StepStarted { step, attempt, at },
            ) if resumed => {
                if *attempt <= attempts {
                    return Err(self.attempt_error(format!("> {attempts}"), *attempt, seq, event));
                }
                self.start_attempt(step, *attempt, *at);
                Ok(())
            }
            (
                RunPhase::Running,
                Some(S::Running),
                E::AttemptFailed {
                    step,
                    attempt,
                    error,
                    will_retry,
                    at,
                },
            ) => {
                if *attempt != attempts {
                    return Err(self.attempt_error(format!("= {attempts}"), *attempt, seq, event));
                }
                let s = self.touch(step);
                s.close_attempt(
                    *at,
                    AttemptOutcome::Failed {
                        error: error.clone(),
                        will_retry: *will_retry,
                    },
                );
                s.last_error = Some(error.clone());
                s.status = if *will_retry {
                    S::RetryWaiting
                } else {
                    S::Failing
                };
                Ok(())
            }
            (
                RunPhase::Running,
                Some(S::Running),
                E::StepSucceeded {
                    step,
                    attempt,
                    outputs,
                    at,
                },
            ) => {
                if *attempt != attempts {
                    return Err(self.attempt_error(format!("= {attempts}"), *attempt, seq, event));
                }
                let s = self.touch(step);
                s.close_attempt(*at, AttemptOutcome::Succeeded);
                s.outputs = Some(outputs.clone());
                s.status = S::Succeeded;
                s.finished_at = Some(*at);
                Ok(())
            }
            (
                RunPhase::Running,
                Some(S::Running),
                E::StepNoted {
                    step,
                    attempt,
                    note,
                    ..
                },
            ) => {
                if *attempt != attempts {
                    return Err(self.attempt_error(format!("= {attempts}"), *attempt, seq, event));
                }
                self.touch(step).notes.push(note.clone());
                Ok(())
            }
            (
                RunPhase::Running,
                Some(S::Pending | S::Running | S::Failing | S::RetryWaiting),
                E::StepFailed { step, error, at },
            ) => {
                self.fail(step, error, *at);
                Ok(())
            }
            // A resumed run decides again every step that had not succeeded: one that had
            // failed, been interrupted or skipped may now fail before it starts (its input
            // cannot be built).
            (
                RunPhase::Running,
                Some(S::Failed | S::Interrupted | S::Skipped),
                E::StepFailed { step, error, at },
            ) if resumed => {
                self.fail(step, error, *at);
                Ok(())
            }
            (RunPhase::Running, Some(S::Pending), E::StepSkipped { step, reason, at }) => {
                self.skip(step, reason, *at);
                Ok(())
            }
            // Likewise any step that had not succeeded may be skipped by a resumed run (its
            // condition is false now, or something it needs failed), even one whose attempt
            // was lost in a crash or was waiting for a retry.
            (
                RunPhase::Running,
                Some(
                    S::Running
                    | S::RetryWaiting
                    | S::Failing
                    | S::Failed
                    | S::Interrupted
                    | S::Skipped,
                ),
                E::StepSkipped { step, reason, at },
            ) if resumed => {
                self.skip(step, reason, *at);
                Ok(())
            }
            (
                RunPhase::Running,
                Some(S::Running | S::RetryWaiting),
                E::StepInterrupted { step, at },
            ) => {
                let s = self.touch(step);
                s.close_attempt(*at, AttemptOutcome::Interrupted);
                s.status = S::Interrupted;
                s.finished_at = Some(*at);
                Ok(())
            }

            // ---- rollback ----
            (RunPhase::Running, Some(S::Succeeded), E::UndoStarted { step, at }) => {
                self.start_undo(step, *at);
                Ok(())
            }
            (RunPhase::Running, Some(S::Undoing | S::UndoFailed), E::UndoStarted { step, at })
                if resumed =>
            {
                self.start_undo(step, *at);
                Ok(())
            }
            (RunPhase::Running, Some(S::Undoing), E::UndoSucceeded { step, at }) => {
                let s = self.touch(step);
                s.status = S::Undone;
                s.undo_finished_at = Some(*at);
                Ok(())
            }
            (RunPhase::Running, Some(S::Undoing), E::UndoFailed { step, error, at }) => {
                let s = self.touch(step);
                s.status = S::UndoFailed;
                s.last_error = Some(error.clone());
                s.undo_finished_at = Some(*at);
                Ok(())
            }

            // ---- everything else ----
            (RunPhase::Running, Some(_), _) | (_, None, _) => {
                Err(self.error(TransitionErrorKind::IllegalStepTransition, seq, event))
            }
        }
        .map(|()| self.events = seq)
    }

    fn touch(&mut self, id: &str) -> &mut StepState {
        let epoch = self.epoch();
        if !self.steps.contains_key(id) {
            self.step_order.push(id.to_owned());
        }
        let s = self
            .steps
            .entry(id.to_owned())
            .or_insert_with(StepState::new);
        s.epoch = epoch;
        s
    }

    fn start_attempt(&mut self, id: &str, attempt: u32, at: Timestamp) {
        let s = self.touch(id);
        s.status = StepPhase::Running;
        s.attempts = attempt;
        s.first_started_at.get_or_insert(at);
        s.finished_at = None;
        s.skip_reason = None;
        s.history.push(Attempt {
            attempt,
            started_at: at,
            ended_at: None,
            outcome: AttemptOutcome::Running,
        });
    }

    fn fail(&mut self, id: &str, error: &StepError, at: Timestamp) {
        let s = self.touch(id);
        s.close_attempt(
            at,
            AttemptOutcome::Failed {
                error: error.clone(),
                will_retry: false,
            },
        );
        s.last_error = Some(error.clone());
        s.status = StepPhase::Failed;
        s.finished_at = Some(at);
    }

    fn skip(&mut self, id: &str, reason: &str, at: Timestamp) {
        let s = self.touch(id);
        s.status = StepPhase::Skipped;
        s.skip_reason = Some(reason.to_owned());
        s.finished_at = Some(at);
    }

    fn start_undo(&mut self, id: &str, at: Timestamp) {
        let s = self.touch(id);
        s.status = StepPhase::Undoing;
        s.undo_started_at = Some(at);
        s.undo_finished_at = None;
    }

    fn error(&self, kind: TransitionErrorKind, seq: usize, event: &RunEvent) -> TransitionError {
        let phase = match self.phase() {
            RunPhase::Running => "running".to_owned(),
            RunPhase::Finished(status) => format!("finished ({})", status.name()),
        };
        let state = match event.step() {
            Some(id) => format!("run {phase}, step {}", self.step_status(id).name()),
            None => format!("run {phase}"),
        };
        TransitionError {
            kind,
            seq,
            event: event_name(event),
            step: event.step().map(str::to_owned),
            state,
        }
    }

    fn attempt_error(
        &self,
        expected: String,
        found: u32,
        seq: usize,
        event: &RunEvent,
    ) -> TransitionError {
        self.error(
            TransitionErrorKind::AttemptMismatch { expected, found },
            seq,
            event,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A canned history, built event by event. Each method appends one event, with timestamps
    /// 1.0, 2.0, … in order:
    ///
    /// - `new()` — `run_started` (run `r1`, runbook `rb`)
    /// - `start(step, attempt)` — `step_started`
    /// - `fail_attempt(step, attempt, will_retry)` — `attempt_failed`
    /// - `succeed(step, attempt)` — `step_succeeded` with outputs `{ "n": attempt }`
    /// - `fail(step)` — `step_failed`
    /// - `skip(step)` — `step_skipped`
    /// - `interrupt(step)` — `step_interrupted`
    /// - `undo_start` / `undo_ok` / `undo_fail(step)` — the undo events
    /// - `resume()` — `run_resumed`
    /// - `finish(status)` — `run_finished`
    struct History(Vec<RunEvent>);

    fn err(msg: &str) -> StepError {
        StepError::retryable("throttled", msg)
    }

    impl History {
        fn new() -> History {
            History(vec![RunEvent::RunStarted {
                run_id: "r1".into(),
                runbook: "rb".into(),
                path: "rb.yaml".into(),
                content_hash: "abc".into(),
                params: json!({"a": 1}),
                at: 1.0,
                step_hashes: Default::default(),
            }])
        }
        fn at(&self) -> Timestamp {
            self.0.len() as f64 + 1.0
        }
        fn push(mut self, e: RunEvent) -> History {
            self.0.push(e);
            self
        }
        fn start(self, step: &str, attempt: u32) -> History {
            let at = self.at();
            self.push(RunEvent::StepStarted {
                step: step.into(),
                attempt,
                at,
            })
        }
        fn fail_attempt(self, step: &str, attempt: u32, will_retry: bool) -> History {
            let at = self.at();
            self.push(RunEvent::AttemptFailed {
                step: step.into(),
                attempt,
                error: err("slow down"),
                will_retry,
                at,
            })
        }
        fn succeed(self, step: &str, attempt: u32) -> History {
            let at = self.at();
            let mut outputs = Outputs::new();
            outputs.insert("n".into(), json!(attempt));
            self.push(RunEvent::StepSucceeded {
                step: step.into(),
                attempt,
                outputs,
                at,
            })
        }
        fn fail(self, step: &str) -> History {
            let at = self.at();
            self.push(RunEvent::StepFailed {
                step: step.into(),
                error: StepError::permanent("failed", "boom"),
                at,
            })
        }
        fn skip(self, step: &str) -> History {
            let at = self.at();
            self.push(RunEvent::StepSkipped {
                step: step.into(),
                reason: "condition is false".into(),
                at,
            })
        }
        fn interrupt(self, step: &str) -> History {
            let at = self.at();
            self.push(RunEvent::StepInterrupted {
                step: step.into(),
                at,
            })
        }
        fn undo_start(self, step: &str) -> History {
            let at = self.at();
            self.push(RunEvent::UndoStarted {
                step: step.into(),
                at,
            })
        }
        fn undo_ok(self, step: &str) -> History {
            let at = self.at();
            self.push(RunEvent::UndoSucceeded {
                step: step.into(),
                at,
            })
        }
        fn undo_fail(self, step: &str) -> History {
            let at = self.at();
            self.push(RunEvent::UndoFailed {
                step: step.into(),
                error: StepError::permanent("failed", "cannot delete"),
                at,
            })
        }
        fn resume(self) -> History {
            let at = self.at();
            self.push(RunEvent::RunResumed { at })
        }
        fn finish(self, status: RunStatus) -> History {
            let at = self.at();
            self.push(RunEvent::RunFinished {
                status,
                outputs: Outputs::new(),
                at,
            })
        }
        fn replay(&self) -> Result<RunState, TransitionError> {
            RunState::replay(&self.0)
        }
        fn ok(&self) -> RunState {
            match self.replay() {
                Ok(s) => s,
                Err(e) => panic!("replay failed: {e}"),
            }
        }
        fn refused(&self) -> TransitionError {
            match self.replay() {
                Ok(s) => panic!("replay accepted an illegal history: {s:?}"),
                Err(e) => e,
            }
        }
    }

    #[test]
    fn run_started_builds_the_header() {
        let s = History::new().ok();
        assert_eq!(s.run_id, "r1");
        assert_eq!(s.runbook, "rb");
        assert_eq!(s.content_hash, "abc");
        assert_eq!(s.params, json!({"a": 1}));
        assert_eq!(s.status, RunStatus::Running);
        assert_eq!(s.events, 1);
    }

    #[test]
    fn pending_to_running_to_succeeded() {
        let s = History::new().start("a", 1).ok();
        assert_eq!(s.step_status("a"), StepPhase::Running);
        let s = History::new().start("a", 1).succeed("a", 1).ok();
        let a = &s.steps["a"];
        assert_eq!(a.status, StepPhase::Succeeded);
        assert_eq!(a.attempts, 1);
        assert_eq!(a.outputs.as_ref().map(|o| o["n"].clone()), Some(json!(1)));
        assert_eq!(a.first_started_at, Some(2.0));
        assert_eq!(a.finished_at, Some(3.0));
        assert_eq!(a.history[0].outcome, AttemptOutcome::Succeeded);
        assert_eq!(s.events, 3);
    }

    #[test]
    fn retry_then_success() {
        let s = History::new()
            .start("a", 1)
            .fail_attempt("a", 1, true)
            .start("a", 2)
            .succeed("a", 2)
            .ok();
        let a = &s.steps["a"];
        assert_eq!(a.status, StepPhase::Succeeded);
        assert_eq!(a.attempts, 2);
        assert_eq!(a.history.len(), 2);
        assert!(matches!(
            a.history[0].outcome,
            AttemptOutcome::Failed {
                will_retry: true,
                ..
            }
        ));
    }

    #[test]
    fn retry_waiting_after_a_retryable_failure() {
        let s = History::new().start("a", 1).fail_attempt("a", 1, true).ok();
        assert_eq!(s.step_status("a"), StepPhase::RetryWaiting);
        assert_eq!(s.steps["a"].last_error, Some(err("slow down")));
    }

    #[test]
    fn last_attempt_failing_then_failed() {
        let h = History::new().start("a", 1).fail_attempt("a", 1, false);
        assert_eq!(h.ok().step_status("a"), StepPhase::Failing);
        let s = h.fail("a").ok();
        assert_eq!(s.step_status("a"), StepPhase::Failed);
        // The attempt keeps the error of attempt_failed; step_failed does not add an attempt.
        assert_eq!(s.steps["a"].history.len(), 1);
    }

    #[test]
    fn step_failed_straight_from_running_pending_and_retry_waiting() {
        let s = History::new().start("a", 1).fail("a").ok();
        assert_eq!(s.step_status("a"), StepPhase::Failed);
        let s = History::new().fail("a").ok();
        assert_eq!(s.step_status("a"), StepPhase::Failed);
        let s = History::new()
            .start("a", 1)
            .fail_attempt("a", 1, true)
            .fail("a")
            .ok();
        assert_eq!(s.step_status("a"), StepPhase::Failed);
    }

    #[test]
    fn pending_to_skipped() {
        let s = History::new().skip("a").ok();
        assert_eq!(s.step_status("a"), StepPhase::Skipped);
        assert_eq!(
            s.steps["a"].skip_reason.as_deref(),
            Some("condition is false")
        );
    }

    #[test]
    fn interrupted_while_running_and_while_waiting() {
        let s = History::new().start("a", 1).interrupt("a").ok();
        assert_eq!(s.step_status("a"), StepPhase::Interrupted);
        assert_eq!(s.steps["a"].history[0].outcome, AttemptOutcome::Interrupted);
        let s = History::new()
            .start("a", 1)
            .fail_attempt("a", 1, true)
            .interrupt("a")
            .ok();
        assert_eq!(s.step_status("a"), StepPhase::Interrupted);
    }

    #[test]
    fn run_finished_then_resumed() {
        let s = History::new()
            .start("a", 1)
            .succeed("a", 1)
            .finish(RunStatus::Succeeded)
            .ok();
        assert_eq!(s.status, RunStatus::Succeeded);
        assert_eq!(s.finished_at, Some(4.0));
        let s = History::new()
            .start("a", 1)
            .fail("a")
            .finish(RunStatus::Failed)
            .resume()
            .ok();
        assert_eq!(s.status, RunStatus::Running);
        assert_eq!(s.resumed_at, vec![5.0]);
    }

    #[test]
    fn crash_while_running_then_resume_reruns_with_next_attempt() {
        let s = History::new()
            .start("a", 1)
            .resume()
            .start("a", 2)
            .succeed("a", 2)
            .ok();
        let a = &s.steps["a"];
        assert_eq!(a.status, StepPhase::Succeeded);
        assert_eq!(a.history[0].outcome, AttemptOutcome::Lost);
        assert_eq!(a.history[0].ended_at, Some(3.0));
        assert_eq!(a.history[1].outcome, AttemptOutcome::Succeeded);
    }

    #[test]
    fn resume_restarts_failed_interrupted_skipped_and_waiting_steps() {
        let s = History::new()
            .start("f", 1)
            .fail("f")
            .start("i", 1)
            .interrupt("i")
            .skip("s")
            .start("w", 1)
            .fail_attempt("w", 1, true)
            .start("g", 1)
            .fail_attempt("g", 1, false)
            .finish(RunStatus::Failed)
            .resume()
            .start("f", 2)
            .start("i", 2)
            .start("s", 1)
            .start("w", 2)
            .start("g", 2)
            .ok();
        for id in ["f", "i", "s", "w", "g"] {
            assert_eq!(s.step_status(id), StepPhase::Running, "{id}");
        }
    }

    #[test]
    fn resume_may_skip_again() {
        let s = History::new()
            .start("f", 1)
            .fail("f")
            .skip("d")
            .resume()
            .skip("d")
            .ok();
        assert_eq!(s.step_status("d"), StepPhase::Skipped);
    }

    #[test]
    fn resume_may_skip_a_step_that_had_failed_or_was_interrupted() {
        let s = History::new()
            .start("f", 1)
            .fail("f")
            .start("i", 1)
            .interrupt("i")
            .finish(RunStatus::Failed)
            .resume()
            .skip("f")
            .skip("i")
            .ok();
        assert_eq!(s.step_status("f"), StepPhase::Skipped);
        assert_eq!(s.step_status("i"), StepPhase::Skipped);
    }

    /// DRJ006 regression: a resume decides again every step that had not succeeded, so it may
    /// record `step_failed` for a step that had failed, was interrupted or skipped (its input
    /// still cannot be built), and `step_skipped` for one whose attempt was lost in a crash, was
    /// waiting for a retry or whose last attempt had failed (its condition is false now).
    /// Replaying such a journal must not fail.
    #[test]
    fn resume_may_fail_or_skip_any_step_that_had_not_succeeded() {
        let s = History::new()
            .start("f", 1)
            .fail("f")
            .start("i", 1)
            .interrupt("i")
            .skip("s")
            .start("r", 1)
            .start("w", 1)
            .fail_attempt("w", 1, true)
            .start("g", 1)
            .fail_attempt("g", 1, false)
            .resume()
            .fail("f")
            .fail("i")
            .fail("s")
            .skip("r")
            .skip("w")
            .skip("g")
            .finish(RunStatus::Failed)
            .resume()
            .fail("f")
            .ok();
        for id in ["f", "i", "s"] {
            assert_eq!(s.step_status(id), StepPhase::Failed, "{id}");
        }
        for id in ["r", "w", "g"] {
            assert_eq!(s.step_status(id), StepPhase::Skipped, "{id}");
        }
        // The lost attempt stays lost; failing before the start adds no attempt.
        assert_eq!(s.steps["r"].history[0].outcome, AttemptOutcome::Lost);
        assert_eq!(s.steps["f"].history.len(), 1);
    }

    #[test]
    fn without_a_resume_a_stopped_step_cannot_fail_or_skip_again() {
        let failed = History::new().start("a", 1).fail("a");
        assert_eq!(
            failed.clone_h().fail("a").refused().kind,
            TransitionErrorKind::IllegalStepTransition
        );
        assert_eq!(
            History::new().skip("a").fail("a").refused().kind,
            TransitionErrorKind::IllegalStepTransition
        );
        assert_eq!(
            History::new()
                .start("a", 1)
                .fail_attempt("a", 1, true)
                .skip("a")
                .refused()
                .kind,
            TransitionErrorKind::IllegalStepTransition
        );
        // Twice in one epoch is refused even after a resume.
        assert_eq!(
            failed.resume().fail("a").fail("a").refused().kind,
            TransitionErrorKind::IllegalStepTransition
        );
    }

    #[test]
    fn resume_never_fails_or_skips_a_succeeded_or_undone_step() {
        let done = History::new().start("a", 1).succeed("a", 1);
        assert_eq!(
            done.clone_h().resume().fail("a").refused().kind,
            TransitionErrorKind::IllegalStepTransition
        );
        assert_eq!(
            done.clone_h().resume().skip("a").refused().kind,
            TransitionErrorKind::IllegalStepTransition
        );
        let undone = done.undo_start("a").undo_ok("a").resume();
        assert_eq!(
            undone.clone_h().fail("a").refused().kind,
            TransitionErrorKind::IllegalStepTransition
        );
        assert_eq!(
            undone.skip("a").refused().kind,
            TransitionErrorKind::IllegalStepTransition
        );
    }

    #[test]
    fn undo_transitions() {
        let base = History::new()
            .start("a", 1)
            .succeed("a", 1)
            .start("b", 1)
            .fail("b");
        let s = base.clone_h().undo_start("a").ok();
        assert_eq!(s.step_status("a"), StepPhase::Undoing);
        assert!(s.rollback_started());
        let s = base.clone_h().undo_start("a").undo_ok("a").ok();
        assert_eq!(s.step_status("a"), StepPhase::Undone);
        let s = base
            .clone_h()
            .undo_start("a")
            .undo_fail("a")
            .finish(RunStatus::RollbackFailed)
            .ok();
        assert_eq!(s.step_status("a"), StepPhase::UndoFailed);
        assert_eq!(s.status, RunStatus::RollbackFailed);
        // A second rollback retries a failed undo, and one that crashed half-way.
        let s = base
            .clone_h()
            .undo_start("a")
            .undo_fail("a")
            .finish(RunStatus::RollbackFailed)
            .resume()
            .undo_start("a")
            .undo_ok("a")
            .finish(RunStatus::RolledBack)
            .ok();
        assert_eq!(s.step_status("a"), StepPhase::Undone);
        let s = base
            .clone_h()
            .undo_start("a")
            .resume()
            .undo_start("a")
            .undo_ok("a")
            .ok();
        assert_eq!(s.step_status("a"), StepPhase::Undone);
    }

    impl History {
        fn clone_h(&self) -> History {
            History(self.0.clone())
        }
    }

    #[test]
    fn resume_points() {
        let s = History::new()
            .start("done", 1)
            .succeed("done", 1)
            .start("crashed", 1)
            .start("failed", 1)
            .fail_attempt("failed", 1, true)
            .start("failed", 2)
            .fail("failed")
            .skip("skipped")
            .ok();
        let mut outputs = Outputs::new();
        outputs.insert("n".into(), json!(1));
        assert_eq!(s.resume_point("done"), ResumePoint::Done { outputs });
        assert_eq!(
            s.resume_point("crashed"),
            ResumePoint::Rerun { attempts_used: 1 }
        );
        assert_eq!(
            s.resume_point("failed"),
            ResumePoint::Retry {
                attempts_used: 2,
                last_error: Some(StepError::permanent("failed", "boom"))
            }
        );
        assert_eq!(s.resume_point("skipped"), ResumePoint::NotStarted);
        assert_eq!(s.resume_point("never"), ResumePoint::NotStarted);
    }

    // ---- illegal histories ----

    #[test]
    fn empty_or_headless_journal_is_refused() {
        let e = RunState::replay(&[]).unwrap_err();
        assert_eq!(e.kind, TransitionErrorKind::NoRunStarted);
        assert_eq!(e.kind.code(), "DRJ001");
        let events = [RunEvent::StepStarted {
            step: "a".into(),
            attempt: 1,
            at: 1.0,
        }];
        let e = RunState::replay(&events).unwrap_err();
        assert_eq!(e.kind, TransitionErrorKind::NoRunStarted);
        assert_eq!(e.event, "step_started");
    }

    #[test]
    fn second_run_started_is_refused() {
        let mut h = History::new();
        h.0.push(h.0[0].clone());
        let e = h.refused();
        assert_eq!(e.kind, TransitionErrorKind::RunAlreadyStarted);
        assert_eq!(e.seq, 2);
    }

    #[test]
    fn succeeded_step_cannot_start_again_without_a_resume() {
        let e = History::new()
            .start("a", 1)
            .succeed("a", 1)
            .start("a", 2)
            .refused();
        assert_eq!(e.kind, TransitionErrorKind::IllegalStepTransition);
        assert_eq!(e.kind.code(), "DRJ006");
        assert_eq!(e.seq, 4);
        assert_eq!(e.event, "step_started");
        assert_eq!(e.step.as_deref(), Some("a"));
        assert_eq!(e.state, "run running, step succeeded");
        let msg = e.to_string();
        assert!(msg.contains("DRJ006") && msg.contains("event #4"), "{msg}");
    }

    #[test]
    fn succeeded_step_cannot_start_again_even_after_a_resume() {
        let e = History::new()
            .start("a", 1)
            .succeed("a", 1)
            .resume()
            .start("a", 2)
            .refused();
        assert_eq!(e.kind, TransitionErrorKind::IllegalStepTransition);
    }

    #[test]
    fn running_step_cannot_start_again_without_a_resume() {
        let e = History::new().start("a", 1).start("a", 2).refused();
        assert_eq!(e.kind, TransitionErrorKind::IllegalStepTransition);
    }

    #[test]
    fn failed_step_cannot_restart_without_a_resume() {
        let e = History::new()
            .start("a", 1)
            .fail("a")
            .start("a", 2)
            .refused();
        assert_eq!(e.kind, TransitionErrorKind::IllegalStepTransition);
    }

    #[test]
    fn step_event_after_finish_is_refused() {
        let e = History::new()
            .start("a", 1)
            .succeed("a", 1)
            .finish(RunStatus::Succeeded)
            .start("zzz", 1)
            .refused();
        assert_eq!(e.kind, TransitionErrorKind::EventAfterFinish);
        assert_eq!(e.state, "run finished (succeeded), step pending");
    }

    #[test]
    fn unknown_step_is_refused_when_the_runbook_is_known() {
        let h = History::new()
            .start("a", 1)
            .succeed("a", 1)
            .start("ghost", 1);
        let e = RunState::replay_checked(&h.0, ["a", "b"]).unwrap_err();
        assert_eq!(e.kind, TransitionErrorKind::UnknownStep);
        assert_eq!(e.step.as_deref(), Some("ghost"));
        assert!(RunState::replay_checked(&h.0, ["a", "ghost"]).is_ok());
    }

    #[test]
    fn double_finish_and_running_finish_are_refused() {
        let e = History::new()
            .finish(RunStatus::Succeeded)
            .finish(RunStatus::Failed)
            .refused();
        assert_eq!(e.kind, TransitionErrorKind::AlreadyFinished);
        let e = History::new().finish(RunStatus::Running).refused();
        assert_eq!(e.kind, TransitionErrorKind::InvalidFinalStatus);
    }

    #[test]
    fn attempt_numbers_must_follow() {
        let e = History::new().start("a", 1).succeed("a", 2).refused();
        assert_eq!(
            e.kind,
            TransitionErrorKind::AttemptMismatch {
                expected: "= 1".into(),
                found: 2
            }
        );
        let e = History::new()
            .start("a", 2)
            .fail_attempt("a", 2, true)
            .start("a", 2)
            .refused();
        assert!(matches!(
            e.kind,
            TransitionErrorKind::AttemptMismatch { .. }
        ));
        let e = History::new().start("a", 0).refused();
        assert!(matches!(
            e.kind,
            TransitionErrorKind::AttemptMismatch { .. }
        ));
    }

    #[test]
    fn outcome_events_need_a_running_step() {
        assert_eq!(
            History::new().succeed("a", 1).refused().kind,
            TransitionErrorKind::IllegalStepTransition
        );
        assert_eq!(
            History::new().fail_attempt("a", 1, true).refused().kind,
            TransitionErrorKind::IllegalStepTransition
        );
        assert_eq!(
            History::new().interrupt("a").refused().kind,
            TransitionErrorKind::IllegalStepTransition
        );
        assert_eq!(
            History::new().start("a", 1).skip("a").refused().kind,
            TransitionErrorKind::IllegalStepTransition
        );
    }

    #[test]
    fn undo_needs_a_succeeded_step_and_never_happens_twice() {
        assert_eq!(
            History::new().undo_start("a").refused().kind,
            TransitionErrorKind::IllegalStepTransition
        );
        assert_eq!(
            History::new()
                .start("a", 1)
                .fail("a")
                .undo_start("a")
                .refused()
                .kind,
            TransitionErrorKind::IllegalStepTransition
        );
        let done = History::new()
            .start("a", 1)
            .succeed("a", 1)
            .undo_start("a")
            .undo_ok("a");
        assert_eq!(
            done.clone_h().undo_start("a").refused().kind,
            TransitionErrorKind::IllegalStepTransition
        );
        assert_eq!(
            done.resume().undo_start("a").refused().kind,
            TransitionErrorKind::IllegalStepTransition
        );
        assert_eq!(
            History::new()
                .start("a", 1)
                .succeed("a", 1)
                .undo_ok("a")
                .refused()
                .kind,
            TransitionErrorKind::IllegalStepTransition
        );
        // An undo that failed is retried only by a new rollback (after a resume).
        assert_eq!(
            History::new()
                .start("a", 1)
                .succeed("a", 1)
                .undo_start("a")
                .undo_fail("a")
                .undo_start("a")
                .refused()
                .kind,
            TransitionErrorKind::IllegalStepTransition
        );
    }

    #[test]
    fn replay_is_deterministic_and_incremental() {
        let h = History::new()
            .start("a", 1)
            .fail_attempt("a", 1, true)
            .start("a", 2)
            .succeed("a", 2)
            .skip("b")
            .finish(RunStatus::Succeeded);
        let whole = h.ok();
        let mut step_by_step = RunState::replay(&h.0[..1]).unwrap();
        for e in &h.0[1..] {
            step_by_step.apply(e).unwrap();
        }
        assert_eq!(whole, step_by_step);
        assert_eq!(whole.step_order, vec!["a".to_owned(), "b".to_owned()]);
    }

    #[test]
    fn a_refused_event_leaves_the_state_unchanged() {
        let h = History::new().start("a", 1).succeed("a", 1);
        let mut s = h.ok();
        let before = s.clone();
        let bad = RunEvent::StepStarted {
            step: "a".into(),
            attempt: 2,
            at: 9.0,
        };
        assert!(s.apply(&bad).is_err());
        assert_eq!(s, before);
    }
}
