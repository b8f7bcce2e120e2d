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

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

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

/// Installs the subscriber. `default` applies when RUST_LOG is unset. With the `otel`
/// feature, traces are exported when `OTEL_EXPORTER_OTLP_ENDPOINT` (or
/// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, as every OpenTelemetry SDK does.
pub fn init(format: &str, default: &str) -> Guard {
    let filter = || EnvFilter::try_from_default_env().unwrap_or_else(|_| default.into());
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    #[cfg_attr(not(feature = "otel"), allow(unused_mut))]
    let mut layers: Vec<Box<dyn Layer<Registry> + Send + Sync>> = vec![if format == "json" {
        fmt.fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
            .event_format(Flat)
            .with_filter(filter())
            .boxed()
    } else {
        fmt.with_filter(filter()).boxed()
    }];
    #[cfg(feature = "otel")]
    let otel = otel::Otel::from_env();
    #[cfg(feature = "otel")]
    if let Some(o) = &otel {
        layers.push(o.layer().with_filter(filter()).boxed());
    }
    tracing_subscriber::registry().with(layers).init();
    Guard {
        #[cfg(feature = "otel")]
        otel,
    }
}
