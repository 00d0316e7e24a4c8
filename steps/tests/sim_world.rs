//! The simulated cloud living in time: a provisioned world, its processes, and each fault
//! injected through the API, observed through the typed failover interface.
//!
//! Every test starts from one world provisioned with `runbooks/provision.yaml` (eu.yaml:
//! primary eu-south-1, standby eu-central-1) and settled for ten minutes, so instances are in
//! service, targets healthy and writes flowing. Worlds are scratch copies: nothing on disk.

mod common;

use std::sync::Arc;
use std::time::Duration;

use drflow_steps::backend::{ErrorKind, FailoverApi, GLOBAL, Kind};
use drflow_steps::sim::{Fault, FaultError, FaultKind, World};
use drflow_steps::{CloudBackend, SimBackend};

const PRIMARY: &str = "eu-south-1";
const STANDBY: &str = "eu-central-1";
const GLOBAL_DB: &str = "aurora-global-prod-eu";
const ASG: &str = "asg-prod-eu";

fn sim() -> SimBackend {
    SimBackend::scratch(common::provisioned_eu())
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn cluster_arn(sim: &SimBackend, region: &str) -> String {
    let w = sim.snapshot().unwrap();
    w.find(region, Kind::DbCluster, "aurora-cluster-prod-eu")
        .unwrap()
        .resource
        .arn
        .clone()
}

fn health_check_id(sim: &SimBackend, name: &str) -> String {
    let w = sim.snapshot().unwrap();
    w.find(GLOBAL, Kind::HealthCheck, name)
        .unwrap()
        .resource
        .id
        .clone()
}

fn alb_url(sim: &SimBackend, region: &str) -> String {
    let w = sim.snapshot().unwrap();
    let lb = &w
        .find(region, Kind::LoadBalancer, "alb-prod-eu")
        .unwrap()
        .resource;
    format!("https://{}/health/trading", lb.attr_str("dns_name"))
}

async fn healthy(sim: &SimBackend, check: &str) -> bool {
    let id = health_check_id(sim, check);
    sim.get_health_check_status(&id).await.unwrap().healthy
}

#[tokio::test]
async fn a_settled_world_serves_from_the_primary_and_replicates_within_a_second() {
    let sim = sim();
    let status = sim.status().unwrap();
    assert_eq!(status.writer_region.as_deref(), Some(PRIMARY));
    for r in status
        .regions
        .iter()
        .filter(|r| [PRIMARY, STANDBY].contains(&r.region.as_str()))
    {
        assert!(r.up, "{}", r.region);
        assert!(r.app_healthy, "{}: {}", r.region, r.app_detail);
    }
    let db = sim.describe_global_cluster(GLOBAL_DB).await.unwrap();
    let writer = db.writer().unwrap();
    assert_eq!(writer.region, PRIMARY);
    let standby = db.member_in(STANDBY).unwrap();
    assert_eq!(standby.status, "available");
    // Ten writes a second for minutes: the standby is behind by the replication lag only.
    assert!(writer.last_write_seq.unwrap() > 1000);
    let lag = standby.replication_lag_ms.unwrap();
    assert!((500..=1000).contains(&lag), "published lag {lag}");
    let behind = writer.last_write_seq.unwrap() - standby.last_write_seq.unwrap();
    assert!((5..=10).contains(&behind), "{behind} writes behind");
    assert!(healthy(&sim, "health-check-primary-prod-eu").await);
    let primary = sim.describe_auto_scaling_group(PRIMARY, ASG).await.unwrap();
    assert_eq!((primary.in_service, primary.desired_capacity), (2, 2));
    let standby = sim.describe_auto_scaling_group(STANDBY, ASG).await.unwrap();
    assert_eq!((standby.in_service, standby.warm_pool), (1, 2));
    let probe = sim
        .probe(STANDBY, &alb_url(&sim, PRIMARY), Some("\"status\":\"ok\""))
        .await
        .unwrap();
    assert!(probe.healthy, "{probe:?}");
    assert_eq!(probe.database_connected, Some(true));
    assert!(probe.quote_at_ms.is_some());
    let traffic = &status.traffic[0];
    assert_eq!(traffic.regions, [PRIMARY]);
}

#[tokio::test]
async fn a_region_outage_fails_the_health_check_and_a_managed_failover_loses_the_unreplicated_writes()
 {
    let sim = sim();
    sim.inject(Fault::new(FaultKind::RegionOutage)).unwrap();
    sim.advance(secs(45)).unwrap();
    assert!(!healthy(&sim, "health-check-primary-prod-eu").await);
    let hc = sim
        .get_health_check_status(&health_check_id(&sim, "health-check-primary-prod-eu"))
        .await
        .unwrap();
    assert_eq!(hc.checkers_healthy, 0);
    let probe = sim
        .probe(STANDBY, &alb_url(&sim, PRIMARY), None)
        .await
        .unwrap();
    assert!(!probe.healthy && probe.status.is_none(), "{probe:?}");
    let err = sim
        .describe_auto_scaling_group(PRIMARY, ASG)
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unavailable);
    let db = sim.describe_global_cluster(GLOBAL_DB).await.unwrap();
    assert_eq!(db.member_in(PRIMARY).unwrap().status, "inaccessible");
    // The writer stopped writing when the region went down: the data at risk stays what the
    // replication lag held then, under a second.
    let before = sim.status().unwrap();
    let standby_db = before.regions.iter().find(|r| r.region == STANDBY).unwrap();
    let lag = standby_db
        .database
        .as_ref()
        .unwrap()
        .replication_lag_ms
        .unwrap();
    assert!(lag <= 1000, "lag {lag}");
    let committed = db.member_in(PRIMARY).unwrap().last_write_seq.unwrap();
    let replicated = db.member_in(STANDBY).unwrap().last_write_seq.unwrap();
    assert!(committed > replicated);

    let switch = sim
        .switchover_global_cluster(GLOBAL_DB, &cluster_arn(&sim, STANDBY))
        .await
        .unwrap_err();
    assert_eq!(switch.kind, ErrorKind::NotReady);
    let started = sim
        .failover_global_cluster(GLOBAL_DB, &cluster_arn(&sim, STANDBY), true)
        .await
        .unwrap();
    assert_eq!(started.status, "failing-over");
    sim.advance(secs(61)).unwrap();
    let after = sim.describe_global_cluster(GLOBAL_DB).await.unwrap();
    assert_eq!(after.status, "available");
    assert_eq!(after.writer().unwrap().region, STANDBY);
    let world = sim.snapshot().unwrap();
    let lost = &world.aurora[GLOBAL_DB].lost;
    assert_eq!(lost.len(), 1);
    assert_eq!(lost[0].count, committed - replicated);
    assert_eq!(lost[0].last_seq, committed);
    // The standby's application now writes to its own, promoted cluster.
    sim.advance(secs(30)).unwrap();
    let later = sim.describe_global_cluster(GLOBAL_DB).await.unwrap();
    let new_writer = later.writer().unwrap();
    assert!(new_writer.last_write_seq.unwrap() > committed + 100);
    let status = sim.status().unwrap();
    let standby = status.regions.iter().find(|r| r.region == STANDBY).unwrap();
    assert!(standby.app_healthy, "{}", standby.app_detail);
}

