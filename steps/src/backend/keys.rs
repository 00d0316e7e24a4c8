//! Spec keys by class, and how to compare what a cloud returns with what was asked.
//!
//! Every key a step writes into a [`Resource::spec`] has a [`KeyClass`], in CloudFormation's
//! terms:
//!
//! | class | CloudFormation | drift |
//! |---|---|---|
//! | [`KeyClass::Compared`] | (ordinary property) | compared; repaired by `update` |
//! | [`KeyClass::CreateOnly`] | `createOnlyProperties` | compared; cannot change in place, so drift there means replace or refuse |
//! | [`KeyClass::WriteOnly`] | `writeOnlyProperties` | sent, never returned: never compared, and `find` omits it |
//! | [`KeyClass::Computed`] | `readOnlyProperties` | decided by the service: never compared |
//!
//! (Not to be confused with a step's `Desired::create_only` keys, which drflow applies at
//! creation only and never compares because failover legitimately moves them: an Auto Scaling
//! group's desired capacity, a record's weight. Those are [`KeyClass::Compared`] here: AWS
//! returns them and can change them in place.)
//!
//! Some keys also have a [`Normaliser`]: AWS returns them in another shape than the one asked
//! for (subnets reordered, an Auto Scaling group's subnets joined by commas, an IAM policy
//! URL-encoded and reformatted, SQS numbers as strings). Both sides are normalised before they
//! are compared, so only a real difference is drift.
//!
//! The table is per kind ([`Kind::spec_keys`]). A path is the dotted path of a key in the spec
//! (`health_check.path`); an entry covers its own path and every path below it, and the
//! longest entry wins (`code` is compared, `code.source` is write-only). A key the table does
//! not know is compared; `steps/tests/spec_keys.rs` fails when a step writes one.

use serde_json::{Map, Value};

use super::{Kind, Resource};

/// How drift treats a spec key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyClass {
    /// Returned by the cloud and changeable in place: compared, and repaired by an update.
    Compared,
    /// Returned by the cloud but fixed at creation (CloudFormation's `createOnlyProperties`):
    /// drift here can only be repaired by replacing the resource.
    CreateOnly,
    /// Sent to the cloud (or used by drflow itself) but never returned (CloudFormation's
    /// `writeOnlyProperties`): never drift, and `find` leaves it out.
    WriteOnly,
    /// Decided by the cloud, whatever was asked at creation (CloudFormation's
    /// `readOnlyProperties`): never drift.
    Computed,
}

/// How a value is brought into one canonical shape before it is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Normaliser {
    /// A list whose order and duplicates do not matter (subnets, security groups, ARNs).
    Set,
    /// A set that AWS may return as one comma-joined string (an Auto Scaling group's
    /// `VPCZoneIdentifier`): a list or a string in, a set out.
    CommaList,
    /// An IAM policy document (IAM, S3, SNS, SQS, KMS): an object, a JSON string or a
    /// URL-encoded JSON string in (IAM returns policies URL-encoded); out, an object whose
    /// `Statement` is a list (in its order), and whose `Action`, `Resource`, `Principal`
    /// values and condition values are sorted lists of strings, so `"s3:GetObject"` ≡
    /// `["s3:GetObject"]`. `Version` and `Sid` are kept.
    PolicyDocument,
    /// An object of name → [`Normaliser::PolicyDocument`] (a role's inline policies).
    PolicyMap,
    /// A JSON value, or a string holding one (a dashboard body, an SQS redrive policy);
    /// list order is kept.
    Json,
    /// Like [`Normaliser::Json`], but every list at any depth is a set (an EventBridge pattern
    /// lists alternatives; CloudWatch returns enabled metrics in its own order).
    Unordered,
    /// A number, or a string holding one (SQS returns every attribute as a string):
    /// `50` ≡ `50.0` ≡ `"50"`.
    Number,
    /// A DNS name: case does not matter and the final dot is optional (Route 53 returns
    /// names lower-case with a final dot).
    DnsName,
}

/// One entry of a kind's spec key table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpecKey {
    /// The dotted path of the key in the spec; the entry covers the paths below it too.
    pub path: &'static str,
    /// Its class.
    pub class: KeyClass,
    /// How its value is normalised before comparing, if at all.
    pub normaliser: Option<Normaliser>,
}

