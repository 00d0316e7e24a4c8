//! `compute.launch_template` and `autoscaling.group`: the instances that serve trading, sized
//! per role (primary 2, standby 1 with a warm pool), and how they scale.

use std::sync::Arc;

use drflow_engine::{Outputs, Registry, ValueType};
use serde_json::json;

use super::checks::{EC2_INSTANCE_TYPE, ROLES};
use super::framework::{BodyFuture, CloudStep, Cx, Desired, cloud_spec};
use super::input;
use crate::backend::Kind;
use crate::regions::AWS_REGION;
use crate::target::LazyBackend;

/// The user data script shipped in `steps/assets/`, with `__PLACEHOLDER__`s.
pub const USER_DATA_TEMPLATE: &str = include_str!("../../assets/trading-health.sh");

/// The SSM parameter that always names the latest Amazon Linux 2 AMI of a region.
pub const AL2_SSM_PARAMETER: &str = "/aws/service/ami-amazon-linux-latest/amzn2-ami-hvm-x86_64-gp2";

pub(crate) fn register(reg: &mut Registry, backend: &Arc<LazyBackend>) {
    let lt = cloud_spec(
        "compute.launch_template",
        "A launch template: Amazon Linux 2 resolved from its public SSM parameter, t3.medium, the \
         least-privilege instance profile, IMDSv2 only, an encrypted root volume, and user data \
         that serves the trading health endpoint (quote timestamp and DB connectivity).",
    )
    .required("region", ValueType::String, "AWS region.")
    .format(AWS_REGION)
    .required("role", ValueType::String, "primary or standby.")
    .one_of(ROLES)
    .required(
        "instance_profile_arn",
        ValueType::String,
        "Instance profile from iam.app_roles.",
    )
    .required("app_sg_id", ValueType::String, "The app security group.")
    .required(
        "db_endpoint",
        ValueType::String,
        "Aurora endpoint the health check tests (the cluster endpoint in this region).",
    )
    .required("table_name", ValueType::String, "The sessions table.")
    .optional(
        "instance_type",
        ValueType::String,
        json!("t3.medium"),
        "Instance type.",
    )
    .format(EC2_INSTANCE_TYPE)
    .optional(
        "ami_ssm_parameter",
        ValueType::String,
        json!(AL2_SSM_PARAMETER),
        "SSM parameter naming the AMI.",
    )
    .optional(
        "app_port",
        ValueType::Int,
        json!(8443),
        "Port the health endpoint serves HTTPS on.",
    )
    .at_least(1.0)
    .at_most(65535.0)
    .optional(
        "max_quote_age_seconds",
        ValueType::Int,
        json!(30),
        "A quote older than this makes the endpoint report degraded.",
    )
    .at_least(1.0)
    .optional(
        "metric_namespace",
        ValueType::String,
        json!("DrFlow/Trading"),
        "CloudWatch namespace of app metrics.",
    )
    .output("launch_template_id", ValueType::String, "The lt- id.")
    .output("launch_template_name", ValueType::String, "Its name.")
    .output("latest_version", ValueType::Int, "Its latest version.");
    reg.register(CloudStep::boxed(
        lt,
        &[(Kind::LaunchTemplate, "launch-template")],
        backend,
        run_launch_template,
    ));

    let asg = cloud_spec(
        "autoscaling.group",
        "An Auto Scaling group behind the target group with group metrics collection on, a CPU \
         target-tracking policy and, for the standby, a fast step-scaling policy (and its alarm) \
         that the failover runbook can also execute directly. Desired and minimum capacity are \
         set at creation only: failover and failback own them afterwards.",
    )
    .required("region", ValueType::String, "AWS region.")
    .format(AWS_REGION)
    .required("role", ValueType::String, "primary or standby.")
    .one_of(ROLES)
    .required("launch_template_id", ValueType::String, "From compute.launch_template.")
    .required("subnet_ids", ValueType::List, "Private subnets to launch in.")
    .min_len(1)
    .required("target_group_arns", ValueType::List, "Target groups to register with.")
    .required("desired_capacity", ValueType::Int, "Instances at creation (primary 2, standby 1).")
    .at_least(1.0)
    .optional("min_size", ValueType::Int, json!(1), "Minimum size at creation.")
    .at_least(0.0)
    .optional("max_size", ValueType::Int, json!(6), "Maximum size.")
    .at_least(1.0)
    .optional("cpu_target", ValueType::Number, json!(50.0), "Average CPU % target tracking aims for.")
    .at_least(1.0)
    .at_most(100.0)
    .optional("fast_scale_out", ValueType::Bool, json!(false), "Add the step-scaling policy that adds capacity in large steps.")
    .optional("warm_pool_min_size", ValueType::Int, json!(0), "Stopped, pre-initialised instances kept ready (about 36 s to InService instead of about 240 s cold).")
    .at_least(0.0)
    .optional("health_check_grace_seconds", ValueType::Int, json!(120), "Grace period before ELB health counts.")
    .at_least(0.0)
    .rule(
        "`min_size` ≤ `desired_capacity` ≤ `max_size`.",
        &["min_size", "desired_capacity", "max_size"],
        |input| {
            let n = |k: &str| input.get(k).and_then(serde_json::Value::as_i64).unwrap_or(0);
            let (min, desired, max) = (n("min_size"), n("desired_capacity"), n("max_size"));
            if desired > max {
                return Err(drflow_engine::RuleViolation::at(
                    "desired_capacity",
                    format!("a desired capacity of {desired} is more than the group's max_size of {max}"),
                )
                .hint(format!("use at most {max} instances, or raise max_size")));
            }
            if min > desired {
                return Err(drflow_engine::RuleViolation::at(
                    "min_size",
                    format!("a min_size of {min} is more than the desired capacity of {desired}"),
                )
                .hint(format!("use a min_size of at most {desired}")));
            }
            Ok(())
        },
    )
    .output("asg_name", ValueType::String, "The group's name.")
    .output("asg_arn", ValueType::String, "The group's ARN.")
    .output("target_tracking_policy_arn", ValueType::String, "The CPU target-tracking policy.")
    .output("fast_scale_out_policy_arn", ValueType::String, "The step-scaling policy (empty unless fast_scale_out).");
    reg.register(CloudStep::boxed(
        asg,
        &[
            (Kind::AutoScalingGroup, "asg"),
            (Kind::ScalingPolicy, "cpu-target-tracking"),
            (Kind::ScalingPolicy, "fast-scale-out"),
            (Kind::MetricAlarm, "fast-scale-out-alarm"),
        ],
        backend,
        run_asg,
    ));
}

