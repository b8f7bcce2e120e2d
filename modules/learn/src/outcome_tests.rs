//! learn.outcome against FakeHost: one test per path and per cursor rule.

use super::*;
use nthlayer_sdk::testing::FakeHost;
use nthlayer_sdk::HostError;

/// FakeHost's clock: 2026-11-24T15:08:47.615105Z.
fn ago(host: &FakeHost, secs: f64) -> String {
    time::iso(host.clock.get() - secs)
}

fn cfg() -> Config {
    Config { sample_rate: 0.0, ..Config::default() }
}

fn full(id: &str, at: &str, service: Value, conf: f64, action: &str) -> Value {
    json!({"id": id, "version": 1, "producer": {"system": "nthlayer-respond"}, "subject": {"type": "triage", "service": null},
           "judgment": {"action": action, "confidence": conf}, "outcome": {"status": "pending"},
           "lineage": {"parent": null, "children": [], "context": []}, "parent_ids": [], "service": service,
           "created_at": at, "type": "triage"})
}

fn set(host: &FakeHost, mut verdicts: Vec<Value>) {
    verdicts.sort_by(|a, b| b["created_at"].as_str().cmp(&a["created_at"].as_str()));
    *host.verdicts.borrow_mut() = verdicts;
}

fn desc(host: &FakeHost, id: &str, d: Value) {
    host.descendants.borrow_mut().insert(id.into(), Ok(d));
}

fn signals(host: &FakeHost) -> Vec<Value> {
    host.submitted_of_kind("calibration_signal")
}

fn warned(host: &FakeHost, msg: &str) -> bool {
    host.logs.borrow().iter().any(|(l, m)| *l == Level::Warn && m == msg)
}

#[test]
fn lineage_path_signals_then_resolves_and_moves_the_cursor() {
    let host = FakeHost::new();
    let at = ago(&host, 7200.0);
    set(&host, vec![full("v1", &at, json!("checkout"), 0.8, "flag")]);
    desc(&host, "v1", json!([{"id": "x1", "type": "execution", "parent_ids": ["v1"]}]));
    let out = run(&host, &cfg(), None);
    let s = signals(&host);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0]["service"], "checkout");
    assert_eq!(s[0]["data"]["resolution_path"], "lineage");
    assert_eq!(s[0]["data"]["observed_outcome"], "confirmed");
    assert_eq!(s[0]["data"]["calibration_delta"], 0.2);
    let o = host.outcomes.borrow();
    assert_eq!(o.len(), 1);
    assert_eq!(o[0].0, "v1");
    assert_eq!(o[0].1["outcome_status"], "confirmed");
    assert_eq!(o[0].1["resolution"], "Resolved by downstream execution verdict x1");
    assert_eq!(o[0].1["reasoning"], "nthlayer-learn: resolution_path=lineage");
    assert_eq!(out.state.unwrap()["cursor"], json!(at));
    assert_eq!(out.emitted, 1);
}

#[test]
fn divergence_path() {
    let host = FakeHost::new();
    set(&host, vec![full("v1", &ago(&host, 7200.0), json!("checkout"), 0.9, "approve")]);
    desc(
        &host,
        "v1",
        json!([{"id": "e", "type": "execution"}, {"id": "o", "type": "approval", "outcome": {"status": "overridden"}}]),
    );
    run(&host, &cfg(), None);
    let s = signals(&host);
    assert_eq!(
        (s[0]["data"]["resolution_path"].as_str(), s[0]["data"]["observed_outcome"].as_str()),
        (Some("divergence"), Some("overridden"))
    );
    assert_eq!(s[0]["data"]["calibration_delta"], 0.9);
    assert_eq!(host.outcomes.borrow()[0].1["resolution"], "Overridden by o");
}

