//! The versioned contract end to end, on one real `nthlayer-host serve` against the real
//! nthlayer-core and a real Prometheus (docs/CONTRACT.md):
//! - `contract-v010`, built with raw wit-bindgen from the frozen `wit/nthlayer-worker@0.1.0/`,
//!   loads and runs on this host: its log, prometheus and core calls go through the 0.1.0
//!   layer to the newest imports;
//! - `contract-v020`, built the same way from the frozen `wit/nthlayer-worker@0.2.0/`, has an
//!   hourly task woken by every `contract_probe` (contract-v010's records) and posts a
//!   `contract_wake` naming the probe: a 0.2.0 wake subscription works, and a 0.2.0 module
//!   (which cannot declare emissions) emits what it is granted;
//! - event wake and declared emissions (0.2.0/0.3.0, through the SDK's 0.4.0): `wake-emitter` posts a `quality_breach` verdict every 3 s, "high"
//!   and "low" in turn; `wake-subscriber` has a one-hour interval and is woken by "high"
//!   ones only. Each of its cycles posts a snapshot naming the newest breach and the time
//!   from that breach's creation to the snapshot (the wake latency, printed, not asserted);
//! - `contract-v030`, built the same way from the frozen `wit/nthlayer-worker@0.3.0/`,
//!   declares one emission: what it declared lands, what it was only granted is refused;
//! - batched calls (0.4.0, the SDK's): `batcher` submits four records in one call (one of a
//!   kind not granted: only that entry errs, the others land under their own ids), runs
//!   range and per-time query batches, and one raw query batch past the cap (a clear error);
//!   its `batcher.flood` task submits one batch past `max_records` (the cycle fails naming
//!   module, task and limit, and none of it reaches core);
//! - `ticker` (SDK, 0.4.0, declares it emits nothing) keeps running;
//! - the heartbeat lists each component's contract and effective emissions.
//!
//! Needs `target/debug/nthlayer-host` and `scripts/build-modules` output.

use std::time::Duration;

use nthlayer_tests::core::{Assessment, Core};
use nthlayer_tests::host::HostProcess;
use nthlayer_tests::prometheus::{PromOpts, Prometheus};
use nthlayer_tests::util::fixtures_dir;
use nthlayer_tests::wait::wait_until;
use nthlayer_tests::{components, Component};
use serde_json::{json, Value};

/// Loading (first start compiles the components) plus a few cycles.
const START: Duration = Duration::from_secs(90);
/// The subscriber must have been woken this many times (its interval is an hour).
const WOKEN: usize = 3;

fn component(c: Component) -> String {
    c.built().display().to_string()
}

fn events(log: &str) -> Vec<Value> {
    log.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()).collect()
}

fn f<'a>(e: &'a Value, key: &str) -> &'a str {
    e["fields"][key].as_str().unwrap_or_default()
}

fn persisted(core: &Core, task: &str) -> Option<Value> {
    let s = core.component_state(task)?.get("hysteresis_state")?.get("state")?.clone();
    (!s.is_null()).then_some(s)
}

/// The subscriber's snapshots, oldest first.
fn snapshots(core: &Core) -> Vec<Assessment> {
    let mut s = core.assessments(Some("wake-svc"), Some("correlation_snapshot"));
    s.sort_by_key(|a| a.data["n"].as_u64());
    s
}

