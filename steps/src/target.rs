//! Which cloud the step library talks to, and where it keeps local state.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, OnceLock};

use crate::backend::{CloudBackend, CloudError, ErrorKind};
use crate::sim::SimBackend;

/// The environment variable that picks the target when `--target` is not given.
pub const TARGET_ENV: &str = "DRFLOW_TARGET";
/// The environment variable that overrides the state directory.
pub const STATE_DIR_ENV: &str = "DRFLOW_STATE_DIR";
/// The state directory used when nothing overrides it, relative to the working directory.
pub const DEFAULT_STATE_DIR: &str = ".drflow";

/// The cloud a run provisions into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Target {
    /// The embedded simulated cloud, persisted under the state directory. The default, so that
    /// nothing reaches a real account unless asked.
    #[default]
    Sim,
    /// Real AWS (or an emulator behind `AWS_ENDPOINT_URL`), through the SDK.
    Aws,
}

impl Target {
    /// `sim` or `aws`.
    pub fn name(self) -> &'static str {
        match self {
            Target::Sim => "sim",
            Target::Aws => "aws",
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Target {
    type Err = String;

    fn from_str(s: &str) -> Result<Target, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "sim" => Ok(Target::Sim),
            "aws" => Ok(Target::Aws),
            other => Err(format!("unknown target {other:?}; use sim or aws")),
        }
    }
}

/// How the cloud steps reach their backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudConfig {
    /// The cloud to talk to.
    pub target: Target,
    /// Local state (the sim's world lives in `<state_dir>/sim/world.json`).
    pub state_dir: PathBuf,
    /// An endpoint override for the aws target (moto, LocalStack).
    pub endpoint_url: Option<String>,
    /// A named profile of `~/.aws/config` for the aws target (`--profile`); `None` leaves the
    /// choice to `aws-config` (`AWS_PROFILE`, else `default`).
    pub profile: Option<String>,
}

impl Default for CloudConfig {
    fn default() -> CloudConfig {
        CloudConfig {
            target: Target::Sim,
            state_dir: PathBuf::from(DEFAULT_STATE_DIR),
            endpoint_url: None,
            profile: None,
        }
    }
}

impl CloudConfig {
    /// The configuration the environment asks for: `DRFLOW_TARGET` (default `sim`),
    /// `DRFLOW_STATE_DIR` (default `.drflow`), `AWS_ENDPOINT_URL`.
    pub fn from_env() -> Result<CloudConfig, String> {
        let target = match std::env::var(TARGET_ENV) {
            Ok(v) if !v.trim().is_empty() => v.parse()?,
            _ => Target::Sim,
        };
        Ok(CloudConfig {
            target,
            state_dir: state_dir_from_env(),
            endpoint_url: std::env::var("AWS_ENDPOINT_URL")
                .ok()
                .filter(|v| !v.is_empty()),
            profile: None,
        })
    }

    /// The target's own clock, in milliseconds since the Unix epoch, for a target that keeps
    /// one: the sim's virtual clock, which its API calls and waits move instead of the wall
    /// clock (read from its world file, without locking: a run's start and end are enough).
    /// `None` for AWS, whose time is the wall clock, and when the sim's world cannot be read.
    /// The difference of two readings is how much cloud time a run took.
    pub fn virtual_clock_ms(&self) -> Option<u64> {
        match self.target {
            Target::Sim => crate::sim::load_world(&crate::sim::world_path(&self.state_dir))
                .ok()
                .map(|w| w.clock_ms),
            Target::Aws => None,
        }
    }

    /// A sim configuration with its state under `state_dir` (tests).
    pub fn sim(state_dir: impl AsRef<Path>) -> CloudConfig {
        CloudConfig {
            target: Target::Sim,
            state_dir: state_dir.as_ref().to_path_buf(),
            endpoint_url: None,
            profile: None,
        }
    }
}

/// `DRFLOW_STATE_DIR`, or `.drflow` in the working directory.
pub fn state_dir_from_env() -> PathBuf {
    match std::env::var_os(STATE_DIR_ENV) {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => PathBuf::from(DEFAULT_STATE_DIR),
    }
}

/// Opens the backend on first use, so that `drflow validate` and `drflow steps` never touch the
/// sim's world or look for credentials.
pub struct LazyBackend {
    config: CloudConfig,
    clock: Option<drflow_engine::SharedClock>,
    backend: OnceLock<Result<Arc<dyn CloudBackend>, CloudError>>,
    /// The aws backend's client factory, once opened: it records the API calls made.
    aws: OnceLock<crate::aws::Clients>,
}

impl fmt::Debug for LazyBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LazyBackend")
            .field("config", &self.config)
            .field("opened", &self.backend.get().is_some())
            .finish()
    }
}

