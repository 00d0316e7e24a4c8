//! Run locks: a runbook's `lock:` key (and each run itself) is held by one live run at a time,
//! across processes, as a *lease*.
//!
//! A lease lives in a [`LeaseStore`], an async and fallible trait, so a long-running process
//! (the daemon) can hold many leases without a thread each, and a store other than a file (a
//! DynamoDB table) can stand behind the same calls. [`FileLeaseStore`] keeps them in the
//! journal's `leases` table: key, run id, holder pid (with the process's start time, so a
//! recycled pid is not mistaken for the holder), hostname, heartbeat, expiry and a fencing
//! token. A lease is taken in an `IMMEDIATE` transaction, so two processes racing for a free
//! key are serialised by SQLite's write lock and exactly one wins.
//!
//! Every grant of a key carries a *fencing token* that only grows (kept when a lease is
//! released): a renewal or release by an older grant is refused, and whatever a holder writes
//! elsewhere can carry it.
//!
//! A lease left behind by a process that died is taken over, never by guessing:
//!
//! - same host: only when the holder process is gone (its pid does not exist, or exists with
//!   another start time). A live holder keeps its lock even past its expiry (it may be stopped
//!   by a debugger or a suspended laptop, and will renew when it wakes up);
//! - another host (a shared state dir): only when the lease has expired.
//!
//! [`HeldLease`] keeps a lease renewed by a tokio task. Expiry is judged by other processes on
//! wall time, while a run on the simulated cloud runs on a paused tokio runtime whose timers
//! jump ahead: so the task waits on the *lease clock* ([`LeaseOptions::clock`], wall time by
//! default), not on tokio's, and renews when that clock says `renew_every` has passed since the
//! last renewal. It never rewrites the lease on every virtual tick, and it never gives a paused
//! runtime a timer to jump to: while a sim run waits for the real world, a tokio timer looping
//! in the lease task would spin virtual time forward.

use std::fmt;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use tokio::sync::watch;

use crate::clock::{Clock, SharedClock, Sleep};
use crate::event::Timestamp;
use crate::journal::{Durability, Journal, JournalError, sql};

/// What a [`LeaseStore`] call returns.
pub type LeaseFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, LockError>> + Send + 'a>>;

/// How long a lease lives without a renewal, how often it is renewed, and on what clock.
#[derive(Debug, Clone)]
pub struct LeaseOptions {
    /// A lease not renewed for this long may be taken over from another host (default 30 s).
    pub ttl: Duration,
    /// How long after the last renewal the holder renews it (default 10 s, a third of `ttl`).
    pub renew_every: Duration,
    /// How often the keeping task looks at the lease clock (on that clock; default 1 s).
    pub check_every: Duration,
    /// How often a run waiting for a held lock (`--wait-lock`) tries again (default 200 ms).
    pub poll: Duration,
    /// The clock leases are judged on: timestamps written, renewal due, waits for a held lock.
    /// Wall time by default ([`LeaseWallClock`]); tests give a virtual clock.
    pub clock: SharedClock,
}

impl Default for LeaseOptions {
    fn default() -> LeaseOptions {
        LeaseOptions {
            ttl: Duration::from_secs(30),
            renew_every: Duration::from_secs(10),
            check_every: Duration::from_secs(1),
            poll: Duration::from_millis(200),
            clock: Arc::new(LeaseWallClock),
        }
    }
}

impl LeaseOptions {
    /// The default timings on another clock (tests: a [`crate::VirtualClock`]).
    pub fn on_clock(clock: SharedClock) -> LeaseOptions {
        LeaseOptions {
            clock,
            ..LeaseOptions::default()
        }
    }

    fn now(&self) -> Timestamp {
        self.clock.now_ms() as f64 / 1000.0
    }
}

/// Wall time whose waits are real even on a paused tokio runtime (where `tokio::time::sleep`
/// is virtual): other processes judge a lease on wall time, so waiting for one must too. A wait
/// is a thread of its own that wakes the task when the time is up: not a tokio timer, which a
/// paused runtime would jump to (a loop of them spins virtual time forward), and not a blocking
/// task, which would hold a paused runtime's time still meanwhile (the lease task waits for as
/// long as the run lasts, and the run's own timers must go on).
#[derive(Debug, Clone, Copy, Default)]
pub struct LeaseWallClock;

