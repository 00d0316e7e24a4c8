//! Two `drflow daemon`s on two state dirs (two machines), one environment, on moto: they
//! coordinate through the lease and the shared journal in the `drflow-state-<env_suffix>`
//! DynamoDB table provision made (`--journal dynamodb://…`).
//!
//! - Started together, exactly one leads and the other waits in standby (`/healthz` says so).
//! - The leader takes the alarm events and begins the failover; SIGKILLed in the middle of the
//!   run (a step started, not finished), its peer takes the daemon's lease over, copies the
//!   run from the shared journal and finishes it under the same id: one failover run, which
//!   succeeded, and the standby's Auto Scaling group and DNS weights moved.
//!
//! Both machines are this host, so the dead leader's leases are taken over as soon as its
//! process is gone; on two hosts, once the lease lapses (`--lease-ttl`, the store's moto tests
//! in `steps/src/aws/coordination.rs` cover that path). Needs moto (`.ci/run`).

#[path = "common/daemon_proc.rs"]
mod daemon_proc;
#[path = "common/moto.rs"]
mod moto;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;

use aws_sdk_cloudwatch::types::StateValue;
use daemon_proc::{alarm_event, put_event, spawn_daemon, wait_line};
use serde_json::Value;

const SUFFIX: &str = "prod-eu";
const STANDBY: &str = "eu-central-1";
const METRICS: &str = "us-east-1";

fn healthz(addr: &str) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    write!(s, "GET /healthz HTTP/1.1\r\nhost: {addr}\r\n\r\n").unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    reply
}

fn address(line: &str) -> String {
    line.split("on http://").nth(1).unwrap().trim().to_string()
}

#[test]
fn two_daemons_one_leads_and_the_other_finishes_the_run_when_the_leader_dies() {
    let Some(m) = moto::own_moto(&[("DRFLOW_MOTO_EMULATE", "failover")]) else {
        return;
    };
    let dirs = [
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    ];
    let keys = moto::testing_keys();
    let out = moto::drflow_aws(
        &m.endpoint,
        dirs[2].path(),
        &keys,
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
    let journal = format!("dynamodb://drflow-state-{SUFFIX}?region={STANDBY}");
    let ha = ["--journal", journal.as_str(), "--lease-ttl", "6s"];
    let rt = tokio::runtime::Runtime::new().unwrap();
    let c = moto::Moto {
        endpoint: m.endpoint.clone(),
    }
    .clients();
    let hc = format!("health-check-alarm-primary-{SUFFIX}");
    let outage = format!("regional-outage-alarm-{SUFFIX}");
    let arn = |name: &str| format!("arn:aws:cloudwatch:{METRICS}:123456789012:alarm:{name}");
    rt.block_on(async {
        let cw = &c.region(METRICS).await.cloudwatch;
        for name in [&hc, &outage] {
            cw.set_alarm_state()
                .alarm_name(name)
                .state_value(StateValue::Alarm)
                .state_reason("test: primary down")
                .send()
                .await
                .expect("SetAlarmState");
        }
    });

    // Racing: both start at once; one leads, one waits.
    let (mut a, a_lines) = spawn_daemon(&m, dirs[0].path(), &ha);
    let (mut b, b_lines) = spawn_daemon(&m, dirs[1].path(), &ha);
    let (mut a_log, mut b_log) = (Vec::new(), Vec::new());
    let a_role = wait_line(&a_lines, "drflow: daemon: ", &mut a_log);
    let a_leads = a_role.contains("leading prod-eu (lease token");
    let (leader, leader_lines, leader_log, follower, follower_lines, follower_log) = if a_leads {
        (&mut a, &a_lines, &mut a_log, &mut b, &b_lines, &mut b_log)
    } else {
        (&mut b, &b_lines, &mut b_log, &mut a, &a_lines, &mut a_log)
    };
    if !a_leads {
        wait_line(leader_lines, "leading prod-eu (lease token", leader_log);
    }
    let standby = if a_leads {
        wait_line(
            follower_lines,
            "standby: daemon/prod-eu is held by pid",
            follower_log,
        )
    } else {
        a_role
    };
    assert!(
        standby.contains(&format!("held by pid {} on", leader.id())),
        "{standby}"
    );
    let health = healthz(&address(&standby));
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(health.contains("\"status\":\"standby\""), "{health}");

    // The events reach the leader only (it alone reads the queue).
    wait_line(leader_lines, "daemon: reading ", leader_log);
    let now = drflow_engine::now() as u64 * 1000;
    rt.block_on(async {
        let kind = "CloudWatch Alarm State Change";
        put_event(
            &c,
            "aws.cloudwatch",
            kind,
            &arn(&hc),
            alarm_event(&hc, "ALARM", now - 20_000),
        )
        .await;
        put_event(
            &c,
            "aws.cloudwatch",
            kind,
            &arn(&outage),
            alarm_event(&outage, "ALARM", now - 10_000),
        )
        .await;
    });
    let fired = wait_line(leader_lines, "fired: run ", leader_log);
    let run_id = fired
        .split("fired: run ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .expect("a run id")
        .to_string();
    // Killed with a step of the run started and not finished: in the shared journal.
    let started = wait_line(leader_lines, &format!("run {run_id}: step "), leader_log);
    assert!(started.ends_with(" started"), "{started}");
    Command::new("kill")
        .args(["-KILL", &leader.id().to_string()])
        .status()
        .unwrap();
    leader.wait().unwrap();

    // The peer takes over and finishes that run, and no other.
    wait_line(follower_lines, "leading prod-eu (lease token", follower_log);
    let adopted = wait_line(
        follower_lines,
        &format!("run {run_id} of failover was left"),
        follower_log,
    );
    assert!(
        adopted.contains("by another daemon; finishing it"),
        "{adopted}"
    );
    let ended = wait_line(
        follower_lines,
        &format!("run {run_id} ended: "),
        follower_log,
    );
    assert!(ended.ends_with("succeeded"), "{}", follower_log.join("\n"));
    Command::new("kill")
        .args(["-TERM", &follower.id().to_string()])
        .status()
        .unwrap();
    wait_line(follower_lines, "daemon: stopped", follower_log);
    assert_eq!(follower.wait().unwrap().code(), Some(0));
    assert!(
        !follower_log.iter().any(|l| l.contains("fired: run")),
        "the alarms the dead leader acted on did not fire again: {}",
        follower_log.join("\n")
    );

    // Read from a third machine: one failover run, the one begun by the dead leader.
    let runs = moto::drflow_aws(
        &m.endpoint,
        dirs[2].path(),
        &keys,
        &["runs", "--output", "json", "--journal", &journal],
    )
    .output()
    .unwrap();
    assert_eq!(
        runs.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&runs.stderr)
    );
    let runs: Value = serde_json::from_slice(&runs.stdout).unwrap();
    let failovers: Vec<&Value> = runs
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["runbook"] == "failover")
        .collect();
    assert_eq!(failovers.len(), 1, "{runs:#}");
    assert_eq!(failovers[0]["id"], run_id.as_str());
    assert_eq!(failovers[0]["status"], "succeeded", "{runs:#}");
    rt.block_on(async {
        let asg = &c.region(STANDBY).await.autoscaling;
        let g = asg
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(format!("asg-{SUFFIX}"))
            .send()
            .await
            .expect("DescribeAutoScalingGroups");
        assert_eq!(g.auto_scaling_groups()[0].desired_capacity(), Some(2));
    });
}
