//! The simulated trading application in each region, what it answers on its health endpoint,
//! and how anything (Route 53's checkers, drflow's probe) reaches it over the network.
//!
//! The application runs on the instances of the region's Auto Scaling group behind its ALB.
//! It processes quotes while it reaches its database writer, and its health endpoint (the
//! launch template's `/health/trading`) answers `200 {"status":"ok","quote_timestamp":…,
//! "db":"connected"}` only while its last quote is younger than
//! [`app_max_quote_age_ms`](super::SimConfig) and the writer is reachable; otherwise `503
//! {"status":"degraded",…}` with the reason. The ALB answers `503` itself when no target is
//! healthy. A region that is down, or cut off by a partition, does not answer at all.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::World;
use super::agenda::Event;
use super::process::Process;
use crate::backend::{CloudError, ErrorKind, GLOBAL, Kind, ProbeResult, not_found};

/// The application's state in one region.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AppState {
    /// When it last processed a quote (it does while it reaches the writer).
    pub last_quote_ms: Option<u64>,
}

/// The trading application: processes quotes while it reaches its writer.
pub struct TradingApp;

impl Process for TradingApp {
    fn name(&self) -> &'static str {
        "app"
    }

    fn sync(&self, world: &mut World) {
        let regions: Vec<String> = world
            .list(None, Some(Kind::AutoScalingGroup))
            .into_iter()
            .map(|g| g.region)
            .collect();
        world.apps.retain(|r, _| regions.contains(r));
        for r in regions {
            world.apps.entry(r).or_default();
        }
    }

    fn accrue(&self, world: &mut World, to_ms: u64) {
        let regions: Vec<String> = world.apps.keys().cloned().collect();
        for r in regions {
            let runs = instances_in_service(world, &r) > 0
                && !world.region_down(&r)
                && db_connected(world, &r);
            if runs && let Some(app) = world.apps.get_mut(&r) {
                app.last_quote_ms = Some(to_ms);
            }
        }
    }

    fn handle(&self, _world: &mut World, _event: &Event) {}
}

fn instances_in_service(world: &World, region: &str) -> usize {
    world
        .asgs
        .values()
        .filter(|g| g.region == region)
        .flat_map(|g| &g.instances)
        .filter(|i| i.state == super::autoscaling::InstanceState::InService)
        .filter(|i| !world.az_lost(region, &i.az))
        .count()
}

/// Whether the application in `region` reaches a database: its writer, or the available
/// cluster of its own region (a standby reads from its local secondary, so it is healthy while
/// the writer's region is gone, as a real standby's health endpoint would be).
pub fn db_connected(world: &World, region: &str) -> bool {
    super::aurora::writer_reachable_from(world, region).unwrap_or(false)
        || super::aurora::local_member_available(world, region)
}

/// Why the application in `region` does not serve now, in words (for a failed request).
pub fn why_not_serving(world: &World, region: &str) -> String {
    if world.region_down(region) {
        return "region down".into();
    }
    let (ok, body) = app_body(world, region);
    if !ok {
        return body
            .get("reason")
            .and_then(Value::as_str)
            .unwrap_or("degraded")
            .to_string();
    }
    "no healthy target behind the load balancer".into()
}

/// Whether the application itself answers `ok` in `region` (ignoring the ALB): its instances
/// run, no application fault, a fresh quote and a reachable writer.
pub fn answers_ok(world: &World, region: &str) -> bool {
    app_body(world, region).0
}

/// `(ok, body)` of the application's health endpoint in `region`.
fn app_body(world: &World, region: &str) -> (bool, Value) {
    let now = world.clock_ms;
    let quote = world.apps.get(region).and_then(|a| a.last_quote_ms);
    let age_ms = quote.map(|q| now.saturating_sub(q));
    let db = db_connected(world, region);
    let fresh = age_ms.is_some_and(|a| a <= world.config.app_max_quote_age_ms);
    let broken = world.app_fault(region);
    let ok = instances_in_service(world, region) > 0 && db && fresh && !broken;
    let reason = if broken {
        Some("application error")
    } else if !db {
        Some("no database reachable")
    } else if !fresh {
        Some("stale quote")
    } else {
        None
    };
    let mut body = json!({
        "status": if ok { "ok" } else { "degraded" },
        "quote_timestamp": quote.map(|q| q as f64 / 1000.0),
        "quote_age_seconds": age_ms.map(|a| a as f64 / 1000.0),
        "db": if db { "connected" } else { "disconnected" },
        "region": region,
    });
    if let Some(reason) = reason {
        body["reason"] = reason.into();
    }
    (ok, body)
}

/// Whether the application in `region` serves traffic: its ALB has a healthy target and the
/// application answers `ok`.
pub fn serving(world: &World, region: &str) -> bool {
    answers_ok(world, region)
        && alb_target_groups(world, region)
            .iter()
            .any(|tg| super::autoscaling::has_healthy_target(world, tg))
}

