//! `iam_role` and `instance_profile` on IAM, a global service (the clients of
//! [`Clients::global`], resources in region [`GLOBAL`](crate::backend::GLOBAL)).
//!
//! - A role's spec: `assume_role_policy` (its trust policy), `inline_policies` (name → policy
//!   document), `managed_policy_arns`, `max_session_duration`. IAM returns policy documents
//!   URL-encoded: `find` decodes and parses them, so drift compares documents, not encodings.
//! - Update changes only what drifted: `UpdateAssumeRolePolicy`, `PutRolePolicy` for inline
//!   policies that differ and `DeleteRolePolicy` for those no longer wanted, attach/detach for
//!   managed ones, `UpdateRole` for the session duration, `TagRole` for tags.
//! - Delete empties a role first (inline policies, managed attachments, instance profiles),
//!   as IAM refuses to delete a role that still has any.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::data_common::{
    absent, decode_policy, drifted, i, managed, missing, resource, s, tags_to_set,
};
use super::{Call, Clients};
use crate::backend::{
    CloudError, CreateRequest, ErrorKind, GLOBAL, Identity, Kind, Resource, ResourceState, Tags,
    UpdateRequest,
};
use aws_sdk_iam::types::Tag;

pub(super) async fn find(c: &Clients, id: &Identity) -> Result<Option<Resource>, CloudError> {
    match id.kind {
        Kind::IamRole => read_role(c, &id.name).await,
        Kind::InstanceProfile => read_profile(c, &id.name).await,
        other => Err(not_iam(other)),
    }
}

pub(super) async fn list(
    c: &Clients,
    _region: &str,
    kind: Kind,
    _parent: Option<&str>,
) -> Result<Vec<Resource>, CloudError> {
    let rc = c.global().await;
    let r = rc.region.as_str();
    let mut names = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let (page, next) = match kind {
            Kind::IamRole => {
                let out = c
                    .call(
                        Call::new(r, "iam", "ListRoles"),
                        rc.iam.list_roles().set_marker(marker.clone()).send(),
                    )
                    .await?;
                let names: Vec<String> = out
                    .roles()
                    .iter()
                    .map(|x| x.role_name().to_string())
                    .collect();
                (
                    names,
                    out.is_truncated()
                        .then(|| out.marker().map(str::to_string))
                        .flatten(),
                )
            }
            Kind::InstanceProfile => {
                let out = c
                    .call(
                        Call::new(r, "iam", "ListInstanceProfiles"),
                        rc.iam
                            .list_instance_profiles()
                            .set_marker(marker.clone())
                            .send(),
                    )
                    .await?;
                let names: Vec<String> = out
                    .instance_profiles()
                    .iter()
                    .map(|x| x.instance_profile_name().to_string())
                    .collect();
                (
                    names,
                    out.is_truncated()
                        .then(|| out.marker().map(str::to_string))
                        .flatten(),
                )
            }
            other => return Err(not_iam(other)),
        };
        names.extend(page);
        match next {
            Some(m) => marker = Some(m),
            None => break,
        }
    }
    let mut out = Vec::new();
    for name in names {
        // The list calls return no tags: read each one's, then the whole of drflow's.
        let tags = match kind {
            Kind::IamRole => {
                let t = absent(
                    c.call(
                        Call::new(r, "iam", "ListRoleTags"),
                        rc.iam.list_role_tags().role_name(&name).send(),
                    )
                    .await,
                )?;
                t.map(|t| iam_tags(t.tags())).unwrap_or_default()
            }
            _ => {
                // GetInstanceProfile returns the profile's tags (moto has no
                // ListInstanceProfileTags).
                let p = absent(
                    c.call(
                        Call::new(r, "iam", "GetInstanceProfile"),
                        rc.iam
                            .get_instance_profile()
                            .instance_profile_name(&name)
                            .send(),
                    )
                    .await,
                )?;
                p.and_then(|p| p.instance_profile().map(|p| iam_tags(p.tags())))
                    .unwrap_or_default()
            }
        };
        if managed(&tags)
            && let Some(found) = find(c, &Identity::new(kind, GLOBAL, &name)).await?
        {
            out.push(found);
        }
    }
    Ok(out)
}

