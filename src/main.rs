//! The `drflow` command: parses arguments, calls the engine and the step library, and maps
//! outcomes to exit codes (0 success, 1 a step failed, 2 invalid input, 130 interrupted).

/// `print!` that ends the process quietly when stdout is a closed pipe (`drflow … | head`)
/// instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = write!(std::io::stdout(), $($arg)*) {
            $crate::stdout_failed(e);
        }
    }};
}

/// `println!` that ends the process quietly when stdout is a closed pipe.
macro_rules! outln {
    () => { out!("\n") };
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout(), $($arg)*) {
            $crate::stdout_failed(e);
        }
    }};
}

mod cmd_daemon;
mod cmd_drill;
mod cmd_journal;
mod cmd_plan;
mod cmd_policy;
mod cmd_sim;
mod cmd_triggers;
mod cmd_validate;
mod confirm;
mod drill;
mod forecast;
mod log;
mod plan;
mod progress;
mod reference;
mod report;
mod runtime;
mod shared_journal;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use drflow_engine::runner::StartOptions;
use drflow_engine::{
    CheckTime, Diagnostics, GraphFormat, Outputs, Registry, RunOptions, Runbook, Stop, compile,
    parse_duration, redacted,
};
use tokio::sync::watch;

/// Exit code: every step succeeded.
const EXIT_OK: u8 = 0;
/// Exit code: a step failed (or the run timed out).
const EXIT_FAILED: u8 = 1;
/// Exit code: the runbook, its parameters or the command line were invalid; nothing ran.
const EXIT_INVALID: u8 = 2;
/// Exit code: Ctrl-C or SIGTERM stopped the run.
const EXIT_INTERRUPTED: u8 = 130;

