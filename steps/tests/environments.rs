//! Two environments side by side in one simulated cloud, one suffix ending with the other
//! (`eu` and `prod-eu`), in the same regions: no selector, lookup, event rule, undo or teardown
//! of one ever matches or touches the other (issue 7, section 3).

mod common;

use common::{Cloud, changed, outputs};
use drflow_engine::{RunReport, RunStatus};
use drflow_steps::SUFFIX_TAG;
use drflow_steps::backend::{GLOBAL, Kind, Resource};
use drflow_steps::sim::{alarm_state_change_event, pattern_matches};

/// `eu`: the parameters of `prod-eu` (eu.yaml: same regions, same CIDRs) with its own suffix
/// and, as every environment needs, its own public domain.
const EU: &[(&str, &str)] = &[
    ("env_suffix", "eu"),
    ("domain_name", "trading-eu.example.com"),
];

async fn provision_eu(cloud: &Cloud) -> RunReport {
    let report = cloud
        .try_run_as("run-eu", "provision.yaml", "eu.yaml", EU)
        .await;
    assert_eq!(report.status, RunStatus::Succeeded, "{report:#?}");
    report
}

async fn provision_prod_eu(cloud: &Cloud) -> RunReport {
    cloud
        .run_as("run-prod-eu", "provision.yaml", "eu.yaml")
        .await
}

fn env(r: &Resource) -> &str {
    r.tags.get(SUFFIX_TAG).map_or("", String::as_str)
}

/// Every resource of environment `suffix`, whole (spec, tags, state): the taggable ones by
/// their tag, the others (AWS cannot tag them) through their parent, or by their exact name.
fn of_env(cloud: &Cloud, suffix: &str) -> Vec<Resource> {
    let all = cloud.all();
    let tagged = |id: &str| {
        all.iter()
            .any(|p| (p.id == id || p.arn == id) && env(p) == suffix)
    };
    let named = [
        format!("alias/kms-key-{suffix}"),
        format!("failover-dashboard-{suffix}"),
        format!("aurora-global-{suffix}"),
    ];
    all.iter()
        .filter(|r| {
            env(r) == suffix
                || (!r.kind.taggable()
                    && (r.parent.as_deref().is_some_and(tagged) || named.contains(&r.name)))
        })
        .cloned()
        .collect()
}

fn is_alarm(r: &Resource) -> bool {
    matches!(r.kind, Kind::MetricAlarm | Kind::CompositeAlarm)
}

#[tokio::test]
async fn each_alarm_is_seen_by_the_rule_of_its_own_environment_only() {
    let cloud = Cloud::new();
    provision_eu(&cloud).await;
    provision_prod_eu(&cloud).await;
    let world = cloud.world();
    let alarms: Vec<Resource> = cloud.all().into_iter().filter(is_alarm).collect();
    for suffix in ["eu", "prod-eu"] {
        let own = alarms.iter().filter(|a| env(a) == suffix).count();
        // Two health check alarms, the regional-outage composite, two lag alarms, the
        // unhealthy-hosts alarm of each region and the standby's fast scale-out alarm.
        assert_eq!(own, 8, "alarms of {suffix}");
    }
    for alarm in &alarms {
        let event = alarm_state_change_event(alarm, "OK", "ALARM");
        let matched: Vec<Resource> = world
            .rules_matching(&alarm.region, &event)
            .into_iter()
            .filter(|r| r.name.starts_with("alarm-state-change-"))
            .collect();
        let names: Vec<&str> = matched.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            [format!("alarm-state-change-{}", env(alarm))],
            "{} ({}) must reach its own environment's rule and no other",
            alarm.name,
            alarm.region
        );
    }
    // The case the issue names: `prod-eu`'s regional outage does not reach `eu`'s daemon.
    let outage = alarms
        .iter()
        .find(|a| a.name == "regional-outage-alarm-prod-eu")
        .expect("composite alarm");
    let eu_rule = cloud.one(GLOBAL_METRICS, Kind::EventRule, "alarm-state-change-eu");
    let event = alarm_state_change_event(outage, "OK", "ALARM");
    assert!(!pattern_matches(&eu_rule.spec["event_pattern"], &event));
}

/// Where the health check alarms and the composite live (eu.yaml keeps the default).
const GLOBAL_METRICS: &str = "us-east-1";

