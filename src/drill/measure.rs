//! From what the world recorded, the trigger's firing and the run's events to a
//! [`DrillReport`]: the timeline, RTO and RPO, the critical path and the engine's share.
//!
//! Definitions (also in `docs/drills.md`):
//!
//! - **RTO**: the client's first failed request after the fault to the start of its final
//!   stretch of successes (served from then to the end of the drill), as the client saw it (its
//!   DNS cache's TTL included), so a second outage counts. The outages (runs of failed
//!   requests) are counted and their sum is the downtime. A client still failing at the end is
//!   *not recovered*: no RTO, and the verdict is not met.
//! - **RPO**: the client's acknowledged writes that the writer at the end lacks, as a count
//!   and as seconds: the data-loss window, from the commit of the last write the new writer
//!   holds to the acknowledgement of the last lost write (0 only when none was lost).
//! - **Critical path**: the stages AWS and the client impose on this scenario with these
//!   settings, each from the world's record: *detection* (first failed request → the alarm
//!   state change that completed the trigger), *delivery* (that state change → the event in
//!   the alarm queue: EventBridge to SQS), *promotion* or *capacity* (whichever of the two,
//!   from its request, ends later: the Aurora promotion until the new writer is available, or
//!   the standby's scaling until it is in service, or until the run stopped waiting for
//!   capacity that could not launch), *dns* (the record change submitted → `INSYNC`),
//!   *clients* (`INSYNC` → the client's first success there: its cached answer expiring, then
//!   its next request).
//! - **Engine share**: what drflow adds on top: *trigger* (the event in the queue → the
//!   trigger firing: reading the queue and deciding), *dispatch* (the firing → the promotion
//!   or scaling request: the run's start, discovery, signals, decision and fence), and
//!   *noticing* (AWS finishing the promotion or scaling → the DNS change: the run's polling).
//!
//! The stages are measured back to back, each from where the previous ended (a stage that
//! ended before the previous one did counts 0), so RTO = critical path + engine share.

use std::collections::HashMap;

use drflow_engine::RunEvent;
use drflow_steps::sim::{Scenario, SimConfig, SimStatus, WorldTimeline};
use serde_json::{Value, json};

use super::model::{
    ClientSample, DrillReport, Objectives, SignalEvidence, Stage, StepTiming, TimelineEntry,
    TriggerEvidence,
};
use super::params::DrillParams;
use super::run::Started;

/// Everything a drill observed, for [`report`].
pub struct Facts {
    /// When the fault was injected, virtual ms.
    pub fault_ms: u64,
    /// When the drill stopped watching.
    pub end_ms: u64,
    /// The injected faults: kind, region, start, end (virtual ms).
    pub faults: Vec<(String, Option<String>, u64, Option<u64>)>,
    /// What the world recorded from the client's start on.
    pub timeline: WorldTimeline,
    /// The run the trigger started, if one did.
    pub started: Option<Started>,
    /// The sim's figures, for the stages' sources.
    pub sim_config: SimConfig,
    /// The world as the fault began (the primary is its writer's region).
    pub world_at_fault: SimStatus,
    /// When each alarm event reached the queue, by event id (virtual ms).
    pub deliveries: HashMap<String, u64>,
    /// drflow's probe events (`source: drflow.probe`), with when the drill received each.
    pub probe_events: Vec<(u64, Value)>,
}

/// A probe event as a timeline entry: when its state began, and what changed and why.
fn probe_entry(event: &Value, received_ms: u64) -> (u64, String) {
    let d = &event["detail"];
    let text = |v: &Value| v.as_str().unwrap_or("?").to_string();
    let at_ms = d["state"]["timestamp"]
        .as_str()
        .and_then(|t| drflow_engine::triggers::parse_timestamp(t).ok())
        .unwrap_or(received_ms);
    (
        at_ms,
        format!(
            "{} from {}: {} → {} ({})",
            text(&d["endpoint"]),
            text(&d["fromRegion"]),
            text(&d["previousState"]["value"]),
            text(&d["state"]["value"]),
            text(&d["state"]["reason"])
        ),
    )
}

/// Seconds from `t0` to `ms`, to the millisecond.
fn secs(t0: u64, ms: u64) -> f64 {
    ((ms as f64 - t0 as f64) / 1000.0 * 1000.0).round() / 1000.0
}

/// A duration in seconds, to the millisecond.
fn dur(ms: u64) -> f64 {
    (ms as f64).round() / 1000.0
}

