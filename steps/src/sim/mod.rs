//! The embedded simulated cloud: a deterministic [`World`] that lives in virtual time,
//! persisted as JSON under the state directory, so that `provision`, `failover` and `destroy`
//! run in separate processes see the same cloud.
//!
//! The world is a discrete-event simulation: an [agenda](agenda) of future events, processes
//! that AWS would run by itself ([`process`]: health checkers, replication, Auto Scaling…) and
//! [faults](faults) injected through [`SimBackend::inject`]. See `docs/sim.md`.
//!
//! Time: a backend made [`with_clock`](SimBackend::with_clock) runs on the run's clock: every
//! call first advances the world to the clock's now, a mutating call costs
//! [`SimConfig::api_call_ms`] as a sleep on the clock (so parallel calls overlap) and a wait
//! sleeps on the clock. Without a clock (`drflow sim` commands, library tests) the world keeps
//! its own time: waits and mutating calls move it, and [`SimBackend::advance`] does.
//!
//! Saving: the world lives in memory. A backend with a clock (a run) holds the world file's
//! lock from its first call until [`CloudBackend::checkpoint`] (which saves, atomically, and
//! releases it) or until it is dropped; another process wanting the world waits, with a
//! message, and reloads the file if it changed. A backend without a clock saves and releases
//! after every call that changed something. Backends opened on the same directory in one
//! process share one world in memory. A [scratch](SimBackend::scratch) world never touches a
//! file. No update is lost and a crash never leaves a half-written world.

mod agenda;
mod api;
pub mod app;
pub mod aurora;
pub mod autoscaling;
pub mod client;
pub mod cloudwatch;
mod config;
pub mod dns;
mod events;
mod faults;
mod faults_process;
mod ids;
mod presence;
mod process;
mod rng;
pub mod route53;
mod scenario;
mod show;
mod status;
pub mod timeline;
mod world;

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

pub use agenda::{Agenda, Event};
pub use client::{ClientConfig, ClientRequest};
pub use cloudwatch::SqsMessage;
pub use config::SimConfig;
pub(crate) use events::cloudwatch_time;
pub use events::{
    AlarmTransition, alarm_state_change_event, alarm_state_change_event_at, pattern_matches,
};
pub use faults::{ActiveFault, Fault, FaultError, FaultId, FaultKind, Faults, parse_duration};
pub use ids::{ACCOUNT, alb_hosted_zone_id};
pub use presence::{ResourceRef, missing};
pub use process::{Process, processes};
pub use rng::SimRng;
pub use scenario::{Scenario, lag_spike_outage_at};
pub use show::{reset, show};
pub use status::{
    DatabaseStatus, GroupSummary, HealthCheckSummary, RegionStatus, SimStatus, TrafficStatus,
    render as render_status, status as world_status,
};
pub use timeline::{
    AlarmFact, CapacityFact, DnsChangeFact, FenceFact, HealthCheckFact, PromotionFact,
    WorldTimeline, WriteFacts,
};
pub use world::{EPOCH_MS, SimResource, SnsMessage, World, availability_zones, merge};

use crate::Target;
use crate::backend::{
    CloudBackend, CloudError, CloudFuture, CreateRequest, ErrorKind, Identity, Kind, Resource,
    ResourceState, UpdateRequest,
};

/// The world file under a state directory.
pub fn world_path(state_dir: &Path) -> PathBuf {
    state_dir.join("sim").join("world.json")
}

/// Identifies one version of the world file without reading it: a rename gives a new inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    ino: u64,
    len: u64,
    modified_ns: i128,
}

fn stamp(path: &Path) -> Option<Stamp> {
    let meta = fs::metadata(path).ok()?;
    #[cfg(unix)]
    let ino = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let ino = 0;
    let modified_ns = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as i128);
    Some(Stamp {
        ino,
        len: meta.len(),
        modified_ns,
    })
}

/// The world in memory and what is known about its file.
#[derive(Default)]
struct Store {
    /// The world, once read.
    world: Option<World>,
    /// The file version `world` was read from or last saved as.
    stamp: Option<Stamp>,
    /// The world file's lock, while held.
    lock: Option<File>,
    /// Changes not saved yet.
    dirty: bool,
    /// Saved, but not flushed to the disk yet.
    unflushed: bool,
}

/// One world, shared by every backend of this process on the same directory.
struct Shared {
    dir: PathBuf,
    /// Never reads or writes a file: the world lives and dies in memory.
    scratch: bool,
    store: Mutex<Store>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        if self.scratch {
            return;
        }
        let store = self.store.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = save_if_dirty(&self.dir, store, true) {
            eprintln!("drflow: the simulated cloud's last changes were not saved: {e}");
        }
    }
}

