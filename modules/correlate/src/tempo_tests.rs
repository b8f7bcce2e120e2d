use super::*;
use serde_json::json;

fn svcs(s: &[&str]) -> Vec<String> {
    s.iter().map(|x| x.to_string()).collect()
}

#[test]
fn queries_are_the_references() {
    assert_eq!(
        count_query(&svcs(&["a"])),
        r#"{ resource.service.name = "a" && span.kind = server } | count_over_time() by (resource.service.name)"#
    );
    assert_eq!(
        search_query(&svcs(&["a", "b"])),
        r#"{ (resource.service.name = "a" || resource.service.name = "b") && span.kind = client }"#
    );
    assert_eq!(service_filter(&[]), r#"resource.service.name = "__none__""#);
    assert_eq!(step(3600.0), "180s");
    assert_eq!(step(10.0), "15s");
}

#[test]
fn means_from_tempo_and_flattened_shapes() {
    let tempo = json!({"series": [
        {"labels": [{"key": "resource.service.name", "value": {"stringValue": "a"}}],
         "samples": [{"timestampMs": "1", "value": 2.0}, {"timestampMs": "2", "value": 4.0}],
         "promLabels": "{resource.service.name=\"a\"}"},
        {"labels": [{"key": "resource.service.name", "value": {"stringValue": "z"}}], "samples": [{"timestampMs": "1"}]},
        {"labels": [], "samples": [{"value": 1.0}]}]});
    assert_eq!(mean_by_service(&tempo).unwrap(), vec![("a".to_string(), 3.0), ("z".to_string(), 0.0)]);
    let flat = json!({"series": [{"labels": {"resource.service.name": "b"}, "samples": [[1, 1.0], [2, null], [3, 3.0]]},
                                 {"promLabels": {"resource_service_name": "c"}, "samples": [[1, 5]]},
                                 {"labels": {"resource.service.name": "d"}, "samples": []}]});
    assert_eq!(mean_by_service(&flat).unwrap(), vec![("b".to_string(), 2.0), ("c".to_string(), 5.0)]);
    assert!(mean_by_service(&json!({"series": "x"})).is_err());
    assert!(mean_by_service(&json!({})).unwrap().is_empty());
}

#[test]
fn calls_from_tempo_spansets_and_flattened_entries() {
    let tempo = json!({"traces": [{"traceID": "t1", "rootServiceName": "checkout", "durationMs": 9,
        "spanSets": [{"spans": [
            {"spanID": "s1", "durationNanos": "12000000", "attributes": [
                {"key": "peer.service", "value": {"stringValue": "fraud-detect"}},
                {"key": "status", "value": {"stringValue": "error"}}]},
            {"spanID": "s2", "durationNanos": "3000000", "attributes": [
                {"key": "service.name", "value": {"stringValue": "fraud-detect"}},
                {"key": "peer.service", "value": {"stringValue": "payments-db"}}]}]}]}]});
    let c = calls(&tempo).unwrap();
    assert_eq!(
        c,
        vec![
            Call { source: "checkout".into(), target: "fraud-detect".into(), duration_ms: 12.0, error: true },
            Call { source: "fraud-detect".into(), target: "payments-db".into(), duration_ms: 3.0, error: false },
        ]
    );
    let flat = json!({"traces": [{"resource.service.name": "a", "span.peer.service": "b", "durationMs": 5, "status": "error"}]});
    assert_eq!(
        calls(&flat).unwrap()[0],
        Call { source: "a".into(), target: "b".into(), duration_ms: 5.0, error: true }
    );
    assert!(calls(&json!({"traces": {}})).is_err());
}

#[test]
fn edges_count_errors_and_pick_percentiles_by_index() {
    let mut cs = Vec::new();
    for i in 0..100 {
        cs.push(Call { source: "a".into(), target: "b".into(), duration_ms: (100 - i) as f64, error: i % 10 == 0 });
    }
    cs.push(Call { source: "a".into(), target: "a".into(), duration_ms: 1.0, error: false });
    cs.push(Call { source: "".into(), target: "b".into(), duration_ms: 1.0, error: false });
    let e = edges(&cs);
    assert_eq!(e.len(), 1);
    assert_eq!((e[0].requests, e[0].errors), (100, 10));
    // sorted[100 // 2] = 51, sorted[int(100 * 0.99)] = sorted[99] = 100
    assert_eq!((e[0].p50_ms, e[0].p99_ms), (51.0, 100.0));
    let one = edges(&[Call { source: "x".into(), target: "y".into(), duration_ms: 7.0, error: false }]);
    assert_eq!((one[0].p50_ms, one[0].p99_ms), (7.0, 7.0));
}
