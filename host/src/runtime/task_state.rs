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

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::Value;

/// Validated JSON text; clones share it (the spool's copy, an unsaved retry).
#[derive(Clone)]
pub struct TaskState(Arc<RawValue>);

impl TaskState {
    /// Validates `text` as one JSON value (surrounding whitespace dropped), keeping it as is.
    pub fn parse(text: String) -> Result<Self, serde_json::Error> {
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

    pub fn as_raw(&self) -> &RawValue {
        &self.0
    }

    /// Bytes of JSON text.
    pub fn len(&self) -> usize {
        self.0.get().len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.get().is_empty()
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

impl<'de> Deserialize<'de> for TaskState {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Box::<RawValue>::deserialize(d).map(|raw| TaskState(Arc::from(raw)))
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
    }
}
