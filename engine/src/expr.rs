//! `${{ … }}` expressions inside runbook values.
//!
//! Expressions are Jinja expressions (minijinja): ops people know the syntax, and `${{` does not
//! collide with YAML flow mappings. A value that is exactly one `${{ … }}` keeps the type of its
//! result (bool, number, list, map); anything else is a string with the results spliced in.
//!
//! Every expression is parsed when the runbook is compiled, and the names it refers to
//! (`params.x`, `steps.a.outputs.b`, …) are extracted so the compiler can check them. What is
//! checked on top of Jinja when an expression runs (ordering between values of one kind, typed
//! `in`, bounded results) is in `expr_env.rs`, the syntax tree it works on in `expr_tree.rs`, and what
//! the compiler knows of types in `expr_types.rs`.

use std::collections::BTreeSet;
use std::sync::Arc;

use minijinja::Value as MjValue;
use minijinja::machinery::ast;
use serde_json::Value;

use crate::diag::{Diagnostic, Pos};
use crate::expr_env::{self, MAX_RESULT_BYTES, format_bytes, size_of};
use crate::expr_tree;
use crate::expr_types::{self, Ty};
use crate::yaml::{Node, NodeKind};

/// The four names an expression may start from.
pub const ROOTS: [&str; 4] = ["params", "steps", "run", "env"];

/// The fields of `run`.
pub const RUN_FIELDS: [&str; 3] = ["id", "started_at", "elapsed_seconds"];

/// A name an expression refers to, as far as it can be known before running.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Ref {
    /// `params.<name>`.
    Param(String),
    /// `steps.<id>.outputs.<name>`.
    StepOutput(String, String),
    /// `steps.<id>.status`.
    StepStatus(String),
    /// `steps.<id>` or `steps.<id>.outputs` used whole, or `steps.<id>.<other>` (an error).
    Step(String, Option<String>),
    /// `steps` used whole.
    AllSteps,
    /// `run.<field>` (or `run` whole: empty field).
    Run(String),
    /// `env.<NAME>`.
    Env(String),
    /// Any other root name (an error).
    Unknown(String),
}

/// One compiled expression.
pub struct Expr {
    /// The text between `${{` and `}}`, trimmed.
    pub source: String,
    /// Where the expression starts (best effort inside multi-line scalars).
    pub pos: Pos,
    /// The names it refers to.
    pub refs: Vec<Ref>,
    /// Whether it has an operator that runs checked (an ordering, `in` or `*`; see `expr_env.rs`).
    rewrite: bool,
    /// Whether it orders values or looks for one in another anywhere (an operator or a test such
    /// as `is lt` or `is in`).
    orders: bool,
    // Not kept compiled: minijinja preallocates about 10 KB of instruction buffers per
    // expression, which made a 100k-step runbook of expressions take 1.3 GiB. Compiling again
    // when evaluating costs a few microseconds, once per step.
}

impl std::fmt::Debug for Expr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "${{{{ {} }}}}", self.source)
    }
}

impl Expr {
    /// Compiles one expression.
    pub fn compile(source: &str, pos: Pos, file: &Arc<str>) -> Result<Expr, Diagnostic> {
        let source = source.trim().to_string();
        if source.is_empty() {
            return Err(
                Diagnostic::new(file.clone(), pos, "empty expression `${{ }}`")
                    .with_hint("write a name such as `${{ params.env_suffix }}`"),
            );
        }
        let (refs, rewrite, orders) = {
            let tree = expr_tree::parse(&source).map_err(|e| {
                Diagnostic::new(
                    file.clone(),
                    pos,
                    format!(
                        "invalid expression `{source}`: {}",
                        e.detail().unwrap_or("syntax error")
                    ),
                )
                .with_hint("expressions use Jinja syntax, e.g. `${{ steps.a.outputs.b == 'x' }}`")
            })?;
            let mut names = BTreeSet::new();
            names_in(&tree, &mut names);
            let refs = names.iter().map(|n| classify(n)).collect();
            (
                refs,
                expr_tree::needs_rewrite(&tree),
                expr_types::orders(&tree),
            )
        };
        Ok(Expr {
            source,
            pos,
            refs,
            rewrite,
            orders,
        })
    }

    /// Evaluates the expression in a scope. Fails when it reads a value that does not exist,
    /// orders values of different kinds, looks for a value where it cannot be (`1 in '10'`,
    /// anything in a number), or builds or gives a value over [`MAX_RESULT_BYTES`].
    pub fn eval(&self, scope: &MjValue) -> Result<Value, String> {
        self.eval_watched(scope, &Unwatched)
    }

