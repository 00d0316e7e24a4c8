//! Secrets stay secret through the `drflow` binary: a value derived from a secret parameter or
//! from a credential variable is never in the journal, the log lines, the progress display, the
//! summary, `--output json`, `drflow show` or `drflow outputs`; a step that needs it still gets
//! it. Ends with a property test over random transformations of a random secret.

use std::process::Output;

use proptest::prelude::*;

mod common;

use common::{Sandbox, text};

/// Everything a person or a file could see of a sandbox after some commands: their stdout and
/// stderr, and every file of the state dir (journal, WAL).
struct Seen {
    printed: Vec<(String, Output)>,
    state: Vec<u8>,
}

impl Seen {
    /// Runs each command (all must exit with the code given), then reads the state dir.
    fn after(sb: &Sandbox, commands: &[(&[&str], i32)]) -> Seen {
        let mut printed = Vec::new();
        for (args, code) in commands {
            let out = sb.output(args);
            assert_eq!(
                out.status.code(),
                Some(*code),
                "{args:?}\nstdout: {}\nstderr: {}",
                text(&out.stdout),
                text(&out.stderr)
            );
            printed.push((args.join(" "), out));
        }
        let mut state = Vec::new();
        for f in std::fs::read_dir(sb.path(".drflow")).unwrap() {
            state.extend(std::fs::read(f.unwrap().path()).unwrap_or_default());
        }
        Seen { printed, state }
    }

    /// Where `needle` shows, if anywhere.
    fn find(&self, needle: &str) -> Option<String> {
        let has = |hay: &[u8]| hay.windows(needle.len()).any(|w| w == needle.as_bytes());
        for (cmd, out) in &self.printed {
            if has(&out.stdout) {
                return Some(format!("stdout of `{cmd}`: {}", text(&out.stdout)));
            }
            if has(&out.stderr) {
                return Some(format!("stderr of `{cmd}`: {}", text(&out.stderr)));
            }
        }
        has(&self.state).then(|| "the state dir".to_string())
    }

    fn assert_absent(&self, needles: &[&str]) {
        for n in needles {
            if let Some(place) = self.find(n) {
                panic!("`{n}` found in {place}");
            }
        }
    }

    fn stdout(&self, i: usize) -> String {
        text(&self.printed[i].1.stdout)
    }

    fn stderr(&self, i: usize) -> String {
        text(&self.printed[i].1.stderr)
    }
}

fn sandbox(name: &str, runbook: &str) -> Sandbox {
    let sb = Sandbox::new(
        "runbook: unused\nsteps:\n  - { id: a, uses: core.log, with: { message: x } }\n",
    );
    sb.write(name, runbook);
    sb
}

const EXAMPLES: &str = r#"runbook: examples
params:
  pw: { type: string, secret: true }
  env: { type: string, default: prod }
steps:
  - id: derive
    uses: core.set
    with:
      upper: ${{ params.pw | upper }}
      dashed: ${{ params.pw[0:4] ~ '-' ~ params.pw[4:] }}
      spaced: ${{ params.pw | list | join(' ') }}
      env: ${{ params.env | upper }}
  - id: say
    needs: [derive]
    uses: core.log
    with: { message: "logging in with ${{ params.pw | upper }}" }
outputs:
  upper: ${{ steps.derive.outputs.upper }}
  dashed: ${{ steps.derive.outputs.dashed }}
  spaced: ${{ params.pw | list | join(' ') }}
  env: ${{ steps.derive.outputs.env }}
"#;

