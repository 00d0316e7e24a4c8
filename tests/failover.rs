//! The failover and failback runbooks on the simulated cloud, one fault at a time, through the
//! library: provision into a temporary state directory, inject the fault through the sim's
//! faults API, let virtual time pass, run `runbooks/failover.yaml`, and check what it decided
//! and did against the sim's own account (`SimBackend::status`). Every run is on a paused
//! runtime with the sim on the run's virtual clock: minutes of simulated time, no sleeps.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use drflow_engine::runner::{
    HookAction, HookPoint, Hooks, RunOutcome, Runner, RunnerError, RunnerOptions, StartOptions,
    compile_file,
};
use drflow_engine::{
    Outputs, Recorder, RunEvent, RunOptions, RunReport, RunStatus, SharedClock, Stop, VirtualClock,
    compile, resolve_params,
};
use drflow_steps::sim::{ClientConfig, Fault, FaultKind, Scenario, SimStatus};
use drflow_steps::{CloudBackend, CloudConfig, LazyBackend, SimBackend};
use serde_json::{Value, json};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// One environment on the sim, provisioned with one of the shipped parameter files.
struct Env {
    dir: tempfile::TempDir,
    params: &'static str,
}

impl Env {
    /// Provisions `runbooks/provision.yaml` with `runbooks/params/<params>`, then lets ten
    /// minutes pass so that writes flow and every health check and alarm has settled.
    fn provisioned(params: &'static str) -> Env {
        let env = Env {
            dir: tempfile::tempdir().unwrap(),
            params,
        };
        let report = env.run("runbooks/provision.yaml", &[]);
        assert_eq!(report.status, RunStatus::Succeeded, "{:#?}", report.errors);
        env.advance(Duration::from_secs(600));
        env
    }

    /// Provisions like [`Env::provisioned`] but lets no time pass: the deployment is still
    /// warming up (instances launching, no quote processed yet).
    fn fresh(params: &'static str) -> (Env, RunReport) {
        let env = Env {
            dir: tempfile::tempdir().unwrap(),
            params,
        };
        let report = env.run("runbooks/provision.yaml", &[]);
        assert_eq!(report.status, RunStatus::Succeeded, "{:#?}", report.errors);
        (env, report)
    }

    fn state(&self) -> &Path {
        self.dir.path()
    }

    /// The sim without a clock: faults, time and status, as `drflow sim` sees them.
    fn sim(&self) -> SimBackend {
        SimBackend::open(self.state())
    }

    fn inject(&self, kind: FaultKind, region: Option<&str>) {
        self.sim()
            .inject(Fault {
                kind,
                region: region.map(str::to_string),
                az: None,
                at_ms: None,
                for_ms: None,
            })
            .unwrap_or_else(|e| panic!("inject {kind:?}: {e}"));
    }

    fn advance(&self, by: Duration) {
        self.sim().advance(by).unwrap();
    }

    fn status(&self) -> SimStatus {
        self.sim().status().unwrap()
    }

    fn param(&self, name: &str) -> String {
        let text =
            std::fs::read_to_string(repo(&format!("runbooks/params/{}", self.params))).unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("{name} in {}", self.params))
            .trim()
            .to_string()
    }

    /// Runs a shipped runbook with this environment's parameter file and `flags`, on a paused
    /// runtime, the sim on the run's virtual clock; saves the world at the end.
    fn run(&self, runbook: &str, flags: &[(&str, &str)]) -> RunReport {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap();
        let config = CloudConfig::sim(self.state());
        runtime.block_on(async {
            let base = config.virtual_clock_ms().expect("the sim keeps a clock");
            let clock: SharedClock = Arc::new(VirtualClock::new(base));
            let sim: Arc<dyn CloudBackend> =
                Arc::new(SimBackend::open(self.state()).with_clock(clock));
            let lazy = Arc::new(LazyBackend::from_backend(config.clone(), sim));
            let registry = drflow_steps::registry_with_backend(Arc::clone(&lazy));
            let source = std::fs::read_to_string(repo(runbook)).unwrap();
            let rb = compile(runbook, &source, &registry).unwrap_or_else(|d| panic!("{d:?}"));
            let params_path = format!("runbooks/params/{}", self.params);
            let params_text = std::fs::read_to_string(repo(&params_path)).unwrap();
            let flags: Vec<(String, String)> = flags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            let params = resolve_params(&rb, Some((&params_path, &params_text)), &flags)
                .unwrap_or_else(|d| panic!("{d:?}"));
            let (_tx, stop) = tokio::sync::watch::channel(Stop::No);
            let mut sink = Recorder::default();
            let report = drflow_engine::run(
                &rb,
                &params,
                RunOptions::new(format!("test-{}", rb.name)),
                &mut sink,
                stop,
            )
            .await
            .expect("the run goes to its end");
            lazy.checkpoint().expect("the world is saved");
            report
        })
    }

    fn failover(&self, flags: &[(&str, &str)]) -> RunReport {
        self.run("runbooks/failover.yaml", flags)
    }
}

fn out<'r>(report: &'r RunReport, name: &str) -> &'r Value {
    report.outputs.get(name).unwrap_or(&Value::Null)
}

fn step<'r>(report: &'r RunReport, id: &str) -> &'r drflow_engine::StepReport {
    report.steps.iter().find(|s| s.id == id).unwrap()
}

fn step_out<'r>(report: &'r RunReport, id: &str) -> &'r Outputs {
    step(report, id)
        .outputs
        .as_ref()
        .unwrap_or_else(|| panic!("{id} has no outputs: {:?}", step(report, id)))
}

fn writer(status: &SimStatus) -> String {
    status.writer_region.clone().unwrap_or_default()
}

/// Where DNS sends the public name's clients now, by region.
fn serving(status: &SimStatus) -> Vec<String> {
    status
        .traffic
        .iter()
        .find(|t| t.name.starts_with("api."))
        .map(|t| t.regions.clone())
        .unwrap_or_default()
}

fn lost_writes(status: &SimStatus) -> u64 {
    status
        .regions
        .iter()
        .filter_map(|r| r.database.as_ref())
        .map(|d| d.lost_writes)
        .max()
        .unwrap_or(0)
}

fn describe(report: &RunReport) -> String {
    let steps: Vec<String> = report
        .steps
        .iter()
        .map(|s| {
            format!(
                "{} {:?} {}",
                s.id,
                s.status,
                s.error
                    .as_ref()
                    .map(|e| e.to_string())
                    .or(s.note.clone())
                    .unwrap_or_default()
            )
        })
        .collect();
    format!(
        "{:?}\noutputs: {}\nsteps:\n  {}\nerrors: {:?}",
        report.status,
        serde_json::to_string_pretty(&report.outputs).unwrap(),
        steps.join("\n  "),
        report.errors
    )
}

