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

use crate::clock::{Clock, SharedClock, VirtualClock, WallClock};
use crate::constraint::{BoundKind, Format, Rule, RuleViolation, Violation, num};

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

/// One declared parameter of a step type, with the constraints on its value.
///
/// Constraints are checked wherever the value becomes known: by the compiler on literals, by
/// the value check of `drflow validate` and `drflow run` once parameters are known, and by the
/// scheduler when the step starts (see [`Violation`], [`Format`] and [`Rule`]).
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
    /// For whole numbers: the only values allowed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub int_choices: Option<&'static [i64]>,
    /// For numbers and durations (in seconds): the smallest value allowed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// For numbers and durations (in seconds): the largest value allowed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// For strings (in characters) and lists (in items): the shortest allowed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_len: Option<usize>,
    /// For strings (in characters) and lists (in items): the longest allowed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_len: Option<usize>,
    /// Why `max_len` is what it is, when it is derived from something else (the names a cloud
    /// step builds from an environment suffix).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_len_why: Option<String>,
    /// For strings, and each string of a list: the format it must have.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<Format>,
    /// The empty string means "none" and is accepted as is (no format or length check).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub empty_means_none: bool,
}

impl ParamSpec {
    /// A parameter with no constraint beyond its type.
    fn plain(name: &'static str, ty: ValueType, doc: &'static str) -> ParamSpec {
        ParamSpec {
            name,
            ty,
            required: true,
            default: None,
            doc,
            choices: None,
            int_choices: None,
            min: None,
            max: None,
            min_len: None,
            max_len: None,
            max_len_why: None,
            format: None,
            empty_means_none: false,
        }
    }

    /// Whether anything beyond the type is checked.
    pub fn is_constrained(&self) -> bool {
        self.choices.is_some()
            || self.int_choices.is_some()
            || self.min.is_some()
            || self.max.is_some()
            || self.min_len.is_some()
            || self.max_len.is_some()
            || self.format.is_some()
    }

