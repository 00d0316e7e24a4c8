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
use super::route53::hash_unit;
use crate::backend::{
    AlarmState, AlarmStateValue, CloudError, Datapoint, ErrorKind, Kind, MetricQuery, Resource,
    Tags,
};

/// One metric: where it lives and what it is.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MetricId {
    /// The region whose CloudWatch holds it.
    pub region: String,
    /// `Namespace`.
    pub namespace: String,
    /// `MetricName`.
    pub metric_name: String,
    /// `Dimensions`.
    pub dimensions: Tags,
}

impl MetricId {
    /// A metric from its parts.
    pub fn new(
        region: &str,
        namespace: &str,
        metric_name: &str,
        dimensions: &[(&str, &str)],
    ) -> MetricId {
        MetricId {
            region: region.into(),
            namespace: namespace.into(),
            metric_name: metric_name.into(),
            dimensions: dimensions
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// The metric a `GetMetricData` query names.
    pub fn of_query(q: &MetricQuery) -> MetricId {
        MetricId {
            region: q.region.clone(),
            namespace: q.namespace.clone(),
            metric_name: q.metric_name.clone(),
            dimensions: q.dimensions.clone(),
        }
    }

    /// A stable text key (the world file keys series by it).
    fn key(&self) -> String {
        let dims: Vec<String> = self
            .dimensions
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        format!(
            "{}|{}|{}|{}",
            self.region,
            self.namespace,
            self.metric_name,
            dims.join(",")
        )
    }
}

/// A statistic (`Stat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Statistic {
    /// `Average`.
    Average,
    /// `Minimum`.
    Minimum,
    /// `Maximum`.
    Maximum,
    /// `Sum`.
    Sum,
    /// `SampleCount`.
    SampleCount,
}

impl Statistic {
    /// Parses the AWS name; `None` for percentiles and anything else the sim does not compute.
    pub fn parse(name: &str) -> Option<Statistic> {
        Some(match name {
            "Average" => Statistic::Average,
            "Minimum" => Statistic::Minimum,
            "Maximum" => Statistic::Maximum,
            "Sum" => Statistic::Sum,
            "SampleCount" => Statistic::SampleCount,
            _ => return None,
        })
    }

    fn of(self, values: &[f64]) -> Option<f64> {
        if values.is_empty() {
            return None;
        }
        let sum: f64 = values.iter().sum();
        Some(match self {
            Statistic::Average => sum / values.len() as f64,
            Statistic::Minimum => values.iter().copied().fold(f64::INFINITY, f64::min),
            Statistic::Maximum => values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            Statistic::Sum => sum,
            Statistic::SampleCount => values.len() as f64,
        })
    }
}

/// One published value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Its timestamp.
    pub at_ms: u64,
    /// Its value.
    pub value: f64,
}

/// Every metric's samples, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricStore {
    series: BTreeMap<String, Vec<Sample>>,
}

impl MetricStore {
    /// Publishes one value (`PutMetricData`).
    pub fn put(&mut self, metric: &MetricId, at_ms: u64, value: f64) {
        let s = self.series.entry(metric.key()).or_default();
        let at = s.partition_point(|x| x.at_ms <= at_ms);
        s.insert(at, Sample { at_ms, value });
    }

    /// The statistic over the samples in `[start_ms, end_ms)`; `None` when there are none.
    pub fn statistic(
        &self,
        metric: &MetricId,
        stat: Statistic,
        start_ms: u64,
        end_ms: u64,
    ) -> Option<f64> {
        let s = self.series.get(&metric.key())?;
        let from = s.partition_point(|x| x.at_ms < start_ms);
        let to = s.partition_point(|x| x.at_ms < end_ms);
        let values: Vec<f64> = s[from..to].iter().map(|x| x.value).collect();
        stat.of(&values)
    }

    /// One datapoint per period of `period_ms` from `start_ms` (rounded down to a period) to
    /// `end_ms`, periods without samples left out, oldest first (`GetMetricData`).
    pub fn datapoints(
        &self,
        metric: &MetricId,
        stat: Statistic,
        period_ms: u64,
        start_ms: u64,
        end_ms: u64,
    ) -> Vec<Datapoint> {
        let period = period_ms.max(1);
        let mut at = start_ms - start_ms % period;
        let mut out = Vec::new();
        while at < end_ms {
            if let Some(value) = self.statistic(metric, stat, at, at + period) {
                out.push(Datapoint { at_ms: at, value });
            }
            at += period;
        }
        out
    }