#[test]
fn downstream_signal_from_slo_status() {
    let host = FakeHost::new();
    let t = host.clock.get() - 7200.0;
    set(&host, vec![json!({"id": "b1", "type": "quality_breach", "service": "payments", "created_at": time::iso(t)})]);
    *host.assessments.borrow_mut() = vec![
        json!({"id": "asm-3", "kind": "slo_status", "service": "payments", "created_at": time::iso(t + 600.0), "data": {"slo_name": "availability", "status": "HEALTHY"}}),
        json!({"id": "asm-1", "kind": "slo_status", "service": "payments", "created_at": time::iso(t - 30.0), "data": {"slo_name": "availability", "status": "CRITICAL"}}),
    ];
    run(&host, &cfg(), None);
    let s = signals(&host);
    assert_eq!(s[0]["data"]["resolution_path"], "downstream_signal");
    assert_eq!(s[0]["data"]["observed_outcome"], "confirmed");
    assert_eq!(s[0]["data"]["expressed_confidence"], Value::Null);
    assert_eq!(s[0]["data"]["calibration_delta"], Value::Null);
    assert!(host.outcomes.borrow()[0].1["resolution"].as_str().unwrap().contains("CRITICAL -> HEALTHY"));
}

#[test]
fn calibration_sampling_takes_the_reviewers_answer_only_for_the_sample() {
    let host = FakeHost::new();
    let at = ago(&host, 7200.0);
    let mut v = full("v1", &at, json!("checkout"), 0.7, "flag");
    v["outcome"] = json!({"status": "overridden", "override": {"by": "alice"}});
    let mut w = full("v2", &at, json!("checkout"), 0.6, "flag");
    desc(
        &host,
        "v2",
        json!([{"id": "out-v2", "type": "outcome_resolution", "outcome_status": "partial", "reasoning": "human"}]),
    );
    w["id"] = json!("v2");
    set(&host, vec![v, w]);
    run(&host, &cfg(), None);
    assert!(signals(&host).is_empty(), "not sampled at rate 0");
    let all = Config { sample_rate: 1.0, ..Config::default() };
    run(&host, &all, None);
    let mut s = signals(&host);
    s.sort_by_key(|s| s["data"]["verdict_id"].as_str().map(str::to_string));
    assert_eq!(s.len(), 2);
    assert!(s.iter().all(|s| s["data"]["resolution_path"] == "calibration_sampling"));
    assert_eq!(s[0]["data"]["observed_outcome"], "overridden");
    assert_eq!(s[0]["data"]["calibration_delta"], 0.7);
    assert_eq!(s[1]["data"]["observed_outcome"], "partial");
    assert_eq!(s[1]["data"]["calibration_delta"], 0.1);
    assert!(host.outcomes.borrow().is_empty(), "already resolved by the reviewer");
}

#[test]
fn sampled_open_verdict_gets_one_review_case() {
    let host = FakeHost::new();
    set(&host, vec![full("v1", &ago(&host, 7200.0), json!("checkout"), 0.7, "flag")]);
    let all = Config { sample_rate: 1.0, ..Config::default() };
    let s1 = run(&host, &all, None).state;
    run(&host, &all, s1.as_ref());
    let cases = host.cases.borrow();
    assert_eq!(cases.len(), 1);
    assert_eq!(cases[0]["kind"], "calibration_review");
    assert_eq!(cases[0]["underlying_verdict"], "v1");
    assert!(signals(&host).is_empty());
}

#[test]
fn expiry_resolves_without_a_signal() {
    let host = FakeHost::new();
    set(&host, vec![full("old", &ago(&host, 7.0 * 86400.0), json!("checkout"), 0.5, "flag")]);
    let out = run(&host, &cfg(), None);
    assert!(signals(&host).is_empty());
    let o = host.outcomes.borrow();
    assert_eq!(o[0].1["outcome_status"], "expired");
    assert_eq!(o[0].1["resolution"], "No outcome signal within threshold");
    assert_eq!(out.result.unwrap()["expired"], 1);
}

#[test]
fn respond_verdict_with_null_service_gets_the_incident_service() {
    let host = FakeHost::new();
    *host.assessments.borrow_mut() =
        vec![json!({"id": "csn-fd-1", "kind": "correlation_snapshot", "service": "fraud-detect"})];
    let mut v = full("r1", &ago(&host, 7200.0), Value::Null, 0.0, "escalate");
    v["parent_ids"] = json!(["csn-fd-1", "b1"]);
    v["lineage"]["context"] = json!(["csn-fd-1", "b1"]);
    set(&host, vec![v]);
    desc(&host, "r1", json!([{"id": "x", "type": "execution"}]));
    run(&host, &cfg(), None);
    let s = signals(&host);
    assert_eq!(s[0]["service"], "fraud-detect");
    assert_eq!(s[0]["data"]["calibration_delta"], 1.0);
}

