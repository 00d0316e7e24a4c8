//! `kms_key` and `kms_alias` on AWS KMS.
//!
//! - A key is named by its `Name` tag (KMS tags are `TagKey`/`TagValue`). A multi-region
//!   primary is `CreateKey(MultiRegion)`; a replica (its spec has `primary_key_arn`) is
//!   `ReplicateKey`, called in the primary's region, with the primary's key policy. The key
//!   policy is written from `service_principals`: the account root has full control, and those
//!   services may use the key. Rotation is `EnableKeyRotation(RotationPeriodInDays)` on the
//!   primary; a replica's rotation is its primary's, so it is read and changed there.
//! - A key scheduled for deletion is gone for drflow: `find` skips it, so a later create under
//!   the same name makes a new key instead of waiting the deletion window out.
//! - An alias cannot be tagged: it is found by its name (`alias/...`), and `list` gives the
//!   aliases of a region whose target key is drflow's.

use serde_json::{Map, Value, json};

use super::data_common::{
    absent, b, decode_policy, drifted, i, managed, missing, resource, s, tags_to_set,
};
use super::{Call, Clients};
use crate::backend::{
    CloudError, CreateRequest, ErrorKind, Identity, Kind, Resource, ResourceState, Tags,
    UpdateRequest,
};
use aws_sdk_kms::types::{KeySpec, KeyState, KeyUsageType, Tag};

/// The key policy statement that names the services allowed to use a key.
const SERVICES_SID: &str = "AllowServicesToUseTheKey";

/// What the services in `service_principals` may do with the key.
const SERVICE_ACTIONS: &[&str] = &[
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:ReEncrypt*",
    "kms:GenerateDataKey*",
    "kms:DescribeKey",
    "kms:CreateGrant",
];

/// The rotation period AWS uses when none is given, and reports with every enabled rotation.
const DEFAULT_ROTATION_DAYS: i64 = 365;

pub(super) async fn find(c: &Clients, id: &Identity) -> Result<Option<Resource>, CloudError> {
    match id.kind {
        Kind::KmsKey => {
            for key_id in key_ids(c, &id.region).await? {
                let Some(tags) = key_tags(c, &id.region, &key_id).await? else {
                    continue;
                };
                if tags.get("Name") == Some(&id.name)
                    && let Some(r) = read_key(c, &id.region, &key_id, &id.name, tags).await?
                {
                    return Ok(Some(r));
                }
            }
            Ok(None)
        }
        Kind::KmsAlias => Ok(aliases(c, &id.region)
            .await?
            .into_iter()
            .find(|a| a.name == id.name)),
        other => Err(not_kms(other)),
    }
}

pub(super) async fn list(
    c: &Clients,
    region: &str,
    kind: Kind,
    _parent: Option<&str>,
) -> Result<Vec<Resource>, CloudError> {
    match kind {
        Kind::KmsKey => {
            let mut out = Vec::new();
            for key_id in key_ids(c, region).await? {
                let Some(tags) = key_tags(c, region, &key_id).await? else {
                    continue;
                };
                if !managed(&tags) {
                    continue;
                }
                let name = tags.get("Name").cloned().unwrap_or_else(|| key_id.clone());
                if let Some(r) = read_key(c, region, &key_id, &name, tags).await? {
                    out.push(r);
                }
            }
            Ok(out)
        }
        Kind::KmsAlias => {
            // Aliases carry no tags: drflow's are those whose target key is drflow's.
            let mut ours: std::collections::BTreeMap<String, bool> = Default::default();
            let mut out = Vec::new();
            for a in aliases(c, region).await? {
                let Some(target) = s(&a.spec, "target_key_id").map(str::to_string) else {
                    continue;
                };
                if a.name.starts_with("alias/aws/") {
                    continue;
                }
                let is_ours = match ours.get(&target) {
                    Some(v) => *v,
                    None => {
                        let v = key_tags(c, region, &target)
                            .await?
                            .is_some_and(|t| managed(&t));
                        ours.insert(target, v);
                        v
                    }
                };
                if is_ours {
                    out.push(a);
                }
            }
            Ok(out)
        }
        other => Err(not_kms(other)),
    }
}

