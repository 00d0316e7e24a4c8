//! The daemon's own durable record (`<state_dir>/daemon.db`, SQLite): the events it took, the
//! firings it decided with the run id each got, and the read position of an event source that
//! has one (the sim's queue). An event is committed here before its message is deleted from
//! the queue, and a firing in the same transaction as the event that completed it, so that a
//! daemon killed at any point and started again rebuilds the triggers' state from the events,
//! starts a run decided but never started, and never decides the same firing twice.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

/// The inbox file's name in the state dir.
pub const INBOX_FILE: &str = "daemon.db";

/// The inbox failed: where and why.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {what}: {source}")]
pub struct InboxError {
    path: PathBuf,
    what: &'static str,
    #[source]
    source: rusqlite::Error,
}

/// One firing the daemon decided: the run it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct FiringRecord {
    /// The run id it was given before the run started.
    pub run_id: String,
    /// The trigger's name.
    pub trigger: String,
    /// The runbook's path.
    pub runbook: String,
    /// The run's parameters, resolved (secrets never: they are not the trigger's to give).
    pub params: Value,
    /// When it was decided (ms since the Unix epoch).
    pub at_ms: u64,
}

/// One event taken.
#[derive(Debug, Clone, PartialEq)]
pub struct TakenEvent {
    /// The message body as received.
    pub body: String,
    /// When it arrived (ms since the Unix epoch).
    pub received_ms: u64,
}

