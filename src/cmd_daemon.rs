//! `drflow daemon`: watches the alarm events of one environment and starts the runbook of each
//! trigger of `drflow.yaml` that fires (docs/operations.md). The parts that know no process are
//! in `drflow_engine::daemon` (intake, inbox, keyed scheduler, metrics, HTTP) and
//! `drflow_steps::daemon` (the queue and the reconcile); this file wires them to a runtime, the
//! runner and the signals.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use drflow_engine::daemon::{
    FiringRecord, Health, Inbox, Intake, KeyedScheduler, Offer, Status, TakenEvent, Verdict,
};
use drflow_engine::runner::{LoadRequest, Loaded, LockWait, Purpose, Runner, StartOptions};
use drflow_engine::triggers::{Firing, TriggerConfig, check_runbooks};
use drflow_engine::{
    CheckTime, JOURNAL_FILE, Journal, Outputs, RunOptions, RunStatus, Runbook, SharedClock, Stop,
    iso8601, redacted,
};
use drflow_steps::daemon::{Ack, AlarmQueue, Received, reconcile_events};
use drflow_steps::watch::{ProbeTarget, ProbeWatcher};
use drflow_steps::{CloudBackend, LazyBackend, SimBackend};
use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::runtime::Runtime;
use crate::{EXIT_FAILED, EXIT_OK, Failure, Global, Target, parse_duration_arg};

/// `drflow daemon`.
#[derive(Args)]
pub struct DaemonArgs {
    /// The triggers file: which events start which runbook (docs/triggers.md).
    #[arg(long, default_value = "drflow.yaml")]
    config: PathBuf,
    /// Check the triggers, their runbooks and the parameters, say what the daemon would watch,
    /// and exit; nothing is contacted.
    #[arg(long)]
    check: bool,
    /// A YAML file of parameters for the triggers' runbooks (instead of a trigger's own
    /// `params_file`); `-p` overrides it. The environment watched is its `env_suffix`, in its
    /// `standby_region`.
    #[arg(long)]
    params_file: Option<PathBuf>,
    /// Set a parameter of the triggers' runbooks: `-p name=value`.
    #[arg(short = 'p', long = "param", value_name = "NAME=VALUE")]
    params: Vec<String>,
    /// Where /healthz and /metrics are served: a loopback address (`127.0.0.1:0` picks a free
    /// port, said on stderr).
    #[arg(long, default_value = "127.0.0.1:9464")]
    listen: SocketAddr,
    /// How often alarm states are read directly, because events can be lost (`0s`: never).
    #[arg(long, default_value = "60s", value_parser = parse_duration_arg)]
    reconcile_every: Duration,
    /// How often drflow probes the primary's endpoint from the standby region (`0s`: never).
    #[arg(long, default_value = "10s", value_parser = parse_duration_arg)]
    probe_every: Duration,
    /// How long every probe must fail before the probe says ALARM.
    #[arg(long, default_value = "150s", value_parser = parse_duration_arg)]
    probe_window: Duration,
    /// How long a lock key must be quiet after a firing before its run starts.
    #[arg(long, default_value = "0s", value_parser = parse_duration_arg)]
    debounce: Duration,
    /// Journal retention: every hour, delete the runs that ended longer ago than this, except
    /// the runs of the triggers' runbooks (every failover's record is kept). Default: keep all.
    #[arg(long, value_parser = parse_duration_arg)]
    prune_older_than: Option<Duration>,
    /// Stop after this long. On the sim the daemon then plays that much virtual time as fast
    /// as it goes; without it the simulated world lives at the wall clock's pace.
    #[arg(long = "for", value_parser = parse_duration_arg)]
    run_for: Option<Duration>,
    /// With --journal (two daemons, docs/operations.md): how long the daemon's lease, and each
    /// run's, lives without a renewal. A daemon whose host dies is replaced by its peer this
    /// long after its last renewal (renewed every third of it); a daemon that cannot renew for
    /// this long stops acting.
    #[arg(long, default_value = "30s", value_parser = parse_lease_ttl)]
    lease_ttl: Duration,
}

/// `--lease-ttl`: a duration of at least 3 s (renewals come every third of it).
fn parse_lease_ttl(s: &str) -> Result<Duration, String> {
    let d = parse_duration_arg(s)?;
    if d < Duration::from_secs(3) {
        return Err(format!(
            "`{s}` is too short for a lease: give at least 3s (it is renewed every third of it)"
        ));
    }
    Ok(d)
}

/// How long an SQS long poll waits (SQS's maximum).
const LONG_POLL: Duration = Duration::from_secs(20);
/// How long a received message stays hidden before SQS delivers it again.
const VISIBILITY: Duration = Duration::from_secs(60);
/// How often the sim's queue is read when it is empty (virtual time).
const SIM_POLL: Duration = Duration::from_millis(100);
/// How long after a failed read of an event source it is read again.
const SOURCE_RETRY: Duration = Duration::from_secs(5);
/// How a daemon's run takes its runbook's `lock:` when another run holds it (a person's
/// failover in progress): it does not wait. The firing is dropped with a message naming the
/// holder: that run already does what the firing asks, and a wait would hold up a stop.
const LOCK_WAIT: LockWait = LockWait {
    wait: false,
    timeout: None,
};
/// How often the journal is pruned when `--prune-older-than` is given.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// One trigger's runbook, compiled, with its base parameters.
struct Prepared {
    trigger: String,
    runbook: Runbook,
    params: Outputs,
}

/// Everything read and checked before anything is contacted.
struct Plan {
    config: TriggerConfig,
    runbooks: Vec<Prepared>,
    env_suffix: String,
    standby_region: String,
    alarm_regions: Vec<String>,
}

