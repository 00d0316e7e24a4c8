//! Durable runs on the command line: the journal and locks of `drflow run`, and the commands
//! `resume`, `runs`, `show` and `rollback`. See docs/journal.md.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use drflow_engine::{
    AttemptOutcome, Holder, JOURNAL_FILE, Journal, JournalError, Lease, LeaseOptions, LockError,
    OnFailure, Outputs, Prior, Recorder, ResumePoint, RollbackReport, RunError, RunEvent,
    RunOptions, RunReport, RunSink, RunState, RunStatus, Runbook, Scope, Secrets, SinkError,
    StepPhase, Stop, iso8601, now, redact, resolve_params,
};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::{
    EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, Failure, Global, OutputFormat, parse_duration_arg,
    parse_flags, progress, read, registry, report,
};

/// The secrets of the run in progress, scrubbed out of every log line (see [`scrubbed_stderr`]).
static LOG_SECRETS: std::sync::RwLock<Option<Secrets>> = std::sync::RwLock::new(None);

/// From now on, log lines have these secrets replaced by `***`.
fn set_log_secrets(secrets: &Secrets) {
    if let Ok(mut s) = LOG_SECRETS.write() {
        *s = (!secrets.is_empty()).then(|| secrets.clone());
    }
}

/// A stderr writer for the tracing subscriber that scrubs the run's secrets out of each line
/// (a step that logs its input must not print a token).
pub fn scrubbed_stderr() -> ScrubbedLine {
    ScrubbedLine(Vec::new())
}

/// One log line, written to stderr (scrubbed) when dropped.
pub struct ScrubbedLine(Vec<u8>);

impl std::io::Write for ScrubbedLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for ScrubbedLine {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.0);
        let line = match LOG_SECRETS.read().ok().as_deref().and_then(Option::as_ref) {
            Some(secrets) => secrets.scrub(&text).into_owned(),
            None => text.into_owned(),
        };
        let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
    }
}

/// Journal and lock flags of `drflow run`.
#[derive(Args, Clone, Default)]
pub struct DurableArgs {
    /// Do not journal this run: it cannot be resumed, shown or rolled back (for benchmarks).
    #[arg(long)]
    pub no_journal: bool,
    #[command(flatten)]
    pub lock: LockArgs,
}

/// How to wait for a runbook's `lock:`.
#[derive(Args, Clone, Default)]
pub struct LockArgs {
    /// When another run holds the runbook's lock, wait for it instead of refusing.
    #[arg(long)]
    pub wait_lock: bool,
    /// With --wait-lock, give up after this long (e.g. `10m`).
    #[arg(long, value_parser = parse_duration_arg, requires = "wait_lock")]
    pub wait_lock_timeout: Option<Duration>,
}

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
    /// Run at most this many steps at once (default: no limit).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    max_parallel: Option<u32>,
    /// Stop the resumed run after this long, e.g. `10m`.
    #[arg(long, value_parser = parse_duration_arg)]
    timeout: Option<Duration>,
    /// After Ctrl-C or SIGTERM, how long running steps may finish before they are cancelled.
    #[arg(long, default_value = "10s", value_parser = parse_duration_arg)]
    grace: Duration,
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
}

/// `drflow runs`.
#[derive(Args)]
pub struct RunsArgs {
    /// text or json.
    #[arg(long, default_value = "text")]
    output: OutputFormat,
}

/// `drflow show`.
#[derive(Args)]
pub struct ShowArgs {
    /// The run: its id, a unique prefix of it, or `latest`.
    run: String,
    /// text (a timeline) or json (the rebuilt state and every event).
    #[arg(long, default_value = "text")]
    output: OutputFormat,
}

fn journal_failure(e: JournalError) -> Failure {
    Failure::invalid(format!("error: {e}"))
}

fn lock_failure(e: LockError) -> Failure {
    Failure::invalid(format!("error: {e}"))
}

/// Opens the journal of the state dir for a command that only reads or continues runs: a
/// missing journal is an error, not created.
fn open_existing(global: &Global) -> Result<Journal, Failure> {
    let path = global.state_dir.join(JOURNAL_FILE);
    if !path.exists() {
        return Err(Failure::invalid(format!(
            "error: no journal at {}: no run was recorded with this state dir\n  hint: run from \
             the directory the run was started in, or pass --state-dir / DRFLOW_STATE_DIR",
            path.display()
        )));
    }
    Journal::open(&path).map_err(journal_failure)
}

