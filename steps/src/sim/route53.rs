//! Route 53 health checks in the sim: a set of checkers per health check, probing the endpoint
//! from many places, and the verdict Route 53 derives from them.
//!
//! The model follows the Route 53 Developer Guide, "How Amazon Route 53 determines whether a
//! health check is healthy":
//! - about 15 checker locations ([`SimConfig::route53_checkers`]) each probe the endpoint
//!   every request interval (10 s fast, 30 s standard, from the health check's spec), spread
//!   over the interval;
//! - a checker changes its view after `FailureThreshold` consecutive probes that disagree with
//!   it (failures turn it unhealthy, successes turn it back);
//! - its view reaches Route 53 after a delay of up to [`SimConfig::health_check_extra_ms`] (the
//!   undocumented few seconds between "interval × threshold" and the status seen, aws-timings);
//! - the check is healthy while MORE than 18 % of the checkers report it healthy;
//! - `HTTPS_STR_MATCH`: a 2xx or 3xx answer whose first 5,120 bytes hold the search string;
//! - `Inverted` flips the verdict; a disabled check is healthy.
//!
//! Everything here is a pure state machine: the world supplies what a probe sees
//! ([`EndpointAnswer`]) through a closure, at the probe's virtual time. No I/O, no wall clock.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::World;
use super::agenda::Event;
use super::config::SimConfig;
use super::process::Process;
use super::timeline::{DnsChangeFact, HealthCheckFact, MAX_FACTS, push_bounded};
use crate::backend::{CloudError, GLOBAL, HealthCheckStatus, Kind, Resource, Tags, not_found};

const NAME: &str = "route53";

/// What one probe of the endpoint gets back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndpointAnswer {
    /// No connection within the checker's 4 s, or no answer within 2 s (the region is down).
    Unreachable,
    /// An HTTP answer.
    Http {
        /// The status code.
        status: u16,
        /// The body (only the first 5,120 bytes count).
        body: String,
    },
}

/// How many bytes of a body Route 53 searches for the string (Route 53 Developer Guide,
/// "Values that you specify when you create or update health checks": `SearchString`).
pub const SEARCH_WINDOW_BYTES: usize = 5120;

/// How a health check probes, read from its spec (`route53.health_check`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeSpec {
    /// `Type`: `HTTPS_STR_MATCH`, `HTTP_STR_MATCH`, `HTTPS`, `HTTP` or `TCP`.
    pub check_type: String,
    /// `FullyQualifiedDomainName`: the host probed.
    pub fqdn: String,
    /// `ResourcePath`.
    pub path: String,
    /// `SearchString`, for the `*_STR_MATCH` types.
    pub search_string: Option<String>,
    /// `RequestInterval`, in milliseconds.
    pub interval_ms: u64,
    /// `FailureThreshold`.
    pub failure_threshold: u32,
    /// `Inverted`.
    pub inverted: bool,
    /// `Disabled`: Route 53 then reports it healthy.
    pub disabled: bool,
}

impl ProbeSpec {
    /// Reads a health check's spec. `request_interval` is in seconds: 30 maps to
    /// [`SimConfig::health_check_standard_interval_ms`], anything else to the fast
    /// [`SimConfig::health_check_interval_ms`]; a missing threshold is
    /// [`SimConfig::health_check_failure_threshold`].
    pub fn from_spec(spec: &Value, config: &SimConfig) -> ProbeSpec {
        let s = |k: &str| spec.get(k).and_then(Value::as_str).map(str::to_string);
        let interval_ms = match spec.get("request_interval").and_then(Value::as_u64) {
            Some(30) => config.health_check_standard_interval_ms,
            _ => config.health_check_interval_ms,
        };
        let failure_threshold = spec
            .get("failure_threshold")
            .and_then(Value::as_u64)
            .map_or(config.health_check_failure_threshold, |t| t as u32)
            .max(1);
        let flag = |k: &str| spec.get(k).and_then(Value::as_bool).unwrap_or(false);
        ProbeSpec {
            check_type: s("type").unwrap_or_else(|| "HTTPS".into()),
            fqdn: s("fully_qualified_domain_name").unwrap_or_default(),
            path: s("resource_path").unwrap_or_else(|| "/".into()),
            search_string: s("search_string"),
            interval_ms: interval_ms.max(1),
            failure_threshold,
            inverted: flag("inverted"),
            disabled: flag("disabled"),
        }
    }