/// `drflow daemon`.
pub fn cmd_daemon(global: &Global, args: DaemonArgs) -> Result<u8, Failure> {
    if !args.listen.ip().is_loopback() {
        return Err(Failure::invalid(format!(
            "error: --listen {}: not a loopback address; /healthz and /metrics are served on 127.0.0.1 (or ::1) only\n  hint: put a reverse proxy in front to expose them, e.g. --listen 127.0.0.1:9464\n",
            args.listen
        )));
    }
    if let Some(j) = &global.journal
        && j.region.is_none()
    {
        return Err(Failure::invalid(format!(
            "error: --journal dynamodb://{}: give the region: the daemons coordinate by conditional writes, which are serialised within one region only\n  hint: --journal dynamodb://{}?region=REGION, the same on every machine (the standby region's)\n",
            j.table, j.table
        )));
    }
    let plan = prepare(&args)?;
    // The standby region's replica is the one an outage of the primary leaves up, and both
    // daemons must name one region: another region would make a second leader.
    if let Some(region) = global.journal.as_ref().and_then(|j| j.region.as_deref())
        && region != plan.standby_region
    {
        return Err(Failure::invalid(format!(
            "error: --journal names region {region}, but the environment's standby region is {}: two daemons coordinate only through one replica, the standby region's\n  hint: --journal dynamodb://{}?region={}\n",
            plan.standby_region,
            global.journal.as_ref().map_or("", |j| j.table.as_str()),
            plan.standby_region
        )));
    }
    if args.check {
        outln!("{}", describe(&plan, &args, global));
        return Ok(EXIT_OK);
    }
    let live = global.target == Target::Sim && args.run_for.is_none();
    let runtime = Runtime::start_paced(&crate::cloud_config(global), live)?;
    let local = tokio::task::LocalSet::new();
    let code = runtime.block_on(local.run_until(serve(global, &args, plan, &runtime)))?;
    runtime.report_aws_calls();
    Ok(code)
}

/// Reads drflow.yaml, compiles each trigger's runbook and resolves its parameters.
fn prepare(args: &DaemonArgs) -> Result<Plan, Failure> {
    let config = TriggerConfig::load(&args.config).map_err(crate::cmd_triggers::located)?;
    let registry = drflow_steps::registry(&drflow_steps::CloudConfig::default());
    let compiled = check_runbooks(&config, &registry).map_err(crate::cmd_triggers::located)?;
    let flags = crate::parse_flags(&args.params)?;
    let mut runbooks = Vec::new();
    for (t, rb) in config.triggers.iter().zip(compiled) {
        let source = crate::read(&t.runbook)?;
        let params_file = args.params_file.as_deref().or(t.params_file.as_deref());
        let (resolved, _) = crate::cmd_validate::resolve_and_check(
            &rb,
            &source,
            params_file,
            &flags,
            CheckTime::Validate,
            true,
        )?;
        runbooks.push(Prepared {
            trigger: t.name.clone(),
            runbook: rb,
            params: resolved.values,
        });
    }
    let first = &runbooks[0];
    let param = |name: &str| {
        first
            .params
            .get(name)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| {
                Failure::invalid(format!(
                    "error: the daemon needs the parameter `{name}` of {} (trigger `{}`) to know which environment to watch, and it has none\n  hint: give it with -p {name}=VALUE or --params-file\n",
                    first.runbook.file, first.trigger
                ))
            })
    };
    let env_suffix = param("env_suffix")?;
    let standby_region = param("standby_region")?;
    let mut alarm_regions = Vec::new();
    for name in ["health_metrics_region", "primary_region", "standby_region"] {
        if let Ok(r) = param(name)
            && !alarm_regions.contains(&r)
        {
            alarm_regions.push(r);
        }
    }
    Ok(Plan {
        config,
        runbooks,
        env_suffix,
        standby_region,
        alarm_regions,
    })
}

fn every(d: Duration) -> String {
    if d.is_zero() {
        "never".into()
    } else {
        format!("every {}", drflow_engine::format_duration(d))
    }
}

/// What `--check` prints.
fn describe(plan: &Plan, args: &DaemonArgs, global: &Global) -> String {
    let mut out = format!(
        "{}: {} triggers, valid\n",
        plan.config.path.display(),
        plan.runbooks.len()
    );
    for (t, p) in plan.config.triggers.iter().zip(&plan.runbooks) {
        out.push_str(&format!(
            "  {}: {} of {} signals within {}, cooldown {} -> {}\n",
            t.name,
            t.require,
            t.signals.len(),
            drflow_engine::format_duration(Duration::from_millis(t.within_ms)),
            drflow_engine::format_duration(Duration::from_millis(t.cooldown_ms)),
            p.runbook.file
        ));
    }
    out.push_str(&format!(
        "target {}: queue {} in {}; reconcile {} in {}; probe {} from {}\n/healthz and /metrics on http://{}",
        global.target.name(),
        drflow_steps::daemon::queue_name(&plan.env_suffix),
        plan.standby_region,
        every(args.reconcile_every),
        plan.alarm_regions.join(", "),
        every(args.probe_every),
        plan.standby_region,
        args.listen
    ));
    out
}

/// One message from a source.
struct Message {
    source: &'static str,
    body: String,
    ack: Option<Ack>,
    /// When the daemon received it (wall ms, for the decision latency).
    wall_ms: u64,
}

/// A run the daemon started or resumed, ended.
struct Ended {
    key: String,
    run_id: String,
    status: Result<RunStatus, RunFailure>,
    /// Whether the run reached the journal.
    journaled: bool,
}

/// Why a run of the daemon did not come to an end of its own.
struct RunFailure {
    message: String,
    /// Refused because another run holds its `lock:`.
    lock_held: bool,
}

impl From<drflow_engine::runner::RunnerError> for RunFailure {
    fn from(e: drflow_engine::runner::RunnerError) -> RunFailure {
        RunFailure {
            lock_held: e.kind() == drflow_engine::runner::RunnerErrorKind::Busy,
            message: e.message(),
        }
    }
}

impl From<String> for RunFailure {
    fn from(message: String) -> RunFailure {
        RunFailure {
            message,
            lock_held: false,
        }
    }
}

