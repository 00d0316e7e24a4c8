//! One clock for a run: `core.sleep`, `core.wait_until`, backoff, step timeouts, journal
//! timestamps and `run.elapsed_seconds` all on the run's virtual clock, on paused tokio time as a
//! sim run is. No test waits on the wall clock.

use std::sync::Arc;

use drflow_engine::{
    Journal, Outputs, Recorder, RunEvent, RunOptions, RunReport, RunSink, RunStatus, Runbook,
    SharedClock, Stop, VirtualClock, compile, event_name,
};
use drflow_steps::{CloudConfig, registry};
use serde_json::json;
use tokio::sync::watch;

/// Where the virtual clock starts: 2026-01-01T00:00:00Z, in milliseconds.
const BASE_MS: u64 = 1_767_225_600_000;

fn runbook(src: &str) -> Runbook {
    let dir = tempfile::tempdir().unwrap();
    let registry = registry(&CloudConfig::sim(dir.path()));
    compile("clock.yaml", src, &registry).unwrap_or_else(|d| panic!("{}", d.render(&[])))
}

/// Runs `rb` on a fresh virtual clock at [`BASE_MS`], recording into `sink` as well.
async fn run_on_virtual_time(rb: &Runbook, sink: &mut dyn RunSink) -> RunReport {
    let clock: SharedClock = Arc::new(VirtualClock::new(BASE_MS));
    let mut options = RunOptions::new("clock-test");
    options.clock = clock;
    let (_tx, stop) = watch::channel(Stop::No);
    drflow_engine::run(rb, &Outputs::new(), options, sink, stop)
        .await
        .unwrap()
}

async fn run(rb: &Runbook) -> (RunReport, Vec<RunEvent>) {
    let mut rec = Recorder::default();
    let report = run_on_virtual_time(rb, &mut rec).await;
    (report, rec.events())
}

/// Each event's name, step and time in milliseconds since [`BASE_MS`].
fn timeline(events: &[RunEvent]) -> Vec<(String, Option<String>, i64)> {
    events
        .iter()
        .map(|e| {
            let at = e.at();
            (
                event_name(e).to_string(),
                e.step().map(str::to_owned),
                (at * 1000.0).round() as i64 - BASE_MS as i64,
            )
        })
        .collect()
}

/// The time (ms since [`BASE_MS`]) of the first event named `name` about `step`.
fn at(timeline: &[(String, Option<String>, i64)], name: &str, step: &str) -> i64 {
    timeline
        .iter()
        .find(|(n, s, _)| n == name && s.as_deref() == Some(step))
        .unwrap_or_else(|| panic!("no {name} of {step} in {timeline:?}"))
        .2
}

fn step_duration(report: &RunReport, id: &str) -> Option<u64> {
    report
        .steps
        .iter()
        .find(|s| s.id == id)
        .and_then(|s| s.duration_ms)
}

const PARALLEL: &str = r#"runbook: parallel
steps:
  - { id: a, uses: core.sleep, with: { duration: 60s } }
  - { id: b, uses: core.sleep, with: { duration: 60s } }
outputs:
  elapsed: "${{ run.elapsed_seconds }}"
"#;

/// Two parallel 60 s waits take 60 seconds of run time together, not 120, and every run of the
/// same runbook gives the same times: nothing depends on how the tasks interleave.
#[tokio::test(start_paused = true)]
async fn two_parallel_60s_sleeps_take_60_virtual_seconds_every_time() {
    let rb = runbook(PARALLEL);
    let (report, events) = run(&rb).await;
    assert_eq!(report.status, RunStatus::Succeeded);
    assert_eq!(report.outputs["elapsed"], json!(60.0));
    assert_eq!(report.duration_ms, 60_000);
    assert_eq!(step_duration(&report, "a"), Some(60_000));
    assert_eq!(step_duration(&report, "b"), Some(60_000));
    let first = timeline(&events);
    assert_eq!(at(&first, "step_succeeded", "a"), 60_000);
    assert_eq!(at(&first, "step_succeeded", "b"), 60_000);
    for _ in 0..5 {
        let (again, events) = run(&rb).await;
        assert_eq!(again.outputs, report.outputs);
        assert_eq!(timeline(&events), first);
    }
}

const BACKOFF: &str = r#"runbook: backoff
steps:
  - id: flaky
    uses: core.fail
    with: { message: not yet, retryable: true, succeed_after: 3 }
    retry: { attempts: 4, backoff: 30s, max_backoff: 30s }
outputs:
  elapsed: "${{ run.elapsed_seconds }}"
"#;

