//! The library runner in the test process: the shipped steps plus the test-only
//! `test.append_file`, hooks that crash a run at a named point, and lease holders that play a
//! process that died.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use drflow_engine::runner::{
    HookAction, HookPoint, Hooks, LoadRequest, Loaded, LoadedRun, LockWait, Notice, Purpose,
    RunOutcome, Runner, RunnerError, RunnerOptions, Session, StartOptions,
};
use drflow_engine::{
    FileLeaseStore, HolderIdentity, JOURNAL_FILE, Journal, LeaseOptions, Outputs, Registry,
    RunOptions, Runbook, Stop, hostname,
};
use tokio::sync::watch;

use super::append_file::{self, Gates};

/// A process on this host that is gone (pids stay below 2^22 on Linux): a lease it holds is
/// taken over by the next run, as the lease of a killed `drflow` is.
pub fn dead_process() -> HolderIdentity {
    HolderIdentity {
        pid: 4_194_999,
        proc_start: Some("1".into()),
        hostname: hostname(),
    }
}

/// Runs `work` on a multi-thread runtime of its own.
pub fn block_on<F: std::future::Future>(work: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(work)
}

/// The runner as one process would hold it: a state dir, who holds its leases, its hooks.
#[derive(Clone)]
pub struct InProc {
    pub state_dir: PathBuf,
    pub gates: Gates,
    pub hooks: Hooks,
    /// Who holds the leases; `None`: this process.
    pub identity: Option<HolderIdentity>,
    pub leases: LeaseOptions,
    /// Every notice, as text.
    pub notices: Arc<Mutex<Vec<String>>>,
    /// The backend the cloud steps share; the runner checkpoints it.
    pub backend: Arc<drflow_steps::LazyBackend>,
    /// A parameters file for new runs, as (name, text).
    pub params_file: Option<(String, String)>,
    /// The grace period of a stopped run (default 10 s).
    pub grace: Option<Duration>,
}

impl InProc {
    /// The runner over `<dir>/.drflow`, as `drflow` run in `dir` would use.
    pub fn new(dir: &Path) -> InProc {
        InProc::at_state_dir(&dir.join(".drflow"))
    }

    /// The runner over the state dir `state_dir`.
    pub fn at_state_dir(state_dir: &Path) -> InProc {
        let config = drflow_steps::CloudConfig {
            target: drflow_steps::Target::Sim,
            state_dir: state_dir.to_owned(),
            ..Default::default()
        };
        InProc {
            state_dir: state_dir.to_owned(),
            gates: Gates::default(),
            hooks: Hooks::none(),
            identity: None,
            leases: LeaseOptions::default(),
            notices: Arc::default(),
            backend: Arc::new(drflow_steps::LazyBackend::new(config)),
            params_file: None,
            grace: None,
        }
    }

    /// Whether a notice containing `text` was given.
    pub fn noticed(&self, text: &str) -> bool {
        self.notices
            .lock()
            .unwrap()
            .iter()
            .any(|n| n.contains(text))
    }

    /// The same, as a process that crashes (hooks `crash_at`) and whose leases are then left by
    /// a process that is gone.
    pub fn crashing(
        dir: &Path,
        at: impl Fn(&HookPoint<'_>) -> bool + Send + Sync + 'static,
    ) -> InProc {
        InProc {
            hooks: Hooks::crash_at(at),
            identity: Some(dead_process()),
            ..InProc::new(dir)
        }
    }

    /// The shipped steps on the sim under the state dir, and `test.append_file`.
    pub fn registry(&self) -> Registry {
        let mut registry = drflow_steps::registry_with_backend(self.backend.clone());
        append_file::register(&mut registry, &self.gates);
        registry
    }

    /// The runner (call within a runtime: its lease store opens the journal).
    pub fn runner(&self) -> Runner {
        let mut options = RunnerOptions::new(&self.state_dir);
        options.hooks = self.hooks.clone();
        options.leases = self.leases.clone();
        let backend = self.backend.clone();
        options.checkpoint = Some(Arc::new(move || {
            backend.checkpoint().map_err(|e| e.to_string())
        }));
        if let Some(me) = &self.identity {
            let journal = Journal::open_in(&self.state_dir).unwrap();
            let store = FileLeaseStore::open(&self.state_dir.join(JOURNAL_FILE))
                .unwrap()
                .with_identity(me.clone())
                .with_clock(self.leases.clock.clone());
            drop(journal);
            options.lease_store = Some(Arc::new(store));
        }
        let notices = self.notices.clone();
        options.notices = Some(Arc::new(move |n: Notice<'_>| {
            let text = match n {
                Notice::WaitingForLock { key, holder } => {
                    format!("waiting for the lock `{key}` held by run {}", holder.run_id)
                }
                Notice::TookOverLock { key, dead } => {
                    format!("took over the lock `{key}` from run {}", dead.run_id)
                }
                Notice::LostLock { key } => format!("LOST the lock `{key}`"),
                Notice::RollingBack => "rolling back".into(),
            };
            notices.lock().unwrap().push(text);
        }));
        Runner::new(options)
    }

