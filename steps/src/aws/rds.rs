//! The Aurora kinds on RDS: `db_cluster_parameter_group`, `db_subnet_group`, `global_cluster`,
//! `db_cluster`, `db_instance`. Each is its own identifier in its region (a global cluster in
//! [`GLOBAL`], served by the clients of [`Clients::global`]).
//!
//! - A cluster's `global_role` (create-only) is read back from the global cluster's members:
//!   `primary` for the writer, `secondary` otherwise. Its `attrs` are what steps read:
//!   `endpoint`, `reader_endpoint`, `port`, `cluster_resource_id`, `master_user_secret_arn`.
//! - States: RDS `creating` → creating, `available`/`backing-up` → available, `deleting` →
//!   deleting, failed and incompatible states → failed, every other one (modifying, upgrading,
//!   promoting, failing-over…) → modifying.
//! - Deleting a member cluster first removes it from its global cluster (RDS refuses to delete
//!   a member); a global cluster is deleted after its members. `skip_final_snapshot` is
//!   write-only; drflow's clusters are deleted without a final snapshot unless the spec says
//!   `skip_final_snapshot: false`, which takes one named `<cluster>-final`.

use serde_json::{Map, Value, json};

use super::data_common::{
    absent, b, drifted, i, managed, missing, resource, s, strings, tags_to_set,
};
use super::{Call, Clients};
use crate::backend::{
    CloudError, CreateRequest, ErrorKind, GLOBAL, Identity, Kind, Resource, ResourceState, Tags,
    UpdateRequest,
};
use aws_sdk_rds::types::{
    ApplyMethod, CloudwatchLogsExportConfiguration, DbCluster, DbInstance, GlobalCluster,
    Parameter, Tag,
};

pub(super) async fn find(c: &Clients, id: &Identity) -> Result<Option<Resource>, CloudError> {
    let r = id.region.as_str();
    match id.kind {
        Kind::DbClusterParameterGroup => Ok(param_groups(c, r, Some(&id.name)).await?.pop()),
        Kind::DbSubnetGroup => Ok(subnet_groups(c, r, Some(&id.name)).await?.pop()),
        Kind::GlobalCluster => Ok(global_clusters(c)
            .await?
            .iter()
            .find(|g| g.global_cluster_identifier() == Some(id.name.as_str()))
            .map(global_resource)),
        Kind::DbCluster => Ok(clusters(c, r, Some(&id.name)).await?.pop()),
        Kind::DbInstance => Ok(instances(c, r, Some(&id.name)).await?.pop()),
        other => Err(not_rds(other)),
    }
}

pub(super) async fn list(
    c: &Clients,
    region: &str,
    kind: Kind,
    _parent: Option<&str>,
) -> Result<Vec<Resource>, CloudError> {
    let all = match kind {
        Kind::DbClusterParameterGroup => param_groups(c, region, None).await?,
        Kind::DbSubnetGroup => subnet_groups(c, region, None).await?,
        // Global clusters carry no drflow tags (the seam treats them as untaggable): all of
        // them are listed, and the journal says which a run made.
        Kind::GlobalCluster => {
            return Ok(global_clusters(c)
                .await?
                .iter()
                .map(global_resource)
                .collect());
        }
        Kind::DbCluster => clusters(c, region, None).await?,
        Kind::DbInstance => instances(c, region, None).await?,
        other => return Err(not_rds(other)),
    };
    Ok(all.into_iter().filter(|r| managed(&r.tags)).collect())
}

