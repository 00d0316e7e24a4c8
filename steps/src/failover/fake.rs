//! A small fake cloud for the failover steps' unit tests: one environment (`prod`, primary
//! `eu-south-1`, standby `eu-central-1`) with just enough behaviour to tell a step that acts
//! once from one that acts twice. Time is tokio's (paused in the tests), so waits are virtual.
//!
//! What it models: health checks (the endpoint's health, `Inverted`), alarms, drflow's probe,
//! a global cluster whose promotion takes `PROMOTION_MS` and counts the promotions asked for,
//! Auto Scaling groups whose launches take `LAUNCH_MS` and may fail for capacity, target
//! health following the instances in service, weighted or failover records, changes that are
//! INSYNC after `INSYNC_MS`, SNS, and regions that cannot be reached. Faults that unfold over
//! time (Route 53 noticing an outage late, flapping) are tasks on tokio's paused clock.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::task::JoinHandle;

use crate::backend::*;

pub const PRIMARY: &str = "eu-south-1";
pub const STANDBY: &str = "eu-central-1";
pub const METRICS: &str = "us-east-1";
pub const PROMOTION_MS: u64 = 60_000;
pub const LAUNCH_MS: u64 = 36_000;
pub const INSYNC_MS: u64 = 30_000;
pub const GLOBAL_ID: &str = "aurora-global-prod";
pub const ZONE: &str = "ZFAKE";
pub const RECORD: &str = "api.trading.example.com";
pub const HC_PRIMARY: &str = "hc-primary";
pub const HC_STANDBY: &str = "hc-standby";

pub fn alb(region: &str) -> String {
    format!("alb-prod-{region}.elb.amazonaws.com")
}

pub fn tg(region: &str) -> String {
    format!("arn:aws:elasticloadbalancing:{region}:123456789012:targetgroup/tg-prod/1")
}

pub fn topic(region: &str) -> String {
    format!("arn:aws:sns:{region}:123456789012:sns-topic-prod")
}

#[derive(Debug, Clone)]
pub struct Group {
    pub cap: GroupCapacity,
    /// Ready times of launching instances.
    pub launching: Vec<u64>,
    /// At most this many instances can run (capacity-short), if set.
    pub limit: Option<u32>,
}

#[derive(Debug)]
pub struct State {
    pub unreachable: BTreeSet<String>,
    /// Endpoint health by health check id, and whether each check is inverted.
    pub endpoint_healthy: BTreeMap<String, bool>,
    pub inverted: BTreeMap<String, bool>,
    pub hc_changed_at: BTreeMap<String, u64>,
    pub alarms: BTreeMap<(String, String), AlarmStateValue>,
    pub probe_healthy: bool,
    /// How many probes were made.
    pub probes: u32,
    pub cluster: GlobalClusterStatus,
    /// (target region, done at, mode).
    pub promotion: Option<(String, u64)>,
    pub promotions_asked: u32,
    pub groups: BTreeMap<String, Group>,
    pub deregistered: BTreeSet<String>,
    pub weighted: bool,
    pub weights: BTreeMap<String, u8>,
    pub changes: BTreeMap<String, u64>,
    pub published: Vec<(String, String)>,
}

pub struct Fake {
    start: tokio::time::Instant,
    pub state: Mutex<State>,
}

fn member(region: &str, writer: bool, seq: u64, at: u64) -> GlobalClusterMember {
    GlobalClusterMember {
        db_cluster_arn: format!("arn:aws:rds:{region}:123456789012:cluster:aurora-cluster-prod"),
        db_cluster_id: "aurora-cluster-prod".into(),
        region: region.into(),
        is_writer: writer,
        status: "available".into(),
        replication_lag_ms: (!writer).then_some(800),
        last_write_seq: Some(seq),
        last_write_at_ms: Some(at),
    }
}

fn group(region: &str, n: u32) -> Group {
    Group {
        cap: GroupCapacity {
            name: "asg-prod".into(),
            region: region.into(),
            min_size: n,
            max_size: 8,
            desired_capacity: n,
            in_service: n,
            pending: 0,
            warm_pool: 2,
            last_failure: None,
        },
        launching: Vec::new(),
        limit: None,
    }
}

