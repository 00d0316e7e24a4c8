//! A journal's shared copy: the same event log, written through to a store that another
//! machine can read (a DynamoDB global table in the HA deployment, `docs/operations.md`), so
//! that a run begun by a daemon whose host died can be finished by its peer.
//!
//! The SQLite journal stays the local record and the reader of every command; a [`SharedLog`]
//! behind it is written *before* each local commit ([`crate::Journal::with_shared`]), so
//! nothing the scheduler acts on is on this machine only, and a machine that joins copies what
//! it lacks with [`crate::Journal::sync`].
//!
//! Each event is written only if its `(run_id, seq)` is not written yet, and only while every
//! lease of the run still carries the token it was granted with ([`Fence`]): a process that
//! was paused past its lease and wakes up after another took the run over cannot record, so
//! the scheduler, which starts a step only once its start is recorded, cannot act either. That
//! is the fencing check on every action.
//!
//! The trait is synchronous because the journal is: a store reached over the network runs its
//! calls on a thread of its own.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::clock::SharedClock;
use crate::lock::{Holder, HolderIdentity, LeaseFuture, LeaseGrant, LeaseStore, LockError};

/// One journaled event as the shared log holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedEvent {
    /// The run it belongs to.
    pub run_id: String,
    /// Its sequence number in the run, from 1, without gaps.
    pub seq: i64,
    /// The event as JSON ([`crate::RunEvent`]).
    pub body: String,
}

/// A lease the writer must still hold, with the fencing token of its grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    /// The lease key as stored (`run/<id>`, `lock/<key>`).
    pub key: String,
    /// The token the writer's grant carries.
    pub token: u64,
}

/// A shared log refused or failed a write or a read.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SharedLogError {
    /// A lease the writer relies on carries another token now: another process took it over.
    #[error(
        "the lease `{key}` is no longer this process's (its token is not {token} any more): \
         another drflow took the run over, so this one records and does nothing more"
    )]
    Fenced {
        /// The lease key.
        key: String,
        /// The token this writer held.
        token: u64,
    },
    /// An event with this sequence number is already written (by another process).
    #[error(
        "event {seq} of run {run_id} is already in the shared journal, written by another drflow"
    )]
    Conflict {
        /// The run.
        run_id: String,
        /// The sequence number.
        seq: i64,
    },
    /// The store could not be reached or answered an error.
    #[error("{0}")]
    Store(String),
}

/// Where a journal's events are also written; see the module docs.
pub trait SharedLog: Send + Sync + fmt::Debug {
    /// Where it is, for messages (`dynamodb://drflow-state-prod (eu-central-1)`).
    fn describe(&self) -> String;

    /// Writes `events` (of one or more runs, in order), each only if its `(run_id, seq)` is not
    /// written yet, and only while every lease in `fences` still has its token. All or nothing
    /// per call where the store allows it; a partial write leaves a prefix. Errors:
    /// [`SharedLogError::Fenced`], [`SharedLogError::Conflict`], [`SharedLogError::Store`].
    fn append(&self, events: &[SharedEvent], fences: &[Fence]) -> Result<(), SharedLogError>;

    /// Every event of `run_id`, or of every run when `None`, ordered by run then sequence.
    fn read(&self, run_id: Option<&str>) -> Result<Vec<SharedEvent>, SharedLogError>;

    /// Deletes every event of `run_id` (retention, `drflow runs prune`).
    fn delete_run(&self, run_id: &str) -> Result<(), SharedLogError>;
}

/// A shared log and lease store in this process's memory, as the DynamoDB table is both: what
/// the engine's tests (and anyone trying the HA logic without a store) use. Its leases are
/// judged as another host's always: taken over only once expired on its clock.
/// [`MemoryLog::set_token`] plays another process taking a lease over.
#[derive(Debug)]
pub struct MemoryLog {
    inner: Mutex<MemoryInner>,
    clock: SharedClock,
}

impl Default for MemoryLog {
    fn default() -> MemoryLog {
        MemoryLog {
            inner: Mutex::default(),
            clock: Arc::new(crate::clock::WallClock),
        }
    }
}

#[derive(Debug, Default)]
struct MemoryInner {
    events: BTreeMap<(String, i64), String>,
    tokens: BTreeMap<String, u64>,
    holders: BTreeMap<String, Holder>,
    /// When set, every call fails with this message (a store out of reach).
    down: Option<String>,
}

impl MemoryLog {
    /// An empty log, on wall time.
    pub fn new() -> MemoryLog {
        MemoryLog::default()
    }

    /// An empty log whose leases expire on `clock`.
    pub fn on_clock(clock: SharedClock) -> MemoryLog {
        MemoryLog {
            inner: Mutex::default(),
            clock,
        }
    }

    fn now(&self) -> f64 {
        self.clock.now_ms() as f64 / 1000.0
    }

    /// The lease `key` now carries `token` (another process taking it over).
    pub fn set_token(&self, key: &str, token: u64) {
        let mut inner = self.lock();
        inner.tokens.insert(key.to_owned(), token);
        if let Some(h) = inner.holders.get_mut(key) {
            h.token = token;
        }
    }

    /// Makes every later call fail (`Some(message)`) or work again (`None`).
    pub fn set_down(&self, message: Option<&str>) {
        self.lock().down = message.map(str::to_owned);
    }

    /// How many events it holds.
    pub fn len(&self) -> usize {
        self.lock().events.len()
    }

    /// Whether it holds no event.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemoryInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl SharedLog for MemoryLog {
    fn describe(&self) -> String {
        "memory".to_owned()
    }

