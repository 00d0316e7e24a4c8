//! Each failover step on the fake cloud: basic, twice (a retry or a resume re-runs a step whose
//! effects happened: it must act once), and resumed in the middle of a wait. Paused tokio time:
//! every wait is virtual.

use std::sync::Arc;
use std::time::Duration;

use drflow_engine::{Outputs, Registry, StepContext, StepError};
use serde_json::{Value, json};

use super::fake::*;
use crate::target::LazyBackend;
use crate::{CloudBackend, CloudConfig};

fn registry(fake: &Arc<Fake>) -> Registry {
    let backend: Arc<dyn CloudBackend> = fake.clone();
    let lazy = Arc::new(LazyBackend::from_backend(CloudConfig::default(), backend));
    let mut reg = Registry::new();
    super::register_cloud(&mut reg, &lazy);
    super::register_pure(&mut reg);
    reg
}

async fn run(fake: &Arc<Fake>, step: &str, input: Value) -> Result<Outputs, StepError> {
    let reg = registry(fake);
    let t = reg
        .get(step)
        .unwrap_or_else(|| panic!("{step} is registered"));
    let input = input.as_object().cloned().unwrap();
    t.spec()
        .check_input(&crate::failover::step::with_defaults(t.spec(), &input))?;
    t.run(&StepContext::detached(step), &input).await
}

