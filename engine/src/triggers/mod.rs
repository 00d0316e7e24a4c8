//! Triggers: which events start which runbook (`drflow.yaml`, documented in
//! `docs/triggers.md`), shared by `drflow triggers check`, the drill and the daemon to come, so
//! that what one shows is what the others do.
//!
//! - [`pattern_matches`] and [`check_pattern`]: EventBridge event patterns.
//! - [`TriggerConfig`]: the `drflow.yaml` model and its reader, with located errors.
//! - [`Evaluator`]: the pure evaluator, events in, [`Firing`]s out.
//! - [`read_events`]: a recorded events file, for a replay.
//! - [`check_runbooks`]: each trigger's runbook compiles and declares the parameters the
//!   trigger passes.

mod check;
mod config;
mod eval;
mod pattern;
mod replay;
mod time;

pub use check::check_runbooks;
pub use config::{SignalSpec, TEMPLATE_ROOTS, Trigger, TriggerConfig, TriggerSites};
pub use eval::{Evaluator, Evidence, Firing, Observation, Suppressed};
pub use pattern::{OPERATORS, PatternProblem, check_pattern, pattern_matches, pattern_problems};
pub use replay::{RecordedEvent, read_events};
pub use time::parse_timestamp;
