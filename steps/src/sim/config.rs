//! The timings the simulated cloud runs on. Every figure is a named parameter with its source,
//! so a drill can be re-run with other assumptions (`world.json` keeps overrides).
//!
//! Failover figures come from `aws-timings.md` (AWS documentation, cited per field).
//! Provisioning figures are not documented by AWS; they are typical observed durations and only
//! move the virtual clock during `provision`.

use serde::{Deserialize, Serialize};

/// Named timing parameters of the sim, in milliseconds unless the name says otherwise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SimConfig {
    /// Virtual time one mutating API call costs. Typical control-plane latency (observed).
    pub api_call_ms: u64,
    /// NAT gateway from `pending` to `available` (observed: 1–2 min).
    pub nat_gateway_create_ms: u64,
    /// Cross-region VPC peering from request to `active` once accepted (observed: seconds).
    pub vpc_peering_accept_ms: u64,
    /// Aurora cluster creation, primary or secondary (observed: about 5 min).
    pub aurora_cluster_create_ms: u64,
    /// Aurora instance creation (observed: about 10 min).
    pub aurora_instance_create_ms: u64,
    /// DynamoDB table with its replicas to `ACTIVE` (observed: under a minute per replica).
    pub dynamodb_table_create_ms: u64,
    /// Application load balancer from `provisioning` to `active` (observed: 2–3 min).
    pub alb_create_ms: u64,
    /// ACM certificate DNS validation once the CNAME exists (observed: a few minutes).
    pub acm_validation_ms: u64,
    /// Route 53 health check interval, fast variant. Route 53 Developer Guide, "How Route 53
    /// determines whether a health check is healthy": 10 s or 30 s, fixed at creation.
    pub health_check_interval_ms: u64,
    /// Consecutive failures before unhealthy. Route 53 API, HealthCheckConfig: 1–10, default 3.
    pub health_check_failure_threshold: u32,
    /// Undocumented extra delay before a health check turns unhealthy, up to about 6 s (derived,
    /// aws-timings.md).
    pub health_check_extra_ms: u64,
    /// `HealthCheckStatus` metric granularity. Route 53 guide, monitoring health checks with
    /// CloudWatch: 1 minute.
    pub health_check_metric_period_ms: u64,
    /// TTL of alias records to an ALB. Route 53 FAQ: 60 s.
    pub dns_alias_ttl_ms: u64,
    /// A record change reaching every Route 53 name server (INSYNC). Route 53 FAQ: within 60 s.
    pub dns_insync_ms: u64,
    /// Aurora Global Database replication lag in steady state. Aurora User Guide, Global
    /// Database: typically under 1 s.
    pub aurora_replication_lag_ms: u64,
    /// Managed failover (`AllowDataLoss`) of a global cluster. Aurora User Guide, disaster
    /// recovery; AWS DR workshop: about 1 minute.
    pub aurora_managed_failover_ms: u64,
    /// Planned switchover of a global cluster (RPO 0). Aurora User Guide (waits for sync; about
    /// as long as a managed failover).
    pub aurora_switchover_ms: u64,
    /// Publishing period of `AuroraGlobalDBReplicationLag`. Aurora User Guide: 1 minute.
    pub aurora_lag_metric_period_ms: u64,
    /// EventBridge to SQS delivery, median. bitesizedserverless, "Serverless messaging latency
    /// compared" (2023): about 16 ms.
    pub eventbridge_to_sqs_p50_ms: u64,
    /// EventBridge to SQS delivery, 99th percentile. Same source: about 105 ms.
    pub eventbridge_to_sqs_p99_ms: u64,
    /// Longest SQS long poll. SQS Developer Guide: 20 s.
    pub sqs_long_poll_max_ms: u64,
    /// Instance launch to `InService`, cold with bootstrap. aws-samples
    /// amazon-ec2-auto-scaling-group-examples, warm pools: about 240 s.
    pub instance_launch_cold_ms: u64,
    /// Instance launch to `InService` from a stopped warm pool. Same source: about 36 s.
    pub instance_launch_warm_ms: u64,
    /// Health checks an ALB target must pass before it gets traffic. ELB guide, target group
    /// health checks: 1 after registration.
    pub alb_healthy_checks_to_serve: u32,
    /// Shortest EventBridge schedule. EventBridge guide: 1 minute.
    pub eventbridge_schedule_min_ms: u64,
    /// Route 53 checker locations probing each health check. Route 53 Developer Guide, "How
    /// Route 53 determines whether a health check is healthy": about 15.
    pub route53_checkers: u32,
    /// A health check is healthy while more than this share of checkers (in percent) see the
    /// endpoint healthy. Same guide: 18 %.
    pub route53_healthy_share_pct: u32,
    /// Route 53 checker HTTP limits: time to connect. Same guide: 4 s.
    pub route53_connect_timeout_ms: u64,
    /// How often the trading application commits a write on the database writer while it
    /// serves (a modelling choice, not an AWS figure: 10 writes a second).
    pub app_write_interval_ms: u64,
    /// The application's health endpoint says `ok` only while its last quote is younger than
    /// this. The launch template's health endpoint (`MAX_QUOTE_AGE`): 30 s.
    pub app_max_quote_age_ms: u64,
    /// A `flapping` fault's period: the application is down for the first half, up for the
    /// second. A modelling choice: 80 s, long enough to trip a 10 s × 3 health check each time.
    pub flapping_period_ms: u64,
    /// Replication lag while a `lag-spike` fault lasts. A modelling choice: 120 s, twice the
    /// 60 s RPO budget.
    pub lag_spike_ms: u64,
    /// How long Auto Scaling waits before retrying a failed launch. Not documented by AWS
    /// (observed: about 10 s at first, backing off); the sim retries at a steady 10 s.
    pub asg_launch_retry_ms: u64,
    /// drflow's own probe gives up on an endpoint after this long (like Route 53's checkers:
    /// 4 s to connect, 2 s to answer; aws-timings.md).
    pub probe_timeout_ms: u64,
    /// Route 53 health check interval, standard variant (`request_interval: 30`). Route 53
    /// Developer Guide, "How Route 53 determines whether a health check is healthy": 30 s.
    pub health_check_standard_interval_ms: u64,
    /// Periods an alarm looks back beyond `EvaluationPeriods` when datapoints are missing.
    /// CloudWatch User Guide, "Configuring how CloudWatch alarms treat missing data": it
    /// "retrieves a higher number of data points than Evaluation Periods"; its examples show 5
    /// for 3, so 2.
    pub alarm_evaluation_extra_periods: u32,
    /// How often AWS services publish the metrics the sim reads off the world (ALB host counts,
    /// Aurora lag, EC2 CPU). CloudWatch User Guide, AWS services' metrics: 1 minute.
    pub service_metric_period_ms: u64,
    /// How long the sim keeps metric samples. CloudWatch keeps 1-minute datapoints 15 days
    /// (CloudWatch User Guide, "Metrics retention"); the sim keeps 3 hours, far more than any
    /// alarm here looks back, so the world file stays small.
    pub metric_retention_ms: u64,
}

