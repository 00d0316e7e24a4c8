//! Loading a journaled run back for `resume` or `rollback`: its lease, its journal replayed, its
//! runbook recompiled (refusing a changed one unless forced), its parameters rebuilt.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::compile::{Runbook, compile};
use crate::journal::Journal;
use crate::scheduler::Prior;
use crate::state::{ResumePoint, RunState, StepPhase};
use crate::step::{Outputs, Registry};

use super::error::RunnerError;
use super::hooks::{HookAction, HookPoint};
use super::leases::{LockWait, refuse_short_secrets, take_lock_lease, take_run_lease};
use super::{Runner, Session};

/// What a run is loaded for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// `drflow resume`: go on from where it stopped.
    Resume,
    /// `drflow rollback`: undo its succeeded steps.
    Rollback,
}

/// Which run to load, and how.
#[derive(Debug, Clone, Copy)]
pub struct LoadRequest<'a> {
    /// The run: its id, a unique prefix of it, or `latest`.
    pub run: &'a str,
    /// Resume or roll back.
    pub purpose: Purpose,
    /// The runbook file, if it is no longer where the run started it.
    pub file: Option<&'a Path>,
    /// Go on even though the runbook file changed since the run started.
    pub force: bool,
    /// Secret parameters given again (`-p name=value`, parsed): they are never journaled.
    pub secret_params: &'a [(String, String)],
    /// A parameters file with the secret parameters, as (name for messages, text).
    pub params_file: Option<(&'a str, &'a str)>,
    /// How to take the runbook's `lock:`.
    pub lock: LockWait,
}

/// Why there is nothing to do for a loaded run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NothingToDo {
    /// Resume: the run already succeeded.
    AlreadySucceeded,
    /// Rollback: the run is already rolled back.
    AlreadyRolledBack,
}

/// A loaded run.
#[derive(Debug)]
pub enum Loaded {
    /// The journal alone says there is nothing to do (exit 0).
    NothingToDo {
        /// The run.
        run_id: String,
        /// Why.
        reason: NothingToDo,
    },
    /// Ready to resume or roll back; its leases are held.
    Ready(Box<LoadedRun>),
}

/// A run loaded back, with the leases and journal to continue it.
#[derive(Debug)]
pub struct LoadedRun {
    /// The run's id.
    pub run_id: String,
    /// Its state, replayed from the journal.
    pub state: RunState,
    /// Its runbook, compiled again.
    pub runbook: Runbook,
    /// Its parameters: non-secret ones as journaled, secret ones as given again.
    pub params: Outputs,
    /// Its journal (attached to the run) and leases.
    pub session: Session,
}

impl LoadedRun {
    /// What a resume starts from: the steps that succeeded, with their outputs, and the
    /// attempts made so far with what they wrote down.
    pub fn prior(&self) -> Prior {
        let mut prior = Prior::default();
        for step in &self.runbook.steps {
            if let ResumePoint::Done { outputs } = self.state.resume_point(&step.id) {
                prior.succeeded.insert(step.id.clone(), outputs);
            }
            if let Some(s) = self.state.step(&step.id) {
                prior.attempts.insert(step.id.clone(), s.attempts);
                if !s.notes.is_empty() {
                    prior.notes.insert(step.id.clone(), s.notes.clone());
                }
            }
        }
        prior
    }
}

