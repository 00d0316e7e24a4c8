//! Capacity: `dr.fence` (stop the old writer's region taking orders, and confirm it held),
//! `autoscaling.match_capacity` (grow the standby, never shrink it) and
//! `autoscaling.set_capacity` (set a group's sizes, both ways: failback's return to minimal).

use std::sync::Arc;

use drflow_engine::{Outputs, Registry, StepError, ValueType};
use serde_json::{Value, json};

use super::step::{
    BodyFuture, FailoverStep, Fx, duration, failover_spec, poll, string, unreachable,
};
use crate::backend::GroupCapacity;
use crate::regions::AWS_REGION;
use crate::target::LazyBackend;

/// How `dr.fence` stops a region taking orders.
pub(crate) const FENCE_MODES: &[&str] = &["scale_to_zero", "deregister_targets"];

/// Target states that still take new requests.
const SERVING: &[&str] = &["initial", "healthy", "unhealthy"];

pub(crate) fn register(reg: &mut Registry, backend: &Arc<LazyBackend>) {
    let fence = failover_spec(
        "dr.fence",
        "Fences the old writer's region so it takes no more orders: `scale_to_zero` sets its \
         Auto Scaling group to 0 (UpdateAutoScalingGroup), `deregister_targets` takes its \
         instances out of the target group (DeregisterTargets). Then it reads back until the \
         fence holds (no instance in service, or no target taking requests), or fails. When \
         the region cannot be reached it takes no orders anyway: the step says so and \
         succeeds with `fenced: false`.",
    )
    .required("region", ValueType::String, "The region to fence.")
    .format(AWS_REGION)
    .required(
        "mode",
        ValueType::String,
        "`scale_to_zero` or `deregister_targets`.",
    )
    .one_of(FENCE_MODES)
    .required(
        "asg_name",
        ValueType::String,
        "The region's Auto Scaling group.",
    )
    .optional(
        "target_group_arn",
        ValueType::String,
        json!(""),
        "The region's target group (for `deregister_targets`).",
    )
    .optional(
        "timeout",
        ValueType::Duration,
        json!("2m"),
        "How long the fence may take to hold.",
    )
    .at_least(1.0)
    .optional(
        "poll_interval",
        ValueType::Duration,
        json!("5s"),
        "Time between reads.",
    )
    .at_least(0.1)
    .output(
        "fenced",
        ValueType::Bool,
        "The fence is in place and was confirmed.",
    )
    .output("reachable", ValueType::Bool, "The region could be reached.")
    .output("detail", ValueType::String, "What was found, in words.");
    reg.register(FailoverStep::boxed(fence, backend, run_fence));

    let matching = failover_spec(
        "autoscaling.match_capacity",
        "Grows an Auto Scaling group to at least `capacity` instances (desired, minimum and, if \
         needed, maximum size; never lower) and waits on the run's clock until that many are \
         in service. When launches fail (InsufficientInstanceCapacity) it keeps asking until \
         `wait_timeout`, then succeeds with what launched and reports the shortfall.",
    )
    .required("region", ValueType::String, "The group's region.")
    .format(AWS_REGION)
    .required("asg_name", ValueType::String, "The group.")
    .required(
        "capacity",
        ValueType::Int,
        "Instances wanted in service (the primary's running capacity).",
    )
    .at_least(1.0)
    .optional(
        "wait_timeout",
        ValueType::Duration,
        json!("4m"),
        "How long to keep asking before settling for what launched.",
    )
    .at_least(0.0)
    .optional(
        "poll_interval",
        ValueType::Duration,
        json!("5s"),
        "Time between reads.",
    )
    .at_least(0.1)
    .output("target_capacity", ValueType::Int, "What was asked for.")
    .output(
        "in_service",
        ValueType::Int,
        "Instances in service at the end.",
    )
    .output(
        "shortfall",
        ValueType::Int,
        "Instances asked for and not in service (0 when all launched).",
    )
    .output(
        "last_failure",
        ValueType::String,
        "The last failed launch's message (empty when none).",
    );
    reg.register(FailoverStep::boxed(matching, backend, run_match));

    let set = failover_spec(
        "autoscaling.set_capacity",
        "Sets an Auto Scaling group's minimum size and desired capacity (UpdateAutoScalingGroup), \
         up or down, when they differ; with `wait`, waits until the instances in service match. \
         Failback uses it to return the standby to its minimal size.",
    )
    .required("region", ValueType::String, "The group's region.")
    .format(AWS_REGION)
    .required("asg_name", ValueType::String, "The group.")
    .required("desired_capacity", ValueType::Int, "The desired capacity.")
    .at_least(0.0)
    .required("min_size", ValueType::Int, "The minimum size.")
    .at_least(0.0)
    .optional(
        "wait",
        ValueType::Bool,
        json!(false),
        "Wait until the instances in service equal the desired capacity.",
    )
    .optional(
        "wait_timeout",
        ValueType::Duration,
        json!("5m"),
        "How long to wait.",
    )
    .at_least(0.0)
    .optional(
        "poll_interval",
        ValueType::Duration,
        json!("5s"),
        "Time between reads.",
    )
    .at_least(0.1)
    .rule(
        "`min_size` ≤ `desired_capacity`.",
        &["min_size", "desired_capacity"],
        |input| {
            let n = |k: &str| input.get(k).and_then(Value::as_i64).unwrap_or(0);
            if n("min_size") > n("desired_capacity") {
                return Err(drflow_engine::RuleViolation::at(
                    "min_size",
                    format!(
                        "a min_size of {} is more than the desired capacity of {}",
                        n("min_size"),
                        n("desired_capacity")
                    ),
                ));
            }
            Ok(())
        },
    )
    .output(
        "in_service",
        ValueType::Int,
        "Instances in service at the end.",
    );
    reg.register(FailoverStep::boxed(set, backend, run_set));
}

