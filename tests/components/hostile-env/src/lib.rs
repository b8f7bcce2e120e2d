//! hostile-env: reads environment variables
//!
//! Cycle 1 succeeds with state `{"n": 1}`, so core holds a good state; every later cycle
//! misbehaves (see `misbehave`). Part of the hostile-module suite (tests/tests/sandbox.rs).

use nthlayer_sdk::serde_json::json;
use nthlayer_sdk::{CycleInput, CycleOutput, Host, Level};

hostile_common::hostile_module!("hostile-env", 1, "reads environment variables", misbehave);

/// Reads the environment, the arguments and the working directory. The host passes none of
/// them; what the guest saw goes to the log and the state.
fn misbehave(host: &dyn Host, _input: &CycleInput, n: u64) -> Result<CycleOutput, String> {
    let vars: Vec<String> = std::env::vars().map(|(k, _)| k).collect();
    let args: Vec<String> = std::env::args().collect();
    let cwd = std::env::current_dir().map(|p| p.display().to_string()).map_err(|e| e.to_string());
    // The working directory is wasi-libc's own notion ("/" when the host sets none); it opens
    // nothing, since no directory is preopened (see hostile-file).
    let empty = vars.is_empty() && args.is_empty();
    let level = if empty { Level::Info } else { Level::Error };
    host.log(
        level,
        "environment probe",
        &[("vars", &vars.len().to_string()), ("args", &args.len().to_string()), ("cwd", &format!("{cwd:?}"))],
    );
    Ok(CycleOutput {
        state: Some(json!({ "n": n + 1, "vars": vars, "args": args, "cwd": format!("{cwd:?}"), "empty": empty })),
        result: None,
        emitted: 0,
    })
}
