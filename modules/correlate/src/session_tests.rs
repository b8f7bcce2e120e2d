use super::*;
use nthlayer_sdk::testing::FakeHost;

const BREACH_AT: &str = "2026-11-24T15:08:40.615105+00:00";

fn input(state: Option<Value>) -> CycleInput {
    CycleInput { task: "correlate".into(), state, config: json!({}), args: None }
}

fn breach(id: &str, service: &str, at: &str) -> Value {
    json!({"id": id, "type": "quality_breach", "service": service, "created_at": at})
}

fn slo(id: &str, service: &str, status: &str, at: &str) -> Value {
    json!({"id": id, "kind": "slo_status", "service": service, "created_at": at, "data": {"status": status}})
}

/// Runs `n` cycles 10 s apart, feeding each cycle's state to the next, as the host does.
fn cycles(h: &FakeHost, mut state: Option<Value>, n: usize) -> Option<Value> {
    for _ in 0..n {
        let out = run(h, &input(state.take()));
        // Through text, as the state travels through core.
        state = out.state.map(|s| serde_json::from_str(&s.to_string()).unwrap());
        h.clock.set(h.clock.get() + 10.0);
    }
    state
}

#[test]
fn one_breach_over_twelve_cycles_is_exactly_one_snapshot() {
    let h = FakeHost::new();
    *h.verdicts.borrow_mut() = vec![breach("vrd-1", "fraud-detect", BREACH_AT)];
    *h.assessments.borrow_mut() = vec![slo("asm-1", "fraud-detect", "EXHAUSTED", "2026-11-24T15:08:39+00:00")];
    let state = cycles(&h, None, 12).unwrap();
    let snaps = h.submitted_of_kind("correlation_snapshot");
    assert_eq!(snaps.len(), 1, "{snaps:#?}");
    assert_eq!(snaps[0]["data"]["event_count"], 2);
    assert_eq!(state["cursor"], BREACH_AT);
    assert_eq!(state["cursor_ids"], json!(["vrd-1"]));
    assert_eq!(state["windows"], json!({}));
}

#[test]
fn restart_does_not_resnapshot() {
    let h = FakeHost::new();
    *h.verdicts.borrow_mut() = vec![breach("vrd-1", "s", BREACH_AT)];
    let state = cycles(&h, None, 2);
    assert_eq!(h.submitted_of_kind("correlation_snapshot").len(), 1);
    // A new process: nothing in memory, only the persisted state.
    let h2 = FakeHost::new();
    h2.clock.set(h.clock.get());
    *h2.verdicts.borrow_mut() = h.verdicts.borrow().clone();
    cycles(&h2, state, 5);
    assert!(h2.submitted_of_kind("correlation_snapshot").is_empty());
    // …whereas without state the breach would be snapshotted again (the reference's case).
    let h3 = FakeHost::new();
    *h3.verdicts.borrow_mut() = h.verdicts.borrow().clone();
    cycles(&h3, None, 1);
    assert_eq!(h3.submitted_of_kind("correlation_snapshot").len(), 1);
}

#[test]
fn open_window_survives_restart_with_its_events() {
    let h = FakeHost::new();
    let at = time::iso(h.now() - 5.0);
    *h.assessments.borrow_mut() = vec![slo("asm-1", "s", "WARNING", &at)];
    let state = cycles(&h, None, 1).unwrap();
    assert_eq!(state["windows"]["s:production"]["event_count"], 1);
    assert!(h.submitted.borrow().is_empty());
    let h2 = FakeHost::new();
    h2.clock.set(h.clock.get() + 60.0);
    *h2.assessments.borrow_mut() = h.assessments.borrow().clone();
    cycles(&h2, Some(state), 1);
    let snaps = h2.submitted_of_kind("correlation_snapshot");
    assert_eq!(snaps.len(), 1);
    assert_eq!(snaps[0]["data"]["event_count"], 1);
    assert_eq!(snaps[0]["data"]["window"]["close_reason"], "gap");
}