pub(super) async fn create(c: &Clients, req: &CreateRequest) -> Result<Resource, CloudError> {
    match req.kind {
        Kind::KmsKey => create_key(c, req).await,
        Kind::KmsAlias => {
            let rc = c.region(&req.region).await;
            let target = s(&req.spec, "target_key_id").ok_or(missing(req.kind, "target_key_id"))?;
            c.call(
                Call::new(&req.region, "kms", "CreateAlias"),
                rc.kms
                    .create_alias()
                    .alias_name(&req.name)
                    .target_key_id(target)
                    .send(),
            )
            .await?;
            find(c, &Identity::new(req.kind, &req.region, &req.name))
                .await?
                .ok_or_else(|| vanished(req.kind, &req.name))
        }
        other => Err(not_kms(other)),
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
        Kind::KmsKey => {
            let key = current.id.as_str();
            if drifted(req, "description") {
                let d = s(&req.spec, "description").unwrap_or("");
                c.call(
                    Call::new(region, "kms", "UpdateKeyDescription"),
                    rc.kms
                        .update_key_description()
                        .key_id(key)
                        .description(d)
                        .send(),
                )
                .await?;
            }
            if drifted(req, "enable_key_rotation") || drifted(req, "rotation_period_days") {
                // A replica's rotation is its primary's: change it there.
                let home = match s(&current.spec, "primary_key_arn") {
                    Some(arn) => arn_region(arn).to_string(),
                    None => region.to_string(),
                };
                set_rotation(c, &home, key, &req.spec).await?;
            }
            if drifted(req, "enabled") {
                if b(&req.spec, "enabled").unwrap_or(true) {
                    c.call(
                        Call::new(region, "kms", "EnableKey"),
                        rc.kms.enable_key().key_id(key).send(),
                    )
                    .await?;
                } else {
                    c.call(
                        Call::new(region, "kms", "DisableKey"),
                        rc.kms.disable_key().key_id(key).send(),
                    )
                    .await?;
                }
            }
            if drifted(req, "service_principals") {
                let policy = key_policy(c, &principals(&req.spec)).await?;
                c.call(
                    Call::new(region, "kms", "PutKeyPolicy"),
                    rc.kms
                        .put_key_policy()
                        .key_id(key)
                        .policy_name("default")
                        .policy(policy)
                        .send(),
                )
                .await?;
            }
            let add = tags_to_set(&current.tags, &req.tags);
            if !add.is_empty() {
                c.call(
                    Call::new(region, "kms", "TagResource"),
                    rc.kms
                        .tag_resource()
                        .key_id(key)
                        .set_tags(Some(kms_tags(&add)?))
                        .send(),
                )
                .await?;
            }
            let mut tags = current.tags.clone();
            tags.extend(req.tags.clone());
            read_key(c, region, key, &current.name, tags)
                .await?
                .ok_or_else(|| vanished(current.kind, &current.name))
        }
        Kind::KmsAlias => {
            if drifted(req, "target_key_id") {
                let target =
                    s(&req.spec, "target_key_id").ok_or(missing(current.kind, "target_key_id"))?;
                c.call(
                    Call::new(region, "kms", "UpdateAlias"),
                    rc.kms
                        .update_alias()
                        .alias_name(&current.name)
                        .target_key_id(target)
                        .send(),
                )
                .await?;
            }
            find(c, &current.identity())
                .await?
                .ok_or_else(|| vanished(current.kind, &current.name))
        }
        other => Err(not_kms(other)),
    }
}

pub(super) async fn delete(c: &Clients, current: &Resource) -> Result<(), CloudError> {
    let region = current.region.as_str();
    let rc = c.region(region).await;
    match current.kind {
        Kind::KmsKey => {
            // KMS never deletes a key at once: it schedules the deletion after a window of
            // 7 to 30 days (the spec's write-only `pending_window_in_days`, else the shortest).
            let days = i(&current.spec, "pending_window_in_days").unwrap_or(7) as i32;
            c.call(
                Call::new(region, "kms", "ScheduleKeyDeletion"),
                rc.kms
                    .schedule_key_deletion()
                    .key_id(&current.id)
                    .pending_window_in_days(days)
                    .send(),
            )
            .await?;
            Ok(())
        }
        Kind::KmsAlias => {
            c.call(
                Call::new(region, "kms", "DeleteAlias"),
                rc.kms.delete_alias().alias_name(&current.name).send(),
            )
            .await?;
            Ok(())
        }
        other => Err(not_kms(other)),
    }
}

