//! The `aws` backend: the seam's verbs and the typed failover actions through aws-sdk-rust.
//!
//! Built so far: the client factory ([`clients`]) and the error mapping ([`error`]); the typed
//! failover actions answer `not_built`. The mapping of the seam's verbs is in progress: each
//! service's kinds go in one file, with the same five verbs (`find`, `list`, `create`, `update`,
//! `delete`), each a thin mapping to one or a few SDK calls:
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

mod failover;

pub use clients::{AwsSettings, Clients, RegionClients, StaticKeys};
pub use error::{Call, CallRecord, classify, is_mutating, sdk_error};

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

// The five verbs (find, list, create, update, delete) of each service's kinds arrive with their
// mapping, one file per service as the table above says.
