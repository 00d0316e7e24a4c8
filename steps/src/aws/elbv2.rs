//! The elbv2 kinds on AWS: `load_balancer`, `target_group` and `listener`.
//!
//! | kind | found by | id and ARN | spec from |
//! |---|---|---|---|
//! | `load_balancer` | its name (`DescribeLoadBalancers`) | the ARN | the load balancer and three of its attributes (`deletion_protection`, `drop_invalid_header_fields`, `idle_timeout`) |
//! | `target_group` | its name (`DescribeTargetGroups`) | the ARN | the group, its health check and `deregistration_delay` |
//! | `listener` | parent load balancer ARN and port (`DescribeListeners`) | the ARN | the listener and its first default action |
//!
//! All three carry their tags (`DescribeTags`); `list` keeps those tagged `ManagedBy=drflow`
//! (listeners: every listener of the parent load balancer).

use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, Certificate, IpAddressType, Listener, LoadBalancer,
    LoadBalancerAttribute, LoadBalancerSchemeEnum, LoadBalancerStateEnum, LoadBalancerTypeEnum,
    ProtocolEnum, RedirectActionConfig, RedirectActionStatusCodeEnum, Tag, TargetGroup,
    TargetGroupAttribute, TargetTypeEnum,
};
use serde_json::{Map, Value, json};

use super::{Call, Clients};
use crate::backend::{
    CloudError, CreateRequest, ErrorKind, Identity, Kind, Resource, ResourceState, Tags,
    UpdateRequest,
};

const SVC: &str = "elasticloadbalancing";

pub(super) async fn find(c: &Clients, id: &Identity) -> Result<Option<Resource>, CloudError> {
    match id.kind {
        Kind::LoadBalancer => {
            let rc = c.region(&id.region).await;
            let out = c
                .call(
                    Call::new(&id.region, SVC, "DescribeLoadBalancers"),
                    rc.elbv2.describe_load_balancers().names(&id.name).send(),
                )
                .await;
            let lbs = match none_if_missing(out)? {
                Some(o) => o.load_balancers.unwrap_or_default(),
                None => return Ok(None),
            };
            match lbs.first() {
                Some(lb) => {
                    let tags = tags_of(c, &id.region, lb.load_balancer_arn()).await?;
                    Ok(Some(lb_resource(c, &id.region, lb, tags).await?))
                }
                None => Ok(None),
            }
        }
        Kind::TargetGroup => {
            let rc = c.region(&id.region).await;
            let out = c
                .call(
                    Call::new(&id.region, SVC, "DescribeTargetGroups"),
                    rc.elbv2.describe_target_groups().names(&id.name).send(),
                )
                .await;
            let tgs = match none_if_missing(out)? {
                Some(o) => o.target_groups.unwrap_or_default(),
                None => return Ok(None),
            };
            match tgs.first() {
                Some(tg) => {
                    let tags = tags_of(c, &id.region, tg.target_group_arn()).await?;
                    Ok(Some(tg_resource(c, &id.region, tg, tags).await?))
                }
                None => Ok(None),
            }
        }
        Kind::Listener => {
            let Some(parent) = id.parent.as_deref() else {
                return Err(no_parent(id.kind));
            };
            let listeners = match listeners_of(c, &id.region, parent).await? {
                Some(l) => l,
                None => return Ok(None),
            };
            match listeners
                .iter()
                .find(|l| l.port().map(|p| p.to_string()).as_deref() == Some(id.name.as_str()))
            {
                Some(l) => {
                    let tags = tags_of(c, &id.region, l.listener_arn()).await?;
                    Ok(Some(listener_resource(&id.region, l, tags)))
                }
                None => Ok(None),
            }
        }
        other => Err(wrong_kind(other)),
    }
}

pub(super) async fn list(
    c: &Clients,
    region: &str,
    kind: Kind,
    parent: Option<&str>,
) -> Result<Vec<Resource>, CloudError> {
    let rc = c.region(region).await;
    let mut out = Vec::new();
    match kind {
        Kind::LoadBalancer => {
            let mut all = Vec::new();
            let mut marker = None;
            loop {
                let page = c
                    .call(
                        Call::new(region, SVC, "DescribeLoadBalancers"),
                        rc.elbv2
                            .describe_load_balancers()
                            .set_marker(marker.clone())
                            .send(),
                    )
                    .await?;
                all.extend(page.load_balancers.unwrap_or_default());
                marker = page.next_marker;
                if marker.is_none() {
                    break;
                }
            }
            let arns: Vec<String> = all
                .iter()
                .filter_map(|l| l.load_balancer_arn().map(str::to_string))
                .collect();
            let tags = tags_of_many(c, region, &arns).await?;
            for lb in &all {
                let t = tags
                    .get(lb.load_balancer_arn().unwrap_or(""))
                    .cloned()
                    .unwrap_or_default();
                if managed(&t) {
                    out.push(lb_resource(c, region, lb, t).await?);
                }
            }
        }
        Kind::TargetGroup => {
            let mut all = Vec::new();
            let mut marker = None;
            loop {
                let page = c
                    .call(
                        Call::new(region, SVC, "DescribeTargetGroups"),
                        rc.elbv2
                            .describe_target_groups()
                            .set_marker(marker.clone())
                            .send(),
                    )
                    .await?;
                all.extend(page.target_groups.unwrap_or_default());
                marker = page.next_marker;
                if marker.is_none() {
                    break;
                }
            }
            let arns: Vec<String> = all
                .iter()
                .filter_map(|t| t.target_group_arn().map(str::to_string))
                .collect();
            let tags = tags_of_many(c, region, &arns).await?;
            for tg in &all {
                let t = tags
                    .get(tg.target_group_arn().unwrap_or(""))
                    .cloned()
                    .unwrap_or_default();
                if managed(&t) {
                    out.push(tg_resource(c, region, tg, t).await?);
                }
            }
        }
        Kind::Listener => {
            let Some(parent) = parent else {
                return Err(no_parent(kind));
            };
            let listeners = listeners_of(c, region, parent).await?.unwrap_or_default();
            let arns: Vec<String> = listeners
                .iter()
                .filter_map(|l| l.listener_arn().map(str::to_string))
                .collect();
            let tags = tags_of_many(c, region, &arns).await?;
            for l in &listeners {
                let t = tags
                    .get(l.listener_arn().unwrap_or(""))
                    .cloned()
                    .unwrap_or_default();
                out.push(listener_resource(region, l, t));
            }
        }
        other => return Err(wrong_kind(other)),
    }
    Ok(out)
}

