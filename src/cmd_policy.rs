//! `drflow policy RUNBOOK`: the least-privilege IAM policy an operator needs to run a runbook on
//! the aws target, merged from the permissions each of its step types declares
//! ([`drflow_steps::policy`]). Nothing is contacted; the runbook is compiled, not run.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use drflow_engine::{CheckTime, Runbook};
use drflow_steps::policy::{Permission, declared_step_types, iam_action, step_actions};
use serde_json::{Value, json};

use crate::{EXIT_OK, Failure, Global, cmd_validate, load, parse_flags, registry};

/// `drflow policy`.
#[derive(Args)]
pub struct PolicyArgs {
    /// The runbook file (not needed with `--output markdown`).
    file: Option<PathBuf>,
    /// Set a parameter: `-p name=value`; the regions in the ARNs come from the parameters whose
    /// name contains `region`.
    #[arg(short = 'p', long = "param", value_name = "NAME=VALUE")]
    params: Vec<String>,
    /// A YAML file of parameters (`name: value` lines); `-p` overrides it.
    #[arg(long)]
    params_file: Option<PathBuf>,
    /// The 12-digit AWS account id to put in the ARNs (default: the placeholder `${account}`).
    #[arg(long, value_name = "ID", value_parser = parse_account)]
    account: Option<String>,
    /// Add what `drflow daemon` itself calls besides the runbook's steps: reading and deleting
    /// the alarm queue's messages, the reconcile's DescribeAlarms, finding the probe's health
    /// check (docs/operations.md).
    #[arg(long)]
    daemon: bool,
    /// json (the IAM policy document), text (its statements, readable) or markdown (every step
    /// type's permissions: the docs/policy.md page; no runbook).
    #[arg(long, default_value = "json")]
    output: PolicyFormat,
}

/// How `drflow policy` prints.
#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum PolicyFormat {
    /// The IAM policy document.
    Json,
    /// Its statements, one action a line.
    Text,
    /// Every step type's permissions (docs/policy.md).
    Markdown,
}

fn parse_account(s: &str) -> Result<String, String> {
    if s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()) {
        Ok(s.to_string())
    } else {
        Err(format!(
            "`{s}` is not an AWS account id, which is 12 digits (`aws sts get-caller-identity` shows it)"
        ))
    }
}

/// Prints the policy of `args.file` (or the reference page). Exit 0, or 2 for bad input.
pub fn cmd_policy(global: &Global, args: &PolicyArgs) -> Result<u8, Failure> {
    if args.output == PolicyFormat::Markdown {
        if args.file.is_some() {
            return Err(Failure::invalid(
                "error: `--output markdown` prints every step type's permissions, not a runbook's\n  \
                 hint: leave the runbook out, or use `--output json` for its policy\n",
            ));
        }
        out!("{}", markdown());
        return Ok(EXIT_OK);
    }
    let Some(file) = &args.file else {
        return Err(Failure::invalid(
            "error: `drflow policy` needs a runbook file\n  hint: e.g. `drflow policy runbooks/provision.yaml --params-file runbooks/params/eu.yaml`\n",
        ));
    };
    let (rb, source) = load(file, &registry(global))?;
    let flags = parse_flags(&args.params)?;
    let (resolved, _) = cmd_validate::resolve_and_check(
        &rb,
        &source,
        args.params_file.as_deref(),
        &flags,
        CheckTime::Validate,
        false,
    )?;
    let regions: BTreeSet<String> = resolved
        .values
        .iter()
        .filter(|(name, _)| name.contains("region"))
        .filter_map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .collect();
    let policy = Policy::of(&rb, &regions, args.account.as_deref(), args.daemon);
    match args.output {
        PolicyFormat::Json => outln!("{:#}", policy.document()),
        _ => out!("{}", policy.text(&rb)),
    }
    let mut unfilled = Vec::new();
    if regions.is_empty() && policy.has_placeholder("${region}") {
        unfilled.push("`${region}` (no parameter whose name contains `region` has a value: give it with -p or --params-file)");
    }
    if args.account.is_none() && policy.has_placeholder("${account}") {
        unfilled.push("`${account}` (give --account ID)");
    }
    for u in unfilled {
        eprintln!("drflow: the policy still holds the placeholder {u}");
    }
    Ok(EXIT_OK)
}

/// A merged policy: for each IAM action, the resources it needs.
struct Policy {
    /// The step types it covers, with their count of steps.
    step_types: BTreeMap<String, usize>,
    /// IAM action -> resources (filled in).
    actions: BTreeMap<String, BTreeSet<String>>,
}

impl Policy {
    fn of(rb: &Runbook, regions: &BTreeSet<String>, account: Option<&str>, daemon: bool) -> Policy {
        let mut step_types: BTreeMap<String, usize> = BTreeMap::new();
        for s in &rb.steps {
            *step_types.entry(s.uses.clone()).or_default() += 1;
        }
        let mut actions: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        if daemon {
            for perm in drflow_steps::policy::DAEMON_ACTIONS {
                let entry = actions.entry(perm.action.to_string()).or_default();
                entry.extend(fill(perm, regions, account));
            }
        }
        for step_type in step_types.keys() {
            for perm in step_actions(step_type) {
                let entry = actions
                    .entry(iam_action(perm.action).to_string())
                    .or_default();
                entry.extend(fill(perm, regions, account));
            }
        }
        // A `*` resource covers every other one of the same action.
        for resources in actions.values_mut() {
            if resources.contains("*") {
                resources.retain(|r| r == "*");
            }
        }
        Policy {
            step_types,
            actions,
        }
    }

