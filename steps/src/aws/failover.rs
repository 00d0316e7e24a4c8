//! The typed failover actions on AWS: each [`FailoverApi`] method is one API (or the few that
//! make up its answer), every call through [`Clients::call`] so it is logged, recorded and its
//! error mapped. Route 53 is a global service: its calls go to the global clients.
//!
//! | method | calls |
//! |---|---|
//! | `get_health_check_status` | route53 `GetHealthCheckStatus` + `GetHealthCheck` (for `Inverted`) |
//! | `set_health_check_inverted` | route53 `UpdateHealthCheck`, then as above |
//! | `describe_alarms` | cloudwatch `DescribeAlarms` (metric and composite) |
//! | `get_metric_data` | cloudwatch `GetMetricData` (one `MetricStat`) |
//! | `describe_global_cluster` | rds `DescribeGlobalClusters`; per member `DescribeDBClusters` in its region and, for a secondary, cloudwatch `GetMetricData` of `AuroraGlobalDBReplicationLag` |
//! | `switchover_global_cluster`, `failover_global_cluster` | rds `SwitchoverGlobalCluster`, `FailoverGlobalCluster`, in the target's region |
//! | `describe_target_health`, `deregister_targets` | elasticloadbalancing `DescribeTargetHealth`, `DeregisterTargets` |
//! | `describe_auto_scaling_group` | autoscaling `DescribeAutoScalingGroups` + `DescribeWarmPool` + `DescribeScalingActivities` |
//! | `update_auto_scaling_group` | autoscaling `UpdateAutoScalingGroup`, then as above |
//! | `list_resource_record_sets`, `set_record_weight`, `get_change`, `test_dns_answer` | route53 `ListResourceRecordSets`, `ChangeResourceRecordSets`, `GetChange`, `TestDNSAnswer` |
//! | `publish` | sns `Publish` |
//! | `probe` | an HTTP(S) GET from this process (no AWS call) |

use std::time::Duration;

use aws_sdk_autoscaling::types::{LifecycleState, ScalingActivityStatusCode};
use aws_sdk_cloudwatch::types::{
    AlarmType, Dimension, Metric, MetricDataQuery, MetricStat, ScanBy, StateValue,
};
use aws_sdk_elasticloadbalancingv2::types::TargetDescription;
use aws_sdk_rds::types::GlobalCluster;
use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, ResourceRecordSet, ResourceRecordSetFailover, RrType,
};
use aws_smithy_types::DateTime;

use super::clients::GLOBAL_SERVICE_REGION;
use super::{AwsBackend, Call, Clients};
use crate::backend::{
    AlarmState, AlarmStateValue, ChangeInfo, ChangeStatus, CloudError, CloudFuture, Datapoint,
    DnsAnswer, ErrorKind, FailoverApi, GlobalClusterMember, GlobalClusterStatus, GroupCapacity,
    HealthCheckStatus, MetricQuery, ProbeResult, RecordSet, TargetHealth, not_found,
};

/// How long drflow's own probe waits for an answer (connection, headers and body).
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// How far back `describe_global_cluster` looks for a secondary's replication lag: CloudWatch
/// publishes `AuroraGlobalDBReplicationLag` every minute.
const LAG_WINDOW_MS: u64 = 10 * 60 * 1000;

impl AwsBackend {
    /// A backend on an existing client factory (tests share one factory to read its calls).
    pub fn from_clients(clients: Clients) -> AwsBackend {
        AwsBackend { clients }
    }
}

/// Milliseconds since the epoch of an SDK time (`None` before 1970 or when absent).
fn ms(t: Option<&DateTime>) -> Option<u64> {
    t.and_then(|t| t.to_millis().ok())
        .and_then(|m| u64::try_from(m).ok())
}

/// The wall clock in milliseconds since the epoch: AWS's clock is the wall clock.
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A DNS name as Route 53 compares it: no final dot, lower case.
fn dns_name(n: &str) -> String {
    n.trim_end_matches('.').to_ascii_lowercase()
}

/// The region and cluster identifier of an Aurora cluster ARN
/// (`arn:aws:rds:REGION:ACCOUNT:cluster:ID`).
fn cluster_arn_parts(arn: &str) -> Result<(String, String), CloudError> {
    let parts: Vec<&str> = arn.split(':').collect();
    match parts.as_slice() {
        ["arn", _, "rds", region, _, "cluster", id] if !region.is_empty() && !id.is_empty() => {
            Ok((region.to_string(), id.to_string()))
        }
        _ => Err(CloudError::new(
            ErrorKind::InvalidInput,
            format!("{arn:?} is not an Aurora cluster ARN (arn:aws:rds:REGION:ACCOUNT:cluster:ID)"),
        )),
    }
}

/// Route 53's verdict from its checkers' latest reports (`(healthy, checked_at_ms)` each):
/// healthy while more than 18 % of them see the endpoint healthy (a check nobody reports on
/// yet is healthy, as Route 53 treats a new check), then flipped by `Inverted`.
///
/// Route 53 does not say when the verdict changed; `changed_at_ms` is the oldest report that
/// agrees with the current verdict, the earliest the checkers are known to have seen it.
fn verdict(id: &str, reports: &[(bool, Option<u64>)], inverted: bool) -> HealthCheckStatus {
    let checkers = reports.len() as u32;
    let checkers_healthy = reports.iter().filter(|(h, _)| *h).count() as u32;
    let endpoint_healthy =
        checkers == 0 || u64::from(checkers_healthy) * 100 > 18 * u64::from(checkers);
    HealthCheckStatus {
        health_check_id: id.to_string(),
        healthy: endpoint_healthy != inverted,
        checkers,
        checkers_healthy,
        last_failure_at_ms: reports
            .iter()
            .filter(|(h, _)| !h)
            .filter_map(|(_, t)| *t)
            .max(),
        changed_at_ms: reports
            .iter()
            .filter(|(h, _)| *h == endpoint_healthy)
            .filter_map(|(_, t)| *t)
            .min(),
        inverted,
    }
}

fn alarm_state(v: Option<&StateValue>) -> AlarmStateValue {
    match v {
        Some(StateValue::Ok) => AlarmStateValue::Ok,
        Some(StateValue::Alarm) => AlarmStateValue::Alarm,
        _ => AlarmStateValue::InsufficientData,
    }
}

/// A Route 53 change, its id without the `/change/` prefix (AWS returns it with the prefix,
/// moto's `GetChange` without; `GetChange` takes either).
fn change_info(ci: Option<&aws_sdk_route53::types::ChangeInfo>) -> ChangeInfo {
    ChangeInfo {
        id: ci
            .map(|c| c.id().trim_start_matches("/change/").to_string())
            .unwrap_or_default(),
        status: match ci.map(|c| c.status()) {
            Some(aws_sdk_route53::types::ChangeStatus::Insync) => ChangeStatus::Insync,
            _ => ChangeStatus::Pending,
        },
        submitted_at_ms: ms(ci.map(|c| c.submitted_at())).unwrap_or(0),
    }
}

fn record_set(r: &ResourceRecordSet) -> RecordSet {
    RecordSet {
        name: r.name().trim_end_matches('.').to_string(),
        record_type: r.r#type().as_str().to_string(),
        set_identifier: r.set_identifier().map(str::to_string),
        weight: r.weight().map(|w| w.clamp(0, 255) as u8),
        failover: r.failover().map(|f| match f {
            ResourceRecordSetFailover::Primary => "PRIMARY".to_string(),
            ResourceRecordSetFailover::Secondary => "SECONDARY".to_string(),
            other => other.as_str().to_string(),
        }),
        health_check_id: r.health_check_id().map(str::to_string),
        alias_dns_name: r
            .alias_target()
            .map(|a| a.dns_name().trim_end_matches('.').to_string()),
    }
}

/// A global cluster's status: `switching-over`/`failing-over` while its `FailoverState` says
/// an operation runs (AWS keeps `Status` at `available` during a switchover).
fn cluster_status(gc: &GlobalCluster) -> String {
    let status = gc.status().unwrap_or("unknown").to_string();
    match gc.failover_state() {
        Some(fs)
            if fs
                .status()
                .is_some_and(|s| matches!(s.as_str(), "pending" | "failing-over")) =>
        {
            if fs.is_data_loss_allowed() == Some(true) {
                "failing-over".to_string()
            } else {
                "switching-over".to_string()
            }
        }
        _ => status,
    }
}

/// The members of a global cluster as its description lists them, writer first; `status` and
/// the lag are filled in by the caller.
fn members_of(gc: &GlobalCluster, status: &str) -> Vec<GlobalClusterMember> {
    let mut out: Vec<GlobalClusterMember> = gc
        .global_cluster_members()
        .iter()
        .filter_map(|m| {
            let arn = m.db_cluster_arn()?;
            let (region, id) = cluster_arn_parts(arn).ok()?;
            Some(GlobalClusterMember {
                db_cluster_arn: arn.to_string(),
                db_cluster_id: id,
                region,
                is_writer: m.is_writer() == Some(true),
                status: status.to_string(),
                replication_lag_ms: None,
                last_write_seq: None,
                last_write_at_ms: None,
            })
        })
        .collect();
    out.sort_by_key(|m| !m.is_writer);
    out
}

