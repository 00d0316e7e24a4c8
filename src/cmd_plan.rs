//! `drflow plan RUNBOOK`: the forecast of a run before anything is done. The runbook runs on a
//! scratch copy of the simulated world on the sim's virtual clock ([`crate::plan::plan_run`]),
//! and [`crate::forecast`] reads that run as the forecast: what each step would do and when,
//! the critical path, the total, and a failover's RTO against the objective. Nothing is
//! changed, journaled or locked.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use drflow_engine::{CheckTime, Outputs, parse_duration, redacted};

use crate::forecast::{Figures, Forecast};
use crate::{
    EXIT_FAILED, EXIT_OK, Failure, Global, OutputFormat, Target, cmd_validate, load, parse_flags,
    registry,
};

/// `drflow plan`.
#[derive(Args)]
pub struct PlanArgs {
    /// The runbook file.
    file: PathBuf,
    /// Set a parameter: `-p name=value` (lists and maps in YAML flow style: `-p azs=[a,b]`).
    #[arg(short = 'p', long = "param", value_name = "NAME=VALUE")]
    params: Vec<String>,
    /// A YAML file of parameters (`name: value` lines); `-p` overrides it.
    #[arg(long)]
    params_file: Option<PathBuf>,
    /// The RTO objective the forecast is judged against, e.g. `5m` or `90s` (more than zero).
    #[arg(long, default_value = "5m", value_name = "DURATION", value_parser = parse_objective)]
    rto: Duration,
    /// text (each step, the critical path, the forecast) or json (one document on stdout).
    #[arg(long, default_value = "text")]
    output: OutputFormat,
}

impl PlanArgs {
    /// Whether the caller wants one JSON document.
    pub fn json(&self) -> bool {
        self.output == OutputFormat::Json
    }
}

/// An objective of zero could never be met: refuse it rather than forecast a certain miss.
fn parse_objective(s: &str) -> Result<Duration, String> {
    match parse_duration(s)? {
        d if d.is_zero() => Err("the RTO objective must be more than zero, e.g. `5m`".into()),
        d => Ok(d),
    }
}

/// Forecasts a run of `args.file` on the state dir's simulated world. Exit 0 when the forecast
/// RTO is within the objective (or the runbook has none and no step would fail), 1 when it
/// misses it or a step would fail, 2 for bad input.
pub fn cmd_plan(global: &Global, args: &PlanArgs) -> Result<u8, Failure> {
    if global.target == Target::Aws {
        return Err(Failure::invalid(
            "error: --target aws: `drflow plan` forecasts on the simulated cloud, whose timings \
             it runs the runbook on; it cannot forecast a real account\n  hint: plan against a \
             simulated world, the default target (`--target sim`): build one with `drflow run \
             runbooks/provision.yaml --params-file …` (and `drflow sim fault …` to rehearse a \
             failure), or point --state-dir at a state dir that holds one\n",
        ));
    }
    let world = read_world(global)?;
    let (mut rb, source) = load(&args.file, &registry(global))?;
    let flags = parse_flags(&args.params)?;
    let (resolved, _) = cmd_validate::resolve_and_check(
        &rb,
        &source,
        args.params_file.as_deref(),
        &flags,
        CheckTime::Run {
            run_id: "plan",
            started_at: world.clock_ms as f64 / 1000.0,
        },
        true,
    )?;
    let params: Outputs = resolved.values;
    if world.regions.is_empty() {
        eprintln!(
            "drflow: {} holds no simulated world yet: planning against an empty one",
            global.state_dir.display()
        );
    }
    eprintln!(
        "drflow: plan of {} ({}) on the simulated world at {}: run against a scratch copy on \
         the sim's clock; nothing is changed, journaled or locked",
        rb.name,
        args.file.display(),
        drflow_engine::iso8601(world.clock_ms as f64 / 1000.0),
    );
    let outcome = crate::plan::plan_run(global, &mut rb, &params)?;
    // The runbook's RTO ends when Route 53 answers with the new side (`dr.failover_report`);
    // a client that asked just before keeps the old answer for the record's TTL.
    let client_ttl = outcome
        .steps
        .iter()
        .filter_map(|s| s.outputs.as_ref()?.get("record_name")?.as_str())
        .find_map(|name| drflow_steps::record_ttl_ms(&world, name))
        .unwrap_or(world.config.dns_alias_ttl_ms);
    let figures = Figures {
        started_at_ms: world.clock_ms,
        objective: args.rto,
        client_ttl: Some(Duration::from_millis(client_ttl)),
    };
    let forecast = Forecast::new(&rb, redacted(&rb, &params), &outcome, &figures);
    match args.output {
        OutputFormat::Text => {
            for step in &outcome.hidden {
                outln!(
                    "? step `{step}`: its changes are not shown, because its inputs derive from \
                     a secret"
                );
            }
            out!("{}", forecast.text());
            outln!("{}", outcome.plan.count_line());
        }
        OutputFormat::Json => outln!("{:#}", forecast.json()),
    }
    Ok(if forecast.ok() { EXIT_OK } else { EXIT_FAILED })
}

/// The state dir's simulated world, read without a lock (a missing one is empty); one that
/// cannot be read is bad input: the forecast has nothing to run on.
fn read_world(global: &Global) -> Result<drflow_steps::sim::World, Failure> {
    let path = drflow_steps::sim::world_path(&global.state_dir);
    drflow_steps::sim::load_world(&path).map_err(|e| {
        Failure::invalid(format!(
            "error: cannot read the simulated world in {}: {e}\n  hint: `drflow plan` forecasts \
             on the state dir's simulated world: point --state-dir (or DRFLOW_STATE_DIR) at the \
             state dir a provision ran in, or start a new world with `drflow sim reset` and \
             `drflow run runbooks/provision.yaml --params-file …`\n",
            global.state_dir.display()
        ))
    })
}