#[test]
fn snapshot_payload_field_by_field() {
    let h = FakeHost::new();
    let now = h.now();
    *h.verdicts.borrow_mut() = vec![breach("vrd-b", "fraud-detect", &time::iso(now - 7.0))];
    *h.assessments.borrow_mut() = vec![slo("asm-x", "fraud-detect", "EXHAUSTED", &time::iso(now - 8.0))];
    run(&h, &input(None));
    let s = &h.submitted_of_kind("correlation_snapshot")[0];
    let keys: Vec<&String> = s.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["id", "created_at", "kind", "service", "data"]);
    let id = s["id"].as_str().unwrap();
    assert!(id.starts_with("csn-fraud-detect-production-") && id.len() == "csn-fraud-detect-production-".len() + 8);
    assert_eq!(s["created_at"], time::iso(now));
    assert_eq!(s["service"], "fraud-detect");
    let d = &s["data"];
    let keys: Vec<&String> = d.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "domain",
            "window",
            "event_count",
            "event_types",
            "peak_severity",
            "affected_services",
            "environment_source",
            "parent_ids",
            "nl_summary"
        ]
    );
    assert_eq!(d["domain"], json!({"service": "fraud-detect", "environment": "production"}));
    assert_eq!(
        d["window"],
        json!({"opened_at": time::iso(now - 7.0), "closed_at": time::iso(now), "duration_seconds": 7.0,
               "close_reason": "trigger"})
    );
    assert_eq!(d["event_count"], 2);
    assert_eq!(d["event_types"].to_string(), r#"{"quality_score":1,"metric_breach":1}"#);
    assert_eq!(d["peak_severity"], 1.0);
    assert_eq!(d["affected_services"], json!(["fraud-detect"]));
    assert_eq!(d["environment_source"], "default");
    assert_eq!(d["parent_ids"], json!(["vrd-b"]));
    assert_eq!(d["nl_summary"], Value::Null);
    assert!(h.logs.borrow().iter().any(|(_, m)| m == "correlate_summary_failed"));
}

#[test]
fn summary_lands_in_the_snapshot() {
    let h = FakeHost::new();
    *h.llm.borrow_mut() =
        Some(Ok(json!({"summary": "Breach on s.", "notable_omissions": ["no traces"], "confidence": 0.4})));
    *h.verdicts.borrow_mut() = vec![breach("v", "s", BREACH_AT)];
    run(&h, &input(None));
    let s = &h.submitted_of_kind("correlation_snapshot")[0];
    assert_eq!(s["data"]["nl_summary"]["summary"], "Breach on s.");
    assert_eq!(s["data"]["nl_summary"]["prompt_version"], summary::PROMPT_VERSION);
}

#[test]
fn windows_are_per_service_and_healthy_ones_close_on_gap() {
    let h = FakeHost::new();
    let now = h.now();
    *h.verdicts.borrow_mut() = vec![breach("v", "a", &time::iso(now - 1.0))];
    *h.assessments.borrow_mut() = vec![slo("h", "b", "HEALTHY", &time::iso(now - 1.0))];
    let state = cycles(&h, None, 1).unwrap();
    assert_eq!(h.submitted_of_kind("correlation_snapshot").len(), 1);
    assert!(state["windows"].get("b:production").is_some());
    cycles(&h, Some(state), 6);
    let snaps = h.submitted_of_kind("correlation_snapshot");
    assert_eq!(snaps.len(), 2);
    assert_eq!(snaps[1]["service"], "b");
    assert_eq!(snaps[1]["data"]["window"]["close_reason"], "gap");
    assert_eq!(snaps[1]["data"]["peak_severity"], 0.1);
    assert_eq!(snaps[1]["data"]["parent_ids"], json!([]));
}

