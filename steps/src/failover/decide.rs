//! Deciding, without doing: what a failover run does given what it read.
//!
//! [`decide`] is a pure function of a [`Readings`]: no clock, no cloud, no randomness. The
//! `dr.decide` step type wraps it, so the decision a run took is journaled with the readings it
//! was taken from, and every row of the decision table below is a unit test.
//!
//! | in this order | decision |
//! |---|---|
//! | the standby holds the writer and DNS answers with the standby | `none`: the standby already serves |
//! | the standby holds the writer, DNS does not point at it yet | finish the move: `switchover` if the old writer's cluster is reachable, else `failover` (nothing is promoted again) |
//! | `health_check` is a signal, Route 53 sees the primary healthy, and drflow's probe does not reach it | `hold`: drflow is isolated, not the primary |
//! | fewer than `quorum` of the chosen signals see the primary down | `hold` |
//! | the primary is still starting: its group has instances launching and none in service | `hold`: a deployment warming up is not an outage |
//! | Route 53 sees the standby's endpoint unhealthy too | `hold`: the standby could not serve either, moving there gains nothing |
//! | the primary's database (the writer) is reachable | `switchover` (no data loss) |
//! | the writer is unreachable and the data at risk is within `max_data_loss` | `failover` (managed, data loss allowed) |
//! | the writer is unreachable and the data at risk is over budget, or unknown | `blocked`: nothing is promoted; a person re-runs with a larger budget |
//!
//! A failover of a standby that cannot serve is itself an outage: the primary is fenced and the
//! writer moved for nothing. What can be read honestly decides it: the standby's own Route 53
//! health check (its endpoint, checked from about 15 places, exactly like the primary's), and
//! the primary's Auto Scaling group (instances launching and none in service: it has not
//! served yet, as right after provisioning). What cannot be read (the primary region gone)
//! holds nothing back: an unknown is not a reason to stay on a dead primary.

use std::sync::Arc;

use drflow_engine::{
    Format, Outputs, Registry, RuleViolation, StepContext, StepError, StepFuture, StepSpec,
    StepType, ValueType, Violation,
};
use serde_json::{Value, json};

/// One independent signal that the primary is down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Signal {
    /// The primary's Route 53 health check (about 15 checker locations).
    HealthCheck,
    /// The primary's CloudWatch alarms.
    Alarms,
    /// drflow's own probe of the primary endpoint, from the standby region.
    Probe,
}

impl Signal {
    /// Every signal, in the order they are listed.
    pub const ALL: [Signal; 3] = [Signal::HealthCheck, Signal::Alarms, Signal::Probe];

    /// `health_check`, `alarms` or `probe`: the runbook's spelling.
    pub fn name(self) -> &'static str {
        match self {
            Signal::HealthCheck => "health_check",
            Signal::Alarms => "alarms",
            Signal::Probe => "probe",
        }
    }

    /// Parses the runbook's spelling.
    pub fn parse(s: &str) -> Option<Signal> {
        Signal::ALL.into_iter().find(|x| x.name() == s)
    }
}

/// The names [`Signal::parse`] accepts.
pub const SIGNAL_NAMES: &[&str] = &["health_check", "alarms", "probe"];

/// A signal's name, for a list parameter (each item checked).
pub const SIGNAL: Format = Format {
    name: "failover-signal",
    doc: "`health_check`, `alarms` or `probe`",
    check: |text| {
        if Signal::parse(text).is_some() {
            Ok(())
        } else {
            let mut v = Violation::new(format!(
                "names `{text}`, which is not a signal; the signals are `health_check`, `alarms` \
                 and `probe`"
            ));
            if let Some(near) = drflow_engine::nearest(text, SIGNAL_NAMES.iter().copied()) {
                v = v.hint(format!("did you mean `{near}`?"));
            }
            Err(v)
        }
    },
    schema: Some(|| json!({"enum": SIGNAL_NAMES})),
};

