//! Progress a person can watch, and the one way to stderr while a run is shown.
//!
//! On a terminal, each step that runs for more than a moment gets a live spinner line; every
//! other line (log records, resource changes, step failures) is printed *above* the spinners
//! through [`MultiProgress::println`], so nothing writes over them and no stale spinner is
//! left in the scrollback. Off a terminal there are no spinners, and lines are collected and
//! written in batches: when the engine goes idle ([`RunSink::flush`]), when a log record comes
//! (so logs stay live and in order), and at the end, instead of one unbuffered write per
//! fragment.
//!
//! What is shown depends on the verbosity ([`crate::log`]): by default a step shows only when
//! it fails, is retried, interrupted or undone; with `-v` also when it starts, ends or is
//! skipped.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use drflow_engine::{RunEvent, RunSink, Runbook, SharedClock, SinkError, format_duration};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often spinners turn; a step gets one once it has run this long, so a run of quick
/// steps draws almost nothing.
const TICK: Duration = Duration::from_millis(120);

/// At most this many spinners are shown (the oldest running steps); a line below them counts
/// the others, so a wide fan-out draws a dozen lines, not thousands.
const MAX_SPINNERS: usize = 10;

/// Batched lines are written at the latest when this many bytes are waiting.
const BATCH: usize = 32 * 1024;

/// What stderr is showing: the live display, if any, and lines not yet written.
struct Screen {
    live: Option<MultiProgress>,
    queued: Vec<u8>,
}

static SCREEN: Mutex<Screen> = Mutex::new(Screen {
    live: None,
    queued: Vec::new(),
});

fn screen() -> MutexGuard<'static, Screen> {
    // A panic while printing leaves nothing half-done that matters: keep printing.
    SCREEN.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Screen {
    fn write_queued(&mut self) {
        if !self.queued.is_empty() {
            let _ = std::io::stderr().write_all(&self.queued);
            self.queued.clear();
        }
    }
}

/// Prints `text` (one or more lines) on stderr now: above the live display while one is
/// shown, otherwise after the lines queued before it, in one write.
pub fn print_now(text: &str) {
    let mut s = screen();
    match &s.live {
        Some(multi) => {
            let _ = multi.println(text.strip_suffix('\n').unwrap_or(text));
        }
        None => {
            s.queued.extend_from_slice(text.as_bytes());
            if !text.ends_with('\n') {
                s.queued.push(b'\n');
            }
            s.write_queued();
        }
    }
}

/// Queues a line for stderr, written with the next batch (see the module doc).
fn queue(line: &str) {
    let mut s = screen();
    match &s.live {
        Some(multi) => {
            let _ = multi.println(line);
        }
        None => {
            s.queued.extend_from_slice(line.as_bytes());
            s.queued.push(b'\n');
            if s.queued.len() >= BATCH {
                s.write_queued();
            }
        }
    }
}

/// Writes the queued lines.
pub fn flush() {
    screen().write_queued();
}

/// The steps running now, in the order they started, and the spinners of those that have run
/// long enough to get one.
struct Running {
    multi: MultiProgress,
    style: ProgressStyle,
    /// The line that counts running steps without a spinner.
    more: Option<ProgressBar>,
    next: u64,
    order: HashMap<String, u64>,
    steps: BTreeMap<u64, Spinner>,
}

struct Spinner {
    label: String,
    started: Instant,
    bar: Option<ProgressBar>,
}

impl Running {
    /// Gives a spinner to each step that has run for a tick (the oldest first, up to
    /// [`MAX_SPINNERS`]), turns every spinner, and counts the steps left without one.
    fn tick(&mut self) {
        let mut shown = 0;
        let mut others = 0;
        for s in self.steps.values_mut() {
            if let Some(bar) = &s.bar {
                bar.tick();
                shown += 1;
            } else if s.started.elapsed() < TICK {
                // Started since the last tick: maybe done before the next.
            } else if shown == MAX_SPINNERS {
                others += 1;
            } else {
                let bar = ProgressBar::new_spinner()
                    .with_style(self.style.clone())
                    .with_message(s.label.clone())
                    .with_elapsed(s.started.elapsed());
                s.bar = Some(match &self.more {
                    Some(more) => self.multi.insert_before(more, bar),
                    None => self.multi.add(bar),
                });
                shown += 1;
            }
        }
        match (&self.more, others) {
            (None, 0) => {}
            (Some(more), 0) => {
                more.finish_and_clear();
                self.multi.remove(more);
                self.more = None;
            }
            (Some(more), n) => more.set_message(format!("{n} more steps running")),
            (None, n) => {
                let more = ProgressBar::new_spinner()
                    .with_style(
                        ProgressStyle::with_template("    … and {msg}")
                            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                    )
                    .with_message(format!("{n} more steps running"));
                self.more = Some(self.multi.add(more));
            }
        }
    }

    fn finish(&mut self, step: &str) {
        if let Some(n) = self.order.remove(step)
            && let Some(Spinner { bar: Some(bar), .. }) = self.steps.remove(&n)
        {
            bar.finish_and_clear();
            self.multi.remove(&bar);
        }
    }
}

/// The live display: the running steps, and the thread that turns their spinners.
struct Live {
    running: Arc<Mutex<Running>>,
    stop: Option<mpsc::Sender<()>>,
    ticker: Option<JoinHandle<()>>,
}