    /// Whether one answer passes this check.
    pub fn passes(&self, answer: &EndpointAnswer) -> bool {
        let EndpointAnswer::Http { status, body } = answer else {
            return false;
        };
        if self.check_type == "TCP" {
            return true;
        }
        if !(200..400).contains(status) {
            return false;
        }
        if !self.check_type.ends_with("STR_MATCH") {
            return true;
        }
        let Some(needle) = self.search_string.as_deref() else {
            return true;
        };
        let window = &body.as_bytes()[..body.len().min(SEARCH_WINDOW_BYTES)];
        window
            .windows(needle.len().max(1))
            .any(|w| w == needle.as_bytes())
    }
}

/// One checker location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checker {
    /// When it probes next.
    pub next_probe_ms: u64,
    /// How long its view takes to reach Route 53's verdict.
    pub report_delay_ms: u64,
    /// Its own view of the endpoint.
    pub healthy: bool,
    /// Consecutive probes that disagreed with `healthy`.
    pub streak: u32,
    /// Its view as Route 53 has it (after `report_delay_ms`).
    pub reported_healthy: bool,
    /// Changes of view on their way to Route 53: (arrival time, view).
    pub in_flight: Vec<(u64, bool)>,
}

/// What a health check did while time passed.
#[derive(Debug, Clone, PartialEq)]
pub enum Route53Event {
    /// The verdict (after `Inverted`) changed.
    StatusChanged {
        /// The health check.
        health_check_id: String,
        /// When.
        at_ms: u64,
        /// The new verdict.
        healthy: bool,
    },
    /// A checker saw the endpoint fail, and the probe before it (of any checker) passed: the
    /// first failed observation of a run of them.
    FirstFailure {
        /// The health check.
        health_check_id: String,
        /// The probe's time.
        at_ms: u64,
    },
    /// One `HealthCheckStatus` datapoint (`AWS/Route53`, 1 when healthy), the minimum over the
    /// period starting at `period_start_ms`, published as that period ends.
    MetricDatapoint {
        /// The health check.
        health_check_id: String,
        /// The start of the period it covers.
        period_start_ms: u64,
        /// 0 or 1.
        value: f64,
    },
}

/// One health check and its checkers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthCheckSim {
    /// The health check's id.
    pub id: String,
    /// How it probes.
    pub probe: ProbeSpec,
    /// Its checkers.
    pub checkers: Vec<Checker>,
    /// Share of checkers (percent) that must be exceeded for the check to be healthy.
    pub healthy_above_pct: u32,
    /// The verdict, after `Inverted`.
    pub healthy: bool,
    /// When the verdict last changed.
    pub changed_at_ms: Option<u64>,
    /// The last probe any checker saw fail.
    pub last_failure_at_ms: Option<u64>,
    /// The first failed probe since the last one that passed (`None`: the last probe passed).
    #[serde(default)]
    pub failing_since_ms: Option<u64>,
    /// `HealthCheckStatus` period, in milliseconds.
    pub metric_period_ms: u64,
    /// Start of the metric period in progress.
    pub metric_period_start_ms: u64,
    /// Lowest status (0 or 1) seen in the period in progress.
    pub metric_min: f64,
}

