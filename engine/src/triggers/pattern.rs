//! EventBridge event patterns: whether an event matches one, and whether one is well formed.
//!
//! [`pattern_matches`] evaluates a pattern as EventBridge's content filtering does (Amazon
//! EventBridge User Guide, "Content filtering in event patterns"): every field of the pattern
//! must match (AND); a field's array of conditions matches when one of them does (OR); a
//! condition is an exact value or one of the operators `prefix`, `suffix`, `anything-but` (a
//! value, a list of values, or `prefix`/`suffix`/`equals-ignore-case`), `equals-ignore-case`,
//! `exists` and `numeric`; an event field holding an array matches when one of its elements
//! does. An operator it does not know matches nothing, so that a rule is never wider here than
//! it would be in AWS (which refuses such a rule at `PutRule`).
//!
//! [`check_pattern`] is what `PutRule` would refuse: `drflow.yaml` reports it as an error
//! instead of silently matching nothing.

use serde_json::Value;

/// The operators a condition may use.
pub const OPERATORS: &[&str] = &[
    "prefix",
    "suffix",
    "anything-but",
    "equals-ignore-case",
    "exists",
    "numeric",
];

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

/// A problem in a pattern: what is wrong, and the path of keys to it (`["detail", "state",
/// "value"]`), so a reader that kept positions can point at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternProblem {
    /// The keys from the pattern's root to the offending value; a number for an array index.
    pub path: Vec<String>,
    /// What is wrong and what to write instead.
    pub message: String,
}

/// Checks that `pattern` is one EventBridge would accept: a non-empty map whose leaves are
/// non-empty arrays of conditions, each an exact value (string, number, bool or null) or a
/// one-key map naming a known operator with a well-formed argument. Returns what is wrong.
pub fn check_pattern(pattern: &Value) -> Result<(), String> {
    let mut problems = Vec::new();
    check_pattern_at(pattern, &mut Vec::new(), &mut problems);
    match problems.into_iter().next() {
        None => Ok(()),
        Some(p) if p.path.is_empty() => Err(p.message),
        Some(p) => Err(format!("at `{}`: {}", p.path.join("."), p.message)),
    }
}

/// Every problem in `pattern`, each with its path (see [`check_pattern`]).
pub fn pattern_problems(pattern: &Value) -> Vec<PatternProblem> {
    let mut problems = Vec::new();
    check_pattern_at(pattern, &mut Vec::new(), &mut problems);
    problems
}

fn check_pattern_at(node: &Value, path: &mut Vec<String>, out: &mut Vec<PatternProblem>) {
    let mut problem = |path: &[String], message: String| {
        out.push(PatternProblem {
            path: path.to_vec(),
            message,
        })
    };
    let Some(fields) = node.as_object() else {
        problem(
            path,
            format!(
                "a pattern is a map of event fields, but this is {}",
                shape(node)
            ),
        );
        return;
    };
    if fields.is_empty() {
        problem(
            path,
            "an empty map matches every event; name the fields to match".into(),
        );
    }
    for (key, want) in fields {
        path.push(key.clone());
        match want {
            Value::Object(_) => check_pattern_at(want, path, out),
            Value::Array(conditions) if conditions.is_empty() => out.push(PatternProblem {
                path: path.clone(),
                message: "an empty list matches nothing; list the values to match".into(),
            }),
            Value::Array(conditions) => {
                for (i, c) in conditions.iter().enumerate() {
                    path.push(i.to_string());
                    if let Err(message) = check_condition(c) {
                        out.push(PatternProblem {
                            path: path.clone(),
                            message,
                        });
                    }
                    path.pop();
                }
            }
            other => out.push(PatternProblem {
                path: path.clone(),
                message: format!(
                    "a pattern's leaf must be a list of values, but this is {}; write `[{other}]`",
                    shape(other)
                ),
            }),
        }
        path.pop();
    }
}

