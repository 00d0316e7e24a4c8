//! `drflow plan`: the forecast of a run on the state dir's simulated world, through the binary.
//! Each step's start and duration come from the sim's clock, the critical path from the step
//! that ends last back through the need that ended last, a failover's RTO is judged against
//! `--rto`; the world and the journal are left byte for byte as they were; bad input exits 2.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

const EU: &[&str] = &["--params-file", "runbooks/params/eu.yaml"];
/// Failover records: Route 53 answers with the standby once the primary's health check fails.
const US: &[&str] = &["--params-file", "runbooks/params/us-east.yaml"];

fn drflow(state: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_drflow"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("DRFLOW_STATE_DIR", state)
        .env_remove("DRFLOW_TARGET")
        .env_remove("DRFLOW_LOG")
        .stdin(Stdio::null());
    c
}

fn run(state: &Path, args: &[&str]) -> Output {
    drflow(state).args(args).output().expect("drflow runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn run_ok(state: &Path, args: &[&str]) {
    let out = run(state, args);
    assert!(
        out.status.success(),
        "drflow {args:?}: {}",
        text(&out.stderr)
    );
}

fn args<'a>(head: &[&'a str], tail: &[&'a str]) -> Vec<&'a str> {
    [head, tail].concat()
}

/// Every file under the state directory with its bytes.
fn files(state: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut dirs = vec![state.to_path_buf()];
    while let Some(d) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else {
                out.insert(p.clone(), std::fs::read(&p).expect("read"));
            }
        }
    }
    out
}

/// A provisioned world, 15 minutes on so that every check and alarm has settled.
fn provisioned(params: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    run_ok(
        dir.path(),
        &args(&["run", "runbooks/provision.yaml"], params),
    );
    run_ok(dir.path(), &["sim", "advance", "15m"]);
    dir
}

/// `drflow plan RUNBOOK --output json` plus `extra`: the exit code and the document.
fn plan_json(state: &Path, runbook: &str, extra: &[&str]) -> (i32, Value) {
    let out = run(state, &args(&["plan", runbook, "--output", "json"], extra));
    let doc = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "one JSON document ({e}): {}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        )
    });
    (out.status.code().expect("exit code"), doc)
}

fn step<'a>(doc: &'a Value, id: &str) -> &'a Value {
    doc["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("step {id} in {doc:#}"))
}

fn path(doc: &Value) -> Vec<&str> {
    doc["critical_path"]
        .as_array()
        .expect("critical_path")
        .iter()
        .map(|v| v.as_str().expect("id"))
        .collect()
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("a number, not {v}"))
}

#[test]
fn a_healthy_world_holds_and_nothing_is_moved() {
    let dir = provisioned(EU);
    let state = dir.path();
    let before = files(state);
    let (code, doc) = plan_json(state, "runbooks/failover.yaml", EU);
    assert_eq!(code, 0, "{doc:#}");
    let decision = step(&doc, "decide")["outputs"]["decision"]
        .as_str()
        .unwrap();
    assert!(["hold", "none"].contains(&decision), "{decision}");
    for id in ["fence", "promote", "scale", "traffic", "verify"] {
        assert_eq!(step(&doc, id)["status"], "skipped", "{id}");
    }
    assert_eq!(doc["forecast_rto_seconds"], Value::Null);
    assert_eq!(doc["within"], Value::Null);
    assert_eq!(doc["objective_seconds"], 300.0);
    // Reading stops after detection_timeout + confirm_window (60 s + 60 s) on the sim's clock.
    let signals = step(&doc, "signals");
    assert_eq!(f(&signals["start_seconds"]), 0.0);
    assert!(
        (119.0..=121.0).contains(&f(&signals["duration_seconds"])),
        "{signals}"
    );
    assert!(
        (120.0..=125.0).contains(&f(&doc["duration_seconds"])),
        "{doc:#}"
    );
    let p = path(&doc);
    assert_eq!(p[..2], ["discover", "signals"], "{p:?}");
    assert!(p.contains(&"decide") && !p.contains(&"promote"), "{p:?}");
    assert_eq!(
        files(state),
        before,
        "world and journal byte for byte as before"
    );

    let out = run(state, &args(&["plan", "runbooks/failover.yaml"], EU));
    assert_eq!(out.status.code(), Some(0));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(&format!("decision: {decision}")),
        "{stdout}"
    );
    assert!(
        stdout.contains("Forecast RTO: none: the run would not move traffic"),
        "{stdout}"
    );
    assert!(text(&out.stderr).contains("nothing is changed"));
}

