//! The only wasm-specific code a Rust module carries: [`Host`] backed by the WIT imports, and
//! conversions between WIT records and the SDK's plain types.

use serde_json::Value;

use crate::batch::{InstantQuery, RangeQuery, Submission, QUERY_BATCH, SUBMIT_BATCH};
use crate::bindings::nthlayer::worker::{arbiter, core, llm, log, prometheus, tempo, types as wit};
use crate::host::{Host, HostError, Level, LlmRequest, LlmResponse, VerdictQuery};
use crate::types::{CycleInput, Module};

pub struct WasmHost;

/// For modules that call an import directly (the raw bindings), e.g. to send a list the SDK
/// would split.
impl From<wit::HostError> for HostError {
    fn from(e: wit::HostError) -> Self {
        err(e)
    }
}

fn err(e: wit::HostError) -> HostError {
    match e {
        wit::HostError::Denied(m) => HostError::Denied(m),
        wit::HostError::Unavailable(m) => HostError::Unavailable(m),
        wit::HostError::Timeout(m) => HostError::Timeout(m),
        wit::HostError::Invalid(m) => HostError::Invalid(m),
        wit::HostError::Rejected(r) => HostError::Rejected {
            status: r.status,
            code: r.code,
            detail: serde_json::from_str(&r.detail).unwrap_or(Value::String(r.detail)),
        },
    }
}

fn parse(text: Result<String, wit::HostError>) -> Result<Value, HostError> {
    let text = text.map_err(err)?;
    serde_json::from_str(&text).map_err(|e| HostError::Invalid(format!("host sent invalid JSON: {e}")))
}

impl Host for WasmHost {
    fn get_manifests(&self) -> Result<Value, HostError> {
        parse(core::get_manifests())
    }
    fn get_manifest(&self, service: &str) -> Result<Value, HostError> {
        parse(core::get_manifest(service))
    }
    fn get_manifests_text(&self) -> Result<String, HostError> {
        core::get_manifests().map_err(err)
    }
    fn submit_assessment(&self, record: &Value, source: Option<&str>) -> Result<String, HostError> {
        core::submit_assessment(&record.to_string(), source).map_err(err)
    }
    fn submit_verdict(&self, record: &Value, source: Option<&str>) -> Result<String, HostError> {
        core::submit_verdict(&record.to_string(), source).map_err(err)
    }
    fn query_assessments(&self, service: Option<&str>, kind: Option<&str>, limit: u32) -> Result<Value, HostError> {
        let q = core::AssessmentQuery { service: service.map(Into::into), kind: kind.map(Into::into), limit };
        parse(core::query_assessments(&q))
    }
    fn query_verdicts(&self, q: &VerdictQuery) -> Result<Value, HostError> {
        let q = core::VerdictQuery {
            service: q.service.clone(),
            verdict_type: q.verdict_type.clone(),
            created_after: q.created_after.clone(),
            created_before: q.created_before.clone(),
            limit: q.limit,
        };
        parse(core::query_verdicts(&q))
    }
    fn verdict_descendants(&self, id: &str) -> Result<Value, HostError> {
        parse(core::verdict_descendants(id))
    }
    fn resolve_outcome(&self, id: &str, body: &Value) -> Result<String, HostError> {
        core::resolve_outcome(id, &body.to_string()).map_err(err)
    }
    fn create_case(&self, case: &Value) -> Result<Value, HostError> {
        parse(core::create_case(&case.to_string()))
    }
    fn submit_batch(&self, records: &[Submission]) -> Vec<Result<String, HostError>> {
        let wit: Vec<core::Submission> = records
            .iter()
            .map(|s| core::Submission {
                kind: record_kind(s.kind),
                record: s.record.to_string(),
                source: s.source.clone(),
            })
            .collect();
        wit.chunks(SUBMIT_BATCH).flat_map(core::submit_batch).map(|r| r.map_err(err)).collect()
    }
    fn prom_query(&self, promql: &str, at: Option<f64>) -> Result<Value, HostError> {
        parse(prometheus::query(promql, at))
    }
    fn prom_query_range(&self, promql: &str, start: f64, end: f64, step: &str) -> Result<Value, HostError> {
        parse(prometheus::query_range(promql, start, end, step))
    }
    fn prom_query_batch(&self, promql: &[String], at: Option<f64>) -> Vec<Result<Value, HostError>> {
        promql.chunks(QUERY_BATCH).flat_map(|c| prometheus::query_batch(c, at)).map(parse).collect()
    }
    fn prom_query_at_batch(&self, queries: &[InstantQuery]) -> Vec<Result<Value, HostError>> {
        let wit: Vec<prometheus::InstantQuery> =
            queries.iter().map(|q| prometheus::InstantQuery { promql: q.promql.clone(), at: q.at }).collect();
        wit.chunks(QUERY_BATCH).flat_map(prometheus::query_at_batch).map(parse).collect()
    }
    fn prom_query_range_batch(&self, queries: &[RangeQuery]) -> Vec<Result<Value, HostError>> {
        let wit: Vec<prometheus::RangeQuery> = queries
            .iter()
            .map(|q| prometheus::RangeQuery {
                promql: q.promql.clone(),
                start: q.start,
                end: q.end,
                step: q.step.clone(),
            })
            .collect();
        wit.chunks(QUERY_BATCH).flat_map(prometheus::query_range_batch).map(parse).collect()
    }
    fn arbiter_reduce_autonomy(&self, agent: &str, reason: &str) -> Result<(), HostError> {
        arbiter::reduce_autonomy(agent, reason).map_err(err)
    }
    fn tempo_metrics_range(&self, q: &str, start: f64, end: f64, step: &str) -> Result<Value, HostError> {
        parse(tempo::metrics_range(q, start, end, step))
    }
    fn tempo_search(&self, q: &str, start: f64, end: f64, limit: u32) -> Result<Value, HostError> {
        parse(tempo::search(q, start, end, limit))
    }
    fn llm_structured(&self, req: &LlmRequest) -> Result<LlmResponse, HostError> {
        let r = llm::StructuredRequest {
            system: req.system.clone(),
            user: req.user.clone(),
            schema: req.schema.to_string(),
            schema_name: req.schema_name.clone(),
            max_tokens: req.max_tokens,
            timeout_ms: req.timeout_ms,
            max_retries: req.max_retries,
        };
        let resp = llm::structured_call(&r).map_err(err)?;
        let value = serde_json::from_str(&resp.value)
            .map_err(|e| HostError::Invalid(format!("host sent invalid JSON: {e}")))?;
        Ok(LlmResponse {
            value,
            model: resp.usage.model,
            input_tokens: resp.usage.input_tokens,
            output_tokens: resp.usage.output_tokens,
            latency_ms: resp.usage.latency_ms,
        })
    }
    fn log(&self, level: Level, message: &str, fields: &[(&str, &str)]) {
        let level = match level {
            Level::Trace => log::Level::Trace,
            Level::Debug => log::Level::Debug,
            Level::Info => log::Level::Info,
            Level::Warn => log::Level::Warn,
            Level::Error => log::Level::Error,
        };
        let fields: Vec<(String, String)> = fields.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        log::log(level, message, &fields);
    }
    fn now(&self) -> f64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
    }
    fn random_u64(&self) -> u64 {
        let mut b = [0u8; 8];
        getrandom::fill(&mut b).expect("wasi:random");
        u64::from_le_bytes(b)
    }
}