pub(super) async fn create(c: &Clients, req: &CreateRequest) -> Result<Resource, CloudError> {
    let region = req.region.as_str();
    let rc = c.region(region).await;
    let spec = &req.spec;
    match req.kind {
        Kind::LoadBalancer => {
            let out = c
                .call(
                    Call::new(region, SVC, "CreateLoadBalancer"),
                    rc.elbv2
                        .create_load_balancer()
                        .name(&req.name)
                        .set_subnets(Some(strs(spec, "subnets")))
                        .set_security_groups(Some(strs(spec, "security_groups")))
                        .set_scheme(s(spec, "scheme").map(LoadBalancerSchemeEnum::from))
                        .set_type(s(spec, "type").map(LoadBalancerTypeEnum::from))
                        .set_ip_address_type(s(spec, "ip_address_type").map(IpAddressType::from))
                        .set_tags(Some(elb_tags(&req.tags)))
                        .send(),
                )
                .await?;
            let lb = out
                .load_balancers
                .unwrap_or_default()
                .into_iter()
                .next()
                .ok_or_else(|| empty_answer(region, "CreateLoadBalancer"))?;
            let arn = lb.load_balancer_arn().unwrap_or_default().to_string();
            let attrs = lb_attributes(spec);
            if !attrs.is_empty() {
                c.call(
                    Call::new(region, SVC, "ModifyLoadBalancerAttributes"),
                    rc.elbv2
                        .modify_load_balancer_attributes()
                        .load_balancer_arn(&arn)
                        .set_attributes(Some(attrs))
                        .send(),
                )
                .await?;
            }
            let mut r = lb_base(region, &lb, req.tags.clone());
            // The attributes just set are the ones AWS now has.
            for k in [
                "deletion_protection",
                "drop_invalid_header_fields",
                "idle_timeout",
            ] {
                if let Some(v) = spec.get(k) {
                    r.spec[k] = v.clone();
                }
            }
            r.depends_on = req.depends_on.clone();
            Ok(r)
        }
        Kind::TargetGroup => {
            let hc = spec.get("health_check").cloned().unwrap_or(json!({}));
            let out = c
                .call(
                    Call::new(region, SVC, "CreateTargetGroup"),
                    rc.elbv2
                        .create_target_group()
                        .name(&req.name)
                        .set_protocol(s(spec, "protocol").map(ProtocolEnum::from))
                        .set_port(i(spec, "port").map(|p| p as i32))
                        .set_vpc_id(s(spec, "vpc_id").map(str::to_string))
                        .set_target_type(s(spec, "target_type").map(TargetTypeEnum::from))
                        .set_health_check_protocol(s(&hc, "protocol").map(ProtocolEnum::from))
                        .set_health_check_path(s(&hc, "path").map(str::to_string))
                        .set_health_check_port(s(&hc, "port").map(str::to_string))
                        .set_health_check_interval_seconds(
                            i(&hc, "interval_seconds").map(|v| v as i32),
                        )
                        .set_health_check_timeout_seconds(
                            i(&hc, "timeout_seconds").map(|v| v as i32),
                        )
                        .set_healthy_threshold_count(i(&hc, "healthy_threshold").map(|v| v as i32))
                        .set_unhealthy_threshold_count(
                            i(&hc, "unhealthy_threshold").map(|v| v as i32),
                        )
                        .set_matcher(s(&hc, "matcher").map(|m| {
                            aws_sdk_elasticloadbalancingv2::types::Matcher::builder()
                                .http_code(m)
                                .build()
                        }))
                        .set_tags(Some(elb_tags(&req.tags)))
                        .send(),
                )
                .await?;
            let tg = out
                .target_groups
                .unwrap_or_default()
                .into_iter()
                .next()
                .ok_or_else(|| empty_answer(region, "CreateTargetGroup"))?;
            let arn = tg.target_group_arn().unwrap_or_default().to_string();
            if let Some(d) = i(spec, "deregistration_delay") {
                set_deregistration_delay(c, region, &arn, d).await?;
            }
            let mut r = tg_base(region, &tg, req.tags.clone());
            if let Some(v) = spec.get("deregistration_delay") {
                r.spec["deregistration_delay"] = v.clone();
            }
            r.depends_on = req.depends_on.clone();
            Ok(r)
        }
        Kind::Listener => {
            let lb_arn = req
                .parent
                .clone()
                .or_else(|| s(spec, "load_balancer_arn").map(str::to_string))
                .ok_or_else(|| no_parent(req.kind))?;
            let out = c
                .call(
                    Call::new(region, SVC, "CreateListener"),
                    rc.elbv2
                        .create_listener()
                        .load_balancer_arn(&lb_arn)
                        .set_port(i(spec, "port").map(|p| p as i32))
                        .set_protocol(s(spec, "protocol").map(ProtocolEnum::from))
                        .set_ssl_policy(s(spec, "ssl_policy").map(str::to_string))
                        .set_certificates(certificates(spec))
                        .set_default_actions(Some(default_actions(spec)?))
                        .set_tags(Some(elb_tags(&req.tags)))
                        .send(),
                )
                .await?;
            let l = out
                .listeners
                .unwrap_or_default()
                .into_iter()
                .next()
                .ok_or_else(|| empty_answer(region, "CreateListener"))?;
            let mut r = listener_resource(region, &l, req.tags.clone());
            r.depends_on = req.depends_on.clone();
            Ok(r)
        }
        other => Err(wrong_kind(other)),
    }
}