impl AwsBackend {
    /// `DescribeGlobalClusters` for one identifier. A global cluster can be read from any
    /// region; the regions this run already uses are asked in turn (the first that answers
    /// wins), so an outage of one region does not hide it.
    async fn global_cluster(&self, id: &str) -> Result<GlobalCluster, CloudError> {
        let c = self.clients();
        let mut regions = c.built_regions();
        if regions.is_empty() {
            regions.push(GLOBAL_SERVICE_REGION.to_string());
        }
        let mut last = None;
        for r in &regions {
            let rc = c.region(r).await;
            let answer = c
                .call(
                    Call::new(r, "rds", "DescribeGlobalClusters"),
                    rc.rds
                        .describe_global_clusters()
                        .global_cluster_identifier(id)
                        .send(),
                )
                .await;
            match answer {
                // Filtered again here: moto ignores the identifier filter.
                Ok(out) => {
                    if let Some(gc) = out
                        .global_clusters()
                        .iter()
                        .find(|g| g.global_cluster_identifier() == Some(id))
                    {
                        return Ok(gc.clone());
                    }
                    last = Some(not_found("global cluster", id));
                }
                Err(e) if e.kind == ErrorKind::NotFound || e.kind.retryable() => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| not_found("global cluster", id)))
    }

    /// A member cluster's `Status` from its own region; `inaccessible` when that region does
    /// not answer (what AWS shows for a member in a region that is down).
    async fn cluster_status_in(&self, region: &str, arn: &str) -> Result<String, CloudError> {
        let c = self.clients();
        let rc = c.region(region).await;
        match c
            .call(
                Call::new(region, "rds", "DescribeDBClusters"),
                rc.rds
                    .describe_db_clusters()
                    .db_cluster_identifier(arn)
                    .send(),
            )
            .await
        {
            Ok(out) => Ok(out
                .db_clusters()
                .first()
                .and_then(|d| d.status())
                .unwrap_or("unknown")
                .to_string()),
            Err(e) if matches!(e.kind, ErrorKind::Unavailable | ErrorKind::Timeout) => {
                Ok("inaccessible".to_string())
            }
            Err(e) => Err(e),
        }
    }

    /// A secondary's latest `AuroraGlobalDBReplicationLag` (milliseconds), read in its region;
    /// `None` when none is published or its CloudWatch does not answer. Permission errors are
    /// not hidden: the operator's policy must allow the read.
    async fn replication_lag(
        &self,
        region: &str,
        cluster_id: &str,
    ) -> Result<Option<u64>, CloudError> {
        let q = MetricQuery {
            region: region.to_string(),
            namespace: "AWS/RDS".to_string(),
            metric_name: "AuroraGlobalDBReplicationLag".to_string(),
            dimensions: [("DBClusterIdentifier".to_string(), cluster_id.to_string())]
                .into_iter()
                .collect(),
            stat: "Average".to_string(),
            period_s: 60,
        };
        let end = now_ms();
        match self
            .metric_data(&q, end.saturating_sub(LAG_WINDOW_MS), end)
            .await
        {
            Ok(points) => Ok(points.last().map(|p| p.value.max(0.0).round() as u64)),
            Err(e) if e.kind == ErrorKind::Denied => Err(e),
            Err(e) => {
                tracing::debug!(target: "drflow::aws", region, cluster_id, error = %e.message, "no replication lag");
                Ok(None)
            }
        }
    }

    async fn describe_global(&self, id: &str) -> Result<GlobalClusterStatus, CloudError> {
        let gc = self.global_cluster(id).await?;
        let mut members = members_of(&gc, "unknown");
        for m in &mut members {
            let (status, lag) = if m.is_writer {
                (
                    self.cluster_status_in(&m.region, &m.db_cluster_arn).await?,
                    None,
                )
            } else {
                tokio::try_join!(
                    self.cluster_status_in(&m.region, &m.db_cluster_arn),
                    self.replication_lag(&m.region, &m.db_cluster_id)
                )?
            };
            m.status = status;
            m.replication_lag_ms = lag;
        }
        Ok(GlobalClusterStatus {
            global_cluster_id: gc.global_cluster_identifier().unwrap_or(id).to_string(),
            status: cluster_status(&gc),
            members,
        })
    }

    /// The answer of a switchover or failover: the global cluster as AWS returned it. Member
    /// `status` is `unknown` (the answer does not carry it; `describe_global_cluster` reads it).
    fn promoted(id: &str, gc: Option<&GlobalCluster>) -> GlobalClusterStatus {
        match gc {
            Some(gc) => GlobalClusterStatus {
                global_cluster_id: gc.global_cluster_identifier().unwrap_or(id).to_string(),
                status: cluster_status(gc),
                members: members_of(gc, "unknown"),
            },
            None => GlobalClusterStatus {
                global_cluster_id: id.to_string(),
                status: "unknown".to_string(),
                members: Vec::new(),
            },
        }
    }