/// A region outage: the writer is lost, so a managed failover, losing exactly the writes the
/// standby did not hold; then a second run changes nothing.
#[test]
fn region_outage_fails_over_losing_only_the_unreplicated_writes() {
    for params in ["eu.yaml", "us-east.yaml"] {
        let env = Env::provisioned(params);
        let (primary, standby) = (env.param("primary_region"), env.param("standby_region"));
        assert_eq!(serving(&env.status()), vec![primary.clone()]);
        env.inject(FaultKind::RegionOutage, None);
        env.advance(Duration::from_secs(45));
        let report = env.failover(&[]);
        let d = describe(&report);
        if std::env::var_os("SHOW").is_some() {
            eprintln!("{params}: {d}");
        }
        assert_eq!(report.status, RunStatus::Succeeded, "{params}: {d}");
        assert_eq!(out(&report, "decision"), "failover", "{d}");
        let status = env.status();
        assert_eq!(writer(&status), standby, "{d}");
        assert_eq!(serving(&status), vec![standby.clone()], "{d}");
        // Lost writes: what the sim says the promotion lost, as the run read it before.
        assert_eq!(
            out(&report, "lost_writes"),
            &json!(lost_writes(&status)),
            "{d}"
        );
        let rpo = out(&report, "rpo_seconds").as_f64().unwrap();
        assert!(rpo < 60.0, "{d}");
        let rto = out(&report, "rto_seconds").as_f64().unwrap();
        assert!(rto > 0.0 && rto < 300.0, "RTO {rto} s: {d}");
        let phases = out(&report, "phase_seconds");
        for p in ["signals", "promote", "scale", "traffic", "verify"] {
            assert!(phases.get(p).is_some(), "phase {p}: {d}");
        }
        assert!(!out(&report, "actions").as_array().unwrap().is_empty());
        let scale = step_out(&report, "scale");
        assert_eq!(scale["shortfall"], 0, "{d}");

        // A second run finds the standby serving and changes nothing.
        let again = env.failover(&[]);
        let d = describe(&again);
        assert_eq!(again.status, RunStatus::Succeeded, "{d}");
        assert_eq!(out(&again, "decision"), "none", "{d}");
        assert_eq!(out(&again, "actions"), &json!([]), "{d}");
        assert!(
            out(&again, "summary")
                .as_str()
                .unwrap()
                .contains("already serves"),
            "{d}"
        );
        assert_eq!(writer(&env.status()), standby);
    }
}

/// A failover started at the very moment of the fault (a person reacting to a page, the daemon
/// to the first alarm), before Route 53's checkers have noticed: the run waits for them and
/// decides as it does later. Its RTO counts from the health check turning unhealthy, which
/// is after the fault.
#[test]
fn a_failover_started_at_the_moment_of_the_fault_waits_for_route53() {
    for (params, fault, decision) in [
        ("eu.yaml", FaultKind::RegionOutage, "failover"),
        ("us-east.yaml", FaultKind::RegionOutage, "failover"),
        ("us-east.yaml", FaultKind::DbFailure, "failover"),
        ("eu.yaml", FaultKind::AppUnhealthy, "switchover"),
    ] {
        let env = Env::provisioned(params);
        let standby = env.param("standby_region");
        let fault_at = env.status().now_ms;
        env.inject(fault, None);
        let report = env.failover(&[]);
        let d = format!(
            "{params} {fault:?}: {}\n{:#?}",
            describe(&report),
            step_out(&report, "signals")
        );
        if std::env::var_os("SHOW").is_some() {
            eprintln!("{d}");
        }
        assert_eq!(report.status, RunStatus::Succeeded, "{d}");
        assert_eq!(out(&report, "decision"), decision, "{d}");
        let signals = step_out(&report, "signals");
        assert_eq!(signals["health_check_down"], true, "{d}");
        assert_eq!(signals["probe_down"], true, "{d}");
        // Route 53 needs about 30-40 s to notice; the run saw its change, not its own start.
        let first = signals["first_failure_at_ms"].as_u64().unwrap();
        assert!(
            (fault_at + 20_000..fault_at + 60_000).contains(&first),
            "first failure {} s after the fault: {d}",
            (first as f64 - fault_at as f64) / 1000.0
        );
        let rto = out(&report, "rto_seconds").as_f64().unwrap();
        assert!(rto > 0.0 && rto < 300.0, "RTO {rto} s: {d}");
        let status = env.status();
        assert_eq!(writer(&status), standby, "{d}");
        assert_eq!(serving(&status), vec![standby], "{d}");
    }
}

/// `drflow` as a person uses it, every command through the binary: provision, a quarter of an
/// hour, the primary region dies, and the failover starts at once.
#[test]
fn the_binary_fails_over_when_started_at_the_moment_of_the_outage() {
    let dir = tempfile::tempdir().unwrap();
    let drflow = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_drflow"))
            .current_dir(repo(""))
            .env("DRFLOW_LOG", "warn")
            .env_remove("DRFLOW_TARGET")
            .arg("--state-dir")
            .arg(dir.path())
            .args(args)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "drflow {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output
    };
    let params = ["--params-file", "runbooks/params/eu.yaml"];
    drflow(&[&["run", "runbooks/provision.yaml"], &params[..]].concat());
    drflow(&["sim", "advance", "15m"]);
    drflow(&["sim", "fault", "region-outage"]);
    let run = drflow(
        &[
            &["run", "runbooks/failover.yaml"],
            &params[..],
            &["--output", "json"],
        ]
        .concat(),
    );
    let report: Value = serde_json::from_slice(&run.stdout).unwrap();
    let outputs = &report["outputs"];
    assert_eq!(outputs["decision"], "failover", "{report:#}");
    assert!(
        outputs["rto_seconds"].as_f64().unwrap() < 300.0,
        "{report:#}"
    );
    let status = SimBackend::open(dir.path()).status().unwrap();
    assert_eq!(writer(&status), "eu-central-1");
    assert_eq!(serving(&status), vec!["eu-central-1".to_string()]);
}