impl Clock for LeaseWallClock {
    fn now_ms(&self) -> u64 {
        crate::clock::WallClock.now_ms()
    }

    fn sleep(&self, duration: Duration) -> Sleep {
        Box::pin(async move {
            let (done, wait) = tokio::sync::oneshot::channel::<()>();
            let thread = std::thread::Builder::new()
                .name("drflow-lease-wait".into())
                .spawn(move || {
                    std::thread::sleep(duration);
                    let _ = done.send(());
                });
            match thread {
                Ok(_) => {
                    let _ = wait.await;
                }
                // No thread to be had: wait on the blocking pool rather than not at all.
                Err(_) => {
                    let _ = tokio::task::spawn_blocking(move || std::thread::sleep(duration)).await;
                }
            }
        })
    }

    fn is_virtual(&self) -> bool {
        false
    }
}

/// Who holds a lock.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Holder {
    /// The lock key.
    pub key: String,
    /// The run that holds it.
    pub run_id: String,
    /// The holder's process id.
    pub pid: u32,
    /// The holder's host.
    pub hostname: String,
    /// When it took the lock.
    pub acquired_at: Timestamp,
    /// Its last heartbeat.
    pub heartbeat_at: Timestamp,
    /// When the lease expires without a heartbeat.
    pub expires_at: Timestamp,
    /// The grant's fencing token (grows with every grant of the key).
    pub token: u64,
}

/// A lease the store granted.
#[derive(Debug, Clone, PartialEq)]
pub struct LeaseGrant {
    /// The lock key.
    pub key: String,
    /// The run it was granted to.
    pub run_id: String,
    /// Its fencing token: larger than that of every earlier grant of the key.
    pub token: u64,
    /// The dead holder this grant replaced, if it took one over.
    pub took_over: Option<Holder>,
}

/// A lock could not be taken or kept.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another live run holds it.
    #[error(
        "the lock `{}` is held by run {} (pid {} on {}, last heartbeat {}); \
         wait for it to finish, or pass --wait-lock to wait",
        holder.key, holder.run_id, holder.pid, holder.hostname,
        crate::scope::iso8601(holder.heartbeat_at)
    )]
    Held {
        /// The current holder.
        holder: Box<Holder>,
    },
    /// `--wait-lock` gave up.
    #[error(
        "gave up waiting for the lock `{}` after {}; it is still held by run {} (pid {} on {})",
        holder.key, crate::duration::format_duration(*waited), holder.run_id, holder.pid, holder.hostname
    )]
    Timeout {
        /// The holder when we gave up.
        holder: Box<Holder>,
        /// How long we waited.
        waited: Duration,
    },
    /// The lease is no longer ours: another process took it over (it expired unrenewed).
    #[error("the lock `{key}` was taken over by another process")]
    Lost {
        /// The lock key.
        key: String,
    },
    /// The journal failed.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// Another store failed (a network store, later).
    #[error("lease store: {0}")]
    Store(String),
}

/// Where leases live. Async and fallible, so that a network store fits behind it.
pub trait LeaseStore: Send + Sync + fmt::Debug {
    /// Takes `key` for `run_id` for `ttl`, or says who holds it ([`LockError::Held`]). A lease
    /// whose holder is gone is taken over (the grant says from whom).
    fn acquire<'a>(
        &'a self,
        key: &'a str,
        run_id: &'a str,
        ttl: Duration,
    ) -> LeaseFuture<'a, LeaseGrant>;

    /// Extends `grant` to `ttl` from now; [`LockError::Lost`] when it is no longer ours.
    fn renew<'a>(&'a self, grant: &'a LeaseGrant, ttl: Duration) -> LeaseFuture<'a, ()>;

    /// Gives `grant` up (nothing happens if it is no longer ours).
    fn release<'a>(&'a self, grant: &'a LeaseGrant) -> LeaseFuture<'a, ()>;

    /// Who holds `key` now, alive or not.
    fn inspect<'a>(&'a self, key: &'a str) -> LeaseFuture<'a, Option<Holder>>;
}