pub(super) async fn create(c: &Clients, req: &CreateRequest) -> Result<Resource, CloudError> {
    let rc = c.global().await;
    let r = rc.region.as_str();
    let spec = &req.spec;
    match req.kind {
        Kind::IamRole => {
            let trust = spec
                .get("assume_role_policy")
                .ok_or(missing(req.kind, "assume_role_policy"))?;
            let mut call = rc
                .iam
                .create_role()
                .role_name(&req.name)
                .assume_role_policy_document(trust.to_string())
                .set_tags(Some(to_iam_tags(&req.tags)?));
            if let Some(d) = i(spec, "max_session_duration") {
                call = call.max_session_duration(d as i32);
            }
            c.call(Call::new(r, "iam", "CreateRole"), call.send())
                .await?;
            for (policy, doc) in inline(spec) {
                put_inline(c, &req.name, &policy, &doc).await?;
            }
            for arn in super::data_common::strings(spec, "managed_policy_arns") {
                c.call(
                    Call::new(r, "iam", "AttachRolePolicy"),
                    rc.iam
                        .attach_role_policy()
                        .role_name(&req.name)
                        .policy_arn(arn)
                        .send(),
                )
                .await?;
            }
            read_role(c, &req.name)
                .await?
                .ok_or_else(|| vanished(req.kind, &req.name))
        }
        Kind::InstanceProfile => {
            c.call(
                Call::new(r, "iam", "CreateInstanceProfile"),
                rc.iam
                    .create_instance_profile()
                    .instance_profile_name(&req.name)
                    .set_tags(Some(to_iam_tags(&req.tags)?))
                    .send(),
            )
            .await?;
            if let Some(role) = s(spec, "role_name") {
                c.call(
                    Call::new(r, "iam", "AddRoleToInstanceProfile"),
                    rc.iam
                        .add_role_to_instance_profile()
                        .instance_profile_name(&req.name)
                        .role_name(role)
                        .send(),
                )
                .await?;
            }
            read_profile(c, &req.name)
                .await?
                .ok_or_else(|| vanished(req.kind, &req.name))
        }
        other => Err(not_iam(other)),
    }
}

