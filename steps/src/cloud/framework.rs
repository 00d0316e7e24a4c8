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

use drflow_engine::{
    Format, Outputs, RuleViolation, StepContext, StepError, StepFuture, StepSpec, StepType,
    ValueType, Violation,
};
use serde_json::{Value, json};
use tracing::Instrument;

use crate::backend::{
    CloudBackend, CloudError, CreateRequest, ErrorKind, Identity, Kind, Label, Replacement,
    Resource, Tags, UpdateRequest,
};
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
fn resource_event(change: &str, r: Label<'_>, id: &str, detail: &str) {
    tracing::info!(
        target: RESOURCE_EVENTS,
        change,
        kind = r.kind,
        name = r.name,
        parent = r.parent.unwrap_or_default(),
        region = r.region,
        id,
        detail,
        "{change} {r}"
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
    parent: Option<String>,
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
            parent: None,
            name: name.into(),
            spec,
            create_only: Value::Null,
            immutable: &[],
            depends_on: Vec::new(),
            tags: Tags::new(),
        }
    }

    /// A resource of a kind that lives in another ([`Kind::parent_kind`]): `parent` is that
    /// one's id, `name` its name there ([`Identity`]'s table: a route's destination CIDR, a
    /// record's `<fqdn>. <TYPE>[ <SetIdentifier>]`).
    pub fn child(
        kind: Kind,
        region: &str,
        parent: impl Into<String>,
        name: impl Into<String>,
        spec: Value,
    ) -> Desired {
        let mut d = Desired::new(kind, region, name, spec);
        d.parent = Some(parent.into());
        d
    }

    /// Where the resource is found.
    pub fn identity(&self) -> Identity {
        Identity {
            kind: self.kind,
            region: self.region.clone(),
            parent: self.parent.clone(),
            name: self.name.clone(),
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

/// The names a step type builds, declared with it: each kind of resource with the name's type
/// part (the name is `<type part>-<env_suffix>`). A type part may hold `{n}` (a number, counted
/// as two digits) and `{field}` (the value of the input `field`, see [`Cx::name_from`]).
///
/// From this list the step's declaration gets the longest `env_suffix` that keeps every name
/// within AWS's limits, and a rule for the names that depend on other inputs; and
/// [`Cx::ensure`] refuses to create a resource whose name is not in it, so the names a step
/// builds and the limits checked before the run cannot drift apart.
pub(crate) type Names = &'static [(Kind, &'static str)];

/// The context a step body works in.
pub(crate) struct Cx {
    /// The cloud.
    pub backend: Arc<dyn CloudBackend>,
    /// The environment suffix every name ends with.
    pub suffix: String,
    /// The step type's declared names.
    names: Names,
    /// The step type, for messages.
    step_type: &'static str,
    /// The run this step belongs to: what [`CREATED_BY_TAG`] says on what it creates.
    run_id: String,
    /// The attempt's context: where a resource no tag can mark as this run's is noted before it
    /// is created, and what earlier attempts noted.
    ctx: StepContext,
    changes: Vec<(Change, String)>,
    owned: Vec<Value>,
}

impl Cx {
    fn new(
        backend: Arc<dyn CloudBackend>,
        suffix: String,
        ctx: &StepContext,
        names: Names,
        step_type: &'static str,
    ) -> Cx {
        Cx {
            backend,
            suffix,
            names,
            step_type,
            run_id: ctx.run_id.clone(),
            ctx: ctx.clone(),
            changes: Vec::new(),
            owned: Vec::new(),
        }
    }

    /// `<type>-<environmentSuffix>`.
    pub fn name(&self, ty: &str) -> String {
        format!("{ty}-{}", self.suffix)
    }