const fn key(path: &'static str, class: KeyClass, normaliser: Option<Normaliser>) -> SpecKey {
    SpecKey {
        path,
        class,
        normaliser,
    }
}
/// Compared.
const fn cmp(path: &'static str) -> SpecKey {
    key(path, KeyClass::Compared, None)
}
/// Compared after normalising.
const fn norm(path: &'static str, n: Normaliser) -> SpecKey {
    key(path, KeyClass::Compared, Some(n))
}
/// Create-only.
const fn fixed(path: &'static str) -> SpecKey {
    key(path, KeyClass::CreateOnly, None)
}
/// Create-only, compared after normalising.
const fn fixed_norm(path: &'static str, n: Normaliser) -> SpecKey {
    key(path, KeyClass::CreateOnly, Some(n))
}
/// Write-only.
const fn sent(path: &'static str) -> SpecKey {
    key(path, KeyClass::WriteOnly, None)
}
/// Computed.
const fn computed(path: &'static str) -> SpecKey {
    key(path, KeyClass::Computed, None)
}

use Normaliser::{CommaList, DnsName, Json, Number, PolicyDocument, PolicyMap, Set, Unordered};

const KMS_KEY: &[SpecKey] = &[
    cmp("description"),
    // CreateKey: KeySpec, KeyUsage and MultiRegion cannot be changed after creation.
    fixed("key_spec"),
    fixed("key_usage"),
    fixed("multi_region"),
    cmp("enable_key_rotation"),
    cmp("rotation_period_days"),
    // ScheduleKeyDeletion's PendingWindowInDays: a parameter of the delete, never returned.
    sent("pending_window_in_days"),
    cmp("enabled"),
    // drflow's: the services the key policy lets use the key (PutKeyPolicy).
    norm("service_principals", Set),
    // ReplicateKey: a replica is bound to its primary key.
    fixed("primary_key_arn"),
];
const KMS_ALIAS: &[SpecKey] = &[cmp("target_key_id")];
const IAM_ROLE: &[SpecKey] = &[
    // UpdateAssumeRolePolicy; GetRole returns the document URL-encoded.
    norm("assume_role_policy", PolicyDocument),
    // PutRolePolicy; GetRolePolicy returns each document URL-encoded.
    norm("inline_policies", PolicyMap),
    norm("managed_policy_arns", Set),
    cmp("max_session_duration"),
];
const INSTANCE_PROFILE: &[SpecKey] = &[cmp("role_name")];
const VPC: &[SpecKey] = &[
    // CreateVpc: the primary CIDR block cannot be changed.
    fixed("cidr_block"),
    cmp("enable_dns_support"),
    cmp("enable_dns_hostnames"),
];
const SUBNET: &[SpecKey] = &[
    // CreateSubnet: VpcId, CidrBlock and AvailabilityZone cannot be changed.
    fixed("vpc_id"),
    fixed("cidr_block"),
    fixed("availability_zone"),
    cmp("map_public_ip_on_launch"),
    // drflow's label for the subnet; EC2 has no such field.
    sent("tier"),
];
const INTERNET_GATEWAY: &[SpecKey] = &[cmp("vpc_id")];
const ELASTIC_IP: &[SpecKey] = &[fixed("domain")];
const NAT_GATEWAY: &[SpecKey] = &[
    // CreateNatGateway: there is no ModifyNatGateway.
    fixed("subnet_id"),
    fixed("allocation_id"),
    fixed("connectivity_type"),
];
const ROUTE_TABLE: &[SpecKey] = &[
    fixed("vpc_id"),
    // Associations come back in the service's order.
    norm("subnet_ids", Set),
];
const VPC_PEERING: &[SpecKey] = &[
    // CreateVpcPeeringConnection: the two VPCs and the peer region cannot be changed.
    fixed("vpc_id"),
    fixed("peer_vpc_id"),
    fixed("peer_region"),
    // Status.Code: drift while `pending-acceptance` is repaired by accepting.
    cmp("status"),
];
const ROUTE: &[SpecKey] = &[
    // A route is identified by its table and destination; ReplaceRoute changes its target.
    fixed("route_table_id"),
    fixed("destination_cidr_block"),
    cmp("gateway_id"),
    cmp("nat_gateway_id"),
    cmp("vpc_peering_connection_id"),
];
const SECURITY_GROUP: &[SpecKey] = &[
    // CreateSecurityGroup: VpcId and GroupDescription cannot be changed.
    fixed("vpc_id"),
    fixed("description"),
    // DescribeSecurityGroupRules returns rules in no particular order.
    norm("ingress", Set),
    norm("egress", Set),
];
const S3_BUCKET: &[SpecKey] = &[
    cmp("versioning"),
    cmp("encryption"),
    cmp("public_access_block"),
    cmp("object_ownership"),
    // GetBucketPolicy returns the document as a JSON string.
    norm("policy", PolicyDocument),
    cmp("replication"),
    // drflow's: empty the bucket before DeleteBucket; never sent to S3.
    sent("force_destroy"),
];
const DYNAMO_TABLE: &[SpecKey] = &[
    norm("attribute_definitions", Set),
    // CreateTable: the key schema cannot be changed.
    fixed("key_schema"),
    cmp("billing_mode"),
    cmp("sse"),
    cmp("point_in_time_recovery"),
    cmp("stream_view_type"),
    cmp("deletion_protection_enabled"),
    cmp("ttl"),
    norm("replica_regions", Set),
    // drflow's: the global table this replica belongs to, fixed by UpdateTable(ReplicaUpdates)
    // on the source.
    fixed("replica_of"),
];
const DB_CLUSTER_PARAMETER_GROUP: &[SpecKey] = &[
    // CreateDBClusterParameterGroup: there is no API to change the family or the description.
    fixed("family"),
    fixed("description"),
    cmp("parameters"),
];
const DB_SUBNET_GROUP: &[SpecKey] = &[cmp("description"), norm("subnet_ids", Set)];
const GLOBAL_CLUSTER: &[SpecKey] = &[
    // CreateGlobalCluster: Engine and StorageEncrypted cannot be changed.
    fixed("engine"),
    cmp("engine_version"),
    fixed("storage_encrypted"),
    cmp("deletion_protection"),
];
const DB_CLUSTER: &[SpecKey] = &[
    // CreateDBCluster: Engine, DatabaseName, MasterUsername, StorageEncrypted, KmsKeyId and
    // DBSubnetGroupName cannot be changed by ModifyDBCluster.
    fixed("engine"),
    cmp("engine_version"),
    // Joining or leaving a global cluster is a failover-grade change, not a repair.
    fixed("global_cluster_identifier"),
    fixed("db_subnet_group_name"),
    norm("vpc_security_group_ids", Set),
    cmp("db_cluster_parameter_group_name"),
    fixed("storage_encrypted"),
    fixed("kms_key_id"),
    cmp("deletion_protection"),
    // DeleteDBCluster's SkipFinalSnapshot: a parameter of the delete, never returned.
    sent("skip_final_snapshot"),
    cmp("copy_tags_to_snapshot"),
    norm("enabled_cloudwatch_logs_exports", Set),
    cmp("backup_retention_period"),
    fixed("master_username"),
    // DescribeDBClusters returns MasterUserSecret (with its KmsKeyId) when RDS manages the
    // password, so both are read back.
    cmp("manage_master_user_password"),
    cmp("master_user_secret_kms_key_id"),
    fixed("database_name"),
    // Which member of the global cluster writes: failover and switchover move it.
    computed("global_role"),
];
const DB_INSTANCE: &[SpecKey] = &[
    // CreateDBInstance: the cluster and the engine of a cluster member cannot be changed.
    fixed("db_cluster_identifier"),
    fixed("engine"),
    cmp("db_instance_class"),
    cmp("publicly_accessible"),
    cmp("auto_minor_version_upgrade"),
    cmp("performance_insights_enabled"),
    cmp("performance_insights_kms_key_id"),
];
const HOSTED_ZONE: &[SpecKey] = &[
    // CreateHostedZone: the name and whether it is private cannot be changed.
    fixed_norm("name", DnsName),
    cmp("comment"),
    fixed("private_zone"),
    // drflow's: delete the zone's records before DeleteHostedZone; never sent to Route 53.
    sent("force_destroy"),
];
const CERTIFICATE: &[SpecKey] = &[
    // RequestCertificate: only the options can change (UpdateCertificateOptions).
    fixed("domain_name"),
    fixed("validation_method"),
    fixed("key_algorithm"),
    cmp("options"),
];
const LAUNCH_TEMPLATE: &[SpecKey] = &[
    // Every change is a new version (CreateLaunchTemplateVersion), so all of these compare;
    // DescribeLaunchTemplateVersions returns the user data (base64) too.
    cmp("image_id"),
    cmp("instance_type"),
    cmp("iam_instance_profile"),
    norm("vpc_security_group_ids", Set),
    cmp("user_data"),
    cmp("metadata_options"),
    cmp("block_device_mappings"),
    cmp("monitoring"),
    cmp("tag_specifications"),
    // drflow's: make each new version the default (ModifyLaunchTemplate); not a field of a
    // version.
    sent("update_default_version"),
];
const LOAD_BALANCER: &[SpecKey] = &[
    // CreateLoadBalancer: Type and Scheme cannot be changed.
    fixed("type"),
    fixed("scheme"),
    cmp("ip_address_type"),
    // DescribeLoadBalancers returns the subnets (as availability zones) and security groups
    // in its own order.
    norm("subnets", Set),
    norm("security_groups", Set),
    cmp("deletion_protection"),
    cmp("drop_invalid_header_fields"),
    norm("idle_timeout", Number),
];
const TARGET_GROUP: &[SpecKey] = &[
    // CreateTargetGroup: Protocol, Port, VpcId and TargetType cannot be changed.
    fixed("protocol"),
    fixed("port"),
    fixed("vpc_id"),
    fixed("target_type"),
    // A target group attribute: returned as a string.
    norm("deregistration_delay", Number),
    cmp("health_check"),
];
const LISTENER: &[SpecKey] = &[
    // CreateListener: a listener belongs to one load balancer.
    fixed("load_balancer_arn"),
    cmp("port"),
    cmp("protocol"),
    cmp("ssl_policy"),
    norm("certificates", Set),
    cmp("default_action"),
];
const AUTO_SCALING_GROUP: &[SpecKey] = &[
    cmp("launch_template"),
    // DescribeAutoScalingGroups returns VPCZoneIdentifier as one comma-joined string.
    norm("vpc_zone_identifier", CommaList),
    norm("target_group_arns", Set),
    cmp("max_size"),
    cmp("min_size"),
    cmp("desired_capacity"),
    cmp("health_check_type"),
    cmp("health_check_grace_period"),
    cmp("default_instance_warmup"),
    // EnabledMetrics come back one by one, in the service's order.
    norm("metrics_collection", Unordered),
    cmp("capacity_rebalance"),
    // drflow's: tag_specifications' tags propagate to instances; read back from the tags'
    // PropagateAtLaunch.
    cmp("propagate_tags"),
    cmp("warm_pool"),
];
const SCALING_POLICY: &[SpecKey] = &[
    // A policy lives in one group.
    fixed("auto_scaling_group_name"),
    // PutScalingPolicy replaces the whole policy, so everything else compares.
    cmp("policy_type"),
    cmp("adjustment_type"),
    cmp("metric_aggregation_type"),
    cmp("estimated_instance_warmup"),
    cmp("step_adjustments"),
    cmp("target_tracking_configuration"),
];
const HEALTH_CHECK: &[SpecKey] = &[
    // UpdateHealthCheck cannot change Type, RequestInterval or MeasureLatency.
    fixed("type"),
    cmp("fully_qualified_domain_name"),
    cmp("port"),
    cmp("resource_path"),
    cmp("search_string"),
    fixed("request_interval"),
    cmp("failure_threshold"),
    cmp("enable_sni"),
    fixed("measure_latency"),
    cmp("inverted"),
    cmp("disabled"),
];
const DNS_RECORD: &[SpecKey] = &[
    // A record set is identified by zone, name, type and set identifier.
    fixed("hosted_zone_id"),
    fixed_norm("name", DnsName),
    fixed("type"),
    fixed("set_identifier"),
    // drflow's, read back from which of Weight and Failover the record set carries; Route 53
    // refuses to turn a failover record set into a weighted one (or back) in one UPSERT, and
    // the failover role is the record's identity here.
    fixed("routing_policy"),
    fixed("failover"),
    cmp("weight"),
    cmp("health_check_id"),
    norm("ttl", Number),
    norm("records", Set),
    cmp("alias_target"),
    // Route 53 returns alias targets lower-case with a final dot.
    norm("alias_target.dns_name", DnsName),
];
const SNS_TOPIC: &[SpecKey] = &[
    cmp("display_name"),
    cmp("kms_master_key_id"),
    // GetTopicAttributes returns the Policy attribute as a JSON string.
    norm("policy", PolicyDocument),
];
const SNS_SUBSCRIPTION: &[SpecKey] = &[
    // Subscribe: a subscription is its topic, protocol and endpoint.
    fixed("topic_arn"),
    fixed("protocol"),
    fixed("endpoint"),
];
const SQS_QUEUE: &[SpecKey] = &[
    cmp("kms_master_key_id"),
    // GetQueueAttributes returns every attribute as a string.
    norm("kms_data_key_reuse_period_seconds", Number),
    norm("message_retention_seconds", Number),
    norm("visibility_timeout_seconds", Number),
    norm("receive_wait_time_seconds", Number),
    norm("redrive_policy", Json),
    norm("policy", PolicyDocument),
];
const LAMBDA_FUNCTION: &[SpecKey] = &[
    cmp("runtime"),
    cmp("handler"),
    cmp("role"),
    norm("architectures", Set),
    cmp("memory_size"),
    cmp("timeout"),
    cmp("code"),
    // CreateFunction's ZipFile: GetFunction returns only CodeSha256 (of the zip), never the
    // code or its file name. `code.sha` is drflow's fingerprint of the source, which the
    // backend must give back for a code change to show as drift.
    sent("code.source"),
    sent("code.filename"),
    cmp("code.sha"),
    cmp("environment"),
    // AddPermission; GetPolicy returns the statements in its own order.
    norm("invoke_permissions", Set),
];
const EVENT_RULE: &[SpecKey] = &[
    cmp("description"),
    // DescribeRule returns EventPattern as a JSON string.
    norm("event_pattern", Unordered),
    cmp("schedule_expression"),
    cmp("state"),
    // ListTargetsByRule returns targets in its own order.
    norm("targets", Set),
];
const METRIC_ALARM: &[SpecKey] = &[
    // PutMetricAlarm replaces the whole alarm, so everything compares.
    cmp("alarm_description"),
    cmp("actions_enabled"),
    norm("alarm_actions", Set),
    norm("ok_actions", Set),
    norm("insufficient_data_actions", Set),
    cmp("namespace"),
    cmp("metric_name"),
    cmp("dimensions"),
    cmp("statistic"),
    cmp("period"),
    cmp("evaluation_periods"),
    cmp("datapoints_to_alarm"),
    norm("threshold", Number),
    cmp("comparison_operator"),
    cmp("treat_missing_data"),
];
const COMPOSITE_ALARM: &[SpecKey] = &[
    cmp("alarm_description"),
    cmp("alarm_rule"),
    cmp("actions_enabled"),
    norm("alarm_actions", Set),
    norm("ok_actions", Set),
];
const DASHBOARD: &[SpecKey] = &[
    // GetDashboard returns DashboardBody as a JSON string.
    norm("dashboard_body", Json),
];

