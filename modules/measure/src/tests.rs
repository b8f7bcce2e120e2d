//! Whole-cycle tests on the fake host: what reaches core, cycle after cycle, with the state
//! handed back each time as the host would (restarts included: state is all there is).

use nthlayer_sdk::testing::FakeHost;
use nthlayer_sdk::{CycleInput, HostError, Level, Module};
use serde_json::{json, Value};

use crate::Measure;

const Q: &str = "1 - (sum(rate(reversed[7d])) / sum(rate(decisions[7d])))";
const Q2: &str = "1 - hcf_ratio";
const ECE: &str = r#"max(gen_ai_calibration_ece{service="fraud-detect",bins="10",window="30d"})"#;

fn manifests() -> Value {
    json!([{"name": "fraud-detect", "tier": "standard", "slos": [
        {"name": "availability", "target": 99.9, "slo_type": "availability", "window": "30d", "indicator_query": "up"},
        {"name": "reversal_rate", "target": 98.5, "slo_type": "availability", "window": "7d", "judgment_type": "reversal_rate", "indicator_query": Q},
        {"name": "v2-slo", "target": 95.0, "slo_type": "availability", "window": "7d", "judgment_type": "reversal_rate"}],
      "judgment_thresholds": []}])
}

struct Run {
    host: FakeHost,
    state: Option<Value>,
    config: Value,
}

impl Run {
    fn new(m: Value) -> Self {
        Run { host: FakeHost::new().with_manifests(m), state: None, config: json!({}) }
    }
    /// One cycle; returns what it submitted.
    fn cycle(&mut self) -> Vec<Value> {
        self.host.submitted.borrow_mut().clear();
        let input =
            CycleInput { task: "measure".into(), state: self.state.clone(), config: self.config.clone(), args: None };
        let out = Measure::run_cycle(&self.host, input).unwrap();
        self.state = out.state;
        let sent: Vec<Value> = self.host.submitted.borrow().iter().map(|s| s.record.clone()).collect();
        assert_eq!(out.emitted as usize, sent.len());
        sent
    }
    fn advance(&self, seconds: f64) {
        self.host.clock.set(self.host.clock.get() + seconds);
    }
}

fn of(sent: &[Value], what: &str) -> Vec<Value> {
    sent.iter()
        .filter(|r| r.get("kind").or_else(|| r.get("type")).and_then(Value::as_str) == Some(what))
        .cloned()
        .collect()
}

fn strip_id(v: &Value) -> String {
    let id = v["id"].as_str().unwrap();
    id[..id.len() - 8].to_string()
}

#[test]
fn breach_raises_quality_breach_and_autonomy_change_once() {
    let mut r = Run::new(manifests());
    r.host.set_scalar(Q, "0.92");
    let sent = r.cycle();
    // Only the judgment SLO with a query is evaluated; observe's SLO and the v2 one are not.
    assert_eq!(sent.len(), 3, "{sent:#?}");
    let jse = &of(&sent, "judgment_slo_evaluation")[0];
    assert_eq!(strip_id(jse), "jse-fraud-detect-reversal_rate-");
    assert_eq!(
        serde_json::to_string(&jse["data"]).unwrap(),
        r#"{"slo_name":"reversal_rate","slo_type":"reversal_rate","target":98.5,"current_value":92.0,"status":"breach","window":"7d"}"#
    );
    let qb = &of(&sent, "quality_breach")[0];
    assert_eq!(strip_id(qb), "vrd-breach-fraud-detect-reversal_rate-");
    assert_eq!(qb["parent_ids"], json!([jse["id"]]));
    assert_eq!(
        serde_json::to_string(&qb["data"]).unwrap(),
        r#"{"slo_name":"reversal_rate","slo_key":"fraud-detect:reversal_rate","severity":"high","judgment_type":"reversal_rate","target":98.5,"current_value":92.0}"#
    );
    let ac = &of(&sent, "autonomy_change")[0];
    assert_eq!(strip_id(ac), "vrd-auto-fraud-detect-");
    assert_eq!(ac["parent_ids"], json!([qb["id"]]));
    assert_eq!(
        serde_json::to_string(&ac["data"]).unwrap(),
        r#"{"previous_level":"fully_autonomous","new_level":"limited_autonomous","breaching_slo_count":1,"reason":"Autonomy reduced: 1 SLO/threshold breach(es)"}"#
    );
    let keys: Vec<&String> = qb.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["id", "created_at", "type", "service", "parent_ids", "data"]);

    // The breach stays open: only the evaluation, every cycle.
    for _ in 0..3 {
        r.advance(60.0);
        let sent = r.cycle();
        assert_eq!(sent.len(), 1);
        assert_eq!(of(&sent, "judgment_slo_evaluation").len(), 1);
    }
    let st = r.state.clone().unwrap();
    assert_eq!(st["autonomy_levels"], json!({"fraud-detect": "limited_autonomous"}));
    assert_eq!(st["breach_decisions"]["fraud-detect:reversal_rate"]["autonomy_action"], "reduced");
    assert_eq!(st["breach_severities"], json!({"fraud-detect:reversal_rate": "high"}));
}

