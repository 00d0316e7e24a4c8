//! `--target aws` on the command line: the flags that go with it, the commands that refuse it,
//! and what an unreachable endpoint looks like to the operator.

use std::path::Path;

#[path = "common/cli.rs"]
mod cli;
#[path = "common/moto.rs"]
mod moto;
use cli::{drflow, drflow_in, stderr, stdout};

/// Each wrong combination of flags is refused before anything runs, with exit 2 and one clear
/// message (snapshotted).
#[test]
fn bad_aws_flag_combinations_are_refused_with_exit_2() {
    let cases: &[(&str, &[&str])] = &[
        (
            "endpoint_without_aws",
            &[
                "run",
                "runbooks/provision.yaml",
                "--endpoint-url",
                "http://127.0.0.1:5000",
            ],
        ),
        (
            "profile_and_endpoint_without_aws",
            &[
                "run",
                "runbooks/provision.yaml",
                "--profile",
                "dr",
                "--endpoint-url",
                "http://127.0.0.1:5000",
            ],
        ),
        (
            "endpoint_not_a_url",
            &[
                "run",
                "runbooks/provision.yaml",
                "--target",
                "aws",
                "--endpoint-url",
                "127.0.0.1:5000",
            ],
        ),
        (
            "endpoint_without_host",
            &[
                "run",
                "runbooks/provision.yaml",
                "--target",
                "aws",
                "--endpoint-url",
                "http://:5000",
            ],
        ),
        ("sim_on_aws", &["sim", "show", "--target", "aws"]),
        (
            "run_plan_on_aws",
            &[
                "run",
                "runbooks/provision.yaml",
                "--target",
                "aws",
                "--plan",
            ],
        ),
        (
            "plan_on_aws",
            &["plan", "runbooks/failover.yaml", "--target", "aws"],
        ),
        (
            "drill_on_aws",
            &["drill", "--scenario", "region-outage", "--target", "aws"],
        ),
    ];
    for (name, args) in cases {
        let state = tempfile::tempdir().expect("dir");
        let out = drflow_in(state.path(), args);
        assert_eq!(out.status.code(), Some(2), "{name}: {}", stderr(&out));
        assert!(out.stdout.is_empty(), "{name}: nothing printed on stdout");
        assert!(
            !state.path().join("journal.db").exists(),
            "{name}: nothing journaled"
        );
        insta::assert_snapshot!(format!("aws_flags_{name}"), stderr(&out));
    }
}

/// The flags are listed on every command that opens a backend.
#[test]
fn the_aws_flags_are_on_every_command_that_opens_a_backend() {
    for cmd in ["run", "resume", "rollback", "outputs"] {
        let out = drflow(&[cmd, "--help"]);
        assert_eq!(out.status.code(), Some(0), "{cmd}: {}", stderr(&out));
        let help = stdout(&out);
        assert!(help.contains("--endpoint-url <URL>"), "{cmd}: {help}");
        assert!(help.contains("--profile <NAME>"), "{cmd}: {help}");
    }
}

/// A port on 127.0.0.1 that nothing listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// An unreachable endpoint: the run fails with one line naming region, service and operation,
/// exits non-zero, and its journal is intact (`drflow runs` and `drflow show` read it). Once
/// the endpoint answers (the shared moto), `drflow resume` finishes the same run.
#[test]
fn an_unreachable_endpoint_fails_the_run_with_one_clear_line_and_keeps_the_journal() {
    let state = tempfile::tempdir().expect("dir");
    let endpoint = format!("http://127.0.0.1:{}", closed_port());
    let out = moto::drflow_aws(
        &endpoint,
        state.path(),
        &moto::testing_keys(),
        &["run", "runbooks/provision.yaml", "--timeout", "2m", "--yes"],
    )
    .output()
    .expect("drflow runs");
    let err = stderr(&out);
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert_ne!(out.status.code(), Some(2), "the input was valid: {err}");
    let named = err.lines().find(|l| {
        l.contains("could not be reached")
            && l.split_whitespace().any(|w| {
                let w = w.trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
                w.split('-').count() == 3 && w.ends_with(|c: char| c.is_ascii_digit())
            })
    });
    let line =
        named.unwrap_or_else(|| panic!("no line names region, service and operation: {err}"));
    // `kms CreateKey in us-east-1: the endpoint could not be reached …`
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words
        .windows(4)
        .position(|w| w[2] == "in" && w[1].starts_with(|c: char| c.is_ascii_uppercase()))
        .unwrap_or_else(|| panic!("no `service Operation in region`: {line}"));
    assert!(
        words[at]
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()),
        "{line}"
    );
    let runs = drflow_in(state.path(), &["runs"]);
    assert_eq!(runs.status.code(), Some(0), "{}", stderr(&runs));
    let listed = stdout(&runs);
    let run_id = listed
        .split_whitespace()
        .find(|w| w.len() > 15 && w.contains('T') && w.contains('-'))
        .unwrap_or_else(|| panic!("the run is journaled: {listed}"));
    let show = drflow_in(state.path(), &["show", run_id]);
    assert_eq!(show.status.code(), Some(0), "{}", stderr(&show));
    assert!(Path::new(&state.path().join("journal.db")).exists());

    // Fixed: the endpoint answers. The same run goes on and finishes.
    let Some(moto) = moto::moto() else { return };
    let resumed = moto::drflow_aws(
        &moto.endpoint,
        state.path(),
        &moto::testing_keys(),
        &["resume", run_id, "--output", "json"],
    )
    .output()
    .expect("drflow runs");
    assert_eq!(resumed.status.code(), Some(0), "{}", stderr(&resumed));
    let doc: serde_json::Value = serde_json::from_slice(&resumed.stdout).expect("json");
    assert_eq!(doc["run_id"], run_id, "the same run");
    assert_eq!(doc["status"], "succeeded");
    // Leave the shared moto as it was: destroy what the run built.
    let destroy = moto::drflow_aws(
        &moto.endpoint,
        state.path(),
        &moto::testing_keys(),
        &["run", "runbooks/destroy.yaml", "--yes"],
    )
    .output()
    .expect("drflow runs");
    assert_eq!(destroy.status.code(), Some(0), "{}", stderr(&destroy));
}
