//! Throughput through the release binary, as a user runs it, next to the library.
//!
//! For each shape of no-op runbook (the `core.set` chain, fan-out and random DAG of
//! `benches/engine.rs` and `benches/journal.rs`), this times:
//!
//! - **library**: compile + run in this process, events dropped (`off`) or written ahead to a
//!   fresh SQLite journal (`on`), as `benches/journal.rs` does;
//! - **binary**: `drflow run FILE` as a child process, from spawn to exit (process start,
//!   reading the file, compile, run, journal, the summary), with `--no-journal` (`off`) or
//!   journaled in a fresh state dir (`on`), stdout and stderr written to files, the way
//!   `drflow run … > log 2>&1` runs in CI;
//! - **terminal**: the journaled binary with stdout and stderr on a pseudo-terminal (live
//!   display on), the output drained by a thread as a terminal would.
//!
//! Library and binary runs alternate, and each figure is the best of `DRFLOW_BENCH_REPEAT`
//! (default 5) runs, so a busy machine slows both alike. `DRFLOW_BENCH_SIZES` picks sizes
//! (default 10000), `DRFLOW_BENCH_SHAPES` shapes (default `chain,fanout,random`),
//! `DRFLOW_BENCH_TTY=0` skips the terminal column, `DRFLOW_BENCH_PROVISION=0` skips the
//! provision figure (a whole `runbooks/provision.yaml` on a fresh simulated cloud),
//! `DRFLOW_BENCH_FAILOVER=0` the failover figures (`runbooks/failover.yaml` of a region outage
//! on the sim, with `eu.yaml` and `us-east.yaml`: wall time, the run's virtual duration, the
//! decision), `DRFLOW_BENCH_DRILL=0` the drill figures (`drflow drill --scenario
//! region-outage` and `drflow drill --all`: wall time, and the RTO, critical path and engine
//! share the drill measured), and `DRFLOW_BENCH_BIN=path/to/drflow` times another build of the binary (to
//! compare before and after a change). `DRFLOW_BENCH_SIZES=` (empty) skips the step table.
//! `cargo bench --bench binary` prints a table in µs per step and the binary/library ratio;
//! `cargo test --all-targets` runs it once with 200 steps (and the eu failover and one drill
//! once), so CI
//! notices if it breaks. It asserts no timing.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use drflow_engine::{Durability, Journal, Outputs, RunOptions, RunSink, RunStatus, Stop, compile};

mod common;

use common::{Discard, runbook};

const SHAPES: [&str; 3] = ["chain", "fanout", "random"];

/// One library run: compile + run, journaled to a fresh file in `dir` or not.
fn library(src: &str, journaled: bool, dir: &Path) -> Duration {
    let registry = drflow_steps::registry(&drflow_steps::CloudConfig::default());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let path = dir.join("library.db");
    let mut journal =
        journaled.then(|| Journal::open_with(&path, Durability::Normal).expect("journal"));
    let t = Instant::now();
    let rb = compile("bench.yaml", src, &registry).expect("bench runbook compiles");
    let report = runtime.block_on(async {
        let (_tx, rx) = tokio::sync::watch::channel(Stop::No);
        let sink: &mut dyn RunSink = match journal.as_mut() {
            Some(j) => j,
            None => &mut Discard,
        };
        drflow_engine::run(&rb, &Outputs::new(), RunOptions::new("run"), sink, rx)
            .await
            .expect("run")
    });
    let took = t.elapsed();
    assert_eq!(report.status, RunStatus::Succeeded);
    drop(journal);
    took
}

/// Where the binary's output goes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Output {
    /// Files, as in CI.
    Files,
    /// A pseudo-terminal, as for a person.
    #[cfg(unix)]
    Terminal,
}