impl Runner {
    /// Loads a run for `resume` or `rollback`: takes the run's own lease, replays its journal,
    /// says when there is nothing to do or the run cannot be continued that way, recompiles its
    /// runbook with `registry` (refusing a changed file unless `force`), rebuilds its
    /// parameters (secrets from the request), takes the runbook's `lock:` and attaches the
    /// journal to the run.
    ///
    /// The run's lease comes first: another `resume` of the same run that finished in between
    /// would otherwise leave this one continuing from a state it no longer is in.
    ///
    /// Errors: every [`RunnerError`] of kind `Invalid` or `Busy`; on error no lease is held.
    pub async fn load(
        &self,
        registry: &Registry,
        request: LoadRequest<'_>,
    ) -> Result<Loaded, RunnerError> {
        let mut journal = self.open_existing_journal()?;
        let run_id = journal.find_run(request.run)?;
        let store = self.lease_store(&journal)?;
        let lease = take_run_lease(&store, &self.options.leases, &run_id, request.lock).await?;
        let mut leases = vec![lease];
        let loaded = self
            .load_leased(registry, &request, &mut journal, &run_id)
            .await;
        let (state, runbook, params) = match loaded {
            Ok(Some(loaded)) => loaded,
            Ok(None) => {
                super::leases::release_all(leases).await;
                let reason = match request.purpose {
                    Purpose::Resume => NothingToDo::AlreadySucceeded,
                    Purpose::Rollback => NothingToDo::AlreadyRolledBack,
                };
                return Ok(Loaded::NothingToDo { run_id, reason });
            }
            Err(RunnerError::Crashed { point }) => {
                leases.into_iter().for_each(crate::lock::HeldLease::abandon);
                journal.abandon();
                return Err(RunnerError::Crashed { point });
            }
            Err(e) => {
                super::leases::release_all(leases).await;
                return Err(e);
            }
        };
        let taken = take_lock_lease(
            &store,
            &self.options.leases,
            &runbook,
            &run_id,
            &params,
            self.options.clock.as_ref(),
            request.lock,
            self.options.notices.as_ref(),
        )
        .await
        .and_then(|lease| {
            journal.attach(&run_id)?;
            Ok(lease)
        });
        match taken {
            Ok(lease) => {
                leases.extend(lease);
                journal.set_fences(self.fences(&leases));
            }
            Err(e) => {
                super::leases::release_all(leases).await;
                return Err(e);
            }
        }
        let secrets = crate::secrets::Secrets::from_params(&params, &runbook.secret_params());
        let session = self.session(Some(journal), leases, secrets, None);
        Ok(Loaded::Ready(Box::new(LoadedRun {
            run_id,
            state,
            runbook,
            params,
            session,
        })))
    }

    /// [`Runner::load`] once the run's lease is held.
    async fn load_leased(
        &self,
        registry: &Registry,
        request: &LoadRequest<'_>,
        journal: &mut Journal,
        run_id: &str,
    ) -> Result<Option<(RunState, Runbook, Outputs)>, RunnerError> {
        // Read again now that the run is ours: another process may have recorded more of it
        // between the first read and the lease.
        journal.sync(Some(run_id))?;
        let events = journal.events(run_id)?;
        let state = RunState::replay(&events)?;
        if self.options.hooks.at(HookPoint::AfterReplay { run_id }) == HookAction::Crash {
            return Err(RunnerError::Crashed {
                point: HookPoint::AfterReplay { run_id }.describe(),
            });
        }
        // What the journal alone decides comes before anything about the runbook file.
        match (request.purpose, state.status) {
            (Purpose::Resume, crate::event::RunStatus::Succeeded)
            | (Purpose::Rollback, crate::event::RunStatus::RolledBack) => return Ok(None),
            (Purpose::Resume, crate::event::RunStatus::RolledBack) => {
                return Err(RunnerError::RolledBack {
                    run_id: run_id.to_owned(),
                });
            }
            (Purpose::Resume, _)
                if state.rollback_started()
                    || state.status == crate::event::RunStatus::RollbackFailed =>
            {
                return Err(RunnerError::BeingRolledBack {
                    run_id: run_id.to_owned(),
                    status: state.status.name(),
                });
            }
            _ => {}
        }
        let path = request
            .file
            .map_or_else(|| PathBuf::from(&state.path), Path::to_path_buf);
        if request.file.is_none() && !path.exists() {
            return Err(RunnerError::RunbookMissing {
                run_id: run_id.to_owned(),
                path,
            });
        }
        let mut rb = compile_file(&path, registry)?;
        if rb.name != state.runbook {
            return Err(RunnerError::OtherRunbook {
                path,
                found: rb.name,
                run_id: run_id.to_owned(),
                expected: state.runbook,
            });
        }
        if rb.content_hash != state.content_hash && !request.force {
            return Err(RunnerError::Changed {
                path,
                run_id: run_id.to_owned(),
                then: short(&state.content_hash).to_owned(),
                now: short(&rb.content_hash).to_owned(),
            });
        }
        if !request.force {
            RunState::replay_checked(&events, rb.steps.iter().map(|s| s.id.clone()))?;
        } else if request.purpose == Purpose::Resume {
            refuse_changed_succeeded_steps(&state, &rb, run_id)?;
        }
        let params = rebuild_params(&mut rb, &state, request)?;
        refuse_short_secrets(&rb, &params)?;
        Ok(Some((state, rb, params)))
    }
}

