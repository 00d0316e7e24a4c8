//! `drflow.yaml`: which events start which runbook. The model, and its reader, which reports
//! every problem at once with its `file:line:col` and a hint, as the runbook compiler does
//! (it reuses the compiler's field reader and the located YAML tree).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use crate::compile::Compiler;
use crate::diag::{Diagnostic, Diagnostics, Pos, suggest};
use crate::expr::Template;
use crate::yaml::{Node, NodeKind};

use super::pattern::pattern_problems;

const TOP_FIELDS: &[&str] = &["version", "triggers"];
const TRIGGER_FIELDS: &[&str] = &[
    "name",
    "description",
    "runbook",
    "params_file",
    "signals",
    "require",
    "within",
    "cooldown",
    "params",
];
const SIGNAL_FIELDS: &[&str] = &["name", "pattern"];

/// The names a `params` template may start from.
pub const TEMPLATE_ROOTS: &[&str] = &["event", "signals", "trigger"];

/// A checked `drflow.yaml`.
#[derive(Debug, Clone, PartialEq)]
pub struct TriggerConfig {
    /// The file it was read from, as given.
    pub path: PathBuf,
    /// Its triggers, in file order.
    pub triggers: Vec<Trigger>,
}

/// One trigger: when its signals say so, start a runbook.
#[derive(Debug, Clone, PartialEq)]
pub struct Trigger {
    /// Unique in the file; lowercase letters, digits and `-`.
    pub name: String,
    /// What it is for.
    pub description: Option<String>,
    /// The runbook it starts, resolved against the directory of `drflow.yaml`.
    pub runbook: PathBuf,
    /// A parameters file for that runbook, resolved likewise.
    pub params_file: Option<PathBuf>,
    /// Its M signals, names unique within the trigger.
    pub signals: Vec<SignalSpec>,
    /// N: how many signals must be firing at once, in `1..=signals.len()`.
    pub require: usize,
    /// How recent (ms before an event's arrival) a signal's onset must be to count.
    pub within_ms: u64,
    /// How long (ms) after a firing the trigger does not fire again.
    pub cooldown_ms: u64,
    /// Parameters passed to the runbook: name to a `${{ }}` template over `event`,
    /// `signals.<name>` and `trigger.name` (checked when the file is read).
    pub params: BTreeMap<String, String>,
    /// Where its parts are written, for problems found later (a runbook that does not declare
    /// a parameter).
    pub sites: TriggerSites,
}

/// Where a trigger's parts are written in `drflow.yaml`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TriggerSites {
    /// The trigger's `name` value.
    pub name: Pos,
    /// The `runbook` value.
    pub runbook: Pos,
    /// The `params_file` value.
    pub params_file: Option<Pos>,
    /// Each `params` key.
    pub params: BTreeMap<String, Pos>,
}

/// One signal: an EventBridge event pattern whose matching events say it is firing.
#[derive(Debug, Clone, PartialEq)]
pub struct SignalSpec {
    /// Unique within its trigger; lowercase letters, digits and `-`.
    pub name: String,
    /// The pattern (checked: known operators, leaves are lists).
    pub pattern: Value,
}

