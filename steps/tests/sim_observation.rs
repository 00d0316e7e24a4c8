//! The sim's observation processes on a provisioned world: Route 53 health checks turning
//! unhealthy when the primary fails (and not when the regions only lose each other), alarms
//! going to ALARM on the right virtual minute and their events reaching the daemon's queue,
//! and DNS answers following health, weights, change propagation and resolver caches.
//!
//! Each test provisions once per parameter file (shared), then works on its own in-memory copy
//! of the world, moving virtual time only: no wall-time sleep.

mod common;

use std::time::Duration;

use common::Cloud;
use drflow_steps::SimBackend;
use drflow_steps::backend::{
    AlarmStateValue, ChangeStatus, CloudBackend, CreateRequest, FailoverApi, GLOBAL, Kind,
    MetricQuery, Resource, Tags,
};
use drflow_steps::sim::cloudwatch::queue_messages;
use drflow_steps::sim::dns::resolve_cached;
use drflow_steps::sim::{Fault, FaultKind, World, app};
use serde_json::json;
use tokio::sync::OnceCell;

static US_EAST: OnceCell<World> = OnceCell::const_new();
static EU: OnceCell<World> = OnceCell::const_new();

/// A fresh in-memory copy of the world `provision.yaml` builds with `params`.
async fn provisioned(params: &'static str) -> SimBackend {
    let cell = if params == "us-east.yaml" {
        &US_EAST
    } else {
        &EU
    };
    let world = cell
        .get_or_init(|| async {
            let cloud = Cloud::new();
            cloud.run("provision.yaml", params).await;
            // Instances are still launching when provision ends (about 4 minutes cold): let
            // the application come up and every alarm settle, so tests start from a steady
            // world.
            let sim = SimBackend::scratch(cloud.world());
            sim.advance(Duration::from_secs(900)).unwrap();
            let world = sim.snapshot().unwrap();
            for hc in world.list(Some(GLOBAL), Some(Kind::HealthCheck)) {
                let s = sim.get_health_check_status(&hc.id).await.unwrap();
                assert!(s.healthy, "{} not healthy after provision: {s:?}", hc.name);
            }
            world
        })
        .await;
    SimBackend::scratch(world.clone())
}

fn find(world: &World, region: &str, kind: Kind, name: &str) -> Resource {
    world
        .find(region, kind, name)
        .unwrap_or_else(|| panic!("no {kind} {name} in {region}"))
        .resource
        .clone()
}

fn now(sim: &SimBackend) -> u64 {
    sim.snapshot().unwrap().clock_ms
}

fn fault(kind: FaultKind, region: &str) -> Fault {
    Fault {
        kind,
        region: Some(region.into()),
        az: None,
        at_ms: None,
        for_ms: None,
    }
}

/// Advances until `until_ms` (absolute virtual time).
fn advance_to(sim: &SimBackend, until_ms: u64) {
    let t = now(sim);
    assert!(until_ms >= t, "{until_ms} is in the past ({t})");
    sim.advance(Duration::from_millis(until_ms - t)).unwrap();
}

struct Env {
    suffix: &'static str,
    primary: &'static str,
    standby: &'static str,
}

const US: Env = Env {
    suffix: "prod-us",
    primary: "us-east-1",
    standby: "us-east-2",
};

const EUROPE: Env = Env {
    suffix: "prod-eu",
    primary: "eu-south-1",
    standby: "eu-central-1",
};

fn hc_id(sim: &SimBackend, env: &Env, side: &str) -> String {
    let w = sim.snapshot().unwrap();
    find(
        &w,
        GLOBAL,
        Kind::HealthCheck,
        &format!("health-check-{side}-{}", env.suffix),
    )
    .id
}

fn alb_dns(sim: &SimBackend, env: &Env, side: &str) -> String {
    let w = sim.snapshot().unwrap();
    let region = if side == "primary" {
        env.primary
    } else {
        env.standby
    };
    find(
        &w,
        region,
        Kind::LoadBalancer,
        &format!("alb-{}", env.suffix),
    )
    .attrs["dns_name"]
        .as_str()
        .unwrap()
        .to_string()
}

