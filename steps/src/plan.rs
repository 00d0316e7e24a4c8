//! What a run did, or would do, to resources: read back from the cloud steps' `changes`
//! outputs (one line per resource created, repaired, replaced or deleted, written by the shared
//! find-or-create loop) and from an undo's `deleted` lines.
//!
//! `drflow run --plan` runs the runbook against a scratch copy of the world
//! ([`crate::scratch_registry`]) and shows the [`Plan`] of that run: the real run would do the
//! same, except that resources not yet created get their ids only when they are.

use std::fmt;

use drflow_engine::Outputs;
use serde::Serialize;
use serde_json::Value;

/// What happens to one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// It does not exist and is created.
    Create,
    /// It exists but drifted; it is changed in place.
    Update,
    /// It drifted on a field that cannot change in place; it is replaced.
    Replace,
    /// It is deleted.
    Delete,
}

impl Action {
    /// The mark a plan shows in front of the resource: `+`, `~`, `-/+` or `-`.
    pub fn mark(self) -> &'static str {
        match self {
            Action::Create => "+",
            Action::Update => "~",
            Action::Replace => "-/+",
            Action::Delete => "-",
        }
    }
}

/// One resource of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResourceChange {
    /// What happens to it.
    pub action: Action,
    /// Its kind, as `drflow sim show` names it (`vpc`, `dns_record`).
    pub kind: String,
    /// Its name (within its parent, for a child).
    pub name: String,
    /// For a child (a route, a record, a listener): the id of the resource it lives in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// Its region, or `global`.
    pub region: String,
    /// For updates and replacements: what drifted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl ResourceChange {
    /// Reads one line of a step's `changes` output (or an undo's `deleted` output):
    /// `created <kind> <name> (<region>)`, `repaired <kind> <name> (<region>): <what> differed`,
    /// `replaced <kind> <name> (<region>) (…): <why>`, `deleted <kind> <name> (<region>)`.
    /// `None` for any other line.
    pub fn parse(line: &str) -> Option<ResourceChange> {
        let (verb, rest) = line.split_once(' ')?;
        let action = match verb {
            "created" => Action::Create,
            "repaired" => Action::Update,
            "replaced" => Action::Replace,
            "deleted" => Action::Delete,
            _ => return None,
        };
        let (kind, rest) = rest.split_once(' ')?;
        // Names may hold spaces (`api.example.com. A primary`); a region never does, and the
        // label ends at the first ` (<region>)`.
        let (name, after) = find_region(rest)?;
        let (region, tail) = after;
        // A child is `<name> in <parent id>`; an id never holds a space.
        let (name, parent) = match name.rsplit_once(" in ") {
            Some((n, p)) if !n.is_empty() && !p.is_empty() && !p.contains(' ') => (n, Some(p)),
            _ => (name, None),
        };
        let detail = match action {
            Action::Update | Action::Replace => tail
                .split_once(": ")
                .map(|(_, d)| d.trim_end_matches(" differed").to_string()),
            _ => None,
        };
        Some(ResourceChange {
            action,
            kind: kind.to_string(),
            name: name.to_string(),
            parent: parent.map(str::to_string),
            region: region.to_string(),
            detail,
        })
    }
}

/// Splits `<name> (<region>)<tail>` at the first parenthesised word.
fn find_region(s: &str) -> Option<(&str, (&str, &str))> {
    let mut from = 0;
    while let Some(i) = s[from..].find(" (").map(|i| i + from) {
        let inner = &s[i + 2..];
        if let Some(end) = inner.find(')') {
            let region = &inner[..end];
            if !region.is_empty() && !region.contains(' ') {
                return Some((&s[..i], (region, &inner[end + 1..])));
            }
        }
        from = i + 2;
    }
    None
}

impl fmt::Display for ResourceChange {
    /// `+ vpc vpc-eu (eu-south-1)`, `~ sqs_queue q-eu (eu-south-1): visibility_timeout_seconds
    /// drifted`, `-/+ … : why it is replaced`, `- …`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let label = crate::backend::Label {
            kind: &self.kind,
            name: &self.name,
            parent: self.parent.as_deref(),
            region: &self.region,
        };
        write!(f, "{} {label}", self.action.mark())?;
        match (&self.detail, self.action) {
            (Some(d), Action::Update) => write!(f, ": {d} drifted"),
            (Some(d), _) => write!(f, ": {d}"),
            (None, _) => Ok(()),
        }
    }
}