/// The daemon: from start (resume) to a signal or `--for`.
async fn serve(
    global: &Global,
    args: &DaemonArgs,
    mut plan: Plan,
    runtime: &Runtime,
) -> Result<u8, Failure> {
    let clock = runtime.clock();
    let (registry, backend) = crate::cloud(global, runtime);
    // Checked with a registry bound to no backend; run with the one bound to this target.
    for p in &mut plan.runbooks {
        let path = PathBuf::from(&*p.runbook.file);
        p.runbook = crate::load(&path, &registry)?.0;
    }
    let runner = crate::cmd_journal::runner(global, Some(backend.clone()), clock.clone())?;
    let lease_options = lease_options(args.lease_ttl);
    let runner = {
        let mut o = runner.options().clone();
        o.leases = lease_options.clone();
        Runner::new(o)
    };
    let shared_journal = runner.options().shared.clone();
    let status = Arc::new(Status::default());
    for t in &plan.config.triggers {
        status.metrics.declare_trigger(&t.name);
    }
    let listener = drflow_engine::daemon::http::bind(args.listen)
        .await
        .map_err(|e| Failure {
            diagnostics: Vec::new(),
            code: EXIT_FAILED,
            message: format!("error: {e}\n  hint: pick another port with --listen 127.0.0.1:PORT"),
        })?;
    let bound = listener.local_addr().map_err(|e| failed("listen", e))?;
    tokio::task::spawn_local(drflow_engine::daemon::http::serve(listener, status.clone()));
    let (signal_tx, mut signals) = mpsc::unbounded_channel();
    tokio::spawn(forward_signals(signal_tx));
    // One daemon acts per environment: a second one would split the queue's events. With a
    // shared journal the second one waits, in standby, for the first's lease to lapse.
    let lease = match &shared_journal {
        None => hold_daemon_lease(global, &plan.env_suffix).await?,
        Some(shared) => {
            let key = format!("daemon/{}", plan.env_suffix);
            let me = format!("daemon-{}", std::process::id());
            let standby = status.clone();
            let shown = key.clone();
            let taking = drflow_engine::HeldLease::acquire_waiting(
                shared.leases.clone(),
                &key,
                &me,
                &lease_options,
                None,
                move |holder| {
                    let leader = format!("pid {} on {}", holder.pid, holder.hostname);
                    eprintln!(
                        "drflow: daemon: standby: {shown} is held by {leader} (lease token {}); taking over if its lease lapses; /healthz and /metrics on http://{bound}",
                        holder.token
                    );
                    standby.set_health(Health::Standby(leader));
                },
            );
            tokio::select! {
                taken = taking => match taken {
                    Ok(lease) => lease,
                    Err(e) => return Err(failed("the daemon's lease", e)),
                },
                _ = signals.recv() => {
                    eprintln!("drflow: daemon: stopped in standby");
                    return Ok(EXIT_OK);
                }
            }
        }
    };
    if shared_journal.is_some() {
        match lease.took_over() {
            Some(dead) => eprintln!(
                "drflow: daemon: leading {} (lease token {}), taken over from pid {} on {}",
                plan.env_suffix,
                lease.token(),
                dead.pid,
                dead.hostname
            ),
            None => eprintln!(
                "drflow: daemon: leading {} (lease token {})",
                plan.env_suffix,
                lease.token()
            ),
        }
        status.set_health(Health::Starting);
    }
    let mut lease_lost = lease.lost_signal();
    // With a shared journal every run's writes also require the daemon's lease: a daemon that
    // lost it (paused past its expiry while its peer took over) starts no step of any run.
    let runner = match runner.options().shared.clone() {
        None => runner,
        Some(mut shared) => {
            shared.fences.push(drflow_engine::Fence {
                key: lease.key().to_owned(),
                token: lease.token(),
            });
            let mut o = runner.options().clone();
            o.shared = Some(shared);
            Runner::new(o)
        }
    };
    // With two daemons a lock may be held by the dead one's run, which lapses within
    // `--lease-ttl`: wait for it that long (twice, for the renewal's offset), not forever.
    let lock_wait = if shared_journal.is_some() {
        LockWait {
            wait: true,
            timeout: Some(args.lease_ttl * 2),
        }
    } else {
        LOCK_WAIT
    };
    // First the queue: an environment not provisioned is refused before anything is written.
    let queue = loop {
        let sim = (global.target == Target::Sim)
            .then(|| SimBackend::open(&global.state_dir).with_clock(clock.clone()));
        match AlarmQueue::open(&backend, sim, &plan.env_suffix, &plan.standby_region).await {
            Ok(q) => break Rc::new(q),
            Err(e) if e.kind == drflow_steps::ErrorKind::NotFound => {
                return Err(Failure::invalid(format!(
                    "error: {}\n  hint: `drflow run runbooks/provision.yaml` with the same parameters creates it\n",
                    e.message
                )));
            }
            Err(e) => {
                status.set_health(Health::Failing(format!("the alarm queue: {}", e.message)));
                eprintln!(
                    "drflow: daemon: cannot find the alarm queue yet: {}",
                    e.message
                );
                clock.sleep(SOURCE_RETRY).await;
            }
        }
    };
    let mut inbox = Inbox::open(&global.state_dir).map_err(|e| failed("the inbox", e))?;
    let mut intake = Intake::new(&plan.config, 0);
    // The triggers' state as the events already taken left it; their firings were decided then.
    let now = clock.now_ms();
    let replayed = inbox
        .events_since(now.saturating_sub(intake.memory_ms()))
        .map_err(|e| failed("the inbox", e))?;
    for e in &replayed {
        let _ = intake.take(&e.body, e.received_ms);
    }
    let mut scheduler: KeyedScheduler<FiringRecord> =
        KeyedScheduler::new(args.debounce.as_millis() as u64);
    let mut runs: JoinSet<Ended> = JoinSet::new();
    let (stop_tx, stop_rx) = watch::channel(Stop::No);
    let shared = Rc::new(RunContext {
        runner: runner.clone(),
        backend: backend.clone(),
        registry,
        plan,
        clock: clock.clone(),
        status: status.clone(),
        stop: stop_rx,
        state_dir: global.state_dir.clone(),
        lock_wait,
    });
    // Start: finish what was decided before a stop or a crash, here or, with a shared journal,
    // by the daemon this one took over from.
    let records = inbox.firings().map_err(|e| failed("the inbox", e))?;
    let adopted = match &shared_journal {
        None => Vec::new(),
        Some(_) => adopt(&shared, &records, &mut intake, now)?,
    };
    let (mut pending, stale) = unfinished(&global.state_dir, &records, now, intake.memory_ms())?;
    pending.extend(adopted.into_iter().map(|r| (r, true)));
    for (r, why) in stale {
        if why.is_empty() {
            // Its run ended: nothing to do, nothing to say.
            inbox
                .forget_firing(&r.run_id)
                .map_err(|e| failed("the inbox", e))?;
            continue;
        }
        eprintln!(
            "drflow: daemon: not finishing run {} of trigger {}: {why}; `drflow resume {}` or `drflow rollback {}` it by hand if it should be",
            r.run_id, r.trigger, r.run_id, r.run_id
        );
        inbox
            .forget_firing(&r.run_id)
            .map_err(|e| failed("the inbox", e))?;
    }
    if !replayed.is_empty() || !pending.is_empty() {
        eprintln!(
            "drflow: daemon: {} replayed from daemon.db; {} to finish or start",
            crate::count(replayed.len(), "event"),
            crate::count(pending.len(), "run")
        );
    }
    let mut tasks: std::collections::HashMap<tokio::task::Id, (String, String)> =
        std::collections::HashMap::new();
    // Resumed runs first, holding their keys; runs never started wait behind them.
    let (resumed, fresh): (Vec<_>, Vec<_>) = pending.into_iter().partition(|(_, j)| *j);
    for (record, _) in fresh {
        scheduler.offer(&shared.lock_key(&record), record, now);
    }
    for (record, journaled) in resumed {
        let key = shared.lock_key(&record);
        scheduler.mark_running(&key);
        status.metrics.run_started();
        let cx = shared.clone();
        let label = (key.clone(), record.run_id.clone());
        let handle = runs.spawn_local(async move { cx.run(key, record, journaled, None).await });
        tasks.insert(handle.id(), label);
    }
    // Sources. A small buffer: what waits here is hidden in SQS for VISIBILITY only.
    let (tx, mut rx) = mpsc::channel::<Message>(16);
    eprintln!(
        "drflow: daemon for {} on target {} (env_suffix {}): /healthz and /metrics on http://{bound}",
        shared.plan.config.path.display(),
        global.target.name(),
        shared.plan.env_suffix
    );
    eprintln!("drflow: daemon: reading {}", queue.describe());
    let position = Rc::new(std::cell::Cell::new(
        inbox
            .cursor("queue")
            .map_err(|e| failed("the inbox", e))?
            .unwrap_or(0),
    ));
    let mut sources = JoinSet::new();
    sources.spawn_local(read_queue(
        queue.clone(),
        position.clone(),
        tx.clone(),
        clock.clone(),
        status.clone(),
    ));
    if !args.reconcile_every.is_zero() {
        sources.spawn_local(reconcile(
            backend.clone(),
            shared.plan.alarm_regions.clone(),
            shared.plan.env_suffix.clone(),
            args.reconcile_every,
            tx.clone(),
            clock.clone(),
            status.clone(),
        ));
    }
    if !args.probe_every.is_zero() {
        sources.spawn_local(probe(
            backend.clone(),
            shared.plan.env_suffix.clone(),
            shared.plan.standby_region.clone(),
            args.probe_every,
            args.probe_window,
            tx.clone(),
            clock.clone(),
            status.clone(),
        ));
    }
    drop(tx);
    status.set_health(Health::Ok);
    let deadline = args.run_for.map(|d| clock.now_ms() + d.as_millis() as u64);
    let live_sim = global.target == Target::Sim && args.run_for.is_none();
    let mut next_release = 0;
    let mut next_prune = clock.now_ms();
    let mut stopping = false;
    let mut failed_sources = false;
    let mut pending_ack: Option<Ack> = None;
    // When the message behind each queued firing arrived (wall ms), for the decision latency.
    let mut arrivals = std::collections::HashMap::new();
    loop {
        // Stopping, only a signal or a run's end matters.
        let wait_due = if stopping {
            60_000
        } else {
            scheduler
                .next_due_ms()
                .map(|due| due.saturating_sub(clock.now_ms()))
                .or_else(|| deadline.map(|d| d.saturating_sub(clock.now_ms())))
                .unwrap_or(60_000)
        };
        tokio::select! {
            biased;
            _ = lease_lost.changed() => {
                // Another daemon holds the environment now: acting on would make two.
                eprintln!(
                    "drflow: daemon: LOST THE DAEMON LEASE (token {}): another daemon took over; stopping at once, runs in progress are left to it",
                    lease.token()
                );
                let _ = stop_tx.send(Stop::Now);
                let _ = backend.checkpoint();
                return Ok(EXIT_FAILED);
            }
            n = signals.recv() => {
                if n.unwrap_or(2) >= 2 {
                    eprintln!("drflow: daemon: stopping now; runs in progress are left to resume");
                    let _ = stop_tx.send(Stop::Now);
                    let _ = backend.checkpoint();
                    let _ = queue.checkpoint();
                    return Ok(crate::EXIT_INTERRUPTED);
                }
                eprintln!("drflow: daemon: stopping: no more events taken; runs in progress checkpoint and stop (signal again to exit at once)");
                begin_stop(&mut stopping, &mut sources, &status, &stop_tx, Stop::Graceful);
            }
            Some(done) = runs.join_next_with_id(), if !runs.is_empty() => {
                let (id, ended) = match done {
                    Ok((id, ended)) => (id, ended),
                    Err(e) => {
                        // A run's task panicked: its key must not stay taken for ever.
                        let (key, run_id) = tasks.remove(&e.id()).unwrap_or_default();
                        eprintln!("drflow: daemon: run {run_id} ended: error (it panicked: {e})");
                        scheduler.done(&key);
                        status.metrics.run_ended("error");
                        continue;
                    }
                };
                tasks.remove(&id);
                scheduler.done(&ended.key);
                let name = match &ended.status {
                    Ok(s) => s.name().to_string(),
                    Err(e) => { eprintln!("drflow: daemon: run {}: {}", ended.run_id, e.message); "error".to_string() }
                };
                // Done with: an ended run, or one refused because another run holds its lock
                // (that run does what this firing asks). Kept: an interrupted run (resumed at
                // the next start) and one that failed to start for another reason (retried).
                let over = matches!(&ended.status, Ok(s) if *s != RunStatus::Interrupted)
                    || matches!(&ended.status, Err(e) if e.lock_held && !ended.journaled);
                if over {
                    inbox.forget_firing(&ended.run_id).map_err(|e| failed("the inbox", e))?;
                }
                status.metrics.run_ended(&name);
                eprintln!("drflow: daemon: run {} ended: {name}", ended.run_id);
            }
            m = rx.recv(), if !stopping => {
                let Some(m) = m else {
                    // Every source ended: nothing can reach the triggers any more.
                    eprintln!("drflow: daemon: every event source stopped; stopping");
                    status.set_health(Health::Failing("every event source stopped".into()));
                    begin_stop(&mut stopping, &mut sources, &status, &stop_tx, Stop::Graceful);
                    failed_sources = true;
                    continue;
                };
                pending_ack = handle(&mut intake, &mut inbox, &shared, &mut scheduler, &position, &mut arrivals, m).await?;
            }
            () = clock.sleep(Duration::from_millis(wait_due.max(1))) => {}
        }
        let now = clock.now_ms();
        if !stopping {
            for (key, record) in scheduler.start_due(now) {
                status.metrics.run_started();
                let arrival = arrivals.remove(&record.run_id);
                let cx = shared.clone();
                let label = (key.clone(), record.run_id.clone());
                let handle =
                    runs.spawn_local(async move { cx.run(key, record, false, arrival).await });
                tasks.insert(handle.id(), label);
            }
        }
        // After the run started: the delete is not on its critical path.
        if let Some(ack) = pending_ack.take() {
            acknowledge(&queue, &ack, &status).await;
        }
        if now >= next_prune {
            next_prune = now + PRUNE_EVERY.as_millis() as u64;
            prune(&shared, &mut inbox, args.prune_older_than, now, &intake);
        }
        intake.expire(now);
        // On the live sim, let other drflow commands (`sim fault`, `sim status`) have the world
        // between polls: save it and give up its lock at most once a wall-clock second.
        if live_sim && crate::runtime::wall_ms() >= next_release {
            next_release = crate::runtime::wall_ms() + 1000;
            let _ = backend.checkpoint();
            let _ = queue.checkpoint();
        }
        if !stopping && deadline.is_some_and(|d| now >= d) {
            eprintln!("drflow: daemon: --for elapsed; stopping");
            begin_stop(
                &mut stopping,
                &mut sources,
                &status,
                &stop_tx,
                Stop::Graceful,
            );
        }
        if stopping && runs.is_empty() {
            break;
        }
    }
    backend
        .checkpoint()
        .map_err(|e| failed("saving the simulated cloud", e))?;
    queue
        .checkpoint()
        .map_err(|e| failed("saving the simulated cloud", e))?;
    if let Err(e) = lease.release().await {
        // It lapses by itself once this process is gone.
        eprintln!("drflow: daemon: could not give up the daemon's lease: {e}");
    }
    eprintln!("drflow: daemon: stopped");
    Ok(if failed_sources { EXIT_FAILED } else { EXIT_OK })
}

