//! The `event_rule` kind on AWS: an EventBridge rule on the default bus with its targets.
//! Id = the rule name, ARN = the rule's ARN; taggable.
//!
//! Spec: `description`, `event_pattern` (an object; AWS keeps it as a JSON string) or
//! `schedule_expression`, `state` (`ENABLED`/`DISABLED`), `targets` (a list of `id`, `arn` and,
//! for another region's event bus, `role_arn`).
//!
//! find: DescribeRule, ListTargetsByRule, ListTagsForResource. create: PutRule (with tags),
//! PutTargets. update: PutRule when the rule's own keys drifted, PutTargets for the desired
//! targets and RemoveTargets for those no longer wanted when `targets` drifted, TagResource.
//! delete: RemoveTargets (AWS refuses to delete a rule that has any), DeleteRule.

use aws_sdk_eventbridge::types::{RuleState, Tag, Target};
use serde_json::{Map, Value, json};

use super::specs::{self, drifted, invalid, missing, parse_doc, tags_to_set, text};
use super::{Call, Clients};
use crate::backend::{
    CloudError, CreateRequest, ErrorKind, Identity, Kind, Resource, ResourceState, Tags,
    UpdateRequest,
};

const SVC: &str = "events";

/// The rule's own keys (PutRule sends them all).
const RULE_KEYS: &[&str] = &[
    "description",
    "event_pattern",
    "schedule_expression",
    "state",
];

pub(super) async fn find(c: &Clients, id: &Identity) -> Result<Option<Resource>, CloudError> {
    if id.kind != Kind::EventRule {
        return Err(not_here(id.kind));
    }
    describe(c, &id.region, &id.name).await
}

pub(super) async fn list(
    c: &Clients,
    region: &str,
    kind: Kind,
    _parent: Option<&str>,
) -> Result<Vec<Resource>, CloudError> {
    if kind != Kind::EventRule {
        return Err(not_here(kind));
    }
    let rc = c.region(region).await;
    let mut rules = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let out = c
            .call(
                Call::new(region, SVC, "ListRules"),
                rc.events.list_rules().set_next_token(token.clone()).send(),
            )
            .await?;
        rules.extend(
            out.rules()
                .iter()
                .filter_map(|r| Some((r.name()?.to_string(), r.arn()?.to_string()))),
        );
        token = out.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    let mut out = Vec::new();
    for (name, arn) in rules {
        // Tags first: rules drflow does not manage cost one call, not three.
        if specs::managed(&tags_of(c, region, &arn).await?)
            && let Some(r) = describe(c, region, &name).await?
        {
            out.push(r);
        }
    }
    Ok(out)
}

pub(super) async fn create(c: &Clients, req: &CreateRequest) -> Result<Resource, CloudError> {
    if req.kind != Kind::EventRule {
        return Err(not_here(req.kind));
    }
    // PutRule overwrites silently: the seam's create must not.
    if describe(c, &req.region, &req.name).await?.is_some() {
        return Err(CloudError::new(
            ErrorKind::Conflict,
            format!("event_rule {} ({}) exists already", req.name, req.region),
        ));
    }
    put_rule(c, &req.region, &req.name, &req.spec, Some(&req.tags)).await?;
    put_targets(c, &req.region, &req.name, &req.spec, &[]).await?;
    describe(c, &req.region, &req.name)
        .await?
        .ok_or_else(|| missing("rule after PutRule"))
}