/// The inbox; see the module docs.
#[derive(Debug)]
pub struct Inbox {
    conn: Connection,
    path: PathBuf,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    received_ms INTEGER NOT NULL,
    body        TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_arrival ON events (received_ms);
CREATE TABLE IF NOT EXISTS firings (
    run_id   TEXT PRIMARY KEY,
    trigger  TEXT NOT NULL,
    runbook  TEXT NOT NULL,
    params   TEXT NOT NULL,
    at_ms    INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS cursors (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
";

impl Inbox {
    /// Opens (or creates) the inbox of `state_dir`.
    pub fn open(state_dir: &Path) -> Result<Inbox, InboxError> {
        let path = state_dir.join(INBOX_FILE);
        let err = |what| {
            let path = path.clone();
            move |source| InboxError { path, what, source }
        };
        if let Err(e) = std::fs::create_dir_all(state_dir) {
            return Err(InboxError {
                path: path.clone(),
                what: "creating the state dir",
                source: rusqlite::Error::ToSqlConversionFailure(Box::new(e)),
            });
        }
        let conn = Connection::open(&path).map_err(err("opening"))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(err("setting the busy timeout"))?;
        // Committed means on disk: a message is deleted from the queue only after this.
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;")
            .map_err(err("setting durability"))?;
        conn.execute_batch(SCHEMA)
            .map_err(err("creating the tables"))?;
        Ok(Inbox { conn, path })
    }

    fn err(&self, what: &'static str) -> impl FnOnce(rusqlite::Error) -> InboxError + '_ {
        move |source| InboxError {
            path: self.path.clone(),
            what,
            source,
        }
    }

    /// Records, in one transaction: `event` (if any), the `firings` it completed, and a source's
    /// new read position.
    pub fn record(
        &mut self,
        event: Option<&TakenEvent>,
        firings: &[FiringRecord],
        cursor: Option<(&str, u64)>,
    ) -> Result<(), InboxError> {
        let path = &self.path;
        let err = |what: &'static str| {
            move |source| InboxError {
                path: path.clone(),
                what,
                source,
            }
        };
        let tx = self
            .conn
            .transaction()
            .map_err(err("starting a transaction"))?;
        if let Some(e) = event {
            tx.execute(
                "INSERT INTO events (received_ms, body) VALUES (?1, ?2)",
                params![e.received_ms as i64, e.body],
            )
            .map_err(err("recording an event"))?;
        }
        for f in firings {
            tx.execute(
                "INSERT OR IGNORE INTO firings (run_id, trigger, runbook, params, at_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![f.run_id, f.trigger, f.runbook, f.params.to_string(), f.at_ms as i64],
            )
            .map_err(err("recording a firing"))?;
        }
        if let Some((name, value)) = cursor {
            tx.execute(
                "INSERT INTO cursors (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                params![name, value as i64],
            )
            .map_err(err("moving a read position"))?;
        }
        tx.commit().map_err(err("committing"))
    }

    /// The events taken since `since_ms`, in the order taken.
    pub fn events_since(&self, since_ms: u64) -> Result<Vec<TakenEvent>, InboxError> {
        let mut stmt = self
            .conn
            .prepare("SELECT received_ms, body FROM events WHERE received_ms >= ?1 ORDER BY seq")
            .map_err(self.err("reading events"))?;
        let rows = stmt
            .query_map(params![since_ms as i64], |r| {
                Ok(TakenEvent {
                    received_ms: r.get::<_, i64>(0)? as u64,
                    body: r.get(1)?,
                })
            })
            .map_err(self.err("reading events"))?;
        rows.collect::<Result<_, _>>()
            .map_err(self.err("reading events"))
    }

    /// Every firing recorded, oldest first.
    pub fn firings(&self) -> Result<Vec<FiringRecord>, InboxError> {
        let mut stmt = self
            .conn
            .prepare("SELECT run_id, trigger, runbook, params, at_ms FROM firings ORDER BY at_ms, run_id")
            .map_err(self.err("reading firings"))?;
        let rows = stmt
            .query_map([], |r| {
                let params: String = r.get(3)?;
                Ok(FiringRecord {
                    run_id: r.get(0)?,
                    trigger: r.get(1)?,
                    runbook: r.get(2)?,
                    params: serde_json::from_str(&params).unwrap_or(Value::Null),
                    at_ms: r.get::<_, i64>(4)? as u64,
                })
            })
            .map_err(self.err("reading firings"))?;
        rows.collect::<Result<_, _>>()
            .map_err(self.err("reading firings"))
    }

    /// Forgets the firing of `run_id`: it was folded into another run, replaced, or refused
    /// before its run was journaled, so a restart must not start it.
    pub fn forget_firing(&mut self, run_id: &str) -> Result<(), InboxError> {
        self.conn
            .execute("DELETE FROM firings WHERE run_id = ?1", params![run_id])
            .map(|_| ())
            .map_err(self.err("forgetting a firing"))
    }

    /// A source's read position, if it has one.
    pub fn cursor(&self, name: &str) -> Result<Option<u64>, InboxError> {
        self.conn
            .query_row(
                "SELECT value FROM cursors WHERE name = ?1",
                params![name],
                |r| r.get::<_, i64>(0),
            )
            .optional()
            .map(|v| v.map(|v| v as u64))
            .map_err(self.err("reading a read position"))
    }

    /// Deletes the events taken before `before_ms` (the triggers no longer count them) and the
    /// firings decided before `firings_before_ms`. Returns (events, firings) deleted.
    pub fn prune(
        &mut self,
        before_ms: u64,
        firings_before_ms: u64,
    ) -> Result<(usize, usize), InboxError> {
        let events = self
            .conn
            .execute(
                "DELETE FROM events WHERE received_ms < ?1",
                params![before_ms as i64],
            )
            .map_err(self.err("pruning events"))?;
        let firings = self
            .conn
            .execute(
                "DELETE FROM firings WHERE at_ms < ?1",
                params![firings_before_ms as i64],
            )
            .map_err(self.err("pruning firings"))?;
        Ok((events, firings))
    }

    /// How many events it holds.
    pub fn event_count(&self) -> Result<u64, InboxError> {
        self.conn
            .query_row("SELECT count(*) FROM events", [], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(self.err("counting events"))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn events_firings_and_positions_survive_a_reopen_and_prune_by_age() {
        let dir = tempfile::tempdir().unwrap();
        let mut inbox = Inbox::open(dir.path()).unwrap();
        let e1 = TakenEvent {
            body: "{\"id\":\"1\"}".into(),
            received_ms: 1000,
        };
        let e2 = TakenEvent {
            body: "{\"id\":\"2\"}".into(),
            received_ms: 2000,
        };
        let f = FiringRecord {
            run_id: "20261130T060000-abcd".into(),
            trigger: "primary-down".into(),
            runbook: "runbooks/failover.yaml".into(),
            params: json!({"env_suffix": "prod"}),
            at_ms: 2000,
        };
        inbox
            .record(Some(&e1), &[], Some(("sim-queue", 1000)))
            .unwrap();
        inbox
            .record(
                Some(&e2),
                std::slice::from_ref(&f),
                Some(("sim-queue", 2000)),
            )
            .unwrap();
        // Recording the same firing again (a replay) changes nothing.
        inbox.record(None, std::slice::from_ref(&f), None).unwrap();
        drop(inbox);
        let mut inbox = Inbox::open(dir.path()).unwrap();
        assert_eq!(inbox.events_since(0).unwrap(), vec![e1, e2.clone()]);
        assert_eq!(inbox.events_since(1500).unwrap(), vec![e2]);
        assert_eq!(inbox.firings().unwrap(), vec![f]);
        assert_eq!(inbox.cursor("sim-queue").unwrap(), Some(2000));
        assert_eq!(inbox.cursor("other").unwrap(), None);
        assert_eq!(inbox.prune(1500, 0).unwrap(), (1, 0));
        assert_eq!(inbox.event_count().unwrap(), 1);
        assert_eq!(inbox.prune(0, 1000).unwrap(), (0, 0));
        inbox.forget_firing("20261130T060000-abcd").unwrap();
        assert!(inbox.firings().unwrap().is_empty());
    }
}