#[test]
fn frozen_0_1_0_0_2_0_and_0_3_0_modules_run_beside_0_4_0_ones_and_wakes_and_batches_work() {
    let core = Core::start(&fixtures_dir().join("manifests"));
    let prom = Prometheus::start(PromOpts::default());
    let files = [
        components::CONTRACT_V010,
        components::CONTRACT_V020,
        components::WAKE_EMITTER,
        components::WAKE_SUBSCRIBER,
        components::TICKER,
        components::CONTRACT_V030,
        components::BATCHER,
    ]
    .map(component);
    let files: Vec<&str> = files.iter().map(String::as_str).collect();
    let extra = [
        "--log-format",
        "json",
        "--grant",
        // Strangers' code emits only the record kinds granted here (host/src/policy/emissions.rs).
        "contract-v010=core,prometheus,assessment:contract_probe",
        "--grant",
        "contract-v020=core,assessment:contract_wake",
        "--grant",
        "wake-emitter=core,verdict:quality_breach",
        "--grant",
        "wake-subscriber=core,assessment:correlation_snapshot",
        "--grant",
        // Granted but not declared by the 0.3.0 module: refused all the same.
        "contract-v030=core,assessment:contract_v030,assessment:contract_undeclared",
        "--grant",
        // Not `batch_denied`, which batcher declares: that entry of its batch is refused.
        "batcher=core,prometheus,assessment:batch_ok,assessment:batch_flood,verdict:batch_verdict",
        "--limits",
        r#"batcher={"max_records":6}"#,
    ];
    let mut host = HostProcess::serve_modules(&core.url(), &prom.url(), "contract-test", &files, &extra);

    // 0.1.0: two cycles that queried Prometheus, submitted, and read the previous cycle's
    // record back (records reach core when their cycle commits).
    let v010 = wait_until("contract-v010 ran two full cycles", START, || {
        assert!(host.is_running(), "host exited");
        persisted(&core, "contract-v010").filter(|s| s["n"].as_u64() >= Some(2))
    });
    assert_eq!(v010["prom"], json!("42"), "prometheus answer through the 0.1.0 layer: {v010}");
    assert_eq!(v010["seen"], json!(true), "core query through the 0.1.0 layer did not return the submitted record");
    let probes = core.assessments(Some("contract-v010"), Some("contract_probe"));
    assert!(probes.len() >= 2 && probes.iter().all(|a| a.data["contract"] == "0.1.0"), "{probes:?}");

    // 0.2.0 wake: the subscriber (interval 3600 s) runs again and again, each time because of
    // a "high" breach.
    let snaps = wait_until("the subscriber was woken repeatedly", START, || {
        assert!(host.is_running(), "host exited");
        let s = snapshots(&core);
        (s.len() > WOKEN).then_some(s)
    });
    let ev = events(&host.log());
    assert!(
        ev.iter().any(|e| e["target"] == "nthlayer_host::module"
            && f(e, "module") == "contract-v010"
            && f(e, "message").starts_with("v010 cycle")),
        "the 0.1.0 module's log lines did not reach the host log"
    );
    let wakes: Vec<&Value> = ev
        .iter()
        .filter(|e| f(e, "message") == "woken by a submitted record" && f(e, "task") == "wake-subscriber")
        .collect();
    assert!(wakes.len() >= WOKEN, "host logged {} wakes of wake-subscriber", wakes.len());
    for w in &wakes {
        assert!(f(w, "by").starts_with("wake-emitter quality_breach vrd-wake-"), "woken by {w}");
    }
    assert!(
        !ev.iter().any(|e| f(e, "message") == "woken by a submitted record" && f(e, "task") == "wake-emitter"),
        "the emitter must not be woken (it subscribes to nothing, and never by its own records)"
    );

    // Every woken snapshot (n >= 2; n = 1 is the start-up cycle) names a "high" breach, and
    // there are no more of them than "high" breaches: "low" ones wake nobody.
    let woken: Vec<&Assessment> = snaps.iter().filter(|a| a.data["n"].as_u64() >= Some(2)).collect();
    for s in &woken {
        assert_eq!(s.data["trigger_severity"], json!("high"), "snapshot {} after a low breach: {}", s.id, s.data);
    }
    let breaches = core.verdicts(Some("wake-svc"), Some("quality_breach"));
    let high = breaches.iter().filter(|v| v.extra.get("data").map(|d| &d["severity"]) == Some(&json!("high"))).count();
    assert!(woken.len() <= high, "{} woken snapshots but only {high} high breaches", woken.len());
    assert!(breaches.len() > high, "no low breach was posted during the test: {breaches:?}");

    let mut lat: Vec<f64> = woken.iter().filter_map(|s| s.data["latency_ms"].as_f64()).collect();
    lat.sort_by(f64::total_cmp);
    let after: Vec<u64> = wakes.iter().filter_map(|w| w["fields"]["after_ms"].as_u64()).collect();
    eprintln!(
        "wake latency, breach created -> snapshot created (ms): median {} max {} samples {lat:?}; \
         wake -> cycle start (ms): {after:?}",
        lat.get(lat.len() / 2).copied().unwrap_or(f64::NAN),
        lat.last().copied().unwrap_or(f64::NAN)
    );

    // 0.2.0 wake: contract-v020 (interval 3600 s) ran again and again, each time because a
    // contract_probe from the 0.1.0 module was accepted, and its own records landed.
    let v020 = wait_until("contract-v020 was woken twice", START, || {
        assert!(host.is_running(), "host exited");
        persisted(&core, "contract-v020").filter(|s| s["n"].as_u64() >= Some(3))
    });
    assert!(v020["probe"].as_str().is_some_and(|p| p.starts_with("asm-contract-v010-")), "{v020}");
    let ev = events(&host.log());
    let v020_wakes: Vec<&Value> = ev
        .iter()
        .filter(|e| f(e, "message") == "woken by a submitted record" && f(e, "task") == "contract-v020")
        .collect();
    assert!(v020_wakes.len() >= 2, "host logged {} wakes of contract-v020", v020_wakes.len());
    assert!(v020_wakes.iter().all(|w| f(w, "by").starts_with("contract-v010 contract_probe ")), "{v020_wakes:?}");
    let wakes_in_core = core.assessments(Some("contract-v020"), Some("contract_wake"));
    assert!(wakes_in_core.len() >= 2, "{wakes_in_core:?}");
    assert!(wakes_in_core.iter().all(|a| a.extra["emitted_by"]["module"] == "contract-v020"), "{wakes_in_core:?}");

    // 0.3.0, frozen: its declaration crosses the 0.3.0 layer, so what it declared lands and
    // what it only was granted is refused.
    let v030 = wait_until("contract-v030 ran a cycle", START, || {
        assert!(host.is_running(), "host exited");
        persisted(&core, "contract-v030").filter(|s| s["n"].as_u64() >= Some(2))
    });
    assert!(v030["id"].as_str().is_some_and(|i| i.starts_with("asm-contract-v030-contract_v030-")), "{v030}");
    assert!(v030["undeclared"].as_str().is_some_and(|e| e.contains("did not declare it")), "{v030}");
    let landed = core.assessments(Some("contract-v030"), Some("contract_v030"));
    assert!(!landed.is_empty() && landed.iter().all(|a| a.data["contract"] == "0.3.0"), "{landed:?}");
    assert!(core.assessments(Some("contract-v030"), Some("contract_undeclared")).is_empty());

    // 0.4.0 batches: each record of one submit-batch answered on its own (the one kind not
    // granted refused, the others landed under their own ids), range and per-time query
    // batches answered in order, a query batch past the cap refused with its reason.
    let b = wait_until("batcher ran a cycle", START, || {
        assert!(host.is_running(), "host exited");
        persisted(&core, "batcher").filter(|s| s["n"].as_u64() >= Some(2))
    });
    let submits: Vec<&str> = b["submits"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert_eq!(submits.len(), 4, "{b}");
    assert!(
        submits[0].starts_with("ok asm-batcher-batch_ok-") && submits[3].starts_with("ok asm-batcher-batch_ok-"),
        "{b}"
    );
    assert!(submits[1].starts_with("err denied: ") && submits[1].contains("\"batch_denied\""), "{b}");
    assert!(submits[2].starts_with("ok vrd-batcher-"), "{b}");
    assert_ne!(submits[0], submits[3], "each record has its own id");
    assert_eq!((&b["ranges"], &b["times"]), (&json!(["7", "8"]), &json!(["1000", "2000"])), "{b}");
    assert!(
        b["over_cap"].as_str().is_some_and(|e| e.contains("query batch: 257 entries exceed the cap of 256")),
        "{b}"
    );
    let ok_ids: Vec<String> = core.assessments(Some("batcher"), Some("batch_ok")).into_iter().map(|a| a.id).collect();
    for s in [submits[0], submits[3]] {
        assert!(ok_ids.iter().any(|id| *id == s["ok ".len()..]), "{s} not in core: {ok_ids:?}");
    }
    let vid = &submits[2]["ok ".len()..];
    assert!(core.verdicts(Some("batcher"), Some("batch_verdict")).iter().any(|v| v.id == vid), "{vid} not in core");
    assert!(core.assessments(Some("batcher"), Some("batch_denied")).is_empty());
    // A batch past max_records fails its cycle naming module, task and limit; none of it lands.
    let flood = wait_until("batcher.flood failed a cycle", START, || {
        let ev = events(&host.log());
        let e: Vec<String> = ev
            .iter()
            .filter(|e| f(e, "message").starts_with("cycle failed") && f(e, "task") == "batcher.flood")
            .map(|e| f(e, "error").to_string())
            .collect();
        (!e.is_empty()).then_some(e)
    });
    let want = r#"module "batcher" task "batcher.flood" submitted more than 6 records in one cycle"#;
    assert!(flood.iter().all(|e| e.contains(want) && e.contains("max_records")), "{flood:?}");
    assert!(core.assessments(Some("batcher"), Some("batch_flood")).is_empty(), "a failed cycle's records reached core");

    // Every contract in one host, as the heartbeat reports them.
    let want = [
        ("contract-v010", "0.1.0", json!(["assessment:contract_probe"])),
        ("contract-v020", "0.2.0", json!(["assessment:contract_wake"])),
        ("wake-emitter", "0.4.0", json!(["verdict:quality_breach"])),
        ("wake-subscriber", "0.4.0", json!(["assessment:correlation_snapshot"])),
        ("ticker", "0.4.0", json!([])),
        ("contract-v030", "0.3.0", json!(["assessment:contract_v030"])),
    ];
    let components = wait_until("a heartbeat lists every component", START, || {
        let hb = core.heartbeat("workers", "contract-test")?;
        let c = hb.state.get("components")?.as_array()?.clone();
        (c.len() >= want.len()).then_some(c)
    });
    for (name, contract, emits) in want {
        let c = components.iter().find(|c| c["name"] == name).unwrap_or_else(|| panic!("{name} in {components:?}"));
        assert_eq!((&c["contract"], &c["emits"]), (&json!(contract), &emits), "{c}");
    }
    let c = components.iter().find(|c| c["name"] == "batcher").unwrap_or_else(|| panic!("batcher in {components:?}"));
    assert_eq!(c["contract"], "0.4.0", "{c}");

    // The SDK-built ticker, now on 0.4.0, still runs.
    assert!(persisted(&core, "ticker").is_some_and(|s| s["n"].as_u64() >= Some(2)), "ticker did not keep running");
    host.sigterm();
    assert!(host.wait_with_timeout(Duration::from_secs(20)).is_some_and(|s| s.success()), "host did not stop cleanly");
}
