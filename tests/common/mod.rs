//! Shared by the durable-run tests: a sandbox directory holding a runbook, the helpers that
//! run `drflow` there, and the in-process runner ([`inproc`]) with the test-only steps
//! ([`append_file`]) for what the shipped binary cannot do: count a step's runs, hold it, crash
//! a run at a named point. Each test file uses its own subset.
#![allow(dead_code)]

pub mod append_file;
pub mod inproc;
pub mod moto;

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};

/// A temporary working directory with `crashy.yaml` in it; `drflow` runs there with the
/// default state dir (`.drflow`).
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    /// A sandbox whose `crashy.yaml` is `runbook`.
    pub fn new(runbook: &str) -> Sandbox {
        let s = Sandbox {
            dir: tempfile::tempdir().unwrap(),
        };
        s.write("crashy.yaml", runbook);
        s
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn journal_path(&self) -> PathBuf {
        self.path(".drflow").join("journal.db")
    }

    /// The side-effect file the `test.append_file` steps write to.
    pub fn out(&self) -> String {
        self.path("out.txt").display().to_string()
    }

    pub fn write(&self, name: &str, text: &str) {
        std::fs::write(self.path(name), text).unwrap();
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_drflow"));
        c.current_dir(self.dir.path())
            .env("DRFLOW_LOG", "warn")
            .env_remove("DRFLOW_STATE_DIR")
            .env_remove("DRFLOW_JOURNAL_SYNC")
            .stdin(Stdio::null());
        c
    }

    /// `run crashy.yaml -p out=…` plus `extra`.
    pub fn run_args(&self, extra: &[&str]) -> Vec<String> {
        let mut args = vec![
            "run".to_owned(),
            "crashy.yaml".to_owned(),
            "-p".to_owned(),
            format!("out={}", self.out()),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    }

    pub fn spawn(&self, args: &[String], envs: &[(&str, String)]) -> Child {
        let mut c = self.cmd();
        c.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
        for (k, v) in envs {
            c.env(k, v);
        }
        c.spawn().unwrap()
    }

    pub fn output<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    /// How many lines of the side-effect file equal `line`.
    pub fn count(&self, line: &str) -> usize {
        std::fs::read_to_string(self.path("out.txt"))
            .unwrap_or_default()
            .lines()
            .filter(|l| *l == line)
            .count()
    }
}

/// SIGKILL on Unix, then reap.
pub fn kill(mut child: Child) {
    child.kill().unwrap();
    child.wait().unwrap();
}

pub fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}
