//! `nthlayer:worker/prometheus`.

use serde_json::{json, Value};

use crate::bindings::latest::nthlayer::worker::prometheus::Host;
use crate::bindings::HostError;
use crate::capability::shared::import::bounded;
use crate::policy::table::Capability;
use crate::policy::caps;
use super::State;
use crate::capability::View;
use crate::tape::{self, Tape};

/// The PromQL cap (crate::policy::caps), as the `invalid` error a module gets.
fn check_promql(promql: &str) -> Result<(), HostError> {
    caps::bytes("PromQL", promql.len(), caps::PROMQL_BYTES).map_err(HostError::Invalid)
}

impl Host for View<'_, State> {
    async fn query(&mut self, promql: String, at: Option<f64>) -> Result<String, HostError> {
        self.cx.guard(Capability::Prometheus)?;
        check_promql(&promql)?;
        let prom = self.state.client.clone();
        let args = json!({"promql": promql, "at": at});
        let live = bounded("Prometheus", self.cx.budget(), prom.query(&promql, at));
        let v = tape::read(self.cx.tape.clone(), "prometheus", "query", args, live).await?;
        self.cx.respond("query", v)
    }

    async fn query_range(&mut self, promql: String, start: f64, end: f64, step: String) -> Result<String, HostError> {
        self.cx.guard(Capability::Prometheus)?;
        check_promql(&promql)?;
        caps::bytes("step", step.len(), caps::STEP_BYTES).map_err(HostError::Invalid)?;
        let prom = self.state.client.clone();
        let args = json!({"promql": promql, "start": start, "end": end, "step": step});
        let live = bounded("Prometheus", self.cx.budget(), prom.query_range(&promql, start, end, &step));
        let v = tape::read(self.cx.tape.clone(), "prometheus", "query-range", args, live).await?;
        self.cx.respond("query_range", v)
    }

    async fn query_batch(&mut self, promql: Vec<String>, at: Option<f64>) -> Vec<Result<String, HostError>> {
        let fail_all = |e: HostError| vec![Err(e); promql.len()];
        if let Err(e) = self.cx.guard(Capability::Prometheus) {
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
        if let Err(e) = self.cx.check_request("batch", promql.iter().map(String::len).sum()) {
            return fail_all(e);
        }
        // Taped one `query` per element, so fixtures do not depend on how a module batches.
        let args = |q: &String| json!({"promql": q, "at": at});
        if let Some(Tape::Replay(p)) = &self.cx.tape {
            return promql
                .iter()
                .map(|q| match p.lookup("prometheus", "query", &args(q)) {
                    Some(a) => {
                        p.decode::<Value>("prometheus", "query", &args(q), a).and_then(|v| self.cx.respond("query", v))
                    }
                    None => Err(p.miss("prometheus", "query", args(q))),
                })
                .collect();
        }
        let prom = self.state.client.clone();
        let budget = self.cx.call_budget(self.cx.call_timeout());
        let results: Vec<Result<Value, HostError>> = match tokio::time::timeout(budget, prom.query_batch(&promql, at))
            .await
        {
            Err(_) => {
                let e = HostError::Timeout(format!("Prometheus batch did not finish within {} ms", budget.as_millis()));
                vec![Err(e); promql.len()]
            }
            Ok(results) => results.into_iter().map(|r| r.map_err(HostError::from)).collect(),
        };
        if let Some(Tape::Record(r)) = &self.cx.tape {
            for (q, a) in promql.iter().zip(&results) {
                r.push("prometheus", "query", args(q), a.clone());
            }
        }
        results.into_iter().map(|r| r.and_then(|v| self.cx.respond("query", v))).collect()
    }
}
