//! The envelope written straight to bytes, the record's text as its `data`.
//!
//! A spooled record is compact JSON text (`Emitted::new` wrote it with serde_json, the map's
//! order kept), so the text is exactly what serializing its parsed map would write again:
//! the envelope's `data` is that text, and only `id`, `created_at`, the subtype and
//! `service` are read from it, without building the map. The bytes are the ones
//! [`super::wrap_owned`] serialized, key for key (tests below, for every record kind).
//!
//! A text those few fields cannot be read from the usual way (a key twice, which a map
//! would have resolved last-wins; only a hand-edited spool has that) takes the map's way.

use std::io::Write;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::{ce_type, now_iso, source, subject, Emitted, RecordKind};

/// The fields of a record the envelope names. Each is `Some` when the key is present, a
/// JSON `null` included (`created_at: null` gives `time: null`, as the map's way does).
#[derive(Deserialize)]
struct Named {
    #[serde(default, deserialize_with = "present")]
    id: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    created_at: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    kind: Option<Value>,
    #[serde(default, deserialize_with = "present", rename = "type")]
    verdict_type: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    service: Option<Value>,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// The envelope's bytes and the record's labels (as [`labels`] reads them), from one parse.
pub(super) fn write(record: &Emitted, deployment_id: &str) -> Result<(Vec<u8>, (String, String)), String> {
    let text = record.text();
    // A struct also deserializes from an array; the record must be an object.
    let named = match serde_json::from_str::<Named>(text) {
        Ok(n) if text.trim_start().starts_with('{') => n,
        _ => return Ok((mapped(record, deployment_id)?, labels(record))),
    };
    let labels = named_labels(record.kind, &named);
    let ce_type = ce_type(record.kind, subtype(record.kind, &named));
    let time = named.created_at.unwrap_or_else(|| Value::String(now_iso()));
    let mut out = Vec::with_capacity(text.len() + 256);
    out.extend_from_slice(br#"{"specversion":"1.0""#);
    field(&mut out, "type", &ce_type)?;
    field(&mut out, "source", &source(&record.component, deployment_id))?;
    field(&mut out, "id", &named.id.unwrap_or(Value::Null))?;
    field(&mut out, "time", &time)?;
    out.extend_from_slice(br#","datacontenttype":"application/json","data":"#);
    out.extend_from_slice(text.trim().as_bytes());
    if let Some(subject) = subject(named.service.as_ref()) {
        field(&mut out, "subject", &subject)?;
    }
    out.push(b'}');
    Ok((out, labels))
}

pub(super) fn labels(record: &Emitted) -> (String, String) {
    match serde_json::from_str::<Named>(record.text()) {
        Ok(n) => named_labels(record.kind, &n),
        Err(_) => {
            let map = record.record().unwrap_or_default();
            (label(map.get(record.kind.subtype_key())), label(map.get("service")))
        }
    }
}

fn named_labels(kind: RecordKind, named: &Named) -> (String, String) {
    (label(subtype(kind, named)), label(named.service.as_ref()))
}

fn label(v: Option<&Value>) -> String {
    v.and_then(Value::as_str).unwrap_or_default().to_string()
}

fn subtype(kind: RecordKind, named: &Named) -> Option<&Value> {
    match kind {
        RecordKind::Assessment => named.kind.as_ref(),
        RecordKind::Verdict => named.verdict_type.as_ref(),
    }
}

/// `,"<key>":<value>` (keys are the envelope's own, plain ASCII).
fn field<T: Serialize>(out: &mut Vec<u8>, key: &str, value: &T) -> Result<(), String> {
    write!(out, ",\"{key}\":").map_err(|e| e.to_string())?;
    serde_json::to_writer(out, value).map_err(|e| e.to_string())
}

/// The map's way: parse, wrap, serialize (the text is not an object, or reads oddly).
fn mapped(record: &Emitted, deployment_id: &str) -> Result<Vec<u8>, String> {
    let envelope = record.envelope(deployment_id)?;
    serde_json::to_vec(&envelope).map_err(|e| format!("record {:?}: {e}", record.id))
}

#[cfg(test)]
#[path = "envelope_bytes_tests.rs"]
mod tests;
