//! What expressions are evaluated with: minijinja, strict about undefined names, plus two rules
//! Jinja does not have.
//!
//! - **Ordering is between values of one kind.** `<`, `<=`, `>`, `>=`, the tests `lt`, `le`,
//!   `gt`, `ge` (and their aliases), and the filters `min`, `max`, `sort`, `dictsort` and
//!   `groupby` only order two numbers or two strings (or lists of such, item by item).
//!   minijinja orders values of different kinds by their kind, so `45000 < "30000"` is silently
//!   true; here it is an error that names both sides and their kinds.
//! - **`in` looks for a string in a string, an item in a list or a key in a map.** minijinja
//!   turns any other needle into text to search a string (`1 in "10"` is true), and compares
//!   list items and keys across kinds (`1 in [true]` is true). Here a number (or a bool, none, a
//!   list, a map) in a string is an error, and so is anything in a number, a bool or none; list
//!   items and map keys match only a value of their own kind (`1 in ['1']`, `1 in [true]` are
//!   false, `1 in [1.0]` is true). The same holds for `not in`, the test `in` and
//!   `select('in', …)`.
//! - **What one evaluation builds is bounded.** The operations that can build more than they
//!   are given (`*` on strings and lists, `join`, `replace`, `indent`, `format`, `batch`,
//!   `slice`) work out the size of what they would build *before* building it: no one of them
//!   may build more than [`MAX_RESULT_BYTES`], nor all of them together more than four times
//!   that. The result is measured again at the end (see [`size_of`]).
//!
//! The operators are changed by rewriting the parsed expression (minijinja's
//! `unstable_machinery`, see `expr_tree.rs`): each ordering comparison, each `in` and each `*`
//! becomes a call to a checked function before code is generated. Working on the syntax tree rather than the text means
//! that parentheses, filters and nesting cannot hide an operator from the check, and the
//! replacement functions have names (`drflow:order`, …) that no expression can spell.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::LazyLock;

use minijinja::machinery::{self, CodeGenerator};
use minijinja::value::{Kwargs, Rest, StringInput, ValueKind, ValueOrKwargs};
use minijinja::{
    AutoEscape, Environment, Error, ErrorKind, Expression, State, UndefinedBehavior, Value,
};

use crate::expr_tree::{CHAIN_FN, IN_FN, MUL_FN, ORDER_FN, Op, parse, rebuild};

/// The largest value one expression may produce, and the most one operation inside it may
/// build: 1 MiB. Strings are measured in bytes; lists and maps roughly as their JSON (see
/// [`size_of`]).
pub const MAX_RESULT_BYTES: usize = 1 << 20;

/// What the size-checked operations of one evaluation may build in all.
const BUILD_BUDGET: usize = 4 * MAX_RESULT_BYTES;

/// The most items `*` on a list, `batch` (when filling) and `slice` may produce: minijinja's own
/// limit on `range`.
const MAX_ITEMS: usize = 100_000;

/// The environment of every expression.
static ENV: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = base();
    env.add_function(ORDER_FN, order);
    env.add_function(CHAIN_FN, chain);
    env.add_function(MUL_FN, mul);
    env.add_function(IN_FN, member);
    // Also what `select('in', …)`, `reject('in', …)` and `selectattr(…, 'in', …)` call.
    env.add_test("in", |needle: &Value, container: &Value| {
        contains("in", needle, container, None)
    });
    for (name, op) in [
        ("lt", Op::Lt),
        ("lessthan", Op::Lt),
        ("<", Op::Lt),
        ("le", Op::Le),
        ("<=", Op::Le),
        ("gt", Op::Gt),
        ("greaterthan", Op::Gt),
        (">", Op::Gt),
        ("ge", Op::Ge),
        (">=", Op::Ge),
    ] {
        env.add_test(name, move |a: &Value, b: &Value| ordered(op, a, b, None));
    }
    env.add_filter("min", min);
    env.add_filter("max", max);
    env.add_filter("sort", sort);
    env.add_filter("dictsort", dictsort);
    env.add_filter("groupby", groupby);
    env.add_filter("join", join);
    env.add_filter("replace", replace);
    env.add_filter("indent", indent);
    env.add_filter("format", format);
    env.add_filter("batch", batch);
    env.add_filter("slice", slice);
    env
});

