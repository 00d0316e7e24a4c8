//! Drift and undo: a resource changed or deleted behind drflow's back is repaired by the next
//! provision and reported as such; every step's undo removes what it made.

mod common;

use common::{Cloud, at, changed, outputs};
use drflow_engine::{Outputs, StepContext};
use drflow_steps::backend::{GLOBAL, Kind};
use serde_json::json;

const PARAMS: &str = "eu.yaml";

fn ctx(step: &str, previous: Option<Outputs>) -> StepContext {
    let mut c = StepContext::detached(step);
    c.previous_outputs = previous;
    c
}

#[tokio::test]
async fn changed_resources_are_repaired_and_reported_as_updated() {
    let cloud = Cloud::new();
    cloud.run("provision.yaml", PARAMS).await;
    // Behind drflow's back: open the DB to the world, slow the health check, suspend versioning,
    // and re-tag a VPC.
    cloud
        .sim
        .mutate(|w| {
            for r in w.regions.values_mut().flat_map(|m| m.values_mut()) {
                let res = &mut r.resource;
                match (res.kind, res.name.as_str()) {
                    (Kind::SecurityGroup, "db-sg-prod-eu") if res.region == "eu-south-1" => {
                        res.spec["ingress"] = json!([{"protocol": "tcp", "from_port": 5432, "to_port": 5432, "cidr_ipv4": "0.0.0.0/0"}]);
                    }
                    (Kind::HealthCheck, "health-check-primary-prod-eu") => {
                        res.spec["failure_threshold"] = json!(10);
                    }
                    (Kind::S3Bucket, _) if res.region == "eu-central-1" => {
                        res.spec["versioning"] = json!("Suspended");
                    }
                    (Kind::Vpc, _) if res.region == "eu-central-1" => {
                        res.tags.insert("FailoverRole".into(), "Primary".into());
                    }
                    _ => {}
                }
            }
        })
        .unwrap();
    let report = cloud.run("provision.yaml", PARAMS).await;
    let mut got: Vec<(String, String)> = changed(&report)
        .into_iter()
        .map(|(s, c, _)| (s, c))
        .collect();
    got.sort();
    let want = [
        ("artifacts", "updated"),
        ("hc_primary", "updated"),
        ("sg_primary", "updated"),
        ("vpc_standby", "updated"),
    ];
    assert_eq!(got, want.map(|(a, b)| (a.to_string(), b.to_string())));
    let lines = changed(&report)
        .into_iter()
        .find(|(s, _, _)| s == "sg_primary")
        .unwrap()
        .2;
    assert!(lines.to_string().contains("ingress"), "{lines}");
    // Repaired for real.
    let db = cloud.one("eu-south-1", Kind::SecurityGroup, "db-sg-prod-eu");
    assert!(at(&db, "ingress.0.source_security_group_id").is_string());
    let hc = cloud.one(GLOBAL, Kind::HealthCheck, "health-check-primary-prod-eu");
    assert_eq!(at(&hc, "failure_threshold"), &json!(3));
    // And a third run finds nothing to do.
    assert_eq!(changed(&cloud.run("provision.yaml", PARAMS).await), vec![]);
}

#[tokio::test]
async fn deleted_resources_are_recreated_without_duplicates() {
    let cloud = Cloud::new();
    cloud.run("provision.yaml", PARAMS).await;
    let before = cloud.all().len();
    let gone = [
        "alarm-events-prod-eu",
        "replication-lag-alarm-prod-eu",
        "failover-dashboard-prod-eu",
    ];
    cloud
        .sim
        .mutate(|w| {
            for m in w.regions.values_mut() {
                m.retain(|_, r| {
                    !gone.contains(&r.resource.name.as_str()) || r.resource.kind == Kind::EventRule
                });
            }
        })
        .unwrap();
    // The queue's rule still points at the old queue: dependencies in the sim are by id, so
    // the re-created queue gets a new id and the rule is repaired to point at it.
    assert_eq!(cloud.all().len(), before - 3);
    let report = cloud.run("provision.yaml", PARAMS).await;
    let steps: Vec<String> = changed(&report).into_iter().map(|(s, _, _)| s).collect();
    assert!(
        steps.contains(&"alarm_queue".to_string())
            && steps.contains(&"alarms".to_string())
            && steps.contains(&"dashboard".to_string()),
        "{steps:?}"
    );
    assert_eq!(
        cloud.all().len(),
        before,
        "re-created exactly what was missing"
    );
    let queue = cloud.one("eu-central-1", Kind::SqsQueue, "alarm-events-prod-eu");
    let rule = cloud.one(
        "eu-central-1",
        Kind::EventRule,
        "alarm-state-change-prod-eu",
    );
    assert_eq!(at(&rule, "targets.0.arn"), &json!(queue.arn));
    assert_eq!(changed(&cloud.run("provision.yaml", PARAMS).await), vec![]);
}

