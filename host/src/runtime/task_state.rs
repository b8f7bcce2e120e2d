//! A task's state between cycles, held as the JSON text the guest returned.
//!
//! The host never reads inside a task's state on the cycle path: it hands it to the next
//! cycle as text, spools it as text and sends it to core as text. A parsed `Value` tree costs
//! several times its JSON size (every string, map and number its own allocation) and two
//! conversions per cycle, so the state is validated once where it enters (the guest's output,
//! a restore) and then carried as that text. Only what reads inside (HA's handover record,
//! the tape) converts, once, at its own boundary.

use std::fmt;
use std::sync::Arc;

use serde::de::{MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::Value;

/// Validated JSON text; clones share it (the spool's copy, an unsaved retry).
#[derive(Clone)]
pub struct TaskState(Arc<RawValue>);

impl TaskState {
    /// Validates `text` as one JSON value (surrounding whitespace dropped), keeping it as is.
    /// What it accepts is exactly what parsing into a `Value` accepts: `RawValue`'s own scan
    /// does not check that a number is in range or that nesting is within serde_json's
    /// limit, and a state the guest could not parse back, or core could not store as JSON,
    /// must be refused here, not committed.
    pub fn parse(text: String) -> Result<Self, serde_json::Error> {
        serde_json::from_str::<Valid>(&text)?;
        RawValue::from_string(text).map(|raw| TaskState(Arc::from(raw)))
    }

    /// The compact text of `value`: where a state comes from something that parsed it
    /// (core's component-state row, HA's handover record, a test).
    pub fn from_value(value: &Value) -> Self {
        TaskState(Arc::from(serde_json::value::to_raw_value(value).expect("a Value always serialises")))
    }

    /// Parses the text, for a reader that must look inside.
    pub fn to_value(&self) -> Value {
        serde_json::from_str(self.0.get()).expect("validated when it entered")
    }

    pub fn as_str(&self) -> &str {
        self.0.get()
    }
}

impl From<Value> for TaskState {
    fn from(value: Value) -> Self {
        TaskState::from_value(&value)
    }
}

/// Equal texts: byte-for-byte, what the spool and core are given.
impl PartialEq for TaskState {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl fmt::Debug for TaskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for TaskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Written as the JSON it is (serde_json copies the text verbatim).
impl Serialize for TaskState {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

/// A JSON value walked as `Value` would be (`deserialize_any`), building nothing.
struct Valid;

impl<'de> Deserialize<'de> for Valid {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(Valid)
    }
}

impl<'de> Visitor<'de> for Valid {
    type Value = Valid;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Valid, E> {
        Ok(Valid)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Valid, E> {
        Ok(Valid)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Valid, E> {
        Ok(Valid)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Valid, E> {
        Ok(Valid)
    }

    fn visit_str<E>(self, _: &str) -> Result<Valid, E> {
        Ok(Valid)
    }

    fn visit_unit<E>(self) -> Result<Valid, E> {
        Ok(Valid)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Valid, A::Error> {
        while seq.next_element::<Valid>()?.is_some() {}
        Ok(Valid)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Valid, A::Error> {
        while map.next_entry::<Valid, Valid>()?.is_some() {}
        Ok(Valid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_text_and_refuses_what_is_not_json() {
        let s = TaskState::parse(" {\"b\":1,\"a\":[1.5,\"x\"]}\n".into()).unwrap();
        assert_eq!(s.as_str(), r#"{"b":1,"a":[1.5,"x"]}"#);
        assert_eq!(serde_json::to_string(&[&s]).unwrap(), r#"[{"b":1,"a":[1.5,"x"]}]"#);
        assert_eq!(TaskState::from_value(&s.to_value()), s);
        assert!(TaskState::parse("{\"a\":".into()).is_err());
        assert!(TaskState::parse("{} {}".into()).is_err());
        // What a Value refuses (and so would the guest reading it back) is refused too.
        let out_of_range = TaskState::parse(r#"{"x":1e400}"#.into()).unwrap_err().to_string();
        assert_eq!(out_of_range, serde_json::from_str::<Value>(r#"{"x":1e400}"#).unwrap_err().to_string());
        let deep = "[".repeat(200) + &"]".repeat(200);
        assert!(TaskState::parse(deep).unwrap_err().to_string().starts_with("recursion limit exceeded"));
        assert!(TaskState::parse("[".repeat(100) + &"]".repeat(100)).is_ok());
    }
}
