//! EC2 Auto Scaling and ALB target groups.
//!
//! A group keeps `desired_capacity` instances running: it launches from its warm pool first
//! ([`instance_launch_warm_ms`](super::SimConfig)), else cold
//! ([`instance_launch_cold_ms`](super::SimConfig)); a launch under `capacity-short` fails with
//! `InsufficientInstanceCapacity` and is retried every
//! [`asg_launch_retry_ms`](super::SimConfig). An instance in service registers with the
//! group's target groups, where it is `initial` until it passes
//! [`alb_healthy_checks_to_serve`](super::SimConfig) health checks (one, ELB guide) and
//! `unhealthy` after the target group's `unhealthy_threshold` failures. Instances in a lost
//! zone fail and are replaced in the other zones. Nothing moves in a region that is down: its
//! control plane is down with it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::World;
use super::agenda::Event;
use super::faults::FaultKind;
use super::process::Process;
use super::timeline::{FenceFact, MAX_FACTS, push_bounded};
use crate::backend::{CloudError, ErrorKind, GroupCapacity, Kind, TargetHealth, not_found};

const ASG: &str = "autoscaling";
const ELB: &str = "elb";

/// Where an instance is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstanceState {
    /// Launching into the warm pool (cold), stopped once ready.
    WarmingUp,
    /// Stopped in the warm pool.
    Warm,
    /// Launching into service.
    Pending,
    /// In service.
    InService,
}

/// One instance of a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    /// `i-…`.
    pub id: String,
    /// Its availability zone.
    pub az: String,
    /// Where it is in its life.
    pub state: InstanceState,
    /// When its current launch completes (`WarmingUp`, `Pending`).
    pub ready_at_ms: u64,
}

/// One Auto Scaling group.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AsgState {
    /// Its region.
    pub region: String,
    /// Its name.
    pub name: String,
    /// Its instances, oldest first.
    pub instances: Vec<Instance>,
    /// The status message of the last failed launch, cleared by a successful one.
    pub last_failure: Option<String>,
    /// When a failed launch is retried.
    pub retry_at_ms: Option<u64>,
}

/// One target of a target group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// The instance id.
    pub id: String,
    /// Its zone.
    pub az: String,
    /// `initial`, `healthy`, `unhealthy` or `draining`.
    pub state: String,
    /// Consecutive passed checks.
    pub passes: u32,
    /// Consecutive failed checks.
    pub failures: u32,
    /// For a draining target: when it is gone.
    pub gone_at_ms: Option<u64>,
}

/// One target group's targets.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TargetGroupState {
    /// Its region.
    pub region: String,
    /// Its targets.
    pub targets: Vec<Target>,
}

fn key(region: &str, name: &str) -> String {
    format!("{region}/{name}")
}

fn spec_u32(spec: &Value, field: &str) -> Option<u32> {
    spec.get(field).and_then(Value::as_u64).map(|v| v as u32)
}

/// What a group's spec asks for.
struct Wanted {
    desired: u32,
    warm_min: Option<u32>,
    reuse_on_scale_in: bool,
    zones: Vec<String>,
    target_groups: Vec<String>,
}

