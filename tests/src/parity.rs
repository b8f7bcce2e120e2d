//! Record normalisation and field-by-field diffs for reference-vs-host parity.
//!
//! Paths are rendered like `data.services[0].slo_count`. An [`Allowed`] entry matches a
//! difference when its `kind` is `"*"` or the record kind, and its `path` pattern matches the
//! difference path or a prefix of it. In patterns `*` matches one key and `[*]` one index.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value};

/// Placeholder for normalised identifiers.
pub const ID: &str = "<id>";
/// Placeholder for normalised timestamps.
pub const TS: &str = "<ts>";

/// One intended difference between the reference and the host.
#[derive(Debug, Clone, Copy)]
pub struct Allowed {
    /// Record kind (`slo_status`, …) or `"*"`.
    pub kind: &'static str,
    /// Path pattern, e.g. `data.summary`, `data.services[*].slo_count`.
    pub path: &'static str,
    /// Why the difference is intended (shown in reports).
    pub reason: &'static str,
}

/// One difference found by [`diff`].
#[derive(Debug, Clone, PartialEq)]
pub struct Difference {
    pub path: String,
    /// `None` = key absent on that side.
    pub expected: Option<Value>,
    pub actual: Option<Value>,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |v: &Option<Value>| match v {
            None => "<absent>".to_owned(),
            Some(v) => {
                let s = v.to_string();
                if s.len() > 200 {
                    format!("{}…", &s[..200])
                } else {
                    s
                }
            }
        };
        write!(
            f,
            "{}: reference {} / host {}",
            if self.path.is_empty() { "$" } else { &self.path },
            show(&self.expected),
            show(&self.actual)
        )
    }
}

/// What [`normalize`] replaces.
#[derive(Debug, Clone)]
pub struct Normalize {
    /// Paths replaced by [`ID`] when present (string or not).
    pub ids: Vec<&'static str>,
    /// Paths replaced by [`TS`] when present.
    pub timestamps: Vec<&'static str>,
    /// Paths of id lists whose *elements* become [`ID`] (the length is kept).
    pub id_lists: Vec<&'static str>,
}

impl Default for Normalize {
    /// Record id, `created_at`, envelope `time`, and `parent_ids` (top level and in `data`).
    fn default() -> Self {
        Normalize {
            ids: vec!["id"],
            timestamps: vec!["created_at", "time"],
            id_lists: vec!["parent_ids", "data.parent_ids"],
        }
    }
}

fn get_mut<'a>(v: &'a mut Value, path: &str) -> Option<&'a mut Value> {
    let mut cur = v;
    for key in path.split('.') {
        cur = cur.as_object_mut()?.get_mut(key)?;
    }
    Some(cur)
}

/// Normalise with [`Normalize::default`].
pub fn normalize(record: &Value) -> Value {
    normalize_with(record, &Normalize::default())
}

/// Replace time- and run-dependent fields of `record` with placeholders.
pub fn normalize_with(record: &Value, n: &Normalize) -> Value {
    let mut v = record.clone();
    for p in &n.ids {
        if let Some(x) = get_mut(&mut v, p) {
            *x = Value::String(ID.into());
        }
    }
    for p in &n.timestamps {
        if let Some(x) = get_mut(&mut v, p) {
            *x = Value::String(TS.into());
        }
    }
    for p in &n.id_lists {
        if let Some(Value::Array(a)) = get_mut(&mut v, p) {
            for x in a.iter_mut() {
                *x = Value::String(ID.into());
            }
        }
    }
    v
}

/// All differences between `expected` (reference) and `actual` (host). Object key order is
/// ignored; numbers compare by their JSON text (so `60` ≠ `60.0`, and floats must match to
/// the last bit).
pub fn diff(expected: &Value, actual: &Value) -> Vec<Difference> {
    let mut out = Vec::new();
    walk(String::new(), Some(expected), Some(actual), &mut out);
    out
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn walk(path: String, e: Option<&Value>, a: Option<&Value>, out: &mut Vec<Difference>) {
    match (e, a) {
        (Some(Value::Object(eo)), Some(Value::Object(ao))) => {
            let mut keys: Vec<&String> = eo.keys().collect();
            for k in ao.keys() {
                if !eo.contains_key(k) {
                    keys.push(k);
                }
            }
            for k in keys {
                walk(join(&path, k), eo.get(k), ao.get(k), out);
            }
        }
        (Some(Value::Array(ea)), Some(Value::Array(aa))) => {
            for i in 0..ea.len().max(aa.len()) {
                walk(format!("{path}[{i}]"), ea.get(i), aa.get(i), out);
            }
        }
        (Some(x), Some(y)) if same(x, y) => {}
        (None, None) => {}
        (x, y) => out.push(Difference { path, expected: x.cloned(), actual: y.cloned() }),
    }
}

/// JSON equality that also tells `60` from `60.0` (serde_json already does) and `0.0` from
/// `-0.0` (it does not).
fn same(x: &Value, y: &Value) -> bool {
    x == y
        && match (x, y) {
            (Value::Number(a), Value::Number(b)) => {
                a.as_f64().map(f64::is_sign_negative) == b.as_f64().map(f64::is_sign_negative)
            }
            _ => true,
        }
}

fn segments(path: &str) -> Vec<String> {
    let mut segs = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let mut rest = part;
        if let Some(i) = rest.find('[') {
            if i > 0 {
                segs.push(rest[..i].to_owned());
            }
            rest = &rest[i..];
            while let Some(end) = rest.find(']') {
                segs.push(rest[..=end].to_owned());
                rest = &rest[end + 1..];
            }
        } else {
            segs.push(rest.to_owned());
        }
    }
    segs
}