/// Every resource a run created, changed or deleted, in the order the steps reported them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// One entry per resource (a resource two steps report is listed once, as first reported).
    pub changes: Vec<ResourceChange>,
}

impl Plan {
    /// Adds the lines of one step's outputs: its `changes` (provisioning steps) and, for an
    /// undo, its `deleted` lines.
    pub fn add_step_outputs(&mut self, outputs: &Outputs) {
        for key in ["changes", "deleted"] {
            if let Some(lines) = outputs.get(key).and_then(Value::as_array) {
                self.add_lines(lines.iter().filter_map(Value::as_str));
            }
        }
    }

    /// Adds change lines (see [`ResourceChange::parse`]); other lines are ignored.
    pub fn add_lines<'a>(&mut self, lines: impl IntoIterator<Item = &'a str>) {
        for change in lines.into_iter().filter_map(ResourceChange::parse) {
            let seen = self.changes.iter().any(|c| {
                c.kind == change.kind
                    && c.name == change.name
                    && c.parent == change.parent
                    && c.region == change.region
            });
            if !seen {
                self.changes.push(change);
            }
        }
    }

    /// How many resources would be created, changed (updated or replaced) and deleted.
    pub fn counts(&self) -> (usize, usize, usize) {
        let n = |f: fn(Action) -> bool| self.changes.iter().filter(|c| f(c.action)).count();
        (
            n(|a| a == Action::Create),
            n(|a| matches!(a, Action::Update | Action::Replace)),
            n(|a| a == Action::Delete),
        )
    }

    /// Whether the run changes nothing.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// The resources deleted (or replaced, which deletes the old one).
    pub fn deletions(&self) -> impl Iterator<Item = &ResourceChange> {
        self.changes
            .iter()
            .filter(|c| matches!(c.action, Action::Delete | Action::Replace))
    }

    /// `Plan: 3 to create, 1 to change, 0 to delete.`
    pub fn count_line(&self) -> String {
        let (c, u, d) = self.counts();
        format!("Plan: {c} to create, {u} to change, {d} to delete.")
    }
}

/// The outputs of a step type that say what it decided or would do, in the order a plan shows
/// them: `dr.decide`'s decision and reason, the promotion's kind, the capacity asked for. Empty
/// for a type whose resource changes (`changes`, `actions`) say all of it.
pub fn decisive_outputs(step_type: &str) -> &'static [&'static str] {
    match step_type {
        "dr.discover" => &["serving_region", "routing_policy", "unreachable"],
        "dr.read_signals" => &["health_check_down", "alarms_down", "probe_down"],
        "rds.describe_global_cluster" => &[
            "writer_region",
            "primary_db_reachable",
            "data_at_risk_ms",
            "writes_at_risk",
        ],
        "dr.decide" => &["decision", "reason"],
        "dr.fence" => &["fenced", "detail"],
        "rds.promote_global_cluster" => &["mode", "promoted", "lost_writes", "rpo_seconds"],
        "autoscaling.match_capacity" => &["target_capacity", "in_service", "shortfall"],
        "route53.shift_traffic" => &["healthy_targets"],
        "route53.test_dns_answer" => &["answer"],
        "dr.failover_report" => &[
            "decision",
            "rto_seconds",
            "rpo_seconds",
            "lost_writes",
            "shortfall",
        ],
        "dr.readiness" => &["ready", "summary"],
        _ => &[],
    }
}

/// Whether a step type's `actions` output lists calls the step itself makes. `false` for
/// `dr.failover_report`, whose `actions` gathers every other step's: a plan shows each action
/// once, under the step that makes it.
pub fn makes_its_actions(step_type: &str) -> bool {
    step_type != "dr.failover_report"
}

