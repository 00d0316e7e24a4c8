//! `dr.read_signals`: is the primary down? Three independent answers, each read every
//! `interval` and judged on a trailing window.
//!
//! A signal is confirmed down once its readings have said so without a break for `window`; it
//! is up when its latest reading is up. A reading that tells when its signal changed (a health
//! check's `changed_at_ms`, an alarm's state time) starts the run of down readings at that
//! time, not at the step's first reading, and an alarm in ALARM is confirmed at once (its
//! evaluation periods are its confirmation): a run started by a trigger after the signals have
//! been down long enough decides without waiting another window. A flapping endpoint (up and down on a period shorter
//! than the window) is therefore never confirmed down. What cannot be read (the primary
//! region's CloudWatch during an outage) is unknown: such a reading neither breaks nor extends
//! a run of down readings.
//!
//! Judging a trailing window, not the whole run from its first reading, is what lets a failover
//! started at the moment of an outage (a person reacting to a page, the daemon reacting to the
//! first alarm) see it: Route 53's checkers need about interval × threshold (+ up to 6 s) to
//! notice, so the health check's first readings are healthy. The step reads until the
//! `quorum` is confirmed down or `detection_timeout` + `window` have passed, and then reports
//! what the signals say. Deciding what that means is `dr.decide`'s job.
//!
//! Once reading stops it also reads, once, whether the standby could serve (its own Route 53
//! health check) and whether the primary is still starting (its group has instances launching
//! and none in service): moving to a standby that cannot serve, or away from a deployment still
//! warming up, gains nothing. Neither is a signal: they do not count towards the quorum.

use std::sync::Arc;

use drflow_engine::{Outputs, Registry, StepError, ValueType};
use serde_json::{Value, json};

use super::decide::{SIGNAL, SIGNAL_NAMES, Signal};
use super::step::{
    BodyFuture, FailoverStep, Fx, duration, failover_spec, opt_string, string, unreachable,
};
use crate::backend::AlarmStateValue;
use crate::regions::AWS_REGION;
use crate::target::LazyBackend;

