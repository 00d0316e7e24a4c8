//! Deterministic, realistic-looking ids, ARNs and computed attributes for the sim.
//!
//! Ids come from a hash of the world's sequence number and the resource's identity, so the same
//! sequence of calls always yields the same ids (snapshots stay stable) while ids still look
//! like the real thing (`vpc-0a1b2c3d4e5f60718`).

use serde_json::{Value, json};

use crate::backend::{IdStyle, Kind};

/// The account every sim ARN uses.
pub const ACCOUNT: &str = "000000000000";

/// A stream of pseudo-random hex digits seeded by a resource's identity.
pub struct IdGen {
    state: u64,
}

impl IdGen {
    /// Seeds the stream from the world sequence number and the resource's identity.
    pub fn new(seq: u64, kind: Kind, region: &str, name: &str) -> IdGen {
        // FNV-1a over the identity: stable across Rust versions, unlike `DefaultHasher`.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let seed = format!("{seq}/{kind}/{region}/{name}");
        for b in seed.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        IdGen { state: h }
    }

    fn next(&mut self) -> u64 {
        // splitmix64: spreads the FNV state into well-mixed words.
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// `n` lower-case hex digits.
    pub fn hex(&mut self, n: usize) -> String {
        let mut s = String::with_capacity(n + 16);
        while s.len() < n {
            s.push_str(&format!("{:016x}", self.next()));
        }
        s.truncate(n);
        s
    }

    /// `n` upper-case letters and digits.
    pub fn upper(&mut self, n: usize) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        (0..n)
            .map(|_| char::from(ALPHABET[(self.next() % ALPHABET.len() as u64) as usize]))
            .collect()
    }

    /// `n` decimal digits.
    pub fn digits(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(b'0' + (self.next() % 10) as u8))
            .collect()
    }

    /// A version-4-shaped UUID.
    pub fn uuid(&mut self) -> String {
        let h = self.hex(32);
        format!(
            "{}-{}-4{}-a{}-{}",
            &h[0..8],
            &h[8..12],
            &h[13..16],
            &h[17..20],
            &h[20..32]
        )
    }
}

/// The id, ARN and computed attributes of a new resource.
pub struct Identity {
    /// The id.
    pub id: String,
    /// The ARN (empty for kinds that have none, such as routes and records).
    pub arn: String,
    /// Computed attributes (DNS names, endpoints, ...).
    pub attrs: serde_json::Map<String, Value>,
}

