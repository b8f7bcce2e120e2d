//! LLM probe: every cycle, two structured calls through the `llm` import with the real
//! schemas of the built-in modules — correlate's `SnapshotSummary` and respond's
//! `TriageResponse` — and a report of what came back, in its state and in its log:
//!
//! `{"cycle":N,"calls":[{"schema","ok","value","model","tokens","latency_ms","error"}]}`
//!
//! The probe checks each value itself against the schema it sent (required keys, types,
//! bounds), so a passing run proves the answer reached the guest intact, not only that the
//! host validated it. `ok` is true only when the call succeeded *and* that check passed.

use nthlayer_sdk::serde_json::{self, json, Value};
use nthlayer_sdk::{CycleInput, CycleOutput, Host, HostError, Level, LlmRequest, Module, ModuleInfo, Task};

const SNAPSHOT_SCHEMA: &str = include_str!("../../../../host/llm/schemas/SnapshotSummary.json");
const TRIAGE_SCHEMA: &str = include_str!("../../../../host/llm/schemas/TriageResponse.json");

/// Enough for either answer from a small local model; the cycle's wall limit still applies.
const MAX_TOKENS: u32 = 512;
const TIMEOUT_MS: u32 = 90_000;
const MAX_RETRIES: u32 = 2;

const SNAPSHOT_SYSTEM: &str = "You summarise a correlation window for the on-call engineer of an \
online payments platform. Write 2-4 plain sentences describing what was observed in the sample \
events: which services, which signals, when. Do not speculate about root cause. List anything \
important the events do not tell you in notable_omissions. Set confidence between 0.0 and 1.0 to \
reflect how well the summary is grounded in the events.";

const SNAPSHOT_USER: &str = "Correlation window 2025-06-12T14:00:00Z to 2025-06-12T14:15:00Z, \
service payment-api (tier critical, team payments).
Sample events (5 of 23):
- 14:02:11 slo_status payment-api availability 99.62% (target 99.9%), error budget burn rate 6.1x
- 14:03:40 slo_status payment-api latency_p99 1840 ms (target 800 ms)
- 14:04:05 drift_signal payment-api error_rate trend +0.8%/min over 10 min
- 14:06:52 deploy payment-api v2.41.0 -> v2.41.1 by ci-bot (change CHG-8812)
- 14:09:30 slo_status checkout-web availability 99.71% (depends on payment-api)
Dependency graph: checkout-web -> payment-api -> fraud-detect, payment-api -> ledger-db.
Summarise this snapshot.";

const TRIAGE_SYSTEM: &str = "You are TriageAgent for an online payments platform. Given an SLO \
breach, decide the incident severity from 0 (P0, total outage of money movement) to 4 (P4, \
cosmetic), list the affected services (blast_radius) and SLOs (affected_slos), name the team that \
owns the response (assigned_team), explain the decision briefly (reasoning) and give your \
confidence between 0.0 and 1.0.";

const TRIAGE_USER: &str = "SLO breach: fraud-detect reversal_rate.
Objective: reversal_rate <= 0.5% of settled card payments over 1 h.
Current: 2.3% over the last 60 min (4.6x the objective), rising since 13:40 UTC.
Error budget: 100% of the 30-day budget consumed; burn rate 18x.
Upstream: payment-api calls fraud-detect on every authorisation; checkout-web calls payment-api.
Recent change: fraud-detect model fd-2025.06.1 deployed at 13:35 UTC by team risk-ml.
Owners: fraud-detect -> risk-ml, payment-api -> payments.
Triage this breach.";

struct Probe;

struct Call {
    name: &'static str,
    schema: &'static str,
    system: &'static str,
    user: &'static str,
}

const CALLS: [Call; 2] = [
    Call { name: "SnapshotSummary", schema: SNAPSHOT_SCHEMA, system: SNAPSHOT_SYSTEM, user: SNAPSHOT_USER },
    Call { name: "TriageResponse", schema: TRIAGE_SCHEMA, system: TRIAGE_SYSTEM, user: TRIAGE_USER },
];

impl Module for Probe {
    fn describe() -> ModuleInfo {
        ModuleInfo {
            name: "llm-probe".into(),
            version: "1.0.0".into(),
            tasks: vec![Task::new("llm-probe", 2, "structured LLM calls with the built-in modules' schemas")],
            needs: vec!["llm".into()],
            emits: vec![],
        }
    }

    fn run_cycle(host: &dyn Host, input: CycleInput) -> Result<CycleOutput, String> {
        let cycle = input.state.as_ref().and_then(|s| s["cycle"].as_u64()).unwrap_or(0) + 1;
        let calls: Vec<Value> = CALLS.iter().map(|c| probe(host, c)).collect();
        Ok(CycleOutput { state: Some(json!({"cycle": cycle, "calls": calls})), result: None, emitted: 0 })
    }
}

