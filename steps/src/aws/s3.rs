//! `s3_bucket` on S3.
//!
//! A bucket is its own name (global across regions) and lives in the request's region
//! (`CreateBucketConfiguration.LocationConstraint`, which us-east-1 must not send). Its spec
//! is one key per S3 sub-resource, each read by its `Get*` call and written by its `Put*`:
//! `versioning`, `encryption`, `public_access_block`, `object_ownership`, `policy` (a JSON
//! object), `replication`. `update` calls only the `Put*` of the drifted keys.
//! `force_destroy` is write-only: delete empties the bucket first (every object version and
//! delete marker) unless the spec says `force_destroy: false`.

use serde_json::{Map, Value, json};

use super::data_common::{absent, b, decode_policy, drifted, i, managed, resource, s, tags_to_set};
use super::{Call, Clients};
use crate::backend::{
    CloudError, CreateRequest, ErrorKind, Identity, Kind, Resource, ResourceState, Tags,
    UpdateRequest,
};
use aws_sdk_s3::types::{
    BucketLocationConstraint, BucketVersioningStatus, CreateBucketConfiguration, Delete,
    DeleteMarkerReplication, DeleteMarkerReplicationStatus, Destination, EncryptionConfiguration,
    ObjectIdentifier, ObjectOwnership, OwnershipControls, OwnershipControlsRule,
    PublicAccessBlockConfiguration, ReplicationConfiguration, ReplicationRule,
    ReplicationRuleFilter, ReplicationRuleStatus, ServerSideEncryption,
    ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration, ServerSideEncryptionRule,
    SourceSelectionCriteria, SseKmsEncryptedObjects, SseKmsEncryptedObjectsStatus, StorageClass,
    Tag, Tagging, VersioningConfiguration,
};

/// The spec keys in the order `create` applies them (replication needs versioning first).
const KEYS: &[&str] = &[
    "versioning",
    "encryption",
    "public_access_block",
    "object_ownership",
    "policy",
    "replication",
];

pub(super) async fn find(c: &Clients, id: &Identity) -> Result<Option<Resource>, CloudError> {
    if id.kind != Kind::S3Bucket {
        return Err(not_s3(id.kind));
    }
    read_bucket(c, &id.region, &id.name).await
}

pub(super) async fn list(
    c: &Clients,
    region: &str,
    kind: Kind,
    _parent: Option<&str>,
) -> Result<Vec<Resource>, CloudError> {
    if kind != Kind::S3Bucket {
        return Err(not_s3(kind));
    }
    let rc = c.region(region).await;
    let out = c
        .call(
            Call::new(region, "s3", "ListBuckets"),
            rc.s3.list_buckets().send(),
        )
        .await?;
    let mut found = Vec::new();
    for bucket in out.buckets() {
        let Some(name) = bucket.name() else { continue };
        // ListBuckets lists every region's buckets: keep this region's, then drflow's.
        if bucket_region(c, region, name).await?.as_deref() != Some(region) {
            continue;
        }
        if !managed(&bucket_tags(c, region, name).await?) {
            continue;
        }
        if let Some(r) = read_bucket(c, region, name).await? {
            found.push(r);
        }
    }
    Ok(found)
}

pub(super) async fn create(c: &Clients, req: &CreateRequest) -> Result<Resource, CloudError> {
    if req.kind != Kind::S3Bucket {
        return Err(not_s3(req.kind));
    }
    let region = req.region.as_str();
    let rc = c.region(region).await;
    let mut call = rc.s3.create_bucket().bucket(&req.name);
    if region != "us-east-1" {
        call = call.create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(region))
                .build(),
        );
    }
    c.call(Call::new(region, "s3", "CreateBucket"), call.send())
        .await?;
    if !req.tags.is_empty() {
        put_tags(c, region, &req.name, &req.tags).await?;
    }
    for key in KEYS {
        if req.spec.get(*key).is_some_and(|v| !v.is_null()) {
            put(c, region, &req.name, key, &req.spec).await?;
        }
    }
    read_bucket(c, region, &req.name)
        .await?
        .ok_or_else(|| vanished(&req.name))
}

