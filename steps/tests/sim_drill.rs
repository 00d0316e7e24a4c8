//! What a drill stands on: the synthetic trading client, the facts the world records as they
//! happen, and the scenarios' faults, on a provisioned world (eu.yaml: primary eu-south-1,
//! standby eu-central-1, weighted records 100/0), settled for ten minutes. Worlds are scratch
//! copies in memory; time is the world's virtual clock only.

mod common;

use std::time::Duration;

use drflow_steps::SimBackend;
use drflow_steps::backend::{FailoverApi, GLOBAL, Kind};
use drflow_steps::sim::{ClientConfig, ClientRequest, Fault, FaultKind, Scenario, WorldTimeline};

const PRIMARY: &str = "eu-south-1";
const STANDBY: &str = "eu-central-1";
const GLOBAL_DB: &str = "aurora-global-prod-eu";
const ASG: &str = "asg-prod-eu";
const HOST: &str = "api.trading-prod-eu.example.com";

/// A copy of the settled world with the client running for 30 s.
fn with_client() -> SimBackend {
    let sim = SimBackend::scratch(common::provisioned_eu());
    sim.start_client(ClientConfig {
        host: HOST.into(),
        interval_ms: 1000,
    })
    .unwrap();
    sim.advance(secs(30)).unwrap();
    sim
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn now(sim: &SimBackend) -> u64 {
    sim.now_ms().unwrap()
}

fn timeline(sim: &SimBackend) -> WorldTimeline {
    sim.timeline(0).unwrap()
}

fn requests(sim: &SimBackend) -> Vec<ClientRequest> {
    timeline(sim).client
}

fn cluster_arn(sim: &SimBackend, region: &str) -> String {
    let w = sim.snapshot().unwrap();
    w.find(region, Kind::DbCluster, "aurora-cluster-prod-eu")
        .unwrap()
        .resource
        .arn
        .clone()
}

fn zone_id(sim: &SimBackend) -> String {
    let w = sim.snapshot().unwrap();
    w.list(Some(GLOBAL), Some(Kind::HostedZone))[0].id.clone()
}

fn describe(r: &[ClientRequest]) -> String {
    r.iter()
        .map(|r| {
            format!(
                "{} #{} {:?} {} {:?}",
                r.at_ms / 1000,
                r.seq,
                r.region,
                r.ok,
                r.error
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn the_client_writes_every_second_through_the_primary_and_each_write_is_committed() {
    let sim = with_client();
    let r = requests(&sim);
    assert_eq!(r.len(), 31, "{}", describe(&r));
    let seqs: Vec<u64> = r.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, (1..=31).collect::<Vec<_>>());
    for w in r.windows(2) {
        assert_eq!(w[1].at_ms - w[0].at_ms, 1000);
    }
    assert!(
        r.iter().all(|r| r.ok
            && r.region.as_deref() == Some(PRIMARY)
            && r.writer_region.as_deref() == Some(PRIMARY)),
        "{}",
        describe(&r)
    );
    // The client's writes are the database's: one committed write per acknowledged request.
    let db = sim.describe_global_cluster(GLOBAL_DB).await.unwrap();
    let writer = db.writer().unwrap();
    assert_eq!(writer.last_write_seq, r.last().unwrap().db_seq);
    assert_eq!(writer.last_write_at_ms, Some(r.last().unwrap().at_ms));
    let facts = timeline(&sim).writes;
    assert_eq!(facts.acked, 31);
    assert_eq!(facts.last_acked_seq, Some(31));
    assert_eq!(facts.writer_has_up_to_seq, Some(31));
    assert!(facts.lost.is_empty());
    // Stopped, it sends nothing more; the app's own stream does not come back under it.
    sim.stop_client().unwrap();
    sim.advance(secs(10)).unwrap();
    assert_eq!(requests(&sim).len(), 31);
    assert!(sim.start_client(ClientConfig::default()).is_err());
}

/// After a weight change, the client keeps going to the old region until its cached answer
/// expires, which is after the change is INSYNC.
#[tokio::test]
async fn the_client_follows_a_dns_change_only_when_its_cached_answer_expires() {
    let sim = with_client();
    let change = sim
        .set_record_weight(&zone_id(&sim), HOST, "A", "standby", 100)
        .await
        .unwrap();
    sim.set_record_weight(&zone_id(&sim), HOST, "A", "primary", 0)
        .await
        .unwrap();
    let submitted = change.submitted_at_ms;
    // INSYNC after 60 s: name servers answer the standby from then on.
    sim.advance(secs(60)).unwrap();
    let insync = submitted + 60_000;
    // The client's resolver still holds the primary's answer; when does it expire?
    let expires = sim
        .snapshot()
        .unwrap()
        .dns
        .resolvers
        .get("client")
        .and_then(|c| c.values().next())
        .map(|c| c.expires_at_ms)
        .unwrap();
    assert!(expires > insync && expires <= insync + 60_000, "{expires}");
    sim.advance(secs(70)).unwrap();
    let r = requests(&sim);
    let first_standby = r
        .iter()
        .find(|r| r.region.as_deref() == Some(STANDBY))
        .unwrap_or_else(|| panic!("never to the standby:\n{}", describe(&r)));
    // The first request once the cached answer has expired, not before.
    assert!(first_standby.at_ms >= expires, "{}", describe(&r));
    assert!(first_standby.at_ms < expires + 1000, "{}", describe(&r));
    assert!(
        r.iter()
            .filter(|x| x.at_ms < first_standby.at_ms)
            .all(|x| x.region.as_deref() == Some(PRIMARY))
    );
    // Through the standby, the writes still commit on the primary's writer.
    assert!(
        r.iter()
            .filter(|x| x.at_ms >= first_standby.at_ms)
            .all(|x| x.ok
                && x.region.as_deref() == Some(STANDBY)
                && x.writer_region.as_deref() == Some(PRIMARY)),
        "{}",
        describe(&r)
    );
    // The changes are facts, INSYNC 60 s after their submission.
    let dns = timeline(&sim).dns_changes;
    assert_eq!(dns.len(), 2, "{dns:?}");
    assert_eq!(dns[0].change_id, change.id);
    assert_eq!(dns[0].insync_at_ms, insync);
    assert!(dns[0].records.contains("standby weight 100"), "{dns:?}");
}

/// A managed failover after replication fell two minutes behind: exactly the acknowledged
/// writes the standby had not applied are lost, and the world says which.
#[tokio::test]
async fn a_managed_failover_loses_exactly_the_acknowledged_writes_the_standby_lacked() {
    let sim = with_client();
    sim.inject(Fault::new(FaultKind::LagSpike)).unwrap();
    sim.advance(secs(90)).unwrap();
    sim.inject(Fault::new(FaultKind::RegionOutage).in_region(PRIMARY))
        .unwrap();
    sim.advance(secs(30)).unwrap();
    let db = sim.describe_global_cluster(GLOBAL_DB).await.unwrap();
    let standby_has = db.member_in(STANDBY).unwrap().last_write_seq.unwrap();
    let acked: Vec<ClientRequest> = requests(&sim).into_iter().filter(|r| r.ok).collect();
    let expected: Vec<u64> = acked
        .iter()
        .filter(|r| r.db_seq.unwrap() > standby_has)
        .map(|r| r.seq)
        .collect();
    assert!(
        (85..=95).contains(&expected.len()),
        "{} writes behind",
        expected.len()
    );
    let requested = now(&sim);
    sim.failover_global_cluster(GLOBAL_DB, &cluster_arn(&sim, STANDBY), true)
        .await
        .unwrap();
    sim.advance(secs(120)).unwrap();
    let t = timeline(&sim);
    assert_eq!(t.writes.lost, expected);
    assert_eq!(
        t.writes.acked,
        acked.len() as u64
            + t.client
                .iter()
                .filter(|r| r.ok && r.at_ms > requested)
                .count() as u64
    );
    let p = &t.promotions[0];
    assert_eq!(p.kind, "failover");
    assert_eq!(p.to_region, STANDBY);
    assert!(p.requested_at_ms >= requested && p.requested_at_ms <= requested + 200);
    assert_eq!(p.done_at_ms, Some(p.requested_at_ms + 60_000));
    assert_eq!(p.lost_writes, expected.len() as u64);
    let status = sim.status().unwrap();
    let lost_in_db: u64 = status
        .regions
        .iter()
        .filter_map(|r| r.database.as_ref())
        .map(|d| d.lost_writes)
        .max()
        .unwrap();
    assert_eq!(lost_in_db, expected.len() as u64);
    // The standby serves the client (DNS answers it: the primary's check failed), and its
    // writes commit on the new writer.
    let last = t.client.last().unwrap();
    assert!(last.ok, "{}", describe(&t.client));
    assert_eq!(last.writer_region.as_deref(), Some(STANDBY));
    assert_eq!(t.writes.writer_region.as_deref(), Some(STANDBY));
    assert_eq!(t.writes.writer_has_up_to_seq, Some(last.seq));
}

/// A switchover loses nothing: every acknowledged write is on the new writer.
#[tokio::test]
async fn a_switchover_loses_no_acknowledged_write_and_a_fence_is_a_fact() {
    let sim = with_client();
    let at = now(&sim);
    sim.switchover_global_cluster(GLOBAL_DB, &cluster_arn(&sim, STANDBY))
        .await
        .unwrap();
    sim.advance(secs(5)).unwrap();
    sim.update_auto_scaling_group(PRIMARY, ASG, Some(0), None, Some(0))
        .await
        .unwrap();
    sim.advance(secs(180)).unwrap();
    let t = timeline(&sim);
    assert!(t.writes.lost.is_empty());
    assert_eq!(t.writes.writer_region.as_deref(), Some(STANDBY));
    assert_eq!(t.writes.writer_has_up_to_seq, t.writes.last_acked_seq);
    // Writes stop during the switchover, then the client is served by the standby.
    let during: Vec<&ClientRequest> = t
        .client
        .iter()
        .filter(|r| r.at_ms > at + 1000 && r.at_ms < at + 60_000)
        .collect();
    assert!(during.iter().all(|r| !r.ok), "{}", describe(&t.client));
    assert!(t.client.last().unwrap().ok, "{}", describe(&t.client));
    assert_eq!(t.promotions[0].kind, "switchover");
    assert_eq!(t.promotions[0].lost_writes, 0);
    assert_eq!(t.fences.len(), 1, "{:?}", t.fences);
    assert_eq!(t.fences[0].region, PRIMARY);
    assert_eq!(t.fences[0].how, "scale_to_zero");
}

/// A region outage as the drill sees it: the client's first failure, Route 53's first failed
/// observation and verdict, the alarms (the composite too: the standby stays healthy), then
/// the promotion, the capacity and the DNS change, each at the time it happened.
#[tokio::test]
async fn a_region_outage_records_each_fact_at_its_time() {
    let sim = with_client();
    let fault = now(&sim);
    sim.inject(Fault::new(FaultKind::RegionOutage).in_region(PRIMARY))
        .unwrap();
    sim.advance(secs(240)).unwrap();
    let t = sim.timeline(fault).unwrap();
    let first_failed = t.client.iter().find(|r| !r.ok).unwrap();
    assert!(first_failed.at_ms > fault && first_failed.at_ms <= fault + 1000);
    assert!(
        first_failed.error.as_deref().unwrap().contains("timed out"),
        "{first_failed:?}"
    );
    let hc = |kind: &str| {
        t.health_checks
            .iter()
            .find(|f| f.kind == kind && f.region.as_deref() == Some(PRIMARY))
            .unwrap_or_else(|| panic!("no {kind}: {:?}", t.health_checks))
            .clone()
    };
    let first_check = hc("first_failed_check");
    assert!(
        (fault..fault + 10_000).contains(&first_check.at_ms),
        "{first_check:?}"
    );
    assert_eq!(first_check.name, "health-check-primary-prod-eu");
    let unhealthy = hc("unhealthy");
    assert!(
        (fault + 20_000..fault + 40_000).contains(&unhealthy.at_ms),
        "{unhealthy:?}"
    );
    // The standby's check never fails: its application reads its local cluster.
    assert!(
        t.health_checks
            .iter()
            .all(|f| f.region.as_deref() != Some(STANDBY)),
        "{:?}",
        t.health_checks
    );
    let alarm = |name: &str| {
        t.alarms
            .iter()
            .find(|a| a.name == name && a.to == "ALARM")
            .unwrap_or_else(|| panic!("{name} never in ALARM: {:?}", t.alarms))
            .clone()
    };
    let primary = alarm("health-check-alarm-primary-prod-eu");
    assert_eq!(primary.from, "OK");
    assert!(primary.at_ms.is_multiple_of(60_000));
    assert!(
        // Two failed one-minute periods of HealthCheckStatus, the first being the one it failed in.
        (unhealthy.at_ms + 60_000..=unhealthy.at_ms + 120_000).contains(&primary.at_ms),
        "{primary:?}"
    );
    let composite = alarm("regional-outage-alarm-prod-eu");
    assert_eq!(composite.at_ms, primary.at_ms);
    assert_eq!(composite.region, "us-east-1");
    // The events reach the alarm queue.
    // The events cross to the standby region's queue.
    let queue = sim
        .snapshot()
        .unwrap()
        .find(STANDBY, Kind::SqsQueue, "alarm-events-prod-eu")
        .unwrap()
        .resource
        .clone();
    let url = queue.attrs["url"].as_str().unwrap();
    let delivered = sim.receive(url, fault).unwrap();
    assert!(
        delivered
            .iter()
            .any(|m| m.body["detail"]["alarmName"] == "regional-outage-alarm-prod-eu"),
        "{delivered:?}"
    );
    assert!(sim.receive(&queue.arn, now(&sim)).unwrap().is_empty());
    assert_eq!(sim.receive(&queue.arn, fault).unwrap(), delivered);

    // The failover's actions, each a fact at its time.
    let acted = now(&sim);
    sim.failover_global_cluster(GLOBAL_DB, &cluster_arn(&sim, STANDBY), true)
        .await
        .unwrap();
    sim.update_auto_scaling_group(STANDBY, ASG, None, None, Some(2))
        .await
        .unwrap();
    sim.advance(secs(60)).unwrap();
    let change = sim
        .set_record_weight(&zone_id(&sim), HOST, "A", "standby", 100)
        .await
        .unwrap();
    sim.advance(secs(120)).unwrap();
    let t = sim.timeline(acted).unwrap();
    assert!(t.alarms.is_empty() || t.alarms.iter().all(|a| a.at_ms >= acted));
    let p = &t.promotions[0];
    assert_eq!(p.done_at_ms, Some(p.requested_at_ms + 60_000));
    let c = &t.capacity[0];
    assert_eq!(
        (c.region.as_str(), c.group.as_str(), c.desired),
        (STANDBY, ASG, 2)
    );
    // From the warm pool: 36 s.
    assert_eq!(c.ready_at_ms, Some(c.requested_at_ms + 36_000));
    let d = &t.dns_changes[0];
    assert_eq!(d.change_id, change.id);
    assert_eq!(d.insync_at_ms, d.submitted_at_ms + 60_000);
    assert!(t.fences.is_empty(), "an unreachable region is not fenced");
    assert!(t.client.last().unwrap().ok, "{}", describe(&t.client));
}

/// Each scenario's faults do at the world level what the scenario says.
#[tokio::test]
async fn each_scenario_does_what_it_says() {
    for scenario in Scenario::ALL {
        let sim = with_client();
        let status = sim.status().unwrap();
        let at = now(&sim);
        for f in scenario.faults(&status, at) {
            sim.inject(f).unwrap();
        }
        sim.advance(Duration::from_millis(scenario.horizon_ms()))
            .unwrap();
        let t = sim.timeline(at).unwrap();
        let d = format!("{scenario}: {:#?}", t.alarms);
        let alarm_at = |name: &str| {
            t.alarms
                .iter()
                .find(|a| a.name.starts_with(name) && a.to == "ALARM")
                .map(|a| a.at_ms)
        };
        let composite = alarm_at("regional-outage-alarm");
        let unhealthy = |region: &str| {
            t.health_checks
                .iter()
                .any(|f| f.kind == "unhealthy" && f.region.as_deref() == Some(region))
        };
        let failed = t.client.iter().filter(|r| !r.ok).count();
        let last_ok = t.client.last().unwrap().ok;
        assert!(t.writes.lost.is_empty(), "{d}");
        assert!(!unhealthy(STANDBY), "{d}: the standby stays healthy");
        match scenario {
            Scenario::RegionOutage | Scenario::DbFailure | Scenario::AppUnhealthy => {
                assert!(unhealthy(PRIMARY), "{d}");
                assert!(composite.is_some(), "{d}");
                assert!(failed > 0, "{d}");
            }
            Scenario::CapacityShort => {
                assert!(composite.is_some(), "{d}");
                let g = sim
                    .update_auto_scaling_group(STANDBY, ASG, None, None, Some(2))
                    .await
                    .unwrap();
                sim.advance(secs(60)).unwrap();
                let g2 = sim.describe_auto_scaling_group(STANDBY, ASG).await.unwrap();
                assert_eq!(g2.in_service, g.in_service, "{d}");
                assert!(
                    g2.last_failure
                        .unwrap_or_default()
                        .contains("InsufficientInstanceCapacity"),
                    "{d}"
                );
            }
            Scenario::AzLoss => {
                // The primary keeps serving from its other zone: Route 53 never notices.
                assert!(!unhealthy(PRIMARY), "{d}");
                assert_eq!(composite, None, "{d}");
                assert!(last_ok, "{d}");
                assert!(failed == 0, "{d}: {}", describe(&t.client));
            }
            Scenario::Partition => {
                // Route 53's checkers reach both regions: both healthy, the client served.
                assert!(!unhealthy(PRIMARY), "{d}");
                assert_eq!(composite, None, "{d}");
                assert_eq!(failed, 0, "{d}");
                let s = sim.status().unwrap();
                assert!(
                    s.regions
                        .iter()
                        .filter(|r| [PRIMARY, STANDBY].contains(&r.region.as_str()))
                        .all(|r| r.app_healthy),
                    "{d}"
                );
            }
            Scenario::Flapping => {
                // Up and down, then it stops and the primary serves again.
                assert!(failed > 0, "{d}");
                assert!(last_ok, "{d}");
                let flaps = t
                    .health_checks
                    .iter()
                    .filter(|f| f.kind == "first_failed_check")
                    .count();
                assert!(flaps >= 4, "{d}");
                assert_eq!(sim.status().unwrap().faults.len(), 0, "{d}");
            }
            Scenario::LagSpike => {
                // The composite fires while the primary is down, which it is for a few
                // minutes; then the client is served by it again, nothing lost.
                let outage = drflow_steps::sim::lag_spike_outage_at(at);
                let back = outage + 200_000;
                let c = composite.expect(&d);
                assert!(c > outage && c + 30_000 <= back, "{d}");
                assert!(last_ok, "{d}");
                let last = t.client.last().unwrap();
                assert_eq!(last.writer_region.as_deref(), Some(PRIMARY), "{d}");
                let first_fail = t.client.iter().find(|r| !r.ok).unwrap().at_ms;
                assert!(first_fail >= outage, "{d}");
                let recovered = t
                    .client
                    .iter()
                    .find(|r| r.ok && r.at_ms > first_fail)
                    .unwrap()
                    .at_ms;
                assert!(recovered - first_fail < 300_000, "{d}");
            }
        }
    }
}
