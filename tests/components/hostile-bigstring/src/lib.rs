//! hostile-bigstring: returns a 100 MB result
//!
//! Cycle 1 succeeds with state `{"n": 1}`, so core holds a good state; every later cycle
//! misbehaves (see `misbehave`). Part of the hostile-module suite (tests/tests/sandbox.rs).

use nthlayer_sdk::serde_json::{json, Value};
use nthlayer_sdk::{CycleInput, CycleOutput, Host};

hostile_common::hostile_module!("hostile-bigstring", 2, "returns a 100 MB result", misbehave);

/// Returns a 100 MB string as the cycle's result.
fn misbehave(_host: &dyn Host, _input: &CycleInput, n: u64) -> Result<CycleOutput, String> {
    let big = "x".repeat(100_000_000);
    Ok(CycleOutput { state: Some(json!({ "n": n + 1 })), result: Some(Value::String(big)), emitted: 0 })
}