async fn create_key(c: &Clients, req: &CreateRequest) -> Result<Resource, CloudError> {
    let region = req.region.as_str();
    let spec = &req.spec;
    let key_id = if let Some(primary_arn) = s(spec, "primary_key_arn") {
        // A replica is made from its primary's region, with the primary's key policy (without
        // one, AWS gives the replica the default policy, which lets no service use it).
        let home = arn_region(primary_arn);
        let hc = c.region(home).await;
        let primary_id = arn_key_id(primary_arn);
        let policy = c
            .call(
                Call::new(home, "kms", "GetKeyPolicy"),
                hc.kms
                    .get_key_policy()
                    .key_id(primary_id)
                    .policy_name("default")
                    .send(),
            )
            .await?;
        let mut call = hc
            .kms
            .replicate_key()
            .key_id(primary_id)
            .replica_region(region)
            .set_tags(Some(kms_tags(&req.tags)?));
        if let Some(d) = s(spec, "description") {
            call = call.description(d);
        }
        if let Some(p) = policy.policy() {
            call = call.policy(p);
        }
        let out = c
            .call(Call::new(home, "kms", "ReplicateKey"), call.send())
            .await?;
        let meta = out
            .replica_key_metadata()
            .ok_or_else(|| vanished(req.kind, &req.name))?;
        let key_id = meta.key_id().to_string();
        // Some emulators copy the primary's description and ignore the replica's tags: set
        // them where the replica does not show them already.
        let rc = c.region(region).await;
        if let Some(d) = s(spec, "description")
            && meta.description() != Some(d)
        {
            c.call(
                Call::new(region, "kms", "UpdateKeyDescription"),
                rc.kms
                    .update_key_description()
                    .key_id(&key_id)
                    .description(d)
                    .send(),
            )
            .await?;
        }
        let have = key_tags(c, region, &key_id).await?.unwrap_or_default();
        let add = tags_to_set(&have, &req.tags);
        if !add.is_empty() {
            c.call(
                Call::new(region, "kms", "TagResource"),
                rc.kms
                    .tag_resource()
                    .key_id(&key_id)
                    .set_tags(Some(kms_tags(&add)?))
                    .send(),
            )
            .await?;
        }
        key_id
    } else {
        let rc = c.region(region).await;
        let policy = key_policy(c, &principals(spec)).await?;
        let mut call = rc
            .kms
            .create_key()
            .policy(policy)
            .multi_region(b(spec, "multi_region").unwrap_or(false))
            .set_tags(Some(kms_tags(&req.tags)?));
        if let Some(d) = s(spec, "description") {
            call = call.description(d);
        }
        if let Some(k) = s(spec, "key_spec") {
            call = call.key_spec(KeySpec::from(k));
        }
        if let Some(u) = s(spec, "key_usage") {
            call = call.key_usage(KeyUsageType::from(u));
        }
        let out = c
            .call(Call::new(region, "kms", "CreateKey"), call.send())
            .await?;
        let key_id = out
            .key_metadata()
            .map(|m| m.key_id().to_string())
            .ok_or_else(|| vanished(req.kind, &req.name))?;
        if b(spec, "enable_key_rotation") == Some(true) {
            set_rotation(c, region, &key_id, spec).await?;
        }
        key_id
    };
    if b(spec, "enabled") == Some(false) {
        let rc = c.region(region).await;
        c.call(
            Call::new(region, "kms", "DisableKey"),
            rc.kms.disable_key().key_id(&key_id).send(),
        )
        .await?;
    }
    read_key(c, region, &key_id, &req.name, req.tags.clone())
        .await?
        .ok_or_else(|| vanished(req.kind, &req.name))
}

