//! The life of a durable run (docs/journal.md): what a run killed at a given point leaves, how
//! resume and `--force` decide what runs again, how a run holds and loses its lock, and the
//! messages and refusals of `run`, `resume` and `rollback` around them.
//!
//! Kills are in-process: the library runner stops at a named point through its test hooks, as
//! a SIGKILL would, leaving its leases to a process that is gone; its steps are the test-only
//! `test.append_file`, which counts how often a step really ran and holds on a gate. What the
//! command line prints and exits with is checked through the `drflow` binary, with shipped
//! steps only. Nothing waits on wall time.

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

mod common;

use common::inproc::{InProc, Load, Pause, block_on, crash_at, point};
use common::{Sandbox, text};
use drflow_engine::runner::{HookAction, HookPoint, Loaded, Purpose, RunnerError};
use drflow_engine::{RunEvent, RunStatus};

const RUNBOOK: &str = r#"runbook: crashy
params:
  out: { type: string }
steps:
  - id: a
    uses: test.append_file
    with: { path: "${{ params.out }}", line: a }
  - id: b
    needs: [a]
    uses: test.append_file
    with: { path: "${{ params.out }}", line: b, gate: b }
  - id: c
    needs: [b]
    uses: test.append_file
    with: { path: "${{ params.out }}", line: c }
outputs:
  c: ${{ steps.c.outputs.line }}
"#;

/// The same shape with shipped steps only, for what the binary runs.
const PLAIN: &str = r#"runbook: plain
steps:
  - id: a
    uses: core.set
    with: { x: 1 }
  - id: b
    needs: [a]
    uses: core.set
    with: { y: 2 }
"#;

impl Sandbox {
    fn crashy(&self) -> std::path::PathBuf {
        self.path("crashy.yaml")
    }

    fn out_param(&self) -> Vec<(&'static str, String)> {
        vec![("out", self.out())]
    }

    /// Runs crashy.yaml in-process and kills it at `at` (`before:step_started:c`, …).
    fn crash(&self, at: &str) {
        crash_at(
            self.dir.path(),
            &self.crashy(),
            &self.out_param(),
            point(at),
        );
    }

    /// The latest run's events, read by a separate process (`drflow show --output json`), so
    /// this test process never holds the journal open.
    fn events(&self) -> Vec<RunEvent> {
        let out = self.output(&["show", "latest", "--output", "json"]);
        if !out.status.success() {
            return Vec::new();
        }
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        serde_json::from_value(doc["events"].clone()).unwrap()
    }

    fn has_event(&self, name: &str, step: &str) -> bool {
        self.events()
            .iter()
            .any(|e| drflow_engine::event_name(e) == name && e.step() == Some(step))
    }

    /// Every file in the state dir, concatenated.
    fn state_bytes(&self) -> Vec<u8> {
        let mut all = Vec::new();
        for f in std::fs::read_dir(self.path(".drflow")).unwrap() {
            all.extend(std::fs::read(f.unwrap().path()).unwrap_or_default());
        }
        all
    }
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// Whether process `pid` holds a POSIX lock on `file` (Linux `/proc/locks`); `None` without it.
fn holds_lock(pid: u32, file: &std::path::Path) -> Option<bool> {
    use std::os::unix::fs::MetadataExt;
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    let ino = std::fs::metadata(file).unwrap().ino();
    Some(locks.lines().any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.len() > 5 && f[4] == pid.to_string() && f[5].ends_with(&format!(":{ino}"))
    }))
}