fn zone_id(sim: &SimBackend) -> String {
    let w = sim.snapshot().unwrap();
    w.list(Some(GLOBAL), Some(Kind::HostedZone))[0].id.clone()
}

fn record_name(env: &Env) -> String {
    format!("api.trading-{}.example.com", env.suffix)
}

#[tokio::test]
async fn the_primary_health_check_turns_unhealthy_interval_times_threshold_after_an_outage() {
    let sim = provisioned("us-east.yaml").await;
    let primary = hc_id(&sim, &US, "primary");
    let standby = hc_id(&sim, &US, "standby");
    let before = sim.get_health_check_status(&primary).await.unwrap();
    assert!(before.healthy);
    assert_eq!((before.checkers, before.checkers_healthy), (15, 15));
    let t0 = now(&sim);
    sim.inject(fault(FaultKind::RegionOutage, US.primary))
        .unwrap();
    let config = sim.snapshot().unwrap().config;
    let (interval, threshold) = (
        config.health_check_interval_ms,
        u64::from(config.health_check_failure_threshold),
    );
    // Not before (threshold - 1) intervals: no checker can have failed `threshold` times.
    advance_to(&sim, t0 + (threshold - 1) * interval);
    let early = sim.get_health_check_status(&primary).await.unwrap();
    assert!(early.healthy, "unhealthy too early: {early:?}");
    // By interval × threshold plus the extra delay, it is.
    advance_to(
        &sim,
        t0 + threshold * interval + config.health_check_extra_ms,
    );
    let late = sim.get_health_check_status(&primary).await.unwrap();
    assert!(!late.healthy, "still healthy: {late:?}");
    let took = late.changed_at_ms.unwrap() - t0;
    assert!(
        took > (threshold - 1) * interval
            && took <= threshold * interval + config.health_check_extra_ms
    );
    assert!(late.checkers_healthy * 100 <= 18 * late.checkers);
    assert!(late.last_failure_at_ms.is_some());
    // Route 53's checkers still reach the standby's endpoint (whether its application says
    // `ok` without its writer is the application's business).
    let world = sim.snapshot().unwrap();
    let host = alb_dns(&sim, &US, "standby");
    assert!(
        app::http_get(&world, GLOBAL, &host, "/health/trading")
            .status
            .is_some()
    );
    let _ = standby;
}

#[tokio::test]
async fn a_partition_leaves_both_health_checks_healthy() {
    let sim = provisioned("us-east.yaml").await;
    let before = [
        sim.get_health_check_status(&hc_id(&sim, &US, "primary"))
            .await
            .unwrap(),
        sim.get_health_check_status(&hc_id(&sim, &US, "standby"))
            .await
            .unwrap(),
    ];
    sim.inject(fault(FaultKind::Partition, US.primary)).unwrap();
    sim.advance(Duration::from_secs(600)).unwrap();
    // The primary stays healthy: Route 53 probes from the internet, not from the standby.
    let s = sim
        .get_health_check_status(&hc_id(&sim, &US, "primary"))
        .await
        .unwrap();
    assert!(s.healthy, "{s:?}");
    assert_eq!(s.checkers_healthy, s.checkers);
    assert_eq!(s.changed_at_ms, before[0].changed_at_ms, "changed");
    // Both endpoints still answer Route 53's checkers.
    let world = sim.snapshot().unwrap();
    for side in ["primary", "standby"] {
        let host = alb_dns(&sim, &US, side);
        let answer = app::http_get(&world, GLOBAL, &host, "/health/trading");
        assert!(answer.status.is_some(), "{side}: {answer:?}");
    }
}

