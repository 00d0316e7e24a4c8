//! Moving traffic: `route53.shift_traffic` (once the new side can serve) and
//! `route53.test_dns_answer` (until Route 53 answers with the new side).

use std::sync::Arc;

use drflow_engine::{Outputs, Registry, StepError, ValueType};
use serde_json::json;

use super::step::{BodyFuture, FailoverStep, Fx, duration, failover_spec, poll, same_host, string};
use crate::backend::ChangeStatus;
use crate::regions::AWS_REGION;
use crate::target::LazyBackend;

/// The sides traffic moves to.
const SIDES: &[&str] = &["standby", "primary"];

pub(crate) fn register(reg: &mut Registry, backend: &Arc<LazyBackend>) {
    let shift = failover_spec(
        "route53.shift_traffic",
        "Moves the public name's traffic to one side once it can serve: first waits on the run's \
         clock until that side's cluster holds the global database's writer, available, and \
         its target group has a healthy target; then, for weighted records, sets that side's \
         weight to 100 and the other's to 0 (ChangeResourceRecordSets, waiting for INSYNC); \
         for failover records, sets the primary's health check `Inverted` so that Route 53 \
         sees it unhealthy (moving to the standby) or as its endpoint is (moving back). \
         Changes only what differs.",
    )
    .required(
        "to",
        ValueType::String,
        "`standby` or `primary`: the side to serve.",
    )
    .one_of(SIDES)
    .required("hosted_zone_id", ValueType::String, "The public zone.")
    .required("record_name", ValueType::String, "The public name.")
    .required(
        "routing_policy",
        ValueType::String,
        "`weighted` or `failover`.",
    )
    .one_of(&["weighted", "failover"])
    .optional(
        "primary_set_identifier",
        ValueType::String,
        json!("primary"),
        "The primary record set.",
    )
    .optional(
        "standby_set_identifier",
        ValueType::String,
        json!("standby"),
        "The standby record set.",
    )
    .required(
        "primary_health_check_id",
        ValueType::String,
        "The primary's health check (failover records).",
    )
    .required(
        "global_cluster_id",
        ValueType::String,
        "The global database whose writer must be on the new side.",
    )
    .required("region", ValueType::String, "The new side's region.")
    .format(AWS_REGION)
    .required(
        "target_group_arn",
        ValueType::String,
        "The new side's target group, which needs a healthy target.",
    )
    .optional(
        "ready_timeout",
        ValueType::Duration,
        json!("5m"),
        "How long to wait for the new side to be ready.",
    )
    .at_least(0.0)
    .optional(
        "poll_interval",
        ValueType::Duration,
        json!("5s"),
        "Time between reads.",
    )
    .at_least(0.1)
    .output(
        "healthy_targets",
        ValueType::Int,
        "Healthy targets on the new side when traffic moved.",
    )
    .output(
        "moved_at_ms",
        ValueType::Int,
        "When the change was in sync on every Route 53 name server (or found done).",
    );
    reg.register(FailoverStep::boxed(shift, backend, run_shift));

    let test = failover_spec(
        "route53.test_dns_answer",
        "Asks Route 53 what it answers for a name (TestDNSAnswer) until the answer holds the \
         expected load balancer, or fails after `timeout`. Changes nothing.",
    )
    .required("hosted_zone_id", ValueType::String, "The zone.")
    .required("record_name", ValueType::String, "The name.")
    .optional("record_type", ValueType::String, json!("A"), "The type.")
    .required(
        "expect",
        ValueType::String,
        "The DNS name the answer must hold (the new side's load balancer).",
    )
    .optional(
        "timeout",
        ValueType::Duration,
        json!("3m"),
        "How long to keep asking.",
    )
    .at_least(0.0)
    .optional(
        "poll_interval",
        ValueType::Duration,
        json!("5s"),
        "Time between questions.",
    )
    .at_least(0.1)
    .output("answer", ValueType::List, "What Route 53 answered last.")
    .output(
        "served_at_ms",
        ValueType::Int,
        "When the answer first held the expected name, on the cloud's clock.",
    );
    reg.register(FailoverStep::boxed(test, backend, run_test));
}

