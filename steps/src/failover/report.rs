//! `dr.failover_report`: the run's figures from its steps' outputs (pure).
//!
//! The runbook hands it each phase's outputs, or `{}` for a phase that did not run, so the
//! figures exist whatever happened: RTO from the primary's first failure the run could see to
//! the moment Route 53 answered with the standby, RPO and lost writes from the promotion, the
//! actions in order, and the time each phase took.

use std::sync::Arc;

use drflow_engine::{Outputs, Registry, StepContext, StepFuture, StepSpec, StepType, ValueType};
use serde_json::{Value, json};

pub(crate) struct Report(StepSpec);

impl Report {
    pub(crate) fn new() -> Report {
        Report(
            StepSpec::new(
                "dr.failover_report",
                "Adds up a failover or failback run from its phases' outputs (`{}` for a phase \
                 that did not run): RTO from the primary's first failure the run could see to \
                 Route 53 answering with the new side, RPO and lost writes from the promotion, \
                 every action in order, and the seconds each phase took. Touches nothing.",
            )
            .required(
                "decision",
                ValueType::String,
                "The decision (or `unknown` when none was taken).",
            )
            .optional("reason", ValueType::String, json!(""), "Why.")
            .optional(
                "first_failure_at_ms",
                ValueType::Any,
                Value::Null,
                "The first failure the run saw (null: none).",
            )
            .required(
                "phases",
                ValueType::Map,
                "Each phase's outputs by name, in the order they run, `{}` for one that did not \
                 run. Read by name: `promote` (RPO, lost writes), `scale` (shortfall), `verify` \
                 (when the new side was served); every phase's `actions` and times.",
            )
            .output("decision", ValueType::String, "The decision.")
            .output(
                "rto_seconds",
                ValueType::Any,
                "From the first failure to the new side served (null: not served in this run).",
            )
            .output(
                "rpo_seconds",
                ValueType::Any,
                "Seconds of commits lost at the promotion (null: no promotion in this run).",
            )
            .output(
                "lost_writes",
                ValueType::Any,
                "Writes lost at the promotion (null: no promotion, or unknown).",
            )
            .output(
                "actions",
                ValueType::List,
                "Every change the run made, in phase order.",
            )
            .output(
                "phase_seconds",
                ValueType::Map,
                "Seconds each phase that ran took.",
            )
            .output(
                "shortfall",
                ValueType::Int,
                "Instances the new side lacks (capacity short).",
            )
            .output("summary", ValueType::String, "One line for people.")
            .outputs_not_secret(),
        )
    }
}

fn num(v: Option<&Value>) -> Option<f64> {
    v.and_then(Value::as_f64)
}

/// The figures of a run (pure).
pub(crate) fn report(decision: &str, reason: &str, first: Option<f64>, phases: &Value) -> Outputs {
    let phase = |name: &str| {
        phases
            .get(name)
            .filter(|p| p.as_object().is_some_and(|o| !o.is_empty()))
    };
    let mut actions = Vec::new();
    let mut seconds = serde_json::Map::new();
    let names: Vec<&String> = phases
        .as_object()
        .map(|m| m.keys().collect())
        .unwrap_or_default();
    for name in names {
        let Some(p) = phase(name) else { continue };
        if let Some(list) = p.get("actions").and_then(Value::as_array) {
            actions.extend(list.iter().cloned());
        }
        if let (Some(a), Some(b)) = (num(p.get("started_at_ms")), num(p.get("ended_at_ms"))) {
            seconds.insert(name.clone(), json!(((b - a) / 1000.0).max(0.0)));
        }
    }
    let served = phase("verify").and_then(|p| num(p.get("served_at_ms")));
    let acted = phase("promote").is_some() || phase("traffic").is_some();
    let rto = match (first, served) {
        (Some(f), Some(s)) if acted => json!(((s - f) / 1000.0).max(0.0)),
        _ => Value::Null,
    };
    let promote = phase("promote");
    let rpo = promote
        .and_then(|p| p.get("rpo_seconds"))
        .cloned()
        .unwrap_or(Value::Null);
    let lost = promote
        .and_then(|p| p.get("lost_writes"))
        .cloned()
        .unwrap_or(Value::Null);
    let shortfall = phase("scale")
        .and_then(|p| p.get("shortfall"))
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let mut summary = match decision {
        "none" => format!("nothing to do: {reason}"),
        d => format!("{d}: {reason}"),
    };
    if let Some(r) = rto.as_f64() {
        summary.push_str(&format!("; served after {r:.0} s"));
    }
    if let Some(l) = lost.as_u64() {
        summary.push_str(&format!("; {l} write(s) lost"));
    }
    if shortfall > 0 {
        summary.push_str(&format!("; capacity short by {shortfall} instance(s)"));
    }
    let mut out = Outputs::new();
    out.insert("decision".into(), json!(decision));
    out.insert("rto_seconds".into(), rto);
    out.insert("rpo_seconds".into(), rpo);
    out.insert("lost_writes".into(), lost);
    out.insert("actions".into(), Value::Array(actions));
    out.insert("phase_seconds".into(), Value::Object(seconds));
    out.insert("shortfall".into(), json!(shortfall));
    out.insert("summary".into(), json!(summary));
    out
}