/// The issue's three examples (upper; a slice joined with `-`; `| list | join(' ')`), logged,
/// output and journaled: `***` everywhere, a value that reads no secret in clear.
#[test]
fn the_issue_examples_never_reach_the_journal_the_log_or_the_outputs() {
    let sb = sandbox("ex.yaml", EXAMPLES);
    let seen = Seen::after(
        &sb,
        &[
            (&["run", "ex.yaml", "-p", "pw=hunter22"], 0),
            (
                &["run", "ex.yaml", "-p", "pw=hunter22", "--output", "json"],
                0,
            ),
            (&["show", "latest"], 0),
            (&["show", "latest", "--output", "json"], 0),
            (&["outputs", "latest"], 0),
            (&["outputs", "latest", "--output", "json"], 0),
        ],
    );
    seen.assert_absent(&["hunter22", "HUNTER22", "hunt-er22", "h u n t e r 2 2"]);
    let summary = seen.stdout(0);
    assert!(summary.contains("upper   ***"), "{summary}");
    assert!(summary.contains("dashed  ***"), "{summary}");
    assert!(summary.contains("spaced  ***"), "{summary}");
    assert!(summary.contains("env     PROD"), "{summary}");
    let json: serde_json::Value = serde_json::from_str(&seen.stdout(1)).unwrap();
    assert_eq!(json["outputs"]["upper"], "***");
    assert_eq!(json["outputs"]["env"], "PROD");
    let derive = json["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "derive")
        .unwrap();
    assert_eq!(derive["outputs"]["dashed"], "***");
    assert_eq!(derive["outputs"]["env"], "PROD");
    let outputs = seen.stdout(4);
    assert!(outputs.contains("spaced  ***"), "{outputs}");
}

/// A `core.log` of a transformed secret prints `***` (the log line is written by the step, not
/// the engine), with `-v`/`DRFLOW_LOG=info` too.
#[test]
fn a_log_line_of_a_transformed_secret_prints_stars() {
    let sb = sandbox("ex.yaml", EXAMPLES);
    let mut c = sb.cmd();
    c.env("DRFLOW_LOG", "info")
        .args(["run", "ex.yaml", "-p", "pw=hunter22"]);
    let out = c.output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("INFO *** step=say"), "{stderr}");
    assert!(!stderr.contains("HUNTER22") && !stderr.contains("hunter22"));
}

/// Credentials read through `env.` are secrets, in a runbook without any secret parameter; a
/// variable that is not a credential stays in clear.
#[test]
fn credential_variables_read_through_env_are_secrets() {
    let sb = sandbox(
        "env.yaml",
        r#"runbook: creds
steps:
  - id: creds
    uses: core.set
    with:
      key: ${{ env.AWS_SECRET_ACCESS_KEY }}
      session: ${{ env.AWS_SESSION_TOKEN | lower }}
      id: ${{ env.AWS_ACCESS_KEY_ID }}
      header: "token ${{ env.GITHUB_TOKEN | reverse }}"
      region: ${{ env.AWS_REGION }}
  - id: say
    needs: [creds]
    uses: core.fail
    with: { message: "refused ${{ steps.creds.outputs.header }}" }
outputs:
  key: ${{ steps.creds.outputs.key }}
  region: ${{ steps.creds.outputs.region }}
"#,
    );
    let env = [
        (
            "AWS_SECRET_ACCESS_KEY",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        ),
        ("AWS_SESSION_TOKEN", "FwoGZXIvYXdzEXAMPLESESSION"),
        ("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE"),
        ("GITHUB_TOKEN", "ghp_exampleToken123"),
        ("AWS_REGION", "eu-south-1"),
    ];
    let mut printed = Vec::new();
    for args in [
        vec!["run", "env.yaml"],
        vec!["run", "env.yaml", "--output", "json"],
    ] {
        let mut c = sb.cmd();
        c.env("DRFLOW_LOG", "info").args(&args);
        for (k, v) in env {
            c.env(k, v);
        }
        let out = c.output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        printed.push((args.join(" "), out));
    }
    let mut seen = Seen::after(&sb, &[(&["show", "latest", "--output", "json"], 0)]);
    seen.printed.extend(printed);
    seen.assert_absent(&[
        "wJalrXUtnFEMI",
        "fwogzxiv",
        "AKIAIOSFODNN7EXAMPLE",
        "ghp_example",
        "321nekoTelpmaxe_phg",
    ]);
    let json: serde_json::Value = serde_json::from_str(&seen.stdout(2)).unwrap();
    assert_eq!(json["outputs"]["key"], "***");
    assert_eq!(json["outputs"]["region"], "eu-south-1");
}

