//! The CloudEvents 1.0 envelope exactly as nthlayer-workers writes it (nthlayer-common
//! `wrap_verdict` / `wrap_assessment`). Core keeps only `data`, but the type, source and
//! subject are what downstream CloudEvents consumers route on, so they must match.

use serde_json::{json, Map, Value};

/// Assessment kinds with their own CloudEvents type; anything else becomes `unknown`.
pub const ASSESSMENT_KINDS: &[&str] = &[
    "slo_status",
    "judgment_slo_evaluation",
    "judgment_threshold_evaluation",
    "burn_rate",
    "drift_signal",
    "portfolio_status",
    "deploy_gate",
    "dependency_graph",
    "correlation_snapshot",
    "topology_drift",
    "contract_divergence",
    "retrospective",
    "calibration_signal",
];

/// Verdict types with their own CloudEvents type; anything else becomes `unknown`.
pub const VERDICT_TYPES: &[&str] = &[
    "action_request",
    "approval",
    "capability",
    "denial",
    "execution",
    "operator_note",
    "autonomy_change",
    "quality_breach",
    "outcome_resolution",
    "triage",
    "investigation",
    "communication",
    "remediation",
];

/// Assessment or verdict: the one spelling the host uses, from the import's check to the
/// emission rights (policy/emissions.rs), the wake rules (wake/rules.rs) and the envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordKind {
    Assessment,
    Verdict,
}

impl RecordKind {
    /// The key that names the record's subtype (`kind` / `type`).
    pub fn subtype_key(self) -> &'static str {
        match self {
            RecordKind::Assessment => "kind",
            RecordKind::Verdict => "type",
        }
    }
    /// `assessment` / `verdict`: the CloudEvents category and the prefix of an emission.
    pub fn prefix(self) -> &'static str {
        match self {
            RecordKind::Assessment => "assessment",
            RecordKind::Verdict => "verdict",
        }
    }
    fn known(self) -> &'static [&'static str] {
        match self {
            RecordKind::Assessment => ASSESSMENT_KINDS,
            RecordKind::Verdict => VERDICT_TYPES,
        }
    }
}

/// A record a module emitted, as the host carries it from the guest's call to core: its
/// kind, the payload (stamped with the host's `emitted_by`), the CloudEvents source
/// component and its own `id` (what the module was told, what core stores and dedups on).
/// The one record type: the core room holds it, the outbox commits it (a spool row is its
/// stored form, read back by the sender), and [`Emitted::envelope`] wraps it for core.
///
/// The payload is kept as its JSON text, not as a parsed map: a cycle's records are held
/// until it commits (up to `max_records` of them), and parsed JSON takes several times its
/// text (a `Value` per node, a `String` per key, the map's index). The text is what the
/// spool writes, so the commit moves it instead of serializing a copy, and the held size
/// the cap counts ([`Emitted::held_bytes`]) is the size really held. It is parsed again
/// only one record at a time, to wrap it for core and to match wake rules on delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct Emitted {
    pub kind: RecordKind,
    /// CloudEvents source component (the module or `<module>.<sub>`).
    pub component: String,
    /// The record as compact JSON text (an object).
    body: String,
    pub id: String,
}

impl Emitted {
    /// The record's id is its own `id` field (empty if it has none: core then answers 422).
    pub fn new(kind: RecordKind, component: String, record: Map<String, Value>) -> Self {
        let id = record.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
        let mut body = Value::Object(record).to_string();
        body.shrink_to_fit();
        Emitted { kind, component, body, id }
    }

    /// A record already in its text form (a spool row read back); `body` must be a JSON
    /// object, which [`Emitted::record`] checks when the record is used.
    pub fn from_text(kind: RecordKind, component: String, body: String, id: String) -> Self {
        Emitted { kind, component, body, id }
    }

    /// The record's JSON text, as held and spooled.
    pub fn text(&self) -> &str {
        &self.body
    }

    /// Moves the text out (the commit's spool row).
    pub fn into_text(self) -> String {
        self.body
    }

    /// The record parsed; `Err` names what is wrong with the text.
    pub fn record(&self) -> Result<Map<String, Value>, String> {
        serde_json::from_str(&self.body).map_err(|e| format!("record {:?} is not a JSON object: {e}", self.id))
    }

    /// What holding this record costs the host: the struct and its three buffers.
    pub fn held_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.body.capacity() + self.component.capacity() + self.id.capacity()
    }

    /// The CloudEvents envelope POSTed to /assessments or /verdicts.
    pub fn envelope(&self, deployment_id: &str) -> Result<Value, String> {
        Ok(wrap_owned(self.kind, self.record()?, &self.component, deployment_id))
    }

    /// The record's subtype (`kind` / `type`, as the envelope reads it) and service, each
    /// "" when absent or not a string, read without building the record's map.
    pub fn labels(&self) -> (String, String) {
        bytes::labels(self)
    }

    /// The envelope as the bytes POSTed — the same JSON as [`Emitted::envelope`] written, with
    /// the record's own text as `data` — and the record's [`Emitted::labels`], from one read
    /// of the text. Delivery posts thousands of records a cycle, and parsing each into a map
    /// only to write it out again was most of the host's CPU per record; only the few fields
    /// the envelope names are read here (envelope_bytes.rs), and the sender logs and wakes
    /// with the labels that read gave.
    pub fn envelope_bytes(&self, deployment_id: &str) -> Result<(Vec<u8>, (String, String)), String> {
        bytes::write(self, deployment_id)
    }
}

