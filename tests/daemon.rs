//! `drflow daemon` through the binary on the simulated cloud: the region-outage drill driven by
//! the daemon process itself (provision, settle, fault, and the daemon alone detects it and
//! fails over), no failover without a fault, a stop mid-run resumed by the next start with no
//! second run, SIGTERM with /healthz and /metrics served on loopback, `drflow runs prune`, and
//! each kind of bad input (exit 2, nothing started).
//!
//! `--for` plays virtual time: fifteen minutes of a daemon's life cost about a second.

#[path = "common/cli.rs"]
mod cli;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};

use cli::{drflow_in, stderr, stdout};
use serde_json::Value;

const EU: &str = "runbooks/params/eu.yaml";

/// A provisioned, settled eu.yaml environment in `state`.
fn provisioned(state: &Path) {
    let out = drflow_in(
        state,
        &["run", "runbooks/provision.yaml", "--params-file", EU],
    );
    assert_eq!(out.status.code(), Some(0), "provision: {}", stderr(&out));
    let out = drflow_in(state, &["sim", "advance", "10m"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

fn daemon(state: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["daemon", "--params-file", EU, "--listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    drflow_in(state, &args)
}

/// The runs of `runbook` in the journal, newest first.
fn runs_of(state: &Path, runbook: &str) -> Vec<Value> {
    let out = drflow_in(state, &["runs", "--output", "json"]);
    let all: Value = serde_json::from_slice(&out.stdout).expect("runs json");
    all.as_array()
        .expect("a list")
        .iter()
        .filter(|r| r["runbook"] == runbook)
        .cloned()
        .collect()
}

fn writer_region(state: &Path) -> String {
    let out = drflow_in(state, &["sim", "status", "--output", "json"]);
    let s: Value = serde_json::from_slice(&out.stdout).expect("status json");
    s["writer_region"].as_str().unwrap_or_default().to_string()
}

#[test]
fn the_daemon_alone_fails_over_a_region_outage() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path();
    provisioned(state);
    assert_eq!(writer_region(state), "eu-south-1");
    let out = drflow_in(state, &["sim", "fault", "region-outage"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = daemon(state, &["--for", "15m"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    // Both alarms of primary-down came through the queue; the probe's trigger fired while that
    // run was in progress, so its run waited behind it and found nothing left to do.
    assert!(err.contains("trigger primary-down fired"), "{err}");
    assert!(err.contains("starts when it ends"), "{err}");
    let failovers = runs_of(state, "failover");
    assert_eq!(failovers.len(), 2, "{failovers:#?}\n{err}");
    assert!(
        failovers.iter().all(|r| r["status"] == "succeeded"),
        "{err}"
    );
    assert!(
        err.contains("say: failover:") && err.contains("say: nothing to do"),
        "the first failed over, the second changed nothing: {err}"
    );
    assert_eq!(writer_region(state), "eu-central-1");
    let id = failovers[1]["id"].as_str().unwrap();
    let show = drflow_in(state, &["show", id, "--output", "json"]);
    let shown = stdout(&show);
    assert!(
        shown.contains("trigger primary-down: ") || shown.contains("trigger primary-unreachable: "),
        "the run says which trigger started it: {shown}"
    );
    // Restarted afterwards, it does not act on the same events again.
    let out = daemon(state, &["--for", "5m"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(runs_of(state, "failover").len(), 2, "{}", stderr(&out));
}

#[test]
fn a_healthy_platform_is_never_failed_over() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path();
    provisioned(state);
    let out = daemon(state, &["--for", "30m"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(runs_of(state, "failover").is_empty(), "{}", stderr(&out));
    assert_eq!(writer_region(state), "eu-south-1");
}

#[test]
fn a_daemon_stopped_mid_run_resumes_that_run_when_started_again() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path();
    provisioned(state);
    drflow_in(state, &["sim", "fault", "region-outage"]);
    // The alarms complete primary-down about two minutes after the fault, and the run takes
    // about two more: stopping at three minutes stops it in the middle.
    let out = daemon(state, &["--for", "3m"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let first = runs_of(state, "failover");
    assert_eq!(first.len(), 1, "{err}");
    assert_eq!(first[0]["status"], "interrupted", "{err}");
    let id = first[0]["id"].as_str().unwrap();
    let out = daemon(state, &["--for", "10m"]);
    let err = stderr(&out);
    assert!(err.contains(&format!("resuming run {id}")), "{err}");
    // The interrupted run is finished under its id, not started again; the probe's firing that
    // waited behind it when the daemon stopped runs after it and changes nothing.
    let after = runs_of(state, "failover");
    assert_eq!(after.len(), 2, "{after:#?}\n{err}");
    assert!(after.iter().all(|r| r["status"] == "succeeded"), "{err}");
    assert!(after.iter().any(|r| r["id"] == id), "{after:#?}");
    assert_eq!(writer_region(state), "eu-central-1");
}

/// `GET path` on `addr`: the status code and body.
fn get(addr: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    write!(s, "GET {path} HTTP/1.1\r\nhost: {addr}\r\n\r\n").unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    let code = reply[9..12].parse().expect("a status code");
    let body = reply
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_string();
    (code, body)
}

#[test]
fn sigterm_stops_the_daemon_cleanly_and_it_serves_health_and_metrics_on_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path();
    provisioned(state);
    // Without --for the simulated world lives at the wall clock's pace.
    let mut child = Command::new(env!("CARGO_BIN_EXE_drflow"))
        .args(["daemon", "--params-file", EU, "--listen", "127.0.0.1:0"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("DRFLOW_STATE_DIR", state)
        .env_remove("DRFLOW_TARGET")
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("the daemon says where it listens")
            .unwrap();
        if let Some(rest) = line.split("on http://").nth(1) {
            break rest.trim().to_string();
        }
    };
    // The queue is found and read once the first line after start says so.
    loop {
        let line = lines.next().expect("the daemon reads the queue").unwrap();
        if line.contains("reading arn:aws:sqs:") {
            break;
        }
    }
    let (code, body) = get(&addr, "/healthz");
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"status\":\"ok\""), "{body}");
    let (code, body) = get(&addr, "/metrics");
    assert_eq!(code, 200);
    for name in [
        "drflow_daemon_events_received_total",
        "drflow_daemon_events_dropped_total",
        "drflow_daemon_events_deduplicated_total",
        "drflow_daemon_runs_total",
        "drflow_daemon_decision_latency_seconds_count",
    ] {
        assert!(body.contains(name), "{name} in\n{body}");
    }
    assert_eq!(get(&addr, "/nothing").0, 404);
    // The live daemon lets go of the simulated world between polls: another command gets in
    // (bounded by `timeout`, so a regression fails instead of hanging).
    let status = Command::new("timeout")
        .args(["60", env!("CARGO_BIN_EXE_drflow"), "sim", "status"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("DRFLOW_STATE_DIR", state)
        .env_remove("DRFLOW_TARGET")
        .output()
        .unwrap();
    assert_eq!(status.status.code(), Some(0), "{}", stderr(&status));
    // A second daemon on the same environment and state dir is refused: it would split the
    // queue's events.
    let second = drflow_in(
        state,
        &["daemon", "--params-file", EU, "--listen", "127.0.0.1:0"],
    );
    assert_eq!(second.status.code(), Some(2), "{}", stderr(&second));
    assert!(
        stderr(&second).contains("another daemon (pid"),
        "{}",
        stderr(&second)
    );
    let pid = child.id().to_string();
    let kill = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(kill.success());
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{rest:?}");
    assert!(
        rest.iter().any(|l| l.contains("daemon: stopped")),
        "{rest:?}"
    );
    assert!(
        TcpStream::connect(&addr).is_err(),
        "nothing listens after the exit"
    );
}

#[test]
fn check_says_what_it_would_watch_and_contacts_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = daemon(dir.path(), &["--check"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(text.contains("drflow.yaml: 2 triggers, valid"), "{text}");
    assert!(
        text.contains("primary-down: 2 of 2 signals within 5m"),
        "{text}"
    );
    assert!(
        text.contains("queue alarm-events-prod-eu in eu-central-1"),
        "{text}"
    );
    assert!(
        !dir.path().join("daemon.db").exists() && !dir.path().join("journal.db").exists(),
        "--check writes nothing"
    );
}

#[test]
fn bad_input_is_refused_with_exit_2_and_nothing_started() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path();
    let bad_trigger = state.join("bad.yaml");
    std::fs::write(
        &bad_trigger,
        "version: 1\ntriggers:\n  - name: t\n    runbook: runbooks/failover.yaml\n    signals:\n      - name: s\n        pattern: { source: [{ prefx: aws. }] }\n    require: 1 of 1\n    within: 5m\n    cooldown: 0s\n",
    )
    .unwrap();
    let bad_trigger = bad_trigger.display().to_string();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--listen", "0.0.0.0:9464"], "not a loopback address"),
        (vec!["--config", "nosuch.yaml"], "nosuch.yaml"),
        (vec!["--config", &bad_trigger], "prefx"),
        (vec!["-p", "quorum=many"], "quorum"),
        (vec!["--reconcile-every", "soon"], "soon"),
        // Not provisioned: the queue it would read does not exist.
        (vec!["-p", "env_suffix=nosuch", "--for", "1m"], "provision"),
        (vec!["--lease-ttl", "1s"], "at least 3s"),
        // A shared journal: only a DynamoDB table, and only on --target aws.
        (
            vec!["--journal", "drflow-state-prod-eu"],
            "dynamodb://TABLE",
        ),
        (
            vec!["--journal", "dynamodb://ab"],
            "not a DynamoDB table name",
        ),
        (
            vec!["--journal", "dynamodb://drflow-state-prod-eu?region=mars-1"],
            "not an AWS region",
        ),
        (
            vec![
                "--journal",
                "dynamodb://drflow-state-prod-eu?region=eu-central-1",
                "--for",
                "1m",
            ],
            "add --target aws",
        ),
        // Two daemons must write to one replica: the daemon wants it named.
        (
            vec!["--journal", "dynamodb://drflow-state-prod-eu"],
            "give the region",
        ),
        // ... and it must be the standby region's.
        (
            vec![
                "--journal",
                "dynamodb://drflow-state-prod-eu?region=eu-south-1",
            ],
            "standby region is eu-central-1",
        ),
    ];
    for (extra, says) in cases {
        let mut args = vec!["daemon", "--params-file", EU];
        if !extra.contains(&"--listen") {
            args.extend(["--listen", "127.0.0.1:0"]);
        }
        args.extend_from_slice(&extra);
        let out = drflow_in(state, &args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {err}");
        assert!(
            err.contains(says),
            "{extra:?} should mention {says:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
    // The trigger file's mistake is located.
    let out = drflow_in(
        state,
        &["daemon", "--config", &bad_trigger, "--params-file", EU],
    );
    assert!(stderr(&out).contains("bad.yaml:7:"), "{}", stderr(&out));
    let journal = state.join("journal.db");
    assert!(
        !journal.exists() || runs_of(state, "failover").is_empty(),
        "nothing ran"
    );
}

#[test]
fn prune_deletes_old_ended_runs_and_keeps_every_failover() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path();
    provisioned(state);
    drflow_in(state, &["sim", "fault", "region-outage"]);
    let out = daemon(state, &["--for", "15m"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(runs_of(state, "provision").len(), 1);
    // On the sim, ages are on its virtual clock: the provision ended 25 minutes ago there. By
    // default provision runs are kept too (`drflow outputs` reads the latest).
    let out = drflow_in(state, &["runs", "prune", "--older-than", "10m"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("deleted 0 runs"), "{}", stderr(&out));
    assert_eq!(runs_of(state, "provision").len(), 1);
    let keep_failovers = ["runs", "prune", "--older-than", "10m", "--keep", "failover"];
    let mut dry = keep_failovers.to_vec();
    dry.push("--dry-run");
    let out = drflow_in(state, &dry);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("would delete"), "{}", stdout(&out));
    assert_eq!(
        runs_of(state, "provision").len(),
        1,
        "a dry run deletes nothing"
    );
    let out = drflow_in(state, &keep_failovers);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("deleted 1 run"), "{}", stderr(&out));
    assert!(runs_of(state, "provision").is_empty());
    assert_eq!(
        runs_of(state, "failover").len(),
        2,
        "a failover's record stays"
    );
    let out = drflow_in(state, &["runs", "prune", "--older-than", "yesterday"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

/// `--journal` for the commands that read runs: refused without `--target aws`, and without a
/// region to find the table in; contacts nothing either way.
#[test]
fn a_shared_journal_needs_the_aws_target_and_a_region() {
    let dir = tempfile::tempdir().unwrap();
    let out = drflow_in(
        dir.path(),
        &["runs", "--journal", "dynamodb://drflow-state-prod-eu"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("add --target aws"),
        "{}",
        stderr(&out)
    );
    let out = Command::new(env!("CARGO_BIN_EXE_drflow"))
        .args([
            "--target",
            "aws",
            "--journal",
            "dynamodb://drflow-state-prod-eu",
            "runs",
        ])
        .env("DRFLOW_STATE_DIR", dir.path())
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("?region=REGION"), "{}", stderr(&out));
    assert!(!dir.path().join("journal.db").exists(), "nothing written");
}
