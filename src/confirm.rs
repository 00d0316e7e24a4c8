//! Asking before deleting. `drflow run` of a destructive runbook (one with a step whose type is
//! declared destructive, such as `cloud.teardown` in runbooks/destroy.yaml) and `drflow rollback`
//! list what they will delete and ask on a terminal; `--yes` confirms in advance. Where nobody
//! can answer (stdin or stderr is not a terminal: CI, a pipe, cron) they refuse without `--yes`
//! rather than wait for an answer that never comes (docs/decisions.md).

use std::io::{BufRead, IsTerminal, Write};

use drflow_engine::{Outputs, RunState, Runbook};

use crate::plan::{self, Outcome};
use crate::{EXIT_FAILED, Failure, Global};

/// What a destructive command does before it deletes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consent {
    /// Confirmed in advance (`--yes`): go on.
    Given,
    /// Show what will be deleted and ask.
    Ask,
    /// Nobody can answer: refuse, and say to pass `--yes`.
    Refuse,
}

/// Decides, from `--yes` and whether a person can answer, what a destructive command does.
pub fn consent(yes: bool, interactive: bool) -> Consent {
    match (yes, interactive) {
        (true, _) => Consent::Given,
        (false, true) => Consent::Ask,
        (false, false) => Consent::Refuse,
    }
}

/// Whether a person can see a question and answer it: stdin (the answer) and stderr (the
/// question) are both terminals.
pub fn interactive() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// Writes `question` and reads one line: `y` or `yes` (any case) is a yes; anything else,
/// including end of input, is a no.
pub fn ask(
    question: &str,
    input: &mut impl BufRead,
    out: &mut impl Write,
) -> std::io::Result<bool> {
    write!(out, "{question} [y/N] ")?;
    out.flush()?;
    let mut answer = String::new();
    input.read_line(&mut answer)?;
    let answer = answer.trim().to_ascii_lowercase();
    Ok(answer == "y" || answer == "yes")
}

/// The steps of `rb` whose types are destructive.
pub fn destructive_steps(rb: &Runbook) -> Vec<&str> {
    rb.steps
        .iter()
        .filter(|s| s.step_type.spec().destructive)
        .map(|s| s.id.as_str())
        .collect()
}

/// Before anything is locked or journaled: whether `drflow run` of `rb` must ask, or may not
/// go on at all. `Ok(false)`: not destructive, or confirmed with `--yes`.
pub fn check_run(rb: &Runbook, file: &std::path::Path, yes: bool) -> Result<bool, Failure> {
    let steps = destructive_steps(rb);
    if steps.is_empty() {
        return Ok(false);
    }
    match consent(yes, interactive()) {
        Consent::Given => Ok(false),
        Consent::Ask => Ok(true),
        Consent::Refuse => Err(Failure::invalid(format!(
            "error: {} deletes resources (step{} {}) and there is no terminal to ask on; nothing \
             was run\n  hint: see what it would delete with `drflow run {} --plan` (with the same \
             parameters), then confirm with --yes\n",
            file.display(),
            if steps.len() == 1 { "" } else { "s" },
            steps
                .iter()
                .map(|s| format!("`{s}`"))
                .collect::<Vec<_>>()
                .join(", "),
            file.display()
        ))),
    }
}

/// Runs `rb` on a scratch copy of the world, lists what it would delete and asks. `Ok` to go
/// on; a [`Failure`] (exit 1, nothing run) when the answer is no.
pub fn ask_run(global: &Global, rb: &mut Runbook, params: &Outputs) -> Result<(), Failure> {
    let outcome = plan::plan_run(global, rb, params)?;
    if outcome.plan.deletions().next().is_none() && outcome.failed.is_empty() {
        eprintln!("drflow: {} would delete nothing; going on", rb.name);
        return Ok(());
    }
    let question = format!(
        "Run {} and delete {}?",
        rb.name,
        resources(outcome.plan.deletions().count())
    );
    confirm_or_stop(
        &format!(
            "drflow: {} deletes resources; on target {} it would:",
            rb.name,
            global.target.name()
        ),
        &outcome,
        &question,
    )
}

/// Whether `drflow rollback` may go on without asking (`Ok(false)`), must ask (`Ok(true)`), or
/// must refuse. `run` is the run as the user named it (`latest`, an id or a prefix).
pub fn check_rollback(run: &str, yes: bool) -> Result<bool, Failure> {
    match consent(yes, interactive()) {
        Consent::Given => Ok(false),
        Consent::Ask => Ok(true),
        Consent::Refuse => Err(Failure::invalid(format!(
            "error: `drflow rollback {run}` deletes what that run created, and there is no \
             terminal to ask on; nothing was undone\n  hint: run it on a terminal to see what \
             it would delete and answer there, or confirm with --yes\n"
        ))),
    }
}

/// Rolls back on a scratch copy of the world, lists what it would delete and asks.
pub fn ask_rollback(
    global: &Global,
    rb: &mut Runbook,
    state: &RunState,
    params: &Outputs,
) -> Result<(), Failure> {
    let outcome = plan::plan_rollback(global, rb, state, params)?;
    let undone = if outcome.undone.is_empty() {
        "no step".to_string()
    } else {
        format!("steps {}", outcome.undone.join(", "))
    };
    confirm_or_stop(
        &format!(
            "drflow: rolling back run {} of {} undoes {undone}; on target {} it would:",
            state.run_id,
            rb.name,
            global.target.name()
        ),
        &outcome,
        &format!(
            "Roll back run {} and delete {}?",
            state.run_id,
            resources(outcome.plan.deletions().count())
        ),
    )
}

fn resources(n: usize) -> String {
    if n == 1 {
        "1 resource".into()
    } else {
        format!("{n} resources")
    }
}

fn confirm_or_stop(header: &str, outcome: &Outcome, question: &str) -> Result<(), Failure> {
    let mut err = std::io::stderr().lock();
    let shown = format!("{header}\n{}", plan::text(outcome));
    let asked = err
        .write_all(shown.as_bytes())
        .and_then(|()| ask(question, &mut std::io::stdin().lock(), &mut err));
    match asked {
        Ok(true) => Ok(()),
        Ok(false) => Err(Failure {
            diagnostics: Vec::new(),
            code: EXIT_FAILED,
            message: "drflow: not confirmed; nothing was done\n".into(),
        }),
        Err(e) => Err(Failure {
            diagnostics: Vec::new(),
            code: EXIT_FAILED,
            message: format!("error: could not ask for confirmation: {e}; nothing was done\n"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yes_goes_on_a_terminal_asks_and_a_script_is_refused() {
        assert_eq!(consent(true, false), Consent::Given);
        assert_eq!(consent(true, true), Consent::Given);
        assert_eq!(consent(false, true), Consent::Ask);
        assert_eq!(consent(false, false), Consent::Refuse);
    }

    fn answer(input: &str) -> (bool, String) {
        let mut out = Vec::new();
        let yes = ask("Delete 3 resources?", &mut input.as_bytes(), &mut out).unwrap();
        (yes, String::from_utf8(out).unwrap())
    }

    #[test]
    fn only_y_or_yes_is_a_yes() {
        for yes in ["y\n", "Y\n", "yes\n", " YES \n", "y"] {
            assert!(answer(yes).0, "{yes:?}");
        }
        for no in ["\n", "n\n", "no\n", "yep\n", "", "sure\n"] {
            assert!(!answer(no).0, "{no:?}");
        }
        assert_eq!(answer("y\n").1, "Delete 3 resources? [y/N] ");
    }
}