/// The leases of a daemon with `--lease-ttl`: renewed every third of it, a held one polled
/// every tenth of it (at least every second).
fn lease_options(ttl: Duration) -> drflow_engine::LeaseOptions {
    drflow_engine::LeaseOptions {
        ttl,
        renew_every: ttl / 3,
        poll: (ttl / 10).min(Duration::from_secs(1)),
        ..drflow_engine::LeaseOptions::default()
    }
}

/// With a shared journal, on taking the lease: copies the journal, and returns the runs of the
/// triggers' runbooks that another daemon left running or interrupted within the triggers'
/// memory (`within` + `cooldown`) and this one never decided, to resume. Every run of a
/// trigger's runbook started within that memory also counts as acted on
/// ([`Intake::acted_on`]): the alarms it answered do not fire again here.
fn adopt(
    cx: &RunContext,
    known: &[FiringRecord],
    intake: &mut Intake,
    now_ms: u64,
) -> Result<Vec<FiringRecord>, Failure> {
    let journal = cx
        .runner
        .open_journal()
        .map_err(|e| failed("the shared journal", e.message()))?;
    let runs = journal.list_runs().map_err(|e| failed("the journal", e))?;
    let mut adopted = Vec::new();
    for run in runs {
        let triggers: Vec<&Prepared> = cx
            .plan
            .runbooks
            .iter()
            .filter(|p| p.runbook.name == run.runbook)
            .collect();
        let Some(first) = triggers.first() else {
            continue;
        };
        let started_ms = (run.started_at * 1000.0) as u64;
        let last_ms = (run.last_event_at.unwrap_or(run.started_at) * 1000.0) as u64;
        if now_ms.saturating_sub(last_ms) > intake.memory_ms() {
            continue;
        }
        // Whichever trigger started it, every trigger of that runbook would only repeat it.
        for p in &triggers {
            intake.acted_on(&p.trigger, started_ms);
        }
        let open = run.status == "running" || run.status == "interrupted";
        if !open || known.iter().any(|r| r.run_id == run.id) {
            continue;
        }
        eprintln!(
            "drflow: daemon: run {} of {} was left {} by another daemon; finishing it",
            run.id, run.runbook, run.status
        );
        adopted.push(FiringRecord {
            run_id: run.id.clone(),
            trigger: first.trigger.clone(),
            runbook: first.runbook.file.to_string(),
            params: run.params.clone(),
            at_ms: started_ms,
        });
    }
    Ok(adopted)
}