pub(super) async fn update(
    c: &Clients,
    current: &Resource,
    req: &UpdateRequest,
) -> Result<Resource, CloudError> {
    let rc = c.global().await;
    let r = rc.region.as_str();
    let name = current.name.as_str();
    let spec = &req.spec;
    let add = tags_to_set(&current.tags, &req.tags);
    match current.kind {
        Kind::IamRole => {
            if drifted(req, "assume_role_policy") {
                let trust = spec
                    .get("assume_role_policy")
                    .ok_or(missing(current.kind, "assume_role_policy"))?;
                c.call(
                    Call::new(r, "iam", "UpdateAssumeRolePolicy"),
                    rc.iam
                        .update_assume_role_policy()
                        .role_name(name)
                        .policy_document(trust.to_string())
                        .send(),
                )
                .await?;
            }
            if drifted(req, "inline_policies") {
                let have = inline(&current.spec);
                let want = inline(spec);
                for (policy, doc) in &want {
                    if have.get(policy) != Some(doc) {
                        put_inline(c, name, policy, doc).await?;
                    }
                }
                for policy in have.keys().filter(|p| !want.contains_key(*p)) {
                    c.call(
                        Call::new(r, "iam", "DeleteRolePolicy"),
                        rc.iam
                            .delete_role_policy()
                            .role_name(name)
                            .policy_name(policy)
                            .send(),
                    )
                    .await?;
                }
            }
            if drifted(req, "managed_policy_arns") {
                let have = super::data_common::strings(&current.spec, "managed_policy_arns");
                let want = super::data_common::strings(spec, "managed_policy_arns");
                for arn in want.iter().filter(|a| !have.contains(a)) {
                    c.call(
                        Call::new(r, "iam", "AttachRolePolicy"),
                        rc.iam
                            .attach_role_policy()
                            .role_name(name)
                            .policy_arn(arn)
                            .send(),
                    )
                    .await?;
                }
                for arn in have.iter().filter(|a| !want.contains(a)) {
                    c.call(
                        Call::new(r, "iam", "DetachRolePolicy"),
                        rc.iam
                            .detach_role_policy()
                            .role_name(name)
                            .policy_arn(arn)
                            .send(),
                    )
                    .await?;
                }
            }
            if drifted(req, "max_session_duration") {
                c.call(
                    Call::new(r, "iam", "UpdateRole"),
                    rc.iam
                        .update_role()
                        .role_name(name)
                        .set_max_session_duration(i(spec, "max_session_duration").map(|d| d as i32))
                        .send(),
                )
                .await?;
            }
            if !add.is_empty() {
                c.call(
                    Call::new(r, "iam", "TagRole"),
                    rc.iam
                        .tag_role()
                        .role_name(name)
                        .set_tags(Some(to_iam_tags(&add)?))
                        .send(),
                )
                .await?;
            }
            read_role(c, name)
                .await?
                .ok_or_else(|| vanished(current.kind, name))
        }
        Kind::InstanceProfile => {
            if drifted(req, "role_name") {
                if let Some(old) = s(&current.spec, "role_name") {
                    c.call(
                        Call::new(r, "iam", "RemoveRoleFromInstanceProfile"),
                        rc.iam
                            .remove_role_from_instance_profile()
                            .instance_profile_name(name)
                            .role_name(old)
                            .send(),
                    )
                    .await?;
                }
                if let Some(new) = s(spec, "role_name") {
                    c.call(
                        Call::new(r, "iam", "AddRoleToInstanceProfile"),
                        rc.iam
                            .add_role_to_instance_profile()
                            .instance_profile_name(name)
                            .role_name(new)
                            .send(),
                    )
                    .await?;
                }
            }
            if !add.is_empty() {
                c.call(
                    Call::new(r, "iam", "TagInstanceProfile"),
                    rc.iam
                        .tag_instance_profile()
                        .instance_profile_name(name)
                        .set_tags(Some(to_iam_tags(&add)?))
                        .send(),
                )
                .await?;
            }
            read_profile(c, name)
                .await?
                .ok_or_else(|| vanished(current.kind, name))
        }
        other => Err(not_iam(other)),
    }
}

