//! What the daemon does with one delivered message, before any run: parse it, drop what is not
//! an event of ours, drop copies, and hand the rest to the trigger [`Evaluator`].

use std::collections::{HashMap, VecDeque};

use serde::Serialize;
use serde_json::Value;

use crate::triggers::{Evaluator, Observation, TriggerConfig};

/// What became of one message.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// Not an EventBridge event: not JSON, not an object, or without `source` and
    /// `detail-type`. Logged and dropped (and deleted from the queue: it can never become one).
    Malformed {
        /// Why, in words.
        reason: String,
    },
    /// A well-formed event no trigger's signal is about (another alarm, another source).
    Foreign,
    /// A copy of an event already taken: the same event id, or the same subject (alarm ARN)
    /// in the same state since the same timestamp (the queue's copy of what the reconcile
    /// read, an at-least-once redelivery with a new id).
    Duplicate,
    /// About a signal, but older than the newest state of its subject: it changed nothing (a
    /// late `OK` does not cancel a newer `ALARM`; an old `ALARM` does not fire again).
    Stale,
    /// Taken: the evaluator's state may have changed; `observation` says how.
    Taken {
        /// What the evaluator made of it (firings included).
        observation: Box<Observation>,
    },
}

impl Verdict {
    /// A short name for logs and metrics: `malformed`, `foreign`, `duplicate`, `stale`, `taken`.
    pub fn name(&self) -> &'static str {
        match self {
            Verdict::Malformed { .. } => "malformed",
            Verdict::Foreign => "foreign",
            Verdict::Duplicate => "duplicate",
            Verdict::Stale => "stale",
            Verdict::Taken { .. } => "taken",
        }
    }
}

/// The daemon's intake: the evaluator plus the checks before it, with bounded memory.
///
/// Memory: event ids and (subject, state, timestamp) keys are remembered for `memory_ms` after
/// they arrived ([`Intake::expire`]), then forgotten; the evaluator keeps one state per
/// (signal, subject). So a daemon that takes events for months holds what the last
/// `memory_ms` brought, not everything it ever saw.
pub struct Intake {
    evaluator: Evaluator,
    /// (subject, state, state timestamp) of taken events, with when they arrived.
    states: HashMap<(String, String, u64), u64>,
    /// The same keys in arrival order, for expiry.
    order: VecDeque<(u64, (String, String, u64))>,
    memory_ms: u64,
}

impl Intake {
    /// An intake for `config`'s triggers that remembers copies for `memory_ms` (at least the
    /// longest `within` plus the longest `cooldown` of the triggers, so that nothing a trigger
    /// may still count is forgotten).
    pub fn new(config: &TriggerConfig, memory_ms: u64) -> Intake {
        Intake {
            evaluator: Evaluator::new(config),
            states: HashMap::new(),
            order: VecDeque::new(),
            memory_ms: memory_ms.max(memory_needed(config)),
        }
    }

    /// How long copies are remembered (ms).
    pub fn memory_ms(&self) -> u64 {
        self.memory_ms
    }

    /// A run of `trigger` another daemon started at `started_ms` was taken over: see
    /// [`crate::triggers::Evaluator::acted_on`].
    pub fn acted_on(&mut self, trigger: &str, started_ms: u64) -> bool {
        self.evaluator.acted_on(trigger, started_ms)
    }

    /// Takes one message body received at `received_ms` (ms since the Unix epoch).
    pub fn take(&mut self, body: &str, received_ms: u64) -> Verdict {
        let event: Value = match serde_json::from_str(body) {
            Ok(v) => v,
            Err(e) => {
                return Verdict::Malformed {
                    reason: format!("not JSON: {e}"),
                };
            }
        };
        self.take_value(&event, received_ms)
    }

