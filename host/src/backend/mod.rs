//! Clients of the systems the host talks to — nthlayer-core, Prometheus, Tempo, the LLM
//! provider, the arbiter — and what they share: the error every client reports, the user
//! agent, transport-error wording, the reference's retry policy, core's circuit breaker and
//! the CloudEvents envelope. The bottom of the house's data flow (guest -> capability ->
//! outbox -> backend): clients know nothing of wasm, guests, grants or the outbox, so every
//! room above uses them directly — a capability's import for reads, the outbox's sender for
//! deliveries, the lifecycle for state and heartbeats, the CLI for `gate`.

pub mod arbiter;
pub mod breaker;
pub mod core;
pub mod core_direct;
pub mod envelope;
pub mod llm;
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

/// A one-line description of a transport error including its cause chain.
/// A transport error in words that never echo the request: reqwest's own text carries the
/// URL, query string included (a module's 5 MB PromQL would come back in its error and the
/// log), so only the kind and the causes below it (connection refused, reset, …) are kept.
pub(crate) fn describe(e: &reqwest::Error) -> String {
    let mut s = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "response body failed"
    } else if e.is_redirect() {
        "redirect refused"
    } else if e.is_builder() {
        "request could not be built"
    } else {
        "request failed"
    }
    .to_string();
    let mut src = std::error::Error::source(e);
    while let Some(cause) = src {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        src = cause.source();
    }
    s
}
