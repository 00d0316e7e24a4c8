//! Why the runner could not start, continue or finish a run.

use std::path::PathBuf;
use std::time::Duration;

use crate::diag::Diagnostics;
use crate::event::SinkError;
use crate::journal::JournalError;
use crate::lock::{Holder, LockError};
use crate::scope::iso8601;
use crate::shared_log::SharedLogError;
use crate::state::TransitionError;

/// What kind of failure a [`RunnerError`] is: what the binary maps to an exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunnerErrorKind {
    /// The runbook, its parameters, the journal or the request is not usable; nothing ran.
    Invalid,
    /// Another live run holds a lock or the run itself (or waiting for it timed out); nothing
    /// ran.
    Busy,
    /// The run started and could not go on: its progress could not be recorded.
    Failed,
    /// A test hook crashed the run ([`super::HookAction::Crash`]).
    Crashed,
}

/// Why the runner could not start, continue or finish a run. The `Display` text is the message
/// without its `error: ` prefix, hints on lines of their own (`\n  hint: …`); see
/// [`RunnerError::message`] for the whole text.
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    /// The journal could not be opened or read.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// There is no journal to continue a run from.
    #[error(
        "no journal at {}: no run was recorded with this state dir\n  hint: run from the \
         directory the run was started in, or pass --state-dir / DRFLOW_STATE_DIR",
        path.display()
    )]
    NoJournal {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// A lease store failed (other than a held lock).
    #[error(transparent)]
    Lock(LockError),
    /// A run's journal does not replay.
    #[error(transparent)]
    Replay(#[from] TransitionError),
    /// A runbook file could not be read.
    #[error("cannot read {}: {source}\n  hint: {}", path.display(), read_hint(source))]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The runbook does not compile.
    #[error("{}", diagnostics.render(&[(name.as_str(), text.as_str())]).trim_start_matches("error: "))]
    Compile {
        /// The file as named.
        name: String,
        /// Its text.
        text: String,
        /// Every problem.
        diagnostics: Diagnostics,
    },
    /// The secret parameters given to a resume or rollback do not resolve.
    #[error("{}", render_params(diagnostics, file, secrets).trim_start_matches("error: "))]
    Params {
        /// Every problem.
        diagnostics: Diagnostics,
        /// The parameters file, as (name, text), if one was given.
        file: Option<(String, String)>,
        /// The runbook's secret parameters, named in a note.
        secrets: Vec<String>,
    },
    /// A secret parameter too short to be scrubbed out of text.
    #[error(
        "the secret parameter `{name}` is shorter than {min} characters; drflow cannot keep a \
         value that short out of messages, logs and the journal, so it refuses it\n  hint: use a \
         longer secret (or, if it is not really a secret, drop `secret: true`)",
        min = crate::secrets::MIN_SCRUB_LEN
    )]
    ShortSecret {
        /// The parameter.
        name: String,
    },
    /// The `lock:` expression reads a secret.
    #[error(
        "the runbook's `lock:` reads a secret (a secret parameter or a credential variable such \
         as `env.AWS_SECRET_ACCESS_KEY`); lock keys are stored in the journal and shown to other \
         runs, so a secret cannot be part of one, in any form\n  hint: build the lock key from \
         non-secret parameters only, e.g. the environment name"
    )]
    LockReadsSecret,
    /// The `lock:` key contains a secret value.
    #[error(
        "the runbook's `lock:` evaluates to a key that contains a secret parameter (`{shown}`); \
         lock keys are stored in the journal and shown to other runs, so a secret cannot be part \
         of one\n  hint: build the lock key from non-secret parameters only, e.g. the \
         environment name"
    )]
    LockContainsSecret {
        /// The key with the secret scrubbed.
        shown: String,
    },
    /// The `lock:` key is empty.
    #[error(
        "the runbook's `lock:` evaluated to an empty key\n  hint: a lock key must be a non-empty \
         string, e.g. `lock: failover-${{{{ params.env_suffix }}}}`"
    )]
    LockEmpty,
    /// The `lock:` key evaluated to nothing.
    #[error(
        "the runbook's `lock:` evaluated to nothing\n  hint: a lock key must be a non-empty string"
    )]
    LockNothing,
    /// The `lock:` key could not be evaluated.
    #[error("the runbook's `lock:` could not be evaluated: {0}")]
    LockEval(String),
    /// Another live run holds the runbook's lock.
    #[error(
        "the lock `{key}` is held by run {} (pid {} on {}, since {})\n  hint: wait for that run \
         to finish, or pass --wait-lock to wait for it",
        holder.run_id, holder.pid, holder.hostname, iso8601(holder.acquired_at)
    )]
    LockHeld {
        /// The key as the runbook gives it.
        key: String,
        /// Who holds it.
        holder: Box<Holder>,
    },
    /// Waiting for the runbook's lock timed out.
    #[error(
        "gave up waiting for the lock `{key}` after {}; it is still held by run {} (pid {} on {})",
        crate::duration::format_duration(*waited), holder.run_id, holder.pid, holder.hostname
    )]
    LockTimeout {
        /// The key as the runbook gives it.
        key: String,
        /// Who holds it.
        holder: Box<Holder>,
        /// How long we waited.
        waited: Duration,
    },
    /// Another live process is working on the run (resuming or rolling it back).
    #[error(
        "run {run_id} is still being worked on by pid {} on {} (last heartbeat {})\n  hint: wait \
         for that process to finish, or stop it first",
        holder.pid, holder.hostname, iso8601(holder.heartbeat_at)
    )]
    RunBusy {
        /// The run.
        run_id: String,
        /// Who holds it.
        holder: Box<Holder>,
    },
    /// A rolled-back run cannot be resumed.
    #[error(
        "run {run_id} was rolled back; it cannot be resumed (what it did was undone, or has no \
         undo and was left as it is)\n  hint: start a new run"
    )]
    RolledBack {
        /// The run.
        run_id: String,
    },
    /// A run being rolled back cannot be resumed.
    #[error(
        "run {run_id} is being rolled back (status {status}); it cannot be resumed\n  hint: \
         finish the unwind with `drflow rollback {run_id}`, then start a new run"
    )]
    BeingRolledBack {
        /// The run.
        run_id: String,
        /// Its status name.
        status: &'static str,
    },
    /// The runbook file the run started from is gone.
    #[error(
        "the runbook of run {run_id}, {}, is no longer there\n  hint: if it moved, point at it \
         with `--file PATH`",
        path.display()
    )]
    RunbookMissing {
        /// The run.
        run_id: String,
        /// Where it was.
        path: PathBuf,
    },
    /// The file given is another runbook than the run's.
    #[error(
        "{} is the runbook `{found}`, but run {run_id} ran the runbook `{expected}`; --force \
         cannot resume or roll back a run against another runbook\n  hint: point --file at the \
         runbook the run started from",
        path.display()
    )]
    OtherRunbook {
        /// The file.
        path: PathBuf,
        /// Its runbook name.
        found: String,
        /// The run.
        run_id: String,
        /// The run's runbook name.
        expected: String,
    },
    /// The runbook changed since the run started (and `force` was not given).
    #[error(
        "the runbook {} changed since run {run_id} started (content hash {then} then, {now} \
         now)\n  hint: resuming against a different runbook can repeat or skip work; start a new \
         run, or pass --force if the change is safe",
        path.display()
    )]
    Changed {
        /// The file.
        path: PathBuf,
        /// The run.
        run_id: String,
        /// The short hash journaled.
        then: String,
        /// The short hash now.
        now: String,
    },
    /// Under `force`, succeeded steps whose definition changed.
    #[error("{}", changed_steps(run_id, steps))]
    ChangedSucceededSteps {
        /// The run.
        run_id: String,
        /// The steps.
        steps: Vec<String>,
    },
    /// `-p` of a parameter the runbook does not have.
    #[error("`-p {name}=…`: the runbook {runbook} has no parameter `{name}`")]
    UnknownParam {
        /// The parameter.
        name: String,
        /// The runbook.
        runbook: String,
    },
    /// `-p` of a non-secret parameter on resume or rollback.
    #[error(
        "`-p {name}=…`: only secret parameters can be given again; the others are fixed by the \
         journal\n  hint: start a new run to change `{name}`"
    )]
    NotSecretParam {
        /// The parameter.
        name: String,
    },
    /// A journaled parameter value the runbook now declares another type for.
    #[error(
        "the run was started with `{name}` = {value}, which is not of the type the runbook now \
         declares for it ({ty})\n  hint: start a new run"
    )]
    JournaledParamType {
        /// The parameter.
        name: String,
        /// The journaled value.
        value: serde_json::Value,
        /// The declared type.
        ty: String,
    },
    /// The run's (or rollback's) progress could not be recorded, so it stopped.
    #[error("{source}\n  hint: the {what} stopped because its progress could not be recorded")]
    Recording {
        /// `run` or `rollback`.
        what: &'static str,
        /// What the sink said.
        source: SinkError,
    },
    /// A test hook crashed the run at this point.
    #[error("crashed by a test hook at {point}")]
    Crashed {
        /// Where ([`super::HookPoint::describe`]).
        point: String,
    },
}

