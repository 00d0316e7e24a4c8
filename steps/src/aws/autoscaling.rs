//! The autoscaling kinds on AWS: `autoscaling_group` and `scaling_policy`.
//!
//! | kind | found by | id | ARN |
//! |---|---|---|---|
//! | `autoscaling_group` | its name (`DescribeAutoScalingGroups`) | the name | the group's ARN |
//! | `scaling_policy` | parent group name and policy name (`DescribePolicies`) | the policy ARN | the policy ARN |
//!
//! The group's spec decodes what AWS encodes: `VPCZoneIdentifier` comes back comma-joined and
//! is split into `vpc_zone_identifier`; `EnabledMetrics` becomes `metrics_collection` (one entry
//! per granularity); `propagate_tags` is whether every tag propagates at launch; the warm pool is
//! the group's `WarmPoolConfiguration`. Scaling policies cannot be tagged.

use aws_sdk_autoscaling::types::{
    AutoScalingGroup, InstanceReusePolicy, LaunchTemplateSpecification, MetricType,
    PredefinedMetricSpecification, ScalingPolicy, StepAdjustment, Tag, TargetTrackingConfiguration,
    WarmPoolState,
};
use serde_json::{Map, Value, json};

use super::elbv2::{
    applied, b, empty_answer, f, i, managed, no_parent, s, strs, tags_to_add, top_keys, wrong_kind,
};
use super::{Call, Clients};
use crate::backend::{
    CloudError, CreateRequest, Identity, Kind, Resource, ResourceState, Tags, UpdateRequest,
};

const SVC: &str = "autoscaling";