pub(super) async fn update(
    c: &Clients,
    current: &Resource,
    req: &UpdateRequest,
) -> Result<Resource, CloudError> {
    if current.kind != Kind::S3Bucket {
        return Err(not_s3(current.kind));
    }
    let region = current.region.as_str();
    for key in KEYS {
        if drifted(req, key) {
            put(c, region, &current.name, key, &req.spec).await?;
        }
    }
    if !tags_to_set(&current.tags, &req.tags).is_empty() {
        // PutBucketTagging replaces the whole set: keep the tags drflow does not name.
        let mut all = current.tags.clone();
        all.extend(req.tags.clone());
        put_tags(c, region, &current.name, &all).await?;
    }
    read_bucket(c, region, &current.name)
        .await?
        .ok_or_else(|| vanished(&current.name))
}

pub(super) async fn delete(c: &Clients, current: &Resource) -> Result<(), CloudError> {
    if current.kind != Kind::S3Bucket {
        return Err(not_s3(current.kind));
    }
    let region = current.region.as_str();
    let rc = c.region(region).await;
    let bucket = current.name.as_str();
    if b(&current.spec, "force_destroy") != Some(false) {
        empty(c, region, bucket).await?;
    }
    c.call(
        Call::new(region, "s3", "DeleteBucket"),
        rc.s3.delete_bucket().bucket(bucket).send(),
    )
    .await?;
    Ok(())
}

/// Deletes every object version and delete marker of a bucket, a page (up to 1000) at a time.
async fn empty(c: &Clients, region: &str, bucket: &str) -> Result<(), CloudError> {
    let rc = c.region(region).await;
    let mut last: Option<(String, Option<String>)> = None;
    loop {
        let page = c
            .call(
                Call::new(region, "s3", "ListObjectVersions"),
                rc.s3.list_object_versions().bucket(bucket).send(),
            )
            .await?;
        let mut ids = Vec::new();
        let versions = page
            .versions()
            .iter()
            .map(|v| (v.key(), v.version_id()))
            .chain(
                page.delete_markers()
                    .iter()
                    .map(|m| (m.key(), m.version_id())),
            );
        for (key, version) in versions {
            let Some(key) = key else { continue };
            ids.push(
                ObjectIdentifier::builder()
                    .key(key)
                    .set_version_id(version.map(str::to_string))
                    .build()
                    .map_err(be)?,
            );
        }
        if ids.is_empty() {
            return Ok(());
        }
        // A page that starts where the last one did means the deletes did not take.
        let first = ids
            .first()
            .map(|o| (o.key().to_string(), o.version_id().map(str::to_string)));
        if first == last {
            return Err(CloudError::new(
                ErrorKind::Internal,
                format!(
                    "s3 DeleteObjects in {region}: {bucket} still holds the objects it deleted"
                ),
            ));
        }
        last = first;
        c.call(
            Call::new(region, "s3", "DeleteObjects"),
            rc.s3
                .delete_objects()
                .bucket(bucket)
                .delete(
                    Delete::builder()
                        .set_objects(Some(ids))
                        .quiet(true)
                        .build()
                        .map_err(be)?,
                )
                .send(),
        )
        .await?;
    }
}