/// How long a client's resolver keeps an answer for `record_name` in `world`: the longest TTL
/// of the name's records (an alias to a load balancer has the sim's
/// [`crate::sim::SimConfig::dns_alias_ttl_ms`], 60 s), in milliseconds. `None` when the world
/// holds no record of that name.
pub fn record_ttl_ms(world: &crate::sim::World, record_name: &str) -> Option<u64> {
    let name = crate::sim::dns::normalize(record_name);
    world
        .regions
        .get(crate::backend::GLOBAL)?
        .values()
        .filter(|r| r.resource.kind == crate::Kind::DnsRecord)
        .map(|r| {
            crate::sim::dns::ServedRecord::from_spec(
                &r.resource.id,
                &r.resource.spec,
                &world.config,
            )
        })
        .filter(|r| r.name == name)
        .map(|r| r.ttl_ms)
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_line_the_find_or_create_loop_writes() {
        let c = ResourceChange::parse("created vpc vpc-eu (eu-south-1)").unwrap();
        assert_eq!(c.to_string(), "+ vpc vpc-eu (eu-south-1)");
        let c = ResourceChange::parse(
            "repaired dns_record api.example.com. A primary (global): spec.weight, tag Name differed",
        )
        .unwrap();
        assert_eq!(c.action, Action::Update);
        assert_eq!(c.name, "api.example.com. A primary");
        assert_eq!(c.detail.as_deref(), Some("spec.weight, tag Name"));
        let c = ResourceChange::parse(
            "replaced health_check health-check-primary-eu (global) (created 1234; deleted 99): \
             request_interval was 30, which cannot change in place",
        )
        .unwrap();
        assert_eq!(c.action, Action::Replace);
        assert_eq!(c.region, "global");
        assert_eq!(
            c.to_string(),
            "-/+ health_check health-check-primary-eu (global): request_interval was 30, which \
             cannot change in place"
        );
        let c =
            ResourceChange::parse("deleted sns_subscription sns-topic-eu email:a@b.c (eu-west-1)")
                .unwrap();
        assert_eq!(c.name, "sns-topic-eu email:a@b.c");
        assert_eq!(c.action, Action::Delete);
        let c = ResourceChange::parse("created route 0.0.0.0/0 in rtb-0a1b (eu-south-1)").unwrap();
        assert_eq!(c.name, "0.0.0.0/0");
        assert_eq!(c.parent.as_deref(), Some("rtb-0a1b"));
        assert_eq!(c.to_string(), "+ route 0.0.0.0/0 in rtb-0a1b (eu-south-1)");
        assert!(ResourceChange::parse("kept vpc v (r)").is_none());
        assert!(ResourceChange::parse("created vpc no-region").is_none());
    }

    #[test]
    fn a_records_ttl_is_read_from_the_world() {
        use serde_json::json;
        let record = |id: &str, spec: Value| -> crate::sim::SimResource {
            serde_json::from_value(json!({
                "resource": {
                    "kind": "dns_record", "region": "global", "name": id, "id": id, "arn": "",
                    "spec": spec, "state": "available",
                },
                "created_at_ms": 0, "updated_at_ms": 0, "ready_at_ms": 0, "seq": 1,
            }))
            .expect("a resource")
        };
        let mut world = crate::sim::World::default();
        world.config.dns_alias_ttl_ms = 45_000;
        let global = world.regions.entry("global".into()).or_default();
        global.insert(
            "a".into(),
            record(
                "a",
                json!({"name": "api.example.com.", "type": "A", "set_identifier": "primary",
                       "alias_target": {"dns_name": "alb-1.elb.amazonaws.com"}}),
            ),
        );
        global.insert(
            "b".into(),
            record(
                "b",
                json!({"name": "www.example.com", "type": "A", "ttl": 300,
                       "records": ["192.0.2.1"]}),
            ),
        );
        assert_eq!(record_ttl_ms(&world, "API.example.com"), Some(45_000));
        assert_eq!(record_ttl_ms(&world, "www.example.com."), Some(300_000));
        assert_eq!(record_ttl_ms(&world, "nope.example.com"), None);
    }

    #[test]
    fn counts_and_lists_each_resource_once() {
        let mut plan = Plan::default();
        plan.add_lines([
            "created vpc a (r)",
            "created vpc a (r)",
            "repaired vpc b (r): cidr differed",
            "deleted subnet c (r)",
        ]);
        assert_eq!(plan.counts(), (1, 1, 1));
        assert_eq!(
            plan.count_line(),
            "Plan: 1 to create, 1 to change, 1 to delete."
        );
        assert_eq!(plan.deletions().count(), 1);
    }
}
