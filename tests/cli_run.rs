//! `drflow run`, `graph`, `steps` and `schema` as a user meets them: output, JSON, exit codes,
//! interruption.

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn drflow(args: &[&str]) -> Output {
    let state = tempfile::tempdir().expect("temp dir");
    Command::new(env!("CARGO_BIN_EXE_drflow"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("DRFLOW_STATE_DIR", state.path())
        .output()
        .expect("drflow runs")
}

#[test]
fn a_run_prints_the_target_a_summary_and_typed_outputs() {
    let out = drflow(&[
        "run",
        "tests/fixtures/ok/params.yaml",
        "-p",
        "env_suffix=prod",
        "-p",
        "replicas=3",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("on target sim"), "{stderr}");
    assert!(stdout.contains("echo  succeeded"), "{stdout}");
    assert!(stdout.contains("name          asg-prod"), "{stdout}");
    assert!(stdout.contains("replicas      3"), "{stdout}");
}

#[test]
fn json_output_is_one_document_with_steps_outputs_and_errors() {
    let out = drflow(&[
        "run",
        "tests/fixtures/ok/params.yaml",
        "-p",
        "env_suffix=eu",
        "-p",
        "regions=[us-east-1, us-east-2]",
        "--output",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(doc["status"], "succeeded");
    assert_eq!(doc["target"], "sim");
    assert!(doc["run_id"].as_str().is_some_and(|id| !id.is_empty()));
    assert_eq!(doc["steps"][0]["id"], "echo");
    assert_eq!(doc["steps"][0]["attempts"], 1);
    assert_eq!(doc["outputs"]["first_region"], "us-east-1");
    assert_eq!(doc["outputs"]["replicas"], 1);
    assert_eq!(doc["outputs"]["dry_run"], false);
    assert_eq!(doc["errors"], Value::Array(vec![]));
    // Secrets never reach the output.
    assert!(!String::from_utf8_lossy(&out.stdout).contains("hunter2"));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("hunter2"));
}

#[test]
fn a_failed_step_exits_1_skips_dependants_and_still_runs_always_steps() {
    let out = drflow(&["run", "tests/fixtures/ok/failing.yaml", "--output", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("json");
    let status = |id: &str| {
        doc["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .map(|s| s["status"].clone())
            .unwrap()
    };
    assert_eq!(doc["status"], "failed");
    assert_eq!(status("breaks"), "failed");
    assert_eq!(status("dependant"), "skipped");
    assert_eq!(status("notify"), "succeeded");
    assert_eq!(
        doc["steps"][0]["error"]["message"],
        "the primary did not answer"
    );
}

#[cfg(unix)]
#[test]
fn ctrl_c_stops_the_run_reports_interrupted_steps_and_exits_130() {
    let state = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_drflow"))
        // `-v` shows each step's start, which is what this test waits for. On the aws target
        // (fine for a runbook of `core.*` steps) the 60 s sleep is wall time, which the signal
        // cuts short; on the sim it would be virtual time, over before the signal comes.
        .args([
            "run",
            "tests/fixtures/ok/slow.yaml",
            "--target",
            "aws",
            "--grace",
            "200ms",
            "-v",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("DRFLOW_STATE_DIR", state.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // Wait until the long step has started, then send SIGINT as a terminal's Ctrl-C would.
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut seen = String::new();
    let mut line = String::new();
    while stderr.read_line(&mut line).expect("read") > 0 {
        seen.push_str(&line);
        if line.contains("start    long") {
            break;
        }
        line.clear();
    }
    assert!(seen.contains("start    long"), "{seen}");
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let out = child.wait_with_output().expect("wait");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(130), "{stdout}");
    assert!(stdout.contains("long   interrupted"), "{stdout}");
    assert!(stdout.contains("after  not_started"), "{stdout}");
    assert!(stdout.contains("1 interrupted"), "{stdout}");
    // It ends with the commands that go on from here.
    let tail: Vec<&str> = stdout.lines().rev().take(4).collect();
    assert!(tail[2].contains(" resume "), "{stdout}");
    assert!(tail[0].contains(" rollback "), "{stdout}");
}

/// On the sim a run is on virtual time: a 10-minute `core.sleep` is over at once, and the run
/// says it took 600 seconds (`run.elapsed_seconds`, the durations, the summary, the journal).
#[test]
fn a_ten_minute_sleep_on_the_sim_takes_600_virtual_seconds() {
    let state = tempfile::tempdir().expect("temp dir");
    let in_state = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_drflow"))
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("DRFLOW_STATE_DIR", state.path())
            .output()
            .expect("drflow runs")
    };
    let out = in_state(&[
        "run",
        "tests/fixtures/ok/ten_minutes.yaml",
        "--output",
        "json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(doc["outputs"]["elapsed"], 600.0, "{doc:#}");
    assert_eq!(doc["duration_ms"], 600_000, "{doc:#}");
    assert_eq!(doc["virtual_duration_ms"], 600_000, "{doc:#}");
    assert_eq!(doc["steps"][0]["duration_ms"], 600_000, "{doc:#}");
    // The journal is on the same virtual time: a fresh world's clock starts at 2026-01-01.
    let runs: Value =
        serde_json::from_slice(&in_state(&["runs", "--output", "json"]).stdout).expect("json");
    assert_eq!(
        runs[0]["started_at"], "2026-01-01T00:00:00.000Z",
        "{runs:#}"
    );
    assert_eq!(
        runs[0]["finished_at"], "2026-01-01T00:10:00.000Z",
        "{runs:#}"
    );
    assert_eq!(runs[0]["duration_seconds"], 600.0, "{runs:#}");

    let out = drflow(&["run", "tests/fixtures/ok/ten_minutes.yaml"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("elapsed  600.0"), "{stdout}");
    assert!(
        stdout.contains(": succeeded in 10m00s of sim time ("),
        "{stdout}"
    );
}

#[test]
fn graph_draws_the_dag_in_three_formats() {
    let text = drflow(&["graph", "runbooks/examples/retries.yaml"]);
    assert_eq!(text.status.code(), Some(0));
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.starts_with("wave 1:\n"), "{text}");
    assert!(
        text.contains("  check (core.assert) <- flaky_call, names"),
        "{text}"
    );
    let dot = drflow(&["graph", "runbooks/examples/retries.yaml", "--format", "dot"]);
    assert!(String::from_utf8_lossy(&dot.stdout).contains("\"names\" -> \"check\";"));
    let mermaid = drflow(&[
        "graph",
        "runbooks/examples/retries.yaml",
        "--format",
        "mermaid",
    ]);
    assert!(String::from_utf8_lossy(&mermaid.stdout).contains("  names --> check"));
    let bad = drflow(&["graph", "tests/fixtures/bad/cycle.yaml"]);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn validate_accepts_every_shipped_runbook() {
    let mut files: Vec<String> = Vec::new();
    for dir in ["runbooks", "runbooks/examples"] {
        for e in std::fs::read_dir(dir).expect("runbooks dir").flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "yaml") {
                files.push(p.display().to_string());
            }
        }
    }
    assert!(!files.is_empty());
    let mut args = vec!["validate"];
    args.extend(files.iter().map(String::as_str));
    let out = drflow(&args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_schema_lists_every_step_type_and_its_parameters() {
    let schema: Value = serde_json::from_slice(&drflow(&["schema"]).stdout).expect("json");
    let uses = schema["properties"]["steps"]["items"]["properties"]["uses"]["enum"]
        .as_array()
        .expect("enum of step types");
    assert!(uses.iter().any(|u| u == "core.wait_until"));
    let with = &schema["$defs"]["with_core_sleep"];
    assert_eq!(with["required"][0], "duration");
    assert_eq!(with["additionalProperties"], false);
    let steps: Value =
        serde_json::from_slice(&drflow(&["steps", "--format", "json"]).stdout).expect("json");
    assert!(
        steps
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "core.fail")
    );
}

/// Regression: steps that finish on their first poll (provision's, on the simulated cloud)
/// made the run ignore `--timeout` (and Ctrl-C) because the scheduler never waited. On the wall
/// clock (the aws target) such steps still take time: 500 of them take more than 1 ms. (On the
/// sim a step that never waits takes no virtual time at all, so there is nothing to cut.)
#[test]
fn the_run_timeout_also_stops_a_run_of_quick_steps() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut runbook =
        String::from("runbook: quick\nsteps:\n  - { id: s0, uses: core.set, with: { n: 0 } }\n");
    for i in 1..500 {
        runbook.push_str(&format!(
            "  - {{ id: s{i}, uses: core.set, needs: [s{}], with: {{ n: {i} }} }}\n",
            i - 1
        ));
    }
    let file = dir.path().join("quick.yaml");
    std::fs::write(&file, runbook).expect("runbook");
    let out = drflow(&[
        "run",
        file.to_str().expect("utf-8 path"),
        "--target",
        "aws",
        "--timeout",
        "1ms",
        "--max-parallel",
        "1",
        "--output",
        "json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).expect("json");
    let not_started = doc["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["status"] == "not_started")
        .count();
    assert!(not_started > 0, "{doc:#}");
    assert!(
        doc["errors"][0].as_str().unwrap().contains("timeout"),
        "{doc:#}"
    );
}

/// `drflow schema | head -1`: a reader that goes away is not a crash.
#[test]
fn a_closed_stdout_pipe_ends_quietly_without_a_panic() {
    use std::io::Read;
    // Far more output than a pipe buffers, so the write really meets the closed pipe.
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("big.yaml");
    let mut src = String::from("runbook: big\nsteps:\n");
    for i in 0..5000 {
        src.push_str(&format!("  - {{ id: step_number_{i}, uses: core.set }}\n"));
    }
    std::fs::write(&file, src).expect("write");
    let mut child = Command::new(env!("CARGO_BIN_EXE_drflow"))
        .args([
            "graph",
            file.to_str().expect("utf-8 path"),
            "--format",
            "dot",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut first = [0u8; 1];
    stdout.read_exact(&mut first).expect("some output");
    drop(stdout);
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}

/// `--output json` keeps its promise of one document even when nothing could run.
#[test]
fn json_output_of_an_invalid_runbook_is_a_document_of_its_problems() {
    let out = drflow(&[
        "run",
        "tests/fixtures/bad/unknown_needs.yaml",
        "--output",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(doc["status"], "invalid");
    assert_eq!(doc["steps"], Value::Array(vec![]));
    let d = &doc["diagnostics"][0];
    assert_eq!(d["file"], "tests/fixtures/bad/unknown_needs.yaml");
    assert_eq!((d["line"].as_u64(), d["col"].as_u64()), (Some(7), Some(13)));
    assert!(
        d["hint"]
            .as_str()
            .is_some_and(|h| h.contains("did you mean `status`?")),
        "{d}"
    );
    assert_eq!(doc["errors"].as_array().map(Vec::len), Some(2));
}

/// `DRFLOW_STATE_DIR=` (set but empty) means the default, as an unset variable does.
#[test]
fn an_empty_state_dir_variable_means_the_default() {
    let cwd = tempfile::tempdir().expect("dir");
    let out = Command::new(env!("CARGO_BIN_EXE_drflow"))
        .args([
            "run",
            &format!(
                "{}/tests/fixtures/ok/failing.yaml",
                env!("CARGO_MANIFEST_DIR")
            ),
        ])
        .current_dir(cwd.path())
        .env("DRFLOW_STATE_DIR", "")
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(cwd.path().join(".drflow/journal.db").exists());
}

/// `resume --force` accepts an edited runbook, but never restores the outputs of a succeeded
/// step whose definition changed.
#[test]
fn a_forced_resume_refuses_a_succeeded_step_whose_definition_changed() {
    let dir = tempfile::tempdir().expect("dir");
    let state = dir.path().join("state");
    let file = dir.path().join("rb.yaml");
    let write = |a_value: &str, b_message: &str| {
        std::fs::write(
            &file,
            format!(
                "runbook: edit\nsteps:\n  - {{ id: a, uses: core.set, with: {{ v: {a_value} }} }}\n  - {{ id: b, uses: core.fail, needs: [a], with: {{ message: \"{b_message}\" }} }}\n"
            ),
        )
        .expect("write");
    };
    let drflow = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_drflow"))
            .args(args)
            .env("DRFLOW_STATE_DIR", &state)
            .output()
            .expect("runs")
    };
    let path = file.to_str().expect("utf-8");
    write("1", "boom");
    assert_eq!(drflow(&["run", path]).status.code(), Some(1));

    // Editing only the failed step: a forced resume goes on (and b fails again).
    write("1", "boom again");
    let out = drflow(&["resume", "latest", "--force"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("boom again"));

    // Editing the succeeded step: refused, even with --force.
    write("2", "boom again");
    let out = drflow(&["resume", "latest", "--force"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("step `a` succeeded in run"), "{stderr}");
}

/// `--output json` keeps its promise for flags the argument parser refuses, and `-p` syntax
/// errors carry a diagnostic like every other bad input.
#[test]
fn json_output_covers_refused_flags_and_malformed_params() {
    let out = drflow(&[
        "run",
        "runbooks/examples/retries.yaml",
        "--max-parallel",
        "0",
        "--output",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(doc["status"], "invalid");
    assert!(
        doc["errors"][0]
            .as_str()
            .is_some_and(|e| e.contains("--max-parallel")),
        "{doc}"
    );

    let out = drflow(&[
        "run",
        "runbooks/examples/retries.yaml",
        "-p",
        "novalue",
        "--output",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(doc["diagnostics"][0]["file"], "command line, -p flag 1");
    assert!(
        doc["diagnostics"][0]["hint"]
            .as_str()
            .is_some_and(|h| h.contains("NAME=VALUE") || h.contains("env_suffix=prod")),
        "{doc}"
    );
}
