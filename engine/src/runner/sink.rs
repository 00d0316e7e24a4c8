//! Where a run's events go: secrets scrubbed, the backend checkpointed at the end of a step, the
//! journal first (write-ahead), then the caller's sink (the display).

use std::sync::Arc;

use crate::event::{Recorder, RunEvent, RunSink, SinkError};
use crate::journal::Journal;
use crate::secrets::Secrets;

use super::hooks::{HookAction, HookPoint, Hooks};

/// Saves what a backend holds in memory (the sim's world), so the journal never records a step
/// whose effects are unsaved. `Err` is a message; the run stops.
pub type Checkpoint = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// The runner's sink for one run or rollback.
pub(super) struct RunnerSink<'a> {
    pub(super) journal: Option<&'a mut Journal>,
    pub(super) recorder: Option<Recorder>,
    pub(super) progress: &'a mut dyn RunSink,
    pub(super) secrets: &'a Secrets,
    pub(super) hooks: &'a Hooks,
    pub(super) checkpoint: Option<&'a Checkpoint>,
    /// The runbook's absolute path, journaled in `run_started` so a resume from another
    /// directory finds it.
    pub(super) runbook_path: Option<&'a str>,
    /// Where a hook crashed the run; nothing is recorded after.
    pub(super) crashed: Option<String>,
}

/// Whether `event` ends a step (or the run): what the backend is checkpointed before.
fn ends_work(event: &RunEvent) -> bool {
    matches!(
        event,
        RunEvent::StepSucceeded { .. }
            | RunEvent::StepFailed { .. }
            | RunEvent::UndoSucceeded { .. }
            | RunEvent::UndoFailed { .. }
            | RunEvent::RunFinished { .. }
    )
}

impl RunnerSink<'_> {
    fn crash(&mut self, point: &HookPoint<'_>) -> SinkError {
        let at = point.describe();
        self.crashed = Some(at.clone());
        SinkError(format!("crashed by a test hook at {at}"))
    }
}

impl RunSink for RunnerSink<'_> {
    fn record(&mut self, event: &RunEvent) -> Result<(), SinkError> {
        if let Some(at) = &self.crashed {
            return Err(SinkError(format!("crashed by a test hook at {at}")));
        }
        let mut event = self.secrets.scrub_event(event)?;
        if let (Some(abs), RunEvent::RunStarted { .. }) = (self.runbook_path, event.as_ref())
            && let RunEvent::RunStarted { path, .. } = event.to_mut()
        {
            *path = abs.to_owned();
        }
        // The one place a step's end reaches the journal: its effects are saved first.
        if ends_work(&event)
            && let Some(checkpoint) = self.checkpoint
        {
            checkpoint().map_err(|e| {
                SinkError(format!(
                    "could not save the cloud's state before recording it: {e}"
                ))
            })?;
        }
        let point = HookPoint::BeforeRecord(&event);
        if self.hooks.at(point) == HookAction::Crash {
            return Err(self.crash(&point));
        }
        if let Some(j) = self.journal.as_deref_mut() {
            j.record(&event)?;
        }
        if let Some(r) = self.recorder.as_mut() {
            r.record(&event)?;
        }
        self.progress.record(&event)?;
        let point = HookPoint::AfterRecord(&event);
        match self.hooks.at(point) {
            HookAction::Continue => {}
            HookAction::Crash => {
                // "After" means on disk: what was recorded up to here survives the crash.
                if let Some(j) = self.journal.as_deref_mut() {
                    j.flush()?;
                }
                return Err(self.crash(&point));
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        if let Some(at) = &self.crashed {
            return Err(SinkError(format!("crashed by a test hook at {at}")));
        }
        if let Some(j) = self.journal.as_deref_mut() {
            j.flush()?;
        }
        self.progress.flush()
    }
}
