//! The live display on a terminal: log lines and resource lines printed while steps run go
//! above the spinners, so nothing garbles and no stale spinner line is left behind.
//!
//! What runs under a pseudo-terminal is either the `drflow` binary (a whole provision), or, for
//! runs that need steps held until the test lets them go, this test program itself started
//! again as a child ([`child_process_entry`]): the library runner with the test-only
//! `test.append_file` (held while a file exists), drawn by the binary's own display, log and
//! summary modules (`src/progress.rs`, `src/log.rs`, `src/report.rs`). What it writes is fed
//! through a terminal emulator (`vt100`), and the screen plus its scrollback is checked once
//! the run has ended. The tests never sleep: they wait for the screen to show something, or
//! for the run to end.
#![cfg(unix)]

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
use rustix::termios::{Winsize, tcsetwinsize};

mod common;

/// The binary's live display, log writer and summary, driven here by the library runner.
#[path = "../src/log.rs"]
#[allow(dead_code)]
mod log;
#[path = "../src/progress.rs"]
#[allow(dead_code)]
mod progress;
#[path = "../src/report.rs"]
#[allow(dead_code)]
mod report;

/// What `log.rs` writes its lines through in the binary: here, the display's `print_now`
/// without a secret scrubber (these runs have no secrets).
mod cmd_journal {
    pub fn scrubbed_stderr() -> Line {
        Line(Vec::new())
    }

    pub struct Line(Vec<u8>);

    impl std::io::Write for Line {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Drop for Line {
        fn drop(&mut self) {
            crate::progress::print_now(&String::from_utf8_lossy(&self.0));
        }
    }
}

/// The environment variable that makes this program the child: `DIR\nRUNBOOK\nNAME=VALUE…`.
const CHILD: &str = "DRFLOW_LIVE_DISPLAY_CHILD";

/// Not a test: the entry of the child process the tests below start under a terminal. It runs
/// a runbook as `drflow run` would, on the library runner, and exits with its exit code.
#[test]
fn child_process_entry() {
    let Ok(spec) = std::env::var(CHILD) else {
        return;
    };
    let mut lines = spec.lines();
    let dir = std::path::PathBuf::from(lines.next().expect("dir"));
    let runbook = dir.join(lines.next().expect("runbook"));
    let params: Vec<(&str, String)> = lines
        .map(|l| {
            let (k, v) = l.split_once('=').expect("NAME=VALUE");
            (k, v.to_owned())
        })
        .collect();
    std::process::exit(child_run(&dir, &runbook, &params));
}

fn child_run(dir: &Path, runbook: &Path, params: &[(&str, String)]) -> i32 {
    use std::io::{IsTerminal, Write};
    let terminal = std::io::stderr().is_terminal();
    log::init(0, terminal);
    let inproc = common::inproc::InProc::new(dir);
    common::inproc::block_on(async {
        let (rb, params, run_id, session) = inproc
            .start(runbook, params, Default::default())
            .await
            .expect("the run starts");
        let mut options = drflow_engine::RunOptions::new(run_id);
        options.redacted_params = drflow_engine::runner::redacted_params(&rb, &params);
        // On the wall clock (the runner's default): the held steps wait for the test, in real
        // time.
        let mut progress = progress::Progress::new(&rb, terminal, options.clock.clone());
        let wall = std::time::Instant::now();
        let stop = tokio::sync::watch::channel(drflow_engine::Stop::No).1;
        let outcome = session
            .run(&rb, &params, options, &mut progress, stop)
            .await
            .expect("the run ends");
        drop(progress);
        let state_dir = dir.join(".drflow");
        let summary = report::Summary {
            target: "sim",
            virtual_time: false,
            wall_time: wall.elapsed(),
            journal: Some(&state_dir),
            rollback: None,
        };
        let mut out = std::io::stdout();
        let _ = write!(out, "{}", report::text(&outcome.report, &summary));
        let _ = out.flush();
        match outcome.report.status {
            drflow_engine::RunStatus::Succeeded => 0,
            _ => 1,
        }
    })
}

const ROWS: u16 = 40;
const COLS: u16 = 160;

/// drflow running under a pseudo-terminal, and the terminal emulator reading its screen.
struct Terminal {
    child: Child,
    chunks: Receiver<Vec<u8>>,
    parser: vt100::Parser,
    ended: bool,
}

impl Terminal {
    /// Starts `drflow args` in `dir` with stdout and stderr on a new pseudo-terminal.
    fn spawn(dir: &Path, args: &[&str]) -> Terminal {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_drflow"));
        cmd.args(args);
        Terminal::start(dir, cmd)
    }

