//! hostile-socket: connects to nthlayer-core with std::net
//!
//! Cycle 1 succeeds with state `{"n": 1}`, so core holds a good state; every later cycle
//! misbehaves (see `misbehave`). Part of the hostile-module suite (tests/tests/sandbox.rs).

use nthlayer_sdk::serde_json::{json, Value};
use nthlayer_sdk::{export_module, CycleInput, CycleOutput, Host, Level, Module, ModuleInfo, Task};

const NAME: &str = "hostile-socket";

pub struct Hostile;

impl Module for Hostile {
    fn describe() -> ModuleInfo {
        ModuleInfo {
            name: NAME.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            tasks: vec![Task::new(NAME, 1, "connects to nthlayer-core with std::net")],
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

/// The port to attack: trailing digits of the instance id ("sandbox-<core port>"), else 8000.
fn target_port(input: &CycleInput) -> u16 {
    let id = input.config_str("instance_id").unwrap_or_default();
    let digits: String = id.chars().rev().take_while(char::is_ascii_digit).collect();
    digits.chars().rev().collect::<String>().parse().unwrap_or(8000)
}

/// Tries a TCP connection to nthlayer-core on loopback with std::net. Must fail inside the
/// guest (the host grants no sockets); the outcome goes to the log and the state.
fn misbehave(host: &dyn Host, input: &CycleInput, n: u64) -> Result<CycleOutput, String> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], target_port(input)));
    let outcome = match std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_millis(500)) {
        Ok(_) => json!({ "denied": false, "addr": addr.to_string() }),
        Err(e) => {
            json!({ "denied": true, "addr": addr.to_string(), "kind": format!("{:?}", e.kind()), "error": e.to_string() })
        }
    };
    let denied = outcome["denied"] == json!(true);
    let level = if denied { Level::Info } else { Level::Error };
    host.log(level, "tcp connect attempt", &[("denied", &denied.to_string()), ("outcome", &outcome.to_string())]);
    Ok(CycleOutput {
        state: Some(json!({ "n": n + 1, "denied": denied, "connect": outcome })),
        result: None,
        emitted: 0,
    })
}
