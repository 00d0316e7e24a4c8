//! What a drill measured: the one document every output of `drflow drill` is rendered from
//! (the text summary, `--output json`, the `--report` page, the table of `--all` and
//! `docs/drills.md`). `--output json` is its serde form, so its field names are a contract.
//!
//! Times in the report are seconds on the simulated cloud's clock, counted from the moment the
//! fault was injected, unless a field says otherwise.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One drill of one scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrillReport {
    /// The scenario's name (`region-outage`, `db-failure`…).
    pub scenario: String,
    /// What the scenario breaks, in a sentence.
    pub description: String,
    /// What happened: the failover runbook's `decision` output (`failover`, `switchover`,
    /// `hold`, `blocked`), or `none` when no trigger started it.
    pub decision: String,
    /// The decisions that are right for this scenario.
    pub decision_expected: Vec<String>,
    /// Whether `decision` is one of `decision_expected`.
    pub decision_right: bool,
    /// Recovery time as the client saw it: its first failed request to its first successful
    /// one after recovery (DNS TTL included), in seconds. `None` when the client never failed.
    pub rto_seconds: Option<f64>,
    /// The sum of the [`critical_path`](Self::critical_path) stages: the part of the recovery
    /// AWS and the clients impose for this scenario with these settings, in seconds. `None` when
    /// the recovery has none to show (the client never failed, or the fault's end brought it).
    pub critical_path_seconds: Option<f64>,
    /// drflow's own share of the recovery (deciding, dispatching, noticing that AWS finished),
    /// the sum of [`engine`](Self::engine), in seconds; RTO = critical path + engine share.
    /// `None` when there is no critical path.
    pub engine_seconds: Option<f64>,
    /// The stages of the critical path, in order.
    pub critical_path: Vec<Stage>,
    /// The parts of the engine's share (`trigger`, `dispatch`, `noticing`), in order; empty
    /// when no failover happened.
    #[serde(default)]
    pub engine: Vec<Stage>,
    /// Data lost, as time: the span of acknowledged writes the new writer does not have, in
    /// seconds (0 when nothing was lost).
    pub rpo_seconds: f64,
    /// Acknowledged writes the new writer does not have.
    pub lost_writes: u64,
    /// Writes the client had acknowledged by the end of the drill.
    pub acked_writes: u64,
    /// The objectives the drill judged against.
    pub objectives: Objectives,
    /// Whether the decision was right and RTO and RPO are within the objectives.
    pub objectives_met: bool,
    /// What happened, in order.
    pub timeline: Vec<TimelineEntry>,
    /// The trigger firing that started the failover, if one did.
    pub trigger: Option<TriggerEvidence>,
    /// The failover run's steps, if it ran.
    pub steps: Vec<StepTiming>,
    /// Every request of the synthetic client, for the chart.
    pub client: Vec<ClientSample>,
    /// The failover run's id, if it ran.
    pub run_id: Option<String>,
    /// The parameters used (provision's, the runbook's and the drill's), secrets redacted.
    pub params: Value,
    /// drflow's version.
    pub version: String,
    /// Wall-clock time the drill took, in milliseconds.
    pub wall_ms: u64,
    /// Simulated time the drill covered, in seconds (from the fault to the end).
    pub virtual_seconds: f64,
}

/// One stage of the critical path, or one part of the engine's share (see `docs/drills.md`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stage {
    /// Critical path: `detection`, `delivery`, `promotion`, `capacity`, `dns`, `clients`.
    /// Engine share: `trigger`, `dispatch`, `noticing`.
    pub name: String,
    /// Its length in seconds.
    pub seconds: f64,
    /// Where the figure comes from (a `SimConfig` field and the AWS document behind it, or the
    /// world's record).
    pub source: String,
}

/// The recovery objectives.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Objectives {
    /// Recovery time objective, in seconds (default 300).
    pub rto_seconds: f64,
    /// Recovery point objective, in seconds (default 60).
    pub rpo_seconds: f64,
}

/// One moment of the drill.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineEntry {
    /// Seconds from the fault (negative before it).
    pub at_seconds: f64,
    /// `fault`, `first_failed_request`, `first_failed_health_check`, `health_check_unhealthy`,
    /// `alarm`, `trigger`, `run_started`, `decision`, `fence`, `promotion_done`,
    /// `capacity_ready`, `dns_changed`, `first_standby_success`, `recovered`, `fault_healed`.
    pub event: String,
    /// What it was, in words.
    pub detail: String,
}

/// The trigger firing that started the failover and the signals behind it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TriggerEvidence {
    /// The trigger's name in `drflow.yaml`.
    pub trigger: String,
    /// When it fired, seconds from the fault.
    pub at_seconds: f64,
    /// `require: N of M` as written.
    pub require: String,
    /// The signals counted.
    pub signals: Vec<SignalEvidence>,
}

/// One signal behind a trigger firing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignalEvidence {
    /// The signal's name in `drflow.yaml`.
    pub signal: String,
    /// The alarm (its name or ARN).
    pub subject: String,
    /// Its state (`ALARM`).
    pub state: String,
    /// When the state began, seconds from the fault.
    pub state_at_seconds: f64,
    /// When its event reached the queue, seconds from the fault.
    pub received_at_seconds: f64,
}

/// One step of the failover run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepTiming {
    /// The step's id.
    pub id: String,
    /// Its type (`rds.promote_global_cluster`…).
    #[serde(rename = "type")]
    pub step_type: String,
    /// `succeeded`, `failed`, `skipped`.
    pub status: String,
    /// Start, seconds from the fault.
    pub start_seconds: f64,
    /// End, seconds from the fault.
    pub end_seconds: f64,
}

/// One request of the synthetic client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientSample {
    /// When it was sent, seconds from the fault.
    pub at_seconds: f64,
    /// Whether it was acknowledged.
    pub ok: bool,
    /// The region DNS sent it to.
    pub region: Option<String>,
}
