//! Engine overhead: compile + schedule + run of no-op runbooks of 1k, 10k and 100k steps in four
//! shapes (a chain, a wide fan-out, a random DAG, and a chain whose every step passes a value on
//! through an expression), with the peak memory of each.
//!
//! `cargo bench --bench engine` prints a table. Each case runs in a child process of this same
//! binary so that its peak memory (VmHWM) is its own. `DRFLOW_BENCH_SIZES=1000,10000` limits the
//! sizes; `DRFLOW_BENCH_REPEAT` sets how many runs each timing is the best of (default 3).

use std::process::Command;
use std::time::{Duration, Instant};

use drflow_engine::{Outputs, RunOptions, RunSink, RunStatus, SinkError, Stop, compile};

const SHAPES: [&str; 4] = ["chain", "fanout", "random", "exprs"];

/// Builds the YAML of a runbook of `n` no-op steps in a shape.
fn runbook(shape: &str, n: usize) -> (String, usize) {
    let mut src = String::with_capacity(n * 64);
    src.push_str("runbook: bench\nsteps:\n");
    let mut edges = 0;
    // A small deterministic generator keeps the random shape the same from run to run.
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for i in 0..n {
        let needs: Vec<usize> = match shape {
            "chain" | "exprs" if i > 0 => vec![i - 1],
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
        edges += needs.len();
        let needs: Vec<String> = needs.iter().map(|j| format!("s{j}")).collect();
        if shape == "exprs" {
            // Each step passes a value on through an expression: compile-time reference checks
            // and run-time evaluation are both on the path.
            let with = if i == 0 {
                "{ v: 0 }".to_string()
            } else {
                format!("{{ v: \"${{{{ steps.s{}.outputs.v + 1 }}}}\" }}", i - 1)
            };
            src.push_str(&format!(
                "  - {{ id: s{i}, uses: core.set, needs: [{}], with: {with} }}\n",
                needs.join(", ")
            ));
        } else {
            src.push_str(&format!(
                "  - {{ id: s{i}, uses: core.set, needs: [{}] }}\n",
                needs.join(", ")
            ));
        }
    }
    (src, edges)
}

/// A sink that drops events: this bench measures the engine without a journal.
struct Discard;

impl RunSink for Discard {
    fn record(&mut self, _event: &drflow_engine::RunEvent) -> Result<(), SinkError> {
        Ok(())
    }
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Runs one case in this process and prints `compile_ms run_ms edges peak_mib`.
fn child(shape: &str, n: usize, repeat: usize) {
    let registry = drflow_steps::registry(&drflow_steps::CloudConfig::default());
    let (src, edges) = runbook(shape, n);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut best_compile = Duration::MAX;
    let mut best_run = Duration::MAX;
    for _ in 0..repeat {
        let t = Instant::now();
        let rb = compile("bench.yaml", &src, &registry).expect("bench runbook compiles");
        best_compile = best_compile.min(t.elapsed());
        let t = Instant::now();
        let report = runtime.block_on(async {
            let (_tx, rx) = tokio::sync::watch::channel(Stop::No);
            drflow_engine::run(
                &rb,
                &Outputs::new(),
                RunOptions::new("bench"),
                &mut Discard,
                rx,
            )
            .await
            .expect("run")
        });
        best_run = best_run.min(t.elapsed());
        assert_eq!(report.status, RunStatus::Succeeded);
        assert_eq!(report.steps.len(), n);
    }
    println!(
        "{} {} {} {}",
        best_compile.as_secs_f64() * 1e3,
        best_run.as_secs_f64() * 1e3,
        edges,
        peak_rss_mib()
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let repeat: usize = std::env::var("DRFLOW_BENCH_REPEAT")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    if let Ok(case) = std::env::var("DRFLOW_BENCH_CASE") {
        let (shape, n) = case.split_once(':').expect("shape:n");
        child(shape, n.parse().expect("n"), repeat);
        return;
    }
    // `cargo bench` passes `--bench`; `cargo test` runs benches with no arguments, once, small.
    let quick = !args.iter().any(|a| a == "--bench");
    let sizes: Vec<usize> = if quick {
        vec![200]
    } else {
        std::env::var("DRFLOW_BENCH_SIZES")
            .ok()
            .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
            .unwrap_or_else(|| vec![1_000, 10_000, 100_000])
    };
    println!(
        "{:<7} {:>7} {:>8} {:>11} {:>9} {:>13} {:>10}",
        "shape", "steps", "edges", "compile ms", "run ms", "µs/step total", "peak MiB"
    );
    let exe = std::env::current_exe().expect("own path");
    for &n in &sizes {
        for shape in SHAPES {
            let out = Command::new(&exe)
                .env("DRFLOW_BENCH_CASE", format!("{shape}:{n}"))
                .env(
                    "DRFLOW_BENCH_REPEAT",
                    if quick {
                        "1".into()
                    } else {
                        repeat.to_string()
                    },
                )
                .output()
                .expect("child runs");
            let text = String::from_utf8_lossy(&out.stdout);
            let f: Vec<f64> = text
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            if !out.status.success() || f.len() != 4 {
                eprintln!(
                    "{shape}:{n} failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                std::process::exit(1);
            }
            let per_step = (f[0] + f[1]) * 1e3 / n as f64;
            println!(
                "{shape:<7} {n:>7} {:>8} {:>11.1} {:>9.1} {:>13.2} {:>10.1}",
                f[2] as usize, f[0], f[1], per_step, f[3]
            );
        }
    }
}
