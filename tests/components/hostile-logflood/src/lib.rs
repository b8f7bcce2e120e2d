//! hostile-logflood: logs a million lines per cycle
//!
//! Cycle 1 succeeds with state `{"n": 1}`, so core holds a good state; every later cycle
//! misbehaves (see `misbehave`). Part of the hostile-module suite (tests/tests/sandbox.rs).

use nthlayer_sdk::serde_json::json;
use nthlayer_sdk::{CycleInput, CycleOutput, Host, Level};

hostile_common::hostile_module!("hostile-logflood", 2, "logs a million lines per cycle", misbehave);

/// Calls `log` a million times in one cycle.
fn misbehave(host: &dyn Host, _input: &CycleInput, n: u64) -> Result<CycleOutput, String> {
    let cycle = (n + 1).to_string();
    for _ in 0..1_000_000u32 {
        host.log(Level::Info, "flood", &[("cycle", &cycle)]);
    }
    Ok(CycleOutput { state: Some(json!({ "n": n + 1 })), result: None, emitted: 0 })
}