fn registry() -> &'static Mutex<HashMap<PathBuf, Weak<Shared>>> {
    static OPEN: OnceLock<Mutex<HashMap<PathBuf, Weak<Shared>>>> = OnceLock::new();
    OPEN.get_or_init(Default::default)
}

/// The sim backend: a [`World`] in memory, saved to `<state_dir>/sim/world.json`, or (a
/// [scratch](SimBackend::scratch) backend) kept in memory only.
pub struct SimBackend {
    shared: Arc<Shared>,
    /// The run's clock, when the sim runs inside a run (see [`SimBackend::with_clock`]).
    pub(crate) clock: Option<drflow_engine::SharedClock>,
}

impl std::fmt::Debug for SimBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimBackend")
            .field("dir", &self.shared.dir)
            .field("on_clock", &self.clock.is_some())
            .finish()
    }
}

fn internal(what: &str, path: &Path, e: impl std::fmt::Display) -> CloudError {
    CloudError::new(
        ErrorKind::Internal,
        format!("sim: could not {what} {}: {e}", path.display()),
    )
}

fn poisoned() -> CloudError {
    CloudError::new(ErrorKind::Internal, "sim: world lock poisoned by a panic")
}

/// Reads a world file; a missing file is an empty world.
pub fn load_world(path: &Path) -> Result<World, CloudError> {
    match fs::read(path) {
        Ok(bytes) => {
            let mut world: World = serde_json::from_slice(&bytes)
                .map_err(|e| internal("read (run `drflow sim reset` to start over)", path, e))?;
            if world.format > world::FORMAT {
                return Err(CloudError::new(
                    ErrorKind::Internal,
                    format!(
                        "sim: {} was written by a newer drflow (format {})",
                        path.display(),
                        world.format
                    ),
                ));
            }
            world.migrate();
            Ok(world)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(World::default()),
        Err(e) => Err(internal("read", path, e)),
    }
}

/// Removes `world.json.tmp*` files left by a process killed in the middle of a save. Only called
/// with the world lock held: no other process is saving, so every such file is stale.
fn remove_stale_temporaries(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_name()
            .to_string_lossy()
            .starts_with("world.json.tmp")
        {
            let _ = fs::remove_file(e.path());
        }
    }
}

/// Writes a world file atomically and durably: a reader sees the old or the new world, never
/// half of one, and the new one survives a power loss once this returns.
pub fn save_world(path: &Path, world: &World) -> Result<(), CloudError> {
    write_world(path, world, true)
}

/// Writes a world file atomically (a temporary file renamed over it). `sync`: also flush it to
/// the disk first. Without, the save survives the process being killed (the kernel has it) but
/// not a power loss, like the journal's default `synchronous=NORMAL`.
fn write_world(path: &Path, world: &World, sync: bool) -> Result<(), CloudError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(|e| internal("create", dir, e))?;
    let tmp = path.with_extension(format!("json.tmp{}", std::process::id()));
    let bytes = serde_json::to_vec(world).map_err(|e| internal("encode", path, e))?;
    let mut f = File::create(&tmp).map_err(|e| internal("write", &tmp, e))?;
    f.write_all(&bytes)
        .and_then(|()| if sync { f.sync_all() } else { Ok(()) })
        .map_err(|e| internal("write", &tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| internal("replace", path, e))
}

/// Saves unsaved changes. Checkpoints within a command do not wait for the disk (`final_save`
/// false); the last save of a command does, and flushes an earlier unflushed one.
fn save_if_dirty(dir: &Path, store: &mut Store, final_save: bool) -> Result<(), CloudError> {
    let path = dir.join("world.json");
    if let (true, Some(world)) = (store.dirty, &store.world) {
        write_world(&path, world, final_save)?;
        store.stamp = stamp(&path);
        store.dirty = false;
        store.unflushed = !final_save;
    } else if final_save && store.unflushed {
        File::open(&path)
            .and_then(|f| f.sync_all())
            .map_err(|e| internal("flush", &path, e))?;
        store.unflushed = false;
    }
    Ok(())
}

