//! `drflow policy RUNBOOK`: the least-privilege IAM policy of a runbook's step types.

use std::collections::BTreeSet;

#[path = "common/cli.rs"]
mod cli;
use cli::{drflow, stderr, stdout};
use drflow_steps::policy::{iam_action, step_actions};

/// The step types a runbook uses, read from its `uses:` lines.
fn step_types(runbook: &str) -> BTreeSet<String> {
    let source =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(runbook))
            .expect("runbook");
    source
        .lines()
        .filter_map(|l| l.trim().strip_prefix("uses:"))
        .map(|t| t.trim().to_string())
        .collect()
}

fn policy(args: &[&str]) -> serde_json::Value {
    let out = drflow(args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    serde_json::from_str(&stdout(&out)).expect("one JSON document")
}

/// Every action of the document, with the resources of its statements.
fn actions(doc: &serde_json::Value) -> Vec<(String, Vec<String>)> {
    assert_eq!(doc["Version"], "2012-10-17");
    let mut all = Vec::new();
    for st in doc["Statement"].as_array().expect("statements") {
        assert_eq!(st["Effect"], "Allow");
        let resources: Vec<String> = match &st["Resource"] {
            serde_json::Value::String(s) => vec![s.clone()],
            v => v
                .as_array()
                .expect("resources")
                .iter()
                .map(|r| r.as_str().expect("string").to_string())
                .collect(),
        };
        for a in st["Action"].as_array().expect("actions") {
            all.push((a.as_str().expect("string").to_string(), resources.clone()));
        }
    }
    all
}

/// The policy of provision and failover has no `*` action, covers every action its step types
/// declare, and names the runbook's regions (from the params file) in place of `${region}`.
#[test]
fn the_policy_of_provision_and_failover_covers_their_step_types_without_wildcard_actions() {
    for runbook in ["runbooks/provision.yaml", "runbooks/failover.yaml"] {
        let doc = policy(&[
            "policy",
            runbook,
            "--params-file",
            "runbooks/params/eu.yaml",
            "--account",
            "123456789012",
        ]);
        let got = actions(&doc);
        assert!(got.len() > 5, "{runbook}: {doc:#}");
        for (action, resources) in &got {
            assert!(!action.contains('*'), "{runbook}: wildcard action {action}");
            for r in resources {
                assert!(r == "*" || r.starts_with("arn:aws:"), "{runbook}: {r}");
                assert!(!r.contains("${"), "{runbook}: unfilled placeholder in {r}");
            }
        }
        let names: BTreeSet<&str> = got.iter().map(|(a, _)| a.as_str()).collect();
        let types = step_types(runbook);
        assert!(!types.is_empty());
        for t in &types {
            for perm in step_actions(t) {
                assert!(
                    names.contains(iam_action(perm.action)),
                    "{runbook}: {t} needs {} and the policy lacks it",
                    perm.action
                );
            }
        }
        let all_resources: String = got.iter().flat_map(|(_, r)| r.clone()).collect();
        assert!(
            all_resources.contains(":eu-south-1:123456789012:"),
            "{runbook}"
        );
        assert!(
            all_resources.contains(":eu-central-1:123456789012:"),
            "{runbook}"
        );
    }
    let failover = policy(&["policy", "runbooks/failover.yaml"]);
    let names: Vec<String> = actions(&failover).into_iter().map(|(a, _)| a).collect();
    for needed in [
        "rds:FailoverGlobalCluster",
        "autoscaling:UpdateAutoScalingGroup",
        "route53:ChangeResourceRecordSets",
        "sns:Publish",
    ] {
        assert!(names.iter().any(|n| n == needed), "failover lacks {needed}");
    }
    // Failover only moves things: it creates and deletes nothing (the standby's new instances
    // are tagged at launch).
    assert!(
        !names
            .iter()
            .any(|n| (n.contains(":Create") && n != "ec2:CreateTags") || n.contains(":Delete")),
        "{names:?}"
    );
}

/// Without an account the placeholder stays, and stderr says how to fill it.
#[test]
fn an_unknown_account_is_left_as_a_placeholder_and_said() {
    let out = drflow(&["policy", "runbooks/failover.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("${account}"));
    assert!(
        stderr(&out).contains("give --account ID"),
        "{}",
        stderr(&out)
    );
}

/// Bad input: exit 2 and a located, snapshotted error.
#[test]
fn bad_policy_input_is_refused_with_exit_2() {
    let cases: &[(&str, &[&str])] = &[
        ("no_runbook", &["policy"]),
        (
            "bad_account",
            &["policy", "runbooks/failover.yaml", "--account", "12345"],
        ),
        ("missing_file", &["policy", "runbooks/nope.yaml"]),
        ("bad_runbook", &["policy", "tests/fixtures/bad/cycle.yaml"]),
        (
            "bad_param",
            &["policy", "runbooks/failover.yaml", "-p", "quorum=many"],
        ),
    ];
    for (name, args) in cases {
        let out = drflow(args);
        assert_eq!(out.status.code(), Some(2), "{name}: {}", stderr(&out));
        assert!(out.stdout.is_empty(), "{name}");
        insta::assert_snapshot!(format!("policy_{name}"), stderr(&out));
    }
}

#[test]
fn daemon_adds_what_the_daemon_itself_calls_scoped_to_the_regions() {
    let base = actions(&policy(&[
        "policy",
        "runbooks/failover.yaml",
        "--params-file",
        "runbooks/params/eu.yaml",
    ]));
    let with = actions(&policy(&[
        "policy",
        "runbooks/failover.yaml",
        "--params-file",
        "runbooks/params/eu.yaml",
        "--daemon",
    ]));
    let names = |a: &[(String, Vec<String>)]| -> BTreeSet<String> {
        a.iter().map(|(n, _)| n.clone()).collect()
    };
    assert!(!names(&base).contains("sqs:ReceiveMessage"));
    for action in [
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "cloudwatch:DescribeAlarms",
    ] {
        assert!(names(&with).contains(action), "{action}: {with:?}");
    }
    let receive = &with
        .iter()
        .find(|(n, _)| n == "sqs:ReceiveMessage")
        .unwrap()
        .1;
    assert!(
        receive
            .iter()
            .any(|r| r.starts_with("arn:aws:sqs:eu-central-1:")),
        "scoped to the queue's region: {receive:?}"
    );
    assert!(names(&base).is_subset(&names(&with)));
}
