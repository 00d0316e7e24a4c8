//! Expressions have types, as `drflow run` meets them: an `if:` that gives anything but a bool,
//! an ordering between a number and a string, and a value over the size limit each fail the
//! step with `invalid_input` (exit 1) when only the run can tell; a step that pages on-call
//! after a failure runs. (What the compiler refuses is in `bad_input.rs`.)

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

struct Run {
    out: Output,
    doc: Value,
    state: tempfile::TempDir,
}

/// Runs `runbook` (written to a temporary file) with `--output json` and the given environment.
fn run(runbook: &str, env: &[(&str, &str)]) -> Run {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("rb.yaml");
    std::fs::write(&file, runbook).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_drflow"));
    cmd.args(["run", file.to_str().unwrap(), "--output", "json"])
        .env("DRFLOW_STATE_DIR", state.path())
        .env("DRFLOW_LOG", "warn")
        .env_remove("DR_PROMOTE")
        .env_remove("MAX_LAG_MS");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("drflow runs");
    let doc = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    Run { out, doc, state }
}

impl Run {
    fn step(&self, id: &str) -> &Value {
        self.doc["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .unwrap_or_else(|| panic!("no step {id}"))
    }

    fn status(&self, id: &str) -> &str {
        self.step(id)["status"].as_str().unwrap()
    }

    fn error(&self, id: &str) -> (String, String) {
        let e = &self.step(id)["error"];
        (
            e["kind"].as_str().unwrap_or_default().to_string(),
            e["message"].as_str().unwrap_or_default().to_string(),
        )
    }

    /// Every byte the run left in its state directory (the journal and its log).
    fn journal_bytes(&self) -> Vec<u8> {
        fn walk(dir: &Path, out: &mut Vec<u8>) {
            for entry in std::fs::read_dir(dir).unwrap().flatten() {
                let p = entry.path();
                if p.is_dir() {
                    walk(&p, out);
                } else {
                    out.extend(std::fs::read(&p).unwrap_or_default());
                }
            }
        }
        let mut out = Vec::new();
        walk(self.state.path(), &mut out);
        out
    }
}

const PROMOTE: &str = r#"
runbook: promote
steps:
  - id: flags
    uses: core.set
    with: { promote: "${{ env.DR_PROMOTE }}" }
  - id: promote
    needs: [flags]
    if: ${{ steps.flags.outputs.promote }}
    uses: core.log
    with: { message: promoting }
  - id: converted
    needs: [flags]
    if: ${{ steps.flags.outputs.promote | lower == 'true' }}
    uses: core.log
    with: { message: promoting }
"#;

/// `DR_PROMOTE=False` is the string "False", which used to count as true.
#[test]
fn an_if_that_gives_a_string_fails_the_step_and_the_converted_form_works() {
    let r = run(PROMOTE, &[("DR_PROMOTE", "False")]);
    assert_eq!(r.out.status.code(), Some(1));
    assert_eq!(r.status("promote"), "failed");
    let (kind, message) = r.error("promote");
    assert_eq!(kind, "invalid_input");
    assert!(
        message.contains("`steps.flags.outputs.promote` gave a string, not true or false"),
        "{message}"
    );
    assert!(message.contains("| lower == 'true'"), "{message}");
    assert_eq!(r.status("converted"), "skipped");

    let r = run(PROMOTE, &[("DR_PROMOTE", "True")]);
    assert_eq!(r.status("converted"), "succeeded");
}

const LAG: &str = r#"
runbook: lag
steps:
  - id: status
    uses: core.set
    with: { lag_ms: "${{ 40000 + 5000 }}" }
  - id: within_budget
    needs: [status]
    if: ${{ steps.status.outputs.lag_ms < env.MAX_LAG_MS }}
    uses: core.log
    with: { message: "lag within budget, promoting" }
  - id: converted
    needs: [status]
    if: ${{ steps.status.outputs.lag_ms < env.MAX_LAG_MS | int }}
    uses: core.log
    with: { message: "lag within budget, promoting" }
"#;

/// A 45 s lag passed a 30 s budget: Jinja orders any number before any string.
#[test]
fn an_ordering_between_a_number_and_a_string_fails_the_step() {
    let r = run(LAG, &[("MAX_LAG_MS", "30000")]);
    assert_eq!(r.out.status.code(), Some(1));
    assert_eq!(r.status("within_budget"), "failed");
    let (kind, message) = r.error("within_budget");
    assert_eq!(kind, "invalid_input");
    for part in [
        "`steps.status.outputs.lag_ms < env.MAX_LAG_MS`",
        "`steps.status.outputs.lag_ms` is a number and `env.MAX_LAG_MS` is a string",
        "`env.MAX_LAG_MS | int`",
    ] {
        assert!(message.contains(part), "`{part}` not in {message}");
    }
    // Converted, the comparison is by value: 45000 is not below 30000.
    assert_eq!(r.status("converted"), "skipped");
}

/// The issue's example: paging on-call when the switchover failed.
#[test]
fn a_step_that_reads_a_failed_status_runs_and_the_run_still_fails() {
    let r = run(
        r#"
runbook: switchover
steps:
  - { id: switchover, uses: core.fail, with: { message: "the standby did not take over" } }
  - id: page_oncall
    needs: [switchover]
    if: ${{ steps.switchover.status == 'failed' }}
    uses: core.log
    with: { message: "switchover failed: paging on-call" }
  - { id: next, uses: core.log, needs: [switchover], with: { message: never } }
"#,
        &[],
    );
    assert_eq!(
        r.out.status.code(),
        Some(1),
        "the failure is the run's outcome"
    );
    assert_eq!(r.doc["status"], "failed");
    assert_eq!(r.status("page_oncall"), "succeeded");
    assert_eq!(r.status("next"), "skipped");
}

/// `${{ 'x' ~ ('y' * 100000000) }}` built 100 MB, exited 0 and journaled it. The constant form
/// is refused by the compiler (see `bad_input.rs`), one from parameters by the value check before
/// the run (`values.rs`); here the size comes from the environment, read when the step starts.
#[test]
fn a_value_over_the_limit_fails_the_step_and_is_never_journaled() {
    let r = run(
        r#"
runbook: huge
params:
  filler: { type: string, default: "y" }
steps:
  - id: huge
    uses: core.log
    with: { message: "${{ 'x' ~ (params.filler * (env.HUGE_TIMES | int)) }}" }
  - { id: after, uses: core.log, needs: [huge], with: { message: never } }
"#,
        &[("HUGE_TIMES", "100000000")],
    );
    assert_eq!(r.out.status.code(), Some(1));
    let (kind, message) = r.error("huge");
    assert_eq!(kind, "invalid_input");
    assert!(
        message.contains("would build about 95.4 MiB, over the limit of 1 MiB"),
        "{message}"
    );
    assert_eq!(r.status("after"), "skipped");
    let journal = r.journal_bytes();
    assert!(!journal.is_empty(), "the run was journaled");
    assert!(
        journal.len() < 4 << 20,
        "journal is {} bytes",
        journal.len()
    );
    assert!(!journal.windows(1000).any(|w| w.iter().all(|&b| b == b'y')));
}
