//! A `drflow daemon` child process on moto for the eu environment, and its stderr read line by
//! line: what the daemon's moto tests (`tests/daemon_aws.rs`, `tests/daemon_ha.rs`) share.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use drflow_steps::aws::Clients;
use serde_json::{Value, json};

use crate::moto::{self, OwnMoto};

/// `drflow daemon` on moto for the eu environment, deciding on the alarms alone, and its stderr
/// line by line; killed if the test fails.
pub fn spawn_daemon(
    m: &OwnMoto,
    state: &std::path::Path,
    extra: &[&str],
) -> (KillOnDrop, mpsc::Receiver<String>) {
    let args: Vec<&str> = [
        "daemon",
        "--params-file",
        "runbooks/params/eu.yaml",
        "-p",
        "signals=[alarms]",
        "-p",
        "quorum=1",
        "-p",
        "confirm_window=0s",
        "-p",
        "detection_timeout=5s",
        "--listen",
        "127.0.0.1:0",
        "--probe-every",
        "0s",
    ]
    .iter()
    .chain(extra)
    .copied()
    .collect();
    let mut child = moto::drflow_aws(&m.endpoint, state, &moto::testing_keys(), &args)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    (KillOnDrop(child), rx)
}

/// The next line containing `what`, every line read kept in `log`; panics after 3 minutes.
pub fn wait_line(lines: &mpsc::Receiver<String>, what: &str, log: &mut Vec<String>) -> String {
    loop {
        let line = lines
            .recv_timeout(Duration::from_secs(180))
            .unwrap_or_else(|_| panic!("no line with {what:?}:\n{}", log.join("\n")));
        log.push(line.clone());
        if line.contains(what) {
            return line;
        }
    }
}

/// A daemon child killed when dropped (a failed test leaves none behind).
pub struct KillOnDrop(pub Child);

impl std::ops::Deref for KillOnDrop {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for KillOnDrop {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An alarm's state change as CloudWatch puts it on EventBridge, its state since `at_ms`.
pub fn alarm_event(name: &str, state: &str, at_ms: u64) -> Value {
    let at = drflow_engine::iso8601(at_ms as f64 / 1000.0);
    let stamp = format!("{}+0000", at.trim_end_matches('Z'));
    json!({
        "alarmName": name,
        "state": {"value": state, "reason": "test", "timestamp": stamp},
        "previousState": {"value": if state == "OK" { "ALARM" } else { "OK" }, "timestamp": stamp},
        "configuration": {"description": "test"},
    })
}

/// `PutEvents` of one event on the standby region's default bus (where provision's rule routes
/// alarm changes into the daemon's queue).
pub async fn put_event(c: &Clients, source: &str, detail_type: &str, arn: &str, detail: Value) {
    let events = &c.region(crate::STANDBY).await.events;
    let out = events
        .put_events()
        .entries(
            PutEventsRequestEntry::builder()
                .source(source)
                .detail_type(detail_type)
                .resources(arn)
                .detail(detail.to_string())
                .build(),
        )
        .send()
        .await
        .expect("PutEvents");
    assert_eq!(out.failed_entry_count(), 0, "{out:?}");
}
