//! The synthetic trading client: a process outside AWS that sends one write every
//! `interval_ms`, the way a trader's order flow reaches the platform.
//!
//! Each request resolves the public name through the client's own resolver, which keeps an
//! answer for its TTL ([`super::dns::resolve_cached`], resolver `client`), so after a DNS change
//! the client keeps going to the old region until its cached answer expires. The write carries
//! the client's next sequence number (1, 2, …; a failed write is not retried: the next request
//! carries the next number) and goes to the region the answer points at. It is acknowledged
//! when that region's application serves (its ALB has a healthy target and it answers `ok`) and
//! commits the write on the Aurora writer, which must be available and reachable from that
//! region ([`super::aurora::writer_reachable_from`]); otherwise the request fails with the
//! reason.
//!
//! While the client runs, its writes are the only writes the database commits: the
//! application's own steady stream ([`super::SimConfig::app_write_interval_ms`]) stops, so the
//! writes a managed failover loses are exactly acknowledged client writes (see `docs/sim.md`).
//! Every request is recorded (the last [`MAX_REQUESTS`]).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::World;
use super::agenda::Event;
use super::process::Process;
use super::timeline::{WriteFacts, push_bounded};
use crate::backend::{GLOBAL, Kind};

const NAME: &str = "client";

/// The resolver the client uses (its cache lives in the world's DNS state).
pub const RESOLVER: &str = "client";

/// The most requests kept: ten hours at one a second.
pub const MAX_REQUESTS: usize = 36_000;

/// How the synthetic client behaves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientConfig {
    /// The name it resolves and writes to (e.g. `api.trading.example.com`).
    pub host: String,
    /// Time between two requests, in milliseconds (1000: one write a second).
    pub interval_ms: u64,
}

impl Default for ClientConfig {
    fn default() -> ClientConfig {
        ClientConfig {
            host: String::new(),
            interval_ms: 1000,
        }
    }
}

/// One request of the client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientRequest {
    /// When it was sent (and answered: the sim's requests take no time).
    pub at_ms: u64,
    /// Its sequence number.
    pub seq: u64,
    /// The region DNS sent it to (`None`: the name did not resolve to a load balancer).
    pub region: Option<String>,
    /// Whether the write was acknowledged.
    pub ok: bool,
    /// Why it failed.
    pub error: Option<String>,
    /// The region of the writer it was committed on.
    pub writer_region: Option<String>,
    /// The database's sequence number of the committed write (Aurora's, not the client's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db_seq: Option<u64>,
}

/// The client as the world keeps it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClientState {
    /// How it behaves.
    pub config: ClientConfig,
    /// Whether it sends requests (false once stopped).
    pub running: bool,
    /// When it was (last) started.
    pub started_at_ms: u64,
    /// The last sequence number sent.
    pub last_seq: u64,
    /// Its requests, oldest first (the last [`MAX_REQUESTS`]).
    pub requests: Vec<ClientRequest>,
}

impl World {
    /// Whether the synthetic client is sending requests.
    pub fn client_running(&self) -> bool {
        self.client.as_ref().is_some_and(|c| c.running)
    }

    /// Starts the client now with `config` (its first request now, then one every
    /// `interval_ms`). Restarting keeps its history and its sequence numbers.
    pub fn start_client(&mut self, config: ClientConfig) {
        self.sync_now();
        let now = self.clock_ms;
        self.agenda.cancel(|e| e.process == NAME);
        let c = self.client.get_or_insert_with(ClientState::default);
        c.config = ClientConfig {
            interval_ms: config.interval_ms.max(1),
            ..config
        };
        c.running = true;
        c.started_at_ms = now;
        self.schedule(now, NAME, NAME, "request", Value::Null);
        self.changed();
    }

    /// Stops the client; its history stays.
    pub fn stop_client(&mut self) {
        self.agenda.cancel(|e| e.process == NAME);
        if let Some(c) = self.client.as_mut() {
            c.running = false;
        }
        self.changed();
    }
}

/// The client's requests, one per event.
pub struct TradingClient;