/// One run of the binary on `file`, from spawn to exit, in a fresh state dir under `dir`.
fn binary(file: &Path, journaled: bool, output: Output, dir: &Path) -> Duration {
    let state = dir.join("state");
    let _ = std::fs::remove_dir_all(&state);
    let mut cmd = Command::new(drflow());
    cmd.arg("--state-dir")
        .arg(&state)
        .arg("run")
        .arg(file)
        .env_remove("DRFLOW_LOG")
        .env_remove("DRFLOW_TARGET")
        .env_remove("DRFLOW_STATE_DIR")
        .env_remove("DRFLOW_JOURNAL_SYNC")
        .stdin(Stdio::null());
    if !journaled {
        cmd.arg("--no-journal");
    }
    #[cfg(unix)]
    let mut drain = None;
    match output {
        Output::Files => {
            let out = std::fs::File::create(dir.join("stdout.txt")).expect("stdout file");
            let err = std::fs::File::create(dir.join("stderr.txt")).expect("stderr file");
            cmd.stdout(out).stderr(err);
        }
        #[cfg(unix)]
        Output::Terminal => {
            let (reader, slave) = pty::open();
            cmd.stdout(slave.try_clone().expect("dup")).stderr(slave);
            drain = Some(reader);
        }
    }
    let t = Instant::now();
    let mut child = cmd.spawn().expect("spawn drflow");
    // Our copies of the terminal side go, so the drain ends when drflow exits.
    drop(cmd);
    #[cfg(unix)]
    let drained = drain.map(|mut r| {
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = std::io::Read::read_to_end(&mut r, &mut sink);
            sink.len()
        })
    });
    let status = child.wait().expect("wait");
    let took = t.elapsed();
    #[cfg(unix)]
    if let Some(d) = drained {
        assert!(d.join().expect("drain") > 0, "the terminal showed nothing");
    }
    assert!(status.success(), "drflow run failed: {status}");
    took
}

/// The binary to time: this build's, or `DRFLOW_BENCH_BIN` (to compare with another build).
fn drflow() -> PathBuf {
    std::env::var_os("DRFLOW_BENCH_BIN")
        .filter(|v| !v.is_empty())
        .map_or_else(
            || PathBuf::from(env!("CARGO_BIN_EXE_drflow")),
            PathBuf::from,
        )
}

#[cfg(unix)]
mod pty {
    use std::fs::{File, OpenOptions};

    use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
    use rustix::termios::{Winsize, tcsetwinsize};

    /// A new pseudo-terminal of 40 × 120: the side to read, and the side for the child.
    pub fn open() -> (File, File) {
        let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)
            .expect("open a pseudo-terminal");
        grantpt(&master).expect("grantpt");
        unlockpt(&master).expect("unlockpt");
        tcsetwinsize(
            &master,
            Winsize {
                ws_row: 40,
                ws_col: 120,
                ws_xpixel: 0,
                ws_ypixel: 0,
            },
        )
        .expect("window size");
        let name = ptsname(&master, Vec::new()).expect("ptsname");
        let slave = OpenOptions::new()
            .read(true)
            .write(true)
            .open(name.to_str().expect("utf-8 pty name"))
            .expect("open the terminal side");
        (File::from(master), slave)
    }
}

fn us_per_step(d: Duration, n: usize) -> f64 {
    d.as_secs_f64() * 1e6 / n as f64
}

