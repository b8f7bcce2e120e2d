use serde_json::Value;

use crate::error::LlmError;

const MAX_REPORTED: usize = 8;

/// A compiled request schema. Compiled once per call: the same schema is both the tool
/// definition sent to the provider and the contract the answer is checked against, so a
/// schema that does not compile is the module's error (`invalid`), found before any spend.
pub struct SchemaValidator {
    schema: Value,
    inner: jsonschema::Validator,
}

impl SchemaValidator {
    pub fn from_text(schema: &str) -> Result<Self, LlmError> {
        let schema: Value =
            serde_json::from_str(schema).map_err(|e| LlmError::invalid(format!("schema is not JSON: {e}")))?;
        Self::new(schema)
    }

    pub fn new(schema: Value) -> Result<Self, LlmError> {
        if !schema.is_object() {
            return Err(LlmError::invalid("schema must be a JSON object"));
        }
        let inner = jsonschema::validator_for(&schema)
            .map_err(|e| LlmError::invalid(format!("schema does not compile: {e}")))?;
        Ok(Self { schema, inner })
    }

    pub fn schema(&self) -> &Value {
        &self.schema
    }

    /// `Err` carries a short, model-readable list of problems (`path: message`), which is
    /// what the re-ask sends back.
    pub fn check(&self, value: &Value) -> Result<(), String> {
        let errors: Vec<String> = self
            .inner
            .iter_errors(value)
            .take(MAX_REPORTED + 1)
            .map(|e| {
                let path = e.instance_path().to_string();
                let path = if path.is_empty() { "(root)".into() } else { path };
                let mut msg = e.to_string();
                if msg.len() > 300 {
                    let cut = (0..=300).rev().find(|i| msg.is_char_boundary(*i)).unwrap_or(0);
                    msg.truncate(cut);
                    msg.push('…');
                }
                format!("{path}: {msg}")
            })
            .collect();
        if errors.is_empty() {
            return Ok(());
        }
        let more = errors.len() > MAX_REPORTED;
        let mut text = errors.into_iter().take(MAX_REPORTED).collect::<Vec<_>>().join("\n");
        if more {
            text.push_str("\n(more errors omitted)");
        }
        Err(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reports_path_and_reason() {
        let v = SchemaValidator::new(json!({
            "type":"object","properties":{"severity":{"type":"integer","minimum":0,"maximum":4}},
            "required":["severity"]
        }))
        .unwrap();
        assert!(v.check(&json!({"severity":2})).is_ok());
        let e = v.check(&json!({"severity":9})).unwrap_err();
        assert!(e.contains("/severity"), "{e}");
        let e = v.check(&json!({})).unwrap_err();
        assert!(e.contains("severity"), "{e}");
    }

    #[test]
    fn bad_schema_is_invalid() {
        assert!(matches!(SchemaValidator::from_text("{nope"), Err(LlmError::Invalid(_))));
        assert!(matches!(SchemaValidator::from_text(r#"{"type": 12}"#), Err(LlmError::Invalid(_))));
    }
}
