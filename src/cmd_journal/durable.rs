//! The journal, locks and secrets of one run: what `drflow run`, `resume` and `rollback` share.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use drflow_engine::{
    Holder, Journal, JournalError, Lease, LeaseOptions, LockError, OnFailure, Outputs, Recorder,
    RollbackReport, RunError, RunEvent, RunOptions, RunReport, RunSink, RunState, RunStatus,
    Runbook, Scope, SecretFlow, Secrets, SinkError, Stop, iso8601, now, redact,
};
use serde_json::Value;
use tokio::sync::watch;

use crate::{Failure, Global, parse_duration_arg};

/// The secrets of the run in progress, scrubbed out of every log line (see [`scrubbed_stderr`]).
static LOG_SECRETS: std::sync::RwLock<Option<Secrets>> = std::sync::RwLock::new(None);

/// From now on, log lines have these secrets replaced by `***`: those known now and those the
/// run adds to the same set as it derives them (`Secrets` clones share their values), so even a
/// run without secret parameters keeps a credential variable it reads out of the log.
pub(super) fn set_log_secrets(secrets: &Secrets) {
    if let Ok(mut s) = LOG_SECRETS.write() {
        *s = Some(secrets.clone());
    }
}

/// A stderr writer for the tracing subscriber that scrubs the run's secrets out of each line
/// (a step that logs its input must not print a token).
pub fn scrubbed_stderr() -> ScrubbedLine {
    ScrubbedLine(Vec::new())
}

/// One log line, written to stderr (scrubbed, and above the live display) when dropped.
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
            Some(secrets) if !secrets.is_empty() => secrets.scrub(&text).into_owned(),
            _ => text.into_owned(),
        };
        crate::progress::print_now(&line);
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

pub(super) fn journal_failure(e: JournalError) -> Failure {
    Failure::invalid(format!("error: {e}"))
}

pub(super) fn lock_failure(e: LockError) -> Failure {
    Failure::invalid(format!("error: {e}"))
}

pub(super) fn secret_names(rb: &Runbook) -> Vec<&str> {
    rb.secret_params()
}

/// The lease key of a runbook's `lock:` and of a run itself.
fn lock_key(key: &str) -> String {
    format!("lock/{key}")
}

/// A lease key as the user knows it: the `lock:` value, or `run <id>`.
fn display_key(key: &str) -> String {
    if let Some(k) = key.strip_prefix("lock/") {
        k.to_owned()
    } else if let Some(id) = key.strip_prefix("run/") {
        format!("run {id}")
    } else {
        key.to_owned()
    }
}

pub(super) fn run_key(run_id: &str) -> String {
    format!("run/{run_id}")
}

/// Refuses a secret parameter too short to be scrubbed out of text (see docs/journal.md).
pub(super) fn refuse_short_secrets(rb: &Runbook, params: &Outputs) -> Result<(), Failure> {
    match Secrets::too_short(params, &secret_names(rb)) {
        None => Ok(()),
        Some(name) => Err(Failure::invalid(format!(
            "error: the secret parameter `{name}` is shorter than {min} characters; drflow cannot \
             keep a value that short out of messages, logs and the journal, so it refuses it\n  \
             hint: use a longer secret (or, if it is not really a secret, drop `secret: true`)",
            min = drflow_engine::MIN_SCRUB_LEN
        ))),
    }
}

/// Evaluates the runbook's `lock:` expression with the run's parameters. A key that reads or
/// contains a secret is refused: lock keys are stored in the journal and shown in messages.
fn evaluate_lock(rb: &Runbook, run_id: &str, params: &Outputs) -> Result<Option<String>, Failure> {
    refuse_secret_lock(rb)?;
    let key = evaluate_lock_value(rb, run_id, params)?;
    if let Some(k) = &key {
        if k.trim().is_empty() {
            return Err(Failure::invalid(
                "error: the runbook's `lock:` evaluated to an empty key\n  hint: a lock key must \
                 be a non-empty string, e.g. `lock: failover-${{ params.env_suffix }}`",
            ));
        }
        let secrets = Secrets::from_params(params, &secret_names(rb));
        if secrets.scrub(k) != k.as_str() {
            return Err(Failure::invalid(format!(
                "error: the runbook's `lock:` evaluates to a key that contains a secret parameter \
                 (`{}`); lock keys are stored in the journal and shown to other runs, so a secret \
                 cannot be part of one\n  hint: build the lock key from non-secret parameters \
                 only, e.g. the environment name",
                secrets.scrub(k)
            )));
        }
    }
    Ok(key)
}

