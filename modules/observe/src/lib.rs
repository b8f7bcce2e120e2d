//! observe: SLO status and portfolio (`observe.collect`), error-budget drift
//! (`observe.drift`), dependency blast radius (`observe.topology`) and the deploy gate
//! (`observe.gate`), ported from nthlayer-workers 3.0.3.
//!
//! Every job is deterministic: Prometheus and core in, assessments out, no LLM.

use nthlayer_sdk::{
    ids, time, CycleInput, CycleOutput, Emission, Host, HostError, Level, Module, ModuleInfo, Submission, Task,
};
use serde_json::{json, Value};

pub(crate) use manifests::{fetch_manifests, manifest_name, manifest_slos};

mod collect;
mod drift;
mod gate;
mod manifests;
mod numeric;
mod topology;

pub struct Observe;

impl Module for Observe {
    fn describe() -> ModuleInfo {
        ModuleInfo {
            name: "observe".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            tasks: vec![
                Task::new("observe.collect", 60, "slo_status per SLO + portfolio_status"),
                Task::new("observe.drift", 1800, "drift_signal per service SLO"),
                Task::new("observe.topology", 86400, "dependency_graph blast radius per service"),
                Task::new("observe.gate", 0, "deploy gate decision (on demand)"),
            ],
            needs: vec!["core".into(), "prometheus".into()],
            // What this module submits; the host forwards nothing else (emissions.rs BUILTIN).
            emits: Emission::assessments(&[
                "slo_status",
                "portfolio_status",
                "drift_signal",
                "dependency_graph",
                "deploy_gate",
            ]),
        }
    }

    fn run_cycle(host: &dyn Host, input: CycleInput) -> Result<CycleOutput, String> {
        match input.task.as_str() {
            "observe.collect" => Ok(collect::run(host, &input)),
            "observe.drift" => Ok(drift::run(host, &input)),
            "observe.topology" => Ok(topology::run(host, &input)),
            "observe.gate" => gate::run(host, &input),
            other => Err(format!("unknown task {other:?} for module observe")),
        }
    }
}

/// The reference numbers assessments with one process-wide counter, so ids restart at 1 on
/// every restart. Here each task carries its counter in its state, which keeps ids
/// increasing across cycles and restarts.
pub(crate) struct Seq(u64);

impl Seq {
    pub(crate) fn from_state(state: Option<&Value>) -> Self {
        let n = state.and_then(|s| s.get("seq")).and_then(Value::as_u64).filter(|n| *n >= 1);
        Seq(n.unwrap_or(1))
    }

    fn take(&mut self) -> u64 {
        let n = self.0;
        self.0 = self.0.saturating_add(1);
        n
    }

    pub(crate) fn state(&self) -> Value {
        json!({ "seq": self.0 })
    }
}

/// An observe assessment, keys in the reference's order.
pub(crate) fn assessment(host: &dyn Host, seq: &mut Seq, kind: &str, service: &str, data: Value) -> Value {
    let id = ids::asm_id(host, seq.take());
    json!({
        "id": id,
        "created_at": time::iso(host.now()),
        "kind": kind,
        "service": service,
        "producer": "nthlayer-observe",
        "data": data,
    })
}

/// Submits an assessment under the module's own source; a refusal is logged, not fatal.
pub(crate) fn submit(host: &dyn Host, record: &Value) -> bool {
    logged(host, record, host.submit_assessment(record, None))
}

/// `items` cut into consecutive runs of at most `cap` units (`size` of each; an item bigger
/// than `cap` is a run of its own): a cycle batches its host calls one run at a time, so
/// the answers and records it holds stay bounded however many services there are.
pub(crate) fn runs<T>(items: &[T], size: impl Fn(&T) -> usize, cap: usize) -> Vec<&[T]> {
    let mut out = Vec::new();
    let (mut start, mut n) = (0, 0);
    for (i, item) in items.iter().enumerate() {
        let s = size(item);
        if i > start && n + s > cap {
            out.push(&items[start..i]);
            (start, n) = (i, 0);
        }
        n += s;
    }
    if start < items.len() {
        out.push(&items[start..]);
    }
    out
}

