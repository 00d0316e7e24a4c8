//! Getting users to a healthy region: `acm.certificate`, `elb.load_balancer`,
//! `route53.hosted_zone`, `route53.health_check` and `route53.failover_dns`.

use std::sync::Arc;
use std::time::Duration;

use drflow_engine::{Outputs, Registry, StepError, ValueType};
use serde_json::json;

use super::checks::{CERTIFICATE_ARN, ROLES};
use super::framework::{BodyFuture, CloudStep, Cx, Desired, Role, cloud_spec};
use super::input;
use crate::backend::{GLOBAL, Kind, ResourceState};
use crate::regions::AWS_REGION;
use crate::target::LazyBackend;
use drflow_engine::formats::DOMAIN_NAME;

/// The path both the ALB and Route 53 probe.
pub const HEALTH_PATH: &str = "/health/trading";
/// What a healthy answer contains (the endpoint writes compact JSON).
pub const HEALTH_MATCH: &str = "\"status\":\"ok\"";

pub(crate) fn register(reg: &mut Registry, backend: &Arc<LazyBackend>) {
    let zone = cloud_spec(
        "route53.hosted_zone",
        "The public Route 53 hosted zone of the trading domain.",
    )
    .required(
        "domain_name",
        ValueType::String,
        "The zone's domain, e.g. trading-prod.example.com.",
    )
    .format(DOMAIN_NAME)
    .output("zone_id", ValueType::String, "The hosted zone id.")
    .output(
        "name_servers",
        ValueType::List,
        "Name servers to delegate the domain to.",
    )
    .output("domain_name", ValueType::String, "The domain.");
    // A hosted zone is named by its domain; only its Name tag holds the suffix.
    reg.register(CloudStep::boxed(zone, &[], backend, run_zone));

    let cert = cloud_spec(
        "acm.certificate",
        "An ACM certificate for the public name in one region, DNS-validated through a record \
         in the hosted zone; or, when certificate_arn is given, that certificate as is.",
    )
    .required(
        "region",
        ValueType::String,
        "Region of the ALB that will use it.",
    )
    .format(AWS_REGION)
    .required("role", ValueType::String, "primary or standby.")
    .one_of(ROLES)
    .required(
        "domain_name",
        ValueType::String,
        "The name on the certificate.",
    )
    .format(DOMAIN_NAME)
    .required(
        "hosted_zone_id",
        ValueType::String,
        "Zone to write the validation record in.",
    )
    .optional(
        "certificate_arn",
        ValueType::String,
        json!(""),
        "An existing certificate to use instead (nothing is requested).",
    )
    .format(CERTIFICATE_ARN)
    .empty_means_none()
    .output("certificate_arn", ValueType::String, "The certificate.");
    reg.register(CloudStep::boxed(
        cert,
        &[(Kind::Certificate, "certificate")],
        backend,
        run_cert,
    ));

    let alb = cloud_spec(
        "elb.load_balancer",
        "An internet-facing ALB in the public subnets, a target group whose health check is the \
         trading endpoint over HTTPS, an HTTPS listener with the certificate (TLS 1.2+), and an \
         HTTP listener that only redirects to HTTPS.",
    )
    .required("region", ValueType::String, "AWS region.")
    .format(AWS_REGION)
    .required("role", ValueType::String, "primary or standby.")
    .one_of(ROLES)
    .required("vpc_id", ValueType::String, "The VPC.")
    .required(
        "subnet_ids",
        ValueType::List,
        "Public subnets (two or more AZs).",
    )
    .min_len(2)
    .required("alb_sg_id", ValueType::String, "The ALB security group.")
    .required(
        "certificate_arn",
        ValueType::String,
        "Certificate for the HTTPS listener.",
    )
    .optional(
        "app_port",
        ValueType::Int,
        json!(8443),
        "Port the instances serve HTTPS on.",
    )
    .at_least(1.0)
    .at_most(65535.0)
    .optional(
        "ssl_policy",
        ValueType::String,
        json!("ELBSecurityPolicy-TLS13-1-2-2021-06"),
        "Listener TLS policy.",
    )
    .output("alb_arn", ValueType::String, "The load balancer.")
    .output(
        "alb_dns_name",
        ValueType::String,
        "Its DNS name (the regional endpoint).",
    )
    .output(
        "alb_zone_id",
        ValueType::String,
        "Its canonical hosted zone (for alias records).",
    )
    .output(
        "alb_arn_suffix",
        ValueType::String,
        "`app/<name>/<id>`, the CloudWatch dimension.",
    )
    .output("target_group_arn", ValueType::String, "The target group.")
    .output(
        "target_group_arn_suffix",
        ValueType::String,
        "`targetgroup/<name>/<id>`, the CloudWatch dimension.",
    )
    .output(
        "endpoint_url",
        ValueType::String,
        "https://<alb>/health/trading.",
    );
    // Listeners have no name in AWS; the load balancer and the target group do (32 characters).
    reg.register(CloudStep::boxed(
        alb,
        &[(Kind::LoadBalancer, "alb"), (Kind::TargetGroup, "tg")],
        backend,
        run_alb,
    ));

    let hc = cloud_spec(
        "route53.health_check",
        "A Route 53 health check that validates the application, not just the load balancer: \
         HTTPS_STR_MATCH on the trading endpoint's `\"status\":\"ok\"`, every 10 s, unhealthy \
         after 3 failures.",
    )
    .required(
        "role",
        ValueType::String,
        "primary or standby (the region it watches).",
    )
    .one_of(ROLES)
    .required(
        "fqdn",
        ValueType::String,
        "Host to probe (the region's ALB DNS name).",
    )
    .optional(
        "path",
        ValueType::String,
        json!(HEALTH_PATH),
        "Path to probe.",
    )
    .format(RESOURCE_PATH)
    .optional(
        "search_string",
        ValueType::String,
        json!(HEALTH_MATCH),
        "Text a healthy body contains (Route 53 reads the first 5,120 bytes).",
    )
    .min_len(1)
    .max_len(255)
    .optional(
        "request_interval",
        ValueType::Int,
        json!(10),
        "Seconds between checks: 10 (fast) or 30.",
    )
    .one_of_ints(&[10, 30])
    .optional(
        "failure_threshold",
        ValueType::Int,
        json!(3),
        "Consecutive failures before unhealthy (1-10).",
    )
    .at_least(1.0)
    .at_most(10.0)
    .output("health_check_id", ValueType::String, "The health check id.")
    .output("health_check_url", ValueType::String, "The URL it probes.");
    reg.register(CloudStep::boxed(
        hc,
        &[(Kind::HealthCheck, "health-check-{role}")],
        backend,
        run_health_check,
    ));

    let dns = cloud_spec(
        "route53.failover_dns",
        "The public name as two alias records to the regional ALBs, either weighted \
         (primary 100, standby 0) or failover (PRIMARY, SECONDARY), each tied to its region's \
         health check. Weights are set at creation only: failover and failback own them.",
    )
    .required("hosted_zone_id", ValueType::String, "The zone.")
    .required(
        "record_name",
        ValueType::String,
        "The public name, e.g. api.trading-prod.example.com.",
    )
    .format(DOMAIN_NAME)
    .required("routing_policy", ValueType::String, "weighted or failover.")
    .one_of(&["weighted", "failover"])
    .required("primary_alb_dns_name", ValueType::String, "Primary ALB.")
    .required(
        "primary_alb_zone_id",
        ValueType::String,
        "Primary ALB's canonical zone.",
    )
    .required(
        "primary_health_check_id",
        ValueType::String,
        "Primary health check.",
    )
    .required("standby_alb_dns_name", ValueType::String, "Standby ALB.")
    .required(
        "standby_alb_zone_id",
        ValueType::String,
        "Standby ALB's canonical zone.",
    )
    .required(
        "standby_health_check_id",
        ValueType::String,
        "Standby health check.",
    )
    .optional(
        "primary_weight",
        ValueType::Int,
        json!(100),
        "Weighted routing: the primary's initial weight.",
    )
    .at_least(0.0)
    .at_most(255.0)
    .optional(
        "standby_weight",
        ValueType::Int,
        json!(0),
        "Weighted routing: the standby's initial weight.",
    )
    .at_least(0.0)
    .at_most(255.0)
    .output("fqdn", ValueType::String, "The public DNS name.")
    .output("url", ValueType::String, "https://<fqdn>/health/trading.")
    .output("routing_policy", ValueType::String, "weighted or failover.")
    .echoes("routing_policy")
    .output(
        "primary_set_identifier",
        ValueType::String,
        "Set identifier of the primary record.",
    )
    .output(
        "standby_set_identifier",
        ValueType::String,
        "Set identifier of the standby record.",
    );
    // Records are named by the public name, not the suffix.
    reg.register(CloudStep::boxed(dns, &[], backend, run_dns));
}

