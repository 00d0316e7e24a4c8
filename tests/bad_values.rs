//! A value the cloud would refuse, or that makes no sense, is refused before anything is built:
//! exit 2, located where the value came from (the runbook, the line of the parameter file, or
//! the `-p` flag), with a hint, and nothing created or journaled. `validate` with the same
//! parameters reports exactly what `run` does. The examples come first.

use std::collections::BTreeMap;
use std::path::Path;

#[path = "common/cli.rs"]
mod cli;
use cli::{drflow, drflow_in, stderr, stdout};

/// Runs `drflow run RUNBOOK ARGS…` and `drflow validate RUNBOOK ARGS…`: both exit 2 with the
/// same report and print nothing on stdout. Returns the report.
fn refused(runbook: &str, args: &[&str]) -> String {
    let mut run_args = vec!["run", runbook];
    run_args.extend_from_slice(args);
    let run = drflow(&run_args);
    assert_eq!(run.status.code(), Some(2), "{}", stderr(&run));
    assert!(run.stdout.is_empty(), "nothing ran: {}", stdout(&run));
    let mut validate_args = vec!["validate", runbook];
    validate_args.extend_from_slice(args);
    let validate = drflow(&validate_args);
    assert_eq!(validate.status.code(), Some(2), "{}", stderr(&validate));
    assert_eq!(stderr(&run), stderr(&validate), "run and validate agree");
    stderr(&run)
}

const PROVISION: &str = "runbooks/provision.yaml";

fn params(name: &str) -> String {
    format!("tests/fixtures/values/{name}.yaml")
}

#[test]
fn a_suffix_too_long_for_an_alb_name_is_refused_with_the_tightest_limit() {
    let suffix = "a".repeat(49);
    let flag = format!("env_suffix={suffix}");
    let text = refused(PROVISION, &["-p", &flag]);
    assert!(
        text.starts_with(&format!(
            "error: command line, -p flag 1: `-p env_suffix={suffix}`: `env_suffix` is 49 characters long, more than the 28 allowed: `alb-<env_suffix>` is an ALB name, which AWS limits to 32 characters (used by steps `alb_primary` and `alb_standby`)\n  hint: use at most 28 characters\n"
        )),
        "{text}"
    );
    assert!(
        text.ends_with("1 problem found; nothing was run\n"),
        "{text}"
    );
    // One character less than the limit fits every name of provision.
    let ok = drflow(&[
        "validate",
        PROVISION,
        "-p",
        &format!("env_suffix={}", "a".repeat(28)),
    ]);
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
}

#[test]
fn a_suffix_ending_in_a_dash_is_refused() {
    insta::assert_snapshot!(refused(PROVISION, &["-p", "env_suffix=prod-"]));
}

#[test]
fn a_suffix_with_capitals_and_underscores_is_refused_at_its_line() {
    insta::assert_snapshot!(refused(PROVISION, &["--params-file", &params("prod_eu")]));
}

#[test]
fn a_region_that_does_not_exist_is_refused_at_its_line() {
    insta::assert_snapshot!(refused(PROVISION, &["--params-file", &params("us_east_3")]));
}

#[test]
fn the_same_region_twice_is_refused_as_such() {
    insta::assert_snapshot!(refused(
        PROVISION,
        &["--params-file", &params("same_regions")]
    ));
}

#[test]
fn a_cidr_with_host_bits_set_suggests_the_network_address() {
    insta::assert_snapshot!(refused(PROVISION, &["--params-file", &params("host_bits")]));
}

#[test]
fn overlapping_vpc_blocks_are_refused_before_any_step() {
    insta::assert_snapshot!(refused(PROVISION, &["--params-file", &params("overlap")]));
}

#[test]
fn a_routing_policy_other_than_weighted_or_failover_is_refused() {
    insta::assert_snapshot!(refused(
        PROVISION,
        &["--params-file", &params("routing_policy")]
    ));
}

#[test]
fn aurora_classes_global_database_does_not_support_are_refused() {
    insta::assert_snapshot!(refused(
        PROVISION,
        &["--params-file", &params("aurora_class")]
    ));
}

