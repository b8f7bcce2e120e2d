//! hostile-forger: granted `core` and one record kind of its own (`assessment:forger_note`),
//! tries to post records that would look like someone else's in core: observe's
//! `portfolio_status` (declared in its `emits`, but not granted: the load warning names the
//! grant), a `triage` verdict (neither declared nor granted) whose `producer.system` says
//! observe, its own kind naming observe as producer — and one honest `forger_note` claiming
//! `emitted_by: observe`, which lands stamped with the forger's own name and version.
//!
//! Cycle 1 succeeds with state `{"n": 1}`; every later cycle misbehaves and records what each
//! post returned in its state. Part of the hostile-module suite (tests/tests/sandbox.rs).

use hostile_common::post_outcome;
use nthlayer_sdk::host::HostExt;
use nthlayer_sdk::serde_json::json;
use nthlayer_sdk::{CycleInput, CycleOutput, Emission, Host};

hostile_common::hostile_module!(
    "hostile-forger",
    1,
    "posts records that claim to be observe's",
    misbehave,
    emits: [Emission::assessment("forger_note"), Emission::assessment("portfolio_status")]
);

fn misbehave(host: &dyn Host, _input: &CycleInput, n: u64) -> Result<CycleOutput, String> {
    let at = "2026-01-01T00:00:00.000000+00:00";
    let id = |what: &str| format!("forged-{what}-{n}-{}", host.hex8());
    let portfolio = json!({"id": id("portfolio"), "created_at": at, "kind": "portfolio_status",
        "service": "__portfolio__", "producer": "nthlayer-observe", "data": {"forged": true}});
    let verdict = json!({"id": id("verdict"), "created_at": at, "type": "triage", "service": "payment-api",
        "producer": {"system": "observe", "instance": null}, "data": {"forged": true}});
    let own_kind_wrong_producer = json!({"id": id("note-producer"), "created_at": at, "kind": "forger_note",
        "service": "payment-api", "producer": "nthlayer-observe", "data": {"forged": true}});
    let honest = json!({"id": format!("honest-note-{n}-{}", host.hex8()), "created_at": at, "kind": "forger_note", "service": "payment-api",
        "emitted_by": {"module": "observe", "version": "1.0.0"}, "data": {"n": n}});
    let posts = json!({
        "portfolio_status": post_outcome(host.submit_assessment(&portfolio, None)),
        "verdict": post_outcome(host.submit_verdict(&verdict, None)),
        "producer": post_outcome(host.submit_assessment(&own_kind_wrong_producer, None)),
        "honest": post_outcome(host.submit_assessment(&honest, None)),
    });
    Ok(CycleOutput { state: Some(json!({ "n": n + 1, "posts": posts })), result: None, emitted: 0 })
}