    /// Forgets samples older than `before_ms`, so the world file stays small.
    pub fn prune(&mut self, before_ms: u64) {
        for s in self.series.values_mut() {
            let keep = s.partition_point(|x| x.at_ms < before_ms);
            s.drain(..keep);
        }
        self.series.retain(|_, s| !s.is_empty());
    }
}

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

/// A composite alarm's rule (`AlarmRule`): `ALARM(name)`, `OK(name)`,
/// `INSUFFICIENT_DATA(name)`, `TRUE`, `FALSE`, combined with `AND`, `OR`, `NOT` and
/// parentheses. Names may be quoted; an ARN names an alarm too.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AlarmRule {
    /// `TRUE` or `FALSE`.
    Const(bool),
    /// The named alarm is in this state.
    Is(AlarmStateValue, String),
    /// Both.
    And(Box<AlarmRule>, Box<AlarmRule>),
    /// Either.
    Or(Box<AlarmRule>, Box<AlarmRule>),
    /// Not.
    Not(Box<AlarmRule>),
}

impl AlarmRule {
    /// Parses a rule; the error says what was not understood.
    pub fn parse(text: &str) -> Result<AlarmRule, String> {
        let tokens = tokenize(text)?;
        let mut pos = 0;
        let rule = parse_or(&tokens, &mut pos)?;
        if pos != tokens.len() {
            return Err(format!("unexpected {:?} in alarm rule", tokens[pos]));
        }
        Ok(rule)
    }

    /// Evaluates the rule; `state_of` gives an alarm's state by name or ARN (`None`: no such
    /// alarm, which matches no state).
    pub fn holds(&self, state_of: &dyn Fn(&str) -> Option<AlarmStateValue>) -> bool {
        match self {
            AlarmRule::Const(b) => *b,
            AlarmRule::Is(state, name) => state_of(name) == Some(*state),
            AlarmRule::And(a, b) => a.holds(state_of) && b.holds(state_of),
            AlarmRule::Or(a, b) => a.holds(state_of) || b.holds(state_of),
            AlarmRule::Not(a) => !a.holds(state_of),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Quoted(String),
    Open,
    Close,
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' => {
                chars.next();
                out.push(Token::Open);
            }
            ')' => {
                chars.next();
                out.push(Token::Close);
            }
            '"' => {
                chars.next();
                let mut s = String::new();
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => s.extend(chars.next()),
                        Some(c) => s.push(c),
                        None => return Err("unterminated quoted name in alarm rule".into()),
                    }
                }
                out.push(Token::Quoted(s));
            }
            _ => {
                let mut s = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || c == '(' || c == ')' {
                        break;
                    }
                    s.push(c);
                    chars.next();
                }
                out.push(Token::Word(s));
            }
        }
    }
    Ok(out)
}

fn parse_or(t: &[Token], pos: &mut usize) -> Result<AlarmRule, String> {
    let mut left = parse_and(t, pos)?;
    while t.get(*pos) == Some(&Token::Word("OR".into())) {
        *pos += 1;
        left = AlarmRule::Or(Box::new(left), Box::new(parse_and(t, pos)?));
    }
    Ok(left)
}

fn parse_and(t: &[Token], pos: &mut usize) -> Result<AlarmRule, String> {
    let mut left = parse_not(t, pos)?;
    while t.get(*pos) == Some(&Token::Word("AND".into())) {
        *pos += 1;
        left = AlarmRule::And(Box::new(left), Box::new(parse_not(t, pos)?));
    }
    Ok(left)
}

