//! The steps every room's import takes, written once: check the grant, check request
//! sizes, call the client bounded by the call timeout and the cycle deadline, map the
//! error, check the response size.

use std::future::Future;
use std::time::Duration;

use super::ClientError;
use crate::bindings::{HostError, Rejection};
use crate::capability::Capability;
use crate::runtime::store::StoreData;

impl crate::bindings::latest::nthlayer::worker::types::Host for StoreData {}

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

impl StoreData {
    /// The budget of a plain host call: the call timeout cut by the cycle deadline.
    pub(crate) fn budget(&self) -> Duration {
        self.call_budget(self.call_timeout())
    }

    pub(crate) fn guard(&self, cap: Capability) -> Result<(), HostError> {
        if self.cx.grants.allows(cap) {
            return Ok(());
        }
        Err(HostError::Denied(format!(
            "module {} has no '{}' grant; start the host with --grant {}={} (currently: {})",
            self.cx.module,
            cap.name(),
            self.cx.module,
            self.cx.grants.clone().with(cap).names().join(","),
            match self.cx.grants.names() {
                n if n.is_empty() => "log only".to_string(),
                n => n.join(","),
            }
        )))
    }

    pub(crate) fn check_request(&self, what: &str, len: usize) -> Result<(), HostError> {
        let max = self.cx.limits.max_request_bytes;
        if len > max {
            return Err(HostError::Invalid(format!(
                "{what} of {len} bytes exceeds the limit of {max} bytes (max_request_bytes)"
            )));
        }
        Ok(())
    }

    /// The time a host call may take: its own timeout, cut short by the cycle's deadline.
    pub(crate) fn call_budget(&self, own: Duration) -> Duration {
        let left = self.cx.deadline.saturating_duration_since(tokio::time::Instant::now());
        own.min(left)
    }

    /// Serialises a JSON response for the guest, enforcing the response cap.
    pub(crate) fn respond(&self, what: &str, v: serde_json::Value) -> Result<String, HostError> {
        let text = v.to_string();
        let max = self.cx.limits.max_response_bytes;
        if text.len() > max {
            return Err(HostError::Invalid(format!(
                "{what} response of {} bytes exceeds the limit of {max} bytes",
                text.len()
            )));
        }
        Ok(text)
    }

    pub(crate) fn call_timeout(&self) -> Duration {
        Duration::from_millis(self.cx.limits.call_ms)
    }
}
