//! The library runner: the whole life of a durable run, for `drflow run` and `resume` today and
//! the drill and the daemon later. It takes a compiled runbook (or compiles a journaled run's
//! again with a step [`crate::Registry`]), its parameters, the lock key, the leases, the
//! journal, scheduling, `on_failure: rollback` and resume; it prints nothing, exits nothing and
//! keeps no global state. Progress goes to the caller's [`crate::RunSink`]; what else it has to
//! say goes to [`Notices`]; failures are [`RunnerError`]s the caller maps to exit codes.
//!
//! Two steps, so a caller can ask a person something between them:
//!
//! 1. [`Runner::start`] (a new run) or [`Runner::load`] (a journaled run, for resume or
//!    rollback) opens the journal and takes the leases, and returns a [`Session`]. Nothing is
//!    journaled yet by `start`: a refused lock leaves no trace.
//! 2. [`Session::run`] runs (or resumes) and, if the run failed and the runbook says so, rolls
//!    back; [`Session::rollback`] undoes a loaded run. Either releases the leases at the end;
//!    [`Session::release`] gives them up without running.
//!
//! The engine knows no cloud: a backend that keeps state in memory is saved through the
//! [`Checkpoint`] callback, called before the journal records the end of a step (or of an undo,
//! or of the run) and once more at the end. Tests stop a run at named points through [`Hooks`].

mod error;
mod hooks;
mod leases;
mod load;
mod sink;

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::watch;

use crate::clock::{SharedClock, WallClock};
use crate::compile::{OnFailure, Runbook};
use crate::event::{Recorder, RunSink, RunStatus, SinkError};
use crate::journal::{JOURNAL_FILE, Journal};
use crate::lock::{FileLeaseStore, HeldLease, LeaseOptions, LeaseStore};
use crate::rollback::RollbackReport;
use crate::scheduler::{RunError, RunOptions, RunReport, Stop};
use crate::secrets::{Secrets, redact};
use crate::shared_log::{Fence, SharedLog};
use crate::state::RunState;
use crate::step::Outputs;

pub use error::{RunnerError, RunnerErrorKind, read_hint};
pub use hooks::{HookAction, HookFn, HookPoint, Hooks};
pub use leases::{
    LockWait, Notice, Notices, display_lease_key, evaluate_lock, lock_lease_key, run_lease_key,
};
pub use load::{LoadRequest, Loaded, LoadedRun, NothingToDo, Purpose, compile_file};
pub use sink::Checkpoint;

use sink::RunnerSink;

/// How the runner keeps runs durable.
#[derive(Clone)]
pub struct RunnerOptions {
    /// Where the journal lives (`<state_dir>/journal.db`).
    pub state_dir: PathBuf,
    /// Where leases live; `None`: the journal's own `leases` table, held as this process.
    /// Ignored when [`RunnerOptions::shared`] is given (its leases are used).
    pub lease_store: Option<Arc<dyn LeaseStore>>,
    /// The HA deployment's shared journal and leases (`--journal dynamodb://TABLE`): every
    /// journal opened is first brought up to date from it and writes through to it, fenced by
    /// the run's leases, which are taken in its lease store.
    pub shared: Option<SharedJournal>,
    /// Lease timings and the clock they are judged on (wall time by default).
    pub leases: LeaseOptions,
    /// Test hooks; none by default.
    pub hooks: Hooks,
    /// Saves the backend's in-memory state; see the module docs.
    pub checkpoint: Option<Checkpoint>,
    /// Where [`Notice`]s go; dropped when `None`.
    pub notices: Option<Notices>,
    /// The clock of the runs this runner starts, resumes and rolls back: what a `lock:` key's
    /// `run.started_at` reads and what [`Session::rollback`] is stamped on. Give the clock of
    /// [`RunOptions::clock`] (the simulated cloud's virtual clock on a sim run); default
    /// [`WallClock`]. Leases stay on their own clock ([`LeaseOptions::clock`]).
    pub clock: SharedClock,
}