pub(super) async fn create(c: &Clients, req: &CreateRequest) -> Result<Resource, CloudError> {
    let region = req.region.as_str();
    let spec = &req.spec;
    let name = req.name.as_str();
    match req.kind {
        Kind::DbClusterParameterGroup => {
            let rc = c.region(region).await;
            c.call(
                Call::new(region, "rds", "CreateDBClusterParameterGroup"),
                rc.rds
                    .create_db_cluster_parameter_group()
                    .db_cluster_parameter_group_name(name)
                    .db_parameter_group_family(
                        s(spec, "family").ok_or(missing(req.kind, "family"))?,
                    )
                    .description(s(spec, "description").unwrap_or(name))
                    .set_tags(Some(rds_tags(&req.tags)))
                    .send(),
            )
            .await?;
            set_parameters(c, region, name, spec).await?;
        }
        Kind::DbSubnetGroup => {
            let rc = c.region(region).await;
            c.call(
                Call::new(region, "rds", "CreateDBSubnetGroup"),
                rc.rds
                    .create_db_subnet_group()
                    .db_subnet_group_name(name)
                    .db_subnet_group_description(s(spec, "description").unwrap_or(name))
                    .set_subnet_ids(Some(strings(spec, "subnet_ids")))
                    .set_tags(Some(rds_tags(&req.tags)))
                    .send(),
            )
            .await?;
        }
        Kind::GlobalCluster => {
            let rc = c.global().await;
            let out = c
                .call(
                    Call::new(&rc.region, "rds", "CreateGlobalCluster"),
                    rc.rds
                        .create_global_cluster()
                        .global_cluster_identifier(name)
                        .set_engine(s(spec, "engine").map(str::to_string))
                        .set_engine_version(s(spec, "engine_version").map(str::to_string))
                        .set_storage_encrypted(b(spec, "storage_encrypted"))
                        .set_deletion_protection(b(spec, "deletion_protection"))
                        .send(),
                )
                .await?;
            return out
                .global_cluster()
                .map(global_resource)
                .ok_or_else(|| vanished(req.kind, name));
        }
        Kind::DbCluster => {
            let rc = c.region(region).await;
            let out = c
                .call(
                    Call::new(region, "rds", "CreateDBCluster"),
                    rc.rds
                        .create_db_cluster()
                        .db_cluster_identifier(name)
                        .set_engine(s(spec, "engine").map(str::to_string))
                        .set_engine_version(s(spec, "engine_version").map(str::to_string))
                        .set_global_cluster_identifier(opt_s(spec, "global_cluster_identifier"))
                        .set_db_subnet_group_name(opt_s(spec, "db_subnet_group_name"))
                        .set_vpc_security_group_ids(opt_list(spec, "vpc_security_group_ids"))
                        .set_db_cluster_parameter_group_name(opt_s(
                            spec,
                            "db_cluster_parameter_group_name",
                        ))
                        .set_storage_encrypted(b(spec, "storage_encrypted"))
                        .set_kms_key_id(opt_s(spec, "kms_key_id"))
                        .set_deletion_protection(b(spec, "deletion_protection"))
                        .set_copy_tags_to_snapshot(b(spec, "copy_tags_to_snapshot"))
                        .set_enable_cloudwatch_logs_exports(opt_list(
                            spec,
                            "enabled_cloudwatch_logs_exports",
                        ))
                        .set_backup_retention_period(
                            i(spec, "backup_retention_period").map(|v| v as i32),
                        )
                        .set_master_username(opt_s(spec, "master_username"))
                        .set_manage_master_user_password(b(spec, "manage_master_user_password"))
                        .set_master_user_secret_kms_key_id(opt_s(
                            spec,
                            "master_user_secret_kms_key_id",
                        ))
                        .set_database_name(opt_s(spec, "database_name"))
                        .set_tags(Some(rds_tags(&req.tags)))
                        .send(),
                )
                .await?;
            let cluster = out.db_cluster().ok_or_else(|| vanished(req.kind, name))?;
            // The role was asked for; the member list says the same once the cluster joins.
            let role = s(spec, "global_role").map(str::to_string);
            return Ok(cluster_resource(region, cluster, role));
        }
        Kind::DbInstance => {
            let rc = c.region(region).await;
            let out = c
                .call(
                    Call::new(region, "rds", "CreateDBInstance"),
                    rc.rds
                        .create_db_instance()
                        .db_instance_identifier(name)
                        .set_db_cluster_identifier(opt_s(spec, "db_cluster_identifier"))
                        .set_engine(opt_s(spec, "engine"))
                        .set_db_instance_class(opt_s(spec, "db_instance_class"))
                        .set_publicly_accessible(b(spec, "publicly_accessible"))
                        .set_auto_minor_version_upgrade(b(spec, "auto_minor_version_upgrade"))
                        .set_enable_performance_insights(b(spec, "performance_insights_enabled"))
                        .set_performance_insights_kms_key_id(opt_s(
                            spec,
                            "performance_insights_kms_key_id",
                        ))
                        .set_tags(Some(rds_tags(&req.tags)))
                        .send(),
                )
                .await?;
            let inst = out.db_instance().ok_or_else(|| vanished(req.kind, name))?;
            return Ok(instance_resource(region, inst));
        }
        other => return Err(not_rds(other)),
    }
    find(c, &Identity::new(req.kind, region, name))
        .await?
        .ok_or_else(|| vanished(req.kind, name))
}