fn secret_names(rb: &Runbook) -> Vec<&str> {
    rb.params
        .iter()
        .filter(|p| p.secret)
        .map(|p| p.name.as_str())
        .collect()
}

/// The lease key of a runbook's `lock:` and of a run itself.
fn lock_key(key: &str) -> String {
    format!("lock/{key}")
}

fn run_key(run_id: &str) -> String {
    format!("run/{run_id}")
}

/// Evaluates the runbook's `lock:` expression with the run's parameters.
fn evaluate_lock(rb: &Runbook, run_id: &str, params: &Outputs) -> Result<Option<String>, Failure> {
    let Some(t) = &rb.lock else { return Ok(None) };
    let ctx = Scope::new(run_id, now(), params).context(0.0);
    match t.eval(&ctx) {
        Ok(Value::String(s)) => Ok(Some(s)),
        Ok(Value::Null) => Err(Failure::invalid(
            "error: the runbook's `lock:` evaluated to nothing\n  hint: a lock key must be a non-empty string",
        )),
        Ok(other) => Ok(Some(other.to_string())),
        Err(e) => Err(Failure::invalid(format!(
            "error: the runbook's `lock:` could not be evaluated: {e}"
        ))),
    }
}

/// Takes the leases a run needs: its own (so a run is never resumed twice at once) and the
/// runbook's `lock:`.
fn take_leases(
    journal_path: &Path,
    rb: &Runbook,
    run_id: &str,
    params: &Outputs,
    args: &LockArgs,
    own: bool,
) -> Result<Vec<Lease>, Failure> {
    let mut leases = Vec::new();
    if own {
        match Lease::acquire(
            journal_path,
            &run_key(run_id),
            run_id,
            LeaseOptions::default(),
        ) {
            Ok(l) => leases.push(l),
            Err(LockError::Held { holder }) => {
                return Err(Failure::invalid(format!(
                    "error: run {run_id} is still being worked on by pid {} on {} (last \
                     heartbeat {})\n  hint: wait for that process to finish, or stop it first",
                    holder.pid,
                    holder.hostname,
                    iso8601(holder.heartbeat_at)
                )));
            }
            Err(e) => return Err(lock_failure(e)),
        }
    }
    if let Some(key) = evaluate_lock(rb, run_id, params)? {
        let lease = if args.wait_lock {
            Lease::acquire_waiting(
                journal_path,
                &lock_key(&key),
                run_id,
                LeaseOptions::default(),
                Duration::from_millis(200),
                args.wait_lock_timeout,
                |h: &Holder| {
                    eprintln!(
                        "drflow: waiting for the lock `{key}`, held by run {} (pid {} on {})",
                        h.run_id, h.pid, h.hostname
                    );
                },
            )
        } else {
            Lease::acquire(
                journal_path,
                &lock_key(&key),
                run_id,
                LeaseOptions::default(),
            )
        };
        let lease = lease.map_err(|e| match e {
            LockError::Held { holder } => Failure::invalid(format!(
                "error: the lock `{key}` is held by run {} (pid {} on {}, since {})\n  hint: \
                 wait for that run to finish, or pass --wait-lock to wait for it",
                holder.run_id,
                holder.pid,
                holder.hostname,
                iso8601(holder.acquired_at)
            )),
            other => lock_failure(other),
        })?;
        if let Some(dead) = lease.took_over() {
            eprintln!(
                "drflow: took over the lock `{key}` from run {} (pid {} on {} is gone)",
                dead.run_id, dead.pid, dead.hostname
            );
        }
        leases.push(lease);
    }
    Ok(leases)
}

/// A test hook: `DRFLOW_TEST_PAUSE=before:step_started:c` (or `after:step_succeeded:b`) makes
/// the process stop dead at that event — after committing the journal, for `after:` — and
/// create the file `DRFLOW_TEST_PAUSE_FILE`, so a test can SIGKILL it at a known point.
struct PauseHook {
    after: bool,
    event: String,
    step: String,
    marker: Option<PathBuf>,
}

