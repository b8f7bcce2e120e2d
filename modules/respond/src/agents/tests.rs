use super::*;
use serde_json::json;

const NOW: &str = "2026-11-24T15:08:47.615105+00:00";

fn apply_one(role: Role, inc: &mut Incident, v: Value) -> Result<Applied, String> {
    apply(role, inc, &v, 0.7, NOW)
}

#[test]
fn schemas_load_and_are_named_after_the_reference_models() {
    for role in Role::ALL {
        let s = role.schema();
        assert_eq!(s["title"], role.schema_name(), "{role:?}");
        assert_eq!(s["type"], "object");
    }
}

#[test]
fn triage_clamps_severity_fills_defaults_and_summarises_the_first_sentence() {
    let mut inc = Incident::default();
    let a = apply_one(Role::Triage, &mut inc, json!({"severity": 9, "reasoning": "Checkout is down. More later."}))
        .unwrap();
    assert_eq!(a.summary, "SEV-4: Checkout is down");
    assert_eq!(a.confidence, 0.0);
    let t = inc.triage.unwrap();
    assert_eq!(t["severity"], 4);
    assert_eq!(t["blast_radius"], json!([]));
    assert_eq!(t["assigned_team"], Value::Null);
    let mut inc = Incident::default();
    let a =
        apply_one(Role::Triage, &mut inc, json!({"severity": -1, "blast_radius": ["a", "b"], "assigned_team": "pay"}))
            .unwrap();
    assert_eq!(a.summary, "SEV-0 — 2 services in blast radius — assigned to pay");
}

#[test]
fn triage_without_severity_is_an_error() {
    let mut inc = Incident::default();
    let e = apply_one(Role::Triage, &mut inc, json!({"reasoning": "x"})).unwrap_err();
    assert!(e.contains("TriageResponse"), "{e}");
    assert!(inc.triage.is_none());
}

#[test]
fn investigation_clears_root_cause_below_threshold_and_falls_back_to_confidence() {
    let mut inc = Incident::default();
    let v = json!({"hypotheses": [{"description": "Bad deploy"}], "root_cause": "deploy 42", "root_cause_confidence": 0.65});
    let a = apply_one(Role::Investigation, &mut inc, v).unwrap();
    assert_eq!(a.summary, "Hypothesis: Bad deploy");
    assert_eq!(a.confidence, 0.65);
    let i = inc.investigation.unwrap();
    assert_eq!(i["root_cause"], Value::Null);
    assert_eq!(i["hypotheses"][0]["evidence"], json!([]));
    assert_eq!(i["hypotheses"][0]["confidence"], 0.0);

    let mut inc = Incident::default();
    let v = json!({"root_cause": "config push to fraud-detect", "confidence": 0.825});
    let a = apply_one(Role::Investigation, &mut inc, v).unwrap();
    // rcc = rcc or confidence; Python's {:.0%} rounds half to even on the binary value.
    assert_eq!(a.summary, "Root cause (82% confidence): config push to fraud-detect");
    assert_eq!(a.confidence, 0.825);
}

#[test]
fn communication_stamps_updates_appends_later_phases_and_defaults_fields() {
    let mut inc = Incident::default();
    let a =
        apply_one(Role::Communication, &mut inc, json!({"updates": [{"content": "We are investigating."}]})).unwrap();
    assert_eq!(a.summary, "via status_page: We are investigating.");
    let v = json!({"updates": [{"update_type": "resolution", "content": "Fixed."}], "confidence": 0.9});
    apply_one(Role::Communication, &mut inc, v).unwrap();
    let c = inc.communication.unwrap();
    let ups = c["updates"].as_array().unwrap();
    assert_eq!(ups.len(), 2);
    assert_eq!(ups[0]["update_type"], "initial");
    assert_eq!(ups[1]["update_type"], "resolution");
    assert_eq!(ups[1]["timestamp"], NOW);
    assert_eq!(ups[1]["channel"], "status_page");
}

#[test]
fn remediation_forces_approval_for_any_action_and_keeps_the_models_choice_otherwise() {
    let mut inc = Incident::default();
    let v = json!({"proposed_action": "rollback", "target": "fraud-detect", "requires_human_approval": false});
    let a = apply_one(Role::Remediation, &mut inc, v).unwrap();
    assert_eq!(a.summary, "rollback on fraud-detect (requires approval)");
    assert_eq!(a.custom, json!({"proposed_action": "rollback", "target": "fraud-detect"}));
    let r = inc.remediation.unwrap();
    assert_eq!(r["requires_human_approval"], true);
    assert_eq!(r["autonomy_reduction"], json!({"recommended": false, "target_agent": "", "reason": ""}));

    let mut inc = Incident::default();
    let v = json!({"requires_human_approval": false, "reasoning": "Nothing to do. It recovered."});
    let a = apply_one(Role::Remediation, &mut inc, v).unwrap();
    assert_eq!(a.summary, "Nothing to do");
    assert_eq!(inc.remediation.unwrap()["requires_human_approval"], false);

    let mut inc = Incident::default();
    let a = apply_one(Role::Remediation, &mut inc, json!({"proposed_action": "scale_up"})).unwrap();
    assert_eq!(a.summary, "Proposed: scale_up");
    let mut inc = Incident::default();
    let a = apply_one(Role::Remediation, &mut inc, json!({})).unwrap();
    assert_eq!(a.summary, "Agent response produced no summary — see raw output");
    assert_eq!(inc.remediation.unwrap()["requires_human_approval"], true);
}

#[test]
fn degraded_verdicts_match_the_reference_texts() {
    let mut inc = Incident { id: "INC-X".into(), ..Incident::default() };
    inc.metadata.insert("blast_radius".into(), json!([]));
    let t = degraded(Role::Triage, &inc, "no model");
    assert_eq!(t.summary, "DEGRADED: SEV-? — incident, 0 services in blast radius");
    assert_eq!(t.reasoning, "Agent operating in degraded mode: no model");
    assert_eq!(t.confidence, 0.0);
    inc.metadata.insert("severity".into(), json!("high"));
    assert_eq!(degraded(Role::Triage, &inc, "e").summary, "DEGRADED: SEV-high — incident, 0 services in blast radius");
    assert_eq!(degraded(Role::Communication, &inc, "e").summary, "DEGRADED: Draft status update required for INC-X");
    assert_eq!(degraded(Role::Remediation, &inc, "e").custom, json!({"proposed_action": null, "target": null}));
    assert!(degraded(Role::Investigation, &inc, "e").summary.starts_with("DEGRADED: Manual investigation"));
}
