//! The `sqs_queue` kind on AWS: id = the queue name, ARN = `QueueArn`, `attrs.url` = the queue
//! URL the daemon reads.
//!
//! | spec key | queue attribute |
//! |---|---|
//! | `kms_master_key_id` | `KmsMasterKeyId` |
//! | `kms_data_key_reuse_period_seconds` | `KmsDataKeyReusePeriodSeconds` |
//! | `message_retention_seconds` | `MessageRetentionPeriod` |
//! | `visibility_timeout_seconds` | `VisibilityTimeout` |
//! | `receive_wait_time_seconds` | `ReceiveMessageWaitTimeSeconds` |
//! | `delay_seconds` | `DelaySeconds` |
//! | `maximum_message_size` | `MaximumMessageSize` |
//! | `redrive_policy` (`dead_letter_target_arn`, `max_receive_count`) | `RedrivePolicy` (JSON, camelCase) |
//! | `policy` (object) | `Policy` (JSON) |
//!
//! find: GetQueueUrl, GetQueueAttributes (All), ListQueueTags. create: CreateQueue with the
//! attributes and tags. update: one SetQueueAttributes with the drifted attributes, TagQueue for
//! tags. delete: DeleteQueue. A queue is `available` as soon as CreateQueue returns.

use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::{Map, Value, json};

use super::specs::{self, drifted, int_text, invalid, missing, parse_doc, tags_to_set};
use super::{Call, Clients};
use crate::backend::{
    CloudError, CreateRequest, ErrorKind, Identity, Kind, Resource, ResourceState, Tags,
    UpdateRequest,
};

const SVC: &str = "sqs";

/// Spec keys that are plain queue attributes, with the attribute's name; integers all.
const INT_ATTRS: &[(&str, &str)] = &[
    (
        "kms_data_key_reuse_period_seconds",
        "KmsDataKeyReusePeriodSeconds",
    ),
    ("message_retention_seconds", "MessageRetentionPeriod"),
    ("visibility_timeout_seconds", "VisibilityTimeout"),
    ("receive_wait_time_seconds", "ReceiveMessageWaitTimeSeconds"),
    ("delay_seconds", "DelaySeconds"),
    ("maximum_message_size", "MaximumMessageSize"),
];

pub(super) async fn find(c: &Clients, id: &Identity) -> Result<Option<Resource>, CloudError> {
    let rc = c.region(&id.region).await;
    let url = match c
        .call(
            Call::new(&id.region, SVC, "GetQueueUrl"),
            rc.sqs.get_queue_url().queue_name(&id.name).send(),
        )
        .await
    {
        Ok(o) => o.queue_url().unwrap_or("").to_string(),
        Err(e) if no_queue(&e) => return Ok(None),
        Err(e) => return Err(e),
    };
    describe(c, &id.region, &id.name, &url).await
}

pub(super) async fn list(
    c: &Clients,
    region: &str,
    kind: Kind,
    _parent: Option<&str>,
) -> Result<Vec<Resource>, CloudError> {
    if kind != Kind::SqsQueue {
        return Err(not_here(kind));
    }
    let rc = c.region(region).await;
    let mut urls = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let out = c
            .call(
                Call::new(region, SVC, "ListQueues"),
                rc.sqs
                    .list_queues()
                    .max_results(1000)
                    .set_next_token(token.clone())
                    .send(),
            )
            .await?;
        urls.extend(out.queue_urls().iter().cloned());
        token = out.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    let mut out = Vec::new();
    for url in urls {
        let name = url.rsplit('/').next().unwrap_or("").to_string();
        if let Some(r) = describe(c, region, &name, &url).await?
            && specs::managed(&r.tags)
        {
            out.push(r);
        }
    }
    Ok(out)
}

pub(super) async fn create(c: &Clients, req: &CreateRequest) -> Result<Resource, CloudError> {
    if req.kind != Kind::SqsQueue {
        return Err(not_here(req.kind));
    }
    let rc = c.region(&req.region).await;
    let mut call = rc.sqs.create_queue().queue_name(&req.name);
    for (k, v) in attributes(&req.spec, None)? {
        call = call.attributes(k, v);
    }
    for (k, v) in &req.tags {
        call = call.tags(k, v);
    }
    // CreateQueue returns the existing queue when every attribute matches (and fails with
    // QueueAlreadyExists, a conflict, when one differs): either way the steps adopt it.
    let out = c
        .call(Call::new(&req.region, SVC, "CreateQueue"), call.send())
        .await?;
    let url = out
        .queue_url()
        .ok_or_else(|| missing("QueueUrl from CreateQueue"))?;
    describe(c, &req.region, &req.name, url)
        .await?
        .ok_or_else(|| {
            CloudError::new(
                ErrorKind::NotReady,
                format!(
                    "sqs_queue {} ({}) is not readable yet",
                    req.name, req.region
                ),
            )
        })
}

