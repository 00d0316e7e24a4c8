//! Route 53 DNS in the sim: which record a name resolves to, how a change reaches the name
//! servers, and resolvers that cache answers for their TTL.
//!
//! - **Choosing a record** ([`choose`]) follows the Route 53 Developer Guide, "How Amazon Route
//!   53 chooses records when health checking is configured": a failover name answers the
//!   PRIMARY while it is healthy, else the SECONDARY; a weighted name answers among the healthy
//!   records with a non-zero weight, in proportion to their weights; weight-0 records serve
//!   only when every non-zero record is unhealthy; when every record is unhealthy, all are
//!   treated as healthy. A record is healthy when its health check is (and, for an alias with
//!   `EvaluateTargetHealth`, when its target is).
//! - **Propagation**: a change is `PENDING` until it is on every Route 53 name server, then
//!   `INSYNC` ([`SimConfig::dns_insync_ms`] after it was submitted, Route 53 FAQ: within 60 s).
//!   The sim takes the worst case: name servers answer the old record until the change is
//!   `INSYNC`. `ListResourceRecordSets` shows the new record at once, as Route 53 does.
//! - **Resolvers** ([`DnsState::cached`], [`DnsState::remember`]) keep an answer for its TTL (60 s for an alias
//!   to a load balancer, [`SimConfig::dns_alias_ttl_ms`]), so clients follow a change up to a
//!   TTL late. A resolver is named by the caller (the synthetic client of the next issue).
//!
//! Pure: the world hands in records, health and the time.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::World;
use super::agenda::Event;
use super::config::SimConfig;
use super::process::Process;
use super::route53::hash_unit;
use crate::backend::{
    ChangeInfo, ChangeStatus, CloudError, DnsAnswer, ErrorKind, GLOBAL, Kind, RecordSet, Tags,
    not_found,
};

/// A name as Route 53 compares it: lower case, without the final dot.
pub fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// How a record takes part in answering its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Routing {
    /// The only record of its name and type.
    Simple,
    /// A weighted record with its weight.
    Weighted(u8),
    /// A failover record: `true` for PRIMARY, `false` for SECONDARY.
    Failover(bool),
}

/// One record as a name server holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServedRecord {
    /// The record resource's id.
    pub id: String,
    /// `HostedZoneId`.
    pub zone_id: String,
    /// `Name`, normalised.
    pub name: String,
    /// `Type`.
    pub record_type: String,
    /// `SetIdentifier`.
    pub set_identifier: Option<String>,
    /// Its routing.
    pub routing: Routing,
    /// `HealthCheckId`.
    pub health_check_id: Option<String>,
    /// `AliasTarget.DNSName`, normalised.
    pub alias_dns_name: Option<String>,
    /// `AliasTarget.EvaluateTargetHealth`.
    pub evaluate_target_health: bool,
    /// `TTL` in milliseconds (an alias has the target's: [`SimConfig::dns_alias_ttl_ms`]).
    pub ttl_ms: u64,
    /// `ResourceRecords`.
    pub values: Vec<String>,
}