impl TriggerConfig {
    /// Reads and checks a drflow.yaml; every problem as a located Diagnostic (file:line:col).
    /// On top of [`TriggerConfig::parse`], the runbook and parameters files each trigger names
    /// must exist.
    pub fn load(path: &Path) -> Result<TriggerConfig, Diagnostics> {
        let file: Arc<str> = Arc::from(path.display().to_string());
        let text = std::fs::read_to_string(path).map_err(|e| {
            Diagnostics(vec![
                Diagnostic::new(file.clone(), Pos::default(), format!("cannot read it: {e}"))
                    .with_hint(
                        "give the path of a drflow.yaml, e.g. `drflow.yaml` at the repository root",
                    ),
            ])
        })?;
        let config = TriggerConfig::parse(&text, path)?;
        let mut errors = Vec::new();
        for t in &config.triggers {
            let mut need = |p: &Path, pos: Pos, what: &str| {
                if !p.is_file() {
                    errors.push(
                        Diagnostic::new(
                            file.clone(),
                            pos,
                            format!(
                                "{what} `{}` of trigger `{}` does not exist",
                                p.display(),
                                t.name
                            ),
                        )
                        .with_hint("paths are relative to the directory drflow.yaml is in"),
                    );
                }
            };
            need(&t.runbook, t.sites.runbook, "the runbook");
            if let (Some(p), Some(pos)) = (&t.params_file, t.sites.params_file) {
                need(p, pos, "the parameters file");
            }
        }
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(Diagnostics(errors))
        }
    }

    /// Checks the text of a drflow.yaml; `path` names it in diagnostics, and its directory is
    /// what `runbook` and `params_file` are relative to. Touches no file.
    pub fn parse(text: &str, path: &Path) -> Result<TriggerConfig, Diagnostics> {
        let file: Arc<str> = Arc::from(path.display().to_string());
        let root = crate::yaml::parse(&file, text).map_err(|d| Diagnostics(vec![d]))?;
        let mut r = Compiler {
            file: file.clone(),
            errors: Vec::new(),
        };
        let dir = path.parent().unwrap_or(Path::new(""));
        let triggers = read_config(&mut r, &root, dir);
        if r.errors.is_empty() {
            return Ok(TriggerConfig {
                path: path.to_path_buf(),
                triggers,
            });
        }
        r.errors.sort_by_key(|d| d.pos);
        r.errors.dedup();
        Err(Diagnostics(r.errors))
    }
}

fn read_config(r: &mut Compiler, root: &Node, dir: &Path) -> Vec<Trigger> {
    if root.is_null() {
        r.hint(
            root.pos,
            "drflow.yaml is empty",
            "start with `version: 1` and a `triggers:` list (see docs/triggers.md)",
        );
        return Vec::new();
    }
    let Some(entries) = r.fields(root, "drflow.yaml", TOP_FIELDS) else {
        return Vec::new();
    };
    let get = |k: &str| entries.iter().find(|(key, _)| key.as_str() == Some(k));
    match get("version") {
        Some((_, v)) if v.to_value() == 1 => {}
        Some((_, v)) => r.hint(
            v.pos,
            format!("unknown version {}", v.to_value()),
            "this drflow reads `version: 1`",
        ),
        None => r.hint(
            root.pos,
            "drflow.yaml has no `version:`",
            "add `version: 1` at the top",
        ),
    }
    let Some((key, list)) = get("triggers") else {
        r.hint(
            root.pos,
            "drflow.yaml has no `triggers:`",
            "add a `triggers:` list; each trigger names a runbook and the signals that start it",
        );
        return Vec::new();
    };
    let Some(items) = list.as_seq() else {
        r.hint(
            list.pos,
            format!("`triggers` must be a list, but this is {}", list.shape()),
            "write each trigger as a `- name: …` item",
        );
        return Vec::new();
    };
    if items.is_empty() {
        r.hint(key.pos, "`triggers` is empty", "add at least one trigger");
    }
    let mut seen: BTreeMap<String, Pos> = BTreeMap::new();
    let mut out = Vec::new();
    for item in items {
        // Names are compared as written, so a duplicate is found even in a trigger with
        // other problems.
        let written = item
            .as_map()
            .and_then(|m| m.iter().find(|(k, _)| k.as_str() == Some("name")))
            .and_then(|(_, v)| Some((v.as_str()?.to_string(), v.pos)));
        if let Some((name, pos)) = written {
            match seen.get(&name) {
                Some(first) => r.hint(
                    pos,
                    format!(
                        "duplicate trigger name `{name}` (first given at line {})",
                        first.line
                    ),
                    "give each trigger its own name",
                ),
                None => {
                    seen.insert(name, pos);
                }
            }
        }
        out.extend(read_trigger(r, item, dir));
    }
    out
}

