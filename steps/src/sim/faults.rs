//! Faults: what can go wrong in the simulated cloud, when, where and for how long.
//!
//! A [`Fault`] is injected through [`super::SimBackend::inject`] (tests, the drill) or
//! `drflow sim fault`. It starts at `at_ms` (now when `None`) and lasts `for_ms` (until healed
//! when `None`). Its start and end are events on the agenda, so processes see it begin and end
//! at the exact virtual time; every process reads the faults active now through the queries on
//! [`super::World`] (`region_down`, `reachable`, `app_fault`…), never the list itself.

use drflow_engine::nearest;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::backend::CloudError;

/// The kinds of fault the sim can inject. CLI names in kebab-case (`region-outage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// The whole region is unreachable: its application, load balancers, database and APIs.
    /// Route 53 (global) keeps working and sees the region's endpoints fail.
    RegionOutage,
    /// The Aurora writer cluster fails (the primary database); the region is otherwise fine.
    DbFailure,
    /// One availability zone is lost: its instances fail and Auto Scaling replaces them in the
    /// other zones.
    AzLoss,
    /// The trading application answers its health endpoint with an error while the
    /// infrastructure (instances, load balancer, database) is fine.
    AppUnhealthy,
    /// The application goes down and up again on a period ([`super::SimConfig::flapping_period_ms`]),
    /// down first.
    Flapping,
    /// Aurora Global Database replication falls behind to
    /// [`super::SimConfig::lag_spike_ms`].
    LagSpike,
    /// Launches fail with `InsufficientInstanceCapacity` (cold and from the warm pool).
    CapacityShort,
    /// The regions cannot reach each other (each sees the other as down, replication stops);
    /// Route 53's checkers, which probe from the internet, still reach both.
    Partition,
}

impl FaultKind {
    /// Every kind, in the order the CLI lists them.
    pub const ALL: &'static [FaultKind] = &[
        FaultKind::RegionOutage,
        FaultKind::DbFailure,
        FaultKind::AzLoss,
        FaultKind::AppUnhealthy,
        FaultKind::Flapping,
        FaultKind::LagSpike,
        FaultKind::CapacityShort,
        FaultKind::Partition,
    ];

    /// The CLI name: `region-outage`, `db-failure`…
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::RegionOutage => "region-outage",
            FaultKind::DbFailure => "db-failure",
            FaultKind::AzLoss => "az-loss",
            FaultKind::AppUnhealthy => "app-unhealthy",
            FaultKind::Flapping => "flapping",
            FaultKind::LagSpike => "lag-spike",
            FaultKind::CapacityShort => "capacity-short",
            FaultKind::Partition => "partition",
        }
    }

    /// Whether a fault of this kind without `--region` means the region that holds the
    /// database writer (the primary); the others then mean every region.
    pub fn defaults_to_writer_region(self) -> bool {
        matches!(
            self,
            FaultKind::RegionOutage
                | FaultKind::DbFailure
                | FaultKind::AzLoss
                | FaultKind::AppUnhealthy
                | FaultKind::Flapping
        )
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for FaultKind {
    type Err = FaultError;

    fn from_str(s: &str) -> Result<FaultKind, FaultError> {
        let wanted = s.trim().to_ascii_lowercase().replace('_', "-");
        FaultKind::ALL
            .iter()
            .copied()
            .find(|k| k.name() == wanted)
            .ok_or_else(|| FaultError::UnknownKind {
                given: s.to_string(),
                suggestion: nearest(&wanted, FaultKind::ALL.iter().map(|k| k.name()))
                    .map(str::to_string),
            })
    }
}

/// A fault to inject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    /// What goes wrong.
    pub kind: FaultKind,
    /// Where: a region name. `None`: the writer's region for the kinds that
    /// [default to it](FaultKind::defaults_to_writer_region), every region for the others.
    pub region: Option<String>,
    /// For `az-loss`: the zone (`None`: the region's first zone). Refused for other kinds.
    pub az: Option<String>,
    /// When it starts, in absolute virtual milliseconds since the Unix epoch; `None` = now.
    /// A time before now is refused.
    pub at_ms: Option<u64>,
    /// How long it lasts; `None` = until healed.
    pub for_ms: Option<u64>,
}

impl Fault {
    /// A fault of `kind` with every option at its default: now, until healed, default region.
    pub fn new(kind: FaultKind) -> Fault {
        Fault {
            kind,
            region: None,
            az: None,
            at_ms: None,
            for_ms: None,
        }
    }

    /// The same fault in `region`.
    pub fn in_region(mut self, region: impl Into<String>) -> Fault {
        self.region = Some(region.into());
        self
    }

    /// The same fault lasting `for_ms`.
    pub fn lasting(mut self, for_ms: u64) -> Fault {
        self.for_ms = Some(for_ms);
        self
    }

    /// The same fault starting at `at_ms` (absolute virtual time).
    pub fn starting_at(mut self, at_ms: u64) -> Fault {
        self.at_ms = Some(at_ms);
        self
    }
}

/// The id the sim gives an injected fault (1, 2, …).
pub type FaultId = u64;

/// A fault as the world holds it: resolved region and zone, absolute start and end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveFault {
    /// Its id.
    pub id: FaultId,
    /// What goes wrong.
    pub kind: FaultKind,
    /// The region it hits; `None`: every region.
    pub region: Option<String>,
    /// The zone, for `az-loss`.
    pub az: Option<String>,
    /// When it starts.
    pub start_ms: u64,
    /// When it ends by itself, if it does.
    pub end_ms: Option<u64>,
}