    /// Starts this program as the child that runs `runbook` (in `dir`) with `params` on the
    /// library runner, on a new pseudo-terminal.
    fn spawn_child(dir: &Path, runbook: &str, params: &[(&str, &Path)]) -> Terminal {
        let mut spec = format!("{}\n{runbook}", dir.display());
        for (k, v) in params {
            spec.push_str(&format!("\n{k}={}", v.display()));
        }
        let mut cmd = Command::new(std::env::current_exe().expect("this test program"));
        cmd.args(["--exact", "child_process_entry", "--nocapture", "--quiet"])
            .env(CHILD, spec);
        Terminal::start(dir, cmd)
    }

    fn start(dir: &Path, mut cmd: Command) -> Terminal {
        let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)
            .expect("open a pseudo-terminal");
        grantpt(&master).expect("grantpt");
        unlockpt(&master).expect("unlockpt");
        tcsetwinsize(
            &master,
            Winsize {
                ws_row: ROWS,
                ws_col: COLS,
                ws_xpixel: 0,
                ws_ypixel: 0,
            },
        )
        .expect("window size");
        let name = ptsname(&master, Vec::new()).expect("ptsname");
        let slave: File = OpenOptions::new()
            .read(true)
            .write(true)
            .open(name.to_str().expect("utf-8 pty name"))
            .expect("open the terminal side");
        let child = {
            cmd.current_dir(dir)
                .env("TERM", "xterm-256color")
                .env_remove("DRFLOW_LOG")
                .env_remove("DRFLOW_STATE_DIR")
                .env_remove("DRFLOW_TARGET")
                .env_remove("NO_COLOR")
                .stdin(Stdio::null())
                .stdout(slave.try_clone().expect("dup"))
                .stderr(slave);
            cmd.spawn().expect("spawn drflow")
            // `cmd` drops here with our copies of the terminal side, so reading the other side
            // ends when drflow exits.
        };
        let mut reader = File::from(master);
        let (tx, chunks) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            // Linux answers EIO once the last process holding the terminal side is gone.
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Terminal {
            child,
            chunks,
            parser: vt100::Parser::new(ROWS, COLS, 10_000),
            ended: false,
        }
    }

    /// Feeds output to the emulator until `done` holds for the whole history, or the output
    /// ends; fails the test after a minute.
    fn wait_until(&mut self, what: &str, done: impl Fn(&[String]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if done(&self.history()) {
                return;
            }
            assert!(!self.ended, "the output ended before {what}");
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "timed out waiting for {what}");
            match self.chunks.recv_timeout(left) {
                Ok(bytes) => self.parser.process(&bytes),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => self.ended = true,
            }
        }
    }

    /// Reads the rest of the output and waits for drflow to exit; returns its exit code.
    fn finish(&mut self) -> Option<i32> {
        while let Ok(bytes) = self.chunks.recv() {
            self.parser.process(&bytes);
        }
        self.ended = true;
        self.child.wait().expect("wait").code()
    }

    /// Every row the terminal has shown that is still there: the scrollback, oldest first,
    /// then the screen. Trailing blanks are trimmed.
    fn history(&mut self) -> Vec<String> {
        let screen = self.parser.screen_mut();
        screen.set_scrollback(usize::MAX);
        let back = screen.scrollback();
        let mut rows = Vec::new();
        for offset in (1..=back).rev() {
            screen.set_scrollback(offset);
            rows.extend(screen.rows(0, COLS).next());
        }
        screen.set_scrollback(0);
        rows.extend(screen.rows(0, COLS));
        while rows.last().is_some_and(|r| r.trim().is_empty()) {
            rows.pop();
        }
        rows.into_iter().map(|r| r.trim_end().to_owned()).collect()
    }
}