impl Kind {
    /// Every spec key steps write for this kind, with its class and normaliser.
    pub fn spec_keys(self) -> &'static [SpecKey] {
        match self {
            Kind::KmsKey => KMS_KEY,
            Kind::KmsAlias => KMS_ALIAS,
            Kind::IamRole => IAM_ROLE,
            Kind::InstanceProfile => INSTANCE_PROFILE,
            Kind::Vpc => VPC,
            Kind::Subnet => SUBNET,
            Kind::InternetGateway => INTERNET_GATEWAY,
            Kind::ElasticIp => ELASTIC_IP,
            Kind::NatGateway => NAT_GATEWAY,
            Kind::RouteTable => ROUTE_TABLE,
            Kind::VpcPeering => VPC_PEERING,
            Kind::Route => ROUTE,
            Kind::SecurityGroup => SECURITY_GROUP,
            Kind::S3Bucket => S3_BUCKET,
            Kind::DynamoTable => DYNAMO_TABLE,
            Kind::DbClusterParameterGroup => DB_CLUSTER_PARAMETER_GROUP,
            Kind::DbSubnetGroup => DB_SUBNET_GROUP,
            Kind::GlobalCluster => GLOBAL_CLUSTER,
            Kind::DbCluster => DB_CLUSTER,
            Kind::DbInstance => DB_INSTANCE,
            Kind::HostedZone => HOSTED_ZONE,
            Kind::Certificate => CERTIFICATE,
            Kind::LaunchTemplate => LAUNCH_TEMPLATE,
            Kind::LoadBalancer => LOAD_BALANCER,
            Kind::TargetGroup => TARGET_GROUP,
            Kind::Listener => LISTENER,
            Kind::AutoScalingGroup => AUTO_SCALING_GROUP,
            Kind::ScalingPolicy => SCALING_POLICY,
            Kind::HealthCheck => HEALTH_CHECK,
            Kind::DnsRecord => DNS_RECORD,
            Kind::SnsTopic => SNS_TOPIC,
            Kind::SnsSubscription => SNS_SUBSCRIPTION,
            Kind::SqsQueue => SQS_QUEUE,
            Kind::LambdaFunction => LAMBDA_FUNCTION,
            Kind::EventRule => EVENT_RULE,
            Kind::MetricAlarm => METRIC_ALARM,
            Kind::CompositeAlarm => COMPOSITE_ALARM,
            Kind::Dashboard => DASHBOARD,
        }
    }

    /// The table entry that covers a dotted spec path: the entry for the path itself or, failing
    /// that, for its nearest ancestor. `None` for a key the table does not know.
    pub fn spec_key(self, path: &str) -> Option<&'static SpecKey> {
        self.spec_keys()
            .iter()
            .filter(|k| {
                path == k.path
                    || path
                        .strip_prefix(k.path)
                        .is_some_and(|rest| rest.starts_with('.'))
            })
            .max_by_key(|k| k.path.len())
    }

    /// The class of a dotted spec path ([`Kind::spec_key`]); a key the table does not know is
    /// [`KeyClass::Compared`], so an unclassified key shows as drift rather than hiding it.
    pub fn key_class(self, path: &str) -> KeyClass {
        self.spec_key(path).map_or(KeyClass::Compared, |k| k.class)
    }

    /// The normaliser of exactly this dotted path, if it has one. Paths below a normalised key
    /// (`policy.Statement`) have none of their own: the whole value is normalised at its key.
    pub fn normaliser(self, path: &str) -> Option<Normaliser> {
        self.spec_keys()
            .iter()
            .find(|k| k.path == path)
            .and_then(|k| k.normaliser)
    }
}