/// Writes one spec key with its `Put*` call (or removes it, for a policy or replication the
/// spec no longer has).
async fn put(
    c: &Clients,
    region: &str,
    bucket: &str,
    key: &str,
    spec: &Value,
) -> Result<(), CloudError> {
    let rc = c.region(region).await;
    let v = spec.get(key).filter(|v| !v.is_null());
    match key {
        "versioning" => {
            let status = v.and_then(Value::as_str).unwrap_or("Suspended");
            c.call(
                Call::new(region, "s3", "PutBucketVersioning"),
                rc.s3
                    .put_bucket_versioning()
                    .bucket(bucket)
                    .versioning_configuration(
                        VersioningConfiguration::builder()
                            .status(BucketVersioningStatus::from(status))
                            .build(),
                    )
                    .send(),
            )
            .await?;
        }
        "encryption" => {
            let Some(e) = v else { return Ok(()) };
            let by_default = ServerSideEncryptionByDefault::builder()
                .sse_algorithm(ServerSideEncryption::from(
                    s(e, "sse_algorithm").unwrap_or("AES256"),
                ))
                .set_kms_master_key_id(s(e, "kms_master_key_id").map(str::to_string))
                .build()
                .map_err(be)?;
            let rule = ServerSideEncryptionRule::builder()
                .apply_server_side_encryption_by_default(by_default)
                .set_bucket_key_enabled(b(e, "bucket_key_enabled"))
                .build();
            c.call(
                Call::new(region, "s3", "PutBucketEncryption"),
                rc.s3
                    .put_bucket_encryption()
                    .bucket(bucket)
                    .server_side_encryption_configuration(
                        ServerSideEncryptionConfiguration::builder()
                            .rules(rule)
                            .build()
                            .map_err(be)?,
                    )
                    .send(),
            )
            .await?;
        }
        "public_access_block" => {
            let Some(p) = v else { return Ok(()) };
            c.call(
                Call::new(region, "s3", "PutPublicAccessBlock"),
                rc.s3
                    .put_public_access_block()
                    .bucket(bucket)
                    .public_access_block_configuration(
                        PublicAccessBlockConfiguration::builder()
                            .set_block_public_acls(b(p, "block_public_acls"))
                            .set_ignore_public_acls(b(p, "ignore_public_acls"))
                            .set_block_public_policy(b(p, "block_public_policy"))
                            .set_restrict_public_buckets(b(p, "restrict_public_buckets"))
                            .build(),
                    )
                    .send(),
            )
            .await?;
        }
        "object_ownership" => {
            let Some(o) = v.and_then(Value::as_str) else {
                return Ok(());
            };
            c.call(
                Call::new(region, "s3", "PutBucketOwnershipControls"),
                rc.s3
                    .put_bucket_ownership_controls()
                    .bucket(bucket)
                    .ownership_controls(
                        OwnershipControls::builder()
                            .rules(
                                OwnershipControlsRule::builder()
                                    .object_ownership(ObjectOwnership::from(o))
                                    .build()
                                    .map_err(be)?,
                            )
                            .build()
                            .map_err(be)?,
                    )
                    .send(),
            )
            .await?;
        }
        "policy" => match v {
            Some(p) => {
                c.call(
                    Call::new(region, "s3", "PutBucketPolicy"),
                    rc.s3
                        .put_bucket_policy()
                        .bucket(bucket)
                        .policy(p.to_string())
                        .send(),
                )
                .await?;
            }
            None => {
                c.call(
                    Call::new(region, "s3", "DeleteBucketPolicy"),
                    rc.s3.delete_bucket_policy().bucket(bucket).send(),
                )
                .await?;
            }
        },
        "replication" => match v {
            Some(r) => {
                let mut rules = Vec::new();
                for rule in r
                    .get("rules")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    rules.push(replication_rule(rule)?);
                }
                c.call(
                    Call::new(region, "s3", "PutBucketReplication"),
                    rc.s3
                        .put_bucket_replication()
                        .bucket(bucket)
                        .replication_configuration(
                            ReplicationConfiguration::builder()
                                .role(s(r, "role").unwrap_or_default())
                                .set_rules(Some(rules))
                                .build()
                                .map_err(be)?,
                        )
                        .send(),
                )
                .await?;
            }
            None => {
                c.call(
                    Call::new(region, "s3", "DeleteBucketReplication"),
                    rc.s3.delete_bucket_replication().bucket(bucket).send(),
                )
                .await?;
            }
        },
        _ => {}
    }
    Ok(())
}

fn replication_rule(rule: &Value) -> Result<ReplicationRule, CloudError> {
    let mut filter = ReplicationRuleFilter::builder();
    if let Some(p) = rule.get("filter").and_then(|f| s(f, "prefix")) {
        filter = filter.prefix(p);
    }
    let dest = rule.get("destination").cloned().unwrap_or(Value::Null);
    let mut d = Destination::builder().bucket(s(&dest, "bucket").unwrap_or_default());
    if let Some(sc) = s(&dest, "storage_class") {
        d = d.storage_class(StorageClass::from(sc));
    }
    if let Some(k) = s(&dest, "replica_kms_key_id") {
        d = d.encryption_configuration(
            EncryptionConfiguration::builder()
                .replica_kms_key_id(k)
                .build(),
        );
    }
    let mut r = ReplicationRule::builder()
        .set_id(s(rule, "id").map(str::to_string))
        .set_priority(i(rule, "priority").map(|p| p as i32))
        .filter(filter.build())
        .status(ReplicationRuleStatus::from(
            s(rule, "status").unwrap_or("Enabled"),
        ))
        .destination(d.build().map_err(be)?);
    if let Some(dm) = s(rule, "delete_marker_replication") {
        r = r.delete_marker_replication(
            DeleteMarkerReplication::builder()
                .status(DeleteMarkerReplicationStatus::from(dm))
                .build(),
        );
    }
    if let Some(st) = rule
        .get("source_selection_criteria")
        .and_then(|x| s(x, "sse_kms_encrypted_objects"))
    {
        r = r.source_selection_criteria(
            SourceSelectionCriteria::builder()
                .sse_kms_encrypted_objects(
                    SseKmsEncryptedObjects::builder()
                        .status(SseKmsEncryptedObjectsStatus::from(st))
                        .build()
                        .map_err(be)?,
                )
                .build(),
        );
    }
    r.build().map_err(be)
}