impl Default for SimConfig {
    fn default() -> SimConfig {
        SimConfig {
            api_call_ms: 100,
            nat_gateway_create_ms: 90_000,
            vpc_peering_accept_ms: 5_000,
            aurora_cluster_create_ms: 300_000,
            aurora_instance_create_ms: 600_000,
            dynamodb_table_create_ms: 30_000,
            alb_create_ms: 150_000,
            acm_validation_ms: 120_000,
            health_check_interval_ms: 10_000,
            health_check_failure_threshold: 3,
            health_check_extra_ms: 6_000,
            health_check_metric_period_ms: 60_000,
            dns_alias_ttl_ms: 60_000,
            dns_insync_ms: 60_000,
            aurora_replication_lag_ms: 800,
            aurora_managed_failover_ms: 60_000,
            aurora_switchover_ms: 60_000,
            aurora_lag_metric_period_ms: 60_000,
            eventbridge_to_sqs_p50_ms: 16,
            eventbridge_to_sqs_p99_ms: 105,
            sqs_long_poll_max_ms: 20_000,
            instance_launch_cold_ms: 240_000,
            instance_launch_warm_ms: 36_000,
            alb_healthy_checks_to_serve: 1,
            eventbridge_schedule_min_ms: 60_000,
            route53_checkers: 15,
            route53_healthy_share_pct: 18,
            route53_connect_timeout_ms: 4_000,
            app_write_interval_ms: 100,
            app_max_quote_age_ms: 30_000,
            flapping_period_ms: 80_000,
            lag_spike_ms: 120_000,
            asg_launch_retry_ms: 10_000,
            probe_timeout_ms: 6_000,
            health_check_standard_interval_ms: 30_000,
            alarm_evaluation_extra_periods: 2,
            service_metric_period_ms: 60_000,
            metric_retention_ms: 3 * 3_600_000,
        }
    }
}
