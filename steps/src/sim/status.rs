//! `drflow sim status`: the state of the simulated cloud that a failover depends on, by region.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::World;
use super::faults::ActiveFault;
use crate::backend::{AlarmState, GLOBAL, Kind};

/// The whole status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimStatus {
    /// The world's virtual time, in milliseconds since the Unix epoch.
    pub now_ms: u64,
    /// The region holding the Aurora writer, if there is a global database.
    pub writer_region: Option<String>,
    /// Per region, in name order.
    pub regions: Vec<RegionStatus>,
    /// Where DNS sends clients, per record name.
    pub traffic: Vec<TrafficStatus>,
    /// Faults pending or in force.
    pub faults: Vec<ActiveFault>,
}

/// One region.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegionStatus {
    /// The region.
    pub region: String,
    /// Whether the region is up (no region outage).
    pub up: bool,
    /// Whether the trading application there serves (healthy targets, writer reachable).
    pub app_healthy: bool,
    /// Why not, or `ok`.
    pub app_detail: String,
    /// The Route 53 health check of the region's endpoint.
    pub health_check: Option<HealthCheckSummary>,
    /// The region's alarms (empty when its CloudWatch is unreachable).
    pub alarms: Vec<AlarmState>,
    /// The region's Aurora member.
    pub database: Option<DatabaseStatus>,
    /// The region's Auto Scaling groups.
    pub groups: Vec<GroupSummary>,
}

/// A health check's verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthCheckSummary {
    /// Its name.
    pub name: String,
    /// Its id.
    pub id: String,
    /// Route 53's verdict (after `Inverted`).
    pub healthy: bool,
    /// Checkers that see the endpoint healthy.
    pub checkers_healthy: u32,
    /// Checkers in all.
    pub checkers: u32,
}

/// A member of the global database.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatabaseStatus {
    /// The cluster id.
    pub cluster_id: String,
    /// Whether it is the writer.
    pub writer: bool,
    /// Its status.
    pub status: String,
    /// For a secondary: the data it lacks now, in milliseconds of commits.
    pub replication_lag_ms: Option<u64>,
    /// The last write it holds.
    pub last_write_seq: u64,
    /// When that write was committed.
    pub last_write_at_ms: Option<u64>,
    /// Writes lost by managed failovers so far (the whole global database).
    pub lost_writes: u64,
}

/// An Auto Scaling group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupSummary {
    /// Its name.
    pub name: String,
    /// `DesiredCapacity`.
    pub desired: u32,
    /// In service.
    pub in_service: u32,
    /// Launching.
    pub pending: u32,
    /// In the warm pool.
    pub warm_pool: u32,
    /// The last failed launch.
    pub last_failure: Option<String>,
}

/// Where DNS sends clients of one name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrafficStatus {
    /// The record name.
    pub name: String,
    /// The load balancer DNS names answered now.
    pub answers: Vec<String>,
    /// Their regions.
    pub regions: Vec<String>,
}

/// The status of `world` now.
pub fn status(world: &World) -> SimStatus {
    let health = super::app::health_by_region(world);
    let mut regions = Vec::new();
    for region in world.known_regions() {
        let albs: Vec<String> = world
            .list(Some(&region), Some(Kind::LoadBalancer))
            .iter()
            .map(|lb| lb.attr_str("dns_name").to_string())
            .collect();
        let health_check = world
            .list(Some(GLOBAL), Some(Kind::HealthCheck))
            .into_iter()
            .find(|hc| {
                hc.spec
                    .get("fully_qualified_domain_name")
                    .and_then(Value::as_str)
                    .is_some_and(|f| albs.iter().any(|a| a == f))
            })
            .and_then(|hc| {
                let s = super::route53::get_health_check_status(world, &hc.id).ok()?;
                Some(HealthCheckSummary {
                    name: hc.name.clone(),
                    id: hc.id.clone(),
                    healthy: s.healthy,
                    checkers_healthy: s.checkers_healthy,
                    checkers: s.checkers,
                })
            });
        let database = world.aurora.values().find_map(|db| {
            let m = db.members.get(&region)?;
            let writer = db.writer_region.as_deref() == Some(region.as_str());
            Some(DatabaseStatus {
                cluster_id: m.cluster_id.clone(),
                writer,
                status: super::aurora::member_status(world, db, &region),
                replication_lag_ms: if writer {
                    None
                } else {
                    super::aurora::data_lag_ms(db, &region)
                },
                last_write_seq: m.applied_seq,
                last_write_at_ms: m.applied_at_ms,
                lost_writes: db.lost.iter().map(|l| l.count).sum(),
            })
        });
        let groups = world
            .list(Some(&region), Some(Kind::AutoScalingGroup))
            .iter()
            .filter_map(|g| {
                // Unlike the API, status shows a group in a region that is down.
                let c = super::autoscaling::group_capacity(world, &region, &g.name).ok()?;
                Some(GroupSummary {
                    name: c.name,
                    desired: c.desired_capacity,
                    in_service: c.in_service,
                    pending: c.pending,
                    warm_pool: c.warm_pool,
                    last_failure: c.last_failure,
                })
            })
            .collect();
        let (app_healthy, app_detail) = health
            .get(&region)
            .cloned()
            .unwrap_or((false, "no application".into()));
        regions.push(RegionStatus {
            up: !world.region_down(&region),
            alarms: super::cloudwatch::describe_alarms(world, &region, None).unwrap_or_default(),
            region,
            app_healthy,
            app_detail,
            health_check,
            database,
            groups,
        });
    }
    let mut names: Vec<String> = world
        .list(Some(GLOBAL), Some(Kind::DnsRecord))
        .iter()
        .filter(|r| r.spec.pointer("/alias_target/dns_name").is_some())
        .filter_map(|r| r.spec.get("name").and_then(Value::as_str))
        .map(|n| n.trim_end_matches('.').to_string())
        .collect();
    names.sort();
    names.dedup();
    let traffic = names
        .into_iter()
        .map(|name| {
            let answers: Vec<String> = super::dns::resolve(world, &name).into_iter().collect();
            let regions = answers
                .iter()
                .filter_map(|a| {
                    world
                        .list(None, Some(Kind::LoadBalancer))
                        .into_iter()
                        .find(|lb| lb.attr_str("dns_name").eq_ignore_ascii_case(a))
                        .map(|lb| lb.region)
                })
                .collect();
            TrafficStatus {
                name,
                answers,
                regions,
            }
        })
        .collect();
    SimStatus {
        now_ms: world.clock_ms,
        writer_region: world.writer_region(),
        regions,
        traffic,
        faults: world.faults.list.clone(),
    }
}

