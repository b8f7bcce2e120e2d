use serde_json::{json, Value};

/// Model label reported in usage for canned answers.
pub const STUB_MODEL: &str = "stub/canned";

/// Schema names the stub answers, as registered in the reference's `_STRUCTURED_FACTORIES`.
pub const CANNED_SCHEMAS: [&str; 6] = [
    "EvaluationResult",
    "SnapshotSummary",
    "TriageResponse",
    "InvestigationResponse",
    "CommunicationResponse",
    "RemediationResponse",
];

/// The reference stub's canned answer for `schema_name`, in its `model_dump()` form (every
/// field present, defaults included), so stub runs compare byte for byte with the Python
/// workers. `None` for a name the reference would meet with `NotImplementedError`.
pub fn canned_value(schema_name: &str) -> Option<Value> {
    let v = match schema_name {
        "EvaluationResult" => json!({
            "dimensions": {"stub_dimension": {"score": 0.85, "reasoning": "Stub: dimension passes."}},
            "confidence": 0.8
        }),
        "SnapshotSummary" => json!({
            "summary": "Stub correlation summary: events grouped by domain.",
            "notable_omissions": [],
            "confidence": 0.5
        }),
        "TriageResponse" => json!({
            "severity": 2,
            "blast_radius": ["fraud-detect"],
            "affected_slos": ["reversal_rate"],
            "assigned_team": "payments",
            "reasoning": "Stub triage: severity 2 from canned LLM.",
            "confidence": 0.7
        }),
        "InvestigationResponse" => json!({
            "hypotheses": [{
                "description": "Stub hypothesis: recent deploy regressed model judgment.",
                "confidence": 0.8,
                "evidence": ["stub-evidence-1"],
                "change_candidate": null
            }],
            "root_cause": "Stub root cause: canned investigation result.",
            "root_cause_confidence": 0.8,
            "reasoning": "Stub investigation reasoning.",
            "confidence": 0.8
        }),
        "CommunicationResponse" => json!({
            "updates": [{
                "channel": "status_page",
                "update_type": "initial",
                "content": "Stub status update: investigating."
            }],
            "reasoning": "Stub communication reasoning.",
            "confidence": 0.7
        }),
        "RemediationResponse" => json!({
            "proposed_action": "rollback",
            "target": "fraud-detect",
            "risk_assessment": "Stub risk: medium",
            "requires_human_approval": true,
            "autonomy_reduction": {"recommended": false, "target_agent": "", "reason": ""},
            "reasoning": "Stub remediation reasoning.",
            "confidence": 0.7
        }),
        _ => return None,
    };
    Some(v)
}
