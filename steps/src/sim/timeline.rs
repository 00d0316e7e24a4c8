//! The facts a drill reports, recorded by the world's processes as they happen: Route 53's
//! checkers failing and health checks changing, alarms changing state, promotions, capacity,
//! DNS changes and fences. The synthetic client's requests are recorded by [`super::client`].
//!
//! Each list is bounded ([`MAX_FACTS`]): the oldest facts go first, so a world left running for
//! days keeps a file of a bounded size. Times are virtual milliseconds since the Unix epoch.

use serde::{Deserialize, Serialize};

use super::World;
use super::client::ClientRequest;

/// The most facts kept per list: far more than a drill of an hour produces.
pub const MAX_FACTS: usize = 10_000;

/// One health check fact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheckFact {
    /// When: the probe's time, or the verdict's change.
    pub at_ms: u64,
    /// The health check's id.
    pub health_check_id: String,
    /// The health check's name (its `Name` tag).
    pub name: String,
    /// The region of the endpoint it probes (`None`: not a load balancer the world knows).
    pub region: Option<String>,
    /// `first_failed_check`: a checker saw the endpoint fail after every probe before it
    /// passed; `unhealthy` / `healthy`: Route 53's verdict changed (after `Inverted`).
    pub kind: String,
}

/// One alarm state change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlarmFact {
    /// When CloudWatch evaluated it into the new state.
    pub at_ms: u64,
    /// The alarm's region.
    pub region: String,
    /// `AlarmName`.
    pub name: String,
    /// The state it left (`OK`, `ALARM`, `INSUFFICIENT_DATA`).
    pub from: String,
    /// The state it entered.
    pub to: String,
}

/// One promotion of an Aurora secondary (a switchover or a managed failover).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromotionFact {
    /// The global cluster.
    pub global_cluster_id: String,
    /// When the API call was accepted.
    pub requested_at_ms: u64,
    /// When the target became the writer (`None`: not yet, or it never did because the target
    /// was lost meanwhile).
    pub done_at_ms: Option<u64>,
    /// `switchover` or `failover`.
    pub kind: String,
    /// The region losing the writer.
    pub from_region: String,
    /// The region getting it.
    pub to_region: String,
    /// Committed writes the target lacked and that are gone (0 for a switchover).
    pub lost_writes: u64,
    /// The database sequence numbers of those writes, first and last.
    pub lost_seq: Option<(u64, u64)>,
}

/// One request for capacity: an Auto Scaling group's desired capacity raised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapacityFact {
    /// The group's name.
    pub group: String,
    /// Its region.
    pub region: String,
    /// The desired capacity asked for.
    pub desired: u32,
    /// When it was asked for.
    pub requested_at_ms: u64,
    /// When at least `desired` instances were in service (`None`: not yet).
    pub ready_at_ms: Option<u64>,
}

/// One DNS change: a `ChangeResourceRecordSets`, or a health check inverted (which is what
/// moves failover records).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsChangeFact {
    /// The change's id (`C…`), or `inverted:<health check id>`.
    pub change_id: String,
    /// When it was submitted.
    pub submitted_at_ms: u64,
    /// When every name server answers with it (`INSYNC`); an inversion takes effect at once.
    pub insync_at_ms: u64,
    /// What changed, in words.
    pub records: String,
}

/// One fence: a region stopped from taking orders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FenceFact {
    /// When.
    pub at_ms: u64,
    /// The region fenced.
    pub region: String,
    /// `scale_to_zero` (an Auto Scaling group set to 0) or `deregister_targets`.
    pub how: String,
}

/// What the synthetic client's writes became.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteFacts {
    /// How many of the client's writes were acknowledged.
    pub acked: u64,
    /// The client's sequence number of the last acknowledged write.
    pub last_acked_seq: Option<u64>,
    /// Every acknowledged write: (client sequence number, when it was acknowledged).
    pub acked_by_seq_time: Vec<(u64, u64)>,
    /// The region holding the writer now.
    pub writer_region: Option<String>,
    /// The last acknowledged client write the writer holds.
    pub writer_has_up_to_seq: Option<u64>,
    /// The client sequence numbers of acknowledged writes the writer does not have (lost by a
    /// managed failover), in order.
    pub lost: Vec<u64>,
}

