//! The live display on a terminal: log lines and resource lines printed while steps run go
//! above the spinners, so nothing garbles and no stale spinner line is left behind.
//!
//! drflow runs under a pseudo-terminal; what it writes is fed through a terminal emulator
//! (`vt100`), and the screen plus its scrollback is checked once the run has ended. The tests
//! never sleep: they wait for the screen to show something, or for the run to end.
#![cfg(unix)]

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
use rustix::termios::{Winsize, tcsetwinsize};

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
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_drflow"));
            cmd.args(args)
                .current_dir(dir)
                .env("TERM", "xterm-256color")
                .env("DRFLOW_TEST_STEPS", "1")
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
    uses: core.append_file
    with: { path: "${{ params.out }}", line: long, hold_while: "${{ params.first }}" }
  - id: gate
    uses: core.append_file
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
    let param = |k: &str, p: &Path| format!("{k}={}", p.display());
    let out = dir.path().join("out.txt");
    let args = [
        "run".to_string(),
        "live.yaml".into(),
        "-p".into(),
        param("out", &out),
        "-p".into(),
        param("first", &first),
        "-p".into(),
        param("second", &second),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut term = Terminal::spawn(dir.path(), &args);

    // Both held steps have spinners on screen...
    term.wait_until("the spinners of both held steps", |h| {
        h.iter()
            .any(|r| has_spinner(r) && r.contains("long (core.append_file)"))
            && h.iter()
                .any(|r| has_spinner(r) && r.contains("gate (core.append_file)"))
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
        .rposition(|r| has_spinner(r) && r.contains("long (core.append_file)"))
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
            "  - {{ id: w{i:02}, uses: core.append_file, with: {{ path: \"${{{{ params.out }}}}\", line: w{i}, hold_while: \"${{{{ params.gate }}}}\" }} }}\n"
        ));
    }
    std::fs::write(dir.path().join("wide.yaml"), runbook).expect("runbook");
    let out = format!("out={}", dir.path().join("out.txt").display());
    let gate_param = format!("gate={}", gate.display());
    let mut term = Terminal::spawn(
        dir.path(),
        &["run", "wide.yaml", "-p", &out, "-p", &gate_param],
    );
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
