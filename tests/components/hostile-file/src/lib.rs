//! hostile-file: opens /etc/passwd through std::fs
//!
//! Cycle 1 succeeds with state `{"n": 1}`, so core holds a good state; every later cycle
//! misbehaves (see `misbehave`). Part of the hostile-module suite (tests/tests/sandbox.rs).

use nthlayer_sdk::serde_json::{json, Value};
use nthlayer_sdk::{export_module, CycleInput, CycleOutput, Host, Level, Module, ModuleInfo, Task};

const NAME: &str = "hostile-file";

pub struct Hostile;

impl Module for Hostile {
    fn describe() -> ModuleInfo {
        ModuleInfo {
            name: NAME.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            tasks: vec![Task::new(NAME, 1, "opens /etc/passwd through std::fs")],
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