/// Whether expressions can use the filter `name` (minijinja's built-ins and drflow's checked
/// replacements). minijinja looks filters up only when one is applied, so a misspelt filter
/// would otherwise fail the step at run time; the compiler asks this instead.
pub(crate) fn has_filter(name: &str) -> bool {
    known(&format!("none | {name}"), ErrorKind::UnknownFilter)
}

/// Whether expressions can use the test `name` (`x is name`), as [`has_filter`] for filters.
pub(crate) fn has_test(name: &str) -> bool {
    known(&format!("none is {name}"), ErrorKind::UnknownTest)
}

/// Applies the callable to `none`: only a lookup failure says it does not exist (wrong
/// arguments or a type error say that it does). What cannot be asked is taken as known.
fn known(source: &str, unknown: ErrorKind) -> bool {
    match ENV.compile_expression(source) {
        Ok(e) => !matches!(e.eval(()), Err(err) if err.kind() == unknown),
        Err(_) => true,
    }
}

/// Filter names offered as "did you mean" (only those [`has_filter`] confirms).
pub(crate) const FILTER_NAMES: &[&str] = &[
    "abs",
    "attr",
    "batch",
    "bool",
    "capitalize",
    "chain",
    "count",
    "d",
    "default",
    "dictsort",
    "escape",
    "first",
    "float",
    "format",
    "groupby",
    "indent",
    "int",
    "items",
    "join",
    "last",
    "length",
    "lines",
    "list",
    "lower",
    "map",
    "max",
    "min",
    "reject",
    "rejectattr",
    "replace",
    "reverse",
    "round",
    "select",
    "selectattr",
    "slice",
    "sort",
    "split",
    "string",
    "sum",
    "title",
    "trim",
    "unique",
    "upper",
    "zip",
];

/// Test names offered as "did you mean" (only those [`has_test`] confirms).
pub(crate) const TEST_NAMES: &[&str] = &[
    "boolean",
    "defined",
    "divisibleby",
    "endingwith",
    "eq",
    "even",
    "false",
    "filter",
    "float",
    "ge",
    "gt",
    "in",
    "integer",
    "iterable",
    "le",
    "lt",
    "mapping",
    "ne",
    "none",
    "number",
    "odd",
    "sameas",
    "sequence",
    "startingwith",
    "string",
    "test",
    "true",
    "undefined",
];

/// Plain minijinja, for the operations the checked functions hand back once they know the
/// result is small enough.
static PLAIN: LazyLock<Environment<'static>> = LazyLock::new(base);
static PLAIN_MUL: LazyLock<Expression<'static, 'static>> = LazyLock::new(|| {
    PLAIN
        .compile_expression("a * b")
        .expect("a valid expression")
});

fn base() -> Environment<'static> {
    let mut env = Environment::new();
    // A misspelt output must fail the step, not quietly become an empty string.
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_recursion_limit(64);
    env
}

thread_local! {
    /// What the current evaluation may still build; reset by [`evaluate`].
    static BUDGET: Cell<usize> = const { Cell::new(BUILD_BUDGET) };
}

/// Evaluates an expression in `root`, with the checks of this module. `rewrite` is
/// `expr_tree::needs_rewrite` of its tree, worked out once when the runbook was compiled.
pub(crate) fn evaluate(source: &str, rewrite: bool, root: Value) -> Result<Value, Error> {
    let parsed = parse(source)?;
    let tree = if rewrite {
        rebuild(&parsed, source)
    } else {
        parsed
    };
    let mut generator = CodeGenerator::new("<expression>", source);
    generator.compile_expr(&tree);
    let (instructions, _) = generator.finish();
    BUDGET.with(|b| b.set(BUILD_BUDGET));
    let mut sink = String::new();
    let mut out = machinery::make_string_output(&mut sink);
    let (value, _) = machinery::eval(
        &ENV,
        &instructions,
        root,
        &BTreeMap::new(),
        &mut out,
        AutoEscape::None,
    )?;
    Ok(value.unwrap_or_default())
}