/// A health check's path: it starts with `/`, at most 255 characters (Route 53's limit).
const RESOURCE_PATH: drflow_engine::Format = drflow_engine::Format {
    name: "url-path",
    doc: "a URL path starting with `/`, at most 255 characters",
    check: |text| {
        if text.starts_with('/') && text.len() <= 255 && !text.contains(char::is_whitespace) {
            Ok(())
        } else {
            Err(drflow_engine::Violation::new(format!(
                "is not a URL path of at most 255 characters starting with `/`: `{text}`"
            ))
            .hint(format!("e.g. `{HEALTH_PATH}`")))
        }
    },
    schema: Some(|| json!({"pattern": "^/\\S*$", "maxLength": 255})),
};

fn run_zone<'a>(cx: &'a mut Cx, p: &'a Outputs) -> BodyFuture<'a> {
    Box::pin(async move {
        let domain = input::str(p, "domain_name")?
            .trim_end_matches('.')
            .to_string();
        let mut tags = cx.tags(&cx.name("hosted-zone"), Role::Primary);
        tags.insert("Domain".into(), domain.clone());
        // A hosted zone's name is its domain; the Name tag carries the `<type>-<suffix>` name.
        let zone = cx
            .ensure(
                Desired::new(
                    Kind::HostedZone,
                    GLOBAL,
                    &domain,
                    json!({
                        "name": format!("{domain}."),
                        "comment": "drflow: trading platform public zone",
                        "private_zone": false,
                        "force_destroy": true,
                    }),
                )
                .immutable(&["name", "private_zone"])
                .tags(tags),
            )
            .await?;
        let mut out = Outputs::new();
        out.insert("zone_id".into(), json!(zone.id));
        out.insert(
            "name_servers".into(),
            zone.attrs.get("name_servers").cloned().unwrap_or(json!([])),
        );
        out.insert("domain_name".into(), json!(domain));
        Ok(out)
    })
}

