//! Emission grants: which record kinds (assessments) and verdict types a module may post,
//! and what the host writes into every record it forwards.
//!
//! Core accepts any `kind` and `type` and stores only the record, so without this a module
//! with the `core` grant could post `portfolio_status` assessments or `triage` verdicts
//! indistinguishable from observe's or respond's. The rule, in the same table as the
//! capabilities (`--grant`, capabilities.rs):
//! - trusted code (capabilities.rs `Trust`) serving under a built-in's name emits exactly
//!   what that built-in emits today ([`BUILTIN`]);
//! - everything else emits nothing until the operator grants it:
//!   `--grant MODULE=core,assessment:burn_rate,verdict:triage` (`assessment:*`, `verdict:*`
//!   grant every kind/type). Emission entries on a `--grant` line replace the trust-based
//!   set; a line with none leaves it.
//!
//! Every forwarded record also gets `emitted_by: {module, version}` (whatever the module put
//! there is replaced), and a `producer` it names (observe's `"producer": "nthlayer-observe"`,
//! respond's `producer.system`) must be `nthlayer-<module>`. docs/SANDBOX.md.

use std::collections::BTreeSet;

use serde_json::{json, Map, Value};

use crate::capability::shared::envelope::RecordKind;

/// What the built-in modules emit, from their sources (modules/*/src: the `kind` of every
/// assessment and the `type` of every verdict they submit).
pub const BUILTIN: &[(&str, &[&str])] = &[
    (
        "observe",
        &[
            "assessment:slo_status",
            "assessment:portfolio_status",
            "assessment:drift_signal",
            "assessment:dependency_graph",
            "assessment:deploy_gate",
        ],
    ),
    (
        "measure",
        &[
            "assessment:judgment_slo_evaluation",
            "assessment:judgment_threshold_evaluation",
            "verdict:quality_breach",
            "verdict:autonomy_change",
        ],
    ),
    ("correlate", &["assessment:correlation_snapshot", "assessment:topology_drift", "assessment:contract_divergence"]),
    (
        "respond",
        &[
            "verdict:triage",
            "verdict:investigation",
            "verdict:communication",
            "verdict:remediation",
            "verdict:approval",
        ],
    ),
    ("learn", &["assessment:calibration_signal", "assessment:retrospective"]),
];

/// One grantable emission: an assessment kind or a verdict type (`*`: any).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Emission {
    pub record: Record,
    pub name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Record {
    Assessment,
    Verdict,
}

impl Record {
    pub fn prefix(self) -> &'static str {
        match self {
            Record::Assessment => "assessment",
            Record::Verdict => "verdict",
        }
    }
}

impl From<RecordKind> for Record {
    fn from(k: RecordKind) -> Self {
        match k {
            RecordKind::Assessment => Record::Assessment,
            RecordKind::Verdict => Record::Verdict,
        }
    }
}

impl Emission {
    /// `assessment:KIND` or `verdict:TYPE`; None for anything else (a capability name).
    pub fn parse(token: &str) -> Option<Result<Emission, String>> {
        let (prefix, name) = token.split_once(':')?;
        let record = match prefix {
            "assessment" => Record::Assessment,
            "verdict" => Record::Verdict,
            _ => return Some(Err(format!("unknown emission {token:?} (assessment:KIND or verdict:TYPE)"))),
        };
        if name.is_empty() || name.len() > crate::caps::NAME_BYTES {
            return Some(Err(format!("{token:?}: the kind must be 1-{} bytes", crate::caps::NAME_BYTES)));
        }
        Some(Ok(Emission { record, name: name.to_string() }))
    }

    pub fn label(&self) -> String {
        format!("{}:{}", self.record.prefix(), self.name)
    }
}

/// A set of emissions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Emits(BTreeSet<Emission>);

impl Emits {
    /// What a built-in of this name emits (empty for any other name).
    pub fn builtin(module: &str) -> Emits {
        let labels = BUILTIN.iter().find(|(m, _)| *m == module).map(|(_, l)| *l).unwrap_or(&[]);
        labels.iter().filter_map(|l| Emission::parse(l)?.ok()).fold(Emits::default(), Emits::with)
    }

