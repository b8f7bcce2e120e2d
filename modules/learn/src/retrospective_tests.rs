//! learn.retrospective against FakeHost.

use super::*;
use nthlayer_sdk::testing::FakeHost;
use nthlayer_sdk::HostError;
use nthlayer_sdk::Level;

fn cfg() -> Config {
    Config { retrospective_delay_seconds: 0, ..Config::default() }
}

fn snap(id: &str, service: &str, created: &str, opened: &str, closed: &str) -> Value {
    json!({"id": id, "created_at": created, "kind": "correlation_snapshot", "service": service,
           "data": {"domain": {"service": service, "environment": "production"},
                    "window": {"opened_at": opened, "closed_at": closed, "duration_seconds": 314.24786, "close_reason": "trigger"},
                    "event_count": 2, "affected_services": [service], "parent_ids": []}})
}

fn t(m: u32, s: u32) -> String {
    format!("2026-11-24T14:{m:02}:{s:02}.000000+00:00")
}

fn retros(host: &FakeHost) -> Vec<Value> {
    host.submitted_of_kind("retrospective")
}

#[test]
fn every_new_snapshot_gets_one_oldest_first_and_none_twice() {
    let host = FakeHost::new();
    // core answers newest first
    *host.assessments.borrow_mut() =
        (0..5).rev().map(|i| snap(&format!("csn-{i}"), "checkout", &t(10, i), &t(0, 0), &t(9, 0))).collect();
    let st = run(&host, &cfg(), None).state;
    let r = retros(&host);
    let ids: Vec<&str> = r.iter().map(|r| r["data"]["correlation_snapshot_id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["csn-0", "csn-1", "csn-2", "csn-3", "csn-4"]);
    assert_eq!(st.as_ref().unwrap()["services"]["checkout"]["cursor"], json!(t(10, 4)));
    run(&host, &cfg(), st.as_ref());
    assert_eq!(retros(&host).len(), 5, "no second retrospective");
    // same instant as the cursor, not yet written
    host.assessments.borrow_mut().insert(0, snap("csn-5", "checkout", &t(10, 4), &t(0, 0), &t(9, 0)));
    run(&host, &cfg(), st.as_ref());
    assert_eq!(retros(&host).len(), 6);
}

#[test]
fn content_timeline_coverage_and_recommendations() {
    let host = FakeHost::new().with_manifests(json!([
        {"name": "checkout", "dependencies": [{"name": "fraud-detect"}, {"name": ""}, {}]},
        {"name": "checkout", "dependencies": [{"name": "other"}]},
    ]));
    *host.assessments.borrow_mut() = vec![snap("csn-1", "checkout", &t(10, 0), &t(0, 0), &t(9, 0))];
    let mut vs: Vec<Value> = (0..6)
        .map(|i| json!({"id": format!("w{i}"), "type": "quality_breach", "service": "checkout", "created_at": t(1, i)}))
        .collect();
    vs.push(json!({"id": "out-w0", "type": "outcome_resolution", "service": "checkout", "created_at": t(12, 0),
                   "parent_ids": ["w0"], "outcome_status": "confirmed"}));
    vs.push(json!({"id": "late", "type": "quality_breach", "service": "checkout", "created_at": t(20, 0)}));
    vs.reverse();
    *host.verdicts.borrow_mut() = vs;
    host.descendants.borrow_mut().insert(
        "csn-1".into(),
        Ok(json!([
            {"id": "tri", "type": "triage", "service": null, "created_at": t(11, 0), "outcome": {"status": "pending"}},
            {"id": "out-tri", "type": "outcome_resolution", "created_at": t(11, 30)},
        ])),
    );
    run(&host, &cfg(), None);
    let d = &retros(&host)[0]["data"];
    assert_eq!(d["verdict_count"], 7);
    assert_eq!(d["decisions_affected"], 6);
    assert_eq!(d["duration_minutes"], 314.24786 / 60.0);
    assert_eq!(d["outcome_coverage"], json!({"resolved": 1, "pending": 6, "total": 7}));
    let tl = d["timeline"].as_array().unwrap();
    assert_eq!(
        tl[0],
        json!({"timestamp": t(1, 0), "type": "quality_breach", "service": "checkout", "id": "w0", "outcome": "confirmed"})
    );
    assert_eq!(
        tl[6],
        json!({"timestamp": t(11, 0), "type": "triage", "service": "checkout", "id": "tri", "outcome": "pending"})
    );
    let recs: Vec<&str> =
        d["recommendations"].as_array().unwrap().iter().map(|r| r["type"].as_str().unwrap()).collect();
    assert_eq!(recs, ["slo_gate", "change_control"]);
    assert_eq!(d["trigger_service"], "checkout");
    assert_eq!(d["declared_dependencies_by_service"], json!({"checkout": ["fraud-detect"]}));
    let keys: Vec<&String> = d.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "correlation_snapshot_id",
            "duration_minutes",
            "decisions_affected",
            "verdict_count",
            "root_cause",
            "blast_radius",
            "timeline",
            "recommendations",
            "outcome_coverage",
            "trigger_service",
            "declared_dependencies_by_service"
        ]
    );
    assert!(retros(&host)[0]["id"].as_str().unwrap().starts_with("retro-checkout-"));
}

