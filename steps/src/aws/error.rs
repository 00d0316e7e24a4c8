//! SDK errors as the seam's [`CloudError`]s, and the one wrapper every SDK call goes through: it
//! logs the call at debug (region, service, operation, request id; never a credential or a
//! value) and names region, service and operation in any error.

use std::future::Future;

use aws_sdk_sts::error::ProvideErrorMetadata;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_types::request_id::RequestId;

use crate::backend::{CloudError, ErrorKind};

/// One SDK call: where it went and what it was, as AWS names them (`ec2`, `CreateVpc`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Call<'a> {
    /// The region it was signed for.
    pub region: &'a str,
    /// The service's short name (`ec2`, `rds`, `route53`).
    pub service: &'static str,
    /// The API operation (`CreateVpc`).
    pub operation: &'static str,
}

impl<'a> Call<'a> {
    /// A call of `service`'s `operation` in `region`.
    pub fn new(region: &'a str, service: &'static str, operation: &'static str) -> Call<'a> {
        Call {
            region,
            service,
            operation,
        }
    }
}

/// One call as recorded by [`Clients::calls`](super::Clients::calls).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRecord {
    /// The region it was signed for.
    pub region: String,
    /// The service's short name.
    pub service: &'static str,
    /// The API operation.
    pub operation: &'static str,
    /// Whether it changes anything ([`is_mutating`]).
    pub mutating: bool,
    /// Whether it failed; an answer that the resource does not exist is not a failure.
    pub failed: bool,
    /// When it was sent, on the wall clock (ms since the Unix epoch): what the daemon's
    /// event-to-first-call latency is measured against.
    pub sent_at_ms: u64,
}

/// Whether an API operation changes something: every AWS operation that only reads starts with
/// `Describe`, `Get`, `List`, `Test`, `Head`, `Lookup`, `Search`, `Receive` or `Check`.
pub fn is_mutating(operation: &str) -> bool {
    const READS: &[&str] = &[
        "Describe", "Get", "List", "Test", "Head", "Lookup", "Search", "Receive", "Check",
    ];
    !READS.iter().any(|p| operation.starts_with(p))
}

/// Runs one SDK call: logs it at debug with its request id, maps its error. Called through
/// [`Clients::call`](super::Clients::call), which also records it.
pub(crate) async fn run_call<T, E>(
    c: Call<'_>,
    fut: impl Future<Output = Result<T, SdkError<E, HttpResponse>>>,
) -> Result<T, CloudError>
where
    T: RequestId,
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match fut.await {
        Ok(out) => {
            tracing::debug!(
                target: "drflow::aws",
                region = c.region,
                service = c.service,
                operation = c.operation,
                request_id = out.request_id().unwrap_or(""),
                "aws call"
            );
            Ok(out)
        }
        Err(e) => {
            let err = sdk_error(c, e);
            tracing::debug!(
                target: "drflow::aws",
                region = c.region,
                service = c.service,
                operation = c.operation,
                error = %err.message,
                "aws call failed"
            );
            Err(err)
        }
    }
}