/// What a failover run read before deciding.
#[derive(Debug, Clone, PartialEq)]
pub struct Readings {
    /// The signals that count (at least one, each once).
    pub signals: Vec<Signal>,
    /// How many of them must see the primary down.
    pub quorum: u32,
    /// Whether Route 53 sees the primary unhealthy; `None` when it was not read or could not be,
    /// or was unhealthy for less than the confirmation window (`dr.read_signals`).
    pub health_check_down: Option<bool>,
    /// Whether one of the primary's alarms is in `ALARM`; `None` when not read or unknown.
    pub alarms_down: Option<bool>,
    /// Whether drflow's probe from the standby region fails; `None` when not made.
    pub probe_down: Option<bool>,
    /// Whether Route 53 sees the standby's endpoint healthy (its own health check, whatever
    /// `Inverted` says) once reading stopped; `None` when not read or unreadable.
    pub standby_healthy: Option<bool>,
    /// Whether the primary is still starting: its Auto Scaling group has instances launching and
    /// none in service (a fresh deployment warming up); `None` when not read or unreadable (the
    /// primary region down).
    pub primary_starting: Option<bool>,
    /// The global cluster's writer is already the standby's cluster.
    pub writer_in_standby: bool,
    /// Route 53 already answers the public name with the standby's load balancer.
    pub dns_serves_standby: bool,
    /// The primary's database can be reached: for the writer, its cluster is `available`; once
    /// the standby holds the writer, whether the old writer's cluster is.
    pub primary_db_reachable: bool,
    /// The writes at risk, in milliseconds of commits not yet replicated to the standby; `None`
    /// when unknown.
    pub data_at_risk_ms: Option<u64>,
    /// The most data loss allowed, in milliseconds.
    pub max_data_loss_ms: u64,
}

/// What a failover run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Planned promotion of the standby, no data loss: the primary's database is reachable.
    Switchover,
    /// Managed failover with data loss allowed (within the budget): the writer is lost.
    Failover,
    /// Do nothing now: the outage is not confirmed, or drflow is the one cut off.
    Hold,
    /// The outage is confirmed but failing over would lose more than allowed: nothing is
    /// promoted until a person re-runs with a larger `max_data_loss`.
    Blocked,
    /// Nothing to do: the standby already holds the writer and serves traffic.
    None,
}

impl Decision {
    /// `switchover`, `failover`, `hold`, `blocked` or `none`.
    pub fn name(self) -> &'static str {
        match self {
            Decision::Switchover => "switchover",
            Decision::Failover => "failover",
            Decision::Hold => "hold",
            Decision::Blocked => "blocked",
            Decision::None => "none",
        }
    }

    /// Whether the run promotes, scales and moves traffic.
    pub fn acts(self) -> bool {
        matches!(self, Decision::Switchover | Decision::Failover)
    }
}

/// A decision and why, in one sentence for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// What to do.
    pub decision: Decision,
    /// Why.
    pub reason: String,
    /// How many of the chosen signals saw the primary down.
    pub signals_down: u32,
}

