//! The proof of `--target aws` against moto (a real AWS emulator on 127.0.0.1, started by
//! `.ci/run`): for each parameter file, `drflow run runbooks/provision.yaml --target aws` builds
//! both regions; every resource is read back with the SDK's describe calls and checked against
//! the requirement documents; a second run makes no mutating call; `runbooks/destroy.yaml` leaves
//! no drflow resource in either region, untaggable ones included; and every SDK call the
//! provision and destroy runs made is allowed by `drflow policy` of that runbook.
//!
//! The endpoint comes from `DRFLOW_MOTO_ENDPOINT`. Without it the tests say SKIPPED loudly, and
//! fail when `CI` is set.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

use drflow_steps::aws::{Clients, MOTO_DOES_NOT_STORE};
use drflow_steps::policy::iam_action;

#[path = "common/moto.rs"]
mod moto;

/// `drflow ARGS… --target aws --endpoint-url EP` with moto's dummy credentials and no shared
/// config, so nothing of the machine's own AWS setup is read.
fn drflow_aws(ep: &str, state: &Path, args: &[&str]) -> Output {
    drflow_aws_logged(ep, state, args, "")
}

/// [`drflow_aws`] with `DRFLOW_LOG=log` (empty: the default log).
fn drflow_aws_logged(ep: &str, state: &Path, args: &[&str], log: &str) -> Output {
    moto::drflow_aws(ep, state, &moto::testing_keys(), args)
        .env("DRFLOW_LOG", log)
        .output()
        .expect("drflow runs")
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The `aws: N calls (M mutating)` line's two numbers.
fn calls(o: &Output) -> (u64, u64) {
    let err = String::from_utf8_lossy(&o.stderr);
    let line = err
        .lines()
        .find(|l| l.starts_with("aws: "))
        .unwrap_or_else(|| panic!("no `aws:` calls line\n{}", text(o)));
    let nums: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .filter_map(|s| s.parse().ok())
        .collect();
    (nums[0], nums[1])
}

/// The log filter that shows every SDK call drflow makes (one debug record each, with
/// `service` and `operation`).
const CALL_LOG: &str = "warn,drflow::aws=debug";

/// The IAM actions that authorise the SDK calls a run logged under [`CALL_LOG`], failed calls
/// included (a describe that finds nothing still needs its permission).
fn called_actions(o: &Output) -> BTreeSet<String> {
    let err = String::from_utf8_lossy(&o.stderr);
    let field = |line: &str, name: &str| -> Option<String> {
        let at = line.find(&format!("{name}="))? + name.len() + 1;
        let value = line[at..].split_whitespace().next()?;
        Some(value.trim_matches('"').to_string())
    };
    let mut actions = BTreeSet::new();
    for line in err.lines().filter(|l| l.contains("aws call")) {
        let (Some(service), Some(operation)) = (field(line, "service"), field(line, "operation"))
        else {
            panic!("an aws call record names service and operation: {line}");
        };
        // STS answers GetCallerIdentity whatever the caller's policy says.
        if (service.as_str(), operation.as_str()) != ("sts", "GetCallerIdentity") {
            actions.insert(iam_action(&format!("{service}:{operation}")).to_string());
        }
    }
    actions
}

/// The actions of `drflow policy RUNBOOK` for a layout's parameter file.
fn policy_actions(runbook: &str, params: &str) -> BTreeSet<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_drflow"))
        .args(["policy", runbook, "--params-file", params])
        .args(["--account", "123456789012"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("drflow runs");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a JSON policy");
    let mut actions = BTreeSet::new();
    for st in doc["Statement"].as_array().expect("statements") {
        for a in st["Action"].as_array().expect("actions") {
            let a = a.as_str().expect("an action").to_string();
            assert!(!a.contains('*'), "{runbook}: wildcard action {a}");
            actions.insert(a);
        }
    }
    actions
}

/// Every call the moto run made is allowed by the runbook's least-privilege policy.
fn assert_policy_covers(o: &Output, runbook: &str, params: &str) {
    let called = called_actions(o);
    assert!(
        called.len() > 20,
        "{runbook}: the run's calls were logged: {}",
        text(o)
    );
    let allowed = policy_actions(runbook, params);
    let missing: Vec<&String> = called.difference(&allowed).collect();
    assert!(
        missing.is_empty(),
        "`drflow policy {runbook}` lacks actions the run called: {missing:?}"
    );
}

/// How many repairs a run made, after checking that each changed only what moto does not
/// store: every `~ kind name (region): a, b differed` line names such attributes, and there is
/// no create, replacement or deletion.
fn moto_gap_repairs(o: &Output) -> u64 {
    let err = String::from_utf8_lossy(&o.stderr);
    let mut repairs = 0;
    for line in err.lines() {
        let t = line.trim_start();
        assert!(
            !(t.starts_with("+ ") || t.starts_with("- ") || t.starts_with("-/+ ")),
            "the second run created, replaced or deleted: {line}\n{}",
            text(o)
        );
        let Some(rest) = t.strip_prefix("~ ") else {
            continue;
        };
        let kind = rest.split_whitespace().next().unwrap_or_default();
        let keys = rest
            .rsplit_once("): ")
            .and_then(|(_, k)| k.strip_suffix(" differed"))
            .unwrap_or_else(|| panic!("a repair line names what differed: {line}"));
        for key in keys.split(", ") {
            assert!(
                MOTO_DOES_NOT_STORE
                    .iter()
                    .any(|(k, p)| k.name() == kind && *p == key),
                "the second run repaired {kind} {key}, which moto stores: {line}\n{}",
                text(o)
            );
        }
        repairs += 1;
    }
    repairs
}

/// One layout of the requirement documents, as its parameter file sets it.
struct Layout {
    params: &'static str,
    suffix: &'static str,
    primary: &'static str,
    standby: &'static str,
    primary_cidr: &'static str,
    standby_cidr: &'static str,
    public_subnets: usize,
    private_subnets: usize,
    primary_nats: usize,
    standby_nats: usize,
    domain: &'static str,
    weighted: bool,
}

const EU: Layout = Layout {
    params: "runbooks/params/eu.yaml",
    suffix: "prod-eu",
    primary: "eu-south-1",
    standby: "eu-central-1",
    primary_cidr: "10.10.0.0/16",
    standby_cidr: "10.20.0.0/16",
    public_subnets: 2,
    private_subnets: 2,
    primary_nats: 2,
    standby_nats: 1,
    domain: "trading-prod-eu.example.com",
    weighted: true,
};

const US: Layout = Layout {
    params: "runbooks/params/us-east.yaml",
    suffix: "prod-us",
    primary: "us-east-1",
    standby: "us-east-2",
    primary_cidr: "10.0.0.0/16",
    standby_cidr: "10.1.0.0/16",
    public_subnets: 3,
    private_subnets: 3,
    primary_nats: 3,
    standby_nats: 1,
    domain: "trading-prod-us.example.com",
    weighted: false,
};

fn ec2_filter(name: &str, value: &str) -> aws_sdk_ec2::types::Filter {
    aws_sdk_ec2::types::Filter::builder()
        .name(name)
        .values(value)
        .build()
}

fn tag<'a>(tags: &'a [aws_sdk_ec2::types::Tag], key: &str) -> Option<&'a str> {
    tags.iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}

