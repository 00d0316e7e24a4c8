//! Playing one scenario: provision a fresh simulated world, let it settle until it serves,
//! start the synthetic client, inject the scenario's faults, and then advance virtual time in
//! small steps, feeding every alarm state change that reaches the alarm queue to the trigger
//! evaluator, starting the runbook of the first firing, while the client keeps trading on the
//! same clock. Everything runs in this process on one paused runtime: the runner, the steps,
//! the sim and the drill share the sim's virtual clock, so minutes of outage cost milliseconds.

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use drflow_engine::runner::{RunOutcome, RunnerError, StartOptions};
use drflow_engine::triggers::{Evaluator, Firing};
use drflow_engine::{
    Outputs, Recorder, RunEvent, RunOptions, RunStatus, Runbook, SharedClock, Stop, compile,
    redacted,
};
use drflow_steps::sim::{ClientConfig, Scenario, SimStatus, WorldTimeline};
use drflow_steps::watch::{ProbeTarget, ProbeWatcher};
use drflow_steps::{CloudConfig, SimBackend};
use serde_json::Value;
use tokio::sync::watch;

use super::config::{DrillConfig, File};
use super::measure::{self, Facts};
use super::model::DrillReport;
use super::params::{self, DrillParams};
use crate::runtime::Runtime;
use crate::{EXIT_FAILED, Failure, Global, Target};

/// How often the drill reads the alarm queue, in virtual time. A daemon long-polls SQS and
/// gets a message as soon as it is there; a tenth of a second keeps the drill within that of
/// it (the trigger's own latency is reported in the engine's share).
pub const QUEUE_POLL: Duration = Duration::from_millis(100);

/// How often the drill checks, once a run ended, whether the client is served again.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// The longest the world may take to settle after the provision.
const SETTLE_LIMIT: Duration = Duration::from_secs(30 * 60);

/// How long the client trades on the settled world before the fault, so that the timeline and
/// the chart show it served.
const LEAD_IN: Duration = Duration::from_secs(30);

/// What every scenario of one `drflow drill` shares: the triggers, the runbooks and the
/// parameters, read and checked once before anything is built.
pub struct Plan {
    /// The triggers.
    pub config: DrillConfig,
    /// The provision runbook.
    pub provision: File,
    /// Each trigger's runbook, by trigger name.
    pub runbooks: Vec<(String, File)>,
    /// The parameters.
    pub params: DrillParams,
    /// `-v` given: the steps' log shows on stderr.
    pub verbose: u8,
    /// Which environment and configuration the drill uses, said in its outputs: `config` (the
    /// triggers' path, or `built-in`), `runbook`, `params_files` (each with where it comes
    /// from), `primary_region`, `standby_region`.
    pub environment: Value,
}

/// A runbook's file as the drill compiles it for checking (steps bound to a backend never
/// opened).
fn compile_checked(file: &File) -> Result<Runbook, Failure> {
    let registry = drflow_steps::registry(&CloudConfig::default());
    compile(&file.name, &file.text, &registry)
        .map_err(|d| Failure::diagnostics(d, &[(file.name.as_str(), file.text.as_str())]))
}