impl Shared {
    /// Takes the world file's lock if not held (waiting, with a message, while another process
    /// holds it) and makes sure `store.world` is the file's current version.
    fn begin(&self, store: &mut Store) -> Result<(), CloudError> {
        if self.scratch {
            if store.world.is_none() {
                store.world = Some(World::default());
            }
            return Ok(());
        }
        if store.lock.is_none() {
            fs::create_dir_all(&self.dir).map_err(|e| internal("create", &self.dir, e))?;
            let lock_path = self.dir.join("world.lock");
            let lock = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&lock_path)
                .map_err(|e| internal("open", &lock_path, e))?;
            match lock.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => {
                    eprintln!(
                        "drflow: waiting for the simulated cloud in {}: another drflow process is using it",
                        self.dir.display()
                    );
                    lock.lock().map_err(|e| internal("lock", &lock_path, e))?;
                }
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(internal("lock", &lock_path, e));
                }
            }
            store.lock = Some(lock);
            let path = self.dir.join("world.json");
            let current = stamp(&path);
            if store.world.is_none() || store.stamp != current || current.is_none() {
                if store.dirty {
                    // Unsaved changes and a file changed by another process: both cannot be
                    // kept. Never happens while saves happen before the lock is released.
                    return Err(CloudError::new(
                        ErrorKind::Internal,
                        "sim: the world file changed under unsaved changes",
                    ));
                }
                remove_stale_temporaries(&self.dir);
                store.world = Some(load_world(&path)?);
                store.stamp = current;
            }
        }
        Ok(())
    }

    /// Saves unsaved changes and releases the world file's lock.
    fn end(&self, store: &mut Store) -> Result<(), CloudError> {
        if self.scratch {
            return Ok(());
        }
        let saved = save_if_dirty(&self.dir, store, false);
        if saved.is_ok() {
            store.lock = None;
        }
        saved
    }
}

impl SimBackend {
    /// A sim whose world lives under `state_dir`. Nothing is read until the first call.
    /// Backends opened on the same directory in one process share the world in memory.
    pub fn open(state_dir: &Path) -> SimBackend {
        let dir = state_dir.join("sim");
        let key = std::path::absolute(&dir).unwrap_or_else(|_| dir.clone());
        let mut open = registry().lock().unwrap_or_else(|e| e.into_inner());
        open.retain(|_, w| w.strong_count() > 0);
        let shared = match open.get(&key).and_then(Weak::upgrade) {
            Some(s) => s,
            None => {
                let s = Arc::new(Shared {
                    dir,
                    scratch: false,
                    store: Mutex::new(Store::default()),
                });
                open.insert(key, Arc::downgrade(&s));
                s
            }
        };
        SimBackend {
            shared,
            clock: None,
        }
    }

    /// The same sim on a run's clock: its time is the run's virtual time, and the world stays
    /// locked and in memory between [checkpoints](CloudBackend::checkpoint).
    pub fn with_clock(mut self, clock: drflow_engine::SharedClock) -> SimBackend {
        self.clock = Some(clock);
        self
    }

    /// A sim that acts on `world` in memory and never touches a file: what a plan runs on.
    pub fn scratch(world: World) -> SimBackend {
        SimBackend {
            shared: Arc::new(Shared {
                dir: PathBuf::new(),
                scratch: true,
                store: Mutex::new(Store {
                    world: Some(world),
                    ..Store::default()
                }),
            }),
            clock: None,
        }
    }

    /// A [scratch](SimBackend::scratch) sim holding a copy of the world under `state_dir` as it
    /// is now (empty if there is none). Reads `world.json` once, without taking its lock (saves
    /// replace it atomically, so the copy is one consistent version), and creates nothing.
    pub fn scratch_copy(state_dir: &Path) -> Result<SimBackend, CloudError> {
        Ok(SimBackend::scratch(load_world(&world_path(state_dir))?))
    }

    /// Runs `op` on the current world, first advanced to now. `mutating`: `op` changes the
    /// world (and, without a clock, costs [`SimConfig::api_call_ms`] of the world's time).
    fn with_world<T>(
        &self,
        mutating: bool,
        op: impl FnOnce(&mut World) -> Result<T, CloudError>,
    ) -> Result<T, CloudError> {
        self.transact(mutating, |w| {
            let r = op(w);
            let changed = mutating && r.is_ok();
            (r, changed)
        })
    }

