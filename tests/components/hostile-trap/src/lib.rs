//! hostile-trap: panics
//!
//! Cycle 1 succeeds with state `{"n": 1}`, so core holds a good state; every later cycle
//! misbehaves (see `misbehave`). Part of the hostile-module suite (tests/tests/sandbox.rs).

use nthlayer_sdk::{CycleInput, CycleOutput, Host};

hostile_common::hostile_module!("hostile-trap", 1, "panics", misbehave);

/// Panics (wasm32: panic = abort, i.e. an `unreachable` trap after the message on stderr).
fn misbehave(_host: &dyn Host, _input: &CycleInput, n: u64) -> Result<CycleOutput, String> {
    panic!("hostile-trap panics on purpose in cycle {}", n + 1);
}
