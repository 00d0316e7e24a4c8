use serde_json::json;

use super::*;
use crate::backend::ResourceState;

const T0: u64 = 1_767_225_600_000;
const MIN: u64 = 60_000;

fn spec(n: u32, m: u32, missing: &str) -> MetricAlarmSpec {
    MetricAlarmSpec::from_spec(
        "us-east-1",
        &json!({
            "namespace": "AWS/Route53",
            "metric_name": "HealthCheckStatus",
            "dimensions": {"HealthCheckId": "hc-1"},
            "statistic": "Minimum",
            "period": 60,
            "evaluation_periods": n,
            "datapoints_to_alarm": m,
            "threshold": 1,
            "comparison_operator": "LessThanThreshold",
            "treat_missing_data": missing,
        }),
    )
    .unwrap()
}

fn state(
    spec: &MetricAlarmSpec,
    points: &[Option<f64>],
    current: AlarmStateValue,
) -> AlarmStateValue {
    evaluate(spec, points, current).0
}

use AlarmStateValue::{Alarm, InsufficientData, Ok as Fine};

#[test]
fn m_of_n_datapoints_decide() {
    let s = spec(3, 3, "missing");
    assert_eq!(state(&s, &[Some(0.0), Some(0.0), Some(0.0)], Fine), Alarm);
    assert_eq!(state(&s, &[Some(0.0), Some(1.0), Some(0.0)], Alarm), Fine);
    let two_of_three = spec(3, 2, "missing");
    assert_eq!(
        state(&two_of_three, &[Some(0.0), Some(1.0), Some(0.0)], Fine),
        Alarm
    );
    assert_eq!(
        state(
            &two_of_three,
            &[Some(0.0), Some(1.0), Some(1.0), Some(0.0)],
            Fine
        ),
        Fine
    );
}

#[test]
fn with_enough_real_datapoints_missing_ones_are_skipped_whatever_the_treatment() {
    // Newest first: a gap, then three breaching datapoints further back.
    let points = [None, Some(0.0), Some(0.0), Some(0.0), Some(1.0)];
    for missing in ["missing", "notBreaching", "breaching", "ignore"] {
        assert_eq!(
            state(&spec(3, 3, missing), &points, Fine),
            Alarm,
            "{missing}"
        );
    }
}

#[test]
fn no_datapoint_at_all_follows_treat_missing_data() {
    let none = [None, None, None, None, None];
    assert_eq!(state(&spec(3, 3, "missing"), &none, Fine), InsufficientData);
    assert_eq!(state(&spec(3, 3, "ignore"), &none, Alarm), Alarm);
    assert_eq!(state(&spec(3, 3, "ignore"), &none, Fine), Fine);
    assert_eq!(state(&spec(3, 3, "breaching"), &none, Fine), Alarm);
    assert_eq!(state(&spec(3, 3, "notBreaching"), &none, Alarm), Fine);
}

#[test]
fn too_few_real_datapoints_are_filled_as_few_times_as_possible() {
    // One real, non-breaching datapoint: ALARM (3 of 3) is out of reach whatever the filling.
    let one_good = [Some(1.0), None, None, None, None];
    for missing in ["missing", "notBreaching", "breaching", "ignore"] {
        assert_eq!(
            state(&spec(3, 3, missing), &one_good, InsufficientData),
            Fine,
            "{missing}"
        );
    }
    // One real breaching datapoint: filled as breaching it alarms, otherwise not.
    let one_bad = [None, Some(0.0), None, None, None];
    assert_eq!(state(&spec(3, 3, "breaching"), &one_bad, Fine), Alarm);
    assert_eq!(state(&spec(3, 3, "notBreaching"), &one_bad, Fine), Fine);
    assert_eq!(state(&spec(3, 1, "missing"), &one_bad, Fine), Alarm);
}

#[test]
fn statistics_per_period_and_pruning() {
    let mut store = MetricStore::default();
    let id = MetricId::new(
        "us-east-2",
        "AWS/RDS",
        "AuroraGlobalDBReplicationLag",
        &[("DBClusterIdentifier", "c")],
    );
    for (at, v) in [
        (0, 800.0),
        (20_000, 900.0),
        (40_000, 40_000.0),
        (60_000, 700.0),
    ] {
        store.put(&id, T0 + at, v);
    }
    let max = store.statistic(&id, Statistic::Maximum, T0, T0 + MIN);
    assert_eq!(max, Some(40_000.0));
    assert_eq!(
        store.statistic(&id, Statistic::SampleCount, T0, T0 + MIN),
        Some(3.0)
    );
    assert_eq!(
        store.statistic(&id, Statistic::Average, T0 + MIN, T0 + 2 * MIN),
        Some(700.0)
    );
    assert_eq!(
        store.statistic(&id, Statistic::Minimum, T0 + 2 * MIN, T0 + 3 * MIN),
        None
    );
    let points = store.datapoints(&id, Statistic::Maximum, MIN, T0 + 5_000, T0 + 3 * MIN);
    assert_eq!(points.len(), 2);
    assert_eq!(points[0].at_ms, T0);
    store.prune(T0 + MIN);
    assert_eq!(store.statistic(&id, Statistic::Maximum, T0, T0 + MIN), None);
    assert_eq!(
        store.statistic(&id, Statistic::Maximum, T0 + MIN, T0 + 2 * MIN),
        Some(700.0)
    );
}