fn actions(out: &Outputs) -> Vec<String> {
    out["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

fn discover_input() -> Value {
    json!({"env_suffix": "prod", "primary_region": PRIMARY, "standby_region": STANDBY,
           "domain_name": "trading.example.com"})
}

#[tokio::test(start_paused = true)]
async fn discover_finds_the_environment_and_where_traffic_goes() {
    for weighted in [true, false] {
        let fake = Fake::new(weighted);
        let out = run(&fake, "dr.discover", discover_input()).await.unwrap();
        assert_eq!(out["global_cluster_id"], GLOBAL_ID);
        assert_eq!(
            out["routing_policy"],
            if weighted { "weighted" } else { "failover" }
        );
        assert_eq!(out["serving_region"], "primary");
        assert_eq!(out["primary_health_check_id"], HC_PRIMARY);
        assert_eq!(out["standby_alb_dns_name"], alb(STANDBY));
        assert_eq!(
            out["probe_url"],
            format!("https://{}/health/trading", alb(PRIMARY))
        );
        assert_eq!(out["primary_capacity"], 2);
        assert_eq!(out["topic_arns"], json!([topic(PRIMARY), topic(STANDBY)]));
        assert_eq!(out["unreachable"], json!([]));
        assert_eq!(actions(&out), Vec::<String>::new());
    }
    // With the primary region gone, what is there is still found, and the gaps are listed.
    let fake = Fake::new(true);
    fake.region_outage();
    let out = run(&fake, "dr.discover", discover_input()).await.unwrap();
    assert_eq!(out["primary_target_group_arn"], "");
    assert_eq!(out["primary_capacity"], 0);
    assert_eq!(out["topic_arns"], json!([topic(STANDBY)]));
    assert_eq!(
        out["serving_region"], "standby",
        "weight 0 serves when the other is unhealthy"
    );
    assert_eq!(out["unreachable"].as_array().unwrap().len(), 3);
}

fn signals_input() -> Value {
    json!({"health_check_id": HC_PRIMARY, "probe_url": "https://x/health/trading",
           "probe_from_region": STANDBY, "search_string": "\"status\":\"ok\"",
           "alarms": [{"region": METRICS, "name": "health-check-alarm-primary-prod"},
                      {"region": PRIMARY, "name": "unhealthy-hosts-alarm-prod"}]})
}

fn took_ms(out: &Outputs) -> u64 {
    out["ended_at_ms"].as_u64().unwrap() - out["started_at_ms"].as_u64().unwrap()
}

#[tokio::test(start_paused = true)]
async fn signals_are_read_until_the_quorum_is_confirmed_and_an_unreadable_one_is_unknown() {
    // A healthy primary: read until the deadline, 60 s (detection) + 30 s (window).
    let fake = Fake::new(true);
    let out = run(&fake, "dr.read_signals", signals_input())
        .await
        .unwrap();
    assert_eq!(
        (
            &out["health_check_down"],
            &out["alarms_down"],
            &out["probe_down"]
        ),
        (&json!(false), &json!(false), &json!(false))
    );
    assert_eq!(out["readings"], 10, "every 10 s from 0 to 90 s");
    assert_eq!(out["first_failure_at_ms"], Value::Null);
    assert_eq!(took_ms(&out), 90_000, "waited on the run's clock");

    // Down from the first reading: the quorum is confirmed after the 30 s window.
    let fake = Fake::new(true);
    let failed_at = fake.now();
    fake.region_outage();
    let out = run(&fake, "dr.read_signals", signals_input())
        .await
        .unwrap();
    assert_eq!(out["health_check_down"], true);
    // One alarm in ALARM is enough, even with the other one's region unreadable.
    assert_eq!(out["alarms_down"], true);
    // The health check and the alarms settle the last reading before the probe is read (it
    // would only add its timeout): down for 20 s of the window, it is not confirmed.
    assert_eq!(out["probe_down"], Value::Null);
    assert_eq!(out["first_failure_at_ms"], failed_at);
    assert_eq!(out["readings"], 4, "0, 10, 20 and 30 s");
    assert_eq!(took_ms(&out), 30_000);

    // Only the chosen signals are read.
    let mut input = signals_input();
    input["signals"] = json!(["probe"]);
    input["quorum"] = json!(1);
    let out = run(&fake, "dr.read_signals", input).await.unwrap();
    assert_eq!(out["health_check_down"], Value::Null);
    assert_eq!(out["alarms_down"], Value::Null);
    assert_eq!(out["probe_down"], true);
}

#[tokio::test(start_paused = true)]
async fn an_outage_that_route53_notices_after_the_step_starts_is_confirmed() {
    let fake = Fake::new(true);
    let outage_at = fake.now();
    let noticed = fake.region_outage_noticed_after(Duration::from_secs(35));
    let out = run(&fake, "dr.read_signals", signals_input())
        .await
        .unwrap();
    noticed.await.unwrap();
    assert_eq!(out["health_check_down"], true, "{out:?}");
    assert_eq!(out["probe_down"], true, "{out:?}");
    // Unhealthy from the reading at 40 s; confirmed at 70 s, within 60 s + 30 s.
    assert_eq!(took_ms(&out), 70_000, "{out:?}");
    assert_eq!(out["readings"], 8);
    // The RTO counts from Route 53's change, not from drflow's earlier probe failure.
    assert_eq!(out["first_failure_at_ms"], outage_at + 35_000);

    // With a deadline too short for Route 53 to be seen down for the window: the health check
    // is neither down nor up, never "healthy" (which would read as isolation).
    let fake = Fake::new(true);
    let noticed = fake.region_outage_noticed_after(Duration::from_secs(35));
    let mut input = signals_input();
    input["detection_timeout"] = json!("20s");
    let out = run(&fake, "dr.read_signals", input).await.unwrap();
    noticed.await.unwrap();
    assert_eq!(took_ms(&out), 50_000);
    assert_eq!(out["health_check_down"], Value::Null, "{out:?}");
    assert_eq!(out["probe_down"], true);
    assert_eq!(out["first_failure_at_ms"], fake.now() - 50_000);
    let words = out["detail"]["health_check"].as_str().unwrap();
    assert!(
        // Counted from Route 53's change at 35 s, not from the reading at 40 s.
        words.contains("down for 15 s, less than the 30 s window"),
        "{words}"
    );
}

/// A run started two minutes into an outage (by a trigger, after the alarms fired): the
/// health check has been down since its change and the alarm's ALARM is its own confirmation,
/// so the step decides on its first reading instead of waiting another window.
#[tokio::test(start_paused = true)]
async fn signals_down_for_long_enough_before_the_step_are_confirmed_at_once() {
    let fake = Fake::new(true);
    let outage_at = fake.now();
    fake.region_outage();
    tokio::time::sleep(Duration::from_secs(120)).await;
    let mut input = signals_input();
    input["window"] = json!("60s");
    let out = run(&fake, "dr.read_signals", input).await.unwrap();
    assert_eq!(out["health_check_down"], true, "{out:?}");
    assert_eq!(out["alarms_down"], true, "{out:?}");
    assert_eq!(out["readings"], 1, "{out:?}");
    assert_eq!(took_ms(&out), 0, "{out:?}");
    assert_eq!(out["first_failure_at_ms"], outage_at);

    // Only 20 s into the outage, the health check still needs the rest of its window; the
    // alarm alone is confirmed at once.
    let fake = Fake::new(true);
    fake.region_outage();
    tokio::time::sleep(Duration::from_secs(20)).await;
    let mut input = signals_input();
    input["window"] = json!("60s");
    input["signals"] = json!(["health_check", "probe"]);
    let out = run(&fake, "dr.read_signals", input).await.unwrap();
    assert_eq!(out["health_check_down"], true, "{out:?}");
    assert_eq!(took_ms(&out), 60_000, "{out:?}");
}

#[tokio::test(start_paused = true)]
async fn a_signal_that_recovers_within_the_window_does_not_count() {
    let fake = Fake::new(true);
    fake.region_outage();
    let healer = {
        let fake = fake.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(15)).await;
            fake.with(|s| {
                s.endpoint_healthy.insert(HC_PRIMARY.into(), true);
                s.probe_healthy = true;
            });
        })
    };
    let out = run(&fake, "dr.read_signals", signals_input())
        .await
        .unwrap();
    healer.await.unwrap();
    assert_eq!(out["health_check_down"], false);
    assert_eq!(out["probe_down"], false);
}

