//! `drflow validate`: compile runbooks and check the values known before a run (literals, and
//! with `-p`/`--params-file` a deployment's parameters), without running anything; and the same
//! value check at the start of `drflow run`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::Args;
use drflow_engine::{
    CheckTime, Diagnostics, ParamSpec, Registry, ResolvedParams, Runbook, SkipReason, Template,
    ValueReport, ValueType, check_values, resolve_params_located,
};
use serde_json::Value;

use crate::{EXIT_INVALID, EXIT_OK, Failure, count, load, parse_flags, read};

/// `drflow validate`.
#[derive(Args)]
pub struct ValidateArgs {
    /// Runbook files.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Check the values a run would get with this parameter: `-p name=value` (one FILE only).
    #[arg(short = 'p', long = "param", value_name = "NAME=VALUE")]
    params: Vec<String>,
    /// Check the values a run would get with these parameters (`name: value` lines; one FILE
    /// only); `-p` overrides it.
    #[arg(long)]
    params_file: Option<PathBuf>,
    /// Also list each runbook's parameters: type, default, description, whether secret, and
    /// the checks their values get from the steps that use them.
    #[arg(long)]
    explain: bool,
}

/// Compiles each file, resolves the parameters given (a required parameter left out only skips
/// the checks that need it), checks every value known before a run, and reports.
pub fn cmd_validate(args: &ValidateArgs) -> Result<u8, Failure> {
    if args.files.len() > 1 && (!args.params.is_empty() || args.params_file.is_some()) {
        return Err(Failure::invalid(
            "error: -p and --params-file give the parameters of one runbook, but several files were given\n  hint: validate one runbook at a time with its parameters\n",
        ));
    }
    let flags = parse_flags(&args.params)?;
    // Compiling never opens the backend, so the default configuration is as good as any.
    let registry = drflow_steps::registry(&drflow_steps::CloudConfig::default());
    let mut code = EXIT_OK;
    for file in &args.files {
        match validate_one(
            file,
            &registry,
            args.params_file.as_deref(),
            &flags,
            args.explain,
        ) {
            Ok(()) => {}
            Err(f) => {
                eprint!("{}", f.message);
                code = EXIT_INVALID;
            }
        }
    }
    Ok(code)
}

fn validate_one(
    file: &Path,
    registry: &Registry,
    params_file: Option<&Path>,
    flags: &[(String, String)],
    explain: bool,
) -> Result<(), Failure> {
    let (rb, source) = load(file, registry)?;
    let (params, report) =
        resolve_and_check(&rb, &source, params_file, flags, CheckTime::Validate, false)?;
    outln!(
        "{}: ok ({}, {}, {})",
        file.display(),
        count(rb.steps.len(), "step"),
        count(rb.params.len(), "param"),
        count(rb.outputs.len(), "output")
    );
    out!("{}", skipped_note(&report));
    if explain {
        out!("{}", explain_params(&rb, &params));
    }
    Ok(())
}

/// Resolves the parameters and checks every value known before the run; any problem is an
/// invalid-input failure with every problem located. `require_all` makes a required parameter
/// that was not given an error (a run), not a skipped check (`validate`).
pub fn resolve_and_check(
    rb: &Runbook,
    runbook_source: &str,
    params_file: Option<&Path>,
    flags: &[(String, String)],
    time: CheckTime<'_>,
    require_all: bool,
) -> Result<(ResolvedParams, ValueReport), Failure> {
    let params_source = match params_file {
        Some(p) => Some((p.display().to_string(), read(p)?)),
        None => None,
    };
    let sources = || {
        let mut sources = vec![(&*rb.file, runbook_source)];
        if let Some((path, text)) = &params_source {
            sources.push((path.as_str(), text.as_str()));
        }
        sources
    };
    let params = resolve_params_located(
        rb,
        params_source
            .as_ref()
            .map(|(p, s)| (p.as_str(), s.as_str())),
        flags,
        require_all,
    )
    .map_err(|d| Failure::diagnostics(d, &sources()))?;
    let report = check_values(rb, &params, time);
    if !report.problems.is_empty() {
        return Err(Failure::diagnostics(
            Diagnostics(report.problems.clone()),
            &sources(),
        ));
    }
    Ok((params, report))
}

/// What `validate` could not check, and why.
fn skipped_note(report: &ValueReport) -> String {
    let mut missing: Vec<&str> = Vec::new();
    let mut missing_count = 0;
    let mut at_run = 0;
    for s in &report.skipped {
        match &s.reason {
            SkipReason::MissingParams(names) => {
                missing_count += 1;
                for n in names {
                    if !missing.contains(&n.as_str()) {
                        missing.push(n);
                    }
                }
            }
            SkipReason::ReadsEnvOrRun => at_run += 1,
        }
    }
    let mut out = String::new();
    if missing_count > 0 {
        let names: Vec<String> = missing.iter().map(|n| format!("`{n}`")).collect();
        let one_param = missing.len() == 1;
        let _ = writeln!(
            out,
            "  {} skipped: {} {} without a value ({}); pass {} with -p or --params-file to check {}",
            count(missing_count, "value check"),
            if missing_count == 1 {
                "it reads"
            } else {
                "they read"
            },
            if one_param {
                "a parameter"
            } else {
                "parameters"
            },
            names.join(", "),
            if one_param { "it" } else { "them" },
            if missing_count == 1 { "it" } else { "them" },
        );
    }
    if at_run > 0 {
        let _ = writeln!(
            out,
            "  {} left to the run: {} `env` or `run`, which only the run knows",
            count(at_run, "value check"),
            if at_run == 1 { "it reads" } else { "they read" },
        );
    }
    out
}

