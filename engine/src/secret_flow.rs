//! Which values of a run are secret, decided from the runbook before it runs, the way Terraform
//! propagates `sensitive`:
//!
//! - an expression that reads a secret yields a secret. Secrets are the parameters declared
//!   `secret: true`, the secret outputs of earlier steps, and the environment variables that hold
//!   credentials ([`is_credential_env`]). What an expression reads is known from its text
//!   (`Expr::refs`); a name used whole is read whole: `params` (or `params[...]`) reads every
//!   parameter, `steps.<id>` and `steps.<id>.outputs` every output of that step, `steps` every
//!   step's outputs, `env` (or `env[...]`) any variable, so it is always secret;
//! - a step input (a `with:` entry) that holds such an expression is secret;
//! - a step's outputs are secret when one of its inputs is, unless its type declares that its
//!   outputs never carry an input's value ([`StepSpec::outputs_not_secret`]). A step whose
//!   outputs are its input (`core.set`) has exactly the outputs of its secret inputs secret;
//! - a runbook output (`outputs:`) that reads a secret is secret.
//!
//! A secret step output or runbook output is journaled and reported as `"***"`, whole, however
//! short or long it is; expressions of later steps still see the clear value.
//!
//! [`StepSpec::outputs_not_secret`]: crate::StepSpec::outputs_not_secret

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap, HashSet};

use serde_json::Value;

use crate::compile::Runbook;
use crate::expr::{Expr, Ref, Template, Watch};
use crate::secrets::{REDACTED, Secrets};
use crate::step::Outputs;

/// Exact names of environment variables that hold credentials but match no pattern of
/// [`is_credential_env`].
const CREDENTIAL_ENV: &[&str] = &["AWS_ACCESS_KEY_ID"];

/// Words that make a variable a credential wherever they stand in its name (`AWS_SESSION_TOKEN`,
/// `AZURE_CLIENT_SECRET`, `DB_PASSWORD_PROD`).
const CREDENTIAL_WORDS: &[&str] = &[
    "TOKEN",
    "SECRET",
    "PASSWORD",
    "PASSWD",
    "PASSPHRASE",
    "CREDENTIAL",
    "CREDENTIALS",
    "APIKEY",
];

/// Whether the environment variable `name` holds a credential, so that reading it through
/// `env.` yields a secret. Case does not matter. A credential is:
///
/// - `AWS_ACCESS_KEY_ID`;
/// - a name with one of the words `TOKEN`, `SECRET`, `PASSWORD`, `PASSWD`, `PASSPHRASE`,
///   `CREDENTIAL(S)` or `APIKEY` (words are separated by anything but letters and digits), or
///   ending with one of them (`PGPASSWORD`, `GITHUBTOKEN`): `AWS_SECRET_ACCESS_KEY`,
///   `AWS_SESSION_TOKEN`, `AWS_SECURITY_TOKEN`, `GITHUB_TOKEN`, `VAULT_TOKEN`, `DOCKER_PASSWORD`;
/// - a name of two words or more whose last word is `KEY` or `PWD` (`OPENAI_API_KEY`,
///   `STRIPE_SECRET_KEY`, `MYSQL_PWD`; not `PWD`, the working directory, nor `KMS_KEY_ID`).
pub fn is_credential_env(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    if CREDENTIAL_ENV.contains(&upper.as_str()) {
        return true;
    }
    let words: Vec<&str> = upper
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    words.iter().any(|w| CREDENTIAL_WORDS.contains(w))
        || CREDENTIAL_WORDS.iter().any(|w| upper.ends_with(w))
        || (words.len() > 1 && matches!(words.last(), Some(&"KEY" | &"PWD")))
}

/// Which outputs of a step are secret.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
enum OutputSecrecy {
    /// None.
    #[default]
    Clear,
    /// All of them.
    All,
    /// Those named (a step whose outputs are its input).
    Only(BTreeSet<String>),
}