impl Process for TradingClient {
    fn name(&self) -> &'static str {
        NAME
    }

    fn handle(&self, world: &mut World, _event: &Event) {
        let Some(c) = world.client.as_mut().filter(|c| c.running) else {
            return;
        };
        c.last_seq += 1;
        let seq = c.last_seq;
        let host = c.config.host.clone();
        let interval = c.config.interval_ms.max(1);
        let request = send(world, &host, seq);
        if let Some(c) = world.client.as_mut() {
            push_bounded(&mut c.requests, request, MAX_REQUESTS);
        }
        let next = world.clock_ms + interval;
        world.schedule(next, NAME, NAME, "request", Value::Null);
    }
}

/// One write with sequence number `seq`, now.
fn send(world: &mut World, host: &str, seq: u64) -> ClientRequest {
    let now = world.clock_ms;
    let mut request = ClientRequest {
        at_ms: now,
        seq,
        region: None,
        ok: false,
        error: None,
        writer_region: None,
        db_seq: None,
    };
    let answer = super::dns::resolve_cached(world, RESOLVER, host, "A");
    let Some(target) = answer.record_data.first() else {
        request.error = Some(format!(
            "could not resolve {host} ({})",
            answer.response_code
        ));
        return request;
    };
    let Some(region) = world
        .list(None, Some(Kind::LoadBalancer))
        .into_iter()
        .find(|lb| lb.attr_str("dns_name").eq_ignore_ascii_case(target))
        .map(|lb| lb.region)
    else {
        request.error = Some(format!(
            "{host} resolves to {target}, which does not answer"
        ));
        return request;
    };
    request.region = Some(region.clone());
    if !world.reachable(GLOBAL, &region) {
        request.error = Some(format!(
            "timed out connecting to {region} after {} ms",
            world.config.probe_timeout_ms
        ));
        return request;
    }
    if !super::app::serving(world, &region) {
        request.error = Some(format!(
            "HTTP 503 from {region}: {}",
            super::app::why_not_serving(world, &region)
        ));
        return request;
    }
    match super::aurora::commit_client_write(world, &region, seq) {
        Some((writer, db_seq)) => {
            request.ok = true;
            request.writer_region = Some(writer);
            request.db_seq = Some(db_seq);
        }
        None => {
            request.error = Some(format!(
                "HTTP 503 from {region}: no database writer reachable to commit the write"
            ));
        }
    }
    request
}

/// What the client's acknowledged writes became (see [`WriteFacts`]).
pub fn write_facts(world: &World) -> WriteFacts {
    let Some(c) = world.client.as_ref() else {
        return WriteFacts {
            writer_region: world.writer_region(),
            ..WriteFacts::default()
        };
    };
    let db = world
        .aurora
        .values()
        .find(|db| db.writer_region.is_some())
        .or_else(|| world.aurora.values().next());
    // The database sequence numbers managed failovers lost (only client writes carry one).
    let lost_ranges: Vec<(u64, u64)> = db
        .map(|db| {
            db.lost
                .iter()
                .filter(|l| l.at_ms >= c.started_at_ms.min(l.at_ms))
                .map(|l| (l.first_seq, l.last_seq))
                .collect()
        })
        .unwrap_or_default();
    let writer_seq = db
        .and_then(|db| db.members.get(db.writer_region.as_deref()?))
        .map(|m| m.applied_seq);
    let acked: Vec<&ClientRequest> = c.requests.iter().filter(|r| r.ok).collect();
    let is_lost = |r: &ClientRequest| {
        r.db_seq
            .is_some_and(|s| lost_ranges.iter().any(|(a, b)| (*a..=*b).contains(&s)))
    };
    WriteFacts {
        acked: acked.len() as u64,
        last_acked_seq: acked.last().map(|r| r.seq),
        acked_by_seq_time: acked.iter().map(|r| (r.seq, r.at_ms)).collect(),
        writer_region: db.and_then(|db| db.writer_region.clone()),
        writer_has_up_to_seq: acked
            .iter()
            .filter(|r| !is_lost(r))
            .filter(|r| r.db_seq.zip(writer_seq).is_some_and(|(s, w)| s <= w))
            .map(|r| r.seq)
            .max(),
        lost: acked.iter().filter(|r| is_lost(r)).map(|r| r.seq).collect(),
    }
}