fn run_shift<'a>(fx: &'a Fx, p: &'a Outputs) -> BodyFuture<'a> {
    Box::pin(async move {
        let to = string(p, "to")?;
        let zone = string(p, "hosted_zone_id")?;
        let record = string(p, "record_name")?;
        let policy = string(p, "routing_policy")?;
        let hc = string(p, "primary_health_check_id")?;
        let cluster = string(p, "global_cluster_id")?;
        let region = string(p, "region")?;
        let tg = string(p, "target_group_arn")?;
        let timeout = duration(p, "ready_timeout")?;
        let interval = duration(p, "poll_interval")?;
        let (to_set, from_set) = if to == "standby" {
            (
                string(p, "standby_set_identifier")?,
                string(p, "primary_set_identifier")?,
            )
        } else {
            (
                string(p, "primary_set_identifier")?,
                string(p, "standby_set_identifier")?,
            )
        };

        // Never send traffic where it cannot be served.
        let ready = poll(fx, interval, timeout, || async move {
            let status = fx.backend.describe_global_cluster(cluster).await?;
            let writer_ok = status
                .member_in(region)
                .is_some_and(|m| m.is_writer && m.status == "available");
            let healthy = fx
                .backend
                .describe_target_health(region, tg)
                .await?
                .iter()
                .filter(|t| t.state == "healthy")
                .count();
            if writer_ok && healthy > 0 {
                Ok(Some(healthy))
            } else {
                Ok(None)
            }
        })
        .await?;
        let Some(healthy) = ready else {
            return Err(StepError::retryable(
                "not_ready",
                format!(
                    "traffic not moved to {to} ({region}) after {}: the writer is not available \
                     there, or no target of its target group is healthy",
                    drflow_engine::format_duration(timeout)
                ),
            ));
        };

        let mut changes = Vec::new();
        if policy == "weighted" {
            let sets = fx.backend.list_resource_record_sets(zone, record).await?;
            let weight = |id: &str| {
                sets.iter()
                    .find(|s| s.set_identifier.as_deref() == Some(id))
                    .map(|s| (s.record_type.clone(), s.weight))
            };
            // The new side first: two zero weights would spread traffic over both.
            for (set, want) in [(to_set, 100u8), (from_set, 0u8)] {
                let Some((ty, have)) = weight(set) else {
                    return Err(StepError::permanent(
                        "not_found",
                        format!("record set {record} {set} does not exist"),
                    ));
                };
                if have != Some(want) {
                    let c = fx
                        .backend
                        .set_record_weight(zone, record, &ty, set, want)
                        .await?;
                    fx.act(format!(
                        "ChangeResourceRecordSets {record} {set}: weight {} -> {want}",
                        have.map_or("none".to_string(), |w| w.to_string())
                    ));
                    changes.push(c);
                }
            }
        } else {
            let s = fx.backend.get_health_check_status(hc).await?;
            // The endpoint's own health, whatever `Inverted` says now.
            let endpoint_healthy = s.healthy != s.inverted;
            let inverted = if to == "standby" {
                // Reported unhealthy: inverted exactly when the endpoint is healthy.
                endpoint_healthy
            } else {
                false
            };
            if s.inverted != inverted {
                fx.backend.set_health_check_inverted(hc, inverted).await?;
                fx.act(format!(
                    "UpdateHealthCheck {hc}: Inverted {} -> {inverted} (the primary's failover \
                     record {})",
                    s.inverted,
                    if to == "standby" {
                        "is unhealthy: Route 53 answers with the standby"
                    } else {
                        "follows its endpoint again"
                    }
                ));
            }
        }
        for c in &changes {
            if c.status == ChangeStatus::Insync {
                continue;
            }
            let synced = poll(fx, interval, timeout, || async {
                let now = fx.backend.get_change(&c.id).await?;
                Ok((now.status == ChangeStatus::Insync).then_some(()))
            })
            .await?;
            if synced.is_none() {
                return Err(StepError::retryable(
                    "timeout",
                    format!(
                        "change {} was not INSYNC after {}",
                        c.id,
                        drflow_engine::format_duration(timeout)
                    ),
                ));
            }
        }
        let mut out = Outputs::new();
        out.insert("healthy_targets".into(), json!(healthy));
        out.insert("moved_at_ms".into(), json!(fx.now_ms().await?));
        Ok(out)
    })
}

fn run_test<'a>(fx: &'a Fx, p: &'a Outputs) -> BodyFuture<'a> {
    Box::pin(async move {
        let zone = string(p, "hosted_zone_id")?;
        let record = string(p, "record_name")?;
        let ty = string(p, "record_type")?;
        let expect = string(p, "expect")?;
        let timeout = duration(p, "timeout")?;
        let interval = duration(p, "poll_interval")?;
        let started = tokio::time::Instant::now();
        loop {
            let a = fx.backend.test_dns_answer(zone, record, ty).await?;
            if a.record_data.iter().any(|d| same_host(d, expect)) {
                let mut out = Outputs::new();
                out.insert("answer".into(), json!(a.record_data));
                out.insert("served_at_ms".into(), json!(fx.now_ms().await?));
                return Ok(out);
            }
            let elapsed = started.elapsed();
            if elapsed >= timeout {
                return Err(StepError::retryable(
                    "timeout",
                    format!(
                        "Route 53 still answers {record} with {} after {}, not {expect}",
                        if a.record_data.is_empty() {
                            a.response_code.clone()
                        } else {
                            a.record_data.join(", ")
                        },
                        drflow_engine::format_duration(timeout)
                    ),
                ));
            }
            fx.sleep(interval.min(timeout - elapsed)).await;
        }
    })
}