pub(super) async fn update(
    c: &Clients,
    current: &Resource,
    req: &UpdateRequest,
) -> Result<Resource, CloudError> {
    let region = current.region.as_str();
    let url = current.attr_str("url").to_string();
    let rc = c.region(region).await;
    let changed = attributes(&req.spec, Some(&req.drifted))?;
    if !changed.is_empty() {
        let mut call = rc.sqs.set_queue_attributes().queue_url(&url);
        for (k, v) in changed {
            call = call.attributes(k, v);
        }
        c.call(Call::new(region, SVC, "SetQueueAttributes"), call.send())
            .await?;
    }
    let set = tags_to_set(&current.tags, &req.tags);
    if !set.is_empty() {
        let mut call = rc.sqs.tag_queue().queue_url(&url);
        for (k, v) in &set {
            call = call.tags(k, v);
        }
        c.call(Call::new(region, SVC, "TagQueue"), call.send())
            .await?;
    }
    describe(c, region, &current.name, &url)
        .await?
        .ok_or_else(|| gone(current))
}

pub(super) async fn delete(c: &Clients, current: &Resource) -> Result<(), CloudError> {
    let region = current.region.as_str();
    let rc = c.region(region).await;
    match c
        .call(
            Call::new(region, SVC, "DeleteQueue"),
            rc.sqs
                .delete_queue()
                .queue_url(current.attr_str("url"))
                .send(),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if no_queue(&e) => Err(gone(current)),
        Err(e) => Err(e),
    }
}

fn not_here(kind: Kind) -> CloudError {
    CloudError::new(ErrorKind::Internal, format!("{kind} is not an sqs kind"))
}

fn gone(r: &Resource) -> CloudError {
    CloudError::new(
        ErrorKind::NotFound,
        format!("sqs_queue {} ({}) does not exist", r.name, r.region),
    )
}

/// SQS names a missing queue with codes the generic mapping does not know as "not found".
fn no_queue(e: &CloudError) -> bool {
    e.kind == ErrorKind::NotFound
        || specs::has_code(e, "AWS.SimpleQueueService.NonExistentQueue")
        || specs::has_code(e, "QueueDoesNotExist")
}

/// The queue attributes of a spec (only the drifted ones, when `drifted` is given).
fn attributes(
    spec: &Value,
    only: Option<&[String]>,
) -> Result<Vec<(QueueAttributeName, String)>, CloudError> {
    let wanted = |key: &str| spec.get(key).is_some() && only.is_none_or(|d| drifted(d, key));
    let mut out = Vec::new();
    if wanted("kms_master_key_id")
        && let Some(k) = specs::text(spec, "kms_master_key_id")
    {
        out.push((QueueAttributeName::KmsMasterKeyId, k.to_string()));
    }
    for (key, attr) in INT_ATTRS {
        if wanted(key) {
            let v = spec
                .get(*key)
                .and_then(Value::as_i64)
                .ok_or_else(|| invalid(format!("sqs_queue: {key} must be a whole number")))?;
            out.push((QueueAttributeName::from(*attr), v.to_string()));
        }
    }
    if wanted("redrive_policy") {
        let r = &spec["redrive_policy"];
        let doc = json!({
            "deadLetterTargetArn": r.get("dead_letter_target_arn").cloned().unwrap_or(Value::Null),
            "maxReceiveCount": r.get("max_receive_count").cloned().unwrap_or(Value::Null),
        });
        out.push((QueueAttributeName::RedrivePolicy, doc.to_string()));
    }
    if wanted("policy") {
        out.push((
            QueueAttributeName::Policy,
            specs::json_text(&spec["policy"]),
        ));
    }
    Ok(out)
}