#[tokio::test(start_paused = true)]
async fn flapping_is_never_confirmed_down() {
    // Down and up every 20 s, shorter than the 30 s window, for longer than the step reads.
    let fake = Fake::new(true);
    let flap = fake.flapping(Duration::from_secs(20), 20);
    let out = run(&fake, "dr.read_signals", signals_input())
        .await
        .unwrap();
    flap.abort();
    assert_eq!(took_ms(&out), 90_000, "read until the deadline");
    for s in ["health_check_down", "probe_down"] {
        assert_ne!(out[s], true, "{s}: {out:?}");
    }
    assert_eq!(out["first_failure_at_ms"], Value::Null);
}

#[tokio::test(start_paused = true)]
async fn a_partition_reads_as_the_probe_down_and_route53_healthy() {
    let fake = Fake::new(true);
    fake.partition();
    let out = run(&fake, "dr.read_signals", signals_input())
        .await
        .unwrap();
    assert_eq!(took_ms(&out), 90_000, "one signal is not the quorum");
    assert_eq!(out["probe_down"], true);
    assert_eq!(out["health_check_down"], false);
    let decided = run(
        &fake,
        "dr.decide",
        json!({"health_check_down": out["health_check_down"], "alarms_down": out["alarms_down"],
               "probe_down": out["probe_down"], "writer_in_standby": false,
               "dns_serves_standby": false, "primary_db_reachable": true, "data_at_risk_ms": 800}),
    )
    .await
    .unwrap();
    assert_eq!(decided["decision"], "hold");
    assert!(
        decided["reason"].as_str().unwrap().contains("isolation"),
        "{decided:?}"
    );
}

fn describe_input() -> Value {
    json!({"global_cluster_id": GLOBAL_ID, "primary_region": PRIMARY, "standby_region": STANDBY})
}

