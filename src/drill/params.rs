//! The drill's parameters: one parameter file and `-p` flags serve the provision, the failover
//! runbook and the drill itself, so they are checked against all three at once (every problem
//! located in the file or on the command line), then each runbook gets the values it declares.
//!
//! Layers, later over earlier: each runbook's own defaults, the trigger's `params_file` (from
//! `drflow.yaml`), the user's `--params-file`, `-p` flags, and for the failover run the
//! parameters the trigger firing passes.

use std::collections::BTreeMap;

use drflow_engine::{
    CheckTime, Diagnostics, Outputs, ParamDecl, ParamOrigin, Pos, ResolvedParams, Runbook,
    ValueType, check_values, parse_duration, resolve_params_located,
};
use serde_json::{Value, json};

use super::model::Objectives;
use crate::Failure;

/// The drill's own parameter for the recovery time objective (a duration, default 5m).
pub const RTO_OBJECTIVE: &str = "rto_objective";
/// The drill's own parameter for the recovery point objective (a duration, default 1m).
pub const RPO_OBJECTIVE: &str = "rpo_objective";

/// A parameter file: its name as shown in errors, and its text.
pub type Source = (String, String);

/// The parameters of one drill, resolved and checked.
#[derive(Debug, Clone)]
pub struct DrillParams {
    /// The provision runbook's parameters.
    pub provision: Outputs,
    /// The objectives the drill judges against.
    pub objectives: Objectives,
    /// Every value given (by a file or a flag), the drill's included, for the report.
    pub given: Outputs,
}

/// The drill's own parameters, declared as a runbook would.
fn own_params() -> Vec<ParamDecl> {
    let decl = |name: &str, default: &str, description: &str| ParamDecl {
        name: name.into(),
        ty: ValueType::Duration,
        default: Some(json!(default)),
        description: description.into(),
        secret: false,
        pos: Pos::new(0, 0),
        default_pos: None,
    };
    vec![
        decl(
            RTO_OBJECTIVE,
            "5m",
            "The drill's recovery time objective: the client's first failed request to its first success after recovery.",
        ),
        decl(
            RPO_OBJECTIVE,
            "1m",
            "The drill's recovery point objective: the span of acknowledged writes the new writer lacks.",
        ),
    ]
}

/// Resolves and checks the drill's parameters.
///
/// `union` is a second compilation of the failover runbook, used as the declaration of every
/// parameter the drill takes (it is consumed: its parameter list grows). `base` is the
/// trigger's parameter file, `user` the `--params-file`. Errors: an unknown name (with the
/// nearest known one), a value of the wrong type, a value a step would refuse (located where
/// it was written) — every one at once, exit 2.
pub fn resolve(
    mut union: Runbook,
    provision: (&Runbook, &str),
    failover: (&Runbook, &str),
    base: Option<&Source>,
    user: Option<&Source>,
    flags: &[(String, String)],
) -> Result<DrillParams, Failure> {
    union.name = "drill".into();
    for p in &provision.0.params {
        if !union.params.iter().any(|q| q.name == p.name) {
            union.params.push(p.clone());
        }
    }
    union.params.extend(own_params());
    let sources = |extra: &[(&str, &str)]| -> Vec<(String, String)> {
        let mut s: Vec<(String, String)> = vec![
            (provision.0.file.to_string(), provision.1.to_string()),
            (failover.0.file.to_string(), failover.1.to_string()),
        ];
        s.extend(base.cloned());
        s.extend(user.cloned());
        s.extend(extra.iter().map(|(a, b)| (a.to_string(), b.to_string())));
        s
    };
    let fail = |d: Diagnostics| {
        let owned = sources(&[]);
        let refs: Vec<(&str, &str)> = owned
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        Failure::diagnostics(d, &refs)
    };
    fn file(s: Option<&Source>) -> Option<(&str, &str)> {
        s.map(|(n, t)| (n.as_str(), t.as_str()))
    }
    let mut given = Outputs::new();
    let mut origins = BTreeMap::new();
    let mut errors = Vec::new();
    if base.is_some() {
        match resolve_params_located(&union, file(base), &[], false) {
            Ok(r) => take_given(r, &mut given, &mut origins),
            Err(d) => errors.extend(d.0),
        }
    }
    match resolve_params_located(&union, file(user), flags, false) {
        Ok(r) => take_given(r, &mut given, &mut origins),
        Err(d) => errors.extend(d.0),
    }
    if !errors.is_empty() {
        return Err(fail(Diagnostics(errors)));
    }
    let time = CheckTime::Run {
        run_id: "drill",
        started_at: drflow_steps::sim::EPOCH_MS as f64 / 1000.0,
    };
    let mut problems = Vec::new();
    let mut each = |rb: &Runbook| {
        let resolved = for_runbook(rb, &given, &origins);
        problems.extend(check_values(rb, &resolved, time).problems);
        resolved.values
    };
    let provision_values = each(provision.0);
    // Checked now; the run resolves them again with the firing's on top.
    each(failover.0);
    if !problems.is_empty() {
        return Err(fail(Diagnostics(problems)));
    }
    let objective = |name: &str, default: f64| {
        given
            .get(name)
            .and_then(Value::as_str)
            .and_then(|t| parse_duration(t).ok())
            .map_or(default, |d| d.as_secs_f64())
    };
    Ok(DrillParams {
        provision: provision_values,
        objectives: Objectives {
            rto_seconds: objective(RTO_OBJECTIVE, 300.0),
            rpo_seconds: objective(RPO_OBJECTIVE, 60.0),
        },
        given,
    })
}

