//! `${{ … }}` expressions inside runbook values.
//!
//! Expressions are Jinja expressions (minijinja): ops people know the syntax, and `${{` does not
//! collide with YAML flow mappings. A value that is exactly one `${{ … }}` keeps the type of its
//! result (bool, number, list, map); anything else is a string with the results spliced in.
//!
//! Every expression is parsed when the runbook is compiled, and the names it refers to
//! (`params.x`, `steps.a.outputs.b`, …) are extracted so the compiler can check them.

use std::collections::BTreeSet;
use std::sync::{Arc, LazyLock};

use minijinja::{Environment, Expression, UndefinedBehavior, Value as MjValue};
use serde_json::Value;

use crate::diag::{Diagnostic, Pos};
use crate::yaml::{Node, NodeKind};

static ENV: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    // A misspelt output must fail the step, not quietly become an empty string.
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_recursion_limit(64);
    env
});

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
        let compiled = ENV.compile_expression_owned(source.clone()).map_err(|e| {
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
        let mut names: BTreeSet<String> = compiled.undeclared_variables(true).into_iter().collect();
        // minijinja 3.0 does not report the value being sliced (`params.pw[0:3]` yields no
        // name), so the names are read from the text too: a name missed here would escape both
        // the reference checks and secrecy (docs/decisions.md).
        names.extend(root_paths(&source));
        let mut refs = Vec::new();
        for r in names.iter().map(|n| classify(n)) {
            if !refs.contains(&r) {
                refs.push(r);
            }
        }
        Ok(Expr { source, pos, refs })
    }

    fn compiled(&self) -> Result<Expression<'static, 'static>, String> {
        ENV.compile_expression_owned(self.source.clone())
            .map_err(|e| format!("`{}`: {e}", self.source))
    }

    /// Evaluates the expression in a scope.
    pub fn eval(&self, scope: &MjValue) -> Result<Value, String> {
        self.eval_watched(scope, &Unwatched)
    }

    /// Evaluates the expression; when `watch` says it reads a secret, its result is shown to
    /// `watch` and an error says only what kind of error it was (minijinja's details may quote
    /// a value).
    pub(crate) fn eval_watched(&self, scope: &MjValue, watch: &dyn Watch) -> Result<Value, String> {
        let secret = watch.reads_secret(self);
        let value = self.compiled()?.eval(scope).map_err(|e| {
            let why = if secret && e.kind() != minijinja::ErrorKind::UndefinedError {
                format!(
                    "{} (the details are not shown: the expression reads a secret)",
                    e.kind()
                )
            } else {
                describe(&e)
            };
            format!("`{}`: {why}", self.source)
        })?;
        if value.is_undefined() {
            return Err(format!(
                "`{}` refers to a value that does not exist (a skipped step's output, a missing key or an unset environment variable)",
                self.source
            ));
        }
        let value = to_json(&value).map_err(|e| format!("`{}`: {e}", self.source))?;
        if secret {
            watch.secret_value(&value);
        }
        Ok(value)
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

/// Every name an expression's text starts from a root with (`params.pw`, `steps.a.outputs.b`,
/// `env`), outside string literals and attribute names, as a dotted path. A superset of what
/// the expression can read: a root named in its text is the only way to reach a value.
fn root_paths(source: &str) -> Vec<String> {
    let b = source.as_bytes();
    let ident_start = |c: u8| c.is_ascii_alphabetic() || c == b'_';
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let skip_space = |mut j: usize| {
        while j < b.len() && b[j].is_ascii_whitespace() {
            j += 1;
        }
        j
    };
    let mut out = Vec::new();
    // The last byte before the current token that is not a space.
    let mut before: u8 = b' ';
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'\'' || c == b'"' {
            i += 1;
            while i < b.len() && b[i] != c {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            before = c;
            continue;
        }
        if !ident_start(c) {
            if !c.is_ascii_whitespace() {
                before = c;
            }
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && ident(b[i]) {
            i += 1;
        }
        let word = &source[start..i];
        let next = skip_space(i);
        // `a=…` names a keyword argument, `x.a` an attribute, `x | a` a filter.
        let kwarg = b.get(next) == Some(&b'=') && b.get(next + 1) != Some(&b'=');
        if ROOTS.contains(&word) && !kwarg && before != b'.' && before != b'|' {
            let mut path = word.to_string();
            let mut j = next;
            while b.get(j) == Some(&b'.') {
                let k = skip_space(j + 1);
                if k >= b.len() || !ident_start(b[k]) {
                    break;
                }
                let mut e = k;
                while e < b.len() && ident(b[e]) {
                    e += 1;
                }
                path.push('.');
                path.push_str(&source[k..e]);
                j = skip_space(e);
            }
            out.push(path);
        }
        before = b'a';
    }
    out
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

fn classify(name: &str) -> Ref {
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

/// Whether a value counts as true in an `if:`.
pub fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty() && s != "false",
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
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
        // minijinja reports no name for the value being sliced; the text is read too.
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
    fn root_paths_skip_strings_attributes_filters_and_keyword_arguments() {
        assert_eq!(
            root_paths("'params.x' ~ \"env.Y\" ~ a.params ~ x | env ~ f(run=1) ~ params . pw[0]"),
            vec!["params.pw"]
        );
        assert_eq!(
            root_paths("env['AWS_X'] ~ steps.a.outputs['k'] ~ run.id == 'it\\'s'"),
            vec!["env", "steps.a.outputs", "run.id"]
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