impl ServedRecord {
    /// Reads a `DnsRecord` resource's spec (as `route53.failover_dns` writes it).
    pub fn from_spec(id: &str, spec: &Value, config: &SimConfig) -> ServedRecord {
        let s = |k: &str| spec.get(k).and_then(Value::as_str).map(str::to_string);
        let alias = spec.get("alias_target");
        let alias_dns_name = alias
            .and_then(|a| a.get("dns_name"))
            .and_then(Value::as_str)
            .map(normalize);
        let routing = match (
            s("routing_policy").as_deref(),
            spec.get("weight"),
            s("failover"),
        ) {
            (_, _, Some(f)) => Routing::Failover(f.eq_ignore_ascii_case("PRIMARY")),
            (Some("weighted"), w, _) | (_, w @ Some(_), _) => {
                Routing::Weighted(w.and_then(Value::as_u64).unwrap_or(0).min(255) as u8)
            }
            _ => Routing::Simple,
        };
        ServedRecord {
            id: id.to_string(),
            zone_id: s("hosted_zone_id").unwrap_or_default(),
            name: normalize(&s("name").unwrap_or_default()),
            record_type: s("type").unwrap_or_else(|| "A".into()),
            set_identifier: s("set_identifier"),
            routing,
            health_check_id: s("health_check_id"),
            evaluate_target_health: alias
                .and_then(|a| a.get("evaluate_target_health"))
                .and_then(Value::as_bool)
                .unwrap_or(false),
            ttl_ms: if alias_dns_name.is_some() {
                config.dns_alias_ttl_ms
            } else {
                spec.get("ttl").and_then(Value::as_u64).unwrap_or(300) * 1000
            },
            alias_dns_name,
            values: spec
                .get("records")
                .and_then(Value::as_array)
                .map(|v| {
                    v.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// `ListResourceRecordSets`' view of it.
    pub fn record_set(&self) -> RecordSet {
        RecordSet {
            name: self.name.clone(),
            record_type: self.record_type.clone(),
            set_identifier: self.set_identifier.clone(),
            weight: match self.routing {
                Routing::Weighted(w) => Some(w),
                _ => None,
            },
            failover: match self.routing {
                Routing::Failover(true) => Some("PRIMARY".into()),
                Routing::Failover(false) => Some("SECONDARY".into()),
                _ => None,
            },
            health_check_id: self.health_check_id.clone(),
            alias_dns_name: self.alias_dns_name.clone(),
        }
    }

    /// What an answer with this record carries: the alias target's name, or the values.
    pub fn data(&self) -> Vec<String> {
        match &self.alias_dns_name {
            Some(d) => vec![d.clone()],
            None => self.values.clone(),
        }
    }
}

/// The record Route 53 answers with among `records` (one name and type), given each record's
/// health; `pick` in [0, 1) chooses among weighted records. `None` when there is no record.
pub fn choose<'a>(
    records: &'a [ServedRecord],
    healthy: &dyn Fn(&ServedRecord) -> bool,
    pick: f64,
) -> Option<&'a ServedRecord> {
    let first = records.first()?;
    match first.routing {
        Routing::Simple => Some(first),
        Routing::Failover(_) => {
            let primary = records
                .iter()
                .find(|r| r.routing == Routing::Failover(true));
            let secondary = records
                .iter()
                .find(|r| r.routing == Routing::Failover(false));
            match (primary, secondary) {
                (Some(p), _) if healthy(p) => Some(p),
                (_, Some(s)) if healthy(s) => Some(s),
                // Both unhealthy: treated as healthy, so the primary.
                (p, s) => p.or(s),
            }
        }
        Routing::Weighted(_) => {
            let weight = |r: &ServedRecord| match r.routing {
                Routing::Weighted(w) => u32::from(w),
                _ => 0,
            };
            let up: Vec<&ServedRecord> = records.iter().filter(|r| healthy(r)).collect();
            let nonzero = |v: &[&'a ServedRecord]| -> Vec<&'a ServedRecord> {
                v.iter().copied().filter(|r| weight(r) > 0).collect()
            };
            let all: Vec<&ServedRecord> = records.iter().collect();
            let pool = [nonzero(&up), up.clone(), nonzero(&all), all]
                .into_iter()
                .find(|p| !p.is_empty())?;
            let total: u32 = pool.iter().map(|r| weight(r)).sum();
            if total == 0 {
                // All weights 0: equal chances.
                return Some(pool[((pick * pool.len() as f64) as usize).min(pool.len() - 1)]);
            }
            let mut target = (pick * f64::from(total)) as u32;
            for r in &pool {
                if target < weight(r) {
                    return Some(r);
                }
                target -= weight(r);
            }
            pool.last().copied()
        }
    }
}

/// One submitted change of one record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DnsChange {
    /// `Id`.
    pub id: String,
    /// `SubmittedAt`.
    pub submitted_at_ms: u64,
    /// When it is on every name server.
    pub insync_at_ms: u64,
    /// The record changed.
    pub record_id: String,
    /// Its spec before the change: what name servers answer until `insync_at_ms`.
    pub before: Value,
}

impl DnsChange {
    /// `GetChange`'s view at `now`.
    pub fn info(&self, now: u64) -> ChangeInfo {
        ChangeInfo {
            id: self.id.clone(),
            status: if now >= self.insync_at_ms {
                ChangeStatus::Insync
            } else {
                ChangeStatus::Pending
            },
            submitted_at_ms: self.submitted_at_ms,
        }
    }
}

/// One cached answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CachedAnswer {
    /// The answer.
    pub answer: DnsAnswer,
    /// When the resolver drops it.
    pub expires_at_ms: u64,
}

/// Route 53's DNS side: changes on their way and resolvers' caches.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DnsState {
    /// Submitted changes, oldest first.
    pub changes: Vec<DnsChange>,
    /// Each resolver's cache, by resolver, then by `name type`.
    pub resolvers: BTreeMap<String, BTreeMap<String, CachedAnswer>>,
}