#[test]
fn a_region_outage_forecasts_a_failover_within_five_minutes() {
    let dir = provisioned(US);
    let state = dir.path();
    run_ok(state, &["sim", "fault", "region-outage"]);
    run_ok(state, &["sim", "advance", "2m"]);
    let before = files(state);

    let (code, doc) = plan_json(state, "runbooks/failover.yaml", US);
    assert_eq!(code, 0, "{doc:#}");
    let decide = &step(&doc, "decide")["outputs"];
    assert_eq!(decide["decision"], "failover", "{decide}");
    assert!(
        decide["reason"]
            .as_str()
            .unwrap()
            .contains("managed failover")
    );
    let promote = step(&doc, "promote");
    assert_eq!(promote["outputs"]["mode"], "failover");
    assert!(
        promote["actions"][0]
            .as_str()
            .unwrap()
            .starts_with("FailoverGlobalCluster aurora-global-prod-us"),
        "{promote}"
    );
    // The sim's managed failover: 60 s, plus the call.
    assert!(
        (59.0..=62.0).contains(&f(&promote["duration_seconds"])),
        "{promote}"
    );
    assert_eq!(step(&doc, "scale")["outputs"]["target_capacity"], 2);
    let p = path(&doc);
    let at = |id: &str| p.iter().position(|s| *s == id);
    assert!(
        at("signals") < at("decide")
            && at("decide") < at("promote")
            && at("promote") < at("traffic"),
        "{p:?}"
    );
    assert!(
        at("scale").is_none(),
        "the promotion outlasts the scaling: {p:?}"
    );
    // Each step on the path starts when the one before it ends.
    for w in p.windows(2) {
        let (a, b) = (step(&doc, w[0]), step(&doc, w[1]));
        let end = f(&a["start_seconds"]) + f(&a["duration_seconds"]);
        assert!(
            (f(&b["start_seconds"]) - end).abs() < 0.05,
            "{} -> {}",
            w[0],
            w[1]
        );
    }
    let last = step(&doc, p.last().unwrap());
    let end = f(&last["start_seconds"]) + f(&last["duration_seconds"]);
    assert!((end - f(&doc["duration_seconds"])).abs() < 0.05, "{doc:#}");

    // The runbook counts to Route 53 answering with the standby; clients keep the old answer
    // up to the alias record's 60 s TTL.
    let runbook_rto = f(&doc["runbook_rto_seconds"]);
    assert_eq!(doc["client_ttl_seconds"], 60.0);
    assert_eq!(f(&doc["forecast_rto_seconds"]), runbook_rto + 60.0);
    assert!(
        runbook_rto > 120.0,
        "the outage began 2 minutes before the run: {runbook_rto}"
    );
    // Route 53 saw it fail about 36 s after it began (10 s x 3 + up to 6 s).
    let first = f(&doc["first_failure_seconds"]);
    assert!((-95.0..=-80.0).contains(&first), "{first}");
    assert_eq!(
        step(&doc, "report")["actions"],
        serde_json::json!([]),
        "each action once, under the step that makes it"
    );
    assert_eq!(doc["within"], true);
    assert!(f(&doc["forecast_rto_seconds"]) <= 300.0);
    assert_eq!(
        files(state),
        before,
        "world and journal byte for byte as before"
    );
    let (_, again) = plan_json(state, "runbooks/failover.yaml", US);
    assert_eq!(
        again, doc,
        "the sim is deterministic: the same world, the same forecast"
    );

    // The text form, and a tighter objective that the forecast misses: exit 1.
    let out = run(state, &args(&["plan", "runbooks/failover.yaml"], US));
    assert_eq!(out.status.code(), Some(0));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("decision: failover"), "{stdout}");
    assert!(stdout.contains("Critical path (the steps that decide the end time): discover"));
    assert!(stdout.contains("promote 60.1s ->"), "{stdout}");
    assert!(
        stdout.contains("Objective: RTO 5m00s (300s): within"),
        "{stdout}"
    );
    let out = run(
        state,
        &args(&["plan", "runbooks/failover.yaml", "--rto", "2m"], US),
    );
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    let miss = f(&doc["forecast_rto_seconds"]) - 120.0;
    assert!(
        stdout.contains(&format!(
            "Objective: RTO 2m00s (120s): misses by {miss:.0}s"
        )),
        "{stdout}"
    );
    assert_eq!(
        files(state),
        before,
        "world and journal byte for byte as before"
    );
}

