//! The typed half of the seam: the actions and observations a failover is made of.
//!
//! Provisioning goes through the generic find/create/update/delete of [`super::CloudBackend`].
//! Failing over does not: promoting a global cluster, setting a group's capacity or moving a
//! record's weight are verbs with their own AWS API, their own errors and their own timing, so
//! each is a method here, named after the API it maps to (`FailoverGlobalCluster`,
//! `SetDesiredCapacity`, `ChangeResourceRecordSets`…). No failover step expresses a verb as an
//! `update(spec)`.
//!
//! Times are milliseconds since the Unix epoch on the backend's clock (virtual in the sim, wall
//! time on AWS). Every method fails with a [`CloudError`]: `not_found` when the named resource
//! does not exist, `unavailable` when the region cannot be reached (an outage, a partition),
//! `invalid_input` for a request AWS would refuse, `not_ready` for one the resource's current
//! state refuses (a switchover while one is running).

use serde::{Deserialize, Serialize};

use super::{CloudError, CloudFuture, Tags};

/// What Route 53 says about one health check (`GetHealthCheckStatus`, summarised).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthCheckStatus {
    /// The health check's id.
    pub health_check_id: String,
    /// Route 53's verdict: healthy while more than 18 % of the checkers see the endpoint healthy
    /// (Route 53 Developer Guide, "How Route 53 determines whether a health check is healthy").
    /// Already includes `Inverted`.
    pub healthy: bool,
    /// How many checker locations report.
    pub checkers: u32,
    /// How many of them see the endpoint healthy now.
    pub checkers_healthy: u32,
    /// When the most recent failed observation was made by any checker, if any is on record.
    pub last_failure_at_ms: Option<u64>,
    /// When the verdict last changed, if it ever did.
    pub changed_at_ms: Option<u64>,
    /// Whether the check is inverted (`UpdateHealthCheck` `Inverted`).
    pub inverted: bool,
}

/// A CloudWatch alarm state (`StateValue`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AlarmStateValue {
    /// `OK`.
    #[serde(rename = "OK")]
    Ok,
    /// `ALARM`.
    #[serde(rename = "ALARM")]
    Alarm,
    /// `INSUFFICIENT_DATA`: unknown, never healthy.
    #[serde(rename = "INSUFFICIENT_DATA")]
    InsufficientData,
}

impl AlarmStateValue {
    /// The AWS spelling: `OK`, `ALARM` or `INSUFFICIENT_DATA`.
    pub fn name(self) -> &'static str {
        match self {
            AlarmStateValue::Ok => "OK",
            AlarmStateValue::Alarm => "ALARM",
            AlarmStateValue::InsufficientData => "INSUFFICIENT_DATA",
        }
    }
}

/// One alarm as `DescribeAlarms` reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlarmState {
    /// `AlarmName`.
    pub name: String,
    /// `AlarmArn`.
    pub arn: String,
    /// The alarm's region.
    pub region: String,
    /// `StateValue`.
    pub state: AlarmStateValue,
    /// `StateReason`.
    pub reason: String,
    /// `StateUpdatedTimestamp`.
    pub updated_at_ms: u64,
}

/// One metric to read (`GetMetricData` with a single `MetricStat`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricQuery {
    /// The region whose CloudWatch holds the metric.
    pub region: String,
    /// `Namespace`, e.g. `AWS/Route53`.
    pub namespace: String,
    /// `MetricName`, e.g. `HealthCheckStatus`.
    pub metric_name: String,
    /// `Dimensions`, name to value.
    pub dimensions: Tags,
    /// `Stat`: `Average`, `Minimum`, `Maximum`, `Sum` or `SampleCount`.
    pub stat: String,
    /// `Period`, in seconds.
    pub period_s: u32,
}

/// One datapoint.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Datapoint {
    /// The start of the period it covers.
    pub at_ms: u64,
    /// The statistic's value.
    pub value: f64,
}

/// One member cluster of an Aurora Global Database (`GlobalClusterMembers`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GlobalClusterMember {
    /// `DBClusterArn`.
    pub db_cluster_arn: String,
    /// The cluster identifier.
    pub db_cluster_id: String,
    /// The member's region.
    pub region: String,
    /// `IsWriter`.
    pub is_writer: bool,
    /// The cluster's `Status` (`available`, `failing-over`, `inaccessible`…).
    pub status: String,
    /// For a secondary, `AuroraGlobalDBReplicationLag` as last published, in milliseconds.
    pub replication_lag_ms: Option<u64>,
    /// The sequence number of the last write this member holds: committed on the writer,
    /// replicated on a secondary. The sim knows it exactly; AWS does not expose it (`None`).
    pub last_write_seq: Option<u64>,
    /// When the write `last_write_seq` was committed on the writer.
    pub last_write_at_ms: Option<u64>,
}

