//! Emission grants: which record kinds (assessments) and verdict types a module may post,
//! and what the host writes into every record it forwards.
//!
//! Core accepts any `kind` and `type` and stores only the record, so without this a module
//! with the `core` grant could post `portfolio_status` assessments or `triage` verdicts
//! indistinguishable from observe's or respond's. The rule, in the same table as the
//! capabilities (`--grant`, grants.rs):
//! - a module built against contract 0.3.0 or later declares what it emits (`describe()`
//!   `emits`); it may emit what is both declared and granted ([`EmitRights`]), so it can never
//!   emit what it did not announce, and a declaration never grants anything;
//! - granted is the `--grant` line's emissions (`--grant MODULE=core,assessment:burn_rate,
//!   verdict:triage`; `assessment:*`, `verdict:*` grant every kind/type), else, for trusted
//!   code (policy/grants.rs `Trust`), what it declares — as with `needs` — else nothing;
//! - a 0.1.0/0.2.0 module declares nothing and may emit what is granted; trusted code of a
//!   built-in's name is granted what that built-in emits ([`BUILTIN`]).
//!
//! Emission entries on a `--grant` line replace the trust-based set; a line with none
//! leaves it.
//!
//! Every forwarded record also gets `emitted_by: {module, version}` (whatever the module put
//! there is replaced), and a `producer` it names (observe's `"producer": "nthlayer-observe"`,
//! respond's `producer.system`) must be `nthlayer-<module>`. docs/SANDBOX.md.

use std::collections::BTreeSet;

use serde_json::{json, Map, Value};

use crate::backend::envelope::RecordKind;

/// What the built-in modules emit, from their sources (modules/*/src: the `kind` of every
/// assessment and the `type` of every verdict they submit). Since 0.3.0 each built-in
/// declares exactly this list itself (host/tests/contract.rs holds the two equal). The table
/// stays for trusted code serving under a built-in's name that was built against 0.2.0 or
/// 0.1.0 (e.g. an older observe.wasm under `--trusted-dir`): such code cannot declare, and
/// without the table it would lose the kinds it emitted on the host it was built for.
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

/// Assessment or verdict (the host's one spelling, backend/envelope.rs).
pub use crate::backend::envelope::RecordKind as Record;

impl Emission {
    /// `assessment:KIND` or `verdict:TYPE`; None for anything else (a capability name).
    pub fn parse(token: &str) -> Option<Result<Emission, String>> {
        let (prefix, name) = token.split_once(':')?;
        let record = match prefix {
            "assessment" => Record::Assessment,
            "verdict" => Record::Verdict,
            _ => return Some(Err(format!("unknown emission {token:?} (assessment:KIND or verdict:TYPE)"))),
        };
        if name.is_empty() || name.len() > crate::policy::caps::NAME_BYTES {
            return Some(Err(format!("{token:?}: the kind must be 1-{} bytes", crate::policy::caps::NAME_BYTES)));
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

/// Listed as labels (`["assessment:burn_rate"]`) in `check` and heartbeats.
impl serde::Serialize for Emits {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.labels())
    }
}

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

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The entries of `declared` this set allows (a granted `*` matches every declared kind
    /// of its record; declarations hold no wildcard).
    pub fn granted_of(&self, declared: &Emits) -> Emits {
        Emits(declared.0.iter().filter(|e| self.allows(e.record, &e.name)).cloned().collect())
    }

    /// The entries of `self` that `other` does not allow.
    pub fn not_allowed_by(&self, other: &Emits) -> Emits {
        Emits(self.0.iter().filter(|e| !other.allows(e.record, &e.name)).cloned().collect())
    }
}

/// A 0.3.0 module's `describe()` `emits`, checked: at most [`crate::policy::caps::EMITS`] entries,
/// each kind 1-[`crate::policy::caps::NAME_BYTES`] bytes that a `--grant` line can name (no `*`, `,`,
/// whitespace or control characters), none twice. The error becomes an `invalid` load error.
pub fn declared(list: &[crate::bindings::Emission]) -> Result<Emits, String> {
    use crate::bindings::RecordKind as Wit;
    crate::policy::caps::count("emits", list.len(), crate::policy::caps::EMITS)?;
    let mut out = Emits::default();
    for e in list {
        let record = match e.record {
            Wit::Assessment => Record::Assessment,
            Wit::Verdict => Record::Verdict,
        };
        let label = format!("{}:{}", record.prefix(), crate::policy::caps::shown(&e.kind));
        crate::policy::caps::bytes(
            &format!("emits entry {label:?}: the kind"),
            e.kind.len(),
            crate::policy::caps::NAME_BYTES,
        )?;
        if e.kind.is_empty() || e.kind.chars().any(|c| c == '*' || c == ',' || c.is_whitespace() || c.is_control()) {
            return Err(format!(
                "emits entry {label:?}: a kind is 1-{} bytes without '*', ',', whitespace or control characters (declarations name exact kinds; no wildcard)",
                crate::policy::caps::NAME_BYTES
            ));
        }
        let em = Emission { record, name: e.kind.clone() };
        if !out.0.insert(em) {
            return Err(format!("emits entry {label:?} declared twice"));
        }
    }
    Ok(out)
}

/// What one module version may emit, and why: the host's check on every submitted record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EmitRights {
    /// From the operator (`--grant`) or the code's trust.
    pub granted: Emits,
    /// The module's own declaration (contract 0.3.0 on); None: it cannot declare.
    pub declared: Option<Emits>,
    /// What passes: `granted` ∩ `declared`, or `granted` for a module that cannot declare.
    pub effective: Emits,
}

