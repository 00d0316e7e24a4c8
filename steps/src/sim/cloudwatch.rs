//! CloudWatch in the sim: metrics per period, alarm evaluation, and alarm state changes sent on
//! as EventBridge events into SQS queues.
//!
//! Metrics ([`MetricStore`]) are samples; a statistic over a period is computed from the samples
//! whose time falls in it. Each period's sample is published as the period ends, so an alarm
//! sees a period only once it is over (Route 53's `HealthCheckStatus` adds a minute that way,
//! as aws-timings says).
//!
//! Alarms follow the CloudWatch User Guide, "Using Amazon CloudWatch alarms" and "Configuring
//! how CloudWatch alarms treat missing data" ([`evaluate`]): a new alarm is `INSUFFICIENT_DATA`;
//! at the end of each of its periods it looks at the most recent `EvaluationPeriods` datapoints
//! and goes to `ALARM` when `DatapointsToAlarm` of them breach the threshold, else `OK`. When
//! datapoints are missing it reaches further back (up to
//! [`SimConfig::alarm_evaluation_extra_periods`] more periods), and only when it still has
//! fewer than `EvaluationPeriods` real ones does `TreatMissingData` fill the gap. Composite
//! alarms evaluate their rule ([`AlarmRule`]) over the other alarms' states.
//!
//! Everything here is pure: the world hands in resources, samples and the time.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::World;
use super::agenda::Event;
use super::config::SimConfig;
use super::process::Process;
use crate::backend::{
    AlarmState, AlarmStateValue, CloudError, Datapoint, ErrorKind, Kind, MetricQuery, Resource,
    Tags,
};

mod eventbridge;
mod metrics;
mod monitor;
mod rule;

use eventbridge::send_state_change;
pub use eventbridge::{
    SqsMessage, delivery_latency_ms, queue_messages, route_event, seeded_uuid, stamp_event,
};
pub use metrics::{MetricId, MetricStore, Sample, Statistic};
pub use rule::AlarmRule;

/// `ComparisonOperator`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Comparison {
    /// `GreaterThanOrEqualToThreshold`.
    GreaterOrEqual,
    /// `GreaterThanThreshold`.
    Greater,
    /// `LessThanThreshold`.
    Less,
    /// `LessThanOrEqualToThreshold`.
    LessOrEqual,
}

impl Comparison {
    fn parse(name: &str) -> Option<Comparison> {
        Some(match name {
            "GreaterThanOrEqualToThreshold" => Comparison::GreaterOrEqual,
            "GreaterThanThreshold" => Comparison::Greater,
            "LessThanThreshold" => Comparison::Less,
            "LessThanOrEqualToThreshold" => Comparison::LessOrEqual,
            _ => return None,
        })
    }

    fn words(self) -> &'static str {
        match self {
            Comparison::GreaterOrEqual => "greater than or equal to",
            Comparison::Greater => "greater than",
            Comparison::Less => "less than",
            Comparison::LessOrEqual => "less than or equal to",
        }
    }
}

/// `TreatMissingData`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MissingData {
    /// `missing` (the default): with no datapoint at all, `INSUFFICIENT_DATA`.
    Missing,
    /// `notBreaching`: a missing datapoint is within the threshold.
    NotBreaching,
    /// `breaching`: a missing datapoint breaches.
    Breaching,
    /// `ignore`: with no datapoint at all, the state stays.
    Ignore,
}

/// What a metric alarm watches and how it decides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricAlarmSpec {
    /// The metric.
    pub metric: MetricId,
    /// `Statistic`.
    pub stat: Statistic,
    /// `Period`, in milliseconds.
    pub period_ms: u64,
    /// `EvaluationPeriods` (N).
    pub evaluation_periods: u32,
    /// `DatapointsToAlarm` (M), N when not given.
    pub datapoints_to_alarm: u32,
    /// `Threshold`.
    pub threshold: f64,
    /// `ComparisonOperator`.
    pub comparison: Comparison,
    /// `TreatMissingData`.
    pub missing: MissingData,
}

