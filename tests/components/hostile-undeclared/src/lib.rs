//! hostile-undeclared: contract 0.3.0, declares one record kind (`assessment:note_declared`)
//! and is granted two (`--grant hostile-undeclared=core,assessment:note_declared,
//! assessment:note_undeclared`), then posts both. The grant is wider than the declaration;
//! the host must forward only the declared kind and refuse the other `denied`, naming the
//! declaration, so nothing of `note_undeclared` reaches core.
//!
//! Cycle 1 succeeds with state `{"n": 1}`; every later cycle posts one of each and records
//! what each post returned in its state. Part of the hostile-module suite
//! (tests/tests/sandbox.rs).

use hostile_common::post_outcome;
use nthlayer_sdk::host::HostExt;
use nthlayer_sdk::serde_json::json;
use nthlayer_sdk::{CycleInput, CycleOutput, Emission, Host};

hostile_common::hostile_module!(
    "hostile-undeclared",
    1,
    "posts a kind it was granted but did not declare",
    misbehave,
    emits: [Emission::assessment("note_declared")]
);

fn misbehave(host: &dyn Host, _input: &CycleInput, n: u64) -> Result<CycleOutput, String> {
    let at = "2026-01-01T00:00:00.000000+00:00";
    let record = |kind: &str| {
        json!({"id": format!("{kind}-{n}-{}", host.hex8()), "created_at": at, "kind": kind, "service": "payment-api",
               "data": {"n": n}})
    };
    let posts = json!({
        "declared": post_outcome(host.submit_assessment(&record("note_declared"), None)),
        "undeclared": post_outcome(host.submit_assessment(&record("note_undeclared"), None)),
    });
    Ok(CycleOutput { state: Some(json!({ "n": n + 1, "posts": posts })), result: None, emitted: 0 })
}
