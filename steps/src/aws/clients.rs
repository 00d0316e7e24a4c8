//! One factory for every SDK client: per region, built once, from the `aws-config` default
//! chain (environment, shared config and credentials files, SSO, container and instance roles),
//! with the operator's `--profile` and `--endpoint-url` on top.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use std::future::Future;
use std::pin::Pin;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_sts::error::ProvideErrorMetadata;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_types::request_id::RequestId;
use tokio::sync::OnceCell;

use super::error::{Call, CallRecord, is_mutating, run_call};
use crate::backend::CloudError;

/// How the aws target reaches AWS: what the CLI flags and the environment say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwsSettings {
    /// An access key pair to use instead of the default chain: for emulators and tests only
    /// (moto takes any key). Its `Debug` never shows the secret.
    pub static_keys: Option<StaticKeys>,
    /// A named profile of `~/.aws/config` (`--profile`); `None` uses `AWS_PROFILE` or `default`.
    pub profile: Option<String>,
    /// One endpoint for every service (`--endpoint-url`, or the standard `AWS_ENDPOINT_URL`
    /// that `aws-config` reads itself): an emulator such as moto. S3 then uses path-style
    /// addressing, since an emulator on `127.0.0.1:port` has no bucket subdomains.
    pub endpoint_url: Option<String>,
}

/// An access key id and secret access key.
#[derive(Clone, PartialEq, Eq)]
pub struct StaticKeys {
    /// `AWS_ACCESS_KEY_ID`.
    pub access_key_id: String,
    /// `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: String,
}

impl std::fmt::Debug for StaticKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticKeys")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .finish()
    }
}

/// The clients of one region. Route 53 and IAM are global services: use the clients of
/// `us-east-1`, where AWS serves them ([`Clients::global`]).
#[derive(Debug, Clone)]
pub struct RegionClients {
    /// The region these clients sign for.
    pub region: String,
    pub acm: aws_sdk_acm::Client,
    pub autoscaling: aws_sdk_autoscaling::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub ec2: aws_sdk_ec2::Client,
    pub elbv2: aws_sdk_elasticloadbalancingv2::Client,
    pub events: aws_sdk_eventbridge::Client,
    pub iam: aws_sdk_iam::Client,
    pub kms: aws_sdk_kms::Client,
    pub lambda: aws_sdk_lambda::Client,
    pub rds: aws_sdk_rds::Client,
    pub route53: aws_sdk_route53::Client,
    pub s3: aws_sdk_s3::Client,
    pub sns: aws_sdk_sns::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub ssm: aws_sdk_ssm::Client,
    pub sts: aws_sdk_sts::Client,
}

impl RegionClients {
    /// Every client of one region from one loaded configuration.
    pub fn from_conf(region: &str, conf: &SdkConfig, path_style_s3: bool) -> RegionClients {
        let s3 = aws_sdk_s3::config::Builder::from(conf)
            .force_path_style(path_style_s3)
            .build();
        RegionClients {
            region: region.to_string(),
            acm: aws_sdk_acm::Client::new(conf),
            autoscaling: aws_sdk_autoscaling::Client::new(conf),
            cloudwatch: aws_sdk_cloudwatch::Client::new(conf),
            dynamodb: aws_sdk_dynamodb::Client::new(conf),
            ec2: aws_sdk_ec2::Client::new(conf),
            elbv2: aws_sdk_elasticloadbalancingv2::Client::new(conf),
            events: aws_sdk_eventbridge::Client::new(conf),
            iam: aws_sdk_iam::Client::new(conf),
            kms: aws_sdk_kms::Client::new(conf),
            lambda: aws_sdk_lambda::Client::new(conf),
            rds: aws_sdk_rds::Client::new(conf),
            route53: aws_sdk_route53::Client::new(conf),
            s3: aws_sdk_s3::Client::from_conf(s3),
            sns: aws_sdk_sns::Client::new(conf),
            sqs: aws_sdk_sqs::Client::new(conf),
            ssm: aws_sdk_ssm::Client::new(conf),
            sts: aws_sdk_sts::Client::new(conf),
        }
    }
}

/// The most calls [`Clients::calls`] keeps; beyond it the oldest tenth is forgotten.
pub const MAX_CALL_RECORDS: usize = 100_000;

/// The region whose endpoints serve the global services (IAM, Route 53) in the `aws` partition.
pub const GLOBAL_SERVICE_REGION: &str = "us-east-1";

/// One region's clients, built by the first caller that needs them.
type RegionCell = Arc<OnceCell<Arc<RegionClients>>>;

