//! The scheduler's behaviour, on paused tokio time: parallelism, failure propagation, `if`,
//! `always`, `continue_on_error`, retries, timeouts and interruption; and a property test over
//! random DAGs.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use drflow_engine::{
    Outputs, Recorder, Registry, RunEvent, RunOptions, RunReport, RunStatus, Runbook, StepContext,
    StepError, StepFuture, StepSpec, StepStatus, StepType, Stop, ValueType, compile,
};
use proptest::prelude::*;
use serde_json::{Value, json};
use tokio::sync::watch;

/// (step id, "start" or "end", milliseconds of virtual time since the harness was made).
type Log = Arc<Mutex<Vec<(String, &'static str, u128)>>>;

/// A step that records when it starts and ends, waits `ms` of (virtual) time, and fails as told.
struct Probe {
    spec: StepSpec,
    log: Log,
    running: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
    start: tokio::time::Instant,
}

impl StepType for Probe {
    fn spec(&self) -> &StepSpec {
        &self.spec
    }

    fn run<'a>(&'a self, ctx: &'a StepContext, input: &'a Outputs) -> StepFuture<'a> {
        Box::pin(async move {
            // What earlier attempts wrote, read before this one writes its own.
            let notes_seen = ctx.notes.clone();
            if let Some(note) = input.get("note").filter(|n| !n.is_null()) {
                ctx.note(note.clone()).await?;
            }
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.peak.fetch_max(now, Ordering::SeqCst);
            let at = || self.start.elapsed().as_millis();
            self.log
                .lock()
                .unwrap()
                .push((ctx.step_id.clone(), "start", at()));
            let ms = input.get("ms").and_then(Value::as_u64).unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            self.running.fetch_sub(1, Ordering::SeqCst);
            self.log
                .lock()
                .unwrap()
                .push((ctx.step_id.clone(), "end", at()));
            let fail_until = input.get("fail_until").and_then(Value::as_u64).unwrap_or(0);
            if u64::from(ctx.attempt) <= fail_until {
                let kind = input
                    .get("kind")
                    .and_then(Value::as_str)
                    .unwrap_or("flaky")
                    .to_string();
                let retryable = input
                    .get("retryable")
                    .and_then(Value::as_bool)
                    .unwrap_or(true);
                return Err(StepError {
                    kind,
                    message: "probe failed".into(),
                    retryable,
                });
            }
            let mut out = Outputs::new();
            out.insert("attempt".into(), ctx.attempt.into());
            out.insert("notes_seen".into(), Value::Array(notes_seen));
            out.insert(
                "value".into(),
                input.get("value").cloned().unwrap_or(Value::Null),
            );
            Ok(out)
        })
    }
}

struct Harness {
    registry: Registry,
    log: Log,
    peak: Arc<AtomicUsize>,
}

fn harness() -> Harness {
    let log = Arc::new(Mutex::new(Vec::new()));
    let peak = Arc::new(AtomicUsize::new(0));
    let probe = Probe {
        spec: StepSpec::new("test.probe", "records its run")
            .optional("ms", ValueType::Int, json!(0), "how long to take")
            .optional(
                "fail_until",
                ValueType::Int,
                json!(0),
                "fail attempts up to this one",
            )
            .optional("kind", ValueType::String, Value::Null, "error kind")
            .optional("retryable", ValueType::Bool, Value::Null, "error retryable")
            .optional(
                "note",
                ValueType::Any,
                Value::Null,
                "written ahead into the journal",
            )
            .optional(
                "value",
                ValueType::Any,
                Value::Null,
                "echoed as output `value`",
            )
            .output("attempt", ValueType::Int, "the attempt that succeeded")
            .output("notes_seen", ValueType::List, "what earlier attempts noted")
            .output("value", ValueType::Any, "the input `value`"),
        log: log.clone(),
        running: Arc::new(AtomicUsize::new(0)),
        peak: peak.clone(),
        start: tokio::time::Instant::now(),
    };
    let bounded = Probe {
        spec: StepSpec::new("test.bounded", "a step whose input is bounded")
            .required("n", ValueType::Int, "at most 10")
            .at_most(10.0)
            .optional("m", ValueType::Int, json!(0), "at most n")
            .rule("m is at most n.", &["n", "m"], |i| {
                if i["m"].as_i64() > i["n"].as_i64() {
                    // Quotes the values, as real rules do (two CIDRs that overlap).
                    Err(drflow_engine::RuleViolation::at(
                        "m",
                        format!("m ({}) is more than n ({})", i["m"], i["n"]),
                    ))
                } else {
                    Ok(())
                }
            }),
        log: log.clone(),
        running: Arc::new(AtomicUsize::new(0)),
        peak: peak.clone(),
        start: tokio::time::Instant::now(),
    };
    let mut registry = Registry::new();
    registry.register(Arc::new(probe));
    registry.register(Arc::new(bounded));
    Harness {
        registry,
        log,
        peak,
    }
}

