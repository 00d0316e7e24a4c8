//! The journal's shared copy (`crate::SharedLog`): written through before every local commit,
//! copied from when another machine wrote what this one lacks. See `engine/src/shared_log.rs`.

use std::sync::Arc;

use crate::event::RunEvent;
use crate::shared_log::{Fence, SharedEvent, SharedLog};

use super::{Journal, JournalError};

impl Journal {
    /// This journal with a shared copy: every commit writes its events to `log` first, under
    /// the fences of [`Journal::set_fences`]. Call [`Journal::sync`] to copy what others wrote.
    pub fn with_shared(mut self, log: Arc<dyn SharedLog>) -> Journal {
        self.shared = Some(log);
        self
    }

    /// The shared copy, if any.
    pub fn shared(&self) -> Option<&Arc<dyn SharedLog>> {
        self.shared.as_ref()
    }

    /// The leases (with their grants' tokens) the shared copy must still see as this process's
    /// for a write to go through: the recorded run's own and its `lock:`.
    pub fn set_fences(&mut self, fences: Vec<Fence>) {
        self.fences = fences;
    }

    /// Writes the open transaction's events to the shared copy; refused or failed, rolls the
    /// transaction back here too, and records nothing more of the run.
    pub(super) fn share(&mut self) -> Result<(), JournalError> {
        let Some(log) = self.shared.clone() else {
            return Ok(());
        };
        if self.unshared.is_empty() {
            return Ok(());
        }
        match log.append(&self.unshared, &self.fences) {
            Ok(()) => {
                self.unshared.clear();
                Ok(())
            }
            Err(source) => {
                self.unshared.clear();
                if self.in_tx {
                    let _ = self.conn.execute_batch("ROLLBACK");
                    self.in_tx = false;
                }
                // The state holds events the rows no longer do.
                self.state = None;
                Err(JournalError::Shared {
                    log: log.describe(),
                    what: "did not take the run's events, so they were not recorded here either",
                    source,
                })
            }
        }
    }

    /// Copies into this journal the events of the shared copy it lacks: of `run_id`, or of
    /// every run when `None`. A run is copied from after its last local event, as far as its
    /// events follow each other without a gap. Returns how many events were copied.
    ///
    /// Errors: the shared copy cannot be read, or holds an event this journal cannot read or
    /// whose run's state does not allow it.
    pub fn sync(&mut self, run_id: Option<&str>) -> Result<usize, JournalError> {
        let Some(log) = self.shared.clone() else {
            return Ok(0);
        };
        self.commit()?;
        let remote = log.read(run_id).map_err(|source| JournalError::Shared {
            log: log.describe(),
            what: "could not be read",
            source,
        })?;
        self.importing = true;
        let copied = self.import(&remote);
        self.importing = false;
        self.run = None;
        self.state = None;
        copied
    }

    /// Copies each run's missing events; a run that cannot be copied (an event this drflow
    /// cannot read, say, from a newer one) is skipped with a warning, not the whole journal.
    fn import(&mut self, remote: &[SharedEvent]) -> Result<usize, JournalError> {
        let mut copied = 0;
        for run in remote.chunk_by(|a, b| a.run_id == b.run_id) {
            match self.import_run(run) {
                Ok(n) => copied += n,
                Err(e) => {
                    if self.in_tx {
                        let _ = self.conn.execute_batch("ROLLBACK");
                        self.in_tx = false;
                    }
                    tracing::warn!(run = run[0].run_id, error = %e, "could not copy a run from the shared journal; skipped");
                }
            }
        }
        Ok(copied)
    }

