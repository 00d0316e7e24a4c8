//! The pure evaluator: events in, firings out. No I/O and no clock: each event comes with the
//! time it was received, and every decision is a function of the events seen so far.
//!
//! The rules (`docs/triggers.md` says them for users):
//! - A signal tracks *subjects*: the alarm an event is about (`resources[0]`, else
//!   `detail.alarmName`, else the event's `id`). An event is *about* a signal when it matches
//!   the signal's pattern with `detail.state` left out; it *fires* the signal when it matches
//!   the whole pattern and its state is not `INSUFFICIENT_DATA` (unknown is not firing).
//! - For each (signal, subject) only the newest state counts, ordered by
//!   `detail.state.timestamp` (else the event's `time`, else its arrival), ties by event id:
//!   an older event is *stale* and changes nothing (a late OK does not cancel a newer ALARM, an
//!   old ALARM does not fire again).
//! - A signal is firing when one of its subjects' newest state fires it; its *onset* is when
//!   that subject began firing (the latest such onset when several subjects fire).
//! - On each event that changed one of its signals, a trigger fires when at least N of its M
//!   signals are firing with onsets no older than `within` before the event's arrival, it is
//!   not in cooldown, and at least one of those onsets is new since its last firing (so it does
//!   not fire again while N stays met). A firing starts a cooldown; N met with a new onset in
//!   cooldown is reported as suppressed, once per set of onsets.
//! - An event whose `id` was seen before is a duplicate and changes nothing.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Value, json};

use super::config::{Trigger, TriggerConfig};
use super::pattern::pattern_matches;
use super::time::parse_timestamp;
use crate::diag::Pos;
use crate::expr::{Template, from_json};

/// The state value that says CloudWatch does not know: never firing.
const UNKNOWN_STATE: &str = "INSUFFICIENT_DATA";

/// What one event did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Observation {
    /// Same event id seen before: nothing else was done with it.
    pub duplicate: bool,
    /// Older than the newest state of its subject for a signal it is about: it changed nothing
    /// there.
    pub stale: bool,
    /// The alarm (or other subject) the event is about.
    pub subject: String,
    /// `detail.state.value`, when the event has one.
    pub state: Option<String>,
    /// When the state began (ms since the Unix epoch): `detail.state.timestamp`, else `time`,
    /// else the arrival.
    pub state_at_ms: u64,
    /// The (trigger, signal) pairs the event is about.
    pub matched: Vec<(String, String)>,
    /// Triggers that fired on it.
    pub firings: Vec<Firing>,
    /// Triggers whose signals were met but that are in cooldown.
    pub suppressed: Vec<Suppressed>,
}

/// A trigger that would have fired but is in cooldown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Suppressed {
    /// The trigger's name.
    pub trigger: String,
    /// The arrival of the event it was met on (ms since the Unix epoch).
    pub at_ms: u64,
    /// When its cooldown ends (ms since the Unix epoch).
    pub until_ms: u64,
}

/// A trigger firing: start `runbook` with `params`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Firing {
    /// The trigger's name.
    pub trigger: String,
    /// The runbook to start (resolved against drflow.yaml's directory).
    pub runbook: PathBuf,
    /// Its parameters file, if the trigger names one.
    pub params_file: Option<PathBuf>,
    /// The trigger's `params`, rendered from the events behind the firing.
    pub params: BTreeMap<String, Value>,
    /// Parameters that could not be rendered (a field the event lacks), left out of `params`
    /// so the runbook's default applies: name to the reason.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub param_problems: BTreeMap<String, String>,
    /// The arrival of the event it fired on (ms since the Unix epoch).
    pub at_ms: u64,
    /// The signals counted, in the trigger's order.
    pub evidence: Vec<Evidence>,
}

/// One signal behind a firing: the newest state of the subject that made it fire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evidence {
    /// The signal's name.
    pub signal: String,
    /// The alarm (or other subject).
    pub subject: String,
    /// Its state value (`ALARM`).
    pub state: String,
    /// When it entered that state (ms since the Unix epoch).
    pub state_at_ms: u64,
    /// When the event saying so arrived (ms since the Unix epoch).
    pub received_ms: u64,
    /// That event's id.
    pub event_id: String,
    /// That event's region.
    pub region: Option<String>,
}

