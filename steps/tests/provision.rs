//! Provisions both requirement documents' parameter sets through `runbooks/provision.yaml` on the
//! simulated cloud and checks every requirement by reading the world back; then shows that a
//! re-run changes nothing and that `runbooks/destroy.yaml` leaves an empty world.

mod common;

use common::{Cloud, at, changed, outputs};
use drflow_engine::StepStatus;
use drflow_steps::backend::{GLOBAL, Kind, Resource};
use serde_json::{Value, json};

struct Seed {
    params: &'static str,
    suffix: &'static str,
    primary: &'static str,
    standby: &'static str,
    public_subnets: usize,
    private_subnets: usize,
    routing: &'static str,
}

const US_EAST: Seed = Seed {
    params: "us-east.yaml",
    suffix: "prod-us",
    primary: "us-east-1",
    standby: "us-east-2",
    public_subnets: 3,
    private_subnets: 3,
    routing: "failover",
};

const EU: Seed = Seed {
    params: "eu.yaml",
    suffix: "prod-eu",
    primary: "eu-south-1",
    standby: "eu-central-1",
    public_subnets: 2,
    private_subnets: 2,
    routing: "weighted",
};

/// Step types that read or clean up, and so create nothing on a fresh cloud.
const READ_OR_CLEANUP: &[&str] = &["dr.readiness", "cloud.delete_superseded"];

/// Exactly one SNS topic per region that has alarms, and every alarm notifies the topic of its
/// own region.
fn check_one_topic_per_region(cloud: &Cloud, suffix: &str) {
    let topics: Vec<Resource> = cloud
        .all()
        .into_iter()
        .filter(|r| r.kind == Kind::SnsTopic && r.tags["EnvironmentSuffix"] == suffix)
        .collect();
    let mut regions: Vec<&str> = topics.iter().map(|t| t.region.as_str()).collect();
    regions.sort();
    let before = regions.len();
    regions.dedup();
    assert_eq!(
        before,
        regions.len(),
        "two topics in one region: {regions:?}"
    );
    for alarm in cloud.all().into_iter().filter(|r| {
        matches!(r.kind, Kind::MetricAlarm | Kind::CompositeAlarm)
            && r.tags["EnvironmentSuffix"] == suffix
    }) {
        for action in at(&alarm, "alarm_actions").as_array().unwrap() {
            let action = action.as_str().unwrap();
            if action.starts_with("arn:aws:sns:") {
                let topic = topics.iter().find(|t| t.arn == action);
                assert!(
                    topic.is_some_and(|t| t.region == alarm.region),
                    "alarm {} ({}) notifies {action}, not its region's topic",
                    alarm.name,
                    alarm.region
                );
            }
        }
    }
}

fn name(seed: &Seed, ty: &str) -> String {
    format!("{ty}-{}", seed.suffix)
}

fn decode_base64(s: &str) -> Vec<u8> {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let vals: Vec<u32> = s
        .bytes()
        .filter(|b| *b != b'=')
        .map(|b| T.iter().position(|t| *t == b).unwrap() as u32)
        .collect();
    let mut out = Vec::new();
    for chunk in vals.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, v)| acc | (v << (18 - 6 * i)));
        for i in 0..chunk.len().saturating_sub(1) {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    out
}

