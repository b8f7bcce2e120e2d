//! The steps every room's import takes, written once: check the grant, check request
//! sizes, call the client bounded by the call timeout and the cycle deadline, map the
//! error, check the response size. The steps that read the cycle (grant, sizes, deadline)
//! are methods of the shared context (context.rs); these are the rest.

use std::future::Future;
use std::time::Duration;

use crate::backend::ClientError;
use crate::bindings::{HostError, Rejection};

impl From<ClientError> for HostError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Unavailable(m) => HostError::Unavailable(m),
            ClientError::Timeout(m) => HostError::Timeout(m),
            ClientError::Invalid(m) => HostError::Invalid(m),
            ClientError::Rejected { status, code, detail } => {
                HostError::Rejected(Rejection { status, code, detail: detail.to_string() })
            }
        }
    }
}

/// Awaits a client call for at most `budget`. A free function, not a method: the store
/// data is not `Sync`, so no borrow of it may live across an await.
pub(crate) async fn bounded<T>(
    what: &str,
    budget: Duration,
    fut: impl Future<Output = Result<T, ClientError>>,
) -> Result<T, HostError> {
    observed(what, async move {
        match tokio::time::timeout(budget, fut).await {
            Ok(r) => r.map_err(HostError::from),
            Err(_) => Err(HostError::Timeout(format!("{what} did not answer within {} ms", budget.as_millis()))),
        }
    })
    .await
}

/// A host call to a backend: its span (a child of the cycle's) and its count by outcome.
pub(crate) async fn observed<T>(what: &str, fut: impl Future<Output = Result<T, HostError>>) -> Result<T, HostError> {
    use tracing::Instrument;
    let interface = what.trim_start_matches("the ").to_ascii_lowercase();
    let r = fut.instrument(tracing::info_span!("host_call", interface = %interface)).await;
    crate::telemetry::host_call(&interface, outcome(&r));
    r
}

/// A batched call's answers, counted as the single calls they stand for: a dashboard of host
/// calls by outcome must not go quiet when a module switches to the batch imports.
pub(crate) fn count_each<T>(interface: &str, answers: &[Result<T, HostError>]) {
    for r in answers {
        crate::telemetry::host_call(interface, outcome(r));
    }
}

fn outcome<T>(r: &Result<T, HostError>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(HostError::Denied(_)) => "denied",
        Err(HostError::Unavailable(_)) => "unavailable",
        Err(HostError::Timeout(_)) => "timeout",
        Err(HostError::Rejected(_)) => "rejected",
        Err(HostError::Invalid(_)) => "invalid",
    }
}
