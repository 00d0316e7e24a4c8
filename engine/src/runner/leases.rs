//! The leases a run holds: its own (so it is never continued twice at once) and its runbook's
//! `lock:`; and the stop signal that turns graceful when one of them is lost.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch;

use crate::clock::Clock;
use crate::compile::Runbook;
use crate::lock::{HeldLease, Holder, LeaseOptions, LeaseStore, LockError};
use crate::scheduler::Stop;
use crate::scope::Scope;
use crate::secret_flow::SecretFlow;
use crate::secrets::Secrets;
use crate::step::Outputs;

use super::error::RunnerError;

/// Something the runner tells its caller while it works, for the caller to show or log (the
/// runner prints nothing).
#[derive(Debug, Clone, Copy)]
pub enum Notice<'a> {
    /// Another run holds the lock; this one waits (`--wait-lock`). Said once.
    WaitingForLock {
        /// The key as the runbook gives it.
        key: &'a str,
        /// Who holds it.
        holder: &'a Holder,
    },
    /// The lock was taken over from a run whose process is gone or whose lease expired.
    TookOverLock {
        /// The key as the runbook gives it.
        key: &'a str,
        /// The dead holder.
        dead: &'a Holder,
    },
    /// A lease was lost during the run: another run may hold it now; no new step starts.
    LostLock {
        /// The key as the user knows it (the `lock:` value, or `run <id>`).
        key: &'a str,
    },
    /// The run failed and the runbook says `on_failure: rollback`: undoing.
    RollingBack,
}

/// Where the runner's [`Notice`]s go.
pub type Notices = Arc<dyn Fn(Notice<'_>) + Send + Sync>;

/// How to take a runbook's `lock:` when another run holds it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LockWait {
    /// Wait for it instead of refusing.
    pub wait: bool,
    /// Give up after this long (on the lease clock).
    pub timeout: Option<Duration>,
}

/// The lease key of a runbook's `lock:`.
pub fn lock_lease_key(key: &str) -> String {
    format!("lock/{key}")
}

/// The lease key of a run itself: held while a process records into the run.
pub fn run_lease_key(run_id: &str) -> String {
    format!("run/{run_id}")
}

/// A lease key as the user knows it: the `lock:` value, or `run <id>`.
pub fn display_lease_key(key: &str) -> String {
    if let Some(k) = key.strip_prefix("lock/") {
        k.to_owned()
    } else if let Some(id) = key.strip_prefix("run/") {
        format!("run {id}")
    } else {
        key.to_owned()
    }
}

/// Refuses a secret parameter too short to be scrubbed out of text (see docs/journal.md).
pub(super) fn refuse_short_secrets(rb: &Runbook, params: &Outputs) -> Result<(), RunnerError> {
    match Secrets::too_short(params, &rb.secret_params()) {
        None => Ok(()),
        Some(name) => Err(RunnerError::ShortSecret {
            name: name.to_string(),
        }),
    }
}

/// Refuses a `lock:` that reads a secret, whatever it evaluates to: lock keys are stored in the
/// journal and shown to other runs.
pub(super) fn refuse_secret_lock(rb: &Runbook) -> Result<(), RunnerError> {
    if SecretFlow::of(rb).lock_is_secret() {
        return Err(RunnerError::LockReadsSecret);
    }
    Ok(())
}

/// Evaluates the runbook's `lock:` expression with the run's parameters, `run.started_at` being
/// now on the run's `clock` (virtual time on the simulated cloud, like the run's own events). A
/// key that reads or contains a secret is refused: lock keys are stored in the journal and shown
/// in messages.
pub fn evaluate_lock(
    rb: &Runbook,
    run_id: &str,
    params: &Outputs,
    clock: &dyn Clock,
) -> Result<Option<String>, RunnerError> {
    refuse_secret_lock(rb)?;
    let Some(t) = &rb.lock else { return Ok(None) };
    let ctx = Scope::new(run_id, crate::clock::timestamp(clock.now_ms()), params).context(0.0);
    let key = match t.eval(&ctx) {
        Ok(Value::String(s)) => s,
        Ok(Value::Null) => return Err(RunnerError::LockNothing),
        Ok(other) => other.to_string(),
        Err(e) => return Err(RunnerError::LockEval(e.to_string())),
    };
    if key.trim().is_empty() {
        return Err(RunnerError::LockEmpty);
    }
    let secrets = Secrets::from_params(params, &rb.secret_params());
    if secrets.scrub(&key) != key.as_str() {
        return Err(RunnerError::LockContainsSecret {
            shown: secrets.scrub(&key).into_owned(),
        });
    }
    Ok(Some(key))
}