pub(super) async fn update(
    c: &Clients,
    current: &Resource,
    req: &UpdateRequest,
) -> Result<Resource, CloudError> {
    let region = current.region.as_str();
    let name = current.name.as_str();
    let spec = &req.spec;
    match current.kind {
        Kind::DbClusterParameterGroup => {
            if drifted(req, "parameters") {
                set_parameters(c, region, name, spec).await?;
            }
        }
        Kind::DbSubnetGroup => {
            if drifted(req, "subnet_ids") || drifted(req, "description") {
                let rc = c.region(region).await;
                c.call(
                    Call::new(region, "rds", "ModifyDBSubnetGroup"),
                    rc.rds
                        .modify_db_subnet_group()
                        .db_subnet_group_name(name)
                        .set_db_subnet_group_description(opt_s(spec, "description"))
                        .set_subnet_ids(Some(strings(spec, "subnet_ids")))
                        .send(),
                )
                .await?;
            }
        }
        Kind::GlobalCluster => {
            if drifted(req, "deletion_protection") || drifted(req, "engine_version") {
                let rc = c.global().await;
                let mut call = rc
                    .rds
                    .modify_global_cluster()
                    .global_cluster_identifier(name);
                if drifted(req, "deletion_protection") {
                    call = call.set_deletion_protection(b(spec, "deletion_protection"));
                }
                if drifted(req, "engine_version") {
                    call = call.set_engine_version(opt_s(spec, "engine_version"));
                }
                c.call(
                    Call::new(&rc.region, "rds", "ModifyGlobalCluster"),
                    call.send(),
                )
                .await?;
            }
            return find(c, &current.identity())
                .await?
                .ok_or_else(|| vanished(current.kind, name));
        }
        Kind::DbCluster => {
            let rc = c.region(region).await;
            let mut call = rc
                .rds
                .modify_db_cluster()
                .db_cluster_identifier(name)
                .apply_immediately(true);
            let mut any = false;
            let d = |k: &str| drifted(req, k);
            if d("engine_version") {
                call = call.set_engine_version(opt_s(spec, "engine_version"));
                any = true;
            }
            if d("vpc_security_group_ids") {
                call = call.set_vpc_security_group_ids(opt_list(spec, "vpc_security_group_ids"));
                any = true;
            }
            if d("db_cluster_parameter_group_name") {
                call = call.set_db_cluster_parameter_group_name(opt_s(
                    spec,
                    "db_cluster_parameter_group_name",
                ));
                any = true;
            }
            if d("deletion_protection") {
                call = call.set_deletion_protection(b(spec, "deletion_protection"));
                any = true;
            }
            if d("copy_tags_to_snapshot") {
                call = call.set_copy_tags_to_snapshot(b(spec, "copy_tags_to_snapshot"));
                any = true;
            }
            if d("backup_retention_period") {
                call = call.set_backup_retention_period(
                    i(spec, "backup_retention_period").map(|v| v as i32),
                );
                any = true;
            }
            if d("manage_master_user_password") {
                call = call.set_manage_master_user_password(b(spec, "manage_master_user_password"));
                any = true;
            }
            if d("master_user_secret_kms_key_id") {
                call = call.set_master_user_secret_kms_key_id(opt_s(
                    spec,
                    "master_user_secret_kms_key_id",
                ));
                any = true;
            }
            if d("enabled_cloudwatch_logs_exports") {
                let want = strings(spec, "enabled_cloudwatch_logs_exports");
                let have = strings(&current.spec, "enabled_cloudwatch_logs_exports");
                let enable: Vec<String> =
                    want.iter().filter(|x| !have.contains(x)).cloned().collect();
                let disable: Vec<String> =
                    have.iter().filter(|x| !want.contains(x)).cloned().collect();
                call = call.cloudwatch_logs_export_configuration(
                    CloudwatchLogsExportConfiguration::builder()
                        .set_enable_log_types(Some(enable))
                        .set_disable_log_types(Some(disable))
                        .build(),
                );
                any = true;
            }
            if any {
                c.call(Call::new(region, "rds", "ModifyDBCluster"), call.send())
                    .await?;
            }
        }
        Kind::DbInstance => {
            let rc = c.region(region).await;
            let mut call = rc
                .rds
                .modify_db_instance()
                .db_instance_identifier(name)
                .apply_immediately(true);
            let mut any = false;
            if drifted(req, "db_instance_class") {
                call = call.set_db_instance_class(opt_s(spec, "db_instance_class"));
                any = true;
            }
            if drifted(req, "publicly_accessible") {
                call = call.set_publicly_accessible(b(spec, "publicly_accessible"));
                any = true;
            }
            if drifted(req, "auto_minor_version_upgrade") {
                call = call.set_auto_minor_version_upgrade(b(spec, "auto_minor_version_upgrade"));
                any = true;
            }
            if drifted(req, "performance_insights_enabled")
                || drifted(req, "performance_insights_kms_key_id")
            {
                call = call
                    .set_enable_performance_insights(b(spec, "performance_insights_enabled"))
                    .set_performance_insights_kms_key_id(opt_s(
                        spec,
                        "performance_insights_kms_key_id",
                    ));
                any = true;
            }
            if any {
                c.call(Call::new(region, "rds", "ModifyDBInstance"), call.send())
                    .await?;
            }
        }
        other => return Err(not_rds(other)),
    }
    let add = tags_to_set(&current.tags, &req.tags);
    if !add.is_empty() {
        let rc = c.region(region).await;
        c.call(
            Call::new(region, "rds", "AddTagsToResource"),
            rc.rds
                .add_tags_to_resource()
                .resource_name(&current.arn)
                .set_tags(Some(rds_tags(&add)))
                .send(),
        )
        .await?;
    }
    find(c, &current.identity())
        .await?
        .ok_or_else(|| vanished(current.kind, name))
}