/// Who we are, as a lease holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HolderIdentity {
    /// The process id.
    pub pid: u32,
    /// The process's start time (`/proc/<pid>/stat` field 22), to tell a recycled pid apart.
    pub proc_start: Option<String>,
    /// The host.
    pub hostname: String,
}

impl HolderIdentity {
    /// This process on this host.
    pub fn current() -> HolderIdentity {
        let pid = std::process::id();
        HolderIdentity {
            pid,
            proc_start: process_start(pid),
            hostname: hostname(),
        }
    }
}

/// Leases in the journal's `leases` table (see the module docs).
#[derive(Debug)]
pub struct FileLeaseStore {
    journal: Mutex<Journal>,
    me: HolderIdentity,
    clock: SharedClock,
}

impl FileLeaseStore {
    /// Leases in the journal at `journal_path`, held as this process, on wall time.
    pub fn open(journal_path: &Path) -> Result<FileLeaseStore, LockError> {
        Ok(FileLeaseStore {
            journal: Mutex::new(Journal::open_with(journal_path, Durability::Normal)?),
            me: HolderIdentity::current(),
            clock: Arc::new(LeaseWallClock),
        })
    }

    /// Holds leases as `me` instead of this process (tests: a process that then "dies").
    pub fn with_identity(mut self, me: HolderIdentity) -> FileLeaseStore {
        self.me = me;
        self
    }

    /// Judges expiry and stamps leases on `clock` (the [`LeaseOptions::clock`]).
    pub fn with_clock(mut self, clock: SharedClock) -> FileLeaseStore {
        self.clock = clock;
        self
    }

    fn now(&self) -> Timestamp {
        self.clock.now_ms() as f64 / 1000.0
    }

    fn journal(&self) -> std::sync::MutexGuard<'_, Journal> {
        // A panic while holding the lock leaves the connection as it was: usable.
        self.journal.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn acquire_now(&self, key: &str, run_id: &str, ttl: Duration) -> Result<LeaseGrant, LockError> {
        let journal = self.journal();
        let path = journal.path().to_owned();
        let conn = journal.conn();
        conn.execute_batch("BEGIN IMMEDIATE")
            .map_err(sql(&path, "locking the journal to take a run lock"))?;
        let result = (|| -> Result<LeaseGrant, LockError> {
            let row = read_lease(conn, key).map_err(sql(&path, "reading a run lock"))?;
            let t = self.now();
            let took_over = match row {
                None => None,
                Some((holder, proc_start)) => {
                    if !holder_is_gone(&holder, proc_start.as_deref(), &self.me, t) {
                        return Err(LockError::Held {
                            holder: Box::new(holder),
                        });
                    }
                    Some(holder)
                }
            };
            let last: Option<i64> = conn
                .query_row(
                    "SELECT token FROM lease_tokens WHERE key = ?1",
                    [key],
                    |r| r.get(0),
                )
                .optional()
                .map_err(sql(&path, "reading a lease token"))?;
            // A row planted before tokens were kept (or by another writer) still counts.
            let token = (last.unwrap_or(0).max(0) as u64)
                .max(took_over.as_ref().map_or(0, |h| h.token))
                + 1;
            conn.execute(
                "INSERT OR REPLACE INTO lease_tokens (key, token) VALUES (?1, ?2)",
                params![key, token as i64],
            )
            .map_err(sql(&path, "writing a lease token"))?;
            conn.execute(
                "INSERT OR REPLACE INTO leases
                     (key, run_id, pid, proc_start, hostname, acquired_at, heartbeat_at,
                      expires_at, token)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7, ?8)",
                params![
                    key,
                    run_id,
                    self.me.pid,
                    self.me.proc_start,
                    self.me.hostname,
                    t,
                    t + ttl.as_secs_f64(),
                    token as i64
                ],
            )
            .map_err(sql(&path, "writing a run lock"))?;
            Ok(LeaseGrant {
                key: key.to_owned(),
                run_id: run_id.to_owned(),
                token,
                took_over,
            })
        })();
        let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
        conn.execute_batch(end)
            .map_err(sql(&path, "committing a run lock"))?;
        result
    }
}

