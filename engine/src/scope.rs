//! What expressions can see while a run goes on: `params`, `steps`, `run` and `env`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use minijinja::Value as MjValue;
use minijinja::value::{Enumerator, Object, ObjectRepr};

use crate::event::Timestamp;
use crate::expr::from_json;
use crate::step::Outputs;

/// The scope of a run. Cheap to clone; steps' results are shared, not copied.
#[derive(Debug, Clone)]
pub struct Scope {
    params: MjValue,
    steps: Arc<StepsView>,
    run_id: Arc<str>,
    started_at: Timestamp,
}

#[derive(Debug, Default)]
struct StepsView {
    results: Mutex<HashMap<String, MjValue>>,
}

impl Object for StepsView {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &MjValue) -> Option<MjValue> {
        let key = key.as_str()?;
        self.results.lock().ok()?.get(key).cloned()
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        let keys: Vec<MjValue> = self
            .results
            .lock()
            .map(|r| r.keys().map(|k| MjValue::from(k.as_str())).collect())
            .unwrap_or_default();
        Enumerator::Values(keys)
    }
}

/// Environment variables, read when an expression asks for one.
#[derive(Debug)]
struct EnvView;

impl Object for EnvView {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &MjValue) -> Option<MjValue> {
        std::env::var(key.as_str()?).ok().map(MjValue::from)
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::NonEnumerable
    }
}

impl Scope {
    /// A scope with the resolved parameters and no step results yet.
    pub fn new(run_id: &str, started_at: Timestamp, params: &Outputs) -> Scope {
        Scope {
            params: from_json(&serde_json::Value::Object(params.clone())),
            steps: Arc::new(StepsView::default()),
            run_id: Arc::from(run_id),
            started_at,
        }
    }

    /// Records a step's status (`succeeded`, `failed`, `skipped`, …) and outputs.
    pub fn set_step(&self, id: &str, status: &str, outputs: Option<&Outputs>) {
        let mut entry = std::collections::BTreeMap::new();
        entry.insert("status", MjValue::from(status));
        entry.insert(
            "outputs",
            outputs
                .map(|o| from_json(&serde_json::Value::Object(o.clone())))
                .unwrap_or_else(|| {
                    MjValue::from(std::collections::BTreeMap::<String, MjValue>::new())
                }),
        );
        if let Ok(mut r) = self.steps.results.lock() {
            r.insert(id.to_string(), MjValue::from(entry));
        }
    }

    /// The value expressions are evaluated against, with `run.elapsed_seconds` as given.
    pub fn context(&self, elapsed_seconds: f64) -> MjValue {
        minijinja::context! {
            params => self.params.clone(),
            steps => MjValue::from_dyn_object(self.steps.clone()),
            run => minijinja::context! {
                id => &*self.run_id,
                started_at => iso8601(self.started_at),
                elapsed_seconds => (elapsed_seconds * 1000.0).round() / 1000.0,
            },
            env => MjValue::from_object(EnvView),
        }
    }
}

/// Formats a Unix timestamp as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn iso8601(ts: Timestamp) -> String {
    let millis = (ts * 1000.0).round() as i64;
    let secs = millis.div_euclid(1000);
    let ms = millis.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let tod = secs.rem_euclid(86_400);
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        tod / 3600,
        (tod % 3600) / 60,
        tod % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_timestamps() {
        assert_eq!(iso8601(0.0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(1_795_312_559.25), "2026-11-22T01:55:59.250Z");
    }

    #[test]
    fn steps_are_visible_once_set() {
        let scope = Scope::new("r1", 0.0, &Outputs::new());
        let mut out = Outputs::new();
        out.insert("x".into(), 5.into());
        scope.set_step("a", "succeeded", Some(&out));
        let ctx = scope.context(1.5);
        let env = minijinja::Environment::new();
        let e = env
            .compile_expression("steps.a.outputs.x + run.elapsed_seconds")
            .unwrap();
        assert_eq!(e.eval(&ctx).unwrap().to_string(), "6.5");
        let e = env.compile_expression("steps.a.status").unwrap();
        assert_eq!(e.eval(&ctx).unwrap().to_string(), "succeeded");
    }
}
