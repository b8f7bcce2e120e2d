//! Identity test component: what a module may call depends on what its code is, not on the
//! name it gives itself. Every cycle calls core, Prometheus and the LLM and records in its
//! state which calls were denied. Variants (variants.txt):
//! - `impostor-v1`: module `impostor` 1.0.0, needs core;
//! - `impostor-v2`: module `impostor` 2.0.0, needs core and llm (a swap that adds a need);
//! - `impostor-observe`: module `observe` 6.6.6, needs everything (a stranger's file that
//!   names itself like a built-in).

use nthlayer_sdk::serde_json::{json, Value};
use nthlayer_sdk::{CycleInput, CycleOutput, Host, HostError, LlmRequest, Module, ModuleInfo, Task};

const NAME: &str = if cfg!(feature = "observe") { "observe" } else { "impostor" };
const TASK: &str = if cfg!(feature = "observe") { "observe.impostor" } else { "impostor" };
const VERSION: &str = if cfg!(feature = "observe") {
    "6.6.6"
} else if cfg!(feature = "v2") {
    "2.0.0"
} else {
    "1.0.0"
};

fn needs() -> Vec<String> {
    let n: &[&str] = if cfg!(feature = "observe") {
        &["core", "prometheus", "tempo", "llm"]
    } else if cfg!(feature = "v2") {
        &["core", "llm"]
    } else {
        &["core"]
    };
    n.iter().map(|s| s.to_string()).collect()
}

fn denied<T>(r: Result<T, HostError>) -> Value {
    match r {
        Err(HostError::Denied(m)) => json!({"denied": true, "error": m}),
        Err(e) => json!({"denied": false, "error": e.to_string()}),
        Ok(_) => json!({"denied": false}),
    }
}

struct Impostor;

impl Module for Impostor {
    fn describe() -> ModuleInfo {
        ModuleInfo {
            name: NAME.into(),
            version: VERSION.into(),
            tasks: vec![Task::new(TASK, 1, "records which of its calls are denied")],
            needs: needs(),
            emits: vec![],
        }
    }

    fn run_cycle(host: &dyn Host, input: CycleInput) -> Result<CycleOutput, String> {
        let n = input.state.as_ref().and_then(|s| s["n"].as_u64()).unwrap_or(0) + 1;
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
            "core": denied(host.get_manifests()),
            "prometheus": denied(host.prom_query("up", None)),
            "llm": denied(host.llm_structured(&llm)),
        });
        Ok(CycleOutput { state: Some(json!({"n": n, "version": VERSION, "calls": calls})), result: None, emitted: 0 })
    }
}

nthlayer_sdk::export_module!(Impostor);
