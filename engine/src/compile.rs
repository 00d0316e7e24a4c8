//! From a runbook file to a checked [`Runbook`], reporting every problem in one pass.
//!
//! Two stages, as in vector's config: the YAML tree is read field by field (unknown fields are
//! reported with the nearest known name), then the references between steps are resolved and
//! checked (unknown `needs`, cycles, expressions naming unknown params or outputs, outputs of a
//! step that is not upstream). Nothing is run when any problem is found.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::dag::Dag;
use crate::diag::{Diagnostic, Diagnostics, Pos, nearest, suggest};
use crate::duration::parse_duration;
use crate::expr::{Part, ROOTS, RUN_FIELDS, Ref, Template};
use crate::expr_types::Ty;
use crate::step::{Outputs, Registry, StepSpec, StepType, ValueType};
use crate::yaml::{Node, NodeKind};

const TOP_FIELDS: &[&str] = &[
    "runbook",
    "description",
    "params",
    "steps",
    "outputs",
    "lock",
    "on_failure",
];
const STEP_FIELDS: &[&str] = &[
    "id",
    "uses",
    "with",
    "needs",
    "if",
    "retry",
    "timeout",
    "continue_on_error",
    "description",
];
const PARAM_FIELDS: &[&str] = &["type", "default", "description", "secret"];
const RETRY_FIELDS: &[&str] = &["attempts", "backoff", "max_backoff", "on"];

/// What to do when a step fails for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    /// Stop starting dependants; keep what succeeded (the default).
    Stop,
    /// Undo the succeeded steps in reverse dependency order.
    Rollback,
}

/// A declared runbook parameter.
#[derive(Debug, Clone)]
pub struct ParamDecl {
    /// Its name, used as `params.<name>`.
    pub name: String,
    /// Its type.
    pub ty: ValueType,
    /// Its default; none means the parameter is required.
    pub default: Option<Value>,
    /// What it is for.
    pub description: String,
    /// Never written in clear to the journal, logs or reports.
    pub secret: bool,
    /// Where it is declared.
    pub pos: Pos,
    /// Where its default is written, if it has one (value problems of the default point there).
    pub default_pos: Option<Pos>,
}

/// When a step runs.
#[derive(Debug)]
pub enum Condition {
    /// When everything it needs succeeded (or was skipped by its own condition).
    Default,
    /// Also after something upstream failed.
    Always,
    /// When the expression, which must give a bool, is true and everything it needs succeeded;
    /// or, when the expression reads the status of a step ([`Condition::reads_status`]),
    /// whenever it is true, whatever happened upstream.
    If(Template),
}

impl Condition {
    /// Whether the condition reads `steps.<id>.status`. Such a condition decides alone, like
    /// `always` with a test: a failure upstream does not skip the step, its condition is
    /// evaluated once everything it needs has ended. The compiler makes sure every step it
    /// reads is upstream, in `needs` or reached through them.
    pub fn reads_status(&self) -> bool {
        let Condition::If(t) = self else {
            return false;
        };
        t.exprs().iter().flat_map(|e| e.refs.iter()).any(|r| {
            // `steps.<id>` used whole (`steps.x['status']`) may read the status too.
            matches!(r, Ref::StepStatus(_) | Ref::Step(_, None))
        })
    }
}

/// How a step is retried.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first one included (1 means no retry).
    pub attempts: u32,
    /// The wait before the first retry; doubled for each further retry, with full jitter.
    pub backoff: Duration,
    /// The longest wait between attempts.
    pub max_backoff: Duration,
    /// Error kinds to retry even if the step did not mark them retryable.
    pub on: Vec<String>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 1,
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            on: Vec::new(),
        }
    }
}

/// Where a `with:` value is written in the runbook: its position, and its items' when it is a
/// list. Value problems found after compiling (once parameters are known) point here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Site {
    /// Where the value starts.
    pub pos: Pos,
    /// Where each item starts, when the value is a list.
    pub items: Vec<Pos>,
}

impl Site {
    fn of(node: &Node) -> Site {
        Site {
            pos: node.pos,
            items: node
                .as_seq()
                .map(|items| items.iter().map(|n| n.pos).collect())
                .unwrap_or_default(),
        }
    }
}

/// A checked step.
pub struct Step {
    /// Its id.
    pub id: String,
    /// Its type's name.
    pub uses: String,
    /// Its type.
    pub step_type: Arc<dyn StepType>,
    /// Its input: every given parameter, then the defaults of those left out.
    pub with: Arc<[(String, Template)]>,
    /// Where each entry of `with` is written (`None` for a default of the step type).
    pub with_sites: Arc<[Option<Site>]>,
    /// The input, evaluated once at compile time when it holds no expression.
    pub literal_input: Option<Outputs>,
    /// Indices of the steps it needs.
    pub needs: Vec<usize>,
    /// When it runs.
    pub condition: Condition,
    /// How it is retried.
    pub retry: RetryPolicy,
    /// The longest one attempt may take.
    pub timeout: Option<Duration>,
    /// Whether its failure leaves its dependants free to run.
    pub continue_on_error: bool,
    /// Where it is declared.
    pub pos: Pos,
    /// SHA-256 of its `uses` and `with` as written: what its outputs depend on.
    pub definition_hash: String,
}

impl std::fmt::Debug for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Step")
            .field("id", &self.id)
            .field("uses", &self.uses)
            .field("needs", &self.needs)
            .finish_non_exhaustive()
    }
}

/// A runbook that compiled without a problem.
#[derive(Debug)]
pub struct Runbook {
    /// Its name.
    pub name: String,
    /// What it does.
    pub description: String,
    /// The file it came from, as given.
    pub file: Arc<str>,
    /// SHA-256 of the file's content, hex; a resumed run checks it.
    pub content_hash: String,
    /// Declared parameters.
    pub params: Vec<ParamDecl>,
    /// Steps in file order.
    pub steps: Vec<Step>,
    /// Step index by id.
    pub index: HashMap<String, usize>,
    /// The runbook's outputs, evaluated after the last step.
    pub outputs: Vec<(String, Template)>,
    /// The lock key, when runs must not overlap.
    pub lock: Option<Template>,
    /// What to do when a step fails.
    pub on_failure: OnFailure,
    /// The dependency graph.
    pub dag: Dag,
}

