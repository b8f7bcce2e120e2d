use super::*;
use nthlayer_sdk::testing::FakeHost;
use nthlayer_sdk::HostError;

fn manifests() -> Value {
    json!([
        {"name": "fraud-detect", "dependencies": [{"name": "payments-db"}, {"name": "feature-store"}]},
        {"name": "checkout", "dependencies": [{"name": "fraud-detect"}]},
    ])
}

fn services() -> Vec<String> {
    vec!["fraud-detect".into(), "checkout".into()]
}

fn series(counts: &[(&str, f64)]) -> Value {
    let s: Vec<Value> = counts
        .iter()
        .map(|(svc, n)| {
            json!({"labels": [{"key": "resource.service.name", "value": {"stringValue": svc}}],
                                 "samples": [{"timestampMs": "1795532000000", "value": n}]})
        })
        .collect();
    json!({"series": s})
}

fn span(src: &str, dst: &str, ms: u64, err: bool) -> Value {
    let mut attrs = vec![
        json!({"key": "service.name", "value": {"stringValue": src}}),
        json!({"key": "peer.service", "value": {"stringValue": dst}}),
    ];
    if err {
        attrs.push(json!({"key": "status", "value": {"stringValue": "error"}}));
    }
    json!({"spanID": "s", "durationNanos": (ms * 1_000_000).to_string(), "attributes": attrs})
}

fn search(spans: Vec<Value>) -> Value {
    json!({"traces": [{"traceID": "t", "rootServiceName": "checkout", "spanSets": [{"spans": spans}]}]})
}

fn host(counts: &[(&str, f64)], spans: Vec<Value>) -> FakeHost {
    let h = FakeHost::new().with_manifests(manifests());
    h.tempo.borrow_mut().insert(tempo::count_query(&services()), Ok(series(counts)));
    h.tempo.borrow_mut().insert(tempo::search_query(&services()), Ok(search(spans)));
    h
}

fn input(tempo: bool) -> CycleInput {
    CycleInput {
        task: "correlate.topology".into(),
        state: None,
        config: json!({"tempo_configured": tempo}),
        args: None,
    }
}

#[test]
fn live_record_quirk_undeclared_edge_to_untraced_dependency() {
    let h = host(
        &[("fraud-detect", 10.0), ("checkout", 4.0)],
        vec![span("checkout", "fraud-detect", 20, false), span("fraud-detect", "payments-db", 5, false)],
    );
    let out = run(&h, &input(true));
    assert_eq!(out.emitted, 1);
    let r = &h.submitted_of_kind("topology_drift")[0];
    assert!(r["id"].as_str().unwrap().starts_with("tdr-topology-"));
    assert_eq!(r["service"], "__topology__");
    assert_eq!(
        r["data"],
        json!({"declared_not_observed": [],
               "observed_not_declared": [{"source": "fraud-detect", "target": "payments-db"}],
               "guarantee_mismatches": [], "total_declared": 3, "total_observed": 2, "drift_detected": true})
    );
    let calls = h.tempo_calls.borrow();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].3, "180s");
    assert_eq!(calls[1].3, "1000");
    assert_eq!(calls[0].2 - calls[0].1, 3600.0);
}

#[test]
fn declared_but_silent_edge_is_reported() {
    let h = host(&[("fraud-detect", 10.0), ("checkout", 4.0)], vec![]);
    run(&h, &input(true));
    let d = &h.submitted_of_kind("topology_drift")[0]["data"];
    assert_eq!(d["declared_not_observed"], json!([{"source": "checkout", "target": "fraud-detect"}]));
    assert_eq!(d["total_observed"], 0);
}

#[test]
fn agreement_emits_nothing_and_untraced_services_are_out_of_scope() {
    let h = host(&[("checkout", 4.0), ("fraud-detect", 0.0)], vec![]);
    assert_eq!(run(&h, &input(true)).emitted, 0);
    let h = host(&[("checkout", 4.0), ("fraud-detect", 1.0)], vec![span("checkout", "fraud-detect", 1, false)]);
    assert_eq!(run(&h, &input(true)).emitted, 0);
}

#[test]
fn guarantee_mismatches_when_manifests_carry_dependency_slos() {
    let m = json!([{"name": "checkout", "dependencies": [
        {"name": "fraud-detect", "slo": {"availability": 0.99, "latency_p99": "100ms"}}]}]);
    let edge = Edge {
        source: "checkout".into(),
        target: "fraud-detect".into(),
        requests: 200,
        errors: 3,
        p50_ms: 50.0,
        p99_ms: 150.5,
    };
    let got = guarantee_mismatches(m.as_array().unwrap(), &[&edge]);
    assert_eq!(
        got,
        vec![
            json!({"source": "checkout", "target": "fraud-detect", "metric": "availability", "promised": 0.99,
                   "observed": 0.985, "tempo_window": "1h"}),
            json!({"source": "checkout", "target": "fraud-detect", "metric": "latency_p99", "promised": "100ms",
                   "observed": "150ms", "tempo_window": "1h"}),
        ]
    );
    let ok = Edge { requests: 200, errors: 0, p99_ms: 10.0, ..edge };
    assert!(guarantee_mismatches(m.as_array().unwrap(), &[&ok]).is_empty());
}

#[test]
fn no_tempo_endpoint_is_a_logged_noop() {
    let h = host(&[], vec![]);
    let out = run(&h, &input(false));
    assert_eq!((out.emitted, out.state), (0, Some(json!({}))));
    assert!(h.tempo_calls.borrow().is_empty());
    assert_eq!(h.logs.borrow().len(), 1);
    assert_eq!(h.logs.borrow()[0].1, "topology_module_no_trace_backend");
}

#[test]
fn tempo_down_or_garbage_is_logged_and_skipped() {
    let h = host(&[], vec![]);
    h.tempo.borrow_mut().insert(tempo::count_query(&services()), Err(HostError::Unavailable("refused".into())));
    assert_eq!(run(&h, &input(true)).emitted, 0);
    assert_eq!(h.logs.borrow()[0].1, "topology_trace_query_failed");
    let h = host(&[("checkout", 1.0)], vec![]);
    h.tempo.borrow_mut().insert(tempo::search_query(&services()), Ok(json!({"traces": "<html>"})));
    assert_eq!(run(&h, &input(true)).emitted, 0);
    assert_eq!(h.logs.borrow()[0].1, "topology_trace_query_failed");
}

#[test]
fn declared_keeps_manifest_order_and_drops_nameless() {
    let m =
        json!([{"name": "b", "dependencies": [{"name": "x"}, {"type": "db"}]}, {"dependencies": []}, {"name": "a"}]);
    assert_eq!(declared(m.as_array().unwrap()), vec![("b".into(), vec!["x".into()]), ("a".into(), vec![])]);
}