    /// Evaluates the expression; when `watch` says it reads a secret, its result is shown to
    /// `watch` and an error says only what kind of error it was (minijinja's details may quote
    /// a value).
    pub(crate) fn eval_watched(&self, scope: &MjValue, watch: &dyn Watch) -> Result<Value, String> {
        let secret = watch.reads_secret(self);
        let value = expr_env::evaluate(&self.source, self.rewrite, scope.clone()).map_err(|e| {
            if secret && e.kind() != minijinja::ErrorKind::UndefinedError {
                return format!(
                    "`{}`: {} (the details are not shown: the expression reads a secret)",
                    self.source,
                    e.kind()
                );
            }
            let detail = describe(&e);
            // A checked operator names the part it is about, which may be the whole.
            if detail.starts_with(&format!("`{}` ", self.source)) {
                detail
            } else {
                format!("`{}`: {detail}", self.source)
            }
        })?;
        if value.is_undefined() {
            return Err(format!(
                "`{}` refers to a value that does not exist (a skipped step's output, a missing key or an unset environment variable)",
                self.source
            ));
        }
        let size = size_of(&value, MAX_RESULT_BYTES + 1);
        if size > MAX_RESULT_BYTES {
            return Err(too_big(&self.source, size));
        }
        let value = to_json(&value).map_err(|e| format!("`{}`: {e}", self.source))?;
        if secret {
            watch.secret_value(&value);
        }
        Ok(value)
    }

    /// The dotted names it reads, written out in full (`event.detail.alarmName`), sorted: for
    /// checkers whose roots are not a runbook's (`drflow.yaml`'s `event`, `signals`, `trigger`).
    pub(crate) fn names(&self) -> Vec<String> {
        let mut names = BTreeSet::new();
        if let Ok(tree) = expr_tree::parse(&self.source) {
            names_in(&tree, &mut names);
        }
        names.into_iter().collect()
    }

    /// Its type as far as the compiler can tell, given the types of the names it reads.
    pub(crate) fn static_type(&self, names: &dyn Fn(&Ref) -> Ty) -> Ty {
        match expr_tree::parse(&self.source) {
            Ok(tree) => expr_types::infer(&tree, names),
            Err(_) => Ty::Unknown,
        }
    }

    /// Each filter or test it names that does not exist, as a message and a hint. minijinja
    /// finds out only when the filter is applied, which would fail the step at run time.
    pub(crate) fn unknown_callables(&self) -> Vec<(String, String)> {
        let Ok(tree) = expr_tree::parse(&self.source) else {
            return Vec::new();
        };
        let mut found = Vec::new();
        callables(&tree, &mut found);
        let mut out: Vec<(String, String)> = Vec::new();
        for c in found {
            let (what, name, is_filter) = match c {
                Callable::Filter(n) => ("filter", n, true),
                Callable::Test(n) => ("test", n, false),
            };
            let exists = |n: &str| {
                if is_filter {
                    expr_env::has_filter(n)
                } else {
                    expr_env::has_test(n)
                }
            };
            let names = if is_filter {
                expr_env::FILTER_NAMES
            } else {
                expr_env::TEST_NAMES
            };
            if exists(&name) {
                continue;
            }
            let message = format!("there is no {what} `{name}`");
            if out.iter().any(|(m, _)| *m == message) {
                continue;
            }
            let known: Vec<&str> = names.iter().copied().filter(|n| exists(n)).collect();
            let hint = match crate::diag::nearest(&name, known.iter().copied()) {
                Some(near) => format!("did you mean `{near}`?"),
                None => format!("the {what}s are: {}", known.join(", ")),
            };
            out.push((message, hint));
        }
        out
    }

    /// Each ordering in it whose operands' declared types cannot be ordered, and each `in` whose
    /// needle's declared type cannot be in its container's, as a message and a hint.
    pub(crate) fn ordering_problems(&self, names: &dyn Fn(&Ref) -> Ty) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if self.orders
            && let Ok(tree) = expr_tree::parse(&self.source)
        {
            expr_types::ordering_problems(&tree, &self.source, names, &mut out);
        }
        out
    }
}

/// A filter or test an expression names: `x | name`, `x is name`, and the names given as text
/// to `select`, `reject`, `selectattr`, `rejectattr` (tests) and `map` (a filter).
enum Callable {
    Filter(String),
    Test(String),
}

