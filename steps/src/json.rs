//! JSON helpers the step library shares with no one in particular: steps build backend-neutral
//! specs from pieces, and must not reach into a backend (the sim) to do it.

use serde_json::Value;

/// Merges `patch` into `base`: objects key by key (recursively), anything else replaced. A key
/// whose value is not an object on both sides takes `patch`'s value whole, so a list is never
/// merged item by item.
pub fn merge(base: &mut Value, patch: &Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                match b.get_mut(k) {
                    Some(slot) if slot.is_object() && v.is_object() => merge(slot, v),
                    _ => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, p) => *b = p.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn objects_merge_key_by_key_and_everything_else_is_replaced() {
        let mut base = json!({"a": {"x": 1, "y": 2}, "l": [1, 2], "s": "old"});
        merge(
            &mut base,
            &json!({"a": {"y": 3, "z": 4}, "l": [9], "s": {"now": "object"}}),
        );
        assert_eq!(
            base,
            json!({"a": {"x": 1, "y": 3, "z": 4}, "l": [9], "s": {"now": "object"}})
        );
        let mut scalar = json!(1);
        merge(&mut scalar, &json!({"k": true}));
        assert_eq!(scalar, json!({"k": true}));
    }
}
