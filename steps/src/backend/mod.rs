//! The seam between the step library and a cloud: a small, generic resource API.
//!
//! Steps hold all provisioning logic (naming, tags, find-or-create, drift repair, ordering).
//! A backend only stores and returns resources of a [`Kind`], described by a backend-neutral JSON
//! `spec`. The `sim` backend keeps them in a persisted world; the `aws` backend (a later issue)
//! maps each `(kind, verb)` to one or a few SDK calls, so it stays a thin translation.

mod error;
mod failover;
mod identity;
mod keys;
mod kind;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use error::{CloudError, ErrorKind};
pub use failover::{
    AlarmState, AlarmStateValue, ChangeInfo, ChangeStatus, Datapoint, DnsAnswer, FailoverApi,
    GlobalClusterMember, GlobalClusterStatus, GroupCapacity, HealthCheckStatus, MetricQuery,
    ProbeResult, RecordSet, TargetHealth, not_found,
};
pub use identity::{Identity, Label, UpdateRequest};
pub use keys::{KeyClass, Normaliser, SpecKey, as_returned, strip_write_only};
pub use kind::{GLOBAL, IdStyle, Kind, NameRule, Replacement};

/// Resource tags, sorted so that comparisons and the world file are stable.
pub type Tags = BTreeMap<String, String>;

/// The future every backend call returns.
pub type CloudFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, CloudError>> + Send + 'a>>;

/// Where a resource is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceState {
    /// Being created; usable once `available`.
    Creating,
    /// Ready for use.
    Available,
    /// Being modified (e.g. a promotion); still usable.
    Modifying,
    /// Broken or unreachable (fault injection in the sim).
    Failed,
    /// Being deleted: still found, but on its way out (a NAT gateway `deleting`, a DB cluster
    /// `deleting`); `wait_deleted` waits it out.
    Deleting,
}

impl ResourceState {
    /// The snake_case name shown by `drflow sim show`.
    pub fn name(self) -> &'static str {
        match self {
            ResourceState::Creating => "creating",
            ResourceState::Available => "available",
            ResourceState::Modifying => "modifying",
            ResourceState::Failed => "failed",
            ResourceState::Deleting => "deleting",
        }
    }
}

/// One resource as a backend reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resource {
    /// Its kind.
    pub kind: Kind,
    /// Its region, or [`GLOBAL`].
    pub region: String,
    /// Its name (`Name` tag or the service's own name field), unique per kind, region and
    /// parent ([`Identity`]).
    pub name: String,
    /// The id of the resource it lives in, for kinds with a [`Kind::parent_kind`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// The service's id (`vpc-0a1b…`, a cluster identifier, a hosted zone id).
    pub id: String,
    /// Its ARN.
    pub arn: String,
    /// The configuration drflow asked for, as last applied (backend-neutral JSON object).
    pub spec: Value,
    /// Values the cloud computed: DNS names, endpoints, secret ARNs, name servers.
    #[serde(default)]
    pub attrs: serde_json::Map<String, Value>,
    /// Its tags.
    #[serde(default)]
    pub tags: Tags,
    /// Where it is in its life.
    pub state: ResourceState,
    /// Ids (or ARNs, where an id is ambiguous across regions) of resources it depends on: the
    /// cloud refuses to delete those first.
    #[serde(default)]
    pub depends_on: Vec<String>,
}

impl Resource {
    /// Where it is found.
    pub fn identity(&self) -> Identity {
        Identity {
            kind: self.kind,
            region: self.region.clone(),
            parent: self.parent.clone(),
            name: self.name.clone(),
        }
    }

    /// A computed attribute as a string, or an empty string.
    pub fn attr_str(&self, name: &str) -> &str {
        self.attrs.get(name).and_then(Value::as_str).unwrap_or("")
    }
}

/// What a step asks a backend to create.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateRequest {
    /// The kind to create.
    pub kind: Kind,
    /// The region, or [`GLOBAL`].
    pub region: String,
    /// The resource's name.
    pub name: String,
    /// The id of the resource it lives in, for kinds with a [`Kind::parent_kind`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// The full desired configuration.
    pub spec: Value,
    /// The tags to apply.
    pub tags: Tags,
    /// Ids of resources this one refers to.
    pub depends_on: Vec<String>,
}