impl Runbook {
    /// The names of the parameters declared `secret: true`, in declaration order.
    pub fn secret_params(&self) -> Vec<&str> {
        self.params
            .iter()
            .filter(|p| p.secret)
            .map(|p| p.name.as_str())
            .collect()
    }
}

/// SHA-256 of a runbook's text, hex.
pub fn content_hash(source: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(source.as_bytes());
    let mut out = String::with_capacity(64);
    for b in digest.iter() {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    out
}

/// Compiles a runbook's text. `file` names it in diagnostics.
pub fn compile(file: &str, source: &str, registry: &Registry) -> Result<Runbook, Diagnostics> {
    let file: Arc<str> = Arc::from(file);
    let root = crate::yaml::parse(&file, source).map_err(|d| Diagnostics(vec![d]))?;
    let mut c = Compiler {
        file: file.clone(),
        errors: Vec::new(),
    };
    let runbook = c.runbook(&root, registry, content_hash(source));
    if c.errors.is_empty()
        && let Some(rb) = runbook
    {
        return Ok(rb);
    }
    c.errors.sort_by_key(|d| d.pos);
    c.errors.dedup();
    Err(Diagnostics(c.errors))
}

/// Reads a YAML tree field by field, collecting every problem (shared with `drflow.yaml`'s
/// reader in `triggers/config.rs`).
pub(crate) struct Compiler {
    pub(crate) file: Arc<str>,
    pub(crate) errors: Vec<Diagnostic>,
}

/// A step's `with:` as read: its entries (defaults of the step type appended), where each entry
/// is written (`None` for a default), and the keys given.
type WithBlock = (Vec<(String, Template)>, Vec<Option<Site>>, HashSet<String>);

/// A step as read, before its references are resolved.
struct RawStep<'a> {
    id: String,
    id_pos: Pos,
    pos: Pos,
    spec: Option<Arc<dyn StepType>>,
    uses: String,
    with: Vec<(String, Template)>,
    with_sites: Vec<Option<Site>>,
    with_keys: HashSet<String>,
    needs: Vec<(&'a str, Pos)>,
    condition: Condition,
    retry: RetryPolicy,
    timeout: Option<Duration>,
    continue_on_error: bool,
    definition_hash: String,
}

impl Compiler {
    pub(crate) fn err(&mut self, pos: Pos, message: impl Into<String>) -> &mut Diagnostic {
        self.errors
            .push(Diagnostic::new(self.file.clone(), pos, message));
        self.errors.last_mut().expect("just pushed")
    }

    pub(crate) fn hint(&mut self, pos: Pos, message: impl Into<String>, hint: impl Into<String>) {
        self.err(pos, message).hint = Some(hint.into());
    }

    /// Checks that `node` is a map and reports keys not in `known`.
    pub(crate) fn fields<'a>(
        &mut self,
        node: &'a Node,
        what: &str,
        known: &[&str],
    ) -> Option<&'a [(Node, Node)]> {
        let Some(entries) = node.as_map() else {
            self.hint(
                node.pos,
                format!("{what} must be a map, but this is {}", node.shape()),
                format!(
                    "write it as `key: value` lines; allowed keys: {}",
                    known.join(", ")
                ),
            );
            return None;
        };
        for (key, _) in entries {
            let name = key.as_str().unwrap_or_default();
            if !known.contains(&name) {
                self.hint(
                    key.pos,
                    format!("unknown field `{name}` in {what}"),
                    suggest(name, known),
                );
            }
        }
        Some(entries)
    }

    pub(crate) fn string(&mut self, node: &Node, what: &str) -> Option<String> {
        match &node.kind {
            NodeKind::Scalar { text, .. } if !node.is_null() => Some(text.clone()),
            _ => {
                self.err(
                    node.pos,
                    format!("{what} must be a string, but this is {}", node.shape()),
                );
                None
            }
        }
    }

    fn boolean(&mut self, node: &Node, what: &str) -> bool {
        match node.to_value() {
            Value::Bool(b) if matches!(node.kind, NodeKind::Scalar { plain: true, .. }) => b,
            _ => {
                self.hint(
                    node.pos,
                    format!("{what} must be true or false, but this is {}", node.shape()),
                    BOOL_HINT,
                );
                false
            }
        }
    }

    pub(crate) fn duration(&mut self, node: &Node, what: &str) -> Option<Duration> {
        let text = match node.to_value() {
            Value::String(s) => s,
            Value::Number(n) => n.to_string(),
            _ => {
                self.hint(
                    node.pos,
                    format!("{what} must be a duration, but this is {}", node.shape()),
                    "write e.g. `30s`, `5m` or `250ms`",
                );
                return None;
            }
        };
        match parse_duration(&text) {
            Ok(d) => Some(d),
            Err(e) => {
                self.hint(
                    node.pos,
                    format!("{what}: {e}"),
                    "durations are written like `250ms`, `30s`, `5m` or `1h30m`",
                );
                None
            }
        }
    }

    fn runbook(&mut self, root: &Node, registry: &Registry, hash: String) -> Option<Runbook> {
        if root.is_null() {
            self.hint(
                root.pos,
                "the runbook is empty",
                "start with `runbook: <name>` and a `steps:` list",
            );
            return None;
        }
        let entries = self.fields(root, "the runbook", TOP_FIELDS)?;
        let get = |k: &str| entries.iter().find(|(key, _)| key.as_str() == Some(k));
        let name = match get("runbook") {
            Some((_, v)) => self.string(v, "`runbook` (the name)").unwrap_or_default(),
            None => {
                self.hint(
                    root.pos,
                    "the runbook has no `runbook:` name",
                    "add `runbook: <name>` at the top",
                );
                String::new()
            }
        };
        let description = get("description")
            .and_then(|(_, v)| self.string(v, "`description`"))
            .unwrap_or_default();
        let params = get("params")
            .map(|(_, v)| self.params(v))
            .unwrap_or_default();
        let on_failure = match get("on_failure") {
            None => OnFailure::Stop,
            Some((_, v)) => match v.as_str() {
                Some("stop") => OnFailure::Stop,
                Some("rollback") => OnFailure::Rollback,
                _ => {
                    self.hint(
                        v.pos,
                        format!("unknown `on_failure` value {}", v.to_value()),
                        "use `stop` (the default) or `rollback`",
                    );
                    OnFailure::Stop
                }
            },
        };
        let lock = get("lock").and_then(|(_, v)| {
            let text = self.string(v, "`lock`")?;
            Some(Template::compile_text(
                &text,
                v.pos,
                matches!(v.kind, NodeKind::Scalar { plain: true, .. }),
                &self.file.clone(),
                &mut self.errors,
            ))
        });
        let raw_steps = match get("steps") {
            Some((_, v)) => self.steps(v, registry),
            None => {
                self.hint(
                    root.pos,
                    "the runbook has no `steps:`",
                    "add a `steps:` list with at least one step",
                );
                Vec::new()
            }
        };
        let outputs: Vec<(String, Template, Pos)> = match get("outputs") {
            None => Vec::new(),
            Some((_, v)) if v.is_null() => Vec::new(),
            Some((_, v)) => match v.as_map() {
                Some(entries) => entries
                    .iter()
                    .map(|(k, val)| {
                        (
                            k.as_str().unwrap_or_default().to_string(),
                            Template::compile(val, &self.file.clone(), &mut self.errors),
                            k.pos,
                        )
                    })
                    .collect(),
                None => {
                    self.err(
                        v.pos,
                        format!(
                            "`outputs` must be a map of names to expressions, but this is {}",
                            v.shape()
                        ),
                    );
                    Vec::new()
                }
            },
        };

        // Resolve `needs` into indices.
        let mut index: HashMap<String, usize> = HashMap::with_capacity(raw_steps.len());
        for (i, s) in raw_steps.iter().enumerate() {
            if let Some(&first) = index.get(&s.id) {
                let first_pos: Pos = raw_steps[first].id_pos;
                self.hint(
                    s.id_pos,
                    format!(
                        "duplicate step id `{}` (first used at line {})",
                        s.id, first_pos.line
                    ),
                    "give every step its own id",
                );
            } else if !s.id.is_empty() {
                index.insert(s.id.clone(), i);
            }
        }
        let ids: Vec<&str> = raw_steps.iter().map(|s| s.id.as_str()).collect();
        let mut needs: Vec<Vec<usize>> = Vec::with_capacity(raw_steps.len());
        for s in &raw_steps {
            let mut resolved = Vec::with_capacity(s.needs.len());
            for (name, pos) in &s.needs {
                match index.get(*name) {
                    Some(&j) if raw_steps[j].id == s.id => {
                        self.err(*pos, format!("step `{}` needs itself", s.id));
                    }
                    Some(&j) => {
                        if !resolved.contains(&j) {
                            resolved.push(j);
                        }
                    }
                    None => {
                        self.hint(
                            *pos,
                            format!(
                                "step `{}` needs `{name}`, but there is no step with that id",
                                s.id
                            ),
                            suggest(name, &ids),
                        );
                    }
                }
            }
            needs.push(resolved);
        }
        let dag = Dag::new(&needs);
        for cycle in dag.cycles() {
            let names: Vec<&str> = cycle.iter().map(|&i| raw_steps[i].id.as_str()).collect();
            let first = cycle[0];
            self.hint(
                raw_steps[first].id_pos,
                format!(
                    "the steps form a cycle: {} -> {}",
                    names.join(" -> "),
                    names[0]
                ),
                "remove one of these `needs` so the steps can run in some order",
            );
        }
        let acyclic = self
            .errors
            .iter()
            .all(|e| !e.message.contains("form a cycle"));

        // Check what expressions refer to.
        let param_names: Vec<&str> = params.iter().map(|p| p.name.as_str()).collect();
        for (i, s) in raw_steps.iter().enumerate() {
            let mut templates: Vec<&Template> = s.with.iter().map(|(_, t)| t).collect();
            if let Condition::If(t) = &s.condition {
                templates.push(t);
            }
            // Only the steps this one names are looked for upstream, and the search stops once
            // they are all found: checking every step's full ancestry was quadratic.
            let named: HashSet<usize> = templates
                .iter()
                .flat_map(|t| t.exprs())
                .flat_map(|e| e.refs.iter())
                .filter_map(|r| match r {
                    Ref::Step(id, _) | Ref::StepOutput(id, _) | Ref::StepStatus(id) => {
                        index.get(id).copied()
                    }
                    _ => None,
                })
                .collect();
            let upstream = (acyclic && !named.is_empty()).then(|| dag.ancestors_among(i, &named));
            for t in templates {
                self.check_refs(
                    t,
                    Some((i, upstream.as_ref())),
                    &raw_steps,
                    &index,
                    &param_names,
                    &ids,
                );
            }
        }
        for (_, t, _) in &outputs {
            self.check_refs(t, None, &raw_steps, &index, &param_names, &ids);
        }
        if let Some(t) = &lock {
            for e in t.exprs() {
                for r in &e.refs {
                    if !matches!(r, Ref::Param(_) | Ref::Env(_) | Ref::Run(_)) {
                        self.hint(
                            e.pos,
                            format!(
                                "`lock` may only use params, env and run, but `{}` uses more",
                                e.source
                            ),
                            "the lock is taken before any step runs",
                        );
                    }
                }
            }
            self.check_refs(t, None, &raw_steps, &index, &param_names, &ids);
        }

        // Check types where they are declared: an `if:` gives a bool, a typed step parameter
        // gets a value of its type, orderings compare values of one kind, and an expression
        // that reads no name at all can be evaluated.
        let param_types: HashMap<&str, ValueType> =
            params.iter().map(|p| (p.name.as_str(), p.ty)).collect();
        let names = |r: &Ref| declared_type(r, &param_types, &raw_steps, &index);
        for s in &raw_steps {
            if let Condition::If(t) = &s.condition {
                self.check_condition(t, &names, &format!("step `{}`", s.id));
            }
            let spec = s
                .spec
                .as_ref()
                .map(|t| t.spec())
                .filter(|spec| !spec.outputs_from_input);
            for (name, t) in &s.with {
                self.check_types(t, &names);
                if let (Some(p), Template::Expr(e)) = (spec.and_then(|spec| spec.param(name)), t)
                    && p.ty != ValueType::Any
                {
                    let ty = e.static_type(&names);
                    if !ty.fits(p.ty) {
                        self.hint(
                            e.pos,
                            format!(
                                "parameter `{name}` in step `{}` must be {} {}, but `{}` is {}",
                                s.id,
                                article(p.ty),
                                p.ty,
                                e.source,
                                ty.name()
                            ),
                            convert_hint(&e.source, ty, p.ty),
                        );
                    }
                }
            }
        }
        for (_, t, _) in &outputs {
            self.check_types(t, &names);
        }
        if let Some(t) = &lock {
            self.check_types(t, &names);
        }

        if !self.errors.is_empty() {
            return None;
        }
        let steps = raw_steps
            .into_iter()
            .zip(needs)
            .map(|(s, needs)| {
                let literal_input = s.with.iter().all(|(_, t)| t.is_literal()).then(|| {
                    s.with
                        .iter()
                        .map(|(k, t)| match t {
                            Template::Lit(v) => (k.clone(), v.clone()),
                            _ => (k.clone(), Value::Null),
                        })
                        .collect()
                });
                Step {
                    id: s.id,
                    uses: s.uses,
                    step_type: s.spec.expect("checked: no errors"),
                    with: s.with.into(),
                    with_sites: s.with_sites.into(),
                    literal_input,
                    needs,
                    condition: s.condition,
                    retry: s.retry,
                    timeout: s.timeout,
                    continue_on_error: s.continue_on_error,
                    pos: s.pos,
                    definition_hash: s.definition_hash,
                }
            })
            .collect();
        Some(Runbook {
            name,
            description,
            file: self.file.clone(),
            content_hash: hash,
            params,
            steps,
            index,
            outputs: outputs.into_iter().map(|(k, t, _)| (k, t)).collect(),
            lock,
            on_failure,
            dag,
        })
    }

    fn params(&mut self, node: &Node) -> Vec<ParamDecl> {
        if node.is_null() {
            return Vec::new();
        }
        let Some(entries) = node.as_map() else {
            self.err(
                node.pos,
                format!(
                    "`params` must be a map of names to declarations, but this is {}",
                    node.shape()
                ),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for (key, decl) in entries {
            let name = key.as_str().unwrap_or_default().to_string();
            if !is_name(&name) {
                self.hint(
                    key.pos,
                    format!("parameter name `{name}` is not a valid name"),
                    "use lowercase letters, digits and `_`, starting with a letter",
                );
            }
            let mut p = ParamDecl {
                name,
                ty: ValueType::String,
                default: None,
                description: String::new(),
                secret: false,
                pos: key.pos,
                default_pos: None,
            };
            let what = format!("parameter `{}`", p.name);
            if let Some(fields) = self.fields(decl, &what, PARAM_FIELDS) {
                let mut default_node = None;
                for (k, v) in fields {
                    match k.as_str().unwrap_or_default() {
                        "type" => match v.as_str().and_then(ValueType::parse) {
                            Some(t) => p.ty = t,
                            None => {
                                let names: Vec<&str> =
                                    ValueType::ALL.iter().map(|t| t.name()).collect();
                                let given = v.as_str().unwrap_or_default();
                                self.hint(
                                    v.pos,
                                    format!("unknown type `{given}` for {what}"),
                                    suggest(given, &names),
                                );
                            }
                        },
                        "default" => default_node = Some(v),
                        "description" => {
                            p.description = self.string(v, "`description`").unwrap_or_default()
                        }
                        "secret" => p.secret = self.boolean(v, "`secret`"),
                        _ => {}
                    }
                }
                if let Some(v) = default_node {
                    let value = v.to_value();
                    if !value.is_null() && !p.ty.accepts(&value) {
                        self.hint(
                            v.pos,
                            format!("the default of {what} is {}, not a {}", v.shape(), p.ty),
                            if p.ty == ValueType::Bool {
                                format!("change the default or the declared `type`; {BOOL_HINT}")
                            } else {
                                "change the default or the declared `type`".to_string()
                            },
                        );
                    }
                    p.default = Some(value);
                    p.default_pos = Some(v.pos);
                }
            }
            out.push(p);
        }
        out
    }

    fn steps<'a>(&mut self, node: &'a Node, registry: &Registry) -> Vec<RawStep<'a>> {
        let Some(items) = node.as_seq() else {
            self.hint(
                node.pos,
                format!("`steps` must be a list, but this is {}", node.shape()),
                "write each step as a `- id: …` item",
            );
            return Vec::new();
        };
        if items.is_empty() {
            self.hint(
                node.pos,
                "`steps` is empty; a runbook needs at least one step",
                "add a step, e.g. `- { id: hello, uses: core.log, with: { message: hi } }`",
            );
        }
        let type_names: Vec<&str> = registry.names().collect();
        items
            .iter()
            .enumerate()
            .filter_map(|(i, n)| self.step(i, n, registry, &type_names))
            .collect()
    }

    fn step<'a>(
        &mut self,
        i: usize,
        node: &'a Node,
        registry: &Registry,
        type_names: &[&str],
    ) -> Option<RawStep<'a>> {
        // Name the step by its id in messages when it has a usable one.
        let given_id = node
            .as_map()
            .and_then(|m| m.iter().find(|(k, _)| k.as_str() == Some("id")))
            .and_then(|(_, v)| v.as_str())
            .filter(|id| is_name(id));
        let what = match given_id {
            Some(id) => format!("step `{id}`"),
            None => format!("step {}", i + 1),
        };
        let entries = self.fields(node, &what, STEP_FIELDS)?;
        let get = |k: &str| entries.iter().find(|(key, _)| key.as_str() == Some(k));
        let (id, id_pos) = match get("id") {
            Some((_, v)) => {
                let id = self.string(v, "a step `id`").unwrap_or_default();
                if !id.is_empty() && !is_name(&id) {
                    self.hint(
                        v.pos,
                        format!("step id `{id}` is not a valid name"),
                        "use lowercase letters, digits and `_`, starting with a letter, so expressions can name it (`steps.<id>.outputs`)",
                    );
                }
                (id, v.pos)
            }
            None => {
                self.hint(node.pos, format!("{what} has no `id`"), "add `id: <name>`");
                (String::new(), node.pos)
            }
        };
        let label = if id.is_empty() {
            what.clone()
        } else {
            format!("step `{id}`")
        };
        let (uses, spec) = match get("uses") {
            Some((_, v)) => {
                let uses = self.string(v, "`uses`").unwrap_or_default();
                match registry.get(&uses) {
                    Some(t) => (uses, Some(t.clone())),
                    None => {
                        if !uses.is_empty() {
                            self.hint(
                                v.pos,
                                format!("unknown step type `{uses}` in {label}"),
                                match nearest(&uses, type_names.iter().copied()) {
                                    Some(near) => format!("did you mean `{near}`?"),
                                    None => "`drflow steps` lists every step type".to_string(),
                                },
                            );
                        }
                        (uses, None)
                    }
                }
            }
            None => {
                self.hint(
                    node.pos,
                    format!("{label} has no `uses`"),
                    "add `uses: <step type>`; `drflow steps` lists them",
                );
                (String::new(), None)
            }
        };
        let with_node = get("with").map(|(_, v)| v);
        let (with, with_sites, with_keys) = self.with(
            with_node,
            node.pos,
            &label,
            spec.as_deref().map(|s| s.spec()),
        );
        if let Some(t) = &spec {
            self.literal_rules(
                t.spec(),
                &with,
                &with_sites,
                with_node.map_or(node.pos, |n| n.pos),
                &label,
            );
        }
        let needs = match get("needs") {
            None => Vec::new(),
            Some((_, v)) => match &v.kind {
                NodeKind::Scalar { text, .. } if !v.is_null() => vec![(text.as_str(), v.pos)],
                NodeKind::Seq(items) => items
                    .iter()
                    .filter_map(|n| match n.as_str() {
                        Some(s) => Some((s, n.pos)),
                        None => {
                            self.err(
                                n.pos,
                                format!("`needs` holds step ids, but this is {}", n.shape()),
                            );
                            None
                        }
                    })
                    .collect(),
                _ => {
                    self.err(
                        v.pos,
                        format!(
                            "`needs` must be a list of step ids, but this is {}",
                            v.shape()
                        ),
                    );
                    Vec::new()
                }
            },
        };
        let condition = match get("if") {
            None => Condition::Default,
            Some((_, v)) => match v.to_value() {
                Value::String(s) if s.trim() == "always" || s.trim() == "${{ always }}" => {
                    Condition::Always
                }
                Value::Bool(b) => Condition::If(Template::Lit(Value::Bool(b))),
                Value::String(s) => {
                    // Like GitHub Actions, a bare expression is accepted without `${{ }}`.
                    let wrapped = !s.contains("${{");
                    let text = if wrapped {
                        format!("${{{{ {s} }}}}")
                    } else {
                        s
                    };
                    let plain = wrapped || matches!(v.kind, NodeKind::Scalar { plain: true, .. });
                    let template = Template::compile_text(
                        &text,
                        v.pos,
                        plain,
                        &self.file.clone(),
                        &mut self.errors,
                    );
                    self.condition(template, v.pos, &label)
                }
                _ => {
                    self.hint(
                        v.pos,
                        format!("`if` in {label} must be an expression or `always`"),
                        "write e.g. `if: ${{ params.dry_run == false }}` or `if: always`",
                    );
                    Condition::Default
                }
            },
        };
        let retry = get("retry")
            .map(|(_, v)| self.retry(v, &label))
            .unwrap_or_default();
        let timeout = get("timeout").and_then(|(_, v)| self.duration(v, "`timeout`"));
        if timeout == Some(Duration::ZERO) {
            self.hint(
                get("timeout").map(|(_, v)| v.pos).unwrap_or(node.pos),
                "`timeout` must be more than zero",
                "give each attempt a limit such as `90s` or `5m`, or leave `timeout` out for none",
            );
        }
        let continue_on_error = get("continue_on_error")
            .map(|(_, v)| self.boolean(v, "`continue_on_error`"))
            .unwrap_or(false);
        let definition = serde_json::json!({
            "uses": uses,
            "with": with_node.map(Node::to_value).unwrap_or(Value::Null),
        });
        let definition_hash = content_hash(&definition.to_string());
        Some(RawStep {
            definition_hash,
            id,
            id_pos,
            pos: node.pos,
            spec,
            uses,
            with,
            with_sites,
            with_keys,
            needs,
            condition,
            retry,
            timeout,
            continue_on_error,
        })
    }

    /// An `if:` must be one expression: text with expressions spliced in is a string, and a
    /// string is neither true nor false.
    fn condition(&mut self, template: Template, pos: Pos, label: &str) -> Condition {
        let Template::Interp(parts) = template else {
            return Condition::If(template);
        };
        let blank = |p: &Part| matches!(p, Part::Text(t) if t.trim().is_empty());
        let mut exprs: Vec<Part> = parts.into_iter().filter(|p| !blank(p)).collect();
        if let [Part::Expr(_)] = exprs.as_slice()
            && let Some(Part::Expr(e)) = exprs.pop()
        {
            return Condition::If(Template::Expr(Box::new(e)));
        }
        let joined: String = exprs
            .iter()
            .map(|p| match p {
                Part::Text(t) => t.as_str(),
                Part::Expr(e) => e.source.as_str(),
            })
            .collect::<String>();
        let joined = joined.trim();
        let example = if crate::expr::Expr::compile(joined, pos, &self.file).is_ok() {
            joined.to_string()
        } else {
            "params.a and params.b".to_string()
        };
        self.hint(
            pos,
            format!(
                "`if` in {label} is text with expressions spliced into it, which makes a string, not true or false"
            ),
            format!("write the whole condition inside one `${{{{ }}}}`: `if: ${{{{ {example} }}}}`"),
        );
        Condition::Default
    }

    fn with(
        &mut self,
        node: Option<&Node>,
        step_pos: Pos,
        label: &str,
        spec: Option<&StepSpec>,
    ) -> WithBlock {
        let mut out = Vec::new();
        let mut sites = Vec::new();
        let mut keys = HashSet::new();
        let entries: &[(Node, Node)] = match node {
            None => &[],
            Some(n) if n.is_null() => &[],
            Some(n) => match n.as_map() {
                Some(e) => e,
                None => {
                    self.err(
                        n.pos,
                        format!("`with` in {label} must be a map, but this is {}", n.shape()),
                    );
                    &[]
                }
            },
        };
        let file = self.file.clone();
        for (k, v) in entries {
            let name = k.as_str().unwrap_or_default();
            keys.insert(name.to_string());
            let template = Template::compile(v, &file, &mut self.errors);
            if let Some(spec) = spec
                && !spec.outputs_from_input
            {
                match spec.param(name) {
                    None => {
                        let names: Vec<&str> = spec.params.iter().map(|p| p.name).collect();
                        self.hint(
                            k.pos,
                            format!("unknown parameter `{name}` for {} in {label}", spec.name),
                            suggest(name, &names),
                        );
                    }
                    Some(p) => {
                        self.check_type(&template, v, p.ty, name, label);
                        if let Template::Lit(value) = &template
                            && p.ty.accepts(value)
                            && let Err(violation) = p.check(value)
                        {
                            // A list's bad item is pointed at, not the list.
                            let at = violation
                                .item
                                .and_then(|i| v.as_seq().and_then(|items| items.get(i)))
                                .map_or(v.pos, |n| n.pos);
                            let hint = violation
                                .hint
                                .clone()
                                .unwrap_or_else(|| format!("{}: {}", p.name, p.doc));
                            self.hint(
                                at,
                                format!("{} (in {label})", violation.sentence(p.name)),
                                hint,
                            );
                        }
                    }
                }
            }
            out.push((name.to_string(), template));
            sites.push(Some(Site::of(v)));
        }
        if let Some(spec) = spec {
            for p in &spec.params {
                if keys.contains(p.name) {
                    continue;
                }
                if p.required {
                    self.hint(
                        node.map(|n| n.pos).unwrap_or(step_pos),
                        format!(
                            "{label} ({}) is missing required parameter `{}`",
                            spec.name, p.name
                        ),
                        format!("add `{}: <{}>` under `with:` ({})", p.name, p.ty, p.doc),
                    );
                } else if let Some(d) = &p.default {
                    out.push((p.name.to_string(), Template::Lit(d.clone())));
                    sites.push(None);
                }
            }
        }
        (out, sites, keys)
    }

    /// Runs the step type's rules whose inputs are all literals (or defaults); the value check
    /// runs the others once parameters are known.
    fn literal_rules(
        &mut self,
        spec: &StepSpec,
        with: &[(String, Template)],
        sites: &[Option<Site>],
        with_pos: Pos,
        label: &str,
    ) {
        if spec.outputs_from_input || spec.rules.is_empty() {
            return;
        }
        let mut input = Outputs::new();
        for (k, t) in with {
            if let Template::Lit(v) = t {
                input.insert(k.clone(), v.clone());
            }
        }
        for rule in &spec.rules {
            if rule
                .reads
                .iter()
                .any(|r| with.iter().any(|(k, t)| k == r && !t.is_literal()))
            {
                continue;
            }
            let Some(values) = spec.rule_input(rule, &input) else {
                continue;
            };
            if let Err(v) = (rule.check)(&values) {
                let field = v.field.or_else(|| rule.reads.first().copied());
                let at = field
                    .and_then(|f| with.iter().position(|(k, _)| k == f))
                    .and_then(|i| sites.get(i).cloned().flatten())
                    .map_or(with_pos, |s| s.pos);
                let message = format!("{} (in {label})", v.message);
                match v.hint {
                    Some(h) => self.hint(at, message, h),
                    None => {
                        self.err(at, message);
                    }
                }
            }
        }
    }

    fn check_type(&mut self, t: &Template, node: &Node, ty: ValueType, name: &str, label: &str) {
        let ok = match t {
            Template::Lit(v) => ty.accepts(v),
            // Only known at run time; checked then.
            Template::Expr(_) => true,
            Template::Interp(_) => {
                matches!(ty, ValueType::String | ValueType::Duration | ValueType::Any)
            }
            Template::List(_) => matches!(ty, ValueType::List | ValueType::Any),
            Template::Map(_) => matches!(ty, ValueType::Map | ValueType::Any),
        };
        if !ok {
            self.hint(
                node.pos,
                format!(
                    "parameter `{name}` in {label} must be {} {ty}, but this is {}",
                    article(ty),
                    node.shape()
                ),
                type_hint(ty),
            );
        }
    }

    fn retry(&mut self, node: &Node, label: &str) -> RetryPolicy {
        let mut r = RetryPolicy::default();
        let what = format!("`retry` of {label}");
        let Some(fields) = self.fields(node, &what, RETRY_FIELDS) else {
            return r;
        };
        for (k, v) in fields {
            match k.as_str().unwrap_or_default() {
                "attempts" => match v.to_value().as_u64() {
                    Some(n) if (1..=100).contains(&n) => r.attempts = n as u32,
                    _ => self.hint(
                        v.pos,
                        format!("`attempts` in {what} must be a whole number from 1 to 100"),
                        "attempts counts the first try too: `attempts: 3` means up to two retries",
                    ),
                },
                "backoff" => {
                    if let Some(d) = self.duration(v, "`backoff`") {
                        r.backoff = d;
                    }
                }
                "max_backoff" => {
                    if let Some(d) = self.duration(v, "`max_backoff`") {
                        r.max_backoff = d;
                    }
                }
                "on" => match v.to_value() {
                    Value::Array(items) if items.iter().all(Value::is_string) => {
                        r.on = items
                            .iter()
                            .filter_map(|i| i.as_str().map(str::to_string))
                            .collect();
                    }
                    Value::String(s) => r.on = vec![s],
                    _ => {
                        self.hint(
                            v.pos,
                            format!("`on` in {what} must be a list of error kinds"),
                            "write e.g. `on: [throttled, timeout]`; a step's errors name their kind",
                        );
                    }
                },
                _ => {}
            }
        }
        if r.max_backoff < r.backoff {
            let at = fields
                .iter()
                .find(|(k, _)| k.as_str() == Some("max_backoff"))
                .map_or(node.pos, |(_, v)| v.pos);
            self.hint(
                at,
                format!("`max_backoff` in {what} is shorter than `backoff`"),
                "`max_backoff` caps the growing wait, so make it at least `backoff`",
            );
        }
        r
    }

    fn check_refs(
        &mut self,
        t: &Template,
        from: Option<(usize, Option<&HashSet<usize>>)>,
        steps: &[RawStep<'_>],
        index: &HashMap<String, usize>,
        params: &[&str],
        step_ids: &[&str],
    ) {
        for e in t.exprs() {
            for r in &e.refs {
                let (msg, hint): (String, String) = match r {
                    Ref::Param(p) if p.is_empty() || params.contains(&p.as_str()) => continue,
                    Ref::Param(p) => (
                        format!("unknown parameter `{p}` in expression `{}`", e.source),
                        match nearest(p, params.iter().copied()) {
                            Some(n) => format!("did you mean `params.{n}`?"),
                            None => "declare it under `params:` at the top of the runbook".into(),
                        },
                    ),
                    Ref::Run(f) if f.is_empty() || RUN_FIELDS.contains(&f.as_str()) => continue,
                    Ref::Run(f) => (
                        format!("`{}` refers to unknown field `run.{f}`", e.source),
                        suggest(f, &RUN_FIELDS),
                    ),
                    Ref::Env(_) => continue,
                    // The runbook's outputs run after every step; a step may only look at what
                    // it names, so that the compiler can check it is upstream.
                    Ref::AllSteps if from.is_none() => continue,
                    Ref::AllSteps => (
                        format!(
                            "`{}` uses `steps` without naming a step, so the compiler cannot check that what it reads is upstream",
                            e.source
                        ),
                        "name the step: `steps.<id>.outputs.<name>`, with `<id>` in this step's `needs`".into(),
                    ),
                    Ref::Unknown(root) => (
                        format!("`{}` refers to unknown name `{root}`", e.source),
                        format!(
                            "expressions start from {}; {}",
                            ROOTS.join(", "),
                            suggest(root, &ROOTS)
                        ),
                    ),
                    Ref::Step(s, field) => match (index.get(s), field.as_deref()) {
                        (None, _) => (
                            format!("`{}` refers to unknown step `{s}`", e.source),
                            suggest(s, step_ids),
                        ),
                        (Some(_), None | Some("outputs")) => {
                            self.check_upstream(e, s, from, index);
                            continue;
                        }
                        (Some(_), Some(f)) => (
                            format!(
                                "`{}` uses `steps.{s}.{f}`; a step has `outputs` and `status`",
                                e.source
                            ),
                            suggest(f, &["outputs", "status"]),
                        ),
                    },
                    Ref::StepStatus(s) => match index.get(s) {
                        None => (
                            format!("`{}` refers to unknown step `{s}`", e.source),
                            suggest(s, step_ids),
                        ),
                        Some(_) => {
                            self.check_upstream(e, s, from, index);
                            continue;
                        }
                    },
                    Ref::StepOutput(s, o) => match index.get(s) {
                        None => (
                            format!("`{}` refers to unknown step `{s}`", e.source),
                            suggest(s, step_ids),
                        ),
                        Some(&j) => {
                            let target = &steps[j];
                            if let Some(t) = &target.spec {
                                let spec = t.spec();
                                let known: Vec<&str> = if spec.outputs_from_input {
                                    target.with_keys.iter().map(String::as_str).collect()
                                } else {
                                    spec.outputs.iter().map(|o| o.name).collect()
                                };
                                if !known.contains(&o.as_str()) {
                                    self.hint(
                                        e.pos,
                                        format!(
                                            "`{}` refers to `{o}`, which step `{s}` ({}) does not output",
                                            e.source, spec.name
                                        ),
                                        match nearest(o, known.iter().copied()) {
                                            Some(n) => format!("did you mean `steps.{s}.outputs.{n}`?"),
                                            None if known.is_empty() => format!("{} has no outputs", spec.name),
                                            None => format!("its outputs are: {}", known.join(", ")),
                                        },
                                    );
                                }
                            }
                            self.check_upstream(e, s, from, index);
                            continue;
                        }
                    },
                };
                self.hint(e.pos, msg, hint);
            }
        }
    }

    /// An `if:` whose type is known must be a bool.
    fn check_condition(&mut self, t: &Template, names: &dyn Fn(&Ref) -> Ty, label: &str) {
        self.check_types(t, names);
        if let Template::Expr(e) = t {
            let ty = e.static_type(names);
            if !matches!(ty, Ty::Bool | Ty::Unknown) {
                self.hint(
                    e.pos,
                    format!(
                        "`if` in {label} must give true or false, but `{}` is {}",
                        e.source,
                        ty.name()
                    ),
                    convert_hint(&e.source, ty, ValueType::Bool),
                );
            }
        }
    }

    /// Filters and tests that do not exist, orderings between declared types that cannot be
    /// ordered, and expressions that read no name and fail whatever the run (they are evaluated here, so the size limit applies too).
    fn check_types(&mut self, t: &Template, names: &dyn Fn(&Ref) -> Ty) {
        for e in t.exprs() {
            let unknown = e.unknown_callables();
            let mut found = !unknown.is_empty();
            for (message, hint) in unknown {
                self.hint(e.pos, format!("`{}`: {message}", e.source), hint);
            }
            let problems = e.ordering_problems(names);
            found |= !problems.is_empty();
            for (message, hint) in problems {
                self.hint(e.pos, format!("`{}`: {message}", e.source), hint);
            }
            if !found && e.refs.is_empty() {
                let empty = minijinja::Value::from(std::collections::BTreeMap::<
                    String,
                    minijinja::Value,
                >::new());
                if let Err(message) = e.eval(&empty) {
                    self.hint(
                        e.pos,
                        message,
                        "this expression reads no name, so it fails in every run; fix it or write its value",
                    );
                }
            }
        }
    }

    fn check_upstream(
        &mut self,
        e: &crate::expr::Expr,
        target: &str,
        from: Option<(usize, Option<&HashSet<usize>>)>,
        index: &HashMap<String, usize>,
    ) {
        let Some((_, Some(upstream))) = from else {
            return;
        };
        let Some(&j) = index.get(target) else { return };
        if !upstream.contains(&j) {
            self.hint(
                e.pos,
                format!(
                    "`{}` uses step `{target}`, which is not upstream of this step, so it may not have run yet",
                    e.source
                ),
                format!("add `{target}` to this step's `needs`"),
            );
        }
    }
}