pub(super) async fn delete(c: &Clients, current: &Resource) -> Result<(), CloudError> {
    let rc = c.global().await;
    let r = rc.region.as_str();
    let name = current.name.as_str();
    match current.kind {
        Kind::IamRole => {
            // IAM refuses to delete a role that has policies or sits in instance profiles:
            // read what it has now (not the spec as found, which may be stale) and undo it.
            for policy in inline_names(c, name).await? {
                c.call(
                    Call::new(r, "iam", "DeleteRolePolicy"),
                    rc.iam
                        .delete_role_policy()
                        .role_name(name)
                        .policy_name(policy)
                        .send(),
                )
                .await?;
            }
            for arn in attached(c, name).await? {
                c.call(
                    Call::new(r, "iam", "DetachRolePolicy"),
                    rc.iam
                        .detach_role_policy()
                        .role_name(name)
                        .policy_arn(arn)
                        .send(),
                )
                .await?;
            }
            let profiles = c
                .call(
                    Call::new(r, "iam", "ListInstanceProfilesForRole"),
                    rc.iam
                        .list_instance_profiles_for_role()
                        .role_name(name)
                        .send(),
                )
                .await?;
            for p in profiles.instance_profiles() {
                c.call(
                    Call::new(r, "iam", "RemoveRoleFromInstanceProfile"),
                    rc.iam
                        .remove_role_from_instance_profile()
                        .instance_profile_name(p.instance_profile_name())
                        .role_name(name)
                        .send(),
                )
                .await?;
            }
            c.call(
                Call::new(r, "iam", "DeleteRole"),
                rc.iam.delete_role().role_name(name).send(),
            )
            .await?;
            Ok(())
        }
        Kind::InstanceProfile => {
            let got = c
                .call(
                    Call::new(r, "iam", "GetInstanceProfile"),
                    rc.iam
                        .get_instance_profile()
                        .instance_profile_name(name)
                        .send(),
                )
                .await?;
            let roles: Vec<String> = got
                .instance_profile()
                .map(|p| {
                    p.roles()
                        .iter()
                        .map(|x| x.role_name().to_string())
                        .collect()
                })
                .unwrap_or_default();
            for role in roles {
                c.call(
                    Call::new(r, "iam", "RemoveRoleFromInstanceProfile"),
                    rc.iam
                        .remove_role_from_instance_profile()
                        .instance_profile_name(name)
                        .role_name(role)
                        .send(),
                )
                .await?;
            }
            c.call(
                Call::new(r, "iam", "DeleteInstanceProfile"),
                rc.iam
                    .delete_instance_profile()
                    .instance_profile_name(name)
                    .send(),
            )
            .await?;
            Ok(())
        }
        other => Err(not_iam(other)),
    }
}

async fn read_role(c: &Clients, name: &str) -> Result<Option<Resource>, CloudError> {
    let rc = c.global().await;
    let r = rc.region.as_str();
    let Some(out) = absent(
        c.call(
            Call::new(r, "iam", "GetRole"),
            rc.iam.get_role().role_name(name).send(),
        )
        .await,
    )?
    else {
        return Ok(None);
    };
    let Some(role) = out.role() else {
        return Ok(None);
    };
    let mut spec = Map::new();
    if let Some(doc) = role.assume_role_policy_document() {
        spec.insert("assume_role_policy".into(), decode_policy(doc));
    }
    let mut policies = Map::new();
    for policy in inline_names(c, name).await? {
        let got = c
            .call(
                Call::new(r, "iam", "GetRolePolicy"),
                rc.iam
                    .get_role_policy()
                    .role_name(name)
                    .policy_name(&policy)
                    .send(),
            )
            .await?;
        policies.insert(policy, decode_policy(got.policy_document()));
    }
    spec.insert("inline_policies".into(), Value::Object(policies));
    spec.insert(
        "managed_policy_arns".into(),
        json!(attached(c, name).await?),
    );
    if let Some(d) = role.max_session_duration() {
        spec.insert("max_session_duration".into(), json!(d));
    }
    let mut tags = iam_tags(role.tags());
    if tags.is_empty() {
        // GetRole carries the tags on AWS; older answers (and emulators) may leave them out.
        if let Some(t) = absent(
            c.call(
                Call::new(r, "iam", "ListRoleTags"),
                rc.iam.list_role_tags().role_name(name).send(),
            )
            .await,
        )? {
            tags = iam_tags(t.tags());
        }
    }
    Ok(Some(resource(
        Kind::IamRole,
        GLOBAL,
        role.role_name(),
        role.role_id(),
        role.arn(),
        spec,
        Map::new(),
        tags,
        ResourceState::Available,
    )))
}