/// A value that a step declaration refuses is quoted by the value check, unless it derives from
/// a secret: a transformed secret parameter (under `validate` and at the start of `run`) or a
/// credential variable (at the start of `run`) is refused without being shown.
#[test]
fn a_refused_value_derived_from_a_secret_is_not_quoted() {
    let sb = sandbox(
        "v.yaml",
        r#"runbook: refused
params:
  pw: { type: string, secret: true }
steps:
  - id: a
    uses: cloud.teardown
    with: { env_suffix: "${{ params.pw | upper }}", regions: [us-east-1] }
  - id: b
    uses: cloud.teardown
    with: { env_suffix: "${{ params.pw[0:2] }}-", regions: [us-east-1] }
  - id: c
    uses: cloud.teardown
    with: { env_suffix: "${{ env.MY_API_TOKEN }}", regions: [us-east-1] }
"#,
    );
    let mut printed = Vec::new();
    for args in [
        vec!["validate", "v.yaml", "-p", "pw=Hunter_Two"],
        vec!["run", "v.yaml", "-p", "pw=Hunter_Two"],
    ] {
        let mut c = sb.cmd();
        c.env("MY_API_TOKEN", "Abc_DEF").args(&args);
        let out = c.output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
        printed.push((args.join(" "), out));
    }
    let seen = Seen {
        printed,
        state: Vec::new(),
    };
    let validate = seen.stderr(0);
    assert_eq!(validate.matches("is secret").count(), 1, "{validate}");
    let run = seen.stderr(1);
    assert_eq!(run.matches("is secret").count(), 2, "{run}");
    seen.assert_absent(&[
        "HUNTER_TWO",
        "hunter-two",
        "Hu-",
        "`H`",
        "Abc_DEF",
        "abc-def",
    ]);
}

/// A secret step output is secret downstream: the next step gets it in clear (it writes it to
/// a file), what that step outputs is secret, and so is the runbook output.
#[test]
fn a_secret_step_output_is_secret_downstream_and_in_the_runbook_outputs() {
    let sb = sandbox(
        "chain.yaml",
        r#"runbook: chain
params:
  pw: { type: string, secret: true }
  out: { type: string }
steps:
  - id: conn
    uses: core.set
    with: { url: "postgres://app:${{ params.pw | upper }}@db/app" }
  - id: write
    needs: [conn]
    uses: core.set
    with: { line: "${{ steps.conn.outputs.url | replace('app', 'svc') }}" }
  - id: check
    needs: [write]
    uses: core.assert
    with: { condition: "${{ steps.write.outputs.line == 'postgres://svc:' ~ (params.pw | upper) ~ '@db/svc' }}" }
outputs:
  url: ${{ steps.conn.outputs.url }}
  line: ${{ steps.write.outputs.line }}
"#,
    );
    let out = format!("out={}", sb.out());
    let seen = Seen::after(
        &sb,
        &[
            (&["run", "chain.yaml", "-p", "pw=hunter22", "-p", &out], 0),
            (&["show", "latest", "--output", "json"], 0),
            (&["outputs", "latest", "--output", "json"], 0),
        ],
    );
    // The step got the secret in clear (the assertion after it held): that is what it is for.
    seen.assert_absent(&["HUNTER22", "hunter22"]);
    let show: serde_json::Value = serde_json::from_str(&seen.stdout(1)).unwrap();
    let events = show["events"].as_array().unwrap();
    let write = events
        .iter()
        .find(|e| e["event"] == "step_succeeded" && e["step"] == "write")
        .unwrap();
    assert_eq!(write["outputs"]["line"], "***");
    let outputs: serde_json::Value = serde_json::from_str(&seen.stdout(2)).unwrap();
    assert_eq!(outputs["outputs"]["url"], "***");
    assert_eq!(outputs["outputs"]["line"], "***");
}

const RESUME: &str = r#"runbook: resume
params:
  pw: { type: string, secret: true }
  out: { type: string }
steps:
  - id: conn
    uses: core.set
    with: { url: "postgres://app:${{ params.pw | upper }}@db" }
  - id: say
    uses: core.log
    with: { message: "${{ params.pw | reverse }}" }
  - id: flaky
    needs: [conn, say]
    uses: core.fail
    with: { message: "not yet", succeed_after: 1 }
  - id: use_conn
    needs: [flaky]
    uses: core.assert
    with: { condition: "${{ steps.conn.outputs.url == 'postgres://app:' ~ (params.pw | upper) ~ '@db' }}" }