/// How long a change's record is kept after it is `INSYNC` (so `GetChange` still answers):
/// Route 53 keeps changes for 90 days; a day is plenty for a run to ask.
pub const CHANGE_MEMORY_MS: u64 = 86_400_000;

impl DnsState {
    /// Records a change of `record_id` submitted at `now`, whose spec was `before`. Returns
    /// its `ChangeInfo` (`PENDING`).
    pub fn submit(
        &mut self,
        record_id: &str,
        before: Value,
        now: u64,
        config: &SimConfig,
    ) -> ChangeInfo {
        let n = self.changes.len() as u64;
        let seed = format!("{record_id}/{now}/{n}");
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        let id: String = std::iter::once('C')
            .chain((0..13).map(|i| {
                char::from(
                    ALPHABET
                        [(hash_unit(&seed, i) * ALPHABET.len() as f64) as usize % ALPHABET.len()],
                )
            }))
            .collect();
        self.changes
            .retain(|c| c.insync_at_ms + CHANGE_MEMORY_MS > now);
        let change = DnsChange {
            id,
            submitted_at_ms: now,
            insync_at_ms: now + config.dns_insync_ms,
            record_id: record_id.to_string(),
            before,
        };
        let info = change.info(now);
        self.changes.push(change);
        info
    }

    /// A change by id (with or without the `/change/` prefix).
    pub fn change(&self, id: &str) -> Option<&DnsChange> {
        let id = id.trim_start_matches("/change/");
        self.changes.iter().find(|c| c.id == id)
    }

    /// The spec name servers serve for a record at `now`: the one before its oldest change
    /// not yet `INSYNC`, else its current one.
    pub fn served_spec<'a>(&'a self, record_id: &str, current: &'a Value, now: u64) -> &'a Value {
        self.changes
            .iter()
            .find(|c| c.record_id == record_id && c.insync_at_ms > now)
            .map_or(current, |c| &c.before)
    }

    /// What resolver `resolver_id` still has cached for `name`/`record_type` at `now`; drops
    /// the answers whose TTL has run out.
    pub fn cached(
        &mut self,
        resolver_id: &str,
        name: &str,
        record_type: &str,
        now: u64,
    ) -> Option<DnsAnswer> {
        let cache = self.resolvers.get_mut(resolver_id)?;
        cache.retain(|_, c| c.expires_at_ms > now);
        cache
            .get(&format!("{} {record_type}", normalize(name)))
            .map(|c| c.answer.clone())
    }

    /// Resolver `resolver_id` keeps `answer` from `now` for `ttl_ms`. `NXDOMAIN` is not kept.
    pub fn remember(&mut self, resolver_id: &str, answer: &DnsAnswer, now: u64, ttl_ms: u64) {
        if answer.response_code != "NOERROR" || ttl_ms == 0 {
            return;
        }
        self.resolvers
            .entry(resolver_id.to_string())
            .or_default()
            .insert(
                format!("{} {}", normalize(&answer.record_name), answer.record_type),
                CachedAnswer {
                    answer: answer.clone(),
                    expires_at_ms: now + ttl_ms,
                },
            );
    }
}

const NAME: &str = "dns";

/// Route 53 DNS as a process of the world. It needs no events of its own: whether a change is
/// `INSYNC` and what a record answers are worked out from the time when asked.
pub struct Dns;

impl Process for Dns {
    fn name(&self) -> &'static str {
        NAME
    }

    fn handle(&self, _world: &mut World, _event: &Event) {}
}

fn check_zone(world: &World, zone: &str) -> Result<(), CloudError> {
    world
        .get(GLOBAL, Kind::HostedZone, zone)
        .map(|_| ())
        .map_err(|_| not_found("hosted zone", zone))
}

