//! The types of expressions, as far as the compiler can know them before a run.
//!
//! A name has a type when it is declared: a runbook parameter's `type`, a step output's type in
//! its step type's declaration (or the literal given to `core.set`), `env.*` (always a string),
//! `steps.<id>.status` (a string), `run.*`. Literals, comparisons, tests, `not` and the
//! converting filters (`int`, `float`, `string`, `length`, …) have types too. Everything else is
//! [`Ty::Unknown`], and then only the run-time checks apply: the compiler refuses only what
//! would fail whatever the values.

use minijinja::machinery::ast;
use minijinja::value::ValueKind;

use crate::expr::{Ref, classify};
use crate::expr_env::{membership_problem, ordering_problem};
use crate::expr_tree::{Op, each_child, membership, membership_test, ordering_test, text_of};
use crate::step::ValueType;

/// What the compiler knows about the type of a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ty {
    /// Not known before the run.
    Unknown,
    /// `none`.
    None,
    /// `true` or `false`.
    Bool,
    /// A whole number.
    Int,
    /// Any number (a whole number or not).
    Number,
    /// A string.
    String,
    /// A list.
    List,
    /// A map.
    Map,
}

impl Ty {
    /// The type a declared [`ValueType`] guarantees.
    pub(crate) fn declared(ty: ValueType) -> Ty {
        match ty {
            ValueType::String => Ty::String,
            ValueType::Int => Ty::Int,
            ValueType::Number => Ty::Number,
            ValueType::Bool => Ty::Bool,
            ValueType::List => Ty::List,
            ValueType::Map => Ty::Map,
            // A duration may be written as text or as a number of seconds.
            ValueType::Duration | ValueType::Any => Ty::Unknown,
        }
    }

    /// The type of a literal.
    pub(crate) fn of_json(value: &serde_json::Value) -> Ty {
        match value {
            serde_json::Value::Null => Ty::None,
            serde_json::Value::Bool(_) => Ty::Bool,
            serde_json::Value::Number(n) if n.is_f64() => Ty::Number,
            serde_json::Value::Number(_) => Ty::Int,
            serde_json::Value::String(_) => Ty::String,
            serde_json::Value::Array(_) => Ty::List,
            serde_json::Value::Object(_) => Ty::Map,
        }
    }

    fn of_const(value: &minijinja::Value) -> Ty {
        match value.kind() {
            ValueKind::None => Ty::None,
            ValueKind::Bool => Ty::Bool,
            ValueKind::Number if value.is_integer() => Ty::Int,
            ValueKind::Number => Ty::Number,
            ValueKind::String => Ty::String,
            ValueKind::Seq => Ty::List,
            ValueKind::Map => Ty::Map,
            _ => Ty::Unknown,
        }
    }

    /// `a string`, `an int`, … as used in messages.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Ty::Unknown => "of a type known only at run time",
            Ty::None => "none",
            Ty::Bool => "a bool",
            Ty::Int => "an int",
            Ty::Number => "a number",
            Ty::String => "a string",
            Ty::List => "a list",
            Ty::Map => "a map",
        }
    }

    fn numeric(self) -> bool {
        matches!(self, Ty::Int | Ty::Number)
    }

    /// Whether a value of this type may be given where `want` is declared.
    pub(crate) fn fits(self, want: ValueType) -> bool {
        matches!(
            (self, want),
            (Ty::Unknown | Ty::None, _)
                | (_, ValueType::Any)
                | (Ty::String, ValueType::String | ValueType::Duration)
                | (
                    Ty::Int | Ty::Number,
                    ValueType::Int | ValueType::Number | ValueType::Duration
                )
                | (Ty::Bool, ValueType::Bool)
                | (Ty::List, ValueType::List)
                | (Ty::Map, ValueType::Map)
        )
    }

    /// Whether two values of these types can be ordered; unknown types are left to the run.
    fn orderable(self, other: Ty) -> bool {
        match (self, other) {
            (Ty::Unknown, _) | (_, Ty::Unknown) => true,
            (a, b) if a.numeric() && b.numeric() => true,
            (Ty::String, Ty::String) | (Ty::List, Ty::List) => true,
            _ => false,
        }
    }

    /// Whether a value of this type may be looked for (`in`) in one of type `container`: a
    /// string in a string, anything in a list or a map. Unknown types are left to the run, but
    /// nothing is ever in a number, a bool or none.
    fn may_be_in(self, container: Ty) -> bool {
        match container {
            Ty::Unknown | Ty::List | Ty::Map => true,
            Ty::String => matches!(self, Ty::String | Ty::Unknown),
            Ty::None | Ty::Bool | Ty::Int | Ty::Number => false,
        }
    }
}

