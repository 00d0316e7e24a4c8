//! Durable runs on the command line: the journal and locks of `drflow run` ([`Durable`]), and
//! the commands `resume`, `rollback` ([here](self)), `runs` ([`runs`]), `show` ([`show`]) and
//! `outputs` ([`outputs`]). See docs/journal.md.

mod durable;
mod environment;
mod outputs;
mod runs;
mod show;
mod table;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use clap::Args;
use drflow_engine::{
    JOURNAL_FILE, Journal, Lease, Outputs, Prior, Registry, ResumePoint, RunOptions, RunState,
    RunStatus, Runbook, Secrets, SharedClock, Stop, resolve_params,
};
use serde_json::{Value, json};
use tokio::sync::watch;

pub use durable::{Durable, DurableArgs, LockArgs, scrubbed_stderr};
pub use outputs::{OutputsArgs, cmd_outputs};
pub use runs::{RunsArgs, cmd_runs};
pub use show::{ShowArgs, cmd_show};

use durable::{
    PauseHook, Sinks, journal_failure, secret_names, set_log_secrets, take_leases, take_run_lease,
};

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

/// Opens the journal of the state dir for a command that only reads or continues runs: a
/// missing journal is an error, not created.
pub(super) fn open_existing(global: &Global) -> Result<Journal, Failure> {
    let path = existing_journal(global)?;
    Journal::open(&path).map_err(journal_failure)
}

/// Like [`open_existing`], to read only (`show`, `outputs`): works in a read-only state dir.
pub(super) fn open_existing_read_only(global: &Global) -> Result<Journal, Failure> {
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

/// A journaled run, loaded back with its runbook and parameters.
struct Loaded {
    journal: Journal,
    /// The lease on the run itself, taken before its journal was read.
    run_lease: Lease,
    state: RunState,
    rb: Runbook,
    params: Outputs,
}

/// What `load_run` loads a run for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Purpose {
    Resume,
    Rollback,
}

/// Loads a run for `resume` or `rollback`: takes the run's own lease, replays its journal, says
/// when there is nothing to do (`Ok(None)`, exit 0) or the run cannot be continued that way,
/// recompiles its runbook (refusing a changed file unless `force`), and rebuilds its parameters
/// (secrets from `-p`).
///
/// The lease comes first: another `resume` of the same run that finished in between would
/// otherwise leave this one continuing from a state it no longer is in.
#[allow(clippy::too_many_arguments)]
fn load_run(
    global: &Global,
    registry: &Registry,
    purpose: Purpose,
    run: &str,
    file: Option<&Path>,
    force: bool,
    flags: &[String],
    params_file: Option<&Path>,
) -> Result<Option<Loaded>, Failure> {
    let journal = open_existing(global)?;
    let run_id = journal.find_run(run).map_err(journal_failure)?;
    let run_lease = take_run_lease(journal.path(), &run_id)?;
    let events = journal.events(&run_id).map_err(journal_failure)?;
    let state = RunState::replay(&events).map_err(|e| Failure::invalid(format!("error: {e}")))?;
    hold_after_replay();
    // What the journal alone decides comes before anything about the runbook file.
    match (purpose, state.status) {
        (Purpose::Resume, RunStatus::Succeeded) => {
            eprintln!("drflow: run {run_id} already succeeded; nothing to resume");
            return Ok(None);
        }
        (Purpose::Resume, RunStatus::RolledBack) => {
            return Err(Failure::invalid(format!(
                "error: run {run_id} was rolled back; it cannot be resumed (what it did was undone, \
                 or has no undo and was left as it is)\n  hint: start a new run"
            )));
        }
        (Purpose::Resume, _)
            if state.rollback_started() || state.status == RunStatus::RollbackFailed =>
        {
            return Err(Failure::invalid(format!(
                "error: run {run_id} is being rolled back (status {}); it cannot be resumed\n  \
                 hint: finish the unwind with `drflow rollback {run_id}`, then start a new run",
                state.status.name()
            )));
        }
        (Purpose::Rollback, RunStatus::RolledBack) => {
            eprintln!("drflow: run {run_id} is already rolled back; nothing to undo");
            return Ok(None);
        }
        _ => {}
    }
    let path = file.map_or_else(|| PathBuf::from(&state.path), Path::to_path_buf);
    if file.is_none() && !path.exists() {
        return Err(Failure::invalid(format!(
            "error: the runbook of run {run_id}, {}, is no longer there\n  hint: if it moved, \
             point at it with `--file PATH`",
            path.display()
        )));
    }
    let (mut rb, _) = crate::load(&path, registry)?;
    if rb.name != state.runbook {
        return Err(Failure::invalid(format!(
            "error: {} is the runbook `{}`, but run {run_id} ran the runbook `{}`; --force \
             cannot resume or roll back a run against another runbook\n  hint: point --file \
             at the runbook the run started from",
            path.display(),
            rb.name,
            state.runbook
        )));
    }
    crate::refuse_unbuilt_target(global, &rb)?;
    if rb.content_hash != state.content_hash && !force {
        return Err(Failure::invalid(format!(
            "error: the runbook {} changed since run {run_id} started (content hash {} then, {} \
             now)\n  hint: resuming against a different runbook can repeat or skip work; start a \
             new run, or pass --force if the change is safe",
            path.display(),
            short(&state.content_hash),
            short(&rb.content_hash)
        )));
    }
    if !force {
        RunState::replay_checked(&events, rb.steps.iter().map(|s| s.id.clone()))
            .map_err(|e| Failure::invalid(format!("error: {e}")))?;
    } else if purpose == Purpose::Resume {
        refuse_changed_succeeded_steps(&state, &rb, &run_id)?;
    }
    let params = rebuild_params(&mut rb, &state, flags, params_file)?;
    durable::refuse_short_secrets(&rb, &params)?;
    set_log_secrets(&Secrets::from_params(&params, &secret_names(&rb)));
    Ok(Some(Loaded {
        journal,
        run_lease,
        state,
        rb,
        params,
    }))
}

