//! `drflow triggers check` through the binary: the shipped drflow.yaml checks clean, every kind
//! of bad input exits 2 with `file:line:col` and a hint (the error text is snapshotted), and
//! `--events` tells what each recorded event did.

use std::path::Path;

use serde_json::Value;

#[path = "common/cli.rs"]
mod cli;
use cli::{drflow, stderr, stdout};

#[test]
fn the_shipped_drflow_yaml_checks_clean_and_names_its_runbook() {
    let out = drflow(&["triggers", "check", "drflow.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("drflow.yaml: ok (2 triggers)\n"), "{text}");
    assert!(
        text.contains("primary-down -> runbooks/failover.yaml (runbook `failover`)"),
        "{text}"
    );
    assert!(
        text.contains("require 2 of 2 within 5m00s, cooldown 15m00s"),
        "{text}"
    );
    assert!(
        text.contains("signals: primary-health-check, regional-outage"),
        "{text}"
    );
    assert!(
        text.contains(
            "primary-unreachable -> runbooks/failover.yaml (runbook `failover`)\n    \
             require 1 of 1 within 5m00s, cooldown 15m00s\n    signals: probe-from-standby"
        ),
        "{text}"
    );
}

/// drflow's probe from the standby (the only signal a us-east-1 outage leaves when the
/// primary is there): its ALARM alone starts the failover through `primary-unreachable`,
/// with the endpoint and the probing region in `triggered_by`; nothing else fires.
#[test]
fn a_probe_alarm_from_the_standby_fires_primary_unreachable_alone() {
    let out = drflow(&[
        "triggers",
        "check",
        "drflow.yaml",
        "--events",
        "tests/fixtures/triggers/probe.jsonl",
        "--output",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    let events = doc["events"].as_array().unwrap();
    let alarm = &events[0];
    assert_eq!(
        alarm["matched"],
        serde_json::json!([{"trigger": "primary-unreachable", "signal": "probe-from-standby"}])
    );
    let firings = alarm["firings"].as_array().unwrap();
    assert_eq!(firings.len(), 1, "{alarm}");
    assert_eq!(firings[0]["trigger"], "primary-unreachable");
    assert_eq!(
        firings[0]["params"]["triggered_by"],
        "trigger primary-unreachable: probe of \
         https://alb-prod-us.us-east-1.elb.amazonaws.com/health/trading from us-east-2 ALARM"
    );
    assert_eq!(firings[0]["evidence"][0]["region"], "us-east-2");
    assert_eq!(events[1]["duplicate"], true);
    assert!(events[2]["firings"].as_array().unwrap().is_empty());
    assert_eq!(events[2]["matched"].as_array().unwrap().len(), 1);
}

#[test]
fn a_params_file_and_params_the_runbook_declares_check_clean() {
    let out = drflow(&["triggers", "check", "tests/fixtures/triggers/ok.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out)
            .contains("(runbook `triggered`, params file tests/fixtures/triggers/params.yaml)"),
        "{}",
        stdout(&out)
    );
}

/// Each file in tests/fixtures/triggers/bad is one kind of bad input: exit 2, every problem
/// at `file:line:col` with a hint, nothing on stdout.
#[test]
fn every_kind_of_bad_drflow_yaml_is_located_with_a_hint() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/triggers/bad");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("fixtures")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    names.sort();
    assert_eq!(names.len(), 10, "fixtures: {names:?}");
    for name in names {
        let path = format!("tests/fixtures/triggers/bad/{name}");
        let out = drflow(&["triggers", "check", &path]);
        assert_eq!(out.status.code(), Some(2), "{name}: {}", stderr(&out));
        assert!(out.stdout.is_empty(), "{name}");
        let text = stderr(&out);
        let problems = text.matches("error: ").count();
        assert!(problems >= 1, "{name}: {text}");
        assert_eq!(
            text.matches(&format!("error: {path}:")).count(),
            problems,
            "{name}: every problem names drflow.yaml's line and column\n{text}"
        );
        assert_eq!(
            text.matches("  hint: ").count(),
            problems,
            "{name}: every problem has a hint\n{text}"
        );
        insta::assert_snapshot!(format!("bad_{}", name.trim_end_matches(".yaml")), text);
    }
}

#[test]
fn the_nearest_names_are_suggested() {
    let text = stderr(&drflow(&[
        "triggers",
        "check",
        "tests/fixtures/triggers/bad/unknown_field.yaml",
    ]));
    assert!(text.contains("unknown field `descripton`"), "{text}");
    assert!(text.contains("did you mean `description`?"), "{text}");
    let text = stderr(&drflow(&[
        "triggers",
        "check",
        "tests/fixtures/triggers/bad/undeclared_param.yaml",
    ]));
    assert!(text.contains("did you mean `triggered_by`?"), "{text}");
    let text = stderr(&drflow(&[
        "triggers",
        "check",
        "tests/fixtures/triggers/bad/bad_operator.yaml",
    ]));
    assert!(text.contains("did you mean `prefix`?"), "{text}");
}

#[test]
fn a_missing_config_file_is_a_clear_error() {
    let out = drflow(&["triggers", "check", "nope/drflow.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    let text = stderr(&out);
    assert!(text.contains("nope/drflow.yaml: cannot read it"), "{text}");
    assert!(text.contains("hint:"), "{text}");
}

#[test]
fn a_malformed_events_file_is_located() {
    let out = drflow(&[
        "triggers",
        "check",
        "drflow.yaml",
        "--events",
        "tests/fixtures/triggers/malformed.jsonl",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        out.stdout.is_empty(),
        "nothing is replayed: {}",
        stdout(&out)
    );
    insta::assert_snapshot!(stderr(&out));
}

/// Two alarms in ALARM fire the trigger with both as evidence; a foreign event matches
/// nothing; a duplicate is counted once; an OK from before the ALARM, delivered late, is stale;
/// the health check flapping back to ALARM within the cooldown is suppressed.
#[test]
fn replaying_an_outage_tells_what_each_event_did() {
    let out = drflow(&[
        "triggers",
        "check",
        "drflow.yaml",
        "--events",
        "tests/fixtures/triggers/outage.jsonl",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    insta::assert_snapshot!(stdout(&out));
}

#[test]
fn json_output_has_the_triggers_and_each_event() {
    let out = drflow(&[
        "triggers",
        "check",
        "drflow.yaml",
        "--events",
        "tests/fixtures/triggers/outage.jsonl",
        "--output",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(doc["valid"], true);
    let t = &doc["triggers"][0];
    assert_eq!(t["name"], "primary-down");
    assert_eq!(t["runbook"], "runbooks/failover.yaml");
    assert_eq!(t["require"], 2);
    assert_eq!(t["within_seconds"], 300.0);
    assert_eq!(t["cooldown_seconds"], 900.0);
    assert_eq!(t["signals"].as_array().unwrap().len(), 2);
    let events = doc["events"].as_array().unwrap();
    assert_eq!(events.len(), 7);
    let flags: Vec<(bool, bool, usize, usize)> = events
        .iter()
        .map(|e| {
            (
                e["duplicate"].as_bool().unwrap(),
                e["stale"].as_bool().unwrap(),
                e["matched"].as_array().unwrap().len(),
                e["firings"].as_array().unwrap().len(),
            )
        })
        .collect();
    assert_eq!(
        flags,
        vec![
            (false, false, 1, 0),
            (false, false, 0, 0),
            (false, false, 1, 1),
            (true, false, 0, 0),
            (false, true, 1, 0),
            (false, false, 1, 0),
            (false, false, 1, 0),
        ]
    );
    let firing = &events[2]["firings"][0];
    assert_eq!(firing["trigger"], "primary-down");
    assert_eq!(
        firing["params"]["triggered_by"],
        "trigger primary-down: regional-outage-alarm-prod ALARM"
    );
    let signals: Vec<&str> = firing["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["signal"].as_str().unwrap())
        .collect();
    assert_eq!(signals, ["primary-health-check", "regional-outage"]);
    assert_eq!(firing["evidence"][0]["state_at_ms"], 1_795_979_052_123u64);
    let suppressed = &events[6]["suppressed"][0];
    assert_eq!(suppressed["trigger"], "primary-down");
    assert_eq!(
        suppressed["until_ms"],
        firing["at_ms"].as_u64().unwrap() + 15 * 60_000
    );
}

#[test]
fn json_output_of_bad_input_is_one_document_with_the_diagnostics() {
    let out = drflow(&[
        "triggers",
        "check",
        "tests/fixtures/triggers/bad/require_more_than_signals.yaml",
        "--output",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(doc["valid"], false);
    let d = &doc["diagnostics"][0];
    assert_eq!(d["line"], 18);
    assert_eq!(d["col"], 14);
    assert!(d["message"].as_str().unwrap().contains("3 of 2"), "{d}");
    assert!(d["hint"].is_string());
}

/// Every ```yaml block of docs/triggers.md that is a drflow.yaml parses, and the example is the
/// file shipped at the repository root, so the page cannot drift from what is read.
#[test]
fn the_drflow_yaml_examples_in_the_docs_parse_and_match_the_shipped_file() {
    use drflow_engine::triggers::TriggerConfig;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let page = std::fs::read_to_string(root.join("docs/triggers.md")).expect("docs/triggers.md");
    let blocks: Vec<&str> = page
        .split("```yaml\n")
        .skip(1)
        .filter_map(|rest| rest.split_once("\n```").map(|(block, _)| block))
        .filter(|block| block.contains("triggers:"))
        .collect();
    assert!(!blocks.is_empty(), "docs/triggers.md shows a drflow.yaml");
    let summary = |c: &TriggerConfig| -> Vec<String> {
        c.triggers
            .iter()
            .map(|t| {
                format!(
                    "{} {:?} {:?} {:?} {} {} {} {:?}",
                    t.name,
                    t.runbook,
                    t.params_file,
                    t.signals,
                    t.require,
                    t.within_ms,
                    t.cooldown_ms,
                    t.params
                )
            })
            .collect()
    };
    let shipped = TriggerConfig::load(&root.join("drflow.yaml")).expect("the shipped drflow.yaml");
    for (i, block) in blocks.iter().enumerate() {
        let doc = TriggerConfig::parse(block, &root.join("drflow.yaml"))
            .unwrap_or_else(|d| panic!("yaml block {} of docs/triggers.md:\n{d}", i + 1));
        if i == 0 {
            assert_eq!(
                summary(&doc),
                summary(&shipped),
                "the example is the shipped file"
            );
        }
    }
}
