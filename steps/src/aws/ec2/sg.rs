//! Security groups: named by their group name, rules as the steps write them.
//!
//! A rule is one object: `protocol` (`tcp`, `-1` for all), `from_port`/`to_port` (absent for
//! `-1`), an optional `description` and one source: `cidr_ipv4`, `cidr_ipv6`,
//! `source_security_group_id` or `prefix_list_id`. EC2 groups sources of one port range into
//! one permission; each source is one rule here. `update` authorizes and revokes only the
//! difference; a changed description is a revoke and an authorize.

use aws_sdk_ec2::types::{
    IpPermission, IpRange, Ipv6Range, PrefixListId, ResourceType, UserIdGroupPair,
};
use serde_json::{Map, Value, json};

use super::{Call, Clients, arn, deps, resource, str_at, tag_spec, tags_of};
use crate::backend::{CloudError, CreateRequest, Kind, Resource, ResourceState};
use aws_sdk_ec2::types::Filter;

/// One rule, as comparable data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Rule {
    protocol: String,
    from_port: Option<i32>,
    to_port: Option<i32>,
    description: Option<String>,
    /// The source's key (`cidr_ipv4` …) and value.
    source: (&'static str, String),
}

const SOURCES: &[&str] = &[
    "cidr_ipv4",
    "cidr_ipv6",
    "source_security_group_id",
    "prefix_list_id",
];

impl Rule {
    fn from_json(v: &Value) -> Option<Rule> {
        let protocol = match v.get("protocol")? {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let all = protocol == "-1";
        let port = |k: &str| {
            if all {
                None
            } else {
                v.get(k).and_then(Value::as_i64).map(|p| p as i32)
            }
        };
        let source = SOURCES.iter().find_map(|k| {
            v.get(*k)
                .and_then(Value::as_str)
                .map(|s| (*k, s.to_string()))
        })?;
        Some(Rule {
            from_port: port("from_port"),
            to_port: port("to_port"),
            protocol,
            description: v
                .get("description")
                .and_then(Value::as_str)
                .map(str::to_string),
            source,
        })
    }

    fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("protocol".into(), json!(self.protocol));
        if let Some(p) = self.from_port {
            m.insert("from_port".into(), json!(p));
        }
        if let Some(p) = self.to_port {
            m.insert("to_port".into(), json!(p));
        }
        if let Some(d) = &self.description {
            m.insert("description".into(), json!(d));
        }
        m.insert(self.source.0.into(), json!(self.source.1));
        Value::Object(m)
    }

    /// The rules of EC2's permissions, one per source.
    fn from_permissions(perms: &[IpPermission]) -> Vec<Rule> {
        let mut out = Vec::new();
        for p in perms {
            let protocol = p.ip_protocol().unwrap_or("-1").to_string();
            let all = protocol == "-1";
            let rule = |source: (&'static str, &str), description: Option<&str>| Rule {
                protocol: protocol.clone(),
                from_port: if all { None } else { p.from_port() },
                to_port: if all { None } else { p.to_port() },
                description: description.filter(|d| !d.is_empty()).map(str::to_string),
                source: (source.0, source.1.to_string()),
            };
            for r in p.ip_ranges() {
                out.push(rule(
                    ("cidr_ipv4", r.cidr_ip().unwrap_or("")),
                    r.description(),
                ));
            }
            for r in p.ipv6_ranges() {
                out.push(rule(
                    ("cidr_ipv6", r.cidr_ipv6().unwrap_or("")),
                    r.description(),
                ));
            }
            for g in p.user_id_group_pairs() {
                out.push(rule(
                    ("source_security_group_id", g.group_id().unwrap_or("")),
                    g.description(),
                ));
            }
            for l in p.prefix_list_ids() {
                out.push(rule(
                    ("prefix_list_id", l.prefix_list_id().unwrap_or("")),
                    l.description(),
                ));
            }
        }
        out
    }

