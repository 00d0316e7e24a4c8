//! `sns.publish`: telling people, in every region that can still hear it.

use std::sync::Arc;

use drflow_engine::{Outputs, Registry, StepError, ValueType};
use serde_json::{Value, json};

use super::step::{BodyFuture, FailoverStep, Fx, arn_region, failover_spec, string, unreachable};
use crate::target::LazyBackend;

pub(crate) fn register(reg: &mut Registry, backend: &Arc<LazyBackend>) {
    let spec = failover_spec(
        "sns.publish",
        "Publishes one message to each SNS topic given (each in the region its ARN names). A \
         topic in a region that cannot be reached is reported in `failed` and does not fail \
         the step; the step fails only when topics were given and none took the message. Not \
         idempotent by nature: a re-run notifies again, which for people is the safe side.",
    )
    .required("topic_arns", ValueType::List, "The topics (both regions').")
    .required(
        "subject",
        ValueType::String,
        "The subject (at most 100 characters).",
    )
    .min_len(1)
    .max_len(100)
    .required("message", ValueType::String, "The message.")
    .output(
        "message_ids",
        ValueType::List,
        "The message id of each topic that took it.",
    )
    .output(
        "failed",
        ValueType::List,
        "Each topic that could not be reached, and why.",
    );
    reg.register(FailoverStep::boxed(spec, backend, run));
}

fn run<'a>(fx: &'a Fx, p: &'a Outputs) -> BodyFuture<'a> {
    Box::pin(async move {
        let topics: Vec<String> = p
            .get("topic_arns")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        let subject = string(p, "subject")?;
        let message = string(p, "message")?;
        let mut ids = Vec::new();
        let mut failed = Vec::new();
        for arn in &topics {
            let Some(region) = arn_region(arn) else {
                return Err(StepError::invalid_input(format!(
                    "`{arn}` is not an SNS topic ARN (arn:aws:sns:<region>:<account>:<name>)"
                )));
            };
            match fx.backend.publish(region, arn, subject, message).await {
                Ok(id) => ids.push(id),
                Err(e) if unreachable(&e) => {
                    fx.warn(format!("could not notify {arn}: {}", e.message));
                    failed.push(format!("{arn}: {}", e.message));
                }
                Err(e) => return Err(e.into()),
            }
        }
        if topics.is_empty() {
            fx.warn("no SNS topic to notify");
        } else if ids.is_empty() {
            return Err(StepError::retryable(
                "unavailable",
                format!("no topic took the message: {}", failed.join("; ")),
            ));
        }
        let mut out = Outputs::new();
        out.insert("message_ids".into(), json!(ids));
        out.insert("failed".into(), json!(failed));
        Ok(out)
    })
}
