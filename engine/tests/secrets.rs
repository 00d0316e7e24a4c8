//! Secrecy propagates like Terraform's `sensitive`: a value computed from a secret parameter, a
//! secret step output or a credential variable is recorded as `***` (structurally, whatever its
//! length) and scrubbed out of text; the steps that use it still get it in clear. Ends with a
//! property test over random transformations of a random secret.

use std::sync::{Arc, Mutex};

use drflow_engine::{
    Outputs, Prior, Recorder, Redacting, Registry, RunEvent, RunOptions, RunReport, RunStatus,
    Runbook, SecretFlow, Secrets, StepContext, StepError, StepFuture, StepSpec, StepStatus,
    StepType, Stop, ValueType, compile,
};
use proptest::prelude::*;
use serde_json::{Value, json};
use tokio::sync::watch;

/// What the `t.echo` steps were given, and whether they were told it was secret.
type Seen = Arc<Mutex<Vec<(String, Value, bool)>>>;

/// `t.echo`: outputs its `value` (and its length), or fails quoting it with `fail: true`.
struct Echo {
    spec: StepSpec,
    seen: Seen,
}

impl StepType for Echo {
    fn spec(&self) -> &StepSpec {
        &self.spec
    }

    fn run<'a>(&'a self, ctx: &'a StepContext, input: &'a Outputs) -> StepFuture<'a> {
        Box::pin(async move {
            let value = input.get("value").cloned().unwrap_or(Value::Null);
            self.seen.lock().unwrap().push((
                ctx.step_id.clone(),
                value.clone(),
                ctx.is_secret_input("value"),
            ));
            let text = match &value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            if input.get("fail").and_then(Value::as_bool) == Some(true) {
                return Err(StepError::permanent(
                    "refused",
                    format!("the service refused {text}"),
                ));
            }
            let mut out = Outputs::new();
            out.insert("value".into(), value);
            out.insert("len".into(), json!(text.chars().count()));
            Ok(out)
        })
    }
}

/// `t.set`: outputs its input, like `core.set`.
struct Set(StepSpec);

impl StepType for Set {
    fn spec(&self) -> &StepSpec {
        &self.0
    }

    fn run<'a>(&'a self, _ctx: &'a StepContext, input: &'a Outputs) -> StepFuture<'a> {
        Box::pin(async move { Ok(input.clone()) })
    }
}

/// `t.count`: outputs how many characters `value` has; declares its outputs never secret.
struct Count(StepSpec);

impl StepType for Count {
    fn spec(&self) -> &StepSpec {
        &self.0
    }

    fn run<'a>(&'a self, _ctx: &'a StepContext, input: &'a Outputs) -> StepFuture<'a> {
        Box::pin(async move {
            let n = input
                .get("value")
                .and_then(Value::as_str)
                .map_or(0, |s| s.chars().count());
            let mut out = Outputs::new();
            out.insert("n".into(), json!(n));
            Ok(out)
        })
    }
}

struct Harness {
    registry: Registry,
    seen: Seen,
}

fn harness() -> Harness {
    let seen: Seen = Arc::default();
    let mut registry = Registry::new();
    registry.register(Arc::new(Echo {
        spec: StepSpec::new("t.echo", "echoes its value")
            .required("value", ValueType::Any, "what to echo")
            .optional("fail", ValueType::Bool, json!(false), "fail quoting it")
            .output("value", ValueType::Any, "the value")
            .output("len", ValueType::Int, "its length"),
        seen: seen.clone(),
    }));
    registry.register(Arc::new(Set(
        StepSpec::new("t.set", "outputs its input").outputs_from_input()
    )));
    registry.register(Arc::new(Count(
        StepSpec::new("t.count", "counts characters")
            .required("value", ValueType::String, "what to count")
            .output("n", ValueType::Int, "how many")
            .outputs_not_secret(),
    )));
    registry.register(Arc::new(Echo {
        spec: StepSpec::new("t.short", "takes a short code")
            .required("value", ValueType::String, "a code")
            .one_of(&["ab", "cd"]),
        seen: seen.clone(),
    }));
    Harness { registry, seen }
}

const HEADER: &str = "runbook: t\nparams:\n  pw: { type: string, secret: true }\n  env: { type: string, default: prod }\n";

