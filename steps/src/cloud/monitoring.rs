//! Knowing and telling: `sns.topic`, `cloudwatch.alarms`, `lambda.replication_monitor`,
//! `events.alarm_queue` and `cloudwatch.dashboard`.

use std::sync::Arc;

use drflow_engine::{Outputs, Registry, ValueType};
use serde_json::{Value, json};

use super::checks::{CloudSpec, ROLES};
use super::framework::{BodyFuture, CloudStep, Cx, Desired, Names, Role, cloud_spec};
use super::input;
use crate::backend::{Kind, Resource};
use crate::regions::AWS_REGION;
use crate::target::LazyBackend;

/// The lag above which the RPO budget (1 minute) is at risk: 30 s, in milliseconds.
pub const LAG_THRESHOLD_MS: i64 = 30_000;
/// The Lambda's code, shipped in `steps/assets/`.
pub const MONITOR_CODE: &str = include_str!("../../assets/replication_monitor.py");

/// The type part of every alarm drflow makes, each named `<type>-<env_suffix>`: those of
/// `cloudwatch.alarms`, and the standby's fast scale-out alarm of `autoscaling.group`. A test
/// provisions two environments and checks that each alarm reaches its own environment's rule,
/// so an alarm added elsewhere without being listed here is caught.
pub(crate) const ALARM_TYPES: [&str; 7] = [
    "health-check-alarm-primary",
    "health-check-alarm-standby",
    "regional-outage-alarm",
    "replication-lag-alarm",
    "replication-lag-fast-alarm",
    "unhealthy-hosts-alarm",
    "fast-scale-out-alarm",
];

/// The event pattern of environment `suffix`'s alarm rule: state changes of its own alarms,
/// named exactly. Not a `suffix` match on `-<env_suffix>`: every alarm of `prod-eu` also ends
/// with `-eu`, so environment `eu` would react to `prod-eu`'s regional outage.
pub(crate) fn alarm_event_pattern(suffix: &str) -> Value {
    let names: Vec<String> = ALARM_TYPES
        .iter()
        .map(|ty| format!("{ty}-{suffix}"))
        .collect();
    json!({
        "source": ["aws.cloudwatch"],
        "detail-type": ["CloudWatch Alarm State Change"],
        "detail": {"alarmName": names},
    })
}

/// The only region where Route 53 publishes health check metrics.
const HEALTH_METRICS_REGIONS: &[&str] = &["us-east-1"];

