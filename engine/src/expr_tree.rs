//! minijinja's syntax tree of an expression: walking it, the text of its parts, and the rewrite
//! that puts checked functions (see `expr_env.rs`) in place of the operators Jinja does not
//! check (orderings, `in` and `*`). Uses minijinja's `unstable_machinery`, which has no semver promise: minijinja is
//! pinned to a patch release in the workspace's `Cargo.toml`.

use minijinja::machinery::{self, Span, ast};
use minijinja::{Error, Value};

/// What `a < b` (and `<=`, `>`, `>=`, and the tests `lt`, `le`, `gt`, `ge`) becomes:
/// `drflow:order(a, b, "<\0a text\0b text")`. No expression can spell these names.
pub(crate) const ORDER_FN: &str = "drflow:order";
/// What a chained comparison with an ordering in it becomes:
/// `drflow:chain(a, "<\0…", b, "==\0…", c)`.
pub(crate) const CHAIN_FN: &str = "drflow:chain";
/// What `a * b` becomes: `drflow:mul(a, b, "a * b")`.
pub(crate) const MUL_FN: &str = "drflow:mul";
/// What `a in b` (and the test `a is in(b)`) becomes: `drflow:in(a, b, "in\0a text\0b text")`;
/// `a not in b` becomes `not drflow:in(a, b, "not in\0…")`.
pub(crate) const IN_FN: &str = "drflow:in";

/// Parses an expression.
pub(crate) fn parse(source: &str) -> Result<ast::Expr<'_>, Error> {
    machinery::parse_expr(source)
}

/// Whether an expression has an operator that [`rebuild`] replaces by a checked function.
pub(crate) fn needs_rewrite(e: &ast::Expr<'_>) -> bool {
    let here = match e {
        ast::Expr::BinOp(b) => {
            is_ordering(b.op) || matches!(b.op, ast::BinOpKind::Mul | ast::BinOpKind::In)
        }
        ast::Expr::Compare(c) => c.ops.iter().any(|o| checked_compare(o.op)),
        ast::Expr::Test(t) => ordering_test(t).is_some() || membership_test(t).is_some(),
        _ => false,
    };
    let mut below = false;
    each_child(e, &mut |c| below = below || needs_rewrite(c));
    here || below
}

/// An ordering operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    pub(crate) fn symbol(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        }
    }

    pub(crate) fn parse(symbol: &str) -> Option<Op> {
        [Op::Lt, Op::Le, Op::Gt, Op::Ge]
            .into_iter()
            .find(|o| o.symbol() == symbol)
    }

    pub(crate) fn of_binop(op: ast::BinOpKind) -> Option<Op> {
        match op {
            ast::BinOpKind::Lt => Some(Op::Lt),
            ast::BinOpKind::Lte => Some(Op::Le),
            ast::BinOpKind::Gt => Some(Op::Gt),
            ast::BinOpKind::Gte => Some(Op::Ge),
            _ => None,
        }
    }

    pub(crate) fn of_compare(op: ast::CompareOpKind) -> Option<Op> {
        match op {
            ast::CompareOpKind::Lt => Some(Op::Lt),
            ast::CompareOpKind::Lte => Some(Op::Le),
            ast::CompareOpKind::Gt => Some(Op::Gt),
            ast::CompareOpKind::Gte => Some(Op::Ge),
            _ => None,
        }
    }

    /// The test of this name (`x is lt(y)`), if it orders.
    pub(crate) fn of_test(name: &str) -> Option<Op> {
        match name {
            "lt" | "lessthan" | "<" => Some(Op::Lt),
            "le" | "<=" => Some(Op::Le),
            "gt" | "greaterthan" | ">" => Some(Op::Gt),
            "ge" | ">=" => Some(Op::Ge),
            _ => None,
        }
    }

    pub(crate) fn apply(self, a: &Value, b: &Value) -> bool {
        match self {
            Op::Lt => a < b,
            Op::Le => a <= b,
            Op::Gt => a > b,
            Op::Ge => a >= b,
        }
    }
}

fn is_ordering(op: ast::BinOpKind) -> bool {
    Op::of_binop(op).is_some()
}

/// A link of a chained comparison that runs checked: an ordering, `in` or `not in`.
pub(crate) fn checked_compare(op: ast::CompareOpKind) -> bool {
    Op::of_compare(op).is_some() || matches!(op, ast::CompareOpKind::In | ast::CompareOpKind::NotIn)
}