#[tokio::test]
async fn an_unhealthy_application_on_healthy_infrastructure_is_caught_and_switched_over_without_loss()
 {
    let sim = sim();
    sim.inject(Fault::new(FaultKind::AppUnhealthy)).unwrap();
    // Three failed checks, 10 s apart.
    sim.advance(secs(20)).unwrap();
    assert!(healthy(&sim, "health-check-primary-prod-eu").await);
    sim.advance(secs(15)).unwrap();
    assert!(!healthy(&sim, "health-check-primary-prod-eu").await);
    let probe = sim
        .probe(STANDBY, &alb_url(&sim, PRIMARY), Some("\"status\":\"ok\""))
        .await
        .unwrap();
    assert!(!probe.healthy);
    assert_eq!(probe.database_connected, Some(true));
    let db = sim.describe_global_cluster(GLOBAL_DB).await.unwrap();
    assert!(db.members.iter().all(|m| m.status == "available"));
    sim.switchover_global_cluster(GLOBAL_DB, &cluster_arn(&sim, STANDBY))
        .await
        .unwrap();
    let busy = sim
        .switchover_global_cluster(GLOBAL_DB, &cluster_arn(&sim, STANDBY))
        .await
        .unwrap_err();
    assert_eq!(busy.kind, ErrorKind::NotReady);
    sim.advance(secs(61)).unwrap();
    let db = sim.describe_global_cluster(GLOBAL_DB).await.unwrap();
    assert_eq!(db.writer().unwrap().region, STANDBY);
    assert!(sim.snapshot().unwrap().aurora[GLOBAL_DB].lost.is_empty());
}

