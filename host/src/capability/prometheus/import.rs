//! `nthlayer:worker/prometheus`.

use serde_json::json;

use crate::bindings::latest::nthlayer::worker::prometheus::{Host, InstantQuery, RangeQuery};
use super::batch::{all, check_step, Batch};
use crate::bindings::HostError;
use crate::capability::shared::import::bounded;
use crate::policy::table::Capability;
use crate::policy::caps;
use super::State;
use crate::capability::View;
use crate::tape;

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
        self.cx.respond_raw("query", v)
    }

    async fn query_range(&mut self, promql: String, start: f64, end: f64, step: String) -> Result<String, HostError> {
        self.cx.guard(Capability::Prometheus)?;
        check_promql(&promql)?;
        check_step(&step)?;
        let prom = self.state.client.clone();
        let args = json!({"promql": promql, "start": start, "end": end, "step": step});
        let live = bounded("Prometheus", self.cx.budget(), prom.query_range(&promql, start, end, &step));
        let v = tape::read(self.cx.tape.clone(), "prometheus", "query-range", args, live).await?;
        self.cx.respond_raw("query_range", v)
    }

    async fn query_batch(&mut self, promql: Vec<String>, at: Option<f64>) -> Vec<Result<String, HostError>> {
        let b = Batch {
            call: "query",
            what: "query",
            n: promql.len(),
            args: self.cx.taped(|| promql.iter().map(|q| json!({"promql": q, "at": at})).collect()),
            checks: all(promql.iter().map(|q| check_promql(q))),
            request_bytes: promql.iter().map(String::len).sum(),
        };
        self.batch(b, |s| async move { s.client.query_batch(&promql, at).await }).await
    }

    async fn query_at_batch(&mut self, queries: Vec<InstantQuery>) -> Vec<Result<String, HostError>> {
        let qs: Vec<(String, Option<f64>)> = queries.into_iter().map(|q| (q.promql, q.at)).collect();
        let b = Batch {
            call: "query",
            what: "query",
            n: qs.len(),
            args: self.cx.taped(|| qs.iter().map(|(q, at)| json!({"promql": q, "at": at})).collect()),
            checks: all(qs.iter().map(|(q, _)| check_promql(q))),
            request_bytes: qs.iter().map(|(q, _)| q.len()).sum(),
        };
        self.batch(b, |s| async move { s.client.query_at_batch(&qs).await }).await
    }

    async fn query_range_batch(&mut self, queries: Vec<RangeQuery>) -> Vec<Result<String, HostError>> {
        let qs: Vec<(String, f64, f64, String)> =
            queries.into_iter().map(|q| (q.promql, q.start, q.end, q.step)).collect();
        let b = Batch {
            call: "query-range",
            what: "query_range",
            n: qs.len(),
            args: self.cx.taped(|| {
                qs.iter().map(|(q, start, end, step)| json!({"promql": q, "start": start, "end": end, "step": step})).collect()
            }),
            checks: all(qs.iter().map(|(q, _, _, step)| check_promql(q).and_then(|()| check_step(step)))),
            request_bytes: qs.iter().map(|(q, _, _, step)| q.len() + step.len()).sum(),
        };
        self.batch(b, |s| async move { s.client.query_range_batch(&qs).await }).await
    }
}
