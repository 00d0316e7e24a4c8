//! The route53 kinds on AWS: `hosted_zone`, `dns_record` and `health_check`. Route 53 is global:
//! every call goes to the global clients, and every resource's region is
//! [`GLOBAL`](crate::backend::GLOBAL).
//!
//! | kind | found by | id | tags |
//! |---|---|---|---|
//! | `hosted_zone` | its domain (`ListHostedZonesByName`) | the zone id without `/hostedzone/` | `ListTagsForResource` / `ChangeTagsForResource` |
//! | `dns_record` | parent zone id and `<fqdn>. <TYPE>[ <SetIdentifier>]` (`ListResourceRecordSets`) | that name | none: records cannot be tagged |
//! | `health_check` | its `Name` tag (`ListHealthChecks` + `ListTagsForResources`) | the health check id | `ChangeTagsForResource` |
//!
//! A record's spec names what drflow writes: `routing_policy` is `weighted` or `failover` from
//! the fields present; an alias target's DNS name loses the final dot AWS adds. A hosted zone's
//! `force_destroy` is drflow's, never AWS's: `find` omits it.

use aws_sdk_route53::types::{
    AliasTarget, Change, ChangeAction, ChangeBatch, HealthCheck, HealthCheckConfig,
    HealthCheckType, HostedZone, HostedZoneConfig, ResourceRecord, ResourceRecordSet,
    ResourceRecordSetFailover, RrType, Tag, TagResourceType,
};
use serde_json::{Map, Value, json};

use super::elbv2::{
    applied, b, i, managed, no_parent, none_if_missing, s, strs, tags_to_add, top_keys, wrong_kind,
};
use super::{Call, Clients};
use crate::backend::{
    CloudError, CreateRequest, ErrorKind, GLOBAL, Identity, Kind, Resource, ResourceState, Tags,
    UpdateRequest,
};

const SVC: &str = "route53";
/// Where Route 53 calls go (and what their log lines and errors name).
const GLOBAL_REGION: &str = super::clients::GLOBAL_SERVICE_REGION;

pub(super) async fn find(c: &Clients, id: &Identity) -> Result<Option<Resource>, CloudError> {
    match id.kind {
        Kind::HostedZone => {
            let Some(zone) = zone_by_name(c, &id.name).await? else {
                return Ok(None);
            };
            Ok(Some(zone_resource(c, &zone).await?))
        }
        Kind::DnsRecord => {
            let Some(zone) = id.parent.as_deref() else {
                return Err(no_parent(id.kind));
            };
            let Some(records) = records_of(c, zone).await? else {
                return Ok(None);
            };
            // Names compare without case (DNS does); the type is upper case on both sides.
            Ok(records
                .iter()
                .find(|r| record_name(r).eq_ignore_ascii_case(&id.name))
                .map(|r| record_resource(zone, r)))
        }
        Kind::HealthCheck => Ok(health_checks(c, Some(&id.name)).await?.into_iter().next()),
        other => Err(wrong_kind(other)),
    }
}