/// `dir/path` with `.` and `name/..` taken out, so messages show the path a person would
/// write (`runbooks/failover.yaml`, not `deploy/../runbooks/failover.yaml`).
fn resolve(dir: &Path, path: &str) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in dir.join(path).components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir
                if matches!(out.components().next_back(), Some(Component::Normal(_))) =>
            {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// A name of a trigger or signal: `[a-z0-9-]+`.
fn name(r: &mut Compiler, node: &Node, what: &str) -> Option<String> {
    let text = r.string(node, what)?;
    if text.is_empty()
        || !text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        r.hint(
            node.pos,
            format!("{what} `{text}` is not a valid name"),
            "use lowercase letters, digits and `-`, e.g. `primary-down`",
        );
        return None;
    }
    Some(text)
}

fn required<'a>(
    r: &mut Compiler,
    entries: &'a [(Node, Node)],
    at: &Node,
    key: &str,
    what: &str,
    hint: &str,
) -> Option<&'a Node> {
    let found = entries
        .iter()
        .find(|(k, _)| k.as_str() == Some(key))
        .map(|(_, v)| v);
    if found.is_none() {
        r.hint(at.pos, format!("{what} has no `{key}:`"), hint);
    }
    found
}

fn read_trigger(r: &mut Compiler, node: &Node, dir: &Path) -> Option<Trigger> {
    let entries = r.fields(node, "a trigger", TRIGGER_FIELDS)?;
    let get = |k: &str| {
        entries
            .iter()
            .find(|(key, _)| key.as_str() == Some(k))
            .map(|(_, v)| v)
    };
    let name_node = required(
        r,
        entries,
        node,
        "name",
        "a trigger",
        "add `name: <name>`, e.g. `name: primary-down`",
    );
    let name = name_node.and_then(|n| name(r, n, "the trigger name"));
    let what = format!("trigger `{}`", name.as_deref().unwrap_or("?"));
    let description = get("description").and_then(|v| r.string(v, "`description`"));
    let runbook_node = required(
        r,
        entries,
        node,
        "runbook",
        &what,
        "add `runbook: runbooks/<file>.yaml` (relative to drflow.yaml)",
    );
    let runbook = runbook_node
        .and_then(|v| r.string(v, "`runbook`"))
        .map(|p| resolve(dir, &p));
    let params_file = get("params_file").and_then(|v| {
        r.string(v, "`params_file`")
            .map(|p| (resolve(dir, &p), v.pos))
    });
    let signals_node = required(
        r,
        entries,
        node,
        "signals",
        &what,
        "add a `signals:` list of `{name, pattern}`",
    );
    // M is the number of signals as written: one with a problem is reported on its own.
    let written = signals_node.and_then(Node::as_seq).map_or(0, <[Node]>::len);
    let signals = signals_node.map(|v| read_signals(r, v)).unwrap_or_default();
    let require = required(
        r,
        entries,
        node,
        "require",
        &what,
        "add `require: N of M`, M being the number of signals",
    )
    .and_then(|v| read_require(r, v, written));
    let within = required(
        r,
        entries,
        node,
        "within",
        &what,
        "add `within: 5m`: how recent the signals must be",
    )
    .and_then(|v| r.duration(v, "`within`"));
    let cooldown = required(
        r,
        entries,
        node,
        "cooldown",
        &what,
        "add `cooldown: 15m` (or `0s` for none): the least time between two runs",
    )
    .and_then(|v| r.duration(v, "`cooldown`"));
    if within.is_some_and(|d| d.is_zero())
        && let Some(v) = get("within")
    {
        r.hint(
            v.pos,
            "`within` must be more than zero",
            "write how recent the signals must be, e.g. `5m`",
        );
    }
    let (params, param_sites) = get("params")
        .map(|v| read_params(r, v, &signals))
        .unwrap_or_default();
    Some(Trigger {
        name: name?,
        description,
        runbook: runbook?,
        params_file: params_file.as_ref().map(|(p, _)| p.clone()),
        signals,
        require: require?,
        within_ms: within?.as_millis() as u64,
        cooldown_ms: cooldown?.as_millis() as u64,
        params,
        sites: TriggerSites {
            name: name_node.map(|n| n.pos).unwrap_or_default(),
            runbook: runbook_node.map(|n| n.pos).unwrap_or_default(),
            params_file: params_file.map(|(_, pos)| pos),
            params: param_sites,
        },
    })
}

