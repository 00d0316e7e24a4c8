//! The drflow step library: the built-in `core.*` steps and, in later modules, the cloud steps
//! and the backends they call.

mod core;
mod testing;

pub use crate::core::duration_param;
use drflow_engine::Registry;

/// Every built-in step type.
pub fn registry() -> Registry {
    let mut registry = Registry::new();
    core::register(&mut registry);
    testing::register(&mut registry);
    registry
}