impl RunnerOptions {
    /// Defaults for the journal under `state_dir`.
    pub fn new(state_dir: impl Into<PathBuf>) -> RunnerOptions {
        RunnerOptions {
            state_dir: state_dir.into(),
            lease_store: None,
            shared: None,
            leases: LeaseOptions::default(),
            hooks: Hooks::none(),
            checkpoint: None,
            notices: None,
            clock: Arc::new(WallClock),
        }
    }
}

impl std::fmt::Debug for RunnerOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunnerOptions")
            .field("state_dir", &self.state_dir)
            .field("lease_store", &self.lease_store)
            .field("shared", &self.shared)
            .field("leases", &self.leases)
            .field("hooks", &self.hooks)
            .field("checkpoint", &self.checkpoint.is_some())
            .field("notices", &self.notices.is_some())
            .field("virtual_clock", &self.clock.is_virtual())
            .finish()
    }
}

/// A journal shared between machines: the event log and the lease store its writes are fenced
/// by (the tokens it checks are those this store grants).
#[derive(Clone, Debug)]
pub struct SharedJournal {
    /// The shared event log.
    pub log: Arc<dyn SharedLog>,
    /// The lease store whose tokens the log checks.
    pub leases: Arc<dyn LeaseStore>,
    /// Leases of the caller every write also requires, besides the run's own: the daemon's
    /// lease `daemon/<env_suffix>`, so that a daemon that lost it records (and so starts)
    /// nothing more, even in a run it began before it knew.
    pub fences: Vec<Fence>,
}

/// Starts, resumes and rolls back durable runs. Cheap to clone; holds nothing open itself.
#[derive(Clone, Debug)]
pub struct Runner {
    options: RunnerOptions,
}

/// How a new run is kept.
#[derive(Debug, Clone, Copy, Default)]
pub struct StartOptions {
    /// Do not journal the run (it cannot be resumed, shown or rolled back). Its `lock:` is
    /// still taken.
    pub no_journal: bool,
    /// How to take the runbook's `lock:` when another run holds it.
    pub lock: LockWait,
}

/// What a run (or resume) came to.
#[derive(Debug)]
pub struct RunOutcome {
    /// The run's report, secrets scrubbed; lost leases are among its errors.
    pub report: RunReport,
    /// What the automatic rollback did (`on_failure: rollback` after a failed run).
    pub rollback: Option<RollbackReport>,
    /// The lease keys lost during the run, as the user knows them.
    pub lost_leases: Vec<String>,
}

impl Runner {
    /// A runner with these options.
    pub fn new(options: RunnerOptions) -> Runner {
        Runner { options }
    }

    /// Its options.
    pub fn options(&self) -> &RunnerOptions {
        &self.options
    }

    /// Opens the journal and takes the leases for a new run `run_id` of `rb` with `params`
    /// (resolved and checked by the caller). Nothing is journaled yet: a refused lock leaves no
    /// trace, and a refused secret leaves no state directory.
    ///
    /// Errors: a secret too short to scrub, a `lock:` that reads or contains a secret or
    /// evaluates to nothing, the journal, a held lock (`Busy`).
    pub async fn start(
        &self,
        rb: &Runbook,
        params: &Outputs,
        run_id: &str,
        how: StartOptions,
    ) -> Result<Session, RunnerError> {
        leases::refuse_short_secrets(rb, params)?;
        // Before the journal is opened: a refused run leaves no state dir behind.
        leases::refuse_secret_lock(rb)?;
        let secrets = Secrets::from_params(params, &rb.secret_params());
        let given_store = self.given_lease_store();
        let needs_journal = !how.no_journal || (rb.lock.is_some() && given_store.is_none());
        // A new run needs nothing from the shared journal: no copy on its critical path.
        let journal = if needs_journal {
            Some(self.open_journal_with(false)?)
        } else {
            None
        };
        let store = match (given_store, &journal) {
            (Some(s), _) => Some(s),
            (None, Some(j)) => Some(self.lease_store(j)?),
            (None, None) => None,
        };
        let mut leases = Vec::new();
        if let Some(store) = &store {
            if !how.no_journal {
                leases.push(
                    leases::take_run_lease(
                        store,
                        &self.options.leases,
                        run_id,
                        LockWait::default(),
                    )
                    .await?,
                );
            }
            match leases::take_lock_lease(
                store,
                &self.options.leases,
                rb,
                run_id,
                params,
                self.options.clock.as_ref(),
                how.lock,
                self.options.notices.as_ref(),
            )
            .await
            {
                Ok(lock) => leases.extend(lock),
                Err(e) => {
                    leases::release_all(leases).await;
                    return Err(e);
                }
            }
        }
        let runbook_path = std::fs::canonicalize(&*rb.file)
            .ok()
            .map(|p| p.display().to_string());
        let mut journal = if how.no_journal { None } else { journal };
        if let Some(j) = journal.as_mut() {
            j.set_fences(self.fences(&leases));
        }
        Ok(self.session(journal, leases, secrets, runbook_path))
    }