#[tokio::test(start_paused = true)]
async fn the_global_cluster_says_who_writes_and_what_is_at_risk() {
    let fake = Fake::new(true);
    let out = run(&fake, "rds.describe_global_cluster", describe_input())
        .await
        .unwrap();
    assert_eq!(out["writer_region"], PRIMARY);
    assert_eq!(out["writer_in_standby"], false);
    assert_eq!(out["primary_db_reachable"], true);
    assert_eq!(out["writes_at_risk"], 3);
    assert_eq!(out["data_at_risk_ms"], 800);
    fake.region_outage();
    let out = run(&fake, "rds.describe_global_cluster", describe_input())
        .await
        .unwrap();
    assert_eq!(out["primary_db_reachable"], false);
    assert_eq!(out["writes_at_risk"], 3, "the positions at the outage");
}

fn promote_input(mode: &str) -> Value {
    json!({"global_cluster_id": GLOBAL_ID, "target_region": STANDBY, "mode": mode})
}

#[tokio::test(start_paused = true)]
async fn promotion_waits_for_the_writer_and_never_promotes_twice() {
    let fake = Fake::new(true);
    fake.region_outage();
    let out = run(
        &fake,
        "rds.promote_global_cluster",
        promote_input("failover"),
    )
    .await
    .unwrap();
    assert_eq!(out["promoted"], true);
    assert_eq!(out["lost_writes"], 3);
    assert_eq!(out["rpo_seconds"], json!(0.8));
    let waited =
        out["writer_available_at_ms"].as_u64().unwrap() - out["started_at_ms"].as_u64().unwrap();
    assert!(
        (PROMOTION_MS..PROMOTION_MS + 6_000).contains(&waited),
        "{waited}"
    );
    assert_eq!(actions(&out).len(), 1);
    assert!(actions(&out)[0].starts_with("FailoverGlobalCluster"));
    // Twice: the target writes already; nothing is asked again.
    let again = run(
        &fake,
        "rds.promote_global_cluster",
        promote_input("failover"),
    )
    .await
    .unwrap();
    assert_eq!(again["promoted"], false);
    assert_eq!(actions(&again), Vec::<String>::new());
    assert_eq!(fake.with(|s| s.promotions_asked), 1);
}

#[tokio::test(start_paused = true)]
async fn a_promotion_killed_while_waiting_resumes_by_waiting() {
    let fake = Fake::new(true);
    // The first attempt asks, then dies 10 s into its wait (a crash, a step timeout).
    let first = tokio::time::timeout(
        Duration::from_secs(10),
        run(
            &fake,
            "rds.promote_global_cluster",
            promote_input("switchover"),
        ),
    )
    .await;
    assert!(first.is_err(), "cut short");
    assert_eq!(fake.with(|s| s.cluster.status.clone()), "switching-over");
    let resumed = run(
        &fake,
        "rds.promote_global_cluster",
        promote_input("switchover"),
    )
    .await
    .unwrap();
    assert_eq!(resumed["promoted"], false);
    assert_eq!(resumed["lost_writes"], 0, "a switchover loses nothing");
    assert_eq!(fake.with(|s| s.promotions_asked), 1);
    let writer = fake.with(|s| {
        s.cluster
            .members
            .iter()
            .find(|m| m.is_writer)
            .unwrap()
            .region
            .clone()
    });
    assert_eq!(writer, STANDBY);
}

#[tokio::test(start_paused = true)]
async fn a_failover_beyond_the_budget_is_refused_before_any_call() {
    let fake = Fake::new(true);
    fake.region_outage();
    fake.with(|s| s.cluster.members[1].last_write_at_ms = Some(BASE_MS - 120_000));
    let err = run(
        &fake,
        "rds.promote_global_cluster",
        promote_input("failover"),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind, "blocked");
    assert!(!err.retryable);
    assert!(err.message.contains("120 s"), "{err}");
    assert_eq!(fake.with(|s| s.promotions_asked), 0);
    // A person accepting more loss gets it through.
    let mut input = promote_input("failover");
    input["max_data_loss"] = json!("5m");
    run(&fake, "rds.promote_global_cluster", input)
        .await
        .unwrap();
    assert_eq!(fake.with(|s| s.promotions_asked), 1);
}

