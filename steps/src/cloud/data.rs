//! The data tier: `rds.global_database`, `dynamodb.global_table`, `s3.replicated_buckets`.
//! Everything encrypted with the multi-region KMS key of its region, everything replicated from
//! the primary region to the standby region, nothing protected from deletion.

use std::sync::Arc;
use std::time::Duration;

use drflow_engine::{Outputs, Registry, ValueType};
use serde_json::json;

use super::checks::{AURORA_GLOBAL_CLASS, CloudSpec};
use super::framework::{BodyFuture, CloudStep, Cx, Desired, Names, Role, cloud_spec};
use super::input;
use crate::backend::{GLOBAL, Kind};
use crate::regions::AWS_REGION;
use crate::target::LazyBackend;

const ENGINE: &str = "aurora-postgresql";

pub(crate) fn register(reg: &mut Registry, backend: &Arc<LazyBackend>) {
    let rds = cloud_spec(
        "rds.global_database",
        "Aurora PostgreSQL Global Database: a cluster parameter group forcing TLS \
         (rds.force_ssl=1) and a subnet group in each region, the global cluster, the encrypted \
         primary cluster with its writer, and the secondary cluster with one minimal instance in \
         the standby region. The master password is managed by AWS in Secrets Manager \
         (ManageMasterUserPassword) and never passes through drflow.",
    )
    .required("primary_region", ValueType::String, "Region of the writer.")
    .format(AWS_REGION)
    .required(
        "standby_region",
        ValueType::String,
        "Region of the secondary cluster.",
    )
    .format(AWS_REGION)
    .required(
        "primary_subnet_ids",
        ValueType::List,
        "Private subnets for the primary cluster.",
    )
    .required(
        "standby_subnet_ids",
        ValueType::List,
        "Private subnets for the secondary cluster.",
    )
    .required(
        "primary_sg_id",
        ValueType::String,
        "DB security group in the primary region.",
    )
    .required(
        "standby_sg_id",
        ValueType::String,
        "DB security group in the standby region.",
    )
    .required(
        "primary_kms_key_arn",
        ValueType::String,
        "KMS key in the primary region.",
    )
    .required(
        "standby_kms_key_arn",
        ValueType::String,
        "KMS key (replica) in the standby region.",
    )
    .optional(
        "engine_version",
        ValueType::String,
        json!("15.4"),
        "Aurora PostgreSQL version (must support Global Database).",
    )
    .optional(
        "parameter_group_family",
        ValueType::String,
        json!("aurora-postgresql15"),
        "Cluster parameter group family matching the version.",
    )
    .optional(
        "primary_instance_class",
        ValueType::String,
        json!("db.r6g.large"),
        "Writer instance class (memory-optimized: Global Database does not support db.t classes).",
    )
    .format(AURORA_GLOBAL_CLASS)
    .optional(
        "standby_instance_class",
        ValueType::String,
        json!("db.r6g.large"),
        "The secondary's one instance: db.r6g.large is the smallest class Global Database \
         supports (db.t classes are refused).",
    )
    .format(AURORA_GLOBAL_CLASS)
    .optional(
        "master_username",
        ValueType::String,
        json!("trading_admin"),
        "Master user name (its password is AWS-managed).",
    )
    .min_len(1)
    .max_len(63)
    .optional(
        "database_name",
        ValueType::String,
        json!("trading"),
        "Initial database.",
    )
    .min_len(1)
    .max_len(63)
    .optional(
        "backup_retention_days",
        ValueType::Int,
        json!(7),
        "Automated backup retention.",
    )
    .at_least(1.0)
    .at_most(35.0)
    .optional(
        "wait_timeout",
        ValueType::Duration,
        json!("45m"),
        "How long to wait for each cluster and instance to be available.",
    )
    .at_least(1.0)
    .output(
        "global_cluster_id",
        ValueType::String,
        "The global cluster identifier.",
    )
    .output(
        "primary_cluster_arn",
        ValueType::String,
        "The primary cluster.",
    )
    .output(
        "standby_cluster_arn",
        ValueType::String,
        "The secondary cluster.",
    )
    .output(
        "primary_cluster_id",
        ValueType::String,
        "The primary cluster identifier (same name in both regions).",
    )
    .output(
        "writer_endpoint",
        ValueType::String,
        "Writer endpoint of the primary cluster.",
    )
    .output(
        "reader_endpoint",
        ValueType::String,
        "Reader endpoint of the primary cluster.",
    )
    .output(
        "standby_reader_endpoint",
        ValueType::String,
        "Reader endpoint of the secondary cluster.",
    )
    .output(
        "standby_cluster_endpoint",
        ValueType::String,
        "Cluster endpoint of the secondary (the writer after a failover).",
    )
    .output(
        "master_user_secret_arn",
        ValueType::String,
        "Secrets Manager ARN of the AWS-managed master password (never the password).",
    )
    .output("port", ValueType::Int, "5432.")
    .distinct_regions("primary_region", "standby_region");
    reg.register(CloudStep::boxed(rds, RDS_NAMES, backend, run_rds));

    let ddb = cloud_spec(
        "dynamodb.global_table",
        "A DynamoDB global table with a string partition key: on-demand, KMS-encrypted, \
         point-in-time recovery on, streams on, TTL on, with a replica in the standby region. \
         Provision makes two: the trading sessions and drflow's own coordination state (the \
         daemon's lease and shared journal).",
    )
    .required(
        "primary_region",
        ValueType::String,
        "Region of the first replica.",
    )
    .format(AWS_REGION)
    .required(
        "standby_region",
        ValueType::String,
        "Region of the second replica.",
    )
    .format(AWS_REGION)
    .required(
        "primary_kms_key_arn",
        ValueType::String,
        "KMS key in the primary region.",
    )
    .required(
        "standby_kms_key_arn",
        ValueType::String,
        "KMS key in the standby region.",
    )
    .optional(
        "name",
        ValueType::String,
        json!("trading-sessions"),
        "Type part of the table name.",
    )
    .min_len(1)
    .optional(
        "partition_key",
        ValueType::String,
        json!("sessionId"),
        "Partition key (string).",
    )
    .min_len(1)
    .max_len(255)
    .optional(
        "ttl_attribute",
        ValueType::String,
        json!("expiresAt"),
        "Attribute holding an item's expiry time (TTL).",
    )
    .min_len(1)
    .max_len(255)
    .output(
        "table_name",
        ValueType::String,
        "The table name (same in both regions).",
    )
    .output(
        "primary_table_arn",
        ValueType::String,
        "ARN of the primary-region replica.",
    )
    .output(
        "standby_table_arn",
        ValueType::String,
        "ARN of the standby-region replica.",
    )
    .distinct_regions("primary_region", "standby_region");
    reg.register(CloudStep::boxed(
        ddb,
        &[(Kind::DynamoTable, "{name}")],
        backend,
        run_dynamodb,
    ));

    let s3 = cloud_spec(
        "s3.replicated_buckets",
        "Artifact and configuration buckets in both regions: versioned, KMS-encrypted, public \
         access blocked, a TLS-only bucket policy, and cross-region replication from the primary \
         to the standby bucket with its own IAM role.",
    )
    .required(
        "primary_region",
        ValueType::String,
        "Region of the source bucket.",
    )
    .format(AWS_REGION)
    .required(
        "standby_region",
        ValueType::String,
        "Region of the replica bucket.",
    )
    .format(AWS_REGION)
    .required(
        "primary_kms_key_arn",
        ValueType::String,
        "KMS key in the primary region.",
    )
    .required(
        "standby_kms_key_arn",
        ValueType::String,
        "KMS key in the standby region.",
    )
    .optional(
        "name",
        ValueType::String,
        json!("artifacts"),
        "Type part of the bucket names (`<name>-<region>-<suffix>`).",
    )
    .min_len(1)
    .output("primary_bucket", ValueType::String, "Source bucket name.")
    .output("standby_bucket", ValueType::String, "Replica bucket name.")
    .output(
        "primary_bucket_arn",
        ValueType::String,
        "Source bucket ARN.",
    )
    .output(
        "standby_bucket_arn",
        ValueType::String,
        "Replica bucket ARN.",
    )
    .output(
        "replication_role_arn",
        ValueType::String,
        "The replication role.",
    )
    .distinct_regions("primary_region", "standby_region");
    reg.register(CloudStep::boxed(s3, S3_NAMES, backend, run_s3));
}

