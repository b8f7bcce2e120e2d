use super::*;
use nthlayer_sdk::testing::FakeHost;
use nthlayer_sdk::HostError;

fn input() -> CycleInput {
    CycleInput { task: "observe.collect".into(), state: None, config: json!({}), args: None }
}

/// The §8 live-run catalogue, as core serves it.
fn catalogue() -> Value {
    json!([
        {"name": "payment-api", "tier": "standard", "slos": [
            {"name": "availability", "target": 99.95, "slo_type": "availability", "window": "30d",
             "indicator_query": "sli{service=\"$service\"}"}]},
        {"name": "checkout-api", "tier": "critical", "slos": [
            {"name": "availability", "target": 99.9, "slo_type": "availability", "window": "30d",
             "indicator_query": "avail{service=\"${service}\"}"},
            {"name": "latency", "target": 99.0, "slo_type": "latency", "window": "7d",
             "indicator_query": "lat{service=\"${service}\"}"},
            {"name": "throughput", "target": 99.0, "slo_type": "throughput", "window": "30d"}]},
        {"name": "fraud-detect", "tier": "standard", "slos": [
            {"name": "reversal_rate", "target": 98.5, "slo_type": "availability", "window": "7d",
             "judgment_type": "reversal_rate", "indicator_query": "rev"}]}
    ])
}

fn live_host() -> FakeHost {
    let host = FakeHost::new().with_manifests(catalogue());
    host.set_scalar("avail{service=\"checkout-api\"}", "0.9995");
    host.set_scalar("lat{service=\"checkout-api\"}", "0.97");
    host.set_scalar("sli{service=\"payment-api\"}", "0.99995");
    host.set_scalar("rev", "0.92");
    host
}

fn data_of(host: &FakeHost, kind: &str) -> Vec<Value> {
    host.submitted_of_kind(kind).into_iter().map(|r| r["data"].clone()).collect()
}

#[test]
fn live_run_figures_match_section_8() {
    let host = live_host();
    let out = run(&host, &input());
    let slo = data_of(&host, "slo_status");
    assert_eq!(slo.len(), 5);
    // Byte-level: serde_json (preserve_order) writes the reference's key order and floats.
    assert_eq!(
        slo[0].to_string(),
        r#"{"slo_name":"availability","objective":99.9,"window":"30d","total_budget_minutes":43.199999999997544,"status":"HEALTHY","current_sli":99.95,"burned_minutes":21.59999999999762,"percent_consumed":49.999999999997335}"#
    );
    assert_eq!(
        slo[1].to_string(),
        r#"{"slo_name":"latency","objective":99.0,"window":"7d","total_budget_minutes":100.8,"status":"EXHAUSTED","current_sli":97.0,"burned_minutes":302.40000000000026,"percent_consumed":300.0000000000003}"#
    );
    assert_eq!(
        slo[2].to_string(),
        r#"{"slo_name":"throughput","objective":99.0,"window":"30d","total_budget_minutes":432.0,"status":"NO_DATA","error":"No query defined"}"#
    );
    // Services in sorted order: checkout-api, fraud-detect, payment-api.
    let services: Vec<Value> = host.submitted_of_kind("slo_status").iter().map(|r| r["service"].clone()).collect();
    assert_eq!(
        services,
        vec![
            json!("checkout-api"),
            json!("checkout-api"),
            json!("checkout-api"),
            json!("fraud-detect"),
            json!("payment-api")
        ]
    );
    assert_eq!(slo[3]["status"], "EXHAUSTED");
    assert_eq!(slo[4]["status"], "HEALTHY");

    let portfolio = data_of(&host, "portfolio_status");
    assert_eq!(portfolio.len(), 1);
    let ids: Vec<Value> = host.submitted_of_kind("slo_status").iter().map(|r| r["id"].clone()).collect();
    let mut want = json!({"total_services":3,"healthy_count":1,"warning_count":0,"critical_count":0,"exhausted_count":2,
        "services":[{"service":"checkout-api","overall_status":"EXHAUSTED","slo_count":3},
                    {"service":"fraud-detect","overall_status":"EXHAUSTED","slo_count":1},
                    {"service":"payment-api","overall_status":"HEALTHY","slo_count":1}],
        "collection_errors":0});
    want["parent_ids"] = json!(ids);
    assert_eq!(portfolio[0].to_string(), want.to_string());
    assert_eq!(out.emitted, 6);
    assert_eq!(out.state, Some(json!({"seq": 7})));
}

