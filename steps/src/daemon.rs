//! The event sources of `drflow daemon` on a target, read through the same backend as the
//! steps: the alarm queue provision created (`events.alarm_queue`: SQS on aws, the sim's
//! EventBridge delivery on the sim), and the periodic reconcile of alarm states
//! (`DescribeAlarms`), because events can be lost. drflow's own probe is [`crate::watch`].

use std::time::Duration;

use serde_json::{Value, json};

use crate::backend::{AlarmState, CloudBackend, CloudError, ErrorKind, Identity, Kind};
use crate::sim::SimBackend;
use crate::target::LazyBackend;

/// The name `events.alarm_queue` gives the queue of the environment `env_suffix`.
pub fn queue_name(env_suffix: &str) -> String {
    format!("alarm-events-{env_suffix}")
}

/// One message received from the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The queue's message id.
    pub message_id: String,
    /// The body: an EventBridge event as JSON text, or whatever else was sent.
    pub body: String,
    /// How to acknowledge it once journaled.
    pub ack: Ack,
}

/// How a message is acknowledged once the daemon journaled it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ack {
    /// SQS: `DeleteMessage` with this receipt handle.
    Receipt(String),
    /// The sim's queue keeps its messages: the daemon records its read position (the message's
    /// availability time, ms) instead.
    Position(u64),
}

/// The alarm queue of one environment.
pub enum AlarmQueue {
    /// The sim's queue, read by position.
    Sim {
        /// The sim (on the daemon's clock).
        sim: SimBackend,
        /// The queue's ARN.
        arn: String,
    },
    /// An SQS queue.
    Sqs {
        /// The aws backend's clients.
        clients: crate::aws::Clients,
        /// The queue's region.
        region: String,
        /// The queue's URL.
        url: String,
    },
}

impl std::fmt::Debug for AlarmQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl AlarmQueue {
    /// Finds the queue `queue_name(env_suffix)` in `region` through `backend` (opening it) and
    /// readies it for reading. `sim` is the sim backend to read on the sim target (on the
    /// daemon's clock). Errors: the queue does not exist (`not_found`, with what to do), or the
    /// backend's own error.
    pub async fn open(
        backend: &LazyBackend,
        sim: Option<SimBackend>,
        env_suffix: &str,
        region: &str,
    ) -> Result<AlarmQueue, CloudError> {
        let b = backend.get()?;
        let name = queue_name(env_suffix);
        let Some(q) = b
            .find(&Identity::new(Kind::SqsQueue, region, &name))
            .await?
        else {
            return Err(CloudError::new(
                ErrorKind::NotFound,
                format!(
                    "the alarm queue {name} does not exist in {region}: provision the environment \
                     (runbooks/provision.yaml with env_suffix {env_suffix:?}), or pass the \
                     env_suffix and standby_region it was provisioned with"
                ),
            ));
        };
        let url = q
            .attrs
            .get("url")
            .and_then(Value::as_str)
            .unwrap_or(&q.id)
            .to_string();
        match (sim, backend.aws_clients()) {
            (Some(sim), _) => Ok(AlarmQueue::Sim { sim, arn: q.arn }),
            (None, Some(clients)) => Ok(AlarmQueue::Sqs {
                clients,
                region: region.to_string(),
                url,
            }),
            (None, None) => Err(CloudError::new(
                ErrorKind::Internal,
                "bug: the alarm queue needs the sim or the aws clients",
            )),
        }
    }

    /// The queue, for messages: its URL or ARN.
    pub fn describe(&self) -> String {
        match self {
            AlarmQueue::Sim { arn, .. } => arn.clone(),
            AlarmQueue::Sqs { url, .. } => url.clone(),
        }
    }

    /// Waits up to `wait` for messages and returns them (possibly none). On SQS a long poll
    /// (`WaitTimeSeconds`, at most 20 s) hiding each message for `visibility`; on the sim the
    /// messages delivered after `position` by now, or, when there are none, an empty answer
    /// after `poll` on the sim's clock.
    pub async fn receive(
        &self,
        position: u64,
        wait: Duration,
        visibility: Duration,
        poll: Duration,
        clock: &drflow_engine::SharedClock,
    ) -> Result<Vec<Received>, CloudError> {
        match self {
            AlarmQueue::Sim { sim, arn } => {
                let got = sim.receive(arn, position)?;
                if got.is_empty() {
                    clock.sleep(poll).await;
                    return Ok(Vec::new());
                }
                Ok(got
                    .into_iter()
                    .map(|m| Received {
                        message_id: m.message_id,
                        body: m.body.to_string(),
                        ack: Ack::Position(m.available_at_ms),
                    })
                    .collect())
            }
            AlarmQueue::Sqs {
                clients,
                region,
                url,
            } => {
                let got = crate::aws::receive_messages(
                    clients,
                    region,
                    url,
                    wait.as_secs().min(20) as i32,
                    10,
                    visibility.as_secs().max(1) as i32,
                )
                .await?;
                Ok(got
                    .into_iter()
                    .map(|m| Received {
                        message_id: m.message_id,
                        body: m.body,
                        ack: Ack::Receipt(m.receipt),
                    })
                    .collect())
            }
        }
    }

