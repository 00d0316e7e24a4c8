//! `dr.discover`: what a failover acts on, found by the names provision gave it.
//!
//! A failover runs with nothing but the environment's parameters (its suffix, regions and
//! domain), maybe hours or months after the provision, maybe while the primary region is gone.
//! So it finds each resource by its `<type>-<env_suffix>` name, and what it cannot reach in the
//! primary region it reports as unreachable instead of failing.

use std::sync::Arc;

use drflow_engine::{Outputs, Registry, StepError, ValueType};
use serde_json::{Value, json};

use super::step::{BodyFuture, FailoverStep, Fx, failover_spec, same_host, string, unreachable};
use crate::backend::{GLOBAL, Kind, Resource};
use crate::cloud::checks::CloudSpec;
use crate::regions::AWS_REGION;
use crate::target::LazyBackend;
use crate::watch::ProbeTarget;

pub(crate) fn register(reg: &mut Registry, backend: &Arc<LazyBackend>) {
    let spec = failover_spec(
        "dr.discover",
        "Finds what a failover acts on by the names provision gave it: the global database, \
         both Auto Scaling groups and target groups, both health checks, the hosted zone and \
         the public record's two record sets (and so the routing policy), both SNS topics, the \
         alarms watching the primary, and where DNS sends traffic now. Changes nothing; what \
         it cannot reach in one region is listed in `unreachable`.",
    )
    .required(
        "env_suffix",
        ValueType::String,
        "The environment suffix every name ends with.",
    )
    .format(crate::cloud::framework::ENV_SUFFIX)
    .required(
        "primary_region",
        ValueType::String,
        "The region serving traffic until now.",
    )
    .format(AWS_REGION)
    .required(
        "standby_region",
        ValueType::String,
        "The region to take over.",
    )
    .format(AWS_REGION)
    .required(
        "domain_name",
        ValueType::String,
        "The hosted zone's domain; the public name is `api.<domain_name>`.",
    )
    .format(drflow_engine::formats::DOMAIN_NAME)
    .optional(
        "health_metrics_region",
        ValueType::String,
        json!("us-east-1"),
        "Where the health check alarms live (Route 53 publishes its metrics in us-east-1).",
    )
    .format(AWS_REGION)
    .distinct_regions("primary_region", "standby_region")
    .output(
        "global_cluster_id",
        ValueType::String,
        "The Aurora global cluster.",
    )
    .output("hosted_zone_id", ValueType::String, "The public zone.")
    .output(
        "record_name",
        ValueType::String,
        "The public name (`api.<domain_name>`).",
    )
    .output(
        "routing_policy",
        ValueType::String,
        "`weighted` or `failover`, read from the record sets.",
    )
    .output(
        "primary_set_identifier",
        ValueType::String,
        "The primary record set.",
    )
    .output(
        "standby_set_identifier",
        ValueType::String,
        "The standby record set.",
    )
    .output(
        "primary_alb_dns_name",
        ValueType::String,
        "The primary load balancer the record aliases.",
    )
    .output(
        "standby_alb_dns_name",
        ValueType::String,
        "The standby load balancer the record aliases.",
    )
    .output(
        "primary_health_check_id",
        ValueType::String,
        "The primary's Route 53 health check.",
    )
    .output(
        "standby_health_check_id",
        ValueType::String,
        "The standby's Route 53 health check.",
    )
    .output(
        "probe_url",
        ValueType::String,
        "The primary's health endpoint, as its health check probes it.",
    )
    .output(
        "search_string",
        ValueType::String,
        "What a healthy answer contains.",
    )
    .output(
        "asg_name",
        ValueType::String,
        "The Auto Scaling group's name (the same in both regions).",
    )
    .output(
        "primary_target_group_arn",
        ValueType::String,
        "The primary's target group (empty when unreachable).",
    )
    .output(
        "standby_target_group_arn",
        ValueType::String,
        "The standby's target group.",
    )
    .output(
        "primary_capacity",
        ValueType::Int,
        "The primary group's desired capacity now (0 when unreachable).",
    )
    .output(
        "standby_capacity",
        ValueType::Int,
        "The standby group's desired capacity now.",
    )
    .output(
        "topic_arns",
        ValueType::List,
        "Both regions' SNS topics (those found).",
    )
    .output(
        "alarms",
        ValueType::List,
        "The alarms that watch the primary, each `{region, name}`.",
    )
    .output(
        "serving_region",
        ValueType::String,
        "`primary` or `standby`: whose load balancer Route 53 answers with now (`unknown` \
         when neither).",
    )
    .output(
        "unreachable",
        ValueType::List,
        "What could not be read, and why.",
    );
    reg.register(FailoverStep::boxed(spec, backend, run));
}