    fn append(&self, events: &[SharedEvent], fences: &[Fence]) -> Result<(), SharedLogError> {
        let mut inner = self.lock();
        if let Some(m) = &inner.down {
            return Err(SharedLogError::Store(m.clone()));
        }
        for f in fences {
            if inner.tokens.get(&f.key) != Some(&f.token) {
                return Err(SharedLogError::Fenced {
                    key: f.key.clone(),
                    token: f.token,
                });
            }
        }
        if let Some(e) = events
            .iter()
            .find(|e| inner.events.contains_key(&(e.run_id.clone(), e.seq)))
        {
            return Err(SharedLogError::Conflict {
                run_id: e.run_id.clone(),
                seq: e.seq,
            });
        }
        for e in events {
            inner
                .events
                .insert((e.run_id.clone(), e.seq), e.body.clone());
        }
        Ok(())
    }

    fn read(&self, run_id: Option<&str>) -> Result<Vec<SharedEvent>, SharedLogError> {
        let inner = self.lock();
        if let Some(m) = &inner.down {
            return Err(SharedLogError::Store(m.clone()));
        }
        Ok(inner
            .events
            .iter()
            .filter(|((run, _), _)| run_id.is_none_or(|id| id == run))
            .map(|((run, seq), body)| SharedEvent {
                run_id: run.clone(),
                seq: *seq,
                body: body.clone(),
            })
            .collect())
    }

    fn delete_run(&self, run_id: &str) -> Result<(), SharedLogError> {
        let mut inner = self.lock();
        if let Some(m) = &inner.down {
            return Err(SharedLogError::Store(m.clone()));
        }
        inner.events.retain(|(run, _), _| run != run_id);
        Ok(())
    }
}

impl LeaseStore for MemoryLog {
    fn acquire<'a>(
        &'a self,
        key: &'a str,
        run_id: &'a str,
        ttl: Duration,
    ) -> LeaseFuture<'a, LeaseGrant> {
        Box::pin(async move {
            let t = self.now();
            let mut inner = self.lock();
            if let Some(m) = &inner.down {
                return Err(LockError::Store(m.clone()));
            }
            let took_over = match inner.holders.get(key) {
                Some(h) if t <= h.expires_at => {
                    return Err(LockError::Held {
                        holder: Box::new(h.clone()),
                    });
                }
                other => other.cloned(),
            };
            let token = inner.tokens.get(key).copied().unwrap_or(0) + 1;
            inner.tokens.insert(key.to_owned(), token);
            let me = HolderIdentity::current();
            inner.holders.insert(
                key.to_owned(),
                Holder {
                    key: key.to_owned(),
                    run_id: run_id.to_owned(),
                    pid: me.pid,
                    hostname: me.hostname,
                    acquired_at: t,
                    heartbeat_at: t,
                    expires_at: t + ttl.as_secs_f64(),
                    token,
                },
            );
            Ok(LeaseGrant {
                key: key.to_owned(),
                run_id: run_id.to_owned(),
                token,
                took_over,
            })
        })
    }

    fn renew<'a>(&'a self, grant: &'a LeaseGrant, ttl: Duration) -> LeaseFuture<'a, ()> {
        Box::pin(async move {
            let t = self.now();
            let mut inner = self.lock();
            match inner.holders.get_mut(&grant.key) {
                Some(h) if h.token == grant.token => {
                    h.heartbeat_at = t;
                    h.expires_at = t + ttl.as_secs_f64();
                    Ok(())
                }
                _ => Err(LockError::Lost {
                    key: grant.key.clone(),
                }),
            }
        })
    }

    fn release<'a>(&'a self, grant: &'a LeaseGrant) -> LeaseFuture<'a, ()> {
        Box::pin(async move {
            let mut inner = self.lock();
            if inner
                .holders
                .get(&grant.key)
                .is_some_and(|h| h.token == grant.token)
            {
                inner.holders.remove(&grant.key);
            }
            Ok(())
        })
    }

    fn inspect<'a>(&'a self, key: &'a str) -> LeaseFuture<'a, Option<Holder>> {
        Box::pin(async move { Ok(self.lock().holders.get(key).cloned()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(run: &str, seq: i64) -> SharedEvent {
        SharedEvent {
            run_id: run.into(),
            seq,
            body: format!("{{\"seq\":{seq}}}"),
        }
    }

    #[test]
    fn a_written_sequence_number_is_never_written_again() {
        let log = MemoryLog::new();
        log.append(&[ev("r1", 1), ev("r1", 2)], &[]).unwrap();
        let err = log.append(&[ev("r1", 3), ev("r1", 2)], &[]).unwrap_err();
        assert!(
            matches!(err, SharedLogError::Conflict { seq: 2, .. }),
            "{err}"
        );
        // All or nothing: 3 was not written either.
        assert_eq!(log.read(Some("r1")).unwrap().len(), 2);
    }

    #[test]
    fn a_stale_token_writes_nothing() {
        let log = MemoryLog::new();
        log.set_token("run/r1", 1);
        let fence = [Fence {
            key: "run/r1".into(),
            token: 1,
        }];
        log.append(&[ev("r1", 1)], &fence).unwrap();
        log.set_token("run/r1", 2);
        let err = log.append(&[ev("r1", 2)], &fence).unwrap_err();
        assert!(
            matches!(err, SharedLogError::Fenced { token: 1, .. }),
            "{err}"
        );
        assert_eq!(log.len(), 1);
    }
}