pub(super) async fn delete(c: &Clients, current: &Resource) -> Result<(), CloudError> {
    let region = current.region.as_str();
    let name = current.name.as_str();
    let rc = c.region(region).await;
    match current.kind {
        Kind::DbClusterParameterGroup => {
            c.call(
                Call::new(region, "rds", "DeleteDBClusterParameterGroup"),
                rc.rds
                    .delete_db_cluster_parameter_group()
                    .db_cluster_parameter_group_name(name)
                    .send(),
            )
            .await?;
        }
        Kind::DbSubnetGroup => {
            c.call(
                Call::new(region, "rds", "DeleteDBSubnetGroup"),
                rc.rds
                    .delete_db_subnet_group()
                    .db_subnet_group_name(name)
                    .send(),
            )
            .await?;
        }
        Kind::GlobalCluster => {
            c.call(
                Call::new(&rc.region, "rds", "DeleteGlobalCluster"),
                rc.rds
                    .delete_global_cluster()
                    .global_cluster_identifier(name)
                    .send(),
            )
            .await
            .map_err(|mut e| {
                // RDS says a global cluster that still has members is in the wrong state:
                // they depend on it, and go first.
                if e.message.contains("InvalidGlobalClusterStateFault")
                    && e.message.contains("not empty")
                {
                    e.kind = ErrorKind::DependencyViolation;
                }
                e
            })?;
        }
        Kind::DbCluster => {
            // RDS refuses to delete a member of a global cluster: take it out first.
            let member_of = global_clusters_in(c, region)
                .await?
                .into_iter()
                .find(|g| {
                    g.global_cluster_members()
                        .iter()
                        .any(|m| m.db_cluster_arn() == Some(current.arn.as_str()))
                })
                .and_then(|g| g.global_cluster_identifier().map(str::to_string));
            if let Some(global) = member_of {
                c.call(
                    Call::new(region, "rds", "RemoveFromGlobalCluster"),
                    rc.rds
                        .remove_from_global_cluster()
                        .global_cluster_identifier(global)
                        .db_cluster_identifier(&current.arn)
                        .send(),
                )
                .await?;
            }
            let skip = b(&current.spec, "skip_final_snapshot").unwrap_or(true);
            let mut call = rc
                .rds
                .delete_db_cluster()
                .db_cluster_identifier(name)
                .skip_final_snapshot(skip);
            if !skip {
                call = call.final_db_snapshot_identifier(format!("{name}-final"));
            }
            c.call(Call::new(region, "rds", "DeleteDBCluster"), call.send())
                .await?;
        }
        Kind::DbInstance => {
            // An Aurora instance has no snapshot of its own (its cluster's storage is kept).
            c.call(
                Call::new(region, "rds", "DeleteDBInstance"),
                rc.rds
                    .delete_db_instance()
                    .db_instance_identifier(name)
                    .skip_final_snapshot(true)
                    .send(),
            )
            .await?;
        }
        other => return Err(not_rds(other)),
    }
    Ok(())
}

async fn set_parameters(
    c: &Clients,
    region: &str,
    name: &str,
    spec: &Value,
) -> Result<(), CloudError> {
    let Some(params) = spec
        .get("parameters")
        .and_then(Value::as_object)
        .filter(|p| !p.is_empty())
    else {
        return Ok(());
    };
    let rc = c.region(region).await;
    let list: Vec<Parameter> = params
        .iter()
        .map(|(k, v)| {
            let value = v
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string());
            // pending-reboot is accepted for static and dynamic parameters alike.
            Parameter::builder()
                .parameter_name(k)
                .parameter_value(value)
                .apply_method(ApplyMethod::PendingReboot)
                .build()
        })
        .collect();
    c.call(
        Call::new(region, "rds", "ModifyDBClusterParameterGroup"),
        rc.rds
            .modify_db_cluster_parameter_group()
            .db_cluster_parameter_group_name(name)
            .set_parameters(Some(list))
            .send(),
    )
    .await?;
    Ok(())
}

async fn param_groups(
    c: &Clients,
    region: &str,
    name: Option<&str>,
) -> Result<Vec<Resource>, CloudError> {
    let rc = c.region(region).await;
    let Some(out) = absent(
        c.call(
            Call::new(region, "rds", "DescribeDBClusterParameterGroups"),
            rc.rds
                .describe_db_cluster_parameter_groups()
                .set_db_cluster_parameter_group_name(name.map(str::to_string))
                .send(),
        )
        .await,
    )?
    else {
        return Ok(vec![]);
    };
    let mut found = Vec::new();
    for g in out.db_cluster_parameter_groups() {
        let Some(gname) = g.db_cluster_parameter_group_name() else {
            continue;
        };
        if gname.starts_with("default.") {
            continue;
        }
        let arn = g.db_cluster_parameter_group_arn().unwrap_or_default();
        let tags = rds_tags_of(c, region, arn).await?;
        if name.is_none() && !managed(&tags) {
            continue;
        }
        // Only the values set on the group (Source=user), not the family's defaults.
        let mut params = Map::new();
        let mut marker: Option<String> = None;
        loop {
            let page = c
                .call(
                    Call::new(region, "rds", "DescribeDBClusterParameters"),
                    rc.rds
                        .describe_db_cluster_parameters()
                        .db_cluster_parameter_group_name(gname)
                        .source("user")
                        .set_marker(marker.clone())
                        .send(),
                )
                .await?;
            for p in page.parameters() {
                if let (Some(k), Some(v)) = (p.parameter_name(), p.parameter_value()) {
                    params.insert(k.to_string(), json!(v));
                }
            }
            match page.marker() {
                Some(m) => marker = Some(m.to_string()),
                None => break,
            }
        }
        let mut spec = Map::new();
        spec.insert("family".into(), json!(g.db_parameter_group_family()));
        spec.insert("description".into(), json!(g.description()));
        spec.insert("parameters".into(), Value::Object(params));
        found.push(resource(
            Kind::DbClusterParameterGroup,
            region,
            gname,
            gname,
            arn,
            spec,
            Map::new(),
            tags,
            ResourceState::Available,
        ));
    }
    Ok(found)
}