outputs:
  url: ${{ steps.conn.outputs.url }}
"#;

/// Resume: `core.set` secret outputs, journaled as `***`, are evaluated again from its `with:`,
/// so the step after the failure gets the real value, not `***`.
#[test]
fn resume_evaluates_core_set_secret_outputs_again() {
    let sb = sandbox("resume.yaml", RESUME);
    let out = format!("out={}", sb.out());
    let seen = Seen::after(
        &sb,
        &[
            (&["run", "resume.yaml", "-p", "pw=hunter22", "-p", &out], 1),
            (&["resume", "latest", "-p", "pw=hunter22"], 0),
            (&["outputs", "latest"], 0),
        ],
    );
    // `use_conn` held (the resume exited 0): it got the URL in clear, not `***`.
    seen.assert_absent(&["HUNTER22", "hunter22", "22retnuh"]);
    assert!(seen.stdout(2).contains("url  ***"), "{}", seen.stdout(2));
}

/// Resume: any other step's secret outputs are lost (the journal has `***`): a step that reads
/// one fails and says why and what to do, rather than use `***` as if it were the secret.
#[test]
fn resume_refuses_to_use_a_lost_secret_output() {
    let sb = sandbox(
        "lost.yaml",
        &RESUME.replace("steps.conn.outputs.url ==", "steps.say.outputs.message =="),
    );
    let out = format!("out={}", sb.out());
    let seen = Seen::after(
        &sb,
        &[
            (&["run", "lost.yaml", "-p", "pw=hunter22", "-p", &out], 1),
            (&["resume", "latest", "-p", "pw=hunter22"], 1),
        ],
    );
    let summary = seen.stdout(1);
    assert!(
        summary.contains("`steps.say.outputs.message`, a secret output of step `say`"),
        "{summary}"
    );
    assert!(summary.contains("Start a new run"), "{summary}");
    seen.assert_absent(&["hunter22", "22retnuh"]);
}

