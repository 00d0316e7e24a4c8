//! The simulated cloud's state and the pure operations on it: no I/O, no wall clock.
//!
//! The [`World`] is what `<state_dir>/sim/world.json` holds. Time in it is a virtual clock that
//! only moves when an operation costs time or a wait asks it to; the failover issue adds the
//! timing model and fault injection on top of the same structures.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::agenda::Agenda;
use super::app::AppState;
use super::aurora::GlobalDb;
use super::autoscaling::{AsgState, TargetGroupState};
use super::client::ClientState;
use super::config::SimConfig;
use super::faults::Faults;
use super::ids::{IdGen, identity};
use super::rng::SimRng;
use super::timeline::TimelineLog;
use super::{cloudwatch, dns, route53};
use crate::backend::{
    CloudError, CreateRequest, ErrorKind, GLOBAL, Identity, Kind, Resource, ResourceState, Tags,
};

/// The world file's format version; bumped when a change would misread old files. (Format 1
/// files load: the dynamic state they lack starts empty, and [`World::migrate`] gives their
/// routes, records, subscriptions, scaling policies and listeners the parent and name format 2
/// finds them by.)
pub const FORMAT: u32 = 2;

/// 2026-01-01T00:00:00Z: where the virtual clock of a fresh world starts.
pub const EPOCH_MS: u64 = 1_767_225_600_000;

/// One resource and the sim's bookkeeping about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimResource {
    /// What a backend reports.
    pub resource: Resource,
    /// Virtual time it was created.
    pub created_at_ms: u64,
    /// Virtual time it was last changed.
    pub updated_at_ms: u64,
    /// Virtual time it becomes `available` (while `creating`).
    pub ready_at_ms: u64,
    /// Creation order, so listings and teardown are stable.
    pub seq: u64,
}

/// The whole simulated cloud.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct World {
    /// The version of this file format; a newer one is refused.
    pub format: u32,
    /// The virtual clock, in milliseconds since the Unix epoch.
    pub clock_ms: u64,
    /// The last sequence number handed out.
    pub seq: u64,
    /// The timings the world runs on.
    #[serde(default)]
    pub config: SimConfig,
    /// Resources by region (or `global`), then by id.
    pub regions: BTreeMap<String, BTreeMap<String, SimResource>>,
    /// Future events, earliest first.
    #[serde(default)]
    pub agenda: Agenda,
    /// Injected faults not yet over.
    #[serde(default)]
    pub faults: Faults,
    /// The seeded generator behind every random choice (checker jitter, instance ids).
    #[serde(default)]
    pub rng: SimRng,
    /// Aurora Global Databases by global cluster id: writer, members, the stream of writes.
    #[serde(default)]
    pub aurora: BTreeMap<String, GlobalDb>,
    /// Auto Scaling groups by `region/name`: their instances and warm pools.
    #[serde(default)]
    pub asgs: BTreeMap<String, AsgState>,
    /// Target groups by ARN: registered targets and their health.
    #[serde(default)]
    pub target_groups: BTreeMap<String, TargetGroupState>,
    /// The trading application by region.
    #[serde(default)]
    pub apps: BTreeMap<String, AppState>,
    /// Every message published to an SNS topic, oldest first.
    #[serde(default)]
    pub sns: Vec<SnsMessage>,
    /// Route 53 health checkers (owned by `route53.rs`).
    #[serde(default)]
    pub route53: route53::Route53State,
    /// CloudWatch metrics and alarm states (owned by `cloudwatch.rs`).
    #[serde(default)]
    pub cloudwatch: cloudwatch::CloudWatchState,
    /// Route 53 changes and resolvers (owned by `dns.rs`).
    #[serde(default)]
    pub dns: dns::DnsState,
    /// The synthetic trading client, once started (owned by `client.rs`).
    #[serde(default)]
    pub client: Option<ClientState>,
    /// The facts a drill reports, as they happened (`timeline.rs`).
    #[serde(default)]
    pub timeline: TimelineLog,
    /// Resources or faults changed since processes last synced (not saved: a loaded world
    /// syncs anyway).
    #[serde(skip, default = "yes")]
    pub(crate) needs_sync: bool,
}

