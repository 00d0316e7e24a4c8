//! One conformance suite of the seam ([`CloudBackend`]), run against the sim and against moto.
//!
//! Its cases are every resource the provision runbook makes, as the sim holds them at the end of
//! a provision (both layouts, so every kind the runbooks use; the spec is the last one a step
//! asked for): each is replayed through the verbs, in the order the run made them, on a fresh
//! backend:
//!
//! - `find` before `create` finds nothing;
//! - `create` returns what was asked (kind, region, parent, name; every tag on a taggable kind,
//!   none on the others), and `wait_available` sees it available;
//! - `find` returns the same resource, and once all are made, with no drift from what was
//!   asked;
//! - a second `create` at the same identity is a `Conflict`, or answers with the same resource
//!   where the cloud's create is idempotent (not tried for kinds named by a tag, which AWS
//!   lets two resources share);
//! - `list` of its kind (under its parent) holds it;
//! - the failover runbook's typed actions agree with what was made: alarms described, a
//!   group's desired capacity changed and read back, a record's weight set and the other kept,
//!   a message published to every topic, the global cluster's members and its one writer, the
//!   target groups' health;
//! - `update` adds a tag to a taggable kind (the spec unchanged), and changes a value where
//!   [`value_update`] names one for the kind;
//! - then, newest first, `delete` (a `DependencyViolation` waits for a later pass),
//!   `wait_deleted`, and `find` finds nothing.
//!
//! References between resources (ids, ARNs, names the cloud mints) are replaced by the target
//! backend's own as the replay goes. On moto, what moto accepts and does not store is allowed
//! to drift ([`MOTO_DOES_NOT_STORE`]). The endpoint
//! comes from `DRFLOW_MOTO_ENDPOINT`; without it the moto half says SKIPPED, and fails when
//! `CI` is set.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::Cloud;
use drflow_steps::aws::{AwsBackend, AwsSettings, MOTO_DOES_NOT_STORE, StaticKeys};
use drflow_steps::backend::{
    CloudBackend, CreateRequest, ErrorKind, Identity, Kind, Label, Resource, ResourceState,
    UpdateRequest,
};
use drflow_steps::{SimBackend, spec_drift};
use serde_json::{Value, json};

/// Kinds whose second create moto answers with a second resource of the same name, where AWS
/// answers with the first (CreateLoadBalancer and CreateListener are idempotent) or refuses it.
const MOTO_MAKES_DUPLICATES: &[Kind] = &[Kind::LoadBalancer, Kind::Listener];

/// The tag the framework puts on what a run created: the replay is no run.
const CREATED_BY_TAG: &str = "drflow:created-by-run";

/// How long a verb may wait for the cloud: an Aurora instance takes about ten minutes on AWS
/// and in the sim (virtual time there), moto issues a certificate after about a minute.
const WAIT: Duration = Duration::from_secs(3600);

/// One resource of the recorded provision, as a request.
struct Case {
    /// The resource as the sim made it (its id, ARN and attributes are the sim's).
    recorded: Resource,
    request: CreateRequest,
}

/// Every resource a provision of `params` made on the sim, oldest first, as requests.
async fn recorded(params: &str, suffix: &str, domain: &str) -> Vec<Case> {
    let cloud = Cloud::new();
    cloud
        .run_with(
            "provision.yaml",
            params,
            &[("env_suffix", suffix), ("domain_name", domain)],
        )
        .await;
    cloud
        .all()
        .into_iter()
        .map(|r| {
            // The spec as the step asked for it, computed keys included: some are asked for
            // at creation and decided by the cloud afterwards (a cluster's `global_role`).
            let spec = r.spec.clone();
            let mut tags = r.tags.clone();
            tags.remove(CREATED_BY_TAG);
            let request = CreateRequest {
                kind: r.kind,
                region: r.region.clone(),
                name: r.name.clone(),
                parent: r.parent.clone(),
                spec,
                tags,
                depends_on: r.depends_on.clone(),
            };
            Case {
                recorded: r,
                request,
            }
        })
        .collect()
}

