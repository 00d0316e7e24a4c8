//! Whole-environment steps: `dr.readiness` (is the standby able to take over?) and
//! `cloud.teardown` (the destroy runbook: remove everything of one environment).

use std::collections::BTreeMap;
use std::sync::Arc;

use drflow_engine::{Outputs, Registry, StepError, ValueType};
use serde_json::{Value, json};

use super::checks::CloudSpec;
use super::framework::{
    BodyFuture, CloudStep, Cx, DELETE_TIMEOUT, MANAGED_BY, SUFFIX_TAG, SUPERSEDED_TAG, cloud_spec,
};
use super::input;
use crate::backend::{ErrorKind, GLOBAL, Identity, Kind, Resource, ResourceState};
use crate::regions::AWS_REGION;
use crate::target::LazyBackend;

pub(crate) fn register(reg: &mut Registry, backend: &Arc<LazyBackend>) {
    let ready = cloud_spec(
        "dr.readiness",
        "Reads the environment back and says whether the standby could take over now: global \
         database with an available secondary, standby capacity and load balancer, health \
         checks at 10 s / 3 failures on both regions, both DNS records, notifications in both \
         regions, the lag alarm and the daemon's queue (`ready`); and whether both regions \
         serve yet (`serving`: right after a provision their instances are still launching, \
         and a failover would hold). Changes nothing.",
    )
    .required("primary_region", ValueType::String, "Primary region.")
    .format(AWS_REGION)
    .required("standby_region", ValueType::String, "Standby region.")
    .format(AWS_REGION)
    .distinct_regions("primary_region", "standby_region")
    .output("ready", ValueType::Bool, "Whether every check passed.")
    .output(
        "serving",
        ValueType::Bool,
        "Whether both regions serve now: an instance in service and Route 53 seeing the \
         endpoint healthy (not yet right after a provision; `ready` is about the configuration).",
    )
    .output(
        "summary",
        ValueType::String,
        "One line for people: what fails, or what does not serve yet and how long to wait.",
    )
    .output(
        "checks",
        ValueType::Map,
        "Each check and whether it passed.",
    );
    // Reads only: it builds no name.
    reg.register(CloudStep::boxed(ready, &[], backend, run_readiness));

    let mut teardown = cloud_spec(
        "cloud.teardown",
        "Deletes every resource tagged ManagedBy=drflow and EnvironmentSuffix=<suffix> in the \
         given regions and the global ones, dependents first (reverse dependency order, retried \
         until nothing is left). Fails if anything remains.",
    )
    .required(
        "regions",
        ValueType::List,
        "Regions to clean (global resources always are).",
    )
    .format(AWS_REGION)
    .optional(
        "max_passes",
        ValueType::Int,
        json!(10),
        "Passes over what is left before giving up.",
    )
    .at_least(1.0)
    .output(
        "deleted",
        ValueType::Int,
        "How many resources were deleted.",
    )
    .output(
        "remaining",
        ValueType::List,
        "What could not be deleted (empty on success).",
    );
    teardown.has_undo = false;
    let teardown = teardown.destructive();
    reg.register(CloudStep::boxed(teardown, &[], backend, run_teardown));

    let mut superseded = cloud_spec(
        "cloud.delete_superseded",
        "Deletes what drift repair replaced but could not delete at once because something still \
         used it (a health check the DNS records pointed at): every resource of the environment \
         tagged drflow:superseded, dependents first. Runs after every step that may repoint to \
         a replacement. Reports `deleted`, or `unchanged` when there was nothing to delete.",
    )
    .required(
        "regions",
        ValueType::List,
        "Regions to look in (global resources always are).",
    )
    .format(AWS_REGION)
    .optional(
        "max_passes",
        ValueType::Int,
        json!(3),
        "Passes over what is left before giving up.",
    )
    .at_least(1.0)
    .output(
        "deleted",
        ValueType::Int,
        "How many superseded resources were deleted.",
    )
    .output(
        "remaining",
        ValueType::List,
        "Superseded resources still in use by something drflow does not manage (left for a \
         later run, with a warning).",
    );
    superseded.has_undo = false;
    reg.register(CloudStep::boxed(
        superseded,
        &[],
        backend,
        run_delete_superseded,
    ));
}