/// The names `rds.global_database` builds: the same in both regions.
const RDS_NAMES: Names = &[
    (Kind::DbClusterParameterGroup, "aurora-cluster-pg"),
    (Kind::DbSubnetGroup, "aurora-subnet-group"),
    (Kind::GlobalCluster, "aurora-global"),
    (Kind::DbCluster, "aurora-cluster"),
    (Kind::DbInstance, "aurora-instance-1"),
];

/// The names `s3.replicated_buckets` builds: bucket names are global, so they hold the region.
const S3_NAMES: Names = &[
    (Kind::S3Bucket, "{name}-{primary_region}"),
    (Kind::S3Bucket, "{name}-{standby_region}"),
    (Kind::IamRole, "s3-replication-role"),
];

fn run_rds<'a>(cx: &'a mut Cx, p: &'a Outputs) -> BodyFuture<'a> {
    Box::pin(async move {
        let version = input::str(p, "engine_version")?;
        let family = input::str(p, "parameter_group_family")?;
        let timeout: Duration = input::duration(p, "wait_timeout")?;
        let sides = [
            (Role::Primary, input::str(p, "primary_region")?, "primary"),
            (Role::Standby, input::str(p, "standby_region")?, "standby"),
        ];
        let pg_name = cx.name("aurora-cluster-pg");
        let subnet_group = cx.name("aurora-subnet-group");
        for (role, region, side) in sides {
            let tags = cx.tags(&pg_name, role);
            cx.ensure(
                Desired::new(
                    Kind::DbClusterParameterGroup,
                    region,
                    &pg_name,
                    json!({
                        "family": family,
                        "description": "drflow: TLS required for every connection",
                        "parameters": {"rds.force_ssl": "1"},
                    }),
                )
                .immutable(&["family"])
                .tags(tags),
            )
            .await?;
            let subnets = input::nonempty_strings(p, &format!("{side}_subnet_ids"))?;
            let tags = cx.tags(&subnet_group, role);
            cx.ensure(
                Desired::new(
                    Kind::DbSubnetGroup,
                    region,
                    &subnet_group,
                    json!({
                        "description": "drflow: private subnets for Aurora",
                        "subnet_ids": subnets,
                    }),
                )
                .deps(subnets.clone())
                .tags(tags),
            )
            .await?;
        }

        let global_name = cx.name("aurora-global");
        let tags = cx.tags(&global_name, Role::Primary);
        let global = cx
            .ensure(
                Desired::new(
                    Kind::GlobalCluster,
                    GLOBAL,
                    &global_name,
                    json!({
                        "engine": ENGINE,
                        "engine_version": version,
                        "storage_encrypted": true,
                        "deletion_protection": false,
                    }),
                )
                .immutable(&["engine", "storage_encrypted"])
                .tags(tags),
            )
            .await?;

        // The same cluster and instance names in both regions: after a failover the "primary"
        // lives in the standby region, and names that said otherwise would mislead.
        let cluster_name = cx.name("aurora-cluster");
        let instance_name = cx.name("aurora-instance-1");
        let mut clusters = Vec::new();
        for (role, region, side) in sides {
            let key = input::str(p, &format!("{side}_kms_key_arn"))?;
            let sg = input::str(p, &format!("{side}_sg_id"))?;
            let mut spec = json!({
                "engine": ENGINE,
                "engine_version": version,
                "global_cluster_identifier": global.id,
                "db_subnet_group_name": subnet_group,
                "vpc_security_group_ids": [sg],
                "db_cluster_parameter_group_name": pg_name,
                "storage_encrypted": true,
                "kms_key_id": key,
                "deletion_protection": false,
                "skip_final_snapshot": true,
                "copy_tags_to_snapshot": true,
                "enabled_cloudwatch_logs_exports": ["postgresql"],
                "backup_retention_period": input::int(p, "backup_retention_days")?,
            });
            if role == Role::Primary {
                crate::json::merge(
                    &mut spec,
                    &json!({
                        "master_username": input::str(p, "master_username")?,
                        "manage_master_user_password": true,
                        "master_user_secret_kms_key_id": key,
                        "database_name": input::str(p, "database_name")?,
                    }),
                );
            }
            let tags = cx.tags(&cluster_name, role);
            let cluster = cx
                .ensure(
                    Desired::new(Kind::DbCluster, region, &cluster_name, spec)
                        // Which member writes changes with failover; provision sets it once.
                        .create_only(json!({"global_role": if role == Role::Primary { "primary" } else { "secondary" }}))
                        .immutable(&["engine", "storage_encrypted", "kms_key_id", "global_cluster_identifier"])
                        .deps([global.id.clone(), subnet_group.clone(), pg_name.clone(), sg.to_string()])
                        .tags(tags),
                )
                .await?;
            // Checked against the classes Global Database supports by the declaration, before the
            // run and when the step starts.
            let class = input::str(p, &format!("{side}_instance_class"))?;
            let tags = cx.tags(&instance_name, role);
            let instance = cx
                .ensure(
                    Desired::new(
                        Kind::DbInstance,
                        region,
                        &instance_name,
                        json!({
                            "db_cluster_identifier": cluster.id,
                            "engine": ENGINE,
                            "db_instance_class": class,
                            "publicly_accessible": false,
                            "auto_minor_version_upgrade": true,
                            "performance_insights_enabled": true,
                            "performance_insights_kms_key_id": key,
                        }),
                    )
                    .immutable(&["db_cluster_identifier", "engine"])
                    .deps([cluster.id.clone()])
                    .tags(tags),
                )
                .await?;
            // A secondary can only join once the primary is available, so wait in order.
            let cluster = cx.wait(&cluster, timeout).await?;
            cx.wait(&instance, timeout).await?;
            clusters.push(cluster);
        }
        let (primary, standby) = (&clusters[0], &clusters[1]);
        let mut out = Outputs::new();
        out.insert("global_cluster_id".into(), json!(global.id));
        out.insert("primary_cluster_arn".into(), json!(primary.arn));
        out.insert("standby_cluster_arn".into(), json!(standby.arn));
        out.insert("primary_cluster_id".into(), json!(primary.id));
        out.insert(
            "writer_endpoint".into(),
            json!(primary.attr_str("endpoint")),
        );
        out.insert(
            "reader_endpoint".into(),
            json!(primary.attr_str("reader_endpoint")),
        );
        out.insert(
            "standby_reader_endpoint".into(),
            json!(standby.attr_str("reader_endpoint")),
        );
        out.insert(
            "standby_cluster_endpoint".into(),
            json!(standby.attr_str("endpoint")),
        );
        out.insert(
            "master_user_secret_arn".into(),
            json!(primary.attr_str("master_user_secret_arn")),
        );
        out.insert("port".into(), json!(5432));
        Ok(out)
    })
}

