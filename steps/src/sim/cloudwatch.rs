//! CloudWatch: metric datapoints and alarm states.
//!
//! First version (the `simobs` helper owns this file from here on): datapoints are stored as
//! published; alarms are not evaluated yet, so every alarm reports `INSUFFICIENT_DATA`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::World;
use super::agenda::Event;
use super::process::Process;
use crate::backend::{
    AlarmState, AlarmStateValue, CloudError, Datapoint, ErrorKind, Kind, MetricQuery, Tags,
};

/// One alarm's evaluated state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlarmRecord {
    /// `StateValue`.
    pub state: AlarmStateValue,
    /// `StateReason`.
    pub reason: String,
    /// `StateUpdatedTimestamp`.
    pub updated_at_ms: u64,
}

/// Metrics and alarm states.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CloudWatchState {
    /// Datapoints by metric key (`region|namespace|name|dim=value,…`), oldest first.
    pub metrics: BTreeMap<String, Vec<Datapoint>>,
    /// Alarm states by alarm ARN.
    pub alarms: BTreeMap<String, AlarmRecord>,
}

fn metric_key(region: &str, namespace: &str, name: &str, dims: &Tags) -> String {
    let dims: Vec<String> = dims.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{region}|{namespace}|{name}|{}", dims.join(","))
}

/// Records one datapoint (`PutMetricData`, or a service publishing its own metric).
pub fn put_metric_data(
    world: &mut World,
    region: &str,
    namespace: &str,
    name: &str,
    dims: &Tags,
    at_ms: u64,
    value: f64,
) {
    world
        .cloudwatch
        .metrics
        .entry(metric_key(region, namespace, name, dims))
        .or_default()
        .push(Datapoint { at_ms, value });
}

/// CloudWatch (alarm evaluation comes with the `simobs` work).
pub struct CloudWatch;

impl Process for CloudWatch {
    fn name(&self) -> &'static str {
        "cloudwatch"
    }

    fn handle(&self, _world: &mut World, _event: &Event) {}
}

/// `DescribeAlarms` of a region.
pub fn describe_alarms(
    world: &World,
    region: &str,
    name_prefix: Option<&str>,
) -> Result<Vec<AlarmState>, CloudError> {
    if world.region_down(region) {
        return Err(CloudError::new(
            ErrorKind::Unavailable,
            format!("CloudWatch in {region} is unreachable (region outage)"),
        ));
    }
    let mut out = Vec::new();
    for kind in [Kind::MetricAlarm, Kind::CompositeAlarm] {
        for a in world.list(Some(region), Some(kind)) {
            if name_prefix.is_some_and(|p| !a.name.starts_with(p)) {
                continue;
            }
            let created = world
                .get(region, kind, &a.id)
                .map_or(world.clock_ms, |r| r.created_at_ms);
            let rec = world
                .cloudwatch
                .alarms
                .get(&a.arn)
                .cloned()
                .unwrap_or(AlarmRecord {
                    state: AlarmStateValue::InsufficientData,
                    reason: "Unchecked: Initial alarm creation".into(),
                    updated_at_ms: created,
                });
            out.push(AlarmState {
                name: a.name.clone(),
                arn: a.arn.clone(),
                region: region.into(),
                state: rec.state,
                reason: rec.reason,
                updated_at_ms: rec.updated_at_ms,
            });
        }
    }
    Ok(out)
}

/// `GetMetricData` for one metric: the statistic per period from `start_ms` to `end_ms`.
pub fn get_metric_data(
    world: &World,
    q: &MetricQuery,
    start_ms: u64,
    end_ms: u64,
) -> Result<Vec<Datapoint>, CloudError> {
    if world.region_down(&q.region) {
        return Err(CloudError::new(
            ErrorKind::Unavailable,
            format!("CloudWatch in {} is unreachable (region outage)", q.region),
        ));
    }
    let period = u64::from(q.period_s.max(1)) * 1000;
    let key = metric_key(&q.region, &q.namespace, &q.metric_name, &q.dimensions);
    let mut buckets: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
    for p in world.cloudwatch.metrics.get(&key).into_iter().flatten() {
        if p.at_ms >= start_ms && p.at_ms < end_ms {
            buckets
                .entry(p.at_ms / period * period)
                .or_default()
                .push(p.value);
        }
    }
    buckets
        .into_iter()
        .map(|(at_ms, v)| {
            let value = match q.stat.as_str() {
                "Average" => v.iter().sum::<f64>() / v.len() as f64,
                "Minimum" => v.iter().copied().fold(f64::INFINITY, f64::min),
                "Maximum" => v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                "Sum" => v.iter().sum(),
                "SampleCount" => v.len() as f64,
                other => {
                    return Err(CloudError::new(
                        ErrorKind::InvalidInput,
                        format!("unknown statistic {other:?}"),
                    ));
                }
            };
            Ok(Datapoint { at_ms, value })
        })
        .collect()
}