/// Turns rotation on (with the spec's period) or off, on the key in `region`.
async fn set_rotation(
    c: &Clients,
    region: &str,
    key: &str,
    spec: &Value,
) -> Result<(), CloudError> {
    let rc = c.region(region).await;
    if b(spec, "enable_key_rotation").unwrap_or(false) {
        let mut call = rc.kms.enable_key_rotation().key_id(key);
        if let Some(days) = i(spec, "rotation_period_days") {
            call = call.rotation_period_in_days(days as i32);
        }
        c.call(Call::new(region, "kms", "EnableKeyRotation"), call.send())
            .await?;
    } else {
        c.call(
            Call::new(region, "kms", "DisableKeyRotation"),
            rc.kms.disable_key_rotation().key_id(key).send(),
        )
        .await?;
    }
    Ok(())
}

/// The key policy for these service principals, with the caller's account as owner.
async fn key_policy(c: &Clients, services: &[String]) -> Result<String, CloudError> {
    let rc = c.global().await;
    let me = c
        .call(
            Call::new(&rc.region, "sts", "GetCallerIdentity"),
            rc.sts.get_caller_identity().send(),
        )
        .await?;
    let account = me.account().unwrap_or_default();
    let partition = me.arn().and_then(|a| a.split(':').nth(1)).unwrap_or("aws");
    let mut statements = vec![json!({
        "Sid": "AccountRootHasFullControl",
        "Effect": "Allow",
        "Principal": {"AWS": format!("arn:{partition}:iam::{account}:root")},
        "Action": "kms:*",
        "Resource": "*"
    })];
    if !services.is_empty() {
        statements.push(json!({
            "Sid": SERVICES_SID,
            "Effect": "Allow",
            "Principal": {"Service": services},
            "Action": SERVICE_ACTIONS,
            "Resource": "*"
        }));
    }
    Ok(json!({"Version": "2012-10-17", "Statement": statements}).to_string())
}

fn principals(spec: &Value) -> Vec<String> {
    super::data_common::strings(spec, "service_principals")
}

/// The service principals a key policy lets use the key (its [`SERVICES_SID`] statement).
fn policy_principals(policy: &Value) -> Option<Value> {
    let st = policy.get("Statement")?.as_array()?;
    let s = st
        .iter()
        .find(|s| s.get("Sid").and_then(Value::as_str) == Some(SERVICES_SID))?;
    match s.get("Principal")?.get("Service")? {
        Value::String(one) => Some(json!([one])),
        many => Some(many.clone()),
    }
}

/// Every key id of a region.
async fn key_ids(c: &Clients, region: &str) -> Result<Vec<String>, CloudError> {
    let rc = c.region(region).await;
    let mut ids = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let out = c
            .call(
                Call::new(region, "kms", "ListKeys"),
                rc.kms.list_keys().set_marker(marker.clone()).send(),
            )
            .await?;
        ids.extend(
            out.keys()
                .iter()
                .filter_map(|k| k.key_id().map(str::to_string)),
        );
        match out.next_marker() {
            Some(m) if out.truncated() => marker = Some(m.to_string()),
            _ => break,
        }
    }
    Ok(ids)
}