/// Takes the lease `daemon/<env_suffix>` in the state dir's journal, kept renewed while the
/// daemon lives. Errors (exit 2): another live daemon holds it, naming its pid and host.
async fn hold_daemon_lease(
    global: &Global,
    env_suffix: &str,
) -> Result<drflow_engine::HeldLease, Failure> {
    let journal = Journal::open_in(&global.state_dir).map_err(|e| failed("the journal", e))?;
    let store = drflow_engine::FileLeaseStore::open(journal.path())
        .map_err(|e| failed("the daemon's lease", e))?;
    let key = format!("daemon/{env_suffix}");
    let me = format!("daemon-{}", std::process::id());
    match drflow_engine::HeldLease::acquire(
        Arc::new(store),
        &key,
        &me,
        &drflow_engine::LeaseOptions::default(),
    )
    .await
    {
        Ok(lease) => Ok(lease),
        Err(drflow_engine::LockError::Held { holder }) => Err(Failure::invalid(format!(
            "error: another daemon (pid {} on {}) already watches {env_suffix} with the state dir {}\n  hint: stop it first, or give this one its own --state-dir; two daemons on one queue would split its events\n",
            holder.pid,
            holder.hostname,
            global.state_dir.display()
        ))),
        Err(e) => Err(failed("the daemon's lease", e)),
    }
}

fn begin_stop(
    stopping: &mut bool,
    sources: &mut JoinSet<()>,
    status: &Status,
    stop_tx: &watch::Sender<Stop>,
    how: Stop,
) {
    *stopping = true;
    sources.abort_all();
    status.set_health(Health::Stopping);
    let _ = stop_tx.send(how);
}

fn failed(what: &str, e: impl std::fmt::Display) -> Failure {
    Failure {
        diagnostics: Vec::new(),
        code: EXIT_FAILED,
        message: format!("error: daemon: {what}: {e}"),
    }
}

