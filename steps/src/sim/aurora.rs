//! Aurora Global Database: a stream of committed writes with sequence numbers, replicated to
//! each secondary after the replication lag, and the two ways to move the writer.
//!
//! - The trading application commits a write on the writer every
//!   [`SimConfig::app_write_interval_ms`](super::SimConfig::app_write_interval_ms) while it
//!   serves ([`super::app`]): sequence numbers only grow, never reused. While the synthetic
//!   client runs ([`super::client`]), its acknowledged writes are the only ones
//!   ([`commit_client_write`]), each carrying the client's sequence number too.
//! - A secondary applies a write [`aurora_replication_lag_ms`](super::SimConfig) after its
//!   commit ([`lag_spike_ms`](super::SimConfig) during a `lag-spike`), while it can reach the
//!   writer (no outage on either side, no partition).
//! - `AuroraGlobalDBReplicationLag` is published in each secondary's region every
//!   [`aurora_lag_metric_period_ms`](super::SimConfig): the commit time of the writer's last
//!   write minus that of the secondary's last applied write, i.e. how much data a failover
//!   now would lose. It stays small when the writer stops writing (an outage) and grows while
//!   replication is stuck (a lag spike, a partition).
//! - Switchover: refused unless every member is available and reachable; writes stop, the
//!   target catches up (RPO 0) and becomes the writer after `aurora_switchover_ms`.
//! - Managed failover (`allow_data_loss`): the target is promoted from what it has applied;
//!   every write it lacks is lost (counted in `lost`); done after `aurora_managed_failover_ms`.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::World;
use super::agenda::Event;
use super::faults::FaultKind;
use super::process::Process;
use super::timeline::{MAX_FACTS, PromotionFact, push_bounded};
use crate::backend::{
    CloudError, ErrorKind, GLOBAL, GlobalClusterMember, GlobalClusterStatus, Kind, ResourceState,
    Tags, not_found,
};

const NAME: &str = "aurora";

/// The most writes kept for secondaries that lag: an hour at 10 writes a second. Bounds the
/// world file during a long outage or partition.
pub const MAX_LOG: usize = 36_000;

/// One committed write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Write {
    /// Its sequence number.
    pub seq: u64,
    /// When the writer committed it.
    pub at_ms: u64,
    /// The synthetic client's sequence number, for a client's write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_seq: Option<u64>,
}

/// One member cluster's replication position.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Member {
    /// The cluster identifier.
    pub cluster_id: String,
    /// The cluster's ARN.
    pub arn: String,
    /// The last write it holds (committed, for the writer; applied, for a secondary).
    pub applied_seq: u64,
    /// When that write was committed on the writer.
    pub applied_at_ms: Option<u64>,
    /// `AuroraGlobalDBReplicationLag` as last published (secondaries), milliseconds.
    pub published_lag_ms: Option<u64>,
}

/// A writer move in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operation {
    /// `switchover` or `failover`.
    pub kind: String,
    /// The region losing the writer.
    pub from_region: String,
    /// The region being promoted.
    pub to_region: String,
    /// When it started.
    pub started_at_ms: u64,
    /// When it completes.
    pub done_at_ms: u64,
}

/// Writes lost by a managed failover.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LostWrites {
    /// When the failover started.
    pub at_ms: u64,
    /// How many writes the new writer never received.
    pub count: u64,
    /// The first and last lost sequence numbers.
    pub first_seq: u64,
    /// See `first_seq`.
    pub last_seq: u64,
}

/// One global database.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GlobalDb {
    /// The region holding the writer.
    pub writer_region: Option<String>,
    /// Members by region.
    pub members: BTreeMap<String, Member>,
    /// The last sequence number handed out (never reused, even for lost writes).
    pub last_seq: u64,
    /// When the next steady write is due, while writes flow.
    pub next_write_at_ms: Option<u64>,
    /// Committed writes some secondary has not applied yet, oldest first: at most
    /// [`MAX_LOG`], so a secondary cut off for longer is rebuilt (skips ahead) on its return.
    pub log: VecDeque<Write>,
    /// The first sequence number the current writer committed: sequence numbers are
    /// contiguous from there, so what a member lacks is counted without the log.
    #[serde(default)]
    pub epoch_first_seq: u64,
    /// A switchover or failover in progress.
    pub operation: Option<Operation>,
    /// Writes lost by managed failovers, oldest first.
    pub lost: Vec<LostWrites>,
}

impl GlobalDb {
    fn writer(&self) -> Option<&Member> {
        self.members.get(self.writer_region.as_deref()?)
    }
}

/// Aurora replication, the write stream and writer moves.
pub struct Replication;

