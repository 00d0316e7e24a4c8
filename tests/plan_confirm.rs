//! `drflow run --plan` says what a run would create, change and delete and leaves the state
//! directory byte for byte as it was; destructive commands (`destroy.yaml`, `rollback`) refuse
//! without `--yes` where nobody can answer, and ask on a terminal (a pseudo-terminal here).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

const EU: &[&str] = &["--params-file", "runbooks/params/eu.yaml"];

fn drflow(state: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_drflow"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("DRFLOW_STATE_DIR", state)
        .env_remove("DRFLOW_TARGET")
        .stdin(Stdio::null());
    c
}

fn run(state: &Path, args: &[&str]) -> Output {
    drflow(state).args(args).output().expect("drflow runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn run_ok(state: &Path, args: &[&str]) -> String {
    let out = run(state, args);
    assert!(
        out.status.success(),
        "drflow {args:?}: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn args<'a>(head: &[&'a str], tail: &[&'a str]) -> Vec<&'a str> {
    [head, tail].concat()
}

/// Every file under the state directory with its bytes.
fn files(state: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut dirs = vec![state.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).expect("read dir").flatten() {
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

fn world(state: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(state.join("sim/world.json")).expect("world"))
        .expect("json")
}

/// `(kind, name, region)` of every resource in the world.
fn resources(state: &Path) -> BTreeSet<(String, String, String)> {
    let w = world(state);
    let mut set = BTreeSet::new();
    for by_id in w["regions"].as_object().expect("regions").values() {
        for r in by_id.as_object().expect("ids").values() {
            let r = &r["resource"];
            let s = |k: &str| r[k].as_str().expect(k).to_string();
            // The world file spells kinds by serde; plans by `Kind::name`.
            let kind: drflow_steps::Kind = serde_json::from_value(r["kind"].clone()).expect("kind");
            // A child (a route, a record) is named within its parent.
            let name = match r["parent"].as_str() {
                Some(p) => format!("{} in {p}", s("name")),
                None => s("name"),
            };
            set.insert((kind.name().to_string(), name, s("region")));
        }
    }
    set
}

/// The plan as `(mark, kind, name, region)`, from `--plan --output json`.
fn plan(state: &Path, runbook: &str) -> (Value, BTreeSet<(String, String, String, String)>) {
    let out = run_ok(
        state,
        &args(&["run", runbook, "--plan", "--output", "json"], EU),
    );
    let doc: Value = serde_json::from_str(&out).expect("one JSON document");
    let plan = doc["plan"].clone();
    let set = plan["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| {
            let s = |k: &str| c[k].as_str().expect(k).to_string();
            let name = match c["parent"].as_str() {
                Some(p) => format!("{} in {p}", s("name")),
                None => s("name"),
            };
            (s("action"), s("kind"), name, s("region"))
        })
        .collect();
    (plan, set)
}

/// What a real run did, as `(action, kind, name, region)`, read from its steps' `changes`.
fn did(run_json: &str) -> BTreeSet<(String, String, String, String)> {
    let doc: Value = serde_json::from_str(run_json).expect("json");
    let mut set = BTreeSet::new();
    for step in doc["steps"].as_array().expect("steps") {
        for line in step["outputs"]["changes"].as_array().into_iter().flatten() {
            let c = drflow_steps::ResourceChange::parse(line.as_str().unwrap()).expect("a line");
            let action = serde_json::to_value(c.action).unwrap();
            let name = match &c.parent {
                Some(p) => format!("{} in {p}", c.name),
                None => c.name,
            };
            set.insert((action.as_str().unwrap().to_string(), c.kind, name, c.region));
        }
    }
    set
}

#[test]
fn a_plan_on_an_empty_world_creates_everything_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path();
    let out = run(
        state,
        &args(&["run", "runbooks/provision.yaml", "--plan"], EU),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("+ vpc vpc-prod-eu (eu-south-1)\n"),
        "{stdout}"
    );
    assert!(stdout.contains("stand-in ids"), "{stdout}");
    assert!(text(&out.stderr).contains("nothing is changed"));
    assert!(
        files(state).is_empty(),
        "a plan creates nothing under the state dir"
    );

    let (p, planned) = plan(state, "runbooks/provision.yaml");
    assert!(planned.iter().all(|(a, ..)| a == "create"), "{planned:?}");
    let real = run_ok(
        state,
        &args(&["run", "runbooks/provision.yaml", "--output", "json"], EU),
    );
    assert_eq!(did(&real), planned, "the real run does what the plan said");
    assert_eq!(p["create"], resources(state).len());
    let count = format!(
        "Plan: {} to create, 0 to change, 0 to delete.",
        resources(state).len()
    );
    assert!(stdout.contains(&count), "{stdout}");
}

#[test]
fn plans_after_provision_after_drift_and_for_destroy_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path();
    run_ok(state, &args(&["run", "runbooks/provision.yaml"], EU));

    // Nothing to do.
    let before = files(state);
    let out = run_ok(
        state,
        &args(&["run", "runbooks/provision.yaml", "--plan"], EU),
    );
    assert!(
        out.starts_with("No changes")
            && out.contains("Plan: 0 to create, 0 to change, 0 to delete."),
        "{out}"
    );
    assert_eq!(files(state), before, "world and journal untouched");

    // Drift behind drflow's back: a queue setting changed, the dashboard deleted.
    let mut w = world(state);
    let central = w["regions"]["eu-central-1"].as_object_mut().unwrap();
    central["alarm-events-prod-eu"]["resource"]["spec"]["visibility_timeout_seconds"] = 30.into();
    let dash = central
        .iter()
        .find(|(_, r)| r["resource"]["name"] == "failover-dashboard-prod-eu")
        .map(|(id, _)| id.clone())
        .expect("dashboard");
    central.remove(&dash);
    std::fs::write(
        state.join("sim/world.json"),
        serde_json::to_vec_pretty(&w).unwrap(),
    )
    .unwrap();
    let before = files(state);
    let out = run_ok(
        state,
        &args(&["run", "runbooks/provision.yaml", "--plan"], EU),
    );
    assert!(
        out.contains(
            "~ sqs_queue alarm-events-prod-eu (eu-central-1): visibility_timeout_seconds drifted"
        ),
        "{out}"
    );
    assert!(
        out.contains("+ dashboard failover-dashboard-prod-eu (eu-central-1)"),
        "{out}"
    );
    assert!(
        out.contains("Plan: 1 to create, 1 to change, 0 to delete."),
        "{out}"
    );
    insta::assert_snapshot!("plan_after_drift", out);
    assert_eq!(files(state), before, "world and journal untouched");
    let (_, planned) = plan(state, "runbooks/provision.yaml");
    let real = run_ok(
        state,
        &args(&["run", "runbooks/provision.yaml", "--output", "json"], EU),
    );
    assert_eq!(did(&real), planned, "the repair is what the plan said");

    // Destroy: every resource, with `-`.
    let before = files(state);
    let all = resources(state);
    let (p, planned) = plan(state, "runbooks/destroy.yaml");
    let expected: BTreeSet<_> = all
        .iter()
        .map(|(k, n, r)| ("delete".to_string(), k.clone(), n.clone(), r.clone()))
        .collect();
    assert_eq!(planned, expected);
    assert_eq!(p["delete"], all.len());
    assert_eq!(files(state), before, "world and journal untouched");
}