#[tokio::test]
async fn flapping_shorter_than_the_threshold_never_turns_the_check_unhealthy() {
    let sim = provisioned("us-east.yaml").await;
    // Down 15 s, up 15 s: a checker probing every 10 s sees at most 2 failures in a row.
    sim.mutate(|w| w.config.flapping_period_ms = 30_000)
        .unwrap();
    let hc = hc_id(&sim, &US, "primary");
    let before = sim.get_health_check_status(&hc).await.unwrap();
    let t = now(&sim);
    sim.inject(fault(FaultKind::Flapping, US.primary)).unwrap();
    sim.advance(Duration::from_secs(900)).unwrap();
    let s = sim.get_health_check_status(&hc).await.unwrap();
    assert!(s.healthy, "{s:?}");
    assert_eq!(s.changed_at_ms, before.changed_at_ms);
    assert!(
        s.last_failure_at_ms.is_some_and(|f| f > t),
        "the checkers did see it fail"
    );
    // With the default period (down 40 s at a time) it does turn unhealthy.
    sim.heal(None).unwrap();
    sim.mutate(|w| w.config.flapping_period_ms = 80_000)
        .unwrap();
    sim.inject(fault(FaultKind::Flapping, US.primary)).unwrap();
    sim.advance(Duration::from_secs(60)).unwrap();
    assert!(!sim.get_health_check_status(&hc).await.unwrap().healthy);
}

#[tokio::test]
async fn a_new_alarm_is_insufficient_data_until_its_first_period_ends() {
    let sim = provisioned("eu.yaml").await;
    let hc = hc_id(&sim, &EUROPE, "standby");
    let t = now(&sim);
    let spec = json!({
        "namespace": "AWS/Route53",
        "metric_name": "HealthCheckStatus",
        "dimensions": {"HealthCheckId": hc},
        "statistic": "Minimum",
        "period": 60,
        "evaluation_periods": 1,
        "threshold": 1,
        "comparison_operator": "LessThanThreshold",
    });
    sim.create(&CreateRequest {
        parent: None,
        kind: Kind::MetricAlarm,
        region: "us-east-1".into(),
        name: "probe-alarm".into(),
        spec,
        tags: Tags::new(),
        depends_on: vec![],
    })
    .await
    .unwrap();
    let alarms = sim
        .describe_alarms("us-east-1", Some("probe-alarm"))
        .await
        .unwrap();
    assert_eq!(alarms.len(), 1);
    assert_eq!(alarms[0].state, AlarmStateValue::InsufficientData);
    advance_to(&sim, t - t % 60_000 + 120_000);
    let alarms = sim
        .describe_alarms("us-east-1", Some("probe-alarm"))
        .await
        .unwrap();
    assert_eq!(alarms[0].state, AlarmStateValue::Ok, "{:?}", alarms[0]);
}

