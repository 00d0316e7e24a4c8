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
    c.run_id = common::RUN_ID.into();
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
    // Each repair line reads back as a change, which the binary's summary counts.
    for line in lines.as_array().unwrap() {
        assert_eq!(
            drflow_steps::Change::of_line(line.as_str().unwrap()),
            Some(drflow_steps::Change::Updated),
            "{line}"
        );
    }
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

/// The error of a failed step of a run.
fn step_error(report: &drflow_engine::RunReport, step: &str) -> String {
    report
        .steps
        .iter()
        .find(|s| s.id == step)
        .and_then(|s| s.error.as_ref())
        .unwrap_or_else(|| panic!("step {step} did not fail"))
        .to_string()
}

#[tokio::test]
async fn an_immutable_health_check_field_is_repaired_by_replacing_it_and_repointing_dns() {
    // QA's case: the primary health check's request interval edited to 30 s behind drflow's
    // back. Route 53 cannot change an interval in place, and a health check holds no data: the
    // repair creates a new one, the DNS records, alarms and dashboard move to it in the same
    // run, and the old one is deleted once nothing uses it.
    let cloud = Cloud::new();
    cloud.run("provision.yaml", "us-east.yaml").await;
    let before = cloud.all().len();
    let old = cloud.one(GLOBAL, Kind::HealthCheck, "health-check-primary-prod-us");
    cloud
        .sim
        .mutate(|w| {
            let r = w.regions.get_mut(GLOBAL).unwrap().get_mut(&old.id).unwrap();
            r.resource.spec["request_interval"] = json!(30);
        })
        .unwrap();

    let report = cloud.run("provision.yaml", "us-east.yaml").await;
    let mut got: Vec<(String, String)> = changed(&report)
        .into_iter()
        .map(|(s, c, _)| (s, c))
        .collect();
    got.sort();
    let want = [
        ("alarms", "updated"),
        ("dashboard", "updated"),
        ("dns", "updated"),
        ("hc_primary", "updated"),
        ("superseded", "deleted"),
    ];
    assert_eq!(got, want.map(|(a, b)| (a.to_string(), b.to_string())));
    let hc_lines = outputs(&report, "hc_primary")["changes"].to_string();
    assert!(
        hc_lines.contains("replaced") && hc_lines.contains("request_interval"),
        "{hc_lines}"
    );

    let new = cloud.one(GLOBAL, Kind::HealthCheck, "health-check-primary-prod-us");
    assert_ne!(new.id, old.id, "a new health check");
    assert_eq!(at(&new, "request_interval"), &json!(10));
    assert!(
        cloud.all().iter().all(|r| r.id != old.id),
        "the old health check is gone"
    );
    assert_eq!(
        cloud.all().len(),
        before,
        "nothing left behind, nothing doubled"
    );
    assert_eq!(report.outputs["primary_health_check_id"], json!(new.id));
    // Everything that pointed at the old one points at the new one.
    let record = cloud
        .global(Kind::DnsRecord)
        .into_iter()
        .find(|r| at(r, "set_identifier") == "primary")
        .unwrap();
    assert_eq!(at(&record, "health_check_id"), &json!(new.id));
    assert!(record.depends_on.contains(&new.id));
    let alarm = cloud.one(
        "us-east-1",
        Kind::MetricAlarm,
        "health-check-alarm-primary-prod-us",
    );
    assert_eq!(at(&alarm, "dimensions.HealthCheckId"), &json!(new.id));
    let dash = cloud.one("us-east-2", Kind::Dashboard, "failover-dashboard-prod-us");
    assert!(dash.spec.to_string().contains(&new.id));
    assert!(!dash.spec.to_string().contains(&old.id));
    assert_eq!(report.outputs["failover_ready"], json!(true));
    // And the next run finds nothing to do.
    assert_eq!(
        changed(&cloud.run("provision.yaml", "us-east.yaml").await),
        vec![]
    );
}

#[tokio::test]
async fn a_replacement_left_half_done_is_finished_by_the_next_run() {
    // A run that renamed the old health check aside, created the new one and then died: the
    // next run repoints the records and deletes the old one.
    let cloud = Cloud::new();
    cloud.run("provision.yaml", PARAMS).await;
    let old = cloud.one(GLOBAL, Kind::HealthCheck, "health-check-standby-prod-eu");
    cloud
        .sim
        .mutate(|w| {
            let r = w.regions.get_mut(GLOBAL).unwrap().get_mut(&old.id).unwrap();
            r.resource.name = "health-check-standby-prod-eu-superseded".into();
            r.resource.tags.insert(
                "drflow:superseded".into(),
                "health-check-standby-prod-eu".into(),
            );
        })
        .unwrap();
    let report = cloud.run("provision.yaml", PARAMS).await;
    assert_eq!(outputs(&report, "hc_standby")["change"], json!("created"));
    assert_eq!(outputs(&report, "superseded")["change"], json!("deleted"));
    assert!(cloud.all().iter().all(|r| r.id != old.id));
    assert_eq!(cloud.global(Kind::HealthCheck).len(), 2);
    assert_eq!(changed(&cloud.run("provision.yaml", PARAMS).await), vec![]);
}

