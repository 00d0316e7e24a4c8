//! The sns kinds on AWS: `sns_topic` (taggable, id and ARN = the topic ARN) and
//! `sns_subscription` (untaggable; parent = the topic ARN, name = `<protocol>:<endpoint>`,
//! id = the subscription ARN).
//!
//! | spec key | topic attribute |
//! |---|---|
//! | `display_name` | `DisplayName` |
//! | `kms_master_key_id` | `KmsMasterKeyId` |
//! | `policy` (object) | `Policy` (JSON) |
//!
//! A subscription's spec is `topic_arn`, `protocol`, `endpoint`, all create-only.
//!
//! find: ListTopics (by name), GetTopicAttributes, ListTagsForResource; a subscription
//! ListSubscriptionsByTopic of its parent. create: CreateTopic with attributes and tags;
//! Subscribe (asking for the ARN even while an e-mail subscription awaits confirmation).
//! update: SetTopicAttributes per drifted attribute, TagResource. delete: DeleteTopic;
//! Unsubscribe.
//!
//! An e-mail subscription stays "pending confirmation" until someone clicks the link: it is
//! `available` with `attrs.pending_confirmation = true` (drflow cannot wait for a person), and
//! AWS lists it without an ARN, so its id is then `PendingConfirmation`. AWS cannot delete a
//! pending subscription (it drops it after three days, or with its topic): `delete` of one does
//! nothing.

use aws_sdk_sns::types::Tag;
use serde_json::{Map, Value, json};

use super::specs::{self, drifted, invalid, missing, parse_doc, tags_to_set, text};
use super::{Call, Clients};
use crate::backend::{
    CloudError, CreateRequest, ErrorKind, Identity, Kind, Resource, ResourceState, Tags,
    UpdateRequest,
};

const SVC: &str = "sns";

/// What AWS lists in place of the ARN of a subscription nobody confirmed yet.
const PENDING: &str = "PendingConfirmation";

/// Topic spec keys and their attribute names.
const TOPIC_ATTRS: &[(&str, &str)] = &[
    ("display_name", "DisplayName"),
    ("kms_master_key_id", "KmsMasterKeyId"),
    ("policy", "Policy"),
];

pub(super) async fn find(c: &Clients, id: &Identity) -> Result<Option<Resource>, CloudError> {
    match id.kind {
        Kind::SnsTopic => match topic_arn(c, &id.region, &id.name).await? {
            Some(arn) => describe_topic(c, &id.region, &arn).await,
            None => Ok(None),
        },
        Kind::SnsSubscription => {
            let parent = id
                .parent
                .as_deref()
                .ok_or_else(|| invalid(format!("{id}: a subscription is found by its topic")))?;
            Ok(subscriptions(c, &id.region, parent)
                .await?
                .into_iter()
                .find(|r| r.name == id.name))
        }
        other => Err(not_here(other)),
    }
}

pub(super) async fn list(
    c: &Clients,
    region: &str,
    kind: Kind,
    parent: Option<&str>,
) -> Result<Vec<Resource>, CloudError> {
    match kind {
        Kind::SnsTopic => {
            let mut out = Vec::new();
            for arn in topic_arns(c, region).await? {
                if let Some(r) = describe_topic(c, region, &arn).await?
                    && specs::managed(&r.tags)
                {
                    out.push(r);
                }
            }
            Ok(out)
        }
        Kind::SnsSubscription => {
            let parent = parent.ok_or_else(|| {
                invalid("sns_subscription: list needs the topic ARN as the parent")
            })?;
            subscriptions(c, region, parent).await
        }
        other => Err(not_here(other)),
    }
}

