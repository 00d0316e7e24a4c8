//! Run locks: a runbook's `lock:` key is held by one live run at a time, across processes.
//!
//! A lock is a lease row in the journal's `leases` table: key, run id, holder pid (with the
//! process's start time, so a recycled pid is not mistaken for the holder), hostname, heartbeat
//! and expiry. It is taken in an `IMMEDIATE` transaction, so two processes racing for a free key
//! are serialised by SQLite's write lock and exactly one wins.
//!
//! While held, a heartbeat thread renews the lease every `ttl / 3`. A lease left behind by a
//! process that died is taken over, never by guessing:
//!
//! - same host: only when the holder process is gone (its pid does not exist, or exists with
//!   another start time). A live holder keeps its lock even past its expiry (it may be stopped
//!   by a debugger or a suspended laptop, and will renew when it wakes up);
//! - another host (a shared state dir): only when the lease has expired.
//!
//! Dropping a [`Lease`] (or [`Lease::release`]) stops the heartbeat and deletes the row.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use crate::event::{Timestamp, now};
use crate::journal::{Durability, Journal, JournalError, sql};

/// How long a lease lives without a heartbeat, and how often it is renewed.
#[derive(Debug, Clone, Copy)]
pub struct LeaseOptions {
    /// A lease not renewed for this long may be taken over from another host (default 30 s).
    pub ttl: Duration,
    /// How often the holder renews it (default 10 s).
    pub heartbeat: Duration,
}

impl Default for LeaseOptions {
    fn default() -> LeaseOptions {
        LeaseOptions {
            ttl: Duration::from_secs(30),
            heartbeat: Duration::from_secs(10),
        }
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
}

/// A lock could not be taken.
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
        holder: Holder,
    },
    /// `--wait-lock` gave up.
    #[error(
        "gave up waiting for the lock `{}` after {}; it is still held by run {} (pid {} on {})",
        holder.key, crate::duration::format_duration(*waited), holder.run_id, holder.pid, holder.hostname
    )]
    Timeout {
        /// The holder when we gave up.
        holder: Holder,
        /// How long we waited.
        waited: Duration,
    },
    /// The journal failed.
    #[error(transparent)]
    Journal(#[from] JournalError),
}

