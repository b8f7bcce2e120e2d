//! Every hostile module of the sandbox suite (tests/tests/sandbox.rs) behaves on its first
//! cycle — so core holds a good state `{"n": 1}` — and misbehaves on every later one. This
//! macro is that skeleton; each crate supplies only its name, summary and `misbehave`.

pub use nthlayer_sdk;

use nthlayer_sdk::serde_json::{json, Value};
use nthlayer_sdk::HostError;

/// What one `submit-*` of a record-posting hostile module returned, as its state records it
/// for the suite to read: accepted (with the id), denied (with the host's text), or failed.
pub fn post_outcome(r: Result<String, HostError>) -> Value {
    match r {
        Ok(id) => json!({ "accepted": true, "id": id }),
        Err(HostError::Denied(m)) => json!({ "accepted": false, "denied": true, "error": m }),
        Err(e) => json!({ "accepted": false, "denied": false, "error": e.to_string() }),
    }
}

/// `hostile_module!("hostile-loop", 1, "infinite loop", misbehave)` (name, interval in
/// seconds, summary, misbehaviour) where
/// `fn misbehave(host: &dyn Host, input: &CycleInput, n: u64) -> Result<CycleOutput, String>`;
/// `…, misbehave, emits: [Emission::assessment("x")]` declares what it emits (none without).
#[macro_export]
macro_rules! hostile_module {
    ($name:literal, $interval:literal, $summary:literal, $misbehave:path) => {
        $crate::hostile_module!($name, $interval, $summary, $misbehave, emits: []);
    };
    ($name:literal, $interval:literal, $summary:literal, $misbehave:path, emits: [$($emits:expr),* $(,)?]) => {
        pub struct Hostile;

        impl $crate::nthlayer_sdk::Module for Hostile {
            fn describe() -> $crate::nthlayer_sdk::ModuleInfo {
                $crate::nthlayer_sdk::ModuleInfo {
                    name: $name.into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                    tasks: vec![$crate::nthlayer_sdk::Task::new($name, $interval, $summary)],
                    needs: vec![],
                    emits: vec![$($emits),*],
                }
            }

            fn run_cycle(
                host: &dyn $crate::nthlayer_sdk::Host,
                input: $crate::nthlayer_sdk::CycleInput,
            ) -> Result<$crate::nthlayer_sdk::CycleOutput, String> {
                use $crate::nthlayer_sdk::serde_json::{json, Value};
                let n = input.state.as_ref().and_then(|s| s.get("n")).and_then(Value::as_u64).unwrap_or(0);
                if n == 0 {
                    host.log($crate::nthlayer_sdk::Level::Info, "first cycle: behaving", &[]);
                    return Ok($crate::nthlayer_sdk::CycleOutput { state: Some(json!({ "n": 1 })), result: None, emitted: 0 });
                }
                host.log($crate::nthlayer_sdk::Level::Info, "misbehaving", &[("n", &n.to_string())]);
                $misbehave(host, &input, n)
            }
        }

        $crate::nthlayer_sdk::export_module!(Hostile);
    };
}