#[test]
fn recovery_clears_the_decision_but_never_raises_autonomy_and_a_rebreach_fires_again() {
    let mut r = Run::new(manifests());
    r.host.set_scalar(Q, "0.92");
    r.cycle();
    r.host.set_scalar(Q, "0.99");
    let sent = r.cycle();
    assert_eq!(sent.len(), 1);
    assert_eq!(of(&sent, "judgment_slo_evaluation")[0]["data"]["status"], "healthy");
    let st = r.state.clone().unwrap();
    assert_eq!(st["breach_decisions"], json!({}));
    assert_eq!(st["breach_severities"], json!({}));
    assert_eq!(st["autonomy_levels"]["fraud-detect"], "limited_autonomous");
    // 0.97 against 98.5 consumes 100 % of budget: low, one more step down.
    r.host.set_scalar(Q, "0.97");
    let sent = r.cycle();
    assert_eq!(of(&sent, "quality_breach")[0]["data"]["severity"], "low");
    let ac = &of(&sent, "autonomy_change")[0]["data"];
    assert_eq!(
        (ac["previous_level"].as_str(), ac["new_level"].as_str()),
        (Some("limited_autonomous"), Some("advisor"))
    );
}

#[test]
fn prometheus_down_carries_status_forward_without_refiring() {
    let mut r = Run::new(manifests());
    r.host.set_scalar(Q, "0.92");
    r.cycle();
    r.host.set_instant(Q, Err(HostError::Unavailable("connection refused".into())));
    for _ in 0..2 {
        assert!(r.cycle().is_empty());
    }
    assert_eq!(r.state.as_ref().unwrap()["slo_status"]["fraud-detect:reversal_rate"], "breach");
    // Back, still in breach: no new transition.
    r.host.set_scalar(Q, "0.92");
    assert_eq!(r.cycle().len(), 1);
    // No data is the same as an error.
    r.host.set_instant(Q, Ok(json!({"resultType": "vector", "result": []})));
    assert!(r.cycle().is_empty());
    assert_eq!(r.state.as_ref().unwrap()["slo_status"]["fraud-detect:reversal_rate"], "breach");
}

#[test]
fn nan_is_a_breach() {
    let mut r = Run::new(manifests());
    r.host.set_scalar(Q, "NaN");
    let sent = r.cycle();
    assert_eq!(of(&sent, "judgment_slo_evaluation")[0]["data"]["status"], "breach");
    assert_eq!(of(&sent, "quality_breach")[0]["data"]["severity"], "critical");
}

#[test]
fn two_breaches_of_one_service_floor_at_advisor_and_observer_if_critical() {
    let mut m = manifests();
    m[0]["slos"].as_array_mut().unwrap().push(json!({"name": "high_confidence_failure", "target": 98.0,
        "slo_type": "availability", "window": "30d", "judgment_type": "high_confidence_failure", "indicator_query": Q2}));
    let mut r = Run::new(m.clone());
    r.host.set_scalar(Q, "0.975"); // 100 %: low
    r.host.set_scalar(Q2, "0.97"); // 150 %: low
    let sent = r.cycle();
    assert_eq!(of(&sent, "quality_breach").len(), 2);
    let ac = of(&sent, "autonomy_change");
    assert_eq!(ac.len(), 1);
    assert_eq!(ac[0]["data"]["new_level"], "advisor");
    assert_eq!(ac[0]["data"]["breaching_slo_count"], 2);
    assert_eq!(ac[0]["parent_ids"].as_array().unwrap().len(), 2);

    let mut r = Run::new(m);
    r.host.set_scalar(Q, "0.975");
    r.host.set_scalar(Q2, "0.5"); // critical
    let sent = r.cycle();
    assert_eq!(of(&sent, "autonomy_change")[0]["data"]["new_level"], "observer");
}

