//! The built-in `core.*` steps: glue for runbooks and the engine's own tests.
//!
//! All of them are idempotent: they touch nothing outside the run.

use std::sync::Arc;
use std::time::Duration;

use drflow_engine::{
    Outputs, Registry, StepContext, StepError, StepFuture, StepSpec, StepType, ValueType,
    format_duration, parse_duration,
};
use serde_json::{Value, json};

/// The tracing target of the messages `core.log` writes (field `step`, the message as the
/// event's message): what a runbook says to the person running it, shown by default.
pub const MESSAGE_EVENTS: &str = "drflow::message";

/// Adds every `core.*` step to a registry.
pub fn register(registry: &mut Registry) {
    registry.register(Arc::new(Log::new()));
    registry.register(Arc::new(Sleep::new()));
    registry.register(Arc::new(Fail::new()));
    registry.register(Arc::new(Assert::new()));
    registry.register(Arc::new(Set::new()));
    registry.register(Arc::new(WaitUntil::new()));
}

/// Reads a duration parameter (`30s`, `5m`, or a number of seconds).
pub fn duration_param(input: &Outputs, name: &str) -> Result<Duration, StepError> {
    match input.get(name) {
        Some(Value::String(s)) => parse_duration(s).map_err(StepError::invalid_input),
        Some(Value::Number(n)) => n
            .as_f64()
            .filter(|f| *f >= 0.0)
            .map(Duration::from_secs_f64)
            .ok_or_else(|| StepError::invalid_input(format!("`{name}` must not be negative"))),
        _ => Err(StepError::invalid_input(format!(
            "`{name}` must be a duration such as 30s"
        ))),
    }
}

/// What a step may write of its input `name`: the text, or `***` when the input is secret (the
/// engine scrubs long secrets out of text, but not short ones, so a step writes none).
fn shown(ctx: &StepContext, input: &Outputs, name: &str) -> String {
    if ctx.is_secret_input(name) {
        drflow_engine::REDACTED.to_string()
    } else {
        text(input.get(name))
    }
}

/// Reads the `condition` parameter, which must be true or false: a string such as `"False"`
/// is an error, never "true because it is not empty".
fn condition(input: &Outputs) -> Result<bool, StepError> {
    match input.get("condition") {
        Some(Value::Bool(b)) => Ok(*b),
        other => Err(StepError::invalid_input(format!(
            "`condition` must be true or false, but it is {}; compare it to get a bool, e.g. \
             `${{{{ env.X == 'true' }}}}` or `${{{{ steps.s.outputs.n > 0 }}}}`",
            match other {
                None | Some(Value::Null) => "missing",
                Some(Value::String(_)) => "a string",
                Some(Value::Number(_)) => "a number",
                Some(Value::Array(_)) => "a list",
                Some(Value::Object(_)) => "a map",
                Some(Value::Bool(_)) => "a bool",
            }
        ))),
    }
}

fn text(value: Option<&Value>) -> String {
    match value {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

struct Log(StepSpec);

impl Log {
    fn new() -> Self {
        Log(StepSpec::new(
            "core.log",
            "Writes a message to the run's log; a message that reads a secret is written as `***`.",
        )
        .required(
            "message",
            ValueType::Any,
            "What to write; expressions are evaluated first.",
        )
        .optional(
            "level",
            ValueType::String,
            json!("info"),
            "How loud the message is.",
        )
        .one_of(&["info", "warn", "error"])
        .output("message", ValueType::String, "The message as written."))
    }
}

impl StepType for Log {
    fn spec(&self) -> &StepSpec {
        &self.0
    }

    fn run<'a>(&'a self, ctx: &'a StepContext, input: &'a Outputs) -> StepFuture<'a> {
        Box::pin(async move {
            let message = text(input.get("message"));
            let logged = shown(ctx, input, "message");
            match input.get("level").and_then(Value::as_str).unwrap_or("info") {
                "info" => tracing::info!(target: MESSAGE_EVENTS, step = %ctx.step_id, "{logged}"),
                "warn" => tracing::warn!(target: MESSAGE_EVENTS, step = %ctx.step_id, "{logged}"),
                "error" => {
                    tracing::error!(target: MESSAGE_EVENTS, step = %ctx.step_id, "{logged}")
                }
                other => {
                    return Err(StepError::invalid_input(format!(
                        "unknown log level `{other}`; use info, warn or error"
                    )));
                }
            }
            let mut out = Outputs::new();
            out.insert("message".into(), Value::String(message));
            Ok(out)
        })
    }
}

struct Sleep(StepSpec);