fn probe(host: &dyn Host, call: &Call) -> Value {
    let schema: Value = serde_json::from_str(call.schema).expect("embedded schema is JSON");
    let req = LlmRequest {
        system: call.system.into(),
        user: call.user.into(),
        schema: schema.clone(),
        schema_name: call.name.into(),
        max_tokens: MAX_TOKENS,
        timeout_ms: TIMEOUT_MS,
        max_retries: MAX_RETRIES,
    };
    let report = match host.llm_structured(&req) {
        Ok(r) => {
            let tokens = r.input_tokens + r.output_tokens;
            // The SDK parsed the host's JSON text; check it again from the text form, as a
            // module that stored and re-read it would.
            let check = serde_json::from_str::<Value>(&r.value.to_string())
                .map_err(|e| format!("value is not JSON: {e}"))
                .and_then(|v| conforms(&v, &schema, "$"));
            json!({
                "schema": call.name,
                "ok": check.is_ok(),
                "value": r.value,
                "model": r.model,
                "tokens": tokens,
                "latency_ms": r.latency_ms,
                "error": check.err().map(|e| format!("guest check failed: {e}")),
            })
        }
        Err(e) => json!({
            "schema": call.name,
            "ok": false,
            "value": null,
            "model": null,
            "tokens": 0,
            "error": e.to_string(),
            "kind": kind(&e),
        }),
    };
    let ok = report["ok"].as_bool() == Some(true);
    let (tokens, model) = (report["tokens"].to_string(), report["model"].as_str().unwrap_or("-").to_string());
    let detail = if ok { report["value"].to_string() } else { report["error"].as_str().unwrap_or("").to_string() };
    host.log(
        if ok { Level::Info } else { Level::Warn },
        &format!("llm-probe {}: {}", call.name, if ok { "ok" } else { "failed" }),
        &[("schema", call.name), ("model", &model), ("tokens", &tokens), ("detail", &detail)],
    );
    report
}

fn kind(e: &HostError) -> &'static str {
    match e {
        HostError::Denied(_) => "denied",
        HostError::Unavailable(_) => "unavailable",
        HostError::Timeout(_) => "timeout",
        HostError::Rejected { .. } => "rejected",
        HostError::Invalid(_) => "invalid",
    }
}

/// The subset of JSON Schema the two schemas use: `type`, `anyOf`, `required`, `properties`,
/// `items`, `minimum`/`maximum`, `maxLength`.
fn conforms(v: &Value, s: &Value, at: &str) -> Result<(), String> {
    if let Some(alts) = s.get("anyOf").and_then(Value::as_array) {
        if !alts.iter().any(|a| conforms(v, a, at).is_ok()) {
            return Err(format!("{at}: {v} matches none of anyOf"));
        }
    }
    if let Some(t) = s.get("type").and_then(Value::as_str) {
        let ok = match t {
            "object" => v.is_object(),
            "array" => v.is_array(),
            "string" => v.is_string(),
            "integer" => v.is_i64() || v.is_u64(),
            "number" => v.is_number(),
            "boolean" => v.is_boolean(),
            "null" => v.is_null(),
            _ => true,
        };
        if !ok {
            return Err(format!("{at}: expected {t}, got {v}"));
        }
    }
    if let Some(n) = v.as_f64() {
        if s.get("minimum").and_then(Value::as_f64).is_some_and(|m| n < m) {
            return Err(format!("{at}: {n} below minimum {}", s["minimum"]));
        }
        if s.get("maximum").and_then(Value::as_f64).is_some_and(|m| n > m) {
            return Err(format!("{at}: {n} above maximum {}", s["maximum"]));
        }
    }
    if let (Some(text), Some(max)) = (v.as_str(), s.get("maxLength").and_then(Value::as_u64)) {
        if text.chars().count() as u64 > max {
            return Err(format!("{at}: string longer than {max} characters"));
        }
    }
    if let Some(obj) = v.as_object() {
        for key in s.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
            if !obj.contains_key(key) {
                return Err(format!("{at}: required key {key:?} missing"));
            }
        }
        if let Some(props) = s.get("properties").and_then(Value::as_object) {
            for (k, sub) in props {
                if let Some(x) = obj.get(k) {
                    conforms(x, sub, &format!("{at}.{k}"))?;
                }
            }
        }
    }
    if let (Some(items), Some(sub)) = (v.as_array(), s.get("items")) {
        for (i, x) in items.iter().enumerate() {
            conforms(x, sub, &format!("{at}[{i}]"))?;
        }
    }
    Ok(())
}

nthlayer_sdk::export_module!(Probe);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_the_schemas() {
        let snap: Value = serde_json::from_str(SNAPSHOT_SCHEMA).unwrap();
        let triage: Value = serde_json::from_str(TRIAGE_SCHEMA).unwrap();
        assert!(conforms(&json!({"summary": "s", "notable_omissions": [], "confidence": 0.5}), &snap, "$").is_ok());
        assert!(conforms(&json!({"notable_omissions": []}), &snap, "$").is_err());
        assert!(conforms(&json!({"summary": "s", "confidence": 2.0}), &snap, "$").is_err());
        assert!(conforms(&json!({"severity": 2, "assigned_team": null}), &triage, "$").is_ok());
        assert!(conforms(&json!({"severity": "high"}), &triage, "$").is_err());
        assert!(conforms(&json!({"severity": 5}), &triage, "$").is_err());
        assert!(conforms(&json!({"severity": 1, "assigned_team": 3}), &triage, "$").is_err());
        assert!(conforms(&json!({"severity": 1, "blast_radius": [1]}), &triage, "$").is_err());
    }
}
