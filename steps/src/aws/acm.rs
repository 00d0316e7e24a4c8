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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::elbv2::test_support::{moto, tags, unique};
    use super::*;
    use crate::backend::UpdateRequest;
    use crate::cloud::drift::diff_raw as diff;

    const R: &str = "eu-south-1";

    #[tokio::test]
    async fn certificate_round_trips_through_moto() {
        let Some(c) = moto("acm round trip") else {
            return;
        };
        let u = unique();
        let name = format!("certificate-{u}");
        let spec = json!({
            "domain_name": format!("api.trading-{u}.example.com"), "validation_method": "DNS",
            "key_algorithm": "RSA_2048",
            "options": {"certificate_transparency_logging_preference": "ENABLED"},
        });
        let made = create(
            &c,
            &CreateRequest {
                kind: Kind::Certificate,
                region: R.into(),
                name: name.clone(),
                parent: None,
                spec: spec.clone(),
                tags: tags(&name),
                depends_on: vec![],
            },
        )
        .await
        .unwrap();
        assert!(
            made.arn.starts_with("arn:aws:acm:eu-south-1:"),
            "{}",
            made.arn
        );
        let id = Identity::new(Kind::Certificate, R, &name);
        let cert = find(&c, &id).await.unwrap().expect("the certificate");
        assert_eq!(cert.arn, made.arn);
        assert_eq!(cert.name, name);
        assert!(
            diff(&spec, &cert.spec).is_empty(),
            "{:?}\n{:#}",
            diff(&spec, &cert.spec),
            cert.spec
        );
        assert_eq!(cert.tags, tags(&name));
        // moto fills the DNS validation record at once; AWS a little later.
        assert!(
            cert.attr_str("validation_record_name")
                .ends_with(&format!("api.trading-{u}.example.com.")),
            "{:?}",
            cert.attrs
        );
        assert!(!cert.attr_str("validation_record_value").is_empty());

        let mut want = spec.clone();
        want["options"]["certificate_transparency_logging_preference"] = json!("DISABLED");
        let mut tags2 = cert.tags.clone();
        tags2.insert("Extra".into(), "1".into());
        let req = UpdateRequest {
            spec: want.clone(),
            drifted: diff(&want, &cert.spec),
            tags: tags2.clone(),
            depends_on: vec![],
        };
        assert_eq!(
            req.drifted,
            ["options.certificate_transparency_logging_preference"]
        );
        update(&c, &cert, &req).await.unwrap();
        let cert = find(&c, &id).await.unwrap().unwrap();
        assert_eq!(cert.tags, tags2);
        assert!(
            diff(&want, &cert.spec).is_empty(),
            "{:?}",
            diff(&want, &cert.spec)
        );

        assert!(
            list(&c, R, Kind::Certificate, None)
                .await
                .unwrap()
                .iter()
                .any(|r| r.arn == cert.arn)
        );
        delete(&c, &cert).await.unwrap();
        assert!(find(&c, &id).await.unwrap().is_none());
    }
}
