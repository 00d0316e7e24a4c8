//! The kinds of cloud resource drflow manages, and what every backend needs to know about each.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How a kind's resource id is formed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdStyle {
    /// A prefix and 17 hex digits, as EC2 does (`vpc-0a1b2c3d4e5f60718`).
    Hex(&'static str),
    /// The resource's name is its id (RDS identifiers, DynamoDB tables, S3 buckets, alarms).
    Name,
    /// A prefix and upper-case alphanumerics (`Z0123ABCDEF`, `AROA...`).
    Upper(&'static str, usize),
    /// A UUID (health checks, scaling policies).
    Uuid,
    /// The ARN is the id, as for load balancers, target groups, listeners, certificates and
    /// SNS topics and subscriptions.
    Arn,
}

/// How drift on a field the cloud cannot change in place is repaired: by replacing the resource,
/// or not at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replacement {
    /// Never replaced by drflow; the reason is shown to whoever must decide (data would be
    /// lost, or others are built inside it).
    Never(&'static str),
    /// Create the new one first, under the same name (the old one is renamed aside and tagged
    /// superseded), let dependants repoint to it, then delete the old one once nothing uses it.
    /// For kinds that others refer to by id and whose name is only a tag.
    CreateThenDelete,
    /// Delete the old one, then create the new one: for kinds whose name or identity is unique
    /// (a second one could not exist next to the old) and that nothing refers to by id. If
    /// something still does, the delete is refused and so is the repair.
    DeleteThenCreate,
}

const DATA: &str = "replacing it would destroy the data it holds";

macro_rules! kinds {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal, $service:literal, $id:expr, $rank:literal, $global:literal; )*) => {
        /// A kind of cloud resource. The `rank` orders kinds by dependency: a resource only
        /// depends on resources of a lower or equal rank, so deleting in falling rank order
        /// never hits a dependency.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum Kind {
            $( $(#[$doc])* $variant, )*
        }

        impl Kind {
            /// Every kind, in dependency order.
            pub const ALL: &'static [Kind] = &[$(Kind::$variant,)*];

            /// The snake_case name used in the world file and `drflow sim show`.
            pub fn name(self) -> &'static str {
                match self { $(Kind::$variant => $name,)* }
            }

            /// The AWS service (the ARN's service field).
            pub fn service(self) -> &'static str {
                match self { $(Kind::$variant => $service,)* }
            }

            /// How ids of this kind look.
            pub fn id_style(self) -> IdStyle {
                match self { $(Kind::$variant => $id,)* }
            }

            /// Creation order: lower ranks are created first and deleted last.
            pub fn rank(self) -> u32 {
                match self { $(Kind::$variant => $rank,)* }
            }

            /// Whether the kind lives outside any region (IAM, Route 53).
            pub fn is_global(self) -> bool {
                match self { $(Kind::$variant => $global,)* }
            }
        }
    };
}

impl Kind {
    /// Whether the resource's name is its `Name` tag (EC2 resources, health checks,
    /// certificates, KMS keys): renaming it is a tag update, and two resources may briefly
    /// carry the same name, which [`Replacement::CreateThenDelete`] needs.
    pub fn named_by_tag(self) -> bool {
        matches!(
            self,
            Kind::KmsKey
                | Kind::Vpc
                | Kind::Subnet
                | Kind::InternetGateway
                | Kind::ElasticIp
                | Kind::NatGateway
                | Kind::RouteTable
                | Kind::VpcPeering
                | Kind::HealthCheck
                | Kind::Certificate
        )
    }

