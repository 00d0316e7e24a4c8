//! The journal: every run's events, written ahead to an embedded SQLite database.
//!
//! # Where
//!
//! `<state dir>/journal.db`; the state dir is `--state-dir`, else `$DRFLOW_STATE_DIR`, else
//! `.drflow` in the working directory ([`resolve_state_dir`]).
//!
//! # Never overwrite what is not ours
//!
//! Before SQLite touches an existing file, its header is checked: a file that is not SQLite, or
//! is SQLite with another application's `application_id` (or tables but no id), is refused with
//! [`JournalError::NotAJournal`] / [`JournalError::Foreign`] and left byte-for-byte unchanged. A
//! file that SQLite reports as corrupt gives [`JournalError::Corrupt`]. Only an absent or empty
//! file, or an empty SQLite database, becomes a new journal.
//!
//! # Schema
//!
//! `PRAGMA application_id` is [`APPLICATION_ID`] (`DRFL`); `PRAGMA user_version` is the schema
//! version, [`SCHEMA_VERSION`]. Opening applies the missing [`MIGRATIONS`] in one `IMMEDIATE`
//! transaction (so two processes opening a fresh journal at once do not both migrate) and records
//! each in the `migrations` table. A journal from a newer drflow is refused, not downgraded.
//!
//! # Durability: what is committed when, and why that is write-ahead
//!
//! The engine promises that every state change is durable *before* the engine acts on it. The
//! scheduler's actions on the world are starting a step attempt (its side effects), handing a
//! step's outputs to its dependants, and finishing the run (exit code, report); rollback's are
//! starting an undo and moving on to the next. So [`Journal`] (a [`RunSink`]) appends every event
//! to an open transaction and commits it *before `record` returns* when the event is one of
//!
//! - `run_started`: the run exists (listed, resumable) before anything of it happens, and the
//!   lease already taken for it never points at a run the journal does not know;
//! - `step_started` / `undo_started`: the scheduler spawns the attempt right after `record`
//!   returns, so the start — and everything recorded before it — is on disk before any side
//!   effect can happen;
//! - `step_succeeded` / `undo_succeeded`: work that was done is never forgotten, so a resume
//!   does not repeat a step (a database promotion, say) that finished a moment before a crash;
//! - `run_finished`;
//!
//! and otherwise at [`RunSink::flush`] (the scheduler calls it whenever it goes idle waiting for
//! steps) or when the journal is dropped. The events that ride along — `attempt_failed`,
//! `step_failed`, `step_skipped`, `step_interrupted`, `run_resumed` — are bookkeeping whose loss
//! is harmless: a resume recomputes a skip, and runs a failed or interrupted step again, which it
//! would do anyway.
//!
//! Cost, measured on the 2-core dev machine: appending is ~2.4 µs/step, a commit ~7-10 µs, so a
//! no-op step (two commits) costs ~20-30 µs of journaling — well inside the 100 µs/step budget
//! (`docs/performance.md`). Buffering until `flush` alone would be cheaper but unsafe with this
//! scheduler, which spawns an attempt right after recording its start, before it flushes.
//!
//! The database runs in WAL mode with `synchronous=NORMAL`: a commit is a sequential append to
//! the WAL with no fsync. That survives a crash or `SIGKILL` of drflow (the WAL is in the OS page
//! cache); a power loss or kernel crash may lose the last commits, which resume then treats as
//! "not started" / "started, never finished" (run again, safe under idempotency). Set
//! `DRFLOW_JOURNAL_SYNC=full` for an fsync per commit when the host itself may die mid-run
//! ([`Durability::Full`]).

#[cfg(not(unix))]
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OptionalExtension, params};
use serde::Serialize;
use serde_json::Value;

use crate::event::{RunEvent, RunSink, RunStatus, SinkError, Timestamp};
use crate::shared_log::{Fence, SharedEvent, SharedLog, SharedLogError};
use crate::state::{RunState, TransitionError, event_name};

mod shared;

/// The `PRAGMA application_id` of a drflow journal: `DRFL` in ASCII.
pub const APPLICATION_ID: i32 = 0x4452_464C;

/// The schema version this build writes (`PRAGMA user_version`).
pub const SCHEMA_VERSION: u32 = 2;

/// The journal's file name inside the state dir.
pub const JOURNAL_FILE: &str = "journal.db";

/// The state dir used when neither `--state-dir` nor `DRFLOW_STATE_DIR` is given.
pub const DEFAULT_STATE_DIR: &str = ".drflow";

/// The environment variable that moves the state dir.
pub const STATE_DIR_ENV: &str = "DRFLOW_STATE_DIR";

/// Every schema migration: (version it produces, name, SQL). Applied in order, never edited once
/// released: a change to the schema is a new entry.
pub const MIGRATIONS: &[(u32, &str, &str)] = &[
    (
        1,
        "runs, events and lock leases",
        "CREATE TABLE runs (
        id            TEXT PRIMARY KEY,
        runbook       TEXT NOT NULL,
        path          TEXT NOT NULL,
        content_hash  TEXT NOT NULL,
        params        TEXT NOT NULL,
        status        TEXT NOT NULL,
        started_at    REAL NOT NULL,
        finished_at   REAL
    );
    CREATE INDEX runs_by_start ON runs (started_at);
    CREATE TABLE events (
        run_id  TEXT NOT NULL REFERENCES runs (id),
        seq     INTEGER NOT NULL,
        kind    TEXT NOT NULL,
        step    TEXT,
        at      REAL NOT NULL,
        body    TEXT NOT NULL,
        PRIMARY KEY (run_id, seq)
    ) WITHOUT ROWID;
    CREATE TABLE leases (
        key          TEXT PRIMARY KEY,
        run_id       TEXT NOT NULL,
        pid          INTEGER NOT NULL,
        proc_start   TEXT,
        hostname     TEXT NOT NULL,
        acquired_at  REAL NOT NULL,
        heartbeat_at REAL NOT NULL,
        expires_at   REAL NOT NULL
    );",
    ),
    (
        2,
        "lease fencing tokens",
        // A token per key that only grows, kept when a lease is released: whoever holds a
        // lease can show which grant it is, and a store can refuse the writes of an older one.
        "ALTER TABLE leases ADD COLUMN token INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE lease_tokens (
        key    TEXT PRIMARY KEY,
        token  INTEGER NOT NULL
    ) WITHOUT ROWID;",
    ),
];

/// The shortest run id prefix `find_run` accepts: `resume`, `rollback` act on what it names.
pub const MIN_RUN_PREFIX: usize = 4;