/// Reads and compiles a runbook file.
pub fn compile_file(path: &Path, registry: &Registry) -> Result<Runbook, RunnerError> {
    let source = std::fs::read_to_string(path).map_err(|source| RunnerError::Read {
        path: path.to_owned(),
        source,
    })?;
    let name = path.display().to_string();
    compile(&name, &source, registry).map_err(|diagnostics| RunnerError::Compile {
        name,
        text: source,
        diagnostics,
    })
}

fn short(hash: &str) -> &str {
    let h = hash.strip_prefix("sha256:").unwrap_or(hash);
    &h[..h.len().min(12)]
}

/// `force` lets a resume go on against an edited runbook, but never hands a step the outputs
/// its old definition produced: a succeeded step whose `uses` or `with` changed is refused.
fn refuse_changed_succeeded_steps(
    state: &RunState,
    rb: &Runbook,
    run_id: &str,
) -> Result<(), RunnerError> {
    let changed: Vec<String> = state
        .steps
        .iter()
        .filter(|(_, s)| s.status == StepPhase::Succeeded)
        .filter_map(|(id, _)| {
            let then = state.step_hashes.get(id)?;
            match rb.index.get(id) {
                Some(&i) if &rb.steps[i].definition_hash == then => None,
                Some(_) => Some(id.clone()),
                // A step the runbook no longer has is ignored under --force (docs/journal.md).
                None => None,
            }
        })
        .collect();
    if changed.is_empty() {
        return Ok(());
    }
    Err(RunnerError::ChangedSucceededSteps {
        run_id: run_id.to_owned(),
        steps: changed,
    })
}

/// The run's parameters: non-secret ones from the journal, as journaled (JSON values, never
/// turned into text and parsed again: a string `"007"` stays a string), secret ones from the
/// request (or their defaults).
fn rebuild_params(
    rb: &mut Runbook,
    state: &RunState,
    request: &LoadRequest<'_>,
) -> Result<Outputs, RunnerError> {
    let secrets: Vec<String> = rb.secret_params().into_iter().map(str::to_owned).collect();
    let user = request.secret_params;
    if let Some((name, _)) = user
        .iter()
        .find(|(n, _)| !rb.params.iter().any(|p| &p.name == n))
    {
        return Err(RunnerError::UnknownParam {
            name: name.clone(),
            runbook: rb.name.clone(),
        });
    }
    if let Some((name, _)) = user.iter().find(|(n, _)| !secrets.contains(n)) {
        return Err(RunnerError::NotSecretParam { name: name.clone() });
    }
    let mut journaled: Vec<(String, Value)> = Vec::new();
    if let Some(values) = state.params.as_object() {
        for (name, value) in values {
            let Some(decl) = rb.params.iter().find(|p| &p.name == name) else {
                continue;
            };
            if decl.secret {
                continue;
            }
            if !decl.ty.accepts(value) {
                return Err(RunnerError::JournaledParamType {
                    name: name.clone(),
                    value: value.clone(),
                    ty: decl.ty.to_string(),
                });
            }
            journaled.push((name.clone(), value.clone()));
        }
    }
    // The journaled values stand in for defaults while the secrets are resolved, so a required
    // parameter is not reported missing; they are put back as they were right after.
    let declared = rb.params.clone();
    for p in &mut rb.params {
        if let Some((_, v)) = journaled.iter().find(|(n, _)| n == &p.name) {
            p.default = Some(v.clone());
        }
    }
    let resolved = crate::params::resolve(rb, request.params_file, user);
    rb.params = declared;
    let mut params = resolved.map_err(|diagnostics| RunnerError::Params {
        diagnostics,
        file: request
            .params_file
            .map(|(n, s)| (n.to_owned(), s.to_owned())),
        secrets: secrets.clone(),
    })?;
    // The journal fixes every non-secret parameter, whatever a parameter file says.
    for (name, value) in journaled {
        params.insert(name, value);
    }
    Ok(params)
}
