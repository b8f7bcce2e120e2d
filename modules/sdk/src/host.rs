//! The capabilities a module may use, as one object-safe trait.

use serde_json::Value;
use std::fmt;

/// Mirrors WIT `host-error`. Modules usually log it and degrade.
#[derive(Debug, Clone, PartialEq)]
pub enum HostError {
    Denied(String),
    Unavailable(String),
    Timeout(String),
    Rejected { status: u16, code: String, detail: Value },
    Invalid(String),
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostError::Denied(m) => write!(f, "denied: {m}"),
            HostError::Unavailable(m) => write!(f, "unavailable: {m}"),
            HostError::Timeout(m) => write!(f, "timeout: {m}"),
            HostError::Rejected { status, code, detail } => {
                write!(f, "rejected: {status} {code}")?;
                if !detail.is_null() {
                    write!(f, " {detail}")?;
                }
                Ok(())
            }
            HostError::Invalid(m) => write!(f, "invalid: {m}"),
        }
    }
}

impl std::error::Error for HostError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct VerdictQuery {
    pub service: Option<String>,
    pub verdict_type: Option<String>,
    pub created_after: Option<String>,
    pub created_before: Option<String>,
    pub limit: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LlmRequest {
    pub system: String,
    pub user: String,
    pub schema: Value,
    pub schema_name: String,
    pub max_tokens: u32,
    pub timeout_ms: u32,
    pub max_retries: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LlmResponse {
    pub value: Value,
    pub model: String,
    pub input_tokens: u32,
    pub output_tokens: u32,
    pub latency_ms: u32,
}

/// Everything outside the sandbox. Time and randomness are here too (not read from the
/// environment directly) so native tests can pin them.
pub trait Host {
    // --- nthlayer-core ---
    fn get_manifests(&self) -> Result<Value, HostError>;
    fn get_manifest(&self, service: &str) -> Result<Value, HostError>;
    /// `record` is the assessment itself; the host builds the CloudEvents envelope.
    fn submit_assessment(&self, record: &Value, source: Option<&str>) -> Result<String, HostError>;
    fn submit_verdict(&self, record: &Value, source: Option<&str>) -> Result<String, HostError>;
    fn query_assessments(&self, service: Option<&str>, kind: Option<&str>, limit: u32) -> Result<Value, HostError>;
    fn query_verdicts(&self, q: &VerdictQuery) -> Result<Value, HostError>;
    fn verdict_descendants(&self, id: &str) -> Result<Value, HostError>;
    fn resolve_outcome(&self, id: &str, body: &Value) -> Result<String, HostError>;
    fn create_case(&self, case: &Value) -> Result<Value, HostError>;

    // --- Prometheus: return the API's `data` object ---
    fn prom_query(&self, promql: &str, at: Option<f64>) -> Result<Value, HostError>;
    fn prom_query_range(&self, promql: &str, start: f64, end: f64, step: &str) -> Result<Value, HostError>;
    fn prom_query_batch(&self, promql: &[String], at: Option<f64>) -> Vec<Result<Value, HostError>>;

    // --- Tempo ---
    fn tempo_metrics_range(&self, traceql: &str, start: f64, end: f64, step: &str) -> Result<Value, HostError>;
    fn tempo_search(&self, traceql: &str, start: f64, end: f64, limit: u32) -> Result<Value, HostError>;

    // --- LLM ---
    fn llm_structured(&self, req: &LlmRequest) -> Result<LlmResponse, HostError>;

    // --- arbiter (governance) ---
    /// Asks the arbiter to reduce an agent's autonomy (respond's only outward side effect).
    /// The wasm glue calls contract 0.2.0's `arbiter` import; this default, for hosts
    /// without the capability (FakeHost unless a test scripts it), answers `Unavailable`,
    /// which the module logs and goes on.
    fn arbiter_reduce_autonomy(&self, _agent: &str, _reason: &str) -> Result<(), HostError> {
        Err(HostError::Unavailable("this host provides no arbiter capability".into()))
    }

    // --- log, clock, randomness ---
    fn log(&self, level: Level, message: &str, fields: &[(&str, &str)]);
    /// Unix time in seconds (wall clock).
    fn now(&self) -> f64;
    fn random_u64(&self) -> u64;
}

/// Convenience helpers shared by every module.
pub trait HostExt: Host {
    /// 8 lowercase hex digits from the host's randomness (uuid4().hex[:8] in the reference).
    fn hex8(&self) -> String {
        format!("{:08x}", self.random_u64() as u32)
    }
    fn info(&self, message: &str, fields: &[(&str, &str)]) {
        self.log(Level::Info, message, fields)
    }
    fn warn(&self, message: &str, fields: &[(&str, &str)]) {
        self.log(Level::Warn, message, fields)
    }
}

impl<T: Host + ?Sized> HostExt for T {}
