//! hostile-stdout: prints 10 MB to stdout
//!
//! Cycle 1 succeeds with state `{"n": 1}`, so core holds a good state; every later cycle
//! misbehaves (see `misbehave`). Part of the hostile-module suite (tests/tests/sandbox.rs).

use nthlayer_sdk::serde_json::json;
use nthlayer_sdk::{CycleInput, CycleOutput, Host};

hostile_common::hostile_module!("hostile-stdout", 2, "prints 10 MB to stdout", misbehave);

/// Prints 10 MB to stdout with print! (Rust's print! panics if a write fails).
fn misbehave(_host: &dyn Host, _input: &CycleInput, n: u64) -> Result<CycleOutput, String> {
    let line = format!("{}\n", "y".repeat(99));
    print!("{}", line.repeat(100_000));
    eprintln!("hostile-stdout wrote 10 MB to stdout in cycle {}", n + 1);
    Ok(CycleOutput { state: Some(json!({ "n": n + 1 })), result: None, emitted: 0 })
}