impl MetricAlarmSpec {
    /// Reads a `MetricAlarm` resource's spec (as `cloudwatch.alarms` writes it).
    pub fn from_spec(region: &str, spec: &Value) -> Result<MetricAlarmSpec, String> {
        let s = |k: &str| spec.get(k).and_then(Value::as_str);
        let n = |k: &str| spec.get(k).and_then(Value::as_u64);
        let dimensions = spec
            .get("dimensions")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            v.as_str().map_or_else(|| v.to_string(), str::to_string),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let stat_name = s("statistic").unwrap_or("Average");
        let stat = Statistic::parse(stat_name)
            .ok_or(format!("statistic {stat_name:?} is not simulated"))?;
        let period_s = n("period").ok_or("no period")?;
        let evaluation_periods = n("evaluation_periods").unwrap_or(1).max(1) as u32;
        let comparison_name = s("comparison_operator").unwrap_or("");
        let comparison = Comparison::parse(comparison_name)
            .ok_or(format!("comparison {comparison_name:?} is not simulated"))?;
        let missing = match s("treat_missing_data").unwrap_or("missing") {
            "notBreaching" => MissingData::NotBreaching,
            "breaching" => MissingData::Breaching,
            "ignore" => MissingData::Ignore,
            _ => MissingData::Missing,
        };
        Ok(MetricAlarmSpec {
            metric: MetricId {
                region: region.into(),
                namespace: s("namespace").unwrap_or("").into(),
                metric_name: s("metric_name").unwrap_or("").into(),
                dimensions,
            },
            stat,
            period_ms: period_s.max(1) * 1000,
            evaluation_periods,
            datapoints_to_alarm: n("datapoints_to_alarm")
                .map_or(evaluation_periods, |m| m as u32)
                .clamp(1, evaluation_periods),
            threshold: spec.get("threshold").and_then(Value::as_f64).unwrap_or(0.0),
            comparison,
            missing,
        })
    }

    /// Whether one value breaches the threshold.
    pub fn breaches(&self, value: f64) -> bool {
        match self.comparison {
            Comparison::GreaterOrEqual => value >= self.threshold,
            Comparison::Greater => value > self.threshold,
            Comparison::Less => value < self.threshold,
            Comparison::LessOrEqual => value <= self.threshold,
        }
    }
}

/// The state an alarm moves to, given the datapoints of its evaluation range, newest first
/// (`None`: the period has no datapoint), and its current state; with the `StateReason`.
///
/// Real datapoints come first: with at least N of them in the range, the newest N decide and
/// `TreatMissingData` plays no part. With fewer, the missing ones up to N are filled in as the
/// alarm says: `breaching` and `notBreaching` count them; `missing` and `ignore` decide on the
/// real ones alone, and with none at all `missing` gives `INSUFFICIENT_DATA` and `ignore` keeps
/// the current state.
pub fn evaluate(
    spec: &MetricAlarmSpec,
    newest_first: &[Option<f64>],
    current: AlarmStateValue,
) -> (AlarmStateValue, String) {
    let n = spec.evaluation_periods as usize;
    let m = spec.datapoints_to_alarm as usize;
    let real: Vec<f64> = newest_first.iter().flatten().copied().take(n).collect();
    let breaching = real.iter().filter(|v| spec.breaches(**v)).count();
    let filled = n - real.len();
    let (alarm, counted) = if filled == 0 {
        (breaching >= m, breaching)
    } else {
        match spec.missing {
            MissingData::Breaching => (breaching + filled >= m, breaching + filled),
            MissingData::NotBreaching => (breaching >= m, breaching),
            MissingData::Missing if real.is_empty() => {
                return (
                    AlarmStateValue::InsufficientData,
                    format!(
                        "Insufficient Data: no datapoint in the last {} period(s).",
                        newest_first.len()
                    ),
                );
            }
            MissingData::Ignore if real.is_empty() => {
                return (current, "Missing data ignored: the state is kept.".into());
            }
            MissingData::Missing | MissingData::Ignore => (breaching >= m, breaching),
        }
    };
    let words = spec.comparison.words();
    let reason = format!(
        "Threshold Crossed: {counted} out of the last {n} datapoints ({} missing) were {words} the threshold ({}) (minimum {m} datapoints for ALARM).",
        filled, spec.threshold
    );
    let state = if alarm {
        AlarmStateValue::Alarm
    } else {
        AlarmStateValue::Ok
    };
    (state, reason)
}

