//! OTLP trace export (feature `otel`): the tracing spans — a `cycle` per cycle, a
//! `host_call` per backend call inside it — sent over OTLP/HTTP with protobuf bodies, the
//! transport every collector accepts and the easiest to receive on loopback. The batch
//! processor exports from its own thread with a blocking client, so nothing here runs on
//! (or may be dropped inside) the async runtime.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing_subscriber::Layer;

pub struct Otel {
    provider: SdkTracerProvider,
}

impl Otel {
    /// A provider when an OTLP endpoint is configured (the SDK's standard variables).
    pub fn from_env() -> Option<Otel> {
        let set = |k: &str| std::env::var(k).is_ok_and(|v| !v.is_empty());
        if !set("OTEL_EXPORTER_OTLP_ENDPOINT") && !set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
            return None;
        }
        let exporter = match SpanExporter::builder().with_http().with_protocol(Protocol::HttpBinary).build() {
            Ok(e) => e,
            Err(e) => {
                eprintln!("OTLP trace export disabled: {e}");
                return None;
            }
        };
        let resource = Resource::builder().with_service_name("nthlayer-host").build();
        let provider = SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource).build();
        Some(Otel { provider })
    }

    pub fn layer<S>(&self) -> impl Layer<S> + Send + Sync
    where
        S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a> + Send + Sync,
    {
        tracing_opentelemetry::layer().with_tracer(self.provider.tracer("nthlayer-host"))
    }

    /// Exports what the batch still holds.
    pub fn shutdown(self) {
        if let Err(e) = self.provider.shutdown() {
            eprintln!("OTLP trace export: {e}");
        }
    }
}