pub(super) async fn update(
    c: &Clients,
    current: &Resource,
    req: &UpdateRequest,
) -> Result<Resource, CloudError> {
    let region = current.region.as_str();
    let rc = c.region(region).await;
    let spec = &req.spec;
    let drifted = top_keys(&req.drifted);
    match current.kind {
        Kind::LoadBalancer => {
            let mut attrs = lb_attributes(spec);
            attrs.retain(|a| {
                let k = a.key().unwrap_or("");
                (k == "deletion_protection.enabled" && drifted.contains(&"deletion_protection"))
                    || (k == "routing.http.drop_invalid_header_fields.enabled"
                        && drifted.contains(&"drop_invalid_header_fields"))
                    || (k == "idle_timeout.timeout_seconds" && drifted.contains(&"idle_timeout"))
            });
            if !attrs.is_empty() {
                c.call(
                    Call::new(region, SVC, "ModifyLoadBalancerAttributes"),
                    rc.elbv2
                        .modify_load_balancer_attributes()
                        .load_balancer_arn(&current.arn)
                        .set_attributes(Some(attrs))
                        .send(),
                )
                .await?;
            }
            if drifted.contains(&"security_groups") {
                c.call(
                    Call::new(region, SVC, "SetSecurityGroups"),
                    rc.elbv2
                        .set_security_groups()
                        .load_balancer_arn(&current.arn)
                        .set_security_groups(Some(strs(spec, "security_groups")))
                        .send(),
                )
                .await?;
            }
            if drifted.contains(&"subnets") {
                c.call(
                    Call::new(region, SVC, "SetSubnets"),
                    rc.elbv2
                        .set_subnets()
                        .load_balancer_arn(&current.arn)
                        .set_subnets(Some(strs(spec, "subnets")))
                        .send(),
                )
                .await?;
            }
            if drifted.contains(&"ip_address_type") {
                c.call(
                    Call::new(region, SVC, "SetIpAddressType"),
                    rc.elbv2
                        .set_ip_address_type()
                        .load_balancer_arn(&current.arn)
                        .set_ip_address_type(s(spec, "ip_address_type").map(IpAddressType::from))
                        .send(),
                )
                .await?;
            }
        }
        Kind::TargetGroup => {
            if drifted.contains(&"health_check") {
                let hc = spec.get("health_check").cloned().unwrap_or(json!({}));
                c.call(
                    Call::new(region, SVC, "ModifyTargetGroup"),
                    rc.elbv2
                        .modify_target_group()
                        .target_group_arn(&current.arn)
                        .set_health_check_protocol(s(&hc, "protocol").map(ProtocolEnum::from))
                        .set_health_check_path(s(&hc, "path").map(str::to_string))
                        .set_health_check_port(s(&hc, "port").map(str::to_string))
                        .set_health_check_interval_seconds(
                            i(&hc, "interval_seconds").map(|v| v as i32),
                        )
                        .set_health_check_timeout_seconds(
                            i(&hc, "timeout_seconds").map(|v| v as i32),
                        )
                        .set_healthy_threshold_count(i(&hc, "healthy_threshold").map(|v| v as i32))
                        .set_unhealthy_threshold_count(
                            i(&hc, "unhealthy_threshold").map(|v| v as i32),
                        )
                        .set_matcher(s(&hc, "matcher").map(|m| {
                            aws_sdk_elasticloadbalancingv2::types::Matcher::builder()
                                .http_code(m)
                                .build()
                        }))
                        .send(),
                )
                .await?;
            }
            if drifted.contains(&"deregistration_delay")
                && let Some(d) = i(spec, "deregistration_delay")
            {
                set_deregistration_delay(c, region, &current.arn, d).await?;
            }
        }
        Kind::Listener => {
            let fields = [
                "port",
                "protocol",
                "ssl_policy",
                "certificates",
                "default_action",
            ];
            if drifted.iter().any(|d| fields.contains(d)) {
                let has = |k: &str| drifted.contains(&k);
                c.call(
                    Call::new(region, SVC, "ModifyListener"),
                    rc.elbv2
                        .modify_listener()
                        .listener_arn(&current.arn)
                        .set_port(i(spec, "port").filter(|_| has("port")).map(|p| p as i32))
                        .set_protocol(
                            s(spec, "protocol")
                                .filter(|_| has("protocol") || has("ssl_policy"))
                                .map(ProtocolEnum::from),
                        )
                        .set_ssl_policy(
                            s(spec, "ssl_policy")
                                .filter(|_| has("ssl_policy") || has("protocol"))
                                .map(str::to_string),
                        )
                        .set_certificates(certificates(spec).filter(|_| has("certificates")))
                        .set_default_actions(if has("default_action") {
                            Some(default_actions(spec)?)
                        } else {
                            None
                        })
                        .send(),
                )
                .await?;
            }
        }
        other => return Err(wrong_kind(other)),
    }
    let add = tags_to_add(&current.tags, &req.tags);
    if !add.is_empty() {
        c.call(
            Call::new(region, SVC, "AddTags"),
            rc.elbv2
                .add_tags()
                .resource_arns(&current.arn)
                .set_tags(Some(elb_tags(&add)))
                .send(),
        )
        .await?;
    }
    Ok(applied(current, req))
}

