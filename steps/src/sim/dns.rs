//! Route 53 DNS: record sets, changes (`PENDING` until every name server has them, then
//! `INSYNC`) and answers.
//!
//! First version (the `simobs` helper owns this file from here on): a change is `INSYNC`
//! [`dns_insync_ms`](super::SimConfig) after it was submitted; answers follow the records and
//! health checks at once (no resolver caching yet).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::World;
use super::agenda::Event;
use super::process::Process;
use crate::backend::{
    ChangeInfo, ChangeStatus, CloudError, DnsAnswer, ErrorKind, GLOBAL, Kind, RecordSet, Resource,
    Tags, not_found,
};

const NAME: &str = "dns";

/// Route 53 changes by id.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DnsState {
    /// Submitted changes by id.
    pub changes: BTreeMap<String, ChangeInfo>,
}

/// Change propagation.
pub struct Dns;

impl Process for Dns {
    fn name(&self) -> &'static str {
        NAME
    }

    fn handle(&self, world: &mut World, event: &Event) {
        if event.what == "insync"
            && let Some(c) = world.dns.changes.get_mut(&event.target)
        {
            c.status = ChangeStatus::Insync;
        }
    }
}

fn bare(name: &str) -> &str {
    name.trim_end_matches('.')
}

fn records<'w>(world: &'w World, zone: Option<&str>, name: &str) -> Vec<Resource> {
    world
        .list(Some(GLOBAL), Some(Kind::DnsRecord))
        .into_iter()
        .filter(|r| {
            zone.is_none_or(|z| r.spec.get("hosted_zone_id").and_then(Value::as_str) == Some(z))
        })
        .filter(|r| {
            r.spec
                .get("name")
                .and_then(Value::as_str)
                .is_some_and(|n| bare(n).eq_ignore_ascii_case(bare(name)))
        })
        .collect()
}

fn record_set(r: &Resource) -> RecordSet {
    let s = |k: &str| r.spec.get(k).and_then(Value::as_str).map(str::to_string);
    RecordSet {
        name: bare(&s("name").unwrap_or_default()).to_string(),
        record_type: s("type").unwrap_or_default(),
        set_identifier: s("set_identifier"),
        weight: r
            .spec
            .get("weight")
            .and_then(Value::as_u64)
            .map(|w| w as u8),
        failover: s("failover"),
        health_check_id: s("health_check_id"),
        alias_dns_name: r
            .spec
            .pointer("/alias_target/dns_name")
            .and_then(Value::as_str)
            .map(|d| bare(d).to_string()),
    }
}

fn check_zone(world: &World, zone: &str) -> Result<(), CloudError> {
    world
        .get(GLOBAL, Kind::HostedZone, zone)
        .map(|_| ())
        .map_err(|_| not_found("hosted zone", zone))
}

/// `ListResourceRecordSets` of `zone`, only `name`.
pub fn list_resource_record_sets(
    world: &World,
    zone: &str,
    name: &str,
) -> Result<Vec<RecordSet>, CloudError> {
    check_zone(world, zone)?;
    Ok(records(world, Some(zone), name)
        .iter()
        .map(record_set)
        .collect())
}

/// `ChangeResourceRecordSets` setting one weighted record's weight.
pub fn set_record_weight(
    world: &mut World,
    zone: &str,
    name: &str,
    record_type: &str,
    set_identifier: &str,
    weight: u8,
) -> Result<ChangeInfo, CloudError> {
    check_zone(world, zone)?;
    let r = records(world, Some(zone), name)
        .into_iter()
        .find(|r| {
            r.spec.get("type").and_then(Value::as_str) == Some(record_type)
                && r.spec.get("set_identifier").and_then(Value::as_str) == Some(set_identifier)
        })
        .ok_or_else(|| not_found("record", &format!("{name} {record_type} {set_identifier}")))?;
    if r.spec.get("weight").is_none() {
        return Err(CloudError::new(
            ErrorKind::InvalidInput,
            format!("{name} {record_type} {set_identifier} is not a weighted record"),
        ));
    }
    world.update(
        GLOBAL,
        Kind::DnsRecord,
        &r.id,
        &json!({ "weight": weight }),
        &Tags::new(),
        &r.depends_on,
    )?;
    let id = format!("C{:020X}", world.rng.next_u64() as u128 * 7919);
    let now = world.clock_ms;
    let change = ChangeInfo {
        id: id.clone(),
        status: ChangeStatus::Pending,
        submitted_at_ms: now,
    };
    world.dns.changes.insert(id.clone(), change.clone());
    let at = now + world.config.dns_insync_ms;
    world.schedule(at, NAME, &id, "insync", Value::Null);
    Ok(change)
}