    /// The name a declared type part with `{field}`s gives for this input: the fields replaced
    /// by the input's values, then `-<environmentSuffix>`.
    pub fn name_from(&self, template: &str, input: &Outputs) -> String {
        self.name(&fill(template, input))
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

    /// The environment a resource belongs to, when that is not this one. Environments are
    /// told apart by their whole suffix tag, never by a name's ending: `eu` and `prod-eu` are
    /// two environments, although every name of the second ends with `-eu`.
    pub fn foreign<'r>(&self, r: &'r Resource) -> Option<&'r str> {
        foreign_to(r, &self.suffix)
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
    pub async fn ensure(&mut self, mut d: Desired) -> Result<Resource, StepError> {
        self.check_name(d.kind, &d.name)?;
        if !d.kind.taggable() {
            // AWS keeps no tags on it: asking for some would be drift on every run.
            d.tags.clear();
        }
        let b = Arc::clone(&self.backend);
        let label = Label {
            kind: d.kind.name(),
            name: &d.name,
            parent: d.parent.as_deref(),
            region: &d.region,
        };
        let mut entry = json!({"kind": d.kind.name(), "region": d.region, "name": d.name});
        if let Some(p) = &d.parent {
            entry["parent"] = json!(p);
        }
        self.owned.push(entry.clone());
        // A kind AWS cannot tag carries no mark of the run that made it: the journal does.
        // Written ahead, so that an attempt that dies between the create and the step's end
        // (a crash, a kill, a failed later call) leaves the next attempt knowing it is ours.
        let intent = json!({"creating": entry});
        let declined = json!({"not_created": entry});
        // The last word of earlier attempts on this resource: `creating` claims it, and
        // `not_created` (their create found another's) takes that back.
        let ours = self
            .ctx
            .notes
            .iter()
            .rev()
            .find(|n| **n == intent || **n == declined)
            == Some(&intent);
        let actual = match b.find(&d.identity()).await? {
            Some(r) => {
                if !d.kind.taggable() && ours {
                    if let Some(last) = self.owned.last_mut() {
                        last["created"] = json!(self.run_id);
                    }
                    self.changes
                        .push((Change::Created, format!("created {label}")));
                }
                r
            }
            None => {
                if !d.kind.taggable() {
                    self.ctx.note(intent).await?;
                }
                let run_id = self.run_id.clone();
                match self.create(&d, Some(&run_id)).await? {
                    Made::Created(created) => {
                        // What the undo reads for a kind that carries no tag to say so: the run
                        // that created it, as the `drflow:created-by-run` tag says for the rest.
                        if let Some(last) = self.owned.last_mut() {
                            last["created"] = json!(run_id);
                        }
                        resource_event("created", label, &created.id, "");
                        self.changes
                            .push((Change::Created, format!("created {label}")));
                        return Ok(created);
                    }
                    // Another step (or a retry) created it between our find and create, e.g.
                    // the DNS validation record both regions' certificate steps ensure in
                    // parallel: it is not ours to count as created, and it is checked like
                    // any resource found.
                    Made::Found(theirs) => {
                        if !d.kind.taggable() {
                            self.ctx.note(declined).await?;
                        }
                        theirs
                    }
                }
            }
        };
        if let Some(other) = self.foreign(&actual) {
            return Err(StepError::permanent(
                "conflict",
                format!(
                    "{label} already exists and belongs to environment `{other}` (tag \
                     {SUFFIX_TAG}={other}); drflow never adopts, changes or deletes another \
                     environment's resources. hint: give this environment names of its own: a \
                     domain_name of its own for a hosted zone, otherwise another env_suffix"
                ),
            ));
        }
        let mut drift = diff(d.kind, &d.spec, &actual.spec);
        let drifted = drift.clone();
        for path in &drift {
            // What differs, for `-vv`: the value asked for and the value the cloud returned.
            let at = |v: &Value| {
                path.split('.')
                    .try_fold(v, |v, k| v.get(k))
                    .map_or_else(|| "(absent)".to_string(), Value::to_string)
            };
            tracing::debug!(
                resource = %label,
                path = %path,
                want = %at(&d.spec),
                have = %at(&actual.spec),
                "Drift"
            );
        }
        let tag_drift: Vec<String> = d
            .tags
            .iter()
            .filter(|(k, v)| actual.tags.get(*k) != Some(v))
            .map(|(k, _)| format!("tag {k}"))
            .collect();
        if let Some(key) = crate::cloud::drift::first_create_only(d.kind, &drift, d.immutable) {
            return self.replace(&d, actual, key, &label.to_string()).await;
        }
        drift.extend(tag_drift);
        if drift.is_empty() {
            self.changes.push((Change::Unchanged, label.to_string()));
            return Ok(actual);
        }
        let request = UpdateRequest {
            spec: d.spec.clone(),
            drifted,
            tags: d.tags.clone(),
            depends_on: d.depends_on.clone(),
        };
        let updated = b.update(&actual, &request).await?;
        resource_event(
            "updated",
            label,
            &updated.id,
            &format!("{} differed", drift.join(", ")),
        );
        self.changes.push((
            Change::Updated,
            format!("repaired {label}: {} differed", drift.join(", ")),
        ));
        Ok(updated)
    }

    /// Refuses, before any call to the cloud, a name that is not among the step's declared names
    /// (a bug: its limits were not checked before the run) or that AWS would refuse.
    fn check_name(&self, kind: Kind, name: &str) -> Result<(), StepError> {
        if kind.name_rule().is_none() {
            return Ok(());
        }
        let Some(ty) = name.strip_suffix(&format!("-{}", self.suffix)) else {
            return Err(undeclared(self.step_type, kind, name));
        };
        if !self
            .names
            .iter()
            .any(|(k, t)| *k == kind && matches_template(t, ty))
        {
            return Err(undeclared(self.step_type, kind, name));
        }
        kind.check_name(name).map_err(|problem| {
            StepError::invalid_input(format!(
                "the {kind} name `{name}` {problem}; nothing was created with it"
            ))
        })
    }