/// Strings of the recorded run and what they are on the target: ids, ARNs, minted names.
#[derive(Default)]
struct Refs(Vec<(String, String)>);

impl Refs {
    fn add(&mut self, old: &str, new: &str) {
        // Short values ("true", a port) are not references.
        if old != new && old.len() >= 6 && !self.0.iter().any(|(o, _)| o == old) {
            self.0.push((old.to_string(), new.to_string()));
            // Longest first, so an ARN is replaced whole before the id inside it.
            self.0.sort_by_key(|(o, _)| std::cmp::Reverse(o.len()));
        }
    }

    /// What the recorded run knew as `old` and the target as `new`.
    fn learn(&mut self, old: &Resource, new: &Resource) {
        self.add(&old.id, &new.id);
        self.add(&old.arn, &new.arn);
        for (k, v) in &old.attrs {
            if let (Some(o), Some(n)) = (v.as_str(), new.attrs.get(k).and_then(Value::as_str)) {
                self.add(o, n);
            }
        }
    }

    fn str(&self, s: &str) -> String {
        let mut out = s.to_string();
        for (o, n) in &self.0 {
            if out.contains(o.as_str()) {
                out = out.replace(o.as_str(), n);
            }
        }
        out
    }

    fn value(&self, v: &Value) -> Value {
        match v {
            Value::String(s) => Value::String(self.str(s)),
            Value::Array(a) => Value::Array(a.iter().map(|v| self.value(v)).collect()),
            // Keys are names the step chose (a policy's name, a tag's key), never minted.
            Value::Object(m) => {
                Value::Object(m.iter().map(|(k, v)| (k.clone(), self.value(v))).collect())
            }
            v => v.clone(),
        }
    }

    fn request(&self, r: &CreateRequest) -> CreateRequest {
        CreateRequest {
            kind: r.kind,
            region: r.region.clone(),
            name: self.str(&r.name),
            parent: r.parent.as_deref().map(|p| self.str(p)),
            spec: self.value(&r.spec),
            tags: r
                .tags
                .iter()
                .map(|(k, v)| (k.clone(), self.str(v)))
                .collect(),
            depends_on: r.depends_on.iter().map(|d| self.str(d)).collect(),
        }
    }
}

/// A value change that both AWS and the sim make in place, for the kinds that have a simple
/// one: (kind, dotted path, new value).
fn value_update(kind: Kind) -> Option<(&'static str, Value)> {
    Some(match kind {
        Kind::SqsQueue => ("visibility_timeout_seconds", json!(45)),
        Kind::MetricAlarm => ("evaluation_periods", json!(4)),
        Kind::HealthCheck => ("failure_threshold", json!(4)),
        Kind::SnsTopic => ("display_name", json!("conformance")),
        Kind::Vpc => ("enable_dns_hostnames", json!(false)),
        Kind::TargetGroup => ("health_check.path", json!("/health/conformance")),
        _ => return None,
    })
}

fn identity(r: &CreateRequest) -> Identity {
    Identity {
        kind: r.kind,
        region: r.region.clone(),
        parent: r.parent.clone(),
        name: r.name.clone(),
    }
}

fn label(r: &CreateRequest) -> String {
    Label {
        kind: r.kind.name(),
        name: &r.name,
        parent: r.parent.as_deref(),
        region: &r.region,
    }
    .to_string()
}

fn set_path(v: &mut Value, path: &str, new: Value) {
    let mut at = v;
    let parts: Vec<&str> = path.split('.').collect();
    for p in &parts[..parts.len() - 1] {
        at = &mut at[*p];
    }
    at[parts[parts.len() - 1]] = new;
}

/// The drift that is not the target's known gap.
fn drift(target: &str, kind: Kind, want: &Value, have: &Value) -> Vec<String> {
    spec_drift(kind, want, have)
        .into_iter()
        .filter(|p| !(target == "moto" && MOTO_DOES_NOT_STORE.contains(&(kind, p.as_str()))))
        .collect()
}