async fn read_profile(c: &Clients, name: &str) -> Result<Option<Resource>, CloudError> {
    let rc = c.global().await;
    let r = rc.region.as_str();
    let Some(out) = absent(
        c.call(
            Call::new(r, "iam", "GetInstanceProfile"),
            rc.iam
                .get_instance_profile()
                .instance_profile_name(name)
                .send(),
        )
        .await,
    )?
    else {
        return Ok(None);
    };
    let Some(p) = out.instance_profile() else {
        return Ok(None);
    };
    let mut spec = Map::new();
    if let Some(role) = p.roles().first() {
        spec.insert("role_name".into(), json!(role.role_name()));
    }
    let tags = iam_tags(p.tags());
    Ok(Some(resource(
        Kind::InstanceProfile,
        GLOBAL,
        p.instance_profile_name(),
        p.instance_profile_id(),
        p.arn(),
        spec,
        Map::new(),
        tags,
        ResourceState::Available,
    )))
}

async fn put_inline(c: &Clients, role: &str, policy: &str, doc: &Value) -> Result<(), CloudError> {
    let rc = c.global().await;
    c.call(
        Call::new(&rc.region, "iam", "PutRolePolicy"),
        rc.iam
            .put_role_policy()
            .role_name(role)
            .policy_name(policy)
            .policy_document(doc.to_string())
            .send(),
    )
    .await?;
    Ok(())
}

/// The names of a role's inline policies.
async fn inline_names(c: &Clients, role: &str) -> Result<Vec<String>, CloudError> {
    let rc = c.global().await;
    let mut out = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = c
            .call(
                Call::new(&rc.region, "iam", "ListRolePolicies"),
                rc.iam
                    .list_role_policies()
                    .role_name(role)
                    .set_marker(marker.clone())
                    .send(),
            )
            .await?;
        out.extend(page.policy_names().iter().cloned());
        match page.marker() {
            Some(m) if page.is_truncated() => marker = Some(m.to_string()),
            _ => break,
        }
    }
    Ok(out)
}

/// The ARNs of a role's attached managed policies.
async fn attached(c: &Clients, role: &str) -> Result<Vec<String>, CloudError> {
    let rc = c.global().await;
    let mut out = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = c
            .call(
                Call::new(&rc.region, "iam", "ListAttachedRolePolicies"),
                rc.iam
                    .list_attached_role_policies()
                    .role_name(role)
                    .set_marker(marker.clone())
                    .send(),
            )
            .await?;
        out.extend(
            page.attached_policies()
                .iter()
                .filter_map(|p| p.policy_arn().map(str::to_string)),
        );
        match page.marker() {
            Some(m) if page.is_truncated() => marker = Some(m.to_string()),
            _ => break,
        }
    }
    Ok(out)
}