    /// How drift on an immutable field of this kind is repaired.
    pub fn replacement(self) -> Replacement {
        use Replacement::*;
        match self {
            Kind::KmsKey => Never(
                "data encrypted under the key could not be decrypted with a new one, and a \
                 multi-region key's replicas are bound to their primary",
            ),
            Kind::Vpc => Never("the whole network of the region is built inside it"),
            Kind::Subnet => {
                Never("instances, NAT gateways, load balancers and the database sit in it")
            }
            Kind::RouteTable => Never("its subnets would lose their routes while it is replaced"),
            Kind::SecurityGroup => Never(
                "instances, load balancers and the database use it; a new group means moving \
                 them all",
            ),
            Kind::ElasticIp => Never("its public address is what the outside world allowlists"),
            Kind::NatGateway => Never(
                "its Elastic IP can serve one NAT gateway at a time, so the private subnets \
                 would lose egress while it is replaced",
            ),
            Kind::S3Bucket | Kind::DynamoTable | Kind::GlobalCluster | Kind::DbCluster => {
                Never(DATA)
            }
            Kind::SqsQueue => Never("it holds alarm events the daemon has not read yet"),
            Kind::DbInstance => Never(
                "replacing it takes the writer offline, or the standby out of failover \
                 readiness, for the length of an instance creation",
            ),
            Kind::DbClusterParameterGroup | Kind::DbSubnetGroup => {
                Never("the database cluster uses it; changing that is a database change")
            }
            Kind::HostedZone => Never(
                "the parent domain delegates to its name servers, and a new zone gets new ones",
            ),
            Kind::LoadBalancer | Kind::TargetGroup => Never(
                "its name is unique, so the old one would have to go first and the region \
                 would stop serving",
            ),
            Kind::AutoScalingGroup => Never("it owns the running instances"),
            Kind::SnsTopic => Never("its e-mail subscriptions would have to be confirmed again"),
            Kind::HealthCheck | Kind::Certificate | Kind::VpcPeering => CreateThenDelete,
            Kind::KmsAlias
            | Kind::IamRole
            | Kind::InstanceProfile
            | Kind::InternetGateway
            | Kind::Route
            | Kind::LaunchTemplate
            | Kind::Listener
            | Kind::ScalingPolicy
            | Kind::DnsRecord
            | Kind::SnsSubscription
            | Kind::LambdaFunction
            | Kind::EventRule
            | Kind::MetricAlarm
            | Kind::CompositeAlarm
            | Kind::Dashboard => DeleteThenCreate,
        }
    }
}

/// What AWS allows as a resource's name, for the kinds whose name AWS checks (for EC2 resources,
/// health checks and certificates, the name is the `Name` tag: at most 256 characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameRule {
    /// What the name is, for messages: "an ALB name".
    pub what: &'static str,
    /// The most characters AWS allows.
    pub max_len: usize,
    /// The fewest.
    pub min_len: usize,
    /// The characters allowed besides ASCII letters and digits.
    pub extra: &'static str,
    /// Only lower-case letters.
    pub lower_case: bool,
    /// Must start with a letter.
    pub letter_first: bool,
    /// Must not start or end with a dash, nor hold two in a row (ELB and RDS names).
    pub tidy_dashes: bool,
}

impl NameRule {
    /// Whether the character may appear in such a name.
    pub fn allows(&self, c: char) -> bool {
        c.is_ascii_digit()
            || c.is_ascii_lowercase()
            || (c.is_ascii_uppercase() && !self.lower_case)
            || self.extra.contains(c)
    }
}

const fn rule(what: &'static str, max_len: usize, extra: &'static str) -> NameRule {
    NameRule {
        what,
        max_len,
        min_len: 1,
        extra,
        lower_case: false,
        letter_first: false,
        tidy_dashes: false,
    }
}

