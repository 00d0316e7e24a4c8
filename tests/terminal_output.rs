//! What a person sees of a run, off a terminal: a line per resource created, changed or deleted
//! (not log records), a summary that counts resources and gives the sim's time, and for a run
//! that did not succeed its errors and the commands to go on. `-v` and `DRFLOW_LOG` say more.
//!
//! Snapshots mask what changes from run to run: the run id, the state dir, wall-clock
//! durations. Runs use `--max-parallel 1`, so lines come in one order and the sim's virtual
//! clock moves the same way every time.

use std::path::Path;
use std::process::{Command, Output};

fn drflow(state: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_drflow"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("DRFLOW_STATE_DIR", state)
        .env_remove("DRFLOW_LOG")
        .env_remove("DRFLOW_TARGET")
        .env("NO_COLOR", "1")
        .output()
        .expect("drflow runs")
}

fn run(state: &Path, file: &str, extra: &[&str]) -> Output {
    let mut args = vec!["run", file, "--max-parallel", "1"];
    args.extend_from_slice(extra);
    drflow(state, &args)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Whether `token` is a duration as drflow prints one (`0ms`, `1.5s`, `3m07s`).
fn is_duration(token: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    if let Some(n) = token.strip_suffix("ms") {
        return digits(n);
    }
    let Some(rest) = token.strip_suffix('s') else {
        return false;
    };
    if let Some((m, s)) = rest.split_once('m') {
        return digits(m) && digits(s);
    }
    match rest.split_once('.') {
        Some((a, b)) => digits(a) && digits(b),
        None => false,
    }
}

/// The output with the run id, the state dir and durations masked: the duration column of the
/// table, the `[ elapsed]` before a progress line, and the time and wall time of the run.
fn masked(out: &Output, state: &Path) -> String {
    let stderr = text(&out.stderr);
    let stdout = text(&out.stdout);
    let run_id = stderr
        .split_once("drflow: run ")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .unwrap_or("<none>")
        .to_string();
    let mut masked = format!(
        "exit code: {}\n--- stderr\n{stderr}--- stdout\n{stdout}",
        out.status.code().unwrap_or(-1)
    );
    masked = masked
        .replace(&run_id, "<RUN_ID>")
        .replace(&state.display().to_string(), "<STATE_DIR>");
    let mut lines: Vec<String> = Vec::new();
    let mut duration_col: Option<(usize, usize)> = None;
    for line in masked.lines() {
        let mut line = line.to_string();
        if line.starts_with("step ") && line.contains(" duration ") {
            let end = line.find(" duration").map(|i| i + " duration".len());
            duration_col = end.map(|e| (e - 9, e));
        } else if line.is_empty() {
            duration_col = None;
        } else if let Some((a, b)) = duration_col
            && line.len() >= b
            && is_duration(line[a..b].trim())
        {
            line.replace_range(a..b, "    <dur>");
        }
        if line.starts_with('[')
            && let Some(end) = line.find(']')
            && is_duration(line[1..end].trim())
        {
            line.replace_range(1..end, " <dur> ");
        }
        if line.starts_with("run <RUN_ID> of ")
            && let Some(i) = line.find(" in ")
        {
            let start = i + " in ".len();
            let end = line[start..].find(' ').map_or(line.len(), |n| start + n);
            if is_duration(&line[start..end]) {
                line.replace_range(start..end, "<dur>");
            }
            // On the sim the run's time is virtual; the wall time follows it.
            if let Some(open) = line.rfind(" (")
                && let Some(wall) = line[open + 2..].strip_suffix(" wall)")
                && is_duration(wall)
            {
                line.replace_range(open + 2..line.len() - " wall)".len(), "<wall>");
            }
        }
        lines.push(line);
    }
    lines.join("\n") + "\n"
}

const PROVISION: &str = "runbooks/provision.yaml";
const EU: [&str; 2] = ["--params-file", "runbooks/params/eu.yaml"];

/// Provision, provision again, destroy: one line per resource, counted in resources.
#[test]
fn provision_rerun_and_destroy_show_resources_not_records() {
    let dir = tempfile::tempdir().expect("dir");
    let state = dir.path();

    let first = run(state, PROVISION, &EU);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));
    let err = text(&first.stderr);
    let plus = err.lines().filter(|l| l.starts_with("  + ")).count();
    // One line per resource created, and the summary counts the same resources.
    assert!(plus > 100, "{err}");
    assert!(
        text(&first.stdout).contains(&format!("resources: {plus} created, 0 changed, 0 deleted")),
        "{}",
        text(&first.stdout)
    );
    assert!(!err.contains("INFO"), "no log records by default: {err}");
    insta::assert_snapshot!("provision", masked(&first, state));

    let again = run(state, PROVISION, &EU);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again.stderr));
    assert!(
        text(&again.stdout).contains(&format!(
            "resources: no changes ({plus} resources as they should be)"
        )),
        "{}",
        text(&again.stdout)
    );
    insta::assert_snapshot!("provision_again", masked(&again, state));

    let destroy = run(
        state,
        "runbooks/destroy.yaml",
        &["--params-file", "runbooks/params/eu.yaml", "--yes"],
    );
    assert_eq!(destroy.status.code(), Some(0), "{}", text(&destroy.stderr));
    let minus = text(&destroy.stderr)
        .lines()
        .filter(|l| l.starts_with("  - "))
        .count();
    assert_eq!(minus, plus, "every resource provision made is deleted");
    assert!(
        text(&destroy.stdout).contains(&format!("resources: 0 created, 0 changed, {plus} deleted")),
        "{}",
        text(&destroy.stdout)
    );
    insta::assert_snapshot!("destroy", masked(&destroy, state));
}

