//! Everything generated from the step declarations: `drflow steps` (text, Markdown, JSON) and
//! `drflow schema` (a JSON Schema for editors). The docs pages under `docs/reference/` are
//! these outputs, and a test fails when they drift.

use std::fmt::Write;

use drflow_engine::{ParamSpec, Registry, StepSpec, ValueType};
use serde_json::{Map, Value, json};

/// The JSON Schema of one parameter; the schemas of formats go to `defs` once, by name.
fn type_schema(p: &ParamSpec, defs: &mut Map<String, Value>) -> Value {
    let mut plain = match p.ty {
        ValueType::String => json!({"type": "string"}),
        ValueType::Int => json!({"type": "integer"}),
        ValueType::Number => json!({"type": "number"}),
        ValueType::Bool => json!({"type": "boolean"}),
        ValueType::Duration => json!({"anyOf": [
            {"type": "string", "pattern": "^([0-9]+(\\.[0-9]+)?(ms|s|m|h|d))+$"},
            {"type": "number", "minimum": 0}
        ]}),
        ValueType::List => json!({"type": "array"}),
        ValueType::Map => json!({"type": "object"}),
        ValueType::Any => return json!({}),
    };
    if let Value::Object(o) = &mut plain {
        if let Some(choices) = p.choices {
            o.insert("enum".into(), json!(choices));
        }
        if let Some(allowed) = p.int_choices {
            o.insert("enum".into(), json!(allowed));
        }
        if let ValueType::Int | ValueType::Number = p.ty {
            if let Some(min) = p.min {
                o.insert("minimum".into(), json!(min));
            }
            if let Some(max) = p.max {
                o.insert("maximum".into(), json!(max));
            }
        }
        let (min_key, max_key) = match p.ty {
            ValueType::List => ("minItems", "maxItems"),
            _ => ("minLength", "maxLength"),
        };
        if matches!(p.ty, ValueType::String | ValueType::List) {
            if let Some(n) = p.min_len {
                o.insert(min_key.into(), json!(n));
            }
            if let Some(n) = p.max_len {
                o.insert(max_key.into(), json!(n));
            }
        }
        if let Some(format) = p.format
            && let Some(schema) = format.schema
            && matches!(p.ty, ValueType::String | ValueType::List)
        {
            let key = format!("format_{}", format.name.replace('-', "_"));
            if !defs.contains_key(&key) {
                let mut def = Map::new();
                def.insert("type".into(), json!("string"));
                def.insert("description".into(), json!(format.doc));
                if let Value::Object(extra) = schema() {
                    def.extend(extra);
                }
                defs.insert(key.clone(), Value::Object(def));
            }
            if p.ty == ValueType::List {
                // An item may be an expression too.
                o.insert(
                    "items".into(),
                    json!({"anyOf": [
                        {"$ref": format!("#/$defs/{key}")},
                        {"$ref": "#/$defs/expression"}
                    ]}),
                );
            } else {
                o.insert("$ref".into(), json!(format!("#/$defs/{key}")));
            }
        }
    }
    if p.empty_means_none {
        // The empty string means "none" whatever the format says.
        return json!({"anyOf": [plain, {"const": ""}, {"$ref": "#/$defs/expression"}]});
    }
    // Any parameter may instead be an expression whose type is only known at run time.
    json!({"anyOf": [plain, {"$ref": "#/$defs/expression"}]})
}

fn with_schema(spec: &StepSpec, defs: &mut Map<String, Value>) -> Value {
    if spec.outputs_from_input {
        return json!({"type": "object", "description": "Any keys; they become the step's outputs."});
    }
    let mut props = Map::new();
    for p in &spec.params {
        let mut s = type_schema(p, defs);
        if let Value::Object(o) = &mut s {
            o.insert("description".into(), Value::String(p.doc.into()));
            if let Some(d) = &p.default {
                o.insert("default".into(), d.clone());
            }
        }
        props.insert(p.name.into(), s);
    }
    let required: Vec<&str> = spec
        .params
        .iter()
        .filter(|p| p.required)
        .map(|p| p.name)
        .collect();
    json!({
        "type": "object",
        "additionalProperties": false,
        "properties": props,
        "required": required,
    })
}

/// A JSON Schema (draft 2020-12) for runbook files, generated from the registry.
pub fn schema(registry: &Registry) -> Value {
    let names: Vec<&str> = registry.names().collect();
    let mut defs = Map::new();
    let mut cases = Vec::new();
    for t in registry.iter() {
        let spec = t.spec();
        let key = format!("with_{}", spec.name.replace('.', "_"));
        let with = with_schema(spec, &mut defs);
        defs.insert(key.clone(), with);
        cases.push(json!({
            "if": {"properties": {"uses": {"const": spec.name}}, "required": ["uses"]},
            "then": {"properties": {"with": {"$ref": format!("#/$defs/{key}")}}},
        }));
    }
    defs.insert(
        "expression".into(),
        json!({"type": "string", "pattern": "\\$\\{\\{.*\\}\\}", "description": "A `${{ … }}` expression."}),
    );
    defs.insert(
        "duration".into(),
        json!({"type": "string", "pattern": "^([0-9]+(\\.[0-9]+)?(ms|s|m|h|d))+$"}),
    );
    let type_names: Vec<&str> = ValueType::ALL.iter().map(|t| t.name()).collect();
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://github.com/drflow/drflow/docs/reference/runbook.schema.json",
        "title": "drflow runbook",
        "type": "object",
        "additionalProperties": false,
        "required": ["runbook", "steps"],
        "properties": {
            "runbook": {"type": "string", "description": "The runbook's name."},
            "description": {"type": "string"},
            "params": {
                "type": "object",
                "additionalProperties": {
                    "type": "object",
                    "additionalProperties": false,
                    "properties": {
                        "type": {"enum": type_names},
                        "default": {},
                        "description": {"type": "string"},
                        "secret": {"type": "boolean"}
                    }
                }
            },
            "lock": {"type": "string", "description": "Only one live run may hold this key."},
            "on_failure": {"enum": ["stop", "rollback"]},
            "outputs": {"type": "object"},
            "steps": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["id", "uses"],
                    "properties": {
                        "id": {"type": "string", "pattern": "^[a-z][a-z0-9_]*$"},
                        "description": {"type": "string"},
                        "uses": {"enum": names},
                        "with": {"type": "object"},
                        "needs": {"anyOf": [
                            {"type": "string"},
                            {"type": "array", "items": {"type": "string"}}
                        ]},
                        "if": {"anyOf": [{"type": "string"}, {"type": "boolean"}]},
                        "retry": {
                            "type": "object",
                            "additionalProperties": false,
                            "properties": {
                                "attempts": {"type": "integer", "minimum": 1, "maximum": 100},
                                "backoff": {"$ref": "#/$defs/duration"},
                                "max_backoff": {"$ref": "#/$defs/duration"},
                                "on": {"type": "array", "items": {"type": "string"}}
                            }
                        },
                        "timeout": {"$ref": "#/$defs/duration"},
                        "continue_on_error": {"type": "boolean"}
                    },
                    "allOf": cases
                }
            }
        },
        "$defs": defs,
    })
}

