//! The AWS permissions each step type needs on the aws target: what `drflow policy` merges into
//! a least-privilege IAM policy for a runbook.
//!
//! Each [`Permission`] is one API action as [`Clients::call`](crate::aws::Clients::call) records
//! it (IAM service prefix and API name: `ec2:CreateVpc`) with the resource ARN pattern IAM can
//! scope it to, or `*` where the action allows no resource-level permission (AWS's *Service
//! Authorization Reference*). Patterns hold two placeholders, `${region}` and `${account}`,
//! filled in by `drflow policy` when the runbook's parameters and `--account` say.
//!
//! A step type's permissions are those of the kinds of resource it ensures (find, list, create,
//! update, delete, wait: the verbs of the seam the step may call), plus those of the typed
//! failover actions it calls ([`FailoverApi`](crate::backend::FailoverApi)), plus the few calls
//! AWS makes on the caller's behalf (`iam:PassRole` for a role handed to a service,
//! `ec2:RunInstances` for an Auto Scaling group's launches, KMS grants for encrypted storage).
//!
//! A handful of S3 operations are authorised by an IAM action of another name
//! (`PutBucketEncryption` by `s3:PutEncryptionConfiguration`): [`iam_action`] maps them.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use crate::backend::Kind;

/// One API action and the resources it acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Permission {
    /// `service:Operation`, as the aws backend records the call (`ec2:CreateVpc`,
    /// `elasticloadbalancing:CreateLoadBalancer`). Never a wildcard.
    pub action: &'static str,
    /// The ARN pattern of the resources, with `${region}` and `${account}` placeholders
    /// (`arn:aws:ec2:${region}:${account}:vpc/*`), or `*` when IAM cannot scope the action.
    pub resource: &'static str,
}

/// Shorthand for the tables below: a struct literal, so that `&[p!(…)]` is a `'static` slice.
macro_rules! p {
    ($action:expr, $resource:expr) => {
        Permission {
            action: $action,
            resource: $resource,
        }
    };
}

/// The IAM action that authorises an API call: the call's own name except for the S3 operations
/// IAM names differently.
pub fn iam_action(action: &str) -> &str {
    match action {
        "s3:HeadBucket" => "s3:ListBucket",
        "s3:ListBuckets" => "s3:ListAllMyBuckets",
        "s3:PutBucketEncryption" => "s3:PutEncryptionConfiguration",
        "s3:GetBucketEncryption" => "s3:GetEncryptionConfiguration",
        "s3:PutBucketReplication" | "s3:DeleteBucketReplication" => {
            "s3:PutReplicationConfiguration"
        }
        "s3:GetBucketReplication" => "s3:GetReplicationConfiguration",
        "s3:PutPublicAccessBlock" => "s3:PutBucketPublicAccessBlock",
        "s3:GetPublicAccessBlock" => "s3:GetBucketPublicAccessBlock",
        "s3:PutBucketLifecycleConfiguration" => "s3:PutLifecycleConfiguration",
        "s3:GetBucketLifecycleConfiguration" => "s3:GetLifecycleConfiguration",
        "s3:ListObjectVersions" => "s3:ListBucketVersions",
        "s3:DeleteObjects" => "s3:DeleteObject",
        other => other,
    }
}

// Resource patterns, by service. EC2, RDS and ELB mutations are scoped to the account and
// region (each names several resource types per call: a subnet's VPC, a cluster's subnet
// group); the others to their resource type.
const ANY: &str = "*";
const EC2: &str = "arn:aws:ec2:${region}:${account}:*";
const EC2_IMAGE: &str = "arn:aws:ec2:${region}::image/*";
const RDS: &str = "arn:aws:rds:${region}:${account}:*";
const RDS_GLOBAL: &str = "arn:aws:rds::${account}:global-cluster:*";
const ELB: &str = "arn:aws:elasticloadbalancing:${region}:${account}:*";
const ASG: &str =
    "arn:aws:autoscaling:${region}:${account}:autoScalingGroup:*:autoScalingGroupName/*";
const ZONE: &str = "arn:aws:route53:::hostedzone/*";
const HEALTH_CHECK: &str = "arn:aws:route53:::healthcheck/*";
const CHANGE: &str = "arn:aws:route53:::change/*";
const CERT: &str = "arn:aws:acm:${region}:${account}:certificate/*";
const TOPIC: &str = "arn:aws:sns:${region}:${account}:*";
const QUEUE: &str = "arn:aws:sqs:${region}:${account}:*";
const KEY: &str = "arn:aws:kms:${region}:${account}:key/*";
const ALIAS: &str = "arn:aws:kms:${region}:${account}:alias/*";
const ROLE: &str = "arn:aws:iam::${account}:role/*";
const PROFILE: &str = "arn:aws:iam::${account}:instance-profile/*";
const BUCKET: &str = "arn:aws:s3:::*";
const TABLE: &str = "arn:aws:dynamodb:${region}:${account}:table/*";
const FUNCTION: &str = "arn:aws:lambda:${region}:${account}:function:*";
const RULE: &str = "arn:aws:events:${region}:${account}:rule/*";
const ALARM: &str = "arn:aws:cloudwatch:${region}:${account}:alarm:*";
const DASHBOARD: &str = "arn:aws:cloudwatch::${account}:dashboard/*";
const AMI_PARAMETER: &str = "arn:aws:ssm:${region}::parameter/aws/service/*";