pub(super) async fn create(c: &Clients, req: &CreateRequest) -> Result<Resource, CloudError> {
    let region = req.region.as_str();
    let rc = c.region(region).await;
    match req.kind {
        Kind::SnsTopic => {
            // CreateTopic returns the existing topic when nothing differs: the seam's create
            // reports it instead.
            if topic_arn(c, region, &req.name).await?.is_some() {
                return Err(exists(req.kind, &req.name, region));
            }
            let mut call = rc.sns.create_topic().name(&req.name);
            for (key, attr) in TOPIC_ATTRS {
                if let Some(v) = req.spec.get(*key) {
                    call = call.attributes(*attr, specs::json_text(v));
                }
            }
            call = call.set_tags(Some(sdk_tags(&req.tags)?));
            let out = c
                .call(Call::new(region, SVC, "CreateTopic"), call.send())
                .await?;
            let arn = out.topic_arn().ok_or_else(|| missing("TopicArn"))?;
            describe_topic(c, region, arn)
                .await?
                .ok_or_else(|| missing("topic after CreateTopic"))
        }
        Kind::SnsSubscription => {
            let topic = req
                .parent
                .as_deref()
                .or_else(|| text(&req.spec, "topic_arn"))
                .ok_or_else(|| invalid(format!("sns_subscription {}: no topic", req.name)))?;
            let protocol = text(&req.spec, "protocol")
                .ok_or_else(|| invalid(format!("sns_subscription {}: no protocol", req.name)))?;
            let endpoint = text(&req.spec, "endpoint")
                .ok_or_else(|| invalid(format!("sns_subscription {}: no endpoint", req.name)))?;
            let name = format!("{protocol}:{endpoint}");
            if subscriptions(c, region, topic)
                .await?
                .iter()
                .any(|r| r.name == name)
            {
                return Err(exists(req.kind, &name, region));
            }
            c.call(
                Call::new(region, SVC, "Subscribe"),
                rc.sns
                    .subscribe()
                    .topic_arn(topic)
                    .protocol(protocol)
                    .endpoint(endpoint)
                    .return_subscription_arn(true)
                    .send(),
            )
            .await?;
            subscriptions(c, region, topic)
                .await?
                .into_iter()
                .find(|r| r.name == name)
                .ok_or_else(|| missing("subscription after Subscribe"))
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
    let rc = c.region(region).await;
    match current.kind {
        Kind::SnsTopic => {
            for (key, attr) in TOPIC_ATTRS {
                if drifted(&req.drifted, key) {
                    let value = req.spec.get(*key).map(specs::json_text).unwrap_or_default();
                    c.call(
                        Call::new(region, SVC, "SetTopicAttributes"),
                        rc.sns
                            .set_topic_attributes()
                            .topic_arn(&current.arn)
                            .attribute_name(*attr)
                            .attribute_value(value)
                            .send(),
                    )
                    .await?;
                }
            }
            let set = tags_to_set(&current.tags, &req.tags);
            if !set.is_empty() {
                c.call(
                    Call::new(region, SVC, "TagResource"),
                    rc.sns
                        .tag_resource()
                        .resource_arn(&current.arn)
                        .set_tags(Some(sdk_tags(&set)?))
                        .send(),
                )
                .await?;
            }
            describe_topic(c, region, &current.arn)
                .await?
                .ok_or_else(|| gone(current))
        }
        Kind::SnsSubscription => {
            // Every key is create-only (the steps replace a subscription), and AWS cannot tag
            // one: nothing to change in place.
            if !req.drifted.is_empty() {
                return Err(invalid(format!(
                    "sns_subscription {}: {} cannot change in place; replace the subscription",
                    current.name,
                    req.drifted.join(", ")
                )));
            }
            Ok(current.clone())
        }
        other => Err(not_here(other)),
    }
}

pub(super) async fn delete(c: &Clients, current: &Resource) -> Result<(), CloudError> {
    let region = current.region.as_str();
    let rc = c.region(region).await;
    match current.kind {
        Kind::SnsTopic => {
            // DeleteTopic answers success for a topic that does not exist: the seam wants
            // NotFound then.
            if describe_topic(c, region, &current.arn).await?.is_none() {
                return Err(gone(current));
            }
            c.call(
                Call::new(region, SVC, "DeleteTopic"),
                rc.sns.delete_topic().topic_arn(&current.arn).send(),
            )
            .await?;
            Ok(())
        }
        Kind::SnsSubscription => {
            if current.id == PENDING {
                return Ok(());
            }
            c.call(
                Call::new(region, SVC, "Unsubscribe"),
                rc.sns.unsubscribe().subscription_arn(&current.id).send(),
            )
            .await?;
            Ok(())
        }
        other => Err(not_here(other)),
    }
}

fn not_here(kind: Kind) -> CloudError {
    CloudError::new(ErrorKind::Internal, format!("{kind} is not an sns kind"))
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

/// Every topic ARN of the region.
async fn topic_arns(c: &Clients, region: &str) -> Result<Vec<String>, CloudError> {
    let rc = c.region(region).await;
    let mut arns = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let out = c
            .call(
                Call::new(region, SVC, "ListTopics"),
                rc.sns.list_topics().set_next_token(token.clone()).send(),
            )
            .await?;
        arns.extend(
            out.topics()
                .iter()
                .filter_map(|t| t.topic_arn().map(str::to_string)),
        );
        token = out.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    Ok(arns)
}

/// The ARN of the topic named `name`: topics are addressed by ARN, which holds the account id.
async fn topic_arn(c: &Clients, region: &str, name: &str) -> Result<Option<String>, CloudError> {
    Ok(topic_arns(c, region)
        .await?
        .into_iter()
        .find(|a| a.rsplit(':').next() == Some(name)))
}

async fn describe_topic(
    c: &Clients,
    region: &str,
    arn: &str,
) -> Result<Option<Resource>, CloudError> {
    let rc = c.region(region).await;
    let out = match c
        .call(
            Call::new(region, SVC, "GetTopicAttributes"),
            rc.sns.get_topic_attributes().topic_arn(arn).send(),
        )
        .await
    {
        Ok(o) => o,
        Err(e) if e.kind == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let attrs = out.attributes().cloned().unwrap_or_default();
    let mut spec = Map::new();
    for (key, attr) in TOPIC_ATTRS {
        match attrs.get(*attr).map(String::as_str) {
            Some(v) if *key == "policy" && !v.is_empty() => {
                spec.insert((*key).into(), parse_doc(v));
            }
            // AWS returns an empty DisplayName for a topic without one; no key is absent.
            Some(v) if *key == "display_name" || !v.is_empty() => {
                spec.insert((*key).into(), json!(v));
            }
            _ => {}
        }
    }
    let tags: Tags = c
        .call(
            Call::new(region, SVC, "ListTagsForResource"),
            rc.sns.list_tags_for_resource().resource_arn(arn).send(),
        )
        .await?
        .tags()
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect();
    let name = arn.rsplit(':').next().unwrap_or("").to_string();
    Ok(Some(Resource {
        kind: Kind::SnsTopic,
        region: region.to_string(),
        name,
        parent: None,
        id: arn.to_string(),
        arn: arn.to_string(),
        spec: Value::Object(spec),
        attrs: Map::new(),
        tags,
        state: ResourceState::Available,
        depends_on: Vec::new(),
    }))
}

/// Every subscription of a topic, named `<protocol>:<endpoint>`.
async fn subscriptions(
    c: &Clients,
    region: &str,
    topic: &str,
) -> Result<Vec<Resource>, CloudError> {
    let rc = c.region(region).await;
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = c
            .call(
                Call::new(region, SVC, "ListSubscriptionsByTopic"),
                rc.sns
                    .list_subscriptions_by_topic()
                    .topic_arn(topic)
                    .set_next_token(token.clone())
                    .send(),
            )
            .await?;
        for s in page.subscriptions() {
            let (Some(protocol), Some(endpoint)) = (s.protocol(), s.endpoint()) else {
                continue;
            };
            let arn = s.subscription_arn().unwrap_or(PENDING).to_string();
            let pending = arn == PENDING;
            let mut attrs = Map::new();
            attrs.insert("pending_confirmation".into(), json!(pending));
            out.push(Resource {
                kind: Kind::SnsSubscription,
                region: region.to_string(),
                name: format!("{protocol}:{endpoint}"),
                parent: Some(topic.to_string()),
                id: arn.clone(),
                arn: if pending { String::new() } else { arn },
                spec: json!({"topic_arn": topic, "protocol": protocol, "endpoint": endpoint}),
                attrs,
                tags: Tags::new(),
                state: ResourceState::Available,
                depends_on: vec![topic.to_string()],
            });
        }
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::specs::test_support::{moto, tags, unique};
    use super::*;
    use crate::cloud::drift::diff_raw as diff;

    const REGION: &str = "eu-south-1";

    fn topic_spec(name: &str) -> Value {
        json!({
            "display_name": "drflow prod-eu incidents",
            "kms_master_key_id": format!("arn:aws:kms:{REGION}:123456789012:key/mrk-0d8bfa9ad15e34195"),
            "policy": {"Version": "2012-10-17", "Statement": [{
                "Sid": "AlarmsAndEventsPublish", "Effect": "Allow",
                "Principal": {"Service": ["cloudwatch.amazonaws.com", "events.amazonaws.com"]},
                "Action": "sns:Publish",
                "Resource": format!("arn:aws:sns:{REGION}:*:{name}"),
            }]},
        })
    }

    #[tokio::test]
    async fn topic_and_subscription_round_trip_update_list_and_delete() {
        let Some(c) = moto("topic_and_subscription_round_trip_update_list_and_delete") else {
            return;
        };
        let name = unique("sns-topic");
        let desired = topic_spec(&name);
        let made = create(
            &c,
            &CreateRequest {
                kind: Kind::SnsTopic,
                region: REGION.into(),
                name: name.clone(),
                parent: None,
                spec: desired.clone(),
                tags: tags(&name),
                depends_on: Vec::new(),
            },
        )
        .await
        .unwrap();
        assert!(
            made.arn.starts_with(&format!("arn:aws:sns:{REGION}:")),
            "{}",
            made.arn
        );
        assert_eq!(made.id, made.arn);
        let id = Identity::new(Kind::SnsTopic, REGION, &name);
        let found = find(&c, &id).await.unwrap().expect("found");
        assert_eq!(diff(&desired, &found.spec), Vec::<String>::new());
        assert_eq!(found.tags, tags(&name));

        let mut changed = desired.clone();
        changed["display_name"] = json!("drflow incidents, renamed");
        let mut new_tags = tags(&name);
        new_tags.insert("FailoverRole".into(), "Primary".into());
        let updated = update(
            &c,
            &found,
            &UpdateRequest {
                spec: changed.clone(),
                drifted: vec!["display_name".into()],
                tags: new_tags.clone(),
                depends_on: Vec::new(),
            },
        )
        .await
        .unwrap();
        assert_eq!(diff(&changed, &updated.spec), Vec::<String>::new());
        assert_eq!(updated.tags, new_tags);
        let listed = list(&c, REGION, Kind::SnsTopic, None).await.unwrap();
        assert!(listed.iter().any(|r| r.name == name));

        // A subscription: found through its topic, by `<protocol>:<endpoint>`.
        let queue = format!("arn:aws:sqs:{REGION}:123456789012:{}", unique("q"));
        let sub_spec = json!({"topic_arn": made.arn, "protocol": "sqs", "endpoint": queue});
        let sub_req = CreateRequest {
            kind: Kind::SnsSubscription,
            region: REGION.into(),
            name: format!("sqs:{queue}"),
            parent: Some(made.arn.clone()),
            spec: sub_spec.clone(),
            tags: Tags::new(),
            depends_on: vec![made.id.clone()],
        };
        let sub = create(&c, &sub_req).await.unwrap();
        assert!(sub.id.starts_with(&made.arn), "{}", sub.id);
        assert_eq!(
            create(&c, &sub_req).await.unwrap_err().kind,
            ErrorKind::Conflict
        );
        let sid = Identity::child(
            Kind::SnsSubscription,
            REGION,
            &made.arn,
            format!("sqs:{queue}"),
        );
        let found_sub = find(&c, &sid).await.unwrap().expect("subscription found");
        assert_eq!(diff(&sub_spec, &found_sub.spec), Vec::<String>::new());
        assert_eq!(found_sub.attrs["pending_confirmation"], json!(false));
        let subs = list(&c, REGION, Kind::SnsSubscription, Some(made.arn.as_str()))
            .await
            .unwrap();
        assert_eq!(subs.len(), 1);
        delete(&c, &found_sub).await.unwrap();
        assert!(find(&c, &sid).await.unwrap().is_none());

        delete(&c, &updated).await.unwrap();
        assert!(find(&c, &id).await.unwrap().is_none());
        assert_eq!(
            delete(&c, &updated).await.unwrap_err().kind,
            ErrorKind::NotFound
        );
    }
}