fn int(input: &Outputs, key: &str) -> Result<u32, StepError> {
    input
        .get(key)
        .and_then(Value::as_u64)
        .map(|n| n.min(u64::from(u32::MAX)) as u32)
        .ok_or_else(|| StepError::invalid_input(format!("`{key}` must be a whole number")))
}

fn run_fence<'a>(fx: &'a Fx, p: &'a Outputs) -> BodyFuture<'a> {
    Box::pin(async move {
        let region = string(p, "region")?;
        let mode = string(p, "mode")?;
        let asg = string(p, "asg_name")?;
        let tg = super::step::opt_string(p, "target_group_arn");
        let timeout = duration(p, "timeout")?;
        let interval = duration(p, "poll_interval")?;
        let out = |fenced: bool, reachable: bool, detail: String| {
            let mut o = Outputs::new();
            o.insert("fenced".into(), json!(fenced));
            o.insert("reachable".into(), json!(reachable));
            o.insert("detail".into(), json!(detail));
            o
        };
        let cut_off = |e: &crate::backend::CloudError| {
            let line = format!(
                "{region} cannot be reached ({}): it takes no orders while cut off; not fenced",
                e.message
            );
            fx.warn(&line);
            line
        };
        match mode {
            "scale_to_zero" => {
                let g = match fx.backend.describe_auto_scaling_group(region, asg).await {
                    Ok(g) => g,
                    Err(e) if unreachable(&e) => return Ok(out(false, false, cut_off(&e))),
                    Err(e) => return Err(e.into()),
                };
                if g.desired_capacity > 0 || g.min_size > 0 {
                    match fx
                        .backend
                        .update_auto_scaling_group(region, asg, Some(0), None, Some(0))
                        .await
                    {
                        Ok(_) => fx.act(format!(
                            "UpdateAutoScalingGroup {asg} ({region}): min 0, desired 0 (was {}): \
                             fenced",
                            g.desired_capacity
                        )),
                        Err(e) if unreachable(&e) => return Ok(out(false, false, cut_off(&e))),
                        Err(e) => return Err(e.into()),
                    }
                }
                let held = poll(fx, interval, timeout, || async {
                    let g = fx.backend.describe_auto_scaling_group(region, asg).await?;
                    Ok((g.in_service == 0 && g.pending == 0).then_some(()))
                })
                .await?;
                if held.is_none() {
                    return Err(fence_failed(region, mode, timeout));
                }
                Ok(out(
                    true,
                    true,
                    format!("{asg} ({region}) has no instance in service"),
                ))
            }
            _ => {
                let Some(tg) = tg else {
                    return Err(StepError::invalid_input(
                        "`target_group_arn` is needed to fence by deregistering targets",
                    ));
                };
                let targets = match fx.backend.describe_target_health(region, tg).await {
                    Ok(t) => t,
                    Err(e) if unreachable(&e) => return Ok(out(false, false, cut_off(&e))),
                    Err(e) => return Err(e.into()),
                };
                let ids: Vec<String> = targets
                    .iter()
                    .filter(|t| SERVING.contains(&t.state.as_str()))
                    .map(|t| t.target_id.clone())
                    .collect();
                if !ids.is_empty() {
                    match fx.backend.deregister_targets(region, tg, &ids).await {
                        Ok(()) => fx.act(format!(
                            "DeregisterTargets {} from {tg} ({region}): fenced",
                            ids.join(", ")
                        )),
                        Err(e) if unreachable(&e) => return Ok(out(false, false, cut_off(&e))),
                        Err(e) => return Err(e.into()),
                    }
                }
                let held = poll(fx, interval, timeout, || async {
                    let t = fx.backend.describe_target_health(region, tg).await?;
                    Ok((!t.iter().any(|t| SERVING.contains(&t.state.as_str()))).then_some(()))
                })
                .await?;
                if held.is_none() {
                    return Err(fence_failed(region, mode, timeout));
                }
                Ok(out(
                    true,
                    true,
                    format!("no target of {tg} ({region}) takes requests"),
                ))
            }
        }
    })
}