/// What finding and listing a kind's resources calls (the reads of every verb).
fn kind_reads(kind: Kind) -> &'static [Permission] {
    match kind {
        Kind::Vpc => &[
            p!("ec2:DescribeVpcs", ANY),
            p!("ec2:DescribeVpcAttribute", ANY),
        ],
        Kind::Subnet => &[p!("ec2:DescribeSubnets", ANY)],
        Kind::InternetGateway => &[p!("ec2:DescribeInternetGateways", ANY)],
        Kind::ElasticIp => &[p!("ec2:DescribeAddresses", ANY)],
        Kind::NatGateway => &[p!("ec2:DescribeNatGateways", ANY)],
        Kind::RouteTable | Kind::Route => &[p!("ec2:DescribeRouteTables", ANY)],
        Kind::VpcPeering => &[p!("ec2:DescribeVpcPeeringConnections", ANY)],
        Kind::SecurityGroup => &[
            p!("ec2:DescribeSecurityGroups", ANY),
            p!("ec2:DescribeSecurityGroupRules", ANY),
        ],
        Kind::LaunchTemplate => &[
            p!("ec2:DescribeLaunchTemplates", ANY),
            p!("ec2:DescribeLaunchTemplateVersions", ANY),
            p!("ssm:GetParameter", AMI_PARAMETER),
        ],
        Kind::KmsKey => &[
            p!("kms:ListKeys", ANY),
            p!("kms:DescribeKey", KEY),
            p!("kms:ListResourceTags", KEY),
            p!("kms:GetKeyRotationStatus", KEY),
            p!("kms:GetKeyPolicy", KEY),
            // The account id in the key policy drflow writes.
            p!("sts:GetCallerIdentity", ANY),
        ],
        Kind::KmsAlias => &[p!("kms:ListAliases", ANY)],
        Kind::IamRole => &[
            p!("iam:GetRole", ROLE),
            p!("iam:ListRoles", ANY),
            p!("iam:ListRoleTags", ROLE),
            p!("iam:ListRolePolicies", ROLE),
            p!("iam:GetRolePolicy", ROLE),
            p!("iam:ListAttachedRolePolicies", ROLE),
            // Deleting a role: the instance profiles it is in first.
            p!("iam:ListInstanceProfilesForRole", ROLE),
        ],
        Kind::InstanceProfile => &[
            p!("iam:GetInstanceProfile", PROFILE),
            p!("iam:ListInstanceProfiles", ANY),
        ],
        Kind::S3Bucket => &[
            p!("s3:ListBuckets", ANY),
            p!("s3:HeadBucket", BUCKET),
            p!("s3:GetBucketLocation", BUCKET),
            p!("s3:GetBucketTagging", BUCKET),
            p!("s3:GetBucketVersioning", BUCKET),
            p!("s3:GetBucketEncryption", BUCKET),
            p!("s3:GetPublicAccessBlock", BUCKET),
            p!("s3:GetBucketPolicy", BUCKET),
            p!("s3:GetBucketReplication", BUCKET),
            p!("s3:GetBucketLifecycleConfiguration", BUCKET),
            p!("s3:GetBucketOwnershipControls", BUCKET),
        ],
        Kind::DynamoTable => &[
            p!("dynamodb:ListTables", ANY),
            p!("dynamodb:DescribeTable", TABLE),
            p!("dynamodb:DescribeContinuousBackups", TABLE),
            p!("dynamodb:DescribeTimeToLive", TABLE),
            p!("dynamodb:ListTagsOfResource", TABLE),
        ],
        Kind::DbClusterParameterGroup => &[
            p!("rds:DescribeDBClusterParameterGroups", ANY),
            p!("rds:DescribeDBClusterParameters", ANY),
            p!("rds:ListTagsForResource", RDS),
        ],
        Kind::DbSubnetGroup => &[
            p!("rds:DescribeDBSubnetGroups", ANY),
            p!("rds:ListTagsForResource", RDS),
        ],
        Kind::GlobalCluster => &[p!("rds:DescribeGlobalClusters", ANY)],
        Kind::DbCluster => &[
            p!("rds:DescribeDBClusters", ANY),
            p!("rds:ListTagsForResource", RDS),
        ],
        Kind::DbInstance => &[
            p!("rds:DescribeDBInstances", ANY),
            p!("rds:ListTagsForResource", RDS),
        ],
        Kind::HostedZone => &[
            p!("route53:ListHostedZones", ANY),
            p!("route53:ListHostedZonesByName", ANY),
            p!("route53:GetHostedZone", ZONE),
            p!("route53:ListTagsForResource", ZONE),
            p!("route53:ListTagsForResources", ZONE),
        ],
        Kind::Certificate => &[
            p!("acm:ListCertificates", ANY),
            p!("acm:DescribeCertificate", CERT),
            p!("acm:ListTagsForCertificate", CERT),
        ],
        Kind::LoadBalancer => &[
            p!("elasticloadbalancing:DescribeLoadBalancers", ANY),
            p!("elasticloadbalancing:DescribeLoadBalancerAttributes", ANY),
            p!("elasticloadbalancing:DescribeTags", ANY),
        ],
        Kind::TargetGroup => &[
            p!("elasticloadbalancing:DescribeTargetGroups", ANY),
            p!("elasticloadbalancing:DescribeTargetGroupAttributes", ANY),
            p!("elasticloadbalancing:DescribeTags", ANY),
        ],
        Kind::Listener => &[p!("elasticloadbalancing:DescribeListeners", ANY)],
        Kind::AutoScalingGroup => &[
            p!("autoscaling:DescribeAutoScalingGroups", ANY),
            p!("autoscaling:DescribeTags", ANY),
        ],
        Kind::ScalingPolicy => &[p!("autoscaling:DescribePolicies", ANY)],
        Kind::HealthCheck => &[
            p!("route53:ListHealthChecks", ANY),
            p!("route53:GetHealthCheck", HEALTH_CHECK),
            p!("route53:ListTagsForResource", HEALTH_CHECK),
            p!("route53:ListTagsForResources", HEALTH_CHECK),
        ],
        Kind::DnsRecord => &[p!("route53:ListResourceRecordSets", ZONE)],
        Kind::SnsTopic => &[
            p!("sns:ListTopics", ANY),
            p!("sns:GetTopicAttributes", TOPIC),
            p!("sns:ListTagsForResource", TOPIC),
        ],
        Kind::SnsSubscription => &[
            p!("sns:ListSubscriptionsByTopic", TOPIC),
            p!("sns:GetSubscriptionAttributes", ANY),
        ],
        Kind::SqsQueue => &[
            p!("sqs:ListQueues", ANY),
            p!("sqs:GetQueueUrl", QUEUE),
            p!("sqs:GetQueueAttributes", QUEUE),
            p!("sqs:ListQueueTags", QUEUE),
        ],
        Kind::LambdaFunction => &[
            p!("lambda:ListFunctions", ANY),
            p!("lambda:GetFunction", FUNCTION),
            p!("lambda:GetPolicy", FUNCTION),
            p!("lambda:ListTags", FUNCTION),
        ],
        Kind::EventRule => &[
            p!("events:ListRules", ANY),
            p!("events:DescribeRule", RULE),
            p!("events:ListTargetsByRule", RULE),
            p!("events:ListTagsForResource", RULE),
        ],
        Kind::MetricAlarm | Kind::CompositeAlarm => &[
            p!("cloudwatch:DescribeAlarms", ALARM),
            p!("cloudwatch:ListTagsForResource", ALARM),
        ],
        Kind::Dashboard => &[
            p!("cloudwatch:ListDashboards", ANY),
            p!("cloudwatch:GetDashboard", DASHBOARD),
        ],
    }
}