impl LeaseStore for FileLeaseStore {
    fn acquire<'a>(
        &'a self,
        key: &'a str,
        run_id: &'a str,
        ttl: Duration,
    ) -> LeaseFuture<'a, LeaseGrant> {
        Box::pin(async move { self.acquire_now(key, run_id, ttl) })
    }

    fn renew<'a>(&'a self, grant: &'a LeaseGrant, ttl: Duration) -> LeaseFuture<'a, ()> {
        Box::pin(async move {
            let t = self.now();
            let journal = self.journal();
            let n = journal
                .conn()
                .execute(
                    "UPDATE leases SET heartbeat_at = ?4, expires_at = ?5
                     WHERE key = ?1 AND run_id = ?2 AND token = ?3",
                    params![
                        grant.key,
                        grant.run_id,
                        grant.token as i64,
                        t,
                        t + ttl.as_secs_f64()
                    ],
                )
                .map_err(sql(journal.path(), "renewing a run lock"))?;
            if n == 1 {
                Ok(())
            } else {
                Err(LockError::Lost {
                    key: grant.key.clone(),
                })
            }
        })
    }

    fn release<'a>(&'a self, grant: &'a LeaseGrant) -> LeaseFuture<'a, ()> {
        Box::pin(async move {
            let journal = self.journal();
            journal
                .conn()
                .execute(
                    "DELETE FROM leases WHERE key = ?1 AND run_id = ?2 AND token = ?3",
                    params![grant.key, grant.run_id, grant.token as i64],
                )
                .map_err(sql(journal.path(), "releasing a run lock"))?;
            Ok(())
        })
    }

    fn inspect<'a>(&'a self, key: &'a str) -> LeaseFuture<'a, Option<Holder>> {
        Box::pin(async move {
            let journal = self.journal();
            Ok(lock_holder(&journal, key)?)
        })
    }
}