/// An Aurora Global Database (`DescribeGlobalClusters`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GlobalClusterStatus {
    /// `GlobalClusterIdentifier`.
    pub global_cluster_id: String,
    /// `Status`: `available`, `switching-over` or `failing-over`.
    pub status: String,
    /// Its members, writer first.
    pub members: Vec<GlobalClusterMember>,
}

impl GlobalClusterStatus {
    /// The writer member, if any.
    pub fn writer(&self) -> Option<&GlobalClusterMember> {
        self.members.iter().find(|m| m.is_writer)
    }

    /// The member in `region`, if any.
    pub fn member_in(&self, region: &str) -> Option<&GlobalClusterMember> {
        self.members.iter().find(|m| m.region == region)
    }
}

/// One target of a target group (`DescribeTargetHealth`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetHealth {
    /// The instance id.
    pub target_id: String,
    /// Its availability zone.
    pub availability_zone: String,
    /// `initial`, `healthy`, `unhealthy`, `unused` or `draining`.
    pub state: String,
}

/// An Auto Scaling group's capacity (`DescribeAutoScalingGroups`, `DescribeWarmPool`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupCapacity {
    /// `AutoScalingGroupName`.
    pub name: String,
    /// The group's region.
    pub region: String,
    /// `MinSize`.
    pub min_size: u32,
    /// `MaxSize`.
    pub max_size: u32,
    /// `DesiredCapacity`.
    pub desired_capacity: u32,
    /// Instances `InService`.
    pub in_service: u32,
    /// Instances launching (`Pending`).
    pub pending: u32,
    /// Stopped instances waiting in the warm pool.
    pub warm_pool: u32,
    /// The status message of the last failed scaling activity (`InsufficientInstanceCapacity`…).
    pub last_failure: Option<String>,
}

/// One record set of a hosted zone (`ListResourceRecordSets`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordSet {
    /// `Name`, without the final dot.
    pub name: String,
    /// `Type`: `A`, `AAAA`, `CNAME`…
    pub record_type: String,
    /// `SetIdentifier`, for weighted and failover records.
    pub set_identifier: Option<String>,
    /// `Weight`, for weighted records.
    pub weight: Option<u8>,
    /// `Failover`: `PRIMARY` or `SECONDARY`.
    pub failover: Option<String>,
    /// `HealthCheckId`.
    pub health_check_id: Option<String>,
    /// `AliasTarget.DNSName`, without the final dot.
    pub alias_dns_name: Option<String>,
}

/// A change's propagation (`GetChange`): `PENDING` until every Route 53 name server has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChangeStatus {
    /// `PENDING`.
    #[serde(rename = "PENDING")]
    Pending,
    /// `INSYNC`.
    #[serde(rename = "INSYNC")]
    Insync,
}

/// A submitted Route 53 change (`ChangeInfo`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeInfo {
    /// `Id`.
    pub id: String,
    /// `Status`.
    pub status: ChangeStatus,
    /// `SubmittedAt`.
    pub submitted_at_ms: u64,
}

/// What Route 53 answers for a name (`TestDNSAnswer`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DnsAnswer {
    /// `RecordName`.
    pub record_name: String,
    /// `RecordType`.
    pub record_type: String,
    /// `ResponseCode`: `NOERROR`, `NXDOMAIN`…
    pub response_code: String,
    /// `RecordData`: for an alias to a load balancer, the load balancer's DNS name.
    pub record_data: Vec<String>,
}

/// What drflow's own probe of an endpoint saw (an HTTPS GET of the health path).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeResult {
    /// The URL probed.
    pub url: String,
    /// The HTTP status, when an answer came.
    pub status: Option<u16>,
    /// Whether the answer was a 2xx or 3xx that contained the expected string.
    pub healthy: bool,
    /// What went wrong: a timeout, a refused connection, a missing string.
    pub error: Option<String>,
    /// For the trading application: the timestamp of the quote it served.
    pub quote_at_ms: Option<u64>,
    /// For the trading application: whether it reached its database writer.
    pub database_connected: Option<bool>,
}

