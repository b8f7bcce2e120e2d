//! The canonical observe scenario (runtime-observe-measure.md §8), on real processes.
//!
//! * Manifests (`tests/fixtures/manifests/`): checkout-api (critical; availability 99.9/30d,
//!   latency 99.0/7d, throughput with no query), payment-api (standard; availability
//!   99.95/30d), fraud-detect (standard, srm/v1 ai-gate; judgment SLO reversal_rate 98.5/7d with
//!   an indicator query, calibration threshold 0.05). Indicator queries read the exporter gauge
//!   `test_sli{service=…,slo=…}`; checkout availability and payment availability use
//!   `$service`, checkout latency uses `${service}`, fraud-detect's judgment query names the
//!   service literally (measure sends it verbatim).
//! * Exporter: SLIs 0.9995 / 0.97 / 0.99995 / 0.92, ECE 0.08, topology edges
//!   checkout→payment, checkout→fraud, fraud→payment as `http_client_requests_total`.
//! * History: `slo:error_budget_remaining:ratio` for checkout-api/availability falling linearly
//!   0.9 → 0.6 over 30 days, and a flat 0.95 for payment-api/availability, sampled hourly and
//!   ending at `floor_hour(now) - 3h`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

use crate::exporter::{sample, Exporter};
use crate::prometheus::{History, PromOpts, Prometheus};
use crate::util;

pub const CHECKOUT: &str = "checkout-api";
pub const PAYMENT: &str = "payment-api";
pub const FRAUD: &str = "fraud-detect";
/// Manifest services, in the order core serves them (file-name order).
pub const SERVICES: [&str; 3] = [CHECKOUT, FRAUD, PAYMENT];

/// The SLI gauge the manifests' indicator queries read.
pub const SLI_METRIC: &str = "test_sli";
/// (service, slo, value) served by the exporter at start.
pub const SLIS: [(&str, &str, f64); 4] = [
    (CHECKOUT, "availability", 0.9995),
    (CHECKOUT, "latency", 0.97),
    (PAYMENT, "availability", 0.99995),
    (FRAUD, "reversal_rate", 0.92),
];
/// Topology edges caller → callee (`http_client_requests_total{service,target_service}`).
pub const EDGES: [(&str, &str); 3] = [(CHECKOUT, PAYMENT), (CHECKOUT, FRAUD), (FRAUD, PAYMENT)];
/// Expected calibration error served for fraud-detect (bins 10, window 30d).
pub const ECE: f64 = 0.08;

/// The drift metric observe.drift reads.
pub const BUDGET_METRIC: &str = "slo:error_budget_remaining:ratio";
/// History length and step.
pub const HISTORY_DAYS: i64 = 30;
pub const HISTORY_STEP_SECS: i64 = 3600;
/// History ends at `floor_hour(now) - HISTORY_GAP_SECS`, strictly older than Prometheus' head.
pub const HISTORY_GAP_SECS: i64 = 3 * 3600;

/// What the reference (nthlayer-workers 3.0.3) posted for this scenario in the harness run.
pub mod expected {
    /// checkout-api/availability: objective 99.9, sli 0.9995.
    pub const CHECKOUT_AVAILABILITY_PERCENT_CONSUMED: f64 = 49.999999999997335;
    pub const CHECKOUT_AVAILABILITY_TOTAL_BUDGET_MINUTES: f64 = 43.199999999997544;
    pub const CHECKOUT_AVAILABILITY_BURNED_MINUTES: f64 = 21.59999999999762;
    /// checkout-api/latency: objective 99.0 over 7d, sli 0.97.
    pub const CHECKOUT_LATENCY_PERCENT_CONSUMED: f64 = 300.0000000000003;
    pub const CHECKOUT_LATENCY_TOTAL_BUDGET_MINUTES: f64 = 100.8;
    pub const CHECKOUT_LATENCY_BURNED_MINUTES: f64 = 302.40000000000026;
    /// drift_signal checkout-api/availability.
    pub const DRIFT_SLOPE_PER_WEEK: f64 = -0.07;
    pub const DRIFT_DAYS_UNTIL_EXHAUSTION: i64 = 60;
    pub const DRIFT_CURRENT_BUDGET: f64 = 0.6000000000000001;

    use serde_json::{json, Value};