#[derive(Parser)]
#[command(
    name = "drflow",
    version,
    about = "Runs YAML runbooks as a DAG of typed steps: provision, fail over and drill a two-region AWS setup.",
    after_help = "Exit codes: 0 success, 1 a step failed, 2 invalid input (nothing ran), 130 interrupted."
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct Global {
    /// Where runs, locks and the simulated cloud are kept.
    #[arg(
        long,
        global = true,
        env = "DRFLOW_STATE_DIR",
        default_value = ".drflow",
        value_parser = parse_state_dir
    )]
    state_dir: PathBuf,
    /// Which cloud the steps act on: the embedded simulation, or AWS through the SDK.
    #[arg(long, global = true, env = "DRFLOW_TARGET", default_value = "sim")]
    target: Target,
    /// With --target aws: the named profile of ~/.aws/config to take credentials and settings
    /// from (default: AWS_PROFILE, else `default`).
    #[arg(long, global = true, value_name = "NAME")]
    profile: Option<String>,
    /// With --target aws: send every AWS call to this endpoint, e.g. an emulator such as moto
    /// (`http://127.0.0.1:5000`). AWS_ENDPOINT_URL does the same.
    #[arg(long, global = true, value_name = "URL", value_parser = parse_endpoint_url)]
    endpoint_url: Option<String>,
    /// With --target aws: also journal runs (and take their locks) in this DynamoDB table, so
    /// that a second machine can see and finish them: `dynamodb://TABLE[?region=REGION]`, the
    /// `drflow-state-<env_suffix>` table provision makes (docs/operations.md). Every machine
    /// must name the same region.
    #[arg(
        long,
        global = true,
        env = "DRFLOW_JOURNAL",
        value_name = "dynamodb://TABLE",
        value_parser = shared_journal::parse_journal
    )]
    journal: Option<shared_journal::DynamoJournal>,
    /// Say more on stderr (repeat for more: -vv, -vvv).
    ///
    /// By default a run shows a line per resource created, changed or deleted, the runbook's
    /// own messages, warnings, and steps that fail. -v adds each step's start and end and every
    /// INFO log record, -vv DEBUG records, -vvv TRACE records. DRFLOW_LOG=<tracing filter>
    /// (e.g. DRFLOW_LOG=debug) picks the log records instead.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Target {
    /// The embedded simulated cloud (no account needed).
    Sim,
    /// Real AWS (or an emulator) through the SDK, with the credentials of the AWS default chain
    /// (environment, profiles, SSO, instance role).
    Aws,
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Target::Sim => "sim",
            Target::Aws => "aws",
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Compile and run a runbook.
    Run(RunArgs),
    /// Forecast a run on the simulated world before anything is done: what each step would do,
    /// when it would start and how long it would take on the sim's clock, the critical path,
    /// and a failover's RTO against the objective. Changes nothing.
    Plan(cmd_plan::PlanArgs),
    /// Print the least-privilege IAM policy for running a runbook on the aws target: the
    /// permissions of the step types it uses (docs/policy.md). Contacts nothing.
    Policy(cmd_policy::PolicyArgs),
    /// Compile runbooks and check the values known before a run (with -p/--params-file, a
    /// deployment's parameters too); report every problem; runs nothing.
    Validate(cmd_validate::ValidateArgs),
    /// List every step type with its parameters and outputs.
    Steps {
        /// text, markdown (the docs page) or json.
        #[arg(long, default_value = "text")]
        format: StepsFormat,
    },
    /// Print a JSON Schema for runbook files (for editors and the YAML language server).
    Schema,
    /// Draw a runbook's DAG.
    Graph {
        /// The runbook.
        file: PathBuf,
        /// text (waves of parallel steps), dot (Graphviz) or mermaid.
        #[arg(long, default_value = "text")]
        format: GraphArg,
    },
    /// Continue a run that crashed, was interrupted or failed: succeeded steps are not run again.
    Resume(cmd_journal::ResumeArgs),
    /// List the journaled runs, newest first, with the environment (suffix, regions) of each.
    Runs(cmd_journal::RunsArgs),
    /// Show a run: a timeline of every step and attempt with errors, and a table of its steps.
    Show(cmd_journal::ShowArgs),
    /// Print a finished run's outputs again (default: the latest provision of an environment),
    /// and whether the simulated world still holds what they name.
    Outputs(cmd_journal::OutputsArgs),
    /// Undo a run's succeeded steps in reverse dependency order.
    Rollback(cmd_journal::RollbackArgs),
    /// Play a failure scenario on the simulated cloud, from provision to the first trade served
    /// again, and measure RTO, RPO and the critical path against the objectives.
    #[command(
        after_help = "State: a drill does not use the --state-dir default (.drflow) or DRFLOW_STATE_DIR. \
It plays in a temporary directory, removed when it ends, so its run id leads nowhere afterwards. \
Give --state-dir D on the command line (a new or empty directory; one subdirectory per scenario \
with --all) to keep its world and journal there, for `drflow show RUN --state-dir D`."
    )]
    Drill(cmd_drill::DrillArgs),
    /// Look at, clear, break or heal the embedded simulated cloud, or move its time (under the
    /// state directory).
    Sim {
        #[command(subcommand)]
        action: cmd_sim::SimAction,
    },
    /// Watch the alarm events of one environment and start the runbook of each drflow.yaml
    /// trigger that fires, by itself (docs/operations.md).
    Daemon(cmd_daemon::DaemonArgs),
    /// Check drflow.yaml, which says which events start which runbook (docs/triggers.md), and
    /// replay recorded events through its triggers.
    Triggers {
        #[command(subcommand)]
        action: cmd_triggers::TriggersAction,
    },
}

#[derive(Args)]
struct RunArgs {
    /// The runbook file.
    file: PathBuf,
    /// Set a parameter: `-p name=value` (lists and maps in YAML flow style: `-p azs=[a,b]`).
    #[arg(short = 'p', long = "param", value_name = "NAME=VALUE")]
    params: Vec<String>,
    /// A YAML file of parameters (`name: value` lines); `-p` overrides it.
    #[arg(long)]
    params_file: Option<PathBuf>,
    #[command(flatten)]
    exec: ExecArgs,
    /// text (progress and a summary table) or json (one document on stdout).
    #[arg(long, default_value = "text")]
    output: OutputFormat,
    #[command(flatten)]
    durable: cmd_journal::DurableArgs,
    /// Print what the run would create, change and delete, and change nothing: it runs against
    /// a scratch copy of the simulated cloud, with no journal and no lock.
    #[arg(long)]
    plan: bool,
    /// Do not ask before a destructive runbook (runbooks/destroy.yaml) deletes; required when
    /// there is no terminal to ask on.
    #[arg(short = 'y', long)]
    yes: bool,
}