impl PauseHook {
    fn from_env() -> Option<PauseHook> {
        let spec = std::env::var("DRFLOW_TEST_PAUSE").ok()?;
        let mut parts = spec.splitn(3, ':');
        let when = parts.next()?;
        let event = parts.next()?.to_owned();
        let step = parts.next()?.to_owned();
        Some(PauseHook {
            after: when == "after",
            event,
            step,
            marker: std::env::var_os("DRFLOW_TEST_PAUSE_FILE").map(PathBuf::from),
        })
    }

    fn matches(&self, after: bool, event: &RunEvent) -> bool {
        self.after == after
            && drflow_engine::event_name(event) == self.event
            && event.step() == Some(self.step.as_str())
    }

    fn pause(&self) -> ! {
        if let Some(m) = &self.marker {
            let _ = std::fs::write(m, std::process::id().to_string());
        }
        eprintln!(
            "drflow: DRFLOW_TEST_PAUSE reached ({}:{}); waiting to be killed",
            self.event, self.step
        );
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
}

/// Where a run's events go: the journal first (write-ahead), then the display.
struct Sinks<'a> {
    journal: Option<&'a mut Journal>,
    recorder: Option<Recorder>,
    progress: &'a mut dyn RunSink,
    secrets: &'a Secrets,
    pause: Option<&'a PauseHook>,
    /// The runbook's absolute path, journaled in `run_started` so a resume from another
    /// directory finds it.
    runbook_path: Option<&'a str>,
}

impl RunSink for Sinks<'_> {
    fn record(&mut self, event: &RunEvent) -> Result<(), SinkError> {
        let mut event = self.secrets.scrub_event(event);
        if let (Some(abs), RunEvent::RunStarted { .. }) = (self.runbook_path, event.as_ref())
            && let RunEvent::RunStarted { path, .. } = event.to_mut()
        {
            *path = abs.to_owned();
        }
        if let Some(p) = self.pause
            && p.matches(false, &event)
        {
            p.pause();
        }
        if let Some(j) = self.journal.as_deref_mut() {
            j.record(&event)?;
        }
        if let Some(r) = self.recorder.as_mut() {
            r.record(&event)?;
        }
        self.progress.record(&event)?;
        if let Some(p) = self.pause
            && p.matches(true, &event)
        {
            if let Some(j) = self.journal.as_deref_mut() {
                j.flush()?;
            }
            p.pause();
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        if let Some(j) = self.journal.as_deref_mut() {
            j.flush()?;
        }
        self.progress.flush()
    }
}

/// The journal, locks and secrets of one run of `drflow run` or `drflow resume`.
pub struct Durable {
    journal: Option<Journal>,
    leases: Vec<Lease>,
    secrets: Secrets,
    pause: Option<PauseHook>,
    rollback: Option<RollbackReport>,
    runbook_path: Option<String>,
}

impl Durable {
    /// Opens the journal and takes the locks for a new run. Nothing is journaled yet: a refused
    /// lock leaves no trace.
    pub fn start(
        global: &Global,
        rb: &Runbook,
        params: &Outputs,
        run_id: &str,
        args: &DurableArgs,
    ) -> Result<Durable, Failure> {
        let secrets = Secrets::from_params(params, &secret_names(rb));
        set_log_secrets(&secrets);
        let needs_db = !args.no_journal || rb.lock.is_some();
        let journal = if needs_db {
            Some(Journal::open_in(&global.state_dir).map_err(journal_failure)?)
        } else {
            None
        };
        let leases = match &journal {
            Some(j) => take_leases(j.path(), rb, run_id, params, &args.lock, !args.no_journal)?,
            None => Vec::new(),
        };
        Ok(Durable {
            journal: if args.no_journal { None } else { journal },
            leases,
            secrets,
            pause: PauseHook::from_env(),
            rollback: None,
            runbook_path: std::fs::canonicalize(&*rb.file)
                .ok()
                .map(|p| p.display().to_string()),
        })
    }

    /// The parameters as the journal and reports may show them.
    pub fn redacted_params(rb: &Runbook, params: &Outputs) -> Value {
        redact(params, &secret_names(rb))
    }

