//! `nthlayer:worker/prometheus`.

use super::bounded;
use crate::bindings::latest::nthlayer::worker::prometheus::Host;
use crate::bindings::HostError;
use crate::capabilities::Capability;
use crate::runtime::store::StoreData;

/// Queries per batch: enough for topology's 26, small enough that one cycle cannot flood
/// Prometheus.
const MAX_BATCH: usize = 256;

impl Host for StoreData {
    async fn query(&mut self, promql: String, at: Option<f64>) -> Result<String, HostError> {
        self.guard(Capability::Prometheus)?;
        self.check_request("query", promql.len())?;
        let prom = self.cx.services.prometheus.clone();
        let v = bounded("Prometheus", self.budget(), prom.query(&promql, at)).await?;
        self.respond("query", v)
    }

    async fn query_range(&mut self, promql: String, start: f64, end: f64, step: String) -> Result<String, HostError> {
        self.guard(Capability::Prometheus)?;
        self.check_request("query", promql.len())?;
        let prom = self.cx.services.prometheus.clone();
        let v = bounded("Prometheus", self.budget(), prom.query_range(&promql, start, end, &step)).await?;
        self.respond("query_range", v)
    }

    async fn query_batch(&mut self, promql: Vec<String>, at: Option<f64>) -> Vec<Result<String, HostError>> {
        let fail_all = |e: HostError| vec![Err(e); promql.len()];
        if let Err(e) = self.guard(Capability::Prometheus) {
            return fail_all(e);
        }
        if promql.len() > MAX_BATCH {
            return fail_all(HostError::Invalid(format!("batch of {} queries exceeds {MAX_BATCH}", promql.len())));
        }
        if let Err(e) = self.check_request("batch", promql.iter().map(String::len).sum()) {
            return fail_all(e);
        }
        let prom = self.cx.services.prometheus.clone();
        let budget = self.call_budget(self.call_timeout());
        match tokio::time::timeout(budget, prom.query_batch(&promql, at)).await {
            Err(_) => fail_all(HostError::Timeout(format!(
                "Prometheus batch did not finish within {} ms",
                budget.as_millis()
            ))),
            Ok(results) => {
                results.into_iter().map(|r| r.map_err(HostError::from).and_then(|v| self.respond("query", v))).collect()
            }
        }
    }
}
