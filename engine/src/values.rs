//! The value check: every step input known before the run is checked against its step type's
//! declaration (type, constraints, rules) once the parameters are known, and each problem is
//! located where the value came from.
//!
//! The compiler already checks literal inputs. This pass takes the resolved parameters and
//! evaluates every input whose expressions read only `params` (and, at the start of a run,
//! `env` and `run.id`/`run.started_at`), or outputs that a step declares equal to one of its
//! inputs ([`OutputSpec::echoes`](crate::OutputSpec), e.g. a VPC's `cidr`). Inputs that read
//! other outputs are checked by the same declaration when their step starts.
//!
//! Where a problem is reported:
//! - a value written in the runbook: its line and column there;
//! - a value that is exactly `${{ params.X }}` (or derives from `X` alone): where `X` was set, its
//!   line in the `--params-file`, its `-p` flag, or its default in the runbook.
//!
//! One parameter usually feeds many steps (`env_suffix` feeds every cloud step): the same
//! problem found through several steps is reported once, naming them, and of several bounds of
//! one kind (each step's longest name allows a different suffix length) only the tightest.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use serde_json::Value;

use crate::compile::{Condition, Runbook, Site, type_hint};
use crate::constraint::{BoundKind, Violation};
use crate::diag::{Diagnostic, Pos};
use crate::expr::{Expr, Ref, Template};
use crate::scope::Scope;
use crate::secret_flow::SecretFlow;
use crate::secrets::{REDACTED, Secrets};
use crate::step::Outputs;

/// Where a runbook parameter's value came from.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamOrigin {
    /// Its `default:` in the runbook.
    Default,
    /// A `--params-file`, at the value's line and column.
    File {
        /// The file, as given.
        file: Arc<str>,
        /// Where the value is.
        pos: Pos,
    },
    /// A `-p name=value` flag: its place on the command line (from 1) and the value as written.
    Flag {
        /// 1 for the first `-p`.
        index: usize,
        /// The value as written after `=`.
        text: String,
    },
}

/// A runbook's parameters as resolved from defaults, a file and flags, with where each came from.
#[derive(Debug, Clone, Default)]
pub struct ResolvedParams {
    /// The values, by name.
    pub values: Outputs,
    /// Where each value came from.
    pub origins: BTreeMap<String, ParamOrigin>,
    /// Required parameters that were not given (only when resolving without requiring them, as
    /// `drflow validate` does).
    pub missing: Vec<String>,
}

/// When the value check runs, which decides what an expression may read before the run.
#[derive(Debug, Clone, Copy)]
pub enum CheckTime<'a> {
    /// `drflow validate`: parameters only; `env` and `run` are those of the run, not known yet.
    Validate,
    /// The start of `drflow run`: parameters, the environment and the run's id and start time.
    Run {
        /// The run's id.
        run_id: &'a str,
        /// When the run starts, on its clock ([`crate::RunOptions::clock`]): what
        /// `run.started_at` reads.
        started_at: crate::Timestamp,
    },
}

/// Why an input could not be checked before the run.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum SkipReason {
    /// It reads parameters that were not given (a required parameter, under `validate`).
    MissingParams(Vec<String>),
    /// It reads `env` or `run`, which only the run knows (under `validate`).
    ReadsEnvOrRun,
}

/// A check the value check could not make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedCheck {
    /// The step.
    pub step: String,
    /// Its input, or the rule's first input.
    pub input: String,
    /// Why.
    pub reason: SkipReason,
}

/// What the value check found.
#[derive(Debug, Clone, Default)]
pub struct ValueReport {
    /// Every problem, located; empty when every value known up front is acceptable.
    pub problems: Vec<Diagnostic>,
    /// How many inputs and rules were checked.
    pub checked: usize,
    /// The checks that could not be made before the run, and why.
    pub skipped: Vec<SkippedCheck>,
}

/// Checks every step input known before the run (see the module docs). `params` may lack
/// required parameters (`missing`): inputs that read them are skipped and listed.
pub fn check_values(
    runbook: &Runbook,
    params: &ResolvedParams,
    time: CheckTime<'_>,
) -> ValueReport {
    let mut checker = Checker {
        runbook,
        params,
        time,
        flow: SecretFlow::of(runbook),
        known_outputs: HashMap::new(),
        findings: Vec::new(),
        report: ValueReport::default(),
    };
    checker.run();
    let mut report = checker.report;
    report
        .skipped
        .sort_by_key(|s| runbook.index.get(&s.step).copied().unwrap_or(usize::MAX));
    report.problems = render(runbook, params, checker.findings);
    report
}

/// What makes a value unknown before the run.
#[derive(Debug, Default)]
struct Unknowns {
    /// It reads another step's output (not an echoed input): checked when the step starts.
    at_run: bool,
    missing: BTreeSet<String>,
    env_or_run: bool,
}

impl Unknowns {
    fn known(&self) -> bool {
        !self.at_run && self.missing.is_empty() && !self.env_or_run
    }

    fn reason(&self) -> Option<SkipReason> {
        if self.at_run {
            None
        } else if !self.missing.is_empty() {
            Some(SkipReason::MissingParams(
                self.missing.iter().cloned().collect(),
            ))
        } else if self.env_or_run {
            Some(SkipReason::ReadsEnvOrRun)
        } else {
            None
        }
    }
}

/// Where a value came from, before it is turned into a file and position.
#[derive(Debug, Clone, PartialEq)]
enum Located {
    /// Written in the runbook.
    Runbook(Pos),
    /// The step type's default: not in the runbook; the step is pointed at.
    StepDefault(Pos),
    /// A runbook parameter; `exact` when the value is the parameter itself.
    Param { name: String, exact: bool },
}

