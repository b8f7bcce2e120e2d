//! How many host calls a cycle makes at scale: collect, drift and topology batch their
//! queries and submits in bounded runs, so a 1,000-service catalogue costs tens of
//! crossings, not thousands, and every record still goes out, in the order it was built.

use std::cell::RefCell;
use std::collections::BTreeMap;

use nthlayer_sdk::testing::FakeHost;
use nthlayer_sdk::{CycleInput, Host, HostError, Level, RangeQuery, Submission};
use serde_json::{json, Value};

/// FakeHost, counting each capability call by name.
struct Counting(FakeHost, RefCell<BTreeMap<&'static str, usize>>);

impl Counting {
    fn count(&self, name: &'static str) {
        *self.1.borrow_mut().entry(name).or_default() += 1;
    }
    fn calls(&self) -> BTreeMap<&'static str, usize> {
        self.1.borrow().clone()
    }
}

impl Host for Counting {
    fn get_manifests(&self) -> Result<Value, HostError> {
        self.count("get_manifests");
        self.0.get_manifests()
    }
    fn submit_assessment(&self, r: &Value, s: Option<&str>) -> Result<String, HostError> {
        self.count("submit_assessment");
        self.0.submit_assessment(r, s)
    }
    fn submit_batch(&self, records: &[Submission]) -> Vec<Result<String, HostError>> {
        self.count("submit_batch");
        self.0.submit_batch(records)
    }
    fn prom_query(&self, q: &str, at: Option<f64>) -> Result<Value, HostError> {
        self.count("prom_query");
        self.0.prom_query(q, at)
    }
    fn prom_query_range(&self, q: &str, s: f64, e: f64, st: &str) -> Result<Value, HostError> {
        self.count("prom_query_range");
        self.0.prom_query_range(q, s, e, st)
    }
    fn prom_query_batch(&self, q: &[String], at: Option<f64>) -> Vec<Result<Value, HostError>> {
        self.count("prom_query_batch");
        self.0.prom_query_batch(q, at)
    }
    fn prom_query_range_batch(&self, q: &[RangeQuery]) -> Vec<Result<Value, HostError>> {
        self.count("prom_query_range_batch");
        self.0.prom_query_range_batch(q)
    }
    fn log(&self, level: Level, message: &str, fields: &[(&str, &str)]) {
        self.0.log(level, message, fields)
    }
    fn now(&self) -> f64 {
        self.0.now()
    }
    fn random_u64(&self) -> u64 {
        self.0.random_u64()
    }
}

/// `n` services with three queried SLOs each.
fn catalogue(n: usize) -> Value {
    let slo = |name: &str| json!({"name": name, "target": 99.9, "window": "30d", "indicator_query": format!("{name}{{service=\"$service\"}}")});
    Value::Array(
        (0..n).map(|i| json!({"name": format!("svc-{i:04}"), "slos": [slo("a"), slo("b"), slo("c")]})).collect(),
    )
}

fn input(task: &str) -> CycleInput {
    CycleInput { task: task.into(), state: None, config: json!({}), args: None }
}

#[test]
fn collect_at_1000_services_makes_26_host_calls_and_submits_every_record_in_order() {
    let host = Counting(FakeHost::new().with_manifests(catalogue(1000)), RefCell::default());
    let out = crate::collect::run(&host, &input("observe.collect"));
    assert_eq!(out.emitted, 3001);
    // 85 services (255 queries) per run: 12 runs of one query batch and one submit batch,
    // the manifests, the portfolio. One by one it was 1 + 3,000 + 3,000 + 1.
    let want = BTreeMap::from([
        ("get_manifests", 1),
        ("prom_query_batch", 12),
        ("submit_batch", 12),
        ("submit_assessment", 1),
    ]);
    assert_eq!(host.calls(), want);
    let services: Vec<String> =
        host.0.submitted_of_kind("slo_status").iter().map(|r| r["service"].as_str().unwrap().to_string()).collect();
    let mut sorted = services.clone();
    sorted.sort();
    assert_eq!(services, sorted, "records left in the order they were built");
    assert_eq!(services.len(), 3000);
}

#[test]
fn drift_and_topology_batch_across_services() {
    let host = Counting(FakeHost::new().with_manifests(catalogue(1000)), RefCell::default());
    crate::drift::run(&host, &input("observe.drift"));
    // 256 range queries per run: 12 runs (each SLO has no data here, so nothing is submitted).
    assert_eq!(host.calls().get("prom_query_range_batch"), Some(&12));
    assert_eq!(host.calls().get("prom_query_range"), None);

    let host = Counting(FakeHost::new().with_manifests(catalogue(1000)), RefCell::default());
    let out = crate::topology::run(&host, &input("observe.topology"));
    assert_eq!(out.emitted, 1000);
    // Each family query once per direction for every service (24 queries) in one call; the
    // 1,000 dependency_graph records in one batch (the glue splits it under the host's cap),
    // one call here.
    assert_eq!(host.calls().get("prom_query_batch"), Some(&1));
    assert_eq!(host.calls().get("submit_batch"), Some(&1));
}

/// FakeHost whose core refuses the records of one service.
struct Refusing(FakeHost, &'static str);

impl Host for Refusing {
    fn get_manifests(&self) -> Result<Value, HostError> {
        self.0.get_manifests()
    }
    fn submit_assessment(&self, r: &Value, s: Option<&str>) -> Result<String, HostError> {
        if r["service"] == self.1 {
            return Err(HostError::Rejected { status: 422, code: "invalid".into(), detail: Value::Null });
        }
        self.0.submit_assessment(r, s)
    }
    fn log(&self, level: Level, message: &str, fields: &[(&str, &str)]) {
        self.0.log(level, message, fields)
    }
    fn now(&self) -> f64 {
        self.0.now()
    }
    fn random_u64(&self) -> u64 {
        self.0.random_u64()
    }
}

/// Each answer of a batch belongs to its own record: the refused ones (one service's, in the
/// middle of a run) are the ones left out of the portfolio's accepted ids, no others.
#[test]
fn a_refused_record_in_a_batch_is_that_record_only() {
    let host = Refusing(FakeHost::new().with_manifests(catalogue(100)), "svc-0010");
    let out = crate::collect::run(&host, &input("observe.collect"));
    assert_eq!(out.emitted, 298);
    let portfolio = &host.0.submitted_of_kind("portfolio_status")[0];
    let accepted: Vec<&str> =
        portfolio["data"]["parent_ids"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    let landed: Vec<Value> = host.0.submitted_of_kind("slo_status").iter().map(|r| r["id"].clone()).collect();
    assert_eq!(accepted, landed.iter().filter_map(Value::as_str).collect::<Vec<_>>());
    assert!(host.0.submitted_of_kind("slo_status").iter().all(|r| r["service"] != "svc-0010"));
}