async fn subnet_groups(
    c: &Clients,
    region: &str,
    name: Option<&str>,
) -> Result<Vec<Resource>, CloudError> {
    let rc = c.region(region).await;
    let Some(out) = absent(
        c.call(
            Call::new(region, "rds", "DescribeDBSubnetGroups"),
            rc.rds
                .describe_db_subnet_groups()
                .set_db_subnet_group_name(name.map(str::to_string))
                .send(),
        )
        .await,
    )?
    else {
        return Ok(vec![]);
    };
    let mut found = Vec::new();
    for g in out.db_subnet_groups() {
        let Some(gname) = g.db_subnet_group_name() else {
            continue;
        };
        let arn = g.db_subnet_group_arn().unwrap_or_default();
        let tags = rds_tags_of(c, region, arn).await?;
        if name.is_none() && !managed(&tags) {
            continue;
        }
        let subnets: Vec<&str> = g
            .subnets()
            .iter()
            .filter_map(|s| s.subnet_identifier())
            .collect();
        let mut spec = Map::new();
        spec.insert("description".into(), json!(g.db_subnet_group_description()));
        spec.insert("subnet_ids".into(), json!(subnets));
        let mut attrs = Map::new();
        if let Some(v) = g.vpc_id() {
            attrs.insert("vpc_id".into(), json!(v));
        }
        found.push(resource(
            Kind::DbSubnetGroup,
            region,
            gname,
            gname,
            arn,
            spec,
            attrs,
            tags,
            ResourceState::Available,
        ));
    }
    Ok(found)
}

/// Every global cluster (moto ignores the identifier filter, so the caller picks).
async fn global_clusters(c: &Clients) -> Result<Vec<GlobalCluster>, CloudError> {
    global_clusters_in(c, GLOBAL).await
}

async fn global_clusters_in(c: &Clients, region: &str) -> Result<Vec<GlobalCluster>, CloudError> {
    let rc = c.region(region).await;
    let mut all = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = c
            .call(
                Call::new(&rc.region, "rds", "DescribeGlobalClusters"),
                rc.rds
                    .describe_global_clusters()
                    .set_marker(marker.clone())
                    .send(),
            )
            .await?;
        all.extend(page.global_clusters().iter().cloned());
        match page.marker() {
            Some(m) => marker = Some(m.to_string()),
            None => return Ok(all),
        }
    }
}

fn global_resource(g: &GlobalCluster) -> Resource {
    let name = g.global_cluster_identifier().unwrap_or_default();
    let mut spec = Map::new();
    spec.insert("engine".into(), json!(g.engine()));
    spec.insert("engine_version".into(), json!(g.engine_version()));
    spec.insert("storage_encrypted".into(), json!(g.storage_encrypted()));
    spec.insert("deletion_protection".into(), json!(g.deletion_protection()));
    let mut attrs = Map::new();
    if let Some(id) = g.global_cluster_resource_id() {
        attrs.insert("global_cluster_resource_id".into(), json!(id));
    }
    let members: Vec<Value> = g
        .global_cluster_members()
        .iter()
        .map(|m| json!({"db_cluster_arn": m.db_cluster_arn(), "is_writer": m.is_writer()}))
        .collect();
    attrs.insert("members".into(), json!(members));
    if let Some(e) = g.endpoint() {
        attrs.insert("endpoint".into(), json!(e));
    }
    resource(
        Kind::GlobalCluster,
        GLOBAL,
        name,
        name,
        g.global_cluster_arn().unwrap_or_default(),
        spec,
        attrs,
        Tags::new(),
        rds_state(g.status()),
    )
}

async fn clusters(
    c: &Clients,
    region: &str,
    name: Option<&str>,
) -> Result<Vec<Resource>, CloudError> {
    let rc = c.region(region).await;
    let Some(out) = absent(
        c.call(
            Call::new(region, "rds", "DescribeDBClusters"),
            rc.rds
                .describe_db_clusters()
                .set_db_cluster_identifier(name.map(str::to_string))
                .send(),
        )
        .await,
    )?
    else {
        return Ok(vec![]);
    };
    let members = if out
        .db_clusters()
        .iter()
        .any(|c| c.global_cluster_identifier().is_some())
    {
        global_clusters_in(c, region).await?
    } else {
        vec![]
    };
    Ok(out
        .db_clusters()
        .iter()
        .map(|cl| {
            let arn = cl.db_cluster_arn().unwrap_or_default();
            let role = members
                .iter()
                .flat_map(|g| g.global_cluster_members())
                .find(|m| m.db_cluster_arn() == Some(arn))
                .map(|m| {
                    if m.is_writer().unwrap_or(false) {
                        "primary"
                    } else {
                        "secondary"
                    }
                    .to_string()
                });
            cluster_resource(region, cl, role)
        })
        .collect())
}

