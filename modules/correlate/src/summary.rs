//! The snapshot's natural-language summary: the module's only LLM call.
//!
//! Advisory and optional: any failure (no LLM granted or configured, provider error, schema
//! violation after the re-ask, timeout) yields `nl_summary: null` and the snapshot is still
//! emitted. The prompt is ours (`prompts/summary-v1.md`), versioned by [`PROMPT_VERSION`],
//! which travels inside `nl_summary` so a summary can be traced to the prompt that wrote it.

use nthlayer_sdk::{py, Host, HostError, Level, LlmRequest};
use serde_json::{json, Value};

use crate::digest::Digest;

pub const PROMPT_VERSION: &str = "correlate-summary/1";
const SYSTEM: &str = include_str!("../prompts/summary-v1.md");
/// The reference's pydantic `SnapshotSummary` schema, sent with every call; the host
/// validates the answer against it (and re-asks once).
const SCHEMA: &str = include_str!("../schemas/SnapshotSummary.json");
pub const SCHEMA_NAME: &str = "SnapshotSummary";
pub const TIMEOUT_MS: u32 = 5_000;
pub const MAX_RETRIES: u32 = 1;
/// The reference's structured-call default.
pub const MAX_TOKENS: u32 = 2_000;
const MAX_SAMPLES: usize = 10;

pub fn schema() -> Value {
    serde_json::from_str(SCHEMA).unwrap_or(Value::Null)
}

/// The facts of the window, one per line, then the sample events.
pub fn user_prompt(data: &Value, digest: &Digest) -> String {
    let d = &data["domain"];
    let w = &data["window"];
    let types: Vec<String> = data["event_types"]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| format!("{k}={v}")).collect())
        .unwrap_or_default();
    let affected: Vec<&str> =
        data["affected_services"].as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
    let mut p = format!(
        "Domain: service {} in {}\nWindow: opened {}, closed {} after {} s ({})\n\
         Event count: {}\nBy type: {}\nHighest severity: {}\nServices involved: {}\n\nRepresentative events:\n",
        d["service"].as_str().unwrap_or("unknown"),
        d["environment"].as_str().unwrap_or("unknown"),
        w["opened_at"].as_str().unwrap_or("?"),
        w["closed_at"].as_str().unwrap_or("?"),
        py::fixed(w["duration_seconds"].as_f64().unwrap_or(0.0), 0),
        w["close_reason"].as_str().unwrap_or("unknown"),
        data["event_count"],
        types.join(", "),
        py::repr(data["peak_severity"].as_f64().unwrap_or(0.0)),
        affected.join(", "),
    );
    for e in digest.samples(MAX_SAMPLES) {
        p.push_str(&format!(
            "- {} | {} | {} | severity {} | from {}\n",
            e.timestamp,
            e.service,
            e.kind,
            py::repr(e.severity),
            e.source
        ));
    }
    p
}

/// `{summary, notable_omissions, confidence, prompt_version}` or `None` (logged).
pub fn generate(host: &dyn Host, data: &Value, digest: &Digest) -> Option<Value> {
    let service = data["domain"]["service"].as_str().unwrap_or("unknown");
    let req = LlmRequest {
        system: SYSTEM.to_string(),
        user: user_prompt(data, digest),
        schema: schema(),
        schema_name: SCHEMA_NAME.into(),
        max_tokens: MAX_TOKENS,
        timeout_ms: TIMEOUT_MS,
        max_retries: MAX_RETRIES,
    };
    let fail = |reason: &str, error: &str| {
        host.log(
            Level::Warn,
            "correlate_summary_failed",
            &[("service", service), ("reason", reason), ("error", error), ("prompt_version", PROMPT_VERSION)],
        );
        None
    };
    match host.llm_structured(&req) {
        Ok(r) => {
            let v = &r.value;
            let Some(summary) = v.get("summary").and_then(Value::as_str) else {
                return fail("validation_error", "answer has no string `summary`");
            };
            let omissions: Vec<Value> = match v.get("notable_omissions") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(a)) if a.iter().all(Value::is_string) => a.clone(),
                Some(_) => return fail("validation_error", "`notable_omissions` is not a list of strings"),
            };
            let confidence = match v.get("confidence") {
                None | Some(Value::Null) => 0.0,
                Some(c) => match c.as_f64() {
                    Some(c) if (0.0..=1.0).contains(&c) => c,
                    _ => return fail("validation_error", "`confidence` is not a number in 0..1"),
                },
            };
            Some(json!({
                "summary": summary,
                "notable_omissions": omissions,
                "confidence": confidence,
                "prompt_version": PROMPT_VERSION,
            }))
        }
        Err(HostError::Timeout(m)) => fail("timeout", &m),
        Err(e) => fail("llm_unavailable", &e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nthlayer_sdk::testing::FakeHost;

    fn one(id: &str, svc: &str, ts: &str, sev: f64) -> Digest {
        let mut d = Digest::default();
        d.ingest(crate::digest::tests::ev(id, svc, ts, sev));
        d
    }

    fn data() -> Value {
        json!({"domain": {"service": "pay", "environment": "production"},
               "window": {"opened_at": "o", "closed_at": "c", "duration_seconds": 2.5, "close_reason": "trigger"},
               "event_count": 1, "event_types": {"quality_score": 1}, "peak_severity": 0.9,
               "affected_services": ["pay"]})
    }

    #[test]
    fn prompt_carries_the_facts_and_schema_is_the_reference_one() {
        let p = user_prompt(&data(), &one("a", "pay", "2026-11-24T15:00:01+00:00", 0.9));
        assert!(p.contains("after 2 s (trigger)"), "{p}");
        assert!(p.contains("quality_score=1") && p.contains("Highest severity: 0.9"), "{p}");
        assert!(p.contains("- 2026-11-24T15:00:01+00:00 | pay | alert | severity 0.9 | from assessment:slo_status"));
        assert_eq!(schema()["title"], "SnapshotSummary");
        assert_eq!(schema()["required"], json!(["summary"]));
    }

    #[test]
    fn a_valid_answer_gets_defaults_and_the_prompt_version() {
        let h = FakeHost::new();
        *h.llm.borrow_mut() = Some(Ok(json!({"summary": "x", "confidence": 1})));
        let s = generate(&h, &data(), &Digest::default()).unwrap();
        assert_eq!(
            s,
            json!({"summary": "x", "notable_omissions": [], "confidence": 1.0, "prompt_version": PROMPT_VERSION})
        );
        assert_eq!(serde_json::to_string(&s["confidence"]).unwrap(), "1.0");
    }

    #[test]
    fn every_failure_is_null_and_logged() {
        for answer in [
            Err(HostError::Timeout("5s".into())),
            Err(HostError::Unavailable("not configured".into())),
            Err(HostError::Denied("llm".into())),
            Ok(json!({"confidence": 0.5})),
            Ok(json!({"summary": "x", "confidence": 3})),
        ] {
            let h = FakeHost::new();
            *h.llm.borrow_mut() = Some(answer.clone());
            assert_eq!(generate(&h, &data(), &Digest::default()), None, "{answer:?}");
            assert_eq!(h.logs.borrow()[0].1, "correlate_summary_failed");
        }
    }
}
