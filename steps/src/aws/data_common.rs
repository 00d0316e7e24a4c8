//! Small helpers shared by the data-tier mappings (`kms.rs`, `iam.rs`, `s3.rs`, `dynamodb.rs`,
//! `rds.rs`): building a [`Resource`] from what AWS returned, reading a spec, decoding policies.

use serde_json::{Map, Value};

use crate::backend::{CloudError, ErrorKind, Kind, Resource, ResourceState, Tags, UpdateRequest};

/// The tag that marks what drflow manages, and its value.
pub(super) const MANAGED_BY: (&str, &str) = ("ManagedBy", "drflow");

/// Whether these tags mark a resource drflow manages.
pub(super) fn managed(tags: &Tags) -> bool {
    tags.get(MANAGED_BY.0).map(String::as_str) == Some(MANAGED_BY.1)
}

/// A found resource (no parent, no `depends_on`: AWS does not record those).
#[allow(clippy::too_many_arguments)]
pub(super) fn resource(
    kind: Kind,
    region: &str,
    name: &str,
    id: impl Into<String>,
    arn: impl Into<String>,
    spec: Map<String, Value>,
    attrs: Map<String, Value>,
    tags: Tags,
    state: ResourceState,
) -> Resource {
    Resource {
        kind,
        region: region.to_string(),
        name: name.to_string(),
        parent: None,
        id: id.into(),
        arn: arn.into(),
        spec: Value::Object(spec),
        attrs,
        tags,
        state,
        depends_on: Vec::new(),
    }
}

/// `Ok(None)` for a `NotFound` error: the sub-resource (a bucket's policy, a table) is absent.
pub(super) fn absent<T>(r: Result<T, CloudError>) -> Result<Option<T>, CloudError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.kind == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether the update's drifted paths touch `key` (the key itself or a path below it).
pub(super) fn drifted(req: &UpdateRequest, key: &str) -> bool {
    req.drifted
        .iter()
        .any(|p| p == key || p.strip_prefix(key).is_some_and(|r| r.starts_with('.')))
}

/// The desired tags that the resource lacks or holds with another value.
pub(super) fn tags_to_set(current: &Tags, desired: &Tags) -> Tags {
    desired
        .iter()
        .filter(|(k, v)| current.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// A string field of a spec.
pub(super) fn s<'a>(spec: &'a Value, key: &str) -> Option<&'a str> {
    spec.get(key).and_then(Value::as_str)
}

/// A boolean field of a spec.
pub(super) fn b(spec: &Value, key: &str) -> Option<bool> {
    spec.get(key).and_then(Value::as_bool)
}

/// An integer field of a spec.
pub(super) fn i(spec: &Value, key: &str) -> Option<i64> {
    spec.get(key).and_then(Value::as_i64)
}

/// A list of strings of a spec (empty when absent).
pub(super) fn strings(spec: &Value, key: &str) -> Vec<String> {
    spec.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// A missing required spec field, as the seam's error.
pub(super) fn missing(kind: Kind, key: &str) -> CloudError {
    CloudError::new(
        ErrorKind::InvalidInput,
        format!("the {kind} spec has no `{key}`, which the aws target needs to create it"),
    )
}

/// A policy document as IAM returns it (URL-encoded JSON) or as S3 and KMS return it (plain
/// JSON), parsed to an object; a document that is not JSON is kept as its string.
pub(super) fn decode_policy(doc: &str) -> Value {
    let text = if doc.trim_start().starts_with('{') {
        doc.to_string()
    } else {
        percent_decode(doc)
    };
    serde_json::from_str(&text).unwrap_or(Value::String(text))
}

/// RFC 3986 percent-decoding (IAM encodes its policy documents so; `+` is not a space there).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
pub(super) mod testing {
    //! The moto rule of every data-tier test: the endpoint from `DRFLOW_MOTO_ENDPOINT`; unset,
    //! a failure in CI and a loud skip elsewhere.

    use super::super::Clients;
    use crate::backend::Tags;

    /// Clients for the moto at `DRFLOW_MOTO_ENDPOINT` ([`crate::aws::testing::moto`]: a loud
    /// skip without one, a failure in CI).
    pub(in crate::aws) fn moto(_test: &str) -> Option<Clients> {
        crate::aws::testing::moto_clients()
    }

    /// A name no other test (nor an earlier run against the same moto) uses.
    pub(in crate::aws) fn unique(prefix: &str) -> String {
        crate::aws::testing::unique(prefix)
    }

    /// The tags a step puts on a resource.
    pub(in crate::aws) fn tags(name: &str) -> Tags {
        [
            ("ManagedBy", "drflow"),
            ("Name", name),
            ("Environment", "Test"),
            ("FailoverRole", "Primary"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iam_policies_are_url_decoded_and_parsed() {
        let enc = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%5D%7D";
        assert_eq!(
            decode_policy(enc),
            serde_json::json!({"Version": "2012-10-17", "Statement": []})
        );
        assert_eq!(
            decode_policy("{\"a\": \"x+y\"}"),
            serde_json::json!({"a": "x+y"})
        );
    }
}
