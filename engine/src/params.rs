//! Resolving a runbook's parameters from defaults, a parameter file and `-p name=value`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::Value;

use crate::compile::{ParamDecl, Runbook, type_hint};
use crate::diag::{Diagnostic, Diagnostics, Pos, nearest};
use crate::step::{Outputs, ValueType};
use crate::values::{ParamOrigin, ResolvedParams};
use crate::yaml::Node;

/// Resolves parameters: the file's values override defaults, flags override the file.
///
/// Every problem is reported at once: unknown names (the hint lists the known ones), ill-typed
/// values, missing required parameters.
pub fn resolve(
    runbook: &Runbook,
    file: Option<(&str, &str)>,
    flags: &[(String, String)],
) -> Result<Outputs, Diagnostics> {
    resolve_located(runbook, file, flags, true).map(|r| r.values)
}

/// Like [`resolve`], keeping where each value came from (for value problems found later). With
/// `require_all` false, a required parameter that was not given is listed in
/// [`ResolvedParams::missing`] instead of being an error (`drflow validate` checks what it can).
pub fn resolve_located(
    runbook: &Runbook,
    file: Option<(&str, &str)>,
    flags: &[(String, String)],
    require_all: bool,
) -> Result<ResolvedParams, Diagnostics> {
    let mut errors = Vec::new();
    let mut values = Outputs::new();
    let mut origins = BTreeMap::new();
    // Names given a value that was refused (or that may be in a file that could not be read):
    // their error is already reported, and "required but was not given" would be false.
    let mut given: BTreeSet<String> = flags.iter().map(|(n, _)| n.clone()).collect();
    let mut file_unreadable = false;
    if let Some((path, source)) = file {
        let path: Arc<str> = Arc::from(path);
        match crate::yaml::parse(&path, source) {
            Err(d) => {
                errors.push(d);
                file_unreadable = true;
            }
            Ok(node) => {
                if let Some(entries) = node.as_map() {
                    given.extend(
                        entries
                            .iter()
                            .filter_map(|(k, _)| k.as_str())
                            .map(String::from),
                    );
                }
                file_values(
                    &node,
                    &path,
                    runbook,
                    &mut values,
                    &mut origins,
                    &mut errors,
                )
            }
        }
    }
    for (i, (name, text)) in flags.iter().enumerate() {
        let at: Arc<str> = Arc::from(format!("command line, -p flag {}", i + 1).as_str());
        let pos = Pos::new(0, 0);
        match runbook.params.iter().find(|p| &p.name == name) {
            None => errors.push(
                Diagnostic::new(
                    at,
                    pos,
                    format!("unknown parameter `{name}` in `-p {name}=…`"),
                )
                .with_hint(known_names(runbook, name)),
            ),
            Some(p) => match from_text(p, text) {
                Ok(v) => {
                    values.insert(name.clone(), v);
                    origins.insert(
                        name.clone(),
                        ParamOrigin::Flag {
                            index: i + 1,
                            text: text.clone(),
                        },
                    );
                }
                Err(msg) => {
                    // A secret's value is never echoed, not even a wrong one.
                    let shown = if p.secret { "***" } else { text.as_str() };
                    // The type's hint says how to write it; the parser's own "write e.g." would
                    // say it a second time.
                    let msg = msg.split("; write e.g.").next().unwrap_or(&msg).to_string();
                    errors.push(
                        Diagnostic::new(at, pos, format!("`-p {name}={shown}`: {msg}"))
                            .with_hint(type_hint(p.ty)),
                    )
                }
            },
        }
    }
    let mut out = Outputs::new();
    let mut missing = Vec::new();
    for p in &runbook.params {
        match values.remove(&p.name) {
            Some(v) => {
                out.insert(p.name.clone(), v);
            }
            None => match &p.default {
                Some(v) => {
                    out.insert(p.name.clone(), v.clone());
                    origins.insert(p.name.clone(), ParamOrigin::Default);
                }
                None if !require_all => missing.push(p.name.clone()),
                None if file_unreadable || given.contains(&p.name) => {}
                None => errors.push(
                    Diagnostic::new(
                        runbook.file.clone(),
                        p.pos,
                        format!("parameter `{}` is required but was not given", p.name),
                    )
                    .with_hint(format!(
                        "pass `-p {}=<{}>` or set it in a `--params-file`",
                        p.name, p.ty
                    )),
                ),
            },
        }
    }
    if errors.is_empty() {
        return Ok(ResolvedParams {
            values: out,
            origins,
            missing,
        });
    }
    // A parameter file of a runbook with secrets may hold them on any line (even a misspelt
    // one), so its lines are never quoted back; the file, line and column still are.
    if let Some((path, _)) = file
        && runbook.params.iter().any(|p| p.secret)
    {
        for d in errors.iter_mut().filter(|d| &*d.file == path) {
            d.conceal_source = true;
        }
    }
    Err(Diagnostics(errors))
}