fn callables(e: &ast::Expr<'_>, out: &mut Vec<Callable>) {
    // The n-th positional argument, when it is written as text.
    let text_arg = |args: &[ast::CallArg<'_>], n: usize| {
        args.iter()
            .filter_map(|a| match a {
                ast::CallArg::Pos(x) => Some(x),
                _ => None,
            })
            .nth(n)
            .and_then(|x| match x {
                ast::Expr::Const(c) => c.value.as_str().map(str::to_string),
                _ => None,
            })
    };
    match e {
        ast::Expr::Filter(f) => {
            out.push(Callable::Filter(f.name.to_string()));
            let named = match f.name {
                "select" | "reject" => text_arg(&f.args, 0).map(Callable::Test),
                "selectattr" | "rejectattr" => text_arg(&f.args, 1).map(Callable::Test),
                "map" => text_arg(&f.args, 0).map(Callable::Filter),
                _ => None,
            };
            out.extend(named);
        }
        ast::Expr::Test(t) => out.push(Callable::Test(t.name.to_string())),
        _ => {}
    }
    expr_tree::each_child(e, &mut |c| callables(c, out));
}

fn too_big(source: &str, size: usize) -> String {
    format!(
        "`{source}` gives a value of about {}, over the limit of {} on one value; \
         have a step produce large data instead of an expression",
        format_bytes(size),
        format_bytes(MAX_RESULT_BYTES)
    )
}

/// The names an expression reads: a variable, or a chain of attribute lookups on one written
/// out in full (`steps.a.outputs.b`).
fn names_in(e: &ast::Expr<'_>, out: &mut BTreeSet<String>) {
    match e {
        ast::Expr::Var(v) => {
            out.insert(v.id.to_string());
        }
        ast::Expr::GetAttr(_) if let Some(name) = expr_types::dotted(e) => {
            out.insert(name);
        }
        _ => expr_tree::each_child(e, &mut |c| names_in(c, out)),
    }
}

/// Watches evaluations on behalf of secrecy (see `crate::secret_flow::SecretFlow`).
pub(crate) trait Watch {
    /// Whether the expression reads a secret, so that its result is one.
    fn reads_secret(&self, expr: &Expr) -> bool;
    /// Called with the result of each expression that reads a secret.
    fn secret_value(&self, value: &Value);
}

/// No secrets to watch for.
struct Unwatched;

impl Watch for Unwatched {
    fn reads_secret(&self, _: &Expr) -> bool {
        false
    }
    fn secret_value(&self, _: &Value) {}
}

fn describe(e: &minijinja::Error) -> String {
    match e.kind() {
        minijinja::ErrorKind::UndefinedError => {
            "refers to a value that does not exist (a skipped step's output, a missing key or an unset environment variable)"
                .to_string()
        }
        _ => e
            .detail()
            .map(str::to_string)
            .unwrap_or_else(|| e.to_string()),
    }
}

/// What a dotted name refers to.
pub(crate) fn classify(name: &str) -> Ref {
    let parts: Vec<&str> = name.split('.').collect();
    match parts.as_slice() {
        ["params", p, ..] => Ref::Param((*p).into()),
        ["params"] => Ref::Param(String::new()),
        ["steps"] => Ref::AllSteps,
        ["steps", s, "outputs", o, ..] => Ref::StepOutput((*s).into(), (*o).into()),
        ["steps", s, "status", ..] => Ref::StepStatus((*s).into()),
        ["steps", s, f, ..] => Ref::Step((*s).into(), Some((*f).into())),
        ["steps", s] => Ref::Step((*s).into(), None),
        ["run", f, ..] => Ref::Run((*f).into()),
        ["run"] => Ref::Run(String::new()),
        ["env", v, ..] => Ref::Env((*v).into()),
        ["env"] => Ref::Env(String::new()),
        [root, ..] => Ref::Unknown((*root).into()),
        [] => Ref::Unknown(String::new()),
    }
}

/// Converts an expression's result to JSON.
pub fn to_json(value: &MjValue) -> Result<Value, String> {
    if value.is_undefined() {
        return Ok(Value::Null);
    }
    serde_json::to_value(value).map_err(|e| e.to_string())
}

/// Converts JSON to a value expressions can use.
pub fn from_json(value: &Value) -> MjValue {
    MjValue::from(minijinja::value::Serde(value))
}

/// A runbook value that may hold expressions, compiled.
#[derive(Debug)]
pub enum Template {
    /// No expression anywhere inside: used as is.
    Lit(Value),
    /// Exactly one `${{ }}`: the result keeps its type.
    Expr(Box<Expr>),
    /// Text with expressions spliced in: always a string.
    Interp(Vec<Part>),
    /// A list with expressions somewhere inside.
    List(Vec<Template>),
    /// A map with expressions somewhere inside.
    Map(Vec<(String, Template)>),
}

/// A piece of an interpolated string.
#[derive(Debug)]
pub enum Part {
    /// Literal text.
    Text(String),
    /// An expression whose result is written as text.
    Expr(Expr),
}