impl Process for Replication {
    fn name(&self) -> &'static str {
        NAME
    }

    fn sync(&self, world: &mut World) {
        let globals: Vec<String> = world
            .list(Some(GLOBAL), Some(Kind::GlobalCluster))
            .into_iter()
            .map(|g| g.id)
            .collect();
        world.aurora.retain(|id, _| globals.contains(id));
        for id in globals {
            let members: Vec<(String, String, String, bool)> = world
                .list(None, Some(Kind::DbCluster))
                .into_iter()
                .filter(|c| {
                    c.spec
                        .get("global_cluster_identifier")
                        .and_then(Value::as_str)
                        == Some(id.as_str())
                })
                .map(|c| {
                    let primary =
                        c.spec.get("global_role").and_then(Value::as_str) == Some("primary");
                    (c.region, c.id, c.arn, primary)
                })
                .collect();
            let db = world.aurora.entry(id.clone()).or_default();
            db.members
                .retain(|region, _| members.iter().any(|m| &m.0 == region));
            for (region, cluster_id, arn, primary) in members {
                let m = db.members.entry(region.clone()).or_default();
                m.cluster_id = cluster_id;
                m.arn = arn;
                if primary && db.writer_region.is_none() {
                    db.writer_region = Some(region);
                }
            }
            if db
                .writer_region
                .as_ref()
                .is_some_and(|w| !db.members.contains_key(w))
            {
                db.writer_region = None;
            }
            if !world.agenda.has(NAME, &id, "publish-lag") {
                let period = world.config.aurora_lag_metric_period_ms.max(1);
                let next = (world.clock_ms / period + 1) * period;
                world.schedule(next, NAME, &id, "publish-lag", Value::Null);
            }
        }
    }

    fn accrue(&self, world: &mut World, to_ms: u64) {
        let ids: Vec<String> = world.aurora.keys().cloned().collect();
        for id in ids {
            accrue_db(world, &id, to_ms);
        }
    }

    fn handle(&self, world: &mut World, event: &Event) {
        match event.what.as_str() {
            "publish-lag" => {
                if !world.aurora.contains_key(&event.target) {
                    // Deleted: its periodic event ends here.
                    return;
                }
                publish_lag(world, &event.target);
                let period = world.config.aurora_lag_metric_period_ms.max(1);
                let next = world.clock_ms + period;
                world.schedule(next, NAME, &event.target, "publish-lag", Value::Null);
            }
            "operation-done" => complete_operation(world, &event.target),
            _ => {}
        }
    }
}

/// The status of the member cluster in `region` now: `available`, `inaccessible` (its region
/// is down), `failed` (a `db-failure`), `creating`, or the operation in progress.
pub fn member_status(world: &World, db: &GlobalDb, region: &str) -> String {
    let Some(m) = db.members.get(region) else {
        return "deleted".into();
    };
    if world.region_down(region) {
        return "inaccessible".into();
    }
    if world.fault_active(FaultKind::DbFailure, region) {
        return "failed".into();
    }
    let creating = world
        .get(region, Kind::DbCluster, &m.cluster_id)
        .is_ok_and(|r| r.resource.state == ResourceState::Creating);
    if creating {
        return "creating".into();
    }
    match &db.operation {
        Some(op) if op.to_region == region || op.from_region == region => {
            if op.kind == "switchover" {
                "switching-over".into()
            } else {
                "failing-over".into()
            }
        }
        _ => "available".into(),
    }
}

/// Whether the application in `region` can use the writer of the global database its region
/// belongs to: the writer is available and reachable from `region`. `None` when `region` has
/// no member of any global database.
pub fn writer_reachable_from(world: &World, region: &str) -> Option<bool> {
    let db = world
        .aurora
        .values()
        .find(|db| db.members.contains_key(region))?;
    let Some(writer) = db.writer_region.as_deref() else {
        return Some(false);
    };
    Some(
        db.operation.is_none()
            && member_status(world, db, writer) == "available"
            && world.reachable(region, writer),
    )
}

/// Whether the application in `region` can read from its own region's member cluster: it is
/// `available`, or being promoted or demoted (its readers keep serving while the writer
/// moves; only writes wait for the move to end).
pub fn local_member_available(world: &World, region: &str) -> bool {
    world
        .aurora
        .values()
        .find(|db| db.members.contains_key(region))
        .is_some_and(|db| {
            matches!(
                member_status(world, db, region).as_str(),
                "available" | "switching-over" | "failing-over"
            )
        })
}

