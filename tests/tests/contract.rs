//! The versioned contract end to end, on one real `nthlayer-host serve` against the real
//! nthlayer-core and a real Prometheus (docs/CONTRACT.md):
//! - `contract-v010`, built with raw wit-bindgen from the frozen `wit/nthlayer-worker@0.1.0/`,
//!   loads and runs on this host: its log, prometheus and core calls go through the 0.1.0
//!   layer to the newest imports;
//! - `contract-v020`, built the same way from the frozen `wit/nthlayer-worker@0.2.0/`, has an
//!   hourly task woken by every `contract_probe` (contract-v010's records) and posts a
//!   `contract_wake` naming the probe: a 0.2.0 wake subscription works, and a 0.2.0 module
//!   (which cannot declare emissions) emits what it is granted;
//! - event wake and declared emissions (0.3.0, the SDK's): `wake-emitter` posts a `quality_breach` verdict every 3 s, "high"
//!   and "low" in turn; `wake-subscriber` has a one-hour interval and is woken by "high"
//!   ones only. Each of its cycles posts a snapshot naming the newest breach and the time
//!   from that breach's creation to the snapshot (the wake latency, printed, not asserted);
//! - `ticker` (SDK, 0.3.0, declares it emits nothing) keeps running;
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
fn frozen_0_1_0_and_0_2_0_modules_run_beside_0_4_0_ones_and_wakes_reach_other_modules() {
    let core = Core::start(&fixtures_dir().join("manifests"));
    let prom = Prometheus::start(PromOpts::default());
    let files = [
        components::CONTRACT_V010,
        components::CONTRACT_V020,
        components::WAKE_EMITTER,
        components::WAKE_SUBSCRIBER,
        components::TICKER,
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

    // All three contracts in one host, as the heartbeat reports them.
    let want = [
        ("contract-v010", "0.1.0", json!(["assessment:contract_probe"])),
        ("contract-v020", "0.2.0", json!(["assessment:contract_wake"])),
        ("wake-emitter", "0.4.0", json!(["verdict:quality_breach"])),
        ("wake-subscriber", "0.4.0", json!(["assessment:correlation_snapshot"])),
        ("ticker", "0.4.0", json!([])),
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

    // The SDK-built ticker, now on 0.3.0, still runs.
    assert!(persisted(&core, "ticker").is_some_and(|s| s["n"].as_u64() >= Some(2)), "ticker did not keep running");
    host.sigterm();
    assert!(host.wait_with_timeout(Duration::from_secs(20)).is_some_and(|s| s.success()), "host did not stop cleanly");
}