impl Template {
    /// Compiles a YAML node; expression errors go to `errors` (the result is then unusable, but
    /// compilation goes on to find more problems).
    pub fn compile(node: &Node, file: &Arc<str>, errors: &mut Vec<Diagnostic>) -> Template {
        if !has_expr(node) {
            return Template::Lit(node.to_value());
        }
        match &node.kind {
            NodeKind::Scalar { text, plain } => compile_str(text, node.pos, *plain, file, errors),
            NodeKind::Seq(items) => Template::List(
                items
                    .iter()
                    .map(|n| Template::compile(n, file, errors))
                    .collect(),
            ),
            NodeKind::Map(entries) => Template::Map(
                entries
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.as_str().unwrap_or_default().to_string(),
                            Template::compile(v, file, errors),
                        )
                    })
                    .collect(),
            ),
        }
    }

    /// Compiles a bare string (a runbook `if:` or `lock:`); `plain` says whether the YAML
    /// scalar it came from was unquoted, so positions inside it are right.
    pub fn compile_text(
        text: &str,
        pos: Pos,
        plain: bool,
        file: &Arc<str>,
        errors: &mut Vec<Diagnostic>,
    ) -> Template {
        if !text.contains("${{") {
            return Template::Lit(Value::String(text.to_string()));
        }
        compile_str(text, pos, plain, file, errors)
    }

    /// Every expression inside, in order.
    pub fn exprs(&self) -> Vec<&Expr> {
        let mut out = Vec::new();
        self.collect(&mut out);
        out
    }

    fn collect<'a>(&'a self, out: &mut Vec<&'a Expr>) {
        match self {
            Template::Lit(_) => {}
            Template::Expr(e) => out.push(e),
            Template::Interp(parts) => out.extend(parts.iter().filter_map(|p| match p {
                Part::Expr(e) => Some(e),
                Part::Text(_) => None,
            })),
            Template::List(items) => items.iter().for_each(|t| t.collect(out)),
            Template::Map(entries) => entries.iter().for_each(|(_, t)| t.collect(out)),
        }
    }

    /// Whether the template holds any expression.
    pub fn is_literal(&self) -> bool {
        matches!(self, Template::Lit(_))
    }

    /// Evaluates the template in a scope.
    pub fn eval(&self, scope: &MjValue) -> Result<Value, String> {
        self.eval_watched(scope, &Unwatched)
    }

    /// [`Template::eval`], showing `watch` what its expressions that read a secret evaluate to.
    pub(crate) fn eval_watched(&self, scope: &MjValue, watch: &dyn Watch) -> Result<Value, String> {
        match self {
            Template::Lit(v) => Ok(v.clone()),
            Template::Expr(e) => e.eval_watched(scope, watch),
            Template::Interp(parts) => {
                let mut out = String::new();
                for part in parts {
                    match part {
                        Part::Text(t) => out.push_str(t),
                        Part::Expr(e) => match e.eval_watched(scope, watch)? {
                            Value::String(s) => out.push_str(&s),
                            Value::Null => {}
                            other => out.push_str(&other.to_string()),
                        },
                    }
                    if out.len() > MAX_RESULT_BYTES {
                        let parts: Vec<String> = self
                            .exprs()
                            .iter()
                            .map(|e| format!("`${{{{ {} }}}}`", e.source))
                            .collect();
                        return Err(format!(
                            "the text with {} spliced in comes to about {}, over the limit of {} \
                             on one value; have a step produce large data instead of an expression",
                            parts.join(", "),
                            format_bytes(out.len()),
                            format_bytes(MAX_RESULT_BYTES)
                        ));
                    }
                }
                Ok(Value::String(out))
            }
            Template::List(items) => items
                .iter()
                .map(|t| t.eval_watched(scope, watch))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            Template::Map(entries) => entries
                .iter()
                .map(|(k, t)| t.eval_watched(scope, watch).map(|v| (k.clone(), v)))
                .collect::<Result<serde_json::Map<_, _>, _>>()
                .map(Value::Object),
        }
    }
}

fn has_expr(node: &Node) -> bool {
    match &node.kind {
        NodeKind::Scalar { text, .. } => text.contains("${{"),
        NodeKind::Seq(items) => items.iter().any(has_expr),
        NodeKind::Map(entries) => entries.iter().any(|(_, v)| has_expr(v)),
    }
}

