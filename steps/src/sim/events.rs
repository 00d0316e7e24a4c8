//! EventBridge in the sim: which rules an event matches.
//!
//! [`pattern_matches`] evaluates an EventBridge event pattern against an event as EventBridge's
//! content filtering does (Amazon EventBridge User Guide, "Content filtering in event
//! patterns"): every field of the pattern must match (AND); a field's array of conditions
//! matches when one of them does (OR); a condition is an exact value or one of the operators
//! `prefix`, `suffix`, `anything-but` (a value, a list of values, or `prefix`/`suffix`),
//! `equals-ignore-case`, `exists` and `numeric`; an event field holding an array matches when
//! one of its elements does. An operator the sim does not know matches nothing, so that a rule
//! is never wider in the sim than it would be in AWS.

use serde_json::{Value, json};

use super::World;
use crate::backend::{Kind, Resource};

/// Whether `event` matches the EventBridge event `pattern`.
pub fn pattern_matches(pattern: &Value, event: &Value) -> bool {
    let Some(fields) = pattern.as_object() else {
        return false;
    };
    fields.iter().all(|(key, want)| {
        let got = event.get(key);
        match want {
            Value::Object(_) => got.is_some_and(|g| pattern_matches(want, g)),
            Value::Array(conditions) => conditions.iter().any(|c| condition_matches(c, got)),
            // A pattern's leaves are arrays; anything else is not a valid pattern.
            _ => false,
        }
    })
}

/// One condition of a field's array against the event's value (`None`: the field is absent).
fn condition_matches(condition: &Value, got: Option<&Value>) -> bool {
    if let Some(ops) = condition.as_object()
        && let Some(exists) = ops.get("exists").and_then(Value::as_bool)
    {
        return got.is_some() == exists;
    }
    match got {
        None => false,
        Some(Value::Array(items)) => items.iter().any(|v| leaf_matches(condition, v)),
        Some(v) => leaf_matches(condition, v),
    }
}

fn leaf_matches(condition: &Value, value: &Value) -> bool {
    let Some(ops) = condition.as_object() else {
        return condition == value;
    };
    let text = value.as_str();
    let Some((op, arg)) = ops.iter().next().filter(|_| ops.len() == 1) else {
        return false;
    };
    match op.as_str() {
        "prefix" => text
            .zip(arg.as_str())
            .is_some_and(|(t, p)| t.starts_with(p)),
        "suffix" => text.zip(arg.as_str()).is_some_and(|(t, s)| t.ends_with(s)),
        "equals-ignore-case" => text
            .zip(arg.as_str())
            .is_some_and(|(t, a)| t.eq_ignore_ascii_case(a)),
        "anything-but" => match arg {
            Value::Array(values) => !values.contains(value),
            Value::Object(inner) => match inner.iter().next() {
                Some((k, Value::String(a))) if inner.len() == 1 => match (k.as_str(), text) {
                    ("prefix", Some(t)) => !t.starts_with(a.as_str()),
                    ("suffix", Some(t)) => !t.ends_with(a.as_str()),
                    ("equals-ignore-case", Some(t)) => !t.eq_ignore_ascii_case(a),
                    _ => false,
                },
                _ => false,
            },
            other => other != value,
        },
        "numeric" => numeric_matches(arg, value),
        _ => false,
    }
}

/// `{"numeric": [">", 0, "<=", 5]}`: every comparison holds.
fn numeric_matches(arg: &Value, value: &Value) -> bool {
    let (Some(terms), Some(n)) = (arg.as_array(), value.as_f64()) else {
        return false;
    };
    terms.len() % 2 == 0
        && terms.chunks(2).all(|pair| {
            let Some(bound) = pair[1].as_f64() else {
                return false;
            };
            match pair[0].as_str() {
                Some("<") => n < bound,
                Some("<=") => n <= bound,
                Some("=") => n == bound,
                Some(">") => n > bound,
                Some(">=") => n >= bound,
                _ => false,
            }
        })
}

/// The event CloudWatch sends to EventBridge when `alarm` (a metric or composite alarm) moves
/// from `previous` to `state` (`OK`, `ALARM`, `INSUFFICIENT_DATA`): the fields rules select on.
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

    fn alarm(name: &str) -> Value {
        json!({"source": "aws.cloudwatch", "detail": {"alarmName": name}})
    }

    #[test]
    fn a_suffix_matches_every_name_ending_with_it_an_exact_list_only_its_names() {
        // The shape of the bug in issue 7: `-eu` also ends `…-prod-eu`.
        let by_suffix = json!({"detail": {"alarmName": [{"suffix": "-eu"}]}});
        assert!(pattern_matches(&by_suffix, &alarm("lag-alarm-eu")));
        assert!(pattern_matches(&by_suffix, &alarm("lag-alarm-prod-eu")));
        let exact = json!({"detail": {"alarmName": ["lag-alarm-eu", "hc-alarm-eu"]}});
        assert!(pattern_matches(&exact, &alarm("lag-alarm-eu")));
        assert!(pattern_matches(&exact, &alarm("hc-alarm-eu")));
        assert!(!pattern_matches(&exact, &alarm("lag-alarm-prod-eu")));
        assert!(!pattern_matches(&exact, &alarm("lag-alarm-e")));
    }

    #[test]
    fn fields_are_anded_conditions_ored_and_nested() {
        let p =
            json!({"source": ["aws.cloudwatch"], "detail": {"alarmName": ["a", {"prefix": "b-"}]}});
        assert!(pattern_matches(&p, &alarm("a")));
        assert!(pattern_matches(&p, &alarm("b-1")));
        assert!(!pattern_matches(&p, &alarm("c")));
        let other_source = json!({"source": "aws.ec2", "detail": {"alarmName": "a"}});
        assert!(!pattern_matches(&p, &other_source));
        // A missing field fails the match, unless the pattern asks for its absence.
        assert!(!pattern_matches(&p, &json!({"source": "aws.cloudwatch"})));
        let absent = json!({"detail": {"reason": [{"exists": false}]}});
        assert!(pattern_matches(&absent, &alarm("a")));
    }

    #[test]
    fn operators() {
        let v = |p: Value, x: Value| pattern_matches(&json!({ "f": [p] }), &json!({ "f": x }));
        assert!(v(json!({"anything-but": "a"}), json!("b")));
        assert!(!v(json!({"anything-but": "a"}), json!("a")));
        assert!(!v(json!({"anything-but": ["a", "b"]}), json!("b")));
        assert!(!v(json!({"anything-but": {"prefix": "a"}}), json!("ab")));
        assert!(v(json!({"anything-but": {"suffix": "a"}}), json!("ab")));
        assert!(v(json!({"equals-ignore-case": "ALARM"}), json!("alarm")));
        assert!(v(json!({"numeric": [">", 0, "<=", 5]}), json!(5)));
        assert!(!v(json!({"numeric": [">", 0, "<=", 5]}), json!(0)));
        // An event array matches when one element does.
        assert!(v(json!("x"), json!(["w", "x"])));
        // Unknown operators match nothing rather than everything.
        assert!(!v(json!({"wildcard": "*"}), json!("x")));
    }
}
