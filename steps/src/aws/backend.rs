//! [`CloudBackend`] for [`AwsBackend`]: each verb is the dispatcher's (`super::{find, list,
//! create, update, delete}`, one file per service); the waits poll `find` on the run's clock.

use std::time::Duration;

use super::{AwsBackend, Call};
use crate::Target;
use crate::backend::{
    CloudBackend, CloudError, CloudFuture, CreateRequest, ErrorKind, Identity, Kind, Resource,
    ResourceState, UpdateRequest,
};

/// The first pause between two polls of a wait; each next one is half as long again, up to
/// [`POLL_MAX`].
const POLL_FIRST: Duration = Duration::from_secs(2);
/// The longest pause between two polls of a wait.
const POLL_MAX: Duration = Duration::from_secs(20);

impl AwsBackend {
    /// Polls `find` until `done` says the resource reached what is waited for (`Some(result)`),
    /// or `timeout` passes on the run's clock (tokio's).
    async fn poll<T>(
        &self,
        current: &Resource,
        timeout: Duration,
        what: &str,
        done: impl Fn(Option<Resource>) -> Result<Option<T>, CloudError>,
    ) -> Result<T, CloudError> {
        let id = current.identity();
        let deadline = tokio::time::Instant::now() + timeout;
        let mut pause = POLL_FIRST;
        loop {
            if let Some(v) = done(super::find(&self.clients, &id).await?)? {
                return Ok(v);
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Err(CloudError::new(
                    ErrorKind::Timeout,
                    format!("{id} was not {what} after {}s", timeout.as_secs()),
                ));
            }
            tokio::time::sleep(pause.min(deadline - now)).await;
            pause = (pause * 3 / 2).min(POLL_MAX);
        }
    }
}

impl CloudBackend for AwsBackend {
    fn target(&self) -> Target {
        Target::Aws
    }

    fn availability_zones<'a>(&'a self, region: &'a str) -> CloudFuture<'a, Vec<String>> {
        Box::pin(async move {
            let rc = self.clients.region(region).await;
            let out = self
                .clients
                .call(
                    Call::new(region, "ec2", "DescribeAvailabilityZones"),
                    rc.ec2
                        .describe_availability_zones()
                        .filters(
                            aws_sdk_ec2::types::Filter::builder()
                                .name("zone-type")
                                .values("availability-zone")
                                .build(),
                        )
                        .send(),
                )
                .await?;
            let mut zones: Vec<String> = out
                .availability_zones()
                .iter()
                .filter_map(|z| z.zone_name().map(str::to_string))
                .collect();
            zones.sort();
            Ok(zones)
        })
    }

    fn find<'a>(&'a self, id: &'a Identity) -> CloudFuture<'a, Option<Resource>> {
        Box::pin(super::find(&self.clients, id))
    }

    fn list<'a>(
        &'a self,
        region: &'a str,
        kind: Kind,
        parent: Option<&'a str>,
    ) -> CloudFuture<'a, Vec<Resource>> {
        Box::pin(super::list(&self.clients, region, kind, parent))
    }

    fn create<'a>(&'a self, request: &'a CreateRequest) -> CloudFuture<'a, Resource> {
        Box::pin(super::create(&self.clients, request))
    }

    fn update<'a>(
        &'a self,
        current: &'a Resource,
        request: &'a UpdateRequest,
    ) -> CloudFuture<'a, Resource> {
        Box::pin(super::update(&self.clients, current, request))
    }

    fn delete<'a>(&'a self, current: &'a Resource) -> CloudFuture<'a, ()> {
        Box::pin(super::delete(&self.clients, current))
    }

    fn wait_available<'a>(
        &'a self,
        current: &'a Resource,
        timeout: Duration,
    ) -> CloudFuture<'a, Resource> {
        Box::pin(self.poll(current, timeout, "available", move |found| {
            let Some(r) = found else {
                return Err(CloudError::new(
                    ErrorKind::NotFound,
                    format!("{} is gone while waiting for it", current.identity()),
                ));
            };
            match r.state {
                ResourceState::Available | ResourceState::Modifying => Ok(Some(r)),
                ResourceState::Creating => Ok(None),
                ResourceState::Failed | ResourceState::Deleting => Err(CloudError::new(
                    ErrorKind::Unavailable,
                    format!("{} is {}", r.identity(), r.state.name()),
                )),
            }
        }))
    }

    fn wait_deleted<'a>(&'a self, current: &'a Resource, timeout: Duration) -> CloudFuture<'a, ()> {
        Box::pin(self.poll(current, timeout, "deleted", |found| {
            // Gone, or replaced under the same identity by another one already.
            Ok(match found {
                None => Some(()),
                Some(r) if r.id != current.id => Some(()),
                Some(_) => None,
            })
        }))
    }

    fn now_ms<'a>(&'a self) -> CloudFuture<'a, u64> {
        Box::pin(async {
            let since = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            Ok(since.as_millis() as u64)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::{AwsSettings, StaticKeys};

    fn backend() -> AwsBackend {
        AwsBackend::new(AwsSettings {
            static_keys: Some(StaticKeys {
                access_key_id: "testing".into(),
                secret_access_key: "testing".into(),
            }),
            // Nothing listens here: a poll that called out would fail, not hang.
            endpoint_url: Some("http://127.0.0.1:9".into()),
            profile: None,
        })
    }

    #[test]
    fn the_target_is_aws() {
        assert_eq!(backend().target(), Target::Aws);
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_that_cannot_read_the_resource_says_why() {
        let b = backend();
        let r = Resource {
            kind: Kind::Vpc,
            region: "eu-south-1".into(),
            name: "vpc-x".into(),
            parent: None,
            id: "vpc-1".into(),
            arn: String::new(),
            spec: serde_json::json!({}),
            attrs: Default::default(),
            tags: Default::default(),
            state: ResourceState::Creating,
            depends_on: vec![],
        };
        let e = b
            .wait_available(&r, Duration::from_secs(60))
            .await
            .unwrap_err();
        // Until ec2's mapping lands its verbs say they are not built; afterwards the closed
        // port is unreachable. Either way the wait stops at once, with the cause.
        assert!(
            matches!(e.kind, ErrorKind::NotBuilt | ErrorKind::Unavailable),
            "{e:?}"
        );
    }
}
