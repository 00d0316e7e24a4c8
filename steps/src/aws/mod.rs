//! The `aws` backend: the seam's verbs and the typed failover actions through aws-sdk-rust.
//!
//! Each service's kinds live in one file, with the same five verbs (`find`, `list`, `create`,
//! `update`, `delete`), each a thin mapping to one or a few SDK calls:
//!
//! | file | kinds |
//! |---|---|
//! | `ec2.rs` | vpc, subnet, internet_gateway, elastic_ip, nat_gateway, route_table, route, vpc_peering, security_group, launch_template |
//! | `kms.rs`, `iam.rs`, `s3.rs`, `dynamodb.rs`, `sqs.rs`, `sns.rs` | kms_key, kms_alias; iam_role, instance_profile; s3_bucket; dynamodb_table; sqs_queue; sns_topic, sns_subscription |
//! | `rds.rs` | db_cluster_parameter_group, db_subnet_group, global_cluster, db_cluster, db_instance |
//! | `elbv2.rs`, `autoscaling.rs` | load_balancer, target_group, listener; autoscaling_group, scaling_policy |
//! | `route53.rs`, `acm.rs` | hosted_zone, dns_record, health_check; certificate |
//! | `cloudwatch.rs`, `events.rs`, `lambda.rs` | metric_alarm, composite_alarm, dashboard; event_rule; lambda_function |
//! | `failover.rs` | the typed [`FailoverApi`](crate::backend::FailoverApi) actions |
//!
//! What every file follows:
//! - `find` returns the spec *as AWS returns it*, in the shape the steps write (the same keys),
//!   so drift compares the cloud with the request. Write-only keys (`force_destroy`,
//!   `skip_final_snapshot`, a Lambda's code source) are absent; wire encodings are decoded
//!   (comma-joined lists split, URL-encoded policies parsed to JSON objects).
//! - Taggable kinds are named by their `Name` tag or name field and carry their tags; a kind
//!   AWS cannot tag is found through its parent or its own name ([`Identity`]).
//! - `list(region, kind, parent)` returns drflow's resources of a kind: for taggable kinds those
//!   tagged `ManagedBy=drflow`, for child kinds every child of `parent`.
//! - `update` calls only the APIs that change `req.drifted` (and the tag APIs when tags differ).
//! - `delete` takes the resource as found (Route 53 deletes a record by its exact values).
//! - Every SDK call goes through [`Clients::call`], which logs it, records it and maps its error:
//!   `c.call(Call::new(region, "ec2", "CreateVpc"), rc.ec2.create_vpc()...send()).await?`.

pub mod clients;
pub mod error;

mod acm;
mod autoscaling;
mod backend;
mod cloudwatch;
mod coordination;
mod data_common;
mod dynamodb;
mod ec2;
mod elbv2;
mod events;
mod failover;
mod iam;
mod kms;
mod lambda;
mod queue;
mod rds;
mod route53;
mod s3;
mod sns;
mod specs;
mod sqs;
#[cfg(test)]
pub(crate) mod testing;

pub use clients::{AwsSettings, Clients, RegionClients, StaticKeys};
pub use coordination::{DynamoDbLeaseStore, DynamoDbLog};

/// Attributes moto (5.2.5) accepts and does not store, by kind and spec path: a find on moto
/// never returns them, so every run there finds them drifted and sets them again. AWS stores
/// them (docs/aws.md, "Testing against moto"). The moto tests allow drift at exactly these.
pub const MOTO_DOES_NOT_STORE: &[(Kind, &str)] = &[
    (Kind::DbInstance, "performance_insights_enabled"),
    (Kind::DbInstance, "performance_insights_kms_key_id"),
    (Kind::AutoScalingGroup, "default_instance_warmup"),
    // moto keeps the rule but answers delete_marker_replication `Disabled` and drops
    // source_selection_criteria.
    (Kind::S3Bucket, "replication.rules"),
];
pub use error::{Call, CallRecord, classify, is_mutating, sdk_error};
pub use queue::{QueueMessage, delete as delete_message, receive as receive_messages};

/// The aws target: the seam's verbs and the typed failover actions on real AWS (or an emulator
/// behind `endpoint_url`). Nothing is contacted until a verb is called.
#[derive(Debug, Clone)]
pub struct AwsBackend {
    clients: Clients,
}

impl AwsBackend {
    /// A backend for these settings.
    pub fn new(settings: AwsSettings) -> AwsBackend {
        AwsBackend {
            clients: Clients::new(settings),
        }
    }

    /// Its client factory (and the record of its calls).
    pub fn clients(&self) -> &Clients {
        &self.clients
    }
}

use crate::backend::{
    CloudError, CreateRequest, ErrorKind, Identity, Kind, Resource, UpdateRequest,
};

