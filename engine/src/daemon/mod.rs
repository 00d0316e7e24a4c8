//! The parts of `drflow daemon` that know no cloud and no process: what to do with a delivered
//! message ([`Intake`]), the durable record of events and firings ([`Inbox`]), the keyed
//! scheduler that never starts two runs for one lock key ([`KeyedScheduler`]), the counters
//! ([`Metrics`]) and the loopback `/healthz` and `/metrics` server ([`http`]).
//!
//! The binary's `drflow daemon` wires them to the event sources of a target (the queue
//! provision created, the reconcile of alarm states, drflow's own probe) and to the
//! [`crate::runner::Runner`]. See docs/operations.md.

pub mod http;
mod inbox;
mod intake;
mod keyed;
mod metrics;

pub use http::{Health, Status};
pub use inbox::{FiringRecord, INBOX_FILE, Inbox, InboxError, TakenEvent};
pub use intake::{Intake, Verdict, memory_needed};
pub use keyed::{KeyedScheduler, Offer};
pub use metrics::{LATENCY_BUCKETS, Metrics};
