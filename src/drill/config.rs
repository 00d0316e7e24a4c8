//! Where a drill's triggers and runbooks come from: `--config F`, else `./drflow.yaml`, else the
//! copy built into the binary with the shipped runbooks and parameter files, so that `drflow
//! drill` works from any directory.

use std::path::{Path, PathBuf};

use drflow_engine::triggers::TriggerConfig;

use crate::Failure;

/// The files built into the binary, by their path relative to the repository root.
const EMBEDDED: &[(&str, &str)] = &[
    ("drflow.yaml", include_str!("../../drflow.yaml")),
    (
        "runbooks/failover.yaml",
        include_str!("../../runbooks/failover.yaml"),
    ),
    (
        "runbooks/provision.yaml",
        include_str!("../../runbooks/provision.yaml"),
    ),
    (
        "runbooks/params/eu.yaml",
        include_str!("../../runbooks/params/eu.yaml"),
    ),
    (
        "runbooks/params/us-east.yaml",
        include_str!("../../runbooks/params/us-east.yaml"),
    ),
];

/// The triggers of a drill and where their files are read from.
#[derive(Debug)]
pub struct DrillConfig {
    /// The triggers.
    pub triggers: TriggerConfig,
    /// Whether it is the copy built into the binary (its runbooks are built in too).
    pub embedded: bool,
}

/// A file a drill reads: its name as shown in messages, and its text.
#[derive(Debug, Clone)]
pub struct File {
    /// Its path as given, or the built-in path (`runbooks/failover.yaml`).
    pub name: String,
    /// Its text.
    pub text: String,
}

impl DrillConfig {
    /// `--config F` when given (it must exist), else `./drflow.yaml` if there is one, else the
    /// built-in copy. Errors (exit 2): the file cannot be read, or it has problems (each located).
    pub fn load(given: Option<&Path>) -> Result<DrillConfig, Failure> {
        let path = match given {
            Some(p) => Some(p.to_path_buf()),
            None => Some(PathBuf::from("drflow.yaml")).filter(|p| p.is_file()),
        };
        let Some(path) = path else {
            let text = embedded("drflow.yaml").unwrap_or_default();
            let triggers = TriggerConfig::parse(text, Path::new("drflow.yaml"))
                .map_err(|d| Failure::diagnostics(d, &[("drflow.yaml", text)]))?;
            return Ok(DrillConfig {
                triggers,
                embedded: true,
            });
        };
        let text = crate::read(&path).map_err(|f| {
            Failure::invalid(format!(
                "{}  hint: --config names a drflow.yaml (see docs/triggers.md); without it the drill reads ./drflow.yaml, else its built-in copy\n",
                f.message
            ))
        })?;
        let name = path.display().to_string();
        let triggers = TriggerConfig::parse(&text, &path)
            .map_err(|d| Failure::diagnostics(d, &[(name.as_str(), text.as_str())]))?;
        Ok(DrillConfig {
            triggers,
            embedded: false,
        })
    }

    /// Reads a file the configuration names (a runbook, a parameter file): from the disk, or
    /// built in when the configuration is. Errors: it cannot be read (exit 2).
    pub fn read(&self, path: &Path) -> Result<File, Failure> {
        if self.embedded {
            let key = path.to_string_lossy().replace('\\', "/");
            let key = key.trim_start_matches("./");
            return embedded(key)
                .map(|text| File {
                    name: key.to_string(),
                    text: text.to_string(),
                })
                .ok_or_else(|| {
                    Failure::invalid(format!(
                        "error: the built-in drflow.yaml names {key}, which is not built in\n  hint: pass --config with a drflow.yaml whose runbooks are on the disk\n"
                    ))
                });
        }
        Ok(File {
            name: path.display().to_string(),
            text: crate::read(path)?,
        })
    }

    /// The provision runbook: `provision.yaml` beside the trigger's runbook when there is one,
    /// else the built-in copy.
    pub fn provision(&self, failover_runbook: &Path) -> Result<File, Failure> {
        if !self.embedded {
            let beside = failover_runbook.with_file_name("provision.yaml");
            if beside.is_file() {
                return self.read(&beside);
            }
        }
        Ok(File {
            name: "runbooks/provision.yaml".into(),
            text: embedded("runbooks/provision.yaml")
                .unwrap_or_default()
                .to_string(),
        })
    }
}

/// The environment a drill provisions when the trigger names no `params_file`: the built-in
/// `runbooks/params/eu.yaml` (primary eu-south-1, standby eu-central-1, the health check alarms
/// in us-east-1). With the us-east layout the alarms live in the primary region itself, so a
/// region outage silences the very alarms `primary-down` listens to; there `primary-unreachable`,
/// fed by drflow's probe from the standby, starts the failover (`--params-file
/// runbooks/params/us-east.yaml`, docs/triggers.md).
pub fn default_params() -> (String, String) {
    (
        DEFAULT_PARAMS.to_string(),
        embedded(DEFAULT_PARAMS).unwrap_or_default().to_string(),
    )
}

/// The built-in parameter file of [`default_params`].
pub const DEFAULT_PARAMS: &str = "runbooks/params/eu.yaml";

/// A built-in file's text.
fn embedded(path: &str) -> Option<&'static str> {
    EMBEDDED.iter().find(|(p, _)| *p == path).map(|(_, t)| *t)
}
