//! Watching the primary from outside it: drflow's own probe of the trading endpoint, made from
//! the standby region, as an event source for the triggers of `drflow.yaml`.
//!
//! Why: the alarms the `primary-down` trigger listens to watch Route 53's health check metrics,
//! which Route 53 publishes only in us-east-1. With the primary in us-east-1, an outage of that
//! region silences every one of them, and nothing would start the failover. A probe made from
//! the standby region does not depend on the primary's region, so it still says the primary is
//! gone. Its events have the shape of an EventBridge event (`source: drflow.probe`), so the same
//! [`drflow_engine::triggers::Evaluator`] takes them next to the alarms' (docs/triggers.md).
//!
//! [`ProbeWatcher`] schedules nothing and reads no clock: whoever drives it (the daemon, the
//! drill) calls [`ProbeWatcher::poll`] with the time, as often as it likes; the watcher probes
//! when a probe is due (every `interval`) and says when the endpoint's state changes. A failure
//! is confirmed the way `dr.read_signals` confirms its probe: every probe for `window` failed
//! (a probe that could not be made at all, the standby region itself being unreachable, says
//! nothing and neither breaks nor extends a run of failures), so an endpoint flapping on a
//! shorter period never raises an alarm. It is the same judge (`failover::Trail`).

use std::sync::Arc;

use serde_json::{Value, json};

use crate::backend::{CloudBackend, CloudError, ErrorKind, FailoverApi, GLOBAL, Kind};
use crate::failover::{Trail, health_check_name, probe_target};

/// The `source` of the watcher's events.
pub const PROBE_SOURCE: &str = "drflow.probe";

/// The `detail-type` of the watcher's events.
pub const PROBE_DETAIL_TYPE: &str = "Endpoint Probe State Change";

/// What drflow probes: the primary's health endpoint and what a healthy answer contains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeTarget {
    /// `https://<host><path>`.
    pub url: String,
    /// The text a healthy answer contains, if the health check asks for one.
    pub search_string: Option<String>,
}

impl ProbeTarget {
    /// What `dr.discover` reports as `probe_url` and `search_string` for the environment
    /// `env_suffix`: the endpoint of the primary's Route 53 health check, found by the name
    /// provision gave it. Errors: the health check does not exist (`not_found`: the environment
    /// is not provisioned), or the backend's own error (Route 53 is global, so an outage of
    /// one region does not stop this).
    pub async fn discover<B: CloudBackend + ?Sized>(
        backend: &B,
        env_suffix: &str,
    ) -> Result<ProbeTarget, CloudError> {
        let name = health_check_name(env_suffix, "primary");
        match backend
            .find(&crate::backend::Identity::new(
                Kind::HealthCheck,
                GLOBAL,
                &name,
            ))
            .await?
        {
            Some(hc) => Ok(probe_target(&hc)),
            None => Err(CloudError::new(
                ErrorKind::NotFound,
                format!(
                    "health check {name:?} does not exist: is the environment provisioned with \
                     env_suffix {env_suffix:?}?"
                ),
            )),
        }
    }
}

/// What one probe said, for a timeline or a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeReading {
    /// When it was made (ms since the Unix epoch, as given to [`ProbeWatcher::poll`]).
    pub at_ms: u64,
    /// `Some(true)`: the endpoint answered healthy; `Some(false)`: it did not; `None`: the
    /// probe could not be made (that says nothing of the endpoint).
    pub healthy: Option<bool>,
    /// The answer in words: `HTTP 200`, `connection timed out`, why it could not be made.
    pub words: String,
}

/// A state of the watched endpoint, as CloudWatch names an alarm's.
#[derive(Debug, Clone, PartialEq, Eq)]
struct State {
    /// `INSUFFICIENT_DATA` (no probe answered yet), `OK` or `ALARM`.
    value: &'static str,
    /// When it began.
    since_ms: u64,
    /// Why, in words.
    reason: String,
}

