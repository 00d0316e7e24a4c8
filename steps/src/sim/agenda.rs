//! The agenda: the world's future events, ordered by virtual time, then by the order they were
//! scheduled in. Time in the sim moves from one event to the next ([`super::World::advance_to`]);
//! nothing happens between two events except the continuous change a process
//! [accrues](super::Process::accrue). The agenda is saved with the world, so a process's next
//! wake-up survives from one drflow command to the next.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One future event: a process is woken at `at_ms` to handle `what` about `target`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// When it happens, in virtual milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// The order it was scheduled in: breaks ties between events at the same time.
    pub seq: u64,
    /// The [`super::Process::name`] that handles it.
    pub process: String,
    /// What it is about: a resource id or ARN, a fault id, a region.
    pub target: String,
    /// What to do, in the process's own words (`tick`, `launch-done`, `start`).
    pub what: String,
    /// Anything else the process needs, or `null`.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub data: Value,
}

/// The future events, earliest first. Serialised as a list in that order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(from = "AgendaFile", into = "AgendaFile")]
pub struct Agenda {
    events: BTreeMap<(u64, u64), Event>,
    next_seq: u64,
}

#[derive(Serialize, Deserialize)]
struct AgendaFile {
    next_seq: u64,
    events: Vec<Event>,
}

impl From<AgendaFile> for Agenda {
    fn from(f: AgendaFile) -> Agenda {
        let next_seq = f
            .events
            .iter()
            .map(|e| e.seq + 1)
            .max()
            .unwrap_or(0)
            .max(f.next_seq);
        Agenda {
            events: f
                .events
                .into_iter()
                .map(|e| ((e.at_ms, e.seq), e))
                .collect(),
            next_seq,
        }
    }
}

impl From<Agenda> for AgendaFile {
    fn from(a: Agenda) -> AgendaFile {
        AgendaFile {
            next_seq: a.next_seq,
            events: a.events.into_values().collect(),
        }
    }
}

impl Agenda {
    /// Adds an event; returns its sequence number.
    pub fn schedule(
        &mut self,
        at_ms: u64,
        process: &str,
        target: &str,
        what: &str,
        data: Value,
    ) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.events.insert(
            (at_ms, seq),
            Event {
                at_ms,
                seq,
                process: process.to_string(),
                target: target.to_string(),
                what: what.to_string(),
                data,
            },
        );
        seq
    }

    /// Removes and returns the earliest event due at or before `t_ms`.
    pub fn pop_due(&mut self, t_ms: u64) -> Option<Event> {
        let (&key, _) = self.events.first_key_value()?;
        if key.0 > t_ms {
            return None;
        }
        self.events.remove(&key)
    }

    /// When the earliest event is due.
    pub fn next_at(&self) -> Option<u64> {
        self.events.first_key_value().map(|(k, _)| k.0)
    }

    /// The first pending event (in time order) that `pred` accepts.
    pub fn find(&self, mut pred: impl FnMut(&Event) -> bool) -> Option<&Event> {
        self.events.values().find(|e| pred(e))
    }

    /// Whether an event of `process` about `target` doing `what` is pending.
    pub fn has(&self, process: &str, target: &str, what: &str) -> bool {
        self.find(|e| e.process == process && e.target == target && e.what == what)
            .is_some()
    }

    /// Removes every pending event `pred` accepts; returns how many.
    pub fn cancel(&mut self, mut pred: impl FnMut(&Event) -> bool) -> usize {
        let before = self.events.len();
        self.events.retain(|_, e| !pred(e));
        before - self.events.len()
    }

    /// The pending events, earliest first.
    pub fn iter(&self) -> impl Iterator<Item = &Event> {
        self.events.values()
    }

    /// How many events are pending.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_come_out_by_time_then_by_scheduling_order_and_survive_a_save() {
        let mut a = Agenda::default();
        a.schedule(20, "p", "b", "x", Value::Null);
        a.schedule(10, "p", "a", "x", Value::Null);
        a.schedule(20, "p", "c", "x", Value::Null);
        let json = serde_json::to_string(&a).unwrap();
        let mut a: Agenda = serde_json::from_str(&json).unwrap();
        assert_eq!(a.next_at(), Some(10));
        assert!(a.pop_due(9).is_none());
        let order: Vec<String> = std::iter::from_fn(|| a.pop_due(20))
            .map(|e| e.target)
            .collect();
        assert_eq!(order, ["a", "b", "c"]);
        // Sequence numbers keep growing after a reload, so ties stay in scheduling order.
        assert_eq!(a.schedule(5, "p", "d", "x", Value::Null), 3);
    }
}