/// Commits one write of the synthetic client, sent to the application in `region`, on the
/// writer of the global database that region belongs to: the writer must be available and
/// reachable from `region` (as [`writer_reachable_from`] says). Returns the writer's region and
/// the write's database sequence number; `None` when it cannot be committed.
pub fn commit_client_write(
    world: &mut World,
    region: &str,
    client_seq: u64,
) -> Option<(String, u64)> {
    if writer_reachable_from(world, region) != Some(true) {
        return None;
    }
    let now = world.clock_ms;
    let db = world
        .aurora
        .values_mut()
        .find(|db| db.members.contains_key(region))?;
    let writer = db.writer_region.clone()?;
    db.last_seq += 1;
    let w = Write {
        seq: db.last_seq,
        at_ms: now,
        client_seq: Some(client_seq),
    };
    if db.members.len() > 1 {
        db.log.push_back(w);
        if db.log.len() > MAX_LOG {
            db.log.pop_front();
        }
    }
    if let Some(m) = db.members.get_mut(&writer) {
        m.applied_seq = w.seq;
        m.applied_at_ms = Some(w.at_ms);
    }
    Some((writer, w.seq))
}

fn replication_lag_setting(world: &World, region: &str) -> u64 {
    if world.fault_active(FaultKind::LagSpike, region) {
        world.config.lag_spike_ms
    } else {
        world.config.aurora_replication_lag_ms
    }
}

fn accrue_db(world: &mut World, id: &str, to_ms: u64) {
    let now = world.clock_ms;
    let Some(db) = world.aurora.get(id) else {
        return;
    };
    let Some(writer_region) = db.writer_region.clone() else {
        return;
    };
    // Writes flow while the application in the writer's region serves and reaches the writer,
    // and no synthetic client runs: its writes then are the only ones (see `super::client`).
    let flowing = !world.client_running()
        && db.operation.is_none()
        && member_status(world, db, &writer_region) == "available"
        && super::app::serving(world, &writer_region);
    let secondaries: Vec<(String, bool, u64)> = db
        .members
        .keys()
        .filter(|r| **r != writer_region)
        .map(|r| {
            let replicating = db.operation.is_none()
                && member_status(world, db, r) == "available"
                && world.reachable(r, &writer_region);
            (r.clone(), replicating, replication_lag_setting(world, r))
        })
        .collect();
    let interval = world.config.app_write_interval_ms.max(1);
    let Some(db) = world.aurora.get_mut(id) else {
        return;
    };
    if flowing {
        let mut next = db.next_write_at_ms.unwrap_or(now + interval).max(now);
        while next <= to_ms {
            db.last_seq += 1;
            let w = Write {
                seq: db.last_seq,
                at_ms: next,
                client_seq: None,
            };
            if !secondaries.is_empty() {
                db.log.push_back(w);
                if db.log.len() > MAX_LOG {
                    db.log.pop_front();
                }
            }
            if let Some(m) = db.members.get_mut(&writer_region) {
                m.applied_seq = w.seq;
                m.applied_at_ms = Some(w.at_ms);
            }
            next += interval;
        }
        db.next_write_at_ms = Some(next);
    } else {
        db.next_write_at_ms = None;
    }
    for (region, replicating, lag) in &secondaries {
        if !replicating {
            continue;
        }
        let horizon = to_ms.saturating_sub(*lag);
        let Some(m) = db.members.get_mut(region) else {
            continue;
        };
        let have = m.applied_seq;
        if let Some(w) = db
            .log
            .iter()
            .filter(|w| w.seq > have)
            .take_while(|w| w.at_ms <= horizon)
            .last()
        {
            m.applied_seq = w.seq;
            m.applied_at_ms = Some(w.at_ms);
        }
    }
    let oldest_needed = db
        .members
        .iter()
        .filter(|(r, _)| **r != writer_region)
        .map(|(_, m)| m.applied_seq)
        .min()
        .unwrap_or(u64::MAX);
    while db.log.front().is_some_and(|w| w.seq <= oldest_needed) {
        db.log.pop_front();
    }
}

/// How much data the member in `region` lacks, in milliseconds of commits: the commit time of
/// the writer's last write minus that of the member's last applied write (0 when it has
/// everything).
pub fn data_lag_ms(db: &GlobalDb, region: &str) -> Option<u64> {
    let writer = db.writer()?;
    let m = db.members.get(region)?;
    if m.applied_seq >= writer.applied_seq {
        return Some(0);
    }
    let last = writer.applied_at_ms?;
    let since = match m.applied_at_ms {
        Some(a) => a,
        None => db.log.front().map_or(last, |w| w.at_ms),
    };
    Some(last.saturating_sub(since))
}