/// Roughly how many bytes a value takes as JSON: exact for strings, 8 for a number, 4 for a bool
/// or none, plus one byte per list item and two per map entry. Stops counting once past `cap`.
pub fn size_of(value: &Value, cap: usize) -> usize {
    match value.kind() {
        ValueKind::String => value.as_str().map_or(0, str::len),
        ValueKind::Bytes => value.as_bytes().map_or(0, <[u8]>::len),
        ValueKind::Number => 8,
        ValueKind::Seq | ValueKind::Iterable => {
            let mut total = 2usize;
            if let Ok(items) = value.try_iter() {
                for item in items {
                    total = total.saturating_add(1 + size_of(&item, cap));
                    if total > cap {
                        break;
                    }
                }
            }
            total
        }
        ValueKind::Map => {
            let mut total = 2usize;
            if let Ok(keys) = value.try_iter() {
                for key in keys {
                    let item = value.get_item(&key).unwrap_or_default();
                    total = total.saturating_add(2 + size_of(&key, cap) + size_of(&item, cap));
                    if total > cap {
                        break;
                    }
                }
            }
            total
        }
        _ => 4,
    }
}

/// `1.5 MiB`, `812 KiB`, `40 bytes`.
pub fn format_bytes(n: usize) -> String {
    const KIB: f64 = 1024.0;
    let f = n as f64;
    if n.is_multiple_of(1 << 20) && n > 0 {
        format!("{} MiB", n >> 20)
    } else if f >= KIB * KIB {
        format!("{:.1} MiB", f / (KIB * KIB))
    } else if f >= KIB {
        format!("{:.0} KiB", f / KIB)
    } else {
        format!("{n} bytes")
    }
}

/// Charges `bytes` about to be built by `what` against the limits, or says why not.
fn build(what: &str, bytes: usize) -> Result<(), Error> {
    if bytes > MAX_RESULT_BYTES {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!(
                "{what} would build about {}, over the limit of {} on one value; \
                 build less, or have a step produce the data",
                format_bytes(bytes),
                format_bytes(MAX_RESULT_BYTES)
            ),
        ));
    }
    BUDGET.with(|left| match left.get().checked_sub(bytes) {
        Some(rest) => {
            left.set(rest);
            Ok(())
        }
        None => Err(Error::new(
            ErrorKind::InvalidOperation,
            format!(
                "{what} would take what the expression builds in all over {}; \
                 build less, or have a step produce the data",
                format_bytes(BUILD_BUDGET)
            ),
        )),
    })
}

// ---------------------------------------------------------------------------------------------
// Ordering
// ---------------------------------------------------------------------------------------------

/// `a number`, `a string`, … as used in messages.
pub(crate) fn kind_name(value: &Value) -> &'static str {
    match value.kind() {
        ValueKind::Undefined => "undefined",
        ValueKind::None => "none",
        ValueKind::Bool => "a bool",
        ValueKind::Number => "a number",
        ValueKind::String => "a string",
        ValueKind::Bytes => "bytes",
        ValueKind::Seq | ValueKind::Iterable => "a list",
        ValueKind::Map => "a map",
        _ => "an object",
    }
}

/// Two kinds that may not be ordered, and whether they are of items inside two lists.
type Mismatch = (&'static str, &'static str, bool);

/// Whether `a` and `b` may be ordered: two numbers, two strings, or two lists whose items may be
/// ordered pairwise. On refusal, the kinds of the first pair that may not.
fn orderable(a: &Value, b: &Value) -> Result<(), Mismatch> {
    match (a.kind(), b.kind()) {
        (ValueKind::Number, ValueKind::Number) | (ValueKind::String, ValueKind::String) => Ok(()),
        (ValueKind::Seq, ValueKind::Seq) => {
            if let (Ok(xs), Ok(ys)) = (a.try_iter(), b.try_iter()) {
                for (x, y) in xs.zip(ys) {
                    orderable(&x, &y).map_err(|(x, y, _)| (x, y, true))?;
                }
            }
            Ok(())
        }
        _ => Err((kind_name(a), kind_name(b), false)),
    }
}

/// The message and hint for an ordering between kinds that cannot be ordered, shared by the
/// compiler (declared types) and the run-time check (actual values). `left`/`right` are the
/// operands' source text when known.
pub(crate) fn ordering_problem(
    op: &str,
    left: Option<&str>,
    left_kind: &str,
    right: Option<&str>,
    right_kind: &str,
    items: bool,
) -> (String, String) {
    let sides = match (left, right, items) {
        (Some(l), Some(r), false) => format!("`{l}` is {left_kind} and `{r}` is {right_kind}"),
        (Some(l), Some(r), true) => {
            format!("`{l}` and `{r}` are lists whose items are {left_kind} and {right_kind}")
        }
        (_, _, false) => format!("one side is {left_kind} and the other {right_kind}"),
        (_, _, true) => format!("the items of the two lists are {left_kind} and {right_kind}"),
    };
    let message = format!("`{op}` orders two numbers or two strings, but {sides}");
    let numeric = |k: &str| matches!(k, "a number" | "an int");
    let hint = match (left, right) {
        _ if items => "compare lists whose items are of one kind".to_string(),
        (l, _) if left_kind == "a string" && numeric(right_kind) => convert_hint(l),
        (_, r) if right_kind == "a string" && numeric(left_kind) => convert_hint(r),
        _ => "compare values of one kind: convert one side with `| int`, `| float` or `| string`"
            .to_string(),
    };
    (message, hint)
}

