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
