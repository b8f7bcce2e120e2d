//! hostile-alloc: unbounded memory growth
//!
//! Cycle 1 succeeds with state `{"n": 1}`, so core holds a good state; every later cycle
//! misbehaves (see `misbehave`). Part of the hostile-module suite (tests/tests/sandbox.rs).

use nthlayer_sdk::{CycleInput, CycleOutput, Host};

hostile_common::hostile_module!("hostile-alloc", 1, "unbounded memory growth", misbehave);

/// Allocates (and touches) 1 MiB after 1 MiB, forever.
fn misbehave(_host: &dyn Host, _input: &CycleInput, n: u64) -> Result<CycleOutput, String> {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        hoard.push(vec![n as u8; 1 << 20]);
        std::hint::black_box(&hoard);
    }
}
