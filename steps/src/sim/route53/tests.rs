use super::*;

const T0: u64 = 1_767_225_600_000;

fn ok() -> EndpointAnswer {
    EndpointAnswer::Http {
        status: 200,
        body: r#"{"status":"ok","quote_at":1}"#.into(),
    }
}

fn spec() -> ProbeSpec {
    ProbeSpec::from_spec(
        &serde_json::json!({
            "type": "HTTPS_STR_MATCH",
            "fully_qualified_domain_name": "alb.example",
            "resource_path": "/health/trading",
            "search_string": "\"status\":\"ok\"",
            "request_interval": 10,
            "failure_threshold": 3,
        }),
        &SimConfig::default(),
    )
}

/// Runs `hc` to `until`, the endpoint down from `down_from` on (`None`: never).
fn run(hc: &mut HealthCheckSim, until: u64, down: &dyn Fn(u64) -> bool) -> Vec<Route53Event> {
    let mut out = Vec::new();
    let mut observe = |_: &ProbeSpec, at: u64| {
        if down(at) {
            EndpointAnswer::Unreachable
        } else {
            ok()
        }
    };
    hc.advance_to(until, &mut observe, &mut out);
    out
}

fn first_change(events: &[Route53Event]) -> Option<(u64, bool)> {
    events.iter().find_map(|e| match e {
        Route53Event::StatusChanged { at_ms, healthy, .. } => Some((*at_ms, *healthy)),
        _ => None,
    })
}

#[test]
fn string_match_reads_the_first_5120_bytes_of_a_2xx_or_3xx() {
    let s = spec();
    assert!(s.passes(&ok()));
    let redirect = EndpointAnswer::Http {
        status: 302,
        body: "\"status\":\"ok\"".into(),
    };
    assert!(s.passes(&redirect));
    let error = EndpointAnswer::Http {
        status: 503,
        body: "\"status\":\"ok\"".into(),
    };
    assert!(!s.passes(&error));
    let degraded = EndpointAnswer::Http {
        status: 200,
        body: r#"{"status":"degraded"}"#.into(),
    };
    assert!(!s.passes(&degraded));
    let late = EndpointAnswer::Http {
        status: 200,
        body: format!("{}\"status\":\"ok\"", " ".repeat(SEARCH_WINDOW_BYTES)),
    };
    assert!(!s.passes(&late));
    assert!(!s.passes(&EndpointAnswer::Unreachable));
}

#[test]
fn unhealthy_about_interval_times_threshold_after_an_outage_and_not_before() {
    let c = SimConfig::default();
    let mut hc = HealthCheckSim::new("hc-1", spec(), &c, T0);
    let outage = T0 + 120_000 + 3_500;
    let events = run(&mut hc, T0 + 600_000, &|t| t >= outage);
    let (at, healthy) = first_change(&events).expect("turns unhealthy");
    assert!(!healthy);
    let elapsed = at - outage;
    let (interval, threshold) = (c.health_check_interval_ms, 3);
    assert!(
        elapsed > (threshold - 1) * interval,
        "unhealthy after {elapsed} ms: too early"
    );
    assert!(
        elapsed <= threshold * interval + c.health_check_extra_ms,
        "unhealthy after {elapsed} ms: too late"
    );
    assert!(!hc.healthy);
    assert_eq!(hc.checkers_healthy(), 0);
}

#[test]
fn healthy_while_more_than_18_percent_of_checkers_say_so() {
    let c = SimConfig::default();
    let mut hc = HealthCheckSim::new("hc-1", spec(), &c, T0);
    for (i, ch) in hc.checkers.iter_mut().enumerate() {
        ch.reported_healthy = i < 3;
    }
    // 3 of 15 is 20 %: healthy.
    assert!(hc.verdict());
    hc.checkers[2].reported_healthy = false;
    // 2 of 15 is 13 %: unhealthy.
    assert!(!hc.verdict());
}

#[test]
fn flapping_shorter_than_the_threshold_never_turns_it_unhealthy() {
    let c = SimConfig::default();
    let mut hc = HealthCheckSim::new("hc-1", spec(), &c, T0);
    // Down 15 s out of every 40 s: each checker sees at most 2 failures in a row.
    let events = run(&mut hc, T0 + 3_600_000, &|t| (t - T0) % 40_000 < 15_000);
    assert_eq!(first_change(&events), None);
    assert!(hc.healthy);
    assert!(hc.last_failure_at_ms.is_some());
}

#[test]
fn recovers_after_threshold_successes_and_inverted_flips_the_verdict() {
    let c = SimConfig::default();
    let mut hc = HealthCheckSim::new("hc-1", spec(), &c, T0);
    let events = run(&mut hc, T0 + 300_000, &|t| {
        (T0 + 60_000..T0 + 120_000).contains(&t)
    });
    let changes: Vec<bool> = events
        .iter()
        .filter_map(|e| match e {
            Route53Event::StatusChanged { healthy, .. } => Some(*healthy),
            _ => None,
        })
        .collect();
    assert_eq!(changes, [false, true]);
    let mut out = Vec::new();
    hc.set_inverted(true, T0 + 300_000, &mut out);
    assert!(!hc.healthy);
    assert_eq!(first_change(&out), Some((T0 + 300_000, false)));
}

#[test]
fn the_status_metric_is_the_minimum_of_each_minute() {
    let c = SimConfig::default();
    let mut hc = HealthCheckSim::new("hc-1", spec(), &c, T0);
    let events = run(&mut hc, T0 + 240_000, &|t| t >= T0 + 100_000);
    let points: Vec<(u64, f64)> = events
        .iter()
        .filter_map(|e| match e {
            Route53Event::MetricDatapoint {
                period_start_ms,
                value,
                ..
            } => Some(((period_start_ms - T0) / 1000, *value)),
            _ => None,
        })
        .collect();
    // Unhealthy 20 to 36 s after the outage at 100 s: during the third minute.
    assert_eq!(points, [(0, 1.0), (60, 1.0), (120, 0.0), (180, 0.0)]);
}

#[test]
fn skipping_steady_stretches_gives_the_same_story_as_probing_one_by_one() {
    let c = SimConfig::default();
    let mut one_by_one = HealthCheckSim::new("hc-1", spec(), &c, T0);
    let mut steady = one_by_one.clone();
    let down = |t: u64| (T0 + 100_000..T0 + 400_000).contains(&t);
    let slow = run(&mut one_by_one, T0 + 900_000, &down);
    // The world changes at 100 s and 400 s; between them the endpoint answers the same.
    let mut fast = Vec::new();
    for (until, answer) in [
        (T0 + 100_000 - 1, ok()),
        (T0 + 400_000 - 1, EndpointAnswer::Unreachable),
        (T0 + 900_000, ok()),
    ] {
        steady.advance_steady(until, &answer, &mut fast);
    }
    assert_eq!(slow, fast);
    assert_eq!(one_by_one, steady);
}

#[test]
fn a_standard_interval_check_probes_every_30_seconds() {
    let c = SimConfig::default();
    let mut s = spec();
    s.interval_ms = c.health_check_standard_interval_ms;
    let mut hc = HealthCheckSim::new("hc-2", s, &c, T0);
    let mut probes = 0;
    let mut observe = |_: &ProbeSpec, _: u64| {
        probes += 1;
        ok()
    };
    hc.advance_to(T0 + 300_000, &mut observe, &mut Vec::new());
    // 15 checkers, 10 probes each in 300 s.
    assert_eq!(probes, 150);
}
