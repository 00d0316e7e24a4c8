//! `drflow triggers check F [--events FILE.jsonl] [--output json]`: checks a drflow.yaml and
//! the runbooks it names, and replays recorded events through the triggers. The rules live in
//! `drflow_engine::triggers`; this file reads the flags and prints.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use drflow_engine::triggers::{
    Evaluator, Firing, Observation, TriggerConfig, check_runbooks, read_events,
};
use drflow_engine::{Diagnostics, Runbook, format_duration, iso8601};
use serde_json::{Value, json};

use crate::{EXIT_INVALID, EXIT_OK, Failure, OutputFormat, count, read};

/// What to do with a drflow.yaml.
#[derive(Subcommand)]
pub enum TriggersAction {
    /// Check a drflow.yaml: its patterns, `require`, durations and parameter templates, and
    /// that each trigger's runbook compiles and declares the parameters passed to it. With
    /// --events, replay recorded events through the triggers and tell what each one did.
    Check(CheckArgs),
}

/// `drflow triggers check`.
#[derive(Args)]
pub struct CheckArgs {
    /// The drflow.yaml.
    file: PathBuf,
    /// A file of EventBridge events, one JSON object per line, each arriving at its `time`.
    #[arg(long, value_name = "FILE.jsonl")]
    events: Option<PathBuf>,
    /// text or json (one document on stdout, also when the input is invalid).
    #[arg(long, default_value = "text")]
    output: OutputFormat,
}

/// Runs a `drflow triggers` command.
pub fn run(action: &TriggersAction) -> Result<u8, Failure> {
    match action {
        TriggersAction::Check(args) => {
            let json = args.output == OutputFormat::Json;
            check(args).inspect_err(|f| {
                if json && f.code == EXIT_INVALID {
                    outln!("{:#}", invalid_json(&args.file, f));
                }
            })
        }
    }
}

fn check(args: &CheckArgs) -> Result<u8, Failure> {
    let config = TriggerConfig::load(&args.file).map_err(located)?;
    // Compiling never opens the backend, so the default configuration is as good as any.
    let registry = drflow_steps::registry(&drflow_steps::CloudConfig::default());
    let runbooks = check_runbooks(&config, &registry).map_err(located)?;
    let replay = match &args.events {
        None => None,
        Some(path) => {
            let text = read(path)?;
            let events = read_events(&text, &path.display().to_string()).map_err(located)?;
            let mut evaluator = Evaluator::new(&config);
            let observed: Vec<(usize, Value, u64, Observation)> = events
                .into_iter()
                .map(|e| {
                    let o = evaluator.observe(&e.event, e.arrival_ms);
                    (e.line, e.event, e.arrival_ms, o)
                })
                .collect();
            Some((path.as_path(), observed))
        }
    };
    match args.output {
        OutputFormat::Text => {
            out!("{}", summary(&config, &runbooks));
            if let Some((path, observed)) = &replay {
                out!("{}", story(path, observed));
            }
        }
        OutputFormat::Json => {
            let mut doc = json!({
                "file": config.path.display().to_string(),
                "valid": true,
                "triggers": triggers_json(&config, &runbooks),
                "diagnostics": [],
            });
            if let Some((_, observed)) = &replay {
                doc["events"] = observed.iter().map(observation_json).collect();
            }
            outln!("{doc:#}");
        }
    }
    Ok(EXIT_OK)
}

/// Every problem rendered against the files it is in (drflow.yaml, a runbook, a parameters
/// file, the events file).
pub(crate) fn located(d: Diagnostics) -> Failure {
    let mut sources: BTreeMap<String, String> = BTreeMap::new();
    for diag in &d.0 {
        let name = diag.file.to_string();
        if !sources.contains_key(&name)
            && let Ok(text) = std::fs::read_to_string(&name)
        {
            sources.insert(name, text);
        }
    }
    let sources: Vec<(&str, &str)> = sources
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    Failure::diagnostics(d, &sources)
}

fn invalid_json(file: &Path, f: &Failure) -> Value {
    let diagnostics: Vec<Value> = if f.diagnostics.is_empty() {
        let first = f.message.lines().next().unwrap_or_default();
        vec![
            json!({"file": file.display().to_string(), "line": null, "col": null,
            "message": first.trim_start_matches("error: "), "hint": null}),
        ]
    } else {
        f.diagnostics
            .iter()
            .map(|d| {
                json!({"file": &*d.file, "line": d.pos.line, "col": d.pos.col,
                    "message": d.message, "hint": d.hint})
            })
            .collect()
    };
    json!({
        "file": file.display().to_string(),
        "valid": false,
        "triggers": [],
        "diagnostics": diagnostics,
    })
}

fn ms(d: u64) -> String {
    format_duration(std::time::Duration::from_millis(d))
}

