//! Tests of `observe.drift`: the reference's drift payloads, and paging across cycles.

use std::cell::RefCell;

use super::*;
use nthlayer_sdk::testing::FakeHost;
use nthlayer_sdk::HostError;

const T0: f64 = 1_792_940_927.615;
const QUERY: &str = "slo:error_budget_remaining:ratio{service=\"svc\", slo=\"availability\"}";

fn input() -> CycleInput {
    CycleInput { task: "observe.drift".into(), state: None, config: json!({}), args: None }
}

fn host(tier: &str) -> FakeHost {
    FakeHost::new().with_manifests(json!([{"name": "svc", "tier": tier, "slos": [
        {"name": "availability", "target": 99.9, "window": "30d"}]}]))
}

fn series(n: usize, step: f64, f: impl Fn(f64) -> f64) -> Value {
    // Values travel as Prometheus strings, spelled as Python's repr would.
    let values: Vec<Value> = (0..n).map(|i| json!([T0 + i as f64 * step, py::repr(f(i as f64))])).collect();
    json!({"resultType": "matrix", "result": [{"metric": {}, "values": values}]})
}

fn drift_of(tier: &str, data: Value) -> String {
    let h = host(tier);
    h.set_range(QUERY, Ok(data));
    run(&h, &input());
    let sub = h.submitted_of_kind("drift_signal");
    assert_eq!(sub.len(), 1, "logs: {:?}", h.logs.borrow());
    sub[0]["data"].to_string()
}

const INVESTIGATE_HIGH: &str = "Investigate recent changes. Common causes: increased traffic, dependency degradation, or configuration drift. High confidence in trend - proactive investigation recommended. Run `nthlayer-observe verify` to check metric coverage.";

// Every expected payload below is the reference's DriftAnalyzer output for the same
// series (nthlayer-workers 3.0.3, numpy 2.4.6, scipy 1.17.1).

#[test]
fn live_run_decline_0_9_to_0_6() {
    let got = drift_of("critical", series(721, 3600.0, |i| 0.9 - 0.3 * i / 720.0));
    let want = json!({"slo_name":"availability","severity":"critical","pattern":"gradual_decline","slope_per_week":-0.07,
        "days_until_exhaustion":60,"current_budget":0.6000000000000001,
        "summary":"Error budget declining at 7.00% per week with high confidence (R²=1.00).","recommendation":INVESTIGATE_HIGH});
    assert_eq!(got, want.to_string());
}

#[test]
fn range_query_text_window_and_step() {
    let h = host("critical");
    run(&h, &input());
    let calls = h.range_calls.borrow();
    assert_eq!(calls.len(), 1);
    let (q, start, end, step) = &calls[0];
    assert_eq!(q, QUERY);
    assert_eq!(*end, 1_795_532_927.615105);
    assert_eq!(*start, 1_792_940_927.615105);
    assert_eq!(step, "1h");
}

#[test]
fn step_change_down() {
    let got = drift_of("standard", series(721, 3600.0, |i| if i < 400.0 { 0.9 } else { 0.7 }));
    let want = json!({"slo_name":"availability","severity":"critical","pattern":"step_change_down","slope_per_week":-0.06906381948740013,
        "days_until_exhaustion":70,"current_budget":0.7,
        "summary":"Sudden budget drop detected! Budget changed from 90.0% to 70.0%.",
        "recommendation":"Investigate immediate cause of step change. Check recent deployments, configuration changes, or dependency issues. Run `nthlayer-observe verify` to check metric coverage."});
    assert_eq!(got, want.to_string());
}

#[test]
fn step_change_up_on_low_tier() {
    let got = drift_of("low", series(721, 3600.0, |i| if i < 300.0 { 0.5 } else { 0.65 }));
    let want = json!({"slo_name":"availability","severity":"none","pattern":"step_change_up","slope_per_week":0.050950703278379916,
        "days_until_exhaustion":null,"current_budget":0.65,
        "summary":"Error budget is stable with no significant drift detected.","recommendation":"No action needed. Continue monitoring."});
    assert_eq!(got, want.to_string());
}