#[test]
fn an_ops_email_that_is_not_an_address_is_refused() {
    insta::assert_snapshot!(refused(PROVISION, &["--params-file", &params("ops_email")]));
    // Empty means no subscription, and is accepted.
    let ok = drflow(&["validate", PROVISION, "-p", "ops_email="]);
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
}

#[test]
fn a_domain_name_aws_would_store_otherwise_is_refused() {
    // AWS keeps DNS names in lower case and ACM refuses a final dot: either would be drift.
    let dot = refused(PROVISION, &["-p", "domain_name=trading.example.com."]);
    assert!(dot.contains("ends with a dot"), "{dot}");
    assert!(dot.contains("write `trading.example.com`"), "{dot}");
    let upper = refused(PROVISION, &["-p", "domain_name=Trading.Example.com"]);
    assert!(upper.contains("has upper-case letters"), "{upper}");
    assert!(upper.contains("write `trading.example.com`"), "{upper}");
}

#[test]
fn health_check_metrics_are_read_in_us_east_1_only() {
    let text = refused(PROVISION, &["-p", "health_metrics_region=eu-west-1"]);
    assert!(
        text.contains("`health_metrics_region` must be one of `us-east-1`, not `eu-west-1`"),
        "{text}"
    );
}

#[test]
fn counts_of_zero_are_refused() {
    insta::assert_snapshot!(refused(PROVISION, &["--params-file", &params("counts")]));
}

#[test]
fn more_subnets_than_the_region_has_zones_are_refused() {
    let text = refused(
        PROVISION,
        &["-p", "standby_region=us-west-1", "-p", "private_subnets=3"],
    );
    assert!(
        text.contains("3 private subnets need an availability zone each, but us-west-1 has 2 (us-west-1a, us-west-1c)"),
        "{text}"
    );
}

#[test]
fn the_shipped_parameter_files_validate() {
    for file in ["runbooks/params/eu.yaml", "runbooks/params/us-east.yaml"] {
        for runbook in [PROVISION, "runbooks/destroy.yaml"] {
            let out = drflow(&["validate", runbook, "--params-file", file]);
            assert_eq!(
                out.status.code(),
                Some(0),
                "{runbook} {file}: {}",
                stderr(&out)
            );
        }
    }
}

