//! The config reload's own series, named after Prometheus's (`prometheus_config_last_reload_*`)
//! so the alerts SREs already have for Prometheus and Alertmanager carry over:
//! `nthlayer_config_reloads_total{outcome}`, `nthlayer_config_last_reload_successful` and
//! `nthlayer_config_last_reload_success_timestamp_seconds` (the start-up load counts as the
//! first success, as in Prometheus).

use std::sync::atomic::AtomicU64;
use std::sync::LazyLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    outcome: &'static str,
}

struct Series {
    reloads: Family<Outcome, Counter>,
    successful: Gauge,
    success_at: Gauge<f64, AtomicU64>,
}

static SERIES: LazyLock<Series> =
    LazyLock::new(|| Series { reloads: Family::default(), successful: Gauge::default(), success_at: Gauge::default() });

fn now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// The configuration the host started with is loaded.
pub fn loaded() {
    SERIES.successful.set(1);
    SERIES.success_at.set(now());
}

/// A reload (SIGHUP or `POST /-/reload`) ended: applied, or refused with nothing changed.
pub fn outcome(ok: bool) {
    SERIES.reloads.get_or_create(&Outcome { outcome: if ok { "success" } else { "failure" } }).inc();
    SERIES.successful.set(ok as i64);
    if ok {
        SERIES.success_at.set(now());
    }
}

pub fn register(r: &mut Registry) {
    let s = &*SERIES;
    r.register("nthlayer_config_reloads", "Config reloads, by outcome", s.reloads.clone());
    r.register("nthlayer_config_last_reload_successful", "1 if the last reload applied", s.successful.clone());
    r.register(
        "nthlayer_config_last_reload_success_timestamp_seconds",
        "When the configuration was last loaded successfully (start-up or reload)",
        s.success_at.clone(),
    );
}