/// Decides which triggers fire as events arrive. See the module documentation for the rules.
pub struct Evaluator {
    triggers: Vec<TriggerState>,
    /// Event ids seen, with when they arrived (ms), so that [`Evaluator::forget_ids_before`]
    /// can keep a long-running daemon's memory flat.
    seen: HashMap<String, u64>,
}

struct TriggerState {
    spec: Trigger,
    params: Vec<(String, Result<Template, String>)>,
    signals: Vec<SignalState>,
    /// The (signal, onset) pairs the last firing counted.
    fired: Option<Vec<(usize, u64)>>,
    /// Onsets at or before this time were acted on by a run another daemon started
    /// ([`Evaluator::acted_on`]): they never make a firing new.
    acted_until: u64,
    cooldown_until: u64,
    /// The pairs last reported as suppressed, so one situation is reported once.
    suppressed: Option<Vec<(usize, u64)>>,
}

struct SignalState {
    pattern: Value,
    about: Value,
    subjects: BTreeMap<String, SubjectState>,
}

struct SubjectState {
    /// What orders states: when it began, then the event id.
    key: (u64, String),
    /// When it began firing, while its newest state fires the signal.
    onset: Option<u64>,
    state: String,
    received_ms: u64,
    event: Arc<Value>,
}

/// What of an event the evaluator reads.
struct Facts {
    id: String,
    subject: String,
    state: Option<String>,
    state_at_ms: u64,
}

impl Facts {
    fn of(event: &Value, received_ms: u64) -> Facts {
        let id = event.get("id").and_then(Value::as_str).unwrap_or_default();
        let str_at = |p: &str| event.pointer(p).and_then(Value::as_str);
        let subject = str_at("/resources/0")
            .or_else(|| str_at("/detail/alarmName"))
            .unwrap_or(id);
        let time = |p: &str| str_at(p).and_then(|t| parse_timestamp(t).ok());
        Facts {
            id: id.to_string(),
            subject: subject.to_string(),
            state: str_at("/detail/state/value").map(str::to_string),
            state_at_ms: time("/detail/state/timestamp")
                .or_else(|| time("/time"))
                .unwrap_or(received_ms),
        }
    }
}

impl Evaluator {
    /// An evaluator over every trigger of `config`, with nothing seen yet.
    pub fn new(config: &TriggerConfig) -> Evaluator {
        let file: Arc<str> = Arc::from(config.path.display().to_string());
        let triggers = config
            .triggers
            .iter()
            .map(|t| TriggerState {
                params: t
                    .params
                    .iter()
                    .map(|(k, text)| {
                        let mut errors = Vec::new();
                        let tpl =
                            Template::compile_text(text, Pos::default(), false, &file, &mut errors);
                        let tpl = match errors.first() {
                            None => Ok(tpl),
                            Some(e) => Err(e.message.clone()),
                        };
                        (k.clone(), tpl)
                    })
                    .collect(),
                signals: t
                    .signals
                    .iter()
                    .map(|s| SignalState {
                        about: without_state(&s.pattern),
                        pattern: s.pattern.clone(),
                        subjects: BTreeMap::new(),
                    })
                    .collect(),
                spec: t.clone(),
                fired: None,
                acted_until: 0,
                cooldown_until: 0,
                suppressed: None,
            })
            .collect();
        Evaluator {
            triggers,
            seen: HashMap::new(),
        }
    }

    /// Another daemon started a run of `trigger` at `started_ms` (ms since the Unix epoch), and
    /// this one took over: the signals' onsets up to then were acted on and never make a firing
    /// new, and the trigger is in cooldown from then. `false` when there is no such trigger.
    pub fn acted_on(&mut self, trigger: &str, started_ms: u64) -> bool {
        let Some(t) = self.triggers.iter_mut().find(|t| t.spec.name == trigger) else {
            return false;
        };
        t.acted_until = t.acted_until.max(started_ms);
        t.cooldown_until = t
            .cooldown_until
            .max(started_ms.saturating_add(t.spec.cooldown_ms));
        true
    }

    /// Forgets the ids of events that arrived before `before_ms`: a copy of one of them arriving
    /// later is no longer called a duplicate, but it is still judged by its state's timestamp
    /// (stale, or the same onset, which never fires twice). Returns how many were forgotten.
    pub fn forget_ids_before(&mut self, before_ms: u64) -> usize {
        let n = self.seen.len();
        self.seen.retain(|_, at| *at >= before_ms);
        n - self.seen.len()
    }