#[test]
fn open_verdict_holds_the_cursor_and_settled_ones_are_not_redone() {
    let host = FakeHost::new();
    let (a, b, c) = (ago(&host, 9000.0), ago(&host, 8000.0), ago(&host, 7000.0));
    set(
        &host,
        vec![
            full("a", &a, json!("s"), 0.5, "flag"),
            full("b", &b, json!("s"), 0.5, "flag"),
            full("c", &c, json!("s"), 0.5, "flag"),
        ],
    );
    desc(&host, "a", json!([{"id": "x", "type": "execution"}]));
    desc(&host, "c", json!([{"id": "y", "type": "execution"}]));
    let st = run(&host, &cfg(), None).state.unwrap();
    assert_eq!(st["cursor"], json!(a), "b is open, so the cursor stops at a");
    assert_eq!(st["done"], json!([[a, "a"], [c, "c"]]));
    assert_eq!(signals(&host).len(), 2);
    // b resolves later: the cursor jumps past c, which is not redone.
    desc(&host, "b", json!([{"id": "z", "type": "execution"}]));
    let st = run(&host, &cfg(), Some(&st)).state.unwrap();
    assert_eq!(st["cursor"], json!(c));
    assert_eq!(signals(&host).len(), 3);
    assert_eq!(host.outcomes.borrow().len(), 3);
}

#[test]
fn young_verdicts_wait_for_the_minimum_age() {
    let host = FakeHost::new();
    set(&host, vec![full("v", &ago(&host, 600.0), json!("s"), 0.5, "flag")]);
    desc(&host, "v", json!([{"id": "x", "type": "execution"}]));
    run(&host, &cfg(), None);
    assert!(signals(&host).is_empty());
    run(&host, &Config { min_resolution_age_hours: 0, ..cfg() }, None);
    assert_eq!(signals(&host).len(), 1);
}

#[test]
fn bad_input_is_logged_and_the_cycle_goes_on() {
    let host = FakeHost::new();
    let at = ago(&host, 7200.0);
    let mut bad = full("bad", &at, json!("s"), 0.5, "flag");
    bad["outcome"] = json!("garbage");
    let mut looped = full("loop", &at, json!("s"), 0.5, "flag");
    looped["parent_ids"] = json!(["loop2"]);
    let good = full("good", &ago(&host, 7100.0), json!("s"), 0.5, "flag");
    set(&host, vec![bad, looped, good, json!({"id": 7})]);
    desc(&host, "loop", json!([{"id": "loop2", "type": "execution", "parent_ids": ["loop"]}]));
    desc(&host, "good", json!([{"id": "x", "type": "execution"}]));
    let st = run(&host, &cfg(), None).state.unwrap();
    assert!(warned(&host, "learn_outcome_malformed"));
    assert!(warned(&host, "learn_lineage_cycle"));
    assert!(warned(&host, "learn_verdict_malformed"));
    assert_eq!(signals(&host).len(), 1);
    assert_eq!(signals(&host)[0]["data"]["verdict_id"], "good");
    assert_eq!(st["cursor"], json!(ago(&host, 7100.0)));
}

#[test]
fn failed_signal_leaves_it_open_and_a_409_counts_as_done() {
    let host = FakeHost::new();
    set(&host, vec![full("v", &ago(&host, 7200.0), json!("s"), 0.5, "flag")]);
    desc(&host, "v", json!([{"id": "x", "type": "execution"}]));
    *host.core_error.borrow_mut() = None;
    host.outcome_errors.borrow_mut().insert("v".into(), HostError::Unavailable("core down".into()));
    let st = run(&host, &cfg(), None).state.unwrap();
    assert_eq!(st.get("cursor"), None, "outcome not written: stays open");
    host.outcome_errors
        .borrow_mut()
        .insert("v".into(), HostError::Rejected { status: 409, code: "duplicate".into(), detail: Value::Null });
    let st = run(&host, &cfg(), Some(&st)).state.unwrap();
    assert!(st.get("cursor").is_some());
}

