//! Journaling on vs off: compile + run of 10k no-op steps (chain, fan-out, random DAG) with
//! events dropped, then written ahead to a SQLite journal (`synchronous=NORMAL`, the default), then
//! with an fsync per commit (`DRFLOW_JOURNAL_SYNC=full`).
//!
//! `cargo bench --bench journal` prints a table. `DRFLOW_BENCH_SIZES` picks sizes (default 10000),
//! `DRFLOW_BENCH_REPEAT` how many runs each timing is the best of (default 3). The journal lives
//! in Cargo's target tmp dir, on the same disk as a real `.drflow/`. `cargo test` runs it once
//! with 200 steps, so CI notices if it breaks; it asserts no timing.

use std::time::{Duration, Instant};

use drflow_engine::{Durability, Journal, Outputs, RunOptions, RunSink, RunStatus, Stop, compile};

mod common;

use common::{Discard, runbook};

const SHAPES: [&str; 3] = ["chain", "fanout", "random"];

#[derive(Clone, Copy)]
enum Mode {
    Off,
    Normal,
    Full,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Off => "off",
            Mode::Normal => "on",
            Mode::Full => "on+fsync",
        }
    }
}

/// Best-of-`repeat` compile + run time of one case, in µs per step.
fn measure(shape: &str, n: usize, mode: Mode, repeat: usize, dir: &std::path::Path) -> f64 {
    let registry = drflow_steps::registry(&drflow_steps::CloudConfig::default());
    let src = runbook(shape, n);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut best = Duration::MAX;
    for i in 0..repeat {
        let path = dir.join(format!("{shape}-{n}-{}-{i}.db", mode.name()));
        let _ = std::fs::remove_file(&path);
        let mut journal = match mode {
            Mode::Off => None,
            Mode::Normal => Some(Journal::open_with(&path, Durability::Normal).expect("journal")),
            Mode::Full => Some(Journal::open_with(&path, Durability::Full).expect("journal")),
        };
        let t = Instant::now();
        let rb = compile("bench.yaml", &src, &registry).expect("bench runbook compiles");
        let report = runtime.block_on(async {
            let (_tx, rx) = tokio::sync::watch::channel(Stop::No);
            let sink: &mut dyn RunSink = match journal.as_mut() {
                Some(j) => j,
                None => &mut Discard,
            };
            drflow_engine::run(
                &rb,
                &Outputs::new(),
                RunOptions::new(format!("run-{i}")),
                sink,
                rx,
            )
            .await
            .expect("run")
        });
        best = best.min(t.elapsed());
        assert_eq!(report.status, RunStatus::Succeeded);
        if let Some(j) = &journal {
            // Every event is there: run_started, 2 per step, run_finished.
            assert_eq!(
                j.event_count(&format!("run-{i}")).expect("count"),
                2 * n as i64 + 2
            );
        }
        drop(journal);
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }
    best.as_secs_f64() * 1e6 / n as f64
}

fn main() {
    let (sizes, repeat) = common::sizes_and_repeat(3);
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("journal-bench");
    std::fs::create_dir_all(&dir).expect("bench dir");
    println!(
        "{:<7} {:>7} {:>12} {:>12} {:>12} {:>14}",
        "shape", "steps", "off µs/step", "on µs/step", "journal µs", "on+fsync µs"
    );
    for &n in &sizes {
        for shape in SHAPES {
            let off = measure(shape, n, Mode::Off, repeat, &dir);
            let on = measure(shape, n, Mode::Normal, repeat, &dir);
            // An fsync per commit is slow; measure it on a smaller run so the bench stays short.
            let full_n = n.min(1_000);
            let full = measure(shape, full_n, Mode::Full, 1, &dir);
            println!(
                "{shape:<7} {n:>7} {off:>12.2} {on:>12.2} {:>12.2} {full:>14.1}",
                on - off
            );
        }
    }
}