#[tokio::test]
async fn a_record_whose_routing_policy_changed_is_deleted_and_created_again() {
    // A DNS record's routing policy is part of its identity in Route 53: delete, then create.
    let cloud = Cloud::new();
    cloud.run("provision.yaml", PARAMS).await;
    let before = cloud.all().len();
    let old = cloud
        .global(Kind::DnsRecord)
        .into_iter()
        .find(|r| at(r, "set_identifier") == "primary")
        .unwrap();
    cloud
        .sim
        .mutate(|w| {
            let r = w.regions.get_mut(GLOBAL).unwrap().get_mut(&old.id).unwrap();
            r.resource.spec["routing_policy"] = json!("failover");
        })
        .unwrap();
    let report = cloud.run("provision.yaml", PARAMS).await;
    let steps: Vec<(String, String)> = changed(&report)
        .into_iter()
        .map(|(s, c, _)| (s, c))
        .collect();
    assert_eq!(steps, [("dns".to_string(), "updated".to_string())]);
    assert!(
        outputs(&report, "dns")["changes"]
            .to_string()
            .contains("replaced")
    );
    let record = cloud
        .global(Kind::DnsRecord)
        .into_iter()
        .find(|r| at(r, "set_identifier") == "primary")
        .unwrap();
    assert_eq!(at(&record, "routing_policy"), "weighted");
    assert_eq!(at(&record, "weight"), &json!(100));
    assert_eq!(cloud.all().len(), before);
    assert_eq!(changed(&cloud.run("provision.yaml", PARAMS).await), vec![]);
}

#[tokio::test]
async fn data_bearing_resources_are_never_replaced_to_repair_drift() {
    // A VPC's CIDR and a table's key cannot change in place, and replacing them would destroy
    // what is inside: the run fails on those steps with the reason and a hint, and nothing is
    // deleted.
    let cloud = Cloud::new();
    cloud.run("provision.yaml", PARAMS).await;
    let before = cloud.all();
    cloud
        .sim
        .mutate(|w| {
            for r in w.regions.values_mut().flat_map(|m| m.values_mut()) {
                let res = &mut r.resource;
                match res.kind {
                    Kind::Vpc if res.region == "eu-central-1" => {
                        res.spec["cidr_block"] = json!("10.99.0.0/16");
                    }
                    Kind::DynamoTable if res.region == "eu-south-1" => {
                        res.spec["key_schema"] =
                            json!([{"attribute_name": "userId", "key_type": "HASH"}]);
                    }
                    _ => {}
                }
            }
        })
        .unwrap();
    let report = cloud.try_run("provision.yaml", PARAMS).await;
    assert_ne!(report.status, drflow_engine::RunStatus::Succeeded);
    // Both tables' keys were changed: the sessions' and drflow's own coordination table's.
    for (step, key) in [
        ("vpc_standby", "cidr_block"),
        ("sessions", "key_schema"),
        ("coordination", "key_schema"),
    ] {
        let err = step_error(&report, step);
        assert!(
            err.contains(key)
                && err.contains("cannot change in place")
                && err.contains("drflow does not replace")
                && err.contains("hint:"),
            "{step}: {err}"
        );
    }
    for step in ["sessions", "coordination"] {
        assert!(
            step_error(&report, step).contains("destroy the data"),
            "{step}"
        );
    }
    let ids = |rs: &[drflow_steps::backend::Resource]| {
        let mut v: Vec<String> = rs.iter().map(|r| r.id.clone()).collect();
        v.sort();
        v
    };
    assert_eq!(
        ids(&cloud.all()),
        ids(&before),
        "nothing deleted or created"
    );

    // The database, whose step did not run above (it needs the standby VPC): its encryption key
    // is not replaced either.
    let cloud2 = Cloud::new();
    cloud2.run("provision.yaml", PARAMS).await;
    let before = cloud2.all();
    cloud2
        .sim
        .mutate(|w| {
            for r in w.regions.values_mut().flat_map(|m| m.values_mut()) {
                if r.resource.kind == Kind::DbCluster && r.resource.region == "eu-south-1" {
                    r.resource.spec["kms_key_id"] =
                        json!("arn:aws:kms:eu-south-1:000000000000:key/other");
                }
            }
        })
        .unwrap();
    let report = cloud2.try_run("provision.yaml", PARAMS).await;
    let err = step_error(&report, "database");
    assert!(
        err.contains("kms_key_id") && err.contains("destroy the data") && err.contains("hint:"),
        "{err}"
    );
    assert_eq!(ids(&cloud2.all()), ids(&before));
}

