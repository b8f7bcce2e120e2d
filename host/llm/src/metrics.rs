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
    /// Timed calls per [`LATENCY_BUCKETS_MS`] bucket (not cumulative), the last one past
    /// every bound.
    latency_buckets: [u64; LATENCY_BUCKETS_MS.len() + 1],
}

/// Upper bounds (ms) of the latency histogram: model calls take from a few hundred
/// milliseconds to a minute, so fixed bounds over that range keep every series' size fixed.
pub const LATENCY_BUCKETS_MS: [u64; 10] = [100, 250, 500, 1_000, 2_500, 5_000, 10_000, 20_000, 40_000, 60_000];

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
            let i = LATENCY_BUCKETS_MS.iter().position(|b| ms <= *b).unwrap_or(LATENCY_BUCKETS_MS.len());
            s.latency_buckets[i] += 1;
        }
    }

    /// `{"series":[{"module","model","calls","errors":{kind:n},"input_tokens","output_tokens",
    /// "latency_ms_sum","latency_count","latency_buckets":[n per bucket of
    /// LATENCY_BUCKETS_MS, then past the last]}]}`, sorted by module then model.
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
                    "latency_buckets": s.latency_buckets,
                })
            })
            .collect();
        json!({ "series": series })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timed_calls_land_in_their_latency_bucket() {
        let m = Metrics::new();
        for ms in [100, 101, 60_000, 60_001] {
            m.record("mod", "model", None, 0, 0, Some(ms));
        }
        m.record("mod", "model", Some("denied"), 0, 0, None);
        let s = &m.snapshot()["series"][0];
        let b: Vec<u64> = s["latency_buckets"].as_array().unwrap().iter().map(|n| n.as_u64().unwrap()).collect();
        assert_eq!(b, [1, 1, 0, 0, 0, 0, 0, 0, 0, 1, 1], "bounds are inclusive; past the last is the last bucket");
        assert_eq!((s["latency_count"].as_u64(), s["calls"].as_u64()), (Some(4), Some(5)));
    }
}
