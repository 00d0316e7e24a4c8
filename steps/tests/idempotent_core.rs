//! The idempotency contract (docs/journal.md) for the built-in `core.*` steps: running a step
//! twice with the same input gives the same result, since a resume after a crash may run any
//! step again. (The cloud steps prove it against the sim in `provision.rs`: a second provision
//! changes nothing.)

use drflow_engine::{Outputs, StepContext};
use drflow_steps::{CloudConfig, registry};
use serde_json::{Value, json};

fn input(v: Value) -> Outputs {
    match v {
        Value::Object(m) => m,
        _ => Outputs::new(),
    }
}

#[tokio::test(start_paused = true)]
async fn every_core_step_gives_the_same_result_twice() {
    let dir = tempfile::tempdir().unwrap();
    let registry = registry(&CloudConfig::sim(dir.path()));
    let cases = [
        ("core.log", json!({"message": "hello", "level": "info"})),
        ("core.set", json!({"a": 1, "b": ["x"]})),
        ("core.assert", json!({"condition": true, "message": "ok"})),
        (
            "core.assert",
            json!({"condition": false, "message": "nope"}),
        ),
        ("core.sleep", json!({"duration": "2s"})),
        ("core.fail", json!({"message": "boom", "kind": "failed"})),
        (
            "core.wait_until",
            json!({"condition": true, "interval": "1s", "timeout": "5s"}),
        ),
    ];
    for (name, with) in cases {
        let step = registry
            .get(name)
            .unwrap_or_else(|| panic!("{name} is registered"));
        let input = input(with);
        let mut ctx = StepContext::detached("s");
        let first = step.run(&ctx, &input).await;
        // A resume runs the next attempt number: the result must not depend on it.
        ctx.attempt = 2;
        let second = step.run(&ctx, &input).await;
        assert_eq!(first, second, "{name} with {input:?}");
    }
}