pub(crate) fn register(reg: &mut Registry, backend: &Arc<LazyBackend>) {
    let sns = cloud_spec("sns.topic", "A KMS-encrypted SNS topic for incident notifications in one region, that CloudWatch and EventBridge may publish to, with an optional e-mail subscription for the ops team.")
        .required("region", ValueType::String, "AWS region.")
        .format(AWS_REGION)
        .required("role", ValueType::String, "primary or standby.")
        .one_of(ROLES)
        .required("kms_key_arn", ValueType::String, "KMS key of that region.")
        .optional("email", ValueType::String, json!(""), "Ops e-mail to subscribe (confirmation pending until they click); empty = none.")
        .format(drflow_engine::formats::EMAIL)
        .empty_means_none()
        .output("topic_arn", ValueType::String, "The topic.")
        .output("subscription_arn", ValueType::String, "The e-mail subscription (empty if none).");
    reg.register(CloudStep::boxed(
        sns,
        &[(Kind::SnsTopic, "sns-topic")],
        backend,
        run_sns,
    ));

    let alarms = cloud_spec(
        "cloudwatch.alarms",
        "The alarms of the failover plan, each notifying SNS in its region: a health check alarm \
         per region (HealthCheckStatus < 1 for 3 periods, in the health metrics region where \
         Route 53 publishes), a regional-outage composite (primary failing while the standby is \
         healthy), replication lag > 30 s (AuroraGlobalDBReplicationLag, and the monitor's 30 s \
         metric), and unhealthy ALB hosts per region.",
    )
    .required("primary_region", ValueType::String, "Primary region.")
    .format(AWS_REGION)
    .required("standby_region", ValueType::String, "Standby region.")
    .format(AWS_REGION)
    .optional(
        "health_metrics_region",
        ValueType::String,
        json!("us-east-1"),
        "Where Route 53 publishes HealthCheckStatus: only us-east-1 (Route 53 developer guide, \
         \"Monitoring health checks using CloudWatch\").",
    )
    // Route 53 publishes health check metrics in us-east-1 only: an alarm anywhere else would
    // never see a datapoint and never fire.
    .one_of(HEALTH_METRICS_REGIONS)
    .required(
        "primary_health_check_id",
        ValueType::String,
        "Primary health check.",
    )
    .required(
        "standby_health_check_id",
        ValueType::String,
        "Standby health check.",
    )
    .required(
        "primary_topic_arn",
        ValueType::String,
        "SNS topic in the primary region.",
    )
    .required(
        "standby_topic_arn",
        ValueType::String,
        "SNS topic in the standby region.",
    )
    .required(
        "health_metrics_topic_arn",
        ValueType::String,
        "SNS topic in the health metrics region.",
    )
    .required(
        "standby_cluster_id",
        ValueType::String,
        "The secondary Aurora cluster (lag is published for it).",
    )
    .required(
        "primary_alb_arn_suffix",
        ValueType::String,
        "Primary ALB dimension.",
    )
    .required(
        "primary_target_group_arn_suffix",
        ValueType::String,
        "Primary target group dimension.",
    )
    .required(
        "standby_alb_arn_suffix",
        ValueType::String,
        "Standby ALB dimension.",
    )
    .required(
        "standby_target_group_arn_suffix",
        ValueType::String,
        "Standby target group dimension.",
    )
    .optional(
        "metric_namespace",
        ValueType::String,
        json!("DrFlow/Trading"),
        "Namespace of the monitor's metric.",
    )
    .output(
        "health_check_alarm_arn",
        ValueType::String,
        "Primary health check alarm.",
    )
    .output(
        "regional_outage_alarm_arn",
        ValueType::String,
        "The composite alarm.",
    )
    .output(
        "replication_lag_alarm_arn",
        ValueType::String,
        "Replication lag alarm.",
    )
    .output("alarm_names", ValueType::List, "Every alarm's name.")
    .distinct_regions("primary_region", "standby_region");
    reg.register(CloudStep::boxed(alarms, ALARM_NAMES, backend, run_alarms));

    let lambda = cloud_spec(
        "lambda.replication_monitor",
        "The replication-lag monitor: a Python Lambda (code in steps/assets/) that samples the \
         global database's lag twice per invocation, 30 s apart, and publishes it as a \
         high-resolution metric; run every minute by an EventBridge schedule.",
    )
    .required(
        "region",
        ValueType::String,
        "Region to run in (the standby, where lag is published).",
    )
    .format(AWS_REGION)
    .required(
        "role_arn",
        ValueType::String,
        "Execution role from iam.app_roles.",
    )
    .required(
        "global_cluster_id",
        ValueType::String,
        "The global cluster.",
    )
    .required(
        "secondary_cluster_id",
        ValueType::String,
        "The secondary cluster.",
    )
    .optional(
        "metric_namespace",
        ValueType::String,
        json!("DrFlow/Trading"),
        "Namespace to publish to.",
    )
    .optional(
        "sample_interval_seconds",
        ValueType::Int,
        json!(30),
        "Seconds between samples.",
    )
    .at_least(1.0)
    .optional(
        "samples",
        ValueType::Int,
        json!(2),
        "Samples per invocation.",
    )
    .at_least(1.0)
    .rule(
        "An invocation (`samples` samples `sample_interval_seconds` apart, plus 15 s) fits \
         Lambda's 900 s limit.",
        &["samples", "sample_interval_seconds"],
        |input| {
            let n = |k: &str| input.get(k).and_then(Value::as_i64).unwrap_or(0);
            let (samples, interval) = (n("samples"), n("sample_interval_seconds"));
            let needed = interval
                .saturating_mul(samples.saturating_sub(1))
                .saturating_add(15);
            if needed <= 900 {
                return Ok(());
            }
            Err(drflow_engine::RuleViolation::at(
                "samples",
                format!(
                    "{samples} samples {interval} s apart take {needed} s per invocation, more \
                     than the 900 s a Lambda function may run"
                ),
            )
            .hint("take fewer samples, or closer together"))
        },
    )
    .output("function_arn", ValueType::String, "The function.")
    .output("function_name", ValueType::String, "Its name.")
    .output(
        "schedule_rule_arn",
        ValueType::String,
        "The 1-minute schedule.",
    );
    reg.register(CloudStep::boxed(
        lambda,
        &[
            (Kind::LambdaFunction, "replication-monitor"),
            (Kind::EventRule, "replication-monitor-schedule"),
        ],
        backend,
        run_lambda,
    ));

    let queue = cloud_spec(
        "events.alarm_queue",
        "The daemon's event feed: an encrypted SQS queue (with a dead-letter queue) in the queue \
         region, an EventBridge rule there for `CloudWatch Alarm State Change` of this \
         environment's alarms (selected by their exact names, so that no other environment's \
         alarm matches), and in every other region with alarms a rule forwarding those \
         events to the queue region's bus. The queue lives in the standby region so that it \
         outlives an outage of the primary.",
    )
    .required(
        "queue_region",
        ValueType::String,
        "Region of the queue (the standby).",
    )
    .format(AWS_REGION)
    .required(
        "source_regions",
        ValueType::List,
        "Regions whose alarm events are collected (duplicates ignored).",
    )
    .min_len(1)
    .format(AWS_REGION)
    .required(
        "kms_key_arn",
        ValueType::String,
        "KMS key in the queue region.",
    )
    .output(
        "queue_url",
        ValueType::String,
        "The queue the daemon reads.",
    )
    .output("queue_arn", ValueType::String, "Its ARN.")
    .output(
        "dead_letter_queue_url",
        ValueType::String,
        "Where unprocessable events end up.",
    )
    .output("rule_arns", ValueType::List, "Every rule.");
    reg.register(CloudStep::boxed(queue, QUEUE_NAMES, backend, run_queue));

    let dash = cloud_spec(
        "cloudwatch.dashboard",
        "A CloudWatch dashboard of failover readiness: health check status of both regions, \
         replication lag against the 30 s budget, healthy hosts and in-service capacity per \
         region, and the alarms' states.",
    )
    .required(
        "region",
        ValueType::String,
        "Region whose console URL is given (the standby: reachable during a primary outage).",
    )
    .format(AWS_REGION)
    .required("primary_region", ValueType::String, "Primary region.")
    .format(AWS_REGION)
    .required("standby_region", ValueType::String, "Standby region.")
    .format(AWS_REGION)
    .optional(
        "health_metrics_region",
        ValueType::String,
        json!("us-east-1"),
        "Where Route 53 publishes HealthCheckStatus: only us-east-1 (Route 53 developer guide, \
         \"Monitoring health checks using CloudWatch\").",
    )
    // Route 53 publishes health check metrics in us-east-1 only: an alarm anywhere else would
    // never see a datapoint and never fire.
    .one_of(HEALTH_METRICS_REGIONS)
    .required(
        "primary_health_check_id",
        ValueType::String,
        "Primary health check.",
    )
    .required(
        "standby_health_check_id",
        ValueType::String,
        "Standby health check.",
    )
    .required(
        "standby_cluster_id",
        ValueType::String,
        "Secondary Aurora cluster.",
    )
    .required(
        "primary_target_group_arn_suffix",
        ValueType::String,
        "Primary target group dimension.",
    )
    .required(
        "primary_alb_arn_suffix",
        ValueType::String,
        "Primary ALB dimension.",
    )
    .required(
        "standby_target_group_arn_suffix",
        ValueType::String,
        "Standby target group dimension.",
    )
    .required(
        "standby_alb_arn_suffix",
        ValueType::String,
        "Standby ALB dimension.",
    )
    .required("primary_asg_name", ValueType::String, "Primary ASG.")
    .required("standby_asg_name", ValueType::String, "Standby ASG.")
    .required("alarm_arns", ValueType::List, "Alarms to show.")
    .optional(
        "metric_namespace",
        ValueType::String,
        json!("DrFlow/Trading"),
        "The monitor's namespace.",
    )
    .output("dashboard_name", ValueType::String, "The dashboard.")
    .output("dashboard_url", ValueType::String, "Its console URL.")
    .distinct_regions("primary_region", "standby_region");
    reg.register(CloudStep::boxed(
        dash,
        &[(Kind::Dashboard, "failover-dashboard")],
        backend,
        run_dashboard,
    ));
}