/// Takes one message: journals it (with the firings it completed, each given its run id) before
/// acknowledging it, then offers the firings to the scheduler.
async fn handle(
    intake: &mut Intake,
    inbox: &mut Inbox,
    cx: &RunContext,
    scheduler: &mut KeyedScheduler<FiringRecord>,
    position: &std::cell::Cell<u64>,
    arrivals: &mut std::collections::HashMap<String, u64>,
    m: Message,
) -> Result<Option<Ack>, Failure> {
    let metrics = &cx.status.metrics;
    metrics.received(m.source);
    let now = cx.clock.now_ms();
    let verdict = intake.take(&m.body, now);
    let mut records = Vec::new();
    match &verdict {
        Verdict::Malformed { reason } => {
            metrics.dropped("malformed");
            eprintln!(
                "drflow: daemon: dropped a malformed message from the {}: {reason}",
                m.source
            );
        }
        Verdict::Foreign => {
            metrics.dropped("foreign");
            tracing::debug!(source = m.source, "dropped an event no trigger is about");
        }
        Verdict::Duplicate | Verdict::Stale => metrics.deduplicated(verdict.name()),
        Verdict::Taken { observation } => {
            for s in &observation.suppressed {
                metrics.suppressed();
                // Said: a real outage soon after a failover (or a failback) must not go quiet.
                eprintln!(
                    "drflow: daemon: trigger {} met, but in cooldown until {} (after its last firing, or a run of its runbook another daemon started); not firing",
                    s.trigger,
                    iso8601(s.until_ms as f64 / 1000.0)
                );
            }
            for f in &observation.firings {
                metrics.fired(&f.trigger);
                match cx.record_for(f) {
                    Ok(r) => records.push(r),
                    Err(e) => eprintln!("drflow: daemon: trigger {} fired, but {e}", f.trigger),
                }
            }
        }
    }
    let taken = matches!(verdict, Verdict::Taken { .. } | Verdict::Stale);
    let cursor = match &m.ack {
        Some(Ack::Position(p)) => Some(("queue", (*p).max(position.get()))),
        _ => None,
    };
    let event = taken.then(|| TakenEvent {
        body: m.body.clone(),
        received_ms: now,
    });
    if event.is_some() || !records.is_empty() || cursor.is_some() {
        inbox
            .record(event.as_ref(), &records, cursor)
            .map_err(|e| failed("the inbox", e))?;
    }
    if let Some((_, p)) = cursor {
        position.set(p);
    }
    for r in records {
        let key = cx.lock_key(&r);
        eprintln!(
            "drflow: daemon: trigger {} fired: run {} of {} ({key})",
            r.trigger, r.run_id, r.runbook
        );
        let run_id = r.run_id.clone();
        match scheduler.offer(&key, r, now) {
            Offer::Replaced(older) => {
                metrics.coalesced();
                eprintln!(
                    "drflow: daemon: run {} of {key}, not started yet, is replaced by run {run_id}",
                    older.run_id
                );
                inbox
                    .forget_firing(&older.run_id)
                    .map_err(|e| failed("the inbox", e))?;
            }
            Offer::Behind => eprintln!(
                "drflow: daemon: a run for {key} is in progress; run {run_id} starts when it ends"
            ),
            Offer::Queued => {}
        }
        let seconds = crate::runtime::wall_ms().saturating_sub(m.wall_ms) as f64 / 1000.0;
        metrics.decision_latency(seconds);
        arrivals.insert(run_id, m.wall_ms);
    }
    // Journaled: the queue may forget it, once the run it decided has started.
    Ok(m.ack.filter(|a| matches!(a, Ack::Receipt(_))))
}

/// Deletes a journaled message from the queue. A failed delete only means a copy comes back.
async fn acknowledge(queue: &AlarmQueue, ack: &Ack, status: &Status) {
    if let Err(e) = queue.ack(ack).await {
        status.metrics.source_error("queue");
        eprintln!(
            "drflow: daemon: could not delete a journaled message (it will come again): {}",
            e.message
        );
    }
}

/// What a run needs, shared by the daemon's runs.
struct RunContext {
    runner: Runner,
    /// How a run takes its `lock:` (and a resumed run its own lease) when another holds it.
    lock_wait: LockWait,
    backend: Arc<LazyBackend>,
    registry: drflow_engine::Registry,
    plan: Plan,
    clock: SharedClock,
    status: Arc<Status>,
    stop: watch::Receiver<Stop>,
    state_dir: PathBuf,
}

impl RunContext {
    fn prepared(&self, trigger: &str) -> Option<&Prepared> {
        self.plan.runbooks.iter().find(|p| p.trigger == trigger)
    }

    /// The firing as the inbox records it: a new run id and the run's parameters.
    fn record_for(&self, f: &Firing) -> Result<FiringRecord, String> {
        let p = self
            .prepared(&f.trigger)
            .ok_or_else(|| format!("no runbook for trigger {}", f.trigger))?;
        let full = crate::drill::params::with_firing(&p.runbook, &p.params, &f.params)?;
        // Only what the firing gives: the rest comes from the parameters files when the run
        // starts, secrets included, which the inbox never holds.
        let own: serde_json::Map<String, Value> = f
            .params
            .keys()
            .filter_map(|k| full.get(k).map(|v| (k.clone(), v.clone())))
            .collect();
        Ok(FiringRecord {
            run_id: crate::new_run_id(),
            trigger: f.trigger.clone(),
            runbook: p.runbook.file.to_string(),
            params: Value::Object(own),
            at_ms: self.clock.now_ms(),
        })
    }

    /// The scheduler's key of a firing: its runbook's rendered `lock:`, else the runbook file.
    fn lock_key(&self, r: &FiringRecord) -> String {
        self.prepared(&r.trigger)
            .and_then(|p| {
                let mut params = p.params.clone();
                params.extend(params_of(r));
                drflow_engine::runner::evaluate_lock(
                    &p.runbook,
                    &r.run_id,
                    &params,
                    self.clock.as_ref(),
                )
                .ok()
                .flatten()
            })
            .unwrap_or_else(|| r.runbook.clone())
    }

    /// On the aws target: how long after its event arrived the run made its first API call (the
    /// daemon's own queue calls aside), said on stderr for `benches/daemon_latency.sh`.
    fn say_first_call(&self, run_id: &str, arrival_ms: u64) {
        let Some(calls) = self.backend.aws_calls() else {
            return;
        };
        let first = calls
            .iter()
            .filter(|c| c.sent_at_ms >= arrival_ms)
            .filter(|c| !matches!(c.operation, "ReceiveMessage" | "DeleteMessage"))
            .map(|c| c.sent_at_ms)
            .min();
        if let Some(first) = first {
            eprintln!(
                "drflow: daemon: run {run_id}: first API call {} ms after its event arrived",
                first - arrival_ms
            );
        }
    }