fn fence_failed(region: &str, mode: &str, timeout: std::time::Duration) -> StepError {
    StepError::permanent(
        "fence_failed",
        format!(
            "the fence of {region} ({mode}) did not hold after {}: the old writer's region may \
             still take orders, so nothing is promoted. hint: stop its instances by hand, then \
             re-run",
            drflow_engine::format_duration(timeout)
        ),
    )
}

/// The sizes `match_capacity` asks for, or `None` when the group has them already: never
/// lower than what it has.
pub(crate) fn grow_to(g: &GroupCapacity, target: u32) -> Option<(u32, u32, u32)> {
    let min = g.min_size.max(target);
    let max = g.max_size.max(target);
    let desired = g.desired_capacity.max(target);
    ((min, max, desired) != (g.min_size, g.max_size, g.desired_capacity))
        .then_some((min, max, desired))
}

fn run_match<'a>(fx: &'a Fx, p: &'a Outputs) -> BodyFuture<'a> {
    Box::pin(async move {
        let region = string(p, "region")?;
        let asg = string(p, "asg_name")?;
        let target = int(p, "capacity")?.max(1);
        let timeout = duration(p, "wait_timeout")?;
        let interval = duration(p, "poll_interval")?;
        let g = fx.backend.describe_auto_scaling_group(region, asg).await?;
        if let Some((min, max, desired)) = grow_to(&g, target) {
            fx.backend
                .update_auto_scaling_group(region, asg, Some(min), Some(max), Some(desired))
                .await?;
            fx.act(format!(
                "UpdateAutoScalingGroup {asg} ({region}): desired {} -> {desired}, min {} -> {min}",
                g.desired_capacity, g.min_size
            ));
        }
        let mut reported = None::<String>;
        let started = tokio::time::Instant::now();
        let (last, full) = loop {
            let g = fx.backend.describe_auto_scaling_group(region, asg).await?;
            if g.in_service >= target {
                break (g, true);
            }
            if let Some(f) = &g.last_failure
                && reported.as_ref() != Some(f)
            {
                fx.warn(format!(
                    "{asg} ({region}): {} of {target} in service; launches fail: {f}; asking \
                     again until the step's wait ends",
                    g.in_service
                ));
                reported = Some(f.clone());
                // Asking again starts a new scaling activity; never lower than asked.
                if let Some((min, max, desired)) = grow_to(&g, target) {
                    fx.backend
                        .update_auto_scaling_group(region, asg, Some(min), Some(max), Some(desired))
                        .await?;
                }
            }
            let elapsed = started.elapsed();
            if elapsed >= timeout {
                break (g, false);
            }
            fx.sleep(interval.min(timeout - elapsed)).await;
        };
        let shortfall = target.saturating_sub(last.in_service);
        if !full {
            fx.warn(format!(
                "capacity short: {} of {target} instances in service in {asg} ({region}) after \
                 {}; going on with what launched",
                last.in_service,
                drflow_engine::format_duration(timeout)
            ));
        }
        let mut out = Outputs::new();
        out.insert("target_capacity".into(), json!(target));
        out.insert("in_service".into(), json!(last.in_service));
        out.insert("shortfall".into(), json!(shortfall));
        out.insert(
            "last_failure".into(),
            json!(last.last_failure.clone().or(reported).unwrap_or_default()),
        );
        Ok(out)
    })
}

