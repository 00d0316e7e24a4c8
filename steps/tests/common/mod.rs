//! Test harness: a fresh simulated cloud in a temporary state directory, and the shipped
//! runbooks run on it through the engine.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use drflow_engine::{Outputs, Recorder, Registry, RunOptions, RunReport, RunStatus, Stop};
use drflow_steps::backend::{GLOBAL, Kind, Resource};
use drflow_steps::sim::World;
use drflow_steps::{CloudConfig, LazyBackend, SimBackend, registry_with_backend};
use serde_json::Value;

/// The run id of [`Cloud::run`] and its variants.
pub const RUN_ID: &str = "test-run";

/// A simulated cloud of its own.
pub struct Cloud {
    // Dropped in this order: the sim saves its world into `dir` when it goes.
    pub sim: Arc<SimBackend>,
    pub registry: Registry,
    pub dir: tempfile::TempDir,
}

impl Cloud {
    pub fn new() -> Cloud {
        let dir = tempfile::tempdir().expect("temp dir");
        let sim = Arc::new(SimBackend::open(dir.path()));
        Cloud::with_backend(dir, sim)
    }

    /// A cloud on `sim` (a scratch world, or one on a clock); `dir` is only its label.
    pub fn with_backend(dir: tempfile::TempDir, sim: Arc<SimBackend>) -> Cloud {
        let lazy = LazyBackend::from_backend(CloudConfig::sim(dir.path()), sim.clone());
        let registry = registry_with_backend(Arc::new(lazy));
        Cloud { dir, sim, registry }
    }

    /// Runs a shipped runbook with a shipped parameter file; panics unless it succeeds.
    pub async fn run(&self, runbook: &str, params_file: &str) -> RunReport {
        let report = self.try_run(runbook, params_file).await;
        assert_eq!(
            report.status,
            RunStatus::Succeeded,
            "{runbook} with {params_file} failed: {:#?}",
            report
                .steps
                .iter()
                .filter(|s| s.error.is_some())
                .map(|s| (&s.id, &s.error))
                .collect::<Vec<_>>()
        );
        report
    }

    pub async fn try_run(&self, runbook: &str, params_file: &str) -> RunReport {
        self.try_run_with(runbook, params_file, &[]).await
    }

    /// Runs a shipped runbook with a shipped parameter file and `-p name=value` overrides;
    /// panics unless it succeeds.
    pub async fn run_with(
        &self,
        runbook: &str,
        params_file: &str,
        overrides: &[(&str, &str)],
    ) -> RunReport {
        let report = self.try_run_with(runbook, params_file, overrides).await;
        assert_eq!(
            report.status,
            RunStatus::Succeeded,
            "{runbook} with {params_file} and {overrides:?} failed: {:#?}",
            report
                .steps
                .iter()
                .filter(|s| s.error.is_some())
                .map(|s| (&s.id, &s.error))
                .collect::<Vec<_>>()
        );
        report
    }

    pub async fn try_run_with(
        &self,
        runbook: &str,
        params_file: &str,
        overrides: &[(&str, &str)],
    ) -> RunReport {
        self.try_run_as(RUN_ID, runbook, params_file, overrides)
            .await
    }

    /// Runs a shipped runbook as run `run_id`; panics unless it succeeds.
    pub async fn run_as(&self, run_id: &str, runbook: &str, params_file: &str) -> RunReport {
        let report = self.try_run_as(run_id, runbook, params_file, &[]).await;
        assert_eq!(report.status, RunStatus::Succeeded, "{run_id}: {report:#?}");
        report
    }

    /// Undoes every step of `report` (run `run_id`) that has an undo, in reverse order of
    /// completion, as `drflow rollback` would.
    pub async fn undo_all(&self, run_id: &str, report: &RunReport) {
        for step in report.steps.iter().rev() {
            let ty = self.registry.get(&step.uses).unwrap();
            if !ty.spec().has_undo {
                continue;
            }
            let mut ctx = drflow_engine::StepContext::detached(&step.id);
            ctx.run_id = run_id.into();
            ctx.previous_outputs = step.outputs.clone();
            ty.undo(&ctx, &Outputs::new())
                .await
                .unwrap_or_else(|e| panic!("undo {}: {e}", step.id));
        }
    }