fn read_signals(r: &mut Compiler, node: &Node) -> Vec<SignalSpec> {
    let Some(items) = node.as_seq().filter(|i| !i.is_empty()) else {
        r.hint(
            node.pos,
            format!(
                "`signals` must be a non-empty list, but this is {}",
                node.shape()
            ),
            "write each signal as `- name: …` with a `pattern:`",
        );
        return Vec::new();
    };
    let mut out: Vec<(SignalSpec, Pos)> = Vec::new();
    for item in items {
        let Some(entries) = r.fields(item, "a signal", SIGNAL_FIELDS) else {
            continue;
        };
        let name_node = required(
            r,
            entries,
            item,
            "name",
            "a signal",
            "add `name: <name>`, e.g. `name: primary-health-check`",
        );
        let name = name_node.and_then(|n| name(r, n, "the signal name"));
        let pattern = required(
            r,
            entries,
            item,
            "pattern",
            "a signal",
            "add `pattern:`, an EventBridge event pattern",
        )
        .and_then(|p| read_pattern(r, p));
        let (Some(name), Some(pattern), Some(name_node)) = (name, pattern, name_node) else {
            continue;
        };
        if let Some((_, first)) = out.iter().find(|(s, _)| s.name == name) {
            r.hint(
                name_node.pos,
                format!(
                    "duplicate signal name `{name}` (first given at line {})",
                    first.line
                ),
                "give each signal of a trigger its own name",
            );
            continue;
        }
        out.push((SignalSpec { name, pattern }, name_node.pos));
    }
    out.into_iter().map(|(s, _)| s).collect()
}

/// The pattern as JSON, each problem located at the part of the YAML it is about.
fn read_pattern(r: &mut Compiler, node: &Node) -> Option<Value> {
    let value = node.to_value();
    let problems = pattern_problems(&value);
    for p in &problems {
        let at = locate(node, &p.path);
        r.hint(
            at.pos,
            format!("invalid event pattern: {}", p.message),
            "patterns are EventBridge event patterns: a map of fields whose leaves are lists, e.g. `source: [aws.cloudwatch]`",
        );
    }
    problems.is_empty().then_some(value)
}

/// The node a path of keys (and list indices) leads to, or the deepest one found.
fn locate<'a>(node: &'a Node, path: &[String]) -> &'a Node {
    let Some((first, rest)) = path.split_first() else {
        return node;
    };
    let next = match &node.kind {
        NodeKind::Map(entries) => entries
            .iter()
            .find(|(k, _)| k.as_str() == Some(first))
            .map(|(_, v)| v),
        NodeKind::Seq(items) => first.parse::<usize>().ok().and_then(|i| items.get(i)),
        NodeKind::Scalar { .. } => None,
    };
    next.map_or(node, |n| locate(n, rest))
}