/// Another process that opens and closes the journal while a run is in flight (`drflow runs`,
/// a `sqlite3` shell) must not make the run's later commits vanish. drflow used to open and close
/// a second descriptor of journal.db after its SQLite connection was open, which drops every
/// POSIX lock the process holds on the file; the reader's close then believed it was the last
/// user, checkpointed and deleted the WAL under the running process, and the lease heartbeats
/// and events that followed went to a deleted file (a second run took over a live lock).
#[test]
fn a_reader_closing_the_journal_does_not_lose_the_runs_later_commits() {
    let sb = Sandbox::new(RUNBOOK);
    let (hooks, pause) = Pause::at(point("after:step_succeeded:b"));
    let inproc = InProc {
        hooks,
        ..InProc::new(sb.dir.path())
    };
    inproc.gates.close("b");
    let run = {
        let (inproc, file, params) = (inproc.clone(), sb.crashy(), sb.out_param());
        std::thread::spawn(move || block_on(inproc.run(&file, &params)))
    };
    inproc.gates.wait_arrived("b", 1);
    assert!(sb.has_event("step_started", "b"));
    // This process runs the run, and keeps SQLite's shared lock on the journal while it is open.
    if let Some(held) = holds_lock(std::process::id(), &sb.journal_path()) {
        assert!(
            held,
            "the run dropped its lock on journal.db while it is live"
        );
    }
    // A foreign reader (the sqlite3 module of Python, when there is one) opens and closes it.
    let python = Command::new("python3")
        .arg("-c")
        .arg(format!(
            "import sqlite3; c = sqlite3.connect({:?}); c.execute('select count(*) from runs').fetchall(); c.close()",
            sb.journal_path().display().to_string()
        ))
        .status();
    if let Ok(status) = python {
        assert!(status.success());
        assert!(
            sb.path(".drflow/journal.db-wal").exists(),
            "a reader deleted the WAL of a live run"
        );
    }
    inproc.gates.open("b");
    pause.wait();
    assert!(
        sb.has_event("step_succeeded", "b"),
        "b's success was committed but a reader cannot see it"
    );
    pause.end(HookAction::Crash);
    assert!(matches!(
        run.join().unwrap(),
        Err(RunnerError::Crashed { .. })
    ));
    assert!(sb.has_event("step_succeeded", "b"), "b's success was lost");
}

const LOCKED: &str = r#"runbook: locked
params:
  out: { type: string }
lock: failover-prod
steps:
  - id: work
    uses: test.append_file
    with: { path: "${{ params.out }}", line: work, gate: work }
  - id: after
    needs: [work]
    uses: test.append_file
    with: { path: "${{ params.out }}", line: after }
"#;

/// The lock of [`LOCKED`] with shipped steps, for the binary.
const LOCKED_PLAIN: &str = r#"runbook: locked_plain
lock: failover-prod
steps:
  - id: work
    uses: core.log
    with: { message: working }
"#;

/// A run whose lock is taken from under it (another host took over an expired lease) says so
/// loudly and starts nothing more. On paused tokio time with the leases on a virtual clock: the
/// renewal that finds the lease gone comes after `renew_every` of that clock, not of wall time.
#[tokio::test(start_paused = true)]
async fn a_run_that_loses_its_lock_stops_and_says_so() {
    let sb = Sandbox::new(RUNBOOK);
    sb.write("locked.yaml", LOCKED);
    let inproc = InProc {
        leases: drflow_engine::LeaseOptions::on_clock(Arc::new(drflow_engine::VirtualClock::new(
            1_700_000_000_000,
        ))),
        ..InProc::new(sb.dir.path())
    };
    inproc.gates.close("work");
    let run = {
        let (inproc, file, params) = (inproc.clone(), sb.path("locked.yaml"), sb.out_param());
        tokio::spawn(async move { inproc.run(&file, &params).await })
    };
    inproc.gates.arrived("work", 1).await;
    {
        let c = rusqlite::Connection::open(sb.journal_path()).unwrap();
        let n = c
            .execute(
                "UPDATE leases SET run_id = 'other-run', hostname = 'otherhost' \
                 WHERE key = 'lock/failover-prod'",
                [],
            )
            .unwrap();
        assert_eq!(n, 1);
    }
    // The next renewal is due 10 s (of the lease clock) after the last.
    tokio::time::sleep(Duration::from_secs(11)).await;
    assert!(inproc.noticed("LOST the lock `failover-prod`"));
    inproc.gates.open("work");
    let outcome = run.await.unwrap().unwrap();
    assert_eq!(outcome.report.status, RunStatus::Interrupted);
    assert_eq!(outcome.lost_leases, ["failover-prod"]);
    assert!(
        outcome
            .report
            .errors
            .iter()
            .any(|e| e.contains("the lock `failover-prod` was lost")),
        "{:?}",
        outcome.report.errors
    );
    assert_eq!(
        sb.count("after"),
        0,
        "a step started after the lock was lost"
    );
}