fn convert_hint(text: Option<&str>) -> String {
    let shown = text.map_or("the string side".to_string(), |t| {
        if t.contains(' ') {
            format!("({t})")
        } else {
            t.to_string()
        }
    });
    let env = if text.is_some_and(|t| t.trim_start().starts_with("env.")) {
        " (environment variables are always strings)"
    } else {
        ""
    };
    format!("convert the string to a number first: `{shown} | int` or `{shown} | float`{env}")
}

fn undefined() -> Error {
    Error::new(
        ErrorKind::UndefinedError,
        "a value used in an ordering does not exist",
    )
}

/// One ordering, checked. `texts` are the operands' source text, for the message.
fn ordered(op: Op, a: &Value, b: &Value, texts: Option<(&str, &str)>) -> Result<bool, Error> {
    if a.is_undefined() || b.is_undefined() {
        return Err(undefined());
    }
    orderable(a, b).map_err(|(x, y, items)| {
        let (l, r) = texts.map_or((None, None), |(l, r)| (Some(l), Some(r)));
        let (message, hint) = ordering_problem(op.symbol(), l, x, r, y, items);
        Error::new(ErrorKind::InvalidOperation, format!("{message}; {hint}"))
    })?;
    Ok(op.apply(a, b))
}

/// `drflow:order(a, b, "<\0a text\0b text")`: what `a < b` becomes.
fn order(a: &Value, b: &Value, meta: &str) -> Result<bool, Error> {
    let mut parts = meta.split('\0');
    let op = parts.next().and_then(Op::parse).ok_or_else(bug)?;
    let texts = parts.next().zip(parts.next());
    ordered(op, a, b, texts)
}

/// `drflow:chain(a, "<\0…", b, "==\0…", c)`: what a chained comparison with an ordering in it
/// becomes (`0 < x <= 10`). Its operands are all evaluated first, unlike Jinja's, which stops
/// at the first false link; expressions have no side effects, so only an operand that fails to
/// evaluate can tell the difference.
fn chain(args: Rest<Value>) -> Result<bool, Error> {
    let Some((first, rest)) = args.split_first() else {
        return Err(bug());
    };
    if args.iter().any(Value::is_undefined) {
        return Err(undefined());
    }
    let mut left = first;
    for link in rest.chunks(2) {
        let [meta, right] = link else {
            return Err(bug());
        };
        let mut parts = meta.as_str().ok_or_else(bug)?.split('\0');
        let symbol = parts.next().unwrap_or_default();
        let texts = parts.next().zip(parts.next());
        let holds = match symbol {
            "==" => left == right,
            "!=" => left != right,
            "in" => contains("in", left, right, texts)?,
            "not in" => !contains("not in", left, right, texts)?,
            other => ordered(Op::parse(other).ok_or_else(bug)?, left, right, texts)?,
        };
        if !holds {
            return Ok(false);
        }
        left = right;
    }
    Ok(true)
}

// ---------------------------------------------------------------------------------------------
// Membership
// ---------------------------------------------------------------------------------------------