fn main() {
    let (sizes, repeat) = common::sizes_and_repeat(5);
    let shapes: Vec<String> = std::env::var("DRFLOW_BENCH_SHAPES")
        .ok()
        .map(|s| s.split(',').map(|x| x.trim().to_owned()).collect())
        .unwrap_or_else(|| SHAPES.map(String::from).to_vec());
    let tty = cfg!(unix) && std::env::var("DRFLOW_BENCH_TTY").map_or(true, |v| v != "0");
    let dir: PathBuf = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("binary-bench");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("bench dir");
    println!(
        "{:<7} {:>7} | {:>8} {:>8} {:>6} | {:>8} {:>8} {:>6} | {:>9}",
        "shape", "steps", "lib off", "bin off", "ratio", "lib on", "bin on", "ratio", "bin on tty"
    );
    for &n in &sizes {
        for shape in shapes.iter().map(String::as_str) {
            let src = runbook(shape, n);
            let file = dir.join(format!("{shape}-{n}.yaml"));
            std::fs::write(&file, &src).expect("runbook file");
            let mut best = [Duration::MAX; 5];
            for _ in 0..repeat {
                let runs = [
                    library(&src, false, &dir),
                    binary(&file, false, Output::Files, &dir),
                    library(&src, true, &dir),
                    binary(&file, true, Output::Files, &dir),
                    #[cfg(unix)]
                    if tty {
                        binary(&file, true, Output::Terminal, &dir)
                    } else {
                        Duration::ZERO
                    },
                    #[cfg(not(unix))]
                    Duration::ZERO,
                ];
                for (b, r) in best.iter_mut().zip(runs) {
                    *b = (*b).min(r);
                }
                for f in ["library.db", "library.db-wal", "library.db-shm"] {
                    let _ = std::fs::remove_file(dir.join(f));
                }
            }
            let [lib_off, bin_off, lib_on, bin_on, tty] = best.map(|d| us_per_step(d, n));
            println!(
                "{shape:<7} {n:>7} | {lib_off:>8.2} {bin_off:>8.2} {:>5.2}x | {lib_on:>8.2} {bin_on:>8.2} {:>5.2}x | {tty:>9.2}",
                bin_off / lib_off,
                bin_on / lib_on,
            );
        }
    }
    println!("(µs per step, best of {repeat}; ratio = binary / library)");
    if std::env::var("DRFLOW_BENCH_PROVISION").map_or(true, |v| v != "0") {
        let best = (0..repeat)
            .map(|_| provision(&dir))
            .min()
            .unwrap_or_default();
        println!(
            "provision (runbooks/provision.yaml, eu.yaml) on the sim, journaled, from spawn to exit: {:.0} ms (best of {repeat})",
            best.as_secs_f64() * 1000.0
        );
    }
    if std::env::var("DRFLOW_BENCH_FAILOVER").map_or(true, |v| v != "0") {
        // Once through the test build (`cargo test`, no `--bench`): the eu layout only.
        let params: &[&str] = if !std::env::args().any(|a| a == "--bench") {
            &["eu.yaml"]
        } else {
            &["eu.yaml", "us-east.yaml"]
        };
        for params in params {
            let f = failover(&dir, params, repeat);
            println!(
                "failover (runbooks/failover.yaml, {params}) of a region outage on the sim, journaled, from spawn to exit: {:.0} ms (best of {repeat}) for {:.0} s of virtual time, decision {}",
                f.wall.as_secs_f64() * 1000.0,
                f.virtual_ms as f64 / 1000.0,
                f.decision,
            );
        }
    }
    if std::env::var("DRFLOW_BENCH_DRILL").map_or(true, |v| v != "0") {
        let bench = std::env::args().any(|a| a == "--bench");
        let (wall, report) = (0..repeat.max(1))
            .map(|_| drill(&["--scenario", "region-outage"]))
            .min_by_key(|(wall, _)| *wall)
            .expect("at least one drill");
        println!(
            "drill region-outage through the binary, from spawn to exit: {:.0} ms (best of {repeat}): decision {}, RTO {} s, critical path {} s, engine {} s, RPO {} s",
            wall.as_secs_f64() * 1000.0,
            report["decision"],
            report["rto_seconds"],
            report["critical_path_seconds"],
            report["engine_seconds"],
            report["rpo_seconds"],
        );
        // Once through the test build (`cargo test`, no `--bench`): the single drill only.
        if bench {
            let (wall, reports) = (0..repeat.max(1))
                .map(|_| drill(&["--all"]))
                .min_by_key(|(wall, _)| *wall)
                .expect("at least one drill");
            let met = reports.as_array().map_or(0, |l| {
                l.iter().filter(|r| r["objectives_met"] == true).count()
            });
            println!(
                "drill --all (8 scenarios) through the binary, from spawn to exit: {:.0} ms (best of {repeat}), {met} of 8 met",
                wall.as_secs_f64() * 1000.0,
            );
        }
    }
}

