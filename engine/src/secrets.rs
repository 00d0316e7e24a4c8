//! Secrets: parameters declared `secret: true`, and every value derived from one, are never
//! written in clear, nor printed.
//!
//! Three layers:
//!
//! - [`redact`] replaces the values of secret parameters by `"***"`: what `run_started` journals
//!   and what reports show as the run's parameters.
//! - [`SecretFlow`](crate::SecretFlow) knows, before the run, which step inputs, step outputs and
//!   runbook outputs are secret (they read a secret); the scheduler records secret outputs as
//!   `"***"` whole, whatever their length.
//! - [`Secrets`] remembers the clear values (at least [`MIN_SCRUB_LEN`] characters long) and
//!   scrubs them out of any text: a step error that quotes a token, a log line. The run adds the
//!   value of every secret expression as it evaluates it, so a transformed secret
//!   (`params.pw | upper`) is scrubbed too. [`Redacting`] wraps a [`RunSink`] (the journal, the
//!   progress display) so every event is scrubbed before it is written or drawn.
//!
//! Consequence for resume: the journal never has the secret, so `drflow resume` asks for secret
//! parameters again (`-p` or `--params-file`), and a secret output comes back from the journal
//! as `***` (docs/journal.md says what a resumed run does about it).

use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::BTreeSet;
use std::sync::{Arc, RwLock};

use serde_json::Value;

use crate::event::{RunEvent, RunSink, SinkError};
use crate::step::Outputs;

/// What a secret is replaced with.
pub const REDACTED: &str = "***";

/// Shorter secret values are not scrubbed out of text (scrubbing `"a"` out of every message
/// would garble everything and hide nothing): a secret parameter that short is refused, and a
/// shorter derived value (`params.pw[0:2]`, `params.pw | length`) is kept out of the journal and
/// reports structurally, as a whole secret value, never by searching text.
pub const MIN_SCRUB_LEN: usize = 4;

/// The parameters with the value of every name in `secret_names` replaced by `"***"`.
pub fn redact(params: &Outputs, secret_names: &[&str]) -> Value {
    Value::Object(
        params
            .iter()
            .map(|(k, v)| {
                let v = if secret_names.contains(&k.as_str()) {
                    Value::String(REDACTED.into())
                } else {
                    v.clone()
                };
                (k.clone(), v)
            })
            .collect(),
    )
}

/// The names of [`crate::RunStatus`], written in a typed field of `run_finished`.
const STATUS_WORDS: [&str; 6] = [
    "running",
    "succeeded",
    "failed",
    "interrupted",
    "rolled_back",
    "rollback_failed",
];

/// Secret texts, longest first (so a secret that contains another is replaced whole).
type ByLength = BTreeSet<(Reverse<usize>, String)>;

/// The clear values of a run's secrets, to scrub them out of text.
///
/// Clones share one set: the run adds derived secrets ([`Secrets::add`]) to the set the journal,
/// the progress display and the log writer scrub with.
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    values: Arc<RwLock<ByLength>>,
}

impl Secrets {
    /// Collects the values of the named parameters: every string and number inside them (list
    /// items, map values, at any depth) on its own, and a list or map also as its JSON text.
    pub fn from_params(params: &Outputs, secret_names: &[&str]) -> Secrets {
        let secrets = Secrets::default();
        for v in secret_names.iter().filter_map(|n| params.get(*n)) {
            secrets.insert(v, false);
        }
        secrets
    }

    /// Adds a secret value the run derived (the result of an expression that reads a secret),
    /// the same way as [`Secrets::from_params`] does a parameter's. Pieces shorter than
    /// [`MIN_SCRUB_LEN`] are left out: they cannot be scrubbed out of text, and are kept out of
    /// the journal and reports by [`SecretFlow`](crate::SecretFlow) alone. So is a piece of a run
    /// status name (`failed`, from `'failed' if params.pw else 'ok'`): every run writes those
    /// words in typed fields, where scrubbing them would leave an event that cannot be recorded
    /// and stop the run.
    pub fn add(&self, value: &Value) {
        self.insert(value, true);
    }