    async fn metric_data(
        &self,
        q: &MetricQuery,
        start_ms: u64,
        end_ms: u64,
    ) -> Result<Vec<Datapoint>, CloudError> {
        let c = self.clients();
        let rc = c.region(&q.region).await;
        let metric = Metric::builder()
            .namespace(&q.namespace)
            .metric_name(&q.metric_name)
            .set_dimensions(Some(
                q.dimensions
                    .iter()
                    .map(|(k, v)| Dimension::builder().name(k).value(v).build())
                    .collect(),
            ))
            .build();
        let query = MetricDataQuery::builder()
            .id("m0")
            .metric_stat(
                MetricStat::builder()
                    .metric(metric)
                    .period(q.period_s as i32)
                    .stat(&q.stat)
                    .build(),
            )
            .return_data(true)
            .build();
        let mut points = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = c
                .call(
                    Call::new(&q.region, "cloudwatch", "GetMetricData"),
                    rc.cloudwatch
                        .get_metric_data()
                        .metric_data_queries(query.clone())
                        .start_time(DateTime::from_millis(start_ms as i64))
                        .end_time(DateTime::from_millis(end_ms as i64))
                        .scan_by(ScanBy::TimestampAscending)
                        .set_next_token(token.clone())
                        .send(),
                )
                .await?;
            for r in out.metric_data_results() {
                for (t, v) in r.timestamps().iter().zip(r.values()) {
                    if let Some(at_ms) = ms(Some(t)) {
                        points.push(Datapoint { at_ms, value: *v });
                    }
                }
            }
            match out.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => break,
            }
        }
        points.sort_by_key(|p| p.at_ms);
        Ok(points)
    }

    async fn group_capacity(&self, region: &str, name: &str) -> Result<GroupCapacity, CloudError> {
        let c = self.clients();
        let rc = c.region(region).await;
        // All three at once, but the group's answer is read first: for a group that does not
        // exist the other two fail in their own ways (AWS a validation error, moto a 500), and
        // the caller needs "not found".
        let (groups, warm, activities) = tokio::join!(
            c.call(
                Call::new(region, "autoscaling", "DescribeAutoScalingGroups"),
                rc.autoscaling
                    .describe_auto_scaling_groups()
                    .auto_scaling_group_names(name)
                    .send(),
            ),
            c.call(
                Call::new(region, "autoscaling", "DescribeWarmPool"),
                rc.autoscaling
                    .describe_warm_pool()
                    .auto_scaling_group_name(name)
                    .send(),
            ),
            c.call(
                Call::new(region, "autoscaling", "DescribeScalingActivities"),
                rc.autoscaling
                    .describe_scaling_activities()
                    .auto_scaling_group_name(name)
                    .max_records(20)
                    .send(),
            ),
        );
        let groups = groups?;
        let g = groups
            .auto_scaling_groups()
            .iter()
            .find(|g| g.auto_scaling_group_name() == Some(name))
            .ok_or_else(|| not_found("auto scaling group", name))?;
        let (warm, activities) = (warm?, activities?);
        let count = |f: &dyn Fn(&LifecycleState) -> bool| {
            g.instances()
                .iter()
                .filter(|i| i.lifecycle_state().is_some_and(f))
                .count() as u32
        };
        let in_service = count(&|s| *s == LifecycleState::InService);
        let pending = count(&|s| s.as_str().starts_with("Pending"));
        let warm_pool = warm
            .instances()
            .iter()
            .filter(|i| {
                i.lifecycle_state().is_some_and(|s| {
                    s.as_str().starts_with("Warmed:") && !s.as_str().contains("Terminat")
                })
            })
            .count() as u32;
        // The newest finished activity (AWS lists newest first): a failure is current until a
        // later launch succeeds.
        let last_failure = activities
            .activities()
            .iter()
            .find(|a| {
                matches!(
                    a.status_code(),
                    Some(
                        ScalingActivityStatusCode::Successful
                            | ScalingActivityStatusCode::Failed
                            | ScalingActivityStatusCode::Cancelled
                    )
                )
            })
            .filter(|a| a.status_code() == Some(&ScalingActivityStatusCode::Failed))
            .map(|a| {
                a.status_message()
                    .or(a.description())
                    .unwrap_or("failed")
                    .to_string()
            });
        let size = |v: Option<i32>| v.map_or(0, |v| v.max(0) as u32);
        Ok(GroupCapacity {
            name: name.to_string(),
            region: region.to_string(),
            min_size: size(g.min_size()),
            max_size: size(g.max_size()),
            desired_capacity: size(g.desired_capacity()),
            in_service,
            pending,
            warm_pool,
            last_failure,
        })
    }

    /// The record sets of a zone named exactly `name` (optionally of one type), following
    /// `ListResourceRecordSets` pages while they still list that name.
    async fn record_sets(
        &self,
        zone: &str,
        name: &str,
        record_type: Option<&str>,
    ) -> Result<Vec<ResourceRecordSet>, CloudError> {
        let c = self.clients();
        let g = c.global().await;
        let want = dns_name(name);
        let mut out = Vec::new();
        let mut start_type = record_type.map(RrType::from);
        let mut start_id: Option<String> = None;
        loop {
            let page = c
                .call(
                    Call::new(GLOBAL_SERVICE_REGION, "route53", "ListResourceRecordSets"),
                    g.route53
                        .list_resource_record_sets()
                        .hosted_zone_id(zone)
                        .start_record_name(name)
                        .set_start_record_type(start_type.clone())
                        .set_start_record_identifier(start_id.clone())
                        .send(),
                )
                .await?;
            out.extend(
                page.resource_record_sets()
                    .iter()
                    .filter(|r| dns_name(r.name()) == want)
                    .filter(|r| record_type.is_none_or(|t| r.r#type().as_str() == t))
                    .cloned(),
            );
            let more =
                page.is_truncated() && page.next_record_name().is_some_and(|n| dns_name(n) == want);
            if !more {
                break;
            }
            start_type = page.next_record_type().cloned();
            start_id = page.next_record_identifier().map(str::to_string);
        }
        Ok(out)
    }
}

impl FailoverApi for AwsBackend {
    fn get_health_check_status<'a>(
        &'a self,
        health_check_id: &'a str,
    ) -> CloudFuture<'a, HealthCheckStatus> {
        Box::pin(async move {
            let c = self.clients();
            let g = c.global().await;
            let r = GLOBAL_SERVICE_REGION;
            let (status, check) = tokio::try_join!(
                c.call(
                    Call::new(r, "route53", "GetHealthCheckStatus"),
                    g.route53
                        .get_health_check_status()
                        .health_check_id(health_check_id)
                        .send(),
                ),
                c.call(
                    Call::new(r, "route53", "GetHealthCheck"),
                    g.route53
                        .get_health_check()
                        .health_check_id(health_check_id)
                        .send(),
                ),
            )?;
            let inverted = check
                .health_check()
                .and_then(|h| h.health_check_config())
                .and_then(|cfg| cfg.inverted())
                .unwrap_or(false);
            let reports: Vec<(bool, Option<u64>)> = status
                .health_check_observations()
                .iter()
                .filter_map(|o| o.status_report())
                .map(|s| {
                    (
                        s.status().is_some_and(|t| t.starts_with("Success")),
                        ms(s.checked_time()),
                    )
                })
                .collect();
            Ok(verdict(health_check_id, &reports, inverted))
        })
    }

    fn set_health_check_inverted<'a>(
        &'a self,
        health_check_id: &'a str,
        inverted: bool,
    ) -> CloudFuture<'a, HealthCheckStatus> {
        Box::pin(async move {
            let c = self.clients();
            let g = c.global().await;
            c.call(
                Call::new(GLOBAL_SERVICE_REGION, "route53", "UpdateHealthCheck"),
                g.route53
                    .update_health_check()
                    .health_check_id(health_check_id)
                    .inverted(inverted)
                    .send(),
            )
            .await?;
            self.get_health_check_status(health_check_id).await
        })
    }

    fn describe_alarms<'a>(
        &'a self,
        region: &'a str,
        name_prefix: Option<&'a str>,
    ) -> CloudFuture<'a, Vec<AlarmState>> {
        Box::pin(async move {
            let c = self.clients();
            let rc = c.region(region).await;
            let mut out = Vec::new();
            let mut token: Option<String> = None;
            loop {
                let page = c
                    .call(
                        Call::new(region, "cloudwatch", "DescribeAlarms"),
                        rc.cloudwatch
                            .describe_alarms()
                            .set_alarm_name_prefix(name_prefix.map(str::to_string))
                            .alarm_types(AlarmType::MetricAlarm)
                            .alarm_types(AlarmType::CompositeAlarm)
                            .set_next_token(token.clone())
                            .send(),
                    )
                    .await?;
                for a in page.metric_alarms() {
                    out.push(AlarmState {
                        name: a.alarm_name().unwrap_or_default().to_string(),
                        arn: a.alarm_arn().unwrap_or_default().to_string(),
                        region: region.to_string(),
                        state: alarm_state(a.state_value()),
                        reason: a.state_reason().unwrap_or_default().to_string(),
                        updated_at_ms: ms(a.state_updated_timestamp()).unwrap_or(0),
                    });
                }
                for a in page.composite_alarms() {
                    out.push(AlarmState {
                        name: a.alarm_name().unwrap_or_default().to_string(),
                        arn: a.alarm_arn().unwrap_or_default().to_string(),
                        region: region.to_string(),
                        state: alarm_state(a.state_value()),
                        reason: a.state_reason().unwrap_or_default().to_string(),
                        updated_at_ms: ms(a.state_updated_timestamp()).unwrap_or(0),
                    });
                }
                match page.next_token() {
                    Some(t) if !t.is_empty() => token = Some(t.to_string()),
                    _ => break,
                }
            }
            Ok(out)
        })
    }

    fn get_metric_data<'a>(
        &'a self,
        query: &'a MetricQuery,
        start_ms: u64,
        end_ms: u64,
    ) -> CloudFuture<'a, Vec<Datapoint>> {
        Box::pin(self.metric_data(query, start_ms, end_ms))
    }

    fn describe_global_cluster<'a>(
        &'a self,
        global_cluster_id: &'a str,
    ) -> CloudFuture<'a, GlobalClusterStatus> {
        Box::pin(self.describe_global(global_cluster_id))
    }

    fn switchover_global_cluster<'a>(
        &'a self,
        global_cluster_id: &'a str,
        target_db_cluster_arn: &'a str,
    ) -> CloudFuture<'a, GlobalClusterStatus> {
        Box::pin(async move {
            // Sent to the target's region: the one that must answer for the promotion anyway.
            let (region, _) = cluster_arn_parts(target_db_cluster_arn)?;
            let c = self.clients();
            let rc = c.region(&region).await;
            let out = c
                .call(
                    Call::new(&region, "rds", "SwitchoverGlobalCluster"),
                    rc.rds
                        .switchover_global_cluster()
                        .global_cluster_identifier(global_cluster_id)
                        .target_db_cluster_identifier(target_db_cluster_arn)
                        .send(),
                )
                .await?;
            Ok(Self::promoted(global_cluster_id, out.global_cluster()))
        })
    }

    fn failover_global_cluster<'a>(
        &'a self,
        global_cluster_id: &'a str,
        target_db_cluster_arn: &'a str,
        allow_data_loss: bool,
    ) -> CloudFuture<'a, GlobalClusterStatus> {
        Box::pin(async move {
            // In the target's region: during an outage the writer's region does not answer.
            let (region, _) = cluster_arn_parts(target_db_cluster_arn)?;
            let c = self.clients();
            let rc = c.region(&region).await;
            let req = rc
                .rds
                .failover_global_cluster()
                .global_cluster_identifier(global_cluster_id)
                .target_db_cluster_identifier(target_db_cluster_arn);
            // AWS takes exactly one of the two: AllowDataLoss for a failover, Switchover for
            // the planned promotion (what the sim does without `allow_data_loss` too).
            let req = if allow_data_loss {
                req.allow_data_loss(true)
            } else {
                req.switchover(true)
            };
            let out = c
                .call(
                    Call::new(&region, "rds", "FailoverGlobalCluster"),
                    req.send(),
                )
                .await?;
            Ok(Self::promoted(global_cluster_id, out.global_cluster()))
        })
    }

    fn describe_target_health<'a>(
        &'a self,
        region: &'a str,
        target_group_arn: &'a str,
    ) -> CloudFuture<'a, Vec<TargetHealth>> {
        Box::pin(async move {
            let c = self.clients();
            let rc = c.region(region).await;
            let out = c
                .call(
                    Call::new(region, "elasticloadbalancing", "DescribeTargetHealth"),
                    rc.elbv2
                        .describe_target_health()
                        .target_group_arn(target_group_arn)
                        .send(),
                )
                .await?;
            Ok(out
                .target_health_descriptions()
                .iter()
                .map(|d| TargetHealth {
                    target_id: d
                        .target()
                        .and_then(|t| t.id())
                        .unwrap_or_default()
                        .to_string(),
                    availability_zone: d
                        .target()
                        .and_then(|t| t.availability_zone())
                        .unwrap_or_default()
                        .to_string(),
                    state: d
                        .target_health()
                        .and_then(|h| h.state())
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_else(|| "unknown".to_string()),
                })
                .collect())
        })
    }

    fn deregister_targets<'a>(
        &'a self,
        region: &'a str,
        target_group_arn: &'a str,
        target_ids: &'a [String],
    ) -> CloudFuture<'a, ()> {
        Box::pin(async move {
            let c = self.clients();
            let rc = c.region(region).await;
            let targets = target_ids
                .iter()
                .map(|id| TargetDescription::builder().id(id).build())
                .collect::<Vec<_>>();
            c.call(
                Call::new(region, "elasticloadbalancing", "DeregisterTargets"),
                rc.elbv2
                    .deregister_targets()
                    .target_group_arn(target_group_arn)
                    .set_targets(Some(targets))
                    .send(),
            )
            .await?;
            Ok(())
        })
    }

    fn describe_auto_scaling_group<'a>(
        &'a self,
        region: &'a str,
        name: &'a str,
    ) -> CloudFuture<'a, GroupCapacity> {
        Box::pin(self.group_capacity(region, name))
    }

    fn update_auto_scaling_group<'a>(
        &'a self,
        region: &'a str,
        name: &'a str,
        min_size: Option<u32>,
        max_size: Option<u32>,
        desired_capacity: Option<u32>,
    ) -> CloudFuture<'a, GroupCapacity> {
        Box::pin(async move {
            let c = self.clients();
            let rc = c.region(region).await;
            let size = |v: Option<u32>| v.map(|v| v.min(i32::MAX as u32) as i32);
            if min_size.is_some() || max_size.is_some() || desired_capacity.is_some() {
                c.call(
                    Call::new(region, "autoscaling", "UpdateAutoScalingGroup"),
                    rc.autoscaling
                        .update_auto_scaling_group()
                        .auto_scaling_group_name(name)
                        .set_min_size(size(min_size))
                        .set_max_size(size(max_size))
                        .set_desired_capacity(size(desired_capacity))
                        .send(),
                )
                .await?;
            }
            self.group_capacity(region, name).await
        })
    }

    fn list_resource_record_sets<'a>(
        &'a self,
        hosted_zone_id: &'a str,
        name: &'a str,
    ) -> CloudFuture<'a, Vec<RecordSet>> {
        Box::pin(async move {
            Ok(self
                .record_sets(hosted_zone_id, name, None)
                .await?
                .iter()
                .map(record_set)
                .collect())
        })
    }

    fn set_record_weight<'a>(
        &'a self,
        hosted_zone_id: &'a str,
        name: &'a str,
        record_type: &'a str,
        set_identifier: &'a str,
        weight: u8,
    ) -> CloudFuture<'a, ChangeInfo> {
        Box::pin(async move {
            let what = format!("{name} {record_type} {set_identifier}");
            let mut record = self
                .record_sets(hosted_zone_id, name, Some(record_type))
                .await?
                .into_iter()
                .find(|r| r.set_identifier() == Some(set_identifier))
                .ok_or_else(|| not_found("weighted record", &what))?;
            if record.weight.is_none() {
                return Err(CloudError::new(
                    ErrorKind::InvalidInput,
                    format!("record {what:?} in zone {hosted_zone_id} is not a weighted record"),
                ));
            }
            // UPSERT replaces the whole record: send it back as read, only the weight changed.
            record.weight = Some(i64::from(weight));
            let batch = ChangeBatch::builder()
                .comment(format!("drflow: weight of {set_identifier} to {weight}"))
                .changes(
                    Change::builder()
                        .action(ChangeAction::Upsert)
                        .resource_record_set(record)
                        .build()
                        .map_err(|e| CloudError::new(ErrorKind::Internal, e.to_string()))?,
                )
                .build()
                .map_err(|e| CloudError::new(ErrorKind::Internal, e.to_string()))?;
            let c = self.clients();
            let g = c.global().await;
            let out = c
                .call(
                    Call::new(GLOBAL_SERVICE_REGION, "route53", "ChangeResourceRecordSets"),
                    g.route53
                        .change_resource_record_sets()
                        .hosted_zone_id(hosted_zone_id)
                        .change_batch(batch)
                        .send(),
                )
                .await?;
            Ok(change_info(out.change_info()))
        })
    }

    fn test_dns_answer<'a>(
        &'a self,
        hosted_zone_id: &'a str,
        record_name: &'a str,
        record_type: &'a str,
    ) -> CloudFuture<'a, DnsAnswer> {
        Box::pin(async move {
            let c = self.clients();
            let g = c.global().await;
            let out = c
                .call(
                    Call::new(GLOBAL_SERVICE_REGION, "route53", "TestDNSAnswer"),
                    g.route53
                        .test_dns_answer()
                        .hosted_zone_id(hosted_zone_id)
                        .record_name(record_name)
                        .record_type(RrType::from(record_type))
                        .send(),
                )
                .await?;
            Ok(DnsAnswer {
                record_name: out.record_name().trim_end_matches('.').to_string(),
                record_type: out.record_type().as_str().to_string(),
                response_code: out.response_code().to_string(),
                record_data: out
                    .record_data()
                    .iter()
                    .map(|d| d.trim_end_matches('.').to_string())
                    .collect(),
            })
        })
    }

    fn publish<'a>(
        &'a self,
        region: &'a str,
        topic_arn: &'a str,
        subject: &'a str,
        message: &'a str,
    ) -> CloudFuture<'a, String> {
        Box::pin(async move {
            let c = self.clients();
            let rc = c.region(region).await;
            let out = c
                .call(
                    Call::new(region, "sns", "Publish"),
                    rc.sns
                        .publish()
                        .topic_arn(topic_arn)
                        .subject(subject)
                        .message(message)
                        .send(),
                )
                .await?;
            Ok(out.message_id().unwrap_or_default().to_string())
        })
    }

    fn probe<'a>(
        &'a self,
        _from_region: &'a str,
        url: &'a str,
        search_string: Option<&'a str>,
    ) -> CloudFuture<'a, ProbeResult> {
        // Made from this process, wherever it runs: on AWS the daemon runs in `from_region`.
        Box::pin(probe_url(url, search_string, PROBE_TIMEOUT))
    }

    fn get_change<'a>(&'a self, change_id: &'a str) -> CloudFuture<'a, ChangeInfo> {
        Box::pin(async move {
            let c = self.clients();
            let g = c.global().await;
            let out = c
                .call(
                    Call::new(GLOBAL_SERVICE_REGION, "route53", "GetChange"),
                    g.route53.get_change().id(change_id).send(),
                )
                .await?;
            Ok(change_info(out.change_info()))
        })
    }
}