/// The message and hint for an `in` (or `not in`) whose needle cannot be in its container,
/// shared by the compiler (declared types) and the run-time check (actual values). The texts
/// are the operands' source when known.
pub(crate) fn membership_problem(
    symbol: &str,
    needle: Option<&str>,
    needle_kind: &str,
    container: Option<&str>,
    container_kind: &str,
) -> (String, String) {
    let sides = match (needle, container) {
        (Some(n), Some(c)) => format!("`{n}` is {needle_kind} and `{c}` is {container_kind}"),
        _ => format!("the value looked for is {needle_kind} and the container {container_kind}"),
    };
    let message = format!(
        "`{symbol}` looks for a string in a string, an item in a list or a key in a map, but {sides}"
    );
    let numeric = |k: &str| matches!(k, "a number" | "an int");
    let shown = |t: &str| {
        if t.contains(' ') {
            format!("({t})")
        } else {
            t.to_string()
        }
    };
    let hint = match (needle.map(shown), container.map(shown)) {
        (Some(n), Some(c)) if container_kind == "a string" && numeric(needle_kind) => format!(
            "to look for the number's digits, convert it to a string first: `{n} | string {symbol} {c}`; \
             to compare numbers, convert the string: `{n} == {c} | int`"
        ),
        (Some(n), Some(c)) if numeric(container_kind) && needle_kind == "a string" => format!(
            "to look in the number's digits, convert it to a string first: `{n} {symbol} {c} | string`; \
             to compare two values, use `==`"
        ),
        _ if container_kind == "a string" && numeric(needle_kind) => {
            "convert the number to a string first (`| string`), or the string to a number to \
             compare them (`| int`)"
                .to_string()
        }
        _ if container_kind == "a string" => {
            "look for a string in a string (convert with `| string`), or look in a list".to_string()
        }
        _ => "look in a string, a list or a map; to compare two values, use `==`".to_string(),
    };
    (message, hint)
}

/// Whether two values are equal as items of a list or keys of a map: of one kind (numbers
/// whole or not are one kind) and equal, lists item by item, maps key by key. minijinja's `==`
/// would also take `1` for `true`.
fn same(a: &Value, b: &Value) -> bool {
    let list = |k: ValueKind| matches!(k, ValueKind::Seq | ValueKind::Iterable);
    match (a.kind(), b.kind()) {
        (ValueKind::Number, ValueKind::Number)
        | (ValueKind::String, ValueKind::String)
        | (ValueKind::Bool, ValueKind::Bool)
        | (ValueKind::None, ValueKind::None)
        | (ValueKind::Bytes, ValueKind::Bytes) => a == b,
        (x, y) if list(x) && list(y) => match (a.try_iter(), b.try_iter()) {
            (Ok(xs), Ok(ys)) => {
                let (xs, ys): (Vec<Value>, Vec<Value>) = (xs.collect(), ys.collect());
                xs.len() == ys.len() && xs.iter().zip(&ys).all(|(x, y)| same(x, y))
            }
            _ => false,
        },
        (ValueKind::Map, ValueKind::Map) => {
            a.len() == b.len()
                && a.try_iter().is_ok_and(|mut keys| {
                    keys.all(|k| match (a.get_item(&k), b.get_item(&k)) {
                        (Ok(x), Ok(y)) if !y.is_undefined() => same(&x, &y),
                        _ => false,
                    })
                })
        }
        _ => false,
    }
}

/// `needle in container`, checked (see the module's documentation). `symbol` (`in` or
/// `not in`) and `texts` (the operands' source text) are for the message.
fn contains(
    symbol: &str,
    needle: &Value,
    container: &Value,
    texts: Option<(&str, &str)>,
) -> Result<bool, Error> {
    if needle.is_undefined() || container.is_undefined() {
        return Err(Error::new(
            ErrorKind::UndefinedError,
            format!("a value used in `{symbol}` does not exist"),
        ));
    }
    let refuse = || {
        let (n, c) = texts.map_or((None, None), |(n, c)| (Some(n), Some(c)));
        let (message, hint) =
            membership_problem(symbol, n, kind_name(needle), c, kind_name(container));
        Error::new(ErrorKind::InvalidOperation, format!("{message}; {hint}"))
    };
    match container.kind() {
        ValueKind::String => match (needle.kind(), needle.as_str(), container.as_str()) {
            (ValueKind::String, Some(n), Some(c)) => Ok(c.contains(n)),
            _ => Err(refuse()),
        },
        ValueKind::Seq | ValueKind::Iterable | ValueKind::Map => {
            Ok(container.try_iter()?.any(|item| same(&item, needle)))
        }
        _ => Err(refuse()),
    }
}

/// `drflow:in(a, b, "in\0a text\0b text")`: what `a in b` becomes.
fn member(needle: &Value, container: &Value, meta: &str) -> Result<bool, Error> {
    let mut parts = meta.split('\0');
    let symbol = parts.next().unwrap_or("in");
    let texts = parts.next().zip(parts.next());
    contains(symbol, needle, container, texts)
}

fn bug() -> Error {
    Error::new(
        ErrorKind::InvalidOperation,
        "internal error: a rewritten operator lost its arguments",
    )
}