/// What kind of alarm, and what it decides on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AlarmKind {
    /// A metric alarm.
    Metric(MetricAlarmSpec),
    /// A composite alarm.
    Composite(AlarmRule),
    /// A spec the sim cannot evaluate (the reason): the alarm stays `INSUFFICIENT_DATA`.
    Unsupported(String),
}

/// One alarm as CloudWatch holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlarmSim {
    /// `AlarmName`.
    pub name: String,
    /// `AlarmArn`.
    pub arn: String,
    /// Its region.
    pub region: String,
    /// When it was created: the evaluation range never reaches before the period holding it.
    pub created_at_ms: u64,
    /// The resource's last update this state was built from.
    pub spec_updated_at_ms: u64,
    /// What it decides on.
    pub kind: AlarmKind,
    /// `StateValue`.
    pub state: AlarmStateValue,
    /// `StateReason`.
    pub reason: String,
    /// `StateUpdatedTimestamp`.
    pub state_updated_ms: u64,
}

impl AlarmSim {
    fn from_resource(r: &Resource, created_at_ms: u64, updated_at_ms: u64) -> AlarmSim {
        let mut a = AlarmSim {
            name: r.name.clone(),
            arn: r.arn.clone(),
            region: r.region.clone(),
            created_at_ms,
            spec_updated_at_ms: updated_at_ms,
            kind: AlarmKind::Unsupported(String::new()),
            state: AlarmStateValue::InsufficientData,
            reason: "Unchecked: Initial alarm creation".into(),
            state_updated_ms: created_at_ms,
        };
        a.respec(r);
        a
    }

    fn respec(&mut self, r: &Resource) {
        self.kind = if r.kind == Kind::CompositeAlarm {
            let rule = r
                .spec
                .get("alarm_rule")
                .and_then(Value::as_str)
                .unwrap_or("");
            AlarmRule::parse(rule).map_or_else(AlarmKind::Unsupported, AlarmKind::Composite)
        } else {
            MetricAlarmSpec::from_spec(&r.region, &r.spec)
                .map_or_else(AlarmKind::Unsupported, AlarmKind::Metric)
        };
    }

    /// `DescribeAlarms`' view of it.
    pub fn describe(&self) -> AlarmState {
        AlarmState {
            name: self.name.clone(),
            arn: self.arn.clone(),
            region: self.region.clone(),
            state: self.state,
            reason: self.reason.clone(),
            updated_at_ms: self.state_updated_ms,
        }
    }
}

/// An alarm's state change.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmChange {
    /// The alarm's ARN.
    pub arn: String,
    /// The state it left.
    pub previous: AlarmStateValue,
    /// When it had entered the state it left (its event's `previousState.timestamp`).
    pub previous_at_ms: u64,
    /// The state it entered.
    pub state: AlarmStateValue,
    /// When.
    pub at_ms: u64,
}

/// An alarm resource as the world holds it: the resource, created and updated times.
pub type AlarmResource<'a> = (&'a Resource, u64, u64);

/// CloudWatch: every alarm's state and every metric's samples.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CloudWatchState {
    /// Alarms by ARN.
    pub alarms: BTreeMap<String, AlarmSim>,
    /// Samples.
    pub metrics: MetricStore,
    /// The last evaluation instant processed.
    pub evaluated_to_ms: u64,
    /// What EventBridge delivered into SQS queues, in delivery order (see [`queue_messages`]).
    #[serde(default)]
    pub sqs: Vec<SqsMessage>,
}

