//! `drflow outputs`: a finished run's outputs again, from the journal, with the environment they
//! belong to and whether the simulated world still holds what they name.
//!
//! Which run: the one named, else the latest succeeded run that built resources (a provision, not
//! the destroy after it) among the runs of the environment `-p` / `--params-file` pick and of
//! `--runbook`. A run that built nothing is taken only when no candidate built anything (the
//! engine's examples).

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::Args;
use drflow_engine::{Journal, RunEvent, RunState, RunSummary, StepPhase};
use drflow_steps::sim::ResourceRef;
use serde_json::{Map, Value, json};

use super::durable::journal_failure;
use super::environment::{Environment, Selector};
use super::open_existing_read_only;
use crate::{EXIT_FAILED, EXIT_OK, Failure, Global, OutputFormat};

/// `drflow outputs`.
#[derive(Args)]
pub struct OutputsArgs {
    /// The run: its id, a unique prefix of it, or `latest`. Without it: the latest succeeded run
    /// that built resources, of the environment `-p` or `--params-file` picks.
    run: Option<String>,
    /// Pick the environment by `env_suffix`, `primary_region` or `standby_region`:
    /// `-p env_suffix=prod-eu`.
    #[arg(short = 'p', long = "param", value_name = "NAME=VALUE")]
    params: Vec<String>,
    /// Pick the environment a parameter file names (the file `drflow run` took, e.g.
    /// runbooks/params/eu.yaml); `-p` overrides it.
    #[arg(long)]
    params_file: Option<PathBuf>,
    /// Only consider runs of this runbook (its `runbook:` name, e.g. `provision`).
    #[arg(long)]
    runbook: Option<String>,
    /// text (a header, then one `name  value` line each) or json (one object).
    #[arg(long, default_value = "text")]
    pub(crate) output: OutputFormat,
}

/// `drflow outputs`.
pub fn cmd_outputs(global: &Global, args: OutputsArgs) -> Result<u8, Failure> {
    let selector = Selector::from_args(&args.params, args.params_file.as_deref())?;
    if let Some(run) = args.run.as_ref().filter(|_| !selector.is_empty()) {
        return Err(Failure::invalid(format!(
            "error: `drflow outputs {run}` names a run, and `-p`/`--params-file` pick an \
             environment: give one or the other\n  hint: `drflow outputs -p env_suffix=NAME` \
             shows that environment's latest provision; `drflow runs` lists every run with its \
             environment\n"
        )));
    }
    let journal = open_existing_read_only(global)?;
    let runs = journal.list_runs().map_err(journal_failure)?;
    let run_id = match &args.run {
        Some(run) => journal.find_run(run).map_err(journal_failure)?,
        None => pick(&journal, &runs, args.runbook.as_deref(), &selector)?,
    };
    let events = journal.events(&run_id).map_err(journal_failure)?;
    let state = RunState::replay(&events).map_err(|e| Failure {
        diagnostics: Vec::new(),
        code: EXIT_FAILED,
        message: format!("error: {e}"),
    })?;
    if state.finished_at.is_none() {
        return Err(Failure::invalid(format!(
            "error: run {run_id} has not finished ({}), so it has no outputs yet\n  hint: `drflow resume {run_id}` finishes it",
            state.status.name()
        )));
    }
    let env = Environment::of(&state.params);
    // Others are worth a word only when drflow chose the environment itself.
    let others: Vec<Environment> = if args.run.is_none() && selector.is_empty() {
        environments(&runs)
            .into_iter()
            .filter(|e| Some(e) != env.as_ref())
            .collect()
    } else {
        Vec::new()
    };
    let world = check_world(global, &state);
    if args.output == OutputFormat::Json {
        outln!(
            "{:#}",
            json!({
                "run_id": run_id,
                "runbook": state.runbook,
                "status": state.status,
                "outputs": state.outputs,
                "environment": env.as_ref().map(Environment::json),
                "other_environments": others.iter().map(Environment::json).collect::<Vec<_>>(),
                "world": world.as_ref().map(WorldCheck::json),
            })
        );
        return Ok(EXIT_OK);
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "run          {run_id} of {} ({})",
        state.runbook,
        state.status.name()
    );
    let _ = writeln!(
        out,
        "environment  {}",
        env.as_ref()
            .map_or_else(|| "-".to_owned(), ToString::to_string)
    );
    if !others.is_empty() {
        let list: Vec<String> = others.iter().map(ToString::to_string).collect();
        let _ = writeln!(
            out,
            "others       {}: pick one with `-p env_suffix=NAME` or `--params-file FILE`",
            list.join(", ")
        );
    }
    if let Some(w) = &world {
        let _ = writeln!(out, "world        {}", w.summary());
    }
    if !state.outputs.is_empty() {
        out.push_str("outputs\n");
        out.push_str(&output_lines(&state.outputs));
    }
    out!("{out}");
    if let Some(w) = &world
        && let Some(warning) = w.warning(&state)
    {
        eprint!("{warning}");
    }
    Ok(EXIT_OK)
}