/// This environment's resource `<ty>-<suffix>`: one of another environment's under that name
/// does not count.
async fn get(cx: &Cx, region: &str, kind: Kind, ty: &str) -> Result<Option<Resource>, StepError> {
    let found = cx
        .backend
        .find(&Identity::new(kind, region, cx.name(ty)))
        .await?;
    Ok(found.filter(|r| cx.foreign(r).is_none()))
}

fn usable(r: &Option<Resource>) -> bool {
    r.as_ref()
        .is_some_and(|r| matches!(r.state, ResourceState::Available | ResourceState::Modifying))
}

fn spec_i64(r: &Option<Resource>, key: &str) -> i64 {
    r.as_ref()
        .and_then(|r| r.spec.get(key))
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

fn run_readiness<'a>(cx: &'a mut Cx, p: &'a Outputs) -> BodyFuture<'a> {
    Box::pin(async move {
        let primary = input::str(p, "primary_region")?;
        let standby = input::str(p, "standby_region")?;
        let mut checks = BTreeMap::new();

        let global = get(cx, GLOBAL, Kind::GlobalCluster, "aurora-global").await?;
        checks.insert("global_database", global.is_some());
        let writer = get(cx, primary, Kind::DbCluster, "aurora-cluster").await?;
        let secondary = get(cx, standby, Kind::DbCluster, "aurora-cluster").await?;
        let attached = |c: &Option<Resource>| {
            c.as_ref()
                .and_then(|c| c.spec.get("global_cluster_identifier"))
                == global.as_ref().map(|g| json!(g.id)).as_ref()
        };
        checks.insert(
            "primary_cluster_available",
            usable(&writer) && attached(&writer),
        );
        checks.insert(
            "secondary_cluster_available",
            usable(&secondary) && attached(&secondary),
        );
        let reader = get(cx, standby, Kind::DbInstance, "aurora-instance-1").await?;
        checks.insert("secondary_instance_available", usable(&reader));
        let asg = get(cx, standby, Kind::AutoScalingGroup, "asg").await?;
        checks.insert("standby_capacity", spec_i64(&asg, "desired_capacity") >= 1);
        let alb = get(cx, standby, Kind::LoadBalancer, "alb").await?;
        checks.insert("standby_load_balancer", usable(&alb));
        let mut hc_ok = true;
        let mut hc_ids = Vec::new();
        for side in ["primary", "standby"] {
            let hc = get(
                cx,
                GLOBAL,
                Kind::HealthCheck,
                &format!("health-check-{side}"),
            )
            .await?;
            hc_ok &=
                spec_i64(&hc, "request_interval") == 10 && spec_i64(&hc, "failure_threshold") == 3;
            hc_ids.push(hc.map(|h| h.id));
        }
        checks.insert("health_checks_10s_x3", hc_ok);
        // Records carry no tags: they are this environment's through its zones.
        let mut records = Vec::new();
        for zone in cx.backend.list(GLOBAL, Kind::HostedZone, None).await? {
            if cx.foreign(&zone).is_none() && zone.tags.get(SUFFIX_TAG) == Some(&cx.suffix) {
                records.extend(
                    cx.backend
                        .list(GLOBAL, Kind::DnsRecord, Some(&zone.id))
                        .await?,
                );
            }
        }
        let sets: Vec<&str> = records
            .iter()
            .filter_map(|r| r.spec.get("set_identifier").and_then(Value::as_str))
            .collect();
        checks.insert(
            "dns_records",
            sets.contains(&"primary") && sets.contains(&"standby"),
        );
        let t1 = get(cx, primary, Kind::SnsTopic, "sns-topic").await?;
        let t2 = get(cx, standby, Kind::SnsTopic, "sns-topic").await?;
        checks.insert("notifications_both_regions", t1.is_some() && t2.is_some());
        let lag = get(cx, standby, Kind::MetricAlarm, "replication-lag-alarm").await?;
        checks.insert("replication_lag_alarm", lag.is_some());
        let queue = get(cx, standby, Kind::SqsQueue, "alarm-events").await?;
        checks.insert("daemon_queue", queue.is_some());
        let table = get(cx, standby, Kind::DynamoTable, "trading-sessions").await?;
        checks.insert("session_table_replica", usable(&table));

        let failed: Vec<&str> = checks
            .iter()
            .filter(|(_, ok)| !**ok)
            .map(|(k, _)| *k)
            .collect();
        let ready = failed.is_empty();
        // Configured is not serving: right after a provision the instances are still launching
        // and the application has processed no quote, so a failover would hold (dr.decide).
        let mut idle = Vec::new();
        for (region, hc) in [(primary, &hc_ids[0]), (standby, &hc_ids[1])] {
            if let Some(why) = not_serving(cx, region, hc.as_deref()).await {
                idle.push(format!("{region}: {why}"));
            }
        }
        let serving = idle.is_empty();
        let summary = if ready && serving {
            format!(
                "ready: all {} checks pass; {standby} can take over from {primary}",
                checks.len()
            )
        } else if ready {
            format!(
                "ready once serving: all {} checks pass, but {} ({}), so a failover now would \
                 hold. New instances serve within about 5 minutes of provisioning: wait, then \
                 check with `drflow sim status` (on the simulated cloud, `drflow sim advance 5m` \
                 moves its time on)",
                checks.len(),
                if idle.len() == 1 {
                    "one region does not serve yet"
                } else {
                    "neither region serves yet"
                },
                idle.join("; ")
            )
        } else {
            format!(
                "NOT ready: {} of {} checks fail: {}",
                failed.len(),
                checks.len(),
                failed.join(", ")
            )
        };
        let mut out = Outputs::new();
        out.insert("ready".into(), json!(ready));
        out.insert("serving".into(), json!(serving));
        out.insert("summary".into(), json!(summary));
        out.insert("checks".into(), json!(checks));
        Ok(out)
    })
}

/// Why `region` does not serve yet (no instance in service and some launching, else Route 53
/// seeing its endpoint unhealthy), or `None` when it serves or cannot be read: a reading that
/// fails says nothing of whether it serves.
async fn not_serving(cx: &Cx, region: &str, hc_id: Option<&str>) -> Option<String> {
    if let Ok(g) = cx
        .backend
        .describe_auto_scaling_group(region, &cx.name("asg"))
        .await
        && g.in_service == 0
    {
        // Route 53 reports a new check healthy until its checkers say otherwise: while nothing
        // is in service, what it says depends on when it is asked, the group does not.
        return Some(format!(
            "no instance in service yet, {} launching",
            g.pending
        ));
    }
    let id = hc_id?;
    let s = cx.backend.get_health_check_status(id).await.ok()?;
    (s.healthy == s.inverted).then(|| {
        format!(
            "in service, but {} of {} Route 53 checkers see it healthy",
            s.checkers_healthy, s.checkers
        )
    })
}

fn run_teardown<'a>(cx: &'a mut Cx, p: &'a Outputs) -> BodyFuture<'a> {
    Box::pin(async move {
        // An environment with resources in regions the destroy was not given (its provision
        // had other regions than these parameters say) would be half deleted: its global and
        // shared-region resources gone, the rest left, and the stuck ones blamed on "something
        // drflow does not manage". Refuse before deleting anything.
        let elsewhere = regions_elsewhere(cx, p).await?;
        if !elsewhere.is_empty() {
            let mut given = input::strings(p, "regions")?;
            given.sort();
            given.dedup();
            return Err(StepError::invalid_input(format!(
                "environment `{}` has resources in {}, which this destroy does not cover (it was \
                 given {}); nothing was deleted. Run it with the parameters the environment was \
                 provisioned with (the same --params-file, or -p primary_region=… \
                 -p standby_region=…)",
                cx.suffix,
                elsewhere.join(", "),
                given.join(", "),
            )));
        }
        let (deleted, remaining) = delete_where(cx, p, |_| true).await?;
        if !remaining.is_empty() {
            return Err(StepError::retryable(
                "dependency_violation",
                format!(
                    "deleted {deleted} resource(s) but {} remain, still used by something drflow does not manage: {}",
                    remaining.len(),
                    remaining.join(", ")
                ),
            ));
        }
        let mut out = Outputs::new();
        out.insert("deleted".into(), json!(deleted));
        out.insert("remaining".into(), json!([]));
        Ok(out)
    })
}

fn run_delete_superseded<'a>(cx: &'a mut Cx, p: &'a Outputs) -> BodyFuture<'a> {
    Box::pin(async move {
        let (deleted, remaining) =
            delete_where(cx, p, |r| r.tags.contains_key(SUPERSEDED_TAG)).await?;
        if !remaining.is_empty() {
            tracing::warn!(
                remaining = %remaining.join(", "),
                "Superseded resources are still in use by something drflow does not manage; \
                 a later provision deletes them once they are free"
            );
        }
        let mut out = Outputs::new();
        out.insert("deleted".into(), json!(deleted));
        out.insert("remaining".into(), json!(remaining));
        Ok(out)
    })
}

/// Deletes every resource of the environment (tagged ManagedBy=drflow and the suffix) in the
/// `regions` input and the global ones that `keep` selects: dependents first, in passes until
/// nothing is left or a pass makes no progress. Returns how many were deleted and what could
/// not be (still in use).
/// The regions outside the step's `regions` that hold resources of this environment (by its
/// tags), in table order.
async fn regions_elsewhere(cx: &mut Cx, p: &Outputs) -> Result<Vec<String>, StepError> {
    let given = input::strings(p, "regions")?;
    let mut out = Vec::new();
    for region in crate::regions::all().filter(|r| !given.iter().any(|g| g == r)) {
        let mut found = false;
        for kind in Kind::ALL
            .iter()
            .filter(|k| k.taggable() && !k.is_global() && k.parent_kind().is_none())
        {
            found |= cx
                .backend
                .list(region, *kind, None)
                .await?
                .iter()
                .any(|r| mine(cx, r));
            if found {
                break;
            }
        }
        if found {
            out.push(region.to_string());
        }
    }
    Ok(out)
}

async fn delete_where(
    cx: &mut Cx,
    p: &Outputs,
    keep: impl Fn(&Resource) -> bool,
) -> Result<(i64, Vec<String>), StepError> {
    let mut regions = vec![GLOBAL.to_string()];
    for r in input::strings(p, "regions")? {
        if !regions.contains(&r) {
            regions.push(r);
        }
    }
    let passes = input::int(p, "max_passes")?.max(1);
    let mut deleted = 0i64;
    let mut remaining: Vec<Resource> = Vec::new();
    for _ in 0..passes {
        let mut listed: Vec<Resource> = Vec::new();
        for region in &regions {
            listed.extend(environment(cx, region).await?);
        }
        // Cross-region dependencies of equal rank (a replica bucket, a table replica) may be
        // met out of order; the next pass picks them up.
        let mut mine: Vec<(usize, Resource)> =
            listed.into_iter().filter(|r| keep(r)).enumerate().collect();
        // Dependents first: higher kind rank, then newer before older within a rank.
        mine.sort_by(|(ia, a), (ib, b)| b.kind.rank().cmp(&a.kind.rank()).then(ib.cmp(ia)));
        remaining.clear();
        let mut progress = false;
        for (_, r) in mine {
            match cx.backend.delete(&r).await {
                Ok(()) => {
                    // What it lived in (a subnet a NAT gateway, a VPC its subnets) can only go
                    // once it is gone, not while it is `deleting`.
                    cx.backend.wait_deleted(&r, DELETE_TIMEOUT).await?;
                    deleted += 1;
                    progress = true;
                    cx.note_deleted(&r);
                }
                Err(e) if e.kind == ErrorKind::NotFound => {}
                Err(e) if e.kind == ErrorKind::DependencyViolation => remaining.push(r),
                Err(e) => return Err(e.into()),
            }
        }
        if remaining.is_empty() || !progress {
            break;
        }
    }
    Ok((
        deleted,
        remaining
            .iter()
            .map(|r| format!("{} {} ({})", r.kind, r.name, r.region))
            .collect(),
    ))
}

/// Whether a taggable resource is this environment's: tagged `ManagedBy=drflow` and its suffix.
fn mine(cx: &Cx, r: &Resource) -> bool {
    r.tags.get(MANAGED_BY.0).map(String::as_str) == Some(MANAGED_BY.1)
        && r.tags.get(SUFFIX_TAG) == Some(&cx.suffix)
}

/// Every resource of the environment in `region` (or [`GLOBAL`]), parents before children: the
/// taggable ones by their tags; the untaggable ones through drflow's parents (every record of
/// its hosted zones but the apex SOA and NS, the routes of its route tables, the subscriptions
/// of its topics, the policies of its groups, the listeners of its load balancers) or by their
/// name (the KMS alias of its keys, its dashboard and global cluster).
async fn environment(cx: &Cx, region: &str) -> Result<Vec<Resource>, StepError> {
    let global = region == GLOBAL;
    let mut out: Vec<Resource> = Vec::new();
    for &kind in Kind::ALL.iter().filter(|k| k.is_global() == global) {
        if let Some(parent_kind) = kind.parent_kind() {
            let parents: Vec<Resource> = out
                .iter()
                .filter(|p| p.kind == parent_kind)
                .cloned()
                .collect();
            for parent in parents {
                let children = cx.backend.list(region, kind, Some(&parent.id)).await?;
                out.extend(
                    children
                        .into_iter()
                        .filter(|c| !(kind == Kind::DnsRecord && apex_record(&parent, c))),
                );
            }
        } else if kind.taggable() {
            let all = cx.backend.list(region, kind, None).await?;
            out.extend(all.into_iter().filter(|r| mine(cx, r)));
        } else {
            let named: Vec<String> = match kind {
                Kind::KmsAlias => vec![format!("alias/kms-key-{}", cx.suffix)],
                Kind::Dashboard => vec![cx.name("failover-dashboard")],
                Kind::GlobalCluster => vec![cx.name("aurora-global")],
                _ => Vec::new(),
            };
            let keys: Vec<String> = out
                .iter()
                .filter(|k| k.kind == Kind::KmsKey)
                .map(|k| k.id.clone())
                .collect();
            let all = cx.backend.list(region, kind, None).await?;
            out.extend(all.into_iter().filter(|r| {
                cx.foreign(r).is_none()
                    && (named.contains(&r.name)
                        || (kind == Kind::KmsAlias
                            && r.spec
                                .get("target_key_id")
                                .and_then(Value::as_str)
                                .is_some_and(|k| keys.iter().any(|x| x == k))))
            }));
        }
    }
    Ok(out)
}

/// Whether `record` is one Route 53 made with the zone (its apex SOA or NS), which goes with the
/// zone and cannot be deleted on its own.
fn apex_record(zone: &Resource, record: &Resource) -> bool {
    let Some((fqdn, rest)) = record.name.split_once(' ') else {
        return false;
    };
    let ty = rest.split(' ').next().unwrap_or_default();
    matches!(ty, "SOA" | "NS")
        && fqdn
            .trim_end_matches('.')
            .eq_ignore_ascii_case(zone.name.trim_end_matches('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_apex_records_go_with_their_zone() {
        let r = |kind: Kind, name: &str| Resource {
            kind,
            region: GLOBAL.into(),
            name: name.into(),
            parent: None,
            id: "x".into(),
            arn: String::new(),
            spec: json!({}),
            attrs: Default::default(),
            tags: Default::default(),
            state: ResourceState::Available,
            depends_on: vec![],
        };
        let zone = r(Kind::HostedZone, "example.com");
        assert!(apex_record(&zone, &r(Kind::DnsRecord, "example.com. NS")));
        assert!(apex_record(&zone, &r(Kind::DnsRecord, "example.com. SOA")));
        assert!(!apex_record(
            &zone,
            &r(Kind::DnsRecord, "api.example.com. NS")
        ));
        assert!(!apex_record(
            &zone,
            &r(Kind::DnsRecord, "example.com. A primary")
        ));
    }
}