/// Reads both regions back and checks the requirement documents' numbered requirements.
async fn check_built(c: &Clients, l: &Layout) {
    let s = l.suffix;
    for (region, role, cidr, nats, capacity) in [
        (l.primary, "Primary", l.primary_cidr, l.primary_nats, 2),
        (l.standby, "Standby", l.standby_cidr, l.standby_nats, 1),
    ] {
        let rc = c.region(region).await;
        // Networking: one VPC, tagged; subnets spread one per availability zone.
        let vpcs = rc
            .ec2
            .describe_vpcs()
            .filters(ec2_filter("tag:Name", &format!("vpc-{s}")))
            .send()
            .await
            .unwrap();
        let vpc = &vpcs.vpcs()[0];
        assert_eq!(vpcs.vpcs().len(), 1, "{region}: one vpc-{s}");
        assert_eq!(vpc.cidr_block(), Some(cidr));
        assert_eq!(tag(vpc.tags(), "Environment"), Some("Production"));
        assert_eq!(tag(vpc.tags(), "ManagedBy"), Some("drflow"));
        assert_eq!(tag(vpc.tags(), "FailoverRole"), Some(role));
        let subnets = rc
            .ec2
            .describe_subnets()
            .filters(ec2_filter("vpc-id", vpc.vpc_id().unwrap()))
            .send()
            .await
            .unwrap();
        for (tier, want) in [("public", l.public_subnets), ("private", l.private_subnets)] {
            let mine: Vec<_> = subnets
                .subnets()
                .iter()
                .filter(|n| {
                    tag(n.tags(), "Name").is_some_and(|t| t.starts_with(&format!("{tier}-subnet-")))
                })
                .collect();
            assert_eq!(mine.len(), want, "{region}: {tier} subnets");
            let azs: std::collections::BTreeSet<_> =
                mine.iter().filter_map(|n| n.availability_zone()).collect();
            assert_eq!(azs.len(), want, "{region}: one {tier} subnet per AZ");
        }
        let nat = rc
            .ec2
            .describe_nat_gateways()
            .filter(ec2_filter("vpc-id", vpc.vpc_id().unwrap()))
            .send()
            .await
            .unwrap();
        let live = nat
            .nat_gateways()
            .iter()
            .filter(|n| n.state().map(|s| s.as_str()) == Some("available"))
            .count();
        assert_eq!(live, nats, "{region}: NAT gateways");
        // Compute: the ASG's sizes and its instances.
        let asg = rc
            .autoscaling
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(format!("asg-{s}"))
            .send()
            .await
            .unwrap();
        let g = &asg.auto_scaling_groups()[0];
        assert_eq!(g.desired_capacity(), Some(capacity), "{region}: desired");
        assert_eq!(
            g.instances().len(),
            capacity as usize,
            "{region}: instances"
        );
        // Data at rest is encrypted under drflow's KMS key.
        let db = rc
            .rds
            .describe_db_clusters()
            .db_cluster_identifier(format!("aurora-cluster-{s}"))
            .send()
            .await
            .unwrap();
        let cluster = &db.db_clusters()[0];
        assert_eq!(cluster.storage_encrypted(), Some(true), "{region}: aurora");
        assert!(cluster.kms_key_id().is_some_and(|k| !k.is_empty()));
        let table = rc
            .dynamodb
            .describe_table()
            .table_name(format!("trading-sessions-{s}"))
            .send()
            .await
            .unwrap();
        let t = table.table().unwrap();
        assert_eq!(t.key_schema()[0].attribute_name(), "sessionId");
        assert!(t.sse_description().is_some(), "{region}: table encrypted");
        // drflow's own coordination table (the daemon's lease and shared journal): `pk`, items
        // expiring on `purge_at`, encrypted, in both regions.
        let state = format!("drflow-state-{s}");
        let table = rc
            .dynamodb
            .describe_table()
            .table_name(&state)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{region}: {state}: {e:?}"));
        let t = table.table().unwrap();
        assert_eq!(t.key_schema().len(), 1, "{region}: {state} key schema");
        assert_eq!(t.key_schema()[0].attribute_name(), "pk");
        assert_eq!(t.key_schema()[0].key_type().as_str(), "HASH");
        assert_eq!(t.attribute_definitions()[0].attribute_name(), "pk");
        assert_eq!(
            t.attribute_definitions()[0].attribute_type().as_str(),
            "S",
            "{region}: {state} key type"
        );
        assert!(t.sse_description().is_some(), "{region}: {state} encrypted");
        let ttl = rc
            .dynamodb
            .describe_time_to_live()
            .table_name(&state)
            .send()
            .await
            .unwrap();
        let ttl = ttl.time_to_live_description().unwrap();
        assert_eq!(
            ttl.attribute_name(),
            Some("purge_at"),
            "{region}: {state} TTL"
        );
        assert_eq!(
            ttl.time_to_live_status().map(|s| s.as_str()),
            Some("ENABLED"),
            "{region}: {state} TTL"
        );
        let bucket = format!("artifacts-{region}-{s}");
        let enc = rc
            .s3
            .get_bucket_encryption()
            .bucket(&bucket)
            .send()
            .await
            .unwrap();
        let rule = &enc.server_side_encryption_configuration().unwrap().rules()[0];
        assert_eq!(
            rule.apply_server_side_encryption_by_default()
                .unwrap()
                .sse_algorithm()
                .as_str(),
            "aws:kms"
        );
        // Notifications in both regions, encrypted.
        let topics = rc.sns.list_topics().send().await.unwrap();
        let topic = topics
            .topics()
            .iter()
            .filter_map(|t| t.topic_arn())
            .find(|a| a.ends_with(&format!(":sns-topic-{s}")))
            .unwrap_or_else(|| panic!("{region}: sns-topic-{s}"));
        let attrs = rc
            .sns
            .get_topic_attributes()
            .topic_arn(topic)
            .send()
            .await
            .unwrap();
        assert!(
            attrs
                .attributes()
                .and_then(|a| a.get("KmsMasterKeyId"))
                .is_some_and(|k| !k.is_empty()),
            "{region}: topic encrypted"
        );
    }
    // Peering between the two VPCs is active.
    let rc = c.region(l.primary).await;
    let pcx = rc
        .ec2
        .describe_vpc_peering_connections()
        .filters(ec2_filter("tag:Name", &format!("vpc-peering-{s}")))
        .send()
        .await
        .unwrap();
    // A connection an earlier destroy deleted stays listed as `deleted` for a while (on AWS
    // as on moto), so a second proof on the same endpoint sees it too: the live one is checked.
    let status: Vec<String> = pcx
        .vpc_peering_connections()
        .iter()
        .filter_map(|p| p.status().and_then(|s| s.code()))
        .map(|c| c.as_str().to_string())
        .filter(|c| c != "deleted")
        .collect();
    assert_eq!(status, ["active"], "one live vpc-peering-{s}");
    // Replication lag alarm at 30 s, in the standby region where Aurora publishes the metric.
    let rc = c.region(l.standby).await;
    let alarms = rc
        .cloudwatch
        .describe_alarms()
        .alarm_names(format!("replication-lag-alarm-{s}"))
        .send()
        .await
        .unwrap();
    assert_eq!(alarms.metric_alarms()[0].threshold(), Some(30000.0));
    // Route 53: health checks every 10 s, failing after 3, on the trading path; the records.
    let g = c.global().await;
    let checks = g.route53.list_health_checks().send().await.unwrap();
    let mut ours = 0;
    for hc in checks.health_checks() {
        let tags = g
            .route53
            .list_tags_for_resource()
            .resource_type(aws_sdk_route53::types::TagResourceType::Healthcheck)
            .resource_id(hc.id())
            .send()
            .await
            .unwrap();
        let name = tags
            .resource_tag_set()
            .and_then(|t| t.tags().iter().find(|t| t.key() == Some("Name")))
            .and_then(|t| t.value())
            .unwrap_or_default()
            .to_string();
        if !name.starts_with("health-check-") || !name.ends_with(s) {
            continue;
        }
        ours += 1;
        let conf = hc.health_check_config().unwrap();
        assert_eq!(conf.request_interval(), Some(10), "{name}");
        assert_eq!(conf.failure_threshold(), Some(3), "{name}");
        assert_eq!(conf.resource_path(), Some("/health/trading"), "{name}");
        assert_eq!(conf.search_string(), Some("\"status\":\"ok\""), "{name}");
    }
    assert_eq!(ours, 2, "a health check per region");
    let zones = g
        .route53
        .list_hosted_zones_by_name()
        .dns_name(l.domain)
        .send()
        .await
        .unwrap();
    let zone = zones
        .hosted_zones()
        .iter()
        .find(|z| z.name() == format!("{}.", l.domain))
        .expect("the hosted zone");
    let records = g
        .route53
        .list_resource_record_sets()
        .hosted_zone_id(zone.id())
        .send()
        .await
        .unwrap();
    let api: Vec<_> = records
        .resource_record_sets()
        .iter()
        .filter(|r| r.name() == format!("api.{}.", l.domain) && r.r#type().as_str() == "A")
        .collect();
    assert_eq!(api.len(), 2, "a record per region");
    if l.weighted {
        let mut weights: Vec<i64> = api.iter().filter_map(|r| r.weight()).collect();
        weights.sort();
        assert_eq!(weights, [0, 100]);
    } else {
        let mut roles: Vec<&str> = api
            .iter()
            .filter_map(|r| r.failover().map(|f| f.as_str()))
            .collect();
        roles.sort();
        assert_eq!(roles, ["PRIMARY", "SECONDARY"]);
    }
}

/// Nothing of the environment is left in either region, untaggable resources included.
async fn check_gone(c: &Clients, l: &Layout) {
    let s = l.suffix;
    for region in [l.primary, l.standby] {
        let rc = c.region(region).await;
        let tagged = ec2_filter("tag:EnvironmentSuffix", s);
        let vpcs = rc
            .ec2
            .describe_vpcs()
            .filters(tagged.clone())
            .send()
            .await
            .unwrap();
        assert!(vpcs.vpcs().is_empty(), "{region}: VPC left");
        let subnets = rc
            .ec2
            .describe_subnets()
            .filters(tagged.clone())
            .send()
            .await
            .unwrap();
        assert!(subnets.subnets().is_empty(), "{region}: subnets left");
        let sgs = rc
            .ec2
            .describe_security_groups()
            .filters(tagged.clone())
            .send()
            .await
            .unwrap();
        assert!(sgs.security_groups().is_empty(), "{region}: SGs left");
        let eips = rc
            .ec2
            .describe_addresses()
            .filters(tagged.clone())
            .send()
            .await
            .unwrap();
        assert!(eips.addresses().is_empty(), "{region}: EIPs left");
        let asgs = rc
            .autoscaling
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(format!("asg-{s}"))
            .send()
            .await
            .unwrap();
        assert!(asgs.auto_scaling_groups().is_empty(), "{region}: ASG left");
        let lbs = rc.elbv2.describe_load_balancers().send().await.unwrap();
        assert!(
            !lbs.load_balancers()
                .iter()
                .any(|b| b.load_balancer_name() == Some(&format!("alb-{s}"))),
            "{region}: ALB left"
        );
        let dbs = rc.rds.describe_db_clusters().send().await.unwrap();
        assert!(
            !dbs.db_clusters()
                .iter()
                .any(|d| d.db_cluster_identifier() == Some(&format!("aurora-cluster-{s}"))),
            "{region}: Aurora cluster left"
        );
        let tables = rc.dynamodb.list_tables().send().await.unwrap();
        for table in [format!("trading-sessions-{s}"), format!("drflow-state-{s}")] {
            assert!(
                !tables.table_names().contains(&table),
                "{region}: table {table} left"
            );
        }
        let aliases = rc.kms.list_aliases().send().await.unwrap();
        assert!(
            !aliases
                .aliases()
                .iter()
                .any(|a| a.alias_name() == Some(&format!("alias/kms-key-{s}"))),
            "{region}: KMS alias left (untaggable)"
        );
        let topics = rc.sns.list_topics().send().await.unwrap();
        assert!(
            !topics
                .topics()
                .iter()
                .filter_map(|t| t.topic_arn())
                .any(|a| a.ends_with(&format!(":sns-topic-{s}"))),
            "{region}: topic left"
        );
        let dashboards = rc.cloudwatch.list_dashboards().send().await.unwrap();
        assert!(
            !dashboards
                .dashboard_entries()
                .iter()
                .any(|d| d.dashboard_name().is_some_and(|n| n.ends_with(s))),
            "{region}: dashboard left (untaggable)"
        );
        let alarms = rc.cloudwatch.describe_alarms().send().await.unwrap();
        assert!(
            !alarms
                .metric_alarms()
                .iter()
                .any(|a| a.alarm_name().is_some_and(|n| n.ends_with(s))),
            "{region}: alarms left"
        );
    }
    let s3 = c.region(l.primary).await;
    let buckets = s3.s3.list_buckets().send().await.unwrap();
    assert!(
        !buckets
            .buckets()
            .iter()
            .any(|b| b.name().is_some_and(|n| n.ends_with(s))),
        "buckets left"
    );
    let g = c.global().await;
    let zones = g
        .route53
        .list_hosted_zones_by_name()
        .dns_name(l.domain)
        .send()
        .await
        .unwrap();
    assert!(
        !zones
            .hosted_zones()
            .iter()
            .any(|z| z.name() == format!("{}.", l.domain)),
        "hosted zone left (its records must go first)"
    );
    let roles = g.iam.list_roles().send().await.unwrap();
    assert!(
        !roles.roles().iter().any(|r| r.role_name().ends_with(s)),
        "IAM roles left"
    );
    let globals = g.rds.describe_global_clusters().send().await.unwrap();
    assert!(
        !globals
            .global_clusters()
            .iter()
            .any(|gc| gc.global_cluster_identifier() == Some(&format!("aurora-global-{s}"))),
        "global cluster left (untaggable)"
    );
}

fn provision_check_rerun_destroy(l: &Layout) {
    let Some(moto) = moto::moto() else { return };
    let ep = moto.endpoint.clone();
    let state = tempfile::tempdir().unwrap();
    let run = ["run", "runbooks/provision.yaml", "--params-file", l.params];
    let first = drflow_aws_logged(&ep, state.path(), &run, CALL_LOG);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let (_, mutating) = calls(&first);
    assert!(mutating > 0, "the first run builds: {}", text(&first));
    assert_policy_covers(&first, "runbooks/provision.yaml", l.params);

    let rt = tokio::runtime::Runtime::new().unwrap();
    let c = moto.clients();
    rt.block_on(check_built(&c, l));

    let again = drflow_aws(&ep, state.path(), &run);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    let (_, mutating) = calls(&again);
    let repairs = moto_gap_repairs(&again);
    assert!(
        mutating <= repairs,
        "a second run changes nothing but what moto does not store: {}",
        text(&again)
    );

    let destroy = drflow_aws_logged(
        &ep,
        state.path(),
        &[
            "run",
            "runbooks/destroy.yaml",
            "--params-file",
            l.params,
            "--yes",
        ],
        CALL_LOG,
    );
    assert_eq!(destroy.status.code(), Some(0), "{}", text(&destroy));
    assert_policy_covers(&destroy, "runbooks/destroy.yaml", l.params);
    rt.block_on(check_gone(&c, l));
}

#[test]
fn eu_layout_is_built_read_back_unchanged_on_rerun_and_destroyed_on_moto() {
    provision_check_rerun_destroy(&EU);
}

#[test]
fn us_east_layout_is_built_read_back_unchanged_on_rerun_and_destroyed_on_moto() {
    provision_check_rerun_destroy(&US);
}
