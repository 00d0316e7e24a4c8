//! Drift: how an existing resource, as the cloud returns it, differs from what a step asks for.
//!
//! Each spec key is compared by its kind's table ([`Kind::spec_keys`]): write-only keys (sent,
//! never returned) and computed keys (the service decides) are never drift; normalised keys are
//! compared in canonical form, so subnets in another order, an Auto Scaling group's
//! comma-joined subnets or a URL-encoded, reformatted policy are the same configuration.

use serde_json::Value;

use crate::backend::{KeyClass, Kind};

/// The dotted paths (`a.b.c`) where `actual` differs from `desired`, for a resource of `kind`.
/// Only keys the desired spec names are compared: values the cloud adds (defaults, computed
/// fields) are not drift. Write-only and computed keys are skipped; normalised keys compare
/// in canonical form; other lists compare whole, because their order is part of the
/// configuration (rules, statements); numbers compare by value (`50` ≡ `50.0`). A desired
/// spec that is not an object differs as `spec`.
pub fn diff(kind: Kind, desired: &Value, actual: &Value) -> Vec<String> {
    let mut out = Vec::new();
    match (desired, actual) {
        (Value::Object(_), Value::Object(_)) => walk(kind, desired, actual, "", &mut out),
        (d, a) if same(d, a) => {}
        _ => out.push("spec".into()),
    }
    out
}

/// The paths where `actual` differs from `desired`, key by key, with no kind's table: only the
/// keys `desired` names, numbers by value at any depth, lists whole. The aws backends' round-trip tests use it
/// to check that what a service returns is exactly what was sent.
#[cfg(test)]
pub(crate) fn diff_raw(desired: &Value, actual: &Value) -> Vec<String> {
    fn go(d: &Value, a: &Value, path: &str, out: &mut Vec<String>) {
        match (d, a) {
            (Value::Object(d), Value::Object(a)) => {
                for (k, dv) in d {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    match a.get(k) {
                        Some(av) => go(dv, av, &p, out),
                        None if dv.is_null() => {}
                        None => out.push(p),
                    }
                }
            }
            (x, y) if same(x, y) => {}
            _ => out.push(if path.is_empty() {
                "spec".into()
            } else {
                path.into()
            }),
        }
    }
    let mut out = Vec::new();
    go(desired, actual, "", &mut out);
    out
}

/// The first drifted path that the cloud cannot change in place: [`KeyClass::CreateOnly`] in
/// the kind's table, or under one of a step's own `extra` top-level keys. Drift there is
/// repaired by replacing the resource, or refused.
pub fn first_create_only<'a>(
    kind: Kind,
    drifted: &'a [String],
    extra: &[&str],
) -> Option<&'a String> {
    drifted.iter().find(|p| {
        kind.key_class(p) == KeyClass::CreateOnly
            || extra.iter().any(|k| p.split('.').next() == Some(k))
    })
}

fn walk(kind: Kind, desired: &Value, actual: &Value, path: &str, out: &mut Vec<String>) {
    let (Value::Object(d), Value::Object(a)) = (desired, actual) else {
        return;
    };
    for (k, dv) in d {
        let p = if path.is_empty() {
            k.clone()
        } else {
            format!("{path}.{k}")
        };
        if matches!(kind.key_class(&p), KeyClass::WriteOnly | KeyClass::Computed) {
            continue;
        }
        let Some(av) = a.get(k) else {
            if !dv.is_null() {
                out.push(p);
            }
            continue;
        };
        if let Some(n) = kind.normaliser(&p) {
            if n.normalise(dv) != n.normalise(av) {
                out.push(p);
            }
        } else if dv.is_object() && av.is_object() {
            walk(kind, dv, av, &p, out);
        } else if !same(dv, av) {
            out.push(p);
        }
    }
}

