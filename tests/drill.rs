//! `drflow drill` through the binary: every scenario's decision and objectives (one `--all`
//! run, shared by the tests of this file), the JSON report's shape, the text timeline's order,
//! `--report`, `--state-dir`, and each kind of bad input (exit 2, nothing played).
//!
//! Every drill runs on the simulated cloud's virtual clock: minutes of outage, no sleeps.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

/// `drflow` in `dir` (the repository root unless said), with no state or log settings inherited.
fn drflow_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_drflow"))
        .args(args)
        .current_dir(dir)
        .env_remove("DRFLOW_STATE_DIR")
        .env_remove("DRFLOW_TARGET")
        .env_remove("DRFLOW_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("drflow runs")
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn drflow(args: &[&str]) -> Output {
    drflow_in(repo(), args)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Every scenario's report, from one `drflow drill --all --output json`.
fn all() -> &'static Vec<Value> {
    static ALL: OnceLock<Vec<Value>> = OnceLock::new();
    ALL.get_or_init(|| {
        let out = drflow(&["drill", "--all", "--output", "json"]);
        let reports: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("a JSON list ({e}): {}", stderr(&out)));
        let list = reports.as_array().expect("a list").clone();
        let met = list.iter().all(|r| r["objectives_met"] == true);
        assert_eq!(
            out.status.code(),
            Some(if met { 0 } else { 1 }),
            "exit 0 exactly when every scenario met its objectives: {}",
            stderr(&out)
        );
        list
    })
}

fn scenario(name: &str) -> &'static Value {
    all()
        .iter()
        .find(|r| r["scenario"] == name)
        .unwrap_or_else(|| panic!("{name} in --all"))
}

fn events(r: &Value) -> Vec<&str> {
    r["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect()
}

/// The scenario decided as expected, met its objectives (RTO within 5 min, RPO within 1 min),
/// and its timeline starts with the fault.
fn assert_met(name: &str, decision: &str) -> &'static Value {
    let r = scenario(name);
    assert_eq!(r["decision"], decision, "{name}: {r:#}");
    assert_eq!(r["decision_right"], true, "{name}");
    assert_eq!(r["objectives_met"], true, "{name}: {r:#}");
    if let Some(rto) = r["rto_seconds"].as_f64() {
        assert!(rto <= 300.0, "{name}: RTO {rto}");
    }
    assert!(r["rpo_seconds"].as_f64().unwrap() <= 60.0, "{name}");
    assert_eq!(events(r)[0], "fault", "{name}");
    r
}

/// A failover's figures add up: RTO = critical path + engine share, each the sum of its stages.
fn assert_adds_up(r: &Value) {
    let rto = r["rto_seconds"].as_f64().expect("an RTO");
    let cp = r["critical_path_seconds"]
        .as_f64()
        .expect("a critical path");
    let engine = r["engine_seconds"].as_f64().expect("an engine share");
    assert!(
        (rto - (cp + engine)).abs() < 0.01,
        "{rto} vs {cp} + {engine}"
    );
    let sum = |k: &str| -> f64 {
        r[k].as_array()
            .unwrap()
            .iter()
            .map(|s| s["seconds"].as_f64().unwrap())
            .sum()
    };
    assert!((sum("critical_path") - cp).abs() < 0.01);
    assert!((sum("engine") - engine).abs() < 0.01);
}