pub(super) async fn delete(c: &Clients, current: &Resource) -> Result<(), CloudError> {
    let region = current.region.as_str();
    let rc = c.region(region).await;
    match current.kind {
        Kind::LoadBalancer => {
            if b(&current.spec, "deletion_protection") == Some(true) {
                c.call(
                    Call::new(region, SVC, "ModifyLoadBalancerAttributes"),
                    rc.elbv2
                        .modify_load_balancer_attributes()
                        .load_balancer_arn(&current.arn)
                        .attributes(attr("deletion_protection.enabled", "false"))
                        .send(),
                )
                .await?;
            }
            c.call(
                Call::new(region, SVC, "DeleteLoadBalancer"),
                rc.elbv2
                    .delete_load_balancer()
                    .load_balancer_arn(&current.arn)
                    .send(),
            )
            .await?;
        }
        Kind::TargetGroup => {
            c.call(
                Call::new(region, SVC, "DeleteTargetGroup"),
                rc.elbv2
                    .delete_target_group()
                    .target_group_arn(&current.arn)
                    .send(),
            )
            .await?;
        }
        Kind::Listener => {
            c.call(
                Call::new(region, SVC, "DeleteListener"),
                rc.elbv2.delete_listener().listener_arn(&current.arn).send(),
            )
            .await?;
        }
        other => return Err(wrong_kind(other)),
    }
    Ok(())
}

// ---- load balancers

/// The load balancer as described, without its attributes.
fn lb_base(region: &str, lb: &LoadBalancer, tags: Tags) -> Resource {
    let arn = lb.load_balancer_arn().unwrap_or_default().to_string();
    let mut spec = Map::new();
    if let Some(t) = lb.r#type() {
        spec.insert("type".into(), json!(t.as_str()));
    }
    if let Some(t) = lb.scheme() {
        spec.insert("scheme".into(), json!(t.as_str()));
    }
    if let Some(t) = lb.ip_address_type() {
        spec.insert("ip_address_type".into(), json!(t.as_str()));
    }
    let subnets: Vec<&str> = lb
        .availability_zones()
        .iter()
        .filter_map(|z| z.subnet_id())
        .collect();
    spec.insert("subnets".into(), json!(subnets));
    spec.insert("security_groups".into(), json!(lb.security_groups()));
    let mut attrs = Map::new();
    attrs.insert("dns_name".into(), json!(lb.dns_name().unwrap_or_default()));
    attrs.insert(
        "canonical_hosted_zone_id".into(),
        json!(lb.canonical_hosted_zone_id().unwrap_or_default()),
    );
    attrs.insert(
        "arn_suffix".into(),
        json!(arn_suffix(&arn, "loadbalancer/")),
    );
    let state = match lb.state().and_then(|s| s.code()) {
        Some(LoadBalancerStateEnum::Provisioning) => ResourceState::Creating,
        Some(LoadBalancerStateEnum::Failed) => ResourceState::Failed,
        _ => ResourceState::Available,
    };
    Resource {
        kind: Kind::LoadBalancer,
        region: region.to_string(),
        name: lb.load_balancer_name().unwrap_or_default().to_string(),
        parent: None,
        id: arn.clone(),
        arn,
        spec: Value::Object(spec),
        attrs,
        tags,
        state,
        depends_on: Vec::new(),
    }
}