/// Resolves `a.b.0.c` on a value the way the ordering filters' `attribute=` does.
fn path(item: &Value, path: &str) -> Value {
    let mut v = item.clone();
    for part in path.split('.') {
        v = match part.parse::<usize>() {
            Ok(i) if v.kind() == ValueKind::Seq => v.get_item_by_index(i),
            _ => v.get_attr(part),
        }
        .unwrap_or(Value::UNDEFINED);
    }
    v
}

/// Checks that the keys an ordering filter compares are all of one orderable kind.
fn one_kind(filter: &str, keys: &[Value]) -> Result<(), Error> {
    let Some(first) = keys.first() else {
        return Ok(());
    };
    for key in keys {
        if key.is_undefined() {
            return Err(Error::new(
                ErrorKind::UndefinedError,
                format!("`{filter}` was given an item without the attribute it orders by"),
            ));
        }
        if let Err((x, y, _)) = orderable(first, key) {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!(
                    "`{filter}` orders numbers or strings of one kind, but was given {x} and {y}; \
                     convert the items first, e.g. `| map('int')`"
                ),
            ));
        }
    }
    Ok(())
}

fn keys_of(filter: &str, value: &Value, attribute: Option<&str>) -> Result<(), Error> {
    let items: Vec<Value> = match value.try_iter() {
        Ok(items) => items.collect(),
        // The filter itself says what is wrong with a value it cannot iterate.
        Err(_) => return Ok(()),
    };
    match attribute {
        None => one_kind(filter, &items),
        Some(attr) => {
            for part in attr.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let keys: Vec<Value> = items.iter().map(|i| path(i, part)).collect();
                one_kind(filter, &keys)?;
            }
            Ok(())
        }
    }
}

fn min(state: &State, value: Value, kwargs: Kwargs) -> Result<Value, Error> {
    keys_of("min", &value, kwargs.peek::<Option<&str>>("attribute")?)?;
    minijinja::filters::min(state, value, kwargs)
}

fn max(state: &State, value: Value, kwargs: Kwargs) -> Result<Value, Error> {
    keys_of("max", &value, kwargs.peek::<Option<&str>>("attribute")?)?;
    minijinja::filters::max(state, value, kwargs)
}

fn sort(state: &State, value: Value, kwargs: Kwargs) -> Result<Value, Error> {
    keys_of("sort", &value, kwargs.peek::<Option<&str>>("attribute")?)?;
    minijinja::filters::sort(state, value, kwargs)
}

fn dictsort(value: &Value, kwargs: Kwargs) -> Result<Value, Error> {
    if value.kind() == ValueKind::Map {
        let keys: Vec<Value> = value.try_iter()?.collect();
        if kwargs.peek::<Option<&str>>("by")? == Some("value") {
            let values: Vec<Value> = keys
                .iter()
                .map(|k| value.get_item(k).unwrap_or_default())
                .collect();
            one_kind("dictsort", &values)?;
        } else {
            one_kind("dictsort", &keys)?;
        }
    }
    minijinja::filters::dictsort(value, kwargs)
}

fn groupby(value: Value, attribute: Option<&str>, kwargs: Kwargs) -> Result<Value, Error> {
    let attr = match attribute {
        Some(a) => Some(a),
        None => kwargs.peek::<Option<&str>>("attribute")?,
    };
    if let (Some(attr), Ok(items)) = (attr, value.try_iter()) {
        let default = kwargs.peek::<Option<Value>>("default")?;
        let keys: Vec<Value> = items
            .map(|i| match (path(&i, attr), &default) {
                (k, Some(d)) if k.is_undefined() => d.clone(),
                (k, _) => k,
            })
            .collect();
        one_kind("groupby", &keys)?;
    }
    minijinja::filters::groupby(value, attribute, kwargs)
}

// ---------------------------------------------------------------------------------------------
// Size-checked operations
// ---------------------------------------------------------------------------------------------