#[test]
fn region_outage_fails_over_within_5_s_of_the_critical_path() {
    let r = assert_met("region-outage", "failover");
    assert_adds_up(r);
    let rto = r["rto_seconds"].as_f64().unwrap();
    let cp = r["critical_path_seconds"].as_f64().unwrap();
    assert!(rto - cp <= 5.0, "RTO {rto} vs critical path {cp}");
    assert!(r["engine_seconds"].as_f64().unwrap() < 1.0, "{r:#}");
    let stages: Vec<&str> = r["critical_path"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    // Route 53's health-based answers send the client to the standby as soon as it serves: the
    // run's DNS change, in sync a minute later, is not on the path.
    assert_eq!(stages, ["detection", "delivery", "promotion", "clients"]);
    let e = events(r);
    for needed in [
        "first_failed_request",
        "first_failed_health_check",
        "health_check_unhealthy",
        "alarm",
        "trigger",
        "run_started",
        "decision",
        "promotion_done",
        "capacity_ready",
        "dns_changed",
        "first_standby_success",
    ] {
        assert!(e.contains(&needed), "{needed} in {e:?}");
    }
    // The trigger's evidence names the signals behind it.
    let signals = r["trigger"]["signals"].as_array().unwrap();
    assert!(!signals.is_empty());
    assert!(signals.iter().all(|s| s["state"] == "ALARM"), "{signals:?}");
}

#[test]
fn an_unreachable_primary_is_shown_not_fenced_in_the_timeline() {
    let r = scenario("region-outage");
    let fence: Vec<&Value> = r["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "fence")
        .collect();
    assert_eq!(fence.len(), 1, "{:?}", events(r));
    let detail = fence[0]["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("not fenced: eu-south-1 cannot be reached"),
        "{detail}"
    );
}

#[test]
fn one_lost_write_costs_one_write_interval_of_rpo() {
    // 1 lost write is a second of data lost: from the last write the new writer holds.
    for name in ["region-outage", "capacity-short"] {
        let r = scenario(name);
        assert_eq!(r["lost_writes"], 1, "{name}");
        assert_eq!(r["rpo_seconds"], 1.0, "{name}");
    }
    assert_eq!(scenario("db-failure")["rpo_seconds"], 0.0);
}

#[test]
fn an_rpo_objective_of_0s_is_not_met_when_a_write_is_lost() {
    let out = drflow(&[
        "drill",
        "--scenario",
        "region-outage",
        "-p",
        "rpo_objective=0s",
        "--output",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["objectives_met"], false, "{r:#}");
    assert_eq!(r["rpo_seconds"], 1.0);
}

/// A drill whose client is still failing at the horizon: not recovered, RTO not met.
fn assert_not_recovered(r: &Value) {
    assert_eq!(r["recovered"], false, "{r:#}");
    assert!(r["rto_seconds"].is_null());
    assert!(r["unrecovered_seconds"].as_f64().unwrap() > 800.0, "{r:#}");
    assert_eq!(r["objectives_met"], false);
    assert!(events(r).contains(&"not_recovered"), "{:?}", events(r));
}

#[test]
fn a_blocked_failover_leaves_the_client_down_and_the_objectives_not_met() {
    // With no data loss allowed, blocking is the right decision, but nothing recovers.
    let out = drflow(&[
        "drill",
        "--scenario",
        "region-outage",
        "-p",
        "max_data_loss=0s",
        "--output",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["decision"], "blocked");
    assert_eq!(r["decision_right"], true, "{r:#}");
    assert_not_recovered(&r);
}

#[test]
fn a_layout_whose_alarms_go_dark_with_the_primary_is_reported_not_recovered() {
    // With the primary in us-east-1, the health check alarms die with the region. A
    // drflow.yaml that listens to the alarms alone never starts the failover: the drill says
    // so, and the verdict fails.
    let dir = tempfile::tempdir().unwrap();
    let shipped = std::fs::read_to_string(repo().join("drflow.yaml")).unwrap();
    let alarms_only = shipped
        .split("  - name: primary-unreachable")
        .next()
        .unwrap()
        .replace(
            "runbook: runbooks/failover.yaml",
            &format!(
                "runbook: {}",
                repo().join("runbooks/failover.yaml").display()
            ),
        );
    let config = dir.path().join("alarms-only.yaml");
    std::fs::write(&config, alarms_only).unwrap();
    let out = drflow(&[
        "drill",
        "--scenario",
        "region-outage",
        "--params-file",
        "runbooks/params/us-east.yaml",
        "--config",
        config.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("RTO       not recovered within"), "{text}");
    assert!(!text.contains("never failed"), "{text}");
    assert!(text.contains("verdict   NOT MET"), "{text}");
    assert!(
        text.contains("then runbooks/params/us-east.yaml (--params-file)"),
        "{text}"
    );
}

#[test]
fn drflows_probe_fails_over_the_layout_whose_alarms_go_dark() {
    // The shipped drflow.yaml also listens to drflow's probe from the standby region.
    let out = drflow(&[
        "drill",
        "--scenario",
        "region-outage",
        "--params-file",
        "runbooks/params/us-east.yaml",
        "--output",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["decision"], "failover", "{r:#}");
    assert_eq!(r["trigger"]["trigger"], "primary-unreachable", "{r:#}");
    assert!(r["rto_seconds"].as_f64().unwrap() <= 300.0, "{r:#}");
    let events: Vec<&str> = r["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert!(events.contains(&"probe"), "{events:?}");
}

#[test]
fn lag_spike_within_a_larger_budget_should_fail_over() {
    let out = drflow(&[
        "drill",
        "--scenario",
        "lag-spike",
        "-p",
        "max_data_loss=5m",
        "--output",
        "json",
    ]);
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["decision"], "failover", "{r:#}");
    assert_eq!(r["decision_expected"], serde_json::json!(["failover"]));
    assert_eq!(r["decision_right"], true);
}

#[test]
fn a_second_outage_counts_in_the_rto() {
    // app-unhealthy: served by the standby from +30 s, then the switchover's fence takes the
    // primary's writer away and the client fails again until the promotion is done.
    let r = assert_met("app-unhealthy", "switchover");
    assert_eq!(r["outages"], 2, "{r:#}");
    let rto = r["rto_seconds"].as_f64().unwrap();
    assert!(rto > 200.0, "RTO {rto} ends at the final recovery");
    assert!(events(r).contains(&"failed_again"), "{:?}", events(r));
    let down = r["downtime_seconds"].as_f64().unwrap();
    assert!(down > 80.0 && down < rto, "{down}");
    let f = scenario("flapping");
    assert_eq!(f["outages"], 2, "{f:#}");
    assert!(f["rto_seconds"].as_f64().unwrap() > 150.0, "{f:#}");
    // The drill waits out a fault that ends: flapping stops at +360 s.
    assert!(f["virtual_seconds"].as_f64().unwrap() >= 360.0, "{f:#}");
    // A drill whose client recovered ends served.
    for r in all() {
        if r["recovered"] == true
            && let Some(last) = r["client"].as_array().unwrap().last()
        {
            assert_eq!(last["ok"], true, "{}", r["scenario"]);
        }
    }
}

#[test]
fn the_standby_short_of_capacity_is_in_the_timeline() {
    let r = scenario("capacity-short");
    let short = r["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event"] == "capacity_short")
        .unwrap_or_else(|| panic!("{:?}", events(r)));
    assert!(
        short["detail"]
            .as_str()
            .unwrap()
            .contains("1 of 2 instances in service"),
        "{short}"
    );
}

/// The scenario ends with nothing promoted (`none` or `hold`) and its objectives met.
fn assert_met_without_failover(name: &str) {
    let r = scenario(name);
    assert!(
        ["none", "hold"].contains(&r["decision"].as_str().unwrap()),
        "{r:#}"
    );
    assert_eq!(r["objectives_met"], true, "{r:#}");
    assert!(!events(r).contains(&"promotion_done"), "{:?}", events(r));
}

#[test]
fn db_failure_fails_over() {
    let r = assert_met("db-failure", "failover");
    assert_adds_up(r);
}

#[test]
fn az_loss_does_not_fail_over() {
    assert_met_without_failover("az-loss");
}

#[test]
fn app_unhealthy_switches_over_with_no_loss() {
    let r = assert_met("app-unhealthy", "switchover");
    assert_eq!(r["lost_writes"], 0);
    assert_eq!(r["rpo_seconds"], 0.0);
}

#[test]
fn flapping_never_fails_over() {
    assert_met_without_failover("flapping");
}

#[test]
fn lag_spike_ends_blocked_with_nothing_promoted_or_lost() {
    let r = assert_met("lag-spike", "blocked");
    assert!(!events(r).contains(&"promotion_done"));
    assert_eq!(r["lost_writes"], 0);
    assert!(events(r).contains(&"recovered"), "{:?}", events(r));
}

#[test]
fn partition_never_fails_over() {
    assert_met_without_failover("partition");
}

#[test]
fn capacity_short_fails_over_with_what_the_standby_has() {
    let r = assert_met("capacity-short", "failover");
    assert_adds_up(r);
}

#[test]
fn the_json_report_has_the_fields_the_issue_names() {
    let r = scenario("region-outage");
    for (field, kind) in [
        ("scenario", "string"),
        ("decision", "string"),
        ("rto_seconds", "number"),
        ("critical_path_seconds", "number"),
        ("engine_seconds", "number"),
        ("rpo_seconds", "number"),
        ("lost_writes", "number"),
        ("objectives_met", "bool"),
        ("timeline", "array"),
    ] {
        let v = &r[field];
        let ok = match kind {
            "string" => v.is_string(),
            "number" => v.is_number(),
            "bool" => v.is_boolean(),
            _ => v.is_array(),
        };
        assert!(ok, "{field} should be a {kind}: {v}");
    }
    for e in r["timeline"].as_array().unwrap() {
        assert!(e["at_seconds"].is_number() && e["event"].is_string(), "{e}");
    }
    // Every scenario is in the list, in the documented order.
    let names: Vec<&str> = all()
        .iter()
        .map(|r| r["scenario"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "region-outage",
            "db-failure",
            "az-loss",
            "app-unhealthy",
            "flapping",
            "lag-spike",
            "partition",
            "capacity-short"
        ]
    );
    // A scenario with no failover has no critical path.
    assert!(scenario("partition")["critical_path_seconds"].is_null());
}

#[test]
fn every_timeline_is_in_time_order() {
    for r in all() {
        let at: Vec<f64> = r["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["at_seconds"].as_f64().unwrap())
            .collect();
        assert!(
            at.windows(2).all(|w| w[0] <= w[1]),
            "{}: {at:?}",
            r["scenario"]
        );
    }
}

#[test]
fn the_text_summary_shows_the_timeline_in_order_then_the_figures_and_a_report_page() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("drill.html");
    let out = drflow(&[
        "drill",
        "--scenario",
        "region-outage",
        "--report",
        page.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    let order = [
        "fault",
        "first_failed_request",
        "health_check_unhealthy",
        "trigger",
        "run_started",
        "decision",
        "promotion_done",
        "first_standby_success",
        "dns_changed",
    ];
    let mut from = 0;
    for e in order {
        let at = text[from..]
            .find(&format!(" {e} "))
            .unwrap_or_else(|| panic!("{e} after the events before it:\n{text}"));
        from += at + e.len();
    }
    for line in [
        "RTO ",
        "critical path",
        "engine",
        "RPO ",
        "verdict   met",
        // What it used, and that its run id leads nowhere once the temporary directory is gone.
        "environment  primary eu-south-1, standby eu-central-1; parameters from runbooks/params/eu.yaml",
        "config       drflow.yaml: runbooks/failover.yaml",
        "journaled in a temporary directory that is now removed (pass --state-dir D",
    ] {
        assert!(text.contains(line), "{line} in:\n{text}");
    }
    let html = std::fs::read_to_string(&page).expect("the page was written");
    assert!(html.contains("<html") && html.contains("region-outage"));
}

#[test]
fn a_state_dir_keeps_the_drills_world_and_journal_and_is_never_reused() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let state = state.to_str().unwrap();
    let out = drflow(&[
        "drill",
        "--scenario",
        "az-loss",
        "--state-dir",
        state,
        "-p",
        "rto_objective=4m",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(Path::new(state).join("sim/world.json").exists());
    assert!(Path::new(state).join("journal.db").exists());
    let again = drflow(&["drill", "--scenario", "az-loss", "--state-dir", state]);
    assert_eq!(again.status.code(), Some(2));
    assert!(
        stderr(&again).contains("holds a simulated world already"),
        "{}",
        stderr(&again)
    );
}

#[test]
fn a_state_dir_that_holds_anything_is_refused() {
    // `--state-dir ./runbooks` would write journal.db and sim/ among the runbooks.
    let out = drflow(&[
        "drill",
        "--scenario",
        "az-loss",
        "--state-dir",
        "./runbooks",
    ]);
    assert_invalid(
        &out,
        &["--state-dir ./runbooks: it is not empty", "new or empty"],
    );
    assert!(!repo().join("runbooks/journal.db").exists());
    assert!(!repo().join("runbooks/sim").exists());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, "x").unwrap();
    let out = drflow(&[
        "drill",
        "--scenario",
        "az-loss",
        "--state-dir",
        file.to_str().unwrap(),
    ]);
    assert_invalid(&out, &["it is not"]);
}

#[test]
fn a_drill_works_from_any_directory_with_the_built_in_triggers() {
    let dir = tempfile::tempdir().unwrap();
    let out = drflow_in(
        dir.path(),
        &["drill", "--scenario", "partition", "--output", "json"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["scenario"], "partition");
    // It says it used its built-in configuration and the default environment.
    let env = &r["params"]["environment"];
    assert_eq!(env["config"], "built-in drflow.yaml", "{env:#}");
    assert_eq!(
        env["runbook"], "runbooks/failover.yaml (built in)",
        "{env:#}"
    );
    assert_eq!(env["params_files"][0]["file"], "runbooks/params/eu.yaml");
    assert_eq!(env["primary_region"], "eu-south-1");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing left behind"
    );
}

// --- bad input: exit 2, nothing played --------------------------------------------------------

fn assert_invalid(out: &Output, says: &[&str]) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(out.stdout.is_empty(), "nothing on stdout");
    for s in says {
        assert!(err.contains(s), "{s:?} in:\n{err}");
    }
    assert!(!err.contains("playing"), "nothing played:\n{err}");
}

#[test]
fn an_unknown_scenario_is_refused_with_the_nearest_name() {
    let out = drflow(&["drill", "--scenario", "region-outag"]);
    assert_invalid(&out, &["no such scenario", "did you mean `region-outage`?"]);
}

#[test]
fn scenario_and_all_together_or_neither_are_refused() {
    let both = drflow(&["drill", "--scenario", "db-failure", "--all"]);
    assert_invalid(&both, &["--scenario and --all together"]);
    let neither = drflow(&["drill"]);
    assert_invalid(&neither, &["which scenario?", "--all"]);
}

#[test]
fn a_report_that_cannot_be_written_is_refused_before_playing() {
    let out = drflow(&[
        "drill",
        "--scenario",
        "db-failure",
        "--report",
        "/nonexistent/x.html",
    ]);
    assert_invalid(&out, &["--report /nonexistent/x.html", "does not exist"]);
    let dir = tempfile::tempdir().unwrap();
    let out = drflow(&[
        "drill",
        "--scenario",
        "db-failure",
        "--report",
        dir.path().to_str().unwrap(),
    ]);
    assert_invalid(&out, &["it is a directory"]);
}

#[test]
fn markdown_is_the_page_of_every_scenario() {
    let out = drflow(&["drill", "--scenario", "db-failure", "--output", "markdown"]);
    assert_invalid(&out, &["--output markdown", "--all"]);
}

#[test]
fn a_flag_that_breaks_a_rule_is_blamed_once() {
    let out = drflow(&[
        "drill",
        "--scenario",
        "region-outage",
        "-p",
        "primary_region=eu-central-1",
    ]);
    let err = stderr(&out);
    assert_invalid(
        &out,
        &[
            "command line, -p flag 1: `-p primary_region=eu-central-1`: the primary and the standby region are both",
        ],
    );
    assert!(!err.contains("eu.yaml"), "{err}");
    assert_eq!(err.matches("are both").count(), 1, "{err}");
    let out = drflow(&[
        "drill",
        "--scenario",
        "region-outage",
        "-p",
        "rto_objective=soon",
    ]);
    let err = stderr(&out);
    assert_invalid(&out, &["invalid duration \"soon\""]);
    assert_eq!(err.matches("250ms").count(), 1, "the hint once: {err}");
}

#[test]
fn the_help_says_where_a_drill_keeps_its_state() {
    let out = drflow(&["drill", "--help"]);
    let help = String::from_utf8(out.stdout).unwrap();
    for s in [
        "does not use the --state-dir default (.drflow) or DRFLOW_STATE_DIR",
        "temporary directory, removed",
        "new or empty directory",
    ] {
        assert!(help.contains(s), "{s:?} in:\n{help}");
    }
}

#[test]
fn report_with_all_is_refused() {
    let out = drflow(&["drill", "--all", "--report", "x.html"]);
    assert_invalid(&out, &["--report writes the page of one drill"]);
}

#[test]
fn a_bad_params_file_is_refused_with_where_and_what() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("params.yaml");
    std::fs::write(&file, "env_suffix: drill\nquorom: 2\nrto_objective: soon\n").unwrap();
    let out = drflow(&[
        "drill",
        "--scenario",
        "db-failure",
        "--params-file",
        file.to_str().unwrap(),
    ]);
    let f = file.display().to_string();
    assert_invalid(
        &out,
        &[
            &format!("{f}:2:1: unknown parameter `quorom`"),
            "did you mean `quorum`?",
            &format!("{f}:3:16"),
        ],
    );
    let flag = drflow(&[
        "drill",
        "--scenario",
        "db-failure",
        "-p",
        "rpo_objective=a minute",
    ]);
    assert_invalid(&flag, &["rpo_objective"]);
    let missing = drflow(&[
        "drill",
        "--scenario",
        "db-failure",
        "--params-file",
        "no/such/params.yaml",
    ]);
    assert_invalid(&missing, &["cannot read no/such/params.yaml"]);
}

#[test]
fn a_bad_config_is_refused_with_where_and_what() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("drflow.yaml");
    std::fs::write(&file, "version: 1\ntriggers:\n  - name: Bad Name\n").unwrap();
    let out = drflow(&[
        "drill",
        "--scenario",
        "db-failure",
        "--config",
        file.to_str().unwrap(),
    ]);
    assert_invalid(&out, &[&format!("{}:3:", file.display())]);
    let missing = drflow(&["drill", "--scenario", "db-failure", "--config", "nope.yaml"]);
    assert_invalid(&missing, &["cannot read nope.yaml", "--config"]);
}