/// The load balancer with the attributes drflow sets.
async fn lb_resource(
    c: &Clients,
    region: &str,
    lb: &LoadBalancer,
    tags: Tags,
) -> Result<Resource, CloudError> {
    let mut r = lb_base(region, lb, tags);
    let rc = c.region(region).await;
    let out = c
        .call(
            Call::new(region, SVC, "DescribeLoadBalancerAttributes"),
            rc.elbv2
                .describe_load_balancer_attributes()
                .load_balancer_arn(&r.arn)
                .send(),
        )
        .await?;
    for a in out.attributes() {
        let v = a.value().unwrap_or_default();
        match a.key().unwrap_or_default() {
            "deletion_protection.enabled" => r.spec["deletion_protection"] = json!(v == "true"),
            "routing.http.drop_invalid_header_fields.enabled" => {
                r.spec["drop_invalid_header_fields"] = json!(v == "true")
            }
            "idle_timeout.timeout_seconds" => {
                if let Ok(n) = v.parse::<i64>() {
                    r.spec["idle_timeout"] = json!(n)
                }
            }
            _ => {}
        }
    }
    r.depends_on = r.spec["subnets"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(r.spec["security_groups"].as_array().into_iter().flatten())
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    Ok(r)
}

fn attr(key: &str, value: &str) -> LoadBalancerAttribute {
    LoadBalancerAttribute::builder()
        .key(key)
        .value(value)
        .build()
}

/// The load balancer attributes a spec names.
fn lb_attributes(spec: &Value) -> Vec<LoadBalancerAttribute> {
    let mut v = Vec::new();
    if let Some(x) = b(spec, "deletion_protection") {
        v.push(attr("deletion_protection.enabled", &x.to_string()));
    }
    if let Some(x) = b(spec, "drop_invalid_header_fields") {
        v.push(attr(
            "routing.http.drop_invalid_header_fields.enabled",
            &x.to_string(),
        ));
    }
    if let Some(x) = i(spec, "idle_timeout") {
        v.push(attr("idle_timeout.timeout_seconds", &x.to_string()));
    }
    v
}

// ---- target groups

fn tg_base(region: &str, tg: &TargetGroup, tags: Tags) -> Resource {
    let arn = tg.target_group_arn().unwrap_or_default().to_string();
    let mut spec = Map::new();
    if let Some(p) = tg.protocol() {
        spec.insert("protocol".into(), json!(p.as_str()));
    }
    if let Some(p) = tg.port() {
        spec.insert("port".into(), json!(p));
    }
    if let Some(v) = tg.vpc_id() {
        spec.insert("vpc_id".into(), json!(v));
    }
    if let Some(t) = tg.target_type() {
        spec.insert("target_type".into(), json!(t.as_str()));
    }
    let mut hc = Map::new();
    if let Some(p) = tg.health_check_protocol() {
        hc.insert("protocol".into(), json!(p.as_str()));
    }
    if let Some(p) = tg.health_check_path() {
        hc.insert("path".into(), json!(p));
    }
    if let Some(p) = tg.health_check_port() {
        hc.insert("port".into(), json!(p));
    }
    if let Some(p) = tg.health_check_interval_seconds() {
        hc.insert("interval_seconds".into(), json!(p));
    }
    if let Some(p) = tg.health_check_timeout_seconds() {
        hc.insert("timeout_seconds".into(), json!(p));
    }
    if let Some(p) = tg.healthy_threshold_count() {
        hc.insert("healthy_threshold".into(), json!(p));
    }
    if let Some(p) = tg.unhealthy_threshold_count() {
        hc.insert("unhealthy_threshold".into(), json!(p));
    }
    if let Some(m) = tg.matcher().and_then(|m| m.http_code()) {
        hc.insert("matcher".into(), json!(m));
    }
    spec.insert("health_check".into(), Value::Object(hc));
    let mut attrs = Map::new();
    attrs.insert("arn_suffix".into(), json!(arn_suffix(&arn, "targetgroup/")));
    Resource {
        kind: Kind::TargetGroup,
        region: region.to_string(),
        name: tg.target_group_name().unwrap_or_default().to_string(),
        parent: None,
        id: arn.clone(),
        arn,
        spec: Value::Object(spec),
        attrs,
        tags,
        state: ResourceState::Available,
        depends_on: tg.vpc_id().map(str::to_string).into_iter().collect(),
    }
}

async fn tg_resource(
    c: &Clients,
    region: &str,
    tg: &TargetGroup,
    tags: Tags,
) -> Result<Resource, CloudError> {
    let mut r = tg_base(region, tg, tags);
    let rc = c.region(region).await;
    let out = c
        .call(
            Call::new(region, SVC, "DescribeTargetGroupAttributes"),
            rc.elbv2
                .describe_target_group_attributes()
                .target_group_arn(&r.arn)
                .send(),
        )
        .await?;
    for a in out.attributes() {
        if a.key() == Some("deregistration_delay.timeout_seconds")
            && let Some(n) = a.value().and_then(|v| v.parse::<i64>().ok())
        {
            r.spec["deregistration_delay"] = json!(n);
        }
    }
    Ok(r)
}

async fn set_deregistration_delay(
    c: &Clients,
    region: &str,
    arn: &str,
    seconds: i64,
) -> Result<(), CloudError> {
    let rc = c.region(region).await;
    c.call(
        Call::new(region, SVC, "ModifyTargetGroupAttributes"),
        rc.elbv2
            .modify_target_group_attributes()
            .target_group_arn(arn)
            .attributes(
                TargetGroupAttribute::builder()
                    .key("deregistration_delay.timeout_seconds")
                    .value(seconds.to_string())
                    .build(),
            )
            .send(),
    )
    .await?;
    Ok(())
}

// ---- listeners

/// Every listener of a load balancer; `None` when the load balancer is gone.
async fn listeners_of(
    c: &Clients,
    region: &str,
    lb_arn: &str,
) -> Result<Option<Vec<Listener>>, CloudError> {
    let rc = c.region(region).await;
    let mut all = Vec::new();
    let mut marker = None;
    loop {
        let out = c
            .call(
                Call::new(region, SVC, "DescribeListeners"),
                rc.elbv2
                    .describe_listeners()
                    .load_balancer_arn(lb_arn)
                    .set_marker(marker.clone())
                    .send(),
            )
            .await;
        let Some(page) = none_if_missing(out)? else {
            return Ok(None);
        };
        all.extend(page.listeners.unwrap_or_default());
        marker = page.next_marker;
        if marker.is_none() {
            return Ok(Some(all));
        }
    }
}

fn listener_resource(region: &str, l: &Listener, tags: Tags) -> Resource {
    let arn = l.listener_arn().unwrap_or_default().to_string();
    let lb = l.load_balancer_arn().unwrap_or_default().to_string();
    let mut spec = Map::new();
    spec.insert("load_balancer_arn".into(), json!(lb));
    if let Some(p) = l.port() {
        spec.insert("port".into(), json!(p));
    }
    if let Some(p) = l.protocol() {
        spec.insert("protocol".into(), json!(p.as_str()));
    }
    if let Some(p) = l.ssl_policy() {
        spec.insert("ssl_policy".into(), json!(p));
    }
    let certs: Vec<&str> = l
        .certificates()
        .iter()
        .filter_map(|c| c.certificate_arn())
        .collect();
    if !certs.is_empty() {
        spec.insert("certificates".into(), json!(certs));
    }
    let mut depends_on = vec![lb.clone()];
    if let Some(a) = l.default_actions().first() {
        let mut act = Map::new();
        if let Some(t) = a.r#type() {
            act.insert("type".into(), json!(t.as_str()));
        }
        if let Some(tg) = a.target_group_arn() {
            act.insert("target_group_arn".into(), json!(tg));
            depends_on.push(tg.to_string());
        }
        if let Some(r) = a.redirect_config() {
            let mut red = Map::new();
            for (k, v) in [
                ("protocol", r.protocol()),
                ("port", r.port()),
                ("host", r.host()),
                ("path", r.path()),
                ("query", r.query()),
            ] {
                if let Some(v) = v {
                    red.insert(k.into(), json!(v));
                }
            }
            if let Some(code) = r.status_code() {
                red.insert("status_code".into(), json!(code.as_str()));
            }
            act.insert("redirect".into(), Value::Object(red));
        }
        spec.insert("default_action".into(), Value::Object(act));
    }
    Resource {
        kind: Kind::Listener,
        region: region.to_string(),
        name: l.port().map(|p| p.to_string()).unwrap_or_default(),
        parent: Some(lb),
        id: arn.clone(),
        arn,
        spec: Value::Object(spec),
        attrs: Map::new(),
        tags,
        state: ResourceState::Available,
        depends_on,
    }
}

fn certificates(spec: &Value) -> Option<Vec<Certificate>> {
    let certs = strs(spec, "certificates");
    if certs.is_empty() {
        return None;
    }
    Some(
        certs
            .into_iter()
            .map(|a| Certificate::builder().certificate_arn(a).build())
            .collect(),
    )
}

