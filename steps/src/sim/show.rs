//! `drflow sim show` and `drflow sim reset`.

use std::fmt::Write as _;
use std::path::Path;

use super::world::{EPOCH_MS, World};
use super::{load_world, world_path};
use crate::backend::CloudError;

/// A table of every resource in the world, by region, with its state, plus the virtual clock.
pub fn show(state_dir: &Path) -> Result<String, CloudError> {
    let path = world_path(state_dir);
    let world = load_world(&path)?;
    Ok(render(&world, &path.display().to_string()))
}

/// Renders a world as `drflow sim show` prints it.
pub fn render(world: &World, source: &str) -> String {
    let mut out = String::new();
    let elapsed = world.clock_ms.saturating_sub(EPOCH_MS) / 1000;
    let _ = writeln!(
        out,
        "sim world {source}: {} resource(s), virtual clock +{}h{:02}m{:02}s",
        world.len(),
        elapsed / 3600,
        (elapsed / 60) % 60,
        elapsed % 60
    );
    if world.is_empty() {
        out.push_str("(empty: run `drflow run runbooks/provision.yaml` to build something)\n");
        return out;
    }
    for (region, resources) in &world.regions {
        let _ = writeln!(out, "\n{region} ({})", resources.len());
        let mut rows: Vec<_> = resources.values().collect();
        rows.sort_by_key(|r| (r.resource.kind, r.seq));
        let kind_w = rows
            .iter()
            .map(|r| r.resource.kind.name().len())
            .max()
            .unwrap_or(4);
        let name_w = rows
            .iter()
            .map(|r| r.resource.name.len())
            .max()
            .unwrap_or(4);
        let _ = writeln!(
            out,
            "  {:kind_w$}  {:name_w$}  {:9}  ID",
            "KIND", "NAME", "STATE"
        );
        for r in rows {
            let res = &r.resource;
            let _ = writeln!(
                out,
                "  {:kind_w$}  {:name_w$}  {:9}  {}",
                res.kind.name(),
                res.name,
                res.state.name(),
                res.id
            );
        }
    }
    out
}

/// Clears the world: the next call starts from an empty cloud at the epoch.
pub fn reset(state_dir: &Path) -> Result<(), CloudError> {
    let path = world_path(state_dir);
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(CloudError::new(
            crate::backend::ErrorKind::Internal,
            format!("sim: could not remove {}: {e}", path.display()),
        )),
    }
}
