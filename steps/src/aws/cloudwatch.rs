//! The cloudwatch kinds on AWS: `metric_alarm`, `composite_alarm` (taggable, id = the alarm
//! name) and `dashboard` (untaggable, found by its name).
//!
//! | kind | find | create / update | delete |
//! |---|---|---|---|
//! | metric_alarm | DescribeAlarms (type MetricAlarm) + ListTagsForResource | PutMetricAlarm (the whole alarm, every time) + TagResource | DeleteAlarms |
//! | composite_alarm | DescribeAlarms (type CompositeAlarm) + ListTagsForResource | PutCompositeAlarm + TagResource | DeleteAlarms |
//! | dashboard | GetDashboard | PutDashboard | DeleteDashboards |
//!
//! A `Put*` call replaces the whole alarm or dashboard, so `update` sends the whole desired spec
//! when any compared key drifted; its tags only apply at creation, so tag changes go through
//! TagResource. Metric alarm specs name the metric by `namespace`, `metric_name`, `dimensions`
//! (an object of name to value), `statistic`, `period`; the rest as PutMetricAlarm's own fields
//! in snake_case. `threshold` reads back as an integer when it is one.
//!
//! The crate is pinned to `aws-sdk-cloudwatch = "=1.99.0"`, the last release on the awsQuery
//! wire format that moto serves (see `docs/decisions.md`).

use aws_sdk_cloudwatch::types::{
    AlarmType, ComparisonOperator, CompositeAlarm, Dimension, MetricAlarm, Statistic, Tag,
};
use serde_json::{Map, Value, json};

use super::specs::{
    self, drifted, int, invalid, missing, number, parse_doc, strings, tags_to_set, text,
};
use super::{Call, Clients};
use crate::backend::{
    CloudError, CreateRequest, ErrorKind, Identity, Kind, Resource, ResourceState, Tags,
    UpdateRequest,
};

const SVC: &str = "cloudwatch";

/// Every compared key of a metric alarm's spec.
const METRIC_KEYS: &[&str] = &[
    "alarm_description",
    "actions_enabled",
    "alarm_actions",
    "ok_actions",
    "insufficient_data_actions",
    "namespace",
    "metric_name",
    "dimensions",
    "statistic",
    "extended_statistic",
    "unit",
    "period",
    "evaluation_periods",
    "datapoints_to_alarm",
    "threshold",
    "comparison_operator",
    "treat_missing_data",
];

/// Every compared key of a composite alarm's spec.
const COMPOSITE_KEYS: &[&str] = &[
    "alarm_description",
    "alarm_rule",
    "actions_enabled",
    "alarm_actions",
    "ok_actions",
    "insufficient_data_actions",
];

pub(super) async fn find(c: &Clients, id: &Identity) -> Result<Option<Resource>, CloudError> {
    match id.kind {
        Kind::MetricAlarm | Kind::CompositeAlarm => {
            find_alarm(c, &id.region, id.kind, &id.name).await
        }
        Kind::Dashboard => find_dashboard(c, &id.region, &id.name).await,
        other => Err(not_here(other)),
    }
}

pub(super) async fn list(
    c: &Clients,
    region: &str,
    kind: Kind,
    _parent: Option<&str>,
) -> Result<Vec<Resource>, CloudError> {
    match kind {
        Kind::MetricAlarm | Kind::CompositeAlarm => {
            let mut out = Vec::new();
            for r in describe_alarms(c, region, kind, None).await? {
                if specs::managed(&r.tags) {
                    out.push(r);
                }
            }
            Ok(out)
        }
        // Dashboards cannot be tagged here (the seam's table): every dashboard of the region;
        // which of them a run made is in its journal.
        Kind::Dashboard => {
            let rc = c.region(region).await;
            let mut names = Vec::new();
            let mut token: Option<String> = None;
            loop {
                let out = c
                    .call(
                        Call::new(region, SVC, "ListDashboards"),
                        rc.cloudwatch
                            .list_dashboards()
                            .set_next_token(token.clone())
                            .send(),
                    )
                    .await?;
                names.extend(
                    out.dashboard_entries()
                        .iter()
                        .filter_map(|d| d.dashboard_name().map(str::to_string)),
                );
                token = out.next_token().map(str::to_string);
                if token.is_none() {
                    break;
                }
            }
            let mut out = Vec::new();
            for n in names {
                if let Some(r) = find_dashboard(c, region, &n).await? {
                    out.push(r);
                }
            }
            Ok(out)
        }
        other => Err(not_here(other)),
    }
}

