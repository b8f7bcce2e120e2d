//! hostile-file: opens /etc/passwd through std::fs
//!
//! Cycle 1 succeeds with state `{"n": 1}`, so core holds a good state; every later cycle
//! misbehaves (see `misbehave`). Part of the hostile-module suite (tests/tests/sandbox.rs).

use nthlayer_sdk::serde_json::json;
use nthlayer_sdk::{CycleInput, CycleOutput, Host, Level};

hostile_common::hostile_module!("hostile-file", 1, "opens /etc/passwd through std::fs", misbehave);

/// Tries to read /etc/passwd and to create a file in /tmp through std::fs. Both must fail
/// inside the guest (the host preopens nothing); the outcome goes to the log and the state.
fn misbehave(host: &dyn Host, _input: &CycleInput, n: u64) -> Result<CycleOutput, String> {
    let read = match std::fs::read_to_string("/etc/passwd") {
        Ok(text) => json!({ "denied": false, "leaked_bytes": text.len() }),
        Err(e) => json!({ "denied": true, "kind": format!("{:?}", e.kind()), "error": e.to_string() }),
    };
    let create = match std::fs::File::create("/tmp/nthlayer-hostile-file") {
        Ok(_) => json!({ "denied": false }),
        Err(e) => json!({ "denied": true, "kind": format!("{:?}", e.kind()), "error": e.to_string() }),
    };
    let denied = read["denied"] == json!(true) && create["denied"] == json!(true);
    let level = if denied { Level::Info } else { Level::Error };
    host.log(
        level,
        "file access attempt",
        &[("denied", &denied.to_string()), ("read", &read.to_string()), ("create", &create.to_string())],
    );
    Ok(CycleOutput {
        state: Some(json!({ "n": n + 1, "denied": denied, "read": read, "create": create })),
        result: None,
        emitted: 0,
    })
}
