//! In-process hooks for tests: stop a run at a named point, as a test needs to prove what a kill
//! at that point leaves behind, without a process to kill or a file to wait for.

use std::fmt;
use std::sync::Arc;

use crate::event::RunEvent;

/// A point of a run or a resume where [`Hooks`] are called.
#[derive(Debug, Clone, Copy)]
pub enum HookPoint<'a> {
    /// `resume`/`rollback` replayed the run's journal, holding the run's lease, before looking
    /// at the runbook file.
    AfterReplay {
        /// The run.
        run_id: &'a str,
    },
    /// An event is about to be journaled. For the end of a step, the backend checkpoint has
    /// already run (its effects are saved, the journal does not say so yet).
    BeforeRecord(&'a RunEvent),
    /// An event was journaled and committed.
    AfterRecord(&'a RunEvent),
}

impl HookPoint<'_> {
    /// `before:<event>:<step>`, `after:<event>:<step>` or `after_replay`, for messages.
    pub fn describe(&self) -> String {
        let event = |e: &RunEvent| {
            format!(
                "{}:{}",
                crate::state::event_name(e),
                e.step().unwrap_or_default()
            )
        };
        match self {
            HookPoint::AfterReplay { .. } => "after_replay".into(),
            HookPoint::BeforeRecord(e) => format!("before:{}", event(e)),
            HookPoint::AfterRecord(e) => format!("after:{}", event(e)),
        }
    }

    /// Whether this is `event` of `step`, before (`after == false`) or after it is journaled.
    pub fn is(&self, after: bool, event: &str, step: &str) -> bool {
        let e = match (self, after) {
            (HookPoint::BeforeRecord(e), false) | (HookPoint::AfterRecord(e), true) => e,
            _ => return false,
        };
        crate::state::event_name(e) == event && e.step() == Some(step)
    }
}

/// What the run does after a hook returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HookAction {
    /// Go on.
    #[default]
    Continue,
    /// Stop right here as a kill would: nothing more is journaled (events not yet committed are
    /// dropped), leases are left held, nothing is released or rolled back. The runner returns
    /// [`super::RunnerError::Crashed`].
    Crash,
}

/// Callbacks at named points of a run, for tests. A hook may block to pause the run there (the
/// run's coordinator waits; run it on a thread of its own), and may crash it.
#[derive(Clone, Default)]
pub struct Hooks(Option<HookFn>);

/// A hook callback.
pub type HookFn = Arc<dyn Fn(HookPoint<'_>) -> HookAction + Send + Sync>;

impl Hooks {
    /// No hooks (what the binary uses).
    pub fn none() -> Hooks {
        Hooks(None)
    }

    /// `hook` is called at every [`HookPoint`].
    pub fn new(hook: impl Fn(HookPoint<'_>) -> HookAction + Send + Sync + 'static) -> Hooks {
        Hooks(Some(Arc::new(hook)))
    }

    /// Crashes the run at the first point `at` accepts.
    pub fn crash_at(at: impl Fn(&HookPoint<'_>) -> bool + Send + Sync + 'static) -> Hooks {
        Hooks::new(move |p| {
            if at(&p) {
                HookAction::Crash
            } else {
                HookAction::Continue
            }
        })
    }

    pub(crate) fn at(&self, point: HookPoint<'_>) -> HookAction {
        match &self.0 {
            Some(h) => h(point),
            None => HookAction::Continue,
        }
    }
}

impl fmt::Debug for Hooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "Hooks(set)"
        } else {
            "Hooks(none)"
        })
    }
}