impl Plan {
    /// Reads the configuration, the runbooks and the parameters, and checks them all. Errors
    /// (exit 2): anything invalid, every problem located.
    pub fn prepare(
        config: DrillConfig,
        user_params: Option<&Path>,
        flags: &[(String, String)],
        verbose: u8,
    ) -> Result<Plan, Failure> {
        let Some(first) = config.triggers.triggers.first() else {
            return Err(Failure::invalid(format!(
                "error: {} has no triggers, so nothing would ever start a failover\n  hint: add a trigger (see docs/triggers.md)\n",
                config.triggers.path.display()
            )));
        };
        let mut runbooks = Vec::new();
        for t in &config.triggers.triggers {
            runbooks.push((t.name.clone(), config.read(&t.runbook)?));
        }
        if !config.embedded {
            // Each trigger's `params` must be parameters its runbook declares (the built-in
            // drflow.yaml is checked by the tests).
            let registry = drflow_steps::registry(&CloudConfig::default());
            if let Err(d) = drflow_engine::triggers::check_runbooks(&config.triggers, &registry) {
                let config_name = config.triggers.path.display().to_string();
                let config_text =
                    std::fs::read_to_string(&config.triggers.path).unwrap_or_default();
                let mut sources: Vec<(&str, &str)> = vec![(&config_name, &config_text)];
                sources.extend(
                    runbooks
                        .iter()
                        .map(|(_, f)| (f.name.as_str(), f.text.as_str())),
                );
                return Err(Failure::diagnostics(d, &sources));
            }
        }
        let provision = config.provision(&first.runbook)?;
        let failover = &runbooks[0].1;
        let (base, base_note) = match &first.params_file {
            Some(p) => (
                config.read(p).map(|f| (f.name, f.text))?,
                "the trigger's params_file",
            ),
            None => (
                super::config::default_params(),
                "built in, the default when the trigger names no params_file",
            ),
        };
        let mut params_files = vec![serde_json::json!({"file": base.0, "from": base_note})];
        if let Some(p) = user_params {
            params_files.push(
                serde_json::json!({"file": p.display().to_string(), "from": "--params-file"}),
            );
        }
        let base = Some(base);
        let user = user_params
            .map(|p| crate::read(p).map(|t| (p.display().to_string(), t)))
            .transpose()?;
        let provision_rb = compile_checked(&provision)?;
        let failover_rb = compile_checked(failover)?;
        let union = compile_checked(failover)?;
        let params = params::resolve(
            union,
            (&provision_rb, &provision.text),
            (&failover_rb, &failover.text),
            base.as_ref(),
            user.as_ref(),
            flags,
        )?;
        for (_, file) in runbooks.iter().skip(1) {
            compile_checked(file)?;
        }
        let region = |name: &str| params.provision.get(name).cloned().unwrap_or(Value::Null);
        let built_in = |name: &str| {
            if config.embedded || !Path::new(name).is_file() {
                format!("{name} (built in)")
            } else {
                name.to_string()
            }
        };
        let environment = serde_json::json!({
            "config": if config.embedded {
                "built-in drflow.yaml".to_string()
            } else {
                config.triggers.path.display().to_string()
            },
            "runbook": built_in(&failover.name),
            "provision": built_in(&provision.name),
            "params_files": params_files,
            "primary_region": region("primary_region"),
            "standby_region": region("standby_region"),
        });
        Ok(Plan {
            config,
            provision,
            runbooks,
            params,
            verbose,
            environment,
        })
    }
}

fn failed(what: &str, e: impl std::fmt::Display) -> Failure {
    Failure {
        diagnostics: Vec::new(),
        code: EXIT_FAILED,
        message: format!("error: drill: {what}: {e}"),
    }
}

/// The run the trigger started, and what it came to.
pub struct Started {
    /// The firing that started it.
    pub firing: Firing,
    /// The `require: N of M` of its trigger.
    pub require: String,
    /// The run's id.
    pub run_id: String,
    /// When it started, virtual ms.
    pub started_ms: u64,
    /// Its events, stamped on the virtual clock.
    pub events: Vec<RunEvent>,
    /// How it ended (`None`: the drill's horizon stopped it... and it could not report).
    pub outcome: Option<RunOutcome>,
    /// The parameters it ran with (redacted).
    pub params: Value,
}

type RunFuture = Pin<Box<dyn Future<Output = Result<RunOutcome, RunnerError>>>>;