/// The application fails on healthy infrastructure: its database is fine, so a switchover,
/// nothing lost; the primary is fenced first.
#[test]
fn app_unhealthy_switches_over_losing_nothing() {
    let env = Env::provisioned("eu.yaml");
    let standby = env.param("standby_region");
    let before = lost_writes(&env.status());
    env.inject(FaultKind::AppUnhealthy, None);
    env.advance(Duration::from_secs(45));
    let report = env.failover(&[]);
    let d = describe(&report);
    assert_eq!(report.status, RunStatus::Succeeded, "{d}");
    assert_eq!(out(&report, "decision"), "switchover", "{d}");
    assert_eq!(out(&report, "lost_writes"), 0, "{d}");
    assert_eq!(out(&report, "rpo_seconds"), &json!(0.0), "{d}");
    assert_eq!(step_out(&report, "fence")["fenced"], true, "{d}");
    let status = env.status();
    assert_eq!(writer(&status), standby);
    assert_eq!(serving(&status), vec![standby]);
    assert_eq!(lost_writes(&status), before, "a switchover loses nothing");
}

/// The writer's cluster fails, its region is fine: a managed failover, and the primary's
/// instances are fenced (its region can be reached).
#[test]
fn db_failure_fails_over() {
    let env = Env::provisioned("us-east.yaml");
    let standby = env.param("standby_region");
    env.inject(FaultKind::DbFailure, None);
    env.advance(Duration::from_secs(45));
    let report = env.failover(&[]);
    let d = describe(&report);
    assert_eq!(report.status, RunStatus::Succeeded, "{d}");
    assert_eq!(out(&report, "decision"), "failover", "{d}");
    assert_eq!(step_out(&report, "fence")["fenced"], true, "{d}");
    let status = env.status();
    assert_eq!(writer(&status), standby, "{d}");
    assert_eq!(serving(&status), vec![standby], "{d}");
    assert_eq!(
        out(&report, "lost_writes"),
        &json!(lost_writes(&status)),
        "{d}"
    );
}

/// Holds: nothing promoted, fenced, scaled or moved; the run succeeds and says why.
fn assert_held(env: &Env, report: &RunReport, why: &str) {
    let d = describe(report);
    assert_eq!(report.status, RunStatus::Succeeded, "{d}");
    assert_eq!(out(report, "decision"), "hold", "{d}");
    assert!(
        out(report, "summary").as_str().unwrap().contains(why),
        "{why}: {d}"
    );
    assert_eq!(out(report, "actions"), &json!([]), "{d}");
    for s in ["fence", "promote", "scale", "traffic", "verify"] {
        assert_eq!(
            step(report, s).status,
            drflow_engine::StepStatus::Skipped,
            "{s}: {d}"
        );
    }
    let status = env.status();
    assert_eq!(writer(&status), env.param("primary_region"));
    assert_eq!(lost_writes(&status), 0);
    // Both regions were told.
    let told = env.sim().published().unwrap();
    assert!(told.iter().any(|m| m.subject.contains("hold")), "{told:?}");
}

/// Right after a provision nothing serves yet: every signal sees the primary down, but so is
/// the standby. A failover then would fence the primary and move the writer for nothing (an
/// outage of its own), so it holds, says why, and changes nothing; provision says it does not
/// serve yet and how long to wait; once warmed up, the environment fails over a real outage.
#[test]
fn a_fresh_deployment_still_warming_up_is_not_failed_over() {
    for params in ["us-east.yaml", "eu.yaml"] {
        let (env, provision) = Env::fresh(params);
        let readiness = out(&provision, "failover_readiness").as_str().unwrap();
        assert!(
            readiness.contains("neither region serves yet")
                && readiness.contains("a failover now would hold")
                && readiness.contains("drflow sim advance 5m"),
            "{params}: {readiness}"
        );
        // The instances are still launching.
        let report = env.failover(&[]);
        assert_held(&env, &report, "still starting");
        assert_eq!(
            step_out(&report, "signals")["primary_starting"],
            true,
            "{}",
            describe(&report)
        );
        // In service, but the application serves nowhere yet: the standby could not serve
        // either.
        let in_service = |env: &Env| {
            env.status()
                .regions
                .iter()
                .all(|r| r.groups.iter().all(|g| g.in_service > 0))
        };
        let mut waited = 0;
        while !in_service(&env) {
            assert!(
                waited < 600,
                "{params}: no instance in service after {waited} s"
            );
            env.advance(Duration::from_secs(10));
            waited += 10;
        }
        let report = env.failover(&[]);
        assert_held(&env, &report, "standby could not serve either");
        assert_eq!(
            step_out(&report, "signals")["standby_healthy"],
            false,
            "{}",
            describe(&report)
        );
        // Warmed up: provision says so, the failover finds nothing wrong...
        env.advance(Duration::from_secs(300));
        let again = env.run("runbooks/provision.yaml", &[]);
        let readiness = out(&again, "failover_readiness").as_str().unwrap();
        assert!(readiness.starts_with("ready: all"), "{params}: {readiness}");
        let report = env.failover(&[]);
        assert_held(&env, &report, "not confirmed");
        // ... and a real outage is failed over.
        env.inject(FaultKind::RegionOutage, None);
        env.advance(Duration::from_secs(45));
        let report = env.failover(&[]);
        assert_eq!(
            out(&report, "decision"),
            "failover",
            "{}",
            describe(&report)
        );
    }
}

/// An endpoint going up and down never reads as down over the confirmation window.
#[test]
fn flapping_holds() {
    let env = Env::provisioned("eu.yaml");
    env.inject(FaultKind::Flapping, None);
    for wait in [20, 45, 70] {
        env.advance(Duration::from_secs(wait));
        let report = env.failover(&[]);
        assert_held(&env, &report, "not confirmed");
    }
}

/// The standby cannot reach the primary, but Route 53's checkers can: drflow is the one cut
/// off, so it holds.
#[test]
fn partition_holds() {
    let env = Env::provisioned("us-east.yaml");
    env.inject(FaultKind::Partition, None);
    env.advance(Duration::from_secs(45));
    let report = env.failover(&[]);
    assert_held(&env, &report, "isolation");
}

/// Waiting for Route 53 to notice does not turn flapping or a partition into an outage: both
/// hold whether the failover starts at the moment of the fault or minutes later, and for the
/// reason they hold for.
#[test]
fn flapping_and_a_partition_hold_whenever_the_failover_starts() {
    for (fault, params, why) in [
        (FaultKind::Flapping, "eu.yaml", "not confirmed"),
        (FaultKind::Partition, "us-east.yaml", "isolation"),
        (FaultKind::Partition, "eu.yaml", "isolation"),
    ] {
        let env = Env::provisioned(params);
        env.inject(fault, None);
        for wait in [0, 30, 150] {
            env.advance(Duration::from_secs(wait));
            let report = env.failover(&[]);
            let signals = step_out(&report, "signals");
            let d = format!("{fault:?} {params} after {wait} s more: {signals:#?}");
            if fault == FaultKind::Partition {
                assert_eq!(signals["probe_down"], true, "{d}");
                assert_eq!(signals["health_check_down"], false, "{d}");
            } else {
                assert_ne!(signals["probe_down"], true, "{d}");
                assert_ne!(signals["health_check_down"], true, "{d}");
            }
            assert_held(&env, &report, why);
        }
    }
}