fn compile_ok(h: &Harness, body: &str) -> Runbook {
    let src = format!("{HEADER}{body}");
    match compile("t.yaml", &src, &h.registry) {
        Ok(rb) => rb,
        Err(d) => panic!("{}", d.render(&[("t.yaml", &src)])),
    }
}

fn params(pw: &str) -> Outputs {
    let Value::Object(m) = json!({"pw": pw, "env": "prod"}) else {
        unreachable!()
    };
    m
}

/// Runs as the binary does: the sink scrubs with the run's secrets, which the run adds to.
async fn run_prior(
    rb: &Runbook,
    pw: &str,
    prior: Option<Prior>,
) -> (RunReport, Vec<RunEvent>, Secrets) {
    let params = params(pw);
    let secrets = Secrets::from_params(&params, &["pw"]);
    let rec = Recorder::default();
    let mut sink = Redacting::new(rec.clone(), secrets.clone());
    let mut options = RunOptions::new("r1");
    options.secrets = secrets.clone();
    options.prior = prior;
    let (_tx, rx) = watch::channel(Stop::No);
    let report = drflow_engine::run(rb, &params, options, &mut sink, rx)
        .await
        .unwrap();
    (report, rec.events(), secrets)
}

async fn run(rb: &Runbook, pw: &str) -> (RunReport, Vec<RunEvent>, Secrets) {
    run_prior(rb, pw, None).await
}

/// Everything written about the run: its events and its report, as JSON text.
fn written(report: &RunReport, events: &[RunEvent]) -> String {
    format!(
        "{}\n{}",
        serde_json::to_string(events).unwrap(),
        serde_json::to_string(report).unwrap()
    )
}

fn step_outputs(report: &RunReport, id: &str) -> Outputs {
    let s = report.steps.iter().find(|s| s.id == id).unwrap();
    s.outputs.clone().unwrap_or_default()
}

fn seen(h: &Harness, id: &str) -> (Value, bool) {
    let seen = h.seen.lock().unwrap();
    let (_, v, secret) = seen.iter().find(|(s, _, _)| s == id).unwrap();
    (v.clone(), *secret)
}

/// The issue's three examples: each transformed secret is recorded as `***`, everywhere.
#[tokio::test]
async fn transformed_secrets_are_recorded_as_stars() {
    let h = harness();
    let rb = compile_ok(
        &h,
        r#"steps:
  - id: set
    uses: t.set
    with:
      upper: ${{ params.pw | upper }}
      dashed: ${{ params.pw[0:3] ~ '-' ~ params.pw[3:] }}
      spaced: ${{ params.pw | list | join(' ') }}
      env: ${{ params.env | upper }}
  - id: echo
    needs: [set]
    uses: t.echo
    with: { value: "${{ params.pw | upper }}" }
outputs:
  upper: ${{ params.pw | upper }}
  dashed: ${{ params.pw[0:3] ~ '-' ~ params.pw[3:] }}
  spaced: ${{ params.pw | list | join(' ') }}
  env: ${{ params.env }}
"#,
    );
    let (report, events, _) = run(&rb, "hunter22").await;
    assert_eq!(report.status, RunStatus::Succeeded);
    let text = written(&report, &events);
    for clear in ["hunter22", "HUNTER22", "hun-ter22", "h u n t e r 2 2"] {
        assert!(!text.contains(clear), "{clear} written: {text}");
    }
    let set = step_outputs(&report, "set");
    assert_eq!(set["upper"], "***");
    assert_eq!(set["dashed"], "***");
    assert_eq!(set["spaced"], "***");
    // A value that reads no secret stays in clear.
    assert_eq!(set["env"], "PROD");
    assert_eq!(report.outputs["upper"], "***");
    assert_eq!(report.outputs["dashed"], "***");
    assert_eq!(report.outputs["spaced"], "***");
    assert_eq!(report.outputs["env"], "prod");
    // The step itself got the clear value, and was told it is secret.
    assert_eq!(seen(&h, "echo"), (json!("HUNTER22"), true));
}