    /// The one way to the world: lock, load if needed, advance to now, run `op` (which says
    /// whether it changed the world), and without a clock save and unlock.
    fn transact<T, E: From<CloudError>>(
        &self,
        costs_time: bool,
        op: impl FnOnce(&mut World) -> (Result<T, E>, bool),
    ) -> Result<T, E> {
        let mut store = self.shared.store.lock().map_err(|_| poisoned())?;
        self.shared.begin(&mut store)?;
        let world = store.world.as_mut().expect("begin loads the world");
        let before = world.clock_ms;
        let now = match &self.clock {
            Some(c) => c.now_ms().max(before),
            None if costs_time => before + world.config.api_call_ms,
            None => before,
        };
        world.advance_to(now);
        let (result, changed) = op(world);
        let moved = world.clock_ms != before;
        store.dirty |= moved || changed;
        if self.clock.is_none() {
            self.shared.end(&mut store)?;
        }
        result
    }

    /// A copy of the current world (tests, the drill).
    pub fn snapshot(&self) -> Result<World, CloudError> {
        self.with_world(false, |w| Ok(w.clone()))
    }

    /// Changes the world directly, behind the step library's back: drift in tests and drills.
    /// Saved like any other change.
    pub fn mutate<T>(&self, f: impl FnOnce(&mut World) -> T) -> Result<T, CloudError> {
        self.transact(false, |w| {
            let value = f(w);
            w.changed();
            w.sync_now();
            (Ok(value), true)
        })
    }

    /// Injects a fault; returns its id. Errors: see [`FaultError`]; nothing changes then.
    pub fn inject(&self, fault: Fault) -> Result<FaultId, FaultError> {
        self.transact(false, |w| {
            let r = w.inject_fault(&fault);
            let ok = r.is_ok();
            (r, ok)
        })
    }

    /// Ends every fault of `kind` (all faults when `None`), pending ones too; returns the ids.
    pub fn heal(&self, kind: Option<FaultKind>) -> Result<Vec<FaultId>, CloudError> {
        self.transact(false, |w| {
            let healed = w.heal_faults(kind);
            let changed = !healed.is_empty();
            (Ok(healed), changed)
        })
    }

    /// Moves the world's time forward by `by`, processing every event on the way. Refused on
    /// a backend with a clock, whose time is the run's (sleep on the clock instead).
    pub fn advance(&self, by: Duration) -> Result<(), CloudError> {
        if self.clock.is_some() {
            return Err(CloudError::new(
                ErrorKind::InvalidInput,
                "the sim runs on the run's clock: sleep on the clock to move its time",
            ));
        }
        self.transact(false, |w| {
            w.advance(by);
            (Ok(()), true)
        })
    }

    /// The state a failover depends on, per region (what `drflow sim status` shows).
    pub fn status(&self) -> Result<SimStatus, CloudError> {
        self.with_world(false, |w| Ok(status::status(w)))
    }

    /// Every message published to an SNS topic so far, oldest first.
    pub fn published(&self) -> Result<Vec<SnsMessage>, CloudError> {
        self.with_world(false, |w| Ok(w.sns.clone()))
    }

    /// Starts the synthetic trading client now (see [`client`]): from now on, one write every
    /// `interval_ms` on the world's agenda. Restarting a client keeps its history.
    pub fn start_client(&self, cfg: ClientConfig) -> Result<(), CloudError> {
        if cfg.host.trim().is_empty() {
            return Err(CloudError::new(
                ErrorKind::InvalidInput,
                "the client needs a host name to resolve (e.g. api.trading.example.com)",
            ));
        }
        self.transact(false, |w| {
            w.start_client(cfg);
            (Ok(()), true)
        })
    }

    /// Stops the synthetic client; what it recorded stays.
    pub fn stop_client(&self) -> Result<(), CloudError> {
        self.transact(false, |w| {
            w.stop_client();
            (Ok(()), true)
        })
    }

    /// The messages EventBridge delivered into the queue `queue` (its ARN or URL) that became
    /// available after `after_ms` and by now, oldest first.
    pub fn receive(&self, queue: &str, after_ms: u64) -> Result<Vec<SqsMessage>, CloudError> {
        self.with_world(false, |w| {
            Ok(cloudwatch::queue_messages(w, queue)
                .into_iter()
                .filter(|m| m.available_at_ms > after_ms)
                .cloned()
                .collect())
        })
    }

    /// Everything the world recorded since `since_ms` (virtual ms since the Unix epoch) that a
    /// drill reports: the client's requests, health check, alarm, promotion, capacity, DNS and
    /// fence facts, and what became of the client's writes.
    pub fn timeline(&self, since_ms: u64) -> Result<WorldTimeline, CloudError> {
        self.with_world(false, |w| Ok(w.timeline_since(since_ms)))
    }