/// What creating, updating, tagging and deleting a kind's resources calls.
fn kind_writes(kind: Kind) -> &'static [Permission] {
    match kind {
        Kind::Vpc => &[
            p!("ec2:CreateVpc", EC2),
            p!("ec2:ModifyVpcAttribute", EC2),
            p!("ec2:CreateTags", EC2),
            p!("ec2:DeleteTags", EC2),
            p!("ec2:DeleteVpc", EC2),
        ],
        Kind::Subnet => &[
            p!("ec2:CreateSubnet", EC2),
            p!("ec2:ModifySubnetAttribute", EC2),
            p!("ec2:CreateTags", EC2),
            p!("ec2:DeleteTags", EC2),
            p!("ec2:DeleteSubnet", EC2),
        ],
        Kind::InternetGateway => &[
            p!("ec2:CreateInternetGateway", EC2),
            p!("ec2:AttachInternetGateway", EC2),
            p!("ec2:DetachInternetGateway", EC2),
            p!("ec2:CreateTags", EC2),
            p!("ec2:DeleteTags", EC2),
            p!("ec2:DeleteInternetGateway", EC2),
        ],
        Kind::ElasticIp => &[
            p!("ec2:AllocateAddress", EC2),
            p!("ec2:CreateTags", EC2),
            p!("ec2:DeleteTags", EC2),
            p!("ec2:ReleaseAddress", EC2),
        ],
        Kind::NatGateway => &[
            p!("ec2:CreateNatGateway", EC2),
            p!("ec2:CreateTags", EC2),
            p!("ec2:DeleteTags", EC2),
            p!("ec2:DeleteNatGateway", EC2),
        ],
        Kind::RouteTable => &[
            p!("ec2:CreateRouteTable", EC2),
            p!("ec2:AssociateRouteTable", EC2),
            p!("ec2:DisassociateRouteTable", EC2),
            p!("ec2:CreateTags", EC2),
            p!("ec2:DeleteTags", EC2),
            p!("ec2:DeleteRouteTable", EC2),
        ],
        Kind::Route => &[
            p!("ec2:CreateRoute", EC2),
            p!("ec2:ReplaceRoute", EC2),
            p!("ec2:DeleteRoute", EC2),
        ],
        Kind::VpcPeering => &[
            p!("ec2:CreateVpcPeeringConnection", EC2),
            p!("ec2:AcceptVpcPeeringConnection", EC2),
            p!("ec2:CreateTags", EC2),
            p!("ec2:DeleteTags", EC2),
            p!("ec2:DeleteVpcPeeringConnection", EC2),
        ],
        Kind::SecurityGroup => &[
            p!("ec2:CreateSecurityGroup", EC2),
            p!("ec2:AuthorizeSecurityGroupIngress", EC2),
            p!("ec2:AuthorizeSecurityGroupEgress", EC2),
            p!("ec2:RevokeSecurityGroupIngress", EC2),
            p!("ec2:RevokeSecurityGroupEgress", EC2),
            p!("ec2:CreateTags", EC2),
            p!("ec2:DeleteTags", EC2),
            p!("ec2:DeleteSecurityGroup", EC2),
        ],
        Kind::LaunchTemplate => &[
            p!("ec2:CreateLaunchTemplate", EC2),
            p!("ec2:CreateLaunchTemplateVersion", EC2),
            p!("ec2:ModifyLaunchTemplate", EC2),
            p!("ec2:CreateTags", EC2),
            p!("ec2:DeleteTags", EC2),
            p!("ec2:DeleteLaunchTemplate", EC2),
            // The template names the instance profile: EC2 checks its role may be passed.
            p!("iam:PassRole", ROLE),
        ],
        Kind::KmsKey => &[
            p!("kms:CreateKey", ANY),
            p!("kms:ReplicateKey", KEY),
            p!("kms:EnableKeyRotation", KEY),
            p!("kms:DisableKeyRotation", KEY),
            p!("kms:EnableKey", KEY),
            p!("kms:DisableKey", KEY),
            p!("kms:UpdateKeyDescription", KEY),
            p!("kms:PutKeyPolicy", KEY),
            p!("kms:TagResource", KEY),
            p!("kms:UntagResource", KEY),
            p!("kms:ScheduleKeyDeletion", KEY),
        ],
        Kind::KmsAlias => &[
            p!("kms:CreateAlias", ALIAS),
            p!("kms:CreateAlias", KEY),
            p!("kms:UpdateAlias", ALIAS),
            p!("kms:UpdateAlias", KEY),
            p!("kms:DeleteAlias", ALIAS),
            p!("kms:DeleteAlias", KEY),
        ],
        Kind::IamRole => &[
            p!("iam:CreateRole", ROLE),
            p!("iam:UpdateAssumeRolePolicy", ROLE),
            p!("iam:UpdateRole", ROLE),
            p!("iam:PutRolePolicy", ROLE),
            p!("iam:DeleteRolePolicy", ROLE),
            p!("iam:AttachRolePolicy", ROLE),
            p!("iam:DetachRolePolicy", ROLE),
            p!("iam:TagRole", ROLE),
            p!("iam:UntagRole", ROLE),
            p!("iam:DeleteRole", ROLE),
        ],
        Kind::InstanceProfile => &[
            p!("iam:CreateInstanceProfile", PROFILE),
            p!("iam:AddRoleToInstanceProfile", PROFILE),
            p!("iam:RemoveRoleFromInstanceProfile", PROFILE),
            p!("iam:TagInstanceProfile", PROFILE),
            p!("iam:DeleteInstanceProfile", PROFILE),
            p!("iam:PassRole", ROLE),
        ],
        Kind::S3Bucket => &[
            p!("s3:CreateBucket", BUCKET),
            p!("s3:PutBucketTagging", BUCKET),
            p!("s3:PutBucketVersioning", BUCKET),
            p!("s3:PutBucketEncryption", BUCKET),
            p!("s3:PutPublicAccessBlock", BUCKET),
            p!("s3:PutBucketPolicy", BUCKET),
            p!("s3:PutBucketReplication", BUCKET),
            p!("s3:PutBucketLifecycleConfiguration", BUCKET),
            p!("s3:PutBucketOwnershipControls", BUCKET),
            p!("s3:DeleteBucketPolicy", BUCKET),
            // Emptying a bucket before deleting it (`force_destroy`).
            p!("s3:ListObjectVersions", BUCKET),
            p!("s3:DeleteObjects", "arn:aws:s3:::*/*"),
            p!("s3:DeleteBucket", BUCKET),
            // The replication role is passed to S3.
            p!("iam:PassRole", ROLE),
        ],
        Kind::DynamoTable => &[
            p!("dynamodb:CreateTable", TABLE),
            p!("dynamodb:UpdateTable", TABLE),
            p!("dynamodb:UpdateContinuousBackups", TABLE),
            p!("dynamodb:UpdateTimeToLive", TABLE),
            // Replicas of a global table (version 2019.11.21) are created by UpdateTable.
            p!("dynamodb:CreateTableReplica", TABLE),
            p!("dynamodb:DeleteTableReplica", TABLE),
            p!("dynamodb:TagResource", TABLE),
            p!("dynamodb:UntagResource", TABLE),
            p!("dynamodb:DeleteTable", TABLE),
            // Encryption under a customer key.
            p!("kms:DescribeKey", KEY),
            p!("kms:CreateGrant", KEY),
        ],
        Kind::DbClusterParameterGroup => &[
            p!("rds:CreateDBClusterParameterGroup", RDS),
            p!("rds:ModifyDBClusterParameterGroup", RDS),
            p!("rds:AddTagsToResource", RDS),
            p!("rds:RemoveTagsFromResource", RDS),
            p!("rds:DeleteDBClusterParameterGroup", RDS),
        ],
        Kind::DbSubnetGroup => &[
            p!("rds:CreateDBSubnetGroup", RDS),
            p!("rds:ModifyDBSubnetGroup", RDS),
            p!("rds:AddTagsToResource", RDS),
            p!("rds:RemoveTagsFromResource", RDS),
            p!("rds:DeleteDBSubnetGroup", RDS),
        ],
        Kind::GlobalCluster => &[
            p!("rds:CreateGlobalCluster", RDS_GLOBAL),
            p!("rds:CreateGlobalCluster", RDS),
            p!("rds:ModifyGlobalCluster", RDS_GLOBAL),
            p!("rds:RemoveFromGlobalCluster", RDS_GLOBAL),
            p!("rds:RemoveFromGlobalCluster", RDS),
            p!("rds:DeleteGlobalCluster", RDS_GLOBAL),
        ],
        Kind::DbCluster => &[
            p!("rds:CreateDBCluster", RDS),
            p!("rds:CreateDBCluster", RDS_GLOBAL),
            p!("rds:ModifyDBCluster", RDS),
            p!("rds:AddTagsToResource", RDS),
            p!("rds:RemoveTagsFromResource", RDS),
            p!("rds:DeleteDBCluster", RDS),
            // Storage encrypted under a customer key.
            p!("kms:DescribeKey", KEY),
            p!("kms:CreateGrant", KEY),
        ],
        Kind::DbInstance => &[
            p!("rds:CreateDBInstance", RDS),
            p!("rds:ModifyDBInstance", RDS),
            p!("rds:AddTagsToResource", RDS),
            p!("rds:RemoveTagsFromResource", RDS),
            p!("rds:DeleteDBInstance", RDS),
        ],
        Kind::HostedZone => &[
            p!("route53:CreateHostedZone", ANY),
            p!("route53:ChangeTagsForResource", ZONE),
            p!("route53:UpdateHostedZoneComment", ZONE),
            p!("route53:DeleteHostedZone", ZONE),
            p!("route53:GetChange", CHANGE),
        ],
        Kind::Certificate => &[
            p!("acm:RequestCertificate", ANY),
            p!("acm:UpdateCertificateOptions", CERT),
            p!("acm:AddTagsToCertificate", CERT),
            p!("acm:RemoveTagsFromCertificate", CERT),
            p!("acm:DeleteCertificate", CERT),
        ],
        Kind::LoadBalancer => &[
            p!("elasticloadbalancing:CreateLoadBalancer", ELB),
            p!("elasticloadbalancing:ModifyLoadBalancerAttributes", ELB),
            p!("elasticloadbalancing:SetSecurityGroups", ELB),
            p!("elasticloadbalancing:SetSubnets", ELB),
            p!("elasticloadbalancing:SetIpAddressType", ELB),
            p!("elasticloadbalancing:AddTags", ELB),
            p!("elasticloadbalancing:RemoveTags", ELB),
            p!("elasticloadbalancing:DeleteLoadBalancer", ELB),
        ],
        Kind::TargetGroup => &[
            p!("elasticloadbalancing:CreateTargetGroup", ELB),
            p!("elasticloadbalancing:ModifyTargetGroup", ELB),
            p!("elasticloadbalancing:ModifyTargetGroupAttributes", ELB),
            p!("elasticloadbalancing:AddTags", ELB),
            p!("elasticloadbalancing:RemoveTags", ELB),
            p!("elasticloadbalancing:DeleteTargetGroup", ELB),
        ],
        Kind::Listener => &[
            p!("elasticloadbalancing:CreateListener", ELB),
            p!("elasticloadbalancing:ModifyListener", ELB),
            p!("elasticloadbalancing:DeleteListener", ELB),
        ],
        Kind::AutoScalingGroup => &[
            p!("autoscaling:CreateAutoScalingGroup", ASG),
            p!("autoscaling:UpdateAutoScalingGroup", ASG),
            p!("autoscaling:EnableMetricsCollection", ASG),
            p!("autoscaling:PutWarmPool", ASG),
            p!("autoscaling:AttachLoadBalancerTargetGroups", ASG),
            p!("autoscaling:DetachLoadBalancerTargetGroups", ASG),
            p!("autoscaling:CreateOrUpdateTags", ASG),
            p!("autoscaling:DeleteTags", ASG),
            p!("autoscaling:DeleteAutoScalingGroup", ASG),
            // Launching from a launch template is authorised against the caller.
            p!("ec2:RunInstances", EC2),
            p!("ec2:RunInstances", EC2_IMAGE),
            p!("ec2:CreateTags", EC2),
            p!("iam:PassRole", ROLE),
        ],
        Kind::ScalingPolicy => &[
            p!("autoscaling:PutScalingPolicy", ASG),
            p!("autoscaling:DeletePolicy", ASG),
        ],
        Kind::HealthCheck => &[
            p!("route53:CreateHealthCheck", ANY),
            p!("route53:UpdateHealthCheck", HEALTH_CHECK),
            p!("route53:ChangeTagsForResource", HEALTH_CHECK),
            p!("route53:DeleteHealthCheck", HEALTH_CHECK),
        ],
        Kind::DnsRecord => &[
            p!("route53:ChangeResourceRecordSets", ZONE),
            p!("route53:GetChange", CHANGE),
        ],
        Kind::SnsTopic => &[
            p!("sns:CreateTopic", TOPIC),
            p!("sns:SetTopicAttributes", TOPIC),
            p!("sns:TagResource", TOPIC),
            p!("sns:UntagResource", TOPIC),
            p!("sns:DeleteTopic", TOPIC),
        ],
        Kind::SnsSubscription => &[
            p!("sns:Subscribe", TOPIC),
            p!("sns:SetSubscriptionAttributes", ANY),
            p!("sns:Unsubscribe", ANY),
        ],
        Kind::SqsQueue => &[
            p!("sqs:CreateQueue", QUEUE),
            p!("sqs:SetQueueAttributes", QUEUE),
            p!("sqs:TagQueue", QUEUE),
            p!("sqs:UntagQueue", QUEUE),
            p!("sqs:DeleteQueue", QUEUE),
        ],
        Kind::LambdaFunction => &[
            p!("lambda:CreateFunction", FUNCTION),
            p!("lambda:UpdateFunctionConfiguration", FUNCTION),
            p!("lambda:UpdateFunctionCode", FUNCTION),
            p!("lambda:AddPermission", FUNCTION),
            p!("lambda:RemovePermission", FUNCTION),
            p!("lambda:TagResource", FUNCTION),
            p!("lambda:UntagResource", FUNCTION),
            p!("lambda:DeleteFunction", FUNCTION),
            p!("iam:PassRole", ROLE),
        ],
        Kind::EventRule => &[
            p!("events:PutRule", RULE),
            p!("events:PutTargets", RULE),
            p!("events:RemoveTargets", RULE),
            p!("events:TagResource", RULE),
            p!("events:UntagResource", RULE),
            p!("events:DeleteRule", RULE),
            p!("iam:PassRole", ROLE),
        ],
        Kind::MetricAlarm => &[
            p!("cloudwatch:PutMetricAlarm", ALARM),
            p!("cloudwatch:TagResource", ALARM),
            p!("cloudwatch:UntagResource", ALARM),
            p!("cloudwatch:DeleteAlarms", ALARM),
        ],
        Kind::CompositeAlarm => &[
            p!("cloudwatch:PutCompositeAlarm", ALARM),
            p!("cloudwatch:TagResource", ALARM),
            p!("cloudwatch:UntagResource", ALARM),
            p!("cloudwatch:DeleteAlarms", ALARM),
        ],
        Kind::Dashboard => &[
            p!("cloudwatch:PutDashboard", DASHBOARD),
            p!("cloudwatch:DeleteDashboards", DASHBOARD),
        ],
    }
}

