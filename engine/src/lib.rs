//! The drflow runbook engine.
//!
//! In the order a run uses them:
//!
//! 1. [`step`]: the contract a step type fulfils ([`StepType`], [`StepSpec`], [`Registry`]).
//! 2. [`event`]: the events a run is made of ([`RunEvent`]) and where they go ([`RunSink`]).
//!
//! The engine knows nothing about AWS: step types come from the `drflow-steps` crate.

mod duration;
mod event;
mod journal;
mod state;
mod step;

pub use duration::{format_duration, parse_duration};
pub use event::{Fanout, Recorder, RunEvent, RunSink, RunStatus, SinkError, Timestamp, now};
pub use journal::{
    APPLICATION_ID, DEFAULT_STATE_DIR, Durability, JOURNAL_FILE, Journal, JournalError, MIGRATIONS,
    RunSummary, SCHEMA_VERSION, STATE_DIR_ENV, format_timestamp, new_run_id, parse_status,
    resolve_state_dir,
};
pub use state::{
    Attempt, AttemptOutcome, ResumePoint, RunState, StepState, StepStatus, TransitionError,
    TransitionErrorKind, event_name,
};
pub use step::{
    OutputSpec, Outputs, ParamSpec, Registry, StepContext, StepError, StepFuture, StepSpec,
    StepType, ValueType,
};
