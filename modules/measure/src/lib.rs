//! measure: turns judgment SLOs and judgment thresholds into `quality_breach` verdicts and
//! lowers an agent's autonomy, never raising it on its own. Ported from nthlayer-workers
//! 3.0.3, with one deliberate fix: the state survives restarts, so an open breach is not
//! re-raised (nor autonomy stepped down again) every time the host restarts.

use nthlayer_sdk::host::HostExt;
use nthlayer_sdk::{time, CycleInput, CycleOutput, Emission, Host, HostError, Module, ModuleInfo, Submission, Task};
use serde_json::{json, Value};

mod cycle;
pub mod governance;
pub mod knobs;
pub mod slo;
pub mod state;
pub mod threshold;

#[cfg(test)]
mod tests;

pub struct Measure;

impl Module for Measure {
    fn describe() -> ModuleInfo {
        ModuleInfo {
            name: "measure".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            tasks: vec![Task::new(
                "measure",
                60,
                "judgment_slo_evaluation per judgment SLO, thresholds, quality_breach and autonomy_change",
            )],
            needs: vec!["core".into(), "prometheus".into()],
            // What this module submits; the host forwards nothing else (emissions.rs BUILTIN).
            emits: [
                Emission::assessments(&["judgment_slo_evaluation", "judgment_threshold_evaluation"]),
                Emission::verdicts(&["quality_breach", "autonomy_change"]),
            ]
            .concat(),
        }
    }

    fn run_cycle(host: &dyn Host, input: CycleInput) -> Result<CycleOutput, String> {
        match input.task.as_str() {
            "measure" => Ok(cycle::run(host, &input)),
            other => Err(format!("unknown task {other:?} for module measure")),
        }
    }
}

pub(crate) use nthlayer_sdk::py::truthy;

/// Submits verdicts in one batched call, in order; each refusal is logged. The number accepted.
pub(crate) fn submit_verdicts(host: &dyn Host, records: &[Value]) -> u32 {
    let batch: Vec<Submission> = records.iter().map(|r| Submission::verdict(r.clone(), None)).collect();
    let answers = host.submit_batch(&batch);
    records.iter().zip(answers).filter(|(record, answer)| logged(host, record, answer.clone())).count() as u32
}

/// A verdict's answer; a refusal is logged and reported as false.
fn logged(host: &dyn Host, record: &Value, answer: Result<String, HostError>) -> bool {
    match answer {
        Ok(_) => true,
        Err(e) => {
            let id = record["id"].as_str().unwrap_or_default();
            let service = record["service"].as_str().unwrap_or_default();
            host.warn(
                "measure_verdict_submit_failed",
                &[("verdict_id", id), ("service", service), ("error", &e.to_string())],
            );
            false
        }
    }
}

pub(crate) fn now_iso(host: &dyn Host) -> String {
    time::iso(host.now())
}

pub(crate) fn decision(host: &dyn Host) -> Value {
    json!({"decided": true, "decided_at": now_iso(host), "autonomy_action": "reduced"})
}

nthlayer_sdk::export_module!(Measure);