/// `  name  value` lines, names padded to one width; strings without quotes.
pub(super) fn output_lines(outputs: &Map<String, Value>) -> String {
    let w = outputs.keys().map(String::len).max().unwrap_or(0);
    let mut out = String::new();
    for (k, v) in outputs {
        let shown = match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let _ = writeln!(out, "  {k:<w$}  {shown}");
    }
    out
}

/// The run `drflow outputs` shows when none is named (see the module doc).
fn pick(
    journal: &Journal,
    runs: &[RunSummary],
    runbook: Option<&str>,
    selector: &Selector,
) -> Result<String, Failure> {
    let mut candidates: Vec<&RunSummary> = runs
        .iter()
        .filter(|r| r.status == "succeeded")
        .filter(|r| runbook.is_none_or(|name| r.runbook == name))
        .filter(|r| selector.matches(&r.params))
        .collect();
    candidates.sort_by(|a, b| b.started_at.total_cmp(&a.started_at));
    for c in &candidates {
        if built_resources(journal, &c.id)? {
            return Ok(c.id.clone());
        }
    }
    if let Some(c) = candidates.first() {
        return Ok(c.id.clone());
    }
    let of_runbook = runbook.map_or_else(String::new, |n| format!(" of runbook `{n}`"));
    if selector.is_empty() {
        return Err(Failure::invalid(format!(
            "error: no succeeded run{of_runbook} in {}\n  hint: run one first, e.g. `drflow run runbooks/provision.yaml`, or name a run: `drflow runs` lists them",
            journal.path().display()
        )));
    }
    let known: Vec<String> = environments(runs).iter().map(ToString::to_string).collect();
    let hint = if known.is_empty() {
        "no run in this journal belongs to an environment; `drflow runs` lists them".to_owned()
    } else {
        format!(
            "the journal has runs of {}; `drflow runs` lists them",
            known.join(", ")
        )
    };
    Err(Failure::invalid(format!(
        "error: no succeeded run{of_runbook} of environment {selector} in {}\n  hint: {hint}",
        journal.path().display()
    )))
}

/// Whether a run's steps recorded any resource they made or kept.
fn built_resources(journal: &Journal, run_id: &str) -> Result<bool, Failure> {
    let events = journal.events(run_id).map_err(journal_failure)?;
    Ok(events.iter().any(|e| {
        matches!(e, RunEvent::StepSucceeded { outputs, .. }
            if !ResourceRef::from_outputs(outputs).is_empty())
    }))
}

/// The environments the journal's runs belong to, newest first, each once.
fn environments(runs: &[RunSummary]) -> Vec<Environment> {
    let mut seen: Vec<Environment> = Vec::new();
    for env in runs.iter().filter_map(|r| Environment::of(&r.params)) {
        if !seen.contains(&env) {
            seen.push(env);
        }
    }
    seen
}

/// What the simulated world holds of the resources a run recorded.
struct WorldCheck {
    file: PathBuf,
    recorded: usize,
    /// The recorded resources the world no longer holds, or why the world could not be read.
    missing: Result<Vec<ResourceRef>, String>,
}