/// Does `pattern` match `path` or a prefix of it?
pub fn path_matches(pattern: &str, path: &str) -> bool {
    let p = segments(pattern);
    let s = segments(path);
    if p.len() > s.len() {
        return false;
    }
    p.iter()
        .zip(&s)
        .all(|(pp, ss)| pp == ss || (pp == "*" && !ss.starts_with('[')) || (pp == "[*]" && ss.starts_with('[')))
}

/// Is this difference in a record of `kind` intended?
pub fn allowed<'a>(kind: &str, d: &Difference, allow: &'a [Allowed]) -> Option<&'a Allowed> {
    allow.iter().find(|a| (a.kind == "*" || a.kind == kind) && path_matches(a.path, &d.path))
}

/// Normalise both records, diff them, drop intended differences, and render the rest as
/// readable lines prefixed by `label` (e.g. `slo_status checkout-api/availability`).
pub fn compare(label: &str, kind: &str, reference: &Value, host: &Value, allow: &[Allowed]) -> Vec<String> {
    diff(&normalize(reference), &normalize(host))
        .into_iter()
        .filter(|d| allowed(kind, d, allow).is_none())
        .map(|d| format!("{label}: {d}"))
        .collect()
}

/// Compare two sets of records keyed by `key` (e.g. service/slo). Missing or extra keys are
/// reported as differences at path `$` unless allowed (`kind`, path `"$"`).
pub fn compare_keyed(
    kind: &str,
    reference: &BTreeMap<String, Value>,
    host: &BTreeMap<String, Value>,
    allow: &[Allowed],
) -> Vec<String> {
    let mut out = Vec::new();
    let missing_ok = allow.iter().any(|a| (a.kind == "*" || a.kind == kind) && a.path == "$");
    for (k, r) in reference {
        match host.get(k) {
            Some(h) => out.extend(compare(&format!("{kind} {k}"), kind, r, h, allow)),
            None if !missing_ok => out.push(format!("{kind} {k}: missing from host")),
            None => {}
        }
    }
    for k in host.keys() {
        if !reference.contains_key(k) && !missing_ok {
            out.push(format!("{kind} {k}: host only (not posted by the reference)"));
        }
    }
    out
}

/// Keep the newest record per key from a newest-first list (as core returns it).
pub fn latest_by<F>(records: &[Value], key: F) -> BTreeMap<String, Value>
where
    F: Fn(&Value) -> String,
{
    let mut m = BTreeMap::new();
    for r in records {
        m.entry(key(r)).or_insert_with(|| r.clone());
    }
    m
}

/// Keep the oldest record per key from a newest-first list.
pub fn oldest_by<F>(records: &[Value], key: F) -> BTreeMap<String, Value>
where
    F: Fn(&Value) -> String,
{
    let mut m = BTreeMap::new();
    for r in records {
        m.insert(key(r), r.clone());
    }
    m
}

/// `service` or `service/slo_name` (when the record has `data.slo_name`).
pub fn service_slo_key(r: &Value) -> String {
    let svc = r["service"].as_str().unwrap_or("?");
    match r["data"]["slo_name"].as_str() {
        Some(s) => format!("{svc}/{s}"),
        None => svc.to_owned(),
    }
}

/// Pick a sub-object (e.g. only `data`) for comparison; absent → Null.
pub fn pick(record: &Value, keys: &[&str]) -> Value {
    let mut m = Map::new();
    for k in keys {
        m.insert((*k).to_owned(), record.get(*k).cloned().unwrap_or(Value::Null));
    }
    Value::Object(m)
}

/// Render a list of differences for an assertion message.
pub fn report(diffs: &[String]) -> String {
    format!("{} difference(s):\n  {}", diffs.len(), diffs.join("\n  "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn diff_and_allow() {
        let r = json!({"id":"asm-1","created_at":"t1","data":{"a":1,"b":[1,2],"parent_ids":["x"],"f":60}});
        let h =
            json!({"id":"asm-2","created_at":"t2","data":{"a":1,"b":[1,3],"parent_ids":["y"],"f":60.0,"extra":true}});
        let d = diff(&normalize(&r), &normalize(&h));
        let paths: Vec<&str> = d.iter().map(|d| d.path.as_str()).collect();
        assert_eq!(paths, ["data.b[1]", "data.f", "data.extra"]);
        let allow = [Allowed { kind: "k", path: "data.b[*]", reason: "test" }];
        let left = compare("x", "k", &r, &h, &allow);
        assert_eq!(left.len(), 2, "{left:?}");
        assert!(path_matches("data.services[*].slo_count", "data.services[3].slo_count"));
        assert!(path_matches("data", "data.services[3]"));
        assert!(!path_matches("data.x", "data.y"));
    }
}