fn yes() -> bool {
    true
}

/// One message published to an SNS topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnsMessage {
    /// `MessageId`.
    pub message_id: String,
    /// The topic's region.
    pub region: String,
    /// `TopicArn`.
    pub topic_arn: String,
    /// `Subject`.
    pub subject: String,
    /// `Message`.
    pub message: String,
    /// When it was published.
    pub at_ms: u64,
}

impl Default for World {
    fn default() -> World {
        World {
            format: FORMAT,
            clock_ms: EPOCH_MS,
            seq: 0,
            config: SimConfig::default(),
            regions: BTreeMap::new(),
            agenda: Agenda::default(),
            faults: Faults::default(),
            rng: SimRng::default(),
            aurora: BTreeMap::new(),
            asgs: BTreeMap::new(),
            target_groups: BTreeMap::new(),
            apps: BTreeMap::new(),
            sns: Vec::new(),
            route53: route53::Route53State::default(),
            cloudwatch: cloudwatch::CloudWatchState::default(),
            dns: dns::DnsState::default(),
            client: None,
            timeline: TimelineLog::default(),
            needs_sync: true,
        }
    }
}

/// The availability zones the sim serves for a region: those of the one region table
/// ([`crate::regions`]), so the sim knows exactly the regions validation accepts.
pub fn availability_zones(region: &str) -> Option<Vec<String>> {
    crate::regions::availability_zones(region)
}

fn check_region(region: &str, kind: Kind) -> Result<(), CloudError> {
    if kind.is_global() {
        if region != GLOBAL {
            return Err(CloudError::new(
                ErrorKind::InvalidInput,
                format!("{kind} is a global resource; use region {GLOBAL:?}, not {region:?}"),
            ));
        }
        return Ok(());
    }
    if availability_zones(region).is_none() {
        return Err(CloudError::new(
            ErrorKind::InvalidInput,
            format!(
                "unknown region {region:?}: not a commercial AWS region ({})",
                crate::regions::region_hint(region)
            ),
        ));
    }
    Ok(())
}

/// Merges `patch` into `base`: objects key by key (recursively), anything else replaced.
pub fn merge(base: &mut Value, patch: &Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                match b.get_mut(k) {
                    Some(slot) if slot.is_object() && v.is_object() => merge(slot, v),
                    _ => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, p) => *b = p.clone(),
    }
}