#[tokio::test]
async fn a_database_failure_disconnects_the_application_and_only_a_failover_promotes() {
    let sim = sim();
    sim.inject(Fault::new(FaultKind::DbFailure)).unwrap();
    sim.advance(secs(1)).unwrap();
    let probe = sim
        .probe(STANDBY, &alb_url(&sim, PRIMARY), Some("\"status\":\"ok\""))
        .await
        .unwrap();
    assert_eq!(probe.database_connected, Some(false));
    assert!(!probe.healthy);
    let db = sim.describe_global_cluster(GLOBAL_DB).await.unwrap();
    assert_eq!(db.member_in(PRIMARY).unwrap().status, "failed");
    let refused = sim
        .switchover_global_cluster(GLOBAL_DB, &cluster_arn(&sim, STANDBY))
        .await
        .unwrap_err();
    assert_eq!(refused.kind, ErrorKind::NotReady);
    assert!(refused.message.contains("failed"), "{}", refused.message);
    sim.failover_global_cluster(GLOBAL_DB, &cluster_arn(&sim, STANDBY), true)
        .await
        .unwrap();
    sim.advance(secs(61)).unwrap();
    let db = sim.describe_global_cluster(GLOBAL_DB).await.unwrap();
    assert_eq!(db.writer().unwrap().region, STANDBY);
}

#[tokio::test]
async fn a_partition_cuts_the_standby_off_while_route53_still_sees_the_primary() {
    let sim = sim();
    sim.inject(Fault::new(FaultKind::Partition)).unwrap();
    sim.advance(secs(90)).unwrap();
    let probe = sim
        .probe(STANDBY, &alb_url(&sim, PRIMARY), None)
        .await
        .unwrap();
    assert!(!probe.healthy);
    assert!(probe.error.unwrap().contains("timed out"));
    assert!(healthy(&sim, "health-check-primary-prod-eu").await);
    // Replication is cut too: the standby falls behind by the partition's length.
    let status = sim.status().unwrap();
    let standby = status.regions.iter().find(|r| r.region == STANDBY).unwrap();
    let lag = standby
        .database
        .as_ref()
        .unwrap()
        .replication_lag_ms
        .unwrap();
    assert!(lag >= 89_000, "lag {lag}");
    sim.heal(Some(FaultKind::Partition)).unwrap();
    sim.advance(secs(2)).unwrap();
    let status = sim.status().unwrap();
    let standby = status.regions.iter().find(|r| r.region == STANDBY).unwrap();
    assert!(
        standby
            .database
            .as_ref()
            .unwrap()
            .replication_lag_ms
            .unwrap()
            <= 1000
    );
}

#[tokio::test]
async fn a_lag_spike_shows_in_the_published_lag_metric() {
    let sim = sim();
    sim.inject(Fault::new(FaultKind::LagSpike)).unwrap();
    sim.advance(secs(180)).unwrap();
    let db = sim.describe_global_cluster(GLOBAL_DB).await.unwrap();
    let lag = db.member_in(STANDBY).unwrap().replication_lag_ms.unwrap();
    assert!(lag >= 110_000, "published lag {lag}");
    let q = drflow_steps::backend::MetricQuery {
        region: STANDBY.into(),
        namespace: "AWS/RDS".into(),
        metric_name: "AuroraGlobalDBReplicationLag".into(),
        dimensions: [(
            "DBClusterIdentifier".to_string(),
            "aurora-cluster-prod-eu".to_string(),
        )]
        .into(),
        stat: "Maximum".into(),
        period_s: 60,
    };
    let now = sim.now_ms().unwrap();
    let points = sim.get_metric_data(&q, now - 600_000, now).await.unwrap();
    assert!(points.len() >= 9, "{points:?}");
    assert!(points.first().unwrap().value < 1000.0);
    assert!(points.last().unwrap().value >= 110_000.0);
}