/// Builds and keeps one [`RegionClients`] per region. Cheap to clone; building a region's
/// clients loads the configuration once (credentials resolve lazily, on the first call).
#[derive(Debug, Clone, Default)]
pub struct Clients {
    settings: AwsSettings,
    regions: Arc<Mutex<HashMap<String, RegionCell>>>,
    calls: Arc<Mutex<Vec<CallRecord>>>,
}

impl Clients {
    /// A factory for these settings. Nothing is loaded or contacted until a region is asked for.
    pub fn new(settings: AwsSettings) -> Clients {
        Clients {
            settings,
            regions: Arc::default(),
            calls: Arc::default(),
        }
    }

    /// Runs one SDK call through [`run_call`]: logged at debug, its error mapped to the seam's,
    /// and recorded for [`Clients::calls`].
    ///
    /// The call runs in a box of its own: an SDK request future is several kilobytes, and
    /// held inline by every async fn up the chain it overflowed a 2 MiB thread stack in
    /// debug builds.
    pub fn call<'a, T, E>(
        &'a self,
        c: Call<'a>,
        fut: impl Future<Output = Result<T, SdkError<E, HttpResponse>>> + Send + 'a,
    ) -> Pin<Box<dyn Future<Output = Result<T, CloudError>> + Send + 'a>>
    where
        T: RequestId + Send + 'a,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        Box::pin(async move {
            let sent_at_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            let result = run_call(c, fut).await;
            {
                let mut calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
                // A daemon polls for months: keep the newest calls, not every call ever made.
                if calls.len() >= MAX_CALL_RECORDS {
                    calls.drain(..MAX_CALL_RECORDS / 10);
                }
                calls.push(CallRecord {
                    region: c.region.to_string(),
                    service: c.service,
                    operation: c.operation,
                    mutating: is_mutating(c.operation),
                    // "It does not exist" is an answer (every find of a new resource gets
                    // it), not a failure.
                    failed: result
                        .as_ref()
                        .is_err_and(|e| e.kind != crate::backend::ErrorKind::NotFound),
                    sent_at_ms,
                });
            }
            result
        })
    }

    /// Every call made through this factory so far, in order.
    pub fn calls(&self) -> Vec<CallRecord> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The settings this factory was made with.
    pub fn settings(&self) -> &AwsSettings {
        &self.settings
    }

    /// The clients of `region` (for [`GLOBAL`](crate::backend::GLOBAL), those of
    /// [`GLOBAL_SERVICE_REGION`]).
    pub async fn region(&self, region: &str) -> Arc<RegionClients> {
        let region = if region == crate::backend::GLOBAL {
            GLOBAL_SERVICE_REGION
        } else {
            region
        };
        let cell = {
            let mut map = self.regions.lock().unwrap_or_else(|e| e.into_inner());
            Arc::clone(map.entry(region.to_string()).or_default())
        };
        let settings = self.settings.clone();
        let region_name = region.to_string();
        Arc::clone(
            cell.get_or_init(|| async move {
                let mut loader = aws_config::defaults(BehaviorVersion::latest())
                    .region(Region::new(region_name.clone()));
                if let Some(p) = &settings.profile {
                    loader = loader.profile_name(p);
                }
                if let Some(u) = &settings.endpoint_url {
                    loader = loader.endpoint_url(u);
                }
                if let Some(k) = &settings.static_keys {
                    loader = loader.credentials_provider(aws_sdk_sts::config::Credentials::new(
                        k.access_key_id.clone(),
                        k.secret_access_key.clone(),
                        None,
                        None,
                        "drflow-static",
                    ));
                }
                let conf = loader.load().await;
                // `aws-config` also reads AWS_ENDPOINT_URL itself; either way an overridden
                // endpoint is an emulator, which only serves path-style S3.
                let overridden = conf.endpoint_url().is_some();
                Arc::new(RegionClients::from_conf(&region_name, &conf, overridden))
            })
            .await,
        )
    }

    /// The regions whose clients have been built so far (the regions this run has called),
    /// sorted. A global resource that can be read from any region (an Aurora global cluster)
    /// is read from the first of them that answers.
    pub fn built_regions(&self) -> Vec<String> {
        let map = self.regions.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<String> = map
            .iter()
            .filter(|(_, cell)| cell.initialized())
            .map(|(r, _)| r.clone())
            .collect();
        out.sort();
        out
    }

    /// This factory with `rc` as the clients of its region: tests hand in clients whose HTTP
    /// is mocked (aws-smithy-mocks).
    #[cfg(test)]
    pub(crate) fn with_region_clients(self, rc: RegionClients) -> Clients {
        let cell = Arc::new(OnceCell::new_with(Some(Arc::new(rc.clone()))));
        self.regions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(rc.region.clone(), cell);
        self
    }

    /// The clients of the global services' region.
    pub async fn global(&self) -> Arc<RegionClients> {
        self.region(GLOBAL_SERVICE_REGION).await
    }
}