/// drflow's own probe: a GET of `url` (http or https, system trust roots), at most `timeout`
/// for the whole answer. Only a URL that is not http(s) is an error; an endpoint that does not
/// answer is an unhealthy result with the reason in `error`.
pub async fn probe_url(
    url: &str,
    search: Option<&str>,
    timeout: Duration,
) -> Result<ProbeResult, CloudError> {
    use http_body_util::{BodyExt, Empty};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;

    let bad = |why: String| CloudError::new(ErrorKind::InvalidInput, why);
    let uri: hyper::Uri = url
        .parse()
        .map_err(|e| bad(format!("{url:?} is not a URL: {e}")))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
        return Err(bad(format!("{url:?} is not an http(s) URL")));
    }
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = hyper_rustls::HttpsConnectorBuilder::new();
    // A host without system roots can still probe plain http; https then fails per probe with
    // the certificate error in `error`.
    let builder = match builder.with_provider_and_native_roots(provider.clone()) {
        Ok(b) => b,
        Err(_) => {
            let tls = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| CloudError::new(ErrorKind::Internal, e.to_string()))?
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth();
            hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls)
        }
    };
    let https = builder.https_or_http().enable_http1().build();
    let client: Client<_, Empty<bytes::Bytes>> = Client::builder(TokioExecutor::new()).build(https);
    let req = hyper::Request::get(uri)
        .header(
            "user-agent",
            concat!("drflow-probe/", env!("CARGO_PKG_VERSION")),
        )
        .body(Empty::new())
        .map_err(|e| bad(format!("{url:?}: {e}")))?;
    let answer = tokio::time::timeout(timeout, async {
        let resp = client.request(req).await.map_err(|e| error_chain(&e))?;
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| error_chain(&e))?
            .to_bytes();
        Ok::<_, String>((status, String::from_utf8_lossy(&body).into_owned()))
    })
    .await;
    let (status, body, error) = match answer {
        Ok(Ok((s, b))) => (Some(s), b, None),
        Ok(Err(e)) => (None, String::new(), Some(e)),
        Err(_) => (
            None,
            String::new(),
            Some(format!("no answer within {} s", timeout.as_secs_f64())),
        ),
    };
    let json: Option<serde_json::Value> = serde_json::from_str(&body).ok();
    let matched = search.is_none_or(|s| body.contains(s));
    let ok_status = status.is_some_and(|s| (200..400).contains(&s));
    let error = error.or_else(|| match status {
        Some(s) if !ok_status => Some(format!("HTTP {s}")),
        Some(_) if !matched => Some(format!(
            "the answer does not contain {:?}",
            search.unwrap_or_default()
        )),
        _ => None,
    });
    Ok(ProbeResult {
        url: url.to_string(),
        status,
        healthy: ok_status && matched,
        error,
        quote_at_ms: json
            .as_ref()
            .and_then(|b| b.get("quote_timestamp"))
            .and_then(serde_json::Value::as_f64)
            .map(|s| (s * 1000.0).round() as u64),
        database_connected: json
            .as_ref()
            .and_then(|b| b.get("db"))
            .and_then(serde_json::Value::as_str)
            .map(|d| d == "connected"),
    })
}