fn fence_input(mode: &str) -> Value {
    json!({"region": PRIMARY, "mode": mode, "asg_name": "asg-prod", "target_group_arn": tg(PRIMARY)})
}

#[tokio::test(start_paused = true)]
async fn the_fence_holds_once_and_a_region_cut_off_is_left_alone() {
    let fake = Fake::new(true);
    let out = run(&fake, "dr.fence", fence_input("scale_to_zero"))
        .await
        .unwrap();
    assert_eq!(out["fenced"], true);
    assert_eq!(actions(&out).len(), 1);
    assert_eq!(fake.with(|s| s.groups[PRIMARY].cap.in_service), 0);
    let again = run(&fake, "dr.fence", fence_input("scale_to_zero"))
        .await
        .unwrap();
    assert_eq!((&again["fenced"], actions(&again).len()), (&json!(true), 0));

    let fake = Fake::new(true);
    let out = run(&fake, "dr.fence", fence_input("deregister_targets"))
        .await
        .unwrap();
    assert_eq!(out["fenced"], true);
    assert!(actions(&out)[0].starts_with("DeregisterTargets"));
    let again = run(&fake, "dr.fence", fence_input("deregister_targets"))
        .await
        .unwrap();
    assert_eq!(actions(&again).len(), 0);

    let fake = Fake::new(true);
    fake.region_outage();
    let out = run(&fake, "dr.fence", fence_input("scale_to_zero"))
        .await
        .unwrap();
    assert_eq!(
        (&out["fenced"], &out["reachable"]),
        (&json!(false), &json!(false))
    );
}

fn scale_input(capacity: u64) -> Value {
    json!({"region": STANDBY, "asg_name": "asg-prod", "capacity": capacity, "wait_timeout": "2m"})
}

#[tokio::test(start_paused = true)]
async fn the_standby_grows_to_the_primary_s_capacity_and_never_shrinks() {
    let fake = Fake::new(true);
    let out = run(&fake, "autoscaling.match_capacity", scale_input(2))
        .await
        .unwrap();
    assert_eq!(
        (&out["in_service"], &out["shortfall"]),
        (&json!(2), &json!(0))
    );
    assert_eq!(actions(&out).len(), 1);
    let took = out["ended_at_ms"].as_u64().unwrap() - out["started_at_ms"].as_u64().unwrap();
    assert!((LAUNCH_MS..LAUNCH_MS + 6_000).contains(&took), "{took}");
    let again = run(&fake, "autoscaling.match_capacity", scale_input(2))
        .await
        .unwrap();
    assert_eq!(actions(&again).len(), 0);
    // Asked for less than it has: nothing is lowered.
    let less = run(&fake, "autoscaling.match_capacity", scale_input(1))
        .await
        .unwrap();
    assert_eq!(actions(&less).len(), 0);
    assert_eq!(fake.with(|s| s.groups[STANDBY].cap.desired_capacity), 2);
}

#[tokio::test(start_paused = true)]
async fn capacity_short_goes_on_with_what_launched_and_says_so() {
    let fake = Fake::new(true);
    fake.with(|s| s.groups.get_mut(STANDBY).unwrap().limit = Some(2));
    let out = run(&fake, "autoscaling.match_capacity", scale_input(4))
        .await
        .unwrap();
    assert_eq!(out["in_service"], 2);
    assert_eq!(out["shortfall"], 2);
    assert!(
        out["last_failure"]
            .as_str()
            .unwrap()
            .contains("InsufficientInstanceCapacity"),
        "{out:?}"
    );
    let took = out["ended_at_ms"].as_u64().unwrap() - out["started_at_ms"].as_u64().unwrap();
    assert_eq!(took, 120_000, "kept asking until its wait ended");
}

fn traffic_input(policy: &str) -> Value {
    json!({"to": "standby", "hosted_zone_id": ZONE, "record_name": RECORD,
           "routing_policy": policy, "primary_health_check_id": HC_PRIMARY,
           "global_cluster_id": GLOBAL_ID, "region": STANDBY, "target_group_arn": tg(STANDBY)})
}