/// Wraps `record` (which must be a JSON object with an `id`) for POST /assessments or
/// /verdicts. `created_at` defaults to now, as in the reference.
pub fn wrap(kind: RecordKind, record: &Map<String, Value>, component: &str, deployment_id: &str) -> Value {
    wrap_owned(kind, record.clone(), component, deployment_id)
}

/// As [`wrap`], taking the record (no copy of it into `data`).
pub fn wrap_owned(kind: RecordKind, record: Map<String, Value>, component: &str, deployment_id: &str) -> Value {
    let time = record.get("created_at").cloned().unwrap_or_else(|| Value::String(now_iso()));
    let subject = subject(record.get("service")).map(Value::String);
    let mut env = json!({
        "specversion": "1.0",
        "type": ce_type(kind, record.get(kind.subtype_key())),
        "source": source(component, deployment_id),
        "id": record.get("id").cloned().unwrap_or(Value::Null),
        "time": time,
        "datacontenttype": "application/json",
    });
    env["data"] = Value::Object(record);
    if let Some(subject) = subject {
        env["subject"] = subject;
    }
    env
}

/// `io.nthlayer.<assessment|verdict>.<subtype>.v1`; a subtype that is not a known string is `unknown`.
fn ce_type(kind: RecordKind, subtype: Option<&Value>) -> String {
    let subtype = subtype.and_then(Value::as_str).filter(|s| kind.known().contains(s)).unwrap_or("unknown");
    format!("io.nthlayer.{}.{}.v1", kind.prefix(), subtype)
}

/// `urn:nthlayer:<component>:<deployment>`.
fn source(component: &str, deployment_id: &str) -> String {
    format!("urn:nthlayer:{component}:{deployment_id}")
}

/// `component:default/<service>`. Python truthiness: only a non-empty string (or other
/// truthy value) gets a subject; a service that is not a string is named by its JSON.
fn subject(service: Option<&Value>) -> Option<String> {
    service.filter(|s| truthy(s)).map(|service| {
        let service = service.as_str().map(str::to_string).unwrap_or_else(|| service.to_string());
        format!("component:default/{service}")
    })
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::String(s) => !s.is_empty(),
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// `YYYY-MM-DDTHH:MM:SS.ffffff+00:00`.
pub fn now_iso() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, false)
}

#[path = "envelope_bytes.rs"]
mod bytes;

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn assessment_envelope_matches_reference() {
        let rec = obj(
            json!({"id":"asm-1","created_at":"2026-11-22T15:08:47.615105+00:00","kind":"slo_status","service":"checkout","data":{}}),
        );
        let env = wrap(RecordKind::Assessment, &rec, "observe", "default");
        let keys: Vec<&str> = env.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["specversion", "type", "source", "id", "time", "datacontenttype", "data", "subject"]);
        assert_eq!(env["type"], "io.nthlayer.assessment.slo_status.v1");
        assert_eq!(env["source"], "urn:nthlayer:observe:default");
        assert_eq!(env["time"], "2026-11-22T15:08:47.615105+00:00");
        assert_eq!(env["subject"], "component:default/checkout");
        assert_eq!(env["data"], Value::Object(rec));
    }

    #[test]
    fn unknown_types_and_empty_service() {
        let rec = obj(json!({"id":"v1","type":"made_up","service":""}));
        let env = wrap(RecordKind::Verdict, &rec, "respond", "prod");
        assert_eq!(env["type"], "io.nthlayer.verdict.unknown.v1");
        assert_eq!(env["source"], "urn:nthlayer:respond:prod");
        assert!(env.get("subject").is_none());
        assert!(env["time"].as_str().unwrap().ends_with("+00:00"));
    }

    #[test]
    fn held_as_text_and_wrapped_the_same() {
        let rec = obj(json!({"id":"asm-1","created_at":"t","kind":"slo_status","service":"s","data":{"n":1}}));
        let e = Emitted::new(RecordKind::Assessment, "observe".into(), rec.clone());
        assert_eq!(e.id, "asm-1");
        assert_eq!(e.record().unwrap(), rec);
        assert_eq!(e.envelope("d").unwrap(), wrap(RecordKind::Assessment, &rec, "observe", "d"));
        let back = Emitted::from_text(RecordKind::Assessment, "observe".into(), e.text().to_string(), e.id.clone());
        assert_eq!(back, e);
        // Held at its text's size plus the struct, not at a parsed map's.
        assert!(e.held_bytes() <= std::mem::size_of::<Emitted>() + e.text().len() + "observe".len() + 5 + 16);
        let bad = Emitted::from_text(RecordKind::Verdict, "m".into(), "[1]".into(), "v-9".into());
        assert!(bad.envelope("d").unwrap_err().contains("v-9"));
    }
}