#[tokio::test]
async fn short_capacity_fails_launches_until_healed_and_the_warm_pool_is_fast_after() {
    let sim = sim();
    sim.inject(Fault::new(FaultKind::CapacityShort).in_region(STANDBY))
        .unwrap();
    let g = sim
        .update_auto_scaling_group(STANDBY, ASG, None, None, Some(3))
        .await
        .unwrap();
    assert_eq!(g.desired_capacity, 3);
    assert!(
        g.last_failure
            .as_deref()
            .unwrap()
            .contains("InsufficientInstanceCapacity")
    );
    sim.advance(secs(60)).unwrap();
    let g = sim.describe_auto_scaling_group(STANDBY, ASG).await.unwrap();
    assert_eq!(g.in_service, 1);
    sim.heal(Some(FaultKind::CapacityShort)).unwrap();
    // The next retry starts both warm instances: in service about 36 s later.
    sim.advance(secs(10 + 36)).unwrap();
    let g = sim.describe_auto_scaling_group(STANDBY, ASG).await.unwrap();
    assert_eq!(g.in_service, 3, "{g:?}");
    assert_eq!(g.last_failure, None);
    // They serve once they pass one target health check.
    sim.advance(secs(10)).unwrap();
    let tg = sim
        .snapshot()
        .unwrap()
        .find(STANDBY, Kind::TargetGroup, "tg-prod-eu")
        .unwrap()
        .resource
        .arn
        .clone();
    let targets = sim.describe_target_health(STANDBY, &tg).await.unwrap();
    assert_eq!(targets.len(), 3);
    assert!(targets.iter().all(|t| t.state == "healthy"), "{targets:?}");
}

#[tokio::test]
async fn flapping_takes_the_application_down_and_up_on_its_period() {
    let sim = sim();
    sim.inject(Fault::new(FaultKind::Flapping)).unwrap();
    sim.advance(secs(39)).unwrap();
    assert!(!healthy(&sim, "health-check-primary-prod-eu").await);
    sim.advance(secs(40)).unwrap();
    assert!(healthy(&sim, "health-check-primary-prod-eu").await);
    sim.advance(secs(40)).unwrap();
    assert!(!healthy(&sim, "health-check-primary-prod-eu").await);
}

#[tokio::test]
async fn a_fault_starts_at_its_time_and_ends_after_its_duration() {
    let sim = sim();
    let now = sim.now_ms().unwrap();
    sim.inject(
        Fault::new(FaultKind::RegionOutage)
            .starting_at(now + 60_000)
            .lasting(120_000),
    )
    .unwrap();
    sim.advance(secs(59)).unwrap();
    assert!(sim.status().unwrap().regions.iter().all(|r| r.up));
    sim.advance(secs(2)).unwrap();
    let s = sim.status().unwrap();
    assert!(!s.regions.iter().find(|r| r.region == PRIMARY).unwrap().up);
    sim.advance(secs(120)).unwrap();
    let s = sim.status().unwrap();
    assert!(s.regions.iter().all(|r| r.up));
    assert!(s.faults.is_empty());
}

#[test]
fn bad_faults_are_refused_and_change_nothing() {
    let sim = sim();
    let before = sim.snapshot().unwrap();
    let now = before.clock_ms;
    let err = sim
        .inject(Fault::new(FaultKind::RegionOutage).in_region("eu-west-9"))
        .unwrap_err();
    assert!(matches!(err, FaultError::UnknownRegion { .. }), "{err:?}");
    let err = sim
        .inject(Fault::new(FaultKind::RegionOutage).starting_at(now - 1))
        .unwrap_err();
    assert!(matches!(err, FaultError::InPast { .. }), "{err:?}");
    let mut az = Fault::new(FaultKind::AzLoss).in_region(PRIMARY);
    az.az = Some("eu-south-1z".into());
    let err = sim.inject(az).unwrap_err();
    assert!(matches!(err, FaultError::UnknownAz { .. }), "{err:?}");
    let mut az = Fault::new(FaultKind::Partition);
    az.az = Some("eu-south-1a".into());
    assert!(matches!(
        sim.inject(az).unwrap_err(),
        FaultError::AzNotApplicable { .. }
    ));
    assert_eq!(sim.snapshot().unwrap(), before);
}

