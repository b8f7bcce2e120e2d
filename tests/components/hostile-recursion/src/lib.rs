//! hostile-recursion: deep recursion
//!
//! Cycle 1 succeeds with state `{"n": 1}`, so core holds a good state; every later cycle
//! misbehaves (see `misbehave`). Part of the hostile-module suite (tests/tests/sandbox.rs).

use nthlayer_sdk::serde_json::json;
use nthlayer_sdk::{CycleInput, CycleOutput, Host};

hostile_common::hostile_module!("hostile-recursion", 1, "deep recursion", misbehave);

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