fn run_set<'a>(fx: &'a Fx, p: &'a Outputs) -> BodyFuture<'a> {
    Box::pin(async move {
        let region = string(p, "region")?;
        let asg = string(p, "asg_name")?;
        let desired = int(p, "desired_capacity")?;
        let min = int(p, "min_size")?.min(desired);
        let wait = p.get("wait").and_then(Value::as_bool).unwrap_or(false);
        let timeout = duration(p, "wait_timeout")?;
        let interval = duration(p, "poll_interval")?;
        let g = fx.backend.describe_auto_scaling_group(region, asg).await?;
        if g.desired_capacity != desired || g.min_size != min {
            let max = g.max_size.max(desired);
            fx.backend
                .update_auto_scaling_group(region, asg, Some(min), Some(max), Some(desired))
                .await?;
            fx.act(format!(
                "UpdateAutoScalingGroup {asg} ({region}): desired {} -> {desired}, min {} -> {min}",
                g.desired_capacity, g.min_size
            ));
        }
        let mut in_service = g.in_service;
        if wait {
            let done = poll(fx, interval, timeout, || async {
                let g = fx.backend.describe_auto_scaling_group(region, asg).await?;
                Ok((g.in_service == desired).then_some(g.in_service))
            })
            .await?;
            in_service = done.ok_or_else(|| {
                StepError::retryable(
                    "timeout",
                    format!(
                        "{asg} ({region}) did not reach {desired} in service after {}",
                        drflow_engine::format_duration(timeout)
                    ),
                )
            })?;
        } else {
            in_service = fx
                .backend
                .describe_auto_scaling_group(region, asg)
                .await
                .map_or(in_service, |g| g.in_service);
        }
        let mut out = Outputs::new();
        out.insert("in_service".into(), json!(in_service));
        Ok(out)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(min: u32, desired: u32, max: u32) -> GroupCapacity {
        GroupCapacity {
            name: "asg-prod".into(),
            region: "eu-central-1".into(),
            min_size: min,
            max_size: max,
            desired_capacity: desired,
            in_service: desired,
            pending: 0,
            warm_pool: 2,
            last_failure: None,
        }
    }

    #[test]
    fn matching_capacity_never_scales_in() {
        assert_eq!(grow_to(&group(1, 1, 8), 2), Some((2, 8, 2)));
        assert_eq!(grow_to(&group(2, 2, 8), 2), None, "already there");
        assert_eq!(grow_to(&group(1, 4, 8), 2), Some((2, 8, 4)), "desired kept");
        assert_eq!(grow_to(&group(3, 4, 8), 2), None, "nothing lowered");
        assert_eq!(grow_to(&group(1, 1, 1), 3), Some((3, 3, 3)), "max raised");
    }
}