    /// Runs (or resumes) the runbook, journaling every event, then rolls back if the run failed
    /// and the runbook says `on_failure: rollback`.
    pub async fn run(
        &mut self,
        rb: &Runbook,
        params: &Outputs,
        options: RunOptions,
        progress: &mut dyn RunSink,
        stop: watch::Receiver<Stop>,
    ) -> Result<RunReport, RunError> {
        let recorder = (self.journal.is_none() && rb.on_failure == OnFailure::Rollback)
            .then(Recorder::default);
        let mut report = {
            let mut sinks = Sinks {
                journal: self.journal.as_mut(),
                recorder: recorder.clone(),
                progress: &mut *progress,
                secrets: &self.secrets,
                pause: self.pause.as_ref(),
                runbook_path: self.runbook_path.as_deref(),
            };
            drflow_engine::run(rb, params, options, &mut sinks, stop.clone()).await?
        };
        scrub_report(&self.secrets, &mut report);
        if report.status == RunStatus::Failed && rb.on_failure == OnFailure::Rollback {
            let events = match (&self.journal, &recorder) {
                (Some(j), _) => j
                    .events(&report.run_id)
                    .map_err(|e| SinkError(e.to_string()))?,
                (None, Some(r)) => r.events(),
                (None, None) => Vec::new(),
            };
            let state = RunState::replay(&events).map_err(|e| SinkError(e.to_string()))?;
            eprintln!(
                "drflow: the run failed and the runbook says `on_failure: rollback`: undoing"
            );
            let mut sinks = Sinks {
                journal: self.journal.as_mut(),
                recorder,
                progress,
                secrets: &self.secrets,
                pause: self.pause.as_ref(),
                runbook_path: None,
            };
            let rollback = drflow_engine::rollback(rb, &state, params, &mut sinks, stop).await?;
            self.rollback = Some(rollback);
        }
        for lease in &self.leases {
            if lease.is_lost() {
                report.errors.push(format!(
                    "the lock `{}` was lost during the run (another host took it over)",
                    lease.key()
                ));
            }
        }
        Ok(report)
    }

    /// Prints what an automatic rollback did (on stderr, so `--output json` stays one document).
    pub fn print_rollback(&self) {
        if let Some(r) = &self.rollback {
            eprint!("\n{r}");
        }
    }
}

/// Scrubs secrets out of everything a report prints.
fn scrub_report(secrets: &Secrets, report: &mut RunReport) {
    if secrets.is_empty() {
        return;
    }
    let scrub_map = |m: &mut Outputs| {
        let mut v = Value::Object(std::mem::take(m));
        secrets.scrub_value(&mut v);
        if let Value::Object(clean) = v {
            *m = clean;
        }
    };
    scrub_map(&mut report.outputs);
    for s in &mut report.steps {
        if let Some(o) = s.outputs.as_mut() {
            scrub_map(o);
        }
        if let Some(e) = s.error.as_mut() {
            e.message = secrets.scrub(&e.message).into_owned();
        }
        if let Some(n) = s.note.as_mut() {
            *n = secrets.scrub(n).into_owned();
        }
    }
    for e in &mut report.errors {
        *e = secrets.scrub(e).into_owned();
    }
}

/// A journaled run, loaded back with its runbook and parameters.
struct Loaded {
    journal: Journal,
    state: RunState,
    rb: Runbook,
    params: Outputs,
}

/// Loads a run for `resume` or `rollback`: replays its journal, recompiles its runbook (refusing
/// a changed file unless `force`), and rebuilds its parameters (secrets from `-p`).
fn load_run(
    global: &Global,
    run: &str,
    file: Option<&Path>,
    force: bool,
    flags: &[String],
    params_file: Option<&Path>,
) -> Result<Loaded, Failure> {
    let journal = open_existing(global)?;
    let run_id = journal.find_run(run).map_err(journal_failure)?;
    let events = journal.events(&run_id).map_err(journal_failure)?;
    let state = RunState::replay(&events).map_err(|e| Failure::invalid(format!("error: {e}")))?;
    let path = file.map_or_else(|| PathBuf::from(&state.path), Path::to_path_buf);
    let (rb, _) = crate::load(&path, &registry(global))?;
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
    }
    let params = rebuild_params(&rb, &state, flags, params_file)?;
    set_log_secrets(&Secrets::from_params(&params, &secret_names(&rb)));
    Ok(Loaded {
        journal,
        state,
        rb,
        params,
    })
}

