//! The value constraints cloud steps declare that need AWS knowledge: formats (a VPC block, an
//! EC2 instance type, an Aurora Global Database instance class, an ACM certificate ARN) and the
//! rules several steps share (the two regions of a pair differ). Region codes are in
//! [`crate::regions`].

use drflow_engine::{Format, RuleViolation, StepSpec, Violation, formats::Ipv4Cidr, nearest};
use serde_json::{Value, json};

/// The values of a `role` input.
pub(crate) const ROLES: &[&str] = &["primary", "standby"];

/// A VPC's block: an IPv4 CIDR from /16 (the largest AWS allows) to /19 (room for the /24
/// subnets a VPC step carves, up to six per tier), with its host bits clear.
pub(crate) const VPC_CIDR: Format = Format {
    name: "vpc-cidr",
    doc: "an IPv4 CIDR block from /16 to /19 whose address is the network address, e.g. \
          `10.0.0.0/16`",
    check: check_vpc_cidr,
    schema: drflow_engine::formats::IPV4_CIDR.schema,
};

fn check_vpc_cidr(text: &str) -> Result<(), Violation> {
    (drflow_engine::formats::IPV4_CIDR.check)(text)?;
    let cidr = Ipv4Cidr::parse(text).ok_or_else(|| Violation::new("is not a CIDR block"))?;
    if !(16..=19).contains(&cidr.prefix) {
        return Err(Violation::new(format!(
            "is a /{} (`{text}`): a VPC block must be from /16 (the largest AWS allows) to /19 \
             (room for the subnets this step makes)",
            cidr.prefix
        ))
        .hint(format!(
            "did you mean `{}`?",
            Ipv4Cidr {
                address: cidr.address,
                prefix: 16
            }
            .network()
        )));
    }
    Ok(())
}

/// An EC2 instance type: a family and a size joined by a dot (`t3.medium`, `m7i-flex.large`).
pub(crate) const EC2_INSTANCE_TYPE: Format = Format {
    name: "ec2-instance-type",
    doc: "an EC2 instance type such as `t3.medium`",
    check: check_instance_type,
    schema: Some(|| json!({"pattern": "^[a-z][a-z0-9-]*\\.[a-z0-9]+$"})),
};

fn check_instance_type(text: &str) -> Result<(), Violation> {
    let ok = text.split_once('.').is_some_and(|(family, size)| {
        family.starts_with(|c: char| c.is_ascii_lowercase())
            && family
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !size.is_empty()
            && size
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    });
    if ok {
        return Ok(());
    }
    Err(
        Violation::new(format!("is not an EC2 instance type: `{text}`"))
            .hint("write a family and a size, e.g. `t3.medium` or `m7g.large`"),
    )
}

/// The instance classes Aurora PostgreSQL Global Database supports: memory-optimized classes
/// (db.r5 and later r classes, db.x2g) and Serverless v2 (Aurora User Guide, "Aurora global
/// databases", requirements). Burstable db.t classes are not supported.
const GLOBAL_DB_FAMILIES: &[(&str, &[&str])] = &[
    (
        "db.r5",
        &[
            "large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge",
        ],
    ),
    (
        "db.r6g",
        &[
            "large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge",
        ],
    ),
    (
        "db.r6i",
        &[
            "large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge",
            "32xlarge",
        ],
    ),
    (
        "db.r7g",
        &[
            "large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge",
        ],
    ),
    (
        "db.r7i",
        &[
            "large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge",
            "48xlarge",
        ],
    ),
    (
        "db.r8g",
        &[
            "large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge",
            "48xlarge",
        ],
    ),
    (
        "db.x2g",
        &[
            "large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge",
        ],
    ),
];

/// Every class Aurora Global Database supports.
pub(crate) fn global_db_classes() -> Vec<String> {
    let mut out: Vec<String> = GLOBAL_DB_FAMILIES
        .iter()
        .flat_map(|(family, sizes)| sizes.iter().map(move |s| format!("{family}.{s}")))
        .collect();
    out.push("db.serverless".into());
    out
}

/// An Aurora instance class that Global Database supports.
pub(crate) const AURORA_GLOBAL_CLASS: Format = Format {
    name: "aurora-global-instance-class",
    doc: "an instance class Aurora Global Database supports: memory-optimized (db.r5 and later r \
          classes, db.x2g) or db.serverless; not the burstable db.t classes",
    check: check_global_class,
    schema: Some(|| json!({"enum": global_db_classes()})),
};