#[tokio::test]
async fn the_health_check_alarm_goes_alarm_on_the_second_failed_minute_and_one_event_reaches_the_queue()
 {
    let sim = provisioned("eu.yaml").await;
    // Let every alarm settle first.
    sim.advance(Duration::from_secs(300)).unwrap();
    let name = format!("health-check-alarm-primary-{}", EUROPE.suffix);
    let describe = |alarms: Vec<drflow_steps::backend::AlarmState>| {
        alarms
            .into_iter()
            .find(|a| a.name == name)
            .expect("the alarm")
    };
    let a = describe(sim.describe_alarms("us-east-1", None).await.unwrap());
    assert_eq!(a.state, AlarmStateValue::Ok, "{a:?}");
    let injected = now(&sim);
    // The application fails on healthy infrastructure: the standby stays healthy, so the
    // regional-outage composite (primary ALARM and standby OK) fires too.
    sim.inject(fault(FaultKind::AppUnhealthy, EUROPE.primary))
        .unwrap();
    sim.advance(Duration::from_secs(60)).unwrap();
    let hc = sim
        .get_health_check_status(&hc_id(&sim, &EUROPE, "primary"))
        .await
        .unwrap();
    let failed_at = hc.changed_at_ms.expect("unhealthy within a minute");
    // Minutes whose minimum is 0: the one it failed in and the next; the second is over (and
    // its datapoint published) at the start of the third.
    let minute = failed_at - failed_at % 60_000;
    let alarm_at = minute + 2 * 60_000;
    advance_to(&sim, alarm_at - 1);
    let a = describe(sim.describe_alarms("us-east-1", None).await.unwrap());
    assert_eq!(a.state, AlarmStateValue::Ok, "{a:?}");
    advance_to(&sim, alarm_at);
    let a = describe(sim.describe_alarms("us-east-1", None).await.unwrap());
    assert_eq!(a.state, AlarmStateValue::Alarm, "{a:?}");
    assert_eq!(a.updated_at_ms, alarm_at);
    // What the alarm saw: `HealthCheckStatus` per minute in us-east-1, 0 from the failed minute.
    let mut dimensions = Tags::new();
    dimensions.insert("HealthCheckId".into(), hc.health_check_id.clone());
    let query = MetricQuery {
        region: "us-east-1".into(),
        namespace: "AWS/Route53".into(),
        metric_name: "HealthCheckStatus".into(),
        dimensions,
        stat: "Minimum".into(),
        period_s: 60,
    };
    let points = sim
        .get_metric_data(&query, minute - 120_000, alarm_at)
        .await
        .unwrap();
    let seen: Vec<(i64, f64)> = points
        .iter()
        .map(|p| ((p.at_ms as i64 - minute as i64) / 60_000, p.value))
        .collect();
    assert_eq!(seen, [(-2, 1.0), (-1, 1.0), (0, 0.0), (1, 0.0)]);
    // The event crosses to the standby region's queue within a second.
    sim.advance(Duration::from_secs(1)).unwrap();
    let world = sim.snapshot().unwrap();
    let queue = find(
        &world,
        EUROPE.standby,
        Kind::SqsQueue,
        &format!("alarm-events-{}", EUROPE.suffix),
    );
    let url = queue.attrs["url"].as_str().unwrap();
    let events: Vec<_> = queue_messages(&world, url)
        .into_iter()
        .filter(|m| m.body["detail"]["alarmName"] == name.as_str() && m.sent_at_ms >= injected)
        .collect();
    let to_alarm: Vec<_> = events
        .iter()
        .filter(|m| m.body["detail"]["state"]["value"] == "ALARM")
        .collect();
    assert_eq!(to_alarm.len(), 1, "{events:#?}");
    let m = to_alarm[0];
    assert_eq!(m.body["source"], "aws.cloudwatch");
    assert_eq!(m.body["detail-type"], "CloudWatch Alarm State Change");
    assert_eq!(m.body["detail"]["previousState"]["value"], "OK");
    assert_eq!(m.sent_at_ms, alarm_at);
    assert!(m.available_at_ms > alarm_at && m.available_at_ms < alarm_at + 1_000);
    // The regional-outage composite follows in the same evaluation.
    let composite = format!("regional-outage-alarm-{}", EUROPE.suffix);
    let composite_events: Vec<_> = queue_messages(&world, url)
        .into_iter()
        .filter(|m| m.body["detail"]["alarmName"] == composite.as_str() && m.sent_at_ms >= injected)
        .collect();
    assert_eq!(composite_events.len(), 1, "{composite_events:#?}");
    assert_eq!(
        composite_events[0].body["detail"]["state"]["value"],
        "ALARM"
    );
    assert_eq!(composite_events[0].sent_at_ms, alarm_at);
}

