//! How a resource is found, and what each kind can do: the part of the seam that follows AWS's
//! own identities instead of names drflow invents.
//!
//! AWS finds every resource drflow manages by four things: its [`Kind`], its region (or
//! [`GLOBAL`](super::GLOBAL)), its parent (for kinds that live inside another resource) and its
//! name. The table of parents and names:
//!
//! | kind | parent (the parent's id) | name |
//! |---|---|---|
//! | `route` | route table id (`rtb-…`) | the destination CIDR (`0.0.0.0/0`) |
//! | `dns_record` | hosted zone id (`Z…`) | `<fqdn>. <TYPE>` or `<fqdn>. <TYPE> <SetIdentifier>` (lower case, final dot) |
//! | `sns_subscription` | topic ARN | `<protocol>:<endpoint>` (`sqs:arn:aws:sqs:…`, `email:ops@example.com`) |
//! | `scaling_policy` | Auto Scaling group name | the policy name |
//! | `listener` | load balancer ARN | the port (`443`) |
//! | every other kind | none | its `Name` tag ([`Kind::named_by_tag`]) or its name field |

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Kind, Resource, Tags};

/// Where a resource is: what `find` looks up and what `create` makes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Identity {
    /// Its kind.
    pub kind: Kind,
    /// Its region, or [`GLOBAL`](super::GLOBAL).
    pub region: String,
    /// The id of the resource it lives in, for kinds with a [`Kind::parent_kind`]; `None`
    /// otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// Its name, as the module table says.
    pub name: String,
}

impl Identity {
    /// A top-level resource (no parent).
    pub fn new(kind: Kind, region: impl Into<String>, name: impl Into<String>) -> Identity {
        Identity {
            kind,
            region: region.into(),
            parent: None,
            name: name.into(),
        }
    }

    /// A resource that lives in the resource whose id is `parent`.
    pub fn child(
        kind: Kind,
        region: impl Into<String>,
        parent: impl Into<String>,
        name: impl Into<String>,
    ) -> Identity {
        Identity {
            kind,
            region: region.into(),
            parent: Some(parent.into()),
            name: name.into(),
        }
    }
}

impl std::fmt::Display for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.parent {
            Some(p) => write!(f, "{} {} in {p} ({})", self.kind, self.name, self.region),
            None => write!(f, "{} {} ({})", self.kind, self.name, self.region),
        }
    }
}

/// What a step asks a backend to change on an existing resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpdateRequest {
    /// The whole desired spec (the compared keys; write-only keys too, for backends that must
    /// send them again).
    pub spec: Value,
    /// The spec paths that differ (`ingress`, `health_check.path`, `versioning`), from the
    /// seam's drift comparison, so a backend calls only the APIs that change them. Empty when
    /// only tags differ.
    pub drifted: Vec<String>,
    /// The desired tags (every tag drflow manages on it; tags not named are kept). A backend
    /// compares them with the resource's own.
    pub tags: Tags,
    /// Ids of resources it refers to now.
    pub depends_on: Vec<String>,
}

impl Kind {
    /// The kind of resource this kind lives in (see the module table), if any.
    pub fn parent_kind(self) -> Option<Kind> {
        match self {
            Kind::Route => Some(Kind::RouteTable),
            Kind::DnsRecord => Some(Kind::HostedZone),
            Kind::SnsSubscription => Some(Kind::SnsTopic),
            Kind::ScalingPolicy => Some(Kind::AutoScalingGroup),
            Kind::Listener => Some(Kind::LoadBalancer),
            _ => None,
        }
    }

    /// Whether AWS can tag a resource of this kind. Untaggable ones (routes, records, scaling
    /// policies, subscriptions, KMS aliases, dashboards, global clusters) are found through
    /// their parent or their name, and whether a run created one is known from the journal
    /// (the step's `resources` output), never from a tag.
    pub fn taggable(self) -> bool {
        !matches!(
            self,
            Kind::Route
                | Kind::DnsRecord
                | Kind::ScalingPolicy
                | Kind::SnsSubscription
                | Kind::KmsAlias
                | Kind::Dashboard
                | Kind::GlobalCluster
        )
    }
}

/// How a resource is named to a person: `route 0.0.0.0/0 in rtb-0a1b (eu-south-1)` for a
/// child, `vpc vpc-prod-eu (eu-south-1)` for the rest.
#[derive(Debug, Clone, Copy)]
pub struct Label<'a> {
    /// The kind's name (`route`, `vpc`).
    pub kind: &'a str,
    /// The resource's name.
    pub name: &'a str,
    /// The id of the resource it lives in, for a child kind.
    pub parent: Option<&'a str>,
    /// Its region, or [`GLOBAL`](super::GLOBAL).
    pub region: &'a str,
}

impl<'a> Label<'a> {
    /// The label of a resource as the cloud returned it.
    pub fn of(r: &'a Resource) -> Label<'a> {
        Label {
            kind: r.kind.name(),
            name: &r.name,
            parent: r.parent.as_deref(),
            region: &r.region,
        }
    }
}

impl std::fmt::Display for Label<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.parent {
            Some(p) => write!(f, "{} {} in {p} ({})", self.kind, self.name, self.region),
            None => write!(f, "{} {} ({})", self.kind, self.name, self.region),
        }
    }
}
