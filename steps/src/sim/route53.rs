//! Route 53 health checkers: each health check is probed every `request_interval` by the
//! checker locations, and turns unhealthy after `failure_threshold` consecutive failures
//! (healthy again after as many successes).
//!
//! First version (the `simobs` helper owns this file from here on): every checker sees the
//! same answer at the same instant, so the share of checkers healthy is all or nothing.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::World;
use super::agenda::Event;
use super::process::Process;
use crate::backend::{CloudError, GLOBAL, HealthCheckStatus, Kind, Tags, not_found};

const NAME: &str = "route53";

/// One health check's state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CheckState {
    /// The verdict before `Inverted` is applied.
    pub healthy: bool,
    /// Checkers that saw the endpoint healthy at the last round.
    pub checkers_healthy: u32,
    /// Consecutive failed rounds.
    pub failures: u32,
    /// Consecutive passed rounds.
    pub passes: u32,
    /// When the last failed observation was made.
    pub last_failure_at_ms: Option<u64>,
    /// When the verdict last changed.
    pub changed_at_ms: Option<u64>,
}

/// Every health check's state, by id.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Route53State {
    /// By health check id.
    pub checks: BTreeMap<String, CheckState>,
}

/// The health checkers.
pub struct HealthCheckers;

fn interval_ms(spec: &Value) -> u64 {
    spec.get("request_interval")
        .and_then(Value::as_u64)
        .map_or(30_000, |s| s * 1000)
        .max(1000)
}

impl Process for HealthCheckers {
    fn name(&self) -> &'static str {
        NAME
    }

    fn sync(&self, world: &mut World) {
        let checks = world.list(Some(GLOBAL), Some(Kind::HealthCheck));
        world
            .route53
            .checks
            .retain(|id, _| checks.iter().any(|c| &c.id == id));
        for c in checks {
            // A new check starts healthy (Route 53 does, until the threshold of failures).
            world
                .route53
                .checks
                .entry(c.id.clone())
                .or_insert_with(|| CheckState {
                    healthy: true,
                    ..CheckState::default()
                });
            if !world.agenda.has(NAME, &c.id, "check") {
                let at = world.clock_ms + interval_ms(&c.spec);
                world.schedule(at, NAME, &c.id, "check", Value::Null);
            }
        }
    }

    fn handle(&self, world: &mut World, event: &Event) {
        let Ok(check) = world.get(GLOBAL, Kind::HealthCheck, &event.target) else {
            return;
        };
        let spec = check.resource.spec.clone();
        let host = spec
            .get("fully_qualified_domain_name")
            .and_then(Value::as_str)
            .unwrap_or("");
        let path = spec
            .get("resource_path")
            .and_then(Value::as_str)
            .unwrap_or("/");
        let search = spec.get("search_string").and_then(Value::as_str);
        let threshold =
            spec.get("failure_threshold")
                .and_then(Value::as_u64)
                .unwrap_or(world.config.health_check_failure_threshold as u64) as u32;
        let answer = super::app::http_get(world, GLOBAL, host, path);
        let ok = answer.status.is_some_and(|s| (200..400).contains(&s))
            && search.is_none_or(|s| answer.body.contains(s));
        let now = world.clock_ms;
        let checkers = world.config.route53_checkers;
        let st = world
            .route53
            .checks
            .entry(event.target.clone())
            .or_default();
        st.checkers_healthy = if ok { checkers } else { 0 };
        if ok {
            st.passes += 1;
            st.failures = 0;
        } else {
            st.failures += 1;
            st.passes = 0;
            st.last_failure_at_ms = Some(now);
        }
        let verdict = if st.healthy {
            st.failures < threshold
        } else {
            st.passes >= threshold
        };
        if verdict != st.healthy {
            st.healthy = verdict;
            st.changed_at_ms = Some(now);
        }
        let value = if verdict { 1.0 } else { 0.0 };
        let mut dims = Tags::new();
        dims.insert("HealthCheckId".into(), event.target.clone());
        super::cloudwatch::put_metric_data(
            world,
            "us-east-1",
            "AWS/Route53",
            "HealthCheckStatus",
            &dims,
            now,
            value,
        );
        world.schedule(
            now + interval_ms(&spec),
            NAME,
            &event.target,
            "check",
            json!(null),
        );
    }
}

/// `GetHealthCheckStatus`.
pub fn get_health_check_status(world: &World, id: &str) -> Result<HealthCheckStatus, CloudError> {
    let check = world
        .get(GLOBAL, Kind::HealthCheck, id)
        .map_err(|_| not_found("health check", id))?;
    let inverted = check
        .resource
        .spec
        .get("inverted")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let st = world.route53.checks.get(id).cloned().unwrap_or(CheckState {
        healthy: true,
        ..CheckState::default()
    });
    Ok(HealthCheckStatus {
        health_check_id: id.to_string(),
        healthy: st.healthy != inverted,
        checkers: world.config.route53_checkers,
        checkers_healthy: st.checkers_healthy,
        last_failure_at_ms: st.last_failure_at_ms,
        changed_at_ms: st.changed_at_ms,
        inverted,
    })
}

/// `UpdateHealthCheck` with `Inverted`.
pub fn set_health_check_inverted(
    world: &mut World,
    id: &str,
    inverted: bool,
) -> Result<HealthCheckStatus, CloudError> {
    let check = world
        .get(GLOBAL, Kind::HealthCheck, id)
        .map_err(|_| not_found("health check", id))?;
    let deps = check.resource.depends_on.clone();
    world.update(
        GLOBAL,
        Kind::HealthCheck,
        id,
        &json!({ "inverted": inverted }),
        &Tags::new(),
        &deps,
    )?;
    get_health_check_status(world, id)
}