/// A held lock. Renewed by a heartbeat thread until dropped or released.
#[derive(Debug)]
pub struct Lease {
    key: String,
    run_id: String,
    took_over: Option<Holder>,
    lost: Arc<AtomicBool>,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Lease {
    /// Takes the lock `key` for `run_id` now, or says who holds it.
    pub fn acquire(
        journal_path: &Path,
        key: &str,
        run_id: &str,
        options: LeaseOptions,
    ) -> Result<Lease, LockError> {
        let journal = Journal::open_with(journal_path, Durability::Normal)?;
        let me = Me::current();
        let took_over = try_take(&journal, key, run_id, &me, options.ttl)?;
        Ok(Lease::start(journal, key, run_id, me, options, took_over))
    }

    /// Like [`Lease::acquire`], but while another run holds the lock, polls every `poll` until it
    /// is free or `timeout` passes. `on_wait` is called once with the holder, when waiting begins.
    pub fn acquire_waiting(
        journal_path: &Path,
        key: &str,
        run_id: &str,
        options: LeaseOptions,
        poll: Duration,
        timeout: Option<Duration>,
        mut on_wait: impl FnMut(&Holder),
    ) -> Result<Lease, LockError> {
        let journal = Journal::open_with(journal_path, Durability::Normal)?;
        let me = Me::current();
        let start = std::time::Instant::now();
        let mut told = false;
        loop {
            match try_take(&journal, key, run_id, &me, options.ttl) {
                Ok(took_over) => {
                    return Ok(Lease::start(journal, key, run_id, me, options, took_over));
                }
                Err(LockError::Held { holder }) => {
                    if timeout.is_some_and(|t| start.elapsed() >= t) {
                        return Err(LockError::Timeout {
                            holder,
                            waited: start.elapsed(),
                        });
                    }
                    if !told {
                        on_wait(&holder);
                        told = true;
                    }
                    std::thread::sleep(poll);
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn start(
        journal: Journal,
        key: &str,
        run_id: &str,
        me: Me,
        options: LeaseOptions,
        took_over: Option<Holder>,
    ) -> Lease {
        let lost = Arc::new(AtomicBool::new(false));
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = {
            let key = key.to_owned();
            let run_id = run_id.to_owned();
            let lost = lost.clone();
            std::thread::Builder::new()
                .name("drflow-lease".into())
                .spawn(move || heartbeat(journal, &key, &run_id, &me, options, &lost, &stopped))
                .ok()
        };
        Lease {
            key: key.to_owned(),
            run_id: run_id.to_owned(),
            took_over,
            lost,
            stop: Some(stop),
            thread,
        }
    }

    /// The lock key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The run holding it.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// The dead holder this lease replaced, if it took one over.
    pub fn took_over(&self) -> Option<&Holder> {
        self.took_over.as_ref()
    }

    /// Whether a heartbeat found the lease gone (taken over from another host after it expired),
    /// or could not renew it before it expired.
    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    /// A flag that turns true when the lease is lost (see [`Lease::is_lost`]), to watch from
    /// another thread or task.
    pub fn lost_flag(&self) -> Arc<AtomicBool> {
        self.lost.clone()
    }

    /// Stops the heartbeat and deletes the lease.
    pub fn release(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        // Dropping the sender wakes the heartbeat thread, which deletes the row and exits.
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Who we are, as a lease holder.
#[derive(Debug, Clone)]
struct Me {
    pid: u32,
    proc_start: Option<String>,
    hostname: String,
}

impl Me {
    fn current() -> Me {
        let pid = std::process::id();
        Me {
            pid,
            proc_start: process_start(pid),
            hostname: hostname(),
        }
    }
}

/// One attempt at taking the lock, in an IMMEDIATE transaction.
fn try_take(
    journal: &Journal,
    key: &str,
    run_id: &str,
    me: &Me,
    ttl: Duration,
) -> Result<Option<Holder>, LockError> {
    let path = journal.path().to_owned();
    let conn = journal.conn();
    conn.execute_batch("BEGIN IMMEDIATE")
        .map_err(sql(&path, "locking the journal to take a run lock"))?;
    let result = (|| -> Result<Option<Holder>, LockError> {
        let row = read_lease(conn, key).map_err(sql(&path, "reading a run lock"))?;
        let t = now();
        let took_over = match row {
            None => None,
            Some((holder, proc_start)) => {
                let same_run = holder.run_id == run_id && holder.pid == me.pid;
                if !same_run && !holder_is_gone(&holder, proc_start.as_deref(), me, t) {
                    return Err(LockError::Held { holder });
                }
                Some(holder)
            }
        };
        conn.execute(
            "INSERT OR REPLACE INTO leases
                 (key, run_id, pid, proc_start, hostname, acquired_at, heartbeat_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7)",
            params![
                key,
                run_id,
                me.pid,
                me.proc_start,
                me.hostname,
                t,
                t + ttl.as_secs_f64()
            ],
        )
        .map_err(sql(&path, "writing a run lock"))?;
        Ok(took_over)
    })();
    let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
    conn.execute_batch(end)
        .map_err(sql(&path, "committing a run lock"))?;
    result
}

/// Whether a lease's holder is certainly gone (see the module docs).
fn holder_is_gone(holder: &Holder, proc_start: Option<&str>, me: &Me, t: Timestamp) -> bool {
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

fn heartbeat(
    journal: Journal,
    key: &str,
    run_id: &str,
    me: &Me,
    options: LeaseOptions,
    lost: &AtomicBool,
    stopped: &mpsc::Receiver<()>,
) {
    let conn = journal.conn();
    let mut renewed = now();
    loop {
        match stopped.recv_timeout(options.heartbeat) {
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            // Released (or the lease was dropped): delete our row and stop.
            Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                if let Err(e) = conn.execute(
                    "DELETE FROM leases WHERE key = ?1 AND run_id = ?2 AND pid = ?3",
                    params![key, run_id, me.pid],
                ) {
                    tracing::warn!(lock = key, error = %e, "Could not release the run lock; it expires on its own");
                }
                return;
            }
        }
        let t = now();
        match conn.execute(
            "UPDATE leases SET heartbeat_at = ?4, expires_at = ?5
             WHERE key = ?1 AND run_id = ?2 AND pid = ?3",
            params![key, run_id, me.pid, t, t + options.ttl.as_secs_f64()],
        ) {
            Ok(1) => renewed = t,
            Ok(_) => {
                if !lost.swap(true, Ordering::SeqCst) {
                    tracing::error!(
                        lock = key,
                        run = run_id,
                        "LOST THE RUN LOCK: another process took it over; this run must stop"
                    );
                }
            }
            Err(e) => {
                // Past the expiry another host may take the lease over: from then on we cannot
                // claim to hold it, so say so loudly instead of retrying quietly.
                if t - renewed >= options.ttl.as_secs_f64() {
                    if !lost.swap(true, Ordering::SeqCst) {
                        tracing::error!(
                            lock = key,
                            run = run_id,
                            error = %e,
                            "LOST THE RUN LOCK: it could not be renewed before it expired; this run must stop"
                        );
                    }
                } else {
                    tracing::warn!(lock = key, error = %e, "Could not renew the run lock; retrying");
                }
            }
        }
    }
}

/// The process's start time (field 22 of `/proc/<pid>/stat`), to tell a recycled pid apart.
fn process_start(pid: u32) -> Option<String> {
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
        "SELECT key, run_id, pid, hostname, acquired_at, heartbeat_at, expires_at, proc_start
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
                },
                r.get(7)?,
            ))
        },
    )
    .optional()
}

/// The holder of `key` if it is alive (this host: its process still exists; another host: its
/// lease has not expired). A row left by a process that died reads as `None`.
pub fn live_holder(journal: &Journal, key: &str) -> Result<Option<Holder>, JournalError> {
    let path = journal.path().to_owned();
    let row = read_lease(journal.conn(), key).map_err(sql(&path, "reading a run lock"))?;
    Ok(row.and_then(|(holder, proc_start)| {
        (!holder_is_gone(&holder, proc_start.as_deref(), &Me::current(), now())).then_some(holder)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn journal_path() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.db");
        Journal::open(&path).unwrap();
        (dir, path)
    }

    fn fast() -> LeaseOptions {
        LeaseOptions {
            ttl: Duration::from_secs(30),
            heartbeat: Duration::from_millis(20),
        }
    }

    #[test]
    fn second_run_is_refused_with_the_holders_run_id() {
        let (_dir, path) = journal_path();
        let lease = Lease::acquire(&path, "failover-prod", "run-a", fast()).unwrap();
        let err = Lease::acquire(&path, "failover-prod", "run-b", fast()).unwrap_err();
        match &err {
            LockError::Held { holder } => {
                assert_eq!(holder.run_id, "run-a");
                assert_eq!(holder.pid, std::process::id());
            }
            other => panic!("expected Held, got {other}"),
        }
        assert!(err.to_string().contains("run-a"), "{err}");
        // Another key is independent.
        let other = Lease::acquire(&path, "failover-dev", "run-b", fast()).unwrap();
        drop(other);
        lease.release();
        Lease::acquire(&path, "failover-prod", "run-b", fast()).unwrap();
    }

    #[test]
    fn heartbeat_renews_the_lease() {
        let (_dir, path) = journal_path();
        let lease = Lease::acquire(&path, "k", "run-a", fast()).unwrap();
        let j = Journal::open(&path).unwrap();
        let first = lock_holder(&j, "k").unwrap().unwrap().heartbeat_at;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let now = lock_holder(&j, "k").unwrap().unwrap().heartbeat_at;
            if now > first {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "no heartbeat");
            std::thread::yield_now();
        }
        assert!(!lease.is_lost());
        drop(lease);
        assert_eq!(lock_holder(&j, "k").unwrap(), None);
    }

    fn plant(path: &Path, key: &str, pid: u32, proc_start: Option<&str>, host: &str, expires: f64) {
        let j = Journal::open(path).unwrap();
        j.conn()
            .execute(
                "INSERT OR REPLACE INTO leases VALUES (?1, 'dead-run', ?2, ?3, ?4, 0, 0, ?5)",
                params![key, pid, proc_start, host, expires],
            )
            .unwrap();
    }

    #[test]
    fn lease_of_a_dead_process_on_this_host_is_taken_over_before_expiry() {
        let (_dir, path) = journal_path();
        // Pids are below 2^22 on Linux; this one cannot exist.
        plant(
            &path,
            "k",
            4_194_999,
            Some("1"),
            &hostname(),
            now() + 3600.0,
        );
        let lease = Lease::acquire(&path, "k", "run-b", fast()).unwrap();
        assert_eq!(
            lease.took_over().map(|h| h.run_id.as_str()),
            Some("dead-run")
        );
    }

    #[test]
    fn lease_of_a_live_process_on_this_host_is_kept_even_when_expired() {
        let (_dir, path) = journal_path();
        // pid 1 is alive; its recorded start time matches, so it is the same process.
        let start = process_start(1);
        plant(&path, "k", 1, start.as_deref(), &hostname(), 0.0);
        assert!(matches!(
            Lease::acquire(&path, "k", "run-b", fast()),
            Err(LockError::Held { .. })
        ));
    }

    #[test]
    fn recycled_pid_is_not_mistaken_for_the_holder() {
        let (_dir, path) = journal_path();
        if process_start(1).is_none() {
            return; // no /proc: nothing to tell apart
        }
        plant(
            &path,
            "k",
            1,
            Some("not-its-start-time"),
            &hostname(),
            now() + 3600.0,
        );
        Lease::acquire(&path, "k", "run-b", fast()).unwrap();
    }

    #[test]
    fn lease_from_another_host_is_taken_only_after_expiry() {
        let (_dir, path) = journal_path();
        plant(&path, "k", 1, None, "elsewhere", now() + 3600.0);
        assert!(matches!(
            Lease::acquire(&path, "k", "run-b", fast()),
            Err(LockError::Held { .. })
        ));
        plant(&path, "k", 1, None, "elsewhere", now() - 1.0);
        Lease::acquire(&path, "k", "run-b", fast()).unwrap();
    }

    #[test]
    fn wait_lock_polls_until_free_or_timeout() {
        let (_dir, path) = journal_path();
        let lease = Lease::acquire(&path, "k", "run-a", fast()).unwrap();
        let mut waited_for = None;
        let err = Lease::acquire_waiting(
            &path,
            "k",
            "run-b",
            fast(),
            Duration::from_millis(5),
            Some(Duration::from_millis(30)),
            |h| waited_for = Some(h.run_id.clone()),
        )
        .unwrap_err();
        assert!(matches!(err, LockError::Timeout { .. }), "{err}");
        assert_eq!(waited_for.as_deref(), Some("run-a"));
        let releaser = std::thread::spawn(move || lease.release());
        let got = Lease::acquire_waiting(
            &path,
            "k",
            "run-b",
            fast(),
            Duration::from_millis(5),
            None,
            |_| {},
        )
        .unwrap();
        releaser.join().unwrap();
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
                    barrier.wait();
                    Lease::acquire(&path, "k", &format!("run-{i}"), fast())
                })
            })
            .collect();
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        // All in one process (as in the daemon): our own pid is a live holder too.
        let winners = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(winners, 1, "{results:?}");
    }

    #[test]
    fn a_lease_taken_over_is_reported_lost() {
        let (_dir, path) = journal_path();
        let lease = Lease::acquire(&path, "k", "run-a", fast()).unwrap();
        assert!(!lease.is_lost());
        let j = Journal::open(&path).unwrap();
        j.conn()
            .execute("UPDATE leases SET run_id = 'run-b' WHERE key = 'k'", [])
            .unwrap();
        let flag = lease.lost_flag();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !flag.load(Ordering::SeqCst) {
            assert!(std::time::Instant::now() < deadline, "loss not noticed");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(lease.is_lost());
    }
}
