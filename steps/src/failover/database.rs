//! The global database: `rds.describe_global_cluster` (who writes, how far behind the standby
//! is) and `rds.promote_global_cluster` (switchover or managed failover, once).

use std::sync::Arc;

use drflow_engine::{Outputs, Registry, StepError, ValueType};
use serde_json::{Value, json};

use super::step::{BodyFuture, FailoverStep, Fx, duration, failover_spec, poll, string};
use crate::backend::{GlobalClusterMember, GlobalClusterStatus};
use crate::regions::AWS_REGION;
use crate::target::LazyBackend;

/// The modes of `rds.promote_global_cluster`.
const MODES: &[&str] = &["switchover", "failover"];

pub(crate) fn register(reg: &mut Registry, backend: &Arc<LazyBackend>) {
    let describe = failover_spec(
        "rds.describe_global_cluster",
        "Reads the Aurora global database (DescribeGlobalClusters): which region holds the \
         writer, whether the primary's cluster can be reached, and how far the standby's \
         secondary is behind, as replication lag and as the writes it does not hold yet (the \
         data a managed failover would lose). Changes nothing.",
    )
    .required(
        "global_cluster_id",
        ValueType::String,
        "The global cluster.",
    )
    .required(
        "primary_region",
        ValueType::String,
        "The region that held the writer until now.",
    )
    .format(AWS_REGION)
    .required(
        "standby_region",
        ValueType::String,
        "The region to promote.",
    )
    .format(AWS_REGION)
    .output("status", ValueType::String, "The global cluster's status.")
    .output(
        "writer_region",
        ValueType::String,
        "Where the writer is (empty when no member writes).",
    )
    .output(
        "writer_in_standby",
        ValueType::Bool,
        "The standby's cluster holds the writer.",
    )
    .output(
        "primary_db_reachable",
        ValueType::Bool,
        "The primary region's cluster is `available`.",
    )
    .output(
        "replication_lag_ms",
        ValueType::Any,
        "The standby's AuroraGlobalDBReplicationLag (null: unknown).",
    )
    .output(
        "data_at_risk_ms",
        ValueType::Any,
        "How many milliseconds of commits the standby does not hold yet: the writer's last \
         commit time minus the standby's last replicated one when both are known, else the \
         replication lag (0 once the standby writes; null: unknown).",
    )
    .output(
        "writes_at_risk",
        ValueType::Any,
        "How many committed writes the standby does not hold yet (null: unknown).",
    )
    .output(
        "writer_last_write_seq",
        ValueType::Any,
        "The last write the writer committed (null: unknown).",
    )
    .output(
        "standby_last_write_seq",
        ValueType::Any,
        "The last write the standby holds (null: unknown).",
    )
    .output(
        "standby_cluster_arn",
        ValueType::String,
        "The standby's member cluster.",
    )
    .output(
        "primary_cluster_arn",
        ValueType::String,
        "The primary's member cluster.",
    );
    reg.register(FailoverStep::boxed(describe, backend, run_describe));

    let promote = failover_spec(
        "rds.promote_global_cluster",
        "Makes the cluster in `target_region` the global database's writer: \
         SwitchoverGlobalCluster (no data loss; both clusters healthy) or FailoverGlobalCluster \
         with AllowDataLoss, then waits on the run's clock until the new writer is available. \
         It reads the cluster first and never promotes twice: when the target already writes \
         it only reports, and when a promotion is under way it only waits. A managed failover \
         is refused, before any call, when the writes not yet replicated are more than \
         `max_data_loss`.",
    )
    .required(
        "global_cluster_id",
        ValueType::String,
        "The global cluster.",
    )
    .required(
        "target_region",
        ValueType::String,
        "The region whose cluster becomes the writer.",
    )
    .format(AWS_REGION)
    .required(
        "mode",
        ValueType::String,
        "`switchover` (planned, no data loss) or `failover` (managed, data loss allowed).",
    )
    .one_of(MODES)
    .optional(
        "max_data_loss",
        ValueType::Duration,
        json!("60s"),
        "A failover is refused when more than this much data is not replicated.",
    )
    .optional(
        "writes_at_risk",
        ValueType::Any,
        Value::Null,
        "What `rds.describe_global_cluster` read before (its `writes_at_risk`): reported as \
         `lost_writes` when this step finds the promotion made or under way already (a resumed \
         run), since the members' positions are reset by the promotion.",
    )
    .optional(
        "data_at_risk_ms",
        ValueType::Any,
        Value::Null,
        "Likewise its `data_at_risk_ms`, reported as `rpo_seconds` then.",
    )
    .optional(
        "timeout",
        ValueType::Duration,
        json!("10m"),
        "How long to wait for the new writer to be available.",
    )
    .at_least(1.0)
    .optional(
        "poll_interval",
        ValueType::Duration,
        json!("5s"),
        "Time between reads while waiting.",
    )
    .at_least(0.1)
    .output(
        "promoted",
        ValueType::Bool,
        "This run asked for the promotion (false: it was done or under way already).",
    )
    .output("mode", ValueType::String, "The mode used.")
    .echoes("mode")
    .output(
        "lost_writes",
        ValueType::Any,
        "Writes committed on the old writer and not replicated at the promotion, from the \
         members' positions (0 for a switchover; when an earlier attempt promoted, the \
         `writes_at_risk` given; null when unknown).",
    )
    .output(
        "rpo_seconds",
        ValueType::Any,
        "The data lost, in seconds of commits (0 for a switchover; null when unknown).",
    )
    .output(
        "writer_available_at_ms",
        ValueType::Int,
        "When the new writer was seen available, on the cloud's clock.",
    );
    reg.register(FailoverStep::boxed(promote, backend, run_promote));
}

