//! The library runner: where the backend checkpoint falls relative to the journal, what a
//! crash leaves behind, and that a refused lock journals nothing.

use std::sync::{Arc, Mutex};

use drflow_engine::runner::{
    HookAction, HookPoint, Hooks, LockWait, RunnerError, RunnerErrorKind, RunnerOptions,
    StartOptions,
};
use drflow_engine::{
    FileLeaseStore, HeldLease, JOURNAL_FILE, Journal, LeaseOptions, Outputs, Recorder, Registry,
    RunOptions, RunStatus, Runbook, StepContext, StepFuture, StepSpec, StepType, Stop, compile,
    event_name, lock_holder,
};
use tokio::sync::watch;

/// A step that succeeds at once.
struct Ok(StepSpec);

impl StepType for Ok {
    fn spec(&self) -> &StepSpec {
        &self.0
    }

    fn run<'a>(&'a self, _ctx: &'a StepContext, _input: &'a Outputs) -> StepFuture<'a> {
        Box::pin(async { Result::Ok(Outputs::new()) })
    }
}

fn registry() -> Registry {
    let mut r = Registry::new();
    r.register(Arc::new(Ok(StepSpec::new("t.ok", "Succeeds."))));
    r
}

fn runbook(lock: &str) -> Runbook {
    let src = format!(
        "runbook: r\n{lock}steps:\n  - id: a\n    uses: t.ok\n  - id: b\n    needs: [a]\n    uses: t.ok\n"
    );
    compile("r.yaml", &src, &registry()).unwrap_or_else(|d| panic!("{}", d.render(&[])))
}

/// What happened, in order: `checkpoint`, or `journaled <event>:<step>`.
type Trail = Arc<Mutex<Vec<String>>>;

fn options(dir: &std::path::Path, trail: &Trail, fail_checkpoint: bool) -> RunnerOptions {
    let mut o = RunnerOptions::new(dir);
    let t = trail.clone();
    o.checkpoint = Some(Arc::new(move || {
        t.lock().unwrap().push("checkpoint".into());
        if fail_checkpoint {
            Err("disk full".into())
        } else {
            Result::Ok(())
        }
    }));
    let t = trail.clone();
    o.hooks = Hooks::new(move |p| {
        if let HookPoint::AfterRecord(e) = p {
            t.lock().unwrap().push(format!(
                "journaled {}:{}",
                event_name(e),
                e.step().unwrap_or_default()
            ));
        }
        HookAction::Continue
    });
    o
}

async fn run(
    runner: &drflow_engine::runner::Runner,
    rb: &Runbook,
) -> Result<drflow_engine::runner::RunOutcome, RunnerError> {
    let params = Outputs::new();
    let session = runner
        .start(rb, &params, "run-1", StartOptions::default())
        .await?;
    let mut sink = Recorder::default();
    session
        .run(
            rb,
            &params,
            RunOptions::new("run-1"),
            &mut sink,
            watch::channel(Stop::No).1,
        )
        .await
}

#[tokio::test]
async fn the_backend_is_saved_before_each_step_end_is_journaled_and_at_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let trail = Trail::default();
    let runner = drflow_engine::runner::Runner::new(options(dir.path(), &trail, false));
    let outcome = run(&runner, &runbook("")).await.unwrap();
    assert_eq!(outcome.report.status, RunStatus::Succeeded);
    let trail = trail.lock().unwrap().clone();
    for (i, entry) in trail.iter().enumerate() {
        if entry.starts_with("journaled step_succeeded") || entry.starts_with("journaled run_fin") {
            assert_eq!(trail[i - 1], "checkpoint", "{trail:#?}");
        }
        if entry.starts_with("journaled step_started") {
            assert_ne!(trail[i - 1], "checkpoint", "{trail:#?}");
        }
    }
    assert_eq!(trail.last().map(String::as_str), Some("checkpoint"));
    assert_eq!(trail.iter().filter(|e| *e == "checkpoint").count(), 4);
}

