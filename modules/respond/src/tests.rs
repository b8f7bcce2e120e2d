//! Cycle-level tests: ingestion, dedup, the whole pipeline, approval, restarts, bad input.

use nthlayer_sdk::testing::FakeHost;
use nthlayer_sdk::{CycleInput, HostError, Level};
use serde_json::{json, Value};

use super::*;

pub(crate) fn answers() -> [(&'static str, Value); 4] {
    [
        (
            "TriageResponse",
            json!({"severity": 1, "blast_radius": ["fraud-detect"], "reasoning": "Fraud checks are reversing. Users see declines.", "confidence": 0.8}),
        ),
        (
            "InvestigationResponse",
            json!({"hypotheses": [{"description": "Model v42 regressed"}], "root_cause": "Model v42 regressed", "root_cause_confidence": 0.9, "reasoning": "Timing matches.", "confidence": 0.8}),
        ),
        (
            "CommunicationResponse",
            json!({"updates": [{"content": "Some card payments are being declined."}], "reasoning": "Plain notice.", "confidence": 0.7}),
        ),
        (
            "RemediationResponse",
            json!({"proposed_action": "rollback", "target": "fraud-detect", "reasoning": "Revert v42.", "confidence": 0.7}),
        ),
    ]
}

/// Every agent answers validly (the same answer each time).
pub(crate) fn llm_ok(h: &FakeHost) {
    for (name, v) in answers() {
        for _ in 0..8 {
            h.script_llm(name, Ok(v.clone()));
        }
    }
}

pub(crate) fn host() -> FakeHost {
    let h = FakeHost::new().with_manifests(json!([{"name": "fraud-detect", "tier": "critical"}, {"name": "checkout"}]));
    h.reject_duplicates.set(true);
    h
}

pub(crate) fn snapshot(id: &str, at: &str, breaches: &[&str]) -> Value {
    json!({"id": id, "created_at": at, "kind": "correlation_snapshot", "service": "fraud-detect",
           "data": {"domain": {"service": "fraud-detect", "environment": "production"}, "event_count": 2,
                    "peak_severity": 0.9, "affected_services": ["fraud-detect"], "parent_ids": breaches,
                    "nl_summary": {"summary": "Reversals spiked on fraud-detect.", "notable_omissions": [], "confidence": 0.6}}})
}

fn input(state: Option<Value>) -> CycleInput {
    CycleInput { task: "respond".into(), state, config: json!({}), args: None }
}

/// Runs one cycle, returns (state, result).
pub(crate) fn run(h: &FakeHost, state: Option<Value>) -> (Value, Value) {
    let out = Respond::run_cycle(h, input(state)).unwrap();
    (out.state.unwrap(), out.result.unwrap())
}

fn incidents(state: &Value) -> Vec<Value> {
    state["incidents"].as_object().unwrap().values().cloned().collect()
}

const T0: &str = "2026-11-24T15:08:40.000000+00:00";
const T1: &str = "2026-11-24T15:08:45.000000+00:00";

#[test]
fn snapshot_opens_one_incident_with_case_five_verdicts_and_pauses_for_approval() {
    let h = host();
    llm_ok(&h);
    h.assessments.borrow_mut().push(snapshot("csn-1", T0, &["vrd-breach-1"]));
    let (st, res) = run(&h, None);
    assert_eq!(res["opened"], 1);
    let inc = &incidents(&st)[0];
    assert_eq!(inc["state"], "awaiting_approval");
    assert_eq!(inc["trigger_verdict_ids"], json!(["csn-1", "vrd-breach-1"]));
    assert_eq!(inc["topology"], json!({"services": [{"name": "fraud-detect", "tier": "critical"}]}));
    assert_eq!(inc["metadata"]["escalation_threshold"], 0.3);
    let case = &h.cases.borrow()[0];
    assert_eq!(case["id"], format!("case-{}", inc["id"].as_str().unwrap()));
    assert_eq!(case["underlying_verdict"], "vrd-breach-1");
    assert_eq!(case["blast_radius"], "production");
    assert_eq!(case["briefing"], "Reversals spiked on fraud-detect.");
    assert_eq!(case["has_active_incident"], true);
    let vs = h.submitted_verdicts();
    let types: Vec<&str> = vs.iter().map(|v| v["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["triage", "investigation", "communication", "remediation"]);
    // Lineage: triage ← triggers; both parallel agents ← triage; remediation ← investigation.
    assert_eq!(vs[0]["parent_ids"], json!(["csn-1", "vrd-breach-1"]));
    assert_eq!(vs[0]["lineage"]["parent"], Value::Null);
    assert_eq!(vs[1]["parent_ids"], json!([vs[0]["id"]]));
    assert_eq!(vs[2]["parent_ids"], json!([vs[0]["id"]]));
    assert_eq!(vs[3]["parent_ids"], json!([vs[1]["id"]]));
    assert_eq!(vs[3]["lineage"]["parent"], vs[1]["id"]);
    assert_eq!(vs[3]["subject"]["summary"], "rollback on fraud-detect (requires approval)");
    assert_eq!(vs[0]["subject"]["summary"], "SEV-1: Fraud checks are reversing");
    assert_eq!(vs[1]["subject"]["summary"], "Root cause (90% confidence): Model v42 regressed");
    assert_eq!(vs[0]["producer"]["prompt_version"], "triage/1");
    assert_eq!(vs[0]["producer"]["model"], "fake/model");
    let keys: Vec<&String> = vs[0].as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "id",
            "version",
            "producer",
            "subject",
            "judgment",
            "outcome",
            "lineage",
            "metadata",
            "pipeline_latency_ms",
            "chain_depth",
            "parent_ids",
            "service",
            "created_at",
            "type"
        ]
    );
    assert_eq!(res["verdicts"], 4);
}

#[test]
fn duplicate_snapshots_and_snapshots_for_the_same_breach_open_nothing_new() {
    let h = host();
    llm_ok(&h);
    h.assessments.borrow_mut().push(snapshot("csn-1", T0, &["vrd-breach-1"]));
    let (st, _) = run(&h, None);
    // Correlate re-emits for the same breach; the snapshot cursor is reset (e.g. restored
    // from an older state) so csn-1 is seen again too.
    h.assessments.borrow_mut().insert(0, snapshot("csn-2", T1, &["vrd-breach-1"]));
    let mut st2 = st.clone();
    st2["cursors"]["snapshot_after"] = Value::Null;
    let (st3, res) = run(&h, Some(st2));
    assert_eq!(
        (res["opened"].as_u64(), res["merged"].as_u64(), res["duplicates"].as_u64()),
        (Some(0), Some(1), Some(1))
    );
    let incs = incidents(&st3);
    assert_eq!(incs.len(), 1);
    assert_eq!(incs[0]["trigger_verdict_ids"], json!(["csn-1", "vrd-breach-1"]));
    assert_eq!(incs[0]["metadata"]["merged_snapshot_ids"], json!(["csn-2"]));
    // Seen again (cursor reset once more): a duplicate now, not a second merge.
    let mut st4 = st3.clone();
    st4["cursors"]["snapshot_after"] = Value::Null;
    let (_, res) = run(&h, Some(st4));
    assert_eq!((res["merged"].as_u64(), res["duplicates"].as_u64()), (Some(0), Some(2)));
    assert_eq!(h.cases.borrow().len(), 1);
    assert_eq!(h.submitted_verdicts().len(), 4);
}

#[test]
fn a_cycle_lost_before_its_state_was_saved_replays_without_duplicates() {
    let h = host();
    llm_ok(&h);
    h.assessments.borrow_mut().push(snapshot("csn-1", T0, &["vrd-breach-1"]));
    let (first, _) = run(&h, None);
    // The host died before saving: the next cycle starts from no state at all.
    let (second, res) = run(&h, None);
    assert_eq!(res["opened"], 1);
    assert_eq!(incidents(&first)[0]["id"], incidents(&second)[0]["id"], "ids derive from the trigger");
    // Core refused every second write (409), so core holds one case and four verdicts.
    assert_eq!(h.cases.borrow().len(), 1);
    assert_eq!(h.submitted_verdicts().len(), 4);
    assert_eq!(incidents(&second)[0]["verdict_chain"], incidents(&first)[0]["verdict_chain"]);
}

#[test]
fn no_llm_gives_one_degraded_triage_verdict_an_escalation_and_still_a_case() {
    let h = host();
    h.assessments.borrow_mut().push(snapshot("csn-1", T0, &["vrd-breach-1"]));
    let (st, res) = run(&h, None);
    assert_eq!(incidents(&st)[0]["state"], "escalated");
    assert_eq!(h.cases.borrow().len(), 1);
    let vs = h.submitted_verdicts();
    assert_eq!(vs.len(), 1);
    assert_eq!(vs[0]["judgment"]["action"], "escalate");
    assert_eq!(vs[0]["judgment"]["confidence"], 0.0);
    assert_eq!(vs[0]["judgment"]["tags"], json!(["degraded", "human-takeover-required"]));
    assert_eq!(vs[0]["subject"]["summary"], "DEGRADED: SEV-? — incident, 0 services in blast radius");
    assert_eq!(vs[0]["producer"]["model"], Value::Null);
    assert_eq!(vs[0]["metadata"]["cost_tokens"], Value::Null);
    assert_eq!(res["degraded"], 1);
    assert!(h.logs.borrow().iter().any(|(l, m)| *l == Level::Warn && m == "respond_agent_degraded"));
}

#[test]
fn an_answer_that_never_validates_degrades_that_agent_and_escalates() {
    let h = host();
    h.script_llm("TriageResponse", Err(HostError::Invalid("no valid answer after 3 re-asks".into())));
    h.assessments.borrow_mut().push(snapshot("csn-1", T0, &["vrd-breach-1"]));
    let (st, _) = run(&h, None);
    assert_eq!(incidents(&st)[0]["state"], "escalated");
    let r = h.submitted_verdicts()[0]["judgment"]["reasoning"].clone();
    assert_eq!(r, "Agent operating in degraded mode: invalid: no valid answer after 3 re-asks");
}

#[test]
fn approval_resumes_to_resolved_and_rejection_ends_escalated() {
    for (decision, end) in [("approve", "resolved"), ("reject", "escalated")] {
        let h = host();
        llm_ok(&h);
        h.assessments.borrow_mut().push(snapshot("csn-1", T0, &["vrd-breach-1"]));
        let (st, _) = run(&h, None);
        let inc_id = incidents(&st)[0]["id"].as_str().unwrap().to_string();
        // The operator's task reads remediation verdicts from core.
        *h.verdicts.borrow_mut() = h.submitted_verdicts();
        let args = json!({"incident": inc_id, "operator": "alice"});
        let task = format!("respond.{decision}");
        let out =
            Respond::run_cycle(&h, CycleInput { task, state: None, config: json!({}), args: Some(args) }).unwrap();
        let apr = out.result.unwrap();
        assert_eq!(apr["decision"], decision);
        let approval = h.submitted_verdicts().last().unwrap().clone();
        assert_eq!(approval["type"], "approval");
        assert_eq!(approval["parent_ids"], json!([apr["remediation"]]));
        h.verdicts.borrow_mut().insert(0, approval.clone());
        h.clock.set(h.clock.get() + 30.0);
        let (st2, res) = run(&h, Some(st));
        assert_eq!(res["decisions"], 1);
        let inc = &incidents(&st2)[0];
        assert_eq!(inc["state"], end, "{decision}");
        assert_eq!(inc["approval"]["by"], "alice");
        let vs = h.submitted_verdicts();
        if decision == "approve" {
            let last = vs.last().unwrap();
            assert_eq!(last["type"], "communication");
            assert_eq!(last["parent_ids"], json!([approval["id"]]));
            assert_eq!(vs.len(), 6);
        } else {
            assert_eq!(vs.len(), 5);
            assert_eq!(inc["error"], "remediation rejected by alice");
        }
    }
}

#[test]
fn approving_an_unknown_incident_fails_clearly() {
    let h = host();
    let args = json!({"incident": "INC-NOPE"});
    let e = Respond::run_cycle(
        &h,
        CycleInput { task: "respond.approve".into(), state: None, config: json!({}), args: Some(args) },
    )
    .unwrap_err();
    assert_eq!(e, "no remediation proposal found for incident INC-NOPE");
    let e = Respond::run_cycle(
        &h,
        CycleInput { task: "respond.reject".into(), state: None, config: json!({}), args: None },
    )
    .unwrap_err();
    assert!(e.contains("expected args"), "{e}");
}

#[test]
fn a_null_action_without_approval_runs_to_resolved_with_five_verdicts() {
    let h = host();
    for (name, v) in answers() {
        let v = if name == "RemediationResponse" {
            json!({"requires_human_approval": false, "reasoning": "It recovered."})
        } else {
            v
        };
        for _ in 0..2 {
            h.script_llm(name, Ok(v.clone()));
        }
    }
    h.assessments.borrow_mut().push(snapshot("csn-1", T0, &["vrd-breach-1"]));
    let (st, res) = run(&h, None);
    let inc = &incidents(&st)[0];
    assert_eq!(inc["state"], "resolved");
    assert_eq!(res["verdicts"], 5);
    let vs = h.submitted_verdicts();
    assert_eq!(vs[4]["parent_ids"], json!([vs[3]["id"]]));
    assert_eq!(inc["communication"]["updates"].as_array().unwrap().len(), 2);
    assert_eq!(inc["verdict_chain"].as_array().unwrap().len(), 5);
}

#[test]
fn orphan_breach_older_than_the_threshold_opens_a_fallback_incident_once() {
    let h = host();
    let old = nthlayer_sdk::time::iso(h.now() - 300.0);
    let recent = nthlayer_sdk::time::iso(h.now() - 10.0);
    h.verdicts.borrow_mut().extend([
        json!({"id": "vrd-breach-new", "type": "quality_breach", "service": "checkout", "created_at": recent}),
        json!({"id": "vrd-breach-old", "type": "quality_breach", "service": "checkout", "created_at": old,
               "data": {"slo_name": "approval_rate", "current_value": 0.9, "target": 0.95}}),
        json!({"id": "vrd-breach-carried", "type": "quality_breach", "service": "fraud-detect", "created_at": old}),
    ]);
    h.assessments.borrow_mut().push(snapshot("csn-1", T0, &["vrd-breach-carried"]));
    let (st, res) = run(&h, None);
    assert_eq!(res["opened"], 2, "snapshot + one orphan");
    let fb: Vec<Value> =
        incidents(&st).into_iter().filter(|i| i["trigger_source"] == "nthlayer-measure-fallback").collect();
    assert_eq!(fb.len(), 1);
    assert_eq!(fb[0]["trigger_verdict_ids"], json!(["vrd-breach-old"]));
    assert_eq!(fb[0]["metadata"]["fallback_reason"], "no_correlation_snapshot");
    let cases = h.cases.borrow();
    let case = cases.iter().find(|c| c["underlying_verdict"] == "vrd-breach-old").unwrap();
    assert_eq!(case["briefing"], "approval_rate breach on checkout: 0.9 vs target 0.95");
    assert_eq!(st["cursors"]["breach_after"], json!(old));
    drop(cases);
    let (_, res) = run(&h, Some(st));
    assert_eq!(res["opened"], 0);
}

#[test]
fn bad_snapshots_and_unknown_services_are_logged_with_the_incident_and_the_cycle_goes_on() {
    let h = host();
    h.assessments.borrow_mut().extend([
        json!({"id": "csn-nodata", "created_at": T1, "kind": "correlation_snapshot", "service": "ghost"}),
        json!({"id": "csn-noid", "kind": "correlation_snapshot", "service": "x"}),
        snapshot("csn-1", T0, &["vrd-breach-1"]),
    ]);
    let (st, res) = run(&h, None);
    assert_eq!(res["opened"], 2);
    let incs = incidents(&st);
    let ghost = incs.iter().find(|i| i["trigger_verdict_ids"] == json!(["csn-nodata"])).unwrap();
    assert!(ghost["id"].as_str().unwrap().starts_with("INC-GHOST-"));
    assert_eq!(ghost["topology"]["services"][0], json!({"name": "unknown", "tier": "standard"}));
    assert_eq!(ghost["state"], "escalated");
    let logs = h.logs.borrow();
    for m in
        ["respond_snapshot_without_data", "respond_manifest_lookup_failed", "respond_case_create_skipped_no_anchor"]
    {
        assert!(logs.iter().any(|(_, l)| l == m), "{m}");
    }
    assert_eq!(st["cursors"]["snapshot_after"], T1);
}

#[test]
fn core_down_logs_and_keeps_state() {
    let h = host();
    llm_ok(&h);
    h.assessments.borrow_mut().push(snapshot("csn-1", T0, &["vrd-breach-1"]));
    let (st, _) = run(&h, None);
    *h.core_error.borrow_mut() = Some(HostError::Unavailable("core down".into()));
    let (st2, res) = run(&h, Some(st.clone()));
    assert_eq!(res["opened"], 0);
    assert_eq!(st2, st);
    assert!(h.logs.borrow().iter().any(|(_, m)| m == "respond_snapshot_poll_failed"));
}