pub fn describe<M: Module>() -> wit::ModuleInfo {
    let info = M::describe();
    wit::ModuleInfo {
        name: info.name,
        version: info.version,
        tasks: info
            .tasks
            .into_iter()
            .map(|t| wit::Task {
                name: t.name,
                interval_seconds: t.interval_seconds,
                summary: t.summary,
                wake: t.wake.into_iter().map(wake_on).collect(),
            })
            .collect(),
        needs: info.needs,
        emits: info.emits.into_iter().map(|e| wit::Emission { record: record_kind(e.record), kind: e.kind }).collect(),
    }
}

fn record_kind(r: crate::types::RecordKind) -> wit::RecordKind {
    match r {
        crate::types::RecordKind::Assessment => wit::RecordKind::Assessment,
        crate::types::RecordKind::Verdict => wit::RecordKind::Verdict,
    }
}

fn wake_on(w: crate::types::WakeOn) -> wit::WakeOn {
    wit::WakeOn {
        record: record_kind(w.record),
        kind: w.kind,
        where_: w
            .tests
            .into_iter()
            .map(|t| wit::FieldTest {
                path: t.path,
                op: if t.none_of { wit::MatchOp::NoneOf } else { wit::MatchOp::AnyOf },
                values: t.values,
            })
            .collect(),
    }
}

fn json_arg(what: &str, text: Option<String>) -> Result<Option<Value>, String> {
    text.map(|t| serde_json::from_str(&t).map_err(|e| format!("{what} is not JSON: {e}"))).transpose()
}

pub fn run_cycle<M: Module>(input: wit::CycleInput) -> Result<wit::CycleOutput, String> {
    let input = CycleInput {
        task: input.task,
        state: json_arg("state", input.state)?,
        config: json_arg("config", Some(input.config))?.unwrap_or(Value::Null),
        args: json_arg("args", input.args)?,
    };
    let out = M::run_cycle(&WasmHost, input)?;
    Ok(wit::CycleOutput {
        state: out.state.map(|v| v.to_string()),
        result: out.result.map(|v| v.to_string()),
        emitted: out.emitted,
    })
}