/// Structural redaction does not depend on length: a two-character slice and a length are as
/// secret as the whole value.
#[tokio::test]
async fn short_derived_values_are_still_stars() {
    let h = harness();
    let rb = compile_ok(
        &h,
        r#"steps:
  - id: set
    uses: t.set
    with: { head: "${{ params.pw[0:2] }}", n: "${{ params.pw | length }}" }
outputs:
  head: ${{ steps.set.outputs.head }}
  n: ${{ steps.set.outputs.n }}
"#,
    );
    let (report, events, _) = run(&rb, "hunter22").await;
    let set = step_outputs(&report, "set");
    assert_eq!((&set["head"], &set["n"]), (&json!("***"), &json!("***")));
    assert_eq!(report.outputs["head"], "***");
    assert_eq!(report.outputs["n"], "***");
    let Some(RunEvent::StepSucceeded { outputs, .. }) = events
        .iter()
        .find(|e| matches!(e, RunEvent::StepSucceeded { .. }))
    else {
        panic!("{events:?}")
    };
    assert_eq!(outputs["head"], "***");
    assert_eq!(outputs["n"], "***");
}

/// A secret step output is secret downstream: the next step gets it in clear, and what it
/// outputs from it is secret in turn, and so is the runbook output that reads it.
#[tokio::test]
async fn secret_outputs_propagate_downstream_and_to_runbook_outputs() {
    let h = harness();
    let rb = compile_ok(
        &h,
        r#"steps:
  - id: token
    uses: t.echo
    with: { value: "Bearer ${{ params.pw }}" }
  - id: use
    needs: [token]
    uses: t.echo
    with: { value: "${{ steps.token.outputs.value | reverse }}" }
  - id: count
    needs: [use]
    uses: t.count
    with: { value: "${{ steps.use.outputs.value }}" }
  - id: plain
    needs: [count]
    uses: t.echo
    with: { value: "${{ steps.count.outputs.n }} characters" }
outputs:
  reversed: ${{ steps.use.outputs.value }}
  whole: ${{ steps.token.outputs }}
  n: ${{ steps.count.outputs.n }}
"#,
    );
    let (report, events, _) = run(&rb, "hunter22").await;
    assert_eq!(report.status, RunStatus::Succeeded);
    assert_eq!(seen(&h, "use"), (json!("22retnuh reraeB"), true));
    // Every output of a step with a secret input is secret (`len` too).
    assert_eq!(
        step_outputs(&report, "use"),
        json!({"value": "***", "len": "***"})
            .as_object()
            .unwrap()
            .clone()
    );
    // `t.count` declares its outputs never secret; what reads them is clear.
    assert_eq!(step_outputs(&report, "count")["n"], 15);
    assert_eq!(seen(&h, "plain"), (json!("15 characters"), false));
    assert_eq!(report.outputs["reversed"], "***");
    assert_eq!(report.outputs["whole"], "***");
    assert_eq!(report.outputs["n"], 15);
    let text = written(&report, &events);
    for clear in ["hunter22", "22retnuh", "Bearer"] {
        assert!(!text.contains(clear), "{clear} written: {text}");
    }
}

/// An error quoting a derived secret is scrubbed: the run added the value to its secrets.
#[tokio::test]
async fn an_error_quoting_a_derived_secret_is_scrubbed() {
    let h = harness();
    let rb = compile_ok(
        &h,
        r#"steps:
  - id: call
    uses: t.echo
    with: { value: "${{ params.pw | replace('2', '7') | upper }}", fail: true }
"#,
    );
    let (report, events, secrets) = run(&rb, "hunter22").await;
    assert_eq!(report.status, RunStatus::Failed);
    let text = serde_json::to_string(&events).unwrap();
    assert!(!text.contains("HUNTER77"), "{text}");
    assert!(text.contains("the service refused ***"), "{text}");
    // The binary scrubs the report and log lines with the same set.
    assert_eq!(secrets.scrub("log: HUNTER77"), "log: ***");
}