/// The names `cloudwatch.alarms` builds.
const ALARM_NAMES: Names = &[
    (Kind::MetricAlarm, "health-check-alarm-primary"),
    (Kind::MetricAlarm, "health-check-alarm-standby"),
    (Kind::CompositeAlarm, "regional-outage-alarm"),
    (Kind::MetricAlarm, "replication-lag-alarm"),
    (Kind::MetricAlarm, "replication-lag-fast-alarm"),
    (Kind::MetricAlarm, "unhealthy-hosts-alarm"),
];

/// The names `events.alarm_queue` builds: the rule has the same name in every region.
const QUEUE_NAMES: Names = &[
    (Kind::EventRule, "alarm-state-change"),
    (Kind::SqsQueue, "alarm-events-dlq"),
    (Kind::SqsQueue, "alarm-events"),
    (Kind::IamRole, "events-forward-role"),
];

fn run_sns<'a>(cx: &'a mut Cx, p: &'a Outputs) -> BodyFuture<'a> {
    Box::pin(async move {
        let region = input::str(p, "region")?;
        let role = input::role(p)?;
        let name = cx.name("sns-topic");
        let tags = cx.tags(&name, role);
        let topic = cx
            .ensure(
                Desired::new(Kind::SnsTopic, region, &name, json!({
                    "display_name": format!("drflow {} incidents", cx.suffix),
                    "kms_master_key_id": input::str(p, "kms_key_arn")?,
                    "policy": {
                        "Version": "2012-10-17",
                        "Statement": [{
                            "Sid": "AlarmsAndEventsPublish",
                            "Effect": "Allow",
                            "Principal": {"Service": ["cloudwatch.amazonaws.com", "events.amazonaws.com"]},
                            "Action": "sns:Publish",
                            "Resource": format!("arn:aws:sns:{region}:*:{name}"),
                        }]
                    },
                }))
                .tags(tags),
            )
            .await?;
        let mut sub_arn = String::new();
        if let Some(email) = input::opt_str(p, "email") {
            let tags = cx.tags(&name, role);
            let sub = cx
                .ensure(
                    Desired::child(
                        Kind::SnsSubscription,
                        region,
                        &topic.arn,
                        format!("email:{email}"),
                        json!({
                            "topic_arn": topic.arn,
                            "protocol": "email",
                            "endpoint": email,
                        }),
                    )
                    .immutable(&["topic_arn", "protocol", "endpoint"])
                    .deps([topic.id.clone()])
                    .tags(tags),
                )
                .await?;
            sub_arn = sub.arn;
        }
        let mut out = Outputs::new();
        out.insert("topic_arn".into(), json!(topic.arn));
        out.insert("subscription_arn".into(), json!(sub_arn));
        Ok(out)
    })
}