#[tokio::test]
async fn a_checkpoint_that_fails_stops_the_run_before_the_step_is_journaled() {
    let dir = tempfile::tempdir().unwrap();
    let trail = Trail::default();
    let runner = drflow_engine::runner::Runner::new(options(dir.path(), &trail, true));
    let err = run(&runner, &runbook("")).await.unwrap_err();
    assert_eq!(err.kind(), RunnerErrorKind::Failed);
    assert!(err.message().contains("disk full"), "{}", err.message());
    let j = Journal::open(&dir.path().join(JOURNAL_FILE)).unwrap();
    let events = j.events("run-1").unwrap();
    assert!(
        !events.iter().any(|e| event_name(e) == "step_succeeded"),
        "{events:?}"
    );
    // The run's lease was released: the failure is reported, not a crash.
    assert_eq!(lock_holder(&j, "run/run-1").unwrap(), None);
}

#[tokio::test]
async fn a_crash_stops_the_journal_there_and_leaves_the_leases() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = RunnerOptions::new(dir.path());
    o.hooks = Hooks::crash_at(|p| p.is(false, "step_started", "b"));
    let runner = drflow_engine::runner::Runner::new(o);
    let err = run(&runner, &runbook("lock: k\n")).await.unwrap_err();
    assert!(
        matches!(&err, RunnerError::Crashed { point } if point == "before:step_started:b"),
        "{err}"
    );
    let j = Journal::open(&dir.path().join(JOURNAL_FILE)).unwrap();
    let names: Vec<&str> = j.events("run-1").unwrap().iter().map(event_name).collect();
    assert_eq!(names, ["run_started", "step_started", "step_succeeded"]);
    assert!(lock_holder(&j, "run/run-1").unwrap().is_some());
    assert!(lock_holder(&j, "lock/k").unwrap().is_some());
}

#[tokio::test]
async fn a_refused_lock_journals_nothing_and_names_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let path = Journal::open_in(dir.path()).unwrap().path().to_owned();
    let store = Arc::new(FileLeaseStore::open(&path).unwrap());
    let held = HeldLease::acquire(store, "lock/k", "other-run", &LeaseOptions::default())
        .await
        .unwrap();
    let runner = drflow_engine::runner::Runner::new(RunnerOptions::new(dir.path()));
    let rb = runbook("lock: k\n");
    let err = runner
        .start(
            &rb,
            &Outputs::new(),
            "run-1",
            StartOptions {
                no_journal: false,
                lock: LockWait::default(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), RunnerErrorKind::Busy);
    assert!(
        err.message().contains("held by run other-run"),
        "{}",
        err.message()
    );
    let j = Journal::open(&path).unwrap();
    assert!(j.list_runs().unwrap().is_empty());
    // The run's own lease, taken first, was given back.
    assert_eq!(lock_holder(&j, "run/run-1").unwrap(), None);
    held.release().await.unwrap();
}

/// A run on the simulated cloud reads one clock, its lock key too: the key's `run.started_at`
/// is on the runner's clock (virtual time), not the wall clock.
#[tokio::test(start_paused = true)]
async fn the_lock_key_reads_the_runners_clock() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = RunnerOptions::new(dir.path());
    o.clock = Arc::new(drflow_engine::VirtualClock::new(1_767_225_600_000));
    let runner = drflow_engine::runner::Runner::new(o);
    let rb = runbook("lock: \"k-${{ run.started_at }}\"\n");
    let session = runner
        .start(&rb, &Outputs::new(), "run-1", StartOptions::default())
        .await
        .unwrap();
    let keys: Vec<&str> = session.leases().iter().map(|l| l.key()).collect();
    let key = format!("lock/k-{}", drflow_engine::iso8601(1_767_225_600.0));
    assert_eq!(keys, ["run/run-1", key.as_str()]);
    session.release().await;
}

