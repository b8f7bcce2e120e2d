//! The capabilities a module may use, as one object-safe trait.

use serde_json::Value;
use std::fmt;

use crate::batch::{InstantQuery, RangeQuery, Submission};
use crate::types::RecordKind;

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

/// What a capability method a `Host` does not implement answers: `Unavailable`, which
/// modules already handle (log and degrade), naming the method.
pub fn not_provided(method: &str) -> HostError {
    HostError::Unavailable(format!("{method} is not provided by this Host"))
}

/// Everything outside the sandbox. Time and randomness are here too (not read from the
/// environment directly) so native tests can pin them.
///
/// Every capability method has a default body answering [`not_provided`], so a new host
/// capability (a new method here) never breaks an existing implementation — a test double
/// scripts only what its module calls. `log`, `now` and `random_u64` stay required: every
/// module uses them and no default would be right. The wasm glue (`WasmHost`) implements
/// everything.
pub trait Host {
    // --- nthlayer-core ---
    fn get_manifests(&self) -> Result<Value, HostError> {
        Err(not_provided("get_manifests"))
    }
    fn get_manifest(&self, _service: &str) -> Result<Value, HostError> {
        Err(not_provided("get_manifest"))
    }
    /// `get_manifests` as the host sent it, unparsed: for a module that reads a few fields of
    /// every manifest and would rather not hold the whole list as `Value`s (observe at 1,000
    /// services: 5.6 MB as values, 0.7 MB as text). By default written out from
    /// `get_manifests`, so a test double that scripts one answers both.
    fn get_manifests_text(&self) -> Result<String, HostError> {
        self.get_manifests().map(|v| v.to_string())
    }
    /// `record` is the assessment itself; the host builds the CloudEvents envelope.
    fn submit_assessment(&self, _record: &Value, _source: Option<&str>) -> Result<String, HostError> {
        Err(not_provided("submit_assessment"))
    }
    fn submit_verdict(&self, _record: &Value, _source: Option<&str>) -> Result<String, HostError> {
        Err(not_provided("submit_verdict"))
    }
    fn query_assessments(&self, _service: Option<&str>, _kind: Option<&str>, _limit: u32) -> Result<Value, HostError> {
        Err(not_provided("query_assessments"))
    }
    fn query_verdicts(&self, _q: &VerdictQuery) -> Result<Value, HostError> {
        Err(not_provided("query_verdicts"))
    }
    fn verdict_descendants(&self, _id: &str) -> Result<Value, HostError> {
        Err(not_provided("verdict_descendants"))
    }
    fn resolve_outcome(&self, _id: &str, _body: &Value) -> Result<String, HostError> {
        Err(not_provided("resolve_outcome"))
    }
    fn create_case(&self, _case: &Value) -> Result<Value, HostError> {
        Err(not_provided("create_case"))
    }
    /// Many records in one host call (contract 0.4.0), one answer per record in order; each
    /// is granted, checked and counted as its own single call. The default makes the single
    /// calls, so a test double that scripts `submit_assessment`/`submit_verdict` needs nothing more.
    fn submit_batch(&self, records: &[Submission]) -> Vec<Result<String, HostError>> {
        records
            .iter()
            .map(|s| match s.kind {
                RecordKind::Assessment => self.submit_assessment(&s.record, s.source.as_deref()),
                RecordKind::Verdict => self.submit_verdict(&s.record, s.source.as_deref()),
            })
            .collect()
    }

    // --- Prometheus: return the API's `data` object ---
    fn prom_query(&self, _promql: &str, _at: Option<f64>) -> Result<Value, HostError> {
        Err(not_provided("prom_query"))
    }
    fn prom_query_range(&self, _promql: &str, _start: f64, _end: f64, _step: &str) -> Result<Value, HostError> {
        Err(not_provided("prom_query_range"))
    }
    /// One answer per query, in order.
    fn prom_query_batch(&self, promql: &[String], _at: Option<f64>) -> Vec<Result<Value, HostError>> {
        promql.iter().map(|_| Err(not_provided("prom_query_batch"))).collect()
    }
    /// Instant queries each at its own time, one answer per query in order (contract 0.4.0).
    /// The default makes the single calls.
    fn prom_query_at_batch(&self, queries: &[InstantQuery]) -> Vec<Result<Value, HostError>> {
        queries.iter().map(|q| self.prom_query(&q.promql, q.at)).collect()
    }
    /// Range queries, one answer per query in order (contract 0.4.0). The default makes the
    /// single calls.
    fn prom_query_range_batch(&self, queries: &[RangeQuery]) -> Vec<Result<Value, HostError>> {
        queries.iter().map(|q| self.prom_query_range(&q.promql, q.start, q.end, &q.step)).collect()
    }

    // --- Tempo ---
    fn tempo_metrics_range(&self, _traceql: &str, _start: f64, _end: f64, _step: &str) -> Result<Value, HostError> {
        Err(not_provided("tempo_metrics_range"))
    }
    fn tempo_search(&self, _traceql: &str, _start: f64, _end: f64, _limit: u32) -> Result<Value, HostError> {
        Err(not_provided("tempo_search"))
    }

    // --- LLM ---
    fn llm_structured(&self, _req: &LlmRequest) -> Result<LlmResponse, HostError> {
        Err(not_provided("llm_structured"))
    }

    // --- arbiter (governance) ---
    /// Asks the arbiter to reduce an agent's autonomy (respond's only outward side effect).
    /// The wasm glue calls contract 0.2.0's `arbiter` import.
    fn arbiter_reduce_autonomy(&self, _agent: &str, _reason: &str) -> Result<(), HostError> {
        Err(not_provided("arbiter_reduce_autonomy"))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A host that implements only what every module must: the rest answers `not_provided`.
    struct Minimal;

    impl Host for Minimal {
        fn log(&self, _: Level, _: &str, _: &[(&str, &str)]) {}
        fn now(&self) -> f64 {
            0.0
        }
        fn random_u64(&self) -> u64 {
            4
        }
    }

    #[test]
    fn capability_methods_default_to_unavailable_naming_the_method() {
        let h = Minimal;
        assert_eq!(h.get_manifests(), Err(HostError::Unavailable("get_manifests is not provided by this Host".into())));
        assert_eq!(h.tempo_search("{}", 0.0, 1.0, 1), Err(not_provided("tempo_search")));
        let batch = h.prom_query_batch(&["a".into(), "b".into()], None);
        assert_eq!(batch, vec![Err(not_provided("prom_query_batch")); 2]);
        assert_eq!(h.hex8(), "00000004");
    }
}