/// Decides (see the module's table). Pure.
pub fn decide(r: &Readings) -> Verdict {
    let reading = |s: Signal| match s {
        Signal::HealthCheck => r.health_check_down,
        Signal::Alarms => r.alarms_down,
        Signal::Probe => r.probe_down,
    };
    let down = r
        .signals
        .iter()
        .filter(|s| reading(**s) == Some(true))
        .count() as u32;
    let verdict = |decision, reason: String| Verdict {
        decision,
        reason,
        signals_down: down,
    };
    if r.writer_in_standby {
        if r.dns_serves_standby {
            return verdict(
                Decision::None,
                "the standby already serves: it holds the writer and DNS answers with it; \
                 nothing to do"
                    .into(),
            );
        }
        let decision = if r.primary_db_reachable {
            Decision::Switchover
        } else {
            Decision::Failover
        };
        return verdict(
            decision,
            "the standby already holds the writer (an earlier run promoted it) but DNS does not \
             answer with it yet: finishing the move, nothing is promoted again"
                .into(),
        );
    }
    if r.signals.contains(&Signal::HealthCheck)
        && r.health_check_down == Some(false)
        && r.probe_down == Some(true)
    {
        return verdict(
            Decision::Hold,
            "drflow cannot reach the primary from the standby region, but Route 53's checkers \
             still see it healthy: this looks like isolation (a partition), not an outage"
                .into(),
        );
    }
    if down < r.quorum {
        let names: Vec<&str> = r
            .signals
            .iter()
            .filter(|s| reading(**s) == Some(true))
            .map(|s| s.name())
            .collect();
        let which = if names.is_empty() {
            String::new()
        } else {
            format!(" ({})", names.join(", "))
        };
        return verdict(
            Decision::Hold,
            format!(
                "the outage is not confirmed: {down} of {} signals see the primary down{which}, \
                 the quorum is {}",
                r.signals.len(),
                r.quorum
            ),
        );
    }
    if r.primary_starting == Some(true) {
        return verdict(
            Decision::Hold,
            format!(
                "{down} of {} signals see the primary down, but it is still starting: its \
                 instances are launching and none is in service yet (a deployment warming up is \
                 not an outage); nothing was changed. Wait until it serves (on the simulated \
                 cloud, `drflow sim advance 5m`) and run the failover again if it is still down",
                r.signals.len()
            ),
        );
    }
    if r.standby_healthy == Some(false) {
        return verdict(
            Decision::Hold,
            format!(
                "{down} of {} signals see the primary down, but Route 53 sees the standby's \
                 endpoint unhealthy too: the standby could not serve either, so moving there \
                 gains nothing; nothing was changed. Make the standby serve (or wait until it \
                 does, after a fresh deployment) and run the failover again",
                r.signals.len()
            ),
        );
    }
    if r.primary_db_reachable {
        return verdict(
            Decision::Switchover,
            format!(
                "{down} of {} signals see the primary down and its database is reachable: \
                 planned switchover, no data loss",
                r.signals.len()
            ),
        );
    }
    let budget = r.max_data_loss_ms;
    match r.data_at_risk_ms {
        Some(risk) if risk <= budget => verdict(
            Decision::Failover,
            format!(
                "{down} of {} signals see the primary down and its writer is unreachable: \
                 managed failover, losing at most {} of writes (budget {})",
                r.signals.len(),
                ms(risk),
                ms(budget)
            ),
        ),
        Some(risk) => verdict(
            Decision::Blocked,
            format!(
                "the writer is unreachable and {} of writes are not replicated, more than the \
                 {} allowed: nothing was promoted. A person decides: re-run with a larger \
                 max_data_loss to accept the loss",
                ms(risk),
                ms(budget)
            ),
        ),
        None => verdict(
            Decision::Blocked,
            format!(
                "the writer is unreachable and the replication lag is unknown, so the data loss \
                 cannot be shown to be within {}: nothing was promoted",
                ms(budget)
            ),
        ),
    }
}

fn ms(v: u64) -> String {
    if v.is_multiple_of(1000) {
        format!("{} s", v / 1000)
    } else {
        format!("{:.1} s", v as f64 / 1000.0)
    }
}

/// The `dr.decide` step type: [`decide`] over its inputs.
pub(crate) struct Decide(StepSpec);