/// Looks up a run's resources in the simulated world. `None` on another target (drflow cannot
/// look there) and for a run that recorded no resources (nothing to look for).
fn check_world(global: &Global, state: &RunState) -> Option<WorldCheck> {
    if global.target != crate::Target::Sim {
        return None;
    }
    let mut seen = HashSet::new();
    let recorded: Vec<ResourceRef> = state
        .step_order
        .iter()
        .filter_map(|id| state.step(id))
        .filter(|s| s.status == StepPhase::Succeeded)
        .filter_map(|s| s.outputs.as_ref())
        .flat_map(ResourceRef::from_outputs)
        .filter(|r| seen.insert(r.clone()))
        .collect();
    if recorded.is_empty() {
        return None;
    }
    Some(WorldCheck {
        file: drflow_steps::sim::world_path(&global.state_dir),
        recorded: recorded.len(),
        missing: drflow_steps::sim::missing(&global.state_dir, &recorded)
            .map_err(|e| e.to_string()),
    })
}

impl WorldCheck {
    /// `all`, `some` or `none` of the recorded resources are in the world.
    fn holds(&self) -> Option<&'static str> {
        let missing = self.missing.as_ref().ok()?.len();
        Some(if missing == 0 {
            "all"
        } else if missing == self.recorded {
            "none"
        } else {
            "some"
        })
    }

    fn json(&self) -> Value {
        match &self.missing {
            Ok(missing) => json!({
                "file": self.file,
                "holds": self.holds(),
                "recorded": self.recorded,
                "missing": missing.len(),
                "missing_resources": missing.iter().map(ToString::to_string).collect::<Vec<_>>(),
            }),
            Err(e) => json!({ "file": self.file, "recorded": self.recorded, "error": e }),
        }
    }

    /// The `world` line of the text output.
    fn summary(&self) -> String {
        let n = self.recorded;
        match (&self.missing, self.holds()) {
            (Err(e), _) => format!("not checked: {e}"),
            (_, Some("all")) => {
                format!("live: the simulated world holds all {n} resources the run made or kept")
            }
            (_, Some("none")) => format!(
                "GONE: the simulated world holds none of the {n} resources the run made or kept; \
                 the outputs below point at nothing"
            ),
            (Ok(missing), _) => format!(
                "PARTLY GONE: the simulated world no longer holds {} of the {n} resources the run \
                 made or kept; outputs naming them point at nothing",
                missing.len()
            ),
        }
    }

    /// What to say on stderr when outputs point at nothing, with what to do.
    fn warning(&self, state: &RunState) -> Option<String> {
        let missing = self.missing.as_ref().ok()?;
        if missing.is_empty() {
            return None;
        }
        let env = Environment::of(&state.params)
            .map_or_else(String::new, |e| format!(" of environment {e}"));
        let (n, file, run) = (self.recorded, self.file.display(), &state.run_id);
        let what = if missing.len() == n {
            format!(
                "holds none of the {n} resources run {run}{env} made or kept: these outputs are \
                 the journal's record, not live endpoints"
            )
        } else {
            let shown: Vec<String> = missing.iter().take(3).map(ToString::to_string).collect();
            let more = match missing.len() - shown.len() {
                0 => String::new(),
                k => format!(" and {k} more"),
            };
            format!(
                "has lost {} of the {n} resources run {run}{env} made or kept ({}{more}): \
                 outputs naming them point at nothing",
                missing.len(),
                shown.join(", ")
            )
        };
        Some(format!(
            "warning: the simulated world ({file}) {what}\n  hint: run `drflow run {}` again \
             with the same parameters to rebuild what is gone; `drflow sim show` lists what the \
             world holds\n",
            runbook_arg(&state.path),
        ))
    }
}

/// The runbook path as the user would type it: relative to the working directory when it is
/// under it.
fn runbook_arg(path: &str) -> String {
    let p = Path::new(path);
    std::env::current_dir()
        .ok()
        .and_then(|cwd| p.strip_prefix(cwd).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| p.to_path_buf())
        .display()
        .to_string()
}