/// The writer is lost while replication lags beyond the budget: blocked, nothing promoted, the
/// run fails so that someone looks; a re-run with a larger budget fails over.
#[test]
fn lag_spike_beyond_the_budget_blocks() {
    let env = Env::provisioned("eu.yaml");
    let standby = env.param("standby_region");
    env.inject(FaultKind::LagSpike, None);
    env.advance(Duration::from_secs(180));
    env.inject(FaultKind::RegionOutage, None);
    env.advance(Duration::from_secs(45));
    let report = env.failover(&[]);
    let d = describe(&report);
    assert_eq!(report.status, RunStatus::Failed, "{d}");
    assert_eq!(out(&report, "decision"), "blocked", "{d}");
    assert!(
        out(&report, "reason")
            .as_str()
            .unwrap()
            .contains("max_data_loss"),
        "{d}"
    );
    for s in ["fence", "promote", "scale", "traffic"] {
        assert_eq!(
            step(&report, s).status,
            drflow_engine::StepStatus::Skipped,
            "{s}: {d}"
        );
    }
    assert_eq!(
        step(&report, "blocked").status,
        drflow_engine::StepStatus::Failed,
        "{d}"
    );
    let status = env.status();
    assert_eq!(
        writer(&status),
        env.param("primary_region"),
        "nothing promoted"
    );
    assert_eq!(lost_writes(&status), 0);

    let report = env.failover(&[("max_data_loss", "10m")]);
    let d = describe(&report);
    assert_eq!(report.status, RunStatus::Succeeded, "{d}");
    assert_eq!(out(&report, "decision"), "failover", "{d}");
    assert!(out(&report, "rpo_seconds").as_f64().unwrap() > 60.0, "{d}");
    assert_eq!(writer(&env.status()), standby);
}

/// The standby cannot launch all it needs: the failover goes on with what launched, reports
/// the shortfall, and says so in the notification.
#[test]
fn capacity_short_fails_over_with_the_shortfall_reported() {
    let env = Env::provisioned("eu.yaml");
    let standby = env.param("standby_region");
    env.inject(FaultKind::CapacityShort, Some(&standby));
    env.inject(FaultKind::RegionOutage, None);
    env.advance(Duration::from_secs(45));
    let report = env.failover(&[("capacity_wait", "90s")]);
    let d = describe(&report);
    assert_eq!(report.status, RunStatus::Succeeded, "{d}");
    assert_eq!(out(&report, "decision"), "failover", "{d}");
    let shortfall = out(&report, "capacity_shortfall").as_u64().unwrap();
    assert!(shortfall > 0, "{d}");
    let scale = step_out(&report, "scale");
    assert!(
        scale["last_failure"]
            .as_str()
            .unwrap()
            .contains("InsufficientInstanceCapacity"),
        "{d}"
    );
    assert_eq!(serving(&env.status()), vec![standby]);
    let told = env.sim().published().unwrap();
    assert!(
        told.iter().any(|m| m.message.contains("capacity short")),
        "{told:?}"
    );
}

/// After a region outage and its failover, the region comes back; failback returns to it with
/// nothing lost, the standby goes back to its minimal size, and provision finds nothing to do.
#[test]
fn failback_after_a_region_outage_returns_everything_as_provisioned() {
    for params in ["eu.yaml", "us-east.yaml"] {
        let env = Env::provisioned(params);
        let (primary, standby) = (env.param("primary_region"), env.param("standby_region"));
        env.inject(FaultKind::RegionOutage, None);
        env.advance(Duration::from_secs(45));
        let report = env.failover(&[]);
        assert_eq!(
            out(&report, "decision"),
            "failover",
            "{}",
            describe(&report)
        );
        let lost = lost_writes(&env.status());
        env.sim().heal(None).unwrap();
        env.advance(Duration::from_secs(300));

        let back = env.run("runbooks/failback.yaml", &[]);
        let d = describe(&back);
        if std::env::var_os("SHOW").is_some() {
            eprintln!("{params}: {d}");
        }
        assert_eq!(back.status, RunStatus::Succeeded, "{params}: {d}");
        assert_eq!(out(&back, "decision"), "failback", "{d}");
        assert_eq!(out(&back, "lost_writes"), 0, "{d}");
        let status = env.status();
        assert_eq!(writer(&status), primary, "{d}");
        assert_eq!(serving(&status), vec![primary.clone()], "{d}");
        assert_eq!(lost_writes(&status), lost, "the failback lost nothing more");
        let group = |region: &str| {
            status
                .regions
                .iter()
                .find(|r| r.region == region)
                .and_then(|r| r.groups.first().cloned())
                .unwrap()
        };
        assert_eq!(group(&standby).desired, 1, "{d}");
        assert_eq!(group(&primary).desired, 2, "{d}");

        // Failback again: nothing to move.
        let again = env.run("runbooks/failback.yaml", &[]);
        let d = describe(&again);
        assert_eq!(again.status, RunStatus::Succeeded, "{d}");
        assert_eq!(out(&again, "decision"), "none", "{d}");
        assert_eq!(out(&again, "actions"), &json!([]), "{d}");

        // Everything is as provision wants it.
        let provision = env.run("runbooks/provision.yaml", &[]);
        assert_eq!(provision.status, RunStatus::Succeeded);
        let mut changes: Vec<Value> = Vec::new();
        for s in &provision.steps {
            if let Some(c) = s.outputs.as_ref().and_then(|o| o.get("changes")) {
                changes.extend(c.as_array().cloned().unwrap_or_default());
            }
        }
        assert!(
            changes.is_empty(),
            "{params}: provision changed {changes:?}"
        );
    }
}

/// A sink that records, and stops the run `delay` (virtual) after step `kill_at` starts: a
/// crash in the middle of that step, after whatever it did in that time.
struct KillAt {
    kill_at: String,
    delay: Duration,
    stop: tokio::sync::watch::Sender<Stop>,
    recorder: Recorder,
}

impl drflow_engine::RunSink for KillAt {
    fn record(&mut self, event: &drflow_engine::RunEvent) -> Result<(), drflow_engine::SinkError> {
        if let drflow_engine::RunEvent::StepStarted { step, .. } = event
            && *step == self.kill_at
        {
            let (stop, delay) = (self.stop.clone(), self.delay);
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let _ = stop.send(Stop::Now);
            });
        }
        self.recorder.record(event)
    }
}