/// The runbook's parameters for people: type, default or "required", secret, description, and
/// the checks the steps that use each one give its value.
fn explain_params(rb: &Runbook, params: &ResolvedParams) -> String {
    let mut out = String::new();
    if rb.params.is_empty() {
        let _ = writeln!(out, "\nrunbook `{}` takes no parameters", rb.name);
        return out;
    }
    let _ = writeln!(out, "\nparameters of `{}`:", rb.name);
    for p in &rb.params {
        let mut head = format!("  {}  {}", p.name, p.ty);
        match (&p.default, p.secret) {
            (Some(_), true) => head.push_str("  default ***"),
            (Some(d), false) => {
                let _ = write!(head, "  default {}", shown(d));
            }
            (None, _) => head.push_str("  required"),
        }
        if p.secret {
            head.push_str("  secret: never journaled or printed");
        }
        if let Some(v) = params.values.get(&p.name)
            && p.default.as_ref() != Some(v)
            && !p.secret
        {
            let _ = write!(head, "  (given: {})", shown(v));
        }
        let _ = writeln!(out, "{head}");
        if !p.description.is_empty() {
            let _ = writeln!(out, "      {}", p.description);
        }
        let (users, checks) = uses_of(rb, &p.name);
        for check in checks {
            let _ = writeln!(out, "      - {check}");
        }
        if !users.is_empty() {
            let shown: Vec<&str> = users.iter().take(4).map(String::as_str).collect();
            let more = users.len().saturating_sub(4);
            let _ = writeln!(
                out,
                "      used by: {}{}",
                shown.join(", "),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                }
            );
        }
    }
    out
}

fn shown(v: &Value) -> String {
    match v {
        Value::String(s) if s.is_empty() => "\"\" (empty)".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The steps that use a parameter as one of their inputs (`step.input`), and the checks its
/// value gets there: every declared constraint, the tightest of each bound.
fn uses_of(rb: &Runbook, name: &str) -> (Vec<String>, Vec<String>) {
    let exact = format!("params.{name}");
    let mut users = Vec::new();
    let mut specs: Vec<ParamSpec> = Vec::new();
    let mut rules: Vec<String> = Vec::new();
    for step in &rb.steps {
        let spec = step.step_type.spec();
        for (key, t) in step.with.iter() {
            let reads = t.exprs().iter().any(|e| {
                e.refs
                    .iter()
                    .any(|r| matches!(r, drflow_engine::Ref::Param(p) if p == name))
            });
            if !reads {
                continue;
            }
            users.push(format!("{}.{key}", step.id));
            if let Template::Expr(e) = t
                && e.source == exact
                && let Some(p) = spec.param(key)
            {
                specs.push(p.clone());
            }
            for rule in &spec.rules {
                // Said once, whichever step's inputs it is phrased in.
                let doc = rule
                    .doc
                    .split(" (`")
                    .next()
                    .unwrap_or(&rule.doc)
                    .to_string();
                if rule.reads.contains(&key.as_str()) && !rules.contains(&doc) {
                    rules.push(doc);
                }
            }
        }
    }
    let mut checks = Vec::new();
    if let Some(merged) = merge(&specs) {
        checks.extend(merged.constraint_docs());
        for s in &specs {
            if let Some(f) = s.format
                && merged.format.is_none_or(|m| m.name != f.name)
                && !checks.contains(&f.doc.to_string())
            {
                checks.push(f.doc.to_string());
            }
        }
    }
    for r in rules {
        checks.push(format!("with other inputs: {}", r.trim_end_matches('.')));
    }
    (users, checks)
}

/// One declaration with the tightest of every bound of several (the checks one value gets when
/// it feeds several inputs).
fn merge(specs: &[ParamSpec]) -> Option<ParamSpec> {
    let mut out = specs.first()?.clone();
    for s in &specs[1..] {
        out.choices = out.choices.or(s.choices);
        out.int_choices = out.int_choices.or(s.int_choices);
        out.min = max_opt(out.min, s.min);
        out.max = min_opt(out.max, s.max);
        out.min_len = out.min_len.max(s.min_len);
        if let Some(m) = s.max_len
            && out.max_len.is_none_or(|o| m < o)
        {
            out.max_len = Some(m);
            out.max_len_why = s.max_len_why.clone();
        }
        out.format = out.format.or(s.format);
        out.empty_means_none &= s.empty_means_none;
    }
    if out.ty == ValueType::Any {
        out.ty = ValueType::String;
    }
    Some(out)
}

fn max_opt(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, y) => x.or(y),
    }
}

fn min_opt(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    }
}