pub(super) async fn list(
    c: &Clients,
    _region: &str,
    kind: Kind,
    parent: Option<&str>,
) -> Result<Vec<Resource>, CloudError> {
    match kind {
        Kind::HostedZone => {
            let rc = c.global().await;
            let mut zones = Vec::new();
            let mut marker: Option<String> = None;
            loop {
                let page = c
                    .call(
                        Call::new(GLOBAL_REGION, SVC, "ListHostedZones"),
                        rc.route53
                            .list_hosted_zones()
                            .set_marker(marker.clone())
                            .send(),
                    )
                    .await?;
                zones.extend(page.hosted_zones().iter().cloned());
                marker = page.next_marker().map(str::to_string);
                if !page.is_truncated() || marker.is_none() {
                    break;
                }
            }
            let ids: Vec<String> = zones.iter().map(|z| bare_id(z.id())).collect();
            let tags = tags_of_many(c, TagResourceType::Hostedzone, &ids).await?;
            let mut out = Vec::new();
            for z in &zones {
                let t = tags.get(&bare_id(z.id())).cloned().unwrap_or_default();
                if managed(&t) {
                    out.push(zone_resource(c, z).await?);
                }
            }
            Ok(out)
        }
        Kind::DnsRecord => {
            let Some(zone) = parent else {
                return Err(no_parent(kind));
            };
            let records = records_of(c, zone).await?.unwrap_or_default();
            // The apex SOA and NS records come with the zone and go with it.
            let apex: Vec<&str> = records
                .iter()
                .filter(|r| r.r#type() == &RrType::Soa)
                .map(|r| r.name())
                .collect();
            Ok(records
                .iter()
                .filter(|r| {
                    !(r.r#type() == &RrType::Soa
                        || (r.r#type() == &RrType::Ns && apex.contains(&r.name())))
                })
                .map(|r| record_resource(zone, r))
                .collect())
        }
        Kind::HealthCheck => Ok(health_checks(c, None)
            .await?
            .into_iter()
            .filter(|r| managed(&r.tags))
            .collect()),
        other => Err(wrong_kind(other)),
    }
}

pub(super) async fn create(c: &Clients, req: &CreateRequest) -> Result<Resource, CloudError> {
    let rc = c.global().await;
    let spec = &req.spec;
    match req.kind {
        Kind::HostedZone => {
            // AWS lets two zones share a domain; drflow never wants that, so a zone that exists
            // is a conflict.
            if zone_by_name(c, &req.name).await?.is_some() {
                return Err(CloudError::new(
                    ErrorKind::Conflict,
                    format!("a hosted zone for {} exists already", req.name),
                ));
            }
            let domain = s(spec, "name")
                .map(str::to_string)
                .unwrap_or_else(|| format!("{}.", req.name.trim_end_matches('.')));
            let out = c
                .call(
                    Call::new(GLOBAL_REGION, SVC, "CreateHostedZone"),
                    rc.route53
                        .create_hosted_zone()
                        .name(&domain)
                        .caller_reference(caller_reference(&req.name))
                        .hosted_zone_config(
                            HostedZoneConfig::builder()
                                .set_comment(s(spec, "comment").map(str::to_string))
                                .set_private_zone(b(spec, "private_zone"))
                                .build(),
                        )
                        .send(),
                )
                .await?;
            let zone = out
                .hosted_zone()
                .ok_or_else(|| super::elbv2::empty_answer(GLOBAL, "CreateHostedZone"))?;
            let id = bare_id(zone.id());
            add_tags(c, TagResourceType::Hostedzone, &id, &req.tags).await?;
            let ns: Vec<&str> = out
                .delegation_set()
                .map(|d| d.name_servers().iter().map(String::as_str).collect())
                .unwrap_or_default();
            let mut r = zone_base(zone, req.tags.clone());
            r.attrs.insert("name_servers".into(), json!(ns));
            Ok(r)
        }
        Kind::DnsRecord => {
            let zone = req
                .parent
                .clone()
                .or_else(|| s(spec, "hosted_zone_id").map(str::to_string))
                .ok_or_else(|| no_parent(req.kind))?;
            let set = record_set(spec)?;
            match change(c, &zone, ChangeAction::Create, set).await {
                Err(e) if e.message.contains("already exists") => {
                    return Err(CloudError::new(ErrorKind::Conflict, e.message));
                }
                other => other?,
            }
            let mut spec = spec.clone();
            spec["hosted_zone_id"] = json!(zone);
            let name = record_identity(&spec);
            Ok(Resource {
                kind: req.kind,
                region: GLOBAL.to_string(),
                id: name.clone(),
                name,
                parent: Some(zone),
                arn: String::new(),
                spec,
                attrs: Map::new(),
                tags: Tags::new(),
                state: ResourceState::Available,
                depends_on: req.depends_on.clone(),
            })
        }
        Kind::HealthCheck => {
            let out = c
                .call(
                    Call::new(GLOBAL_REGION, SVC, "CreateHealthCheck"),
                    rc.route53
                        .create_health_check()
                        .caller_reference(caller_reference(&req.name))
                        .health_check_config(health_check_config(spec)?)
                        .send(),
                )
                .await?;
            let hc = out
                .health_check()
                .ok_or_else(|| super::elbv2::empty_answer(GLOBAL, "CreateHealthCheck"))?;
            add_tags(c, TagResourceType::Healthcheck, hc.id(), &req.tags).await?;
            let mut r = health_check_resource(hc, req.tags.clone());
            r.depends_on = req.depends_on.clone();
            Ok(r)
        }
        other => Err(wrong_kind(other)),
    }
}

pub(super) async fn update(
    c: &Clients,
    current: &Resource,
    req: &UpdateRequest,
) -> Result<Resource, CloudError> {
    let rc = c.global().await;
    let spec = &req.spec;
    let drifted = top_keys(&req.drifted);
    let has = |k: &str| drifted.contains(&k);
    let tag_type = match current.kind {
        Kind::HostedZone => {
            if has("comment") {
                c.call(
                    Call::new(GLOBAL_REGION, SVC, "UpdateHostedZoneComment"),
                    rc.route53
                        .update_hosted_zone_comment()
                        .id(&current.id)
                        .set_comment(s(spec, "comment").map(str::to_string))
                        .send(),
                )
                .await?;
            }
            Some(TagResourceType::Hostedzone)
        }
        Kind::DnsRecord => {
            if !drifted.is_empty() {
                let zone = current
                    .parent
                    .clone()
                    .ok_or_else(|| no_parent(current.kind))?;
                // UPSERT replaces the record with the whole desired set.
                let mut desired = spec.clone();
                for k in ["name", "type", "set_identifier"] {
                    if desired.get(k).is_none()
                        && let Some(v) = current.spec.get(k)
                    {
                        desired[k] = v.clone();
                    }
                }
                change(c, &zone, ChangeAction::Upsert, record_set(&desired)?).await?;
            }
            None
        }
        Kind::HealthCheck => {
            let fields = [
                "fully_qualified_domain_name",
                "port",
                "resource_path",
                "search_string",
                "failure_threshold",
                "enable_sni",
                "inverted",
                "disabled",
            ];
            if fields.iter().any(|k| has(k)) {
                let pick = |k: &str| spec.get(k).filter(|_| has(k));
                c.call(
                    Call::new(GLOBAL_REGION, SVC, "UpdateHealthCheck"),
                    rc.route53
                        .update_health_check()
                        .health_check_id(&current.id)
                        .set_fully_qualified_domain_name(
                            pick("fully_qualified_domain_name")
                                .and_then(Value::as_str)
                                .map(str::to_string),
                        )
                        .set_port(pick("port").and_then(Value::as_i64).map(|v| v as i32))
                        .set_resource_path(
                            pick("resource_path")
                                .and_then(Value::as_str)
                                .map(str::to_string),
                        )
                        .set_search_string(
                            pick("search_string")
                                .and_then(Value::as_str)
                                .map(str::to_string),
                        )
                        .set_failure_threshold(
                            pick("failure_threshold")
                                .and_then(Value::as_i64)
                                .map(|v| v as i32),
                        )
                        .set_enable_sni(pick("enable_sni").and_then(Value::as_bool))
                        .set_inverted(pick("inverted").and_then(Value::as_bool))
                        .set_disabled(pick("disabled").and_then(Value::as_bool))
                        .send(),
                )
                .await?;
            }
            Some(TagResourceType::Healthcheck)
        }
        other => return Err(wrong_kind(other)),
    };
    let mut r = applied(current, req);
    match tag_type {
        Some(t) => {
            let add = tags_to_add(&current.tags, &req.tags);
            add_tags(c, t, &current.id, &add).await?;
        }
        None => r.tags = Tags::new(),
    }
    Ok(r)
}

pub(super) async fn delete(c: &Clients, current: &Resource) -> Result<(), CloudError> {
    let rc = c.global().await;
    match current.kind {
        Kind::HostedZone => {
            c.call(
                Call::new(GLOBAL_REGION, SVC, "DeleteHostedZone"),
                rc.route53.delete_hosted_zone().id(&current.id).send(),
            )
            .await?;
        }
        Kind::DnsRecord => {
            let zone = current
                .parent
                .clone()
                .or_else(|| s(&current.spec, "hosted_zone_id").map(str::to_string))
                .ok_or_else(|| no_parent(current.kind))?;
            // Route 53 deletes a record only by its exact current values: those found.
            let r = change(c, &zone, ChangeAction::Delete, record_set(&current.spec)?).await;
            if let Err(e) = r {
                // Deleting a record that is gone is "not found" for the seam.
                if e.message.contains("not found") || e.message.contains("does not exist") {
                    return Err(CloudError::new(ErrorKind::NotFound, e.message));
                }
                return Err(e);
            }
        }
        Kind::HealthCheck => {
            c.call(
                Call::new(GLOBAL_REGION, SVC, "DeleteHealthCheck"),
                rc.route53
                    .delete_health_check()
                    .health_check_id(&current.id)
                    .send(),
            )
            .await?;
        }
        other => return Err(wrong_kind(other)),
    }
    Ok(())
}

// ---- hosted zones

/// `/hostedzone/Z123` → `Z123` (the same for `/change/…` and health checks).
fn bare_id(id: &str) -> String {
    id.rsplit('/').next().unwrap_or(id).to_string()
}

/// A unique caller reference (Route 53 refuses to reuse one, even after a delete).
fn caller_reference(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let mut short: String = name.chars().filter(char::is_ascii_alphanumeric).collect();
    short.truncate(80);
    format!("drflow-{short}-{nanos:x}")
}

/// The zone for a domain, if any.
async fn zone_by_name(c: &Clients, domain: &str) -> Result<Option<HostedZone>, CloudError> {
    let rc = c.global().await;
    let want = format!("{}.", domain.trim_end_matches('.').to_ascii_lowercase());
    let out = c
        .call(
            Call::new(GLOBAL_REGION, SVC, "ListHostedZonesByName"),
            rc.route53
                .list_hosted_zones_by_name()
                .dns_name(&want)
                .max_items(5)
                .send(),
        )
        .await?;
    Ok(out
        .hosted_zones()
        .iter()
        .find(|z| z.name().to_ascii_lowercase() == want)
        .cloned())
}

fn zone_base(z: &HostedZone, tags: Tags) -> Resource {
    let id = bare_id(z.id());
    let mut spec = Map::new();
    spec.insert("name".into(), json!(z.name()));
    if let Some(cfg) = z.config() {
        spec.insert("comment".into(), json!(cfg.comment().unwrap_or_default()));
        spec.insert("private_zone".into(), json!(cfg.private_zone()));
    }
    Resource {
        kind: Kind::HostedZone,
        region: GLOBAL.to_string(),
        name: z.name().trim_end_matches('.').to_string(),
        parent: None,
        arn: format!("arn:aws:route53:::hostedzone/{id}"),
        id,
        spec: Value::Object(spec),
        attrs: Map::new(),
        tags,
        state: ResourceState::Available,
        depends_on: Vec::new(),
    }
}

/// The zone with its tags and name servers.
async fn zone_resource(c: &Clients, z: &HostedZone) -> Result<Resource, CloudError> {
    let rc = c.global().await;
    let id = bare_id(z.id());
    let tags = tags_of_many(c, TagResourceType::Hostedzone, std::slice::from_ref(&id))
        .await?
        .remove(&id)
        .unwrap_or_default();
    let mut r = zone_base(z, tags);
    let out = c
        .call(
            Call::new(GLOBAL_REGION, SVC, "GetHostedZone"),
            rc.route53.get_hosted_zone().id(&id).send(),
        )
        .await?;
    let ns: Vec<&str> = out
        .delegation_set()
        .map(|d| d.name_servers().iter().map(String::as_str).collect())
        .unwrap_or_default();
    r.attrs.insert("name_servers".into(), json!(ns));
    Ok(r)
}

// ---- records

/// Every record of a zone; `None` when the zone is gone.
async fn records_of(c: &Clients, zone: &str) -> Result<Option<Vec<ResourceRecordSet>>, CloudError> {
    let rc = c.global().await;
    let mut all = Vec::new();
    let (mut name, mut ty, mut ident): (Option<String>, Option<RrType>, Option<String>) =
        (None, None, None);
    loop {
        let out = c
            .call(
                Call::new(GLOBAL_REGION, SVC, "ListResourceRecordSets"),
                rc.route53
                    .list_resource_record_sets()
                    .hosted_zone_id(zone)
                    .set_start_record_name(name.clone())
                    .set_start_record_type(ty.clone())
                    .set_start_record_identifier(ident.clone())
                    .send(),
            )
            .await;
        let Some(page) = none_if_missing(out)? else {
            return Ok(None);
        };
        all.extend(page.resource_record_sets().iter().cloned());
        if !page.is_truncated() || page.next_record_name().is_none() {
            return Ok(Some(all));
        }
        name = page.next_record_name().map(str::to_string);
        ty = page.next_record_type().cloned();
        ident = page.next_record_identifier().map(str::to_string);
    }
}

/// A record name as Route 53 returns it, decoded (`\052` is `*`) and in lower case with the
/// final dot.
fn fqdn(name: &str) -> String {
    let n = name.replace("\\052", "*").to_ascii_lowercase();
    if n.ends_with('.') { n } else { format!("{n}.") }
}

/// The record's identity name: `<fqdn>. <TYPE>[ <SetIdentifier>]`.
fn record_name(r: &ResourceRecordSet) -> String {
    let mut n = format!("{} {}", fqdn(r.name()), r.r#type().as_str());
    if let Some(id) = r.set_identifier() {
        n.push(' ');
        n.push_str(id);
    }
    n
}

/// The identity name of a record spec.
fn record_identity(spec: &Value) -> String {
    let mut n = format!(
        "{} {}",
        fqdn(s(spec, "name").unwrap_or_default()),
        s(spec, "type").unwrap_or_default()
    );
    if let Some(id) = s(spec, "set_identifier") {
        n.push(' ');
        n.push_str(id);
    }
    n
}

fn record_resource(zone: &str, r: &ResourceRecordSet) -> Resource {
    let mut spec = Map::new();
    spec.insert("hosted_zone_id".into(), json!(zone));
    spec.insert("name".into(), json!(fqdn(r.name())));
    spec.insert("type".into(), json!(r.r#type().as_str()));
    if let Some(v) = r.set_identifier() {
        spec.insert("set_identifier".into(), json!(v));
    }
    if let Some(w) = r.weight() {
        spec.insert("routing_policy".into(), json!("weighted"));
        spec.insert("weight".into(), json!(w));
    }
    if let Some(f) = r.failover() {
        spec.insert("routing_policy".into(), json!("failover"));
        spec.insert("failover".into(), json!(f.as_str()));
    }
    let mut depends_on = vec![zone.to_string()];
    if let Some(h) = r.health_check_id() {
        spec.insert("health_check_id".into(), json!(h));
        depends_on.push(h.to_string());
    }
    if let Some(t) = r.ttl() {
        spec.insert("ttl".into(), json!(t));
    }
    if !r.resource_records().is_empty() {
        let values: Vec<&str> = r.resource_records().iter().map(|v| v.value()).collect();
        spec.insert("records".into(), json!(values));
    }
    if let Some(a) = r.alias_target() {
        spec.insert(
            "alias_target".into(),
            json!({
                "dns_name": a.dns_name().trim_end_matches('.'),
                "hosted_zone_id": a.hosted_zone_id(),
                "evaluate_target_health": a.evaluate_target_health(),
            }),
        );
    }
    let name = record_name(r);
    Resource {
        kind: Kind::DnsRecord,
        region: GLOBAL.to_string(),
        id: name.clone(),
        name,
        parent: Some(zone.to_string()),
        arn: String::new(),
        spec: Value::Object(spec),
        attrs: Map::new(),
        tags: Tags::new(),
        state: ResourceState::Available,
        depends_on,
    }
}

fn build_err(what: &str, e: impl std::fmt::Display) -> CloudError {
    CloudError::new(
        ErrorKind::InvalidInput,
        format!("the {what} cannot be sent to Route 53: {e}"),
    )
}

/// The record set a spec describes.
fn record_set(spec: &Value) -> Result<ResourceRecordSet, CloudError> {
    let mut rs = ResourceRecordSet::builder()
        .name(s(spec, "name").unwrap_or_default())
        .r#type(RrType::from(s(spec, "type").unwrap_or("A")))
        .set_set_identifier(s(spec, "set_identifier").map(str::to_string))
        .set_weight(i(spec, "weight"))
        .set_failover(s(spec, "failover").map(ResourceRecordSetFailover::from))
        .set_health_check_id(s(spec, "health_check_id").map(str::to_string))
        .set_ttl(i(spec, "ttl"));
    let values = strs(spec, "records");
    if !values.is_empty() {
        let recs = values
            .into_iter()
            .map(|v| ResourceRecord::builder().value(v).build())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| build_err("record", e))?;
        rs = rs.set_resource_records(Some(recs));
    }
    if let Some(a) = spec.get("alias_target").filter(|a| a.is_object()) {
        rs = rs.alias_target(
            AliasTarget::builder()
                .dns_name(s(a, "dns_name").unwrap_or_default())
                .hosted_zone_id(s(a, "hosted_zone_id").unwrap_or_default())
                .evaluate_target_health(b(a, "evaluate_target_health").unwrap_or(false))
                .build()
                .map_err(|e| build_err("alias target", e))?,
        );
    }
    rs.build().map_err(|e| build_err("record", e))
}

async fn change(
    c: &Clients,
    zone: &str,
    action: ChangeAction,
    set: ResourceRecordSet,
) -> Result<(), CloudError> {
    let rc = c.global().await;
    let batch = ChangeBatch::builder()
        .changes(
            Change::builder()
                .action(action)
                .resource_record_set(set)
                .build()
                .map_err(|e| build_err("change", e))?,
        )
        .build()
        .map_err(|e| build_err("change batch", e))?;
    c.call(
        Call::new(GLOBAL_REGION, SVC, "ChangeResourceRecordSets"),
        rc.route53
            .change_resource_record_sets()
            .hosted_zone_id(zone)
            .change_batch(batch)
            .send(),
    )
    .await?;
    Ok(())
}

// ---- health checks

fn health_check_config(spec: &Value) -> Result<HealthCheckConfig, CloudError> {
    HealthCheckConfig::builder()
        .r#type(HealthCheckType::from(s(spec, "type").unwrap_or("HTTPS")))
        .set_fully_qualified_domain_name(s(spec, "fully_qualified_domain_name").map(str::to_string))
        .set_ip_address(s(spec, "ip_address").map(str::to_string))
        .set_port(i(spec, "port").map(|v| v as i32))
        .set_resource_path(s(spec, "resource_path").map(str::to_string))
        .set_search_string(s(spec, "search_string").map(str::to_string))
        .set_request_interval(i(spec, "request_interval").map(|v| v as i32))
        .set_failure_threshold(i(spec, "failure_threshold").map(|v| v as i32))
        .set_enable_sni(b(spec, "enable_sni"))
        .set_measure_latency(b(spec, "measure_latency"))
        .set_inverted(b(spec, "inverted"))
        .set_disabled(b(spec, "disabled"))
        .build()
        .map_err(|e| build_err("health check", e))
}

fn health_check_resource(hc: &HealthCheck, tags: Tags) -> Resource {
    let mut spec = Map::new();
    if let Some(cfg) = hc.health_check_config() {
        spec.insert("type".into(), json!(cfg.r#type().as_str()));
        for (k, v) in [
            ("ip_address", cfg.ip_address()),
            (
                "fully_qualified_domain_name",
                cfg.fully_qualified_domain_name(),
            ),
            ("resource_path", cfg.resource_path()),
            ("search_string", cfg.search_string()),
        ] {
            if let Some(v) = v {
                spec.insert(k.into(), json!(v));
            }
        }
        for (k, v) in [
            ("port", cfg.port()),
            ("request_interval", cfg.request_interval()),
            ("failure_threshold", cfg.failure_threshold()),
        ] {
            if let Some(v) = v {
                spec.insert(k.into(), json!(v));
            }
        }
        for (k, v) in [
            ("enable_sni", cfg.enable_sni()),
            ("measure_latency", cfg.measure_latency()),
            ("inverted", cfg.inverted()),
            ("disabled", cfg.disabled()),
        ] {
            if let Some(v) = v {
                spec.insert(k.into(), json!(v));
            }
        }
    }
    Resource {
        kind: Kind::HealthCheck,
        region: GLOBAL.to_string(),
        name: tags.get("Name").cloned().unwrap_or_default(),
        parent: None,
        id: hc.id().to_string(),
        arn: format!("arn:aws:route53:::healthcheck/{}", hc.id()),
        spec: Value::Object(spec),
        attrs: Map::new(),
        tags,
        state: ResourceState::Available,
        depends_on: Vec::new(),
    }
}

/// Every health check with its tags; only those whose `Name` tag is `name` when given.
async fn health_checks(c: &Clients, name: Option<&str>) -> Result<Vec<Resource>, CloudError> {
    let rc = c.global().await;
    let mut all = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = c
            .call(
                Call::new(GLOBAL_REGION, SVC, "ListHealthChecks"),
                rc.route53
                    .list_health_checks()
                    .set_marker(marker.clone())
                    .send(),
            )
            .await?;
        all.extend(page.health_checks().iter().cloned());
        marker = page.next_marker().map(str::to_string);
        if !page.is_truncated() || marker.is_none() {
            break;
        }
    }
    let ids: Vec<String> = all.iter().map(|h| h.id().to_string()).collect();
    let tags = tags_of_many(c, TagResourceType::Healthcheck, &ids).await?;
    Ok(all
        .iter()
        .map(|h| health_check_resource(h, tags.get(h.id()).cloned().unwrap_or_default()))
        .filter(|r| name.is_none_or(|n| r.name == n))
        .collect())
}

// ---- tags

/// Tags of many zones or health checks (`ListTagsForResources` takes 10 at a time).
async fn tags_of_many(
    c: &Clients,
    ty: TagResourceType,
    ids: &[String],
) -> Result<std::collections::HashMap<String, Tags>, CloudError> {
    let rc = c.global().await;
    let mut out = std::collections::HashMap::new();
    for chunk in ids.chunks(10) {
        let res = c
            .call(
                Call::new(GLOBAL_REGION, SVC, "ListTagsForResources"),
                rc.route53
                    .list_tags_for_resources()
                    .resource_type(ty.clone())
                    .set_resource_ids(Some(chunk.to_vec()))
                    .send(),
            )
            .await?;
        for set in res.resource_tag_sets() {
            let tags: Tags = set
                .tags()
                .iter()
                .map(|t| {
                    (
                        t.key().unwrap_or_default().to_string(),
                        t.value().unwrap_or_default().to_string(),
                    )
                })
                .collect();
            out.insert(bare_id(set.resource_id().unwrap_or_default()), tags);
        }
    }
    Ok(out)
}

async fn add_tags(
    c: &Clients,
    ty: TagResourceType,
    id: &str,
    tags: &Tags,
) -> Result<(), CloudError> {
    if tags.is_empty() {
        return Ok(());
    }
    let rc = c.global().await;
    // ChangeTagsForResource takes at most 10 tags a call.
    let all: Vec<Tag> = tags
        .iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect();
    for chunk in all.chunks(10) {
        c.call(
            Call::new(GLOBAL_REGION, SVC, "ChangeTagsForResource"),
            rc.route53
                .change_tags_for_resource()
                .resource_type(ty.clone())
                .resource_id(id)
                .set_add_tags(Some(chunk.to_vec()))
                .send(),
        )
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::elbv2::test_support::{moto, tags, unique};
    use super::*;
    use crate::cloud::drift::diff_raw as diff;

    fn request(kind: Kind, name: &str, parent: Option<&str>, spec: Value) -> CreateRequest {
        CreateRequest {
            kind,
            region: GLOBAL.into(),
            name: name.into(),
            parent: parent.map(str::to_string),
            spec,
            tags: tags(name),
            depends_on: vec![],
        }
    }

    fn update_of(found: &Resource, spec: &Value) -> UpdateRequest {
        UpdateRequest {
            spec: spec.clone(),
            drifted: diff(spec, &found.spec),
            tags: found.tags.clone(),
            depends_on: vec![],
        }
    }

    fn health_check_spec(fqdn: &str) -> Value {
        json!({
            "type": "HTTPS_STR_MATCH", "fully_qualified_domain_name": fqdn, "port": 443,
            "resource_path": "/health/trading", "search_string": "\"status\":\"ok\"",
            "request_interval": 10, "failure_threshold": 3, "enable_sni": true,
            "measure_latency": true, "inverted": false, "disabled": false,
        })
    }

    #[tokio::test]
    async fn zone_health_checks_and_records_round_trip_through_moto() {
        let Some(c) = moto("route53 round trip") else {
            return;
        };
        let u = unique();

        // The zone, found by its domain; force_destroy is drflow's own and never comes back.
        let domain = format!("trading-{u}.example.com");
        let zone_spec = json!({
            "name": format!("{domain}."), "comment": "drflow: trading platform public zone",
            "private_zone": false, "force_destroy": true,
        });
        let mut req = request(Kind::HostedZone, &domain, None, zone_spec.clone());
        req.tags.insert("Name".into(), format!("hosted-zone-{u}"));
        let made = create(&c, &req).await.unwrap();
        let err = create(&c, &req).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Conflict, "{}", err.message);
        let zid = Identity::new(Kind::HostedZone, GLOBAL, &domain);
        let zone = find(&c, &zid).await.unwrap().expect("the zone");
        assert_eq!(zone.id, made.id);
        assert!(!zone.id.contains('/'));
        assert_eq!(diff(&zone_spec, &zone.spec), ["force_destroy"]);
        assert!(zone.spec.get("force_destroy").is_none());
        assert!(!zone.attrs["name_servers"].as_array().unwrap().is_empty());
        assert_eq!(zone.attrs["name_servers"], made.attrs["name_servers"]);
        assert_eq!(zone.tags, req.tags);
        let mut want = zone_spec.clone();
        want["comment"] = json!("drflow: changed");
        let mut ureq = update_of(&zone, &want);
        ureq.drifted.retain(|d| d != "force_destroy");
        assert_eq!(ureq.drifted, ["comment"]);
        ureq.tags.insert("Extra".into(), "1".into());
        update(&c, &zone, &ureq).await.unwrap();
        let zone = find(&c, &zid).await.unwrap().unwrap();
        assert_eq!(zone.spec["comment"], json!("drflow: changed"));
        assert_eq!(zone.tags.get("Extra").map(String::as_str), Some("1"));
        assert!(
            list(&c, GLOBAL, Kind::HostedZone, None)
                .await
                .unwrap()
                .iter()
                .any(|z| z.id == zone.id)
        );

        // Two health checks, found by their Name tags.
        let mut checks = Vec::new();
        for side in ["primary", "standby"] {
            let name = format!("health-check-{side}-{u}");
            let spec = health_check_spec(&format!("alb-{side}-{u}.eu-south-1.elb.amazonaws.com"));
            let made = create(&c, &request(Kind::HealthCheck, &name, None, spec.clone()))
                .await
                .unwrap();
            let hc = find(&c, &Identity::new(Kind::HealthCheck, GLOBAL, &name))
                .await
                .unwrap()
                .expect("the health check");
            assert_eq!(hc.id, made.id);
            assert!(
                diff(&spec, &hc.spec).is_empty(),
                "{:?}\n{:#}",
                diff(&spec, &hc.spec),
                hc.spec
            );
            checks.push(hc);
        }
        let hc = &checks[0];
        let mut want = hc.spec.clone();
        want["failure_threshold"] = json!(2);
        want["resource_path"] = json!("/health/deep");
        let req = update_of(hc, &want);
        let mut drifted = req.drifted.clone();
        drifted.sort();
        assert_eq!(drifted, ["failure_threshold", "resource_path"]);
        update(&c, hc, &req).await.unwrap();
        let found = find(&c, &hc.identity()).await.unwrap().unwrap();
        assert!(
            diff(&want, &found.spec).is_empty(),
            "{:?}",
            diff(&want, &found.spec)
        );
        let listed = list(&c, GLOBAL, Kind::HealthCheck, None).await.unwrap();
        assert!(checks.iter().all(|h| listed.iter().any(|l| l.id == h.id)));

        // Records: a plain CNAME, a weighted alias pair, a failover alias pair.
        let z = zone.id.clone();
        let api = format!("api.{domain}");
        let alias = |side: &str| {
            json!({"dns_name": format!("alb-{side}-{u}.eu-south-1.elb.amazonaws.com"),
                   "hosted_zone_id": "Z3ULH7SSC9OV64", "evaluate_target_health": true})
        };
        let mut specs = vec![json!({
            "hosted_zone_id": z, "name": format!("_abc.{api}."), "type": "CNAME", "ttl": 300,
            "records": ["_def.acm-validations.aws."],
        })];
        for (i, (side, weight)) in [("primary", 100), ("standby", 0)].into_iter().enumerate() {
            specs.push(json!({
                "hosted_zone_id": z, "name": format!("{api}."), "type": "A", "set_identifier": side,
                "routing_policy": "weighted", "health_check_id": checks[i].id,
                "alias_target": alias(side), "weight": weight,
            }));
            specs.push(json!({
                "hosted_zone_id": z, "name": format!("fo.{api}."), "type": "A", "set_identifier": side,
                "routing_policy": "failover", "health_check_id": checks[i].id,
                "alias_target": alias(side), "failover": if i == 0 { "PRIMARY" } else { "SECONDARY" },
            }));
        }
        for spec in &specs {
            let name = record_identity(spec);
            let made = create(&c, &request(Kind::DnsRecord, &name, Some(&z), spec.clone()))
                .await
                .unwrap();
            assert_eq!(made.name, name);
            let r = find(&c, &Identity::child(Kind::DnsRecord, GLOBAL, &z, &name))
                .await
                .unwrap()
                .expect("the record");
            assert!(
                diff(spec, &r.spec).is_empty(),
                "{:?}\n{:#}",
                diff(spec, &r.spec),
                r.spec
            );
            assert!(r.tags.is_empty());
        }
        let dup = create(
            &c,
            &request(Kind::DnsRecord, "dup", Some(&z), specs[0].clone()),
        )
        .await
        .unwrap_err();
        assert_eq!(dup.kind, ErrorKind::Conflict, "{}", dup.message);
        assert_eq!(specs[0]["name"], json!(format!("_abc.{api}.")));
        assert_eq!(record_identity(&specs[2]), format!("fo.{api}. A primary"));

        // The standby's weight moves: one UPSERT.
        let sid = Identity::child(Kind::DnsRecord, GLOBAL, &z, format!("{api}. A standby"));
        let r = find(&c, &sid).await.unwrap().unwrap();
        let mut want = specs[3].clone();
        want["weight"] = json!(50);
        let req = update_of(&r, &want);
        assert_eq!(req.drifted, ["weight"]);
        update(&c, &r, &req).await.unwrap();
        let r = find(&c, &sid).await.unwrap().unwrap();
        assert_eq!(r.spec["weight"], json!(50));

        // list is every record but the apex SOA and NS; deleting them all empties the zone.
        let records = list(&c, GLOBAL, Kind::DnsRecord, Some(&z)).await.unwrap();
        assert_eq!(
            records.len(),
            specs.len(),
            "{:?}",
            records.iter().map(|r| &r.name).collect::<Vec<_>>()
        );
        for r in &records {
            delete(&c, r).await.unwrap();
            assert!(find(&c, &r.identity()).await.unwrap().is_none());
        }
        assert!(
            list(&c, GLOBAL, Kind::DnsRecord, Some(&z))
                .await
                .unwrap()
                .is_empty()
        );
        delete(&c, &zone).await.unwrap();
        assert!(find(&c, &zid).await.unwrap().is_none());
        // Records of a zone that is gone are not found.
        assert!(find(&c, &sid).await.unwrap().is_none());
        for hc in &checks {
            delete(&c, hc).await.unwrap();
            assert!(find(&c, &hc.identity()).await.unwrap().is_none());
        }
    }
}