/// A spinner's frame (indicatif's default spinner draws braille dots).
fn has_spinner(row: &str) -> bool {
    row.chars().any(|c| ('\u{2800}'..='\u{28FF}').contains(&c))
}

fn assert_clean(history: &[String]) {
    let stale: Vec<&String> = history.iter().filter(|r| has_spinner(r)).collect();
    assert!(
        stale.is_empty(),
        "stale spinner lines left on the terminal: {stale:#?}\n--- whole screen:\n{}",
        history.join("\n")
    );
}

const RUNBOOK: &str = r#"runbook: live
params:
  out: { type: string }
  first: { type: string }
  second: { type: string }
steps:
  - id: long
    uses: test.append_file
    with: { path: "${{ params.out }}", line: long, hold_while: "${{ params.first }}" }
  - id: gate
    uses: test.append_file
    with: { path: "${{ params.out }}", line: gate, hold_while: "${{ params.second }}" }
  - id: network
    uses: network.vpc
    needs: [gate]
    with: { env_suffix: live, region: eu-south-1, role: primary, cidr: 10.0.0.0/16,
            public_subnets: 2, private_subnets: 2, nat_gateways: 1 }
  - { id: say1, uses: core.log, needs: [gate], with: { message: "message 1 from the runbook" } }
  - { id: say2, uses: core.log, needs: [gate], with: { message: "message 2 from the runbook" } }
  - { id: say3, uses: core.log, needs: [gate], with: { message: "message 3 from the runbook", level: warn } }
  - { id: say4, uses: core.log, needs: [network], with: { message: "message 4 from the runbook" } }
"#;

/// Lines logged while a spinner is on screen are printed above it, whole, once; when the run
/// ends no spinner is left anywhere in the scrollback.
#[test]
fn lines_logged_while_steps_run_go_above_the_spinners_and_leave_none_behind() {
    let dir = tempfile::tempdir().expect("dir");
    let first = dir.path().join("first");
    let second = dir.path().join("second");
    std::fs::write(&first, "").expect("gate");
    std::fs::write(&second, "").expect("gate");
    std::fs::write(dir.path().join("live.yaml"), RUNBOOK).expect("runbook");
    let out = dir.path().join("out.txt");
    let mut term = Terminal::spawn_child(
        dir.path(),
        "live.yaml",
        &[("out", &out), ("first", &first), ("second", &second)],
    );

    // Both held steps have spinners on screen...
    term.wait_until("the spinners of both held steps", |h| {
        h.iter()
            .any(|r| has_spinner(r) && r.contains("long (test.append_file)"))
            && h.iter()
                .any(|r| has_spinner(r) && r.contains("gate (test.append_file)"))
    });
    // ...when the steps that log and create resources run.
    std::fs::remove_file(&second).expect("open the gate");
    term.wait_until("the runbook's messages and the VPC", |h| {
        h.iter().any(|r| r.contains("message 4 from the runbook"))
    });
    // `long` is still running: its spinner is there, below what was printed meanwhile.
    let history = term.history();
    let spinner = history
        .iter()
        .rposition(|r| has_spinner(r) && r.contains("long (test.append_file)"))
        .expect("the spinner of `long` is on screen");
    let message = history
        .iter()
        .position(|r| r.contains("message 4 from the runbook"))
        .expect("message 4");
    assert!(message < spinner, "{}", history.join("\n"));

    std::fs::remove_file(&first).expect("let the last step end");
    assert_eq!(term.finish(), Some(0), "{}", term.history().join("\n"));
    let history = term.history();
    assert_clean(&history);
    // Each line whole, on its own row, once.
    for want in [
        "say1: message 1 from the runbook",
        "say2: message 2 from the runbook",
        "warning: say3: message 3 from the runbook",
        "say4: message 4 from the runbook",
        "  + vpc vpc-live (eu-south-1)",
        "  + nat_gateway nat-gateway-1-live (eu-south-1)",
    ] {
        let rows = history.iter().filter(|r| r.as_str() == want).count();
        assert_eq!(
            rows,
            1,
            "{want:?}\n--- whole screen:\n{}",
            history.join("\n")
        );
    }
    assert!(
        history
            .iter()
            .any(|r| r.starts_with("run ") && r.contains(": succeeded in ")),
        "{}",
        history.join("\n")
    );
}

