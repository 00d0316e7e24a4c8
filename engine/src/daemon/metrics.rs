//! The daemon's counters, in the Prometheus text exposition format (version 0.0.4), served on
//! `/metrics`. Hand-written: a handful of counters and one histogram do not need a metrics
//! library (docs/decisions.md).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

/// The upper bounds of the decision latency histogram's buckets, in seconds.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Debug, Default)]
struct Inner {
    received: BTreeMap<String, u64>,
    dropped: BTreeMap<String, u64>,
    deduplicated: BTreeMap<String, u64>,
    firings: BTreeMap<String, u64>,
    suppressed: u64,
    coalesced: u64,
    runs: BTreeMap<String, u64>,
    runs_in_progress: u64,
    source_errors: BTreeMap<String, u64>,
    latency_buckets: [u64; LATENCY_BUCKETS.len()],
    latency_count: u64,
    latency_sum: f64,
}

/// The daemon's metrics. Shared between the loop and the HTTP server; every method is cheap.
/// Every label value the daemon can produce is there from the start at 0, so that a rate or
/// an `increase()` over the first occurrence works.
#[derive(Debug)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        let zeros = |keys: &[&str]| -> BTreeMap<String, u64> {
            keys.iter().map(|k| (k.to_string(), 0)).collect()
        };
        let sources = ["queue", "reconcile", "probe"];
        Metrics {
            inner: Mutex::new(Inner {
                received: zeros(&sources),
                dropped: zeros(&["malformed", "foreign"]),
                deduplicated: zeros(&["duplicate", "stale"]),
                runs: zeros(&[
                    "succeeded",
                    "failed",
                    "interrupted",
                    "rolled_back",
                    "rollback_failed",
                    "error",
                ]),
                source_errors: zeros(&sources),
                ..Inner::default()
            }),
        }
    }
}

fn bump(map: &mut BTreeMap<String, u64>, key: &str) {
    *map.entry(key.to_string()).or_default() += 1;
}

impl Metrics {
    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        f(&mut self.inner.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// A message arrived from `source` (`queue`, `reconcile`, `probe`).
    pub fn received(&self, source: &str) {
        self.with(|m| bump(&mut m.received, source));
    }

    /// A message was dropped: `malformed` or `foreign`.
    pub fn dropped(&self, reason: &str) {
        self.with(|m| bump(&mut m.dropped, reason));
    }

    /// A message changed nothing: `duplicate` or `stale`.
    pub fn deduplicated(&self, reason: &str) {
        self.with(|m| bump(&mut m.deduplicated, reason));
    }

    /// Declares `trigger`, so that its firing counter shows 0 before it first fires.
    pub fn declare_trigger(&self, trigger: &str) {
        self.with(|m| {
            m.firings.entry(trigger.to_string()).or_default();
        });
    }

    /// `trigger` fired.
    pub fn fired(&self, trigger: &str) {
        self.with(|m| bump(&mut m.firings, trigger));
    }

    /// A trigger was met in its cooldown.
    pub fn suppressed(&self) {
        self.with(|m| m.suppressed += 1);
    }

    /// A firing not started yet was replaced by a newer one for the same key.
    pub fn coalesced(&self) {
        self.with(|m| m.coalesced += 1);
    }

    /// A run started (or was resumed).
    pub fn run_started(&self) {
        self.with(|m| m.runs_in_progress += 1);
    }

    /// A run ended with `status` (`succeeded`, `failed`, `interrupted`, …).
    pub fn run_ended(&self, status: &str) {
        self.with(|m| {
            m.runs_in_progress = m.runs_in_progress.saturating_sub(1);
            bump(&mut m.runs, status);
        });
    }

    /// An event source failed to deliver (`queue`, `reconcile`, `probe`).
    pub fn source_error(&self, source: &str) {
        self.with(|m| bump(&mut m.source_errors, source));
    }

    /// The time from a message's arrival to the firing it completed being journaled and queued,
    /// in seconds (not the wait behind a run in progress).
    pub fn decision_latency(&self, seconds: f64) {
        self.with(|m| {
            for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
                if seconds <= *bound {
                    m.latency_buckets[i] += 1;
                }
            }
            m.latency_count += 1;
            m.latency_sum += seconds;
        });
    }