/// A lease this process holds, kept renewed by a tokio task until released.
///
/// Dropping it stops the renewals and leaves the lease as it is (to expire, or to be taken over
/// once this process is gone): call [`HeldLease::release`] to give it up.
#[derive(Debug)]
pub struct HeldLease {
    store: Arc<dyn LeaseStore>,
    grant: LeaseGrant,
    lost: watch::Receiver<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl HeldLease {
    /// Takes `key` for `run_id` now, or says who holds it; then keeps it renewed. Call within a
    /// tokio runtime.
    pub async fn acquire(
        store: Arc<dyn LeaseStore>,
        key: &str,
        run_id: &str,
        options: &LeaseOptions,
    ) -> Result<HeldLease, LockError> {
        let grant = store.acquire(key, run_id, options.ttl).await?;
        Ok(HeldLease::keep(store, grant, options))
    }

    /// Like [`HeldLease::acquire`], but while another run holds the lock, tries again every
    /// `options.poll` until it is free or `timeout` passes (on the lease clock). `on_wait` is
    /// called once with the holder, when waiting begins.
    pub async fn acquire_waiting(
        store: Arc<dyn LeaseStore>,
        key: &str,
        run_id: &str,
        options: &LeaseOptions,
        timeout: Option<Duration>,
        mut on_wait: impl FnMut(&Holder) + Send,
    ) -> Result<HeldLease, LockError> {
        let start = options.clock.now_ms();
        let mut told = false;
        loop {
            match store.acquire(key, run_id, options.ttl).await {
                Ok(grant) => return Ok(HeldLease::keep(store, grant, options)),
                Err(LockError::Held { holder }) => {
                    let waited =
                        Duration::from_millis(options.clock.now_ms().saturating_sub(start));
                    if timeout.is_some_and(|t| waited >= t) {
                        return Err(LockError::Timeout { holder, waited });
                    }
                    if !told {
                        on_wait(&holder);
                        told = true;
                    }
                    options.clock.sleep(options.poll).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Keeps an acquired grant renewed.
    fn keep(store: Arc<dyn LeaseStore>, grant: LeaseGrant, options: &LeaseOptions) -> HeldLease {
        let (lost_tx, lost) = watch::channel(false);
        let task = tokio::spawn(renew_loop(
            store.clone(),
            grant.clone(),
            options.clone(),
            lost_tx,
        ));
        HeldLease {
            store,
            grant,
            lost,
            task,
        }
    }

    /// The lock key.
    pub fn key(&self) -> &str {
        &self.grant.key
    }

    /// The run holding it.
    pub fn run_id(&self) -> &str {
        &self.grant.run_id
    }

    /// The grant's fencing token.
    pub fn token(&self) -> u64 {
        self.grant.token
    }

    /// The dead holder this lease replaced, if it took one over.
    pub fn took_over(&self) -> Option<&Holder> {
        self.grant.took_over.as_ref()
    }

    /// Whether a renewal found the lease gone (taken over after it expired), or could not renew
    /// it before it expired.
    pub fn is_lost(&self) -> bool {
        *self.lost.borrow()
    }

    /// Turns `true` when the lease is lost (see [`HeldLease::is_lost`]), to await in a task.
    pub fn lost_signal(&self) -> watch::Receiver<bool> {
        self.lost.clone()
    }

    /// Stops renewing and gives the lease up.
    pub async fn release(self) -> Result<(), LockError> {
        self.task.abort();
        self.store.release(&self.grant).await
    }

    /// Stops renewing and leaves the lease as it is, as a process that dies does.
    pub fn abandon(self) {
        self.task.abort();
    }
}

impl Drop for HeldLease {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Renews `grant` whenever `renew_every` has passed on the lease clock, looking every
/// `check_every` of that clock (see the module docs).
async fn renew_loop(
    store: Arc<dyn LeaseStore>,
    grant: LeaseGrant,
    options: LeaseOptions,
    lost: watch::Sender<bool>,
) {
    let mut renewed = options.now();
    loop {
        options.clock.sleep(options.check_every).await;
        let t = options.now();
        if t - renewed < options.renew_every.as_secs_f64() {
            continue;
        }
        match store.renew(&grant, options.ttl).await {
            Ok(()) => renewed = t,
            Err(LockError::Lost { .. }) => {
                tracing::error!(
                    lock = grant.key,
                    run = grant.run_id,
                    "LOST THE LEASE: another process took it over; whatever holds it must stop"
                );
                let _ = lost.send(true);
                return;
            }
            Err(e) => {
                // Past the expiry another host may take the lease over: from then on we cannot
                // claim to hold it, so say so loudly instead of retrying quietly.
                if t - renewed >= options.ttl.as_secs_f64() {
                    tracing::error!(
                        lock = grant.key,
                        run = grant.run_id,
                        error = %e,
                        "LOST THE LEASE: it could not be renewed before it expired; whatever holds it must stop"
                    );
                    let _ = lost.send(true);
                    return;
                }
                tracing::warn!(lock = grant.key, error = %e, "Could not renew the run lock; retrying");
            }
        }
    }
}

/// Whether a lease's holder is certainly gone (see the module docs): on this host, its process
/// is gone (`proc_start` is the holder's recorded start time); on another, the lease expired by
/// `t` (seconds since the Unix epoch). Every [`LeaseStore`] takes a lease over by this rule.
pub fn holder_is_gone(
    holder: &Holder,
    proc_start: Option<&str>,
    me: &HolderIdentity,
    t: Timestamp,
) -> bool {
    if holder.hostname == me.hostname {
        // Our own process counts as alive: one process (the daemon) may run several runbooks.
        match process_start(holder.pid) {
            None => !process_exists(holder.pid),
            Some(start) => proc_start.is_some_and(|recorded| recorded != start),
        }
    } else {
        t > holder.expires_at
    }
}

/// The process's start time (field 22 of `/proc/<pid>/stat`), to tell a recycled pid apart.
/// A process's start time (`/proc/<pid>/stat` field 22), `None` where there is no `/proc`.
pub fn process_start(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces.
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(19).map(str::to_owned)
}

/// Whether a process exists. Without `/proc` we cannot tell, and say it does (never guess a
/// holder dead).
fn process_exists(pid: u32) -> bool {
    let proc_root = Path::new("/proc");
    if !proc_root.join("self").exists() {
        return true;
    }
    proc_root.join(pid.to_string()).exists()
}

/// This machine's name.
pub fn hostname() -> String {
    let from_file = |p: &str| {
        std::fs::read_to_string(p)
            .ok()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    };
    from_file("/proc/sys/kernel/hostname")
        .or_else(|| from_file("/etc/hostname"))
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "unknown-host".into())
}

/// Who holds `key` now, if anyone (for `drflow runs` and error messages).
pub fn lock_holder(journal: &Journal, key: &str) -> Result<Option<Holder>, JournalError> {
    let path = journal.path().to_owned();
    read_lease(journal.conn(), key)
        .map(|row| row.map(|(holder, _)| holder))
        .map_err(sql(&path, "reading a run lock"))
}

/// The lease row of `key`, with the holder's process start time (for pid reuse checks).
fn read_lease(
    conn: &rusqlite::Connection,
    key: &str,
) -> rusqlite::Result<Option<(Holder, Option<String>)>> {
    conn.query_row(
        "SELECT key, run_id, pid, hostname, acquired_at, heartbeat_at, expires_at, proc_start,
                token
         FROM leases WHERE key = ?1",
        [key],
        |r| {
            Ok((
                Holder {
                    key: r.get(0)?,
                    run_id: r.get(1)?,
                    pid: r.get(2)?,
                    hostname: r.get(3)?,
                    acquired_at: r.get(4)?,
                    heartbeat_at: r.get(5)?,
                    expires_at: r.get(6)?,
                    token: r.get::<_, i64>(8)?.max(0) as u64,
                },
                r.get(7)?,
            ))
        },
    )
    .optional()
}

/// The holder of `key` if it is alive (this host: its process still exists; another host: its
/// lease has not expired on wall time). A row left by a process that died reads as `None`.
pub fn live_holder(journal: &Journal, key: &str) -> Result<Option<Holder>, JournalError> {
    let path = journal.path().to_owned();
    let row = read_lease(journal.conn(), key).map_err(sql(&path, "reading a run lock"))?;
    let now = crate::event::now();
    Ok(row.and_then(|(holder, proc_start)| {
        (!holder_is_gone(
            &holder,
            proc_start.as_deref(),
            &HolderIdentity::current(),
            now,
        ))
        .then_some(holder)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::VirtualClock;
    use std::path::PathBuf;

    fn journal_path() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.db");
        Journal::open(&path).unwrap();
        (dir, path)
    }

    /// The default timings on a virtual clock that moves with paused tokio time.
    fn virtual_options() -> LeaseOptions {
        LeaseOptions::on_clock(Arc::new(VirtualClock::new(1_700_000_000_000)))
    }

    fn store(path: &Path, options: &LeaseOptions) -> Arc<dyn LeaseStore> {
        Arc::new(
            FileLeaseStore::open(path)
                .unwrap()
                .with_clock(options.clock.clone()),
        )
    }

    fn heartbeat(path: &Path, key: &str) -> f64 {
        let j = Journal::open(path).unwrap();
        lock_holder(&j, key).unwrap().unwrap().heartbeat_at
    }

    #[tokio::test(start_paused = true)]
    async fn second_run_is_refused_with_the_holders_run_id() {
        let (_dir, path) = journal_path();
        let o = virtual_options();
        let s = store(&path, &o);
        let lease = HeldLease::acquire(s.clone(), "failover-prod", "run-a", &o)
            .await
            .unwrap();
        let err = HeldLease::acquire(s.clone(), "failover-prod", "run-b", &o)
            .await
            .unwrap_err();
        match &err {
            LockError::Held { holder } => {
                assert_eq!(holder.run_id, "run-a");
                assert_eq!(holder.pid, std::process::id());
            }
            other => panic!("expected Held, got {other}"),
        }
        assert!(err.to_string().contains("run-a"), "{err}");
        // Another key is independent.
        let other = HeldLease::acquire(s.clone(), "failover-dev", "run-b", &o)
            .await
            .unwrap();
        other.release().await.unwrap();
        lease.release().await.unwrap();
        HeldLease::acquire(s, "failover-prod", "run-b", &o)
            .await
            .unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn fencing_tokens_grow_with_every_grant_even_after_a_release() {
        let (_dir, path) = journal_path();
        let o = virtual_options();
        let s = store(&path, &o);
        let first = HeldLease::acquire(s.clone(), "k", "run-a", &o)
            .await
            .unwrap();
        let t1 = first.token();
        let stale = first.grant.clone();
        first.release().await.unwrap();
        let second = HeldLease::acquire(s.clone(), "k", "run-a", &o)
            .await
            .unwrap();
        assert!(second.token() > t1);
        // The older grant of the same run can neither renew nor release the new one.
        assert!(matches!(
            s.renew(&stale, o.ttl).await,
            Err(LockError::Lost { .. })
        ));
        s.release(&stale).await.unwrap();
        assert_eq!(
            s.inspect("k").await.unwrap().map(|h| h.token),
            Some(second.token())
        );
    }

    #[tokio::test(start_paused = true)]
    async fn renewal_follows_the_lease_clock_not_every_tick() {
        let (_dir, path) = journal_path();
        let o = virtual_options();
        let lease = HeldLease::acquire(store(&path, &o), "k", "run-a", &o)
            .await
            .unwrap();
        let first = heartbeat(&path, "k");
        // Nine seconds of ticks: not yet due (renew_every is 10 s).
        tokio::time::sleep(Duration::from_millis(9_500)).await;
        assert_eq!(heartbeat(&path, "k"), first);
        tokio::time::sleep(Duration::from_secs(1)).await;
        let renewed = heartbeat(&path, "k");
        assert!(renewed >= first + 10.0, "{first} -> {renewed}");
        assert!(!lease.is_lost());
        lease.release().await.unwrap();
        let j = Journal::open(&path).unwrap();
        assert_eq!(lock_holder(&j, "k").unwrap(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn on_wall_time_a_burst_of_virtual_time_does_not_rewrite_the_lease() {
        // The binary's sim runs: tokio time is virtual and jumps ahead, leases are on wall time.
        let (_dir, path) = journal_path();
        let o = LeaseOptions::default();
        let lease = HeldLease::acquire(store(&path, &o), "k", "run-a", &o)
            .await
            .unwrap();
        let first = heartbeat(&path, "k");
        // An hour of virtual time passes in (much) less than 10 s of wall time.
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert_eq!(heartbeat(&path, "k"), first);
        assert!(!lease.is_lost());
    }

    fn plant(path: &Path, key: &str, pid: u32, proc_start: Option<&str>, host: &str, expires: f64) {
        let j = Journal::open(path).unwrap();
        j.conn()
            .execute(
                "INSERT OR REPLACE INTO leases VALUES (?1, 'dead-run', ?2, ?3, ?4, 0, 0, ?5, 7)",
                params![key, pid, proc_start, host, expires],
            )
            .unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn lease_of_a_dead_process_on_this_host_is_taken_over_before_expiry() {
        let (_dir, path) = journal_path();
        let o = virtual_options();
        // Pids are below 2^22 on Linux; this one cannot exist.
        plant(&path, "k", 4_194_999, Some("1"), &hostname(), 1e12);
        let lease = HeldLease::acquire(store(&path, &o), "k", "run-b", &o)
            .await
            .unwrap();
        assert_eq!(
            lease.took_over().map(|h| h.run_id.as_str()),
            Some("dead-run")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn lease_of_a_live_process_on_this_host_is_kept_even_when_expired() {
        let (_dir, path) = journal_path();
        let o = virtual_options();
        // pid 1 is alive; its recorded start time matches, so it is the same process.
        let start = process_start(1);
        plant(&path, "k", 1, start.as_deref(), &hostname(), 0.0);
        assert!(matches!(
            HeldLease::acquire(store(&path, &o), "k", "run-b", &o).await,
            Err(LockError::Held { .. })
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn recycled_pid_is_not_mistaken_for_the_holder() {
        let (_dir, path) = journal_path();
        if process_start(1).is_none() {
            return; // no /proc: nothing to tell apart
        }
        let o = virtual_options();
        plant(&path, "k", 1, Some("not-its-start-time"), &hostname(), 1e12);
        HeldLease::acquire(store(&path, &o), "k", "run-b", &o)
            .await
            .unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn lease_from_another_host_is_taken_only_after_expiry_on_the_lease_clock() {
        let (_dir, path) = journal_path();
        let o = virtual_options();
        let now = o.now();
        plant(&path, "k", 1, None, "elsewhere", now + 30.0);
        let s = store(&path, &o);
        assert!(matches!(
            HeldLease::acquire(s.clone(), "k", "run-b", &o).await,
            Err(LockError::Held { .. })
        ));
        tokio::time::sleep(Duration::from_secs(31)).await;
        let lease = HeldLease::acquire(s, "k", "run-b", &o).await.unwrap();
        // The token goes on from the dead holder's.
        assert_eq!(lease.token(), 8);
    }

    #[tokio::test(start_paused = true)]
    async fn wait_lock_polls_until_free_or_timeout() {
        let (_dir, path) = journal_path();
        let o = virtual_options();
        let s = store(&path, &o);
        let lease = HeldLease::acquire(s.clone(), "k", "run-a", &o)
            .await
            .unwrap();
        let mut waited_for = None;
        let err = HeldLease::acquire_waiting(
            s.clone(),
            "k",
            "run-b",
            &o,
            Some(Duration::from_secs(5)),
            |h| waited_for = Some(h.run_id.clone()),
        )
        .await
        .unwrap_err();
        match err {
            LockError::Timeout { waited, .. } => assert_eq!(waited, Duration::from_secs(5)),
            other => panic!("{other}"),
        }
        assert_eq!(waited_for.as_deref(), Some("run-a"));
        let releaser = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(2)).await;
            lease.release().await.unwrap();
        });
        let got = HeldLease::acquire_waiting(s, "k", "run-b", &o, None, |_| {})
            .await
            .unwrap();
        releaser.await.unwrap();
        assert_eq!(got.run_id(), "run-b");
    }

    #[test]
    fn racing_threads_exactly_one_wins() {
        let (_dir, path) = journal_path();
        let barrier = Arc::new(std::sync::Barrier::new(4));
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let path = path.clone();
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    let store = FileLeaseStore::open(&path).unwrap();
                    barrier.wait();
                    store.acquire_now("k", &format!("run-{i}"), Duration::from_secs(30))
                })
            })
            .collect();
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        // All in one process (as in the daemon): our own pid is a live holder too.
        let winners = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(winners, 1, "{results:?}");
    }

    /// A sim run waiting for the real world (a test's gate, a person) while it holds a lease on
    /// wall time: the lease task gives the paused runtime no timer to jump to, so virtual time
    /// stands still instead of spinning forward for as long as the wait takes.
    #[tokio::test(start_paused = true)]
    async fn a_lease_on_wall_time_does_not_move_paused_time_while_the_run_waits() {
        let (_dir, path) = journal_path();
        let o = LeaseOptions::default();
        let lease = HeldLease::acquire(store(&path, &o), "k", "run-a", &o)
            .await
            .unwrap();
        let start = tokio::time::Instant::now();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        // The real world: something that happens a little later in wall time.
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            let _ = tx.send(());
        });
        rx.await.unwrap();
        assert_eq!(start.elapsed(), Duration::ZERO);
        assert!(!lease.is_lost());
        lease.release().await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_lease_taken_over_is_reported_lost_at_the_next_renewal() {
        let (_dir, path) = journal_path();
        let o = virtual_options();
        let lease = HeldLease::acquire(store(&path, &o), "k", "run-a", &o)
            .await
            .unwrap();
        let mut lost = lease.lost_signal();
        assert!(!lease.is_lost());
        let j = Journal::open(&path).unwrap();
        j.conn()
            .execute("UPDATE leases SET run_id = 'run-b' WHERE key = 'k'", [])
            .unwrap();
        tokio::time::timeout(Duration::from_secs(11), lost.wait_for(|l| *l))
            .await
            .expect("the loss is noticed at the next renewal")
            .unwrap();
        assert!(lease.is_lost());
    }
}
