//! `dynamodb_table` on DynamoDB.
//!
//! - A table is its own name in its region. Its spec: `attribute_definitions`, `key_schema`,
//!   `billing_mode`, `sse` (KMS), `point_in_time_recovery`, `stream_view_type`,
//!   `deletion_protection_enabled`, `ttl`, and for a global table either `replica_regions`
//!   (on the table replicas were added to) or `replica_of` (the ARN of that table, on a replica).
//! - A replica is created the way AWS makes global tables (version 2019.11.21): `UpdateTable`
//!   with `ReplicaUpdates: Create` on the source, with the replica region's KMS key, then the
//!   replica's own settings (PITR, TTL, tags) once it is active. AWS lists every replica on
//!   every member and has no "source": `find` calls the member created first the source.
//! - moto 5.2.5 answers `ReplicaUpdates` with success and does nothing (no replica, nothing
//!   listed). When the source lists no replica right after the call, the endpoint ignored it:
//!   the replica is then created as a table of its own, and the relationship is recorded in the
//!   tags `drflow:replica-of` (on the replica) and `drflow:replica-regions` (on the source), which
//!   `find` reads when the service lists no replicas. Real AWS never takes that path.

use std::time::Duration;

use serde_json::{Map, Value, json};

use super::data_common::{absent, b, drifted, managed, missing, resource, s, tags_to_set};
use super::{Call, Clients};
use crate::backend::{
    CloudError, CreateRequest, ErrorKind, Identity, Kind, Resource, ResourceState, Tags,
    UpdateRequest,
};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, CreateReplicationGroupMemberAction,
    DeleteReplicationGroupMemberAction, KeySchemaElement, KeyType,
    PointInTimeRecoverySpecification, ReplicationGroupUpdate, ScalarAttributeType,
    SseSpecification, SseType, StreamSpecification, StreamViewType, TableDescription, TableStatus,
    Tag, TimeToLiveSpecification,
};

/// On a replica an emulator would not make: the source table's ARN.
const REPLICA_OF_TAG: &str = "drflow:replica-of";
/// On that source: its replicas' regions, space-separated (tag values allow no commas).
const REPLICA_REGIONS_TAG: &str = "drflow:replica-regions";
/// How often, and how many times, to look whether a table is active: 30 minutes in all, the
/// time AWS may take to add a replica region.
const POLL: Duration = Duration::from_secs(5);
const POLLS: u32 = 360;

pub(super) async fn find(c: &Clients, id: &Identity) -> Result<Option<Resource>, CloudError> {
    if id.kind != Kind::DynamoTable {
        return Err(not_ddb(id.kind));
    }
    let Some(t) = describe(c, &id.region, &id.name).await? else {
        return Ok(None);
    };
    let tags = table_tags(c, &id.region, t.table_arn().unwrap_or_default()).await?;
    read_table(c, &id.region, &t, tags).await.map(Some)
}

pub(super) async fn list(
    c: &Clients,
    region: &str,
    kind: Kind,
    _parent: Option<&str>,
) -> Result<Vec<Resource>, CloudError> {
    if kind != Kind::DynamoTable {
        return Err(not_ddb(kind));
    }
    let rc = c.region(region).await;
    let mut names = Vec::new();
    let mut start: Option<String> = None;
    loop {
        let page = c
            .call(
                Call::new(region, "dynamodb", "ListTables"),
                rc.dynamodb
                    .list_tables()
                    .set_exclusive_start_table_name(start.clone())
                    .send(),
            )
            .await?;
        names.extend(page.table_names().iter().cloned());
        match page.last_evaluated_table_name() {
            Some(n) => start = Some(n.to_string()),
            None => break,
        }
    }
    let mut out = Vec::new();
    for name in names {
        let Some(t) = describe(c, region, &name).await? else {
            continue;
        };
        let tags = table_tags(c, region, t.table_arn().unwrap_or_default()).await?;
        if managed(&tags) {
            out.push(read_table(c, region, &t, tags).await?);
        }
    }
    Ok(out)
}

