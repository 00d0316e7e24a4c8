//! `test.append_file`: a step whose side effect can be counted, for tests of the journal
//! (crash, resume, rollback). It lives in test code: the shipped binary never has it.
//!
//! Unlike every shipped step it is deliberately **not** idempotent: each run appends one more
//! line, so a test can count how often the engine really ran it. Its undo appends `undo <line>`.
//! It can hold after appending: on a [`Gates`] gate (in-process tests) or while a file exists
//! (a child process driven by a test).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use drflow_engine::{
    Outputs, Registry, StepContext, StepError, StepFuture, StepSpec, StepType, ValueType,
};
use serde_json::{Value, json};
use tokio::sync::watch;

/// Adds `test.append_file` to a registry; its `gate:` input names a gate of `gates`.
pub fn register(registry: &mut Registry, gates: &Gates) {
    registry.register(Arc::new(AppendFile::new(gates.clone())));
}

/// Named gates a test opens and closes; a step with `gate: NAME` holds while NAME is closed.
/// A gate never closed is open.
#[derive(Clone, Default)]
pub struct Gates(Arc<Mutex<HashMap<String, Gate>>>);

#[derive(Clone)]
struct Gate {
    open: watch::Sender<bool>,
    /// How many steps reached the gate.
    arrived: watch::Sender<u32>,
}

impl Gates {
    fn gate(&self, name: &str) -> Gate {
        let mut gates = self.0.lock().unwrap();
        gates
            .entry(name.to_owned())
            .or_insert_with(|| Gate {
                open: watch::channel(true).0,
                arrived: watch::channel(0).0,
            })
            .clone()
    }

    /// Steps reaching `name` hold until it is opened.
    pub fn close(&self, name: &str) {
        self.gate(name).open.send_replace(false);
    }

    /// Lets the steps held at `name` go on.
    pub fn open(&self, name: &str) {
        self.gate(name).open.send_replace(true);
    }

    /// Waits until `n` steps reached `name` (blocking: call it from a test thread).
    pub fn wait_arrived(&self, name: &str, n: u32) {
        let mut rx = self.gate(name).arrived.subscribe();
        futures_block_on(async move {
            rx.wait_for(|a| *a >= n).await.unwrap();
        });
    }

    /// Waits until `n` steps reached `name`.
    pub async fn arrived(&self, name: &str, n: u32) {
        let mut rx = self.gate(name).arrived.subscribe();
        rx.wait_for(|a| *a >= n).await.unwrap();
    }

    async fn pass(&self, name: &str) {
        let gate = self.gate(name);
        gate.arrived.send_modify(|a| *a += 1);
        let mut rx = gate.open.subscribe();
        let _ = rx.wait_for(|open| *open).await;
    }
}

/// Runs a future to completion on a small runtime of its own (for a blocking test thread).
fn futures_block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

struct AppendFile(StepSpec, Gates);

impl AppendFile {
    fn new(gates: Gates) -> Self {
        AppendFile(
            StepSpec::new(
                "test.append_file",
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
                "gate",
                ValueType::String,
                Value::Null,
                "After appending, wait while this gate of the test is closed.",
            )
            .optional(
                "fail_undo_while",
                ValueType::String,
                Value::Null,
                "The undo fails while this file exists.",
            )
            .output("line", ValueType::String, "The line appended.")
            .with_undo(),
            gates,
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

/// Waits while the file `hold` exists: a real-world event from another process (the test that
/// started this program as a child under a terminal removes the file; in-process tests use
/// [`Gates`] instead), so polled on the wall clock by a thread of its own that wakes the step when the file is gone. Not a tokio
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
            if let Some(gate) = string(input, "gate") {
                self.1.pass(gate).await;
            }
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