pub(super) async fn create(c: &Clients, req: &CreateRequest) -> Result<Resource, CloudError> {
    match req.kind {
        Kind::MetricAlarm | Kind::CompositeAlarm => {
            // Put* overwrites silently: the seam's create must not.
            if find_alarm(c, &req.region, req.kind, &req.name)
                .await?
                .is_some()
                || find_alarm(c, &req.region, other_alarm_kind(req.kind), &req.name)
                    .await?
                    .is_some()
            {
                return Err(exists(req.kind, &req.name, &req.region));
            }
            put_alarm(
                c,
                &req.region,
                req.kind,
                &req.name,
                &req.spec,
                Some(&req.tags),
            )
            .await?;
            find_alarm(c, &req.region, req.kind, &req.name)
                .await?
                .ok_or_else(|| missing("alarm after PutMetricAlarm"))
        }
        Kind::Dashboard => {
            if find_dashboard(c, &req.region, &req.name).await?.is_some() {
                return Err(exists(req.kind, &req.name, &req.region));
            }
            put_dashboard(c, &req.region, &req.name, &req.spec).await?;
            find_dashboard(c, &req.region, &req.name)
                .await?
                .ok_or_else(|| missing("dashboard after PutDashboard"))
        }
        other => Err(not_here(other)),
    }
}

pub(super) async fn update(
    c: &Clients,
    current: &Resource,
    req: &UpdateRequest,
) -> Result<Resource, CloudError> {
    let region = current.region.as_str();
    match current.kind {
        Kind::MetricAlarm | Kind::CompositeAlarm => {
            let keys = if current.kind == Kind::MetricAlarm {
                METRIC_KEYS
            } else {
                COMPOSITE_KEYS
            };
            if keys.iter().any(|k| drifted(&req.drifted, k)) {
                put_alarm(c, region, current.kind, &current.name, &req.spec, None).await?;
            }
            let set = tags_to_set(&current.tags, &req.tags);
            if !set.is_empty() {
                let rc = c.region(region).await;
                c.call(
                    Call::new(region, SVC, "TagResource"),
                    rc.cloudwatch
                        .tag_resource()
                        .resource_arn(&current.arn)
                        .set_tags(Some(sdk_tags(&set)))
                        .send(),
                )
                .await?;
            }
            find_alarm(c, region, current.kind, &current.name)
                .await?
                .ok_or_else(|| gone(current))
        }
        Kind::Dashboard => {
            if drifted(&req.drifted, "dashboard_body") {
                put_dashboard(c, region, &current.name, &req.spec).await?;
            }
            find_dashboard(c, region, &current.name)
                .await?
                .ok_or_else(|| gone(current))
        }
        other => Err(not_here(other)),
    }
}

pub(super) async fn delete(c: &Clients, current: &Resource) -> Result<(), CloudError> {
    let region = current.region.as_str();
    let rc = c.region(region).await;
    match current.kind {
        Kind::MetricAlarm | Kind::CompositeAlarm => {
            // DeleteAlarms answers success for a name that does not exist: the seam wants
            // NotFound then.
            if find_alarm(c, region, current.kind, &current.name)
                .await?
                .is_none()
            {
                return Err(gone(current));
            }
            c.call(
                Call::new(region, SVC, "DeleteAlarms"),
                rc.cloudwatch
                    .delete_alarms()
                    .alarm_names(&current.name)
                    .send(),
            )
            .await?;
            Ok(())
        }
        Kind::Dashboard => {
            c.call(
                Call::new(region, SVC, "DeleteDashboards"),
                rc.cloudwatch
                    .delete_dashboards()
                    .dashboard_names(&current.name)
                    .send(),
            )
            .await?;
            Ok(())
        }
        other => Err(not_here(other)),
    }
}