impl StepType for Report {
    fn spec(&self) -> &StepSpec {
        &self.0
    }

    fn run<'a>(&'a self, _ctx: &'a StepContext, input: &'a Outputs) -> StepFuture<'a> {
        Box::pin(async move {
            let decision = input
                .get("decision")
                .and_then(Value::as_str)
                .unwrap_or("unknown");
            let reason = input.get("reason").and_then(Value::as_str).unwrap_or("");
            let first = num(input.get("first_failure_at_ms"));
            let phases = input.get("phases").cloned().unwrap_or(json!({}));
            Ok(report(decision, reason, first, &phases))
        })
    }
}

pub(crate) fn register(reg: &mut Registry) {
    reg.register(Arc::new(Report::new()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_come_from_the_phases_that_ran() {
        let phases = json!({
            "signals": {"actions": [], "started_at_ms": 1000, "ended_at_ms": 31000},
            "fence": {},
            "promote": {"actions": ["FailoverGlobalCluster x"], "started_at_ms": 31000,
                        "ended_at_ms": 91000, "lost_writes": 3, "rpo_seconds": 0.8},
            "scale": {"actions": ["UpdateAutoScalingGroup y"], "started_at_ms": 31000,
                      "ended_at_ms": 67000, "shortfall": 1},
            "traffic": {"actions": ["ChangeResourceRecordSets z"], "started_at_ms": 91000,
                        "ended_at_ms": 151000},
            "verify": {"actions": [], "started_at_ms": 151000, "ended_at_ms": 151000,
                       "served_at_ms": 151000},
        });
        let out = report("failover", "confirmed", Some(1000.0 - 20_000.0), &phases);
        assert_eq!(out["rto_seconds"], json!(170.0));
        assert_eq!(out["lost_writes"], 3);
        assert_eq!(out["rpo_seconds"], json!(0.8));
        assert_eq!(out["shortfall"], 1);
        assert_eq!(
            out["actions"],
            json!([
                "FailoverGlobalCluster x",
                "UpdateAutoScalingGroup y",
                "ChangeResourceRecordSets z"
            ])
        );
        assert_eq!(out["phase_seconds"]["promote"], json!(60.0));
        assert!(out["phase_seconds"].get("fence").is_none());
        let s = out["summary"].as_str().unwrap();
        assert!(
            s.contains("served after 170 s")
                && s.contains("3 write(s) lost")
                && s.contains("short by 1"),
            "{s}"
        );
    }

    #[test]
    fn a_run_that_held_has_no_rto_and_no_actions() {
        let phases = json!({"signals": {"actions": [], "started_at_ms": 0, "ended_at_ms": 30000},
                            "fence": {}, "promote": {}, "scale": {}, "traffic": {}, "verify": {}});
        let out = report("hold", "1 of 3 signals", Some(0.0), &phases);
        assert_eq!(out["rto_seconds"], Value::Null);
        assert_eq!(out["lost_writes"], Value::Null);
        assert_eq!(out["actions"], json!([]));
        assert_eq!(out["summary"], "hold: 1 of 3 signals");
        let out = report("none", "the standby already serves", None, &phases);
        assert!(out["summary"].as_str().unwrap().contains("already serves"));
    }
}
