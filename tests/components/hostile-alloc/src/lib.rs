//! hostile-alloc: unbounded memory growth
//!
//! Cycle 1 succeeds with state `{"n": 1}`, so core holds a good state; every later cycle
//! misbehaves (see `misbehave`). Part of the hostile-module suite (tests/tests/sandbox.rs).

use nthlayer_sdk::serde_json::{json, Value};
use nthlayer_sdk::{export_module, CycleInput, CycleOutput, Host, Level, Module, ModuleInfo, Task};

const NAME: &str = "hostile-alloc";

pub struct Hostile;

impl Module for Hostile {
    fn describe() -> ModuleInfo {
        ModuleInfo {
            name: NAME.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            tasks: vec![Task::new(NAME, 1, "unbounded memory growth")],
            needs: vec![],
        }
    }

    fn run_cycle(host: &dyn Host, input: CycleInput) -> Result<CycleOutput, String> {
        let n = input.state.as_ref().and_then(|s| s.get("n")).and_then(Value::as_u64).unwrap_or(0);
        if n == 0 {
            host.log(Level::Info, "first cycle: behaving", &[]);
            return Ok(CycleOutput { state: Some(json!({ "n": 1 })), result: None, emitted: 0 });
        }
        host.log(Level::Info, "misbehaving", &[("n", &n.to_string())]);
        misbehave(host, &input, n)
    }
}

export_module!(Hostile);

/// Allocates (and touches) 1 MiB after 1 MiB, forever.
fn misbehave(_host: &dyn Host, _input: &CycleInput, n: u64) -> Result<CycleOutput, String> {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        hoard.push(vec![n as u8; 1 << 20]);
        std::hint::black_box(&hoard);
    }
}