/// Replays `cases` on `b` (named `target` in messages) and checks every verb.
async fn conform(target: &str, b: &dyn CloudBackend, cases: &[Case], mut refs: Refs) {
    let mut made: Vec<(CreateRequest, Resource)> = Vec::new();
    let mut later: Vec<usize> = Vec::new();
    for case in cases {
        let req = refs.request(&case.request);
        let what = format!("{target}: {}", label(&req));
        let id = identity(&req);
        assert!(
            b.find(&id).await.expect(&what).is_none(),
            "{what}: found before it was made"
        );
        let r = b
            .create(&req)
            .await
            .unwrap_or_else(|e| panic!("{what}: create: {e}"));
        assert_eq!(
            (r.kind, &r.region, &r.name, &r.parent),
            (req.kind, &req.region, &req.name, &req.parent),
            "{what}: create returned another identity"
        );
        if req.kind.taggable() {
            for (k, v) in &req.tags {
                assert_eq!(r.tags.get(k), Some(v), "{what}: tag {k} after create");
            }
        } else {
            assert!(r.tags.is_empty(), "{what}: an untaggable kind has tags");
        }
        // A certificate is issued once its validation record exists, which comes later.
        let r = if r.state == ResourceState::Available || req.kind == Kind::Certificate {
            if r.state != ResourceState::Available {
                later.push(made.len());
            }
            r
        } else {
            b.wait_available(&r, WAIT)
                .await
                .unwrap_or_else(|e| panic!("{what}: wait_available: {e}"))
        };
        refs.learn(&case.recorded, &r);
        let found = b
            .find(&id)
            .await
            .expect(&what)
            .unwrap_or_else(|| panic!("{what}: not found after create"));
        assert_eq!(found.id, r.id, "{what}: find returned another resource");
        // AWS keeps no name of a kind named by a tag unique: a second create would make a
        // second resource there.
        let may_duplicate = req.kind.named_by_tag()
            || (target == "moto" && MOTO_MAKES_DUPLICATES.contains(&req.kind));
        if !may_duplicate {
            match b.create(&req).await {
                Err(e) if e.kind == ErrorKind::Conflict => {}
                // An idempotent create (SNS topics, SQS queues) answers with the one there is.
                Ok(same) if same.id == found.id => {}
                other => panic!(
                    "{what}: a second create is a conflict or the same resource, not {:?}",
                    other.map(|r| r.id)
                ),
            }
        }
        let listed = b
            .list(&req.region, req.kind, req.parent.as_deref())
            .await
            .unwrap_or_else(|e| panic!("{what}: list: {e}"));
        assert!(
            listed.iter().any(|l| l.id == found.id),
            "{what}: not listed"
        );
        made.push((req, found));
    }
    for i in later {
        let (req, r) = &made[i];
        b.wait_available(r, WAIT)
            .await
            .unwrap_or_else(|e| panic!("{target}: {}: wait_available: {e}", label(req)));
    }

    // What each resource is once all are made (a source table lists the replica made after
    // it) is what the recorded run asked for.
    for (req, r) in &made {
        let what = format!("{target}: {}", label(req));
        let found = b
            .find(&identity(req))
            .await
            .expect(&what)
            .unwrap_or_else(|| panic!("{what}: gone"));
        assert_eq!(found.id, r.id, "{what}: find returned another resource");
        let drifted = drift(target, req.kind, &req.spec, &found.spec);
        assert!(
            drifted.is_empty(),
            "{what}: found differing from what was asked at {drifted:?}\nasked {:#}\nfound {:#}",
            req.spec,
            found.spec
        );
    }

    typed_actions(target, b, &made).await;

    // Updates: a tag on every taggable kind; a value where the kind has a simple one.
    let mut value_kinds = std::collections::BTreeSet::new();
    for (req, r) in &made {
        let what = format!("{target}: {}", label(req));
        let mut spec = req.spec.clone();
        let mut drifted = Vec::new();
        // Only a value this resource was asked for (a queue without a visibility timeout of
        // its own keeps the default).
        if let Some((path, v)) = value_update(req.kind)
            .filter(|(path, _)| path.split('.').try_fold(&spec, |v, k| v.get(k)).is_some())
        {
            set_path(&mut spec, path, v);
            drifted.push(path.to_string());
            value_kinds.insert(req.kind);
        }
        let mut tags = req.tags.clone();
        if req.kind.taggable() {
            tags.insert("Conformance".into(), "1".into());
        } else if drifted.is_empty() {
            continue;
        }
        let update = UpdateRequest {
            spec: spec.clone(),
            drifted,
            tags: tags.clone(),
            depends_on: r.depends_on.clone(),
        };
        b.update(r, &update)
            .await
            .unwrap_or_else(|e| panic!("{what}: update: {e}"));
        let after = b
            .find(&identity(req))
            .await
            .expect(&what)
            .unwrap_or_else(|| panic!("{what}: gone after update"));
        let left = drift(target, req.kind, &spec, &after.spec);
        assert!(
            left.is_empty(),
            "{what}: still differs after update at {left:?}"
        );
        if req.kind.taggable() {
            assert_eq!(
                after.tags.get("Conformance").map(String::as_str),
                Some("1"),
                "{what}: the tag update"
            );
        }
    }
    assert!(
        value_kinds.len() >= 5,
        "{target}: values changed on {value_kinds:?} only"
    );

    // Teardown, newest first, in passes: what the cloud says others still depend on
    // (`DependencyViolation`: a global cluster with members) waits for a later pass.
    let mut pending: Vec<&CreateRequest> = made.iter().rev().map(|(req, _)| req).collect();
    while !pending.is_empty() {
        let mut blocked = Vec::new();
        for req in &pending {
            let what = format!("{target}: {}", label(req));
            let id = identity(req);
            // A child may have gone with its parent, so find it again rather than trusting
            // what was made.
            let Some(current) = b.find(&id).await.expect(&what) else {
                continue;
            };
            match b.delete(&current).await {
                Ok(()) => {}
                Err(e) if e.kind == ErrorKind::NotFound => continue,
                Err(e) if e.kind == ErrorKind::DependencyViolation => {
                    blocked.push(*req);
                    continue;
                }
                Err(e) => panic!("{what}: delete: {e}"),
            }
            b.wait_deleted(&current, WAIT)
                .await
                .unwrap_or_else(|e| panic!("{what}: wait_deleted: {e}"));
            assert!(
                b.find(&id).await.expect(&what).is_none(),
                "{what}: found after delete"
            );
        }
        assert!(
            blocked.len() < pending.len(),
            "{target}: nothing more can be deleted: {:?}",
            blocked.iter().map(|r| label(r)).collect::<Vec<_>>()
        );
        pending = blocked;
    }
}

