//! Reading a step's evaluated `with:` map. The engine checked types against the declaration;
//! these helpers still fail with a clear `invalid_input` error rather than panic, because values
//! computed by expressions are only known at run time.

use drflow_engine::{Outputs, StepError};
use serde_json::Value;

use super::framework::Role;

/// A body's input holds every declared parameter (null when it has no default, see
/// `CloudStep::with_defaults`), so a key that is not there is a misspelt name: a bug that would
/// otherwise surface as a run-time `invalid_input` on a value the value check never saw.
fn declared(input: &Outputs, key: &str) {
    debug_assert!(
        input.contains_key(key),
        "a step body reads `{key}`, which its declaration does not have (declared: {:?})",
        input.keys().collect::<Vec<_>>()
    );
}

fn missing(key: &str, want: &str) -> StepError {
    StepError::invalid_input(format!("parameter `{key}` must be {want}"))
}

/// A required string.
pub fn str<'a>(input: &'a Outputs, key: &str) -> Result<&'a str, StepError> {
    declared(input, key);
    input
        .get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| missing(key, "a string"))
}

/// An optional string: absent, null or empty mean `None`.
pub fn opt_str<'a>(input: &'a Outputs, key: &str) -> Option<&'a str> {
    declared(input, key);
    input
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// A required whole number.
pub fn int(input: &Outputs, key: &str) -> Result<i64, StepError> {
    declared(input, key);
    input
        .get(key)
        .and_then(Value::as_i64)
        .ok_or_else(|| missing(key, "a whole number"))
}

/// A required bool.
pub fn bool(input: &Outputs, key: &str) -> Result<bool, StepError> {
    declared(input, key);
    input
        .get(key)
        .and_then(Value::as_bool)
        .ok_or_else(|| missing(key, "true or false"))
}

/// A list of strings (absent means empty).
pub fn strings(input: &Outputs, key: &str) -> Result<Vec<String>, StepError> {
    declared(input, key);
    match input.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| missing(key, "a list of strings"))
            })
            .collect(),
        Some(_) => Err(missing(key, "a list of strings")),
    }
}

/// A required non-empty list of strings.
pub fn nonempty_strings(input: &Outputs, key: &str) -> Result<Vec<String>, StepError> {
    let v = strings(input, key)?;
    if v.is_empty() {
        return Err(missing(key, "a non-empty list of strings"));
    }
    Ok(v)
}

/// The `role` parameter.
pub fn role(input: &Outputs) -> Result<Role, StepError> {
    Role::parse(str(input, "role")?)
}

/// A duration in seconds (`90s`, `5m`, or a number).
pub fn duration(input: &Outputs, key: &str) -> Result<std::time::Duration, StepError> {
    declared(input, key);
    match input.get(key) {
        Some(Value::String(s)) => {
            drflow_engine::parse_duration(s).map_err(StepError::invalid_input)
        }
        Some(Value::Number(n)) => n
            .as_f64()
            .filter(|f| *f >= 0.0)
            .map(std::time::Duration::from_secs_f64)
            .ok_or_else(|| missing(key, "a duration")),
        _ => Err(missing(key, "a duration such as 30s or 45m")),
    }
}

/// A number, or `default` when absent.
pub fn f64_or(input: &Outputs, key: &str, default: f64) -> f64 {
    declared(input, key);
    input.get(key).and_then(Value::as_f64).unwrap_or(default)
}