    fn session(
        &self,
        journal: Option<Journal>,
        leases: Vec<HeldLease>,
        secrets: Secrets,
        runbook_path: Option<String>,
    ) -> Session {
        Session {
            journal,
            leases,
            secrets,
            runbook_path,
            hooks: self.options.hooks.clone(),
            checkpoint: self.options.checkpoint.clone(),
            notices: self.options.notices.clone(),
            clock: self.options.clock.clone(),
            finished: false,
        }
    }

    /// The lease store the options give: the shared journal's, else `lease_store`.
    fn given_lease_store(&self) -> Option<Arc<dyn LeaseStore>> {
        match &self.options.shared {
            Some(shared) => Some(shared.leases.clone()),
            None => self.options.lease_store.clone(),
        }
    }

    /// The lease store: the one the options give, or the journal's own table.
    fn lease_store(&self, journal: &Journal) -> Result<Arc<dyn LeaseStore>, RunnerError> {
        if let Some(s) = self.given_lease_store() {
            return Ok(s);
        }
        let store = FileLeaseStore::open(journal.path())
            .map_err(RunnerError::Lock)?
            .with_clock(self.options.leases.clock.clone());
        Ok(Arc::new(store))
    }

    /// The journal of the state dir, for a command that continues runs: a missing journal is an
    /// error, not created.
    fn open_existing_journal(&self) -> Result<Journal, RunnerError> {
        let path = self.options.state_dir.join(JOURNAL_FILE);
        // A shared journal is the one that must exist; this machine's copy may be new.
        if !path.exists() && self.options.shared.is_none() {
            return Err(RunnerError::NoJournal { path });
        }
        self.open_journal()
    }

    /// The state dir's journal (created if needed), brought up to date from the shared journal
    /// and writing through to it, when there is one.
    pub fn open_journal(&self) -> Result<Journal, RunnerError> {
        self.open_journal_with(true)
    }

    fn open_journal_with(&self, sync: bool) -> Result<Journal, RunnerError> {
        let journal = Journal::open_in(&self.options.state_dir)?;
        let Some(shared) = &self.options.shared else {
            return Ok(journal);
        };
        let mut journal = journal.with_shared(shared.log.clone());
        if sync {
            journal.sync(None)?;
        }
        Ok(journal)
    }
}

/// The journal, leases and secrets of one run between [`Runner::start`] / [`Runner::load`] and
/// running it.
pub struct Session {
    journal: Option<Journal>,
    leases: Vec<HeldLease>,
    secrets: Secrets,
    runbook_path: Option<String>,
    hooks: Hooks,
    checkpoint: Option<Checkpoint>,
    notices: Option<Notices>,
    /// The clock a rollback of the loaded run is on ([`RunnerOptions::clock`]).
    clock: SharedClock,
    /// Whether it ended normally; dropped before (its future dropped mid-run, as a process is
    /// killed), the events not yet committed are dropped too.
    finished: bool,
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(j) = self.journal.take()
            && !self.finished
        {
            j.abandon();
        }
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("journal", &self.journal.as_ref().map(Journal::path))
            .field("leases", &self.leases)
            .finish_non_exhaustive()
    }
}

/// The parameters as the journal and reports may show them (secrets `***`).
pub fn redacted_params(rb: &Runbook, params: &Outputs) -> Value {
    redact(params, &rb.secret_params())
}

impl Session {
    /// The run's secrets: known now, and those the run derives as it goes (clones share their
    /// values). A log writer scrubs with them.
    pub fn secrets(&self) -> &Secrets {
        &self.secrets
    }