fn short(hash: &str) -> &str {
    let h = hash.strip_prefix("sha256:").unwrap_or(hash);
    &h[..h.len().min(12)]
}

/// The run's parameters: non-secret ones from the journal, secret ones from `-p` /
/// `--params-file` (or their defaults).
fn rebuild_params(
    rb: &Runbook,
    state: &RunState,
    flags: &[String],
    params_file: Option<&Path>,
) -> Result<Outputs, Failure> {
    let secrets = secret_names(rb);
    let user = parse_flags(flags)?;
    if let Some((name, _)) = user.iter().find(|(n, _)| !secrets.contains(&n.as_str())) {
        return Err(Failure::invalid(format!(
            "error: `-p {name}=…`: only secret parameters can be given again; the others are \
             fixed by the journal\n  hint: start a new run to change `{name}`"
        )));
    }
    let mut all: Vec<(String, String)> = Vec::new();
    if let Some(journaled) = state.params.as_object() {
        for (name, value) in journaled {
            if secrets.contains(&name.as_str()) || !rb.params.iter().any(|p| &p.name == name) {
                continue;
            }
            let text = match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            all.push((name.clone(), text));
        }
    }
    all.extend(user);
    let source = match params_file {
        Some(p) => Some((p.display().to_string(), read(p)?)),
        None => None,
    };
    resolve_params(
        rb,
        source.as_ref().map(|(p, s)| (p.as_str(), s.as_str())),
        &all,
    )
    .map_err(|d| {
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
    })
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure {
            code: EXIT_FAILED,
            message: format!("error: cannot start the async runtime: {e}"),
        })
}

fn new_progress(rb: &Runbook, output: OutputFormat) -> progress::Progress {
    let uses: HashMap<String, String> = rb
        .steps
        .iter()
        .map(|s| (s.id.clone(), s.uses.clone()))
        .collect();
    let terminal = std::io::stderr().is_terminal() && output == OutputFormat::Text;
    progress::Progress::new(uses, terminal)
}

/// `drflow resume RUN`.
pub fn cmd_resume(global: &Global, args: ResumeArgs) -> Result<u8, Failure> {
    let loaded = load_run(
        global,
        &args.run,
        args.file.as_deref(),
        args.force,
        &args.params,
        args.params_file.as_deref(),
    )?;
    let Loaded {
        mut journal,
        state,
        rb,
        params,
    } = loaded;
    let run_id = state.run_id.clone();
    if state.status == RunStatus::Succeeded {
        eprintln!("drflow: run {run_id} already succeeded; nothing to resume");
        return Ok(EXIT_OK);
    }
    if state.rollback_started() {
        return Err(Failure::invalid(format!(
            "error: run {run_id} is being rolled back (status {}); it cannot be resumed\n  hint: \
             finish the unwind with `drflow rollback {run_id}`, then start a new run",
            state.status.name()
        )));
    }
    let leases = take_leases(journal.path(), &rb, &run_id, &params, &args.lock, true)?;
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
    options.max_parallel = args.max_parallel.map(|n| n as usize);
    options.timeout = args.timeout;
    options.grace = args.grace;
    options.prior = Some(prior);
    options.redacted_params = Durable::redacted_params(&rb, &params);
    let mut durable = Durable {
        journal: Some(journal),
        leases,
        secrets: Secrets::from_params(&params, &secret_names(&rb)),
        pause: PauseHook::from_env(),
        rollback: None,
        runbook_path: None,
    };
    let mut progress = new_progress(&rb, args.output);
    let report = runtime()?.block_on(async {
        let (stop_tx, stop_rx) = watch::channel(Stop::No);
        tokio::spawn(crate::forward_signals(stop_tx));
        durable
            .run(&rb, &params, options, &mut progress, stop_rx)
            .await
    });
    drop(progress);
    let report = report.map_err(|e| Failure {
        code: EXIT_FAILED,
        message: format!(
            "error: {e}\n  hint: the run stopped because its progress could not be recorded"
        ),
    })?;
    match args.output {
        OutputFormat::Text => print!("{}", report::text(&report, global.target.name())),
        OutputFormat::Json => println!("{:#}", report::json(&report, global.target.name())),
    }
    durable.print_rollback();
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
    let Loaded {
        mut journal,
        state,
        rb,
        params,
    } = load_run(
        global,
        &args.run,
        args.file.as_deref(),
        args.force,
        &args.params,
        args.params_file.as_deref(),
    )?;
    let run_id = state.run_id.clone();
    if state.status == RunStatus::RolledBack {
        eprintln!("drflow: run {run_id} is already rolled back; nothing to undo");
        return Ok(EXIT_OK);
    }
    let _leases = take_leases(journal.path(), &rb, &run_id, &params, &args.lock, true)?;
    journal.attach(&run_id).map_err(journal_failure)?;
    eprintln!("drflow: rolling back run {run_id} of {}", rb.name);
    let secrets = Secrets::from_params(&params, &secret_names(&rb));
    let mut progress = new_progress(&rb, args.output);
    let pause = PauseHook::from_env();
    let result = runtime()?.block_on(async {
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
        drflow_engine::rollback(&rb, &state, &params, &mut sinks, stop_rx).await
    });
    drop(progress);
    let report = result.map_err(|e| Failure {
        code: EXIT_FAILED,
        message: format!(
            "error: {e}\n  hint: the rollback stopped because its progress could not be recorded"
        ),
    })?;
    match args.output {
        OutputFormat::Text => print!("{report}"),
        OutputFormat::Json => println!("{:#}", json!({ "run_id": run_id, "rollback": report })),
    }
    Ok(exit_code(report.status))
}