/// The run's steps: start and end of each, from its events (seconds on the virtual clock).
fn step_spans(events: &[RunEvent]) -> Vec<(String, f64, f64, &'static str)> {
    let mut order: Vec<String> = Vec::new();
    let mut spans: HashMap<String, (Option<f64>, Option<f64>, &'static str)> = HashMap::new();
    for e in events {
        let (step, at, end) = match e {
            RunEvent::StepStarted { step, at, .. } => (step, *at, None),
            RunEvent::StepSucceeded { step, at, .. } => (step, *at, Some("succeeded")),
            RunEvent::StepFailed { step, at, .. } => (step, *at, Some("failed")),
            RunEvent::StepSkipped { step, at, .. } => (step, *at, Some("skipped")),
            RunEvent::StepInterrupted { step, at } => (step, *at, Some("interrupted")),
            _ => continue,
        };
        if !spans.contains_key(step) {
            order.push(step.clone());
        }
        let s = spans.entry(step.clone()).or_insert((None, None, "running"));
        match end {
            None => {
                s.0.get_or_insert(at);
            }
            Some(status) => {
                s.0.get_or_insert(at);
                s.1 = Some(at);
                s.2 = status;
            }
        }
    }
    order
        .into_iter()
        .map(|id| {
            let (start, end, status) = spans[&id];
            let start = start.unwrap_or_default();
            (id, start, end.unwrap_or(start), status)
        })
        .collect()
}

/// The report of one drill.
pub fn report(scenario: Scenario, f: &Facts, params: &DrillParams) -> DrillReport {
    let t0 = f.fault_ms;
    let at = |ms: u64| secs(t0, ms);
    let primary = f.world_at_fault.writer_region.clone();
    let mut timeline: Vec<(u64, TimelineEntry)> = Vec::new();
    let mut push = |ms: u64, event: &str, detail: String| {
        timeline.push((
            ms,
            TimelineEntry {
                at_seconds: at(ms),
                event: event.into(),
                detail,
            },
        ));
    };
    for (kind, region, start, end) in &f.faults {
        let place = region.as_deref().unwrap_or("every region");
        push(*start, "fault", format!("{kind} in {place}"));
        if let Some(end) = end.filter(|e| *e <= f.end_ms) {
            push(end, "fault_healed", format!("{kind} in {place} ends"));
        }
    }
    let client: Vec<_> = f.timeline.client.iter().collect();
    let after_fault: Vec<_> = client.iter().filter(|r| r.at_ms >= t0).copied().collect();
    let first_fail = after_fault.iter().find(|r| !r.ok).copied();
    if let Some(r) = first_fail {
        push(
            r.at_ms,
            "first_failed_request",
            format!(
                "write #{} to {}: {}",
                r.seq,
                r.region.as_deref().unwrap_or("nowhere"),
                r.error.as_deref().unwrap_or("failed")
            ),
        );
    }
    if let Some(h) = f
        .timeline
        .health_checks
        .iter()
        .find(|h| h.at_ms >= t0 && h.kind == "first_failed_check")
    {
        push(
            h.at_ms,
            "first_failed_health_check",
            format!("a Route 53 checker of {} sees it fail", h.name),
        );
    }
    if let Some(h) = f
        .timeline
        .health_checks
        .iter()
        .find(|h| h.at_ms >= t0 && h.kind == "unhealthy")
    {
        push(
            h.at_ms,
            "health_check_unhealthy",
            format!("{} is unhealthy", h.name),
        );
    }
    for a in f.timeline.alarms.iter().filter(|a| a.at_ms >= t0) {
        push(
            a.at_ms,
            "alarm",
            format!("{} {} → {} ({})", a.name, a.from, a.to, a.region),
        );
    }
    for (received_ms, event) in &f.probe_events {
        let (at_ms, detail) = probe_entry(event, *received_ms);
        if at_ms >= t0 {
            push(at_ms, "probe", detail);
        }
    }
    let decision;
    let mut steps = Vec::new();
    let mut trigger = None;
    let mut run_id = None;
    let mut run_params = Value::Null;
    let mut promotion = None;
    let mut scale_end_ms = None;
    if let Some(s) = &f.started {
        let fired = &s.firing;
        let signals: Vec<String> = fired
            .evidence
            .iter()
            .map(|e| {
                format!(
                    "{} ({} {} at {:+.1} s)",
                    e.signal,
                    subject_name(&e.subject),
                    e.state,
                    at(e.state_at_ms)
                )
            })
            .collect();
        push(
            fired.at_ms,
            "trigger",
            format!(
                "{} fired ({}): {}",
                fired.trigger,
                s.require,
                signals.join(", ")
            ),
        );
        trigger = Some(TriggerEvidence {
            trigger: fired.trigger.clone(),
            at_seconds: at(fired.at_ms),
            require: s.require.clone(),
            signals: fired
                .evidence
                .iter()
                .map(|e| SignalEvidence {
                    signal: e.signal.clone(),
                    subject: e.subject.clone(),
                    state: e.state.clone(),
                    state_at_seconds: at(e.state_at_ms),
                    received_at_seconds: at(e.received_ms),
                })
                .collect(),
        });
        push(
            s.started_ms,
            "run_started",
            format!(
                "{} (parameters from the firing: {})",
                fired.runbook.display(),
                fired.params.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        );
        run_id = Some(s.run_id.clone());
        run_params = s.params.clone();
        let spans = step_spans(&s.events);
        let outputs = s.outcome.as_ref().map(|o| &o.report.outputs);
        decision = outputs
            .and_then(|o| o.get("decision"))
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_string();
        if let Some((_, _, end, _)) = spans.iter().find(|(id, ..)| id == "decide") {
            let reason = outputs
                .and_then(|o| o.get("reason"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            push(
                (end * 1000.0).round() as u64,
                "decision",
                format!("{decision}: {reason}"),
            );
        }
        scale_end_ms = spans
            .iter()
            .find(|(id, ..)| id == "scale")
            .filter(|(.., status)| *status == "succeeded")
            .map(|(_, _, end, _)| (end * 1000.0).round() as u64);
        let type_of: HashMap<String, String> = s
            .outcome
            .as_ref()
            .map(|o| {
                o.report
                    .steps
                    .iter()
                    .map(|st| (st.id.clone(), st.uses.clone()))
                    .collect()
            })
            .unwrap_or_default();
        for (id, start, end, status) in spans {
            steps.push(StepTiming {
                step_type: type_of.get(&id).cloned().unwrap_or_default(),
                id,
                status: status.into(),
                start_seconds: at((start * 1000.0).round() as u64),
                end_seconds: at((end * 1000.0).round() as u64),
            });
        }
        for fence in f.timeline.fences.iter().filter(|x| x.at_ms >= s.started_ms) {
            push(
                fence.at_ms,
                "fence",
                format!("{} by {}", fence.region, fence.how),
            );
        }
        // A fence step that could not fence leaves no fact in the world: an auditor still
        // needs to see that the old writer's region was not stopped, and why.
        if let Some((at_s, out)) = step_outputs(&s.events, "fence")
            && out.get("fenced").and_then(Value::as_bool) == Some(false)
        {
            let detail = out
                .get("detail")
                .and_then(Value::as_str)
                .unwrap_or("")
                .trim_end_matches("; not fenced");
            push(
                (at_s * 1000.0).round() as u64,
                "fence",
                format!("not fenced: {detail}"),
            );
        }
        if let Some((at_s, out)) = step_outputs(&s.events, "scale")
            && let Some(short) = out.get("shortfall").and_then(Value::as_u64)
            && short > 0
        {
            let target = out
                .get("target_capacity")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            let in_service = out.get("in_service").and_then(Value::as_u64).unwrap_or(0);
            let why = out
                .get("last_failure")
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
                .map(|t| format!(": {t}"))
                .unwrap_or_default();
            push(
                (at_s * 1000.0).round() as u64,
                "capacity_short",
                format!(
                    "{in_service} of {target} instances in service, short by {short}; the run went on with what launched{why}"
                ),
            );
        }
        promotion = f
            .timeline
            .promotions
            .iter()
            .find(|p| p.requested_at_ms >= s.started_ms)
            .cloned();
        if let Some(p) = &promotion
            && let Some(done) = p.done_at_ms
        {
            push(
                done,
                "promotion_done",
                format!(
                    "{} to {}: {} write(s) lost",
                    p.kind, p.to_region, p.lost_writes
                ),
            );
        }
        for c in f
            .timeline
            .capacity
            .iter()
            .filter(|c| c.requested_at_ms >= s.started_ms)
        {
            if let Some(ready) = c.ready_at_ms {
                push(
                    ready,
                    "capacity_ready",
                    format!("{} in {}: {} in service", c.group, c.region, c.desired),
                );
            }
        }
        for d in f
            .timeline
            .dns_changes
            .iter()
            .filter(|d| d.submitted_at_ms >= s.started_ms)
        {
            push(
                d.insync_at_ms,
                "dns_changed",
                format!(
                    "{} (submitted at {:+.1} s)",
                    d.records,
                    at(d.submitted_at_ms)
                ),
            );
        }
    } else {
        decision = "none".to_string();
    }
    // Outages: the runs of failed requests after the fault, each from its first failure to
    // the next success (`None`: the client was still failing when the drill ended).
    let mut outages: Vec<(u64, Option<u64>)> = Vec::new();
    for r in &after_fault {
        match (r.ok, outages.last_mut()) {
            (false, Some((_, None))) => {}
            (false, _) => outages.push((r.at_ms, None)),
            (true, Some(last)) if last.1.is_none() => last.1 = Some(r.at_ms),
            (true, _) => {}
        }
    }
    let recovered = outages.last().is_none_or(|o| o.1.is_some());
    let downtime_seconds = dur(outages
        .iter()
        .map(|(a, b)| b.unwrap_or(f.end_ms).saturating_sub(*a))
        .sum());
    // Recovery is the start of the final stretch of successes: the client served from then to
    // the end of the drill. A success between two outages is not a recovery.
    let final_ok = outages.last().and_then(|o| o.1);
    let recovery = final_ok.and_then(|ok| after_fault.iter().find(|r| r.at_ms == ok).copied());
    for (i, (start, end)) in outages.iter().enumerate() {
        if i > 0
            && let Some(r) = after_fault.iter().find(|r| r.at_ms == *start)
        {
            push(
                r.at_ms,
                "failed_again",
                format!(
                    "write #{} to {}: {}",
                    r.seq,
                    r.region.as_deref().unwrap_or("nowhere"),
                    r.error.as_deref().unwrap_or("failed")
                ),
            );
        }
        if let Some(end) = end
            && Some(*end) != final_ok
            && let Some(r) = after_fault.iter().find(|r| r.at_ms == *end)
        {
            push(
                r.at_ms,
                "served_for_a_while",
                format!(
                    "write #{} served by {}, until the next outage",
                    r.seq,
                    r.region.as_deref().unwrap_or("?")
                ),
            );
        }
    }
    if let Some(r) = recovery {
        let by_promotion = promotion
            .as_ref()
            .is_some_and(|p| r.region.as_deref() == Some(p.to_region.as_str()));
        let (event, detail) = if by_promotion {
            ("first_standby_success", "served by")
        } else {
            ("recovered", "served again by")
        };
        push(
            r.at_ms,
            event,
            format!(
                "write #{} {detail} {}",
                r.seq,
                r.region.as_deref().unwrap_or("?")
            ),
        );
    }
    if !recovered && let Some(ff) = first_fail {
        push(
            f.end_ms,
            "not_recovered",
            format!(
                "the client is still failing when the drill ends, {:.0} s after its first failed request",
                dur(f.end_ms.saturating_sub(ff.at_ms))
            ),
        );
    }
    timeline.sort_by_key(|(ms, _)| *ms);
    let rto_seconds = first_fail
        .zip(recovery)
        .map(|(ff, r)| dur(r.at_ms - ff.at_ms));
    let unrecovered_seconds = (!recovered)
        .then(|| first_fail.map(|ff| dur(f.end_ms.saturating_sub(ff.at_ms))))
        .flatten();
    // RPO: acknowledged writes the writer lacks, and the window of data lost: from the last
    // write the new writer holds (before the first lost one) to the last lost write's
    // acknowledgement. One lost write costs one write interval, not 0.
    let writes = &f.timeline.writes;
    let rpo_seconds = rpo_window(writes, f.timeline.client.first().map(|r| r.at_ms));
    let (critical_path, engine) = match (&f.started, first_fail, recovery, &promotion) {
        (Some(s), Some(ff), Some(r), Some(p)) if p.done_at_ms.is_some_and(|d| d <= r.at_ms) => {
            promoted_path(f, s, ff.at_ms, r.at_ms, p, scale_end_ms)
        }
        // Served by the standby before any promotion, with the fault still on: Route 53's
        // answers did it. A recovery after the fault ended has no critical path to show.
        (_, Some(ff), Some(r), _)
            if r.region.is_some()
                && r.region != primary
                && !f
                    .faults
                    .iter()
                    .any(|(.., end)| end.is_some_and(|e| e <= r.at_ms)) =>
        {
            dns_path(f, ff.at_ms, r.at_ms)
        }
        _ => (Vec::new(), Vec::new()),
    };
    // `+ 0.0` turns the -0.0 of an empty sum into 0.0.
    let sum =
        |v: &[Stage]| (v.iter().map(|s| s.seconds).sum::<f64>() * 1000.0).round() / 1000.0 + 0.0;
    let (critical_path_seconds, engine_seconds) = if critical_path.is_empty() {
        (None, None)
    } else {
        (Some(sum(&critical_path)), Some(sum(&engine)))
    };
    let expected = expected_decisions(scenario, f.started.as_ref(), params);
    let decision_right = expected.contains(&decision);
    let objectives: Objectives = params.objectives;
    let objectives_met = decision_right
        && recovered
        && rto_seconds.is_none_or(|r| r <= objectives.rto_seconds)
        && rpo_seconds <= objectives.rpo_seconds;
    let client_samples = client
        .iter()
        .map(|r| ClientSample {
            at_seconds: at(r.at_ms),
            ok: r.ok,
            region: r.region.clone(),
        })
        .collect();
    let mut shown = serde_json::Map::new();
    shown.insert("drill".into(), Value::Object(params.given.clone()));
    shown.insert("failover".into(), run_params);
    shown.insert(
        "objectives".into(),
        json!({"rto_seconds": objectives.rto_seconds, "rpo_seconds": objectives.rpo_seconds}),
    );
    DrillReport {
        scenario: scenario.name().into(),
        description: scenario.description().into(),
        decision,
        decision_expected: expected,
        decision_right,
        rto_seconds,
        recovered,
        unrecovered_seconds,
        downtime_seconds,
        outages: outages.len() as u64,
        critical_path_seconds,
        engine_seconds,
        critical_path,
        engine,
        rpo_seconds,
        lost_writes: writes.lost.len() as u64,
        acked_writes: writes.acked,
        objectives,
        objectives_met,
        timeline: timeline.into_iter().map(|(_, e)| e).collect(),
        trigger,
        steps,
        client: client_samples,
        run_id,
        params: Value::Object(shown),
        version: env!("CARGO_PKG_VERSION").into(),
        wall_ms: 0,
        virtual_seconds: dur(f.end_ms - f.fault_ms),
    }
}

/// The outputs of `step` in the run and when it succeeded (seconds on the virtual clock).
fn step_outputs<'a>(
    events: &'a [RunEvent],
    step: &str,
) -> Option<(f64, &'a drflow_engine::Outputs)> {
    events.iter().rev().find_map(|e| match e {
        RunEvent::StepSucceeded {
            step: id,
            outputs,
            at,
            ..
        } if id == step => Some((*at, outputs)),
        _ => None,
    })
}

/// The data-loss window in seconds: from the acknowledgement (the commit) of the last write
/// the writer still holds before the first lost one, to the acknowledgement of the last lost
/// write; 0 when nothing was lost. `client_from`: when the client started, the window's start
/// when every write before the lost ones is lost too.
fn rpo_window(writes: &drflow_steps::sim::WriteFacts, client_from: Option<u64>) -> f64 {
    let acked_at: HashMap<u64, u64> = writes.acked_by_seq_time.iter().copied().collect();
    let Some(first_lost) = writes.lost.iter().min() else {
        return 0.0;
    };
    let Some(last_lost_at) = writes
        .lost
        .iter()
        .filter_map(|seq| acked_at.get(seq).copied())
        .max()
    else {
        return 0.0;
    };
    let held_before = writes
        .acked_by_seq_time
        .iter()
        .filter(|(seq, _)| seq < first_lost && !writes.lost.contains(seq))
        .map(|(_, at)| *at)
        .max()
        .or(client_from)
        .unwrap_or(last_lost_at);
    dur(last_lost_at.saturating_sub(held_before))
}

/// The decisions right for `scenario` with these parameters. A scenario whose writer is lost
/// calls for a managed failover only within the data-loss budget: when the data at risk as the
/// run decided (its `database` step's `data_at_risk_ms`, the world's replication lag) exceeds
/// `max_data_loss`, `blocked` is right, and within it `failover` is, whatever the scenario's
/// default settings expect (`lag-spike` with `-p max_data_loss=5m` should fail over).
fn expected_decisions(
    scenario: Scenario,
    s: Option<&Started>,
    params: &DrillParams,
) -> Vec<String> {
    let base: Vec<String> = scenario.expected().iter().map(|s| s.to_string()).collect();
    if base != ["failover"] && base != ["blocked"] {
        return base;
    }
    let at_risk = s
        .and_then(|s| step_outputs(&s.events, "database"))
        .and_then(|(_, o)| o.get("data_at_risk_ms").and_then(Value::as_u64));
    let budget = params
        .given
        .get("max_data_loss")
        .or_else(|| s.and_then(|s| s.params.get("max_data_loss")))
        .and_then(Value::as_str)
        .and_then(|t| drflow_engine::parse_duration(t).ok())
        .map(|d| d.as_millis() as u64);
    match (at_risk, budget) {
        (Some(risk), Some(budget)) if risk > budget => vec!["blocked".into()],
        (Some(_), Some(_)) => vec!["failover".into()],
        _ => base,
    }
}

/// One segment of a recovery: its name, when it ended (virtual ms), whether it is drflow's,
/// and where the figure comes from.
struct Segment {
    name: &'static str,
    end_ms: u64,
    engine: bool,
    source: String,
}

/// Lays `segments` back to back from `from` to `to`: each lasts from where the one before
/// ended to its own end, cut at `to` (0 when it ended before), and the last one takes what is
/// left, so the stages add up to `to - from` exactly.
fn back_to_back(from: u64, to: u64, segments: Vec<Segment>) -> (Vec<Stage>, Vec<Stage>) {
    let (mut critical, mut engine) = (Vec::new(), Vec::new());
    let mut mark = from;
    let n = segments.len();
    for (i, s) in segments.into_iter().enumerate() {
        let end = if i + 1 == n { to } else { s.end_ms.min(to) };
        let stage = Stage {
            name: s.name.into(),
            seconds: dur(end.saturating_sub(mark)),
            source: s.source,
        };
        mark = mark.max(end);
        if s.engine {
            engine.push(stage);
        } else {
            critical.push(stage);
        }
    }
    (critical, engine)
}

/// The critical path and the engine's share of a recovery that waited for a promotion, from
/// the first failed request (`ff`) to the first success in the promoted region (`ok`).
///
/// The chain: the alarm that completed the trigger, its event in the queue, the firing, the
/// promotion's request and its end; then, when the client's recovery waited for the run's DNS
/// change (it was in sync before the success), the scaling if the change waited for it, the
/// change and its `INSYNC`; last, the client reaching the standby.
fn promoted_path(
    f: &Facts,
    s: &Started,
    ff: u64,
    ok: u64,
    p: &drflow_steps::sim::PromotionFact,
    scale_end_ms: Option<u64>,
) -> (Vec<Stage>, Vec<Stage>) {
    let c = &f.sim_config;
    // The signal whose event completed the quorum: the last one received.
    let completing = s
        .firing
        .evidence
        .iter()
        .max_by_key(|e| (e.received_ms, e.state_at_ms));
    let state_at = completing.map_or(s.firing.at_ms, |e| e.state_at_ms);
    let queued_at = completing
        .and_then(|e| f.deliveries.get(&e.event_id).copied())
        .unwrap_or(s.firing.at_ms);
    let alarm = completing.map_or_else(
        || "the trigger".to_string(),
        |e| format!("{} {}", subject_name(&e.subject), e.state),
    );
    // A probe event (drflow's own, from the standby) is detected and delivered otherwise.
    let probe = completing.is_some_and(|e| {
        f.probe_events
            .iter()
            .any(|(_, p)| p["id"].as_str() == Some(e.event_id.as_str()))
    });
    let (detection_how, delivery_how) = if probe {
        (
            format!(
                "drflow probes from the standby every {} s and says ALARM once every probe for {} s failed",
                super::run::PROBE_INTERVAL.as_secs(),
                super::run::PROBE_WINDOW.as_secs()
            ),
            format!(
                "the probe's start → its event read by the drill (a probe of a dead endpoint waits out its {} s timeout)",
                c.probe_timeout_ms / 1000
            ),
        )
    } else {
        (
            format!(
                "Route 53 checks every {} s and needs {} failures, reported up to {} s later; the alarm's one-minute periods",
                c.health_check_interval_ms / 1000,
                c.health_check_failure_threshold,
                c.health_check_extra_ms / 1000,
            ),
            "the alarm's state change → its event in the alarm queue (EventBridge → SQS)"
                .to_string(),
        )
    };
    let promo_done = p.done_at_ms.unwrap_or(ok);
    let (promo_field, promo_ms) = if p.kind == "switchover" {
        ("aurora_switchover_ms", c.aurora_switchover_ms)
    } else {
        ("aurora_managed_failover_ms", c.aurora_managed_failover_ms)
    };
    let mut chain = vec![
        Segment {
            name: "detection",
            end_ms: state_at,
            engine: false,
            source: format!(
                "the world: the client's first failed request → {alarm} ({detection_how})"
            ),
        },
        Segment {
            name: "delivery",
            end_ms: queued_at,
            engine: false,
            source: format!("the world: {delivery_how}"),
        },
        Segment {
            name: "trigger",
            end_ms: s.firing.at_ms,
            engine: true,
            source: format!(
                "the event in the queue → the trigger firing (the drill reads the queue every {} ms; the evaluator decides at once)",
                super::run::QUEUE_POLL.as_millis()
            ),
        },
        Segment {
            name: "dispatch",
            end_ms: p.requested_at_ms,
            engine: true,
            source: format!(
                "the firing → the {} request: the run's start, discover, signals, database, decide, fence and the API call",
                p.kind
            ),
        },
        Segment {
            name: "promotion",
            end_ms: promo_done,
            engine: false,
            source: format!(
                "the world: {} requested → the writer available in {} (SimConfig::{promo_field} = {} s)",
                p.kind,
                p.to_region,
                promo_ms / 1000
            ),
        },
    ];
    let dns = f
        .timeline
        .dns_changes
        .iter()
        // Only a change every name server answered with before the success can have brought
        // the client there (they answer the old records until INSYNC).
        .find(|d| d.submitted_at_ms >= s.started_ms && d.insync_at_ms <= ok);
    if let Some(d) = dns {
        let capacity = f
            .timeline
            .capacity
            .iter()
            .filter(|x| x.requested_at_ms >= s.started_ms && x.region == p.to_region)
            .max_by_key(|x| x.desired);
        if let Some(x) = capacity {
            let (end, how) = match x.ready_at_ms {
                Some(ready) => (
                    ready,
                    format!(
                        "in service (warm pool SimConfig::instance_launch_warm_ms = {} s, cold {} s)",
                        c.instance_launch_warm_ms / 1000,
                        c.instance_launch_cold_ms / 1000
                    ),
                ),
                None => (
                    scale_end_ms.unwrap_or(x.requested_at_ms),
                    "launches refused (InsufficientInstanceCapacity) until the run's capacity_wait ran out".to_string(),
                ),
            };
            if end > promo_done && end <= d.submitted_at_ms {
                chain.push(Segment {
                    name: "capacity",
                    end_ms: end,
                    engine: false,
                    source: format!(
                        "the world: {} in {} asked for {} → {how}; the traffic step waits for it",
                        x.group, x.region, x.desired
                    ),
                });
            }
        }
        chain.push(Segment {
            name: "noticing",
            end_ms: d.submitted_at_ms,
            engine: true,
            source: "the promotion (or scaling) done → the DNS change submitted: the run's polling and the change's API call".into(),
        });
        chain.push(Segment {
            name: "dns",
            end_ms: d.insync_at_ms,
            engine: false,
            source: format!(
                "the world: {} submitted → INSYNC (SimConfig::dns_insync_ms = {} s)",
                d.change_id,
                c.dns_insync_ms / 1000
            ),
        });
    }
    chain.push(Segment {
        name: "clients",
        end_ms: ok,
        engine: false,
        source: format!(
            "the world: → the client's first success in {}: the standby's load balancer and Route 53 health check see it serve again, and the client's cached answer expires (TTL: SimConfig::dns_alias_ttl_ms = {} s; one request a second)",
            p.to_region,
            c.dns_alias_ttl_ms / 1000
        ),
    });
    back_to_back(ff, ok, chain)
}

/// The critical path of a recovery that needed no promotion: Route 53 sees the primary fail and
/// its health-based answers send the client to the standby, which serves (its application
/// reaches the writer across regions), once the client's cached answer expires. drflow has no
/// share in it.
fn dns_path(f: &Facts, ff: u64, ok: u64) -> (Vec<Stage>, Vec<Stage>) {
    let c = &f.sim_config;
    let unhealthy = f
        .timeline
        .health_checks
        .iter()
        // The verdict that sent the client to the standby for good: the last before the
        // success (a flapping primary turns unhealthy more than once).
        .rev()
        .find(|h| h.at_ms >= f.fault_ms && h.at_ms <= ok && h.kind == "unhealthy")
        .map_or(ff, |h| h.at_ms);
    back_to_back(
        ff,
        ok,
        vec![
            Segment {
                name: "detection",
                end_ms: unhealthy,
                engine: false,
                source: format!(
                    "the world: the client's first failed request → Route 53 sees the primary unhealthy (checks every {} s, {} failures) and answers with the standby",
                    c.health_check_interval_ms / 1000,
                    c.health_check_failure_threshold
                ),
            },
            Segment {
                name: "clients",
                end_ms: ok,
                engine: false,
                source: format!(
                    "the world: → the client's first success in the standby, its cached answer expired (TTL: SimConfig::dns_alias_ttl_ms = {} s)",
                    c.dns_alias_ttl_ms / 1000
                ),
            },
        ],
    )
}

/// An alarm's name from its ARN (`arn:aws:cloudwatch:…:alarm:NAME`), or the subject as it is.
fn subject_name(subject: &str) -> &str {
    subject
        .split_once(":alarm:")
        .map_or(subject, |(_, name)| name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(name: &'static str, end_ms: u64, engine: bool) -> Segment {
        Segment {
            name,
            end_ms,
            engine,
            source: String::new(),
        }
    }

    fn names(v: &[Stage]) -> Vec<(&str, f64)> {
        v.iter().map(|s| (s.name.as_str(), s.seconds)).collect()
    }

    #[test]
    fn stages_laid_back_to_back_add_up_to_the_span() {
        let (critical, engine) = back_to_back(
            1_000,
            200_000,
            vec![
                seg("detection", 90_000, false),
                seg("trigger", 90_100, true),
                seg("dispatch", 90_400, true),
                seg("promotion", 150_400, false),
                seg("noticing", 151_500, true),
                seg("clients", 200_000, false),
            ],
        );
        assert_eq!(
            names(&critical),
            [("detection", 89.0), ("promotion", 60.0), ("clients", 48.5)]
        );
        assert_eq!(
            names(&engine),
            [("trigger", 0.1), ("dispatch", 0.3), ("noticing", 1.1)]
        );
        let total: f64 = critical.iter().chain(&engine).map(|s| s.seconds).sum();
        assert!((total - 199.0).abs() < 1e-9);
    }

    #[test]
    fn a_stage_that_ended_early_counts_nothing_and_the_span_cuts_the_rest() {
        // The DNS change was in sync after the client was served already: cut at the success;
        // a stage that ended before the one before it counts 0.
        let (critical, engine) = back_to_back(
            0,
            100_000,
            vec![
                seg("detection", 50_000, false),
                seg("trigger", 40_000, true),
                seg("dns", 130_000, false),
                seg("clients", 100_000, false),
            ],
        );
        assert_eq!(
            names(&critical),
            [("detection", 50.0), ("dns", 50.0), ("clients", 0.0)]
        );
        assert_eq!(names(&engine), [("trigger", 0.0)]);
    }

    fn writes(acked: &[(u64, u64)], lost: &[u64]) -> drflow_steps::sim::WriteFacts {
        drflow_steps::sim::WriteFacts {
            acked: acked.len() as u64,
            acked_by_seq_time: acked.to_vec(),
            lost: lost.to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn rpo_is_the_data_loss_window_from_the_last_write_held() {
        // One write a second; #3 lost: the window runs from #2's commit to #3's, one second.
        let w = writes(&[(1, 1_000), (2, 2_000), (3, 3_000)], &[3]);
        assert_eq!(rpo_window(&w, Some(1_000)), 1.0);
        // Three lost: from #2 to #5.
        let w = writes(
            &[(1, 1_000), (2, 2_000), (3, 3_000), (4, 4_000), (5, 5_000)],
            &[3, 4, 5],
        );
        assert_eq!(rpo_window(&w, Some(1_000)), 3.0);
        // Nothing lost: 0.
        let w = writes(&[(1, 1_000), (2, 2_000)], &[]);
        assert_eq!(rpo_window(&w, Some(1_000)), 0.0);
        // Every write lost: from the client's start.
        let w = writes(&[(1, 1_500), (2, 2_500)], &[1, 2]);
        assert_eq!(rpo_window(&w, Some(500)), 2.0);
    }

    #[test]
    fn an_alarm_arn_reads_as_its_name() {
        assert_eq!(
            subject_name(
                "arn:aws:cloudwatch:us-east-1:123456789012:alarm:health-check-alarm-primary-prod"
            ),
            "health-check-alarm-primary-prod"
        );
        assert_eq!(subject_name("plain-name"), "plain-name");
    }
}