/// A number in [0, 1) determined by `seed` and `salt` alone: the sim's randomness, so the same
/// world always unfolds the same way, whatever order things are computed in.
pub fn hash_unit(seed: &str, salt: u64) -> f64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in seed.bytes().chain(salt.to_le_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    // splitmix64 finaliser: spreads FNV's weak low bits.
    let mut z = h.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

impl HealthCheckSim {
    /// A new health check created at `now`: every checker starts seeing it healthy (Route 53
    /// reports a new check healthy until its checkers say otherwise), their probes spread evenly
    /// over the interval from a seeded offset, each with its own report delay.
    pub fn new(id: &str, probe: ProbeSpec, config: &SimConfig, now: u64) -> HealthCheckSim {
        let n = u64::from(config.route53_checkers.max(1));
        let interval = probe.interval_ms;
        let offset = (hash_unit(id, 0) * interval as f64) as u64;
        let checkers = (0..n)
            .map(|i| {
                let phase = (offset + i * interval / n) % interval;
                let delay = (hash_unit(id, i + 1) * (config.health_check_extra_ms + 1) as f64)
                    .floor() as u64;
                Checker {
                    next_probe_ms: now + phase + 1,
                    report_delay_ms: delay.min(config.health_check_extra_ms),
                    healthy: true,
                    streak: 0,
                    reported_healthy: true,
                    in_flight: Vec::new(),
                }
            })
            .collect();
        let period = config.health_check_metric_period_ms.max(1);
        let mut hc = HealthCheckSim {
            id: id.to_string(),
            probe,
            checkers,
            healthy_above_pct: config.route53_healthy_share_pct,
            healthy: true,
            changed_at_ms: None,
            last_failure_at_ms: None,
            failing_since_ms: None,
            metric_period_ms: period,
            metric_period_start_ms: now - now % period,
            metric_min: 1.0,
        };
        hc.healthy = hc.verdict();
        hc.metric_min = if hc.healthy { 1.0 } else { 0.0 };
        hc
    }

    /// How many checkers Route 53 has as healthy now.
    pub fn checkers_healthy(&self) -> u32 {
        self.checkers.iter().filter(|c| c.reported_healthy).count() as u32
    }

    /// The verdict the checkers' reports give now, after `Disabled` and `Inverted`.
    fn verdict(&self) -> bool {
        let n = self.checkers.len() as u64;
        let up = u64::from(self.checkers_healthy());
        let healthy = self.probe.disabled || up * 100 > u64::from(self.healthy_above_pct) * n;
        healthy != self.probe.inverted
    }

    /// When something next happens to this check if nothing else changes: a probe, a report
    /// arriving, or the end of a metric period.
    pub fn next_due_ms(&self) -> u64 {
        let probes = self.checkers.iter().map(|c| {
            c.in_flight
                .iter()
                .map(|(at, _)| *at)
                .fold(c.next_probe_ms, u64::min)
        });
        probes
            .chain([self.metric_period_start_ms + self.metric_period_ms])
            .min()
            .unwrap_or(u64::MAX)
    }

    /// Runs every probe, report and metric period due up to and including `now`, in time
    /// order. `observe(spec, at_ms)` says what a probe made at `at_ms` gets back.
    pub fn advance_to(
        &mut self,
        now: u64,
        observe: &mut dyn FnMut(&ProbeSpec, u64) -> EndpointAnswer,
        out: &mut Vec<Route53Event>,
    ) {
        loop {
            let t = self.next_due_ms();
            if t > now {
                return;
            }
            // A period ending at t does not include what happens at t.
            let period_end = self.metric_period_start_ms + self.metric_period_ms;
            if period_end == t {
                out.push(Route53Event::MetricDatapoint {
                    health_check_id: self.id.clone(),
                    period_start_ms: self.metric_period_start_ms,
                    value: self.metric_min,
                });
                self.metric_period_start_ms = period_end;
                self.metric_min = if self.healthy { 1.0 } else { 0.0 };
            }
            let mut answer = None;
            for i in 0..self.checkers.len() {
                let c = &mut self.checkers[i];
                c.in_flight.retain(|&(at, view)| {
                    if at == t {
                        c.reported_healthy = view;
                    }
                    at != t
                });
                if c.next_probe_ms != t {
                    continue;
                }
                // Every checker probing at the same instant sees the same endpoint.
                let seen = answer
                    .get_or_insert_with(|| observe(&self.probe, t))
                    .clone();
                let c = &mut self.checkers[i];
                let ok = self.probe.passes(&seen);
                if !ok {
                    self.last_failure_at_ms = Some(t);
                    if self.failing_since_ms.is_none() {
                        self.failing_since_ms = Some(t);
                        out.push(Route53Event::FirstFailure {
                            health_check_id: self.id.clone(),
                            at_ms: t,
                        });
                    }
                } else {
                    self.failing_since_ms = None;
                }
                c.next_probe_ms = t + self.probe.interval_ms;
                if ok == c.healthy {
                    c.streak = 0;
                    continue;
                }
                c.streak += 1;
                if c.streak >= self.probe.failure_threshold {
                    c.healthy = ok;
                    c.streak = 0;
                    if c.report_delay_ms == 0 {
                        c.reported_healthy = ok;
                    } else {
                        c.in_flight.push((t + c.report_delay_ms, ok));
                    }
                }
            }
            self.refresh(t, out);
        }
    }

    /// Like [`HealthCheckSim::advance_to`] while the endpoint answers `answer` all along (the
    /// world does not change between two of its events): once every checker agrees with it and
    /// nothing is in flight, the remaining probes change nothing, so they are skipped in one
    /// step instead of run one by one.
    pub fn advance_steady(
        &mut self,
        now: u64,
        answer: &EndpointAnswer,
        out: &mut Vec<Route53Event>,
    ) {
        let ok = self.probe.passes(answer);
        let mut observe = |_: &ProbeSpec, _: u64| answer.clone();
        while !self.settled(ok) {
            if self.next_due_ms() > now {
                return;
            }
            let due = self.next_due_ms();
            self.advance_to(due, &mut observe, out);
        }
        let first_skipped = self
            .checkers
            .iter()
            .map(|c| c.next_probe_ms)
            .min()
            .filter(|t| *t <= now);
        if let Some(t) = first_skipped {
            if ok {
                self.failing_since_ms = None;
            } else if self.failing_since_ms.is_none() {
                self.failing_since_ms = Some(t);
                out.push(Route53Event::FirstFailure {
                    health_check_id: self.id.clone(),
                    at_ms: t,
                });
            }
        }
        for c in &mut self.checkers {
            if c.next_probe_ms <= now {
                let k = (now - c.next_probe_ms) / self.probe.interval_ms + 1;
                let last = c.next_probe_ms + (k - 1) * self.probe.interval_ms;
                c.next_probe_ms += k * self.probe.interval_ms;
                if !ok {
                    self.last_failure_at_ms = self.last_failure_at_ms.max(Some(last));
                }
            }
        }
        let status = if self.healthy { 1.0 } else { 0.0 };
        while self.metric_period_start_ms + self.metric_period_ms <= now {
            out.push(Route53Event::MetricDatapoint {
                health_check_id: self.id.clone(),
                period_start_ms: self.metric_period_start_ms,
                value: self.metric_min,
            });
            self.metric_period_start_ms += self.metric_period_ms;
            self.metric_min = status;
        }
    }

    /// Whether every checker sees the endpoint as `ok` and has told Route 53 so.
    fn settled(&self, ok: bool) -> bool {
        self.checkers.iter().all(|c| {
            c.healthy == ok && c.reported_healthy == ok && c.streak == 0 && c.in_flight.is_empty()
        })
    }

    /// Recomputes the verdict at `at_ms` and records a change.
    fn refresh(&mut self, at_ms: u64, out: &mut Vec<Route53Event>) {
        let healthy = self.verdict();
        if !healthy {
            self.metric_min = 0.0;
        }
        if healthy != self.healthy {
            self.healthy = healthy;
            self.changed_at_ms = Some(at_ms);
            out.push(Route53Event::StatusChanged {
                health_check_id: self.id.clone(),
                at_ms,
                healthy,
            });
        }
    }

    /// `UpdateHealthCheck` with `Inverted`: takes effect at `now`.
    pub fn set_inverted(&mut self, inverted: bool, now: u64, out: &mut Vec<Route53Event>) {
        self.probe.inverted = inverted;
        self.refresh(now, out);
    }

    /// Takes a changed spec (an update through the generic API: inverted, disabled, search
    /// string, threshold), keeping the checkers' views.
    pub fn respec(&mut self, probe: ProbeSpec, now: u64, out: &mut Vec<Route53Event>) {
        if probe.interval_ms != self.probe.interval_ms {
            for c in &mut self.checkers {
                c.next_probe_ms = c.next_probe_ms.min(now + probe.interval_ms);
            }
        }
        self.probe = probe;
        self.refresh(now, out);
    }
}

/// Every health check's checkers, by health check id (the world's `route53` field).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Route53State {
    /// By health check id.
    pub checks: BTreeMap<String, HealthCheckSim>,
}