fn compile_ok(h: &Harness, src: &str) -> Runbook {
    match compile("test.yaml", src, &h.registry) {
        Ok(rb) => rb,
        Err(d) => panic!("{}", d.render(&[("test.yaml", src)])),
    }
}

async fn run_with(
    rb: &Runbook,
    options: RunOptions,
    stop: watch::Receiver<Stop>,
) -> (RunReport, Vec<RunEvent>) {
    let mut rec = Recorder::default();
    let report = drflow_engine::run(rb, &Outputs::new(), options, &mut rec, stop)
        .await
        .unwrap();
    (report, rec.events())
}

async fn run(rb: &Runbook) -> (RunReport, Vec<RunEvent>) {
    let (_tx, rx) = watch::channel(Stop::No);
    run_with(rb, RunOptions::new("test-run"), rx).await
}

fn status(r: &RunReport, id: &str) -> StepStatus {
    r.steps.iter().find(|s| s.id == id).unwrap().status
}

#[tokio::test(start_paused = true)]
async fn independent_steps_run_in_parallel_and_needs_wait() {
    let h = harness();
    let rb = compile_ok(
        &h,
        r#"
runbook: t
steps:
  - { id: a, uses: test.probe, with: { ms: 1000 } }
  - { id: b, uses: test.probe, with: { ms: 1000 } }
  - { id: c, uses: test.probe, needs: [a, b], with: { ms: 10 } }
"#,
    );
    let start = tokio::time::Instant::now();
    let (report, _) = run(&rb).await;
    assert_eq!(report.status, RunStatus::Succeeded);
    // a and b overlap: 1 s for both, not 2 s.
    assert!(
        start.elapsed() < Duration::from_millis(1100),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(h.peak.load(Ordering::SeqCst), 2);
    let log = h.log.lock().unwrap();
    let c_start = log.iter().find(|e| e.0 == "c" && e.1 == "start").unwrap().2;
    assert!(c_start >= 1000);
}

#[tokio::test(start_paused = true)]
async fn a_failure_skips_dependants_but_not_always_steps_or_others() {
    let h = harness();
    let rb = compile_ok(
        &h,
        r#"
runbook: t
steps:
  - { id: bad, uses: test.probe, with: { fail_until: 1, retryable: false } }
  - { id: after, uses: test.probe, needs: [bad] }
  - { id: after_after, uses: test.probe, needs: [after] }
  - { id: notify, uses: test.probe, needs: [after_after], if: always }
  - { id: other, uses: test.probe }
  - { id: soft, uses: test.probe, continue_on_error: true, with: { fail_until: 1, retryable: false } }
  - { id: after_soft, uses: test.probe, needs: [soft] }
"#,
    );
    let (report, events) = run(&rb).await;
    assert_eq!(report.status, RunStatus::Failed);
    assert_eq!(status(&report, "bad"), StepStatus::Failed);
    assert_eq!(status(&report, "after"), StepStatus::Skipped);
    assert_eq!(status(&report, "after_after"), StepStatus::Skipped);
    assert_eq!(status(&report, "notify"), StepStatus::Succeeded);
    assert_eq!(status(&report, "other"), StepStatus::Succeeded);
    assert_eq!(status(&report, "soft"), StepStatus::Failed);
    assert_eq!(status(&report, "after_soft"), StepStatus::Succeeded);
    let reason = events.iter().find_map(|e| match e {
        RunEvent::StepSkipped { step, reason, .. } if step == "after" => Some(reason.clone()),
        _ => None,
    });
    assert_eq!(reason.as_deref(), Some("it needs `bad`, which failed"));
}

#[tokio::test(start_paused = true)]
async fn continue_on_error_alone_leaves_the_run_successful() {
    let h = harness();
    let rb = compile_ok(
        &h,
        r#"
runbook: t
steps:
  - { id: soft, uses: test.probe, continue_on_error: true, with: { fail_until: 1, retryable: false } }
"#,
    );
    assert_eq!(run(&rb).await.0.status, RunStatus::Succeeded);
}

#[tokio::test(start_paused = true)]
async fn a_false_condition_skips_the_step_and_lets_dependants_run() {
    let h = harness();
    let rb = compile_ok(
        &h,
        r#"
runbook: t
params:
  switchover: { type: bool, default: false }
steps:
  - { id: check, uses: test.probe, with: { value: 42 } }
  - id: planned
    uses: test.probe
    needs: [check]
    if: ${{ params.switchover }}
  - id: forced
    uses: test.probe
    needs: [check]
    if: steps.check.outputs.value == 42 and not params.switchover
  - { id: dns, uses: test.probe, needs: [planned, forced], with: { value: "${{ steps.planned.status }}/${{ steps.forced.status }}" } }
outputs:
  dns: ${{ steps.dns.outputs.value }}
"#,
    );
    let mut rec = Recorder::default();
    let (_tx, rx) = watch::channel(Stop::No);
    let mut params = Outputs::new();
    params.insert("switchover".into(), json!(false));
    let report = drflow_engine::run(&rb, &params, RunOptions::new("r"), &mut rec, rx)
        .await
        .unwrap();
    assert_eq!(status(&report, "planned"), StepStatus::Skipped);
    assert_eq!(status(&report, "forced"), StepStatus::Succeeded);
    assert_eq!(report.outputs["dns"], "skipped/succeeded");
}

/// The issue's example: a step that pages on-call when `switchover` failed used to be skipped
/// without its condition being read.
#[tokio::test(start_paused = true)]
async fn a_condition_on_a_failed_status_runs_after_the_failure_and_the_run_still_fails() {
    let h = harness();
    let rb = compile_ok(
        &h,
        r#"
runbook: t
steps:
  - { id: promote, uses: test.probe, with: { ms: 100 } }
  - { id: switchover, uses: test.probe, needs: [promote], with: { ms: 100, fail_until: 1, retryable: false } }
  - id: page_oncall
    uses: test.probe
    needs: [switchover]
    if: ${{ steps.switchover.status == 'failed' }}
  - { id: after_page, uses: test.probe, needs: [page_oncall] }
  - id: celebrate
    uses: test.probe
    needs: [switchover]
    if: ${{ steps.switchover.status == 'succeeded' }}
  - { id: after_celebrate, uses: test.probe, needs: [celebrate] }
  - { id: plain, uses: test.probe, needs: [switchover], if: "${{ 1 == 1 }}" }
  - id: transitive
    uses: test.probe
    needs: [plain]
    if: ${{ steps.switchover.status != 'succeeded' }}
"#,
    );
    let (report, events) = run(&rb).await;
    // The failure is still the run's outcome (exit 1).
    assert_eq!(report.status, RunStatus::Failed);
    assert_eq!(status(&report, "switchover"), StepStatus::Failed);
    assert_eq!(status(&report, "page_oncall"), StepStatus::Succeeded);
    // A dependant of a step that ran is free to run, as after an `always` step.
    assert_eq!(status(&report, "after_page"), StepStatus::Succeeded);
    // Its condition was read, and was false: skipped for that reason, and the failure upstream
    // still skips what comes after.
    assert_eq!(status(&report, "celebrate"), StepStatus::Skipped);
    let reason = |id: &str| {
        events.iter().find_map(|e| match e {
            RunEvent::StepSkipped { step, reason, .. } if step == id => Some(reason.clone()),
            _ => None,
        })
    };
    assert_eq!(
        reason("celebrate").as_deref(),
        Some("its `if` condition was false")
    );
    assert_eq!(status(&report, "after_celebrate"), StepStatus::Skipped);
    assert_eq!(
        reason("after_celebrate").as_deref(),
        Some("it needs `celebrate`, which was skipped after a failure")
    );
    // A condition that reads no status is not read after a failure.
    assert_eq!(status(&report, "plain"), StepStatus::Skipped);
    assert_eq!(
        reason("plain").as_deref(),
        Some("it needs `switchover`, which failed")
    );
    // The status read may be of a step reached through `needs`.
    assert_eq!(status(&report, "transitive"), StepStatus::Succeeded);
    // The journal's transition table accepts the history.
    let ids: Vec<String> = rb.steps.iter().map(|s| s.id.clone()).collect();
    let state = drflow_engine::RunState::replay_checked(&events, ids).unwrap();
    assert_eq!(state.status, RunStatus::Failed);
}

#[tokio::test(start_paused = true)]
async fn a_condition_on_a_status_is_false_when_all_went_well() {
    let h = harness();
    let rb = compile_ok(
        &h,
        r#"
runbook: t
steps:
  - { id: switchover, uses: test.probe }
  - id: page_oncall
    uses: test.probe
    needs: [switchover]
    if: ${{ steps.switchover.status == 'failed' }}
  - { id: after_page, uses: test.probe, needs: [page_oncall] }
"#,
    );
    let (report, _) = run(&rb).await;
    assert_eq!(report.status, RunStatus::Succeeded);
    assert_eq!(status(&report, "page_oncall"), StepStatus::Skipped);
    assert_eq!(status(&report, "after_page"), StepStatus::Succeeded);
}

/// `"False"` used to count as true: every string but `false` and the empty one did.
#[tokio::test(start_paused = true)]
async fn an_if_that_gives_anything_but_a_bool_fails_the_step() {
    let h = harness();
    let rb = compile_ok(
        &h,
        r#"
runbook: t
steps:
  - { id: flags, uses: test.probe, with: { value: "False" } }
  - id: promote
    uses: test.probe
    needs: [flags]
    if: ${{ steps.flags.outputs.value }}
  - { id: after, uses: test.probe, needs: [promote] }
  - { id: lag, uses: test.probe, with: { value: "30000" } }
  - id: budget
    uses: test.probe
    needs: [lag]
    if: ${{ steps.lag.outputs.value < 45000 }}
"#,
    );
    let (report, _) = run(&rb).await;
    assert_eq!(report.status, RunStatus::Failed);
    let step = |id: &str| report.steps.iter().find(|s| s.id == id).unwrap();
    assert_eq!(step("promote").status, StepStatus::Failed);
    assert_eq!(step("promote").attempts, 0, "it never started");
    let err = step("promote").error.clone().unwrap();
    assert_eq!(err.kind, "invalid_input");
    assert!(
        err.message.contains("gave a string, not true or false"),
        "{err}"
    );
    assert!(
        !err.message.contains("False"),
        "the value is not shown: {err}"
    );
    assert_eq!(step("after").status, StepStatus::Skipped);
    let err = step("budget").error.clone().unwrap();
    assert_eq!(err.kind, "invalid_input");
    assert!(
        err.message
            .contains("`steps.lag.outputs.value` is a string and `45000` is a number"),
        "{err}"
    );
    assert!(
        h.log
            .lock()
            .unwrap()
            .iter()
            .all(|(id, _, _)| id != "promote" && id != "budget"),
        "neither ran"
    );
}

#[test]
fn an_if_is_one_expression_and_spaces_around_it_do_not_count() {
    let h = harness();
    let src = |cond: &str| {
        format!(
            "runbook: t\nparams:\n  a: {{ type: bool, default: false }}\n  b: {{ type: bool, default: false }}\nsteps:\n  - id: s\n    uses: test.probe\n    if: \"{cond}\"\n"
        )
    };
    assert!(compile("t.yaml", &src(" ${{ params.a }} "), &h.registry).is_ok());
    let err = compile(
        "t.yaml",
        &src("${{ params.a }} and ${{ params.b }}"),
        &h.registry,
    )
    .unwrap_err();
    assert_eq!(err.0.len(), 1, "{err:?}");
    assert!(
        err.0[0]
            .message
            .contains("makes a string, not true or false")
    );
    assert_eq!(
        err.0[0].hint.as_deref(),
        Some("write the whole condition inside one `${{ }}`: `if: ${{ params.a and params.b }}`")
    );
}

/// A note is journaled before the attempt goes on, and the next attempt of the step (a retry
/// here, a resumed run through `Prior::notes`) is handed every note written before it.
#[tokio::test(start_paused = true)]
async fn a_note_is_journaled_ahead_and_handed_to_the_next_attempt() {
    let h = harness();
    let rb = compile_ok(
        &h,
        r#"
runbook: t
steps:
  - id: maker
    uses: test.probe
    with: { note: { creating: route-1 }, ms: 1000, fail_until: 1 }
    retry: { attempts: 2, backoff: 1s }
"#,
    );
    let (report, events) = run(&rb).await;
    assert_eq!(status(&report, "maker"), StepStatus::Succeeded);
    let outputs = report.steps[0].outputs.as_ref().unwrap();
    assert_eq!(outputs["attempt"], 2);
    assert_eq!(outputs["notes_seen"], json!([{"creating": "route-1"}]));
    let order: Vec<String> = events
        .iter()
        .filter(|e| e.step() == Some("maker"))
        .map(|e| drflow_engine::event_name(e).to_string())
        .collect();
    assert_eq!(
        order,
        [
            "step_started",
            "step_noted",
            "attempt_failed",
            "step_started",
            "step_noted",
            "step_succeeded"
        ]
    );
    let state = drflow_engine::RunState::replay(&events).unwrap();
    assert_eq!(state.step("maker").unwrap().notes.len(), 2);

    // A resumed run: the notes come from the journal.
    let mut options = RunOptions::new("test-run-2");
    options.prior = Some(drflow_engine::Prior {
        notes: [("maker".to_string(), vec![json!({"creating": "route-0"})])].into(),
        ..Default::default()
    });
    let (_tx, rx) = watch::channel(Stop::No);
    let (report, _) = run_with(&rb, options, rx).await;
    let outputs = report.steps[0].outputs.as_ref().unwrap();
    assert_eq!(
        outputs["notes_seen"],
        json!([{"creating": "route-0"}, {"creating": "route-1"}])
    );
}

#[tokio::test(start_paused = true)]
async fn retries_only_retryable_errors_or_listed_kinds() {
    let h = harness();
    let rb = compile_ok(
        &h,
        r#"
runbook: t
steps:
  - id: flaky
    uses: test.probe
    with: { fail_until: 2 }
    retry: { attempts: 3, backoff: 1s, max_backoff: 4s }
  - id: permanent
    uses: test.probe
    with: { fail_until: 1, retryable: false }
    retry: { attempts: 3, backoff: 1s }
  - id: listed
    uses: test.probe
    with: { fail_until: 1, retryable: false, kind: throttled }
    retry: { attempts: 2, backoff: 1s, on: [throttled] }
  - id: exhausted
    uses: test.probe
    with: { fail_until: 5 }
    retry: { attempts: 2, backoff: 1s }
"#,
    );
    let (report, events) = run(&rb).await;
    let attempts = |id: &str| report.steps.iter().find(|s| s.id == id).unwrap().attempts;
    assert_eq!(
        (status(&report, "flaky"), attempts("flaky")),
        (StepStatus::Succeeded, 3)
    );
    assert_eq!(
        (status(&report, "permanent"), attempts("permanent")),
        (StepStatus::Failed, 1)
    );
    assert_eq!(
        (status(&report, "listed"), attempts("listed")),
        (StepStatus::Succeeded, 2)
    );
    assert_eq!(
        (status(&report, "exhausted"), attempts("exhausted")),
        (StepStatus::Failed, 2)
    );
    assert_eq!(report.steps[0].outputs.as_ref().unwrap()["attempt"], 3);
    let retry_flags: Vec<bool> = events
        .iter()
        .filter_map(|e| match e {
            RunEvent::AttemptFailed {
                step, will_retry, ..
            } if step == "exhausted" => Some(*will_retry),
            _ => None,
        })
        .collect();
    assert_eq!(retry_flags, vec![true, false]);
}

#[tokio::test(start_paused = true)]
async fn a_step_timeout_fails_the_attempt_and_a_run_timeout_stops_the_run() {
    let h = harness();
    let rb = compile_ok(
        &h,
        r#"
runbook: t
steps:
  - { id: slow, uses: test.probe, timeout: 5s, with: { ms: 60000 } }
"#,
    );
    let (report, _) = run(&rb).await;
    assert_eq!(status(&report, "slow"), StepStatus::Failed);
    assert_eq!(report.steps[0].error.as_ref().unwrap().kind, "timeout");

    let rb = compile_ok(
        &h,
        r#"
runbook: t
steps:
  - { id: slow, uses: test.probe, with: { ms: 60000 } }
  - { id: after, uses: test.probe, needs: [slow] }
"#,
    );
    let (_tx, rx) = watch::channel(Stop::No);
    let mut options = RunOptions::new("r");
    options.timeout = Some(Duration::from_secs(10));
    options.grace = Duration::from_secs(1);
    let start = tokio::time::Instant::now();
    let (report, _) = run_with(&rb, options, rx).await;
    assert!(start.elapsed() <= Duration::from_secs(12));
    assert_eq!(report.status, RunStatus::Failed);
    assert_eq!(status(&report, "slow"), StepStatus::Interrupted);
    assert_eq!(status(&report, "after"), StepStatus::NotStarted);
    assert!(report.errors[0].contains("timeout"), "{:?}", report.errors);
}

/// `drflow run b.yaml --timeout 1` with one 1 s step ended "failed … 1 succeeded, 0 failed" and
/// said running steps were cancelled, though none were.
#[tokio::test(start_paused = true)]
async fn a_step_ending_exactly_at_the_run_timeout_does_not_fail_the_run() {
    let h = harness();
    let timed = |ms: u64| {
        let rb = compile_ok(
            &h,
            &format!(
                "runbook: t\nsteps:\n  - {{ id: s, uses: test.probe, with: {{ ms: {ms} }} }}\n"
            ),
        );
        async move {
            let (_tx, rx) = watch::channel(Stop::No);
            let mut options = RunOptions::new("r");
            options.timeout = Some(Duration::from_secs(1));
            run_with(&rb, options, rx).await
        }
    };
    for ms in [999, 1000] {
        let (report, events) = timed(ms).await;
        assert_eq!(
            report.status,
            RunStatus::Succeeded,
            "{ms} ms: {:?}",
            report.errors
        );
        assert_eq!(status(&report, "s"), StepStatus::Succeeded, "{ms} ms");
        assert!(report.errors.is_empty(), "{ms} ms: {:?}", report.errors);
        assert!(
            !events
                .iter()
                .any(|e| matches!(e, RunEvent::StepInterrupted { .. })),
            "{ms} ms: {events:?}"
        );
    }
    // A millisecond late, the step is cancelled and the run fails by the timeout.
    let (report, _) = timed(1001).await;
    assert_eq!(report.status, RunStatus::Failed);
    assert_eq!(status(&report, "s"), StepStatus::Interrupted);
    assert!(
        report.errors[0].contains("timeout of 1.0s was reached; running steps were cancelled"),
        "{:?}",
        report.errors
    );
}

/// At the exact deadline with a step still to start, the timeout does stop the run, but says
/// what it stopped: no step was running.
#[tokio::test(start_paused = true)]
async fn a_timeout_between_two_steps_says_none_was_cancelled() {
    let h = harness();
    let rb = compile_ok(
        &h,
        r#"
runbook: t
steps:
  - { id: first, uses: test.probe, with: { ms: 1000 } }
  - { id: second, uses: test.probe, needs: [first], with: { ms: 1000 } }
"#,
    );
    let (_tx, rx) = watch::channel(Stop::No);
    let mut options = RunOptions::new("r");
    options.timeout = Some(Duration::from_secs(1));
    let (report, events) = run_with(&rb, options, rx).await;
    assert_eq!(report.status, RunStatus::Failed);
    assert_eq!(status(&report, "first"), StepStatus::Succeeded);
    assert_eq!(status(&report, "second"), StepStatus::NotStarted);
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, RunEvent::StepInterrupted { .. })),
        "{events:?}"
    );
    assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
    assert!(
        report.errors[0].contains("timeout of 1.0s was reached"),
        "{:?}",
        report.errors
    );
    assert!(
        !report.errors[0].contains("cancelled"),
        "{:?}",
        report.errors
    );
}

