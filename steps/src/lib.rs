//! The drflow step library: the step types runbooks use, and the clouds they act on.
//!
//! In layers, bottom up:
//!
//! 1. [`backend`]: the seam. A generic resource API ([`CloudBackend`]: find, create, update,
//!    delete, list, wait) over [`Kind`]s of resource with backend-neutral JSON specs. Steps never
//!    see an SDK type.
//! 2. [`sim`]: the embedded simulated cloud ([`SimBackend`]), a deterministic [`sim::World`]
//!    with a virtual clock, persisted under the state directory.
//! 3. The step types: the built-in `core.*` steps, and the cloud steps (`network.vpc`,
//!    `rds.global_database`, ...) in which all provisioning logic (naming, tags,
//!    find-or-create, drift repair) lives once, for every backend.
//! 4. [`registry`]: every step type, the cloud steps bound to the [`CloudConfig`]'s target;
//!    [`scratch_registry`]: the same, bound to a scratch copy of the world, and [`Plan`]: what
//!    a run on it created, changed and deleted (`drflow run --plan`).
//! 5. [`watch`]: event sources for the triggers that drflow makes itself (its own probe of the
//!    primary from the standby region), driven by whoever schedules them (the daemon, the
//!    drill).

pub mod aws;
pub mod backend;
mod cloud;
mod core;
pub mod daemon;
#[cfg(test)]
mod declared_keys;
mod failover;
mod json;
mod plan;
pub mod policy;
pub mod regions;
pub mod sim;
mod target;
pub mod watch;

use std::sync::Arc;

use drflow_engine::Registry;

pub use crate::core::{MESSAGE_EVENTS, duration_param};
pub use backend::{CloudBackend, CloudError, CreateRequest, ErrorKind, Kind, Resource};
/// How a resource's spec, as the cloud returns it, differs from what a step asks for: the
/// drifted dotted paths (see `backend::KeyClass`).
pub use cloud::drift::diff as spec_drift;
pub use cloud::framework::{Change, MANAGED_BY, RESOURCE_EVENTS, SUFFIX_TAG};
pub use failover::{Decision, Readings, Signal, Verdict, decide};
pub use plan::{Action, Plan, ResourceChange, decisive_outputs, makes_its_actions, record_ttl_ms};
pub use sim::SimBackend;
pub use target::{
    CloudConfig, DEFAULT_STATE_DIR, LazyBackend, STATE_DIR_ENV, TARGET_ENV, Target,
    state_dir_from_env, unavailable as target_unavailable,
};

/// Every built-in step type, with the cloud steps bound to the target in `config`. The backend
/// opens on first use, so `validate`, `steps` and `schema` never touch the sim's world.
pub fn registry(config: &CloudConfig) -> Registry {
    registry_with_backend(Arc::new(LazyBackend::new(config.clone())))
}

/// Every built-in step type, with the cloud steps bound to a scratch copy of the target's
/// world: they may create, change and delete freely and nothing reaches the real world. This is
/// what `drflow run --plan` runs on, and what a destructive run asks about first.
///
/// On the sim the copy is read once from `<state_dir>/sim/world.json` without taking its lock,
/// and nothing under the state directory is created or written. The aws target has no copy:
/// its cloud steps fail with `not_built`.
///
/// The copy is on `clock`, the clock of the run that plans (see [`LazyBackend::with_clock`]).
///
/// Errors: the world file cannot be read or was written by a newer drflow.
pub fn scratch_registry(
    config: &CloudConfig,
    clock: drflow_engine::SharedClock,
) -> Result<Registry, CloudError> {
    if config.target == Target::Aws {
        // AWS has no copy to change freely: a plan's cloud steps say so instead of acting.
        return Ok(registry_with_backend(Arc::new(LazyBackend::refusing(
            config.clone(),
            CloudError::new(
                crate::backend::ErrorKind::NotBuilt,
                "a plan runs on a scratch copy of the simulated cloud; the aws target has none",
            ),
        ))));
    }
    let sim: Arc<dyn CloudBackend> =
        Arc::new(SimBackend::scratch_copy(&config.state_dir)?.with_clock(clock));
    Ok(registry_with_backend(Arc::new(LazyBackend::from_backend(
        config.clone(),
        sim,
    ))))
}

/// Whether the step type `name` acts on the cloud (so it needs a usable target), as opposed to
/// the `core.*` glue.
pub fn is_cloud_step(name: &str) -> bool {
    static CLOUD: std::sync::LazyLock<Vec<&'static str>> = std::sync::LazyLock::new(|| {
        let mut registry = Registry::new();
        // Registering never opens the backend, so any configuration will do.
        let backend = Arc::new(LazyBackend::new(CloudConfig::default()));
        cloud::register(&mut registry, &backend);
        failover::register_cloud(&mut registry, &backend);
        registry.names().collect()
    });
    CLOUD.contains(&name)
}

/// Like [`registry`], with a backend the caller already holds (tests that inspect the sim).
pub fn registry_with_backend(backend: Arc<LazyBackend>) -> Registry {
    let mut registry = Registry::new();
    core::register(&mut registry);
    cloud::register(&mut registry, &backend);
    failover::register_cloud(&mut registry, &backend);
    failover::register_pure(&mut registry);
    registry
}
