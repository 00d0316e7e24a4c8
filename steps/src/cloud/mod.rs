//! The provisioning step library. Each file is one service (or one concern) and registers its
//! step types; [`framework`] holds the find-or-create-or-repair loop they share.

pub(crate) mod checks;
mod compute;
mod data;
pub(crate) mod drift;
pub(crate) mod framework;
pub(crate) mod input;
pub(crate) mod monitoring;
mod network;
mod ops;
mod security;
mod traffic;

use std::sync::Arc;

use drflow_engine::Registry;

use crate::target::LazyBackend;

/// Registers every cloud step type, all sharing one lazily opened backend.
pub(crate) fn register(reg: &mut Registry, backend: &Arc<LazyBackend>) {
    network::register(reg, backend);
    data::register(reg, backend);
    compute::register(reg, backend);
    security::register(reg, backend);
    traffic::register(reg, backend);
    monitoring::register(reg, backend);
    ops::register(reg, backend);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CloudConfig;

    /// The string keys in `input::<fn>(p, "key")` calls of a source file.
    fn literal_keys(src: &str) -> Vec<&str> {
        let mut keys = Vec::new();
        let mut rest = src;
        while let Some(at) = rest.find("input::") {
            rest = &rest[at + "input::".len()..];
            let Some(open) = rest.find('(') else { break };
            let call_end = rest[open..].find(')').map_or(rest.len(), |e| open + e);
            let args = &rest[open..call_end];
            if let Some(q) = args.find(", \"") {
                let key = &args[q + 3..];
                if let Some(end) = key.find('"') {
                    keys.push(&key[..end]);
                }
            }
        }
        keys
    }

    /// A rule that reads an undeclared name would never run, an output that echoes one would
    /// echo nothing, and a default outside its own constraints would be refused in every
    /// runbook that leaves it out: none of these may exist.
    #[test]
    fn every_declaration_is_consistent() {
        let reg = crate::registry(&CloudConfig::default());
        for t in reg.iter() {
            let spec = t.spec();
            for rule in &spec.rules {
                for read in &rule.reads {
                    assert!(
                        spec.param(read).is_some(),
                        "{}: rule `{}` reads `{read}`, which is not declared",
                        spec.name,
                        rule.doc
                    );
                }
            }
            for o in &spec.outputs {
                if let Some(from) = o.echoes {
                    assert!(
                        spec.param(from).is_some(),
                        "{}: {} echoes `{from}`",
                        spec.name,
                        o.name
                    );
                }
            }
            for p in &spec.params {
                if let Some(d) = &p.default {
                    assert!(p.ty.accepts(d), "{}: default of {}", spec.name, p.name);
                    assert!(
                        p.check(d).is_ok(),
                        "{}: the default of {} breaks its own constraints: {:?}",
                        spec.name,
                        p.name,
                        p.check(d)
                    );
                }
            }
        }
    }

    /// A misspelt parameter name in a step body would compile and miss at run time, after the
    /// value check had passed: every literal key a body reads is one its file declares.
    #[test]
    fn every_key_a_step_body_reads_is_declared() {
        let files: [(&str, &str, crate::declared_keys::Register); 7] = [
            ("network.rs", include_str!("network.rs"), network::register),
            ("data.rs", include_str!("data.rs"), data::register),
            ("compute.rs", include_str!("compute.rs"), compute::register),
            (
                "security.rs",
                include_str!("security.rs"),
                security::register,
            ),
            ("traffic.rs", include_str!("traffic.rs"), traffic::register),
            (
                "monitoring.rs",
                include_str!("monitoring.rs"),
                monitoring::register,
            ),
            ("ops.rs", include_str!("ops.rs"), ops::register),
        ];
        let total = crate::declared_keys::reads_only_declared(&files, literal_keys);
        assert!(
            total > 50,
            "the scan found only {total} keys; has the reading style changed?"
        );
    }
}