#[tokio::test]
async fn destroying_one_environment_leaves_the_other_exactly_as_it_was() {
    let cloud = Cloud::new();
    provision_eu(&cloud).await;
    provision_prod_eu(&cloud).await;
    let prod_eu = of_env(&cloud, "prod-eu");
    let eu = of_env(&cloud, "eu");
    assert!(!prod_eu.is_empty() && !eu.is_empty());
    assert_eq!(
        prod_eu.len() + eu.len(),
        cloud.all().len(),
        "every resource carries its environment's tag"
    );

    let destroy = cloud
        .try_run_as("destroy-eu", "destroy.yaml", "eu.yaml", EU)
        .await;
    assert_eq!(destroy.status, RunStatus::Succeeded, "{destroy:#?}");
    assert_eq!(
        outputs(&destroy, "teardown")["deleted"],
        serde_json::json!(eu.len())
    );
    assert!(of_env(&cloud, "eu").is_empty());
    assert_eq!(of_env(&cloud, "prod-eu"), prod_eu, "prod-eu was touched");
    let again = provision_prod_eu(&cloud).await;
    assert_eq!(changed(&again), vec![], "prod-eu needs no repair");
    assert_eq!(
        outputs(&again, "readiness")["ready"],
        serde_json::json!(true)
    );

    // And the other way round.
    provision_eu(&cloud).await;
    let eu = of_env(&cloud, "eu");
    let prod_eu = of_env(&cloud, "prod-eu");
    cloud
        .run_as("destroy-prod-eu", "destroy.yaml", "eu.yaml")
        .await;
    assert!(of_env(&cloud, "prod-eu").is_empty());
    assert_eq!(of_env(&cloud, "eu"), eu, "eu was touched");
    assert!(!prod_eu.is_empty());
    let again = provision_eu(&cloud).await;
    assert_eq!(changed(&again), vec![], "eu needs no repair");
}

#[tokio::test]
async fn undoing_one_environments_provision_leaves_the_other_as_it_was() {
    let cloud = Cloud::new();
    let report = provision_eu(&cloud).await;
    provision_prod_eu(&cloud).await;
    let prod_eu = of_env(&cloud, "prod-eu");
    cloud.undo_all("run-eu", &report).await;
    assert!(of_env(&cloud, "eu").is_empty());
    assert_eq!(of_env(&cloud, "prod-eu"), prod_eu);
}

#[tokio::test]
async fn a_name_held_by_another_environment_is_refused_not_taken_over() {
    let cloud = Cloud::new();
    provision_prod_eu(&cloud).await;
    let prod_eu = of_env(&cloud, "prod-eu");
    // `eu` given prod-eu's domain: the hosted zone's name is the domain, so it finds prod-eu's.
    let report = cloud
        .try_run_as(
            "run-eu",
            "provision.yaml",
            "eu.yaml",
            &[("env_suffix", "eu")],
        )
        .await;
    assert_eq!(report.status, RunStatus::Failed);
    let zone = report.steps.iter().find(|s| s.id == "zone").unwrap();
    let err = zone.error.as_ref().expect("zone step fails").to_string();
    assert!(
        err.contains("belongs to environment `prod-eu`") && err.contains("domain_name"),
        "{err}"
    );
    assert_eq!(
        cloud.global(Kind::HostedZone),
        prod_eu
            .iter()
            .filter(|r| r.kind == Kind::HostedZone)
            .cloned()
            .collect::<Vec<_>>(),
        "prod-eu's zone is neither retagged nor changed"
    );
    // What eu did build before it stopped is its own, and its destroy takes only that.
    cloud
        .run_with("destroy.yaml", "eu.yaml", &[("env_suffix", "eu")])
        .await;
    assert!(of_env(&cloud, "eu").is_empty());
    assert_eq!(of_env(&cloud, "prod-eu"), prod_eu);
    assert_eq!(cloud.of(GLOBAL, Kind::HostedZone).len(), 1);
}

/// A destroy given other regions than the environment was provisioned in (`-p env_suffix=eu`
/// alone, so the default us-east regions) used to delete the environment's global and us-east-1
/// resources (DNS, health checks, alarms), then retry three times and blame "something drflow
/// does not manage" for those held by its resources in the regions it was not given. It now
/// names those regions and the parameters to pass, and fails at once with nothing deleted.
#[tokio::test]
async fn a_destroy_given_the_wrong_regions_names_the_regions_the_environment_is_in() {
    let cloud = Cloud::new();
    provision_prod_eu(&cloud).await;
    let before = of_env(&cloud, "prod-eu");
    let destroy = cloud
        .try_run_as(
            "destroy-wrong-regions",
            "destroy.yaml",
            "us-east.yaml",
            &[("env_suffix", "prod-eu")],
        )
        .await;
    assert_eq!(destroy.status, RunStatus::Failed, "{destroy:#?}");
    let step = destroy.steps.iter().find(|s| s.id == "teardown").unwrap();
    let error = step.error.as_ref().expect("an error");
    assert_eq!(step.attempts, 1, "not retried: {error:?}");
    assert!(
        !error.message.contains("does not manage"),
        "{}",
        error.message
    );
    assert!(
        error.message.contains("in eu-central-1, eu-south-1")
            && error.message.contains("--params-file"),
        "{}",
        error.message
    );
    assert_eq!(of_env(&cloud, "prod-eu"), before, "nothing was deleted");
}