pub const BASE_MS: u64 = 1_767_225_600_000;

impl Fake {
    /// A healthy environment; `weighted` picks the records' routing policy.
    pub fn new(weighted: bool) -> Arc<Fake> {
        let mut alarms = BTreeMap::new();
        for (r, n) in [
            (METRICS, "health-check-alarm-primary-prod"),
            (METRICS, "regional-outage-alarm-prod"),
            (PRIMARY, "unhealthy-hosts-alarm-prod"),
        ] {
            alarms.insert((r.to_string(), n.to_string()), AlarmStateValue::Ok);
        }
        let mut groups = BTreeMap::new();
        groups.insert(PRIMARY.to_string(), group(PRIMARY, 2));
        groups.insert(STANDBY.to_string(), group(STANDBY, 1));
        let mut weights = BTreeMap::new();
        weights.insert("primary".to_string(), 100);
        weights.insert("standby".to_string(), 0);
        Arc::new(Fake {
            start: tokio::time::Instant::now(),
            state: Mutex::new(State {
                unreachable: BTreeSet::new(),
                endpoint_healthy: [(HC_PRIMARY.into(), true), (HC_STANDBY.into(), true)].into(),
                inverted: [(HC_PRIMARY.into(), false), (HC_STANDBY.into(), false)].into(),
                hc_changed_at: BTreeMap::new(),
                alarms,
                probe_healthy: true,
                probes: 0,
                cluster: GlobalClusterStatus {
                    global_cluster_id: GLOBAL_ID.into(),
                    status: "available".into(),
                    members: vec![
                        member(PRIMARY, true, 1000, BASE_MS),
                        member(STANDBY, false, 997, BASE_MS - 800),
                    ],
                },
                promotion: None,
                promotions_asked: 0,
                groups,
                deregistered: BTreeSet::new(),
                weighted,
                weights,
                changes: BTreeMap::new(),
                published: Vec::new(),
            }),
        })
    }

    pub fn now(&self) -> u64 {
        BASE_MS + self.start.elapsed().as_millis() as u64
    }