/// `N of M`, with M the number of signals and N in `1..=M`.
fn read_require(r: &mut Compiler, node: &Node, signals: usize) -> Option<usize> {
    let text = node.to_value();
    let text = text
        .as_str()
        .map_or_else(|| text.to_string(), str::to_string);
    let words: Vec<&str> = text.split_whitespace().collect();
    let parsed = match words.as_slice() {
        [n, "of", m] => n.parse::<usize>().ok().zip(m.parse::<usize>().ok()),
        _ => None,
    };
    let Some((n, m)) = parsed else {
        r.hint(
            node.pos,
            format!("`require` must be `N of M`, but this is `{text}`"),
            format!("write e.g. `require: {signals} of {signals}` (all of this trigger's {signals} signals) or `require: 1 of {signals}`"),
        );
        return None;
    };
    if m != signals {
        r.hint(
            node.pos,
            format!(
                "`require: {n} of {m}`, but the trigger has {signals} signal{}",
                if signals == 1 { "" } else { "s" }
            ),
            format!(
                "M is the number of signals: write `{} of {signals}`",
                n.min(signals).max(1)
            ),
        );
        return None;
    }
    if n == 0 || n > m {
        r.hint(
            node.pos,
            format!("`require: {n} of {m}` cannot be met: N must be between 1 and {m}"),
            format!("write `{} of {m}`", n.clamp(1, m.max(1))),
        );
        return None;
    }
    Some(n)
}

fn read_params(
    r: &mut Compiler,
    node: &Node,
    signals: &[SignalSpec],
) -> (BTreeMap<String, String>, BTreeMap<String, Pos>) {
    let mut params = BTreeMap::new();
    let mut sites = BTreeMap::new();
    let Some(entries) = node.as_map() else {
        r.hint(
            node.pos,
            format!("`params` must be a map, but this is {}", node.shape()),
            "write `name: value` lines, e.g. `triggered_by: \"${{ trigger.name }}\"`",
        );
        return (params, sites);
    };
    for (key, value) in entries {
        let name = key.as_str().unwrap_or_default().to_string();
        let text = match &value.kind {
            NodeKind::Scalar { text, .. } if !value.is_null() => text.clone(),
            _ => {
                r.hint(
                    value.pos,
                    format!(
                        "parameter `{name}` must be text (a `${{{{ }}}}` template), but this is {}",
                        value.shape()
                    ),
                    "quote it: `name: \"${{ event.detail.alarmName }}\"`",
                );
                continue;
            }
        };
        let plain = matches!(value.kind, NodeKind::Scalar { plain: true, .. });
        check_template(r, &text, value.pos, plain, signals);
        sites.insert(name.clone(), key.pos);
        params.insert(name, text);
    }
    (params, sites)
}