/// The Route 53 health checkers, as a process of the world.
///
/// They run in [`Process::accrue`]: between two events of the world nothing changes, so the
/// endpoint answers every probe of the stretch the same and [`HealthCheckSim::advance_steady`]
/// runs them all at once, without an event per probe.
pub struct HealthCheckers;

/// Where Route 53 publishes health check metrics (Route 53 Developer Guide, "Monitoring health
/// checks using CloudWatch": US East (N. Virginia) only).
pub const METRICS_REGION: &str = "us-east-1";

/// What Route 53's checkers get from the endpoint a health check names, now.
fn endpoint_answer(world: &World, probe: &ProbeSpec) -> EndpointAnswer {
    let a = super::app::http_get(world, GLOBAL, &probe.fqdn, &probe.path);
    match a.status {
        Some(status) => EndpointAnswer::Http {
            status,
            body: a.body,
        },
        None => EndpointAnswer::Unreachable,
    }
}

impl Process for HealthCheckers {
    fn name(&self) -> &'static str {
        NAME
    }

    fn sync(&self, world: &mut World) {
        let now = world.clock_ms;
        let World {
            regions,
            route53,
            config,
            ..
        } = world;
        let checks: Vec<&Resource> = regions
            .get(GLOBAL)
            .into_iter()
            .flat_map(|m| m.values())
            .map(|r| &r.resource)
            .filter(|r| r.kind == Kind::HealthCheck)
            .collect();
        route53
            .checks
            .retain(|id, _| checks.iter().any(|c| &c.id == id));
        let mut out = Vec::new();
        for c in checks {
            let probe = ProbeSpec::from_spec(&c.spec, config);
            match route53.checks.get_mut(&c.id) {
                Some(hc) if hc.probe == probe => {}
                Some(hc) => hc.respec(probe, now, &mut out),
                None => {
                    route53
                        .checks
                        .insert(c.id.clone(), HealthCheckSim::new(&c.id, probe, config, now));
                }
            }
        }
        publish(world, out);
    }

    fn handle(&self, _world: &mut World, _event: &Event) {}

    fn accrue(&self, world: &mut World, to_ms: u64) {
        let answers: Vec<(String, EndpointAnswer)> = world
            .route53
            .checks
            .values()
            .filter(|hc| hc.next_due_ms() <= to_ms)
            .map(|hc| (hc.id.clone(), endpoint_answer(world, &hc.probe)))
            .collect();
        let mut out = Vec::new();
        for (id, answer) in answers {
            if let Some(hc) = world.route53.checks.get_mut(&id) {
                hc.advance_steady(to_ms, &answer, &mut out);
            }
        }
        publish(world, out);
    }
}