/// The resource as the cloud would return it: its spec without the kind's write-only keys.
/// The sim hands out resources through this, so it answers as AWS does.
pub fn as_returned(mut resource: Resource) -> Resource {
    strip_write_only(resource.kind, &mut resource.spec);
    resource
}

/// Removes the kind's [write-only](KeyClass::WriteOnly) keys from a spec.
pub fn strip_write_only(kind: Kind, spec: &mut Value) {
    for k in kind.spec_keys() {
        if k.class == KeyClass::WriteOnly {
            remove_path(spec, k.path);
        }
    }
}

fn remove_path(v: &mut Value, path: &str) {
    match path.split_once('.') {
        None => {
            if let Value::Object(m) = v {
                m.remove(path);
            }
        }
        Some((head, rest)) => {
            if let Some(child) = v.get_mut(head) {
                remove_path(child, rest);
            }
        }
    }
}

impl Normaliser {
    /// The canonical form of a value; two values are the same configuration when their
    /// canonical forms are equal.
    pub fn normalise(self, v: &Value) -> Value {
        match self {
            Normaliser::Set => set(v),
            Normaliser::CommaList => match v {
                Value::String(s) => set(&Value::Array(
                    s.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(|s| Value::String(s.into()))
                        .collect(),
                )),
                _ => set(v),
            },
            Normaliser::PolicyDocument => policy(&parse_json(v)),
            Normaliser::PolicyMap => match parse_json(v) {
                Value::Object(m) => Value::Object(
                    m.iter()
                        .map(|(name, doc)| (name.clone(), policy(&parse_json(doc))))
                        .collect(),
                ),
                other => canonical(&other),
            },
            Normaliser::Json => canonical(&parse_json(v)),
            Normaliser::Unordered => unordered(&parse_json(v)),
            Normaliser::Number => match v {
                Value::String(s) => s
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .map_or_else(|| v.clone(), number),
                _ => canonical(v),
            },
            Normaliser::DnsName => match v {
                Value::String(s) => {
                    Value::String(s.trim_end_matches('.').to_ascii_lowercase() + ".")
                }
                _ => v.clone(),
            },
        }
    }
}