#[test]
fn volatile_declining_and_improving() {
    let got = drift_of("standard", series(16, 172_800.0, |i| 0.3 + 0.4 * (i % 2.0) - 0.01 * i));
    let want = json!({"slo_name":"availability","severity":"critical","pattern":"volatile","slope_per_week":-0.01852941176470588,
        "days_until_exhaustion":207,"current_budget":0.5499999999999999,
        "summary":"Error budget declining at 1.85% per week with moderate confidence (R²=0.01).",
        "recommendation":"High variance suggests intermittent issues. Review error logs and identify patterns in failures. Consider adjusting SLO alerting windows."});
    assert_eq!(got, want.to_string());
    let got = drift_of("standard", series(16, 172_800.0, |i| 0.2 + 0.4 * (i % 2.0) + 0.01 * i));
    assert!(got.contains(r#""severity":"none","pattern":"volatile","slope_per_week":0.05147058823529413"#), "{got}");
    assert!(got.contains(r#""current_budget":0.7500000000000001"#), "{got}");
}

#[test]
fn stable_flat_series() {
    let got = drift_of("standard", series(721, 3600.0, |_| 0.95));
    let want = json!({"slo_name":"availability","severity":"none","pattern":"stable","slope_per_week":0.0,
        "days_until_exhaustion":null,"current_budget":0.95,
        "summary":"Error budget is stable with no significant drift detected.","recommendation":"No action needed. Continue monitoring."});
    assert_eq!(got, want.to_string());
}

#[test]
fn info_warn_and_improvement() {
    let got = drift_of("standard", series(721, 3600.0, |i| 0.9 - 0.003 * i / 168.0));
    let want = json!({"slo_name":"availability","severity":"info","pattern":"gradual_decline","slope_per_week":-0.002999999999999999,
        "days_until_exhaustion":null,"current_budget":0.8871428571428571,
        "summary":"Minor budget drift detected: declining at 0.30% per week. Fit quality: R²=1.00",
        "recommendation":"Monitor for continued decline. Consider reviewing recent deployments if trend persists."});
    assert_eq!(got, want.to_string());

    let got = drift_of("standard", series(721, 3600.0, |i| 0.9 - 0.007 * i / 168.0));
    let want = json!({"slo_name":"availability","severity":"warn","pattern":"gradual_decline","slope_per_week":-0.007,
        "days_until_exhaustion":null,"current_budget":0.87,
        "summary":"Error budget declining at 0.70% per week with high confidence (R²=1.00).","recommendation":INVESTIGATE_HIGH});
    assert_eq!(got, want.to_string());

    let got = drift_of("standard", series(721, 3600.0, |i| 0.5 + 0.02 * i / 168.0));
    assert!(
        got.contains(r#""severity":"none","pattern":"gradual_improvement","slope_per_week":0.020000000000000014"#),
        "{got}"
    );
    assert!(got.contains(r#""current_budget":0.5857142857142857"#), "{got}");
}

#[test]
fn near_exhaustion_is_critical_by_days() {
    let got = drift_of("standard", series(721, 3600.0, |i| 0.031 - 0.03 * i / 720.0));
    let want = json!({"slo_name":"availability","severity":"critical","pattern":"gradual_decline","slope_per_week":-0.007,
        "days_until_exhaustion":1,"current_budget":0.0010000000000000044,
        "summary":"Error budget declining at 0.70% per week with high confidence (R²=1.00).","recommendation":INVESTIGATE_HIGH});
    assert_eq!(got, want.to_string());
}

#[test]
fn noisy_decline_confidence_levels() {
    let noise = |amp: f64| move |i: f64| 0.9 - 0.05 * i / 720.0 + amp * ((i as u64 * 7919) % 13) as f64 / 13.0;
    let got = drift_of("standard", series(721, 3600.0, noise(0.02)));
    assert!(got.contains(r#""slope_per_week":-0.011642710309439728"#), "{got}");
    assert!(got.contains("(R²=0.86)") && got.contains("with high confidence"), "{got}");
    let got = drift_of("standard", series(721, 3600.0, noise(0.045)));
    let want = json!({"slo_name":"availability","severity":"critical","pattern":"gradual_decline","slope_per_week":-0.011612764862906057,
        "days_until_exhaustion":null,"current_budget":0.8846153846153846,
        "summary":"Error budget declining at 1.16% per week with moderate confidence (R²=0.55).",
        "recommendation":"Investigate recent changes. Common causes: increased traffic, dependency degradation, or configuration drift. Run `nthlayer-observe verify` to check metric coverage."});
    assert_eq!(got, want.to_string());
}

#[test]
fn unusable_series_emit_nothing() {
    let cases = [
        Ok(json!({"resultType": "matrix", "result": []})),
        Err(HostError::Unavailable("down".into())),
        Ok(series(1, 3600.0, |_| 0.5)),
        // Non-finite samples are dropped before counting.
        Ok(
            json!({"resultType": "matrix", "result": [{"values": [[T0, "NaN"], [T0 + 3600.0, "0.5"], [T0 + 7200.0, "+Inf"]]}]}),
        ),
        // One malformed sample spoils the series.
        Ok(
            json!({"resultType": "matrix", "result": [{"values": [[T0, "0.5"], [T0 + 3600.0, "abc"], [T0 + 7200.0, "0.4"]]}]}),
        ),
        Ok(json!({"resultType": "matrix", "result": [{"values": [[T0, "0.5"], [T0 + 3600.0]]}]})),
        // All samples at one instant: no regression possible.
        Ok(json!({"resultType": "matrix", "result": [{"values": [[T0, "0.5"], [T0, "0.4"]]}]})),
    ];
    for answer in cases {
        let h = host("standard");
        h.set_range(QUERY, answer.clone());
        let out = run(&h, &input());
        assert!(h.submitted.borrow().is_empty(), "{answer:?}");
        assert_eq!(out.emitted, 0);
        assert!(h.logs.borrow().iter().any(|(l, m)| *l == Level::Warn && m == "drift_analysis_failed"));
    }
}

#[test]
fn windows_and_tiers() {
    assert_eq!(window_seconds("30d"), 2_592_000);
    assert_eq!(window_seconds("3m"), 3 * 30 * 86_400);
    assert_eq!(window_seconds("2w"), 1_209_600);
    assert_eq!(window_seconds("12h"), 43_200);
    assert_eq!(window_seconds("1.5d"), 2_592_000);
    assert_eq!(window_seconds("d"), 2_592_000);
    assert_eq!(window_seconds("7dx"), 604_800);
    assert_eq!(tier_policy("CRITICAL").exhaustion_critical_days, 14);
    assert_eq!(tier_policy("tier-1").exhaustion_critical_days, 7);
    assert_eq!(tier_policy("low").step_threshold, 0.10);

    // Missing window: the tier's default (low: 14 days). Null tier: the reference fails.
    let h = FakeHost::new().with_manifests(json!([
        {"name": "a", "tier": "low", "slos": [{"name": "x"}, {"name": ""}, {"target": 1}]},
        {"name": "b", "slos": [{"name": "y", "window": "2w"}]},
        {"name": "c", "tier": null, "slos": [{"name": "z"}]},
        {"name": "d", "slos": [{"name": "w", "window": 30}]}]));
    run(&h, &input());
    let calls = h.range_calls.borrow();
    let spans: Vec<(String, f64)> = calls.iter().map(|(q, s, e, _)| (q.clone(), (e - s).round())).collect();
    assert_eq!(
        spans,
        vec![
            ("slo:error_budget_remaining:ratio{service=\"a\", slo=\"x\"}".to_string(), 1_209_600.0),
            ("slo:error_budget_remaining:ratio{service=\"b\", slo=\"y\"}".to_string(), 1_209_600.0),
        ]
    );
    assert_eq!(h.logs.borrow().iter().filter(|(_, m)| m == "drift_analysis_failed").count(), 4);
}

#[test]
fn exhaustion_projection() {
    assert_eq!(exhaustion_days(0.5, 0.0), Ok(None));
    assert_eq!(exhaustion_days(-0.1, -1e-9), Ok(Some(0)));
    assert_eq!(exhaustion_days(0.5, -0.5 / 86400.0 / 366.0), Ok(None));
    assert_eq!(exhaustion_days(0.5, -0.5 / 86400.0 / 10.5), Ok(Some(10)));
}

#[test]
fn state_counts_records() {
    let h = host("critical");
    h.set_range(QUERY, Ok(series(721, 3600.0, |i| 0.9 - 0.3 * i / 720.0)));
    let out = run(&h, &CycleInput { state: Some(json!({"seq": 9})), ..input() });
    assert_eq!(out.state, Some(json!({"seq": 10})));
    assert!(h.submitted_of_kind("drift_signal")[0]["id"].as_str().unwrap().ends_with("-00009"));
}

// --- Paging across cycles ---

/// FakeHost whose clock moves on by `step` seconds with every range query (as a loaded
/// Prometheus would make a cycle take its time) and by `fetch` with the manifests (a cold
/// core takes over a minute on 10,000), keeping each `drift_cycle` line's fields.
struct Slow {
    host: FakeHost,
    step: f64,
    fetch: f64,
    lines: RefCell<Vec<Vec<(String, String)>>>,
}

fn slow(step: f64) -> Slow {
    Slow { host: FakeHost::new(), step, fetch: 0.0, lines: RefCell::default() }
}

impl Host for Slow {
    fn get_manifests(&self) -> Result<Value, HostError> {
        self.host.clock.set(self.host.clock.get() + self.fetch);
        self.host.get_manifests()
    }
    fn submit_assessment(&self, r: &Value, s: Option<&str>) -> Result<String, HostError> {
        self.host.submit_assessment(r, s)
    }
    fn prom_query_range(&self, q: &str, start: f64, end: f64, step: &str) -> Result<Value, HostError> {
        self.host.clock.set(self.host.clock.get() + self.step);
        self.host.prom_query_range(q, start, end, step)
    }
    fn log(&self, level: Level, message: &str, fields: &[(&str, &str)]) {
        if message == "drift_cycle" {
            self.lines.borrow_mut().push(fields.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
        }
        self.host.log(level, message, fields)
    }
    fn now(&self) -> f64 {
        self.host.now()
    }
    fn random_u64(&self) -> u64 {
        self.host.random_u64()
    }
}

fn name(i: usize) -> String {
    format!("svc-{i:04}")
}

/// `names` with one SLO each, every one with a usable history; listed out of name order.
fn catalogue(host: &FakeHost, names: &[String]) {
    let mut manifests: Vec<Value> =
        names.iter().map(|n| json!({"name": n, "slos": [{"name": "availability", "window": "30d"}]})).collect();
    manifests.reverse();
    *host.manifests.borrow_mut() = json!(manifests);
    for n in names {
        let q = format!("slo:error_budget_remaining:ratio{{service=\"{n}\", slo=\"availability\"}}");
        host.set_range(&q, Ok(series(3, 3600.0, |i| 0.9 - 0.01 * i)));
    }
}

/// One cycle from `state`: the services it assessed, in order, and the state it left.
fn cycle(host: &Slow, state: &Option<Value>) -> (Vec<String>, Option<Value>) {
    let before = host.host.submitted.borrow().len();
    let out = run(host, &CycleInput { state: state.clone(), ..input() });
    let assessed = host.host.submitted_of_kind("drift_signal")[before..]
        .iter()
        .map(|r| r["service"].as_str().unwrap().to_string())
        .collect();
    (assessed, out.state)
}

fn cursor(state: &Option<Value>) -> Option<&str> {
    state.as_ref().and_then(|s| s.get("cursor")).and_then(Value::as_str)
}

#[test]
fn a_catalogue_past_the_budget_is_swept_across_cycles_once_in_order() {
    // 1,000 services, 0.2 s a query: a run of 256 takes 51.2 s, so a cycle does two runs.
    let names: Vec<String> = (0..1000).map(name).collect();
    let host = slow(0.2);
    catalogue(&host.host, &names);
    let (first, state) = cycle(&host, &None);
    assert_eq!(first, names[..512]);
    assert_eq!(cursor(&state), Some("svc-0512"));
    // The state stays a counter and a name, whatever the catalogue's size.
    assert_eq!(state, Some(json!({"seq": 513, "cursor": "svc-0512"})));
    let (second, state) = cycle(&host, &state);
    assert_eq!(second, names[512..]);
    assert_eq!(state, Some(json!({"seq": 1001})), "a finished sweep clears the cursor");
    // The next sweep starts over.
    let (third, _) = cycle(&host, &state);
    assert_eq!(third, names[..512]);
    let logs = host.host.logs.borrow();
    assert_eq!(logs.iter().filter(|(l, m)| *l == Level::Info && m == "drift_cycle").count(), 3);
    let line = |services: &str, cursor: &str, swept: &str| {
        let fields = [("services", services), ("cursor", cursor), ("swept", swept), ("failed", "0")];
        fields.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>()
    };
    assert_eq!(
        *host.lines.borrow(),
        [line("512", "svc-0512", "512/1000"), line("488", "", "1000/1000"), line("512", "svc-0512", "512/1000")]
    );
}

#[test]
fn every_cycle_does_at_least_one_run() {
    // The manifests alone take longer than the budget, and a run takes longer still: each
    // cycle still assesses one run, so the sweep always moves on.
    let names: Vec<String> = (0..600).map(name).collect();
    let host = Slow { fetch: 90.0, ..slow(1.0) };
    catalogue(&host.host, &names);
    let (first, state) = cycle(&host, &None);
    assert_eq!(first, names[..256]);
    let (second, state) = cycle(&host, &state);
    assert_eq!(second, names[256..512]);
    let (third, state) = cycle(&host, &state);
    assert_eq!(third, names[512..]);
    assert_eq!(cursor(&state), None);
}

#[test]
fn a_catalogue_that_fits_is_one_cycle() {
    let names: Vec<String> = (0..1000).map(name).collect();
    let host = slow(0.0);
    catalogue(&host.host, &names);
    let (all, state) = cycle(&host, &None);
    assert_eq!(all, names);
    assert_eq!(state, Some(json!({"seq": 1001})));
}

#[test]
fn a_catalogue_change_mid_sweep_neither_loops_nor_skips() {
    let names: Vec<String> = (0..1000).map(name).collect();
    let host = slow(0.2);
    catalogue(&host.host, &names);
    let (first, state) = cycle(&host, &None);
    assert_eq!(cursor(&state), Some("svc-0512"));
    // The cursor's own service and the next ones go, one arrives before the cursor and one
    // after: the sweep goes on from the first name after the cursor, takes the late one,
    // and leaves the early one for the next sweep.
    let mut changed: Vec<String> =
        names.iter().filter(|n| !("svc-0512".."svc-0600").contains(&n.as_str())).cloned().collect();
    changed.extend(["svc-0000a".to_string(), "zz-new".to_string()]);
    catalogue(&host.host, &changed);
    let (second, state) = cycle(&host, &state);
    let mut want: Vec<String> = names[600..].to_vec();
    want.push("zz-new".into());
    assert_eq!(second, want);
    assert!(first.iter().all(|n| !second.contains(n)));
    assert_eq!(cursor(&state), None);
    let (third, _) = cycle(&host, &state);
    assert_eq!(third[..2], ["svc-0000".to_string(), "svc-0000a".to_string()]);
}

#[test]
fn a_cursor_past_every_name_ends_the_sweep() {
    let host = slow(0.0);
    catalogue(&host.host, &[name(1), name(2)]);
    let (none, state) = cycle(&host, &Some(json!({"seq": 5, "cursor": "zzz"})));
    assert!(none.is_empty());
    assert_eq!(state, Some(json!({"seq": 5})));
    let (all, _) = cycle(&host, &state);
    assert_eq!(all, [name(1), name(2)]);
}

#[test]
fn core_down_keeps_the_cursor() {
    let host = slow(0.0);
    *host.host.core_error.borrow_mut() = Some(HostError::Unavailable("down".into()));
    let (none, state) = cycle(&host, &Some(json!({"seq": 5, "cursor": "svc-0003"})));
    assert!(none.is_empty());
    assert_eq!(state, Some(json!({"seq": 5, "cursor": "svc-0003"})));
}

#[test]
fn failures_past_the_line_cap_are_counted_not_logged() {
    // 150 services without history: the first 100 failures are logged, all 150 counted.
    let host = slow(0.0);
    let manifests: Vec<Value> = (0..150).map(|i| json!({"name": name(i), "slos": [{"name": "x"}]})).collect();
    *host.host.manifests.borrow_mut() = json!(manifests);
    run(&host, &input());
    let logs = host.host.logs.borrow();
    assert_eq!(logs.iter().filter(|(_, m)| m == "drift_analysis_failed").count(), 100);
    let line = &host.lines.borrow()[0];
    assert_eq!(line[3], ("failed".to_string(), "150".to_string()));
}
