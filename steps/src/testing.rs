//! `core.append_file`: a step whose side effect can be counted, for tests of the journal
//! (crash, resume, rollback) and for demonstrating them.
//!
//! Unlike every other step it is deliberately **not** idempotent: each run appends one more line,
//! so a test can count how often the engine really ran it. Its undo appends `undo <line>`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use drflow_engine::{
    Outputs, Registry, StepContext, StepError, StepFuture, StepSpec, StepType, ValueType,
};
use serde_json::{Value, json};

/// Adds `core.append_file` to a registry.
pub fn register(registry: &mut Registry) {
    registry.register(Arc::new(AppendFile::new()));
}

struct AppendFile(StepSpec);

impl AppendFile {
    fn new() -> Self {
        AppendFile(
            StepSpec::new(
                "core.append_file",
                "Appends a line to a file (undo appends `undo <line>`). Not idempotent on \
                 purpose: tests count its lines to see how often a step really ran.",
            )
            .required(
                "path",
                ValueType::String,
                "The file to append to (created if missing).",
            )
            .required("line", ValueType::String, "The line to append.")
            .optional(
                "hold_while",
                ValueType::String,
                Value::Null,
                "After appending, wait while this file exists (lets a test kill the run mid-step).",
            )
            .optional(
                "fail_undo_while",
                ValueType::String,
                Value::Null,
                "The undo fails while this file exists.",
            )
            .output("line", ValueType::String, "The line appended.")
            .with_undo(),
        )
    }
}

fn string<'a>(input: &'a Outputs, name: &str) -> Option<&'a str> {
    input.get(name).and_then(Value::as_str)
}

fn append(path: &str, line: &str) -> Result<(), StepError> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| StepError::permanent("io", format!("cannot open {path}: {e}")))?;
    // One write call per line, so concurrent appends never interleave within a line.
    file.write_all(format!("{line}\n").as_bytes())
        .and_then(|()| file.sync_data())
        .map_err(|e| StepError::permanent("io", format!("cannot append to {path}: {e}")))
}

/// Waits while the file `hold` exists: a real-world event (a test removes the file), watched on
/// the wall clock by a thread of its own that wakes the step when the file is gone. Not a tokio
/// timer: on the paused runtime of a sim run, a polling timer would wake at every virtual step
/// and spin virtual time forward for as long as the test takes; and not a blocking task, which
/// would hold virtual time still and stall the run's other steps meanwhile. The run's other
/// timers go on as usual (in virtual time, on the sim). The thread ends when the step is
/// cancelled.
async fn hold_while(hold: &str) -> Result<(), StepError> {
    /// Tells the watcher to stop when the step's future is dropped (the step was cancelled).
    struct Cancel(Arc<AtomicBool>);
    impl Drop for Cancel {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let cancelled = Arc::new(AtomicBool::new(false));
    let _cancel = Cancel(cancelled.clone());
    let hold = PathBuf::from(hold);
    let (released, wait) = tokio::sync::oneshot::channel::<()>();
    std::thread::Builder::new()
        .name("drflow-hold".into())
        .spawn(move || {
            while hold.exists() && !cancelled.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = released.send(());
        })
        .map_err(|e| StepError::permanent("io", format!("cannot watch the hold file: {e}")))?;
    wait.await
        .map_err(|_| StepError::permanent("io", "the hold file's watcher stopped"))
}

impl StepType for AppendFile {
    fn spec(&self) -> &StepSpec {
        &self.0
    }

    fn run<'a>(&'a self, _ctx: &'a StepContext, input: &'a Outputs) -> StepFuture<'a> {
        Box::pin(async move {
            let path = string(input, "path").unwrap_or_default();
            let line = string(input, "line").unwrap_or_default();
            append(path, line)?;
            if let Some(hold) = string(input, "hold_while") {
                hold_while(hold).await?;
            }
            let mut out = Outputs::new();
            out.insert("line".into(), json!(line));
            Ok(out)
        })
    }

    fn undo<'a>(&'a self, _ctx: &'a StepContext, input: &'a Outputs) -> StepFuture<'a> {
        Box::pin(async move {
            let path = string(input, "path").unwrap_or_default();
            let line = string(input, "line").unwrap_or_default();
            if let Some(flag) = string(input, "fail_undo_while")
                && Path::new(flag).exists()
            {
                return Err(StepError::permanent(
                    "failed",
                    format!("undo of `{line}` refused while {flag} exists"),
                ));
            }
            append(path, &format!("undo {line}"))?;
            Ok(Outputs::new())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn appends_once_per_run_and_undo_appends_a_marker() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let step = AppendFile::new();
        let mut input = Outputs::new();
        input.insert("path".into(), json!(path.to_str().unwrap()));
        input.insert("line".into(), json!("a"));
        let ctx = StepContext::detached("s");
        let out = step.run(&ctx, &input).await.unwrap();
        assert_eq!(out["line"], json!("a"));
        step.run(&ctx, &input).await.unwrap();
        step.undo(&ctx, &input).await.unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "a\na\nundo a\n");
        let flag = dir.path().join("flag");
        std::fs::write(&flag, "").unwrap();
        input.insert("fail_undo_while".into(), json!(flag.to_str().unwrap()));
        assert!(step.undo(&ctx, &input).await.is_err());
    }
}