fn check_requirements(cloud: &Cloud, seed: &Seed) {
    let all = cloud.all();
    let (p, s) = (seed.primary, seed.standby);

    // Tags and names on every resource AWS can tag: Environment, FailoverRole, ManagedBy,
    // `<type>-<suffix>`. The others carry none (a tag asked for would be drift on every run).
    for r in all.iter().filter(|r| !r.kind.taggable()) {
        assert!(r.tags.is_empty(), "{} {} has tags", r.kind, r.name);
    }
    for r in all.iter().filter(|r| r.kind.taggable()) {
        assert_eq!(
            r.tags.get("Environment").map(String::as_str),
            Some("Production"),
            "{} {}",
            r.kind,
            r.name
        );
        assert_eq!(
            r.tags.get("ManagedBy").map(String::as_str),
            Some("drflow"),
            "{} {}",
            r.kind,
            r.name
        );
        let role = r.tags.get("FailoverRole").map(String::as_str);
        assert!(
            matches!(role, Some("Primary" | "Standby")),
            "{} {} role {role:?}",
            r.kind,
            r.name
        );
        if !matches!(
            r.kind,
            Kind::Route | Kind::DnsRecord | Kind::SnsSubscription
        ) {
            let n = r.tags.get("Name").unwrap();
            assert!(
                n.ends_with(&format!("-{}", seed.suffix))
                    || n.ends_with(&format!("-{}-{}", seed.suffix, r.region))
                    || n.contains(seed.suffix),
                "name {n} lacks the suffix"
            );
        }
        // Nothing may block destroy.
        for key in ["deletion_protection", "deletion_protection_enabled"] {
            assert_ne!(
                r.spec.get(key),
                Some(&json!(true)),
                "{} {} is protected",
                r.kind,
                r.name
            );
        }
    }
    // The primary resources are tagged Primary and the standby's Standby.
    assert_eq!(
        cloud.one(p, Kind::Vpc, &name(seed, "vpc")).tags["FailoverRole"],
        "Primary"
    );
    assert_eq!(
        cloud.one(s, Kind::Vpc, &name(seed, "vpc")).tags["FailoverRole"],
        "Standby"
    );

    // 1. Networking: a VPC per region, public + private subnets across distinct AZs, IGW, NAT,
    //    routes, peering with routes both ways.
    for (region, role_nat) in [(p, seed.public_subnets), (s, 1)] {
        let subnets = cloud.of(region, Kind::Subnet);
        let public: Vec<&Resource> = subnets
            .iter()
            .filter(|r| at(r, "tier") == "public")
            .collect();
        let private: Vec<&Resource> = subnets
            .iter()
            .filter(|r| at(r, "tier") == "private")
            .collect();
        assert_eq!(public.len(), seed.public_subnets, "{region} public subnets");
        assert_eq!(
            private.len(),
            seed.private_subnets,
            "{region} private subnets"
        );
        let azs: std::collections::BTreeSet<String> = private
            .iter()
            .map(|r| at(r, "availability_zone").to_string())
            .collect();
        assert_eq!(
            azs.len(),
            seed.private_subnets,
            "{region} private subnets span distinct AZs"
        );
        assert_eq!(cloud.of(region, Kind::InternetGateway).len(), 1);
        assert_eq!(
            cloud.of(region, Kind::NatGateway).len(),
            role_nat,
            "{region} NAT gateways"
        );
        let routes = cloud.of(region, Kind::Route);
        let default_routes = routes
            .iter()
            .filter(|r| at(r, "destination_cidr_block") == "0.0.0.0/0");
        assert_eq!(
            default_routes
                .clone()
                .filter(|r| !at(r, "gateway_id").is_null())
                .count(),
            1
        );
        assert_eq!(
            default_routes
                .filter(|r| !at(r, "nat_gateway_id").is_null())
                .count(),
            seed.private_subnets
        );
        let peer_routes = routes
            .iter()
            .filter(|r| !at(r, "vpc_peering_connection_id").is_null())
            .count();
        assert_eq!(
            peer_routes, seed.private_subnets,
            "{region} routes to the peer VPC"
        );
    }
    let pcx = &cloud.of(p, Kind::VpcPeering)[0];
    assert_eq!(at(pcx, "peer_region"), s);
    assert_eq!(at(pcx, "status"), "active");

    // Security groups: ALB 443/80 from anywhere; app only from the ALB; DB 5432 only from app.
    for region in [p, s] {
        let alb = cloud.one(region, Kind::SecurityGroup, &name(seed, "alb-sg"));
        let app = cloud.one(region, Kind::SecurityGroup, &name(seed, "app-sg"));
        let db = cloud.one(region, Kind::SecurityGroup, &name(seed, "db-sg"));
        let ports: Vec<&Value> = at(&alb, "ingress")
            .as_array()
            .unwrap()
            .iter()
            .map(|r| &r["from_port"])
            .collect();
        assert_eq!(ports, [&json!(443), &json!(80)]);
        assert!(
            at(&alb, "ingress")
                .as_array()
                .unwrap()
                .iter()
                .all(|r| r["cidr_ipv4"] == "0.0.0.0/0")
        );
        let app_in = at(&app, "ingress").as_array().unwrap();
        assert_eq!(app_in.len(), 1);
        assert_eq!(app_in[0]["source_security_group_id"], json!(alb.id));
        assert!(app_in[0].get("cidr_ipv4").is_none());
        let db_in = at(&db, "ingress").as_array().unwrap();
        assert_eq!(
            (db_in.len(), &db_in[0]["from_port"], &db_in[0]["to_port"]),
            (1, &json!(5432), &json!(5432))
        );
        assert_eq!(db_in[0]["source_security_group_id"], json!(app.id));
    }

    // 7. Encryption with KMS: multi-region key with rotation, replicated to the standby.
    let key = cloud.one(p, Kind::KmsKey, &name(seed, "kms-key"));
    assert_eq!(
        (at(&key, "multi_region"), at(&key, "enable_key_rotation")),
        (&json!(true), &json!(true))
    );
    let replica = cloud.one(s, Kind::KmsKey, &name(seed, "kms-key"));
    assert_eq!(at(&replica, "primary_key_arn"), &json!(key.arn));

    // Aurora PostgreSQL Global Database: encrypted, AWS-managed password, TLS forced, writer in
    // the primary, a secondary with one instance in the standby.
    let global = cloud.one(GLOBAL, Kind::GlobalCluster, &name(seed, "aurora-global"));
    assert_eq!(at(&global, "engine"), "aurora-postgresql");
    for (region, role) in [(p, "primary"), (s, "secondary")] {
        let c = cloud.one(region, Kind::DbCluster, &name(seed, "aurora-cluster"));
        assert_eq!(at(&c, "global_cluster_identifier"), &json!(global.id));
        assert_eq!(at(&c, "global_role"), role);
        assert_eq!(at(&c, "storage_encrypted"), &json!(true));
        assert!(
            at(&c, "kms_key_id")
                .as_str()
                .unwrap()
                .starts_with(&format!("arn:aws:kms:{region}:"))
        );
        assert_eq!(at(&c, "skip_final_snapshot"), &json!(true));
        let pg = cloud.one(
            region,
            Kind::DbClusterParameterGroup,
            &name(seed, "aurora-cluster-pg"),
        );
        assert_eq!(at(&pg, "parameters.rds.force_ssl"), &Value::Null); // dotted key, read directly:
        assert_eq!(pg.spec["parameters"]["rds.force_ssl"], "1");
        assert_eq!(at(&c, "db_cluster_parameter_group_name"), &json!(pg.name));
        let instances = cloud.of(region, Kind::DbInstance);
        assert_eq!(instances.len(), 1, "{region}: one instance");
        assert_eq!(at(&instances[0], "publicly_accessible"), &json!(false));
        // The smallest class Global Database supports, in both regions by default.
        assert_eq!(at(&instances[0], "db_instance_class"), "db.r6g.large");
    }
    let writer = cloud.one(p, Kind::DbCluster, &name(seed, "aurora-cluster"));
    assert_eq!(at(&writer, "manage_master_user_password"), &json!(true));
    assert!(
        writer
            .attr_str("master_user_secret_arn")
            .starts_with("arn:aws:secretsmanager:")
    );
    let world_text = serde_json::to_string(&cloud.world()).unwrap();
    assert!(
        !world_text.contains("master_user_password\":\""),
        "a master password was stored"
    );
    assert!(
        !world_text.contains("master_password"),
        "a master password was stored"
    );

    // 5. DynamoDB global table 'trading-sessions', sessionId key, KMS, PITR, replica in standby.
    let table = cloud.one(p, Kind::DynamoTable, &name(seed, "trading-sessions"));
    assert!(table.name.starts_with("trading-sessions"));
    assert_eq!(at(&table, "key_schema.0.attribute_name"), "sessionId");
    assert_eq!(at(&table, "key_schema.0.key_type"), "HASH");
    assert_eq!(at(&table, "sse.sse_type"), "KMS");
    assert_eq!(at(&table, "point_in_time_recovery"), &json!(true));
    assert_eq!(at(&table, "replica_regions"), &json!([s]));
    let table_replica = cloud.one(s, Kind::DynamoTable, &table.name);
    assert_eq!(at(&table_replica, "replica_of"), &json!(table.arn));
    assert_eq!(at(&table_replica, "sse.sse_type"), "KMS");

    // drflow's own coordination table (the daemons' lease and shared journal): the same kind of
    // global table, `pk` as its key, TTL on an attribute no lease carries.
    let state = cloud.one(p, Kind::DynamoTable, &name(seed, "drflow-state"));
    assert_eq!(at(&state, "key_schema.0.attribute_name"), "pk");
    assert_eq!(at(&state, "key_schema.0.key_type"), "HASH");
    assert_eq!(at(&state, "attribute_definitions.0.attribute_type"), "S");
    assert_eq!(at(&state, "ttl.attribute_name"), "purge_at");
    assert_eq!(at(&state, "sse.sse_type"), "KMS");
    assert_eq!(at(&state, "point_in_time_recovery"), &json!(true));
    assert_eq!(at(&state, "replica_regions"), &json!([s]));
    let state_replica = cloud.one(s, Kind::DynamoTable, &state.name);
    assert_eq!(at(&state_replica, "replica_of"), &json!(state.arn));
    assert_eq!(at(&state_replica, "ttl.attribute_name"), "purge_at");
    // Those two tables and no other, in each region.
    for region in [p, s] {
        let mut tables: Vec<String> = cloud
            .of(region, Kind::DynamoTable)
            .into_iter()
            .map(|t| t.name)
            .collect();
        tables.sort();
        assert_eq!(
            tables,
            [name(seed, "drflow-state"), name(seed, "trading-sessions")],
            "{region}"
        );
    }

    // 8. S3 buckets in both regions: versioning, KMS, TLS-only, replication primary -> standby.
    let src = cloud.of(p, Kind::S3Bucket);
    let dst = cloud.of(s, Kind::S3Bucket);
    assert_eq!((src.len(), dst.len()), (1, 1));
    for b in [&src[0], &dst[0]] {
        assert_eq!(at(b, "versioning"), "Enabled");
        assert_eq!(at(b, "encryption.sse_algorithm"), "aws:kms");
        assert_eq!(at(b, "policy.Statement.0.Effect"), "Deny");
        assert_eq!(
            b.spec["policy"]["Statement"][0]["Condition"]["Bool"]["aws:SecureTransport"],
            "false"
        );
        assert_eq!(
            at(b, "public_access_block.block_public_policy"),
            &json!(true)
        );
    }
    assert_eq!(
        at(&src[0], "replication.rules.0.destination.bucket"),
        &json!(dst[0].arn)
    );
    let repl_role = cloud.one(GLOBAL, Kind::IamRole, &name(seed, "s3-replication-role"));
    assert_eq!(at(&src[0], "replication.role"), &json!(repl_role.arn));

    // IAM least privilege: no wildcard actions, data access only to this environment's table
    // and buckets, metrics only in one namespace.
    let ec2 = cloud.one(GLOBAL, Kind::IamRole, &name(seed, "ec2-role"));
    let stmts = ec2.spec["inline_policies"]["trading-app"]["Statement"]
        .as_array()
        .unwrap();
    for st in stmts {
        let actions: Vec<&str> = match &st["Action"] {
            Value::String(a) => vec![a.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        assert!(
            actions.iter().all(|a| !a.ends_with('*')),
            "wildcard action {actions:?}"
        );
        assert!(
            actions.iter().all(|a| [
                "dynamodb:",
                "s3:Get",
                "s3:List",
                "kms:",
                "cloudwatch:PutMetricData"
            ]
            .iter()
            .any(|p| a.starts_with(p))),
            "{actions:?}"
        );
        if st["Resource"] == "*" {
            assert_eq!(actions, ["cloudwatch:PutMetricData"]);
            assert!(st["Condition"]["StringEquals"]["cloudwatch:namespace"].is_string());
        }
        if actions.iter().any(|a| a.starts_with("s3:")) {
            assert!(
                !actions
                    .iter()
                    .any(|a| a.starts_with("s3:Put") || a.starts_with("s3:Delete"))
            );
        }
    }
    let lambda_role = cloud.one(GLOBAL, Kind::IamRole, &name(seed, "lambda-role"));
    let text = lambda_role.spec.to_string();
    assert!(
        text.contains("rds:DescribeGlobalClusters") && text.contains("cloudwatch:PutMetricData")
    );

    // 3. Compute: Amazon Linux 2 via SSM, t3.medium, the instance profile, health user data.
    for region in [p, s] {
        let lt = cloud.one(region, Kind::LaunchTemplate, &name(seed, "launch-template"));
        assert_eq!(at(&lt, "instance_type"), "t3.medium");
        assert!(at(&lt, "image_id").as_str().unwrap().contains("amzn2-ami"));
        assert!(
            at(&lt, "iam_instance_profile.arn")
                .as_str()
                .unwrap()
                .contains("instance-profile/")
        );
        let script =
            String::from_utf8(decode_base64(at(&lt, "user_data").as_str().unwrap())).unwrap();
        assert!(
            script.contains("/health/trading")
                && script.contains("quote_timestamp")
                && script.contains("db_connected")
        );
        assert!(!script.contains("__DB_ENDPOINT__"));
        assert_eq!(at(&lt, "metadata_options.http_tokens"), "required");
    }
    let asg_p = cloud.one(p, Kind::AutoScalingGroup, &name(seed, "asg"));
    let asg_s = cloud.one(s, Kind::AutoScalingGroup, &name(seed, "asg"));
    assert_eq!(at(&asg_p, "desired_capacity"), &json!(2));
    assert_eq!(at(&asg_s, "desired_capacity"), &json!(1));
    for asg in [&asg_p, &asg_s] {
        assert!(
            at(asg, "metrics_collection.0.metrics")
                .as_array()
                .unwrap()
                .len()
                >= 8
        );
        assert_eq!(at(asg, "health_check_type"), "ELB");
        assert_eq!(at(asg, "launch_template.version"), "$Latest");
    }
    // Identical ALB and Auto Scaling configuration in both regions (apart from the sizes).
    for key in [
        "health_check_type",
        "metrics_collection",
        "max_size",
        "default_instance_warmup",
    ] {
        assert_eq!(
            at(&asg_p, key),
            at(&asg_s, key),
            "{key} differs between regions"
        );
    }
    for region in [p, s] {
        let policies = cloud.of(region, Kind::ScalingPolicy);
        let tt = policies
            .iter()
            .find(|r| at(r, "policy_type") == "TargetTrackingScaling")
            .unwrap();
        assert_eq!(
            at(
                tt,
                "target_tracking_configuration.predefined_metric_specification.predefined_metric_type"
            ),
            "ASGAverageCPUUtilization"
        );
    }
    let step = cloud
        .of(s, Kind::ScalingPolicy)
        .into_iter()
        .find(|r| at(r, "policy_type") == "StepScaling")
        .expect("standby step scaling");
    assert!(at(&step, "estimated_instance_warmup").as_i64().unwrap() <= 60);
    assert_eq!(at(&asg_s, "warm_pool.pool_state"), "Stopped");

    // 2. ALB per region: HTTPS with a certificate, HTTP only redirects, target group health check
    //    on the trading endpoint.
    for region in [p, s] {
        let listeners = cloud.of(region, Kind::Listener);
        let https = listeners
            .iter()
            .find(|l| at(l, "protocol") == "HTTPS")
            .unwrap();
        assert!(
            at(https, "certificates.0")
                .as_str()
                .unwrap()
                .starts_with("arn:aws:acm:")
        );
        assert_eq!(at(https, "default_action.type"), "forward");
        let http = listeners
            .iter()
            .find(|l| at(l, "protocol") == "HTTP")
            .unwrap();
        assert_eq!(at(http, "default_action.type"), "redirect");
        assert_eq!(at(http, "default_action.redirect.protocol"), "HTTPS");
        let tg = cloud.one(region, Kind::TargetGroup, &name(seed, "tg"));
        assert_eq!(at(&tg, "health_check.path"), "/health/trading");
        assert_eq!(at(&tg, "protocol"), "HTTPS");
        let alb = cloud.one(region, Kind::LoadBalancer, &name(seed, "alb"));
        assert_eq!(at(&alb, "scheme"), "internet-facing");
    }

    // 3./4. Route 53: zone, application health checks at 10 s / 3 failures, routing policy.
    assert_eq!(cloud.global(Kind::HostedZone).len(), 1);
    let hcs = cloud.global(Kind::HealthCheck);
    assert_eq!(hcs.len(), 2);
    for hc in &hcs {
        assert_eq!(at(hc, "type"), "HTTPS_STR_MATCH");
        assert_eq!(at(hc, "resource_path"), "/health/trading");
        assert_eq!(at(hc, "search_string"), "\"status\":\"ok\"");
        assert_eq!(
            (at(hc, "request_interval"), at(hc, "failure_threshold")),
            (&json!(10), &json!(3))
        );
    }
    let records: Vec<Resource> = cloud
        .global(Kind::DnsRecord)
        .into_iter()
        .filter(|r| at(r, "type") == "A")
        .collect();
    assert_eq!(records.len(), 2);
    let side = |s: &str| {
        records
            .iter()
            .find(|r| at(r, "set_identifier") == s)
            .unwrap()
            .clone()
    };
    let (rp, rs) = (side("primary"), side("standby"));
    assert_ne!(at(&rp, "health_check_id"), &Value::Null);
    assert_eq!(at(&rp, "alias_target.evaluate_target_health"), &json!(true));
    match seed.routing {
        "weighted" => {
            assert_eq!(
                (at(&rp, "weight"), at(&rs, "weight")),
                (&json!(100), &json!(0))
            );
        }
        _ => {
            assert_eq!(
                (at(&rp, "failover"), at(&rs, "failover")),
                (&json!("PRIMARY"), &json!("SECONDARY"))
            );
        }
    }

    // 6./7. SNS in both regions, KMS-encrypted; alarms with SNS actions.
    for region in [p, s] {
        let t = cloud.one(region, Kind::SnsTopic, &name(seed, "sns-topic"));
        assert!(
            at(&t, "kms_master_key_id")
                .as_str()
                .unwrap()
                .starts_with("arn:aws:kms:")
        );
    }
    let hc_alarm = cloud.one(
        "us-east-1",
        Kind::MetricAlarm,
        &name(seed, "health-check-alarm-primary"),
    );
    assert_eq!(at(&hc_alarm, "metric_name"), "HealthCheckStatus");
    assert_eq!(at(&hc_alarm, "comparison_operator"), "LessThanThreshold");
    assert_eq!(
        (
            at(&hc_alarm, "threshold"),
            at(&hc_alarm, "evaluation_periods")
        ),
        (&json!(1), &json!(2))
    );
    assert!(
        at(&hc_alarm, "alarm_actions.0")
            .as_str()
            .unwrap()
            .starts_with("arn:aws:sns:us-east-1:")
    );
    let lag = cloud.one(s, Kind::MetricAlarm, &name(seed, "replication-lag-alarm"));
    assert_eq!(at(&lag, "metric_name"), "AuroraGlobalDBReplicationLag");
    assert_eq!(
        (at(&lag, "threshold"), at(&lag, "comparison_operator")),
        (&json!(30000), &json!("GreaterThanThreshold"))
    );
    let composite = cloud.one(
        "us-east-1",
        Kind::CompositeAlarm,
        &name(seed, "regional-outage-alarm"),
    );
    assert!(
        at(&composite, "alarm_rule")
            .as_str()
            .unwrap()
            .contains(&hc_alarm.name)
    );
    for region in [p, s] {
        let a = cloud.one(
            region,
            Kind::MetricAlarm,
            &name(seed, "unhealthy-hosts-alarm"),
        );
        assert_eq!(at(&a, "metric_name"), "UnHealthyHostCount");
        assert!(
            at(&a, "alarm_actions.0")
                .as_str()
                .unwrap()
                .starts_with(&format!("arn:aws:sns:{region}:"))
        );
    }

    // 5. The lag monitor: Lambda with shipped code, sampling twice 30 s apart, every minute.
    let f = cloud.one(s, Kind::LambdaFunction, &name(seed, "replication-monitor"));
    assert_eq!(
        (
            at(&f, "environment.SAMPLES"),
            at(&f, "environment.SAMPLE_INTERVAL_SECONDS")
        ),
        (&json!("2"), &json!("30"))
    );
    assert!(
        at(&f, "code.source")
            .as_str()
            .unwrap()
            .contains("put_metric_data")
    );
    let sched = cloud.one(
        s,
        Kind::EventRule,
        &name(seed, "replication-monitor-schedule"),
    );
    assert_eq!(at(&sched, "schedule_expression"), "rate(1 minute)");

    // The daemon's feed: alarm state changes -> EventBridge -> SQS in the standby region.
    let queue = cloud.one(s, Kind::SqsQueue, &name(seed, "alarm-events"));
    let rule = cloud.one(s, Kind::EventRule, &name(seed, "alarm-state-change"));
    assert_eq!(
        at(&rule, "event_pattern.detail-type.0"),
        "CloudWatch Alarm State Change"
    );
    assert_eq!(at(&rule, "targets.0.arn"), &json!(queue.arn));
    assert!(at(&queue, "kms_master_key_id").is_string());
    let forward = cloud.one(
        "us-east-1",
        Kind::EventRule,
        &name(seed, "alarm-state-change"),
    );
    assert!(
        at(&forward, "targets.0.arn")
            .as_str()
            .unwrap()
            .contains(&format!(":events:{s}:"))
    );

    // 10. The failover readiness dashboard.
    let dash = cloud.one(s, Kind::Dashboard, &name(seed, "failover-dashboard"));
    assert!(
        at(&dash, "dashboard_body.widgets")
            .as_array()
            .unwrap()
            .len()
            >= 5
    );
}

async fn provision_check_rerun_destroy(seed: &Seed) {
    let cloud = Cloud::new();
    let first = cloud.run("provision.yaml", seed.params).await;
    // Every provisioning step that ran created something on a fresh cloud: no two steps share
    // a resource (one would find the other's and report `unchanged`, or both race to create
    // it). Steps that only read or clean up are the exception.
    for s in &first.steps {
        if s.status == StepStatus::Skipped {
            continue;
        }
        let change = s
            .outputs
            .as_ref()
            .and_then(|o| o.get("change"))
            .and_then(Value::as_str);
        if !READ_OR_CLEANUP.contains(&s.uses.as_str()) {
            assert_eq!(change, Some("created"), "step {} on a fresh cloud", s.id);
        }
    }
    // The health metrics region (us-east-1) gets its own topic only when it is neither the
    // primary nor the standby region.
    let skipped: Vec<&str> = first
        .steps
        .iter()
        .filter(|s| s.status == StepStatus::Skipped)
        .map(|s| s.id.as_str())
        .collect();
    let own_topic = seed.primary != "us-east-1" && seed.standby != "us-east-1";
    assert_eq!(
        skipped,
        if own_topic {
            vec![]
        } else {
            vec!["sns_health_metrics"]
        }
    );
    check_one_topic_per_region(&cloud, seed.suffix);
    let hc_topic = &first.outputs["health_metrics_sns_topic_arn"];
    assert!(
        hc_topic
            .as_str()
            .is_some_and(|t| t.starts_with("arn:aws:sns:us-east-1:")),
        "{hc_topic}"
    );
    check_requirements(&cloud, seed);
    // Outputs the issue asks for.
    let out = &first.outputs;
    for key in [
        "primary_endpoint",
        "standby_endpoint",
        "primary_db_writer_endpoint",
        "primary_db_reader_endpoint",
        "standby_db_reader_endpoint",
        "public_dns_name",
        "primary_health_check_id",
        "primary_health_check_url",
        "dashboard_url",
        "primary_sns_topic_arn",
        "standby_sns_topic_arn",
        "health_metrics_sns_topic_arn",
        "alarm_queue_url",
        "session_table",
        "coordination_table",
        "failover_readiness",
    ] {
        assert!(
            out.get(key)
                .and_then(Value::as_str)
                .is_some_and(|v| !v.is_empty()),
            "output {key}: {:?}",
            out.get(key)
        );
    }
    assert_eq!(
        out["failover_ready"],
        json!(true),
        "{}",
        out["failover_readiness"]
    );
    assert_eq!(out["routing_policy"], json!(seed.routing));
    assert_eq!(out["coordination_table"], json!(name(seed, "drflow-state")));
    let count = cloud.all().len();
    let clock = cloud.world().clock_ms;

    // A second provision creates nothing and repairs nothing.
    let second = cloud.run("provision.yaml", seed.params).await;
    assert_eq!(
        changed(&second),
        vec![],
        "second provision changed something"
    );
    assert_eq!(cloud.all().len(), count);
    assert_eq!(second.outputs, first.outputs, "outputs differ between runs");
    // The virtual clock, not the wall clock, carried the long waits (Aurora, NAT, ALB).
    assert!(clock - drflow_steps::sim::EPOCH_MS > 15 * 60 * 1000);

    // Destroy leaves nothing; again, it deletes nothing.
    let d = cloud.run("destroy.yaml", seed.params).await;
    assert_eq!(outputs(&d, "teardown")["deleted"], json!(count));
    // Destroy's work is deletion, and it says so (not "updated").
    assert_eq!(outputs(&d, "teardown")["change"], json!("deleted"));
    assert_eq!(d.outputs["change"], json!("deleted"));
    assert!(
        cloud.world().is_empty(),
        "left behind: {:?}",
        cloud
            .all()
            .iter()
            .map(|r| (&r.kind, &r.name))
            .collect::<Vec<_>>()
    );
    let again = cloud.run("destroy.yaml", seed.params).await;
    assert_eq!(outputs(&again, "teardown")["change"], json!("unchanged"));
}

#[tokio::test]
async fn us_east_seed_every_requirement_then_rerun_then_destroy() {
    provision_check_rerun_destroy(&US_EAST).await;
}

#[tokio::test]
async fn eu_seed_every_requirement_then_rerun_then_destroy() {
    provision_check_rerun_destroy(&EU).await;
}

#[tokio::test]
async fn both_seeds_share_one_world_without_touching_each_other() {
    let cloud = Cloud::new();
    cloud.run("provision.yaml", US_EAST.params).await;
    let us_count = cloud.all().len();
    cloud.run("provision.yaml", EU.params).await;
    check_requirements_subset(&cloud);
    cloud.run("destroy.yaml", EU.params).await;
    assert_eq!(cloud.all().len(), us_count, "destroying eu touched us-east");
    assert!(
        cloud
            .all()
            .iter()
            .filter(|r| r.kind.taggable())
            .all(|r| r.tags["EnvironmentSuffix"] == "prod-us"),
        "what is left is us-east's (AWS cannot tag routes, records or aliases)"
    );
}

#[tokio::test]
async fn a_standby_in_us_east_1_shares_its_topic_with_the_health_check_alarms() {
    // Primary us-east-2, standby us-east-1 (the health metrics region): the standby's topic
    // serves the health check alarms, no step fights over its FailoverRole tag, and a re-run
    // changes nothing.
    let cloud = Cloud::new();
    let swap = [
        ("primary_region", "us-east-2"),
        ("standby_region", "us-east-1"),
    ];
    let first = cloud
        .run_with("provision.yaml", US_EAST.params, &swap)
        .await;
    let skipped: Vec<&str> = first
        .steps
        .iter()
        .filter(|s| s.status == StepStatus::Skipped)
        .map(|s| s.id.as_str())
        .collect();
    assert_eq!(skipped, ["sns_health_metrics"]);
    check_one_topic_per_region(&cloud, US_EAST.suffix);
    let topic = cloud.one("us-east-1", Kind::SnsTopic, "sns-topic-prod-us");
    assert_eq!(topic.tags["FailoverRole"], "Standby");
    let hc_alarm = cloud.one(
        "us-east-1",
        Kind::MetricAlarm,
        "health-check-alarm-primary-prod-us",
    );
    assert_eq!(at(&hc_alarm, "alarm_actions.0"), &json!(topic.arn));
    let again = cloud
        .run_with("provision.yaml", US_EAST.params, &swap)
        .await;
    assert_eq!(changed(&again), vec![]);
}

#[tokio::test]
async fn the_standby_instance_class_is_its_own_parameter() {
    let cloud = Cloud::new();
    cloud
        .run_with(
            "provision.yaml",
            EU.params,
            &[("standby_db_instance_class", "db.r7g.large")],
        )
        .await;
    let class = |region: &str| {
        at(
            &cloud.one(region, Kind::DbInstance, "aurora-instance-1-prod-eu"),
            "db_instance_class",
        )
        .clone()
    };
    assert_eq!(class(EU.standby), json!("db.r7g.large"));
    assert_eq!(class(EU.primary), json!("db.r6g.large"));

    // Burstable classes cannot join a global database: refused before anything is built.
    let cloud = Cloud::new();
    let report = cloud
        .try_run_with(
            "provision.yaml",
            EU.params,
            &[("standby_db_instance_class", "db.t4g.medium")],
        )
        .await;
    let db = report.steps.iter().find(|s| s.id == "database").unwrap();
    let err = db.error.as_ref().expect("database step fails").to_string();
    assert!(
        err.contains("db.t") && err.contains("db.r6g.large"),
        "{err}"
    );
    assert!(cloud.of(EU.primary, Kind::DbCluster).is_empty());
}

fn check_requirements_subset(cloud: &Cloud) {
    assert_eq!(cloud.global(Kind::HostedZone).len(), 2);
    assert_eq!(cloud.global(Kind::GlobalCluster).len(), 2);
}

/// The sim serves every commercial region of the table validation uses: regions it used to
/// refuse (ap-northeast-1, ca-central-1, eu-central-2) provision like any other.
#[tokio::test]
async fn regions_the_sim_used_to_refuse_provision() {
    for (primary, standby) in [
        ("ap-northeast-1", "ca-central-1"),
        ("eu-central-1", "eu-central-2"),
    ] {
        let cloud = Cloud::new();
        let report = cloud
            .run_with(
                "provision.yaml",
                "eu.yaml",
                &[("primary_region", primary), ("standby_region", standby)],
            )
            .await;
        assert_eq!(
            outputs(&report, "readiness")["ready"],
            json!(true),
            "{primary}/{standby}"
        );
    }
}