pub(super) async fn find(c: &Clients, id: &Identity) -> Result<Option<Resource>, CloudError> {
    let rc = c.region(&id.region).await;
    match id.kind {
        Kind::AutoScalingGroup => {
            let out = c
                .call(
                    Call::new(&id.region, SVC, "DescribeAutoScalingGroups"),
                    rc.autoscaling
                        .describe_auto_scaling_groups()
                        .auto_scaling_group_names(&id.name)
                        .send(),
                )
                .await?;
            Ok(out
                .auto_scaling_groups()
                .iter()
                .find(|g| g.auto_scaling_group_name() == Some(id.name.as_str()))
                .map(|g| asg_resource(&id.region, g)))
        }
        Kind::ScalingPolicy => {
            let Some(parent) = id.parent.as_deref() else {
                return Err(no_parent(id.kind));
            };
            let out = c
                .call(
                    Call::new(&id.region, SVC, "DescribePolicies"),
                    rc.autoscaling
                        .describe_policies()
                        .auto_scaling_group_name(parent)
                        .policy_names(&id.name)
                        .send(),
                )
                .await?;
            Ok(out
                .scaling_policies()
                .iter()
                .find(|p| p.policy_name() == Some(id.name.as_str()))
                .map(|p| policy_resource(&id.region, p)))
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
    let mut token: Option<String> = None;
    match kind {
        Kind::AutoScalingGroup => loop {
            let page = c
                .call(
                    Call::new(region, SVC, "DescribeAutoScalingGroups"),
                    rc.autoscaling
                        .describe_auto_scaling_groups()
                        .set_next_token(token.clone())
                        .send(),
                )
                .await?;
            out.extend(
                page.auto_scaling_groups()
                    .iter()
                    .map(|g| asg_resource(region, g))
                    .filter(|r| managed(&r.tags)),
            );
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        },
        Kind::ScalingPolicy => {
            let Some(parent) = parent else {
                return Err(no_parent(kind));
            };
            loop {
                let page = c
                    .call(
                        Call::new(region, SVC, "DescribePolicies"),
                        rc.autoscaling
                            .describe_policies()
                            .auto_scaling_group_name(parent)
                            .set_next_token(token.clone())
                            .send(),
                    )
                    .await?;
                out.extend(
                    page.scaling_policies()
                        .iter()
                        .map(|p| policy_resource(region, p)),
                );
                token = page.next_token().map(str::to_string);
                if token.is_none() {
                    break;
                }
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
        Kind::AutoScalingGroup => {
            let propagate = b(spec, "propagate_tags").unwrap_or(false);
            c.call(
                Call::new(region, SVC, "CreateAutoScalingGroup"),
                rc.autoscaling
                    .create_auto_scaling_group()
                    .auto_scaling_group_name(&req.name)
                    .set_launch_template(launch_template(spec))
                    .set_vpc_zone_identifier(zones(spec))
                    .set_target_group_arns(Some(strs(spec, "target_group_arns")))
                    .set_min_size(i(spec, "min_size").map(|v| v as i32))
                    .set_max_size(i(spec, "max_size").map(|v| v as i32))
                    .set_desired_capacity(i(spec, "desired_capacity").map(|v| v as i32))
                    .set_health_check_type(s(spec, "health_check_type").map(str::to_string))
                    .set_health_check_grace_period(
                        i(spec, "health_check_grace_period").map(|v| v as i32),
                    )
                    .set_default_instance_warmup(
                        i(spec, "default_instance_warmup").map(|v| v as i32),
                    )
                    .set_capacity_rebalance(b(spec, "capacity_rebalance"))
                    .set_tags(Some(asg_tags(&req.name, &req.tags, propagate)))
                    .send(),
            )
            .await?;
            enable_metrics(c, region, &req.name, spec).await?;
            put_warm_pool(c, region, &req.name, spec).await?;
            // One describe for the ARN and the state AWS gives the new group.
            let found = find(c, &Identity::new(req.kind, region, &req.name))
                .await?
                .ok_or_else(|| empty_answer(region, "CreateAutoScalingGroup"))?;
            Ok(Resource {
                depends_on: req.depends_on.clone(),
                ..found
            })
        }
        Kind::ScalingPolicy => {
            let group = req
                .parent
                .clone()
                .or_else(|| s(spec, "auto_scaling_group_name").map(str::to_string))
                .ok_or_else(|| no_parent(req.kind))?;
            let arn = put_policy(c, region, &group, &req.name, spec).await?;
            if arn.is_empty() {
                // An answer without `PolicyARN` (moto names it `PolicyArn`): read it back, for
                // the alarms that name the policy as their action.
                let id = Identity {
                    kind: req.kind,
                    region: region.to_string(),
                    parent: Some(group.clone()),
                    name: req.name.clone(),
                };
                if let Some(found) = find(c, &id).await? {
                    return Ok(found);
                }
            }
            let mut spec = spec.clone();
            spec["auto_scaling_group_name"] = json!(group);
            Ok(Resource {
                kind: req.kind,
                region: region.to_string(),
                name: req.name.clone(),
                parent: Some(group),
                id: arn.clone(),
                arn,
                spec,
                attrs: Map::new(),
                tags: Tags::new(),
                state: ResourceState::Available,
                depends_on: req.depends_on.clone(),
            })
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
    let has = |k: &str| drifted.contains(&k);
    match current.kind {
        Kind::AutoScalingGroup => {
            let name = current.name.as_str();
            const GROUP_FIELDS: [&str; 9] = [
                "launch_template",
                "vpc_zone_identifier",
                "min_size",
                "max_size",
                "desired_capacity",
                "health_check_type",
                "health_check_grace_period",
                "default_instance_warmup",
                "capacity_rebalance",
            ];
            if GROUP_FIELDS.iter().any(|k| has(k)) {
                let int = |k: &str| i(spec, k).filter(|_| has(k)).map(|v| v as i32);
                c.call(
                    Call::new(region, SVC, "UpdateAutoScalingGroup"),
                    rc.autoscaling
                        .update_auto_scaling_group()
                        .auto_scaling_group_name(name)
                        .set_launch_template(
                            launch_template(spec).filter(|_| has("launch_template")),
                        )
                        .set_vpc_zone_identifier(zones(spec).filter(|_| has("vpc_zone_identifier")))
                        .set_min_size(int("min_size"))
                        .set_max_size(int("max_size"))
                        .set_desired_capacity(int("desired_capacity"))
                        .set_health_check_type(
                            s(spec, "health_check_type")
                                .filter(|_| has("health_check_type"))
                                .map(str::to_string),
                        )
                        .set_health_check_grace_period(int("health_check_grace_period"))
                        .set_default_instance_warmup(int("default_instance_warmup"))
                        .set_capacity_rebalance(
                            b(spec, "capacity_rebalance").filter(|_| has("capacity_rebalance")),
                        )
                        .send(),
                )
                .await?;
            }
            if has("target_group_arns") {
                let want = strs(spec, "target_group_arns");
                let have = strs(&current.spec, "target_group_arns");
                let attach: Vec<String> =
                    want.iter().filter(|a| !have.contains(a)).cloned().collect();
                let detach: Vec<String> =
                    have.iter().filter(|a| !want.contains(a)).cloned().collect();
                if !attach.is_empty() {
                    c.call(
                        Call::new(region, SVC, "AttachLoadBalancerTargetGroups"),
                        rc.autoscaling
                            .attach_load_balancer_target_groups()
                            .auto_scaling_group_name(name)
                            .set_target_group_arns(Some(attach))
                            .send(),
                    )
                    .await?;
                }
                if !detach.is_empty() {
                    c.call(
                        Call::new(region, SVC, "DetachLoadBalancerTargetGroups"),
                        rc.autoscaling
                            .detach_load_balancer_target_groups()
                            .auto_scaling_group_name(name)
                            .set_target_group_arns(Some(detach))
                            .send(),
                    )
                    .await?;
                }
            }
            if has("metrics_collection") {
                enable_metrics(c, region, name, spec).await?;
            }
            if has("warm_pool") {
                put_warm_pool(c, region, name, spec).await?;
            }
            let propagate = b(spec, "propagate_tags").unwrap_or(false);
            let add = if has("propagate_tags") {
                let mut all = current.tags.clone();
                all.extend(req.tags.clone());
                all
            } else {
                tags_to_add(&current.tags, &req.tags)
            };
            if !add.is_empty() {
                c.call(
                    Call::new(region, SVC, "CreateOrUpdateTags"),
                    rc.autoscaling
                        .create_or_update_tags()
                        .set_tags(Some(asg_tags(name, &add, propagate)))
                        .send(),
                )
                .await?;
            }
            Ok(applied(current, req))
        }
        Kind::ScalingPolicy => {
            if !drifted.is_empty() {
                let group = current
                    .parent
                    .clone()
                    .or_else(|| s(spec, "auto_scaling_group_name").map(str::to_string))
                    .ok_or_else(|| no_parent(current.kind))?;
                // PutScalingPolicy replaces the whole policy: send all of it.
                put_policy(c, region, &group, &current.name, spec).await?;
            }
            let mut r = applied(current, req);
            // Scaling policies cannot carry tags.
            r.tags = Tags::new();
            Ok(r)
        }
        other => Err(wrong_kind(other)),
    }
}

pub(super) async fn delete(c: &Clients, current: &Resource) -> Result<(), CloudError> {
    let region = current.region.as_str();
    let rc = c.region(region).await;
    match current.kind {
        Kind::AutoScalingGroup => {
            // ForceDelete terminates the instances with the group; waiting for it to be gone
            // is the seam's `wait_deleted`.
            c.call(
                Call::new(region, SVC, "DeleteAutoScalingGroup"),
                rc.autoscaling
                    .delete_auto_scaling_group()
                    .auto_scaling_group_name(&current.name)
                    .force_delete(true)
                    .send(),
            )
            .await?;
        }
        Kind::ScalingPolicy => {
            let group = current
                .parent
                .clone()
                .or_else(|| s(&current.spec, "auto_scaling_group_name").map(str::to_string))
                .ok_or_else(|| no_parent(current.kind))?;
            c.call(
                Call::new(region, SVC, "DeletePolicy"),
                rc.autoscaling
                    .delete_policy()
                    .auto_scaling_group_name(group)
                    .policy_name(&current.name)
                    .send(),
            )
            .await?;
        }
        other => return Err(wrong_kind(other)),
    }
    Ok(())
}

// ---- groups

fn asg_resource(region: &str, g: &AutoScalingGroup) -> Resource {
    let mut spec = Map::new();
    if let Some(lt) = g.launch_template() {
        let mut m = Map::new();
        if let Some(v) = lt.launch_template_id() {
            m.insert("launch_template_id".into(), json!(v));
        }
        if let Some(v) = lt.version() {
            m.insert("version".into(), json!(v));
        }
        spec.insert("launch_template".into(), Value::Object(m));
    }
    let subnets: Vec<&str> = g
        .vpc_zone_identifier()
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    spec.insert("vpc_zone_identifier".into(), json!(subnets));
    spec.insert("target_group_arns".into(), json!(g.target_group_arns()));
    for (k, v) in [
        ("min_size", g.min_size()),
        ("max_size", g.max_size()),
        ("desired_capacity", g.desired_capacity()),
        ("health_check_grace_period", g.health_check_grace_period()),
        ("default_instance_warmup", g.default_instance_warmup()),
    ] {
        if let Some(v) = v {
            spec.insert(k.into(), json!(v));
        }
    }
    if let Some(v) = g.health_check_type() {
        spec.insert("health_check_type".into(), json!(v));
    }
    if let Some(v) = g.capacity_rebalance() {
        spec.insert("capacity_rebalance".into(), json!(v));
    }
    // One metrics_collection entry per granularity, metrics in the order AWS lists them.
    let mut by_granularity: Vec<(String, Vec<String>)> = Vec::new();
    for m in g.enabled_metrics() {
        let gran = m.granularity().unwrap_or("1Minute").to_string();
        let metric = m.metric().unwrap_or_default().to_string();
        match by_granularity.iter_mut().find(|(k, _)| *k == gran) {
            Some((_, v)) => v.push(metric),
            None => by_granularity.push((gran, vec![metric])),
        }
    }
    let metrics: Vec<Value> = by_granularity
        .into_iter()
        .map(|(g, m)| json!({"granularity": g, "metrics": m}))
        .collect();
    spec.insert("metrics_collection".into(), json!(metrics));
    let tags: Tags = g
        .tags()
        .iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_string(),
                t.value().unwrap_or_default().to_string(),
            )
        })
        .collect();
    spec.insert(
        "propagate_tags".into(),
        json!(
            !g.tags().is_empty()
                && g.tags()
                    .iter()
                    .all(|t| t.propagate_at_launch() == Some(true))
        ),
    );
    if let Some(w) = g.warm_pool_configuration() {
        let mut m = Map::new();
        if let Some(v) = w.min_size() {
            m.insert("min_size".into(), json!(v));
        }
        if let Some(v) = w.max_group_prepared_capacity() {
            m.insert("max_group_prepared_capacity".into(), json!(v));
        }
        if let Some(v) = w.pool_state() {
            m.insert("pool_state".into(), json!(v.as_str()));
        }
        if let Some(p) = w.instance_reuse_policy() {
            let mut r = Map::new();
            if let Some(v) = p.reuse_on_scale_in() {
                r.insert("reuse_on_scale_in".into(), json!(v));
            }
            m.insert("instance_reuse_policy".into(), Value::Object(r));
        }
        spec.insert("warm_pool".into(), Value::Object(m));
    }
    let state = match g.status() {
        Some(s) if s.starts_with("Delete") => ResourceState::Deleting,
        _ => ResourceState::Available,
    };
    let mut depends_on: Vec<String> = subnets.iter().map(|s| s.to_string()).collect();
    depends_on.extend(g.target_group_arns().iter().cloned());
    if let Some(lt) = g.launch_template().and_then(|l| l.launch_template_id()) {
        depends_on.insert(0, lt.to_string());
    }
    let name = g.auto_scaling_group_name().unwrap_or_default().to_string();
    Resource {
        kind: Kind::AutoScalingGroup,
        region: region.to_string(),
        id: name.clone(),
        name,
        parent: None,
        arn: g.auto_scaling_group_arn().unwrap_or_default().to_string(),
        spec: Value::Object(spec),
        attrs: Map::new(),
        tags,
        state,
        depends_on,
    }
}

fn launch_template(spec: &Value) -> Option<LaunchTemplateSpecification> {
    let lt = spec.get("launch_template")?;
    Some(
        LaunchTemplateSpecification::builder()
            .set_launch_template_id(s(lt, "launch_template_id").map(str::to_string))
            .set_launch_template_name(s(lt, "launch_template_name").map(str::to_string))
            .set_version(s(lt, "version").map(str::to_string))
            .build(),
    )
}

/// The spec's subnet list as AWS takes it: comma-joined.
fn zones(spec: &Value) -> Option<String> {
    let z = strs(spec, "vpc_zone_identifier");
    (!z.is_empty()).then(|| z.join(","))
}

fn asg_tags(group: &str, tags: &Tags, propagate: bool) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| {
            Tag::builder()
                .resource_id(group)
                .resource_type("auto-scaling-group")
                .key(k)
                .value(v)
                .propagate_at_launch(propagate)
                .build()
        })
        .collect()
}

/// Turns on the spec's group metrics. Every metric is named: moto (unlike AWS) collects nothing
/// when the list is empty.
async fn enable_metrics(
    c: &Clients,
    region: &str,
    group: &str,
    spec: &Value,
) -> Result<(), CloudError> {
    let rc = c.region(region).await;
    for m in spec
        .get("metrics_collection")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        c.call(
            Call::new(region, SVC, "EnableMetricsCollection"),
            rc.autoscaling
                .enable_metrics_collection()
                .auto_scaling_group_name(group)
                .granularity(s(m, "granularity").unwrap_or("1Minute"))
                .set_metrics(Some(strs(m, "metrics")))
                .send(),
        )
        .await?;
    }
    Ok(())
}