/// The hint for an unknown parameter name: the nearest known one if any, and every known one.
fn known_names(runbook: &Runbook, name: &str) -> String {
    let names: Vec<&str> = runbook.params.iter().map(|p| p.name.as_str()).collect();
    if names.is_empty() {
        return format!("runbook `{}` takes no parameters", runbook.name);
    }
    let list = names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let known = format!(
        "runbook `{}` takes {list} (`drflow validate {} --explain` describes them)",
        runbook.name, runbook.file
    );
    match nearest(name, names.iter().copied()) {
        Some(near) => format!("did you mean `{near}`? {known}"),
        None => known,
    }
}

fn file_values(
    node: &Node,
    path: &Arc<str>,
    runbook: &Runbook,
    values: &mut Outputs,
    origins: &mut BTreeMap<String, ParamOrigin>,
    errors: &mut Vec<Diagnostic>,
) {
    let Some(entries) = node.as_map() else {
        if !node.is_null() {
            errors.push(
                Diagnostic::new(
                    path.clone(),
                    node.pos,
                    "a parameter file must be a map of names to values",
                )
                .with_hint("write one `name: value` per line"),
            );
        }
        return;
    };
    for (k, v) in entries {
        let name = k.as_str().unwrap_or_default();
        let Some(decl) = runbook.params.iter().find(|p| p.name == name) else {
            errors.push(
                Diagnostic::new(
                    path.clone(),
                    k.pos,
                    format!("unknown parameter `{name}` for runbook `{}`", runbook.name),
                )
                .with_hint(known_names(runbook, name)),
            );
            continue;
        };
        let value = v.to_value();
        if decl.ty.accepts(&value) {
            values.insert(name.to_string(), value);
            origins.insert(
                name.to_string(),
                ParamOrigin::File {
                    file: path.clone(),
                    pos: v.pos,
                },
            );
        } else {
            errors.push(
                Diagnostic::new(
                    path.clone(),
                    v.pos,
                    format!(
                        "parameter `{name}` must be {} {}, but this is {}",
                        crate::compile::article(decl.ty),
                        decl.ty,
                        v.shape()
                    ),
                )
                .with_hint(type_hint(decl.ty)),
            );
        }
    }
}

/// Converts a `-p` value to the parameter's type.
fn from_text(p: &ParamDecl, text: &str) -> Result<Value, String> {
    let value = match p.ty {
        ValueType::String => Value::String(text.to_string()),
        ValueType::Duration => {
            crate::duration::parse_duration(text)?;
            Value::String(text.to_string())
        }
        ValueType::Int => text
            .trim()
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| format!("`{}` takes a whole number", p.name))?,
        ValueType::Number => text
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| format!("`{}` takes a number", p.name))?,
        // The spellings a YAML file accepts (the 1.2 core schema), so that `-p`, a parameter
        // file and a runbook default agree; `yes`/`no`/`on`/`off`/`1`/`0` are refused everywhere.
        ValueType::Bool => match text.trim() {
            "true" | "True" | "TRUE" => Value::Bool(true),
            "false" | "False" | "FALSE" => Value::Bool(false),
            _ => return Err(format!("`{}` takes true or false", p.name)),
        },
        ValueType::List | ValueType::Map | ValueType::Any => {
            // Lists and maps are written in YAML flow style: `-p regions=[a, b]`.
            let node = crate::yaml::parse(&Arc::from("<-p>"), text).map_err(|d| d.message)?;
            node.to_value()
        }
    };
    if p.ty.accepts(&value) {
        Ok(value)
    } else {
        Err(format!(
            "`{}` takes {} {}",
            p.name,
            crate::compile::article(p.ty),
            p.ty
        ))
    }
}