pub(crate) fn register(reg: &mut Registry, backend: &Arc<LazyBackend>) {
    let spec = failover_spec(
        "dr.read_signals",
        "Reads the signals that the primary is down every `interval`: its Route 53 health check \
         (the endpoint's health, whatever `Inverted` says), its CloudWatch alarms (down when one \
         is in ALARM), and drflow's own probe of its health endpoint from the standby region. \
         A signal is confirmed down once its readings have said so without a break for \
         `window` (a trailing window: readings from before it went down do not count against \
         it), counted from when the signal says it changed (the health check's change time, an \
         alarm's state time); an alarm in ALARM is confirmed at once, its evaluation periods \
         being its confirmation. A signal is up when its latest reading is up. Reading stops as soon as `quorum` signals \
         are confirmed down, else `detection_timeout` + `window` after the start, and the \
         outputs say what the signals say then; then reads once whether the standby's own \
         health check sees it healthy and whether the primary's group is still starting. \
         Changes nothing.",
    )
    .optional(
        "signals",
        ValueType::List,
        json!(SIGNAL_NAMES),
        "The signals to read: `health_check`, `alarms`, `probe`.",
    )
    .min_len(1)
    .max_len(3)
    .format(SIGNAL)
    .required(
        "health_check_id",
        ValueType::String,
        "The primary's Route 53 health check.",
    )
    .optional(
        "alarms",
        ValueType::List,
        json!([]),
        "The alarms watching the primary, each `{region, name}`.",
    )
    .optional(
        "standby_health_check_id",
        ValueType::String,
        json!(""),
        "The standby's Route 53 health check (empty: not read).",
    )
    .optional(
        "primary_region",
        ValueType::String,
        json!(""),
        "The primary's region, where `asg_name` is read (empty: not read).",
    )
    .optional(
        "asg_name",
        ValueType::String,
        json!(""),
        "The primary's Auto Scaling group (empty: not read).",
    )
    .required(
        "probe_url",
        ValueType::String,
        "The primary's health endpoint.",
    )
    .optional(
        "search_string",
        ValueType::String,
        json!(""),
        "What a healthy answer contains (empty: any 2xx/3xx).",
    )
    .required(
        "probe_from_region",
        ValueType::String,
        "Where drflow probes from (the standby region).",
    )
    .format(AWS_REGION)
    .optional(
        "window",
        ValueType::Duration,
        json!("30s"),
        "How long a signal's readings must have been down without a break before it counts as \
         down.",
    )
    .at_least(0.0)
    .at_most(600.0)
    .optional(
        "interval",
        ValueType::Duration,
        json!("10s"),
        "Time between readings (Route 53 checks every 10 s).",
    )
    .at_least(1.0)
    .optional(
        "quorum",
        ValueType::Int,
        json!(2),
        "Reading stops as soon as this many of the chosen signals are confirmed down: \
         `dr.decide`'s quorum.",
    )
    .at_least(1.0)
    .at_most(3.0)
    .optional(
        "detection_timeout",
        ValueType::Duration,
        json!("60s"),
        "How long after the step starts a signal may take to go down: when the quorum is not \
         confirmed by `detection_timeout` + `window`, reading stops there. The default covers \
         Route 53 noticing a failed endpoint with fast checks, about interval × failure \
         threshold + up to 6 s (10 s × 3 + 6 s = 36 s), plus the next reading (10 s), rounded \
         up; with standard checks (30 s × 3 + 6 s = 96 s) use 2m. An alarm on the health check \
         metric adds 60 s or more.",
    )
    .at_least(0.0)
    .at_most(1800.0)
    .output(
        "health_check_down",
        ValueType::Any,
        "Route 53 sees the primary's endpoint unhealthy, confirmed over the window (false: \
         healthy at the last reading; null: not read, or unhealthy for less than the window \
         when reading stopped).",
    )
    .output(
        "alarms_down",
        ValueType::Any,
        "An alarm is in ALARM (confirmed at once; false: all OK at the last reading; null: not \
         read, or unknown).",
    )
    .output(
        "probe_down",
        ValueType::Any,
        "drflow's probe fails, confirmed over the window (false: it succeeded at the last \
         reading; null: not made, or failing for less than the window).",
    )
    .output(
        "standby_healthy",
        ValueType::Any,
        "Route 53 sees the standby's endpoint healthy once reading stopped, whatever `Inverted` \
         says (null: not read, or unreadable).",
    )
    .output(
        "primary_starting",
        ValueType::Any,
        "The primary's group has instances launching and none in service once reading stopped \
         (null: not read, or its region unreachable).",
    )
    .output(
        "first_failure_at_ms",
        ValueType::Any,
        "The earliest failure the run can see of a signal confirmed down: when the health \
         check turned unhealthy, else when an alarm went to ALARM, else the probe's first \
         failure; of the unbroken run of down readings that confirmed it (null: none \
         confirmed).",
    )
    .output(
        "readings",
        ValueType::Int,
        "How many times each signal was read.",
    )
    .output(
        "detail",
        ValueType::Map,
        "The last reading of each signal, in words.",
    );
    reg.register(FailoverStep::boxed(spec, backend, run));
}

/// One signal's readings, judged on a trailing window: confirmed down once they have said so
/// without a break for the window, up as soon as one says so; unknown readings change nothing.
/// [`crate::watch::ProbeWatcher`] judges its probes with it too, so the daemon's probe and the
/// runbook's confirm a failure the same way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Trail {
    /// The latest reading that said something: `Some(true)` down, `Some(false)` up.
    latest: Option<bool>,
    /// When the current run of down readings began (the first of them was taken).
    down_since: Option<u64>,
    /// When the latest down reading of that run was taken.
    down_until: u64,
    /// When the signal itself says the failure of that run began (the health check's change
    /// time, an alarm's), for the RTO.
    failed_at: Option<u64>,
    /// The latest down reading is confirmed by itself (an alarm in ALARM: its evaluation
    /// periods are its confirmation).
    confirmed_at_once: bool,
}