#[tokio::test]
async fn weighted_100_0_answers_the_primary_then_the_standby_when_its_check_fails() {
    let sim = provisioned("eu.yaml").await;
    let (zone, name) = (zone_id(&sim), record_name(&EUROPE));
    let answer = sim.test_dns_answer(&zone, &name, "A").await.unwrap();
    assert_eq!(answer.response_code, "NOERROR");
    assert_eq!(answer.record_data, [alb_dns(&sim, &EUROPE, "primary")]);
    sim.inject(fault(FaultKind::AppUnhealthy, EUROPE.primary))
        .unwrap();
    sim.advance(Duration::from_secs(60)).unwrap();
    let answer = sim.test_dns_answer(&zone, &name, "A").await.unwrap();
    assert_eq!(answer.record_data, [alb_dns(&sim, &EUROPE, "standby")]);
    sim.heal(None).unwrap();
    sim.advance(Duration::from_secs(60)).unwrap();
    let answer = sim.test_dns_answer(&zone, &name, "A").await.unwrap();
    assert_eq!(answer.record_data, [alb_dns(&sim, &EUROPE, "primary")]);
}

#[tokio::test]
async fn moved_weights_are_pending_then_insync_after_60_s_and_only_then_answered() {
    let sim = provisioned("eu.yaml").await;
    let (zone, name) = (zone_id(&sim), record_name(&EUROPE));
    let t = now(&sim);
    // Two calls, two changes: the first decides when the old answer may stop.
    let change = sim
        .set_record_weight(&zone, &name, "A", "primary", 0)
        .await
        .unwrap();
    let second = sim
        .set_record_weight(&zone, &name, "A", "standby", 100)
        .await
        .unwrap();
    assert_eq!(change.status, ChangeStatus::Pending);
    assert_ne!(change.id, second.id);
    // The API shows the new weights at once.
    let sets = sim.list_resource_record_sets(&zone, &name).await.unwrap();
    let weights: Vec<(Option<String>, Option<u8>)> = sets
        .iter()
        .map(|s| (s.set_identifier.clone(), s.weight))
        .collect();
    assert_eq!(
        weights,
        [
            (Some("primary".into()), Some(0)),
            (Some("standby".into()), Some(100))
        ]
    );
    let insync = change.submitted_at_ms + 60_000;
    assert!(change.submitted_at_ms >= t);
    advance_to(&sim, insync - 1);
    assert_eq!(
        sim.get_change(&change.id).await.unwrap().status,
        ChangeStatus::Pending
    );
    let answer = sim.test_dns_answer(&zone, &name, "A").await.unwrap();
    assert_eq!(
        answer.record_data,
        [alb_dns(&sim, &EUROPE, "primary")],
        "answered before INSYNC"
    );
    advance_to(&sim, insync);
    assert_eq!(
        sim.get_change(&change.id).await.unwrap().status,
        ChangeStatus::Insync
    );
    advance_to(&sim, second.submitted_at_ms + 60_000);
    assert_eq!(
        sim.get_change(&second.id).await.unwrap().status,
        ChangeStatus::Insync
    );
    let answer = sim.test_dns_answer(&zone, &name, "A").await.unwrap();
    assert_eq!(answer.record_data, [alb_dns(&sim, &EUROPE, "standby")]);
    // Failover records have no weight to move.
    let us = provisioned("us-east.yaml").await;
    let err = us
        .set_record_weight(&zone_id(&us), &record_name(&US), "A", "primary", 0)
        .await
        .unwrap_err();
    assert_eq!(err.kind, drflow_steps::ErrorKind::InvalidInput, "{err}");
    assert!(us.get_change("C0000000000000").await.is_err());
}

