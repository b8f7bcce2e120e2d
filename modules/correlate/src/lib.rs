//! correlate: groups breaches and SLO signals into situations (`correlate`, session windows
//! → `correlation_snapshot`), compares declared dependencies with Tempo traces
//! (`correlate.topology` → `topology_drift`) and contract promises with Prometheus
//! (`correlate.contract` → `contract_divergence`). Ported from nthlayer-workers 3.0.3, with
//! the repeated-snapshot defect fixed (see `poll`).

use nthlayer_sdk::{CycleInput, CycleOutput, Emission, Host, Module, ModuleInfo, Task, WakeOn};
use serde_json::Value;

mod contract;
mod digest;
mod events;
mod latency;
mod poll;
mod session;
mod summary;
mod tempo;
mod topology;
mod windows;

pub struct Correlate;

/// What wakes `correlate` as soon as it lands in core (contract 0.2.0): a `quality_breach`
/// verdict, or an `slo_status` assessment that is not healthy. A woken cycle is an ordinary
/// cycle (it ignores what woke it and polls from its cursor), so an early or duplicate
/// wake-up can neither lose nor repeat a snapshot.
fn wake_on() -> [WakeOn; 2] {
    [
        WakeOn::verdict("quality_breach"),
        WakeOn::assessment("slo_status").where_any_of("data.status", &["EXHAUSTED", "CRITICAL", "WARNING", "UNKNOWN"]),
    ]
}

impl Module for Correlate {
    fn describe() -> ModuleInfo {
        ModuleInfo {
            name: "correlate".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            tasks: vec![
                wake_on()
                    .into_iter()
                    .fold(Task::new("correlate", 10, "session windows -> correlation_snapshot"), Task::woken_by),
                Task::new("correlate.topology", 3600, "declared vs Tempo-observed dependencies -> topology_drift"),
                Task::new("correlate.contract", 3600, "contract promises vs Prometheus -> contract_divergence"),
            ],
            needs: vec!["core".into(), "prometheus".into(), "tempo".into(), "llm".into()],
            // What this module submits; the host forwards nothing else (emissions.rs BUILTIN).
            emits: Emission::assessments(&["correlation_snapshot", "topology_drift", "contract_divergence"]),
        }
    }

    fn run_cycle(host: &dyn Host, input: CycleInput) -> Result<CycleOutput, String> {
        match input.task.as_str() {
            "correlate" => Ok(session::run(host, &input)),
            "correlate.topology" => Ok(topology::run(host, &input)),
            "correlate.contract" => Ok(contract::run(host, &input)),
            other => Err(format!("unknown task {other:?} for module correlate")),
        }
    }
}

pub(crate) use nthlayer_sdk::py::type_name;

/// Python's `round(x, 6)`: correctly rounded, half to even on the exact binary value, which
/// is what Rust's fixed-precision formatting does too.
pub(crate) fn round6(x: f64) -> f64 {
    format!("{x:.6}").parse().unwrap_or(x)
}

/// `GET /manifests` as a list; `None` (logged) when core is down or answers nonsense.
pub(crate) fn manifests(host: &dyn Host, task: &str) -> Option<Vec<Value>> {
    use nthlayer_sdk::host::HostExt;
    match host.get_manifests() {
        Ok(Value::Array(list)) => Some(list),
        Ok(Value::Null) => Some(Vec::new()),
        Ok(other) => {
            let what = format!("expected a JSON array, got {}", type_name(&other));
            host.warn("correlate_manifest_fetch_failed", &[("task", task), ("error", &what)]);
            None
        }
        Err(e) => {
            host.warn("correlate_manifest_fetch_failed", &[("task", task), ("error", &e.to_string())]);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nthlayer_sdk::testing::FakeHost;
    use serde_json::json;

    #[test]
    fn describe_lists_three_tasks_with_reference_intervals() {
        let info = Correlate::describe();
        assert_eq!(info.name, "correlate");
        let tasks: Vec<(&str, u32)> = info.tasks.iter().map(|t| (t.name.as_str(), t.interval_seconds)).collect();
        assert_eq!(tasks, vec![("correlate", 10), ("correlate.topology", 3600), ("correlate.contract", 3600)]);
    }

    #[test]
    fn only_the_session_task_is_woken_by_breaches_and_unhealthy_slo_status() {
        let info = Correlate::describe();
        let wake: Vec<&[WakeOn]> = info.tasks.iter().map(|t| t.wake.as_slice()).collect();
        assert_eq!(wake[0].len(), 2);
        assert_eq!(wake[0][0], WakeOn::verdict("quality_breach"));
        assert_eq!(wake[0][1].kind, "slo_status");
        assert!(!wake[0][1].tests[0].values.contains(&"HEALTHY".to_string()));
        assert!(wake[1].is_empty() && wake[2].is_empty());
    }

    #[test]
    fn unknown_task_is_an_error() {
        let input = CycleInput { task: "correlate.nope".into(), state: None, config: json!({}), args: None };
        assert!(Correlate::run_cycle(&FakeHost::new(), input).unwrap_err().contains("unknown task"));
    }

    #[test]
    fn round6_is_pythons() {
        assert_eq!(round6(0.9949999999), 0.995);
        assert_eq!(round6(0.1234565), 0.123456); // binary value is just below the tie
        assert_eq!(round6(1.0), 1.0);
    }
}

nthlayer_sdk::export_module!(Correlate);
