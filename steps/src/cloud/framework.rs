//! What every provisioning step shares: the find-or-create-or-repair loop, the standard tags,
//! the change report and the undo.
//!
//! A step's run function describes the resources it wants as [`Desired`] values and hands them
//! to [`Cx::ensure`] in dependency order. `ensure` finds each by name, creates what is missing,
//! compares what exists with the desired spec and repairs drift, and records what it did. The
//! step then reports `change` (`created`, `updated`, `deleted` or `unchanged`), `changes` (one
//! line per resource created, repaired or deleted) and `resources` (what it ensured, for the
//! undo).
//!
//! A resource `ensure` creates is tagged [`CREATED_BY_TAG`] with the run id, at creation only
//! (the tag is not part of the desired tags, so it is never drift). The undo deletes, of the
//! resources a step ensured, only those whose tag names the run being rolled back: a rollback
//! undoes what that run created, never what it found, updated or replaced. The run id stays the
//! same across resumes, so a resource created by an attempt that crashed before its success was
//! journaled, and found by the attempt on resume, is still deleted.

use std::sync::Arc;
use std::time::Duration;

use drflow_engine::{Outputs, StepContext, StepError, StepFuture, StepSpec, StepType, ValueType};
use serde_json::{Value, json};
use tracing::Instrument;

use crate::backend::{CloudBackend, CreateRequest, ErrorKind, Kind, Replacement, Resource, Tags};
use crate::cloud::drift::diff;
use crate::target::LazyBackend;

/// A boxed future of a step body.
pub(crate) type BodyFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Outputs, StepError>> + Send + 'a>>;

/// The body of a provisioning step.
pub(crate) type RunFn = for<'a> fn(&'a mut Cx, &'a Outputs) -> BodyFuture<'a>;

/// The tag every drflow resource carries, and its value.
pub const MANAGED_BY: (&str, &str) = ("ManagedBy", "drflow");
/// The tag that scopes a resource to one environment suffix (used by teardown).
pub const SUFFIX_TAG: &str = "EnvironmentSuffix";
/// The tag on a resource that drift repair replaced while something still used it; its value
/// is the name it had. `cloud.delete_superseded` deletes such resources.
pub const SUPERSEDED_TAG: &str = "drflow:superseded";
/// The tag a resource gets when `ensure` creates it; its value is the id of the run that created
/// it. A step's undo deletes only resources whose tag names the run being rolled back.
pub const CREATED_BY_TAG: &str = "drflow:created-by-run";

/// The tracing target of the one event every change to a resource emits, at level INFO, with
/// the fields `change` (`created`, `updated`, `replaced` or `deleted`), `kind`, `name`, `region`,
/// `id` and `detail` (what differed, for `updated` and `replaced`; empty otherwise). The
/// `drflow` binary shows these events as its `+ ~ -` lines; other subscribers can select them
/// with this target.
pub const RESOURCE_EVENTS: &str = "drflow::resource";

/// Emits the [`RESOURCE_EVENTS`] event of one resource change.
fn resource_event(change: &str, kind: Kind, name: &str, region: &str, id: &str, detail: &str) {
    tracing::info!(
        target: RESOURCE_EVENTS,
        change,
        kind = kind.name(),
        name,
        region,
        id,
        detail,
        "{change} {kind} {name} ({region})"
    );
}

/// What a step did to one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// It did not exist and was created.
    Created,
    /// It existed but had drifted and was repaired.
    Updated,
    /// It existed and was deleted (teardown, superseded resources).
    Deleted,
    /// It existed as desired.
    Unchanged,
}

