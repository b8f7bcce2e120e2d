//! contract-v030: a module built from the frozen `wit/nthlayer-worker@0.3.0/` with raw
//! wit-bindgen bindings, not through the SDK (the SDK follows the newest contract). It must
//! keep loading and running on every host that serves 0.3.0, so it exercises what 0.3.0
//! added: declared emissions. It declares `assessment:contract_v030` and nothing else; each
//! cycle (every 2 s) submits one `contract_v030` (declared and granted: it lands) and one
//! `contract_undeclared` (granted by the test, not declared: the host refuses it, which it
//! can only do if the 0.3.0 declaration reached it), and keeps
//! `{"n", "id", "undeclared"}` as state, `undeclared` being the refusal's text.

wit_bindgen::generate!({ world: "worker", path: "../../../wit/nthlayer-worker@0.3.0" });

use nthlayer::worker::core as nl_core;
use nthlayer::worker::types::{Emission, HostError, RecordKind, Task};
use serde_json::{json, Value};

struct V030;

fn err(e: HostError) -> String {
    format!("{e:?}")
}

fn record(kind: &str, n: u64) -> String {
    let micros = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_micros();
    json!({
        "id": format!("asm-contract-v030-{kind}-{micros}-{n}"),
        // Core stores the text as given; the test reads records back by kind, not by time.
        "created_at": "2026-01-01T00:00:00.000000+00:00",
        "kind": kind,
        "service": "contract-v030",
        "data": {"n": n, "contract": "0.3.0"},
    })
    .to_string()
}

impl Guest for V030 {
    fn describe() -> ModuleInfo {
        ModuleInfo {
            name: "contract-v030".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            tasks: vec![Task {
                name: "contract-v030".into(),
                interval_seconds: 2,
                summary: "declares one emission (0.3.0) and submits it".into(),
                wake: vec![],
            }],
            needs: vec!["core".into()],
            emits: vec![Emission { record: RecordKind::Assessment, kind: "contract_v030".into() }],
        }
    }

    fn run_cycle(input: CycleInput) -> Result<CycleOutput, String> {
        let state: Value = input.state.as_deref().and_then(|s| serde_json::from_str(s).ok()).unwrap_or(Value::Null);
        let n = state["n"].as_u64().unwrap_or(0) + 1;
        let id = nl_core::submit_assessment(&record("contract_v030", n), None).map_err(err)?;
        let undeclared = match nl_core::submit_assessment(&record("contract_undeclared", n), None) {
            Ok(id) => format!("accepted {id}"),
            Err(e) => err(e),
        };
        let state = json!({"n": n, "id": id, "undeclared": undeclared});
        Ok(CycleOutput { state: Some(state.to_string()), result: None, emitted: 1 })
    }
}

export!(V030);
