//! The contract between the engine and a step type.
//!
//! A step type declares its parameters and outputs once, in a [`StepSpec`]. That one declaration
//! drives validation of `with:` blocks, `drflow steps`, `drflow schema` and the generated docs.
//!
//! # Idempotency
//!
//! The engine may run a step more than once: a retry after a failed attempt, or `drflow resume`
//! after a crash that happened while the step was running (the journal says "started" and nothing
//! more). Every step type must therefore be idempotent: running it twice with the same input
//! leaves the world as running it once would, and returns the same outputs. Cloud steps do this by
//! finding the resource by name and tags first and creating only what is missing.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A map of named values: a step's input (`with:`) after expressions were evaluated, or its outputs.
pub type Outputs = serde_json::Map<String, Value>;

/// The future a step returns.
pub type StepFuture<'a> = Pin<Box<dyn Future<Output = Result<Outputs, StepError>> + Send + 'a>>;

/// The type of a runbook parameter, a step parameter or a step output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ValueType {
    /// A string.
    String,
    /// A whole number.
    Int,
    /// Any number.
    Number,
    /// `true` or `false`.
    Bool,
    /// A duration written as `90s`, `5m`, `1h30m` or `250ms` (a bare number means seconds).
    Duration,
    /// A list of values.
    List,
    /// A map of string keys to values.
    Map,
    /// Any value at all.
    Any,
}

impl ValueType {
    /// Every type, in the order the docs list them.
    pub const ALL: [ValueType; 8] = [
        ValueType::String,
        ValueType::Int,
        ValueType::Number,
        ValueType::Bool,
        ValueType::Duration,
        ValueType::List,
        ValueType::Map,
        ValueType::Any,
    ];

