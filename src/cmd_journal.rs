//! Durable runs on the command line: the runner's options, errors and notices for `drflow run`
//! ([`durable`]), and the commands `resume`, `rollback` ([here](self)), `runs` ([`runs`]),
//! `show` ([`show`]) and `outputs` ([`outputs`]). See docs/journal.md.

mod durable;
mod environment;
mod outputs;
mod runs;
mod show;
mod table;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use clap::Args;
use drflow_engine::runner::{LoadRequest, Loaded, LoadedRun, NothingToDo, Purpose};
use drflow_engine::{JOURNAL_FILE, Journal, RunOptions, RunStatus, Runbook, SharedClock, Stop};
use serde_json::json;
use tokio::sync::watch;

pub use durable::{DurableArgs, LockArgs, scrubbed_stderr};
pub(crate) use durable::{print_rollback, runner, runner_failure, set_log_secrets};
pub use outputs::{OutputsArgs, cmd_outputs};
pub use runs::{KEPT_BY_DEFAULT, RunsArgs, cmd_runs};
pub use show::{ShowArgs, cmd_show};

use durable::journal_failure;

use crate::runtime::Runtime;
use crate::{
    EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, Failure, Global, OutputFormat, parse_flags, progress,
    read, report,
};

/// `drflow resume`.
#[derive(Args)]
pub struct ResumeArgs {
    /// The run: its id, a unique prefix of it, or `latest`.
    run: String,
    /// Resume even though the runbook file changed since the run started.
    #[arg(long)]
    force: bool,
    /// The runbook file, if it is no longer where the run started it.
    #[arg(long)]
    file: Option<PathBuf>,
    /// Secret parameters, given again (they are never journaled): `-p name=value`.
    #[arg(short = 'p', long = "param", value_name = "NAME=VALUE")]
    params: Vec<String>,
    /// A YAML file with the secret parameters.
    #[arg(long)]
    params_file: Option<PathBuf>,
    #[command(flatten)]
    exec: crate::ExecArgs,
    /// text or json.
    #[arg(long, default_value = "text")]
    output: OutputFormat,
    #[command(flatten)]
    lock: LockArgs,
}

/// `drflow rollback`.
#[derive(Args)]
pub struct RollbackArgs {
    /// The run: its id, a unique prefix of it, or `latest`.
    run: String,
    /// Roll back even though the runbook file changed since the run started.
    #[arg(long)]
    force: bool,
    /// The runbook file, if it is no longer where the run started it.
    #[arg(long)]
    file: Option<PathBuf>,
    /// Secret parameters, given again (they are never journaled): `-p name=value`.
    #[arg(short = 'p', long = "param", value_name = "NAME=VALUE")]
    params: Vec<String>,
    /// A YAML file with the secret parameters.
    #[arg(long)]
    params_file: Option<PathBuf>,
    /// text or json.
    #[arg(long, default_value = "text")]
    output: OutputFormat,
    #[command(flatten)]
    lock: LockArgs,
    /// Do not list what the rollback deletes and ask first; required when there is no terminal
    /// to ask on.
    #[arg(short = 'y', long)]
    yes: bool,
}

/// Opens the journal of the state dir to read it only (`show`, `outputs`): works in a read-only
/// state dir; a missing journal is an error, not created.
pub(super) fn open_existing_read_only(global: &Global) -> Result<Journal, Failure> {
    if let Some(journal) = crate::shared_journal::synced_journal(global)? {
        return Ok(journal);
    }
    let path = existing_journal(global)?;
    Journal::open_read_only(&path).map_err(journal_failure)
}

fn existing_journal(global: &Global) -> Result<PathBuf, Failure> {
    let path = global.state_dir.join(JOURNAL_FILE);
    if !path.exists() {
        return Err(Failure::invalid(format!(
            "error: no journal at {}: no run was recorded with this state dir\n  hint: run from \
             the directory the run was started in, or pass --state-dir / DRFLOW_STATE_DIR",
            path.display()
        )));
    }
    Ok(path)
}

/// Loads a run for `resume` or `rollback` through the runner (see
/// [`drflow_engine::runner::Runner::load`]), on `runtime` and its clock. `Ok(None)` when there is nothing to
/// do (said on stderr; exit 0).
#[allow(clippy::too_many_arguments)]
fn load_run(
    global: &Global,
    runtime: &Runtime,
    purpose: Purpose,
    run: &str,
    file: Option<&Path>,
    force: bool,
    flags: &[String],
    params_file: Option<&Path>,
    lock: &LockArgs,
) -> Result<Option<LoadedRun>, Failure> {
    let secret_params = parse_flags(flags)?;
    let params_source = match params_file {
        Some(p) => Some((p.display().to_string(), read(p)?)),
        None => None,
    };
    let (registry, backend) = crate::cloud(global, runtime);
    let runner = runner(global, Some(backend), runtime.clock())?;
    let request = LoadRequest {
        run,
        purpose,
        file,
        force,
        secret_params: &secret_params,
        params_file: params_source
            .as_ref()
            .map(|(n, s)| (n.as_str(), s.as_str())),
        lock: lock.wait(),
    };
    let loaded = runtime
        .block_on(runner.load(&registry, request))
        .map_err(runner_failure)?;
    let loaded = match loaded {
        Loaded::NothingToDo { run_id, reason } => {
            match reason {
                NothingToDo::AlreadySucceeded => {
                    eprintln!("drflow: run {run_id} already succeeded; nothing to resume");
                }
                NothingToDo::AlreadyRolledBack => {
                    eprintln!("drflow: run {run_id} is already rolled back; nothing to undo");
                }
            }
            return Ok(None);
        }
        Loaded::Ready(loaded) => *loaded,
    };
    if let Err(f) = crate::refuse_unbuilt_target(global, &loaded.runbook) {
        runtime.block_on(loaded.session.release());
        return Err(f);
    }
    set_log_secrets(loaded.session.secrets());
    Ok(Some(loaded))
}

