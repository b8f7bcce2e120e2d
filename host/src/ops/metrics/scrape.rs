//! The gauges (and the LLM layer's counters) read from the host's status at scrape time:
//! they already live somewhere — the registry's versions, the spool's backlog, the LLM
//! service's usage — so copying them into families as they change would be a second truth.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use serde_json::Value;

use crate::lifecycle::status::HostStatus;

type Labels = Vec<(&'static str, String)>;

pub(super) struct Scrape(pub(super) Option<Arc<HostStatus>>);

impl std::fmt::Debug for Scrape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Scrape")
    }
}

impl Collector for Scrape {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let build = vec![("version", env!("CARGO_PKG_VERSION").to_string())];
        gauges(&mut e, "nthlayer_build_info", "The host's build (value 1)", &[(build, 1.0)])?;
        let Some(s) = &self.0 else { return Ok(()) };
        gauges(
            &mut e,
            "nthlayer_uptime_seconds",
            "Seconds since the host started",
            &[(vec![], s.uptime().as_secs_f64())],
        )?;
        modules(&mut e, s)?;
        outbox(&mut e, &s.outbox())?;
        llm(&mut e, s)
    }
}

fn modules(e: &mut DescriptorEncoder, s: &HostStatus) -> Result<(), std::fmt::Error> {
    let versions = s.registry().versions();
    let list = versions.as_array().cloned().unwrap_or_default();
    gauges(e, "nthlayer_modules_loaded", "Modules serving", &[(vec![], list.len() as f64)])?;
    let text = |m: &Value, k: &str| m[k].as_str().unwrap_or_default().to_string();
    let info: Vec<_> = list
        .iter()
        .map(|m| {
            let labels = vec![
                ("module", text(m, "name")),
                ("version", text(m, "version")),
                ("sha256", text(m, "sha256")),
                ("contract", text(m, "contract")),
            ];
            (labels, 1.0)
        })
        .collect();
    gauges(e, "nthlayer_module_info", "The version serving per module (value 1)", &info)?;
    let per = |k: &str, scale: f64| -> Vec<(Labels, f64)> {
        list.iter()
            .map(|m| {
                (
                    vec![("module", text(m, "name"))],
                    m[k].as_f64().or(m[k].as_bool().map(f64::from)).unwrap_or(0.0) * scale,
                )
            })
            .collect()
    };
    gauges(e, "nthlayer_module_probation", "1 while a new version is on probation", &per("probation", 1.0))?;
    gauges(
        e,
        "nthlayer_module_compile_seconds",
        "Compile (or cache load) time of the serving version",
        &per("compile_ms", 0.001),
    )?;
    let rejected = s.registry().rejected().as_object().map_or(0, |m| m.len());
    gauges(e, "nthlayer_rejected_files_current", "Module files currently refused", &[(vec![], rejected as f64)])
}

fn outbox(e: &mut DescriptorEncoder, o: &Value) -> Result<(), std::fmt::Error> {
    if o.is_null() {
        return Ok(());
    }
    let one = |k: &str| vec![(vec![], o[k].as_f64().unwrap_or(0.0))];
    gauges(e, "nthlayer_outbox_records", "Records waiting in the spool for core", &one("records"))?;
    gauges(e, "nthlayer_outbox_entries", "Spool entries waiting (records, state, …)", &one("entries"))?;
    gauges(e, "nthlayer_outbox_bytes", "Bytes waiting in the spool", &one("bytes"))?;
    gauges(
        e,
        "nthlayer_outbox_oldest_age_seconds",
        "Age of the oldest waiting entry (0: none)",
        &one("oldest_age_seconds"),
    )?;
    gauges(e, "nthlayer_outbox_set_aside_current", "Entries set aside for the operator", &one("rejected"))?;
    gauges(e, "nthlayer_outbox_retrying", "Lanes retrying an entry core did not take", &one("retrying"))?;
    let full = if o["full"].is_null() { 0.0 } else { 1.0 };
    gauges(e, "nthlayer_outbox_full", "1 while the spool is full (cycles with records are refused)", &[(vec![], full)])
}