    /// The name used in runbooks and error messages.
    pub fn name(self) -> &'static str {
        match self {
            ValueType::String => "string",
            ValueType::Int => "int",
            ValueType::Number => "number",
            ValueType::Bool => "bool",
            ValueType::Duration => "duration",
            ValueType::List => "list",
            ValueType::Map => "map",
            ValueType::Any => "any",
        }
    }

    /// Parses a type name as written in a runbook's `params:` block.
    pub fn parse(name: &str) -> Option<ValueType> {
        ValueType::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Whether `value` is of this type. Durations accept strings such as `30s` and plain numbers.
    pub fn accepts(self, value: &Value) -> bool {
        match self {
            ValueType::String => value.is_string(),
            ValueType::Int => value.is_i64() || value.is_u64(),
            ValueType::Number => value.is_number(),
            ValueType::Bool => value.is_boolean(),
            ValueType::Duration => match value {
                Value::String(s) => crate::duration::parse_duration(s).is_ok(),
                Value::Number(n) => n.as_f64().is_some_and(|f| f >= 0.0),
                _ => false,
            },
            ValueType::List => value.is_array(),
            ValueType::Map => value.is_object(),
            ValueType::Any => true,
        }
    }
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One declared parameter of a step type.
#[derive(Debug, Clone, Serialize)]
pub struct ParamSpec {
    /// The key under `with:`.
    pub name: &'static str,
    /// Its type, checked at compile time for literal values and at run time for expressions.
    #[serde(rename = "type")]
    pub ty: ValueType,
    /// Whether the runbook must give it.
    pub required: bool,
    /// The value used when the runbook leaves it out (only for optional parameters).
    pub default: Option<Value>,
    /// One sentence for the reference docs.
    pub doc: &'static str,
    /// For strings: the only values allowed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub choices: Option<&'static [&'static str]>,
    /// For numbers and durations (in seconds): the smallest value allowed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
}

impl ParamSpec {
    /// Checks a value of the right type against `choices` and `min`; the error says what is
    /// allowed.
    pub fn check(&self, value: &Value) -> Result<(), String> {
        if let (Some(choices), Some(s)) = (self.choices, value.as_str())
            && !choices.contains(&s)
        {
            return Err(format!(
                "`{}` must be one of {}, not `{s}`",
                self.name,
                choices
                    .iter()
                    .map(|c| format!("`{c}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if let Some(min) = self.min {
            let number = match (self.ty, value) {
                (ValueType::Duration, Value::String(s)) => crate::duration::parse_duration(s)
                    .ok()
                    .map(|d| d.as_secs_f64()),
                (_, v) => v.as_f64(),
            };
            if let Some(n) = number
                && n < min
            {
                let shown = if self.ty == ValueType::Duration {
                    format!("{min}s")
                } else {
                    min.to_string()
                };
                return Err(format!(
                    "`{}` must be at least {shown}, not {value}",
                    self.name
                ));
            }
        }
        Ok(())
    }
}

/// One declared output of a step type.
#[derive(Debug, Clone, Serialize)]
pub struct OutputSpec {
    /// The name under `steps.<id>.outputs.`.
    pub name: &'static str,
    /// Its type.
    #[serde(rename = "type")]
    pub ty: ValueType,
    /// One sentence for the reference docs.
    pub doc: &'static str,
}

/// Everything the engine knows about a step type before running it.
#[derive(Debug, Clone, Serialize)]
pub struct StepSpec {
    /// The name used in `uses:`, e.g. `core.log` or `vpc.ensure`.
    pub name: &'static str,
    /// What the step does, for the reference docs.
    pub doc: &'static str,
    /// Declared parameters.
    pub params: Vec<ParamSpec>,
    /// Declared outputs.
    pub outputs: Vec<OutputSpec>,
    /// When true, the step's outputs are not known in advance (e.g. `core.set`, whose outputs are
    /// its `with:` map) and references to them are checked against the `with:` keys instead.
    pub outputs_from_input: bool,
    /// Whether the step type has an undo action (used by rollback and destroy).
    pub has_undo: bool,
    /// When true, the outputs never carry the value of an input (counts, attempt numbers), so
    /// they stay in clear when an input is secret. Otherwise a secret input makes every output
    /// secret (journaled and reported as `***`; see docs/runbook.md).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub outputs_not_secret: bool,
    /// Whether running the step deletes things that cannot be brought back by running it again
    /// (a teardown). A runbook using such a step is destructive: `drflow run` lists what it
    /// will delete and asks first on a terminal, and wants `--yes` elsewhere.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub destructive: bool,
}

impl StepSpec {
    /// Starts a spec with no parameters or outputs.
    pub fn new(name: &'static str, doc: &'static str) -> StepSpec {
        StepSpec {
            name,
            doc,
            params: Vec::new(),
            outputs: Vec::new(),
            outputs_from_input: false,
            has_undo: false,
            outputs_not_secret: false,
            destructive: false,
        }
    }

    /// Adds a required parameter.
    pub fn required(mut self, name: &'static str, ty: ValueType, doc: &'static str) -> Self {
        self.params.push(ParamSpec {
            name,
            ty,
            required: true,
            default: None,
            doc,
            choices: None,
            min: None,
        });
        self
    }

    /// Adds an optional parameter with a default (use `Value::Null` for "no default").
    pub fn optional(
        mut self,
        name: &'static str,
        ty: ValueType,
        default: Value,
        doc: &'static str,
    ) -> Self {
        self.params.push(ParamSpec {
            name,
            ty,
            required: false,
            default: (!default.is_null()).then_some(default),
            doc,
            choices: None,
            min: None,
        });
        self
    }

    /// Limits the parameter added last to these values.
    pub fn one_of(mut self, choices: &'static [&'static str]) -> Self {
        if let Some(p) = self.params.last_mut() {
            p.choices = Some(choices);
        }
        self
    }

    /// Sets the smallest value of the parameter added last (durations in seconds).
    pub fn at_least(mut self, min: f64) -> Self {
        if let Some(p) = self.params.last_mut() {
            p.min = Some(min);
        }
        self
    }

    /// Adds an output.
    pub fn output(mut self, name: &'static str, ty: ValueType, doc: &'static str) -> Self {
        self.outputs.push(OutputSpec { name, ty, doc });
        self
    }

    /// Marks the outputs as taken from the input map.
    pub fn outputs_from_input(mut self) -> Self {
        self.outputs_from_input = true;
        self
    }

    /// Marks the step as having an undo action.
    pub fn with_undo(mut self) -> Self {
        self.has_undo = true;
        self
    }

    /// Declares that the outputs never carry the value of an input, so a secret input does
    /// not make them secret. Only for outputs that are counts, flags or values the step makes
    /// up itself: an output holding a name, an ARN or a list built from an input (a resource
    /// name ending with a secret suffix) must stay secret.
    pub fn outputs_not_secret(mut self) -> Self {
        self.outputs_not_secret = true;
        self
    }

    /// Marks the step as destructive (see [`StepSpec::destructive`]).
    pub fn destructive(mut self) -> Self {
        self.destructive = true;
        self
    }

    /// Looks up a parameter by name.
    pub fn param(&self, name: &str) -> Option<&ParamSpec> {
        self.params.iter().find(|p| p.name == name)
    }
}

/// Why a step attempt failed. Journaled, so it is serializable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepError {
    /// A short machine-readable kind, matched by `retry.on` (e.g. `throttled`, `timeout`,
    /// `not_ready`, `conflict`, `invalid_input`, `failed`).
    pub kind: String,
    /// What went wrong and, where it helps, what to do.
    pub message: String,
    /// Whether retrying the same input could succeed.
    pub retryable: bool,
}

impl StepError {
    /// A permanent failure: retrying would not help.
    pub fn permanent(kind: impl Into<String>, message: impl Into<String>) -> StepError {
        StepError {
            kind: kind.into(),
            message: message.into(),
            retryable: false,
        }
    }

    /// A transient failure: the same input may succeed later.
    pub fn retryable(kind: impl Into<String>, message: impl Into<String>) -> StepError {
        StepError {
            kind: kind.into(),
            message: message.into(),
            retryable: true,
        }
    }

    /// The input was wrong in a way only visible at run time (e.g. an expression's value).
    pub fn invalid_input(message: impl Into<String>) -> StepError {
        StepError::permanent("invalid_input", message)
    }
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.kind)
    }
}

impl std::error::Error for StepError {}

/// Evaluates a step's `with:` block again, for steps that poll a condition (`core.wait_until`).
#[derive(Clone)]
pub struct Reevaluate(pub Arc<dyn Fn() -> Result<Outputs, StepError> + Send + Sync>);

impl fmt::Debug for Reevaluate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Reevaluate(..)")
    }
}