/// The typed failover interface of a cloud. Each method maps to one AWS API (named in its doc).
pub trait FailoverApi: Send + Sync {
    /// `GetHealthCheckStatus`: the health check's verdict and its checkers.
    fn get_health_check_status<'a>(
        &'a self,
        health_check_id: &'a str,
    ) -> CloudFuture<'a, HealthCheckStatus>;

    /// `UpdateHealthCheck` with `Inverted`: an inverted check of a healthy endpoint is unhealthy,
    /// which is how a failover record is moved without touching the record.
    fn set_health_check_inverted<'a>(
        &'a self,
        health_check_id: &'a str,
        inverted: bool,
    ) -> CloudFuture<'a, HealthCheckStatus>;

    /// `DescribeAlarms` of a region, optionally only names starting with `name_prefix`.
    fn describe_alarms<'a>(
        &'a self,
        region: &'a str,
        name_prefix: Option<&'a str>,
    ) -> CloudFuture<'a, Vec<AlarmState>>;

    /// `GetMetricData` for one metric from `start_ms` to `end_ms`, oldest first.
    fn get_metric_data<'a>(
        &'a self,
        query: &'a MetricQuery,
        start_ms: u64,
        end_ms: u64,
    ) -> CloudFuture<'a, Vec<Datapoint>>;

    /// `DescribeGlobalClusters` for one global cluster, with each secondary's replication lag.
    fn describe_global_cluster<'a>(
        &'a self,
        global_cluster_id: &'a str,
    ) -> CloudFuture<'a, GlobalClusterStatus>;

    /// `SwitchoverGlobalCluster`: the planned promotion, no data loss; refused (`not_ready`)
    /// unless every member is healthy. Returns at once; the status shows `switching-over`.
    fn switchover_global_cluster<'a>(
        &'a self,
        global_cluster_id: &'a str,
        target_db_cluster_arn: &'a str,
    ) -> CloudFuture<'a, GlobalClusterStatus>;

    /// `FailoverGlobalCluster` with `AllowDataLoss`: promotes the target even when the writer
    /// is lost; writes not yet replicated are lost. Returns at once; the status shows
    /// `failing-over`.
    fn failover_global_cluster<'a>(
        &'a self,
        global_cluster_id: &'a str,
        target_db_cluster_arn: &'a str,
        allow_data_loss: bool,
    ) -> CloudFuture<'a, GlobalClusterStatus>;

    /// `DescribeTargetHealth` of a target group.
    fn describe_target_health<'a>(
        &'a self,
        region: &'a str,
        target_group_arn: &'a str,
    ) -> CloudFuture<'a, Vec<TargetHealth>>;

    /// `DeregisterTargets`: stops a target group sending traffic to these instances.
    fn deregister_targets<'a>(
        &'a self,
        region: &'a str,
        target_group_arn: &'a str,
        target_ids: &'a [String],
    ) -> CloudFuture<'a, ()>;

    /// `DescribeAutoScalingGroups` (and `DescribeWarmPool`) for one group.
    fn describe_auto_scaling_group<'a>(
        &'a self,
        region: &'a str,
        name: &'a str,
    ) -> CloudFuture<'a, GroupCapacity>;

    /// `UpdateAutoScalingGroup` with the sizes given (`None` keeps a size). Launches happen
    /// afterwards, warm pool first; a failed launch shows in `last_failure`.
    fn update_auto_scaling_group<'a>(
        &'a self,
        region: &'a str,
        name: &'a str,
        min_size: Option<u32>,
        max_size: Option<u32>,
        desired_capacity: Option<u32>,
    ) -> CloudFuture<'a, GroupCapacity>;

    /// `ListResourceRecordSets` of a zone, only the records named `name`.
    fn list_resource_record_sets<'a>(
        &'a self,
        hosted_zone_id: &'a str,
        name: &'a str,
    ) -> CloudFuture<'a, Vec<RecordSet>>;

    /// `ChangeResourceRecordSets` with one `UPSERT` that sets the weight of the weighted record
    /// `name`/`record_type`/`set_identifier`, everything else kept.
    fn set_record_weight<'a>(
        &'a self,
        hosted_zone_id: &'a str,
        name: &'a str,
        record_type: &'a str,
        set_identifier: &'a str,
        weight: u8,
    ) -> CloudFuture<'a, ChangeInfo>;

    /// `GetChange`.
    fn get_change<'a>(&'a self, change_id: &'a str) -> CloudFuture<'a, ChangeInfo>;

    /// `TestDNSAnswer`: what Route 53's name servers answer for a record now.
    fn test_dns_answer<'a>(
        &'a self,
        hosted_zone_id: &'a str,
        record_name: &'a str,
        record_type: &'a str,
    ) -> CloudFuture<'a, DnsAnswer>;

    /// `Publish` to an SNS topic; returns the `MessageId`.
    fn publish<'a>(
        &'a self,
        region: &'a str,
        topic_arn: &'a str,
        subject: &'a str,
        message: &'a str,
    ) -> CloudFuture<'a, String>;

    /// drflow's own probe: an HTTPS GET of `url` made from `from_region` (where the daemon
    /// runs), expecting a 2xx/3xx whose body contains `search_string` when one is given.
    fn probe<'a>(
        &'a self,
        from_region: &'a str,
        url: &'a str,
        search_string: Option<&'a str>,
    ) -> CloudFuture<'a, ProbeResult>;
}

/// Builds the error a backend returns when a typed action names something that does not exist.
pub fn not_found(what: &str, name: &str) -> CloudError {
    CloudError::new(
        super::ErrorKind::NotFound,
        format!("{what} {name:?} does not exist"),
    )
}