/// How a run (new or resumed) executes: shared by `run` and `resume`.
#[derive(Args)]
struct ExecArgs {
    /// Run at most this many steps at once (default: no limit).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    max_parallel: Option<u32>,
    /// Stop the run after this long, e.g. `10m` (more than zero); running steps are cancelled.
    #[arg(long, value_parser = parse_timeout_arg)]
    timeout: Option<Duration>,
    /// After Ctrl-C or SIGTERM, how long running steps may finish before they are cancelled.
    #[arg(long, default_value = "10s", value_parser = parse_duration_arg)]
    grace: Duration,
}

impl ExecArgs {
    /// Sets the scheduler options these flags control.
    fn apply(&self, options: &mut RunOptions) {
        options.max_parallel = self.max_parallel.map(|n| n as usize);
        options.timeout = self.timeout;
        options.grace = self.grace;
    }
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum OutputFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum StepsFormat {
    Text,
    Markdown,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum GraphArg {
    Text,
    Dot,
    Mermaid,
}

/// `drflow --state-dir runs`: the command name became the directory, so clap's own error (no
/// command, or an unknown one) would point at the wrong word. Says what happened instead.
fn state_dir_swallowed_command(args: &[String]) -> Option<String> {
    use clap::CommandFactory as _;
    let cli = Cli::command();
    let taken = args
        .windows(2)
        .find(|w| w[0] == "--state-dir")
        .map(|w| w[1].as_str())?;
    cli.find_subcommand(taken)?;
    Some(format!(
        "`--state-dir` needs a directory, and took the command name `{taken}` as one\n  \
         hint: write `drflow --state-dir DIR {taken} …`, or leave --state-dir out to use \
         $DRFLOW_STATE_DIR or .drflow\n"
    ))
}

/// An empty `DRFLOW_STATE_DIR=` means the default, as an unset one does.
fn parse_state_dir(s: &str) -> Result<PathBuf, String> {
    Ok(PathBuf::from(if s.is_empty() { ".drflow" } else { s }))
}

fn parse_duration_arg(s: &str) -> Result<Duration, String> {
    parse_duration(s)
}

/// A run's `--timeout`, like a step's `timeout:`, must leave some time: `0s` would cancel the
/// run before its first step.
fn parse_timeout_arg(s: &str) -> Result<Duration, String> {
    match parse_duration(s)? {
        d if d.is_zero() => Err(
            "a timeout must be more than zero; give the run a limit such as `30m`, or leave --timeout out for none".into(),
        ),
        d => Ok(d),
    }
}

/// `--endpoint-url`: an absolute http(s) URL with a host, so that a typo fails here rather than
/// as a connection error on the first AWS call.
fn parse_endpoint_url(s: &str) -> Result<String, String> {
    let s = s.trim();
    let rest = s
        .strip_prefix("http://")
        .or_else(|| s.strip_prefix("https://"))
        .ok_or_else(|| {
            format!("`{s}` is not an http:// or https:// URL; write e.g. `http://127.0.0.1:5000`")
        })?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() || host.starts_with(':') {
        return Err(format!(
            "`{s}` names no host; write e.g. `http://127.0.0.1:5000`"
        ));
    }
    Ok(s.to_string())
}

/// `--profile` and `--endpoint-url` choose how the aws target reaches AWS: given with the sim
/// target they would be silently ignored, so they are refused instead.
fn check_aws_flags(global: &Global) -> Result<(), Failure> {
    if global.target == Target::Aws {
        return Ok(());
    }
    let given: Vec<&str> = [
        global.profile.as_ref().map(|_| "--profile"),
        global.endpoint_url.as_ref().map(|_| "--endpoint-url"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if given.is_empty() {
        return Ok(());
    }
    Err(Failure::invalid(format!(
        "error: {} only {} to --target aws, and the target is sim; nothing was run\n  \
         hint: add `--target aws` to act on AWS, or leave {} out to use the simulated cloud\n",
        given.join(" and "),
        if given.len() == 1 { "applies" } else { "apply" },
        if given.len() == 1 { "it" } else { "them" }
    )))
}

/// Refuses `--target aws` for a command that works on the simulated cloud only.
fn sim_only(global: &Global, what: &str) -> Result<(), Failure> {
    if global.target == Target::Sim {
        return Ok(());
    }
    Err(Failure::invalid(format!(
        "error: --target aws: {what} works on the simulated cloud only; nothing was done\n  \
         hint: leave --target (and DRFLOW_TARGET) out\n"
    )))
}

/// A failure of the command itself, with the exit code it maps to.
struct Failure {
    code: u8,
    message: String,
    /// The problems behind an invalid-input failure, for `--output json`.
    diagnostics: Vec<drflow_engine::Diagnostic>,
}

impl Failure {
    fn invalid(message: impl Into<String>) -> Failure {
        Failure {
            diagnostics: Vec::new(),
            code: EXIT_INVALID,
            message: message.into(),
        }
    }

    /// Invalid input found by the compiler or the parameter resolver, rendered against sources.
    fn diagnostics(d: Diagnostics, sources: &[(&str, &str)]) -> Failure {
        Failure {
            code: EXIT_INVALID,
            message: d.render(sources),
            diagnostics: d.0,
        }
    }

    /// The one JSON document `--output json` promises, for a run that could not start.
    fn json(&self) -> serde_json::Value {
        let first_line = self.message.lines().next().unwrap_or_default();
        let errors: Vec<String> = if self.diagnostics.is_empty() {
            vec![first_line.trim_start_matches("error: ").to_string()]
        } else {
            self.diagnostics.iter().map(ToString::to_string).collect()
        };
        let diagnostics: Vec<serde_json::Value> = self
            .diagnostics
            .iter()
            .map(|d| {
                serde_json::json!({
                    "file": &*d.file,
                    "line": d.pos.line,
                    "col": d.pos.col,
                    "message": d.message,
                    "hint": d.hint,
                })
            })
            .collect();
        serde_json::json!({
            "run_id": null,
            "status": if self.code == EXIT_INVALID { "invalid" } else { "failed" },
            "steps": [],
            "outputs": {},
            "errors": errors,
            "diagnostics": diagnostics,
        })
    }
}

/// Whoever reads our output went away (`| head`): stop quietly, as `cat` would. Any other
/// failure to write is reported.
fn stdout_failed(e: std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("error: cannot write to standard output: {e}");
    std::process::exit(i32::from(EXIT_FAILED));
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(mut e) => {
            // `--output json` promises one JSON document, even for a flag clap refused.
            let args: Vec<String> = std::env::args().collect();
            if e.use_stderr()
                && let Some(message) = state_dir_swallowed_command(&args)
            {
                e = clap::Error::raw(clap::error::ErrorKind::InvalidValue, message);
            }
            let wants_json = args
                .windows(2)
                .any(|w| w[0] == "--output" && w[1] == "json")
                || args.iter().any(|a| a == "--output=json");
            if wants_json && e.use_stderr() {
                let message = e.to_string();
                let first = message.lines().next().unwrap_or_default();
                outln!(
                    "{:#}",
                    serde_json::json!({
                        "run_id": null,
                        "status": "invalid",
                        "steps": [],
                        "outputs": {},
                        "errors": [first.trim_start_matches("error: ")],
                        "diagnostics": [],
                    })
                );
            }
            e.exit();
        }
    };
    log::init(cli.global.verbose, std::io::stderr().is_terminal());
    let result = match check_aws_flags(&cli.global) {
        Err(f) => Err(f),
        Ok(()) => dispatch(cli),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            eprint!("{}", f.message);
            if !f.message.ends_with('\n') {
                eprintln!();
            }
            ExitCode::from(f.code)
        }
    }
}

/// Runs the command the arguments name.
fn dispatch(cli: Cli) -> Result<u8, Failure> {
    match cli.command {
        Command::Run(args) => {
            let json = args.output == OutputFormat::Json;
            cmd_run(&cli.global, args).inspect_err(|f| {
                if json && f.code == EXIT_INVALID {
                    outln!("{:#}", f.json());
                }
            })
        }
        Command::Plan(args) => cmd_plan::cmd_plan(&cli.global, &args).inspect_err(|f| {
            if args.json() && f.code == EXIT_INVALID {
                outln!("{:#}", f.json());
            }
        }),
        Command::Validate(args) => cmd_validate::cmd_validate(&args),
        Command::Policy(args) => cmd_policy::cmd_policy(&cli.global, &args),
        Command::Steps { format } => {
            let registry = registry(&cli.global);
            match format {
                StepsFormat::Text => out!("{}", reference::text(&registry)),
                StepsFormat::Markdown => out!("{}", reference::markdown(&registry)),
                StepsFormat::Json => outln!("{:#}", reference::json(&registry)),
            }
            Ok(EXIT_OK)
        }
        Command::Schema => {
            outln!("{:#}", reference::schema(&registry(&cli.global)));
            Ok(EXIT_OK)
        }
        Command::Graph { file, format } => cmd_graph(&cli.global, &file, format),
        Command::Resume(args) => cmd_journal::cmd_resume(&cli.global, args),
        Command::Runs(args) => cmd_journal::cmd_runs(&cli.global, args),
        Command::Show(args) => cmd_journal::cmd_show(&cli.global, args),
        Command::Outputs(args) => {
            let json = args.output == OutputFormat::Json;
            cmd_journal::cmd_outputs(&cli.global, args).inspect_err(|f| {
                if json && f.code == EXIT_INVALID {
                    outln!("{:#}", f.json());
                }
            })
        }
        Command::Rollback(args) => cmd_journal::cmd_rollback(&cli.global, args),
        Command::Drill(args) => cmd_drill::cmd_drill(&cli.global, args),
        Command::Sim { action } => sim_only(&cli.global, "`drflow sim`")
            .and_then(|()| cmd_sim::run(&cli.global.state_dir, &action))
            .map(|()| EXIT_OK),
        Command::Daemon(args) => cmd_daemon::cmd_daemon(&cli.global, args),
        Command::Triggers { action } => cmd_triggers::run(&action),
    }
}

fn cloud_target(global: &Global) -> drflow_steps::Target {
    match global.target {
        Target::Sim => drflow_steps::Target::Sim,
        Target::Aws => drflow_steps::Target::Aws,
    }
}

fn cloud_config(global: &Global) -> drflow_steps::CloudConfig {
    drflow_steps::CloudConfig {
        target: cloud_target(global),
        state_dir: global.state_dir.clone(),
        // Only the flags: aws-config reads AWS_ENDPOINT_URL and AWS_PROFILE itself.
        endpoint_url: global.endpoint_url.clone(),
        profile: global.profile.clone(),
    }
}

fn registry(global: &Global) -> Registry {
    drflow_steps::registry(&cloud_config(global))
}

/// The step registry of a command that runs steps, with the backend its cloud steps share (the
/// runner saves it at checkpoints), both on `runtime`'s clock.
fn cloud(
    global: &Global,
    runtime: &runtime::Runtime,
) -> (Registry, std::sync::Arc<drflow_steps::LazyBackend>) {
    runtime.cloud(&cloud_config(global))
}

fn read(path: &std::path::Path) -> Result<String, Failure> {
    std::fs::read_to_string(path).map_err(|e| {
        Failure::invalid(format!(
            "error: cannot read {}: {e}\n  hint: {}\n",
            path.display(),
            drflow_engine::runner::read_hint(&e)
        ))
    })
}

/// Reads and compiles a runbook, rendering every problem on failure.
fn load(path: &std::path::Path, registry: &Registry) -> Result<(Runbook, String), Failure> {
    let source = read(path)?;
    let name = path.display().to_string();
    compile(&name, &source, registry)
        .map(|rb| (rb, source.clone()))
        .map_err(|d: Diagnostics| Failure::diagnostics(d, &[(name.as_str(), source.as_str())]))
}

/// Refuses up front, rather than failing every cloud step one by one, a runbook that needs the
/// AWS backend when this build has none.
fn refuse_unbuilt_target(global: &Global, rb: &Runbook) -> Result<(), Failure> {
    if drflow_steps::target_unavailable(cloud_target(global)).is_none() {
        return Ok(());
    }
    let cloud: Vec<&str> = rb
        .steps
        .iter()
        .filter(|s| drflow_steps::is_cloud_step(&s.uses))
        .map(|s| s.id.as_str())
        .collect();
    if cloud.is_empty() {
        return Ok(());
    }
    let shown = if cloud.len() > 3 {
        format!("{} and {} more", cloud[..3].join(", "), cloud.len() - 3)
    } else {
        cloud.join(", ")
    };
    Err(Failure::invalid(format!(
        "error: --target aws: this build has no AWS backend yet, and steps of {} act on the cloud ({shown}); nothing was run\n  hint: run it on the embedded simulated cloud, the default target (`--target sim`)\n",
        rb.name
    )))
}

/// `1 step`, `2 steps`.
fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

fn cmd_graph(global: &Global, file: &std::path::Path, format: GraphArg) -> Result<u8, Failure> {
    let (rb, _) = load(file, &registry(global))?;
    let labels: Vec<(&str, &str)> = rb
        .steps
        .iter()
        .map(|s| (s.id.as_str(), s.uses.as_str()))
        .collect();
    let format = match format {
        GraphArg::Text => GraphFormat::Text,
        GraphArg::Dot => GraphFormat::Dot,
        GraphArg::Mermaid => GraphFormat::Mermaid,
    };
    out!("{}", rb.dag.render(&labels, format));
    Ok(EXIT_OK)
}

fn parse_flags(params: &[String]) -> Result<Vec<(String, String)>, Failure> {
    params
        .iter()
        .enumerate()
        .map(|(i, p)| match p.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
            _ => {
                let d = drflow_engine::Diagnostic::new(
                    std::sync::Arc::from(format!("command line, -p flag {}", i + 1).as_str()),
                    drflow_engine::Pos::new(0, 0),
                    format!("`-p {p}` is not of the form NAME=VALUE"),
                )
                .with_hint("write e.g. `-p env_suffix=prod`");
                Err(Failure::diagnostics(Diagnostics(vec![d]), &[]))
            }
        })
        .collect()
}

/// A new run id: the UTC start time plus a random suffix, so ids sort by time.
fn new_run_id() -> String {
    let iso = drflow_engine::iso8601(drflow_engine::now());
    let stamp: String = iso[..19]
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == 'T')
        .collect();
    format!("{stamp}-{:04x}", rand::random::<u16>())
}

