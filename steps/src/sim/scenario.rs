//! The failure scenarios a drill plays: which faults, when, and what a failover should decide.
//!
//! Each scenario is named after the [`FaultKind`] at its heart. Its faults are computed from a
//! provisioned world (the primary is the writer's region, the standby the other region with a
//! database member) and a start time, so a drill and a test inject exactly the same story.

use super::faults::{Fault, FaultKind};
use super::status::SimStatus;

/// One failure scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scenario {
    /// The primary region goes dark.
    RegionOutage,
    /// The writer's Aurora cluster fails; its region is fine.
    DbFailure,
    /// One zone of the primary region is lost.
    AzLoss,
    /// The application fails on healthy infrastructure.
    AppUnhealthy,
    /// The application flaps, then recovers.
    Flapping,
    /// Replication lags beyond the data-loss budget, then the primary drops out for a while.
    LagSpike,
    /// The regions cannot reach each other.
    Partition,
    /// The primary region goes dark and the standby cannot launch instances.
    CapacityShort,
}

/// How long `flapping` flaps.
pub const FLAPPING_FOR_MS: u64 = 6 * 60_000;
/// How long `lag-spike`'s replication lag lasts.
pub const LAG_SPIKE_FOR_MS: u64 = 10 * 60_000;
/// How long after the lag spike began the primary may drop out at the earliest: by then the
/// standby lacks about two minutes of writes (the spike's lag), beyond the one-minute budget.
pub const LAG_SPIKE_OUTAGE_AFTER_MS: u64 = 120_000;
/// How long `lag-spike`'s primary stays out.
pub const LAG_SPIKE_OUTAGE_FOR_MS: u64 = 200_000;

impl Scenario {
    /// Every scenario, in the order drills list them.
    pub const ALL: &'static [Scenario] = &[
        Scenario::RegionOutage,
        Scenario::DbFailure,
        Scenario::AzLoss,
        Scenario::AppUnhealthy,
        Scenario::Flapping,
        Scenario::LagSpike,
        Scenario::Partition,
        Scenario::CapacityShort,
    ];

    /// The fault kind it is named after.
    pub fn kind(self) -> FaultKind {
        match self {
            Scenario::RegionOutage => FaultKind::RegionOutage,
            Scenario::DbFailure => FaultKind::DbFailure,
            Scenario::AzLoss => FaultKind::AzLoss,
            Scenario::AppUnhealthy => FaultKind::AppUnhealthy,
            Scenario::Flapping => FaultKind::Flapping,
            Scenario::LagSpike => FaultKind::LagSpike,
            Scenario::Partition => FaultKind::Partition,
            Scenario::CapacityShort => FaultKind::CapacityShort,
        }
    }

    /// Its name: the fault kind's (`region-outage`, …).
    pub fn name(self) -> &'static str {
        self.kind().name()
    }

    /// The scenario of that name, if there is one.
    pub fn parse(s: &str) -> Option<Scenario> {
        Scenario::ALL.iter().copied().find(|x| x.name() == s)
    }

    /// One sentence, for docs and `--help`.
    pub fn description(self) -> &'static str {
        match self {
            Scenario::RegionOutage => {
                "The primary region goes dark: application, load balancer, database and APIs."
            }
            Scenario::DbFailure => {
                "The writer's Aurora cluster fails while the rest of the primary region runs."
            }
            Scenario::AzLoss => {
                "One availability zone of the primary region is lost; the primary keeps serving from its other zones."
            }
            Scenario::AppUnhealthy => {
                "The primary's application answers 503 on healthy infrastructure; its database is fine."
            }
            Scenario::Flapping => {
                "The primary's application goes up and down every 40 s for 6 minutes, then recovers."
            }
            Scenario::LagSpike => {
                "Replication lags 2 minutes behind, then the primary region drops out for 3m20s and comes back."
            }
            Scenario::Partition => {
                "The regions cannot reach each other; Route 53's checkers still reach both."
            }
            Scenario::CapacityShort => {
                "The primary region goes dark and the standby cannot launch instances: it serves with what it has."
            }
        }
    }

    /// The faults to inject into a provisioned world for the scenario starting at `at_ms`
    /// (absolute virtual ms): the primary is `world`'s writer region, the standby the other
    /// region holding a database member.
    pub fn faults(self, world: &SimStatus, at_ms: u64) -> Vec<Fault> {
        let primary = world.writer_region.clone();
        let standby = world
            .regions
            .iter()
            .filter(|r| r.database.is_some())
            .map(|r| r.region.clone())
            .find(|r| Some(r) != primary.as_ref());
        let at = |kind: FaultKind| {
            let f = Fault::new(kind).starting_at(at_ms);
            match &primary {
                Some(p) if kind.defaults_to_writer_region() => f.in_region(p.clone()),
                _ => f,
            }
        };
        match self {
            Scenario::RegionOutage
            | Scenario::DbFailure
            | Scenario::AzLoss
            | Scenario::AppUnhealthy
            | Scenario::Partition => vec![at(self.kind())],
            Scenario::Flapping => vec![at(FaultKind::Flapping).lasting(FLAPPING_FOR_MS)],
            Scenario::LagSpike => {
                let outage = lag_spike_outage_at(at_ms);
                let mut down = Fault::new(FaultKind::RegionOutage)
                    .starting_at(outage)
                    .lasting(LAG_SPIKE_OUTAGE_FOR_MS);
                if let Some(p) = &primary {
                    down = down.in_region(p.clone());
                }
                vec![at(FaultKind::LagSpike).lasting(LAG_SPIKE_FOR_MS), down]
            }
            Scenario::CapacityShort => {
                let mut short = Fault::new(FaultKind::CapacityShort).starting_at(at_ms);
                if let Some(s) = standby {
                    short = short.in_region(s);
                }
                vec![short, at(FaultKind::RegionOutage)]
            }
        }
    }

    /// The decisions that are right for it (the `decision` output of `runbooks/failover.yaml`,
    /// or `none` when no run started).
    pub fn expected(self) -> &'static [&'static str] {
        match self {
            Scenario::RegionOutage | Scenario::DbFailure | Scenario::CapacityShort => &["failover"],
            Scenario::AppUnhealthy => &["switchover"],
            Scenario::AzLoss | Scenario::Flapping | Scenario::Partition => &["none", "hold"],
            Scenario::LagSpike => &["blocked"],
        }
    }

    /// How long after the fault a drill watches at most (virtual ms).
    pub fn horizon_ms(self) -> u64 {
        match self {
            Scenario::AzLoss | Scenario::Flapping | Scenario::Partition => 10 * 60_000,
            _ => 15 * 60_000,
        }
    }
}

/// When `lag-spike`'s primary drops out: at least [`LAG_SPIKE_OUTAGE_AFTER_MS`] after the spike
/// began, 40 s before a minute starts. Route 53 sees it fail 28–36 s in, so within the minute
/// that ends 40 s in; the primary's health check alarm (3 of 3 one-minute periods of
/// `HealthCheckStatus`) goes to ALARM 2m40s in, and the outage outlasts it by 40 s, time for
/// the failover to decide while the primary is still down.
pub fn lag_spike_outage_at(at_ms: u64) -> u64 {
    let earliest = at_ms + LAG_SPIKE_OUTAGE_AFTER_MS + 40_000;
    earliest.div_ceil(60_000) * 60_000 - 40_000
}

impl std::fmt::Display for Scenario {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
