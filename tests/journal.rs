//! Durable runs, end to end: a run killed at several points then resumed, one run per lock key,
//! secrets never journaled, corrupted or foreign journals refused.
//!
//! Steps are the test-only `test.append_file`: every run of a step appends one line, so counting
//! lines counts how often the engine really ran it. Runs are killed in-process: the library
//! runner crashes at a named point through its test hooks (nothing more is journaled, its
//! leases are left to a process that is gone), or its future is dropped while a step holds on a
//! gate. What the command line shows is checked through the `drflow` binary. Nothing waits for
//! a fixed time.

use std::path::Path;

mod common;

use common::inproc::{InProc, Load, block_on, crash_at, point};
use common::{Sandbox, text};
use drflow_engine::runner::{LockWait, RunnerError};
use drflow_engine::{Journal, RunEvent, RunState, RunStatus, StepPhase, Stop};
use serde_json::Value;

const RUNBOOK: &str = r#"runbook: crashy
params:
  out: { type: string }
  token: { type: string, default: "", secret: true }
steps:
  - id: a
    uses: test.append_file
    with: { path: "${{ params.out }}", line: a }
  - id: b
    needs: [a]
    uses: test.append_file
    with: { path: "${{ params.out }}", line: b, gate: b }
  - id: side
    uses: test.append_file
    with: { path: "${{ params.out }}", line: side }
  - id: c
    needs: [b, side]
    uses: test.append_file
    with: { path: "${{ params.out }}", line: "c after ${{ steps.b.outputs.line }}" }
outputs:
  a: ${{ steps.a.outputs.line }}
  b: ${{ steps.b.outputs.line }}
  c: ${{ steps.c.outputs.line }}
"#;

/// The same shape with shipped steps only, for what the binary runs.
const PLAIN: &str = r#"runbook: plain
steps:
  - id: a
    uses: core.set
    with: { x: 1 }
"#;

impl Sandbox {
    fn crashy(&self) -> std::path::PathBuf {
        self.path("crashy.yaml")
    }

    fn params(&self, extra: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
        let mut p = vec![("out", self.out())];
        p.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
        p
    }

