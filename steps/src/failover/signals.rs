//! `dr.read_signals`: is the primary down? Three independent answers, each read several times
//! over a confirmation window.
//!
//! A signal counts as down only when every reading in the window says so, and as up as soon as
//! one reading does: a flapping endpoint (up and down on a period shorter than the window) is
//! never confirmed down. What cannot be read (the primary region's CloudWatch during an outage)
//! is unknown, neither down nor up. Deciding what the readings mean is `dr.decide`'s job.

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
        "Reads the signals that the primary is down, several times over a confirmation window: \
         its Route 53 health check (the endpoint's health, whatever `Inverted` says), its \
         CloudWatch alarms (down when one is in ALARM), and drflow's own probe of its health \
         endpoint from the standby region. A signal is down only if every reading says so, \
         up if any does, and null when it was not chosen or could not be read. Changes \
         nothing.",
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
        "How long the readings must agree before a signal counts as down.",
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
    .output(
        "health_check_down",
        ValueType::Any,
        "Route 53 sees the primary's endpoint unhealthy in every reading (null: not read).",
    )
    .output(
        "alarms_down",
        ValueType::Any,
        "An alarm was in ALARM in every reading (null: not read, or unknown).",
    )
    .output(
        "probe_down",
        ValueType::Any,
        "drflow's probe failed in every reading (null: not made).",
    )
    .output(
        "first_failure_at_ms",
        ValueType::Any,
        "The earliest failure the run can see: when the health check turned unhealthy, else \
         when an alarm went to ALARM, else the first failed probe (null: nothing failed).",
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

/// Folds one reading into a signal's verdict over the window: down only while every reading
/// is down; up for good once one is up; unknown readings change nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tally {
    Unread,
    Down,
    Up,
}

impl Tally {
    fn add(self, down: Option<bool>) -> Tally {
        match (self, down) {
            (Tally::Up, _) | (_, Some(false)) => Tally::Up,
            (_, Some(true)) => Tally::Down,
            (t, None) => t,
        }
    }

    fn value(self) -> Value {
        match self {
            Tally::Unread => Value::Null,
            Tally::Down => json!(true),
            Tally::Up => json!(false),
        }
    }
}

fn run<'a>(fx: &'a Fx, p: &'a Outputs) -> BodyFuture<'a> {
    Box::pin(async move {
        let chosen: Vec<Signal> = p
            .get("signals")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .filter_map(Signal::parse)
                    .collect()
            })
            .unwrap_or_default();
        if chosen.is_empty() {
            return Err(StepError::invalid_input("`signals` names no signal"));
        }
        let hc_id = string(p, "health_check_id")?;
        let url = string(p, "probe_url")?;
        let from = string(p, "probe_from_region")?;
        let search = opt_string(p, "search_string");
        let alarms: Vec<(String, String)> = p
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
            .unwrap_or_default();
        let window = duration(p, "window")?;
        let interval = duration(p, "interval")?;
        if interval.is_zero() {
            return Err(StepError::invalid_input(
                "`interval` must be more than zero",
            ));
        }
        let readings = (window.as_millis() / interval.as_millis()) as u32 + 1;

        let (mut hc, mut al, mut pr) = (Tally::Unread, Tally::Unread, Tally::Unread);
        let mut detail = serde_json::Map::new();
        let mut hc_failed_at: Option<u64> = None;
        let mut alarm_at: Option<u64> = None;
        let mut probe_at: Option<u64> = None;
        for i in 0..readings {
            if i > 0 {
                fx.sleep(interval).await;
            }
            let now = fx.now_ms().await?;
            if chosen.contains(&Signal::HealthCheck) {
                let down = match fx.backend.get_health_check_status(hc_id).await {
                    Ok(s) => {
                        // `healthy` includes `Inverted`; the signal is the endpoint's health.
                        let endpoint_down = s.healthy == s.inverted;
                        detail.insert(
                            "health_check".into(),
                            json!(format!(
                                "{} of {} checkers see the endpoint healthy{}",
                                s.checkers_healthy,
                                s.checkers,
                                if s.inverted { " (check inverted)" } else { "" }
                            )),
                        );
                        if endpoint_down && hc_failed_at.is_none() {
                            hc_failed_at = Some(s.changed_at_ms.unwrap_or(now));
                        }
                        Some(endpoint_down)
                    }
                    Err(e) if unreachable(&e) => {
                        detail.insert("health_check".into(), json!(e.message));
                        None
                    }
                    Err(e) => return Err(e.into()),
                };
                hc = hc.add(down);
            }
            if chosen.contains(&Signal::Alarms) {
                let mut any_alarm = false;
                let mut all_ok = !alarms.is_empty();
                let mut words = Vec::new();
                for (region, name) in &alarms {
                    match fx.backend.describe_alarms(region, Some(name)).await {
                        Ok(list) => {
                            let a = list.iter().find(|a| &a.name == name);
                            match a.map(|a| (a.state, a.updated_at_ms)) {
                                Some((AlarmStateValue::Alarm, at)) => {
                                    any_alarm = true;
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
                detail.insert("alarms".into(), json!(words.join("; ")));
                let down = if any_alarm {
                    Some(true)
                } else if all_ok {
                    Some(false)
                } else {
                    None
                };
                al = al.add(down);
            }
            if chosen.contains(&Signal::Probe) {
                let down = match fx.backend.probe(from, url, search).await {
                    Ok(r) => {
                        detail.insert(
                            "probe".into(),
                            json!(match (&r.error, r.status) {
                                (Some(e), _) => format!("from {from}: {e}"),
                                (None, Some(code)) => format!("from {from}: HTTP {code}"),
                                (None, None) => format!("from {from}: no answer"),
                            }),
                        );
                        if !r.healthy && probe_at.is_none() {
                            probe_at = Some(now);
                        }
                        Some(!r.healthy)
                    }
                    // The probe itself could not be made: that says nothing of the primary.
                    Err(e) if unreachable(&e) => {
                        detail.insert("probe".into(), json!(e.message));
                        None
                    }
                    Err(e) => return Err(e.into()),
                };
                pr = pr.add(down);
            }
        }
        // Only a failure that is part of a confirmed signal says when the outage began.
        let first = [
            (hc == Tally::Down).then_some(hc_failed_at).flatten(),
            (al == Tally::Down).then_some(alarm_at).flatten(),
            (pr == Tally::Down).then_some(probe_at).flatten(),
        ]
        .into_iter()
        .find(Option::is_some)
        .flatten();
        let mut out = Outputs::new();
        out.insert("health_check_down".into(), hc.value());
        out.insert("alarms_down".into(), al.value());
        out.insert("probe_down".into(), pr.value());
        out.insert("first_failure_at_ms".into(), json!(first));
        out.insert("readings".into(), json!(readings));
        out.insert("detail".into(), Value::Object(detail));
        Ok(out)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signal_is_down_only_while_every_reading_agrees() {
        let t = |readings: &[Option<bool>]| {
            readings
                .iter()
                .fold(Tally::Unread, |t, r| t.add(*r))
                .value()
        };
        assert_eq!(t(&[Some(true), Some(true), Some(true)]), json!(true));
        assert_eq!(t(&[Some(true), Some(false), Some(true)]), json!(false));
        assert_eq!(t(&[Some(false), Some(true), Some(true)]), json!(false));
        assert_eq!(t(&[None, Some(true), None]), json!(true));
        assert_eq!(t(&[None, None]), Value::Null);
        assert_eq!(t(&[]), Value::Null);
    }
}