/// Sends what the checkers did on: `HealthCheckStatus` datapoints to CloudWatch, first failures
/// and verdict changes to the timeline.
fn publish(world: &mut World, events: Vec<Route53Event>) {
    for e in events {
        let fact = |world: &World, id: &str, at_ms: u64, kind: &str| {
            let r = world.get(GLOBAL, Kind::HealthCheck, id).ok();
            let fqdn = r
                .and_then(|r| r.resource.spec.get("fully_qualified_domain_name"))
                .and_then(Value::as_str)
                .unwrap_or("");
            let region = world
                .list(None, Some(Kind::LoadBalancer))
                .into_iter()
                .find(|lb| lb.attr_str("dns_name").eq_ignore_ascii_case(fqdn))
                .map(|lb| lb.region);
            HealthCheckFact {
                at_ms,
                health_check_id: id.to_string(),
                name: r.map(|r| r.resource.name.clone()).unwrap_or_default(),
                region,
                kind: kind.into(),
            }
        };
        match e {
            Route53Event::MetricDatapoint {
                health_check_id,
                period_start_ms,
                value,
            } => {
                let metric = super::cloudwatch::MetricId::new(
                    METRICS_REGION,
                    "AWS/Route53",
                    "HealthCheckStatus",
                    &[("HealthCheckId", &health_check_id)],
                );
                world
                    .cloudwatch
                    .metrics
                    .put(&metric, period_start_ms, value);
            }
            Route53Event::FirstFailure {
                health_check_id,
                at_ms,
            } => {
                let f = fact(world, &health_check_id, at_ms, "first_failed_check");
                push_bounded(&mut world.timeline.health_checks, f, MAX_FACTS);
            }
            Route53Event::StatusChanged {
                health_check_id,
                at_ms,
                healthy,
            } => {
                tracing::debug!(health_check = %health_check_id, at_ms, healthy, "sim: health check status changed");
                let kind = if healthy { "healthy" } else { "unhealthy" };
                let f = fact(world, &health_check_id, at_ms, kind);
                push_bounded(&mut world.timeline.health_checks, f, MAX_FACTS);
            }
        }
    }
}