pub(super) async fn create(c: &Clients, req: &CreateRequest) -> Result<Resource, CloudError> {
    if req.kind != Kind::DynamoTable {
        return Err(not_ddb(req.kind));
    }
    let region = req.region.as_str();
    if let Some(source) = s(&req.spec, "replica_of") {
        return create_replica(c, req, source).await;
    }
    create_table(c, region, &req.name, &req.spec, &req.tags).await?;
    configure(c, region, &req.name, &req.spec).await?;
    find(c, &Identity::new(req.kind, region, &req.name))
        .await?
        .ok_or_else(|| vanished(&req.name))
}

pub(super) async fn update(
    c: &Clients,
    current: &Resource,
    req: &UpdateRequest,
) -> Result<Resource, CloudError> {
    if current.kind != Kind::DynamoTable {
        return Err(not_ddb(current.kind));
    }
    let region = current.region.as_str();
    let rc = c.region(region).await;
    let name = current.name.as_str();
    let spec = &req.spec;
    // DynamoDB takes one table update at a time: each waits for the table to be active again.
    if drifted(req, "billing_mode") {
        let mode = s(spec, "billing_mode").ok_or(missing(current.kind, "billing_mode"))?;
        update_table(
            c,
            region,
            name,
            |u| u.billing_mode(BillingMode::from(mode)),
            "UpdateTable",
        )
        .await?;
    }
    if drifted(req, "sse") {
        let sse = sse_spec(spec)?;
        update_table(c, region, name, |u| u.sse_specification(sse), "UpdateTable").await?;
    }
    if drifted(req, "stream_view_type") {
        // A stream's view type cannot change in place: turn the stream off first.
        if current.spec.get("stream_view_type").is_some() {
            let off = StreamSpecification::builder()
                .stream_enabled(false)
                .build()
                .map_err(be)?;
            update_table(
                c,
                region,
                name,
                |u| u.stream_specification(off),
                "UpdateTable",
            )
            .await?;
        }
        if let Some(on) = stream_spec(spec)? {
            update_table(
                c,
                region,
                name,
                |u| u.stream_specification(on),
                "UpdateTable",
            )
            .await?;
        }
    }
    if drifted(req, "deletion_protection_enabled") {
        let on = b(spec, "deletion_protection_enabled").unwrap_or(false);
        update_table(
            c,
            region,
            name,
            |u| u.deletion_protection_enabled(on),
            "UpdateTable",
        )
        .await?;
    }
    if drifted(req, "point_in_time_recovery") {
        set_pitr(
            c,
            region,
            name,
            b(spec, "point_in_time_recovery").unwrap_or(false),
        )
        .await?;
    }
    if drifted(req, "ttl") {
        let attr = spec
            .get("ttl")
            .and_then(|t| s(t, "attribute_name"))
            .or_else(|| current.spec.get("ttl").and_then(|t| s(t, "attribute_name")))
            .ok_or(missing(current.kind, "ttl.attribute_name"))?;
        let on = spec
            .get("ttl")
            .and_then(|t| b(t, "enabled"))
            .unwrap_or(false);
        set_ttl(c, region, name, attr, on).await?;
    }
    if drifted(req, "replica_regions") {
        let have = super::data_common::strings(&current.spec, "replica_regions");
        let want = super::data_common::strings(spec, "replica_regions");
        for r in want.iter().filter(|r| !have.contains(r)) {
            let action = CreateReplicationGroupMemberAction::builder()
                .region_name(r)
                .build()
                .map_err(be)?;
            let upd = ReplicationGroupUpdate::builder().create(action).build();
            update_table(c, region, name, |u| u.replica_updates(upd), "UpdateTable").await?;
        }
        for r in have.iter().filter(|r| !want.contains(r)) {
            let action = DeleteReplicationGroupMemberAction::builder()
                .region_name(r)
                .build()
                .map_err(be)?;
            let upd = ReplicationGroupUpdate::builder().delete(action).build();
            update_table(c, region, name, |u| u.replica_updates(upd), "UpdateTable").await?;
        }
    }
    let add = tags_to_set(&current.tags, &req.tags);
    if !add.is_empty() {
        c.call(
            Call::new(region, "dynamodb", "TagResource"),
            rc.dynamodb
                .tag_resource()
                .resource_arn(&current.arn)
                .set_tags(Some(ddb_tags(&add)?))
                .send(),
        )
        .await?;
    }
    find(c, &current.identity())
        .await?
        .ok_or_else(|| vanished(name))
}