/// `--force` lets a resume go on against an edited runbook, but never hands a step the outputs
/// its old definition produced: a succeeded step whose `uses` or `with` changed is refused.
fn refuse_changed_succeeded_steps(
    state: &RunState,
    rb: &Runbook,
    run_id: &str,
) -> Result<(), Failure> {
    let changed: Vec<&str> = state
        .steps
        .iter()
        .filter(|(_, s)| s.status == drflow_engine::StepPhase::Succeeded)
        .filter_map(|(id, _)| {
            let then = state.step_hashes.get(id)?;
            match rb.index.get(id) {
                Some(&i) if &rb.steps[i].definition_hash == then => None,
                Some(_) => Some(id.as_str()),
                // A step the runbook no longer has is ignored under --force (docs/journal.md).
                None => None,
            }
        })
        .collect();
    if changed.is_empty() {
        return Ok(());
    }
    Err(Failure::invalid(format!(
        "error: step{} {} succeeded in run {run_id} but {} changed since (its `uses` or `with`), \
         so the outputs recorded for it would not match; even --force will not restore them\n  \
         hint: start a new run, or undo the edit to {}",
        if changed.len() == 1 { "" } else { "s" },
        changed
            .iter()
            .map(|c| format!("`{c}`"))
            .collect::<Vec<_>>()
            .join(", "),
        if changed.len() == 1 {
            "its definition"
        } else {
            "their definitions"
        },
        if changed.len() == 1 {
            "that step"
        } else {
            "those steps"
        },
    )))
}

