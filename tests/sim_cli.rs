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
