//! Resuming the approval pause. The reference parks an incident in `awaiting_approval`
//! forever in worker mode. Here an operator's decision is a verdict of type `approval`
//! (a type core knows) whose `subject.ref` is the incident and whose parent is the
//! remediation verdict, written by the on-demand tasks `respond.approve` /
//! `respond.reject` (`nthlayer-host run --task respond.approve --args '{"incident":…}'`).
//! The next `respond` cycle reads it: approve continues to the resolution update, reject
//! ends the incident `escalated` (humans take over, nothing is executed).

use nthlayer_sdk::host::HostExt;
use nthlayer_sdk::{time, CycleInput, CycleOutput, Host, Level, VerdictQuery};
use serde_json::{json, Value};

use crate::incident::{State, AWAITING_APPROVAL};

fn query(host: &dyn Host, verdict_type: &str, created_after: Option<String>) -> Result<Vec<Value>, String> {
    let q =
        VerdictQuery { verdict_type: Some(verdict_type.into()), created_after, limit: 1000, ..VerdictQuery::default() };
    match host.query_verdicts(&q) {
        Ok(Value::Array(a)) => Ok(a),
        Ok(_) => Ok(Vec::new()),
        Err(e) => Err(e.to_string()),
    }
}

fn refers_to(v: &Value, incident: &str) -> bool {
    v["subject"]["ref"].as_str() == Some(incident)
}

/// Applies decisions posted since each paused incident paused. The first decision wins.
/// Returns how many incidents were resumed or ended.
pub fn apply_decisions(host: &dyn Host, st: &mut State) -> u32 {
    let paused: Vec<usize> =
        st.incidents.iter().enumerate().filter(|(_, i)| i.state == AWAITING_APPROVAL).map(|(n, _)| n).collect();
    let Some(since) = paused.iter().map(|&n| st.incidents[n].updated_at.clone()).min() else { return 0 };
    let mut list = match query(host, "approval", Some(since)) {
        Ok(l) => l,
        Err(e) => {
            host.log(Level::Warn, "respond_approval_poll_failed", &[("error", &e)]);
            return 0;
        }
    };
    list.sort_by(|a, b| a["created_at"].as_str().cmp(&b["created_at"].as_str()));
    let mut changed = 0;
    for n in paused {
        let inc = &mut st.incidents[n];
        let Some(v) = list.iter().find(|v| refers_to(v, &inc.id)) else { continue };
        let decision = v["judgment"]["action"].as_str().unwrap_or_default();
        let id = v["id"].as_str().unwrap_or_default().to_string();
        let by = v["metadata"]["custom"]["operator"].as_str().unwrap_or("operator").to_string();
        let record = json!({"decision": decision, "by": by, "verdict_id": id, "at": v["created_at"]});
        match decision {
            "approve" => {
                inc.approval = Some(record);
                inc.verdict_chain.push(id.clone());
                inc.state = "remediating".into();
            }
            "reject" => {
                inc.approval = Some(record);
                inc.state = "escalated".into();
                inc.error = Some(format!("remediation rejected by {by}"));
            }
            other => {
                host.log(
                    Level::Warn,
                    "respond_approval_unknown_decision",
                    &[("incident_id", &inc.id), ("verdict_id", &id), ("decision", other)],
                );
                continue;
            }
        }
        inc.updated_at = time::iso(host.now());
        changed += 1;
        host.log(Level::Info, "respond_approval_applied", &[("incident_id", &inc.id), ("decision", decision)]);
    }
    changed
}

/// `respond.approve` / `respond.reject`: writes the operator's decision for an incident.
pub fn decide(host: &dyn Host, input: &CycleInput, decision: &str) -> Result<CycleOutput, String> {
    let args = input.args.clone().unwrap_or(Value::Null);
    let incident = args["incident"]
        .as_str()
        .or(args["target"].as_str())
        .filter(|s| !s.is_empty())
        .ok_or("expected args {\"incident\": \"INC-…\"} (optional \"operator\", \"reason\")")?
        .to_string();
    let operator = args["operator"].as_str().unwrap_or("operator").to_string();
    let reason = args["reason"].as_str().map(str::to_string).unwrap_or_else(|| format!("{decision} by {operator}"));
    let remediations =
        query(host, "remediation", None).map_err(|e| format!("cannot read remediation verdicts: {e}"))?;
    let rem = remediations
        .iter()
        .filter(|v| refers_to(v, &incident))
        .max_by(|a, b| a["created_at"].as_str().cmp(&b["created_at"].as_str()))
        .ok_or_else(|| format!("no remediation proposal found for incident {incident}"))?;
    let rem_id = rem["id"].as_str().unwrap_or_default().to_string();
    let proposal = rem["subject"]["summary"].as_str().unwrap_or("remediation");
    let now = host.now();
    let id = format!("apr-{}-{}", crate::ids::hash8(&incident), host.hex8());
    let record = json!({
        "id": id,
        "version": 1,
        "producer": {"system": "nthlayer-respond", "instance": null, "model": null, "prompt_version": null},
        "subject": {"type": "approval", "ref": incident, "summary": format!("{decision}: {proposal} (by {operator})"),
                    "agent": null, "service": null, "environment": null, "content_hash": null},
        "judgment": {"action": decision, "confidence": 1.0, "score": null, "dimensions": null, "reasoning": reason,
                     "tags": ["operator"]},
        "outcome": {"status": "pending", "resolution": null, "override": null, "ground_truth": null, "closed_at": null},
        "lineage": {"parent": rem_id, "children": [], "context": [rem_id]},
        "metadata": {"cost_tokens": null, "cost_currency": null, "latency_ms": null, "ttl": 7_776_000,
                     "custom": {"operator": operator}},
        "pipeline_latency_ms": null,
        "chain_depth": 0,
        "parent_ids": [rem_id],
        "service": null,
        "created_at": time::iso(now),
        "type": "approval",
    });
    host.submit_verdict(&record, None).map_err(|e| format!("cannot write the approval for {incident}: {e}"))?;
    host.log(Level::Info, "respond_approval_written", &[("incident_id", &incident), ("decision", decision)]);
    Ok(CycleOutput {
        state: None,
        result: Some(json!({"approval_id": id, "incident": incident, "decision": decision, "remediation": rem_id})),
        emitted: 1,
    })
}