/// A test hook: with `DRFLOW_TEST_HOLD_AFTER_REPLAY=GATE`, `resume` and `rollback` create
/// `GATE.reached` right after replaying the run's journal, then wait as long as the file `GATE`
/// exists, so a test can run a second command at that point.
fn hold_after_replay() {
    let Some(gate) = std::env::var_os("DRFLOW_TEST_HOLD_AFTER_REPLAY").map(PathBuf::from) else {
        return;
    };
    let mut reached = gate.clone().into_os_string();
    reached.push(".reached");
    let _ = std::fs::write(&reached, std::process::id().to_string());
    while gate.exists() {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn short(hash: &str) -> &str {
    let h = hash.strip_prefix("sha256:").unwrap_or(hash);
    &h[..h.len().min(12)]
}

/// The run's parameters: non-secret ones from the journal, as journaled (JSON values, never
/// turned into text and parsed again: a string `"007"` stays a string), secret ones from `-p` /
/// `--params-file` (or their defaults).
fn rebuild_params(
    rb: &mut Runbook,
    state: &RunState,
    flags: &[String],
    params_file: Option<&Path>,
) -> Result<Outputs, Failure> {
    let secrets: Vec<String> = secret_names(rb).into_iter().map(str::to_owned).collect();
    let user = parse_flags(flags)?;
    if let Some((name, _)) = user
        .iter()
        .find(|(n, _)| !rb.params.iter().any(|p| &p.name == n))
    {
        return Err(Failure::invalid(format!(
            "error: `-p {name}=…`: the runbook {} has no parameter `{name}`",
            rb.name
        )));
    }
    if let Some((name, _)) = user.iter().find(|(n, _)| !secrets.contains(n)) {
        return Err(Failure::invalid(format!(
            "error: `-p {name}=…`: only secret parameters can be given again; the others are \
             fixed by the journal\n  hint: start a new run to change `{name}`"
        )));
    }
    let mut journaled: Vec<(String, Value)> = Vec::new();
    if let Some(values) = state.params.as_object() {
        for (name, value) in values {
            let Some(decl) = rb.params.iter().find(|p| &p.name == name) else {
                continue;
            };
            if decl.secret {
                continue;
            }
            if !decl.ty.accepts(value) {
                return Err(Failure::invalid(format!(
                    "error: the run was started with `{name}` = {value}, which is not of the \
                     type the runbook now declares for it ({})\n  hint: start a new run",
                    decl.ty
                )));
            }
            journaled.push((name.clone(), value.clone()));
        }
    }
    let source = match params_file {
        Some(p) => Some((p.display().to_string(), read(p)?)),
        None => None,
    };
    // The journaled values stand in for defaults while the secrets are resolved, so a required
    // parameter is not reported missing; they are put back as they were right after.
    let declared = rb.params.clone();
    for p in &mut rb.params {
        if let Some((_, v)) = journaled.iter().find(|(n, _)| n == &p.name) {
            p.default = Some(v.clone());
        }
    }
    let resolved = resolve_params(
        rb,
        source.as_ref().map(|(p, s)| (p.as_str(), s.as_str())),
        &user,
    );
    rb.params = declared;
    let mut params = resolved.map_err(|d| {
        let sources: Vec<(&str, &str)> = source
            .iter()
            .map(|(p, s)| (p.as_str(), s.as_str()))
            .collect();
        let mut message = d.render(&sources);
        if !secrets.is_empty() {
            message.push_str(&format!(
                "note: secret parameters ({}) are never journaled; give them again with -p\n",
                secrets.join(", ")
            ));
        }
        Failure::invalid(message)
    })?;
    // The journal fixes every non-secret parameter, whatever a parameter file says.
    for (name, value) in journaled {
        params.insert(name, value);
    }
    Ok(params)
}

fn new_progress(rb: &Runbook, output: OutputFormat, clock: SharedClock) -> progress::Progress<'_> {
    let terminal = std::io::stderr().is_terminal() && output == OutputFormat::Text;
    progress::Progress::new(rb, terminal, clock)
}

/// `drflow resume RUN`.
pub fn cmd_resume(global: &Global, args: ResumeArgs) -> Result<u8, Failure> {
    let config = crate::cloud_config(global);
    let runtime = Runtime::start(&config)?;
    let Some(loaded) = load_run(
        global,
        &runtime.registry(&config),
        Purpose::Resume,
        &args.run,
        args.file.as_deref(),
        args.force,
        &args.params,
        args.params_file.as_deref(),
    )?
    else {
        return Ok(EXIT_OK);
    };
    let Loaded {
        mut journal,
        run_lease,
        state,
        rb,
        params,
    } = loaded;
    let run_id = state.run_id.clone();
    let mut leases = vec![run_lease];
    leases.extend(take_leases(
        journal.path(),
        &rb,
        &run_id,
        &params,
        &args.lock,
        false,
    )?);
    let mut prior = Prior::default();
    for step in &rb.steps {
        if let ResumePoint::Done { outputs } = state.resume_point(&step.id) {
            prior.succeeded.insert(step.id.clone(), outputs);
        }
        if let Some(s) = state.step(&step.id) {
            prior.attempts.insert(step.id.clone(), s.attempts);
        }
    }
    let done = prior.succeeded.len();
    journal.attach(&run_id).map_err(journal_failure)?;
    eprintln!(
        "drflow: resuming run {run_id} of {} ({}) on target {}: {done} of {} steps already \
         succeeded",
        rb.name,
        state.path,
        global.target.name(),
        rb.steps.len()
    );
    let mut options = RunOptions::new(run_id);
    args.exec.apply(&mut options);
    options.prior = Some(prior);
    options.redacted_params = Durable::redacted_params(&rb, &params);
    options.clock = runtime.clock();
    let mut durable = Durable {
        journal: Some(journal),
        leases,
        secrets: Secrets::from_params(&params, &secret_names(&rb)),
        pause: PauseHook::from_env(),
        rollback: None,
        runbook_path: None,
    };
    let mut progress = new_progress(&rb, args.output, runtime.clock());
    let wall = std::time::Instant::now();
    let report = runtime.block_on(async {
        let (stop_tx, stop_rx) = watch::channel(Stop::No);
        tokio::spawn(crate::forward_signals(stop_tx));
        durable
            .run(&rb, &params, options, &mut progress, stop_rx)
            .await
    });
    drop(progress);
    let report = report.map_err(|e| Failure {
        diagnostics: Vec::new(),
        code: EXIT_FAILED,
        message: format!(
            "error: {e}\n  hint: the run stopped because its progress could not be recorded"
        ),
    })?;
    let summary = report::Summary {
        target: global.target.name(),
        virtual_time: runtime.clock().is_virtual(),
        wall_time: wall.elapsed(),
        journal: Some(global.state_dir.as_path()),
        rollback: durable.rollback_report(),
    };
    match args.output {
        OutputFormat::Text => out!("{}", report::text(&report, &summary)),
        OutputFormat::Json => {
            outln!("{:#}", report::json(&report, &summary));
            durable.print_rollback();
        }
    }
    Ok(exit_code(report.status))
}

fn exit_code(status: RunStatus) -> u8 {
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
    let config = crate::cloud_config(global);
    let runtime = Runtime::start(&config)?;
    let Some(Loaded {
        mut journal,
        run_lease,
        state,
        mut rb,
        params,
    }) = load_run(
        global,
        &runtime.registry(&config),
        Purpose::Rollback,
        &args.run,
        args.file.as_deref(),
        args.force,
        &args.params,
        args.params_file.as_deref(),
    )?
    else {
        return Ok(EXIT_OK);
    };
    let run_id = state.run_id.clone();
    let _leases = (
        run_lease,
        take_leases(journal.path(), &rb, &run_id, &params, &args.lock, false)?,
    );
    if ask {
        crate::confirm::ask_rollback(global, &mut rb, &state, &params)?;
    }
    journal.attach(&run_id).map_err(journal_failure)?;
    eprintln!("drflow: rolling back run {run_id} of {}", rb.name);
    let secrets = Secrets::from_params(&params, &secret_names(&rb));
    let mut progress = new_progress(&rb, args.output, runtime.clock());
    let pause = PauseHook::from_env();
    let result = runtime.block_on(async {
        let (stop_tx, stop_rx) = watch::channel(Stop::No);
        tokio::spawn(crate::forward_signals(stop_tx));
        let mut sinks = Sinks {
            journal: Some(&mut journal),
            recorder: None,
            progress: &mut progress,
            secrets: &secrets,
            pause: pause.as_ref(),
            runbook_path: None,
        };
        drflow_engine::rollback(&rb, &state, &params, runtime.clock(), &mut sinks, stop_rx).await
    });
    drop(progress);
    let report = result.map_err(|e| Failure {
        diagnostics: Vec::new(),
        code: EXIT_FAILED,
        message: format!(
            "error: {e}\n  hint: the rollback stopped because its progress could not be recorded"
        ),
    })?;
    match args.output {
        OutputFormat::Text => out!("{report}"),
        OutputFormat::Json => outln!("{:#}", json!({ "run_id": run_id, "rollback": report })),
    }
    Ok(exit_code(report.status))
}