/// Standard base64 (RFC 4648), as EC2 expects user data.
pub fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(T[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The user data script with its placeholders filled in.
pub fn user_data(pairs: &[(&str, String)]) -> String {
    pairs
        .iter()
        .fold(USER_DATA_TEMPLATE.to_string(), |s, (k, v)| {
            s.replace(&format!("__{k}__"), v)
        })
}

fn run_launch_template<'a>(cx: &'a mut Cx, p: &'a Outputs) -> BodyFuture<'a> {
    Box::pin(async move {
        let region = input::str(p, "region")?;
        let role = input::role(p)?;
        let sg = input::str(p, "app_sg_id")?;
        let script = user_data(&[
            ("REGION", region.to_string()),
            ("ROLE", role.tag().to_string()),
            ("DB_ENDPOINT", input::str(p, "db_endpoint")?.to_string()),
            ("TABLE_NAME", input::str(p, "table_name")?.to_string()),
            (
                "METRIC_NAMESPACE",
                input::str(p, "metric_namespace")?.to_string(),
            ),
            ("APP_PORT", input::int(p, "app_port")?.to_string()),
            (
                "MAX_QUOTE_AGE",
                input::int(p, "max_quote_age_seconds")?.to_string(),
            ),
        ]);
        let name = cx.name("launch-template");
        let tags = cx.tags(&name, role);
        let lt = cx
            .ensure(
                Desired::new(Kind::LaunchTemplate, region, &name, json!({
                    "image_id": format!("resolve:ssm:{}", input::str(p, "ami_ssm_parameter")?),
                    "instance_type": input::str(p, "instance_type")?,
                    "iam_instance_profile": {"arn": input::str(p, "instance_profile_arn")?},
                    "vpc_security_group_ids": [sg],
                    "user_data": base64(script.as_bytes()),
                    "metadata_options": {"http_tokens": "required", "http_endpoint": "enabled", "http_put_response_hop_limit": 1},
                    "block_device_mappings": [{
                        "device_name": "/dev/xvda",
                        "ebs": {"volume_size": 20, "volume_type": "gp3", "encrypted": true, "delete_on_termination": true}
                    }],
                    "monitoring": {"enabled": true},
                    "tag_specifications": [{"resource_type": "instance", "tags": tags.clone()}],
                    "update_default_version": true,
                }))
                .deps([sg])
                .tags(tags),
            )
            .await?;
        let mut out = Outputs::new();
        out.insert("launch_template_id".into(), json!(lt.id));
        out.insert("launch_template_name".into(), json!(lt.name));
        let version = lt
            .attrs
            .get("latest_version")
            .and_then(|v| v.as_i64())
            .unwrap_or(1);
        out.insert("latest_version".into(), json!(version));
        Ok(out)
    })
}

/// Every Auto Scaling group metric, collected at 1-minute granularity.
const GROUP_METRICS: [&str; 8] = [
    "GroupMinSize",
    "GroupMaxSize",
    "GroupDesiredCapacity",
    "GroupInServiceInstances",
    "GroupPendingInstances",
    "GroupStandbyInstances",
    "GroupTerminatingInstances",
    "GroupTotalInstances",
];

fn run_asg<'a>(cx: &'a mut Cx, p: &'a Outputs) -> BodyFuture<'a> {
    Box::pin(async move {
        let region = input::str(p, "region")?;
        let role = input::role(p)?;
        let lt = input::str(p, "launch_template_id")?;
        let subnets = input::nonempty_strings(p, "subnet_ids")?;
        let tgs = input::strings(p, "target_group_arns")?;
        let desired = input::int(p, "desired_capacity")?;
        let min = input::int(p, "min_size")?;
        let max = input::int(p, "max_size")?;
        if !(min <= desired && desired <= max) {
            return Err(drflow_engine::StepError::invalid_input(format!(
                "need min_size <= desired_capacity <= max_size, got {min} <= {desired} <= {max}"
            )));
        }
        let warm = input::int(p, "warm_pool_min_size")?;
        let name = cx.name("asg");
        let tags = cx.tags(&name, role);
        let mut spec = json!({
            "launch_template": {"launch_template_id": lt, "version": "$Latest"},
            "vpc_zone_identifier": subnets,
            "target_group_arns": tgs,
            "max_size": max,
            "health_check_type": "ELB",
            "health_check_grace_period": input::int(p, "health_check_grace_seconds")?,
            "default_instance_warmup": 60,
            "metrics_collection": [{"granularity": "1Minute", "metrics": GROUP_METRICS}],
            "capacity_rebalance": true,
            "propagate_tags": true,
        });
        if warm > 0 {
            crate::json::merge(
                &mut spec,
                &json!({"warm_pool": {
                    "min_size": warm,
                    "pool_state": "Stopped",
                    "instance_reuse_policy": {"reuse_on_scale_in": true},
                }}),
            );
        }
        let mut deps = vec![lt.to_string()];
        deps.extend(subnets.iter().cloned());
        deps.extend(tgs.iter().cloned());
        let asg = cx
            .ensure(
                Desired::new(Kind::AutoScalingGroup, region, &name, spec)
                    .create_only(json!({"desired_capacity": desired, "min_size": min}))
                    .deps(deps)
                    .tags(tags),
            )
            .await?;

        let policy_name = cx.name("cpu-target-tracking");
        let tags = cx.tags(&policy_name, role);
        let tracking = cx
            .ensure(
                Desired::child(Kind::ScalingPolicy, region, &asg.name, &policy_name, json!({
                    "auto_scaling_group_name": asg.name,
                    "policy_type": "TargetTrackingScaling",
                    "estimated_instance_warmup": 60,
                    "target_tracking_configuration": {
                        "predefined_metric_specification": {"predefined_metric_type": "ASGAverageCPUUtilization"},
                        "target_value": input::f64_or(p, "cpu_target", 50.0),
                        "disable_scale_in": false,
                    },
                }))
                .deps([asg.id.clone()])
                .tags(tags),
            )
            .await?;

        let mut fast_arn = String::new();
        if input::bool(p, "fast_scale_out")? {
            let policy_name = cx.name("fast-scale-out");
            let tags = cx.tags(&policy_name, role);
            let policy = cx
                .ensure(
                    Desired::child(Kind::ScalingPolicy, region, &asg.name, &policy_name, json!({
                        "auto_scaling_group_name": asg.name,
                        "policy_type": "StepScaling",
                        "adjustment_type": "ChangeInCapacity",
                        "metric_aggregation_type": "Maximum",
                        "estimated_instance_warmup": 30,
                        "step_adjustments": [
                            {"metric_interval_lower_bound": 0, "metric_interval_upper_bound": 20, "scaling_adjustment": 2},
                            {"metric_interval_lower_bound": 20, "scaling_adjustment": 4},
                        ],
                    }))
                    .deps([asg.id.clone()])
                    .tags(tags),
                )
                .await?;
            let alarm_name = cx.name("fast-scale-out-alarm");
            let tags = cx.tags(&alarm_name, role);
            cx.ensure(
                Desired::new(
                    Kind::MetricAlarm,
                    region,
                    &alarm_name,
                    json!({
                        "alarm_description": "Standby taking traffic: add capacity in large steps",
                        "namespace": "AWS/EC2",
                        "metric_name": "CPUUtilization",
                        "dimensions": {"AutoScalingGroupName": asg.name},
                        "statistic": "Average",
                        "period": 60,
                        "evaluation_periods": 1,
                        "threshold": 60,
                        "comparison_operator": "GreaterThanOrEqualToThreshold",
                        "treat_missing_data": "notBreaching",
                        "alarm_actions": [policy.arn],
                    }),
                )
                .deps([policy.id.clone()])
                .tags(tags),
            )
            .await?;
            fast_arn = policy.arn;
        }
        let mut out = Outputs::new();
        out.insert("asg_name".into(), json!(asg.name));
        out.insert("asg_arn".into(), json!(asg.arn));
        out.insert("target_tracking_policy_arn".into(), json!(tracking.arn));
        out.insert("fast_scale_out_policy_arn".into(), json!(fast_arn));
        Ok(out)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn user_data_fills_every_placeholder() {
        let keys = [
            "REGION",
            "ROLE",
            "DB_ENDPOINT",
            "TABLE_NAME",
            "METRIC_NAMESPACE",
            "APP_PORT",
            "MAX_QUOTE_AGE",
        ];
        let pairs: Vec<(&str, String)> = keys.iter().map(|k| (*k, "x".to_string())).collect();
        let script = user_data(&pairs);
        for k in keys {
            assert!(
                !script.contains(&format!("__{k}__")),
                "placeholder {k} left in user data"
            );
        }
        assert!(script.contains("/health/trading"));
    }
}
