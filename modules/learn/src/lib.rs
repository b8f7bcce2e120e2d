//! learn: resolves what became of each verdict (`learn.outcome`, five resolution paths, one
//! `calibration_signal` per real resolution) and writes a `retrospective` for every
//! correlation snapshot (`learn.retrospective`). Ported from nthlayer-workers 3.0.3 with its
//! missing paths added and its defects fixed (docs/PARITY.md, "learn").

use nthlayer_sdk::{CycleInput, CycleOutput, Emission, Host, Module, ModuleInfo, Task};
use serde_json::Value;

mod config;
mod downstream;
mod outcome;
mod paths;
mod retrospective;
pub mod sampling;
mod service;
mod signal;
mod snapshots;
mod sweep;

pub use config::Config;

pub struct Learn;

impl Module for Learn {
    fn describe() -> ModuleInfo {
        ModuleInfo {
            name: "learn".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            tasks: vec![
                Task::new("learn.outcome", 60, "resolve pending verdicts; calibration_signal per resolution"),
                Task::new("learn.retrospective", 30, "retrospective per new correlation_snapshot"),
            ],
            needs: vec!["core".into()],
            // What this module submits; the host forwards nothing else (emissions.rs BUILTIN).
            emits: Emission::assessments(&["calibration_signal", "retrospective"]),
        }
    }

    fn run_cycle(host: &dyn Host, input: CycleInput) -> Result<CycleOutput, String> {
        let cfg = Config::from_input(&input);
        match input.task.as_str() {
            "learn.outcome" => Ok(outcome::run(host, &cfg, input.state.as_ref())),
            "learn.retrospective" => Ok(retrospective::run(host, &cfg, input.state.as_ref())),
            other => Err(format!("unknown task {other:?} for module learn")),
        }
    }
}

/// A non-blank string field, the way every rule here reads ids, services and timestamps.
pub(crate) fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str).filter(|s| !s.trim().is_empty())
}

/// FNV-1a 64: a stable hash for record ids and sampling that must give the same answer on
/// every run, every restart and every platform (std's hasher is randomly seeded).
pub(crate) fn fnv1a64(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h ^= 0xff;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        for b in p.bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// Eight hex digits derived from `key`: the reference's `uuid4().hex[:8]` suffix, but stable,
/// so re-posting the same record after a restart is a 409 in core instead of a duplicate.
pub(crate) fn stable_hex8(key: &str) -> String {
    format!("{:08x}", fnv1a64(&[key]) as u32)
}

/// core's "already exists" answer, which every writer here treats as "already done".
pub(crate) fn is_conflict(e: &nthlayer_sdk::HostError) -> bool {
    matches!(e, nthlayer_sdk::HostError::Rejected { status: 409, .. })
}

#[cfg(test)]
mod tests {
    use super::*;
    use nthlayer_sdk::testing::FakeHost;
    use serde_json::json;

    #[test]
    fn describe_lists_both_tasks() {
        let info = Learn::describe();
        assert_eq!(info.name, "learn");
        let tasks: Vec<(&str, u32)> = info.tasks.iter().map(|t| (t.name.as_str(), t.interval_seconds)).collect();
        assert_eq!(tasks, vec![("learn.outcome", 60), ("learn.retrospective", 30)]);
        assert_eq!(info.needs, vec!["core"]);
    }

    #[test]
    fn unknown_task_is_an_error() {
        let input = CycleInput { task: "learn.nope".into(), state: None, config: json!({}), args: None };
        assert!(Learn::run_cycle(&FakeHost::new(), input).unwrap_err().contains("unknown task"));
    }

    #[test]
    fn stable_hex8_is_stable_and_distinct() {
        assert_eq!(stable_hex8("a"), stable_hex8("a"));
        assert_ne!(stable_hex8("a"), stable_hex8("b"));
        assert_eq!(stable_hex8("a").len(), 8);
        assert_ne!(fnv1a64(&["ab", "c"]), fnv1a64(&["a", "bc"]));
    }
}

nthlayer_sdk::export_module!(Learn);
