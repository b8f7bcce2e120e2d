//! hostile-ungranted: calls core, prometheus, tempo and llm without grants
//!
//! Cycle 1 succeeds with state `{"n": 1}`, so core holds a good state; every later cycle
//! misbehaves (see `misbehave`). Part of the hostile-module suite (tests/tests/sandbox.rs).

use nthlayer_sdk::serde_json::{json, Value};
use nthlayer_sdk::{CycleInput, CycleOutput, Host, Level};

hostile_common::hostile_module!("hostile-ungranted", 1, "calls core, prometheus, tempo and llm without grants", misbehave);

use nthlayer_sdk::{HostError, LlmRequest};

fn outcome<T>(r: Result<T, HostError>) -> Value {
    match r {
        Ok(_) => json!({ "denied": false }),
        Err(HostError::Denied(m)) => json!({ "denied": true, "error": m }),
        Err(e) => json!({ "denied": false, "error": e.to_string() }),
    }
}

/// Calls core, Prometheus, Tempo and the LLM without being granted any of them.
fn misbehave(host: &dyn Host, _input: &CycleInput, n: u64) -> Result<CycleOutput, String> {
    let record = json!({"id": "asm-x", "service": "s", "kind": "k", "created_at": "2026-01-01T00:00:00.000000+00:00"});
    let llm = LlmRequest {
        system: "s".into(),
        user: "u".into(),
        schema: json!({"type": "object"}),
        schema_name: "X".into(),
        max_tokens: 10,
        timeout_ms: 1000,
        max_retries: 0,
    };
    let calls = json!({
        "core": outcome(host.get_manifests()),
        "core_submit": outcome(host.submit_assessment(&record, None)),
        "prometheus": outcome(host.prom_query("up", None)),
        "tempo": outcome(host.tempo_search("{}", 0.0, 1.0, 1)),
        "llm": outcome(host.llm_structured(&llm)),
    });
    for (what, o) in calls.as_object().into_iter().flatten() {
        host.log(Level::Info, "ungranted call", &[("call", what), ("outcome", &o.to_string())]);
    }
    Ok(CycleOutput { state: Some(json!({ "n": n + 1, "calls": calls })), result: None, emitted: 0 })
}
