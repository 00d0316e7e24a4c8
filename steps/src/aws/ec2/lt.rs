//! Launch templates: named by their name, read back from their latest version.
//!
//! The spec holds the launch template data as the steps write it (`image_id`, `instance_type`,
//! `iam_instance_profile`, `vpc_security_group_ids`, `user_data`, `metadata_options`,
//! `block_device_mappings`, `monitoring`, `tag_specifications`) and `update_default_version`,
//! read back as "the default version is the latest". An `image_id` of the form
//! `resolve:ssm:<parameter>` is sent as it is: EC2 resolves it at launch and returns it as
//! written (so does moto), which keeps the spec as the steps wrote it.
//!
//! `update` creates a new version from the whole desired data and, with
//! `update_default_version`, makes it the default; `attrs` has `latest_version` and
//! `default_version`.

use aws_sdk_ec2::types::{
    Filter, InstanceType, LaunchTemplateBlockDeviceMappingRequest,
    LaunchTemplateEbsBlockDeviceRequest, LaunchTemplateHttpTokensState,
    LaunchTemplateIamInstanceProfileSpecificationRequest,
    LaunchTemplateInstanceMetadataEndpointState, LaunchTemplateInstanceMetadataOptionsRequest,
    LaunchTemplateTagSpecificationRequest, LaunchTemplatesMonitoringRequest,
    RequestLaunchTemplateData, ResourceType, ResponseLaunchTemplateData, Tag, VolumeType,
};
use serde_json::{Map, Value, json};

use super::{Call, Clients, arn, resource, set, tag_spec, tags_of};
use crate::backend::{CloudError, CreateRequest, Kind, Resource, ResourceState, UpdateRequest};

fn s<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str)
}

fn i(v: &Value, k: &str) -> Option<i32> {
    v.get(k).and_then(Value::as_i64).map(|n| n as i32)
}

fn b(v: &Value, k: &str) -> Option<bool> {
    v.get(k).and_then(Value::as_bool)
}

/// The launch template data of a spec, for EC2.
fn data(spec: &Value) -> RequestLaunchTemplateData {
    let mut d = RequestLaunchTemplateData::builder()
        .set_image_id(s(spec, "image_id").map(str::to_string))
        .set_instance_type(s(spec, "instance_type").map(InstanceType::from))
        .set_user_data(s(spec, "user_data").map(str::to_string))
        .set_key_name(s(spec, "key_name").map(str::to_string));
    if let Some(p) = spec.get("iam_instance_profile") {
        d = d.iam_instance_profile(
            LaunchTemplateIamInstanceProfileSpecificationRequest::builder()
                .set_arn(s(p, "arn").map(str::to_string))
                .set_name(s(p, "name").map(str::to_string))
                .build(),
        );
    }
    if let Some(ids) = spec.get("vpc_security_group_ids").and_then(Value::as_array) {
        d = d.set_security_group_ids(Some(
            ids.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
        ));
    }
    if let Some(m) = spec.get("metadata_options") {
        d = d.metadata_options(
            LaunchTemplateInstanceMetadataOptionsRequest::builder()
                .set_http_tokens(s(m, "http_tokens").map(LaunchTemplateHttpTokensState::from))
                .set_http_endpoint(
                    s(m, "http_endpoint").map(LaunchTemplateInstanceMetadataEndpointState::from),
                )
                .set_http_put_response_hop_limit(i(m, "http_put_response_hop_limit"))
                .build(),
        );
    }
    if let Some(list) = spec.get("block_device_mappings").and_then(Value::as_array) {
        for m in list {
            let mut bdm = LaunchTemplateBlockDeviceMappingRequest::builder()
                .set_device_name(s(m, "device_name").map(str::to_string));
            if let Some(e) = m.get("ebs") {
                bdm = bdm.ebs(
                    LaunchTemplateEbsBlockDeviceRequest::builder()
                        .set_volume_size(i(e, "volume_size"))
                        .set_volume_type(s(e, "volume_type").map(VolumeType::from))
                        .set_encrypted(b(e, "encrypted"))
                        .set_delete_on_termination(b(e, "delete_on_termination"))
                        .set_iops(i(e, "iops"))
                        .set_throughput(i(e, "throughput"))
                        .set_kms_key_id(s(e, "kms_key_id").map(str::to_string))
                        .build(),
                );
            }
            d = d.block_device_mappings(bdm.build());
        }
    }
    if let Some(m) = spec.get("monitoring") {
        d = d.monitoring(
            LaunchTemplatesMonitoringRequest::builder()
                .set_enabled(b(m, "enabled"))
                .build(),
        );
    }
    if let Some(list) = spec.get("tag_specifications").and_then(Value::as_array) {
        for t in list {
            let tags = t
                .get("tags")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| {
                            Tag::builder()
                                .key(k)
                                .value(v.as_str().unwrap_or_default())
                                .build()
                        })
                        .collect()
                })
                .unwrap_or_default();
            d = d.tag_specifications(
                LaunchTemplateTagSpecificationRequest::builder()
                    .set_resource_type(s(t, "resource_type").map(ResourceType::from))
                    .set_tags(Some(tags))
                    .build(),
            );
        }
    }
    d.build()
}