    /// Creates the desired resource (with its creation-only keys), tagged as created by
    /// `created_by` (a run id) if given; if someone else created it between our find and this
    /// call, returns theirs as [`Made::Found`].
    async fn create(&self, d: &Desired, created_by: Option<&str>) -> Result<Made, StepError> {
        let b = &self.backend;
        let mut spec = d.spec.clone();
        if d.create_only.is_object() {
            crate::json::merge(&mut spec, &d.create_only);
        }
        let mut tags = d.tags.clone();
        if let Some(run) = created_by.filter(|_| d.kind.taggable()) {
            tags.insert(CREATED_BY_TAG.into(), run.into());
        }
        let req = CreateRequest {
            parent: d.parent.clone(),
            kind: d.kind,
            region: d.region.clone(),
            name: d.name.clone(),
            spec,
            tags,
            depends_on: d.depends_on.clone(),
        };
        match with_backoff(&format!("create {} {}", d.kind, d.name), || b.create(&req)).await {
            Ok(r) => Ok(Made::Created(r)),
            // Someone created it between our find and create (a parallel step or retry).
            Err(e) if e.kind == ErrorKind::Conflict => Ok(Made::Found(
                b.find(&d.identity()).await?.ok_or(StepError::from(e))?,
            )),
            Err(e) => Err(e.into()),
        }
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
                // No backoff: what refuses the delete here is a resource that refers to this
                // one, which waiting does not move.
                let gone = match b.delete(&old).await {
                    Ok(()) => b.wait_deleted(&old, DELETE_TIMEOUT).await,
                    Err(e) => Err(e),
                };
                match gone {
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
                let new = self.create(d, created_by.as_deref()).await?.resource();
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
                let request = UpdateRequest {
                    spec: old.spec.clone(),
                    drifted: Vec::new(),
                    tags: aside,
                    depends_on: old.depends_on.clone(),
                };
                b.update(&old, &request).await?;
                let new = self.create(d, created_by.as_deref()).await?.resource();
                let fate = match b.delete(&old).await {
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
            Label {
                kind: d.kind.name(),
                name: &d.name,
                parent: d.parent.as_deref(),
                region: &d.region,
            },
            &replaced.id,
            &format!("{key} was {has}, which cannot change in place"),
        );
        Ok(replaced)
    }

    /// Waits until a resource is available (the sim moves its virtual clock).
    pub async fn wait(&self, r: &Resource, timeout: Duration) -> Result<Resource, StepError> {
        Ok(self.backend.wait_available(r, timeout).await?)
    }

    /// Records a deletion done outside [`Cx::ensure`] (teardown, superseded resources).
    pub fn note_deleted(&mut self, r: &Resource) {
        resource_event("deleted", Label::of(r), &r.id, "");
        self.changes
            .push((Change::Deleted, format!("deleted {}", Label::of(r))));
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

/// The first wait of [`with_backoff`]; each next one doubles, up to [`BACKOFF_MAX`].
pub const BACKOFF_FIRST: Duration = Duration::from_secs(1);
/// The longest single wait of [`with_backoff`].
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// How many times [`with_backoff`] calls again before it gives up (about 2 minutes of waits in
/// all: 1, 2, 4, 8, 16, 30, 30, 30 s).
pub const BACKOFF_RETRIES: u32 = 8;

/// How long a deleted resource may stay `deleting` before teardown or a replacement gives up
/// on it (a NAT gateway takes about a minute, an Aurora cluster several).
pub const DELETE_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// Whether a failed call may succeed if made again in a moment: something still depends on the
/// resource (an ENI detaching), it is not ready yet, the cloud throttled, or it has not yet
/// seen what was just made elsewhere (a new IAM role Lambda cannot assume yet, which AWS
/// reports as an invalid parameter naming the role).
pub fn transient(e: &CloudError) -> bool {
    match e.kind {
        ErrorKind::DependencyViolation | ErrorKind::NotReady | ErrorKind::Throttled => true,
        ErrorKind::InvalidInput => {
            let m = e.message.to_ascii_lowercase();
            m.contains("role") && (m.contains("assume") || m.contains("cannot be assumed"))
        }
        _ => false,
    }
}

/// Calls `call` until it succeeds, fails for good, or has been retried [`BACKOFF_RETRIES`]
/// times: after a [transient](transient) failure it waits (exponentially longer each time) on
/// the run's clock, tokio's, which sim runs pause, so a wait there costs no wall time.
pub async fn with_backoff<T, F, Fut>(what: &str, mut call: F) -> Result<T, CloudError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, CloudError>>,
{
    let mut wait = BACKOFF_FIRST;
    let mut tries = 0;
    loop {
        match call().await {
            Err(e) if transient(&e) && tries < BACKOFF_RETRIES => {
                tries += 1;
                tracing::debug!(what, error = %e.message, wait_ms = wait.as_millis() as u64, "Retrying after a transient error");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(BACKOFF_MAX);
            }
            other => return other,
        }
    }
}

/// Deletes `r` (retrying transient refusals, [`with_backoff`]) and waits until it is gone, so
/// that what it lived in can be deleted next.
pub(crate) async fn delete_and_wait(b: &dyn CloudBackend, r: &Resource) -> Result<(), CloudError> {
    with_backoff(&format!("delete {} {}", r.kind, r.name), || b.delete(r)).await?;
    b.wait_deleted(r, DELETE_TIMEOUT).await
}

/// What [`Cx::create`] got: the resource it created, or the one someone else created first.
enum Made {
    Created(Resource),
    Found(Resource),
}

impl Made {
    fn resource(self) -> Resource {
        match self {
            Made::Created(r) | Made::Found(r) => r,
        }
    }
}

/// The environment `r` belongs to (its suffix tag), if that is not `suffix`. A resource
/// without the tag (made before drflow tagged, or by hand) belongs to no other environment.
fn foreign_to<'r>(r: &'r Resource, suffix: &str) -> Option<&'r str> {
    r.tags
        .get(SUFFIX_TAG)
        .map(String::as_str)
        .filter(|s| *s != suffix)
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

/// A provisioning step: a spec, the names it builds, a body, and the shared undo.
pub(crate) struct CloudStep {
    spec: StepSpec,
    names: Names,
    backend: Arc<LazyBackend>,
    body: RunFn,
}

impl CloudStep {
    /// A cloud step type. `names` are the names its body builds (see [`Names`]): the
    /// declaration's `env_suffix` gets its length limit and the names rule from them.
    pub fn boxed(
        spec: StepSpec,
        names: Names,
        backend: &Arc<LazyBackend>,
        body: RunFn,
    ) -> Arc<dyn StepType> {
        Arc::new(CloudStep {
            spec: declare_names(spec, names),
            names,
            backend: Arc::clone(backend),
            body,
        })
    }

    /// The input with declared defaults filled in, so bodies need not repeat them, and every
    /// declared parameter present (null when it has no default): a key a body reads that is not
    /// there is a misspelt name, and [`input`](super::input) catches it in debug builds.
    fn with_defaults(&self, input: &Outputs) -> Outputs {
        let mut full = input.clone();
        for p in &self.spec.params {
            if !full.contains_key(p.name) {
                full.insert(p.name.into(), p.default.clone().unwrap_or(Value::Null));
            }
        }
        full
    }
}

/// The environment suffix: lower-case letters and digits in groups joined by single dashes. It
/// ends every resource name, and the strictest names built from it (S3 buckets, RDS identifiers,
/// ALBs) allow nothing else there.
pub const ENV_SUFFIX: Format = Format {
    name: "env-suffix",
    doc: "lower-case letters and digits, in groups joined by single dashes (e.g. `prod-eu`)",
    check: check_suffix,
    schema: Some(|| json!({"pattern": "^[a-z0-9]+(-[a-z0-9]+)*$"})),
};

fn check_suffix(suffix: &str) -> Result<(), Violation> {
    // What the suffix would be with the mistakes people make undone: `Prod_EU` -> `prod-eu`.
    let tidy = || {
        let mut t: String = suffix
            .to_ascii_lowercase()
            .chars()
            .map(|c| {
                if c == '_' || c == '.' || c == ' ' {
                    '-'
                } else {
                    c
                }
            })
            .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')
            .collect();
        while t.contains("--") {
            t = t.replace("--", "-");
        }
        t.trim_matches('-').to_string()
    };
    let with_hint = |v: Violation| {
        let t = tidy();
        if t.is_empty() || t == suffix {
            v.hint("write lower-case letters and digits, with single dashes between groups, e.g. `prod-eu`")
        } else {
            v.hint(format!("did you mean `{t}`?"))
        }
    };
    if suffix.is_empty() {
        return Err(with_hint(Violation::new(
            "must not be empty: it ends every resource name",
        )));
    }
    if let Some(c) = suffix
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(with_hint(Violation::new(format!(
            "holds `{c}` (`{suffix}`): it ends every resource name, and S3 bucket and RDS names \
             allow only lower-case letters, digits and dashes"
        ))));
    }
    if suffix.starts_with('-') || suffix.ends_with('-') {
        return Err(with_hint(Violation::new(format!(
            "starts or ends with a dash (`{suffix}`): names built from it would end with one, or \
             hold two in a row, which AWS refuses for ALB, RDS and S3 names"
        ))));
    }
    if suffix.contains("--") {
        return Err(with_hint(Violation::new(format!(
            "holds two dashes in a row (`{suffix}`), which AWS refuses in RDS identifiers"
        ))));
    }
    Ok(())
}

/// The `{…}` placeholders of a type part, in order.
fn placeholders(template: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        let Some(end) = rest[start..].find('}') else {
            break;
        };
        out.push(&rest[start + 1..start + end]);
        rest = &rest[start + end + 1..];
    }
    out
}