impl Sleep {
    fn new() -> Self {
        Sleep(
            StepSpec::new(
                "core.sleep",
                "Waits for a while on the run's clock (on the sim, virtual time: no wall time).",
            )
            .required(
                "duration",
                ValueType::Duration,
                "How long to wait, e.g. `30s`.",
            ),
        )
    }
}

impl StepType for Sleep {
    fn spec(&self) -> &StepSpec {
        &self.0
    }

    fn run<'a>(&'a self, ctx: &'a StepContext, input: &'a Outputs) -> StepFuture<'a> {
        Box::pin(async move {
            // On the run's clock: on the sim, virtual time shared with the other steps.
            ctx.clock().sleep(duration_param(input, "duration")?).await;
            Ok(Outputs::new())
        })
    }
}

struct Fail(StepSpec);

impl Fail {
    fn new() -> Self {
        Fail(StepSpec::new(
            "core.fail",
            "Fails with a message; with `succeed_after: N` it fails N attempts and then succeeds, to exercise retries.",
        )
        .required("message", ValueType::String, "The error message (`***` when it reads a secret).")
        .optional("retryable", ValueType::Bool, json!(false), "Mark the error retryable.")
        .optional("kind", ValueType::String, json!("failed"), "The error kind, matched by `retry.on`.")
        .optional(
            "succeed_after",
            ValueType::Int,
            Value::Null,
            "Fail this many attempts, then succeed.",
        )
        .at_least(0.0)
        .output("attempt", ValueType::Int, "The attempt that succeeded (with `succeed_after`).")
        .outputs_not_secret())
    }
}

impl StepType for Fail {
    fn spec(&self) -> &StepSpec {
        &self.0
    }

    fn run<'a>(&'a self, ctx: &'a StepContext, input: &'a Outputs) -> StepFuture<'a> {
        Box::pin(async move {
            if let Some(n) = input.get("succeed_after").and_then(Value::as_u64)
                && u64::from(ctx.attempt) > n
            {
                let mut out = Outputs::new();
                out.insert("attempt".into(), ctx.attempt.into());
                return Ok(out);
            }
            let kind = input
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or("failed");
            let message = shown(ctx, input, "message");
            if input
                .get("retryable")
                .and_then(Value::as_bool)
                .unwrap_or(false)
            {
                Err(StepError::retryable(kind, message))
            } else {
                Err(StepError::permanent(kind, message))
            }
        })
    }
}

struct Assert(StepSpec);

impl Assert {
    fn new() -> Self {
        Assert(
            StepSpec::new("core.assert", "Fails unless a condition is true.")
                .required(
                    "condition",
                    ValueType::Bool,
                    "An expression that must give true; anything but a bool is an error.",
                )
                .optional(
                    "message",
                    ValueType::String,
                    json!("assertion failed"),
                    "The error message when it is false (`***` when it reads a secret).",
                ),
        )
    }
}

impl StepType for Assert {
    fn spec(&self) -> &StepSpec {
        &self.0
    }

    fn run<'a>(&'a self, ctx: &'a StepContext, input: &'a Outputs) -> StepFuture<'a> {
        Box::pin(async move {
            if condition(input)? {
                Ok(Outputs::new())
            } else {
                Err(StepError::permanent(
                    "assertion",
                    shown(ctx, input, "message"),
                ))
            }
        })
    }
}

struct Set(StepSpec);

impl Set {
    fn new() -> Self {
        Set(StepSpec::new(
            "core.set",
            "Outputs its `with:` map as is, to name values for later steps.",
        )
        .outputs_from_input())
    }
}

impl StepType for Set {
    fn spec(&self) -> &StepSpec {
        &self.0
    }

    fn run<'a>(&'a self, _ctx: &'a StepContext, input: &'a Outputs) -> StepFuture<'a> {
        Box::pin(async move { Ok(input.clone()) })
    }
}

struct WaitUntil(StepSpec);

impl WaitUntil {
    fn new() -> Self {
        WaitUntil(StepSpec::new(
            "core.wait_until",
            "Re-evaluates a condition every `interval` until it is true, or fails after `timeout`; both on the run's clock (on the sim, virtual time).",
        )
        .required("condition", ValueType::Bool, "An expression giving true or false, re-evaluated at each check; anything but a bool is an error.")
        .optional("interval", ValueType::Duration, json!("5s"), "Time between checks.")
        .at_least(0.001)
        .optional("timeout", ValueType::Duration, json!("5m"), "Give up after this long.")
        .output("checks", ValueType::Int, "How many checks it took.")
        .output("waited_seconds", ValueType::Number, "How long it waited.")
        .outputs_not_secret())
    }
}

impl StepType for WaitUntil {
    fn spec(&self) -> &StepSpec {
        &self.0
    }