impl RunnerError {
    /// What kind of failure this is.
    pub fn kind(&self) -> RunnerErrorKind {
        match self {
            RunnerError::LockHeld { .. }
            | RunnerError::LockTimeout { .. }
            | RunnerError::RunBusy { .. } => RunnerErrorKind::Busy,
            // Another drflow took the run over (or wrote it first): like a held lock.
            RunnerError::Journal(JournalError::Shared {
                source: SharedLogError::Fenced { .. } | SharedLogError::Conflict { .. },
                ..
            }) => RunnerErrorKind::Busy,
            // The store out of reach is no fault of the input.
            RunnerError::Journal(JournalError::Shared { .. }) => RunnerErrorKind::Failed,
            RunnerError::Recording { .. } => RunnerErrorKind::Failed,
            RunnerError::Crashed { .. } => RunnerErrorKind::Crashed,
            _ => RunnerErrorKind::Invalid,
        }
    }

    /// The whole message as the command line prints it: `error: …` (each problem of a
    /// [`RunnerError::Compile`] or [`RunnerError::Params`] with its own `error: ` and source
    /// excerpt).
    pub fn message(&self) -> String {
        match self {
            RunnerError::Compile {
                name,
                text,
                diagnostics,
            } => diagnostics.render(&[(name.as_str(), text.as_str())]),
            RunnerError::Params {
                diagnostics,
                file,
                secrets,
            } => render_params(diagnostics, file, secrets),
            other => format!("error: {other}"),
        }
    }