    /// [`Intake::take`] of an already parsed event.
    pub fn take_value(&mut self, event: &Value, received_ms: u64) -> Verdict {
        if let Some(reason) = malformed(event) {
            return Verdict::Malformed { reason };
        }
        let state = event.pointer("/detail/state/value").and_then(Value::as_str);
        let stamp = event
            .pointer("/detail/state/timestamp")
            .and_then(Value::as_str)
            .and_then(|t| crate::triggers::parse_timestamp(t).ok());
        let subject = event
            .pointer("/resources/0")
            .or_else(|| event.pointer("/detail/alarmName"))
            .and_then(Value::as_str);
        // Only events that carry their state's own timestamp can be recognised as copies
        // this way; others rely on their id.
        let key = match (subject, state, stamp) {
            (Some(s), Some(v), Some(t)) => Some((s.to_string(), v.to_string(), t)),
            _ => None,
        };
        if let Some(k) = &key
            && self.states.contains_key(k)
        {
            return Verdict::Duplicate;
        }
        let obs = self.evaluator.observe(event, received_ms);
        if obs.duplicate {
            return Verdict::Duplicate;
        }
        if obs.matched.is_empty() {
            return Verdict::Foreign;
        }
        if let Some(k) = key {
            self.states.insert(k.clone(), received_ms);
            self.order.push_back((received_ms, k));
        }
        if obs.stale && obs.firings.is_empty() {
            return Verdict::Stale;
        }
        Verdict::Taken {
            observation: Box::new(obs),
        }
    }

    /// Forgets what arrived more than `memory_ms` before `now_ms`. Returns how many keys and
    /// ids were forgotten.
    pub fn expire(&mut self, now_ms: u64) -> usize {
        let before = now_ms.saturating_sub(self.memory_ms);
        let mut n = 0;
        while let Some((at, _)) = self.order.front() {
            if *at >= before {
                break;
            }
            let (at, key) = self.order.pop_front().expect("front");
            if self.states.get(&key) == Some(&at) {
                self.states.remove(&key);
            }
            n += 1;
        }
        n + self.evaluator.forget_ids_before(before)
    }

    /// How many ids and keys it remembers now (for the memory measurement).
    pub fn remembered(&self) -> usize {
        self.states.len() + self.evaluator.remembered_ids()
    }
}

/// The longest `within` plus the longest `cooldown` of `config`'s triggers (ms).
pub fn memory_needed(config: &TriggerConfig) -> u64 {
    let within = config.triggers.iter().map(|t| t.within_ms).max();
    let cooldown = config.triggers.iter().map(|t| t.cooldown_ms).max();
    within.unwrap_or(0) + cooldown.unwrap_or(0)
}

