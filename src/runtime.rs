//! The async runtime and the clock of a command that runs steps, chosen by its target: the one
//! place the binary builds a tokio runtime.
//!
//! - `--target sim`: a `current_thread` runtime whose time is paused, and a [`VirtualClock`]
//!   that starts at the simulated world's saved time. Tokio jumps to the next timer whenever
//!   every task waits, so a run's waits, backoffs and timeouts cost no wall time, parallel waits
//!   overlap exactly, and the result never depends on how tasks interleave.
//! - `--target aws`: a multi-thread runtime and the [`WallClock`].
//!
//! Nothing inside the runtime may wait for the real world with a tokio timer: on the paused
//! runtime such a loop would spin through virtual time. Real-world events (signals, a lost
//! lease, a test's hold file) come in through the I/O driver or a thread that wakes the task.

use std::future::Future;
use std::sync::Arc;

use drflow_engine::{Clock, Registry, SharedClock, VirtualClock, WallClock};
use drflow_steps::{CloudConfig, LazyBackend, Target};

use crate::{EXIT_FAILED, Failure};

/// A tokio runtime and the clock that goes with it.
pub struct Runtime {
    tokio: tokio::runtime::Runtime,
    clock: SharedClock,
}

impl Runtime {
    /// The runtime and clock for a command on `config`'s target. On the sim the clock starts at
    /// the world's saved time (read without locking); a world that cannot be read starts it at
    /// the wall-clock time, and the first cloud step reports what is wrong with the world.
    pub fn start(config: &CloudConfig) -> Result<Runtime, Failure> {
        let built = match config.target {
            Target::Sim => tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .start_paused(true)
                .build(),
            Target::Aws => tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build(),
        };
        let tokio = built.map_err(|e| Failure {
            diagnostics: Vec::new(),
            code: EXIT_FAILED,
            message: format!("error: cannot start the async runtime: {e}"),
        })?;
        let clock: SharedClock = match config.target {
            Target::Sim => {
                let base_ms = config
                    .virtual_clock_ms()
                    .unwrap_or_else(|| WallClock.now_ms());
                // Made inside the runtime, so that it counts the runtime's paused time.
                let _inside = tokio.enter();
                Arc::new(VirtualClock::new(base_ms))
            }
            Target::Aws => Arc::new(WallClock),
        };
        Ok(Runtime { tokio, clock })
    }

    /// The clock: give it to the run ([`drflow_engine::RunOptions::clock`]) and the backend.
    pub fn clock(&self) -> SharedClock {
        Arc::clone(&self.clock)
    }

    /// Runs `work` to the end on this runtime.
    pub fn block_on<F: Future>(&self, work: F) -> F::Output {
        self.tokio.block_on(work)
    }

    /// Every step type, the cloud steps on `config`'s target and on this runtime's clock, and
    /// the backend they share (the runner saves it at checkpoints).
    pub fn cloud(&self, config: &CloudConfig) -> (Registry, Arc<LazyBackend>) {
        let backend = Arc::new(LazyBackend::new(config.clone()).with_clock(self.clock()));
        (
            drflow_steps::registry_with_backend(backend.clone()),
            backend,
        )
    }
}
