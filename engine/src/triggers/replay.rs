//! A file of recorded events (one JSON event per line, as EventBridge delivers them), read for
//! a replay through the [`Evaluator`](super::Evaluator): each event arrives at its own `time`.

use std::sync::Arc;

use serde_json::Value;

use super::time::parse_timestamp;
use crate::diag::{Diagnostic, Diagnostics, Pos};

/// One event of a replay file.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedEvent {
    /// Its line in the file, from 1.
    pub line: usize,
    /// The event.
    pub event: Value,
    /// When it arrives: its `time` (ms since the Unix epoch).
    pub arrival_ms: u64,
}

/// Reads a JSON-lines file of events (blank lines are skipped). Every problem is reported at
/// once, located: a line that is not JSON (at the column serde stopped), not an object, without
/// a `time`, or with a `time` or `detail.state.timestamp` that is not a timestamp.
pub fn read_events(text: &str, file: &str) -> Result<Vec<RecordedEvent>, Diagnostics> {
    let file: Arc<str> = Arc::from(file);
    let mut out = Vec::new();
    let mut errors = Vec::new();
    let mut err = |line: usize, col: usize, message: String, hint: &str| {
        errors.push(Diagnostic::new(file.clone(), Pos::new(line, col), message).with_hint(hint));
    };
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let event: Value = match serde_json::from_str(raw) {
            Ok(v) => v,
            Err(e) => {
                err(
                    line,
                    e.column().max(1),
                    format!("not a JSON event: {e}"),
                    "write one EventBridge event per line as a JSON object",
                );
                continue;
            }
        };
        if !event.is_object() {
            err(
                line,
                1,
                "an event must be a JSON object".into(),
                "write one EventBridge event per line as a JSON object",
            );
            continue;
        }
        let col_of = |key: &str| raw.find(&format!("\"{key}\"")).map_or(1, |c| c + 1);
        if let Some(ts) = event.pointer("/detail/state/timestamp") {
            let bad = ts.as_str().map_or_else(
                || {
                    Some(format!(
                        "`detail.state.timestamp` must be a string, but it is {ts}"
                    ))
                },
                |t| parse_timestamp(t).err(),
            );
            if let Some(why) = bad {
                err(
                    line,
                    col_of("timestamp"),
                    format!("`detail.state.timestamp`: {why}"),
                    "CloudWatch writes `2026-11-29T19:04:12.123+0000`",
                );
                continue;
            }
        }
        let arrival = match event.get("time") {
            None => Err("the event has no `time`, which says when it arrives".to_string()),
            Some(Value::String(t)) => parse_timestamp(t).map_err(|e| format!("`time`: {e}")),
            Some(other) => Err(format!("`time` must be a string, but it is {other}")),
        };
        match arrival {
            Ok(arrival_ms) => out.push(RecordedEvent {
                line,
                event,
                arrival_ms,
            }),
            Err(message) => err(
                line,
                col_of("time"),
                message,
                "EventBridge stamps every event with `\"time\": \"2026-11-29T19:04:12Z\"`",
            ),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(Diagnostics(errors))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_events_and_locates_every_bad_line() {
        let text = concat!(
            "{\"id\":\"a\",\"time\":\"2026-11-29T19:00:00Z\"}\n",
            "\n",
            "{\"id\":\"b\",\"time\":\n",
            "[1]\n",
            "{\"id\":\"c\"}\n",
            "{\"id\":\"d\",\"time\":\"yesterday\"}\n",
            "{\"id\":\"e\",\"time\":\"2026-11-29T19:00:00Z\",\"detail\":{\"state\":{\"timestamp\":\"soon\"}}}\n",
        );
        let err = read_events(text, "e.jsonl").unwrap_err();
        let at: Vec<(usize, usize)> = err.0.iter().map(|d| (d.pos.line, d.pos.col)).collect();
        assert_eq!(at, vec![(3, 17), (4, 1), (5, 1), (6, 11), (7, 60)]);
        assert!(err.0[2].message.contains("no `time`"), "{}", err.0[2]);
        let ok = read_events(text.lines().next().unwrap(), "e.jsonl").unwrap();
        assert_eq!(ok[0].arrival_ms, 1_795_978_800_000);
        assert_eq!(ok[0].line, 1);
    }
}
