//! Test support: a misspelt parameter name in a step body compiles and misses at run time,
//! after the value check has passed. [`reads_only_declared`] checks that every key a source
//! file reads is a parameter one of its file's step types declares.

use std::sync::Arc;

use drflow_engine::Registry;

use crate::CloudConfig;
use crate::target::LazyBackend;

/// Registers a file's step types.
pub(crate) type Register = fn(&mut Registry, &Arc<LazyBackend>);

/// Asserts that each key `keys` finds in a file's source is declared by the step types its
/// `register` adds; returns how many keys were checked (so a caller can tell a scan that found
/// nothing from a clean one).
pub(crate) fn reads_only_declared(
    files: &[(&str, &str, Register)],
    keys: fn(&str) -> Vec<&str>,
) -> usize {
    let backend = Arc::new(LazyBackend::new(CloudConfig::default()));
    let mut total = 0;
    for (file, src, register) in files {
        let mut reg = Registry::new();
        register(&mut reg, &backend);
        let declared: Vec<&str> = reg
            .iter()
            .flat_map(|t| t.spec().params.iter().map(|p| p.name))
            .collect();
        for key in keys(src) {
            total += 1;
            assert!(
                declared.contains(&key),
                "{file} reads `{key}`, which no step type of {file} declares"
            );
        }
    }
    total
}