fn not_here(kind: Kind) -> CloudError {
    CloudError::new(
        ErrorKind::Internal,
        format!("{kind} is not a cloudwatch kind"),
    )
}

fn exists(kind: Kind, name: &str, region: &str) -> CloudError {
    CloudError::new(
        ErrorKind::Conflict,
        format!("{kind} {name} ({region}) exists already"),
    )
}

fn gone(r: &Resource) -> CloudError {
    CloudError::new(
        ErrorKind::NotFound,
        format!("{} {} ({}) does not exist", r.kind, r.name, r.region),
    )
}

fn other_alarm_kind(kind: Kind) -> Kind {
    if kind == Kind::MetricAlarm {
        Kind::CompositeAlarm
    } else {
        Kind::MetricAlarm
    }
}

fn sdk_tags(tags: &Tags) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

async fn find_alarm(
    c: &Clients,
    region: &str,
    kind: Kind,
    name: &str,
) -> Result<Option<Resource>, CloudError> {
    Ok(describe_alarms(c, region, kind, Some(name)).await?.pop())
}

/// The alarms of one kind (only `name`, when given), each with its tags.
async fn describe_alarms(
    c: &Clients,
    region: &str,
    kind: Kind,
    name: Option<&str>,
) -> Result<Vec<Resource>, CloudError> {
    let rc = c.region(region).await;
    let ty = if kind == Kind::MetricAlarm {
        AlarmType::MetricAlarm
    } else {
        AlarmType::CompositeAlarm
    };
    let mut found: Vec<(String, String, Value)> = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let out = c
            .call(
                Call::new(region, SVC, "DescribeAlarms"),
                rc.cloudwatch
                    .describe_alarms()
                    .set_alarm_names(name.map(|n| vec![n.to_string()]))
                    .alarm_types(ty.clone())
                    .set_next_token(token.clone())
                    .send(),
            )
            .await?;
        if kind == Kind::MetricAlarm {
            for a in out.metric_alarms() {
                if let (Some(n), Some(arn)) = (a.alarm_name(), a.alarm_arn())
                    && name.is_none_or(|want| want == n)
                {
                    found.push((n.to_string(), arn.to_string(), metric_spec(a)));
                }
            }
        } else {
            for a in out.composite_alarms() {
                if let (Some(n), Some(arn)) = (a.alarm_name(), a.alarm_arn())
                    && name.is_none_or(|want| want == n)
                {
                    found.push((n.to_string(), arn.to_string(), composite_spec(a)));
                }
            }
        }
        token = out.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    let mut out = Vec::new();
    for (n, arn, spec) in found {
        let tags = c
            .call(
                Call::new(region, SVC, "ListTagsForResource"),
                rc.cloudwatch
                    .list_tags_for_resource()
                    .resource_arn(&arn)
                    .send(),
            )
            .await?
            .tags()
            .iter()
            .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
            .collect();
        out.push(Resource {
            kind,
            region: region.to_string(),
            name: n.clone(),
            parent: None,
            id: n,
            arn,
            spec,
            attrs: Map::new(),
            tags,
            state: ResourceState::Available,
            depends_on: Vec::new(),
        });
    }
    Ok(out)
}