#[tokio::test(start_paused = true)]
async fn a_graceful_stop_lets_running_steps_finish_within_the_grace_period() {
    let h = harness();
    let rb = compile_ok(
        &h,
        r#"
runbook: t
steps:
  - { id: quick, uses: test.probe, with: { ms: 2000 } }
  - { id: long, uses: test.probe, with: { ms: 60000 } }
  - { id: next, uses: test.probe, needs: [quick] }
"#,
    );
    let (tx, rx) = watch::channel(Stop::No);
    let mut options = RunOptions::new("r");
    options.grace = Duration::from_secs(5);
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        tx.send(Stop::Graceful).unwrap();
        std::future::pending::<()>().await;
    });
    let (report, events) = run_with(&rb, options, rx).await;
    assert_eq!(report.status, RunStatus::Interrupted);
    assert_eq!(status(&report, "quick"), StepStatus::Succeeded);
    assert_eq!(status(&report, "long"), StepStatus::Interrupted);
    assert_eq!(status(&report, "next"), StepStatus::NotStarted);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, RunEvent::StepInterrupted { step, .. } if step == "long"))
    );
    assert!(matches!(
        events.last(),
        Some(RunEvent::RunFinished {
            status: RunStatus::Interrupted,
            ..
        })
    ));
}

#[tokio::test(start_paused = true)]
async fn outputs_keep_their_types_and_reach_dependants() {
    let h = harness();
    let rb = compile_ok(
        &h,
        r#"
runbook: t
steps:
  - { id: a, uses: test.probe, with: { value: { lag_ms: 120, healthy: true } } }
  - id: b
    uses: test.probe
    needs: [a]
    with: { value: "${{ steps.a.outputs.value.lag_ms < 30000 and steps.a.outputs.value.healthy }}" }
outputs:
  ok: ${{ steps.b.outputs.value }}
  lag: ${{ steps.a.outputs.value.lag_ms }}
  text: "lag ${{ steps.a.outputs.value.lag_ms }} ms"
"#,
    );
    let (report, _) = run(&rb).await;
    assert_eq!(report.outputs["ok"], json!(true));
    assert_eq!(report.outputs["lag"], json!(120));
    assert_eq!(report.outputs["text"], json!("lag 120 ms"));
}