fn summary(config: &TriggerConfig, runbooks: &[Runbook]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: ok ({})",
        config.path.display(),
        count(config.triggers.len(), "trigger")
    );
    for (t, rb) in config.triggers.iter().zip(runbooks) {
        let _ = writeln!(
            out,
            "  {} -> {} (runbook `{}`{})",
            t.name,
            t.runbook.display(),
            rb.name,
            t.params_file
                .as_ref()
                .map(|p| format!(", params file {}", p.display()))
                .unwrap_or_default()
        );
        let _ = writeln!(
            out,
            "    require {} of {} within {}, cooldown {}",
            t.require,
            t.signals.len(),
            ms(t.within_ms),
            ms(t.cooldown_ms)
        );
        let names: Vec<&str> = t.signals.iter().map(|s| s.name.as_str()).collect();
        let _ = writeln!(out, "    signals: {}", names.join(", "));
        if !t.params.is_empty() {
            let params: Vec<&str> = t.params.keys().map(String::as_str).collect();
            let _ = writeln!(out, "    params: {}", params.join(", "));
        }
    }
    out
}

/// What each replayed event did, in order.
fn story(path: &Path, observed: &[(usize, Value, u64, Observation)]) -> String {
    let mut out = String::new();
    let firings: usize = observed.iter().map(|(.., o)| o.firings.len()).sum();
    let _ = writeln!(
        out,
        "\n{}: {}, {}",
        path.display(),
        count(observed.len(), "event"),
        count(firings, "firing")
    );
    for (line, event, arrival, o) in observed {
        let what = event
            .pointer("/detail/alarmName")
            .and_then(Value::as_str)
            .unwrap_or(&o.subject);
        let state = o
            .state
            .as_deref()
            .map(|s| format!(" {s}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  line {line}  {}  {what}{state}",
            iso8601(*arrival as f64 / 1000.0)
        );
        let verdict = if o.duplicate {
            "duplicate: an event with this id was seen before; counted once".to_string()
        } else if o.matched.is_empty() {
            "matches no signal".to_string()
        } else {
            let pairs: Vec<String> = o.matched.iter().map(|(t, s)| format!("{t}/{s}")).collect();
            let mut v = format!("about {}", pairs.join(", "));
            if o.stale {
                let _ = write!(
                    v,
                    "; stale: its state ({}) is older than the newest one known for it, so it changes nothing",
                    iso8601(o.state_at_ms as f64 / 1000.0)
                );
            }
            v
        };
        let _ = writeln!(out, "    {verdict}");
        for f in &o.firings {
            out.push_str(&firing_text(f));
        }
        for s in &o.suppressed {
            let _ = writeln!(
                out,
                "    suppressed {}: its signals are met, but it is in cooldown until {}",
                s.trigger,
                iso8601(s.until_ms as f64 / 1000.0)
            );
        }
    }
    out
}

fn firing_text(f: &Firing) -> String {
    let mut out = format!("    fired {} -> {}\n", f.trigger, f.runbook.display());
    for e in &f.evidence {
        let _ = writeln!(
            out,
            "      {}: {} {} since {} (received {}{}, event {})",
            e.signal,
            alarm_name(&e.subject),
            e.state,
            iso8601(e.state_at_ms as f64 / 1000.0),
            iso8601(e.received_ms as f64 / 1000.0),
            e.region
                .as_ref()
                .map(|r| format!(", {r}"))
                .unwrap_or_default(),
            e.event_id
        );
    }
    for (k, v) in &f.params {
        let _ = writeln!(out, "      param {k} = {v}");
    }
    for (k, why) in &f.param_problems {
        let _ = writeln!(out, "      param {k} left to the runbook's default: {why}");
    }
    out
}

/// An alarm's name from its ARN (`arn:aws:cloudwatch:…:alarm:NAME`); any other subject as is.
fn alarm_name(subject: &str) -> &str {
    subject
        .split_once(":alarm:")
        .map_or(subject, |(_, name)| name)
}

fn triggers_json(config: &TriggerConfig, runbooks: &[Runbook]) -> Value {
    config
        .triggers
        .iter()
        .zip(runbooks)
        .map(|(t, rb)| {
            json!({
                "name": t.name,
                "description": t.description,
                "runbook": t.runbook.display().to_string(),
                "runbook_name": rb.name,
                "params_file": t.params_file.as_ref().map(|p| p.display().to_string()),
                "require": t.require,
                "within_seconds": t.within_ms as f64 / 1000.0,
                "cooldown_seconds": t.cooldown_ms as f64 / 1000.0,
                "signals": t.signals.iter().map(|s| json!({"name": s.name, "pattern": s.pattern})).collect::<Vec<_>>(),
                "params": t.params,
            })
        })
        .collect()
}

fn observation_json((line, event, arrival, o): &(usize, Value, u64, Observation)) -> Value {
    json!({
        "line": line,
        "id": event.get("id"),
        "arrival_ms": arrival,
        "subject": o.subject,
        "state": o.state,
        "state_at_ms": o.state_at_ms,
        "duplicate": o.duplicate,
        "stale": o.stale,
        "matched": o.matched.iter().map(|(t, s)| json!({"trigger": t, "signal": s})).collect::<Vec<_>>(),
        "firings": o.firings,
        "suppressed": o.suppressed,
    })
}