impl Change {
    /// `created`, `updated`, `deleted` or `unchanged`.
    pub fn name(self) -> &'static str {
        match self {
            Change::Created => "created",
            Change::Updated => "updated",
            Change::Deleted => "deleted",
            Change::Unchanged => "unchanged",
        }
    }

    /// What one line of a cloud step's `changes` output reports, read from its first word
    /// (`created`, `repaired`, `replaced`, `deleted`: the lines [`Cx`] writes). A repair and a
    /// replacement are both [`Change::Updated`]. `None` for a line of another shape.
    pub fn of_line(line: &str) -> Option<Change> {
        match line.split_once(' ').map_or(line, |(first, _)| first) {
            "created" => Some(Change::Created),
            "repaired" | "replaced" => Some(Change::Updated),
            "deleted" => Some(Change::Deleted),
            _ => None,
        }
    }
}

/// A resource a step wants to exist.
#[derive(Debug, Clone)]
pub(crate) struct Desired {
    kind: Kind,
    region: String,
    name: String,
    spec: Value,
    create_only: Value,
    immutable: &'static [&'static str],
    depends_on: Vec<String>,
    tags: Tags,
}

impl Desired {
    /// A resource of `kind` named `name` in `region` with this desired spec.
    pub fn new(kind: Kind, region: &str, name: impl Into<String>, spec: Value) -> Desired {
        Desired {
            kind,
            region: region.to_string(),
            name: name.into(),
            spec,
            create_only: Value::Null,
            immutable: &[],
            depends_on: Vec::new(),
            tags: Tags::new(),
        }
    }

    /// Ids this resource refers to (the cloud will refuse to delete them first).
    pub fn deps<I, S>(mut self, ids: I) -> Desired
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.depends_on.extend(
            ids.into_iter()
                .map(Into::into)
                .filter(|s: &String| !s.is_empty()),
        );
        self
    }

    /// Spec keys applied only at creation and never compared: values that failover and
    /// failback legitimately change (ASG desired capacity, record weights), which a re-run of
    /// provision must not undo.
    pub fn create_only(mut self, spec: Value) -> Desired {
        self.create_only = spec;
        self
    }

    /// Spec keys the cloud cannot change in place: drift there is repaired by replacing the
    /// resource where its kind allows ([`Kind::replacement`]), and otherwise reported as an
    /// error, never "repaired" by destroying a resource that may hold data.
    pub fn immutable(mut self, keys: &'static [&'static str]) -> Desired {
        self.immutable = keys;
        self
    }

    /// The tags to apply (the standard set comes from [`Cx::tags`]).
    pub fn tags(mut self, tags: Tags) -> Desired {
        self.tags = tags;
        self
    }
}

/// The context a step body works in.
pub(crate) struct Cx {
    /// The cloud.
    pub backend: Arc<dyn CloudBackend>,
    /// The environment suffix every name ends with.
    pub suffix: String,
    /// The run this step belongs to: what [`CREATED_BY_TAG`] says on what it creates.
    run_id: String,
    changes: Vec<(Change, String)>,
    owned: Vec<Value>,
}

impl Cx {
    fn new(backend: Arc<dyn CloudBackend>, suffix: String, run_id: String) -> Cx {
        Cx {
            backend,
            suffix,
            run_id,
            changes: Vec::new(),
            owned: Vec::new(),
        }
    }

    /// `<type>-<environmentSuffix>`.
    pub fn name(&self, ty: &str) -> String {
        format!("{ty}-{}", self.suffix)
    }

    /// The standard tags: `Name`, `Environment=Production`, `FailoverRole`, `ManagedBy=drflow`,
    /// and the suffix tag teardown scopes by.
    pub fn tags(&self, name: &str, role: Role) -> Tags {
        let mut t = Tags::new();
        t.insert("Name".into(), name.into());
        t.insert("Environment".into(), "Production".into());
        t.insert("FailoverRole".into(), role.tag().into());
        t.insert(MANAGED_BY.0.into(), MANAGED_BY.1.into());
        t.insert(SUFFIX_TAG.into(), self.suffix.clone());
        t
    }