    /// Saves what the queue's backend holds in memory (the sim's world); nothing on SQS.
    pub fn checkpoint(&self) -> Result<(), CloudError> {
        match self {
            AlarmQueue::Sim { sim, .. } => sim.checkpoint(),
            AlarmQueue::Sqs { .. } => Ok(()),
        }
    }

    /// Acknowledges a journaled message: deletes it from SQS; nothing on the sim (the daemon
    /// keeps the position).
    pub async fn ack(&self, ack: &Ack) -> Result<(), CloudError> {
        match (self, ack) {
            (
                AlarmQueue::Sqs {
                    clients,
                    region,
                    url,
                },
                Ack::Receipt(r),
            ) => crate::aws::delete_message(clients, region, url, r).await,
            _ => Ok(()),
        }
    }
}

/// The reconcile: every alarm provision made for the environment `env_suffix` (named exactly, as
/// the alarm rule's pattern names them: not every name ending `-<env_suffix>`, since every alarm
/// of `prod-eu` also ends with `-eu`) in `regions`, read with `DescribeAlarms`, as the `CloudWatch Alarm State Change` event that
/// put it in its current state would have read: the same `resources`, `alarmName`,
/// `state.value` and `state.timestamp` (`StateUpdatedTimestamp`), so that the daemon's intake
/// takes it as a copy when the queue already delivered that change, and as news when the event
/// was lost. Its `id` starts `drflow-reconcile-`. A region that cannot be read is skipped and
/// reported in the second list (the primary's region is down in the outage this exists for).
pub async fn reconcile_events(
    backend: &dyn CloudBackend,
    regions: &[String],
    env_suffix: &str,
) -> (Vec<Value>, Vec<(String, CloudError)>) {
    let mut events = Vec::new();
    let mut failed = Vec::new();
    let names: Vec<String> = crate::cloud::monitoring::ALARM_TYPES
        .iter()
        .map(|ty| format!("{ty}-{env_suffix}"))
        .collect();
    for region in regions {
        match backend.describe_alarms(region, None).await {
            Ok(alarms) => events.extend(
                alarms
                    .iter()
                    .filter(|a| names.contains(&a.name))
                    .map(reconcile_event),
            ),
            Err(e) => failed.push((region.clone(), e)),
        }
    }
    (events, failed)
}

/// The event [`reconcile_events`] makes of one alarm.
pub fn reconcile_event(a: &AlarmState) -> Value {
    let at = crate::sim::cloudwatch_time(a.updated_at_ms);
    json!({
        "version": "0",
        "id": format!("drflow-reconcile-{}-{}", a.arn, a.updated_at_ms),
        "source": "aws.cloudwatch",
        "detail-type": "CloudWatch Alarm State Change",
        "time": at,
        "region": a.region,
        "resources": [a.arn],
        "detail": {
            "alarmName": a.name,
            "state": {"value": a.state.name(), "timestamp": at, "reason": a.reason},
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::AlarmStateValue;

    #[tokio::test]
    async fn the_reconcile_reads_its_own_environments_alarms_only() {
        use crate::backend::{CreateRequest, Tags};
        let sim = SimBackend::scratch(crate::sim::World::default());
        for name in [
            "health-check-alarm-primary-eu",
            "health-check-alarm-primary-prod-eu",
            "cpu-high-eu",
        ] {
            sim.create(&CreateRequest {
                kind: Kind::MetricAlarm,
                region: "us-east-1".into(),
                parent: None,
                name: name.into(),
                spec: json!({"namespace": "AWS/Route53", "metric_name": "HealthCheckStatus",
                    "statistic": "Minimum", "period": 60, "evaluation_periods": 1,
                    "threshold": 1.0, "comparison_operator": "LessThanThreshold"}),
                tags: Tags::default(),
                depends_on: vec![],
            })
            .await
            .unwrap();
        }
        let (events, failed) = reconcile_events(&sim, &["us-east-1".to_string()], "eu").await;
        assert!(failed.is_empty());
        let names: Vec<&str> = events
            .iter()
            .filter_map(|e| e["detail"]["alarmName"].as_str())
            .collect();
        assert_eq!(names, ["health-check-alarm-primary-eu"]);
    }

    #[test]
    fn a_reconciled_alarm_reads_as_its_state_change_event() {
        let a = AlarmState {
            name: "health-check-alarm-primary-prod".into(),
            arn: "arn:aws:cloudwatch:us-east-1:123456789012:alarm:health-check-alarm-primary-prod"
                .into(),
            region: "us-east-1".into(),
            state: AlarmStateValue::Alarm,
            reason: "Threshold Crossed".into(),
            updated_at_ms: 1_795_979_052_123,
        };
        let e = reconcile_event(&a);
        assert_eq!(e["detail"]["state"]["value"], "ALARM");
        assert_eq!(
            e["detail"]["state"]["timestamp"],
            "2026-11-29T19:04:12.123+0000"
        );
        assert_eq!(e["resources"][0], a.arn);
        assert!(
            drflow_engine::triggers::pattern_matches(
                &json!({"source": ["aws.cloudwatch"], "detail": {"alarmName": [{"prefix": "health-check-alarm-primary-"}], "state": {"value": ["ALARM"]}}}),
                &e
            ),
            "{e}"
        );
    }
}