/// The declared type of what a name refers to (see `expr_types.rs`).
fn declared_type(
    r: &Ref,
    params: &HashMap<&str, ValueType>,
    steps: &[RawStep<'_>],
    index: &HashMap<String, usize>,
) -> Ty {
    match r {
        Ref::Param(p) => params
            .get(p.as_str())
            .map_or(Ty::Unknown, |t| Ty::declared(*t)),
        Ref::Env(v) if !v.is_empty() => Ty::String,
        Ref::StepStatus(_) => Ty::String,
        Ref::Run(f) => match f.as_str() {
            "id" | "started_at" => Ty::String,
            "elapsed_seconds" => Ty::Number,
            _ => Ty::Unknown,
        },
        Ref::StepOutput(s, o) => {
            let Some(step) = index.get(s).map(|&j| &steps[j]) else {
                return Ty::Unknown;
            };
            match step.spec.as_ref().map(|t| t.spec()) {
                // `core.set` outputs its input: a literal there has the literal's type.
                Some(spec) if spec.outputs_from_input => step
                    .with
                    .iter()
                    .find(|(k, _)| k == o)
                    .map_or(Ty::Unknown, |(_, t)| match t {
                        Template::Lit(v) => Ty::of_json(v),
                        _ => Ty::Unknown,
                    }),
                Some(spec) => spec
                    .outputs
                    .iter()
                    .find(|out| out.name == o)
                    .map_or(Ty::Unknown, |out| Ty::declared(out.ty)),
                None => Ty::Unknown,
            }
        }
        _ => Ty::Unknown,
    }
}

/// How to turn a value of type `have` into a `want`, for hints.
fn convert_hint(source: &str, have: Ty, want: ValueType) -> String {
    let wrapped = if source.contains(' ') {
        format!("({source})")
    } else {
        source.to_string()
    };
    match (want, have) {
        (ValueType::Bool, Ty::String) => format!(
            "compare it to get true or false: `${{{{ {source} == 'true' }}}}`, or `${{{{ {wrapped} | lower == 'true' }}}}` to accept `True` too"
        ),
        (ValueType::Bool, Ty::Int | Ty::Number) => {
            format!("compare it to get true or false, e.g. `${{{{ {source} != 0 }}}}`")
        }
        (ValueType::Bool, Ty::List | Ty::Map) => {
            format!("compare it to get true or false, e.g. `${{{{ {wrapped} | length > 0 }}}}`")
        }
        (ValueType::Int, _) => format!("convert it: `${{{{ {wrapped} | int }}}}`"),
        (ValueType::Number, _) => format!("convert it: `${{{{ {wrapped} | float }}}}`"),
        (ValueType::String, _) => format!("convert it: `${{{{ {wrapped} | string }}}}`"),
        (want, _) => type_hint(want),
    }
}

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

pub(crate) fn article(ty: ValueType) -> &'static str {
    match ty {
        ValueType::Int | ValueType::Any => "an",
        _ => "a",
    }
}

/// How to write a boolean, on every route (runbook, parameter file, `-p`): the YAML 1.2 core
/// schema's spellings, and nothing else.
pub const BOOL_HINT: &str = "write `true` or `false` without quotes (`True`, `TRUE`, `False` and `FALSE` also work; \
     `yes`, `no`, `on`, `off`, `1` and `0` are not booleans)";

/// How to write a value of a type, for hints.
pub fn type_hint(ty: ValueType) -> String {
    match ty {
        ValueType::String => "write text; quote it if it looks like a number or a bool".into(),
        ValueType::Int => "write a whole number without quotes, e.g. `3`".into(),
        ValueType::Number => "write a number without quotes, e.g. `2.5`".into(),
        ValueType::Bool => BOOL_HINT.into(),
        ValueType::Duration => "write a duration such as `30s`, `5m` or `250ms`".into(),
        ValueType::List => "write a list, e.g. `[a, b]`".into(),
        ValueType::Map => "write a map, e.g. `{key: value}`".into(),
        ValueType::Any => String::new(),
    }
}