impl CloudWatchState {
    /// Brings the alarms in line with the alarm resources: new ones start `INSUFFICIENT_DATA`,
    /// changed specs are re-read (state kept), deleted ones are forgotten.
    pub fn sync<'a>(&mut self, resources: impl IntoIterator<Item = AlarmResource<'a>>) {
        let mut seen = Vec::new();
        for (r, created, updated) in resources {
            seen.push(r.arn.clone());
            match self.alarms.get_mut(&r.arn) {
                Some(a) if a.spec_updated_at_ms == updated => {}
                Some(a) => {
                    a.respec(r);
                    a.spec_updated_at_ms = updated;
                }
                None => {
                    self.alarms
                        .insert(r.arn.clone(), AlarmSim::from_resource(r, created, updated));
                }
            }
        }
        self.alarms.retain(|arn, _| seen.contains(arn));
    }

    /// The next instant after the last one processed at which a metric alarm's period ends or
    /// the services publish their metrics ([`SimConfig::service_metric_period_ms`]).
    pub fn next_due_ms(&self, config: &SimConfig) -> u64 {
        let t = self.evaluated_to_ms;
        let next = |p: u64| t - t % p + p;
        self.alarms
            .values()
            .filter_map(|a| match &a.kind {
                AlarmKind::Metric(spec) => Some(next(spec.period_ms)),
                _ => None,
            })
            .fold(next(config.service_metric_period_ms.max(1)), u64::min)
    }

    /// Evaluates at `at_ms` every metric alarm whose period ends then, then every composite
    /// alarm; returns the state changes in that order.
    pub fn evaluate_at(&mut self, at_ms: u64, config: &SimConfig) -> Vec<AlarmChange> {
        self.evaluated_to_ms = at_ms;
        let mut changes = Vec::new();
        let extra = u64::from(config.alarm_evaluation_extra_periods);
        for a in self.alarms.values_mut() {
            let AlarmKind::Metric(spec) = &a.kind else {
                continue;
            };
            let p = spec.period_ms;
            if !at_ms.is_multiple_of(p) || at_ms <= a.created_at_ms {
                continue;
            }
            let first = a.created_at_ms - a.created_at_ms % p;
            let range = u64::from(spec.evaluation_periods) + extra;
            let samples = self.metrics.samples(&spec.metric);
            let points: Vec<Option<f64>> = (1..=range)
                .map(|k| at_ms.checked_sub(k * p))
                .take_while(|s| s.is_some_and(|s| s >= first))
                .flatten()
                .map(|s| metrics::statistic_of(samples, spec.stat, s, s + p))
                .collect();
            let (state, reason) = evaluate(spec, &points, a.state);
            if state != a.state {
                changes.push(AlarmChange {
                    arn: a.arn.clone(),
                    previous: a.state,
                    previous_at_ms: a.state_updated_ms,
                    state,
                    at_ms,
                });
                a.state = state;
                a.reason = reason;
                a.state_updated_ms = at_ms;
            }
        }
        // Composites see the metric alarms' new states; a composite over composites settles
        // within a few passes.
        for _ in 0..4 {
            // A composite names alarms of its own region (or by ARN).
            let states: BTreeMap<String, AlarmStateValue> = self
                .alarms
                .values()
                .flat_map(|a| {
                    [
                        (format!("{}\n{}", a.region, a.name), a.state),
                        (a.arn.clone(), a.state),
                    ]
                })
                .collect();
            let mut moved = false;
            for a in self.alarms.values_mut() {
                let AlarmKind::Composite(rule) = &a.kind else {
                    continue;
                };
                if at_ms <= a.created_at_ms {
                    continue;
                }
                let region = &a.region;
                let holds = rule.holds(&|n| {
                    states
                        .get(n)
                        .or_else(|| states.get(&format!("{region}\n{n}")))
                        .copied()
                });
                let state = if holds {
                    AlarmStateValue::Alarm
                } else {
                    AlarmStateValue::Ok
                };
                if state != a.state {
                    changes.push(AlarmChange {
                        arn: a.arn.clone(),
                        previous: a.state,
                        previous_at_ms: a.state_updated_ms,
                        state,
                        at_ms,
                    });
                    a.state = state;
                    a.reason = format!(
                        "Alarm rule evaluated to {}.",
                        if holds { "TRUE" } else { "FALSE" }
                    );
                    a.state_updated_ms = at_ms;
                    moved = true;
                }
            }
            if !moved {
                break;
            }
        }
        changes
    }

    /// `DescribeAlarms` of a region, optionally by name prefix, sorted by name.
    pub fn describe(&self, region: &str, name_prefix: Option<&str>) -> Vec<AlarmState> {
        let mut v: Vec<AlarmState> = self
            .alarms
            .values()
            .filter(|a| a.region == region)
            .filter(|a| name_prefix.is_none_or(|p| a.name.starts_with(p)))
            .map(AlarmSim::describe)
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// `GetMetricData` for one query. An unknown statistic gives no datapoint.
    pub fn get_metric_data(&self, q: &MetricQuery, start_ms: u64, end_ms: u64) -> Vec<Datapoint> {
        let Some(stat) = Statistic::parse(&q.stat) else {
            return Vec::new();
        };
        let period = u64::from(q.period_s.max(1)) * 1000;
        self.metrics
            .datapoints(&MetricId::of_query(q), stat, period, start_ms, end_ms)
    }
}

