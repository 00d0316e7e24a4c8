//! The embedded simulated cloud: a deterministic [`World`] persisted as JSON under the state
//! directory, so that `provision`, `failover` and `destroy` run in separate processes see the
//! same resources.
//!
//! Concurrency: steps of one run call the backend from several tokio tasks, and two drflow
//! processes may run at once. Every call takes the in-process mutex, then an exclusive lock on
//! `world.lock`, re-reads the file if another process replaced it, applies the operation and
//! writes the file atomically (temporary file, then rename) before unlocking. No update is lost
//! and a crash never leaves a half-written world.

mod cloudwatch;
mod config;
mod dns;
mod events;
mod ids;
mod presence;
mod route53;
mod show;
mod world;

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;

pub use config::SimConfig;
pub use events::{alarm_state_change_event, pattern_matches};
pub use ids::{ACCOUNT, alb_hosted_zone_id};
pub use presence::{ResourceRef, missing};
pub use show::{reset, show};
pub use world::{EPOCH_MS, SimResource, World, availability_zones, merge};

use crate::Target;
use crate::backend::{
    CloudBackend, CloudError, CloudFuture, CreateRequest, ErrorKind, Kind, Resource, Tags,
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

struct Cached {
    world: World,
    stamp: Option<Stamp>,
}

/// The sim backend: a [`World`] in memory, mirrored to `<state_dir>/sim/world.json`, or (a
/// [scratch](SimBackend::scratch) backend) kept in memory only.
pub struct SimBackend {
    dir: PathBuf,
    /// Never reads or writes a file: the world lives and dies in `cache`.
    scratch: bool,
    cache: Mutex<Option<Cached>>,
    /// The run's clock, when the sim runs inside a run (see [`SimBackend::with_clock`]).
    clock: Option<drflow_engine::SharedClock>,
}

impl std::fmt::Debug for SimBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimBackend")
            .field("dir", &self.dir)
            .finish()
    }
}

fn internal(what: &str, path: &Path, e: impl std::fmt::Display) -> CloudError {
    CloudError::new(
        ErrorKind::Internal,
        format!("sim: could not {what} {}: {e}", path.display()),
    )
}

