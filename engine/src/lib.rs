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
mod state;
mod step;

pub use duration::{format_duration, parse_duration};
pub use event::{Fanout, Recorder, RunEvent, RunSink, RunStatus, SinkError, Timestamp, now};
pub use state::{
    Attempt, AttemptOutcome, ResumePoint, RunState, StepState, StepStatus, TransitionError,
    TransitionErrorKind, event_name,
};
pub use step::{
    OutputSpec, Outputs, ParamSpec, Registry, StepContext, StepError, StepFuture, StepSpec,
    StepType, ValueType,
};