#[test]
fn destroy_and_rollback_want_yes_when_nobody_can_answer() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path();
    run_ok(state, &args(&["run", "runbooks/provision.yaml"], EU));
    let before = files(state);

    let out = run(state, &args(&["run", "runbooks/destroy.yaml"], EU));
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("no terminal to ask on") && err.contains("--yes") && err.contains("--plan"),
        "{err}"
    );
    insta::assert_snapshot!("destroy_refused_off_a_terminal", err);
    assert_eq!(files(state), before, "nothing deleted, nothing journaled");

    // --output json still gets one JSON document.
    let out = run(
        state,
        &args(&["run", "runbooks/destroy.yaml", "--output", "json"], EU),
    );
    let doc: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(doc["status"], "invalid");

    let out = run(state, &["rollback", "latest"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--yes"), "{err}");
    assert_eq!(files(state), before, "nothing undone, nothing journaled");

    run_ok(state, &args(&["run", "runbooks/destroy.yaml", "--yes"], EU));
    assert!(resources(state).is_empty());
    run_ok(state, &args(&["run", "runbooks/provision.yaml"], EU));
    let out = run_ok(state, &["rollback", "latest", "-y"]);
    assert!(out.contains("rollback rolled_back"), "{out}");
    assert!(resources(state).is_empty());
}

#[test]
fn a_plan_on_the_aws_target_is_refused_before_anything_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        dir.path(),
        &args(
            &[
                "--target",
                "aws",
                "run",
                "runbooks/provision.yaml",
                "--plan",
            ],
            EU,
        ),
    );
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("works on the simulated cloud only; nothing was done"),
        "{err}"
    );
    assert!(files(dir.path()).is_empty());
}

