//! `drflow sim …`: look at, clear, break, heal and move the time of the simulated cloud.

use std::path::Path;
use std::time::Duration;

use clap::Subcommand;
use drflow_steps::SimBackend;
use drflow_steps::sim::{Fault, FaultError, FaultKind, parse_duration};

use crate::{EXIT_FAILED, EXIT_INVALID, Failure, OutputFormat};

/// What to do with the simulated cloud.
#[derive(Subcommand)]
pub enum SimAction {
    /// Print every resource of the simulated cloud, by region, with its state.
    Show,
    /// Delete the simulated cloud's world: the next run starts from nothing.
    Reset,
    /// Inject a fault: region-outage, db-failure, az-loss, app-unhealthy, flapping, lag-spike,
    /// capacity-short or partition.
    Fault {
        /// The kind of fault.
        kind: String,
        /// The region it hits (default: the database writer's region for region-outage,
        /// db-failure, az-loss, app-unhealthy and flapping; every region for the others).
        #[arg(long)]
        region: Option<String>,
        /// For az-loss: the availability zone (default: the region's first zone).
        #[arg(long)]
        az: Option<String>,
        /// When it starts, from the simulated cloud's now: `+30s`, `+5m` (default: now). An
        /// absolute virtual time (`2026-01-01T00:45:00Z`) is taken too.
        #[arg(long, value_name = "+DURATION", allow_hyphen_values = true)]
        at: Option<String>,
        /// How long it lasts: `90s`, `5m`, `1h30m` (default: until healed).
        #[arg(long = "for", value_name = "DURATION")]
        for_: Option<String>,
    },
    /// End faults: every fault, or only those of one kind.
    Heal {
        /// The kind of fault to heal (default: all).
        kind: Option<String>,
    },
    /// Move the simulated cloud's time forward: health checks, replication, launches and
    /// faults play out.
    Advance {
        /// How far: `30s`, `5m`, `1h30m`.
        duration: String,
    },
    /// Show what a failover depends on, by region: health check and the share of checkers
    /// that see it healthy, alarms, replication lag and last replicated write, the writer,
    /// instances in service, and where DNS sends traffic.
    Status {
        /// text or json.
        #[arg(long, default_value = "text")]
        output: OutputFormat,
    },
}

fn invalid(message: String, hint: String) -> Failure {
    Failure {
        diagnostics: Vec::new(),
        code: EXIT_INVALID,
        message: format!("error: {message}\n  hint: {hint}"),
    }
}

fn failed(e: impl std::fmt::Display) -> Failure {
    Failure {
        diagnostics: Vec::new(),
        code: EXIT_FAILED,
        message: format!("error: {e}"),
    }
}

fn fault_failure(e: FaultError) -> Failure {
    match e {
        FaultError::Cloud(c) => failed(c),
        e => invalid(e.to_string(), e.hint()),
    }
}

fn kind(text: &str) -> Result<FaultKind, Failure> {
    text.parse::<FaultKind>().map_err(fault_failure)
}

fn duration(flag: &str, text: &str) -> Result<u64, Failure> {
    parse_duration(text).map_err(|e| {
        invalid(
            format!("{flag}: {e}"),
            "durations look like 90s, 5m, 1h30m or 500ms".into(),
        )
    })
}

/// `--at`: `+DURATION` from `now_ms`, or an absolute `YYYY-MM-DDTHH:MM:SSZ`.
fn start_at(text: &str, now_ms: u64) -> Result<u64, Failure> {
    let t = text.trim();
    if let Some(ms) = parse_utc(t) {
        return Ok(ms);
    }
    if let Some(rest) = t.strip_prefix('-') {
        let ago = duration("--at", rest)?;
        return Err(fault_failure(FaultError::InPast { ago_ms: ago.max(1) }));
    }
    if !t.starts_with('+') {
        return Err(invalid(
            format!(
                "--at {t:?}: expected +DURATION (from now) or a time like 2026-01-01T00:45:00Z"
            ),
            "e.g. --at +30s".into(),
        ));
    }
    Ok(now_ms.saturating_add(duration("--at", t)?))
}