/// Two machines, one shared journal and lease store: the run machine A began and died in is
/// finished by machine B, which copies its events, takes its leases over once they expired and
/// runs only what A did not; while A's leases live, B is refused.
#[tokio::test(start_paused = true)]
async fn a_run_begun_on_a_machine_that_died_is_finished_by_its_peer() {
    use drflow_engine::runner::{LoadRequest, Loaded, Purpose, SharedJournal};
    use drflow_engine::{MemoryLog, SharedLog, VirtualClock};

    let clock = Arc::new(VirtualClock::new(1_000_000));
    let store = Arc::new(MemoryLog::on_clock(clock.clone()));
    let machine = |dir: &std::path::Path, hooks: Hooks| {
        let mut o = RunnerOptions::new(dir);
        o.shared = Some(SharedJournal {
            log: store.clone(),
            leases: store.clone(),
            fences: Vec::new(),
        });
        o.leases = LeaseOptions::on_clock(clock.clone());
        o.hooks = hooks;
        drflow_engine::runner::Runner::new(o)
    };
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // A dies just before it starts step b.
    let runner_a = machine(
        a.path(),
        Hooks::crash_at(|p| p.is(false, "step_started", "b")),
    );
    let files = tempfile::tempdir().unwrap();
    let path = files.path().join("r.yaml");
    let src = "runbook: r\nlock: k\nsteps:\n  - id: a\n    uses: t.ok\n  - id: b\n    needs: [a]\n    uses: t.ok\n";
    std::fs::write(&path, src).unwrap();
    let rb = compile(path.to_str().unwrap(), src, &registry()).unwrap();
    let err = run(&runner_a, &rb).await.unwrap_err();
    assert!(matches!(err, RunnerError::Crashed { .. }), "{err}");
    let shared = store.read(Some("run-1")).unwrap();
    assert!(
        shared.iter().any(|e| e.body.contains("step_succeeded")),
        "a's work is in the shared journal: {shared:?}"
    );

    let request = || LoadRequest {
        run: "run-1",
        purpose: Purpose::Resume,
        file: None,
        force: false,
        secret_params: &[],
        params_file: None,
        lock: LockWait::default(),
    };
    let runner_b = machine(b.path(), Hooks::none());
    // A's leases have not expired: B may not take the run.
    let refused = runner_b.load(&registry(), request()).await.err().unwrap();
    assert_eq!(refused.kind(), RunnerErrorKind::Busy, "{refused}");

    tokio::time::advance(std::time::Duration::from_secs(31)).await;
    let Loaded::Ready(loaded) = runner_b.load(&registry(), request()).await.unwrap() else {
        panic!("nothing to do");
    };
    let loaded = *loaded;
    let mut options = RunOptions::new("run-1");
    options.prior = Some(loaded.prior());
    let mut sink = Recorder::default();
    let outcome = loaded
        .session
        .run(
            &loaded.runbook,
            &loaded.params,
            options,
            &mut sink,
            watch::channel(Stop::No).1,
        )
        .await
        .unwrap();
    assert_eq!(outcome.report.status, RunStatus::Succeeded);
    let started: Vec<_> = sink
        .events()
        .iter()
        .filter(|e| event_name(e) == "step_started")
        .filter_map(|e| e.step().map(str::to_owned))
        .collect();
    assert_eq!(started, ["b"], "b ran once, on B; a was not run again");
    let shared = store.read(Some("run-1")).unwrap();
    assert!(shared.last().unwrap().body.contains("run_finished"));
    // A, had it come back with its old grants, could record nothing more.
    let j = Journal::open_in(a.path()).unwrap();
    assert_eq!(j.run("run-1").unwrap().status, "running", "a never learnt");
}

/// A daemon that lost its own lease (its peer took over while it was paused) records nothing of
/// a new run, so it starts no step: the shared journal checks the daemon's lease too.
#[tokio::test]
async fn a_run_of_a_daemon_that_lost_its_lease_starts_no_step() {
    use drflow_engine::runner::SharedJournal;
    use drflow_engine::{Fence, LeaseStore, MemoryLog};

    let store = Arc::new(MemoryLog::new());
    // This daemon was granted token 1; its peer holds token 2 now.
    let mine = store
        .acquire(
            "daemon/prod",
            "daemon-1",
            std::time::Duration::from_secs(30),
        )
        .await
        .unwrap();
    store.set_token("daemon/prod", mine.token + 1);
    let dir = tempfile::tempdir().unwrap();
    let mut o = RunnerOptions::new(dir.path());
    o.shared = Some(SharedJournal {
        log: store.clone(),
        leases: store.clone(),
        fences: vec![Fence {
            key: "daemon/prod".into(),
            token: mine.token,
        }],
    });
    let runner = drflow_engine::runner::Runner::new(o);
    let err = run(&runner, &runbook("lock: k\n")).await.unwrap_err();
    assert!(
        err.message().contains("no longer this process's"),
        "{}",
        err.message()
    );
    assert!(store.is_empty(), "nothing of the run was shared");
    let j = Journal::open(&dir.path().join(JOURNAL_FILE)).unwrap();
    assert!(j.list_runs().unwrap().is_empty(), "nor recorded here");
}