    /// Ensures the IAM role `<ty>-<suffix>` that one AWS service may assume, with one inline
    /// policy and nothing else attached: the shape of every least-privilege role drflow makes.
    pub async fn ensure_service_role(
        &mut self,
        ty: &str,
        role: Role,
        service: &str,
        policy_name: &str,
        policy: Value,
    ) -> Result<Resource, StepError> {
        let name = self.name(ty);
        let tags = self.tags(&name, role);
        self.ensure(
            Desired::new(
                Kind::IamRole,
                crate::backend::GLOBAL,
                &name,
                json!({
                    "assume_role_policy": {
                        "Version": "2012-10-17",
                        "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]
                    },
                    "inline_policies": {policy_name: policy},
                    "managed_policy_arns": [],
                    "max_session_duration": 3600,
                }),
            )
            .tags(tags),
        )
        .await
    }

    /// Finds the resource; creates it if missing; repairs drift; records what happened.
    ///
    /// Drift on a field the cloud cannot change in place is repaired by replacing the resource
    /// when its kind allows that without losing anything ([`Kind::replacement`]), and refused
    /// with an explanation otherwise.
    pub async fn ensure(&mut self, d: Desired) -> Result<Resource, StepError> {
        let b = Arc::clone(&self.backend);
        let label = format!("{} {} ({})", d.kind, d.name, d.region);
        self.owned
            .push(json!({"kind": d.kind.name(), "region": d.region, "name": d.name}));
        let found = b.find(&d.region, d.kind, &d.name).await?;
        let Some(actual) = found else {
            let run_id = self.run_id.clone();
            let created = self.create(&d, Some(&run_id)).await?;
            resource_event("created", d.kind, &d.name, &d.region, &created.id, "");
            self.changes
                .push((Change::Created, format!("created {label}")));
            return Ok(created);
        };
        let mut drift = diff(&d.spec, &actual.spec);
        let tag_drift: Vec<String> = d
            .tags
            .iter()
            .filter(|(k, v)| actual.tags.get(*k) != Some(v))
            .map(|(k, _)| format!("tag {k}"))
            .collect();
        if let Some(key) = drift
            .iter()
            .find(|p| d.immutable.iter().any(|k| p.split('.').next() == Some(k)))
        {
            return self.replace(&d, actual, key, &label).await;
        }
        drift.extend(tag_drift);
        if drift.is_empty() {
            self.changes.push((Change::Unchanged, label));
            return Ok(actual);
        }
        let updated = b
            .update(
                &d.region,
                d.kind,
                &actual.id,
                &d.spec,
                &d.tags,
                &d.depends_on,
            )
            .await?;
        resource_event(
            "updated",
            d.kind,
            &d.name,
            &d.region,
            &updated.id,
            &format!("{} differed", drift.join(", ")),
        );
        self.changes.push((
            Change::Updated,
            format!("repaired {label}: {} differed", drift.join(", ")),
        ));
        Ok(updated)
    }

    /// Creates the desired resource (with its creation-only keys), tagged as created by
    /// `created_by` (a run id) if given.
    async fn create(&self, d: &Desired, created_by: Option<&str>) -> Result<Resource, StepError> {
        let b = &self.backend;
        let mut spec = d.spec.clone();
        if d.create_only.is_object() {
            crate::sim::merge(&mut spec, &d.create_only);
        }
        let mut tags = d.tags.clone();
        if let Some(run) = created_by {
            tags.insert(CREATED_BY_TAG.into(), run.into());
        }
        let req = CreateRequest {
            kind: d.kind,
            region: d.region.clone(),
            name: d.name.clone(),
            spec,
            tags,
            depends_on: d.depends_on.clone(),
        };
        let created = match b.create(&req).await {
            Ok(r) => r,
            // Someone created it between our find and create (a parallel retry): use theirs.
            Err(e) if e.kind == ErrorKind::Conflict => b
                .find(&d.region, d.kind, &d.name)
                .await?
                .ok_or(StepError::from(e))?,
            Err(e) => return Err(e.into()),
        };
        Ok(created)
    }