/// A `lock:` that reads a credential variable is refused before anything is stored.
#[test]
fn a_lock_that_reads_a_credential_is_refused() {
    let sb = sandbox(
        "lk.yaml",
        "runbook: lk\nlock: lk-${{ env.GITHUB_TOKEN | upper }}\nsteps:\n  - { id: s, uses: core.log, with: { message: hi } }\n",
    );
    let out = sb
        .cmd()
        .env("GITHUB_TOKEN", "ghp_lockToken99")
        .args(["run", "lk.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("`lock:` reads a secret"), "{err}");
    assert!(!err.to_lowercase().contains("ghp_locktoken99"), "{err}");
    assert!(!sb.path(".drflow").join("journal.db").exists());
}

/// A transformation of the secret, as an expression over `x` and as the same computation here.
#[derive(Debug, Clone)]
enum Transform {
    Upper,
    Lower,
    Reverse,
    Slice(usize, usize),
    Join(&'static str),
    Concat(&'static str, &'static str),
    Replace(char, &'static str),
    Format,
}

impl Transform {
    fn expr(&self, x: &str) -> String {
        match self {
            Transform::Upper => format!("({x} | upper)"),
            Transform::Lower => format!("({x} | lower)"),
            Transform::Reverse => format!("({x} | reverse)"),
            Transform::Slice(a, b) => format!("({x})[{a}:{b}]"),
            Transform::Join(sep) => format!("({x} | list | join('{sep}'))"),
            Transform::Concat(pre, post) => format!("('{pre}' ~ {x} ~ '{post}')"),
            Transform::Replace(from, to) => format!("({x} | replace('{from}', '{to}'))"),
            Transform::Format => format!("('conn=%s;' | format({x}))"),
        }
    }

    fn apply(&self, s: &str) -> String {
        match self {
            Transform::Upper => s.to_uppercase(),
            Transform::Lower => s.to_lowercase(),
            Transform::Reverse => s.chars().rev().collect(),
            Transform::Slice(a, b) => s.chars().skip(*a).take(b.saturating_sub(*a)).collect(),
            Transform::Join(sep) => s.chars().map(String::from).collect::<Vec<_>>().join(sep),
            Transform::Concat(pre, post) => format!("{pre}{s}{post}"),
            Transform::Replace(from, to) => s.replace(*from, to),
            Transform::Format => format!("conn={s};"),
        }
    }
}

fn transform() -> impl Strategy<Value = Transform> {
    prop_oneof![
        Just(Transform::Upper),
        Just(Transform::Lower),
        Just(Transform::Reverse),
        (0usize..4, 4usize..12).prop_map(|(a, b)| Transform::Slice(a, b)),
        prop_oneof![Just("-"), Just(" "), Just(""), Just("::")].prop_map(Transform::Join),
        (
            prop_oneof![Just("pre-"), Just("Bearer "), Just("")],
            prop_oneof![Just("-post"), Just("@db"), Just("")]
        )
            .prop_map(|(a, b)| Transform::Concat(a, b)),
        (
            prop_oneof![Just('a'), Just('7'), Just('q')],
            prop_oneof![Just("A"), Just("__")]
        )
            .prop_map(|(a, b)| Transform::Replace(a, b)),
        Just(Transform::Format),
    ]
}

/// The runbook of one case: the derived value goes into a `core.set` input, a `core.log`
/// message, a file path whose error message quotes it (the step does not know it is secret:
/// the run's scrubber must catch it) and the runbook's outputs.
fn case_runbook(expr: &str) -> String {
    format!(
        r#"runbook: prop
params:
  pw: {{ type: string, secret: true }}
steps:
  - id: derive
    uses: core.set
    with: {{ derived: "${{{{ {expr} }}}}" }}
  - id: say
    needs: [derive]
    uses: core.log
    with: {{ message: "derived ${{{{ steps.derive.outputs.derived }}}}" }}
  - id: refuse
    needs: [say]
    uses: core.fail
    with: {{ message: "cannot open /nonexistent/${{{{ {expr} }}}}/out.txt" }}
outputs:
  derived: ${{{{ {expr} }}}}
  said: ${{{{ steps.say.outputs.message }}}}
"#
    )
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 16,
        failure_persistence: None,
        rng_seed: proptest::test_runner::RngSeed::Fixed(11),
        ..ProptestConfig::default()
    })]

    /// No transformation of a secret reaches the journal, the report JSON, the summary, the
    /// log lines or the progress display.
    #[test]
    fn no_transformation_of_a_secret_reaches_the_journal_or_the_output(
        secret in "[0-9]{2}[a-z0-9]{6,12}[0-9]",
        chain in proptest::collection::vec(transform(), 1..4),
    ) {
        let mut expr = "params.pw".to_string();
        let mut values = vec![secret.clone()];
        for t in &chain {
            expr = t.expr(&expr);
            let next = t.apply(values.last().unwrap());
            values.push(next);
        }
        let sb = sandbox("prop.yaml", &case_runbook(&expr));
        let pw = format!("pw={secret}");
        let mut run = sb.cmd();
        run.env("DRFLOW_LOG", "info").args(["run", "prop.yaml", "-p", &pw, "--output", "json"]);
        let out = run.output().unwrap();
        prop_assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        let mut seen = Seen::after(&sb, &[(&["show", "latest", "--output", "json"], 0)]);
        seen.printed.push(("run".into(), out));
        let report: serde_json::Value = serde_json::from_str(&seen.stdout(1)).unwrap();
        prop_assert_eq!(&report["outputs"]["derived"], "***");
        prop_assert_eq!(&report["outputs"]["said"], "***");
        prop_assert!(seen.stderr(1).contains("INFO *** step=say"), "{}", seen.stderr(1));
        let refuse = &report["steps"][2]["error"]["message"];
        // A message that reads a secret is a secret: `***` whole.
        prop_assert_eq!(refuse.as_str().unwrap(), "***");
        // Values too short to scrub out of text are kept out structurally (above); longer ones
        // must show nowhere.
        for v in values.iter().filter(|v| v.chars().count() >= 6) {
            prop_assert!(seen.find(v).is_none(), "`{}` from `{}` found in {:?}", v, expr, seen.find(v));
        }
    }
}