    fn permission(&self) -> IpPermission {
        let mut p = IpPermission::builder().ip_protocol(&self.protocol);
        if self.protocol != "-1" {
            p = p.set_from_port(self.from_port).set_to_port(self.to_port);
        }
        let d = self.description.clone();
        let value = self.source.1.as_str();
        p = match self.source.0 {
            "cidr_ipv4" => {
                p.ip_ranges(IpRange::builder().cidr_ip(value).set_description(d).build())
            }
            "cidr_ipv6" => p.ipv6_ranges(
                Ipv6Range::builder()
                    .cidr_ipv6(value)
                    .set_description(d)
                    .build(),
            ),
            "prefix_list_id" => p.prefix_list_ids(
                PrefixListId::builder()
                    .prefix_list_id(value)
                    .set_description(d)
                    .build(),
            ),
            _ => p.user_id_group_pairs(
                UserIdGroupPair::builder()
                    .group_id(value)
                    .set_description(d)
                    .build(),
            ),
        };
        p.build()
    }
}

fn rules_at(spec: &Value, key: &str) -> Vec<Rule> {
    spec.get(key)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Rule::from_json).collect())
        .unwrap_or_default()
}

pub(super) async fn describe(
    c: &Clients,
    region: &str,
    filters: Vec<Filter>,
) -> Result<Vec<Resource>, CloudError> {
    let rc = c.region(region).await;
    let out = c
        .call(
            Call::new(region, "ec2", "DescribeSecurityGroups"),
            rc.ec2
                .describe_security_groups()
                .set_filters(Some(filters))
                .send(),
        )
        .await?;
    let mut found = Vec::new();
    for g in out.security_groups() {
        let id = g.group_id().unwrap_or_default();
        let tags = tags_of(g.tags());
        let vpc = g.vpc_id().unwrap_or_default();
        let ingress = Rule::from_permissions(g.ip_permissions());
        let egress = Rule::from_permissions(g.ip_permissions_egress());
        let mut depends_on = deps([vpc]);
        for r in ingress.iter().chain(&egress) {
            if r.source.0 == "source_security_group_id" && r.source.1 != id {
                depends_on.push(r.source.1.clone());
            }
        }
        let arn = g
            .security_group_arn()
            .map(str::to_string)
            .unwrap_or_else(|| arn(region, g.owner_id(), "security-group", id));
        let mut r = resource(
            Kind::SecurityGroup,
            region,
            &tags,
            id,
            arn,
            json!({
                "vpc_id": vpc,
                "description": g.description().unwrap_or_default(),
                "ingress": ingress.iter().map(Rule::to_json).collect::<Vec<_>>(),
                "egress": egress.iter().map(Rule::to_json).collect::<Vec<_>>(),
            }),
            ResourceState::Available,
            depends_on,
        );
        r.name = g.group_name().unwrap_or_default().to_string();
        found.push(r);
    }
    // A name is unique per VPC only: drflow's own group first.
    found.sort_by_key(|r| r.tags.get("ManagedBy").map(String::as_str) != Some("drflow"));
    Ok(found)
}

pub(super) async fn create(c: &Clients, req: &CreateRequest) -> Result<Resource, CloudError> {
    let region = req.region.as_str();
    let rc = c.region(region).await;
    let mut call = rc
        .ec2
        .create_security_group()
        .group_name(&req.name)
        .description(match str_at(&req.spec, "description") {
            // EC2 requires a description.
            "" => req.name.as_str(),
            d => d,
        })
        .tag_specifications(tag_spec(ResourceType::SecurityGroup, &req.tags));
    let vpc = str_at(&req.spec, "vpc_id");
    if !vpc.is_empty() {
        call = call.vpc_id(vpc);
    }
    let out = c
        .call(Call::new(region, "ec2", "CreateSecurityGroup"), call.send())
        .await?;
    let id = out.group_id().unwrap_or_default().to_string();
    let arn = out
        .security_group_arn()
        .map(str::to_string)
        .unwrap_or_else(|| arn(region, None, "security-group", &id));
    // EC2 gives a new group in a VPC one rule: all traffic out to 0.0.0.0/0.
    let default_egress = vec![Rule {
        protocol: "-1".into(),
        from_port: None,
        to_port: None,
        description: None,
        source: ("cidr_ipv4", "0.0.0.0/0".into()),
    }];
    apply(
        c,
        region,
        &id,
        "ingress",
        &[],
        &rules_at(&req.spec, "ingress"),
    )
    .await?;
    if req.spec.get("egress").is_some() {
        apply(
            c,
            region,
            &id,
            "egress",
            &default_egress,
            &rules_at(&req.spec, "egress"),
        )
        .await?;
    }
    Ok(super::created(req, id, arn, ResourceState::Available))
}