    /// Repairs drift on `key`, which cannot change in place: replaces the resource if its kind
    /// allows, or explains why not.
    async fn replace(
        &mut self,
        d: &Desired,
        old: Resource,
        key: &str,
        label: &str,
    ) -> Result<Resource, StepError> {
        let value = |v: &Value| {
            key.split('.')
                .try_fold(v, |v, k| v.get(k))
                .map_or("nothing".to_string(), Value::to_string)
        };
        let (has, wants) = (value(&old.spec), value(&d.spec));
        let what = format!("{label} has {key} {has} but should have {wants}");
        let b = Arc::clone(&self.backend);
        // The new resource takes the old one's place, and its provenance: replacing is a repair,
        // which a rollback of this run does not undo (it does not delete the replacement), while
        // a rollback of the run that created the original still deletes it.
        let created_by = old.tags.get(CREATED_BY_TAG).cloned();
        let replaced = match d.kind.replacement() {
            Replacement::Never(why) => {
                return Err(StepError::permanent(
                    "drift",
                    format!(
                        "{what}, which cannot change in place, and drflow does not replace a \
                         {kind}: {why}. hint: if the change is wanted, move what depends on it, \
                         delete {kind} {id} yourself (or use another env_suffix) and run again; \
                         if not, set {key} back to {has}",
                        kind = d.kind,
                        id = old.id,
                    ),
                ));
            }
            Replacement::DeleteThenCreate => {
                match b.delete(&old.region, old.kind, &old.id).await {
                    Ok(()) => {}
                    Err(e) if e.kind == ErrorKind::NotFound => {}
                    Err(e) if e.kind == ErrorKind::DependencyViolation => {
                        return Err(StepError::permanent(
                            "drift",
                            format!(
                                "{what}, which cannot change in place; replacing it means \
                                 deleting it first, which the cloud refused: {}. hint: remove \
                                 what still uses it, or set {key} back to {has}",
                                e.message
                            ),
                        ));
                    }
                    Err(e) => return Err(e.into()),
                }
                let new = self.create(d, created_by.as_deref()).await?;
                self.changes.push((
                    Change::Updated,
                    format!(
                        "replaced {label} (deleted {}, created {}): {key} was {has}, which cannot change in place",
                        old.id, new.id
                    ),
                ));
                new
            }
            Replacement::CreateThenDelete => {
                // Rename the old one aside and mark it, so that the name finds the new one and
                // a later pass (cloud.delete_superseded) deletes the old one if it is still
                // in use now.
                let mut aside = Tags::new();
                aside.insert("Name".into(), format!("{}-superseded", d.name));
                aside.insert(SUPERSEDED_TAG.into(), d.name.clone());
                b.update(
                    &old.region,
                    old.kind,
                    &old.id,
                    &json!({}),
                    &aside,
                    &old.depends_on,
                )
                .await?;
                let new = self.create(d, created_by.as_deref()).await?;
                let fate = match b.delete(&old.region, old.kind, &old.id).await {
                    Ok(()) => format!("deleted {}", old.id),
                    Err(e) if e.kind == ErrorKind::NotFound => format!("deleted {}", old.id),
                    Err(e) if e.kind == ErrorKind::DependencyViolation => format!(
                        "{} is deleted once what uses it points at the new one",
                        old.id
                    ),
                    Err(e) => return Err(e.into()),
                };
                self.changes.push((
                    Change::Updated,
                    format!(
                        "replaced {label} (created {}; {fate}): {key} was {has}, which cannot change in place",
                        new.id
                    ),
                ));
                new
            }
        };
        resource_event(
            "replaced",
            d.kind,
            &d.name,
            &d.region,
            &replaced.id,
            &format!("{key} was {has}, which cannot change in place"),
        );
        Ok(replaced)
    }

