//! `/metrics` in the OpenMetrics text format (prometheus-client): the event families the
//! host records as things happen ([`crate::telemetry`]) plus gauges read from
//! [`crate::lifecycle::status::HostStatus`] at scrape time (scrape.rs). Every family and
//! label is listed in docs/OPERATIONS.md.

pub mod reload;
mod scrape;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use prometheus_client::registry::Registry;

use super::Ops;

/// OpenMetrics 1.0's media type, which Prometheus negotiates.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

pub fn routes() -> Router<Ops> {
    Router::new().route("/metrics", get(metrics))
}

async fn metrics(State(ops): State<Ops>) -> impl IntoResponse {
    match render(&ops) {
        Ok(body) => (StatusCode::OK, [(header::CONTENT_TYPE, CONTENT_TYPE)], body),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("cannot encode metrics: {e}\n"),
        ),
    }
}

/// The exposition text. A registry per scrape: registering is a handful of `Arc` clones,
/// and the scrape-time collector then holds the status it reads without a global.
pub fn render(ops: &Ops) -> Result<String, std::fmt::Error> {
    let mut registry = Registry::default();
    crate::telemetry::register(&mut registry);
    reload::register(&mut registry);
    registry.register_collector(Box::new(scrape::Scrape(ops.status().cloned())));
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &registry)?;
    Ok(out)
}