fn compile_str(
    text: &str,
    pos: Pos,
    plain: bool,
    file: &Arc<str>,
    errors: &mut Vec<Diagnostic>,
) -> Template {
    let mut parts = Vec::new();
    let mut rest = text;
    let mut offset = 0usize;
    // Quoted scalars start one column before their text.
    let base_col = pos.col + usize::from(!plain);
    while let Some(start) = rest.find("${{") {
        if start > 0 {
            parts.push(Part::Text(rest[..start].to_string()));
        }
        let after = &rest[start + 3..];
        let expr_pos = if text.contains('\n') {
            pos
        } else {
            Pos::new(pos.line, base_col + offset + start)
        };
        let Some(end) = after.find("}}") else {
            errors.push(
                Diagnostic::new(file.clone(), expr_pos, "`${{` is never closed with `}}`")
                    .with_hint("write the expression as `${{ … }}`"),
            );
            return Template::Lit(Value::Null);
        };
        match Expr::compile(&after[..end], expr_pos, file) {
            Ok(e) => parts.push(Part::Expr(e)),
            Err(d) => errors.push(d),
        }
        let consumed = start + 3 + end + 2;
        offset += consumed;
        rest = &rest[consumed..];
    }
    if !rest.is_empty() {
        parts.push(Part::Text(rest.to_string()));
    }
    if parts.len() == 1
        && matches!(parts[0], Part::Expr(_))
        && let Some(Part::Expr(e)) = parts.pop()
    {
        return Template::Expr(Box::new(e));
    }
    Template::Interp(parts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use minijinja::context;

    fn file() -> Arc<str> {
        Arc::from("t.yaml")
    }

    fn tpl(src: &str) -> Template {
        let node = crate::yaml::parse(&file(), src).unwrap();
        let mut errors = Vec::new();
        let t = Template::compile(&node, &file(), &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        t
    }

    #[test]
    fn a_lone_expression_keeps_its_type() {
        let scope = context! { params => context!{ n => 3, on => true } };
        assert_eq!(tpl("${{ params.n + 1 }}").eval(&scope).unwrap(), 4);
        assert_eq!(tpl("${{ not params.on }}").eval(&scope).unwrap(), false);
        assert_eq!(tpl("\"n=${{ params.n }}!\"").eval(&scope).unwrap(), "n=3!");
        assert_eq!(
            tpl("{a: [x, '${{ params.n }}']}").eval(&scope).unwrap(),
            serde_json::json!({"a": ["x", 3]})
        );
    }

    #[test]
    fn finds_the_names_an_expression_uses() {
        let e = Expr::compile(
            "steps.a.outputs.b and params.x or run.id == env.HOME or foo",
            Pos::new(1, 1),
            &file(),
        )
        .unwrap();
        assert_eq!(
            e.refs,
            vec![
                Ref::Env("HOME".into()),
                Ref::Unknown("foo".into()),
                Ref::Param("x".into()),
                Ref::Run("id".into()),
                Ref::StepOutput("a".into(), "b".into()),
            ]
        );
    }

    #[test]
    fn names_inside_slices_are_found() {
        // minijinja's `undeclared_variables` reports no name for the value being sliced; the
        // syntax tree is walked instead.
        let e = Expr::compile(
            "params.pw[0:3] ~ '-' ~ params.pw[3:] ~ steps.a.outputs.b[1:]",
            Pos::new(1, 1),
            &file(),
        )
        .unwrap();
        assert_eq!(
            e.refs,
            vec![
                Ref::Param("pw".into()),
                Ref::StepOutput("a".into(), "b".into())
            ]
        );
    }

    #[test]
    fn names_inside_a_slice_bound_are_found() {
        let e = Expr::compile("steps.a.outputs.l[0:params.n]", Pos::new(1, 1), &file()).unwrap();
        assert_eq!(
            e.refs,
            vec![
                Ref::Param("n".into()),
                Ref::StepOutput("a".into(), "l".into())
            ]
        );
    }

    #[test]
    fn undefined_names_fail_loudly() {
        let scope = context! { params => context!{ n => 3 } };
        let err = tpl("${{ params.missing }}").eval(&scope).unwrap_err();
        assert!(err.contains("does not exist"), "{err}");
    }

    #[test]
    fn syntax_errors_point_at_the_expression() {
        let node = crate::yaml::parse(&file(), "x: 'a ${{ params.n + }}'").unwrap();
        let mut errors = Vec::new();
        Template::compile(&node, &file(), &mut errors);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].pos, Pos::new(1, 7));
        assert!(errors[0].message.contains("invalid expression"));
    }
}

#[cfg(test)]
mod type_tests {
    //! Orderings between kinds, and bounded results, as a run meets them.

    use super::*;
    use minijinja::context;

    fn eval(src: &str) -> Result<Value, String> {
        let scope = context! {
            params => context! { n => 45000, s => "30000", on => true, list => vec![3, 1, 2] },
            env => context! { MAX_LAG_MS => "30000", DR_PROMOTE => "False" },
        };
        Expr::compile(src, Pos::new(1, 1), &Arc::from("t.yaml"))
            .expect("compiles")
            .eval(&scope)
    }