    pub fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let now = self.now();
        let mut s = self.state.lock().unwrap();
        settle(&mut s, now);
        f(&mut s)
    }

    /// The primary region goes dark: its endpoint, its writer, its APIs; Route 53 and the
    /// alarm on its health check see it at once.
    pub fn region_outage(&self) {
        self.region_goes_dark();
        self.primary_check(false);
        self.with(|s| {
            s.alarms.insert(
                (METRICS.into(), "health-check-alarm-primary-prod".into()),
                AlarmStateValue::Alarm,
            );
        });
    }

    /// The primary region goes dark now, as AWS shows it: drflow's probe fails at once, and
    /// Route 53's checkers notice `after` (about interval × threshold); the alarm on the
    /// health check later still (not modelled: it stays OK).
    pub fn region_outage_noticed_after(self: &Arc<Self>, after: Duration) -> JoinHandle<()> {
        self.region_goes_dark();
        let fake = Arc::clone(self);
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            fake.primary_check(false);
        })
    }

    /// The primary's endpoint goes down and up every `half`, down first, `times` times; the
    /// health check and the probe follow it at once.
    pub fn flapping(self: &Arc<Self>, half: Duration, times: u32) -> JoinHandle<()> {
        let fake = Arc::clone(self);
        tokio::spawn(async move {
            for i in 0..times {
                let up = i % 2 == 1;
                fake.primary_check(up);
                fake.with(|s| s.probe_healthy = up);
                tokio::time::sleep(half).await;
            }
        })
    }

    /// drflow is cut off from the primary; Route 53's checkers still reach it.
    pub fn partition(&self) {
        self.with(|s| s.probe_healthy = false);
    }

    fn region_goes_dark(&self) {
        self.with(|s| {
            s.unreachable.insert(PRIMARY.into());
            s.probe_healthy = false;
            s.cluster.members[0].status = "inaccessible".into();
        });
    }

    /// Route 53's checkers see the primary's endpoint `healthy` from now on.
    fn primary_check(&self, healthy: bool) {
        let now = self.now();
        self.with(|s| {
            s.endpoint_healthy.insert(HC_PRIMARY.into(), healthy);
            s.hc_changed_at.insert(HC_PRIMARY.into(), now);
        });
    }

    fn region_check(&self, region: &str) -> Result<(), CloudError> {
        if self.state.lock().unwrap().unreachable.contains(region) {
            Err(CloudError::new(
                ErrorKind::Unavailable,
                format!("{region} cannot be reached"),
            ))
        } else {
            Ok(())
        }
    }

    fn resources(&self) -> Vec<Resource> {
        let r = |kind: Kind, region: &str, name: &str, id: &str, arn: &str, spec| Resource {
            parent: None,
            kind,
            region: region.into(),
            name: name.into(),
            id: id.into(),
            arn: arn.into(),
            spec,
            attrs: Default::default(),
            tags: Default::default(),
            state: ResourceState::Available,
            depends_on: Vec::new(),
        };
        vec![
            r(
                Kind::GlobalCluster,
                GLOBAL,
                GLOBAL_ID,
                GLOBAL_ID,
                "arn:global",
                json!({}),
            ),
            r(
                Kind::HealthCheck,
                GLOBAL,
                "health-check-primary-prod",
                HC_PRIMARY,
                "",
                json!({"fully_qualified_domain_name": alb(PRIMARY), "resource_path": "/health/trading", "search_string": "\"status\":\"ok\"", "inverted": false}),
            ),
            r(
                Kind::HealthCheck,
                GLOBAL,
                "health-check-standby-prod",
                HC_STANDBY,
                "",
                json!({"fully_qualified_domain_name": alb(STANDBY), "resource_path": "/health/trading"}),
            ),
            r(
                Kind::HostedZone,
                GLOBAL,
                "trading.example.com",
                ZONE,
                "",
                json!({}),
            ),
            r(
                Kind::TargetGroup,
                PRIMARY,
                "tg-prod",
                &tg(PRIMARY),
                &tg(PRIMARY),
                json!({}),
            ),
            r(
                Kind::TargetGroup,
                STANDBY,
                "tg-prod",
                &tg(STANDBY),
                &tg(STANDBY),
                json!({}),
            ),
            r(
                Kind::SnsTopic,
                PRIMARY,
                "sns-topic-prod",
                &topic(PRIMARY),
                &topic(PRIMARY),
                json!({}),
            ),
            r(
                Kind::SnsTopic,
                STANDBY,
                "sns-topic-prod",
                &topic(STANDBY),
                &topic(STANDBY),
                json!({}),
            ),
        ]
    }

    /// Route 53's verdict on a check (`Inverted` applied).
    fn reported_healthy(s: &State, id: &str) -> bool {
        s.endpoint_healthy.get(id).copied().unwrap_or(true)
            != s.inverted.get(id).copied().unwrap_or(false)
    }
}

fn settle(s: &mut State, now: u64) {
    if let Some((target, at)) = s.promotion.clone()
        && now >= at
    {
        for m in &mut s.cluster.members {
            m.is_writer = m.region == target;
            if m.region == target {
                m.status = "available".into();
            }
        }
        s.cluster.status = "available".into();
        s.promotion = None;
    }
    for g in s.groups.values_mut() {
        let ready = g.launching.iter().filter(|t| **t <= now).count() as u32;
        g.launching.retain(|t| *t > now);
        g.cap.in_service += ready;
        g.cap.pending = g.launching.len() as u32;
    }
}

fn ready<T: Send + 'static>(r: Result<T, CloudError>) -> CloudFuture<'static, T> {
    Box::pin(async move { r })
}

fn nope<T: Send + 'static>() -> CloudFuture<'static, T> {
    ready(Err(CloudError::new(
        ErrorKind::InvalidInput,
        "the fake does not do that",
    )))
}

