//! The harness itself, against the real nthlayer-core, Prometheus and the Python reference
//! (nthlayer-workers 3.0.3). Needs no nthlayer-host binary.

use std::time::Duration;

use nthlayer_tests::core::Core;
use nthlayer_tests::exporter::Exporter;
use nthlayer_tests::host::{ReferenceWorkers, FAST_OBSERVE};
use nthlayer_tests::parity::{diff, latest_by, report, service_slo_key};
use nthlayer_tests::prometheus::{PromOpts, Prometheus};
use nthlayer_tests::scenario::{self, expected, Observe, CHECKOUT, FRAUD, PAYMENT, SERVICES};
use nthlayer_tests::util::unix_now;
use nthlayer_tests::wait::{wait_for, wait_until};
use serde_json::{json, Value};

#[test]
fn core_serves_scenario_manifests_flat() {
    let core = Core::start(&scenario::manifests_dir());
    let ms = core.manifests();
    let names: Vec<&str> = ms.iter().map(|m| m["name"].as_str().unwrap()).collect();
    assert_eq!(names, SERVICES, "file-name order");
    for m in &ms {
        assert!(m.get("spec").is_none(), "flat shape, no spec wrapper: {m}");
        assert_eq!(m["source_format"], "srm_v1");
        assert_eq!(m["namespace"], "default");
        for slo in m["slos"].as_array().unwrap() {
            let t = slo["target"].as_f64().unwrap();
            assert!((0.0..=100.0).contains(&t), "target 0-100: {slo}");
            for k in ["name", "target", "slo_type", "window"] {
                assert!(slo.get(k).is_some(), "{k} in {slo}");
            }
        }
    }
    let slos = |svc: &str| -> Vec<Value> { core.manifest(svc).unwrap()["slos"].as_array().unwrap().clone() };

    let c = core.manifest(CHECKOUT).unwrap();
    assert_eq!(c["tier"], "critical");
    let cs = slos(CHECKOUT);
    assert_eq!(
        cs.iter().map(|s| s["name"].as_str().unwrap()).collect::<Vec<_>>(),
        ["availability", "latency", "throughput"]
    );
    assert_eq!(cs[0]["target"], json!(99.9));
    assert_eq!(cs[0]["window"], "30d");
    // `$service` and `${service}` reach the client unsubstituted.
    assert_eq!(cs[0]["indicator_query"], r#"test_sli{service="$service",slo="availability"}"#);
    assert_eq!(cs[1]["target"], json!(99.0));
    assert_eq!(cs[1]["window"], "7d");
    assert_eq!(cs[1]["slo_type"], "latency");
    assert_eq!(cs[1]["indicator_query"], r#"test_sli{service="${service}",slo="latency"}"#);
    assert!(cs[2].get("indicator_query").is_none(), "throughput has no query");

    let p = core.manifest(PAYMENT).unwrap();
    assert_eq!(p["tier"], "standard");
    assert_eq!(slos(PAYMENT)[0]["target"], json!(99.95));

    let f = core.manifest(FRAUD).unwrap();
    assert_eq!(f["tier"], "standard");
    assert_eq!(f["type"], "ai-gate");
    let fs = slos(FRAUD);
    assert_eq!(fs.len(), 1);
    assert_eq!(fs[0]["judgment_type"], "reversal_rate");
    assert_eq!(fs[0]["target"], json!(98.5));
    assert_eq!(fs[0]["indicator_query"], r#"test_sli{service="fraud-detect",slo="reversal_rate"}"#);
    assert_eq!(
        f["judgment_thresholds"],
        json!([{"type":"calibration","bounds":{"maximum_expected_calibration_error":0.05},
                "measurement":{"bins":10,"window":"30d"}}])
    );

    // Helpers: empty store, component state round trip, reload, stop/restart keeps the store.
    assert!(core.assessments(None, None).is_empty());
    assert!(core.component_state("observe.collect").is_none());
    core.put_component_state("observe.collect", &json!({"hysteresis_state": {"x": 1}, "dropped": true}));
    let reload = core.reload_manifests();
    assert_eq!(reload["total"], 3, "{reload}");
    let mut core = core;
    core.restart();
    let st = core.component_state("observe.collect").unwrap();
    assert_eq!(st["hysteresis_state"], json!({"x": 1}));
    assert!(st.get("dropped").is_none());
}

#[test]
fn prometheus_serves_exporter_and_backfilled_history() {
    let obs = Observe::start();
    let prom = &obs.prometheus;
    for (svc, slo, v) in scenario::SLIS {
        assert_eq!(obs.prom_sli(svc, slo), Some(v), "{svc}/{slo}");
    }
    let edges = prom
        .query(r#"count by (service, target_service) (http_client_requests_total{target_service="payment-api"})"#)
        .unwrap();
    assert_eq!(edges.len(), 2, "{edges:?}");

    // The drift query observe.drift sends, over the last 30 days at 1 h.
    let now = unix_now();
    let q = r#"slo:error_budget_remaining:ratio{service="checkout-api", slo="availability"}"#;
    let r = prom.query_range(q, now - 30.0 * 86400.0, now, "1h").unwrap();
    assert_eq!(r.len(), 1, "one series");
    let vals = r[0]["values"].as_array().unwrap();
    let ys: Vec<f64> = vals.iter().map(|p| p[1].as_str().unwrap().parse().unwrap()).collect();
    eprintln!("checkout drift: {} points, first {:?}, last {:?}", vals.len(), vals.first(), vals.last());
    assert!(ys.len() >= 700, "only {} points", ys.len());
    assert!(ys.windows(2).all(|w| w[1] < w[0]), "strictly falling");
    assert!((ys[0] - 0.9).abs() < 0.01, "starts near 0.9: {}", ys[0]);
    assert_eq!(*ys.last().unwrap(), expected::DRIFT_CURRENT_BUDGET);
    let last_t = vals.last().unwrap()[0].as_f64().unwrap();
    assert!(now - last_t >= 3.0 * 3600.0 - 1.0, "history ends ≥3h before now");

    let p = prom
        .query_range(
            r#"slo:error_budget_remaining:ratio{service="payment-api", slo="availability"}"#,
            now - 30.0 * 86400.0,
            now,
            "1h",
        )
        .unwrap();
    let pv = p[0]["values"].as_array().unwrap();
    assert!(pv.len() >= 700);
    assert!(pv.iter().all(|x| x[1] == "0.95"));
    // No drift data for SLOs without history.
    let none = prom
        .query_range(
            r#"slo:error_budget_remaining:ratio{service="checkout-api", slo="latency"}"#,
            now - 7.0 * 86400.0,
            now,
            "1h",
        )
        .unwrap();
    assert!(none.is_empty());
}

#[test]
fn exporter_changes_are_scraped() {
    let exp = Exporter::start("test_gauge{k=\"v\"} 1\n");
    let prom = Prometheus::start(PromOpts {
        scrape_targets: vec![exp.target()],
        wait_for: vec!["test_gauge".into()],
        ..PromOpts::default()
    });
    assert_eq!(prom.query_value("test_gauge"), Some(1.0));
    exp.set("test_gauge{k=\"v\"} 0.25\n");
    wait_for("Prometheus sees 0.25", Duration::from_secs(15), || prom.query_value("test_gauge") == Some(0.25));
    assert!(exp.scrapes() >= 2);
    // A removed series goes stale at the next scrape.
    exp.set("other_gauge 1\n");
    wait_for("test_gauge stale", Duration::from_secs(15), || {
        prom.query("test_gauge").map(|r| r.is_empty()).unwrap_or(false)
    });
}

/// The scenario reproduces the reference's published numbers (runtime-observe-measure.md §8).
#[test]
fn reference_workers_observe_scenario() {
    let obs = Observe::start();
    let core = Core::start(&scenario::manifests_dir());
    let mut w = ReferenceWorkers::serve(&core.url(), &obs.prometheus_url(), &FAST_OBSERVE);

    let t = Duration::from_secs(60);
    wait_until("reference posts all observe kinds", t, || {
        let have = |k: &str| core.assessments(None, Some(k));
        let dg = have("dependency_graph");
        let all_dg = SERVICES.iter().all(|s| dg.iter().any(|a| a.service == *s));
        (!have("slo_status").is_empty()
            && !have("portfolio_status").is_empty()
            && !have("drift_signal").is_empty()
            && all_dg)
            .then_some(())
    });
    let hb = wait_until("heartbeat", t, || core.heartbeat("workers", ReferenceWorkers::INSTANCE_ID));
    assert_eq!(hb.health, "healthy");

    let st = w.terminate(Duration::from_secs(30));
    assert!(st.success(), "reference exit: {st}");

    let dump = |k: &str| {
        for a in core.assessments(None, Some(k)).iter().rev() {
            eprintln!("{k} {} {}", a.service, a.data);
        }
    };
    for k in ["slo_status", "portfolio_status", "drift_signal", "dependency_graph"] {
        dump(k);
    }

    let slo = core.assessments(Some(CHECKOUT), Some("slo_status"));
    let avail = slo.iter().find(|a| a.slo_name() == "availability").unwrap();
    assert_eq!(avail.extra["producer"], "nthlayer-observe");
    assert_eq!(avail.d("percent_consumed").as_f64(), Some(expected::CHECKOUT_AVAILABILITY_PERCENT_CONSUMED));
    assert_eq!(avail.d("total_budget_minutes").as_f64(), Some(expected::CHECKOUT_AVAILABILITY_TOTAL_BUDGET_MINUTES));
    assert_eq!(avail.d("burned_minutes").as_f64(), Some(expected::CHECKOUT_AVAILABILITY_BURNED_MINUTES));
    assert_eq!(avail.d("status"), "HEALTHY");
    let lat = slo.iter().find(|a| a.slo_name() == "latency").unwrap();
    assert_eq!(lat.d("percent_consumed").as_f64(), Some(expected::CHECKOUT_LATENCY_PERCENT_CONSUMED));
    assert_eq!(lat.d("status"), "EXHAUSTED");
    let thr = slo.iter().find(|a| a.slo_name() == "throughput").unwrap();
    assert_eq!(thr.d("status"), "NO_DATA");

    let drift = core.assessments(Some(CHECKOUT), Some("drift_signal"));
    let d = drift.iter().find(|a| a.slo_name() == "availability").unwrap();
    assert_eq!(d.d("severity"), "critical");
    assert_eq!(d.d("pattern"), "gradual_decline");
    assert_eq!(d.d("days_until_exhaustion").as_i64(), Some(expected::DRIFT_DAYS_UNTIL_EXHAUSTION));
    assert_eq!(d.d("slope_per_week").as_f64(), Some(expected::DRIFT_SLOPE_PER_WEEK));
    assert_eq!(d.d("current_budget").as_f64(), Some(expected::DRIFT_CURRENT_BUDGET));

    let pf = core.assessments(Some("__portfolio__"), Some("portfolio_status"));
    let first = pf.last().unwrap();
    assert_eq!(first.d("total_services"), 3);
    assert_eq!(first.d("healthy_count"), 1);
    assert_eq!(first.d("exhausted_count"), 2);

    let hb = core.heartbeat("workers", ReferenceWorkers::INSTANCE_ID).unwrap();
    assert_eq!(hb.state["modules"].as_array().map(|a| a.len()), Some(10));

    // The full expected tables in `scenario::expected` are exactly what the reference posts.
    let latest = |k: &str| {
        let v: Vec<Value> = core.assessments(None, Some(k)).iter().map(|a| a.to_value()).collect();
        latest_by(&v, service_slo_key)
    };
    let mut diffs = Vec::new();
    let mut check = |kind: &str, table: Vec<(&str, Value)>| {
        let got = latest(kind);
        assert_eq!(got.len(), table.len(), "{kind}: {:?}", got.keys());
        for (key, data) in table {
            for d in diff(&data, &got[key]["data"]) {
                diffs.push(format!("{kind} {key}: {d}"));
            }
        }
    };
    check("slo_status", expected::slo_status());
    check("drift_signal", expected::drift_signal());
    check("dependency_graph", expected::dependency_graph());
    let mut p = latest("portfolio_status")["__portfolio__"]["data"].clone();
    let parents = p.as_object_mut().unwrap().remove("parent_ids").unwrap();
    assert_eq!(parents.as_array().unwrap().len(), 5);
    for d in diff(&expected::portfolio_status(), &p) {
        diffs.push(format!("portfolio_status: {d}"));
    }
    assert!(diffs.is_empty(), "{}", report(&diffs));
}
