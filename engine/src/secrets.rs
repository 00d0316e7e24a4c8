//! Secrets: parameters declared `secret: true` are never written in clear, nor printed.
//!
//! Two layers:
//!
//! - [`redact`] replaces the values of secret parameters by `"***"`: what `run_started` journals
//!   and what reports show as the run's parameters.
//! - [`Secrets`] remembers the clear values (at least [`MIN_SCRUB_LEN`] characters long) and
//!   scrubs them out of any text: a step error that quotes a token, an output that embeds a
//!   password. [`Redacting`] wraps a [`RunSink`] (the journal, the progress display) so every
//!   event is scrubbed before it is written or drawn.
//!
//! Consequence for resume: the journal never has the secret, so `drflow resume` asks for secret
//! parameters again (`-p` or `--params-file`), and an output that contained a secret comes back
//! from the journal with `***` in its place.

use std::borrow::Cow;

use serde_json::Value;

use crate::event::{RunEvent, RunSink, SinkError};
use crate::step::Outputs;

/// What a secret is replaced with.
pub const REDACTED: &str = "***";

/// Shorter secret values are only redacted as whole parameter values, not scrubbed out of text
/// (scrubbing `"a"` out of every message would garble everything and hide nothing).
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

/// The clear values of a run's secrets, to scrub them out of text.
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    /// Longest first, so a secret that contains another is replaced whole.
    values: Vec<String>,
}

impl Secrets {
    /// Collects the values of the named parameters (strings as they are, other values as JSON).
    pub fn from_params(params: &Outputs, secret_names: &[&str]) -> Secrets {
        let mut values: Vec<String> = secret_names
            .iter()
            .filter_map(|n| params.get(*n))
            .filter_map(|v| match v {
                Value::Null => None,
                Value::String(s) => Some(s.clone()),
                other => Some(other.to_string()),
            })
            .filter(|s| s.chars().count() >= MIN_SCRUB_LEN)
            .collect();
        values.sort_by_key(|s| std::cmp::Reverse(s.len()));
        values.dedup();
        Secrets { values }
    }

    /// Whether there is nothing to scrub.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// `text` with every secret replaced by `***`.
    pub fn scrub<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for secret in &self.values {
            if out.contains(secret.as_str()) {
                out = Cow::Owned(out.replace(secret.as_str(), REDACTED));
            }
        }
        out
    }

    /// Scrubs every string inside a JSON value (keys too).
    pub fn scrub_value(&self, value: &mut Value) {
        match value {
            Value::String(s) => {
                if let Cow::Owned(clean) = self.scrub(s) {
                    *s = clean;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.scrub_value(v)),
            Value::Object(map) => {
                let entries = std::mem::take(map);
                for (k, mut v) in entries {
                    self.scrub_value(&mut v);
                    map.insert(self.scrub(&k).into_owned(), v);
                }
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }

    /// The event with every secret scrubbed out (the same event when there are no secrets).
    pub fn scrub_event<'a>(&self, event: &'a RunEvent) -> Cow<'a, RunEvent> {
        if self.is_empty() {
            return Cow::Borrowed(event);
        }
        let Ok(mut value) = serde_json::to_value(event) else {
            return Cow::Borrowed(event);
        };
        self.scrub_value(&mut value);
        match serde_json::from_value(value) {
            Ok(clean) => Cow::Owned(clean),
            Err(_) => Cow::Borrowed(event),
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
        let clean = self.secrets.scrub_event(event);
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
}
