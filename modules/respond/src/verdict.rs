//! The respond verdict, wire shape v1 (key order as the reference writes it), and its POST.

use nthlayer_sdk::{Host, HostError, Level};
use serde_json::{json, Value};

use crate::agents::{Applied, Role};
use crate::incident::Incident;

/// Pipeline slots: one verdict id per slot per incident (see `ids::verdict_id`).
pub fn slot(step: usize, role: Role) -> u32 {
    match (step, role) {
        (0, _) => 1,
        (1, Role::Investigation) => 2,
        (1, _) => 3,
        (2, _) => 4,
        _ => 5,
    }
}

/// Model and usage of the answer behind a verdict (None for a degraded one).
#[derive(Debug, Clone, PartialEq)]
pub struct Usage {
    pub model: String,
    pub tokens: u64,
    pub latency_ms: u32,
}

pub struct Draft<'a> {
    pub id: String,
    pub role: Role,
    pub applied: &'a Applied,
    pub action: &'a str,
    pub tags: Option<Vec<&'a str>>,
    pub usage: Option<&'a Usage>,
    pub parent_ids: Vec<String>,
    pub created_at: String,
}

pub fn record(inc: &Incident, d: &Draft) -> Value {
    json!({
        "id": d.id,
        "version": 1,
        "producer": {
            "system": "nthlayer-respond",
            "instance": null,
            "model": d.usage.map(|u| u.model.clone()),
            "prompt_version": format!("{}/{}", d.role.name(), crate::prompts::PROMPT_VERSION),
        },
        "subject": {
            "type": d.role.name(),
            "ref": inc.id,
            "summary": d.applied.summary,
            "agent": null,
            "service": null,
            "environment": null,
            "content_hash": null,
        },
        "judgment": {
            "action": d.action,
            "confidence": d.applied.confidence,
            "score": null,
            "dimensions": null,
            "reasoning": d.applied.reasoning,
            "tags": d.tags,
        },
        "outcome": {"status": "pending", "resolution": null, "override": null, "ground_truth": null, "closed_at": null},
        "lineage": {
            "parent": d.parent_ids.first().filter(|_| !inc.verdict_chain.is_empty()),
            "children": [],
            "context": inc.trigger_verdict_ids,
        },
        "metadata": {
            "cost_tokens": d.usage.map(|u| u.tokens),
            "cost_currency": null,
            "latency_ms": d.usage.map(|u| u.latency_ms),
            "ttl": 7_776_000,
            "custom": d.applied.custom,
        },
        "pipeline_latency_ms": null,
        "chain_depth": 0,
        "parent_ids": d.parent_ids,
        "service": null,
        "created_at": d.created_at,
        "type": d.role.name(),
    })
}

/// Posts a verdict. A 409 means this slot was written before (a replay after a restart or
/// a lost cycle): it counts as written, so the chain continues from the same id.
pub fn post(host: &dyn Host, inc_id: &str, record: &Value) -> bool {
    let id = record["id"].as_str().unwrap_or_default();
    match host.submit_verdict(record, None) {
        Ok(_) => true,
        Err(HostError::Rejected { status: 409, .. }) => {
            host.log(Level::Info, "respond_verdict_exists", &[("incident_id", inc_id), ("verdict_id", id)]);
            true
        }
        Err(e) => {
            host.log(
                Level::Warn,
                "respond_verdict_submit_failed",
                &[("incident_id", inc_id), ("verdict_id", id), ("error", &e.to_string())],
            );
            false
        }
    }
}
