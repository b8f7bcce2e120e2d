//! The pipeline: TRIAGE → [INVESTIGATION ∥ COMMUNICATION] → REMEDIATION → COMMUNICATION,
//! with escalation, the approval pause and per-step timeouts.
//!
//! Guest code is single-threaded, so the "parallel" step runs its two agents one after the
//! other; both still chain to triage, and the step's timeout bounds them together. Each
//! agent's LLM timeout is cut to what is left of the step, so a hanging model ends the
//! step on time instead of overrunning it.
//!
//! Lineage is deterministic: after the parallel step, remediation chains to the
//! investigation verdict (communication's if investigation's POST failed; triage's if
//! both failed), because remediation acts on what investigation found. The reference
//! chains to whichever agent happened to finish last.

use nthlayer_sdk::{time, Host, Level, LlmRequest};
use serde_json::{json, Value};

use crate::agents::{self, Role};
use crate::config::RespondConfig;
use crate::ids;
use crate::incident::{Incident, AWAITING_APPROVAL};
use crate::verdict::{self, Draft, Usage};

/// Agents per step; the first is the step's lead (what the next step chains to).
pub const STEPS: [&[Role]; 4] =
    [&[Role::Triage], &[Role::Investigation, Role::Communication], &[Role::Remediation], &[Role::Communication]];
const STEP_STATES: [&str; 4] = ["triaging", "investigating", "remediating", "remediating"];

/// Cycle-wide bookkeeping shared by every incident driven in one cycle.
#[derive(Debug, Default)]
pub struct Cycle {
    /// Unix time after which no step may start unless it fits.
    pub end: f64,
    /// Whether a step already ran this cycle (the first one always runs, so a budget set
    /// too small still makes progress).
    pub worked: bool,
    pub verdicts: u32,
    pub degraded: u32,
    pub deferred: u32,
}

fn step_label(step: usize) -> String {
    STEPS[step].iter().map(|r| r.name()).collect::<Vec<_>>().join("+")
}

/// Longest a step may take: its agents' timeouts, capped by the step timeout.
fn worst_case(cfg: &RespondConfig, step: usize) -> f64 {
    let sum: f64 = STEPS[step].iter().map(|r| cfg.agent_timeouts[r.index()]).sum();
    if cfg.step_timeout_seconds > 0.0 {
        sum.min(cfg.step_timeout_seconds)
    } else {
        sum
    }
}

/// Runs an incident's remaining steps, as far as this cycle's budget allows.
pub fn drive(host: &dyn Host, cfg: &RespondConfig, inc: &mut Incident, cycle: &mut Cycle) {
    let first = inc.last_completed_step_index.map_or(0, |i| (i + 1).max(0) as usize);
    for (step, state) in STEP_STATES.iter().enumerate().skip(first) {
        if cycle.worked && host.now() + worst_case(cfg, step) > cycle.end {
            cycle.deferred += 1;
            host.log(Level::Info, "respond_step_deferred", &[("incident_id", &inc.id), ("step", &step_label(step))]);
            return;
        }
        cycle.worked = true;
        inc.state = (*state).into();
        if !run_step(host, cfg, inc, step, cycle) {
            return;
        }
        inc.last_completed_step_index = Some(step as i64);
        if inc.metadata.get("escalation_pending").and_then(Value::as_bool) == Some(true) {
            finish(host, inc, "escalated");
            return;
        }
        let needs_approval = inc.remediation.as_ref().and_then(|r| r["requires_human_approval"].as_bool());
        if step == 2 && needs_approval == Some(true) {
            finish(host, inc, AWAITING_APPROVAL);
            return;
        }
    }
    finish(host, inc, "resolved");
}

fn finish(host: &dyn Host, inc: &mut Incident, state: &str) {
    inc.state = state.into();
    inc.updated_at = time::iso(host.now());
    host.log(Level::Info, "respond_incident_state", &[("incident_id", &inc.id), ("state", state)]);
}