/// `GetChange`.
pub fn get_change(world: &World, id: &str) -> Result<ChangeInfo, CloudError> {
    world
        .dns
        .changes
        .get(id)
        .cloned()
        .ok_or_else(|| not_found("change", id))
}

fn healthy(world: &World, r: &RecordSet) -> bool {
    r.health_check_id.as_deref().is_none_or(|id| {
        super::route53::get_health_check_status(world, id).is_ok_and(|s| s.healthy)
    })
}

/// The records Route 53 answers with for `name` now: failover PRIMARY while healthy else
/// SECONDARY; weighted among healthy records with a non-zero weight (weight-0 records only
/// when every non-zero one is unhealthy; all unhealthy ⇒ all treated healthy).
fn answer_records(world: &World, zone: Option<&str>, name: &str) -> Vec<RecordSet> {
    let sets: Vec<RecordSet> = records(world, zone, name).iter().map(record_set).collect();
    if sets.iter().any(|s| s.failover.is_some()) {
        let primary = sets
            .iter()
            .find(|s| s.failover.as_deref() == Some("PRIMARY"));
        let secondary = sets
            .iter()
            .find(|s| s.failover.as_deref() == Some("SECONDARY"));
        return match (primary, secondary) {
            (Some(p), _) if healthy(world, p) => vec![p.clone()],
            (_, Some(s)) if healthy(world, s) => vec![s.clone()],
            (Some(p), _) => vec![p.clone()],
            (None, Some(s)) => vec![s.clone()],
            (None, None) => vec![],
        };
    }
    if sets.iter().any(|s| s.weight.is_some()) {
        let up: Vec<&RecordSet> = sets.iter().filter(|s| healthy(world, s)).collect();
        let pool: Vec<&RecordSet> = if up.is_empty() {
            sets.iter().collect()
        } else {
            up
        };
        let weighted: Vec<RecordSet> = pool
            .iter()
            .filter(|s| s.weight.unwrap_or(0) > 0)
            .map(|s| (*s).clone())
            .collect();
        return if weighted.is_empty() {
            pool.into_iter().cloned().collect()
        } else {
            weighted
        };
    }
    sets
}

/// `TestDNSAnswer`.
pub fn test_dns_answer(
    world: &World,
    zone: &str,
    name: &str,
    record_type: &str,
) -> Result<DnsAnswer, CloudError> {
    check_zone(world, zone)?;
    let answer: Vec<RecordSet> = answer_records(world, Some(zone), name)
        .into_iter()
        .filter(|r| r.record_type == record_type)
        .collect();
    Ok(DnsAnswer {
        record_name: bare(name).to_string(),
        record_type: record_type.to_string(),
        response_code: if answer.is_empty() {
            "NXDOMAIN"
        } else {
            "NOERROR"
        }
        .into(),
        record_data: answer
            .into_iter()
            .filter_map(|r| r.alias_dns_name)
            .collect(),
    })
}

/// The load balancer DNS name a client resolving `name` is sent to now (the first answer), if
/// Route 53 has one.
pub fn resolve(world: &World, name: &str) -> Option<String> {
    answer_records(world, None, name)
        .into_iter()
        .find_map(|r| r.alias_dns_name)
}