fn run_dynamodb<'a>(cx: &'a mut Cx, p: &'a Outputs) -> BodyFuture<'a> {
    Box::pin(async move {
        let primary = input::str(p, "primary_region")?;
        let standby = input::str(p, "standby_region")?;
        let key = input::str(p, "partition_key")?;
        let name = cx.name_from("{name}", p);
        let table_spec = |kms: &str| {
            json!({
                "attribute_definitions": [{"attribute_name": key, "attribute_type": "S"}],
                "key_schema": [{"attribute_name": key, "key_type": "HASH"}],
                "billing_mode": "PAY_PER_REQUEST",
                "sse": {"enabled": true, "sse_type": "KMS", "kms_master_key_id": kms},
                "point_in_time_recovery": true,
                "stream_view_type": "NEW_AND_OLD_IMAGES",
                "deletion_protection_enabled": false,
                "ttl": {"attribute_name": input::str(p, "ttl_attribute").unwrap_or("expiresAt"), "enabled": true},
            })
        };
        let tags = cx.tags(&name, Role::Primary);
        let mut spec = table_spec(input::str(p, "primary_kms_key_arn")?);
        crate::json::merge(&mut spec, &json!({"replica_regions": [standby]}));
        let table = cx
            .ensure(
                Desired::new(Kind::DynamoTable, primary, &name, spec)
                    .immutable(&["key_schema"])
                    .tags(tags),
            )
            .await?;
        cx.wait(&table, Duration::from_secs(1800)).await?;
        // A global-table replica is a table in the other region that the service keeps in sync;
        // the aws backend creates it with UpdateTable(ReplicaUpdates) on the source.
        let mut spec = table_spec(input::str(p, "standby_kms_key_arn")?);
        crate::json::merge(&mut spec, &json!({"replica_of": table.arn}));
        let tags = cx.tags(&name, Role::Standby);
        let replica = cx
            .ensure(
                Desired::new(Kind::DynamoTable, standby, &name, spec)
                    .immutable(&["key_schema", "replica_of"])
                    .deps([table.arn.clone()])
                    .tags(tags),
            )
            .await?;
        cx.wait(&replica, Duration::from_secs(1800)).await?;
        let mut out = Outputs::new();
        out.insert("table_name".into(), json!(name));
        out.insert("primary_table_arn".into(), json!(table.arn));
        out.insert("standby_table_arn".into(), json!(replica.arn));
        Ok(out)
    })
}

