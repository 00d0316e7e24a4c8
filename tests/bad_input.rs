//! Every kind of bad input gets a clear error (what, where as file:line:col, what to do), exit
//! code 2, and nothing runs. The error output of each is snapshotted.

use std::path::Path;

#[path = "common/cli.rs"]
mod cli;
use cli::{drflow, stderr};

/// `validate` and `run` of each bad runbook exit 2 with the same diagnostics, and `run` starts
/// no step.
#[test]
fn every_bad_runbook_is_reported_with_locations_and_nothing_runs() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bad");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("fixtures")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml") && n != "params_file.yaml")
        .collect();
    names.sort();
    assert!(names.len() >= 14, "fixtures missing: {names:?}");
    for name in names {
        let path = format!("tests/fixtures/bad/{name}");
        let validate = drflow(&["validate", &path]);
        assert_eq!(
            validate.status.code(),
            Some(2),
            "{name}: {}",
            stderr(&validate)
        );
        let text = stderr(&validate);
        assert!(
            text.contains(&format!("{path}:")),
            "{name}: every problem names its file:line:col\n{text}"
        );
        let run = drflow(&["run", &path]);
        assert_eq!(run.status.code(), Some(2), "{name}");
        assert_eq!(
            stderr(&run),
            text,
            "{name}: run reports what validate reports"
        );
        assert!(run.stdout.is_empty(), "{name}: nothing ran");
        let snapshot = name.trim_end_matches(".yaml").to_string();
        insta::assert_snapshot!(snapshot, text);
    }
}

#[test]
fn a_missing_file_is_a_clear_error() {
    let out = drflow(&["run", "runbooks/nope.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    insta::assert_snapshot!(stderr(&out));
}

#[test]
fn bad_parameters_are_reported_together() {
    let out = drflow(&[
        "run",
        "tests/fixtures/ok/params.yaml",
        "--params-file",
        "tests/fixtures/bad/params_file.yaml",
        "-p",
        "ratio=lots",
        "-p",
        "dry_run=perhaps",
        "-p",
        "colour=red",
        "-p",
        "wait=soon",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    insta::assert_snapshot!(stderr(&out));
}

#[test]
fn a_missing_required_parameter_names_the_flag_to_pass() {
    let out = drflow(&["run", "tests/fixtures/ok/params.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    insta::assert_snapshot!(stderr(&out));
}

#[test]
fn a_malformed_flag_is_refused() {
    let out = drflow(&["run", "tests/fixtures/ok/params.yaml", "-p", "env_suffix"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("is not of the form NAME=VALUE"));
    let out = drflow(&[
        "run",
        "tests/fixtures/ok/params.yaml",
        "--max-parallel",
        "0",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let out = drflow(&["run", "tests/fixtures/ok/params.yaml", "--timeout", "soon"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("invalid duration"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_directory_or_a_binary_file_is_refused_with_a_hint() {
    let out = drflow(&["validate", "runbooks"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("hint: give a runbook file, not a directory"),
        "{}",
        stderr(&out)
    );
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("latin1.yaml");
    std::fs::write(&file, b"runbook: caf\xe9\nsteps: []\n").expect("write");
    let out = drflow(&["validate", file.to_str().expect("path")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("not UTF-8"), "{}", stderr(&out));
}

#[test]
fn an_integer_too_large_says_so() {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("p.yaml");
    std::fs::write(&file, "replicas: 99999999999999999999999\n").expect("write");
    let out = drflow(&[
        "run",
        "tests/fixtures/ok/params.yaml",
        "-p",
        "env_suffix=x",
        "--params-file",
        file.to_str().expect("path"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("must be an int, but this is a whole number too large for 64 bits"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_wrong_secret_is_never_echoed_in_the_error() {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("secret.yaml");
    std::fs::write(
        &file,
        "runbook: s\nparams:\n  pin: { type: int, secret: true }\nsteps:\n  - { id: a, uses: core.log, with: { message: hi } }\n",
    )
    .expect("write");
    let out = drflow(&[
        "run",
        file.to_str().expect("path"),
        "-p",
        "pin=Sup3rSecretPin",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let text = stderr(&out);
    assert!(
        text.contains("`-p pin=***`: `pin` takes a whole number"),
        "{text}"
    );
    assert!(!text.contains("Sup3rSecretPin"), "{text}");
}

#[test]
fn a_parameter_file_line_is_not_quoted_when_the_runbook_has_secrets() {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("p.yaml");
    // A misspelt secret: the value would show if the line were quoted back.
    std::fs::write(&file, "env_suffix: x\ntokn: Hunter2Hunter2\n").expect("write");
    let out = drflow(&[
        "run",
        "tests/fixtures/ok/params.yaml",
        "--params-file",
        file.to_str().expect("path"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let text = stderr(&out);
    assert!(
        text.contains("p.yaml:2:1: unknown parameter `tokn`"),
        "{text}"
    );
    assert!(!text.contains("Hunter2Hunter2"), "{text}");
}