pub(super) async fn delete(c: &Clients, current: &Resource) -> Result<(), CloudError> {
    if current.kind != Kind::DynamoTable {
        return Err(not_ddb(current.kind));
    }
    let region = current.region.as_str();
    match s(&current.spec, "replica_of") {
        // A replica the service keeps is removed through its source's replica group.
        Some(source) if !current.tags.contains_key(REPLICA_OF_TAG) => {
            let (home, table) = arn_table(source);
            let action = DeleteReplicationGroupMemberAction::builder()
                .region_name(region)
                .build()
                .map_err(be)?;
            let upd = ReplicationGroupUpdate::builder().delete(action).build();
            let rc = c.region(home).await;
            c.call(
                Call::new(home, "dynamodb", "UpdateTable"),
                rc.dynamodb
                    .update_table()
                    .table_name(table)
                    .replica_updates(upd)
                    .send(),
            )
            .await?;
        }
        _ => {
            let rc = c.region(region).await;
            c.call(
                Call::new(region, "dynamodb", "DeleteTable"),
                rc.dynamodb.delete_table().table_name(&current.name).send(),
            )
            .await?;
        }
    }
    Ok(())
}

async fn create_table(
    c: &Clients,
    region: &str,
    name: &str,
    spec: &Value,
    tags: &Tags,
) -> Result<(), CloudError> {
    let rc = c.region(region).await;
    let mut attrs = Vec::new();
    for a in spec
        .get("attribute_definitions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        attrs.push(
            AttributeDefinition::builder()
                .attribute_name(s(a, "attribute_name").unwrap_or_default())
                .attribute_type(ScalarAttributeType::from(
                    s(a, "attribute_type").unwrap_or("S"),
                ))
                .build()
                .map_err(be)?,
        );
    }
    let mut keys = Vec::new();
    for k in spec
        .get("key_schema")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        keys.push(
            KeySchemaElement::builder()
                .attribute_name(s(k, "attribute_name").unwrap_or_default())
                .key_type(KeyType::from(s(k, "key_type").unwrap_or("HASH")))
                .build()
                .map_err(be)?,
        );
    }
    if keys.is_empty() {
        return Err(missing(Kind::DynamoTable, "key_schema"));
    }
    let mut call = rc
        .dynamodb
        .create_table()
        .table_name(name)
        .set_attribute_definitions(Some(attrs))
        .set_key_schema(Some(keys))
        .billing_mode(BillingMode::from(
            s(spec, "billing_mode").unwrap_or("PAY_PER_REQUEST"),
        ))
        .set_deletion_protection_enabled(b(spec, "deletion_protection_enabled"));
    if spec.get("sse").is_some() {
        call = call.sse_specification(sse_spec(spec)?);
    }
    if let Some(stream) = stream_spec(spec)? {
        call = call.stream_specification(stream);
    }
    if !tags.is_empty() {
        call = call.set_tags(Some(ddb_tags(tags)?));
    }
    c.call(Call::new(region, "dynamodb", "CreateTable"), call.send())
        .await?;
    Ok(())
}

/// What a table gets once it is active: point-in-time recovery and TTL.
async fn configure(c: &Clients, region: &str, name: &str, spec: &Value) -> Result<(), CloudError> {
    wait_active(c, region, name).await?;
    if b(spec, "point_in_time_recovery") == Some(true) {
        set_pitr(c, region, name, true).await?;
    }
    if let Some(ttl) = spec.get("ttl").filter(|t| b(t, "enabled") == Some(true)) {
        let attr =
            s(ttl, "attribute_name").ok_or(missing(Kind::DynamoTable, "ttl.attribute_name"))?;
        set_ttl(c, region, name, attr, true).await?;
    }
    Ok(())
}

