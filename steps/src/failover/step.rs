//! What every failover step that talks to the cloud shares: the backend, the clock it reads
//! (the backend's: virtual on the sim), the record of what it changed, and the outputs every one
//! of them has (`actions`, `started_at_ms`, `ended_at_ms`).
//!
//! Unlike the provisioning steps, these steps create nothing: they read state through the
//! typed interface ([`crate::backend::FailoverApi`]) and call its verbs. Each body re-reads the
//! state before acting, so running it twice (a retry, a resume after a crash) acts once.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use drflow_engine::{Outputs, StepContext, StepError, StepFuture, StepSpec, StepType, ValueType};
use serde_json::{Value, json};
use tracing::Instrument;

use crate::backend::{CloudBackend, CloudError, ErrorKind};
use crate::target::LazyBackend;

/// A boxed future of a step body.
pub(crate) type BodyFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Outputs, StepError>> + Send + 'a>>;

/// The body of a failover step.
pub(crate) type Body = for<'a> fn(&'a Fx, &'a Outputs) -> BodyFuture<'a>;

/// The context a failover step body works in.
pub(crate) struct Fx {
    /// The cloud: its generic API for reading resources by name, its typed failover API for
    /// everything else.
    pub backend: Arc<dyn CloudBackend>,
    /// The step's id in the runbook, for messages.
    pub step_id: String,
    actions: Mutex<Vec<String>>,
}

impl Fx {
    /// A context on `backend` (tests build one directly).
    pub fn new(backend: Arc<dyn CloudBackend>, step_id: &str) -> Fx {
        Fx {
            backend,
            step_id: step_id.to_string(),
            actions: Mutex::new(Vec::new()),
        }
    }

    /// The cloud's clock, in milliseconds since the Unix epoch (the run's virtual time on the
    /// sim).
    pub async fn now_ms(&self) -> Result<u64, StepError> {
        Ok(self.backend.now_ms().await?)
    }

    /// Records one change this step made to the cloud, and says it (a `drflow::message` line,
    /// shown by default).
    pub fn act(&self, line: impl Into<String>) {
        let line = line.into();
        tracing::info!(target: crate::MESSAGE_EVENTS, step = %self.step_id, "{line}");
        if let Ok(mut a) = self.actions.lock() {
            a.push(line);
        }
    }

    /// Says something worth a person's attention, without failing the step.
    pub fn warn(&self, line: impl AsRef<str>) {
        tracing::warn!(target: crate::MESSAGE_EVENTS, step = %self.step_id, "{}", line.as_ref());
    }

    /// What this step changed so far.
    pub fn actions(&self) -> Vec<String> {
        self.actions.lock().map(|a| a.clone()).unwrap_or_default()
    }

    /// Waits `d` on the run's clock (tokio's, paused and virtual on the sim).
    pub async fn sleep(&self, d: Duration) {
        tokio::time::sleep(d).await;
    }
}

/// Whether a failed call means "that region cannot be reached" (an outage, a partition) rather
/// than a mistake.
pub(crate) fn unreachable(e: &CloudError) -> bool {
    e.kind == ErrorKind::Unavailable
}

/// A spec with the outputs every failover step has.
pub(crate) fn failover_spec(name: &'static str, doc: &'static str) -> StepSpec {
    StepSpec::new(name, doc)
        .output(
            "actions",
            ValueType::List,
            "What this step changed in the cloud, one line each (empty when it found everything \
             done already).",
        )
        .output(
            "started_at_ms",
            ValueType::Int,
            "When it started, on the cloud's clock (ms since the Unix epoch).",
        )
        .output(
            "ended_at_ms",
            ValueType::Int,
            "When it ended, on the cloud's clock.",
        )
}

/// A failover step type: a spec and a body, on a lazily opened backend.
pub(crate) struct FailoverStep {
    spec: StepSpec,
    backend: Arc<LazyBackend>,
    body: Body,
}

impl FailoverStep {
    /// A failover step type.
    pub fn boxed(spec: StepSpec, backend: &Arc<LazyBackend>, body: Body) -> Arc<dyn StepType> {
        Arc::new(FailoverStep {
            spec,
            backend: Arc::clone(backend),
            body,
        })
    }
}

/// The input with declared defaults filled in and every declared parameter present (null
/// when it has no default).
pub(crate) fn with_defaults(spec: &StepSpec, input: &Outputs) -> Outputs {
    let mut full = input.clone();
    for p in &spec.params {
        if !full.contains_key(p.name) {
            full.insert(p.name.into(), p.default.clone().unwrap_or(Value::Null));
        }
    }
    full
}

/// Runs a body on `backend` and adds the outputs every failover step has.
pub(crate) async fn run_body(
    spec: &StepSpec,
    body: Body,
    backend: Arc<dyn CloudBackend>,
    step_id: &str,
    input: &Outputs,
) -> Result<Outputs, StepError> {
    let input = with_defaults(spec, input);
    let fx = Fx::new(backend, step_id);
    let started = fx.now_ms().await?;
    let mut out = body(&fx, &input).await?;
    let ended = fx.now_ms().await?;
    out.insert("actions".into(), json!(fx.actions()));
    out.insert("started_at_ms".into(), json!(started));
    out.insert("ended_at_ms".into(), json!(ended));
    Ok(out)
}

impl StepType for FailoverStep {
    fn spec(&self) -> &StepSpec {
        &self.spec
    }

    fn run<'a>(&'a self, ctx: &'a StepContext, input: &'a Outputs) -> StepFuture<'a> {
        Box::pin(async move {
            let backend = self.backend.get()?;
            let span = tracing::info_span!("step", runbook = %ctx.runbook, step = %ctx.step_id, uses = self.spec.name);
            run_body(&self.spec, self.body, backend, &ctx.step_id, input)
                .instrument(span)
                .await
        })
    }
}

/// Polls `check` every `interval` until it gives `Some`, or `timeout` passes on the run's clock
/// (then `None`). The first check is at once; the last falls on the timeout itself.
pub(crate) async fn poll<T, F, Fut>(
    fx: &Fx,
    interval: Duration,
    timeout: Duration,
    mut check: F,
) -> Result<Option<T>, StepError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>, StepError>>,
{
    let start = tokio::time::Instant::now();
    loop {
        if let Some(v) = check().await? {
            return Ok(Some(v));
        }
        let elapsed = start.elapsed();
        if elapsed >= timeout {
            return Ok(None);
        }
        fx.sleep(
            interval
                .max(Duration::from_millis(1))
                .min(timeout - elapsed),
        )
        .await;
    }
}

/// A duration parameter.
pub(crate) fn duration(input: &Outputs, key: &str) -> Result<Duration, StepError> {
    crate::core::duration_param(input, key)
}

/// A required string parameter.
pub(crate) fn string<'a>(input: &'a Outputs, key: &str) -> Result<&'a str, StepError> {
    input
        .get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| StepError::invalid_input(format!("parameter `{key}` must be a string")))
}

/// An optional string parameter: absent, null or empty mean `None`.
pub(crate) fn opt_string<'a>(input: &'a Outputs, key: &str) -> Option<&'a str> {
    input
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// The region of an ARN (`arn:aws:sns:<region>:…`).
pub(crate) fn arn_region(arn: &str) -> Option<&str> {
    arn.split(':').nth(3).filter(|r| !r.is_empty())
}

/// A DNS name compared without case or a final dot.
pub(crate) fn same_host(a: &str, b: &str) -> bool {
    a.trim_end_matches('.')
        .eq_ignore_ascii_case(b.trim_end_matches('.'))
}