/// Plays `scenario` in the state directory `dir` (fresh: nothing may be there yet).
pub fn play(plan: &Plan, scenario: Scenario, dir: &Path) -> Result<DrillReport, Failure> {
    let wall = Instant::now();
    let config = CloudConfig::sim(dir);
    let runtime = Runtime::start(&config)?;
    let clock = runtime.clock();
    let (registry, backend) = runtime.cloud(&config);
    let global = Global {
        state_dir: dir.to_path_buf(),
        target: Target::Sim,
        verbose: plan.verbose,
        endpoint_url: None,
        profile: None,
        journal: None,
    };
    let runner = crate::cmd_journal::runner(&global, Some(backend), clock.clone())?;
    let sim = SimBackend::open(dir).with_clock(clock.clone());
    let compile_with = |file: &File| {
        compile(&file.name, &file.text, &registry)
            .map_err(|d| Failure::diagnostics(d, &[(file.name.as_str(), file.text.as_str())]))
    };
    let provision_rb = compile_with(&plan.provision)?;
    let mut runbooks = Vec::new();
    for (trigger, file) in &plan.runbooks {
        runbooks.push((trigger.clone(), compile_with(file)?));
    }
    let facts = runtime.block_on(async {
        // --- provision, as `drflow run` does, and let the world settle -----------------------
        let prov_params = plan.params.provision.clone();
        let outcome = run_to_end(&runner, &provision_rb, prov_params, &clock, None).await?;
        if outcome.report.status != RunStatus::Succeeded {
            return Err(failed(
                "the provision failed",
                outcome.report.errors.join("; "),
            ));
        }
        let outputs = outcome.report.outputs;
        let host = output(&outputs, "public_dns_name")?;
        let queue = output(&outputs, "alarm_queue_url")?;
        settle(&sim, &clock).await?;
        let mut probe = ProbeFeed::start(dir, &plan.params, &clock).await?;
        // --- the client, then the fault -------------------------------------------------------
        sim.start_client(ClientConfig {
            host,
            interval_ms: 1000,
        })
        .map_err(|e| failed("could not start the client", e))?;
        let client_from = now(&sim)?;
        let mut evaluator = Evaluator::new(&plan.config.triggers);
        let mut deliveries = HashMap::new();
        let mut after = 0;
        feed(
            &sim,
            &queue,
            &mut after,
            &mut evaluator,
            &clock,
            &mut deliveries,
        )?;
        clock.sleep(LEAD_IN).await;
        feed(
            &sim,
            &queue,
            &mut after,
            &mut evaluator,
            &clock,
            &mut deliveries,
        )?;
        let fault_ms = now(&sim)?;
        let status = sim.status().map_err(|e| failed("sim", e))?;
        let faults = scenario.faults(&status, fault_ms);
        let mut injected = Vec::new();
        for f in faults {
            let id = sim
                .inject(f)
                .map_err(|e| failed("could not inject the fault", e))?;
            injected.push(id);
        }
        let status = sim.status().map_err(|e| failed("sim", e))?;
        let fault_spans: Vec<(String, Option<String>, u64, Option<u64>)> = status
            .faults
            .iter()
            .filter(|f| injected.contains(&f.id))
            .map(|f| {
                (
                    f.kind.name().to_string(),
                    f.region.clone(),
                    f.start_ms,
                    f.end_ms,
                )
            })
            .collect();
        // --- watch: triggers, the run, the client ---------------------------------------------
        let horizon = fault_ms + scenario.horizon_ms();
        // A fault that ends within the horizon (flapping, lag-spike's outage) is waited out:
        // the client's recovery counts once nothing more is coming.
        let faults_end = fault_spans
            .iter()
            .filter_map(|f| f.3)
            .filter(|e| *e <= horizon)
            .max()
            .unwrap_or(fault_ms);
        let mut started: Option<Started> = None;
        let mut run: Option<RunFuture> = None;
        let mut stop_tx: Option<watch::Sender<Stop>> = None;
        let mut recorder = Recorder::default();
        let mut last_check = 0;
        loop {
            tokio::select! {
                biased;
                out = async { run.as_mut().expect("guarded").await }, if run.is_some() => {
                    run = None;
                    if let Some(s) = started.as_mut() {
                        s.events = recorder.events();
                        s.outcome = Some(out.map_err(crate::cmd_journal::runner_failure)?);
                    }
                    continue;
                }
                () = clock.sleep(QUEUE_POLL) => {}
            }
            let mut firings = feed(
                &sim,
                &queue,
                &mut after,
                &mut evaluator,
                &clock,
                &mut deliveries,
            )?;
            firings.extend(probe.feed(&mut evaluator, &clock, &mut deliveries));
            let now_ms = clock.now_ms();
            if started.is_none()
                && let Some(firing) = firings.into_iter().next()
            {
                let (trigger_name, rb) = runbooks
                    .iter()
                    .find(|(t, _)| *t == firing.trigger)
                    .or(runbooks.first())
                    .expect("a trigger");
                let trigger = plan
                    .config
                    .triggers
                    .triggers
                    .iter()
                    .find(|t| &t.name == trigger_name)
                    .expect("its trigger");
                let base = params::for_runbook_values(rb, &plan.params);
                let run_params = params::with_firing(rb, &base, &firing.params)
                    .map_err(|e| failed("the trigger's parameters", e))?;
                let run_id = crate::new_run_id();
                let session = runner
                    .start(rb, &run_params, &run_id, StartOptions::default())
                    .await
                    .map_err(crate::cmd_journal::runner_failure)?;
                let (tx, rx) = watch::channel(Stop::No);
                stop_tx = Some(tx);
                let mut options = RunOptions::new(run_id.clone());
                options.redacted_params = redacted(rb, &run_params);
                options.clock = clock.clone();
                let shown = options.redacted_params.clone();
                recorder = Recorder::default();
                let mut sink = recorder.clone();
                // The runbook is compiled again for the run, so the future owns all it reads.
                let file = &plan
                    .runbooks
                    .iter()
                    .find(|(t, _)| t == trigger_name)
                    .expect("file")
                    .1;
                let owned = compile_with(file)?;
                run = Some(Box::pin(async move {
                    session
                        .run(&owned, &run_params, options, &mut sink, rx)
                        .await
                }));
                started = Some(Started {
                    require: format!("{} of {}", trigger.require, trigger.signals.len()),
                    firing,
                    run_id,
                    started_ms: now_ms,
                    events: Vec::new(),
                    outcome: None,
                    params: shown,
                });
            }
            if now_ms >= horizon {
                break;
            }
            if run.is_none()
                && let Some(s) = &started
                && now_ms >= last_check + CHECK_EVERY.as_millis() as u64
            {
                last_check = now_ms;
                let t = sim.timeline(fault_ms).map_err(|e| failed("sim", e))?;
                if served_again(&t, faults_end, s) {
                    break;
                }
            }
        }
        if let Some(mut fut) = run.take() {
            // The horizon came first: the run is stopped, as Ctrl-C would.
            if let Some(tx) = &stop_tx {
                let _ = tx.send(Stop::Now);
            }
            let out = (&mut fut).await;
            if let Some(s) = started.as_mut() {
                s.events = recorder.events();
                s.outcome = out.ok();
            }
        }
        let end_ms = now(&sim)?;
        let probe_events = probe.stop();
        sim.stop_client().map_err(|e| failed("sim", e))?;
        let timeline = sim.timeline(client_from).map_err(|e| failed("sim", e))?;
        let config = sim.snapshot().map_err(|e| failed("sim", e))?.config;
        Ok::<_, Failure>(Facts {
            fault_ms,
            end_ms,
            faults: fault_spans,
            timeline,
            started,
            sim_config: config,
            world_at_fault: status,
            deliveries,
            probe_events,
        })
    })?;
    // The world is saved for `drflow sim status` and `drflow show` on the state dir.
    let mut report = measure::report(scenario, &facts, &plan.params);
    report.wall_ms = wall.elapsed().as_millis() as u64;
    Ok(report)
}