fn status_of(world: &World, id: &str) -> Result<HealthCheckStatus, CloudError> {
    world
        .get(GLOBAL, Kind::HealthCheck, id)
        .map_err(|_| not_found("health check", id))?;
    let n = world.config.route53_checkers;
    Ok(match world.route53.checks.get(id) {
        Some(hc) => HealthCheckStatus {
            health_check_id: id.to_string(),
            healthy: hc.healthy,
            checkers: hc.checkers.len() as u32,
            checkers_healthy: hc.checkers_healthy(),
            last_failure_at_ms: hc.last_failure_at_ms,
            changed_at_ms: hc.changed_at_ms,
            inverted: hc.probe.inverted,
        },
        // Not synced yet: a new check is healthy.
        None => HealthCheckStatus {
            health_check_id: id.to_string(),
            healthy: true,
            checkers: n,
            checkers_healthy: n,
            last_failure_at_ms: None,
            changed_at_ms: None,
            inverted: false,
        },
    })
}

/// Whether Route 53 has health check `id` as healthy now (after `Inverted`); an unknown check
/// is healthy, as a record whose check is gone is answered anyway.
pub fn is_healthy(world: &World, id: &str) -> bool {
    world.route53.checks.get(id).is_none_or(|hc| hc.healthy)
}

/// `GetHealthCheckStatus`.
pub fn get_health_check_status(world: &World, id: &str) -> Result<HealthCheckStatus, CloudError> {
    status_of(world, id)
}

/// `UpdateHealthCheck` with `Inverted`: the spec changes and the verdict flips at once.
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
    let now = world.clock_ms;
    let mut out = Vec::new();
    if let Some(hc) = world.route53.checks.get_mut(id) {
        hc.set_inverted(inverted, now, &mut out);
    }
    publish(world, out);
    // Inverting a health check is what moves failover records: a DNS change for the drill.
    let name = world
        .get(GLOBAL, Kind::HealthCheck, id)
        .map(|r| r.resource.name.clone())
        .unwrap_or_default();
    push_bounded(
        &mut world.timeline.dns_changes,
        DnsChangeFact {
            change_id: format!("inverted:{id}"),
            submitted_at_ms: now,
            insync_at_ms: now,
            records: format!(
                "health check {name} {}",
                if inverted {
                    "inverted"
                } else {
                    "no longer inverted"
                }
            ),
        },
        MAX_FACTS,
    );
    status_of(world, id)
}

#[cfg(test)]
mod tests;