/// The type part with each `{field}` replaced by the input's value (and `{n}` by `99`, the
/// longest number a step uses).
fn fill(template: &str, input: &Outputs) -> String {
    let mut out = template.to_string();
    for field in placeholders(template) {
        let value = if field == "n" {
            "99".to_string()
        } else {
            match input.get(field) {
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
                None => String::new(),
            }
        };
        out = out.replacen(&format!("{{{field}}}"), &value, 1);
    }
    out
}

/// Whether `ty` is an instance of `template`: `{n}` matches digits, `{field}` anything.
fn matches_template(template: &str, ty: &str) -> bool {
    let Some(start) = template.find('{') else {
        return template == ty;
    };
    let Some(len) = template[start..].find('}') else {
        return template == ty;
    };
    let (head, field, tail) = (
        &template[..start],
        &template[start + 1..start + len],
        &template[start + len + 1..],
    );
    let Some(rest) = ty.strip_prefix(head) else {
        return false;
    };
    (1..=rest.len()).any(|n| {
        rest.is_char_boundary(n)
            && (field != "n" || rest[..n].bytes().all(|b| b.is_ascii_digit()))
            && matches_template(tail, &rest[n..])
    })
}

fn undeclared(step_type: &str, kind: Kind, name: &str) -> StepError {
    StepError::permanent(
        "undeclared_name",
        format!(
            "bug: step type {step_type} builds the {kind} name `{name}`, which its declared names \
             do not list, so its length was not checked before the run; nothing was created with it"
        ),
    )
}