/// The seam's error for a failed SDK call: one line naming region, service and operation, what
/// AWS said, and for credential and permission errors what to do.
pub fn sdk_error<E>(c: Call<'_>, err: SdkError<E, HttpResponse>) -> CloudError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let head = format!("{} {} in {}", c.service, c.operation, c.region);
    let (kind, detail) = match &err {
        SdkError::ServiceError(se) => {
            let e = se.err();
            let code = e.code().unwrap_or("Unknown");
            let msg = e.message().unwrap_or("");
            let status = se.raw().status().as_u16();
            let rid = e
                .meta()
                .request_id()
                .map(|r| format!(" (request id {r})"))
                .unwrap_or_default();
            (
                classify(code, status),
                format!("{code}: {msg}{rid}")
                    .trim_end_matches(": ")
                    .to_string(),
            )
        }
        SdkError::TimeoutError(_) => (ErrorKind::Unavailable, "the call timed out".to_string()),
        // No credentials anywhere in the chain fails while the request is signed, before it is
        // sent: a permission problem to fix, not an endpoint to retry.
        SdkError::DispatchFailure(d)
            if !d.is_io()
                && !d.is_timeout()
                && source_chain(&err)
                    .to_ascii_lowercase()
                    .contains("credentials") =>
        {
            (ErrorKind::Denied, source_chain(&err))
        }
        SdkError::DispatchFailure(d) => {
            let why = if d.is_io() {
                "the endpoint could not be reached (connection failed)"
            } else if d.is_timeout() {
                "the connection timed out"
            } else {
                "the request could not be sent"
            };
            (
                ErrorKind::Unavailable,
                format!("{why}: {}", source_chain(&err)),
            )
        }
        SdkError::ResponseError(_) => (
            ErrorKind::Unavailable,
            format!("the response could not be read: {}", source_chain(&err)),
        ),
        SdkError::ConstructionFailure(_) => {
            let chain = source_chain(&err);
            // No credentials at all fails while the request is built, before anything is sent.
            if chain.to_ascii_lowercase().contains("credential") {
                (ErrorKind::Denied, chain)
            } else {
                (ErrorKind::Internal, chain)
            }
        }
        _ => (ErrorKind::Internal, source_chain(&err)),
    };
    let hint = match kind {
        ErrorKind::Denied => {
            ". hint: check the credentials the aws target uses (`--profile`, AWS_PROFILE, \
             AWS_ACCESS_KEY_ID; `aws sts get-caller-identity` shows who you are) and that \
             they carry the policy `drflow policy RUNBOOK` prints; then `drflow resume`"
        }
        ErrorKind::Unavailable => {
            ". hint: check the network and `--endpoint-url`/AWS_ENDPOINT_URL; the call is \
             retried, and `drflow resume` continues once it is reachable"
        }
        _ => "",
    };
    CloudError::new(kind, format!("{head}: {detail}{hint}"))
}

/// An error and its sources, joined: the SDK's own message is often only "dispatch failure".
fn source_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        cur = s.source();
    }
    parts.join(": ")
}

/// The seam's kind for an AWS error code and HTTP status: throttling and 5xx are retryable,
/// validation and permission errors permanent, "already exists" a conflict (which steps resolve
/// by finding and adopting), "not found" a miss.
pub fn classify(code: &str, http_status: u16) -> ErrorKind {
    let c = code;
    let lower = c.to_ascii_lowercase();
    const THROTTLED: &[&str] = &[
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "PriorRequestNotComplete",
        "SlowDown",
        "Rate exceeded",
    ];
    const DENIED: &[&str] = &[
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "AuthFailure",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidAccessKeyId",
        "MissingAuthenticationToken",
        "NotAuthorized",
        "AuthorizationError",
    ];
    const DEPENDENCY: &[&str] = &[
        "DependencyViolation",
        "DeleteConflict",
        "ResourceInUse",
        "InvalidDBSubnetGroupStateFault",
        "HostedZoneNotEmpty",
        "BucketNotEmpty",
    ];
    if THROTTLED.contains(&c) {
        ErrorKind::Throttled
    } else if DENIED.contains(&c) || http_status == 403 {
        ErrorKind::Denied
    } else if DEPENDENCY.contains(&c) {
        ErrorKind::DependencyViolation
    } else if lower.contains("alreadyexists")
        || lower.contains("duplicate")
        || lower.contains("alreadyowned")
        || c == "EntityAlreadyExists"
        || c == "ResourceInUseException"
        || c == "InvalidPermission.Duplicate"
    {
        ErrorKind::Conflict
    } else if lower.contains("notfound")
        || lower.starts_with("nosuch")
        || c == "ResourceNotFoundException"
        || c == "InvalidParameterValue.NotFound"
    {
        ErrorKind::NotFound
    } else if lower.contains("state") || c == "IncorrectState" || c == "PendingVerification" {
        ErrorKind::NotReady
    } else if http_status >= 500 || c == "InternalError" || c == "ServiceUnavailable" {
        ErrorKind::Unavailable
    } else if lower.contains("invalid")
        || lower.contains("validation")
        || lower.contains("malformed")
        || lower.contains("limitexceeded")
        || http_status == 400
    {
        ErrorKind::InvalidInput
    } else {
        ErrorKind::Internal
    }
}