/// Everything the world recorded since a time that a drill reports.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorldTimeline {
    /// The synthetic client's requests.
    pub client: Vec<ClientRequest>,
    /// Health check facts.
    pub health_checks: Vec<HealthCheckFact>,
    /// Alarm state changes.
    pub alarms: Vec<AlarmFact>,
    /// Promotions (requested in the span, or done in it).
    pub promotions: Vec<PromotionFact>,
    /// Capacity requests (made in the span, or ready in it).
    pub capacity: Vec<CapacityFact>,
    /// DNS changes (submitted in the span, or in sync in it).
    pub dns_changes: Vec<DnsChangeFact>,
    /// Fences.
    pub fences: Vec<FenceFact>,
    /// The client's writes, over the whole run of the client.
    pub writes: WriteFacts,
}

/// The facts as the world keeps them (the world's `timeline` field).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TimelineLog {
    /// Health check facts.
    #[serde(default)]
    pub health_checks: Vec<HealthCheckFact>,
    /// Alarm state changes.
    #[serde(default)]
    pub alarms: Vec<AlarmFact>,
    /// Promotions.
    #[serde(default)]
    pub promotions: Vec<PromotionFact>,
    /// Capacity requests.
    #[serde(default)]
    pub capacity: Vec<CapacityFact>,
    /// DNS changes.
    #[serde(default)]
    pub dns_changes: Vec<DnsChangeFact>,
    /// Fences.
    #[serde(default)]
    pub fences: Vec<FenceFact>,
}

/// Appends `fact`, dropping the oldest beyond `max`.
pub(crate) fn push_bounded<T>(list: &mut Vec<T>, fact: T, max: usize) {
    list.push(fact);
    if list.len() > max {
        let excess = list.len() - max;
        list.drain(..excess);
    }
}

impl TimelineLog {
    /// Records a capacity request.
    pub fn capacity_requested(&mut self, region: &str, group: &str, desired: u32, at_ms: u64) {
        push_bounded(
            &mut self.capacity,
            CapacityFact {
                group: group.into(),
                region: region.into(),
                desired,
                requested_at_ms: at_ms,
                ready_at_ms: None,
            },
            MAX_FACTS,
        );
    }
}

impl World {
    /// Marks the pending capacity requests that are met now: at least `desired` instances in
    /// service in their group. Called by Auto Scaling whenever an instance changes.
    pub(crate) fn check_capacity_ready(&mut self) {
        let now = self.clock_ms;
        let pending: Vec<usize> = self
            .timeline
            .capacity
            .iter()
            .enumerate()
            .filter(|(_, c)| c.ready_at_ms.is_none())
            .map(|(i, _)| i)
            .collect();
        for i in pending {
            let c = &self.timeline.capacity[i];
            let in_service = super::autoscaling::group_capacity(self, &c.region, &c.group)
                .map_or(0, |g| g.in_service);
            if in_service >= c.desired {
                self.timeline.capacity[i].ready_at_ms = Some(now);
            }
        }
    }

    /// Everything recorded since `since_ms` (see [`WorldTimeline`]).
    pub fn timeline_since(&self, since_ms: u64) -> WorldTimeline {
        let t = &self.timeline;
        let from = |at: u64| at >= since_ms;
        WorldTimeline {
            client: self
                .client
                .as_ref()
                .map(|c| {
                    c.requests
                        .iter()
                        .filter(|r| from(r.at_ms))
                        .cloned()
                        .collect()
                })
                .unwrap_or_default(),
            health_checks: t
                .health_checks
                .iter()
                .filter(|f| from(f.at_ms))
                .cloned()
                .collect(),
            alarms: t.alarms.iter().filter(|f| from(f.at_ms)).cloned().collect(),
            promotions: t
                .promotions
                .iter()
                .filter(|f| from(f.requested_at_ms) || f.done_at_ms.is_some_and(from))
                .cloned()
                .collect(),
            capacity: t
                .capacity
                .iter()
                .filter(|f| from(f.requested_at_ms) || f.ready_at_ms.is_some_and(from))
                .cloned()
                .collect(),
            dns_changes: t
                .dns_changes
                .iter()
                .filter(|f| from(f.submitted_at_ms) || from(f.insync_at_ms))
                .cloned()
                .collect(),
            fences: t.fences.iter().filter(|f| from(f.at_ms)).cloned().collect(),
            writes: super::client::write_facts(self),
        }
    }
}