/// `drflow sim status` as text.
pub fn render(s: &SimStatus) -> String {
    let mut out = String::new();
    let elapsed = s.now_ms.saturating_sub(super::EPOCH_MS) / 1000;
    let _ = writeln!(
        out,
        "sim time +{}h{:02}m{:02}s   writer: {}",
        elapsed / 3600,
        (elapsed / 60) % 60,
        elapsed % 60,
        s.writer_region.as_deref().unwrap_or("-")
    );
    for f in &s.faults {
        let when = if f.start_ms > s.now_ms {
            format!("starts in {}s", (f.start_ms - s.now_ms) / 1000)
        } else {
            "in force".to_string()
        };
        let until = f.end_ms.map_or("until healed".to_string(), |e| {
            format!("ends in {}s", e.saturating_sub(s.now_ms) / 1000)
        });
        let _ = writeln!(
            out,
            "fault #{} {} {}{}: {when}, {until}",
            f.id,
            f.kind,
            f.region.as_deref().unwrap_or("all regions"),
            f.az.as_ref().map(|a| format!(" {a}")).unwrap_or_default()
        );
    }
    for r in &s.regions {
        let _ = writeln!(
            out,
            "\n{} ({}){}",
            r.region,
            if r.up { "up" } else { "DOWN" },
            if r.database.as_ref().is_some_and(|d| d.writer) {
                "  writer"
            } else {
                ""
            }
        );
        let _ = writeln!(
            out,
            "  application   {}",
            if r.app_healthy {
                "healthy".to_string()
            } else {
                format!("unhealthy: {}", r.app_detail)
            }
        );
        if let Some(hc) = &r.health_check {
            let _ = writeln!(
                out,
                "  health check  {} ({}/{} checkers healthy, {}%)",
                if hc.healthy { "healthy" } else { "UNHEALTHY" },
                hc.checkers_healthy,
                hc.checkers,
                hc.checkers_healthy * 100 / hc.checkers.max(1)
            );
        }
        if let Some(db) = &r.database {
            let lag = db
                .replication_lag_ms
                .map(|l| format!(", lag {l} ms"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  database      {} {}{lag}, last write #{}",
                db.cluster_id, db.status, db.last_write_seq
            );
        }
        for g in &r.groups {
            let _ = writeln!(
                out,
                "  group         {}: {}/{} in service, {} pending, {} warm{}",
                g.name,
                g.in_service,
                g.desired,
                g.pending,
                g.warm_pool,
                g.last_failure
                    .as_ref()
                    .map(|_| ", launches failing (InsufficientInstanceCapacity)")
                    .unwrap_or_default()
            );
        }
        for a in &r.alarms {
            let _ = writeln!(out, "  alarm         {:<17} {}", a.state.name(), a.name);
        }
    }
    for t in &s.traffic {
        let _ = writeln!(
            out,
            "\ntraffic {} -> {}",
            t.name,
            if t.regions.is_empty() {
                "nowhere".to_string()
            } else {
                t.regions.join(", ")
            }
        );
    }
    out
}