const NAME: &str = "cloudwatch";

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
    let metric = MetricId {
        region: region.into(),
        namespace: namespace.into(),
        metric_name: name.into(),
        dimensions: dims.clone(),
    };
    world.cloudwatch.metrics.put(&metric, at_ms, value);
}

/// CloudWatch as a process of the world: wakes as alarm periods end (and the services publish
/// their per-minute metrics), evaluates the alarms and sends their state changes on.
pub struct CloudWatch;

impl Process for CloudWatch {
    fn name(&self) -> &'static str {
        NAME
    }

    fn sync(&self, world: &mut World) {
        let World {
            regions,
            cloudwatch,
            clock_ms,
            ..
        } = world;
        cloudwatch.sync(
            regions
                .values()
                .flat_map(|m| m.values())
                .filter(|r| matches!(r.resource.kind, Kind::MetricAlarm | Kind::CompositeAlarm))
                .map(|r| (&r.resource, r.created_at_ms, r.updated_at_ms)),
        );
        if cloudwatch.evaluated_to_ms == 0 {
            cloudwatch.evaluated_to_ms = *clock_ms;
        }
        let due = world.cloudwatch.next_due_ms(&world.config);
        let pending = world
            .agenda
            .find(|e| e.process == NAME && e.what == "evaluate")
            .map(|e| e.at_ms);
        if pending != Some(due) {
            world
                .agenda
                .cancel(|e| e.process == NAME && e.what == "evaluate");
            world.schedule(due, NAME, "", "evaluate", Value::Null);
        }
    }

    fn handle(&self, world: &mut World, event: &Event) {
        let now = world.clock_ms;
        if event.what == "monitor-sample" {
            monitor::sample_due(world, &event.target, now);
            return;
        }
        if now.is_multiple_of(world.config.service_metric_period_ms.max(1)) {
            publish_service_metrics(world, now);
            monitor::invoke_due(world, now);
        }
        let changes = evaluate_reachable(world, now);
        for c in changes {
            if let Some(a) = world.cloudwatch.alarms.get(&c.arn) {
                let fact = super::timeline::AlarmFact {
                    at_ms: c.at_ms,
                    region: a.region.clone(),
                    name: a.name.clone(),
                    from: c.previous.name().into(),
                    to: c.state.name().into(),
                };
                super::timeline::push_bounded(
                    &mut world.timeline.alarms,
                    fact,
                    super::timeline::MAX_FACTS,
                );
            }
            send_state_change(world, &c);
        }
        if now.is_multiple_of(3_600_000) {
            let keep_from = now.saturating_sub(world.config.metric_retention_ms);
            world.cloudwatch.metrics.prune(keep_from);
        }
        let due = world.cloudwatch.next_due_ms(&world.config);
        world.schedule(due, NAME, "", "evaluate", Value::Null);
    }
}

