//! hostile-recursion: deep recursion
//!
//! Cycle 1 succeeds with state `{"n": 1}`, so core holds a good state; every later cycle
//! misbehaves (see `misbehave`). Part of the hostile-module suite (tests/tests/sandbox.rs).

use nthlayer_sdk::serde_json::{json, Value};
use nthlayer_sdk::{export_module, CycleInput, CycleOutput, Host, Level, Module, ModuleInfo, Task};

const NAME: &str = "hostile-recursion";

pub struct Hostile;

impl Module for Hostile {
    fn describe() -> ModuleInfo {
        ModuleInfo {
            name: NAME.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            tasks: vec![Task::new(NAME, 1, "deep recursion")],
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

static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Not a tail call (the result is combined after the call returns), scalars only, so every
/// level is a real wasm frame.
#[inline(never)]
fn deep(depth: u64) -> u64 {
    if depth == 0 {
        return 0;
    }
    CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    deep(depth - 1).wrapping_mul(3).wrapping_add(depth)
}

/// Recurses (practically) without end.
fn misbehave(_host: &dyn Host, input: &CycleInput, n: u64) -> Result<CycleOutput, String> {
    let depth = input.config_u64("recursion_depth").unwrap_or(u64::MAX >> 1);
    let r = deep(depth);
    Ok(CycleOutput { state: Some(json!({ "n": n + 1, "r": r })), result: None, emitted: 0 })
}