impl OutputSecrecy {
    fn contains(&self, name: &str) -> bool {
        match self {
            OutputSecrecy::Clear => false,
            OutputSecrecy::All => true,
            OutputSecrecy::Only(names) => names.contains(name),
        }
    }
}

#[derive(Debug, Clone, Default)]
struct StepSecrets {
    /// The `with:` entries that read a secret, in order.
    inputs: Vec<String>,
    outputs: OutputSecrecy,
}

/// Which inputs and outputs of a runbook are secret (see the module docs). Built once per run
/// by [`SecretFlow::of`]; the scheduler asks it what to record as `"***"`.
#[derive(Debug, Clone, Default)]
pub struct SecretFlow {
    params: HashSet<String>,
    index: HashMap<String, usize>,
    steps: Vec<StepSecrets>,
    outputs: Vec<bool>,
    lock: bool,
}

impl SecretFlow {
    /// Decides, step by step in dependency order, what is secret in `runbook`.
    pub fn of(runbook: &Runbook) -> SecretFlow {
        let mut flow = SecretFlow {
            params: runbook
                .secret_params()
                .into_iter()
                .map(str::to_owned)
                .collect(),
            index: runbook.index.clone(),
            steps: vec![StepSecrets::default(); runbook.steps.len()],
            outputs: Vec::new(),
            lock: false,
        };
        // A step reads only outputs of steps upstream of it (the compiler checks), so in
        // dependency order every output it reads is decided before it.
        let order = runbook
            .dag
            .topo_order()
            .unwrap_or_else(|| (0..runbook.steps.len()).collect());
        for i in order {
            let step = &runbook.steps[i];
            let inputs: Vec<String> = step
                .with
                .iter()
                .filter(|(_, t)| flow.is_secret(t))
                .map(|(k, _)| k.clone())
                .collect();
            let spec = step.step_type.spec();
            let outputs = if inputs.is_empty() || spec.outputs_not_secret {
                OutputSecrecy::Clear
            } else if spec.outputs_from_input {
                OutputSecrecy::Only(inputs.iter().cloned().collect())
            } else {
                OutputSecrecy::All
            };
            flow.steps[i] = StepSecrets { inputs, outputs };
        }
        flow.outputs = runbook
            .outputs
            .iter()
            .map(|(_, t)| flow.is_secret(t))
            .collect();
        flow.lock = runbook.lock.as_ref().is_some_and(|t| flow.is_secret(t));
        flow
    }

    fn step(&self, id: &str) -> Option<&StepSecrets> {
        self.index.get(id).and_then(|&i| self.steps.get(i))
    }

    /// Whether a value that reads these names is secret.
    pub(crate) fn reads_secret(&self, refs: &[Ref]) -> bool {
        refs.iter().any(|r| match r {
            Ref::Param(p) if p.is_empty() => !self.params.is_empty(),
            Ref::Param(p) => self.params.contains(p),
            Ref::StepOutput(s, o) => self.step(s).is_some_and(|st| st.outputs.contains(o)),
            Ref::Step(s, _) => self
                .step(s)
                .is_some_and(|st| st.outputs != OutputSecrecy::Clear),
            Ref::AllSteps => self
                .steps
                .iter()
                .any(|st| st.outputs != OutputSecrecy::Clear),
            Ref::Env(v) => v.is_empty() || is_credential_env(v),
            Ref::StepStatus(_) | Ref::Run(_) | Ref::Unknown(_) => false,
        })
    }

    /// Whether a runbook value (a `with:` entry, an output, the `lock:`) reads a secret.
    pub fn is_secret(&self, template: &Template) -> bool {
        template.exprs().iter().any(|e| self.reads_secret(&e.refs))
    }

    /// The names of step `step`'s secret inputs.
    pub fn secret_inputs(&self, step: usize) -> &[String] {
        self.steps.get(step).map_or(&[], |s| &s.inputs)
    }

