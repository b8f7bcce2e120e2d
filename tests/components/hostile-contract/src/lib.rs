//! hostile-contract: hands the host oversize values through the imports (granted
//! `prometheus`): a 5 MB PromQL, a raw batch of 257 queries, a huge log field — and one long but
//! legal query (~100 KB), which must be answered (the host sends it as a POST form body).
//!
//! Cycle 1 succeeds with state `{"n": 1}`; every later cycle misbehaves and records what
//! each call returned in its state (the cycle itself succeeds: the refusals are contained
//! in the import). Part of the hostile-module suite (tests/tests/sandbox.rs).

use nthlayer_sdk::serde_json::{json, Value};
use nthlayer_sdk::{CycleInput, CycleOutput, Host, HostError, Level};

hostile_common::hostile_module!("hostile-contract", 1, "oversize PromQL, batch and log fields", misbehave);

fn outcome(r: Result<Value, HostError>) -> Value {
    match r {
        Ok(v) => json!({ "ok": true, "result": v.get("result").cloned().unwrap_or(Value::Null) }),
        Err(e) => json!({ "ok": false, "error": e.to_string() }),
    }
}

/// A legal PromQL of ~100 KB: `vector(1)` plus 100 `+ vector(0)`, then a comment padding it
/// out (Prometheus' parse time grows quadratically with the number of binary operators, so
/// the length is in the comment, not in 8,000 terms).
fn long_query() -> String {
    let mut q = String::from("vector(1)");
    for _ in 0..100 {
        q.push_str(" + vector(0)");
    }
    q.push_str(" # ");
    q.push_str(&"x".repeat(100_000));
    q
}

/// The errors of one raw `query-batch` call: the SDK would split a list past the host's cap,
/// so the host would never see it whole.
#[cfg(target_arch = "wasm32")]
fn raw_batch(queries: &[String]) -> Vec<String> {
    use nthlayer_sdk::bindings::nthlayer::worker::prometheus;
    let answers = prometheus::query_batch(queries, None);
    answers.into_iter().filter_map(|r| r.err().map(|e| HostError::from(e).to_string())).collect()
}

#[cfg(not(target_arch = "wasm32"))]
fn raw_batch(_: &[String]) -> Vec<String> {
    Vec::new()
}

fn misbehave(host: &dyn Host, _input: &CycleInput, n: u64) -> Result<CycleOutput, String> {
    let huge = "x".repeat(5_000_000);
    let batch: Vec<String> = (0..257).map(|_| "vector(1)".to_string()).collect();
    let long = long_query();
    let batch_errors = raw_batch(&batch);
    let calls = json!({
        "huge_query": outcome(host.prom_query(&huge, None)),
        "huge_range": outcome(host.prom_query_range(&huge, 0.0, 60.0, "15s")),
        "batch": { "errors": batch_errors.len(), "first": batch_errors.first() },
        "long_query": { "bytes": long.len(), "outcome": outcome(host.prom_query(&long, None)) },
    });
    // A 1 MB field and a 1 MB message: the host keeps the first 4 KiB of each.
    let field = "f".repeat(1 << 20);
    host.log(Level::Info, &"m".repeat(1 << 20), &[("huge", &field)]);
    Ok(CycleOutput { state: Some(json!({ "n": n + 1, "calls": calls })), result: None, emitted: 0 })
}