/// A metric alarm as the steps write its spec.
fn metric_spec(a: &MetricAlarm) -> Value {
    let mut s = Map::new();
    let mut put = |k: &str, v: Value| {
        s.insert(k.to_string(), v);
    };
    if let Some(d) = a.alarm_description() {
        put("alarm_description", json!(d));
    }
    put(
        "actions_enabled",
        json!(a.actions_enabled().unwrap_or(true)),
    );
    put("alarm_actions", json!(a.alarm_actions()));
    put("ok_actions", json!(a.ok_actions()));
    put(
        "insufficient_data_actions",
        json!(a.insufficient_data_actions()),
    );
    if let Some(v) = a.namespace() {
        put("namespace", json!(v));
    }
    if let Some(v) = a.metric_name() {
        put("metric_name", json!(v));
    }
    let dims: Map<String, Value> = a
        .dimensions()
        .iter()
        .filter_map(|d| Some((d.name()?.to_string(), json!(d.value()?))))
        .collect();
    put("dimensions", Value::Object(dims));
    if let Some(v) = a.statistic() {
        put("statistic", json!(v.as_str()));
    }
    if let Some(v) = a.extended_statistic() {
        put("extended_statistic", json!(v));
    }
    if let Some(v) = a.unit() {
        put("unit", json!(v.as_str()));
    }
    if let Some(v) = a.period() {
        put("period", json!(v));
    }
    if let Some(v) = a.evaluation_periods() {
        put("evaluation_periods", json!(v));
    }
    if let Some(v) = a.datapoints_to_alarm() {
        put("datapoints_to_alarm", json!(v));
    }
    if let Some(v) = a.threshold() {
        put("threshold", number(v));
    }
    if let Some(v) = a.comparison_operator() {
        put("comparison_operator", json!(v.as_str()));
    }
    if let Some(v) = a.treat_missing_data() {
        put("treat_missing_data", json!(v));
    }
    Value::Object(s)
}

/// A composite alarm as the steps write its spec.
fn composite_spec(a: &CompositeAlarm) -> Value {
    let mut s = Map::new();
    if let Some(d) = a.alarm_description() {
        s.insert("alarm_description".into(), json!(d));
    }
    if let Some(r) = a.alarm_rule() {
        s.insert("alarm_rule".into(), json!(r));
    }
    s.insert(
        "actions_enabled".into(),
        json!(a.actions_enabled().unwrap_or(true)),
    );
    s.insert("alarm_actions".into(), json!(a.alarm_actions()));
    s.insert("ok_actions".into(), json!(a.ok_actions()));
    s.insert(
        "insufficient_data_actions".into(),
        json!(a.insufficient_data_actions()),
    );
    Value::Object(s)
}