fn verify_input(region: &str) -> Value {
    json!({"hosted_zone_id": ZONE, "record_name": RECORD, "expect": alb(region), "timeout": "10s"})
}

#[tokio::test(start_paused = true)]
async fn traffic_moves_only_to_a_writer_and_once() {
    // Weighted: the standby's weight to 100, the primary's to 0, once the writer is there.
    let fake = Fake::new(true);
    let err = run(&fake, "dr.fence", fence_input("scale_to_zero")).await;
    assert!(err.is_ok());
    let mut early = traffic_input("weighted");
    early["ready_timeout"] = json!("20s");
    let err = run(&fake, "route53.shift_traffic", early)
        .await
        .unwrap_err();
    assert_eq!(err.kind, "not_ready", "no writer in the standby yet");
    assert_eq!(fake.with(|s| s.weights["standby"]), 0);
    // The promotion lands while the step waits for it.
    let promote = run(
        &fake,
        "rds.promote_global_cluster",
        promote_input("switchover"),
    );
    let shift = async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        run(&fake, "route53.shift_traffic", traffic_input("weighted")).await
    };
    let (p, out) = tokio::join!(promote, shift);
    p.unwrap();
    let out = out.unwrap();
    assert_eq!(actions(&out).len(), 2);
    assert!(
        actions(&out)[0].contains("standby: weight 0 -> 100"),
        "{:?}",
        actions(&out)
    );
    assert!(
        out["moved_at_ms"].as_u64().unwrap() >= fake.now() - 1,
        "after INSYNC"
    );
    run(&fake, "route53.test_dns_answer", verify_input(STANDBY))
        .await
        .unwrap();
    let again = run(&fake, "route53.shift_traffic", traffic_input("weighted"))
        .await
        .unwrap();
    assert_eq!(actions(&again).len(), 0);
}