fn cmd_run(global: &Global, args: RunArgs) -> Result<u8, Failure> {
    if args.plan {
        sim_only(
            global,
            "`drflow run --plan` (it plays the run on a scratch copy of the simulated world)",
        )?;
    }
    // First, so that the steps and the cloud backend are bound to the run's clock.
    let runtime = runtime::Runtime::start(&cloud_config(global))?;
    let clock = runtime.clock();
    let (registry, backend) = cloud(global, &runtime);
    let (mut rb, runbook_source) = load(&args.file, &registry)?;
    refuse_unbuilt_target(global, &rb)?;
    let flags = parse_flags(&args.params)?;
    let run_id = new_run_id();
    // Every value known before the run is checked before anything is journaled or created.
    let (resolved, _) = cmd_validate::resolve_and_check(
        &rb,
        &runbook_source,
        args.params_file.as_deref(),
        &flags,
        CheckTime::Run {
            run_id: &run_id,
            started_at: clock.now_ms() as f64 / 1000.0,
        },
        true,
    )?;
    let params: Outputs = resolved.values;
    if args.plan {
        return plan::cmd_plan(global, &mut rb, &params, &args.file, args.output);
    }
    let ask = confirm::check_run(&rb, &args.file, args.yes)?;
    let runner = cmd_journal::runner(global, Some(backend), clock.clone())?;
    let start = StartOptions {
        no_journal: args.durable.no_journal,
        lock: args.durable.lock.wait(),
    };
    let session = runtime
        .block_on(runner.start(&rb, &params, &run_id, start))
        .map_err(cmd_journal::runner_failure)?;
    cmd_journal::set_log_secrets(session.secrets());
    if ask && let Err(f) = confirm::ask_run(global, &mut rb, &params) {
        runtime.block_on(session.release());
        return Err(f);
    }
    eprintln!(
        "drflow: run {run_id} of {} ({}) on target {}",
        rb.name,
        args.file.display(),
        global.target.name()
    );
    let mut options = RunOptions::new(run_id);
    args.exec.apply(&mut options);
    options.redacted_params = redacted(&rb, &params);
    options.clock = clock.clone();
    let terminal = std::io::stderr().is_terminal() && args.output == OutputFormat::Text;
    let mut progress = progress::Progress::new(&rb, terminal, clock.clone());
    let wall = std::time::Instant::now();
    let outcome = runtime.block_on(async {
        let (stop_tx, stop_rx) = watch::channel(Stop::No);
        tokio::spawn(forward_signals(stop_tx));
        session
            .run(&rb, &params, options, &mut progress, stop_rx)
            .await
    });
    drop(progress);
    let outcome = outcome.map_err(cmd_journal::runner_failure)?;
    let summary = report::Summary {
        target: global.target.name(),
        virtual_time: clock.is_virtual(),
        wall_time: wall.elapsed(),
        journal: (!args.durable.no_journal).then_some(global.state_dir.as_path()),
        rollback: outcome.rollback.as_ref(),
    };
    match args.output {
        OutputFormat::Text => out!("{}", report::text(&outcome.report, &summary)),
        OutputFormat::Json => {
            outln!("{:#}", report::json(&outcome.report, &summary));
            cmd_journal::print_rollback(outcome.rollback.as_ref());
        }
    }
    runtime.report_aws_calls();
    Ok(cmd_journal::exit_code(outcome.report.status))
}