    /// Whether the journal knows `run_id`.
    fn in_journal(&self, run_id: &str) -> bool {
        let path = self.state_dir.join(JOURNAL_FILE);
        Journal::open_read_only(&path).is_ok_and(|j| j.run(run_id).is_ok())
    }

    /// Starts (or, `journaled`, resumes) the run of `r` and waits for its end.
    async fn run(
        self: Rc<Self>,
        key: String,
        r: FiringRecord,
        journaled: bool,
        arrival: Option<u64>,
    ) -> Ended {
        let status = self.run_inner(&r, journaled).await;
        if let Some(at) = arrival {
            self.say_first_call(&r.run_id, at);
        }
        let journaled = journaled || status.is_ok() || self.in_journal(&r.run_id);
        Ended {
            key,
            run_id: r.run_id,
            status,
            journaled,
        }
    }

    async fn run_inner(&self, r: &FiringRecord, journaled: bool) -> Result<RunStatus, RunFailure> {
        let mut options = RunOptions::new(r.run_id.clone());
        options.clock = self.clock.clone();
        if journaled {
            // The trigger's runbook here: the daemon that began the run may have had it at
            // another path (its content must be the same: the resume checks its hash).
            let file = self
                .prepared(&r.trigger)
                .map(|p| PathBuf::from(&*p.runbook.file));
            let request = LoadRequest {
                run: &r.run_id,
                purpose: Purpose::Resume,
                file: file.as_deref(),
                force: false,
                secret_params: &[],
                params_file: None,
                lock: self.lock_wait,
            };
            let loaded = match self
                .runner
                .load(&self.registry, request)
                .await
                .map_err(RunFailure::from)?
            {
                Loaded::NothingToDo { .. } => return Ok(RunStatus::Succeeded),
                Loaded::Ready(loaded) => *loaded,
            };
            options.prior = Some(loaded.prior());
            eprintln!("drflow: daemon: resuming run {}", r.run_id);
            return self
                .finish(loaded.session, &loaded.runbook, &loaded.params, options)
                .await;
        }
        let p = self.prepared(&r.trigger).ok_or_else(|| {
            RunFailure::from(format!(
                "its trigger {} is no longer in the configuration",
                r.trigger
            ))
        })?;
        let mut params = p.params.clone();
        params.extend(params_of(r));
        let how = StartOptions {
            no_journal: false,
            lock: self.lock_wait,
        };
        let session = self
            .runner
            .start(&p.runbook, &params, &r.run_id, how)
            .await
            .map_err(RunFailure::from)?;
        self.finish(session, &p.runbook, &params, options).await
    }

    async fn finish(
        &self,
        session: drflow_engine::runner::Session,
        rb: &Runbook,
        params: &Outputs,
        mut options: RunOptions,
    ) -> Result<RunStatus, RunFailure> {
        options.redacted_params = redacted(rb, params);
        let mut sink = StepLog {
            run_id: options.run_id.clone(),
        };
        let outcome = session
            .run(rb, params, options, &mut sink, self.stop.clone())
            .await
            .map_err(RunFailure::from)?;
        Ok(outcome.report.status)
    }
}

/// A daemon's run as its log shows it: a line per step started and ended, once journaled (the
/// runner records to the journal before this sink), so the log never says more than a peer
/// taking over would find.
struct StepLog {
    run_id: String,
}

impl drflow_engine::RunSink for StepLog {
    fn record(&mut self, event: &drflow_engine::RunEvent) -> Result<(), drflow_engine::SinkError> {
        use drflow_engine::RunEvent as E;
        let what = match event {
            E::StepStarted { .. } => "started",
            E::StepSucceeded { .. } => "succeeded",
            E::StepFailed { .. } => "failed",
            E::StepSkipped { .. } => "skipped",
            _ => return Ok(()),
        };
        if let Some(step) = event.step() {
            eprintln!("drflow: daemon: run {}: step {step} {what}", self.run_id);
        }
        Ok(())
    }
}