    /// The leases held.
    pub fn leases(&self) -> &[HeldLease] {
        &self.leases
    }

    /// Gives the leases up without running.
    pub async fn release(mut self) {
        self.finished = true;
        leases::release_all(std::mem::take(&mut self.leases)).await;
    }

    /// Runs (or, with `options.prior`, resumes) the runbook, journaling every event, then rolls
    /// back if the run failed and the runbook says `on_failure: rollback`. Stops gracefully,
    /// like `stop`, when a lease is lost. Releases the leases at the end.
    ///
    /// `options.secrets` is replaced by the session's secrets. Errors: the journal (or the
    /// checkpoint) failed, so the run stopped ([`RunnerErrorKind::Failed`]); a hook crashed it.
    pub async fn run(
        mut self,
        rb: &Runbook,
        params: &Outputs,
        mut options: RunOptions,
        progress: &mut dyn RunSink,
        stop: watch::Receiver<Stop>,
    ) -> Result<RunOutcome, RunnerError> {
        options.secrets = self.secrets.clone();
        // The automatic rollback is on the run's own clock.
        let clock = options.clock.clone();
        let recorder = (self.journal.is_none() && rb.on_failure == OnFailure::Rollback)
            .then(Recorder::default);
        let (stop, watcher) =
            leases::stop_when_a_lease_is_lost(&self.leases, stop, self.notices.clone());
        let mut sink = RunnerSink {
            journal: self.journal.as_mut(),
            recorder: recorder.clone(),
            progress: &mut *progress,
            secrets: &self.secrets,
            hooks: &self.hooks,
            checkpoint: self.checkpoint.as_ref(),
            runbook_path: self.runbook_path.as_deref(),
            crashed: None,
        };
        let run = crate::scheduler::run(rb, params, options, &mut sink, stop.clone()).await;
        let crashed = sink.crashed.take();
        drop(sink);
        if let Some(point) = crashed {
            watcher.abort();
            return Err(self.crash(point));
        }
        let mut report = match run {
            Ok(report) => report,
            Err(RunError::Sink(source)) => {
                watcher.abort();
                self.finished = true;
                leases::release_all(std::mem::take(&mut self.leases)).await;
                return Err(RunnerError::Recording {
                    what: "run",
                    source,
                });
            }
        };
        scrub_report(&self.secrets, &mut report);
        let mut rollback = None;
        if report.status == RunStatus::Failed && rb.on_failure == OnFailure::Rollback {
            let events = match (&self.journal, &recorder) {
                (Some(j), _) => j
                    .events(&report.run_id)
                    .map_err(|e| SinkError(e.to_string())),
                (None, Some(r)) => Ok(r.events()),
                (None, None) => Ok(Vec::new()),
            };
            let undone = match events {
                Ok(events) => match RunState::replay(&events) {
                    Ok(state) => {
                        if let Some(n) = &self.notices {
                            n(Notice::RollingBack);
                        }
                        self.undo(rb, &state, params, clock, progress, recorder, stop)
                            .await
                    }
                    Err(e) => Err(RunnerError::Recording {
                        what: "run",
                        source: SinkError(e.to_string()),
                    }),
                },
                Err(source) => Err(RunnerError::Recording {
                    what: "run",
                    source,
                }),
            };
            match undone {
                Ok(r) => rollback = Some(r),
                Err(RunnerError::Crashed { point }) => {
                    watcher.abort();
                    return Err(self.crash(point));
                }
                Err(e) => {
                    watcher.abort();
                    self.finished = true;
                    leases::release_all(std::mem::take(&mut self.leases)).await;
                    return Err(e);
                }
            }
        }
        watcher.abort();
        let mut lost_leases = Vec::new();
        for lease in &self.leases {
            if lease.is_lost() {
                let key = display_lease_key(lease.key());
                report.errors.push(format!(
                    "the lock `{key}` was lost during the run (another process took it over, or \
                     it could not be renewed before it expired)"
                ));
                lost_leases.push(key);
            }
        }
        let end = self.end_checkpoint();
        self.finished = true;
        leases::release_all(std::mem::take(&mut self.leases)).await;
        end.map_err(|source| RunnerError::Recording {
            what: "run",
            source,
        })?;
        Ok(RunOutcome {
            report,
            rollback,
            lost_leases,
        })
    }

