//! The process's subscriber: text or JSON lines on stderr (`--log-format`), and with the
//! `otel` feature an OpenTelemetry layer exporting the same spans over OTLP.
//!
//! JSON lines carry the fields of every span they were written in flattened beside their
//! own (json.rs): a line written during a cycle has `module`, `version` and `task` as keys
//! of its own — a log shipper can index them without parsing the message. The cycle's span
//! is opened by the scheduler ([`crate::telemetry::cycle_span`]); each host call to a
//! backend opens a `host_call` span (`interface`) inside it.

mod json;
#[cfg(feature = "otel")]
mod otel;

use std::sync::OnceLock;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Layer, Registry};

pub use json::Flat;

/// Flushes what the exporters still hold when dropped (at the end of `main`, outside the
/// async runtime: the OTLP exporter's blocking client must not be dropped inside it).
#[must_use]
pub struct Guard {
    #[cfg(feature = "otel")]
    otel: Option<otel::Otel>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        #[cfg(feature = "otel")]
        if let Some(o) = self.otel.take() {
            o.shutdown();
        }
    }
}

/// What a reload can change: the one filter every layer (stderr and, with `otel`, the
/// exporter) sits behind, and the directives to go back to when the level leaves the file.
struct Levels {
    handle: reload::Handle<EnvFilter, Registry>,
    start: String,
}

/// The registry behind the reloadable filter: what every output layer stacks on.
type Filtered = tracing_subscriber::layer::Layered<reload::Layer<EnvFilter, Registry>, Registry>;

static LEVELS: OnceLock<Levels> = OnceLock::new();

/// A filter from `directives` (RUST_LOG's syntax), or why not: checked before a reload
/// applies anything.
pub fn parse_level(directives: &str) -> Result<EnvFilter, String> {
    EnvFilter::builder().parse(directives).map_err(|e| format!("log-level {directives:?}: {e}"))
}

/// Sets every layer's filter to `directives`, or back to the one the process started with
/// (`None`). Events already filtered are not re-emitted; the next ones follow the new level.
pub fn set_level(directives: Option<&str>) -> Result<(), String> {
    let Some(levels) = LEVELS.get() else { return Ok(()) };
    let text = directives.unwrap_or(&levels.start);
    levels.handle.reload(parse_level(text)?).map_err(|e| format!("log-level {text:?}: {e}"))
}

/// Installs the subscriber. `level` (`--log-level`) wins; without it RUST_LOG, else
/// `default`. With the `otel` feature, traces are exported when
/// `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, as every
/// OpenTelemetry SDK does.
pub fn init(format: &str, default: &str, level: Option<&str>) -> Guard {
    let start = match level {
        Some(l) => l.to_string(),
        None => std::env::var(EnvFilter::DEFAULT_ENV).ok().filter(|v| parse_level(v).is_ok()).unwrap_or(default.into()),
    };
    let start_filter = parse_level(&start).unwrap_or_else(|e| {
        eprintln!("{e}; logging at {default:?}");
        EnvFilter::new(default)
    });
    let (filter, handle) = reload::Layer::new(start_filter);
    // Colours only for a terminal: a journal or a log file gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(ansi);
    #[cfg_attr(not(feature = "otel"), allow(unused_mut))]
    let mut layers: Vec<Box<dyn Layer<Filtered> + Send + Sync>> = vec![if format == "json" {
        fmt.fmt_fields(tracing_subscriber::fmt::format::JsonFields::new()).event_format(Flat).boxed()
    } else {
        fmt.boxed()
    }];
    #[cfg(feature = "otel")]
    let otel = otel::Otel::from_env();
    #[cfg(feature = "otel")]
    if let Some(o) = &otel {
        layers.push(o.layer().boxed());
    }
    tracing_subscriber::registry().with(filter).with(layers).init();
    let _ = LEVELS.set(Levels { handle, start });
    Guard {
        #[cfg(feature = "otel")]
        otel,
    }
}