/// Errors building a [`ProbeWatcher`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WatchError {
    /// The interval is zero: the watcher would probe on every poll.
    #[error("the probe interval must be more than zero")]
    ZeroInterval,
    /// The URL is not an http(s) URL.
    #[error("{0:?} is not an http(s) URL")]
    NotAUrl(String),
}

/// drflow's probe of one endpoint from one region, turned into state-change events (see the
/// module doc). Deterministic: no wall clock, no randomness; the same polls give the same events.
pub struct ProbeWatcher<B: FailoverApi + ?Sized> {
    backend: Arc<B>,
    from_region: String,
    target: ProbeTarget,
    interval_ms: u64,
    window_ms: u64,
    /// When the next probe is due; `None` before the first poll.
    next_due_ms: Option<u64>,
    trail: Trail,
    /// The first failed probe of the current run of failures, and how many there were.
    failing: Option<(u64, u32)>,
    /// `INSUFFICIENT_DATA` from the first poll until a probe answers.
    state: State,
    last: Option<ProbeReading>,
}

impl<B: FailoverApi + ?Sized> ProbeWatcher<B> {
    /// A watcher probing `target` from `from_region` (the standby region: where the daemon
    /// runs) every `interval`, raising `ALARM` once every probe for `window` has failed.
    /// Errors: a zero interval, a URL that is not http(s).
    pub fn new(
        backend: Arc<B>,
        from_region: &str,
        target: ProbeTarget,
        interval: std::time::Duration,
        window: std::time::Duration,
    ) -> Result<Self, WatchError> {
        if interval.is_zero() {
            return Err(WatchError::ZeroInterval);
        }
        if !(target.url.starts_with("https://") || target.url.starts_with("http://")) {
            return Err(WatchError::NotAUrl(target.url));
        }
        Ok(ProbeWatcher {
            backend,
            from_region: from_region.to_string(),
            target,
            interval_ms: interval.as_millis() as u64,
            window_ms: window.as_millis() as u64,
            next_due_ms: None,
            trail: Trail::default(),
            failing: None,
            state: State {
                value: "INSUFFICIENT_DATA",
                since_ms: 0,
                reason: "no probe answered yet".into(),
            },
            last: None,
        })
    }

    /// What is probed.
    pub fn target(&self) -> &ProbeTarget {
        &self.target
    }

    /// The region the probes are made from.
    pub fn from_region(&self) -> &str {
        &self.from_region
    }

    /// When the next probe is due (ms since the Unix epoch); `None` before the first poll,
    /// which probes at once. A driver may sleep until then.
    pub fn next_due_ms(&self) -> Option<u64> {
        self.next_due_ms
    }

    /// The latest probe made, if any.
    pub fn last_reading(&self) -> Option<&ProbeReading> {
        self.last.as_ref()
    }

