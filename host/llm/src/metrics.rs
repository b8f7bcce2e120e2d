use std::collections::BTreeMap;
use std::sync::Mutex;

use serde_json::{json, Value};

#[derive(Debug, Default, Clone)]
struct Series {
    calls: u64,
    errors: BTreeMap<&'static str, u64>,
    input_tokens: u64,
    output_tokens: u64,
    latency_ms_sum: u64,
    latency_count: u64,
}

/// Per (module, model) counters the host exposes on its metrics endpoint. Kept as plain
/// counters and sums so any exporter (Prometheus text, JSON) can be layered on top.
#[derive(Debug, Default)]
pub struct Metrics {
    series: Mutex<BTreeMap<(String, String), Series>>,
}

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one finished call. `latency_ms` is `None` for calls refused before any work
    /// (denied), which would otherwise drag the mean towards zero.
    pub(crate) fn record(
        &self,
        module: &str,
        model: &str,
        error: Option<&'static str>,
        input_tokens: u64,
        output_tokens: u64,
        latency_ms: Option<u64>,
    ) {
        let mut map = self.series.lock().unwrap_or_else(|p| p.into_inner());
        let s = map.entry((module.to_owned(), model.to_owned())).or_default();
        s.calls += 1;
        if let Some(kind) = error {
            *s.errors.entry(kind).or_default() += 1;
        }
        s.input_tokens += input_tokens;
        s.output_tokens += output_tokens;
        if let Some(ms) = latency_ms {
            s.latency_ms_sum += ms;
            s.latency_count += 1;
        }
    }

    /// `{"series":[{"module","model","calls","errors":{kind:n},"input_tokens","output_tokens",
    /// "latency_ms_sum","latency_count"}]}`, sorted by module then model.
    pub fn snapshot(&self) -> Value {
        let map = self.series.lock().unwrap_or_else(|p| p.into_inner());
        let series: Vec<Value> = map
            .iter()
            .map(|((module, model), s)| {
                json!({
                    "module": module,
                    "model": model,
                    "calls": s.calls,
                    "errors": s.errors,
                    "input_tokens": s.input_tokens,
                    "output_tokens": s.output_tokens,
                    "latency_ms_sum": s.latency_ms_sum,
                    "latency_count": s.latency_count,
                })
            })
            .collect();
        json!({ "series": series })
    }
}