/// The five verbs of one kind, dispatched to the file of its service.
pub(crate) async fn find(c: &Clients, id: &Identity) -> Result<Option<Resource>, CloudError> {
    match id.kind.service() {
        "acm" => acm::find(c, id).await,
        "autoscaling" => autoscaling::find(c, id).await,
        "cloudwatch" => cloudwatch::find(c, id).await,
        "dynamodb" => dynamodb::find(c, id).await,
        "ec2" => ec2::find(c, id).await,
        "elasticloadbalancing" => elbv2::find(c, id).await,
        "events" => events::find(c, id).await,
        "iam" => iam::find(c, id).await,
        "kms" => kms::find(c, id).await,
        "lambda" => lambda::find(c, id).await,
        "rds" => rds::find(c, id).await,
        "route53" => route53::find(c, id).await,
        "s3" => s3::find(c, id).await,
        "sns" => sns::find(c, id).await,
        "sqs" => sqs::find(c, id).await,
        other => Err(not_built(id.kind, other)),
    }
}

/// drflow's resources of `kind` in `region` (children of `parent` for child kinds).
pub(crate) async fn list(
    c: &Clients,
    region: &str,
    kind: Kind,
    parent: Option<&str>,
) -> Result<Vec<Resource>, CloudError> {
    match kind.service() {
        "acm" => acm::list(c, region, kind, parent).await,
        "autoscaling" => autoscaling::list(c, region, kind, parent).await,
        "cloudwatch" => cloudwatch::list(c, region, kind, parent).await,
        "dynamodb" => dynamodb::list(c, region, kind, parent).await,
        "ec2" => ec2::list(c, region, kind, parent).await,
        "elasticloadbalancing" => elbv2::list(c, region, kind, parent).await,
        "events" => events::list(c, region, kind, parent).await,
        "iam" => iam::list(c, region, kind, parent).await,
        "kms" => kms::list(c, region, kind, parent).await,
        "lambda" => lambda::list(c, region, kind, parent).await,
        "rds" => rds::list(c, region, kind, parent).await,
        "route53" => route53::list(c, region, kind, parent).await,
        "s3" => s3::list(c, region, kind, parent).await,
        "sns" => sns::list(c, region, kind, parent).await,
        "sqs" => sqs::list(c, region, kind, parent).await,
        other => Err(not_built(kind, other)),
    }
}

/// Creates a resource; `Conflict` when it exists already.
pub(crate) async fn create(c: &Clients, req: &CreateRequest) -> Result<Resource, CloudError> {
    match req.kind.service() {
        "acm" => acm::create(c, req).await,
        "autoscaling" => autoscaling::create(c, req).await,
        "cloudwatch" => cloudwatch::create(c, req).await,
        "dynamodb" => dynamodb::create(c, req).await,
        "ec2" => ec2::create(c, req).await,
        "elasticloadbalancing" => elbv2::create(c, req).await,
        "events" => events::create(c, req).await,
        "iam" => iam::create(c, req).await,
        "kms" => kms::create(c, req).await,
        "lambda" => lambda::create(c, req).await,
        "rds" => rds::create(c, req).await,
        "route53" => route53::create(c, req).await,
        "s3" => s3::create(c, req).await,
        "sns" => sns::create(c, req).await,
        "sqs" => sqs::create(c, req).await,
        other => Err(not_built(req.kind, other)),
    }
}

/// Changes the drifted paths and tags of a resource as found.
pub(crate) async fn update(
    c: &Clients,
    current: &Resource,
    req: &UpdateRequest,
) -> Result<Resource, CloudError> {
    match current.kind.service() {
        "acm" => acm::update(c, current, req).await,
        "autoscaling" => autoscaling::update(c, current, req).await,
        "cloudwatch" => cloudwatch::update(c, current, req).await,
        "dynamodb" => dynamodb::update(c, current, req).await,
        "ec2" => ec2::update(c, current, req).await,
        "elasticloadbalancing" => elbv2::update(c, current, req).await,
        "events" => events::update(c, current, req).await,
        "iam" => iam::update(c, current, req).await,
        "kms" => kms::update(c, current, req).await,
        "lambda" => lambda::update(c, current, req).await,
        "rds" => rds::update(c, current, req).await,
        "route53" => route53::update(c, current, req).await,
        "s3" => s3::update(c, current, req).await,
        "sns" => sns::update(c, current, req).await,
        "sqs" => sqs::update(c, current, req).await,
        other => Err(not_built(current.kind, other)),
    }
}

/// Deletes a resource as found; `NotFound` when it is gone already.
pub(crate) async fn delete(c: &Clients, current: &Resource) -> Result<(), CloudError> {
    match current.kind.service() {
        "acm" => acm::delete(c, current).await,
        "autoscaling" => autoscaling::delete(c, current).await,
        "cloudwatch" => cloudwatch::delete(c, current).await,
        "dynamodb" => dynamodb::delete(c, current).await,
        "ec2" => ec2::delete(c, current).await,
        "elasticloadbalancing" => elbv2::delete(c, current).await,
        "events" => events::delete(c, current).await,
        "iam" => iam::delete(c, current).await,
        "kms" => kms::delete(c, current).await,
        "lambda" => lambda::delete(c, current).await,
        "rds" => rds::delete(c, current).await,
        "route53" => route53::delete(c, current).await,
        "s3" => s3::delete(c, current).await,
        "sns" => sns::delete(c, current).await,
        "sqs" => sqs::delete(c, current).await,
        other => Err(not_built(current.kind, other)),
    }
}

fn not_built(kind: Kind, service: &str) -> CloudError {
    CloudError::new(
        ErrorKind::NotBuilt,
        format!("the aws target has no mapping for {kind} ({service}) yet"),
    )
}