/// The listener's one default action, from the spec's `default_action`.
fn default_actions(spec: &Value) -> Result<Vec<Action>, CloudError> {
    let a = spec.get("default_action").cloned().unwrap_or(json!({}));
    let kind = s(&a, "type").unwrap_or("forward");
    let mut act = Action::builder().r#type(ActionTypeEnum::from(kind));
    match kind {
        "forward" => {
            act = act.set_target_group_arn(s(&a, "target_group_arn").map(str::to_string));
        }
        "redirect" => {
            let r = a.get("redirect").cloned().unwrap_or(json!({}));
            act = act.redirect_config(
                RedirectActionConfig::builder()
                    .set_protocol(s(&r, "protocol").map(str::to_string))
                    .set_port(s(&r, "port").map(str::to_string))
                    .set_host(s(&r, "host").map(str::to_string))
                    .set_path(s(&r, "path").map(str::to_string))
                    .set_query(s(&r, "query").map(str::to_string))
                    .set_status_code(s(&r, "status_code").map(RedirectActionStatusCodeEnum::from))
                    .build(),
            );
        }
        other => {
            return Err(CloudError::new(
                ErrorKind::InvalidInput,
                format!("the aws target cannot make a listener action of type {other:?}"),
            ));
        }
    }
    Ok(vec![act.build()])
}

// ---- tags

/// The tags of one resource.
async fn tags_of(c: &Clients, region: &str, arn: Option<&str>) -> Result<Tags, CloudError> {
    let Some(arn) = arn else {
        return Ok(Tags::new());
    };
    let mut m = tags_of_many(c, region, &[arn.to_string()]).await?;
    Ok(m.remove(arn).unwrap_or_default())
}

/// The tags of many resources, by ARN (`DescribeTags` takes 20 at a time).
async fn tags_of_many(
    c: &Clients,
    region: &str,
    arns: &[String],
) -> Result<std::collections::HashMap<String, Tags>, CloudError> {
    let rc = c.region(region).await;
    let mut out = std::collections::HashMap::new();
    for chunk in arns.chunks(20) {
        let res = c
            .call(
                Call::new(region, SVC, "DescribeTags"),
                rc.elbv2
                    .describe_tags()
                    .set_resource_arns(Some(chunk.to_vec()))
                    .send(),
            )
            .await?;
        for d in res.tag_descriptions() {
            let tags: Tags = d
                .tags()
                .iter()
                .map(|t| {
                    (
                        t.key().unwrap_or_default().to_string(),
                        t.value().unwrap_or_default().to_string(),
                    )
                })
                .collect();
            out.insert(d.resource_arn().unwrap_or_default().to_string(), tags);
        }
    }
    Ok(out)
}

fn elb_tags(tags: &Tags) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

// ---- shared by the traffic files (elbv2, autoscaling, route53, acm)

/// Whether a resource carries drflow's `ManagedBy` tag.
pub(super) fn managed(tags: &Tags) -> bool {
    tags.get("ManagedBy").map(String::as_str) == Some("drflow")
}

/// The desired tags a resource lacks or holds with another value (tags not named are kept).
pub(super) fn tags_to_add(current: &Tags, desired: &Tags) -> Tags {
    desired
        .iter()
        .filter(|(k, v)| current.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The top-level spec keys of drifted paths (`health_check.path` → `health_check`).
pub(super) fn top_keys(drifted: &[String]) -> Vec<&str> {
    let mut v: Vec<&str> = drifted
        .iter()
        .map(|p| p.split('.').next().unwrap_or(p))
        .collect();
    v.dedup();
    v
}

/// The resource as it is after an update that changed the drifted keys and added the tags:
/// known without describing it again.
pub(super) fn applied(current: &Resource, req: &UpdateRequest) -> Resource {
    let mut r = current.clone();
    for k in top_keys(&req.drifted) {
        if let (Some(v), Some(obj)) = (req.spec.get(k), r.spec.as_object_mut()) {
            obj.insert(k.to_string(), v.clone());
        }
    }
    for (k, v) in &req.tags {
        r.tags.insert(k.clone(), v.clone());
    }
    r.depends_on = req.depends_on.clone();
    r
}

/// `Ok(None)` for a "not found" answer, the output otherwise.
pub(super) fn none_if_missing<T>(r: Result<T, CloudError>) -> Result<Option<T>, CloudError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.kind == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

pub(super) fn s<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str)
}

pub(super) fn i(v: &Value, k: &str) -> Option<i64> {
    v.get(k)
        .and_then(|x| x.as_i64().or_else(|| x.as_f64().map(|f| f as i64)))
}

pub(super) fn f(v: &Value, k: &str) -> Option<f64> {
    v.get(k).and_then(Value::as_f64)
}

pub(super) fn b(v: &Value, k: &str) -> Option<bool> {
    v.get(k).and_then(Value::as_bool)
}