fn wanted(world: &World, region: &str, name: &str) -> Option<Wanted> {
    let r = world.find(region, Kind::AutoScalingGroup, name)?;
    let spec = &r.resource.spec;
    let subnets: Vec<&str> = spec
        .get("vpc_zone_identifier")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut zones: Vec<String> = subnets
        .iter()
        .filter_map(|s| world.get(region, Kind::Subnet, s).ok())
        .filter_map(|s| {
            s.resource
                .spec
                .get("availability_zone")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .collect();
    if zones.is_empty() {
        zones = world.zones_in_use(region);
    }
    let warm = spec.get("warm_pool");
    Some(Wanted {
        desired: spec_u32(spec, "desired_capacity")
            .or_else(|| spec_u32(spec, "min_size"))
            .unwrap_or(0),
        warm_min: warm.map(|w| spec_u32(w, "min_size").unwrap_or(0)),
        reuse_on_scale_in: warm
            .and_then(|w| w.pointer("/instance_reuse_policy/reuse_on_scale_in"))
            .and_then(Value::as_bool)
            .unwrap_or(false),
        zones,
        target_groups: spec
            .get("target_group_arns")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
    })
}

/// Auto Scaling: launches, the warm pool, replacements.
pub struct AutoScaling;

impl Process for AutoScaling {
    fn name(&self) -> &'static str {
        ASG
    }

    fn sync(&self, world: &mut World) {
        let groups: Vec<(String, String)> = world
            .list(None, Some(Kind::AutoScalingGroup))
            .into_iter()
            .map(|g| (g.region, g.name))
            .collect();
        let keep: Vec<String> = groups.iter().map(|(r, n)| key(r, n)).collect();
        let gone: Vec<String> = world
            .asgs
            .keys()
            .filter(|k| !keep.contains(k))
            .cloned()
            .collect();
        for k in gone {
            if let Some(g) = world.asgs.remove(&k) {
                for i in &g.instances {
                    deregister_everywhere(world, &i.id);
                }
            }
        }
        let tgs: Vec<(String, String)> = world
            .list(None, Some(Kind::TargetGroup))
            .into_iter()
            .map(|t| (t.region, t.arn))
            .collect();
        world
            .target_groups
            .retain(|arn, _| tgs.iter().any(|(_, a)| a == arn));
        for (region, arn) in tgs {
            world.target_groups.entry(arn.clone()).or_default().region = region;
            if !world.agenda.has(ELB, &arn, "check") {
                let at = world.clock_ms + tg_interval_ms(world, &arn);
                world.schedule(at, ELB, &arn, "check", Value::Null);
            }
        }
        for (region, name) in groups {
            reconcile(world, &region, &name);
        }
    }

    fn handle(&self, world: &mut World, event: &Event) {
        let Some((region, name)) = event.target.split_once('/') else {
            return;
        };
        let (region, name) = (region.to_string(), name.to_string());
        if event.what == "launch-done" {
            let now = world.clock_ms;
            let mut registered = Vec::new();
            if let Some(g) = world.asgs.get_mut(&event.target) {
                for i in g.instances.iter_mut().filter(|i| i.ready_at_ms <= now) {
                    match i.state {
                        InstanceState::WarmingUp => i.state = InstanceState::Warm,
                        InstanceState::Pending => {
                            i.state = InstanceState::InService;
                            registered.push((i.id.clone(), i.az.clone()));
                        }
                        _ => {}
                    }
                }
            }
            let tgs = wanted(world, &region, &name)
                .map(|w| w.target_groups)
                .unwrap_or_default();
            for (id, az) in registered {
                for tg in &tgs {
                    register(world, tg, &id, &az);
                }
            }
        }
        if event.what == "retry"
            && let Some(g) = world.asgs.get_mut(&event.target)
        {
            g.retry_at_ms = None;
        }
        reconcile(world, &region, &name);
        world.check_capacity_ready();
    }
}

fn new_instance_id(rng: &mut super::SimRng) -> String {
    format!("i-0{:016x}", rng.next_u64())
}

/// Launches or terminates instances until the group matches its spec.
fn reconcile(world: &mut World, region: &str, name: &str) {
    let k = key(region, name);
    let Some(w) = wanted(world, region, name) else {
        return;
    };
    world.asgs.entry(k.clone()).or_insert_with(|| AsgState {
        region: region.into(),
        name: name.into(),
        ..AsgState::default()
    });
    if world.region_down(region) {
        return;
    }
    let now = world.clock_ms;
    // Instances in a lost zone fail; the group terminates and replaces them.
    let lost: Vec<String> = world.asgs[&k]
        .instances
        .iter()
        .filter(|i| world.az_lost(region, &i.az))
        .map(|i| i.id.clone())
        .collect();
    for id in &lost {
        deregister_everywhere(world, id);
    }
    let short = world.fault_active(FaultKind::CapacityShort, region);
    let (cold, warm) = (
        world.config.instance_launch_cold_ms,
        world.config.instance_launch_warm_ms,
    );
    let retry = world.config.asg_launch_retry_ms;
    let zones: Vec<String> = w
        .zones
        .iter()
        .filter(|z| !world.az_lost(region, z))
        .cloned()
        .collect();
    let g = &world.asgs[&k];
    let active = g
        .instances
        .iter()
        .filter(|i| !lost.contains(&i.id))
        .filter(|i| matches!(i.state, InstanceState::Pending | InstanceState::InService))
        .count() as u32;
    let mut terminated: Vec<String> = Vec::new();
    // Disjoint borrows: the group, and the generator instance ids are drawn from.
    let rng = &mut world.rng;
    let g = world.asgs.get_mut(&k).expect("inserted above");
    g.instances.retain(|i| !lost.contains(&i.id));
    let blocked = g.retry_at_ms.is_some_and(|t| t > now);
    if active < w.desired && !blocked {
        let mut missing = w.desired - active;
        // Warm pool first: only instances already stopped in the pool start fast.
        for i in g
            .instances
            .iter_mut()
            .filter(|i| i.state == InstanceState::Warm)
        {
            if missing == 0 || short {
                break;
            }
            i.state = InstanceState::Pending;
            i.ready_at_ms = now + warm;
            missing -= 1;
        }
        if missing > 0 && short {
            g.last_failure = Some(format!(
                "Launching a new EC2 instance. Status Reason: We currently do not have sufficient capacity in the Availability Zone you requested ({}). Our system will be working on provisioning additional capacity. Launching EC2 instance failed. (InsufficientInstanceCapacity)",
                zones.first().map_or(region, String::as_str)
            ));
            g.retry_at_ms = Some(now + retry);
        } else {
            for _ in 0..missing {
                let id = new_instance_id(rng);
                let az = least_used_zone(&g.instances, &zones);
                g.instances.push(Instance {
                    id,
                    az,
                    state: InstanceState::Pending,
                    ready_at_ms: now + cold,
                });
            }
            g.last_failure = None;
        }
    }
    if active > w.desired {
        let mut extra = active - w.desired;
        // Scale in: newest first; back to the warm pool when the pool reuses instances.
        for i in g.instances.iter_mut().rev() {
            if extra == 0 {
                break;
            }
            if matches!(i.state, InstanceState::Pending | InstanceState::InService) {
                terminated.push(i.id.clone());
                if w.reuse_on_scale_in {
                    i.state = InstanceState::Warm;
                } else {
                    i.id.clear();
                }
                extra -= 1;
            }
        }
        g.instances.retain(|i| !i.id.is_empty());
    }
    if let (Some(min), false) = (w.warm_min, short) {
        let warm_now = g
            .instances
            .iter()
            .filter(|i| matches!(i.state, InstanceState::Warm | InstanceState::WarmingUp))
            .count() as u32;
        for _ in warm_now..min {
            let id = new_instance_id(rng);
            let az = least_used_zone(&g.instances, &zones);
            g.instances.push(Instance {
                id,
                az,
                state: InstanceState::WarmingUp,
                ready_at_ms: now + cold,
            });
        }
    }
    let retry_at = g.retry_at_ms;
    let pending: Vec<u64> = g
        .instances
        .iter()
        .filter(|i| matches!(i.state, InstanceState::Pending | InstanceState::WarmingUp))
        .map(|i| i.ready_at_ms)
        .collect();
    for id in terminated {
        deregister_everywhere(world, &id);
    }
    for at in pending {
        let exists = world
            .agenda
            .find(|e| e.process == ASG && e.target == k && e.what == "launch-done" && e.at_ms == at)
            .is_some();
        if !exists {
            world.schedule(at, ASG, &k, "launch-done", Value::Null);
        }
    }
    if let Some(at) = retry_at
        && !world.agenda.has(ASG, &k, "retry")
    {
        world.schedule(at, ASG, &k, "retry", Value::Null);
    }
}

/// The zone with the fewest instances of the group (the first such, in zone order): Auto
/// Scaling balances a group across its zones.
fn least_used_zone(instances: &[Instance], zones: &[String]) -> String {
    zones
        .iter()
        .min_by_key(|z| instances.iter().filter(|i| &i.az == *z).count())
        .cloned()
        .unwrap_or_default()
}

fn register(world: &mut World, tg_arn: &str, id: &str, az: &str) {
    let Some(tg) = world.target_groups.get_mut(tg_arn) else {
        return;
    };
    if tg
        .targets
        .iter()
        .any(|t| t.id == id && t.state != "draining")
    {
        return;
    }
    tg.targets.retain(|t| t.id != id);
    tg.targets.push(Target {
        id: id.into(),
        az: az.into(),
        state: "initial".into(),
        passes: 0,
        failures: 0,
        gone_at_ms: None,
    });
}

fn deregister_everywhere(world: &mut World, id: &str) {
    for tg in world.target_groups.values_mut() {
        tg.targets.retain(|t| t.id != id);
    }
}

fn tg_interval_ms(world: &World, arn: &str) -> u64 {
    world
        .list(None, Some(Kind::TargetGroup))
        .iter()
        .find(|t| t.arn == arn)
        .and_then(|t| t.spec.pointer("/health_check/interval_seconds"))
        .and_then(Value::as_u64)
        .map_or(10_000, |s| s * 1000)
        .max(1000)
}

fn tg_threshold(world: &World, arn: &str, field: &str, default: u32) -> u32 {
    world
        .list(None, Some(Kind::TargetGroup))
        .iter()
        .find(|t| t.arn == arn)
        .and_then(|t| t.spec.pointer(&format!("/health_check/{field}")))
        .and_then(Value::as_u64)
        .map_or(default, |v| v as u32)
}

/// The ALB's health checks of its targets, every target group's `interval_seconds`.
pub struct TargetHealthChecks;

impl Process for TargetHealthChecks {
    fn name(&self) -> &'static str {
        ELB
    }

    fn handle(&self, world: &mut World, event: &Event) {
        let arn = &event.target;
        let Some(tg) = world.target_groups.get(arn) else {
            return;
        };
        let region = tg.region.clone();
        let now = world.clock_ms;
        let answers_ok = super::app::answers_ok(world, &region);
        let down = world.region_down(&region);
        let to_serve = world.config.alb_healthy_checks_to_serve.max(1);
        let healthy_threshold = tg_threshold(world, arn, "healthy_threshold", 2);
        let unhealthy_threshold = tg_threshold(world, arn, "unhealthy_threshold", 2);
        let lost: Vec<bool> = tg
            .targets
            .iter()
            .map(|t| world.az_lost(&region, &t.az))
            .collect();
        let interval = tg_interval_ms(world, arn);
        if !down {
            let tg = world.target_groups.get_mut(arn).expect("checked above");
            tg.targets.retain(|t| t.gone_at_ms.is_none_or(|g| g > now));
            for (t, lost) in tg.targets.iter_mut().zip(lost) {
                if t.state == "draining" {
                    continue;
                }
                if answers_ok && !lost {
                    t.passes += 1;
                    t.failures = 0;
                    let need = if t.state == "initial" {
                        to_serve
                    } else {
                        healthy_threshold
                    };
                    if t.passes >= need {
                        t.state = "healthy".into();
                    }
                } else {
                    t.failures += 1;
                    t.passes = 0;
                    if t.failures >= unhealthy_threshold {
                        t.state = "unhealthy".into();
                    }
                }
            }
        }
        world.schedule(now + interval, ELB, arn, "check", Value::Null);
    }
}

