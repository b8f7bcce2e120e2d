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
    match tokio::time::timeout(budget, fut).await {
        Ok(r) => r.map_err(HostError::from),
        Err(_) => Err(HostError::Timeout(format!("{what} did not answer within {} ms", budget.as_millis()))),
    }
}