#[tokio::test]
async fn every_steps_undo_removes_what_it_made_in_reverse_order() {
    let cloud = Cloud::new();
    let report = cloud.run("provision.yaml", PARAMS).await;
    assert!(!cloud.world().is_empty());
    // Rollback order: the reverse of completion, which respects every dependency.
    for step in report.steps.iter().rev() {
        let ty = cloud.registry.get(&step.uses).unwrap();
        if !ty.spec().has_undo {
            continue;
        }
        let prev = outputs(&report, &step.id).clone();
        let c = ctx(&step.id, Some(prev));
        ty.undo(&c, &Outputs::new())
            .await
            .unwrap_or_else(|e| panic!("undo {}: {e}", step.id));
        // Undo is idempotent: undoing again succeeds and deletes nothing.
        let again = ty.undo(&c, &Outputs::new()).await.unwrap();
        assert_eq!(again["deleted"], json!([]), "second undo of {}", step.id);
    }
    assert!(
        cloud.world().is_empty(),
        "left: {:?}",
        cloud
            .all()
            .iter()
            .map(|r| (r.kind, r.name.clone()))
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_half_built_environment_is_completed_without_duplicates() {
    // Stands in for a provision interrupted half-way: the first steps' resources exist, the
    // rest do not. A fresh run must create only the rest.
    let full = Cloud::new();
    full.run("provision.yaml", PARAMS).await;
    let expected = full.all().len();
    let cloud = Cloud::new();
    let report = cloud.run("provision.yaml", PARAMS).await;
    for step in report.steps.iter().rev().take(15) {
        let ty = cloud.registry.get(&step.uses).unwrap();
        if ty.spec().has_undo {
            ty.undo(
                &ctx(&step.id, Some(outputs(&report, &step.id).clone())),
                &Outputs::new(),
            )
            .await
            .unwrap();
        }
    }
    let partial = cloud.all().len();
    assert!(partial > 0 && partial < expected);
    let resumed = cloud.run("provision.yaml", PARAMS).await;
    assert_eq!(cloud.all().len(), expected);
    let created: Vec<String> = changed(&resumed)
        .into_iter()
        .map(|(s, c, _)| format!("{s}:{c}"))
        .collect();
    assert!(
        created.iter().all(|c| c.ends_with(":created")),
        "{created:?}"
    );
    assert_eq!(resumed.outputs["failover_ready"], json!(true));
}

#[tokio::test]
async fn the_world_is_shared_by_separate_backends_on_one_state_dir() {
    // Separate processes each open their own backend on the state dir: provision in one,
    // inspect and destroy in others.
    let cloud = Cloud::new();
    cloud.run("provision.yaml", PARAMS).await;
    let other = drflow_steps::SimBackend::open(cloud.dir.path());
    assert_eq!(other.snapshot().unwrap().len(), cloud.all().len());
    let table = drflow_steps::sim::show(cloud.dir.path()).unwrap();
    assert!(
        table.contains("eu-south-1")
            && table.contains("vpc-prod-eu")
            && table.contains("available")
    );
    drflow_steps::sim::reset(cloud.dir.path()).unwrap();
    assert!(other.snapshot().unwrap().is_empty());
}