    /// The endpoint's state now: `INSUFFICIENT_DATA` before any probe answered, then `OK` or
    /// `ALARM`.
    pub fn state(&self) -> &'static str {
        self.state.value
    }

    /// Probes if a probe is due at `now_ms` (the first poll always probes; then every
    /// `interval` on a grid from the first, a late poll skipping the slots it missed) and
    /// returns the event when the endpoint's state changed: `ALARM` once every probe for
    /// `window` failed, `OK` when a probe succeeds after an `ALARM`. The first successful
    /// probe sets the state to `OK` without an event (nothing changed that anyone must act
    /// on). A probe that cannot be made (an error from the backend) changes nothing; it shows
    /// in [`ProbeWatcher::last_reading`].
    ///
    /// The event (`source` [`PROBE_SOURCE`], `detail-type` [`PROBE_DETAIL_TYPE`]) is shaped
    /// like EventBridge's, with an `id` and `time` stamped as the sim's EventBridge stamps
    /// them (a UUID drawn from the event and the time); `detail.state.timestamp` and
    /// `detail.previousState.timestamp` are written as CloudWatch writes an alarm's.
    pub async fn poll(&mut self, now_ms: u64) -> Option<Value> {
        let start = match self.next_due_ms {
            Some(due) => due,
            None => {
                // Nothing is known from the first poll on until a probe answers.
                self.state.since_ms = now_ms;
                now_ms
            }
        };
        if now_ms < start {
            return None;
        }
        // The next slot on the grid after now: a poll that came late does not probe twice.
        let slots = (now_ms - start) / self.interval_ms + 1;
        self.next_due_ms = Some(start + slots * self.interval_ms);
        let reading = self.probe(now_ms).await;
        let event = self.judge(&reading);
        self.last = Some(reading);
        event
    }

    async fn probe(&self, at_ms: u64) -> ProbeReading {
        let search = self.target.search_string.as_deref();
        match self
            .backend
            .probe(&self.from_region, &self.target.url, search)
            .await
        {
            Ok(r) => ProbeReading {
                at_ms,
                healthy: Some(r.healthy),
                words: match (&r.error, r.status) {
                    (Some(e), _) => e.clone(),
                    (None, Some(code)) => format!("HTTP {code}"),
                    (None, None) => "no answer".into(),
                },
            },
            Err(e) => ProbeReading {
                at_ms,
                healthy: None,
                words: format!("the probe could not be made: {}", e.message),
            },
        }
    }

    /// Folds one reading into the state; the event when the state changed.
    fn judge(&mut self, r: &ProbeReading) -> Option<Value> {
        let at = r.at_ms;
        self.trail.add(at, r.healthy.map(|h| !h), None, false);
        match r.healthy {
            None => None,
            Some(true) => {
                self.failing = None;
                let reason = format!("a probe from {} succeeded: {}", self.from_region, r.words);
                match self.state.value {
                    "ALARM" => Some(self.change("OK", at, reason)),
                    "OK" => None,
                    _ => {
                        self.state = State {
                            value: "OK",
                            since_ms: at,
                            reason,
                        };
                        None
                    }
                }
            }
            Some(false) => {
                let (since, n) = self.failing.unwrap_or((at, 0));
                self.failing = Some((since, n + 1));
                if self.state() == "ALARM" || !self.trail.confirmed(self.window_ms) {
                    return None;
                }
                let reason = format!(
                    "{} probes from {} failed over {} s since {} (window {} s): {}",
                    n + 1,
                    self.from_region,
                    seconds(at - since),
                    cloudwatch_time(since),
                    seconds(self.window_ms),
                    r.words
                );
                Some(self.change("ALARM", at, reason))
            }
        }
    }

    /// Moves to `value` at `at_ms` and builds the event saying so.
    fn change(&mut self, value: &'static str, at_ms: u64, reason: String) -> Value {
        let state = State {
            value,
            since_ms: at_ms,
            reason,
        };
        let previous = std::mem::replace(&mut self.state, state.clone());
        let event = json!({
            "version": "0",
            "source": PROBE_SOURCE,
            "detail-type": PROBE_DETAIL_TYPE,
            "region": self.from_region,
            "resources": [self.target.url],
            "detail": {
                "endpoint": self.target.url,
                "fromRegion": self.from_region,
                "state": state_json(&state),
                "previousState": state_json(&previous),
            },
        });
        crate::sim::cloudwatch::stamp_event(event, at_ms)
    }
}

fn state_json(s: &State) -> Value {
    json!({
        "value": s.value,
        "timestamp": cloudwatch_time(s.since_ms),
        "reason": s.reason,
    })
}

fn cloudwatch_time(ms: u64) -> String {
    crate::sim::cloudwatch_time(ms)
}

