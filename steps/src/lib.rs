//! The drflow step library: the built-in `core.*` steps and, in later modules, the cloud steps
//! and the backends they call.

mod core;
mod testing;

pub use crate::core::duration_param;
use drflow_engine::Registry;

/// Set to `1` to add the test-only steps (`core.append_file`) to [`registry`].
pub const TEST_STEPS_ENV: &str = "DRFLOW_TEST_STEPS";

/// Every built-in step type (plus the test-only ones when `DRFLOW_TEST_STEPS=1`).
pub fn registry() -> Registry {
    let mut registry = Registry::new();
    core::register(&mut registry);
    // Test-only steps (not idempotent on purpose) are there only when asked for.
    if std::env::var_os(TEST_STEPS_ENV).is_some_and(|v| !v.is_empty() && v != "0") {
        testing::register(&mut registry);
    }
    registry
}
