//! The reference pages under docs/reference/ are generated from the code. This test fails when
//! they drift; `DRFLOW_UPDATE_DOCS=1 cargo test --test docs_drift` writes them anew.

use std::path::Path;
use std::process::Command;

fn drflow(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_drflow"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("DRFLOW_STATE_DIR")
        .env_remove("DRFLOW_TARGET")
        .env("COLUMNS", "100")
        .output()
        .expect("drflow runs");
    assert!(
        out.status.success(),
        "drflow {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn check(page: &str, generated: String) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(page);
    if std::env::var_os("DRFLOW_UPDATE_DOCS").is_some() {
        std::fs::write(&path, &generated).expect("write page");
        return;
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == generated,
        "{page} is out of date with the code; regenerate it with `DRFLOW_UPDATE_DOCS=1 cargo test --test docs_drift`"
    );
}

#[test]
fn the_step_reference_matches_the_step_declarations() {
    check(
        "docs/reference/steps.md",
        drflow(&["steps", "--format", "markdown"]),
    );
}

#[test]
fn the_policy_page_matches_the_permission_table() {
    check(
        "docs/policy.md",
        drflow(&["policy", "--output", "markdown"]),
    );
}

#[test]
fn the_json_schema_matches_the_step_declarations() {
    check("docs/reference/runbook.schema.json", drflow(&["schema"]));
}

#[test]
fn the_cli_reference_matches_the_cli() {
    let mut page = String::from(
        "# Command-line reference\n\n<!-- Generated from `drflow help`; do not edit by hand. -->\n\n",
    );
    let top = drflow(&["--help"]);
    page.push_str(&format!("## drflow\n\n```text\n{top}```\n\n"));
    // Subcommands are listed under "Commands:" in the top-level help.
    let commands: Vec<String> = top
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|c| c != "help")
        .collect();
    assert!(commands.contains(&"run".to_string()), "{top}");
    for c in commands {
        let help = drflow(&[&c, "--help"]);
        page.push_str(&format!("## drflow {c}\n\n```text\n{help}```\n\n"));
        // Nested subcommands (e.g. `drflow sim show`).
        let nested: Vec<String> = help
            .lines()
            .skip_while(|l| !l.starts_with("Commands:"))
            .skip(1)
            .take_while(|l| l.starts_with("  "))
            .filter_map(|l| l.split_whitespace().next().map(str::to_string))
            .filter(|n| n != "help")
            .collect();
        for n in nested {
            let help = drflow(&[&c, &n, "--help"]);
            page.push_str(&format!("## drflow {c} {n}\n\n```text\n{help}```\n\n"));
        }
    }
    check("docs/reference/cli.md", page.trim_end().to_string() + "\n");
}

#[test]
fn the_drills_page_matches_what_the_drills_measure() {
    // Every scenario with the default parameters and the built-in triggers, on the virtual
    // clock: the same figures every time.
    check(
        "docs/drills.md",
        drflow(&["drill", "--all", "--output", "markdown"]),
    );
}
