//! The drflow step library.

use drflow_engine::Registry;

/// Every built-in step type.
pub fn registry() -> Registry {
    Registry::new()
}
