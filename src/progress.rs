//! Progress a person can watch: a live line per running step on a terminal, plain log lines
//! otherwise.

use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant};

use drflow_engine::{RunEvent, RunSink, SinkError, format_duration};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Draws run events on stderr.
pub struct Progress {
    uses: HashMap<String, String>,
    start: Instant,
    live: Option<Live>,
}

struct Live {
    multi: MultiProgress,
    bars: HashMap<String, ProgressBar>,
    style: ProgressStyle,
}

impl Progress {
    /// `uses` maps step ids to step types; `terminal` selects live lines.
    pub fn new(uses: HashMap<String, String>, terminal: bool) -> Progress {
        let live = terminal.then(|| Live {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            bars: HashMap::new(),
            style: ProgressStyle::with_template("  {spinner} {msg} {elapsed:>6}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        });
        Progress {
            uses,
            start: Instant::now(),
            live,
        }
    }

    fn line(&self, text: String) {
        match &self.live {
            Some(live) => {
                let _ = live.multi.println(text);
            }
            None => {
                let _ = writeln!(
                    std::io::stderr(),
                    "[{:>7}] {text}",
                    format_duration(self.start.elapsed())
                );
            }
        }
    }

    fn label(&self, step: &str) -> String {
        match self.uses.get(step) {
            Some(uses) => format!("{step} ({uses})"),
            None => step.to_string(),
        }
    }

    fn finish_bar(&mut self, step: &str) {
        if let Some(live) = &mut self.live
            && let Some(bar) = live.bars.remove(step)
        {
            bar.finish_and_clear();
            live.multi.remove(&bar);
        }
    }
}

impl RunSink for Progress {
    fn record(&mut self, event: &RunEvent) -> Result<(), SinkError> {
        match event {
            RunEvent::StepStarted { step, attempt, .. } => {
                let label = self.label(step);
                let attempt_note = if *attempt > 1 {
                    format!(" attempt {attempt}")
                } else {
                    String::new()
                };
                match &mut self.live {
                    Some(live) => {
                        let bar = live.multi.add(ProgressBar::new_spinner());
                        bar.set_style(live.style.clone());
                        bar.set_message(format!("{label}{attempt_note}"));
                        bar.enable_steady_tick(Duration::from_millis(120));
                        live.bars.insert(step.clone(), bar);
                    }
                    None => self.line(format!("start    {label}{attempt_note}")),
                }
            }
            RunEvent::StepSucceeded { step, .. } => {
                self.finish_bar(step);
                self.line(format!("ok       {}", self.label(step)));
            }
            RunEvent::AttemptFailed {
                step,
                attempt,
                error,
                will_retry: true,
                ..
            } => {
                self.finish_bar(step);
                self.line(format!(
                    "retry    {} attempt {attempt} failed: {error}",
                    self.label(step)
                ));
            }
            RunEvent::StepFailed { step, error, .. } => {
                self.finish_bar(step);
                self.line(format!("FAILED   {}: {error}", self.label(step)));
            }
            RunEvent::StepSkipped { step, reason, .. } => {
                self.line(format!("skipped  {}: {reason}", self.label(step)));
            }
            RunEvent::StepInterrupted { step, .. } => {
                self.finish_bar(step);
                self.line(format!("stopped  {}: interrupted", self.label(step)));
            }
            RunEvent::UndoStarted { step, .. } => {
                self.line(format!("undo     {}", self.label(step)));
            }
            RunEvent::UndoFailed { step, error, .. } => {
                self.line(format!("UNDO FAILED {}: {error}", self.label(step)));
            }
            _ => {}
        }
        Ok(())
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(live) = &mut self.live {
            for (_, bar) in live.bars.drain() {
                bar.finish_and_clear();
            }
            let _ = live.multi.clear();
        }
    }
}
