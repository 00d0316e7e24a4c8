//! The events a run is made of.
//!
//! The scheduler hands every state change to a [`RunSink`] *before* it acts on it: the journal
//! writes it ahead, the progress display draws it. Replaying the events of a run through
//! [`crate::state`] rebuilds the run's state.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::step::{Outputs, StepError};

/// Seconds since the Unix epoch, with millisecond precision, as journaled. A run's events are
/// stamped on the run's clock ([`crate::RunOptions::clock`]): on the simulated cloud that is
/// virtual time.
pub type Timestamp = f64;

/// The current wall-clock time as a [`Timestamp`].
///
/// Never for what happens in a run (its events read the run's clock): only for what lives on
/// the wall clock whatever the target, such as leases shared between processes and the time a
/// journal schema was migrated.
pub fn now() -> Timestamp {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_millis() as f64) / 1000.0
}

/// How a whole run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Still going (or died without finishing: see the journal's lock lease).
    Running,
    /// Every step succeeded or was skipped by its condition.
    Succeeded,
    /// At least one step failed.
    Failed,
    /// Ctrl-C, SIGTERM or the whole-run timeout stopped it.
    Interrupted,
    /// A rollback undid the succeeded steps.
    RolledBack,
    /// A rollback stopped at an undo that failed.
    RollbackFailed,
}

impl RunStatus {
    /// The lowercase name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Interrupted => "interrupted",
            RunStatus::RolledBack => "rolled_back",
            RunStatus::RollbackFailed => "rollback_failed",
        }
    }
}

/// One state change of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum RunEvent {
    /// The run began. `params` holds the resolved parameters with secrets replaced by `"***"`.
    RunStarted {
        run_id: String,
        runbook: String,
        path: String,
        content_hash: String,
        params: Value,
        at: Timestamp,
        /// A hash of each step's definition (`uses` and `with`), so that a forced resume can
        /// tell which succeeded steps still mean what they meant.
        #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
        step_hashes: std::collections::BTreeMap<String, String>,
    },
    /// A resumed run picked up again (after a crash or an interruption).
    RunResumed { at: Timestamp },
    /// An attempt of a step began.
    StepStarted {
        step: String,
        attempt: u32,
        at: Timestamp,
    },
    /// An attempt failed; `will_retry` says whether another attempt follows.
    AttemptFailed {
        step: String,
        attempt: u32,
        error: StepError,
        will_retry: bool,
        at: Timestamp,
    },
    /// The step succeeded with these outputs.
    StepSucceeded {
        step: String,
        attempt: u32,
        outputs: Outputs,
        at: Timestamp,
    },
    /// A running attempt wrote a fact down before acting on it ([`crate::StepContext::note`]):
    /// what it is about to create, say, so that a later attempt of the same step, in this
    /// process or after a resume, knows the thing it finds is this run's own.
    StepNoted {
        step: String,
        attempt: u32,
        note: Value,
        at: Timestamp,
    },
    /// The step failed for good (after its last attempt).
    StepFailed {
        step: String,
        error: StepError,
        at: Timestamp,
    },
    /// The step did not run: its condition was false or something it needs failed.
    StepSkipped {
        step: String,
        reason: String,
        at: Timestamp,
    },
    /// The step was running when the run was interrupted.
    StepInterrupted { step: String, at: Timestamp },
    /// Rollback began undoing a succeeded step.
    UndoStarted { step: String, at: Timestamp },
    /// The undo of a step succeeded.
    UndoSucceeded { step: String, at: Timestamp },
    /// The undo of a step failed; the unwind stops here.
    UndoFailed {
        step: String,
        error: StepError,
        at: Timestamp,
    },
    /// The run ended.
    RunFinished {
        status: RunStatus,
        outputs: Outputs,
        at: Timestamp,
    },
}

impl RunEvent {
    /// When it happened, on the run's clock.
    pub fn at(&self) -> Timestamp {
        match self {
            RunEvent::RunStarted { at, .. }
            | RunEvent::RunResumed { at }
            | RunEvent::StepStarted { at, .. }
            | RunEvent::AttemptFailed { at, .. }
            | RunEvent::StepSucceeded { at, .. }
            | RunEvent::StepNoted { at, .. }
            | RunEvent::StepFailed { at, .. }
            | RunEvent::StepSkipped { at, .. }
            | RunEvent::StepInterrupted { at, .. }
            | RunEvent::UndoStarted { at, .. }
            | RunEvent::UndoSucceeded { at, .. }
            | RunEvent::UndoFailed { at, .. }
            | RunEvent::RunFinished { at, .. } => *at,
        }
    }

    /// The step this event is about, if any.
    pub fn step(&self) -> Option<&str> {
        match self {
            RunEvent::StepStarted { step, .. }
            | RunEvent::AttemptFailed { step, .. }
            | RunEvent::StepSucceeded { step, .. }
            | RunEvent::StepNoted { step, .. }
            | RunEvent::StepFailed { step, .. }
            | RunEvent::StepSkipped { step, .. }
            | RunEvent::StepInterrupted { step, .. }
            | RunEvent::UndoStarted { step, .. }
            | RunEvent::UndoSucceeded { step, .. }
            | RunEvent::UndoFailed { step, .. } => Some(step),
            RunEvent::RunStarted { .. }
            | RunEvent::RunResumed { .. }
            | RunEvent::RunFinished { .. } => None,
        }
    }
}

/// Receives every event of a run before the scheduler acts on it.
///
/// An error from `record` stops the run: the engine never acts on a state change it could not
/// write down.
pub trait RunSink: Send {
    /// Takes one event.
    fn record(&mut self, event: &RunEvent) -> Result<(), SinkError>;

    /// Called when the scheduler has nothing to do until a step finishes: a good moment to
    /// flush a batch. Events recorded before `flush` returns must be durable afterwards.
    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

/// A sink could not take an event (e.g. the journal's disk is full).
#[derive(Debug, thiserror::Error)]
#[error("could not record the run's progress: {0}")]
pub struct SinkError(pub String);

/// A sink that forwards to several sinks in order.
#[derive(Default)]
pub struct Fanout(pub Vec<Box<dyn RunSink>>);

impl RunSink for Fanout {
    fn record(&mut self, event: &RunEvent) -> Result<(), SinkError> {
        self.0.iter_mut().try_for_each(|s| s.record(event))
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.0.iter_mut().try_for_each(|s| s.flush())
    }
}

/// A sink that keeps events in memory (tests and `--output json`).
#[derive(Debug, Default, Clone)]
pub struct Recorder(pub std::sync::Arc<std::sync::Mutex<Vec<RunEvent>>>);

impl Recorder {
    /// A copy of everything recorded so far.
    pub fn events(&self) -> Vec<RunEvent> {
        self.0.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

impl RunSink for Recorder {
    fn record(&mut self, event: &RunEvent) -> Result<(), SinkError> {
        self.0
            .lock()
            .map_err(|_| SinkError("recorder lock poisoned".into()))?
            .push(event.clone());
        Ok(())
    }
}