    pub fn with(mut self, e: Emission) -> Self {
        self.0.insert(e);
        self
    }

    pub fn allows(&self, record: Record, name: &str) -> bool {
        self.0.iter().any(|e| e.record == record && (e.name == name || e.name == "*"))
    }

    pub fn labels(&self) -> Vec<String> {
        self.0.iter().map(Emission::label).collect()
    }
}

/// The record's own kind (`kind` of an assessment, `type` of a verdict).
pub fn kind_of(record: RecordKind, map: &Map<String, Value>) -> &str {
    let key = match record {
        RecordKind::Assessment => "kind",
        RecordKind::Verdict => "type",
    };
    map.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// The producer a record names, if any: a string `producer` (observe's assessments) or
/// `producer.system` (Verdict v1).
fn producer(map: &Map<String, Value>) -> Option<&str> {
    match map.get("producer")? {
        Value::String(s) => Some(s),
        Value::Object(o) => o.get("system").and_then(Value::as_str),
        _ => None,
    }
}

/// Refuses a producer that is not the module's own (`nthlayer-<module>`: the built-ins'
/// convention, and injective, so no module name can claim another's).
pub fn check_producer(module: &str, map: &Map<String, Value>) -> Result<(), String> {
    let own = format!("nthlayer-{module}");
    match producer(map) {
        Some(p) if p != own => Err(format!(
            "record names producer {:?}; a record from module {module} may only name {own:?}",
            crate::caps::shown(p)
        )),
        _ => Ok(()),
    }
}

/// Writes the producing module and version into the record (top-level `emitted_by`: core
/// keeps every top-level key of a record, for assessments and verdicts alike, and none of
/// core's or the reference's shapes use this one).
pub fn stamp(map: &mut Map<String, Value>, module: &str, version: &str) {
    map.insert("emitted_by".into(), json!({"module": module, "version": version}));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_emit_their_kinds_and_nothing_else() {
        let observe = Emits::builtin("observe");
        assert!(observe.allows(Record::Assessment, "portfolio_status"));
        assert!(!observe.allows(Record::Verdict, "portfolio_status"));
        assert!(!observe.allows(Record::Assessment, "correlation_snapshot"));
        assert!(Emits::builtin("respond").allows(Record::Verdict, "triage"));
        assert_eq!(Emits::builtin("stranger"), Emits::default());
        let any = Emits::default().with(Emission::parse("verdict:*").unwrap().unwrap());
        assert!(any.allows(Record::Verdict, "x") && !any.allows(Record::Assessment, "x"));
    }

    #[test]
    fn tokens_parse_or_say_what_is_wrong() {
        assert_eq!(Emission::parse("core"), None);
        assert_eq!(Emission::parse("assessment:burn_rate").unwrap().unwrap().label(), "assessment:burn_rate");
        assert!(Emission::parse("record:x").unwrap().unwrap_err().contains("assessment:KIND"));
        assert!(Emission::parse("verdict:").unwrap().is_err());
    }

    #[test]
    fn producers_must_be_the_modules_own_and_the_stamp_wins() {
        let rec = |v: Value| v.as_object().unwrap().clone();
        assert!(check_producer("observe", &rec(json!({"producer": "nthlayer-observe"}))).is_ok());
        assert!(check_producer("mine", &rec(json!({}))).is_ok());
        let e = check_producer("mine", &rec(json!({"producer": {"system": "nthlayer-respond"}}))).unwrap_err();
        assert!(e.contains("\"nthlayer-respond\"") && e.contains("\"nthlayer-mine\""), "{e}");
        assert!(check_producer("nthlayer-respond", &rec(json!({"producer": "nthlayer-respond"}))).is_err());
        let mut m = rec(json!({"emitted_by": {"module": "observe"}}));
        stamp(&mut m, "mine", "1.0.0");
        assert_eq!(m["emitted_by"], json!({"module": "mine", "version": "1.0.0"}));
    }
}
