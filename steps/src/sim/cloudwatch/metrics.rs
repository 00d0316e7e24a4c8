//! CloudWatch metrics: samples per metric, and statistics over periods.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::backend::{Datapoint, MetricQuery, Tags};

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
        statistic_of(self.samples(metric), stat, start_ms, end_ms)
    }

    /// One metric's samples, oldest first.
    pub fn samples(&self, metric: &MetricId) -> &[Sample] {
        self.series.get(&metric.key()).map_or(&[], Vec::as_slice)
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

/// The statistic over `samples` (oldest first) in `[start_ms, end_ms)`; `None` when there are
/// none.
pub fn statistic_of(
    samples: &[Sample],
    stat: Statistic,
    start_ms: u64,
    end_ms: u64,
) -> Option<f64> {
    let from = samples.partition_point(|x| x.at_ms < start_ms);
    let to = samples.partition_point(|x| x.at_ms < end_ms);
    let values: Vec<f64> = samples[from..to].iter().map(|x| x.value).collect();
    stat.of(&values)
}