impl Live {
    fn start() -> Live {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let running = Arc::new(Mutex::new(Running {
            multi: multi.clone(),
            style: ProgressStyle::with_template("  {spinner} {msg} {elapsed:>6}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            more: None,
            next: 0,
            order: HashMap::new(),
            steps: BTreeMap::new(),
        }));
        screen().live = Some(multi);
        let (stop, stopped) = mpsc::channel::<()>();
        let shared = Arc::clone(&running);
        // One thread for all spinners (indicatif's steady tick would start one per bar).
        let ticker = std::thread::Builder::new()
            .name("drflow-progress".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(TICK) {
                    lock(&shared).tick();
                }
            })
            .ok();
        Live {
            running,
            stop: Some(stop),
            ticker,
        }
    }

    fn running(&self) -> MutexGuard<'_, Running> {
        lock(&self.running)
    }
}

fn lock(running: &Mutex<Running>) -> MutexGuard<'_, Running> {
    running.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Draws run events on stderr.
pub struct Progress<'a> {
    /// For each step's type in its label.
    rb: &'a Runbook,
    /// The run's clock, and when the display started on it: a line off a terminal starts with
    /// the run's time so far (virtual on the sim). Spinners count wall time: they show a person
    /// what is taking real time.
    clock: SharedClock,
    start_ms: u64,
    verbose: bool,
    live: Option<Live>,
}

impl<'a> Progress<'a> {
    /// The display of a run of `rb` on `clock`; `terminal` selects the live display. How much
    /// is shown follows [`crate::log::verbosity`].
    pub fn new(rb: &'a Runbook, terminal: bool, clock: SharedClock) -> Progress<'a> {
        Progress {
            rb,
            start_ms: clock.now_ms(),
            clock,
            verbose: crate::log::verbosity() > 0,
            live: terminal.then(Live::start),
        }
    }

    fn line(&self, text: &str) {
        match &self.live {
            Some(_) => queue(text),
            None => queue(&format!(
                "[{:>7}] {text}",
                format_duration(Duration::from_millis(
                    self.clock.now_ms().saturating_sub(self.start_ms)
                ))
            )),
        }
    }

    fn label(&self, step: &str) -> String {
        match self.rb.index.get(step) {
            Some(&i) => format!("{step} ({})", self.rb.steps[i].uses),
            None => step.to_string(),
        }
    }

    fn finish(&self, step: &str) {
        if let Some(live) = &self.live {
            live.running().finish(step);
        }
    }
}

impl RunSink for Progress<'_> {
    fn record(&mut self, event: &RunEvent) -> Result<(), SinkError> {
        match event {
            RunEvent::StepStarted { step, attempt, .. } => {
                let attempt_note = if *attempt > 1 {
                    format!(" attempt {attempt}")
                } else {
                    String::new()
                };
                match &self.live {
                    Some(live) => {
                        let label = format!("{}{attempt_note}", self.label(step));
                        let mut running = live.running();
                        let n = running.next;
                        running.next += 1;
                        running.order.insert(step.clone(), n);
                        running.steps.insert(
                            n,
                            Spinner {
                                label,
                                started: Instant::now(),
                                bar: None,
                            },
                        );
                    }
                    None if self.verbose => {
                        self.line(&format!("start    {}{attempt_note}", self.label(step)));
                    }
                    None => {}
                }
            }
            RunEvent::StepSucceeded { step, .. } => {
                self.finish(step);
                if self.verbose {
                    self.line(&format!("ok       {}", self.label(step)));
                }
            }
            RunEvent::AttemptFailed {
                step,
                attempt,
                error,
                will_retry: true,
                ..
            } => {
                self.finish(step);
                self.line(&format!(
                    "retry    {} attempt {attempt} failed: {error}",
                    self.label(step)
                ));
            }
            RunEvent::StepFailed { step, error, .. } => {
                self.finish(step);
                self.line(&format!("FAILED   {}: {error}", self.label(step)));
            }
            RunEvent::StepSkipped { step, reason, .. } if self.verbose => {
                self.line(&format!("skipped  {}: {reason}", self.label(step)));
            }
            RunEvent::StepInterrupted { step, .. } => {
                self.finish(step);
                self.line(&format!("stopped  {}: interrupted", self.label(step)));
            }
            RunEvent::UndoStarted { step, .. } => {
                self.line(&format!("undo     {}", self.label(step)));
            }
            RunEvent::UndoFailed { step, error, .. } => {
                self.line(&format!("UNDO FAILED {}: {error}", self.label(step)));
            }
            _ => {}
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        flush();
        Ok(())
    }
}

impl Drop for Progress<'_> {
    fn drop(&mut self) {
        if let Some(mut live) = self.live.take() {
            drop(live.stop.take());
            if let Some(t) = live.ticker.take() {
                let _ = t.join();
            }
            let running = live.running();
            for bar in running
                .steps
                .values()
                .filter_map(|s| s.bar.as_ref())
                .chain(running.more.as_ref())
            {
                bar.finish_and_clear();
            }
            let _ = running.multi.clear();
            drop(running);
            screen().live = None;
        }
        flush();
    }
}