fn of_kind(made: &[(CreateRequest, Resource)], kind: Kind) -> Vec<&Resource> {
    made.iter()
        .filter(|(r, _)| r.kind == kind)
        .map(|(_, r)| r)
        .collect()
}

/// The failover runbook's typed actions ([`drflow_steps::backend::FailoverApi`]) on what the
/// replay made, where both the sim and moto have them: what each returns agrees with the
/// resources, and what an action changes, the matching read shows.
async fn typed_actions(target: &str, b: &dyn CloudBackend, made: &[(CreateRequest, Resource)]) {
    // Alarms: every alarm made is described, by a prefix of its name.
    for a in of_kind(made, Kind::MetricAlarm) {
        let got = b
            .describe_alarms(&a.region, Some(&a.name))
            .await
            .unwrap_or_else(|e| panic!("{target}: describe_alarms {}: {e}", a.name));
        assert!(
            got.iter().any(|s| s.name == a.name && s.region == a.region),
            "{target}: describe_alarms does not show {}",
            a.name
        );
    }

    // Auto Scaling: the group's sizes as made; one more instance asked for shows.
    let groups = of_kind(made, Kind::AutoScalingGroup);
    assert!(!groups.is_empty());
    for g in groups {
        let what = format!("{target}: group {} ({})", g.name, g.region);
        let before = b
            .describe_auto_scaling_group(&g.region, &g.name)
            .await
            .unwrap_or_else(|e| panic!("{what}: describe: {e}"));
        assert_eq!(
            u64::from(before.desired_capacity),
            g.spec["desired_capacity"].as_u64().unwrap(),
            "{what}"
        );
        let want = (before.desired_capacity + 1).min(before.max_size);
        let after = b
            .update_auto_scaling_group(&g.region, &g.name, None, None, Some(want))
            .await
            .unwrap_or_else(|e| panic!("{what}: update: {e}"));
        assert_eq!(
            (after.desired_capacity, after.min_size, after.max_size),
            (want, before.min_size, before.max_size),
            "{what}: only the desired capacity changes"
        );
        let read = b
            .describe_auto_scaling_group(&g.region, &g.name)
            .await
            .unwrap_or_else(|e| panic!("{what}: describe: {e}"));
        assert_eq!(read.desired_capacity, want, "{what}");
        b.update_auto_scaling_group(
            &g.region,
            &g.name,
            None,
            None,
            Some(before.desired_capacity),
        )
        .await
        .unwrap_or_else(|e| panic!("{what}: update back: {e}"));
    }

    // Route 53: the weighted records as made; a weight set shows, the other record kept.
    let weighted: Vec<&Resource> = of_kind(made, Kind::DnsRecord)
        .into_iter()
        .filter(|r| r.spec.get("weight").is_some_and(|w| !w.is_null()))
        .collect();
    if let Some(r) = weighted.first() {
        let zone = r.parent.as_deref().unwrap();
        let name = r.spec["name"].as_str().unwrap();
        let set = r.spec["set_identifier"].as_str().unwrap();
        let what = format!("{target}: record {name} {set}");
        let listed = b
            .list_resource_record_sets(zone, name)
            .await
            .unwrap_or_else(|e| panic!("{what}: list: {e}"));
        assert_eq!(listed.len(), weighted.len(), "{what}: {listed:?}");
        let old = r.spec["weight"].as_u64().unwrap() as u8;
        let new = if old == 0 { 7 } else { old - 1 };
        let change = b
            .set_record_weight(zone, name, r.spec["type"].as_str().unwrap(), set, new)
            .await
            .unwrap_or_else(|e| panic!("{what}: set weight: {e}"));
        b.get_change(&change.id)
            .await
            .unwrap_or_else(|e| panic!("{what}: get_change: {e}"));
        let listed = b.list_resource_record_sets(zone, name).await.unwrap();
        let weight_of = |id: &str| {
            listed
                .iter()
                .find(|s| s.set_identifier.as_deref() == Some(id))
                .and_then(|s| s.weight)
        };
        assert_eq!(weight_of(set), Some(new), "{what}");
        for other in &weighted[1..] {
            let id = other.spec["set_identifier"].as_str().unwrap();
            assert_eq!(
                weight_of(id).map(u64::from),
                other.spec["weight"].as_u64(),
                "{what}: {id} kept its weight"
            );
        }
        b.set_record_weight(zone, name, r.spec["type"].as_str().unwrap(), set, old)
            .await
            .unwrap_or_else(|e| panic!("{what}: set weight back: {e}"));
    }

    // SNS: a message to every topic gets an id.
    for t in of_kind(made, Kind::SnsTopic) {
        let id = b
            .publish(&t.region, &t.arn, "conformance", "a test message")
            .await
            .unwrap_or_else(|e| panic!("{target}: publish to {}: {e}", t.arn));
        assert!(!id.is_empty(), "{target}: publish returned no message id");
    }

    // Aurora: the global cluster's members are the clusters made, one writer.
    let clusters = of_kind(made, Kind::DbCluster);
    for g in of_kind(made, Kind::GlobalCluster) {
        let what = format!("{target}: global cluster {}", g.name);
        let status = b
            .describe_global_cluster(&g.name)
            .await
            .unwrap_or_else(|e| panic!("{what}: describe: {e}"));
        let mut members: Vec<&str> = status
            .members
            .iter()
            .map(|m| m.db_cluster_arn.as_str())
            .collect();
        members.sort_unstable();
        let mut want: Vec<&str> = clusters.iter().map(|c| c.arn.as_str()).collect();
        want.sort_unstable();
        assert_eq!(members, want, "{what}");
        assert_eq!(
            status.members.iter().filter(|m| m.is_writer).count(),
            1,
            "{what}: one writer"
        );
    }

    // Target groups: their health reads.
    for tg in of_kind(made, Kind::TargetGroup) {
        b.describe_target_health(&tg.region, &tg.arn)
            .await
            .unwrap_or_else(|e| panic!("{target}: describe_target_health {}: {e}", tg.name));
    }
}

