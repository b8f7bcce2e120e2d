use super::*;
use nthlayer_sdk::testing::FakeHost;
use nthlayer_sdk::HostError;

const AVAIL_Q: &str = "sum(rate(ok[30d]))/sum(rate(all[30d]))";
const LAT_Q: &str = "histogram_quantile(0.99, rate(d_bucket[30d]))";

fn manifest(promise: Value) -> Value {
    json!({"name": "fraud-detect", "slos": [
        {"name": "availability", "slo_type": "availability", "indicator_query": AVAIL_Q},
        {"name": "latency", "slo_type": "latency", "indicator_query": LAT_Q}],
        "contracts": [{"name": "fraud-detect-api", "promise": promise}]})
}

fn input() -> CycleInput {
    CycleInput { task: "correlate.contract".into(), state: None, config: json!({}), args: None }
}

#[test]
fn both_promises_broken_matches_the_live_record() {
    let h = FakeHost::new().with_manifests(json!([manifest(json!({"availability": 0.999, "latency_p99": "200ms"}))]));
    h.set_scalar(AVAIL_Q, "0.99499999");
    h.set_scalar(LAT_Q, "0.35");
    let out = run(&h, &input());
    assert_eq!((out.emitted, out.state), (1, Some(json!({}))));
    let r = &h.submitted_of_kind("contract_divergence")[0];
    assert!(r["id"].as_str().unwrap().starts_with("cdv-fraud-detect-"));
    assert_eq!(r["service"], "fraud-detect");
    assert_eq!(
        r["data"].to_string(),
        json!({"contract_name": "fraud-detect-api", "divergences": [
            {"metric": "availability", "promised": 0.999, "observed": 0.995, "window": "30d"},
            {"metric": "latency_p99", "promised": "200ms", "observed": "350ms", "window": "30d"}],
            "total_promises": 2, "divergence_count": 2})
        .to_string()
    );
    assert_eq!(h.instant_calls.borrow().as_slice(), [AVAIL_Q, LAT_Q]);
}

#[test]
fn kept_promises_emit_nothing() {
    let h = FakeHost::new().with_manifests(json!([manifest(json!({"availability": 0.99, "latency_p99": "1s"}))]));
    h.set_scalar(AVAIL_Q, "0.995");
    h.set_scalar(LAT_Q, "0.35");
    assert_eq!(run(&h, &input()).emitted, 0);
}

#[test]
fn availability_above_one_skips_the_contract_with_a_log() {
    let h = FakeHost::new().with_manifests(json!([manifest(json!({"availability": 99.9, "latency_p99": "200ms"}))]));
    h.set_scalar(LAT_Q, "0.35");
    assert_eq!(run(&h, &input()).emitted, 0);
    assert!(h.instant_calls.borrow().is_empty());
    assert_eq!(h.logs.borrow()[0].1, "contract_availability_not_ratio");
}

#[test]
fn latency_fast_is_logged_and_availability_still_checked() {
    let h = FakeHost::new().with_manifests(json!([
        manifest(json!({"availability": 0.999, "latency_p99": "fast"})),
        {"name": "other", "contracts": [{"promise": {"availability": "high"}}]},
    ]));
    h.set_scalar(AVAIL_Q, "0.9");
    assert_eq!(run(&h, &input()).emitted, 1);
    let logs: Vec<String> = h.logs.borrow().iter().map(|(_, m)| m.clone()).collect();
    assert_eq!(logs, ["contract_promise_invalid", "contract_promise_invalid"]);
    let r = &h.submitted_of_kind("contract_divergence")[0];
    assert_eq!(r["data"]["total_promises"], 2);
    assert_eq!(r["data"]["divergence_count"], 1);
}

#[test]
fn missing_name_defaults_and_prometheus_down_is_no_observation() {
    let m = json!({"name": "s", "slos": [{"name": "availability", "indicator_query": "q"}],
                   "contracts": [{"promise": {"availability": 0.9}}]});
    let h = FakeHost::new().with_manifests(json!([m]));
    h.set_scalar("q", "0.5");
    run(&h, &input());
    assert_eq!(h.submitted_of_kind("contract_divergence")[0]["data"]["contract_name"], "s-contract");
    let h2 = FakeHost::new().with_manifests(h.manifests.borrow().clone());
    h2.set_instant("q", Err(HostError::Unavailable("down".into())));
    assert_eq!(run(&h2, &input()).emitted, 0);
}

#[test]
fn no_sli_query_means_nothing_to_compare() {
    let m = json!({"name": "s", "slos": [{"name": "availability"}], "contracts": [{"promise": {"availability": 0.9}}]});
    let h = FakeHost::new().with_manifests(json!([m, {"name": "t", "contracts": []}, {"contracts": [{}]}]));
    assert_eq!(run(&h, &input()).emitted, 0);
    assert!(h.instant_calls.borrow().is_empty());
}