#[tokio::test]
async fn a_resolver_keeps_the_old_answer_until_its_ttl_expires() {
    let sim = provisioned("eu.yaml").await;
    let (zone, name) = (zone_id(&sim), record_name(&EUROPE));
    let (primary, standby) = (
        alb_dns(&sim, &EUROPE, "primary"),
        alb_dns(&sim, &EUROPE, "standby"),
    );
    let change = sim
        .set_record_weight(&zone, &name, "A", "primary", 0)
        .await
        .unwrap();
    sim.set_record_weight(&zone, &name, "A", "standby", 100)
        .await
        .unwrap();
    let insync = change.submitted_at_ms + 60_000;
    // The client asks 10 s before the change is everywhere and gets the primary, for 60 s.
    advance_to(&sim, insync - 10_000);
    let asked = now(&sim);
    let resolve = |sim: &SimBackend| {
        sim.mutate(|w| resolve_cached(w, "client-1", &name, "A"))
            .unwrap()
    };
    assert_eq!(resolve(&sim).record_data, [primary.to_string()]);
    advance_to(&sim, insync + 1_000);
    assert_eq!(
        sim.test_dns_answer(&zone, &name, "A")
            .await
            .unwrap()
            .record_data,
        [standby.to_string()]
    );
    assert_eq!(
        resolve(&sim).record_data,
        [primary.to_string()],
        "the cached answer"
    );
    // Another client's resolver asks afresh.
    let other = sim
        .mutate(|w| resolve_cached(w, "client-2", &name, "A"))
        .unwrap();
    assert_eq!(other.record_data, [standby.to_string()]);
    advance_to(&sim, asked + 60_000 - 1);
    assert_eq!(resolve(&sim).record_data, [primary]);
    advance_to(&sim, asked + 60_000);
    assert_eq!(resolve(&sim).record_data, [standby]);
}

#[tokio::test]
async fn failover_records_follow_the_primary_health_check_and_its_inversion() {
    let sim = provisioned("us-east.yaml").await;
    let (zone, name) = (zone_id(&sim), record_name(&US));
    let (primary, standby) = (alb_dns(&sim, &US, "primary"), alb_dns(&sim, &US, "standby"));
    let sets = sim.list_resource_record_sets(&zone, &name).await.unwrap();
    let roles: Vec<Option<String>> = sets.iter().map(|s| s.failover.clone()).collect();
    assert_eq!(roles, [Some("PRIMARY".into()), Some("SECONDARY".into())]);
    assert_eq!(
        sim.test_dns_answer(&zone, &name, "A")
            .await
            .unwrap()
            .record_data,
        [primary.to_string()]
    );
    // Inverting the primary's check moves traffic at once, with no record change.
    let hc = hc_id(&sim, &US, "primary");
    let s = sim.set_health_check_inverted(&hc, true).await.unwrap();
    assert!(!s.healthy && s.inverted);
    assert_eq!(
        sim.test_dns_answer(&zone, &name, "A")
            .await
            .unwrap()
            .record_data,
        [standby.to_string()]
    );
    sim.set_health_check_inverted(&hc, false).await.unwrap();
    assert_eq!(
        sim.test_dns_answer(&zone, &name, "A")
            .await
            .unwrap()
            .record_data,
        [primary]
    );
    // A failing application turns the check unhealthy and the answer to the secondary.
    sim.inject(fault(FaultKind::AppUnhealthy, US.primary))
        .unwrap();
    sim.advance(Duration::from_secs(60)).unwrap();
    assert_eq!(
        sim.test_dns_answer(&zone, &name, "A")
            .await
            .unwrap()
            .record_data,
        [standby]
    );
}

#[tokio::test]
async fn the_lag_monitor_feeds_the_fast_lag_alarm() {
    let sim = provisioned("eu.yaml").await;
    let name = format!("replication-lag-fast-alarm-{}", EUROPE.suffix);
    let state = |alarms: Vec<drflow_steps::backend::AlarmState>| alarms[0].state;
    let a = sim
        .describe_alarms(EUROPE.standby, Some(&name))
        .await
        .unwrap();
    assert_eq!(state(a), AlarmStateValue::Ok);
    // Replication falls 120 s behind: Aurora's per-minute lag datapoint shows it, the monitor
    // republishes it every 30 s, and the 30-second alarm fires.
    sim.inject(fault(FaultKind::LagSpike, EUROPE.standby))
        .unwrap();
    sim.advance(Duration::from_secs(300)).unwrap();
    let a = sim
        .describe_alarms(EUROPE.standby, Some(&name))
        .await
        .unwrap();
    assert_eq!(state(a), AlarmStateValue::Alarm);
}