impl CloudBackend for Fake {
    fn target(&self) -> crate::Target {
        crate::Target::Sim
    }
    fn availability_zones<'a>(&'a self, _region: &'a str) -> CloudFuture<'a, Vec<String>> {
        nope()
    }
    fn find<'a>(&'a self, id: &'a Identity) -> CloudFuture<'a, Option<Resource>> {
        let r = self.region_check(&id.region).map(|()| {
            self.resources().into_iter().find(|r| {
                r.region == id.region
                    && r.kind == id.kind
                    && r.name == id.name
                    && r.parent == id.parent
            })
        });
        ready(r)
    }
    fn list<'a>(
        &'a self,
        _region: &'a str,
        _kind: Kind,
        _parent: Option<&'a str>,
    ) -> CloudFuture<'a, Vec<Resource>> {
        nope()
    }
    fn create<'a>(&'a self, _request: &'a CreateRequest) -> CloudFuture<'a, Resource> {
        nope()
    }
    fn update<'a>(
        &'a self,
        _current: &'a Resource,
        _request: &'a UpdateRequest,
    ) -> CloudFuture<'a, Resource> {
        nope()
    }
    fn delete<'a>(&'a self, _current: &'a Resource) -> CloudFuture<'a, ()> {
        nope()
    }
    fn wait_available<'a>(
        &'a self,
        _current: &'a Resource,
        _timeout: std::time::Duration,
    ) -> CloudFuture<'a, Resource> {
        nope()
    }
    fn wait_deleted<'a>(
        &'a self,
        _current: &'a Resource,
        _timeout: std::time::Duration,
    ) -> CloudFuture<'a, ()> {
        nope()
    }
    fn now_ms<'a>(&'a self) -> CloudFuture<'a, u64> {
        ready(Ok(self.now()))
    }
}