/// Whether the target group `arn` has a target that gets traffic.
pub fn has_healthy_target(world: &World, arn: &str) -> bool {
    world
        .target_groups
        .get(arn)
        .is_some_and(|tg| tg.targets.iter().any(|t| t.state == "healthy"))
}

fn region_reachable(world: &World, region: &str) -> Result<(), CloudError> {
    if world.region_down(region) {
        return Err(CloudError::new(
            ErrorKind::Unavailable,
            format!("{region} is unreachable (region outage)"),
        ));
    }
    Ok(())
}

/// `DescribeTargetHealth`.
pub fn describe_target_health(
    world: &World,
    region: &str,
    arn: &str,
) -> Result<Vec<TargetHealth>, CloudError> {
    region_reachable(world, region)?;
    let tg = world
        .target_groups
        .get(arn)
        .filter(|tg| tg.region == region)
        .ok_or_else(|| not_found("target group", arn))?;
    Ok(tg
        .targets
        .iter()
        .map(|t| TargetHealth {
            target_id: t.id.clone(),
            availability_zone: t.az.clone(),
            state: t.state.clone(),
        })
        .collect())
}

/// `DeregisterTargets`: the targets drain for the group's `deregistration_delay`.
pub fn deregister_targets(
    world: &mut World,
    region: &str,
    arn: &str,
    ids: &[String],
) -> Result<(), CloudError> {
    region_reachable(world, region)?;
    let delay = world
        .list(Some(region), Some(Kind::TargetGroup))
        .iter()
        .find(|t| t.arn == arn)
        .and_then(|t| t.spec.get("deregistration_delay"))
        .and_then(Value::as_u64)
        .unwrap_or(300)
        * 1000;
    let now = world.clock_ms;
    let tg = world
        .target_groups
        .get_mut(arn)
        .filter(|tg| tg.region == region)
        .ok_or_else(|| not_found("target group", arn))?;
    for t in tg.targets.iter_mut().filter(|t| ids.contains(&t.id)) {
        t.state = "draining".into();
        t.gone_at_ms = Some(now + delay);
    }
    push_bounded(
        &mut world.timeline.fences,
        FenceFact {
            at_ms: now,
            region: region.into(),
            how: "deregister_targets".into(),
        },
        MAX_FACTS,
    );
    Ok(())
}