fn check_global_class(text: &str) -> Result<(), Violation> {
    let classes = global_db_classes();
    if classes.iter().any(|c| c == text) {
        return Ok(());
    }
    let families: Vec<&str> = GLOBAL_DB_FAMILIES.iter().map(|(f, _)| *f).collect();
    if text.starts_with("db.t") {
        return Err(Violation::new(format!(
            "is a burstable class (`{text}`), which Aurora Global Database does not support"
        ))
        .hint("use a memory-optimized class such as `db.r6g.large`, the smallest it supports"));
    }
    let hint = match nearest(text, classes.iter().map(String::as_str)) {
        Some(near) => format!("did you mean `{near}`?"),
        None => format!(
            "use a memory-optimized class (families {}, sizes from large) or db.serverless",
            families.join(", ")
        ),
    };
    Err(Violation::new(format!(
        "is not an instance class Aurora Global Database supports: `{text}`"
    ))
    .hint(hint))
}

/// An ACM certificate ARN (`arn:aws:acm:<region>:<account>:certificate/<id>`).
pub(crate) const CERTIFICATE_ARN: Format = Format {
    name: "acm-certificate-arn",
    doc: "an ACM certificate ARN, `arn:aws:acm:<region>:<account>:certificate/<id>`",
    check: check_certificate_arn,
    schema: Some(|| json!({"pattern": "^arn:aws:acm:[a-z0-9-]+:[0-9]{12}:certificate/.+$"})),
};

fn check_certificate_arn(text: &str) -> Result<(), Violation> {
    let parts: Vec<&str> = text.splitn(6, ':').collect();
    let ok = parts.len() == 6
        && parts[0] == "arn"
        && parts[1] == "aws"
        && parts[2] == "acm"
        && crate::regions::is_region(parts[3])
        && parts[4].len() == 12
        && parts[4].bytes().all(|b| b.is_ascii_digit())
        && parts[5]
            .strip_prefix("certificate/")
            .is_some_and(|id| !id.is_empty());
    if ok {
        return Ok(());
    }
    Err(
        Violation::new(format!("is not an ACM certificate ARN: `{text}`"))
            .hint("copy the ARN from ACM, or leave it empty to have one requested"),
    )
}

/// Constraint helpers for cloud step declarations.
pub(crate) trait CloudSpec {
    /// A rule: the regions in inputs `a` and `b` (primary and standby) differ.
    fn distinct_regions(self, a: &'static str, b: &'static str) -> Self;
}

impl CloudSpec for StepSpec {
    fn distinct_regions(self, a: &'static str, b: &'static str) -> Self {
        self.rule(
            format!("The primary and standby regions differ (`{a}`, `{b}`)."),
            &[a, b],
            move |input| {
                let (Some(x), Some(y)) = (
                    input.get(a).and_then(Value::as_str),
                    input.get(b).and_then(Value::as_str),
                ) else {
                    return Ok(());
                };
                if x != y {
                    return Ok(());
                }
                // The same sentence from every step, so one mistake is one error.
                let mut v = RuleViolation::at(
                    b,
                    format!(
                        "the primary and the standby region are both `{x}`: a disaster-recovery \
                         pair needs two regions, or an outage takes out both"
                    ),
                );
                let area = x.trim_end_matches(|c: char| c.is_ascii_digit());
                if let Some(other) = crate::regions::all().find(|r| *r != x && r.starts_with(area))
                {
                    v = v.hint(format!("give the standby another region, e.g. `{other}`"));
                } else {
                    v = v.hint("give the standby another region");
                }
                Err(v)
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aurora_classes() {
        assert!(check_global_class("db.r6g.large").is_ok());
        assert!(check_global_class("db.serverless").is_ok());
        let v = check_global_class("db.t3.medium").unwrap_err();
        assert!(v.problem.contains("burstable"), "{v}");
        let v = check_global_class("db.r6g.lrage").unwrap_err();
        assert_eq!(v.hint.as_deref(), Some("did you mean `db.r6g.large`?"));
        assert!(check_global_class("r6g.large").is_err());
    }

    #[test]
    fn vpc_blocks() {
        assert!(check_vpc_cidr("10.0.0.0/16").is_ok());
        assert!(check_vpc_cidr("10.0.0.0/19").is_ok());
        assert!(check_vpc_cidr("10.0.0.0/24").is_err());
        assert!(check_vpc_cidr("10.0.0.0/8").is_err());
        let v = check_vpc_cidr("10.1.0.1/16").unwrap_err();
        assert_eq!(v.hint.as_deref(), Some("did you mean `10.1.0.0/16`?"));
    }

    #[test]
    fn instance_types_and_certificates() {
        assert!(check_instance_type("t3.medium").is_ok());
        assert!(check_instance_type("m7i-flex.large").is_ok());
        assert!(check_instance_type("t3").is_err());
        assert!(check_instance_type("T3.medium").is_err());
        assert!(
            check_certificate_arn("arn:aws:acm:us-east-1:123456789012:certificate/abc-123").is_ok()
        );
        assert!(check_certificate_arn("arn:aws:acm:us-east-1:1234:certificate/x").is_err());
        assert!(check_certificate_arn("my-cert").is_err());
    }
}