    /// The statements: per service, the actions that share the same resources.
    fn statements(&self) -> Vec<(String, Vec<String>, Vec<String>)> {
        let mut groups: BTreeMap<(String, Vec<String>), Vec<String>> = BTreeMap::new();
        for (action, resources) in &self.actions {
            let service = action.split(':').next().unwrap_or_default().to_string();
            groups
                .entry((service, resources.iter().cloned().collect()))
                .or_default()
                .push(action.clone());
        }
        let mut per_service: BTreeMap<String, usize> = BTreeMap::new();
        groups
            .into_iter()
            .map(|((service, resources), actions)| {
                let n = per_service.entry(service.clone()).or_default();
                *n += 1;
                let sid = if *n == 1 {
                    sid(&service)
                } else {
                    format!("{}{n}", sid(&service))
                };
                (sid, actions, resources)
            })
            .collect()
    }

    fn document(&self) -> Value {
        let statements: Vec<Value> = self
            .statements()
            .into_iter()
            .map(|(sid, actions, resources)| {
                let resource = if resources.len() == 1 {
                    json!(resources[0])
                } else {
                    json!(resources)
                };
                json!({
                    "Sid": sid,
                    "Effect": "Allow",
                    "Action": actions,
                    "Resource": resource,
                })
            })
            .collect();
        json!({ "Version": "2012-10-17", "Statement": statements })
    }

    fn text(&self, rb: &Runbook) -> String {
        let mut s = format!(
            "IAM policy for {} ({}): {} actions in {} statements, for the step types {}\n",
            rb.name,
            rb.file,
            self.actions.len(),
            self.statements().len(),
            self.step_types
                .keys()
                .filter(|t| !step_actions(t).is_empty())
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        );
        for (sid, actions, resources) in self.statements() {
            s.push_str(&format!("\n{sid}: on {}\n", resources.join(", ")));
            for a in actions {
                s.push_str(&format!("  {a}\n"));
            }
        }
        s
    }

    fn has_placeholder(&self, placeholder: &str) -> bool {
        self.actions
            .values()
            .flatten()
            .any(|r| r.contains(placeholder))
    }
}

/// `Ec2`, `Elasticloadbalancing`: a statement id (letters and digits only).
fn sid(service: &str) -> String {
    let mut c = service.chars();
    match c.next() {
        Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
        None => String::new(),
    }
}

/// The ARNs of a permission's pattern: one per region when the runbook's regions are known, the
/// account filled in when given.
fn fill(perm: &Permission, regions: &BTreeSet<String>, account: Option<&str>) -> Vec<String> {
    let with_account = match account {
        Some(a) => perm.resource.replace("${account}", a),
        None => perm.resource.to_string(),
    };
    if !with_account.contains("${region}") || regions.is_empty() {
        return vec![with_account];
    }
    regions
        .iter()
        .map(|r| with_account.replace("${region}", r))
        .collect()
}

/// The docs/policy.md page: every step type's permissions.
fn markdown() -> String {
    let mut s = String::from(
        "# IAM permissions per step type\n\n\
         <!-- Generated from steps/src/policy.rs by `drflow policy --output markdown`; do not edit by hand. -->\n\n\
         `drflow policy RUNBOOK [--params-file F] [-p name=value]… [--account ID] [--output json|text]`\n\
         prints the least-privilege IAM policy for running a runbook on the aws target: the\n\
         permissions below for the step types the runbook uses, merged into one policy document\n\
         (`Version` 2012-10-17), one statement per service and set of resources. `${region}` is\n\
         filled in once per region the runbook's parameters name (those whose name contains\n\
         `region`), `${account}` with `--account`; a placeholder left unfilled is reported on\n\
         stderr. No action is a wildcard; a resource is `*` only where IAM allows no\n\
         resource-level permission for the action (most `Describe*` and `List*` calls, and the\n\
         calls that create a resource whose id AWS picks). EC2, RDS and Elastic Load Balancing\n\
         changes are scoped to the account and region, since each call names several resource\n\
         types.\n\n\
         Actions are named as drflow's aws backend records its calls (`service:Operation`); the\n\
         S3 operations IAM authorises under another name are printed under that name\n\
         (`s3:PutBucketEncryption` is `s3:PutEncryptionConfiguration`). Step types not listed\n\
         (`core.*`, `dr.decide`, `dr.failover_report`) call no AWS API.\n",
    );
    for step_type in declared_step_types() {
        s.push_str(&format!(
            "\n## `{step_type}`\n\n| action | resource |\n|---|---|\n"
        ));
        for perm in step_actions(step_type) {
            let shown = iam_action(perm.action);
            let action = if shown == perm.action {
                format!("`{shown}`")
            } else {
                format!("`{shown}` (`{}`)", perm.action)
            };
            s.push_str(&format!("| {action} | `{}` |\n", perm.resource));
        }
    }
    s
}