/// `DescribeAutoScalingGroups` for one group.
pub fn describe_group(
    world: &World,
    region: &str,
    name: &str,
) -> Result<GroupCapacity, CloudError> {
    region_reachable(world, region)?;
    group_capacity(world, region, name)
}

/// A group's capacity as the sim knows it, reachable or not (for `drflow sim status`).
pub fn group_capacity(
    world: &World,
    region: &str,
    name: &str,
) -> Result<GroupCapacity, CloudError> {
    let r = world
        .find(region, Kind::AutoScalingGroup, name)
        .ok_or_else(|| not_found("Auto Scaling group", name))?;
    let spec = &r.resource.spec;
    let g = world.asgs.get(&key(region, name));
    let count = |s: &[InstanceState]| {
        g.map_or(0, |g| {
            g.instances.iter().filter(|i| s.contains(&i.state)).count() as u32
        })
    };
    Ok(GroupCapacity {
        name: name.into(),
        region: region.into(),
        min_size: spec_u32(spec, "min_size").unwrap_or(0),
        max_size: spec_u32(spec, "max_size").unwrap_or(0),
        desired_capacity: spec_u32(spec, "desired_capacity").unwrap_or(0),
        in_service: count(&[InstanceState::InService]),
        pending: count(&[InstanceState::Pending]),
        warm_pool: count(&[InstanceState::Warm, InstanceState::WarmingUp]),
        last_failure: g.and_then(|g| g.last_failure.clone()),
    })
}