/// A typed failover action of [`FailoverApi`](crate::backend::FailoverApi), by its method name.
pub(crate) fn failover_action(method: &str) -> &'static [Permission] {
    match method {
        "get_health_check_status" => &[p!("route53:GetHealthCheckStatus", HEALTH_CHECK)],
        "set_health_check_inverted" => &[
            p!("route53:GetHealthCheck", HEALTH_CHECK),
            p!("route53:UpdateHealthCheck", HEALTH_CHECK),
        ],
        "describe_alarms" => &[p!("cloudwatch:DescribeAlarms", ALARM)],
        "get_metric_data" => &[p!("cloudwatch:GetMetricData", ANY)],
        "describe_global_cluster" => &[
            p!("rds:DescribeGlobalClusters", ANY),
            p!("rds:DescribeDBClusters", ANY),
            // Each secondary's AuroraGlobalDBReplicationLag.
            p!("cloudwatch:GetMetricData", ANY),
        ],
        "switchover_global_cluster" => &[
            p!("rds:SwitchoverGlobalCluster", RDS_GLOBAL),
            p!("rds:SwitchoverGlobalCluster", RDS),
        ],
        "failover_global_cluster" => &[
            p!("rds:FailoverGlobalCluster", RDS_GLOBAL),
            p!("rds:FailoverGlobalCluster", RDS),
        ],
        "describe_target_health" => &[p!("elasticloadbalancing:DescribeTargetHealth", ANY)],
        "deregister_targets" => &[p!("elasticloadbalancing:DeregisterTargets", ELB)],
        "describe_auto_scaling_group" => &[
            p!("autoscaling:DescribeAutoScalingGroups", ANY),
            p!("autoscaling:DescribeWarmPool", ANY),
            p!("autoscaling:DescribeScalingActivities", ANY),
        ],
        "update_auto_scaling_group" => &[
            p!("autoscaling:UpdateAutoScalingGroup", ASG),
            // It answers with the group as it is then.
            p!("autoscaling:DescribeAutoScalingGroups", ANY),
            p!("autoscaling:DescribeWarmPool", ANY),
            p!("autoscaling:DescribeScalingActivities", ANY),
            p!("ec2:RunInstances", EC2),
            p!("ec2:RunInstances", EC2_IMAGE),
            p!("ec2:CreateTags", EC2),
            p!("iam:PassRole", ROLE),
        ],
        "list_resource_record_sets" => &[p!("route53:ListResourceRecordSets", ZONE)],
        "set_record_weight" => &[
            p!("route53:ListResourceRecordSets", ZONE),
            p!("route53:ChangeResourceRecordSets", ZONE),
        ],
        "get_change" => &[p!("route53:GetChange", CHANGE)],
        "test_dns_answer" => &[p!("route53:TestDNSAnswer", ANY)],
        "publish" => &[p!("sns:Publish", TOPIC)],
        // drflow's own HTTPS probe calls no AWS API.
        "probe" => &[],
        other => panic!("bug: no permissions declared for the failover action {other}"),
    }
}