/// `drflow drill ARGS --output json` from the repository root (its temporary state dir, the
/// built-in triggers' `drflow.yaml`), timed from spawn to exit; the report it printed.
fn drill(args: &[&str]) -> (Duration, serde_json::Value) {
    let mut cmd = Command::new(drflow());
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg("drill")
        .args(args)
        .args(["--output", "json"])
        .env_remove("DRFLOW_LOG")
        .env_remove("DRFLOW_TARGET")
        .env_remove("DRFLOW_STATE_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let t = Instant::now();
    let out = cmd.output().expect("drflow runs");
    let wall = t.elapsed();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a JSON report");
    (wall, report)
}

/// `drflow` on the state dir `state`, from the repository root, as a user runs it there.
fn drflow_in(state: &Path) -> Command {
    let mut cmd = Command::new(drflow());
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg("--state-dir")
        .arg(state)
        .env_remove("DRFLOW_LOG")
        .env_remove("DRFLOW_TARGET")
        .env_remove("DRFLOW_STATE_DIR")
        .env_remove("DRFLOW_JOURNAL_SYNC")
        .stdin(Stdio::null());
    cmd
}

/// Runs `drflow args` untimed, for a bench's setup.
fn setup(state: &Path, args: &[&str]) {
    let out = drflow_in(state).args(args).output().expect("drflow runs");
    assert!(
        out.status.success(),
        "drflow {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `drflow run runbooks/provision.yaml` on a fresh simulated cloud, as a user runs it: the sim's
/// whole path (world in memory, checkpoints, the final save) plus the journal.
fn provision(dir: &Path) -> Duration {
    let state = dir.join("provision-state");
    let _ = std::fs::remove_dir_all(&state);
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let t = Instant::now();
    let status = Command::new(drflow())
        .current_dir(repo)
        .args([
            "run",
            "runbooks/provision.yaml",
            "--params-file",
            "runbooks/params/eu.yaml",
            "--output",
            "json",
        ])
        .arg("--state-dir")
        .arg(&state)
        .env_remove("DRFLOW_TARGET")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("drflow runs");
    let took = t.elapsed();
    assert!(status.success(), "provision failed");
    took
}

/// The best failover of a region outage: its wall time and what the run reported.
struct Failover {
    wall: Duration,
    virtual_ms: u64,
    decision: String,
}

/// `drflow run runbooks/failover.yaml` of a region outage, as `tests/failover.rs` sets one up
/// through the binary: provision (untimed), ten minutes for writes to flow and every check and
/// alarm to settle, the outage, 45 s for the health checkers to see it. The world is set up
/// once and each timed run starts from a copy of that state dir (journal included), since a
/// failover changes the world; timed from spawn to exit, best of `repeat`.
fn failover(dir: &Path, params: &str, repeat: usize) -> Failover {
    let params_file = format!("runbooks/params/{params}");
    let template = dir.join(format!("failover-template-{params}"));
    let _ = std::fs::remove_dir_all(&template);
    setup(
        &template,
        &[
            "run",
            "runbooks/provision.yaml",
            "--params-file",
            &params_file,
        ],
    );
    setup(&template, &["sim", "advance", "10m"]);
    setup(&template, &["sim", "fault", "region-outage"]);
    setup(&template, &["sim", "advance", "45s"]);
    let state = dir.join("failover-state");
    let mut best: Option<Failover> = None;
    for _ in 0..repeat.max(1) {
        let _ = std::fs::remove_dir_all(&state);
        copy_dir(&template, &state);
        let mut cmd = drflow_in(&state);
        cmd.args([
            "run",
            "runbooks/failover.yaml",
            "--params-file",
            &params_file,
            "--output",
            "json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
        let t = Instant::now();
        let out = cmd.output().expect("drflow runs");
        let wall = t.elapsed();
        assert!(out.status.success(), "failover ({params}) failed");
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a JSON report");
        let virtual_ms = report["virtual_duration_ms"]
            .as_u64()
            .or_else(|| report["duration_ms"].as_u64())
            .expect("the run's duration");
        let decision = report["outputs"]["decision"]
            .as_str()
            .unwrap_or("?")
            .to_string();
        assert_eq!(decision, "failover", "{params}: {report:#}");
        if best.as_ref().is_none_or(|b| wall < b.wall) {
            best = Some(Failover {
                wall,
                virtual_ms,
                decision,
            });
        }
    }
    best.expect("at least one run")
}

/// Copies the files of `from` into `to`, recursively.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("dir entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}
