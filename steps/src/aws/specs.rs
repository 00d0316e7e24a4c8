//! Small helpers the monitoring kinds' files share (cloudwatch, events, lambda, sqs, sns): reading
//! a spec's keys, decoding what AWS returns as strings, comparing tags, naming errors.

use serde_json::Value;

use crate::backend::{CloudError, ErrorKind, Tags};

/// The tag every taggable resource drflow makes carries; `list` returns only those.
pub(super) const MANAGED_BY: (&str, &str) = ("ManagedBy", "drflow");

/// A string key of a spec.
pub(super) fn text<'a>(spec: &'a Value, key: &str) -> Option<&'a str> {
    spec.get(key).and_then(Value::as_str)
}

/// An integer key of a spec, as the SDK's `i32`.
pub(super) fn int(spec: &Value, key: &str) -> Option<i32> {
    spec.get(key)
        .and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)))
        .and_then(|n| i32::try_from(n).ok())
}

/// A list-of-strings key of a spec (`None` when absent, so "not sent" differs from "empty").
pub(super) fn strings(spec: &Value, key: &str) -> Option<Vec<String>> {
    spec.get(key).and_then(Value::as_array).map(|a| {
        a.iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect()
    })
}

/// A JSON object a spec holds (a policy, an event pattern) as the string AWS takes.
pub(super) fn json_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A document AWS returns as a string (policies, event patterns, dashboard bodies), parsed back
/// into the object the steps wrote. Some services URL-encode it; a string that is not JSON is
/// kept as a string, so drift shows it instead of hiding it.
pub(super) fn parse_doc(s: &str) -> Value {
    if let Ok(v) = serde_json::from_str::<Value>(s) {
        return v;
    }
    let decoded = url_decode(s);
    serde_json::from_str(&decoded).unwrap_or_else(|_| Value::String(s.to_string()))
}

fn url_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                    }
                    Err(_) => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A number AWS returns as a double (an alarm's threshold), as an integer when it is one, so a
/// spec written with `30000` reads back as `30000`.
pub(super) fn number(f: f64) -> Value {
    if f.fract() == 0.0 && f.abs() < 9.0e15 {
        Value::from(f as i64)
    } else {
        Value::from(f)
    }
}

/// A numeric string AWS returns (SQS attributes) as a JSON number.
pub(super) fn int_text(s: &str) -> Value {
    s.parse::<i64>()
        .map(Value::from)
        .unwrap_or_else(|_| Value::String(s.to_string()))
}

/// Whether `drifted` names `key` itself or a path under it.
pub(super) fn drifted(drifted: &[String], key: &str) -> bool {
    drifted
        .iter()
        .any(|p| p == key || p == "spec" || (p.starts_with(key) && p[key.len()..].starts_with('.')))
}

/// The desired tags the resource does not carry with that value (tags not named are kept, as
/// the seam says).
pub(super) fn tags_to_set(current: &Tags, desired: &Tags) -> Tags {
    desired
        .iter()
        .filter(|(k, v)| current.get(*k) != Some(v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Whether the tags mark a resource drflow manages.
pub(super) fn managed(tags: &Tags) -> bool {
    tags.get(MANAGED_BY.0).map(String::as_str) == Some(MANAGED_BY.1)
}

/// Whether a mapped SDK error carries this AWS error code (its message is
/// `service Operation in region: Code: message`).
pub(super) fn has_code(e: &CloudError, code: &str) -> bool {
    e.message.contains(&format!(": {code}"))
}

/// The same error with another kind: where a service's own code means more than the generic
/// mapping can know (Lambda's "role cannot be assumed yet" is eventual consistency).
pub(super) fn rekind(mut e: CloudError, kind: ErrorKind) -> CloudError {
    e.kind = kind;
    e
}

/// A request the mapping cannot send.
pub(super) fn invalid(message: impl Into<String>) -> CloudError {
    CloudError::new(ErrorKind::InvalidInput, message)
}

/// A response that lacks what AWS always returns.
pub(super) fn missing(what: &str) -> CloudError {
    CloudError::new(
        ErrorKind::Internal,
        format!("the aws response had no {what}"),
    )
}

/// The ARN partition of a region.
pub(super) fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// The account id inside an ARN (`arn:aws:sns:eu-south-1:123456789012:topic`).
pub(super) fn arn_account(arn: &str) -> &str {
    arn.split(':').nth(4).unwrap_or("")
}

#[cfg(test)]
pub(super) mod test_support {
    //! What the moto tests of these files share; moto itself comes from `crate::aws::testing`.

    use crate::aws::Clients;
    use crate::backend::Tags;

    /// Clients for the moto at `DRFLOW_MOTO_ENDPOINT` ([`crate::aws::testing::moto`]: a loud
    /// skip without one, a failure in CI).
    pub fn moto(_test: &str) -> Option<Clients> {
        crate::aws::testing::moto_clients()
    }

    /// A name no other test (or earlier run against the same moto) uses.
    pub fn unique(prefix: &str) -> String {
        crate::aws::testing::unique(prefix)
    }

    /// The standard tags of a resource named `name`.
    pub fn tags(name: &str) -> Tags {
        [
            ("Name", name),
            ("ManagedBy", "drflow"),
            ("Environment", "Production"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn documents_come_back_as_objects() {
        assert_eq!(parse_doc(r#"{"a":[1]}"#), json!({"a": [1]}));
        assert_eq!(parse_doc("%7B%22a%22%3A1%7D"), json!({"a": 1}));
        assert_eq!(parse_doc("not json"), json!("not json"));
    }

    #[test]
    fn drifted_paths_match_their_keys() {
        let d = vec!["code.sha".to_string(), "timeout".to_string()];
        assert!(drifted(&d, "code"));
        assert!(drifted(&d, "timeout"));
        assert!(!drifted(&d, "time"));
        assert!(!drifted(&d, "environment"));
    }

    #[test]
    fn numbers_read_back_as_written() {
        assert_eq!(number(30000.0), json!(30000));
        assert_eq!(number(0.5), json!(0.5));
        assert_eq!(int_text("300"), json!(300));
    }
}
