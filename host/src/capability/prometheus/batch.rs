//! The one path every batched Prometheus import takes (`query-batch`, `query-at-batch`,
//! `query-range-batch`): the grant, the count cap, each query's own caps, the request cap
//! over the whole list, one timeout for the call cut short by the cycle's deadline, the
//! tape (one single-call entry per element, so a fixture does not depend on how a module
//! batches) and each answer's response cap.

use std::future::Future;

use serde_json::Value;

use super::State;
use crate::backend::prometheus::Answer;
use crate::backend::ClientError;
use crate::bindings::HostError;
use crate::capability::View;
use crate::policy::caps;
use crate::policy::table::Capability;
use crate::tape::{self, Tape};

/// What one batch is, for the checks and the tape.
pub(super) struct Batch {
    /// The single call each element is taped (and its answer capped) as: "query" or "query-range".
    pub call: &'static str,
    /// The response's name in the cap's error, as the single call names it.
    pub what: &'static str,
    /// Elements in the batch.
    pub n: usize,
    /// Each element's arguments, exactly as the single call tapes them; empty without a
    /// tape (nothing reads them, and a collect cycle batches thousands of queries).
    pub args: Vec<Value>,
    /// Each element's own checks (PromQL and step caps), as the single call runs them.
    pub checks: Result<(), HostError>,
    /// The bytes the module sent (queries and steps), against max_request_bytes.
    pub request_bytes: usize,
}

impl View<'_, State> {
    /// Runs `live` (the client's bounded-concurrency batch) unless a check fails; a failed
    /// check fails every element, as one bad argument fails a single call.
    pub(super) async fn batch<F>(&mut self, b: Batch, live: impl FnOnce(BatchClient) -> F) -> Vec<Result<String, HostError>>
    where
        F: Future<Output = Vec<Result<Answer, ClientError>>>,
    {
        let n = b.n;
        let fail_all = |e: HostError| vec![Err(e); n];
        if let Err(e) = self.cx.guard(Capability::Prometheus) {
            return fail_all(e);
        }
        // Counted (Prometheus's load per cycle), then each query against its own caps.
        if let Err(e) = caps::count("query batch", n, caps::BATCH_QUERIES) {
            return fail_all(HostError::Invalid(e));
        }
        if let Err(e) = b.checks {
            return fail_all(e);
        }
        if let Err(e) = self.cx.check_request("batch", b.request_bytes) {
            return fail_all(e);
        }
        let (call, what) = (b.call, b.what);
        if let Some(Tape::Replay(p)) = &self.cx.tape {
            return b
                .args
                .iter()
                .map(|a| match p.lookup("prometheus", call, a) {
                    Some(ans) => p.decode::<Answer>("prometheus", call, a, ans).and_then(|v| self.cx.respond_raw(what, v)),
                    None => Err(p.miss("prometheus", call, a.clone())),
                })
                .collect();
        }
        let budget = self.cx.call_budget(self.cx.call_timeout());
        let request = tokio::time::timeout(budget, live(BatchClient { client: self.state.client.clone() }));
        let results: Vec<Result<Answer, HostError>> =
            match tracing::Instrument::instrument(request, tracing::info_span!("host_call", interface = "prometheus", batch = n))
                .await
            {
                Err(_) => {
                    let e = HostError::Timeout(format!("Prometheus batch did not finish within {} ms", budget.as_millis()));
                    vec![Err(e); n]
                }
                Ok(results) => results.into_iter().map(|r| r.map_err(HostError::from)).collect(),
            };
        crate::capability::shared::import::count_each("prometheus", &results);
        if let Some(Tape::Record(r)) = &self.cx.tape {
            for (a, ans) in b.args.iter().zip(&results) {
                r.push("prometheus", call, a.clone(), ans.as_ref().map(tape::Answer::to_json).map_err(Clone::clone));
            }
        }
        results.into_iter().map(|r| r.and_then(|v| self.cx.respond_raw(what, v))).collect()
    }
}

/// The client, handed to the batch's future (the store data may not be borrowed across it).
pub(super) struct BatchClient {
    pub client: crate::backend::prometheus::PrometheusClient,
}

/// `Ok` if every element passes `check`, else the first failure.
pub(super) fn all(checks: impl IntoIterator<Item = Result<(), HostError>>) -> Result<(), HostError> {
    checks.into_iter().collect::<Result<Vec<()>, HostError>>().map(|_| ())
}

/// The step cap, as the `invalid` error `query-range` answers.
pub(super) fn check_step(step: &str) -> Result<(), HostError> {
    caps::bytes("step", step.len(), caps::STEP_BYTES).map_err(HostError::Invalid)
}
