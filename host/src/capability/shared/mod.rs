//! Plain async clients for everything outside the host. No wasm types here: the `imports`
//! layer adapts these to the WIT interfaces, and the CLI (gate, state) uses them directly.

pub mod arbiter;
pub mod breaker;
pub mod core;
pub mod envelope;
pub mod prometheus;
pub mod retry;
pub mod tempo;

/// Errors every client reports, shaped like WIT `host-error` minus `denied` (a policy
/// decision the clients never make).
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum ClientError {
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Timeout(String),
    #[error("{status} {code}")]
    Rejected { status: u16, code: String, detail: serde_json::Value },
    #[error("{0}")]
    Invalid(String),
}

impl ClientError {
    /// Builds the error for a non-2xx response whose body may or may not be JSON.
    pub fn from_response(status: u16, body: &[u8]) -> Self {
        match serde_json::from_slice::<serde_json::Value>(body) {
            Ok(v) => ClientError::Rejected {
                status,
                code: v
                    .get("error")
                    .and_then(|e| e.as_str())
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("http_{status}")),
                detail: v.get("detail").cloned().unwrap_or(serde_json::Value::Null),
            },
            Err(_) => ClientError::Rejected {
                status,
                code: format!("http_{status}"),
                detail: serde_json::Value::String(String::from_utf8_lossy(&body[..body.len().min(500)]).into_owned()),
            },
        }
    }
}

/// The user agent every client sends, so operators can tell our traffic from the reference's.
pub fn user_agent() -> String {
    format!("nthlayer-host/{}", env!("CARGO_PKG_VERSION"))
}