impl Env {
    /// A copy of this environment's world in a new state directory.
    fn copy(&self) -> Env {
        let env = Env {
            dir: tempfile::tempdir().unwrap(),
            params: self.params,
        };
        std::fs::create_dir_all(env.state().join("sim")).unwrap();
        std::fs::copy(
            self.state().join("sim/world.json"),
            env.state().join("sim/world.json"),
        )
        .unwrap();
        env
    }

    /// Runs the failover, killed `delay` after `kill_at` starts, then resumed as `drflow
    /// resume` does: the steps that succeeded keep their outputs, the rest run again.
    fn failover_killed_and_resumed(
        &self,
        kill_at: &str,
        delay: Duration,
    ) -> (RunReport, RunReport) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap();
        let config = CloudConfig::sim(self.state());
        let runbook = "runbooks/failover.yaml";
        let run_once = |prior: Option<drflow_engine::Prior>, kill: bool| {
            runtime.block_on(async {
                let base = config.virtual_clock_ms().unwrap();
                let clock: SharedClock = Arc::new(VirtualClock::new(base));
                let sim: Arc<dyn CloudBackend> =
                    Arc::new(SimBackend::open(self.state()).with_clock(clock));
                let lazy = Arc::new(LazyBackend::from_backend(config.clone(), sim));
                let registry = drflow_steps::registry_with_backend(Arc::clone(&lazy));
                let source = std::fs::read_to_string(repo(runbook)).unwrap();
                let rb = compile(runbook, &source, &registry).unwrap();
                let path = format!("runbooks/params/{}", self.params);
                let text = std::fs::read_to_string(repo(&path)).unwrap();
                let params = resolve_params(&rb, Some((&path, &text)), &[]).unwrap();
                let (tx, stop) = tokio::sync::watch::channel(Stop::No);
                let mut options = RunOptions::new("killed");
                options.prior = prior;
                let mut sink = KillAt {
                    kill_at: if kill {
                        kill_at.to_string()
                    } else {
                        String::new()
                    },
                    delay,
                    stop: tx,
                    recorder: Recorder::default(),
                };
                let report = drflow_engine::run(&rb, &params, options, &mut sink, stop)
                    .await
                    .unwrap();
                lazy.checkpoint().unwrap();
                report
            })
        };
        let first = run_once(None, true);
        let mut prior = drflow_engine::Prior::default();
        for s in &first.steps {
            prior.attempts.insert(s.id.clone(), s.attempts);
            if s.status == drflow_engine::StepStatus::Succeeded {
                prior
                    .succeeded
                    .insert(s.id.clone(), s.outputs.clone().unwrap_or_default());
            }
        }
        let resumed = run_once(Some(prior), false);
        (first, resumed)
    }
}

/// A failover killed in the middle of each of its steps and resumed ends as an uninterrupted
/// one does: the standby writes and serves, the promotion happened once (the sim refuses a
/// second, which would fail the run) and lost what an uninterrupted failover loses.
#[test]
fn a_failover_killed_at_any_step_and_resumed_ends_the_same() {
    let template = Env::provisioned("eu.yaml");
    template.inject(FaultKind::RegionOutage, None);
    template.advance(Duration::from_secs(45));
    let baseline = template.copy();
    let report = baseline.failover(&[]);
    assert_eq!(
        out(&report, "decision"),
        "failover",
        "{}",
        describe(&report)
    );
    let expected_lost = lost_writes(&baseline.status());
    let standby = template.param("standby_region");
    let mut interrupted = 0;
    for kill_at in [
        "discover",
        "signals",
        "database",
        "decide",
        "fence",
        "promote",
        "scale",
        "traffic",
        "verify",
        "report",
        "notify_end",
    ] {
        for delay in [Duration::from_secs(1), Duration::from_secs(30)] {
            let env = template.copy();
            let (first, resumed) = env.failover_killed_and_resumed(kill_at, delay);
            let d = format!(
                "killed in {kill_at} after {delay:?}:\n{}",
                describe(&resumed)
            );
            // A step that ends sooner than the delay is not interrupted: the run went on.
            if first.status != RunStatus::Succeeded {
                interrupted += 1;
            }
            assert_eq!(resumed.status, RunStatus::Succeeded, "{d}");
            assert_eq!(out(&resumed, "decision"), "failover", "{d}");
            let status = env.status();
            assert_eq!(writer(&status), standby, "{d}");
            assert_eq!(serving(&status), vec![standby.clone()], "{d}");
            assert_eq!(lost_writes(&status), expected_lost, "{d}");
            assert_eq!(out(&resumed, "lost_writes"), &json!(expected_lost), "{d}");
        }
    }
    assert!(
        interrupted >= 14,
        "only {interrupted} runs were interrupted"
    );
}

/// Failover and failback of one environment share their lock, so one waits for (or is refused
/// by) the other, and another environment's are independent.
#[test]
fn failover_and_failback_of_an_environment_share_one_lock() {
    let registry = drflow_steps::registry(&CloudConfig::default());
    let key = |runbook: &str, params: &str| {
        let source = std::fs::read_to_string(repo(runbook)).unwrap();
        let rb = compile(runbook, &source, &registry).unwrap();
        let path = format!("runbooks/params/{params}");
        let text = std::fs::read_to_string(repo(&path)).unwrap();
        let values = resolve_params(&rb, Some((&path, &text)), &[]).unwrap();
        let scope = drflow_engine::Scope::new("r", drflow_engine::now(), &values).context(0.0);
        rb.lock.as_ref().expect("a lock").eval(&scope).unwrap()
    };
    assert_eq!(key("runbooks/failover.yaml", "eu.yaml"), "failover-prod-eu");
    assert_eq!(key("runbooks/failback.yaml", "eu.yaml"), "failover-prod-eu");
    assert_eq!(
        key("runbooks/failover.yaml", "us-east.yaml"),
        "failover-prod-us"
    );
    assert_eq!(
        key("runbooks/failback.yaml", "us-east.yaml"),
        "failover-prod-us"
    );
}