fn run_cert<'a>(cx: &'a mut Cx, p: &'a Outputs) -> BodyFuture<'a> {
    Box::pin(async move {
        let mut out = Outputs::new();
        if let Some(arn) = input::opt_str(p, "certificate_arn") {
            out.insert("certificate_arn".into(), json!(arn));
            return Ok(out);
        }
        let region = input::str(p, "region")?;
        let role = input::role(p)?;
        let domain = input::str(p, "domain_name")?;
        let zone = input::str(p, "hosted_zone_id")?;
        let name = cx.name("certificate");
        let tags = cx.tags(&name, role);
        let cert = cx
            .ensure(
                Desired::new(
                    Kind::Certificate,
                    region,
                    &name,
                    json!({
                        "domain_name": domain,
                        "validation_method": "DNS",
                        "key_algorithm": "RSA_2048",
                        "options": {"certificate_transparency_logging_preference": "ENABLED"},
                    }),
                )
                .immutable(&["domain_name"])
                .tags(tags),
            )
            .await?;
        // ACM publishes the validation record some seconds after the request (DescribeCertificate
        // shows no ResourceRecord until then): wait for it, on the run's clock.
        let mut cert = cert;
        let mut waited = Duration::ZERO;
        while cert.attr_str("validation_record_name").is_empty()
            && cert.state != ResourceState::Available
        {
            if waited >= VALIDATION_RECORD_WAIT {
                return Err(StepError::retryable(
                    "not_ready",
                    format!(
                        "ACM has not published the DNS validation record of {} after {}s; \
                         the step is retried",
                        cert.name,
                        waited.as_secs()
                    ),
                ));
            }
            tokio::time::sleep(VALIDATION_RECORD_POLL).await;
            waited += VALIDATION_RECORD_POLL;
            cert = cx.backend.find(&cert.identity()).await?.ok_or_else(|| {
                StepError::retryable("not_found", format!("certificate {} is gone", cert.name))
            })?;
        }
        let record = cert.attr_str("validation_record_name").to_string();
        let value = cert.attr_str("validation_record_value").to_string();
        if !record.is_empty() {
            // The same record validates the domain in every region, so both regions' steps
            // ensure one record, with the same tags from either side.
            let tags = cx.tags(&record, Role::Primary);
            cx.ensure(
                Desired::child(
                    Kind::DnsRecord,
                    GLOBAL,
                    zone,
                    record_name(&record, "CNAME", None),
                    json!({
                        "hosted_zone_id": zone,
                        "name": record,
                        "type": "CNAME",
                        "ttl": 300,
                        "records": [value],
                    }),
                )
                .deps([zone])
                .tags(tags),
            )
            .await?;
        }
        let cert = cx.wait(&cert, Duration::from_secs(3600)).await?;
        out.insert("certificate_arn".into(), json!(cert.arn));
        Ok(out)
    })
}

