//! The provisioning step library. Each file is one service (or one concern) and registers its
//! step types; [`framework`] holds the find-or-create-or-repair loop they share.

mod drift;
pub(crate) mod framework;
pub(crate) mod input;
mod network;

use std::sync::Arc;

use drflow_engine::Registry;

use crate::target::LazyBackend;

/// Registers every cloud step type, all sharing one lazily opened backend.
pub(crate) fn register(reg: &mut Registry, backend: &Arc<LazyBackend>) {
    network::register(reg, backend);
}
