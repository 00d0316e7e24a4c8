//! `drflow plan`'s forecast: what the scratch run of [`crate::plan::plan_run`] did, read as the
//! forecast of the real run. On the simulated cloud the scratch run lives on the sim's virtual
//! clock, so each step's start and duration, the chain of steps that decides the end time, and
//! a failover's RTO are the sim's own timings. Pure: built from an [`Outcome`], the runbook's
//! dependencies and the figures the caller read; rendered as text or JSON.

use std::time::Duration;

use drflow_engine::{Outputs, Runbook, StepStatus, format_duration};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::plan::{Outcome, StepRun};

/// The forecast of one run. Its JSON form is `drflow plan --output json`'s document
/// (documented in `docs/plan.md`).
#[derive(Debug, Clone, Serialize)]
pub struct Forecast {
    /// The runbook's name.
    pub runbook: String,
    /// The parameters the run got (secret ones `"***"`).
    pub params: Value,
    /// `succeeded`, or `failed` when a step would fail for good.
    pub status: &'static str,
    /// Every step, in file order.
    pub steps: Vec<StepForecast>,
    /// The ids of the steps that decide the end time, first to last.
    pub critical_path: Vec<String>,
    /// How long the run would take, in seconds on the sim's clock.
    pub duration_seconds: f64,
    /// The runbook's own `rto_seconds` output (null: it has none, or the run moves nothing).
    pub runbook_rto_seconds: Option<f64>,
    /// When the first failure the run sees happened (a step's `first_failure_at_ms` output,
    /// `dr.read_signals`'), in seconds from the start of the run: negative when it is before,
    /// so the RTO began before the run (null: none seen).
    pub first_failure_seconds: Option<f64>,
    /// What the clients' DNS cache adds to it: the public record's TTL, in seconds (null when
    /// there is no RTO to add it to).
    pub client_ttl_seconds: Option<f64>,
    /// `runbook_rto_seconds` + `client_ttl_seconds`: until the last client is served again.
    pub forecast_rto_seconds: Option<f64>,
    /// The RTO objective (`--rto`), in seconds.
    pub objective_seconds: f64,
    /// Whether the forecast RTO is within the objective (null when there is no forecast RTO).
    pub within: Option<bool>,
    /// Steps that would fail, with their errors (a run-level error has an empty `step`).
    pub failed: Vec<FailedStep>,
    /// Whether the runbook has an `rto_seconds` output (a failover).
    #[serde(skip)]
    rto_output: bool,
}

/// One step of a [`Forecast`].
#[derive(Debug, Clone, Serialize)]
pub struct StepForecast {
    /// Its id.
    pub id: String,
    /// Its step type.
    #[serde(rename = "type")]
    pub step_type: String,
    /// `succeeded`, `failed`, `skipped`, `not_started` or `interrupted`.
    pub status: &'static str,
    /// When it would start, in seconds from the start of the run (a skipped step: when it is
    /// skipped; null: it would not be reached).
    pub start_seconds: Option<f64>,
    /// How long it would take, in seconds (0 for a skipped step).
    pub duration_seconds: Option<f64>,
    /// What it would do: each resource created (`+`), changed (`~`, `-/+`) or deleted (`-`),
    /// then each call that changes the cloud (its `actions` output).
    pub actions: Vec<String>,
    /// The outputs that say what it would decide
    /// ([`drflow_steps::decisive_outputs`]).
    pub outputs: Map<String, Value>,
}

/// A step that would fail.
#[derive(Debug, Clone, Serialize)]
pub struct FailedStep {
    /// Its id (empty for a run-level error).
    pub step: String,
    /// Why.
    pub error: String,
}

/// What the caller read besides the run: the objective and the clients' TTL.
pub struct Figures {
    /// When the run started on the world's clock (ms since the Unix epoch).
    pub started_at_ms: u64,
    /// The RTO objective.
    pub objective: Duration,
    /// The TTL of the public record, when the world has it; `None` adds nothing.
    pub client_ttl: Option<Duration>,
}

