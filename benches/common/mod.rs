//! What the journal and binary benches share: the runbook shapes and a sink that drops events.

use drflow_engine::{RunEvent, RunSink, SinkError};

/// The same shapes as `benches/engine.rs`: `n` no-op `core.set` steps.
pub fn runbook(shape: &str, n: usize) -> String {
    let mut src = String::with_capacity(n * 64);
    src.push_str("runbook: bench\nsteps:\n");
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for i in 0..n {
        let needs: Vec<usize> = match shape {
            "chain" if i > 0 => vec![i - 1],
            "fanout" if i > 0 => vec![0],
            "random" if i > 0 => {
                let k = (next() % 4) as usize;
                let mut v: Vec<usize> = (0..k)
                    .map(|_| i - 1 - (next() as usize % i.min(64)))
                    .collect();
                v.sort_unstable();
                v.dedup();
                v
            }
            _ => vec![],
        };
        let needs: Vec<String> = needs.iter().map(|j| format!("s{j}")).collect();
        src.push_str(&format!(
            "  - {{ id: s{i}, uses: core.set, needs: [{}] }}\n",
            needs.join(", ")
        ));
    }
    src
}

/// A sink that keeps nothing: the engine without a journal.
pub struct Discard;

impl RunSink for Discard {
    fn record(&mut self, _event: &RunEvent) -> Result<(), SinkError> {
        Ok(())
    }
}

/// How big and how often: 200 steps once under `cargo test` (no `--bench`), otherwise
/// `DRFLOW_BENCH_SIZES` (default 10000) and `DRFLOW_BENCH_REPEAT` (default `default_repeat`).
pub fn sizes_and_repeat(default_repeat: usize) -> (Vec<usize>, usize) {
    let quick = !std::env::args().any(|a| a == "--bench");
    if quick {
        return (vec![200], 1);
    }
    let sizes = std::env::var("DRFLOW_BENCH_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![10_000]);
    let repeat = std::env::var("DRFLOW_BENCH_REPEAT")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(default_repeat);
    (sizes, repeat)
}