/// The step reference as Markdown (the page `docs/reference/steps.md`).
pub fn markdown(registry: &Registry) -> String {
    let mut out = String::from(
        "# Step reference\n\n<!-- Generated by `drflow steps --format markdown`; do not edit by hand. -->\n\n",
    );
    for t in registry.iter() {
        let s = t.spec();
        let _ = writeln!(out, "- [`{}`](#{})", s.name, s.name.replace('.', ""));
    }
    out.push('\n');
    for t in registry.iter() {
        let s = t.spec();
        let _ = writeln!(out, "## `{}`\n\n{}\n", s.name, s.doc);
        if s.has_undo {
            out.push_str("Has an undo action (used by rollback and destroy).\n\n");
        }
        if s.destructive {
            out.push_str(
                "Destructive: a runbook using it lists what it will delete and asks before it \
                 runs (`--yes` confirms in advance).\n\n",
            );
        }
        if s.outputs_from_input {
            out.push_str("Takes any keys under `with:` and outputs them as they are.\n\n");
        }
        if s.outputs_not_secret {
            out.push_str(
                "Its outputs stay in clear when an input is secret: they never carry an input's value.\n\n",
            );
        }
        if !s.params.is_empty() {
            out.push_str(
                "| parameter | type | required | default | description |\n|---|---|---|---|---|\n",
            );
            for p in &s.params {
                let default = p
                    .default
                    .as_ref()
                    .map(|d| format!("`{d}`"))
                    .unwrap_or_default();
                let mut doc = p.doc.to_string();
                let checks = p.constraint_docs();
                if !checks.is_empty() {
                    doc.push_str(&format!(" Allowed: {}.", checks.join("; ")));
                }
                let doc = doc.replace('|', "\\|");
                let _ = writeln!(
                    out,
                    "| `{}` | {} | {} | {} | {} |",
                    p.name,
                    p.ty,
                    if p.required { "yes" } else { "no" },
                    default,
                    doc
                );
            }
            out.push('\n');
        }
        if !s.rules.is_empty() {
            out.push_str("Rules over several parameters:\n\n");
            for r in &s.rules {
                let _ = writeln!(out, "- {}", r.doc);
            }
            out.push('\n');
        }
        if !s.outputs.is_empty() {
            out.push_str("| output | type | description |\n|---|---|---|\n");
            for o in &s.outputs {
                let echo = o
                    .echoes
                    .map(|i| format!(" Always equals the parameter `{i}`."))
                    .unwrap_or_default();
                let _ = writeln!(out, "| `{}` | {} | {}{echo} |", o.name, o.ty, o.doc);
            }
            out.push('\n');
        }
    }
    out
}

/// The step reference for a terminal.
pub fn text(registry: &Registry) -> String {
    let mut out = String::new();
    for t in registry.iter() {
        let s = t.spec();
        let _ = writeln!(
            out,
            "{}{}{}\n  {}",
            s.name,
            if s.has_undo { "  (undo)" } else { "" },
            if s.destructive { "  (destructive)" } else { "" },
            s.doc
        );
        for p in &s.params {
            let req = if p.required {
                "required".to_string()
            } else {
                p.default
                    .as_ref()
                    .map(|d| format!("default {d}"))
                    .unwrap_or_else(|| "optional".into())
            };
            let _ = writeln!(
                out,
                "    with.{:<18} {:<8} {:<16} {}",
                p.name,
                p.ty.name(),
                req,
                p.doc
            );
            let checks = p.constraint_docs();
            if !checks.is_empty() {
                let _ = writeln!(out, "    {:<49} allowed: {}", "", checks.join("; "));
            }
        }
        for r in &s.rules {
            let _ = writeln!(out, "    rule: {}", r.doc);
        }
        for o in &s.outputs {
            let _ = writeln!(
                out,
                "    out.{:<19} {:<8} {:<16} {}",
                o.name,
                o.ty.name(),
                "",
                o.doc
            );
        }
        out.push('\n');
    }
    out
}

/// The step declarations as JSON.
pub fn json(registry: &Registry) -> Value {
    Value::Array(
        registry
            .iter()
            .map(|t| serde_json::to_value(t.spec()).unwrap_or(Value::Null))
            .collect(),
    )
}