async fn put_warm_pool(
    c: &Clients,
    region: &str,
    group: &str,
    spec: &Value,
) -> Result<(), CloudError> {
    let Some(w) = spec.get("warm_pool").filter(|w| w.is_object()) else {
        return Ok(());
    };
    let rc = c.region(region).await;
    c.call(
        Call::new(region, SVC, "PutWarmPool"),
        rc.autoscaling
            .put_warm_pool()
            .auto_scaling_group_name(group)
            .set_min_size(i(w, "min_size").map(|v| v as i32))
            .set_max_group_prepared_capacity(i(w, "max_group_prepared_capacity").map(|v| v as i32))
            .set_pool_state(s(w, "pool_state").map(WarmPoolState::from))
            .set_instance_reuse_policy(w.get("instance_reuse_policy").map(|p| {
                InstanceReusePolicy::builder()
                    .set_reuse_on_scale_in(b(p, "reuse_on_scale_in"))
                    .build()
            }))
            .send(),
    )
    .await?;
    Ok(())
}

// ---- policies

fn policy_resource(region: &str, p: &ScalingPolicy) -> Resource {
    let group = p.auto_scaling_group_name().unwrap_or_default().to_string();
    let mut spec = Map::new();
    spec.insert("auto_scaling_group_name".into(), json!(group));
    for (k, v) in [
        ("policy_type", p.policy_type()),
        ("adjustment_type", p.adjustment_type()),
        ("metric_aggregation_type", p.metric_aggregation_type()),
    ] {
        if let Some(v) = v {
            spec.insert(k.into(), json!(v));
        }
    }
    for (k, v) in [
        ("estimated_instance_warmup", p.estimated_instance_warmup()),
        ("scaling_adjustment", p.scaling_adjustment()),
        ("cooldown", p.cooldown()),
    ] {
        if let Some(v) = v {
            spec.insert(k.into(), json!(v));
        }
    }
    if !p.step_adjustments().is_empty() {
        let steps: Vec<Value> = p
            .step_adjustments()
            .iter()
            .map(|a| {
                let mut m = Map::new();
                if let Some(v) = a.metric_interval_lower_bound() {
                    m.insert("metric_interval_lower_bound".into(), json!(v));
                }
                if let Some(v) = a.metric_interval_upper_bound() {
                    m.insert("metric_interval_upper_bound".into(), json!(v));
                }
                m.insert("scaling_adjustment".into(), json!(a.scaling_adjustment()));
                Value::Object(m)
            })
            .collect();
        spec.insert("step_adjustments".into(), json!(steps));
    }
    if let Some(t) = p.target_tracking_configuration() {
        let mut m = Map::new();
        if let Some(pm) = t.predefined_metric_specification() {
            let mut pms = Map::new();
            pms.insert(
                "predefined_metric_type".into(),
                json!(pm.predefined_metric_type().map(|m| m.as_str())),
            );
            if let Some(l) = pm.resource_label() {
                pms.insert("resource_label".into(), json!(l));
            }
            m.insert("predefined_metric_specification".into(), Value::Object(pms));
        }
        m.insert("target_value".into(), json!(t.target_value()));
        if let Some(d) = t.disable_scale_in() {
            m.insert("disable_scale_in".into(), json!(d));
        }
        spec.insert("target_tracking_configuration".into(), Value::Object(m));
    }
    let arn = p.policy_arn().unwrap_or_default().to_string();
    Resource {
        kind: Kind::ScalingPolicy,
        region: region.to_string(),
        name: p.policy_name().unwrap_or_default().to_string(),
        parent: Some(group.clone()),
        id: arn.clone(),
        arn,
        spec: Value::Object(spec),
        attrs: Map::new(),
        tags: Tags::new(),
        state: ResourceState::Available,
        depends_on: vec![group],
    }
}

