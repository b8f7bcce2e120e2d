//! batcher: contract 0.4.0's batched calls, through the SDK, against the real core and
//! Prometheus (tests/tests/contract.rs).
//!
//! Task `batcher` (every 2 s) makes, in each cycle:
//! - one `submit_batch` of four records: `batch_ok` 1, `batch_denied` (declared, never
//!   granted by the test), the verdict `batch_verdict`, `batch_ok` 2;
//! - one `prom_query_range_batch` (`vector(7)`, `vector(8)`) and one `prom_query_at_batch`
//!   (`time()` at 1000 and at 2000, so each query's own time shows in its answer);
//! - one raw `query-range-batch` of 257 queries, past the host's cap (the SDK would split it);
//!
//! and keeps what each answered as state: `{"n", "submits": ["ok <id>" | "err <text>"],
//! "ranges": [first value], "times": [scalar], "over_cap": "<first error>"}`.
//!
//! Task `batcher.flood` (every 2 s) submits `FLOOD` `batch_flood` records in one batch:
//! more than the test's `max_records`, so its cycle fails and none of them reaches core.

use nthlayer_sdk::serde_json::{json, Value};
use nthlayer_sdk::{
    export_module, CycleInput, CycleOutput, Emission, Host, InstantQuery, Module, ModuleInfo, RangeQuery, Submission,
    Task,
};

/// Records the flood task submits in one batch.
const FLOOD: usize = 8;

pub struct Batcher;

fn record(host: &dyn Host, kind: &str, n: u64, i: usize) -> Value {
    json!({
        "id": format!("asm-batcher-{kind}-{}-{n}-{i}", (host.now() * 1e6) as u64),
        "created_at": "2026-01-01T00:00:00.000000+00:00",
        "kind": kind,
        "service": "batcher",
        "data": {"n": n, "i": i},
    })
}

fn verdict(host: &dyn Host, n: u64) -> Value {
    json!({
        "id": format!("vrd-batcher-{}-{n}", (host.now() * 1e6) as u64),
        "created_at": "2026-01-01T00:00:00.000000+00:00",
        "type": "batch_verdict",
        "service": "batcher",
        "data": {"n": n, "i": 2},
    })
}

/// The first sample's value of an instant (scalar) or range (matrix) answer.
fn first(v: &Value) -> Value {
    match v["resultType"].as_str() {
        Some("scalar") => v["result"][1].clone(),
        Some("matrix") => v["result"][0]["values"][0][1].clone(),
        _ => Value::Null,
    }
}

/// A raw 0.4.0 `query-range-batch` of `n` queries, so the host (not the SDK) meets the cap.
#[cfg(target_arch = "wasm32")]
fn raw_range_batch(n: usize) -> String {
    use nthlayer_sdk::bindings::nthlayer::worker::prometheus;
    let q = prometheus::RangeQuery { promql: "vector(1)".into(), start: 0.0, end: 60.0, step: "60".into() };
    let answers = prometheus::query_range_batch(&vec![q; n]);
    match answers.first() {
        Some(Err(e)) => format!("{e:?}"),
        other => format!("not refused: {} answers, first {other:?}", answers.len()),
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn raw_range_batch(_: usize) -> String {
    String::new()
}

impl Module for Batcher {
    fn describe() -> ModuleInfo {
        ModuleInfo {
            name: "batcher".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            tasks: vec![
                Task::new("batcher", 2, "batched submits and queries"),
                Task::new("batcher.flood", 2, "one batch past max_records"),
            ],
            needs: vec!["core".into(), "prometheus".into()],
            emits: vec![
                Emission::assessment("batch_ok"),
                Emission::assessment("batch_denied"),
                Emission::assessment("batch_flood"),
                Emission::verdict("batch_verdict"),
            ],
        }
    }

    fn run_cycle(host: &dyn Host, input: CycleInput) -> Result<CycleOutput, String> {
        let n = input.state.as_ref().and_then(|s| s.get("n")).and_then(Value::as_u64).unwrap_or(0) + 1;
        if input.task == "batcher.flood" {
            let batch: Vec<Submission> =
                (0..FLOOD).map(|i| Submission::assessment(record(host, "batch_flood", n, i), None)).collect();
            let answers = host.submit_batch(&batch);
            let refused = answers.iter().filter(|a| a.is_err()).count();
            return Ok(CycleOutput { state: Some(json!({"n": n, "refused": refused})), result: None, emitted: 0 });
        }
        let batch = vec![
            Submission::assessment(record(host, "batch_ok", n, 0), None),
            Submission::assessment(record(host, "batch_denied", n, 1), None),
            Submission::verdict(verdict(host, n), None),
            Submission::assessment(record(host, "batch_ok", n, 3), None),
        ];
        let submits: Vec<String> = host
            .submit_batch(&batch)
            .into_iter()
            .map(|a| match a {
                Ok(id) => format!("ok {id}"),
                Err(e) => format!("err {e}"),
            })
            .collect();
        let range = |q: &str| RangeQuery { promql: q.into(), start: 1000.0, end: 1060.0, step: "60".into() };
        let ranges: Vec<Value> = host
            .prom_query_range_batch(&[range("vector(7)"), range("vector(8)")])
            .into_iter()
            .map(|a| a.map_or_else(|e| json!(e.to_string()), |v| first(&v)))
            .collect();
        let at = |t: f64| InstantQuery { promql: "time()".into(), at: Some(t) };
        let times: Vec<Value> = host
            .prom_query_at_batch(&[at(1000.0), at(2000.0)])
            .into_iter()
            .map(|a| a.map_or_else(|e| json!(e.to_string()), |v| first(&v)))
            .collect();
        let state = json!({"n": n, "submits": submits, "ranges": ranges, "times": times, "over_cap": raw_range_batch(257)});
        let emitted = submits.iter().filter(|s| s.starts_with("ok")).count() as u32;
        Ok(CycleOutput { state: Some(state), result: None, emitted })
    }
}

export_module!(Batcher);
