//! The daemon's keyed scheduler (after kube-rs's controller runtime): work is queued by key (a
//! runbook's rendered `lock:`), never two runs for one key at once, a key's work starts only
//! once it has been quiet for the debounce, and at most one piece of work waits per key: work
//! that arrives for a key already running waits behind that run (it may ask for what the run
//! in progress decided against: a run started by one trigger that held may be followed by a
//! firing of another with more evidence), and newer work replaces older waiting work.

use std::collections::{BTreeMap, BTreeSet};

/// What became of offered work; the variants that drop work hand it back, so that the caller
/// can forget it wherever it recorded it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer<T> {
    /// Queued: it starts once its key is free and its debounce has passed.
    Queued,
    /// Queued behind the run in progress for its key: it starts when that run ends.
    Behind,
    /// It replaced the work queued for the same key (the newer wins; the older is handed back)
    /// and restarted the debounce.
    Replaced(T),
}

/// Work queued by key. `T` is the work (a firing to run).
#[derive(Debug)]
pub struct KeyedScheduler<T> {
    debounce_ms: u64,
    pending: BTreeMap<String, (u64, T)>,
    running: BTreeSet<String>,
}

impl<T> KeyedScheduler<T> {
    /// A scheduler that starts a key's work `debounce_ms` after the last offer for it.
    pub fn new(debounce_ms: u64) -> KeyedScheduler<T> {
        KeyedScheduler {
            debounce_ms,
            pending: BTreeMap::new(),
            running: BTreeSet::new(),
        }
    }

    /// Offers `work` for `key` at `now_ms`.
    pub fn offer(&mut self, key: &str, work: T, now_ms: u64) -> Offer<T> {
        let due = now_ms.saturating_add(self.debounce_ms);
        match self.pending.insert(key.to_string(), (due, work)) {
            Some((_, old)) => Offer::Replaced(old),
            None if self.running.contains(key) => Offer::Behind,
            None => Offer::Queued,
        }
    }

    /// The work due by `now_ms` whose key is free, each key marked running until
    /// [`KeyedScheduler::done`].
    pub fn start_due(&mut self, now_ms: u64) -> Vec<(String, T)> {
        let due: Vec<String> = self
            .pending
            .iter()
            .filter(|(k, (at, _))| *at <= now_ms && !self.running.contains(*k))
            .map(|(k, _)| k.clone())
            .collect();
        due.into_iter()
            .filter_map(|k| {
                let (_, work) = self.pending.remove(&k)?;
                self.running.insert(k.clone());
                Some((k, work))
            })
            .collect()
    }

    /// Marks `key` running without offering (a run resumed at start).
    pub fn mark_running(&mut self, key: &str) {
        self.running.insert(key.to_string());
    }

    /// The run for `key` ended.
    pub fn done(&mut self, key: &str) {
        self.running.remove(key);
    }

    /// When the next queued work is due (ms), if any is queued.
    pub fn next_due_ms(&self) -> Option<u64> {
        self.pending.values().map(|(at, _)| *at).min()
    }

    /// How many keys are running.
    pub fn running(&self) -> usize {
        self.running.len()
    }

    /// How many keys have work queued.
    pub fn queued(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_two_runs_for_one_key_and_work_for_a_running_key_waits_behind_it() {
        let mut s = KeyedScheduler::new(0);
        assert_eq!(s.offer("failover-prod", 1, 0), Offer::Queued);
        assert_eq!(s.offer("failover-prod", 2, 0), Offer::Replaced(1));
        assert_eq!(s.start_due(0), vec![("failover-prod".to_string(), 2)]);
        assert_eq!(s.offer("failover-prod", 3, 5), Offer::Behind);
        assert_eq!(s.offer("failover-prod", 4, 6), Offer::Replaced(3));
        assert!(
            s.start_due(10).is_empty(),
            "not while its run is in progress"
        );
        // Another key is independent.
        assert_eq!(s.offer("failover-dev", 5, 10), Offer::Queued);
        assert_eq!(s.start_due(10), vec![("failover-dev".to_string(), 5)]);
        s.done("failover-prod");
        assert_eq!(s.start_due(20), vec![("failover-prod".to_string(), 4)]);
    }

    #[test]
    fn work_starts_once_its_key_is_quiet_for_the_debounce() {
        let mut s = KeyedScheduler::new(1000);
        s.offer("k", "first", 0);
        assert_eq!(s.next_due_ms(), Some(1000));
        assert!(s.start_due(999).is_empty());
        s.offer("k", "second", 900);
        assert!(s.start_due(1000).is_empty(), "the debounce restarted");
        assert_eq!(s.start_due(1900), vec![("k".to_string(), "second")]);
        assert_eq!((s.running(), s.queued()), (1, 0));
    }

    #[test]
    fn a_resumed_run_holds_its_key() {
        let mut s = KeyedScheduler::new(0);
        s.mark_running("k");
        assert_eq!(s.offer("k", 1, 0), Offer::Behind);
        assert!(s.start_due(0).is_empty());
        s.done("k");
        assert_eq!(s.start_due(0), vec![("k".to_string(), 1)]);
    }
}