    /// A parameter's pieces are kept even when they are a status word: it was chosen as a
    /// secret, so an event it cannot be cleaned of is refused rather than written.
    fn insert(&self, value: &Value, derived: bool) {
        let mut pieces = Vec::new();
        collect(value, &mut pieces);
        pieces.retain(|s| {
            s.chars().count() >= MIN_SCRUB_LEN
                && !(derived && STATUS_WORDS.iter().any(|w| w.contains(s.as_str())))
        });
        if pieces.is_empty() {
            return;
        }
        let mut values = self.values.write().unwrap_or_else(|e| e.into_inner());
        for p in pieces {
            values.insert((Reverse(p.len()), p));
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, ByLength> {
        self.values.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The first secret parameter with a value (or a list item, or a map value) that is not
    /// empty and shorter than [`MIN_SCRUB_LEN`] characters: too short to scrub out of text, so
    /// it could not be kept out of messages and logs.
    pub fn too_short<'a>(params: &Outputs, secret_names: &[&'a str]) -> Option<&'a str> {
        secret_names.iter().copied().find(|n| {
            let mut values = Vec::new();
            if let Some(v) = params.get(*n) {
                collect(v, &mut values);
            }
            values
                .iter()
                .any(|s| !s.is_empty() && s.chars().count() < MIN_SCRUB_LEN)
        })
    }

    /// Whether there is nothing to scrub.
    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    /// `text` with every secret replaced by `***`.
    pub fn scrub<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for (_, secret) in self.read().iter() {
            if out.contains(secret.as_str()) {
                out = Cow::Owned(out.replace(secret.as_str(), REDACTED));
            }
        }
        out
    }

    /// Scrubs every string inside a JSON value (keys too), and replaces by `"***"` every number
    /// that is a secret.
    pub fn scrub_value(&self, value: &mut Value) {
        self.scrub_value_with(value, true);
    }

    fn scrub_value_with(&self, value: &mut Value, numbers: bool) {
        match value {
            Value::String(s) => {
                if let Cow::Owned(clean) = self.scrub(s) {
                    *s = clean;
                }
            }
            Value::Number(n) => {
                let text = n.to_string();
                if numbers && self.read().contains(&(Reverse(text.len()), text)) {
                    *value = Value::String(REDACTED.into());
                }
            }
            Value::Array(items) => items
                .iter_mut()
                .for_each(|v| self.scrub_value_with(v, numbers)),
            Value::Object(map) => {
                let entries = std::mem::take(map);
                for (k, mut v) in entries {
                    self.scrub_value_with(&mut v, numbers);
                    map.insert(self.scrub(&k).into_owned(), v);
                }
            }
            Value::Null | Value::Bool(_) => {}
        }
    }

    /// The event with every secret scrubbed out (the same event when there are no secrets).
    ///
    /// Fails closed: an event that cannot be cleaned (a secret equal to a status name, say) is an
    /// error, never recorded in clear.
    pub fn scrub_event<'a>(&self, event: &'a RunEvent) -> Result<Cow<'a, RunEvent>, SinkError> {
        if self.is_empty() {
            return Ok(Cow::Borrowed(event));
        }
        let refuse = || {
            SinkError(
                "an event could not be cleaned of a secret parameter's value, so it was not \
                 recorded; choose a secret that is not also a word drflow uses (a status or a \
                 step id)"
                    .into(),
            )
        };
        let Ok(Value::Object(original)) = serde_json::to_value(event) else {
            return Err(refuse());
        };
        // A secret number in a typed field (an attempt number, a timestamp) cannot become
        // "***"; then only strings are scrubbed (user data with numbers lives in outputs, which
        // are untyped and keep the scrub).
        for numbers in [true, false] {
            // The event's own field names and its `event` tag are drflow's words, not user
            // data: scrubbing them would only break the event.
            let mut value = original.clone();
            for (k, v) in value.iter_mut() {
                if k != "event" {
                    self.scrub_value_with(v, numbers);
                }
            }
            if let Ok(clean) = serde_json::from_value(Value::Object(value)) {
                return Ok(Cow::Owned(clean));
            }
        }
        Err(refuse())
    }
}

