//! The fixture files of docs/modules.md ("Fixture format"), as types: what a recording
//! writes and a replay reads. One file per WIT interface so a miss can name the file.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::bindings::{HostError, Rejection};

/// The interfaces that have fixture files, in the order `run-once` reports them: every
/// capability of the table (`log` is not recorded).
pub const INTERFACES: &[&str] = crate::policy::table::Capability::NAMES;
pub const CYCLE_FILE: &str = "cycle.json";

/// The sandbox's clock when a fixture pins none: 2026-01-01T00:00:00Z.
pub const DEFAULT_CLOCK_NS: u64 = 1_767_225_600_000_000_000;

pub fn interface_file(interface: &str) -> String {
    format!("{interface}.json")
}

/// `cycle.json`: where the cycle starts, and the clock and randomness it saw.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CycleFile {
    #[serde(default)]
    pub task: Option<String>,
    #[serde(default)]
    pub state: Option<Value>,
    #[serde(default)]
    pub args: Option<Value>,
    #[serde(default)]
    pub clock_ns: Vec<u64>,
    /// Hex of the bytes `wasi:random` handed out, in order.
    #[serde(default)]
    pub random: String,
    /// `wasi:random/insecure-seed`, a u128 as a decimal string (JSON numbers stop at 2^64).
    #[serde(default)]
    pub insecure_seed: Option<String>,
}

/// One answered call in an interface file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub call: String,
    #[serde(default)]
    pub args: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ok: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
}

impl Entry {
    pub fn new(call: &str, args: Value, answer: &Result<Value, HostError>) -> Self {
        let (ok, error) = match answer {
            Ok(v) => (Some(v.clone()), None),
            Err(e) => (None, Some(error_to_json(e))),
        };
        Entry { call: call.to_string(), args, ok, error }
    }

    /// The recorded answer; `Err` explains a malformed entry.
    pub fn answer(&self) -> Result<Result<Value, HostError>, String> {
        match (&self.ok, &self.error) {
            (Some(v), None) => Ok(Ok(v.clone())),
            // `"ok": null` deserialises as None: a unit answer (reduce-autonomy).
            (None, None) => Ok(Ok(Value::Null)),
            (None, Some(e)) => error_from_json(e).map(Err),
            (Some(_), Some(_)) => Err("has both \"ok\" and \"error\"".into()),
        }
    }
}

pub fn error_to_json(e: &HostError) -> Value {
    match e {
        HostError::Denied(m) => json!({ "denied": m }),
        HostError::Unavailable(m) => json!({ "unavailable": m }),
        HostError::Timeout(m) => json!({ "timeout": m }),
        HostError::Invalid(m) => json!({ "invalid": m }),
        HostError::Rejected(r) => {
            let detail = serde_json::from_str::<Value>(&r.detail).unwrap_or_else(|_| Value::String(r.detail.clone()));
            json!({ "rejected": { "status": r.status, "code": r.code, "detail": detail } })
        }
    }
}

pub fn error_from_json(v: &Value) -> Result<HostError, String> {
    let bad = || {
        format!("error {v} is not one of {{\"denied\"|\"unavailable\"|\"timeout\"|\"invalid\": text}} or {{\"rejected\": {{status, code, detail}}}}")
    };
    let Some((k, inner)) = v.as_object().filter(|o| o.len() == 1).and_then(|o| o.iter().next()) else {
        return Err(bad());
    };
    let text = || inner.as_str().map(str::to_string).ok_or_else(bad);
    Ok(match k.as_str() {
        "denied" => HostError::Denied(text()?),
        "unavailable" => HostError::Unavailable(text()?),
        "timeout" => HostError::Timeout(text()?),
        "invalid" => HostError::Invalid(text()?),
        "rejected" => {
            let status =
                inner.get("status").and_then(Value::as_u64).and_then(|s| u16::try_from(s).ok()).ok_or_else(bad)?;
            let code = inner.get("code").and_then(Value::as_str).unwrap_or("").to_string();
            let detail = inner.get("detail").cloned().unwrap_or(Value::Null).to_string();
            HostError::Rejected(Rejection { status, code, detail })
        }
        _ => return Err(bad()),
    })
}

/// Fixture equality: JSON equality where numbers compare by value, so a hand-written `1`
/// matches the `1.0` a module sends.
pub fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

/// Reads a JSON fixture file; a missing file is `None`, anything unreadable an error naming it.
pub fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> anyhow::Result<Option<T>> {
    match std::fs::read(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(anyhow::anyhow!("fixture {}: {e}", path.display())),
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| anyhow::anyhow!("fixture {}: {e} (format: docs/modules.md)", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_round_trip_and_numbers_compare_by_value() {
        let rejected =
            HostError::Rejected(Rejection { status: 409, code: "duplicate".into(), detail: "{\"x\":1}".into() });
        for e in [HostError::Denied("d".into()), HostError::Timeout("t".into()), rejected] {
            let back = error_from_json(&error_to_json(&e)).unwrap();
            assert_eq!(format!("{back:?}"), format!("{e:?}"));
        }
        assert!(error_from_json(&json!({"gone": "x"})).unwrap_err().contains("is not one of"));
        assert!(same(&json!({"at": 1, "q": [2.0]}), &json!({"q": [2], "at": 1.0})));
        assert!(!same(&json!({"at": 1}), &json!({"at": 1, "x": null})));
        let both = Entry { call: "c".into(), args: json!({}), ok: Some(json!(1)), error: Some(json!({"denied": "x"})) };
        assert!(both.answer().is_err());
    }
}