/// The dotted name of a chain of attribute lookups on a variable (`steps.a.outputs.b`).
pub(crate) fn dotted(e: &ast::Expr<'_>) -> Option<String> {
    match e {
        ast::Expr::Var(v) => Some(v.id.to_string()),
        ast::Expr::GetAttr(g) => dotted(&g.expr).map(|base| format!("{base}.{}", g.name)),
        _ => None,
    }
}

/// The type of an expression, given the types of the names it reads.
pub(crate) fn infer(e: &ast::Expr<'_>, names: &dyn Fn(&Ref) -> Ty) -> Ty {
    use ast::BinOpKind as B;
    use ast::Expr as E;
    let i = |x: &ast::Expr<'_>| infer(x, names);
    match e {
        E::Var(_) | E::GetAttr(_) => dotted(e).map_or(Ty::Unknown, |n| {
            // Only a name written to the depth it is declared at has its declared type:
            // `params.x.y` is something inside `params.x`.
            let depth = n.split('.').count();
            let r = classify(&n);
            let exact = match &r {
                Ref::Param(_) | Ref::Env(_) | Ref::Run(_) => depth == 2,
                Ref::StepStatus(_) => depth == 3,
                Ref::StepOutput(..) => depth == 4,
                _ => false,
            };
            if exact { names(&r) } else { Ty::Unknown }
        }),
        E::Const(c) => Ty::of_const(&c.value),
        E::List(_) | E::Tuple(_) => Ty::List,
        E::Map(_) => Ty::Map,
        E::Compare(_) | E::Test(_) => Ty::Bool,
        E::UnaryOp(u) => match u.op {
            ast::UnaryOpKind::Not => Ty::Bool,
            ast::UnaryOpKind::Neg => match i(&u.expr) {
                t @ (Ty::Int | Ty::Number) => t,
                _ => Ty::Unknown,
            },
        },
        E::BinOp(b) => {
            let (l, r) = (i(&b.left), i(&b.right));
            match b.op {
                B::Eq | B::Ne | B::Lt | B::Lte | B::Gt | B::Gte | B::In => Ty::Bool,
                // Jinja's `and`/`or` give one of their operands, not a bool.
                B::ScAnd | B::ScOr if l == r => l,
                B::ScAnd | B::ScOr => Ty::Unknown,
                B::Concat => Ty::String,
                B::Add => match (l, r) {
                    (Ty::Int, Ty::Int) => Ty::Int,
                    (a, b) if a.numeric() && b.numeric() => Ty::Number,
                    (Ty::String, Ty::String) => Ty::String,
                    (Ty::List, Ty::List) => Ty::List,
                    _ => Ty::Unknown,
                },
                B::Mul => match (l, r) {
                    (Ty::Int, Ty::Int) => Ty::Int,
                    (a, b) if a.numeric() && b.numeric() => Ty::Number,
                    (Ty::String, Ty::Int) | (Ty::Int, Ty::String) => Ty::String,
                    (Ty::List, Ty::Int) | (Ty::Int, Ty::List) => Ty::List,
                    _ => Ty::Unknown,
                },
                B::Sub | B::FloorDiv | B::Rem => match (l, r) {
                    (Ty::Int, Ty::Int) => Ty::Int,
                    (a, b) if a.numeric() && b.numeric() => Ty::Number,
                    _ => Ty::Unknown,
                },
                B::Div | B::Pow if l.numeric() && r.numeric() => Ty::Number,
                B::Div | B::Pow => Ty::Unknown,
            }
        }
        E::IfExpr(x) => {
            let t = i(&x.true_expr);
            match &x.false_expr {
                Some(f) if i(f) == t => t,
                _ => Ty::Unknown,
            }
        }
        E::Filter(f) => match f.name {
            "int" | "length" | "count" => Ty::Int,
            "float" | "round" => Ty::Number,
            "bool" => Ty::Bool,
            "string" | "lower" | "upper" | "title" | "capitalize" | "trim" | "replace" | "join"
            | "format" | "indent" | "pprint" => Ty::String,
            "list" | "sort" | "split" | "lines" | "batch" | "slice" | "unique" | "select"
            | "reject" | "selectattr" | "rejectattr" | "map" | "dictsort" => Ty::List,
            "abs" => match f.expr.as_ref().map(i) {
                Some(t @ (Ty::Int | Ty::Number)) => t,
                _ => Ty::Unknown,
            },
            "reverse" => match f.expr.as_ref().map(i) {
                Some(t @ (Ty::String | Ty::List)) => t,
                _ => Ty::Unknown,
            },
            _ => Ty::Unknown,
        },
        E::Slice(s) => match i(&s.expr) {
            t @ (Ty::String | Ty::List) => t,
            _ => Ty::Unknown,
        },
        E::GetItem(_) | E::Call(_) => Ty::Unknown,
    }
}

