//! The one clock of a run: what `run.elapsed_seconds`, backoff, step and run timeouts, journal
//! timestamps, `core.sleep` and `core.wait_until` read, and what a cloud backend's waits use.
//!
//! Two implementations:
//! - [`WallClock`]: the system clock, for `--target aws`.
//! - [`VirtualClock`]: the simulated cloud's time. It starts at the world's saved time and moves
//!   with tokio's clock, which the binary pauses for a sim run (a `current_thread` runtime with
//!   `start_paused`): tokio then jumps to the next timer whenever every task is waiting, so
//!   waits cost no wall time, two parallel 60 s waits take 60 virtual seconds together, and the
//!   result does not depend on how tasks interleave. Timeouts and sleeps are tokio's, so
//!   `tokio::time::timeout` and `tokio::time::sleep` in the engine are on the same clock.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::event::Timestamp;

/// A future a clock's sleep returns.
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A clock shared by every step of a run.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Now, in milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;

    /// Waits `duration` on this clock.
    fn sleep(&self, duration: Duration) -> Sleep {
        Box::pin(tokio::time::sleep(duration))
    }

    /// Whether this is simulated time (waits cost no wall time).
    fn is_virtual(&self) -> bool;
}

/// A shared clock handle.
pub type SharedClock = Arc<dyn Clock>;

/// The system clock: wall time, real sleeps.
#[derive(Debug, Clone, Copy, Default)]
pub struct WallClock;

impl Clock for WallClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }

    fn is_virtual(&self) -> bool {
        false
    }
}

/// Simulated time: `base_ms` plus the tokio time elapsed since the clock was made.
///
/// Make it inside the runtime whose time is paused; on a runtime that is not paused it still
/// counts correctly but its waits cost wall time.
#[derive(Debug, Clone)]
pub struct VirtualClock {
    base_ms: u64,
    start: tokio::time::Instant,
}

impl VirtualClock {
    /// A virtual clock that reads `base_ms` now (milliseconds since the Unix epoch).
    pub fn new(base_ms: u64) -> VirtualClock {
        VirtualClock {
            base_ms,
            start: tokio::time::Instant::now(),
        }
    }
}

impl Clock for VirtualClock {
    fn now_ms(&self) -> u64 {
        self.base_ms + self.start.elapsed().as_millis() as u64
    }

    fn is_virtual(&self) -> bool {
        true
    }
}

/// A run's clock and the moment the run (or a rollback) started on it: what the engine's
/// timestamps, step durations and `run.elapsed_seconds` read.
#[derive(Debug, Clone)]
pub(crate) struct RunClock {
    clock: SharedClock,
    start_ms: u64,
}

impl RunClock {
    /// Starts counting now on `clock`.
    pub(crate) fn start(clock: SharedClock) -> RunClock {
        let start_ms = clock.now_ms();
        RunClock { clock, start_ms }
    }

    /// The clock itself, to hand to steps.
    pub(crate) fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// Now, in milliseconds since the Unix epoch.
    pub(crate) fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// Now, as journaled.
    pub(crate) fn now(&self) -> Timestamp {
        timestamp(self.now_ms())
    }

    /// When counting started, as journaled.
    pub(crate) fn started_at(&self) -> Timestamp {
        timestamp(self.start_ms)
    }

    /// Milliseconds since the start. A wall clock set back meanwhile reads 0, never less.
    pub(crate) fn elapsed_ms(&self) -> u64 {
        self.now_ms().saturating_sub(self.start_ms)
    }

    /// Seconds since the start, what `run.elapsed_seconds` reads.
    pub(crate) fn elapsed_seconds(&self) -> f64 {
        self.elapsed_ms() as f64 / 1000.0
    }
}

/// Milliseconds since the Unix epoch as a journal [`Timestamp`].
pub(crate) fn timestamp(ms: u64) -> Timestamp {
    ms as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn virtual_time_moves_with_paused_tokio_time_only() {
        let clock = VirtualClock::new(1_000);
        assert_eq!(clock.now_ms(), 1_000);
        let wall = std::time::Instant::now();
        let (a, b) = (clock.clone(), clock.clone());
        tokio::join!(
            a.sleep(Duration::from_secs(60)),
            b.sleep(Duration::from_secs(60))
        );
        // Two parallel 60 s waits take 60 virtual seconds, and (nearly) no wall time.
        assert_eq!(clock.now_ms(), 61_000);
        assert!(wall.elapsed() < Duration::from_secs(5));
    }
}
