//! hostile-flood: granted `core` and `assessment:flood_note`, submits 100,000 small records
//! in one cycle and ignores every error, then returns its state as if all went well. The
//! host must stop holding at the module's `max_records`, fail the cycle naming module, task
//! and limit, and commit none of it, so one module cannot take the host's memory.
//!
//! Cycle 1 succeeds with state `{"n": 1}`; every later cycle floods. Part of the
//! hostile-module suite (tests/tests/sandbox.rs).

use nthlayer_sdk::host::HostExt;
use nthlayer_sdk::serde_json::json;
use nthlayer_sdk::{CycleInput, CycleOutput, Emission, Host};

const RECORDS: u64 = 100_000;

hostile_common::hostile_module!(
    "hostile-flood",
    1,
    "submits 100,000 records in one cycle",
    misbehave,
    emits: [Emission::assessment("flood_note")]
);

fn misbehave(host: &dyn Host, _input: &CycleInput, n: u64) -> Result<CycleOutput, String> {
    let (mut taken, mut refused, mut first_error) = (0u64, 0u64, None);
    let run = host.hex8();
    for i in 0..RECORDS {
        let r = json!({"id": format!("flood-{n}-{i}-{run}"), "created_at": "2026-01-01T00:00:00.000000+00:00",
            "kind": "flood_note", "service": "flood", "data": {"i": i}});
        match host.submit_assessment(&r, None) {
            Ok(_) => taken += 1,
            Err(e) => {
                refused += 1;
                first_error.get_or_insert_with(|| format!("{e:?}"));
            }
        }
    }
    let state = json!({"n": n + 1, "taken": taken, "refused": refused, "first_error": first_error});
    Ok(CycleOutput { state: Some(state), result: None, emitted: 0 })
}
