//! hostile-many: as many tasks at 1 s as it may declare, each cycle computing ~20 ms.
//! Built twice (variants.txt): `hostile-many` declares 64 tasks (the default `max_tasks`)
//! and loads, so its 64 busy tasks compete with their neighbours for execution slots;
//! `hostile-many-5000` declares 5,000 and is refused at load, naming the module and the cap.

use nthlayer_sdk::serde_json::{json, Value};
use nthlayer_sdk::{export_module, CycleInput, CycleOutput, Host, Module, ModuleInfo, Task};

#[cfg(feature = "five-thousand")]
const TASKS: usize = 5_000;
#[cfg(feature = "five-thousand")]
const NAME: &str = "hostile-many-5000";
#[cfg(not(feature = "five-thousand"))]
const TASKS: usize = 64;
#[cfg(not(feature = "five-thousand"))]
const NAME: &str = "hostile-many";

pub struct Many;

impl Module for Many {
    fn describe() -> ModuleInfo {
        let tasks = (0..TASKS).map(|i| Task::new(&format!("{NAME}.t{i}"), 1, "computes ~20 ms")).collect();
        ModuleInfo { name: NAME.into(), version: env!("CARGO_PKG_VERSION").into(), tasks, needs: vec![], emits: vec![] }
    }

    fn run_cycle(host: &dyn Host, input: CycleInput) -> Result<CycleOutput, String> {
        let n = input.state.as_ref().and_then(|s| s.get("n")).and_then(Value::as_u64).unwrap_or(0) + 1;
        let start = host.now();
        let mut x = n;
        while host.now() - start < 0.02 {
            for _ in 0..10_000 {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
        }
        Ok(CycleOutput { state: Some(json!({ "n": n, "x": x % 1000 })), result: None, emitted: 0 })
    }
}

export_module!(Many);