/// `drflow:mul(a, b, "a text")`: what `a * b` becomes.
fn mul(a: &Value, b: &Value, text: &str) -> Result<Value, Error> {
    let what = format!("`{text}`");
    if let Some((s, n)) = a
        .as_str()
        .map(|s| (s, b))
        .or_else(|| b.as_str().map(|s| (s, a)))
    {
        if let Some(n) = n.as_usize() {
            build(&what, s.len().saturating_mul(n))?;
        }
    } else if let Some((seq, n)) = [(a, b), (b, a)]
        .into_iter()
        .find(|(s, _)| matches!(s.kind(), ValueKind::Seq | ValueKind::Iterable))
        && let Some(n) = n.as_usize()
    {
        let items = seq.len().unwrap_or(0).saturating_mul(n);
        if items > MAX_ITEMS {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!(
                    "{what} would build a list of {items} items, over the limit of {MAX_ITEMS}"
                ),
            ));
        }
        build(&what, size_of(seq, MAX_RESULT_BYTES + 1).saturating_mul(n))?;
    }
    PLAIN_MUL.eval(minijinja::context! { a => a, b => b })
}

fn join(
    state: &mut State,
    value: &Value,
    joiner: Option<StringInput<'_>>,
    attribute: Option<&str>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    let sep = match &joiner {
        Some(j) => j.as_str().len(),
        None => kwargs.peek::<Option<&str>>("d")?.map_or(0, str::len),
    };
    let items = match value.len() {
        Some(n) => n,
        None => value.try_iter().map_or(0, Iterator::count),
    };
    build(
        "`join`",
        size_of(value, MAX_RESULT_BYTES + 1).saturating_add(items.saturating_mul(sep)),
    )?;
    minijinja::filters::join(state, value, joiner, attribute, kwargs)
}

fn replace(
    state: &mut State,
    value: StringInput<'_>,
    from: StringInput<'_>,
    to: StringInput<'_>,
) -> Result<Value, Error> {
    let (text, old, new) = (value.as_str(), from.as_str(), to.as_str());
    let bytes = if old.is_empty() {
        // Rust (and Python) put the replacement between every character and at both ends.
        let hits = text.chars().count() + 1;
        text.len().saturating_add(hits.saturating_mul(new.len()))
    } else {
        let hits = text.matches(old).count();
        (text.len() - hits * old.len()).saturating_add(hits.saturating_mul(new.len()))
    };
    build("`replace`", bytes)?;
    minijinja::filters::replace(state, value, from, to)
}

fn indent(
    value: StringInput<'_>,
    width: Option<usize>,
    indent_first_line: Option<bool>,
    indent_blank_lines: Option<bool>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    let w = match width {
        Some(w) => w,
        None => kwargs.peek::<Option<usize>>("width")?.unwrap_or(4),
    };
    let lines = value.as_str().split('\n').count();
    build(
        "`indent`",
        value.as_str().len().saturating_add(lines.saturating_mul(w)),
    )?;
    minijinja::filters::indent(value, width, indent_first_line, indent_blank_lines, kwargs)
}

fn format(
    state: &mut State,
    format_str: &Value,
    args: Rest<ValueOrKwargs>,
) -> Result<Value, Error> {
    if let Some(spec) = format_str.as_str() {
        // Widths and precisions pad the output: `%100000000s` builds 100 MB from nothing.
        let mut padding = 0usize;
        for run in spec.split(|c: char| !c.is_ascii_digit()) {
            if !run.is_empty() {
                padding = padding.saturating_add(run.parse::<usize>().unwrap_or(usize::MAX));
            }
        }
        if spec.contains('*') {
            for arg in args.iter() {
                if let Some(n) = arg.as_usize() {
                    padding = padding.saturating_add(n);
                }
            }
        }
        let given = args
            .iter()
            .map(|a| size_of(a, MAX_RESULT_BYTES + 1))
            .fold(0usize, usize::saturating_add);
        build(
            "`format`",
            spec.len().saturating_add(padding).saturating_add(given),
        )?;
    }
    minijinja::filters::format(state, format_str, args)
}

fn batch(
    state: &State,
    value: Value,
    count: usize,
    fill_with: Option<Value>,
) -> Result<Value, Error> {
    if fill_with.is_some() && count > MAX_ITEMS {
        return Err(too_many("batch", count));
    }
    minijinja::filters::batch(state, value, count, fill_with)
}

fn slice(
    state: &State,
    value: Value,
    count: usize,
    fill_with: Option<Value>,
) -> Result<Value, Error> {
    if count > MAX_ITEMS {
        return Err(too_many("slice", count));
    }
    minijinja::filters::slice(state, value, count, fill_with)
}

fn too_many(filter: &str, count: usize) -> Error {
    Error::new(
        ErrorKind::InvalidOperation,
        format!("`{filter}` with a count of {count} would build over {MAX_ITEMS} items"),
    )
}