fn cluster_resource(region: &str, cl: &DbCluster, role: Option<String>) -> Resource {
    let name = cl.db_cluster_identifier().unwrap_or_default();
    let mut spec = Map::new();
    let mut put = |k: &str, v: Value| {
        if !v.is_null() {
            spec.insert(k.to_string(), v);
        }
    };
    put("engine", json!(cl.engine()));
    put("engine_version", json!(cl.engine_version()));
    put(
        "global_cluster_identifier",
        json!(cl.global_cluster_identifier()),
    );
    put("db_subnet_group_name", json!(cl.db_subnet_group()));
    let sgs: Vec<&str> = cl
        .vpc_security_groups()
        .iter()
        .filter_map(|g| g.vpc_security_group_id())
        .collect();
    put("vpc_security_group_ids", json!(sgs));
    put(
        "db_cluster_parameter_group_name",
        json!(cl.db_cluster_parameter_group()),
    );
    put("storage_encrypted", json!(cl.storage_encrypted()));
    put("kms_key_id", json!(cl.kms_key_id()));
    put("deletion_protection", json!(cl.deletion_protection()));
    put("copy_tags_to_snapshot", json!(cl.copy_tags_to_snapshot()));
    put(
        "enabled_cloudwatch_logs_exports",
        json!(cl.enabled_cloudwatch_logs_exports()),
    );
    put(
        "backup_retention_period",
        json!(cl.backup_retention_period()),
    );
    put("master_username", json!(cl.master_username()));
    if let Some(secret) = cl.master_user_secret() {
        put("manage_master_user_password", json!(true));
        put("master_user_secret_kms_key_id", json!(secret.kms_key_id()));
    }
    put("database_name", json!(cl.database_name()));
    put("global_role", json!(role));
    let mut attrs = Map::new();
    let mut attr = |k: &str, v: Value| {
        if !v.is_null() {
            attrs.insert(k.to_string(), v);
        }
    };
    attr("endpoint", json!(cl.endpoint()));
    attr("reader_endpoint", json!(cl.reader_endpoint()));
    attr("port", json!(cl.port()));
    attr("cluster_resource_id", json!(cl.db_cluster_resource_id()));
    attr(
        "master_user_secret_arn",
        json!(cl.master_user_secret().and_then(|s| s.secret_arn())),
    );
    resource(
        Kind::DbCluster,
        region,
        name,
        name,
        cl.db_cluster_arn().unwrap_or_default(),
        spec,
        attrs,
        tag_list(cl.tag_list()),
        rds_state(cl.status()),
    )
}

async fn instances(
    c: &Clients,
    region: &str,
    name: Option<&str>,
) -> Result<Vec<Resource>, CloudError> {
    let rc = c.region(region).await;
    let Some(out) = absent(
        c.call(
            Call::new(region, "rds", "DescribeDBInstances"),
            rc.rds
                .describe_db_instances()
                .set_db_instance_identifier(name.map(str::to_string))
                .send(),
        )
        .await,
    )?
    else {
        return Ok(vec![]);
    };
    Ok(out
        .db_instances()
        .iter()
        .map(|inst| instance_resource(region, inst))
        .collect())
}

fn instance_resource(region: &str, inst: &DbInstance) -> Resource {
    let name = inst.db_instance_identifier().unwrap_or_default();
    let mut spec = Map::new();
    let mut put = |k: &str, v: Value| {
        if !v.is_null() {
            spec.insert(k.to_string(), v);
        }
    };
    put("db_cluster_identifier", json!(inst.db_cluster_identifier()));
    put("engine", json!(inst.engine()));
    put("db_instance_class", json!(inst.db_instance_class()));
    put("publicly_accessible", json!(inst.publicly_accessible()));
    put(
        "auto_minor_version_upgrade",
        json!(inst.auto_minor_version_upgrade()),
    );
    put(
        "performance_insights_enabled",
        json!(inst.performance_insights_enabled()),
    );
    put(
        "performance_insights_kms_key_id",
        json!(inst.performance_insights_kms_key_id()),
    );
    let mut attrs = Map::new();
    if let Some(a) = inst.endpoint().and_then(|e| e.address()) {
        attrs.insert("endpoint".into(), json!(a));
    }
    resource(
        Kind::DbInstance,
        region,
        name,
        name,
        inst.db_instance_arn().unwrap_or_default(),
        spec,
        attrs,
        tag_list(inst.tag_list()),
        rds_state(inst.db_instance_status()),
    )
}

fn rds_state(status: Option<&str>) -> ResourceState {
    match status.unwrap_or("available") {
        "creating" => ResourceState::Creating,
        "available" | "backing-up" => ResourceState::Available,
        "deleting" => ResourceState::Deleting,
        s if s == "failed" || s.starts_with("incompatible") || s.starts_with("inaccessible") => {
            ResourceState::Failed
        }
        _ => ResourceState::Modifying,
    }
}

async fn rds_tags_of(c: &Clients, region: &str, arn: &str) -> Result<Tags, CloudError> {
    let rc = c.region(region).await;
    let out = absent(
        c.call(
            Call::new(region, "rds", "ListTagsForResource"),
            rc.rds.list_tags_for_resource().resource_name(arn).send(),
        )
        .await,
    )?;
    Ok(out.map(|o| tag_list(o.tag_list())).unwrap_or_default())
}

fn tag_list(tags: &[Tag]) -> Tags {
    tags.iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_string(),
                t.value().unwrap_or_default().to_string(),
            ))
        })
        .collect()
}

fn rds_tags(tags: &Tags) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

fn opt_s(spec: &Value, key: &str) -> Option<String> {
    s(spec, key).map(str::to_string)
}

fn opt_list(spec: &Value, key: &str) -> Option<Vec<String>> {
    spec.get(key).map(|_| strings(spec, key))
}

fn vanished(kind: Kind, name: &str) -> CloudError {
    CloudError::new(
        ErrorKind::Internal,
        format!("rds: the {kind} {name} was not found right after it was written"),
    )
}

fn not_rds(kind: Kind) -> CloudError {
    CloudError::new(ErrorKind::NotBuilt, format!("{kind} is not an rds kind"))
}

#[cfg(test)]
mod tests {
    use super::super::data_common::testing::{moto, tags, unique};
    use super::*;
    use crate::cloud::drift::diff_raw as diff;