    #[track_caller]
    fn refused(src: &str, says: &[&str]) {
        let err = eval(src).expect_err(src);
        for s in says {
            assert!(err.contains(s), "{src}: `{s}` not in: {err}");
        }
    }

    #[test]
    fn a_number_and_a_string_are_not_ordered_by_their_kind() {
        // Jinja would say true: numbers order before strings whatever their values.
        refused(
            "params.n < env.MAX_LAG_MS",
            &[
                "`params.n` is a number and `env.MAX_LAG_MS` is a string",
                "`env.MAX_LAG_MS | int`",
                "environment variables are always strings",
            ],
        );
        assert_eq!(eval("params.n < env.MAX_LAG_MS | int").unwrap(), false);
        assert_eq!(eval("params.n > (env.MAX_LAG_MS | float)").unwrap(), true);
        assert_eq!(eval("'abc' < 'abd'").unwrap(), true);
        assert_eq!(eval("[1, 'a'] < [1, 'b']").unwrap(), true);
    }

    #[test]
    fn no_way_of_writing_an_ordering_escapes_the_check() {
        for src in [
            "(params.n) >= (env.MAX_LAG_MS)",
            "(params.n + 0) <= env.MAX_LAG_MS ~ ''",
            "not (params.n > env.MAX_LAG_MS)",
            "0 < params.n < env.MAX_LAG_MS",
            "[params.n < env.MAX_LAG_MS][0]",
            "params.n is lt(env.MAX_LAG_MS)",
            "params.n is greaterthan env.MAX_LAG_MS",
            "[params.n] | select('lt', env.MAX_LAG_MS) | list",
            "[params.n, env.MAX_LAG_MS] | max",
            "[params.n, env.MAX_LAG_MS] | min",
            "[params.n, env.MAX_LAG_MS] | sort",
            "{'a': params.n, 'b': env.MAX_LAG_MS} | dictsort(by='value')",
            "[{'k': 1}, {'k': 'x'}] | sort(attribute='k')",
            "[[1], ['x']] | max",
            "true if params.n < env.MAX_LAG_MS else false",
        ] {
            refused(src, &["a number", "a string"]);
        }
    }

    #[test]
    fn bools_and_none_are_not_ordered_either() {
        refused("true < 2", &["`true` is a bool and `2` is a number"]);
        refused("none >= 0", &["`none` is none"]);
        refused("params.on > false", &["a bool"]);
    }

    #[test]
    fn equality_and_membership_of_one_kind_are_unchanged() {
        assert_eq!(eval("params.n == '45000'").unwrap(), false);
        assert_eq!(eval("1 in params.list").unwrap(), true);
        assert_eq!(eval("'300' in params.s").unwrap(), true);
        assert_eq!(eval("'x' not in params.s").unwrap(), true);
        assert_eq!(eval("'MAX_LAG_MS' in env").unwrap(), true);
        assert_eq!(eval("0 <= 1 == true").unwrap(), true);
        // A chain means each link: `1 < 2 and 2 in [2, 3]`.
        assert_eq!(eval("1 < 2 in [2, 3]").unwrap(), true);
        assert_eq!(eval("1 < 2 in [true]").unwrap(), false);
        assert_eq!(eval("params.list | sort | first").unwrap(), 1);
        assert_eq!(eval("params.n * 2").unwrap(), 90000);
        assert_eq!(eval("'ab' * 2").unwrap(), "abab");
        assert_eq!(eval("[1] * 2").unwrap(), serde_json::json!([1, 1]));
    }

    fn eval_in(src: &str) -> Result<Value, String> {
        let scope = context! {
            params => context! {
                n => 1, s => "10", f => 1.0, on => true, nothing => (),
                list => vec![1, 2], words => vec!["1", "2"], m => context! { a => 1 },
            },
            env => context! { NAMES => "db,web" },
        };
        Expr::compile(src, Pos::new(1, 1), &Arc::from("t.yaml"))
            .expect("compiles")
            .eval(&scope)
    }

    #[track_caller]
    fn in_refused(src: &str, says: &[&str]) {
        let err = eval_in(src).expect_err(src);
        for s in says {
            assert!(err.contains(s), "{src}: `{s}` not in: {err}");
        }
    }