async fn create_replica(
    c: &Clients,
    req: &CreateRequest,
    source: &str,
) -> Result<Resource, CloudError> {
    let region = req.region.as_str();
    let (home, table) = arn_table(source);
    let kms = req.spec.get("sse").and_then(|x| s(x, "kms_master_key_id"));
    let action = CreateReplicationGroupMemberAction::builder()
        .region_name(region)
        .set_kms_master_key_id(kms.map(str::to_string))
        .build()
        .map_err(be)?;
    let upd = ReplicationGroupUpdate::builder().create(action).build();
    wait_active(c, home, table).await?;
    let hc = c.region(home).await;
    c.call(
        Call::new(home, "dynamodb", "UpdateTable"),
        hc.dynamodb
            .update_table()
            .table_name(table)
            .replica_updates(upd)
            .send(),
    )
    .await?;
    let src = describe(c, home, table)
        .await?
        .ok_or_else(|| vanished(table))?;
    let listed = src
        .replicas()
        .iter()
        .any(|r| r.region_name() == Some(region));
    let rc = c.region(region).await;
    if listed {
        // The service builds the replica: wait for it, then give it its own settings.
        let mut polls = 0;
        while describe(c, region, &req.name).await?.is_none() {
            polls += 1;
            if polls >= POLLS {
                return Err(CloudError::new(
                    ErrorKind::NotReady,
                    format!("dynamodb: the replica of {table} in {region} did not appear"),
                ));
            }
            tokio::time::sleep(POLL).await;
        }
        configure(c, region, &req.name, &req.spec).await?;
        let t = describe(c, region, &req.name)
            .await?
            .ok_or_else(|| vanished(&req.name))?;
        if !req.tags.is_empty() {
            c.call(
                Call::new(region, "dynamodb", "TagResource"),
                rc.dynamodb
                    .tag_resource()
                    .resource_arn(t.table_arn().unwrap_or_default())
                    .set_tags(Some(ddb_tags(&req.tags)?))
                    .send(),
            )
            .await?;
        }
    } else {
        // The endpoint accepted ReplicaUpdates and made nothing (moto): a table of its own,
        // with the relationship in tags (see the module docs).
        let mut tags = req.tags.clone();
        tags.insert(REPLICA_OF_TAG.into(), source.to_string());
        create_table(c, region, &req.name, &req.spec, &tags).await?;
        configure(c, region, &req.name, &req.spec).await?;
        let have = table_tags(c, home, source).await?;
        let mut regions: Vec<String> = have
            .get(REPLICA_REGIONS_TAG)
            .map(|v| v.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default();
        if !regions.iter().any(|r| r == region) {
            regions.push(region.to_string());
            let tag: Tags = [(REPLICA_REGIONS_TAG.to_string(), regions.join(" "))].into();
            c.call(
                Call::new(home, "dynamodb", "TagResource"),
                hc.dynamodb
                    .tag_resource()
                    .resource_arn(source)
                    .set_tags(Some(ddb_tags(&tag)?))
                    .send(),
            )
            .await?;
        }
    }
    find(c, &Identity::new(req.kind, region, &req.name))
        .await?
        .ok_or_else(|| vanished(&req.name))
}

/// The table as found, with its point-in-time recovery, TTL and replicas.
async fn read_table(
    c: &Clients,
    region: &str,
    t: &TableDescription,
    tags: Tags,
) -> Result<Resource, CloudError> {
    let rc = c.region(region).await;
    let name = t.table_name().unwrap_or_default();
    let arn = t.table_arn().unwrap_or_default();
    let mut spec = Map::new();
    let attrs: Vec<Value> = t
        .attribute_definitions()
        .iter()
        .map(|a| json!({"attribute_name": a.attribute_name(), "attribute_type": a.attribute_type().as_str()}))
        .collect();
    spec.insert("attribute_definitions".into(), json!(attrs));
    let keys: Vec<Value> = t
        .key_schema()
        .iter()
        .map(|k| json!({"attribute_name": k.attribute_name(), "key_type": k.key_type().as_str()}))
        .collect();
    spec.insert("key_schema".into(), json!(keys));
    let mode = t
        .billing_mode_summary()
        .and_then(|m| m.billing_mode())
        .map(|m| m.as_str())
        .unwrap_or("PROVISIONED");
    spec.insert("billing_mode".into(), json!(mode));
    if let Some(sse) = t.sse_description() {
        let on = sse
            .status()
            .is_some_and(|st| matches!(st.as_str(), "ENABLED" | "ENABLING" | "UPDATING"));
        let mut m = Map::new();
        m.insert("enabled".into(), json!(on));
        if let Some(ty) = sse.sse_type() {
            m.insert("sse_type".into(), json!(ty.as_str()));
        }
        if let Some(k) = sse.kms_master_key_arn() {
            m.insert("kms_master_key_id".into(), json!(k));
        }
        spec.insert("sse".into(), Value::Object(m));
    }
    let pitr = c
        .call(
            Call::new(region, "dynamodb", "DescribeContinuousBackups"),
            rc.dynamodb
                .describe_continuous_backups()
                .table_name(name)
                .send(),
        )
        .await?;
    let pitr_on = pitr
        .continuous_backups_description()
        .and_then(|d| d.point_in_time_recovery_description())
        .and_then(|p| p.point_in_time_recovery_status())
        .is_some_and(|st| st.as_str() == "ENABLED");
    spec.insert("point_in_time_recovery".into(), json!(pitr_on));
    if let Some(st) = t.stream_specification().filter(|st| st.stream_enabled())
        && let Some(v) = st.stream_view_type()
    {
        spec.insert("stream_view_type".into(), json!(v.as_str()));
    }
    spec.insert(
        "deletion_protection_enabled".into(),
        json!(t.deletion_protection_enabled().unwrap_or(false)),
    );
    let ttl = c
        .call(
            Call::new(region, "dynamodb", "DescribeTimeToLive"),
            rc.dynamodb.describe_time_to_live().table_name(name).send(),
        )
        .await?;
    if let Some(d) = ttl.time_to_live_description()
        && let Some(attr) = d.attribute_name()
    {
        let on = d
            .time_to_live_status()
            .is_some_and(|st| matches!(st.as_str(), "ENABLED" | "ENABLING"));
        spec.insert("ttl".into(), json!({"attribute_name": attr, "enabled": on}));
    }
    let peers: Vec<&str> = t
        .replicas()
        .iter()
        .filter_map(|r| r.region_name())
        .filter(|r| *r != region)
        .collect();
    if !peers.is_empty() {
        // Every member lists the others; the one created first is the source.
        let mut source: Option<(aws_sdk_dynamodb::primitives::DateTime, String, String)> = None;
        for peer in &peers {
            if let Some(p) = describe(c, peer, name).await?
                && let Some(at) = p.creation_date_time()
                && source.as_ref().is_none_or(|(t0, _, _)| at < t0)
            {
                source = Some((
                    *at,
                    peer.to_string(),
                    p.table_arn().unwrap_or_default().to_string(),
                ));
            }
        }
        match (source, t.creation_date_time()) {
            (Some((first, _, src_arn)), Some(mine)) if first < *mine => {
                spec.insert("replica_of".into(), json!(src_arn));
            }
            _ => {
                spec.insert("replica_regions".into(), json!(peers));
            }
        }
    } else if let Some(src) = tags.get(REPLICA_OF_TAG) {
        spec.insert("replica_of".into(), json!(src));
    } else {
        let regions: Vec<&str> = tags
            .get(REPLICA_REGIONS_TAG)
            .map(|v| v.split_whitespace().collect())
            .unwrap_or_default();
        spec.insert("replica_regions".into(), json!(regions));
    }
    let state = match t.table_status() {
        Some(TableStatus::Creating) => ResourceState::Creating,
        Some(TableStatus::Updating) => ResourceState::Modifying,
        Some(TableStatus::Deleting) => ResourceState::Deleting,
        Some(TableStatus::Active) | None => ResourceState::Available,
        Some(_) => ResourceState::Failed,
    };
    Ok(resource(
        Kind::DynamoTable,
        region,
        name,
        name,
        arn,
        spec,
        Map::new(),
        tags,
        state,
    ))
}

async fn describe(
    c: &Clients,
    region: &str,
    name: &str,
) -> Result<Option<TableDescription>, CloudError> {
    let rc = c.region(region).await;
    let out = absent(
        c.call(
            Call::new(region, "dynamodb", "DescribeTable"),
            rc.dynamodb.describe_table().table_name(name).send(),
        )
        .await,
    )?;
    Ok(out.and_then(|o| o.table().cloned()))
}

/// Waits (on the wall clock: this is AWS's time, not the run's) until the table is active.
async fn wait_active(c: &Clients, region: &str, name: &str) -> Result<(), CloudError> {
    for _ in 0..POLLS {
        match describe(c, region, name).await? {
            Some(t) if t.table_status() == Some(&TableStatus::Active) => return Ok(()),
            Some(_) => tokio::time::sleep(POLL).await,
            None => return Err(vanished(name)),
        }
    }
    Err(CloudError::new(
        ErrorKind::NotReady,
        format!("dynamodb: the table {name} in {region} did not become active"),
    ))
}

/// One `UpdateTable` once the table is active.
async fn update_table(
    c: &Clients,
    region: &str,
    name: &str,
    f: impl FnOnce(
        aws_sdk_dynamodb::operation::update_table::builders::UpdateTableFluentBuilder,
    ) -> aws_sdk_dynamodb::operation::update_table::builders::UpdateTableFluentBuilder,
    op: &'static str,
) -> Result<(), CloudError> {
    wait_active(c, region, name).await?;
    let rc = c.region(region).await;
    c.call(
        Call::new(region, "dynamodb", op),
        f(rc.dynamodb.update_table().table_name(name)).send(),
    )
    .await?;
    Ok(())
}

async fn set_pitr(c: &Clients, region: &str, name: &str, on: bool) -> Result<(), CloudError> {
    let rc = c.region(region).await;
    c.call(
        Call::new(region, "dynamodb", "UpdateContinuousBackups"),
        rc.dynamodb
            .update_continuous_backups()
            .table_name(name)
            .point_in_time_recovery_specification(
                PointInTimeRecoverySpecification::builder()
                    .point_in_time_recovery_enabled(on)
                    .build()
                    .map_err(be)?,
            )
            .send(),
    )
    .await?;
    Ok(())
}

async fn set_ttl(
    c: &Clients,
    region: &str,
    name: &str,
    attr: &str,
    on: bool,
) -> Result<(), CloudError> {
    let rc = c.region(region).await;
    c.call(
        Call::new(region, "dynamodb", "UpdateTimeToLive"),
        rc.dynamodb
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .enabled(on)
                    .attribute_name(attr)
                    .build()
                    .map_err(be)?,
            )
            .send(),
    )
    .await?;
    Ok(())
}

