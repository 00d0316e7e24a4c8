//! The moto emulator for the aws backend's tests: where it is, and clients that talk to it.
//!
//! `.ci/run` starts `moto_server` on a free port of 127.0.0.1 and exports its address as
//! `DRFLOW_MOTO_ENDPOINT`. A test calls [`moto`] first: without the variable it fails in CI
//! (`CI` set), where moto's absence means the set-up broke, and elsewhere says loudly that it
//! skipped, so a developer without moto still gets a green `cargo test` that does not lie about
//! what it checked. moto is shared by tests running in parallel: name resources with [`unique`].

use super::clients::{AwsSettings, Clients, StaticKeys};
use crate::backend::Kind;

/// The environment variable holding moto's endpoint, e.g. `http://127.0.0.1:5106`.
pub(crate) const MOTO_ENDPOINT_ENV: &str = "DRFLOW_MOTO_ENDPOINT";

/// A running moto server.
#[derive(Debug, Clone)]
pub(crate) struct Moto {
    /// Its endpoint URL.
    pub endpoint: String,
}

/// The moto named by `DRFLOW_MOTO_ENDPOINT`, or `None` (after a loud skip message) when the
/// variable is unset outside CI.
///
/// Panics when the variable is unset and `CI` is set: CI must never pass by skipping.
pub(crate) fn moto() -> Option<Moto> {
    match std::env::var(MOTO_ENDPOINT_ENV) {
        Ok(ep) if !ep.trim().is_empty() => Some(Moto {
            endpoint: ep.trim().trim_end_matches('/').to_string(),
        }),
        _ if std::env::var_os("CI").is_some() => {
            panic!("moto is required in CI: {MOTO_ENDPOINT_ENV} is not set")
        }
        _ => {
            eprintln!(
                "SKIPPED (no moto): set {MOTO_ENDPOINT_ENV}=http://127.0.0.1:PORT to a running \
                 `moto_server -H 127.0.0.1 -p PORT` to run this test"
            );
            None
        }
    }
}

impl Moto {
    /// A client factory signed with moto's dummy keys, every service on moto's endpoint.
    pub fn clients(&self) -> Clients {
        Clients::new(self.settings())
    }

    /// The settings [`Moto::clients`] uses.
    pub fn settings(&self) -> AwsSettings {
        AwsSettings {
            static_keys: Some(testing_keys()),
            endpoint_url: Some(self.endpoint.clone()),
            profile: None,
        }
    }
}

/// Clients for the moto at `DRFLOW_MOTO_ENDPOINT`, or `None` after the loud skip of [`moto`].
pub(crate) fn moto_clients() -> Option<Clients> {
    moto().map(|m| m.clients())
}

/// The dummy key pair moto accepts (moto ignores signatures, but the SDK signs every request).
pub(crate) fn testing_keys() -> StaticKeys {
    StaticKeys {
        access_key_id: "testing".to_string(),
        secret_access_key: "testing".to_string(),
    }
}

/// `prefix-` followed by 8 random lowercase hex digits: a name no other test (or earlier run
/// against the same moto) uses. Lowercase letters and digits suit every AWS naming rule that
/// drflow's kinds meet (S3 buckets, RDS identifiers, ALB names).
pub(crate) fn unique(prefix: &str) -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    // RandomState is seeded randomly per process; the counter separates calls within one.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    format!("{prefix}-{:08x}", h.finish() as u32)
}

pub(crate) use super::MOTO_DOES_NOT_STORE;

/// `drift` without the paths moto does not store for `kind`.
pub(crate) fn beyond_moto_gaps(kind: Kind, drift: Vec<String>) -> Vec<String> {
    drift
        .into_iter()
        .filter(|p| !MOTO_DOES_NOT_STORE.contains(&(kind, p.as_str())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_names_differ_and_are_lowercase() {
        let a = unique("drflow-t");
        let b = unique("drflow-t");
        assert_ne!(a, b);
        assert!(a.starts_with("drflow-t-") && a.len() == "drflow-t-".len() + 8);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        );
    }

    /// The helper's clients reach moto: STS GetCallerIdentity answers with moto's account.
    #[tokio::test]
    async fn clients_reach_moto() {
        let Some(moto) = moto() else { return };
        let c = moto.clients();
        let rc = c.region("eu-south-1").await;
        let out = c
            .call(
                crate::aws::Call::new("eu-south-1", "sts", "GetCallerIdentity"),
                rc.sts.get_caller_identity().send(),
            )
            .await
            .expect("moto answers GetCallerIdentity");
        assert!(out.account().is_some_and(|a| !a.is_empty()));
        let calls = c.calls();
        assert_eq!(calls.len(), 1);
        assert_eq!(
            (calls[0].service, calls[0].operation, calls[0].mutating),
            ("sts", "GetCallerIdentity", false)
        );
    }
}