/// `YYYY-MM-DDTHH:MM:SSZ` (or any timestamp an event may carry) as milliseconds since the
/// Unix epoch.
fn parse_utc(t: &str) -> Option<u64> {
    drflow_engine::triggers::parse_timestamp(t).ok()
}

fn since_epoch(ms: u64) -> String {
    let s = ms.saturating_sub(drflow_steps::sim::EPOCH_MS) / 1000;
    format!("+{}h{:02}m{:02}s", s / 3600, (s / 60) % 60, s % 60)
}

/// Runs a `drflow sim` command.
pub fn run(state_dir: &Path, action: &SimAction) -> Result<(), Failure> {
    match action {
        SimAction::Show => {
            let table = drflow_steps::sim::show(state_dir).map_err(failed)?;
            out!("{table}");
            Ok(())
        }
        SimAction::Reset => {
            drflow_steps::sim::reset(state_dir).map_err(failed)?;
            outln!(
                "sim world {} cleared",
                drflow_steps::sim::world_path(state_dir).display()
            );
            Ok(())
        }
        SimAction::Fault {
            kind: k,
            region,
            az,
            at,
            for_,
        } => {
            let kind = kind(k)?;
            let for_ms = for_.as_deref().map(|f| duration("--for", f)).transpose()?;
            let sim = SimBackend::open(state_dir);
            let now = sim.status().map_err(failed)?.now_ms;
            let at_ms = at.as_deref().map(|a| start_at(a, now)).transpose()?;
            let fault = Fault {
                kind,
                region: region.clone(),
                az: az.clone(),
                at_ms,
                for_ms,
            };
            let id = sim.inject(fault).map_err(fault_failure)?;
            let status = sim.status().map_err(failed)?;
            let f = status
                .faults
                .iter()
                .find(|f| f.id == id)
                .ok_or_else(|| failed("the fault ended at once"))?;
            outln!(
                "fault #{id} {} in {}{} from {}{} (sim time {})",
                f.kind,
                f.region.as_deref().unwrap_or("every region"),
                f.az.as_ref().map(|a| format!(" {a}")).unwrap_or_default(),
                if f.start_ms == now {
                    "now".to_string()
                } else {
                    since_epoch(f.start_ms)
                },
                f.end_ms.map_or(" until healed".to_string(), |e| format!(
                    " to {}",
                    since_epoch(e)
                )),
                since_epoch(now)
            );
            Ok(())
        }
        SimAction::Heal { kind: k } => {
            let kind = k.as_deref().map(kind).transpose()?;
            let sim = SimBackend::open(state_dir);
            let healed = sim.heal(kind).map_err(failed)?;
            if healed.is_empty() {
                outln!("no fault to heal");
            } else {
                let ids: Vec<String> = healed.iter().map(|i| format!("#{i}")).collect();
                outln!("healed fault(s) {}", ids.join(", "));
            }
            Ok(())
        }
        SimAction::Advance { duration: d } => {
            let by = duration("DURATION", d)?;
            let sim = SimBackend::open(state_dir);
            sim.advance(Duration::from_millis(by)).map_err(failed)?;
            let now = sim.status().map_err(failed)?.now_ms;
            outln!("sim time {}", since_epoch(now));
            Ok(())
        }
        SimAction::Status { output } => {
            let sim = SimBackend::open(state_dir);
            let status = sim.status().map_err(failed)?;
            match output {
                OutputFormat::Json => {
                    outln!("{}", serde_json::to_string_pretty(&status).map_err(failed)?)
                }
                OutputFormat::Text => out!("{}", drflow_steps::sim::render_status(&status)),
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_times_parse_as_utc() {
        assert_eq!(
            parse_utc("2026-01-01T00:00:00Z"),
            Some(drflow_steps::sim::EPOCH_MS)
        );
        assert_eq!(
            parse_utc("2026-01-01T00:45:00Z"),
            Some(drflow_steps::sim::EPOCH_MS + 2_700_000)
        );
        assert_eq!(parse_utc("2026-13-01T00:00:00Z"), None);
        assert_eq!(parse_utc("+30s"), None);
    }
}
