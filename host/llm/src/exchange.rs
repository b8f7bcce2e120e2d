//! What the wire formats share, below both of them and the conversation that picks one: the
//! turn a reply yields and the tool description both send, so neither format imports the
//! other and `conversation` only dispatches.

use serde_json::Value;

/// What one reply yielded: the candidate answer (or, in words the model can act on, why there
/// is none), its token counts, and the assistant turn to echo back on a re-ask.
pub(crate) struct Turn {
    pub candidate: Result<Value, String>,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub echo: Value,
}

/// Instructor's tool description: the schema's own (pydantic: the class docstring), else its
/// stock sentence.
pub(crate) fn tool_description(name: &str, schema: &Value) -> String {
    schema
        .get("description")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| format!("Correctly extracted `{name}` with all the required parameters with correct types"))
}