pub(super) async fn update(
    c: &Clients,
    current: &Resource,
    req: &UpdateRequest,
) -> Result<Resource, CloudError> {
    let region = current.region.as_str();
    if RULE_KEYS.iter().any(|k| drifted(&req.drifted, k)) {
        put_rule(c, region, &current.name, &req.spec, None).await?;
    }
    if drifted(&req.drifted, "targets") {
        let existing: Vec<String> = current
            .spec
            .get("targets")
            .and_then(Value::as_array)
            .map(|ts| {
                ts.iter()
                    .filter_map(|t| text(t, "id").map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        put_targets(c, region, &current.name, &req.spec, &existing).await?;
    }
    let set = tags_to_set(&current.tags, &req.tags);
    if !set.is_empty() {
        let rc = c.region(region).await;
        c.call(
            Call::new(region, SVC, "TagResource"),
            rc.events
                .tag_resource()
                .resource_arn(&current.arn)
                .set_tags(Some(sdk_tags(&set)?))
                .send(),
        )
        .await?;
    }
    describe(c, region, &current.name).await?.ok_or_else(|| {
        CloudError::new(
            ErrorKind::NotFound,
            format!("event_rule {} ({region}) does not exist", current.name),
        )
    })
}

pub(super) async fn delete(c: &Clients, current: &Resource) -> Result<(), CloudError> {
    let region = current.region.as_str();
    let rc = c.region(region).await;
    // The targets as they are now, not as found earlier: AWS refuses while any is left.
    let Some(now) = describe(c, region, &current.name).await? else {
        return Err(CloudError::new(
            ErrorKind::NotFound,
            format!("event_rule {} ({region}) does not exist", current.name),
        ));
    };
    let ids = target_ids(&now.spec);
    if !ids.is_empty() {
        c.call(
            Call::new(region, SVC, "RemoveTargets"),
            rc.events
                .remove_targets()
                .rule(&current.name)
                .set_ids(Some(ids))
                .send(),
        )
        .await?;
    }
    c.call(
        Call::new(region, SVC, "DeleteRule"),
        rc.events.delete_rule().name(&current.name).send(),
    )
    .await?;
    Ok(())
}

fn not_here(kind: Kind) -> CloudError {
    CloudError::new(ErrorKind::Internal, format!("{kind} is not an events kind"))
}

fn sdk_tags(tags: &Tags) -> Result<Vec<Tag>, CloudError> {
    tags.iter()
        .map(|(k, v)| {
            Tag::builder()
                .key(k)
                .value(v)
                .build()
                .map_err(|e| invalid(format!("tag {k}: {e}")))
        })
        .collect()
}

fn target_ids(spec: &Value) -> Vec<String> {
    spec.get("targets")
        .and_then(Value::as_array)
        .map(|ts| {
            ts.iter()
                .filter_map(|t| text(t, "id").map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

async fn put_rule(
    c: &Clients,
    region: &str,
    name: &str,
    spec: &Value,
    tags: Option<&Tags>,
) -> Result<(), CloudError> {
    let rc = c.region(region).await;
    let tags = tags.map(sdk_tags).transpose()?;
    c.call(
        Call::new(region, SVC, "PutRule"),
        rc.events
            .put_rule()
            .name(name)
            .set_description(text(spec, "description").map(str::to_string))
            .set_event_pattern(spec.get("event_pattern").map(specs::json_text))
            .set_schedule_expression(text(spec, "schedule_expression").map(str::to_string))
            .set_state(text(spec, "state").map(RuleState::from))
            .set_tags(tags)
            .send(),
    )
    .await?;
    Ok(())
}

/// PutTargets with the spec's targets, and RemoveTargets for those of `existing` it no longer
/// names.
async fn put_targets(
    c: &Clients,
    region: &str,
    rule: &str,
    spec: &Value,
    existing: &[String],
) -> Result<(), CloudError> {
    let rc = c.region(region).await;
    let mut targets = Vec::new();
    for t in spec
        .get("targets")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let target = Target::builder()
            .set_id(text(t, "id").map(str::to_string))
            .set_arn(text(t, "arn").map(str::to_string))
            .set_role_arn(text(t, "role_arn").map(str::to_string))
            .build()
            .map_err(|e| {
                invalid(format!(
                    "event_rule {rule}: a target needs an id and an arn ({e})"
                ))
            })?;
        targets.push(target);
    }
    let wanted: Vec<String> = targets.iter().map(|t| t.id().to_string()).collect();
    let stale: Vec<String> = existing
        .iter()
        .filter(|id| !wanted.contains(id))
        .cloned()
        .collect();
    if !stale.is_empty() {
        c.call(
            Call::new(region, SVC, "RemoveTargets"),
            rc.events
                .remove_targets()
                .rule(rule)
                .set_ids(Some(stale))
                .send(),
        )
        .await?;
    }
    if targets.is_empty() {
        return Ok(());
    }
    let out = c
        .call(
            Call::new(region, SVC, "PutTargets"),
            rc.events
                .put_targets()
                .rule(rule)
                .set_targets(Some(targets))
                .send(),
        )
        .await?;
    // PutTargets answers 200 even when a target was refused: the entries say which and why.
    if out.failed_entry_count() > 0 {
        let why: Vec<String> = out
            .failed_entries()
            .iter()
            .map(|e| {
                format!(
                    "{}: {} {}",
                    e.target_id().unwrap_or("?"),
                    e.error_code().unwrap_or(""),
                    e.error_message().unwrap_or("")
                )
            })
            .collect();
        return Err(invalid(format!(
            "events PutTargets in {region}: rule {rule} refused {}",
            why.join("; ")
        )));
    }
    Ok(())
}

async fn tags_of(c: &Clients, region: &str, arn: &str) -> Result<Tags, CloudError> {
    let rc = c.region(region).await;
    Ok(c.call(
        Call::new(region, SVC, "ListTagsForResource"),
        rc.events.list_tags_for_resource().resource_arn(arn).send(),
    )
    .await?
    .tags()
    .iter()
    .map(|t| (t.key().to_string(), t.value().to_string()))
    .collect())
}

/// The rule as the steps write its spec, with its targets and tags.
async fn describe(c: &Clients, region: &str, name: &str) -> Result<Option<Resource>, CloudError> {
    let rc = c.region(region).await;
    let rule = match c
        .call(
            Call::new(region, SVC, "DescribeRule"),
            rc.events.describe_rule().name(name).send(),
        )
        .await
    {
        Ok(o) => o,
        Err(e) if e.kind == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let arn = rule.arn().unwrap_or("").to_string();
    let mut spec = Map::new();
    if let Some(d) = rule.description() {
        spec.insert("description".into(), json!(d));
    }
    if let Some(p) = rule.event_pattern() {
        spec.insert("event_pattern".into(), parse_doc(p));
    }
    if let Some(s) = rule.schedule_expression() {
        spec.insert("schedule_expression".into(), json!(s));
    }
    if let Some(s) = rule.state() {
        spec.insert("state".into(), json!(s.as_str()));
    }
    let mut targets = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let out = c
            .call(
                Call::new(region, SVC, "ListTargetsByRule"),
                rc.events
                    .list_targets_by_rule()
                    .rule(name)
                    .set_next_token(token.clone())
                    .send(),
            )
            .await?;
        for t in out.targets() {
            let mut o = Map::new();
            o.insert("id".into(), json!(t.id()));
            o.insert("arn".into(), json!(t.arn()));
            if let Some(r) = t.role_arn() {
                o.insert("role_arn".into(), json!(r));
            }
            targets.push(Value::Object(o));
        }
        token = out.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    spec.insert("targets".into(), Value::Array(targets));
    let tags = tags_of(c, region, &arn).await?;
    Ok(Some(Resource {
        kind: Kind::EventRule,
        region: region.to_string(),
        name: name.to_string(),
        parent: None,
        id: name.to_string(),
        arn,
        spec: Value::Object(spec),
        attrs: Map::new(),
        tags,
        state: ResourceState::Available,
        depends_on: Vec::new(),
    }))
}

#[cfg(test)]
mod tests {
    use super::super::specs::test_support::{moto, tags, unique};
    use super::*;
    use crate::cloud::drift::diff_raw as diff;

    fn req(region: &str, name: &str, spec: Value) -> CreateRequest {
        CreateRequest {
            kind: Kind::EventRule,
            region: region.into(),
            name: name.into(),
            parent: None,
            spec,
            tags: tags(name),
            depends_on: Vec::new(),
        }
    }

    fn pattern(names: &[&str]) -> Value {
        json!({
            "source": ["aws.cloudwatch"],
            "detail-type": ["CloudWatch Alarm State Change"],
            "detail": {"alarmName": names},
        })
    }

    #[tokio::test]
    async fn forwarding_rule_round_trips_updates_lists_and_deletes() {
        let Some(c) = moto("forwarding_rule_round_trips_updates_lists_and_deletes") else {
            return;
        };
        let name = unique("alarm-state-change");
        // The primary region's rule: its target is the queue region's bus, through a role.
        let desired = json!({
            "description": "Forward alarm state changes to eu-central-1, where the daemon's queue is",
            "event_pattern": pattern(&["health-check-alarm-primary-prod-eu", "regional-outage-alarm-prod-eu"]),
            "state": "ENABLED",
            "targets": [{
                "id": "to-queue-region",
                "arn": "arn:aws:events:eu-central-1:123456789012:event-bus/default",
                "role_arn": "arn:aws:iam::123456789012:role/events-forward-role-prod-eu",
            }],
        });
        let made = create(&c, &req("eu-south-1", &name, desired.clone()))
            .await
            .unwrap();
        assert!(made.arn.ends_with(&format!(":rule/{name}")), "{}", made.arn);
        let id = Identity::new(Kind::EventRule, "eu-south-1", &name);
        let found = find(&c, &id).await.unwrap().expect("found");
        assert_eq!(diff(&desired, &found.spec), Vec::<String>::new());
        assert_eq!(found.tags, tags(&name));
        assert_eq!(
            create(&c, &req("eu-south-1", &name, desired.clone()))
                .await
                .unwrap_err()
                .kind,
            ErrorKind::Conflict
        );

        // New pattern, and the target replaced by a queue: the old target must go.
        let mut changed = desired.clone();
        changed["event_pattern"] = pattern(&["regional-outage-alarm-prod-eu"]);
        changed["targets"] = json!([{"id": "drflow-daemon", "arn": "arn:aws:sqs:eu-south-1:123456789012:alarm-events-prod-eu"}]);
        let updated = update(
            &c,
            &found,
            &UpdateRequest {
                spec: changed.clone(),
                drifted: vec!["event_pattern".into(), "targets".into()],
                tags: tags(&name),
                depends_on: Vec::new(),
            },
        )
        .await
        .unwrap();
        assert_eq!(diff(&changed, &updated.spec), Vec::<String>::new());
        assert_eq!(updated.spec["targets"].as_array().unwrap().len(), 1);

        let listed = list(&c, "eu-south-1", Kind::EventRule, None).await.unwrap();
        assert!(listed.iter().any(|r| r.name == name));
        delete(&c, &updated).await.unwrap();
        assert!(find(&c, &id).await.unwrap().is_none());
        assert_eq!(
            delete(&c, &updated).await.unwrap_err().kind,
            ErrorKind::NotFound
        );
    }

    #[tokio::test]
    async fn schedule_rule_round_trips() {
        let Some(c) = moto("schedule_rule_round_trips") else {
            return;
        };
        let name = unique("replication-monitor-schedule");
        let desired = json!({
            "description": "Run the replication-lag monitor every minute (EventBridge's shortest schedule)",
            "schedule_expression": "rate(1 minute)",
            "state": "ENABLED",
            "targets": [{"id": "replication-monitor", "arn": "arn:aws:lambda:eu-central-1:123456789012:function:replication-monitor-prod-eu"}],
        });
        create(&c, &req("eu-central-1", &name, desired.clone()))
            .await
            .unwrap();
        let id = Identity::new(Kind::EventRule, "eu-central-1", &name);
        let found = find(&c, &id).await.unwrap().expect("found");
        assert_eq!(diff(&desired, &found.spec), Vec::<String>::new());
        let mut changed = desired.clone();
        changed["state"] = json!("DISABLED");
        let updated = update(
            &c,
            &found,
            &UpdateRequest {
                spec: changed.clone(),
                drifted: vec!["state".into()],
                tags: tags(&name),
                depends_on: Vec::new(),
            },
        )
        .await
        .unwrap();
        assert_eq!(updated.spec["state"], json!("DISABLED"));
        delete(&c, &updated).await.unwrap();
        assert!(find(&c, &id).await.unwrap().is_none());
    }
}
