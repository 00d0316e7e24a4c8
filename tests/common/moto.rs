#![allow(dead_code)]
//! The moto emulator for the binary's `--target aws` tests (the steps crate has the same helper
//! for its own tests, `drflow_steps::aws::testing`, which integration tests cannot see).
//!
//! `.ci/run` starts `moto_server` on a free port of 127.0.0.1 and exports its address as
//! `DRFLOW_MOTO_ENDPOINT`. Without it a test fails in CI (`CI` set) and skips loudly elsewhere.
//! moto is shared by tests running in parallel: name everything with [`unique`].

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

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

/// A moto server of a test's own (`tests/moto_server.py`), killed when dropped.
pub struct OwnMoto {
    child: Child,
    /// Its endpoint URL.
    pub endpoint: String,
}

impl Drop for OwnMoto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `tests/moto_server.py` on a free port of 127.0.0.1 with the environment `envs`, and
/// returns once it listens (it says so on stderr: no polling). `None` (skipped loudly) where
/// the shared moto is not configured either, as [`moto`] says.
pub fn own_moto(envs: &[(&str, &str)]) -> Option<OwnMoto> {
    // Runs where the shared moto does: .ci/run has installed it.
    moto()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let mut child = Command::new("python3")
        .args([
            "tests/moto_server.py",
            "-H",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .envs(envs.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tests/moto_server.py starts (pip install moto[server])");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let mut seen = Vec::new();
    loop {
        match lines.next() {
            Some(Ok(line)) => {
                let ready = line.contains("Running on");
                seen.push(line);
                if ready {
                    break;
                }
            }
            _ => panic!(
                "moto.server stopped before it listened:\n{}",
                seen.join("\n")
            ),
        }
    }
    // Keep reading its log so that it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines.by_ref() {});
    Some(OwnMoto {
        child,
        endpoint: format!("http://127.0.0.1:{port}"),
    })
}
