//! The `lambda_function` kind on AWS: id = the function name, ARN = the function's ARN;
//! taggable.
//!
//! Spec: `runtime`, `handler`, `role`, `architectures`, `memory_size`, `timeout`,
//! `environment` (variables), `code` (`filename`, `sha`, `source`: the one source file) and
//! `invoke_permissions` (`principal`, `source_rule`: who may invoke it).
//!
//! The code is sent as a zip built in memory ([`zip_one`]: one stored entry, a fixed time, so
//! the same source gives the same `CodeSha256`). AWS never returns the source, only the zip's
//! SHA-256, which says nothing about the step's own fingerprint `code.sha`: the filename and
//! fingerprint the function was built from are kept in its tag `drflow:code`
//! (`<filename> <sha>`), and `find` returns them as `code` (without `source`, a write-only
//! key), so a changed asset shows as drift of `code.sha`. That tag is drflow's bookkeeping, not
//! one of the resource's tags: `find` leaves it out of `tags`. `attrs.code_sha256` is AWS's
//! hash of the zip.
//!
//! find: GetFunction (configuration and tags), GetPolicy (the invoke permissions). create:
//! CreateFunction, AddPermission per permission. update: UpdateFunctionConfiguration for the
//! configuration keys, UpdateFunctionCode (and TagResource for `drflow:code`) for `code` and
//! `architectures`, RemovePermission/AddPermission for `invoke_permissions`, TagResource.
//! delete: DeleteFunction.

use std::collections::HashMap;

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{
    Architecture, Environment, FunctionCode, FunctionConfiguration, LastUpdateStatus, Runtime,
    State,
};
use serde_json::{Map, Value, json};

use super::specs::{self, drifted, has_code, int, invalid, missing, parse_doc, rekind, text};
use super::{Call, Clients};
use crate::backend::{
    CloudError, CreateRequest, ErrorKind, Identity, Kind, Resource, ResourceState, Tags,
    UpdateRequest,
};

const SVC: &str = "lambda";

/// The tag that keeps the code's filename and fingerprint (AWS keeps only the zip's hash).
pub(crate) const CODE_TAG: &str = "drflow:code";

/// Configuration keys UpdateFunctionConfiguration changes.
const CONFIG_KEYS: &[&str] = &[
    "runtime",
    "handler",
    "role",
    "memory_size",
    "timeout",
    "environment",
];

pub(super) async fn find(c: &Clients, id: &Identity) -> Result<Option<Resource>, CloudError> {
    if id.kind != Kind::LambdaFunction {
        return Err(not_here(id.kind));
    }
    describe(c, &id.region, &id.name).await
}

pub(super) async fn list(
    c: &Clients,
    region: &str,
    kind: Kind,
    _parent: Option<&str>,
) -> Result<Vec<Resource>, CloudError> {
    if kind != Kind::LambdaFunction {
        return Err(not_here(kind));
    }
    let rc = c.region(region).await;
    let mut names = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let out = c
            .call(
                Call::new(region, SVC, "ListFunctions"),
                rc.lambda.list_functions().set_marker(marker.clone()).send(),
            )
            .await?;
        names.extend(
            out.functions()
                .iter()
                .filter_map(|f| f.function_name().map(str::to_string)),
        );
        marker = out.next_marker().map(str::to_string);
        if marker.is_none() {
            break;
        }
    }
    let mut out = Vec::new();
    for n in names {
        if let Some(r) = describe(c, region, &n).await?
            && specs::managed(&r.tags)
        {
            out.push(r);
        }
    }
    Ok(out)
}

