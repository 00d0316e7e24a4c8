//! Durable runs, end to end through the `drflow` binary: SIGKILL at several points then resume,
//! one run per lock key, secrets never journaled, corrupted or foreign journals refused.
//!
//! Steps are `core.append_file` (enabled by `DRFLOW_TEST_STEPS=1`): every run of a step appends
//! one line, so counting lines counts how often the engine really ran it. Kill points come from
//! `DRFLOW_TEST_PAUSE` (the process stops dead at an event and creates a marker file) or from a
//! step holding while a file exists; the test waits for the marker or for the event in the
//! journal, never for a fixed time.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

mod common;

use common::{Sandbox, kill, text, wait_for};
use drflow_engine::{Journal, RunEvent, RunState, RunStatus, StepPhase};
use serde_json::Value;

const RUNBOOK: &str = r#"runbook: crashy
params:
  out: { type: string }
  hold: { type: string, default: /nonexistent/hold }
  token: { type: string, default: "", secret: true }
steps:
  - id: a
    uses: core.append_file
    with: { path: "${{ params.out }}", line: a }
  - id: b
    needs: [a]
    uses: core.append_file
    with: { path: "${{ params.out }}", line: b, hold_while: "${{ params.hold }}" }
  - id: side
    uses: core.append_file
    with: { path: "${{ params.out }}", line: side }
  - id: c
    needs: [b, side]
    uses: core.append_file
    with: { path: "${{ params.out }}", line: "c after ${{ steps.b.outputs.line }}" }
outputs:
  a: ${{ steps.a.outputs.line }}
  b: ${{ steps.b.outputs.line }}
  c: ${{ steps.c.outputs.line }}
"#;

