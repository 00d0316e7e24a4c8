//! A provision killed half-way (no chance to clean up) and resumed completes without duplicate
//! resources, and its outputs are those of an uninterrupted provision (up to the ids the sim
//! draws, which depend on the order parallel steps create in).
//!
//! The provision runs in-process on the library runner, which its test hooks crash (or pause)
//! at a named event, as a SIGKILL would: nothing more is journaled and its leases are left to a
//! process that is gone. The resume, the rollback and the refused destroy are the `drflow`
//! binary's.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use drflow_engine::runner::{HookAction, RunnerError};
use serde_json::Value;

mod common;

use common::inproc::{InProc, Pause, block_on, point};

fn drflow(state: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_drflow"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("DRFLOW_STATE_DIR", state)
        .env_remove("DRFLOW_TARGET")
        .stdin(Stdio::null());
    c
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// The runner over `state` with the eu parameters, as `drflow run runbooks/provision.yaml
/// --params-file runbooks/params/eu.yaml` would run it.
fn provision_runner(state: &Path) -> InProc {
    let params = std::fs::read_to_string(repo("runbooks/params/eu.yaml")).expect("params");
    InProc {
        params_file: Some(("runbooks/params/eu.yaml".into(), params)),
        ..InProc::at_state_dir(state)
    }
}

fn run_ok(state: &Path, args: &[&str]) -> String {
    let out = drflow(state).args(args).output().expect("drflow runs");
    assert!(
        out.status.success(),
        "drflow {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// Every resource in the sim world as (region, kind, name); panics on a duplicate. A route is
/// named by its table's id (`rtb-…:0.0.0.0/0`), an id the sim draws in the order parallel steps
/// happen to create, which differs between a straight run and a resumed one as it would on AWS;
/// it is compared by its table's *name* and destination instead.
fn world(state: &Path) -> BTreeSet<(String, String, String)> {
    let all = resources(state);
    let table_names: BTreeMap<&str, &str> = all
        .iter()
        .filter(|((_, kind, _), _)| kind == "route_table")
        .filter_map(|((_, _, name), r)| Some((r["id"].as_str()?, name.as_str())))
        .collect();
    let identities: Vec<_> = all
        .keys()
        .map(|(region, kind, name)| {
            let name = match name.split_once(':') {
                Some((table, destination)) if kind == "route" => format!(
                    "{}:{destination}",
                    table_names.get(table).copied().unwrap_or(table)
                ),
                _ => name.clone(),
            };
            (region.clone(), kind.clone(), name)
        })
        .collect();
    let set: BTreeSet<_> = identities.iter().cloned().collect();
    assert_eq!(
        set.len(),
        identities.len(),
        "two routes for one table and destination"
    );
    set
}

/// Every resource in the sim world, whole, by (region, kind, name); panics on a duplicate. A
/// child (a route, a record) is named within its parent's name, not its id, so that two worlds
/// built apart compare.
fn resources(state: &Path) -> BTreeMap<(String, String, String), Value> {
    let text = std::fs::read_to_string(state.join("sim/world.json")).expect("world file");
    let doc: Value = serde_json::from_str(&text).expect("world json");
    // The world file nests resources by region; find every object with kind, region and name.
    let mut found: Vec<&serde_json::Map<String, Value>> = Vec::new();
    let mut walk = vec![&doc];
    while let Some(v) = walk.pop() {
        match v {
            Value::Object(o) => {
                if ["kind", "region", "name"]
                    .iter()
                    .all(|k| o.get(*k).is_some_and(Value::is_string))
                    && o.contains_key("spec")
                {
                    found.push(o);
                    continue;
                }
                walk.extend(o.values());
            }
            Value::Array(a) => walk.extend(a.iter()),
            _ => {}
        }
    }
    let str_of = |o: &serde_json::Map<String, Value>, k: &str| {
        o.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let names: BTreeMap<String, String> = found
        .iter()
        .map(|o| (str_of(o, "id"), str_of(o, "name")))
        .collect();
    let mut seen = BTreeMap::new();
    for o in found {
        let mut name = str_of(o, "name");
        if let Some(parent) = o.get("parent").and_then(Value::as_str) {
            let parent = names.get(parent).map_or(parent, String::as_str);
            name = format!("{parent}/{name}");
        }
        let key = (str_of(o, "region"), str_of(o, "kind"), name);
        assert!(
            seen.insert(key.clone(), Value::Object(o.clone())).is_none(),
            "duplicate resource {key:?}"
        );
    }
    seen
}

/// `v` with every UUID (with the six characters Secrets Manager appends to a secret's ARN, when
/// they follow one) and every word of letters and digits that has a digit in it replaced by
/// `#`: the ids, endpoints and name server numbers the sim draws, which depend on the order
/// parallel steps happened to create in (a resumed run's differ from a straight run's, as on
/// AWS), while every output, its shape and every name stay compared. A UUID goes whole: one of
/// its groups may be all letters (`aabd`), which the digit rule alone would keep.
fn generated_masked(v: &Value) -> Value {
    match v {
        Value::String(s) => {
            let s = &uuids_masked(s);
            let mut out = String::new();
            let mut word = String::new();
            let flush = |word: &mut String, out: &mut String| {
                if word.chars().any(|c| c.is_ascii_digit()) {
                    out.push('#');
                } else {
                    out.push_str(word);
                }
                word.clear();
            };
            for c in s.chars() {
                if c.is_ascii_alphanumeric() {
                    word.push(c);
                } else {
                    flush(&mut word, &mut out);
                    out.push(c);
                }
            }
            flush(&mut word, &mut out);
            Value::String(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(generated_masked).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| (k.clone(), generated_masked(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// `s` with each UUID (8-4-4-4-12 hex digits, not inside a longer word), and a `-XXXXXX`
/// Secrets Manager suffix right after one, replaced by `#`.
fn uuids_masked(s: &str) -> String {
    const SHAPE: [usize; 5] = [8, 4, 4, 4, 12];
    let b = s.as_bytes();
    let word = |i: usize| b.get(i).is_some_and(u8::is_ascii_alphanumeric);
    // The length of a UUID at `i`, if one starts there.
    let uuid_at = |i: usize| -> Option<usize> {
        let mut at = i;
        for (n, len) in SHAPE.iter().enumerate() {
            if n > 0 {
                (b.get(at) == Some(&b'-')).then_some(())?;
                at += 1;
            }
            let group = b.get(at..at + len)?;
            group.iter().all(u8::is_ascii_hexdigit).then_some(())?;
            at += len;
        }
        (!word(at)).then_some(at - i)
    };
    let mut out = String::new();
    let mut i = 0;
    while i < s.len() {
        if (i == 0 || !word(i - 1))
            && let Some(len) = uuid_at(i)
        {
            i += len;
            let suffix = b.get(i..i + 7).is_some_and(|t| {
                t[0] == b'-'
                    && t[1..]
                        .iter()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
            });
            if suffix && !word(i + 7) {
                i += 7;
            }
            out.push('#');
            continue;
        }
        let c = s[i..].chars().next().expect("a char");
        out.push(c);
        i += c.len_utf8();
    }
    out
}

#[test]
fn uuids_are_masked_whole() {
    assert_eq!(
        uuids_masked("27e97c77-1812-45f7-abc4-75753733c5d0"),
        uuids_masked("dfa7a654-22a6-4ab0-aabd-11eae8f0437b")
    );
    assert_eq!(uuids_masked("27e97c77-1812-45f7-abc4-75753733c5d0"), "#");
    assert_eq!(
        uuids_masked("secret:rds!cluster-3285ee4f-96e9-4d60-aa12-c53d2130d1f9-FSEABC"),
        "secret:rds!cluster-#"
    );
    assert_eq!(
        generated_masked(&Value::String(
            "cert/dfa7a654-22a6-4ab0-aabd-11eae8f0437b".into()
        )),
        Value::String("cert/#".into())
    );
    // Not a UUID: left to the digit rule.
    assert_eq!(
        uuids_masked("alb-prod-eu-2965336560"),
        "alb-prod-eu-2965336560"
    );
}

/// Provisions in-process and kills the run at `pause` (`after:step_succeeded:database`, …).
fn kill_at(state: &Path, pause: &str) {
    let dying = InProc {
        hooks: drflow_engine::runner::Hooks::crash_at(point(pause)),
        identity: Some(common::inproc::dead_process()),
        ..provision_runner(state)
    };
    match block_on(dying.run(&repo("runbooks/provision.yaml"), &[])) {
        Err(RunnerError::Crashed { .. }) => {}
        other => panic!(
            "provision never reached {pause}: {:?}",
            other.map(|o| o.report.status)
        ),
    }
}

/// Provisions in-process on a thread of its own, paused at `at` until the returned handle ends
/// the pause (the run then crashes there).
fn pause_at(state: &Path, at: &str) -> (Pause, std::thread::JoinHandle<()>) {
    let (hooks, pause) = Pause::at(point(at));
    let inproc = InProc {
        hooks,
        ..provision_runner(state)
    };
    let run = std::thread::spawn(move || {
        let _ = block_on(inproc.run(&repo("runbooks/provision.yaml"), &[]));
    });
    pause.wait();
    (pause, run)
}

#[test]
fn an_interrupted_provision_resumes_to_the_same_world_without_duplicates() {
    let reference = tempfile::tempdir().expect("dir");
    run_ok(
        reference.path(),
        &[
            "run",
            "runbooks/provision.yaml",
            "--params-file",
            "runbooks/params/eu.yaml",
        ],
    );
    let expected_world = world(reference.path());
    let expected: Value =
        serde_json::from_str(&run_ok(reference.path(), &["outputs", "--output", "json"]))
            .expect("json");

    for pause in [
        "after:step_succeeded:database",
        "before:step_started:dns",
        "after:step_started:alarms",
    ] {
        let dir = tempfile::tempdir().expect("dir");
        let state = dir.path();
        kill_at(state, pause);
        let partial = world(state);
        assert!(
            !partial.is_empty() && partial.len() < expected_world.len(),
            "{pause}: the kill left a half-built world ({} of {})",
            partial.len(),
            expected_world.len()
        );
        let resumed = run_ok(state, &["resume", "latest"]);
        assert!(resumed.contains("succeeded"), "{pause}: {resumed}");
        assert_eq!(
            world(state),
            expected_world,
            "{pause}: same resources, none twice"
        );
        let got: Value =
            serde_json::from_str(&run_ok(state, &["outputs", "--output", "json"])).expect("json");
        assert_eq!(
            generated_masked(&got["outputs"]),
            generated_masked(&expected["outputs"]),
            "{pause}: outputs complete"
        );
        // And a further provision finds nothing to do.
        let again = run_ok(
            state,
            &[
                "run",
                "runbooks/provision.yaml",
                "--params-file",
                "runbooks/params/eu.yaml",
            ],
        );
        // Counted in resources: every one the provision owns is as it should be.
        let expected = format!(
            "resources: no changes ({} resources as they should be)",
            expected_world.len()
        );
        assert!(again.contains(&expected), "{pause}: {again}");
    }
}

#[test]
fn outputs_without_a_run_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("dir");
    let out = drflow(dir.path()).args(["outputs"]).output().expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("hint:"));
}

#[test]
fn destroy_is_refused_while_a_provision_of_the_same_environment_runs() {
    let dir = tempfile::tempdir().expect("dir");
    let state = dir.path();
    let (pause, run) = pause_at(state, "before:step_started:dns");
    let out = drflow(state)
        .args([
            "run",
            "runbooks/destroy.yaml",
            "--params-file",
            "runbooks/params/eu.yaml",
            "--yes",
        ])
        .output()
        .expect("runs");
    pause.end(HookAction::Crash);
    run.join().expect("the provision thread");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("environment-prod-eu"),
        "names the lock: {stderr}"
    );
    assert!(stderr.contains("held by"), "names the holder: {stderr}");
    // The world was not touched by the refused destroy: the half-built environment is still there.
    assert!(!world(state).is_empty());
}

/// Lock keys are whole environment names: `eu` is not blocked by, and does not touch, `prod-eu`
/// (whose suffix ends with its own) while a provision of `prod-eu` holds its lock.
#[test]
fn a_destroy_of_eu_goes_on_while_prod_eu_is_being_provisioned_and_leaves_it_alone() {
    let dir = tempfile::tempdir().expect("dir");
    let state = dir.path();
    let (pause, run) = pause_at(state, "before:step_started:dns");
    let before = resources(state);
    let out = drflow(state)
        .args([
            "run",
            "runbooks/destroy.yaml",
            "--params-file",
            "runbooks/params/eu.yaml",
            "-p",
            "env_suffix=eu",
            "--yes",
            "--output",
            "json",
        ])
        .output()
        .expect("runs");
    pause.end(HookAction::Crash);
    run.join().expect("the provision thread");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let doc: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(doc["outputs"]["deleted"], 0, "{doc:#}");
    assert_eq!(resources(state), before, "prod-eu is as it was");
}

const PROVISION: &[&str] = &[
    "run",
    "runbooks/provision.yaml",
    "--params-file",
    "runbooks/params/eu.yaml",
];

fn rollback_latest(state: &Path) -> String {
    let out = run_ok(state, &["rollback", "latest", "--yes"]);
    assert!(out.contains("rollback rolled_back"), "{out}");
    out
}

#[test]
fn rolling_back_a_provision_that_changed_nothing_leaves_the_world_as_it_was() {
    let dir = tempfile::tempdir().expect("dir");
    let state = dir.path();
    run_ok(state, PROVISION);
    let before = resources(state);
    assert!(!before.is_empty());
    let again = run_ok(state, PROVISION);
    assert!(again.contains("resources: no changes ("), "{again}");
    let report = rollback_latest(state);
    // Nothing deleted, nothing changed: Aurora, S3, KMS and the rest are all still there.
    assert_eq!(resources(state), before);
    // Kept counts per step, and two steps share one resource (the certificates' validation
    // record), so it is at least the number of resources.
    let kept: usize = report
        .split("resources:       0 deleted, ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the report says nothing was deleted: {report}"));
    assert!(kept >= before.len(), "{report}");
}

#[test]
fn rolling_back_the_provision_that_built_the_environment_removes_it() {
    let dir = tempfile::tempdir().expect("dir");
    let state = dir.path();
    run_ok(state, PROVISION);
    assert!(!world(state).is_empty());
    let report = rollback_latest(state);
    assert_eq!(
        world(state),
        BTreeSet::new(),
        "everything it created is gone"
    );
    assert!(report.contains(" deleted, 0 kept"), "{report}");
}

#[test]
fn a_provision_killed_resumed_and_rolled_back_leaves_nothing() {
    // Killed as the step's success was about to be journaled: the step created its resources
    // (Aurora, alarms), the journal does not say so, and on resume the step runs again and finds
    // them already there. They are still this run's doing, and its rollback deletes them.
    for pause in [
        "before:step_succeeded:database",
        "before:step_succeeded:alarms",
    ] {
        let dir = tempfile::tempdir().expect("dir");
        let state = dir.path();
        kill_at(state, pause);
        assert!(!world(state).is_empty(), "{pause}: a half-built world");
        let resumed = run_ok(state, &["resume", "latest"]);
        assert!(resumed.contains("succeeded"), "{pause}: {resumed}");
        rollback_latest(state);
        assert_eq!(world(state), BTreeSet::new(), "{pause}: nothing left");
    }
}