    /// How many event ids it remembers.
    pub fn remembered_ids(&self) -> usize {
        self.seen.len()
    }

    /// Takes in one event, received at `received_ms` (ms since the Unix epoch), and says what
    /// it did.
    pub fn observe(&mut self, event: &Value, received_ms: u64) -> Observation {
        let facts = Facts::of(event, received_ms);
        let mut obs = Observation {
            subject: facts.subject.clone(),
            state: facts.state.clone(),
            state_at_ms: facts.state_at_ms,
            ..Observation::default()
        };
        if !facts.id.is_empty() {
            if self.seen.contains_key(&facts.id) {
                obs.duplicate = true;
                return obs;
            }
            self.seen.insert(facts.id.clone(), received_ms);
        }
        let event = Arc::new(event.clone());
        for t in &mut self.triggers {
            let mut changed = false;
            for (i, s) in t.signals.iter_mut().enumerate() {
                if !pattern_matches(&s.about, &event) {
                    continue;
                }
                obs.matched
                    .push((t.spec.name.clone(), t.spec.signals[i].name.clone()));
                let key = (facts.state_at_ms, facts.id.clone());
                let previous = s.subjects.get(&facts.subject);
                if previous.is_some_and(|p| key < p.key) {
                    obs.stale = true;
                    continue;
                }
                let fires = facts.state.as_deref() != Some(UNKNOWN_STATE)
                    && pattern_matches(&s.pattern, &event);
                let onset =
                    fires.then(|| previous.and_then(|p| p.onset).unwrap_or(facts.state_at_ms));
                s.subjects.insert(
                    facts.subject.clone(),
                    SubjectState {
                        key,
                        onset,
                        state: facts.state.clone().unwrap_or_default(),
                        received_ms,
                        event: event.clone(),
                    },
                );
                changed = true;
            }
            if changed {
                match t.decide(received_ms) {
                    Some(Decision::Fire(f)) => obs.firings.push(*f),
                    Some(Decision::Suppress(s)) => obs.suppressed.push(s),
                    None => {}
                }
            }
        }
        obs
    }
}

enum Decision {
    Fire(Box<Firing>),
    Suppress(Suppressed),
}

impl TriggerState {
    /// For each signal that is firing with a recent enough onset: its index, its onset, and
    /// the subject behind it.
    fn counted(&self, at_ms: u64) -> Vec<(usize, u64, &str, &SubjectState)> {
        self.signals
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                s.subjects
                    .iter()
                    .filter_map(|(name, st)| st.onset.map(|o| (o, name.as_str(), st)))
                    .max_by_key(|(o, name, _)| (*o, *name))
                    .filter(|(o, _, _)| o.saturating_add(self.spec.within_ms) >= at_ms)
                    .map(|(o, name, st)| (i, o, name, st))
            })
            .collect()
    }

    fn decide(&mut self, at_ms: u64) -> Option<Decision> {
        let counted = self.counted(at_ms);
        if counted.len() < self.spec.require {
            return None;
        }
        let onsets: Vec<(usize, u64)> = counted.iter().map(|(i, o, _, _)| (*i, *o)).collect();
        let new = onsets.iter().any(|o| {
            o.1 > self.acted_until && self.fired.as_ref().is_none_or(|last| !last.contains(o))
        });
        if !new {
            return None;
        }
        if at_ms < self.cooldown_until {
            if self.suppressed.as_ref() == Some(&onsets) {
                return None;
            }
            self.suppressed = Some(onsets);
            return Some(Decision::Suppress(Suppressed {
                trigger: self.spec.name.clone(),
                at_ms,
                until_ms: self.cooldown_until,
            }));
        }
        let firing = self.firing(&counted, at_ms);
        self.fired = Some(onsets);
        self.suppressed = None;
        self.cooldown_until = at_ms.saturating_add(self.spec.cooldown_ms);
        Some(Decision::Fire(Box::new(firing)))
    }

    fn firing(&self, counted: &[(usize, u64, &str, &SubjectState)], at_ms: u64) -> Firing {
        let evidence = counted
            .iter()
            .map(|(i, _, subject, st)| Evidence {
                signal: self.spec.signals[*i].name.clone(),
                subject: (*subject).to_string(),
                state: st.state.clone(),
                state_at_ms: st.key.0,
                received_ms: st.received_ms,
                event_id: st.key.1.clone(),
                region: st
                    .event
                    .get("region")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            })
            .collect();
        // The event that completed the quorum: the counted one with the latest onset.
        let completing = counted
            .iter()
            .max_by_key(|(_, onset, _, st)| (*onset, st.received_ms))
            .map(|(_, _, _, st)| st.event.as_ref().clone())
            .unwrap_or(Value::Null);
        let signals: serde_json::Map<String, Value> = counted
            .iter()
            .map(|(i, _, _, st)| {
                (
                    self.spec.signals[*i].name.clone(),
                    st.event.as_ref().clone(),
                )
            })
            .collect();
        let scope = from_json(&json!({
            "event": completing,
            "signals": signals,
            "trigger": {"name": self.spec.name},
        }));
        let mut params = BTreeMap::new();
        let mut param_problems = BTreeMap::new();
        for (name, tpl) in &self.params {
            match tpl
                .as_ref()
                .map_err(Clone::clone)
                .and_then(|t| t.eval(&scope))
            {
                Ok(v) => {
                    params.insert(name.clone(), v);
                }
                Err(e) => {
                    param_problems.insert(name.clone(), e);
                }
            }
        }
        Firing {
            trigger: self.spec.name.clone(),
            runbook: self.spec.runbook.clone(),
            params_file: self.spec.params_file.clone(),
            params,
            param_problems,
            at_ms,
            evidence,
        }
    }
}