/// The bucket's region (us-east-1 answers an empty location), `None` when it does not exist.
async fn bucket_region(
    c: &Clients,
    region: &str,
    bucket: &str,
) -> Result<Option<String>, CloudError> {
    let rc = c.region(region).await;
    let out = absent(
        c.call(
            Call::new(region, "s3", "GetBucketLocation"),
            rc.s3.get_bucket_location().bucket(bucket).send(),
        )
        .await,
    )?;
    Ok(
        out.map(|o| match o.location_constraint().map(|l| l.as_str()) {
            None | Some("") => "us-east-1".to_string(),
            Some("EU") => "eu-west-1".to_string(),
            Some(r) => r.to_string(),
        }),
    )
}

async fn bucket_tags(c: &Clients, region: &str, bucket: &str) -> Result<Tags, CloudError> {
    let rc = c.region(region).await;
    let out = absent(
        c.call(
            Call::new(region, "s3", "GetBucketTagging"),
            rc.s3.get_bucket_tagging().bucket(bucket).send(),
        )
        .await,
    )?;
    Ok(out
        .map(|o| {
            o.tag_set()
                .iter()
                .map(|t| (t.key().to_string(), t.value().to_string()))
                .collect()
        })
        .unwrap_or_default())
}

async fn put_tags(c: &Clients, region: &str, bucket: &str, tags: &Tags) -> Result<(), CloudError> {
    let rc = c.region(region).await;
    let set = tags
        .iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build().map_err(be))
        .collect::<Result<Vec<_>, _>>()?;
    c.call(
        Call::new(region, "s3", "PutBucketTagging"),
        rc.s3
            .put_bucket_tagging()
            .bucket(bucket)
            .tagging(
                Tagging::builder()
                    .set_tag_set(Some(set))
                    .build()
                    .map_err(be)?,
            )
            .send(),
    )
    .await?;
    Ok(())
}

/// The bucket as found: one `Get*` per spec key (a missing configuration is an absent key).
async fn read_bucket(
    c: &Clients,
    region: &str,
    bucket: &str,
) -> Result<Option<Resource>, CloudError> {
    let Some(home) = bucket_region(c, region, bucket).await? else {
        return Ok(None);
    };
    let rc = c.region(&home).await;
    let r = home.as_str();
    let mut spec = Map::new();
    let v = c
        .call(
            Call::new(r, "s3", "GetBucketVersioning"),
            rc.s3.get_bucket_versioning().bucket(bucket).send(),
        )
        .await?;
    if let Some(st) = v.status() {
        spec.insert("versioning".into(), json!(st.as_str()));
    }
    if let Some(e) = absent(
        c.call(
            Call::new(r, "s3", "GetBucketEncryption"),
            rc.s3.get_bucket_encryption().bucket(bucket).send(),
        )
        .await,
    )? {
        let rule = e
            .server_side_encryption_configuration()
            .and_then(|x| x.rules().first());
        if let Some(rule) = rule {
            let mut enc = Map::new();
            if let Some(d) = rule.apply_server_side_encryption_by_default() {
                enc.insert("sse_algorithm".into(), json!(d.sse_algorithm().as_str()));
                if let Some(k) = d.kms_master_key_id() {
                    enc.insert("kms_master_key_id".into(), json!(k));
                }
            }
            if let Some(bk) = rule.bucket_key_enabled() {
                enc.insert("bucket_key_enabled".into(), json!(bk));
            }
            spec.insert("encryption".into(), Value::Object(enc));
        }
    }
    if let Some(p) = absent(
        c.call(
            Call::new(r, "s3", "GetPublicAccessBlock"),
            rc.s3.get_public_access_block().bucket(bucket).send(),
        )
        .await,
    )? && let Some(p) = p.public_access_block_configuration()
    {
        spec.insert(
            "public_access_block".into(),
            json!({
                "block_public_acls": p.block_public_acls().unwrap_or(false),
                "ignore_public_acls": p.ignore_public_acls().unwrap_or(false),
                "block_public_policy": p.block_public_policy().unwrap_or(false),
                "restrict_public_buckets": p.restrict_public_buckets().unwrap_or(false),
            }),
        );
    }
    if let Some(o) = absent(
        c.call(
            Call::new(r, "s3", "GetBucketOwnershipControls"),
            rc.s3.get_bucket_ownership_controls().bucket(bucket).send(),
        )
        .await,
    )? && let Some(rule) = o.ownership_controls().and_then(|x| x.rules().first())
    {
        spec.insert(
            "object_ownership".into(),
            json!(rule.object_ownership().as_str()),
        );
    }
    if let Some(p) = absent(
        c.call(
            Call::new(r, "s3", "GetBucketPolicy"),
            rc.s3.get_bucket_policy().bucket(bucket).send(),
        )
        .await,
    )? && let Some(doc) = p.policy()
    {
        spec.insert("policy".into(), decode_policy(doc));
    }
    if let Some(rep) = absent(
        c.call(
            Call::new(r, "s3", "GetBucketReplication"),
            rc.s3.get_bucket_replication().bucket(bucket).send(),
        )
        .await,
    )? && let Some(conf) = rep.replication_configuration()
    {
        let rules: Vec<Value> = conf.rules().iter().map(read_rule).collect();
        spec.insert(
            "replication".into(),
            json!({"role": conf.role(), "rules": rules}),
        );
    }
    let tags = bucket_tags(c, r, bucket).await?;
    Ok(Some(resource(
        Kind::S3Bucket,
        r,
        bucket,
        bucket,
        format!("arn:aws:s3:::{bucket}"),
        spec,
        Map::new(),
        tags,
        ResourceState::Available,
    )))
}