/// Whether, with the run over, the client is served again: its latest request succeeded, after
/// the run finished and after the last fault that ends (`faults_end`). A success before the
/// run ended does not count: the run may still fence the region serving it.
fn served_again(t: &WorldTimeline, faults_end: u64, started: &Started) -> bool {
    let ended = started
        .events
        .iter()
        .rev()
        .find_map(|e| match e {
            RunEvent::RunFinished { at, .. } => Some((at * 1000.0).round() as u64),
            _ => None,
        })
        .unwrap_or(started.started_ms);
    t.client
        .last()
        .is_some_and(|r| r.ok && r.at_ms >= ended.max(faults_end))
}

/// Reads the messages that reached the queue since the last read and feeds each to the
/// evaluator at the time the drill received it; returns the firings.
fn feed(
    sim: &SimBackend,
    queue: &str,
    after: &mut u64,
    evaluator: &mut Evaluator,
    clock: &SharedClock,
    deliveries: &mut HashMap<String, u64>,
) -> Result<Vec<Firing>, Failure> {
    let received = clock.now_ms();
    let messages = sim
        .receive(queue, *after)
        .map_err(|e| failed("could not read the alarm queue", e))?;
    let mut firings = Vec::new();
    for m in messages {
        *after = (*after).max(m.available_at_ms);
        if let Some(id) = m.body.get("id").and_then(Value::as_str) {
            deliveries.insert(id.to_string(), m.available_at_ms);
        }
        firings.extend(evaluator.observe(&m.body, received).firings);
    }
    Ok(firings)
}