#[test]
fn records_have_the_reference_shape_and_ids() {
    let host = live_host();
    run(&host, &CycleInput { state: Some(json!({"seq": 41})), ..input() });
    let sub = host.submitted.borrow();
    let first = &sub[0].record;
    let keys: Vec<&str> = first.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["id", "created_at", "kind", "service", "producer", "data"]);
    assert_eq!(first["producer"], "nthlayer-observe");
    // The fake clock is 1795532927.615105, i.e. 2026-11-24T15:08:47.615105Z.
    assert_eq!(first["created_at"], "2026-11-24T15:08:47.615105+00:00");
    let id = first["id"].as_str().unwrap();
    assert!(id.starts_with("asm-2026-11-24-") && id.ends_with("-00041"), "{id}");
    assert_eq!(id.len(), "asm-2026-11-24-".len() + 8 + 6);
    assert!(id["asm-2026-11-24-".len()..][..8].bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    assert!(sub.last().unwrap().record["id"].as_str().unwrap().ends_with("-00046"));
    assert!(sub.iter().all(|s| s.source.is_none()));
}

#[test]
fn query_substitutes_braced_then_bare_placeholder() {
    let host = FakeHost::new().with_manifests(json!([{"name": "svc", "slos": [
        {"name": "a", "target": 99.0, "indicator_query": "x{s=\"${service}\",t=\"$service\",u=\"$services\"}"}]}]));
    run(&host, &input());
    assert_eq!(host.instant_calls.borrow()[0], "x{s=\"svc\",t=\"svc\",u=\"svcs\"}");
}

#[test]
fn good_total_compose_when_no_indicator_query() {
    let host = FakeHost::new().with_manifests(json!([{"name": "svc", "slos": [
        {"name": "a", "target": 99.0, "good_query": "g{s=\"$service\"}", "total_query": "t"}]}]));
    run(&host, &input());
    assert_eq!(host.instant_calls.borrow()[0], "(g{s=\"svc\"}) / (t)");
}

#[test]
fn prometheus_down_gives_error_everywhere_and_no_collection_errors() {
    let host = FakeHost::new().with_manifests(catalogue());
    for q in ["avail{service=\"checkout-api\"}", "lat{service=\"checkout-api\"}", "sli{service=\"payment-api\"}", "rev"]
    {
        host.set_instant(q, Err(HostError::Unavailable("All connection attempts failed".into())));
    }
    run(&host, &input());
    let slo = data_of(&host, "slo_status");
    assert_eq!(slo[0]["status"], "ERROR");
    assert_eq!(slo[0]["error"], "unavailable: All connection attempts failed");
    assert_eq!(
        slo[0].as_object().unwrap().keys().collect::<Vec<_>>(),
        ["slo_name", "objective", "window", "total_budget_minutes", "status", "error"]
    );
    let p = &data_of(&host, "portfolio_status")[0];
    assert_eq!(p["collection_errors"], 0);
    assert_eq!(p["healthy_count"], 0);
    assert_eq!(p["exhausted_count"], 0);
    // checkout-api: ERROR, ERROR, NO_DATA -> ERROR (rank 1 beats 0).
    assert_eq!(p["services"][0]["overall_status"], "ERROR");
    assert!(host.logs.borrow().iter().any(|(_, m)| m == "prometheus_query_failed"));
}