    /// Compiles the runbook at `path` (absolute, as `drflow run` journals it).
    pub fn compile(&self, path: &Path) -> Runbook {
        drflow_engine::runner::compile_file(path, &self.registry())
            .unwrap_or_else(|e| panic!("{}", e.message()))
    }

    /// Opens the journal and takes the leases for a new run of `file` with `-p` `params`.
    pub async fn start(
        &self,
        file: &Path,
        params: &[(&str, String)],
        lock: LockWait,
    ) -> Result<(Runbook, Outputs, String, Session), RunnerError> {
        let rb = self.compile(file);
        let flags: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        let file = self
            .params_file
            .as_ref()
            .map(|(n, t)| (n.as_str(), t.as_str()));
        let params = drflow_engine::resolve_params(&rb, file, &flags)
            .unwrap_or_else(|d| panic!("{}", d.render(&[])));
        let run_id = new_run_id();
        let session = self
            .runner()
            .start(
                &rb,
                &params,
                &run_id,
                StartOptions {
                    no_journal: false,
                    lock,
                },
            )
            .await?;
        Ok((rb, params, run_id, session))
    }

    /// A new run of `file` with `params`, to its end (or its crash).
    pub async fn run(
        &self,
        file: &Path,
        params: &[(&str, String)],
    ) -> Result<RunOutcome, RunnerError> {
        self.run_until(file, params, watch::channel(Stop::No).1)
            .await
    }

    /// Like [`InProc::run`], stopping as `stop` says.
    pub async fn run_until(
        &self,
        file: &Path,
        params: &[(&str, String)],
        stop: watch::Receiver<Stop>,
    ) -> Result<RunOutcome, RunnerError> {
        let (rb, params, run_id, session) = self.start(file, params, LockWait::default()).await?;
        let mut options = RunOptions::new(run_id);
        if let Some(g) = self.grace {
            options.grace = g;
        }
        options.redacted_params = drflow_engine::runner::redacted_params(&rb, &params);
        let mut quiet = drflow_engine::Recorder::default();
        session.run(&rb, &params, options, &mut quiet, stop).await
    }

    /// Loads the run `run` for `purpose`.
    pub async fn load(
        &self,
        run: &str,
        purpose: Purpose,
        how: Load<'_>,
    ) -> Result<Loaded, RunnerError> {
        let secrets: Vec<(String, String)> = how
            .secrets
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.runner()
            .load(
                &self.registry(),
                LoadRequest {
                    run,
                    purpose,
                    file: how.file,
                    force: how.force,
                    secret_params: &secrets,
                    params_file: None,
                    lock: LockWait::default(),
                },
            )
            .await
    }

    /// Resumes the latest run; `Ok(None)` when there is nothing to resume.
    pub async fn resume(&self, how: Load<'_>) -> Result<Option<RunOutcome>, RunnerError> {
        self.resume_run("latest", how).await
    }