#[tokio::test(start_paused = true)]
async fn an_expression_that_fails_at_run_time_fails_its_step_clearly() {
    let h = harness();
    let rb = compile_ok(
        &h,
        r#"
runbook: t
steps:
  - { id: a, uses: test.probe, with: { value: { x: 1 } } }
  - { id: b, uses: test.probe, needs: [a], with: { ms: "${{ steps.a.outputs.value.missing }}" } }
  - { id: c, uses: test.probe, needs: [a], with: { ms: "${{ steps.a.outputs.value }}" } }
"#,
    );
    let (report, _) = run(&rb).await;
    let err = |id: &str| {
        report
            .steps
            .iter()
            .find(|s| s.id == id)
            .unwrap()
            .error
            .clone()
            .unwrap()
    };
    assert_eq!(err("b").kind, "invalid_input");
    assert!(
        err("b").message.contains("does not exist"),
        "{}",
        err("b").message
    );
    assert!(
        err("c").message.contains("must be an int"),
        "{}",
        err("c").message
    );
}

/// A random DAG: step `i` may need any steps before it, so the graph is acyclic.
fn dag_strategy() -> impl Strategy<Value = (Vec<Vec<usize>>, Vec<u64>, usize)> {
    (1usize..40).prop_flat_map(|n| {
        let needs = (0..n)
            .map(|i| {
                proptest::collection::vec(0..i.max(1), 0..=i.min(4))
                    .prop_map(move |v| if i == 0 { vec![] } else { v })
            })
            .collect::<Vec<_>>();
        (needs, proptest::collection::vec(0u64..50, n), 1usize..6)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    /// Every step runs exactly once, never before the steps it needs, and never more than
    /// `--max-parallel` at once.
    #[test]
    fn random_dags_respect_needs_and_the_parallelism_bound((needs, ms, max_parallel) in dag_strategy()) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
        rt.block_on(async {
            let h = harness();
            let mut src = String::from("runbook: random\nsteps:\n");
            for (i, ns) in needs.iter().enumerate() {
                let mut ns: Vec<String> = ns.iter().map(|n| format!("s{n}")).collect();
                ns.sort();
                ns.dedup();
                src.push_str(&format!("  - {{ id: s{i}, uses: test.probe, needs: [{}], with: {{ ms: {} }} }}\n", ns.join(", "), ms[i]));
            }
            let rb = compile_ok(&h, &src);
            let (_tx, rx) = watch::channel(Stop::No);
            let mut options = RunOptions::new("p");
            options.max_parallel = Some(max_parallel);
            let (report, _) = run_with(&rb, options, rx).await;
            prop_assert_eq!(report.status, RunStatus::Succeeded);
            let log = h.log.lock().unwrap().clone();
            for (i, ns) in needs.iter().enumerate() {
                let id = format!("s{i}");
                let starts: Vec<u128> = log.iter().filter(|e| e.0 == id && e.1 == "start").map(|e| e.2).collect();
                prop_assert_eq!(starts.len(), 1, "{} ran {} times", id, starts.len());
                for n in ns {
                    let dep = format!("s{n}");
                    let end = log.iter().find(|e| e.0 == dep && e.1 == "end").map(|e| e.2).unwrap();
                    let start_pos = log.iter().position(|e| e.0 == id && e.1 == "start").unwrap();
                    let end_pos = log.iter().position(|e| e.0 == dep && e.1 == "end").unwrap();
                    prop_assert!(end <= starts[0] && end_pos < start_pos, "{} started before {} ended", id, dep);
                }
            }
            prop_assert!(h.peak.load(Ordering::SeqCst) <= max_parallel);
            Ok(())
        })?;
    }
}

/// A step that finishes without waiting and, as step `s50`, asks the run to stop.
struct StopAt50 {
    spec: StepSpec,
    stop: watch::Sender<Stop>,
}

impl StepType for StopAt50 {
    fn spec(&self) -> &StepSpec {
        &self.spec
    }

    fn run<'a>(&'a self, ctx: &'a StepContext, _input: &'a Outputs) -> StepFuture<'a> {
        Box::pin(async move {
            if ctx.step_id == "s50" {
                let _ = self.stop.send(Stop::Graceful);
            }
            Ok(Outputs::new())
        })
    }
}