/// One step. False when the step failed (the incident is then `failed`).
fn run_step(host: &dyn Host, cfg: &RespondConfig, inc: &mut Incident, step: usize, cycle: &mut Cycle) -> bool {
    let started = host.now();
    let limit = cfg.step_timeout_seconds;
    let parents: Vec<String> = match inc.verdict_chain.last() {
        Some(p) => vec![p.clone()],
        None => inc.trigger_verdict_ids.clone(),
    };
    let mut written: Vec<String> = Vec::new();
    for &role in STEPS[step] {
        let left = if limit > 0.0 { limit - (host.now() - started) } else { f64::INFINITY };
        let timeout = cfg.agent_timeouts[role.index()].min(left).max(0.001);
        let (system, user) = crate::prompts::build(role, if step == 3 { 2 } else { 1 }, inc, cfg.root_cause_threshold);
        let req = LlmRequest {
            system,
            user,
            schema: role.schema(),
            schema_name: role.schema_name().into(),
            max_tokens: cfg.max_tokens,
            timeout_ms: (timeout * 1000.0).ceil() as u32,
            max_retries: cfg.max_retries,
        };
        let answer = host.llm_structured(&req);
        if limit > 0.0 && host.now() - started > limit {
            // As when the reference cancels the step: this agent's verdict is not written.
            inc.state = "failed".into();
            inc.error = Some(format!("step_timeout: {} exceeded {}s", step_label(step), nthlayer_sdk::py::repr(limit)));
            inc.updated_at = time::iso(host.now());
            host.log(
                Level::Warn,
                "respond_step_timeout",
                &[("incident_id", &inc.id), ("step", &step_label(step)), ("error", inc.error.as_deref().unwrap_or(""))],
            );
            return false;
        }
        let now_iso = time::iso(host.now());
        let outcome = answer.map_err(|e| e.to_string()).and_then(|r| {
            let usage = Usage {
                model: r.model.clone(),
                tokens: r.input_tokens as u64 + r.output_tokens as u64,
                latency_ms: r.latency_ms,
            };
            agents::apply(role, inc, &r.value, cfg.root_cause_threshold, &now_iso).map(|a| (a, usage))
        });
        let (applied, usage, action, tags) = match outcome {
            Ok((a, u)) => (a, Some(u), "flag", None),
            Err(e) => {
                cycle.degraded += 1;
                host.log(
                    Level::Warn,
                    "respond_agent_degraded",
                    &[("incident_id", &inc.id), ("role", role.name()), ("error", &e)],
                );
                (agents::degraded(role, inc, &e), None, "escalate", Some(vec!["degraded", "human-takeover-required"]))
            }
        };
        let slot = verdict::slot(step, role);
        let id = ids::verdict_id(&inc.id, inc.id_time(), slot);
        let draft = Draft {
            id: id.clone(),
            role,
            applied: &applied,
            action,
            tags,
            usage: usage.as_ref(),
            parent_ids: parents.clone(),
            created_at: now_iso,
        };
        let record = verdict::record(inc, &draft);
        // Captured at write time, whether or not the POST succeeds (as the reference).
        if action == "escalate" && applied.confidence < cfg.escalation_threshold {
            inc.metadata.insert("escalation_pending".into(), json!(true));
        }
        if verdict::post(host, &inc.id, &record) {
            cycle.verdicts += 1;
            inc.posted.insert(slot.to_string(), json!(id));
            written.push(id);
        }
        if role == Role::Remediation && usage.is_some() {
            crate::arbiter::decide(host, cfg, inc);
        }
    }
    // The lead verdict goes last, so `chain[-1]` (what the next step chains to) is it.
    if let Some(lead) = written.first().cloned() {
        inc.verdict_chain.extend(written.into_iter().skip(1));
        inc.verdict_chain.push(lead);
    }
    true
}

#[cfg(test)]
mod tests;
