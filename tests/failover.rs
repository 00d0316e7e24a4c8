//! The failover and failback runbooks on the simulated cloud, one fault at a time, through the
//! library: provision into a temporary state directory, inject the fault through the sim's
//! faults API, let virtual time pass, run `runbooks/failover.yaml`, and check what it decided
//! and did against the sim's own account (`SimBackend::status`). Every run is on a paused
//! runtime with the sim on the run's virtual clock: minutes of simulated time, no sleeps.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use drflow_engine::{
    Outputs, Recorder, RunOptions, RunReport, RunStatus, SharedClock, Stop, VirtualClock, compile,
    resolve_params,
};
use drflow_steps::sim::{Fault, FaultKind, SimStatus};
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