/// What a running step may know about where it runs.
#[derive(Debug, Clone)]
pub struct StepContext {
    /// The run's id.
    pub run_id: String,
    /// The runbook's name.
    pub runbook: String,
    /// The step's id in the runbook.
    pub step_id: String,
    /// 1 for the first attempt, 2 for the first retry, and so on.
    pub attempt: u32,
    /// The outputs this step recorded when it last succeeded (only given to `undo`).
    pub previous_outputs: Option<Outputs>,
    /// Evaluates the step's input again with the run's current scope (time moves on, other
    /// steps finish). `None` outside a run.
    pub reevaluate: Option<Reevaluate>,
    /// The names of the inputs that are secret (they read a secret parameter, a secret output
    /// or a credential variable). A step never writes them in any form, in a log line or an
    /// error message: the engine scrubs secrets of 4 characters or more out of text, but only
    /// the step can keep a shorter one out (e.g. by writing `***` instead).
    pub secret_inputs: Vec<String>,
}

impl StepContext {
    /// A context for calling a step outside a run (tests, tools).
    pub fn detached(step_id: &str) -> StepContext {
        StepContext {
            run_id: "detached".into(),
            runbook: "detached".into(),
            step_id: step_id.into(),
            attempt: 1,
            previous_outputs: None,
            reevaluate: None,
            secret_inputs: Vec::new(),
        }
    }

    /// Whether the input `name` is secret (see [`StepContext::secret_inputs`]).
    pub fn is_secret_input(&self, name: &str) -> bool {
        self.secret_inputs.iter().any(|n| n == name)
    }
}

/// A step type: declared once, run many times.
pub trait StepType: Send + Sync {
    /// The declaration: name, parameters, outputs.
    fn spec(&self) -> &StepSpec;

    /// Does the work. `input` holds every declared parameter (defaults filled in) after
    /// expressions were evaluated. Must be idempotent (see the module docs).
    fn run<'a>(&'a self, ctx: &'a StepContext, input: &'a Outputs) -> StepFuture<'a>;

    /// Undoes what a successful `run` did, given the same input and the outputs it returned
    /// (in `ctx.previous_outputs`). Only called when `spec().has_undo` is true. Must be
    /// idempotent too: undoing something already gone succeeds.
    fn undo<'a>(&'a self, ctx: &'a StepContext, input: &'a Outputs) -> StepFuture<'a> {
        let _ = (ctx, input);
        Box::pin(async move {
            Err(StepError::permanent(
                "no_undo",
                format!("step type {} has no undo action", self.spec().name),
            ))
        })
    }
}

/// The set of step types a runbook may use, by name.
#[derive(Clone, Default)]
pub struct Registry {
    types: BTreeMap<&'static str, Arc<dyn StepType>>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.types.keys()).finish()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Registry {
        Registry::default()
    }

    /// Adds a step type; a later type of the same name replaces an earlier one.
    pub fn register(&mut self, step: Arc<dyn StepType>) {
        self.types.insert(step.spec().name, step);
    }

    /// Looks up a step type by name.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn StepType>> {
        self.types.get(name)
    }

    /// Every registered step type, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn StepType>> {
        self.types.values()
    }

    /// Every registered name, sorted.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.types.keys().copied()
    }
}
