//! What drflow logs on stderr, and how much.
//!
//! By default the log is written for the person running drflow: one line per resource a step
//! creates (`+`), changes (`~`), replaces (`-/+`) or deletes (`-`), the messages a runbook
//! writes with `core.log`, and warnings and errors. `-v` shows every INFO record in full (with
//! the step it came from) and each step's start and end, `-vv` DEBUG records, `-vvv` TRACE.
//! `DRFLOW_LOG` takes a tracing filter (`debug`, `drflow_steps=trace,warn`, …) and, when set,
//! chooses the records instead of `-v`, shown in full. Every line goes through the secret
//! scrubber and the live display ([`crate::progress::print_now`]).

use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering};

use drflow_steps::{MESSAGE_EVENTS, RESOURCE_EVENTS};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::{FilterExt, filter_fn};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::{self, FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormattedFields};
use tracing_subscriber::layer::{Filter, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

/// The environment variable holding a tracing filter for the log.
pub const LOG_ENV: &str = "DRFLOW_LOG";

static VERBOSITY: AtomicU8 = AtomicU8::new(0);

/// How many `-v` were given (0 by default).
pub fn verbosity() -> u8 {
    VERBOSITY.load(Ordering::Relaxed)
}

/// Installs the log for the whole process: `verbose` is the number of `-v` flags, `ansi`
/// whether stderr takes colours.
pub fn init(verbose: u8, ansi: bool) {
    VERBOSITY.store(verbose, Ordering::Relaxed);
    let mut problem = None;
    let from_env = match std::env::var(LOG_ENV) {
        Ok(v) if !v.trim().is_empty() => match EnvFilter::try_new(&v) {
            Ok(f) => Some(f),
            Err(e) => {
                problem = Some(format!(
                    "drflow: ignoring {LOG_ENV}={v:?}: {e} (write a level such as `debug`, or \
                     `target=level` pairs separated by commas)"
                ));
                None
            }
        },
        _ => None,
    };
    let full = from_env.is_some() || verbose > 0;
    let filter = from_env.unwrap_or_else(|| EnvFilter::new(default_filter(verbose)));
    tracing_subscriber::registry()
        .with(
            layer(full, ansi, crate::cmd_journal::scrubbed_stderr).with_filter(filter.or(steps())),
        )
        .init();
    if let Some(p) = problem {
        crate::progress::print_now(&p);
    }
}

/// The formatting layer: records in full, or lines for a person.
fn layer<S, W>(full: bool, ansi: bool, writer: W) -> impl Layer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + 'static,
{
    tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(ansi)
        .event_format(Lines {
            full: full.then(|| {
                format::format()
                    .with_target(false)
                    .without_time()
                    .with_ansi(ansi)
            }),
            ansi,
        })
}

/// The spans steps run in, whatever the filter: a warning from inside a step then says which
/// step it is about, even when INFO records are not shown.
fn steps<S>() -> impl Filter<S> {
    filter_fn(|meta| meta.is_span() && meta.name() == "step")
}

/// The filter `-v` picks when `DRFLOW_LOG` is not set.
fn default_filter(verbose: u8) -> String {
    match verbose {
        0 => format!("warn,{RESOURCE_EVENTS}=info,{MESSAGE_EVENTS}=info"),
        1 => "info".into(),
        2 => "debug".into(),
        _ => "trace".into(),
    }
}

/// Formats each record: in full (tracing's own format) when asked for, otherwise as a line
/// for a person.
struct Lines {
    full: Option<format::Format<format::Full, ()>>,
    ansi: bool,
}

/// The fields of one record.
#[derive(Default)]
struct Fields {
    message: String,
    named: Vec<(&'static str, String)>,
}

impl Fields {
    fn get(&self, name: &str) -> &str {
        self.named
            .iter()
            .find(|(n, _)| *n == name)
            .map_or("", |(_, v)| v.as_str())
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_owned();
        } else {
            self.named.push((field.name(), value.to_owned()));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        } else {
            self.named.push((field.name(), format!("{value:?}")));
        }
    }
}

impl<S, N> FormatEvent<S, N> for Lines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        if let Some(full) = &self.full {
            return full.format_event(ctx, writer, event);
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let meta = event.metadata();
        let paint = |code: &str, text: &str| {
            if self.ansi {
                format!("\x1b[{code}m{text}\x1b[0m")
            } else {
                text.to_owned()
            }
        };
        if meta.target() == RESOURCE_EVENTS {
            let (sign, colour) = match fields.get("change") {
                "created" => ("  +", "32"),
                "updated" => ("  ~", "33"),
                "replaced" => ("-/+", "33"),
                "deleted" => ("  -", "31"),
                _ => ("  ?", "0"),
            };
            write!(
                writer,
                "{} {} {}",
                paint(colour, sign),
                fields.get("kind"),
                fields.get("name"),
            )?;
            // A child (a route, a record) is named within its parent.
            let parent = fields.get("parent");
            if !parent.is_empty() {
                write!(writer, " in {parent}")?;
            }
            write!(writer, " ({})", fields.get("region"))?;
            let detail = fields.get("detail");
            if !detail.is_empty() {
                write!(writer, ": {detail}")?;
            }
            return writeln!(writer);
        }
        match *meta.level() {
            Level::ERROR => write!(writer, "{} ", paint("31", "error:"))?,
            Level::WARN => write!(writer, "{} ", paint("33", "warning:"))?,
            _ => {}
        }
        if meta.target() == MESSAGE_EVENTS {
            return writeln!(writer, "{}: {}", fields.get("step"), fields.message);
        }
        write!(writer, "{}", fields.message)?;
        // Context a person needs to act on a warning: the step it is about, then its fields.
        let step = ctx
            .event_scope()
            .and_then(|scope| {
                scope.from_root().find_map(|span| {
                    let ext = span.extensions();
                    let fields = ext.get::<FormattedFields<N>>()?;
                    let text = fields.fields.as_str();
                    text.split(' ')
                        .find_map(|kv| kv.strip_prefix("step="))
                        .map(|v| v.trim_matches('"').to_owned())
                })
            })
            .filter(|_| fields.get("step").is_empty());
        let mut extra: Vec<String> = step.into_iter().map(|s| format!("step={s}")).collect();
        extra.extend(fields.named.iter().map(|(k, v)| format!("{k}={v}")));
        if !extra.is_empty() {
            write!(writer, " ({})", extra.join(" "))?;
        }
        writeln!(writer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// What the person format writes for the events `f` emits.
    fn lines(f: impl FnOnce()) -> String {
        let out = Arc::new(Mutex::new(Vec::<u8>::new()));
        let sink = Arc::clone(&out);
        let subscriber = tracing_subscriber::registry().with(
            layer(false, false, move || Capture(Arc::clone(&sink)))
                .with_filter(EnvFilter::new(default_filter(0)).or(steps())),
        );
        tracing::subscriber::with_default(subscriber, f);
        let bytes = out.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn resource(change: &str, detail: &str) {
        tracing::info!(
            target: RESOURCE_EVENTS,
            change,
            kind = "vpc",
            name = "vpc-eu",
            region = "eu-south-1",
            id = "vpc-1",
            detail,
            "{change} vpc vpc-eu (eu-south-1)"
        );
    }

    #[test]
    fn resources_show_as_plus_tilde_minus_lines() {
        let out = lines(|| {
            resource("created", "");
            resource("updated", "cidr differed");
            resource(
                "replaced",
                "cidr was \"10.0.0.0/16\", which cannot change in place",
            );
            resource("deleted", "");
        });
        assert_eq!(
            out,
            "  + vpc vpc-eu (eu-south-1)\n\
             \x20 ~ vpc vpc-eu (eu-south-1): cidr differed\n\
             -/+ vpc vpc-eu (eu-south-1): cidr was \"10.0.0.0/16\", which cannot change in place\n\
             \x20 - vpc vpc-eu (eu-south-1)\n"
        );
    }

    #[test]
    fn a_child_resource_is_named_within_its_parent() {
        let out = lines(|| {
            tracing::info!(
                target: RESOURCE_EVENTS,
                change = "created",
                kind = "route",
                name = "0.0.0.0/0",
                parent = "rtb-0a1b",
                region = "eu-south-1",
                id = "rtb-0a1b_0.0.0.0/0",
                detail = "",
                "created route 0.0.0.0/0 in rtb-0a1b (eu-south-1)"
            );
        });
        assert_eq!(out, "  + route 0.0.0.0/0 in rtb-0a1b (eu-south-1)\n");
    }

    #[test]
    fn runbook_messages_and_warnings_are_shown_and_info_records_are_not() {
        let out = lines(|| {
            tracing::info!(target: MESSAGE_EVENTS, step = "notify", "failover done");
            tracing::warn!(target: MESSAGE_EVENTS, step = "notify", "slow");
            tracing::info!(step = "x", "an INFO record, shown with -v only");
            let span = tracing::info_span!("step", runbook = "r", step = "undo_me");
            span.in_scope(|| tracing::warn!(attempt = 2, "Undo failed; retrying"));
        });
        assert_eq!(
            out,
            "notify: failover done\n\
             warning: notify: slow\n\
             warning: Undo failed; retrying (step=undo_me attempt=2)\n"
        );
    }

    #[test]
    fn each_verbosity_lets_more_through() {
        assert_eq!(
            default_filter(0),
            "warn,drflow::resource=info,drflow::message=info"
        );
        assert_eq!(default_filter(1), "info");
        assert_eq!(default_filter(2), "debug");
        assert_eq!(default_filter(7), "trace");
        for v in 0..4 {
            assert!(EnvFilter::try_new(default_filter(v)).is_ok());
        }
    }
}