/// `run_started` is on disk before the first step can start: a run killed right then can be
/// listed and resumed.
#[test]
fn a_run_killed_before_its_first_step_is_recorded_and_resumable() {
    let sb = Sandbox::new(RUNBOOK);
    sb.crash("before:step_started:a");
    let runs = text(&sb.output(&["runs"]).stdout);
    assert!(
        runs.contains("crashy") && runs.contains("crashed"),
        "{runs}"
    );
    let inproc = InProc::new(sb.dir.path());
    let outcome = block_on(inproc.resume(Load::default())).unwrap().unwrap();
    assert_eq!(outcome.report.status, RunStatus::Succeeded);
    assert_eq!(sb.count("c"), 1);
}

const SECRETS: &str = r#"runbook: sec4
params:
  pin: { type: int, secret: true, default: 987654 }
  m: { type: map, secret: true, default: { password: MapSecretPw1 } }
  l: { type: list, secret: true, default: [ListSecretOne, ListSecretTwo] }
steps:
  - id: set
    uses: core.set
    with: { n: "${{ params.pin }}", m: "${{ params.m }}", l: "${{ params.l }}" }
outputs:
  n: ${{ steps.set.outputs.n }}
  m: ${{ steps.set.outputs.m }}
  l: ${{ steps.set.outputs.l }}
"#;

/// Secrets that are numbers, maps or lists are never printed nor journaled in clear.
#[test]
fn secret_numbers_maps_and_lists_never_leak() {
    let sb = Sandbox::new(RUNBOOK);
    sb.write("sec4.yaml", SECRETS);
    let clear = ["987654", "MapSecretPw1", "ListSecretOne", "ListSecretTwo"];
    let mut printed = Vec::new();
    for args in [
        vec!["run", "sec4.yaml"],
        vec!["run", "sec4.yaml", "--output", "json"],
        vec!["show", "latest"],
        vec!["show", "latest", "--output", "json"],
        vec!["outputs", "latest"],
        vec!["outputs", "latest", "--output", "json"],
    ] {
        let out = sb.output(&args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            text(&out.stderr)
        );
        printed.push((args, out.stdout, out.stderr));
    }
    let state = sb.state_bytes();
    for secret in clear {
        for (args, stdout, stderr) in &printed {
            assert!(
                !contains(stdout, secret) && !contains(stderr, secret),
                "{secret} printed by {args:?}: {}",
                text(stdout)
            );
        }
        assert!(!contains(&state, secret), "{secret} in the state dir");
    }
    assert!(text(&printed[0].1).contains("***"));
}