pub(super) fn strs(v: &Value, k: &str) -> Vec<String> {
    v.get(k)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

pub(super) fn no_parent(kind: Kind) -> CloudError {
    CloudError::new(
        ErrorKind::InvalidInput,
        format!(
            "a {kind} is found through its parent {}, and none was given",
            kind.parent_kind().map(|k| k.name()).unwrap_or("resource")
        ),
    )
}

pub(super) fn wrong_kind(kind: Kind) -> CloudError {
    CloudError::new(
        ErrorKind::Internal,
        format!("{kind} was sent to the wrong service file of the aws target"),
    )
}

pub(super) fn empty_answer(region: &str, op: &str) -> CloudError {
    CloudError::new(
        ErrorKind::Internal,
        format!("{op} in {region} answered without the resource it made"),
    )
}

/// The part of an ARN after `marker` (`app/alb-prod/50dc6c495c0c9188`).
fn arn_suffix(arn: &str, marker: &str) -> String {
    arn.split_once(marker)
        .map(|(_, rest)| {
            if marker == "loadbalancer/" {
                rest.to_string()
            } else {
                format!("{marker}{rest}")
            }
        })
        .unwrap_or_default()
}

/// What the traffic files' moto tests share: the moto clients, unique names, and the network
/// and launch template they build with the raw SDK.
#[cfg(test)]
pub(super) mod test_support {
    use crate::aws::Clients;

    /// Clients for the moto at `DRFLOW_MOTO_ENDPOINT` ([`crate::aws::testing::moto`]: a loud
    /// skip without one, a failure in CI).
    pub fn moto(_test: &str) -> Option<Clients> {
        crate::aws::testing::moto_clients()
    }

    /// A short suffix no other test (or earlier run against the same moto) uses: 8 hex digits.
    pub fn unique() -> String {
        crate::aws::testing::unique("t")["t-".len()..].to_string()
    }

    /// A VPC with a subnet in each of the region's first two AZs and a security group:
    /// `(vpc, [subnet a, subnet b], sg)`.
    pub async fn network(c: &Clients, region: &str) -> (String, Vec<String>, String) {
        let ec2 = c.region(region).await.ec2.clone();
        let vpc = ec2
            .create_vpc()
            .cidr_block("10.40.0.0/16")
            .send()
            .await
            .expect("create_vpc")
            .vpc
            .and_then(|v| v.vpc_id)
            .expect("a vpc id");
        let mut subnets = Vec::new();
        for (i, az) in ["a", "b"].iter().enumerate() {
            let s = ec2
                .create_subnet()
                .vpc_id(&vpc)
                .cidr_block(format!("10.40.{i}.0/24"))
                .availability_zone(format!("{region}{az}"))
                .send()
                .await
                .expect("create_subnet")
                .subnet
                .and_then(|s| s.subnet_id)
                .expect("a subnet id");
            subnets.push(s);
        }
        let sg = ec2
            .create_security_group()
            .group_name(format!("traffic-{}", unique()))
            .description("drflow traffic test")
            .vpc_id(&vpc)
            .send()
            .await
            .expect("create_security_group")
            .group_id
            .expect("a group id");
        (vpc, subnets, sg)
    }

    /// A launch template of the AMI moto serves under the Amazon Linux SSM parameter; its id.
    pub async fn launch_template(c: &Clients, region: &str) -> String {
        let rc = c.region(region).await;
        let ami = rc
            .ssm
            .get_parameter()
            .name("/aws/service/ami-amazon-linux-latest/amzn2-ami-hvm-x86_64-gp2")
            .send()
            .await
            .expect("the AMI parameter")
            .parameter
            .and_then(|p| p.value)
            .expect("an AMI id");
        rc.ec2
            .create_launch_template()
            .launch_template_name(format!("lt-{}", unique()))
            .launch_template_data(
                aws_sdk_ec2::types::RequestLaunchTemplateData::builder()
                    .image_id(ami)
                    .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
                    .build(),
            )
            .send()
            .await
            .expect("create_launch_template")
            .launch_template
            .and_then(|l| l.launch_template_id)
            .expect("a launch template id")
    }

    /// drflow's tags for a test resource.
    pub fn tags(name: &str) -> crate::backend::Tags {
        [
            ("ManagedBy", "drflow"),
            ("Name", name),
            ("Environment", "Test"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::test_support::{moto, network, tags, unique};
    use super::*;
    use crate::cloud::drift::diff_raw as diff;

    const R: &str = "eu-south-1";

    fn request(kind: Kind, name: &str, parent: Option<&str>, spec: Value) -> CreateRequest {
        CreateRequest {
            kind,
            region: R.into(),
            name: name.into(),
            parent: parent.map(str::to_string),
            spec,
            tags: tags(name),
            depends_on: vec![],
        }
    }

    fn update_of(found: &Resource, spec: &Value) -> UpdateRequest {
        UpdateRequest {
            spec: spec.clone(),
            drifted: diff(spec, &found.spec),
            tags: found.tags.clone(),
            depends_on: vec![],
        }
    }

    #[tokio::test]
    async fn load_balancer_target_group_and_listeners_round_trip_through_moto() {
        let Some(c) = moto("elbv2 round trip") else {
            return;
        };
        let (vpc, subnets, sg) = network(&c, R).await;
        let u = unique();

        // Load balancer: what find returns is what was asked, in the steps' shape.
        let name = format!("alb-{u}");
        let lb_spec = json!({
            "type": "application", "scheme": "internet-facing", "ip_address_type": "ipv4",
            "subnets": subnets, "security_groups": [sg], "deletion_protection": false,
            "drop_invalid_header_fields": true, "idle_timeout": 60,
        });
        let made = create(
            &c,
            &request(Kind::LoadBalancer, &name, None, lb_spec.clone()),
        )
        .await
        .unwrap();
        let id = Identity::new(Kind::LoadBalancer, R, &name);
        let lb = find(&c, &id).await.unwrap().expect("the load balancer");
        assert_eq!(lb.arn, made.arn);
        assert_eq!(lb.name, name);
        let mut found_subnets = strs(&lb.spec, "subnets");
        found_subnets.sort();
        let mut want = subnets.clone();
        want.sort();
        assert_eq!(
            found_subnets, want,
            "AWS may reorder subnets, never change them"
        );
        let mut same = lb.spec.clone();
        same["subnets"] = lb_spec["subnets"].clone();
        assert!(
            diff(&lb_spec, &same).is_empty(),
            "{:?}",
            diff(&lb_spec, &same)
        );
        assert!(!lb.attr_str("dns_name").is_empty());
        assert!(!lb.attr_str("canonical_hosted_zone_id").is_empty());
        assert!(
            lb.attr_str("arn_suffix")
                .starts_with(&format!("app/{name}/"))
        );
        assert_eq!(lb.tags, tags(&name));
        assert_eq!(made.spec, lb.spec);

        // One drifted attribute, one new tag.
        let mut want = lb_spec.clone();
        want["idle_timeout"] = json!(120);
        want["deletion_protection"] = json!(true);
        let mut req = update_of(&lb, &want);
        assert_eq!(req.drifted, ["deletion_protection", "idle_timeout"]);
        req.tags.insert("Extra".into(), "1".into());
        let after = update(&c, &lb, &req).await.unwrap();
        let lb = find(&c, &id).await.unwrap().unwrap();
        assert_eq!(lb.spec["idle_timeout"], json!(120));
        assert_eq!(lb.spec["deletion_protection"], json!(true));
        assert_eq!(lb.tags.get("Extra").map(String::as_str), Some("1"));
        assert_eq!(after.spec["idle_timeout"], lb.spec["idle_timeout"]);

        // Target group.
        let tg_name = format!("tg-{u}");
        let tg_spec = json!({
            "protocol": "HTTPS", "port": 8443, "vpc_id": vpc, "target_type": "instance",
            "deregistration_delay": 30,
            "health_check": {"protocol": "HTTPS", "path": "/health/trading", "port": "traffic-port",
                "interval_seconds": 10, "timeout_seconds": 5, "healthy_threshold": 2,
                "unhealthy_threshold": 3, "matcher": "200"},
        });
        create(
            &c,
            &request(Kind::TargetGroup, &tg_name, None, tg_spec.clone()),
        )
        .await
        .unwrap();
        let tg_id = Identity::new(Kind::TargetGroup, R, &tg_name);
        let tg = find(&c, &tg_id).await.unwrap().expect("the target group");
        assert!(
            diff(&tg_spec, &tg.spec).is_empty(),
            "{:?}",
            diff(&tg_spec, &tg.spec)
        );
        assert_eq!(
            tg.attr_str("arn_suffix"),
            format!(
                "targetgroup/{}",
                tg.arn.split_once("targetgroup/").unwrap().1
            )
        );
        let mut want = tg_spec.clone();
        want["health_check"]["path"] = json!("/health/other");
        want["deregistration_delay"] = json!(10);
        let req = update_of(&tg, &want);
        assert_eq!(req.drifted, ["deregistration_delay", "health_check.path"]);
        update(&c, &tg, &req).await.unwrap();
        let tg = find(&c, &tg_id).await.unwrap().unwrap();
        assert!(
            diff(&want, &tg.spec).is_empty(),
            "{:?}",
            diff(&want, &tg.spec)
        );

        // Listeners: found through the load balancer, by port.
        let cert = c
            .region(R)
            .await
            .acm
            .request_certificate()
            .domain_name(format!("api-{u}.example.com"))
            .validation_method(aws_sdk_acm::types::ValidationMethod::Dns)
            .send()
            .await
            .unwrap()
            .certificate_arn
            .unwrap();
        let https = json!({
            "load_balancer_arn": lb.arn, "port": 443, "protocol": "HTTPS",
            "ssl_policy": "ELBSecurityPolicy-TLS13-1-2-2021-06", "certificates": [cert],
            "default_action": {"type": "forward", "target_group_arn": tg.arn},
        });
        let http = json!({
            "load_balancer_arn": lb.arn, "port": 80, "protocol": "HTTP",
            "default_action": {"type": "redirect", "redirect": {"protocol": "HTTPS", "port": "443", "status_code": "HTTP_301"}},
        });
        for spec in [&https, &http] {
            let made = create(
                &c,
                &request(
                    Kind::Listener,
                    &format!("listener-{u}"),
                    Some(&lb.arn),
                    spec.clone(),
                ),
            )
            .await
            .unwrap();
            assert_eq!(made.parent.as_deref(), Some(lb.arn.as_str()));
            let lid = Identity::child(Kind::Listener, R, &lb.arn, spec["port"].to_string());
            let l = find(&c, &lid).await.unwrap().expect("the listener");
            assert!(diff(spec, &l.spec).is_empty(), "{:?}", diff(spec, &l.spec));
            assert_eq!(l.id, made.id);
        }
        let lid = Identity::child(Kind::Listener, R, &lb.arn, "80");
        let l = find(&c, &lid).await.unwrap().unwrap();
        let mut want = http.clone();
        want["default_action"]["redirect"]["status_code"] = json!("HTTP_302");
        let req = update_of(&l, &want);
        assert_eq!(req.drifted, ["default_action.redirect.status_code"]);
        update(&c, &l, &req).await.unwrap();
        let l = find(&c, &lid).await.unwrap().unwrap();
        assert!(
            diff(&want, &l.spec).is_empty(),
            "{:?}",
            diff(&want, &l.spec)
        );
        let ls = list(&c, R, Kind::Listener, Some(&lb.arn)).await.unwrap();
        let mut ports: Vec<&str> = ls.iter().map(|l| l.name.as_str()).collect();
        ports.sort();
        assert_eq!(ports, ["443", "80"]);

        // list finds drflow's load balancers and target groups by their ManagedBy tag.
        let lbs = list(&c, R, Kind::LoadBalancer, None).await.unwrap();
        assert!(lbs.iter().any(|r| r.name == name && r.spec == lb.spec));
        let tgs = list(&c, R, Kind::TargetGroup, None).await.unwrap();
        assert!(tgs.iter().any(|r| r.name == tg_name));

        // Delete: listeners, then the group, then the load balancer (protection off first).
        for l in ls {
            delete(&c, &l).await.unwrap();
            assert!(find(&c, &l.identity()).await.unwrap().is_none());
        }
        delete(&c, &tg).await.unwrap();
        assert!(find(&c, &tg_id).await.unwrap().is_none());
        delete(&c, &lb).await.unwrap();
        assert!(find(&c, &id).await.unwrap().is_none());
        // A listener of a load balancer that is gone is not found either.
        assert!(find(&c, &lid).await.unwrap().is_none());
    }
}
