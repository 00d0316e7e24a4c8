//! The simulated cloud across processes: `provision`, `sim show`, a second `provision`,
//! `destroy` and `sim reset` each run as their own `drflow` process on one state directory.

use std::process::Command;

fn drflow(state: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_drflow"))
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR")))
        .env("DRFLOW_STATE_DIR", state)
        .env_remove("DRFLOW_TARGET")
        .stdin(std::process::Stdio::null())
        .args(args)
        .output()
        .expect("run drflow");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn provision_show_rerun_destroy_in_separate_processes() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path();
    let params = [
        "--params-file",
        "runbooks/params/eu.yaml",
        "--output",
        "json",
    ];

    let (code, out, err) = drflow(
        state,
        &[&["run", "runbooks/provision.yaml"][..], &params].concat(),
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("on target sim"),
        "the target is printed: {err}"
    );
    let first: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(first["outputs"]["failover_ready"], true);

    let (code, table, _) = drflow(state, &["sim", "show"]);
    assert_eq!(code, 0);
    assert!(
        table.contains("eu-south-1")
            && table.contains("eu-central-1")
            && table.contains("aurora-cluster-prod-eu")
    );

    let (code, out, err) = drflow(
        state,
        &[&["run", "runbooks/provision.yaml"][..], &params].concat(),
    );
    assert_eq!(code, 0, "{err}");
    let second: serde_json::Value = serde_json::from_str(&out).unwrap();
    let changed: Vec<&serde_json::Value> = second["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["outputs"]["change"] != "unchanged")
        .collect();
    assert!(changed.is_empty(), "second provision changed: {changed:?}");
    // Counted in resources: the second provision finds every one the first created.
    let created = first["changes"]["created"].as_u64().unwrap_or(0);
    assert!(created > 100, "{first:#}");
    assert_eq!(second["changes"]["created"], 0);
    assert_eq!(second["changes"]["updated"], 0);
    assert_eq!(second["changes"]["unchanged"], created);
    assert_eq!(first["outputs"], second["outputs"]);

    // People see it said plainly.
    let (code, text, _) = drflow(
        state,
        &[
            "run",
            "runbooks/provision.yaml",
            "--params-file",
            "runbooks/params/eu.yaml",
        ],
    );
    assert_eq!(code, 0);
    assert!(
        text.contains(&format!(
            "resources: no changes ({created} resources as they should be)"
        )),
        "{text}"
    );

    let (code, out, err) = drflow(
        state,
        &[&["run", "runbooks/destroy.yaml", "--yes"][..], &params].concat(),
    );
    assert_eq!(code, 0, "{err}");
    let destroyed: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        destroyed["changes"]["deleted"].as_u64(),
        Some(created),
        "{destroyed:#}"
    );
    assert_eq!(destroyed["changes"]["created"], 0);
    let (_, table, _) = drflow(state, &["sim", "show"]);
    assert!(table.contains("0 resource(s)"), "{table}");

    let (code, out, _) = drflow(state, &["sim", "reset"]);
    assert_eq!(code, 0);
    assert!(out.contains("cleared"));
}

/// A state directory holding a provisioned eu world, settled for ten minutes: provisioned once
/// per test binary, copied for each test.
fn provisioned() -> tempfile::TempDir {
    static ONCE: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    let src = ONCE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let (code, _, err) = drflow(
            dir.path(),
            &[
                "run",
                "runbooks/provision.yaml",
                "--params-file",
                "runbooks/params/eu.yaml",
            ],
        );
        assert_eq!(code, 0, "{err}");
        let (code, _, err) = drflow(dir.path(), &["sim", "advance", "10m"]);
        assert_eq!(code, 0, "{err}");
        dir
    });
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("sim")).unwrap();
    std::fs::copy(
        src.path().join("sim/world.json"),
        dir.path().join("sim/world.json"),
    )
    .unwrap();
    dir
}

fn world_bytes(state: &std::path::Path) -> Vec<u8> {
    std::fs::read(state.join("sim/world.json")).unwrap()
}

/// Runs a `drflow sim fault …` that must be refused: exit 2, the message and hint, and the
/// world file untouched.
fn refused(args: &[&str], message: &str, hint: &str) {
    let dir = provisioned();
    let before = world_bytes(dir.path());
    let (code, out, err) = drflow(dir.path(), args);
    assert_eq!(code, 2, "{args:?}: {out}{err}");
    assert!(err.contains(message), "{args:?}: {err}");
    assert!(err.contains(&format!("hint: {hint}")), "{args:?}: {err}");
    assert_eq!(
        world_bytes(dir.path()),
        before,
        "{args:?} changed the world"
    );
}

#[test]
fn an_unknown_fault_kind_suggests_the_nearest() {
    refused(
        &["sim", "fault", "regoin-outage"],
        "unknown fault kind \"regoin-outage\"",
        "did you mean region-outage?",
    );
    refused(
        &["sim", "heal", "partitoin"],
        "unknown fault kind",
        "did you mean partition?",
    );
}

#[test]
fn a_bad_duration_is_refused() {
    refused(
        &["sim", "fault", "lag-spike", "--for", "5x"],
        "--for: \"5x\" is not a duration (unknown unit \"x\"",
        "durations look like 90s",
    );
    refused(
        &["sim", "advance", "soon"],
        "is not a duration",
        "durations look like 90s",
    );
    refused(
        &["sim", "fault", "lag-spike", "--for", "0s"],
        "must last longer than 0 s",
        "give --for a positive duration",
    );
}

