//! respond: turns correlation snapshots (and orphan quality breaches) into incidents, runs
//! each through triage, investigation, communication and remediation with an LLM, writes
//! one verdict per agent with lineage, opens a case in core, and pauses for an operator's
//! approval before any remediation. Ported from nthlayer-workers 3.0.3, whose wheel never
//! reaches the model; see docs/PARITY.md for every intended difference.

use nthlayer_sdk::{CycleInput, CycleOutput, Emission, Host, Module, ModuleInfo, Task};
use serde_json::{json, Value};

pub mod agents;
mod approval;
mod arbiter;
pub mod config;
mod coordinator;
pub mod ids;
pub mod incident;
mod ingest;
pub mod prompts;
mod verdict;

use config::RespondConfig;
use incident::State;

pub struct Respond;

impl Module for Respond {
    fn describe() -> ModuleInfo {
        ModuleInfo {
            name: "respond".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            tasks: vec![
                Task::new(
                    "respond",
                    30,
                    "incidents from correlation snapshots and orphan breaches, driven through the agent pipeline",
                ),
                Task::new("respond.approve", 0, "approve the remediation proposed for an incident (on demand)"),
                Task::new("respond.reject", 0, "reject the remediation proposed for an incident (on demand)"),
            ],
            needs: vec!["core".into(), "llm".into(), "arbiter".into()],
            // What this module submits; the host forwards nothing else (emissions.rs BUILTIN).
            emits: Emission::verdicts(&["triage", "investigation", "communication", "remediation", "approval"]),
        }
    }

    fn run_cycle(host: &dyn Host, input: CycleInput) -> Result<CycleOutput, String> {
        match input.task.as_str() {
            "respond" => Ok(cycle(host, &input)),
            "respond.approve" => approval::decide(host, &input, "approve"),
            "respond.reject" => approval::decide(host, &input, "reject"),
            other => Err(format!("unknown task {other:?} for module respond")),
        }
    }
}

nthlayer_sdk::export_module!(Respond);

/// One `respond` cycle: ingest triggers, apply operators' decisions, drive incidents.
pub fn cycle(host: &dyn Host, input: &CycleInput) -> CycleOutput {
    let cfg = RespondConfig::from_input(host, &input.config);
    let started = host.now();
    let mut st = State::load(host, input.state.as_ref());
    let mut ing = ingest::Ingested::default();
    let page = ingest::snapshots(host, &cfg, &mut st, &mut ing);
    ingest::fallback(host, &cfg, &mut st, &page, &mut ing);
    let decided = approval::apply_decisions(host, &mut st);
    let mut run = coordinator::Cycle { end: started + cfg.cycle_budget_seconds, ..Default::default() };
    for inc in st.incidents.iter_mut().filter(|i| !i.is_terminal() && i.state != incident::AWAITING_APPROVAL) {
        coordinator::drive(host, &cfg, inc, &mut run);
    }
    let mut states = serde_json::Map::new();
    for inc in &st.incidents {
        let n = states.get(&inc.state).and_then(Value::as_u64).unwrap_or(0);
        states.insert(inc.state.clone(), json!(n + 1));
    }
    let result = json!({
        "opened": ing.opened, "merged": ing.merged, "duplicates": ing.duplicates, "cases": ing.cases,
        "decisions": decided, "verdicts": run.verdicts, "degraded": run.degraded, "deferred": run.deferred,
        "incidents": states,
    });
    let (state, evicted) = st.save(host.now(), cfg.terminal_retention_seconds, cfg.keep);
    for (id, inc_state) in &evicted {
        host.log(nthlayer_sdk::Level::Warn, "respond_incident_evicted", &[("incident_id", id), ("state", inc_state)]);
    }
    CycleOutput { state: Some(state), result: Some(result), emitted: run.verdicts }
}

pub(crate) use nthlayer_sdk::py::truthy;

#[cfg(test)]
mod bound_tests;
#[cfg(test)]
mod tests;