#[test]
fn bad_slos_are_skipped_with_a_log_line_and_the_rest_evaluated() {
    let mut m = manifests();
    let slos = m[0]["slos"].as_array_mut().unwrap();
    slos.push(json!({"name": "weird", "target": 90, "judgment_type": "vibes", "indicator_query": "q1"}));
    slos.push(json!({"name": "too-high", "target": 150, "judgment_type": "outcomes", "indicator_query": "q2"}));
    slos.push(json!({"name": "many", "target": 90, "judgment_type": "outcomes", "indicator_query": "q3"}));
    slos.push(json!({"name": "text", "target": 90, "judgment_type": "escalation", "indicator_query": "q4"}));
    let mut r = Run::new(m);
    r.host.set_scalar(Q, "0.99");
    r.host
        .set_instant("q3", Ok(json!({"resultType": "vector", "result": [{"value": [1, "1"]}, {"value": [1, "0.5"]}]})));
    r.host.set_instant("q4", Ok(json!({"resultType": "string", "result": [1, "hello"]})));
    let sent = r.cycle();
    assert_eq!(sent.len(), 1);
    assert_eq!(of(&sent, "judgment_slo_evaluation")[0]["data"]["slo_name"], "reversal_rate");
    let logs = r.host.logs.borrow();
    let warns: Vec<&String> = logs.iter().filter(|(l, _)| *l == Level::Warn).map(|(_, m)| m).collect();
    assert_eq!(
        warns,
        ["measure_slo_skipped", "measure_slo_skipped", "measure_prometheus_failed", "measure_prometheus_failed"]
    );
    // Only the valid ones were queried.
    assert!(!r.host.instant_calls.borrow().iter().any(|q| q == "q1" || q == "q2"));
}

#[test]
fn core_down_keeps_state() {
    let mut r = Run::new(manifests());
    r.host.set_scalar(Q, "0.92");
    r.cycle();
    let before = r.state.clone();
    *r.host.core_error.borrow_mut() = Some(HostError::Unavailable("down".into()));
    assert!(r.cycle().is_empty());
    assert_eq!(r.state, before);
}

fn with_threshold(ece_limit: f64) -> Value {
    let mut m = manifests();
    m[0]["judgment_thresholds"] = json!([{"type": "calibration", "bounds": {"maximum_expected_calibration_error": ece_limit},
        "measurement": {"bins": 10, "window": "30d"}}]);
    m
}