    const PRIMARY: &str = "eu-south-1";
    const STANDBY: &str = "eu-central-1";

    /// A VPC with two subnets and a security group, and a KMS key, made straight through the
    /// SDK: what the RDS kinds refer to.
    async fn network(c: &Clients, region: &str) -> (Vec<String>, String, String) {
        let rc = c.region(region).await;
        let vpc = rc
            .ec2
            .create_vpc()
            .cidr_block("10.42.0.0/16")
            .send()
            .await
            .unwrap();
        let vpc_id = vpc.vpc().unwrap().vpc_id().unwrap().to_string();
        let mut subnets = Vec::new();
        for (n, az) in ["a", "b"].iter().enumerate() {
            let s = rc
                .ec2
                .create_subnet()
                .vpc_id(&vpc_id)
                .cidr_block(format!("10.42.{n}.0/24"))
                .availability_zone(format!("{region}{az}"))
                .send()
                .await
                .unwrap();
            subnets.push(s.subnet().unwrap().subnet_id().unwrap().to_string());
        }
        let sg = rc
            .ec2
            .create_security_group()
            .group_name(unique("db-sg"))
            .description("db")
            .vpc_id(&vpc_id)
            .send()
            .await
            .unwrap();
        let key = rc.kms.create_key().send().await.unwrap();
        let key_arn = key.key_metadata().unwrap().arn().unwrap().to_string();
        (subnets, sg.group_id().unwrap().to_string(), key_arn)
    }

    fn req(kind: Kind, region: &str, name: &str, spec: Value) -> CreateRequest {
        CreateRequest {
            kind,
            region: region.into(),
            name: name.into(),
            parent: None,
            spec,
            tags: tags(name),
            depends_on: vec![],
        }
    }

    fn upd(spec: &Value, drifted: &[&str], name: &str) -> UpdateRequest {
        UpdateRequest {
            spec: spec.clone(),
            drifted: drifted.iter().map(|s| s.to_string()).collect(),
            tags: tags(name),
            depends_on: vec![],
        }
    }

