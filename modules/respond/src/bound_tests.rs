//! The state's bound: however many snapshots arrive, the saved incidents stay within
//! `Keep`, and what is dropped first is what matters least.

use nthlayer_sdk::{time, Host, Level};
use serde_json::{json, Value};

use super::incident::{Incident, Keep, State, AWAITING_APPROVAL};
use super::tests::{host, run, snapshot};

/// 30 snapshots a cycle (30 unhealthy services' windows closing), no LLM: every one opens
/// an incident that escalates at once. 36 cycles, 1,080 incidents, all within a day.
#[test]
fn incidents_in_state_stay_within_the_default_bound() {
    let h = host();
    let mut state = None;
    let mut largest = 0;
    for cycle in 0..36 {
        let at = time::iso(h.now() - 1.0);
        *h.assessments.borrow_mut() =
            (0..30).map(|i| snapshot(&format!("csn-{cycle}-{i}"), &at, &[&format!("vrd-{cycle}-{i}")])).collect();
        let (st, _) = run(&h, state.take());
        let st: Value = serde_json::from_str(&st.to_string()).unwrap();
        largest = largest.max(st.to_string().len());
        state = Some(st);
        h.clock.set(h.clock.get() + 30.0);
    }
    let kept = state.unwrap()["incidents"].as_object().unwrap().len();
    assert_eq!(kept, Keep::default().incidents);
    assert!(largest <= Keep::default().bytes + 1_024, "state reached {largest} bytes");
    assert!(h.logs.borrow().iter().any(|(l, m)| *l == Level::Warn && m == "respond_incident_evicted"));
}

fn inc(id: &str, state: &str, updated: f64) -> Incident {
    Incident { id: id.into(), state: state.into(), updated_at: time::iso(updated), ..Incident::default() }
}

#[test]
fn terminal_go_first_then_active_then_awaiting_approval_oldest_first() {
    let t = 1_795_532_400.0;
    let s = State {
        incidents: vec![
            inc("wait-old", AWAITING_APPROVAL, t),
            inc("done-new", "resolved", t + 50.0),
            inc("active-old", "triaging", t + 1.0),
            inc("done-old", "escalated", t + 2.0),
            inc("active-new", "investigating", t + 60.0),
        ],
        ..State::default()
    };
    let ids = |keep: Keep| {
        let (v, evicted) = s.save(t + 100.0, 86400.0, keep);
        let kept: Vec<String> = v["incidents"].as_object().unwrap().keys().cloned().collect();
        (kept, evicted.into_iter().map(|(id, _)| id).collect::<Vec<_>>())
    };
    let big = usize::MAX;
    assert_eq!(ids(Keep { incidents: 4, bytes: big }).1, ["done-old"]);
    assert_eq!(ids(Keep { incidents: 3, bytes: big }).0, ["wait-old", "active-old", "active-new"]);
    assert_eq!(ids(Keep { incidents: 1, bytes: big }).0, ["wait-old"]);
    // The byte budget counts the saved form: room for exactly two incidents keeps two.
    let one = serde_json::to_value(&s.incidents[0]).unwrap().to_string().len();
    assert_eq!(ids(Keep { incidents: big, bytes: 2 * one + 10 }).0.len(), 2);
    // Open order is kept in what stays.
    assert_eq!(ids(Keep::default()).0, ["wait-old", "done-new", "active-old", "done-old", "active-new"]);
}

#[test]
fn the_bound_is_configurable_and_bad_values_are_logged() {
    let h = host();
    let c = super::config::RespondConfig::from_input(
        &h,
        &json!({"respond": {"max_incidents": 5, "max_incident_bytes": 0}}),
    );
    assert_eq!(c.keep, Keep { incidents: 5, bytes: Keep::default().bytes });
    assert_eq!(h.logs.borrow().iter().filter(|(_, m)| m == "respond_config_invalid").count(), 1);
}