/// What the positions of two members say about the data the second does not hold: writes, and
/// milliseconds of commits. `None` where the cloud does not tell (AWS exposes no sequence
/// numbers; the sim does).
pub(crate) fn at_risk(
    writer: &GlobalClusterMember,
    secondary: &GlobalClusterMember,
) -> (Option<u64>, Option<u64>) {
    let writes = match (writer.last_write_seq, secondary.last_write_seq) {
        (Some(w), Some(s)) => Some(w.saturating_sub(s)),
        _ => None,
    };
    let ms = match (writer.last_write_at_ms, secondary.last_write_at_ms) {
        (Some(w), Some(s)) => Some(w.saturating_sub(s)),
        _ => secondary.replication_lag_ms,
    };
    // Nothing unreplicated means nothing at risk, whatever the lag metric last said.
    let ms = if writes == Some(0) { Some(0) } else { ms };
    (writes, ms)
}

fn member<'s>(
    status: &'s GlobalClusterStatus,
    region: &str,
) -> Result<&'s GlobalClusterMember, StepError> {
    status.member_in(region).ok_or_else(|| {
        StepError::permanent(
            "not_found",
            format!(
                "global cluster {} has no member in {region}; its members are in {}",
                status.global_cluster_id,
                status
                    .members
                    .iter()
                    .map(|m| m.region.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    })
}

fn run_describe<'a>(fx: &'a Fx, p: &'a Outputs) -> BodyFuture<'a> {
    Box::pin(async move {
        let id = string(p, "global_cluster_id")?;
        let primary = string(p, "primary_region")?;
        let standby = string(p, "standby_region")?;
        let status = fx.backend.describe_global_cluster(id).await?;
        let p_member = member(&status, primary)?;
        let s_member = member(&status, standby)?;
        let writer = status.writer();
        let writer_in_standby = s_member.is_writer;
        let (writes, ms) = match writer {
            Some(_) if writer_in_standby => (Some(0), Some(0)),
            Some(w) => at_risk(w, s_member),
            None => (None, s_member.replication_lag_ms),
        };
        let mut out = Outputs::new();
        out.insert("status".into(), json!(status.status));
        out.insert(
            "writer_region".into(),
            json!(writer.map(|w| w.region.as_str()).unwrap_or_default()),
        );
        out.insert("writer_in_standby".into(), json!(writer_in_standby));
        out.insert(
            "primary_db_reachable".into(),
            json!(p_member.status == "available"),
        );
        out.insert(
            "replication_lag_ms".into(),
            json!(s_member.replication_lag_ms),
        );
        out.insert("data_at_risk_ms".into(), json!(ms));
        out.insert("writes_at_risk".into(), json!(writes));
        out.insert(
            "writer_last_write_seq".into(),
            json!(writer.and_then(|w| w.last_write_seq)),
        );
        out.insert(
            "standby_last_write_seq".into(),
            json!(s_member.last_write_seq),
        );
        out.insert("standby_cluster_arn".into(), json!(s_member.db_cluster_arn));
        out.insert("primary_cluster_arn".into(), json!(p_member.db_cluster_arn));
        Ok(out)
    })
}

/// The target writes and is available: the promotion is over.
fn promoted(status: &GlobalClusterStatus, region: &str) -> bool {
    status
        .member_in(region)
        .is_some_and(|m| m.is_writer && m.status == "available")
}

fn in_progress(status: &GlobalClusterStatus) -> bool {
    matches!(status.status.as_str(), "switching-over" | "failing-over")
}

fn run_promote<'a>(fx: &'a Fx, p: &'a Outputs) -> BodyFuture<'a> {
    Box::pin(async move {
        let id = string(p, "global_cluster_id")?;
        let region = string(p, "target_region")?;
        let mode = string(p, "mode")?;
        let budget = duration(p, "max_data_loss")?;
        let timeout = duration(p, "timeout")?;
        let interval = duration(p, "poll_interval")?;
        let status = fx.backend.describe_global_cluster(id).await?;
        let target = member(&status, region)?.clone();
        let (mut lost, mut rpo_ms): (Option<u64>, Option<u64>) = (None, None);
        let mut asked = false;
        if target.is_writer || in_progress(&status) {
            // Promoted by an earlier attempt: the positions now are the new writer's, so the
            // figures read before the promotion are the ones that say what was lost.
            if mode == "switchover" {
                (lost, rpo_ms) = (Some(0), Some(0));
            } else {
                lost = p.get("writes_at_risk").and_then(Value::as_u64);
                rpo_ms = p.get("data_at_risk_ms").and_then(Value::as_u64);
            }
        }
        if target.is_writer && !in_progress(&status) {
            tracing::info!(step = %fx.step_id, "{} already writes in {region}: nothing to promote", target.db_cluster_id);
        } else if in_progress(&status) {
            tracing::info!(step = %fx.step_id, "a promotion of {id} is under way ({}): waiting for it, not asking again", status.status);
        } else {
            let writer = status.writer();
            let (writes, ms) = match (writer, mode) {
                (_, "switchover") => (Some(0), Some(0)),
                (Some(w), _) => at_risk(w, &target),
                (None, _) => (None, target.replication_lag_ms),
            };
            if mode == "failover" {
                let budget_ms = budget.as_millis() as u64;
                match ms {
                    Some(ms) if ms <= budget_ms => {}
                    _ => {
                        return Err(StepError::permanent(
                            "blocked",
                            format!(
                                "refusing a managed failover of {id}: {} of commits are not \
                                 replicated to {region}, and at most {} may be lost; nothing \
                                 was promoted. hint: re-run with a larger max_data_loss to \
                                 accept the loss",
                                ms.map_or("an unknown amount".to_string(), |m| format!(
                                    "{} s",
                                    m as f64 / 1000.0
                                )),
                                drflow_engine::format_duration(budget)
                            ),
                        ));
                    }
                }
            }
            let arn = target.db_cluster_arn.clone();
            if mode == "switchover" {
                fx.backend.switchover_global_cluster(id, &arn).await?;
                fx.act(format!(
                    "SwitchoverGlobalCluster {id} to {} ({region}): no data loss",
                    target.db_cluster_id
                ));
            } else {
                fx.backend.failover_global_cluster(id, &arn, true).await?;
                fx.act(format!(
                    "FailoverGlobalCluster {id} to {} ({region}) with AllowDataLoss: {} write(s) \
                     not replicated",
                    target.db_cluster_id,
                    writes.map_or("an unknown number of".to_string(), |w| w.to_string())
                ));
            }
            asked = true;
            lost = writes;
            rpo_ms = ms;
        }
        let done = poll(fx, interval, timeout, || async {
            let s = fx.backend.describe_global_cluster(id).await?;
            if promoted(&s, region) {
                Ok(Some(fx.now_ms().await?))
            } else {
                Ok(None)
            }
        })
        .await?;
        let Some(at) = done else {
            return Err(StepError::retryable(
                "timeout",
                format!(
                    "the writer of {id} was not available in {region} after {}; a retry waits \
                     again and never promotes twice",
                    drflow_engine::format_duration(timeout)
                ),
            ));
        };
        let mut out = Outputs::new();
        out.insert("promoted".into(), json!(asked));
        out.insert("mode".into(), json!(mode));
        out.insert("lost_writes".into(), json!(lost));
        out.insert(
            "rpo_seconds".into(),
            rpo_ms.map_or(Value::Null, |m| json!(m as f64 / 1000.0)),
        );
        out.insert("writer_available_at_ms".into(), json!(at));
        Ok(out)
    })
}