/// A number in one form: integral values as integers, so `50` ≡ `50.0`.
fn number(f: f64) -> Value {
    if f.fract() == 0.0 && f.abs() < 9.0e15 {
        Value::from(f as i64)
    } else {
        serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
    }
}

/// The value with every number in one form ([`number`]).
fn canonical(v: &Value) -> Value {
    match v {
        Value::Number(n) => n.as_f64().map_or_else(|| v.clone(), number),
        Value::Array(a) => Value::Array(a.iter().map(canonical).collect()),
        Value::Object(m) => {
            Value::Object(m.iter().map(|(k, v)| (k.clone(), canonical(v))).collect())
        }
        _ => v.clone(),
    }
}

/// A list as a sorted list without duplicates; anything else as one element.
fn set(v: &Value) -> Value {
    let items: Vec<Value> = match v {
        Value::Array(a) => a.iter().map(canonical).collect(),
        Value::Null => Vec::new(),
        other => vec![canonical(other)],
    };
    sorted(items)
}

fn sorted(items: Vec<Value>) -> Value {
    let mut keyed: Vec<(String, Value)> = items.into_iter().map(|v| (v.to_string(), v)).collect();
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    keyed.dedup_by(|a, b| a.0 == b.0);
    Value::Array(keyed.into_iter().map(|(_, v)| v).collect())
}

