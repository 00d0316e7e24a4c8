//! Drift: how an existing resource differs from what a step wants.

use serde_json::Value;

/// The paths (`a.b.c`) where `actual` differs from `desired`. Only keys the desired spec names
/// are compared: values the cloud adds (defaults, computed fields) are not drift. Lists compare
/// whole, because their order and length are part of the configuration (rules, subnets).
pub fn diff(desired: &Value, actual: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk(desired, actual, "", &mut out);
    out
}

fn walk(desired: &Value, actual: &Value, path: &str, out: &mut Vec<String>) {
    match (desired, actual) {
        (Value::Object(d), Value::Object(a)) => {
            for (k, dv) in d {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match a.get(k) {
                    Some(av) => walk(dv, av, &p, out),
                    None if dv.is_null() => {}
                    None => out.push(p),
                }
            }
        }
        (Value::Number(d), Value::Number(a)) if d.as_f64() == a.as_f64() => {}
        (d, a) if d == a => {}
        _ => out.push(if path.is_empty() {
            "spec".into()
        } else {
            path.into()
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_desired_keys_count() {
        let desired = json!({"a": 1, "b": {"c": true}, "l": [1, 2]});
        let same = json!({"a": 1.0, "b": {"c": true, "extra": 3}, "l": [1, 2], "z": 9});
        assert!(diff(&desired, &same).is_empty());
        let drifted = json!({"a": 2, "b": {"c": false}, "l": [2, 1]});
        assert_eq!(diff(&desired, &drifted), ["a", "b.c", "l"]);
        assert_eq!(diff(&desired, &json!({})), ["a", "b", "l"]);
    }
}