/// Takes the lease on run `run_id` itself.
pub(super) async fn take_run_lease(
    store: &Arc<dyn LeaseStore>,
    options: &LeaseOptions,
    run_id: &str,
    wait: LockWait,
) -> Result<HeldLease, RunnerError> {
    let key = run_lease_key(run_id);
    let taken = if wait.wait {
        // A run whose process just died on another host: its lease lapses within `ttl`.
        HeldLease::acquire_waiting(store.clone(), &key, run_id, options, wait.timeout, |_| {}).await
    } else {
        HeldLease::acquire(store.clone(), &key, run_id, options).await
    };
    taken.map_err(|e| match e {
        LockError::Held { holder } | LockError::Timeout { holder, .. } => RunnerError::RunBusy {
            run_id: run_id.to_owned(),
            holder,
        },
        other => RunnerError::Lock(other),
    })
}

/// Takes the runbook's `lock:` lease, if it has one.
#[allow(clippy::too_many_arguments)]
pub(super) async fn take_lock_lease(
    store: &Arc<dyn LeaseStore>,
    options: &LeaseOptions,
    rb: &Runbook,
    run_id: &str,
    params: &Outputs,
    clock: &dyn Clock,
    wait: LockWait,
    notices: Option<&super::Notices>,
) -> Result<Option<HeldLease>, RunnerError> {
    let Some(key) = evaluate_lock(rb, run_id, params, clock)? else {
        return Ok(None);
    };
    let lease_key = lock_lease_key(&key);
    let lease = if wait.wait {
        HeldLease::acquire_waiting(
            store.clone(),
            &lease_key,
            run_id,
            options,
            wait.timeout,
            |holder| {
                if let Some(n) = notices {
                    n(Notice::WaitingForLock { key: &key, holder });
                }
            },
        )
        .await
    } else {
        HeldLease::acquire(store.clone(), &lease_key, run_id, options).await
    };
    let lease = lease.map_err(|e| match e {
        LockError::Held { holder } => RunnerError::LockHeld {
            key: key.clone(),
            holder,
        },
        LockError::Timeout { holder, waited } => RunnerError::LockTimeout {
            key: key.clone(),
            holder,
            waited,
        },
        other => RunnerError::Lock(other),
    })?;
    if let (Some(dead), Some(n)) = (lease.took_over(), notices) {
        n(Notice::TookOverLock { key: &key, dead });
    }
    Ok(Some(lease))
}

/// Releases every lease (a failure is logged: the lease then expires on its own).
pub(super) async fn release_all(leases: Vec<HeldLease>) {
    for lease in leases {
        let key = lease.key().to_owned();
        if let Err(e) = lease.release().await {
            tracing::warn!(lock = key, error = %e, "Could not release the run lock; it expires on its own");
        }
    }
}

/// A stop signal that follows `outer` (Ctrl-C, SIGTERM) and also turns to a graceful stop when
/// one of `leases` is lost: another process now holds the lock (or may, its lease having
/// expired unrenewed), so this run must start nothing more.
pub(super) fn stop_when_a_lease_is_lost(
    leases: &[HeldLease],
    mut outer: watch::Receiver<Stop>,
    notices: Option<super::Notices>,
) -> (watch::Receiver<Stop>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = watch::channel(*outer.borrow());
    let mut signals: Vec<(String, watch::Receiver<bool>)> = leases
        .iter()
        .map(|l| (display_lease_key(l.key()), l.lost_signal()))
        .collect();
    let task = tokio::spawn(async move {
        let mut listening = true;
        loop {
            let lost = async {
                if signals.is_empty() {
                    return std::future::pending::<usize>().await;
                }
                let waits = signals.iter_mut().enumerate().map(|(i, (_, rx))| {
                    Box::pin(async move {
                        // A dropped lease (its sender gone) is not a lost one.
                        let lost = rx.wait_for(|l| *l).await.is_ok();
                        if !lost {
                            std::future::pending::<()>().await;
                        }
                        i
                    })
                });
                futures_select_all(waits).await
            };
            tokio::select! {
                changed = outer.changed(), if listening => {
                    if changed.is_err() {
                        listening = false;
                        continue;
                    }
                    let s = *outer.borrow();
                    if tx.send(s).is_err() {
                        return;
                    }
                }
                i = lost => {
                    let (key, _) = signals.remove(i);
                    if let Some(n) = &notices {
                        n(Notice::LostLock { key: &key });
                    }
                    if *tx.borrow() == Stop::No && tx.send(Stop::Graceful).is_err() {
                        return;
                    }
                }
            }
        }
    });
    (rx, task)
}

/// The index of the first of `futures` to finish.
async fn futures_select_all<F>(futures: impl Iterator<Item = F>) -> usize
where
    F: std::future::Future<Output = usize> + Unpin,
{
    let mut futures: Vec<F> = futures.collect();
    std::future::poll_fn(move |cx| {
        for f in futures.iter_mut() {
            if let std::task::Poll::Ready(i) = std::pin::Pin::new(f).poll(cx) {
                return std::task::Poll::Ready(i);
            }
        }
        std::task::Poll::Pending
    })
    .await
}