/// Runs drflow under a pseudo-terminal (util-linux `script`), typing `answer`. `None` when
/// `script` is not installed.
fn on_terminal(state: &Path, args: &[&str], answer: &str) -> Option<(i32, String)> {
    let script = ["/usr/bin/script", "/bin/script"]
        .into_iter()
        .find(|p| Path::new(p).exists())?;
    let command = std::iter::once(env!("CARGO_BIN_EXE_drflow"))
        .chain(args.iter().copied())
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let mut child = Command::new(script)
        .args(["-qec", &command, "/dev/null"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("DRFLOW_STATE_DIR", state)
        .env_remove("DRFLOW_TARGET")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), answer.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    Some((out.status.code().unwrap_or(-1), text(&out.stdout)))
}

#[test]
fn on_a_terminal_destroy_and_rollback_list_what_they_delete_and_ask() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path();
    run_ok(state, &args(&["run", "runbooks/provision.yaml"], EU));
    let all = resources(state);
    let before = files(state);
    let destroy = args(&["run", "runbooks/destroy.yaml"], EU);

    let Some((code, screen)) = on_terminal(state, &destroy, "n\n") else {
        eprintln!("skipped: util-linux `script` is not installed");
        return;
    };
    assert_eq!(code, 1, "{screen}");
    assert!(
        screen.contains("- vpc vpc-prod-eu (eu-south-1)"),
        "{screen}"
    );
    let question = format!("Run destroy and delete {} resources? [y/N]", all.len());
    assert!(screen.contains(&question), "{screen}");
    assert!(
        screen.contains("not confirmed; nothing was done"),
        "{screen}"
    );
    assert_eq!(resources(state), all);
    assert_eq!(
        before.get(&state.join("sim/world.json")),
        files(state).get(&state.join("sim/world.json")),
        "the world is as it was"
    );

    let (code, screen) = on_terminal(state, &["rollback", "latest"], "\n").unwrap();
    assert_eq!(code, 1, "{screen}");
    assert!(screen.contains("Roll back run "), "{screen}");
    assert!(
        screen.contains("- vpc vpc-prod-eu (eu-south-1)"),
        "{screen}"
    );
    assert_eq!(resources(state), all);

    let (code, screen) = on_terminal(state, &destroy, "y\n").unwrap();
    assert_eq!(code, 0, "{screen}");
    assert!(resources(state).is_empty());

    // Nothing left to delete: no question.
    let (code, screen) = on_terminal(state, &destroy, "").unwrap();
    assert_eq!(code, 0, "{screen}");
    assert!(screen.contains("would delete nothing"), "{screen}");
}

/// Next to `prod-eu`, a plan for `eu` (whose suffix `prod-eu` ends with) only creates, and
/// touches none of `prod-eu`'s resources; given `prod-eu`'s domain, it says where the real run
/// would stop and why, and exits 1.
#[test]
fn a_plan_for_eu_next_to_prod_eu_sees_only_eu() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path();
    run_ok(state, &args(&["run", "runbooks/provision.yaml"], EU));
    let before = files(state);
    let eu = args(
        &[
            "run",
            "runbooks/provision.yaml",
            "--plan",
            "-p",
            "env_suffix=eu",
        ],
        EU,
    );
    let out = run(
        state,
        &[&eu[..], &["-p", "domain_name=trading-eu.example.com"]].concat(),
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let lines: Vec<&str> = stdout.lines().filter(|l| !l.starts_with("note:")).collect();
    let (count, changes) = lines.split_last().unwrap();
    assert!(count.starts_with("Plan: ") && count.ends_with("0 to change, 0 to delete."));
    assert!(
        changes
            .iter()
            .all(|l| l.starts_with("+ ") && !l.contains("prod-eu")),
        "{stdout}"
    );

    let out = run(state, &eu);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("! step `zone` would fail: hosted_zone trading-prod-eu.example.com")
            && stdout.contains("belongs to environment `prod-eu`"),
        "{stdout}"
    );
    assert_eq!(files(state), before, "world and journal untouched");
}

/// A plan never shows a value derived from a secret (a resource named from `params.pw | lower`),
/// and says which steps' changes it cannot show rather than claiming there are none.
#[test]
fn a_plan_never_shows_a_value_derived_from_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let file = dir.path().join("secret_suffix.yaml");
    std::fs::write(
        &file,
        "runbook: secret-suffix\nparams:\n  pw: { type: string, secret: true }\nsteps:\n  - id: vpc\n    uses: network.vpc\n    with:\n      env_suffix: ${{ params.pw | lower }}\n      region: us-east-1\n      role: primary\n",
    )
    .unwrap();
    let file = file.display().to_string();
    let out = run(&state, &["run", &file, "--plan", "-p", "pw=Hunter-two"]);
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(all.contains("Plan:"), "{all}");
    assert!(!all.to_lowercase().contains("hunter"), "{all}");
    assert!(
        all.contains(
            "? step `vpc`: its changes are not shown, because its inputs derive from a secret"
        ),
        "{all}"
    );
    assert!(!all.contains("No changes"), "{all}");
}