    /// The problems behind a compile or parameter error (for JSON output).
    pub fn diagnostics(&self) -> Option<&Diagnostics> {
        match self {
            RunnerError::Compile { diagnostics, .. } | RunnerError::Params { diagnostics, .. } => {
                Some(diagnostics)
            }
            _ => None,
        }
    }
}

/// What to do about a runbook file that cannot be read.
pub fn read_hint(e: &std::io::Error) -> &'static str {
    match e.kind() {
        std::io::ErrorKind::InvalidData => "the file is not UTF-8 text; save it as UTF-8",
        std::io::ErrorKind::IsADirectory => "give a runbook file, not a directory",
        std::io::ErrorKind::PermissionDenied => "check the file's permissions",
        _ => "check the path; runbooks ship under runbooks/",
    }
}

fn render_params(
    diagnostics: &Diagnostics,
    file: &Option<(String, String)>,
    secrets: &[String],
) -> String {
    let sources: Vec<(&str, &str)> = file.iter().map(|(p, s)| (p.as_str(), s.as_str())).collect();
    let mut message = diagnostics.render(&sources);
    if !secrets.is_empty() {
        message.push_str(&format!(
            "note: secret parameters ({}) are never journaled; give them again with -p\n",
            secrets.join(", ")
        ));
    }
    message
}

fn changed_steps(run_id: &str, changed: &[String]) -> String {
    let one = changed.len() == 1;
    format!(
        "step{} {} succeeded in run {run_id} but {} changed since (its `uses` or `with`), so the \
         outputs recorded for it would not match; even --force will not restore them\n  hint: \
         start a new run, or undo the edit to {}",
        if one { "" } else { "s" },
        changed
            .iter()
            .map(|c| format!("`{c}`"))
            .collect::<Vec<_>>()
            .join(", "),
        if one {
            "its definition"
        } else {
            "their definitions"
        },
        if one { "that step" } else { "those steps" },
    )
}