impl Sandbox {
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

/// Resumes the latest run and checks it succeeded with every output present.
fn resume_and_check_complete(sb: &Sandbox) -> RunState {
    let out = sb.output(&["resume", "latest", "--output", "json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "resume failed: {}",
        text(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["status"], "succeeded");
    assert_eq!(report["outputs"]["a"], "a");
    assert_eq!(report["outputs"]["b"], "b");
    assert_eq!(report["outputs"]["c"], "c after b");
    let state = RunState::replay(&sb.latest_events()).unwrap();
    assert_eq!(state.status, RunStatus::Succeeded);
    assert_eq!(state.resumed_at.len(), 1);
    assert_eq!(state.outputs["c"], "c after b");
    state
}

#[test]
fn sigkill_before_a_step_starts_then_resume_runs_each_step_once() {
    let sb = Sandbox::new(RUNBOOK);
    let marker = sb.path("paused");
    let child = sb.spawn(
        &sb.run_args(&[]),
        &[
            ("DRFLOW_TEST_PAUSE", "before:step_started:c".into()),
            ("DRFLOW_TEST_PAUSE_FILE", marker.display().to_string()),
        ],
    );
    wait_for("the pause before c starts", || marker.exists());
    kill(child);
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
fn sigkill_while_a_step_runs_then_resume_runs_it_again_and_nothing_else() {
    let sb = Sandbox::new(RUNBOOK);
    let hold = sb.path("hold");
    std::fs::write(&hold, "").unwrap();
    let child = sb.spawn(
        &sb.run_args(&["-p", &format!("hold={}", hold.display())]),
        &[],
    );
    // b has started (journaled) and done its side effect, and is now holding; `side` (parallel
    // to a and b) has finished, so b is the only step in flight when the process dies.
    wait_for("b to run", || {
        sb.count("b") == 1
            && has_event(&sb, "step_started", "b")
            && has_event(&sb, "step_succeeded", "side")
    });
    kill(child);
    std::fs::remove_file(&hold).unwrap();

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
fn sigkill_after_a_step_succeeded_before_its_dependants_start() {
    let sb = Sandbox::new(RUNBOOK);
    let marker = sb.path("paused");
    let child = sb.spawn(
        &sb.run_args(&[]),
        &[
            ("DRFLOW_TEST_PAUSE", "after:step_succeeded:b".into()),
            ("DRFLOW_TEST_PAUSE_FILE", marker.display().to_string()),
        ],
    );
    wait_for("the pause after b succeeded", || marker.exists());
    kill(child);
    assert!(has_event(&sb, "step_succeeded", "b"));
    assert_eq!(sb.count("c after b"), 0);

    let state = resume_and_check_complete(&sb);
    for line in ["a", "b", "side", "c after b"] {
        assert_eq!(sb.count(line), 1, "{line} ran more than once");
    }
    // b's outputs came back from the journal and fed c.
    assert_eq!(state.steps["b"].attempts, 1);
}

#[test]
fn show_prints_every_attempt_and_json_has_the_state() {
    let sb = Sandbox::new(RUNBOOK);
    let out = sb.output(
        &sb.run_args(&[])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
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
    let marker = sb.path("paused");
    let child = sb.spawn(
        &sb.run_args(&[]),
        &[
            ("DRFLOW_TEST_PAUSE", "before:step_started:c".into()),
            ("DRFLOW_TEST_PAUSE_FILE", marker.display().to_string()),
        ],
    );
    wait_for("the pause", || marker.exists());
    kill(child);
    std::fs::write(
        sb.path("crashy.yaml"),
        format!("{RUNBOOK}description: edited\n"),
    )
    .unwrap();
    let out = sb.output(&["resume", "latest"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("changed since run") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(sb.count("c after b"), 0);
    let out = sb.output(&["resume", "latest", "--force"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(sb.count("c after b"), 1);
}

#[test]
fn secrets_are_never_journaled_and_must_be_given_again_on_resume() {
    let sb = Sandbox::new(RUNBOOK);
    let secret = "hunter2-very-secret";
    let marker = sb.path("paused");
    let child = sb.spawn(
        &sb.run_args(&["-p", &format!("token={secret}")]),
        &[
            ("DRFLOW_TEST_PAUSE", "before:step_started:c".into()),
            ("DRFLOW_TEST_PAUSE_FILE", marker.display().to_string()),
        ],
    );
    wait_for("the pause", || marker.exists());
    kill(child);
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
    let out = sb.output(&["resume", "latest", "-p", "out=/tmp/elsewhere"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("only secret parameters"));
    let out = sb.output(&["resume", "latest", "-p", &format!("token={secret}")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(!text(&out.stdout).contains(secret));
    assert!(!text(&out.stderr).contains(secret));
}

const LOCKED: &str = r#"runbook: locked
params:
  out: { type: string }
  hold: { type: string }
  env: { type: string, default: prod }
lock: failover-${{ params.env }}
steps:
  - id: work
    uses: core.append_file
    with: { path: "${{ params.out }}", line: work, hold_while: "${{ params.hold }}" }
"#;

#[test]
fn two_concurrent_runs_of_one_lock_key_exactly_one_proceeds() {
    let sb = Sandbox::new(RUNBOOK);
    std::fs::write(sb.path("locked.yaml"), LOCKED).unwrap();
    let hold = sb.path("hold");
    std::fs::write(&hold, "").unwrap();
    let args: Vec<String> = [
        "run",
        "locked.yaml",
        "-p",
        &format!("out={}", sb.out()),
        "-p",
        &format!("hold={}", hold.display()),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let first = sb.spawn(&args, &[]);
    let second = sb.spawn(&args, &[]);
    // One of them gets the lock and starts its step; the other is refused.
    wait_for("one run to start its step", || sb.count("work") == 1);
    let (winner, loser) = {
        let mut children = [Some(first), Some(second)];
        let loser_idx = loop {
            let mut found = None;
            for (i, c) in children.iter_mut().enumerate() {
                if let Some(ch) = c
                    && ch.try_wait().unwrap().is_some()
                {
                    found = Some(i);
                }
            }
            if let Some(i) = found {
                break i;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let loser = children[loser_idx].take().unwrap();
        let winner = children[1 - loser_idx].take().unwrap();
        (winner, loser)
    };
    let refused = loser.wait_with_output().unwrap();
    assert_eq!(refused.status.code(), Some(2));
    let err = text(&refused.stderr);
    let holder = sb.journal().latest_run_id().unwrap().unwrap();
    assert!(
        err.contains("the lock `failover-prod` is held by run") && err.contains(&holder),
        "{err}"
    );
    // A different key is not blocked.
    let other_hold = sb.path("no-hold");
    let out = sb.output(&[
        "run",
        "locked.yaml",
        "-p",
        &format!("out={}", sb.path("other.txt").display()),
        "-p",
        &format!("hold={}", other_hold.display()),
        "-p",
        "env=dev",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    // --wait-lock waits for the holder, then proceeds.
    let waiter = sb.spawn(
        &[args.clone(), vec!["--wait-lock".to_owned()]].concat(),
        &[],
    );
    std::fs::remove_file(&hold).unwrap();
    let won = winner.wait_with_output().unwrap();
    assert_eq!(won.status.code(), Some(0), "{}", text(&won.stderr));
    let waited = waiter.wait_with_output().unwrap();
    assert_eq!(waited.status.code(), Some(0), "{}", text(&waited.stderr));
    assert_eq!(sb.count("work"), 2);
}

#[test]
fn a_lock_left_by_a_killed_run_is_taken_over() {
    let sb = Sandbox::new(RUNBOOK);
    std::fs::write(sb.path("locked.yaml"), LOCKED).unwrap();
    let hold = sb.path("hold");
    std::fs::write(&hold, "").unwrap();
    let args = [
        "run".to_owned(),
        "locked.yaml".to_owned(),
        "-p".to_owned(),
        format!("out={}", sb.out()),
        "-p".to_owned(),
        format!("hold={}", hold.display()),
    ];
    let child = sb.spawn(&args, &[]);
    wait_for("the run to hold the lock", || sb.count("work") == 1);
    kill(child);
    std::fs::remove_file(&hold).unwrap();
    let out = sb.output(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("took over the lock `failover-prod`"));
    // The killed run shows as crashed and can be resumed.
    let runs = text(&sb.output(&["runs"]).stdout);
    assert!(runs.contains("crashed"), "{runs}");
}

const UNDO: &str = r#"runbook: undoable
params:
  out: { type: string }
  refuse: { type: string, default: /nonexistent/refuse }
on_failure: rollback
steps:
  - id: a
    uses: core.append_file
    with: { path: "${{ params.out }}", line: a, fail_undo_while: "${{ params.refuse }}" }
  - id: b
    needs: [a]
    uses: core.append_file
    with: { path: "${{ params.out }}", line: b }
  - id: c
    needs: [b]
    uses: core.fail
    with: { message: nope }
"#;

#[test]
fn on_failure_rollback_stops_at_a_failing_undo_and_drflow_rollback_finishes_it() {
    let sb = Sandbox::new(RUNBOOK);
    std::fs::write(sb.path("undo.yaml"), UNDO).unwrap();
    let refuse = sb.path("refuse");
    std::fs::write(&refuse, "").unwrap();
    let out = sb.output(&[
        "run",
        "undo.yaml",
        "-p",
        &format!("out={}", sb.out()),
        "-p",
        &format!("refuse={}", refuse.display()),
    ]);
    assert_eq!(out.status.code(), Some(1));
    // The summary tells what the rollback did and ends with the command that finishes it.
    let summary = text(&out.stdout);
    assert!(summary.contains("rollback rollback_failed"), "{summary}");
    assert!(summary.contains("still done, NOT undone: a"), "{summary}");
    let last = summary.lines().last().unwrap_or_default();
    assert!(last.starts_with("  drflow rollback "), "{summary}");
    assert_eq!(sb.count("undo b"), 1);
    assert_eq!(sb.count("undo a"), 0);
    let state = RunState::replay(&sb.latest_events()).unwrap();
    assert_eq!(state.status, RunStatus::RollbackFailed);
    assert_eq!(state.step_status("a"), StepPhase::UndoFailed);

    // Resume is refused for a run being unwound; rollback finishes the job, b is not undone twice.
    assert_eq!(sb.output(&["resume", "latest"]).status.code(), Some(2));
    std::fs::remove_file(&refuse).unwrap();
    let out = sb.output(&["rollback", "latest", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("already undone:  b"));
    assert_eq!(sb.count("undo a"), 1);
    assert_eq!(sb.count("undo b"), 1);
    let state = RunState::replay(&sb.latest_events()).unwrap();
    assert_eq!(state.status, RunStatus::RolledBack);
}

fn assert_refused_untouched(sb: &Sandbox, expect: &str) {
    let before = std::fs::read(sb.journal_path()).unwrap();
    for args in [
        sb.run_args(&[]),
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
    }
    assert_eq!(std::fs::read(sb.journal_path()).unwrap(), before);
    assert_eq!(sb.count("a"), 0, "nothing may run");
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
    let out = sb.output(
        &sb.run_args(&[])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert_eq!(out.status.code(), Some(0));
    // Scribble over everything after the 100-byte header: the schema page is gone.
    let mut bytes = std::fs::read(sb.journal_path()).unwrap();
    assert!(bytes.len() > 4096);
    for b in &mut bytes[100..4096] {
        *b = 0xA5;
    }
    std::fs::write(sb.journal_path(), &bytes).unwrap();
    std::fs::write(sb.path("out.txt"), "").unwrap();
    assert_refused_untouched(&sb, "corrupt");
}

/// `--state-dir` puts the journal elsewhere.
#[test]
fn state_dir_flag_moves_the_journal() {
    let sb = Sandbox::new(RUNBOOK);
    let elsewhere = sb.path("state");
    let mut args = vec!["--state-dir".to_owned(), elsewhere.display().to_string()];
    args.extend(sb.run_args(&[]));
    let out = sb.output(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(elsewhere.join("journal.db").exists());
    assert!(!sb.journal_path().exists());
    assert!(Path::new(&elsewhere).is_dir());
}

#[test]
fn resume_from_another_directory_finds_the_runbook_by_its_absolute_path() {
    let sb = Sandbox::new(RUNBOOK);
    let marker = sb.path("paused");
    let child = sb.spawn(
        &sb.run_args(&[]),
        &[
            ("DRFLOW_TEST_PAUSE", "before:step_started:c".into()),
            ("DRFLOW_TEST_PAUSE_FILE", marker.display().to_string()),
        ],
    );
    wait_for("the pause", || marker.exists());
    kill(child);
    let elsewhere = tempfile::tempdir().unwrap();
    let out = sb
        .cmd()
        .current_dir(elsewhere.path())
        .env("DRFLOW_STATE_DIR", sb.path(".drflow"))
        .args(["resume", "latest"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
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

#[test]
fn sigterm_interrupts_and_resume_finishes_the_run() {
    let sb = Sandbox::new(RUNBOOK);
    let hold = sb.path("hold");
    std::fs::write(&hold, "").unwrap();
    let child = sb.spawn(
        &sb.run_args(&["-p", &format!("hold={}", hold.display()), "--grace", "0s"]),
        &[],
    );
    wait_for("b to hold", || {
        has_event(&sb, "step_started", "b") && has_event(&sb, "step_succeeded", "side")
    });
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", text(&out.stderr));
    let state = RunState::replay(&sb.latest_events()).unwrap();
    assert_eq!(state.status, RunStatus::Interrupted);
    assert_eq!(state.step_status("b"), StepPhase::Interrupted);
    std::fs::remove_file(&hold).unwrap();
    resume_and_check_complete(&sb);
    assert_eq!(sb.count("a"), 1);
    assert_eq!(sb.count("b"), 2, "b was interrupted, so it runs again");
    assert_eq!(sb.count("c after b"), 1);
}