fn check_condition(c: &Value) -> Result<(), String> {
    let Some(ops) = c.as_object() else {
        return match c {
            Value::Array(_) => {
                Err("a condition cannot be a list; flatten it into the field's list".into())
            }
            _ => Ok(()),
        };
    };
    let mut ops = ops.iter();
    let (Some((op, arg)), None) = (ops.next(), ops.next()) else {
        return Err(
            "a condition is a map with exactly one operator, e.g. `{prefix: health-}`".into(),
        );
    };
    let text = |what: &str| match arg {
        Value::String(_) => Ok(()),
        _ => Err(format!("`{op}` takes {what}, but this is {}", shape(arg))),
    };
    match op.as_str() {
        "prefix" | "suffix" | "equals-ignore-case" => text("a string"),
        "exists" => match arg {
            Value::Bool(_) => Ok(()),
            _ => Err(format!(
                "`exists` takes true or false, but this is {}",
                shape(arg)
            )),
        },
        "numeric" => check_numeric(arg),
        "anything-but" => match arg {
            Value::Object(inner) => {
                let mut inner = inner.iter();
                match (inner.next(), inner.next()) {
                    (Some((k, Value::String(_))), None)
                        if matches!(k.as_str(), "prefix" | "suffix" | "equals-ignore-case") =>
                    {
                        Ok(())
                    }
                    _ => Err(
                        "`anything-but` takes a value, a list of values, or one of `{prefix: …}`, `{suffix: …}`, `{equals-ignore-case: …}`"
                            .into(),
                    ),
                }
            }
            Value::Array(values) if values.iter().any(|v| v.is_object() || v.is_array()) => {
                Err("`anything-but`'s list holds plain values only".into())
            }
            _ => Ok(()),
        },
        other => Err(format!(
            "unknown operator `{other}`; {}",
            crate::diag::suggest(other, OPERATORS)
        )),
    }
}

fn check_numeric(arg: &Value) -> Result<(), String> {
    const HINT: &str =
        "write comparisons and numbers in turn, e.g. `{numeric: [\">\", 0, \"<=\", 5]}`";
    let Some(terms) = arg.as_array().filter(|t| !t.is_empty() && t.len() % 2 == 0) else {
        return Err(format!("`numeric` takes a list of pairs; {HINT}"));
    };
    for pair in terms.chunks(2) {
        let op_ok = matches!(pair[0].as_str(), Some("<" | "<=" | "=" | ">" | ">="));
        if !op_ok || !pair[1].is_number() {
            return Err(format!("`numeric` has {} {}; {HINT}", pair[0], pair[1]));
        }
    }
    Ok(())
}

fn shape(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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

    #[test]
    fn check_accepts_every_operator_eventbridge_has() {
        let p = json!({
            "source": ["aws.cloudwatch"],
            "detail": {
                "alarmName": [{"prefix": "a-"}, {"suffix": "-b"}, {"equals-ignore-case": "C"}, "d"],
                "other": [{"anything-but": "x"}, {"anything-but": ["x", "y"]}, {"anything-but": {"prefix": "z"}}],
                "n": [{"numeric": [">", 0, "<=", 5]}],
                "gone": [{"exists": false}],
            }
        });
        assert_eq!(check_pattern(&p), Ok(()));
    }

    #[test]
    fn check_refuses_what_put_rule_would() {
        let err = |p: Value| check_pattern(&p).unwrap_err();
        let e = err(json!({"detail": {"alarmName": [{"prefx": "a"}]}}));
        assert!(
            e.contains("unknown operator `prefx`") && e.contains("did you mean `prefix`?"),
            "{e}"
        );
        assert!(e.starts_with("at `detail.alarmName.0`"), "{e}");
        let e = err(json!({"source": "aws.cloudwatch"}));
        assert!(e.contains("must be a list of values"), "{e}");
        assert!(err(json!({"source": []})).contains("empty list"));
        assert!(err(json!({})).contains("empty map"));
        assert!(err(json!(["x"])).contains("is a map of event fields"));
        assert!(err(json!({"n": [{"numeric": [">", "zero"]}]})).contains("`numeric` has"));
        assert!(err(json!({"n": [{"prefix": 3}]})).contains("takes a string"));
        assert!(
            err(json!({"n": [{"prefix": "a", "suffix": "b"}]})).contains("exactly one operator")
        );
        assert!(err(json!({"n": [{"exists": "yes"}]})).contains("true or false"));
        assert!(
            err(json!({"n": [{"anything-but": {"wildcard": "a"}}]}))
                .contains("`anything-but` takes")
        );
    }
}