    #[test]
    fn a_number_in_a_string_is_not_looked_for_as_text() {
        // The QA case: Jinja turned 1 into "1" and found it in "10".
        in_refused(
            "params.n in params.s",
            &[
                "`params.n in params.s`",
                "`in` looks for a string in a string, an item in a list or a key in a map",
                "`params.n` is a number and `params.s` is a string",
                "`params.n | string in params.s`",
                "`params.n == params.s | int`",
            ],
        );
        in_refused(
            "params.n not in params.s",
            &["`not in` looks for", "`params.n | string not in params.s`"],
        );
        in_refused("params.f in '1.0'", &["`params.f` is a number"]);
        in_refused(
            "true in 'True'",
            &["`true` is a bool and `'True'` is a string"],
        );
        in_refused("none in 'None'", &["`none` is none"]);
        in_refused("params.list in '[1, 2]'", &["is a list"]);
        // The conversions the hint offers do what they say.
        assert_eq!(eval_in("params.n | string in params.s").unwrap(), true);
        assert_eq!(eval_in("params.n == params.s | int").unwrap(), false);
        assert_eq!(eval_in("'db' in env.NAMES").unwrap(), true);
        assert_eq!(eval_in("'' in params.s").unwrap(), true);
    }

    #[test]
    fn nothing_is_in_a_number_a_bool_or_none() {
        in_refused(
            "'1' in params.n",
            &[
                "`'1'` is a string and `params.n` is a number",
                "`'1' in params.n | string`",
            ],
        );
        in_refused(
            "1 in params.n",
            &["`1` is a number and `params.n` is a number", "`==`"],
        );
        in_refused("'a' in params.on", &["`params.on` is a bool"]);
        in_refused("'a' not in params.nothing", &["`params.nothing` is none"]);
    }

    #[test]
    fn list_items_and_map_keys_match_only_their_own_kind() {
        // minijinja finds `1` in `[true]` and `0` in `[false]`; a string never matched a number.
        for (src, want) in [
            ("1 in params.words", false),
            ("'1' in params.list", false),
            ("params.n in [true]", false),
            ("true in params.list", false),
            ("0 in [false]", false),
            ("[1] in [[true]]", false),
            ("1 in {'1': 'x'}", false),
            ("true in {1: 'x'}", false),
            ("none in [0, '', false]", false),
            // What is of one kind still matches: whole and decimal numbers are one kind.
            ("params.n in params.list", true),
            ("params.f in params.list", true),
            ("'1' in params.words", true),
            ("true in [params.on]", true),
            ("none in [none]", true),
            ("[1, 'a'] in [[1.0, 'a']]", true),
            ("{'a': 1} in [params.m]", true),
            ("'a' in params.m", true),
            ("1 in {1: 'x'}", true),
            ("2 in range(3)", true),
            ("'b' in ('a', 'b')", true),
            ("params.n not in params.words", true),
        ] {
            assert_eq!(eval_in(src).unwrap(), want, "{src}");
        }
    }

    #[test]
    fn no_way_of_writing_in_escapes_the_check() {
        for src in [
            "(params.n) in (params.s)",
            "not (params.n in params.s)",
            "not params.n in params.s",
            "params.n in params.s ~ ''",
            "[params.n in params.s][0]",
            "true if params.n in params.s else false",
            "params.n is in(params.s)",
            "params.n is in params.s",
            "params.n is not in(params.s)",
            "params.n in params.s == true",
            "0 < params.n in params.s",
            "params.n not in params.s not in 'x'",
            "[params.n] | select('in', params.s) | list",
            "[params.n] | reject('in', params.s) | list",
            "[{'k': params.n}] | selectattr('k', 'in', params.s) | list",
        ] {
            in_refused(src, &["a number", "a string"]);
        }
        for src in ["[1] | select('in', 2) | list", "params.n is in(params.on)"] {
            in_refused(src, &["looks for a string in a string"]);
        }
        assert_eq!(
            eval_in("[1, '1', true] | select('in', params.list) | list").unwrap(),
            serde_json::json!([1])
        );
        assert_eq!(eval_in("params.n is in(params.list)").unwrap(), true);
        assert_eq!(eval_in("params.n is not in(params.words)").unwrap(), true);
    }

    #[test]
    fn in_on_a_missing_value_says_it_does_not_exist() {
        in_refused("params.missing in params.list", &["does not exist"]);
        in_refused("1 in params.missing", &["does not exist"]);
    }

    #[test]
    fn results_are_bounded_before_they_are_built() {
        // The example: it built 100 MB in 2.5 s and was journaled.
        refused(
            "'x' ~ ('y' * 100000000)",
            &[
                "`'y' * 100000000` would build about 95.4 MiB",
                "limit of 1 MiB",
            ],
        );
        refused("'y' * 2000000", &["would build about 1.9 MiB"]);
        refused("[1, 2] * 100000", &["200000 items"]);
        refused(
            "'ab' | replace('', 'x' * 600000)",
            &["`replace` would build"],
        );
        refused("'%100000000s' | format('a')", &["`format` would build"]);
        refused("'a\\nb' | indent(1000000)", &["`indent` would build"]);
        refused("range(10) | join('x' * 200000)", &["`join` would build"]);
        refused("[1] | batch(200000, 0)", &["`batch`"]);
        refused("[1] | slice(200000)", &["`slice`"]);
        // Under the limit one by one, over it together.
        refused(
            "('x' * 1000000) ~ ('x' * 1000000) ~ ('x' * 1000000) ~ ('x' * 1000000) ~ ('x' * 1000000)",
            &["in all over 4 MiB"],
        );
        // A result that is too large however it was made.
        refused(
            "('x' * 1000000) ~ ('x' * 100000)",
            &["gives a value of about 1.0 MiB", "limit of 1 MiB"],
        );
        assert_eq!(
            eval("('x' * 1000) | length").unwrap(),
            serde_json::json!(1000)
        );
    }