/// Equal, numbers by value at any depth.
fn same(d: &Value, a: &Value) -> bool {
    match (d, a) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => d == a,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_desired_keys_count() {
        let k = Kind::Vpc;
        let desired = json!({"a": 1, "b": {"c": true}, "l": [1, 2]});
        let same = json!({"a": 1.0, "b": {"c": true, "extra": 3}, "l": [1.0, 2], "z": 9});
        assert!(diff(k, &desired, &same).is_empty());
        let drifted = json!({"a": 2, "b": {"c": false}, "l": [2, 1]});
        assert_eq!(diff(k, &desired, &drifted), ["a", "b.c", "l"]);
        assert_eq!(diff(k, &desired, &json!({})), ["a", "b", "l"]);
        assert_eq!(diff(k, &json!(1), &json!(2)), ["spec"]);
    }

    #[test]
    fn a_url_encoded_reordered_policy_is_no_drift() {
        let asked = json!({
            "assume_role_policy": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]},
            "inline_policies": {"app": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:PutObject", "s3:GetObject"], "Resource": "*"}]}},
            "managed_policy_arns": [],
            "max_session_duration": 3600,
        });
        let returned = json!({
            "assume_role_policy": "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Action%22%3A%22sts%3AAssumeRole%22%2C%22Effect%22%3A%22Allow%22%2C%22Principal%22%3A%7B%22Service%22%3A%5B%22ec2.amazonaws.com%22%5D%7D%7D%5D%7D",
            "inline_policies": {"app": "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%5B%22s3%3AGetObject%22%2C%22s3%3APutObject%22%5D%2C%22Resource%22%3A%5B%22%2A%22%5D%7D%5D%7D"},
            "managed_policy_arns": [],
            "max_session_duration": 3600,
        });
        assert!(diff(Kind::IamRole, &asked, &returned).is_empty());
        let widened = json!({
            "assume_role_policy": asked["assume_role_policy"],
            "inline_policies": {"app": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}},
            "managed_policy_arns": [],
            "max_session_duration": 3600,
        });
        assert_eq!(diff(Kind::IamRole, &asked, &widened), ["inline_policies"]);
    }

    #[test]
    fn asg_subnets_comma_joined_in_another_order_are_no_drift() {
        let asked = json!({"vpc_zone_identifier": ["subnet-1", "subnet-2", "subnet-3"], "target_group_arns": ["tg-a", "tg-b"], "max_size": 8});
        let returned = json!({"vpc_zone_identifier": "subnet-3,subnet-1,subnet-2", "target_group_arns": ["tg-b", "tg-a"], "max_size": 8.0});
        assert!(diff(Kind::AutoScalingGroup, &asked, &returned).is_empty());
        let fewer = json!({"vpc_zone_identifier": "subnet-3,subnet-1", "target_group_arns": ["tg-b", "tg-a"], "max_size": 8});
        assert_eq!(
            diff(Kind::AutoScalingGroup, &asked, &fewer),
            ["vpc_zone_identifier"]
        );
    }

    #[test]
    fn a_changed_or_missing_write_only_key_is_no_drift() {
        let asked = json!({"name": "example.com.", "comment": "c", "private_zone": false, "force_destroy": true});
        let returned = json!({"name": "EXAMPLE.com", "comment": "c", "private_zone": false});
        assert!(diff(Kind::HostedZone, &asked, &returned).is_empty());
        let changed = json!({"name": "example.com.", "comment": "c", "private_zone": false, "force_destroy": false});
        assert!(diff(Kind::HostedZone, &asked, &changed).is_empty());
        let lambda = json!({"code": {"filename": "a.py", "sha": "1", "source": "x"}});
        let back = json!({"code": {"sha": "1"}});
        assert!(diff(Kind::LambdaFunction, &lambda, &back).is_empty());
        let new_code = json!({"code": {"sha": "2"}});
        assert_eq!(diff(Kind::LambdaFunction, &lambda, &new_code), ["code.sha"]);
    }

    #[test]
    fn a_changed_computed_key_is_no_drift() {
        let asked = json!({"engine": "aurora-postgresql", "global_role": "primary"});
        let failed_over = json!({"engine": "aurora-postgresql", "global_role": "secondary"});
        assert!(diff(Kind::DbCluster, &asked, &failed_over).is_empty());
    }

    #[test]
    fn a_changed_create_only_key_is_reported_as_create_only() {
        let asked = json!({"vpc_id": "vpc-1", "cidr_block": "10.0.0.0/24", "availability_zone": "eu-south-1a", "map_public_ip_on_launch": true});
        let moved = json!({"vpc_id": "vpc-1", "cidr_block": "10.0.1.0/24", "availability_zone": "eu-south-1a", "map_public_ip_on_launch": false});
        let drift = diff(Kind::Subnet, &asked, &moved);
        assert_eq!(drift, ["cidr_block", "map_public_ip_on_launch"]);
        assert_eq!(
            first_create_only(Kind::Subnet, &drift, &[]).map(String::as_str),
            Some("cidr_block")
        );
        let only_in_place = vec!["map_public_ip_on_launch".to_string()];
        assert_eq!(first_create_only(Kind::Subnet, &only_in_place, &[]), None);
        // A step's own extra keys still count.
        assert_eq!(
            first_create_only(Kind::Subnet, &only_in_place, &["map_public_ip_on_launch"])
                .map(String::as_str),
            Some("map_public_ip_on_launch")
        );
        // Nested paths take their key's class.
        let tg = vec!["health_check.path".to_string(), "port".to_string()];
        assert_eq!(
            first_create_only(Kind::TargetGroup, &tg, &[]).map(String::as_str),
            Some("port")
        );
        assert_eq!(first_create_only(Kind::TargetGroup, &tg[..1], &[]), None);
    }

    #[test]
    fn sqs_numbers_as_strings_and_rules_in_any_order_are_no_drift() {
        let asked = json!({"message_retention_seconds": 1_209_600, "redrive_policy": {"max_receive_count": 5}});
        let returned = json!({"message_retention_seconds": "1209600", "redrive_policy": "{\"max_receive_count\": 5}"});
        assert!(diff(Kind::SqsQueue, &asked, &returned).is_empty());
        let rules = json!({"ingress": [{"from_port": 443, "protocol": "tcp"}, {"from_port": 80, "protocol": "tcp"}]});
        let back = json!({"ingress": [{"protocol": "tcp", "from_port": 80}, {"from_port": 443.0, "protocol": "tcp"}]});
        assert!(diff(Kind::SecurityGroup, &rules, &back).is_empty());
    }
}