/// How long a connection waits for another process's write transaction before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Something went wrong with the journal.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The file exists and is not a SQLite database.
    #[error(
        "{path} is not a drflow journal (it is not a SQLite database); it was left untouched. \
         Move it away, or point --state-dir / DRFLOW_STATE_DIR at another directory"
    )]
    NotAJournal {
        /// The file.
        path: PathBuf,
    },
    /// The file is a SQLite database that belongs to something else.
    #[error(
        "{path} is a SQLite database of another application (application_id {application_id:#x}, \
         expected {expected:#x}); it was left untouched. Point --state-dir / DRFLOW_STATE_DIR at \
         another directory",
        expected = APPLICATION_ID
    )]
    Foreign {
        /// The file.
        path: PathBuf,
        /// The id found in its header.
        application_id: i32,
    },
    /// SQLite says the file is damaged.
    #[error(
        "the journal {path} is corrupt ({detail}); nothing was written to it. Keep a copy for \
         inspection, then move it away to start a fresh journal"
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What SQLite said.
        detail: String,
    },
    /// A newer drflow wrote this journal.
    #[error(
        "the journal {path} has schema version {found}, newer than this drflow understands \
         ({supported}); upgrade drflow, or use another --state-dir"
    )]
    TooNew {
        /// The file.
        path: PathBuf,
        /// Its `user_version`.
        found: u32,
        /// [`SCHEMA_VERSION`].
        supported: u32,
    },
    /// The file or its directory could not be read or created.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Another process holds the journal's write lock for too long.
    #[error(
        "the journal {path} stayed locked by another drflow process for {secs} s while {context}; \
         try again, or check for a hung drflow process",
        secs = BUSY_TIMEOUT.as_secs()
    )]
    Busy {
        /// The file.
        path: PathBuf,
        /// What was being done.
        context: &'static str,
    },
    /// Any other SQLite error.
    #[error("journal {path}: {context}: {source}")]
    Sqlite {
        /// The file.
        path: PathBuf,
        /// What was being done.
        context: &'static str,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// The journal (or the state directory) cannot be written by this user.
    #[error(
        "the journal {path} cannot be written: the state directory or the file is read-only for \
         this user. Run drflow as a user that can write it, or point --state-dir / \
         DRFLOW_STATE_DIR at a writable directory (`drflow runs` and `drflow show` only read it)"
    )]
    NotWritable {
        /// The file.
        path: PathBuf,
    },
    /// `DRFLOW_JOURNAL_SYNC` has a value drflow does not know.
    #[error("DRFLOW_JOURNAL_SYNC={value:?} is not a journal sync mode; use `normal` or `full`")]
    BadSync {
        /// The value found.
        value: String,
    },
    /// An empty run id, or a prefix too short to name a run safely.
    #[error(
        "`{given}` does not name a run: give a full run id, a prefix of at least {min} \
         characters, or `latest`; `drflow runs` lists the runs",
        min = MIN_RUN_PREFIX
    )]
    BadRunId {
        /// What was given.
        given: String,
    },
    /// No run has this id (or id prefix).
    #[error("no run {id} in the journal {path}; `drflow runs` lists the runs")]
    UnknownRun {
        /// The id asked for.
        id: String,
        /// The journal.
        path: PathBuf,
    },
    /// An id prefix matches several runs.
    #[error("run id prefix {prefix} matches several runs ({}); give more characters", matches.join(", "))]
    AmbiguousRun {
        /// The prefix asked for.
        prefix: String,
        /// Run ids that match.
        matches: Vec<String>,
    },
    /// A stored event is not valid JSON for a [`RunEvent`].
    #[error(
        "event #{seq} of run {run_id} in {path} cannot be read ({source}); the journal was \
         edited or written by an incompatible drflow"
    )]
    BadEvent {
        /// The run.
        run_id: String,
        /// The event's position.
        seq: i64,
        /// The journal.
        path: PathBuf,
        /// The decoding error.
        source: serde_json::Error,
    },
    /// An event was recorded before `run_started` told the journal which run it belongs to.
    #[error(
        "the journal got a {event} event before run_started or attach(); this is a bug in drflow"
    )]
    NoRun {
        /// The event's name.
        event: &'static str,
    },
    /// The shared copy of the journal (the HA deployment's DynamoDB table) refused or failed a
    /// write or a read. A refused write was not committed here either: the run stops.
    #[error("the shared journal {log} {what}: {source}")]
    Shared {
        /// Where it is ([`SharedLog::describe`]).
        log: String,
        /// What was being done.
        what: &'static str,
        /// What it said.
        source: SharedLogError,
    },
    /// The run's journal does not replay, so nothing more can be recorded into it.
    #[error("run {run_id} cannot be continued: {source}")]
    Replay {
        /// The run.
        run_id: String,
        /// Why replay failed.
        source: Box<TransitionError>,
    },
    /// An event that the run's state does not allow was refused before it was written.
    #[error(
        "drflow refused to journal event #{seq} of run {run_id}, which its state does not allow          ({brief}); nothing of it was written, so the journal still replays, and the run stops          here. This is a bug in drflow: please report it with `drflow show {run_id} --output json`",
        seq = source.seq,
        brief = source.brief()
    )]
    Illegal {
        /// The run.
        run_id: String,
        /// What the transition table said.
        source: Box<TransitionError>,
    },
    /// An earlier write of this run's events failed: the journal records nothing more of it.
    #[error(
        "an earlier write to the journal {path} failed, so run {run_id} records nothing more;          resume it once the journal is writable again"
    )]
    Broken {
        /// The journal.
        path: PathBuf,
        /// The run.
        run_id: String,
    },
}

/// How hard each commit tries to reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// WAL with `synchronous=NORMAL`: survives a crash of drflow, may lose the last commits on
    /// power loss (the default; see the module docs).
    Normal,
    /// WAL with `synchronous=FULL`: an fsync per commit.
    Full,
}

impl Durability {
    /// `Full` when `DRFLOW_JOURNAL_SYNC=full`, `Normal` when it is `normal`, empty or unset; any
    /// other value is an error (a typo must not silently weaken durability).
    pub fn from_env() -> Result<Durability, JournalError> {
        match std::env::var("DRFLOW_JOURNAL_SYNC") {
            Err(_) => Ok(Durability::Normal),
            Ok(v) => Durability::parse(&v).ok_or(JournalError::BadSync { value: v }),
        }
    }

    /// Parses a `DRFLOW_JOURNAL_SYNC` value.
    pub fn parse(value: &str) -> Option<Durability> {
        match value.trim().to_ascii_lowercase().as_str() {
            "full" => Some(Durability::Full),
            "normal" | "" => Some(Durability::Normal),
            _ => None,
        }
    }
}

/// One row of `drflow runs`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunSummary {
    /// The run's id.
    pub id: String,
    /// The runbook's name.
    pub runbook: String,
    /// The runbook file.
    pub path: String,
    /// SHA-256 of the runbook file when the run started.
    pub content_hash: String,
    /// Resolved parameters, secrets redacted.
    pub params: Value,
    /// The run's last known status (`running` also for a run whose process died).
    pub status: String,
    /// When it started.
    pub started_at: Timestamp,
    /// When it last finished.
    pub finished_at: Option<Timestamp>,
    /// Its last journaled event (for a run that crashed: about when it died).
    pub last_event_at: Option<Timestamp>,
}