/// `a in b` or `a not in b` (which minijinja parses as `not (a in b)`): the symbol, the needle
/// and the container.
pub(crate) fn membership<'x, 'a>(
    e: &'x ast::Expr<'a>,
) -> Option<(&'static str, &'x ast::Expr<'a>, &'x ast::Expr<'a>)> {
    match e {
        ast::Expr::BinOp(b) if matches!(b.op, ast::BinOpKind::In) => {
            Some(("in", &b.left, &b.right))
        }
        ast::Expr::UnaryOp(u) if matches!(u.op, ast::UnaryOpKind::Not) => match &u.expr {
            ast::Expr::BinOp(b) if matches!(b.op, ast::BinOpKind::In) => {
                Some(("not in", &b.left, &b.right))
            }
            _ => None,
        },
        _ => None,
    }
}

/// `x is in(y)` (or `x is in y`), with the container.
pub(crate) fn membership_test<'x, 'a>(t: &'x ast::Test<'a>) -> Option<&'x ast::Expr<'a>> {
    match (t.name, t.args.as_slice()) {
        ("in", [ast::CallArg::Pos(container)]) => Some(container),
        _ => None,
    }
}

/// Calls `f` on each direct sub-expression of `e`.
pub(crate) fn each_child<'a, 'x>(e: &'x ast::Expr<'a>, f: &mut dyn FnMut(&'x ast::Expr<'a>)) {
    use ast::Expr as E;
    let args = |args: &'x [ast::CallArg<'a>], f: &mut dyn FnMut(&'x ast::Expr<'a>)| {
        for a in args {
            match a {
                ast::CallArg::Pos(x)
                | ast::CallArg::Kwarg(_, x)
                | ast::CallArg::PosSplat(x)
                | ast::CallArg::KwargSplat(x) => f(x),
            }
        }
    };
    match e {
        E::Var(_) | E::Const(_) => {}
        E::Slice(s) => {
            f(&s.expr);
            for x in [&s.start, &s.stop, &s.step].into_iter().flatten() {
                f(x);
            }
        }
        E::UnaryOp(u) => f(&u.expr),
        E::BinOp(b) => {
            f(&b.left);
            f(&b.right);
        }
        E::Compare(c) => {
            f(&c.expr);
            for o in &c.ops {
                f(&o.expr);
            }
        }
        E::IfExpr(i) => {
            f(&i.test_expr);
            f(&i.true_expr);
            if let Some(x) = &i.false_expr {
                f(x);
            }
        }
        E::Filter(x) => {
            if let Some(x) = &x.expr {
                f(x);
            }
            args(&x.args, f);
        }
        E::Test(t) => {
            f(&t.expr);
            args(&t.args, f);
        }
        E::GetAttr(g) => f(&g.expr),
        E::GetItem(g) => {
            f(&g.expr);
            f(&g.subscript_expr);
        }
        E::Call(c) => {
            f(&c.expr);
            args(&c.args, f);
        }
        E::List(l) => l.items.iter().for_each(f),
        E::Tuple(t) => t.items.iter().for_each(f),
        E::Map(m) => {
            for (k, v) in m.keys.iter().zip(&m.values) {
                f(k);
                f(v);
            }
        }
    }
}

/// The span of any expression node.
pub(crate) fn span_of(e: &ast::Expr<'_>) -> Span {
    use ast::Expr as E;
    match e {
        E::Var(x) => x.span(),
        E::Const(x) => x.span(),
        E::Slice(x) => x.span(),
        E::UnaryOp(x) => x.span(),
        E::BinOp(x) => x.span(),
        E::Compare(x) => x.span(),
        E::IfExpr(x) => x.span(),
        E::Filter(x) => x.span(),
        E::Test(x) => x.span(),
        E::GetAttr(x) => x.span(),
        E::GetItem(x) => x.span(),
        E::Call(x) => x.span(),
        E::List(x) => x.span(),
        E::Tuple(x) => x.span(),
        E::Map(x) => x.span(),
    }
}

/// Where a node's text starts and ends in its source. minijinja's span of `a.b.c` starts at the
/// last dot, so the node's own span is widened by those of everything under it.
fn extent(e: &ast::Expr<'_>) -> (u32, u32) {
    let span = span_of(e);
    let (mut start, mut end) = (span.start_offset, span.end_offset);
    each_child(e, &mut |c| {
        let (s, t) = extent(c);
        start = start.min(s);
        end = end.max(t);
    });
    (start, end)
}