/// `UpdateAutoScalingGroup`: the sizes are written to the group (its spec), then the group
/// launches or terminates. Refused when the sizes contradict each other.
pub fn update_group(
    world: &mut World,
    region: &str,
    name: &str,
    min: Option<u32>,
    max: Option<u32>,
    desired: Option<u32>,
) -> Result<GroupCapacity, CloudError> {
    let now = describe_group(world, region, name)?;
    let (min, max, desired) = (
        min.unwrap_or(now.min_size),
        max.unwrap_or(now.max_size),
        desired.unwrap_or(now.desired_capacity),
    );
    if min > max || desired < min || desired > max {
        return Err(CloudError::new(
            ErrorKind::InvalidInput,
            format!(
                "desired capacity {desired} must be between the min size {min} and the max size {max} of {name}"
            ),
        ));
    }
    let id = world
        .find(region, Kind::AutoScalingGroup, name)
        .map(|r| r.resource.id.clone())
        .ok_or_else(|| not_found("Auto Scaling group", name))?;
    let deps = world
        .get(region, Kind::AutoScalingGroup, &id)?
        .resource
        .depends_on
        .clone();
    world.update(
        region,
        Kind::AutoScalingGroup,
        &id,
        &json!({"min_size": min, "max_size": max, "desired_capacity": desired}),
        &BTreeMap::new(),
        &deps,
    )?;
    // A new size is a new chance: a pending retry does not hold the launch back.
    if let Some(g) = world.asgs.get_mut(&key(region, name)) {
        g.retry_at_ms = None;
    }
    let at = world.clock_ms;
    if desired > now.desired_capacity {
        world.timeline.capacity_requested(region, name, desired, at);
    } else if desired == 0 && now.desired_capacity > 0 {
        push_bounded(
            &mut world.timeline.fences,
            FenceFact {
                at_ms: at,
                region: region.into(),
                how: "scale_to_zero".into(),
            },
            MAX_FACTS,
        );
    }
    world.sync_now();
    world.check_capacity_ready();
    describe_group(world, region, name)
}
