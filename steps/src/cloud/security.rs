//! `network.security_groups`, `kms.multi_region_key` and `iam.app_roles`: who may talk to whom,
//! what is encrypted with which key, and the least-privilege roles.

use std::sync::Arc;

use drflow_engine::{Outputs, Registry, ValueType};
use serde_json::json;

use super::checks::{CloudSpec, ROLES};
use super::framework::{BodyFuture, CloudStep, Cx, Desired, Names, Role, cloud_spec};
use super::input;
use crate::backend::{GLOBAL, Kind};
use crate::regions::AWS_REGION;
use crate::target::LazyBackend;

pub(crate) fn register(reg: &mut Registry, backend: &Arc<LazyBackend>) {
    let sgs = cloud_spec(
        "network.security_groups",
        "The three tiers' security groups: ALB (443 and 80 from the internet), app (only from the \
         ALB's group, on the app port), DB (5432 only from the app's group).",
    )
    .required("region", ValueType::String, "AWS region.")
    .format(AWS_REGION)
    .required("role", ValueType::String, "primary or standby.")
    .one_of(ROLES)
    .required("vpc_id", ValueType::String, "The VPC the groups belong to.")
    .optional(
        "app_port",
        ValueType::Int,
        json!(8443),
        "Port the app serves HTTPS on behind the ALB.",
    )
    .at_least(1.0)
    .at_most(65535.0)
    .output("alb_sg_id", ValueType::String, "The ALB's security group.")
    .output(
        "app_sg_id",
        ValueType::String,
        "The instances' security group.",
    )
    .output(
        "db_sg_id",
        ValueType::String,
        "The database's security group.",
    );
    reg.register(CloudStep::boxed(
        sgs,
        &[
            (Kind::SecurityGroup, "alb-sg"),
            (Kind::SecurityGroup, "app-sg"),
            (Kind::SecurityGroup, "db-sg"),
        ],
        backend,
        run_sgs,
    ));

    let kms = cloud_spec(
        "kms.multi_region_key",
        "A multi-region KMS key with automatic rotation in the primary region, its replica in the \
         standby region, and an alias in both. Encrypts Aurora, DynamoDB, S3, SNS and SQS.",
    )
    .required(
        "primary_region",
        ValueType::String,
        "Region of the primary key.",
    )
    .format(AWS_REGION)
    .required(
        "standby_region",
        ValueType::String,
        "Region of the replica key.",
    )
    .format(AWS_REGION)
    .optional(
        "name",
        ValueType::String,
        json!("kms-key"),
        "Type part of the name (`<name>-<suffix>`).",
    )
    .min_len(1)
    .optional(
        "deletion_window_days",
        ValueType::Int,
        json!(7),
        "Days before a deleted key is gone (7 = shortest, so destroy completes).",
    )
    .at_least(7.0)
    .at_most(30.0)
    .optional(
        "extra_regions",
        ValueType::List,
        json!([]),
        "More regions that need a replica (e.g. us-east-1 for Route 53 alarm notifications).",
    )
    .format(AWS_REGION)
    .distinct_regions("primary_region", "standby_region")
    .output(
        "primary_key_arn",
        ValueType::String,
        "ARN of the primary key.",
    )
    .output(
        "standby_key_arn",
        ValueType::String,
        "ARN of the replica key.",
    )
    .output(
        "alias",
        ValueType::String,
        "The alias name in every region.",
    )
    .output(
        "key_arns",
        ValueType::Map,
        "Key ARN by region (primary, standby and extra regions).",
    );
    reg.register(CloudStep::boxed(
        kms,
        &[(Kind::KmsKey, "{name}"), (Kind::KmsAlias, "alias/{name}")],
        backend,
        run_kms,
    ));

    let iam = cloud_spec(
        "iam.app_roles",
        "Least-privilege IAM: the instance role and profile (its DynamoDB table, PutMetricData in \
         its namespace, read of its S3 buckets, its KMS keys) and the monitor Lambda's role (RDS \
         describe, CloudWatch metrics, its own log group).",
    )
    .required(
        "table_arns",
        ValueType::List,
        "DynamoDB table (replica) ARNs the app reads and writes.",
    )
    .required(
        "bucket_arns",
        ValueType::List,
        "S3 bucket ARNs the app reads.",
    )
    .required(
        "kms_key_arns",
        ValueType::List,
        "KMS keys the app decrypts with.",
    )
    .optional(
        "metric_namespace",
        ValueType::String,
        json!("DrFlow/Trading"),
        "The only CloudWatch namespace the roles may publish to.",
    )
    .min_len(1)
    .max_len(255)
    .output("ec2_role_arn", ValueType::String, "The instance role.")
    .output(
        "instance_profile_arn",
        ValueType::String,
        "The instance profile (for launch templates).",
    )
    .output("instance_profile_name", ValueType::String, "Its name.")
    .output(
        "lambda_role_arn",
        ValueType::String,
        "The replication monitor's role.",
    );
    reg.register(CloudStep::boxed(iam, IAM_NAMES, backend, run_iam));
}

