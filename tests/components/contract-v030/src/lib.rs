//! contract-v030: a module built from the frozen `wit/nthlayer-worker@0.3.0/` with raw
//! wit-bindgen bindings, not through the SDK (the SDK follows the newest contract). It must
//! keep loading and running on every host that serves 0.3.0, so it exercises what 0.3.0
//! added: a declared emission, which reaches the host only through the 0.3.0 layer's
//! conversion. Task `contract-v030` every 2 s: submits a `contract_v030` assessment and
//! keeps `{"n", "id"}` as state.

wit_bindgen::generate!({ world: "worker", path: "../../../wit/nthlayer-worker@0.3.0" });

use nthlayer::worker::core as nl_core;
use nthlayer::worker::log::{log, Level};
use nthlayer::worker::types::{Emission, RecordKind, Task};
use serde_json::{json, Value};

struct V030;

impl Guest for V030 {
    fn describe() -> ModuleInfo {
        ModuleInfo {
            name: "contract-v030".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            tasks: vec![Task {
                name: "contract-v030".into(),
                interval_seconds: 2,
                summary: "declares and submits one assessment kind (0.3.0 emits)".into(),
                wake: vec![],
            }],
            needs: vec!["core".into()],
            emits: vec![Emission { record: RecordKind::Assessment, kind: "contract_v030".into() }],
        }
    }

    fn run_cycle(input: CycleInput) -> Result<CycleOutput, String> {
        let state: Value = input.state.as_deref().and_then(|s| serde_json::from_str(s).ok()).unwrap_or(Value::Null);
        let n = state["n"].as_u64().unwrap_or(0) + 1;
        log(Level::Info, &format!("v030 cycle {n}"), &[("n".into(), n.to_string())]);
        let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_micros();
        let record = json!({
            "id": format!("asm-contract-v030-{secs}-{n}"),
            "created_at": "2026-01-01T00:00:00.000000+00:00",
            "kind": "contract_v030",
            "service": "contract-v030",
            "data": {"n": n, "contract": "0.3.0"},
        });
        let id = nl_core::submit_assessment(&record.to_string(), None).map_err(|e| format!("{e:?}"))?;
        Ok(CycleOutput { state: Some(json!({"n": n, "id": id}).to_string()), result: None, emitted: 1 })
    }
}

export!(V030);