    /// Waits until a resource is available (the sim moves its virtual clock).
    pub async fn wait(&self, r: &Resource, timeout: Duration) -> Result<Resource, StepError> {
        Ok(self
            .backend
            .wait_available(&r.region, r.kind, &r.id, timeout)
            .await?)
    }

    /// Records a deletion done outside [`Cx::ensure`] (teardown, superseded resources).
    pub fn note_deleted(&mut self, r: &Resource) {
        resource_event("deleted", r.kind, &r.name, &r.region, &r.id, "");
        self.changes.push((
            Change::Deleted,
            format!("deleted {} {} ({})", r.kind, r.name, r.region),
        ));
    }

    /// Adds the change report to a step's own outputs.
    fn finish(self, mut out: Outputs) -> Outputs {
        // Repairs win over creations: "updated" says drift was found. A step that only
        // created (some of) its resources reports "created", even if it shares others with a
        // step that made them first (the DNS validation record both regions' certificates
        // use). A step that only deleted reports "deleted" (teardown).
        let any = |c: Change| self.changes.iter().any(|(x, _)| *x == c);
        let change = [Change::Updated, Change::Created, Change::Deleted]
            .into_iter()
            .find(|c| any(*c))
            .unwrap_or(Change::Unchanged);
        out.insert("change".into(), json!(change.name()));
        let lines: Vec<&String> = self
            .changes
            .iter()
            .filter(|(c, _)| *c != Change::Unchanged)
            .map(|(_, l)| l)
            .collect();
        out.insert("changes".into(), json!(lines));
        out.insert("resources".into(), Value::Array(self.owned));
        out
    }
}

/// Which side of the failover pair a resource belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The region serving traffic.
    Primary,
    /// The region kept ready to take over.
    Standby,
}

impl Role {
    /// The `FailoverRole` tag value.
    pub fn tag(self) -> &'static str {
        match self {
            Role::Primary => "Primary",
            Role::Standby => "Standby",
        }
    }

    /// Parses `primary`/`standby` in any case.
    pub fn parse(s: &str) -> Result<Role, StepError> {
        match s.to_ascii_lowercase().as_str() {
            "primary" => Ok(Role::Primary),
            "standby" | "secondary" => Ok(Role::Standby),
            other => Err(StepError::invalid_input(format!(
                "role must be primary or standby, not {other:?}"
            ))),
        }
    }
}

/// A spec with the parameters and outputs every provisioning step has.
pub(crate) fn cloud_spec(name: &'static str, doc: &'static str) -> StepSpec {
    StepSpec::new(name, doc)
        .required(
            "env_suffix",
            ValueType::String,
            "Environment suffix every resource name ends with (`<type>-<suffix>`).",
        )
        .output(
            "change",
            ValueType::String,
            "created, updated (drift repaired, in place or by replacement), deleted (it only removed resources) or unchanged.",
        )
        .output(
            "changes",
            ValueType::List,
            "One line per resource created, repaired, replaced or deleted.",
        )
        .output(
            "resources",
            ValueType::List,
            "The resources this step owns ({kind, region, name}); its undo deletes those this run created.",
        )
        .with_undo()
}

/// A provisioning step: a spec, a body, and the shared undo.
pub(crate) struct CloudStep {
    spec: StepSpec,
    backend: Arc<LazyBackend>,
    body: RunFn,
}

impl CloudStep {
    pub fn boxed(spec: StepSpec, backend: &Arc<LazyBackend>, body: RunFn) -> Arc<dyn StepType> {
        Arc::new(CloudStep {
            spec,
            backend: Arc::clone(backend),
            body,
        })
    }

    /// The input with declared defaults filled in, so bodies need not repeat them.
    fn with_defaults(&self, input: &Outputs) -> Outputs {
        let mut full = input.clone();
        for p in &self.spec.params {
            if let (false, Some(d)) = (full.contains_key(p.name), &p.default) {
                full.insert(p.name.into(), d.clone());
            }
        }
        full
    }
}