#[test]
fn threshold_breach_fires_at_first_evaluation_then_only_after_rearming() {
    let mut r = Run::new(with_threshold(0.05));
    r.host.set_scalar(Q, "0.99");
    r.host.set_scalar(ECE, "0.08");
    let sent = r.cycle();
    let jte = &of(&sent, "judgment_threshold_evaluation")[0];
    assert_eq!(strip_id(jte), "jte-fraud-detect-calibration-");
    assert_eq!(
        serde_json::to_string(&jte["data"]).unwrap(),
        r#"{"threshold_key":"fraud-detect:calibration:e8d1ecdadaae","outcome":{"type":"calibration","status":"breach","bounds":[{"bound":"maximum_expected_calibration_error","status":"breach","measured":0.08,"limit":0.05,"reason":null}],"segments":[]}}"#
    );
    let tb = &of(&sent, "quality_breach")[0];
    assert_eq!(strip_id(tb), "vrd-tbreach-fraud-detect-calibration-");
    assert_eq!(tb["parent_ids"], json!([jte["id"]]));
    assert_eq!(
        tb["data"]["summary"],
        "calibration threshold breach on fraud-detect: maximum_expected_calibration_error 0.08 > 0.05"
    );
    let keys: Vec<&String> = tb["data"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["threshold_key", "threshold_type", "severity", "outcome", "breaching_bounds", "summary"]);
    // Threshold breaches do not govern autonomy by default.
    assert!(of(&sent, "autonomy_change").is_empty());

    // Before the next interval the phase does not run at all.
    r.advance(60.0);
    assert!(of(&r.cycle(), "judgment_threshold_evaluation").is_empty());
    // Next interval, same outcome: nothing to report, no second breach.
    r.advance(900.0);
    let sent = r.cycle();
    assert!(of(&sent, "judgment_threshold_evaluation").is_empty() && of(&sent, "quality_breach").is_empty());
    // Back within: reported (signature changed), then three runs over three intervals re-arm.
    r.host.set_scalar(ECE, "0.01");
    for i in 0..4 {
        r.advance(900.0);
        let sent = r.cycle();
        assert_eq!(of(&sent, "judgment_threshold_evaluation").len(), usize::from(i == 0), "run {i}");
    }
    let st = &r.state.as_ref().unwrap()["threshold_state"]["fraud-detect:calibration:e8d1ecdadaae"];
    assert_eq!((st["armed"].as_bool(), st["within_count"].as_u64()), (Some(true), Some(4)));
    r.host.set_scalar(ECE, "0.09");
    r.advance(900.0);
    let sent = r.cycle();
    assert_eq!(of(&sent, "quality_breach").len(), 1);
    assert_eq!(of(&sent, "quality_breach")[0]["data"]["breaching_bounds"][0]["measured"], 0.09);
}

#[test]
fn threshold_heartbeat_re_emits_and_rejected_breach_fires_next_run() {
    let mut r = Run::new(with_threshold(0.05));
    r.config = json!({"measure": {"threshold_interval_seconds": 10, "threshold_heartbeat_seconds": 25}});
    r.host.set_scalar(Q, "0.99");
    r.host.set_scalar(ECE, "0.08");
    *r.host.submit_error.borrow_mut() =
        Some(HostError::Rejected { status: 500, code: "boom".into(), detail: json!(null) });
    assert!(r.cycle().is_empty());
    assert!(r.state.as_ref().unwrap()["threshold_state"].as_object().unwrap().is_empty());
    *r.host.submit_error.borrow_mut() = None;
    r.advance(10.0);
    let sent = r.cycle();
    assert_eq!(of(&sent, "quality_breach").len(), 1);
    r.advance(10.0);
    assert!(of(&r.cycle(), "judgment_threshold_evaluation").is_empty());
    r.advance(20.0);
    assert_eq!(of(&r.cycle(), "judgment_threshold_evaluation").len(), 1); // 30 s >= heartbeat
}

#[test]
fn threshold_autonomy_governs_when_switched_on() {
    let mut r = Run::new(with_threshold(0.05));
    r.config = json!({"measure": {"threshold_autonomy": true}});
    r.host.set_scalar(Q, "0.99");
    r.host.set_scalar(ECE, "0.08");
    let sent = r.cycle();
    let tb = &of(&sent, "quality_breach")[0];
    let ac = &of(&sent, "autonomy_change")[0];
    assert_eq!(ac["parent_ids"], json!([tb["id"]]));
    assert_eq!(ac["data"]["new_level"], "limited_autonomous"); // high: two steps
    let st = r.state.clone().unwrap();
    assert_eq!(st["threshold_governed"], json!(["fraud-detect:calibration:e8d1ecdadaae"]));
    assert!(st["slo_status"].get("fraud-detect:calibration:e8d1ecdadaae").is_none());
    // An SLO breach later counts the open threshold breach too: two breaches, floor advisor.
    r.advance(60.0);
    r.host.set_scalar(Q, "0.975");
    let sent = r.cycle();
    let ac = &of(&sent, "autonomy_change")[0]["data"];
    assert_eq!((ac["breaching_slo_count"].as_u64(), ac["new_level"].as_str()), (Some(2), Some("advisor")));
}