/// The queue at `url` as the steps write its spec, with its tags and URL.
async fn describe(
    c: &Clients,
    region: &str,
    name: &str,
    url: &str,
) -> Result<Option<Resource>, CloudError> {
    let rc = c.region(region).await;
    let out = match c
        .call(
            Call::new(region, SVC, "GetQueueAttributes"),
            rc.sqs
                .get_queue_attributes()
                .queue_url(url)
                .attribute_names(QueueAttributeName::All)
                .send(),
        )
        .await
    {
        Ok(o) => o,
        Err(e) if no_queue(&e) => return Ok(None),
        Err(e) => return Err(e),
    };
    let attrs = out.attributes().cloned().unwrap_or_default();
    let get = |a: &str| attrs.get(&QueueAttributeName::from(a)).map(String::as_str);
    let mut spec = Map::new();
    if let Some(k) = get("KmsMasterKeyId").filter(|k| !k.is_empty()) {
        spec.insert("kms_master_key_id".into(), json!(k));
    }
    for (key, attr) in INT_ATTRS {
        if let Some(v) = get(attr) {
            spec.insert((*key).into(), int_text(v));
        }
    }
    if let Some(r) = get("RedrivePolicy").filter(|r| !r.is_empty()) {
        let doc = parse_doc(r);
        let count = match doc.get("maxReceiveCount") {
            Some(Value::String(s)) => int_text(s),
            Some(v) => v.clone(),
            None => Value::Null,
        };
        spec.insert(
            "redrive_policy".into(),
            json!({
                "dead_letter_target_arn": doc.get("deadLetterTargetArn").cloned().unwrap_or(Value::Null),
                "max_receive_count": count,
            }),
        );
    }
    if let Some(p) = get("Policy").filter(|p| !p.is_empty()) {
        spec.insert("policy".into(), parse_doc(p));
    }
    let arn = get("QueueArn").unwrap_or("").to_string();
    let tags: Tags = c
        .call(
            Call::new(region, SVC, "ListQueueTags"),
            rc.sqs.list_queue_tags().queue_url(url).send(),
        )
        .await?
        .tags()
        .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    let mut attrs_out = Map::new();
    attrs_out.insert("url".into(), json!(url));
    Ok(Some(Resource {
        kind: Kind::SqsQueue,
        region: region.to_string(),
        name: name.to_string(),
        parent: None,
        id: name.to_string(),
        arn,
        spec: Value::Object(spec),
        attrs: attrs_out,
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

    const REGION: &str = "eu-central-1";

    fn req(name: &str, spec: Value) -> CreateRequest {
        CreateRequest {
            kind: Kind::SqsQueue,
            region: REGION.into(),
            name: name.into(),
            parent: None,
            spec,
            tags: tags(name),
            depends_on: Vec::new(),
        }
    }

    #[tokio::test]
    async fn queue_with_dead_letter_queue_round_trips_updates_lists_and_deletes() {
        let Some(c) = moto("queue_with_dead_letter_queue_round_trips_updates_lists_and_deletes")
        else {
            return;
        };
        let key = format!("arn:aws:kms:{REGION}:123456789012:key/mrk-04b638dc1a2fc2725");
        let dlq_name = unique("alarm-events-dlq");
        let dlq_spec = json!({"kms_master_key_id": key, "message_retention_seconds": 1_209_600});
        let dlq = create(&c, &req(&dlq_name, dlq_spec.clone())).await.unwrap();
        assert!(dlq.arn.ends_with(&format!(":{dlq_name}")), "{}", dlq.arn);
        assert_eq!(diff(&dlq_spec, &dlq.spec), Vec::<String>::new());

        let name = unique("alarm-events");
        let rule = "alarm-state-change-prod-eu";
        let desired = json!({
            "kms_master_key_id": key,
            "kms_data_key_reuse_period_seconds": 300,
            "message_retention_seconds": 1_209_600,
            "visibility_timeout_seconds": 300,
            "receive_wait_time_seconds": 20,
            "redrive_policy": {"dead_letter_target_arn": dlq.arn, "max_receive_count": 5},
            "policy": {
                "Version": "2012-10-17",
                "Statement": [{
                    "Sid": "EventBridgeSend",
                    "Effect": "Allow",
                    "Principal": {"Service": "events.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": format!("arn:aws:sqs:{REGION}:*:{name}"),
                    "Condition": {"ArnLike": {"aws:SourceArn": format!("arn:aws:events:{REGION}:*:rule/{rule}")}},
                }]
            },
        });
        let made = create(&c, &req(&name, desired.clone())).await.unwrap();
        assert!(
            made.attr_str("url").ends_with(&format!("/{name}")),
            "{:?}",
            made.attrs
        );
        let id = Identity::new(Kind::SqsQueue, REGION, &name);
        let found = find(&c, &id).await.unwrap().expect("found");
        assert_eq!(diff(&desired, &found.spec), Vec::<String>::new());
        assert_eq!(found.tags, tags(&name));
        assert_eq!(found.id, name);

        let mut changed = desired.clone();
        changed["visibility_timeout_seconds"] = json!(120);
        changed["redrive_policy"]["max_receive_count"] = json!(3);
        let mut new_tags = tags(&name);
        new_tags.insert("FailoverRole".into(), "Standby".into());
        let updated = update(
            &c,
            &found,
            &UpdateRequest {
                spec: changed.clone(),
                drifted: vec![
                    "visibility_timeout_seconds".into(),
                    "redrive_policy.max_receive_count".into(),
                ],
                tags: new_tags.clone(),
                depends_on: Vec::new(),
            },
        )
        .await
        .unwrap();
        assert_eq!(diff(&changed, &updated.spec), Vec::<String>::new());
        assert_eq!(updated.tags, new_tags);

        let listed = list(&c, REGION, Kind::SqsQueue, None).await.unwrap();
        assert!(listed.iter().any(|r| r.name == name));
        assert!(listed.iter().any(|r| r.name == dlq_name));
        delete(&c, &updated).await.unwrap();
        delete(&c, &dlq).await.unwrap();
        assert!(find(&c, &id).await.unwrap().is_none());
        assert_eq!(
            delete(&c, &dlq).await.unwrap_err().kind,
            ErrorKind::NotFound
        );
    }
}