/// Reads a world file; a missing file is an empty world.
pub fn load_world(path: &Path) -> Result<World, CloudError> {
    match fs::read(path) {
        Ok(bytes) => {
            let world: World = serde_json::from_slice(&bytes)
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

/// Writes a world file atomically: a reader sees the old or the new world, never half of one.
pub fn save_world(path: &Path, world: &World) -> Result<(), CloudError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(|e| internal("create", dir, e))?;
    let tmp = path.with_extension(format!("json.tmp{}", std::process::id()));
    let bytes = serde_json::to_vec_pretty(world).map_err(|e| internal("encode", path, e))?;
    let mut f = File::create(&tmp).map_err(|e| internal("write", &tmp, e))?;
    f.write_all(&bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| internal("write", &tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| internal("replace", path, e))
}

impl SimBackend {
    /// A sim whose world lives under `state_dir`. Nothing is read until the first call.
    pub fn open(state_dir: &Path) -> SimBackend {
        SimBackend {
            dir: state_dir.join("sim"),
            scratch: false,
            cache: Mutex::new(None),
            clock: None,
        }
    }

    /// The same sim on a run's clock: its time is the run's virtual time.
    pub fn with_clock(mut self, clock: drflow_engine::SharedClock) -> SimBackend {
        self.clock = Some(clock);
        self
    }

    /// A sim that acts on `world` in memory and never touches a file: what a plan runs on.
    pub fn scratch(world: World) -> SimBackend {
        SimBackend {
            dir: PathBuf::new(),
            scratch: true,
            cache: Mutex::new(Some(Cached { world, stamp: None })),
            clock: None,
        }
    }

    /// A [scratch](SimBackend::scratch) sim holding a copy of the world under `state_dir` as it
    /// is now (empty if there is none). Reads `world.json` once, without taking its lock (saves
    /// replace it atomically, so the copy is one consistent version), and creates nothing.
    pub fn scratch_copy(state_dir: &Path) -> Result<SimBackend, CloudError> {
        Ok(SimBackend::scratch(load_world(&world_path(state_dir))?))
    }

    fn path(&self) -> PathBuf {
        self.dir.join("world.json")
    }

    /// Runs `op` on the current world under both locks; saves when `op` reports a change.
    fn with_world<T>(
        &self,
        op: impl FnOnce(&mut World) -> Result<(T, bool), CloudError>,
    ) -> Result<T, CloudError> {
        let mut guard = self.cache.lock().map_err(|_| {
            CloudError::new(ErrorKind::Internal, "sim: world lock poisoned by a panic")
        })?;
        if self.scratch {
            let cached = guard.get_or_insert_with(|| Cached {
                world: World::default(),
                stamp: None,
            });
            cached.world.settle();
            return op(&mut cached.world).map(|(v, _)| v);
        }
        fs::create_dir_all(&self.dir).map_err(|e| internal("create", &self.dir, e))?;
        let lock_path = self.dir.join("world.lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| internal("open", &lock_path, e))?;
        // Held until `lock` drops at the end of this function: other processes wait here.
        lock.lock().map_err(|e| internal("lock", &lock_path, e))?;
        let path = self.path();
        let current = stamp(&path);
        let fresh = match guard.take() {
            Some(c) if c.stamp == current && current.is_some() => c,
            _ => {
                remove_stale_temporaries(&self.dir);
                Cached {
                    world: load_world(&path)?,
                    stamp: current,
                }
            }
        };
        let mut cached = fresh;
        cached.world.settle();
        let before = cached.world.clone();
        let result = op(&mut cached.world);
        let changed = match &result {
            Ok((_, changed)) => *changed,
            // A failed wait may still have moved the clock.
            Err(_) => cached.world != before,
        };
        if changed {
            if let Err(e) = save_world(&path, &cached.world) {
                // Keep memory and disk in step: drop the unsaved change.
                *guard = Some(Cached {
                    world: before,
                    stamp: current,
                });
                return Err(e);
            }
            cached.stamp = stamp(&path);
        }
        *guard = Some(cached);
        result.map(|(v, _)| v)
    }

    /// A copy of the current world (tests, `drflow sim show`, the drill).
    pub fn snapshot(&self) -> Result<World, CloudError> {
        self.with_world(|w| Ok((w.clone(), false)))
    }

    /// Changes the world directly, behind the step library's back: drift and fault injection in
    /// tests and drills. Saved like any other change.
    pub fn mutate<T>(&self, f: impl FnOnce(&mut World) -> T) -> Result<T, CloudError> {
        self.with_world(|w| Ok((f(w), true)))
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

    fn find<'a>(
        &'a self,
        region: &'a str,
        kind: Kind,
        name: &'a str,
    ) -> CloudFuture<'a, Option<Resource>> {
        ready(self.with_world(|w| {
            Ok((
                w.find(region, kind, name).map(|r| r.resource.clone()),
                false,
            ))
        }))
    }

    fn list<'a>(
        &'a self,
        region: Option<&'a str>,
        kind: Option<Kind>,
    ) -> CloudFuture<'a, Vec<Resource>> {
        ready(self.with_world(|w| Ok((w.list(region, kind), false))))
    }

    fn create<'a>(&'a self, request: &'a CreateRequest) -> CloudFuture<'a, Resource> {
        ready(self.with_world(|w| w.create(request).map(|r| (r, true))))
    }

    fn update<'a>(
        &'a self,
        region: &'a str,
        kind: Kind,
        id: &'a str,
        spec: &'a Value,
        tags: &'a Tags,
        depends_on: &'a [String],
    ) -> CloudFuture<'a, Resource> {
        ready(self.with_world(|w| {
            w.update(region, kind, id, spec, tags, depends_on)
                .map(|r| (r, true))
        }))
    }

    fn delete<'a>(&'a self, region: &'a str, kind: Kind, id: &'a str) -> CloudFuture<'a, ()> {
        ready(self.with_world(|w| w.delete(region, kind, id).map(|()| ((), true))))
    }

    fn wait_available<'a>(
        &'a self,
        region: &'a str,
        kind: Kind,
        id: &'a str,
        timeout: Duration,
    ) -> CloudFuture<'a, Resource> {
        ready(self.with_world(|w| {
            let before = w.clock_ms;
            w.wait_available(region, kind, id, timeout)
                .map(|r| (r, w.clock_ms != before))
        }))
    }

    fn now_ms<'a>(&'a self) -> CloudFuture<'a, u64> {
        ready(self.with_world(|w| Ok((w.clock_ms, false))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vpc(name: &str) -> CreateRequest {
        CreateRequest {
            kind: Kind::Vpc,
            region: "eu-south-1".into(),
            name: name.into(),
            spec: json!({}),
            tags: Tags::new(),
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
            .list(None, None)
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
            .find("eu-south-1", Kind::Vpc, "vpc-a")
            .await
            .unwrap();
        scratch
            .delete("eu-south-1", Kind::Vpc, &a.unwrap().id)
            .await
            .unwrap();
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