/// A metric alarm's spec with the defaults every alarm here shares.
fn metric_alarm(description: &str, metric: Value, topic: &str) -> Value {
    let mut spec = json!({
        "alarm_description": description,
        "actions_enabled": true,
        "alarm_actions": [topic],
        "ok_actions": [topic],
        "insufficient_data_actions": [],
    });
    crate::json::merge(&mut spec, &metric);
    spec
}

async fn alarm(
    cx: &mut Cx,
    region: &str,
    ty: &str,
    role: Role,
    spec: Value,
    deps: Vec<String>,
) -> Result<Resource, drflow_engine::StepError> {
    let name = cx.name(ty);
    let tags = cx.tags(&name, role);
    cx.ensure(
        Desired::new(Kind::MetricAlarm, region, &name, spec)
            .deps(deps)
            .tags(tags),
    )
    .await
}

fn run_alarms<'a>(cx: &'a mut Cx, p: &'a Outputs) -> BodyFuture<'a> {
    Box::pin(async move {
        let primary = input::str(p, "primary_region")?;
        let standby = input::str(p, "standby_region")?;
        let metrics = input::str(p, "health_metrics_region")?;
        let metrics_topic = input::str(p, "health_metrics_topic_arn")?;
        let mut names = Vec::new();
        let mut hc_alarms = Vec::new();
        for (role, side) in [(Role::Primary, "primary"), (Role::Standby, "standby")] {
            let hc = input::str(p, &format!("{side}_health_check_id"))?;
            let spec = metric_alarm(
                &format!("{side} region failed its application health check 3 times in a row"),
                json!({
                    "namespace": "AWS/Route53",
                    "metric_name": "HealthCheckStatus",
                    "dimensions": {"HealthCheckId": hc},
                    "statistic": "Minimum",
                    "period": 60,
                    // Two failed minutes: Route 53's own threshold (3 checks in a row) already
                    // confirms each failure, and a third minute would put a region outage's
                    // recovery past a 5-minute RTO (docs/drills.md).
                    "evaluation_periods": 2,
                    "datapoints_to_alarm": 2,
                    "threshold": 1,
                    "comparison_operator": "LessThanThreshold",
                    "treat_missing_data": "breaching",
                }),
                metrics_topic,
            );
            let a = alarm(
                cx,
                metrics,
                &format!("health-check-alarm-{side}"),
                role,
                spec,
                vec![hc.to_string(), metrics_topic.to_string()],
            )
            .await?;
            names.push(a.name.clone());
            hc_alarms.push(a);
        }
        // Composite alarms only combine alarms of their own region, which is why both health
        // check alarms live in the health metrics region.
        let name = cx.name("regional-outage-alarm");
        let tags = cx.tags(&name, Role::Primary);
        let rule = format!(
            "ALARM(\"{}\") AND OK(\"{}\")",
            hc_alarms[0].name, hc_alarms[1].name
        );
        let composite = cx
            .ensure(
                Desired::new(Kind::CompositeAlarm, metrics, &name, json!({
                    "alarm_description": "Regional outage: the primary fails its health check while the standby passes; fail over",
                    "alarm_rule": rule,
                    "actions_enabled": true,
                    "alarm_actions": [metrics_topic],
                    "ok_actions": [metrics_topic],
                }))
                .deps([hc_alarms[0].id.clone(), hc_alarms[1].id.clone()])
                .tags(tags),
            )
            .await?;
        names.push(composite.name.clone());

        let cluster = input::str(p, "standby_cluster_id")?;
        let standby_topic = input::str(p, "standby_topic_arn")?;
        let lag = alarm(
            cx,
            standby,
            "replication-lag-alarm",
            Role::Standby,
            metric_alarm(
                "Aurora Global Database replication lag above 30 s: the 1-minute RPO is at risk",
                json!({
                    "namespace": "AWS/RDS",
                    "metric_name": "AuroraGlobalDBReplicationLag",
                    "dimensions": {"DBClusterIdentifier": cluster},
                    "statistic": "Maximum",
                    "period": 60,
                    "evaluation_periods": 1,
                    "threshold": LAG_THRESHOLD_MS,
                    "comparison_operator": "GreaterThanThreshold",
                    "treat_missing_data": "missing",
                }),
                standby_topic,
            ),
            vec![standby_topic.to_string()],
        )
        .await?;
        names.push(lag.name.clone());
        let fast = alarm(
            cx,
            standby,
            "replication-lag-fast-alarm",
            Role::Standby,
            metric_alarm(
                "Replication lag above 30 s in the monitor's 30-second samples",
                json!({
                    "namespace": input::str(p, "metric_namespace")?,
                    "metric_name": "ReplicationLagMs",
                    "dimensions": {"DBClusterIdentifier": cluster},
                    "statistic": "Maximum",
                    "period": 30,
                    "evaluation_periods": 1,
                    "threshold": LAG_THRESHOLD_MS,
                    "comparison_operator": "GreaterThanThreshold",
                    "treat_missing_data": "missing",
                }),
                standby_topic,
            ),
            vec![standby_topic.to_string()],
        )
        .await?;
        names.push(fast.name.clone());

        for (role, side, region) in [
            (Role::Primary, "primary", primary),
            (Role::Standby, "standby", standby),
        ] {
            let topic = input::str(p, &format!("{side}_topic_arn"))?;
            let spec = metric_alarm(
                &format!("{side} region has unhealthy targets behind its ALB"),
                json!({
                    "namespace": "AWS/ApplicationELB",
                    "metric_name": "UnHealthyHostCount",
                    "dimensions": {
                        "TargetGroup": input::str(p, &format!("{side}_target_group_arn_suffix"))?,
                        "LoadBalancer": input::str(p, &format!("{side}_alb_arn_suffix"))?,
                    },
                    "statistic": "Maximum",
                    "period": 60,
                    "evaluation_periods": 3,
                    "datapoints_to_alarm": 3,
                    "threshold": 0,
                    "comparison_operator": "GreaterThanThreshold",
                    "treat_missing_data": "notBreaching",
                }),
                topic,
            );
            let a = alarm(
                cx,
                region,
                "unhealthy-hosts-alarm",
                role,
                spec,
                vec![topic.to_string()],
            )
            .await?;
            names.push(format!("{} ({region})", a.name));
        }
        let mut out = Outputs::new();
        out.insert("health_check_alarm_arn".into(), json!(hc_alarms[0].arn));
        out.insert("regional_outage_alarm_arn".into(), json!(composite.arn));
        out.insert("replication_lag_alarm_arn".into(), json!(lag.arn));
        out.insert("alarm_names".into(), json!(names));
        Ok(out)
    })
}