/// The issue's case: a whole provision on a terminal leaves a clean scrollback, with every
/// resource line whole.
#[test]
fn a_provision_on_a_terminal_leaves_no_stale_spinner_lines() {
    let dir = tempfile::tempdir().expect("dir");
    let root = env!("CARGO_MANIFEST_DIR");
    let provision = format!("{root}/runbooks/provision.yaml");
    let params = format!("{root}/runbooks/params/eu.yaml");
    let mut term = Terminal::spawn(dir.path(), &["run", &provision, "--params-file", &params]);
    assert_eq!(term.finish(), Some(0), "{}", term.history().join("\n"));
    let history = term.history();
    assert_clean(&history);
    let created: Vec<&String> = history.iter().filter(|r| r.contains(" + ")).collect();
    assert!(
        created.iter().all(|r| r.starts_with("  + ")),
        "{}",
        history.join("\n")
    );
    let summary = history
        .iter()
        .find(|r| r.starts_with("resources: "))
        .expect("the summary counts resources");
    assert_eq!(
        summary,
        &format!("resources: {} created, 0 changed, 0 deleted", created.len()),
        "{}",
        history.join("\n")
    );
}

/// A wide fan-out shows a few spinners and counts the rest, instead of a line per step.
#[test]
fn a_wide_fan_out_shows_a_few_spinners_and_counts_the_rest() {
    let dir = tempfile::tempdir().expect("dir");
    let gate = dir.path().join("gate");
    std::fs::write(&gate, "").expect("gate");
    let mut runbook = String::from(
        "runbook: wide\nparams:\n  out: { type: string }\n  gate: { type: string }\nsteps:\n",
    );
    for i in 0..30 {
        runbook.push_str(&format!(
            "  - {{ id: w{i:02}, uses: test.append_file, with: {{ path: \"${{{{ params.out }}}}\", line: w{i}, hold_while: \"${{{{ params.gate }}}}\" }} }}\n"
        ));
    }
    std::fs::write(dir.path().join("wide.yaml"), runbook).expect("runbook");
    let out = dir.path().join("out.txt");
    let mut term =
        Terminal::spawn_child(dir.path(), "wide.yaml", &[("out", &out), ("gate", &gate)]);
    term.wait_until("ten spinners and a count of the others", |h| {
        h.iter().any(|r| r.contains("… and 20 more steps running"))
    });
    let spinners = term.history().iter().filter(|r| has_spinner(r)).count();
    assert_eq!(spinners, 10, "{}", term.history().join("\n"));
    std::fs::remove_file(&gate).expect("let the steps end");
    assert_eq!(term.finish(), Some(0), "{}", term.history().join("\n"));
    let history = term.history();
    assert_clean(&history);
    assert!(
        !history.iter().any(|r| r.contains("more steps running")),
        "{}",
        history.join("\n")
    );
}