/// Submits assessments in one batched call (the SDK splits a long list), each under the
/// module's own source; a refusal is logged as `submit` logs it. One flag per record.
pub(crate) fn submit_all(host: &dyn Host, records: &[Value]) -> Vec<bool> {
    let batch: Vec<Submission> = records.iter().map(|r| Submission::assessment(r.clone(), None)).collect();
    records.iter().zip(host.submit_batch(&batch)).map(|(record, answer)| logged(host, record, answer)).collect()
}

fn logged(host: &dyn Host, record: &Value, answer: Result<String, HostError>) -> bool {
    match answer {
        Ok(_) => true,
        Err(e) => {
            let id = record["id"].as_str().unwrap_or_default();
            let service = record["service"].as_str().unwrap_or_default();
            host.log(
                Level::Warn,
                "observe_submit_failed",
                &[("assessment_id", id), ("service", service), ("error", &e.to_string())],
            );
            false
        }
    }
}

pub(crate) use nthlayer_sdk::py::truthy;

pub(crate) use nthlayer_sdk::py::type_name;

pub(crate) fn output(seq: &Seq, emitted: u32) -> CycleOutput {
    CycleOutput { state: Some(seq.state()), result: None, emitted }
}

#[cfg(test)]
mod batching;

#[cfg(test)]
mod tests {
    use super::*;
    use nthlayer_sdk::testing::FakeHost;
    use nthlayer_sdk::HostError;

    fn input(task: &str) -> CycleInput {
        CycleInput { task: task.into(), state: None, config: json!({}), args: None }
    }

    #[test]
    fn describe_lists_four_tasks() {
        let info = Observe::describe();
        assert_eq!(info.name, "observe");
        assert_eq!(info.needs, vec!["core", "prometheus"]);
        let tasks: Vec<(&str, u32)> = info.tasks.iter().map(|t| (t.name.as_str(), t.interval_seconds)).collect();
        assert_eq!(
            tasks,
            vec![("observe.collect", 60), ("observe.drift", 1800), ("observe.topology", 86400), ("observe.gate", 0)]
        );
    }

    #[test]
    fn unknown_task_is_an_error() {
        let err = Observe::run_cycle(&FakeHost::new(), input("observe.nope")).unwrap_err();
        assert!(err.contains("unknown task"), "{err}");
    }

    #[test]
    fn gate_dispatches_and_keeps_no_state() {
        let host = FakeHost::new();
        let out = Observe::run_cycle(
            &host,
            CycleInput {
                args: Some(json!({"service": "s", "tier": "standard", "commit_sha": null})),
                ..input("observe.gate")
            },
        )
        .unwrap();
        assert_eq!(out.state, None);
        assert_eq!(out.result.unwrap()["exit_code"], 0);
    }

    #[test]
    fn seq_comes_from_state_and_defaults_to_one() {
        assert_eq!(Seq::from_state(None).0, 1);
        assert_eq!(Seq::from_state(Some(&json!({"seq": 42}))).0, 42);
        assert_eq!(Seq::from_state(Some(&json!({"seq": 0}))).0, 1);
        assert_eq!(Seq::from_state(Some(&json!({"seq": "x"}))).0, 1);
        assert_eq!(Seq::from_state(Some(&json!([]))).0, 1);
    }

    #[test]
    fn manifests_down_ends_every_cycle_quietly() {
        let host = FakeHost::new();
        *host.core_error.borrow_mut() = Some(HostError::Unavailable("core down".into()));
        for task in ["observe.collect", "observe.drift", "observe.topology"] {
            let out = Observe::run_cycle(&host, input(task)).unwrap();
            assert_eq!(out.state, Some(json!({"seq": 1})));
            assert_eq!(out.emitted, 0);
        }
        assert!(host.submitted.borrow().is_empty());
        assert!(host.logs.borrow().iter().all(|(l, m)| *l == Level::Warn && m == "observe_manifest_fetch_failed"));
        assert_eq!(host.logs.borrow().len(), 3);
    }

    #[test]
    fn truthiness_follows_python() {
        for v in [json!(null), json!(false), json!(0), json!(0.0), json!(""), json!([]), json!({})] {
            assert!(!truthy(&v), "{v}");
        }
        for v in [json!(true), json!(1), json!("x"), json!([0]), json!({"a": 1})] {
            assert!(truthy(&v), "{v}");
        }
    }
}

nthlayer_sdk::export_module!(Observe);