async fn table_tags(c: &Clients, region: &str, arn: &str) -> Result<Tags, CloudError> {
    let rc = c.region(region).await;
    let mut tags = Tags::new();
    let mut token: Option<String> = None;
    loop {
        let Some(page) = absent(
            c.call(
                Call::new(region, "dynamodb", "ListTagsOfResource"),
                rc.dynamodb
                    .list_tags_of_resource()
                    .resource_arn(arn)
                    .set_next_token(token.clone())
                    .send(),
            )
            .await,
        )?
        else {
            return Ok(tags);
        };
        tags.extend(
            page.tags()
                .iter()
                .map(|t| (t.key().to_string(), t.value().to_string())),
        );
        match page.next_token() {
            Some(n) => token = Some(n.to_string()),
            None => return Ok(tags),
        }
    }
}

fn sse_spec(spec: &Value) -> Result<SseSpecification, CloudError> {
    let sse = spec.get("sse").cloned().unwrap_or(Value::Null);
    let mut out = SseSpecification::builder().enabled(b(&sse, "enabled").unwrap_or(false));
    if let Some(t) = s(&sse, "sse_type") {
        out = out.sse_type(SseType::from(t));
    }
    if let Some(k) = s(&sse, "kms_master_key_id") {
        out = out.kms_master_key_id(k);
    }
    Ok(out.build())
}