/// The pattern with `detail.state` left out: what makes an event about a signal, whatever its
/// state.
fn without_state(pattern: &Value) -> Value {
    let mut about = pattern.clone();
    if let Some(detail) = about.get_mut("detail").and_then(Value::as_object_mut) {
        detail.remove("state");
        if detail.is_empty()
            && let Some(top) = about.as_object_mut()
        {
            top.remove("detail");
        }
    }
    about
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use proptest::prelude::*;

    use super::*;

    const T0: u64 = 1_795_979_052_000;
    const MIN: u64 = 60_000;

    /// Two signals (health check and regional outage alarms in ALARM), `require`, 5m window,
    /// 15m cooldown, `triggered_by` naming the trigger and the completing alarm.
    fn config(require: usize) -> TriggerConfig {
        config_with(
            require,
            "${{ trigger.name }}: ${{ event.detail.alarmName }} (${{ signals.hc.detail.alarmName }})",
        )
    }

    fn config_with(require: usize, triggered_by: &str) -> TriggerConfig {
        let text = format!(
            r#"
version: 1
triggers:
  - name: primary-down
    runbook: runbooks/failover.yaml
    signals:
      - name: hc
        pattern:
          source: [aws.cloudwatch]
          detail: {{ alarmName: [{{prefix: health-check-alarm-primary-}}], state: {{ value: [ALARM] }} }}
      - name: outage
        pattern:
          source: [aws.cloudwatch]
          detail: {{ alarmName: [{{prefix: regional-outage-alarm-}}], state: {{ value: [ALARM] }} }}
    require: {require} of 2
    within: 5m
    cooldown: 15m
    params:
      triggered_by: "{triggered_by}"
"#
        );
        TriggerConfig::parse(&text, Path::new("drflow.yaml")).unwrap()
    }

    /// An alarm state change event: `alarm` entered `state` at `at_ms`; its id is unique per
    /// (alarm, state, time) unless given.
    fn ev(alarm: &str, state: &str, at_ms: u64) -> Value {
        json!({
            "id": format!("{alarm}/{state}/{at_ms}"),
            "source": "aws.cloudwatch",
            "time": crate::iso8601(at_ms as f64 / 1000.0),
            "region": "us-east-1",
            "resources": [format!("arn:aws:cloudwatch:us-east-1:0:alarm:{alarm}")],
            "detail": {"alarmName": alarm, "state": {"value": state, "timestamp": crate::iso8601(at_ms as f64 / 1000.0)}},
        })
    }

    const HC: &str = "health-check-alarm-primary-prod";
    const OUT: &str = "regional-outage-alarm-prod";

    #[test]
    fn two_of_two_fires_once_both_alarms_are_in_alarm_with_evidence_and_params() {
        let mut e = Evaluator::new(&config(2));
        let o = e.observe(&ev(HC, "ALARM", T0), T0 + 500);
        assert_eq!(o.matched, vec![("primary-down".into(), "hc".into())]);
        assert!(o.firings.is_empty());
        let o = e.observe(&ev(OUT, "ALARM", T0 + MIN), T0 + MIN + 400);
        let f = &o.firings[0];
        assert_eq!(f.trigger, "primary-down");
        assert_eq!(f.at_ms, T0 + MIN + 400);
        assert_eq!(f.runbook, Path::new("runbooks/failover.yaml"));
        assert_eq!(
            f.params["triggered_by"],
            format!("primary-down: {OUT} ({HC})")
        );
        let signals: Vec<(&str, &str, u64, u64)> = f
            .evidence
            .iter()
            .map(|e| {
                (
                    e.signal.as_str(),
                    e.state.as_str(),
                    e.state_at_ms,
                    e.received_ms,
                )
            })
            .collect();
        assert_eq!(
            signals,
            vec![
                ("hc", "ALARM", T0, T0 + 500),
                ("outage", "ALARM", T0 + MIN, T0 + MIN + 400)
            ]
        );
        assert_eq!(
            f.evidence[0].subject,
            format!("arn:aws:cloudwatch:us-east-1:0:alarm:{HC}")
        );
        assert_eq!(f.evidence[0].region.as_deref(), Some("us-east-1"));
    }

    #[test]
    fn signals_further_apart_than_the_window_do_not_fire() {
        let mut e = Evaluator::new(&config(2));
        e.observe(&ev(HC, "ALARM", T0), T0);
        let o = e.observe(&ev(OUT, "ALARM", T0 + 6 * MIN), T0 + 6 * MIN);
        assert!(o.firings.is_empty());
        // The health check going down again is a new onset within the window.
        e.observe(&ev(HC, "OK", T0 + 7 * MIN), T0 + 7 * MIN);
        let o = e.observe(&ev(HC, "ALARM", T0 + 8 * MIN), T0 + 8 * MIN);
        assert_eq!(o.firings.len(), 1);
    }

    #[test]
    fn a_late_ok_does_not_cancel_a_newer_alarm_and_an_old_alarm_does_not_fire() {
        let mut e = Evaluator::new(&config(2));
        e.observe(&ev(HC, "ALARM", T0 + MIN), T0 + MIN);
        // An OK from before the ALARM, delivered late.
        let o = e.observe(&ev(HC, "OK", T0), T0 + 2 * MIN);
        assert!(o.stale && o.firings.is_empty());
        let o = e.observe(&ev(OUT, "ALARM", T0 + 2 * MIN), T0 + 2 * MIN);
        assert_eq!(o.firings.len(), 1, "the health check is still in ALARM");

        let mut e = Evaluator::new(&config(2));
        e.observe(&ev(OUT, "OK", T0 + 3 * MIN), T0 + 3 * MIN);
        // An ALARM from before the newest OK, delivered late, fires nothing.
        e.observe(&ev(HC, "ALARM", T0 + 3 * MIN), T0 + 3 * MIN);
        let o = e.observe(&ev(OUT, "ALARM", T0 + MIN), T0 + 4 * MIN);
        assert!(o.stale && o.firings.is_empty());
    }

    #[test]
    fn insufficient_data_is_not_firing() {
        let mut e = Evaluator::new(&config(2));
        e.observe(&ev(HC, "ALARM", T0), T0);
        e.observe(&ev(HC, "INSUFFICIENT_DATA", T0 + MIN), T0 + MIN);
        let o = e.observe(&ev(OUT, "ALARM", T0 + 2 * MIN), T0 + 2 * MIN);
        assert!(o.firings.is_empty());
        assert_eq!(o.matched.len(), 1);
    }

    #[test]
    fn a_duplicate_is_counted_once() {
        let mut e = Evaluator::new(&config(1));
        let first = e.observe(&ev(HC, "ALARM", T0), T0);
        assert_eq!(first.firings.len(), 1);
        let again = e.observe(&ev(HC, "ALARM", T0), T0 + 1000);
        assert!(again.duplicate && again.matched.is_empty() && again.firings.is_empty());
    }

    #[test]
    fn onsets_another_daemon_acted_on_never_fire_here_and_a_later_onset_does() {
        let mut e = Evaluator::new(&config(1));
        // The peer fired at T0 + 1 min on this onset and died; this daemon took over.
        assert!(e.acted_on("primary-down", T0 + MIN));
        assert!(!e.acted_on("no-such-trigger", T0));
        assert!(
            e.observe(&ev(HC, "ALARM", T0), T0 + 2 * MIN)
                .firings
                .is_empty()
        );
        // Still in ALARM after the cooldown: no new onset, no new run.
        let o = e.observe(&ev(OUT, "ALARM", T0 + MIN / 2), T0 + 20 * MIN);
        assert!(o.firings.is_empty());
        // A new onset after the cooldown fires.
        e.observe(&ev(HC, "OK", T0 + 21 * MIN), T0 + 21 * MIN);
        let o = e.observe(&ev(HC, "ALARM", T0 + 22 * MIN), T0 + 22 * MIN);
        assert_eq!(o.firings.len(), 1);
    }

    #[test]
    fn no_refiring_while_met_cooldown_suppresses_a_new_onset_and_then_allows_one() {
        let mut e = Evaluator::new(&config(1));
        assert_eq!(e.observe(&ev(HC, "ALARM", T0), T0).firings.len(), 1);
        // The other signal joins: a new onset, but in cooldown.
        let o = e.observe(&ev(OUT, "ALARM", T0 + MIN), T0 + MIN);
        assert!(o.firings.is_empty());
        assert_eq!(
            o.suppressed,
            vec![Suppressed {
                trigger: "primary-down".into(),
                at_ms: T0 + MIN,
                until_ms: T0 + 15 * MIN
            }]
        );
        // Long after the cooldown, both still in ALARM: no new onset, no new run.
        let o = e.observe(
            &ev("health-check-alarm-primary-x", "OK", T0 + 20 * MIN),
            T0 + 20 * MIN,
        );
        assert!(o.firings.is_empty() && o.suppressed.is_empty());
        // A new onset after the cooldown fires again.
        e.observe(&ev(HC, "OK", T0 + 21 * MIN), T0 + 21 * MIN);
        let o = e.observe(&ev(HC, "ALARM", T0 + 22 * MIN), T0 + 22 * MIN);
        assert_eq!(o.firings.len(), 1);
    }

    #[test]
    fn a_foreign_event_matches_nothing() {
        let mut e = Evaluator::new(&config(1));
        let o = e.observe(&json!({"id": "x", "source": "aws.ec2", "detail": {}}), T0);
        assert!(o.matched.is_empty() && !o.stale && o.firings.is_empty());
        let o = e.observe(&ev("lag-alarm-prod", "ALARM", T0), T0);
        assert!(o.matched.is_empty());
    }

    #[test]
    fn a_param_the_event_cannot_fill_is_left_out_with_the_reason() {
        let mut e = Evaluator::new(&config_with(
            1,
            "${{ event.detail.configuration.description }}",
        ));
        let o = e.observe(&ev(HC, "ALARM", T0), T0);
        let f = &o.firings[0];
        assert!(f.params.is_empty());
        assert!(
            f.param_problems["triggered_by"].contains("does not exist"),
            "{:?}",
            f.param_problems
        );
    }

    proptest! {
        /// Whatever order the same events arrive in, the signals end in the same states, and a
        /// trigger never fires on an event older than the newest state it knows for its subject.
        #[test]
        fn order_does_not_change_the_final_state_and_stale_events_never_fire(
            steps in proptest::collection::vec((0..2usize, 0..3usize, 0..20u64), 1..12),
            seed in any::<u64>(),
        ) {
            let events: Vec<Value> = steps
                .iter()
                .map(|(a, s, t)| ev([HC, OUT][*a], ["OK", "ALARM", "INSUFFICIENT_DATA"][*s], T0 + t * MIN))
                .collect();
            let mut shuffled = events.clone();
            // A seeded Fisher-Yates shuffle.
            let mut x = seed | 1;
            for i in (1..shuffled.len()).rev() {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                shuffled.swap(i, (x % (i as u64 + 1)) as usize);
            }
            let final_state = |order: &[Value]| {
                let mut e = Evaluator::new(&config(2));
                for (i, event) in order.iter().enumerate() {
                    let o = e.observe(event, T0 + 30 * MIN + i as u64);
                    if o.stale || o.duplicate {
                        prop_assert!(o.firings.is_empty());
                    }
                }
                Ok(e.triggers[0]
                    .signals
                    .iter()
                    .map(|s| s.subjects.iter().map(|(k, st)| (k.clone(), st.key.clone(), st.onset.is_some())).collect::<Vec<_>>())
                    .collect::<Vec<_>>())
            };
            prop_assert_eq!(final_state(&events)?, final_state(&shuffled)?);
        }
    }
}