/// How long a certificate step waits for ACM to publish its DNS validation record, and how
/// often it looks. ACM takes "a few seconds" to "up to 30 minutes in rare cases" (ACM User
/// Guide, "DNS validation"); past the wait the step fails retryable and its retries go on.
const VALIDATION_RECORD_WAIT: Duration = Duration::from_secs(300);
const VALIDATION_RECORD_POLL: Duration = Duration::from_secs(2);

fn run_alb<'a>(cx: &'a mut Cx, p: &'a Outputs) -> BodyFuture<'a> {
    Box::pin(async move {
        let region = input::str(p, "region")?;
        let role = input::role(p)?;
        let vpc = input::str(p, "vpc_id")?;
        let subnets = input::nonempty_strings(p, "subnet_ids")?;
        if subnets.len() < 2 {
            return Err(StepError::invalid_input(
                "an ALB needs public subnets in at least two availability zones",
            ));
        }
        let sg = input::str(p, "alb_sg_id")?;
        let cert = input::str(p, "certificate_arn")?;
        let port = input::int(p, "app_port")?;

        let name = cx.name("alb");
        let tags = cx.tags(&name, role);
        let mut deps = subnets.clone();
        deps.push(sg.to_string());
        let alb = cx
            .ensure(
                Desired::new(
                    Kind::LoadBalancer,
                    region,
                    &name,
                    json!({
                        "type": "application",
                        "scheme": "internet-facing",
                        "ip_address_type": "ipv4",
                        "subnets": subnets,
                        "security_groups": [sg],
                        "deletion_protection": false,
                        "drop_invalid_header_fields": true,
                        "idle_timeout": 60,
                    }),
                )
                .immutable(&["scheme", "type"])
                .deps(deps)
                .tags(tags),
            )
            .await?;
        let alb = cx.wait(&alb, Duration::from_secs(900)).await?;

        let name = cx.name("tg");
        let tags = cx.tags(&name, role);
        let tg = cx
            .ensure(
                Desired::new(
                    Kind::TargetGroup,
                    region,
                    &name,
                    json!({
                        "protocol": "HTTPS",
                        "port": port,
                        "vpc_id": vpc,
                        "target_type": "instance",
                        "deregistration_delay": 30,
                        "health_check": {
                            "protocol": "HTTPS",
                            "path": HEALTH_PATH,
                            "port": "traffic-port",
                            "interval_seconds": 10,
                            "timeout_seconds": 5,
                            "healthy_threshold": 2,
                            "unhealthy_threshold": 3,
                            "matcher": "200",
                        },
                    }),
                )
                .immutable(&["protocol", "port", "vpc_id"])
                .deps([vpc])
                .tags(tags),
            )
            .await?;

        let name = cx.name("https-listener");
        let tags = cx.tags(&name, role);
        cx.ensure(
            Desired::child(
                Kind::Listener,
                region,
                &alb.arn,
                "443",
                json!({
                    "load_balancer_arn": alb.arn,
                    "port": 443,
                    "protocol": "HTTPS",
                    "ssl_policy": input::str(p, "ssl_policy")?,
                    "certificates": [cert],
                    "default_action": {"type": "forward", "target_group_arn": tg.arn},
                }),
            )
            .immutable(&["load_balancer_arn"])
            .deps([alb.id.clone(), tg.id.clone()])
            .tags(tags),
        )
        .await?;
        let name = cx.name("http-listener");
        let tags = cx.tags(&name, role);
        cx.ensure(
            Desired::child(Kind::Listener, region, &alb.arn, "80", json!({
                "load_balancer_arn": alb.arn,
                "port": 80,
                "protocol": "HTTP",
                "default_action": {"type": "redirect", "redirect": {"protocol": "HTTPS", "port": "443", "status_code": "HTTP_301"}},
            }))
            .immutable(&["load_balancer_arn"])
            .deps([alb.id.clone()])
            .tags(tags),
        )
        .await?;

        let dns = alb.attr_str("dns_name");
        let mut out = Outputs::new();
        out.insert("alb_arn".into(), json!(alb.arn));
        out.insert("alb_dns_name".into(), json!(dns));
        out.insert(
            "alb_zone_id".into(),
            json!(alb.attr_str("canonical_hosted_zone_id")),
        );
        out.insert("alb_arn_suffix".into(), json!(alb.attr_str("arn_suffix")));
        out.insert("target_group_arn".into(), json!(tg.arn));
        out.insert(
            "target_group_arn_suffix".into(),
            json!(tg.attr_str("arn_suffix")),
        );
        out.insert(
            "endpoint_url".into(),
            json!(format!("https://{dns}{HEALTH_PATH}")),
        );
        Ok(out)
    })
}