/// Regression: steps that finish on their first poll never made the coordinator wait, so a long
/// run of them (a whole provision on the simulated cloud) ignored Ctrl-C and `--timeout`.
#[tokio::test]
async fn a_chain_of_instant_steps_still_obeys_a_stop_request() {
    let (tx, rx) = watch::channel(Stop::No);
    let mut registry = Registry::new();
    registry.register(Arc::new(StopAt50 {
        spec: StepSpec::new("test.instant", "finishes at once"),
        stop: tx,
    }));
    let mut src = String::from("runbook: instant\nsteps:\n  - { id: s0, uses: test.instant }\n");
    for i in 1..200 {
        src.push_str(&format!(
            "  - {{ id: s{i}, uses: test.instant, needs: [s{}] }}\n",
            i - 1
        ));
    }
    let rb = compile("test.yaml", &src, &registry).unwrap();
    let (report, _) = run_with(&rb, RunOptions::new("r"), rx).await;
    assert_eq!(report.status, RunStatus::Interrupted);
    assert_eq!(status(&report, "s50"), StepStatus::Succeeded);
    assert_eq!(status(&report, "s52"), StepStatus::NotStarted);
    assert_eq!(status(&report, "s199"), StepStatus::NotStarted);
}

/// Regression: a retry whose backoff was over started at once, even with `--max-parallel`
/// reached by other steps.
#[tokio::test(start_paused = true)]
async fn retries_stay_within_the_parallelism_bound() {
    let h = harness();
    let rb = compile_ok(
        &h,
        r#"
runbook: t
steps:
  - { id: flaky, uses: test.probe, with: { fail_until: 2 }, retry: { attempts: 3, backoff: 10ms } }
  - { id: long, uses: test.probe, with: { ms: 2000 } }
  - { id: other, uses: test.probe, with: { ms: 500 } }
"#,
    );
    let (_tx, rx) = watch::channel(Stop::No);
    let mut options = RunOptions::new("r");
    options.max_parallel = Some(1);
    let (report, _) = run_with(&rb, options, rx).await;
    assert_eq!(report.status, RunStatus::Succeeded);
    assert_eq!(h.peak.load(Ordering::SeqCst), 1);
}