    /// Now on the world's clock (on a run's clock, the later of the two), in ms since the Unix
    /// epoch.
    pub fn now_ms(&self) -> Result<u64, CloudError> {
        self.with_world(false, |w| {
            Ok(self.now_on_clock().unwrap_or(w.clock_ms).max(w.clock_ms))
        })
    }

    fn now_on_clock(&self) -> Option<u64> {
        self.clock.as_ref().map(|c| c.now_ms())
    }

    /// A mutating call: on a clock, first the API's latency as a sleep, then the change.
    async fn act<T>(
        &self,
        op: impl FnOnce(&mut World) -> Result<T, CloudError>,
    ) -> Result<T, CloudError> {
        if let Some(clock) = &self.clock {
            let cost = self.with_world(false, |w| Ok(w.config.api_call_ms))?;
            clock.sleep(Duration::from_millis(cost)).await;
        }
        self.with_world(true, op)
    }

    async fn wait_on_clock(
        &self,
        clock: &drflow_engine::SharedClock,
        region: &str,
        kind: Kind,
        id: &str,
        timeout: Duration,
    ) -> Result<Resource, CloudError> {
        let deadline = clock.now_ms() + timeout.as_millis() as u64;
        loop {
            let (r, ready_at, now) = self.with_world(false, |w| {
                let r = w.get(region, kind, id)?;
                Ok((r.resource.clone(), r.ready_at_ms, w.clock_ms))
            })?;
            match r.state {
                ResourceState::Available | ResourceState::Modifying => return Ok(r),
                ResourceState::Failed | ResourceState::Deleting => {
                    return Err(CloudError::new(
                        ErrorKind::Unavailable,
                        format!("{kind} {} in {region} is {}", r.name, r.state.name()),
                    ));
                }
                ResourceState::Creating if ready_at > deadline => {
                    clock
                        .sleep(Duration::from_millis(deadline.saturating_sub(now)))
                        .await;
                    return Err(CloudError::new(
                        ErrorKind::Timeout,
                        format!(
                            "{kind} {} in {region} was not available after {}s",
                            r.name,
                            timeout.as_secs()
                        ),
                    ));
                }
                ResourceState::Creating => {
                    // At least a millisecond, so a clock behind the world still gets there.
                    let d = ready_at.saturating_sub(now).max(1);
                    clock.sleep(Duration::from_millis(d)).await;
                }
            }
        }
    }
}

fn ready<'a, T: Send + 'a>(r: Result<T, CloudError>) -> CloudFuture<'a, T> {
    Box::pin(std::future::ready(r))
}

impl CloudBackend for SimBackend {
    fn target(&self) -> Target {
        Target::Sim
    }

    fn availability_zones<'a>(&'a self, region: &'a str) -> CloudFuture<'a, Vec<String>> {
        ready(availability_zones(region).ok_or_else(|| {
            CloudError::new(
                ErrorKind::InvalidInput,
                format!("unknown region {region:?}"),
            )
        }))
    }

    fn find<'a>(&'a self, id: &'a Identity) -> CloudFuture<'a, Option<Resource>> {
        ready(self.with_world(false, |w| Ok(w.lookup(id).map(|r| r.resource.clone()))))
    }