/// An input that fails its declaration is not quoted when it is secret, however short.
#[tokio::test]
async fn an_invalid_secret_input_is_not_quoted() {
    let h = harness();
    let rb = compile_ok(
        &h,
        r#"steps:
  - id: code
    uses: t.short
    with: { value: "${{ params.pw[0:2] }}" }
"#,
    );
    let (report, events, _) = run(&rb, "xyzzy-99").await;
    assert_eq!(report.status, RunStatus::Failed);
    let error = report.steps[0].error.as_ref().unwrap();
    assert_eq!(error.kind, "invalid_input");
    assert!(error.message.contains("secret value"), "{}", error.message);
    assert!(!error.message.contains("xy"), "{}", error.message);
    assert!(!serde_json::to_string(&events).unwrap().contains("xy`"));
}

/// An expression that reads a secret and fails does not show minijinja's details.
#[tokio::test]
async fn an_expression_error_on_a_secret_shows_only_its_kind() {
    let h = harness();
    let rb = compile_ok(
        &h,
        r#"steps:
  - id: sum
    uses: t.echo
    with: { value: "${{ (params.pw | upper) + 1 }}" }
"#,
    );
    let (report, _, _) = run(&rb, "hunter22").await;
    let error = report.steps[0].error.as_ref().unwrap();
    assert!(
        error.message.contains("invalid operation")
            && error.message.contains("the details are not shown"),
        "{}",
        error.message
    );
}

/// Names used whole are read whole: `params`, `params[...]`, `steps.<id>.outputs`.
#[test]
fn names_used_whole_are_secret_when_anything_in_them_is() {
    let h = harness();
    let rb = compile_ok(
        &h,
        r#"steps:
  - id: a
    uses: t.set
    with:
      all: ${{ params }}
      key: ${{ params['pw'] }}
      env: ${{ params.env }}
      creds: ${{ env.AWS_SECRET_ACCESS_KEY ~ env.GITHUB_TOKEN }}
      home: ${{ env.HOME }}
      any_var: ${{ env['HOME'] }}
      status: ${{ run.id }}
  - id: b
    needs: [a]
    uses: t.echo
    with: { value: "${{ steps.a.outputs }}" }
  - id: c
    needs: [a]
    uses: t.echo
    with: { value: "${{ steps.a.outputs.env }}" }
  - id: d
    needs: [b]
    uses: t.echo
    with: { value: "${{ steps.b.status }}" }
outputs:
  all: ${{ steps }}
"#,
    );
    let flow = SecretFlow::of(&rb);
    let a = rb.index["a"];
    for (name, secret) in [
        ("all", true),
        ("key", true),
        ("env", false),
        ("creds", true),
        ("home", false),
        ("any_var", true),
        ("status", false),
    ] {
        assert_eq!(flow.output_is_secret(a, name), secret, "{name}");
    }
    assert!(flow.has_secret_outputs(rb.index["b"]));
    assert!(!flow.has_secret_outputs(rb.index["c"]));
    // A step's status is never secret.
    assert!(!flow.has_secret_outputs(rb.index["d"]));
    assert!(flow.runbook_output_is_secret(0));
}