/// Every resource as (region, kind, name) with its id, tags and spec.
fn snapshot(cloud: &Cloud) -> Vec<(String, Kind, String, String, String)> {
    let mut all: Vec<_> = cloud
        .all()
        .into_iter()
        .map(|r| {
            let detail = format!("{:?} {}", r.tags, r.spec);
            (r.region, r.kind, r.name, r.id, detail)
        })
        .collect();
    all.sort();
    all
}

#[tokio::test]
async fn a_step_undone_for_another_run_deletes_nothing_it_did_not_create() {
    // The step's record lists everything it ensured; only what the run being undone created
    // goes.
    let cloud = Cloud::new();
    let report = cloud.run("provision.yaml", PARAMS).await;
    let before = snapshot(&cloud);
    let prev = outputs(&report, "database").clone();
    let mut c = ctx("database", Some(prev));
    c.run_id = "another-run".into();
    let out = cloud
        .registry
        .get("rds.global_database")
        .unwrap()
        .undo(&c, &Outputs::new())
        .await
        .unwrap();
    assert_eq!(out["deleted"], json!([]));
    assert!(!out["kept"].as_array().unwrap().is_empty());
    assert_eq!(snapshot(&cloud), before);
}

#[tokio::test]
async fn rolling_back_a_run_that_repaired_drift_keeps_what_it_repaired_and_replaced() {
    // The first run builds; someone edits the primary health check's interval (repaired by
    // replacement) and a VPC's tag (repaired in place), and deletes the dashboard
    // (created again). Undoing the second run deletes only the dashboard it created: the
    // replacement health check and the updated VPC stay (an update is not reverted).
    let cloud = Cloud::new();
    cloud.run_as("first", "provision.yaml", PARAMS).await;
    let hc = cloud.one(GLOBAL, Kind::HealthCheck, "health-check-primary-prod-eu");
    let vpc = cloud.one("eu-south-1", Kind::Vpc, "vpc-prod-eu");
    let dashboards = cloud.all();
    let dashboard = dashboards
        .iter()
        .find(|r| r.kind == Kind::Dashboard)
        .expect("a dashboard")
        .clone();
    cloud
        .sim
        .mutate(|w| {
            let r = w.regions.get_mut(GLOBAL).unwrap().get_mut(&hc.id).unwrap();
            r.resource.spec["request_interval"] = json!(30);
            let r = w
                .regions
                .get_mut("eu-south-1")
                .unwrap()
                .get_mut(&vpc.id)
                .unwrap();
            r.resource
                .tags
                .insert("FailoverRole".into(), "Standby".into());
            w.regions
                .get_mut(&dashboard.region)
                .unwrap()
                .remove(&dashboard.id)
                .unwrap();
        })
        .unwrap();
    let second = cloud.run_as("second", "provision.yaml", PARAMS).await;
    let new_hc = cloud.one(GLOBAL, Kind::HealthCheck, "health-check-primary-prod-eu");
    assert_ne!(new_hc.id, hc.id, "replaced");
    assert_eq!(
        new_hc.tags["drflow:created-by-run"], "first",
        "a replacement keeps the provenance of what it replaced"
    );
    let new_dashboard = cloud.one(&dashboard.region, Kind::Dashboard, &dashboard.name);
    // AWS cannot tag a dashboard: the step's record names the run that created it.
    assert_eq!(
        outputs(&second, "dashboard")["resources"][0]["created"],
        "second"
    );
    let after_second = snapshot(&cloud);

    cloud.undo_all("second", &second).await;
    let mut want = after_second;
    want.retain(|r| r.3 != new_dashboard.id);
    assert_eq!(
        snapshot(&cloud),
        want,
        "only the recreated dashboard is gone"
    );
    assert_eq!(
        cloud.one("eu-south-1", Kind::Vpc, "vpc-prod-eu").tags["FailoverRole"],
        "Primary",
        "the repair is not reverted"
    );
}
