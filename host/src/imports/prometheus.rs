//! `nthlayer:worker/prometheus`.

use super::bounded;
use crate::bindings::latest::nthlayer::worker::prometheus::Host;
use crate::bindings::HostError;
use crate::capabilities::Capability;
use crate::caps;
use crate::runtime::store::StoreData;

/// The PromQL cap (crate::caps), as the `invalid` error a module gets.
fn check_promql(promql: &str) -> Result<(), HostError> {
    caps::bytes("PromQL", promql.len(), caps::PROMQL_BYTES).map_err(HostError::Invalid)
}

impl Host for StoreData {
    async fn query(&mut self, promql: String, at: Option<f64>) -> Result<String, HostError> {
        self.guard(Capability::Prometheus)?;
        check_promql(&promql)?;
        let prom = self.cx.services.prometheus.clone();
        let v = bounded("Prometheus", self.budget(), prom.query(&promql, at)).await?;
        self.respond("query", v)
    }

    async fn query_range(&mut self, promql: String, start: f64, end: f64, step: String) -> Result<String, HostError> {
        self.guard(Capability::Prometheus)?;
        check_promql(&promql)?;
        caps::bytes("step", step.len(), caps::STEP_BYTES).map_err(HostError::Invalid)?;
        let prom = self.cx.services.prometheus.clone();
        let v = bounded("Prometheus", self.budget(), prom.query_range(&promql, start, end, &step)).await?;
        self.respond("query_range", v)
    }

    async fn query_batch(&mut self, promql: Vec<String>, at: Option<f64>) -> Vec<Result<String, HostError>> {
        let fail_all = |e: HostError| vec![Err(e); promql.len()];
        if let Err(e) = self.guard(Capability::Prometheus) {
            return fail_all(e);
        }
        // Counted (Prometheus's load per cycle), then each query against the PromQL cap: one
        // oversize query fails the batch, as one bad call fails `query`.
        if let Err(e) = caps::count("query batch", promql.len(), caps::BATCH_QUERIES) {
            return fail_all(HostError::Invalid(e));
        }
        if let Some(e) = promql.iter().find_map(|q| check_promql(q).err()) {
            return fail_all(e);
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