fn stream_spec(spec: &Value) -> Result<Option<StreamSpecification>, CloudError> {
    match s(spec, "stream_view_type") {
        Some(v) => Ok(Some(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::from(v))
                .build()
                .map_err(be)?,
        )),
        None => Ok(None),
    }
}

fn ddb_tags(tags: &Tags) -> Result<Vec<Tag>, CloudError> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build().map_err(be))
        .collect()
}

/// The region and table name of a table ARN (`arn:aws:dynamodb:<region>:<acct>:table/<name>`).
fn arn_table(arn: &str) -> (&str, &str) {
    let region = arn.split(':').nth(3).unwrap_or("");
    let table = arn.rsplit_once("table/").map(|(_, t)| t).unwrap_or(arn);
    (region, table)
}

fn be(e: aws_sdk_dynamodb::error::BuildError) -> CloudError {
    CloudError::new(ErrorKind::InvalidInput, format!("dynamodb: {e}"))
}

fn vanished(name: &str) -> CloudError {
    CloudError::new(
        ErrorKind::Internal,
        format!("dynamodb: the table {name} was not found right after it was written"),
    )
}

fn not_ddb(kind: Kind) -> CloudError {
    CloudError::new(
        ErrorKind::NotBuilt,
        format!("{kind} is not a dynamodb kind"),
    )
}