/// Evaluates the alarms at `now`, except those of a region that is down: its CloudWatch is
/// out with it, so they keep their state until it is back.
fn evaluate_reachable(world: &mut World, now: u64) -> Vec<AlarmChange> {
    let down: Vec<String> = world
        .cloudwatch
        .alarms
        .values()
        .map(|a| a.region.clone())
        .filter(|r| world.region_down(r))
        .collect();
    if down.is_empty() {
        return world.cloudwatch.evaluate_at(now, &world.config);
    }
    let frozen: BTreeMap<String, AlarmSim> = world
        .cloudwatch
        .alarms
        .iter()
        .filter(|(_, a)| down.contains(&a.region))
        .map(|(k, a)| (k.clone(), a.clone()))
        .collect();
    let changes = world.cloudwatch.evaluate_at(now, &world.config);
    for (arn, a) in frozen {
        world.cloudwatch.alarms.insert(arn, a);
    }
    changes
        .into_iter()
        .filter(|c| {
            world
                .cloudwatch
                .alarms
                .get(&c.arn)
                .is_some_and(|a| a.state == c.state)
        })
        .collect()
}

/// Publishes what AWS services report every minute and the world knows: each target group's
/// `HealthyHostCount` and `UnHealthyHostCount` (`AWS/ApplicationELB`), for the period that
/// just ended.
fn publish_service_metrics(world: &mut World, now: u64) {
    let period = world.config.service_metric_period_ms.max(1);
    let mut samples = Vec::new();
    for tg in world.list(None, Some(Kind::TargetGroup)) {
        if world.region_down(&tg.region) {
            continue;
        }
        let Some(lb) = alb_of_target_group(world, &tg) else {
            continue;
        };
        let (healthy, unhealthy) = world.target_groups.get(&tg.arn).map_or((0, 0), |g| {
            let n = |s: &str| g.targets.iter().filter(|t| t.state == s).count();
            (n("healthy"), n("unhealthy"))
        });
        let dims = [
            ("TargetGroup", tg.attr_str("arn_suffix")),
            ("LoadBalancer", lb.attr_str("arn_suffix")),
        ];
        for (metric, value) in [
            ("HealthyHostCount", healthy),
            ("UnHealthyHostCount", unhealthy),
        ] {
            samples.push((
                MetricId::new(&tg.region, "AWS/ApplicationELB", metric, &dims),
                value as f64,
            ));
        }
    }
    for (metric, value) in samples {
        world.cloudwatch.metrics.put(&metric, now - period, value);
    }
}

/// The load balancer whose listener forwards to `tg`.
fn alb_of_target_group(world: &World, tg: &Resource) -> Option<Resource> {
    let listener = world
        .list(Some(&tg.region), Some(Kind::Listener))
        .into_iter()
        .find(|l| {
            l.spec
                .pointer("/default_action/target_group_arn")
                .and_then(Value::as_str)
                == Some(tg.arn.as_str())
        })?;
    let lb_arn = listener
        .spec
        .get("load_balancer_arn")?
        .as_str()?
        .to_string();
    world
        .list(Some(&tg.region), Some(Kind::LoadBalancer))
        .into_iter()
        .find(|lb| lb.arn == lb_arn)
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
    Ok(world.cloudwatch.describe(region, name_prefix))
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
    if Statistic::parse(&q.stat).is_none() {
        return Err(CloudError::new(
            ErrorKind::InvalidInput,
            format!(
                "unknown statistic {:?}: use Average, Minimum, Maximum, Sum or SampleCount",
                q.stat
            ),
        ));
    }
    Ok(world.cloudwatch.get_metric_data(q, start_ms, end_ms))
}

#[cfg(test)]
mod tests;
