//! `drflow sim show` and `drflow sim reset`: look at or clear the simulated cloud.

use std::path::Path;

use clap::Subcommand;

/// What to do with the simulated cloud.
#[derive(Subcommand)]
pub enum SimAction {
    /// Print every resource of the simulated cloud, by region, with its state.
    Show,
    /// Delete the simulated cloud's world: the next run starts from nothing.
    Reset,
}

/// Runs a `drflow sim` command; errors are messages for stderr.
pub fn run(state_dir: &Path, action: &SimAction) -> Result<(), String> {
    match action {
        SimAction::Show => {
            let table = drflow_steps::sim::show(state_dir).map_err(|e| format!("error: {e}"))?;
            out!("{table}");
            Ok(())
        }
        SimAction::Reset => {
            drflow_steps::sim::reset(state_dir).map_err(|e| format!("error: {e}"))?;
            outln!(
                "sim world {} cleared",
                drflow_steps::sim::world_path(state_dir).display()
            );
            Ok(())
        }
    }
}
