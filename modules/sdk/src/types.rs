//! Plain-Rust mirrors of the WIT records, with JSON payloads already parsed.

use serde_json::Value;

use crate::Host;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Task {
    pub name: String,
    /// 0 = on demand only (run by the CLI, never by the scheduler).
    pub interval_seconds: u32,
    pub summary: String,
    /// Records that wake the task between intervals; add them with [`Task::woken_by`].
    pub wake: Vec<WakeOn>,
}

impl Task {
    pub fn new(name: &str, interval_seconds: u32, summary: &str) -> Self {
        Task { name: name.into(), interval_seconds, summary: summary.into(), wake: Vec::new() }
    }

    /// Also run this task as soon as any module submits a record matching `on` (the host
    /// coalesces wakes and keeps at least its wake floor, 1 s, between starts; the interval
    /// stays the fallback). A task is never woken by its own records. E.g.
    /// `Task::new("correlate", 300, "…").woken_by(WakeOn::verdict("quality_breach"))`.
    pub fn woken_by(mut self, on: WakeOn) -> Self {
        self.wake.push(on);
        self
    }
}

/// Which of the two record kinds a [`WakeOn`] watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    Assessment,
    Verdict,
}

/// A record that wakes a task: its kind, subtype, and optional tests on its fields.
#[derive(Debug, Clone, PartialEq)]
pub struct WakeOn {
    pub record: RecordKind,
    /// The assessment's `kind` or the verdict's `type`.
    pub kind: String,
    pub tests: Vec<FieldTest>,
}

/// A test on one string field of a record, by dotted path (e.g. "data.status").
#[derive(Debug, Clone, PartialEq)]
pub struct FieldTest {
    pub path: String,
    /// true: the field must be none of `values` (a missing field passes); false: one of
    /// them (a missing field fails).
    pub none_of: bool,
    pub values: Vec<String>,
}

impl WakeOn {
    /// Any verdict of `verdict_type`, e.g. "quality_breach".
    pub fn verdict(verdict_type: &str) -> Self {
        WakeOn { record: RecordKind::Verdict, kind: verdict_type.into(), tests: Vec::new() }
    }

    /// Any assessment of `kind`, e.g. "slo_status".
    pub fn assessment(kind: &str) -> Self {
        WakeOn { record: RecordKind::Assessment, kind: kind.into(), tests: Vec::new() }
    }

    /// Only records whose `path` is one of `values`.
    pub fn where_any_of(mut self, path: &str, values: &[&str]) -> Self {
        self.tests.push(FieldTest {
            path: path.into(),
            none_of: false,
            values: values.iter().map(|v| v.to_string()).collect(),
        });
        self
    }

    /// Only records whose `path` is none of `values`, e.g.
    /// `WakeOn::assessment("slo_status").where_none_of("data.status", &["HEALTHY"])`.
    pub fn where_none_of(mut self, path: &str, values: &[&str]) -> Self {
        self.tests.push(FieldTest {
            path: path.into(),
            none_of: true,
            values: values.iter().map(|v| v.to_string()).collect(),
        });
        self
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ModuleInfo {
    pub name: String,
    pub version: String,
    pub tasks: Vec<Task>,
    pub needs: Vec<String>,
    /// Every record kind `run_cycle` submits (contract 0.3.0). The host forwards a record
    /// only if its kind is declared here *and* granted (trusted code is granted what it
    /// declares; anything else needs `--grant NAME=assessment:KIND,…`); one not declared is
    /// refused with `HostError::Denied`. A required field on purpose: a module rebuilt with
    /// this SDK must say what it emits, or every record it posts is refused. E.g.
    /// `emits: vec![Emission::assessment("burn_rate")]`.
    pub emits: Vec<Emission>,
}

/// One record kind a module submits: an assessment `kind` or a verdict `type` (exact, no
/// wildcard).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Emission {
    pub record: RecordKind,
    pub kind: String,
}

impl Emission {
    /// Assessments of `kind`, e.g. `Emission::assessment("slo_status")`.
    pub fn assessment(kind: &str) -> Self {
        Emission { record: RecordKind::Assessment, kind: kind.into() }
    }

    /// Verdicts of `verdict_type`, e.g. `Emission::verdict("triage")`.
    pub fn verdict(verdict_type: &str) -> Self {
        Emission { record: RecordKind::Verdict, kind: verdict_type.into() }
    }

    /// One per kind: `Emission::assessments(&["slo_status", "drift_signal"])`.
    pub fn assessments(kinds: &[&str]) -> Vec<Self> {
        kinds.iter().map(|k| Emission::assessment(k)).collect()
    }

    /// One per type: `Emission::verdicts(&["triage", "approval"])`.
    pub fn verdicts(types: &[&str]) -> Vec<Self> {
        types.iter().map(|t| Emission::verdict(t)).collect()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct CycleInput {
    pub task: String,
    pub state: Option<Value>,
    pub config: Value,
    pub args: Option<Value>,
}

impl CycleInput {
    /// A config value as u64, e.g. `config_u64("expiry_threshold_days")`.
    pub fn config_u64(&self, key: &str) -> Option<u64> {
        self.config.get(key).and_then(Value::as_u64)
    }
    pub fn config_str(&self, key: &str) -> Option<&str> {
        self.config.get(key).and_then(Value::as_str)
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct CycleOutput {
    /// None keeps the previous state.
    pub state: Option<Value>,
    pub result: Option<Value>,
    pub emitted: u32,
}

/// What a module implements. Both functions are called in a fresh instance every time, so
/// nothing survives between calls except what `run_cycle` returns as state.
pub trait Module {
    fn describe() -> ModuleInfo;
    fn run_cycle(host: &dyn Host, input: CycleInput) -> Result<CycleOutput, String>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emissions_name_their_record_and_kind() {
        assert_eq!(Emission::assessment("x"), Emission { record: RecordKind::Assessment, kind: "x".into() });
        assert_eq!(Emission::verdicts(&["a", "b"]), vec![Emission::verdict("a"), Emission::verdict("b")]);
        assert_eq!(Emission::assessments(&["a"])[0].record, RecordKind::Assessment);
    }

    #[test]
    fn task_new_stays_interval_only_and_woken_by_adds_rules() {
        assert!(Task::new("m", 60, "s").wake.is_empty());
        let t = Task::new("m", 60, "s")
            .woken_by(WakeOn::verdict("quality_breach"))
            .woken_by(WakeOn::assessment("slo_status").where_none_of("data.status", &["HEALTHY"]));
        assert_eq!(t.wake.len(), 2);
        assert_eq!(t.wake[0], WakeOn { record: RecordKind::Verdict, kind: "quality_breach".into(), tests: vec![] });
        let slo = &t.wake[1];
        assert_eq!((slo.record, slo.kind.as_str()), (RecordKind::Assessment, "slo_status"));
        assert_eq!(
            slo.tests,
            vec![FieldTest { path: "data.status".into(), none_of: true, values: vec!["HEALTHY".into()] }]
        );
    }
}
