//! What a person reads about past runs: `drflow runs`, `drflow show RUN` and `drflow outputs`,
//! with the environment (suffix, regions) each run belongs to, and whether the simulated world
//! still holds what `outputs` names. Also the global `--state-dir` flag's mistakes.
//!
//! `show` and `runs` read a journal written here with fixed timestamps, so their snapshots are
//! exact. The two-environment test provisions for real; its snapshots mask run ids, times and
//! generated ids (see [`mask`]).

use std::path::Path;
use std::process::{Command, Output};

use drflow_engine::{Journal, RunEvent, RunStatus, StepError};
use serde_json::{Value, json};

/// `drflow` with the repository as working directory and `state` as the state dir.
fn drflow(state: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_drflow"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("DRFLOW_STATE_DIR", state)
        .env("DRFLOW_LOG", "warn")
        .env("NO_COLOR", "1")
        .env_remove("DRFLOW_TARGET")
        .output()
        .expect("drflow runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs `drflow`, requires exit 0, returns stdout.
fn ok(state: &Path, args: &[&str]) -> String {
    let out = drflow(state, args);
    assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
    stdout(&out)
}

/// 2026-11-29T12:00:00Z: the fixture runs start here.
const T: f64 = 1_795_953_600.0;

fn error(kind: &str, message: &str, retryable: bool) -> StepError {
    StepError {
        kind: kind.into(),
        message: message.into(),
        retryable,
    }
}

fn outputs(v: Value) -> serde_json::Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

/// Writes `events` as one run into the journal under `state`.
fn journal(state: &Path, events: &[RunEvent]) {
    std::fs::create_dir_all(state).unwrap();
    let mut j = Journal::open(&state.join("journal.db")).unwrap();
    for e in events {
        j.append(e).unwrap();
    }
    j.commit().unwrap();
}

fn started(run_id: &str, runbook: &str, params: Value, at: f64) -> RunEvent {
    RunEvent::RunStarted {
        run_id: run_id.into(),
        runbook: runbook.into(),
        path: format!("/srv/drflow/runbooks/{runbook}.yaml"),
        content_hash: "4f1d0c9e2b7a".into(),
        params,
        at,
        step_hashes: Default::default(),
    }
}

/// A provision of `prod-eu` that retries one step, fails another (a message over two lines),
/// skips what needed it, and is then rolled back: every kind of line the timeline has.
fn failed_provision() -> Vec<RunEvent> {
    let step = |s: &str| s.to_owned();
    vec![
        started(
            "20261129T120000-0a1b",
            "provision",
            json!({
                "env_suffix": "prod-eu",
                "primary_region": "eu-south-1",
                "standby_region": "eu-central-1",
                "public_subnets": 2,
                "ops_email": "***",
            }),
            T,
        ),
        RunEvent::StepStarted {
            step: step("kms"),
            attempt: 1,
            at: T + 0.010,
        },
        RunEvent::StepStarted {
            step: step("vpc_primary"),
            attempt: 1,
            at: T + 0.012,
        },
        RunEvent::StepSucceeded {
            step: step("kms"),
            attempt: 1,
            outputs: outputs(json!({"change": "created", "key_id": "mrk-0d8bfa9ad15e34195"})),
            at: T + 0.450,
        },
        RunEvent::AttemptFailed {
            step: step("vpc_primary"),
            attempt: 1,
            error: error("throttled", "Rate exceeded", true),
            will_retry: true,
            at: T + 1.2,
        },
        RunEvent::StepStarted {
            step: step("vpc_primary"),
            attempt: 2,
            at: T + 3.2,
        },
        RunEvent::StepSucceeded {
            step: step("vpc_primary"),
            attempt: 2,
            outputs: outputs(json!({"change": "unchanged"})),
            at: T + 4.0,
        },
        RunEvent::StepStarted {
            step: step("dns"),
            attempt: 1,
            at: T + 4.1,
        },
        RunEvent::AttemptFailed {
            step: step("dns"),
            attempt: 1,
            error: error(
                "conflict",
                "record api.trading-prod-eu.example.com exists\n  with another owner",
                false,
            ),
            will_retry: false,
            at: T + 64.5,
        },
        RunEvent::StepFailed {
            step: step("dns"),
            error: error(
                "conflict",
                "record api.trading-prod-eu.example.com exists\n  with another owner",
                false,
            ),
            at: T + 64.5,
        },
        RunEvent::StepSkipped {
            step: step("page_oncall"),
            reason: "needs dns, which failed".into(),
            at: T + 64.501,
        },
        RunEvent::RunFinished {
            status: RunStatus::Failed,
            outputs: Default::default(),
            at: T + 64.6,
        },
        RunEvent::RunResumed { at: T + 120.0 },
        RunEvent::UndoStarted {
            step: step("kms"),
            at: T + 120.1,
        },
        RunEvent::UndoSucceeded {
            step: step("kms"),
            at: T + 120.5,
        },
        RunEvent::RunFinished {
            status: RunStatus::RolledBack,
            outputs: Default::default(),
            at: T + 120.6,
        },
    ]
}

/// A run of the engine's examples, whose runbook names no environment. Its process died while
/// `flaky` ran; a resume ran it again.
fn example_run() -> Vec<RunEvent> {
    vec![
        started(
            "20261129T130000-77ff",
            "retries",
            json!({"out": "/tmp/o"}),
            T + 3600.0,
        ),
        RunEvent::StepStarted {
            step: "flaky".into(),
            attempt: 1,
            at: T + 3600.5,
        },
        RunEvent::RunResumed { at: T + 3630.0 },
        RunEvent::StepStarted {
            step: "flaky".into(),
            attempt: 2,
            at: T + 3630.1,
        },
        RunEvent::StepSucceeded {
            step: "flaky".into(),
            attempt: 2,
            outputs: outputs(json!({"value": "ok"})),
            at: T + 3630.6,
        },
        RunEvent::RunFinished {
            status: RunStatus::Succeeded,
            outputs: outputs(json!({"value": "ok", "tries": 2})),
            at: T + 3630.85,
        },
    ]
}

#[test]
fn show_reads_as_a_timeline_and_a_step_table() {
    let dir = tempfile::tempdir().unwrap();
    journal(dir.path(), &failed_provision());
    let text = ok(dir.path(), &["show", "20261129T120000-0a1b"]);
    insta::assert_snapshot!("show_failed_then_rolled_back", text);

    journal(dir.path(), &example_run());
    let text = ok(dir.path(), &["show", "latest"]);
    insta::assert_snapshot!("show_without_environment", text);
}

/// `--output json` keeps the rebuilt state and every event, and adds the environment, the
/// timeline and the step table as data.
#[test]
fn show_json_keeps_its_fields_and_adds_the_views() {
    let dir = tempfile::tempdir().unwrap();
    journal(dir.path(), &failed_provision());
    let doc: Value = serde_json::from_str(&ok(
        dir.path(),
        &["show", "20261129T120000-0a1b", "--output", "json"],
    ))
    .unwrap();
    assert_eq!(doc["run"]["run_id"], "20261129T120000-0a1b");
    assert_eq!(doc["run"]["status"], "rolled_back");
    assert_eq!(doc["run"]["steps"]["vpc_primary"]["attempts"], 2);
    assert_eq!(
        doc["events"].as_array().unwrap().len(),
        failed_provision().len()
    );
    assert_eq!(
        doc["environment"],
        json!({"env_suffix": "prod-eu", "primary_region": "eu-south-1", "standby_region": "eu-central-1"})
    );
    let timeline = doc["timeline"].as_array().unwrap();
    // The final attempt of dns and its step failure make one line.
    assert_eq!(timeline.len(), failed_provision().len() - 1);
    let failed = timeline.iter().find(|m| m["event"] == "failed").unwrap();
    assert_eq!(failed["step"], "dns");
    assert_eq!(failed["attempt"], 1);
    assert_eq!(failed["offset_seconds"], 64.5);
    assert_eq!(
        failed["detail"],
        "record api.trading-prod-eu.example.com exists with another owner (conflict)"
    );
    let vpc = &doc["step_table"][1];
    assert_eq!(vpc["step"], "vpc_primary");
    assert_eq!(vpc["attempts"], 2);
    assert_eq!(vpc["duration_seconds"], 3.988);
    assert_eq!(vpc["change"], "unchanged");
}

#[test]
fn runs_name_each_runs_environment() {
    let dir = tempfile::tempdir().unwrap();
    journal(dir.path(), &failed_provision());
    journal(dir.path(), &example_run());
    insta::assert_snapshot!("runs_with_environments", ok(dir.path(), &["runs"]));
    let rows: Value = serde_json::from_str(&ok(dir.path(), &["runs", "--output", "json"])).unwrap();
    assert_eq!(rows[0]["environment"], Value::Null);
    assert_eq!(rows[1]["environment"]["env_suffix"], "prod-eu");
    assert_eq!(rows[1]["environment"]["standby_region"], "eu-central-1");
    // Today's fields stay.
    for field in [
        "id",
        "runbook",
        "path",
        "status",
        "started_at",
        "finished_at",
        "duration_seconds",
    ] {
        assert!(rows[1].get(field).is_some(), "{field} kept: {rows:#}");
    }
}

/// Masks what changes from one real run to the next: ISO timestamps, then every word of four or
/// more letters and digits that has a digit in it (run ids, generated resource ids), name server
/// numbers, and the state directory.
fn mask(text: &str, state: &Path) -> String {
    let text = text.replace(&state.display().to_string(), "<state>");
    let chars: Vec<char> = text.chars().collect();
    let iso = |w: &[char]| {
        let shape = "dddd-dd-ddTdd:dd:dd.dddZ";
        w.len() >= shape.len()
            && shape.chars().zip(w).all(|(s, c)| match s {
                'd' => c.is_ascii_digit(),
                other => other == *c,
            })
    };
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        if iso(&chars[i..]) {
            out.push_str("<time>");
            i += 24;
            continue;
        }
        if chars[i].is_ascii_alphanumeric() {
            let end = (i..chars.len())
                .find(|&j| !chars[j].is_ascii_alphanumeric())
                .unwrap_or(chars.len());
            let word: String = chars[i..end].iter().collect();
            // Route 53 name servers (`ns-53.awsdns-06.org`) number both their words, in any
            // number of digits.
            let name_server_number = out.strip_suffix('-').is_some_and(|before| {
                let start = before
                    .rfind(|c: char| !c.is_ascii_alphanumeric())
                    .map_or(0, |i| i + 1);
                matches!(&before[start..], "ns" | "awsdns")
            });
            let generated = word.len() >= 4 || name_server_number;
            // A run id's random suffix may be all letters (`-dccb`).
            let run_id_suffix = out.ends_with("<id>-")
                && word.len() == 4
                && word.chars().all(|c| c.is_ascii_hexdigit());
            if run_id_suffix || (generated && word.chars().any(|c| c.is_ascii_digit())) {
                out.push_str("<id>");
            } else {
                out.push_str(&word);
            }
            i = end;
            continue;
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

/// The `runs` table of real runs: durations vary, so the last column is masked too.
fn mask_runs(text: &str, state: &Path) -> String {
    mask(text, state)
        .lines()
        .map(|l| match l.trim_end().rsplit_once(' ') {
            Some((rest, _)) if !l.starts_with("run id") => {
                format!("{}  <duration>", rest.trim_end())
            }
            _ => l.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn provision(state: &Path, params_file: &str) -> Value {
    let out = ok(
        state,
        &[
            "run",
            "runbooks/provision.yaml",
            "--params-file",
            params_file,
            "--output",
            "json",
        ],
    );
    serde_json::from_str(&out).unwrap()
}

/// Two environments provisioned into one state dir: `runs` tells them apart, `outputs` picks
/// one by `-p` or by the params file it was provisioned with, and without a selector says which
/// it picked and that another exists. A destroy of one leaves the other live; after `sim reset`
/// `outputs` says the world no longer holds what it names.
#[test]
fn two_environments_side_by_side() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path();
    let eu = provision(state, "runbooks/params/eu.yaml");
    let us = provision(state, "runbooks/params/us-east.yaml");

    insta::assert_snapshot!("two_envs_runs", mask_runs(&ok(state, &["runs"]), state));

    let by_flag = ok(state, &["outputs", "-p", "env_suffix=prod-eu"]);
    insta::assert_snapshot!("two_envs_outputs_by_flag", mask(&by_flag, state));
    let by_file = ok(
        state,
        &["outputs", "--params-file", "runbooks/params/us-east.yaml"],
    );
    insta::assert_snapshot!("two_envs_outputs_by_params_file", mask(&by_file, state));
    let plain = drflow(state, &["outputs"]);
    insta::assert_snapshot!(
        "two_envs_outputs_plain",
        mask(
            &format!("{}--- stderr\n{}", stdout(&plain), stderr(&plain)),
            state
        )
    );

    // The outputs are the runs' own, whatever picks them.
    let json = |args: &[&str]| -> Value {
        serde_json::from_str(&ok(
            state,
            &[&["outputs", "--output", "json"][..], args].concat(),
        ))
        .unwrap()
    };
    let picked_eu = json(&["--params-file", "runbooks/params/eu.yaml"]);
    assert_eq!(picked_eu["outputs"], eu["outputs"]);
    assert_eq!(picked_eu["run_id"], eu["run_id"]);
    assert_eq!(picked_eu["world"]["holds"], "all");
    assert_eq!(picked_eu["other_environments"], json!([]));
    let picked = json(&[]);
    assert_eq!(picked["run_id"], us["run_id"], "the latest provision");
    assert_eq!(picked["other_environments"][0]["env_suffix"], "prod-eu");

    // A destroy of prod-eu: its provision's outputs are gone, prod-us's still live, and plain
    // `outputs` shows the provision, not the destroy that ran after it.
    ok(
        state,
        &[
            "run",
            "runbooks/destroy.yaml",
            "--params-file",
            "runbooks/params/eu.yaml",
            "--yes",
        ],
    );
    let after_destroy = json(&["-p", "env_suffix=prod-eu"]);
    assert_eq!(after_destroy["run_id"], eu["run_id"]);
    assert_eq!(after_destroy["world"]["holds"], "none");
    assert_eq!(json(&[])["world"]["holds"], "all");
    assert_eq!(json(&[])["run_id"], us["run_id"]);

    ok(state, &["sim", "reset"]);
    let gone = drflow(state, &["outputs"]);
    assert_eq!(gone.status.code(), Some(0));
    insta::assert_snapshot!(
        "two_envs_outputs_after_sim_reset",
        mask(
            &format!("{}--- stderr\n{}", stdout(&gone), stderr(&gone)),
            state
        )
    );
    let gone = json(&["--params-file", "runbooks/params/us-east.yaml"]);
    assert_eq!(gone["world"]["holds"], "none");
    assert_eq!(gone["world"]["missing"], gone["world"]["recorded"]);
}

/// What `outputs` refuses, with exit 2 and a hint: a `-p` that names no environment part, a
/// params file that names none, an environment with no run, a run named together with `-p`.
#[test]
fn outputs_selector_mistakes_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    journal(dir.path(), &failed_provision());
    journal(dir.path(), &example_run());
    std::fs::write(dir.path().join("plain.yaml"), "public_subnets: 2\n").unwrap();
    let plain = dir.path().join("plain.yaml").display().to_string();
    let mut all = String::new();
    for args in [
        vec!["outputs", "-p", "routing_policy=weighted"],
        vec!["outputs", "-p", "env_suffix"],
        vec!["outputs", "--params-file", &plain],
        vec!["outputs", "--params-file", "runbooks/params/nope.yaml"],
        vec!["outputs", "-p", "env_suffix=eu"],
        vec!["outputs", "latest", "-p", "env_suffix=prod-eu"],
    ] {
        let out = drflow(dir.path(), &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(out.stdout.is_empty(), "{args:?}");
        all.push_str(&format!("$ drflow {}\n{}\n", args.join(" "), stderr(&out)));
    }
    insta::assert_snapshot!("outputs_selector_mistakes", mask(&all, dir.path()));

    // `--output json` promises one JSON document on stdout, for a mistake too.
    let out = drflow(
        dir.path(),
        &[
            "outputs",
            "-p",
            "routing_policy=weighted",
            "--output",
            "json",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(doc["status"], "invalid");
    assert!(
        doc["errors"][0]
            .as_str()
            .is_some_and(|e| e.contains("does not name an environment")),
        "{doc}"
    );
}

/// `--state-dir` needs a value; one that is a command's name is said to be the mistake it is.
#[test]
fn state_dir_without_a_value_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut all = String::new();
    for args in [
        vec!["--state-dir", "runs"],
        vec!["--state-dir", "show", "latest"],
        vec!["runs", "--state-dir"],
    ] {
        let out = drflow(dir.path(), &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        all.push_str(&format!("$ drflow {}\n{}\n", args.join(" "), stderr(&out)));
    }
    insta::assert_snapshot!("state_dir_mistakes", all);
    // A directory given before the command is still a directory.
    let runs = drflow(
        dir.path(),
        &["--state-dir", &dir.path().display().to_string(), "runs"],
    );
    assert_eq!(runs.status.code(), Some(0), "{}", stderr(&runs));
}