impl Trail {
    /// Adds the reading taken at `at`: down (the signal saying it changed to down at
    /// `failed_at`; `at_once`: confirmed by itself), up, or unknown. A run of down readings
    /// begins when the signal says it changed, not at the run's first reading: a signal down
    /// for minutes before the step started is down for minutes.
    pub(crate) fn add(
        &mut self,
        at: u64,
        down: Option<bool>,
        failed_at: Option<u64>,
        at_once: bool,
    ) {
        match down {
            None => {}
            Some(false) => {
                *self = Trail {
                    latest: Some(false),
                    ..Trail::default()
                }
            }
            Some(true) => {
                if self.down_since.is_none() {
                    let since = failed_at.map_or(at, |f| f.min(at));
                    self.down_since = Some(since);
                    self.failed_at = Some(since);
                }
                self.latest = Some(true);
                self.down_until = at;
                self.confirmed_at_once = at_once;
            }
        }
    }

    /// How long the current run of down readings spans, in ms (while the signal is down).
    pub(crate) fn down_for_ms(&self) -> Option<u64> {
        self.down_since
            .map(|since| self.down_until.saturating_sub(since))
    }

    pub(crate) fn confirmed(&self, window_ms: u64) -> bool {
        self.latest == Some(true)
            && (self.confirmed_at_once || self.down_for_ms().is_some_and(|d| d >= window_ms))
    }

    /// The step's output: confirmed down, up, or null (not read, or down for less than the
    /// window: neither an outage nor a healthy primary, which `dr.decide` must not take for
    /// Route 53 seeing it healthy).
    fn value(&self, window_ms: u64) -> Value {
        match self.latest {
            Some(true) if self.confirmed(window_ms) => json!(true),
            Some(false) => json!(false),
            _ => Value::Null,
        }
    }
}

/// What to read, from the step's input.
struct Sources<'a> {
    hc_id: &'a str,
    url: &'a str,
    from: &'a str,
    search: Option<&'a str>,
    alarms: Vec<(String, String)>,
}

/// One reading of one signal: down, up or unknown; when the signal says the failure began;
/// and the reading in words.
struct Reading {
    down: Option<bool>,
    failed_at: Option<u64>,
    /// A down reading that is confirmed by itself (an alarm in ALARM).
    at_once: bool,
    words: String,
}