/// The state dir: `cli` if given, else `$DRFLOW_STATE_DIR` if set and not empty, else `.drflow`.
pub fn resolve_state_dir(cli: Option<&Path>) -> PathBuf {
    if let Some(dir) = cli {
        return dir.to_owned();
    }
    match std::env::var_os(STATE_DIR_ENV) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(DEFAULT_STATE_DIR),
    }
}

/// The durable journal of runs. Implements [`RunSink`] for the run it is recording.
///
/// It keeps the recorded run's [`RunState`] and applies every event to it before writing the
/// event: one that the transition table refuses is an error ([`JournalError::Illegal`]), never a
/// row, so a bug in whatever records events cannot leave a journal that no longer replays.
pub struct Journal {
    conn: Connection,
    path: PathBuf,
    /// The run being recorded and the next event's `seq`.
    run: Option<(String, i64)>,
    /// The recorded run's state, with every event written so far applied; `None` after a write
    /// failed half-way (the state may then be ahead of the rows).
    state: Option<RunState>,
    in_tx: bool,
    /// The shared copy every commit is written through to first, if any ([`shared`]).
    shared: Option<std::sync::Arc<dyn SharedLog>>,
    /// The events of the open transaction not yet in the shared copy.
    unshared: Vec<SharedEvent>,
    /// The leases the shared copy checks at every write (the recorded run's).
    fences: Vec<Fence>,
    /// Copying from the shared copy ([`Journal::sync`]): nothing goes back to it.
    importing: bool,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("path", &self.path)
            .field("run", &self.run)
            .finish()
    }
}

impl Journal {
    /// Opens (or creates) `<state_dir>/journal.db`, creating the directory if needed.
    pub fn open_in(state_dir: &Path) -> Result<Journal, JournalError> {
        std::fs::create_dir_all(state_dir).map_err(|source| JournalError::Io {
            action: "create the state directory",
            path: state_dir.to_owned(),
            source,
        })?;
        Journal::open(&state_dir.join(JOURNAL_FILE))
    }

    /// Opens (or creates) the journal at `path`, with [`Durability::from_env`].
    pub fn open(path: &Path) -> Result<Journal, JournalError> {
        Journal::open_with(path, Durability::from_env()?)
    }

    /// Opens (or creates) the journal at `path`. See the module docs for what is refused.
    pub fn open_with(path: &Path, durability: Durability) -> Result<Journal, JournalError> {
        check_header(path)?;
        // Everything that could refuse the file is checked over a read-only connection first:
        // switching to WAL mode or migrating writes to it.
        if std::fs::metadata(path).is_ok_and(|m| m.len() > 0) {
            let ro = open_read_only(path)?;
            check_readable(&ro, path)?;
        }
        let conn = Connection::open(path).map_err(sql(path, "opening the journal"))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(sql(path, "setting the busy timeout"))?;
        // Probe before any write: these reads change nothing in the file.
        let (app_id, tables, _) = probe(&conn, path)?;
        if app_id != APPLICATION_ID && !(app_id == 0 && tables == 0) {
            return Err(JournalError::Foreign {
                path: path.to_owned(),
                application_id: app_id,
            });
        }
        set_wal(&conn, path)?;
        let sync = match durability {
            Durability::Normal => "NORMAL",
            Durability::Full => "FULL",
        };
        conn.execute_batch(&format!(
            "PRAGMA synchronous = {sync}; PRAGMA foreign_keys = ON;"
        ))
        .map_err(sql(path, "setting pragmas"))?;
        let journal = Journal {
            conn,
            path: path.to_owned(),
            run: None,
            state: None,
            in_tx: false,
            shared: None,
            unshared: Vec::new(),
            fences: Vec::new(),
            importing: false,
        };
        journal.migrate()?;
        Ok(journal)
    }

    /// Opens an existing journal to read it only (`drflow runs`, `show`, `outputs`): nothing is
    /// written, so it works in a read-only state directory. It refuses what [`Journal::open`]
    /// refuses; a journal that was never created reads as empty.
    pub fn open_read_only(path: &Path) -> Result<Journal, JournalError> {
        check_header(path)?;
        let conn = match open_read_only(path).and_then(|c| check_readable(&c, path).map(|()| c)) {
            Ok(c) => c,
            // SQLite cannot read a WAL-mode file without creating its `-shm` index, which a
            // read-only directory forbids. With no `-wal` file beside it, the file alone is the
            // whole journal and nobody is writing it (a writer would have created the `-wal`):
            // read it as immutable.
            Err(e)
                if matches!(
                    e,
                    JournalError::NotWritable { .. } | JournalError::Sqlite { .. }
                ) && !wal_path(path).exists() =>
            {
                let conn = open_immutable(path)?;
                check_readable(&conn, path)?;
                conn
            }
            Err(e) => return Err(e),
        };
        Ok(Journal {
            conn,
            path: path.to_owned(),
            run: None,
            state: None,
            in_tx: false,
            shared: None,
            unshared: Vec::new(),
            fences: Vec::new(),
            importing: false,
        })
    }

    fn migrate(&self) -> Result<(), JournalError> {
        let path = &self.path;
        self.conn
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(sql(path, "locking the journal to check its schema"))?;
        let result = (|| {
            // Re-read under the write lock: another process may have created it meanwhile.
            let (app_id, tables, _) = probe(&self.conn, path)?;
            if app_id == 0 && tables == 0 {
                self.conn
                    .execute_batch(&format!(
                        "PRAGMA application_id = {APPLICATION_ID};
                         CREATE TABLE migrations (
                             version    INTEGER PRIMARY KEY,
                             name       TEXT NOT NULL,
                             applied_at REAL NOT NULL
                         );"
                    ))
                    .map_err(sql(path, "initialising a new journal"))?;
            } else if app_id != APPLICATION_ID {
                return Err(JournalError::Foreign {
                    path: path.clone(),
                    application_id: app_id,
                });
            }
            let version: u32 = self
                .conn
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .map_err(sql(path, "reading the schema version"))?;
            if version > SCHEMA_VERSION {
                return Err(JournalError::TooNew {
                    path: path.clone(),
                    found: version,
                    supported: SCHEMA_VERSION,
                });
            }
            for (v, name, ddl) in MIGRATIONS.iter().filter(|(v, _, _)| *v > version) {
                self.conn
                    .execute_batch(ddl)
                    .map_err(sql(path, "migrating the journal schema"))?;
                self.conn
                    .execute(
                        "INSERT INTO migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
                        // A fact about this file, not about a run: wall-clock time.
                        params![v, name, crate::event::now()],
                    )
                    .map_err(sql(path, "recording a schema migration"))?;
                self.conn
                    .execute_batch(&format!("PRAGMA user_version = {v}"))
                    .map_err(sql(path, "recording the schema version"))?;
            }
            Ok(())
        })();
        let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
        let ended = self
            .conn
            .execute_batch(end)
            .map_err(sql(path, "committing the schema migration"));
        result.and(ended)
    }