/// `drflow runs`.
pub fn cmd_runs(global: &Global, args: RunsArgs) -> Result<u8, Failure> {
    let path = global.state_dir.join(JOURNAL_FILE);
    if !path.exists() {
        if args.output == OutputFormat::Json {
            println!("[]");
        } else {
            eprintln!("drflow: no runs recorded in {}", global.state_dir.display());
        }
        return Ok(EXIT_OK);
    }
    let journal = Journal::open(&path).map_err(journal_failure)?;
    let runs = journal.list_runs().map_err(journal_failure)?;
    let rows: Vec<Value> = runs
        .iter()
        .map(|r| {
            let live = r.status == "running"
                && drflow_engine::live_holder(&journal, &run_key(&r.id))
                    .ok()
                    .flatten()
                    .is_some();
            let status = if r.status == "running" && !live {
                "crashed".to_owned()
            } else {
                r.status.clone()
            };
            let end = r.finished_at.unwrap_or_else(now);
            json!({
                "id": r.id,
                "runbook": r.runbook,
                "path": r.path,
                "status": status,
                "started_at": iso8601(r.started_at),
                "finished_at": r.finished_at.map(iso8601),
                "duration_seconds": ((end - r.started_at) * 1000.0).round() / 1000.0,
            })
        })
        .collect();
    if args.output == OutputFormat::Json {
        println!("{:#}", Value::Array(rows));
        return Ok(EXIT_OK);
    }
    let mut out = String::new();
    let id_w = runs.iter().map(|r| r.id.len()).max().unwrap_or(6).max(6);
    let rb_w = runs
        .iter()
        .map(|r| r.runbook.len())
        .max()
        .unwrap_or(7)
        .max(7);
    let _ = writeln!(
        out,
        "{:<id_w$}  {:<rb_w$}  {:<15}  {:<24}  {:>9}",
        "run id", "runbook", "status", "started", "duration"
    );
    for row in &rows {
        let secs = row["duration_seconds"].as_f64().unwrap_or(0.0);
        let _ = writeln!(
            out,
            "{:<id_w$}  {:<rb_w$}  {:<15}  {:<24}  {:>9}",
            row["id"].as_str().unwrap_or_default(),
            row["runbook"].as_str().unwrap_or_default(),
            row["status"].as_str().unwrap_or_default(),
            row["started_at"].as_str().unwrap_or_default(),
            drflow_engine::format_duration(Duration::from_secs_f64(secs.max(0.0))),
        );
    }
    print!("{out}");
    Ok(EXIT_OK)
}