impl Env {
    /// `runbooks/failover.yaml` through the library runner as `drflow run` runs it: journal and
    /// lock under this state directory, the sim on the run's virtual clock (a paused runtime)
    /// and saved at each checkpoint. A hook that blocks pauses the run there: call this on a
    /// thread of its own then.
    fn failover_on_runner(&self, run_id: &str, hooks: Hooks) -> Result<RunOutcome, RunnerError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap();
        let config = CloudConfig::sim(self.state());
        let clock: SharedClock = {
            // Made inside the runtime, so that it counts the runtime's paused time.
            let _inside = runtime.enter();
            Arc::new(VirtualClock::new(config.virtual_clock_ms().unwrap()))
        };
        let sim: Arc<dyn CloudBackend> =
            Arc::new(SimBackend::open(self.state()).with_clock(Arc::clone(&clock)));
        let lazy = Arc::new(LazyBackend::from_backend(config, sim));
        let registry = drflow_steps::registry_with_backend(Arc::clone(&lazy));
        let rb = compile_file(&repo("runbooks/failover.yaml"), &registry)
            .unwrap_or_else(|e| panic!("{}", e.message()));
        let path = format!("runbooks/params/{}", self.params);
        let text = std::fs::read_to_string(repo(&path)).unwrap();
        let params =
            resolve_params(&rb, Some((&path, &text)), &[]).unwrap_or_else(|d| panic!("{d:?}"));
        let mut options = RunnerOptions::new(self.state());
        options.clock = Arc::clone(&clock);
        options.hooks = hooks;
        options.checkpoint = Some(Arc::new(move || {
            lazy.checkpoint().map_err(|e| e.to_string())
        }));
        let runner = Runner::new(options);
        runtime.block_on(async {
            let session = runner
                .start(&rb, &params, run_id, StartOptions::default())
                .await?;
            let mut run = RunOptions::new(run_id);
            run.clock = clock;
            run.redacted_params = drflow_engine::runner::redacted_params(&rb, &params);
            let (_tx, stop) = tokio::sync::watch::channel(Stop::No);
            session
                .run(&rb, &params, run, &mut Recorder::default(), stop)
                .await
        })
    }

    /// `drflow --state-dir <this state dir> ARGS`, from the repository root.
    fn drflow(&self, args: &[&str]) -> std::process::Command {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_drflow"));
        cmd.current_dir(repo(""))
            .env("DRFLOW_LOG", "warn")
            .env_remove("DRFLOW_TARGET")
            .env_remove("DRFLOW_STATE_DIR")
            .arg("--state-dir")
            .arg(self.state())
            .args(args)
            .stdin(std::process::Stdio::null());
        cmd
    }
}

/// Hooks that pause a run once `decide` has succeeded (journaled, the world saved), before it
/// acts: they send the decision, then wait until the returned sender says go (or is dropped).
fn pause_after_decide() -> (Hooks, mpsc::Receiver<Value>, mpsc::Sender<()>) {
    let (reached_tx, reached) = mpsc::channel();
    let (go, go_rx) = mpsc::channel::<()>();
    let go_rx = Mutex::new(go_rx);
    let hooks = Hooks::new(move |p| {
        if let HookPoint::AfterRecord(RunEvent::StepSucceeded { step, outputs, .. }) = p
            && step == "decide"
        {
            let decision = outputs.get("decision").cloned().unwrap_or(Value::Null);
            let _ = reached_tx.send(decision);
            let _ = go_rx.lock().unwrap().recv();
        }
        HookAction::Continue
    });
    (hooks, reached, go)
}

/// Two failovers of one environment at once. The first (in-process, through the library
/// runner) is paused once it has decided to fail over and before it acts, holding the lock
/// `failover-prod-eu`. A second `drflow run runbooks/failover.yaml` on the same state directory
/// is refused with the lock-held error (exit 2) and changes nothing; with `--wait-lock` it
/// waits, runs once the first is done, and finds the standby already serving. One promotion
/// in all, by the sim's own account. Without the lock, the second would run to its end while
/// the first is paused (and fail over itself), and this test would fail.
#[test]
fn two_failovers_at_once_one_is_refused_or_waits_and_only_one_promotes() {
    let env = Arc::new(Env::provisioned("eu.yaml"));
    let (primary, standby) = (env.param("primary_region"), env.param("standby_region"));
    let suffix = env.param("env_suffix");
    let key = format!("the lock `failover-{suffix}`");
    env.inject(FaultKind::RegionOutage, None);
    env.advance(Duration::from_secs(45));

    let (hooks, reached, go) = pause_after_decide();
    let first = {
        let env = Arc::clone(&env);
        std::thread::spawn(move || env.failover_on_runner("first-failover", hooks))
    };
    let decision = reached
        .recv_timeout(Duration::from_secs(120))
        .expect("the first failover never decided");
    assert_eq!(decision, "failover");
    let told_before = env.sim().published().unwrap().len();

    // At once, without waiting: refused, nothing done.
    let params = ["--params-file", "runbooks/params/eu.yaml"];
    let refused = env
        .drflow(&[&["run", "runbooks/failover.yaml"], &params[..]].concat())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("{key} is held by run first-failover")),
        "{stderr}"
    );
    let status = env.status();
    assert_eq!(writer(&status), primary, "nothing promoted yet");
    // Route 53 answers with the standby already (the primary's check failed, the standby's
    // passes), but no record was changed yet.
    assert_eq!(serving(&status), vec![standby.clone()]);
    assert!(env.sim().timeline(0).unwrap().dns_changes.is_empty());
    assert_eq!(
        env.sim().published().unwrap().len(),
        told_before,
        "the refused run told no one"
    );

    // With --wait-lock: it waits for the first.
    let mut waiting = env
        .drflow(
            &[
                &["run", "runbooks/failover.yaml", "--wait-lock"],
                &params[..],
                &["--output", "json"],
            ]
            .concat(),
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let lines = {
        let stderr = waiting.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        rx
    };
    let mut seen = Vec::new();
    loop {
        match lines.recv_timeout(Duration::from_secs(120)) {
            Ok(line) => {
                let waits =
                    line.contains(&format!("waiting for {key}")) && line.contains("first-failover");
                seen.push(line);
                if waits {
                    break;
                }
            }
            Err(e) => panic!("the second run did not wait ({e}):\n{}", seen.join("\n")),
        }
    }
    assert_eq!(
        writer(&env.status()),
        primary,
        "the waiting run did nothing"
    );

    // The first goes on and fails over; then the second runs and finds nothing to do.
    go.send(()).unwrap();
    let first = first.join().unwrap().expect("the first failover runs");
    let d = describe(&first.report);
    assert_eq!(first.report.status, RunStatus::Succeeded, "{d}");
    assert_eq!(out(&first.report, "decision"), "failover", "{d}");
    assert_eq!(
        step(&first.report, "promote").status,
        drflow_engine::StepStatus::Succeeded,
        "{d}"
    );
    let second = waiting.wait_with_output().unwrap();
    seen.extend(lines.iter());
    assert!(second.status.success(), "{}", seen.join("\n"));
    let report: Value = serde_json::from_slice(&second.stdout).unwrap();
    assert_eq!(report["outputs"]["decision"], "none", "{report:#}");
    assert_eq!(report["outputs"]["actions"], json!([]), "{report:#}");
    assert!(
        report["outputs"]["summary"]
            .as_str()
            .unwrap()
            .contains("already serves"),
        "{report:#}"
    );
    let promote = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "promote")
        .unwrap();
    assert_eq!(promote["status"], "skipped", "{report:#}");

    // The world: the standby writes and serves, promoted once.
    let status = env.status();
    assert_eq!(writer(&status), standby);
    assert_eq!(serving(&status), vec![standby.clone()]);
    assert_eq!(
        out(&first.report, "lost_writes"),
        &json!(lost_writes(&status))
    );
    let world = env.sim().snapshot().unwrap();
    let db = world.aurora.values().next().expect("a global database");
    assert!(db.lost.len() <= 1, "two managed failovers: {:?}", db.lost);
    let told = env.sim().published().unwrap();
    let ended = |decision: &str| {
        let subject = format!("drflow: failover of {suffix}: {decision}");
        let mut topics: Vec<&str> = told
            .iter()
            .filter(|m| m.subject == subject)
            .map(|m| m.topic_arn.as_str())
            .collect();
        let all = topics.len();
        topics.sort_unstable();
        topics.dedup();
        assert_eq!(topics.len(), all, "`{subject}` twice to one topic");
        all
    };
    assert!(ended("failover") > 0, "{told:?}");
    assert_eq!(ended("failover"), ended("none"), "{told:?}");
}