impl StepType for CloudStep {
    fn spec(&self) -> &StepSpec {
        &self.spec
    }

    fn run<'a>(&'a self, ctx: &'a StepContext, input: &'a Outputs) -> StepFuture<'a> {
        Box::pin(async move {
            let backend = self.backend.get()?;
            let input = self.with_defaults(input);
            let suffix = crate::cloud::input::str(&input, "env_suffix")?.to_string();
            if suffix.is_empty()
                || !suffix
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            {
                return Err(StepError::invalid_input(format!(
                    "env_suffix {suffix:?} must be lower-case letters, digits and dashes \
                     (it ends every resource name, and S3 bucket names allow nothing else)"
                )));
            }
            let mut cx = Cx::new(backend, suffix, ctx.run_id.clone());
            let span = tracing::info_span!("step", runbook = %ctx.runbook, step = %ctx.step_id, uses = self.spec.name);
            let out = (self.body)(&mut cx, &input).instrument(span).await?;
            Ok(cx.finish(out))
        })
    }

    fn undo<'a>(&'a self, ctx: &'a StepContext, _input: &'a Outputs) -> StepFuture<'a> {
        Box::pin(async move {
            let backend = self.backend.get()?;
            let owned = ctx
                .previous_outputs
                .as_ref()
                .and_then(|o| o.get("resources"))
                .and_then(Value::as_array)
                .ok_or_else(|| {
                    StepError::permanent(
                        "no_record",
                        format!(
                            "step {} has no record of the resources it made; \
                             use runbooks/destroy.yaml to remove them by tag",
                            ctx.step_id
                        ),
                    )
                })?;
            let mut deleted = Vec::new();
            let mut kept = Vec::new();
            for r in owned.iter().rev() {
                let kind: Kind = r
                    .get("kind")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .parse()
                    .map_err(StepError::invalid_input)?;
                let region = r.get("region").and_then(Value::as_str).unwrap_or_default();
                let name = r.get("name").and_then(Value::as_str).unwrap_or_default();
                let Some(found) = backend.find(region, kind, name).await? else {
                    continue;
                };
                // Only what this run created: what it found, updated or replaced stays.
                if found.tags.get(CREATED_BY_TAG) != Some(&ctx.run_id) {
                    tracing::debug!(%kind, name, region, "Kept on undo: not created by this run");
                    kept.push(json!(format!("kept {kind} {name} ({region})")));
                    continue;
                }
                match backend.delete(region, kind, &found.id).await {
                    Ok(()) => {
                        resource_event("deleted", kind, name, region, &found.id, "");
                        deleted.push(json!(format!("deleted {kind} {name} ({region})")));
                    }
                    Err(e) if e.kind == ErrorKind::NotFound => {}
                    Err(e) => return Err(e.into()),
                }
            }
            if !kept.is_empty() {
                tracing::info!(
                    step = %ctx.step_id,
                    kept = kept.len(),
                    "Undo kept the resources this run did not create (found, updated or replaced)"
                );
            }
            let mut out = Outputs::new();
            out.insert("deleted".into(), Value::Array(deleted));
            out.insert("kept".into(), Value::Array(kept));
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_line_cx_writes_is_read_back_as_its_change() {
        let label = "vpc vpc-prod (eu-south-1)";
        let cases = [
            (format!("created {label}"), Some(Change::Created)),
            (
                format!("repaired {label}: cidr differed"),
                Some(Change::Updated),
            ),
            (
                format!("replaced {label} (deleted a, created b): x was 1"),
                Some(Change::Updated),
            ),
            (format!("deleted {label}"), Some(Change::Deleted)),
            ("kept vpc x (eu-south-1)".to_string(), None),
            (String::new(), None),
        ];
        for (line, want) in cases {
            assert_eq!(Change::of_line(&line), want, "{line:?}");
        }
    }
}
