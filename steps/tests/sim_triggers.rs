//! The shipped `drflow.yaml` fed with the alarm events the simulated cloud delivers to the
//! daemon's queue: an application failure in the primary region (the standby stays healthy, so
//! the regional-outage composite fires too) fires `primary-down` once, with both alarms as
//! evidence, their change times read from the events themselves.

mod common;

use std::path::Path;
use std::time::Duration;

use common::Cloud;
use drflow_engine::triggers::{Evaluator, TriggerConfig, parse_timestamp};
use drflow_steps::SimBackend;
use drflow_steps::backend::{FailoverApi, GLOBAL, Kind};
use drflow_steps::sim::cloudwatch::queue_messages;
use drflow_steps::sim::{Fault, FaultKind};

#[tokio::test]
async fn an_application_failure_fires_the_shipped_primary_down_trigger_once() {
    let cloud = Cloud::new();
    cloud.run("provision.yaml", "eu.yaml").await;
    let sim = SimBackend::scratch(cloud.world());
    // Instances come up and every alarm settles to OK.
    sim.advance(Duration::from_secs(1200)).unwrap();
    for hc in sim
        .snapshot()
        .unwrap()
        .list(Some(GLOBAL), Some(Kind::HealthCheck))
    {
        assert!(sim.get_health_check_status(&hc.id).await.unwrap().healthy);
    }
    let injected = sim.snapshot().unwrap().clock_ms;
    sim.inject(Fault {
        kind: FaultKind::AppUnhealthy,
        region: Some("eu-south-1".into()),
        az: None,
        at_ms: None,
        for_ms: None,
    })
    .unwrap();
    sim.advance(Duration::from_secs(600)).unwrap();

    let world = sim.snapshot().unwrap();
    let queue = world
        .find("eu-central-1", Kind::SqsQueue, "alarm-events-prod-eu")
        .expect("the daemon's queue")
        .resource
        .clone();
    let mut messages = queue_messages(&world, queue.attrs["url"].as_str().unwrap());
    messages.retain(|m| m.sent_at_ms >= injected);
    messages.sort_by_key(|m| m.available_at_ms);
    assert!(!messages.is_empty());
    for m in &messages {
        // The fields CloudWatch sends: the state's own change time, which is when the event
        // was put on the bus, the previous state's, and the reason.
        let d = &m.body["detail"];
        let at = parse_timestamp(d["state"]["timestamp"].as_str().unwrap()).unwrap();
        assert_eq!(at, m.sent_at_ms, "{}", m.body);
        let before = parse_timestamp(d["previousState"]["timestamp"].as_str().unwrap()).unwrap();
        assert!(before < at, "{}", m.body);
        assert!(!d["state"]["reason"].as_str().unwrap().is_empty());
    }

    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let config = TriggerConfig::load(&root.join("drflow.yaml")).expect("the shipped drflow.yaml");
    let mut evaluator = Evaluator::new(&config);
    let firings: Vec<_> = messages
        .iter()
        .flat_map(|m| evaluator.observe(&m.body, m.available_at_ms).firings)
        .collect();
    assert_eq!(firings.len(), 1, "{firings:#?}");
    let f = &firings[0];
    assert_eq!(f.trigger, "primary-down");
    let evidence: Vec<(&str, &str)> = f
        .evidence
        .iter()
        .map(|e| (e.signal.as_str(), e.state.as_str()))
        .collect();
    assert_eq!(
        evidence,
        [
            ("primary-health-check", "ALARM"),
            ("regional-outage", "ALARM")
        ]
    );
    assert!(
        f.evidence[0]
            .subject
            .ends_with(":alarm:health-check-alarm-primary-prod-eu")
    );
    assert!(f.evidence.iter().all(|e| e.received_ms > e.state_at_ms));
    let triggered_by = f.params["triggered_by"].as_str().unwrap();
    assert!(
        triggered_by.starts_with("trigger primary-down: ")
            && triggered_by.ends_with("-prod-eu ALARM"),
        "{triggered_by}"
    );
}