    /// The journal's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Records the next events into an existing run (resume, rollback), after its last event.
    /// Replays the run's events: the next ones are checked against its state.
    pub fn attach(&mut self, run_id: &str) -> Result<(), JournalError> {
        self.commit()?;
        let Some(last) = self.last_seq(run_id)? else {
            return Err(JournalError::UnknownRun {
                id: run_id.to_owned(),
                path: self.path.clone(),
            });
        };
        let events = self.events(run_id)?;
        let state = RunState::replay(&events).map_err(|source| JournalError::Replay {
            run_id: run_id.to_owned(),
            source: Box::new(source),
        })?;
        self.run = Some((run_id.to_owned(), last + 1));
        self.state = Some(state);
        Ok(())
    }

    /// The sequence number of the run's last event, `None` for a run without events here.
    fn last_seq(&self, run_id: &str) -> Result<Option<i64>, JournalError> {
        self.conn
            .query_row(
                "SELECT MAX(seq) FROM events WHERE run_id = ?1",
                [run_id],
                |r| r.get(0),
            )
            .map_err(sql(&self.path, "finding the run's last event"))
    }

    /// Appends one event to the open transaction (opening one if needed), after applying it to
    /// the run's state: an event the state does not allow is refused and not written.
    pub fn append(&mut self, event: &RunEvent) -> Result<(), JournalError> {
        if let RunEvent::RunStarted { run_id, .. } = event {
            let state = RunState::replay(std::iter::once(event)).map_err(|source| {
                JournalError::Illegal {
                    run_id: run_id.clone(),
                    source: Box::new(source),
                }
            })?;
            self.run = Some((run_id.clone(), 1));
            self.state = Some(state);
        } else {
            let Some((run_id, _)) = &self.run else {
                return Err(JournalError::NoRun {
                    event: event_name(event),
                });
            };
            let Some(state) = self.state.as_mut() else {
                return Err(JournalError::Broken {
                    path: self.path.clone(),
                    run_id: run_id.clone(),
                });
            };
            state.apply(event).map_err(|source| JournalError::Illegal {
                run_id: run_id.clone(),
                source: Box::new(source),
            })?;
        }
        let written = self.write(event);
        if written.is_err() {
            // The state already holds the event; the rows may not.
            self.state = None;
        }
        written
    }

