//! The drflow runbook engine.
//!
//! In the order a run uses them:
//!
//! 1. The step contract: what a step type fulfils ([`StepType`], [`StepSpec`], [`Registry`]).
//! 2. [`compile()`]: YAML text to a checked [`Runbook`], every problem reported at once as
//!    [`Diagnostics`] with `file:line:col`.
//! 3. [`resolve_params`]: a runbook's parameters from defaults, a file and `-p` flags; then
//!    [`check_values`]: every step input known before the run checked against its step type's
//!    declared constraints ([`ParamSpec`], [`Rule`]), each problem located where the value came
//!    from.
//! 4. [`run`]: the scheduler, which runs the [`Dag`] and reports [`RunEvent`]s to a
//!    [`RunSink`] before acting on them, and returns a [`RunReport`]. Everything time-related
//!    in a run reads its [`Clock`] ([`RunOptions::clock`]): wall time, or the simulated cloud's
//!    [`VirtualClock`] on a paused tokio runtime.
//!
//! Durable runs (see `docs/journal.md`):
//!
//! 5. [`Journal`]: the SQLite journal, a [`RunSink`] that writes every event ahead; lists runs
//!    and loads their events.
//! 6. [`RunState`]: a run rebuilt from its events by one transition table; an impossible event is
//!    a [`TransitionError`]. [`RunState::resume_point`] says what a resume does with each step
//!    (feeding [`Prior`]).
//! 7. [`LeaseStore`] and [`HeldLease`]: a runbook's `lock:` (and each run), held by one live run
//!    at a time across processes, renewed by a tokio task.
//! 8. [`redact`], [`SecretFlow`] and [`Secrets`]: secret parameters, and every value derived
//!    from one or from a credential variable, never written in clear nor printed.
//! 9. [`rollback()`]: undoes succeeded steps in reverse dependency order, resumably.
//! 10. [`runner`]: the whole life of a durable run (journal, leases, lock key, scheduling,
//!     `on_failure: rollback`, resume) as a library API with typed errors and test hooks.
//!
//! Triggers: [`triggers`] reads `drflow.yaml` (which events start which runbook) and decides,
//! purely, when its triggers fire.
//!
//! The engine knows nothing about AWS: step types come from the `drflow-steps` crate.

mod clock;
mod compile;
mod constraint;
pub mod daemon;
mod dag;
mod diag;
mod duration;
mod event;
mod expr;
mod expr_env;
mod expr_tree;
mod expr_types;
pub mod formats;
mod journal;
mod lock;
mod params;
mod rollback;
pub mod runner;
mod scheduler;
mod scope;
mod secret_flow;
mod secrets;
mod shared_log;
mod state;
mod step;
pub mod triggers;
mod values;
mod yaml;

pub use clock::{Clock, SharedClock, Sleep, VirtualClock, WallClock};
pub use compile::{
    BOOL_HINT, Condition, OnFailure, ParamDecl, RetryPolicy, Runbook, Site, Step, compile,
    content_hash,
};
pub use constraint::{BoundKind, Format, Rule, RuleCheck, RuleViolation, Violation};
pub use dag::{Dag, GraphFormat};
pub use diag::{Diagnostic, Diagnostics, Pos, nearest, suggest};
pub use duration::{format_duration, parse_duration};
pub use event::{Fanout, Recorder, RunEvent, RunSink, RunStatus, SinkError, Timestamp, now};
pub use expr::{Expr, Ref, Template};
pub use expr_env::MAX_RESULT_BYTES;
pub use journal::{
    APPLICATION_ID, DEFAULT_STATE_DIR, Durability, JOURNAL_FILE, Journal, JournalError, MIGRATIONS,
    RunSummary, SCHEMA_VERSION, STATE_DIR_ENV, parse_status, resolve_state_dir,
};
pub use lock::{
    FileLeaseStore, HeldLease, Holder, HolderIdentity, LeaseFuture, LeaseGrant, LeaseOptions,
    LeaseStore, LeaseWallClock, LockError, holder_is_gone, hostname, live_holder, lock_holder,
    process_start,
};
pub use params::{redacted, resolve as resolve_params, resolve_located as resolve_params_located};
pub use rollback::{RollbackPlan, RollbackReport, plan_rollback, rollback};
pub use scheduler::{
    Prior, RunError, RunOptions, RunReport, StepReport, StepStatus, Stop, backoff, evaluate_input,
    run,
};
pub use scope::{Scope, iso8601};
pub use secret_flow::{SecretFlow, is_credential_env};
pub use secrets::{MIN_SCRUB_LEN, REDACTED, Redacting, Secrets, redact};
pub use shared_log::{Fence, MemoryLog, SharedEvent, SharedLog, SharedLogError};
pub use state::{
    Attempt, AttemptOutcome, ResumePoint, RunState, StepPhase, StepState, TransitionError,
    TransitionErrorKind, event_name,
};
pub use step::{
    Notebook, OutputSpec, Outputs, ParamSpec, Reevaluate, Registry, StepContext, StepError,
    StepFuture, StepSpec, StepType, ValueType,
};
pub use values::{
    CheckTime, ParamOrigin, ResolvedParams, SkipReason, SkippedCheck, ValueReport, check_values,
};
pub use yaml::{MAX_ALIAS_NODES, MAX_DEPTH, Node, NodeKind, parse as parse_yaml};