    /// Runs crashy.yaml in-process and kills it at `at` (`before:step_started:c`, …).
    fn crash(&self, at: &str, extra: &[(&'static str, &str)]) {
        crash_at(
            self.dir.path(),
            &self.crashy(),
            &self.params(extra),
            point(at),
        );
    }

    /// Runs crashy.yaml in-process and kills it (drops it) while b holds after its side effect
    /// and `side` has succeeded: b is the only step in flight.
    fn kill_while_b_runs(&self) {
        let (side_done, side) = std::sync::mpsc::channel();
        let side_done = std::sync::Mutex::new(side_done);
        let dying = InProc {
            hooks: drflow_engine::runner::Hooks::new(move |p| {
                if p.is(true, "step_succeeded", "side") {
                    let _ = side_done.lock().unwrap().send(());
                }
                drflow_engine::runner::HookAction::Continue
            }),
            ..InProc::crashing(self.dir.path(), |_| false)
        };
        dying.gates.close("b");
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let run = {
            let (inproc, file, params) = (dying.clone(), self.crashy(), self.params(&[]));
            runtime.spawn(async move { inproc.run(&file, &params).await })
        };
        dying.gates.wait_arrived("b", 1);
        side.recv().unwrap();
        run.abort();
        assert!(runtime.block_on(run).unwrap_err().is_cancelled());
    }

    fn journal(&self) -> Journal {
        Journal::open(&self.journal_path()).unwrap()
    }

    fn latest_events(&self) -> Vec<RunEvent> {
        let j = self.journal();
        let id = j.latest_run_id().unwrap().unwrap();
        j.events(&id).unwrap()
    }
}

/// Polls `cond` until it holds; panics after 60 s (a hung test, not a timing assumption).
fn has_event(sb: &Sandbox, name: &str, step: &str) -> bool {
    if !sb.journal_path().exists() {
        return false;
    }
    let Ok(j) = Journal::open(&sb.journal_path()) else {
        return false;
    };
    let Ok(Some(id)) = j.latest_run_id() else {
        return false;
    };
    j.events(&id)
        .unwrap_or_default()
        .iter()
        .any(|e| drflow_engine::event_name(e) == name && e.step() == Some(step))
}

/// Resumes the latest run in-process and checks it succeeded with every output present.
fn resume_and_check_complete(sb: &Sandbox) -> RunState {
    resume_with(sb, &[])
}

fn resume_with(sb: &Sandbox, secrets: &[(&str, &str)]) -> RunState {
    let inproc = InProc::new(sb.dir.path());
    let load = Load {
        secrets,
        ..Load::default()
    };
    let outcome = block_on(inproc.resume(load))
        .unwrap_or_else(|e| panic!("resume failed: {}", e.message()))
        .expect("something to resume");
    let report = &outcome.report;
    assert_eq!(report.status, RunStatus::Succeeded);
    assert_eq!(report.outputs["a"], "a");
    assert_eq!(report.outputs["b"], "b");
    assert_eq!(report.outputs["c"], "c after b");
    let state = RunState::replay(&sb.latest_events()).unwrap();
    assert_eq!(state.status, RunStatus::Succeeded);
    assert_eq!(state.resumed_at.len(), 1);
    assert_eq!(state.outputs["c"], "c after b");
    state
}

#[test]
fn killed_before_a_step_starts_then_resume_runs_each_step_once() {
    let sb = Sandbox::new(RUNBOOK);
    sb.crash("before:step_started:c", &[]);
    assert_eq!(sb.count("c after b"), 0, "c must not have run");
    assert!(!has_event(&sb, "step_started", "c"));

    let state = resume_and_check_complete(&sb);
    for line in ["a", "b", "side", "c after b"] {
        assert_eq!(sb.count(line), 1, "{line} ran more than once");
    }
    assert_eq!(state.steps["a"].attempts, 1);
    assert_eq!(state.steps["c"].attempts, 1);
}

#[test]
fn killed_while_a_step_runs_then_resume_runs_it_again_and_nothing_else() {
    let sb = Sandbox::new(RUNBOOK);
    // b has started (journaled) and done its side effect, and is now holding; `side` (parallel
    // to a and b) has finished, so b is the only step in flight when the run dies.
    sb.kill_while_b_runs();

    let state = resume_and_check_complete(&sb);
    // The contract: a step started and never finished runs again (hence idempotency).
    assert_eq!(sb.count("b"), 2);
    for line in ["a", "side", "c after b"] {
        assert_eq!(sb.count(line), 1, "{line}");
    }
    let b = &state.steps["b"];
    assert_eq!(b.history.len(), 2);
    assert_eq!(b.history[0].attempt, 1);
    assert_eq!(b.history[1].attempt, 2);
    assert!(matches!(
        b.history[0].outcome,
        drflow_engine::AttemptOutcome::Lost
    ));
}

#[test]
fn killed_after_a_step_succeeded_before_its_dependants_start() {
    let sb = Sandbox::new(RUNBOOK);
    sb.crash("after:step_succeeded:b", &[]);
    assert!(has_event(&sb, "step_succeeded", "b"));
    assert_eq!(sb.count("c after b"), 0);

    let state = resume_and_check_complete(&sb);
    for line in ["a", "b", "side", "c after b"] {
        assert_eq!(sb.count(line), 1, "{line} ran more than once");
    }
    // b's outputs came back from the journal and fed c.
    assert_eq!(state.steps["b"].attempts, 1);
}

/// Killed as b's success was about to be journaled: b did its work, the journal does not say
/// so, and the resume runs it again (the contract that makes steps idempotent).
#[test]
fn killed_before_a_steps_success_is_journaled_runs_it_again() {
    let sb = Sandbox::new(RUNBOOK);
    sb.crash("before:step_succeeded:b", &[]);
    assert!(!has_event(&sb, "step_succeeded", "b"));
    assert_eq!(sb.count("b"), 1);
    resume_and_check_complete(&sb);
    assert_eq!(sb.count("b"), 2);
    assert_eq!(sb.count("c after b"), 1);
}

#[test]
fn show_prints_every_attempt_and_json_has_the_state() {
    let sb = Sandbox::new(RUNBOOK);
    let inproc = InProc::new(sb.dir.path());
    let outcome = block_on(inproc.run(&sb.crashy(), &sb.params(&[]))).unwrap();
    assert_eq!(outcome.report.status, RunStatus::Succeeded);
    let show = sb.output(&["show", "latest"]);
    let s = text(&show.stdout);
    assert!(s.contains("status       succeeded after"), "{s}");
    // The timeline has c's first attempt succeeding: time, step, event, attempt.
    assert!(
        s.lines().any(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            w.get(1..4) == Some(&["c", "succeeded", "1"][..])
        }),
        "{s}"
    );
    let runs = text(&sb.output(&["runs"]).stdout);
    assert!(
        runs.contains("crashy") && runs.contains("succeeded"),
        "{runs}"
    );
    let json: Value =
        serde_json::from_slice(&sb.output(&["show", "latest", "--output", "json"]).stdout).unwrap();
    assert_eq!(json["run"]["steps"]["c"]["status"], "succeeded");
    assert_eq!(json["events"].as_array().unwrap().len(), 10);
}

#[test]
fn resume_refuses_a_changed_runbook_unless_forced() {
    let sb = Sandbox::new(RUNBOOK);
    sb.crash("before:step_started:c", &[]);
    sb.write("crashy.yaml", &format!("{RUNBOOK}description: edited\n"));
    let inproc = InProc::new(sb.dir.path());
    let err = block_on(inproc.resume(Load::default())).unwrap_err();
    let message = err.message();
    assert!(
        message.contains("changed since run") && message.contains("--force"),
        "{message}"
    );
    assert_eq!(sb.count("c after b"), 0);
    let force = Load {
        force: true,
        ..Load::default()
    };
    block_on(inproc.resume(force)).unwrap().unwrap();
    assert_eq!(sb.count("c after b"), 1);
}

#[test]
fn secrets_are_never_journaled_and_must_be_given_again_on_resume() {
    let sb = Sandbox::new(RUNBOOK);
    let secret = "hunter2-very-secret";
    sb.crash("before:step_started:c", &[("token", secret)]);
    let state = RunState::replay(&sb.latest_events()).unwrap();
    assert_eq!(state.params["token"], "***");
    // Neither the database nor its WAL holds the secret.
    for f in std::fs::read_dir(sb.path(".drflow")).unwrap() {
        let bytes = std::fs::read(f.unwrap().path()).unwrap();
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "secret found in the state dir"
        );
    }
    // A non-secret parameter cannot be changed on resume.
    let inproc = InProc::new(sb.dir.path());
    let load = Load {
        secrets: &[("out", "/tmp/elsewhere")],
        ..Load::default()
    };
    let err = block_on(inproc.resume(load)).unwrap_err();
    assert!(
        err.message().contains("only secret parameters"),
        "{}",
        err.message()
    );
    resume_with(&sb, &[("token", secret)]);
}

