//! Anthropic Messages API with one forced tool: the tool's `input` is the answer.

use serde_json::{json, Value};

use crate::config::LlmConfig;
use crate::error::LlmError;
use crate::exchange::{tool_description, Turn};
use crate::route::Route;

pub(crate) const API_VERSION: &str = "2023-06-01";

pub(crate) struct Conversation {
    name: String,
    base: Value,
    messages: Vec<Value>,
}

impl Conversation {
    pub fn new(route: &Route, system: &str, user: &str, name: &str, schema: &Value, max_tokens: u32) -> Self {
        let base = json!({
            "model": route.model_name,
            "max_tokens": max_tokens,
            "system": system,
            "tools": [{
                "name": name,
                "description": tool_description(name, schema),
                "input_schema": schema,
            }],
            // As Instructor sends it: without disable_parallel_tool_use the model may emit the
            // forced tool twice.
            "tool_choice": {"type": "tool", "name": name, "disable_parallel_tool_use": true},
        });
        Self { name: name.to_owned(), base, messages: vec![json!({"role": "user", "content": user})] }
    }

    pub fn endpoint(cfg: &LlmConfig) -> Result<crate::http::Endpoint, LlmError> {
        let key = cfg
            .anthropic_api_key
            .clone()
            .ok_or_else(|| LlmError::unavailable("[anthropic] ANTHROPIC_API_KEY not set"))?;
        Ok((
            format!("{}/v1/messages", cfg.anthropic_base_url),
            vec![("x-api-key", key), ("anthropic-version", API_VERSION.to_owned())],
        ))
    }

    pub fn body(&self) -> Value {
        let mut b = self.base.clone();
        b["messages"] = Value::Array(self.messages.clone());
        b
    }

    pub fn read(&self, reply: &Value) -> Result<Turn, LlmError> {
        let name = self.name.as_str();
        let content = reply
            .get("content")
            .and_then(Value::as_array)
            .ok_or_else(|| LlmError::unavailable("[anthropic] reply has no content array"))?;
        let usage = reply.get("usage");
        let tok = |k: &str| usage.and_then(|u| u.get(k)).and_then(Value::as_u64).unwrap_or(0);
        let tool = content
            .iter()
            .filter(|b| b.get("type").and_then(Value::as_str) == Some("tool_use"))
            .find(|b| b.get("name").and_then(Value::as_str) == Some(name))
            .or_else(|| content.iter().find(|b| b.get("type").and_then(Value::as_str) == Some("tool_use")));
        let candidate = match tool.and_then(|t| t.get("input")) {
            Some(input) => Ok(input.clone()),
            None => Err(format!("no {name} tool call in the reply; call the {name} tool")),
        };
        Ok(Turn {
            candidate,
            input_tokens: tok("input_tokens"),
            output_tokens: tok("output_tokens"),
            echo: Value::Array(content.iter().map(echo_block).collect()),
        })
    }

    /// Anthropic requires a `tool_result` for every `tool_use` of the previous turn, so the
    /// validation errors travel as error tool results (Instructor does the same).
    pub fn reask(&mut self, turn: Turn, error: &str) {
        let content = match turn.echo {
            Value::Array(c) => c,
            _ => Vec::new(),
        };
        let ids: Vec<Value> = content
            .iter()
            .filter(|b| b.get("type").and_then(Value::as_str) == Some("tool_use"))
            .filter_map(|b| b.get("id").cloned())
            .collect();
        if !content.is_empty() {
            self.messages.push(json!({"role": "assistant", "content": content}));
        }
        let user = if ids.is_empty() {
            json!({"role": "user", "content": error})
        } else {
            let results: Vec<Value> = ids
                .into_iter()
                .map(|id| json!({"type": "tool_result", "tool_use_id": id, "content": error, "is_error": true}))
                .collect();
            json!({"role": "user", "content": results})
        };
        self.messages.push(user);
    }
}

/// Keeps only the fields the API accepts back in an assistant turn.
fn echo_block(b: &Value) -> Value {
    match b.get("type").and_then(Value::as_str) {
        Some("tool_use") => json!({
            "type": "tool_use",
            "id": b.get("id").cloned().unwrap_or(Value::Null),
            "name": b.get("name").cloned().unwrap_or(Value::Null),
            "input": b.get("input").cloned().unwrap_or_else(|| json!({})),
        }),
        Some("text") => json!({"type": "text", "text": b.get("text").cloned().unwrap_or_default()}),
        _ => b.clone(),
    }
}
