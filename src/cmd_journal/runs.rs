//! `drflow runs`: the journaled runs, newest first, each with the environment it belongs to.

use std::time::Duration;

use clap::Args;
use drflow_engine::{JOURNAL_FILE, Journal, iso8601};
use serde_json::{Value, json};

use super::durable::journal_failure;
use super::environment::Environment;
use super::table::{Align, render};
use crate::{EXIT_OK, Failure, Global, OutputFormat};
use drflow_engine::runner::run_lease_key as run_key;

/// `drflow runs`.
#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct RunsArgs {
    #[command(subcommand)]
    action: Option<RunsAction>,
    /// text (a table) or json (one object per run, with its environment).
    #[arg(long, default_value = "text")]
    output: OutputFormat,
}

/// What to do with the journaled runs besides listing them.
#[derive(clap::Subcommand)]
pub enum RunsAction {
    /// Delete from the journal the runs that ended (succeeded, failed or rolled back) longer
    /// ago than a duration, keeping every run of the runbooks named by --keep.
    Prune {
        /// How old a run's end must be: `30d`, `720h`, `90m`.
        #[arg(long, value_parser = crate::parse_duration_arg)]
        older_than: Duration,
        /// A runbook name whose runs are kept whatever their age (repeat for more; default:
        /// failover, failback and provision: every failover's record stays, and `drflow
        /// outputs` still finds the environment's provision).
        #[arg(long = "keep", value_name = "RUNBOOK")]
        keep: Vec<String>,
        /// Say what would be deleted and delete nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// The runbooks whose runs `drflow runs prune` keeps unless told otherwise.
pub const KEPT_BY_DEFAULT: &[&str] = &["failover", "failback", "provision"];

/// `drflow runs prune`.
fn cmd_prune(
    global: &Global,
    older_than: Duration,
    keep: &[String],
    dry_run: bool,
) -> Result<u8, Failure> {
    let path = global.state_dir.join(JOURNAL_FILE);
    if global.journal.is_none() && !path.exists() {
        eprintln!("drflow: no runs recorded in {}", global.state_dir.display());
        return Ok(EXIT_OK);
    }
    let keep: Vec<&str> = if keep.is_empty() {
        KEPT_BY_DEFAULT.to_vec()
    } else {
        keep.iter().map(String::as_str).collect()
    };
    // Runs are stamped on their own clock: on the sim its virtual time, which only the world
    // knows (a sim run of January is not ten months old because the wall clock says so).
    let now = crate::cloud_config(global)
        .virtual_clock_ms()
        .map_or_else(drflow_engine::now, |ms| ms as f64 / 1000.0);
    let before = now - older_than.as_secs_f64();
    let mut journal = match crate::shared_journal::synced_journal(global)? {
        Some(j) => j,
        None => Journal::open(&path).map_err(journal_failure)?,
    };
    let gone = journal
        .prune(before, &keep, dry_run)
        .map_err(journal_failure)?;
    let verb = if dry_run { "would delete" } else { "deleted" };
    for r in &gone {
        outln!(
            "{verb} {} {} ({}, ended {})",
            r.id,
            r.runbook,
            r.status,
            r.finished_at.map(iso8601).unwrap_or_default()
        );
    }
    eprintln!(
        "drflow: {verb} {} that ended before {}; kept every run of {}",
        crate::count(gone.len(), "run"),
        iso8601(before),
        keep.join(", ")
    );
    Ok(EXIT_OK)
}

/// `drflow runs`.
pub fn cmd_runs(global: &Global, args: RunsArgs) -> Result<u8, Failure> {
    if let Some(RunsAction::Prune {
        older_than,
        keep,
        dry_run,
    }) = &args.action
    {
        return cmd_prune(global, *older_than, keep, *dry_run);
    }
    let shared = crate::shared_journal::synced_journal(global)?;
    let path = global.state_dir.join(JOURNAL_FILE);
    if shared.is_none() && !path.exists() {
        if args.output == OutputFormat::Json {
            outln!("[]");
        } else {
            eprintln!("drflow: no runs recorded in {}", global.state_dir.display());
        }
        return Ok(EXIT_OK);
    }
    let journal = match shared {
        Some(j) => j,
        None => Journal::open_read_only(&path).map_err(journal_failure)?,
    };
    let runs = journal.list_runs().map_err(journal_failure)?;
    let rows: Vec<Value> = runs
        .iter()
        .map(|r| {
            let live = r.status == "running"
                && drflow_engine::live_holder(&journal, &run_key(&r.id))
                    .ok()
                    .flatten()
                    .is_some();
            let status = if r.status == "running" && !live {
                "crashed".to_owned()
            } else {
                r.status.clone()
            };
            // A run that has not finished counts up to its last journaled event: about when a
            // crashed run died, and as far as a live one has got. Not up to now: a run's
            // timestamps are on its own clock, virtual time on the sim, which the wall clock
            // here knows nothing of.
            let end = r.finished_at.or(r.last_event_at).unwrap_or(r.started_at);
            json!({
                "id": r.id,
                "runbook": r.runbook,
                "path": r.path,
                "status": status,
                "started_at": iso8601(r.started_at),
                "finished_at": r.finished_at.map(iso8601),
                "duration_seconds": ((end - r.started_at) * 1000.0).round() / 1000.0,
                "environment": Environment::of(&r.params).map(|e| e.json()),
            })
        })
        .collect();
    if args.output == OutputFormat::Json {
        outln!("{:#}", Value::Array(rows));
        return Ok(EXIT_OK);
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .zip(&runs)
        .map(|(row, r)| {
            let env = Environment::of(&r.params);
            let secs = row["duration_seconds"].as_f64().unwrap_or(0.0);
            vec![
                r.id.clone(),
                r.runbook.clone(),
                env.as_ref().map_or("-", Environment::suffix).to_owned(),
                env.as_ref()
                    .map_or_else(|| "-".to_owned(), Environment::regions),
                row["status"].as_str().unwrap_or_default().to_owned(),
                row["started_at"].as_str().unwrap_or_default().to_owned(),
                drflow_engine::format_duration(Duration::from_secs_f64(secs.max(0.0))),
            ]
        })
        .collect();
    out!(
        "{}",
        render(
            "",
            &[
                "run id",
                "runbook",
                "environment",
                "regions",
                "status",
                "started",
                "duration"
            ],
            &[
                Align::Left,
                Align::Left,
                Align::Left,
                Align::Left,
                Align::Left,
                Align::Left,
                Align::Right
            ],
            &cells,
        )
    );
    Ok(EXIT_OK)
}