#[cfg(test)]
mod tests {
    use super::super::data_common::testing::{moto, tags, unique};
    use super::*;
    use crate::cloud::drift::diff_raw as diff;

    fn table_spec(kms: &str) -> Value {
        json!({
            "attribute_definitions": [{"attribute_name": "sessionId", "attribute_type": "S"}],
            "key_schema": [{"attribute_name": "sessionId", "key_type": "HASH"}],
            "billing_mode": "PAY_PER_REQUEST",
            "sse": {"enabled": true, "sse_type": "KMS", "kms_master_key_id": kms},
            "point_in_time_recovery": true,
            "stream_view_type": "NEW_AND_OLD_IMAGES",
            "deletion_protection_enabled": false,
            "ttl": {"attribute_name": "expiresAt", "enabled": true},
        })
    }

    #[tokio::test]
    async fn global_table_round_trips_through_moto() {
        let Some(c) = moto("dynamodb global table") else {
            return;
        };
        let name = unique("trading-sessions");
        let key = |r: &str| format!("arn:aws:kms:{r}:123456789012:key/mrk-0123");
        let mut spec = table_spec(&key("eu-south-1"));
        spec["replica_regions"] = json!(["eu-central-1"]);
        let table = create(
            &c,
            &CreateRequest {
                kind: Kind::DynamoTable,
                region: "eu-south-1".into(),
                name: name.clone(),
                parent: None,
                spec: spec.clone(),
                tags: tags(&name),
                depends_on: vec![],
            },
        )
        .await
        .unwrap();
        assert_eq!(table.state, ResourceState::Available);
        // The replica region is added by the replica's own create (it brings its region's key).
        assert_eq!(diff(&spec, &table.spec), ["replica_regions"]);

        let mut replica_spec = table_spec(&key("eu-central-1"));
        replica_spec["replica_of"] = json!(table.arn);
        let replica = create(
            &c,
            &CreateRequest {
                kind: Kind::DynamoTable,
                region: "eu-central-1".into(),
                name: name.clone(),
                parent: None,
                spec: replica_spec.clone(),
                tags: tags(&name),
                depends_on: vec![],
            },
        )
        .await
        .unwrap();
        // moto answers ReplicaUpdates and makes nothing: the call was made, and the replica is
        // a table of its own with the relationship in tags.
        assert!(
            c.calls()
                .iter()
                .any(|r| r.operation == "UpdateTable" && r.region == "eu-south-1")
        );
        assert_eq!(replica.tags.get(REPLICA_OF_TAG), Some(&table.arn));
        assert_eq!(diff(&replica_spec, &replica.spec), Vec::<String>::new());
        let found = find(&c, &Identity::new(Kind::DynamoTable, "eu-south-1", &name))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(diff(&spec, &found.spec), Vec::<String>::new());

        // One drifted path: PITR off, and only UpdateContinuousBackups is called.
        let mut want = spec.clone();
        want["point_in_time_recovery"] = json!(false);
        let before = c.calls().len();
        let updated = update(
            &c,
            &found,
            &UpdateRequest {
                spec: want.clone(),
                drifted: vec!["point_in_time_recovery".into()],
                tags: tags(&name),
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
        assert_eq!(mutating, ["UpdateContinuousBackups"]);
        assert_eq!(diff(&want, &updated.spec), Vec::<String>::new());

        let listed = list(&c, "eu-central-1", Kind::DynamoTable, None)
            .await
            .unwrap();
        assert!(
            listed
                .iter()
                .any(|t| t.name == name && t.region == "eu-central-1")
        );

        delete(&c, &replica).await.unwrap();
        delete(&c, &updated).await.unwrap();
        assert!(
            find(&c, &Identity::new(Kind::DynamoTable, "eu-central-1", &name))
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            find(&c, &Identity::new(Kind::DynamoTable, "eu-south-1", &name))
                .await
                .unwrap()
                .is_none()
        );
    }
}
