//! Every spec key a step writes has a class in its kind's table, so drift knows whether to
//! compare it, and a resource read back as the cloud returns it is no drift against itself.

mod common;

use common::Cloud;
use drflow_steps::backend::{KeyClass, Resource, as_returned};
use drflow_steps::sim::World;
use serde_json::Value;

/// Every dotted key path of a spec (objects only: list items belong to their list's key).
fn paths(v: &Value, prefix: &str, out: &mut Vec<String>) {
    if let Value::Object(m) = v {
        for (k, v) in m {
            let p = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            paths(v, &p, out);
            out.push(p);
        }
    }
}

fn resources(world: &World) -> Vec<Resource> {
    world
        .all()
        .into_iter()
        .map(|r| r.resource.clone())
        .collect()
}

fn unclassified(world: &World) -> Vec<String> {
    let mut missing = Vec::new();
    for r in resources(world) {
        let mut ps = Vec::new();
        paths(&r.spec, "", &mut ps);
        for p in ps {
            if r.kind.spec_key(&p).is_none() {
                missing.push(format!("{} {}", r.kind, p));
            }
        }
    }
    missing.sort();
    missing.dedup();
    missing
}

async fn provisioned(params: &str) -> World {
    let cloud = Cloud::new();
    cloud.run("provision.yaml", params).await;
    cloud.world()
}

#[tokio::test]
async fn every_spec_key_provision_writes_has_a_class_in_both_layouts() {
    for world in [provisioned("us-east.yaml").await, common::provisioned_eu()] {
        assert!(
            world.len() > 50,
            "provision built too little: {}",
            world.len()
        );
        let missing = unclassified(&world);
        assert!(
            missing.is_empty(),
            "spec keys without a class in backend/keys.rs: {missing:?}"
        );
    }
}

#[tokio::test]
async fn a_resource_as_the_cloud_returns_it_is_no_drift() {
    let world = common::provisioned_eu();
    let mut stripped = 0;
    for r in resources(&world) {
        let asked = r.spec.clone();
        let returned = as_returned(r.clone());
        let mut ps = Vec::new();
        paths(&returned.spec, "", &mut ps);
        assert!(
            ps.iter()
                .all(|p| r.kind.key_class(p) != KeyClass::WriteOnly),
            "{} {} still returns a write-only key",
            r.kind,
            r.name
        );
        if returned.spec != asked {
            stripped += 1;
        }
        let drift = drflow_steps::spec_drift(r.kind, &asked, &returned.spec);
        assert!(drift.is_empty(), "{} {}: {drift:?}", r.kind, r.name);
    }
    // Buckets, the zone, the Aurora clusters, the subnets, KMS keys, the Lambda function...
    assert!(
        stripped >= 10,
        "only {stripped} resources had write-only keys"
    );
}