impl Decide {
    pub(crate) fn new() -> Decide {
        let spec = StepSpec::new(
            "dr.decide",
            "Decides what a failover run does from what it read, without touching anything: \
             `none` when the standby already holds the writer and serves; `hold` when fewer \
             than `quorum` of the chosen signals see the primary down, or when drflow's probe \
             fails while Route 53 still sees the primary healthy (isolation), or when moving \
             gains nothing (the primary still starting, the standby's own health check \
             unhealthy); `switchover` when the primary's database is reachable; `failover` \
             when it is not and the writes not yet replicated are within `max_data_loss`; \
             `blocked` otherwise.",
        )
        .optional(
            "signals",
            ValueType::List,
            json!(SIGNAL_NAMES),
            "The signals that count: `health_check`, `alarms`, `probe`.",
        )
        .min_len(1)
        .max_len(3)
        .format(SIGNAL)
        .optional(
            "quorum",
            ValueType::Int,
            json!(2),
            "How many of the signals must see the primary down.",
        )
        .at_least(1.0)
        .at_most(3.0)
        .optional(
            "health_check_down",
            ValueType::Any,
            Value::Null,
            "Route 53 sees the primary unhealthy (true/false; null: not read, or not confirmed).",
        )
        .optional(
            "alarms_down",
            ValueType::Any,
            Value::Null,
            "A primary alarm is in ALARM (true/false; null: not read, or not confirmed).",
        )
        .optional(
            "probe_down",
            ValueType::Any,
            Value::Null,
            "drflow's probe from the standby fails (true/false; null: not made, or not confirmed).",
        )
        .optional(
            "standby_healthy",
            ValueType::Any,
            Value::Null,
            "Route 53 sees the standby's endpoint healthy (true/false; null: not read).",
        )
        .optional(
            "primary_starting",
            ValueType::Any,
            Value::Null,
            "The primary's group has instances launching and none in service (true/false; \
             null: not read).",
        )
        .required(
            "writer_in_standby",
            ValueType::Bool,
            "The standby's cluster already holds the writer.",
        )
        .required(
            "dns_serves_standby",
            ValueType::Bool,
            "Route 53 already answers with the standby's load balancer.",
        )
        .required(
            "primary_db_reachable",
            ValueType::Bool,
            "The primary's database (the writer, or the old writer once promoted) is reachable.",
        )
        .optional(
            "data_at_risk_ms",
            ValueType::Any,
            Value::Null,
            "Milliseconds of commits not yet replicated to the standby (null: unknown).",
        )
        .optional(
            "max_data_loss",
            ValueType::Duration,
            json!("60s"),
            "The most data loss a failover may cause.",
        )
        .rule(
            "`quorum` is at most the number of `signals`, each named once.",
            &["signals", "quorum"],
            |input| {
                let signals: Vec<&str> = input["signals"]
                    .as_array()
                    .map(|a| a.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                let mut seen = signals.clone();
                seen.sort_unstable();
                seen.dedup();
                if seen.len() != signals.len() {
                    return Err(RuleViolation::at("signals", "names a signal twice")
                        .hint("list each of `health_check`, `alarms`, `probe` at most once"));
                }
                let quorum = input["quorum"].as_i64().unwrap_or(0);
                if quorum as usize > signals.len() {
                    return Err(RuleViolation::at(
                        "quorum",
                        format!(
                            "a quorum of {quorum} can never be met by {} signal(s)",
                            signals.len()
                        ),
                    )
                    .hint(format!(
                        "use a quorum of at most {}, or list more signals",
                        signals.len()
                    )));
                }
                Ok(())
            },
        )
        .output(
            "decision",
            ValueType::String,
            "`switchover`, `failover`, `hold`, `blocked` or `none`.",
        )
        .output("reason", ValueType::String, "Why, in one sentence.")
        .output(
            "acts",
            ValueType::Bool,
            "Whether the run promotes, scales and moves traffic (switchover or failover).",
        )
        .output(
            "signals_down",
            ValueType::Int,
            "How many of the chosen signals saw the primary down.",
        )
        .outputs_not_secret();
        Decide(spec)
    }
}

/// Reads a `dr.decide` input map into [`Readings`].
pub(crate) fn readings(input: &Outputs) -> Result<Readings, StepError> {
    let mut signals = Vec::new();
    for v in input
        .get("signals")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
    {
        let name = v.as_str().unwrap_or_default();
        let s = Signal::parse(name).ok_or_else(|| {
            StepError::invalid_input(format!("`signals`: `{name}` is not a signal"))
        })?;
        if !signals.contains(&s) {
            signals.push(s);
        }
    }
    if signals.is_empty() {
        return Err(StepError::invalid_input(
            "`signals` must name at least one signal",
        ));
    }
    let flag = |k: &str| -> Result<Option<bool>, StepError> {
        match input.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(StepError::invalid_input(format!(
                "`{k}` must be true, false or null, not {other}"
            ))),
        }
    };
    let must = |k: &str| {
        input
            .get(k)
            .and_then(Value::as_bool)
            .ok_or_else(|| StepError::invalid_input(format!("`{k}` must be true or false")))
    };
    let risk = match input.get("data_at_risk_ms") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_f64().filter(|f| *f >= 0.0).ok_or_else(|| {
            StepError::invalid_input(format!(
                "`data_at_risk_ms` must be a number of milliseconds or null, not {v}"
            ))
        })? as u64),
    };
    let budget = crate::core::duration_param(input, "max_data_loss")?;
    Ok(Readings {
        signals,
        quorum: input.get("quorum").and_then(Value::as_u64).unwrap_or(2) as u32,
        health_check_down: flag("health_check_down")?,
        alarms_down: flag("alarms_down")?,
        probe_down: flag("probe_down")?,
        standby_healthy: flag("standby_healthy")?,
        primary_starting: flag("primary_starting")?,
        writer_in_standby: must("writer_in_standby")?,
        dns_serves_standby: must("dns_serves_standby")?,
        primary_db_reachable: must("primary_db_reachable")?,
        data_at_risk_ms: risk,
        max_data_loss_ms: budget.as_millis() as u64,
    })
}