fn secs(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

impl Forecast {
    /// Reads `outcome` (a scratch run of `rb` with `params`) as a forecast.
    pub fn new(rb: &Runbook, params: Value, outcome: &Outcome, figures: &Figures) -> Forecast {
        let steps: Vec<StepForecast> = outcome.steps.iter().map(step_forecast).collect();
        let critical_path = critical_path(rb, &outcome.steps)
            .into_iter()
            .map(|i| outcome.steps[i].id.clone())
            .collect();
        let runbook_rto_seconds = outcome.outputs.get("rto_seconds").and_then(Value::as_f64);
        let client_ttl_seconds =
            runbook_rto_seconds.map(|_| figures.client_ttl.map_or(0.0, |t| t.as_secs_f64()));
        let forecast_rto_seconds =
            runbook_rto_seconds.map(|r| r + client_ttl_seconds.unwrap_or(0.0));
        let objective_seconds = figures.objective.as_secs_f64();
        let first_failure_seconds = outcome
            .steps
            .iter()
            .find_map(|s| s.outputs.as_ref()?.get("first_failure_at_ms")?.as_f64())
            .map(|at| (at - figures.started_at_ms as f64) / 1000.0);
        Forecast {
            runbook: rb.name.clone(),
            params,
            status: if outcome.would_fail {
                "failed"
            } else {
                "succeeded"
            },
            steps,
            critical_path,
            duration_seconds: secs(outcome.duration_ms),
            runbook_rto_seconds,
            first_failure_seconds,
            client_ttl_seconds,
            forecast_rto_seconds,
            objective_seconds,
            within: forecast_rto_seconds.map(|f| f <= objective_seconds),
            failed: outcome
                .failed
                .iter()
                .map(|(step, error)| FailedStep {
                    step: step.clone(),
                    error: error.clone(),
                })
                .collect(),
            rto_output: rb.outputs.iter().any(|(name, _)| name == "rto_seconds"),
        }
    }

    /// Whether the real run is forecast to do what it should: no step fails and the RTO, when
    /// there is one, is within the objective.
    pub fn ok(&self) -> bool {
        self.failed.is_empty() && self.status == "succeeded" && self.within != Some(false)
    }

    /// The forecast for people: each step with its start, duration and what it would do, the
    /// critical path, the total, the RTO against the objective.
    pub fn text(&self) -> String {
        let mut s = String::from(
            "Steps, in the order they would start (start and duration on the sim's clock, from the \
             start of the run):\n",
        );
        let width = self.steps.iter().map(|st| st.id.len()).max().unwrap_or(0);
        let type_width = self
            .steps
            .iter()
            .map(|st| st.step_type.len())
            .max()
            .unwrap_or(0);
        // In the order they would start: the forecast reads as a timeline.
        let mut order: Vec<&StepForecast> = self.steps.iter().collect();
        order.sort_by(|a, b| {
            let key = |st: &StepForecast| st.start_seconds.unwrap_or(f64::INFINITY);
            key(a).total_cmp(&key(b))
        });
        for st in order {
            let start = st
                .start_seconds
                .map_or_else(|| "-".to_string(), |v| format!("+{v:.1}s"));
            let took = match (st.status, st.duration_seconds) {
                ("skipped", _) => "skipped".to_string(),
                (_, Some(d)) => format!("{d:.1}s"),
                (_, None) => "-".to_string(),
            };
            let status = match st.status {
                "failed" => "  FAILS",
                "not_started" => "  not reached",
                "interrupted" => "  interrupted",
                _ => "",
            };
            s.push_str(
                format!(
                    "  {start:>8} {took:>8}  {:width$}  {:type_width$}{status}",
                    st.id, st.step_type
                )
                .trim_end(),
            );
            s.push('\n');
            for a in &st.actions {
                s.push_str(&format!("{:22}{a}\n", ""));
            }
            for (k, v) in st.outputs.iter().filter(|(_, v)| !is_empty(v)) {
                s.push_str(&format!("{:22}{k}: {}\n", "", show(v)));
            }
        }
        for f in &self.failed {
            if f.step.is_empty() {
                s.push_str(&format!("! the run would fail: {}\n", f.error));
            } else {
                s.push_str(&format!("! step `{}` would fail: {}\n", f.step, f.error));
            }
        }
        let chain: Vec<String> = self
            .critical_path
            .iter()
            .filter_map(|id| self.steps.iter().find(|st| &st.id == id))
            .map(|st| format!("{} {:.1}s", st.id, st.duration_seconds.unwrap_or(0.0)))
            .collect();
        s.push_str(&format!(
            "\nCritical path (the steps that decide the end time): {}\n",
            if chain.is_empty() {
                "none".to_string()
            } else {
                chain.join(" -> ")
            }
        ));
        s.push_str(&format!(
            "Forecast duration: {} ({:.1}s on the sim's clock)\n",
            human(self.duration_seconds),
            self.duration_seconds
        ));
        match (self.forecast_rto_seconds, self.runbook_rto_seconds) {
            (Some(f), Some(r)) => {
                let verdict = if f <= self.objective_seconds {
                    format!("within ({:.0}s to spare)", self.objective_seconds - f)
                } else {
                    format!("misses by {:.0}s", f - self.objective_seconds)
                };
                let first = match self.first_failure_seconds {
                    Some(t) if t < -0.5 => format!(", {:.0}s before the run starts,", -t),
                    Some(t) if t > 0.5 => format!(", {t:.0}s into the run,"),
                    _ => String::new(),
                };
                s.push_str(&format!(
                    "Forecast RTO: {} ({f:.0}s) = the runbook's rto_seconds {r:.0}s (from the first \
                     failure the run sees{first} to Route 53 answering with the new side) + {:.0}s \
                     the clients' DNS cache may keep the old answer (TTL)\n\
                     Objective: RTO {} ({:.0}s): {verdict}\n",
                    human(f),
                    self.client_ttl_seconds.unwrap_or(0.0),
                    human(self.objective_seconds),
                    self.objective_seconds,
                ));
            }
            _ if self.rto_output => s.push_str(&format!(
                "Forecast RTO: none: the run would not move traffic{}\n",
                self.decision()
                    .map(|d| format!(" (decision {d})"))
                    .unwrap_or_default()
            )),
            _ => {}
        }
        s
    }

    /// The document `--output json` prints.
    pub fn json(&self) -> Value {
        json!(self)
    }

    fn decision(&self) -> Option<&str> {
        self.steps
            .iter()
            .filter(|st| st.step_type == "dr.decide")
            .find_map(|st| st.outputs.get("decision").and_then(Value::as_str))
    }
}

/// Nothing worth a line in the text form (the JSON form keeps it).
fn is_empty(v: &Value) -> bool {
    v.is_null() || v.as_array().is_some_and(Vec::is_empty)
}

/// A value on one line: strings bare, anything else as JSON.
fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Seconds the way people read them: `850ms`, `12.3s`, `4m05s`.
fn human(seconds: f64) -> String {
    format_duration(Duration::from_secs_f64(seconds.max(0.0)))
}

fn step_forecast(run: &StepRun) -> StepForecast {
    let mut actions: Vec<String> = run.plan.changes.iter().map(ToString::to_string).collect();
    let outputs = run.outputs.as_ref();
    if let Some(lines) = outputs
        .filter(|_| drflow_steps::makes_its_actions(&run.uses))
        .and_then(|o| o.get("actions"))
        .and_then(Value::as_array)
    {
        actions.extend(lines.iter().filter_map(Value::as_str).map(str::to_string));
    }
    StepForecast {
        id: run.id.clone(),
        step_type: run.uses.clone(),
        status: run.status.name(),
        start_seconds: run.start_ms.map(secs),
        duration_seconds: match (run.start_ms, run.end_ms) {
            (Some(a), Some(b)) => Some(secs(b.saturating_sub(a))),
            _ => None,
        },
        actions,
        outputs: decisive(&run.uses, outputs),
    }
}

/// The decisive outputs of a step of type `uses`, those it has, in the library's order.
fn decisive(uses: &str, outputs: Option<&Outputs>) -> Map<String, Value> {
    let mut map = Map::new();
    let Some(outputs) = outputs else {
        return map;
    };
    for key in drflow_steps::decisive_outputs(uses) {
        if let Some(v) = outputs.get(*key) {
            map.insert((*key).to_string(), v.clone());
        }
    }
    map
}

/// The chain of steps that decides when the run ends: the step that finishes last, then, from
/// each step, the one it needs that finished last, back to a step that needs nothing. Ties go
/// to a step that ran over one that was skipped, then to the one that started later (it
/// waited for the other), then to the later in the file. Indices into `runs` (file order), first to last.
pub fn critical_path(rb: &Runbook, runs: &[StepRun]) -> Vec<usize> {
    let key = |i: usize| {
        let r = &runs[i];
        let ran = matches!(r.status, StepStatus::Succeeded | StepStatus::Failed);
        // Of two that ended together, the one that started later waited for the other.
        (r.end_ms, ran, r.start_ms, i)
    };
    let last = |candidates: &mut dyn Iterator<Item = usize>| {
        candidates
            .filter(|&i| runs[i].end_ms.is_some())
            .max_by_key(|&i| key(i))
    };
    let mut path = Vec::new();
    let mut current = last(&mut (0..runs.len()));
    while let Some(i) = current {
        path.push(i);
        let needs = rb.steps.get(i).map(|s| s.needs.clone()).unwrap_or_default();
        current = last(&mut needs.into_iter());
    }
    path.reverse();
    path
}

#[cfg(test)]
mod tests {
    use super::*;
    use drflow_steps::Plan;

    fn run(id: &str, status: StepStatus, start: u64, end: u64) -> StepRun {
        StepRun {
            id: id.into(),
            uses: "core.log".into(),
            status,
            start_ms: Some(start),
            end_ms: Some(end),
            plan: Plan::default(),
            outputs: None,
            error: None,
        }
    }

    fn runbook(yaml: &str) -> Runbook {
        let registry = drflow_steps::registry(&drflow_steps::CloudConfig::default());
        drflow_engine::compile("t.yaml", yaml, &registry).expect("compiles")
    }

    /// a → (b 60 s ‖ c 36 s) → d; e skipped after d at the same instant: the path goes through
    /// the longer branch and leaves out the skipped step.
    #[test]
    fn the_path_follows_the_need_that_finished_last() {
        let rb = runbook(
            "runbook: t\nsteps:\n\
             - {id: a, uses: core.log, with: {message: x}}\n\
             - {id: b, uses: core.log, needs: [a], with: {message: x}}\n\
             - {id: c, uses: core.log, needs: [a], with: {message: x}}\n\
             - {id: d, uses: core.log, needs: [b, c], with: {message: x}}\n\
             - {id: e, uses: core.log, needs: [d], if: false, with: {message: x}}\n",
        );
        let runs = vec![
            run("a", StepStatus::Succeeded, 0, 1_000),
            run("b", StepStatus::Succeeded, 1_000, 61_000),
            run("c", StepStatus::Succeeded, 1_000, 37_000),
            run("d", StepStatus::Succeeded, 61_000, 61_100),
            run("e", StepStatus::Skipped, 61_100, 61_100),
        ];
        let path: Vec<&str> = critical_path(&rb, &runs)
            .into_iter()
            .map(|i| runs[i].id.as_str())
            .collect();
        assert_eq!(path, ["a", "b", "d"]);
    }

    #[test]
    fn no_step_ran_no_path() {
        let rb = runbook("runbook: t\nsteps:\n- {id: a, uses: core.log, with: {message: x}}\n");
        let mut a = run("a", StepStatus::NotStarted, 0, 0);
        a.start_ms = None;
        a.end_ms = None;
        assert!(critical_path(&rb, &[a]).is_empty());
    }
}
