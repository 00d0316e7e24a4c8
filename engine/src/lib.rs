//! The drflow runbook engine.
//!
//! In the order a run uses them:
//!
//! 1. [`step`]: the contract a step type fulfils ([`StepType`], [`StepSpec`], [`Registry`]).
//! 2. [`compile()`]: YAML text to a checked [`Runbook`], every problem reported at once as
//!    [`Diagnostics`] with `file:line:col`.
//! 3. [`resolve_params`]: a runbook's parameters from defaults, a file and `-p` flags.
//! 4. [`run`]: the scheduler, which runs the [`Dag`] and reports [`RunEvent`]s to a
//!    [`RunSink`] before acting on them, and returns a [`RunReport`].
//!
//! The engine knows nothing about AWS: step types come from the `drflow-steps` crate.

mod compile;
mod dag;
mod diag;
mod duration;
mod event;
mod expr;
mod params;
mod scheduler;
mod scope;
mod step;
mod yaml;

pub use compile::{
    Condition, OnFailure, ParamDecl, RetryPolicy, Runbook, Step, compile, content_hash,
};
pub use dag::{Dag, GraphFormat};
pub use diag::{Diagnostic, Diagnostics, Pos, nearest, suggest};
pub use duration::{format_duration, parse_duration};
pub use event::{Fanout, Recorder, RunEvent, RunSink, RunStatus, SinkError, Timestamp, now};
pub use expr::{Template, truthy};
pub use params::{redacted, resolve as resolve_params};
pub use scheduler::{
    Prior, RunError, RunOptions, RunReport, StepReport, StepStatus, Stop, backoff, evaluate_input,
    run,
};
pub use scope::{Scope, iso8601};
pub use step::{
    OutputSpec, Outputs, ParamSpec, Reevaluate, Registry, StepContext, StepError, StepFuture,
    StepSpec, StepType, ValueType,
};
pub use yaml::{MAX_ALIAS_NODES, MAX_DEPTH, Node, NodeKind, parse as parse_yaml};
