//! `drflow daemon --target aws` on moto, end to end: alarm state change events of the real
//! shape put on EventBridge (the alarms' states also set with `SetAlarmState`), routed by the
//! rule provision made into the SQS queue, taken by the daemon, which runs the failover runbook
//! against moto: the standby's Auto Scaling group grows, the DNS weights move, one run is
//! journaled. Among the events: a duplicate, an `OK` older than the `ALARM` arriving after it,
//! a malformed message and a foreign event, none of which may start or stop anything. Then a
//! daemon killed (SIGKILL) just after a firing, started again, finishes that run under its id.
//!
//! moto never fails a health check, so the runbook decides on the alarms alone
//! (`signals: [alarms]`, `quorum: 1`), and it lacks `FailoverGlobalCluster`, which this moto
//! answers (`DRFLOW_MOTO_EMULATE=failover`, docs/aws.md). Needs moto (`.ci/run`).

#[path = "common/daemon_proc.rs"]
mod daemon_proc;
#[path = "common/moto.rs"]
mod moto;

use daemon_proc::{alarm_event, put_event, spawn_daemon, wait_line};

use moto::OwnMoto;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use aws_sdk_cloudwatch::types::StateValue;
use serde_json::{Value, json};

const SUFFIX: &str = "prod-eu";
const STANDBY: &str = "eu-central-1";
const METRICS: &str = "us-east-1";

/// A moto of this test's own, answering `FailoverGlobalCluster`.
fn start_moto() -> Option<OwnMoto> {
    moto::own_moto(&[("DRFLOW_MOTO_EMULATE", "failover")])
}

fn drflow(m: &OwnMoto, state: &std::path::Path, args: &[&str]) -> Command {
    moto::drflow_aws(&m.endpoint, state, &moto::testing_keys(), args)
}

fn get(addr: &str, path: &str) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    write!(s, "GET {path} HTTP/1.1\r\nhost: {addr}\r\n\r\n").unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    reply
}

