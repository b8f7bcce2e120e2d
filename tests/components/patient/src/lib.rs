//! patient: a well-behaved module that waits a lot. Each cycle makes 1,000 host calls that
//! each wait 10 ms (a WASI clock wait: `poll` on a monotonic-clock pollable), about 10 s of
//! waiting and almost no computing. Honest CPU accounting (host/src/runtime/cpu.rs) charges
//! it a few milliseconds; charging each wait a 10 ms tick would charge 10 s and fail it
//! against the 1 s budget the sandbox suite gives it. State `{"n": n+1, "waits": 1000}`.

use std::time::Duration;

use nthlayer_sdk::serde_json::{json, Value};
use nthlayer_sdk::{export_module, CycleInput, CycleOutput, Host, Level, Module, ModuleInfo, Task};

const WAITS: u32 = 1_000;

pub struct Patient;

impl Module for Patient {
    fn describe() -> ModuleInfo {
        ModuleInfo {
            name: "patient".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            tasks: vec![Task::new("patient", 1, "1,000 host calls that each wait 10 ms")],
            needs: vec![],
            emits: vec![],
        }
    }

    fn run_cycle(host: &dyn Host, input: CycleInput) -> Result<CycleOutput, String> {
        let n = input.state.as_ref().and_then(|s| s.get("n")).and_then(Value::as_u64).unwrap_or(0) + 1;
        let start = host.now();
        for _ in 0..WAITS {
            std::thread::sleep(Duration::from_millis(10));
        }
        let waited = host.now() - start;
        host.log(Level::Info, &format!("waited {WAITS} times"), &[("seconds", &format!("{waited:.1}"))]);
        Ok(CycleOutput { state: Some(json!({ "n": n, "waits": WAITS, "seconds": waited })), result: None, emitted: 0 })
    }
}

export_module!(Patient);