    /// Checks a value of the right type against every constraint; the first one broken is
    /// returned as a predicate (put the parameter's name in front: [`Violation::sentence`]).
    pub fn check(&self, value: &Value) -> Result<(), Violation> {
        if self.empty_means_none && value.as_str() == Some("") {
            return Ok(());
        }
        if let (Some(choices), Some(s)) = (self.choices, value.as_str())
            && !choices.contains(&s)
        {
            let mut v = Violation::new(format!(
                "must be one of {}, not `{s}`",
                choices
                    .iter()
                    .map(|c| format!("`{c}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            if let Some(near) = crate::diag::nearest(s, choices.iter().copied()) {
                v = v.hint(format!("did you mean `{near}`?"));
            }
            return Err(v);
        }
        if let (Some(allowed), Some(n)) = (self.int_choices, value.as_i64())
            && !allowed.contains(&n)
        {
            let list: Vec<String> = allowed.iter().map(i64::to_string).collect();
            return Err(Violation::new(format!(
                "must be {}, not {n}",
                or_list(&list)
            )));
        }
        self.check_number(value)?;
        self.check_length(value)?;
        if let Some(format) = self.format {
            match value {
                Value::String(s) => (format.check)(s)?,
                Value::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        if let Some(s) = item.as_str() {
                            (format.check)(s).map_err(|mut v| {
                                v.item = Some(i);
                                v
                            })?;
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn check_number(&self, value: &Value) -> Result<(), Violation> {
        if self.min.is_none() && self.max.is_none() {
            return Ok(());
        }
        let number = match (self.ty, value) {
            (ValueType::Duration, Value::String(s)) => crate::duration::parse_duration(s)
                .ok()
                .map(|d| d.as_secs_f64()),
            (_, v) => v.as_f64(),
        };
        let Some(n) = number else { return Ok(()) };
        let shown = |x: f64| {
            if self.ty == ValueType::Duration {
                format!("{}s", num(x))
            } else {
                num(x)
            }
        };
        let broken = match (self.min, self.max) {
            (Some(min), _) if n < min => Some((BoundKind::Min, min)),
            (_, Some(max)) if n > max => Some((BoundKind::Max, max)),
            _ => None,
        };
        let Some((kind, bound)) = broken else {
            return Ok(());
        };
        let problem = match (self.min, self.max) {
            (Some(min), Some(max)) => {
                format!("must be from {} to {}, not {value}", shown(min), shown(max))
            }
            (Some(min), None) => format!("must be at least {}, not {value}", shown(min)),
            (None, Some(max)) => format!("must be at most {}, not {value}", shown(max)),
            (None, None) => return Ok(()),
        };
        let mut v = Violation::new(problem);
        v.bound = Some((kind, bound));
        Err(v)
    }

    fn check_length(&self, value: &Value) -> Result<(), Violation> {
        let (len, unit) = match value {
            Value::String(s) => (s.chars().count(), "character"),
            Value::Array(items) => (items.len(), "item"),
            _ => return Ok(()),
        };
        let plural = |n: usize| {
            if n == 1 {
                unit.to_string()
            } else {
                format!("{unit}s")
            }
        };
        if let Some(max) = self.max_len
            && len > max
        {
            let has = if unit == "character" {
                format!("is {len} {} long", plural(len))
            } else {
                format!("has {len} {}", plural(len))
            };
            let mut problem = format!("{has}, more than the {max} allowed");
            if let Some(why) = &self.max_len_why {
                problem.push_str(": ");
                problem.push_str(why);
            }
            let mut v = Violation::new(problem).hint(format!("use at most {max} {}", plural(max)));
            v.bound = Some((BoundKind::MaxLen, max as f64));
            return Err(v);
        }
        if let Some(min) = self.min_len
            && len < min
        {
            let problem = if len == 0 {
                "must not be empty".to_string()
            } else if unit == "character" {
                format!("is {len} {} long, fewer than the {min} needed", plural(len))
            } else {
                format!("has {len} {}, fewer than the {min} needed", plural(len))
            };
            let mut v = Violation::new(problem);
            v.bound = Some((BoundKind::MinLen, min as f64));
            return Err(v);
        }
        Ok(())
    }

    /// The constraints in words, for the reference docs and `validate --explain`: "at least 1",
    /// "an IPv4 CIDR block …". Empty when there is none.
    pub fn constraint_docs(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(choices) = self.choices {
            let list: Vec<String> = choices.iter().map(|c| format!("`{c}`")).collect();
            out.push(format!("one of {}", list.join(", ")));
        }
        if let Some(allowed) = self.int_choices {
            let list: Vec<String> = allowed.iter().map(i64::to_string).collect();
            out.push(format!("one of {}", list.join(", ")));
        }
        let unit = if self.ty == ValueType::Duration {
            "s"
        } else {
            ""
        };
        match (self.min, self.max) {
            (Some(a), Some(b)) => out.push(format!("from {}{unit} to {}{unit}", num(a), num(b))),
            (Some(a), None) => out.push(format!("at least {}{unit}", num(a))),
            (None, Some(b)) => out.push(format!("at most {}{unit}", num(b))),
            (None, None) => {}
        }
        let what = if self.ty == ValueType::List {
            "items"
        } else {
            "characters"
        };
        let why = self
            .max_len_why
            .as_ref()
            .map(|w| format!(" ({w})"))
            .unwrap_or_default();
        match (self.min_len, self.max_len) {
            (Some(a), Some(b)) => out.push(format!("{a} to {b} {what}{why}")),
            (Some(1), None) if what == "characters" => out.push("not empty".into()),
            (Some(a), None) => out.push(format!("at least {a} {what}")),
            (None, Some(b)) => out.push(format!("at most {b} {what}{why}")),
            (None, None) => {}
        }
        if let Some(f) = self.format {
            let each = if self.ty == ValueType::List {
                "each "
            } else {
                ""
            };
            out.push(format!("{each}{}", f.doc));
        }
        if self.empty_means_none {
            out.push("empty means none".into());
        }
        out
    }
}

/// `a`, `a or b`, `a, b or c`.
pub(crate) fn or_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
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
    /// The input this output always equals, when it does (`network.vpc`'s `cidr`): the value
    /// check then knows the output before the run, and checks what reads it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub echoes: Option<&'static str>,
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
    /// Rules over several inputs (see [`Rule`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<Rule>,
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
            rules: Vec::new(),
        }
    }

    /// Adds a required parameter.
    pub fn required(mut self, name: &'static str, ty: ValueType, doc: &'static str) -> Self {
        self.params.push(ParamSpec::plain(name, ty, doc));
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
            required: false,
            default: (!default.is_null()).then_some(default),
            ..ParamSpec::plain(name, ty, doc)
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

    /// Sets the largest value of the parameter added last (durations in seconds).
    pub fn at_most(mut self, max: f64) -> Self {
        if let Some(p) = self.params.last_mut() {
            p.max = Some(max);
        }
        self
    }

    /// Limits the whole-number parameter added last to these values.
    pub fn one_of_ints(mut self, allowed: &'static [i64]) -> Self {
        if let Some(p) = self.params.last_mut() {
            p.int_choices = Some(allowed);
        }
        self
    }

    /// Sets the fewest characters (strings) or items (lists) of the parameter added last.
    pub fn min_len(mut self, min: usize) -> Self {
        if let Some(p) = self.params.last_mut() {
            p.min_len = Some(min);
        }
        self
    }

    /// Sets the most characters (strings) or items (lists) of the parameter added last.
    pub fn max_len(mut self, max: usize) -> Self {
        if let Some(p) = self.params.last_mut() {
            p.max_len = Some(max);
        }
        self
    }

    /// Gives the parameter added last a format (for a list: of each item).
    pub fn format(mut self, format: Format) -> Self {
        if let Some(p) = self.params.last_mut() {
            p.format = Some(format);
        }
        self
    }

    /// Lets the parameter added last be the empty string, meaning "none", whatever its format.
    pub fn empty_means_none(mut self) -> Self {
        if let Some(p) = self.params.last_mut() {
            p.empty_means_none = true;
        }
        self
    }

    /// Adds a rule over several inputs: `doc` says it in one sentence, `reads` names every input
    /// `check` looks at (it runs only once they are all known).
    pub fn rule(
        mut self,
        doc: impl Into<String>,
        reads: &[&'static str],
        check: impl Fn(&Outputs) -> Result<(), RuleViolation> + Send + Sync + 'static,
    ) -> Self {
        self.rules.push(Rule {
            doc: doc.into(),
            reads: reads.to_vec(),
            check: Arc::new(check),
        });
        self
    }

    /// Declares that the output added last always equals the input `input`.
    pub fn echoes(mut self, input: &'static str) -> Self {
        if let Some(o) = self.outputs.last_mut() {
            o.echoes = Some(input);
        }
        self
    }

    /// Looks up a parameter by name, mutably (to add constraints to a shared declaration).
    pub fn param_mut(&mut self, name: &str) -> Option<&mut ParamSpec> {
        self.params.iter_mut().find(|p| p.name == name)
    }

    /// Adds an output.
    pub fn output(mut self, name: &'static str, ty: ValueType, doc: &'static str) -> Self {
        self.outputs.push(OutputSpec {
            name,
            ty,
            doc,
            echoes: None,
        });
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

    /// The inputs `rule` reads, when every one is present (not null), of its declared type and
    /// within its own constraints; `None` when the rule cannot run (yet): a rule over a value
    /// already refused would only repeat the refusal.
    pub fn rule_input(&self, rule: &Rule, input: &Outputs) -> Option<Outputs> {
        let mut out = Outputs::new();
        for name in &rule.reads {
            let v = input.get(*name).filter(|v| !v.is_null())?;
            if let Some(p) = self.param(name)
                && (!p.ty.accepts(v) || p.check(v).is_err())
            {
                return None;
            }
            out.insert((*name).to_string(), v.clone());
        }
        Some(out)
    }

    /// Checks a step's whole input as the step would get it (expressions evaluated, defaults
    /// filled in): each declared parameter's presence, type and constraints, then every rule.
    /// The scheduler calls this when a step starts; the error is `invalid_input`.
    pub fn check_input(&self, input: &Outputs) -> Result<(), StepError> {
        if self.outputs_from_input {
            return Ok(());
        }
        for p in &self.params {
            match input.get(p.name) {
                Some(Value::Null) | None if p.required => {
                    return Err(StepError::invalid_input(format!(
                        "required parameter `{}` evaluated to nothing",
                        p.name
                    )));
                }
                Some(v) if !v.is_null() && !p.ty.accepts(v) => {
                    return Err(StepError::invalid_input(format!(
                        "parameter `{}` must be {} {}, but evaluated to {v}",
                        p.name,
                        crate::compile::article(p.ty),
                        p.ty
                    )));
                }
                Some(v) if !v.is_null() => {
                    if let Err(violation) = p.check(v) {
                        let mut message = violation.sentence(p.name);
                        if let Some(h) = &violation.hint {
                            message.push_str(&format!(" (hint: {h})"));
                        }
                        return Err(StepError::invalid_input(message));
                    }
                }
                _ => {}
            }
        }
        for rule in &self.rules {
            if let Some(values) = self.rule_input(rule, input)
                && let Err(v) = (rule.check)(&values)
            {
                return Err(StepError::invalid_input(v.to_string()));
            }
        }
        Ok(())
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

/// Where a running attempt writes notes into its run's journal ([`StepContext::note`]).
#[derive(Clone)]
pub struct Notebook {
    pub(crate) tx: tokio::sync::mpsc::UnboundedSender<Note>,
    pub(crate) idx: usize,
}

impl fmt::Debug for Notebook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Notebook(..)")
    }
}

/// A note on its way to the journal; `ack` answers once it is written.
pub(crate) struct Note {
    pub idx: usize,
    pub note: Value,
    pub ack: tokio::sync::oneshot::Sender<()>,
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
    /// The run's clock (see [`StepContext::clock`]).
    pub clock: SharedClock,
    /// What earlier attempts of this step in this run wrote with [`StepContext::note`], oldest
    /// first, including attempts before a resume.
    pub notes: Vec<Value>,
    /// Where [`StepContext::note`] writes; `None` outside a run.
    pub notebook: Option<Notebook>,
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
            clock: Arc::new(VirtualClock::new(WallClock.now_ms())),
            notes: Vec::new(),
            notebook: None,
        }
    }

    /// Writes `note` into the run's journal and returns once it is there: write-ahead, so
    /// that what an attempt is about to do (create a resource the cloud cannot tag as this
    /// run's) is known to a later attempt of the step ([`StepContext::notes`]) even when this
    /// process dies before the step finishes. Outside a run it does nothing.
    ///
    /// Errors: retryable `journal` when the run stopped before the note was written.
    pub async fn note(&self, note: Value) -> Result<(), StepError> {
        let Some(book) = &self.notebook else {
            return Ok(());
        };
        let lost = || {
            StepError::retryable(
                "journal",
                "the run stopped before this step's note reached the journal",
            )
        };
        let (ack, written) = tokio::sync::oneshot::channel();
        book.tx
            .send(Note {
                idx: book.idx,
                note,
                ack,
            })
            .map_err(|_| lost())?;
        written.await.map_err(|_| lost())
    }

    /// The run's clock: what a step that waits or tells time reads (`core.sleep`,
    /// `core.wait_until`), so that on the simulated cloud its waits are virtual time, shared
    /// with every other step of the run and with the backend. Sleep with [`Clock::sleep`] and
    /// measure with [`Clock::now_ms`] (milliseconds since the Unix epoch).
    ///
    /// A [detached](StepContext::detached) context's clock starts at the wall-clock time and
    /// moves with tokio's time: real time on a normal runtime, virtual time on a paused one.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::formats::EMAIL;

    fn param(spec: StepSpec) -> ParamSpec {
        spec.params.last().cloned().expect("a parameter")
    }

    #[test]
    fn bounds_say_what_is_allowed() {
        let weight = param(
            StepSpec::new("t", "")
                .optional("weight", ValueType::Int, json!(0), "")
                .at_least(0.0)
                .at_most(255.0),
        );
        assert!(weight.check(&json!(255)).is_ok());
        let v = weight.check(&json!(256)).unwrap_err();
        assert_eq!(
            v.sentence("weight"),
            "`weight` must be from 0 to 255, not 256"
        );
        assert_eq!(v.bound, Some((BoundKind::Max, 255.0)));
        assert_eq!(
            weight.check(&json!(-1)).unwrap_err().bound,
            Some((BoundKind::Min, 0.0))
        );
        let interval = param(
            StepSpec::new("t", "")
                .optional("interval", ValueType::Int, json!(10), "")
                .one_of_ints(&[10, 30]),
        );
        assert_eq!(
            interval.check(&json!(20)).unwrap_err().problem,
            "must be 10 or 30, not 20"
        );
        let wait = param(
            StepSpec::new("t", "")
                .required("wait", ValueType::Duration, "")
                .at_least(1.0),
        );
        assert_eq!(
            wait.check(&json!("500ms")).unwrap_err().problem,
            "must be at least 1s, not \"500ms\""
        );
    }

    #[test]
    fn lengths_count_characters_and_items_and_say_why() {
        let mut text = param(
            StepSpec::new("t", "")
                .required("s", ValueType::String, "")
                .max_len(3),
        );
        text.max_len_why = Some("it ends every name".into());
        assert!(text.check(&json!("äbc")).is_ok(), "characters, not bytes");
        let v = text.check(&json!("abcd")).unwrap_err();
        assert_eq!(
            v.problem,
            "is 4 characters long, more than the 3 allowed: it ends every name"
        );
        assert_eq!(v.hint.as_deref(), Some("use at most 3 characters"));
        let list = param(
            StepSpec::new("t", "")
                .required("l", ValueType::List, "")
                .min_len(2),
        );
        assert_eq!(
            list.check(&json!(["a"])).unwrap_err().problem,
            "has 1 item, fewer than the 2 needed"
        );
    }

    #[test]
    fn a_format_applies_to_each_item_and_empty_may_mean_none() {
        let emails = param(
            StepSpec::new("t", "")
                .required("to", ValueType::List, "")
                .format(EMAIL),
        );
        let v = emails.check(&json!(["a@example.com", "no"])).unwrap_err();
        assert_eq!(v.item, Some(1));
        assert_eq!(
            v.sentence("to"),
            "`to` item 2: is not an e-mail address: `no`"
        );
        let email = param(
            StepSpec::new("t", "")
                .optional("email", ValueType::String, json!(""), "")
                .format(EMAIL)
                .empty_means_none(),
        );
        assert!(email.check(&json!("")).is_ok());
        assert!(email.check(&json!("no")).is_err());
    }

    #[test]
    fn the_whole_input_is_checked_when_a_step_starts() {
        let spec = StepSpec::new("t", "")
            .required("a", ValueType::Int, "")
            .at_least(1.0)
            .required("b", ValueType::Int, "")
            .rule("a is at most b.", &["a", "b"], |i| {
                if i["a"].as_i64() > i["b"].as_i64() {
                    Err(RuleViolation::at("a", "a is more than b"))
                } else {
                    Ok(())
                }
            });
        let input = |a: i64, b: i64| {
            let mut m = Outputs::new();
            m.insert("a".into(), json!(a));
            m.insert("b".into(), json!(b));
            m
        };
        assert!(spec.check_input(&input(1, 2)).is_ok());
        let e = spec.check_input(&input(3, 2)).unwrap_err();
        assert_eq!(
            (e.kind.as_str(), e.message.as_str()),
            ("invalid_input", "a is more than b")
        );
        let e = spec.check_input(&input(0, 2)).unwrap_err();
        assert_eq!(e.message, "`a` must be at least 1, not 0");
        // A rule over a value already refused is not run: one problem, said once.
        let e = spec.check_input(&input(0, -5)).unwrap_err();
        assert_eq!(e.message, "`a` must be at least 1, not 0");
    }
}