#[tokio::test(start_paused = true)]
async fn failover_records_move_by_the_primary_s_health_check() {
    // The primary's endpoint is healthy (the database failed): its check is inverted.
    let fake = Fake::new(false);
    fake.with(|s| s.cluster.members[0].status = "failed".into());
    run(
        &fake,
        "rds.promote_global_cluster",
        promote_input("failover"),
    )
    .await
    .unwrap();
    let out = run(&fake, "route53.shift_traffic", traffic_input("failover"))
        .await
        .unwrap();
    assert!(
        actions(&out)[0].contains("Inverted false -> true"),
        "{:?}",
        actions(&out)
    );
    run(&fake, "route53.test_dns_answer", verify_input(STANDBY))
        .await
        .unwrap();
    let again = run(&fake, "route53.shift_traffic", traffic_input("failover"))
        .await
        .unwrap();
    assert_eq!(actions(&again).len(), 0);
    // An endpoint that is down is already unhealthy: the check is left as it is.
    let fake = Fake::new(false);
    fake.region_outage();
    run(
        &fake,
        "rds.promote_global_cluster",
        promote_input("failover"),
    )
    .await
    .unwrap();
    let out = run(&fake, "route53.shift_traffic", traffic_input("failover"))
        .await
        .unwrap();
    assert_eq!(actions(&out).len(), 0);
    assert!(!fake.with(|s| s.inverted[HC_PRIMARY]));
    // Moving back un-inverts.
    let fake = Fake::new(false);
    fake.with(|s| s.inverted.insert(HC_PRIMARY.into(), true));
    let mut back = traffic_input("failover");
    back["to"] = json!("primary");
    back["region"] = json!(PRIMARY);
    back["target_group_arn"] = json!(tg(PRIMARY));
    let out = run(&fake, "route53.shift_traffic", back).await.unwrap();
    assert!(actions(&out)[0].contains("Inverted true -> false"));
    run(&fake, "route53.test_dns_answer", verify_input(PRIMARY))
        .await
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_dns_answer_that_never_comes_is_a_timeout() {
    let fake = Fake::new(true);
    let err = run(&fake, "route53.test_dns_answer", verify_input(STANDBY))
        .await
        .unwrap_err();
    assert_eq!(err.kind, "timeout");
    assert!(err.message.contains(&alb(PRIMARY)), "{err}");
}

#[tokio::test(start_paused = true)]
async fn notifications_reach_the_regions_that_can_hear() {
    let fake = Fake::new(true);
    let input =
        json!({"topic_arns": [topic(PRIMARY), topic(STANDBY)], "subject": "s", "message": "m"});
    let out = run(&fake, "sns.publish", input.clone()).await.unwrap();
    assert_eq!(out["message_ids"].as_array().unwrap().len(), 2);
    fake.region_outage();
    let out = run(&fake, "sns.publish", input.clone()).await.unwrap();
    assert_eq!(out["message_ids"].as_array().unwrap().len(), 1);
    assert_eq!(out["failed"].as_array().unwrap().len(), 1);
    fake.with(|s| s.unreachable.insert(STANDBY.into()));
    let err = run(&fake, "sns.publish", input).await.unwrap_err();
    assert!(err.retryable);
}

#[tokio::test(start_paused = true)]
async fn failback_sizes_go_both_ways_only_when_they_differ() {
    let fake = Fake::new(true);
    run(&fake, "autoscaling.match_capacity", scale_input(2))
        .await
        .unwrap();
    let input = json!({"region": STANDBY, "asg_name": "asg-prod", "desired_capacity": 1,
                       "min_size": 1, "wait": true});
    let out = run(&fake, "autoscaling.set_capacity", input.clone())
        .await
        .unwrap();
    assert_eq!(actions(&out).len(), 1);
    assert_eq!(out["in_service"], 1);
    let again = run(&fake, "autoscaling.set_capacity", input).await.unwrap();
    assert_eq!(actions(&again).len(), 0);
}

/// Besides the signals, the step reads whether the standby could serve and whether the
/// primary is still starting: what `dr.decide` needs to keep from a false failover. Neither
/// counts towards the quorum, and an unreadable one is unknown.
#[tokio::test(start_paused = true)]
async fn signals_also_say_whether_the_standby_can_serve_and_the_primary_is_starting() {
    let with_standby = || {
        let mut input = signals_input();
        input["standby_health_check_id"] = json!(HC_STANDBY);
        input["primary_region"] = json!(PRIMARY);
        input["asg_name"] = json!("asg-prod");
        input
    };
    // A region outage: the standby serves, the primary's group cannot be read.
    let fake = Fake::new(true);
    fake.region_outage();
    tokio::time::sleep(Duration::from_secs(120)).await;
    let out = run(&fake, "dr.read_signals", with_standby()).await.unwrap();
    assert_eq!(out["standby_healthy"], true, "{out:?}");
    assert_eq!(out["primary_starting"], Value::Null, "{out:?}");
    assert!(
        out["detail"]["standby"]
            .as_str()
            .unwrap()
            .contains("15 of 15")
    );

    // A fresh deployment: nothing in service in the primary yet, the standby's endpoint down.
    let fake = Fake::new(true);
    fake.with(|s| {
        s.endpoint_healthy.insert(HC_STANDBY.into(), false);
        // Launching, and not done while the step reads.
        let g = s.groups.get_mut(PRIMARY).unwrap();
        g.cap.in_service = 0;
        g.launching = vec![u64::MAX, u64::MAX];
    });
    let out = run(&fake, "dr.read_signals", with_standby()).await.unwrap();
    assert_eq!(out["standby_healthy"], false, "{out:?}");
    assert_eq!(out["primary_starting"], true, "{out:?}");
    assert_eq!(
        out["detail"]["primary_group"],
        format!("asg-prod ({PRIMARY}): 0 in service, 2 launching")
    );

    // Not asked for: not read.
    let out = run(&fake, "dr.read_signals", signals_input())
        .await
        .unwrap();
    assert_eq!(out["standby_healthy"], Value::Null);
    assert_eq!(out["primary_starting"], Value::Null);
}
