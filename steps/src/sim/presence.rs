//! Whether the simulated world still holds what a run recorded. `drflow outputs` asks, so that it
//! can say when a run's endpoints point at nothing any more (after `drflow sim reset`, a destroy,
//! or a resource deleted behind drflow's back) instead of printing them as if they were live.

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::world::World;
use super::{load_world, world_path};
use crate::backend::CloudError;

/// One resource as a cloud step records it in its `resources` output: `{kind, region, name}`
/// (the kind's snake_case name, e.g. `load_balancer`; the region, or `global`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ResourceRef {
    /// The kind's name, as `drflow sim show` prints it.
    pub kind: String,
    /// Its region, or `global`.
    pub region: String,
    /// Its name (unique per kind and region, or per parent for a child).
    pub name: String,
    /// The id of the resource a child lives in (a route's route table, a record's hosted zone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
}

impl ResourceRef {
    /// The resources a step's outputs record under `resources`. Entries of another shape are
    /// skipped: the outputs of a `core.*` step, or of a step from an older drflow, record none.
    pub fn from_outputs(outputs: &Map<String, Value>) -> Vec<ResourceRef> {
        outputs
            .get("resources")
            .and_then(Value::as_array)
            .map(|rs| {
                rs.iter()
                    .filter_map(|r| serde_json::from_value(r.clone()).ok())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl fmt::Display for ResourceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        crate::backend::Label {
            kind: &self.kind,
            name: &self.name,
            parent: self.parent.as_deref(),
            region: &self.region,
        }
        .fmt(f)
    }
}

impl World {
    /// Whether the world holds a resource of this kind and name (in this parent) in this
    /// region, in any state.
    pub fn holds(&self, r: &ResourceRef) -> bool {
        self.regions.get(&r.region).is_some_and(|m| {
            m.values().any(|s| {
                s.resource.name == r.name
                    && s.resource.kind.name() == r.kind
                    && s.resource.parent == r.parent
            })
        })
    }
}

/// Of `refs`, those the world under `state_dir` does not hold, in the order given. A state
/// directory without a world file is an empty world (`drflow sim reset` removes the file).
///
/// # Errors
/// The world file cannot be read, or was written by a newer drflow.
pub fn missing(state_dir: &Path, refs: &[ResourceRef]) -> Result<Vec<ResourceRef>, CloudError> {
    let world = load_world(&world_path(state_dir))?;
    Ok(refs.iter().filter(|r| !world.holds(r)).cloned().collect())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn r(kind: &str, region: &str, name: &str) -> ResourceRef {
        ResourceRef {
            kind: kind.into(),
            region: region.into(),
            name: name.into(),
            parent: None,
        }
    }

    #[test]
    fn reads_the_resources_a_step_recorded_and_skips_other_shapes() {
        let outputs = json!({
            "change": "created",
            "resources": [
                {"kind": "vpc", "region": "eu-south-1", "name": "vpc-prod-eu"},
                "not a resource",
                {"kind": "vpc"},
            ],
        });
        assert_eq!(
            ResourceRef::from_outputs(outputs.as_object().unwrap()),
            vec![r("vpc", "eu-south-1", "vpc-prod-eu")]
        );
        assert!(ResourceRef::from_outputs(&Map::new()).is_empty());
    }

    #[test]
    fn tells_what_the_saved_world_holds_from_what_it_lost() {
        let dir = tempfile::tempdir().unwrap();
        let mut world = World::default();
        world
            .create(&crate::CreateRequest {
                parent: None,
                kind: crate::Kind::Vpc,
                region: "eu-south-1".into(),
                name: "vpc-prod-eu".into(),
                spec: json!({"cidr_block": "10.10.0.0/16"}),
                tags: Default::default(),
                depends_on: Vec::new(),
            })
            .unwrap();
        super::super::save_world(&world_path(dir.path()), &world).unwrap();
        let kept = r("vpc", "eu-south-1", "vpc-prod-eu");
        // Same name, but another kind, another region, another environment.
        let gone = [
            r("subnet", "eu-south-1", "vpc-prod-eu"),
            r("vpc", "eu-central-1", "vpc-prod-eu"),
            r("vpc", "eu-south-1", "vpc-eu"),
        ];
        let mut refs = vec![kept];
        refs.extend(gone.iter().cloned());
        assert_eq!(missing(dir.path(), &refs).unwrap(), gone.to_vec());
    }

    #[test]
    fn a_missing_world_file_holds_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let refs = [r("vpc", "eu-south-1", "vpc-prod-eu")];
        assert_eq!(missing(dir.path(), &refs).unwrap(), refs.to_vec());
    }
}