fn tls_only(bucket: &str) -> serde_json::Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [format!("arn:aws:s3:::{bucket}"), format!("arn:aws:s3:::{bucket}/*")],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}
        }]
    })
}

fn bucket_spec(bucket: &str, kms: &str) -> serde_json::Value {
    json!({
        "versioning": "Enabled",
        "encryption": {"sse_algorithm": "aws:kms", "kms_master_key_id": kms, "bucket_key_enabled": true},
        "public_access_block": {
            "block_public_acls": true, "ignore_public_acls": true,
            "block_public_policy": true, "restrict_public_buckets": true
        },
        "object_ownership": "BucketOwnerEnforced",
        "policy": tls_only(bucket),
        // Destroy must be able to remove a bucket that still holds object versions.
        "force_destroy": true,
    })
}

fn run_s3<'a>(cx: &'a mut Cx, p: &'a Outputs) -> BodyFuture<'a> {
    Box::pin(async move {
        let primary = input::str(p, "primary_region")?;
        let standby = input::str(p, "standby_region")?;
        let primary_key = input::str(p, "primary_kms_key_arn")?;
        let standby_key = input::str(p, "standby_kms_key_arn")?;
        // Bucket names are global, so the region is part of the name.
        let src = cx.name_from("{name}-{primary_region}", p);
        let dst = cx.name_from("{name}-{standby_region}", p);
        let (src_arn, dst_arn) = (format!("arn:aws:s3:::{src}"), format!("arn:aws:s3:::{dst}"));

        let role = cx
            .ensure_service_role(
                "s3-replication-role",
                Role::Primary,
                "s3.amazonaws.com",
                "replication",
                json!({
                    "Version": "2012-10-17",
                    "Statement": [
                        {"Effect": "Allow", "Action": ["s3:GetReplicationConfiguration", "s3:ListBucket"], "Resource": src_arn},
                        {"Effect": "Allow", "Action": ["s3:GetObjectVersionForReplication", "s3:GetObjectVersionAcl", "s3:GetObjectVersionTagging"], "Resource": format!("{src_arn}/*")},
                        {"Effect": "Allow", "Action": ["s3:ReplicateObject", "s3:ReplicateDelete", "s3:ReplicateTags"], "Resource": format!("{dst_arn}/*")},
                        {"Effect": "Allow", "Action": ["kms:Decrypt"], "Resource": primary_key},
                        {"Effect": "Allow", "Action": ["kms:Encrypt"], "Resource": standby_key},
                    ]
                }),
            )
            .await?;

        let tags = cx.tags(&dst, Role::Standby);
        let replica = cx
            .ensure(
                Desired::new(
                    Kind::S3Bucket,
                    standby,
                    &dst,
                    bucket_spec(&dst, standby_key),
                )
                .tags(tags),
            )
            .await?;
        let mut spec = bucket_spec(&src, primary_key);
        crate::json::merge(
            &mut spec,
            &json!({"replication": {
                "role": role.arn,
                "rules": [{
                    "id": "to-standby",
                    "status": "Enabled",
                    "priority": 1,
                    "filter": {},
                    "delete_marker_replication": "Enabled",
                    "source_selection_criteria": {"sse_kms_encrypted_objects": "Enabled"},
                    "destination": {"bucket": dst_arn, "replica_kms_key_id": standby_key, "storage_class": "STANDARD"},
                }]
            }}),
        );
        let tags = cx.tags(&src, Role::Primary);
        let source = cx
            .ensure(
                Desired::new(Kind::S3Bucket, primary, &src, spec)
                    .deps([role.id.clone(), replica.id.clone()])
                    .tags(tags),
            )
            .await?;
        let mut out = Outputs::new();
        out.insert("primary_bucket".into(), json!(source.name));
        out.insert("standby_bucket".into(), json!(replica.name));
        out.insert("primary_bucket_arn".into(), json!(source.arn));
        out.insert("standby_bucket_arn".into(), json!(replica.arn));
        out.insert("replication_role_arn".into(), json!(role.arn));
        Ok(out)
    })
}