/// How often the drill's probe of the primary runs: the failover runbook's own `interval`.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(10);
/// How long every probe must fail before the probe says ALARM: the failover runbook's own
/// `confirm_window`, so an endpoint flapping on a shorter period (the `flapping` scenario: 40 s
/// down, 40 s up) never starts a run.
pub const PROBE_WINDOW: Duration = Duration::from_secs(150);

/// drflow's own probe of the primary from the standby region, as the daemon will run it
/// (docs/triggers.md): a task on the drill's clock polls a [`ProbeWatcher`] when a probe is due,
/// so a probe of a dead endpoint takes its timeout without holding up the run, and its events
/// wait in a channel until the drill's next read, like the queue's messages.
struct ProbeFeed {
    rx: tokio::sync::mpsc::UnboundedReceiver<Value>,
    task: tokio::task::JoinHandle<()>,
    /// Each event fed to the evaluator, with when the drill received it.
    seen: Vec<(u64, Value)>,
}

impl ProbeFeed {
    /// Finds the endpoint as `dr.discover` does and starts probing it from the standby region.
    async fn start(
        dir: &Path,
        params: &DrillParams,
        clock: &SharedClock,
    ) -> Result<ProbeFeed, Failure> {
        let param = |name: &str| {
            params
                .provision
                .get(name)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| failed("the probe", format!("the parameter `{name}` is missing")))
        };
        let (suffix, standby) = (param("env_suffix")?, param("standby_region")?);
        let sim = Arc::new(SimBackend::open(dir).with_clock(clock.clone()));
        let target = ProbeTarget::discover(sim.as_ref(), &suffix)
            .await
            .map_err(|e| failed("the probe", e))?;
        let mut watcher = ProbeWatcher::new(sim, &standby, target, PROBE_INTERVAL, PROBE_WINDOW)
            .map_err(|e| failed("the probe", e))?;
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let clock = clock.clone();
        let task = tokio::spawn(async move {
            loop {
                let now = clock.now_ms();
                if let Some(event) = watcher.poll(now).await
                    && tx.send(event).is_err()
                {
                    return;
                }
                let next = watcher.next_due_ms().unwrap_or(now);
                clock
                    .sleep(Duration::from_millis(
                        next.saturating_sub(clock.now_ms()).max(1),
                    ))
                    .await;
            }
        });
        Ok(ProbeFeed {
            rx,
            task,
            seen: Vec::new(),
        })
    }

    /// Feeds the probe's events that came since the last read to the evaluator at the time
    /// the drill received them (recorded as their delivery); returns the firings.
    fn feed(
        &mut self,
        evaluator: &mut Evaluator,
        clock: &SharedClock,
        deliveries: &mut HashMap<String, u64>,
    ) -> Vec<Firing> {
        let received = clock.now_ms();
        let mut firings = Vec::new();
        while let Ok(event) = self.rx.try_recv() {
            if let Some(id) = event.get("id").and_then(Value::as_str) {
                deliveries.insert(id.to_string(), received);
            }
            firings.extend(evaluator.observe(&event, received).firings);
            self.seen.push((received, event));
        }
        firings
    }

    /// Stops probing; the events seen, for the timeline.
    fn stop(self) -> Vec<(u64, Value)> {
        self.task.abort();
        self.seen
    }
}

fn now(sim: &SimBackend) -> Result<u64, Failure> {
    sim.now_ms().map_err(|e| failed("sim", e))
}

fn output(outputs: &Outputs, name: &str) -> Result<String, Failure> {
    outputs
        .get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .ok_or_else(|| {
            failed(
                "the provision",
                format!("its output `{name}` is missing; the drill needs it"),
            )
        })
}

