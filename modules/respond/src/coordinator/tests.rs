use nthlayer_sdk::testing::FakeHost;
use serde_json::json;

use super::*;
use crate::tests::{answers, host, llm_ok};

fn incident(h: &FakeHost) -> Incident {
    Incident {
        id: "INC-FRAUD-DETECT-20261124-150840-0000abcd".into(),
        created_at: time::iso(h.now()),
        updated_at: time::iso(h.now()),
        trigger_verdict_ids: vec!["csn-1".into(), "vrd-breach-1".into()],
        topology: json!({"services": [{"name": "fraud-detect", "tier": "critical"}]}),
        ..Incident::default()
    }
}

fn cycle(h: &FakeHost, budget: f64) -> Cycle {
    Cycle { end: h.now() + budget, ..Cycle::default() }
}

#[test]
fn a_hanging_step_fails_with_the_step_timeout_and_writes_nothing_for_it() {
    let h = host();
    llm_ok(&h);
    let cfg = RespondConfig { step_timeout_seconds: 50.0, ..RespondConfig::default() };
    let mut inc = incident(&h);
    let mut c = cycle(&h, 1000.0);
    let calls_before = h.llm_calls.borrow().len();
    drive_steps_with_hang(&h, &cfg, &mut inc, &mut c);
    assert_eq!(inc.state, "failed");
    assert_eq!(inc.error.as_deref(), Some("step_timeout: investigation+communication exceeded 50.0s"));
    assert_eq!(inc.last_completed_step_index, Some(0));
    assert_eq!(h.submitted_verdicts().len(), 1, "only triage was written");
    // The investigation call was given no more than the step's budget.
    let calls = h.llm_calls.borrow();
    assert_eq!(calls[calls_before + 1].timeout_ms, 50_000);
    assert!(h.logs.borrow().iter().any(|(_, m)| m == "respond_step_timeout"));
}

fn drive_steps_with_hang(h: &FakeHost, cfg: &RespondConfig, inc: &mut Incident, c: &mut Cycle) {
    // The fake moves its clock on each call; 60 s on the investigation call overruns 50 s.
    h.llm_advance_seconds.set(10.0);
    let s0 = run_step(h, cfg, inc, 0, c);
    assert!(s0);
    inc.last_completed_step_index = Some(0);
    h.llm_advance_seconds.set(60.0);
    drive(h, cfg, inc, c);
}

#[test]
fn steps_that_do_not_fit_the_cycle_budget_wait_for_the_next_cycle() {
    let h = host();
    llm_ok(&h);
    let cfg = RespondConfig::default();
    let mut inc = incident(&h);
    // 100 s budget: triage (worst 15 s) runs; then 80 s worst for step 1 fits only if
    // triage was quick. Make triage take 30 s.
    h.llm_advance_seconds.set(30.0);
    let mut c = cycle(&h, 100.0);
    drive(&h, &cfg, &mut inc, &mut c);
    assert_eq!(inc.last_completed_step_index, Some(0));
    assert_eq!(inc.state, "triaging");
    assert_eq!(c.deferred, 1);
    // Next cycle continues where it stopped.
    h.llm_advance_seconds.set(0.0);
    let mut c = cycle(&h, 100.0);
    drive(&h, &cfg, &mut inc, &mut c);
    assert_eq!(inc.state, "awaiting_approval");
    let types: Vec<String> = h.submitted_verdicts().iter().map(|v| v["type"].as_str().unwrap().to_string()).collect();
    assert_eq!(types, ["triage", "investigation", "communication", "remediation"]);
}

#[test]
fn escalation_needs_escalate_and_low_confidence_even_when_the_post_fails() {
    let h = host();
    // Triage degrades (no answer scripted, no default): escalate at 0.0 < 0.3.
    let cfg = RespondConfig::default();
    let mut inc = incident(&h);
    *h.core_error.borrow_mut() = Some(nthlayer_sdk::HostError::Unavailable("core down".into()));
    drive(&h, &cfg, &mut inc, &mut cycle(&h, 100.0));
    assert_eq!(inc.state, "escalated");
    assert!(inc.verdict_chain.is_empty(), "a failed POST does not join the chain");
    // A threshold of 0 never escalates: the pipeline runs on, degraded, to the end.
    let h = host();
    let cfg = RespondConfig { escalation_threshold: 0.0, ..RespondConfig::default() };
    let mut inc = incident(&h);
    drive(&h, &cfg, &mut inc, &mut cycle(&h, 1000.0));
    assert_eq!(inc.state, "resolved", "a degraded remediation proposes nothing, so nothing awaits approval");
    assert_eq!(h.submitted_verdicts().len(), 5);
}

#[test]
fn remediation_chains_to_investigation_or_to_communication_when_investigation_was_not_written() {
    let h = host();
    llm_ok(&h);
    let cfg = RespondConfig::default();
    let mut inc = incident(&h);
    drive(&h, &cfg, &mut inc, &mut cycle(&h, 1000.0));
    let vs = h.submitted_verdicts();
    assert_eq!(
        inc.verdict_chain,
        [&vs[0]["id"], &vs[2]["id"], &vs[1]["id"], &vs[3]["id"]].map(|v| v.as_str().unwrap().to_string())
    );
    assert_eq!(vs[3]["parent_ids"], json!([vs[1]["id"]]));
}

#[test]
fn arbiter_reduction_stays_off_by_default_and_goes_through_the_host_when_enabled() {
    for enabled in [false, true] {
        let h = host();
        let mut rem = answers()[3].1.clone();
        rem["autonomy_reduction"] = json!({"recommended": true, "target_agent": "fraud-model", "reason": "bad calls"});
        h.script_llm("RemediationResponse", Ok(rem));
        llm_ok(&h);
        let cfg = RespondConfig { arbiter_enabled: enabled, ..RespondConfig::default() };
        let mut inc = incident(&h);
        drive(&h, &cfg, &mut inc, &mut cycle(&h, 1000.0));
        let ar = &inc.metadata["autonomy_reduction"];
        assert_eq!(ar["sent"], false);
        assert_eq!(ar["target_agent"], "fraud-model");
        let want = if enabled { "respond_arbiter_unavailable" } else { "respond_arbiter_disabled" };
        assert!(h.logs.borrow().iter().any(|(_, m)| m == want), "{want}");
        if enabled {
            assert_eq!(ar["note"], "unavailable: arbiter_reduce_autonomy is not provided by this Host");
        }
    }
}
