//! The provisioning step library. Each file is one service (or one concern) and registers its
//! step types; [`framework`] holds the find-or-create-or-repair loop they share.

mod checks;
mod compute;
mod data;
mod drift;
pub(crate) mod framework;
pub(crate) mod input;
mod monitoring;
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