async fn read(fx: &Fx, signal: Signal, src: &Sources<'_>) -> Result<Reading, StepError> {
    Ok(match signal {
        Signal::HealthCheck => match fx.backend.get_health_check_status(src.hc_id).await {
            Ok(s) => {
                // `healthy` includes `Inverted`; the signal is the endpoint's health.
                let endpoint_down = s.healthy == s.inverted;
                Reading {
                    down: Some(endpoint_down),
                    failed_at: endpoint_down.then_some(s.changed_at_ms).flatten(),
                    at_once: false,
                    words: format!(
                        "{} of {} checkers see the endpoint healthy{}",
                        s.checkers_healthy,
                        s.checkers,
                        if s.inverted { " (check inverted)" } else { "" }
                    ),
                }
            }
            Err(e) if unreachable(&e) => Reading {
                down: None,
                failed_at: None,
                at_once: false,
                words: e.message,
            },
            Err(e) => return Err(e.into()),
        },
        Signal::Alarms => {
            let mut alarm_at: Option<u64> = None;
            let mut all_ok = !src.alarms.is_empty();
            let mut words = Vec::new();
            for (region, name) in &src.alarms {
                match fx.backend.describe_alarms(region, Some(name)).await {
                    Ok(list) => {
                        let a = list.iter().find(|a| &a.name == name);
                        match a.map(|a| (a.state, a.updated_at_ms)) {
                            Some((AlarmStateValue::Alarm, at)) => {
                                alarm_at = Some(alarm_at.map_or(at, |x| x.min(at)));
                                words.push(format!("{name} ALARM"));
                            }
                            Some((state, _)) => {
                                if state != AlarmStateValue::Ok {
                                    all_ok = false;
                                }
                                words.push(format!("{name} {}", state.name()));
                            }
                            None => {
                                all_ok = false;
                                words.push(format!("{name} not found"));
                            }
                        }
                    }
                    Err(e) if unreachable(&e) => {
                        all_ok = false;
                        words.push(format!("{name} ({region}) unreadable: {}", e.message));
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            Reading {
                down: if alarm_at.is_some() {
                    Some(true)
                } else if all_ok {
                    Some(false)
                } else {
                    None
                },
                failed_at: alarm_at,
                at_once: alarm_at.is_some(),
                words: words.join("; "),
            }
        }
        Signal::Probe => match fx.backend.probe(src.from, src.url, src.search).await {
            Ok(r) => Reading {
                down: Some(!r.healthy),
                // The reading's own time: the probe has no earlier failure to tell.
                failed_at: None,
                at_once: false,
                words: match (&r.error, r.status) {
                    (Some(e), _) => format!("from {}: {e}", src.from),
                    (None, Some(code)) => format!("from {}: HTTP {code}", src.from),
                    (None, None) => format!("from {}: no answer", src.from),
                },
            },
            // The probe itself could not be made: that says nothing of the primary.
            Err(e) if unreachable(&e) => Reading {
                down: None,
                failed_at: None,
                at_once: false,
                words: e.message,
            },
            Err(e) => return Err(e.into()),
        },
    })
}

/// Whether the signals read so far already decide the reading: the quorum is confirmed down,
/// and the health check (if it is a signal) is among them, so that the isolation rule, which
/// needs Route 53 to see the primary healthy, cannot apply. The signals not read yet could
/// change nothing, and a probe of a dead endpoint would only add its timeout to the failover
/// (a triggered run decided 6 s late, docs/drills.md).
fn settled(trails: &[(Signal, Trail)], quorum: usize, window_ms: u64) -> bool {
    let confirmed = trails
        .iter()
        .filter(|(_, t)| t.confirmed(window_ms))
        .count();
    let health_check_down = trails
        .iter()
        .filter(|(s, _)| *s == Signal::HealthCheck)
        .all(|(_, t)| t.confirmed(window_ms));
    confirmed >= quorum && health_check_down
}

fn run<'a>(fx: &'a Fx, p: &'a Outputs) -> BodyFuture<'a> {
    Box::pin(async move {
        let named: Vec<Signal> = p
            .get("signals")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .filter_map(Signal::parse)
                    .collect()
            })
            .unwrap_or_default();
        // Each signal once, in the order of `Signal::ALL` (the order `first_failure_at_ms`
        // prefers).
        let chosen: Vec<Signal> = Signal::ALL
            .into_iter()
            .filter(|s| named.contains(s))
            .collect();
        if chosen.is_empty() {
            return Err(StepError::invalid_input("`signals` names no signal"));
        }
        let src = Sources {
            hc_id: string(p, "health_check_id")?,
            url: string(p, "probe_url")?,
            from: string(p, "probe_from_region")?,
            search: opt_string(p, "search_string"),
            alarms: p
                .get("alarms")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|x| {
                            Some((
                                x.get("region")?.as_str()?.to_string(),
                                x.get("name")?.as_str()?.to_string(),
                            ))
                        })
                        .collect()
                })
                .unwrap_or_default(),
        };
        let quorum = p.get("quorum").and_then(Value::as_u64).unwrap_or(2) as usize;
        let window_ms = duration(p, "window")?.as_millis() as u64;
        let interval_ms = duration(p, "interval")?.as_millis() as u64;
        let detection_ms = duration(p, "detection_timeout")?.as_millis() as u64;
        if interval_ms == 0 {
            return Err(StepError::invalid_input(
                "`interval` must be more than zero",
            ));
        }

        let start = fx.now_ms().await?;
        let deadline = start + detection_ms + window_ms;
        let mut trails: Vec<(Signal, Trail)> =
            chosen.iter().map(|s| (*s, Trail::default())).collect();
        let mut detail = serde_json::Map::new();
        let mut readings: u32 = 0;
        loop {
            let at = fx.now_ms().await?;
            for i in 0..trails.len() {
                if settled(&trails, quorum, window_ms) {
                    break;
                }
                let (signal, trail) = &mut trails[i];
                let r = read(fx, *signal, &src).await?;
                trail.add(at, r.down, r.failed_at, r.at_once);
                detail.insert(signal.name().into(), json!(r.words));
            }
            readings += 1;
            let confirmed = trails
                .iter()
                .filter(|(_, t)| t.confirmed(window_ms))
                .count();
            if confirmed >= quorum {
                break;
            }
            let now = fx.now_ms().await?;
            if now >= deadline {
                break;
            }
            // The next slot on the interval's grid (a reading slower than the interval skips
            // the slots it overran); the last reading falls on the deadline itself.
            let next = (start + ((now - start) / interval_ms + 1) * interval_ms).min(deadline);
            fx.sleep(std::time::Duration::from_millis(next - now)).await;
        }

        for (signal, trail) in &trails {
            if let (Some(true), Some(d)) = (trail.latest, trail.down_for_ms())
                && !trail.confirmed(window_ms)
                && let Some(Value::String(words)) = detail.get_mut(signal.name())
            {
                words.push_str(&format!(
                    " (down for {} s, less than the {} s window)",
                    d as f64 / 1000.0,
                    window_ms as f64 / 1000.0
                ));
            }
        }
        let value = |s: Signal| {
            trails
                .iter()
                .find(|(x, _)| *x == s)
                .map_or(Value::Null, |(_, t)| t.value(window_ms))
        };
        // Only a failure that is part of a confirmed signal says when the outage began.
        let first = trails
            .iter()
            .filter(|(_, t)| t.confirmed(window_ms))
            .find_map(|(_, t)| t.failed_at);
        let mut out = Outputs::new();
        out.insert("health_check_down".into(), value(Signal::HealthCheck));
        out.insert("alarms_down".into(), value(Signal::Alarms));
        out.insert("probe_down".into(), value(Signal::Probe));
        let (standby_healthy, words) =
            read_standby(fx, opt_string(p, "standby_health_check_id")).await;
        if let Some(w) = words {
            detail.insert("standby".into(), json!(w));
        }
        let (primary_starting, words) = read_primary_group(
            fx,
            opt_string(p, "primary_region"),
            opt_string(p, "asg_name"),
        )
        .await;
        if let Some(w) = words {
            detail.insert("primary_group".into(), json!(w));
        }
        out.insert("standby_healthy".into(), json!(standby_healthy));
        out.insert("primary_starting".into(), json!(primary_starting));
        out.insert("first_failure_at_ms".into(), json!(first));
        out.insert("readings".into(), json!(readings));
        out.insert("detail".into(), Value::Object(detail));
        Ok(out)
    })
}