/// Refuses a `lock:` that reads a secret, whatever it evaluates to: lock keys are stored in the
/// journal and shown to other runs.
fn refuse_secret_lock(rb: &Runbook) -> Result<(), Failure> {
    if !SecretFlow::of(rb).lock_is_secret() {
        return Ok(());
    }
    Err(Failure::invalid(
        "error: the runbook's `lock:` reads a secret (a secret parameter or a credential \
         variable such as `env.AWS_SECRET_ACCESS_KEY`); lock keys are stored in the journal and \
         shown to other runs, so a secret cannot be part of one, in any form\n  hint: build the \
         lock key from non-secret parameters only, e.g. the environment name",
    ))
}

fn evaluate_lock_value(
    rb: &Runbook,
    run_id: &str,
    params: &Outputs,
) -> Result<Option<String>, Failure> {
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

/// The lease timings: the defaults, or for tests `DRFLOW_TEST_LEASE_HEARTBEAT_MS` (the ttl is
/// three heartbeats, as by default).
fn lease_options() -> LeaseOptions {
    match std::env::var("DRFLOW_TEST_LEASE_HEARTBEAT_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        Some(ms) if ms > 0 => LeaseOptions {
            heartbeat: Duration::from_millis(ms),
            ttl: Duration::from_millis(ms * 3),
        },
        _ => LeaseOptions::default(),
    }
}

/// Takes the lease on run `run_id` itself, so that no other process records into it (or reads
/// its journal to continue it) meanwhile.
pub(super) fn take_run_lease(journal_path: &Path, run_id: &str) -> Result<Lease, Failure> {
    match Lease::acquire(journal_path, &run_key(run_id), run_id, lease_options()) {
        Ok(l) => Ok(l),
        Err(LockError::Held { holder }) => Err(Failure::invalid(format!(
            "error: run {run_id} is still being worked on by pid {} on {} (last heartbeat {})\n  \
             hint: wait for that process to finish, or stop it first",
            holder.pid,
            holder.hostname,
            iso8601(holder.heartbeat_at)
        ))),
        Err(e) => Err(lock_failure(e)),
    }
}

/// Takes the leases a run needs: its own (so a run is never resumed twice at once) and the
/// runbook's `lock:`.
pub(super) fn take_leases(
    journal_path: &Path,
    rb: &Runbook,
    run_id: &str,
    params: &Outputs,
    args: &LockArgs,
    own: bool,
) -> Result<Vec<Lease>, Failure> {
    let mut leases = Vec::new();
    if own {
        leases.push(take_run_lease(journal_path, run_id)?);
    }
    if let Some(key) = evaluate_lock(rb, run_id, params)? {
        let lease = if args.wait_lock {
            Lease::acquire_waiting(
                journal_path,
                &lock_key(&key),
                run_id,
                lease_options(),
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
            Lease::acquire(journal_path, &lock_key(&key), run_id, lease_options())
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
            LockError::Timeout { holder, waited } => Failure::invalid(format!(
                "error: gave up waiting for the lock `{key}` after {}; it is still held by run {} \
                 (pid {} on {})",
                drflow_engine::format_duration(waited),
                holder.run_id,
                holder.pid,
                holder.hostname
            )),
            other => lock_failure(other),
        })?;
        if let Some(dead) = lease.took_over() {
            let why = if dead.hostname == drflow_engine::hostname() {
                format!("pid {} on {} is gone", dead.pid, dead.hostname)
            } else {
                format!(
                    "its lease from pid {} on {} expired at {} without a heartbeat",
                    dead.pid,
                    dead.hostname,
                    iso8601(dead.expires_at)
                )
            };
            eprintln!(
                "drflow: took over the lock `{key}` from run {} ({why})",
                dead.run_id
            );
        }
        leases.push(lease);
    }
    Ok(leases)
}

/// A test hook: `DRFLOW_TEST_PAUSE=before:step_started:c` (or `after:step_succeeded:b`) makes
/// the process stop dead at that event — after committing the journal, for `after:` — and
/// create the file `DRFLOW_TEST_PAUSE_FILE`, so a test can SIGKILL it at a known point.
pub(super) struct PauseHook {
    after: bool,
    event: String,
    step: String,
    marker: Option<PathBuf>,
}