/// How a step type reaches AWS: the kinds it ensures (reads and writes), the kinds it only
/// looks at, the failover actions it calls, and the other calls it makes.
struct Uses {
    step_type: &'static str,
    ensures: &'static [Kind],
    reads: &'static [Kind],
    actions: &'static [&'static str],
    extra: &'static [Permission],
}

/// Every cloud and failover step type (`drflow steps`); the test `every_cloud_step_is_declared`
/// keeps it complete.
const STEPS: &[Uses] = &[
    Uses {
        step_type: "network.vpc",
        ensures: &[
            Kind::Vpc,
            Kind::InternetGateway,
            Kind::Subnet,
            Kind::RouteTable,
            Kind::Route,
            Kind::ElasticIp,
            Kind::NatGateway,
        ],
        reads: &[],
        actions: &[],
        extra: &[p!("ec2:DescribeAvailabilityZones", ANY)],
    },
    Uses {
        step_type: "network.peering",
        ensures: &[Kind::VpcPeering],
        reads: &[Kind::Vpc],
        actions: &[],
        extra: &[],
    },
    Uses {
        step_type: "network.security_groups",
        ensures: &[Kind::SecurityGroup],
        reads: &[],
        actions: &[],
        extra: &[],
    },
    Uses {
        step_type: "kms.multi_region_key",
        ensures: &[Kind::KmsKey, Kind::KmsAlias],
        reads: &[],
        actions: &[],
        extra: &[],
    },
    Uses {
        step_type: "iam.app_roles",
        ensures: &[Kind::IamRole, Kind::InstanceProfile],
        reads: &[],
        actions: &[],
        extra: &[],
    },
    Uses {
        step_type: "rds.global_database",
        ensures: &[
            Kind::DbClusterParameterGroup,
            Kind::DbSubnetGroup,
            Kind::GlobalCluster,
            Kind::DbCluster,
            Kind::DbInstance,
        ],
        reads: &[],
        actions: &[],
        extra: &[],
    },
    Uses {
        step_type: "dynamodb.global_table",
        ensures: &[Kind::DynamoTable],
        reads: &[],
        actions: &[],
        extra: &[],
    },
    Uses {
        step_type: "s3.replicated_buckets",
        ensures: &[Kind::S3Bucket, Kind::IamRole],
        reads: &[],
        actions: &[],
        extra: &[],
    },
    Uses {
        step_type: "compute.launch_template",
        ensures: &[Kind::LaunchTemplate],
        reads: &[],
        actions: &[],
        extra: &[],
    },
    Uses {
        step_type: "autoscaling.group",
        ensures: &[
            Kind::AutoScalingGroup,
            Kind::ScalingPolicy,
            Kind::MetricAlarm,
        ],
        reads: &[],
        actions: &[],
        extra: &[],
    },
    Uses {
        step_type: "route53.hosted_zone",
        ensures: &[Kind::HostedZone],
        reads: &[],
        actions: &[],
        extra: &[],
    },
    Uses {
        step_type: "acm.certificate",
        ensures: &[Kind::Certificate, Kind::DnsRecord],
        reads: &[],
        actions: &[],
        extra: &[],
    },
    Uses {
        step_type: "elb.load_balancer",
        ensures: &[Kind::LoadBalancer, Kind::TargetGroup, Kind::Listener],
        reads: &[],
        actions: &[],
        extra: &[],
    },
    Uses {
        step_type: "route53.health_check",
        ensures: &[Kind::HealthCheck],
        reads: &[],
        actions: &[],
        extra: &[],
    },
    Uses {
        step_type: "route53.failover_dns",
        ensures: &[Kind::DnsRecord],
        reads: &[],
        actions: &[],
        extra: &[],
    },
    Uses {
        step_type: "sns.topic",
        ensures: &[Kind::SnsTopic, Kind::SnsSubscription],
        reads: &[],
        actions: &[],
        extra: &[],
    },
    Uses {
        step_type: "cloudwatch.alarms",
        ensures: &[Kind::MetricAlarm, Kind::CompositeAlarm],
        reads: &[],
        actions: &[],
        extra: &[],
    },
    Uses {
        step_type: "lambda.replication_monitor",
        ensures: &[Kind::LambdaFunction, Kind::EventRule],
        reads: &[],
        actions: &[],
        extra: &[],
    },
    Uses {
        step_type: "events.alarm_queue",
        ensures: &[Kind::EventRule, Kind::SqsQueue, Kind::IamRole],
        reads: &[],
        actions: &[],
        extra: &[],
    },
    Uses {
        step_type: "cloudwatch.dashboard",
        ensures: &[Kind::Dashboard],
        reads: &[],
        actions: &[],
        extra: &[],
    },
    Uses {
        step_type: "dr.readiness",
        ensures: &[],
        reads: &[
            Kind::GlobalCluster,
            Kind::DbCluster,
            Kind::DbInstance,
            Kind::AutoScalingGroup,
            Kind::LoadBalancer,
            Kind::HealthCheck,
            Kind::DnsRecord,
            Kind::SnsTopic,
            Kind::MetricAlarm,
            Kind::SqsQueue,
            Kind::DynamoTable,
        ],
        actions: &["describe_auto_scaling_group", "get_health_check_status"],
        extra: &[],
    },
    Uses {
        step_type: "cloud.teardown",
        ensures: Kind::ALL,
        reads: &[],
        actions: &[],
        extra: &[],
    },
    Uses {
        step_type: "cloud.delete_superseded",
        ensures: Kind::ALL,
        reads: &[],
        actions: &[],
        extra: &[],
    },
    Uses {
        step_type: "dr.discover",
        ensures: &[],
        reads: &[
            Kind::GlobalCluster,
            Kind::DbCluster,
            Kind::HealthCheck,
            Kind::HostedZone,
            Kind::DnsRecord,
            Kind::TargetGroup,
            Kind::AutoScalingGroup,
            Kind::SnsTopic,
        ],
        actions: &[
            "list_resource_record_sets",
            "test_dns_answer",
            "describe_auto_scaling_group",
        ],
        extra: &[],
    },
    Uses {
        step_type: "dr.read_signals",
        ensures: &[],
        reads: &[],
        actions: &[
            "get_health_check_status",
            "describe_alarms",
            "probe",
            "describe_auto_scaling_group",
        ],
        extra: &[],
    },
    Uses {
        step_type: "dr.fence",
        ensures: &[],
        reads: &[],
        actions: &[
            "describe_auto_scaling_group",
            "update_auto_scaling_group",
            "describe_target_health",
            "deregister_targets",
        ],
        extra: &[],
    },
    Uses {
        step_type: "autoscaling.match_capacity",
        ensures: &[],
        reads: &[],
        actions: &["describe_auto_scaling_group", "update_auto_scaling_group"],
        extra: &[],
    },
    Uses {
        step_type: "autoscaling.set_capacity",
        ensures: &[],
        reads: &[],
        actions: &["describe_auto_scaling_group", "update_auto_scaling_group"],
        extra: &[],
    },
    Uses {
        step_type: "rds.describe_global_cluster",
        ensures: &[],
        reads: &[],
        actions: &["describe_global_cluster"],
        extra: &[],
    },
    Uses {
        step_type: "rds.promote_global_cluster",
        ensures: &[],
        reads: &[],
        actions: &[
            "describe_global_cluster",
            "switchover_global_cluster",
            "failover_global_cluster",
        ],
        extra: &[],
    },
    Uses {
        step_type: "route53.shift_traffic",
        ensures: &[],
        reads: &[],
        actions: &[
            "describe_global_cluster",
            "describe_target_health",
            "list_resource_record_sets",
            "set_record_weight",
            "get_health_check_status",
            "set_health_check_inverted",
            "get_change",
            "test_dns_answer",
        ],
        extra: &[],
    },
    Uses {
        step_type: "route53.test_dns_answer",
        ensures: &[],
        reads: &[],
        actions: &["test_dns_answer"],
        extra: &[],
    },
    Uses {
        step_type: "sns.publish",
        ensures: &[],
        reads: &[],
        actions: &["publish"],
        extra: &[],
    },
];