#[tokio::test]
async fn losing_a_zone_replaces_its_instances_in_the_others() {
    let sim = sim();
    let world = sim.snapshot().unwrap();
    let zones: Vec<String> = world.asgs[&format!("{PRIMARY}/{ASG}")]
        .instances
        .iter()
        .map(|i| i.az.clone())
        .collect();
    let mut f = Fault::new(FaultKind::AzLoss).in_region(PRIMARY);
    f.az = Some(zones[0].clone());
    sim.inject(f).unwrap();
    sim.advance(secs(1)).unwrap();
    let g = sim.describe_auto_scaling_group(PRIMARY, ASG).await.unwrap();
    assert_eq!((g.in_service, g.pending), (1, 1));
    sim.advance(secs(240)).unwrap();
    let g = sim.describe_auto_scaling_group(PRIMARY, ASG).await.unwrap();
    assert_eq!(g.in_service, 2);
    let world = sim.snapshot().unwrap();
    assert!(
        world.asgs[&format!("{PRIMARY}/{ASG}")]
            .instances
            .iter()
            .all(|i| i.az != zones[0])
    );
}

#[tokio::test]
async fn sns_messages_are_recorded_and_an_unreachable_region_refuses_them() {
    let sim = sim();
    let topic = |region: &str| format!("arn:aws:sns:{region}:000000000000:sns-topic-prod-eu");
    let id = sim
        .publish(STANDBY, &topic(STANDBY), "failover", "started")
        .await
        .unwrap();
    let sent = sim.published().unwrap();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        (sent[0].message_id.as_str(), sent[0].subject.as_str()),
        (id.as_str(), "failover")
    );
    let missing = sim
        .publish(STANDBY, &topic(PRIMARY), "x", "y")
        .await
        .unwrap_err();
    assert_eq!(missing.kind, ErrorKind::NotFound);
    sim.inject(Fault::new(FaultKind::RegionOutage)).unwrap();
    let down = sim
        .publish(PRIMARY, &topic(PRIMARY), "x", "y")
        .await
        .unwrap_err();
    assert_eq!(down.kind, ErrorKind::Unavailable);
}

#[test]
fn the_same_calls_on_the_same_world_tell_the_same_story() {
    let story = || {
        let sim = sim();
        sim.inject(Fault::new(FaultKind::Flapping)).unwrap();
        sim.advance(secs(200)).unwrap();
        serde_json::to_string(&sim.snapshot().unwrap()).unwrap()
    };
    assert_eq!(story(), story());
}

#[tokio::test(start_paused = true)]
async fn on_the_runs_clock_parallel_calls_overlap_and_waits_sleep_on_the_clock() {
    let world = common::provisioned_eu();
    let start = world.clock_ms;
    let clock = Arc::new(drflow_engine::VirtualClock::new(start));
    let sim = SimBackend::scratch(world).with_clock(clock.clone());
    let arn = cluster_arn(&sim, STANDBY);
    let topic = format!("arn:aws:sns:{STANDBY}:000000000000:sns-topic-prod-eu");
    let (a, b) = tokio::join!(
        sim.update_auto_scaling_group(STANDBY, ASG, None, None, Some(2)),
        sim.publish(STANDBY, &topic, "s", "m"),
    );
    a.unwrap();
    b.unwrap();
    use drflow_engine::Clock;
    // Two calls at once cost one call's latency.
    assert_eq!(clock.now_ms() - start, 100);
    sim.failover_global_cluster(GLOBAL_DB, &arn, true)
        .await
        .unwrap();
    // Time passes on the clock and the world follows it.
    tokio::time::sleep(secs(61)).await;
    let db = sim.describe_global_cluster(GLOBAL_DB).await.unwrap();
    assert_eq!(db.writer().unwrap().region, STANDBY);
    assert_eq!(sim.now_ms().unwrap(), clock.now_ms());
    assert!(sim.advance(secs(1)).is_err());
    // A probe that gets no answer costs its timeout on the clock.
    sim.inject(Fault::new(FaultKind::Partition)).unwrap();
    let before = clock.now_ms();
    let probe = sim
        .probe(STANDBY, &alb_url(&sim, PRIMARY), None)
        .await
        .unwrap();
    assert!(probe.status.is_none());
    assert_eq!(clock.now_ms() - before, 6_000);
}