/// Whether `e` orders values or looks for one in another anywhere: `<`, `<=`, `>`, `>=`, `in`,
/// `not in`, or a test such as `is lt` or `is in`.
pub(crate) fn orders(e: &ast::Expr<'_>) -> bool {
    let here = match e {
        ast::Expr::BinOp(b) => Op::of_binop(b.op).is_some() || matches!(b.op, ast::BinOpKind::In),
        ast::Expr::Compare(c) => c
            .ops
            .iter()
            .any(|o| crate::expr_tree::checked_compare(o.op)),
        ast::Expr::Test(t) => Op::of_test(t.name).is_some() || t.name == "in",
        _ => false,
    };
    let mut below = false;
    each_child(e, &mut |c| below = below || orders(c));
    here || below
}

/// Every ordering in `e` between operands whose declared types cannot be ordered, and every
/// `in` whose needle cannot be in its container, as a message and a hint.
pub(crate) fn ordering_problems(
    e: &ast::Expr<'_>,
    source: &str,
    names: &dyn Fn(&Ref) -> Ty,
    out: &mut Vec<(String, String)>,
) {
    let check = |op: Op, l: &ast::Expr<'_>, r: &ast::Expr<'_>| {
        let (lt, rt) = (infer(l, names), infer(r, names));
        (!lt.orderable(rt)).then(|| {
            ordering_problem(
                op.symbol(),
                text_of(source, l),
                lt.name(),
                text_of(source, r),
                rt.name(),
                false,
            )
        })
    };
    let check_in = |symbol: &str, n: &ast::Expr<'_>, c: &ast::Expr<'_>| {
        let (nt, ct) = (infer(n, names), infer(c, names));
        (!nt.may_be_in(ct)).then(|| {
            membership_problem(
                symbol,
                text_of(source, n),
                nt.name(),
                text_of(source, c),
                ct.name(),
            )
        })
    };
    if let Some((symbol, needle, container)) = membership(e) {
        out.extend(check_in(symbol, needle, container));
        // Below `not (a in b)` is `a in b`, already checked: look inside its operands only.
        for x in [needle, container] {
            ordering_problems(x, source, names, out);
        }
        return;
    }
    match e {
        ast::Expr::BinOp(b) => {
            if let Some(op) = Op::of_binop(b.op) {
                out.extend(check(op, &b.left, &b.right));
            }
        }
        ast::Expr::Compare(c) => {
            let mut left = &c.expr;
            for o in &c.ops {
                if let Some(op) = Op::of_compare(o.op) {
                    out.extend(check(op, left, &o.expr));
                }
                match o.op {
                    ast::CompareOpKind::In => out.extend(check_in("in", left, &o.expr)),
                    ast::CompareOpKind::NotIn => out.extend(check_in("not in", left, &o.expr)),
                    _ => {}
                }
                left = &o.expr;
            }
        }
        ast::Expr::Test(t) => {
            if let Some((op, other)) = ordering_test(t) {
                out.extend(check(op, &t.expr, other));
            }
            if let Some(container) = membership_test(t) {
                out.extend(check_in("in", &t.expr, container));
            }
        }
        _ => {}
    }
    each_child(e, &mut |c| ordering_problems(c, source, names, out));
}