impl FailoverApi for Fake {
    fn get_health_check_status<'a>(&'a self, id: &'a str) -> CloudFuture<'a, HealthCheckStatus> {
        let r = self.with(|s| HealthCheckStatus {
            health_check_id: id.into(),
            healthy: Fake::reported_healthy(s, id),
            checkers: 15,
            checkers_healthy: if s.endpoint_healthy.get(id).copied().unwrap_or(true) {
                15
            } else {
                0
            },
            last_failure_at_ms: None,
            changed_at_ms: s.hc_changed_at.get(id).copied(),
            inverted: s.inverted.get(id).copied().unwrap_or(false),
        });
        ready(Ok(r))
    }
    fn set_health_check_inverted<'a>(
        &'a self,
        id: &'a str,
        inverted: bool,
    ) -> CloudFuture<'a, HealthCheckStatus> {
        self.with(|s| s.inverted.insert(id.into(), inverted));
        self.get_health_check_status(id)
    }
    fn describe_alarms<'a>(
        &'a self,
        region: &'a str,
        prefix: Option<&'a str>,
    ) -> CloudFuture<'a, Vec<AlarmState>> {
        if let Err(e) = self.region_check(region) {
            return ready(Err(e));
        }
        let now = self.now();
        let r = self.with(|s| {
            s.alarms
                .iter()
                .filter(|((r, n), _)| r == region && prefix.is_none_or(|p| n.starts_with(p)))
                .map(|((r, n), st)| AlarmState {
                    name: n.clone(),
                    arn: String::new(),
                    region: r.clone(),
                    state: *st,
                    reason: String::new(),
                    updated_at_ms: now,
                })
                .collect()
        });
        ready(Ok(r))
    }
    fn get_metric_data<'a>(
        &'a self,
        _q: &'a MetricQuery,
        _s: u64,
        _e: u64,
    ) -> CloudFuture<'a, Vec<Datapoint>> {
        nope()
    }
    fn describe_global_cluster<'a>(&'a self, _id: &'a str) -> CloudFuture<'a, GlobalClusterStatus> {
        ready(Ok(self.with(|s| s.cluster.clone())))
    }
    fn switchover_global_cluster<'a>(
        &'a self,
        id: &'a str,
        arn: &'a str,
    ) -> CloudFuture<'a, GlobalClusterStatus> {
        self.promote(id, arn, "switching-over")
    }
    fn failover_global_cluster<'a>(
        &'a self,
        id: &'a str,
        arn: &'a str,
        _allow: bool,
    ) -> CloudFuture<'a, GlobalClusterStatus> {
        self.promote(id, arn, "failing-over")
    }
    fn describe_target_health<'a>(
        &'a self,
        region: &'a str,
        _tg: &'a str,
    ) -> CloudFuture<'a, Vec<TargetHealth>> {
        if let Err(e) = self.region_check(region) {
            return ready(Err(e));
        }
        let r = self.with(|s| {
            let n = s.groups.get(region).map_or(0, |g| g.cap.in_service);
            (0..n)
                .map(|i| {
                    let id = format!("i-{region}-{i}");
                    TargetHealth {
                        state: if s.deregistered.contains(&id) {
                            "draining".into()
                        } else {
                            "healthy".into()
                        },
                        target_id: id,
                        availability_zone: format!("{region}a"),
                    }
                })
                .collect()
        });
        ready(Ok(r))
    }
    fn deregister_targets<'a>(
        &'a self,
        region: &'a str,
        _tg: &'a str,
        ids: &'a [String],
    ) -> CloudFuture<'a, ()> {
        if let Err(e) = self.region_check(region) {
            return ready(Err(e));
        }
        self.with(|s| s.deregistered.extend(ids.iter().cloned()));
        ready(Ok(()))
    }
    fn describe_auto_scaling_group<'a>(
        &'a self,
        region: &'a str,
        _name: &'a str,
    ) -> CloudFuture<'a, GroupCapacity> {
        if let Err(e) = self.region_check(region) {
            return ready(Err(e));
        }
        ready(Ok(self.with(|s| s.groups[region].cap.clone())))
    }
    fn update_auto_scaling_group<'a>(
        &'a self,
        region: &'a str,
        _name: &'a str,
        min: Option<u32>,
        max: Option<u32>,
        desired: Option<u32>,
    ) -> CloudFuture<'a, GroupCapacity> {
        if let Err(e) = self.region_check(region) {
            return ready(Err(e));
        }
        let now = self.now();
        let r = self.with(|s| {
            let g = s.groups.get_mut(region).unwrap();
            if let Some(m) = min {
                g.cap.min_size = m;
            }
            if let Some(m) = max {
                g.cap.max_size = m;
            }
            if let Some(d) = desired {
                g.cap.desired_capacity = d;
                let have = g.cap.in_service + g.launching.len() as u32;
                if d < g.cap.in_service {
                    g.cap.in_service = d;
                    g.launching.clear();
                } else if d > have {
                    let room = g.limit.map_or(u32::MAX, |l| l.saturating_sub(have));
                    let n = (d - have).min(room);
                    g.launching
                        .extend(std::iter::repeat_n(now + LAUNCH_MS, n as usize));
                    g.cap.last_failure = (n < d - have).then(|| {
                        "Launching a new EC2 instance. Status Reason: We currently do not have \
                         sufficient capacity (InsufficientInstanceCapacity)"
                            .to_string()
                    });
                }
                g.cap.pending = g.launching.len() as u32;
            }
            g.cap.clone()
        });
        ready(Ok(r))
    }
    fn list_resource_record_sets<'a>(
        &'a self,
        _zone: &'a str,
        name: &'a str,
    ) -> CloudFuture<'a, Vec<RecordSet>> {
        let r = self.with(|s| {
            ["primary", "standby"]
                .into_iter()
                .map(|side| RecordSet {
                    name: name.into(),
                    record_type: "A".into(),
                    set_identifier: Some(side.into()),
                    weight: s.weighted.then(|| s.weights[side]),
                    failover: (!s.weighted).then(|| {
                        if side == "primary" {
                            "PRIMARY"
                        } else {
                            "SECONDARY"
                        }
                        .into()
                    }),
                    health_check_id: Some(
                        if side == "primary" {
                            HC_PRIMARY
                        } else {
                            HC_STANDBY
                        }
                        .into(),
                    ),
                    alias_dns_name: Some(alb(if side == "primary" { PRIMARY } else { STANDBY })),
                })
                .collect()
        });
        ready(Ok(r))
    }
    fn set_record_weight<'a>(
        &'a self,
        _zone: &'a str,
        _name: &'a str,
        _ty: &'a str,
        set: &'a str,
        weight: u8,
    ) -> CloudFuture<'a, ChangeInfo> {
        let now = self.now();
        let r = self.with(|s| {
            s.weights.insert(set.into(), weight);
            let id = format!("C{}", s.changes.len() + 1);
            s.changes.insert(id.clone(), now);
            ChangeInfo {
                id,
                status: ChangeStatus::Pending,
                submitted_at_ms: now,
            }
        });
        ready(Ok(r))
    }
    fn get_change<'a>(&'a self, id: &'a str) -> CloudFuture<'a, ChangeInfo> {
        let now = self.now();
        let at = self.with(|s| s.changes.get(id).copied().unwrap_or(0));
        ready(Ok(ChangeInfo {
            id: id.into(),
            status: if now >= at + INSYNC_MS {
                ChangeStatus::Insync
            } else {
                ChangeStatus::Pending
            },
            submitted_at_ms: at,
        }))
    }
    fn test_dns_answer<'a>(
        &'a self,
        _zone: &'a str,
        name: &'a str,
        ty: &'a str,
    ) -> CloudFuture<'a, DnsAnswer> {
        let r = self.with(|s| {
            let (hp, hs) = (
                Fake::reported_healthy(s, HC_PRIMARY),
                Fake::reported_healthy(s, HC_STANDBY),
            );
            // Weight-0 records serve only when every other record is unhealthy.
            let primary = if s.weighted {
                if s.weights["primary"] >= s.weights["standby"] {
                    hp || !hs
                } else {
                    hp && !hs
                }
            } else {
                hp
            };
            DnsAnswer {
                record_name: name.into(),
                record_type: ty.into(),
                response_code: "NOERROR".into(),
                record_data: vec![alb(if primary { PRIMARY } else { STANDBY })],
            }
        });
        ready(Ok(r))
    }
    fn publish<'a>(
        &'a self,
        region: &'a str,
        _topic: &'a str,
        subject: &'a str,
        _m: &'a str,
    ) -> CloudFuture<'a, String> {
        if let Err(e) = self.region_check(region) {
            return ready(Err(e));
        }
        let n = self.with(|s| {
            s.published.push((region.into(), subject.into()));
            s.published.len()
        });
        ready(Ok(format!("msg-{n}")))
    }
    fn probe<'a>(
        &'a self,
        from: &'a str,
        url: &'a str,
        _search: Option<&'a str>,
    ) -> CloudFuture<'a, ProbeResult> {
        // A probe from a region that cannot be reached is not made (as in the sim).
        if let Err(e) = self.region_check(from) {
            return ready(Err(e));
        }
        let healthy = self.with(|s| {
            s.probes += 1;
            s.probe_healthy
        });
        ready(Ok(ProbeResult {
            url: url.into(),
            status: healthy.then_some(200),
            healthy,
            error: (!healthy).then(|| "connection timed out".into()),
            quote_at_ms: None,
            database_connected: None,
        }))
    }
}

impl Fake {
    fn promote<'a>(
        &'a self,
        _id: &'a str,
        arn: &'a str,
        how: &str,
    ) -> CloudFuture<'a, GlobalClusterStatus> {
        let now = self.now();
        let r = self.with(|s| {
            if s.promotion.is_some() {
                return Err(CloudError::new(
                    ErrorKind::NotReady,
                    "a promotion is under way",
                ));
            }
            let target = s
                .cluster
                .members
                .iter()
                .find(|m| m.db_cluster_arn == arn)
                .map(|m| m.region.clone())
                .ok_or_else(|| CloudError::new(ErrorKind::NotFound, "no such member"))?;
            s.promotions_asked += 1;
            s.promotion = Some((target, now + PROMOTION_MS));
            s.cluster.status = how.into();
            Ok(s.cluster.clone())
        });
        ready(r)
    }
}
