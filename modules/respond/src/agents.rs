//! The four agents: response schemas, defaults, parse/apply rules and summaries, as pure
//! functions over the incident. Calling the model and writing verdicts is the
//! coordinator's job.
//!
//! A JSON Schema does not apply `default`s the way pydantic does, so each response is read
//! through a serde struct whose `#[serde(default)]`s are the schema's defaults.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::incident::Incident;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Triage,
    Investigation,
    Communication,
    Remediation,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Triage, Role::Investigation, Role::Communication, Role::Remediation];

    pub fn name(self) -> &'static str {
        match self {
            Role::Triage => "triage",
            Role::Investigation => "investigation",
            Role::Communication => "communication",
            Role::Remediation => "remediation",
        }
    }
    pub fn index(self) -> usize {
        self as usize
    }
    pub fn schema_name(self) -> &'static str {
        match self {
            Role::Triage => "TriageResponse",
            Role::Investigation => "InvestigationResponse",
            Role::Communication => "CommunicationResponse",
            Role::Remediation => "RemediationResponse",
        }
    }
    /// The schema sent with each call: the reference's pydantic model, shared with the host.
    pub fn schema(self) -> Value {
        let text = match self {
            Role::Triage => include_str!("../../../host/llm/schemas/TriageResponse.json"),
            Role::Investigation => include_str!("../../../host/llm/schemas/InvestigationResponse.json"),
            Role::Communication => include_str!("../../../host/llm/schemas/CommunicationResponse.json"),
            Role::Remediation => include_str!("../../../host/llm/schemas/RemediationResponse.json"),
        };
        serde_json::from_str(text).unwrap_or(Value::Null)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Triage {
    pub severity: i64,
    #[serde(default)]
    pub blast_radius: Vec<String>,
    #[serde(default)]
    pub affected_slos: Vec<String>,
    #[serde(default)]
    pub assigned_team: Option<String>,
    #[serde(default)]
    pub reasoning: String,
    #[serde(default)]
    pub confidence: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Hypothesis {
    pub description: String,
    #[serde(default)]
    pub confidence: f64,
    #[serde(default)]
    pub evidence: Vec<String>,
    #[serde(default)]
    pub change_candidate: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Investigation {
    #[serde(default)]
    pub hypotheses: Vec<Hypothesis>,
    #[serde(default)]
    pub root_cause: Option<String>,
    #[serde(default)]
    pub root_cause_confidence: f64,
    #[serde(default)]
    pub reasoning: String,
    #[serde(default)]
    pub confidence: f64,
}

fn status_page() -> String {
    "status_page".into()
}
fn initial() -> String {
    "initial".into()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Update {
    #[serde(default = "status_page")]
    pub channel: String,
    #[serde(default = "initial")]
    pub update_type: String,
    #[serde(default)]
    pub content: String,
    /// Stamped by us when the update is applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Communication {
    #[serde(default)]
    pub updates: Vec<Update>,
    #[serde(default)]
    pub reasoning: String,
    #[serde(default)]
    pub confidence: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AutonomyReduction {
    #[serde(default)]
    pub recommended: bool,
    #[serde(default)]
    pub target_agent: String,
    #[serde(default)]
    pub reason: String,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Remediation {
    #[serde(default)]
    pub proposed_action: Option<String>,
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub risk_assessment: String,
    #[serde(default = "yes")]
    pub requires_human_approval: bool,
    #[serde(default)]
    pub autonomy_reduction: AutonomyReduction,
    #[serde(default)]
    pub reasoning: String,
    #[serde(default)]
    pub confidence: f64,
}

/// What an agent's answer contributes to its verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    pub summary: String,
    pub confidence: f64,
    pub reasoning: String,
    /// `metadata.custom` of the verdict.
    pub custom: Value,
}

/// Python's `x or y` for confidences: 0.0 falls through.
fn or(a: f64, b: f64) -> f64 {
    if a != 0.0 {
        a
    } else {
        b
    }
}

fn head(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

fn first_sentence(reasoning: &str) -> String {
    reasoning.split('.').next().unwrap_or("").trim().to_string()
}

/// Last-resort summary from the answer's reasoning.
fn fallback_summary(reasoning: &str) -> String {
    let s = head(&first_sentence(reasoning), 90);
    if s.is_empty() {
        "Agent response produced no summary — see raw output".into()
    } else {
        s
    }
}

/// Reads the model's answer into the incident. `Err` (an answer that does not fit the
/// schema even after the host's re-asks) makes the caller fall back to a degraded verdict.
pub fn apply(
    role: Role,
    inc: &mut Incident,
    value: &Value,
    root_cause_threshold: f64,
    now_iso: &str,
) -> Result<Applied, String> {
    let bad = |e: serde_json::Error| format!("{} does not fit its schema: {e}", role.schema_name());
    match role {
        Role::Triage => {
            let mut t: Triage = serde_json::from_value(value.clone()).map_err(bad)?;
            t.severity = t.severity.clamp(0, 4);
            t.confidence = t.confidence.clamp(0.0, 1.0);
            let first = first_sentence(&t.reasoning);
            let summary = if !first.is_empty() {
                format!("SEV-{}: {first}", t.severity)
            } else {
                let mut parts = vec![format!("SEV-{}", t.severity)];
                if !t.blast_radius.is_empty() {
                    parts.push(format!("{} services in blast radius", t.blast_radius.len()));
                }
                if let Some(team) = t.assigned_team.as_deref().filter(|s| !s.is_empty()) {
                    parts.push(format!("assigned to {team}"));
                }
                parts.join(" — ")
            };
            let out = Applied { summary, confidence: t.confidence, reasoning: t.reasoning.clone(), custom: json!({}) };
            inc.triage = serde_json::to_value(&t).ok();
            Ok(out)
        }
        Role::Investigation => {
            let mut r: Investigation = serde_json::from_value(value.clone()).map_err(bad)?;
            r.root_cause_confidence = or(r.root_cause_confidence, r.confidence).clamp(0.0, 1.0);
            if r.root_cause_confidence < root_cause_threshold {
                r.root_cause = None;
            }
            let summary = match (&r.root_cause, r.hypotheses.first()) {
                (Some(rc), _) if !rc.is_empty() => format!(
                    "Root cause ({} confidence): {}",
                    nthlayer_sdk::py::percent(r.root_cause_confidence, 0),
                    head(rc, 90)
                ),
                (_, Some(h)) => format!("Hypothesis: {}", head(&h.description, 90)),
                _ => fallback_summary(&r.reasoning),
            };
            let out = Applied {
                summary,
                confidence: or(r.root_cause_confidence, r.confidence),
                reasoning: r.reasoning.clone(),
                custom: json!({}),
            };
            inc.investigation = serde_json::to_value(&r).ok();
            Ok(out)
        }
        Role::Communication => {
            let mut r: Communication = serde_json::from_value(value.clone()).map_err(bad)?;
            for u in &mut r.updates {
                u.timestamp = Some(now_iso.to_string());
            }
            let summary = match r.updates.first() {
                Some(u) if !u.channel.is_empty() => format!("via {}: {}", u.channel, head(&u.content, 90)),
                Some(u) => head(&u.content, 90),
                None => fallback_summary(&r.reasoning),
            };
            let out = Applied { summary, confidence: r.confidence, reasoning: r.reasoning.clone(), custom: json!({}) };
            // A later phase appends its updates to the earlier ones.
            let mut merged = inc.communication.clone().unwrap_or_else(|| json!({"updates": []}));
            let mut updates = merged["updates"].as_array().cloned().unwrap_or_default();
            updates.extend(r.updates.iter().filter_map(|u| serde_json::to_value(u).ok()));
            merged = json!({"updates": updates, "reasoning": r.reasoning, "confidence": r.confidence});
            inc.communication = Some(merged);
            Ok(out)
        }
        Role::Remediation => {
            let mut r: Remediation = serde_json::from_value(value.clone()).map_err(bad)?;
            // No action runs without a human: naming one always requires approval.
            if r.proposed_action.is_some() {
                r.requires_human_approval = true;
            }
            let summary = match (r.proposed_action.as_deref(), r.target.as_deref()) {
                (Some(a), Some(t)) if !a.is_empty() && !t.is_empty() => {
                    format!("{a} on {t}") + if r.requires_human_approval { " (requires approval)" } else { "" }
                }
                (Some(a), _) if !a.is_empty() => format!("Proposed: {a}"),
                _ => fallback_summary(&r.reasoning),
            };
            let out = Applied {
                summary,
                confidence: r.confidence,
                reasoning: r.reasoning.clone(),
                custom: json!({"proposed_action": r.proposed_action, "target": r.target}),
            };
            inc.remediation = serde_json::to_value(&r).ok();
            Ok(out)
        }
    }
}

/// The verdict of an agent that got no usable answer.
pub fn degraded(role: Role, inc: &Incident, error: &str) -> Applied {
    let summary = match role {
        Role::Triage => {
            let sev = match inc.metadata.get("severity") {
                None => "?".to_string(),
                Some(Value::Null) => "None".to_string(),
                Some(Value::String(s)) => s.clone(),
                Some(v) => v.to_string(),
            };
            let blast = inc.metadata.get("blast_radius").and_then(Value::as_array).map_or(0, Vec::len);
            format!("DEGRADED: SEV-{sev} — incident, {blast} services in blast radius")
        }
        Role::Investigation => {
            "DEGRADED: Manual investigation required — root cause from correlation: unknown (unknown)".into()
        }
        Role::Communication => format!("DEGRADED: Draft status update required for {}", inc.id),
        Role::Remediation => {
            "DEGRADED: Manual remediation required — see correlation verdict for recommended actions".into()
        }
    };
    let custom = if role == Role::Remediation { json!({"proposed_action": null, "target": null}) } else { json!({}) };
    Applied { summary, confidence: 0.0, reasoning: format!("Agent operating in degraded mode: {error}"), custom }
}

#[cfg(test)]
mod tests;