#[test]
fn provision_on_an_empty_world_lists_what_it_creates_on_the_sims_timings() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let (code, doc) = plan_json(&state, "runbooks/provision.yaml", EU);
    assert_eq!(code, 0, "{doc:#}");
    assert!(
        !state.exists(),
        "a plan creates nothing, not even the state dir"
    );
    let vpc = step(&doc, "vpc_primary");
    assert!(
        vpc["actions"]
            .as_array()
            .unwrap()
            .contains(&Value::from("+ vpc vpc-prod-eu (eu-south-1)")),
        "{vpc}"
    );
    let config = drflow_steps::sim::SimConfig::default();
    let secs = |ms: u64| ms as f64 / 1000.0;
    // Two NAT gateways one after the other in the primary, one in the standby.
    let nat = secs(config.nat_gateway_create_ms);
    let d = f(&vpc["duration_seconds"]);
    assert!((2.0 * nat..2.0 * nat + 3.0).contains(&d), "{d}");
    let d = f(&step(&doc, "vpc_standby")["duration_seconds"]);
    assert!((nat..nat + 3.0).contains(&d), "{d}");
    let alb = step(&doc, "alb_primary");
    let d = f(&alb["duration_seconds"]);
    let want = secs(config.alb_create_ms);
    assert!((want..want + 2.0).contains(&d), "{d}");
    // The ALB waits for its VPC: it starts when vpc_primary (and its security groups) are done.
    assert!(f(&alb["start_seconds"]) >= f(&vpc["duration_seconds"]));
    let db = f(&step(&doc, "database")["duration_seconds"]);
    assert!(db >= secs(config.aurora_cluster_create_ms + config.aurora_instance_create_ms));
    let p = path(&doc);
    assert!(
        p.contains(&"database"),
        "the Aurora clusters take longest: {p:?}"
    );
    assert_eq!(p.last(), Some(&"readiness"));
    assert_eq!(doc["forecast_rto_seconds"], Value::Null);
    assert_eq!(doc["within"], Value::Null);
    assert_eq!(doc["status"], "succeeded");

    let out = run(&state, &args(&["plan", "runbooks/provision.yaml"], EU));
    assert_eq!(out.status.code(), Some(0));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("+ vpc vpc-prod-eu (eu-south-1)\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("to create, 0 to change, 0 to delete."),
        "{stdout}"
    );
    assert!(
        !stdout.contains("Forecast RTO"),
        "no RTO for a provision: {stdout}"
    );
    assert!(text(&out.stderr).contains("holds no simulated world yet"));
    assert!(!state.exists());
}

#[test]
fn a_step_that_would_fail_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let (code, doc) = plan_json(dir.path(), "runbooks/failover.yaml", EU);
    assert_eq!(code, 1, "{doc:#}");
    assert_eq!(doc["status"], "failed");
    assert_eq!(step(&doc, "discover")["status"], "failed");
    assert_eq!(doc["failed"][0]["step"], "discover", "{doc:#}");
    let out = run(dir.path(), &args(&["plan", "runbooks/failover.yaml"], EU));
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("! step `discover` would fail:"));
    assert!(files(dir.path()).is_empty());
}

/// Runs `drflow plan …` expecting bad input: exit 2, nothing on stdout, `needle` on stderr,
/// nothing written.
fn refused(state: &Path, argv: &[&str], needle: &str) -> String {
    let before = files(state);
    let out = run(state, argv);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{argv:?}: {stderr}");
    assert!(out.stdout.is_empty(), "{argv:?}: {}", text(&out.stdout));
    assert!(stderr.contains(needle), "{argv:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(files(state), before);
    stderr
}

#[test]
fn bad_input_exits_2_and_runs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let fo = "runbooks/failover.yaml";

    // A runbook that does not compile: located.
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "runbook: bad\nsteps:\n  - id: a\n    uses: core.nope\n",
    )
    .unwrap();
    let bad = bad.display().to_string();
    refused(&state, &["plan", &bad], &format!("{bad}:4:"));
    refused(
        &state,
        &["plan", "runbooks/nope.yaml"],
        "cannot read runbooks/nope.yaml",
    );

    // Parameters: unknown, of the wrong type, not NAME=VALUE, a params file that is not there.
    refused(&state, &args(&["plan", fo, "-p", "quorom=2"], EU), "quorom");
    refused(
        &state,
        &args(&["plan", fo, "-p", "quorum=lots"], EU),
        "quorum",
    );
    refused(&state, &["plan", fo, "-p", "quorum"], "NAME=VALUE");
    refused(
        &state,
        &["plan", fo, "--params-file", "nope.yaml"],
        "nope.yaml",
    );

    // The objective.
    refused(&state, &args(&["plan", fo, "--rto", "soon"], EU), "--rto");
    refused(
        &state,
        &args(&["plan", fo, "--rto", "0s"], EU),
        "more than zero",
    );

    // No simulated world to forecast on.
    let stderr = refused(
        &state,
        &args(&["--target", "aws", "plan", fo], EU),
        "--target aws",
    );
    assert!(
        stderr.contains("simulated cloud") && stderr.contains("hint:"),
        "{stderr}"
    );
    assert!(
        stderr.contains("drflow run runbooks/provision.yaml"),
        "{stderr}"
    );
    std::fs::create_dir_all(state.join("sim")).unwrap();
    std::fs::write(state.join("sim/world.json"), "{ not a world").unwrap();
    let stderr = refused(
        &state,
        &args(&["plan", fo], EU),
        "cannot read the simulated world",
    );
    assert!(
        stderr.contains("hint:") && stderr.contains("--state-dir"),
        "{stderr}"
    );
}

#[test]
fn bad_input_with_output_json_is_one_json_document() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        dir.path(),
        &args(
            &[
                "plan",
                "runbooks/failover.yaml",
                "-p",
                "quorum=lots",
                "--output",
                "json",
            ],
            EU,
        ),
    );
    assert_eq!(out.status.code(), Some(2));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(doc["status"], "invalid");
    assert!(
        doc["errors"][0].as_str().unwrap().contains("quorum"),
        "{doc:#}"
    );
}