fn new_progress(rb: &Runbook, output: OutputFormat, clock: SharedClock) -> progress::Progress<'_> {
    let terminal = std::io::stderr().is_terminal() && output == OutputFormat::Text;
    progress::Progress::new(rb, terminal, clock)
}

/// `drflow resume RUN`.
pub fn cmd_resume(global: &Global, args: ResumeArgs) -> Result<u8, Failure> {
    let runtime = Runtime::start(&crate::cloud_config(global))?;
    let Some(loaded) = load_run(
        global,
        &runtime,
        Purpose::Resume,
        &args.run,
        args.file.as_deref(),
        args.force,
        &args.params,
        args.params_file.as_deref(),
        &args.lock,
    )?
    else {
        return Ok(EXIT_OK);
    };
    let prior = loaded.prior();
    let LoadedRun {
        run_id,
        state,
        runbook: rb,
        params,
        session,
    } = loaded;
    eprintln!(
        "drflow: resuming run {run_id} of {} ({}) on target {}: {} of {} steps already \
         succeeded",
        rb.name,
        state.path,
        global.target.name(),
        prior.succeeded.len(),
        rb.steps.len()
    );
    let mut options = RunOptions::new(run_id);
    args.exec.apply(&mut options);
    options.prior = Some(prior);
    options.redacted_params = drflow_engine::runner::redacted_params(&rb, &params);
    options.clock = runtime.clock();
    let mut progress = new_progress(&rb, args.output, runtime.clock());
    let wall = std::time::Instant::now();
    let outcome = runtime.block_on(async {
        let (stop_tx, stop_rx) = watch::channel(Stop::No);
        tokio::spawn(crate::forward_signals(stop_tx));
        session
            .run(&rb, &params, options, &mut progress, stop_rx)
            .await
    });
    drop(progress);
    let outcome = outcome.map_err(runner_failure)?;
    let summary = report::Summary {
        target: global.target.name(),
        virtual_time: runtime.clock().is_virtual(),
        wall_time: wall.elapsed(),
        journal: Some(global.state_dir.as_path()),
        rollback: outcome.rollback.as_ref(),
    };
    match args.output {
        OutputFormat::Text => out!("{}", report::text(&outcome.report, &summary)),
        OutputFormat::Json => {
            outln!("{:#}", report::json(&outcome.report, &summary));
            print_rollback(outcome.rollback.as_ref());
        }
    }
    runtime.report_aws_calls();
    Ok(exit_code(outcome.report.status))
}

/// The exit code of a run that ended with `status`.
pub(crate) fn exit_code(status: RunStatus) -> u8 {
    match status {
        RunStatus::Succeeded | RunStatus::RolledBack => EXIT_OK,
        RunStatus::Interrupted => EXIT_INTERRUPTED,
        _ => EXIT_FAILED,
    }
}

/// `drflow rollback RUN`.
pub fn cmd_rollback(global: &Global, args: RollbackArgs) -> Result<u8, Failure> {
    // Before the run's lease is taken: a refusal leaves the journal byte for byte as it was.
    let ask = crate::confirm::check_rollback(&args.run, args.yes)?;
    let runtime = Runtime::start(&crate::cloud_config(global))?;
    let Some(LoadedRun {
        run_id,
        state,
        runbook: mut rb,
        params,
        session,
    }) = load_run(
        global,
        &runtime,
        Purpose::Rollback,
        &args.run,
        args.file.as_deref(),
        args.force,
        &args.params,
        args.params_file.as_deref(),
        &args.lock,
    )?
    else {
        return Ok(EXIT_OK);
    };
    if ask && let Err(f) = crate::confirm::ask_rollback(global, &mut rb, &state, &params) {
        runtime.block_on(session.release());
        return Err(f);
    }
    eprintln!("drflow: rolling back run {run_id} of {}", rb.name);
    let mut progress = new_progress(&rb, args.output, runtime.clock());
    let result = runtime.block_on(async {
        let (stop_tx, stop_rx) = watch::channel(Stop::No);
        tokio::spawn(crate::forward_signals(stop_tx));
        session
            .rollback(&rb, &state, &params, &mut progress, stop_rx)
            .await
    });
    drop(progress);
    let report = result.map_err(runner_failure)?;
    match args.output {
        OutputFormat::Text => out!("{report}"),
        OutputFormat::Json => outln!("{:#}", json!({ "run_id": run_id, "rollback": report })),
    }
    runtime.report_aws_calls();
    Ok(exit_code(report.status))
}
