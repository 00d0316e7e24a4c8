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
pub(crate) mod fake;
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
pub(crate) use discover::{health_check_name, probe_target};
pub(crate) use signals::Trail;

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

#[cfg(test)]
mod declared {
    use super::*;

    /// The keys a source reads from its input: `(p, "key")` and `p.get("key")`.
    fn keys(src: &str) -> Vec<&str> {
        let mut out = Vec::new();
        for pat in ["(p, \"", "p.get(\""] {
            let mut rest = src;
            while let Some(at) = rest.find(pat) {
                rest = &rest[at + pat.len()..];
                if let Some(end) = rest.find('"') {
                    out.push(&rest[..end]);
                }
            }
        }
        out
    }

    /// A misspelt parameter name in a body would compile and fail at run time: every key a
    /// body reads is one its file's step types declare.
    #[test]
    fn every_key_a_body_reads_is_declared() {
        let files: [(&str, &str, crate::declared_keys::Register); 6] = [
            (
                "discover.rs",
                include_str!("discover.rs"),
                discover::register,
            ),
            ("signals.rs", include_str!("signals.rs"), signals::register),
            (
                "database.rs",
                include_str!("database.rs"),
                database::register,
            ),
            (
                "capacity.rs",
                include_str!("capacity.rs"),
                capacity::register,
            ),
            ("traffic.rs", include_str!("traffic.rs"), traffic::register),
            ("notify.rs", include_str!("notify.rs"), notify::register),
        ];
        let total = crate::declared_keys::reads_only_declared(&files, keys);
        assert!(total > 40, "the scan found only {total} keys");
    }
}
