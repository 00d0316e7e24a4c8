//! What `drflow run`, `resume` and `rollback` share on top of the library runner
//! ([`drflow_engine::runner`]): its options for this command line, its errors as exit codes, its
//! notices as lines on stderr, and the log writer that scrubs the run's secrets.

use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use drflow_engine::runner::{
    LockWait, Notice, Runner, RunnerError, RunnerErrorKind, RunnerOptions,
};
use drflow_engine::{JournalError, Secrets, SharedClock, iso8601};

use crate::{EXIT_FAILED, EXIT_INVALID, Failure, Global, parse_duration_arg};

/// The secrets of the run in progress, scrubbed out of every log line (see [`scrubbed_stderr`]).
static LOG_SECRETS: std::sync::RwLock<Option<Secrets>> = std::sync::RwLock::new(None);

/// From now on, log lines have these secrets replaced by `***`: those known now and those the
/// run adds to the same set as it derives them (`Secrets` clones share their values), so even a
/// run without secret parameters keeps a credential variable it reads out of the log.
pub(crate) fn set_log_secrets(secrets: &Secrets) {
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

impl LockArgs {
    /// How the runner takes the runbook's `lock:`.
    pub fn wait(&self) -> LockWait {
        LockWait {
            wait: self.wait_lock,
            timeout: self.wait_lock_timeout,
        }
    }
}

/// A runner error as the command line reports it: invalid input and busy locks exit 2 (nothing
/// ran), a run that could not record its progress exits 1.
pub(crate) fn runner_failure(e: RunnerError) -> Failure {
    let code = match e.kind() {
        RunnerErrorKind::Invalid | RunnerErrorKind::Busy => EXIT_INVALID,
        RunnerErrorKind::Failed | RunnerErrorKind::Crashed => EXIT_FAILED,
    };
    Failure {
        code,
        message: e.message(),
        diagnostics: e.diagnostics().map(|d| d.0.clone()).unwrap_or_default(),
    }
}

/// The runner of this command line: the journal under the state dir, leases on wall time, runs
/// on the command's `clock` (see [`crate::runtime`]), the backend saved through `checkpoint`,
/// notices on stderr; with `--journal`, the shared journal and its leases. Errors: `--journal`
/// without `--target aws` or a region (exit 2), its table out of reach (exit 1).
pub(crate) fn runner(
    global: &Global,
    checkpoint: Option<Arc<drflow_steps::LazyBackend>>,
    clock: SharedClock,
) -> Result<Runner, Failure> {
    let mut options = RunnerOptions::new(&global.state_dir);
    options.shared = crate::shared_journal::open(global)?;
    options.clock = clock;
    options.checkpoint = checkpoint.map(|backend| {
        Arc::new(move || backend.checkpoint().map_err(|e| e.to_string()))
            as drflow_engine::runner::Checkpoint
    });
    options.notices = Some(Arc::new(print_notice));
    Ok(Runner::new(options))
}

/// What the runner has to say, as drflow always said it.
fn print_notice(notice: Notice<'_>) {
    match notice {
        Notice::WaitingForLock { key, holder } => eprintln!(
            "drflow: waiting for the lock `{key}`, held by run {} (pid {} on {})",
            holder.run_id, holder.pid, holder.hostname
        ),
        Notice::TookOverLock { key, dead } => {
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
        Notice::LostLock { key } => crate::progress::print_now(&format!(
            "drflow: LOST the lock `{key}`: another run may hold it now; stopping (no new step \
             starts)"
        )),
        Notice::RollingBack => crate::progress::print_now(
            "drflow: the run failed and the runbook says `on_failure: rollback`: undoing",
        ),
    }
}

/// Prints what an automatic rollback did (on stderr, so `--output json` stays one document).
pub(crate) fn print_rollback(rollback: Option<&drflow_engine::RollbackReport>) {
    if let Some(r) = rollback {
        eprint!("\n{r}");
    }
}