/// A key's tags; `None` for a key whose tags cannot be read (AWS managed keys, a key deleted
/// meanwhile): not drflow's.
async fn key_tags(c: &Clients, region: &str, key: &str) -> Result<Option<Tags>, CloudError> {
    let rc = c.region(region).await;
    match c
        .call(
            Call::new(region, "kms", "ListResourceTags"),
            rc.kms.list_resource_tags().key_id(key).send(),
        )
        .await
    {
        Ok(out) => Ok(Some(
            out.tags()
                .iter()
                .map(|t| (t.tag_key().to_string(), t.tag_value().to_string()))
                .collect(),
        )),
        Err(e) if matches!(e.kind, ErrorKind::NotFound | ErrorKind::Denied) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The key as found: `None` when it is scheduled for deletion.
async fn read_key(
    c: &Clients,
    region: &str,
    key: &str,
    name: &str,
    tags: Tags,
) -> Result<Option<Resource>, CloudError> {
    let rc = c.region(region).await;
    let Some(out) = absent(
        c.call(
            Call::new(region, "kms", "DescribeKey"),
            rc.kms.describe_key().key_id(key).send(),
        )
        .await,
    )?
    else {
        return Ok(None);
    };
    let Some(m) = out.key_metadata() else {
        return Ok(None);
    };
    let state = match m.key_state() {
        Some(KeyState::PendingDeletion | KeyState::PendingReplicaDeletion) => return Ok(None),
        Some(KeyState::Creating) => ResourceState::Creating,
        Some(KeyState::Updating) => ResourceState::Modifying,
        Some(KeyState::Enabled | KeyState::Disabled) | None => ResourceState::Available,
        Some(_) => ResourceState::Failed,
    };
    let arn = m.arn().unwrap_or_default().to_string();
    // A replica is a multi-region key whose primary lives in another region.
    let primary = m
        .multi_region_configuration()
        .and_then(|mr| mr.primary_key())
        .filter(|p| p.region().is_some_and(|r| r != region));
    let mut spec = Map::new();
    if let Some(d) = m.description() {
        spec.insert("description".into(), json!(d));
    }
    let (rotation_region, rotation_key) = match primary {
        Some(p) => (
            p.region().unwrap_or(region).to_string(),
            m.key_id().to_string(),
        ),
        None => (region.to_string(), m.key_id().to_string()),
    };
    if let Some(p) = primary {
        spec.insert("multi_region".into(), json!(true));
        spec.insert("primary_key_arn".into(), json!(p.arn().unwrap_or_default()));
    } else {
        if let Some(k) = m.key_spec() {
            spec.insert("key_spec".into(), json!(k.as_str()));
        }
        if let Some(u) = m.key_usage() {
            spec.insert("key_usage".into(), json!(u.as_str()));
        }
        spec.insert(
            "multi_region".into(),
            json!(m.multi_region().unwrap_or(false)),
        );
    }
    let hc = c.region(&rotation_region).await;
    let rot = absent(
        c.call(
            Call::new(&rotation_region, "kms", "GetKeyRotationStatus"),
            hc.kms
                .get_key_rotation_status()
                .key_id(&rotation_key)
                .send(),
        )
        .await,
    )?;
    let rotating = rot.as_ref().is_some_and(|r| r.key_rotation_enabled());
    spec.insert("enable_key_rotation".into(), json!(rotating));
    if primary.is_none() && rotating {
        // AWS reports the period of every enabled rotation; moto 5.2.5 never does, and then
        // the period is AWS's default.
        let days = rot
            .as_ref()
            .and_then(|r| r.rotation_period_in_days())
            .map(i64::from)
            .unwrap_or(DEFAULT_ROTATION_DAYS);
        spec.insert("rotation_period_days".into(), json!(days));
    }
    spec.insert("enabled".into(), json!(m.enabled()));
    if primary.is_none() {
        let policy = c
            .call(
                Call::new(region, "kms", "GetKeyPolicy"),
                rc.kms
                    .get_key_policy()
                    .key_id(m.key_id())
                    .policy_name("default")
                    .send(),
            )
            .await?;
        if let Some(p) = policy
            .policy()
            .map(decode_policy)
            .as_ref()
            .and_then(policy_principals)
        {
            spec.insert("service_principals".into(), p);
        }
    }
    Ok(Some(resource(
        Kind::KmsKey,
        region,
        name,
        m.key_id(),
        arn,
        spec,
        Map::new(),
        tags,
        state,
    )))
}

/// Every alias of a region, as resources (no tags: KMS cannot tag an alias).
async fn aliases(c: &Clients, region: &str) -> Result<Vec<Resource>, CloudError> {
    let rc = c.region(region).await;
    let mut out = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = c
            .call(
                Call::new(region, "kms", "ListAliases"),
                rc.kms.list_aliases().set_marker(marker.clone()).send(),
            )
            .await?;
        for a in page.aliases() {
            let Some(name) = a.alias_name() else { continue };
            let mut spec = Map::new();
            if let Some(t) = a.target_key_id() {
                spec.insert("target_key_id".into(), json!(t));
            }
            out.push(resource(
                Kind::KmsAlias,
                region,
                name,
                name,
                a.alias_arn().unwrap_or_default(),
                spec,
                Map::new(),
                Tags::new(),
                ResourceState::Available,
            ));
        }
        match page.next_marker() {
            Some(m) if page.truncated() => marker = Some(m.to_string()),
            _ => break,
        }
    }
    Ok(out)
}

fn kms_tags(tags: &Tags) -> Result<Vec<Tag>, CloudError> {
    tags.iter()
        .map(|(k, v)| {
            Tag::builder()
                .tag_key(k)
                .tag_value(v)
                .build()
                .map_err(|e| CloudError::new(ErrorKind::Internal, format!("kms tag {k}: {e}")))
        })
        .collect()
}

/// The region field of an ARN (`arn:aws:kms:<region>:...`).
fn arn_region(arn: &str) -> &str {
    arn.split(':').nth(3).unwrap_or("")
}

/// The key id of a key ARN (`.../key/<id>`), or the input if it is no ARN.
fn arn_key_id(arn: &str) -> &str {
    arn.rsplit_once("key/").map(|(_, id)| id).unwrap_or(arn)
}

fn vanished(kind: Kind, name: &str) -> CloudError {
    CloudError::new(
        ErrorKind::Internal,
        format!("kms: the {kind} {name} was not found right after it was written"),
    )
}

fn not_kms(kind: Kind) -> CloudError {
    CloudError::new(ErrorKind::NotBuilt, format!("{kind} is not a kms kind"))
}

#[cfg(test)]
mod tests {
    use super::super::data_common::testing::{moto, tags, unique};
    use super::*;
    use crate::cloud::drift::diff_raw as diff;

    const PRIMARY: &str = "eu-south-1";
    const STANDBY: &str = "eu-central-1";

    fn key_spec(name: &str) -> Value {
        json!({
            "description": format!("drflow {name}: data at rest in every region"),
            "key_spec": "SYMMETRIC_DEFAULT",
            "key_usage": "ENCRYPT_DECRYPT",
            "multi_region": true,
            "enable_key_rotation": true,
            "rotation_period_days": 365,
            "pending_window_in_days": 7,
            "enabled": true,
            "service_principals": ["rds.amazonaws.com", "s3.amazonaws.com"],
        })
    }

    fn without(spec: &Value, key: &str) -> Value {
        let mut s = spec.clone();
        s.as_object_mut().unwrap().remove(key);
        s
    }

    #[tokio::test]
    async fn multi_region_key_replica_and_aliases_round_trip_through_moto() {
        let Some(c) = moto("kms multi-region key") else {
            return;
        };
        let name = unique("kms-key");
        let spec = key_spec(&name);
        let primary = create(
            &c,
            &CreateRequest {
                kind: Kind::KmsKey,
                region: PRIMARY.into(),
                name: name.clone(),
                parent: None,
                spec: spec.clone(),
                tags: tags(&name),
                depends_on: vec![],
            },
        )
        .await
        .unwrap();
        assert!(primary.arn.contains(&primary.id));
        let found = find(&c, &Identity::new(Kind::KmsKey, PRIMARY, &name))
            .await
            .unwrap()
            .unwrap();
        // `pending_window_in_days` is write-only: AWS never returns it.
        assert!(found.spec.get("pending_window_in_days").is_none());
        assert_eq!(
            diff(&without(&spec, "pending_window_in_days"), &found.spec),
            Vec::<String>::new()
        );
        assert_eq!(found.tags, tags(&name));
        assert_eq!(found.state, ResourceState::Available);

        let replica_spec = json!({
            "description": format!("drflow {name}: replica"),
            "multi_region": true,
            "primary_key_arn": primary.arn,
            "enable_key_rotation": true,
            "pending_window_in_days": 7,
            "enabled": true,
        });
        let replica = create(
            &c,
            &CreateRequest {
                kind: Kind::KmsKey,
                region: STANDBY.into(),
                name: name.clone(),
                parent: None,
                spec: replica_spec.clone(),
                tags: tags(&name),
                depends_on: vec![],
            },
        )
        .await
        .unwrap();
        let found_replica = find(&c, &Identity::new(Kind::KmsKey, STANDBY, &name))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found_replica.id, replica.id);
        assert_eq!(
            diff(
                &without(&replica_spec, "pending_window_in_days"),
                &found_replica.spec
            ),
            Vec::<String>::new()
        );
        assert_eq!(found_replica.tags, tags(&name));

        // One drifted path: the description, and only UpdateKeyDescription is called.
        let mut want = spec.clone();
        want["description"] = json!("changed");
        let before = c.calls().len();
        let updated = update(
            &c,
            &found,
            &UpdateRequest {
                spec: want,
                drifted: vec!["description".into()],
                tags: tags(&name),
                depends_on: vec![],
            },
        )
        .await
        .unwrap();
        assert_eq!(updated.spec["description"], "changed");
        let mutating: Vec<_> = c.calls()[before..]
            .iter()
            .filter(|r| r.mutating)
            .map(|r| r.operation)
            .collect();
        assert_eq!(mutating, ["UpdateKeyDescription"]);

        // The alias, in both regions.
        let alias = format!("alias/{name}");
        for (region, key) in [(PRIMARY, &primary.id), (STANDBY, &replica.id)] {
            let a = create(
                &c,
                &CreateRequest {
                    kind: Kind::KmsAlias,
                    region: region.into(),
                    name: alias.clone(),
                    parent: None,
                    spec: json!({"target_key_id": key}),
                    tags: tags(&alias),
                    depends_on: vec![],
                },
            )
            .await
            .unwrap();
            assert_eq!(a.spec, json!({"target_key_id": key}));
            assert!(a.tags.is_empty(), "KMS aliases cannot be tagged");
        }
        let listed = list(&c, PRIMARY, Kind::KmsAlias, None).await.unwrap();
        assert!(listed.iter().any(|a| a.name == alias));
        let keys = list(&c, STANDBY, Kind::KmsKey, None).await.unwrap();
        assert!(keys.iter().any(|k| k.id == replica.id && k.name == name));

        // Repoint the primary's alias at the replica's id (a drifted target).
        let a = find(&c, &Identity::new(Kind::KmsAlias, PRIMARY, &alias))
            .await
            .unwrap()
            .unwrap();
        let second = create(
            &c,
            &CreateRequest {
                kind: Kind::KmsKey,
                region: PRIMARY.into(),
                name: format!("{name}-b"),
                parent: None,
                spec: json!({"description": "b", "multi_region": false, "enabled": true}),
                tags: tags(&format!("{name}-b")),
                depends_on: vec![],
            },
        )
        .await
        .unwrap();
        let a = update(
            &c,
            &a,
            &UpdateRequest {
                spec: json!({"target_key_id": second.id}),
                drifted: vec!["target_key_id".into()],
                tags: Tags::new(),
                depends_on: vec![],
            },
        )
        .await
        .unwrap();
        assert_eq!(a.spec["target_key_id"], json!(second.id));

        for (region, _) in [(PRIMARY, 0), (STANDBY, 1)] {
            let a = find(&c, &Identity::new(Kind::KmsAlias, region, &alias))
                .await
                .unwrap()
                .unwrap();
            delete(&c, &a).await.unwrap();
            assert!(
                find(&c, &Identity::new(Kind::KmsAlias, region, &alias))
                    .await
                    .unwrap()
                    .is_none()
            );
        }
        for (region, n) in [
            (STANDBY, &name),
            (PRIMARY, &name),
            (PRIMARY, &format!("{name}-b")),
        ] {
            let k = find(&c, &Identity::new(Kind::KmsKey, region, n))
                .await
                .unwrap()
                .unwrap();
            delete(&c, &k).await.unwrap();
            assert!(
                find(&c, &Identity::new(Kind::KmsKey, region, n))
                    .await
                    .unwrap()
                    .is_none(),
                "a key scheduled for deletion is gone for drflow"
            );
        }
    }
}