/// `drflow run runbooks/failover.yaml` as a person runs it, after `drflow run
/// runbooks/provision.yaml`, with the fault injected into the same state directory.
#[test]
fn the_binary_fails_over_a_region_outage() {
    let dir = tempfile::tempdir().unwrap();
    let drflow = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_drflow"))
            .current_dir(repo(""))
            .env("DRFLOW_LOG", "warn")
            .env_remove("DRFLOW_TARGET")
            .arg("--state-dir")
            .arg(dir.path())
            .args(args)
            .output()
            .unwrap()
    };
    let params = ["--params-file", "runbooks/params/eu.yaml"];
    let provision = drflow(&[&["run", "runbooks/provision.yaml"], &params[..]].concat());
    assert!(
        provision.status.success(),
        "{}",
        String::from_utf8_lossy(&provision.stderr)
    );
    let sim = SimBackend::open(dir.path());
    sim.advance(Duration::from_secs(600)).unwrap();
    sim.inject(Fault {
        kind: FaultKind::RegionOutage,
        region: None,
        az: None,
        at_ms: None,
        for_ms: None,
    })
    .unwrap();
    sim.advance(Duration::from_secs(45)).unwrap();
    drop(sim);
    let run = drflow(
        &[
            &["run", "runbooks/failover.yaml"],
            &params[..],
            &["--output", "json"],
        ]
        .concat(),
    );
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    let report: Value = serde_json::from_slice(&run.stdout).unwrap();
    let outputs = &report["outputs"];
    assert_eq!(outputs["decision"], "failover", "{report:#}");
    assert!(outputs["lost_writes"].as_u64().is_some(), "{report:#}");
    assert!(
        outputs["rto_seconds"].as_f64().unwrap() < 300.0,
        "{report:#}"
    );
    let status = SimBackend::open(dir.path()).status().unwrap();
    assert_eq!(writer(&status), "eu-central-1");
    assert_eq!(serving(&status), vec!["eu-central-1".to_string()]);
    assert_eq!(outputs["lost_writes"], json!(lost_writes(&status)));
    // And a second run says the standby already serves.
    let again = drflow(
        &[
            &["run", "runbooks/failover.yaml"],
            &params[..],
            &["--output", "json"],
        ]
        .concat(),
    );
    let report: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(report["outputs"]["decision"], "none", "{report:#}");
    assert_eq!(report["outputs"]["actions"], json!([]), "{report:#}");
}

/// An emulator whose health checks never fail can be driven by alarms alone: `signals:
/// [alarms]`, `quorum: 1`. The health check alarm needs three 1-minute periods, so it fires
/// minutes after the outage. (With `us-east.yaml` the alarms live in the primary region itself,
/// us-east-1, where Route 53 publishes: an outage there leaves them unreadable, so this is the
/// `eu.yaml` layout.)
#[test]
fn alarms_alone_can_drive_a_failover() {
    let env = Env::provisioned("eu.yaml");
    env.inject(FaultKind::RegionOutage, None);
    let flags = [("signals", "[alarms]"), ("quorum", "1")];
    // Read for 90 s from the outage: the alarm needs minutes.
    let early = env.failover(&[&flags[..], &[("detection_timeout", "30s")]].concat());
    assert_eq!(out(&early, "decision"), "hold", "{}", describe(&early));
    env.advance(Duration::from_secs(300));
    let report = env.failover(&flags);
    let d = format!(
        "{}\n{:#}",
        describe(&report),
        step_out(&report, "signals")["detail"]
    );
    assert_eq!(report.status, RunStatus::Succeeded, "{d}");
    assert_eq!(out(&report, "decision"), "failover", "{d}");
    assert_eq!(
        step_out(&report, "signals")["health_check_down"],
        Value::Null,
        "not read"
    );
    assert_eq!(writer(&env.status()), env.param("standby_region"));
}

/// What `drflow drill` plays, without the drill: for a scenario, the synthetic client running,
/// the scenario's faults injected, virtual time advanced until the composite
/// `regional-outage-alarm` goes to ALARM (what the daemon's trigger waits for) or the
/// scenario's horizon passes, then `runbooks/failover.yaml` run at once. Returns the decision
/// (`none` when the alarm never fired), the run's report if there was one, and the alarm's
/// time.
fn play(env: &Env, scenario: Scenario) -> (String, Option<RunReport>, Option<u64>) {
    let sim = env.sim();
    let host = format!("api.{}", env.param("domain_name"));
    sim.start_client(ClientConfig {
        host,
        interval_ms: 1000,
    })
    .unwrap();
    sim.advance(Duration::from_secs(10)).unwrap();
    let status = sim.status().unwrap();
    let at = status.now_ms;
    for f in scenario.faults(&status, at) {
        sim.inject(f).unwrap();
    }
    let fired = loop {
        sim.advance(Duration::from_secs(10)).unwrap();
        let t = sim.timeline(at).unwrap();
        let alarm = t
            .alarms
            .iter()
            .find(|a| a.name.starts_with("regional-outage-alarm-") && a.to == "ALARM")
            .map(|a| a.at_ms);
        if alarm.is_some() || sim.now_ms().unwrap() >= at + scenario.horizon_ms() {
            break alarm;
        }
    };
    if std::env::var_os("SHOW").is_some() {
        eprintln!(
            "{}",
            drflow_steps::sim::render_status(&sim.status().unwrap())
        );
        let t = sim.timeline(at).unwrap();
        for r in t.client.iter().step_by(10) {
            eprintln!(
                "{} {:?} {} {:?}",
                (r.at_ms - at) / 1000,
                r.region,
                r.ok,
                r.error
            );
        }
    }
    drop(sim);
    match fired {
        None => ("none".into(), None, None),
        Some(alarm) => {
            let report = env.failover(&[]);
            let decision = out(&report, "decision").as_str().unwrap_or("").to_string();
            (decision, Some(report), Some(alarm - at))
        }
    }
}