#[test]
fn bad_threshold_is_skipped_and_the_rest_evaluated() {
    let mut m = with_threshold(0.05);
    m[0]["judgment_thresholds"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "feedback_latency", "bounds": {"maximum_p75": "1h"}}));
    let mut r = Run::new(m);
    r.host.set_scalar(Q, "0.99");
    r.host.set_scalar(ECE, "0.01");
    let sent = r.cycle();
    assert_eq!(of(&sent, "judgment_threshold_evaluation").len(), 1);
    assert!(r.host.logs.borrow().iter().any(|(l, m)| *l == Level::Warn && m == "threshold_skipped"));
}

#[test]
fn feedback_latency_uses_client_side_quantiles() {
    let mut m = manifests();
    m[0]["judgment_thresholds"] =
        json!([{"type": "feedback_latency", "bounds": {"maximum_p50": "1h", "maximum_p90": "1h"}}]);
    let mut r = Run::new(m);
    let now = r.host.clock.get();
    r.host.set_scalar(Q, "0.99");
    r.host.set_scalar("min(prometheus_tsdb_lowest_timestamp_seconds)", &(now - 40.0 * 86400.0).to_string());
    let hist = r#"sum by (le) (increase(gen_ai_feedback_latency_seconds_bucket{service="fraud-detect"}[30d]))"#;
    r.host.set_instant(
        hist,
        Ok(json!({"resultType": "vector", "result": [
        {"metric": {"le": "600"}, "value": [1, "2"]}, {"metric": {"le": "3600"}, "value": [1, "8"]},
        {"metric": {"le": "+Inf"}, "value": [1, "10"]}]})),
    );
    let sent = r.cycle();
    let o = &of(&sent, "judgment_threshold_evaluation")[0]["data"]["outcome"];
    assert_eq!(
        o["bounds"][0],
        json!({"bound": "maximum_p50", "status": "within", "measured": 600.0 + 3000.0 * 3.0 / 6.0, "limit": "1h", "reason": null})
    );
    assert_eq!(
        o["bounds"][1],
        json!({"bound": "maximum_p90", "status": "breach", "measured": 3600.0, "limit": "1h", "reason": "lower_bound"})
    );
    assert_eq!(
        of(&sent, "quality_breach")[0]["data"]["summary"],
        "feedback_latency threshold breach on fraud-detect: maximum_p90 3600s >= 1h (lower bound)"
    );
}

#[test]
fn corrupt_stored_autonomy_level_restores_as_advisor_never_wider() {
    let mut r = Run::new(manifests());
    r.state = Some(json!({"autonomy_levels": {"fraud-detect": 7}}));
    r.host.set_scalar(Q, "0.92");
    let sent = r.cycle();
    let ac = &of(&sent, "autonomy_change")[0]["data"];
    // A high breach drops two rungs from advisor: observer (from fully_autonomous it would be
    // limited_autonomous, wider than the level the corrupt entry stood for).
    assert_eq!((ac["previous_level"].as_str(), ac["new_level"].as_str()), (Some("advisor"), Some("observer")));
    assert_eq!(r.state.unwrap()["autonomy_levels"], json!({"fraud-detect": "observer"}));
}

/// The state is keyed by what the catalogue declares (service:SLO, service), never by what
/// was seen: 200 services flapping between breach and recovery for 60 cycles leave it no
/// larger than the first breach-and-recovery did.
#[test]
fn state_does_not_grow_with_cycles_or_transitions() {
    let slo = |i: usize| {
        json!({"name": format!("svc-{i:03}"), "tier": "standard", "slos": [
            {"name": "reversal_rate", "target": 98.5, "slo_type": "availability", "window": "7d",
             "judgment_type": "reversal_rate", "indicator_query": Q}], "judgment_thresholds": []})
    };
    let mut r = Run::new(Value::Array((0..200).map(slo).collect()));
    let size = |r: &Run| r.state.as_ref().unwrap().to_string().len();
    let mut first = 0;
    for cycle in 0..60 {
        r.host.set_scalar(Q, if cycle % 2 == 0 { "0.92" } else { "0.99" });
        r.cycle();
        r.advance(60.0);
        if cycle < 4 {
            first = first.max(size(&r));
        } else {
            assert!(size(&r) <= first, "cycle {cycle}: {} bytes, at most {first} in the first four", size(&r));
        }
    }
    assert_eq!(r.state.as_ref().unwrap()["slo_status"].as_object().unwrap().len(), 200);
}