    /// How many runs are in progress.
    pub fn runs_in_progress(&self) -> u64 {
        self.with(|m| m.runs_in_progress)
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        self.with(|m| {
            let mut out = String::new();
            let labelled = |out: &mut String,
                            name: &str,
                            help: &str,
                            label: &str,
                            values: &BTreeMap<String, u64>| {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
                for (k, v) in values {
                    let _ = writeln!(out, "{name}{{{label}=\"{}\"}} {v}", escape(k));
                }
            };
            labelled(
                &mut out,
                "drflow_daemon_events_received_total",
                "Messages received, by event source.",
                "source",
                &m.received,
            );
            labelled(
                &mut out,
                "drflow_daemon_events_dropped_total",
                "Messages logged and dropped: malformed, or foreign (no trigger is about them).",
                "reason",
                &m.dropped,
            );
            labelled(
                &mut out,
                "drflow_daemon_events_deduplicated_total",
                "Events that changed nothing: a duplicate (same id, or same alarm state and timestamp), or stale (older than the alarm's newest state).",
                "reason",
                &m.deduplicated,
            );
            labelled(
                &mut out,
                "drflow_daemon_firings_total",
                "Trigger firings, by trigger.",
                "trigger",
                &m.firings,
            );
            let _ = writeln!(
                out,
                "# HELP drflow_daemon_firings_suppressed_total Triggers met during their cooldown.\n# TYPE drflow_daemon_firings_suppressed_total counter\ndrflow_daemon_firings_suppressed_total {}",
                m.suppressed
            );
            let _ = writeln!(
                out,
                "# HELP drflow_daemon_firings_coalesced_total Firings replaced, before their run started, by a newer firing for the same lock key.\n# TYPE drflow_daemon_firings_coalesced_total counter\ndrflow_daemon_firings_coalesced_total {}",
                m.coalesced
            );
            labelled(
                &mut out,
                "drflow_daemon_runs_total",
                "Runs the daemon started or resumed that ended, by status.",
                "status",
                &m.runs,
            );
            let _ = writeln!(
                out,
                "# HELP drflow_daemon_runs_in_progress Runs in progress.\n# TYPE drflow_daemon_runs_in_progress gauge\ndrflow_daemon_runs_in_progress {}",
                m.runs_in_progress
            );
            labelled(
                &mut out,
                "drflow_daemon_source_errors_total",
                "Failed reads of an event source (retried at its next poll).",
                "source",
                &m.source_errors,
            );
            let name = "drflow_daemon_decision_latency_seconds";
            let _ = writeln!(
                out,
                "# HELP {name} From the arrival of a message to the decision it completed (the firing journaled and queued).\n# TYPE {name} histogram"
            );
            for (bound, n) in LATENCY_BUCKETS.iter().zip(m.latency_buckets) {
                let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {n}");
            }
            let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", m.latency_count);
            let _ = writeln!(out, "{name}_sum {}", m.latency_sum);
            let _ = writeln!(out, "{name}_count {}", m.latency_count);
            out
        })
    }
}

/// A label value as the text format wants it: `\`, `"` and newlines escaped.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_by_label_and_a_cumulative_histogram() {
        let m = Metrics::default();
        m.received("queue");
        m.received("queue");
        m.received("reconcile");
        m.dropped("malformed");
        m.deduplicated("duplicate");
        m.fired("primary-down");
        m.run_started();
        m.run_ended("succeeded");
        m.decision_latency(0.004);
        m.decision_latency(0.2);
        m.source_error("say \"hi\"");
        let text = m.render();
        for line in [
            "drflow_daemon_events_received_total{source=\"queue\"} 2",
            "drflow_daemon_events_received_total{source=\"reconcile\"} 1",
            "drflow_daemon_events_dropped_total{reason=\"malformed\"} 1",
            "drflow_daemon_events_deduplicated_total{reason=\"duplicate\"} 1",
            "drflow_daemon_firings_total{trigger=\"primary-down\"} 1",
            "drflow_daemon_runs_total{status=\"succeeded\"} 1",
            "drflow_daemon_runs_in_progress 0",
            "drflow_daemon_decision_latency_seconds_bucket{le=\"0.001\"} 0",
            "drflow_daemon_decision_latency_seconds_bucket{le=\"0.005\"} 1",
            "drflow_daemon_decision_latency_seconds_bucket{le=\"0.25\"} 2",
            "drflow_daemon_decision_latency_seconds_bucket{le=\"+Inf\"} 2",
            "drflow_daemon_decision_latency_seconds_count 2",
            "drflow_daemon_source_errors_total{source=\"say \\\"hi\\\"\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
        }
        // Every sample line belongs to a declared metric.
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            let name = l.split(['{', ' ']).next().unwrap();
            let base = name
                .trim_end_matches("_bucket")
                .trim_end_matches("_sum")
                .trim_end_matches("_count");
            assert!(
                text.contains(&format!("# TYPE {base} ")),
                "{name} undeclared"
            );
        }
    }
}