fn parse_not(t: &[Token], pos: &mut usize) -> Result<AlarmRule, String> {
    if t.get(*pos) == Some(&Token::Word("NOT".into())) {
        *pos += 1;
        return Ok(AlarmRule::Not(Box::new(parse_not(t, pos)?)));
    }
    match t.get(*pos) {
        Some(Token::Open) => {
            *pos += 1;
            let inner = parse_or(t, pos)?;
            if t.get(*pos) != Some(&Token::Close) {
                return Err("missing `)` in alarm rule".into());
            }
            *pos += 1;
            Ok(inner)
        }
        Some(Token::Word(w)) if w == "TRUE" || w == "FALSE" => {
            *pos += 1;
            Ok(AlarmRule::Const(w == "TRUE"))
        }
        Some(Token::Word(w)) => {
            let state = match w.as_str() {
                "ALARM" => AlarmStateValue::Alarm,
                "OK" => AlarmStateValue::Ok,
                "INSUFFICIENT_DATA" => AlarmStateValue::InsufficientData,
                other => return Err(format!("unknown function {other:?} in alarm rule")),
            };
            let name = match (t.get(*pos + 1), t.get(*pos + 2), t.get(*pos + 3)) {
                (
                    Some(Token::Open),
                    Some(Token::Quoted(n) | Token::Word(n)),
                    Some(Token::Close),
                ) => n.clone(),
                _ => return Err(format!("{w} takes one alarm name in parentheses")),
            };
            *pos += 4;
            Ok(AlarmRule::Is(state, name))
        }
        other => Err(format!("unexpected {other:?} in alarm rule")),
    }
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
            if at_ms % p != 0 || at_ms <= a.created_at_ms {
                continue;
            }
            let first = a.created_at_ms - a.created_at_ms % p;
            let range = u64::from(spec.evaluation_periods) + extra;
            let points: Vec<Option<f64>> = (1..=range)
                .map(|k| at_ms.checked_sub(k * p))
                .take_while(|s| s.is_some_and(|s| s >= first))
                .flatten()
                .map(|s| self.metrics.statistic(&spec.metric, spec.stat, s, s + p))
                .collect();
            let (state, reason) = evaluate(spec, &points, a.state);
            if state != a.state {
                changes.push(AlarmChange {
                    arn: a.arn.clone(),
                    previous: a.state,
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

/// The EventBridge-to-SQS delivery latency of one event, in milliseconds: log-normal with the
/// median [`SimConfig::eventbridge_to_sqs_p50_ms`] and the 99th percentile
/// [`SimConfig::eventbridge_to_sqs_p99_ms`], drawn from `seed` (the same event always takes
/// the same time).
pub fn delivery_latency_ms(config: &SimConfig, seed: &str) -> u64 {
    let p50 = config.eventbridge_to_sqs_p50_ms.max(1) as f64;
    let p99 = (config.eventbridge_to_sqs_p99_ms as f64).max(p50);
    // z of the 99th percentile of the standard normal.
    let sigma = (p99 / p50).ln() / 2.326_348;
    // Box-Muller from two seeded uniforms.
    let u1 = hash_unit(seed, 1).max(1e-12);
    let u2 = hash_unit(seed, 2);
    let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
    (p50 * (sigma * z).exp()).round() as u64
}

/// One message in an SQS queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SqsMessage {
    /// `MessageId`.
    pub message_id: String,
    /// The queue's ARN.
    pub queue_arn: String,
    /// The body: the EventBridge event.
    pub body: Value,
    /// When the event was put on the bus.
    pub sent_at_ms: u64,
    /// When it is in the queue (sent plus the delivery latency).
    pub available_at_ms: u64,
}

/// A UUID-shaped id drawn from `seed` (EventBridge event ids, SQS message ids).
pub fn seeded_uuid(seed: &str) -> String {
    let hex: String = (0..4)
        .map(|i| {
            format!(
                "{:08x}",
                (hash_unit(seed, 100 + i) * f64::from(u32::MAX)) as u32
            )
        })
        .collect();
    format!(
        "{}-{}-4{}-a{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

/// Completes an event as EventBridge puts it on a bus: its `id` and `time`.
pub fn stamp_event(mut event: Value, at_ms: u64) -> Value {
    let seed = format!("{event}/{at_ms}");
    if let Some(map) = event.as_object_mut() {
        map.insert("id".into(), Value::String(seeded_uuid(&seed)));
        map.insert(
            "time".into(),
            Value::String(drflow_engine::iso8601(at_ms as f64 / 1000.0)),
        );
    }
    event
}

/// Where an event put on `region`'s default bus at `sent_at_ms` ends up: for every enabled
/// rule there whose pattern matches, each SQS target gets the event after a
/// [delivery latency](delivery_latency_ms); a target that is another region's bus forwards it
/// there (one hop, as EventBridge does not forward a forwarded event again).
/// `rules(region, event)` gives a region's matching rules.
pub fn route_event(
    rules: &dyn Fn(&str, &Value) -> Vec<Resource>,
    region: &str,
    event: &Value,
    sent_at_ms: u64,
    config: &SimConfig,
) -> Vec<SqsMessage> {
    let mut out = Vec::new();
    route_hop(rules, region, event, sent_at_ms, config, 0, &mut out);
    for m in &mut out {
        m.sent_at_ms = sent_at_ms;
    }
    out
}

fn route_hop(
    rules: &dyn Fn(&str, &Value) -> Vec<Resource>,
    region: &str,
    event: &Value,
    at_ms: u64,
    config: &SimConfig,
    hop: u32,
    out: &mut Vec<SqsMessage>,
) {
    let id = event.get("id").and_then(Value::as_str).unwrap_or("");
    for rule in rules(region, event) {
        if rule
            .spec
            .get("state")
            .and_then(Value::as_str)
            .unwrap_or("ENABLED")
            != "ENABLED"
        {
            continue;
        }
        let targets = rule.spec.get("targets").and_then(Value::as_array).cloned();
        for target in targets.unwrap_or_default() {
            let Some(arn) = target.get("arn").and_then(Value::as_str) else {
                continue;
            };
            let seed = format!("{id}/{}/{arn}", rule.arn);
            let arrives = at_ms + delivery_latency_ms(config, &seed);
            let parts: Vec<&str> = arn.split(':').collect();
            match parts.get(2).copied() {
                Some("sqs") => out.push(SqsMessage {
                    message_id: seeded_uuid(&seed),
                    queue_arn: arn.to_string(),
                    body: event.clone(),
                    sent_at_ms: at_ms,
                    available_at_ms: arrives,
                }),
                Some("events") if hop == 0 && arn.contains(":event-bus/") => {
                    if let Some(to) = parts.get(3).filter(|r| **r != region) {
                        route_hop(rules, to, event, arrives, config, hop + 1, out);
                    }
                }
                _ => {}
            }
        }
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
        let pending = world.agenda.find(|e| e.process == NAME).map(|e| e.at_ms);
        if pending != Some(due) {
            world.agenda.cancel(|e| e.process == NAME);
            world.schedule(due, NAME, "", "evaluate", Value::Null);
        }
    }

    fn handle(&self, world: &mut World, _event: &Event) {
        let now = world.clock_ms;
        if now % world.config.service_metric_period_ms.max(1) == 0 {
            publish_service_metrics(world, now);
        }
        let changes = evaluate_reachable(world, now);
        for c in changes {
            send_state_change(world, &c);
        }
        if now % 3_600_000 == 0 {
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

/// Puts the `CloudWatch Alarm State Change` event of `change` on its region's bus and delivers
/// it where the rules say (nowhere when the region is down).
fn send_state_change(world: &mut World, change: &AlarmChange) {
    let Some(alarm) = world
        .cloudwatch
        .alarms
        .get(&change.arn)
        .map(|a| a.region.clone())
        .and_then(|region| {
            world
                .list(Some(&region), None)
                .into_iter()
                .find(|r| r.arn == change.arn)
        })
    else {
        return;
    };
    if world.region_down(&alarm.region) {
        return;
    }
    let event = stamp_event(
        super::alarm_state_change_event(&alarm, change.previous.name(), change.state.name()),
        change.at_ms,
    );
    let rules = |region: &str, e: &Value| -> Vec<Resource> {
        if world.region_down(region) {
            return Vec::new();
        }
        world.rules_matching(region, e)
    };
    let messages = route_event(&rules, &alarm.region, &event, change.at_ms, &world.config);
    world.cloudwatch.sqs.extend(messages);
}

/// The messages EventBridge delivered into the queue `queue` (its ARN or URL) and that are
/// there by now, oldest first: what a daemon receiving from it gets.
pub fn queue_messages<'a>(world: &'a World, queue: &str) -> Vec<&'a SqsMessage> {
    let arn = queue_arn(queue);
    let now = world.clock_ms;
    let mut v: Vec<&SqsMessage> = world
        .cloudwatch
        .sqs
        .iter()
        .filter(|m| m.queue_arn == arn && m.available_at_ms <= now)
        .collect();
    v.sort_by_key(|m| m.available_at_ms);
    v
}

/// A queue's ARN from its ARN or its URL (`https://sqs.<region>.amazonaws.com/<account>/<name>`).
fn queue_arn(queue: &str) -> String {
    let Some(rest) = queue.strip_prefix("https://sqs.") else {
        return queue.to_string();
    };
    let mut parts = rest.split('/');
    let host = parts.next().unwrap_or("");
    let region = host.split('.').next().unwrap_or("");
    let account = parts.next().unwrap_or("");
    let name = parts.next().unwrap_or("");
    format!("arn:aws:sqs:{region}:{account}:{name}")
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