    /// Full `slo_status` data per `service/slo`, exactly as the reference posted it.
    pub fn slo_status() -> Vec<(&'static str, Value)> {
        vec![
            (
                "checkout-api/availability",
                json!({"slo_name":"availability","objective":99.9,"window":"30d","total_budget_minutes":43.199999999997544,"status":"HEALTHY","current_sli":99.95,"burned_minutes":21.59999999999762,"percent_consumed":49.999999999997335}),
            ),
            (
                "checkout-api/latency",
                json!({"slo_name":"latency","objective":99.0,"window":"7d","total_budget_minutes":100.8,"status":"EXHAUSTED","current_sli":97.0,"burned_minutes":302.40000000000026,"percent_consumed":300.0000000000003}),
            ),
            (
                "checkout-api/throughput",
                json!({"slo_name":"throughput","objective":99.0,"window":"30d","total_budget_minutes":432.0,"status":"NO_DATA","error":"No query defined"}),
            ),
            (
                "fraud-detect/reversal_rate",
                json!({"slo_name":"reversal_rate","objective":98.5,"window":"7d","total_budget_minutes":151.2,"status":"EXHAUSTED","current_sli":92.0,"burned_minutes":806.3999999999996,"percent_consumed":533.3333333333331}),
            ),
            (
                "payment-api/availability",
                json!({"slo_name":"availability","objective":99.95,"window":"30d","total_budget_minutes":21.599999999998772,"status":"HEALTHY","current_sli":99.995,"burned_minutes":2.159999999999762,"percent_consumed":9.999999999999467}),
            ),
        ]
    }

    /// `portfolio_status` data without `parent_ids`.
    pub fn portfolio_status() -> Value {
        json!({"total_services":3,"healthy_count":1,"warning_count":0,"critical_count":0,"exhausted_count":2,
               "services":[{"service":"checkout-api","overall_status":"EXHAUSTED","slo_count":3},
                           {"service":"fraud-detect","overall_status":"EXHAUSTED","slo_count":1},
                           {"service":"payment-api","overall_status":"HEALTHY","slo_count":1}],
               "collection_errors":0})
    }

    /// `drift_signal` data per `service/slo` (the other three SLOs have no history: no record).
    pub fn drift_signal() -> Vec<(&'static str, Value)> {
        vec![
            (
                "checkout-api/availability",
                json!({"slo_name":"availability","severity":"critical","pattern":"gradual_decline","slope_per_week":-0.07,"days_until_exhaustion":60,"current_budget":0.6000000000000001,"summary":"Error budget declining at 7.00% per week with high confidence (R²=1.00).","recommendation":"Investigate recent changes. Common causes: increased traffic, dependency degradation, or configuration drift. High confidence in trend - proactive investigation recommended. Run `nthlayer-observe verify` to check metric coverage."}),
            ),
            (
                "payment-api/availability",
                json!({"slo_name":"availability","severity":"none","pattern":"stable","slope_per_week":0.0,"days_until_exhaustion":null,"current_budget":0.95,"summary":"Error budget is stable with no significant drift detected.","recommendation":"No action needed. Continue monitoring."}),
            ),
        ]
    }

    /// `dependency_graph` data per service.
    pub fn dependency_graph() -> Vec<(&'static str, Value)> {
        let low = "Low impact. Standard deployment process is appropriate.";
        vec![
            (
                "checkout-api",
                json!({"total_services_affected":0,"critical_services_affected":0,"risk_level":"low","direct_downstream_count":0,"recommendation":low}),
            ),
            (
                "fraud-detect",
                json!({"total_services_affected":1,"critical_services_affected":0,"risk_level":"low","direct_downstream_count":1,"recommendation":low}),
            ),
            (
                "payment-api",
                json!({"total_services_affected":2,"critical_services_affected":0,"risk_level":"low","direct_downstream_count":2,"recommendation":low}),
            ),
        ]
    }
}

/// `tests/fixtures/manifests`.
pub fn manifests_dir() -> PathBuf {
    util::fixtures_dir().join("manifests")
}

/// Exporter text for the given SLIs plus the fixed topology edges and ECE.
pub fn exporter_text(slis: &BTreeMap<(String, String), f64>) -> String {
    let mut s = String::from("# TYPE test_sli gauge\n");
    for ((svc, slo), v) in slis {
        s.push_str(&sample(SLI_METRIC, &[("service", svc), ("slo", slo)], *v));
    }
    s.push_str("# TYPE http_client_requests_total counter\n");
    for (from, to) in EDGES {
        s.push_str(&sample("http_client_requests_total", &[("service", from), ("target_service", to)], 1234.0));
    }
    s.push_str("# TYPE gen_ai_calibration_ece gauge\n");
    s.push_str(&sample("gen_ai_calibration_ece", &[("service", FRAUD), ("bins", "10"), ("window", "30d")], ECE));
    s
}

/// The default SLI map.
pub fn default_slis() -> BTreeMap<(String, String), f64> {
    SLIS.iter().map(|(a, b, v)| ((a.to_string(), b.to_string()), *v)).collect()
}

