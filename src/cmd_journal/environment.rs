//! Which environment a run belongs to, and picking one on the command line.
//!
//! An environment is named by the parameters every cloud step is built from: `env_suffix` (it
//! ends every resource name, and destroy selects by it) and the two regions. drflow reads them
//! from the parameters a run journaled when it started, so any runbook that declares them is
//! placed in its environment; a runbook without them (the engine's examples) belongs to none.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use drflow_engine::{Diagnostic, Diagnostics, Pos};
use serde_json::{Value, json};

use crate::{Failure, read};

/// The parameters that name an environment, in the order they are shown.
pub(super) const KEYS: [&str; 3] = ["env_suffix", "primary_region", "standby_region"];

/// A run's environment: what its journaled parameters say, each part absent when the runbook
/// does not declare it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Environment {
    /// `env_suffix`.
    pub suffix: Option<String>,
    /// `primary_region`.
    pub primary: Option<String>,
    /// `standby_region`.
    pub standby: Option<String>,
}

impl Environment {
    /// The environment in a run's journaled parameters; `None` when they name none of [`KEYS`].
    pub fn of(params: &Value) -> Option<Environment> {
        let get = |k: &str| params.get(k).map(text);
        let env = Environment {
            suffix: get(KEYS[0]),
            primary: get(KEYS[1]),
            standby: get(KEYS[2]),
        };
        (env.suffix.is_some() || env.primary.is_some() || env.standby.is_some()).then_some(env)
    }

    /// `eu-south-1 → eu-central-1`, with `-` for a region the runbook does not declare.
    pub fn regions(&self) -> String {
        match (&self.primary, &self.standby) {
            (None, None) => "-".to_owned(),
            (p, s) => format!(
                "{} → {}",
                p.as_deref().unwrap_or("-"),
                s.as_deref().unwrap_or("-")
            ),
        }
    }

    /// The suffix, or `-`.
    pub fn suffix(&self) -> &str {
        self.suffix.as_deref().unwrap_or("-")
    }

    /// `{"env_suffix": …, "primary_region": …, "standby_region": …}` (null where absent).
    pub fn json(&self) -> Value {
        json!({
            KEYS[0]: self.suffix,
            KEYS[1]: self.primary,
            KEYS[2]: self.standby,
        })
    }
}

impl fmt::Display for Environment {
    /// `prod-eu (eu-south-1 → eu-central-1)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.primary, &self.standby) {
            (None, None) => f.write_str(self.suffix()),
            _ => write!(f, "{} ({})", self.suffix(), self.regions()),
        }
    }
}

/// A parameter value as text: strings as they are, anything else as JSON (`2`, `true`).
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Which environment the user asked for with `-p` and `--params-file`: the [`KEYS`] they give,
/// each with where it was given.
#[derive(Debug, Default)]
pub(super) struct Selector {
    wanted: Vec<(&'static str, String)>,
}

impl Selector {
    /// Reads `-p name=value` flags and a parameter file (the files `drflow run` takes; their
    /// other parameters are ignored, since they do not name the environment). Flags override the
    /// file.
    ///
    /// # Errors
    /// Exit 2 for a flag not of the form NAME=VALUE or naming another parameter, an unreadable
    /// or malformed file, or a file that names no environment.
    pub fn from_args(flags: &[String], file: Option<&Path>) -> Result<Selector, Failure> {
        let mut wanted: Vec<(&'static str, String)> = Vec::new();
        if let Some(path) = file {
            let source = read(path)?;
            let name: Arc<str> = Arc::from(path.display().to_string().as_str());
            let render = |d: Diagnostic| {
                Failure::diagnostics(Diagnostics(vec![d]), &[(&*name, source.as_str())])
            };
            let root = drflow_engine::parse_yaml(&name, &source).map_err(render)?;
            let Some(entries) = root.as_map() else {
                return Err(render(
                    Diagnostic::new(
                        name.clone(),
                        root.pos,
                        "a parameter file must be a map of names to values",
                    )
                    .with_hint("give the file `drflow run` took, e.g. runbooks/params/eu.yaml"),
                ));
            };
            for (k, v) in entries {
                if let Some(key) = KEYS.iter().find(|key| k.as_str() == Some(key)) {
                    wanted.push((key, text(&v.to_value())));
                }
            }
            if wanted.is_empty() {
                return Err(render(
                    Diagnostic::new(
                        name.clone(),
                        root.pos,
                        format!(
                            "this file names no environment (none of {})",
                            KEYS.join(", ")
                        ),
                    )
                    .with_hint("give the parameter file the environment was provisioned with"),
                ));
            }
        }
        for (i, (name, value)) in crate::parse_flags(flags)?.into_iter().enumerate() {
            let Some(key) = KEYS.iter().find(|k| **k == name) else {
                let d = Diagnostic::new(
                    Arc::from(format!("command line, -p flag {}", i + 1).as_str()),
                    Pos::new(0, 0),
                    format!("`-p {name}=…` does not name an environment"),
                )
                .with_hint(format!(
                    "`drflow outputs` picks an environment by {}, e.g. `-p env_suffix=prod-eu`",
                    KEYS.join(", ")
                ));
                return Err(Failure::diagnostics(Diagnostics(vec![d]), &[]));
            };
            wanted.retain(|(k, _)| k != key);
            wanted.push((key, value));
        }
        Ok(Selector { wanted })
    }

    /// Whether nothing was asked for.
    pub fn is_empty(&self) -> bool {
        self.wanted.is_empty()
    }

    /// Whether a run with these journaled parameters belongs to the environment asked for.
    pub fn matches(&self, params: &Value) -> bool {
        self.wanted
            .iter()
            .all(|(k, v)| params.get(*k).map(text).as_deref() == Some(v.as_str()))
    }
}

impl fmt::Display for Selector {
    /// `env_suffix=prod-eu primary_region=eu-south-1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .wanted
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        f.write_str(&parts.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_environment_from_journaled_params() {
        let env = Environment::of(&json!({
            "env_suffix": "prod-eu",
            "primary_region": "eu-south-1",
            "standby_region": "eu-central-1",
            "public_subnets": 2,
        }))
        .unwrap();
        assert_eq!(env.to_string(), "prod-eu (eu-south-1 → eu-central-1)");
        assert_eq!(
            Environment::of(&json!({"env_suffix": "x"}))
                .unwrap()
                .to_string(),
            "x"
        );
        assert_eq!(Environment::of(&json!({"out": "/tmp/o"})), None);
    }

    #[test]
    fn a_selector_matches_by_exact_value_not_by_suffix() {
        let sel = Selector {
            wanted: vec![("env_suffix", "eu".to_owned())],
        };
        assert!(sel.matches(&json!({"env_suffix": "eu"})));
        assert!(!sel.matches(&json!({"env_suffix": "prod-eu"})));
        assert!(!sel.matches(&json!({"other": "eu"})));
    }
}