/// A short, stable fingerprint of the code, so a changed asset shows as drift.
pub fn code_sha(code: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in code.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

fn run_lambda<'a>(cx: &'a mut Cx, p: &'a Outputs) -> BodyFuture<'a> {
    Box::pin(async move {
        let region = input::str(p, "region")?;
        let role_arn = input::str(p, "role_arn")?;
        let interval = input::int(p, "sample_interval_seconds")?;
        let samples = input::int(p, "samples")?;
        let name = cx.name("replication-monitor");
        let rule_name = cx.name("replication-monitor-schedule");
        let tags = cx.tags(&name, Role::Standby);
        let function = cx
            .ensure(
                Desired::new(Kind::LambdaFunction, region, &name, json!({
                    "runtime": "python3.12",
                    "handler": "replication_monitor.handler",
                    "role": role_arn,
                    "architectures": ["arm64"],
                    "memory_size": 128,
                    // Two samples 30 s apart plus the API calls.
                    "timeout": interval * (samples - 1).max(0) + 15,
                    "code": {"filename": "replication_monitor.py", "sha": code_sha(MONITOR_CODE), "source": MONITOR_CODE},
                    "environment": {
                        "GLOBAL_CLUSTER_ID": input::str(p, "global_cluster_id")?,
                        "SECONDARY_CLUSTER_ID": input::str(p, "secondary_cluster_id")?,
                        "METRIC_NAMESPACE": input::str(p, "metric_namespace")?,
                        "SAMPLES": samples.to_string(),
                        "SAMPLE_INTERVAL_SECONDS": interval.to_string(),
                    },
                    "invoke_permissions": [{"principal": "events.amazonaws.com", "source_rule": rule_name}],
                }))
                .tags(tags),
            )
            .await?;
        let tags = cx.tags(&rule_name, Role::Standby);
        let rule = cx
            .ensure(
                Desired::new(Kind::EventRule, region, &rule_name, json!({
                    "description": "Run the replication-lag monitor every minute (EventBridge's shortest schedule)",
                    "schedule_expression": "rate(1 minute)",
                    "state": "ENABLED",
                    "targets": [{"id": "replication-monitor", "arn": function.arn}],
                }))
                .deps([function.id.clone()])
                .tags(tags),
            )
            .await?;
        let mut out = Outputs::new();
        out.insert("function_arn".into(), json!(function.arn));
        out.insert("function_name".into(), json!(function.name));
        out.insert("schedule_rule_arn".into(), json!(rule.arn));
        Ok(out)
    })
}

fn run_queue<'a>(cx: &'a mut Cx, p: &'a Outputs) -> BodyFuture<'a> {
    Box::pin(async move {
        let queue_region = input::str(p, "queue_region")?;
        let key = input::str(p, "kms_key_arn")?;
        let mut sources: Vec<String> = Vec::new();
        for r in input::nonempty_strings(p, "source_regions")? {
            if r != queue_region && !sources.contains(&r) {
                sources.push(r);
            }
        }
        let rule_name = cx.name("alarm-state-change");
        let pattern = alarm_event_pattern(&cx.suffix);
        let dlq_name = cx.name("alarm-events-dlq");
        let tags = cx.tags(&dlq_name, Role::Standby);
        let dlq = cx
            .ensure(
                Desired::new(
                    Kind::SqsQueue,
                    queue_region,
                    &dlq_name,
                    json!({
                        "kms_master_key_id": key,
                        "message_retention_seconds": 1_209_600,
                    }),
                )
                .tags(tags),
            )
            .await?;
        let name = cx.name("alarm-events");
        let tags = cx.tags(&name, Role::Standby);
        let queue = cx
            .ensure(
                Desired::new(Kind::SqsQueue, queue_region, &name, json!({
                    "kms_master_key_id": key,
                    "kms_data_key_reuse_period_seconds": 300,
                    // Events must wait for a daemon that is down for a while.
                    "message_retention_seconds": 1_209_600,
                    "visibility_timeout_seconds": 300,
                    "receive_wait_time_seconds": 20,
                    "redrive_policy": {"dead_letter_target_arn": dlq.arn, "max_receive_count": 5},
                    "policy": {
                        "Version": "2012-10-17",
                        "Statement": [{
                            "Sid": "EventBridgeSend",
                            "Effect": "Allow",
                            "Principal": {"Service": "events.amazonaws.com"},
                            "Action": "sqs:SendMessage",
                            "Resource": format!("arn:aws:sqs:{queue_region}:*:{name}"),
                            "Condition": {"ArnLike": {"aws:SourceArn": format!("arn:aws:events:{queue_region}:*:rule/{rule_name}")}},
                        }]
                    },
                }))
                .deps([dlq.id.clone()])
                .tags(tags),
            )
            .await?;
        let tags = cx.tags(&rule_name, Role::Standby);
        let rule = cx
            .ensure(
                Desired::new(Kind::EventRule, queue_region, &rule_name, json!({
                    "description": "CloudWatch alarm state changes to the drflow daemon's queue",
                    "event_pattern": pattern,
                    "state": "ENABLED",
                    "targets": [{"id": "drflow-daemon", "arn": queue.arn}],
                }))
                .deps([queue.id.clone()])
                .tags(tags),
            )
            .await?;
        let mut rules = vec![rule.arn.clone()];
        if !sources.is_empty() {
            let account = queue.arn.split(':').nth(4).unwrap_or("*").to_string();
            let bus = format!("arn:aws:events:{queue_region}:{account}:event-bus/default");
            let role = cx
                .ensure_service_role(
                    "events-forward-role",
                    Role::Primary,
                    "events.amazonaws.com",
                    "forward",
                    json!({
                        "Version": "2012-10-17",
                        "Statement": [{"Effect": "Allow", "Action": "events:PutEvents", "Resource": bus}]
                    }),
                )
                .await?;
            for region in &sources {
                let tags = cx.tags(&rule_name, Role::Primary);
                let r = cx
                    .ensure(
                        Desired::new(Kind::EventRule, region, &rule_name, json!({
                            "description": format!("Forward alarm state changes to {queue_region}, where the daemon's queue is"),
                            "event_pattern": pattern,
                            "state": "ENABLED",
                            "targets": [{"id": "to-queue-region", "arn": bus, "role_arn": role.arn}],
                        }))
                        .deps([role.id.clone()])
                        .tags(tags),
                    )
                    .await?;
                rules.push(r.arn);
            }
        }
        let mut out = Outputs::new();
        out.insert("queue_url".into(), json!(queue.attr_str("url")));
        out.insert("queue_arn".into(), json!(queue.arn));
        out.insert("dead_letter_queue_url".into(), json!(dlq.attr_str("url")));
        out.insert("rule_arns".into(), json!(rules));
        Ok(out)
    })
}

fn run_dashboard<'a>(cx: &'a mut Cx, p: &'a Outputs) -> BodyFuture<'a> {
    Box::pin(async move {
        let region = input::str(p, "region")?;
        let primary = input::str(p, "primary_region")?;
        let standby = input::str(p, "standby_region")?;
        let metrics = input::str(p, "health_metrics_region")?;
        let s = |k: &str| input::str(p, k).map(str::to_string);
        let cluster = s("standby_cluster_id")?;
        let ns = s("metric_namespace")?;
        let widget = |x: u32, y: u32, title: &str, region: &str, metrics: Value, extra: Value| {
            let mut props = json!({"title": title, "region": region, "view": "timeSeries", "stat": "Minimum", "period": 60, "metrics": metrics});
            crate::json::merge(&mut props, &extra);
            json!({"type": "metric", "x": x, "y": y, "width": 12, "height": 6, "properties": props})
        };
        let body = json!({"widgets": [
            {"type": "text", "x": 0, "y": 0, "width": 24, "height": 2, "properties": {"markdown":
                format!("# Failover readiness ({})\nPrimary **{primary}**, standby **{standby}**. Ready when: the standby health check is 1, replication lag is under 30 s, the standby has healthy hosts. RTO target 5 min, RPO target 1 min.", cx.suffix)}},
            widget(0, 2, "Health check status (1 = healthy)", metrics, json!([
                ["AWS/Route53", "HealthCheckStatus", "HealthCheckId", s("primary_health_check_id")?, {"label": "primary"}],
                ["AWS/Route53", "HealthCheckStatus", "HealthCheckId", s("standby_health_check_id")?, {"label": "standby"}],
            ]), json!({"yAxis": {"left": {"min": 0, "max": 1}}})),
            widget(12, 2, "Replication lag (ms), budget 30 s", standby, json!([
                ["AWS/RDS", "AuroraGlobalDBReplicationLag", "DBClusterIdentifier", cluster, {"stat": "Maximum"}],
                ["AWS/RDS", "AuroraGlobalDBRPOLag", "DBClusterIdentifier", cluster, {"stat": "Maximum"}],
                [ns, "ReplicationLagMs", "DBClusterIdentifier", cluster, {"stat": "Maximum", "period": 30}],
            ]), json!({"annotations": {"horizontal": [{"label": "30 s", "value": LAG_THRESHOLD_MS}]}})),
            widget(0, 8, "Healthy hosts", primary, json!([
                ["AWS/ApplicationELB", "HealthyHostCount", "TargetGroup", s("primary_target_group_arn_suffix")?, "LoadBalancer", s("primary_alb_arn_suffix")?, {"label": "primary", "region": primary}],
                ["AWS/ApplicationELB", "HealthyHostCount", "TargetGroup", s("standby_target_group_arn_suffix")?, "LoadBalancer", s("standby_alb_arn_suffix")?, {"label": "standby", "region": standby}],
            ]), json!({})),
            widget(12, 8, "In-service instances", primary, json!([
                ["AWS/AutoScaling", "GroupInServiceInstances", "AutoScalingGroupName", s("primary_asg_name")?, {"label": "primary", "region": primary}],
                ["AWS/AutoScaling", "GroupInServiceInstances", "AutoScalingGroupName", s("standby_asg_name")?, {"label": "standby", "region": standby}],
            ]), json!({"stat": "Maximum"})),
            {"type": "alarm", "x": 0, "y": 14, "width": 24, "height": 4, "properties": {
                "title": "Failover alarms", "alarms": input::strings(p, "alarm_arns")?}},
        ]});
        let name = cx.name("failover-dashboard");
        let tags = cx.tags(&name, Role::Primary);
        let dash = cx
            .ensure(
                Desired::new(
                    Kind::Dashboard,
                    region,
                    &name,
                    json!({"dashboard_body": body}),
                )
                .tags(tags),
            )
            .await?;
        let mut out = Outputs::new();
        out.insert("dashboard_name".into(), json!(dash.name));
        out.insert("dashboard_url".into(), json!(format!(
            "https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#dashboards:name={}",
            dash.name
        )));
        Ok(out)
    })
}