/// The names `iam.app_roles` builds.
const IAM_NAMES: Names = &[
    (Kind::IamRole, "ec2-role"),
    (Kind::InstanceProfile, "ec2-instance-profile"),
    (Kind::IamRole, "lambda-role"),
];

fn ingress(port: u16, from: serde_json::Value, why: &str) -> serde_json::Value {
    let mut rule =
        json!({"protocol": "tcp", "from_port": port, "to_port": port, "description": why});
    crate::json::merge(&mut rule, &from);
    rule
}

fn run_sgs<'a>(cx: &'a mut Cx, p: &'a Outputs) -> BodyFuture<'a> {
    Box::pin(async move {
        let region = input::str(p, "region")?;
        let role = input::role(p)?;
        let vpc = input::str(p, "vpc_id")?;
        let app_port = input::int(p, "app_port")? as u16;
        let egress = json!([{"protocol": "-1", "cidr_ipv4": "0.0.0.0/0"}]);
        let internet = json!({"cidr_ipv4": "0.0.0.0/0"});

        let name = cx.name("alb-sg");
        let tags = cx.tags(&name, role);
        let alb = cx
            .ensure(
                Desired::new(
                    Kind::SecurityGroup,
                    region,
                    &name,
                    json!({
                        "vpc_id": vpc,
                        "description": "ALB: HTTPS and the HTTP redirect from the internet",
                        "ingress": [
                            ingress(443, internet.clone(), "HTTPS from the internet"),
                            ingress(80, internet, "HTTP, redirected to HTTPS"),
                        ],
                        "egress": egress,
                    }),
                )
                .immutable(&["vpc_id"])
                .deps([vpc])
                .tags(tags),
            )
            .await?;
        let name = cx.name("app-sg");
        let tags = cx.tags(&name, role);
        let app = cx
            .ensure(
                Desired::new(Kind::SecurityGroup, region, &name, json!({
                    "vpc_id": vpc,
                    "description": "App instances: only from the ALB",
                    "ingress": [ingress(app_port, json!({"source_security_group_id": alb.id}), "HTTPS from the ALB only")],
                    "egress": egress,
                }))
                .immutable(&["vpc_id"])
                .deps([vpc.to_string(), alb.id.clone()])
                .tags(tags),
            )
            .await?;
        let name = cx.name("db-sg");
        let tags = cx.tags(&name, role);
        let db = cx
            .ensure(
                Desired::new(Kind::SecurityGroup, region, &name, json!({
                    "vpc_id": vpc,
                    "description": "Aurora: PostgreSQL only from the app",
                    "ingress": [ingress(5432, json!({"source_security_group_id": app.id}), "PostgreSQL from the app only")],
                    "egress": [],
                }))
                .immutable(&["vpc_id"])
                .deps([vpc.to_string(), app.id.clone()])
                .tags(tags),
            )
            .await?;
        let mut out = Outputs::new();
        out.insert("alb_sg_id".into(), json!(alb.id));
        out.insert("app_sg_id".into(), json!(app.id));
        out.insert("db_sg_id".into(), json!(db.id));
        Ok(out)
    })
}

fn run_kms<'a>(cx: &'a mut Cx, p: &'a Outputs) -> BodyFuture<'a> {
    Box::pin(async move {
        let primary = input::str(p, "primary_region")?;
        let standby = input::str(p, "standby_region")?;
        let window = input::int(p, "deletion_window_days")?;
        let name = cx.name_from("{name}", p);
        let alias = format!("alias/{name}");
        let tags = cx.tags(&name, Role::Primary);
        let key = cx
            .ensure(
                Desired::new(
                    Kind::KmsKey,
                    primary,
                    &name,
                    json!({
                        "description": format!("drflow {name}: data at rest in every region"),
                        "key_spec": "SYMMETRIC_DEFAULT",
                        "key_usage": "ENCRYPT_DECRYPT",
                        "multi_region": true,
                        "enable_key_rotation": true,
                        "rotation_period_days": 365,
                        "pending_window_in_days": window,
                        "enabled": true,
                        // The key policy gives the account root full control and lets these
                        // services use the key on the account's behalf; the aws backend writes it
                        // with the caller's account id.
                        "service_principals": [
                            "cloudwatch.amazonaws.com", "events.amazonaws.com", "sns.amazonaws.com",
                            "sqs.amazonaws.com", "s3.amazonaws.com", "rds.amazonaws.com",
                            "dynamodb.amazonaws.com", "logs.amazonaws.com"
                        ],
                    }),
                )
                .immutable(&["multi_region", "key_spec"])
                .tags(tags),
            )
            .await?;
        let mut keys = vec![(primary.to_string(), key.clone(), Role::Primary)];
        let mut replicas = vec![(standby.to_string(), Role::Standby)];
        for region in input::strings(p, "extra_regions")? {
            if region != primary && !replicas.iter().any(|(r, _)| *r == region) {
                replicas.push((region, Role::Primary));
            }
        }
        for (region, role) in replicas {
            let tags = cx.tags(&name, role);
            let replica = cx
                .ensure(
                    Desired::new(
                        Kind::KmsKey,
                        &region,
                        &name,
                        json!({
                            "description": format!("drflow {name}: replica"),
                            "multi_region": true,
                            "primary_key_arn": key.arn,
                            // Rotation of a multi-region key is driven by its primary and covers
                            // its replicas.
                            "enable_key_rotation": true,
                            "pending_window_in_days": window,
                            "enabled": true,
                        }),
                    )
                    .immutable(&["primary_key_arn"])
                    .deps([key.id.clone()])
                    .tags(tags),
                )
                .await?;
            keys.push((region, replica, role));
        }
        let mut arns = serde_json::Map::new();
        for (region, k, role) in &keys {
            let tags = cx.tags(&alias, *role);
            cx.ensure(
                Desired::new(
                    Kind::KmsAlias,
                    region,
                    &alias,
                    json!({"target_key_id": k.id}),
                )
                .deps([k.id.clone()])
                .tags(tags),
            )
            .await?;
            arns.insert(region.clone(), json!(k.arn));
        }
        let mut out = Outputs::new();
        out.insert("primary_key_arn".into(), json!(key.arn));
        out.insert("standby_key_arn".into(), json!(keys[1].1.arn));
        out.insert("alias".into(), json!(alias));
        out.insert("key_arns".into(), serde_json::Value::Object(arns));
        Ok(out)
    })
}