#[test]
fn value_parsing_and_no_data_cases() {
    let host = FakeHost::new().with_manifests(json!([{"name": "s", "slos": [
        {"name": "empty", "target": 99.9, "indicator_query": "empty"},
        {"name": "short", "target": 99.9, "indicator_query": "short"},
        {"name": "text", "target": 99.9, "indicator_query": "text"},
        {"name": "nan", "target": 99.9, "indicator_query": "nan"},
        {"name": "inf", "target": 99.9, "indicator_query": "inf"},
        {"name": "zero", "target": 99.9, "indicator_query": "zero"},
        {"name": "spaced", "target": 99.9, "indicator_query": "spaced"}]}]));
    host.set_instant("short", Ok(json!({"resultType": "vector", "result": [{"metric": {}, "value": [1]}]})));
    host.set_scalar("text", "abc");
    host.set_scalar("nan", "NaN");
    host.set_scalar("inf", "+Inf");
    host.set_scalar("zero", "0");
    host.set_scalar("spaced", " 0.5 ");
    run(&host, &input());
    let slo = data_of(&host, "slo_status");
    let statuses: Vec<&str> = slo.iter().map(|d| d["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["NO_DATA", "NO_DATA", "NO_DATA", "NO_DATA", "NO_DATA", "EXHAUSTED", "EXHAUSTED"]);
    for d in &slo[..5] {
        assert_eq!(d.as_object().unwrap().len(), 5, "{d}");
    }
    // Cross-checked against the reference collector.
    assert_eq!(
        slo[5].to_string(),
        r#"{"slo_name":"zero","objective":99.9,"window":"30d","total_budget_minutes":43.199999999997544,"status":"EXHAUSTED","current_sli":0.0,"burned_minutes":43200.0,"percent_consumed":100000.00000000569}"#
    );
    assert_eq!(slo[6]["percent_consumed"], 50000.000000002845);
    assert!(host.logs.borrow().iter().filter(|(_, m)| m == "non_finite_sli_value").count() == 2);
}

#[test]
fn objective_100_is_healthy_with_integer_zero() {
    let host = FakeHost::new().with_manifests(json!([{"name": "s", "slos": [
        {"name": "a", "target": 100, "window": "30d", "indicator_query": "q"}]}]));
    host.set_scalar("q", "0.5");
    run(&host, &input());
    let d = &data_of(&host, "slo_status")[0];
    assert_eq!(
        d.to_string(),
        r#"{"slo_name":"a","objective":100,"window":"30d","total_budget_minutes":0.0,"status":"HEALTHY","current_sli":50.0,"burned_minutes":21600.0,"percent_consumed":0}"#
    );
}

#[test]
fn windows_parse_like_the_reference() {
    assert_eq!(window_minutes(&json!("30d")), 43200.0);
    assert_eq!(window_minutes(&json!("7d")), 10080.0);
    assert_eq!(window_minutes(&json!("2w")), 20160.0);
    assert_eq!(window_minutes(&json!("12h")), 720.0);
    assert_eq!(window_minutes(&json!("90m")), 90.0);
    for odd in [json!("1.5d"), json!("30s"), json!(""), json!(null), json!("d")] {
        assert_eq!(window_minutes(&odd), 43200.0, "{odd}");
    }
}

#[test]
fn defaults_and_skips() {
    let host = FakeHost::new().with_manifests(json!([
        {"name": "s", "slos": [
            {"name": "no-target", "indicator_query": "q"},
            {"name": "null-target", "target": null},
            {"target": 99.0},
            {"name": "", "target": 99.0},
            {"name": "kept", "target": 99.5, "window": null}]},
        {"name": "", "slos": [{"name": "x", "target": 99.0}]},
        {"slos": [{"name": "x", "target": 99.0}]},
        {"name": "no-slos"},
        {"name": "bad-slos", "slos": null},
        "not an object"
    ]));
    let out = run(&host, &input());
    let slo = data_of(&host, "slo_status");
    assert_eq!(slo.len(), 1);
    assert_eq!(
        slo[0].to_string(),
        r#"{"slo_name":"kept","objective":99.5,"window":null,"total_budget_minutes":216.0,"status":"NO_DATA","error":"No query defined"}"#
    );
    assert_eq!(out.emitted, 2);
}

#[test]
fn no_slos_anywhere_means_no_portfolio() {
    let host = FakeHost::new().with_manifests(json!([{"name": "s", "slos": []}]));
    let out = run(&host, &input());
    assert!(host.submitted.borrow().is_empty());
    assert_eq!(out.state, Some(json!({"seq": 1})));
}

#[test]
fn bad_target_type_counts_a_collection_error() {
    let host = FakeHost::new().with_manifests(json!([
        {"name": "a", "slos": [{"name": "x", "target": "99.9", "indicator_query": "q"}]},
        {"name": "b", "slos": [{"name": "y", "target": 99.0}]}]));
    run(&host, &input());
    let p = &data_of(&host, "portfolio_status")[0];
    assert_eq!(p["collection_errors"], 1);
    assert_eq!(p["total_services"], 1);
    assert_eq!(p["services"][0]["service"], "b");
    assert!(host.instant_calls.borrow().is_empty());
}

/// FakeHost, except that core refuses the assessments whose ids are listed.
struct Refusing<'a>(&'a FakeHost, Vec<String>);

impl Host for Refusing<'_> {
    fn get_manifests(&self) -> Result<Value, HostError> {
        self.0.get_manifests()
    }
    fn get_manifest(&self, s: &str) -> Result<Value, HostError> {
        self.0.get_manifest(s)
    }
    fn submit_assessment(&self, r: &Value, src: Option<&str>) -> Result<String, HostError> {
        let id = r["id"].as_str().unwrap_or_default();
        if self.1.iter().any(|x| id.ends_with(x.as_str())) {
            return Err(HostError::Rejected { status: 409, code: "conflict".into(), detail: Value::Null });
        }
        self.0.submit_assessment(r, src)
    }
    fn submit_verdict(&self, r: &Value, src: Option<&str>) -> Result<String, HostError> {
        self.0.submit_verdict(r, src)
    }
    fn query_assessments(&self, s: Option<&str>, k: Option<&str>, l: u32) -> Result<Value, HostError> {
        self.0.query_assessments(s, k, l)
    }
    fn query_verdicts(&self, q: &nthlayer_sdk::VerdictQuery) -> Result<Value, HostError> {
        self.0.query_verdicts(q)
    }
    fn verdict_descendants(&self, id: &str) -> Result<Value, HostError> {
        self.0.verdict_descendants(id)
    }
    fn resolve_outcome(&self, id: &str, b: &Value) -> Result<String, HostError> {
        self.0.resolve_outcome(id, b)
    }
    fn create_case(&self, c: &Value) -> Result<Value, HostError> {
        self.0.create_case(c)
    }
    fn prom_query(&self, q: &str, at: Option<f64>) -> Result<Value, HostError> {
        self.0.prom_query(q, at)
    }
    fn prom_query_range(&self, q: &str, s: f64, e: f64, st: &str) -> Result<Value, HostError> {
        self.0.prom_query_range(q, s, e, st)
    }
    fn prom_query_batch(&self, q: &[String], at: Option<f64>) -> Vec<Result<Value, HostError>> {
        self.0.prom_query_batch(q, at)
    }
    fn tempo_metrics_range(&self, q: &str, s: f64, e: f64, st: &str) -> Result<Value, HostError> {
        self.0.tempo_metrics_range(q, s, e, st)
    }
    fn tempo_search(&self, q: &str, s: f64, e: f64, l: u32) -> Result<Value, HostError> {
        self.0.tempo_search(q, s, e, l)
    }
    fn llm_structured(&self, r: &nthlayer_sdk::LlmRequest) -> Result<nthlayer_sdk::LlmResponse, HostError> {
        self.0.llm_structured(r)
    }
    fn log(&self, l: Level, m: &str, f: &[(&str, &str)]) {
        self.0.log(l, m, f)
    }
    fn now(&self) -> f64 {
        self.0.now()
    }
    fn random_u64(&self) -> u64 {
        self.0.random_u64()
    }
}