/// Whether Route 53 sees the standby's endpoint healthy (`None`: no check given, or Route 53
/// unreadable), and the reading in words.
async fn read_standby(fx: &Fx, hc_id: Option<&str>) -> (Option<bool>, Option<String>) {
    let Some(id) = hc_id else {
        return (None, None);
    };
    match fx.backend.get_health_check_status(id).await {
        Ok(s) => {
            // The endpoint's health: a failback inverts the standby's check, not its endpoint.
            let healthy = s.healthy != s.inverted;
            (
                Some(healthy),
                Some(format!(
                    "{} of {} checkers see the standby's endpoint healthy",
                    s.checkers_healthy, s.checkers
                )),
            )
        }
        // Not a signal: whatever keeps it from being read leaves it unknown, which holds
        // nothing back, rather than failing the reading of the signals.
        Err(e) => (None, Some(e.message)),
    }
}

/// Whether the primary's group is still starting: instances launching, none in service
/// (`None`: not given, or its region unreachable), and the reading in words.
async fn read_primary_group(
    fx: &Fx,
    region: Option<&str>,
    asg: Option<&str>,
) -> (Option<bool>, Option<String>) {
    let (Some(region), Some(asg)) = (region, asg) else {
        return (None, None);
    };
    match fx.backend.describe_auto_scaling_group(region, asg).await {
        Ok(g) => (
            Some(g.in_service == 0 && g.pending > 0),
            Some(format!(
                "{asg} ({region}): {} in service, {} launching",
                g.in_service, g.pending
            )),
        ),
        // Not a signal: whatever keeps it from being read leaves it unknown, which holds
        // nothing back, rather than failing the reading of the signals.
        Err(e) => (None, Some(e.message)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reading_stops_once_the_quorum_and_the_health_check_are_confirmed_down() {
        let trail = |down: bool, at_once: bool| {
            let mut t = Trail::default();
            t.add(100_000, Some(down), down.then_some(0), at_once);
            t
        };
        let hc_down = (Signal::HealthCheck, trail(true, false));
        let alarm = (Signal::Alarms, trail(true, true));
        assert!(settled(&[hc_down, alarm], 2, 60_000));
        // One short of the quorum: the probe is read.
        assert!(!settled(&[hc_down, alarm], 3, 60_000));
        // Route 53 sees the primary healthy: the probe is read, so that isolation can hold.
        let hc_up = (Signal::HealthCheck, trail(false, false));
        assert!(!settled(&[hc_up, alarm], 1, 60_000));
        // Without the health check among the signals, the quorum alone settles it.
        assert!(settled(&[alarm], 1, 60_000));
    }

    /// Folds `(at seconds, reading)` into a trail and gives the step's output for a 30 s window.
    fn judge(readings: &[(u64, Option<bool>)]) -> Value {
        let mut t = Trail::default();
        for (at, down) in readings {
            t.add(at * 1000, *down, None, false);
        }
        t.value(30_000)
    }

    #[test]
    fn a_signal_is_down_once_its_latest_readings_agree_for_the_window() {
        let (d, u) = (Some(true), Some(false));
        // Up at first (Route 53 not noticing yet), then down for the whole window: down.
        assert_eq!(
            judge(&[(0, u), (10, u), (20, d), (30, d), (40, d), (50, d)]),
            json!(true)
        );
        // Down, but not yet for the window: neither down nor up.
        assert_eq!(judge(&[(0, u), (10, d), (20, d), (30, d)]), Value::Null);
        // Down for the window, then up: up.
        assert_eq!(
            judge(&[(0, d), (10, d), (20, d), (30, d), (40, u)]),
            json!(false)
        );
        // Flapping on a period shorter than the window: never down.
        assert_eq!(
            judge(&[(0, d), (10, d), (20, u), (30, d), (40, d), (50, u), (60, d)]),
            Value::Null
        );
        // Unknown readings neither break a run of down readings nor extend it.
        assert_eq!(judge(&[(0, d), (10, None), (30, d)]), json!(true));
        assert_eq!(judge(&[(0, d), (40, None)]), Value::Null);
        assert_eq!(judge(&[(0, None), (10, None)]), Value::Null);
        assert_eq!(judge(&[]), Value::Null);
        // A window of zero: one down reading is enough.
        let mut t = Trail::default();
        t.add(5, Some(true), None, false);
        assert!(t.confirmed(0));
    }

    #[test]
    fn a_run_of_down_readings_begins_when_the_signal_says_it_changed() {
        // Read first 120 s after the signal changed: down for 120 s at once.
        let mut t = Trail::default();
        t.add(120_000, Some(true), Some(0), false);
        assert!(t.confirmed(60_000));
        assert_eq!(t.failed_at, Some(0));
        // Changed 20 s before the first reading: 40 s more to go.
        let mut t = Trail::default();
        t.add(20_000, Some(true), Some(0), false);
        assert!(!t.confirmed(60_000));
        t.add(50_000, Some(true), Some(0), false);
        assert!(!t.confirmed(60_000));
        t.add(60_000, Some(true), Some(0), false);
        assert!(t.confirmed(60_000));
        // A change time after the reading (clock skew) does not move the run into the future.
        let mut t = Trail::default();
        t.add(10, Some(true), Some(99), false);
        assert_eq!(t.down_since, Some(10));
        // An alarm in ALARM is confirmed by itself; once OK again, it is up.
        let mut t = Trail::default();
        t.add(0, Some(true), Some(0), true);
        assert!(t.confirmed(60_000));
        t.add(10, Some(false), None, false);
        assert_eq!(t.value(60_000), json!(false));
    }

    #[test]
    fn the_failure_time_is_that_of_the_run_of_down_readings_that_counts() {
        let mut t = Trail::default();
        t.add(0, Some(true), Some(1), false);
        t.add(10, Some(false), None, false);
        t.add(20, Some(true), Some(15), false);
        t.add(30, Some(true), Some(15), false);
        assert_eq!(t.failed_at, Some(15));
        // A signal that does not say when it failed: its first down reading.
        let mut t = Trail::default();
        t.add(40, Some(true), None, false);
        assert_eq!(t.failed_at, Some(40));
    }
}