/// `--timeout 0s` is refused like a step's `timeout: 0s`: exit 2, nothing journaled.
#[test]
fn a_run_timeout_of_zero_is_refused() {
    let state = tempfile::tempdir().expect("dir");
    let out = drflow_in(
        state.path(),
        &["run", "runbooks/examples/retries.yaml", "--timeout", "0s"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("a timeout must be more than zero"),
        "{}",
        stderr(&out)
    );
    assert!(
        std::fs::read_dir(state.path())
            .expect("dir")
            .next()
            .is_none(),
        "nothing was written to the state dir"
    );
}

/// One set of boolean spellings on every route: `-p`, a parameter file, a default.
#[test]
fn booleans_are_spelt_the_same_on_every_route() {
    let rb = "tests/fixtures/ok/params.yaml";
    let dir = tempfile::tempdir().expect("dir");
    for (text, ok) in [
        ("True", true),
        ("FALSE", true),
        ("yes", false),
        ("1", false),
    ] {
        let flag = drflow(&[
            "validate",
            rb,
            "-p",
            "env_suffix=x",
            "-p",
            &format!("dry_run={text}"),
        ]);
        let file = dir.path().join("p.yaml");
        std::fs::write(&file, format!("env_suffix: x\ndry_run: {text}\n")).expect("write");
        let from_file = drflow(&[
            "validate",
            rb,
            "--params-file",
            file.to_str().expect("path"),
        ]);
        for (route, out) in [("-p", &flag), ("params file", &from_file)] {
            assert_eq!(
                out.status.code(),
                Some(if ok { 0 } else { 2 }),
                "{route} dry_run={text}: {}",
                stderr(out)
            );
            if !ok {
                assert!(
                    stderr(out).contains("`True`, `TRUE`, `False` and `FALSE` also work; `yes`, `no`, `on`, `off`, `1` and `0` are not booleans"),
                    "{route}: {}",
                    stderr(out)
                );
            }
        }
    }
}

#[test]
fn validate_says_which_checks_it_skipped_for_a_missing_parameter() {
    let out = drflow(&["validate", "tests/fixtures/ok/required.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    insta::assert_snapshot!(stdout(&out));
    let out = drflow(&[
        "validate",
        "tests/fixtures/ok/required.yaml",
        "-p",
        "region=us-east-3",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).starts_with("error: command line, -p flag 1: `-p region=us-east-3`: `region` is not an AWS region: `us-east-3` (used by step `vpc`)"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn parameters_belong_to_one_runbook() {
    let out = drflow(&[
        "validate",
        PROVISION,
        "runbooks/destroy.yaml",
        "-p",
        "env_suffix=x",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("give the parameters of one runbook"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn explain_lists_the_parameters_with_types_defaults_secrets_and_checks() {
    let out = drflow(&["validate", "tests/fixtures/ok/required.yaml", "--explain"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    insta::assert_snapshot!(stdout(&out));
    let out = drflow(&["validate", "tests/fixtures/ok/params.yaml", "--explain"]);
    let text = stdout(&out);
    assert!(
        text.contains("  token  string  default ***  secret"),
        "{text}"
    );
    assert!(
        !text.contains("hunter2"),
        "a secret default is never shown: {text}"
    );
    let out = drflow(&["validate", PROVISION, "--explain"]);
    let text = stdout(&out);
    assert!(
        text.contains("  env_suffix  string  default prod\n      Ends every resource name: <type>-<env_suffix>.\n      - 1 to 28 characters (`alb-<env_suffix>` is an ALB name, which AWS limits to 32 characters)"),
        "{text}"
    );
    assert!(
        text.contains("      - with other inputs: The primary and standby regions differ"),
        "{text}"
    );
}

/// Every file under a directory, by relative path, with its bytes.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path
                    .strip_prefix(dir)
                    .expect("inside")
                    .display()
                    .to_string();
                out.insert(rel, std::fs::read(&path).expect("read"));
            }
        }
    }
    out
}

/// Every refused value leaves the simulated world and the journal exactly as they were: after
/// a provision, each kind of refusal is tried against the same state dir, and every file in it
/// (world.json, the journal, locks) is byte for byte the same afterwards.
#[test]
fn every_refused_value_leaves_the_world_and_the_journal_as_they_were() {
    let state = tempfile::tempdir().expect("dir");
    let ok = drflow_in(
        state.path(),
        &["run", PROVISION, "--params-file", "runbooks/params/eu.yaml"],
    );
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    let before = files(state.path());
    assert!(before.contains_key("sim/world.json"), "{:?}", before.keys());
    let long = format!("env_suffix={}", "a".repeat(49));
    let refusals: Vec<Vec<String>> = [
        vec!["-p", &long],
        vec!["-p", "env_suffix=prod-"],
        vec!["--params-file", &params("prod_eu")],
        vec!["--params-file", &params("us_east_3")],
        vec!["--params-file", &params("same_regions")],
        vec!["--params-file", &params("host_bits")],
        vec!["--params-file", &params("overlap")],
        vec!["--params-file", &params("routing_policy")],
        vec!["--params-file", &params("aurora_class")],
        vec!["--params-file", &params("ops_email")],
        vec!["--params-file", &params("counts")],
        vec!["-p", "colour=red"],
        vec!["--timeout", "0s"],
    ]
    .iter()
    .map(|a| a.iter().map(|s| s.to_string()).collect())
    .collect();
    for args in &refusals {
        let mut full = vec!["run", PROVISION];
        full.extend(args.iter().map(String::as_str));
        let out = drflow_in(state.path(), &full);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(
            files(state.path()) == before,
            "{args:?} changed the state dir"
        );
    }
    for fixture in ["route53_values", "cloud_values"] {
        let path = format!("tests/fixtures/bad/{fixture}.yaml");
        let out = drflow_in(state.path(), &["run", &path]);
        assert_eq!(out.status.code(), Some(2), "{fixture}");
        assert!(
            files(state.path()) == before,
            "{fixture} changed the state dir"
        );
    }
}
