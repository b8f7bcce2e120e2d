//! hostile-socket: connects to nthlayer-core with std::net
//!
//! Cycle 1 succeeds with state `{"n": 1}`, so core holds a good state; every later cycle
//! misbehaves (see `misbehave`). Part of the hostile-module suite (tests/tests/sandbox.rs).

use nthlayer_sdk::serde_json::json;
use nthlayer_sdk::{CycleInput, CycleOutput, Host, Level};

hostile_common::hostile_module!("hostile-socket", 1, "connects to nthlayer-core with std::net", misbehave);

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