/// An error and its sources in one line: hyper's own message is often only "client error".
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        parts.push(s.to_string());
        cur = s.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::{AwsSettings, CallRecord, RegionClients, StaticKeys};
    use aws_config::retry::RetryConfig;
    use aws_config::{BehaviorVersion, Region, SdkConfig};
    use aws_sdk_cloudwatch::operation::get_metric_data::GetMetricDataOutput;
    use aws_sdk_cloudwatch::types::MetricDataResult;
    use aws_sdk_rds::config::{Credentials, SharedCredentialsProvider};
    use aws_sdk_rds::operation::describe_db_clusters::DescribeDbClustersOutput;
    use aws_sdk_rds::operation::describe_global_clusters::DescribeGlobalClustersOutput;
    use aws_sdk_rds::operation::failover_global_cluster::{
        FailoverGlobalClusterError, FailoverGlobalClusterOutput,
    };
    use aws_sdk_rds::operation::switchover_global_cluster::SwitchoverGlobalClusterOutput;
    use aws_sdk_rds::types::error::InvalidGlobalClusterStateFault;
    use aws_sdk_rds::types::{DbCluster, FailoverState, FailoverStatus};
    use aws_smithy_mocks::{
        MockResponseInterceptor, Rule, RuleMode, create_mock_http_client, mock,
    };
    use aws_smithy_types::error::ErrorMetadata;

    const GLOBAL_ID: &str = "trading-global";
    const PRIMARY_ARN: &str = "arn:aws:rds:eu-south-1:123456789012:cluster:trading-primary";
    const SECONDARY_ARN: &str = "arn:aws:rds:eu-central-1:123456789012:cluster:trading-secondary";

    // ---- mock clients (what moto lacks) ----

    /// The clients of `region`, RDS and CloudWatch answered by the rules, everything else
    /// refused (the mock HTTP client answers 418).
    fn mocked(region: &str, rds: &[&Rule], cloudwatch: &[&Rule]) -> RegionClients {
        let conf = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region.to_string()))
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                "testing", "testing", None, None, "test",
            )))
            .http_client(create_mock_http_client())
            // A throttled answer must reach the mapping, not be retried on the wall clock.
            .retry_config(RetryConfig::disabled())
            .build();
        let interceptor = |rules: &[&Rule]| {
            rules.iter().fold(
                MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny),
                |i, r| i.with_rule(r),
            )
        };
        let mut rc = RegionClients::from_conf(region, &conf, false);
        rc.rds = aws_sdk_rds::Client::from_conf(
            aws_sdk_rds::config::Builder::from(&conf)
                .interceptor(interceptor(rds))
                .build(),
        );
        rc.cloudwatch = aws_sdk_cloudwatch::Client::from_conf(
            aws_sdk_cloudwatch::config::Builder::from(&conf)
                .interceptor(interceptor(cloudwatch))
                .build(),
        );
        rc
    }

    /// A backend whose regions are these mocked clients; any other region points at a closed
    /// port on 127.0.0.1, so nothing can reach AWS.
    fn mocked_backend(regions: Vec<RegionClients>) -> AwsBackend {
        let mut c = Clients::new(AwsSettings {
            static_keys: Some(StaticKeys {
                access_key_id: "testing".into(),
                secret_access_key: "testing".into(),
            }),
            endpoint_url: Some("http://127.0.0.1:9".into()),
            profile: None,
        });
        for rc in regions {
            c = c.with_region_clients(rc);
        }
        AwsBackend::from_clients(c)
    }

    fn global_cluster(status: &str, failover: Option<FailoverState>) -> GlobalCluster {
        GlobalCluster::builder()
            .global_cluster_identifier(GLOBAL_ID)
            .status(status)
            .set_failover_state(failover)
            .global_cluster_members(
                aws_sdk_rds::types::GlobalClusterMember::builder()
                    .db_cluster_arn(SECONDARY_ARN)
                    .is_writer(false)
                    .build(),
            )
            .global_cluster_members(
                aws_sdk_rds::types::GlobalClusterMember::builder()
                    .db_cluster_arn(PRIMARY_ARN)
                    .is_writer(true)
                    .readers(SECONDARY_ARN)
                    .build(),
            )
            .build()
    }

    /// The calls `b` made, their send times left out (the tests compare what was called).
    fn untimed_calls(b: &AwsBackend) -> Vec<CallRecord> {
        b.clients()
            .calls()
            .into_iter()
            .map(|c| CallRecord { sent_at_ms: 0, ..c })
            .collect()
    }

    fn record(region: &str, operation: &'static str, failed: bool) -> CallRecord {
        CallRecord {
            region: region.to_string(),
            service: "rds",
            operation,
            mutating: true,
            failed,
            sent_at_ms: 0,
        }
    }

    #[tokio::test]
    async fn failover_sends_allow_data_loss_for_the_target_arn_in_its_region() {
        let rule = mock!(aws_sdk_rds::Client::failover_global_cluster)
            .match_requests(|r| {
                r.global_cluster_identifier() == Some(GLOBAL_ID)
                    && r.target_db_cluster_identifier() == Some(SECONDARY_ARN)
                    && r.allow_data_loss() == Some(true)
                    && r.switchover().is_none()
            })
            .then_output(|| {
                FailoverGlobalClusterOutput::builder()
                    .global_cluster(global_cluster(
                        "failing-over",
                        Some(
                            FailoverState::builder()
                                .status(FailoverStatus::FailingOver)
                                .from_db_cluster_arn(PRIMARY_ARN)
                                .to_db_cluster_arn(SECONDARY_ARN)
                                .is_data_loss_allowed(true)
                                .build(),
                        ),
                    ))
                    .build()
            });
        let b = mocked_backend(vec![mocked("eu-central-1", &[&rule], &[])]);
        let got = b
            .failover_global_cluster(GLOBAL_ID, SECONDARY_ARN, true)
            .await
            .unwrap();
        assert_eq!(rule.num_calls(), 1);
        assert_eq!(got.global_cluster_id, GLOBAL_ID);
        assert_eq!(got.status, "failing-over");
        // Writer first, as the sim lists them; the answer still names the old writer.
        let ids: Vec<(&str, &str, bool)> = got
            .members
            .iter()
            .map(|m| (m.db_cluster_id.as_str(), m.region.as_str(), m.is_writer))
            .collect();
        assert_eq!(
            ids,
            [
                ("trading-primary", "eu-south-1", true),
                ("trading-secondary", "eu-central-1", false)
            ]
        );
        assert_eq!(
            untimed_calls(&b),
            [record("eu-central-1", "FailoverGlobalCluster", false)]
        );
    }

    #[tokio::test]
    async fn failover_without_data_loss_asks_for_a_switchover() {
        let rule = mock!(aws_sdk_rds::Client::failover_global_cluster)
            .match_requests(|r| {
                r.target_db_cluster_identifier() == Some(SECONDARY_ARN)
                    && r.allow_data_loss().is_none()
                    && r.switchover() == Some(true)
            })
            .then_output(|| {
                FailoverGlobalClusterOutput::builder()
                    .global_cluster(global_cluster("available", None))
                    .build()
            });
        let b = mocked_backend(vec![mocked("eu-central-1", &[&rule], &[])]);
        b.failover_global_cluster(GLOBAL_ID, SECONDARY_ARN, false)
            .await
            .unwrap();
        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn switchover_sends_the_target_arn_and_no_data_loss_flag() {
        let rule = mock!(aws_sdk_rds::Client::switchover_global_cluster)
            .match_requests(|r| {
                r.global_cluster_identifier() == Some(GLOBAL_ID)
                    && r.target_db_cluster_identifier() == Some(SECONDARY_ARN)
            })
            .then_output(|| {
                SwitchoverGlobalClusterOutput::builder()
                    .global_cluster(global_cluster(
                        "available",
                        Some(
                            FailoverState::builder()
                                .status(FailoverStatus::Pending)
                                .is_data_loss_allowed(false)
                                .build(),
                        ),
                    ))
                    .build()
            });
        let b = mocked_backend(vec![mocked("eu-central-1", &[&rule], &[])]);
        let got = b
            .switchover_global_cluster(GLOBAL_ID, SECONDARY_ARN)
            .await
            .unwrap();
        assert_eq!(rule.num_calls(), 1);
        // AWS keeps Status `available` during a switchover; its FailoverState says it runs.
        assert_eq!(got.status, "switching-over");
        assert_eq!(
            untimed_calls(&b),
            [record("eu-central-1", "SwitchoverGlobalCluster", false)]
        );
    }

    #[tokio::test]
    async fn a_busy_global_cluster_is_not_ready_and_throttling_is_retryable() {
        let busy = mock!(aws_sdk_rds::Client::failover_global_cluster).then_error(|| {
            FailoverGlobalClusterError::InvalidGlobalClusterStateFault(
                InvalidGlobalClusterStateFault::builder()
                    .message("a switchover is in progress")
                    .meta(
                        ErrorMetadata::builder()
                            .code("InvalidGlobalClusterStateFault")
                            .message("a switchover is in progress")
                            .build(),
                    )
                    .build(),
            )
        });
        let b = mocked_backend(vec![mocked("eu-central-1", &[&busy], &[])]);
        let e = b
            .failover_global_cluster(GLOBAL_ID, SECONDARY_ARN, true)
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotReady, "{}", e.message);
        assert!(
            e.message
                .starts_with("rds FailoverGlobalCluster in eu-central-1: "),
            "{}",
            e.message
        );
        assert!(
            e.message.contains("a switchover is in progress"),
            "{}",
            e.message
        );
        assert_eq!(
            untimed_calls(&b),
            [record("eu-central-1", "FailoverGlobalCluster", true)]
        );

        let throttled = mock!(aws_sdk_rds::Client::switchover_global_cluster).then_error(|| {
            aws_sdk_rds::operation::switchover_global_cluster::SwitchoverGlobalClusterError::generic(
                ErrorMetadata::builder()
                    .code("Throttling")
                    .message("Rate exceeded")
                    .build(),
            )
        });
        let b = mocked_backend(vec![mocked("eu-central-1", &[&throttled], &[])]);
        let e = b
            .switchover_global_cluster(GLOBAL_ID, SECONDARY_ARN)
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Throttled, "{}", e.message);
        assert!(e.kind.retryable());
    }

    #[tokio::test]
    async fn a_target_that_is_not_a_cluster_arn_is_refused_before_any_call() {
        let b = mocked_backend(vec![]);
        let e = b
            .failover_global_cluster(GLOBAL_ID, "trading-secondary", true)
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidInput);
        assert!(
            e.message.contains("not an Aurora cluster ARN"),
            "{}",
            e.message
        );
        assert!(b.clients().calls().is_empty());
    }

    fn cluster_rule(arn: &'static str, status: &'static str) -> Rule {
        mock!(aws_sdk_rds::Client::describe_db_clusters)
            .match_requests(move |r| r.db_cluster_identifier() == Some(arn))
            .then_output(move || {
                DescribeDbClustersOutput::builder()
                    .db_clusters(
                        DbCluster::builder()
                            .db_cluster_arn(arn)
                            .status(status)
                            .build(),
                    )
                    .build()
            })
    }

    #[tokio::test]
    async fn describe_global_cluster_maps_members_writer_status_and_lag() {
        let describe = mock!(aws_sdk_rds::Client::describe_global_clusters)
            .match_requests(|r| r.global_cluster_identifier() == Some(GLOBAL_ID))
            .then_output(|| {
                // Another global cluster first: moto ignores the filter, so the mapping must not.
                DescribeGlobalClustersOutput::builder()
                    .global_clusters(
                        GlobalCluster::builder()
                            .global_cluster_identifier("other-global")
                            .status("available")
                            .build(),
                    )
                    .global_clusters(global_cluster("available", None))
                    .build()
            });
        let primary = cluster_rule(PRIMARY_ARN, "available");
        let secondary = cluster_rule(SECONDARY_ARN, "available");
        let lag = mock!(aws_sdk_cloudwatch::Client::get_metric_data)
            .match_requests(|r| {
                let Some(m) = r
                    .metric_data_queries()
                    .first()
                    .and_then(|q| q.metric_stat())
                    .and_then(|s| s.metric())
                else {
                    return false;
                };
                m.namespace() == Some("AWS/RDS")
                    && m.metric_name() == Some("AuroraGlobalDBReplicationLag")
                    && m.dimensions().iter().any(|d| {
                        d.name() == Some("DBClusterIdentifier")
                            && d.value() == Some("trading-secondary")
                    })
            })
            .then_output(|| {
                GetMetricDataOutput::builder()
                    .metric_data_results(
                        MetricDataResult::builder()
                            .id("m0")
                            .timestamps(DateTime::from_millis(1_700_000_060_000))
                            .timestamps(DateTime::from_millis(1_700_000_000_000))
                            .values(850.4)
                            .values(120.0)
                            .build(),
                    )
                    .build()
            });
        let b = mocked_backend(vec![
            mocked("eu-south-1", &[&primary], &[]),
            mocked("eu-central-1", &[&describe, &secondary], &[&lag]),
        ]);
        let got = b.describe_global_cluster(GLOBAL_ID).await.unwrap();
        assert_eq!(got.status, "available");
        let writer = got.writer().unwrap();
        assert_eq!(got.members[0], *writer, "the writer comes first");
        assert_eq!(writer.db_cluster_arn, PRIMARY_ARN);
        assert_eq!(writer.region, "eu-south-1");
        assert_eq!(writer.status, "available");
        assert_eq!(writer.replication_lag_ms, None);
        let sec = got.member_in("eu-central-1").unwrap();
        assert!(!sec.is_writer);
        assert_eq!(sec.db_cluster_id, "trading-secondary");
        assert_eq!(sec.status, "available");
        // The newest datapoint, whatever order CloudWatch lists them in.
        assert_eq!(sec.replication_lag_ms, Some(850));
        assert_eq!(sec.last_write_seq, None, "AWS does not expose it");
        let ops: Vec<(String, &str)> = b
            .clients()
            .calls()
            .into_iter()
            .map(|c| (c.region, c.operation))
            .collect();
        assert!(ops.contains(&("eu-central-1".into(), "DescribeGlobalClusters")));
        assert!(ops.contains(&("eu-south-1".into(), "DescribeDBClusters")));
        assert!(ops.contains(&("eu-central-1".into(), "DescribeDBClusters")));
        assert!(ops.contains(&("eu-central-1".into(), "GetMetricData")));
        assert_eq!(ops.len(), 4);
    }

    #[tokio::test]
    async fn a_region_that_does_not_answer_is_skipped_and_its_member_inaccessible() {
        let describe = mock!(aws_sdk_rds::Client::describe_global_clusters).then_output(|| {
            DescribeGlobalClustersOutput::builder()
                .global_clusters(global_cluster("available", None))
                .build()
        });
        let down = || {
            aws_smithy_runtime_api::http::Response::new(
                aws_smithy_runtime_api::http::StatusCode::try_from(503).unwrap(),
                aws_smithy_types::body::SdkBody::from(""),
            )
        };
        // The first region asked (eu-central-1) fails to describe the global cluster: the
        // next one answers. The primary's cluster does not answer: it is inaccessible.
        let gc_down = mock!(aws_sdk_rds::Client::describe_global_clusters).then_http_response(down);
        let primary_down =
            mock!(aws_sdk_rds::Client::describe_db_clusters).then_http_response(down);
        let secondary = cluster_rule(SECONDARY_ARN, "available");
        let no_lag = mock!(aws_sdk_cloudwatch::Client::get_metric_data)
            .then_output(|| GetMetricDataOutput::builder().build());
        let b = mocked_backend(vec![
            mocked("eu-south-1", &[&describe, &primary_down], &[]),
            mocked("eu-central-1", &[&gc_down, &secondary], &[&no_lag]),
        ]);
        let got = b.describe_global_cluster(GLOBAL_ID).await.unwrap();
        assert_eq!(got.member_in("eu-south-1").unwrap().status, "inaccessible");
        assert_eq!(got.member_in("eu-central-1").unwrap().status, "available");
        assert_eq!(
            got.member_in("eu-central-1").unwrap().replication_lag_ms,
            None
        );
        assert_eq!(gc_down.num_calls(), 1);
        assert_eq!(describe.num_calls(), 1);
    }

    // ---- Route 53's verdict ----

    #[test]
    fn a_health_check_is_healthy_while_more_than_18_percent_of_checkers_are() {
        let reports = |healthy: usize, of: usize| -> Vec<(bool, Option<u64>)> {
            (0..of)
                .map(|i| (i < healthy, Some(1_000 + i as u64)))
                .collect()
        };
        // 3 of 16 is 18.75 %: healthy; 2 of 16 is 12.5 %: not.
        assert!(verdict("hc", &reports(3, 16), false).healthy);
        let down = verdict("hc", &reports(2, 16), false);
        assert!(!down.healthy);
        assert_eq!((down.checkers, down.checkers_healthy), (16, 2));
        // The newest failed report, and the oldest report that agrees with "unhealthy".
        assert_eq!(down.last_failure_at_ms, Some(1_015));
        assert_eq!(down.changed_at_ms, Some(1_002));
        // Inverted flips the verdict, not the checkers' counts.
        let inv = verdict("hc", &reports(2, 16), true);
        assert!(inv.healthy && inv.inverted);
        assert_eq!(inv.checkers_healthy, 2);
        assert!(
            verdict("hc", &reports(16, 16), false)
                .last_failure_at_ms
                .is_none()
        );
        // Nobody has reported yet: a new check is healthy.
        assert!(verdict("hc", &[], false).healthy);
    }

    // ---- the probe, against a local HTTP server ----

    /// Serves one canned HTTP answer per connection on 127.0.0.1 (a thread for the test's
    /// life); returns its base URL.
    fn serve(answer: &'static str) -> String {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for mut s in listener.incoming().flatten() {
                let mut buf = [0u8; 2048];
                let _ = s.read(&mut buf);
                let _ = s.write_all(answer.as_bytes());
                let _ = s.shutdown(std::net::Shutdown::Both);
            }
        });
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn the_probe_reads_the_trading_apps_health_answer() {
        let ok = serve(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n\
             {\"status\":\"ok\",\"quote_timestamp\":1700000000.5,\"db\":\"connected\"}",
        );
        let url = format!("{ok}/health/trading");
        let got = probe_url(&url, Some("\"ok\""), PROBE_TIMEOUT)
            .await
            .unwrap();
        assert_eq!(got.url, url);
        assert_eq!(got.status, Some(200));
        assert!(got.healthy, "{got:?}");
        assert_eq!(got.error, None);
        assert_eq!(got.quote_at_ms, Some(1_700_000_000_500));
        assert_eq!(got.database_connected, Some(true));
        let missing = probe_url(&url, Some("trading-v2"), PROBE_TIMEOUT)
            .await
            .unwrap();
        assert!(!missing.healthy);
        assert!(missing.error.unwrap().contains("does not contain"));

        let down = serve(
            "HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\n\r\n\
             {\"status\":\"degraded\",\"quote_timestamp\":null,\"db\":\"unreachable\"}",
        );
        let got = probe_url(&format!("{down}/health/trading"), None, PROBE_TIMEOUT)
            .await
            .unwrap();
        assert_eq!(got.status, Some(503));
        assert!(!got.healthy);
        assert_eq!(got.error.as_deref(), Some("HTTP 503"));
        assert_eq!(got.quote_at_ms, None);
        assert_eq!(got.database_connected, Some(false));
    }

    #[tokio::test]
    async fn a_probe_of_a_closed_port_is_unhealthy_with_the_reason() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let got = probe_url(&format!("http://{addr}/health"), None, PROBE_TIMEOUT)
            .await
            .unwrap();
        assert_eq!(got.status, None);
        assert!(!got.healthy);
        let why = got.error.unwrap();
        assert!(why.to_ascii_lowercase().contains("connect"), "{why}");
        let e = probe_url("ftp://example.com/x", None, PROBE_TIMEOUT)
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidInput);
    }

    // ---- against moto (what it has) ----

    /// moto's endpoint: `DRFLOW_MOTO_ENDPOINT`. Unset, CI fails and a developer's run skips.
    fn moto() -> Option<String> {
        match std::env::var("DRFLOW_MOTO_ENDPOINT") {
            Ok(ep) if !ep.is_empty() => Some(ep),
            _ => {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "moto is required in CI (DRFLOW_MOTO_ENDPOINT)"
                );
                eprintln!(
                    "SKIPPED: aws::failover moto test: set DRFLOW_MOTO_ENDPOINT to a running moto_server"
                );
                None
            }
        }
    }

    fn moto_clients(ep: &str) -> Clients {
        Clients::new(AwsSettings {
            static_keys: Some(StaticKeys {
                access_key_id: "testing".into(),
                secret_access_key: "testing".into(),
            }),
            endpoint_url: Some(ep.to_string()),
            profile: None,
        })
    }

    /// A name no other test (nor an earlier run against the same moto) uses.
    fn unique(prefix: &str) -> String {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        format!(
            "{prefix}-{}-{nanos:x}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// An Auto Scaling group of size 0 (max 6) on a launch template in a new VPC's subnet,
    /// built with the raw SDK (not recorded as the backend's calls).
    async fn make_group(c: &Clients, region: &str, name: &str) {
        use aws_sdk_autoscaling::types::LaunchTemplateSpecification;
        use aws_sdk_ec2::types::{InstanceType, RequestLaunchTemplateData};
        let rc = c.region(region).await;
        let vpc = rc
            .ec2
            .create_vpc()
            .cidr_block("10.20.0.0/16")
            .send()
            .await
            .unwrap()
            .vpc()
            .and_then(|v| v.vpc_id())
            .unwrap()
            .to_string();
        let subnet = rc
            .ec2
            .create_subnet()
            .vpc_id(&vpc)
            .cidr_block("10.20.1.0/24")
            .availability_zone(format!("{region}a"))
            .send()
            .await
            .unwrap()
            .subnet()
            .and_then(|s| s.subnet_id())
            .unwrap()
            .to_string();
        let ami = rc
            .ssm
            .get_parameter()
            .name("/aws/service/ami-amazon-linux-latest/amzn2-ami-hvm-x86_64-gp2")
            .send()
            .await
            .unwrap()
            .parameter()
            .and_then(|p| p.value())
            .unwrap()
            .to_string();
        rc.ec2
            .create_launch_template()
            .launch_template_name(name)
            .launch_template_data(
                RequestLaunchTemplateData::builder()
                    .image_id(ami)
                    .instance_type(InstanceType::T3Micro)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        rc.autoscaling
            .create_auto_scaling_group()
            .auto_scaling_group_name(name)
            .launch_template(
                LaunchTemplateSpecification::builder()
                    .launch_template_name(name)
                    .version("$Latest")
                    .build(),
            )
            .min_size(0)
            .max_size(6)
            .desired_capacity(0)
            .vpc_zone_identifier(subnet)
            .send()
            .await
            .unwrap();
    }

    const PRIMARY_LB: &str = "primary-lb-1.eu-south-1.elb.amazonaws.com";
    const SECONDARY_LB: &str = "secondary-lb-2.eu-central-1.elb.amazonaws.com";

    fn weighted(name: &str, set_id: &str, weight: i64, lb: &str) -> ResourceRecordSet {
        ResourceRecordSet::builder()
            .name(name)
            .r#type(RrType::A)
            .set_identifier(set_id)
            .weight(weight)
            .alias_target(
                aws_sdk_route53::types::AliasTarget::builder()
                    .hosted_zone_id("Z1D633PJN98FT9")
                    .dns_name(lb)
                    .evaluate_target_health(true)
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap()
    }

    /// A hosted zone with `app.<zone>` as two weighted alias records (primary 100, secondary
    /// 0) and an unrelated `www.<zone>` A record. Returns (zone id, app record name).
    async fn make_zone(c: &Clients) -> (String, String) {
        let g = c.global().await;
        let zone = format!("{}.example.com", unique("z"));
        let id = g
            .route53
            .create_hosted_zone()
            .name(&zone)
            .caller_reference(unique("ref"))
            .send()
            .await
            .unwrap()
            .hosted_zone()
            .unwrap()
            .id()
            .to_string();
        let app = format!("app.{zone}");
        let www = ResourceRecordSet::builder()
            .name(format!("www.{zone}"))
            .r#type(RrType::A)
            .ttl(60)
            .resource_records(
                aws_sdk_route53::types::ResourceRecord::builder()
                    .value("192.0.2.10")
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        let create = |r: ResourceRecordSet| {
            Change::builder()
                .action(ChangeAction::Create)
                .resource_record_set(r)
                .build()
                .unwrap()
        };
        g.route53
            .change_resource_record_sets()
            .hosted_zone_id(&id)
            .change_batch(
                ChangeBatch::builder()
                    .changes(create(weighted(&app, "primary", 100, PRIMARY_LB)))
                    .changes(create(weighted(&app, "secondary", 0, SECONDARY_LB)))
                    .changes(create(www))
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        (id, app)
    }

    async fn make_topic(c: &Clients, region: &str) -> String {
        c.region(region)
            .await
            .sns
            .create_topic()
            .name(unique("alerts"))
            .send()
            .await
            .unwrap()
            .topic_arn()
            .unwrap()
            .to_string()
    }

    fn weights(records: &[RecordSet]) -> Vec<(String, Option<u8>, Option<String>)> {
        let mut w: Vec<_> = records
            .iter()
            .map(|r| {
                (
                    r.set_identifier.clone().unwrap_or_default(),
                    r.weight,
                    r.alias_dns_name.clone(),
                )
            })
            .collect();
        w.sort();
        w
    }

    #[tokio::test]
    async fn moto_updating_a_group_changes_its_capacity_and_instances() {
        let Some(ep) = moto() else { return };
        let c = moto_clients(&ep);
        let region = "eu-central-1";
        let name = unique("standby-asg");
        make_group(&c, region, &name).await;
        let b = AwsBackend::from_clients(c);
        let before = b.describe_auto_scaling_group(region, &name).await.unwrap();
        assert_eq!(
            (before.min_size, before.max_size, before.desired_capacity),
            (0, 6, 0)
        );
        assert_eq!(before.in_service + before.pending, 0);
        let after = b
            .update_auto_scaling_group(region, &name, Some(2), None, Some(3))
            .await
            .unwrap();
        assert_eq!(after.name, name);
        assert_eq!(after.region, region);
        // The maximum was not given: kept.
        assert_eq!(
            (after.min_size, after.max_size, after.desired_capacity),
            (2, 6, 3)
        );
        assert_eq!(after.in_service + after.pending, 3, "{after:?}");
        assert_eq!(after.warm_pool, 0);
        assert_eq!(after.last_failure, None);
        assert_eq!(
            b.describe_auto_scaling_group(region, &name).await.unwrap(),
            after
        );
        let mutating: Vec<&str> = b
            .clients()
            .calls()
            .into_iter()
            .filter(|c| c.mutating)
            .map(|c| c.operation)
            .collect();
        assert_eq!(mutating, ["UpdateAutoScalingGroup"]);
        let e = b
            .describe_auto_scaling_group(region, &unique("no-such-asg"))
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotFound, "{}", e.message);
    }

    #[tokio::test]
    async fn moto_set_record_weight_changes_one_weight_and_keeps_the_rest() {
        let Some(ep) = moto() else { return };
        let c = moto_clients(&ep);
        let (zone, app) = make_zone(&c).await;
        let b = AwsBackend::from_clients(c);
        let listed = b.list_resource_record_sets(&zone, &app).await.unwrap();
        // Only the records named exactly `app.<zone>`, not `www.<zone>` after them.
        assert_eq!(
            weights(&listed),
            [
                ("primary".into(), Some(100), Some(PRIMARY_LB.into())),
                ("secondary".into(), Some(0), Some(SECONDARY_LB.into())),
            ]
        );
        assert!(listed.iter().all(|r| r.name == app && r.record_type == "A"));
        let change = b
            .set_record_weight(&zone, &app, "A", "secondary", 100)
            .await
            .unwrap();
        assert!(!change.id.is_empty());
        assert_eq!(
            weights(&b.list_resource_record_sets(&zone, &app).await.unwrap()),
            [
                ("primary".into(), Some(100), Some(PRIMARY_LB.into())),
                ("secondary".into(), Some(100), Some(SECONDARY_LB.into())),
            ]
        );
        // Everything else of the record is as it was: alias zone, target health evaluation.
        let raw = b.record_sets(&zone, &app, Some("A")).await.unwrap();
        let sec = raw
            .iter()
            .find(|r| r.set_identifier() == Some("secondary"))
            .unwrap();
        let alias = sec.alias_target().unwrap();
        assert_eq!(alias.hosted_zone_id(), "Z1D633PJN98FT9");
        assert!(alias.evaluate_target_health());
        assert_eq!(sec.ttl(), None);
        let got = b.get_change(&change.id).await.unwrap();
        assert_eq!(got.id, change.id);
        let e = b
            .set_record_weight(&zone, &app, "A", "tertiary", 5)
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotFound, "{}", e.message);
    }

    /// Each typed action the failover runbook calls on moto makes only calls that the policy
    /// `drflow policy` gives that action allows, so an operator with that policy is never
    /// denied mid-failover. (The global cluster's actions: the mock tests above make exactly
    /// the calls their policy names.)
    #[tokio::test]
    async fn moto_each_typed_action_calls_only_what_its_policy_allows() {
        let Some(ep) = moto() else { return };
        let c = moto_clients(&ep);
        let region = "eu-south-1";
        let name = unique("policy-asg");
        make_group(&c, region, &name).await;
        let (zone, app) = make_zone(&c).await;
        let topic = make_topic(&c, region).await;
        let b = AwsBackend::from_clients(c);
        let check = |method: &str, from: usize| {
            let allowed: Vec<&str> = crate::policy::failover_action(method)
                .iter()
                .map(|p| crate::policy::iam_action(p.action))
                .collect();
            let calls = b.clients().calls();
            assert!(calls.len() > from, "{method} made no call");
            for call in &calls[from..] {
                let action = format!("{}:{}", call.service, call.operation);
                assert!(
                    allowed.contains(&crate::policy::iam_action(&action)),
                    "{method} calls {action}, which its policy ({allowed:?}) lacks"
                );
            }
            calls.len()
        };
        let n = b.clients().calls().len();
        b.describe_alarms(region, Some("policy")).await.unwrap();
        let n = check("describe_alarms", n);
        b.describe_auto_scaling_group(region, &name).await.unwrap();
        let n = check("describe_auto_scaling_group", n);
        b.update_auto_scaling_group(region, &name, None, None, Some(3))
            .await
            .unwrap();
        let n = check("update_auto_scaling_group", n);
        b.list_resource_record_sets(&zone, &app).await.unwrap();
        let n = check("list_resource_record_sets", n);
        let change = b
            .set_record_weight(&zone, &app, "A", "secondary", 100)
            .await
            .unwrap();
        let n = check("set_record_weight", n);
        b.get_change(&change.id).await.unwrap();
        let n = check("get_change", n);
        b.publish(region, &topic, "drflow", "policy check")
            .await
            .unwrap();
        check("publish", n);
    }

    #[tokio::test]
    async fn moto_publish_returns_a_message_id() {
        let Some(ep) = moto() else { return };
        let c = moto_clients(&ep);
        let topic = make_topic(&c, "eu-south-1").await;
        let b = AwsBackend::from_clients(c);
        let id = b
            .publish("eu-south-1", &topic, "drflow", "failover finished")
            .await
            .unwrap();
        assert!(!id.is_empty());
        let missing = topic.replace("alerts-", "gone-");
        let e = b
            .publish("eu-south-1", &missing, "drflow", "x")
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotFound, "{}", e.message);
        assert!(
            e.message.starts_with("sns Publish in eu-south-1: "),
            "{}",
            e.message
        );
    }

    #[tokio::test]
    async fn moto_describe_alarms_shows_the_state_set() {
        use aws_sdk_cloudwatch::types::{ComparisonOperator, Statistic};
        let Some(ep) = moto() else { return };
        let c = moto_clients(&ep);
        let region = "eu-south-1";
        let prefix = unique("trading");
        let rc = c.region(region).await;
        for name in [
            format!("{prefix}-latency"),
            format!("{prefix}-errors"),
            format!("{}-other", unique("unrelated")),
        ] {
            rc.cloudwatch
                .put_metric_alarm()
                .alarm_name(name)
                .namespace("AWS/ApplicationELB")
                .metric_name("TargetResponseTime")
                .statistic(Statistic::Average)
                .period(60)
                .evaluation_periods(1)
                .threshold(1.0)
                .comparison_operator(ComparisonOperator::GreaterThanThreshold)
                .send()
                .await
                .unwrap();
        }
        rc.cloudwatch
            .set_alarm_state()
            .alarm_name(format!("{prefix}-latency"))
            .state_value(StateValue::Alarm)
            .state_reason("test: latency above 1 s")
            .send()
            .await
            .unwrap();
        // AWS starts a new alarm in INSUFFICIENT_DATA, moto in OK: set it, so the mapping of
        // "unknown" is what is checked.
        rc.cloudwatch
            .set_alarm_state()
            .alarm_name(format!("{prefix}-errors"))
            .state_value(StateValue::InsufficientData)
            .state_reason("test: no data")
            .send()
            .await
            .unwrap();
        let b = AwsBackend::from_clients(c);
        let mut got = b.describe_alarms(region, Some(&prefix)).await.unwrap();
        got.sort_by(|a, b| a.name.cmp(&b.name));
        let names: Vec<&str> = got.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(
            names,
            [format!("{prefix}-errors"), format!("{prefix}-latency")]
        );
        let latency = &got[1];
        assert_eq!(latency.state, AlarmStateValue::Alarm);
        assert_eq!(latency.reason, "test: latency above 1 s");
        assert_eq!(latency.region, region);
        assert!(latency.arn.contains(":alarm:"), "{}", latency.arn);
        assert!(latency.updated_at_ms > 0);
        assert_eq!(got[0].state, AlarmStateValue::InsufficientData);
    }

    /// The failover runbook's moves that moto has, at once as the runbook runs them: scale the
    /// standby group, move the weights, tell the operators.
    #[tokio::test]
    async fn moto_the_failover_sequence_scales_moves_dns_and_notifies() {
        let Some(ep) = moto() else { return };
        let c = moto_clients(&ep);
        let standby = "eu-central-1";
        let asg = unique("standby-asg");
        make_group(&c, standby, &asg).await;
        let (zone, app) = make_zone(&c).await;
        let topic = make_topic(&c, standby).await;
        let b = AwsBackend::from_clients(c);
        let (capacity, (_, change), message_id) = tokio::try_join!(
            b.update_auto_scaling_group(standby, &asg, Some(3), None, Some(3)),
            async {
                tokio::try_join!(
                    b.set_record_weight(&zone, &app, "A", "primary", 0),
                    b.set_record_weight(&zone, &app, "A", "secondary", 100)
                )
            },
            b.publish(standby, &topic, "drflow failover", "eu-central-1 serves")
        )
        .unwrap();
        assert_eq!(capacity.desired_capacity, 3);
        assert_eq!(capacity.in_service + capacity.pending, 3);
        assert!(!message_id.is_empty());
        assert_eq!(b.get_change(&change.id).await.unwrap().id, change.id);
        assert_eq!(
            weights(&b.list_resource_record_sets(&zone, &app).await.unwrap()),
            [
                ("primary".into(), Some(0), Some(PRIMARY_LB.into())),
                ("secondary".into(), Some(100), Some(SECONDARY_LB.into())),
            ]
        );
        let mut mutating: Vec<(String, &str, &str)> = b
            .clients()
            .calls()
            .into_iter()
            .filter(|c| c.mutating)
            .map(|c| (c.region, c.service, c.operation))
            .collect();
        mutating.sort();
        assert_eq!(
            mutating,
            [
                (standby.into(), "autoscaling", "UpdateAutoScalingGroup"),
                (standby.into(), "sns", "Publish"),
                ("us-east-1".into(), "route53", "ChangeResourceRecordSets"),
                ("us-east-1".into(), "route53", "ChangeResourceRecordSets"),
            ]
        );
        assert!(b.clients().calls().iter().all(|c| !c.failed));
    }
}