/// Makes one direction's rules those of `spec`, from the rules of the group as found.
pub(super) async fn update_rules(
    c: &Clients,
    current: &Resource,
    spec: &Value,
    direction: &str,
) -> Result<(), CloudError> {
    apply(
        c,
        &current.region,
        &current.id,
        direction,
        &rules_at(&current.spec, direction),
        &rules_at(spec, direction),
    )
    .await
}

/// Revokes the rules of `have` not in `want`, then authorizes those of `want` not in `have`.
async fn apply(
    c: &Clients,
    region: &str,
    id: &str,
    direction: &str,
    have: &[Rule],
    want: &[Rule],
) -> Result<(), CloudError> {
    let rc = c.region(region).await;
    let revoke: Vec<IpPermission> = have
        .iter()
        .filter(|r| !want.contains(r))
        .map(Rule::permission)
        .collect();
    let authorize: Vec<IpPermission> = want
        .iter()
        .filter(|r| !have.contains(r))
        .map(Rule::permission)
        .collect();
    let ingress = direction == "ingress";
    if !revoke.is_empty() {
        if ingress {
            c.call(
                Call::new(region, "ec2", "RevokeSecurityGroupIngress"),
                rc.ec2
                    .revoke_security_group_ingress()
                    .group_id(id)
                    .set_ip_permissions(Some(revoke))
                    .send(),
            )
            .await?;
        } else {
            c.call(
                Call::new(region, "ec2", "RevokeSecurityGroupEgress"),
                rc.ec2
                    .revoke_security_group_egress()
                    .group_id(id)
                    .set_ip_permissions(Some(revoke))
                    .send(),
            )
            .await?;
        }
    }
    if !authorize.is_empty() {
        if ingress {
            c.call(
                Call::new(region, "ec2", "AuthorizeSecurityGroupIngress"),
                rc.ec2
                    .authorize_security_group_ingress()
                    .group_id(id)
                    .set_ip_permissions(Some(authorize))
                    .send(),
            )
            .await?;
        } else {
            c.call(
                Call::new(region, "ec2", "AuthorizeSecurityGroupEgress"),
                rc.ec2
                    .authorize_security_group_egress()
                    .group_id(id)
                    .set_ip_permissions(Some(authorize))
                    .send(),
            )
            .await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_round_trip_through_json_and_permissions() {
        let spec = json!([
            {"protocol": "tcp", "from_port": 443, "to_port": 443, "description": "HTTPS", "cidr_ipv4": "0.0.0.0/0"},
            {"protocol": "tcp", "from_port": 8443, "to_port": 8443, "source_security_group_id": "sg-1"},
            {"protocol": "-1", "cidr_ipv4": "0.0.0.0/0"},
        ]);
        let rules: Vec<Rule> = spec
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Rule::from_json)
            .collect();
        assert_eq!(rules.len(), 3);
        let perms: Vec<IpPermission> = rules.iter().map(Rule::permission).collect();
        let back = Rule::from_permissions(&perms);
        assert_eq!(back, rules);
        assert_eq!(Value::Array(back.iter().map(Rule::to_json).collect()), spec);
    }
}
