//! A task's wake rules as the host keeps them: converted from the contract's `wake-on`,
//! bounded (matching runs on every record core takes), and matched against a record.

use serde_json::{Map, Value};

use crate::backend::envelope::RecordKind as HostKind;
use crate::bindings::{MatchOp, RecordKind, WakeOn};

/// Bounds on what `describe()` may ask for: matching runs on every submit.
const MAX_RULES: usize = 16;
const MAX_TESTS: usize = 8;
const MAX_VALUES: usize = 64;

/// One `wake-on` of a task, as the host keeps it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct WakeRule {
    pub record: HostKind,
    pub kind: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tests: Vec<FieldTest>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FieldTest {
    pub path: String,
    /// true: the field must be none of `values` (a missing field passes).
    pub none_of: bool,
    pub values: Vec<String>,
}

impl From<&WakeOn> for WakeRule {
    fn from(w: &WakeOn) -> Self {
        WakeRule {
            record: match w.record {
                RecordKind::Assessment => HostKind::Assessment,
                RecordKind::Verdict => HostKind::Verdict,
            },
            kind: w.kind.clone(),
            tests: w
                .where_
                .iter()
                .map(|t| FieldTest { path: t.path.clone(), none_of: t.op == MatchOp::NoneOf, values: t.values.clone() })
                .collect(),
        }
    }
}

/// Checks a task's rules as `describe()` returned them; `Err` says which rule is wrong.
pub fn validate(task: &str, rules: &[WakeRule]) -> Result<(), String> {
    if rules.len() > MAX_RULES {
        return Err(format!("task {task:?} declares {} wake rules (at most {MAX_RULES})", rules.len()));
    }
    for r in rules {
        if r.kind.is_empty() {
            return Err(format!("task {task:?}: a wake rule needs a non-empty kind"));
        }
        if r.tests.len() > MAX_TESTS {
            return Err(format!("task {task:?}: wake rule {:?} has more than {MAX_TESTS} field tests", r.kind));
        }
        for t in &r.tests {
            if t.path.is_empty() || t.path.split('.').any(str::is_empty) {
                return Err(format!("task {task:?}: wake rule {:?} has an invalid field path {:?}", r.kind, t.path));
            }
            if t.values.len() > MAX_VALUES {
                return Err(format!("task {task:?}: wake rule {:?} tests more than {MAX_VALUES} values", r.kind));
            }
        }
    }
    Ok(())
}

fn field<'a>(record: &'a Map<String, Value>, path: &str) -> Option<&'a str> {
    let mut parts = path.split('.');
    let mut v = record.get(parts.next()?)?;
    for p in parts {
        v = v.as_object()?.get(p)?;
    }
    v.as_str()
}

impl WakeRule {
    pub fn matches(&self, record: HostKind, map: &Map<String, Value>) -> bool {
        if record != self.record || map.get(record.subtype_key()).and_then(Value::as_str) != Some(&self.kind) {
            return false;
        }
        self.tests.iter().all(|t| {
            let hit = field(map, &t.path).is_some_and(|v| t.values.iter().any(|x| x == v));
            hit != t.none_of
        })
    }
}