fn publish_lag(world: &mut World, id: &str) {
    let Some(db) = world.aurora.get(id) else {
        return;
    };
    let Some(writer) = db.writer_region.clone() else {
        return;
    };
    let now = world.clock_ms;
    let samples: Vec<(String, String, u64)> = db
        .members
        .iter()
        .filter(|(r, _)| **r != writer && !world.region_down(r))
        .filter_map(|(r, m)| Some((r.clone(), m.cluster_id.clone(), data_lag_ms(db, r)?)))
        .collect();
    for (region, cluster, lag) in samples {
        if let Some(m) = world
            .aurora
            .get_mut(id)
            .and_then(|db| db.members.get_mut(&region))
        {
            m.published_lag_ms = Some(lag);
        }
        let mut dims = Tags::new();
        dims.insert("DBClusterIdentifier".into(), cluster);
        super::cloudwatch::put_metric_data(
            world,
            &region,
            "AWS/RDS",
            "AuroraGlobalDBReplicationLag",
            &dims,
            now,
            lag as f64,
        );
    }
}

fn complete_operation(world: &mut World, id: &str) {
    let Some(db) = world.aurora.get(id) else {
        return;
    };
    let Some(op) = db.operation.clone() else {
        return;
    };
    let to_ok = !world.region_down(&op.to_region)
        && !world.fault_active(FaultKind::DbFailure, &op.to_region);
    if to_ok
        && let Some(p) = world.timeline.promotions.iter_mut().rev().find(|p| {
            p.global_cluster_id == id
                && p.requested_at_ms == op.started_at_ms
                && p.done_at_ms.is_none()
        })
    {
        p.done_at_ms = Some(world.clock_ms);
    }
    let db = world.aurora.get_mut(id).expect("checked above");
    db.operation = None;
    if !to_ok {
        // The target was lost meanwhile: the writer stays where it was.
        return;
    }
    if op.kind == "switchover" {
        // Writes stopped at the start and the target caught up: nothing is lost.
        let last = db.members.get(&op.from_region).cloned().unwrap_or_default();
        if let Some(t) = db.members.get_mut(&op.to_region) {
            t.applied_seq = last.applied_seq;
            t.applied_at_ms = last.applied_at_ms;
        }
        db.log.clear();
    }
    db.writer_region = Some(op.to_region.clone());
    db.next_write_at_ms = None;
    db.epoch_first_seq = db.last_seq + 1;
    // Every other member restarts from the new writer's position (the old writer is rebuilt
    // as a secondary: what it had beyond that is gone).
    let pos = db.members.get(&op.to_region).cloned().unwrap_or_default();
    for (r, m) in db.members.iter_mut() {
        if *r != op.to_region {
            m.applied_seq = pos.applied_seq;
            m.applied_at_ms = pos.applied_at_ms;
            m.published_lag_ms = None;
        }
    }
    db.log.clear();
    world.changed();
}

fn find_db<'w>(world: &'w World, id: &str) -> Result<&'w GlobalDb, CloudError> {
    world
        .aurora
        .get(id)
        .ok_or_else(|| not_found("global cluster", id))
}

fn target_region(db: &GlobalDb, id: &str, target_arn: &str) -> Result<String, CloudError> {
    db.members
        .iter()
        .find(|(_, m)| m.arn == target_arn || m.cluster_id == target_arn)
        .map(|(r, _)| r.clone())
        .ok_or_else(|| {
            CloudError::new(
                ErrorKind::InvalidInput,
                format!("{target_arn} is not a member of global cluster {id}"),
            )
        })
}

/// `DescribeGlobalClusters` for one global cluster.
pub fn describe(world: &World, id: &str) -> Result<GlobalClusterStatus, CloudError> {
    let db = find_db(world, id)?;
    let status = match &db.operation {
        Some(op) if op.kind == "switchover" => "switching-over",
        Some(_) => "failing-over",
        None => "available",
    };
    let mut members: Vec<GlobalClusterMember> = db
        .members
        .iter()
        .map(|(region, m)| {
            let is_writer = db.writer_region.as_deref() == Some(region.as_str());
            GlobalClusterMember {
                db_cluster_arn: m.arn.clone(),
                db_cluster_id: m.cluster_id.clone(),
                region: region.clone(),
                is_writer,
                status: member_status(world, db, region),
                replication_lag_ms: if is_writer { None } else { m.published_lag_ms },
                last_write_seq: Some(m.applied_seq),
                last_write_at_ms: m.applied_at_ms,
            }
        })
        .collect();
    members.sort_by_key(|m| !m.is_writer);
    Ok(GlobalClusterStatus {
        global_cluster_id: id.to_string(),
        status: status.into(),
        members,
    })
}

