//! Running the `drflow` binary from the repository root with a state directory of the test's
//! own, the way the bad-input and trigger tests do. Included with `#[path]` by the test files
//! that want only this (the rest of `common` is the durable-run harness).
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

/// `drflow ARGS…` from the repository root, on `state`, without colour and on the default target.
pub fn drflow_in(state: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_drflow"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("DRFLOW_STATE_DIR", state)
        .env("NO_COLOR", "1")
        .env_remove("DRFLOW_TARGET")
        .output()
        .expect("drflow runs")
}

/// `drflow ARGS…` on a fresh temporary state directory.
pub fn drflow(args: &[&str]) -> Output {
    let state = tempfile::tempdir().expect("temp dir");
    drflow_in(state.path(), args)
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