fn read_rule(rule: &ReplicationRule) -> Value {
    let mut out = Map::new();
    if let Some(id) = rule.id() {
        out.insert("id".into(), json!(id));
    }
    out.insert("status".into(), json!(rule.status().as_str()));
    if let Some(p) = rule.priority() {
        out.insert("priority".into(), json!(p));
    }
    if let Some(f) = rule.filter() {
        let mut filter = Map::new();
        if let Some(p) = f.prefix().filter(|p| !p.is_empty()) {
            filter.insert("prefix".into(), json!(p));
        }
        out.insert("filter".into(), Value::Object(filter));
    }
    if let Some(st) = rule.delete_marker_replication().and_then(|d| d.status()) {
        out.insert("delete_marker_replication".into(), json!(st.as_str()));
    }
    if let Some(st) = rule
        .source_selection_criteria()
        .and_then(|x| x.sse_kms_encrypted_objects())
    {
        out.insert(
            "source_selection_criteria".into(),
            json!({"sse_kms_encrypted_objects": st.status().as_str()}),
        );
    }
    if let Some(d) = rule.destination() {
        let mut dest = Map::new();
        dest.insert("bucket".into(), json!(d.bucket()));
        if let Some(k) = d
            .encryption_configuration()
            .and_then(|e| e.replica_kms_key_id())
        {
            dest.insert("replica_kms_key_id".into(), json!(k));
        }
        if let Some(sc) = d.storage_class() {
            dest.insert("storage_class".into(), json!(sc.as_str()));
        }
        out.insert("destination".into(), Value::Object(dest));
    }
    Value::Object(out)
}

fn be(e: aws_sdk_s3::error::BuildError) -> CloudError {
    CloudError::new(ErrorKind::InvalidInput, format!("s3: {e}"))
}

fn vanished(name: &str) -> CloudError {
    CloudError::new(
        ErrorKind::Internal,
        format!("s3: the bucket {name} was not found right after it was written"),
    )
}

fn not_s3(kind: Kind) -> CloudError {
    CloudError::new(ErrorKind::NotBuilt, format!("{kind} is not an s3 kind"))
}

#[cfg(test)]
mod tests {
    use super::super::data_common::testing::{moto, tags, unique};
    use super::*;
    use crate::cloud::drift::diff_raw as diff;

