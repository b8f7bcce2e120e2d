//! Our prompts for the four agents, shipped inside the module (the reference loads YAML
//! files that its wheel does not contain, so it never reaches a model).
//!
//! Bump [`PROMPT_VERSION`] whenever a template changes: it is written to every verdict's
//! `producer.prompt_version`, so calibration can tell answers to different prompts apart.

use serde_json::Value;

use crate::agents::Role;
use crate::incident::Incident;

pub const PROMPT_VERSION: &str = "1";

/// Actions the remediation agent may name. Every one is proposed for human approval.
pub const ACTIONS: &str = "\
- rollback: revert the service to its previous release
- disable_feature_flag: turn off a recently enabled feature flag
- pause_pipeline: stop a deploy or data pipeline feeding the service
- scale_up: add capacity to the service
- reduce_autonomy: lower the autonomy level of an automated agent";

fn templates(role: Role) -> (&'static str, &'static str) {
    match role {
        Role::Triage => (include_str!("../prompts/triage.system.md"), include_str!("../prompts/triage.user.md")),
        Role::Investigation => {
            (include_str!("../prompts/investigation.system.md"), include_str!("../prompts/investigation.user.md"))
        }
        Role::Communication => {
            (include_str!("../prompts/communication.system.md"), include_str!("../prompts/communication.user.md"))
        }
        Role::Remediation => {
            (include_str!("../prompts/remediation.system.md"), include_str!("../prompts/remediation.user.md"))
        }
    }
}

/// `{{name}}` substitution. Unknown names are left as they are, so a typo shows in tests.
pub fn render(template: &str, vars: &[(&str, String)]) -> String {
    let mut out = template.to_string();
    for (k, v) in vars {
        out = out.replace(&format!("{{{{{k}}}}}"), v);
    }
    out
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

/// What correlation told us, for the prompts.
fn context(inc: &Incident) -> String {
    let mut lines = Vec::new();
    if let Some(s) = inc.metadata.get("correlation_summary").and_then(|s| s["summary"].as_str()) {
        lines.push(format!("Summary: {s}"));
    }
    for key in ["peak_severity", "event_count", "affected_services", "severity", "fallback_reason"] {
        if let Some(v) = inc.metadata.get(key).filter(|v| !v.is_null()) {
            lines.push(format!("{key}: {v}"));
        }
    }
    if lines.is_empty() {
        "No correlated context is available; judge from the services and triggers alone.".into()
    } else {
        lines.join("\n")
    }
}

/// System and user prompt for `role`. `phase` is 1 or 2 (communication only).
pub fn build(role: Role, phase: u8, inc: &Incident, root_cause_threshold: f64) -> (String, String) {
    let (sys, user) = templates(role);
    let none = || Value::Null;
    let vars = vec![
        ("incident_id", inc.id.clone()),
        ("trigger_source", inc.trigger_source.clone()),
        ("topology", pretty(&inc.topology["services"])),
        ("context", context(inc)),
        ("triggers", inc.trigger_verdict_ids.join(", ")),
        ("triage", pretty(&inc.triage.clone().unwrap_or_else(none))),
        ("investigation", pretty(&inc.investigation.clone().unwrap_or_else(none))),
        ("root_cause_threshold", nthlayer_sdk::py::repr(root_cause_threshold)),
        ("actions", ACTIONS.to_string()),
        ("phase_instruction", phase_instruction(phase).to_string()),
        ("facts", communication_facts(phase, inc)),
    ];
    (render(sys, &vars), render(user, &vars))
}

fn phase_instruction(phase: u8) -> &'static str {
    if phase == 2 {
        "Write the resolution update: the response has reached its remediation decision."
    } else {
        "Write the first public notice: the incident is confirmed and investigation is under way."
    }
}

fn communication_facts(phase: u8, inc: &Incident) -> String {
    let t = inc.triage.clone().unwrap_or(Value::Null);
    let mut lines = vec![
        format!("Severity (0 worst .. 4 least): {}", t.get("severity").cloned().unwrap_or(Value::Null)),
        format!("Affected services: {}", inc.services().join(", ")),
    ];
    if phase == 2 {
        let i = inc.investigation.clone().unwrap_or(Value::Null);
        let r = inc.remediation.clone().unwrap_or(Value::Null);
        lines.push(format!("Root cause: {}", i["root_cause"].as_str().unwrap_or("not confirmed")));
        lines.push(format!(
            "Remediation: {} on {}",
            r["proposed_action"].as_str().unwrap_or("none"),
            r["target"].as_str().unwrap_or("-")
        ));
        let outcome = match &inc.approval {
            Some(a) => {
                format!("{} by {}", a["decision"].as_str().unwrap_or("?"), a["by"].as_str().unwrap_or("operator"))
            }
            None => "no action needed approval".into(),
        };
        lines.push(format!("Operator decision: {outcome}"));
    } else {
        lines.push("Investigation is ongoing.".into());
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_placeholder_is_filled_for_every_role() {
        let inc = Incident {
            id: "INC-A".into(),
            topology: json!({"services":[{"name":"fraud-detect","tier":"critical"}]}),
            triage: Some(json!({"severity": 1})),
            ..Incident::default()
        };
        for role in Role::ALL {
            for phase in [1, 2] {
                let (s, u) = build(role, phase, &inc, 0.7);
                assert!(!s.contains("{{") && !u.contains("{{"), "{role:?}: {s}\n{u}");
                assert!(u.contains("INC-A"));
            }
        }
        let (s, _) = build(Role::Investigation, 1, &inc, 0.7);
        assert!(s.contains("at least 0.7"));
        let (_, u) = build(Role::Communication, 2, &inc, 0.7);
        assert!(u.contains("resolution update") && u.contains("fraud-detect"));
    }
}