/// Compiles a `params` template and checks every name it reads against what a firing gives.
fn check_template(r: &mut Compiler, text: &str, pos: Pos, plain: bool, signals: &[SignalSpec]) {
    let template = Template::compile_text(text, pos, plain, &r.file.clone(), &mut r.errors);
    let signal_names: Vec<&str> = signals.iter().map(|s| s.name.as_str()).collect();
    for e in template.exprs() {
        for (message, hint) in e.unknown_callables() {
            r.hint(e.pos, format!("`{}`: {message}", e.source), hint);
        }
        for name in e.names() {
            let parts: Vec<&str> = name.split('.').collect();
            let problem = match parts.as_slice() {
                ["event", ..] | ["signals"] | ["trigger"] | ["trigger", "name", ..] => None,
                ["signals", s, ..] if signal_names.contains(s) => None,
                ["signals", s, ..] => Some((
                    format!("`{}` refers to unknown signal `{s}`", e.source),
                    if s.contains('-') || signal_names.iter().any(|n| n.contains('-')) {
                        format!(
                            "{}; a name with `-` is written `signals['{}']`",
                            suggest(s, &signal_names),
                            signal_names.first().copied().unwrap_or("name")
                        )
                    } else {
                        suggest(s, &signal_names)
                    },
                )),
                ["trigger", f, ..] => Some((
                    format!("`{}` refers to unknown field `trigger.{f}`", e.source),
                    "a trigger gives `trigger.name`".to_string(),
                )),
                [root, ..] => Some((
                    format!("`{}` refers to unknown name `{root}`", e.source),
                    format!(
                        "templates start from {}; {}",
                        TEMPLATE_ROOTS.join(", "),
                        suggest(root, TEMPLATE_ROOTS)
                    ),
                )),
                [] => None,
            };
            if let Some((message, hint)) = problem {
                r.hint(e.pos, message, hint);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(triggers: &str) -> Result<TriggerConfig, Diagnostics> {
        TriggerConfig::parse(
            &format!("version: 1\ntriggers:\n{triggers}"),
            Path::new("deploy/drflow.yaml"),
        )
    }

    const ONE: &str = "  - name: t
    runbook: ../runbooks/failover.yaml
    params_file: ./params/eu.yaml
    signals:
      - name: hc
        pattern: { source: [aws.cloudwatch] }
      - name: lag
        pattern: { source: [aws.cloudwatch] }
    require: 1 of 2
    within: 90s
    cooldown: 0s
";

    fn messages(d: Diagnostics) -> Vec<String> {
        d.0.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn reads_a_trigger_with_paths_relative_to_the_file() {
        let c = parse(ONE).unwrap();
        let t = &c.triggers[0];
        assert_eq!(t.runbook, Path::new("runbooks/failover.yaml"));
        assert_eq!(
            t.params_file.as_deref(),
            Some(Path::new("deploy/params/eu.yaml"))
        );
        assert_eq!((t.require, t.within_ms, t.cooldown_ms), (1, 90_000, 0));
        assert_eq!(t.sites.runbook, Pos::new(4, 14));
    }

    #[test]
    fn templates_read_only_what_a_firing_gives() {
        let with = |template: &str| parse(&format!("{ONE}    params: {{ p: \"{template}\" }}\n"));
        assert!(
            with("${{ event.detail.alarmName }} ${{ signals.hc.region }} ${{ trigger.name }}")
                .is_ok()
        );
        assert!(with("by hand").is_ok());
        let e = messages(with("${{ signals.hcc.region }}").unwrap_err());
        assert!(e[0].contains("unknown signal `hcc`"), "{e:?}");
        let e = messages(with("${{ trigger.runbook }}").unwrap_err());
        assert!(e[0].contains("unknown field `trigger.runbook`"), "{e:?}");
        let e = messages(with("${{ params.x }}").unwrap_err());
        assert!(e[0].contains("unknown name `params`"), "{e:?}");
        let e = messages(with("${{ event | nosuchfilter }}").unwrap_err());
        assert!(e[0].contains("no filter `nosuchfilter`"), "{e:?}");
        let e = messages(with("${{ event.detail").unwrap_err());
        assert!(e[0].contains("never closed"), "{e:?}");
    }

    #[test]
    fn every_missing_or_wrong_part_is_reported_at_once() {
        let e =
            messages(parse("  - name: Bad_Name\n    signals: []\n    require: 1\n").unwrap_err());
        let joined = e.join("\n");
        for want in [
            "`Bad_Name` is not a valid name",
            "has no `runbook:`",
            "`signals` must be a non-empty list",
            "`require` must be `N of M`",
            "has no `within:`",
            "has no `cooldown:`",
        ] {
            assert!(joined.contains(want), "{want}\n{joined}");
        }
        let e = messages(TriggerConfig::parse("", Path::new("d.yaml")).unwrap_err());
        assert!(e[0].contains("empty"), "{e:?}");
        let e = messages(
            TriggerConfig::parse("version: 2\ntriggers: []\n", Path::new("d.yaml")).unwrap_err(),
        );
        assert!(
            e[0].contains("unknown version 2") && e[1].contains("`triggers` is empty"),
            "{e:?}"
        );
        let e = messages(parse(&ONE.replace("within: 90s", "within: 0s")).unwrap_err());
        assert!(e[0].contains("`within` must be more than zero"), "{e:?}");
    }
}