/// This environment's resource of `kind` named `name` in `region`; `Ok(None)` when missing,
/// and the reason in `gaps` when the region cannot be reached.
async fn find(
    fx: &Fx,
    gaps: &mut Vec<String>,
    region: &str,
    kind: Kind,
    name: &str,
) -> Result<Option<Resource>, StepError> {
    match fx
        .backend
        .find(&crate::backend::Identity::new(kind, region, name))
        .await
    {
        Ok(r) => Ok(r),
        Err(e) if unreachable(&e) => {
            gaps.push(format!("{kind} {name} ({region}): {}", e.message));
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// The name provision gives the Route 53 health check of `side` (`primary` or `standby`).
pub(crate) fn health_check_name(env_suffix: &str, side: &str) -> String {
    format!("health-check-{side}-{env_suffix}")
}

/// What drflow probes to see the primary as Route 53 sees it: the endpoint, path and search
/// string of the primary's health check (`health_check`, as provision created it), so drflow's
/// probe and Route 53's checkers judge the same answer. Used by `dr.discover` (its `probe_url`
/// and `search_string`) and by [`crate::watch::ProbeWatcher`].
pub(crate) fn probe_target(health_check: &Resource) -> ProbeTarget {
    let spec_str = |k: &str| {
        health_check
            .spec
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let search = spec_str("search_string");
    ProbeTarget {
        url: format!(
            "https://{}{}",
            spec_str("fully_qualified_domain_name"),
            spec_str("resource_path")
        ),
        search_string: (!search.is_empty()).then_some(search),
    }
}

fn missing(what: &str, name: &str) -> StepError {
    StepError::permanent(
        "not_found",
        format!(
            "{what} `{name}` does not exist: is the environment provisioned with these \
             parameters? hint: run runbooks/provision.yaml with the same --params-file first"
        ),
    )
}

fn run<'a>(fx: &'a Fx, p: &'a Outputs) -> BodyFuture<'a> {
    Box::pin(async move {
        let suffix = string(p, "env_suffix")?;
        let primary = string(p, "primary_region")?;
        let standby = string(p, "standby_region")?;
        let domain = string(p, "domain_name")?.trim_end_matches('.');
        let metrics = string(p, "health_metrics_region")?;
        let name = |ty: &str| format!("{ty}-{suffix}");
        let mut gaps = Vec::new();

        let global = name("aurora-global");
        let found = find(fx, &mut gaps, GLOBAL, Kind::GlobalCluster, &global).await?;
        let global_id = found
            .map(|g| g.id)
            .ok_or_else(|| missing("global cluster", &global))?;

        let mut hc = Vec::new();
        for side in ["primary", "standby"] {
            let n = health_check_name(suffix, side);
            let r = find(fx, &mut gaps, GLOBAL, Kind::HealthCheck, &n)
                .await?
                .ok_or_else(|| missing("health check", &n))?;
            hc.push(r);
        }
        let probe = probe_target(&hc[0]);

        let zone = find(fx, &mut gaps, GLOBAL, Kind::HostedZone, domain)
            .await?
            .ok_or_else(|| missing("hosted zone", domain))?;
        let record = format!("api.{domain}");
        let sets = fx
            .backend
            .list_resource_record_sets(&zone.id, &record)
            .await?;
        let set = |id: &str| {
            sets.iter()
                .find(|s| s.set_identifier.as_deref() == Some(id))
        };
        let (Some(p_set), Some(s_set)) = (set("primary"), set("standby")) else {
            return Err(missing("record set primary/standby of", &record));
        };
        let policy = if p_set.failover.is_some() {
            "failover"
        } else {
            "weighted"
        };
        let p_alb = p_set.alias_dns_name.clone().unwrap_or_default();
        let s_alb = s_set.alias_dns_name.clone().unwrap_or_default();
        let serving = match fx.backend.test_dns_answer(&zone.id, &record, "A").await {
            Ok(a) if a.record_data.iter().any(|d| same_host(d, &s_alb)) => "standby",
            Ok(a) if a.record_data.iter().any(|d| same_host(d, &p_alb)) => "primary",
            Ok(_) => "unknown",
            Err(e) if unreachable(&e) => {
                gaps.push(format!("DNS answer for {record}: {}", e.message));
                "unknown"
            }
            Err(e) => return Err(e.into()),
        };

        let asg = name("asg");
        let mut tgs = Vec::new();
        let mut capacity = Vec::new();
        let mut topics = Vec::new();
        for region in [primary, standby] {
            let tg = find(fx, &mut gaps, region, Kind::TargetGroup, &name("tg")).await?;
            tgs.push(tg.map(|t| t.arn).unwrap_or_default());
            let cap = match fx.backend.describe_auto_scaling_group(region, &asg).await {
                Ok(g) => g.desired_capacity,
                Err(e) if unreachable(&e) => {
                    gaps.push(format!("autoscaling_group {asg} ({region}): {}", e.message));
                    0
                }
                Err(e) => return Err(e.into()),
            };
            capacity.push(cap);
            if let Some(t) = find(fx, &mut gaps, region, Kind::SnsTopic, &name("sns-topic")).await?
            {
                topics.push(t.arn);
            }
        }
        if tgs[1].is_empty() {
            return Err(missing("target group", &name("tg")));
        }
        let alarms = json!([
            {"region": metrics, "name": name("health-check-alarm-primary")},
            {"region": metrics, "name": name("regional-outage-alarm")},
            {"region": primary, "name": name("unhealthy-hosts-alarm")},
        ]);

        let mut out = Outputs::new();
        out.insert("global_cluster_id".into(), json!(global_id));
        out.insert("hosted_zone_id".into(), json!(zone.id));
        out.insert("record_name".into(), json!(record));
        out.insert("routing_policy".into(), json!(policy));
        out.insert("primary_set_identifier".into(), json!("primary"));
        out.insert("standby_set_identifier".into(), json!("standby"));
        out.insert("primary_alb_dns_name".into(), json!(p_alb));
        out.insert("standby_alb_dns_name".into(), json!(s_alb));
        out.insert("primary_health_check_id".into(), json!(hc[0].id));
        out.insert("standby_health_check_id".into(), json!(hc[1].id));
        out.insert("probe_url".into(), json!(probe.url));
        out.insert(
            "search_string".into(),
            json!(probe.search_string.unwrap_or_default()),
        );
        out.insert("asg_name".into(), json!(asg));
        out.insert("primary_target_group_arn".into(), json!(tgs[0]));
        out.insert("standby_target_group_arn".into(), json!(tgs[1]));
        out.insert("primary_capacity".into(), json!(capacity[0]));
        out.insert("standby_capacity".into(), json!(capacity[1]));
        out.insert("topic_arns".into(), json!(topics));
        out.insert("alarms".into(), alarms);
        out.insert("serving_region".into(), json!(serving));
        out.insert("unreachable".into(), json!(gaps));
        Ok(out)
    })
}