/// Why `event` is not an EventBridge event, if it is not.
fn malformed(event: &Value) -> Option<String> {
    let Some(map) = event.as_object() else {
        return Some(format!(
            "an event is a JSON object, this is {}",
            json_kind(event)
        ));
    };
    for field in ["source", "detail-type"] {
        match map.get(field) {
            Some(Value::String(_)) => {}
            Some(other) => {
                return Some(format!(
                    "`{field}` must be text, it is {}",
                    json_kind(other)
                ));
            }
            None => return Some(format!("no `{field}`: not an EventBridge event")),
        }
    }
    if let Some(d) = map.get("detail")
        && !d.is_object()
    {
        return Some(format!(
            "`detail` must be an object, it is {}",
            json_kind(d)
        ));
    }
    None
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde_json::json;

    use super::*;

    const T0: u64 = 1_795_979_052_000;

    fn config() -> TriggerConfig {
        let text = r#"
version: 1
triggers:
  - name: primary-down
    runbook: failover.yaml
    signals:
      - name: hc
        pattern:
          source: [aws.cloudwatch]
          detail-type: [CloudWatch Alarm State Change]
          detail:
            alarmName: [{ prefix: health-check-alarm-primary- }]
            state: { value: [ALARM] }
      - name: outage
        pattern:
          source: [aws.cloudwatch]
          detail-type: [CloudWatch Alarm State Change]
          detail:
            alarmName: [{ prefix: regional-outage-alarm- }]
            state: { value: [ALARM] }
    require: 2 of 2
    within: 5m
    cooldown: 15m
"#;
        TriggerConfig::parse(text, Path::new("drflow.yaml")).unwrap()
    }

    fn alarm(id: &str, name: &str, state: &str, at_ms: u64) -> String {
        json!({
            "version": "0", "id": id, "source": "aws.cloudwatch",
            "detail-type": "CloudWatch Alarm State Change", "region": "us-east-1",
            "resources": [format!("arn:aws:cloudwatch:us-east-1:123456789012:alarm:{name}")],
            "detail": {"alarmName": name, "state": {
                "value": state,
                "timestamp": crate::iso8601(at_ms as f64 / 1000.0),
            }},
        })
        .to_string()
    }

    fn fired(v: &Verdict) -> usize {
        match v {
            Verdict::Taken { observation } => observation.firings.len(),
            _ => 0,
        }
    }

    #[test]
    fn malformed_and_foreign_messages_are_dropped_and_say_why() {
        let mut intake = Intake::new(&config(), 0);
        for (body, why) in [
            ("{not json", "not JSON"),
            ("[1,2]", "a JSON object, this is a list"),
            ("{\"detail-type\": \"x\"}", "no `source`"),
            (
                "{\"source\": 3, \"detail-type\": \"x\"}",
                "`source` must be text",
            ),
            (
                "{\"source\": \"a\", \"detail-type\": \"x\", \"detail\": []}",
                "`detail` must be an object",
            ),
        ] {
            match intake.take(body, T0) {
                Verdict::Malformed { reason } => assert!(reason.contains(why), "{body}: {reason}"),
                other => panic!("{body}: {other:?}"),
            }
        }
        let other_alarm = alarm("e1", "cpu-high-prod", "ALARM", T0);
        assert_eq!(intake.take(&other_alarm, T0), Verdict::Foreign);
        let ec2 = json!({"source": "aws.ec2", "detail-type": "EC2 Instance State-change Notification", "detail": {}});
        assert_eq!(intake.take(&ec2.to_string(), T0), Verdict::Foreign);
    }

    #[test]
    fn copies_by_id_or_by_alarm_and_state_timestamp_are_duplicates() {
        let mut intake = Intake::new(&config(), 0);
        let hc = alarm("e1", "health-check-alarm-primary-prod", "ALARM", T0);
        assert_eq!(intake.take(&hc, T0 + 10).name(), "taken");
        assert_eq!(intake.take(&hc, T0 + 20), Verdict::Duplicate);
        // The same state change read again with another id (the reconcile's copy).
        let again = alarm(
            "reconcile-1",
            "health-check-alarm-primary-prod",
            "ALARM",
            T0,
        );
        assert_eq!(intake.take(&again, T0 + 30), Verdict::Duplicate);
        let outage = alarm("e2", "regional-outage-alarm-prod", "ALARM", T0 + 1000);
        assert_eq!(fired(&intake.take(&outage, T0 + 1100)), 1);
        // Redelivered after the firing: still nothing new.
        assert_eq!(intake.take(&outage, T0 + 5000), Verdict::Duplicate);
    }

    #[test]
    fn a_late_ok_does_not_cancel_a_newer_alarm_and_an_old_alarm_does_not_fire_again() {
        let mut intake = Intake::new(&config(), 0);
        let hc = "health-check-alarm-primary-prod";
        assert_eq!(
            intake
                .take(&alarm("a2", hc, "ALARM", T0 + 60_000), T0 + 61_000)
                .name(),
            "taken"
        );
        // The OK from before the ALARM arrives late: stale.
        assert_eq!(
            intake.take(&alarm("a1", hc, "OK", T0), T0 + 62_000),
            Verdict::Stale
        );
        let outage = alarm("b1", "regional-outage-alarm-prod", "ALARM", T0 + 70_000);
        assert_eq!(fired(&intake.take(&outage, T0 + 71_000)), 1);
        // INSUFFICIENT_DATA is unknown, not healthy, and ends nothing it should not; an ALARM
        // older than it is stale.
        let unknown = alarm("a3", hc, "INSUFFICIENT_DATA", T0 + 80_000);
        assert_eq!(intake.take(&unknown, T0 + 81_000).name(), "taken");
        let old = alarm("a0", hc, "ALARM", T0 + 30_000);
        assert_eq!(intake.take(&old, T0 + 82_000), Verdict::Stale);
    }

    #[test]
    fn memory_stays_bounded_over_many_events() {
        let mut intake = Intake::new(&config(), 0);
        assert_eq!(intake.memory_ms(), 20 * 60_000);
        let mut most = 0;
        for i in 0..10_000u64 {
            let at = T0 + i * 1000;
            let state = if i % 2 == 0 { "ALARM" } else { "OK" };
            let body = alarm(
                &format!("e{i}"),
                "health-check-alarm-primary-prod",
                state,
                at,
            );
            assert_ne!(intake.take(&body, at).name(), "malformed");
            intake.expire(at);
            most = most.max(intake.remembered());
        }
        // 20 minutes of one event a second, two memories each: 2,400, never 20,000.
        assert!(most <= 2 * 1201, "remembered up to {most}");
    }
}