    /// Writes one event (already applied to the state) into the open transaction.
    fn write(&mut self, event: &RunEvent) -> Result<(), JournalError> {
        let path = self.path.clone();
        let Some((run_id, seq)) = self.run.clone() else {
            return Err(JournalError::NoRun {
                event: event_name(event),
            });
        };
        if !self.in_tx {
            self.conn
                .execute_batch("BEGIN IMMEDIATE")
                .map_err(sql(&path, "starting a journal transaction"))?;
            self.in_tx = true;
        }
        match event {
            RunEvent::RunStarted {
                runbook,
                path: file,
                content_hash,
                params,
                at,
                ..
            } => {
                self.conn
                    .prepare_cached(
                        "INSERT INTO runs (id, runbook, path, content_hash, params, status, started_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, 'running', ?6)",
                    )
                    .and_then(|mut s| {
                        s.execute(params![run_id, runbook, file, content_hash, params.to_string(), at])
                    })
                    .map_err(sql(&path, "recording a new run"))?;
            }
            RunEvent::RunResumed { .. } => {
                self.conn
                    .execute(
                        "UPDATE runs SET status = 'running', finished_at = NULL WHERE id = ?1",
                        [&run_id],
                    )
                    .map_err(sql(&path, "marking the run resumed"))?;
            }
            RunEvent::RunFinished { status, at, .. } => {
                self.conn
                    .execute(
                        "UPDATE runs SET status = ?2, finished_at = ?3 WHERE id = ?1",
                        params![run_id, status.name(), at],
                    )
                    .map_err(sql(&path, "marking the run finished"))?;
            }
            _ => {}
        }
        let body = serde_json::to_string(event).map_err(|e| JournalError::BadEvent {
            run_id: run_id.clone(),
            seq,
            path: path.clone(),
            source: e,
        })?;
        self.conn
            .prepare_cached(
                "INSERT INTO events (run_id, seq, kind, step, at, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    run_id,
                    seq,
                    event_name(event),
                    event.step(),
                    event.at(),
                    body
                ])
            })
            .map_err(sql(&path, "writing an event"))?;
        if self.shared.is_some() && !self.importing {
            self.unshared.push(SharedEvent { run_id, seq, body });
        }
        if let Some((_, next)) = self.run.as_mut() {
            *next = seq + 1;
        }
        Ok(())
    }

    /// Commits the open transaction, if any: every event appended so far is durable afterwards.
    /// With a shared copy ([`Journal::with_shared`]), the events go there first: refused there
    /// (another process took the run over, or the store is out of reach), they are rolled back
    /// here too and the run records nothing more.
    pub fn commit(&mut self) -> Result<(), JournalError> {
        if self.in_tx {
            self.share()?;
            self.conn
                .execute_batch("COMMIT")
                .map_err(sql(&self.path, "committing journal events"))?;
            self.in_tx = false;
        }
        Ok(())
    }

    /// Drops the journal as a killed process would: events not yet committed are lost (a test
    /// hook's "crash"; see `crate::runner::Hooks`).
    pub fn abandon(mut self) {
        self.unshared.clear();
        if self.in_tx {
            let _ = self.conn.execute_batch("ROLLBACK");
            self.in_tx = false;
        }
    }

    /// Deletes the runs (and their events) that ended before `before` (seconds since the Unix
    /// epoch) as `succeeded`, `failed` or `rolled_back`, except those of a runbook named in
    /// `keep` (the record of every failover is kept whatever its age). Runs still `running`,
    /// `interrupted` or `rollback_failed` are never deleted: they may still be resumed or
    /// rolled back. `dry_run` deletes nothing. Returns the runs deleted (or that would be),
    /// oldest first.
    pub fn prune(
        &mut self,
        before: Timestamp,
        keep: &[&str],
        dry_run: bool,
    ) -> Result<Vec<RunSummary>, JournalError> {
        let mut doomed = self.query_runs(
            "WHERE finished_at IS NOT NULL AND finished_at < ?1 \
             AND status IN ('succeeded', 'failed', 'rolled_back') ORDER BY started_at, id",
            [before],
        )?;
        doomed.retain(|r| !keep.contains(&r.runbook.as_str()));
        if dry_run || doomed.is_empty() {
            return Ok(doomed);
        }
        self.commit()?;
        // The shared copy first: a run pruned here but not there would come back at the next
        // copy, and one pruned there but not here is simply pruned again.
        if let Some(log) = &self.shared {
            for r in &doomed {
                log.delete_run(&r.id)
                    .map_err(|source| JournalError::Shared {
                        log: log.describe(),
                        what: "could not prune a run",
                        source,
                    })?;
            }
        }
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction()
            .map_err(sql(&path, "starting to prune"))?;
        for r in &doomed {
            tx.execute("DELETE FROM events WHERE run_id = ?1", [&r.id])
                .map_err(sql(&path, "pruning a run's events"))?;
            tx.execute("DELETE FROM runs WHERE id = ?1", [&r.id])
                .map_err(sql(&path, "pruning a run"))?;
        }
        tx.commit().map_err(sql(&path, "committing the prune"))?;
        Ok(doomed)
    }

    /// Every run, newest first.
    pub fn list_runs(&self) -> Result<Vec<RunSummary>, JournalError> {
        self.query_runs("ORDER BY started_at DESC, id DESC", [])
    }

    /// One run's summary.
    pub fn run(&self, run_id: &str) -> Result<RunSummary, JournalError> {
        self.query_runs("WHERE id = ?1", [run_id])?
            .pop()
            .ok_or_else(|| JournalError::UnknownRun {
                id: run_id.to_owned(),
                path: self.path.clone(),
            })
    }

    /// The id of the most recently started run, if any.
    pub fn latest_run_id(&self) -> Result<Option<String>, JournalError> {
        self.conn
            .query_row(
                "SELECT id FROM runs ORDER BY started_at DESC, id DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql(&self.path, "finding the latest run"))
    }

    /// Resolves what a user typed: a full run id, a unique prefix of one, or `latest`.
    pub fn find_run(&self, id_or_prefix: &str) -> Result<String, JournalError> {
        let unknown = || JournalError::UnknownRun {
            id: id_or_prefix.to_owned(),
            path: self.path.clone(),
        };
        if id_or_prefix == "latest" {
            return self.latest_run_id()?.ok_or_else(unknown);
        }
        let bad = || JournalError::BadRunId {
            given: id_or_prefix.to_owned(),
        };
        if id_or_prefix.trim().is_empty() {
            return Err(bad());
        }
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id FROM runs WHERE id = ?1 OR substr(id, 1, length(?1)) = ?1 ORDER BY id",
            )
            .map_err(sql(&self.path, "looking up a run"))?;
        let ids: Vec<String> = stmt
            .query_map([id_or_prefix], |r| r.get(0))
            .and_then(|rows| rows.collect())
            .map_err(sql(&self.path, "looking up a run"))?;
        if ids.iter().any(|id| id == id_or_prefix) {
            return Ok(id_or_prefix.to_owned());
        }
        if id_or_prefix.chars().count() < MIN_RUN_PREFIX {
            return Err(bad());
        }
        match ids.len() {
            0 => Err(unknown()),
            1 => Ok(ids.into_iter().next().unwrap_or_default()),
            _ => Err(JournalError::AmbiguousRun {
                prefix: id_or_prefix.to_owned(),
                matches: ids,
            }),
        }
    }

    /// A run's events, oldest first.
    pub fn events(&self, run_id: &str) -> Result<Vec<RunEvent>, JournalError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT seq, body FROM events WHERE run_id = ?1 ORDER BY seq")
            .map_err(sql(&self.path, "reading a run's events"))?;
        let rows: Vec<(i64, String)> = stmt
            .query_map([run_id], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|rows| rows.collect())
            .map_err(sql(&self.path, "reading a run's events"))?;
        if rows.is_empty() {
            return Err(JournalError::UnknownRun {
                id: run_id.to_owned(),
                path: self.path.clone(),
            });
        }
        rows.into_iter()
            .map(|(seq, body)| {
                serde_json::from_str(&body).map_err(|source| JournalError::BadEvent {
                    run_id: run_id.to_owned(),
                    seq,
                    path: self.path.clone(),
                    source,
                })
            })
            .collect()
    }

    /// How many events a run has (cheap; tests poll it).
    pub fn event_count(&self, run_id: &str) -> Result<i64, JournalError> {
        self.conn
            .query_row(
                "SELECT COUNT(*) FROM events WHERE run_id = ?1",
                [run_id],
                |r| r.get(0),
            )
            .map_err(sql(&self.path, "counting a run's events"))
    }

    fn query_runs<P: rusqlite::Params>(
        &self,
        filter: &str,
        params: P,
    ) -> Result<Vec<RunSummary>, JournalError> {
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT id, runbook, path, content_hash, params, status, started_at, finished_at,
                        (SELECT MAX(at) FROM events WHERE events.run_id = runs.id)
                 FROM runs {filter}"
            ))
            .map_err(sql(&self.path, "listing runs"))?;
        stmt.query_map(params, |r| {
            let params: String = r.get(4)?;
            Ok(RunSummary {
                id: r.get(0)?,
                runbook: r.get(1)?,
                path: r.get(2)?,
                content_hash: r.get(3)?,
                params: serde_json::from_str(&params).unwrap_or(Value::Null),
                status: r.get(5)?,
                started_at: r.get(6)?,
                finished_at: r.get(7)?,
                last_event_at: r.get(8)?,
            })
        })
        .and_then(|rows| rows.collect())
        .map_err(sql(&self.path, "listing runs"))
    }
}

impl RunSink for Journal {
    fn record(&mut self, event: &RunEvent) -> Result<(), SinkError> {
        self.append(event).map_err(|e| SinkError(e.to_string()))?;
        // Work about to be done or just done: on disk, with everything before it, before the
        // scheduler acts on it. Bookkeeping rides along with the next commit. See the module docs.
        if matches!(
            event,
            RunEvent::RunStarted { .. }
                | RunEvent::StepStarted { .. }
                | RunEvent::StepSucceeded { .. }
                | RunEvent::UndoStarted { .. }
                | RunEvent::UndoSucceeded { .. }
                | RunEvent::RunFinished { .. }
        ) {
            self.commit().map_err(|e| SinkError(e.to_string()))?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.commit().map_err(|e| SinkError(e.to_string()))
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        // The recorded events are facts about the run: keep them even if the caller forgot to
        // flush (an error path, a panic unwinding).
        if let Err(e) = self.commit() {
            tracing::error!(error = %e, "Could not commit the last journal events");
        }
    }
}

/// Parses a status as stored in the `runs` table.
pub fn parse_status(name: &str) -> Option<RunStatus> {
    [
        RunStatus::Running,
        RunStatus::Succeeded,
        RunStatus::Failed,
        RunStatus::Interrupted,
        RunStatus::RolledBack,
        RunStatus::RollbackFailed,
    ]
    .into_iter()
    .find(|s| s.name() == name)
}

/// Switches to WAL mode (a no-op once set: the mode is stored in the file). While another process
/// creates the same journal, SQLite answers `SQLITE_BUSY` at once instead of calling the busy
/// handler (the switch needs an exclusive lock), so this retries until [`BUSY_TIMEOUT`].
fn set_wal(conn: &Connection, path: &Path) -> Result<(), JournalError> {
    let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
    loop {
        match conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0)) {
            Ok(_) => return Ok(()),
            Err(e)
                if matches!(
                    e.sqlite_error_code(),
                    Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
                ) && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(sql(path, "switching to WAL mode")(e)),
        }
    }
}