/// `(start, end)` of the drift history for wall-clock `now` (unix seconds): end is
/// `floor_hour(now) - 3h`, start is 30 days earlier. Stable within an hour (so promtool
/// blocks are cached).
pub fn history_range(now: f64) -> (i64, i64) {
    let end = (now as i64).div_euclid(3600) * 3600 - HISTORY_GAP_SECS;
    (end - HISTORY_DAYS * 86400, end)
}

/// The drift history: checkout-api/availability 0.9 → 0.6 linearly, payment-api flat 0.95.
pub fn drift_history(now: f64) -> History {
    let (start, end) = history_range(now);
    let span = (end - start) as f64;
    let mut h = History::new();
    h.series_fn(BUDGET_METRIC, &[("service", CHECKOUT), ("slo", "availability")], start, end, HISTORY_STEP_SECS, |t| {
        0.9 - 0.3 * ((t - start) as f64 / span)
    });
    h.series_fn(BUDGET_METRIC, &[("service", PAYMENT), ("slo", "availability")], start, end, HISTORY_STEP_SECS, |_| {
        0.95
    });
    h
}

/// The live half of the scenario: exporter + Prometheus scraping it (+ optional history).
/// Core is separate ([`crate::core::Core::start`] with [`manifests_dir`]) so that parity runs
/// can point two cores at one Prometheus.
pub struct Observe {
    // Field order = drop order: Prometheus stops scraping before the exporter goes away.
    pub prometheus: Prometheus,
    pub exporter: Exporter,
    slis: Mutex<BTreeMap<(String, String), f64>>,
}

impl Observe {
    /// Exporter + Prometheus with the 30-day drift history backfilled.
    pub fn start() -> Observe {
        Self::start_with(true)
    }

    /// Exporter + Prometheus; `history` decides whether the drift history is backfilled.
    pub fn start_with(history: bool) -> Observe {
        let slis = default_slis();
        let exporter = Exporter::start(exporter_text(&slis));
        let opts = PromOpts {
            history: history.then(|| drift_history(util::unix_now())),
            scrape_targets: vec![exporter.target()],
            wait_for: vec![format!("{SLI_METRIC}"), "http_client_requests_total".into()],
            ..PromOpts::default()
        };
        let prometheus = Prometheus::start(opts);
        Observe { prometheus, exporter, slis: Mutex::new(slis) }
    }

    /// Serve a new SLI value (takes effect at the next 1 s scrape).
    pub fn set_sli(&self, service: &str, slo: &str, value: f64) {
        let mut m = self.slis.lock().unwrap();
        m.insert((service.into(), slo.into()), value);
        self.exporter.set(exporter_text(&m));
    }

    /// Stop serving an SLI series (Prometheus marks it stale at the next scrape).
    pub fn remove_sli(&self, service: &str, slo: &str) {
        let mut m = self.slis.lock().unwrap();
        m.remove(&(service.to_string(), slo.to_string()));
        self.exporter.set(exporter_text(&m));
    }

    /// `test_sli{service="S",slo="N"}` as seen by Prometheus now.
    pub fn prom_sli(&self, service: &str, slo: &str) -> Option<f64> {
        self.prometheus.query_value(&format!("{SLI_METRIC}{{service=\"{service}\",slo=\"{slo}\"}}"))
    }

    pub fn prometheus_url(&self) -> String {
        self.prometheus.url()
    }
}

/// A `slo_status` record shaped like observe's (for seeding core directly, e.g. gate tests).
pub fn slo_status_record(service: &str, seq: u64, data: serde_json::Value) -> serde_json::Value {
    let now = util::iso_now();
    serde_json::json!({
        "id": format!("asm-{}-5eed0000-{seq:05}", &now[..10]),
        "created_at": now,
        "kind": "slo_status",
        "service": service,
        "producer": "nthlayer-observe",
        "data": data,
    })
}

/// POST the reference's `slo_status` records for every scenario SLO to `core` (raw records,
/// not envelopes); returns the ids in post order.
pub fn seed_slo_status(core: &crate::core::Core) -> Vec<String> {
    let mut ids = Vec::new();
    for (i, (key, data)) in expected::slo_status().into_iter().enumerate() {
        let svc = key.split('/').next().unwrap();
        let rec = slo_status_record(svc, i as u64 + 1, data);
        let (st, body) = core.post_json("/assessments", &rec).expect("POST /assessments");
        assert_eq!(st, 201, "seed {key}: {body}");
        ids.push(rec["id"].as_str().unwrap().to_owned());
    }
    ids
}