#[test]
fn refused_submissions_are_left_out_of_parent_ids() {
    let fake = live_host();
    let out = run(&Refusing(&fake, vec!["-00002".into(), "-00004".into()]), &input());
    let accepted: Vec<Value> = fake.submitted_of_kind("slo_status").iter().map(|r| r["id"].clone()).collect();
    assert_eq!(accepted.len(), 3);
    let p = &data_of(&fake, "portfolio_status")[0];
    assert_eq!(p["parent_ids"], json!(accepted));
    // The refused records still count towards the portfolio and the id sequence.
    assert_eq!(p["services"][0]["slo_count"], 3);
    assert_eq!(out.emitted, 4);
    assert_eq!(out.state, Some(json!({"seq": 7})));
    assert_eq!(fake.logs.borrow().iter().filter(|(_, m)| m == "observe_submit_failed").count(), 2);
}

#[test]
fn overall_status_ranks_and_ties() {
    assert_eq!(overall(&["HEALTHY", "WARNING", "CRITICAL"]), "CRITICAL");
    assert_eq!(overall(&["NO_DATA", "HEALTHY"]), "NO_DATA");
    assert_eq!(overall(&["ERROR", "NO_DATA", "HEALTHY"]), "ERROR");
    assert_eq!(overall(&["EXHAUSTED", "ERROR"]), "EXHAUSTED");
    assert_eq!(overall(&["HEALTHY"]), "HEALTHY");
    let p = portfolio(
        &[("a".into(), vec!["WARNING"]), ("b".into(), vec!["CRITICAL", "HEALTHY"]), ("c".into(), vec!["NO_DATA"])],
        0,
        vec![],
    );
    assert_eq!(
        (p["healthy_count"].clone(), p["warning_count"].clone(), p["critical_count"].clone()),
        (json!(0), json!(1), json!(1))
    );
    assert_eq!(p["total_services"], 3);
}

#[test]
fn status_thresholds() {
    assert_eq!(status_for(49.999999999997335), "HEALTHY");
    assert_eq!(status_for(50.0), "WARNING");
    assert_eq!(status_for(80.0), "CRITICAL");
    assert_eq!(status_for(100.0), "EXHAUSTED");
}