    /// Undoes the succeeded steps of a loaded run (`state`) in reverse dependency order,
    /// journaling every event on the runner's clock ([`RunnerOptions::clock`]). Releases the
    /// leases at the end.
    pub async fn rollback(
        mut self,
        rb: &Runbook,
        state: &RunState,
        params: &Outputs,
        progress: &mut dyn RunSink,
        stop: watch::Receiver<Stop>,
    ) -> Result<RollbackReport, RunnerError> {
        let clock = self.clock.clone();
        let result = self
            .undo(rb, state, params, clock, progress, None, stop)
            .await;
        if let Err(RunnerError::Crashed { point }) = result {
            return Err(self.crash(point));
        }
        let end = self.end_checkpoint();
        self.finished = true;
        leases::release_all(std::mem::take(&mut self.leases)).await;
        let report = result?;
        end.map_err(|source| RunnerError::Recording {
            what: "rollback",
            source,
        })?;
        Ok(report)
    }

    #[allow(clippy::too_many_arguments)]
    async fn undo(
        &mut self,
        rb: &Runbook,
        state: &RunState,
        params: &Outputs,
        clock: SharedClock,
        progress: &mut dyn RunSink,
        recorder: Option<Recorder>,
        stop: watch::Receiver<Stop>,
    ) -> Result<RollbackReport, RunnerError> {
        let mut sink = RunnerSink {
            journal: self.journal.as_mut(),
            recorder,
            progress,
            secrets: &self.secrets,
            hooks: &self.hooks,
            checkpoint: self.checkpoint.as_ref(),
            runbook_path: None,
            crashed: None,
        };
        let result = crate::rollback::rollback(rb, state, params, clock, &mut sink, stop).await;
        if let Some(point) = sink.crashed.take() {
            return Err(RunnerError::Crashed { point });
        }
        result.map_err(|source| RunnerError::Recording {
            what: "rollback",
            source,
        })
    }

    /// The backend saved once more at the end of the command.
    fn end_checkpoint(&self) -> Result<(), SinkError> {
        match &self.checkpoint {
            Some(c) => c().map_err(|e| SinkError(format!("could not save the cloud's state: {e}"))),
            None => Ok(()),
        }
    }

    /// A test hook's crash: the journal dropped uncommitted, the leases left held.
    fn crash(mut self, point: String) -> RunnerError {
        if let Some(j) = self.journal.take() {
            j.abandon();
        }
        std::mem::take(&mut self.leases)
            .into_iter()
            .for_each(HeldLease::abandon);
        RunnerError::Crashed { point }
    }
}

impl Runner {
    /// The fences of a run's journal writes: each lease it holds, at its grant's token, and
    /// the shared journal's own ([`SharedJournal::fences`]).
    fn fences(&self, leases: &[HeldLease]) -> Vec<Fence> {
        let mut fences: Vec<Fence> = leases
            .iter()
            .map(|l| Fence {
                key: l.key().to_owned(),
                token: l.token(),
            })
            .collect();
        if let Some(shared) = &self.options.shared {
            fences.extend(shared.fences.iter().cloned());
        }
        fences
    }
}

/// Scrubs secrets out of everything a report prints.
fn scrub_report(secrets: &Secrets, report: &mut RunReport) {
    if secrets.is_empty() {
        return;
    }
    let scrub_map = |m: &mut Outputs| {
        let mut v = Value::Object(std::mem::take(m));
        secrets.scrub_value(&mut v);
        if let Value::Object(clean) = v {
            *m = clean;
        }
    };
    scrub_map(&mut report.outputs);
    for s in &mut report.steps {
        if let Some(o) = s.outputs.as_mut() {
            scrub_map(o);
        }
        if let Some(e) = s.error.as_mut() {
            e.message = secrets.scrub(&e.message).into_owned();
        }
        if let Some(n) = s.note.as_mut() {
            *n = secrets.scrub(n).into_owned();
        }
    }
    for e in &mut report.errors {
        *e = secrets.scrub(e).into_owned();
    }
}