/// A suffix and domain no other test (or earlier run on the same moto) uses.
fn unique() -> (String, String) {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let suffix = format!("cf{:06x}", (n ^ u128::from(std::process::id())) & 0xff_ffff);
    let domain = format!("{suffix}.example.com");
    (suffix, domain)
}

async fn on_sim(params: &str) {
    let (suffix, domain) = unique();
    let cases = recorded(params, &suffix, &domain).await;
    assert!(cases.len() > 50, "{} resources", cases.len());
    let dir = tempfile::tempdir().unwrap();
    let sim = Arc::new(SimBackend::open(dir.path()));
    conform("sim", sim.as_ref(), &cases, Refs::default()).await;
    assert!(
        sim.snapshot().unwrap().is_empty(),
        "the sim holds leftovers"
    );
}

async fn on_moto(params: &str) {
    let Some(ep) = moto() else { return };
    let (suffix, domain) = unique();
    let cases = recorded(params, &suffix, &domain).await;
    let b = AwsBackend::new(AwsSettings {
        static_keys: Some(StaticKeys {
            access_key_id: "testing".into(),
            secret_access_key: "testing".into(),
        }),
        profile: None,
        endpoint_url: Some(ep),
    });
    let mut refs = Refs::default();
    // The sim's account and moto's.
    refs.add("000000000000", "123456789012");
    conform("moto", &b, &cases, refs).await;
}