#[test]
fn an_unknown_region_or_zone_is_refused() {
    refused(
        &["sim", "fault", "region-outage", "--region", "eu-south-2"],
        "unknown region \"eu-south-2\"",
        "did you mean eu-south-1?",
    );
    refused(
        &["sim", "fault", "az-loss", "--az", "eu-south-1q"],
        "unknown availability zone \"eu-south-1q\" in eu-south-1",
        "zones: eu-south-1a, eu-south-1b",
    );
    refused(
        &["sim", "fault", "partition", "--az", "eu-south-1a"],
        "--az only applies to az-loss",
        "leave out --az",
    );
}

#[test]
fn a_start_in_the_past_is_refused() {
    refused(
        &["sim", "fault", "partition", "--at", "-5m"],
        "would start 300s in the past",
        "give --at as a delay from now",
    );
    refused(
        &["sim", "fault", "partition", "--at", "2026-01-01T00:00:00Z"],
        "in the past",
        "give --at as a delay from now",
    );
    refused(
        &["sim", "fault", "partition", "--at", "30s"],
        "expected +DURATION",
        "e.g. --at +30s",
    );
}

#[test]
fn a_fault_on_an_empty_world_says_to_provision_first() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = drflow(dir.path(), &["sim", "fault", "region-outage"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("the simulated cloud is empty"), "{err}");
    assert!(err.contains("hint: build something first"), "{err}");
    assert!(!dir.path().join("sim/world.json").exists());
}

#[test]
fn fault_advance_status_and_heal_play_out_across_processes() {
    let dir = provisioned();
    let state = dir.path();
    let (code, out, err) = drflow(state, &["sim", "fault", "region-outage", "--for", "10m"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("fault #1 region-outage in eu-south-1 from now to"),
        "{out}"
    );
    let (code, out, _) = drflow(state, &["sim", "fault", "lag-spike", "--at", "+1m"]);
    assert_eq!(code, 0);
    assert!(out.contains("fault #2 lag-spike in every region"), "{out}");
    let (code, _, _) = drflow(state, &["sim", "advance", "45s"]);
    assert_eq!(code, 0);
    let (code, out, err) = drflow(state, &["sim", "status", "--output", "json"]);
    assert_eq!(code, 0, "{err}");
    let status: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(status["writer_region"], "eu-south-1");
    let region = |name: &str| {
        status["regions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["region"] == name)
            .unwrap()
            .clone()
    };
    let primary = region("eu-south-1");
    assert_eq!(primary["up"], false);
    assert_eq!(primary["health_check"]["healthy"], false);
    assert_eq!(primary["health_check"]["checkers_healthy"], 0);
    let standby = region("eu-central-1");
    assert_eq!(standby["database"]["writer"], false);
    assert!(standby["database"]["replication_lag_ms"].as_u64().unwrap() <= 1000);
    assert_eq!(standby["groups"][0]["in_service"], 1);
    assert_eq!(status["faults"].as_array().unwrap().len(), 2);
    let (code, text, _) = drflow(state, &["sim", "status"]);
    assert_eq!(code, 0);
    assert!(text.contains("eu-south-1 (DOWN)  writer"), "{text}");
    assert!(
        text.contains("UNHEALTHY (0/15 checkers healthy, 0%)"),
        "{text}"
    );
    let (code, out, _) = drflow(state, &["sim", "heal", "region-outage"]);
    assert_eq!(code, 0);
    assert_eq!(out.trim(), "healed fault(s) #1");
    let (_, out, _) = drflow(state, &["sim", "heal"]);
    assert_eq!(out.trim(), "healed fault(s) #2");
    let (_, out, _) = drflow(state, &["sim", "heal"]);
    assert_eq!(out.trim(), "no fault to heal");
}

/// A run holding the world (on its clock, between checkpoints) makes another process wait, with
/// a message, and the other process then sees the run's changes and keeps its own.
#[test]
fn a_second_process_waits_for_the_run_holding_the_world_and_loses_nothing() {
    use std::io::{BufRead, BufReader};
    use std::sync::Arc;

    use drflow_steps::CloudBackend;
    use drflow_steps::sim::FaultKind;

    let dir = provisioned();
    let state = dir.path();
    // The clock is only read here, never slept on: a plain runtime will do.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _enter = rt.enter();
    let base = drflow_steps::sim::load_world(&drflow_steps::sim::world_path(state))
        .unwrap()
        .clock_ms;
    let clock = Arc::new(drflow_engine::VirtualClock::new(base));
    let run = drflow_steps::SimBackend::open(state).with_clock(clock);
    // The run changes the world and has not checkpointed yet: the file does not have it.
    run.mutate(|w| w.config.lag_spike_ms = 99_000).unwrap();
    assert_ne!(
        drflow_steps::sim::load_world(&drflow_steps::sim::world_path(state))
            .unwrap()
            .config
            .lag_spike_ms,
        99_000
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_drflow"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("DRFLOW_STATE_DIR", state)
        .args(["sim", "fault", "partition"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    assert!(
        line.contains("waiting for the simulated cloud") && line.contains("another drflow process"),
        "{line}"
    );
    run.checkpoint().unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let world = drflow_steps::sim::load_world(&drflow_steps::sim::world_path(state)).unwrap();
    assert_eq!(world.config.lag_spike_ms, 99_000);
    assert_eq!(world.faults.list.len(), 1);
    assert_eq!(world.faults.list[0].kind, FaultKind::Partition);
    // And the run, at its next call, sees the fault the other process injected.
    let status = run.status().unwrap();
    assert_eq!(status.faults.len(), 1);
    drop(run);
}