fn start_operation(
    world: &mut World,
    id: &str,
    kind: &str,
    to_region: String,
) -> Result<GlobalClusterStatus, CloudError> {
    let now = world.clock_ms;
    let duration = if kind == "switchover" {
        world.config.aurora_switchover_ms
    } else {
        world.config.aurora_managed_failover_ms
    };
    let db = world.aurora.get_mut(id).expect("checked by the caller");
    let from_region = db.writer_region.clone().unwrap_or_default();
    let lost_before = db.lost.len();
    if kind == "failover" {
        // The target is promoted from what it holds now: every write of the current writer's
        // it lacks is lost.
        let have = db.members.get(&to_region).map_or(0, |m| m.applied_seq);
        let writer_seq = db.members.get(&from_region).map_or(0, |m| m.applied_seq);
        let first = (have + 1).max(db.epoch_first_seq.max(1));
        if writer_seq >= first {
            db.lost.push(LostWrites {
                at_ms: now,
                count: writer_seq - first + 1,
                first_seq: first,
                last_seq: writer_seq,
            });
        }
    }
    let lost = db.lost.get(lost_before).cloned();
    db.operation = Some(Operation {
        kind: kind.into(),
        from_region: from_region.clone(),
        to_region: to_region.clone(),
        started_at_ms: now,
        done_at_ms: now + duration,
    });
    push_bounded(
        &mut world.timeline.promotions,
        PromotionFact {
            global_cluster_id: id.to_string(),
            requested_at_ms: now,
            done_at_ms: None,
            kind: kind.into(),
            from_region,
            to_region,
            lost_writes: lost.as_ref().map_or(0, |l| l.count),
            lost_seq: lost.map(|l| (l.first_seq, l.last_seq)),
        },
        MAX_FACTS,
    );
    world.schedule(now + duration, NAME, id, "operation-done", Value::Null);
    world.changed();
    describe(world, id)
}

/// `SwitchoverGlobalCluster`: refused unless every member is available and the two regions
/// reach each other.
pub fn switchover(
    world: &mut World,
    id: &str,
    target_arn: &str,
) -> Result<GlobalClusterStatus, CloudError> {
    let db = find_db(world, id)?;
    let to = target_region(db, id, target_arn)?;
    check_idle(db, id)?;
    let writer = db.writer_region.clone().unwrap_or_default();
    if writer == to {
        return Err(CloudError::new(
            ErrorKind::InvalidInput,
            format!("{target_arn} is already the writer of {id}"),
        ));
    }
    if let Some((r, s)) = db
        .members
        .keys()
        .map(|r| (r, member_status(world, db, r)))
        .find(|(_, s)| s != "available")
    {
        return Err(CloudError::new(
            ErrorKind::NotReady,
            format!(
                "switchover of {id} refused: the member in {r} is {s} (a switchover needs every member healthy; a failover with allow_data_loss does not)"
            ),
        ));
    }
    if !world.reachable(&to, &writer) {
        return Err(CloudError::new(
            ErrorKind::NotReady,
            format!("switchover of {id} refused: {to} cannot reach the writer in {writer}"),
        ));
    }
    start_operation(world, id, "switchover", to)
}

/// `FailoverGlobalCluster`. Without `allow_data_loss` it is a switchover.
pub fn failover(
    world: &mut World,
    id: &str,
    target_arn: &str,
    allow_data_loss: bool,
) -> Result<GlobalClusterStatus, CloudError> {
    if !allow_data_loss {
        return switchover(world, id, target_arn);
    }
    let db = find_db(world, id)?;
    let to = target_region(db, id, target_arn)?;
    check_idle(db, id)?;
    if db.writer_region.as_deref() == Some(to.as_str()) {
        return Err(CloudError::new(
            ErrorKind::InvalidInput,
            format!("{target_arn} is already the writer of {id}"),
        ));
    }
    let status = member_status(world, db, &to);
    if status != "available" {
        return Err(CloudError::new(
            ErrorKind::NotReady,
            format!("failover of {id} refused: the target in {to} is {status}"),
        ));
    }
    start_operation(world, id, "failover", to)
}

fn check_idle(db: &GlobalDb, id: &str) -> Result<(), CloudError> {
    match &db.operation {
        Some(op) => Err(CloudError::new(
            ErrorKind::NotReady,
            format!(
                "global cluster {id} is already {} to {}",
                if op.kind == "switchover" {
                    "switching over"
                } else {
                    "failing over"
                },
                op.to_region
            ),
        )),
        None => Ok(()),
    }
}
