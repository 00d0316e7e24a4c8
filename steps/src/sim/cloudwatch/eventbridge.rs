//! Alarm state changes on EventBridge: events put on a region's bus, matched against its rules,
//! forwarded to another region's bus or delivered into SQS queues after a seeded latency.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::AlarmChange;
use crate::backend::Resource;
use crate::sim::World;
use crate::sim::config::SimConfig;
use crate::sim::route53::hash_unit;

/// The EventBridge-to-SQS delivery latency of one event, in milliseconds: log-normal with the
/// median [`SimConfig::eventbridge_to_sqs_p50_ms`] and the 99th percentile
/// [`SimConfig::eventbridge_to_sqs_p99_ms`], drawn from `seed` (the same event always takes
/// the same time).
pub fn delivery_latency_ms(config: &SimConfig, seed: &str) -> u64 {
    let p50 = config.eventbridge_to_sqs_p50_ms.max(1) as f64;
    let p99 = (config.eventbridge_to_sqs_p99_ms as f64).max(p50);
    // z of the 99th percentile of the standard normal.
    let sigma = (p99 / p50).ln() / 2.326_348;
    // Box-Muller from two seeded uniforms.
    let u1 = hash_unit(seed, 1).max(1e-12);
    let u2 = hash_unit(seed, 2);
    let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
    (p50 * (sigma * z).exp()).round() as u64
}

/// One message in an SQS queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SqsMessage {
    /// `MessageId`.
    pub message_id: String,
    /// The queue's ARN.
    pub queue_arn: String,
    /// The body: the EventBridge event.
    pub body: Value,
    /// When the event was put on the bus.
    pub sent_at_ms: u64,
    /// When it is in the queue (sent plus the delivery latency).
    pub available_at_ms: u64,
}

/// A UUID-shaped id drawn from `seed` (EventBridge event ids, SQS message ids).
pub fn seeded_uuid(seed: &str) -> String {
    let hex: String = (0..4)
        .map(|i| {
            format!(
                "{:08x}",
                (hash_unit(seed, 100 + i) * f64::from(u32::MAX)) as u32
            )
        })
        .collect();
    format!(
        "{}-{}-4{}-a{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

/// Completes an event as EventBridge puts it on a bus: its `id` and `time`.
pub fn stamp_event(mut event: Value, at_ms: u64) -> Value {
    let seed = format!("{event}/{at_ms}");
    if let Some(map) = event.as_object_mut() {
        map.insert("id".into(), Value::String(seeded_uuid(&seed)));
        map.insert(
            "time".into(),
            Value::String(drflow_engine::iso8601(at_ms as f64 / 1000.0)),
        );
    }
    event
}

/// Where an event put on `region`'s default bus at `sent_at_ms` ends up: for every enabled
/// rule there whose pattern matches, each SQS target gets the event after a
/// [delivery latency](delivery_latency_ms); a target that is another region's bus forwards it
/// there (one hop, as EventBridge does not forward a forwarded event again).
/// `rules(region, event)` gives a region's matching rules.
pub fn route_event(
    rules: &dyn Fn(&str, &Value) -> Vec<Resource>,
    region: &str,
    event: &Value,
    sent_at_ms: u64,
    config: &SimConfig,
) -> Vec<SqsMessage> {
    let mut out = Vec::new();
    route_hop(rules, region, event, sent_at_ms, config, 0, &mut out);
    for m in &mut out {
        m.sent_at_ms = sent_at_ms;
    }
    out
}

fn route_hop(
    rules: &dyn Fn(&str, &Value) -> Vec<Resource>,
    region: &str,
    event: &Value,
    at_ms: u64,
    config: &SimConfig,
    hop: u32,
    out: &mut Vec<SqsMessage>,
) {
    let id = event.get("id").and_then(Value::as_str).unwrap_or("");
    for rule in rules(region, event) {
        if rule
            .spec
            .get("state")
            .and_then(Value::as_str)
            .unwrap_or("ENABLED")
            != "ENABLED"
        {
            continue;
        }
        let targets = rule.spec.get("targets").and_then(Value::as_array).cloned();
        for target in targets.unwrap_or_default() {
            let Some(arn) = target.get("arn").and_then(Value::as_str) else {
                continue;
            };
            let seed = format!("{id}/{}/{arn}", rule.arn);
            let arrives = at_ms + delivery_latency_ms(config, &seed);
            let parts: Vec<&str> = arn.split(':').collect();
            match parts.get(2).copied() {
                Some("sqs") => out.push(SqsMessage {
                    message_id: seeded_uuid(&seed),
                    queue_arn: arn.to_string(),
                    body: event.clone(),
                    sent_at_ms: at_ms,
                    available_at_ms: arrives,
                }),
                Some("events") if hop == 0 && arn.contains(":event-bus/") => {
                    if let Some(to) = parts.get(3).filter(|r| **r != region) {
                        route_hop(rules, to, event, arrives, config, hop + 1, out);
                    }
                }
                _ => {}
            }
        }
    }
}

/// Puts the `CloudWatch Alarm State Change` event of `change` on its region's bus and delivers
/// it where the rules say (nowhere when the region is down).
pub(super) fn send_state_change(world: &mut World, change: &AlarmChange) {
    let Some(alarm) = world
        .cloudwatch
        .alarms
        .get(&change.arn)
        .map(|a| a.region.clone())
        .and_then(|region| {
            world
                .list(Some(&region), None)
                .into_iter()
                .find(|r| r.arn == change.arn)
        })
    else {
        return;
    };
    if world.region_down(&alarm.region) {
        return;
    }
    let reason = world
        .cloudwatch
        .alarms
        .get(&change.arn)
        .map(|a| a.reason.clone())
        .unwrap_or_default();
    let transition = crate::sim::AlarmTransition {
        previous: change.previous.name(),
        previous_at_ms: change.previous_at_ms,
        state: change.state.name(),
        at_ms: change.at_ms,
        reason: &reason,
    };
    let event = stamp_event(
        crate::sim::alarm_state_change_event_at(&alarm, &transition),
        change.at_ms,
    );
    let rules = |region: &str, e: &Value| -> Vec<Resource> {
        if world.region_down(region) {
            return Vec::new();
        }
        world.rules_matching(region, e)
    };
    let messages = route_event(&rules, &alarm.region, &event, change.at_ms, &world.config);
    world.cloudwatch.sqs.extend(messages);
}

/// The messages EventBridge delivered into the queue `queue` (its ARN or URL) and that are
/// there by now, oldest first: what a daemon receiving from it gets.
pub fn queue_messages<'a>(world: &'a World, queue: &str) -> Vec<&'a SqsMessage> {
    let arn = queue_arn(queue);
    let now = world.clock_ms;
    let mut v: Vec<&SqsMessage> = world
        .cloudwatch
        .sqs
        .iter()
        .filter(|m| m.queue_arn == arn && m.available_at_ms <= now)
        .collect();
    v.sort_by_key(|m| m.available_at_ms);
    v
}

/// A queue's ARN from its ARN or its URL (`https://sqs.<region>.amazonaws.com/<account>/<name>`).
fn queue_arn(queue: &str) -> String {
    let Some(rest) = queue.strip_prefix("https://sqs.") else {
        return queue.to_string();
    };
    let mut parts = rest.split('/');
    let host = parts.next().unwrap_or("");
    let region = host.split('.').next().unwrap_or("");
    let account = parts.next().unwrap_or("");
    let name = parts.next().unwrap_or("");
    format!("arn:aws:sqs:{region}:{account}:{name}")
}