/// The spec keys of EC2's launch template data (only what is set).
fn spec_of(d: &ResponseLaunchTemplateData) -> Map<String, Value> {
    let mut m = Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            m.insert(k.to_string(), v);
        }
    };
    put("image_id", d.image_id().map(|v| json!(v)));
    put(
        "instance_type",
        d.instance_type().map(|v| json!(v.as_str())),
    );
    put("key_name", d.key_name().map(|v| json!(v)));
    put(
        "iam_instance_profile",
        d.iam_instance_profile().map(|p| {
            let mut o = Map::new();
            if let Some(a) = p.arn() {
                o.insert("arn".into(), json!(a));
            }
            if let Some(n) = p.name() {
                o.insert("name".into(), json!(n));
            }
            Value::Object(o)
        }),
    );
    put(
        "vpc_security_group_ids",
        (!d.security_group_ids().is_empty()).then(|| json!(d.security_group_ids())),
    );
    put("user_data", d.user_data().map(|v| json!(v)));
    put(
        "metadata_options",
        d.metadata_options().map(|o| {
            let mut x = Map::new();
            if let Some(v) = o.http_tokens() {
                x.insert("http_tokens".into(), json!(v.as_str()));
            }
            if let Some(v) = o.http_endpoint() {
                x.insert("http_endpoint".into(), json!(v.as_str()));
            }
            if let Some(v) = o.http_put_response_hop_limit() {
                x.insert("http_put_response_hop_limit".into(), json!(v));
            }
            Value::Object(x)
        }),
    );
    put(
        "block_device_mappings",
        (!d.block_device_mappings().is_empty()).then(|| {
            Value::Array(
                d.block_device_mappings()
                    .iter()
                    .map(|bdm| {
                        let mut x = Map::new();
                        if let Some(n) = bdm.device_name() {
                            x.insert("device_name".into(), json!(n));
                        }
                        if let Some(e) = bdm.ebs() {
                            let mut y = Map::new();
                            let mut put = |k: &str, v: Option<Value>| {
                                if let Some(v) = v {
                                    y.insert(k.to_string(), v);
                                }
                            };
                            put("volume_size", e.volume_size().map(|v| json!(v)));
                            put("volume_type", e.volume_type().map(|v| json!(v.as_str())));
                            put("encrypted", e.encrypted().map(|v| json!(v)));
                            put(
                                "delete_on_termination",
                                e.delete_on_termination().map(|v| json!(v)),
                            );
                            put("iops", e.iops().map(|v| json!(v)));
                            put("throughput", e.throughput().map(|v| json!(v)));
                            put("kms_key_id", e.kms_key_id().map(|v| json!(v)));
                            x.insert("ebs".into(), Value::Object(y));
                        }
                        Value::Object(x)
                    })
                    .collect(),
            )
        }),
    );
    put(
        "monitoring",
        d.monitoring()
            .map(|m| json!({"enabled": m.enabled().unwrap_or(false)})),
    );
    // moto also lists the template's own tags here (resource type `launch-template`), which
    // AWS never does: launch template data only tags what an instance launch creates.
    let specs: Vec<Value> = d
        .tag_specifications()
        .iter()
        .filter(|t| t.resource_type().map(|r| r.as_str()) != Some("launch-template"))
        .map(|t| {
            json!({
                "resource_type": t.resource_type().map(|r| r.as_str()).unwrap_or_default(),
                "tags": tags_of(t.tags()),
            })
        })
        .collect();
    put(
        "tag_specifications",
        (!specs.is_empty()).then_some(Value::Array(specs)),
    );
    m
}