#[test]
fn composite_rules_parse_and_evaluate() {
    let rule = AlarmRule::parse(r#"ALARM("hc-primary") AND OK("hc-standby")"#).unwrap();
    let states = |p: AlarmStateValue, s: AlarmStateValue| {
        move |n: &str| match n {
            "hc-primary" => Some(p),
            "hc-standby" => Some(s),
            _ => None,
        }
    };
    assert!(rule.holds(&states(Alarm, Fine)));
    assert!(!rule.holds(&states(Alarm, Alarm)));
    assert!(!rule.holds(&states(InsufficientData, Fine)));
    let rule = AlarmRule::parse("NOT (OK(a) OR INSUFFICIENT_DATA(b)) AND TRUE").unwrap();
    assert!(rule.holds(&states(Fine, Fine)) || rule.holds(&|_| Some(Alarm)));
    assert!(rule.holds(&|_| Some(Alarm)));
    assert!(AlarmRule::parse("ALARM(a) AND").is_err());
    assert!(AlarmRule::parse("MAYBE(a)").is_err());
}

fn alarm_resource(name: &str, spec: Value, kind: Kind) -> Resource {
    Resource {
        parent: None,
        kind,
        region: "us-east-1".into(),
        name: name.into(),
        id: format!("arn:aws:cloudwatch:us-east-1:000000000000:alarm:{name}"),
        arn: format!("arn:aws:cloudwatch:us-east-1:000000000000:alarm:{name}"),
        spec,
        attrs: Default::default(),
        tags: Default::default(),
        state: ResourceState::Available,
        depends_on: vec![],
    }
}

fn hc_alarm(name: &str, hc: &str) -> Resource {
    alarm_resource(
        name,
        json!({
            "namespace": "AWS/Route53",
            "metric_name": "HealthCheckStatus",
            "dimensions": {"HealthCheckId": hc},
            "statistic": "Minimum",
            "period": 60,
            "evaluation_periods": 3,
            "datapoints_to_alarm": 3,
            "threshold": 1,
            "comparison_operator": "LessThanThreshold",
            "treat_missing_data": "breaching",
        }),
        Kind::MetricAlarm,
    )
}

#[test]
fn an_alarm_starts_insufficient_and_goes_alarm_on_the_third_breaching_minute() {
    let config = SimConfig::default();
    let mut cw = CloudWatchState::default();
    let primary = hc_alarm("hc-alarm-primary", "hc-p");
    let standby = hc_alarm("hc-alarm-standby", "hc-s");
    let composite = alarm_resource(
        "regional-outage",
        json!({"alarm_rule": r#"ALARM("hc-alarm-primary") AND OK("hc-alarm-standby")"#}),
        Kind::CompositeAlarm,
    );
    let created = T0 + 10_000;
    cw.sync([
        (&primary, created, created),
        (&standby, created, created),
        (&composite, created, created),
    ]);
    let describe = cw.describe("us-east-1", Some("hc-alarm"));
    assert_eq!(describe.len(), 2);
    assert!(describe.iter().all(|a| a.state == InsufficientData));
    let p = MetricId::new(
        "us-east-1",
        "AWS/Route53",
        "HealthCheckStatus",
        &[("HealthCheckId", "hc-p")],
    );
    let s = MetricId::new(
        "us-east-1",
        "AWS/Route53",
        "HealthCheckStatus",
        &[("HealthCheckId", "hc-s")],
    );
    // The primary fails from minute 5 on; each minute's datapoint is published as it ends.
    let mut changes = Vec::new();
    let mut t = T0;
    while t < T0 + 12 * MIN {
        t = cw.next_due_ms(&config).max(t + 10_000);
        if t.is_multiple_of(MIN) {
            let start = t - MIN;
            let down = start >= T0 + 5 * MIN;
            cw.metrics.put(&p, start, if down { 0.0 } else { 1.0 });
            cw.metrics.put(&s, start, 1.0);
        }
        changes.extend(cw.evaluate_at(t, &config));
    }
    let seen: Vec<(String, AlarmStateValue, AlarmStateValue, u64)> = changes
        .iter()
        .map(|c| {
            (
                cw.alarms[&c.arn].name.clone(),
                c.previous,
                c.state,
                (c.at_ms - T0) / MIN,
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("hc-alarm-primary".to_string(), InsufficientData, Fine, 1),
            ("hc-alarm-standby".to_string(), InsufficientData, Fine, 1),
            // Composites follow in the same evaluation.
            ("regional-outage".to_string(), InsufficientData, Fine, 1),
            // Minutes 5, 6 and 7 breach; the last of them is over at minute 8.
            ("hc-alarm-primary".to_string(), Fine, Alarm, 8),
            ("regional-outage".to_string(), Fine, Alarm, 8),
        ]
    );
    // Each alarm evaluates as its first period ends: the one it was created in.
    assert_eq!(changes[0].at_ms, T0 + MIN);
    assert_eq!(cw.next_due_ms(&config), T0 + 13 * MIN);
    assert_eq!(changes[3].at_ms, T0 + 8 * MIN);
    assert_eq!(cw.describe("us-east-1", None).len(), 3);
}

#[test]
fn an_alarm_never_looks_before_it_existed() {
    // Breaching missing data right after creation would alarm at once; periods before the
    // alarm existed are not in its range, so it waits for real datapoints.
    let config = SimConfig::default();
    let mut cw = CloudWatchState::default();
    let a = hc_alarm("hc-alarm-primary", "hc-p");
    cw.sync([(&a, T0 + 30_000, T0 + 30_000)]);
    let p = MetricId::new(
        "us-east-1",
        "AWS/Route53",
        "HealthCheckStatus",
        &[("HealthCheckId", "hc-p")],
    );
    cw.metrics.put(&p, T0, 1.0);
    let changes = cw.evaluate_at(T0 + MIN, &config);
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].state, Fine);
}

#[test]
fn deleted_alarms_are_forgotten_and_changed_specs_reread() {
    let mut cw = CloudWatchState::default();
    let a = hc_alarm("a", "hc-p");
    let b = hc_alarm("b", "hc-p");
    cw.sync([(&a, T0, T0), (&b, T0, T0)]);
    assert_eq!(cw.alarms.len(), 2);
    let mut a2 = a.clone();
    a2.spec["threshold"] = json!(0.5);
    cw.sync([(&a2, T0, T0 + 1)]);
    assert_eq!(cw.alarms.len(), 1);
    let AlarmKind::Metric(s) = &cw.alarms[&a.arn].kind else {
        panic!("a metric alarm");
    };
    assert_eq!(s.threshold, 0.5);
}

#[test]
fn delivery_latency_has_the_measured_median_and_tail() {
    let config = SimConfig::default();
    let mut v: Vec<u64> = (0..10_000)
        .map(|i| delivery_latency_ms(&config, &format!("event-{i}")))
        .collect();
    v.sort_unstable();
    let p50 = v[5_000];
    let p99 = v[9_900];
    assert!((14..=18).contains(&p50), "p50 {p50}");
    assert!((90..=120).contains(&p99), "p99 {p99}");
    assert_eq!(
        delivery_latency_ms(&config, "same"),
        delivery_latency_ms(&config, "same")
    );
}

fn rule(region: &str, name: &str, pattern: Value, target: &str) -> Resource {
    let mut r = alarm_resource(name, json!({}), Kind::EventRule);
    r.region = region.into();
    r.arn = format!("arn:aws:events:{region}:000000000000:rule/{name}");
    r.spec = json!({"event_pattern": pattern, "state": "ENABLED", "targets": [{"id": "t", "arn": target}]});
    r
}

#[test]
fn alarm_events_reach_the_queue_through_the_forwarding_rule() {
    let config = SimConfig::default();
    let pattern = json!({
        "source": ["aws.cloudwatch"],
        "detail-type": ["CloudWatch Alarm State Change"],
        "detail": {"alarmName": ["hc-alarm-primary"]},
    });
    let queue = "arn:aws:sqs:us-east-2:000000000000:alarm-events";
    let rules = [
        rule(
            "us-east-1",
            "fwd",
            pattern.clone(),
            "arn:aws:events:us-east-2:000000000000:event-bus/default",
        ),
        rule("us-east-2", "to-queue", pattern, queue),
    ];
    let matching = |region: &str, event: &Value| -> Vec<Resource> {
        rules
            .iter()
            .filter(|r| {
                r.region == region && crate::sim::pattern_matches(&r.spec["event_pattern"], event)
            })
            .cloned()
            .collect()
    };
    let alarm = hc_alarm("hc-alarm-primary", "hc-p");
    let event = stamp_event(
        crate::sim::alarm_state_change_event(&alarm, "OK", "ALARM"),
        T0,
    );
    assert!(
        event["time"]
            .as_str()
            .unwrap()
            .starts_with("2026-01-01T00:00:00")
    );
    let delivered = route_event(&matching, "us-east-1", &event, T0, &config);
    assert_eq!(delivered.len(), 1);
    let m = &delivered[0];
    assert_eq!(m.queue_arn, queue);
    assert_eq!(m.body["detail"]["state"]["value"], "ALARM");
    // Two hops, each well under a second.
    assert!(
        m.available_at_ms > T0 && m.available_at_ms < T0 + 2_000,
        "{}",
        m.available_at_ms - T0
    );
    // Another alarm's event goes nowhere.
    let other = hc_alarm("hc-alarm-primary-x", "hc-p");
    let event = stamp_event(
        crate::sim::alarm_state_change_event(&other, "OK", "ALARM"),
        T0,
    );
    assert!(route_event(&matching, "us-east-1", &event, T0, &config).is_empty());
}