/// The record resources of `name` (in `zone` when given), in creation order.
fn record_resources<'w>(
    world: &'w World,
    zone: Option<&str>,
    name: &str,
) -> Vec<&'w super::SimResource> {
    let name = normalize(name);
    let mut v: Vec<&super::SimResource> = world
        .regions
        .get(GLOBAL)
        .into_iter()
        .flat_map(|m| m.values())
        .filter(|r| r.resource.kind == Kind::DnsRecord)
        .filter(|r| {
            zone.is_none_or(|z| {
                r.resource
                    .spec
                    .get("hosted_zone_id")
                    .and_then(Value::as_str)
                    == Some(z)
            })
        })
        .filter(|r| {
            r.resource
                .spec
                .get("name")
                .and_then(Value::as_str)
                .is_some_and(|n| normalize(n) == name)
        })
        .collect();
    v.sort_by_key(|r| r.seq);
    v
}

/// `ListResourceRecordSets` of `zone`, only `name`: the records as last changed (a change
/// shows at once, before it is `INSYNC`).
pub fn list_resource_record_sets(
    world: &World,
    zone: &str,
    name: &str,
) -> Result<Vec<RecordSet>, CloudError> {
    check_zone(world, zone)?;
    Ok(record_resources(world, Some(zone), name)
        .into_iter()
        .map(|r| {
            ServedRecord::from_spec(&r.resource.id, &r.resource.spec, &world.config).record_set()
        })
        .collect())
}

