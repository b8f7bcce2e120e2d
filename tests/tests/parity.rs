//! Parity: nthlayer-workers 3.0.3 (reference) and nthlayer-host + observe.wasm, each against
//! its own nthlayer-core with the same manifests, both reading the same Prometheus. Observe
//! payloads are compared field by field after normalising ids, timestamps and parent ids.

use std::collections::BTreeMap;
use std::time::Duration;

use nthlayer_tests::core::Core;
use nthlayer_tests::host::{gate, interval_args, reference_gate, HostProcess, ReferenceWorkers, FAST_OBSERVE};
use nthlayer_tests::parity::{compare, compare_keyed, latest_by, report, service_slo_key, Allowed};
use nthlayer_tests::scenario::{self, expected, Observe, SERVICES};
use nthlayer_tests::wait::wait_until;
use serde_json::Value;

/// Intended differences between the reference and the host, one comment each.
/// Kind `"*"` matches every record kind; path `"$"` allows a missing/extra record.
const ALLOWED: &[Allowed] = &[
    // The reference lists all ten task names it registers whether or not they do anything;
    // the host lists the tasks of the modules it actually loaded (here observe only).
    Allowed { kind: "heartbeat", path: "state.modules[*]", reason: "loaded tasks, not a fixed list" },
    // Additions for operators: host version, each component's version/sha256/loaded_at
    // (hot swap visibility) and per-task cycle counters.
    Allowed { kind: "heartbeat", path: "state.host", reason: "host identity" },
    Allowed { kind: "heartbeat", path: "state.components", reason: "serving component versions" },
    Allowed { kind: "heartbeat", path: "state.tasks", reason: "per-task cycle counters" },
    Allowed { kind: "heartbeat", path: "state.rejected", reason: "module files rejected, with the reason" },
    Allowed { kind: "heartbeat", path: "state.llm", reason: "LLM usage per module and model" },
    // Every record the host forwards names the module and version that made it
    // (docs/SANDBOX.md, emission grants).
    Allowed { kind: "*", path: "emitted_by", reason: "producing module stamped by the host" },
    Allowed { kind: "heartbeat", path: "state.outbox", reason: "the spool's backlog (docs/OUTBOX.md)" },
    Allowed {
        kind: "heartbeat",
        path: "state.compiling",
        reason: "files compiling in the background (docs/modules.md)",
    },
];

const RECORDS: Duration = Duration::from_secs(90);
const KINDS: [&str; 4] = ["slo_status", "portfolio_status", "drift_signal", "dependency_graph"];

/// Newest record per service/slo for each observe kind, once all are present.
fn collect(core: &Core) -> BTreeMap<&'static str, BTreeMap<String, Value>> {
    KINDS
        .iter()
        .map(|k| {
            let recs: Vec<Value> = core.assessments(None, Some(k)).iter().map(|a| a.to_value()).collect();
            (*k, latest_by(&recs, service_slo_key))
        })
        .collect()
}

fn complete(c: &BTreeMap<&'static str, BTreeMap<String, Value>>) -> bool {
    expected::slo_status().iter().all(|(k, _)| c["slo_status"].contains_key(*k))
        && c["portfolio_status"].contains_key("__portfolio__")
        && expected::drift_signal().iter().all(|(k, _)| c["drift_signal"].contains_key(*k))
        && SERVICES.iter().all(|s| c["dependency_graph"].contains_key(*s))
}

#[test]
fn observe_payloads_match_reference() {
    let obs = Observe::start();
    let ref_core = Core::start(&scenario::manifests_dir());
    let host_core = Core::start(&scenario::manifests_dir());
    let mut reference = ReferenceWorkers::serve(&ref_core.url(), &obs.prometheus_url(), &FAST_OBSERVE);
    let extra = interval_args(&FAST_OBSERVE);
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let mut host = HostProcess::serve(&host_core.url(), &obs.prometheus_url(), "host-parity", &extra);

    let r = wait_until("reference records", RECORDS, || Some(collect(&ref_core)).filter(complete));
    let h = wait_until("host records", RECORDS, || Some(collect(&host_core)).filter(complete));
    assert!(reference.terminate(Duration::from_secs(30)).success());
    assert!(host.terminate(Duration::from_secs(15)).success());

    let mut diffs = Vec::new();
    for k in KINDS {
        diffs.extend(compare_keyed(k, &r[k], &h[k], ALLOWED));
    }
    // Heartbeat rows: same component, healthy; `state` is compared as well.
    let rh = ref_core.heartbeat("workers", ReferenceWorkers::INSTANCE_ID).unwrap();
    let hh = host_core.heartbeat("workers", "host-parity").unwrap();
    diffs.extend(compare(
        "heartbeat",
        "heartbeat",
        &serde_json::json!({"component": rh.component, "state": rh.state}),
        &serde_json::json!({"component": hh.component, "state": hh.state}),
        ALLOWED,
    ));
    assert!(diffs.is_empty(), "{}", report(&diffs));
}

#[test]
fn gate_matches_reference() {
    let core = Core::start(&scenario::manifests_dir());
    scenario::seed_slo_status(&core);
    let mut diffs = Vec::new();
    for args in [
        vec!["--service", "payment-api"],
        vec!["--service", "fraud-detect"],
        vec!["--service", "checkout-api", "--commit-sha", "abc123"],
        vec!["--service", "checkout-api", "--tier", "low"],
        vec!["--service", "no-such-service"],
    ] {
        let label = format!("gate {}", args.join(" "));
        let (rc, rout, rerr) = reference_gate(&core.url(), &args);
        let (hc, hout, herr) = gate(&core.url(), &args);
        let parse = |s: &str| serde_json::from_str::<Value>(s).unwrap_or(Value::String(s.to_owned()));
        let rv = serde_json::json!({"exit": rc, "stdout": parse(&rout), "stderr": rerr});
        let hv = serde_json::json!({"exit": hc, "stdout": parse(&hout), "stderr": herr});
        diffs.extend(compare(&label, "gate", &rv, &hv, ALLOWED));
    }
    // Both posted deploy_gate records; compare the checkout-api ones.
    let g = core.assessments(Some("checkout-api"), Some("deploy_gate"));
    let by_tier: Vec<&Value> = g.iter().map(|a| &a.data).collect();
    assert!(by_tier.len() >= 4, "deploy_gate records: {by_tier:?}");
    let r = g.iter().filter(|a| a.d("commit_sha") == "abc123").collect::<Vec<_>>();
    assert_eq!(r.len(), 2, "one deploy_gate each from reference and host");
    diffs.extend(compare("deploy_gate checkout-api", "deploy_gate", &r[1].to_value(), &r[0].to_value(), ALLOWED));
    assert!(diffs.is_empty(), "{}", report(&diffs));
}