const LOCKED: &str = r#"runbook: locked
params:
  out: { type: string }
  gate: { type: string, default: work }
  env: { type: string, default: prod }
lock: failover-${{ params.env }}
steps:
  - id: work
    uses: test.append_file
    with: { path: "${{ params.out }}", line: work, gate: "${{ params.gate }}" }
"#;

/// Two runs of one lock key started at once: exactly one gets it, the other is refused and told
/// who holds it; another key is not blocked; `--wait-lock` waits for the holder. On paused tokio
/// time, with the leases on a virtual clock: the waiting run's polls cost no wall time.
#[tokio::test(start_paused = true)]
async fn two_concurrent_runs_of_one_lock_key_exactly_one_proceeds() {
    let sb = Sandbox::new(RUNBOOK);
    sb.write("locked.yaml", LOCKED);
    let inproc = InProc {
        leases: drflow_engine::LeaseOptions::on_clock(std::sync::Arc::new(
            drflow_engine::VirtualClock::new(1_700_000_000_000),
        )),
        ..InProc::new(sb.dir.path())
    };
    inproc.gates.close("work");
    let file = sb.path("locked.yaml");
    let params = sb.params(&[]);
    let (first, second) = tokio::join!(
        inproc.start(&file, &params, LockWait::default()),
        inproc.start(&file, &params, LockWait::default())
    );
    let (winner, refused) = match (first, second) {
        (Ok(w), Err(e)) | (Err(e), Ok(w)) => (w, e),
        (a, b) => panic!(
            "expected exactly one winner: {:?} / {:?}",
            a.is_ok(),
            b.is_ok()
        ),
    };
    let (rb, run_params, run_id, session) = winner;
    let message = refused.message();
    assert!(
        message.contains("the lock `failover-prod` is held by run") && message.contains(&run_id),
        "{message}"
    );
    assert!(matches!(refused, RunnerError::LockHeld { .. }));
    let held = tokio::spawn(async move {
        let mut quiet = drflow_engine::Recorder::default();
        let options = drflow_engine::RunOptions::new(run_id);
        session
            .run(
                &rb,
                &run_params,
                options,
                &mut quiet,
                tokio::sync::watch::channel(Stop::No).1,
            )
            .await
    });
    inproc.gates.arrived("work", 1).await;
    // A different key is not blocked.
    let other = inproc
        .run(&file, &sb.params(&[("env", "dev"), ("gate", "open")]))
        .await
        .unwrap();
    assert_eq!(other.report.status, RunStatus::Succeeded);

    // --wait-lock waits for the holder, then proceeds.
    let waiter = {
        let (inproc, file, params) = (inproc.clone(), file.clone(), sb.params(&[("gate", "open")]));
        let wait = LockWait {
            wait: true,
            timeout: None,
        };
        tokio::spawn(async move { inproc.start(&file, &params, wait).await.map(|s| s.3) })
    };
    while !inproc.noticed("waiting for the lock `failover-prod`") {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(!waiter.is_finished());
    inproc.gates.open("work");
    assert_eq!(
        held.await.unwrap().unwrap().report.status,
        RunStatus::Succeeded
    );
    let session = waiter.await.unwrap().unwrap();
    session.release().await;
    assert_eq!(sb.count("work"), 2);
}

/// A run killed while it holds its lock leaves the lease behind; the next run of the key takes
/// it over (the process is gone) and says so, and the killed run shows as crashed.
#[test]
fn a_lock_left_by_a_killed_run_is_taken_over() {
    let sb = Sandbox::new(RUNBOOK);
    sb.write("locked.yaml", LOCKED);
    let dying = InProc::crashing(sb.dir.path(), |_| false);
    dying.gates.close("work");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let run = {
        let (inproc, file, params) = (dying.clone(), sb.path("locked.yaml"), sb.params(&[]));
        runtime.spawn(async move { inproc.run(&file, &params).await })
    };
    dying.gates.wait_arrived("work", 1);
    run.abort();
    assert!(runtime.block_on(run).unwrap_err().is_cancelled());
    let killed = sb.journal().latest_run_id().unwrap().unwrap();
    // The binary takes the lock over, and says from whom.
    sb.write(
        "plain_locked.yaml",
        "runbook: plain_locked\nlock: failover-prod\nsteps:\n  - id: s\n    uses: core.log\n    with: { message: hi }\n",
    );
    let out = sb.output(&["run", "plain_locked.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("took over the lock `failover-prod`"));
    // The killed run shows as crashed and can be resumed.
    let runs = text(&sb.output(&["runs"]).stdout);
    assert!(runs.contains("crashed"), "{runs}");
    let inproc = InProc::new(sb.dir.path());
    let outcome = block_on(inproc.resume_run(&killed, Load::default()))
        .unwrap()
        .unwrap();
    assert_eq!(outcome.report.status, RunStatus::Succeeded);
    assert_eq!(sb.count("work"), 2, "the killed step runs again");
}

const UNDO: &str = r#"runbook: undoable
params:
  out: { type: string }
  refuse: { type: string, default: /nonexistent/refuse }
on_failure: rollback
steps:
  - id: a
    uses: test.append_file
    with: { path: "${{ params.out }}", line: a, fail_undo_while: "${{ params.refuse }}" }
  - id: b
    needs: [a]
    uses: test.append_file
    with: { path: "${{ params.out }}", line: b }
  - id: c
    needs: [b]
    uses: core.fail
    with: { message: nope }
"#;

#[test]
fn on_failure_rollback_stops_at_a_failing_undo_and_drflow_rollback_finishes_it() {
    let sb = Sandbox::new(RUNBOOK);
    sb.write("undo.yaml", UNDO);
    let refuse = sb.path("refuse");
    std::fs::write(&refuse, "").unwrap();
    let inproc = InProc::new(sb.dir.path());
    let refuse_param = refuse.display().to_string();
    let outcome = block_on(inproc.run(
        &sb.path("undo.yaml"),
        &sb.params(&[("refuse", &refuse_param)]),
    ))
    .unwrap();
    assert_eq!(outcome.report.status, RunStatus::Failed);
    assert!(inproc.noticed("rolling back"));
    // What the rollback did, as the summary prints it.
    let rollback = outcome.rollback.expect("the run was rolled back");
    assert_eq!(rollback.status, RunStatus::RollbackFailed);
    let summary = rollback.to_string();
    assert!(summary.contains("still done, NOT undone: a"), "{summary}");
    assert_eq!(sb.count("undo b"), 1);
    assert_eq!(sb.count("undo a"), 0);
    let state = RunState::replay(&sb.latest_events()).unwrap();
    assert_eq!(state.status, RunStatus::RollbackFailed);
    assert_eq!(state.step_status("a"), StepPhase::UndoFailed);

    // Resume is refused for a run being unwound; rollback finishes the job, b is not undone twice.
    let out = sb.output(&["resume", "latest"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("is being rolled back"));
    std::fs::remove_file(&refuse).unwrap();
    let report = block_on(inproc.rollback()).unwrap();
    assert_eq!(report.status, RunStatus::RolledBack);
    assert!(
        report.to_string().contains("already undone:  b"),
        "{report}"
    );
    assert_eq!(sb.count("undo a"), 1);
    assert_eq!(sb.count("undo b"), 1);
    let state = RunState::replay(&sb.latest_events()).unwrap();
    assert_eq!(state.status, RunStatus::RolledBack);
}

fn assert_refused_untouched(sb: &Sandbox, expect: &str) {
    sb.write("plain.yaml", PLAIN);
    let before = std::fs::read(sb.journal_path()).unwrap();
    for args in [
        vec!["run".to_owned(), "plain.yaml".to_owned()],
        vec!["runs".to_owned()],
        vec!["show".to_owned(), "latest".to_owned()],
    ] {
        let out = sb.output(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        let err = text(&out.stderr);
        assert!(err.contains(expect), "{args:?}: {err}");
        assert!(!err.contains("drflow: run "), "nothing may run: {err}");
    }
    assert_eq!(std::fs::read(sb.journal_path()).unwrap(), before);
}

#[test]
fn a_file_that_is_not_a_journal_is_refused_and_left_unchanged() {
    let sb = Sandbox::new(RUNBOOK);
    std::fs::create_dir_all(sb.path(".drflow")).unwrap();
    std::fs::write(sb.journal_path(), "not a database\n".repeat(50)).unwrap();
    assert_refused_untouched(&sb, "is not a drflow journal");
}

#[test]
fn another_applications_sqlite_file_is_refused_and_left_unchanged() {
    let sb = Sandbox::new(RUNBOOK);
    std::fs::create_dir_all(sb.path(".drflow")).unwrap();
    {
        let c = rusqlite::Connection::open(sb.journal_path()).unwrap();
        c.execute_batch("CREATE TABLE photos (id INTEGER); INSERT INTO photos VALUES (1);")
            .unwrap();
    }
    assert_refused_untouched(&sb, "SQLite database of another application");
}

#[test]
fn a_corrupted_journal_is_refused_and_left_unchanged() {
    let sb = Sandbox::new(RUNBOOK);
    sb.write("plain.yaml", PLAIN);
    let out = sb.output(&["run", "plain.yaml"]);
    assert_eq!(out.status.code(), Some(0));
    // Scribble over everything after the 100-byte header: the schema page is gone.
    let mut bytes = std::fs::read(sb.journal_path()).unwrap();
    assert!(bytes.len() > 4096);
    for b in &mut bytes[100..4096] {
        *b = 0xA5;
    }
    std::fs::write(sb.journal_path(), &bytes).unwrap();
    assert_refused_untouched(&sb, "corrupt");
}

/// `--state-dir` puts the journal elsewhere.
#[test]
fn state_dir_flag_moves_the_journal() {
    let sb = Sandbox::new(RUNBOOK);
    sb.write("plain.yaml", PLAIN);
    let elsewhere = sb.path("state");
    let mut args = vec!["--state-dir".to_owned(), elsewhere.display().to_string()];
    args.extend(["run".to_owned(), "plain.yaml".to_owned()]);
    let out = sb.output(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(elsewhere.join("journal.db").exists());
    assert!(!sb.journal_path().exists());
    assert!(Path::new(&elsewhere).is_dir());
}

/// `run_started` journals the runbook's absolute path, so a resume from another directory
/// finds it; the binary shows that path.
#[test]
fn resume_from_another_directory_finds_the_runbook_by_its_absolute_path() {
    let sb = Sandbox::new(RUNBOOK);
    sb.write("plain.yaml", PLAIN);
    let out = sb.output(&["run", "plain.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let state = RunState::replay(&sb.latest_events()).unwrap();
    let journaled = Path::new(&state.path);
    assert!(journaled.is_absolute(), "{}", state.path);
    assert_eq!(
        journaled,
        std::fs::canonicalize(sb.path("plain.yaml")).unwrap()
    );
    // A run killed half-way resumes with no file given, from wherever this process runs.
    sb.crash("before:step_started:c", &[]);
    resume_and_check_complete(&sb);
    assert_eq!(sb.count("c after b"), 1);
}

#[test]
fn a_step_that_logs_a_secret_prints_stars() {
    let sb = Sandbox::new(RUNBOOK);
    std::fs::write(
        sb.path("logs.yaml"),
        r#"runbook: logs
params:
  token: { type: string, secret: true }
steps:
  - id: say
    uses: core.log
    with: { message: "calling the API with ${{ params.token }}" }
  - id: fail
    needs: [say]
    uses: core.fail
    with: { message: "token ${{ params.token }} was refused" }
"#,
    )
    .unwrap();
    let secret = "tok-0123456789";
    let mut c = sb.cmd();
    c.env("DRFLOW_LOG", "info")
        .args(["run", "logs.yaml", "-p", &format!("token={secret}")]);
    let out = c.output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    // A message that reads a secret is a secret: written as `***` whole, however long or short
    // the secret is (docs/journal.md).
    assert!(stderr.contains("INFO *** step=say"), "{stderr}");
    assert!(stdout.contains("*** (failed)"), "{stdout}");
    assert!(!stdout.contains(secret) && !stderr.contains(secret));
}

/// A stop request (SIGTERM in the binary) with no grace period interrupts the holding step;
/// the resume runs it again and finishes the run.
#[test]
fn a_stop_interrupts_and_resume_finishes_the_run() {
    let sb = Sandbox::new(RUNBOOK);
    let inproc = InProc {
        grace: Some(std::time::Duration::ZERO),
        ..InProc::new(sb.dir.path())
    };
    inproc.gates.close("b");
    let (stop, stopped) = tokio::sync::watch::channel(Stop::No);
    let run = {
        let (inproc, file, params) = (inproc.clone(), sb.crashy(), sb.params(&[]));
        std::thread::spawn(move || block_on(inproc.run_until(&file, &params, stopped)))
    };
    inproc.gates.wait_arrived("b", 1);
    stop.send(Stop::Graceful).unwrap();
    let outcome = run.join().unwrap().unwrap();
    assert_eq!(outcome.report.status, RunStatus::Interrupted);
    let state = RunState::replay(&sb.latest_events()).unwrap();
    assert_eq!(state.status, RunStatus::Interrupted);
    assert_eq!(state.step_status("b"), StepPhase::Interrupted);
    resume_and_check_complete(&sb);
    assert_eq!(sb.count("a"), 1);
    assert_eq!(sb.count("b"), 2, "b was interrupted, so it runs again");
    assert_eq!(sb.count("c after b"), 1);
}