/// A failed run ends with its error and the commands to resume or roll it back, and lists no
/// outputs (they would be null).
#[test]
fn a_failed_run_ends_with_the_error_and_the_commands_to_go_on() {
    let dir = tempfile::tempdir().expect("dir");
    let state = dir.path();
    let out = run(state, "tests/fixtures/ok/fail_after_network.yaml", &[]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(!stdout.contains("outputs:"), "{stdout}");
    assert!(!stdout.contains("null"), "{stdout}");
    let tail: Vec<&str> = stdout.lines().rev().take(4).collect();
    assert!(
        tail[2].starts_with("  drflow ") && tail[2].contains(" resume "),
        "{stdout}"
    );
    assert!(
        tail[0].starts_with("  drflow ") && tail[0].contains(" rollback "),
        "{stdout}"
    );
    insta::assert_snapshot!("failed", masked(&out, state));

    // The command printed is the one that goes on.
    let resume = tail[2].trim();
    let args: Vec<&str> = resume.split_whitespace().skip(1).collect();
    let again = drflow(state, &args);
    assert_eq!(again.status.code(), Some(1), "{}", text(&again.stderr));
    assert!(
        text(&again.stderr).contains("steps already succeeded"),
        "{}",
        text(&again.stderr)
    );
}

/// Without a journal there is nothing to resume: the summary says to run again.
#[test]
fn a_failed_run_without_a_journal_says_to_run_it_again() {
    let dir = tempfile::tempdir().expect("dir");
    let out = run(
        dir.path(),
        "tests/fixtures/ok/failing.yaml",
        &["--no-journal"],
    );
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    assert!(last.starts_with("to go on: run it again"), "{stdout}");
    assert!(!stdout.contains(" resume "), "{stdout}");
}

/// `-v` adds each step's start and end and the log records; `DRFLOW_LOG` picks records by
/// filter; neither is there by default.
#[test]
fn verbose_and_drflow_log_say_more() {
    let dir = tempfile::tempdir().expect("dir");
    let file = "tests/fixtures/ok/fail_after_network.yaml";
    let quiet = text(&run(dir.path(), file, &[]).stderr);
    assert!(!quiet.contains("start    network"), "{quiet}");
    assert!(!quiet.contains("INFO"), "{quiet}");
    assert!(quiet.contains("  + vpc vpc-snap (eu-south-1)"), "{quiet}");
    // The runbook's own messages are for the person: shown by default.
    assert!(
        quiet.contains("warning: page: paging on-call: check failed"),
        "{quiet}"
    );

    // A new environment, so that the VPC is created again and its record logged.
    let verbose = text(&run(dir.path(), file, &["-v", "-p", "env_suffix=verbose"]).stderr);
    assert!(
        verbose.contains("start    network (network.vpc)"),
        "{verbose}"
    );
    assert!(
        verbose.contains("ok       network (network.vpc)"),
        "{verbose}"
    );
    assert!(verbose.contains("skipped  announce"), "{verbose}");
    // Full records, with the step they came from.
    assert!(
        verbose.contains("INFO step{runbook=fail_after_network step=network"),
        "{verbose}"
    );

    let out = Command::new(env!("CARGO_BIN_EXE_drflow"))
        .args(["run", file, "--max-parallel", "1"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("DRFLOW_STATE_DIR", dir.path())
        .env("DRFLOW_LOG", "warn")
        .env("NO_COLOR", "1")
        .output()
        .expect("runs");
    let filtered = text(&out.stderr);
    assert!(!filtered.contains("+ vpc"), "{filtered}");
    assert!(filtered.contains("WARN"), "{filtered}");

    let out = Command::new(env!("CARGO_BIN_EXE_drflow"))
        .args(["run", file])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("DRFLOW_STATE_DIR", dir.path())
        .env("DRFLOW_LOG", "no=such=filter")
        .output()
        .expect("runs");
    let bad = text(&out.stderr);
    assert!(bad.contains("ignoring DRFLOW_LOG"), "{bad}");
}