#[test]
fn snapshot_without_window_is_skipped_and_the_cycle_goes_on() {
    let host = FakeHost::new();
    let mut bad = snap("csn-bad", "checkout", &t(10, 0), &t(0, 0), &t(9, 0));
    bad["data"].as_object_mut().unwrap().remove("window");
    *host.assessments.borrow_mut() = vec![snap("csn-good", "checkout", &t(10, 1), &t(0, 0), &t(9, 0)), bad];
    let st = run(&host, &cfg(), None).state.unwrap();
    assert_eq!(retros(&host).len(), 1);
    assert!(host.logs.borrow().iter().any(|(l, m)| *l == Level::Warn && m == "learn_retrospective_skipped"));
    assert_eq!(st["services"]["checkout"]["cursor"], json!(t(10, 1)));
}

#[test]
fn young_snapshots_wait_and_failed_posts_hold_the_cursor() {
    let host = FakeHost::new();
    let now = host.clock.get();
    *host.assessments.borrow_mut() = vec![
        snap("csn-young", "checkout", &time::iso(now - 10.0), &t(0, 0), &t(9, 0)),
        snap("csn-old", "checkout", &time::iso(now - 600.0), &t(0, 0), &t(9, 0)),
    ];
    let st = run(&host, &Config::default(), None).state.unwrap();
    assert_eq!(retros(&host).len(), 1);
    assert_eq!(st["services"]["checkout"]["cursor"], json!(time::iso(now - 600.0)));

    let host = FakeHost::new();
    *host.assessments.borrow_mut() = vec![snap("csn-1", "checkout", &t(10, 0), &t(0, 0), &t(9, 0))];
    *host.core_error.borrow_mut() = Some(HostError::Unavailable("down".into()));
    let st = run(&host, &cfg(), None).state.unwrap();
    assert_eq!(st["services"], json!({}));
}

/// `n` snapshots one second apart, snapshot `i` of `services[i % len]`, newest first as core
/// answers.
fn backlog(host: &FakeHost, n: usize, services: &[&str]) {
    let t0 = host.clock.get() - 86_400.0;
    *host.assessments.borrow_mut() = (0..n)
        .rev()
        .map(|i| {
            let at = time::iso(t0 + i as f64);
            snap(&format!("csn-{i:05}"), services[i % services.len()], &at, &t(0, 0), &t(9, 0))
        })
        .collect();
}

/// Cycles until a cycle writes nothing; every snapshot id written, in order.
fn drain(host: &FakeHost) -> Vec<String> {
    let mut st = None;
    for _ in 0..200 {
        let before = retros(host).len();
        st = run(host, &cfg(), st.as_ref()).state;
        let now = retros(host).len();
        assert!(now - before <= WRITES_PER_CYCLE);
        if now == before {
            break;
        }
    }
    retros(host).iter().map(|r| r["data"]["correlation_snapshot_id"].as_str().unwrap().to_string()).collect()
}

#[test]
fn a_backlog_beyond_one_page_gets_one_each_through_per_service_pages() {
    let host = FakeHost::new();
    // 12 services: more than a cycle's per-service queries, so they take turns.
    let services: Vec<String> = (0..12).map(|i| format!("svc-{i:02}")).collect();
    let names: Vec<&str> = services.iter().map(String::as_str).collect();
    backlog(&host, 2500, &names);
    let ids = drain(&host);
    let distinct: HashSet<&String> = ids.iter().collect();
    assert_eq!((ids.len(), distinct.len()), (2500, 2500), "every snapshot once");
    assert!(!host.logs.borrow().iter().any(|(l, _)| *l == Level::Error));
}

#[test]
fn more_than_a_page_of_one_service_is_logged_and_the_reachable_ones_are_written() {
    let host = FakeHost::new();
    backlog(&host, 1200, &["big"]);
    let ids = drain(&host);
    let distinct: HashSet<&String> = ids.iter().collect();
    assert_eq!((ids.len(), distinct.len()), (1000, 1000), "the newest 1000: all core hands out");
    assert!(host.logs.borrow().iter().any(|(l, m)| *l == Level::Error && m == "learn_snapshots_beyond_reach"));
}