pub(super) async fn create(c: &Clients, req: &CreateRequest) -> Result<Resource, CloudError> {
    if req.kind != Kind::LambdaFunction {
        return Err(not_here(req.kind));
    }
    let region = req.region.as_str();
    let rc = c.region(region).await;
    let spec = &req.spec;
    let (zip, code_tag) = code_zip(&req.name, spec)?;
    let mut call = rc
        .lambda
        .create_function()
        .function_name(&req.name)
        .set_runtime(text(spec, "runtime").map(Runtime::from))
        .set_role(text(spec, "role").map(str::to_string))
        .set_handler(text(spec, "handler").map(str::to_string))
        .set_memory_size(int(spec, "memory_size"))
        .set_timeout(int(spec, "timeout"))
        .set_architectures(architectures(spec))
        .set_environment(environment(spec))
        .code(FunctionCode::builder().zip_file(Blob::new(zip)).build())
        .tags(CODE_TAG, code_tag);
    for (k, v) in &req.tags {
        call = call.tags(k, v);
    }
    let out = c
        .call(Call::new(region, SVC, "CreateFunction"), call.send())
        .await
        .map_err(lambda_error)?;
    let arn = out.function_arn().ok_or_else(|| missing("FunctionArn"))?;
    for p in permissions(spec) {
        add_permission(c, region, &req.name, arn, &p).await?;
    }
    describe(c, region, &req.name)
        .await?
        .ok_or_else(|| missing("function after CreateFunction"))
}

pub(super) async fn update(
    c: &Clients,
    current: &Resource,
    req: &UpdateRequest,
) -> Result<Resource, CloudError> {
    let region = current.region.as_str();
    let name = current.name.as_str();
    let rc = c.region(region).await;
    let spec = &req.spec;
    let code = drifted(&req.drifted, "code") || drifted(&req.drifted, "architectures");
    if CONFIG_KEYS.iter().any(|k| drifted(&req.drifted, k)) {
        let out = c
            .call(
                Call::new(region, SVC, "UpdateFunctionConfiguration"),
                rc.lambda
                    .update_function_configuration()
                    .function_name(name)
                    .set_runtime(text(spec, "runtime").map(Runtime::from))
                    .set_role(text(spec, "role").map(str::to_string))
                    .set_handler(text(spec, "handler").map(str::to_string))
                    .set_memory_size(int(spec, "memory_size"))
                    .set_timeout(int(spec, "timeout"))
                    .set_environment(Some(
                        environment(spec).unwrap_or_else(|| Environment::builder().build()),
                    ))
                    .send(),
            )
            .await
            .map_err(lambda_error)?;
        // AWS takes one update of a function at a time: the code follows on the step's retry,
        // when only `code` still drifts.
        if code && out.last_update_status() == Some(&LastUpdateStatus::InProgress) {
            return Err(CloudError::new(
                ErrorKind::NotReady,
                format!(
                    "lambda_function {name} ({region}): its configuration update is in progress; \
                     the code is updated once it is done"
                ),
            ));
        }
    }
    if code {
        let (zip, code_tag) = code_zip(name, spec)?;
        c.call(
            Call::new(region, SVC, "UpdateFunctionCode"),
            rc.lambda
                .update_function_code()
                .function_name(name)
                .zip_file(Blob::new(zip))
                .set_architectures(architectures(spec))
                .send(),
        )
        .await
        .map_err(lambda_error)?;
        c.call(
            Call::new(region, SVC, "TagResource"),
            rc.lambda
                .tag_resource()
                .resource(&current.arn)
                .tags(CODE_TAG, code_tag)
                .send(),
        )
        .await?;
    }
    if drifted(&req.drifted, "invoke_permissions") {
        let wanted = permissions(spec);
        let wanted_sids: Vec<String> = wanted.iter().map(statement_id).collect();
        for sid in drflow_statements(c, region, name).await? {
            if !wanted_sids.contains(&sid) {
                c.call(
                    Call::new(region, SVC, "RemovePermission"),
                    rc.lambda
                        .remove_permission()
                        .function_name(name)
                        .statement_id(&sid)
                        .send(),
                )
                .await?;
            }
        }
        let have = drflow_statements(c, region, name).await?;
        for p in &wanted {
            if !have.contains(&statement_id(p)) {
                add_permission(c, region, name, &current.arn, p).await?;
            }
        }
    }
    let set = specs::tags_to_set(&current.tags, &req.tags);
    if !set.is_empty() {
        let mut call = rc.lambda.tag_resource().resource(&current.arn);
        for (k, v) in &set {
            call = call.tags(k, v);
        }
        c.call(Call::new(region, SVC, "TagResource"), call.send())
            .await?;
    }
    describe(c, region, name).await?.ok_or_else(|| {
        CloudError::new(
            ErrorKind::NotFound,
            format!("lambda_function {name} ({region}) does not exist"),
        )
    })
}