    /// Resumes the run `run`; `Ok(None)` when there is nothing to resume.
    pub async fn resume_run(
        &self,
        run: &str,
        how: Load<'_>,
    ) -> Result<Option<RunOutcome>, RunnerError> {
        let loaded = match self.load(run, Purpose::Resume, how).await? {
            Loaded::NothingToDo { .. } => return Ok(None),
            Loaded::Ready(l) => *l,
        };
        let prior = loaded.prior();
        let LoadedRun {
            run_id,
            runbook,
            params,
            session,
            ..
        } = loaded;
        let mut options = RunOptions::new(run_id);
        options.prior = Some(prior);
        options.redacted_params = drflow_engine::runner::redacted_params(&runbook, &params);
        let mut quiet = drflow_engine::Recorder::default();
        session
            .run(
                &runbook,
                &params,
                options,
                &mut quiet,
                watch::channel(Stop::No).1,
            )
            .await
            .map(Some)
    }

    /// Rolls back the latest run.
    pub async fn rollback(&self) -> Result<drflow_engine::RollbackReport, RunnerError> {
        let loaded = match self
            .load("latest", Purpose::Rollback, Load::default())
            .await?
        {
            Loaded::NothingToDo { .. } => panic!("nothing to roll back"),
            Loaded::Ready(l) => *l,
        };
        let mut quiet = drflow_engine::Recorder::default();
        loaded
            .session
            .rollback(
                &loaded.runbook,
                &loaded.state,
                &loaded.params,
                &mut quiet,
                watch::channel(Stop::No).1,
            )
            .await
    }
}

/// How to load a run.
#[derive(Default, Clone, Copy)]
pub struct Load<'a> {
    pub file: Option<&'a Path>,
    pub force: bool,
    pub secrets: &'a [(&'a str, &'a str)],
}

/// A run id that sorts by time, as `drflow run` makes them.
pub fn new_run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("test-{nanos:024}")
}

/// Runs `file` in-process as a process that is then killed at the first point `at` accepts:
/// nothing more is journaled, its leases stay held by a process that is gone. Returns nothing;
/// the run is the journal's latest.
pub fn crash_at(
    dir: &Path,
    file: &Path,
    params: &[(&str, String)],
    at: impl Fn(&HookPoint<'_>) -> bool + Send + Sync + 'static,
) {
    let inproc = InProc::crashing(dir, at);
    match block_on(inproc.run(file, params)) {
        Err(RunnerError::Crashed { .. }) => {}
        other => panic!("the run did not reach its crash point: {other:?}"),
    }
}

/// `before:<event>:<step>` or `after:<event>:<step>`, as a hook point test.
pub fn point(spec: &str) -> impl Fn(&HookPoint<'_>) -> bool + Send + Sync + 'static {
    let mut parts = spec.splitn(3, ':');
    let after = parts.next() == Some("after");
    let event = parts.next().unwrap_or_default().to_owned();
    let step = parts.next().unwrap_or_default().to_owned();
    move |p| p.is(after, &event, &step)
}

/// A hook that pauses the run at a point until the test lets it go on (or crash): run the run
/// on a thread of its own, since the hook blocks it.
pub struct Pause {
    reached: mpsc::Receiver<()>,
    release: mpsc::Sender<HookAction>,
}

impl Pause {
    /// Hooks that pause at the first point `at` accepts, and the handle to wait for and end the
    /// pause with.
    pub fn at(at: impl Fn(&HookPoint<'_>) -> bool + Send + Sync + 'static) -> (Hooks, Pause) {
        let (reached_tx, reached) = mpsc::channel();
        let (release, release_rx) = mpsc::channel::<HookAction>();
        let release_rx = Mutex::new(release_rx);
        let done = std::sync::atomic::AtomicBool::new(false);
        let hooks = Hooks::new(move |p| {
            if done.load(std::sync::atomic::Ordering::SeqCst) || !at(&p) {
                return HookAction::Continue;
            }
            done.store(true, std::sync::atomic::Ordering::SeqCst);
            let _ = reached_tx.send(());
            release_rx
                .lock()
                .unwrap()
                .recv()
                .unwrap_or(HookAction::Crash)
        });
        (hooks, Pause { reached, release })
    }

    /// Waits until the run is paused.
    pub fn wait(&self) {
        self.reached
            .recv_timeout(Duration::from_secs(60))
            .expect("the run never reached its pause");
    }

    /// Lets the run go on (`Continue`) or crash there (`Crash`).
    pub fn end(&self, action: HookAction) {
        let _ = self.release.send(action);
    }
}