#[test]
fn core_down_keeps_the_state() {
    let host = FakeHost::new();
    *host.core_error.borrow_mut() = Some(HostError::Unavailable("down".into()));
    let st = json!({"cursor": "2026-11-01T00:00:00+00:00", "done": [], "reviews": []});
    let out = run(&host, &cfg(), Some(&st));
    assert_eq!(out.state.unwrap(), st);
    assert!(warned(&host, "learn_outcome_fetch_failed"));
}

#[test]
fn a_spent_budget_resumes_where_it_stopped_and_wraps_round() {
    let host = FakeHost::new();
    let ats: Vec<String> = (0..5).map(|i| ago(&host, 9000.0 - i as f64 * 100.0)).collect();
    set(&host, (0..5).map(|i| full(&format!("v{i}"), &ats[i], json!("s"), 0.5, "flag")).collect());
    let two = Config { max_checks_per_cycle: 2, ..cfg() };
    // All open, newest first: cycle 1 checks v4,v3; cycle 2 v2,v1; cycle 3 v0 and the sweep ends.
    let st = run(&host, &two, None).state.unwrap();
    assert_eq!(st["sweep"]["next"], json!([[ats[3], "v3"]]));
    // v1 and v4 resolve meanwhile; v4 was already checked, v1 is reached on the way down.
    desc(&host, "v1", json!([{"id": "x", "type": "execution"}]));
    desc(&host, "v4", json!([{"id": "y", "type": "execution"}]));
    let st = run(&host, &two, Some(&st)).state.unwrap();
    assert_eq!(st["sweep"]["next"], json!([[ats[1], "v1"]]));
    assert_eq!(signals(&host).len(), 1, "v1");
    let out = run(&host, &two, Some(&st));
    let st = out.state.unwrap();
    assert_eq!(st.get("sweep"), None, "reached the cursor: the next cycle starts from the top");
    assert_eq!(out.result.unwrap()["sweep_done"], true);
    assert_eq!(st.get("cursor"), None, "v0 is still open");
    let st = run(&host, &two, Some(&st)).state.unwrap();
    assert_eq!(signals(&host).len(), 2, "v4 on the next round");
    assert_eq!(st["done"], json!([[ats[1], "v1"], [ats[4], "v4"]]));
}

/// Runs cycles until `stop` or `max` cycles; every cycle's result must stay inside the bounds.
fn drain(host: &FakeHost, cfg: &Config, max: usize, stop: impl Fn(&Value) -> bool) -> (Value, usize) {
    let mut st: Option<Value> = None;
    for n in 1..=max {
        let out = run(host, cfg, st.as_ref());
        let r = out.result.unwrap();
        assert!(r["checked"].as_u64().unwrap() <= cfg.max_checks_per_cycle, "cycle {n}: {r}");
        assert!(r["pages"].as_u64().unwrap() <= PAGES_PER_CYCLE as u64, "cycle {n}: {r}");
        st = out.state;
        if stop(st.as_ref().unwrap()) {
            return (st.unwrap(), n);
        }
    }
    panic!("not drained in {max} cycles: {st:?}");
}

#[test]
fn a_large_backlog_is_bounded_per_cycle_and_drains() {
    let host = FakeHost::new();
    // 5,000 verdicts past expiry, 3 per second so pages end inside an instant.
    let t0 = host.clock.get() - 8.0 * 86_400.0;
    let vs: Vec<Value> = (0..5000)
        .map(|i| full(&format!("v{i:04}"), &time::iso(t0 + (i / 3) as f64), json!("s"), 0.5, "flag"))
        .collect();
    let newest = time::iso(t0 + 1666.0);
    set(&host, vs);
    let cfg = Config { max_checks_per_cycle: 500, ..cfg() };
    let (st, cycles) = drain(&host, &cfg, 40, |st| st["cursor"] == json!(newest));
    assert_eq!(cycles, 10, "500 look-ups a cycle");
    let outcomes = host.outcomes.borrow();
    let ids: HashSet<&str> = outcomes.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!((outcomes.len(), ids.len()), (5000, 5000), "every verdict expired once");
    assert!(outcomes.iter().all(|(_, b)| b["outcome_status"] == "expired"));
    assert_eq!(st["done"].as_array().unwrap().len(), 2, "pruned to the cursor's instant");
}