fn seconds(ms: u64) -> String {
    if ms.is_multiple_of(1000) {
        format!("{}", ms / 1000)
    } else {
        format!("{:.1}", ms as f64 / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use drflow_engine::triggers::{Evaluator, TriggerConfig, parse_timestamp};

    use super::*;
    use crate::failover::fake::{BASE_MS, Fake, PRIMARY, STANDBY, alb};

    const S: u64 = 1000;

    fn target() -> ProbeTarget {
        ProbeTarget {
            url: format!("https://{}/health/trading", alb(PRIMARY)),
            search_string: Some("\"status\":\"ok\"".into()),
        }
    }

    /// A watcher probing the fake's primary from its standby every 10 s, confirming on 30 s.
    fn watcher(fake: &Arc<Fake>) -> ProbeWatcher<Fake> {
        ProbeWatcher::new(
            fake.clone(),
            STANDBY,
            target(),
            Duration::from_secs(10),
            Duration::from_secs(30),
        )
        .unwrap()
    }

    fn probe_ok(fake: &Fake, up: bool) {
        fake.with(|s| s.probe_healthy = up);
    }

    /// Polls at each of `at` seconds after BASE_MS; the events, with the second they came at.
    async fn poll_at(w: &mut ProbeWatcher<Fake>, at: &[u64]) -> Vec<(u64, Value)> {
        let mut out = Vec::new();
        for t in at {
            if let Some(e) = w.poll(BASE_MS + t * S).await {
                out.push((*t, e));
            }
        }
        out
    }

    fn at_ms(stamp: &Value) -> u64 {
        parse_timestamp(stamp.as_str().unwrap()).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn an_outage_raises_one_alarm_once_every_probe_for_the_window_failed_then_ok() {
        let fake = Fake::new(true);
        let mut w = watcher(&fake);
        assert_eq!(w.state(), "INSUFFICIENT_DATA");
        // Healthy: OK without an event (nothing to act on).
        assert!(poll_at(&mut w, &[0]).await.is_empty());
        assert_eq!(w.state(), "OK");
        probe_ok(&fake, false);
        // Failing from 10 s: 30 s of failures at 40 s, not before.
        let events = poll_at(&mut w, &[10, 20, 30, 40, 50, 60]).await;
        assert_eq!(events.len(), 1, "{events:?}");
        let (at, e) = &events[0];
        assert_eq!(*at, 40);
        assert_eq!(e["version"], "0");
        assert_eq!(e["source"], PROBE_SOURCE);
        assert_eq!(e["detail-type"], PROBE_DETAIL_TYPE);
        assert_eq!(e["region"], STANDBY);
        assert_eq!(e["resources"], json!([target().url]));
        assert_eq!(
            parse_timestamp(e["time"].as_str().unwrap()),
            Ok(BASE_MS + 40 * S)
        );
        assert!(!e["id"].as_str().unwrap().is_empty());
        let d = &e["detail"];
        assert_eq!(d["endpoint"], target().url);
        assert_eq!(d["fromRegion"], STANDBY);
        assert_eq!(d["state"]["value"], "ALARM");
        assert_eq!(at_ms(&d["state"]["timestamp"]), BASE_MS + 40 * S);
        assert!(
            d["state"]["timestamp"].as_str().unwrap().ends_with("+0000"),
            "written as CloudWatch writes an alarm's: {d}"
        );
        let reason = d["state"]["reason"].as_str().unwrap();
        assert!(
            reason.starts_with(&format!("4 probes from {STANDBY} failed over 30 s since ")),
            "{reason}"
        );
        assert!(reason.ends_with("connection timed out"), "{reason}");
        assert_eq!(d["previousState"]["value"], "OK");
        assert_eq!(at_ms(&d["previousState"]["timestamp"]), BASE_MS);
        assert_eq!(w.state(), "ALARM");

        // Back: OK at the first successful probe, once.
        probe_ok(&fake, true);
        let events = poll_at(&mut w, &[70, 80]).await;
        assert_eq!(events.len(), 1, "{events:?}");
        let (at, ok) = &events[0];
        assert_eq!(*at, 70);
        assert_eq!(ok["detail"]["state"]["value"], "OK");
        assert_eq!(at_ms(&ok["detail"]["state"]["timestamp"]), BASE_MS + 70 * S);
        assert_eq!(ok["detail"]["previousState"]["value"], "ALARM");
        assert_eq!(
            at_ms(&ok["detail"]["previousState"]["timestamp"]),
            BASE_MS + 40 * S
        );
        assert_ne!(ok["id"], e["id"]);
    }

    #[tokio::test(start_paused = true)]
    async fn an_endpoint_down_from_the_first_probe_alarms_from_insufficient_data() {
        let fake = Fake::new(true);
        probe_ok(&fake, false);
        let mut w = watcher(&fake);
        let events = poll_at(&mut w, &[5, 15, 25, 35]).await;
        assert_eq!(events.len(), 1, "{events:?}");
        let d = &events[0].1["detail"];
        assert_eq!(events[0].0, 35);
        assert_eq!(d["previousState"]["value"], "INSUFFICIENT_DATA");
        assert_eq!(at_ms(&d["previousState"]["timestamp"]), BASE_MS + 5 * S);
    }

    #[tokio::test(start_paused = true)]
    async fn it_probes_only_when_due_on_the_interval_grid() {
        let fake = Fake::new(true);
        let mut w = watcher(&fake);
        let probes = || fake.with(|s| s.probes);
        // 0.5 s ticks for 10 s: one probe, at the first poll.
        for i in 0..20 {
            w.poll(BASE_MS + i * 500).await;
        }
        assert_eq!(probes(), 1);
        w.poll(BASE_MS + 10 * S).await;
        assert_eq!(probes(), 2);
        // A poll 25 s late probes once; the grid stays on multiples of 10 s.
        w.poll(BASE_MS + 45 * S).await;
        assert_eq!(probes(), 3);
        w.poll(BASE_MS + 49 * S).await;
        assert_eq!(probes(), 3);
        w.poll(BASE_MS + 50 * S).await;
        assert_eq!(probes(), 4);
        assert_eq!(w.last_reading().unwrap().at_ms, BASE_MS + 50 * S);
        assert_eq!(w.last_reading().unwrap().healthy, Some(true));
    }

    #[tokio::test(start_paused = true)]
    async fn an_endpoint_flapping_faster_than_the_window_never_alarms() {
        let fake = Fake::new(true);
        let mut w = watcher(&fake);
        // Down 20 s, up 20 s, polled every second for ten minutes.
        let mut events = Vec::new();
        for t in 0..600 {
            probe_ok(&fake, (t / 20) % 2 == 1);
            events.extend(w.poll(BASE_MS + t * S).await);
        }
        assert!(events.is_empty(), "{events:?}");
        // Down for the window once: the alarm.
        probe_ok(&fake, false);
        let events = poll_at(&mut w, &[600, 610, 620, 630]).await;
        assert_eq!(events.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_probe_that_cannot_be_made_neither_breaks_nor_extends_a_run_of_failures() {
        let fake = Fake::new(true);
        let mut w = watcher(&fake);
        probe_ok(&fake, false);
        assert!(poll_at(&mut w, &[0]).await.is_empty());
        // The standby region itself cannot be reached: the probe is not made.
        fake.with(|s| s.unreachable.insert(STANDBY.into()));
        assert!(poll_at(&mut w, &[10, 20]).await.is_empty());
        let last = w.last_reading().unwrap();
        assert_eq!(last.healthy, None);
        assert!(last.words.contains("cannot be reached"), "{last:?}");
        fake.with(|s| s.unreachable.remove(STANDBY));
        // Failed at 0 and at 30: 30 s of failures, the unknown ones in between not counted
        // against it.
        let events = poll_at(&mut w, &[30]).await;
        assert_eq!(events.len(), 1, "{events:?}");

        // Unknown readings alone do not carry a run of failures to the window.
        let fake = Fake::new(true);
        let mut w = watcher(&fake);
        probe_ok(&fake, false);
        w.poll(BASE_MS).await;
        fake.with(|s| s.unreachable.insert(STANDBY.into()));
        assert!(poll_at(&mut w, &[10, 20, 30, 40, 50]).await.is_empty());
        assert_eq!(w.state(), "INSUFFICIENT_DATA");
    }

    #[tokio::test(start_paused = true)]
    async fn the_same_polls_give_the_same_events() {
        let play = || async {
            let fake = Fake::new(true);
            let mut w = watcher(&fake);
            let mut events = poll_at(&mut w, &[0, 10]).await;
            probe_ok(&fake, false);
            events.extend(poll_at(&mut w, &[20, 30, 40, 50]).await);
            probe_ok(&fake, true);
            events.extend(poll_at(&mut w, &[60]).await);
            events
        };
        let (a, b) = (play().await, play().await);
        assert_eq!(a.len(), 2);
        assert_eq!(a, b);
    }

    /// The watcher's events start the failover through the shipped drflow.yaml: its ALARM
    /// fires `primary-unreachable` on its own (the runbook confirms with its own quorum), and
    /// neither it nor its OK touches `primary-down`.
    #[tokio::test(start_paused = true)]
    async fn its_alarm_fires_the_shipped_primary_unreachable_trigger() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let config = TriggerConfig::load(&root.join("drflow.yaml")).expect("drflow.yaml");
        let mut eval = Evaluator::new(&config);
        let fake = Fake::new(true);
        let mut w = watcher(&fake);
        w.poll(BASE_MS).await;
        probe_ok(&fake, false);
        let events = poll_at(&mut w, &[10, 20, 30, 40]).await;
        let (_, alarm) = &events[0];
        let seen = eval.observe(alarm, BASE_MS + 41 * S);
        assert_eq!(
            seen.matched,
            [(
                "primary-unreachable".to_string(),
                "probe-from-standby".to_string()
            )]
        );
        assert_eq!(seen.firings.len(), 1);
        let firing = &seen.firings[0];
        assert_eq!(firing.trigger, "primary-unreachable");
        assert!(firing.runbook.ends_with("runbooks/failover.yaml"));
        let ev = &firing.evidence[0];
        assert_eq!(ev.subject, target().url);
        assert_eq!(ev.state, "ALARM");
        assert_eq!(ev.state_at_ms, BASE_MS + 40 * S);
        assert_eq!(ev.region.as_deref(), Some(STANDBY));
        let by = firing.params["triggered_by"].as_str().unwrap();
        assert!(by.contains(&target().url) && by.contains(STANDBY), "{by}");
        // The same event again is a duplicate; the OK fires nothing.
        assert!(eval.observe(alarm, BASE_MS + 42 * S).duplicate);
        probe_ok(&fake, true);
        let ok = w.poll(BASE_MS + 50 * S).await.unwrap();
        let seen = eval.observe(&ok, BASE_MS + 51 * S);
        assert!(seen.firings.is_empty());
        assert_eq!(seen.matched.len(), 1, "the OK is about the signal");
    }

    #[tokio::test(start_paused = true)]
    async fn the_target_is_what_discover_reports_from_the_primary_health_check() {
        let fake = Fake::new(true);
        let t = ProbeTarget::discover(fake.as_ref(), "prod").await.unwrap();
        assert_eq!(t, target());
        let err = ProbeTarget::discover(fake.as_ref(), "nope")
            .await
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::NotFound);
        assert!(err.message.contains("health-check-primary-nope"), "{err}");
    }

    #[test]
    fn a_zero_interval_or_a_url_that_is_not_http_is_refused() {
        let make = |url: &str, interval: u64| {
            ProbeWatcher::new(
                Fake::new(true),
                STANDBY,
                ProbeTarget {
                    url: url.into(),
                    search_string: None,
                },
                Duration::from_secs(interval),
                Duration::from_secs(30),
            )
            .err()
        };
        assert_eq!(make("https://x/health", 0), Some(WatchError::ZeroInterval));
        assert_eq!(
            make("x/health", 10),
            Some(WatchError::NotAUrl("x/health".into()))
        );
        assert_eq!(make("http://x/health", 10), None);
    }
}
