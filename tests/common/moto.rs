//! The moto emulator for the binary's `--target aws` tests (the steps crate has the same helper
//! for its own tests, `drflow_steps::aws::testing`, which integration tests cannot see).
//!
//! `.ci/run` starts `moto_server` on a free port of 127.0.0.1 and exports its address as
//! `DRFLOW_MOTO_ENDPOINT`. Without it a test fails in CI (`CI` set) and skips loudly elsewhere.
//! moto is shared by tests running in parallel: name everything with [`unique`].

use std::path::Path;
use std::process::Command;

use drflow_steps::aws::{AwsSettings, Clients, StaticKeys};

/// The environment variable holding moto's endpoint, e.g. `http://127.0.0.1:5106`.
pub const MOTO_ENDPOINT_ENV: &str = "DRFLOW_MOTO_ENDPOINT";

/// A running moto server.
#[derive(Debug, Clone)]
pub struct Moto {
    /// Its endpoint URL.
    pub endpoint: String,
}

/// The moto named by `DRFLOW_MOTO_ENDPOINT`, or `None` (after a loud skip message) when the
/// variable is unset outside CI. Panics when it is unset and `CI` is set.
pub fn moto() -> Option<Moto> {
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
    /// A client factory signed with moto's dummy keys, every service on moto's endpoint (to read
    /// back what a `drflow --target aws` run made).
    pub fn clients(&self) -> Clients {
        Clients::new(AwsSettings {
            static_keys: Some(testing_keys()),
            endpoint_url: Some(self.endpoint.clone()),
            profile: None,
        })
    }
}

/// `drflow ARGS… --target aws --endpoint-url ENDPOINT` in the repository, its state in
/// `state`, signed with `keys`, and nothing of the machine's own AWS set-up: no shared config
/// or credentials file, no profile or session token, no instance metadata, no
/// `AWS_ENDPOINT_URL` or `DRFLOW_TARGET`. The caller adds what its case needs and runs it.
pub fn drflow_aws(endpoint: &str, state: &Path, keys: &StaticKeys, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_drflow"));
    c.args(args)
        .args(["--target", "aws", "--endpoint-url", endpoint])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("DRFLOW_STATE_DIR", state)
        .env("NO_COLOR", "1")
        .env("AWS_ACCESS_KEY_ID", &keys.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &keys.secret_access_key)
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("DRFLOW_TARGET");
    c
}

/// The dummy key pair moto accepts.
pub fn testing_keys() -> StaticKeys {
    StaticKeys {
        access_key_id: "testing".to_string(),
        secret_access_key: "testing".to_string(),
    }
}

/// `prefix-` followed by 8 random lowercase hex digits, for names no other test uses.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{:08x}", rand::random::<u32>())
}