pub(super) async fn describe(
    c: &Clients,
    region: &str,
    filters: Vec<Filter>,
) -> Result<Vec<Resource>, CloudError> {
    let rc = c.region(region).await;
    let out = c
        .call(
            Call::new(region, "ec2", "DescribeLaunchTemplates"),
            rc.ec2
                .describe_launch_templates()
                .set_filters(Some(filters))
                .send(),
        )
        .await?;
    let mut found = Vec::new();
    for t in out.launch_templates() {
        let id = t.launch_template_id().unwrap_or_default();
        let latest = t.latest_version_number().unwrap_or(1);
        let default = t.default_version_number().unwrap_or(1);
        let versions = c
            .call(
                Call::new(region, "ec2", "DescribeLaunchTemplateVersions"),
                rc.ec2
                    .describe_launch_template_versions()
                    .launch_template_id(id)
                    .versions(latest.to_string())
                    .send(),
            )
            .await?;
        let mut spec = versions
            .launch_template_versions()
            .first()
            .and_then(|v| v.launch_template_data())
            .map(spec_of)
            .unwrap_or_default();
        spec.insert("update_default_version".into(), json!(default == latest));
        let tags = tags_of(t.tags());
        let vpc_sgs: Vec<String> = spec
            .get("vpc_security_group_ids")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let mut r = resource(
            Kind::LaunchTemplate,
            region,
            &tags,
            id,
            arn(region, None, "launch-template", id),
            Value::Object(spec),
            ResourceState::Available,
            vpc_sgs,
        );
        r.name = t.launch_template_name().unwrap_or_default().to_string();
        r.attrs.insert("latest_version".into(), json!(latest));
        r.attrs.insert("default_version".into(), json!(default));
        found.push(r);
    }
    Ok(found)
}

pub(super) async fn create(c: &Clients, req: &CreateRequest) -> Result<Resource, CloudError> {
    let region = req.region.as_str();
    let rc = c.region(region).await;
    let out = c
        .call(
            Call::new(region, "ec2", "CreateLaunchTemplate"),
            rc.ec2
                .create_launch_template()
                .launch_template_name(&req.name)
                .launch_template_data(data(&req.spec))
                .tag_specifications(tag_spec(ResourceType::LaunchTemplate, &req.tags))
                .send(),
        )
        .await?;
    let t = out.launch_template();
    let id = t
        .and_then(|t| t.launch_template_id())
        .unwrap_or_default()
        .to_string();
    let arn = arn(region, None, "launch-template", &id);
    let mut r = super::created(req, id, arn, ResourceState::Available);
    let latest = t.and_then(|t| t.latest_version_number()).unwrap_or(1);
    let default = t.and_then(|t| t.default_version_number()).unwrap_or(1);
    r.attrs.insert("latest_version".into(), json!(latest));
    r.attrs.insert("default_version".into(), json!(default));
    Ok(r)
}

/// A new version from the whole desired data when any of it drifted; the default version moved
/// to the latest when `update_default_version` asks for it.
pub(super) async fn update(
    c: &Clients,
    current: &Resource,
    req: &UpdateRequest,
    out: &mut Resource,
) -> Result<(), CloudError> {
    let region = current.region.as_str();
    let rc = c.region(region).await;
    let data_drifted = req
        .drifted
        .iter()
        .any(|p| p.split('.').next() != Some("update_default_version"));
    let mut latest = current
        .attrs
        .get("latest_version")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    if data_drifted {
        let v = c
            .call(
                Call::new(region, "ec2", "CreateLaunchTemplateVersion"),
                rc.ec2
                    .create_launch_template_version()
                    .launch_template_id(&current.id)
                    .launch_template_data(data(&req.spec))
                    .send(),
            )
            .await?;
        latest = v
            .launch_template_version()
            .and_then(|v| v.version_number())
            .unwrap_or(latest + 1);
        out.attrs.insert("latest_version".into(), json!(latest));
    }
    let make_default = req
        .spec
        .get("update_default_version")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let default = current
        .attrs
        .get("default_version")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    if make_default && default != latest {
        c.call(
            Call::new(region, "ec2", "ModifyLaunchTemplate"),
            rc.ec2
                .modify_launch_template()
                .launch_template_id(&current.id)
                .default_version(latest.to_string())
                .send(),
        )
        .await?;
        out.attrs.insert("default_version".into(), json!(latest));
    }
    let mut spec = req.spec.clone();
    set(
        &mut spec,
        "update_default_version",
        json!(make_default || default == latest),
    );
    out.spec = spec;
    Ok(())
}