fn alb_target_groups(world: &World, region: &str) -> Vec<String> {
    world
        .list(Some(region), Some(Kind::AutoScalingGroup))
        .iter()
        .flat_map(|g| {
            g.spec
                .get("target_group_arns")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

/// What an HTTP GET got.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpAnswer {
    /// The status, when an answer came.
    pub status: Option<u16>,
    /// The body.
    pub body: String,
    /// Why no answer came.
    pub error: Option<String>,
    /// The region that answered.
    pub region: Option<String>,
}

fn no_answer(error: String, region: Option<String>) -> HttpAnswer {
    HttpAnswer {
        status: None,
        body: String::new(),
        error: Some(error),
        region,
    }
}

/// An HTTPS GET of `https://host/path` from `from` (a region, or [`GLOBAL`] for the internet
/// where Route 53's checkers are). `host` is a load balancer's DNS name, or a record name that
/// Route 53 resolves to one.
pub fn http_get(world: &World, from: &str, host: &str, path: &str) -> HttpAnswer {
    let host = host.trim_end_matches('.');
    let alb = world
        .list(None, Some(Kind::LoadBalancer))
        .into_iter()
        .find(|lb| lb.attr_str("dns_name").eq_ignore_ascii_case(host));
    let alb = match alb {
        Some(lb) => lb,
        None => match super::dns::resolve(world, host) {
            Some(target) if !target.eq_ignore_ascii_case(host) => {
                return http_get(world, from, &target, path);
            }
            _ => return no_answer(format!("could not resolve {host}"), None),
        },
    };
    let region = alb.region.clone();
    if from != GLOBAL && world.region_down(from) {
        return no_answer(format!("{from} itself is down"), None);
    }
    if !world.reachable(from, &region) {
        return no_answer(
            format!(
                "timed out connecting to {host} after {} ms",
                world.config.probe_timeout_ms
            ),
            Some(region),
        );
    }
    if !path.starts_with("/health") {
        return HttpAnswer {
            status: Some(404),
            body: "not found".into(),
            error: None,
            region: Some(region),
        };
    }
    let tgs = alb_target_groups(world, &region);
    // With no healthy target an ALB fails open to its unhealthy ones (ELB guide, target group
    // health checks); with none registered, or only new ones, it answers 503 itself.
    let routable = tgs.iter().any(|tg| {
        super::autoscaling::has_healthy_target(world, tg)
            || world
                .target_groups
                .get(tg)
                .is_some_and(|g| g.targets.iter().any(|t| t.state == "unhealthy"))
    });
    if !routable || instances_in_service(world, &region) == 0 {
        return HttpAnswer {
            status: Some(503),
            body: "503 Service Temporarily Unavailable".into(),
            error: None,
            region: Some(region),
        };
    }
    let (ok, body) = app_body(world, &region);
    HttpAnswer {
        status: Some(if ok { 200 } else { 503 }),
        body: body.to_string(),
        error: None,
        region: Some(region),
    }
}

/// drflow's probe of `url` from `from_region`.
pub fn probe(
    world: &World,
    from_region: &str,
    url: &str,
    search: Option<&str>,
) -> Result<ProbeResult, CloudError> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| {
            CloudError::new(
                ErrorKind::InvalidInput,
                format!("{url:?} is not an http(s) URL"),
            )
        })?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let host = host.split(':').next().unwrap_or(host);
    if crate::regions::availability_zones(from_region).is_none() {
        return Err(CloudError::new(
            ErrorKind::InvalidInput,
            format!("unknown region {from_region:?}"),
        ));
    }
    if world.region_down(from_region) {
        return Err(CloudError::new(
            ErrorKind::Unavailable,
            format!("cannot probe from {from_region}: the region is down"),
        ));
    }
    let a = http_get(world, from_region, host, path);
    let body: Option<Value> = serde_json::from_str(&a.body).ok();
    let matched = search.is_none_or(|s| a.body.contains(s));
    let healthy = a.status.is_some_and(|s| (200..400).contains(&s)) && matched;
    let error = a.error.clone().or_else(|| match a.status {
        Some(s) if !(200..400).contains(&s) => Some(format!("HTTP {s}")),
        Some(_) if !matched => Some(format!(
            "the answer does not contain {:?}",
            search.unwrap_or_default()
        )),
        _ => None,
    });
    Ok(ProbeResult {
        url: url.to_string(),
        status: a.status,
        healthy,
        error,
        quote_at_ms: body
            .as_ref()
            .and_then(|b| b.get("quote_timestamp"))
            .and_then(Value::as_f64)
            .map(|s| (s * 1000.0).round() as u64),
        database_connected: body
            .as_ref()
            .and_then(|b| b.get("db"))
            .and_then(Value::as_str)
            .map(|d| d == "connected"),
    })
}

/// SNS `Publish`: the message is recorded in the world (`World::sns`).
pub fn publish(
    world: &mut World,
    region: &str,
    topic_arn: &str,
    subject: &str,
    message: &str,
) -> Result<String, CloudError> {
    if world.region_down(region) {
        return Err(CloudError::new(
            ErrorKind::Unavailable,
            format!("SNS in {region} is unreachable (region outage)"),
        ));
    }
    let exists = world
        .list(Some(region), Some(Kind::SnsTopic))
        .iter()
        .any(|t| t.arn == topic_arn);
    if !exists {
        return Err(not_found("SNS topic", topic_arn));
    }
    let r = world.rng.next_u64();
    let s = world.rng.next_u64();
    let message_id = format!(
        "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
        r >> 32,
        (r >> 16) & 0xffff,
        r & 0xfff,
        s >> 52,
        s & 0xffff_ffff_ffff
    );
    world.sns.push(super::world::SnsMessage {
        message_id: message_id.clone(),
        region: region.into(),
        topic_arn: topic_arn.into(),
        subject: subject.into(),
        message: message.into(),
        at_ms: world.clock_ms,
    });
    Ok(message_id)
}

/// The application's health in each region (for `drflow sim status`).
pub fn health_by_region(world: &World) -> BTreeMap<String, (bool, String)> {
    world
        .apps
        .keys()
        .map(|r| {
            let serving = serving(world, r) && !world.region_down(r);
            let (_, body) = app_body(world, r);
            let why = if world.region_down(r) {
                "region down".to_string()
            } else {
                body.get("reason")
                    .and_then(Value::as_str)
                    .unwrap_or(if serving { "ok" } else { "no healthy target" })
                    .to_string()
            };
            (r.clone(), (serving, why))
        })
        .collect()
}