/// Runs `rb` through the runner to its end, journaled under the drill's state dir.
async fn run_to_end(
    runner: &drflow_engine::runner::Runner,
    rb: &Runbook,
    params: Outputs,
    clock: &SharedClock,
    sink: Option<&mut Recorder>,
) -> Result<RunOutcome, Failure> {
    let run_id = crate::new_run_id();
    let session = runner
        .start(rb, &params, &run_id, StartOptions::default())
        .await
        .map_err(crate::cmd_journal::runner_failure)?;
    let mut options = RunOptions::new(run_id);
    options.redacted_params = redacted(rb, &params);
    options.clock = clock.clone();
    let mut own = Recorder::default();
    let sink = sink.unwrap_or(&mut own);
    let (_tx, rx) = watch::channel(Stop::No);
    session
        .run(rb, &params, options, sink, rx)
        .await
        .map_err(crate::cmd_journal::runner_failure)
}

/// Advances virtual time until the provisioned world serves and is quiet: every region with an
/// application serves it and its Route 53 health check sees it healthy, every alarm is `OK`,
/// and DNS answers. Errors: not within [`SETTLE_LIMIT`] (what is still not steady is said).
async fn settle(sim: &SimBackend, clock: &SharedClock) -> Result<(), Failure> {
    let deadline = clock.now_ms() + SETTLE_LIMIT.as_millis() as u64;
    loop {
        let status = sim.status().map_err(|e| failed("sim", e))?;
        let waiting = unsettled(&status);
        if waiting.is_empty() {
            return Ok(());
        }
        if clock.now_ms() >= deadline {
            return Err(failed(
                "the provisioned world did not settle within 30 minutes",
                waiting.join(", "),
            ));
        }
        clock.sleep(Duration::from_secs(10)).await;
    }
}

/// What is not steady yet.
fn unsettled(status: &SimStatus) -> Vec<String> {
    let mut out = Vec::new();
    if status.writer_region.is_none() {
        out.push("no database writer".to_string());
    }
    for r in &status.regions {
        if !r.groups.is_empty() && !r.app_healthy {
            out.push(format!(
                "the application in {} ({})",
                r.region, r.app_detail
            ));
        }
        if let Some(hc) = &r.health_check
            && !hc.healthy
        {
            out.push(format!("the health check of {}", r.region));
        }
        for a in &r.alarms {
            if a.state.name() != "OK" {
                out.push(format!("alarm {} is {}", a.name, a.state.name()));
            }
        }
    }
    if status.traffic.iter().all(|t| t.answers.is_empty()) {
        out.push("DNS answers nothing".to_string());
    }
    out
}

/// A fresh temporary state directory for one drill, removed when dropped.
pub fn temp_state() -> Result<tempfile::TempDir, Failure> {
    tempfile::Builder::new()
        .prefix("drflow-drill-")
        .tempdir()
        .map_err(|e| failed("could not create a temporary state directory", e))
}

/// The state directory of `scenario` under a user's `--state-dir`: the directory itself for
/// one scenario, a subdirectory per scenario for `--all`. Errors (exit 2): `root` exists and
/// is not an empty directory (a drill provisions its own world from nothing, and must not
/// write its journal and world into a directory that holds anything else).
pub fn user_state(root: &Path, scenario: Scenario, all: bool) -> Result<PathBuf, Failure> {
    let empty = match std::fs::read_dir(root) {
        Ok(mut entries) => entries.next().is_none(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
        Err(_) => false,
    };
    if !empty {
        let what = if drflow_steps::sim::world_path(root).exists() {
            "it holds a simulated world already, and a drill provisions its own from nothing"
        } else if root.is_dir() {
            "it is not empty, and a drill writes its journal and world there"
        } else {
            "it is not a directory"
        };
        return Err(Failure::invalid(format!(
            "error: --state-dir {}: {what}\n  hint: give a new or empty directory, or leave --state-dir out to drill in a temporary one\n",
            root.display()
        )));
    }
    Ok(if all {
        root.join(scenario.name())
    } else {
        root.to_path_buf()
    })
}