impl StepType for Decide {
    fn spec(&self) -> &StepSpec {
        &self.0
    }

    fn run<'a>(&'a self, ctx: &'a StepContext, input: &'a Outputs) -> StepFuture<'a> {
        Box::pin(async move {
            let mut full = input.clone();
            for p in &self.0.params {
                if !full.contains_key(p.name) {
                    full.insert(p.name.into(), p.default.clone().unwrap_or(Value::Null));
                }
            }
            let v = decide(&readings(&full)?);
            tracing::info!(step = %ctx.step_id, decision = v.decision.name(), "{}", v.reason);
            let mut out = Outputs::new();
            out.insert("decision".into(), json!(v.decision.name()));
            out.insert("reason".into(), json!(v.reason));
            out.insert("acts".into(), json!(v.decision.acts()));
            out.insert("signals_down".into(), json!(v.signals_down));
            Ok(out)
        })
    }
}

pub(crate) fn register(reg: &mut Registry) {
    reg.register(Arc::new(Decide::new()));
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUDGET: u64 = 60_000;

    /// A confirmed regional outage seen by all three signals, writer lost, lag under a second.
    fn outage() -> Readings {
        Readings {
            signals: Signal::ALL.to_vec(),
            quorum: 2,
            health_check_down: Some(true),
            alarms_down: Some(true),
            probe_down: Some(true),
            standby_healthy: Some(true),
            primary_starting: Some(false),
            writer_in_standby: false,
            dns_serves_standby: false,
            primary_db_reachable: false,
            data_at_risk_ms: Some(800),
            max_data_loss_ms: BUDGET,
        }
    }

    fn d(r: &Readings) -> Decision {
        decide(r).decision
    }

    #[test]
    fn the_issue_s_faults_each_get_their_decision() {
        // region-outage and db-failure: the writer is unreachable, lag within budget.
        assert_eq!(d(&outage()), Decision::Failover);
        // app-unhealthy: the database is fine.
        let app = Readings {
            primary_db_reachable: true,
            ..outage()
        };
        assert_eq!(d(&app), Decision::Switchover);
        // partition: Route 53 sees the primary healthy, drflow's probe does not reach it, and
        // the alarms of the primary region cannot be read.
        let partition = Readings {
            health_check_down: Some(false),
            alarms_down: None,
            ..outage()
        };
        let v = decide(&partition);
        assert_eq!(v.decision, Decision::Hold);
        assert!(v.reason.contains("isolation"), "{}", v.reason);
        // flapping: the readings over the confirmation window disagree, so the health check
        // and the probe do not count as down; the alarm alone is below the quorum.
        let flapping = Readings {
            health_check_down: Some(false),
            probe_down: Some(false),
            ..outage()
        };
        let v = decide(&flapping);
        assert_eq!(v.decision, Decision::Hold);
        assert_eq!(v.signals_down, 1);
        assert!(v.reason.contains("1 of 3 signals"), "{}", v.reason);
        // lag-spike beyond budget with the writer lost.
        let spike = Readings {
            data_at_risk_ms: Some(300_000),
            ..outage()
        };
        let v = decide(&spike);
        assert_eq!(v.decision, Decision::Blocked);
        assert!(v.reason.contains("300 s"), "{}", v.reason);
        assert!(v.reason.contains("60 s allowed"), "{}", v.reason);
    }

    #[test]
    fn a_fresh_deployment_still_warming_up_is_not_failed_over() {
        // Right after provisioning: both endpoints unhealthy (no quote processed yet), every
        // signal down, the primary's instances still launching, the database fine.
        let fresh = Readings {
            standby_healthy: Some(false),
            primary_starting: Some(true),
            primary_db_reachable: true,
            data_at_risk_ms: Some(0),
            ..outage()
        };
        let v = decide(&fresh);
        assert_eq!(v.decision, Decision::Hold);
        assert_eq!(v.signals_down, 3);
        assert!(v.reason.contains("still starting"), "{}", v.reason);
        assert!(v.reason.contains("nothing was changed"), "{}", v.reason);
        // Instances in service, the application not serving yet on either side: the standby
        // could not serve either.
        let warming = Readings {
            primary_starting: Some(false),
            ..fresh.clone()
        };
        let v = decide(&warming);
        assert_eq!(v.decision, Decision::Hold);
        assert!(
            v.reason.contains("standby's endpoint unhealthy"),
            "{}",
            v.reason
        );
        assert!(v.reason.contains("gains nothing"), "{}", v.reason);
        // The primary still launching while the standby already serves: still no failover.
        let primary_late = Readings {
            standby_healthy: Some(true),
            ..fresh
        };
        assert_eq!(d(&primary_late), Decision::Hold);
    }

    #[test]
    fn a_standby_that_cannot_serve_holds_every_kind_of_move() {
        // Whether the move would be a switchover, a failover or blocked by the budget.
        for (db, risk) in [(true, Some(0)), (false, Some(800)), (false, Some(300_000))] {
            let r = Readings {
                standby_healthy: Some(false),
                primary_db_reachable: db,
                data_at_risk_ms: risk,
                ..outage()
            };
            assert_eq!(d(&r), Decision::Hold, "{r:?}");
        }
        // Unknown (not read, or unreadable) holds nothing back: a region outage still fails
        // over when the primary's group cannot be read.
        let unknown = Readings {
            standby_healthy: None,
            primary_starting: None,
            ..outage()
        };
        assert_eq!(d(&unknown), Decision::Failover);
        // Once the standby holds the writer, the move is finished whatever its health check
        // says: the writer is there now.
        let promoted = Readings {
            standby_healthy: Some(false),
            primary_starting: Some(true),
            writer_in_standby: true,
            ..outage()
        };
        assert_eq!(d(&promoted), Decision::Failover);
        // The isolation and quorum rules keep their reasons.
        let partition = Readings {
            standby_healthy: Some(false),
            health_check_down: Some(false),
            ..outage()
        };
        assert!(decide(&partition).reason.contains("isolation"));
    }

    #[test]
    fn one_signal_alone_never_fails_over_by_default() {
        for s in Signal::ALL {
            let r = Readings {
                health_check_down: Some(s == Signal::HealthCheck),
                alarms_down: Some(s == Signal::Alarms),
                probe_down: Some(s == Signal::Probe),
                ..outage()
            };
            assert_eq!(d(&r), Decision::Hold, "{s:?} alone");
        }
    }

    #[test]
    fn an_emulator_can_be_driven_by_alarms_alone() {
        let r = Readings {
            signals: vec![Signal::Alarms],
            quorum: 1,
            health_check_down: None,
            probe_down: None,
            ..outage()
        };
        assert_eq!(d(&r), Decision::Failover);
        // Without health_check among the signals, a failing probe is not read as isolation.
        let r = Readings {
            signals: vec![Signal::Alarms, Signal::Probe],
            health_check_down: Some(false),
            ..r
        };
        assert_eq!(d(&r), Decision::Failover);
    }

    #[test]
    fn the_budget_is_inclusive_and_unknown_lag_blocks() {
        let at = Readings {
            data_at_risk_ms: Some(BUDGET),
            ..outage()
        };
        assert_eq!(d(&at), Decision::Failover);
        let over = Readings {
            data_at_risk_ms: Some(BUDGET + 1),
            ..outage()
        };
        assert_eq!(d(&over), Decision::Blocked);
        let unknown = Readings {
            data_at_risk_ms: None,
            ..outage()
        };
        let v = decide(&unknown);
        assert_eq!(v.decision, Decision::Blocked);
        assert!(v.reason.contains("unknown"), "{}", v.reason);
        // A larger budget, as the person re-running would give, lets it through.
        let wider = Readings {
            max_data_loss_ms: 600_000,
            ..over
        };
        assert_eq!(d(&wider), Decision::Failover);
    }

    #[test]
    fn a_run_after_a_promotion_finishes_or_says_there_is_nothing_to_do() {
        let done = Readings {
            writer_in_standby: true,
            dns_serves_standby: true,
            ..outage()
        };
        let v = decide(&done);
        assert_eq!(v.decision, Decision::None);
        assert!(v.reason.contains("already serves"), "{}", v.reason);
        // Whatever the signals say now (the primary came back, or the lag is huge).
        let healed = Readings {
            health_check_down: Some(false),
            alarms_down: Some(false),
            probe_down: Some(false),
            data_at_risk_ms: None,
            ..done.clone()
        };
        assert_eq!(d(&healed), Decision::None);
        let half = Readings {
            dns_serves_standby: false,
            ..healed.clone()
        };
        assert_eq!(d(&half), Decision::Failover);
        let half = Readings {
            primary_db_reachable: true,
            ..half
        };
        assert_eq!(d(&half), Decision::Switchover);
    }

    /// Every combination of readings: the safety rules hold in all of them.
    #[test]
    fn exhaustively_no_promotion_without_quorum_isolation_or_budget_breach() {
        let flags = [None, Some(false), Some(true)];
        let subsets: Vec<Vec<Signal>> = (1u8..8)
            .map(|m| {
                Signal::ALL
                    .into_iter()
                    .enumerate()
                    .filter(|(i, _)| m & (1 << i) != 0)
                    .map(|(_, s)| s)
                    .collect()
            })
            .collect();
        let mut cases = 0;
        for signals in &subsets {
            for quorum in 1..=signals.len() as u32 {
                for hc in flags {
                    for al in flags {
                        for pr in flags {
                            for (standby_healthy, primary_starting) in
                                flags.into_iter().flat_map(|a| flags.map(|b| (a, b)))
                            {
                                for writer_in_standby in [false, true] {
                                    for dns in [false, true] {
                                        for db in [false, true] {
                                            for risk in
                                                [None, Some(0), Some(BUDGET), Some(BUDGET + 1)]
                                            {
                                                cases += 1;
                                                let r = Readings {
                                                    signals: signals.clone(),
                                                    quorum,
                                                    health_check_down: hc,
                                                    alarms_down: al,
                                                    probe_down: pr,
                                                    standby_healthy,
                                                    primary_starting,
                                                    writer_in_standby,
                                                    dns_serves_standby: dns,
                                                    primary_db_reachable: db,
                                                    data_at_risk_ms: risk,
                                                    max_data_loss_ms: BUDGET,
                                                };
                                                check_invariants(&r);
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        assert!(cases > 90_000, "{cases}");
    }

    fn check_invariants(r: &Readings) {
        let v = decide(r);
        let down = r
            .signals
            .iter()
            .filter(|s| match s {
                Signal::HealthCheck => r.health_check_down == Some(true),
                Signal::Alarms => r.alarms_down == Some(true),
                Signal::Probe => r.probe_down == Some(true),
            })
            .count() as u32;
        assert_eq!(v.signals_down, down, "{r:?}");
        assert!(!v.reason.is_empty());
        if r.writer_in_standby {
            // Once promoted, the run only finishes the move or does nothing.
            assert!(
                matches!(
                    v.decision,
                    Decision::None | Decision::Switchover | Decision::Failover
                ),
                "{r:?}"
            );
            assert_eq!(v.decision == Decision::None, r.dns_serves_standby, "{r:?}");
            return;
        }
        assert_ne!(v.decision, Decision::None, "{r:?}");
        if v.decision.acts() || v.decision == Decision::Blocked {
            assert!(down >= r.quorum, "acted without quorum: {r:?}");
        }
        let isolated = r.signals.contains(&Signal::HealthCheck)
            && r.health_check_down == Some(false)
            && r.probe_down == Some(true);
        if isolated {
            assert_eq!(v.decision, Decision::Hold, "acted from isolation: {r:?}");
        }
        let standby_cannot_serve =
            r.standby_healthy == Some(false) || r.primary_starting == Some(true);
        if standby_cannot_serve {
            assert_eq!(
                v.decision,
                Decision::Hold,
                "moved to a standby that cannot serve, or away from a primary still starting: \
                 {r:?}"
            );
        }
        if v.decision == Decision::Switchover {
            assert!(r.primary_db_reachable, "{r:?}");
        }
        if v.decision == Decision::Failover {
            assert!(!r.primary_db_reachable, "{r:?}");
            assert!(
                r.data_at_risk_ms.is_some_and(|x| x <= r.max_data_loss_ms),
                "failed over beyond the budget: {r:?}"
            );
        }
        if v.decision == Decision::Blocked {
            assert!(!r.primary_db_reachable);
            assert!(
                r.data_at_risk_ms.is_none_or(|x| x > r.max_data_loss_ms),
                "{r:?}"
            );
        }
        if down >= r.quorum && !isolated && !standby_cannot_serve {
            assert_ne!(v.decision, Decision::Hold, "held with quorum: {r:?}");
        }
    }

    fn step_input(v: Value) -> Outputs {
        v.as_object().cloned().unwrap()
    }

    #[tokio::test]
    async fn the_step_decides_the_same_twice_and_fills_defaults() {
        let step = Decide::new();
        let ctx = StepContext::detached("decide");
        let input = step_input(json!({
            "health_check_down": true, "alarms_down": false, "probe_down": true,
            "writer_in_standby": false, "dns_serves_standby": false,
            "primary_db_reachable": false, "data_at_risk_ms": 900,
        }));
        let first = step.run(&ctx, &input).await.unwrap();
        assert_eq!(first["decision"], "failover");
        assert_eq!(first["acts"], true);
        assert_eq!(first["signals_down"], 2);
        assert_eq!(step.run(&ctx, &input).await.unwrap(), first);
        let mut blocked = input.clone();
        blocked.insert("max_data_loss".into(), json!("500ms"));
        assert_eq!(
            step.run(&ctx, &blocked).await.unwrap()["decision"],
            "blocked"
        );
    }

    #[test]
    fn the_declaration_refuses_an_unreachable_quorum_and_unknown_signals() {
        let spec = Decide::new().0;
        let rule = &spec.rules[0];
        let input =
            |signals: Value, quorum: i64| step_input(json!({"signals": signals, "quorum": quorum}));
        assert!((rule.check)(&input(json!(["alarms"]), 1)).is_ok());
        let v = (rule.check)(&input(json!(["alarms"]), 2)).unwrap_err();
        assert_eq!(v.field, Some("quorum"));
        assert!(v.message.contains("can never be met"), "{v}");
        let v = (rule.check)(&input(json!(["probe", "probe"]), 1)).unwrap_err();
        assert_eq!(v.field, Some("signals"));
        let p = spec.param("signals").unwrap();
        let v = p.check(&json!(["health_check", "alarm"])).unwrap_err();
        assert_eq!(v.item, Some(1));
        assert_eq!(v.hint.as_deref(), Some("did you mean `alarms`?"));
    }
}