/// A cloud the step library can provision into.
///
/// Every method is idempotent in the sense a retry needs: `create` of a name that exists fails
/// with [`ErrorKind::Conflict`] (steps find first), `delete` of an id that is gone fails with
/// [`ErrorKind::NotFound`] (steps treat that as done).
///
/// Every backend also speaks the typed [`FailoverApi`], so a step calls a failover verb on the
/// backend it already holds.
pub trait CloudBackend: FailoverApi + Send + Sync {
    /// `sim` or `aws`.
    fn target(&self) -> crate::Target;

    /// The availability zones of a region, in name order.
    fn availability_zones<'a>(&'a self, region: &'a str) -> CloudFuture<'a, Vec<String>>;

    /// The resource at this identity (kind, region, parent, name; see [`Identity`]), if any.
    /// A resource `deleting` is still found, in that state.
    fn find<'a>(&'a self, id: &'a Identity) -> CloudFuture<'a, Option<Resource>>;

    /// drflow's resources of `kind` in `region` ([`GLOBAL`] for global kinds), in creation
    /// order where the cloud keeps one: for [taggable](Kind::taggable) kinds those tagged
    /// `ManagedBy=drflow`; for kinds with a [parent](Kind::parent_kind) every child of `parent`
    /// (which they require: `InvalidInput` without it); for the other untaggable kinds (KMS
    /// aliases, dashboards, global clusters) every one.
    fn list<'a>(
        &'a self,
        region: &'a str,
        kind: Kind,
        parent: Option<&'a str>,
    ) -> CloudFuture<'a, Vec<Resource>>;

    /// Creates a resource. When one exists at its identity already: `Conflict` where the cloud
    /// refuses a second, or the one that exists where its create is idempotent (AWS's SNS
    /// CreateTopic and SQS CreateQueue answer with the existing topic or queue). A kind [named
    /// by a tag](Kind::named_by_tag) may have two of a name on AWS (nothing refuses a second VPC
    /// called `vpc-prod`), so callers find first; the sim refuses the second all the same.
    fn create<'a>(&'a self, request: &'a CreateRequest) -> CloudFuture<'a, Resource>;

    /// Changes `current` (as found) to what `request` asks: the paths in `request.drifted`
    /// (a backend calls only the APIs that change those) and the tags it names (tags not named
    /// are kept). `depends_on` is what it refers to now (a repaired reference replaces the old
    /// one). For kinds [named by a tag](Kind::named_by_tag), a `Name` tag renames the resource.
    fn update<'a>(
        &'a self,
        current: &'a Resource,
        request: &'a UpdateRequest,
    ) -> CloudFuture<'a, Resource>;

    /// Deletes `current` (as found: Route 53 deletes a record by its exact values); fails with
    /// `dependency_violation` while others depend on it, `not_found` when it is gone. A
    /// resource may stay `deleting` for a while afterwards: [`CloudBackend::wait_deleted`].
    fn delete<'a>(&'a self, current: &'a Resource) -> CloudFuture<'a, ()>;

    /// Waits until the resource is `available`, at most `timeout`, and returns it then (with
    /// the attributes that arrive late, such as a certificate's validation record). The sim
    /// moves its virtual clock; a real cloud polls on the run's clock. `timeout` errors name
    /// the resource.
    fn wait_available<'a>(
        &'a self,
        current: &'a Resource,
        timeout: Duration,
    ) -> CloudFuture<'a, Resource>;

    /// Waits until a deleted resource is gone (no longer found, not even `deleting`), at most
    /// `timeout`: what it lived in can only be deleted then.
    fn wait_deleted<'a>(&'a self, current: &'a Resource, timeout: Duration) -> CloudFuture<'a, ()>;

    /// The backend's clock in milliseconds since the Unix epoch (virtual in the sim; the
    /// failover steps time their actions with it).
    fn now_ms<'a>(&'a self) -> CloudFuture<'a, u64>;

    /// Saves what the backend keeps in memory (the sim's world); nothing to do for a real
    /// cloud. Called before each journal commit and at the end of a command.
    fn checkpoint(&self) -> Result<(), CloudError> {
        Ok(())
    }
}