impl PauseHook {
    pub(super) fn from_env() -> Option<PauseHook> {
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
        // What the display still holds goes out first: the process is about to be killed.
        crate::progress::flush();
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
pub(super) struct Sinks<'a> {
    pub(super) journal: Option<&'a mut Journal>,
    pub(super) recorder: Option<Recorder>,
    pub(super) progress: &'a mut dyn RunSink,
    pub(super) secrets: &'a Secrets,
    pub(super) pause: Option<&'a PauseHook>,
    /// The runbook's absolute path, journaled in `run_started` so a resume from another
    /// directory finds it.
    pub(super) runbook_path: Option<&'a str>,
}

impl RunSink for Sinks<'_> {
    fn record(&mut self, event: &RunEvent) -> Result<(), SinkError> {
        let mut event = self.secrets.scrub_event(event)?;
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
    pub(super) journal: Option<Journal>,
    pub(super) leases: Vec<Lease>,
    pub(super) secrets: Secrets,
    pub(super) pause: Option<PauseHook>,
    pub(super) rollback: Option<RollbackReport>,
    pub(super) runbook_path: Option<String>,
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
        refuse_short_secrets(rb, params)?;
        // Before the journal is opened: a refused run leaves no state dir behind.
        refuse_secret_lock(rb)?;
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
    /// and the runbook says `on_failure: rollback`. The secrets the run derives are added to
    /// this run's secrets, which the journal, the display and the log writer scrub with.
    pub async fn run(
        &mut self,
        rb: &Runbook,
        params: &Outputs,
        mut options: RunOptions,
        progress: &mut dyn RunSink,
        stop: watch::Receiver<Stop>,
    ) -> Result<RunReport, RunError> {
        options.secrets = self.secrets.clone();
        let clock = options.clock.clone();
        set_log_secrets(&self.secrets);
        let recorder = (self.journal.is_none() && rb.on_failure == OnFailure::Rollback)
            .then(Recorder::default);
        let stop = self.stop_when_a_lease_is_lost(stop);
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
            crate::progress::print_now(
                "drflow: the run failed and the runbook says `on_failure: rollback`: undoing",
            );
            let mut sinks = Sinks {
                journal: self.journal.as_mut(),
                recorder,
                progress,
                secrets: &self.secrets,
                pause: self.pause.as_ref(),
                runbook_path: None,
            };
            let rollback =
                drflow_engine::rollback(rb, &state, params, clock, &mut sinks, stop).await?;
            self.rollback = Some(rollback);
        }
        for lease in &self.leases {
            if lease.is_lost() {
                report.errors.push(format!(
                    "the lock `{}` was lost during the run (another process took it over, or it \
                     could not be renewed before it expired)",
                    display_key(lease.key())
                ));
            }
        }
        Ok(report)
    }

    /// A stop signal that follows `outer` (Ctrl-C, SIGTERM) and also turns to a graceful stop
    /// when one of the run's leases is lost: another process now holds the lock (or may, its
    /// lease having expired unrenewed), so this run must start nothing more.
    fn stop_when_a_lease_is_lost(&self, mut outer: watch::Receiver<Stop>) -> watch::Receiver<Stop> {
        if self.leases.is_empty() {
            return outer;
        }
        let flags: Vec<(String, std::sync::Arc<std::sync::atomic::AtomicBool>)> = self
            .leases
            .iter()
            .map(|l| (l.key().to_owned(), l.lost_flag()))
            .collect();
        let (tx, rx) = watch::channel(*outer.borrow());
        let tx = std::sync::Arc::new(tx);
        // A lost lease is a real-world event, flagged by the lease's heartbeat thread: it is
        // watched on the wall clock by a thread, not by a tokio timer, which on the paused
        // runtime of a sim run would spin through virtual time while the run waits.
        let lost = std::sync::Arc::clone(&tx);
        std::thread::Builder::new()
            .name("drflow-lease-watch".into())
            .spawn(move || {
                // Ends with the run: when nobody listens to the stop signal any more.
                while !lost.is_closed() {
                    if let Some((key, _)) = flags
                        .iter()
                        .find(|(_, f)| f.load(std::sync::atomic::Ordering::SeqCst))
                    {
                        crate::progress::print_now(&format!(
                            "drflow: LOST the lock `{}`: another run may hold it now; stopping \
                             (no new step starts)",
                            display_key(key)
                        ));
                        if *lost.borrow() == Stop::No {
                            let _ = lost.send(Stop::Graceful);
                        }
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
            })
            .ok();
        tokio::spawn(async move {
            loop {
                if outer.changed().await.is_err() {
                    return;
                }
                let s = *outer.borrow();
                if tx.send(s).is_err() {
                    return;
                }
            }
        });
        rx
    }

    /// What the automatic rollback did, if the run failed and was rolled back.
    pub fn rollback_report(&self) -> Option<&RollbackReport> {
        self.rollback.as_ref()
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
