//! hostile-bigstate: returns 100 MB of state
//!
//! Cycle 1 succeeds with state `{"n": 1}`, so core holds a good state; every later cycle
//! misbehaves (see `misbehave`). Part of the hostile-module suite (tests/tests/sandbox.rs).

use nthlayer_sdk::serde_json::json;
use nthlayer_sdk::{CycleInput, CycleOutput, Host};

hostile_common::hostile_module!("hostile-bigstate", 2, "returns 100 MB of state", misbehave);

/// Returns 100 MB of state.
fn misbehave(_host: &dyn Host, _input: &CycleInput, n: u64) -> Result<CycleOutput, String> {
    let big = "x".repeat(100_000_000);
    Ok(CycleOutput { state: Some(json!({ "n": n + 1, "blob": big })), result: None, emitted: 0 })
}