/// Keeps the values that were given (not defaults), later layers over earlier ones.
fn take_given(r: ResolvedParams, given: &mut Outputs, origins: &mut BTreeMap<String, ParamOrigin>) {
    for (name, value) in r.values {
        match r.origins.get(&name) {
            Some(ParamOrigin::Default) | None => {}
            Some(origin) => {
                origins.insert(name.clone(), origin.clone());
                given.insert(name, value);
            }
        }
    }
}

/// `rb`'s parameters: the given values it declares, its own defaults for the rest.
fn for_runbook(
    rb: &Runbook,
    given: &Outputs,
    origins: &BTreeMap<String, ParamOrigin>,
) -> ResolvedParams {
    let mut out = ResolvedParams::default();
    for p in &rb.params {
        if let Some(v) = given.get(&p.name) {
            out.values.insert(p.name.clone(), v.clone());
            out.origins.insert(
                p.name.clone(),
                origins
                    .get(&p.name)
                    .cloned()
                    .unwrap_or(ParamOrigin::Default),
            );
        } else if let Some(d) = &p.default {
            out.values.insert(p.name.clone(), d.clone());
            out.origins.insert(p.name.clone(), ParamOrigin::Default);
        } else {
            out.missing.push(p.name.clone());
        }
    }
    out
}

/// The failover run's parameters: `base` with the trigger firing's on top, each converted to
/// the type the runbook declares (a firing renders text). Errors: a value the runbook refuses.
pub fn with_firing(
    rb: &Runbook,
    base: &Outputs,
    firing: &BTreeMap<String, Value>,
) -> Result<Outputs, String> {
    let flags: Vec<(String, String)> = firing
        .iter()
        .filter(|(k, _)| rb.params.iter().any(|p| &p.name == *k))
        .map(|(k, v)| {
            let text = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.clone(), text)
        })
        .collect();
    let resolved = resolve_params_located(rb, None, &flags, false).map_err(|d| d.render(&[]))?;
    let mut out = base.clone();
    for (k, _) in &flags {
        if let Some(v) = resolved.values.get(k) {
            out.insert(k.clone(), v.clone());
        }
    }
    Ok(out)
}

/// `rb`'s parameters from the drill's: the given values it declares, its defaults for the rest
/// (a trigger's runbook other than the first is checked when it starts).
pub fn for_runbook_values(rb: &Runbook, params: &DrillParams) -> Outputs {
    for_runbook(rb, &params.given, &BTreeMap::new()).values
}
