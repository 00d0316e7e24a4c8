//! EventBridge in the sim: which rules an event matches, and the alarm state-change events
//! CloudWatch puts on the bus.
//!
//! Matching is the engine's [`pattern_matches`] (`drflow_engine::triggers`), the one the
//! `drflow.yaml` triggers use, so the sim's rules and the daemon's triggers cannot disagree. An
//! operator it does not know matches nothing: a rule the sim stores is never wider than it
//! would be in AWS, which refuses such a rule at `PutRule`.

pub use drflow_engine::triggers::pattern_matches;
use serde_json::{Value, json};

use super::World;
use crate::backend::{Kind, Resource};

/// The event CloudWatch sends to EventBridge when `alarm` (a metric or composite alarm) moves
/// from `previous` to `state` (`OK`, `ALARM`, `INSUFFICIENT_DATA`): the fields rules select on,
/// without the times and reason of [`alarm_state_change_event_at`] (for checking routing).
pub fn alarm_state_change_event(alarm: &Resource, previous: &str, state: &str) -> Value {
    json!({
        "version": "0",
        "source": "aws.cloudwatch",
        "detail-type": "CloudWatch Alarm State Change",
        "account": super::ACCOUNT,
        "region": alarm.region,
        "resources": [alarm.arn],
        "detail": {
            "alarmName": alarm.name,
            "state": {"value": state},
            "previousState": {"value": previous},
        },
    })
}

/// When and why an alarm changed state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlarmTransition<'a> {
    /// The state it left.
    pub previous: &'a str,
    /// When it had entered that state (ms since the Unix epoch).
    pub previous_at_ms: u64,
    /// The state it entered.
    pub state: &'a str,
    /// When (ms since the Unix epoch).
    pub at_ms: u64,
    /// CloudWatch's `StateReason` for the new state.
    pub reason: &'a str,
}

/// The whole `CloudWatch Alarm State Change` event as CloudWatch sends it for `change`:
/// [`alarm_state_change_event`] plus `detail.state.timestamp` and
/// `detail.previousState.timestamp` (written as CloudWatch writes them,
/// `2026-11-29T19:04:12.123+0000`), `detail.state.reason` and, when the alarm has a
/// description, `detail.configuration.description`. Triggers order an alarm's states by
/// `detail.state.timestamp`, since events may arrive out of order.
pub fn alarm_state_change_event_at(alarm: &Resource, change: &AlarmTransition<'_>) -> Value {
    let mut event = alarm_state_change_event(alarm, change.previous, change.state);
    let detail = &mut event["detail"];
    detail["state"]["timestamp"] = cloudwatch_time(change.at_ms).into();
    detail["state"]["reason"] = change.reason.into();
    detail["previousState"]["timestamp"] = cloudwatch_time(change.previous_at_ms).into();
    if let Some(description) = alarm.spec.get("alarm_description").and_then(Value::as_str) {
        detail["configuration"] = json!({ "description": description });
    }
    event
}

/// `2026-11-29T19:04:12.123+0000`: CloudWatch's shape of an ISO 8601 time, in UTC (also the
/// shape of drflow's probe events, [`crate::watch`]).
pub(crate) fn cloudwatch_time(ms: u64) -> String {
    let iso = drflow_engine::iso8601(ms as f64 / 1000.0);
    format!("{}+0000", iso.trim_end_matches('Z'))
}

impl World {
    /// The EventBridge rules of `region` whose event pattern matches `event`, in creation
    /// order. Schedule rules (no pattern) match no event.
    pub fn rules_matching(&self, region: &str, event: &Value) -> Vec<Resource> {
        self.list(Some(region), Some(Kind::EventRule))
            .into_iter()
            .filter(|r| {
                r.spec
                    .get("event_pattern")
                    .is_some_and(|p| pattern_matches(p, event))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use drflow_engine::triggers::parse_timestamp;

    #[test]
    fn the_state_change_event_carries_when_and_why_as_cloudwatch_writes_them() {
        let arn = "arn:aws:cloudwatch:eu-west-1:000000000000:alarm:regional-outage-alarm-eu";
        let alarm = Resource {
            parent: None,
            kind: Kind::CompositeAlarm,
            region: "eu-west-1".into(),
            name: "regional-outage-alarm-eu".into(),
            id: arn.into(),
            arn: arn.into(),
            spec: json!({"alarm_description": "Regional outage: fail over"}),
            attrs: Default::default(),
            tags: Default::default(),
            state: crate::backend::ResourceState::Available,
            depends_on: vec![],
        };
        let change = AlarmTransition {
            previous: "OK",
            previous_at_ms: 1_795_979_000_000,
            state: "ALARM",
            at_ms: 1_795_979_052_123,
            reason: "Alarm rule evaluated to TRUE.",
        };
        let e = alarm_state_change_event_at(&alarm, &change);
        let d = &e["detail"];
        assert_eq!(d["state"]["timestamp"], "2026-11-29T19:04:12.123+0000");
        assert_eq!(
            parse_timestamp(d["state"]["timestamp"].as_str().unwrap()),
            Ok(change.at_ms)
        );
        assert_eq!(
            parse_timestamp(d["previousState"]["timestamp"].as_str().unwrap()),
            Ok(change.previous_at_ms)
        );
        assert_eq!(d["state"]["value"], "ALARM");
        assert_eq!(d["previousState"]["value"], "OK");
        assert_eq!(d["state"]["reason"], "Alarm rule evaluated to TRUE.");
        assert_eq!(
            d["configuration"]["description"],
            "Regional outage: fail over"
        );
        assert_eq!(e["resources"][0], alarm.arn);
    }
}