/// PutMetricAlarm or PutCompositeAlarm with the whole spec (and the tags, at creation).
async fn put_alarm(
    c: &Clients,
    region: &str,
    kind: Kind,
    name: &str,
    spec: &Value,
    tags: Option<&Tags>,
) -> Result<(), CloudError> {
    let rc = c.region(region).await;
    let tags = tags.map(sdk_tags);
    if kind == Kind::CompositeAlarm {
        let rule = text(spec, "alarm_rule").ok_or_else(|| {
            invalid(format!(
                "composite_alarm {name}: the spec has no alarm_rule"
            ))
        })?;
        c.call(
            Call::new(region, SVC, "PutCompositeAlarm"),
            rc.cloudwatch
                .put_composite_alarm()
                .alarm_name(name)
                .alarm_rule(rule)
                .set_alarm_description(text(spec, "alarm_description").map(str::to_string))
                .set_actions_enabled(spec.get("actions_enabled").and_then(Value::as_bool))
                .set_alarm_actions(strings(spec, "alarm_actions"))
                .set_ok_actions(strings(spec, "ok_actions"))
                .set_insufficient_data_actions(strings(spec, "insufficient_data_actions"))
                .set_tags(tags)
                .send(),
        )
        .await?;
        return Ok(());
    }
    let dimensions = spec.get("dimensions").and_then(Value::as_object).map(|d| {
        d.iter()
            .map(|(k, v)| {
                Dimension::builder()
                    .name(k)
                    .value(
                        v.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string()),
                    )
                    .build()
            })
            .collect::<Vec<_>>()
    });
    let required = |k: &str| {
        spec.get(k)
            .ok_or_else(|| invalid(format!("metric_alarm {name}: the spec has no {k}")))
    };
    required("comparison_operator")?;
    required("evaluation_periods")?;
    c.call(
        Call::new(region, SVC, "PutMetricAlarm"),
        rc.cloudwatch
            .put_metric_alarm()
            .alarm_name(name)
            .set_alarm_description(text(spec, "alarm_description").map(str::to_string))
            .set_actions_enabled(spec.get("actions_enabled").and_then(Value::as_bool))
            .set_alarm_actions(strings(spec, "alarm_actions"))
            .set_ok_actions(strings(spec, "ok_actions"))
            .set_insufficient_data_actions(strings(spec, "insufficient_data_actions"))
            .set_namespace(text(spec, "namespace").map(str::to_string))
            .set_metric_name(text(spec, "metric_name").map(str::to_string))
            .set_dimensions(dimensions)
            .set_statistic(text(spec, "statistic").map(Statistic::from))
            .set_extended_statistic(text(spec, "extended_statistic").map(str::to_string))
            .set_unit(text(spec, "unit").map(Into::into))
            .set_period(int(spec, "period"))
            .set_evaluation_periods(int(spec, "evaluation_periods"))
            .set_datapoints_to_alarm(int(spec, "datapoints_to_alarm"))
            .set_threshold(spec.get("threshold").and_then(Value::as_f64))
            .set_comparison_operator(
                text(spec, "comparison_operator").map(ComparisonOperator::from),
            )
            .set_treat_missing_data(text(spec, "treat_missing_data").map(str::to_string))
            .set_tags(tags)
            .send(),
    )
    .await?;
    Ok(())
}