fn run_iam<'a>(cx: &'a mut Cx, p: &'a Outputs) -> BodyFuture<'a> {
    Box::pin(async move {
        let tables = input::strings(p, "table_arns")?;
        let buckets = input::strings(p, "bucket_arns")?;
        let keys = input::strings(p, "kms_key_arns")?;
        let namespace = input::str(p, "metric_namespace")?;
        let table_resources: Vec<String> = tables
            .iter()
            .flat_map(|t| [t.clone(), format!("{t}/index/*")])
            .collect();
        let objects: Vec<String> = buckets.iter().map(|b| format!("{b}/*")).collect();
        let put_metrics = json!({
            "Effect": "Allow",
            "Action": "cloudwatch:PutMetricData",
            // PutMetricData has no resource ARN; the namespace condition is what scopes it.
            "Resource": "*",
            "Condition": {"StringEquals": {"cloudwatch:namespace": namespace}}
        });
        let ec2_policy = json!({
            "Version": "2012-10-17",
            "Statement": [
                {"Sid": "SessionTable", "Effect": "Allow", "Action": [
                    "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem",
                    "dynamodb:DeleteItem", "dynamodb:Query", "dynamodb:ConditionCheckItem"
                ], "Resource": table_resources},
                {"Sid": "ArtifactsRead", "Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": buckets},
                {"Sid": "ArtifactsReadObjects", "Effect": "Allow", "Action": ["s3:GetObject", "s3:GetObjectVersion"], "Resource": objects},
                {"Sid": "Decrypt", "Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": keys},
                put_metrics,
            ]
        });
        let ec2 = cx
            .ensure_service_role(
                "ec2-role",
                Role::Primary,
                "ec2.amazonaws.com",
                "trading-app",
                ec2_policy,
            )
            .await?;
        let name = cx.name("ec2-instance-profile");
        let tags = cx.tags(&name, Role::Primary);
        let profile = cx
            .ensure(
                Desired::new(
                    Kind::InstanceProfile,
                    GLOBAL,
                    &name,
                    json!({"role_name": ec2.name}),
                )
                .deps([ec2.id.clone()])
                .tags(tags),
            )
            .await?;

        let function = cx.name("replication-monitor");
        let lambda_policy = json!({
            "Version": "2012-10-17",
            "Statement": [
                {"Sid": "DescribeGlobalDatabase", "Effect": "Allow", "Action": [
                    "rds:DescribeGlobalClusters", "rds:DescribeDBClusters"
                ], "Resource": "*"},
                {"Sid": "ReadLag", "Effect": "Allow", "Action": ["cloudwatch:GetMetricData"], "Resource": "*"},
                put_metrics,
                {"Sid": "OwnLogs", "Effect": "Allow", "Action": [
                    "logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"
                ], "Resource": format!("arn:aws:logs:*:*:log-group:/aws/lambda/{function}:*")},
            ]
        });
        let lambda = cx
            .ensure_service_role(
                "lambda-role",
                Role::Standby,
                "lambda.amazonaws.com",
                "replication-monitor",
                lambda_policy,
            )
            .await?;
        let mut out = Outputs::new();
        out.insert("ec2_role_arn".into(), json!(ec2.arn));
        out.insert("instance_profile_arn".into(), json!(profile.arn));
        out.insert("instance_profile_name".into(), json!(profile.name));
        out.insert("lambda_role_arn".into(), json!(lambda.arn));
        Ok(out)
    })
}