/// `drflow show RUN`.
pub fn cmd_show(global: &Global, args: ShowArgs) -> Result<u8, Failure> {
    let journal = open_existing(global)?;
    let run_id = journal.find_run(&args.run).map_err(journal_failure)?;
    let events = journal.events(&run_id).map_err(journal_failure)?;
    let state = RunState::replay(&events);
    if args.output == OutputFormat::Json {
        let doc = match &state {
            Ok(s) => json!({ "run": s, "events": events }),
            Err(e) => json!({ "error": e.to_string(), "code": e.kind.code(), "events": events }),
        };
        println!("{doc:#}");
        return Ok(if state.is_ok() { EXIT_OK } else { EXIT_FAILED });
    }
    match state {
        Ok(s) => {
            print!("{}", timeline(&s));
            Ok(EXIT_OK)
        }
        Err(e) => {
            for (i, ev) in events.iter().enumerate() {
                println!(
                    "#{:<4} {}",
                    i + 1,
                    serde_json::to_string(ev).unwrap_or_default()
                );
            }
            Err(Failure {
                code: EXIT_FAILED,
                message: format!("error: {e}"),
            })
        }
    }
}

fn timeline(s: &RunState) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "run       {}", s.run_id);
    let _ = writeln!(out, "runbook   {} ({})", s.runbook, s.path);
    let _ = writeln!(out, "hash      {}", s.content_hash);
    let _ = writeln!(out, "status    {}", s.status.name());
    let _ = writeln!(out, "started   {}", iso8601(s.started_at));
    for r in &s.resumed_at {
        let _ = writeln!(out, "resumed   {}", iso8601(*r));
    }
    if let Some(f) = s.finished_at {
        let _ = writeln!(
            out,
            "finished  {} (after {})",
            iso8601(f),
            secs(f - s.started_at)
        );
    }
    let _ = writeln!(out, "params    {}", s.params);
    if !s.outputs.is_empty() {
        let _ = writeln!(out, "outputs   {}", Value::Object(s.outputs.clone()));
    }
    let _ = writeln!(out);
    let w = s
        .step_order
        .iter()
        .map(String::len)
        .max()
        .unwrap_or(4)
        .max(4);
    for id in &s.step_order {
        let Some(step) = s.step(id) else { continue };
        let _ = writeln!(out, "{id:<w$}  {}", step.status.name());
        if let Some(reason) = &step.skip_reason
            && step.status == StepPhase::Skipped
        {
            let _ = writeln!(out, "{:w$}    skipped: {reason}", "");
        }
        for a in &step.history {
            let ended = match a.ended_at {
                Some(e) => format!(" → {} ({})", time_of_day(e), secs(e - a.started_at)),
                None => String::new(),
            };
            let outcome = match &a.outcome {
                AttemptOutcome::Running => "running (no result journaled)".to_owned(),
                AttemptOutcome::Succeeded => "succeeded".to_owned(),
                AttemptOutcome::Failed { error, will_retry } => format!(
                    "failed: {error}{}",
                    if *will_retry { "; retrying" } else { "" }
                ),
                AttemptOutcome::Interrupted => "interrupted".to_owned(),
                AttemptOutcome::Lost => "lost: the process died; run again on resume".to_owned(),
            };
            let _ = writeln!(
                out,
                "{:w$}    attempt {} {}{ended}  {outcome}",
                "",
                a.attempt,
                iso8601(a.started_at),
            );
        }
        if let Some(u) = step.undo_started_at {
            let result = match (step.status, step.undo_finished_at) {
                (StepPhase::Undone, Some(e)) => format!("undone {}", time_of_day(e)),
                (StepPhase::UndoFailed, Some(e)) => format!(
                    "undo FAILED {}: {}",
                    time_of_day(e),
                    step.last_error
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_default()
                ),
                _ => "undo started, not finished".to_owned(),
            };
            let _ = writeln!(out, "{:w$}    undo    {} {result}", "", iso8601(u));
        }
        if let Some(o) = &step.outputs
            && !o.is_empty()
        {
            let _ = writeln!(out, "{:w$}    outputs {}", "", Value::Object(o.clone()));
        }
    }
    out
}

fn time_of_day(t: f64) -> String {
    iso8601(t).get(11..23).unwrap_or_default().to_owned()
}

fn secs(d: f64) -> String {
    drflow_engine::format_duration(Duration::from_secs_f64(d.max(0.0)))
}