    /// Whether output `name` of step `step` is secret.
    pub fn output_is_secret(&self, step: usize, name: &str) -> bool {
        self.steps
            .get(step)
            .is_some_and(|s| s.outputs.contains(name))
    }

    /// Whether any output of step `step` is secret.
    pub fn has_secret_outputs(&self, step: usize) -> bool {
        self.steps
            .get(step)
            .is_some_and(|s| s.outputs != OutputSecrecy::Clear)
    }

    /// Step `step`'s outputs as they may be journaled and reported: each secret one replaced by
    /// `"***"` whole.
    pub fn redact_outputs<'a>(&self, step: usize, outputs: &'a Outputs) -> Cow<'a, Outputs> {
        let Some(secrecy) = self.steps.get(step).map(|s| &s.outputs) else {
            return Cow::Borrowed(outputs);
        };
        if *secrecy == OutputSecrecy::Clear || !outputs.keys().any(|k| secrecy.contains(k)) {
            return Cow::Borrowed(outputs);
        }
        Cow::Owned(
            outputs
                .iter()
                .map(|(k, v)| {
                    let v = if secrecy.contains(k) {
                        Value::String(REDACTED.into())
                    } else {
                        v.clone()
                    };
                    (k.clone(), v)
                })
                .collect(),
        )
    }

    /// Whether the runbook's `i`-th output (in `Runbook::outputs` order) is secret.
    pub fn runbook_output_is_secret(&self, i: usize) -> bool {
        self.outputs.get(i).copied().unwrap_or(false)
    }

    /// Whether the runbook's `lock:` reads a secret.
    pub fn lock_is_secret(&self) -> bool {
        self.lock
    }

    /// The first secret output of one of `steps` that a value reading `refs` reads, as
    /// `steps.<id>.outputs.<name>` (or `steps.<id>` when read whole).
    pub(crate) fn reads_secret_output_of(
        &self,
        refs: &[Ref],
        steps: &HashSet<usize>,
    ) -> Option<String> {
        refs.iter().find_map(|r| {
            let (id, name) = match r {
                Ref::StepOutput(s, o) => (s, Some(o)),
                Ref::Step(s, _) => (s, None),
                _ => return None,
            };
            let i = *self.index.get(id)?;
            if !steps.contains(&i) {
                return None;
            }
            match name {
                Some(o) if self.output_is_secret(i, o) => Some(format!("steps.{id}.outputs.{o}")),
                None if self.has_secret_outputs(i) => Some(format!("steps.{id}")),
                _ => None,
            }
        })
    }

    /// A [`Watch`] that adds the value of every expression that reads a secret to `values`.
    pub(crate) fn watch<'a>(&'a self, values: &'a Secrets) -> impl Watch + 'a {
        Adding { flow: self, values }
    }
}

struct Adding<'a> {
    flow: &'a SecretFlow,
    values: &'a Secrets,
}

impl Watch for Adding<'_> {
    fn reads_secret(&self, expr: &Expr) -> bool {
        self.flow.reads_secret(&expr.refs)
    }

    fn secret_value(&self, value: &Value) {
        self.values.add(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_variables() {
        for name in [
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECURITY_TOKEN",
            "GITHUB_TOKEN",
            "GH_TOKEN",
            "VAULT_TOKEN",
            "NPM_TOKEN",
            "DOCKER_PASSWORD",
            "AZURE_CLIENT_SECRET",
            "OPENAI_API_KEY",
            "PGPASSWORD",
            "MYSQL_PWD",
            "db_password",
            "GOOGLE_APPLICATION_CREDENTIALS",
        ] {
            assert!(is_credential_env(name), "{name}");
        }
        for name in [
            "HOME",
            "PWD",
            "OLDPWD",
            "AWS_REGION",
            "AWS_PROFILE",
            "AWS_ENDPOINT_URL",
            "KMS_KEY_ID",
            "DR_PROMOTE",
            "MAX_LAG_MS",
            "KEY",
        ] {
            assert!(!is_credential_env(name), "{name}");
        }
    }
}
