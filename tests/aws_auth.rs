//! Credentials and permissions on `--target aws`, against a moto of its own that checks them
//! (moto's `INITIAL_NO_AUTH_ACTION_COUNT`: after that many calls, every request must be signed
//! with an IAM user's access key and is authorised by that user's policies).
//!
//! One provision goes through what an operator meets: wrong credentials, then a user denied
//! `ec2:CreateVpc`. Each failure is one clear line naming region, service and operation, exits
//! non-zero and leaves the journal whole, and `drflow resume` takes up the same run.
//!
//! Needs moto (`tests/moto_server.py`, installed by `.ci/run`). Like every moto test it runs when
//! `DRFLOW_MOTO_ENDPOINT` is set, fails in CI without it, and skips loudly elsewhere.

use std::path::Path;
use std::process::Output;

use drflow_steps::aws::{AwsSettings, Clients, StaticKeys};

#[path = "common/moto.rs"]
mod moto;

/// The calls the test makes before moto starts checking: a user, its key and two policies.
const SETUP_CALLS: usize = 4;

/// moto with authentication after [`SETUP_CALLS`] calls.
fn start_moto() -> Option<moto::OwnMoto> {
    moto::own_moto(&[("INITIAL_NO_AUTH_ACTION_COUNT", &SETUP_CALLS.to_string())])
}

/// An IAM user with an access key and its inline policies, made through moto's IAM.
async fn user(c: &Clients, name: &str, policies: &[(&str, serde_json::Value)]) -> StaticKeys {
    let iam = &c.region(drflow_steps::backend::GLOBAL).await.iam;
    iam.create_user()
        .user_name(name)
        .send()
        .await
        .expect("CreateUser");
    let key = iam
        .create_access_key()
        .user_name(name)
        .send()
        .await
        .expect("CreateAccessKey");
    let key = key.access_key().expect("a key");
    for (policy, doc) in policies {
        iam.put_user_policy()
            .user_name(name)
            .policy_name(*policy)
            .policy_document(doc.to_string())
            .send()
            .await
            .expect("PutUserPolicy");
    }
    StaticKeys {
        access_key_id: key.access_key_id().to_string(),
        secret_access_key: key.secret_access_key().to_string(),
    }
}

fn clients(endpoint: &str, keys: StaticKeys) -> Clients {
    Clients::new(AwsSettings {
        static_keys: Some(keys),
        endpoint_url: Some(endpoint.to_string()),
        profile: None,
    })
}

fn statement(effect: &str, action: &str) -> serde_json::Value {
    serde_json::json!({"Version": "2012-10-17", "Statement": [
        {"Effect": effect, "Action": action, "Resource": "*"}
    ]})
}

/// `drflow ARGS… --target aws --endpoint-url EP` signed with `keys`, nothing of the machine's
/// own AWS set-up read.
fn drflow(endpoint: &str, state: &Path, keys: &StaticKeys, args: &[&str]) -> Output {
    moto::drflow_aws(endpoint, state, keys, args)
        .output()
        .expect("drflow runs")
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The stderr line that says `<service> <Operation> in <region>: …` with `what` in it.
fn error_line(o: &Output, what: &str) -> String {
    String::from_utf8_lossy(&o.stderr)
        .lines()
        .find(|l| l.contains(what) && l.contains(" in "))
        .unwrap_or_else(|| panic!("no line with {what:?}:\n{}", text(o)))
        .to_string()
}

/// The run's status as `drflow show RUN --output json` reads it from the journal.
fn status(endpoint: &str, state: &Path, keys: &StaticKeys, run: &str) -> String {
    let out = drflow(endpoint, state, keys, &["show", run, "--output", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    doc["run"]["status"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn bad_credentials_then_a_denied_permission_fail_clearly_and_resume_finishes_the_run() {
    let Some(moto) = start_moto() else { return };
    let ep = moto.endpoint.as_str();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    // The first calls are not checked: they make the operator.
    let setup = clients(
        ep,
        StaticKeys {
            access_key_id: "setup".into(),
            secret_access_key: "setup".into(),
        },
    );
    let operator = rt.block_on(user(
        &setup,
        "operator",
        &[
            ("all", statement("Allow", "*")),
            ("no-vpcs", statement("Deny", "ec2:CreateVpc")),
        ],
    ));
    let state = tempfile::tempdir().expect("dir");
    let state = state.path();
    let provision = [
        "run",
        "runbooks/provision.yaml",
        "--params-file",
        "runbooks/params/eu.yaml",
        "--output",
        "json",
    ];

    // Keys moto does not know.
    let wrong = StaticKeys {
        access_key_id: "AKIAWRONGWRONGWRONG0".into(),
        secret_access_key: "wrong".into(),
    };
    let first = drflow(ep, state, &wrong, &provision);
    assert_ne!(first.status.code(), Some(0), "{}", text(&first));
    assert_ne!(
        first.status.code(),
        Some(2),
        "the input was valid: {}",
        text(&first)
    );
    // Which call meets them first depends on which step starts first; each says the same.
    let line = error_line(&first, "(access_denied)");
    assert!(
        ["eu-south-1:", "eu-central-1:", "us-east-1:"]
            .iter()
            .any(|r| line.contains(r)),
        "the line names the region: {line}"
    );
    assert!(
        line.contains("hint: check the credentials the aws target uses"),
        "{line}"
    );
    let report: serde_json::Value = serde_json::from_slice(&first.stdout).expect("a json report");
    let run = report["run_id"].as_str().expect("run_id").to_string();
    assert_eq!(status(ep, state, &wrong, &run), "failed");

    // The operator's own keys, but no permission to create a VPC.
    let resume = ["resume", run.as_str(), "--output", "json"];
    let second = drflow(ep, state, &operator, &resume);
    assert_ne!(second.status.code(), Some(0), "{}", text(&second));
    let line = error_line(&second, "ec2 CreateVpc in eu-");
    assert!(
        line.contains("AccessDenied") || line.contains("UnauthorizedOperation"),
        "{line}"
    );
    assert_eq!(status(ep, state, &operator, &run), "failed");

    let doc: serde_json::Value = serde_json::from_slice(&second.stdout).expect("json");
    assert_eq!(doc["run_id"], run.as_str(), "the same run, resumed");
    // `drflow resume` finishing the run once the cause is fixed is proven in
    // tests/aws_target.rs against the shared moto: moto's own signature check rejects some of
    // the SDK's later requests (CreateTopic, CreateSecurityGroup) that AWS accepts, so a whole
    // provision cannot finish on this moto.
}