/// Refuses a non-empty file that is not SQLite, without opening it with SQLite.
fn check_header(path: &Path) -> Result<(), JournalError> {
    let header = match read_header(path) {
        Ok(Some(h)) => h,
        Ok(None) => return Ok(()),
        Err(source) => {
            return Err(JournalError::Io {
                action: "read the journal",
                path: path.to_owned(),
                source,
            });
        }
    };
    let (read, header) = header;
    if read == 0 {
        return Ok(()); // an empty file: SQLite treats it as a new database
    }
    if read < header.len() || &header[..16] != b"SQLite format 3\0" {
        return Err(JournalError::NotAJournal {
            path: path.to_owned(),
        });
    }
    Ok(())
}

/// The first 100 bytes of `path` (and how many there were), or `None` when it does not exist.
///
/// POSIX advisory locks belong to the process, and closing *any* descriptor of a file drops
/// every lock the process holds on it — including the shared lock a SQLite connection of this
/// process holds on the journal while it is open in WAL mode. Without that lock, another process
/// closing its own connection (a `sqlite3` shell, a script) believes it is the last user, then
/// checkpoints and deletes the WAL under us: our later commits (lease heartbeats, events) go to a
/// deleted file. So the descriptor used to read a header is never closed: one per file (device
/// and inode) for the life of the process, reused by every later check.
#[cfg(unix)]
fn read_header(path: &Path) -> std::io::Result<Option<(usize, [u8; 100])>> {
    use std::os::unix::fs::{FileExt, MetadataExt};
    use std::sync::Mutex;
    static OPEN: Mutex<Vec<(u64, u64, std::fs::File)>> = Mutex::new(Vec::new());

    let mut open = OPEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let id = match std::fs::metadata(path) {
        Ok(m) => (m.dev(), m.ino()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let idx = match open.iter().position(|(d, i, _)| (*d, *i) == id) {
        Some(idx) => idx,
        None => {
            let file = match std::fs::File::open(path) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(e),
            };
            let m = file.metadata()?;
            open.push((m.dev(), m.ino(), file));
            open.len() - 1
        }
    };
    let file = &open[idx].2;
    let mut header = [0u8; 100];
    let mut read = 0;
    while read < header.len() {
        match file.read_at(&mut header[read..], read as u64)? {
            0 => break,
            n => read += n,
        }
    }
    Ok(Some((read, header)))
}

#[cfg(not(unix))]
fn read_header(path: &Path) -> std::io::Result<Option<(usize, [u8; 100])>> {
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut header = [0u8; 100];
    let mut read = 0;
    while read < header.len() {
        match file.read(&mut header[read..])? {
            0 => break,
            n => read += n,
        }
    }
    Ok(Some((read, header)))
}

/// Reads the application id, the number of schema objects and the schema version, mapping
/// corruption to an error. One statement, so all come from one snapshot even while another
/// process creates the journal.
fn probe(conn: &Connection, path: &Path) -> Result<(i32, i64, u32), JournalError> {
    conn.query_row(
        "SELECT (SELECT application_id FROM pragma_application_id),
                (SELECT COUNT(*) FROM sqlite_master),
                (SELECT user_version FROM pragma_user_version)",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .map_err(sql(path, "reading the journal header"))
}

/// The files (device, inode) this process found sound page by page. `PRAGMA quick_check` reads
/// every page (~1 ms per MB) and a run opens the journal three times (for itself and its two
/// leases), so it runs once per process.
#[cfg(unix)]
static CHECKED: std::sync::Mutex<Vec<(u64, u64)>> = std::sync::Mutex::new(Vec::new());

#[cfg(unix)]
fn file_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

fn checked_before(path: &Path) -> bool {
    #[cfg(unix)]
    {
        let checked = CHECKED
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        file_id(path).is_some_and(|id| checked.contains(&id))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        false
    }
}

fn mark_checked(path: &Path) {
    #[cfg(unix)]
    if let Some(id) = file_id(path) {
        CHECKED
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(id);
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// A read-only connection: it never writes to the file, not even a checkpoint when it closes.
fn open_read_only(path: &Path) -> Result<Connection, JournalError> {
    use rusqlite::OpenFlags;
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sql(path, "opening the journal to read it"))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(sql(path, "setting the busy timeout"))?;
    Ok(conn)
}

fn wal_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push("-wal");
    PathBuf::from(p)
}

/// A read-only connection that takes no locks and needs no `-shm` (`immutable=1`).
fn open_immutable(path: &Path) -> Result<Connection, JournalError> {
    use rusqlite::OpenFlags;
    let mut uri = String::from("file:");
    for b in path.to_string_lossy().bytes() {
        match b {
            b'%' | b'?' | b'#' => uri.push_str(&format!("%{b:02X}")),
            _ => uri.push(char::from(b)),
        }
    }
    uri.push_str("?immutable=1");
    Connection::open_with_flags(
        &uri,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )
    .map_err(sql(path, "opening the journal to read it"))
}

/// Refuses, without writing anything, a journal that is another application's, from a newer
/// drflow, or damaged anywhere (`PRAGMA quick_check` reads every page: a scribbled inner page is
/// found before drflow writes next to it).
fn check_readable(conn: &Connection, path: &Path) -> Result<(), JournalError> {
    let (app_id, tables, version) = probe(conn, path)?;
    if app_id != APPLICATION_ID && !(app_id == 0 && tables == 0) {
        return Err(JournalError::Foreign {
            path: path.to_owned(),
            application_id: app_id,
        });
    }
    if app_id == APPLICATION_ID && version > SCHEMA_VERSION {
        return Err(JournalError::TooNew {
            path: path.to_owned(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    if checked_before(path) {
        return Ok(());
    }
    let mut stmt = conn
        .prepare("PRAGMA quick_check")
        .map_err(sql(path, "checking the journal"))?;
    let problems: Vec<String> = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .and_then(|rows| rows.collect())
        .map_err(sql(path, "checking the journal"))?;
    if problems.len() != 1 || problems[0] != "ok" {
        let mut detail = problems.into_iter().take(3).collect::<Vec<_>>().join("; ");
        if detail.is_empty() {
            detail = "quick_check returned nothing".into();
        }
        return Err(JournalError::Corrupt {
            path: path.to_owned(),
            detail,
        });
    }
    mark_checked(path);
    Ok(())
}

/// Maps a SQLite error to a [`JournalError`], recognising corruption and lock timeouts.
pub(crate) fn sql<'a>(
    path: &'a Path,
    context: &'static str,
) -> impl FnOnce(rusqlite::Error) -> JournalError + 'a {
    move |source| match source.sqlite_error_code() {
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => JournalError::Corrupt {
            path: path.to_owned(),
            detail: source.to_string(),
        },
        Some(ErrorCode::ReadOnly) => JournalError::NotWritable {
            path: path.to_owned(),
        },
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => JournalError::Busy {
            path: path.to_owned(),
            context,
        },
        _ => JournalError::Sqlite {
            path: path.to_owned(),
            context,
            source,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::step::{Outputs, StepError};
    use serde_json::json;

    fn started(run_id: &str) -> RunEvent {
        RunEvent::RunStarted {
            run_id: run_id.into(),
            runbook: "rb".into(),
            path: "rb.yaml".into(),
            content_hash: "h".into(),
            params: json!({"token": "***"}),
            at: 1.0,
            step_hashes: Default::default(),
        }
    }

    fn step_events(step: &str) -> [RunEvent; 2] {
        [
            RunEvent::StepStarted {
                step: step.into(),
                attempt: 1,
                at: 2.0,
            },
            RunEvent::StepSucceeded {
                step: step.into(),
                attempt: 1,
                outputs: Outputs::new(),
                at: 3.0,
            },
        ]
    }

    #[test]
    fn records_and_reads_back_a_run() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open_in(dir.path()).unwrap();
        j.record(&started("r1")).unwrap();
        for e in step_events("a") {
            j.record(&e).unwrap();
        }
        j.flush().unwrap();
        j.record(&RunEvent::StepStarted {
            step: "b".into(),
            attempt: 1,
            at: 3.5,
        })
        .unwrap();
        let failed = RunEvent::AttemptFailed {
            step: "b".into(),
            attempt: 1,
            error: StepError::retryable("throttled", "slow down"),
            will_retry: true,
            at: 4.0,
        };
        j.record(&failed).unwrap();
        j.record(&RunEvent::RunFinished {
            status: RunStatus::Failed,
            outputs: Outputs::new(),
            at: 5.0,
        })
        .unwrap();
        drop(j);

        let j = Journal::open_in(dir.path()).unwrap();
        let events = j.events("r1").unwrap();
        assert_eq!(events.len(), 6);
        assert_eq!(events[4], failed);
        let runs = j.list_runs().unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].status, "failed");
        assert_eq!(runs[0].finished_at, Some(5.0));
        assert_eq!(runs[0].params, json!({"token": "***"}));
        assert_eq!(j.latest_run_id().unwrap().as_deref(), Some("r1"));
        assert_eq!(j.find_run("r1").unwrap(), "r1");
        assert!(matches!(
            j.find_run("r"),
            Err(JournalError::BadRunId { .. })
        ));
        assert!(matches!(j.find_run(""), Err(JournalError::BadRunId { .. })));
        assert_eq!(j.find_run("latest").unwrap(), "r1");
        assert!(matches!(
            j.find_run("xxxxx"),
            Err(JournalError::UnknownRun { .. })
        ));
    }

    #[test]
    fn schema_is_versioned_and_branded() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open_in(dir.path()).unwrap();
        let (app, ver, mode): (i32, u32, String) = j
            .conn
            .query_row(
                "SELECT (SELECT application_id FROM pragma_application_id),
                        (SELECT user_version FROM pragma_user_version),
                        (SELECT journal_mode FROM pragma_journal_mode)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!(app, APPLICATION_ID);
        assert_eq!(ver, SCHEMA_VERSION);
        assert_eq!(mode, "wal");
        let migrations: i64 = j
            .conn
            .query_row("SELECT COUNT(*) FROM migrations", [], |r| r.get(0))
            .unwrap();
        assert_eq!(migrations, MIGRATIONS.len() as i64);
        drop(j);
        // Opening again migrates nothing.
        let j = Journal::open_in(dir.path()).unwrap();
        let migrations: i64 = j
            .conn
            .query_row("SELECT COUNT(*) FROM migrations", [], |r| r.get(0))
            .unwrap();
        assert_eq!(migrations, MIGRATIONS.len() as i64);
    }

    #[test]
    fn attach_continues_after_the_last_event() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open_in(dir.path()).unwrap();
        j.record(&started("r1")).unwrap();
        j.flush().unwrap();
        drop(j);
        let mut j = Journal::open_in(dir.path()).unwrap();
        assert!(matches!(
            j.record(&RunEvent::RunResumed { at: 9.0 }),
            Err(SinkError(_))
        ));
        j.attach("r1").unwrap();
        j.record(&RunEvent::RunResumed { at: 9.0 }).unwrap();
        j.flush().unwrap();
        assert_eq!(j.events("r1").unwrap().len(), 2);
        assert!(matches!(
            j.attach("nope"),
            Err(JournalError::UnknownRun { .. })
        ));
    }

    /// The journal applies every event to the run's state before writing it: an event the
    /// transition table refuses is an error and is not written, so the journal still replays.
    #[test]
    fn an_event_the_runs_state_does_not_allow_is_refused_and_not_written() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open_in(dir.path()).unwrap();
        j.record(&started("r1")).unwrap();
        for e in step_events("a") {
            j.record(&e).unwrap();
        }
        let fail_b = RunEvent::StepFailed {
            step: "b".into(),
            error: StepError::permanent("input", "no such output"),
            at: 4.0,
        };
        j.record(&fail_b).unwrap();
        // Failing `b` again, or starting the succeeded `a` again, without a resume: refused.
        let err = j.record(&fail_b).unwrap_err();
        assert!(
            err.0.contains("DRJ006") && err.0.contains("event #5"),
            "{err}"
        );
        assert!(err.0.contains("nothing of it was written"), "{err}");
        let again = RunEvent::StepStarted {
            step: "a".into(),
            attempt: 2,
            at: 5.0,
        };
        assert!(j.record(&again).is_err());
        j.flush().unwrap();
        let events = j.events("r1").unwrap();
        assert_eq!(events.len(), 4);
        crate::state::RunState::replay(&events).unwrap();
        // The refusals changed nothing: the run goes on from where it was.
        j.record(&RunEvent::RunFinished {
            status: RunStatus::Failed,
            outputs: Outputs::new(),
            at: 6.0,
        })
        .unwrap();
        assert_eq!(j.events("r1").unwrap().len(), 5);
    }

    /// `attach` replays the run, so what a resume records is checked against the journaled
    /// state; a run whose journal does not replay cannot be attached.
    #[test]
    fn attach_checks_later_events_against_the_journaled_state() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open_in(dir.path()).unwrap();
        j.record(&started("r1")).unwrap();
        for e in step_events("a") {
            j.record(&e).unwrap();
        }
        j.flush().unwrap();
        drop(j);
        let mut j = Journal::open_in(dir.path()).unwrap();
        j.attach("r1").unwrap();
        j.record(&RunEvent::RunResumed { at: 9.0 }).unwrap();
        let skip_a = RunEvent::StepSkipped {
            step: "a".into(),
            reason: "condition is false".into(),
            at: 10.0,
        };
        let err = j.record(&skip_a).unwrap_err();
        assert!(err.0.contains("step_skipped for step `a`"), "{err}");
        assert!(err.0.contains("step succeeded"), "{err}");
        j.flush().unwrap();
        assert_eq!(j.events("r1").unwrap().len(), 4);

        // A journal broken by hand is not written to.
        j.conn
            .execute(
                "INSERT INTO events (run_id, seq, kind, step, at, body) VALUES ('r1', 5, \
                 'step_started', 'a', 11.0, ?1)",
                [serde_json::to_string(&RunEvent::StepStarted {
                    step: "a".into(),
                    attempt: 1,
                    at: 11.0,
                })
                .unwrap()],
            )
            .unwrap();
        let mut j = Journal::open_in(dir.path()).unwrap();
        let err = j.attach("r1").unwrap_err();
        assert!(matches!(err, JournalError::Replay { .. }), "{err}");
        assert!(matches!(
            j.record(&RunEvent::RunResumed { at: 12.0 }),
            Err(SinkError(_))
        ));
        assert_eq!(j.events("r1").unwrap().len(), 5);
    }

    #[test]
    fn work_events_commit_at_once_and_bookkeeping_at_the_next_commit() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open_in(dir.path()).unwrap();
        j.record(&started("r1")).unwrap();
        j.flush().unwrap();
        let reader = Journal::open_in(dir.path()).unwrap();
        let [start, done] = step_events("a");
        j.record(&start).unwrap();
        // A step start is on disk before `record` returns: the scheduler acts on it next.
        assert_eq!(reader.event_count("r1").unwrap(), 2);
        j.record(&done).unwrap();
        assert_eq!(reader.event_count("r1").unwrap(), 3);
        // Bookkeeping rides along until the next commit.
        j.record(&RunEvent::StepSkipped {
            step: "b".into(),
            reason: "condition".into(),
            at: 4.0,
        })
        .unwrap();
        assert_eq!(reader.event_count("r1").unwrap(), 3);
        j.flush().unwrap();
        assert_eq!(reader.event_count("r1").unwrap(), 4);
    }

    #[test]
    fn a_file_that_is_not_sqlite_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(JOURNAL_FILE);
        let garbage = b"this is my shopping list, not a database\n".repeat(10);
        std::fs::write(&path, &garbage).unwrap();
        let err = Journal::open(&path).unwrap_err();
        assert!(matches!(err, JournalError::NotAJournal { .. }), "{err}");
        assert!(err.to_string().contains("left untouched"));
        assert_eq!(std::fs::read(&path).unwrap(), garbage);
        // A truncated header too.
        std::fs::write(&path, b"SQLite format 3\0").unwrap();
        assert!(matches!(
            Journal::open(&path),
            Err(JournalError::NotAJournal { .. })
        ));
    }

    #[test]
    fn another_applications_database_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(JOURNAL_FILE);
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('hi');")
                .unwrap();
        }
        let before = std::fs::read(&path).unwrap();
        let err = Journal::open(&path).unwrap_err();
        assert!(
            matches!(
                err,
                JournalError::Foreign {
                    application_id: 0,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), before);

        let path2 = dir.path().join("other.db");
        {
            let c = Connection::open(&path2).unwrap();
            c.execute_batch("PRAGMA application_id = 42;").unwrap();
        }
        let before = std::fs::read(&path2).unwrap();
        let err = Journal::open(&path2).unwrap_err();
        assert!(
            matches!(
                err,
                JournalError::Foreign {
                    application_id: 42,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(std::fs::read(&path2).unwrap(), before);
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open_in(dir.path()).unwrap();
        j.conn.execute_batch("PRAGMA user_version = 99").unwrap();
        drop(j);
        let err = Journal::open_in(dir.path()).unwrap_err();
        assert!(
            matches!(err, JournalError::TooNew { found: 99, .. }),
            "{err}"
        );
    }

    #[test]
    fn processes_creating_one_journal_at_once_all_succeed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(JOURNAL_FILE);
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(6));
        let handles: Vec<_> = (0..6)
            .map(|i| {
                let path = path.clone();
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    let mut j = Journal::open(&path).map_err(|e| e.to_string())?;
                    j.record(&started(&format!("r{i}")))
                        .map_err(|e| e.to_string())?;
                    j.commit().map_err(|e| e.to_string())
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap().unwrap();
        }
        assert_eq!(Journal::open(&path).unwrap().list_runs().unwrap().len(), 6);
    }

    #[test]
    fn an_empty_file_becomes_a_journal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(JOURNAL_FILE);
        std::fs::write(&path, b"").unwrap();
        Journal::open(&path).unwrap();
    }

    #[test]
    fn state_dir_precedence() {
        assert_eq!(
            resolve_state_dir(Some(Path::new("/x"))),
            PathBuf::from("/x")
        );
    }

    #[test]
    fn a_newer_schema_in_rollback_mode_is_refused_and_left_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(JOURNAL_FILE);
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch(&format!(
                "PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = 99;
                 CREATE TABLE future (x);"
            ))
            .unwrap();
        }
        let before = std::fs::read(&path).unwrap();
        let err = Journal::open(&path).unwrap_err();
        assert!(
            matches!(err, JournalError::TooNew { found: 99, .. }),
            "{err}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), before);
        assert!(!dir.path().join("journal.db-wal").exists());
    }

    #[test]
    fn a_damaged_inner_page_is_refused_and_left_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(JOURNAL_FILE);
        {
            let mut j = Journal::open(&path).unwrap();
            for i in 0..200 {
                j.record(&started(&format!("run-{i:04}"))).unwrap();
            }
            j.commit().unwrap();
            j.conn
                .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
                .unwrap();
        }
        let mut bytes = std::fs::read(&path).unwrap();
        assert!(bytes.len() > 12288, "{}", bytes.len());
        bytes[8192..12288].fill(b'A');
        std::fs::write(&path, &bytes).unwrap();
        let err = Journal::open(&path).unwrap_err();
        assert!(matches!(err, JournalError::Corrupt { .. }), "{err}");
        assert!(matches!(
            Journal::open_read_only(&path),
            Err(JournalError::Corrupt { .. })
        ));
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
    }

    #[test]
    fn journal_sync_values() {
        assert_eq!(Durability::parse("FULL"), Some(Durability::Full));
        assert_eq!(Durability::parse("normal"), Some(Durability::Normal));
        assert_eq!(Durability::parse(""), Some(Durability::Normal));
        assert_eq!(Durability::parse("bogus"), None);
    }
}