    #[test]
    fn an_interpolated_string_is_bounded_too() {
        let scope = context! { params => context! { s => "x".repeat(600_000) } };
        let node =
            crate::yaml::parse(&Arc::from("t.yaml"), "'${{ params.s }}${{ params.s }}'").unwrap();
        let mut errors = Vec::new();
        let t = Template::compile(&node, &Arc::from("t.yaml"), &mut errors);
        let err = t.eval(&scope).unwrap_err();
        assert!(
            err.contains("with `${{ params.s }}`, `${{ params.s }}` spliced in comes to about 1.1 MiB, over the limit of 1 MiB"),
            "{err}"
        );
    }

    fn static_type(src: &str) -> Ty {
        let names = |r: &Ref| match r {
            Ref::Param(p) if p == "n" => Ty::Int,
            Ref::Param(p) if p == "flag" => Ty::Bool,
            Ref::Env(_) => Ty::String,
            _ => Ty::Unknown,
        };
        Expr::compile(src, Pos::new(1, 1), &Arc::from("t.yaml"))
            .unwrap()
            .static_type(&names)
    }

    #[test]
    fn the_compiler_knows_declared_and_literal_types() {
        assert_eq!(static_type("params.n"), Ty::Int);
        assert_eq!(static_type("params.n.x"), Ty::Unknown);
        assert_eq!(static_type("env.X"), Ty::String);
        assert_eq!(static_type("env.X | int"), Ty::Int);
        assert_eq!(static_type("env.X == 'true'"), Ty::Bool);
        assert_eq!(static_type("params.flag and params.flag"), Ty::Bool);
        // Jinja's `and` gives one of its operands.
        assert_eq!(static_type("params.flag and env.X"), Ty::Unknown);
        assert_eq!(static_type("params.n / 2"), Ty::Number);
        assert_eq!(static_type("'a' ~ params.n"), Ty::String);
        assert_eq!(static_type("params.other"), Ty::Unknown);
        assert_eq!(static_type("not env.X"), Ty::Bool);
        assert_eq!(static_type("params.n in env.X"), Ty::Bool);
    }

    fn static_problems(src: &str) -> Vec<String> {
        let names = |r: &Ref| match r {
            Ref::Param(p) if p == "n" => Ty::Int,
            Ref::Param(p) if p == "x" => Ty::Number,
            Ref::Param(p) if p == "s" => Ty::String,
            Ref::Param(p) if p == "flag" => Ty::Bool,
            Ref::Param(p) if p == "l" => Ty::List,
            Ref::Param(p) if p == "m" => Ty::Map,
            Ref::Env(_) => Ty::String,
            _ => Ty::Unknown,
        };
        Expr::compile(src, Pos::new(1, 1), &Arc::from("t.yaml"))
            .unwrap()
            .ordering_problems(&names)
            .into_iter()
            .map(|(m, h)| format!("{m}; {h}"))
            .collect()
    }

    #[test]
    fn the_compiler_refuses_in_between_declared_types_that_cannot_hold() {
        let p = static_problems("params.n in params.s");
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].contains("`params.n` is an int and `params.s` is a string"),
            "{p:?}"
        );
        assert!(p[0].contains("`params.n | string in params.s`"), "{p:?}");
        for src in [
            "not (params.x in env.X)",
            "params.n not in params.s",
            "params.n is in(params.s)",
            "params.flag in params.s",
            "params.l in params.s",
            "params.s in params.n",
            "params.s in params.flag",
            "params.s in none",
            "0 < params.n in params.s",
            "[params.n in params.s]",
        ] {
            assert_eq!(
                static_problems(src).len(),
                1,
                "{src}: {:?}",
                static_problems(src)
            );
        }
        // Containers that may hold anything, and types known only at run time, are left to
        // the run.
        for src in [
            "params.n in params.l",
            "params.n in params.m",
            "params.s in params.s",
            "params.unknown in params.s",
            "params.n in params.unknown",
            "params.n | string in params.s",
            "'a' in env.X",
        ] {
            assert_eq!(static_problems(src), Vec::<String>::new(), "{src}");
        }
    }
}
