//! An in-memory [`Host`] for native unit tests of module logic: canned Prometheus answers,
//! a manifest list, recorded submissions, a pinned clock and deterministic "randomness".

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};

use serde_json::{json, Value};

use crate::host::{Host, HostError, Level, LlmRequest, LlmResponse, VerdictQuery};

/// A submitted record, as the host would have received it.
#[derive(Debug, Clone, PartialEq)]
pub struct Submitted {
    /// "assessment" or "verdict".
    pub what: &'static str,
    pub record: Value,
    pub source: Option<String>,
}

#[derive(Default)]
pub struct FakeHost {
    pub manifests: RefCell<Value>,
    /// Instant query -> answer. Missing queries answer an empty vector.
    pub instant: RefCell<HashMap<String, Result<Value, HostError>>>,
    /// Range query -> answer. Missing queries answer an empty matrix.
    pub range: RefCell<HashMap<String, Result<Value, HostError>>>,
    /// Answer for every core read when set (e.g. core down).
    pub core_error: RefCell<Option<HostError>>,
    /// Answer for every submission (assessment or verdict) when set, reads unaffected.
    pub submit_error: RefCell<Option<HostError>>,
    /// Assessments returned by query_assessments, newest first (filtered by service/kind).
    pub assessments: RefCell<Vec<Value>>,
    pub verdicts: RefCell<Vec<Value>>,
    pub submitted: RefCell<Vec<Submitted>>,
    pub instant_calls: RefCell<Vec<String>>,
    pub range_calls: RefCell<Vec<(String, f64, f64, String)>>,
    pub logs: RefCell<Vec<(Level, String)>>,
    pub llm: RefCell<Option<Result<Value, HostError>>>,
    /// Every LLM request, in order.
    pub llm_calls: RefCell<Vec<LlmRequest>>,
    /// TraceQL (metrics or search) -> answer. Missing queries answer unavailable("not configured").
    pub tempo: RefCell<HashMap<String, Result<Value, HostError>>>,
    /// (traceql, start, end, step-or-limit) of every Tempo call, in order.
    pub tempo_calls: RefCell<Vec<(String, f64, f64, String)>>,
    pub clock: Cell<f64>,
    pub rng: Cell<u64>,
    /// Scripted LLM answers per schema name, used in order before falling back to `llm`.
    pub llm_script: RefCell<HashMap<String, VecDeque<Result<Value, HostError>>>>,
    /// Seconds the clock moves forward on each LLM call (a slow or hanging model).
    pub llm_advance_seconds: Cell<f64>,
    /// When set, a second submission or case with the same id answers 409 duplicate, as core does.
    pub reject_duplicates: Cell<bool>,
    /// Verdict id -> answer of `verdict_descendants`. Missing ids answer `[]` (as core does).
    pub descendants: RefCell<HashMap<String, Result<Value, HostError>>>,
    /// Every `resolve_outcome(id, body)` call that was answered Ok, in call order.
    pub outcomes: RefCell<Vec<(String, Value)>>,
    /// Verdict id -> error that `resolve_outcome` answers instead (e.g. a 409).
    pub outcome_errors: RefCell<HashMap<String, HostError>>,
    /// Every case accepted by `create_case`, in call order.
    pub cases: RefCell<Vec<Value>>,
}