/// A whole provision on the run's clock (paused tokio time, as the binary runs a sim run):
/// waits sleep on the clock, parallel steps' waits overlap, and the world ends at the clock's
/// time, saved only when checkpointed.
#[tokio::test(start_paused = true)]
async fn a_provision_on_the_runs_clock_overlaps_parallel_waits() {
    use drflow_engine::Clock;
    // The same provision with the world keeping its own time: every wait adds up.
    let serial = {
        let sim = Arc::new(SimBackend::scratch(World::default()));
        let cloud = common::Cloud::with_backend(tempfile::tempdir().unwrap(), sim.clone());
        cloud.run("provision.yaml", "eu.yaml").await;
        sim.snapshot().unwrap().clock_ms - drflow_steps::sim::EPOCH_MS
    };
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(drflow_engine::VirtualClock::new(
        drflow_steps::sim::EPOCH_MS,
    ));
    let sim = Arc::new(SimBackend::open(dir.path()).with_clock(clock.clone()));
    let cloud = common::Cloud::with_backend(tempfile::tempdir().unwrap(), sim.clone());
    cloud.run("provision.yaml", "eu.yaml").await;
    let elapsed = clock.now_ms() - drflow_steps::sim::EPOCH_MS;
    println!("provision: {serial} ms of sim time serially, {elapsed} ms on the run's clock");
    assert!(
        elapsed < serial,
        "on the clock {elapsed} ms, serially {serial} ms"
    );
    // Nothing is on disk until the checkpoint, then all of it.
    let path = drflow_steps::sim::world_path(dir.path());
    assert!(!path.exists());
    sim.checkpoint().unwrap();
    let saved = drflow_steps::sim::load_world(&path).unwrap();
    assert_eq!(saved.clock_ms, clock.now_ms());
    assert_eq!(saved.len(), sim.snapshot().unwrap().len());
}

#[tokio::test]
async fn a_long_partition_keeps_the_world_small_and_the_standby_is_rebuilt_after() {
    let sim = sim();
    sim.inject(Fault::new(FaultKind::Partition)).unwrap();
    sim.advance(secs(2 * 3600)).unwrap();
    let world = sim.snapshot().unwrap();
    assert!(world.aurora[GLOBAL_DB].log.len() <= drflow_steps::sim::aurora::MAX_LOG);
    let db = sim.describe_global_cluster(GLOBAL_DB).await.unwrap();
    let behind = db.writer().unwrap().last_write_seq.unwrap()
        - db.member_in(STANDBY).unwrap().last_write_seq.unwrap();
    // Two hours of writes, 10 a second, all missing on the standby.
    assert!(behind >= 71_000, "{behind}");
    // A failover now would lose every one of them, counted without the log (the positions
    // as the failover froze them, a call's latency after the look above).
    let (lost, frozen) = {
        let sim = SimBackend::scratch(world);
        let started = sim
            .failover_global_cluster(GLOBAL_DB, &cluster_arn(&sim, STANDBY), true)
            .await
            .unwrap();
        let frozen = started.writer().unwrap().last_write_seq.unwrap()
            - started.member_in(STANDBY).unwrap().last_write_seq.unwrap();
        (
            sim.snapshot().unwrap().aurora[GLOBAL_DB].lost[0].count,
            frozen,
        )
    };
    assert_eq!(lost, frozen);
    sim.heal(None).unwrap();
    sim.advance(secs(5)).unwrap();
    let status = sim.status().unwrap();
    let standby = status.regions.iter().find(|r| r.region == STANDBY).unwrap();
    assert!(
        standby
            .database
            .as_ref()
            .unwrap()
            .replication_lag_ms
            .unwrap()
            <= 1000
    );
}