    pub async fn try_run_as(
        &self,
        run_id: &str,
        runbook: &str,
        params_file: &str,
        overrides: &[(&str, &str)],
    ) -> RunReport {
        let path = repo().join("runbooks").join(runbook);
        let source = std::fs::read_to_string(&path).expect("runbook");
        let rb = drflow_engine::compile(&path.display().to_string(), &source, &self.registry)
            .unwrap_or_else(|d| panic!("{}", d.render(&[(path.to_str().unwrap(), &source)])));
        let params_path = repo().join("runbooks/params").join(params_file);
        let params_text = std::fs::read_to_string(&params_path).expect("params");
        let params = drflow_engine::resolve_params(
            &rb,
            Some((params_path.to_str().unwrap(), &params_text)),
            &overrides
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>(),
        )
        .expect("params resolve");
        let (_tx, rx) = tokio::sync::watch::channel(Stop::No);
        let mut sink = Recorder::default();
        drflow_engine::run(&rb, &params, RunOptions::new(run_id), &mut sink, rx)
            .await
            .expect("run")
    }

    pub fn world(&self) -> World {
        self.sim.snapshot().expect("world")
    }

    pub fn all(&self) -> Vec<Resource> {
        self.world()
            .all()
            .into_iter()
            .map(|r| r.resource.clone())
            .collect()
    }

    pub fn of(&self, region: &str, kind: Kind) -> Vec<Resource> {
        self.all()
            .into_iter()
            .filter(|r| r.region == region && r.kind == kind)
            .collect()
    }

    pub fn one(&self, region: &str, kind: Kind, name: &str) -> Resource {
        self.all()
            .into_iter()
            .find(|r| r.region == region && r.kind == kind && r.name == name)
            .unwrap_or_else(|| panic!("no {kind} {name} in {region}"))
    }

    pub fn global(&self, kind: Kind) -> Vec<Resource> {
        self.of(GLOBAL, kind)
    }
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The outputs of one step of a run.
pub fn outputs<'a>(report: &'a RunReport, step: &str) -> &'a Outputs {
    report
        .steps
        .iter()
        .find(|s| s.id == step)
        .and_then(|s| s.outputs.as_ref())
        .unwrap_or_else(|| panic!("step {step} has no outputs"))
}

/// `(step, change)` of every step that reports one and did not report `unchanged`.
pub fn changed(report: &RunReport) -> Vec<(String, String, Value)> {
    report
        .steps
        .iter()
        .filter_map(|s| {
            let o = s.outputs.as_ref()?;
            let c = o.get("change")?.as_str()?;
            (c != "unchanged").then(|| (s.id.clone(), c.to_string(), o["changes"].clone()))
        })
        .collect()
}

/// A spec value at a dotted path.
pub fn at<'a>(r: &'a Resource, path: &str) -> &'a Value {
    path.split('.')
        .try_fold(&r.spec, |v, k| match v {
            Value::Array(a) => k.parse::<usize>().ok().and_then(|i| a.get(i)),
            _ => v.get(k),
        })
        .unwrap_or(&Value::Null)
}

/// The eu environment (`runbooks/params/eu.yaml`: primary eu-south-1, standby eu-central-1)
/// provisioned and settled for ten minutes, so instances are in service, targets healthy and
/// writes flowing; built once per test binary, handed out as copies.
pub fn provisioned_eu() -> World {
    static WORLD: std::sync::OnceLock<World> = std::sync::OnceLock::new();
    WORLD
        .get_or_init(|| {
            // Its own thread: a test may already be inside a runtime.
            std::thread::spawn(|| {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    let sim = Arc::new(SimBackend::scratch(World::default()));
                    let cloud = Cloud::with_backend(tempfile::tempdir().unwrap(), sim.clone());
                    cloud.run("provision.yaml", "eu.yaml").await;
                    sim.advance(std::time::Duration::from_secs(600)).unwrap();
                    sim.snapshot().unwrap()
                })
            })
            .join()
            .unwrap()
        })
        .clone()
}