/// Makes up the identity of a new resource, the way the real service would shape it.
pub fn identity(ids: &mut IdGen, kind: Kind, region: &str, name: &str, spec: &Value) -> Identity {
    let a = ACCOUNT;
    let r = region;
    let s = |k: &str| {
        spec.get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let mut attrs = serde_json::Map::new();
    let plain_id = match kind.id_style() {
        IdStyle::Hex(prefix) => format!("{prefix}0{}", ids.hex(16)),
        IdStyle::Upper(prefix, n) => format!("{prefix}{}", ids.upper(n)),
        IdStyle::Uuid => ids.uuid(),
        IdStyle::Name | IdStyle::Arn => name.to_string(),
    };
    let ec2 = |ty: &str, id: &str| format!("arn:aws:ec2:{r}:{a}:{ty}/{id}");
    let arn = match kind {
        Kind::KmsKey => format!("arn:aws:kms:{r}:{a}:key/{plain_id}"),
        Kind::KmsAlias => format!("arn:aws:kms:{r}:{a}:{name}"),
        Kind::IamRole => format!("arn:aws:iam::{a}:role/{name}"),
        Kind::InstanceProfile => format!("arn:aws:iam::{a}:instance-profile/{name}"),
        Kind::Vpc => ec2("vpc", &plain_id),
        Kind::Subnet => ec2("subnet", &plain_id),
        Kind::InternetGateway => ec2("internet-gateway", &plain_id),
        Kind::ElasticIp => ec2("elastic-ip", &plain_id),
        Kind::NatGateway => ec2("natgateway", &plain_id),
        Kind::RouteTable => ec2("route-table", &plain_id),
        Kind::VpcPeering => ec2("vpc-peering-connection", &plain_id),
        Kind::SecurityGroup => ec2("security-group", &plain_id),
        Kind::LaunchTemplate => ec2("launch-template", &plain_id),
        Kind::Route | Kind::DnsRecord => String::new(),
        Kind::S3Bucket => format!("arn:aws:s3:::{name}"),
        Kind::DynamoTable => format!("arn:aws:dynamodb:{r}:{a}:table/{name}"),
        Kind::DbClusterParameterGroup => format!("arn:aws:rds:{r}:{a}:cluster-pg:{name}"),
        Kind::DbSubnetGroup => format!("arn:aws:rds:{r}:{a}:subgrp:{name}"),
        Kind::GlobalCluster => format!("arn:aws:rds::{a}:global-cluster:{name}"),
        Kind::DbCluster => format!("arn:aws:rds:{r}:{a}:cluster:{name}"),
        Kind::DbInstance => format!("arn:aws:rds:{r}:{a}:db:{name}"),
        Kind::HostedZone => format!("arn:aws:route53:::hostedzone/{plain_id}"),
        Kind::HealthCheck => format!("arn:aws:route53:::healthcheck/{plain_id}"),
        Kind::Certificate => format!("arn:aws:acm:{r}:{a}:certificate/{}", ids.uuid()),
        Kind::LoadBalancer => {
            let hex = ids.hex(16);
            attrs.insert("arn_suffix".into(), json!(format!("app/{name}/{hex}")));
            attrs.insert(
                "dns_name".into(),
                json!(format!("{name}-{}.{r}.elb.amazonaws.com", ids.digits(10))),
            );
            attrs.insert(
                "canonical_hosted_zone_id".into(),
                json!(alb_hosted_zone_id(r)),
            );
            format!("arn:aws:elasticloadbalancing:{r}:{a}:loadbalancer/app/{name}/{hex}")
        }
        Kind::TargetGroup => {
            let hex = ids.hex(16);
            attrs.insert(
                "arn_suffix".into(),
                json!(format!("targetgroup/{name}/{hex}")),
            );
            format!("arn:aws:elasticloadbalancing:{r}:{a}:targetgroup/{name}/{hex}")
        }
        Kind::Listener => {
            let lb = s("load_balancer_arn").replacen(":loadbalancer/", ":listener/", 1);
            format!("{lb}/{}", ids.hex(16))
        }
        Kind::AutoScalingGroup => format!(
            "arn:aws:autoscaling:{r}:{a}:autoScalingGroup:{}:autoScalingGroupName/{name}",
            ids.uuid()
        ),
        Kind::ScalingPolicy => format!(
            "arn:aws:autoscaling:{r}:{a}:scalingPolicy:{}:autoScalingGroupName/{}:policyName/{name}",
            ids.uuid(),
            s("auto_scaling_group_name")
        ),
        Kind::SnsTopic => format!("arn:aws:sns:{r}:{a}:{name}"),
        Kind::SnsSubscription => format!("{}:{}", s("topic_arn"), ids.uuid()),
        Kind::SqsQueue => {
            attrs.insert(
                "url".into(),
                json!(format!("https://sqs.{r}.amazonaws.com/{a}/{name}")),
            );
            format!("arn:aws:sqs:{r}:{a}:{name}")
        }
        Kind::LambdaFunction => format!("arn:aws:lambda:{r}:{a}:function:{name}"),
        Kind::EventRule => format!("arn:aws:events:{r}:{a}:rule/{name}"),
        Kind::MetricAlarm | Kind::CompositeAlarm => {
            format!("arn:aws:cloudwatch:{r}:{a}:alarm:{name}")
        }
        Kind::Dashboard => format!("arn:aws:cloudwatch::{a}:dashboard/{name}"),
    };
    match kind {
        Kind::DbCluster => {
            let h = ids.hex(12);
            attrs.insert(
                "endpoint".into(),
                json!(format!("{name}.cluster-{h}.{r}.rds.amazonaws.com")),
            );
            attrs.insert(
                "reader_endpoint".into(),
                json!(format!("{name}.cluster-ro-{h}.{r}.rds.amazonaws.com")),
            );
            attrs.insert("port".into(), json!(5432));
            attrs.insert(
                "cluster_resource_id".into(),
                json!(format!("cluster-{}", ids.upper(26))),
            );
            if spec.get("manage_master_user_password") == Some(&Value::Bool(true)) {
                // AWS keeps the password in Secrets Manager; drflow only ever sees this ARN.
                attrs.insert(
                    "master_user_secret_arn".into(),
                    json!(format!(
                        "arn:aws:secretsmanager:{r}:{a}:secret:rds!cluster-{}-{}",
                        ids.uuid(),
                        ids.upper(6)
                    )),
                );
            }
        }
        Kind::DbInstance => {
            attrs.insert(
                "endpoint".into(),
                json!(format!("{name}.{}.{r}.rds.amazonaws.com", ids.hex(12))),
            );
        }
        Kind::HostedZone => {
            let n = ids.next() % 2000;
            attrs.insert(
                "name_servers".into(),
                json!([
                    format!("ns-{n}.awsdns-{:02}.org", n % 64),
                    format!("ns-{}.awsdns-{:02}.co.uk", n + 512, (n + 7) % 64),
                    format!("ns-{}.awsdns-{:02}.com", n + 1024, (n + 13) % 64),
                    format!("ns-{}.awsdns-{:02}.net", n + 1536, (n + 21) % 64),
                ]),
            );
        }
        Kind::Certificate => {
            let domain = s("domain_name");
            // ACM gives the same validation record for a domain in every region of an account,
            // so it is derived from the domain alone.
            let mut ids = IdGen::new(0, kind, "", &domain);
            attrs.insert(
                "validation_record_name".into(),
                json!(format!("_{}.{domain}.", ids.hex(32))),
            );
            attrs.insert(
                "validation_record_value".into(),
                json!(format!(
                    "_{}.{}.acm-validations.aws.",
                    ids.hex(32),
                    ids.hex(10)
                )),
            );
        }
        Kind::GlobalCluster => {
            attrs.insert(
                "global_cluster_resource_id".into(),
                json!(format!("cluster-{}", ids.hex(16))),
            );
        }
        Kind::SnsSubscription => {
            // Email subscriptions wait for the recipient to confirm.
            let pending = s("protocol") == "email";
            attrs.insert("pending_confirmation".into(), json!(pending));
        }
        _ => {}
    }
    let id = match kind.id_style() {
        IdStyle::Arn => arn.clone(),
        _ => plain_id,
    };
    Identity { id, arn, attrs }
}

/// The canonical hosted zone of ALBs in a region (ELB endpoints and quotas, AWS General
/// Reference), needed for Route 53 alias records.
pub fn alb_hosted_zone_id(region: &str) -> &'static str {
    match region {
        "us-east-1" => "Z35SXDOTRQ7X7K",
        "us-east-2" => "Z3AADJGX6KTTL2",
        "us-west-1" => "Z368ELLRRE2KJ0",
        "us-west-2" => "Z1H1FL5HABSF5",
        "eu-west-1" => "Z32O12XQLNTSW2",
        "eu-west-2" => "ZHURV8PSTC4K8",
        "eu-central-1" => "Z215JYRZR1TBD5",
        "eu-south-1" => "Z3ULH7SSC9OV64",
        _ => "Z0000000000000",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_look_real_and_are_deterministic() {
        let mut g = IdGen::new(7, Kind::Vpc, "eu-south-1", "vpc-prod");
        let id = identity(&mut g, Kind::Vpc, "eu-south-1", "vpc-prod", &json!({})).id;
        assert!(id.starts_with("vpc-0") && id.len() == 21, "{id}");
        let mut g2 = IdGen::new(7, Kind::Vpc, "eu-south-1", "vpc-prod");
        assert_eq!(
            identity(&mut g2, Kind::Vpc, "eu-south-1", "vpc-prod", &json!({})).id,
            id
        );
        let mut g3 = IdGen::new(1, Kind::SnsTopic, "eu-south-1", "sns-topic-prod");
        let t = identity(
            &mut g3,
            Kind::SnsTopic,
            "eu-south-1",
            "sns-topic-prod",
            &json!({}),
        );
        assert_eq!(t.arn, "arn:aws:sns:eu-south-1:000000000000:sns-topic-prod");
        assert_eq!(t.id, t.arn);
    }
}