impl LazyBackend {
    /// A backend that opens when first asked for.
    pub fn new(config: CloudConfig) -> LazyBackend {
        LazyBackend {
            config,
            clock: None,
            backend: OnceLock::new(),
            aws: OnceLock::new(),
        }
    }

    /// The same, on the run's clock: the sim's time is then the run's virtual time. Without a
    /// clock the sim's time stands where the world was saved (what `drflow sim` commands use).
    pub fn with_clock(mut self, clock: drflow_engine::SharedClock) -> LazyBackend {
        self.clock = Some(clock);
        self
    }

    /// Saves what the backend holds in memory, if anything (the sim's world). The runner calls
    /// it before each journal commit and at the end of a command, so the journal never records
    /// a step whose effects are not saved. A backend never opened has nothing to save.
    pub fn checkpoint(&self) -> Result<(), CloudError> {
        match self.backend.get() {
            Some(Ok(b)) => b.checkpoint(),
            _ => Ok(()),
        }
    }

    /// A backend that is already open (tests that share one sim between registries).
    pub fn from_backend(config: CloudConfig, backend: Arc<dyn CloudBackend>) -> LazyBackend {
        let lazy = LazyBackend::new(config);
        let _ = lazy.backend.set(Ok(backend));
        lazy
    }

    /// A backend that fails every step with `error` (a target that cannot serve the purpose).
    pub fn refusing(config: CloudConfig, error: CloudError) -> LazyBackend {
        let lazy = LazyBackend::new(config);
        let _ = lazy.backend.set(Err(error));
        lazy
    }

    /// Every AWS API call the backend made so far, in order; `None` when it is not an opened
    /// aws backend (the sim, or a command that never reached a cloud step).
    pub fn aws_calls(&self) -> Option<Vec<crate::aws::CallRecord>> {
        self.aws.get().map(crate::aws::Clients::calls)
    }

    /// The AWS client factory of an opened aws backend (for the daemon's queue reader, which
    /// shares its clients and call record); `None` on the sim or before the backend opened.
    pub fn aws_clients(&self) -> Option<crate::aws::Clients> {
        self.aws.get().cloned()
    }

    /// The configuration it opens with.
    pub fn config(&self) -> &CloudConfig {
        &self.config
    }

    /// The backend, opening it if this is the first call.
    pub fn get(&self) -> Result<Arc<dyn CloudBackend>, CloudError> {
        self.backend
            .get_or_init(|| open(&self.config, self.clock.clone(), &self.aws))
            .as_ref()
            .map(Arc::clone)
            .map_err(Clone::clone)
    }
}

/// Why `target` cannot be used in this build, if it cannot: both targets are built.
pub fn unavailable(target: Target) -> Option<&'static str> {
    match target {
        Target::Sim | Target::Aws => None,
    }
}

fn open(
    config: &CloudConfig,
    clock: Option<drflow_engine::SharedClock>,
    aws_clients: &OnceLock<crate::aws::Clients>,
) -> Result<Arc<dyn CloudBackend>, CloudError> {
    if let Some(why) = unavailable(config.target) {
        return Err(CloudError::new(ErrorKind::NotBuilt, why));
    }
    if config.target == Target::Aws {
        // Its time is the wall clock; its waits sleep on the run's clock (tokio's).
        let aws = crate::aws::AwsBackend::new(crate::aws::AwsSettings {
            endpoint_url: config.endpoint_url.clone(),
            profile: config.profile.clone(),
            static_keys: None,
        });
        let _ = aws_clients.set(aws.clients().clone());
        return Ok(Arc::new(aws));
    }
    let sim = SimBackend::open(&config.state_dir);
    Ok(Arc::new(match clock {
        Some(clock) => sim.with_clock(clock),
        None => sim,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_targets() {
        assert_eq!("sim".parse::<Target>(), Ok(Target::Sim));
        assert_eq!(" AWS ".parse::<Target>(), Ok(Target::Aws));
        assert!("gcp".parse::<Target>().unwrap_err().contains("sim or aws"));
    }

    #[test]
    fn the_sim_has_a_virtual_clock_and_aws_has_none() {
        let dir = tempfile::tempdir().unwrap();
        let config = CloudConfig::sim(dir.path());
        // A fresh world starts at the sim's epoch.
        assert_eq!(config.virtual_clock_ms(), Some(crate::sim::EPOCH_MS));
        let sim = SimBackend::open(dir.path());
        sim.mutate(|w| w.advance(std::time::Duration::from_secs(90)))
            .unwrap();
        assert_eq!(
            config.virtual_clock_ms(),
            Some(crate::sim::EPOCH_MS + 90_000)
        );
        let aws = CloudConfig {
            target: Target::Aws,
            ..config
        };
        assert_eq!(aws.virtual_clock_ms(), None);
    }
}