/// Adds to a cloud step's declaration what its names imply: the format of `env_suffix`, its
/// longest length (from the fixed names), and a rule over the names that depend on other inputs.
fn declare_names(mut spec: StepSpec, names: Names) -> StepSpec {
    let mut tightest: Option<(usize, String)> = None;
    for (kind, ty) in names {
        let Some(rule) = kind.name_rule() else {
            continue;
        };
        if placeholders(ty).iter().any(|f| *f != "n") {
            continue;
        }
        let fixed = fill(ty, &Outputs::new()).chars().count() + 1;
        let room = rule.max_len.saturating_sub(fixed);
        if tightest.as_ref().is_none_or(|(r, _)| room < *r) {
            let shown = ty.replace("{n}", "N");
            tightest = Some((
                room,
                format!(
                    "`{shown}-<env_suffix>` is {}, which AWS limits to {} characters",
                    rule.what, rule.max_len
                ),
            ));
        }
    }
    if let Some(p) = spec.param_mut("env_suffix") {
        p.format = Some(ENV_SUFFIX);
        p.min_len = Some(1);
        if let Some((room, why)) = tightest {
            p.max_len = Some(room);
            p.max_len_why = Some(why);
        }
    }
    let templated: Vec<(Kind, &'static str)> = names
        .iter()
        .copied()
        .filter(|(k, t)| k.name_rule().is_some() && placeholders(t).iter().any(|f| *f != "n"))
        .collect();
    if templated.is_empty() {
        return spec;
    }
    let mut reads: Vec<&'static str> = vec!["env_suffix"];
    for (_, t) in &templated {
        for f in placeholders(t) {
            debug_assert!(
                f == "n" || spec.param(f).is_some(),
                "{}: the name `{t}` uses `{f}`, which is not a declared parameter",
                spec.name
            );
            if f != "n" && !reads.contains(&f) {
                reads.push(f);
            }
        }
    }
    let shown: Vec<String> = templated
        .iter()
        .map(|(k, t)| {
            format!(
                "`{t}-<env_suffix>` is {}",
                k.name_rule().map_or("a name", |r| r.what)
            )
        })
        .collect();
    let inputs: Vec<String> = reads.iter().map(|r| format!("`{r}`")).collect();
    let doc = format!(
        "The names built from {} fit AWS's limits: {}.",
        inputs.join(", "),
        shown.join("; ")
    );
    let fields = reads.clone();
    spec.rule(doc, &reads, move |input| {
        let suffix = input
            .get("env_suffix")
            .and_then(Value::as_str)
            .unwrap_or_default();
        for (kind, t) in &templated {
            let name = format!("{}-{suffix}", fill(t, input));
            let Err(problem) = kind.check_name(&name) else {
                continue;
            };
            // A name too long is the suffix's doing as much as anything; a bad character is
            // the doing of the input that holds it.
            let culprit = if problem.contains("characters long") {
                None
            } else {
                let rule = kind.name_rule();
                fields.iter().copied().find(|f| {
                    input
                        .get(*f)
                        .and_then(Value::as_str)
                        .is_some_and(|v| rule.is_some_and(|r| v.chars().any(|c| !r.allows(c))))
                })
            };
            let field = culprit.unwrap_or("env_suffix");
            let mut v = RuleViolation::at(field, format!("the name `{name}` {problem}"));
            v = v.hint(if field == "env_suffix" {
                let others: Vec<String> = fields
                    .iter()
                    .filter(|f| **f != "env_suffix")
                    .map(|f| format!("`{f}`"))
                    .collect();
                format!("shorten `env_suffix` (or {})", others.join(", "))
            } else {
                format!("change `{field}`")
            });
            return Err(v);
        }
        Ok(())
    })
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
            // The scheduler checked the declaration already; a caller outside a run may not have.
            check_suffix(&suffix)
                .map_err(|v| StepError::invalid_input(v.sentence("env_suffix")))?;
            let mut cx = Cx::new(backend, suffix, ctx, self.names, self.spec.name);
            let span = tracing::info_span!("step", runbook = %ctx.runbook, step = %ctx.step_id, uses = self.spec.name);
            let out = (self.body)(&mut cx, &input).instrument(span).await?;
            Ok(cx.finish(out))
        })
    }

    fn undo<'a>(&'a self, ctx: &'a StepContext, input: &'a Outputs) -> StepFuture<'a> {
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
                let parent = r.get("parent").and_then(Value::as_str);
                let id = Identity {
                    kind,
                    region: region.to_string(),
                    parent: parent.map(str::to_string),
                    name: name.to_string(),
                };
                let Some(found) = backend.find(&id).await? else {
                    continue;
                };
                // Only what this run created: what it found, updated or replaced stays, and so
                // does anything of another environment that a name might lead to. A kind AWS
                // cannot tag says so in the journal's entry instead of a tag.
                let other_env = input
                    .get("env_suffix")
                    .and_then(Value::as_str)
                    .and_then(|suffix| foreign_to(&found, suffix));
                let created = if kind.taggable() {
                    found.tags.get(CREATED_BY_TAG) == Some(&ctx.run_id)
                } else {
                    r.get("created").and_then(Value::as_str) == Some(ctx.run_id.as_str())
                };
                if !created || other_env.is_some() {
                    tracing::debug!(%kind, name, region, "Kept on undo: not created by this run");
                    kept.push(json!(format!("kept {}", Label::of(&found))));
                    continue;
                }
                match delete_and_wait(backend.as_ref(), &found).await {
                    Ok(()) => {
                        resource_event("deleted", Label::of(&found), &found.id, "");
                        deleted.push(json!(format!("deleted {}", Label::of(&found))));
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
    use crate::CloudConfig;

    #[test]
    fn the_suffix_is_lower_case_letters_digits_and_single_dashes() {
        assert!(check_suffix("prod-eu").is_ok());
        assert!(check_suffix("p1").is_ok());
        let v = check_suffix("Prod_EU").unwrap_err();
        assert!(v.problem.starts_with("holds `P` (`Prod_EU`)"), "{v}");
        assert_eq!(v.hint.as_deref(), Some("did you mean `prod-eu`?"));
        let v = check_suffix("prod-").unwrap_err();
        assert!(v.problem.starts_with("starts or ends with a dash"), "{v}");
        assert_eq!(v.hint.as_deref(), Some("did you mean `prod`?"));
        assert!(check_suffix("-prod").is_err());
        assert!(check_suffix("prod--eu").is_err());
        assert!(check_suffix("").is_err());
    }

    #[test]
    fn type_parts_match_their_templates() {
        assert!(matches_template("alb", "alb"));
        assert!(!matches_template("alb", "albx"));
        assert!(matches_template("nat-gateway-{n}", "nat-gateway-12"));
        assert!(!matches_template("nat-gateway-{n}", "nat-gateway-x"));
        assert!(matches_template(
            "{name}-{primary_region}",
            "artifacts-us-east-1"
        ));
        assert!(matches_template("alias/{name}", "alias/kms-key"));
        assert!(!matches_template("alias/{name}", "kms-key"));
    }

    /// The limits: ALB and target group names 32 characters, RDS identifiers 63,
    /// EventBridge rules and IAM roles 64; each step allows the longest suffix its own names fit.
    #[test]
    fn each_step_allows_the_longest_suffix_its_names_fit() {
        let reg = crate::registry(&CloudConfig::default());
        let limit = |name: &str| {
            let spec = reg.get(name).expect(name).spec();
            let p = spec.param("env_suffix").expect("env_suffix");
            (p.max_len, p.max_len_why.clone().unwrap_or_default())
        };
        let (n, why) = limit("elb.load_balancer");
        assert_eq!(n, Some(28), "alb-<suffix> is at most 32");
        assert!(why.contains("`alb-<env_suffix>` is an ALB name"), "{why}");
        assert_eq!(
            limit("rds.global_database").0,
            Some(45),
            "aurora-instance-1-<suffix>, 63"
        );
        assert_eq!(
            limit("lambda.replication_monitor").0,
            Some(35),
            "replication-monitor-schedule-<suffix> is an EventBridge rule, 64"
        );
        assert_eq!(
            limit("iam.app_roles").0,
            Some(52),
            "lambda-role-<suffix>, 64"
        );
        assert_eq!(
            limit("s3.replicated_buckets").0,
            Some(44),
            "s3-replication-role-<suffix>, 64"
        );
        assert_eq!(
            limit("events.alarm_queue").0,
            Some(44),
            "events-forward-role-<suffix>, 64"
        );
        // A step that builds no name sets no limit.
        assert_eq!(limit("cloud.teardown").0, None);
    }

    /// Bucket names hold a region, so their limit is a rule over the suffix and the regions.
    #[test]
    fn bucket_names_are_checked_with_their_regions() {
        let reg = crate::registry(&CloudConfig::default());
        let spec = reg.get("s3.replicated_buckets").unwrap().spec();
        let input = |suffix: &str| {
            let mut m = Outputs::new();
            m.insert("env_suffix".into(), json!(suffix));
            m.insert("name".into(), json!("artifacts"));
            m.insert("primary_region".into(), json!("ap-southeast-1"));
            m.insert("standby_region".into(), json!("us-east-1"));
            m
        };
        let rule = spec
            .rules
            .iter()
            .find(|r| r.reads.contains(&"primary_region") && r.reads.contains(&"env_suffix"))
            .expect("the names rule");
        // artifacts-ap-southeast-1-<suffix>: 25 characters before the suffix.
        assert!((rule.check)(&input(&"a".repeat(38))).is_ok());
        let v = (rule.check)(&input(&"a".repeat(39))).unwrap_err();
        assert_eq!(v.field, Some("env_suffix"));
        assert!(
            v.message
                .ends_with("is 64 characters long, but an S3 bucket name is at most 63"),
            "{v}"
        );
        let v = (rule.check)(&input("s3alias")).unwrap_err();
        assert!(v.message.contains("which S3 reserves"), "{v}");
    }

    #[test]
    fn a_name_the_declaration_does_not_list_is_refused_before_the_cloud_sees_it() {
        let dir = tempfile::tempdir().expect("dir");
        let backend: Arc<dyn CloudBackend> = Arc::new(crate::sim::SimBackend::open(dir.path()));
        let cx = Cx::new(
            backend,
            "prod".into(),
            &StepContext::detached("s"),
            &[(Kind::LoadBalancer, "alb")],
            "test.step",
        );
        assert!(cx.check_name(Kind::LoadBalancer, "alb-prod").is_ok());
        let e = cx.check_name(Kind::LoadBalancer, "nlb-prod").unwrap_err();
        assert_eq!(e.kind, "undeclared_name");
        assert!(cx.check_name(Kind::Route, "rtb-1:0.0.0.0/0").is_ok());
    }

    fn table_and_route<'a>(cx: &'a mut Cx, _p: &'a Outputs) -> BodyFuture<'a> {
        Box::pin(async move {
            let region = "eu-south-1";
            let name = cx.name("rt");
            let tags = cx.tags(&name, Role::Primary);
            let rt = cx
                .ensure(Desired::new(Kind::RouteTable, region, name, json!({})).tags(tags))
                .await?;
            let tags = cx.tags("0.0.0.0/0", Role::Primary);
            cx.ensure(
                Desired::child(
                    Kind::Route,
                    region,
                    &rt.id,
                    "0.0.0.0/0",
                    json!({"route_table_id": rt.id, "destination_cidr_block": "0.0.0.0/0"}),
                )
                .deps([rt.id.clone()])
                .tags(tags),
            )
            .await?;
            Ok(Outputs::new())
        })
    }

    /// A route carries no tag, so whether a run created it is in the step's journaled
    /// `resources`: the undo of the run that created it deletes it, the undo of a run that
    /// found it keeps it.
    #[tokio::test]
    async fn the_undo_of_an_untaggable_resource_follows_the_journal() {
        let dir = tempfile::tempdir().unwrap();
        let sim = Arc::new(crate::sim::SimBackend::open(dir.path()));
        let backend: Arc<dyn CloudBackend> = sim.clone();
        let lazy = Arc::new(LazyBackend::from_backend(
            crate::CloudConfig::sim(dir.path()),
            backend,
        ));
        let step = CloudStep::boxed(
            cloud_spec("test.route", "A table and its default route."),
            &[(Kind::RouteTable, "rt")],
            &lazy,
            table_and_route,
        );
        let mut input = Outputs::new();
        input.insert("env_suffix".into(), json!("t1"));
        let ctx = |run: &str, prev: Option<Outputs>| {
            let mut c = StepContext::detached("s");
            c.run_id = run.into();
            c.previous_outputs = prev;
            c
        };
        let first = step.run(&ctx("run-1", None), &input).await.unwrap();
        let route_entry = |o: &Outputs| o["resources"][1].clone();
        let e = route_entry(&first);
        assert_eq!(e["kind"], "route");
        assert_eq!(e["name"], "0.0.0.0/0");
        assert!(e["parent"].as_str().unwrap().starts_with("rtb-"), "{e}");
        assert_eq!(e["created"], "run-1", "the run that created it");
        let route = sim.snapshot().unwrap().list(None, Some(Kind::Route));
        assert!(route[0].tags.is_empty(), "AWS cannot tag a route");

        let second = step.run(&ctx("run-2", None), &input).await.unwrap();
        assert_eq!(second["change"], "unchanged");
        assert_eq!(route_entry(&second).get("created"), None);
        let undo2 = step
            .undo(&ctx("run-2", Some(second)), &input)
            .await
            .unwrap();
        assert_eq!(undo2["deleted"], json!([]));
        assert_eq!(sim.snapshot().unwrap().len(), 2);

        // A later attempt of run-1 (a retry, or a resume after a kill between the create and
        // the step's end) finds the route; the note its first attempt wrote ahead says it is
        // run-1's, unless a `not_created` note came after it.
        let mut entry = route_entry(&first);
        entry.as_object_mut().unwrap().remove("created");
        let with_notes = |notes: Vec<Value>| {
            let mut c = ctx("run-1", None);
            c.notes = notes;
            c
        };
        let again = step
            .run(&with_notes(vec![json!({"creating": entry})]), &input)
            .await
            .unwrap();
        assert_eq!(route_entry(&again)["created"], "run-1");
        let declined = step
            .run(
                &with_notes(vec![
                    json!({"creating": entry}),
                    json!({"not_created": entry}),
                ]),
                &input,
            )
            .await
            .unwrap();
        assert_eq!(route_entry(&declined).get("created"), None);

        let undo1 = step.undo(&ctx("run-1", Some(first)), &input).await.unwrap();
        assert_eq!(undo1["deleted"].as_array().unwrap().len(), 2, "{undo1:?}");
        assert!(sim.snapshot().unwrap().is_empty());
    }

    /// DependencyViolation is retried with doubling waits on the run's clock (paused here, so
    /// the test takes no wall time), and given up after a bound.
    #[tokio::test(start_paused = true)]
    async fn transient_errors_are_retried_with_backoff_on_the_run_clock() {
        let start = tokio::time::Instant::now();
        let mut calls = 0;
        let r = with_backoff("delete x", || {
            calls += 1;
            let n = calls;
            async move {
                if n < 3 {
                    Err(CloudError::new(ErrorKind::DependencyViolation, "in use"))
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        assert_eq!(r, Ok(3));
        assert_eq!(start.elapsed(), Duration::from_secs(1 + 2));

        let start = tokio::time::Instant::now();
        let mut calls = 0;
        let r: Result<(), _> = with_backoff("delete y", || {
            calls += 1;
            async { Err(CloudError::new(ErrorKind::DependencyViolation, "in use")) }
        })
        .await;
        assert_eq!(r.unwrap_err().kind, ErrorKind::DependencyViolation);
        assert_eq!(calls, 1 + BACKOFF_RETRIES);
        assert_eq!(
            start.elapsed(),
            Duration::from_secs(1 + 2 + 4 + 8 + 16 + 30 + 30 + 30)
        );

        // A permanent error is not retried; a role Lambda cannot assume yet is.
        let mut calls = 0;
        let _: Result<(), _> = with_backoff("create z", || {
            calls += 1;
            async { Err(CloudError::new(ErrorKind::InvalidInput, "bad cidr")) }
        })
        .await;
        assert_eq!(calls, 1);
        assert!(transient(&CloudError::new(
            ErrorKind::InvalidInput,
            "The role defined for the function cannot be assumed by Lambda."
        )));
    }

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