    fn mutating_since(c: &Clients, n: usize) -> Vec<&'static str> {
        c.calls()[n..]
            .iter()
            .filter(|r| r.mutating)
            .map(|r| r.operation)
            .collect()
    }

    #[tokio::test]
    async fn global_database_round_trips_through_moto() {
        let Some(c) = moto("rds global database") else {
            return;
        };
        let suffix = unique("t");
        let pg = format!("aurora-cluster-pg-{suffix}");
        let sng = format!("aurora-subnet-group-{suffix}");
        let global = format!("aurora-global-{suffix}");
        let cluster = format!("aurora-cluster-{suffix}");
        let instance = format!("aurora-instance-1-{suffix}");
        let mut made = Vec::new();
        for region in [PRIMARY, STANDBY] {
            let (subnets, sg, key) = network(&c, region).await;
            let pg_spec = json!({"family": "aurora-postgresql15", "description": "drflow: TLS required for every connection", "parameters": {"rds.force_ssl": "1"}});
            let p = create(
                &c,
                &req(Kind::DbClusterParameterGroup, region, &pg, pg_spec.clone()),
            )
            .await
            .unwrap();
            assert_eq!(diff(&pg_spec, &p.spec), Vec::<String>::new());
            assert_eq!(p.tags, tags(&pg));
            let sn_spec =
                json!({"description": "drflow: private subnets for Aurora", "subnet_ids": subnets});
            let sn = create(&c, &req(Kind::DbSubnetGroup, region, &sng, sn_spec.clone()))
                .await
                .unwrap();
            assert_eq!(diff(&sn_spec, &sn.spec), Vec::<String>::new());
            made.push((region, sg, key, p, sn));
        }

        // A drifted parameter: ModifyDBClusterParameterGroup only.
        let p = &made[0].3;
        let want = json!({"family": "aurora-postgresql15", "description": "drflow: TLS required for every connection", "parameters": {"rds.force_ssl": "1", "log_min_duration_statement": "500"}});
        let n = c.calls().len();
        let p2 = update(
            &c,
            p,
            &upd(&want, &["parameters.log_min_duration_statement"], &pg),
        )
        .await
        .unwrap();
        assert_eq!(mutating_since(&c, n), ["ModifyDBClusterParameterGroup"]);
        assert_eq!(diff(&want, &p2.spec), Vec::<String>::new());

        let g_spec = json!({"engine": "aurora-postgresql", "engine_version": "15.4", "storage_encrypted": true, "deletion_protection": false});
        let g = create(
            &c,
            &req(Kind::GlobalCluster, GLOBAL, &global, g_spec.clone()),
        )
        .await
        .unwrap();
        assert_eq!(g.region, GLOBAL);
        assert!(g.attrs.contains_key("global_cluster_resource_id"));
        let g = find(&c, &Identity::new(Kind::GlobalCluster, GLOBAL, &global))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(diff(&g_spec, &g.spec), Vec::<String>::new());

        let mut clusters = Vec::new();
        for (n, (region, sg, key, _, _)) in made.iter().enumerate() {
            let region: &str = region;
            let mut spec = json!({
                "engine": "aurora-postgresql", "engine_version": "15.4",
                "global_cluster_identifier": global, "db_subnet_group_name": sng,
                "vpc_security_group_ids": [sg], "db_cluster_parameter_group_name": pg,
                "storage_encrypted": true, "kms_key_id": key, "deletion_protection": false,
                "skip_final_snapshot": true, "copy_tags_to_snapshot": true,
                "enabled_cloudwatch_logs_exports": ["postgresql"], "backup_retention_period": 7,
            });
            let role = if n == 0 { "primary" } else { "secondary" };
            if n == 0 {
                crate::json::merge(
                    &mut spec,
                    &json!({"master_username": "trading_admin", "manage_master_user_password": true, "database_name": "trading"}),
                );
            }
            let mut create_spec = spec.clone();
            create_spec["global_role"] = json!(role);
            let made = create(&c, &req(Kind::DbCluster, region, &cluster, create_spec))
                .await
                .unwrap();
            assert_eq!(made.attrs["port"], json!(5432));
            let found = find(&c, &Identity::new(Kind::DbCluster, region, &cluster))
                .await
                .unwrap()
                .unwrap();
            // skip_final_snapshot is write-only.
            spec.as_object_mut().unwrap().remove("skip_final_snapshot");
            assert_eq!(diff(&spec, &found.spec), Vec::<String>::new(), "{region}");
            assert_eq!(found.spec["global_role"], json!(role));
            for a in ["endpoint", "reader_endpoint", "cluster_resource_id"] {
                assert!(found.attrs.contains_key(a), "{a} in {region}");
            }
            assert_eq!(found.attrs.contains_key("master_user_secret_arn"), n == 0);
            assert_eq!(found.tags, tags(&cluster));
            clusters.push(found);
        }
        let g = find(&c, &Identity::new(Kind::GlobalCluster, GLOBAL, &global))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(g.attrs["members"].as_array().unwrap().len(), 2);

        // A drifted backup retention: one ModifyDBCluster.
        let mut want = clusters[0].spec.clone();
        want["backup_retention_period"] = json!(3);
        let n = c.calls().len();
        let updated = update(
            &c,
            &clusters[0],
            &upd(&want, &["backup_retention_period"], &cluster),
        )
        .await
        .unwrap();
        assert_eq!(mutating_since(&c, n), ["ModifyDBCluster"]);
        assert_eq!(updated.spec["backup_retention_period"], json!(3));

        let i_spec = json!({"db_cluster_identifier": cluster, "engine": "aurora-postgresql", "db_instance_class": "db.r6g.large",
            "publicly_accessible": false, "auto_minor_version_upgrade": true, "performance_insights_enabled": true,
            "performance_insights_kms_key_id": made[0].2});
        create(
            &c,
            &req(Kind::DbInstance, PRIMARY, &instance, i_spec.clone()),
        )
        .await
        .unwrap();
        let inst = find(&c, &Identity::new(Kind::DbInstance, PRIMARY, &instance))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            crate::aws::testing::beyond_moto_gaps(Kind::DbInstance, diff(&i_spec, &inst.spec)),
            Vec::<String>::new()
        );
        assert!(inst.attrs.contains_key("endpoint"));
        let mut want = i_spec.clone();
        want["auto_minor_version_upgrade"] = json!(false);
        let n = c.calls().len();
        let inst = update(
            &c,
            &inst,
            &upd(&want, &["auto_minor_version_upgrade"], &instance),
        )
        .await
        .unwrap();
        assert_eq!(mutating_since(&c, n), ["ModifyDBInstance"]);
        assert_eq!(inst.spec["auto_minor_version_upgrade"], json!(false));

        for kind in [
            Kind::DbClusterParameterGroup,
            Kind::DbSubnetGroup,
            Kind::DbCluster,
            Kind::DbInstance,
        ] {
            let all = list(&c, PRIMARY, kind, None).await.unwrap();
            assert!(
                all.iter().any(|r| r.name.ends_with(&suffix)),
                "{kind} listed"
            );
        }
        assert!(
            list(&c, GLOBAL, Kind::GlobalCluster, None)
                .await
                .unwrap()
                .iter()
                .any(|g| g.name == global)
        );

        delete(&c, &inst).await.unwrap();
        assert!(
            find(&c, &Identity::new(Kind::DbInstance, PRIMARY, &instance))
                .await
                .unwrap()
                .is_none()
        );
        for cl in clusters.iter().rev() {
            let n = c.calls().len();
            delete(&c, cl).await.unwrap();
            assert_eq!(
                mutating_since(&c, n),
                ["RemoveFromGlobalCluster", "DeleteDBCluster"]
            );
            assert!(find(&c, &cl.identity()).await.unwrap().is_none());
        }
        delete(&c, &g).await.unwrap();
        assert!(
            find(&c, &Identity::new(Kind::GlobalCluster, GLOBAL, &global))
                .await
                .unwrap()
                .is_none()
        );
        for (region, _, _, p, sn) in &made {
            let region: &str = region;
            delete(&c, sn).await.unwrap();
            delete(&c, p).await.unwrap();
            assert!(
                find(&c, &Identity::new(Kind::DbSubnetGroup, region, &sng))
                    .await
                    .unwrap()
                    .is_none()
            );
            assert!(
                find(
                    &c,
                    &Identity::new(Kind::DbClusterParameterGroup, region, &pg)
                )
                .await
                .unwrap()
                .is_none()
            );
        }
    }
}