/// The source text of a node, for messages. Parentheses around it are not part of it.
pub(crate) fn text_of<'s>(source: &'s str, e: &ast::Expr<'_>) -> Option<&'s str> {
    let (start, end) = extent(e);
    source
        .get(start as usize..end as usize)
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// `x is lt(y)` and its aliases, with the other operand.
pub(crate) fn ordering_test<'x, 'a>(t: &'x ast::Test<'a>) -> Option<(Op, &'x ast::Expr<'a>)> {
    match (Op::of_test(t.name), t.args.as_slice()) {
        (Some(op), [ast::CallArg::Pos(other)]) => Some((op, other)),
        _ => None,
    }
}

fn sp<T>(node: T, span: Span) -> ast::Spanned<T> {
    ast::Spanned::new(node, span)
}

fn call<'a>(function: &'static str, args: Vec<ast::Expr<'a>>, span: Span) -> ast::Expr<'a> {
    ast::Expr::Call(sp(
        ast::Call {
            expr: ast::Expr::Var(sp(ast::Var { id: function }, span)),
            args: args.into_iter().map(ast::CallArg::Pos).collect(),
        },
        span,
    ))
}

fn text_const<'a>(text: String, span: Span) -> ast::Expr<'a> {
    ast::Expr::Const(sp(
        ast::Const {
            value: Value::from(text),
        },
        span,
    ))
}

fn compare_symbol(op: ast::CompareOpKind) -> &'static str {
    match op {
        ast::CompareOpKind::Eq => "==",
        ast::CompareOpKind::Ne => "!=",
        ast::CompareOpKind::Lt => "<",
        ast::CompareOpKind::Lte => "<=",
        ast::CompareOpKind::Gt => ">",
        ast::CompareOpKind::Gte => ">=",
        ast::CompareOpKind::In => "in",
        ast::CompareOpKind::NotIn => "not in",
    }
}