    /// Copies the events of one run (all of one `run_id`, in order) this journal lacks.
    fn import_run(&mut self, run: &[SharedEvent]) -> Result<usize, JournalError> {
        let run_id = &run[0].run_id;
        let last = self.last_seq(run_id)?;
        let next = last.unwrap_or(0) + 1;
        let missing: Vec<&SharedEvent> = run.iter().filter(|e| e.seq >= next).collect();
        match missing.first() {
            None => return Ok(0),
            Some(e) if e.seq != next => {
                // A run begun before --journal was used: its start is on that machine only.
                tracing::warn!(
                    run = run_id,
                    from = e.seq,
                    "the shared journal has this run only from a later event; not copied"
                );
                return Ok(0);
            }
            Some(_) => {}
        }
        if last.is_some() {
            self.attach(run_id)?;
        } else {
            self.run = None;
            self.state = None;
        }
        let mut copied = 0;
        for (e, want) in missing.into_iter().zip(next..) {
            if e.seq != want {
                tracing::warn!(
                    run = run_id,
                    seq = want,
                    "the shared journal lacks an event; copied up to it"
                );
                break;
            }
            let event: RunEvent =
                serde_json::from_str(&e.body).map_err(|source| JournalError::BadEvent {
                    run_id: run_id.clone(),
                    seq: e.seq,
                    path: self.path.clone(),
                    source,
                })?;
            self.append(&event)?;
            copied += 1;
        }
        self.commit()?;
        Ok(copied)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use crate::event::{RunEvent, RunSink, RunStatus};
    use crate::shared_log::{Fence, MemoryLog, SharedLog};

    use super::Journal;

    fn started(run_id: &str) -> RunEvent {
        RunEvent::RunStarted {
            run_id: run_id.into(),
            runbook: "failover".into(),
            path: "runbooks/failover.yaml".into(),
            content_hash: "h".into(),
            params: json!({"env_suffix": "prod"}),
            at: 1.0,
            step_hashes: Default::default(),
        }
    }

    fn finished() -> RunEvent {
        RunEvent::RunFinished {
            status: RunStatus::Succeeded,
            outputs: Default::default(),
            at: 2.0,
        }
    }

    fn journal(dir: &tempfile::TempDir, log: &Arc<MemoryLog>) -> Journal {
        Journal::open_in(dir.path())
            .unwrap()
            .with_shared(log.clone() as Arc<dyn SharedLog>)
    }

    #[test]
    fn a_run_written_on_one_machine_is_read_and_continued_on_another() {
        let log = Arc::new(MemoryLog::new());
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let mut ja = journal(&a, &log);
        ja.record(&started("r1")).unwrap();
        assert_eq!(log.len(), 1, "run_started is shared before record returns");
        drop(ja);
        let mut jb = journal(&b, &log);
        assert_eq!(jb.sync(None).unwrap(), 1);
        assert_eq!(jb.run("r1").unwrap().status, "running");
        jb.attach("r1").unwrap();
        jb.record(&finished()).unwrap();
        assert_eq!(log.read(Some("r1")).unwrap().len(), 2);
        // And back: the first machine copies only what it lacks.
        let mut ja = journal(&a, &log);
        assert_eq!(ja.sync(Some("r1")).unwrap(), 1);
        assert_eq!(ja.run("r1").unwrap().status, "succeeded");
        assert_eq!(ja.sync(None).unwrap(), 0);
    }

    #[test]
    fn a_stale_fence_records_nothing_here_or_there_and_the_run_stops() {
        let log = Arc::new(MemoryLog::new());
        let dir = tempfile::tempdir().unwrap();
        let mut j = journal(&dir, &log);
        log.set_token("run/r1", 1);
        j.set_fences(vec![Fence {
            key: "run/r1".into(),
            token: 1,
        }]);
        j.record(&started("r1")).unwrap();
        // Another process takes the run over while this one was paused.
        log.set_token("run/r1", 2);
        let err = j.record(&finished()).unwrap_err();
        assert!(err.0.contains("no longer this process's"), "{}", err.0);
        assert_eq!(log.len(), 1);
        assert_eq!(j.events("r1").unwrap().len(), 1, "rolled back here too");
        // Nothing more of the run is recorded.
        assert!(j.record(&finished()).is_err());
    }

    #[test]
    fn a_run_that_cannot_be_read_is_skipped_and_the_others_copied() {
        use crate::shared_log::SharedEvent;
        let log = Arc::new(MemoryLog::new());
        let dir = tempfile::tempdir().unwrap();
        log.append(
            &[SharedEvent {
                run_id: "new".into(),
                seq: 1,
                body: r#"{"event":"from_a_newer_drflow"}"#.into(),
            }],
            &[],
        )
        .unwrap();
        let mut a = journal(&tempfile::tempdir().unwrap(), &log);
        a.record(&started("r1")).unwrap();
        let mut j = journal(&dir, &log);
        assert_eq!(j.sync(None).unwrap(), 1);
        assert!(j.run("r1").is_ok());
        assert!(j.run("new").is_err());
    }

    #[test]
    fn an_unreachable_shared_copy_refuses_the_commit() {
        let log = Arc::new(MemoryLog::new());
        let dir = tempfile::tempdir().unwrap();
        let mut j = journal(&dir, &log);
        log.set_down(Some("connection refused"));
        let err = j.record(&started("r1")).unwrap_err();
        assert!(err.0.contains("connection refused"), "{}", err.0);
        assert!(j.list_runs().unwrap().is_empty());
    }
}
