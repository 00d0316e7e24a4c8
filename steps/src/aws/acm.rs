//! The acm kind on AWS: `certificate`, named by its `Name` tag (ACM has no name field), id and
//! ARN its ARN.
//!
//! `find` lists the region's certificates, reads each one's tags (`ListTagsForCertificate`: ACM
//! has no batch tag call) and describes the one named. The DNS validation record
//! (`validation_record_name`/`_value`) appears in `DescribeCertificate` some seconds after the
//! request: `find` returns what is there, and the seam waits for it. `DescribeCertificate`
//! spells key algorithms with a dash (`RSA-2048`) where requests take an underscore
//! (`RSA_2048`): `find` returns the request's spelling.

use aws_sdk_acm::types::{
    CertificateDetail, CertificateOptions, CertificateStatus,
    CertificateTransparencyLoggingPreference, KeyAlgorithm, Tag, ValidationMethod,
};
use serde_json::{Map, Value, json};

use super::elbv2::{applied, managed, none_if_missing, s, tags_to_add, top_keys, wrong_kind};
use super::{Call, Clients};
use crate::backend::{
    CloudError, CreateRequest, ErrorKind, Identity, Kind, Resource, ResourceState, Tags,
    UpdateRequest,
};

const SVC: &str = "acm";

pub(super) async fn find(c: &Clients, id: &Identity) -> Result<Option<Resource>, CloudError> {
    if id.kind != Kind::Certificate {
        return Err(wrong_kind(id.kind));
    }
    for (arn, tags) in tagged(c, &id.region).await? {
        if tags.get("Name") == Some(&id.name) {
            return describe(c, &id.region, &arn, tags).await;
        }
    }
    Ok(None)
}

pub(super) async fn list(
    c: &Clients,
    region: &str,
    kind: Kind,
    _parent: Option<&str>,
) -> Result<Vec<Resource>, CloudError> {
    if kind != Kind::Certificate {
        return Err(wrong_kind(kind));
    }
    let mut out = Vec::new();
    for (arn, tags) in tagged(c, region).await? {
        if managed(&tags)
            && let Some(r) = describe(c, region, &arn, tags).await?
        {
            out.push(r);
        }
    }
    Ok(out)
}

pub(super) async fn create(c: &Clients, req: &CreateRequest) -> Result<Resource, CloudError> {
    if req.kind != Kind::Certificate {
        return Err(wrong_kind(req.kind));
    }
    let region = req.region.as_str();
    let rc = c.region(region).await;
    let spec = &req.spec;
    let out = c
        .call(
            Call::new(region, SVC, "RequestCertificate"),
            rc.acm
                .request_certificate()
                .set_domain_name(s(spec, "domain_name").map(str::to_string))
                .set_validation_method(s(spec, "validation_method").map(ValidationMethod::from))
                .set_key_algorithm(s(spec, "key_algorithm").map(KeyAlgorithm::from))
                .set_options(options(spec))
                .set_tags(Some(acm_tags(&req.tags)?))
                .send(),
        )
        .await?;
    let arn = out.certificate_arn().unwrap_or_default().to_string();
    // The validation record arrives later; the seam finds it again while it waits.
    Ok(Resource {
        kind: Kind::Certificate,
        region: region.to_string(),
        name: req.name.clone(),
        parent: None,
        id: arn.clone(),
        arn,
        spec: spec.clone(),
        attrs: Map::new(),
        tags: req.tags.clone(),
        state: ResourceState::Creating,
        depends_on: req.depends_on.clone(),
    })
}

pub(super) async fn update(
    c: &Clients,
    current: &Resource,
    req: &UpdateRequest,
) -> Result<Resource, CloudError> {
    if current.kind != Kind::Certificate {
        return Err(wrong_kind(current.kind));
    }
    let region = current.region.as_str();
    let rc = c.region(region).await;
    if top_keys(&req.drifted).contains(&"options")
        && let Some(opts) = options(&req.spec)
    {
        c.call(
            Call::new(region, SVC, "UpdateCertificateOptions"),
            rc.acm
                .update_certificate_options()
                .certificate_arn(&current.arn)
                .options(opts)
                .send(),
        )
        .await?;
    }
    let add = tags_to_add(&current.tags, &req.tags);
    if !add.is_empty() {
        c.call(
            Call::new(region, SVC, "AddTagsToCertificate"),
            rc.acm
                .add_tags_to_certificate()
                .certificate_arn(&current.arn)
                .set_tags(Some(acm_tags(&add)?))
                .send(),
        )
        .await?;
    }
    let mut r = applied(current, req);
    if let Some(n) = req.tags.get("Name") {
        r.name = n.clone();
    }
    Ok(r)
}