/// A secret in the `lock:` key is refused before anything is stored.
#[test]
fn a_lock_key_with_a_secret_is_refused_and_not_stored() {
    let sb = Sandbox::new(RUNBOOK);
    sb.write(
        "lk.yaml",
        r#"runbook: lk
params:
  pw: { type: string, secret: true }
lock: lk-${{ params.pw }}
steps:
  - id: s
    uses: core.log
    with: { message: hi }
"#,
    );
    let out = sb.output(&["run", "lk.yaml", "-p", "pw=HunterTwo2"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("reads a secret"), "{err}");
    assert!(!err.contains("HunterTwo2"), "{err}");
    if sb.path(".drflow").exists() {
        assert!(!contains(&sb.state_bytes(), "HunterTwo2"));
    }
}

/// An empty `lock:` key is refused.
#[test]
fn an_empty_lock_key_is_refused() {
    let sb = Sandbox::new(RUNBOOK);
    sb.write(
        "lk.yaml",
        "runbook: lk\nlock: \"\"\nsteps:\n  - id: s\n    uses: core.log\n    with: { message: hi }\n",
    );
    let out = sb.output(&["run", "lk.yaml"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("empty key"));
}

/// A secret too short to be scrubbed out of text is refused (it could not be kept out of logs).
#[test]
fn a_secret_too_short_to_scrub_is_refused() {
    let sb = Sandbox::new(RUNBOOK);
    sb.write(
        "short.yaml",
        r#"runbook: short
params:
  pin: { type: string, secret: true }
steps:
  - id: s
    uses: core.log
    with: { message: "pin ${{ params.pin }}" }
"#,
    );
    let out = sb.output(&["run", "short.yaml", "-p", "pin=123"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("shorter than 4 characters"), "{err}");
    assert!(!err.contains("pin 123"), "{err}");
}

/// A journal with a damaged inner page (not the header) is refused before anything is written.
#[test]
fn a_journal_with_a_damaged_inner_page_is_refused_and_left_unchanged() {
    let sb = Sandbox::new(RUNBOOK);
    sb.write("plain.yaml", PLAIN);
    for _ in 0..30 {
        let out = sb.output(&["run", "plain.yaml"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    }
    // Fold the WAL into the file, as the last process to close it does.
    assert!(!sb.path(".drflow/journal.db-wal").exists());
    let mut bytes = std::fs::read(sb.journal_path()).unwrap();
    assert!(bytes.len() > 12288, "{}", bytes.len());
    bytes[8192..12288].fill(b'A');
    std::fs::write(sb.journal_path(), &bytes).unwrap();
    for args in [
        vec!["run".to_owned(), "plain.yaml".into()],
        vec!["runs".into()],
        vec!["show".into(), "latest".into()],
    ] {
        let out = sb.output(&args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        let err = text(&out.stderr);
        assert!(err.contains("is corrupt"), "{args:?}: {err}");
        assert!(!err.contains("drflow: run "), "nothing may run: {err}");
    }
    assert_eq!(std::fs::read(sb.journal_path()).unwrap(), bytes);
}

/// An empty run id or a too-short prefix names no run, even when there is only one.
#[test]
fn an_empty_or_too_short_run_id_is_refused() {
    let sb = Sandbox::new(RUNBOOK);
    sb.write("plain.yaml", PLAIN);
    assert!(sb.output(&["run", "plain.yaml"]).status.success());
    for cmd in ["resume", "show", "rollback"] {
        for id in ["", "2"] {
            // `rollback` wants --yes off a terminal before it looks at the id.
            let out = sb.output(&[cmd, id, "--yes"][..if cmd == "rollback" { 3 } else { 2 }]);
            assert_eq!(
                out.status.code(),
                Some(2),
                "{cmd} {id:?}: {}",
                text(&out.stderr)
            );
            assert!(text(&out.stderr).contains("does not name a run"));
        }
    }
}

const NO_UNDO: &str = r#"runbook: noundo
steps:
  - id: s
    uses: core.log
    with: { message: hi }
"#;

/// A rolled-back run is never resumed (it used to flip to `succeeded` when no step had an undo).
#[test]
fn a_rolled_back_run_cannot_be_resumed() {
    let sb = Sandbox::new(RUNBOOK);
    sb.write("noundo.yaml", NO_UNDO);
    assert!(sb.output(&["run", "noundo.yaml"]).status.success());
    let out = sb.output(&["rollback", "latest", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = sb.output(&["resume", "latest"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("was rolled back; it cannot be resumed"),
        "{err}"
    );
    let runs = text(&sb.output(&["runs"]).stdout);
    assert!(runs.contains("rolled_back"), "{runs}");
}

/// A finished run has nothing to resume, even when its file changed since.
#[test]
fn a_finished_run_whose_file_changed_has_nothing_to_resume() {
    let sb = Sandbox::new(RUNBOOK);
    sb.write("plain.yaml", PLAIN);
    assert!(sb.output(&["run", "plain.yaml"]).status.success());
    sb.write("plain.yaml", &format!("{PLAIN}description: edited\n"));
    let out = sb.output(&["resume", "latest"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("nothing to resume"));
}

/// `--force` does not resume a run against another runbook.
#[test]
fn force_refuses_another_runbook() {
    let sb = Sandbox::new(RUNBOOK);
    sb.crash("before:step_started:c");
    sb.write("noundo.yaml", NO_UNDO);
    let out = sb.output(&["resume", "latest", "--file", "noundo.yaml", "--force"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("another runbook"));
}

/// A runbook moved since the run started: the error points at `--file`, and `--file` finds it.
#[test]
fn a_moved_runbook_points_at_file() {
    let sb = Sandbox::new(RUNBOOK);
    sb.crash("before:step_started:c");
    std::fs::rename(sb.path("crashy.yaml"), sb.path("moved.yaml")).unwrap();
    let out = sb.output(&["resume", "latest"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("--file PATH"),
        "{}",
        text(&out.stderr)
    );
    let moved = sb.path("moved.yaml");
    let inproc = InProc::new(sb.dir.path());
    let load = Load {
        file: Some(&moved),
        ..Load::default()
    };
    let outcome = block_on(inproc.resume(load)).unwrap().unwrap();
    assert_eq!(outcome.report.status, RunStatus::Succeeded);
    assert_eq!(sb.count("c"), 1);
}

/// A crashed run's duration ends at its last event, not now: a run whose events are two
/// seconds apart, long ago, lasted two seconds.
#[test]
fn a_crashed_runs_duration_stops_at_its_last_event() {
    let sb = Sandbox::new(RUNBOOK);
    {
        let mut j = drflow_engine::Journal::open_in(&sb.path(".drflow")).unwrap();
        use drflow_engine::RunSink as _;
        j.record(&RunEvent::RunStarted {
            run_id: "20200101T000000-0001".into(),
            runbook: "crashy".into(),
            path: sb.crashy().display().to_string(),
            content_hash: "sha256:00".into(),
            params: serde_json::json!({}),
            at: 1_577_836_800.0,
            step_hashes: Default::default(),
        })
        .unwrap();
        j.record(&RunEvent::StepStarted {
            step: "a".into(),
            attempt: 1,
            at: 1_577_836_802.0,
        })
        .unwrap();
    }
    let out = sb.output(&["runs", "--output", "json"]);
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows[0]["status"], "crashed");
    let d = rows[0]["duration_seconds"].as_f64().unwrap();
    assert!(
        (d - 2.0).abs() < 1e-6,
        "duration {d} keeps growing after the crash"
    );
}

/// Small messages: a refused lock names no run id that is never recorded, and waiting for it
/// gives up after `--wait-lock-timeout`; a bad `DRFLOW_JOURNAL_SYNC` is an error; resuming with
/// `-p` of an unknown parameter says so.
#[test]
fn small_messages() {
    let sb = Sandbox::new(RUNBOOK);
    sb.write("locked.yaml", LOCKED_PLAIN);
    // This (live) process holds the lock, as another run would.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let held = runtime.block_on(async {
        drflow_engine::Journal::open_in(&sb.path(".drflow")).unwrap();
        let store = drflow_engine::FileLeaseStore::open(&sb.journal_path()).unwrap();
        drflow_engine::HeldLease::acquire(
            Arc::new(store),
            "lock/failover-prod",
            "holder-run",
            &drflow_engine::LeaseOptions::default(),
        )
        .await
        .unwrap()
    });
    let out = sb.output(&["run", "locked.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("is held by run holder-run"), "{err}");
    assert!(!err.contains("drflow: run "), "{err}");
    let out = sb.output(&[
        "run",
        "locked.yaml",
        "--wait-lock",
        "--wait-lock-timeout",
        "1ms",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("the lock `failover-prod` after"), "{err}");
    runtime.block_on(held.release()).unwrap();
    let out = sb.output(&["run", "locked.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    let out = sb
        .cmd()
        .env("DRFLOW_JOURNAL_SYNC", "bogus")
        .args(["run", "locked.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("DRFLOW_JOURNAL_SYNC"));

    sb.crash("before:step_started:c");
    let inproc = InProc::new(sb.dir.path());
    let load = Load {
        secrets: &[("notaparam", "1")],
        ..Load::default()
    };
    let err = block_on(inproc.resume(load)).unwrap_err();
    assert!(
        err.message().contains("has no parameter `notaparam`"),
        "{}",
        err.message()
    );
}

// ---- review findings: resume re-decides steps; leases before replay; parameter types ----

const GATED: &str = r#"runbook: gated
steps:
  - id: a
    if: ${{ false }}
    uses: core.set
    with: { x: 1 }
  - id: b
    needs: [a]
    uses: core.set
    with: { y: "${{ steps.a.outputs.x }}" }
"#;

/// A step whose input cannot be built fails again on every resume. The second resume used to
/// find `step_failed` for an already failed step in the journal, written by the first, and
/// refuse it (DRJ006): from then on the run could not be resumed, rolled back or shown.
#[test]
fn resuming_a_run_whose_step_fails_again_keeps_its_journal_replayable() {
    let sb = Sandbox::new(RUNBOOK);
    sb.write("gated.yaml", GATED);
    let out = sb.output(&["run", "gated.yaml"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    for i in 0..3 {
        let out = sb.output(&["resume", "latest"]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "resume #{i}: {err}");
        assert!(!err.contains("DRJ0"), "resume #{i}: {err}");
    }
    let out = sb.output(&["show", "latest", "--output", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let events: Vec<RunEvent> = serde_json::from_value(doc["events"].clone()).unwrap();
    let b_failed = events
        .iter()
        .filter(|e| drflow_engine::event_name(e) == "step_failed" && e.step() == Some("b"))
        .count();
    assert_eq!(b_failed, 4, "{events:?}");
    drflow_engine::RunState::replay(&events).unwrap();
}

/// A step killed while it ran, then switched off (`if: false`) before a forced resume: the
/// resume records `step_skipped` for a step the journal last saw running. That must replay.
#[test]
fn a_forced_resume_may_skip_a_step_that_was_running_when_the_run_died() {
    let sb = Sandbox::new(RUNBOOK);
    // Killed while b holds: the run's future is dropped where it stands, its leases left to a
    // process that is gone.
    let dying = InProc::crashing(sb.dir.path(), |_| false);
    dying.gates.close("b");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let run = {
        let (inproc, file, params) = (dying.clone(), sb.crashy(), sb.out_param());
        runtime.spawn(async move { inproc.run(&file, &params).await })
    };
    dying.gates.wait_arrived("b", 1);
    run.abort();
    assert!(runtime.block_on(run).unwrap_err().is_cancelled());
    drop(runtime);
    assert!(sb.has_event("step_started", "b"));
    sb.write(
        "crashy.yaml",
        &RUNBOOK.replace(
            "  - id: b\n    needs: [a]\n",
            "  - id: b\n    if: ${{ false }}\n    needs: [a]\n",
        ),
    );
    let inproc = InProc::new(sb.dir.path());
    let force = Load {
        force: true,
        ..Load::default()
    };
    block_on(inproc.resume(force)).unwrap();
    assert!(sb.has_event("step_skipped", "b"));
    // The journal replays: resuming, showing and rolling back still work.
    block_on(inproc.resume(force)).unwrap();
    let out = sb.output(&["show", "latest"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // b wrote its line before the kill and was not run again; c ran after the skip.
    assert_eq!(sb.count("b"), 1);
}

/// Two `resume`s of one run at once: the second must not replay the journal before it holds the
/// run's lease. It used to replay first; if the first resume finished in between, the second
/// then took the free lease and went on from a state that was no longer the run's (running
/// again a step that had succeeded meanwhile).
#[test]
fn resume_takes_the_runs_lease_before_replaying_it() {
    let sb = Sandbox::new(RUNBOOK);
    sb.crash("before:step_started:c");
    let (hooks, pause) = Pause::at(|p| matches!(p, HookPoint::AfterReplay { .. }));
    let first = {
        let inproc = InProc {
            hooks,
            ..InProc::new(sb.dir.path())
        };
        std::thread::spawn(move || block_on(inproc.resume(Load::default())))
    };
    pause.wait();
    // The first resume has replayed and holds the lease: a second one is refused outright.
    let inproc = InProc::new(sb.dir.path());
    let err = block_on(inproc.resume(Load::default())).unwrap_err();
    assert!(
        err.message().contains("still being worked on"),
        "{}",
        err.message()
    );
    assert_eq!(sb.count("c"), 0);
    pause.end(HookAction::Continue);
    let outcome = first.join().unwrap().unwrap().unwrap();
    assert_eq!(outcome.report.status, RunStatus::Succeeded);
    assert_eq!(sb.count("c"), 1);
    assert!(block_on(inproc.resume(Load::default())).unwrap().is_none());
    let out = sb.output(&["resume", "latest"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("nothing to resume"));
}

const TYPED: &str = r#"runbook: typed
params:
  out: { type: string }
  v: { type: any }
  w: { type: any }
  n: { type: any }
steps:
  - id: a
    uses: test.append_file
    with: { path: "${{ params.out }}", line: a }
  - id: echo
    needs: [a]
    uses: core.set
    with: { v: "${{ params.v }}", w: "${{ params.w }}", n: "${{ params.n }}" }
outputs:
  v: ${{ steps.echo.outputs.v }}
  w: ${{ steps.echo.outputs.w }}
  n: ${{ steps.echo.outputs.n }}
"#;

/// A resumed run has the parameter values it started with, of the same types: journaled values
/// used to be turned into text and parsed again as if from `-p`, so the string "007" came back as
/// the number 7 and the string "true" as a boolean.
#[test]
fn resumed_parameters_keep_their_types() {
    let sb = Sandbox::new(RUNBOOK);
    sb.write("typed.yaml", TYPED);
    let params = format!(
        "out: {:?}\nv: \"007\"\nw: \"true\"\nn: [1, \"2\"]\n",
        sb.out()
    );
    let dying = InProc {
        params_file: Some(("params.yaml".into(), params)),
        ..InProc::crashing(sb.dir.path(), point("before:step_started:echo"))
    };
    assert!(matches!(
        block_on(dying.run(&sb.path("typed.yaml"), &[])),
        Err(RunnerError::Crashed { .. })
    ));
    let inproc = InProc::new(sb.dir.path());
    block_on(inproc.resume(Load::default())).unwrap().unwrap();
    let out = sb.output(&["outputs", "latest", "--output", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let outputs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        outputs["outputs"],
        serde_json::json!({ "v": "007", "w": "true", "n": [1, "2"] }),
        "{}",
        text(&out.stdout)
    );
}

/// docs/journal.md: with `--force`, journaled steps the runbook no longer has are ignored. A
/// succeeded step removed from the runbook used to be reported as changed and the resume refused.
#[test]
fn force_ignores_a_succeeded_step_the_runbook_no_longer_has() {
    let sb = Sandbox::new(RUNBOOK);
    sb.crash("before:step_started:c");
    let without_b = RUNBOOK
        .replace(
            "  - id: b\n    needs: [a]\n    uses: test.append_file\n    with: { path: \"${{ params.out }}\", line: b, gate: b }\n",
            "",
        )
        .replace("needs: [b]", "needs: [a]");
    assert!(!without_b.contains("id: b"), "{without_b}");
    sb.write("crashy.yaml", &without_b);
    let inproc = InProc::new(sb.dir.path());
    let force = Load {
        force: true,
        ..Load::default()
    };
    let outcome = block_on(inproc.resume(force)).unwrap().unwrap();
    assert_eq!(outcome.report.status, RunStatus::Succeeded);
    assert_eq!(sb.count("a"), 1);
    assert_eq!(sb.count("b"), 1);
    assert_eq!(sb.count("c"), 1);
}

/// The load of a crashed run takes over the run's lease from the process that died.
#[test]
fn resume_takes_over_the_lease_of_the_run_that_died() {
    let sb = Sandbox::new(RUNBOOK);
    sb.crash("after:step_succeeded:a");
    let inproc = InProc::new(sb.dir.path());
    let loaded = block_on(inproc.load("latest", Purpose::Resume, Load::default())).unwrap();
    let Loaded::Ready(loaded) = loaded else {
        panic!("nothing to resume")
    };
    let lease = &loaded.session.leases()[0];
    assert_eq!(lease.key(), format!("run/{}", loaded.run_id));
    let dead = lease
        .took_over()
        .expect("the dead run's lease was taken over");
    assert_eq!(dead.pid, common::inproc::dead_process().pid);
    block_on(loaded.session.release());
}