/// A firing record's parameters as run values.
fn params_of(r: &FiringRecord) -> Outputs {
    r.params
        .as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

/// What to do at start with each recorded firing: start it (`false`: never started) or resume
/// it (`true`), both only if it was decided or last ran within `bound_ms` of `now_ms` (the
/// triggers' `within` + `cooldown`): a failover stopped days ago is not finished by a restart
/// without a person deciding so (the second list, with why). Firings whose runs ended are left
/// out (and forgotten by the caller with the stale ones). Errors: the journal cannot be read;
/// guessing would start old runs again.
#[allow(clippy::type_complexity)]
fn unfinished(
    state_dir: &Path,
    records: &[FiringRecord],
    now_ms: u64,
    bound_ms: u64,
) -> Result<(Vec<(FiringRecord, bool)>, Vec<(FiringRecord, String)>), Failure> {
    let path = state_dir.join(JOURNAL_FILE);
    let journal = if path.exists() {
        Some(Journal::open_read_only(&path).map_err(|e| failed("the journal", e))?)
    } else {
        None
    };
    let ago = |ms: u64| drflow_engine::format_duration(Duration::from_millis(ms));
    let mut pending = Vec::new();
    let mut stale = Vec::new();
    for r in records {
        let run = match &journal {
            None => None,
            Some(j) => match j.run(&r.run_id) {
                Ok(run) => Some(run),
                Err(drflow_engine::JournalError::UnknownRun { .. }) => None,
                Err(e) => return Err(failed("the journal", e)),
            },
        };
        match run {
            None => {
                let age = now_ms.saturating_sub(r.at_ms);
                if age <= bound_ms {
                    pending.push((r.clone(), false));
                } else {
                    stale.push((
                        r.clone(),
                        format!("decided {} ago and never started", ago(age)),
                    ));
                }
            }
            Some(run) if run.status == "running" || run.status == "interrupted" => {
                let last = run.last_event_at.unwrap_or(run.started_at);
                let age = now_ms.saturating_sub((last * 1000.0) as u64);
                if age <= bound_ms {
                    pending.push((r.clone(), true));
                } else {
                    stale.push((r.clone(), format!("{} {} ago", run.status, ago(age))));
                }
            }
            Some(_) => stale.push((r.clone(), String::new())),
        }
    }
    Ok((pending, stale))
}

/// The retention pass, hourly: the inbox's events the triggers no longer count always; with
/// `--prune-older-than`, also the runs that ended before it (every run of the triggers'
/// runbooks and of those `drflow runs prune` keeps is kept) and the firings decided before it.
fn prune(cx: &RunContext, inbox: &mut Inbox, keep: Option<Duration>, now: u64, intake: &Intake) {
    let events_before = now.saturating_sub(intake.memory_ms());
    let firings_before = keep.map_or(0, |k| now.saturating_sub(k.as_millis() as u64));
    if let Err(e) = inbox.prune(events_before, firings_before) {
        eprintln!("drflow: daemon: could not prune the inbox: {e}");
    }
    let Some(keep) = keep else { return };
    let before = now.saturating_sub(keep.as_millis() as u64) as f64 / 1000.0;
    let mut kept: Vec<&str> = crate::cmd_journal::KEPT_BY_DEFAULT.to_vec();
    kept.extend(cx.plan.runbooks.iter().map(|p| p.runbook.name.as_str()));
    let path = cx.state_dir.join(JOURNAL_FILE);
    if !path.exists() {
        return;
    }
    // With a shared journal, the runner's journal prunes the table too.
    let journal = cx.runner.open_journal().map_err(|e| e.message());
    match journal.and_then(|mut j| j.prune(before, &kept, false).map_err(|e| e.to_string())) {
        Ok(gone) if !gone.is_empty() => eprintln!(
            "drflow: daemon: pruned {} runs that ended before {}",
            gone.len(),
            iso8601(before)
        ),
        Ok(_) => {}
        Err(e) => eprintln!("drflow: daemon: could not prune the journal: {e}"),
    }
}

/// Reads the alarm queue for ever, sending each message on.
async fn read_queue(
    queue: Rc<AlarmQueue>,
    position: Rc<std::cell::Cell<u64>>,
    tx: mpsc::Sender<Message>,
    clock: SharedClock,
    status: Arc<Status>,
) {
    // Messages handed on but not yet journaled: the sim's position moves only once they are.
    let mut sent_up_to = position.get();
    loop {
        let from = sent_up_to.max(position.get());
        match queue
            .receive(from, LONG_POLL, VISIBILITY, SIM_POLL, &clock)
            .await
        {
            Ok(got) => {
                if status.health() != Health::Ok && status.health() != Health::Stopping {
                    status.set_health(Health::Ok);
                }
                for Received { body, ack, .. } in got {
                    if let Ack::Position(p) = &ack {
                        sent_up_to = sent_up_to.max(*p);
                    }
                    let m = Message {
                        source: "queue",
                        body,
                        ack: Some(ack),
                        wall_ms: crate::runtime::wall_ms(),
                    };
                    if tx.send(m).await.is_err() {
                        return;
                    }
                }
            }
            Err(e) => {
                status.metrics.source_error("queue");
                status.set_health(Health::Failing(format!("the alarm queue: {}", e.message)));
                eprintln!(
                    "drflow: daemon: reading the alarm queue failed (retrying): {}",
                    e.message
                );
                clock.sleep(SOURCE_RETRY).await;
            }
        }
    }
}

/// Reads every alarm's state every `every`, sending each as the event that set it.
#[allow(clippy::too_many_arguments)]
async fn reconcile(
    backend: Arc<LazyBackend>,
    regions: Vec<String>,
    env_suffix: String,
    every: Duration,
    tx: mpsc::Sender<Message>,
    clock: SharedClock,
    status: Arc<Status>,
) {
    // Regions that could not be read last time: said once when it starts and once when it ends.
    let mut unreadable: Vec<String> = Vec::new();
    loop {
        clock.sleep(every).await;
        let b = match backend.get() {
            Ok(b) => b,
            Err(e) => {
                status.metrics.source_error("reconcile");
                eprintln!("drflow: daemon: reconcile: {}", e.message);
                continue;
            }
        };
        let (events, failed) = reconcile_events(b.as_ref(), &regions, &env_suffix).await;
        let now_failing: Vec<String> = failed.iter().map(|(r, _)| r.clone()).collect();
        for (region, e) in &failed {
            status.metrics.source_error("reconcile");
            if !unreadable.contains(region) {
                eprintln!(
                    "drflow: daemon: reconcile: cannot read the alarms of {region} (retrying every {}): {}",
                    drflow_engine::format_duration(every),
                    e.message
                );
            }
        }
        for region in unreadable.iter().filter(|r| !now_failing.contains(r)) {
            eprintln!("drflow: daemon: reconcile: the alarms of {region} can be read again");
        }
        unreadable = now_failing;
        for e in events {
            let m = Message {
                source: "reconcile",
                body: e.to_string(),
                ack: None,
                wall_ms: crate::runtime::wall_ms(),
            };
            if tx.send(m).await.is_err() {
                return;
            }
        }
    }
}

/// drflow's own probe of the primary's endpoint from the standby region.
#[allow(clippy::too_many_arguments)]
async fn probe(
    backend: Arc<LazyBackend>,
    env_suffix: String,
    from_region: String,
    every: Duration,
    window: Duration,
    tx: mpsc::Sender<Message>,
    clock: SharedClock,
    status: Arc<Status>,
) {
    let mut watcher = loop {
        let found = match backend.get() {
            Ok(b) => ProbeTarget::discover(b.as_ref(), &env_suffix)
                .await
                .map_err(|e| e.message)
                .and_then(|t| {
                    ProbeWatcher::<dyn CloudBackend>::new(b, &from_region, t, every, window)
                        .map_err(|e| e.to_string())
                }),
            Err(e) => Err(e.message),
        };
        match found {
            Ok(w) => break w,
            Err(e) => {
                status.metrics.source_error("probe");
                eprintln!("drflow: daemon: the probe cannot start yet (retrying): {e}");
                clock.sleep(SOURCE_RETRY.max(every)).await;
            }
        }
    };
    loop {
        let now = clock.now_ms();
        if let Some(event) = watcher.poll(now).await {
            let m = Message {
                source: "probe",
                body: event.to_string(),
                ack: None,
                wall_ms: crate::runtime::wall_ms(),
            };
            if tx.send(m).await.is_err() {
                return;
            }
        }
        let next = watcher.next_due_ms().unwrap_or(now);
        clock
            .sleep(Duration::from_millis(
                next.saturating_sub(clock.now_ms()).max(1),
            ))
            .await;
    }
}

/// Counts SIGINT and SIGTERM: each one sends how many came so far.
async fn forward_signals(tx: mpsc::UnboundedSender<u32>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return;
    };
    let mut n = 0;
    loop {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        n += 1;
        if tx.send(n).is_err() {
            return;
        }
    }
}