#[cfg(test)]
mod tests {
    /// No credentials at all (no keys, no profile, no role): one `access_denied` line with
    /// what to do, not "unavailable" and retried as if the network were down.
    #[tokio::test]
    async fn no_credentials_anywhere_is_denied_with_the_credentials_hint() {
        use aws_credential_types::provider::error::CredentialsError;
        use aws_credential_types::provider::future;
        use aws_sdk_sts::config::{BehaviorVersion, ProvideCredentials, Region};

        #[derive(Debug)]
        struct Nothing;
        impl ProvideCredentials for Nothing {
            fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
            where
                Self: 'a,
            {
                future::ProvideCredentials::ready(Err(CredentialsError::not_loaded(
                    "no providers in chain provided credentials",
                )))
            }
        }
        let conf = aws_sdk_sts::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("eu-south-1"))
            // Nothing listens there; the request never gets that far.
            .endpoint_url("http://127.0.0.1:9")
            .credentials_provider(Nothing)
            .build();
        let client = aws_sdk_sts::Client::from_conf(conf);
        let e = run_call(
            Call::new("eu-south-1", "sts", "GetCallerIdentity"),
            client.get_caller_identity().send(),
        )
        .await
        .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Denied, "{}", e.message);
        assert!(
            e.message
                .starts_with("sts GetCallerIdentity in eu-south-1: "),
            "{}",
            e.message
        );
        assert!(e.message.contains("credentials"), "{}", e.message);
        assert!(!e.message.contains("endpoint-url"), "{}", e.message);
    }

    use super::*;

    #[test]
    fn codes_map_to_the_seams_kinds() {
        assert_eq!(classify("Throttling", 400), ErrorKind::Throttled);
        assert_eq!(classify("RequestLimitExceeded", 503), ErrorKind::Throttled);
        assert_eq!(classify("InternalFailure", 500), ErrorKind::Unavailable);
        assert_eq!(classify("AccessDenied", 403), ErrorKind::Denied);
        assert_eq!(classify("UnauthorizedOperation", 400), ErrorKind::Denied);
        assert_eq!(classify("InvalidClientTokenId", 403), ErrorKind::Denied);
        assert_eq!(
            classify("DependencyViolation", 400),
            ErrorKind::DependencyViolation
        );
        assert_eq!(classify("EntityAlreadyExists", 409), ErrorKind::Conflict);
        assert_eq!(
            classify("DBClusterAlreadyExistsFault", 400),
            ErrorKind::Conflict
        );
        assert_eq!(
            classify("BucketAlreadyOwnedByYou", 409),
            ErrorKind::Conflict
        );
        assert_eq!(classify("InvalidVpcID.NotFound", 400), ErrorKind::NotFound);
        assert_eq!(classify("NoSuchEntity", 404), ErrorKind::NotFound);
        assert_eq!(classify("DBClusterNotFoundFault", 404), ErrorKind::NotFound);
        assert_eq!(
            classify("InvalidDBClusterStateFault", 400),
            ErrorKind::NotReady
        );
        assert_eq!(classify("ValidationError", 400), ErrorKind::InvalidInput);
        assert_eq!(
            classify("InvalidParameterValue", 400),
            ErrorKind::InvalidInput
        );
        assert!(classify("Throttling", 400).retryable());
        assert!(!classify("AccessDenied", 403).retryable());
        assert!(!classify("ValidationError", 400).retryable());
    }
}