impl Kind {
    /// What AWS allows as the name of a resource of this kind; `None` when drflow's name for it
    /// is not an AWS name (routes, records, listeners, subscriptions, hosted zones).
    pub fn name_rule(self) -> Option<NameRule> {
        const ANY: &str = " !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
        const RDS: NameRule = NameRule {
            letter_first: true,
            tidy_dashes: true,
            ..rule("", 63, "-")
        };
        Some(match self {
            Kind::KmsKey
            | Kind::Vpc
            | Kind::Subnet
            | Kind::InternetGateway
            | Kind::ElasticIp
            | Kind::NatGateway
            | Kind::RouteTable
            | Kind::VpcPeering
            | Kind::HealthCheck
            | Kind::Certificate => rule("a Name tag", 256, ANY),
            Kind::KmsAlias => rule("a KMS alias", 256, "/_-"),
            Kind::IamRole => rule("an IAM role name", 64, "+=,.@_-"),
            Kind::InstanceProfile => rule("an IAM instance profile name", 128, "+=,.@_-"),
            Kind::SecurityGroup => rule("a security group name", 255, ANY),
            Kind::S3Bucket => NameRule {
                min_len: 3,
                lower_case: true,
                tidy_dashes: false,
                ..rule("an S3 bucket name", 63, ".-")
            },
            Kind::DynamoTable => NameRule {
                min_len: 3,
                ..rule("a DynamoDB table name", 255, "_.-")
            },
            Kind::DbClusterParameterGroup => NameRule {
                letter_first: true,
                tidy_dashes: true,
                ..rule("an RDS parameter group name", 255, "-")
            },
            Kind::DbSubnetGroup => rule("an RDS subnet group name", 255, " ._-"),
            Kind::GlobalCluster => NameRule {
                what: "an Aurora global cluster identifier",
                ..RDS
            },
            Kind::DbCluster => NameRule {
                what: "an RDS cluster identifier",
                ..RDS
            },
            Kind::DbInstance => NameRule {
                what: "an RDS instance identifier",
                ..RDS
            },
            Kind::LaunchTemplate => NameRule {
                min_len: 3,
                ..rule("a launch template name", 128, "()./_-")
            },
            Kind::LoadBalancer => NameRule {
                tidy_dashes: true,
                ..rule("an ALB name", 32, "-")
            },
            Kind::TargetGroup => NameRule {
                tidy_dashes: true,
                ..rule("a target group name", 32, "-")
            },
            Kind::AutoScalingGroup => rule("an Auto Scaling group name", 255, ANY),
            Kind::ScalingPolicy => rule("a scaling policy name", 255, ANY),
            Kind::SnsTopic => rule("an SNS topic name", 256, "_-"),
            Kind::SqsQueue => rule("an SQS queue name", 80, "_-"),
            Kind::LambdaFunction => rule("a Lambda function name", 64, "_-"),
            Kind::EventRule => rule("an EventBridge rule name", 64, "._-"),
            Kind::MetricAlarm | Kind::CompositeAlarm => rule("an alarm name", 255, ANY),
            Kind::Dashboard => rule("a dashboard name", 255, "_-"),
            Kind::Route
            | Kind::HostedZone
            | Kind::Listener
            | Kind::DnsRecord
            | Kind::SnsSubscription => return None,
        })
    }

    /// Checks a name against [`Kind::name_rule`]; the error says what AWS would refuse, as a
    /// predicate ("is 33 characters long, …").
    pub fn check_name(self, name: &str) -> Result<(), String> {
        let Some(r) = self.name_rule() else {
            return Ok(());
        };
        let len = name.chars().count();
        if len > r.max_len {
            return Err(format!(
                "is {len} characters long, but {} is at most {}",
                r.what, r.max_len
            ));
        }
        if len < r.min_len {
            return Err(format!(
                "is {len} characters long, but {} is at least {}",
                r.what, r.min_len
            ));
        }
        if let Some(c) = name.chars().find(|c| !r.allows(*c)) {
            return Err(format!("holds `{c}`, which {} may not hold", r.what));
        }
        if r.letter_first && !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
            return Err(format!("must start with a letter, as {} does", r.what));
        }
        if r.tidy_dashes && (name.starts_with('-') || name.ends_with('-') || name.contains("--")) {
            return Err(format!(
                "starts or ends with a dash, or holds two in a row, which {} may not",
                r.what
            ));
        }
        if self == Kind::S3Bucket {
            let edge_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
            if !edge_ok(name.chars().next()) || !edge_ok(name.chars().last()) {
                return Err(
                    "must start and end with a letter or digit, as an S3 bucket name does".into(),
                );
            }
            for reserved in ["-s3alias", "--ol-s3", "--x-s3"] {
                if name.ends_with(reserved) {
                    return Err(format!("ends with `{reserved}`, which S3 reserves"));
                }
            }
            if name.starts_with("xn--") || name.starts_with("sthree-") || name.contains("..") {
                return Err("uses a prefix or a `..` that S3 reserves".into());
            }
        }
        Ok(())
    }
}

