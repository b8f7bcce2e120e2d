use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use serde_json::Value;
use tokio::time::Instant;

use crate::config::LlmConfig;
use crate::error::LlmError;

/// Largest provider reply the client reads; far above any structured answer (max-tokens is
/// a u32, but no provider answers 8 MiB of JSON to one call).
const MAX_BODY_BYTES: usize = 8 << 20;

/// URL and extra headers of a provider endpoint.
pub(crate) type Endpoint = (String, Vec<(&'static str, String)>);

/// Why one HTTP exchange failed, before it is judged retryable or turned into an `LlmError`.
#[derive(Debug)]
pub(crate) enum Failure {
    Status { status: u16, retry_after: Option<Duration>, body: String },
    Connect(String),
    Timeout(String),
    Other(String),
}

impl Failure {
    /// 408, 429 and every 5xx are worth another try (the reference's rule, and the SDKs').
    fn transient(&self) -> bool {
        match self {
            Self::Status { status, .. } => transient_status(*status),
            Self::Connect(_) => true,
            Self::Timeout(_) | Self::Other(_) => false,
        }
    }

    /// A 4xx whose text mentions tools: the server does not speak function calling.
    pub(crate) fn refuses_tools(&self) -> bool {
        match self {
            Self::Status { status, body, .. } if (400..500).contains(status) && *status != 429 => {
                let b = body.to_ascii_lowercase();
                b.contains("tool") || b.contains("function")
            }
            _ => false,
        }
    }

    pub(crate) fn into_error(self, who: &str, attempts: u32) -> LlmError {
        match self {
            Self::Status { status, body, .. } => {
                let (code, message) = error_fields(&body);
                let message = clip(&message, 300);
                if transient_status(status) {
                    LlmError::unavailable(format!("[{who}] HTTP {status} after {attempts} attempt(s): {message}"))
                } else {
                    LlmError::rejected(status, code.unwrap_or_else(|| format!("http_{status}")), message)
                }
            }
            Self::Connect(e) => {
                LlmError::unavailable(format!("[{who}] connection failed after {attempts} attempt(s): {e}"))
            }
            Self::Timeout(e) => LlmError::timeout(format!("[{who}] {e}")),
            Self::Other(e) => LlmError::unavailable(format!("[{who}] {e}")),
        }
    }
}

fn transient_status(status: u16) -> bool {
    status == 408 || status == 429 || status >= 500
}

/// Pulls `(code, message)` out of either provider's error body; falls back to the raw text.
fn error_fields(body: &str) -> (Option<String>, String) {
    let Ok(v) = serde_json::from_str::<Value>(body) else {
        return (None, body.to_owned());
    };
    let err = v.get("error").unwrap_or(&v);
    let s = |k: &str| err.get(k).and_then(Value::as_str).map(str::to_owned);
    let code = s("code").or_else(|| s("type"));
    let message = s("message").unwrap_or_else(|| body.to_owned());
    (code, message)
}

pub(crate) fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let cut = (0..=max).rev().find(|i| s.is_char_boundary(*i)).unwrap_or(0);
    format!("{}…", &s[..cut])
}

fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    let secs: f64 = v.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}

async fn attempt(
    http: &reqwest::Client,
    url: &str,
    headers: &[(&'static str, String)],
    body: &Value,
) -> Result<Value, Failure> {
    let mut req = http.post(url).json(body);
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let mut resp = req.send().await.map_err(|e| {
        let e = e.without_url();
        // A connect timeout is a connect failure (retryable), not the call's own timeout.
        if e.is_connect() || (e.is_request() && !e.is_timeout()) {
            Failure::Connect(e.to_string())
        } else if e.is_timeout() {
            Failure::Timeout(format!("request timed out: {e}"))
        } else {
            Failure::Other(e.to_string())
        }
    })?;
    let status = resp.status().as_u16();
    let ra = retry_after(resp.headers());
    // Read at most MAX_BODY_BYTES: a misbehaving (or hostile) OpenAI-compatible server must not
    // make the host buffer an unbounded reply.
    let mut raw = Vec::new();
    while let Some(chunk) =
        resp.chunk().await.map_err(|e| Failure::Connect(format!("reading body: {}", e.without_url())))?
    {
        if raw.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(Failure::Other(format!("provider reply exceeds {MAX_BODY_BYTES} bytes")));
        }
        raw.extend_from_slice(&chunk);
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    if !(200..300).contains(&status) {
        return Err(Failure::Status { status, retry_after: ra, body: text });
    }
    serde_json::from_str(&text)
        .map_err(|e| Failure::Other(format!("provider returned a non-JSON body ({e}): {}", clip(&text, 200))))
}

/// POSTs `body` and returns the decoded JSON reply, retrying transient failures with
/// exponential backoff. A `retry-after` stretches the wait (capped); a wait that would end past
/// `deadline` is not taken, so the caller sees the provider's error rather than a timeout.
pub(crate) async fn post_json(
    http: &reqwest::Client,
    cfg: &LlmConfig,
    url: &str,
    headers: &[(&'static str, String)],
    body: &Value,
    deadline: Instant,
) -> Result<Value, (Failure, u32)> {
    // Atomic, not Cell: the host awaits this future on a multi-threaded runtime (Send).
    let attempts = AtomicU32::new(0);
    let backoff = ExponentialBuilder::default()
        .with_min_delay(cfg.backoff_min)
        .with_max_delay(cfg.backoff_max)
        .with_max_times(cfg.http_retries as usize)
        .with_jitter();
    let cap = cfg.retry_after_cap;
    let result = (|| {
        attempts.fetch_add(1, Ordering::Relaxed);
        attempt(http, url, headers, body)
    })
    .retry(backoff)
    .sleep(tokio::time::sleep)
    .when(Failure::transient)
    .adjust(|f, next| {
        let mut wait = next?;
        if let Failure::Status { retry_after: Some(ra), .. } = f {
            wait = wait.max((*ra).min(cap));
        }
        (Instant::now() + wait < deadline).then_some(wait)
    })
    .notify(|f, wait| {
        let what = match f {
            Failure::Status { status, .. } => format!("HTTP {status}"),
            _ => "connection error".to_owned(),
        };
        tracing::warn!(%what, wait_ms = wait.as_millis() as u64, "llm request failed, retrying");
    })
    .await;
    result.map_err(|f| (f, attempts.load(Ordering::Relaxed)))
}