/// The parameters with every secret replaced by `"***"`, for the journal, logs and reports.
pub fn redacted(runbook: &Runbook, params: &Outputs) -> Value {
    Value::Object(
        params
            .iter()
            .map(|(k, v)| {
                let secret = runbook.params.iter().any(|p| &p.name == k && p.secret);
                (
                    k.clone(),
                    if secret {
                        Value::String("***".into())
                    } else {
                        v.clone()
                    },
                )
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A registry with one no-op step type, `t.x`.
    fn registry() -> crate::Registry {
        struct X(crate::StepSpec);
        impl crate::StepType for X {
            fn spec(&self) -> &crate::StepSpec {
                &self.0
            }
            fn run<'a>(
                &'a self,
                _: &'a crate::StepContext,
                _: &'a Outputs,
            ) -> crate::StepFuture<'a> {
                Box::pin(async { Ok(Outputs::new()) })
            }
        }
        let mut reg = crate::Registry::new();
        reg.register(std::sync::Arc::new(X(crate::StepSpec::new("t.x", ""))));
        reg
    }

    fn runbook() -> Runbook {
        let src = "runbook: r\nparams:\n  flag: { type: bool, default: false }\nsteps:\n  - { id: a, uses: t.x }\n";
        crate::compile("rb.yaml", src, &registry()).unwrap()
    }

    /// The same spellings of a boolean on every route: `-p`, a parameter file, a default.
    #[test]
    fn booleans_are_spelt_the_same_on_every_route() {
        let rb = runbook();
        for (text, want) in [
            ("true", Some(true)),
            ("True", Some(true)),
            ("TRUE", Some(true)),
            ("false", Some(false)),
            ("False", Some(false)),
            ("FALSE", Some(false)),
            ("yes", None),
            ("no", None),
            ("on", None),
            ("1", None),
            ("0", None),
        ] {
            let flag = resolve(&rb, None, &[("flag".into(), text.into())]);
            let file_text = format!("flag: {text}\n");
            let file = resolve(&rb, Some(("p.yaml", &file_text)), &[]);
            match want {
                Some(b) => {
                    assert_eq!(flag.unwrap()["flag"], Value::Bool(b), "-p flag={text}");
                    assert_eq!(file.unwrap()["flag"], Value::Bool(b), "flag: {text}");
                }
                None => {
                    let flag = flag.unwrap_err();
                    let file = file.unwrap_err();
                    for d in [&flag.0[0], &file.0[0]] {
                        assert_eq!(
                            d.hint.as_deref(),
                            Some(crate::compile::BOOL_HINT),
                            "{text}: {d}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn an_unknown_name_lists_the_known_ones() {
        let rb = runbook();
        let e = resolve(&rb, None, &[("flg".into(), "true".into())]).unwrap_err();
        assert_eq!(
            e.0[0].hint.as_deref(),
            Some(
                "did you mean `flag`? runbook `r` takes `flag` (`drflow validate rb.yaml --explain` describes them)"
            )
        );
    }

    /// A required parameter given a value of the wrong type (by `-p` or in a parameter file)
    /// gets one error, about its value, not a second one saying it was not given; neither does
    /// one that may be in a parameter file that could not be read.
    #[test]
    fn a_refused_required_value_is_not_also_reported_missing() {
        let src = "runbook: r\nparams:\n  n: { type: int }\nsteps:\n  - { id: a, uses: t.x }\n";
        let rb = crate::compile("rb.yaml", src, &registry()).unwrap();
        let flag = resolve(&rb, None, &[("n".into(), "abc".into())]).unwrap_err();
        let file = resolve(&rb, Some(("p.yaml", "n: abc\n")), &[]).unwrap_err();
        let broken = resolve(&rb, Some(("p.yaml", "n: [1\n")), &[]).unwrap_err();
        for (route, e) in [("-p", flag), ("file", file), ("broken file", broken)] {
            assert_eq!(e.0.len(), 1, "{route}: {e:?}");
            assert!(!e.0[0].message.contains("not given"), "{route}: {e:?}");
        }
        // Not given anywhere: still required.
        let none = resolve(&rb, Some(("p.yaml", "{}\n")), &[]).unwrap_err();
        assert!(none.0[0].message.contains("required but was not given"));
    }
}