pub(super) async fn delete(c: &Clients, current: &Resource) -> Result<(), CloudError> {
    if current.kind != Kind::Certificate {
        return Err(wrong_kind(current.kind));
    }
    let region = current.region.as_str();
    let rc = c.region(region).await;
    match c
        .call(
            Call::new(region, SVC, "DeleteCertificate"),
            rc.acm
                .delete_certificate()
                .certificate_arn(&current.arn)
                .send(),
        )
        .await
    {
        Ok(_) => Ok(()),
        // ACM's "in use" (an ALB listener still holds it) is a dependency, not a name clash.
        Err(e) if e.message.contains("ResourceInUse") => {
            Err(CloudError::new(ErrorKind::DependencyViolation, e.message))
        }
        Err(e) => Err(e),
    }
}

/// Every certificate ARN of the region with its tags.
async fn tagged(c: &Clients, region: &str) -> Result<Vec<(String, Tags)>, CloudError> {
    let rc = c.region(region).await;
    let mut arns = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = c
            .call(
                Call::new(region, SVC, "ListCertificates"),
                rc.acm
                    .list_certificates()
                    .set_next_token(token.clone())
                    .send(),
            )
            .await?;
        arns.extend(
            page.certificate_summary_list()
                .iter()
                .filter_map(|s| s.certificate_arn().map(str::to_string)),
        );
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    let mut out = Vec::new();
    for arn in arns {
        let res = c
            .call(
                Call::new(region, SVC, "ListTagsForCertificate"),
                rc.acm
                    .list_tags_for_certificate()
                    .certificate_arn(&arn)
                    .send(),
            )
            .await;
        // A certificate deleted between the two calls is simply not there.
        let Some(res) = none_if_missing(res)? else {
            continue;
        };
        let tags: Tags = res
            .tags()
            .iter()
            .map(|t| {
                (
                    t.key().to_string(),
                    t.value().unwrap_or_default().to_string(),
                )
            })
            .collect();
        out.push((arn, tags));
    }
    Ok(out)
}

async fn describe(
    c: &Clients,
    region: &str,
    arn: &str,
    tags: Tags,
) -> Result<Option<Resource>, CloudError> {
    let rc = c.region(region).await;
    let out = c
        .call(
            Call::new(region, SVC, "DescribeCertificate"),
            rc.acm.describe_certificate().certificate_arn(arn).send(),
        )
        .await;
    let Some(out) = none_if_missing(out)? else {
        return Ok(None);
    };
    Ok(out
        .certificate()
        .map(|d| cert_resource(region, arn, d, tags)))
}

fn cert_resource(region: &str, arn: &str, d: &CertificateDetail, tags: Tags) -> Resource {
    let mut spec = Map::new();
    if let Some(v) = d.domain_name() {
        spec.insert("domain_name".into(), json!(v));
    }
    let validation = d.domain_validation_options().first();
    if let Some(m) = validation.and_then(|v| v.validation_method()) {
        spec.insert("validation_method".into(), json!(m.as_str()));
    }
    if let Some(k) = d.key_algorithm() {
        spec.insert("key_algorithm".into(), json!(k.as_str().replace('-', "_")));
    }
    if let Some(p) = d
        .options()
        .and_then(|o| o.certificate_transparency_logging_preference())
    {
        spec.insert(
            "options".into(),
            json!({"certificate_transparency_logging_preference": p.as_str()}),
        );
    }
    let mut attrs = Map::new();
    if let Some(rr) = validation.and_then(|v| v.resource_record()) {
        attrs.insert("validation_record_name".into(), json!(rr.name()));
        attrs.insert("validation_record_value".into(), json!(rr.value()));
    }
    let state = match d.status() {
        Some(CertificateStatus::Issued) => ResourceState::Available,
        Some(CertificateStatus::PendingValidation) | None => ResourceState::Creating,
        Some(_) => ResourceState::Failed,
    };
    Resource {
        kind: Kind::Certificate,
        region: region.to_string(),
        name: tags.get("Name").cloned().unwrap_or_default(),
        parent: None,
        id: arn.to_string(),
        arn: arn.to_string(),
        spec: Value::Object(spec),
        attrs,
        tags,
        state,
        depends_on: Vec::new(),
    }
}

fn options(spec: &Value) -> Option<CertificateOptions> {
    let pref = spec
        .get("options")
        .and_then(|o| s(o, "certificate_transparency_logging_preference"))?;
    Some(
        CertificateOptions::builder()
            .certificate_transparency_logging_preference(
                CertificateTransparencyLoggingPreference::from(pref),
            )
            .build(),
    )
}

fn acm_tags(tags: &Tags) -> Result<Vec<Tag>, CloudError> {
    tags.iter()
        .map(|(k, v)| {
            Tag::builder().key(k).value(v).build().map_err(|e| {
                CloudError::new(
                    ErrorKind::InvalidInput,
                    format!("the tag {k:?} cannot be sent to ACM: {e}"),
                )
            })
        })
        .collect()
}