/// Regression: a stop with nothing running but a retry waiting out its backoff waited the
/// whole grace period.
#[tokio::test(start_paused = true)]
async fn a_stop_during_a_backoff_ends_the_run_at_once() {
    let h = harness();
    let rb = compile_ok(
        &h,
        r#"
runbook: t
steps:
  - { id: flaky, uses: test.probe, with: { fail_until: 5 }, retry: { attempts: 5, backoff: 1m, max_backoff: 1m } }
"#,
    );
    let (tx, rx) = watch::channel(Stop::No);
    let mut options = RunOptions::new("r");
    options.grace = Duration::from_secs(30);
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(10)).await;
        tx.send(Stop::Graceful).unwrap();
        std::future::pending::<()>().await;
    });
    let start = tokio::time::Instant::now();
    let (report, _) = run_with(&rb, options, rx).await;
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(report.status, RunStatus::Interrupted);
    assert_eq!(status(&report, "flaky"), StepStatus::Interrupted);
}

/// A rule's message quotes the values it compares; when one of them derives from a secret
/// (here a one-digit length, too short for the scrubber), the refusal names the rule only.
#[tokio::test(start_paused = true)]
async fn a_rule_broken_by_a_secret_value_at_run_time_does_not_quote_it() {
    let h = harness();
    let rb = compile_ok(
        &h,
        r#"
runbook: t
params:
  pw: { type: string, secret: true }
steps:
  - { id: src, uses: test.probe, with: { value: "${{ params.pw | length }}" } }
  - { id: ruled, uses: test.bounded, needs: [src], with: { n: 5, m: "${{ steps.src.outputs.value }}" } }
"#,
    );
    let mut rec = Recorder::default();
    let (_tx, rx) = watch::channel(Stop::No);
    let mut params = Outputs::new();
    params.insert("pw".into(), json!("hunter2x"));
    let report = drflow_engine::run(&rb, &params, RunOptions::new("r"), &mut rec, rx)
        .await
        .unwrap();
    let err = report
        .steps
        .iter()
        .find(|s| s.id == "ruled")
        .and_then(|s| s.error.clone())
        .unwrap();
    assert_eq!(err.kind, "invalid_input");
    assert_eq!(
        err.message,
        "secret values break the rule: m is at most n. (the values are not shown)"
    );
}

