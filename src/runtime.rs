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

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::{Arc, Mutex};

use drflow_engine::{Clock, Registry, SharedClock, VirtualClock, WallClock};
use drflow_steps::aws::CallRecord;
use drflow_steps::{CloudConfig, LazyBackend, Target};

use crate::{EXIT_FAILED, Failure};

/// The stack of each worker thread on the aws target, in bytes (tokio's default is 2 MiB).
const AWS_WORKER_STACK: usize = 16 * 1024 * 1024;

/// A tokio runtime and the clock that goes with it.
pub struct Runtime {
    tokio: tokio::runtime::Runtime,
    clock: SharedClock,
    /// The backends handed out by [`Runtime::cloud`], for [`Runtime::report_aws_calls`].
    backends: Mutex<Vec<Arc<LazyBackend>>>,
}

impl Runtime {
    /// The runtime and clock for a command on `config`'s target. On the sim the clock starts at
    /// the world's saved time (read without locking); a world that cannot be read starts it at
    /// the wall-clock time, and the first cloud step reports what is wrong with the world.
    pub fn start(config: &CloudConfig) -> Result<Runtime, Failure> {
        Runtime::start_paced(config, false)
    }

    /// [`Runtime::start`], but on the sim with `live`: tokio's time is not paused, so the
    /// virtual clock moves with the wall clock from the world's saved time (what
    /// `drflow daemon` without `--for` runs on: the world lives while it watches it).
    pub fn start_paced(config: &CloudConfig, live: bool) -> Result<Runtime, Failure> {
        let built = match config.target {
            Target::Sim => tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .start_paused(!live)
                .build(),
            // The SDK's request futures are large, and a debug build nests them deep enough to
            // overflow tokio's default 2 MiB worker stack.
            Target::Aws => tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .thread_stack_size(AWS_WORKER_STACK)
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
        Ok(Runtime {
            tokio,
            clock,
            backends: Mutex::default(),
        })
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
        self.backends
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::clone(&backend));
        (
            drflow_steps::registry_with_backend(backend.clone()),
            backend,
        )
    }

    /// On the aws target, prints on stderr one line counting the AWS API calls the command made
    /// ([`aws_summary`]); nothing when no aws backend was opened (the sim, or a run that never
    /// reached a cloud step).
    pub fn report_aws_calls(&self) {
        let backends = self.backends.lock().unwrap_or_else(|e| e.into_inner());
        let calls: Vec<CallRecord> = backends
            .iter()
            .filter_map(|b| b.aws_calls())
            .flatten()
            .collect();
        if backends.iter().any(|b| b.aws_calls().is_some()) {
            eprintln!("{}", aws_summary(&calls));
        }
    }
}

/// Now on the wall clock (ms since the Unix epoch), whatever the command's clock: what the
/// daemon's decision latency is measured on.
pub fn wall_ms() -> u64 {
    WallClock.now_ms()
}

/// `aws: 42 calls (17 mutating) in 2 regions`, plus how many failed when any did. Route 53 and
/// IAM calls count in `us-east-1`, where AWS serves them.
pub fn aws_summary(calls: &[CallRecord]) -> String {
    let mutating = calls.iter().filter(|c| c.mutating).count();
    let failed = calls.iter().filter(|c| c.failed).count();
    let regions: BTreeSet<&str> = calls.iter().map(|c| c.region.as_str()).collect();
    let mut line = format!(
        "aws: {} ({mutating} mutating) in {}",
        crate::count(calls.len(), "call"),
        crate::count(regions.len(), "region")
    );
    if failed > 0 {
        line.push_str(&format!(", {failed} failed"));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(region: &str, operation: &'static str, failed: bool) -> CallRecord {
        CallRecord {
            region: region.to_string(),
            service: "ec2",
            operation,
            mutating: drflow_steps::aws::is_mutating(operation),
            failed,
            sent_at_ms: 0,
        }
    }

    #[test]
    fn the_aws_line_counts_calls_mutations_regions_and_failures() {
        let calls = [
            call("eu-south-1", "DescribeVpcs", false),
            call("eu-south-1", "CreateVpc", false),
            call("eu-central-1", "CreateVpc", true),
        ];
        assert_eq!(
            aws_summary(&calls),
            "aws: 3 calls (2 mutating) in 2 regions, 1 failed"
        );
        assert_eq!(
            aws_summary(&calls[..1]),
            "aws: 1 call (0 mutating) in 1 region"
        );
        assert_eq!(aws_summary(&[]), "aws: 0 calls (0 mutating) in 0 regions");
    }
}