fn metric(text: &str, line_start: &str) -> u64 {
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[test]
fn alarm_events_make_the_daemon_fail_over_once_and_a_killed_daemon_finishes_its_run() {
    let Some(m) = start_moto() else { return };
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path();
    let out = drflow(
        &m,
        state,
        &[
            "run",
            "runbooks/provision.yaml",
            "--params-file",
            "runbooks/params/eu.yaml",
        ],
    )
    .output()
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "provision: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let c = moto::Moto {
        endpoint: m.endpoint.clone(),
    }
    .clients();
    let hc = format!("health-check-alarm-primary-{SUFFIX}");
    let outage = format!("regional-outage-alarm-{SUFFIX}");
    let arn = |name: &str| format!("arn:aws:cloudwatch:{METRICS}:123456789012:alarm:{name}");
    // The alarms say so too, as CloudWatch would: the runbook reads them back.
    rt.block_on(async {
        let cw = &c.region(METRICS).await.cloudwatch;
        cw.set_alarm_state()
            .alarm_name(&hc)
            .state_value(StateValue::Alarm)
            .state_reason("test: primary down")
            .send()
            .await
            .expect("SetAlarmState");
    });
    let (mut child, lines) = spawn_daemon(&m, state, &[]);
    let pid = child.id();
    // A hung daemon fails the test instead of hanging it.
    let (exited, watchdog) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        if watchdog.recv_timeout(Duration::from_secs(180)).is_err() {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    });
    let mut log = Vec::new();
    let addr = wait_line(&lines, "/healthz and /metrics on http://", &mut log)
        .split("on http://")
        .nth(1)
        .unwrap()
        .trim()
        .to_string();
    wait_line(&lines, "daemon: reading ", &mut log);
    let now = drflow_engine::now() as u64 * 1000;
    rt.block_on(async {
        let queue = &c.region(STANDBY).await.sqs;
        let url = queue
            .get_queue_url()
            .queue_name(format!("alarm-events-{SUFFIX}"))
            .send()
            .await
            .expect("GetQueueUrl")
            .queue_url()
            .unwrap()
            .to_string();
        // Malformed: not an event at all, straight into the queue.
        queue
            .send_message()
            .queue_url(&url)
            .message_body("{not json")
            .send()
            .await
            .expect("SendMessage");
        // Foreign: a well-formed event of another source, as another rule aimed at the same
        // queue would deliver it (the provisioned rule itself only lets alarm changes through).
        let foreign = json!({
            "version": "0", "id": "7bf73129-1428-4cd3-a780-95db273d1602",
            "source": "aws.ec2", "detail-type": "EC2 Instance State-change Notification",
            "region": STANDBY, "resources": ["arn:aws:ec2:eu-central-1:123456789012:instance/i-1"],
            "detail": {"instance-id": "i-1", "state": "stopped"},
        });
        queue
            .send_message()
            .queue_url(&url)
            .message_body(foreign.to_string())
            .send()
            .await
            .expect("SendMessage");
        let kind = "CloudWatch Alarm State Change";
        // The health check alarm fires; the same change is delivered twice.
        for _ in 0..2 {
            put_event(
                &c,
                "aws.cloudwatch",
                kind,
                &arn(&hc),
                alarm_event(&hc, "ALARM", now - 20_000),
            )
            .await;
        }
        // An OK from before it arrives late: it must not cancel the ALARM.
        put_event(
            &c,
            "aws.cloudwatch",
            kind,
            &arn(&hc),
            alarm_event(&hc, "OK", now - 60_000),
        )
        .await;
        // The second signal: the quorum of primary-down is complete.
        put_event(
            &c,
            "aws.cloudwatch",
            kind,
            &arn(&outage),
            alarm_event(&outage, "ALARM", now - 10_000),
        )
        .await;
    });
    let fired = wait_line(&lines, "fired: run ", &mut log);
    assert!(fired.contains("trigger primary-down fired"), "{fired}");
    let ended = wait_line(&lines, "ended: ", &mut log);
    assert!(
        ended.ends_with("ended: succeeded"),
        "{ended}\n{}",
        log.join("\n")
    );
    let metrics = get(&addr, "/metrics");
    assert_eq!(
        metric(
            &metrics,
            "drflow_daemon_events_dropped_total{reason=\"malformed\"}"
        ),
        1,
        "{metrics}"
    );
    assert!(
        metric(
            &metrics,
            "drflow_daemon_events_dropped_total{reason=\"foreign\"}"
        ) >= 1,
        "{metrics}"
    );
    assert!(
        metric(
            &metrics,
            "drflow_daemon_events_deduplicated_total{reason=\"duplicate\"}"
        ) >= 1,
        "{metrics}"
    );
    assert!(
        metric(
            &metrics,
            "drflow_daemon_events_deduplicated_total{reason=\"stale\"}"
        ) >= 1,
        "{metrics}"
    );
    assert_eq!(
        metric(
            &metrics,
            "drflow_daemon_firings_total{trigger=\"primary-down\"}"
        ),
        1,
        "{metrics}"
    );
    assert_eq!(
        metric(&metrics, "drflow_daemon_decision_latency_seconds_count"),
        1,
        "{metrics}"
    );
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    wait_line(&lines, "daemon: stopped", &mut log);
    let status = child.wait().unwrap();
    let _ = exited.send(());
    assert_eq!(status.code(), Some(0), "{}", log.join("\n"));
    // One run in the journal, and it did the failover on moto.
    let runs = Command::new(env!("CARGO_BIN_EXE_drflow"))
        .args(["runs", "--output", "json"])
        .env("DRFLOW_STATE_DIR", state)
        .output()
        .unwrap();
    let runs: Value = serde_json::from_slice(&runs.stdout).unwrap();
    let failovers: Vec<&Value> = runs
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["runbook"] == "failover")
        .collect();
    assert_eq!(failovers.len(), 1, "{runs:#}");
    assert_eq!(failovers[0]["status"], "succeeded");
    rt.block_on(async {
        let asg = &c.region(STANDBY).await.autoscaling;
        let g = asg
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(format!("asg-{SUFFIX}"))
            .send()
            .await
            .expect("DescribeAutoScalingGroups");
        let desired = g.auto_scaling_groups()[0].desired_capacity();
        assert_eq!(
            desired,
            Some(2),
            "the standby grew to the primary's capacity"
        );
        let r53 = &c.region(drflow_steps::backend::GLOBAL).await.route53;
        let zones = r53
            .list_hosted_zones()
            .send()
            .await
            .expect("ListHostedZones");
        let zone = zones
            .hosted_zones()
            .iter()
            .find(|z| z.name().contains(SUFFIX))
            .expect("the zone");
        let sets = r53
            .list_resource_record_sets()
            .hosted_zone_id(zone.id())
            .send()
            .await
            .expect("ListResourceRecordSets");
        let weight = |id: &str| {
            sets.resource_record_sets()
                .iter()
                .find(|r| r.name().starts_with("api.") && r.set_identifier() == Some(id))
                .and_then(|r| r.weight())
        };
        assert_eq!((weight("standby"), weight("primary")), (Some(100), Some(0)));
    });
    // Killed in the middle of a run (SIGKILL: no checkpoint, no goodbye) and started again, the
    // daemon finishes that run under its id, and starts no other. Wherever the kill lands
    // (before the run reached the journal, or during it), there is one run of that firing.
    let (mut second, lines) = spawn_daemon(&m, state, &[]);
    let mut log2 = Vec::new();
    wait_line(&lines, "daemon: reading ", &mut log2);
    rt.block_on(async {
        let queue = &c.region(STANDBY).await.sqs;
        let url = queue
            .get_queue_url()
            .queue_name(format!("alarm-events-{SUFFIX}"))
            .send()
            .await
            .expect("GetQueueUrl")
            .queue_url()
            .unwrap()
            .to_string();
        // drflow's probe says the primary is unreachable: the other trigger, out of the first
        // one's cooldown.
        let at = drflow_engine::iso8601(drflow_engine::now());
        let stamp = format!("{}+0000", at.trim_end_matches('Z'));
        let probe = json!({
            "version": "0", "id": "probe-1", "source": "drflow.probe",
            "detail-type": "Endpoint Probe State Change", "region": STANDBY,
            "resources": ["https://primary.example/health"],
            "detail": {"endpoint": "https://primary.example/health", "fromRegion": STANDBY,
                       "state": {"value": "ALARM", "timestamp": stamp}},
        });
        queue
            .send_message()
            .queue_url(&url)
            .message_body(probe.to_string())
            .send()
            .await
            .expect("SendMessage");
    });
    let fired = wait_line(&lines, "fired: run ", &mut log2);
    Command::new("kill")
        .args(["-KILL", &second.id().to_string()])
        .status()
        .unwrap();
    second.wait().unwrap();
    let run_id = fired
        .split("fired: run ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .expect("a run id")
        .to_string();
    let (mut third, lines) = spawn_daemon(&m, state, &[]);
    let mut log3 = Vec::new();
    let ended = wait_line(&lines, &format!("run {run_id} ended: "), &mut log3);
    assert!(ended.ends_with("succeeded"), "{}", log3.join("\n"));
    Command::new("kill")
        .args(["-TERM", &third.id().to_string()])
        .status()
        .unwrap();
    wait_line(&lines, "daemon: stopped", &mut log3);
    assert_eq!(third.wait().unwrap().code(), Some(0));
    let runs = Command::new(env!("CARGO_BIN_EXE_drflow"))
        .args(["runs", "--output", "json"])
        .env("DRFLOW_STATE_DIR", state)
        .output()
        .unwrap();
    let runs: Value = serde_json::from_slice(&runs.stdout).unwrap();
    let failovers: Vec<&Value> = runs
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["runbook"] == "failover")
        .collect();
    assert_eq!(failovers.len(), 2, "the first and the killed one: {runs:#}");
    assert!(
        failovers
            .iter()
            .any(|r| r["id"] == run_id.as_str() && r["status"] == "succeeded"),
        "{runs:#}\n{}",
        log3.join("\n")
    );
}