fn run_health_check<'a>(cx: &'a mut Cx, p: &'a Outputs) -> BodyFuture<'a> {
    Box::pin(async move {
        let role = input::role(p)?;
        let fqdn = input::str(p, "fqdn")?;
        let path = input::str(p, "path")?;
        let interval = input::int(p, "request_interval")?;
        let threshold = input::int(p, "failure_threshold")?;
        if interval != 10 && interval != 30 {
            return Err(StepError::invalid_input(
                "request_interval must be 10 or 30 (seconds)",
            ));
        }
        if !(1..=10).contains(&threshold) {
            return Err(StepError::invalid_input(
                "failure_threshold must be 1 to 10",
            ));
        }
        let name = cx.name(&format!("health-check-{}", role.tag().to_ascii_lowercase()));
        let tags = cx.tags(&name, role);
        let hc = cx
            .ensure(
                Desired::new(
                    Kind::HealthCheck,
                    GLOBAL,
                    &name,
                    json!({
                        "type": "HTTPS_STR_MATCH",
                        "fully_qualified_domain_name": fqdn,
                        "port": 443,
                        "resource_path": path,
                        "search_string": input::str(p, "search_string")?,
                        "request_interval": interval,
                        "failure_threshold": threshold,
                        "enable_sni": true,
                        "measure_latency": true,
                        "inverted": false,
                        "disabled": false,
                    }),
                )
                .immutable(&["type", "request_interval", "measure_latency"])
                .tags(tags),
            )
            .await?;
        let mut out = Outputs::new();
        out.insert("health_check_id".into(), json!(hc.id));
        out.insert(
            "health_check_url".into(),
            json!(format!("https://{fqdn}{path}")),
        );
        Ok(out)
    })
}