kinds! {
    /// A KMS key (multi-region primary or replica).
    KmsKey = "kms_key", "kms", IdStyle::Hex("mrk-"), 10, false;
    /// A KMS alias pointing at a key.
    KmsAlias = "kms_alias", "kms", IdStyle::Name, 11, false;
    /// An IAM role with its trust and inline least-privilege policies.
    IamRole = "iam_role", "iam", IdStyle::Upper("AROA", 17), 12, true;
    /// An IAM instance profile wrapping a role.
    InstanceProfile = "instance_profile", "iam", IdStyle::Upper("AIPA", 17), 13, true;
    /// A VPC.
    Vpc = "vpc", "ec2", IdStyle::Hex("vpc-"), 20, false;
    /// A subnet.
    Subnet = "subnet", "ec2", IdStyle::Hex("subnet-"), 21, false;
    /// An internet gateway attached to a VPC.
    InternetGateway = "internet_gateway", "ec2", IdStyle::Hex("igw-"), 21, false;
    /// An Elastic IP allocation (for a NAT gateway).
    ElasticIp = "elastic_ip", "ec2", IdStyle::Hex("eipalloc-"), 21, false;
    /// A NAT gateway.
    NatGateway = "nat_gateway", "ec2", IdStyle::Hex("nat-"), 22, false;
    /// A route table with its subnet associations.
    RouteTable = "route_table", "ec2", IdStyle::Hex("rtb-"), 22, false;
    /// A cross-region VPC peering connection (accepted).
    VpcPeering = "vpc_peering", "ec2", IdStyle::Hex("pcx-"), 23, false;
    /// One route in a route table.
    Route = "route", "ec2", IdStyle::Hex("r-"), 24, false;
    /// A security group with its ingress rules.
    SecurityGroup = "security_group", "ec2", IdStyle::Hex("sg-"), 24, false;
    /// An S3 bucket with versioning, encryption, policy and replication.
    S3Bucket = "s3_bucket", "s3", IdStyle::Name, 30, false;
    /// A DynamoDB table (global table replicas are part of its spec).
    DynamoTable = "dynamodb_table", "dynamodb", IdStyle::Name, 30, false;
    /// An RDS cluster parameter group.
    DbClusterParameterGroup = "db_cluster_parameter_group", "rds", IdStyle::Name, 30, false;
    /// An RDS subnet group.
    DbSubnetGroup = "db_subnet_group", "rds", IdStyle::Name, 30, false;
    /// An Aurora global cluster.
    GlobalCluster = "global_cluster", "rds", IdStyle::Name, 31, true;
    /// An Aurora DB cluster (primary or secondary of a global cluster).
    DbCluster = "db_cluster", "rds", IdStyle::Name, 32, false;
    /// An Aurora DB instance.
    DbInstance = "db_instance", "rds", IdStyle::Name, 33, false;
    /// A Route 53 hosted zone.
    HostedZone = "hosted_zone", "route53", IdStyle::Upper("Z", 20), 40, true;
    /// An ACM certificate.
    Certificate = "certificate", "acm", IdStyle::Arn, 41, false;
    /// An EC2 launch template.
    LaunchTemplate = "launch_template", "ec2", IdStyle::Hex("lt-"), 42, false;
    /// An application load balancer.
    LoadBalancer = "load_balancer", "elasticloadbalancing", IdStyle::Arn, 42, false;
    /// An ALB target group.
    TargetGroup = "target_group", "elasticloadbalancing", IdStyle::Arn, 42, false;
    /// An ALB listener.
    Listener = "listener", "elasticloadbalancing", IdStyle::Arn, 43, false;
    /// An Auto Scaling group.
    AutoScalingGroup = "autoscaling_group", "autoscaling", IdStyle::Name, 44, false;
    /// An Auto Scaling policy (target tracking or step).
    ScalingPolicy = "scaling_policy", "autoscaling", IdStyle::Arn, 45, false;
    /// A Route 53 health check.
    HealthCheck = "health_check", "route53", IdStyle::Uuid, 46, true;
    /// A Route 53 record set (weighted or failover alias).
    DnsRecord = "dns_record", "route53", IdStyle::Name, 47, true;
    /// An SNS topic.
    SnsTopic = "sns_topic", "sns", IdStyle::Arn, 50, false;
    /// An SNS subscription.
    SnsSubscription = "sns_subscription", "sns", IdStyle::Arn, 51, false;
    /// An SQS queue (the daemon's alarm-event queue).
    SqsQueue = "sqs_queue", "sqs", IdStyle::Name, 50, false;
    /// A Lambda function.
    LambdaFunction = "lambda_function", "lambda", IdStyle::Name, 52, false;
    /// An EventBridge rule with its targets.
    EventRule = "event_rule", "events", IdStyle::Name, 53, false;
    /// A CloudWatch metric alarm.
    MetricAlarm = "metric_alarm", "cloudwatch", IdStyle::Name, 54, false;
    /// A CloudWatch composite alarm.
    CompositeAlarm = "composite_alarm", "cloudwatch", IdStyle::Name, 55, false;
    /// A CloudWatch dashboard.
    Dashboard = "dashboard", "cloudwatch", IdStyle::Name, 56, false;
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Kind {
    type Err = String;

    fn from_str(s: &str) -> Result<Kind, String> {
        Kind::ALL
            .iter()
            .copied()
            .find(|k| k.name() == s)
            .ok_or_else(|| format!("unknown resource kind {s:?}"))
    }
}

/// The pseudo-region that holds global resources (IAM, Route 53, global clusters).
pub const GLOBAL: &str = "global";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_kinds_named_by_a_tag_are_replaced_before_the_old_one_goes() {
        // Creating the new one first needs two resources of one name for a while, which only
        // a name that is a tag allows.
        for k in Kind::ALL {
            if k.replacement() == Replacement::CreateThenDelete {
                assert!(k.named_by_tag(), "{k}");
            }
        }
        for k in [
            Kind::DbCluster,
            Kind::DynamoTable,
            Kind::S3Bucket,
            Kind::KmsKey,
            Kind::Vpc,
        ] {
            assert!(matches!(k.replacement(), Replacement::Never(_)), "{k}");
        }
    }

    #[test]
    fn aws_name_limits() {
        assert!(Kind::LoadBalancer.check_name(&"a".repeat(32)).is_ok());
        assert!(Kind::LoadBalancer.check_name(&"a".repeat(33)).is_err());
        assert!(Kind::LoadBalancer.check_name("alb-prod-").is_err());
        assert!(Kind::DbCluster.check_name("aurora-cluster--x").is_err());
        assert!(
            Kind::DbCluster
                .check_name(&format!("a{}", "b".repeat(62)))
                .is_ok()
        );
        assert!(
            Kind::S3Bucket
                .check_name("artifacts-us-east-1-Prod")
                .is_err()
        );
        assert!(
            Kind::S3Bucket
                .check_name("artifacts-us-east-1-s3alias")
                .is_err()
        );
        assert!(Kind::EventRule.check_name(&"r".repeat(65)).is_err());
        assert!(Kind::IamRole.check_name(&"r".repeat(64)).is_ok());
        assert!(Kind::Route.check_name(&"x".repeat(999)).is_ok());
    }

    #[test]
    fn names_round_trip_and_are_unique() {
        let mut seen = std::collections::BTreeSet::new();
        for k in Kind::ALL {
            assert_eq!(k.name().parse::<Kind>(), Ok(*k));
            assert!(seen.insert(k.name()), "duplicate kind name {}", k.name());
        }
    }
}
