//! The failover step types: reading the signals and the database, deciding (pure), and the
//! verbs of a failover on the typed interface ([`crate::backend::FailoverApi`]).
//!
//! One file per concern: [`discover`] finds the environment by its names, [`signals`] reads
//! whether the primary is down, [`database`] reads and promotes the global database,
//! [`decide`] decides (pure), [`capacity`] fences and scales, [`traffic`] moves and checks
//! DNS, [`notify`] publishes to SNS, [`report`] adds the run up (pure). No step here imports
//! the sim: they see the backend seam only.

mod capacity;
mod database;
mod decide;
mod discover;
#[cfg(test)]
mod fake;
mod notify;
mod report;
mod signals;
mod step;
#[cfg(test)]
mod tests;
mod traffic;

use std::sync::Arc;

use drflow_engine::Registry;

use crate::target::LazyBackend;

pub use decide::{Decision, Readings, Signal, Verdict, decide};

/// Registers the failover step types that act on the cloud, all sharing one backend.
pub(crate) fn register_cloud(reg: &mut Registry, backend: &Arc<LazyBackend>) {
    discover::register(reg, backend);
    signals::register(reg, backend);
    database::register(reg, backend);
    capacity::register(reg, backend);
    traffic::register(reg, backend);
    notify::register(reg, backend);
}

/// Registers the pure ones (deciding and reporting), which touch nothing.
pub(crate) fn register_pure(reg: &mut Registry) {
    decide::register(reg);
    report::register(reg);
}