pub(super) async fn delete(c: &Clients, current: &Resource) -> Result<(), CloudError> {
    let region = current.region.as_str();
    let rc = c.region(region).await;
    c.call(
        Call::new(region, SVC, "DeleteFunction"),
        rc.lambda
            .delete_function()
            .function_name(&current.name)
            .send(),
    )
    .await?;
    Ok(())
}

fn not_here(kind: Kind) -> CloudError {
    CloudError::new(ErrorKind::Internal, format!("{kind} is not a lambda kind"))
}

/// Lambda's codes that the generic mapping cannot read: a role IAM has not propagated yet is
/// eventual consistency (retry), and a function that exists already is a conflict (adopt).
fn lambda_error(e: CloudError) -> CloudError {
    if e.message.contains("cannot be assumed by Lambda") {
        rekind(e, ErrorKind::NotReady)
    } else if has_code(&e, "ResourceConflictException") {
        if e.message.contains("already exist") {
            rekind(e, ErrorKind::Conflict)
        } else {
            // "An update is in progress for resource": the function is busy.
            rekind(e, ErrorKind::NotReady)
        }
    } else {
        e
    }
}

fn architectures(spec: &Value) -> Option<Vec<Architecture>> {
    specs::strings(spec, "architectures")
        .map(|a| a.iter().map(|s| Architecture::from(s.as_str())).collect())
}

fn environment(spec: &Value) -> Option<Environment> {
    let vars: HashMap<String, String> = spec
        .get("environment")?
        .as_object()?
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string()),
            )
        })
        .collect();
    Some(Environment::builder().set_variables(Some(vars)).build())
}

/// The zip to upload and the value of the [`CODE_TAG`] tag.
fn code_zip(name: &str, spec: &Value) -> Result<(Vec<u8>, String), CloudError> {
    let code = spec.get("code").unwrap_or(&Value::Null);
    let source = text(code, "source").ok_or_else(|| {
        invalid(format!(
            "lambda_function {name}: the spec has no code.source"
        ))
    })?;
    let filename = text(code, "filename").ok_or_else(|| {
        invalid(format!(
            "lambda_function {name}: the spec has no code.filename"
        ))
    })?;
    let sha = text(code, "sha")
        .map(str::to_string)
        .unwrap_or_else(|| crate::cloud::monitoring::code_sha(source));
    Ok((
        zip_one(filename, source.as_bytes()),
        format!("{filename} {sha}"),
    ))
}

/// One permission as the spec writes it.
struct Permission {
    principal: String,
    source_rule: Option<String>,
}