/// A spec's inline policies, by name.
fn inline(spec: &Value) -> BTreeMap<String, Value> {
    spec.get("inline_policies")
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

fn iam_tags(tags: &[Tag]) -> Tags {
    tags.iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect()
}

fn to_iam_tags(tags: &Tags) -> Result<Vec<Tag>, CloudError> {
    tags.iter()
        .map(|(k, v)| {
            Tag::builder()
                .key(k)
                .value(v)
                .build()
                .map_err(|e| CloudError::new(ErrorKind::Internal, format!("iam tag {k}: {e}")))
        })
        .collect()
}

fn vanished(kind: Kind, name: &str) -> CloudError {
    CloudError::new(
        ErrorKind::Internal,
        format!("iam: the {kind} {name} was not found right after it was written"),
    )
}

fn not_iam(kind: Kind) -> CloudError {
    CloudError::new(ErrorKind::NotBuilt, format!("{kind} is not an iam kind"))
}

#[cfg(test)]
mod tests {
    use super::super::data_common::testing::{moto, tags, unique};
    use super::*;
    use crate::cloud::drift::diff_raw as diff;

    fn role_spec(service: &str, bucket: &str) -> Value {
        json!({
            "assume_role_policy": {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]
            },
            "inline_policies": {"app": {
                "Version": "2012-10-17",
                "Statement": [{"Sid": "Read", "Effect": "Allow", "Action": ["s3:GetObject"], "Resource": [format!("arn:aws:s3:::{bucket}/*")]},
                    {"Effect": "Allow", "Action": "cloudwatch:PutMetricData", "Resource": "*", "Condition": {"StringEquals": {"cloudwatch:namespace": "DrFlow/Trading"}}}]
            }},
            "managed_policy_arns": [],
            "max_session_duration": 3600,
        })
    }

    #[tokio::test]
    async fn role_and_instance_profile_round_trip_through_moto() {
        let Some(c) = moto("iam role") else { return };
        let name = unique("ec2-role");
        let spec = role_spec("ec2.amazonaws.com", "artifacts");
        let req = CreateRequest {
            kind: Kind::IamRole,
            region: GLOBAL.into(),
            name: name.clone(),
            parent: None,
            spec: spec.clone(),
            tags: tags(&name),
            depends_on: vec![],
        };
        let created = create(&c, &req).await.unwrap();
        assert!(created.arn.ends_with(&format!(":role/{name}")));
        assert_eq!(created.region, GLOBAL);
        // Creating it again is a conflict the steps resolve by finding it.
        assert_eq!(
            create(&c, &req).await.unwrap_err().kind,
            ErrorKind::Conflict
        );
        let found = find(&c, &Identity::new(Kind::IamRole, GLOBAL, &name))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(diff(&spec, &found.spec), Vec::<String>::new());
        assert_eq!(
            found.spec["inline_policies"], spec["inline_policies"],
            "documents decoded"
        );
        assert_eq!(found.tags, tags(&name));

        // Drift in one inline policy and an extra one to drop: PutRolePolicy and
        // DeleteRolePolicy only.
        let mut extra = spec.clone();
        // IAM refuses a document without a statement (MalformedPolicyDocument).
        extra["inline_policies"]["old"] = json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}
        ]});
        put_inline(&c, &name, "old", &extra["inline_policies"]["old"])
            .await
            .unwrap();
        let current = find(&c, &Identity::new(Kind::IamRole, GLOBAL, &name))
            .await
            .unwrap()
            .unwrap();
        let want = role_spec("ec2.amazonaws.com", "other-bucket");
        let before = c.calls().len();
        let updated = update(
            &c,
            &current,
            &UpdateRequest {
                spec: want.clone(),
                drifted: vec!["inline_policies.app".into()],
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
        assert_eq!(mutating, ["PutRolePolicy", "DeleteRolePolicy"]);
        assert_eq!(updated.spec["inline_policies"], want["inline_policies"]);

        let pname = unique("ec2-instance-profile");
        let profile = create(
            &c,
            &CreateRequest {
                kind: Kind::InstanceProfile,
                region: GLOBAL.into(),
                name: pname.clone(),
                parent: None,
                spec: json!({"role_name": name}),
                tags: tags(&pname),
                depends_on: vec![],
            },
        )
        .await
        .unwrap();
        assert_eq!(profile.spec, json!({"role_name": name}));
        assert_eq!(profile.tags, tags(&pname));

        let roles = list(&c, GLOBAL, Kind::IamRole, None).await.unwrap();
        assert!(roles.iter().any(|r| r.name == name));
        let profiles = list(&c, GLOBAL, Kind::InstanceProfile, None).await.unwrap();
        assert!(profiles.iter().any(|r| r.name == pname));

        // The role goes first: delete takes it out of the profile and drops its policies.
        delete(&c, &updated).await.unwrap();
        assert!(
            find(&c, &Identity::new(Kind::IamRole, GLOBAL, &name))
                .await
                .unwrap()
                .is_none()
        );
        let p = find(&c, &Identity::new(Kind::InstanceProfile, GLOBAL, &pname))
            .await
            .unwrap()
            .unwrap();
        assert!(p.spec.get("role_name").is_none());
        delete(&c, &p).await.unwrap();
        assert!(
            find(&c, &Identity::new(Kind::InstanceProfile, GLOBAL, &pname))
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(delete(&c, &p).await.unwrap_err().kind, ErrorKind::NotFound);
    }
}