/// Turns the first Ctrl-C or SIGTERM into a graceful stop and the second into an immediate one.
///
/// Call it inside the runtime: the signals are caught from the call on, not from when the task
/// that forwards them first runs, so a signal sent as soon as the run shows progress is never
/// missed (and never kills the process without a report).
fn forward_signals(stop: watch::Sender<Stop>) -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let (mut int, mut term) = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::interrupt()).ok(),
            signal(SignalKind::terminate()).ok(),
        )
    };
    async move {
        let mut count = 0;
        loop {
            #[cfg(unix)]
            tokio::select! {
                () = next_signal(&mut int) => {}
                () = next_signal(&mut term) => {}
            }
            #[cfg(not(unix))]
            if tokio::signal::ctrl_c().await.is_err() {
                return;
            }
            count += 1;
            if count == 1 {
                progress::print_now(
                    "drflow: stopping: no new steps start; running steps get the grace period (press Ctrl-C again to cancel them now)",
                );
                let _ = stop.send(Stop::Graceful);
            } else {
                progress::print_now("drflow: cancelling running steps now");
                let _ = stop.send(Stop::Now);
                return;
            }
        }
    }
}

/// The next delivery of a signal caught with `tokio::signal::unix::signal`, or never.
#[cfg(unix)]
async fn next_signal(signal: &mut Option<tokio::signal::unix::Signal>) {
    match signal {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending().await,
    }
}