impl ActiveFault {
    /// Whether it is in force at `t_ms`.
    pub fn active_at(&self, t_ms: u64) -> bool {
        self.start_ms <= t_ms && self.end_ms.is_none_or(|e| t_ms < e)
    }

    /// Whether it hits `region`.
    pub fn hits(&self, region: &str) -> bool {
        self.region.as_deref().is_none_or(|r| r == region)
    }
}

/// The faults of a world: pending, active, and the next id.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Faults {
    /// Faults not yet over, in injection order. One that ends (by `for_ms` or a heal) is
    /// removed.
    pub list: Vec<ActiveFault>,
    /// The last id handed out.
    pub last_id: FaultId,
}

/// A fault the sim refuses, or a failure to apply one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FaultError {
    /// Not one of the kinds.
    #[error("unknown fault kind {given:?}")]
    UnknownKind {
        /// What was given.
        given: String,
        /// The nearest kind, if one is near.
        suggestion: Option<String>,
    },
    /// The world has nothing in it yet.
    #[error("the simulated cloud is empty: there is nothing to break")]
    EmptyWorld,
    /// Not a region the world has anything in.
    #[error("unknown region {given:?}: the simulated cloud has nothing there")]
    UnknownRegion {
        /// What was given.
        given: String,
        /// The regions the world has resources in.
        known: Vec<String>,
    },
    /// Not a zone of the region.
    #[error("unknown availability zone {given:?} in {region}")]
    UnknownAz {
        /// What was given.
        given: String,
        /// The region.
        region: String,
        /// The region's zones.
        known: Vec<String>,
    },
    /// `--az` with a kind other than `az-loss`.
    #[error("--az only applies to az-loss, not {kind}")]
    AzNotApplicable {
        /// The kind given.
        kind: FaultKind,
    },
    /// No region given and no writer to default to.
    #[error(
        "{kind} needs a region: the world has no Aurora global database to find the primary by"
    )]
    NoDefaultRegion {
        /// The kind given.
        kind: FaultKind,
    },
    /// A start time before now.
    #[error("the fault would start {}s in the past", ago_ms.div_ceil(1000))]
    InPast {
        /// How far before now.
        ago_ms: u64,
    },
    /// A zero duration.
    #[error("a fault must last longer than 0 s")]
    ZeroDuration,
    /// The world could not be read or saved.
    #[error(transparent)]
    Cloud(#[from] CloudError),
}

impl FaultError {
    /// What to do about it, for the CLI's `hint:` line.
    pub fn hint(&self) -> String {
        match self {
            FaultError::UnknownKind { suggestion, .. } => {
                let all: Vec<&str> = FaultKind::ALL.iter().map(|k| k.name()).collect();
                match suggestion {
                    Some(s) => format!("did you mean {s}? kinds: {}", all.join(", ")),
                    None => format!("kinds: {}", all.join(", ")),
                }
            }
            FaultError::EmptyWorld => {
                "build something first: drflow run runbooks/provision.yaml --params-file runbooks/params/eu.yaml".into()
            }
            FaultError::UnknownRegion { given, known } => {
                match nearest(given, known.iter().map(String::as_str)) {
                    Some(s) => format!("did you mean {s}? regions: {}", known.join(", ")),
                    None => format!("regions: {}", known.join(", ")),
                }
            }
            FaultError::UnknownAz { known, .. } => format!("zones: {}", known.join(", ")),
            FaultError::AzNotApplicable { .. } => "leave out --az, or use az-loss".into(),
            FaultError::NoDefaultRegion { .. } => "name the region with --region".into(),
            FaultError::InPast { .. } => {
                "give --at as a delay from now, e.g. --at +30s (`drflow sim status` shows now)"
                    .into()
            }
            FaultError::ZeroDuration => "give --for a positive duration, e.g. --for 5m".into(),
            FaultError::Cloud(_) => "run `drflow sim reset` if the world file is damaged".into(),
        }
    }
}

/// A duration as the CLI takes it, in milliseconds: what runbooks accept (`90s`, `5m`, `1h30m`,
/// `500ms`, plain seconds: [`drflow_engine::parse_duration`]), plus a leading `+`
/// (`--at +30s`). Errors name what was wrong.
pub fn parse_duration(s: &str) -> Result<u64, String> {
    let text = s.trim();
    let body = text.strip_prefix('+').unwrap_or(text);
    drflow_engine::parse_duration(body)
        .map(|d| d.as_millis() as u64)
        .map_err(|e| format!("{s:?} is not a duration ({e})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_parse_by_cli_name_and_suggest_the_nearest() {
        for k in FaultKind::ALL {
            assert_eq!(k.name().parse::<FaultKind>().unwrap(), *k);
        }
        match "region-outgae".parse::<FaultKind>() {
            Err(FaultError::UnknownKind { suggestion, .. }) => {
                assert_eq!(suggestion.as_deref(), Some("region-outage"))
            }
            other => panic!("{other:?}"),
        }
        match "meteor".parse::<FaultKind>() {
            Err(
                e @ FaultError::UnknownKind {
                    suggestion: None, ..
                },
            ) => {
                assert!(e.hint().contains("partition"))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Ok(90_000));
        assert_eq!(parse_duration("+30s"), Ok(30_000));
        assert_eq!(parse_duration("1h30m"), Ok(5_400_000));
        assert_eq!(parse_duration("250ms"), Ok(250));
        assert!(parse_duration("5x").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("m5").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("-5s").is_err());
    }
}