/// A value known only at run time (another step's output) is checked by the same declaration
/// when its step starts: refused as `invalid_input` before the step runs.
#[tokio::test(start_paused = true)]
async fn values_known_only_at_run_time_are_checked_when_the_step_starts() {
    let h = harness();
    let rb = compile_ok(
        &h,
        r#"
runbook: t
steps:
  - { id: src, uses: test.probe, with: { value: 100 } }
  - { id: big, uses: test.bounded, needs: [src], with: { n: "${{ steps.src.outputs.value }}" } }
  - { id: ruled, uses: test.bounded, needs: [src], with: { n: 5, m: "${{ steps.src.outputs.value }}" } }
  - { id: fine, uses: test.bounded, needs: [src], with: { n: 10, m: 3 } }
"#,
    );
    let (report, _) = run(&rb).await;
    assert_eq!(report.status, RunStatus::Failed);
    let error = |id: &str| {
        let s = report.steps.iter().find(|s| s.id == id).unwrap();
        s.error.clone().map(|e| (e.kind, e.message))
    };
    assert_eq!(
        error("big"),
        Some((
            "invalid_input".to_string(),
            "`n` must be at most 10, not 100".to_string()
        ))
    );
    assert_eq!(
        error("ruled"),
        Some((
            "invalid_input".to_string(),
            "m (100) is more than n (5)".to_string()
        ))
    );
    assert_eq!(status(&report, "fine"), StepStatus::Succeeded);
    let log = h.log.lock().unwrap();
    assert!(
        !log.iter().any(|e| e.0 == "big" || e.0 == "ruled"),
        "a refused step never runs: {log:?}"
    );
}