/// Plays `scenario` on a fresh environment and checks the decision is one the scenario
/// expects; for a promotion, that the client is then served by the standby and that the
/// writes the run says were lost are exactly the acknowledged client writes the new writer
/// lacks.
fn check_scenario(params: &'static str, scenario: Scenario) -> Option<RunReport> {
    let env = Env::provisioned(params);
    let (decision, report, alarm) = play(&env, scenario);
    let d = report.as_ref().map(describe).unwrap_or_default();
    if std::env::var_os("SHOW").is_some() {
        let rto = report.as_ref().map(|r| out(r, "rto_seconds").clone());
        eprintln!(
            "{params} {scenario}: decision {decision}, alarm after {:?} s, rto_seconds {rto:?}",
            alarm.map(|a| a / 1000)
        );
    }
    assert!(
        scenario.expected().contains(&decision.as_str()),
        "{params} {scenario}: decision {decision}, expected {:?}\n{d}",
        scenario.expected()
    );
    let sim = env.sim();
    // The RTO as the client sees it: its first failed write to its first acknowledged one
    // after that (served by the standby after a promotion, by the primary otherwise).
    sim.advance(Duration::from_secs(120)).unwrap();
    let t = sim.timeline(0).unwrap();
    if let Some(first_failed) = t.client.iter().find(|r| !r.ok) {
        let recovered = t
            .client
            .iter()
            .find(|r| r.ok && r.at_ms > first_failed.at_ms)
            .unwrap_or_else(|| panic!("{params} {scenario}: the client never recovered\n{d}"));
        let rto = (recovered.at_ms - first_failed.at_ms) / 1000;
        if std::env::var_os("SHOW").is_some() {
            eprintln!("{params} {scenario}: client RTO {rto} s");
            let at = first_failed.at_ms;
            let rel = |t: u64| (t as f64 - at as f64) / 1000.0;
            for p in &t.promotions {
                eprintln!(
                    "  promotion {} requested {} done {:?}",
                    p.kind,
                    rel(p.requested_at_ms),
                    p.done_at_ms.map(rel)
                );
            }
            for c in &t.capacity {
                eprintln!(
                    "  capacity {} requested {} ready {:?}",
                    c.desired,
                    rel(c.requested_at_ms),
                    c.ready_at_ms.map(rel)
                );
            }
            for c in &t.dns_changes {
                eprintln!(
                    "  dns {} submitted {} insync {}",
                    c.records,
                    rel(c.submitted_at_ms),
                    rel(c.insync_at_ms)
                );
            }
            for f in &t.fences {
                eprintln!("  fence {} {}", f.how, rel(f.at_ms));
            }
            eprintln!(
                "  recovered via {:?}; before: {:?}",
                recovered.region,
                t.client
                    .iter()
                    .rev()
                    .find(|r| !r.ok && r.at_ms < recovered.at_ms)
            );
        }
        assert!(rto < 300, "{params} {scenario}: client RTO {rto} s\n{d}");
    }
    if matches!(decision.as_str(), "failover" | "switchover") {
        let report = report.as_ref().unwrap();
        let standby = env.param("standby_region");
        let last = t.client.last().unwrap();
        assert!(last.ok, "{params} {scenario}: {last:?}\n{d}");
        assert_eq!(last.writer_region.as_deref(), Some(standby.as_str()));
        assert_eq!(
            out(report, "lost_writes"),
            &json!(t.writes.lost.len()),
            "{params} {scenario}: {d}"
        );
        if decision == "switchover" {
            assert!(t.writes.lost.is_empty());
        }
        // The run's own RTO ends when DNS answers with the standby, which waits for the
        // standby's scaling: under capacity-short, for `capacity_wait` (4m).
        let rto = out(report, "rto_seconds").as_f64().unwrap();
        if scenario != Scenario::CapacityShort {
            assert!(
                rto > 0.0 && rto < 300.0,
                "{params} {scenario}: RTO {rto}\n{d}"
            );
        }
    } else {
        // Nothing promoted, nothing lost; the writer is where it was.
        let status = sim.status().unwrap();
        assert_eq!(writer(&status), env.param("primary_region"), "{d}");
        assert!(sim.timeline(0).unwrap().writes.lost.is_empty(), "{d}");
    }
    report
}

#[test]
fn scenario_region_outage_fails_over() {
    let report = check_scenario("eu.yaml", Scenario::RegionOutage).unwrap();
    // Started by the alarm minutes into the outage, the run confirms on its first reading.
    let signals = step_out(&report, "signals");
    assert_eq!(signals["readings"], 1, "{signals:#?}");
    assert_eq!(signals["health_check_down"], true);
    assert_eq!(signals["alarms_down"], true);
}

#[test]
fn scenario_db_failure_fails_over() {
    check_scenario("eu.yaml", Scenario::DbFailure);
    check_scenario("us-east.yaml", Scenario::DbFailure);
}

#[test]
fn scenario_az_loss_does_not_fail_over() {
    check_scenario("eu.yaml", Scenario::AzLoss);
}

#[test]
fn scenario_app_unhealthy_switches_over() {
    check_scenario("eu.yaml", Scenario::AppUnhealthy);
    check_scenario("us-east.yaml", Scenario::AppUnhealthy);
}

#[test]
fn scenario_flapping_does_not_fail_over() {
    check_scenario("eu.yaml", Scenario::Flapping);
    check_scenario("us-east.yaml", Scenario::Flapping);
}

#[test]
fn scenario_lag_spike_is_blocked() {
    let report = check_scenario("eu.yaml", Scenario::LagSpike).unwrap();
    assert_eq!(report.status, RunStatus::Failed, "{}", describe(&report));
}

#[test]
fn scenario_partition_does_not_fail_over() {
    check_scenario("eu.yaml", Scenario::Partition);
    check_scenario("us-east.yaml", Scenario::Partition);
}

#[test]
fn scenario_capacity_short_fails_over_with_a_shortfall() {
    let report = check_scenario("eu.yaml", Scenario::CapacityShort).unwrap();
    let shortfall = out(&report, "capacity_shortfall").as_u64().unwrap();
    assert!(shortfall > 0, "{}", describe(&report));
}
