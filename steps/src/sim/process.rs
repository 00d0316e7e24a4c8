//! How the simulated cloud lives in time: processes woken by the agenda.
//!
//! A [`Process`] is one of the things AWS runs by itself (Route 53's health checkers, Aurora
//! replication, Auto Scaling launches…). It keeps its own state in the [`World`], schedules its
//! next wake-up on the agenda ([`World::schedule`]) and handles it when it comes
//! ([`Process::handle`]); a periodic process reschedules itself from its handler. What changes
//! continuously between events (the application's stream of writes) is brought up to date by
//! [`Process::accrue`]. Whenever resources or faults change, every process is asked to
//! [`sync`](Process::sync) its state and pending events with the world (start checking a new
//! health check, forget a deleted group).
//!
//! [`World::advance_to`] runs the loop: take the earliest event due, accrue every process up to
//! its time, move the clock there, dispatch it; repeat; then accrue up to the target time. The
//! order is total (time, then scheduling order), and nothing reads the wall clock or unseeded
//! randomness, so a world and a sequence of calls always tell the same story.

use serde_json::Value;

use super::agenda::Event;
use super::faults::{ActiveFault, FaultKind};
use super::world::World;
use super::{app, aurora, autoscaling, client, cloudwatch, dns, faults_process, route53};

/// One of the cloud's own processes. Implementations are stateless: their state is in the
/// world, so it is saved with it.
pub trait Process: Sync {
    /// The name its events carry (`Event::process`). Stable: it is saved in world files.
    fn name(&self) -> &'static str;

    /// Brings the process's state and pending events in line with the world's resources and
    /// faults. Called after any of them changed, before time moves on; must be idempotent.
    fn sync(&self, world: &mut World) {
        let _ = world;
    }

    /// Handles one of its events. `world.clock_ms` is the event's time.
    fn handle(&self, world: &mut World, event: &Event);

    /// Brings continuous change up to `to_ms` (from `world.clock_ms`, which has not moved
    /// yet). Called before each event and at the end of an advance.
    fn accrue(&self, world: &mut World, to_ms: u64) {
        let _ = (world, to_ms);
    }
}

/// Every process, in the order they sync and accrue.
pub fn processes() -> &'static [&'static dyn Process] {
    &[
        &Resources,
        &faults_process::FaultClock,
        &autoscaling::AutoScaling,
        &autoscaling::TargetHealthChecks,
        &aurora::Replication,
        &app::TradingApp,
        &route53::HealthCheckers,
        &cloudwatch::CloudWatch,
        &dns::Dns,
        &client::TradingClient,
    ]
}

/// Resources finishing their creation (`creating` → `available` at `ready_at_ms`).
pub struct Resources;

impl Process for Resources {
    fn name(&self) -> &'static str {
        "resources"
    }

    fn handle(&self, world: &mut World, _event: &Event) {
        world.settle();
        world.changed();
    }
}

/// Guards against a process that reschedules itself at the same instant forever.
const MAX_EVENTS_PER_INSTANT: u32 = 100_000;

impl World {
    /// Schedules an event of `process` at `at_ms` (not before now).
    pub fn schedule(&mut self, at_ms: u64, process: &str, target: &str, what: &str, data: Value) {
        let at = at_ms.max(self.clock_ms);
        self.agenda.schedule(at, process, target, what, data);
    }

    /// Marks that resources or faults changed: every process syncs before time moves on.
    pub fn changed(&mut self) {
        self.needs_sync = true;
    }

    fn sync_processes(&mut self) {
        while self.needs_sync {
            self.needs_sync = false;
            for p in processes() {
                p.sync(self);
            }
        }
    }

    /// Processes every event due up to `t_ms` and moves the clock to `t_ms` (never back).
    pub fn advance_to(&mut self, t_ms: u64) {
        self.sync_processes();
        let mut same_instant = 0u32;
        while let Some(event) = self.agenda.pop_due(t_ms) {
            let at = event.at_ms.max(self.clock_ms);
            if at == self.clock_ms {
                same_instant += 1;
                if same_instant > MAX_EVENTS_PER_INSTANT {
                    // A process bug; dropping its events keeps the sim usable.
                    tracing::error!(process = %event.process, "sim: event storm dropped");
                    self.agenda
                        .cancel(|e| e.process == event.process && e.at_ms <= at);
                    continue;
                }
            } else {
                same_instant = 0;
            }
            for p in processes() {
                p.accrue(self, at);
            }
            self.clock_ms = at;
            self.settle();
            if let Some(p) = processes().iter().find(|p| p.name() == event.process) {
                p.handle(self, &event);
            }
            self.sync_processes();
        }
        if t_ms > self.clock_ms {
            for p in processes() {
                p.accrue(self, t_ms);
            }
            self.clock_ms = t_ms;
            self.settle();
        }
    }

    /// The faults in force now.
    pub fn active_faults(&self) -> impl Iterator<Item = &ActiveFault> {
        let now = self.clock_ms;
        self.faults.list.iter().filter(move |f| f.active_at(now))
    }

    /// Whether a fault of `kind` hitting `region` is in force now.
    pub fn fault_active(&self, kind: FaultKind, region: &str) -> bool {
        self.active_faults()
            .any(|f| f.kind == kind && f.hits(region))
    }

    /// Whether `region` is down (a region outage).
    pub fn region_down(&self, region: &str) -> bool {
        self.fault_active(FaultKind::RegionOutage, region)
    }

    /// Whether a network path exists from `from` to `to` (regions, or [`crate::backend::GLOBAL`]
    /// for Route 53's checkers on the internet): both ends up, and no partition between two
    /// different regions.
    pub fn reachable(&self, from: &str, to: &str) -> bool {
        if self.region_down(to) || self.region_down(from) {
            return false;
        }
        if from == to || from == crate::backend::GLOBAL || to == crate::backend::GLOBAL {
            return true;
        }
        !self
            .active_faults()
            .any(|f| f.kind == FaultKind::Partition && (f.hits(from) || f.hits(to)))
    }
}