/// A backoff is run time: the run's clock moves by exactly the waits drawn between attempts
/// (each at most 30 s, with full jitter), on paused time that costs no wall time.
#[tokio::test(start_paused = true)]
async fn a_30s_retry_backoff_moves_run_time_by_the_wait() {
    let rb = runbook(BACKOFF);
    let (report, events) = run(&rb).await;
    assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");
    let t = timeline(&events);
    // The waits between each failed attempt and the next start.
    let failed: Vec<i64> = t
        .iter()
        .filter(|(n, _, _)| n == "attempt_failed")
        .map(|e| e.2)
        .collect();
    let started: Vec<i64> = t
        .iter()
        .filter(|(n, _, _)| n == "step_started")
        .map(|e| e.2)
        .collect();
    assert_eq!((failed.len(), started.len()), (3, 4), "{t:?}");
    let waits: Vec<i64> = failed
        .iter()
        .zip(&started[1..])
        .map(|(f, s)| s - f)
        .collect();
    assert!(waits.iter().all(|w| (0..=30_000).contains(w)), "{waits:?}");
    // Three independent waits of up to 30 s: all three under a millisecond is as likely as
    // 1 in 27e12.
    let total: i64 = waits.iter().sum();
    assert!(total > 0, "{waits:?}");
    assert_eq!(report.duration_ms as i64, total, "{t:?}");
    assert_eq!(report.outputs["elapsed"], json!(total as f64 / 1000.0));
}

const TIMEOUT: &str = r#"runbook: timeout
steps:
  - id: wait
    uses: core.wait_until
    with: { condition: false, interval: 1m, timeout: 1h }
    timeout: 10m
"#;

/// A step's timeout counts the virtual time spent in its wait: a `core.wait_until` that would
/// poll for an hour is cut at its step timeout of 10 minutes of run time.
#[tokio::test(start_paused = true)]
async fn a_step_timeout_counts_virtual_time_spent_in_a_wait() {
    let rb = runbook(TIMEOUT);
    let (report, events) = run(&rb).await;
    assert_eq!(report.status, RunStatus::Failed);
    let step = &report.steps[0];
    let error = step.error.as_ref().expect("an error");
    assert_eq!(error.kind, "timeout");
    assert!(error.message.contains("timeout of 10m"), "{error}");
    assert_eq!(step.duration_ms, Some(600_000));
    let t = timeline(&events);
    assert_eq!(at(&t, "step_started", "wait"), 0);
    assert_eq!(at(&t, "step_failed", "wait"), 600_000);
}

const WAIT_UNTIL: &str = r#"runbook: wait_until
steps:
  - id: wait
    uses: core.wait_until
    with: { condition: "${{ run.elapsed_seconds >= 95 }}", interval: 30s, timeout: 5m }
outputs:
  waited: "${{ steps.wait.outputs.waited_seconds }}"
  checks: "${{ steps.wait.outputs.checks }}"
"#;

/// `core.wait_until` waits and measures on the run's clock, and its condition sees
/// `run.elapsed_seconds` move with it.
#[tokio::test(start_paused = true)]
async fn wait_until_measures_and_waits_on_the_run_clock() {
    let rb = runbook(WAIT_UNTIL);
    let (report, _) = run(&rb).await;
    assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");
    // Checks at 0, 30, 60, 90 and 120 s: true at the fifth.
    assert_eq!(report.outputs["checks"], json!(5));
    assert_eq!(report.outputs["waited"], json!(120.0));
}

/// A sim run's journal is on virtual time: the run starts at the clock's start and ends 90
/// virtual seconds later, whatever the wall clock says.
#[tokio::test(start_paused = true)]
async fn the_journal_of_a_run_on_virtual_time_has_virtual_timestamps() {
    let rb = runbook(
        "runbook: journaled\nsteps:\n  - { id: nap, uses: core.sleep, with: { duration: 90s } }\n",
    );
    let dir = tempfile::tempdir().unwrap();
    let mut journal = Journal::open_in(dir.path()).unwrap();
    let report = run_on_virtual_time(&rb, &mut journal).await;
    assert_eq!(report.status, RunStatus::Succeeded);
    let events = journal.events("clock-test").unwrap();
    let t = timeline(&events);
    assert_eq!(
        t.first().map(|e| (e.0.as_str(), e.2)),
        Some(("run_started", 0))
    );
    assert_eq!(at(&t, "step_started", "nap"), 0);
    assert_eq!(at(&t, "step_succeeded", "nap"), 90_000);
    assert_eq!(
        t.last().map(|e| (e.0.as_str(), e.2)),
        Some(("run_finished", 90_000))
    );
    let runs = journal.list_runs().unwrap();
    let base = BASE_MS as f64 / 1000.0;
    assert_eq!(runs[0].started_at, base);
    assert_eq!(runs[0].finished_at, Some(base + 90.0));
}