    fn list<'a>(
        &'a self,
        region: &'a str,
        kind: Kind,
        parent: Option<&'a str>,
    ) -> CloudFuture<'a, Vec<Resource>> {
        ready(self.with_world(false, |w| w.list_of(region, kind, parent)))
    }

    fn create<'a>(&'a self, request: &'a CreateRequest) -> CloudFuture<'a, Resource> {
        Box::pin(self.act(|w| w.create(request)))
    }

    fn update<'a>(
        &'a self,
        current: &'a Resource,
        request: &'a UpdateRequest,
    ) -> CloudFuture<'a, Resource> {
        Box::pin(self.act(move |w| {
            w.update(
                &current.region,
                current.kind,
                &current.id,
                &request.spec,
                &request.tags,
                &request.depends_on,
            )
        }))
    }

    fn delete<'a>(&'a self, current: &'a Resource) -> CloudFuture<'a, ()> {
        Box::pin(self.act(move |w| w.delete(&current.region, current.kind, &current.id)))
    }

    fn wait_available<'a>(
        &'a self,
        current: &'a Resource,
        timeout: Duration,
    ) -> CloudFuture<'a, Resource> {
        let (region, kind, id) = (current.region.as_str(), current.kind, current.id.as_str());
        match &self.clock {
            Some(clock) => Box::pin(self.wait_on_clock(clock, region, kind, id, timeout)),
            None => ready(self.with_world(false, |w| w.wait_available(region, kind, id, timeout))),
        }
    }

    fn wait_deleted<'a>(
        &'a self,
        current: &'a Resource,
        _timeout: Duration,
    ) -> CloudFuture<'a, ()> {
        // The sim deletes at once: gone is gone, and a resource still there (by id) was never
        // deleted, which no wait mends.
        ready(self.with_world(false, |w| {
            match w.get(&current.region, current.kind, &current.id) {
                Err(_) => Ok(()),
                Ok(r) => Err(CloudError::new(
                    ErrorKind::InvalidInput,
                    format!(
                        "{} {} in {} is {}, not being deleted",
                        current.kind,
                        current.name,
                        current.region,
                        r.resource.state.name()
                    ),
                )),
            }
        }))
    }

    fn now_ms<'a>(&'a self) -> CloudFuture<'a, u64> {
        ready(self.with_world(false, |w| {
            Ok(self.now_on_clock().unwrap_or(w.clock_ms).max(w.clock_ms))
        }))
    }

    fn checkpoint(&self) -> Result<(), CloudError> {
        let mut store = self.shared.store.lock().map_err(|_| poisoned())?;
        self.shared.end(&mut store)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vpc(name: &str) -> CreateRequest {
        CreateRequest {
            parent: None,
            kind: Kind::Vpc,
            region: "eu-south-1".into(),
            name: name.into(),
            spec: json!({}),
            tags: [("ManagedBy".to_string(), "drflow".to_string())].into(),
            depends_on: vec![],
        }
    }

    #[tokio::test]
    async fn two_backends_on_one_dir_see_each_others_changes() {
        let dir = tempfile::tempdir().unwrap();
        let a = SimBackend::open(dir.path());
        let b = SimBackend::open(dir.path());
        a.create(&vpc("vpc-a")).await.unwrap();
        b.create(&vpc("vpc-b")).await.unwrap();
        let names: Vec<String> = a
            .list("eu-south-1", Kind::Vpc, None)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.name)
            .collect();
        assert_eq!(names, ["vpc-a", "vpc-b"]);
        assert!(world_path(dir.path()).exists());
    }

    #[tokio::test]
    async fn a_save_left_half_done_by_a_killed_process_is_cleaned_up() {
        let dir = tempfile::tempdir().unwrap();
        let sim_dir = dir.path().join("sim");
        fs::create_dir_all(&sim_dir).unwrap();
        let stale = sim_dir.join("world.json.tmp4242");
        fs::write(&stale, b"{ half a world").unwrap();
        let sim = SimBackend::open(dir.path());
        sim.create(&vpc("vpc-a")).await.unwrap();
        assert!(!stale.exists());
        assert_eq!(sim.snapshot().unwrap().all().len(), 1);
    }

    #[tokio::test]
    async fn a_scratch_copy_changes_freely_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let real = SimBackend::open(dir.path());
        real.create(&vpc("vpc-a")).await.unwrap();
        let before = fs::read(world_path(dir.path())).unwrap();
        let scratch = SimBackend::scratch_copy(dir.path()).unwrap();
        scratch.create(&vpc("vpc-b")).await.unwrap();
        let a = scratch
            .find(&Identity::new(Kind::Vpc, "eu-south-1", "vpc-a"))
            .await
            .unwrap();
        scratch.delete(&a.unwrap()).await.unwrap();
        assert_eq!(scratch.snapshot().unwrap().len(), 1);
        assert_eq!(fs::read(world_path(dir.path())).unwrap(), before);
        assert_eq!(real.snapshot().unwrap().len(), 1);
        // A state dir with no world yet gives an empty copy, and stays without one.
        let empty = tempfile::tempdir().unwrap();
        let scratch = SimBackend::scratch_copy(empty.path()).unwrap();
        scratch.create(&vpc("vpc-c")).await.unwrap();
        assert_eq!(fs::read_dir(empty.path()).unwrap().count(), 0);
    }

    #[test]
    fn parallel_writers_lose_no_update() {
        let dir = tempfile::tempdir().unwrap();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let path = dir.path().to_path_buf();
                std::thread::spawn(move || {
                    // A backend per thread, like separate processes sharing the file.
                    let sim = SimBackend::open(&path);
                    for i in 0..10 {
                        sim.mutate(|w| w.create(&vpc(&format!("vpc-{t}-{i}"))))
                            .unwrap()
                            .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let world = load_world(&world_path(dir.path())).unwrap();
        assert_eq!(world.len(), 40);
    }
}