/// Creates or replaces a policy; its ARN.
async fn put_policy(
    c: &Clients,
    region: &str,
    group: &str,
    name: &str,
    spec: &Value,
) -> Result<String, CloudError> {
    let rc = c.region(region).await;
    let steps: Option<Vec<StepAdjustment>> = spec
        .get("step_adjustments")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|st| {
                    StepAdjustment::builder()
                        .set_metric_interval_lower_bound(f(st, "metric_interval_lower_bound"))
                        .set_metric_interval_upper_bound(f(st, "metric_interval_upper_bound"))
                        .set_scaling_adjustment(i(st, "scaling_adjustment").map(|v| v as i32))
                        .build()
                })
                .collect()
        });
    let tracking = spec.get("target_tracking_configuration").map(|t| {
        TargetTrackingConfiguration::builder()
            .set_predefined_metric_specification(t.get("predefined_metric_specification").map(
                |p| {
                    PredefinedMetricSpecification::builder()
                        .set_predefined_metric_type(
                            s(p, "predefined_metric_type").map(MetricType::from),
                        )
                        .set_resource_label(s(p, "resource_label").map(str::to_string))
                        .build()
                },
            ))
            .set_target_value(f(t, "target_value"))
            .set_disable_scale_in(b(t, "disable_scale_in"))
            .build()
    });
    let out = c
        .call(
            Call::new(region, SVC, "PutScalingPolicy"),
            rc.autoscaling
                .put_scaling_policy()
                .auto_scaling_group_name(group)
                .policy_name(name)
                .set_policy_type(s(spec, "policy_type").map(str::to_string))
                .set_adjustment_type(s(spec, "adjustment_type").map(str::to_string))
                .set_metric_aggregation_type(s(spec, "metric_aggregation_type").map(str::to_string))
                .set_estimated_instance_warmup(
                    i(spec, "estimated_instance_warmup").map(|v| v as i32),
                )
                .set_scaling_adjustment(i(spec, "scaling_adjustment").map(|v| v as i32))
                .set_cooldown(i(spec, "cooldown").map(|v| v as i32))
                .set_step_adjustments(steps)
                .set_target_tracking_configuration(tracking)
                .send(),
        )
        .await?;
    Ok(out.policy_arn().unwrap_or_default().to_string())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::elbv2::test_support::{launch_template, moto, network, tags, unique};
    use super::*;
    use crate::cloud::drift::diff_raw as diff;

    const R: &str = "eu-central-1";

    const METRICS: [&str; 8] = [
        "GroupMinSize",
        "GroupMaxSize",
        "GroupDesiredCapacity",
        "GroupInServiceInstances",
        "GroupPendingInstances",
        "GroupStandbyInstances",
        "GroupTerminatingInstances",
        "GroupTotalInstances",
    ];

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
    async fn group_and_policies_round_trip_through_moto() {
        let Some(c) = moto("autoscaling round trip") else {
            return;
        };
        let (vpc, subnets, _) = network(&c, R).await;
        let lt = launch_template(&c, R).await;
        let u = unique();
        let tg = super::super::elbv2::create(
            &c,
            &request(
                Kind::TargetGroup,
                &format!("tg-{u}"),
                None,
                json!({"protocol": "HTTP", "port": 8080, "vpc_id": vpc, "target_type": "instance"}),
            ),
        )
        .await
        .unwrap();

        // The group: subnets go out comma-joined and come back as the list.
        let name = format!("asg-{u}");
        let spec = json!({
            "launch_template": {"launch_template_id": lt, "version": "$Latest"},
            "vpc_zone_identifier": subnets,
            "target_group_arns": [tg.arn],
            "max_size": 4, "min_size": 1, "desired_capacity": 1,
            "health_check_type": "ELB", "health_check_grace_period": 120,
            "default_instance_warmup": 60,
            "metrics_collection": [{"granularity": "1Minute", "metrics": METRICS}],
            "capacity_rebalance": true, "propagate_tags": true,
            "warm_pool": {"min_size": 2, "pool_state": "Stopped", "instance_reuse_policy": {"reuse_on_scale_in": true}},
        });
        let made = create(
            &c,
            &request(Kind::AutoScalingGroup, &name, None, spec.clone()),
        )
        .await
        .unwrap();
        let id = Identity::new(Kind::AutoScalingGroup, R, &name);
        let g = find(&c, &id).await.unwrap().expect("the group");
        assert_eq!(g.id, name);
        assert!(g.arn.starts_with("arn:aws:autoscaling:"), "{}", g.arn);
        assert_eq!(made.arn, g.arn);
        let mut found = g.spec.clone();
        // AWS keeps the metrics as a set: compare them as one.
        let mut metrics = strs(&found["metrics_collection"][0], "metrics");
        metrics.sort();
        let mut want_metrics: Vec<String> = METRICS.iter().map(|m| m.to_string()).collect();
        want_metrics.sort();
        assert_eq!(metrics, want_metrics);
        found["metrics_collection"] = spec["metrics_collection"].clone();
        let drift =
            crate::aws::testing::beyond_moto_gaps(Kind::AutoScalingGroup, diff(&spec, &found));
        assert!(drift.is_empty(), "{drift:?}\n{found:#}");
        assert_eq!(g.tags, tags(&name));

        // Capacity drifted: UpdateAutoScalingGroup with only those fields.
        let mut want = spec.clone();
        want["max_size"] = json!(5);
        want["desired_capacity"] = json!(2);
        let req = update_of(&g, &want);
        assert!(req.drifted.contains(&"max_size".to_string()));
        let calls = c.calls().len();
        update(&c, &g, &req).await.unwrap();
        let ops: Vec<&str> = c.calls()[calls..].iter().map(|r| r.operation).collect();
        assert_eq!(ops, ["UpdateAutoScalingGroup"]);
        let g = find(&c, &id).await.unwrap().unwrap();
        assert_eq!(g.spec["max_size"], json!(5));
        assert_eq!(g.spec["desired_capacity"], json!(2));

        // Two policies on the group, found through it.
        let tracking = json!({
            "auto_scaling_group_name": name, "policy_type": "TargetTrackingScaling",
            "estimated_instance_warmup": 60,
            "target_tracking_configuration": {
                "predefined_metric_specification": {"predefined_metric_type": "ASGAverageCPUUtilization"},
                "target_value": 50.0, "disable_scale_in": false,
            },
        });
        let step = json!({
            "auto_scaling_group_name": name, "policy_type": "StepScaling",
            "adjustment_type": "ChangeInCapacity", "metric_aggregation_type": "Maximum",
            "estimated_instance_warmup": 30,
            "step_adjustments": [
                {"metric_interval_lower_bound": 0, "metric_interval_upper_bound": 20, "scaling_adjustment": 2},
                {"metric_interval_lower_bound": 20, "scaling_adjustment": 4},
            ],
        });
        for (pname, spec) in [
            ("cpu-target-tracking", &tracking),
            ("fast-scale-out", &step),
        ] {
            let made = create(
                &c,
                &request(Kind::ScalingPolicy, pname, Some(&name), spec.clone()),
            )
            .await
            .unwrap();
            assert!(made.tags.is_empty(), "scaling policies carry no tags");
            let p = find(&c, &Identity::child(Kind::ScalingPolicy, R, &name, pname))
                .await
                .unwrap()
                .expect("the policy");
            assert_eq!(p.arn, made.arn);
            assert_eq!(p.parent.as_deref(), Some(name.as_str()));
            assert!(
                diff(spec, &p.spec).is_empty(),
                "{:?}\n{:#}",
                diff(spec, &p.spec),
                p.spec
            );
        }
        let pid = Identity::child(Kind::ScalingPolicy, R, &name, "cpu-target-tracking");
        let p = find(&c, &pid).await.unwrap().unwrap();
        let mut want = tracking.clone();
        want["target_tracking_configuration"]["target_value"] = json!(60.0);
        let req = update_of(&p, &want);
        assert_eq!(req.drifted, ["target_tracking_configuration.target_value"]);
        update(&c, &p, &req).await.unwrap();
        let p = find(&c, &pid).await.unwrap().unwrap();
        assert_eq!(
            p.spec["target_tracking_configuration"]["target_value"],
            json!(60.0)
        );
        let ps = list(&c, R, Kind::ScalingPolicy, Some(&name)).await.unwrap();
        let mut names: Vec<&str> = ps.iter().map(|p| p.name.as_str()).collect();
        names.sort();
        assert_eq!(names, ["cpu-target-tracking", "fast-scale-out"]);
        for p in &ps {
            delete(&c, p).await.unwrap();
            assert!(find(&c, &p.identity()).await.unwrap().is_none());
        }

        // The group is listed by its ManagedBy tag, and force-deleted with its instances.
        let gs = list(&c, R, Kind::AutoScalingGroup, None).await.unwrap();
        assert!(gs.iter().any(|r| r.name == name));
        delete(&c, &g).await.unwrap();
        match find(&c, &id).await.unwrap() {
            None => {}
            Some(r) => assert_eq!(r.state, ResourceState::Deleting),
        }
    }
}