#[test]
fn open_verdicts_beyond_a_page_are_all_looked_at_in_turn() {
    let host = FakeHost::new();
    let t0 = host.clock.get() - 2.0 * 86_400.0;
    let vs: Vec<Value> = (0..2500)
        .map(|i| full(&format!("v{i:04}"), &time::iso(t0 + (i / 3) as f64), json!("s"), 0.5, "flag"))
        .collect();
    set(&host, vs);
    // The oldest resolves: it is reached only at the bottom of the sweep, cycles later.
    desc(&host, "v0000", json!([{"id": "x", "type": "execution"}]));
    let cfg = Config { max_checks_per_cycle: 400, ..cfg() };
    let (st, cycles) = drain(&host, &cfg, 20, |_| !signals(&host).is_empty());
    assert_eq!(cycles, 7, "2,500 look-ups at 400 a cycle");
    assert_eq!(st.get("cursor"), None, "everything else is open");
    assert_eq!(host.outcomes.borrow().len(), 1);
}

#[test]
fn its_own_resolution_without_a_signal_gets_the_signal_again_under_the_same_id() {
    let host = FakeHost::new();
    let at = ago(&host, 7200.0);
    let v = full("v1", &at, json!("checkout"), 0.8, "flag");
    set(&host, vec![v.clone(), full("v2", &at, json!("checkout"), 0.8, "flag")]);
    let mine = |path: &str, status: &str, id: &str| {
        json!([{"id": format!("out-{id}"), "type": "outcome_resolution", "outcome_status": status,
                "reasoning": format!("nthlayer-learn: resolution_path={path}")}])
    };
    desc(&host, "v1", mine("divergence", "overridden", "v1"));
    desc(&host, "v2", mine("expiry", "expired", "v2"));
    let out = run(&host, &cfg(), None);
    let s = signals(&host);
    assert_eq!(s.len(), 1, "expiry carries no signal: {s:#?}");
    let first = signal::record(&host, &v, &Resolution::new("overridden", String::new(), "divergence"), "checkout");
    assert_eq!(s[0]["id"], first["id"]);
    assert_eq!(s[0]["data"], first["data"]);
    assert!(host.outcomes.borrow().is_empty(), "already resolved");
    assert_eq!(out.result.unwrap()["re_emitted"], 1);
    assert_eq!(out.state.unwrap()["cursor"], json!(at));
    // core already has it: a 409, settled, nothing logged as failed.
    host.reject_duplicates.set(true);
    let out = run(&host, &cfg(), None);
    assert_eq!(signals(&host).len(), 1);
    assert!(!warned(&host, "calibration_signal_submit_failed"));
    assert_eq!(out.state.unwrap()["cursor"], json!(at));
}

#[test]
fn ties_across_page_ends_are_all_handled_once_in_one_sweep() {
    let host = FakeHost::new();
    // Three verdicts an instant, so every page ends part-way through one; a budget that never
    // runs out, so pages follow each other within the cycle.
    let t0 = host.clock.get() - 8.0 * 86_400.0;
    let vs: Vec<Value> = (0..2500)
        .map(|i| full(&format!("v{i:04}"), &time::iso(t0 + (i / 3) as f64), json!("s"), 0.5, "flag"))
        .collect();
    set(&host, vs);
    let cfg = Config { max_checks_per_cycle: 100_000, ..cfg() };
    let out = run(&host, &cfg, None);
    let r = out.result.unwrap();
    assert_eq!((r["sweep_done"].clone(), r["pages"].clone()), (json!(true), json!(3)), "{r}");
    let outcomes = host.outcomes.borrow();
    let ids: HashSet<&str> = outcomes.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!((outcomes.len(), ids.len()), (2500, 2500));
}