fn unordered(v: &Value) -> Value {
    match v {
        Value::Array(a) => sorted(a.iter().map(unordered).collect()),
        Value::Object(m) => {
            Value::Object(m.iter().map(|(k, v)| (k.clone(), unordered(v))).collect())
        }
        _ => canonical(v),
    }
}

/// A string holding JSON (plain or URL-encoded, as IAM returns policies) parsed; anything else
/// as it is.
fn parse_json(v: &Value) -> Value {
    let Value::String(s) = v else {
        return v.clone();
    };
    let t = s.trim();
    if let Ok(parsed) = serde_json::from_str::<Value>(t)
        && (parsed.is_object() || parsed.is_array())
    {
        return parsed;
    }
    if let Some(decoded) = percent_decode(t)
        && let Ok(parsed) = serde_json::from_str::<Value>(&decoded)
        && (parsed.is_object() || parsed.is_array())
    {
        return parsed;
    }
    v.clone()
}

/// RFC 3986 percent-decoding (what IAM uses); `None` when it is not valid UTF-8 after.
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Some(byte) = std::str::from_utf8(&b[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(byte);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A policy document in canonical form (see [`Normaliser::PolicyDocument`]).
fn policy(doc: &Value) -> Value {
    let Value::Object(m) = doc else {
        return canonical(doc);
    };
    let mut out = Map::new();
    for (k, v) in m {
        let v = if k == "Statement" {
            let statements = match v {
                Value::Array(a) => a.clone(),
                other => vec![other.clone()],
            };
            Value::Array(statements.iter().map(statement).collect())
        } else {
            canonical(v)
        };
        out.insert(k.clone(), v);
    }
    Value::Object(out)
}

fn statement(s: &Value) -> Value {
    let Value::Object(m) = s else {
        return canonical(s);
    };
    let mut out = Map::new();
    for (k, v) in m {
        let v = match k.as_str() {
            "Action" | "NotAction" | "Resource" | "NotResource" => strings(v),
            "Principal" | "NotPrincipal" => match v {
                Value::Object(p) => {
                    Value::Object(p.iter().map(|(k, v)| (k.clone(), strings(v))).collect())
                }
                other => canonical(other),
            },
            "Condition" => match v {
                Value::Object(ops) => Value::Object(
                    ops.iter()
                        .map(|(op, keys)| {
                            let keys = match keys {
                                Value::Object(km) => Value::Object(
                                    km.iter().map(|(k, v)| (k.clone(), strings(v))).collect(),
                                ),
                                other => canonical(other),
                            };
                            (op.clone(), keys)
                        })
                        .collect(),
                ),
                other => canonical(other),
            },
            _ => canonical(v),
        };
        out.insert(k.clone(), v);
    }
    Value::Object(out)
}

/// A string or a list of scalars as a sorted list of strings: `"a"` ≡ `["a"]`, `false` ≡
/// `"false"` (services return condition values as strings).
fn strings(v: &Value) -> Value {
    let scalar = |v: &Value| match v {
        Value::String(s) => Value::String(s.clone()),
        Value::Number(n) => Value::String(canonical(&Value::Number(n.clone())).to_string()),
        Value::Bool(b) => Value::String(b.to_string()),
        other => canonical(other),
    };
    let items = match v {
        Value::Array(a) => a.iter().map(scalar).collect(),
        other => vec![scalar(other)],
    };
    sorted(items)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_longest_entry_covers_a_path() {
        let k = Kind::LambdaFunction;
        assert_eq!(k.key_class("code.source"), KeyClass::WriteOnly);
        assert_eq!(k.key_class("code.sha"), KeyClass::Compared);
        assert_eq!(k.key_class("code"), KeyClass::Compared);
        assert_eq!(k.key_class("environment.SAMPLES"), KeyClass::Compared);
        assert!(k.spec_key("codex").is_none(), "a prefix must end at a dot");
        assert_eq!(
            Kind::DbClusterParameterGroup
                .spec_key("parameters.rds.force_ssl")
                .map(|k| k.path),
            Some("parameters")
        );
        assert_eq!(Kind::Vpc.key_class("cidr_block"), KeyClass::CreateOnly);
        assert_eq!(Kind::DbCluster.key_class("global_role"), KeyClass::Computed);
        assert_eq!(Kind::Vpc.key_class("no_such_key"), KeyClass::Compared);
        assert_eq!(
            Kind::DnsRecord.normaliser("alias_target.dns_name"),
            Some(Normaliser::DnsName)
        );
        assert_eq!(Kind::S3Bucket.normaliser("policy.Statement"), None);
    }

    #[test]
    fn tables_have_no_duplicate_paths() {
        for kind in Kind::ALL {
            let keys = kind.spec_keys();
            for (i, k) in keys.iter().enumerate() {
                assert!(
                    keys[..i].iter().all(|o| o.path != k.path),
                    "{kind}: {} listed twice",
                    k.path
                );
            }
        }
    }

    #[test]
    fn write_only_keys_are_not_returned() {
        let r = Resource {
            kind: Kind::LambdaFunction,
            region: "eu-south-1".into(),
            name: "f".into(),
            parent: None,
            id: "f".into(),
            arn: "arn".into(),
            spec: json!({"runtime": "python3.12", "code": {"filename": "m.py", "sha": "ab", "source": "print()"}}),
            attrs: Map::new(),
            tags: Default::default(),
            state: crate::backend::ResourceState::Available,
            depends_on: vec![],
        };
        let r = as_returned(r);
        assert_eq!(
            r.spec,
            json!({"runtime": "python3.12", "code": {"sha": "ab"}})
        );
        let mut zone = json!({"name": "example.com.", "force_destroy": true});
        strip_write_only(Kind::HostedZone, &mut zone);
        assert_eq!(zone, json!({"name": "example.com."}));
    }

    #[test]
    fn sets_and_comma_lists() {
        let asked = json!(["subnet-b", "subnet-a", "subnet-c"]);
        assert_eq!(
            CommaList.normalise(&json!("subnet-c,subnet-a, subnet-b")),
            CommaList.normalise(&asked)
        );
        assert_ne!(
            CommaList.normalise(&json!("subnet-c,subnet-a")),
            CommaList.normalise(&asked)
        );
        assert_eq!(
            Set.normalise(&json!([{"port": 443.0}, {"port": 80}])),
            Set.normalise(&json!([{"port": 80}, {"port": 443}]))
        );
    }

    #[test]
    fn policies_url_encoded_or_reformatted_are_the_same() {
        let asked = json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Principal": {"Service": "ec2.amazonaws.com"},
                "Action": ["s3:PutObject", "s3:GetObject"],
                "Resource": "arn:aws:s3:::b/*",
                "Condition": {"Bool": {"aws:SecureTransport": false}}
            }]
        });
        // As IAM returns it: URL-encoded, one-element lists, another key and list order.
        let returned = "%7B%22Statement%22%3A%5B%7B%22Resource%22%3A%5B%22arn%3Aaws%3As3%3A%3A%3Ab%2F%2A%22%5D%2C%22Action%22%3A%5B%22s3%3AGetObject%22%2C%22s3%3APutObject%22%5D%2C%22Condition%22%3A%7B%22Bool%22%3A%7B%22aws%3ASecureTransport%22%3A%22false%22%7D%7D%2C%22Effect%22%3A%22Allow%22%2C%22Principal%22%3A%7B%22Service%22%3A%5B%22ec2.amazonaws.com%22%5D%7D%7D%5D%2C%22Version%22%3A%222012-10-17%22%7D";
        assert_eq!(
            PolicyDocument.normalise(&json!(returned)),
            PolicyDocument.normalise(&asked)
        );
        // A JSON string, with the statement as a lone object.
        let text = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"Service":["ec2.amazonaws.com"]},"Action":["s3:GetObject","s3:PutObject"],"Resource":["arn:aws:s3:::b/*"],"Condition":{"Bool":{"aws:SecureTransport":"false"}}}}"#;
        assert_eq!(
            PolicyDocument.normalise(&json!(text)),
            PolicyDocument.normalise(&asked)
        );
        // A real change is still a change.
        let wider = text.replace("s3:PutObject", "s3:*");
        assert_ne!(
            PolicyDocument.normalise(&json!(wider)),
            PolicyDocument.normalise(&asked)
        );
        // Statement order is meaningful to readers and kept.
        let two = json!({"Statement": [{"Sid": "a"}, {"Sid": "b"}]});
        let swapped = json!({"Statement": [{"Sid": "b"}, {"Sid": "a"}]});
        assert_ne!(
            PolicyDocument.normalise(&two),
            PolicyDocument.normalise(&swapped)
        );
    }

    #[test]
    fn numbers_json_strings_and_dns_names() {
        assert_eq!(Number.normalise(&json!("1209600")), json!(1209600));
        assert_eq!(Number.normalise(&json!(50.0)), Number.normalise(&json!(50)));
        assert_ne!(Number.normalise(&json!("50.5")), json!(50));
        assert_eq!(
            Json.normalise(&json!(r#"{"a": [2, 1], "b": 1.0}"#)),
            json!({"a": [2, 1], "b": 1})
        );
        assert_eq!(
            Unordered.normalise(&json!(r#"{"source": ["b", "a"]}"#)),
            Unordered.normalise(&json!({"source": ["a", "b"]}))
        );
        assert_eq!(
            DnsName.normalise(&json!("API.Example.com")),
            DnsName.normalise(&json!("api.example.com."))
        );
        assert_eq!(percent_decode("a%2Fb%zz%"), Some("a/b%zz%".into()));
    }
}