    fn bucket_spec(bucket: &str) -> Value {
        json!({
            "versioning": "Enabled",
            "encryption": {"sse_algorithm": "aws:kms", "kms_master_key_id": "arn:aws:kms:eu-south-1:123456789012:key/mrk-1", "bucket_key_enabled": true},
            "public_access_block": {"block_public_acls": true, "ignore_public_acls": true, "block_public_policy": true, "restrict_public_buckets": true},
            "object_ownership": "BucketOwnerEnforced",
            "policy": {"Version": "2012-10-17", "Statement": [{"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                "Resource": [format!("arn:aws:s3:::{bucket}"), format!("arn:aws:s3:::{bucket}/*")],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]},
            "force_destroy": true,
        })
    }

    #[tokio::test]
    async fn replicated_buckets_round_trip_through_moto() {
        let Some(c) = moto("s3 bucket") else { return };
        let dst = unique("artifacts-eu-central-1");
        let src = unique("artifacts-eu-south-1");
        let dst_spec = bucket_spec(&dst);
        let replica = create(
            &c,
            &CreateRequest {
                kind: Kind::S3Bucket,
                region: "eu-central-1".into(),
                name: dst.clone(),
                parent: None,
                spec: dst_spec.clone(),
                tags: tags(&dst),
                depends_on: vec![],
            },
        )
        .await
        .unwrap();
        assert_eq!(replica.region, "eu-central-1");
        let mut src_spec = bucket_spec(&src);
        src_spec["replication"] = json!({
            "role": "arn:aws:iam::123456789012:role/s3-replication-role",
            "rules": [{
                "id": "to-standby", "status": "Enabled", "priority": 1, "filter": {},
                "delete_marker_replication": "Enabled",
                "source_selection_criteria": {"sse_kms_encrypted_objects": "Enabled"},
                "destination": {"bucket": format!("arn:aws:s3:::{dst}"), "replica_kms_key_id": "arn:aws:kms:eu-central-1:123456789012:key/mrk-1", "storage_class": "STANDARD"},
            }]
        });
        create(
            &c,
            &CreateRequest {
                kind: Kind::S3Bucket,
                region: "eu-south-1".into(),
                name: src.clone(),
                parent: None,
                spec: src_spec.clone(),
                tags: tags(&src),
                depends_on: vec![],
            },
        )
        .await
        .unwrap();
        let found = find(&c, &Identity::new(Kind::S3Bucket, "eu-south-1", &src))
            .await
            .unwrap()
            .unwrap();
        let mut compared = src_spec.clone();
        // Write-only: S3 has no such setting to read back.
        compared.as_object_mut().unwrap().remove("force_destroy");
        assert!(found.spec.get("force_destroy").is_none());
        assert_eq!(
            crate::aws::testing::beyond_moto_gaps(Kind::S3Bucket, diff(&compared, &found.spec)),
            Vec::<String>::new()
        );
        assert_eq!(found.tags, tags(&src));
        assert_eq!(found.arn, format!("arn:aws:s3:::{src}"));

        // A drifted policy: PutBucketPolicy is the only write.
        let mut want = src_spec.clone();
        want["policy"]["Statement"][0]["Sid"] = json!("TlsOnly");
        let before = c.calls().len();
        let updated = update(
            &c,
            &found,
            &UpdateRequest {
                spec: want.clone(),
                drifted: vec!["policy".into()],
                tags: tags(&src),
                depends_on: vec![],
            },
        )
        .await
        .unwrap();
        let mutating: Vec<_> = c.calls()[before..]
            .iter()
            .filter(|r| r.mutating)
            .map(|r| r.operation)
            .collect();
        assert_eq!(mutating, ["PutBucketPolicy"]);
        assert_eq!(updated.spec["policy"], want["policy"]);

        let listed = list(&c, "eu-central-1", Kind::S3Bucket, None)
            .await
            .unwrap();
        assert!(listed.iter().any(|b| b.name == dst));
        assert!(
            !listed.iter().any(|b| b.name == src),
            "the other region's bucket is not listed"
        );

        // Destroy empties a bucket that holds object versions.
        let rc = c.region("eu-central-1").await;
        // The bucket's policy denies requests without TLS, and moto enforces it on its plain
        // http endpoint: lift it to put the objects.
        rc.s3
            .delete_bucket_policy()
            .bucket(&dst)
            .send()
            .await
            .unwrap();
        for body in ["one", "two"] {
            rc.s3
                .put_object()
                .bucket(&dst)
                .key("config.json")
                .body(body.as_bytes().to_vec().into())
                .send()
                .await
                .unwrap();
        }
        delete(&c, &updated).await.unwrap();
        delete(&c, &replica).await.unwrap();
        assert!(
            find(&c, &Identity::new(Kind::S3Bucket, "eu-south-1", &src))
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            find(&c, &Identity::new(Kind::S3Bucket, "eu-central-1", &dst))
                .await
                .unwrap()
                .is_none()
        );
    }
}