fn moto() -> Option<String> {
    match std::env::var("DRFLOW_MOTO_ENDPOINT") {
        Ok(ep) if !ep.trim().is_empty() => Some(ep.trim().trim_end_matches('/').to_string()),
        _ if std::env::var_os("CI").is_some() => {
            panic!("moto is required in CI: DRFLOW_MOTO_ENDPOINT is not set")
        }
        _ => {
            eprintln!("SKIPPED (no moto): set DRFLOW_MOTO_ENDPOINT to a running moto_server");
            None
        }
    }
}

#[tokio::test]
async fn every_kind_of_the_eu_provision_conforms_on_the_sim() {
    on_sim("eu.yaml").await;
}

#[tokio::test]
async fn every_kind_of_the_us_east_provision_conforms_on_the_sim() {
    on_sim("us-east.yaml").await;
}

/// Runs the moto half on worker threads with the stacks the CLI gives the aws target (the
/// SDK's futures are large in a debug build).
fn on_moto_runtime(params: &'static str) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_stack_size(16 << 20)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(rt.spawn(on_moto(params))).unwrap();
}

#[test]
fn every_kind_of_the_eu_provision_conforms_on_moto() {
    on_moto_runtime("eu.yaml");
}

#[test]
fn every_kind_of_the_us_east_provision_conforms_on_moto() {
    on_moto_runtime("us-east.yaml");
}
