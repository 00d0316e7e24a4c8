//! The replication-lag monitor (`lambda.replication_monitor`, `steps/assets/replication_monitor.py`)
//! as the sim runs it: an EventBridge schedule invokes the function (every minute at the
//! shortest, [`SimConfig::eventbridge_schedule_min_ms`]); each invocation takes `SAMPLES`
//! samples `SAMPLE_INTERVAL_SECONDS` apart, and each sample publishes what the code publishes:
//! `GlobalDbHasWriter`, `SecondaryAttached` and, when CloudWatch has one from the last five
//! minutes, the newest `AuroraGlobalDBReplicationLag` as `ReplicationLagMs`, in the function's
//! `METRIC_NAMESPACE`. A function in a region that is down does not run.

use serde_json::Value;

use super::{MetricId, NAME, Statistic};
use crate::backend::{Kind, Resource};
use crate::sim::World;
use crate::sim::config::SimConfig;

/// One scheduled monitor function.
struct Monitor {
    arn: String,
    region: String,
    namespace: String,
    global_cluster_id: String,
    secondary_cluster_id: String,
    samples: u64,
    interval_ms: u64,
    rate_ms: u64,
}

/// `rate(N minute[s]|hour[s]|day[s])` in milliseconds, never below the shortest schedule.
fn rate_ms(expression: &str, config: &SimConfig) -> Option<u64> {
    let inner = expression.strip_prefix("rate(")?.strip_suffix(')')?;
    let (n, unit) = inner.trim().split_once(' ')?;
    let n: u64 = n.parse().ok()?;
    let unit_ms = match unit.trim_end_matches('s') {
        "minute" => 60_000,
        "hour" => 3_600_000,
        "day" => 86_400_000,
        _ => return None,
    };
    Some((n * unit_ms).max(config.eventbridge_schedule_min_ms))
}

/// The monitor functions an enabled schedule rule of their region invokes.
fn monitors(world: &World) -> Vec<Monitor> {
    let rules = world.list(None, Some(Kind::EventRule));
    world
        .list(None, Some(Kind::LambdaFunction))
        .into_iter()
        .filter_map(|f| {
            let env = |k: &str| {
                f.spec
                    .pointer(&format!("/environment/{k}"))
                    .and_then(Value::as_str)
                    .map(str::to_string)
            };
            let rate_ms = rules
                .iter()
                .find_map(|r| schedule_of(r, &f, &world.config))?;
            Some(Monitor {
                arn: f.arn.clone(),
                region: f.region.clone(),
                namespace: env("METRIC_NAMESPACE").unwrap_or_else(|| "DrFlow/Trading".into()),
                global_cluster_id: env("GLOBAL_CLUSTER_ID")?,
                secondary_cluster_id: env("SECONDARY_CLUSTER_ID")?,
                samples: env("SAMPLES").and_then(|s| s.parse().ok()).unwrap_or(2),
                interval_ms: env("SAMPLE_INTERVAL_SECONDS")
                    .and_then(|s| s.parse::<u64>().ok())
                    .unwrap_or(30)
                    * 1000,
                rate_ms,
            })
        })
        .collect()
}

/// The rate at which `rule` invokes `function`, if it does.
fn schedule_of(rule: &Resource, function: &Resource, config: &SimConfig) -> Option<u64> {
    let s = &rule.spec;
    let enabled = s.get("state").and_then(Value::as_str).unwrap_or("ENABLED") == "ENABLED";
    let targets_it = s.get("targets").and_then(Value::as_array).is_some_and(|t| {
        t.iter()
            .any(|t| t.get("arn").and_then(Value::as_str) == Some(&function.arn))
    });
    if !enabled || !targets_it || rule.region != function.region {
        return None;
    }
    rate_ms(s.get("schedule_expression")?.as_str()?, config)
}

/// Runs the invocations due at `now` (a minute boundary): the first sample now, the others
/// scheduled `SAMPLE_INTERVAL_SECONDS` apart.
pub(super) fn invoke_due(world: &mut World, now: u64) {
    for m in monitors(world) {
        if !now.is_multiple_of(m.rate_ms) || world.region_down(&m.region) {
            continue;
        }
        sample(world, &m, now);
        for k in 1..m.samples {
            world.schedule(
                now + k * m.interval_ms,
                NAME,
                &m.arn,
                "monitor-sample",
                Value::Null,
            );
        }
    }
}

/// A later sample of an invocation of `function_arn`.
pub(super) fn sample_due(world: &mut World, function_arn: &str, now: u64) {
    if let Some(m) = monitors(world).into_iter().find(|m| m.arn == function_arn)
        && !world.region_down(&m.region)
    {
        sample(world, &m, now);
    }
}

fn sample(world: &mut World, m: &Monitor, now: u64) {
    // `describe_global_clusters` failing loses the sample, as the code's `except` does.
    let Ok(status) = crate::sim::aurora::describe(world, &m.global_cluster_id) else {
        return;
    };
    let has_writer = status.members.iter().any(|x| x.is_writer);
    let attached = status
        .members
        .iter()
        .any(|x| x.db_cluster_arn.contains(&m.secondary_cluster_id));
    let lag_metric = MetricId::new(
        &m.region,
        "AWS/RDS",
        "AuroraGlobalDBReplicationLag",
        &[("DBClusterIdentifier", &m.secondary_cluster_id)],
    );
    let lag = world
        .cloudwatch
        .metrics
        .datapoints(
            &lag_metric,
            Statistic::Maximum,
            60_000,
            now.saturating_sub(300_000),
            now + 1,
        )
        .last()
        .map(|d| d.value);
    let flag = |b: bool| if b { 1.0 } else { 0.0 };
    let store = &mut world.cloudwatch.metrics;
    let metric =
        |name: &str, dims: &[(&str, &str)]| MetricId::new(&m.region, &m.namespace, name, dims);
    store.put(&metric("GlobalDbHasWriter", &[]), now, flag(has_writer));
    store.put(&metric("SecondaryAttached", &[]), now, flag(attached));
    if let Some(lag) = lag {
        store.put(
            &metric(
                "ReplicationLagMs",
                &[("DBClusterIdentifier", &m.secondary_cluster_id)],
            ),
            now,
            lag,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_are_rates_never_below_a_minute() {
        let c = SimConfig::default();
        assert_eq!(rate_ms("rate(1 minute)", &c), Some(60_000));
        assert_eq!(rate_ms("rate(5 minutes)", &c), Some(300_000));
        assert_eq!(rate_ms("rate(2 hours)", &c), Some(7_200_000));
        assert_eq!(rate_ms("cron(0 * * * ? *)", &c), None);
        let mut fast = c.clone();
        fast.eventbridge_schedule_min_ms = 120_000;
        assert_eq!(rate_ms("rate(1 minute)", &fast), Some(120_000));
    }
}