#[test]
fn core_down_on_submit_keeps_the_window_for_the_next_cycle() {
    let h = FakeHost::new();
    let mut w = Windows::default();
    w.ingest(crate::events::from_verdict(&breach("v", "s", BREACH_AT), 0.0).unwrap(), h.now());
    let state = json!({"cursor": BREACH_AT, "cursor_ids": ["v"], "windows": w.to_state()});
    *h.core_error.borrow_mut() = Some(HostError::Unavailable("down".into()));
    let out = run(&h, &input(Some(state)));
    assert_eq!(out.emitted, 0);
    let state = out.state.unwrap();
    assert_eq!(state["windows"]["s:production"]["event_count"], 1);
    assert_eq!(state["cursor"], BREACH_AT);
    // Core back: the snapshot goes out once.
    *h.core_error.borrow_mut() = None;
    cycles(&h, Some(state), 3);
    assert_eq!(h.submitted_of_kind("correlation_snapshot").len(), 1);
}

#[test]
fn woken_cycle_is_a_polled_cycle() {
    let polled = FakeHost::new();
    let woken = FakeHost::new();
    for h in [&polled, &woken] {
        *h.verdicts.borrow_mut() = vec![breach("v", "s", BREACH_AT)];
    }
    let a = run(&polled, &input(None));
    let wake = json!({"wake": {"kind": "verdict", "type": "quality_breach", "id": "v"}});
    let b = run(&woken, &CycleInput { args: Some(wake), ..input(None) });
    assert_eq!(a, b);
    assert_eq!(polled.submitted_of_kind("correlation_snapshot"), woken.submitted_of_kind("correlation_snapshot"));
}

#[test]
fn summaries_stop_when_the_cycle_budget_is_spent_but_snapshots_do_not() {
    // Every LLM call takes 25 s of (fake) time.
    let h = FakeHost::new();
    h.llm_advance_seconds.set(25.0);
    *h.llm.borrow_mut() = Some(Ok(json!({"summary": "s"})));
    *h.verdicts.borrow_mut() = (0..5).map(|i| breach(&format!("v{i}"), &format!("svc{i}"), BREACH_AT)).collect();
    let out = run(&h, &input(None));
    assert_eq!(out.emitted, 5);
    let snaps = h.submitted_of_kind("correlation_snapshot");
    let with: Vec<bool> = snaps.iter().map(|s| !s["data"]["nl_summary"].is_null()).collect();
    // 0 s, 25 s, 50 s: asked; 75 s, 100 s: over the 60 s budget.
    assert_eq!(with, [true, true, true, false, false]);
    assert_eq!(h.llm_calls.borrow().len(), 3);
}

/// The bound at 1,000 services' pace: 30 unhealthy services reporting 3 SLOs every cycle for
/// 400 cycles (over four 15-minute windows each). The saved state stays under a fixed size
/// per open window, however many events the windows have taken in.
#[test]
fn state_stays_bounded_under_a_steady_stream_of_unhealthy_status() {
    let h = FakeHost::new();
    let (services, slos) = (30, 3);
    let mut state = None;
    let mut largest = 0;
    for cycle in 0..400u64 {
        let at = time::iso(h.now() - 1.0);
        *h.assessments.borrow_mut() = (0..services * slos)
            .map(|i| slo(&format!("asm-{cycle}-{i}"), &format!("svc-{}", i / slos), "CRITICAL", &at))
            .collect();
        state = cycles(&h, state, 1);
        let size = state.as_ref().unwrap().to_string().len();
        largest = largest.max(size);
    }
    let snaps = h.submitted_of_kind("correlation_snapshot");
    assert!(snaps.len() >= services * 4, "windows closed {} times", snaps.len());
    assert!(snaps.iter().any(|s| s["data"]["event_count"].as_u64() >= Some(200)));
    assert!(largest < services * 1_024 + 4_096, "state reached {largest} bytes for {services} windows");
}