/// `ChangeResourceRecordSets` with one `UPSERT` of a weighted record's weight. The change is
/// `PENDING` for [`SimConfig::dns_insync_ms`]; name servers answer the old weight until then.
pub fn set_record_weight(
    world: &mut World,
    zone: &str,
    name: &str,
    record_type: &str,
    set_identifier: &str,
    weight: u8,
) -> Result<ChangeInfo, CloudError> {
    check_zone(world, zone)?;
    let r = record_resources(world, Some(zone), name)
        .into_iter()
        .map(|r| &r.resource)
        .find(|r| {
            let rec = ServedRecord::from_spec(&r.id, &r.spec, &world.config);
            rec.record_type == record_type && rec.set_identifier.as_deref() == Some(set_identifier)
        })
        .cloned()
        .ok_or_else(|| {
            not_found(
                "record",
                &format!("{} {record_type} {set_identifier}", normalize(name)),
            )
        })?;
    if !matches!(
        ServedRecord::from_spec(&r.id, &r.spec, &world.config).routing,
        Routing::Weighted(_)
    ) {
        return Err(CloudError::new(
            ErrorKind::InvalidInput,
            format!(
                "{} {record_type} {set_identifier} is not a weighted record: move a failover record with its health check",
                normalize(name)
            ),
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
    let now = world.clock_ms;
    let config = world.config.clone();
    let info = world.dns.submit(&r.id, r.spec.clone(), now, &config);
    super::timeline::push_bounded(
        &mut world.timeline.dns_changes,
        super::timeline::DnsChangeFact {
            change_id: info.id.clone(),
            submitted_at_ms: now,
            insync_at_ms: now + config.dns_insync_ms,
            records: format!(
                "{} {record_type} {set_identifier} weight {weight}",
                normalize(name)
            ),
        },
        super::timeline::MAX_FACTS,
    );
    Ok(info)
}

/// `GetChange`.
pub fn get_change(world: &World, id: &str) -> Result<ChangeInfo, CloudError> {
    world
        .dns
        .change(id)
        .map(|c| c.info(world.clock_ms))
        .ok_or_else(|| not_found("change", id))
}

/// Whether the record is healthy for Route 53 now: its health check (if any), and for an alias
/// with `EvaluateTargetHealth` its load balancer (reachable from the internet with a healthy
/// target serving).
fn record_healthy(world: &World, r: &ServedRecord) -> bool {
    let check = r
        .health_check_id
        .as_deref()
        .is_none_or(|id| super::route53::is_healthy(world, id));
    let target = !r.evaluate_target_health
        || r.alias_dns_name.as_deref().is_none_or(|dns| {
            world
                .list(None, Some(Kind::LoadBalancer))
                .iter()
                .find(|lb| lb.attr_str("dns_name").eq_ignore_ascii_case(dns))
                .is_none_or(|lb| {
                    !world.region_down(&lb.region) && super::app::serving(world, &lb.region)
                })
        });
    check && target
}

/// What Route 53's name servers answer for `name`/`record_type` now, and the answer's TTL;
/// `seed` picks among weighted records.
fn authoritative(
    world: &World,
    zone: Option<&str>,
    name: &str,
    record_type: &str,
    seed: &str,
) -> (DnsAnswer, u64) {
    let now = world.clock_ms;
    let all: Vec<ServedRecord> = record_resources(world, zone, name)
        .into_iter()
        .map(|r| {
            let served = world.dns.served_spec(&r.resource.id, &r.resource.spec, now);
            ServedRecord::from_spec(&r.resource.id, served, &world.config)
        })
        .collect();
    let of_type: Vec<ServedRecord> = all
        .iter()
        .filter(|r| r.record_type == record_type)
        .cloned()
        .collect();
    let chosen = choose(&of_type, &|r| record_healthy(world, r), hash_unit(seed, 0));
    let answer = DnsAnswer {
        record_name: normalize(name),
        record_type: record_type.to_string(),
        response_code: if all.is_empty() {
            "NXDOMAIN"
        } else {
            "NOERROR"
        }
        .into(),
        record_data: chosen.map(ServedRecord::data).unwrap_or_default(),
    };
    (answer, chosen.map_or(0, |r| r.ttl_ms))
}

/// `TestDNSAnswer`: what Route 53's name servers answer now.
pub fn test_dns_answer(
    world: &World,
    zone: &str,
    name: &str,
    record_type: &str,
) -> Result<DnsAnswer, CloudError> {
    check_zone(world, zone)?;
    let seed = format!("test-dns-answer/{}/{}", normalize(name), world.clock_ms);
    Ok(authoritative(world, Some(zone), name, record_type, &seed).0)
}

/// The load balancer DNS name Route 53 sends a client resolving `name` to now, if it has one
/// (no resolver cache: see [`resolve_cached`]).
pub fn resolve(world: &World, name: &str) -> Option<String> {
    let seed = format!("resolve/{}/{}", normalize(name), world.clock_ms);
    authoritative(world, None, name, "A", &seed)
        .0
        .record_data
        .into_iter()
        .next()
}

/// What resolver `resolver_id` (a client's DNS resolver) answers for `name`/`record_type`
/// now: its cached answer until the TTL runs out, else Route 53's, which it then keeps for
/// the record's TTL (60 s for an alias to a load balancer). Each resolver draws its own
/// weighted choice.
pub fn resolve_cached(
    world: &mut World,
    resolver_id: &str,
    name: &str,
    record_type: &str,
) -> DnsAnswer {
    let now = world.clock_ms;
    if let Some(answer) = world.dns.cached(resolver_id, name, record_type, now) {
        return answer;
    }
    let seed = format!("{resolver_id}/{}/{now}", normalize(name));
    let (answer, ttl_ms) = authoritative(world, None, name, record_type, &seed);
    world.dns.remember(resolver_id, &answer, now, ttl_ms);
    answer
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(side: &str, routing: Value) -> ServedRecord {
        let mut spec = json!({
            "hosted_zone_id": "Z1",
            "name": "api.trading.example.com.",
            "type": "A",
            "set_identifier": side,
            "health_check_id": format!("hc-{side}"),
            "alias_target": {"dns_name": format!("alb-{side}.elb.amazonaws.com"), "hosted_zone_id": "Z2", "evaluate_target_health": true},
        });
        crate::sim::merge(&mut spec, &routing);
        ServedRecord::from_spec(&format!("r-{side}"), &spec, &SimConfig::default())
    }

    fn weighted(p: u8, s: u8) -> Vec<ServedRecord> {
        vec![
            record(
                "primary",
                json!({"routing_policy": "weighted", "weight": p}),
            ),
            record(
                "standby",
                json!({"routing_policy": "weighted", "weight": s}),
            ),
        ]
    }

    fn failover() -> Vec<ServedRecord> {
        vec![
            record(
                "primary",
                json!({"routing_policy": "failover", "failover": "PRIMARY"}),
            ),
            record(
                "standby",
                json!({"routing_policy": "failover", "failover": "SECONDARY"}),
            ),
        ]
    }

    fn up(sides: &'static [&'static str]) -> impl Fn(&ServedRecord) -> bool {
        move |r: &ServedRecord| sides.iter().any(|s| r.set_identifier.as_deref() == Some(s))
    }

    fn side(r: Option<&ServedRecord>) -> &str {
        r.and_then(|r| r.set_identifier.as_deref())
            .unwrap_or("none")
    }

    #[test]
    fn weighted_100_0_answers_the_primary_then_the_standby_when_the_primary_fails() {
        let rs = weighted(100, 0);
        for pick in [0.0, 0.5, 0.999] {
            assert_eq!(
                side(choose(&rs, &up(&["primary", "standby"]), pick)),
                "primary"
            );
            // Weight 0 serves once every non-zero record is unhealthy.
            assert_eq!(side(choose(&rs, &up(&["standby"]), pick)), "standby");
            // Every record unhealthy: all are treated healthy, weights apply.
            assert_eq!(side(choose(&rs, &up(&[]), pick)), "primary");
        }
        // Weights moved to 0/100.
        let moved = weighted(0, 100);
        assert_eq!(
            side(choose(&moved, &up(&["primary", "standby"]), 0.3)),
            "standby"
        );
        let rs = weighted(0, 100);
        assert_eq!(side(choose(&rs, &up(&["primary"]), 0.3)), "primary");
    }

    #[test]
    fn weights_share_the_answers_in_proportion() {
        let rs = weighted(30, 70);
        let primary = (0..1000)
            .filter(|i| {
                side(choose(
                    &rs,
                    &up(&["primary", "standby"]),
                    f64::from(*i) / 1000.0,
                )) == "primary"
            })
            .count();
        assert_eq!(primary, 300);
        let zero = weighted(0, 0);
        assert_eq!(
            side(choose(&zero, &up(&["primary", "standby"]), 0.7)),
            "standby"
        );
    }

    #[test]
    fn failover_answers_the_secondary_only_while_the_primary_is_unhealthy() {
        let rs = failover();
        assert_eq!(
            side(choose(&rs, &up(&["primary", "standby"]), 0.0)),
            "primary"
        );
        assert_eq!(side(choose(&rs, &up(&["standby"]), 0.0)), "standby");
        assert_eq!(side(choose(&rs, &up(&["primary"]), 0.0)), "primary");
        assert_eq!(side(choose(&rs, &up(&[]), 0.0)), "primary");
        assert_eq!(side(choose(&[], &up(&[]), 0.0)), "none");
    }

    #[test]
    fn alias_records_carry_the_load_balancer_and_a_60_second_ttl() {
        let r = &failover()[0];
        assert_eq!(r.data(), ["alb-primary.elb.amazonaws.com"]);
        assert_eq!(r.ttl_ms, 60_000);
        let set = r.record_set();
        assert_eq!(set.failover.as_deref(), Some("PRIMARY"));
        assert_eq!(set.name, "api.trading.example.com");
        assert_eq!(weighted(100, 0)[1].record_set().weight, Some(0));
    }

    #[test]
    fn a_change_is_pending_then_insync_and_served_only_then() {
        let c = SimConfig::default();
        let mut dns = DnsState::default();
        let old = json!({"weight": 100});
        let new = json!({"weight": 0});
        let info = dns.submit("r-primary", old.clone(), 1_000, &c);
        assert_eq!(info.status, ChangeStatus::Pending);
        let change = dns.change(&format!("/change/{}", info.id)).unwrap();
        assert_eq!(change.info(1_000 + 59_999).status, ChangeStatus::Pending);
        assert_eq!(change.info(1_000 + 60_000).status, ChangeStatus::Insync);
        assert_eq!(dns.served_spec("r-primary", &new, 60_000), &old);
        assert_eq!(dns.served_spec("r-primary", &new, 61_000), &new);
        assert_eq!(dns.served_spec("r-other", &new, 2_000), &new);
        assert!(dns.change("C0000000000000").is_none());
    }

    fn answer(data: &str) -> DnsAnswer {
        DnsAnswer {
            record_name: "api.trading.example.com".into(),
            record_type: "A".into(),
            response_code: "NOERROR".into(),
            record_data: vec![data.into()],
        }
    }

    #[test]
    fn a_resolver_keeps_its_answer_until_the_ttl_expires() {
        let mut dns = DnsState::default();
        let name = "api.trading.example.com.";
        assert_eq!(dns.cached("client-1", name, "A", 0), None);
        dns.remember("client-1", &answer("primary"), 0, 60_000);
        let cached = dns.cached("client-1", name, "A", 59_999).unwrap();
        assert_eq!(cached.record_data, ["primary"]);
        // Another resolver has nothing cached and asks Route 53 afresh.
        assert_eq!(dns.cached("client-2", name, "A", 30_000), None);
        assert_eq!(dns.cached("client-1", name, "A", 60_000), None);
        let mut nx = answer("x");
        nx.response_code = "NXDOMAIN".into();
        dns.remember("client-1", &nx, 0, 60_000);
        assert_eq!(dns.cached("client-1", name, "A", 1), None);
    }
}