/// A copy of `e` with each ordering comparison, each `in` and each `*` replaced by a call to its
/// checked function. (minijinja's tree cannot be changed in place, so the whole tree is copied.)
pub(crate) fn rebuild<'a>(e: &ast::Expr<'a>, src: &str) -> ast::Expr<'a> {
    use ast::Expr as E;
    let r = |x: &ast::Expr<'a>| rebuild(x, src);
    let opt = |x: &Option<ast::Expr<'a>>| x.as_ref().map(|x| rebuild(x, src));
    let args = |args: &[ast::CallArg<'a>]| -> Vec<ast::CallArg<'a>> {
        args.iter()
            .map(|a| match a {
                ast::CallArg::Pos(x) => ast::CallArg::Pos(rebuild(x, src)),
                ast::CallArg::Kwarg(k, x) => ast::CallArg::Kwarg(k, rebuild(x, src)),
                ast::CallArg::PosSplat(x) => ast::CallArg::PosSplat(rebuild(x, src)),
                ast::CallArg::KwargSplat(x) => ast::CallArg::KwargSplat(rebuild(x, src)),
            })
            .collect()
    };
    let meta = |symbol: &str, l: &ast::Expr<'_>, rt: &ast::Expr<'_>| {
        format!(
            "{symbol}\0{}\0{}",
            text_of(src, l).unwrap_or_default(),
            text_of(src, rt).unwrap_or_default()
        )
    };
    match e {
        E::Var(v) => E::Var(sp(ast::Var { id: v.id }, v.span())),
        E::Const(c) => E::Const(sp(
            ast::Const {
                value: c.value.clone(),
            },
            c.span(),
        )),
        E::Slice(s) => E::Slice(sp(
            ast::Slice {
                expr: r(&s.expr),
                start: opt(&s.start),
                stop: opt(&s.stop),
                step: opt(&s.step),
            },
            s.span(),
        )),
        E::UnaryOp(_) | E::BinOp(_) if let Some((symbol, needle, container)) = membership(e) => {
            let span = span_of(e);
            let m = meta(symbol, needle, container);
            let found = call(
                IN_FN,
                vec![r(needle), r(container), text_const(m, span)],
                span,
            );
            if symbol == "in" {
                found
            } else {
                E::UnaryOp(sp(
                    ast::UnaryOp {
                        op: ast::UnaryOpKind::Not,
                        expr: found,
                    },
                    span,
                ))
            }
        }
        E::UnaryOp(u) => E::UnaryOp(sp(
            ast::UnaryOp {
                op: match u.op {
                    ast::UnaryOpKind::Not => ast::UnaryOpKind::Not,
                    ast::UnaryOpKind::Neg => ast::UnaryOpKind::Neg,
                },
                expr: r(&u.expr),
            },
            u.span(),
        )),
        E::BinOp(b) => {
            if let Some(op) = Op::of_binop(b.op) {
                let m = meta(op.symbol(), &b.left, &b.right);
                call(
                    ORDER_FN,
                    vec![r(&b.left), r(&b.right), text_const(m, b.span())],
                    b.span(),
                )
            } else if matches!(b.op, ast::BinOpKind::Mul) {
                let text = text_of(src, e).unwrap_or("*").to_string();
                call(
                    MUL_FN,
                    vec![r(&b.left), r(&b.right), text_const(text, b.span())],
                    b.span(),
                )
            } else {
                E::BinOp(sp(
                    ast::BinOp {
                        op: b.op,
                        left: r(&b.left),
                        right: r(&b.right),
                    },
                    b.span(),
                ))
            }
        }
        E::Compare(c) => {
            if c.ops.iter().any(|o| checked_compare(o.op)) {
                let mut items = vec![r(&c.expr)];
                let mut left = &c.expr;
                for o in &c.ops {
                    let m = meta(compare_symbol(o.op), left, &o.expr);
                    items.push(text_const(m, c.span()));
                    items.push(r(&o.expr));
                    left = &o.expr;
                }
                call(CHAIN_FN, items, c.span())
            } else {
                E::Compare(sp(
                    ast::Compare {
                        expr: r(&c.expr),
                        ops: c
                            .ops
                            .iter()
                            .map(|o| ast::CompareOp {
                                op: o.op,
                                expr: r(&o.expr),
                            })
                            .collect(),
                    },
                    c.span(),
                ))
            }
        }
        E::IfExpr(i) => E::IfExpr(sp(
            ast::IfExpr {
                test_expr: r(&i.test_expr),
                true_expr: r(&i.true_expr),
                false_expr: opt(&i.false_expr),
            },
            i.span(),
        )),
        E::Filter(f) => E::Filter(sp(
            ast::Filter {
                name: f.name,
                expr: opt(&f.expr),
                args: args(&f.args),
            },
            f.span(),
        )),
        E::Test(t) if let Some((op, other)) = ordering_test(t) => {
            let m = meta(op.symbol(), &t.expr, other);
            call(
                ORDER_FN,
                vec![r(&t.expr), r(other), text_const(m, t.span())],
                t.span(),
            )
        }
        E::Test(t) if let Some(container) = membership_test(t) => {
            let m = meta("in", &t.expr, container);
            call(
                IN_FN,
                vec![r(&t.expr), r(container), text_const(m, t.span())],
                t.span(),
            )
        }
        E::Test(t) => E::Test(sp(
            ast::Test {
                name: t.name,
                expr: r(&t.expr),
                args: args(&t.args),
            },
            t.span(),
        )),
        E::GetAttr(g) => E::GetAttr(sp(
            ast::GetAttr {
                expr: r(&g.expr),
                name: g.name,
            },
            g.span(),
        )),
        E::GetItem(g) => E::GetItem(sp(
            ast::GetItem {
                expr: r(&g.expr),
                subscript_expr: r(&g.subscript_expr),
            },
            g.span(),
        )),
        E::Call(c) => E::Call(sp(
            ast::Call {
                expr: r(&c.expr),
                args: args(&c.args),
            },
            c.span(),
        )),
        E::List(l) => E::List(sp(
            ast::List {
                items: l.items.iter().map(r).collect(),
            },
            l.span(),
        )),
        E::Tuple(t) => E::Tuple(sp(
            ast::Tuple {
                items: t.items.iter().map(r).collect(),
            },
            t.span(),
        )),
        E::Map(m) => E::Map(sp(
            ast::Map {
                keys: m.keys.iter().map(r).collect(),
                values: m.values.iter().map(r).collect(),
            },
            m.span(),
        )),
    }
}