impl EmitRights {
    pub fn new(granted: Emits, declared: Option<Emits>) -> Self {
        let effective = match &declared {
            Some(d) => granted.granted_of(d),
            None => granted.clone(),
        };
        EmitRights { granted, declared, effective }
    }

    pub fn allows(&self, record: Record, name: &str) -> bool {
        self.effective.allows(record, name)
    }

    /// Effective emissions, as labels.
    pub fn labels(&self) -> Vec<String> {
        self.effective.labels()
    }

    /// Declared but not granted: what the operator may want to add.
    pub fn missing(&self) -> Emits {
        self.declared.as_ref().map(|d| d.not_allowed_by(&self.granted)).unwrap_or_default()
    }

    /// Ok when the record may pass; else the `denied` text: a record the module did not
    /// declare is the module's fault (no grant fixes it), one it declared but was not granted
    /// is the operator's, and the text names the whole `--grant` line (emissions on a line
    /// replace the set, so it keeps the capabilities `caps` and emissions granted already).
    pub fn check(&self, module: &str, caps: &[&str], record: Record, name: &str) -> Result<(), String> {
        if self.allows(record, name) {
            return Ok(());
        }
        let (what, shown) = (record.prefix(), crate::policy::caps::shown(name));
        if let Some(d) = self.declared.as_ref().filter(|d| !d.allows(record, name)) {
            return Err(format!(
                "module {module} may not emit {what} {shown:?}: it did not declare it in describe() emits (declares: {}); a module emits only what it declares, whatever it is granted",
                match d.labels() {
                    l if l.is_empty() => "nothing".to_string(),
                    l => l.join(","),
                }
            ));
        }
        let mut line: Vec<String> = caps.iter().map(|c| c.to_string()).collect();
        line.extend(self.granted.labels());
        line.push(format!("{what}:{shown}"));
        Err(format!(
            "module {module} may not emit {what} {shown:?}; start the host with --grant {module}={} (emits now: {})",
            line.join(","),
            match self.labels() {
                l if l.is_empty() => "nothing".to_string(),
                l => l.join(","),
            }
        ))
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
            crate::policy::caps::shown(p)
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

    fn wit(record: crate::bindings::RecordKind, kind: &str) -> crate::bindings::Emission {
        crate::bindings::Emission { record, kind: kind.into() }
    }

    #[test]
    fn declarations_are_bounded_exact_and_unique() {
        use crate::bindings::RecordKind::{Assessment, Verdict};
        let d = declared(&[wit(Assessment, "burn_rate"), wit(Verdict, "triage")]).unwrap();
        assert_eq!(d.labels(), ["assessment:burn_rate", "verdict:triage"]);
        let many: Vec<_> = (0..65).map(|i| wit(Assessment, &format!("k{i}"))).collect();
        assert_eq!(declared(&many).unwrap_err(), "emits: 65 entries exceed the cap of 64");
        assert!(declared(&many[..64]).is_ok());
        let long = declared(&[wit(Verdict, &"v".repeat(65))]).unwrap_err();
        assert!(long.contains("of 65 bytes exceeds the cap of 64 bytes"), "{long}");
        for bad in ["*", "", "a,b", "a b", "x\n"] {
            let e = declared(&[wit(Assessment, bad)]).unwrap_err();
            assert!(e.contains("no wildcard"), "{bad:?}: {e}");
        }
        let twice = declared(&[wit(Assessment, "x"), wit(Assessment, "x")]).unwrap_err();
        assert!(twice.contains("\"assessment:x\" declared twice"), "{twice}");
        // The same kind as an assessment and as a verdict is two emissions.
        assert!(declared(&[wit(Assessment, "x"), wit(Verdict, "x")]).is_ok());
    }

    fn set(labels: &[&str]) -> Emits {
        labels.iter().map(|l| Emission::parse(l).unwrap().unwrap()).fold(Emits::default(), Emits::with)
    }

    #[test]
    fn undeclared_records_are_denied_even_when_granted_and_the_text_says_whose_fix_it_is() {
        let r = EmitRights::new(set(&["assessment:x", "assessment:y"]), Some(set(&["assessment:x", "verdict:v"])));
        assert!(r.check("m", &["core"], Record::Assessment, "x").is_ok());
        let y = r.check("m", &["core"], Record::Assessment, "y").unwrap_err();
        assert!(y.contains("may not emit assessment \"y\": it did not declare it in describe() emits (declares: assessment:x,verdict:v);"), "{y}");
        assert!(y.contains("(declares: assessment:x,verdict:v)") && !y.contains("--grant"), "{y}");
        // Declared, not granted: the operator's fix, with the whole line.
        let v = r.check("m", &["core"], Record::Verdict, "v").unwrap_err();
        assert!(v.contains("--grant m=core,assessment:x,assessment:y,verdict:v (emits now: assessment:x)"), "{v}");
        assert_eq!(r.missing().labels(), ["verdict:v"]);
        // A module that cannot declare (0.1.0/0.2.0) emits what is granted, wildcards too.
        let old = EmitRights::new(set(&["verdict:*"]), None);
        assert!(old.check("m", &[], Record::Verdict, "anything").is_ok());
        assert!(old.missing().is_empty());
        let none = EmitRights::new(Emits::default(), None).check("m", &[], Record::Assessment, "k").unwrap_err();
        assert!(none.contains("--grant m=assessment:k (emits now: nothing)"), "{none}");
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
