//! hostile-sleeper: eight tasks at 1 s, each of whose cycles sleeps 30 s in a WASI clock
//! wait. With one global slot per cycle in flight it held every slot of
//! `--max-concurrent-cycles 8` and its neighbours ran nothing; now it holds its share
//! (`max_concurrent`) of its own cycles and no execution slot while it sleeps
//! (host/src/policy/shares.rs). State `{"n": n+1}` per task.

use std::time::Duration;

use nthlayer_sdk::serde_json::{json, Value};
use nthlayer_sdk::{export_module, CycleInput, CycleOutput, Host, Level, Module, ModuleInfo, Task};

pub struct Sleeper;

impl Module for Sleeper {
    fn describe() -> ModuleInfo {
        let mut tasks = vec![Task::new("hostile-sleeper", 1, "sleeps 30 s")];
        tasks.extend((1..8).map(|i| Task::new(&format!("hostile-sleeper.t{i}"), 1, "sleeps 30 s")));
        ModuleInfo { name: "hostile-sleeper".into(), version: env!("CARGO_PKG_VERSION").into(), tasks, needs: vec![], emits: vec![] }
    }

    fn run_cycle(host: &dyn Host, input: CycleInput) -> Result<CycleOutput, String> {
        let n = input.state.as_ref().and_then(|s| s.get("n")).and_then(Value::as_u64).unwrap_or(0) + 1;
        host.log(Level::Info, "sleeping", &[("task", &input.task)]);
        std::thread::sleep(Duration::from_secs(30));
        Ok(CycleOutput { state: Some(json!({ "n": n })), result: None, emitted: 0 })
    }
}

export_module!(Sleeper);