static PERMISSIONS: LazyLock<BTreeMap<&'static str, Vec<Permission>>> = LazyLock::new(|| {
    STEPS
        .iter()
        .map(|u| {
            let mut all: Vec<Permission> = Vec::new();
            for &k in u.ensures {
                all.extend_from_slice(kind_reads(k));
                all.extend_from_slice(kind_writes(k));
            }
            for &k in u.reads {
                all.extend_from_slice(kind_reads(k));
            }
            for a in u.actions {
                all.extend_from_slice(failover_action(a));
            }
            all.extend_from_slice(u.extra);
            all.sort();
            all.dedup();
            (u.step_type, all)
        })
        .collect()
});

/// The AWS permissions the step type `step_type` needs on the aws target, sorted by action then
/// resource; empty for a step type that calls no AWS API (`core.*`, `dr.decide`) or is unknown.
pub fn step_actions(step_type: &str) -> &'static [Permission] {
    PERMISSIONS.get(step_type).map(Vec::as_slice).unwrap_or(&[])
}

/// What `drflow daemon` itself calls on the aws target, besides the steps of the runbooks it
/// starts: it finds the alarm queue, long-polls it and deletes what it journaled, and reads
/// alarm states for its periodic reconcile, and finds the primary's Route 53 health check to
/// learn what its own probe requests (the probe itself is a plain HTTPS request). With
/// `--journal dynamodb://…` (two daemons), it reads and writes the leases and the journal's
/// events in the coordination table (`steps/src/aws/coordination.rs`): a transactional write
/// is `dynamodb:PutItem` plus `dynamodb:ConditionCheckItem` for its fences.
pub const DAEMON_ACTIONS: &[Permission] = &[
    p!("cloudwatch:DescribeAlarms", ALARM),
    p!("dynamodb:BatchWriteItem", TABLE),
    p!("dynamodb:ConditionCheckItem", TABLE),
    p!("dynamodb:GetItem", TABLE),
    p!("dynamodb:PutItem", TABLE),
    p!("dynamodb:Scan", TABLE),
    p!("dynamodb:UpdateItem", TABLE),
    p!("route53:GetHealthCheck", HEALTH_CHECK),
    p!("route53:ListHealthChecks", ANY),
    p!("route53:ListTagsForResource", HEALTH_CHECK),
    p!("route53:ListTagsForResources", HEALTH_CHECK),
    p!("sqs:DeleteMessage", QUEUE),
    p!("sqs:GetQueueAttributes", QUEUE),
    p!("sqs:GetQueueUrl", QUEUE),
    p!("sqs:ListQueueTags", QUEUE),
    p!("sqs:ReceiveMessage", QUEUE),
];