impl World {
    /// Brings a world of an older format up to [`FORMAT`]. Format 1 named a child resource
    /// with a name drflow made up (`rtb-…:0.0.0.0/0`, `api.example.com. A primary`) and no
    /// parent; format 2 finds it by its parent's id and its name there, as AWS does
    /// ([`Identity`]). Both come from the child's own spec, so nothing is lost.
    pub fn migrate(&mut self) {
        if self.format >= FORMAT {
            return;
        }
        for r in self.regions.values_mut().flat_map(|m| m.values_mut()) {
            let res = &mut r.resource;
            if res.parent.is_some() || res.kind.parent_kind().is_none() {
                continue;
            }
            let s = |k: &str| match res.spec.get(k) {
                Some(Value::String(v)) => v.clone(),
                Some(Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            };
            let (parent, name) = match res.kind {
                Kind::Route => (s("route_table_id"), s("destination_cidr_block")),
                Kind::DnsRecord => {
                    let set = s("set_identifier");
                    let fqdn = s("name").trim_end_matches('.').to_ascii_lowercase();
                    let name = if set.is_empty() {
                        format!("{fqdn}. {}", s("type"))
                    } else {
                        format!("{fqdn}. {} {set}", s("type"))
                    };
                    (s("hosted_zone_id"), name)
                }
                Kind::SnsSubscription => (
                    s("topic_arn"),
                    format!("{}:{}", s("protocol"), s("endpoint")),
                ),
                Kind::ScalingPolicy => (s("auto_scaling_group_name"), res.name.clone()),
                Kind::Listener => (s("load_balancer_arn"), s("port")),
                _ => continue,
            };
            if !parent.is_empty() {
                res.parent = Some(parent);
                res.name = name;
            }
        }
        self.format = FORMAT;
    }

    /// Moves every resource whose creation time has passed to `available`.
    pub fn settle(&mut self) {
        let now = self.clock_ms;
        for r in self.regions.values_mut().flat_map(|m| m.values_mut()) {
            if r.resource.state == ResourceState::Creating && r.ready_at_ms <= now {
                r.resource.state = ResourceState::Available;
            }
        }
    }

    /// Advances the virtual clock by `by`, processing every event on the way.
    pub fn advance(&mut self, by: Duration) {
        self.advance_to(self.clock_ms.saturating_add(by.as_millis() as u64));
    }

    /// How long creating a resource of this kind takes, from the config.
    fn create_delay_ms(&self, kind: Kind) -> u64 {
        let c = &self.config;
        match kind {
            Kind::NatGateway => c.nat_gateway_create_ms,
            Kind::VpcPeering => c.vpc_peering_accept_ms,
            Kind::DbCluster => c.aurora_cluster_create_ms,
            Kind::DbInstance => c.aurora_instance_create_ms,
            Kind::DynamoTable => c.dynamodb_table_create_ms,
            Kind::LoadBalancer => c.alb_create_ms,
            Kind::Certificate => c.acm_validation_ms,
            _ => 0,
        }
    }

    /// Every resource, in creation order.
    pub fn all(&self) -> Vec<&SimResource> {
        let mut v: Vec<&SimResource> = self.regions.values().flat_map(|m| m.values()).collect();
        v.sort_by_key(|r| r.seq);
        v
    }

    /// Number of resources in the world.
    pub fn len(&self) -> usize {
        self.regions.values().map(BTreeMap::len).sum()
    }

    /// Whether the world holds no resources.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The top-level resource (one without a parent) of this kind and name in the region.
    pub fn find(&self, region: &str, kind: Kind, name: &str) -> Option<&SimResource> {
        self.lookup(&Identity::new(kind, region, name))
    }

    /// The resource at this identity: kind, region, parent and name.
    pub fn lookup(&self, id: &Identity) -> Option<&SimResource> {
        self.regions.get(&id.region)?.values().find(|r| {
            r.resource.kind == id.kind
                && r.resource.name == id.name
                && r.resource.parent == id.parent
        })
    }

    /// What the seam's `list` returns (see [`CloudBackend::list`](crate::backend::CloudBackend::list)):
    /// drflow's resources of `kind` in `region`, in creation order.
    pub fn list_of(
        &self,
        region: &str,
        kind: Kind,
        parent: Option<&str>,
    ) -> Result<Vec<Resource>, CloudError> {
        if kind.parent_kind().is_some() && parent.is_none() {
            return Err(CloudError::new(
                ErrorKind::InvalidInput,
                format!(
                    "listing {kind}s needs the id of their {}",
                    kind.parent_kind().map_or("parent", Kind::name)
                ),
            ));
        }
        let managed = |r: &Resource| {
            !kind.taggable() || r.tags.get("ManagedBy").map(String::as_str) == Some("drflow")
        };
        Ok(self
            .list(Some(region), Some(kind))
            .into_iter()
            .filter(|r| parent.is_none() || r.parent.as_deref() == parent)
            .filter(managed)
            .collect())
    }

    /// The resource with this id in the region.
    pub fn get(&self, region: &str, kind: Kind, id: &str) -> Result<&SimResource, CloudError> {
        self.regions
            .get(region)
            .and_then(|m| m.get(id))
            .filter(|r| r.resource.kind == kind)
            .ok_or_else(|| not_found(region, kind, id))
    }

    fn get_mut(
        &mut self,
        region: &str,
        kind: Kind,
        id: &str,
    ) -> Result<&mut SimResource, CloudError> {
        self.regions
            .get_mut(region)
            .and_then(|m| m.get_mut(id))
            .filter(|r| r.resource.kind == kind)
            .ok_or_else(|| not_found(region, kind, id))
    }

    /// Whether a resource with this id or ARN exists anywhere.
    fn exists(&self, id_or_arn: &str) -> bool {
        self.regions
            .values()
            .any(|m| m.contains_key(id_or_arn) || m.values().any(|r| r.resource.arn == id_or_arn))
    }

    /// Resources, optionally filtered, in creation order.
    pub fn list(&self, region: Option<&str>, kind: Option<Kind>) -> Vec<Resource> {
        self.all()
            .into_iter()
            .filter(|r| region.is_none_or(|reg| r.resource.region == reg))
            .filter(|r| kind.is_none_or(|k| r.resource.kind == k))
            .map(|r| r.resource.clone())
            .collect()
    }

    /// Creates a resource, as the real service would: unique names, known dependencies.
    pub fn create(&mut self, req: &CreateRequest) -> Result<Resource, CloudError> {
        check_region(&req.region, req.kind)?;
        if req.name.is_empty() {
            return Err(CloudError::new(
                ErrorKind::InvalidInput,
                format!("a {} needs a name", req.kind),
            ));
        }
        if !req.spec.is_object() {
            return Err(CloudError::new(
                ErrorKind::InvalidInput,
                format!("the spec of {} {} must be an object", req.kind, req.name),
            ));
        }
        // S3 bucket names are global across regions; everything else is unique per region.
        let clash = if req.kind == Kind::S3Bucket {
            self.all()
                .into_iter()
                .any(|r| r.resource.kind == Kind::S3Bucket && r.resource.name == req.name)
        } else {
            self.lookup(&Identity {
                kind: req.kind,
                region: req.region.clone(),
                parent: req.parent.clone(),
                name: req.name.clone(),
            })
            .is_some()
        };
        if clash {
            let within = req
                .parent
                .as_ref()
                .map(|p| format!(" of {p}"))
                .unwrap_or_default();
            return Err(CloudError::new(
                ErrorKind::Conflict,
                format!(
                    "{} {}{within} already exists in {}",
                    req.kind, req.name, req.region
                ),
            ));
        }
        if let Some(parent) = req.parent.as_deref().filter(|p| !self.exists(p)) {
            return Err(CloudError::new(
                ErrorKind::NotFound,
                format!(
                    "{} {} lives in {parent}, which does not exist",
                    req.kind, req.name
                ),
            ));
        }
        if let Some(missing) = req.depends_on.iter().find(|id| !self.exists(id)) {
            return Err(CloudError::new(
                ErrorKind::NotFound,
                format!(
                    "{} {} refers to {missing}, which does not exist",
                    req.kind, req.name
                ),
            ));
        }
        self.seq += 1;
        let mut ids = IdGen::new(self.seq, req.kind, &req.region, &req.name);
        let ident = identity(&mut ids, req.kind, &req.region, &req.name, &req.spec);
        let delay = self.create_delay_ms(req.kind);
        let resource = Resource {
            parent: req.parent.clone(),
            kind: req.kind,
            region: req.region.clone(),
            name: req.name.clone(),
            id: ident.id.clone(),
            arn: ident.arn,
            spec: req.spec.clone(),
            attrs: ident.attrs,
            tags: req.tags.clone(),
            state: if delay == 0 {
                ResourceState::Available
            } else {
                ResourceState::Creating
            },
            depends_on: req.depends_on.clone(),
        };
        self.regions.entry(req.region.clone()).or_default().insert(
            ident.id,
            SimResource {
                resource: resource.clone(),
                created_at_ms: self.clock_ms,
                updated_at_ms: self.clock_ms,
                ready_at_ms: self.clock_ms + delay,
                seq: self.seq,
            },
        );
        if delay > 0 {
            let at = self.clock_ms + delay;
            self.schedule(at, "resources", &resource.id, "ready", Value::Null);
        }
        self.changed();
        Ok(resource)
    }

    /// Merges spec keys and tags into an existing resource and replaces what it depends on. A
    /// `Name` tag renames a kind [named by its tag](Kind::named_by_tag).
    pub fn update(
        &mut self,
        region: &str,
        kind: Kind,
        id: &str,
        spec: &Value,
        tags: &Tags,
        depends_on: &[String],
    ) -> Result<Resource, CloudError> {
        let had = &self.get(region, kind, id)?.resource.depends_on;
        // A new reference must exist; one it already had may have gone meanwhile.
        if let Some(missing) = depends_on
            .iter()
            .find(|d| !had.contains(d) && !self.exists(d))
        {
            return Err(CloudError::new(
                ErrorKind::NotFound,
                format!("{kind} {id} would refer to {missing}, which does not exist"),
            ));
        }
        let now = self.clock_ms;
        self.changed();
        let r = self.get_mut(region, kind, id)?;
        merge(&mut r.resource.spec, spec);
        for (k, v) in tags {
            r.resource.tags.insert(k.clone(), v.clone());
        }
        if let (true, Some(name)) = (kind.named_by_tag(), tags.get("Name")) {
            r.resource.name = name.clone();
        }
        r.resource.depends_on = depends_on.to_vec();
        if kind == Kind::LaunchTemplate {
            // Every change to a launch template is a new version.
            let v = r
                .resource
                .attrs
                .get("latest_version")
                .and_then(Value::as_u64);
            r.resource
                .attrs
                .insert("latest_version".into(), (v.unwrap_or(1) + 1).into());
        }
        r.updated_at_ms = now;
        Ok(r.resource.clone())
    }

    /// Deletes a resource unless another still depends on it.
    pub fn delete(&mut self, region: &str, kind: Kind, id: &str) -> Result<(), CloudError> {
        let arn = self.get(region, kind, id)?.resource.arn.clone();
        // A dependency names an ARN (unambiguous) or an id. Names double as ids for some kinds
        // (subnet groups, tables), so the same id may exist in several regions: an id means the
        // one in the dependent's own region if there is one there, else the one anywhere.
        let dependents: Vec<String> = self
            .all()
            .into_iter()
            .filter(|r| !(r.resource.region == region && r.resource.id == id))
            .filter(|r| {
                r.resource.depends_on.iter().any(|d| {
                    (!arn.is_empty() && *d == arn)
                        || (d == id
                            && (r.resource.region == region
                                || !self
                                    .regions
                                    .get(&r.resource.region)
                                    .is_some_and(|m| m.contains_key(id))))
                })
            })
            .map(|r| format!("{} {}", r.resource.kind, r.resource.name))
            .collect();
        if !dependents.is_empty() {
            return Err(CloudError::new(
                ErrorKind::DependencyViolation,
                format!(
                    "cannot delete {kind} {id}: {} still depend(s) on it",
                    dependents.join(", ")
                ),
            ));
        }
        self.changed();
        if let Some(m) = self.regions.get_mut(region) {
            m.remove(id);
            if m.is_empty() {
                self.regions.remove(region);
            }
        }
        Ok(())
    }

    /// Waits (on the virtual clock) until the resource is available, at most `timeout`.
    pub fn wait_available(
        &mut self,
        region: &str,
        kind: Kind,
        id: &str,
        timeout: Duration,
    ) -> Result<Resource, CloudError> {
        let r = self.get(region, kind, id)?;
        match r.resource.state {
            ResourceState::Available | ResourceState::Modifying => Ok(r.resource.clone()),
            ResourceState::Failed | ResourceState::Deleting => Err(CloudError::new(
                ErrorKind::Unavailable,
                format!(
                    "{kind} {} in {region} is {}",
                    r.resource.name,
                    r.resource.state.name()
                ),
            )),
            ResourceState::Creating => {
                let remaining = r.ready_at_ms.saturating_sub(self.clock_ms);
                let limit = timeout.as_millis() as u64;
                if remaining > limit {
                    let message = format!(
                        "{kind} {} in {region} was not available after {}s",
                        r.resource.name,
                        limit / 1000
                    );
                    self.advance_to(self.clock_ms + limit);
                    return Err(CloudError::new(ErrorKind::Timeout, message));
                }
                self.advance_to(self.clock_ms + remaining);
                Ok(self.get(region, kind, id)?.resource.clone())
            }
        }
    }
}

fn not_found(region: &str, kind: Kind, id: &str) -> CloudError {
    CloudError::new(
        ErrorKind::NotFound,
        format!("{kind} {id} not found in {region}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn req(kind: Kind, region: &str, name: &str, deps: &[&str]) -> CreateRequest {
        CreateRequest {
            parent: None,
            kind,
            region: region.into(),
            name: name.into(),
            spec: json!({"cidr_block": "10.0.0.0/16"}),
            tags: Tags::new(),
            depends_on: deps.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn names_are_unique_and_dependencies_block_deletes() {
        let mut w = World::default();
        let vpc = w
            .create(&req(Kind::Vpc, "eu-south-1", "vpc-prod", &[]))
            .unwrap();
        let err = w.create(&req(Kind::Vpc, "eu-south-1", "vpc-prod", &[]));
        assert_eq!(err.unwrap_err().kind, ErrorKind::Conflict);
        let sub = w
            .create(&req(Kind::Subnet, "eu-south-1", "s", &[&vpc.id]))
            .unwrap();
        let err = w.delete("eu-south-1", Kind::Vpc, &vpc.id).unwrap_err();
        assert_eq!(err.kind, ErrorKind::DependencyViolation);
        w.delete("eu-south-1", Kind::Subnet, &sub.id).unwrap();
        w.delete("eu-south-1", Kind::Vpc, &vpc.id).unwrap();
        assert!(w.is_empty());
    }

    #[test]
    fn waits_move_the_virtual_clock_not_the_wall_clock() {
        let mut w = World::default();
        let nat = w
            .create(&req(Kind::NatGateway, "us-east-1", "nat", &[]))
            .unwrap();
        assert_eq!(nat.state, ResourceState::Creating);
        let before = w.clock_ms;
        let short = w.wait_available(
            "us-east-1",
            Kind::NatGateway,
            &nat.id,
            Duration::from_secs(1),
        );
        assert_eq!(short.unwrap_err().kind, ErrorKind::Timeout);
        let r = w
            .wait_available(
                "us-east-1",
                Kind::NatGateway,
                &nat.id,
                Duration::from_secs(600),
            )
            .unwrap();
        assert_eq!(r.state, ResourceState::Available);
        assert_eq!(w.clock_ms - before, w.config.nat_gateway_create_ms);
    }

    #[test]
    fn global_kinds_live_in_the_global_region() {
        let mut w = World::default();
        let err = w
            .create(&req(Kind::IamRole, "us-east-1", "r", &[]))
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidInput);
        assert!(w.create(&req(Kind::IamRole, GLOBAL, "r", &[])).is_ok());
        let err = w.create(&req(Kind::Vpc, "mars-1", "v", &[])).unwrap_err();
        assert!(err.message.contains("unknown region"));
    }

    #[test]
    fn updates_replace_references_so_the_old_target_can_go() {
        let mut w = World::default();
        let old = w
            .create(&req(Kind::HealthCheck, GLOBAL, "hc", &[]))
            .unwrap();
        let rec = w
            .create(&req(Kind::DnsRecord, GLOBAL, "rec", &[&old.id]))
            .unwrap();
        // Renamed aside by its Name tag, as a health check's name is.
        let mut tags = Tags::new();
        tags.insert("Name".into(), "hc-superseded".into());
        w.update(GLOBAL, Kind::HealthCheck, &old.id, &json!({}), &tags, &[])
            .unwrap();
        assert!(w.find(GLOBAL, Kind::HealthCheck, "hc").is_none());
        let new = w
            .create(&req(Kind::HealthCheck, GLOBAL, "hc", &[]))
            .unwrap();
        let err = w.delete(GLOBAL, Kind::HealthCheck, &old.id).unwrap_err();
        assert_eq!(err.kind, ErrorKind::DependencyViolation);
        let missing = w.update(
            GLOBAL,
            Kind::DnsRecord,
            &rec.id,
            &json!({}),
            &Tags::new(),
            &["nope".into()],
        );
        assert_eq!(missing.unwrap_err().kind, ErrorKind::NotFound);
        w.update(
            GLOBAL,
            Kind::DnsRecord,
            &rec.id,
            &json!({}),
            &Tags::new(),
            &[new.id],
        )
        .unwrap();
        w.delete(GLOBAL, Kind::HealthCheck, &old.id).unwrap();
        // A name that is not a tag stays.
        let mut tags = Tags::new();
        tags.insert("Name".into(), "other".into());
        let r = w
            .update(GLOBAL, Kind::DnsRecord, &rec.id, &json!({}), &tags, &[])
            .unwrap();
        assert_eq!(r.name, "rec");
    }

    /// Routes are found by their table and destination, as in AWS: one CIDR in two tables is
    /// two routes, and a listing of children is per parent.
    #[test]
    fn children_are_found_by_parent_and_name() {
        let mut w = World::default();
        let region = "eu-south-1";
        let a = w
            .create(&req(Kind::RouteTable, region, "rt-a", &[]))
            .unwrap();
        let b = w
            .create(&req(Kind::RouteTable, region, "rt-b", &[]))
            .unwrap();
        let route = |parent: &str| CreateRequest {
            parent: Some(parent.to_string()),
            ..req(Kind::Route, region, "0.0.0.0/0", &[parent])
        };
        let ra = w.create(&route(&a.id)).unwrap();
        let rb = w.create(&route(&b.id)).unwrap();
        assert_ne!(ra.id, rb.id);
        let found = |p: &str| {
            w.lookup(&Identity::child(Kind::Route, region, p, "0.0.0.0/0"))
                .map(|r| r.resource.id.clone())
        };
        assert_eq!(found(&a.id), Some(ra.id.clone()));
        assert_eq!(found(&b.id), Some(rb.id.clone()));
        assert_eq!(found("rtb-nope"), None);
        // Without its parent it is not found, and it cannot be made twice in one table.
        assert!(w.find(region, Kind::Route, "0.0.0.0/0").is_none());
        assert_eq!(
            w.create(&route(&a.id)).unwrap_err().kind,
            ErrorKind::Conflict
        );
        // A parent that does not exist is refused, as AWS refuses a route in no table.
        assert_eq!(
            w.create(&route("rtb-nope")).unwrap_err().kind,
            ErrorKind::NotFound
        );
        let listed = w.list_of(region, Kind::Route, Some(&a.id)).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].id, ra.id);
        assert_eq!(
            w.list_of(region, Kind::Route, None).unwrap_err().kind,
            ErrorKind::InvalidInput
        );
    }

    /// A format 1 world (names drflow made up, no parents) loads with the identities format 2
    /// finds.
    #[test]
    fn old_worlds_get_parents() {
        let mut w = World::default();
        let region = "eu-south-1";
        let rt = w.create(&req(Kind::RouteTable, region, "rt", &[])).unwrap();
        let mut old = req(Kind::Route, region, &format!("{}:10.1.0.0/16", rt.id), &[]);
        old.spec = json!({"route_table_id": rt.id, "destination_cidr_block": "10.1.0.0/16"});
        w.create(&old).unwrap();
        let mut rec = req(Kind::DnsRecord, GLOBAL, "API.example.com. A primary", &[]);
        rec.spec = json!({"hosted_zone_id": "Z1", "name": "API.example.com.", "type": "A", "set_identifier": "primary"});
        w.create(&rec).unwrap();
        w.format = 1;
        w.migrate();
        assert_eq!(w.format, FORMAT);
        assert!(
            w.lookup(&Identity::child(Kind::Route, region, &rt.id, "10.1.0.0/16"))
                .is_some()
        );
        assert!(
            w.lookup(&Identity::child(
                Kind::DnsRecord,
                GLOBAL,
                "Z1",
                "api.example.com. A primary"
            ))
            .is_some()
        );
    }

    #[test]
    fn update_merges_nested_objects() {
        let mut base = json!({"a": {"x": 1, "y": 2}, "b": [1]});
        merge(&mut base, &json!({"a": {"y": 3}, "b": [2]}));
        assert_eq!(base, json!({"a": {"x": 1, "y": 3}, "b": [2]}));
    }
}
