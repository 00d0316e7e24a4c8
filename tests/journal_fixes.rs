//! Regression tests for the durable-run QA pass (docs/journal.md), through the `drflow` binary.

use std::process::Command;
use std::time::Duration;

mod common;

use common::{Sandbox, kill, text, wait_for};
use drflow_engine::RunEvent;

const RUNBOOK: &str = r#"runbook: crashy
params:
  out: { type: string }
  hold: { type: string, default: /nonexistent/hold }
steps:
  - id: a
    uses: core.append_file
    with: { path: "${{ params.out }}", line: a }
  - id: b
    needs: [a]
    uses: core.append_file
    with: { path: "${{ params.out }}", line: b, hold_while: "${{ params.hold }}" }
  - id: c
    needs: [b]
    uses: core.append_file
    with: { path: "${{ params.out }}", line: c }
outputs:
  c: ${{ steps.c.outputs.line }}
"#;

impl Sandbox {
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
    let hold = sb.path("hold");
    std::fs::write(&hold, "").unwrap();
    let marker = sb.path("paused");
    let child = sb.spawn(
        &sb.run_args(&["-p", &format!("hold={}", hold.display())]),
        &[
            ("DRFLOW_TEST_PAUSE", "after:step_succeeded:b".into()),
            ("DRFLOW_TEST_PAUSE_FILE", marker.display().to_string()),
        ],
    );
    wait_for("b to start", || sb.has_event("step_started", "b"));
    // The running process keeps SQLite's shared lock on the journal while it has it open.
    if let Some(held) = holds_lock(child.id(), &sb.journal_path()) {
        assert!(
            held,
            "drflow dropped its lock on journal.db while the run is live"
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
    std::fs::remove_file(&hold).unwrap();
    wait_for("the pause after b succeeded", || marker.exists());
    assert!(
        sb.has_event("step_succeeded", "b"),
        "b's success was committed but a reader cannot see it"
    );
    kill(child);
    assert!(sb.has_event("step_succeeded", "b"), "b's success was lost");
}

const LOCKED: &str = r#"runbook: locked
params:
  out: { type: string }
  hold: { type: string }
lock: failover-prod
steps:
  - id: work
    uses: core.append_file
    with: { path: "${{ params.out }}", line: work, hold_while: "${{ params.hold }}" }
  - id: after
    needs: [work]
    uses: core.append_file
    with: { path: "${{ params.out }}", line: after }
"#;

/// A run whose lock is taken from under it (another host took over an expired lease) says so
/// loudly and starts nothing more.
#[test]
fn a_run_that_loses_its_lock_stops_and_says_so() {
    let sb = Sandbox::new(RUNBOOK);
    sb.write("locked.yaml", LOCKED);
    let hold = sb.path("hold");
    std::fs::write(&hold, "").unwrap();
    let mut child = sb.spawn(
        &[
            "run".into(),
            "locked.yaml".into(),
            "-p".into(),
            format!("out={}", sb.path("out.txt").display()),
            "-p".into(),
            format!("hold={}", hold.display()),
        ],
        &[("DRFLOW_TEST_LEASE_HEARTBEAT_MS", "50".into())],
    );
    wait_for("work to run", || sb.count("work") == 1);
    {
        let c = rusqlite::Connection::open(sb.journal_path()).unwrap();
        c.busy_timeout(Duration::from_secs(10)).unwrap();
        let n = c
            .execute(
                "UPDATE leases SET run_id = 'other-run', hostname = 'otherhost' \
                 WHERE key = 'lock/failover-prod'",
                [],
            )
            .unwrap();
        assert_eq!(n, 1);
    }
    // The heartbeat (every 50 ms) notices within a few beats: wait until the run says so,
    // reading its stderr as it is written, then let the held step finish.
    let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let reader = {
        let stderr = std::sync::Arc::clone(&stderr);
        let mut pipe = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = std::io::Read::read(&mut pipe, &mut buf) {
                if n == 0 {
                    break;
                }
                stderr
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        })
    };
    wait_for("the run to notice it lost its lock", || {
        stderr
            .lock()
            .unwrap()
            .contains("LOST the lock `failover-prod`")
    });
    std::fs::remove_file(&hold).unwrap();
    let status = child.wait().unwrap();
    reader.join().unwrap();
    let err = stderr.lock().unwrap().clone();
    assert_ne!(status.code(), Some(0), "{err}");
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
    let marker = sb.path("paused");
    let child = sb.spawn(
        &sb.run_args(&[]),
        &[
            ("DRFLOW_TEST_PAUSE", "before:step_started:a".into()),
            ("DRFLOW_TEST_PAUSE_FILE", marker.display().to_string()),
        ],
    );
    wait_for("the pause before a starts", || marker.exists());
    kill(child);
    let runs = text(&sb.output(&["runs"]).stdout);
    assert!(runs.contains("crashy"), "{runs}");
    let out = sb.output(&["resume", "latest"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
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
    for _ in 0..30 {
        let out = sb.output(&sb.run_args(&[]));
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    }
    // Fold the WAL into the file, as the last process to close it does.
    assert!(!sb.path(".drflow/journal.db-wal").exists());
    let mut bytes = std::fs::read(sb.journal_path()).unwrap();
    assert!(bytes.len() > 12288, "{}", bytes.len());
    bytes[8192..12288].fill(b'A');
    std::fs::write(sb.journal_path(), &bytes).unwrap();
    std::fs::write(sb.path("out.txt"), "").unwrap();
    for args in [
        sb.run_args(&[]),
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
    }
    assert_eq!(std::fs::read(sb.journal_path()).unwrap(), bytes);
    assert_eq!(sb.count("a"), 0, "nothing may run");
}

/// An empty run id or a too-short prefix names no run, even when there is only one.
#[test]
fn an_empty_or_too_short_run_id_is_refused() {
    let sb = Sandbox::new(RUNBOOK);
    assert!(sb.output(&sb.run_args(&[])).status.success());
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
    assert!(sb.output(&sb.run_args(&[])).status.success());
    sb.write("crashy.yaml", &format!("{RUNBOOK}description: edited\n"));
    let out = sb.output(&["resume", "latest"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("nothing to resume"));
}

/// `--force` does not resume a run against another runbook.
#[test]
fn force_refuses_another_runbook() {
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
    sb.write("noundo.yaml", NO_UNDO);
    let out = sb.output(&["resume", "latest", "--file", "noundo.yaml", "--force"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("another runbook"));
}

/// A runbook moved since the run started: the error points at `--file`.
#[test]
fn a_moved_runbook_points_at_file() {
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
    std::fs::rename(sb.path("crashy.yaml"), sb.path("moved.yaml")).unwrap();
    let out = sb.output(&["resume", "latest"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("--file PATH"),
        "{}",
        text(&out.stderr)
    );
    let out = sb.output(&["resume", "latest", "--file", "moved.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

/// A crashed run's duration ends at its last event, not now.
#[test]
fn a_crashed_runs_duration_stops_at_its_last_event() {
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
    std::thread::sleep(Duration::from_millis(1500));
    let out = sb.output(&["runs", "--output", "json"]);
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows[0]["status"], "crashed");
    let d = rows[0]["duration_seconds"].as_f64().unwrap();
    assert!(d < 1.0, "duration {d} keeps growing after the crash");
}

/// Small messages: a refused lock names no run id that is never recorded; a bad
/// `DRFLOW_JOURNAL_SYNC` is an error; `resume -p` of an unknown parameter says so.
#[test]
fn small_messages() {
    let sb = Sandbox::new(RUNBOOK);
    sb.write("locked.yaml", LOCKED);
    let hold = sb.path("hold");
    std::fs::write(&hold, "").unwrap();
    let args = [
        "run".to_owned(),
        "locked.yaml".to_owned(),
        "-p".to_owned(),
        format!("out={}", sb.path("out.txt").display()),
        "-p".to_owned(),
        format!("hold={}", hold.display()),
    ];
    let child = sb.spawn(&args, &[]);
    wait_for("work to run", || sb.count("work") == 1);
    let out = sb.output(&args);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(!err.contains("drflow: run "), "{err}");
    let out = sb.output(
        &[
            &args[..],
            &[
                "--wait-lock".into(),
                "--wait-lock-timeout".into(),
                "1s".into(),
            ],
        ]
        .concat(),
    );
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("the lock `failover-prod` after"), "{err}");
    std::fs::remove_file(&hold).unwrap();
    assert!(child.wait_with_output().unwrap().status.success());

    let out = sb
        .cmd()
        .env("DRFLOW_JOURNAL_SYNC", "bogus")
        .args(sb.run_args(&[]))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("DRFLOW_JOURNAL_SYNC"));

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
    let out = sb.output(&["resume", "latest", "-p", "notaparam=1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("has no parameter `notaparam`"));
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
    let hold = sb.path("hold");
    std::fs::write(&hold, "").unwrap();
    let child = sb.spawn(
        &sb.run_args(&["-p", &format!("hold={}", hold.display())]),
        &[],
    );
    wait_for("b to start", || sb.has_event("step_started", "b"));
    kill(child);
    sb.write(
        "crashy.yaml",
        &RUNBOOK.replace(
            "  - id: b\n    needs: [a]\n",
            "  - id: b\n    if: ${{ false }}\n    needs: [a]\n",
        ),
    );
    let out = sb.output(&["resume", "latest", "--force"]);
    let err = text(&out.stderr);
    assert!(!err.contains("DRJ0") && !err.contains("refused"), "{err}");
    assert!(sb.has_event("step_skipped", "b"), "{err}");
    // The journal replays: resuming, showing and rolling back still work.
    let out = sb.output(&["resume", "latest", "--force"]);
    let err = text(&out.stderr);
    assert!(!err.contains("DRJ0"), "{err}");
    assert!(matches!(out.status.code(), Some(0 | 1)), "{err}");
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
    let gate = sb.path("gate");
    std::fs::write(&gate, "").unwrap();
    let first = sb.spawn(
        &["resume".into(), "latest".into()],
        &[("DRFLOW_TEST_HOLD_AFTER_REPLAY", gate.display().to_string())],
    );
    wait_for("the first resume to replay", || {
        sb.path("gate.reached").exists()
    });
    // The first resume has replayed and holds the lease: a second one is refused outright.
    let out = sb.output(&["resume", "latest"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("still being worked on"), "{err}");
    assert_eq!(sb.count("c"), 0);
    std::fs::remove_file(&gate).unwrap();
    let out = first.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(sb.count("c"), 1);
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
    uses: core.append_file
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
    sb.write(
        "params.yaml",
        &format!(
            "out: {:?}\nv: \"007\"\nw: \"true\"\nn: [1, \"2\"]\n",
            sb.path("out.txt").display().to_string()
        ),
    );
    let marker = sb.path("paused");
    let child = sb.spawn(
        &[
            "run".into(),
            "typed.yaml".into(),
            "--params-file".into(),
            "params.yaml".into(),
        ],
        &[
            ("DRFLOW_TEST_PAUSE", "before:step_started:echo".into()),
            ("DRFLOW_TEST_PAUSE_FILE", marker.display().to_string()),
        ],
    );
    wait_for("the pause", || marker.exists());
    kill(child);
    let out = sb.output(&["resume", "latest"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
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
    let without_b = RUNBOOK
        .replace(
            "  - id: b\n    needs: [a]\n    uses: core.append_file\n    with: { path: \"${{ params.out }}\", line: b, hold_while: \"${{ params.hold }}\" }\n",
            "",
        )
        .replace("needs: [b]", "needs: [a]");
    assert!(!without_b.contains("id: b"), "{without_b}");
    sb.write("crashy.yaml", &without_b);
    let out = sb.output(&["resume", "latest", "--force"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(sb.count("a"), 1);
    assert_eq!(sb.count("b"), 1);
    assert_eq!(sb.count("c"), 1);
}