/// One problem before grouping.
struct Finding {
    located: Located,
    /// The sentence without its location context, subject first.
    sentence: String,
    /// A violation's sentence with the parameter as its subject, when located at one exactly.
    hint: Option<String>,
    step: String,
    key: String,
    subject: String,
    bound: Option<(BoundKind, f64)>,
}

struct Checker<'a> {
    runbook: &'a Runbook,
    params: &'a ResolvedParams,
    time: CheckTime<'a>,
    /// Which inputs read a secret: their values are never quoted, whatever expression made them.
    flow: SecretFlow,
    /// Outputs known before the run, per step index: echoed inputs.
    known_outputs: HashMap<usize, Outputs>,
    findings: Vec<Finding>,
    report: ValueReport,
}

impl Checker<'_> {
    fn run(&mut self) {
        let rb = self.runbook;
        let order = rb
            .dag
            .topo_order()
            .unwrap_or_else(|| (0..rb.steps.len()).collect());
        let (run_id, started_at) = match self.time {
            // Nothing reads `run` at validation time: such values are skipped as unknown.
            CheckTime::Validate => ("validate", 0.0),
            CheckTime::Run { run_id, started_at } => (run_id, started_at),
        };
        let scope = Scope::new(run_id, started_at, &self.params.values);
        for i in order {
            self.step(i, &scope);
        }
    }

    fn unknowns(&self, t: &Template) -> Unknowns {
        let mut u = Unknowns::default();
        for e in t.exprs() {
            for r in &e.refs {
                match r {
                    Ref::Param(p) if p.is_empty() => {
                        u.missing.extend(self.params.missing.iter().cloned());
                    }
                    Ref::Param(p) => {
                        if !self.params.values.contains_key(p) {
                            u.missing.insert(p.clone());
                        }
                    }
                    Ref::Env(_) => u.env_or_run |= matches!(self.time, CheckTime::Validate),
                    Ref::Run(f) if f == "id" || f == "started_at" => {
                        u.env_or_run |= matches!(self.time, CheckTime::Validate)
                    }
                    Ref::StepOutput(s, o) => {
                        let known = self
                            .runbook
                            .index
                            .get(s)
                            .and_then(|j| self.known_outputs.get(j))
                            .is_some_and(|outs| outs.contains_key(o));
                        u.at_run |= !known;
                    }
                    _ => u.at_run = true,
                }
            }
        }
        u
    }

    fn step(&mut self, i: usize, scope: &Scope) {
        let rb = self.runbook;
        let step = &rb.steps[i];
        let ctx = scope.context(0.0);
        // Errors of expressions that read only what is known now: the step would fail with them
        // when it starts, after earlier steps have done their work. Watched, so an expression
        // that reads a secret says only what kind of error it was.
        let derived = Secrets::default();
        let watch = self.flow.watch(&derived);
        let mut failed: Vec<(Option<Located>, String, Option<String>, String)> = Vec::new();
        if let Condition::If(t) = &step.condition
            && self.unknowns(t).known()
        {
            let located = Some(Located::Runbook(step.pos));
            match t.eval_watched(&ctx, &watch) {
                // The step will be skipped: its inputs are never used.
                Ok(Value::Bool(false)) => return,
                Ok(Value::Bool(true)) => {}
                _ if !reads_only_params(t) => {}
                Ok(other) => failed.push((
                    located,
                    format!(
                        "its `if` condition gives {}, not true or false",
                        crate::scheduler::json_kind(&other)
                    ),
                    Some(
                        "compare it to get a bool, e.g. `${{ params.x == 'yes' }}`, or declare the \
                         parameter `type: bool`"
                            .into(),
                    ),
                    "if".into(),
                )),
                Err(e) => failed.push((
                    located,
                    format!("its `if` condition cannot be evaluated: {e}"),
                    None,
                    "if".into(),
                )),
            }
        }
        let spec = step.step_type.spec();
        let mut input = Outputs::new();
        // Inputs whose value is known and not a literal (those the compiler checked).
        let mut evaluated: BTreeSet<&str> = BTreeSet::new();
        let mut unknown: HashMap<&str, Unknowns> = HashMap::new();
        for (key, t) in step.with.iter() {
            if let Template::Lit(v) = t {
                input.insert(key.clone(), v.clone());
                continue;
            }
            let u = self.unknowns(t);
            if !u.known() {
                unknown.insert(key.as_str(), u);
                continue;
            }
            match t.eval_watched(&ctx, &watch) {
                Ok(v) => {
                    input.insert(key.clone(), v);
                    evaluated.insert(key.as_str());
                }
                Err(_) if !reads_only_params(t) => {
                    unknown.insert(
                        key.as_str(),
                        Unknowns {
                            at_run: true,
                            ..Unknowns::default()
                        },
                    );
                }
                Err(e) => {
                    failed.push((
                        None,
                        format!("`{key}` cannot be evaluated: {e}"),
                        None,
                        key.clone(),
                    ));
                    // Nothing more to check on it, nor on the rules that read it.
                    unknown.insert(
                        key.as_str(),
                        Unknowns {
                            at_run: true,
                            ..Unknowns::default()
                        },
                    );
                }
            }
        }
        drop(watch);
        for (located, sentence, hint, key) in failed {
            let located = located.unwrap_or_else(|| self.locate(i, &key, None));
            self.findings.push(Finding {
                located,
                sentence,
                hint,
                step: step.id.clone(),
                subject: key.clone(),
                key,
                bound: None,
            });
        }
        for (key, u) in &unknown {
            // Only inputs with something to check: a declared type or constraint.
            let checked = !spec.outputs_from_input
                && spec
                    .param(key)
                    .is_some_and(|p| p.ty != crate::step::ValueType::Any || p.is_constrained());
            if checked && let Some(reason) = u.reason() {
                self.report.skipped.push(SkippedCheck {
                    step: step.id.clone(),
                    input: (*key).to_string(),
                    reason,
                });
            }
        }
        // What later steps may read: echoed inputs (every input of an `outputs_from_input` step).
        let mut echoed = Outputs::new();
        if spec.outputs_from_input {
            echoed = input.clone();
        } else {
            for o in &spec.outputs {
                if let Some(from) = o.echoes
                    && let Some(v) = input.get(from)
                {
                    echoed.insert(o.name.to_string(), v.clone());
                }
            }
        }
        if !echoed.is_empty() {
            scope.set_step(&step.id, "succeeded", Some(&echoed));
            self.known_outputs.insert(i, echoed);
        }
        if spec.outputs_from_input {
            return;
        }
        let mut bad_type: BTreeSet<&str> = BTreeSet::new();
        for key in &evaluated {
            let Some(p) = spec.param(key) else { continue };
            let Some(v) = input.get(*key).filter(|v| !v.is_null()) else {
                continue;
            };
            self.report.checked += 1;
            if self.flow.secret_inputs(i).iter().any(|n| n == key)
                && (!p.ty.accepts(v) || p.check(v).is_err())
            {
                // A value derived from a secret (`params.pw | upper`, a credential in `env`) is
                // not in the scrubber's list, and a violation or hint would quote it.
                if !p.ty.accepts(v) {
                    bad_type.insert(key);
                }
                let docs = p.constraint_docs();
                let hint = if docs.is_empty() {
                    type_hint(p.ty)
                } else {
                    format!("allowed: {}", docs.join("; "))
                };
                let mut violation = Violation::new(format!(
                    "is secret, and its value is not {} {} its declaration allows (the value is \
                     not shown)",
                    crate::compile::article(p.ty),
                    p.ty
                ));
                if !hint.is_empty() {
                    violation = violation.hint(hint);
                }
                self.violation(i, key, violation);
                continue;
            }
            if !p.ty.accepts(v) {
                bad_type.insert(key);
                let mut violation = Violation::new(format!(
                    "must be {} {}, but is {}",
                    crate::compile::article(p.ty),
                    p.ty,
                    shown(v)
                ));
                let hint = type_hint(p.ty);
                if !hint.is_empty() {
                    violation = violation.hint(hint);
                }
                self.violation(i, key, violation);
                continue;
            }
            if let Err(violation) = p.check(v) {
                self.violation(i, key, violation);
            }
        }
        for rule in &spec.rules {
            let waiting: Vec<&Unknowns> =
                rule.reads.iter().filter_map(|r| unknown.get(r)).collect();
            if !waiting.is_empty() {
                // Checked when the step starts, unless only missing parameters or `env`/`run`
                // (under `validate`) keep it from being checked now: then say so.
                if !waiting.iter().any(|u| u.at_run)
                    && let Some(reason) = waiting.iter().find_map(|u| u.reason())
                {
                    self.report.skipped.push(SkippedCheck {
                        step: step.id.clone(),
                        input: rule.reads.first().copied().unwrap_or_default().to_string(),
                        reason,
                    });
                }
                continue;
            }
            let reads_evaluated = rule
                .reads
                .iter()
                .any(|r| evaluated.contains(r) && !bad_type.contains(r));
            if !reads_evaluated {
                // Every input it reads is a literal: the compiler checked it.
                continue;
            }
            let Some(values) = spec.rule_input(rule, &input) else {
                continue;
            };
            self.report.checked += 1;
            if let Err(v) = (rule.check)(&values) {
                let field = v
                    .field
                    .or_else(|| rule.reads.first().copied())
                    .unwrap_or_default();
                let located = self.locate(i, field, None);
                let secret = self.flow.secret_inputs(i);
                let (sentence, hint) = if rule.reads.iter().any(|r| secret.iter().any(|n| n == r)) {
                    (
                        format!(
                            "secret values break the rule: {} (the values are not shown)",
                            rule.doc
                        ),
                        None,
                    )
                } else {
                    (v.message.clone(), v.hint.clone())
                };
                self.findings.push(Finding {
                    located,
                    sentence,
                    hint,
                    step: step.id.clone(),
                    key: field.to_string(),
                    subject: field.to_string(),
                    bound: None,
                });
            }
        }
    }

    fn violation(&mut self, i: usize, key: &str, mut v: Violation) {
        let located = self.locate(i, key, v.item);
        let subject = match &located {
            Located::Param { name, exact: true } => {
                // The parameter is the item: no item number to give.
                v.item = None;
                name.clone()
            }
            _ => key.to_string(),
        };
        if v.hint.is_none()
            && let Some(p) = self.runbook.steps[i].step_type.spec().param(key)
        {
            v.hint = Some(format!("{key}: {}", p.doc));
        }
        self.findings.push(Finding {
            sentence: v.sentence(&subject),
            hint: v.hint.clone(),
            located,
            step: self.runbook.steps[i].id.clone(),
            key: key.to_string(),
            subject,
            bound: v.bound,
        });
    }

    /// Where the value of step `i`'s input `key` (its item `item`) came from.
    fn locate(&self, i: usize, key: &str, item: Option<usize>) -> Located {
        let step = &self.runbook.steps[i];
        let Some(k) = step.with.iter().position(|(name, _)| name == key) else {
            return Located::StepDefault(step.pos);
        };
        let Some(site) = step.with_sites.get(k).and_then(Option::as_ref) else {
            return Located::StepDefault(step.pos);
        };
        self.locate_template(&step.with[k].1, site, item)
    }

    fn locate_template(&self, t: &Template, site: &Site, item: Option<usize>) -> Located {
        match (t, item) {
            (Template::Lit(_), Some(j)) => {
                Located::Runbook(site.items.get(j).copied().unwrap_or(site.pos))
            }
            (Template::Lit(_), None) => Located::Runbook(site.pos),
            (Template::List(items), Some(j)) if j < items.len() => {
                let item_site = Site {
                    pos: site.items.get(j).copied().unwrap_or(site.pos),
                    items: Vec::new(),
                };
                self.locate_template(&items[j], &item_site, None)
            }
            (Template::Expr(e), _) => {
                if let Some(name) = exact_param(e) {
                    return Located::Param {
                        name: name.to_string(),
                        exact: true,
                    };
                }
                if let Some((s, o)) = exact_output(e)
                    && let Some(&j) = self.runbook.index.get(s)
                {
                    let source = &self.runbook.steps[j];
                    let spec = source.step_type.spec();
                    let from = if spec.outputs_from_input {
                        Some(o)
                    } else {
                        spec.outputs
                            .iter()
                            .find(|out| out.name == o)
                            .and_then(|out| out.echoes)
                    };
                    if let Some(from) = from {
                        return self.locate(j, from, item);
                    }
                }
                self.derived(t, site)
            }
            _ => self.derived(t, site),
        }
    }

    /// A value computed by an expression: at the one parameter it derives from, if one.
    fn derived(&self, t: &Template, site: &Site) -> Located {
        let mut params = BTreeSet::new();
        self.params_read(t, &mut params, 0);
        if params.len() == 1
            && let Some(name) = params.pop_first()
        {
            return Located::Param { name, exact: false };
        }
        Located::Runbook(site.pos)
    }

    /// The parameters a template reads, through echoed outputs.
    fn params_read(&self, t: &Template, out: &mut BTreeSet<String>, depth: usize) {
        if depth > self.runbook.steps.len() {
            return;
        }
        for e in t.exprs() {
            for r in &e.refs {
                match r {
                    Ref::Param(p) if !p.is_empty() => {
                        out.insert(p.clone());
                    }
                    Ref::StepOutput(s, o) => {
                        let Some(&j) = self.runbook.index.get(s) else {
                            continue;
                        };
                        let source = &self.runbook.steps[j];
                        let spec = source.step_type.spec();
                        let from = if spec.outputs_from_input {
                            Some(o.as_str())
                        } else {
                            spec.outputs
                                .iter()
                                .find(|out| out.name == o)
                                .and_then(|out| out.echoes)
                        };
                        if let Some((_, t)) =
                            from.and_then(|f| source.with.iter().find(|(k, _)| k == f))
                        {
                            self.params_read(t, out, depth + 1);
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}

/// `X` when the expression is exactly `params.X`.
fn exact_param(e: &Expr) -> Option<&str> {
    match e.refs.as_slice() {
        [Ref::Param(p)] if e.source == format!("params.{p}") => Some(p),
        _ => None,
    }
}

/// `(S, O)` when the expression is exactly `steps.S.outputs.O`.
fn exact_output(e: &Expr) -> Option<(&str, &str)> {
    match e.refs.as_slice() {
        [Ref::StepOutput(s, o)] if e.source == format!("steps.{s}.outputs.{o}") => Some((s, o)),
        _ => None,
    }
}

/// A value in a message: strings in backticks, the rest as JSON.
fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => format!("the string `{s}`"),
        other => format!("`{other}`"),
    }
}

/// Groups findings (one problem through several steps is reported once; of several bounds of
/// one kind at one place, the tightest) and turns them into located diagnostics.
fn render(rb: &Runbook, params: &ResolvedParams, findings: Vec<Finding>) -> Vec<Diagnostic> {
    // The same sentence at the same place: one problem, several steps.
    struct Group {
        located: Located,
        sentence: String,
        hint: Option<String>,
        subject: String,
        bound: Option<(BoundKind, f64)>,
        uses: Vec<(String, String)>,
    }
    let mut groups: Vec<Group> = Vec::new();
    for f in findings {
        if let Some(g) = groups
            .iter_mut()
            .find(|g| g.located == f.located && g.sentence == f.sentence && g.hint == f.hint)
        {
            if !g.uses.iter().any(|(s, k)| *s == f.step && *k == f.key) {
                g.uses.push((f.step, f.key));
            }
            continue;
        }
        groups.push(Group {
            located: f.located,
            sentence: f.sentence,
            hint: f.hint,
            subject: f.subject,
            bound: f.bound,
            uses: vec![(f.step, f.key)],
        });
    }
    // Of bounds of one kind on one value, only the tightest.
    let mut keep = vec![true; groups.len()];
    for a in 0..groups.len() {
        for b in 0..groups.len() {
            if a == b || !keep[b] {
                continue;
            }
            let (ga, gb) = (&groups[a], &groups[b]);
            if let (Some((ka, va)), Some((kb, vb))) = (ga.bound, gb.bound)
                && ka == kb
                && ga.located == gb.located
                && ga.subject == gb.subject
                && (kb.tighter(vb, va) || (vb == va && b < a))
            {
                keep[a] = false;
                break;
            }
        }
    }
    // A value computed from a parameter that is itself refused follows from that one mistake
    // (`api.<domain_name>` when `domain_name` is): the parameter's own problem is the one to fix.
    for a in 0..groups.len() {
        if let Located::Param { name, exact: false } = &groups[a].located
            && groups.iter().zip(&keep).any(|(g, k)| {
                *k && matches!(&g.located, Located::Param { name: n, exact: true } if n == name)
            })
        {
            keep[a] = false;
        }
    }
    let secret_names = rb.secret_params();
    let secrets = Secrets::from_params(&params.values, &secret_names);
    let secret_values: Vec<String> = secret_names
        .iter()
        .filter_map(|n| params.values.get(*n))
        .map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .filter(|s| !s.is_empty())
        .collect();
    let scrub = |text: &str| -> String {
        let mut out = text.to_string();
        for s in &secret_values {
            out = out.replace(&format!("`{s}`"), &format!("`{REDACTED}`"));
        }
        secrets.scrub(&out).into_owned()
    };
    let mut out = Vec::new();
    for (mut g, _) in groups.into_iter().zip(keep).filter(|(_, k)| *k) {
        g.uses
            .sort_by_key(|(step, _)| rb.index.get(step).copied().unwrap_or(usize::MAX));
        let (file, pos, prefix, context) = place(rb, params, &g.located, &g.uses);
        let secret_param = matches!(&g.located, Located::Param { name, .. } if secret_names.contains(&name.as_str()));
        let mut d = Diagnostic::new(
            file.clone(),
            pos,
            scrub(&format!("{prefix}{}{context}", g.sentence)),
        );
        d.hint = g.hint.as_deref().map(scrub);
        // A parameter file may hold secrets on any line: never quote it back when it could.
        d.conceal_source = secret_param
            || (!secret_names.is_empty()
                && matches!(&g.located, Located::Param { name, .. }
                    if matches!(params.origins.get(name), Some(ParamOrigin::File { .. }))));
        out.push(d);
    }
    out
}

/// Whether a template reads nothing but parameters. Only its evaluation errors are refused before
/// the run: what reads `env` or `run` (directly, or through an echoed output) fails when its step
/// starts, with the run's own wording (an unset variable, a string `if:` from the environment).
fn reads_only_params(t: &Template) -> bool {
    t.exprs()
        .iter()
        .all(|e| e.refs.iter().all(|r| matches!(r, Ref::Param(_))))
}

/// The file, position, message prefix and location context of a group.
fn place(
    rb: &Runbook,
    params: &ResolvedParams,
    located: &Located,
    uses: &[(String, String)],
) -> (Arc<str>, Pos, String, String) {
    let steps = |ids: Vec<&str>| -> String {
        let shown: Vec<String> = ids.iter().take(3).map(|s| format!("`{s}`")).collect();
        let rest = ids.len().saturating_sub(3);
        match (shown.as_slice(), rest) {
            ([one], 0) => format!("step {one}"),
            (many, 0) => {
                let (last, init) = many.split_last().expect("two or more");
                format!("steps {} and {last}", init.join(", "))
            }
            (many, n) => format!("steps {} and {n} more", many.join(", ")),
        }
    };
    let ids: Vec<&str> = uses.iter().map(|(s, _)| s.as_str()).collect();
    match located {
        Located::Runbook(pos) => (
            rb.file.clone(),
            *pos,
            String::new(),
            format!(" (in {})", steps(ids)),
        ),
        Located::StepDefault(pos) => (
            rb.file.clone(),
            *pos,
            String::new(),
            format!(
                " (the default of `{}` in {})",
                uses.first().map(|(_, k)| k.as_str()).unwrap_or_default(),
                steps(ids)
            ),
        ),
        Located::Param { name, exact } => {
            let decl = rb.params.iter().find(|p| &p.name == name);
            let usage = if *exact {
                match uses.first() {
                    Some((_, key)) if key != name && uses.iter().all(|(_, k)| k == key) => {
                        format!("used as `{key}` by {}", steps(ids))
                    }
                    _ => format!("used by {}", steps(ids)),
                }
            } else {
                format!("in {}, computed from parameter `{name}`", steps(ids))
            };
            match params.origins.get(name) {
                Some(ParamOrigin::File { file, pos }) => {
                    (file.clone(), *pos, String::new(), format!(" ({usage})"))
                }
                Some(ParamOrigin::Flag { index, text }) => {
                    let shown = if decl.is_some_and(|d| d.secret) {
                        REDACTED
                    } else {
                        text.as_str()
                    };
                    (
                        Arc::from(format!("command line, -p flag {index}").as_str()),
                        Pos::new(0, 0),
                        format!("`-p {name}={shown}`: "),
                        format!(" ({usage})"),
                    )
                }
                Some(ParamOrigin::Default) | None => (
                    rb.file.clone(),
                    decl.map(|d| d.default_pos.unwrap_or(d.pos))
                        .unwrap_or_default(),
                    String::new(),
                    format!(" (the default of `{name}`, {usage})"),
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::*;
    use crate::constraint::RuleViolation;
    use crate::formats::{IPV4_CIDR, Ipv4Cidr};
    use crate::step::{Registry, StepContext, StepFuture, StepSpec, StepType, ValueType};

    struct Fake(StepSpec);

    impl StepType for Fake {
        fn spec(&self) -> &StepSpec {
            &self.0
        }

        fn run<'a>(&'a self, _: &'a StepContext, _: &'a Outputs) -> StepFuture<'a> {
            Box::pin(async { Ok(Outputs::new()) })
        }
    }

    fn registry() -> Registry {
        let mut r = Registry::new();
        r.register(Arc::new(Fake(
            StepSpec::new("t.net", "A network.")
                .required("cidr", ValueType::String, "Its block.")
                .format(IPV4_CIDR)
                .optional("count", ValueType::Int, json!(1), "How many.")
                .at_least(1.0)
                .at_most(5.0)
                .optional("name", ValueType::String, json!("n"), "A name.")
                .max_len(8)
                .output("cidr", ValueType::String, "Its block.")
                .echoes("cidr")
                .output("id", ValueType::String, "Its id."),
        )));
        r.register(Arc::new(Fake(
            StepSpec::new("t.short", "Short names.")
                .optional("name", ValueType::String, json!("n"), "A name.")
                .max_len(4),
        )));
        r.register(Arc::new(Fake(
            StepSpec::new("t.pair", "Two blocks.")
                .required("a", ValueType::String, "One.")
                .format(IPV4_CIDR)
                .required("b", ValueType::String, "Two.")
                .format(IPV4_CIDR)
                .rule("They do not overlap.", &["a", "b"], |input| {
                    let get = |k: &str| input[k].as_str().and_then(Ipv4Cidr::parse);
                    match (get("a"), get("b")) {
                        (Some(a), Some(b)) if a.overlaps(b) => {
                            Err(RuleViolation::at("b", "the blocks overlap").hint("move one"))
                        }
                        _ => Ok(()),
                    }
                }),
        )));
        r
    }

    fn compile(src: &str) -> Runbook {
        crate::compile("rb.yaml", src, &registry()).unwrap_or_else(|d| panic!("{d}"))
    }

    fn check(
        rb: &Runbook,
        file: Option<&str>,
        flags: &[(&str, &str)],
        time: CheckTime<'_>,
    ) -> ValueReport {
        let flags: Vec<(String, String)> = flags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let params = crate::params::resolve_located(
            rb,
            file.map(|f| ("p.yaml", f)),
            &flags,
            matches!(time, CheckTime::Run { .. }),
        )
        .unwrap_or_else(|d| panic!("{d}"));
        check_values(rb, &params, time)
    }

    fn one(report: &ValueReport) -> &Diagnostic {
        assert_eq!(report.problems.len(), 1, "{:#?}", report.problems);
        &report.problems[0]
    }

    const NET: &str = "runbook: r\nparams:\n  c: { type: string, default: 10.0.0.0/16 }\nsteps:\n  - id: a\n    uses: t.net\n    with: { cidr: '${{ params.c }}' }\n";

    #[test]
    fn a_literal_is_refused_by_the_compiler_at_the_value() {
        let src = "runbook: r\nsteps:\n  - id: a\n    uses: t.net\n    with: { cidr: 10.1.0.1/16, count: 9 }\n";
        let d = crate::compile("rb.yaml", src, &registry()).unwrap_err();
        assert_eq!(d.0.len(), 2, "{d}");
        assert_eq!(d.0[0].pos, Pos::new(5, 19));
        assert_eq!(
            d.0[0].message,
            "`cidr` has host bits set (`10.1.0.1/16`): AWS keeps only the network address, \
             10.1.0.0/16, so every later run would see the block as changed (in step `a`)"
        );
        assert_eq!(d.0[0].hint.as_deref(), Some("did you mean `10.1.0.0/16`?"));
        assert_eq!(
            d.0[1].message,
            "`count` must be from 1 to 5, not 9 (in step `a`)"
        );
    }

    #[test]
    fn a_value_from_a_parameter_file_is_located_at_its_line() {
        let rb = compile(NET);
        let r = check(
            &rb,
            Some("# env\nc: 10.1.0.1/16\n"),
            &[],
            CheckTime::Validate,
        );
        let d = one(&r);
        assert_eq!((&*d.file, d.pos), ("p.yaml", Pos::new(2, 4)));
        assert!(
            d.message
                .starts_with("`c` has host bits set (`10.1.0.1/16`)"),
            "{}",
            d.message
        );
        assert!(
            d.message.ends_with("(used as `cidr` by step `a`)"),
            "{}",
            d.message
        );
    }

    #[test]
    fn a_value_from_a_flag_names_the_flag() {
        let rb = compile(NET);
        let r = check(&rb, None, &[("c", "10.1.0.1/16")], CheckTime::Validate);
        let d = one(&r);
        assert_eq!(&*d.file, "command line, -p flag 1");
        assert!(
            d.message
                .starts_with("`-p c=10.1.0.1/16`: `c` has host bits set"),
            "{}",
            d.message
        );
    }

    #[test]
    fn a_bad_default_is_located_at_the_default() {
        let rb = compile(&NET.replace("10.0.0.0/16", "10.0.0.9/16"));
        let r = check(&rb, None, &[], CheckTime::Validate);
        let d = one(&r);
        assert_eq!((&*d.file, d.pos), ("rb.yaml", Pos::new(3, 31)));
        assert!(
            d.message
                .ends_with("(the default of `c`, used as `cidr` by step `a`)"),
            "{}",
            d.message
        );
    }

    #[test]
    fn a_value_computed_from_one_parameter_is_located_at_it() {
        let src = "runbook: r\nparams:\n  s: { type: string }\nsteps:\n  - id: a\n    uses: t.short\n    with: { name: 'x-${{ params.s }}' }\n";
        let rb = compile(src);
        let r = check(&rb, Some("s: long\n"), &[], CheckTime::Validate);
        let d = one(&r);
        assert_eq!((&*d.file, d.pos), ("p.yaml", Pos::new(1, 4)));
        assert_eq!(
            d.message,
            "`name` is 6 characters long, more than the 4 allowed (in step `a`, computed from parameter `s`)"
        );
    }

    #[test]
    fn a_value_computed_from_a_refused_parameter_is_not_reported_again() {
        let src = "runbook: r\nparams:\n  s: { type: string, default: abcdefg }\nsteps:\n  - id: a\n    uses: t.short\n    with: { name: '${{ params.s }}' }\n  - id: b\n    needs: [a]\n    uses: t.short\n    with: { name: 'x-${{ params.s }}' }\n";
        let rb = compile(src);
        let r = check(&rb, None, &[], CheckTime::Validate);
        assert_eq!(
            one(&r).message,
            "`s` is 7 characters long, more than the 4 allowed (the default of `s`, used as `name` by step `a`)"
        );
    }

    #[test]
    fn one_value_in_several_steps_is_one_problem_with_the_tightest_bound() {
        let src = "runbook: r\nparams:\n  s: { type: string }\nsteps:\n  - id: a\n    uses: t.net\n    with: { cidr: 10.0.0.0/16, name: '${{ params.s }}' }\n  - id: b\n    uses: t.short\n    with: { name: '${{ params.s }}' }\n  - id: c\n    uses: t.short\n    with: { name: '${{ params.s }}' }\n";
        let rb = compile(src);
        let r = check(&rb, None, &[("s", "much-too-long")], CheckTime::Validate);
        let d = one(&r);
        assert_eq!(
            d.message,
            "`-p s=much-too-long`: `s` is 13 characters long, more than the 4 allowed (used as `name` by steps `b` and `c`)"
        );
        assert_eq!(d.hint.as_deref(), Some("use at most 4 characters"));
    }

    const PAIR: &str = "runbook: r\nparams:\n  p: { type: string, default: 10.0.0.0/16 }\n  q: { type: string, default: 10.1.0.0/16 }\nsteps:\n  - id: net\n    uses: t.net\n    with: { cidr: '${{ params.p }}' }\n  - id: peer\n    uses: t.pair\n    needs: [net]\n    with:\n      a: ${{ steps.net.outputs.cidr }}\n      b: ${{ params.q }}\n";

    #[test]
    fn a_rule_sees_an_output_that_echoes_an_input_before_the_run() {
        let rb = compile(PAIR);
        let r = check(&rb, Some("q: 10.0.128.0/17\n"), &[], CheckTime::Validate);
        let d = one(&r);
        assert_eq!((&*d.file, d.pos), ("p.yaml", Pos::new(1, 4)));
        assert_eq!(d.message, "the blocks overlap (used as `b` by step `peer`)");
        assert_eq!(d.hint.as_deref(), Some("move one"));
        // The echoed value itself is located through the output, at the parameter.
        let r = check(&rb, None, &[("p", "10.0.0.1/16")], CheckTime::Validate);
        let d = one(&r);
        assert_eq!(&*d.file, "command line, -p flag 1");
        assert!(
            d.message.ends_with("(used by steps `net` and `peer`)"),
            "{}",
            d.message
        );
        assert!(
            check(&rb, None, &[], CheckTime::Validate)
                .problems
                .is_empty()
        );
    }

    #[test]
    fn what_cannot_be_known_before_the_run_is_skipped_and_said() {
        let src = "runbook: r\nparams:\n  c: { type: string }\nsteps:\n  - id: a\n    uses: t.net\n    with: { cidr: '${{ params.c }}' }\n  - id: b\n    uses: t.net\n    with: { cidr: '${{ env.DRFLOW_UNSET_VALUES_CIDR }}' }\n  - id: c\n    uses: t.net\n    needs: [a]\n    with: { cidr: '${{ steps.a.outputs.id }}' }\n";
        let rb = compile(src);
        let r = check(&rb, None, &[], CheckTime::Validate);
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        let reasons: Vec<(&str, &SkipReason)> = r
            .skipped
            .iter()
            .map(|s| (s.step.as_str(), &s.reason))
            .collect();
        assert_eq!(
            reasons,
            vec![
                ("a", &SkipReason::MissingParams(vec!["c".into()])),
                ("b", &SkipReason::ReadsEnvOrRun),
            ],
            "an input that reads another step's output is checked when the step starts, not skipped"
        );
        // At the start of a run the environment is known: an unset variable is left to the
        // step (it fails with its own error), a set one is checked.
        let r = check(
            &rb,
            None,
            &[("c", "10.0.0.0/16")],
            CheckTime::Run {
                run_id: "r1",
                started_at: 0.0,
            },
        );
        assert!(r.problems.is_empty() && r.skipped.is_empty(), "{r:?}");
    }

    #[test]
    fn a_step_whose_condition_is_false_is_not_checked() {
        let src = "runbook: r\nparams:\n  on: { type: bool, default: false }\n  c: { type: string, default: bad }\nsteps:\n  - id: a\n    uses: t.net\n    if: ${{ params.on }}\n    with: { cidr: '${{ params.c }}' }\n";
        let rb = compile(src);
        assert!(
            check(&rb, None, &[], CheckTime::Validate)
                .problems
                .is_empty()
        );
        assert_eq!(
            check(&rb, None, &[("on", "true")], CheckTime::Validate)
                .problems
                .len(),
            1
        );
    }

    #[test]
    fn a_secret_value_is_never_shown() {
        let src = "runbook: r\nparams:\n  c: { type: string, secret: true }\nsteps:\n  - id: a\n    uses: t.net\n    with: { cidr: '${{ params.c }}' }\n";
        let rb = compile(src);
        let r = check(&rb, Some("c: Sup3rS3cret\n"), &[], CheckTime::Validate);
        let d = one(&r);
        assert!(!d.message.contains("Sup3rS3cret"), "{}", d.message);
        assert!(
            d.message.contains("(the value is not shown)"),
            "{}",
            d.message
        );
        assert!(
            d.conceal_source,
            "the parameter file's line is not quoted back"
        );
        let r = check(&rb, None, &[("c", "Sup3rS3cret")], CheckTime::Validate);
        assert!(
            !one(&r).message.contains("Sup3rS3cret"),
            "{}",
            one(&r).message
        );
    }

    /// A value transformed from a secret is not in the scrubber's list (and may be too short
    /// for it): the value check names the input and what it allows, never the value.
    #[test]
    fn a_value_derived_from_a_secret_is_never_shown() {
        let src = "runbook: r\nparams:\n  c: { type: string, secret: true }\nsteps:\n  - id: a\n    uses: t.net\n    with: { cidr: '${{ params.c | upper }}', name: '${{ params.c[0:2] }}-too-long' }\n";
        let rb = compile(src);
        let r = check(&rb, None, &[("c", "sup3rs3cret")], CheckTime::Validate);
        assert_eq!(r.problems.len(), 2, "{:#?}", r.problems);
        for d in &r.problems {
            let text = format!("{} {:?}", d.message, d.hint);
            assert!(!text.contains("SUP3RS3CRET"), "{text}");
            assert!(!text.contains("su-too-long"), "{text}");
            assert!(text.contains("(the value is not shown)"), "{text}");
        }
    }

    /// An `if:` or an input that reads only parameters and would fail when its step starts (an
    /// ordering between a number and a string, known only from the parameters' values) is
    /// refused before the run, located; a secret's error does not quote it.
    #[test]
    fn an_expression_that_would_fail_at_run_time_is_refused_before_the_run() {
        let src = "runbook: r\nparams:\n  a: { type: any, default: 5 }\n  b: { type: any, default: '7' }\n  pw: { type: any, secret: true }\nsteps:\n  - id: s\n    uses: t.net\n    if: ${{ params.a < params.b }}\n    with: { cidr: 10.0.0.0/16 }\n  - id: t\n    uses: t.net\n    with: { cidr: \"${{ 'x' if params.a < params.b else 'y' }}\", name: \"${{ 'x' if params.pw < 3 else 'y' }}\" }\n  - id: u\n    uses: t.net\n    if: ${{ params.b }}\n    with: { cidr: 10.0.0.0/16 }\n";
        let rb = compile(src);
        let r = check(&rb, None, &[("pw", "sup3rs3cret")], CheckTime::Validate);
        let found: Vec<(Pos, &str)> = r
            .problems
            .iter()
            .map(|d| (d.pos, d.message.as_str()))
            .collect();
        assert_eq!(found.len(), 4, "{found:#?}");
        assert!(found.contains(&(
            Pos::new(7, 5),
            "its `if` condition cannot be evaluated: `params.a < params.b`: `<` orders two numbers or two strings, but `params.a` is a number and `params.b` is a string; convert the string to a number first: `params.b | int` or `params.b | float` (in step `s`)"
        )), "{found:#?}");
        assert!(
            found.contains(&(
                Pos::new(14, 5),
                "its `if` condition gives a string, not true or false (in step `u`)"
            )),
            "{found:#?}"
        );
        assert!(
            found.iter().any(|(_, m)| m.starts_with(
                "`cidr` cannot be evaluated: `'x' if params.a < params.b else 'y'`: `<` orders"
            )),
            "{found:#?}"
        );
        let secret = found
            .iter()
            .find(|(_, m)| m.contains("`name` cannot be evaluated"))
            .unwrap();
        assert!(
            secret.1.contains("the details are not shown"),
            "{}",
            secret.1
        );
        assert!(!secret.1.contains("sup3rs3cret"), "{}", secret.1);
    }

    /// A rule's message quotes the values it compares: one that reads a secret names the rule.
    #[test]
    fn a_rule_over_a_secret_does_not_quote_it() {
        let src = PAIR.replace(
            "q: { type: string, default: 10.1.0.0/16 }",
            "q: { type: string, secret: true }",
        );
        let rb = compile(&src);
        let r = check(&rb, None, &[("q", "10.0.128.0/17")], CheckTime::Validate);
        let d = one(&r);
        assert_eq!(
            d.message,
            "`-p q=***`: secret values break the rule: They do not overlap. (the values are not shown) (used as `b` by step `peer`)"
        );
        assert_eq!(d.hint, None);
    }

    #[test]
    // A declared string would be refused by the compiler already; an `any` parameter is only
    // known to be ill-typed once its value is.
    fn an_ill_typed_value_is_refused_before_the_run() {
        let src = "runbook: r\nparams:\n  n: { type: any, default: three }\nsteps:\n  - id: a\n    uses: t.net\n    with: { cidr: 10.0.0.0/16, count: '${{ params.n }}' }\n";
        let rb = compile(src);
        let r = check(&rb, None, &[], CheckTime::Validate);
        assert_eq!(
            one(&r).message,
            "`n` must be an int, but is the string `three` (the default of `n`, used as `count` by step `a`)"
        );
    }
}