fn llm(e: &mut DescriptorEncoder, s: &HostStatus) -> Result<(), std::fmt::Error> {
    let m = s.llm().metrics();
    let series = m["series"].as_array().cloned().unwrap_or_default();
    let who = |x: &Value| -> Labels {
        vec![
            ("module", x["module"].as_str().unwrap_or_default().into()),
            ("model", x["model"].as_str().unwrap_or_default().into()),
        ]
    };
    let num = |x: &Value, k: &str| x[k].as_f64().unwrap_or(0.0);
    let calls: Vec<_> = series.iter().map(|x| (who(x), num(x, "calls"))).collect();
    counters(e, "nthlayer_llm_calls", "LLM calls, per module and model", &calls)?;
    let mut errors = Vec::new();
    let mut tokens = Vec::new();
    for x in &series {
        for (kind, n) in x["errors"].as_object().into_iter().flatten() {
            let mut l = who(x);
            l.push(("kind", kind.clone()));
            errors.push((l, n.as_f64().unwrap_or(0.0)));
        }
        for (dir, k) in [("input", "input_tokens"), ("output", "output_tokens")] {
            let mut l = who(x);
            l.push(("direction", dir.into()));
            tokens.push((l, num(x, k)));
        }
    }
    counters(e, "nthlayer_llm_errors", "LLM calls that failed, by kind", &errors)?;
    counters(e, "nthlayer_llm_tokens", "LLM tokens, by direction", &tokens)?;
    latency(e, &series, who)?;
    let budgets = s.llm().budgets();
    let left: Vec<_> = budgets
        .iter()
        .map(|(m, limit, used)| (vec![("module", m.clone())], limit.saturating_sub(*used) as f64))
        .collect();
    gauges(e, "nthlayer_llm_budget_tokens_left", "Tokens left in the module's hourly budget", &left)?;
    let limit: Vec<_> = budgets.iter().map(|(m, limit, _)| (vec![("module", m.clone())], *limit as f64)).collect();
    gauges(e, "nthlayer_llm_budget_tokens", "The module's hourly token budget", &limit)
}

/// `nthlayer_llm_latency_seconds`: timed calls (not refused up front) per module and model,
/// in the LLM layer's fixed buckets.
fn latency(e: &mut DescriptorEncoder, series: &[Value], who: impl Fn(&Value) -> Labels) -> Result<(), std::fmt::Error> {
    let bounds = nthlayer_llm::LATENCY_BUCKETS_MS.iter().map(|ms| *ms as f64 / 1000.0).chain([f64::INFINITY]);
    let mut me =
        e.encode_descriptor("nthlayer_llm_latency_seconds", "Latency of timed LLM calls", None, MetricType::Histogram)?;
    for x in series {
        let counts = x["latency_buckets"].as_array().cloned().unwrap_or_default();
        let buckets: Vec<(f64, u64)> =
            bounds.clone().zip(counts.iter().map(|n| n.as_u64().unwrap_or(0)).chain(std::iter::repeat(0))).collect();
        let sum = x["latency_ms_sum"].as_f64().unwrap_or(0.0) / 1000.0;
        let count = x["latency_count"].as_u64().unwrap_or(0);
        let labels = who(x);
        me.encode_family(&labels)?
            .encode_histogram::<prometheus_client::encoding::NoLabelSet>(sum, count, &buckets, None)?;
    }
    Ok(())
}

fn gauges(e: &mut DescriptorEncoder, name: &str, help: &str, v: &[(Labels, f64)]) -> Result<(), std::fmt::Error> {
    let mut me = e.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, x) in v {
        if labels.is_empty() {
            return ConstGauge::new(*x).encode(me); // an unlabelled family has one sample
        }
        ConstGauge::new(*x).encode(me.encode_family(labels)?)?;
    }
    Ok(())
}

fn counters(e: &mut DescriptorEncoder, name: &str, help: &str, v: &[(Labels, f64)]) -> Result<(), std::fmt::Error> {
    let mut me = e.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, x) in v {
        ConstCounter::new(*x).encode(me.encode_family(labels)?)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug)]
    struct Latency(Vec<Value>);

    impl Collector for Latency {
        fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
            latency(&mut e, &self.0, |x| vec![("model", x["model"].as_str().unwrap_or_default().into())])
        }
    }

    /// The LLM layer's per-bucket counts come out as Prometheus's cumulative buckets, with
    /// `+Inf`, `_sum` in seconds and `_count`.
    #[test]
    fn llm_latency_is_a_histogram_per_model() {
        let mut buckets = vec![0u64; nthlayer_llm::LATENCY_BUCKETS_MS.len() + 1];
        (buckets[1], buckets[3], buckets[10]) = (2, 1, 1); // <=250 ms twice, <=1 s, past 60 s
        let series =
            vec![json!({"model": "m", "latency_ms_sum": 61_900, "latency_count": 4, "latency_buckets": buckets})];
        let mut r = prometheus_client::registry::Registry::default();
        r.register_collector(Box::new(Latency(series)));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &r).unwrap();
        for line in [
            "# TYPE nthlayer_llm_latency_seconds histogram",
            "nthlayer_llm_latency_seconds_bucket{le=\"0.1\",model=\"m\"} 0",
            "nthlayer_llm_latency_seconds_bucket{le=\"0.25\",model=\"m\"} 2",
            "nthlayer_llm_latency_seconds_bucket{le=\"1.0\",model=\"m\"} 3",
            "nthlayer_llm_latency_seconds_bucket{le=\"60.0\",model=\"m\"} 3",
            "nthlayer_llm_latency_seconds_bucket{le=\"+Inf\",model=\"m\"} 4",
            "nthlayer_llm_latency_seconds_count{model=\"m\"} 4",
            "nthlayer_llm_latency_seconds_sum{model=\"m\"} 61.9",
        ] {
            assert!(text.contains(line), "{line:?} missing from:\n{text}");
        }
    }
}
