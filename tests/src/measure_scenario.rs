//! The measure scenario on real processes: manifests with judgment SLOs and thresholds
//! (`tests/fixtures/measure/`), live judgment SLIs and calibration error from an exporter
//! that the test changes at will, and a 30-day feedback-latency histogram backfilled into
//! Prometheus (so `increase(…[30d])` has something to measure).
//!
//! * agent-a (srm/v1): reversal_rate 98.5/7d and high_confidence_failure 98/30d, both with
//!   queries on `test_judgment{service,slo}`; calibration threshold ECE ≤ 0.05.
//! * agent-b (v2): judgment SLO without a query (skipped); feedback_latency p50 ≤ 1h, p90 ≤ 2h
//!   from the backfilled histogram (p50 = 2400 s within, p90 beyond the 7200 s top bucket:
//!   a lower-bound breach); stability (no series: not_evaluable).
//! * agent-c (bad input, only with [`manifests_dir`]`(true)`): a query answering two series,
//!   one answering a string, and a valid audit_sampling SLO.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

use tempfile::TempDir;

use crate::exporter::{render_labels, sample, Exporter};
use crate::prometheus::{History, PromOpts, Prometheus};
use crate::util;

pub const AGENT_A: &str = "agent-a";
pub const AGENT_B: &str = "agent-b";
pub const AGENT_C: &str = "agent-c";
pub const JUDGMENT_METRIC: &str = "test_judgment";
pub const ECE_METRIC: &str = "gen_ai_calibration_ece";
pub const LATENCY_BUCKETS: &str = "gen_ai_feedback_latency_seconds_bucket";
/// Per hour of history: cumulative observations at or under each `le` (10 in all).
pub const LATENCY_PER_HOUR: [(&str, f64); 4] = [("600", 2.0), ("3600", 7.0), ("7200", 8.0), ("+Inf", 10.0)];

/// `<modules>/measure.wasm`.
pub fn measure_module() -> PathBuf {
    crate::modules::MEASURE.path()
}

/// A directory with the good manifests, plus agent-c's bad ones when `with_bad`.
pub fn manifests_dir(with_bad: bool) -> TempDir {
    let dir = tempfile::Builder::new().prefix("measure-manifests-").tempdir().expect("tempdir");
    let root = util::fixtures_dir().join("measure");
    let subdirs: &[&str] = if with_bad { &["good", "bad"] } else { &["good"] };
    for sub in subdirs {
        for f in std::fs::read_dir(root.join(sub)).expect("fixtures/measure") {
            let f = f.expect("entry").path();
            std::fs::copy(&f, dir.path().join(f.file_name().expect("name"))).expect("copy manifest");
        }
    }
    dir
}

/// The feedback-latency histogram for agent-b: hourly counters over 30 days ending at
/// `floor_hour(now) - 3h` (strictly older than Prometheus's head).
pub fn latency_history(now: f64) -> History {
    let (start, end) = crate::scenario::history_range(now);
    let mut h = History::new();
    for (le, per_hour) in LATENCY_PER_HOUR {
        h.series_fn(LATENCY_BUCKETS, &[("service", AGENT_B), ("le", le)], start, end, 3600, |t| {
            per_hour * ((t - start) / 3600) as f64
        });
    }
    h
}

/// Exporter + Prometheus for the scenario. Values start breaching: agent-a reversal_rate
/// 0.92 (433 % of budget: high) and ECE 0.08 over its 0.05 bound; hcf healthy at 0.99.
pub struct MeasureStack {
    // Field order = drop order: Prometheus stops scraping before the exporter goes away.
    pub prometheus: Prometheus,
    pub exporter: Exporter,
    /// (metric, rendered labels) -> value.
    gauges: Mutex<BTreeMap<(String, String), f64>>,
}

impl MeasureStack {
    pub fn start() -> MeasureStack {
        let mut gauges = BTreeMap::new();
        let mut put = |m: &str, labels: &[(&str, &str)], v: f64| {
            gauges.insert((m.to_string(), render_labels(labels)), v);
        };
        put(JUDGMENT_METRIC, &[("service", AGENT_A), ("slo", "reversal_rate")], 0.92);
        put(JUDGMENT_METRIC, &[("service", AGENT_A), ("slo", "high_confidence_failure")], 0.99);
        put(JUDGMENT_METRIC, &[("service", AGENT_C), ("slo", "audit_sampling")], 0.95);
        put(JUDGMENT_METRIC, &[("service", "x1"), ("slo", "many")], 0.5);
        put(JUDGMENT_METRIC, &[("service", "x2"), ("slo", "many")], 0.6);
        put(ECE_METRIC, &[("service", AGENT_A), ("bins", "10"), ("window", "30d")], 0.08);
        let exporter = Exporter::start(text(&gauges));
        let opts = PromOpts {
            history: Some(latency_history(util::unix_now())),
            scrape_targets: vec![exporter.target()],
            // The backfilled histogram ends hours ago, beyond the lookback: ask over a day.
            wait_for: vec![JUDGMENT_METRIC.into(), ECE_METRIC.into(), format!("last_over_time({LATENCY_BUCKETS}[1d])")],
            ..PromOpts::default()
        };
        let prometheus = Prometheus::start(opts);
        MeasureStack { prometheus, exporter, gauges: Mutex::new(gauges) }
    }

    /// Serve a new value for agent-a's judgment SLI `slo` (seen at the next 1 s scrape).
    pub fn set_judgment(&self, service: &str, slo: &str, v: f64) {
        self.set(JUDGMENT_METRIC, &[("service", service), ("slo", slo)], v);
    }

    /// Serve a new expected calibration error for agent-a.
    pub fn set_ece(&self, v: f64) {
        self.set(ECE_METRIC, &[("service", AGENT_A), ("bins", "10"), ("window", "30d")], v);
    }

    fn set(&self, metric: &str, labels: &[(&str, &str)], v: f64) {
        let mut g = self.gauges.lock().unwrap();
        g.insert((metric.to_string(), render_labels(labels)), v);
        self.exporter.set(text(&g));
    }

    /// Prometheus's current answer for `promql` (first sample).
    pub fn value(&self, promql: &str) -> Option<f64> {
        self.prometheus.query_value(promql)
    }

    pub fn prometheus_url(&self) -> String {
        self.prometheus.url()
    }
}

fn text(gauges: &BTreeMap<(String, String), f64>) -> String {
    let mut s = String::new();
    let mut last = "";
    for ((metric, labels), v) in gauges {
        if metric != last {
            s.push_str(&format!("# TYPE {metric} gauge\n"));
            last = metric;
        }
        let line = sample(metric, &[], *v);
        s.push_str(&line.replacen(metric.as_str(), &format!("{metric}{labels}"), 1));
    }
    s
}
