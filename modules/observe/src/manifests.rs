//! Core's manifest list, read for the few fields observe uses.
//!
//! Every task here reads a manifest's `name`, `tier` and `slos` and nothing else, but a
//! manifest carries a dozen more (team, namespace, judgment thresholds, dependencies, ...).
//! Parsed whole, 1,000 manifests were 5.6 MB of `Value`s held for the whole cycle — most of
//! observe.collect's 12 MB at the issue's scale. Here each manifest keeps only those three
//! fields, the rest skipped as it is read; what the tasks see is what they saw before, a
//! list of objects, so a missing or oddly typed field reads exactly as it did.

use std::fmt;

use nthlayer_sdk::{Host, Level};
use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::type_name;

/// The fields of a manifest any observe task reads.
const READ: [&str; 3] = ["name", "tier", "slos"];

/// `GET /manifests`. `None` ends the cycle: core unreachable or an unusable answer.
pub(crate) fn fetch_manifests(host: &dyn Host) -> Option<Vec<Value>> {
    let warn = |what: &str| host.log(Level::Warn, "observe_manifest_fetch_failed", &[("error", what)]);
    let text = match host.get_manifests_text() {
        Ok(text) => text,
        Err(e) => {
            warn(&e.to_string());
            return None;
        }
    };
    match serde_json::from_str::<Option<Vec<Lean>>>(&text) {
        Ok(list) => Some(list.unwrap_or_default().into_iter().map(|Lean(m)| m).collect()),
        // Not a list: read it whole once more, to say what it is as before.
        Err(_) => {
            match serde_json::from_str::<Value>(&text) {
                Ok(other) => warn(&format!("expected a JSON array, got {}", type_name(&other))),
                Err(e) => warn(&format!("host sent invalid JSON: {e}")),
            }
            None
        }
    }
}

/// A manifest's service name when the reference would use it: a non-empty string.
pub(crate) fn manifest_name(m: &Value) -> Option<&str> {
    m.get("name").and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// A manifest's `slos` as a slice; anything but an array counts as none.
pub(crate) fn manifest_slos(m: &Value) -> &[Value] {
    m.get("slos").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[])
}

/// One entry of the list: an object with only the [`READ`] fields it had (a repeated key:
/// the last, as a `Value` parse keeps), or `Null` for anything but an object (which every
/// task skipped already: it has no name).
struct Lean(Value);

impl<'de> Deserialize<'de> for Lean {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LeanVisitor)
    }
}

struct LeanVisitor;

impl<'de> Visitor<'de> for LeanVisitor {
    type Value = Lean;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a manifest")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Lean, A::Error> {
        let mut kept = Map::new();
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if READ.contains(&key.as_ref()) {
                kept.insert(key.into_owned(), map.next_value::<Value>()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(Lean(Value::Object(kept)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Lean, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Lean(Value::Null))
    }

    fn visit_bool<E>(self, _: bool) -> Result<Lean, E> {
        Ok(Lean(Value::Null))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Lean, E> {
        Ok(Lean(Value::Null))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Lean, E> {
        Ok(Lean(Value::Null))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Lean, E> {
        Ok(Lean(Value::Null))
    }
    fn visit_str<E>(self, _: &str) -> Result<Lean, E> {
        Ok(Lean(Value::Null))
    }
    fn visit_unit<E>(self) -> Result<Lean, E> {
        Ok(Lean(Value::Null))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nthlayer_sdk::HostError;
    use serde_json::json;
    use std::cell::RefCell;

    /// Answers `get_manifests_text` with `text` (or an error) and keeps what it logs.
    struct Text(Result<String, HostError>, RefCell<Vec<String>>);

    impl Host for Text {
        fn get_manifests_text(&self) -> Result<String, HostError> {
            self.0.clone()
        }
        fn log(&self, _: Level, message: &str, fields: &[(&str, &str)]) {
            self.1.borrow_mut().push(format!("{message} {fields:?}"));
        }
        fn now(&self) -> f64 {
            0.0
        }
        fn random_u64(&self) -> u64 {
            0
        }
    }

    fn host(text: &str) -> Text {
        Text(Ok(text.to_string()), RefCell::default())
    }

    /// What each task reads is what a whole parse gave: kept fields whole, odd entries
    /// nameless, the last of a repeated key.
    #[test]
    fn only_the_read_fields_are_kept_and_read_as_before() {
        let text = r#"[
            {"name":"a","team":"t","tier":"critical","slos":[{"name":"x","target":99.9,"window":"30d"}],
             "dependencies":[{"name":"b"}],"judgment_thresholds":[{"deep":[[1e300]]}]},
            {"name":"b","name":"c","slos":"not a list"},
            "just a string", 42, -1, 1.5, true, null, [1, {"name":"d"}], {"tier":{"nested":true}},
            {"name":"esc\u0061ped","slos":[]}
        ]"#;
        let lean = fetch_manifests(&host(text)).unwrap();
        let whole: Vec<Value> = serde_json::from_str(text).unwrap();
        assert_eq!(lean.len(), whole.len());
        for (l, w) in lean.iter().zip(&whole) {
            assert_eq!(manifest_name(l), manifest_name(w));
            assert_eq!(manifest_slos(l), manifest_slos(w));
            assert_eq!(l.get("tier"), w.get("tier"));
        }
        assert_eq!(lean[0], json!({"name":"a","tier":"critical","slos":[{"name":"x","target":99.9,"window":"30d"}]}));
        assert_eq!(manifest_name(&lean[1]), Some("c"));
        assert_eq!(manifest_name(&lean[10]), Some("escaped"));
    }

    #[test]
    fn an_answer_that_is_not_a_list_is_named_as_before() {
        for (text, said) in [
            (r#"{"manifests": []}"#, "expected a JSON array, got object"),
            (r#""x""#, "expected a JSON array, got string"),
            ("[{", "host sent invalid JSON: EOF while parsing"),
        ] {
            let h = host(text);
            assert_eq!(fetch_manifests(&h), None);
            let logs = h.1.borrow();
            assert!(
                logs.len() == 1 && logs[0].starts_with("observe_manifest_fetch_failed") && logs[0].contains(said),
                "{logs:?}"
            );
        }
        assert_eq!(fetch_manifests(&host("null")), Some(vec![]));
        let down = Text(Err(HostError::Unavailable("core down".into())), RefCell::default());
        assert_eq!(fetch_manifests(&down), None);
        assert!(down.1.borrow()[0].contains("core down"));
    }
}