/// The step types [`step_actions`] declares, in name order.
pub fn declared_step_types() -> impl Iterator<Item = &'static str> {
    PERMISSIONS.keys().copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cloud_step_is_declared() {
        let registry = crate::registry(&crate::CloudConfig::default());
        let cloud: Vec<&str> = registry
            .names()
            .filter(|n| crate::is_cloud_step(n))
            .collect();
        assert!(cloud.len() > 20, "{cloud:?}");
        for name in &cloud {
            assert!(
                !step_actions(name).is_empty(),
                "step type {name} acts on the cloud but declares no AWS permission in policy.rs"
            );
        }
        for name in declared_step_types() {
            assert!(
                cloud.contains(&name),
                "policy.rs declares {name}, which is not a registered cloud step type"
            );
        }
    }

    #[test]
    fn no_action_is_a_wildcard_and_every_resource_is_an_arn_or_star() {
        for name in declared_step_types() {
            for perm in step_actions(name) {
                let (service, op) = perm.action.split_once(':').expect("service:Operation");
                assert!(!service.is_empty() && !op.is_empty(), "{perm:?}");
                assert!(
                    !perm.action.contains('*') && !iam_action(perm.action).contains('*'),
                    "{perm:?}"
                );
                assert!(
                    op.chars().next().is_some_and(|c| c.is_ascii_uppercase()),
                    "{perm:?}"
                );
                assert!(
                    perm.resource == "*" || perm.resource.starts_with("arn:aws:"),
                    "{perm:?}"
                );
            }
        }
    }

    #[test]
    fn failover_steps_name_the_exact_aws_calls() {
        let has = |step: &str, action: &str| step_actions(step).iter().any(|p| p.action == action);
        assert!(has(
            "rds.promote_global_cluster",
            "rds:FailoverGlobalCluster"
        ));
        assert!(has(
            "rds.promote_global_cluster",
            "rds:SwitchoverGlobalCluster"
        ));
        assert!(has(
            "autoscaling.set_capacity",
            "autoscaling:UpdateAutoScalingGroup"
        ));
        assert!(has(
            "route53.shift_traffic",
            "route53:ChangeResourceRecordSets"
        ));
        assert!(has("sns.publish", "sns:Publish"));
        assert!(has(
            "elb.load_balancer",
            "elasticloadbalancing:CreateLoadBalancer"
        ));
        // A read-only step gets no write.
        assert!(!has("dr.readiness", "rds:DeleteDBCluster"));
        assert!(step_actions("core.log").is_empty());
    }

    /// Every SDK call the aws backend makes (each goes through `Call::new(region, service,
    /// "Operation")`), read from its source: some step type's policy allows it, so an operator
    /// with `drflow policy`'s document is never denied a call drflow makes.
    #[test]
    fn every_sdk_call_of_the_aws_backend_is_in_some_step_types_policy() {
        fn sources(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            for e in std::fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    sources(&p, out);
                } else if p.extension().is_some_and(|x| x == "rs")
                    && !p.ends_with("testing.rs")
                    && !p.ends_with("tests.rs")
                {
                    out.push(p);
                }
            }
        }
        let mut files = Vec::new();
        sources(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/aws"),
            &mut files,
        );
        let allowed: std::collections::BTreeSet<&str> = declared_step_types()
            .flat_map(|t| step_actions(t).iter().map(|p| iam_action(p.action)))
            .chain(DAEMON_ACTIONS.iter().map(|p| p.action))
            .collect();
        /// The arguments of the call whose text starts just after `Call::new(`, split at the
        /// commas outside brackets (a trailing comma of rustfmt's multi-line form dropped).
        fn arguments(text: &str) -> Vec<String> {
            let (mut depth, mut args, mut arg) = (0, Vec::new(), String::new());
            for c in text.chars() {
                match c {
                    '(' | '[' | '{' => depth += 1,
                    ')' | ']' | '}' if depth == 0 => break,
                    ')' | ']' | '}' => depth -= 1,
                    ',' if depth == 0 => {
                        args.push(std::mem::take(&mut arg).trim().to_string());
                        continue;
                    }
                    _ => {}
                }
                arg.push(c);
            }
            args.push(arg.trim().to_string());
            args.retain(|a| !a.is_empty());
            args
        }
        // Calls whose operation is not a literal, and why they are covered.
        const NOT_LITERAL: &[(&str, &str)] = &[
            // `update_table(…, "UpdateTable")`: every caller passes that name.
            ("dynamodb.rs", "op"),
            // `call(…, "GetItem", …)`: its callers pass `GetItem`, `PutItem`, `UpdateItem`,
            // `Scan`, `BatchWriteItem` (all in `DAEMON_ACTIONS`) and `TransactWriteItems`,
            // which IAM authorises as `PutItem` plus `ConditionCheckItem` per item.
            ("coordination.rs", "operation"),
        ];
        let mut seen = 0;
        let mut missing = Vec::new();
        let mut unparsed = Vec::new();
        for f in &files {
            let text = std::fs::read_to_string(f).unwrap();
            // Calls in a file's unit tests are the tests' own.
            let text = text.split("#[cfg(test)]\nmod tests").next().unwrap();
            let file = f.file_name().unwrap().to_string_lossy().to_string();
            let own_svc = text
                .split("const SVC: &str = \"")
                .nth(1)
                .and_then(|r| r.split('"').next());
            for call in text.split("Call::new(").skip(1) {
                let args = arguments(call);
                let literal = |a: &str| {
                    a.strip_prefix('"')
                        .and_then(|o| o.strip_suffix('"'))
                        .map(str::to_string)
                };
                let (svc, op) = match &args[..] {
                    [_, svc, op] => (svc.as_str(), op.as_str()),
                    _ => {
                        unparsed.push(format!("{file}: Call::new({})", args.join(", ")));
                        continue;
                    }
                };
                let Some(op) = literal(op) else {
                    if !NOT_LITERAL.contains(&(file.as_str(), op)) {
                        unparsed.push(format!("{file}: operation `{op}`"));
                    }
                    continue;
                };
                let svc = match svc {
                    "SVC" => own_svc.expect("the file names its SVC").to_string(),
                    s => literal(s).unwrap_or_else(|| panic!("{file}: service `{s}`")),
                };
                seen += 1;
                let action = format!("{svc}:{op}");
                if !allowed.contains(iam_action(&action)) {
                    missing.push(format!("{action} ({file})"));
                }
            }
        }
        assert!(
            unparsed.is_empty(),
            "calls this check cannot read (write the operation as a literal, or list it in \
             NOT_LITERAL with why it is covered): {unparsed:#?}"
        );
        assert!(
            seen > 150,
            "only {seen} calls found: is the pattern still right?"
        );
        assert!(missing.is_empty(), "not in any policy: {missing:#?}");
    }

    #[test]
    fn s3_operations_map_to_their_iam_actions() {
        assert_eq!(
            iam_action("s3:PutBucketEncryption"),
            "s3:PutEncryptionConfiguration"
        );
        assert_eq!(iam_action("ec2:CreateVpc"), "ec2:CreateVpc");
    }
}
