//! `drflow drill`: parse the arguments, play the scenarios ([`crate::drill`]), print, exit.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use drflow_steps::sim::Scenario;

use crate::drill::config::DrillConfig;
use crate::drill::model::DrillReport;
use crate::drill::run::{self, Plan};
use crate::drill::{html, render};
use crate::{EXIT_FAILED, EXIT_OK, Failure, Global, parse_flags};

/// `drflow drill`.
#[derive(Args)]
pub struct DrillArgs {
    /// The scenario: region-outage, db-failure, az-loss, app-unhealthy, flapping, lag-spike,
    /// partition or capacity-short.
    #[arg(long, value_name = "NAME")]
    scenario: Option<String>,
    /// Play every scenario and print a table.
    #[arg(long)]
    all: bool,
    /// Set a parameter of the provision, the failover runbook or the drill (`rto_objective`,
    /// default 5m; `rpo_objective`, default 1m): `-p name=value`.
    #[arg(short = 'p', long = "param", value_name = "NAME=VALUE")]
    params: Vec<String>,
    /// A YAML file of parameters (`name: value` lines) over the trigger's `params_file`; `-p`
    /// overrides it.
    #[arg(long)]
    params_file: Option<PathBuf>,
    /// The triggers (default: ./drflow.yaml if there is one, else the copy built into drflow).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Also write a self-contained HTML page of the drill (one scenario only).
    #[arg(long, value_name = "FILE.html")]
    report: Option<PathBuf>,
    /// text (a timeline and the figures; a table with --all), json (the report; a list with
    /// --all) or markdown (docs/drills.md).
    #[arg(long, default_value = "text")]
    output: DrillOutput,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum DrillOutput {
    Text,
    Json,
    Markdown,
}

/// The scenarios asked for. Errors (exit 2): neither or both of `--scenario` and `--all`; an
/// unknown name (the nearest one suggested).
fn scenarios(args: &DrillArgs) -> Result<Vec<Scenario>, Failure> {
    let names: Vec<&str> = Scenario::ALL.iter().map(|s| s.name()).collect();
    match (&args.scenario, args.all) {
        (Some(_), true) => Err(Failure::invalid(
            "error: --scenario and --all together: a drill plays one scenario or all of them\n  hint: leave one of them out\n",
        )),
        (None, false) => Err(Failure::invalid(format!(
            "error: which scenario? none was given\n  hint: pass --scenario NAME ({}) or --all\n",
            names.join(", ")
        ))),
        (None, true) => Ok(Scenario::ALL.to_vec()),
        (Some(name), false) => Scenario::parse(name.trim())
            .map(|s| vec![s])
            .ok_or_else(|| {
                Failure::invalid(format!(
                    "error: --scenario {name}: no such scenario\n  hint: {}\n",
                    drflow_engine::suggest(name, &names)
                ))
            }),
    }
}

/// Whether `--state-dir` was given on the command line: the drill then keeps its state there;
/// otherwise (even with `DRFLOW_STATE_DIR` set) it works in a temporary directory, so that a
/// drill never touches the state of real runs.
fn state_dir_given() -> bool {
    std::env::args().any(|a| a == "--state-dir" || a.starts_with("--state-dir="))
}

/// `drflow drill`.
pub fn cmd_drill(global: &Global, args: DrillArgs) -> Result<u8, Failure> {
    let scenarios = scenarios(&args)?;
    if global.target != crate::Target::Sim {
        return Err(Failure::invalid(
            "error: --target aws: a drill plays failures on the simulated cloud only\n  hint: leave --target (and DRFLOW_TARGET) out\n",
        ));
    }
    if args.all && args.report.is_some() {
        return Err(Failure::invalid(
            "error: --report writes the page of one drill, and --all plays every scenario\n  hint: pass --scenario NAME with --report\n",
        ));
    }
    let flags = parse_flags(&args.params)?;
    let config = DrillConfig::load(args.config.as_deref())?;
    let plan = Plan::prepare(config, args.params_file.as_deref(), &flags, global.verbose)?;
    let root = state_dir_given().then(|| global.state_dir.clone());
    let mut dirs = Vec::new();
    for s in &scenarios {
        dirs.push(match &root {
            Some(r) => Dir::Kept(run::user_state(r, *s, args.all)?),
            None => Dir::Temp(run::temp_state()?),
        });
    }
    let reports = play_all(&plan, &scenarios, &dirs)?;
    if let (Some(path), Some(r)) = (&args.report, reports.first()) {
        std::fs::write(path, html::render(r)).map_err(|e| Failure {
            diagnostics: Vec::new(),
            code: EXIT_FAILED,
            message: format!("error: cannot write {}: {e}", path.display()),
        })?;
    }
    match (args.output, args.all) {
        (DrillOutput::Json, false) => outln!("{:#}", json(&reports[0])),
        (DrillOutput::Json, true) => outln!(
            "{:#}",
            serde_json::Value::Array(reports.iter().map(json).collect())
        ),
        (DrillOutput::Markdown, _) => out!("{}", render::markdown(&reports)),
        (DrillOutput::Text, false) => out!("{}", render::text(&reports[0])),
        (DrillOutput::Text, true) => {
            let wall: u64 = reports.iter().map(|r| r.wall_ms).sum();
            out!("{}", render::table(&reports));
            outln!(
                "\n{} scenarios, {} met; {:.2} s of drilling",
                reports.len(),
                reports.iter().filter(|r| r.objectives_met).count(),
                wall as f64 / 1000.0
            );
        }
    }
    let met = reports.iter().all(|r| r.objectives_met);
    Ok(if met { EXIT_OK } else { EXIT_FAILED })
}

fn json(r: &DrillReport) -> serde_json::Value {
    serde_json::to_value(r).unwrap_or_default()
}

/// A drill's state directory: the user's, kept, or a temporary one, removed at the end.
enum Dir {
    Kept(PathBuf),
    Temp(tempfile::TempDir),
}

impl Dir {
    fn path(&self) -> &std::path::Path {
        match self {
            Dir::Kept(p) => p,
            Dir::Temp(t) => t.path(),
        }
    }
}

/// Plays the scenarios, as many at once as there are cores (each on its own runtime and
/// world), and returns their reports in the order asked.
fn play_all(
    plan: &Plan,
    scenarios: &[Scenario],
    dirs: &[Dir],
) -> Result<Vec<DrillReport>, Failure> {
    let workers = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .clamp(1, scenarios.len().max(1));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: std::sync::Mutex<Vec<Option<Result<DrillReport, Failure>>>> =
        std::sync::Mutex::new((0..scenarios.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(&scenario) = scenarios.get(i) else {
                        return;
                    };
                    eprintln!("drflow: drill {}: playing", scenario.name());
                    let play = || run::play(plan, scenario, dirs[i].path());
                    let result = if plan.verbose == 0 {
                        // The provision's resource lines would bury the drill's own output.
                        tracing::subscriber::with_default(
                            tracing::subscriber::NoSubscriber::default(),
                            play,
                        )
                    } else {
                        play()
                    };
                    if let Ok(r) = &result {
                        eprintln!(
                            "drflow: drill {}: {}, RTO {}, {} ({:.2} s)",
                            r.scenario,
                            r.decision,
                            r.rto_seconds
                                .map_or("-".to_string(), |s| format!("{s:.1} s")),
                            if r.objectives_met { "met" } else { "NOT MET" },
                            r.wall_ms as f64 / 1000.0
                        );
                    }
                    if let Ok(mut all) = results.lock() {
                        all[i] = Some(result);
                    }
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_default()
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(Failure::invalid("error: a drill did not finish"))))
        .collect()
}
