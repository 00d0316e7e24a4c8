//! Errors a backend returns, and how they become step errors.

use drflow_engine::StepError;

/// What kind of failure a backend call had. Each maps to a [`StepError`] kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The resource does not exist.
    NotFound,
    /// A resource of that name exists already.
    Conflict,
    /// Other resources still depend on the one being deleted.
    DependencyViolation,
    /// The cloud asked us to slow down.
    Throttled,
    /// The resource is not in a state that allows the call yet.
    NotReady,
    /// The region or service is unreachable (an outage, or a network error).
    Unavailable,
    /// The request itself was wrong.
    InvalidInput,
    /// The credentials are missing, invalid or expired, or they do not allow the call
    /// (`AccessDenied`, `UnauthorizedOperation`, `InvalidClientTokenId`, `ExpiredToken`).
    Denied,
    /// A wait ran out of time.
    Timeout,
    /// The backend is not part of this build.
    NotBuilt,
    /// Anything else (e.g. the sim's world file could not be written).
    Internal,
}

impl ErrorKind {
    /// The step error kind, as `retry.on` lists it.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not_found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::DependencyViolation => "dependency_violation",
            ErrorKind::Throttled => "throttled",
            ErrorKind::NotReady => "not_ready",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::Denied => "access_denied",
            ErrorKind::Timeout => "timeout",
            ErrorKind::NotBuilt => "not_built",
            ErrorKind::Internal => "internal",
        }
    }

    /// Whether the same call may succeed later.
    pub fn retryable(self) -> bool {
        matches!(
            self,
            ErrorKind::Throttled
                | ErrorKind::NotReady
                | ErrorKind::Unavailable
                | ErrorKind::Timeout
                | ErrorKind::DependencyViolation
        )
    }
}

/// A failed backend call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CloudError {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// What went wrong, naming the resource.
    pub message: String,
}

impl CloudError {
    /// A new error.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> CloudError {
        CloudError {
            kind,
            message: message.into(),
        }
    }
}

impl From<CloudError> for StepError {
    fn from(e: CloudError) -> StepError {
        StepError {
            kind: e.kind.name().to_string(),
            message: e.message,
            retryable: e.kind.retryable(),
        }
    }
}
