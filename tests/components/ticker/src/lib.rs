//! ticker: the well-behaved neighbour of the hostile suite. Task `ticker` every second:
//! state `{"n": n+1}`, log line "tick n". Needs nothing beyond `log`.

use nthlayer_sdk::serde_json::{json, Value};
use nthlayer_sdk::{export_module, CycleInput, CycleOutput, Host, Level, Module, ModuleInfo, Task};

pub struct Ticker;

impl Module for Ticker {
    fn describe() -> ModuleInfo {
        ModuleInfo {
            name: "ticker".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            tasks: vec![Task::new("ticker", 1, "counts its cycles")],
            needs: vec![],
            emits: vec![],
        }
    }

    fn run_cycle(host: &dyn Host, input: CycleInput) -> Result<CycleOutput, String> {
        let n = input.state.as_ref().and_then(|s| s.get("n")).and_then(Value::as_u64).unwrap_or(0) + 1;
        host.log(Level::Info, &format!("tick {n}"), &[]);
        Ok(CycleOutput { state: Some(json!({ "n": n })), result: None, emitted: 0 })
    }
}

export_module!(Ticker);
