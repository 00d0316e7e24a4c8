//! Faults on the agenda: each injected fault starts and ends at an event, and `flapping`
//! toggles on its period, so every process sees the change at the exact virtual time.

use serde_json::Value;

use super::World;
use super::agenda::Event;
use super::faults::{ActiveFault, Fault, FaultError, FaultId, FaultKind};
use super::process::Process;
use crate::backend::{GLOBAL, Kind};

const NAME: &str = "faults";

/// The process that starts, ends and toggles faults.
pub struct FaultClock;

impl Process for FaultClock {
    fn name(&self) -> &'static str {
        NAME
    }

    fn handle(&self, world: &mut World, event: &Event) {
        let id: FaultId = event.target.parse().unwrap_or(0);
        match event.what.as_str() {
            "end" => {
                world.faults.list.retain(|f| f.id != id);
                world
                    .agenda
                    .cancel(|e| e.process == NAME && e.target == event.target);
            }
            "flap" => {
                if let Some(f) = world.faults.list.iter().find(|f| f.id == id) {
                    let next = world.clock_ms + world.config.flapping_period_ms / 2;
                    if f.end_ms.is_none_or(|e| next < e) {
                        world.schedule(next, NAME, &event.target, "flap", Value::Null);
                    }
                }
            }
            _ => {}
        }
        world.changed();
    }
}

impl World {
    /// The regions the world has resources in (not `global`), in name order.
    pub fn known_regions(&self) -> Vec<String> {
        self.regions
            .keys()
            .filter(|r| *r != GLOBAL)
            .cloned()
            .collect()
    }

    /// The region holding the writer of the first global database, if any.
    pub fn writer_region(&self) -> Option<String> {
        self.aurora.values().find_map(|db| db.writer_region.clone())
    }

    /// Validates `fault` and puts it on the agenda. Errors: an unknown region or zone, a zone
    /// for a kind other than `az-loss`, a start in the past, a zero duration.
    pub fn inject_fault(&mut self, fault: &Fault) -> Result<FaultId, FaultError> {
        self.sync_now();
        let now = self.clock_ms;
        let start = fault.at_ms.unwrap_or(now);
        if start < now {
            return Err(FaultError::InPast {
                ago_ms: now - start,
            });
        }
        if fault.for_ms == Some(0) {
            return Err(FaultError::ZeroDuration);
        }
        let known = self.known_regions();
        if known.is_empty() {
            return Err(FaultError::EmptyWorld);
        }
        let region = match &fault.region {
            Some(r) if !known.contains(r) => {
                return Err(FaultError::UnknownRegion {
                    given: r.clone(),
                    known,
                });
            }
            Some(r) => Some(r.clone()),
            None if fault.kind.defaults_to_writer_region() => Some(
                self.writer_region()
                    .ok_or(FaultError::NoDefaultRegion { kind: fault.kind })?,
            ),
            None => None,
        };
        let az = match (&fault.az, fault.kind) {
            (Some(_), k) if k != FaultKind::AzLoss => {
                return Err(FaultError::AzNotApplicable { kind: k });
            }
            (az, FaultKind::AzLoss) => {
                let region = region.clone().unwrap_or_default();
                let zones = self.zones_in_use(&region);
                match az {
                    Some(z) if !zones.contains(z) => {
                        return Err(FaultError::UnknownAz {
                            given: z.clone(),
                            region,
                            known: zones,
                        });
                    }
                    Some(z) => Some(z.clone()),
                    None => zones.first().cloned(),
                }
            }
            _ => None,
        };
        self.faults.last_id += 1;
        let id = self.faults.last_id;
        let end = fault.for_ms.map(|d| start.saturating_add(d));
        self.faults.list.push(ActiveFault {
            id,
            kind: fault.kind,
            region,
            az,
            start_ms: start,
            end_ms: end,
        });
        let key = id.to_string();
        self.schedule(start, NAME, &key, "start", Value::Null);
        if fault.kind == FaultKind::Flapping {
            let next = start + self.config.flapping_period_ms / 2;
            self.schedule(next, NAME, &key, "flap", Value::Null);
        }
        if let Some(end) = end {
            self.schedule(end, NAME, &key, "end", Value::Null);
        }
        self.changed();
        self.sync_now();
        Ok(id)
    }

    /// Ends every fault of `kind` (every fault when `None`), pending ones included; returns
    /// their ids.
    pub fn heal_faults(&mut self, kind: Option<FaultKind>) -> Vec<FaultId> {
        let healed: Vec<FaultId> = self
            .faults
            .list
            .iter()
            .filter(|f| kind.is_none_or(|k| f.kind == k))
            .map(|f| f.id)
            .collect();
        self.faults.list.retain(|f| !healed.contains(&f.id));
        let keys: Vec<String> = healed.iter().map(u64::to_string).collect();
        self.agenda
            .cancel(|e| e.process == NAME && keys.contains(&e.target));
        self.changed();
        self.sync_now();
        healed
    }

    /// Whether the application in `region` is down now because of `app-unhealthy` or the
    /// down half of `flapping`.
    pub fn app_fault(&self, region: &str) -> bool {
        let now = self.clock_ms;
        let half = (self.config.flapping_period_ms / 2).max(1);
        self.active_faults().any(|f| {
            f.hits(region)
                && match f.kind {
                    FaultKind::AppUnhealthy => true,
                    // Down first, then up, each for half the period.
                    FaultKind::Flapping => ((now - f.start_ms) / half).is_multiple_of(2),
                    _ => false,
                }
        })
    }

    /// Whether the zone `az` of `region` is lost.
    pub fn az_lost(&self, region: &str, az: &str) -> bool {
        self.active_faults()
            .any(|f| f.kind == FaultKind::AzLoss && f.hits(region) && f.az.as_deref() == Some(az))
    }

    /// The zones of `region` the world's subnets use, else every zone of the region.
    pub fn zones_in_use(&self, region: &str) -> Vec<String> {
        let mut zones: Vec<String> = self
            .list(Some(region), Some(Kind::Subnet))
            .iter()
            .filter_map(|s| s.spec.get("availability_zone").and_then(Value::as_str))
            .map(str::to_string)
            .collect();
        zones.sort();
        zones.dedup();
        if zones.is_empty() {
            zones = super::availability_zones(region).unwrap_or_default();
        }
        zones
    }

    /// Syncs processes without moving time.
    pub fn sync_now(&mut self) {
        let now = self.clock_ms;
        self.advance_to(now);
    }
}