fn run_dns<'a>(cx: &'a mut Cx, p: &'a Outputs) -> BodyFuture<'a> {
    Box::pin(async move {
        let zone = input::str(p, "hosted_zone_id")?;
        let fqdn = input::str(p, "record_name")?
            .trim_end_matches('.')
            .to_string();
        let policy = input::str(p, "routing_policy")?;
        if policy != "weighted" && policy != "failover" {
            return Err(StepError::invalid_input(format!(
                "routing_policy must be weighted or failover, not {policy:?}"
            )));
        }
        for (role, side) in [(Role::Primary, "primary"), (Role::Standby, "standby")] {
            let hc = input::str(p, &format!("{side}_health_check_id"))?;
            let spec = json!({
                "hosted_zone_id": zone,
                "name": format!("{fqdn}."),
                "type": "A",
                "set_identifier": side,
                "routing_policy": policy,
                "health_check_id": hc,
                "alias_target": {
                    "dns_name": input::str(p, &format!("{side}_alb_dns_name"))?,
                    "hosted_zone_id": input::str(p, &format!("{side}_alb_zone_id"))?,
                    "evaluate_target_health": true,
                },
            });
            let initial = if policy == "weighted" {
                json!({"weight": input::int(p, &format!("{side}_weight"))?})
            } else {
                json!({"failover": if role == Role::Primary { "PRIMARY" } else { "SECONDARY" }})
            };
            let mut spec = spec;
            let owned = if policy == "failover" {
                // The failover role is the record's identity; only weights move at run time.
                crate::json::merge(&mut spec, &initial);
                serde_json::Value::Null
            } else {
                initial
            };
            let tags = cx.tags(&format!("{fqdn} {side}"), role);
            cx.ensure(
                Desired::child(
                    Kind::DnsRecord,
                    GLOBAL,
                    zone,
                    record_name(&fqdn, "A", Some(side)),
                    spec,
                )
                .create_only(owned)
                .immutable(&["routing_policy", "failover"])
                .deps([zone.to_string(), hc.to_string()])
                .tags(tags),
            )
            .await?;
        }
        let mut out = Outputs::new();
        out.insert("fqdn".into(), json!(fqdn));
        out.insert("url".into(), json!(format!("https://{fqdn}{HEALTH_PATH}")));
        out.insert("routing_policy".into(), json!(policy));
        out.insert("primary_set_identifier".into(), json!("primary"));
        out.insert("standby_set_identifier".into(), json!("standby"));
        Ok(out)
    })
}

/// A record's name in its zone, as [`crate::backend::Identity`]'s table says: `<fqdn>. <TYPE>`
/// or `<fqdn>. <TYPE> <SetIdentifier>`, the name in lower case with one final dot.
pub(crate) fn record_name(fqdn: &str, ty: &str, set_identifier: Option<&str>) -> String {
    let fqdn = fqdn.trim_end_matches('.').to_ascii_lowercase();
    match set_identifier {
        Some(set) => format!("{fqdn}. {ty} {set}"),
        None => format!("{fqdn}. {ty}"),
    }
}