async fn find_dashboard(
    c: &Clients,
    region: &str,
    name: &str,
) -> Result<Option<Resource>, CloudError> {
    let rc = c.region(region).await;
    let out = match c
        .call(
            Call::new(region, SVC, "GetDashboard"),
            rc.cloudwatch.get_dashboard().dashboard_name(name).send(),
        )
        .await
    {
        Ok(o) => o,
        Err(e) if e.kind == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let body = out.dashboard_body().map(parse_doc).unwrap_or(Value::Null);
    Ok(Some(Resource {
        kind: Kind::Dashboard,
        region: region.to_string(),
        name: name.to_string(),
        parent: None,
        id: name.to_string(),
        arn: out.dashboard_arn().unwrap_or("").to_string(),
        spec: json!({"dashboard_body": body}),
        attrs: Map::new(),
        tags: Tags::new(),
        state: ResourceState::Available,
        depends_on: Vec::new(),
    }))
}

async fn put_dashboard(
    c: &Clients,
    region: &str,
    name: &str,
    spec: &Value,
) -> Result<(), CloudError> {
    let body = spec
        .get("dashboard_body")
        .ok_or_else(|| invalid(format!("dashboard {name}: the spec has no dashboard_body")))?;
    let rc = c.region(region).await;
    c.call(
        Call::new(region, SVC, "PutDashboard"),
        rc.cloudwatch
            .put_dashboard()
            .dashboard_name(name)
            .dashboard_body(specs::json_text(body))
            .send(),
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::specs::test_support::{moto, tags, unique};
    use super::*;
    use crate::cloud::drift::diff_raw as diff;

    const REGION: &str = "eu-south-1";

    fn req(kind: Kind, name: &str, spec: Value) -> CreateRequest {
        CreateRequest {
            kind,
            region: REGION.into(),
            name: name.into(),
            parent: None,
            spec,
            tags: tags(name),
            depends_on: Vec::new(),
        }
    }

    /// The unhealthy-hosts alarm of SPECS10.md.
    fn metric(topic: &str) -> Value {
        json!({
            "alarm_description": "primary region has unhealthy targets behind its ALB",
            "actions_enabled": true,
            "alarm_actions": [topic],
            "ok_actions": [topic],
            "insufficient_data_actions": [],
            "namespace": "AWS/ApplicationELB",
            "metric_name": "UnHealthyHostCount",
            "dimensions": {"TargetGroup": "targetgroup/tg-prod-eu/e5881e2966e4161d", "LoadBalancer": "app/alb-prod-eu/7416dc6badb7b4a8"},
            "statistic": "Maximum",
            "period": 60,
            "evaluation_periods": 3,
            "datapoints_to_alarm": 3,
            "threshold": 0,
            "comparison_operator": "GreaterThanThreshold",
            "treat_missing_data": "notBreaching",
        })
    }

    fn update_req(spec: Value, drifted: &[&str], tags: Tags) -> UpdateRequest {
        UpdateRequest {
            spec,
            drifted: drifted.iter().map(|s| s.to_string()).collect(),
            tags,
            depends_on: Vec::new(),
        }
    }

    #[tokio::test]
    async fn metric_alarm_round_trips_updates_lists_and_deletes() {
        let Some(c) = moto("metric_alarm_round_trips_updates_lists_and_deletes") else {
            return;
        };
        let name = unique("unhealthy-hosts-alarm");
        let topic = format!("arn:aws:sns:{REGION}:123456789012:sns-topic-x");
        let desired = metric(&topic);
        let made = create(&c, &req(Kind::MetricAlarm, &name, desired.clone()))
            .await
            .unwrap();
        assert_eq!(made.id, name);
        assert!(
            made.arn.ends_with(&format!(":alarm:{name}")),
            "{}",
            made.arn
        );
        let id = Identity::new(Kind::MetricAlarm, REGION, &name);
        let found = find(&c, &id).await.unwrap().expect("found");
        assert_eq!(diff(&desired, &found.spec), Vec::<String>::new());
        assert_eq!(found.spec["threshold"], json!(0));
        assert_eq!(
            found.tags.get("ManagedBy").map(String::as_str),
            Some("drflow")
        );
        // A metric alarm is not a composite one.
        assert!(
            find(&c, &Identity::new(Kind::CompositeAlarm, REGION, &name))
                .await
                .unwrap()
                .is_none()
        );
        // Creating it again is a conflict, not a silent overwrite.
        let again = create(&c, &req(Kind::MetricAlarm, &name, desired.clone())).await;
        assert_eq!(again.unwrap_err().kind, ErrorKind::Conflict);

        let mut changed = desired.clone();
        changed["threshold"] = json!(2);
        let mut new_tags = tags(&name);
        new_tags.insert("FailoverRole".into(), "Primary".into());
        let updated = update(
            &c,
            &found,
            &update_req(changed.clone(), &["threshold"], new_tags),
        )
        .await
        .unwrap();
        assert_eq!(updated.spec["threshold"], json!(2));
        assert_eq!(diff(&changed, &updated.spec), Vec::<String>::new());
        assert_eq!(
            updated.tags.get("FailoverRole").map(String::as_str),
            Some("Primary")
        );

        let listed = list(&c, REGION, Kind::MetricAlarm, None).await.unwrap();
        assert!(listed.iter().any(|r| r.name == name));
        delete(&c, &updated).await.unwrap();
        assert!(find(&c, &id).await.unwrap().is_none());
        assert_eq!(
            delete(&c, &updated).await.unwrap_err().kind,
            ErrorKind::NotFound
        );
    }

    #[tokio::test]
    async fn composite_alarm_round_trips_updates_lists_and_deletes() {
        let Some(c) = moto("composite_alarm_round_trips_updates_lists_and_deletes") else {
            return;
        };
        let a = unique("health-check-alarm-primary");
        let b = unique("health-check-alarm-standby");
        let topic = format!("arn:aws:sns:{REGION}:123456789012:sns-topic-x");
        for n in [&a, &b] {
            create(&c, &req(Kind::MetricAlarm, n, metric(&topic)))
                .await
                .unwrap();
        }
        let name = unique("regional-outage-alarm");
        let desired = json!({
            "alarm_description": "Regional outage: the primary fails its health check while the standby passes; fail over",
            "alarm_rule": format!("ALARM(\"{a}\") AND OK(\"{b}\")"),
            "actions_enabled": true,
            "alarm_actions": [topic],
            "ok_actions": [topic],
        });
        create(&c, &req(Kind::CompositeAlarm, &name, desired.clone()))
            .await
            .unwrap();
        let id = Identity::new(Kind::CompositeAlarm, REGION, &name);
        let found = find(&c, &id).await.unwrap().expect("found");
        assert_eq!(diff(&desired, &found.spec), Vec::<String>::new());
        assert!(
            find(&c, &Identity::new(Kind::MetricAlarm, REGION, &name))
                .await
                .unwrap()
                .is_none()
        );

        let mut changed = desired.clone();
        changed["alarm_rule"] = json!(format!("ALARM(\"{a}\")"));
        let updated = update(
            &c,
            &found,
            &update_req(changed.clone(), &["alarm_rule"], tags(&name)),
        )
        .await
        .unwrap();
        assert_eq!(diff(&changed, &updated.spec), Vec::<String>::new());
        let listed = list(&c, REGION, Kind::CompositeAlarm, None).await.unwrap();
        assert!(listed.iter().any(|r| r.name == name));
        assert!(
            !listed.iter().any(|r| r.name == a),
            "metric alarms are not composite"
        );
        delete(&c, &updated).await.unwrap();
        assert!(find(&c, &id).await.unwrap().is_none());
        for n in [&a, &b] {
            let r = find(&c, &Identity::new(Kind::MetricAlarm, REGION, n))
                .await
                .unwrap()
                .unwrap();
            delete(&c, &r).await.unwrap();
        }
    }

    #[tokio::test]
    async fn dashboard_round_trips_updates_lists_and_deletes() {
        let Some(c) = moto("dashboard_round_trips_updates_lists_and_deletes") else {
            return;
        };
        let name = unique("failover-dashboard");
        let desired = json!({"dashboard_body": {"widgets": [
            {"type": "text", "x": 0, "y": 0, "width": 24, "height": 2, "properties": {"markdown": "# Failover readiness"}},
            {"type": "metric", "x": 0, "y": 2, "width": 12, "height": 6, "properties": {"title": "Replication lag (ms), budget 30 s", "region": "eu-central-1", "view": "timeSeries", "stat": "Minimum", "period": 60,
                "metrics": [["AWS/RDS", "AuroraGlobalDBReplicationLag", "DBClusterIdentifier", "aurora-cluster-prod-eu", {"stat": "Maximum"}]],
                "annotations": {"horizontal": [{"label": "30 s", "value": 30000}]}}},
        ]}});
        let made = create(&c, &req(Kind::Dashboard, &name, desired.clone()))
            .await
            .unwrap();
        assert!(made.tags.is_empty(), "dashboards are untaggable here");
        let id = Identity::new(Kind::Dashboard, REGION, &name);
        let found = find(&c, &id).await.unwrap().expect("found");
        assert_eq!(diff(&desired, &found.spec), Vec::<String>::new());
        assert_eq!(found.spec, desired);
        assert_eq!(
            create(&c, &req(Kind::Dashboard, &name, desired.clone()))
                .await
                .unwrap_err()
                .kind,
            ErrorKind::Conflict
        );

        let mut changed = desired.clone();
        changed["dashboard_body"]["widgets"][0]["properties"]["markdown"] = json!("# changed");
        let updated = update(
            &c,
            &found,
            &update_req(changed.clone(), &["dashboard_body"], Tags::new()),
        )
        .await
        .unwrap();
        assert_eq!(updated.spec, changed);
        let listed = list(&c, REGION, Kind::Dashboard, None).await.unwrap();
        assert!(listed.iter().any(|r| r.name == name));
        delete(&c, &updated).await.unwrap();
        assert!(find(&c, &id).await.unwrap().is_none());
    }
}