    fn run<'a>(&'a self, ctx: &'a StepContext, input: &'a Outputs) -> StepFuture<'a> {
        Box::pin(async move {
            let interval = duration_param(input, "interval")?;
            let timeout = duration_param(input, "timeout")?;
            if interval.is_zero() {
                return Err(StepError::invalid_input(
                    "`interval` must be more than zero",
                ));
            }
            // Measured and waited on the run's clock: on the sim, virtual time.
            let clock = ctx.clock();
            let start_ms = clock.now_ms();
            let elapsed = || Duration::from_millis(clock.now_ms().saturating_sub(start_ms));
            let mut current = input.clone();
            let mut checks = 0u64;
            loop {
                checks += 1;
                if condition(&current)? {
                    let mut out = Outputs::new();
                    out.insert("checks".into(), checks.into());
                    out.insert("waited_seconds".into(), json!(elapsed().as_secs_f64()));
                    return Ok(out);
                }
                let elapsed = elapsed();
                if elapsed >= timeout {
                    return Err(StepError::permanent(
                        "timeout",
                        format!(
                            "the condition was still false after {} ({checks} checks)",
                            format_duration(elapsed)
                        ),
                    ));
                }
                // The last wait is cut short so the final check falls on the timeout itself.
                clock.sleep(interval.min(timeout - elapsed)).await;
                if let Some(again) = &ctx.reevaluate {
                    current = (again.0)()?;
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(v: Value) -> Outputs {
        v.as_object().cloned().unwrap_or_default()
    }

    #[tokio::test]
    async fn fail_succeeds_after_the_given_attempts() {
        let step = Fail::new();
        let with = input(json!({"message": "boom", "retryable": true, "succeed_after": 2}));
        let mut ctx = StepContext::detached("f");
        for attempt in 1..=2 {
            ctx.attempt = attempt;
            let err = step.run(&ctx, &with).await.unwrap_err();
            assert!(err.retryable);
        }
        ctx.attempt = 3;
        assert_eq!(step.run(&ctx, &with).await.unwrap()["attempt"], 3);
    }

    #[tokio::test]
    async fn assert_fails_on_false_with_its_message() {
        let step = Assert::new();
        let ctx = StepContext::detached("a");
        let err = step
            .run(
                &ctx,
                &input(json!({"condition": false, "message": "lag too high"})),
            )
            .await
            .unwrap_err();
        assert_eq!(err.message, "lag too high");
        assert!(
            step.run(&ctx, &input(json!({"condition": true})))
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn conditions_must_be_bools_not_truthy_values() {
        let ctx = StepContext::detached("c");
        for value in [
            json!("False"),
            json!("yes"),
            json!(1),
            json!([]),
            json!(null),
        ] {
            let err = Assert::new()
                .run(&ctx, &input(json!({"condition": value})))
                .await
                .unwrap_err();
            assert_eq!(err.kind, "invalid_input", "{value}: {err}");
            let err = WaitUntil::new()
                .run(
                    &ctx,
                    &input(json!({"condition": value, "interval": "1s", "timeout": "1s"})),
                )
                .await
                .unwrap_err();
            assert_eq!(err.kind, "invalid_input", "{value}: {err}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn wait_until_checks_until_the_timeout_itself() {
        // Regression: with a timeout that is not a multiple of the interval it gave up early.
        let step = WaitUntil::new();
        let ctx = StepContext::detached("w");
        let start = tokio::time::Instant::now();
        let err = step
            .run(
                &ctx,
                &input(json!({"condition": false, "interval": "100ms", "timeout": "250ms"})),
            )
            .await
            .unwrap_err();
        assert_eq!(start.elapsed(), std::time::Duration::from_millis(250));
        assert!(err.message.contains("4 checks"), "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn wait_until_times_out_on_a_false_condition() {
        let step = WaitUntil::new();
        let ctx = StepContext::detached("w");
        let err = step
            .run(
                &ctx,
                &input(json!({"condition": false, "interval": "10s", "timeout": "1m"})),
            )
            .await
            .unwrap_err();
        assert_eq!(err.kind, "timeout");
        assert!(err.message.contains("7 checks"), "{err}");
    }

    #[tokio::test]
    async fn core_steps_are_idempotent() {
        // Running any core step twice with the same input gives the same result.
        let ctx = StepContext::detached("x");
        let set = Set::new();
        let with = input(json!({"a": 1, "b": [true]}));
        assert_eq!(
            set.run(&ctx, &with).await.unwrap(),
            set.run(&ctx, &with).await.unwrap()
        );
        let log = Log::new();
        let with = input(json!({"message": "hi", "level": "info"}));
        assert_eq!(
            log.run(&ctx, &with).await.unwrap(),
            log.run(&ctx, &with).await.unwrap()
        );
    }
}