impl FakeHost {
    /// Clock pinned at 2026-11-24T15:08:47.615105Z.
    pub fn new() -> Self {
        let h = FakeHost::default();
        h.clock.set(1_795_532_927.615105);
        h.rng.set(0x1423_0692);
        *h.manifests.borrow_mut() = json!([]);
        h
    }
    pub fn with_manifests(self, m: Value) -> Self {
        *self.manifests.borrow_mut() = m;
        self
    }
    /// Answers `promql` with a one-sample vector of `value` (a Prometheus string value).
    pub fn set_scalar(&self, promql: &str, value: &str) {
        let data = json!({"resultType":"vector","result":[{"metric":{},"value":[self.clock.get(), value]}]});
        self.instant.borrow_mut().insert(promql.to_string(), Ok(data));
    }
    pub fn set_instant(&self, promql: &str, answer: Result<Value, HostError>) {
        self.instant.borrow_mut().insert(promql.to_string(), answer);
    }
    pub fn set_range(&self, promql: &str, answer: Result<Value, HostError>) {
        self.range.borrow_mut().insert(promql.to_string(), answer);
    }
    pub fn submitted_of_kind(&self, kind: &str) -> Vec<Value> {
        self.submitted
            .borrow()
            .iter()
            .filter(|s| s.record.get("kind").and_then(Value::as_str) == Some(kind))
            .map(|s| s.record.clone())
            .collect()
    }
    fn tempo_answer(&self, q: &str, s: f64, e: f64, extra: String) -> Result<Value, HostError> {
        self.tempo_calls.borrow_mut().push((q.to_string(), s, e, extra));
        self.tempo.borrow().get(q).cloned().unwrap_or_else(|| Err(HostError::Unavailable("not configured".into())))
    }
    fn core_read(&self) -> Result<(), HostError> {
        match self.core_error.borrow().clone() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
    /// Queues `answer` for the next LLM call with `schema_name`.
    pub fn script_llm(&self, schema_name: &str, answer: Result<Value, HostError>) {
        self.llm_script.borrow_mut().entry(schema_name.to_string()).or_default().push_back(answer);
    }
    pub fn submitted_verdicts(&self) -> Vec<Value> {
        self.submitted.borrow().iter().filter(|s| s.what == "verdict").map(|s| s.record.clone()).collect()
    }
    fn duplicate(id: &str) -> HostError {
        HostError::Rejected { status: 409, code: "duplicate".into(), detail: json!({"id": id}) }
    }
    fn submit(&self, what: &'static str, record: &Value, source: Option<&str>) -> Result<String, HostError> {
        self.core_read()?;
        if let Some(e) = self.submit_error.borrow().clone() {
            return Err(e);
        }
        let id = record.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
        if self.reject_duplicates.get()
            && self.submitted.borrow().iter().any(|s| s.what == what && s.record["id"] == id)
        {
            return Err(Self::duplicate(&id));
        }
        self.submitted.borrow_mut().push(Submitted {
            what,
            record: record.clone(),
            source: source.map(str::to_string),
        });
        Ok(id)
    }
}

fn matches(v: &Value, key: &str, want: Option<&str>) -> bool {
    want.is_none_or(|w| v.get(key).and_then(Value::as_str) == Some(w))
}

/// Core's inclusive `created_after` / `created_before` bounds (string comparison, as core does).
fn within(v: &Value, after: Option<&str>, before: Option<&str>) -> bool {
    let at = v.get("created_at").and_then(Value::as_str).unwrap_or_default();
    after.is_none_or(|a| at >= a) && before.is_none_or(|b| at <= b)
}

impl Host for FakeHost {
    fn get_manifests(&self) -> Result<Value, HostError> {
        self.core_read()?;
        Ok(self.manifests.borrow().clone())
    }
    fn get_manifest(&self, service: &str) -> Result<Value, HostError> {
        self.core_read()?;
        self.manifests.borrow().as_array().and_then(|a| a.iter().find(|m| m["name"] == service).cloned()).ok_or_else(
            || HostError::Rejected { status: 404, code: "not_found".into(), detail: json!({"service": service}) },
        )
    }
    fn submit_assessment(&self, record: &Value, source: Option<&str>) -> Result<String, HostError> {
        self.submit("assessment", record, source)
    }
    fn submit_verdict(&self, record: &Value, source: Option<&str>) -> Result<String, HostError> {
        self.submit("verdict", record, source)
    }
    fn query_assessments(&self, service: Option<&str>, kind: Option<&str>, limit: u32) -> Result<Value, HostError> {
        self.core_read()?;
        let all = self.assessments.borrow();
        let v: Vec<Value> = all
            .iter()
            .filter(|a| matches(a, "service", service) && matches(a, "kind", kind))
            .take(limit as usize)
            .cloned()
            .collect();
        Ok(Value::Array(v))
    }
    fn query_verdicts(&self, q: &VerdictQuery) -> Result<Value, HostError> {
        self.core_read()?;
        let all = self.verdicts.borrow();
        let v: Vec<Value> = all
            .iter()
            .filter(|a| matches(a, "service", q.service.as_deref()) && matches(a, "type", q.verdict_type.as_deref()))
            .filter(|a| within(a, q.created_after.as_deref(), q.created_before.as_deref()))
            .take(q.limit as usize)
            .cloned()
            .collect();
        Ok(Value::Array(v))
    }
    fn verdict_descendants(&self, id: &str) -> Result<Value, HostError> {
        self.core_read()?;
        self.descendants.borrow().get(id).cloned().unwrap_or_else(|| Ok(json!([])))
    }
    fn resolve_outcome(&self, id: &str, body: &Value) -> Result<String, HostError> {
        self.core_read()?;
        if let Some(e) = self.outcome_errors.borrow().get(id) {
            return Err(e.clone());
        }
        self.outcomes.borrow_mut().push((id.to_string(), body.clone()));
        Ok(format!("out-{id}"))
    }
    fn create_case(&self, case: &Value) -> Result<Value, HostError> {
        self.core_read()?;
        if self.reject_duplicates.get() && self.cases.borrow().iter().any(|c| c["id"] == case["id"]) {
            return Err(Self::duplicate(case["id"].as_str().unwrap_or_default()));
        }
        self.cases.borrow_mut().push(case.clone());
        Ok(json!({"id": case["id"], "priority": "P3"}))
    }
    fn prom_query(&self, promql: &str, _at: Option<f64>) -> Result<Value, HostError> {
        self.instant_calls.borrow_mut().push(promql.to_string());
        self.instant.borrow().get(promql).cloned().unwrap_or_else(|| Ok(json!({"resultType":"vector","result":[]})))
    }
    fn prom_query_range(&self, promql: &str, start: f64, end: f64, step: &str) -> Result<Value, HostError> {
        self.range_calls.borrow_mut().push((promql.to_string(), start, end, step.to_string()));
        self.range.borrow().get(promql).cloned().unwrap_or_else(|| Ok(json!({"resultType":"matrix","result":[]})))
    }
    fn prom_query_batch(&self, promql: &[String], at: Option<f64>) -> Vec<Result<Value, HostError>> {
        promql.iter().map(|q| self.prom_query(q, at)).collect()
    }
    fn tempo_metrics_range(&self, q: &str, s: f64, e: f64, step: &str) -> Result<Value, HostError> {
        self.tempo_answer(q, s, e, step.to_string())
    }
    fn tempo_search(&self, q: &str, s: f64, e: f64, l: u32) -> Result<Value, HostError> {
        self.tempo_answer(q, s, e, l.to_string())
    }
    fn llm_structured(&self, req: &LlmRequest) -> Result<LlmResponse, HostError> {
        self.llm_calls.borrow_mut().push(req.clone());
        self.clock.set(self.clock.get() + self.llm_advance_seconds.get());
        let scripted = self.llm_script.borrow_mut().get_mut(&req.schema_name).and_then(VecDeque::pop_front);
        match scripted.or_else(|| self.llm.borrow().clone()) {
            Some(Ok(value)) => {
                Ok(LlmResponse { value, model: "fake/model".into(), input_tokens: 0, output_tokens: 0, latency_ms: 0 })
            }
            Some(Err(e)) => Err(e),
            None => Err(HostError::Unavailable("not configured".into())),
        }
    }
    fn log(&self, level: Level, message: &str, _fields: &[(&str, &str)]) {
        self.logs.borrow_mut().push((level, message.to_string()));
    }
    fn now(&self) -> f64 {
        self.clock.get()
    }
    fn random_u64(&self) -> u64 {
        // splitmix64: deterministic, well spread, no dependency.
        let mut z = self.rng.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
        self.rng.set(z);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}