/// Every string and number inside `v`, and a list or map's JSON text. A string JSON would
/// escape (a quote, a backslash) also comes as escaped, the way a message quoting it shows it.
fn collect(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Null | Value::Bool(_) => {}
        Value::String(s) => {
            let quoted = v.to_string();
            let escaped = &quoted[1..quoted.len() - 1];
            if escaped != s {
                out.push(escaped.to_string());
            }
            out.push(s.clone());
        }
        Value::Number(n) => out.push(n.to_string()),
        Value::Array(items) => {
            out.push(v.to_string());
            items.iter().for_each(|i| collect(i, out));
        }
        Value::Object(map) => {
            out.push(v.to_string());
            map.values().for_each(|i| collect(i, out));
        }
    }
}

/// A sink that scrubs secrets out of every event before passing it on.
pub struct Redacting<S> {
    inner: S,
    secrets: Secrets,
}

impl<S: RunSink> Redacting<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, secrets: Secrets) -> Redacting<S> {
        Redacting { inner, secrets }
    }

    /// The wrapped sink.
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// The wrapped sink, borrowed.
    pub fn inner_mut(&mut self) -> &mut S {
        &mut self.inner
    }
}

impl<S: RunSink> RunSink for Redacting<S> {
    fn record(&mut self, event: &RunEvent) -> Result<(), SinkError> {
        let clean = self.secrets.scrub_event(event)?;
        self.inner.record(&clean)
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Recorder;
    use crate::step::StepError;
    use serde_json::json;

    fn params() -> Outputs {
        let Value::Object(m) = json!({"user": "ops", "token": "s3cr3t-t0ken", "pin": "12"}) else {
            unreachable!()
        };
        m
    }

    #[test]
    fn redact_replaces_secret_values_only() {
        assert_eq!(
            redact(&params(), &["token", "pin"]),
            json!({"user": "ops", "token": "***", "pin": "***"})
        );
    }

    #[test]
    fn scrubs_secrets_out_of_text_and_values() {
        let s = Secrets::from_params(&params(), &["token", "pin"]);
        assert_eq!(s.scrub("auth s3cr3t-t0ken refused"), "auth *** refused");
        // Too short to scrub from text: "12" stays (it is still redacted as a parameter).
        assert_eq!(s.scrub("retry 12 times"), "retry 12 times");
        let mut v = json!({"url": "https://x/?t=s3cr3t-t0ken", "list": ["s3cr3t-t0ken"]});
        s.scrub_value(&mut v);
        assert_eq!(v, json!({"url": "https://x/?t=***", "list": ["***"]}));
    }

    #[test]
    fn redacting_sink_scrubs_events() {
        let s = Secrets::from_params(&params(), &["token"]);
        let rec = Recorder::default();
        let mut sink = Redacting::new(rec.clone(), s);
        sink.record(&RunEvent::StepFailed {
            step: "login".into(),
            error: StepError::permanent("denied", "token s3cr3t-t0ken was rejected"),
            at: 1.0,
        })
        .unwrap();
        let text = serde_json::to_string(&rec.events()).unwrap();
        assert!(!text.contains("s3cr3t"), "{text}");
        assert!(text.contains("token *** was rejected"));
    }

    #[test]
    fn secrets_that_are_numbers_lists_or_maps_are_scrubbed_piece_by_piece() {
        let Value::Object(p) = json!({
            "pin": 987654,
            "m": {"password": "MapSecretPw1", "n": 4242},
            "l": ["ListSecret1", "ListSecret2"],
        }) else {
            unreachable!()
        };
        let s = Secrets::from_params(&p, &["pin", "m", "l"]);
        let mut v = json!({
            "n": 987654,
            "m": {"password": "MapSecretPw1", "n": 4242},
            "l": ["ListSecret1", "x ListSecret2 y"],
            "text": "pin 987654, pw MapSecretPw1",
            "other": 12,
        });
        s.scrub_value(&mut v);
        assert_eq!(
            v,
            json!({
                "n": "***",
                "m": {"password": "***", "n": "***"},
                "l": ["***", "x *** y"],
                "text": "pin ***, pw ***",
                "other": 12,
            })
        );
        // In an event: an output that is a secret number is scrubbed too.
        let mut outputs = Outputs::new();
        outputs.insert("n".into(), json!(987654));
        let event = RunEvent::StepSucceeded {
            step: "set".into(),
            attempt: 1,
            outputs,
            at: 1.0,
        };
        let text = serde_json::to_string(&*s.scrub_event(&event).unwrap()).unwrap();
        assert!(!text.contains("987654"), "{text}");
    }

    /// Regression: a secret equal to one of the event's field names broke the scrubbed event,
    /// and the event was then recorded unscrubbed.
    #[test]
    fn a_secret_that_is_also_a_field_name_is_still_scrubbed() {
        let mut params = Outputs::new();
        params.insert("pw".into(), json!("step"));
        let s = Secrets::from_params(&params, &["pw"]);
        let mut outputs = Outputs::new();
        outputs.insert("note".into(), json!("my step"));
        let event = RunEvent::StepSucceeded {
            step: "step_a".into(),
            attempt: 1,
            outputs,
            at: 1.0,
        };
        let clean = s.scrub_event(&event).unwrap();
        let RunEvent::StepSucceeded { step, outputs, .. } = &*clean else {
            panic!("the event kept its kind: {clean:?}");
        };
        assert_eq!(step, "***_a");
        assert_eq!(outputs["note"], "my ***");
    }

    /// A secret that cannot be scrubbed without breaking the event is refused, not recorded.
    #[test]
    fn an_event_that_cannot_be_cleaned_is_refused() {
        let mut params = Outputs::new();
        params.insert("pw".into(), json!("succeeded"));
        let s = Secrets::from_params(&params, &["pw"]);
        let event = RunEvent::RunFinished {
            status: crate::event::RunStatus::Succeeded,
            outputs: Outputs::new(),
            at: 1.0,
        };
        assert!(s.scrub_event(&event).is_err());
    }

    /// What the run adds is scrubbed by every clone (the journal's, the log writer's), except
    /// pieces too short to scrub; a value with a quote is also scrubbed as JSON shows it.
    #[test]
    fn added_secrets_are_shared_by_clones() {
        let run = Secrets::default();
        let log = run.clone();
        assert!(log.is_empty());
        run.add(&json!("HUNTER22"));
        run.add(&json!(["ab", "h u n t e r"]));
        run.add(&json!("pa\"ss-word"));
        assert_eq!(log.scrub("HUNTER22 ab h u n t e r"), "*** ab ***");
        assert_eq!(log.scrub(r#"got "pa\"ss-word""#), r#"got "***""#);
        assert_eq!(log.scrub("got pa\"ss-word"), "got ***");
        // A derived word of a run status would make `run_finished` unrecordable.
        run.add(&json!("failed"));
        let event = RunEvent::RunFinished {
            status: crate::event::RunStatus::Failed,
            outputs: Outputs::new(),
            at: 1.0,
        };
        assert!(log.scrub_event(&event).is_ok());
    }

    #[test]
    fn short_secrets_are_named() {
        let Value::Object(p) = json!({"a": "long-enough", "b": "", "c": 42, "d": ["ok-long", "x"]})
        else {
            unreachable!()
        };
        assert_eq!(Secrets::too_short(&p, &["a", "b"]), None);
        assert_eq!(Secrets::too_short(&p, &["a", "c"]), Some("c"));
        assert_eq!(Secrets::too_short(&p, &["d"]), Some("d"));
    }
}