/// Resume: secret outputs come back from the journal as `***`. A step whose outputs are its
/// input has them evaluated again; any other step's secret outputs are lost, and a step that
/// reads one fails with a clear error instead of using `***` as if it were the secret.
#[tokio::test]
async fn resume_recomputes_or_refuses_secret_outputs() {
    let h = harness();
    let rb = compile_ok(
        &h,
        r#"steps:
  - id: set
    uses: t.set
    with: { conn: "user:${{ params.pw | upper }}@db", env: "${{ params.env }}" }
  - id: token
    uses: t.echo
    with: { value: "${{ params.pw }}" }
  - id: use_set
    needs: [set]
    uses: t.echo
    with: { value: "${{ steps.set.outputs.conn }}" }
  - id: use_token
    needs: [token]
    uses: t.echo
    with: { value: "${{ steps.token.outputs.value }}" }
  - id: use_len
    needs: [token]
    uses: t.echo
    with: { value: "${{ steps.token.status }}" }
outputs:
  conn: ${{ steps.set.outputs.conn }}
  token: ${{ steps.token.outputs.value }}
"#,
    );
    // The first run's journal: `set` and `token` succeeded, their secret outputs as `***`.
    let mut prior = Prior::default();
    prior.succeeded.insert(
        "set".into(),
        json!({"conn": "***", "env": "prod"})
            .as_object()
            .unwrap()
            .clone(),
    );
    prior.succeeded.insert(
        "token".into(),
        json!({"value": "***", "len": "***"})
            .as_object()
            .unwrap()
            .clone(),
    );
    let (report, events, _) = run_prior(&rb, "hunter22", Some(prior)).await;
    assert_eq!(report.status, RunStatus::Failed);
    // Evaluated again from its `with:`: the next step gets the secret, not `***`.
    assert_eq!(seen(&h, "use_set"), (json!("user:HUNTER22@db"), true));
    let use_token = report.steps.iter().find(|s| s.id == "use_token").unwrap();
    assert_eq!(use_token.status, StepStatus::Failed);
    let message = &use_token.error.as_ref().unwrap().message;
    assert!(
        message.contains("`steps.token.outputs.value`") && message.contains("Start a new run"),
        "{message}"
    );
    assert!(
        h.seen
            .lock()
            .unwrap()
            .iter()
            .all(|(s, _, _)| s != "use_token")
    );
    // Reading the status of such a step is fine.
    assert_eq!(
        report
            .steps
            .iter()
            .find(|s| s.id == "use_len")
            .unwrap()
            .status,
        StepStatus::Succeeded
    );
    assert_eq!(report.outputs["conn"], "***");
    assert_eq!(report.outputs["token"], "***");
    // The restored outputs are reported as journaled.
    assert_eq!(step_outputs(&report, "set")["conn"], "***");
    let text = written(&report, &events);
    assert!(
        !text.contains("HUNTER22") && !text.contains("hunter22"),
        "{text}"
    );
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
    Title,
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
            Transform::Title => format!("({x} | capitalize)"),
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
            Transform::Title => {
                let mut c = s.chars();
                c.next().map_or_else(String::new, |f| {
                    f.to_uppercase()
                        .chain(c.flat_map(char::to_lowercase))
                        .collect()
                })
            }
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
        Just(Transform::Title),
    ]
}

/// Secrets drawn from letters and digits that the words drflow writes (step ids, statuses,
/// event names) cannot contain six of in a row.
fn secret() -> impl Strategy<Value = String> {
    "[0-9]{2}[a-z0-9]{6,12}[0-9]"
}

fn run_case(secret: &str, chain: &[Transform]) -> Result<(), TestCaseError> {
    let mut expr = "params.pw".to_string();
    let mut value = secret.to_string();
    let mut values = vec![value.clone()];
    for t in chain {
        expr = t.expr(&expr);
        value = t.apply(&value);
        values.push(value.clone());
    }
    let h = harness();
    let body = format!(
        "steps:
  - id: set
    uses: t.set
    with: {{ derived: \"${{{{ {expr} }}}}\" }}
  - id: echo
    needs: [set]
    uses: t.echo
    with: {{ value: \"got ${{{{ steps.set.outputs.derived }}}}\" }}
  - id: fail
    needs: [echo]
    uses: t.echo
    with: {{ value: \"${{{{ {expr} }}}}\", fail: true }}
outputs:
  derived: ${{{{ {expr} }}}}
  echoed: ${{{{ steps.echo.outputs.value }}}}
"
    );
    let rb = compile_ok(&h, &body);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (report, events, _) = rt.block_on(run(&rb, secret));
    prop_assert_eq!(report.status, RunStatus::Failed);
    prop_assert_eq!(&seen(&h, "echo").0, &json!(format!("got {value}")));
    prop_assert_eq!(&report.outputs["derived"], "***");
    prop_assert_eq!(&report.outputs["echoed"], "***");
    let text = written(&report, &events);
    // Values too short to scrub out of text are only kept out structurally (above); longer
    // ones must appear nowhere, the error message of `fail` included.
    for v in values.iter().filter(|v| v.chars().count() >= 6) {
        prop_assert!(
            !text.contains(v.as_str()),
            "{} written by `{}`: {}",
            v,
            expr,
            text
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 48,
        failure_persistence: None,
        rng_seed: proptest::test_runner::RngSeed::Fixed(7),
        ..ProptestConfig::default()
    })]

    /// No transformation of a secret reaches the events or the report.
    #[test]
    fn no_transformation_of_a_secret_is_written(
        secret in secret(),
        chain in proptest::collection::vec(transform(), 1..4),
    ) {
        run_case(&secret, &chain)?;
    }
}