fn permissions(spec: &Value) -> Vec<Permission> {
    spec.get("invoke_permissions")
        .and_then(Value::as_array)
        .map(|ps| {
            ps.iter()
                .filter_map(|p| {
                    Some(Permission {
                        principal: text(p, "principal")?.to_string(),
                        source_rule: text(p, "source_rule").map(str::to_string),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The policy statement id of a permission: derived from what it allows, so the same
/// permission always has the same id and a changed one a new id.
fn statement_id(p: &Permission) -> String {
    let raw = match &p.source_rule {
        Some(r) => format!("drflow-{}-{r}", p.principal),
        None => format!("drflow-{}", p.principal),
    };
    raw.chars()
        .map(|ch| {
            if ch.is_ascii_alphanumeric() || ch == '-' || ch == '_' {
                ch
            } else {
                '-'
            }
        })
        .take(100)
        .collect()
}

async fn add_permission(
    c: &Clients,
    region: &str,
    name: &str,
    function_arn: &str,
    p: &Permission,
) -> Result<(), CloudError> {
    let rc = c.region(region).await;
    let source_arn = p.source_rule.as_ref().map(|r| {
        format!(
            "arn:{}:events:{region}:{}:rule/{r}",
            specs::partition(region),
            specs::arn_account(function_arn)
        )
    });
    c.call(
        Call::new(region, SVC, "AddPermission"),
        rc.lambda
            .add_permission()
            .function_name(name)
            .statement_id(statement_id(p))
            .action("lambda:InvokeFunction")
            .principal(&p.principal)
            .set_source_arn(source_arn)
            .send(),
    )
    .await?;
    Ok(())
}

/// The function's resource policy statements (GetPolicy; none when it has no policy).
async fn statements(c: &Clients, region: &str, name: &str) -> Result<Vec<Value>, CloudError> {
    let rc = c.region(region).await;
    let out = match c
        .call(
            Call::new(region, SVC, "GetPolicy"),
            rc.lambda.get_policy().function_name(name).send(),
        )
        .await
    {
        Ok(o) => o,
        Err(e) if e.kind == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let doc = out.policy().map(parse_doc).unwrap_or(Value::Null);
    Ok(match doc.get("Statement") {
        Some(Value::Array(s)) => s.clone(),
        Some(one @ Value::Object(_)) => vec![one.clone()],
        _ => Vec::new(),
    })
}

async fn drflow_statements(
    c: &Clients,
    region: &str,
    name: &str,
) -> Result<Vec<String>, CloudError> {
    Ok(statements(c, region, name)
        .await?
        .iter()
        .filter_map(|s| text(s, "Sid"))
        .filter(|sid| sid.starts_with("drflow-"))
        .map(str::to_string)
        .collect())
}

/// A policy statement as the spec's `invoke_permissions` entry.
fn permission_spec(s: &Value) -> Value {
    let principal = match s.get("Principal") {
        Some(Value::String(p)) => json!(p),
        Some(Value::Object(o)) => o
            .get("Service")
            .or_else(|| o.get("AWS"))
            .cloned()
            .unwrap_or(Value::Null),
        _ => Value::Null,
    };
    let source = s
        .get("Condition")
        .and_then(Value::as_object)
        .and_then(|cond| {
            cond.values().find_map(|m| {
                m.as_object()?.iter().find_map(|(k, v)| {
                    if k.eq_ignore_ascii_case("aws:SourceArn") {
                        v.as_str()
                    } else {
                        None
                    }
                })
            })
        });
    let mut p = Map::new();
    p.insert("principal".into(), principal);
    if let Some(rule) = source.and_then(|a| a.split_once(":rule/").map(|(_, r)| r.to_string())) {
        p.insert("source_rule".into(), json!(rule));
    }
    Value::Object(p)
}

fn state(f: &FunctionConfiguration) -> ResourceState {
    match (f.state(), f.last_update_status()) {
        (Some(State::Pending), _) => ResourceState::Creating,
        (Some(State::Failed), _) => ResourceState::Failed,
        (_, Some(LastUpdateStatus::InProgress)) => ResourceState::Modifying,
        _ => ResourceState::Available,
    }
}

/// The function as the steps write its spec.
async fn describe(c: &Clients, region: &str, name: &str) -> Result<Option<Resource>, CloudError> {
    let rc = c.region(region).await;
    let out = match c
        .call(
            Call::new(region, SVC, "GetFunction"),
            rc.lambda.get_function().function_name(name).send(),
        )
        .await
    {
        Ok(o) => o,
        Err(e) if e.kind == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let f = out
        .configuration()
        .ok_or_else(|| missing("Configuration from GetFunction"))?;
    let mut tags: Tags = out
        .tags()
        .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    let code_tag = tags.remove(CODE_TAG);
    let mut spec = Map::new();
    if let Some(r) = f.runtime() {
        spec.insert("runtime".into(), json!(r.as_str()));
    }
    if let Some(h) = f.handler() {
        spec.insert("handler".into(), json!(h));
    }
    if let Some(r) = f.role() {
        spec.insert("role".into(), json!(r));
    }
    let archs: Vec<&str> = f.architectures().iter().map(Architecture::as_str).collect();
    // AWS's default when none was asked for.
    spec.insert(
        "architectures".into(),
        if archs.is_empty() {
            json!(["x86_64"])
        } else {
            json!(archs)
        },
    );
    if let Some(m) = f.memory_size() {
        spec.insert("memory_size".into(), json!(m));
    }
    if let Some(t) = f.timeout() {
        spec.insert("timeout".into(), json!(t));
    }
    if let Some(tag) = code_tag {
        let (filename, sha) = tag.rsplit_once(' ').unwrap_or(("", tag.as_str()));
        spec.insert("code".into(), json!({"filename": filename, "sha": sha}));
    }
    let vars: Map<String, Value> = f
        .environment()
        .and_then(|e| e.variables())
        .map(|v| v.iter().map(|(k, v)| (k.clone(), json!(v))).collect())
        .unwrap_or_default();
    spec.insert("environment".into(), Value::Object(vars));
    let perms: Vec<Value> = statements(c, region, name)
        .await?
        .iter()
        .map(permission_spec)
        .collect();
    spec.insert("invoke_permissions".into(), Value::Array(perms));
    let mut attrs = Map::new();
    if let Some(h) = f.code_sha256() {
        attrs.insert("code_sha256".into(), json!(h));
    }
    Ok(Some(Resource {
        kind: Kind::LambdaFunction,
        region: region.to_string(),
        name: name.to_string(),
        parent: None,
        id: name.to_string(),
        arn: f.function_arn().unwrap_or("").to_string(),
        spec: Value::Object(spec),
        attrs,
        tags,
        state: state(f),
        depends_on: Vec::new(),
    }))
}

/// A zip archive of one file, stored (not compressed), as Lambda takes a deployment package.
/// Written here rather than with the `zip` crate, which is not in the dependency tree: one
/// stored entry is forty lines, and a fixed timestamp (1980-01-01) makes the archive, and so
/// AWS's `CodeSha256`, depend on the source alone. The entry is marked as a Unix file with mode
/// 0644, which Lambda needs to read it.
pub(crate) fn zip_one(filename: &str, data: &[u8]) -> Vec<u8> {
    const TIME: u16 = 0;
    const DATE: u16 = (1 << 5) | 1; // 1980-01-01
    let name = filename.as_bytes();
    let crc = crc32(data);
    let size = u32::try_from(data.len()).unwrap_or(u32::MAX);
    let name_len = u16::try_from(name.len()).unwrap_or(u16::MAX);
    let mut out = Vec::with_capacity(data.len() + 2 * name.len() + 100);
    let put16 = |o: &mut Vec<u8>, v: u16| o.extend_from_slice(&v.to_le_bytes());
    let put32 = |o: &mut Vec<u8>, v: u32| o.extend_from_slice(&v.to_le_bytes());
    // Local file header.
    put32(&mut out, 0x0403_4b50);
    put16(&mut out, 20); // version needed: 2.0
    put16(&mut out, 0); // flags
    put16(&mut out, 0); // method: stored
    put16(&mut out, TIME);
    put16(&mut out, DATE);
    put32(&mut out, crc);
    put32(&mut out, size); // compressed size
    put32(&mut out, size);
    put16(&mut out, name_len);
    put16(&mut out, 0); // extra length
    out.extend_from_slice(name);
    out.extend_from_slice(data);
    // Central directory.
    let cd_start = out.len();
    put32(&mut out, 0x0201_4b50);
    put16(&mut out, (3 << 8) | 20); // made by: Unix, 2.0
    put16(&mut out, 20);
    put16(&mut out, 0);
    put16(&mut out, 0);
    put16(&mut out, TIME);
    put16(&mut out, DATE);
    put32(&mut out, crc);
    put32(&mut out, size);
    put32(&mut out, size);
    put16(&mut out, name_len);
    put16(&mut out, 0); // extra length
    put16(&mut out, 0); // comment length
    put16(&mut out, 0); // disk
    put16(&mut out, 0); // internal attributes
    put32(&mut out, 0o100_644 << 16); // external: regular file, rw-r--r--
    put32(&mut out, 0); // offset of the local header
    out.extend_from_slice(name);
    let cd_len = out.len() - cd_start;
    // End of central directory.
    put32(&mut out, 0x0605_4b50);
    put16(&mut out, 0);
    put16(&mut out, 0);
    put16(&mut out, 1);
    put16(&mut out, 1);
    put32(&mut out, u32::try_from(cd_len).unwrap_or(u32::MAX));
    put32(&mut out, u32::try_from(cd_start).unwrap_or(u32::MAX));
    put16(&mut out, 0);
    out
}

/// CRC-32 (IEEE), as zip stores it.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::super::specs::test_support::{moto, tags, unique};
    use super::*;
    use crate::cloud::drift::diff_raw as diff;
    use crate::cloud::monitoring::{MONITOR_CODE, code_sha};

    const REGION: &str = "eu-central-1";

    #[test]
    fn crc_is_the_ieee_one() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn the_zip_has_one_stored_entry_and_is_the_same_every_time() {
        let z = zip_one("replication_monitor.py", b"print('hi')\n");
        assert_eq!(z, zip_one("replication_monitor.py", b"print('hi')\n"));
        assert_eq!(&z[..4], &[0x50, 0x4b, 0x03, 0x04]);
        // The end record points at the central directory, which names the file.
        let end = z.len() - 22;
        assert_eq!(&z[end..end + 4], &[0x50, 0x4b, 0x05, 0x06]);
        let cd_start = u32::from_le_bytes(z[end + 16..end + 20].try_into().unwrap()) as usize;
        assert_eq!(&z[cd_start..cd_start + 4], &[0x50, 0x4b, 0x01, 0x02]);
        assert_eq!(&z[cd_start + 46..end], b"replication_monitor.py");
        // The data follows the local header unchanged.
        assert_eq!(&z[30 + 22..30 + 22 + 12], b"print('hi')\n");
    }

    fn spec(role: &str, rule: &str) -> Value {
        json!({
            "runtime": "python3.12",
            "handler": "replication_monitor.handler",
            "role": role,
            "architectures": ["arm64"],
            "memory_size": 128,
            "timeout": 45,
            "code": {"filename": "replication_monitor.py", "sha": code_sha(MONITOR_CODE), "source": MONITOR_CODE},
            "environment": {
                "GLOBAL_CLUSTER_ID": "aurora-global-prod-eu",
                "SECONDARY_CLUSTER_ID": "aurora-cluster-prod-eu",
                "METRIC_NAMESPACE": "DrFlow/Trading",
                "SAMPLES": "2",
                "SAMPLE_INTERVAL_SECONDS": "30",
            },
            "invoke_permissions": [{"principal": "events.amazonaws.com", "source_rule": rule}],
        })
    }

    /// The spec without its write-only key (the source), as drift compares it.
    fn compared(spec: &Value) -> Value {
        let mut s = spec.clone();
        s["code"].as_object_mut().unwrap().remove("source");
        s
    }

    /// An execution role Lambda accepts (moto checks that the role exists).
    async fn role(c: &Clients) -> String {
        let rc = c.global().await;
        let name = unique("lambda-role");
        let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]});
        let out = c
            .call(
                Call::new("us-east-1", "iam", "CreateRole"),
                rc.iam
                    .create_role()
                    .role_name(&name)
                    .assume_role_policy_document(trust.to_string())
                    .send(),
            )
            .await
            .unwrap();
        out.role().map(|r| r.arn().to_string()).unwrap()
    }

    #[tokio::test]
    async fn function_round_trips_updates_lists_and_deletes() {
        let Some(c) = moto("function_round_trips_updates_lists_and_deletes") else {
            return;
        };
        let role = role(&c).await;
        let name = unique("replication-monitor");
        let rule = unique("replication-monitor-schedule");
        let desired = spec(&role, &rule);
        let req = CreateRequest {
            kind: Kind::LambdaFunction,
            region: REGION.into(),
            name: name.clone(),
            parent: None,
            spec: desired.clone(),
            tags: tags(&name),
            depends_on: Vec::new(),
        };
        let made = create(&c, &req).await.unwrap();
        assert!(
            made.arn.ends_with(&format!(":function:{name}")),
            "{}",
            made.arn
        );
        assert!(!made.attr_str("code_sha256").is_empty(), "{:?}", made.attrs);
        let id = Identity::new(Kind::LambdaFunction, REGION, &name);
        let found = find(&c, &id).await.unwrap().expect("found");
        assert_eq!(diff(&compared(&desired), &found.spec), Vec::<String>::new());
        assert!(
            found.spec["code"].get("source").is_none(),
            "the source is write-only"
        );
        assert_eq!(
            found.tags,
            tags(&name),
            "the code tag is bookkeeping, not a tag"
        );
        assert_eq!(
            create(&c, &req).await.unwrap_err().kind,
            ErrorKind::Conflict
        );

        // New code: UpdateFunctionCode, and the fingerprint reads back.
        let mut changed = desired.clone();
        let new_source = format!("{MONITOR_CODE}\n# changed\n");
        changed["code"]["source"] = json!(new_source.clone());
        changed["code"]["sha"] = json!(code_sha(&new_source));
        changed["timeout"] = json!(60);
        let updated = update(
            &c,
            &found,
            &UpdateRequest {
                spec: changed.clone(),
                drifted: vec!["code.sha".into(), "timeout".into()],
                tags: tags(&name),
                depends_on: Vec::new(),
            },
        )
        .await
        .unwrap();
        assert_eq!(
            diff(&compared(&changed), &updated.spec),
            Vec::<String>::new()
        );
        assert_ne!(
            updated.attr_str("code_sha256"),
            found.attr_str("code_sha256")
        );
        let mutating: Vec<&str> = c
            .calls()
            .iter()
            .filter(|r| r.mutating && r.service == "lambda")
            .map(|r| r.operation)
            .collect();
        assert!(
            mutating.ends_with(&[
                "UpdateFunctionConfiguration",
                "UpdateFunctionCode",
                "TagResource"
            ]),
            "{mutating:?}"
        );

        // Another rule may invoke it instead.
        let other = unique("other-rule");
        let mut perm = changed.clone();
        perm["invoke_permissions"] =
            json!([{"principal": "events.amazonaws.com", "source_rule": other}]);
        let updated = update(
            &c,
            &updated,
            &UpdateRequest {
                spec: perm.clone(),
                drifted: vec!["invoke_permissions".into()],
                tags: tags(&name),
                depends_on: Vec::new(),
            },
        )
        .await
        .unwrap();
        assert_eq!(
            updated.spec["invoke_permissions"],
            perm["invoke_permissions"]
        );

        let listed = list(&c, REGION, Kind::LambdaFunction, None).await.unwrap();
        assert!(listed.iter().any(|r| r.name == name));
        delete(&c, &updated).await.unwrap();
        assert!(find(&c, &id).await.unwrap().is_none());
        assert_eq!(
            delete(&c, &updated).await.unwrap_err().kind,
            ErrorKind::NotFound
        );
    }
}
