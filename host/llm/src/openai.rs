//! OpenAI-compatible `/chat/completions`: one forced function tool (the reference's wire), or
//! `response_format: json_schema` for servers that do not do tools.

use serde_json::{json, Map, Value};

use crate::config::LlmConfig;
use crate::error::LlmError;
use crate::exchange::{tool_description, Turn};
use crate::route::Route;

const DEFAULT_BASE: &str = "https://api.openai.com/v1";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Structure {
    Tools,
    JsonSchema,
}

/// Instructor's `parameters`: the schema minus `title`/`description`, `required` sorted.
fn parameters(schema: &Value) -> Value {
    let mut p: Map<String, Value> = schema
        .as_object()
        .map(|o| {
            o.iter()
                .filter(|(k, _)| *k != "title" && *k != "description")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    if let Some(Value::Array(req)) = p.get_mut("required") {
        req.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
    }
    Value::Object(p)
}

pub(crate) struct Conversation {
    model: String,
    max_tokens: u32,
    name: String,
    schema: Value,
    pub structure: Structure,
    messages: Vec<Value>,
}

impl Conversation {
    pub fn new(
        route: &Route,
        system: &str,
        user: &str,
        name: &str,
        schema: &Value,
        max_tokens: u32,
        structure: Structure,
    ) -> Self {
        Self {
            model: route.model_name.clone(),
            max_tokens,
            name: name.to_owned(),
            schema: schema.clone(),
            structure,
            messages: vec![json!({"role": "system", "content": system}), json!({"role": "user", "content": user})],
        }
    }

    /// Local servers (ollama, vLLM) need no key, so a missing key only matters for the real
    /// OpenAI endpoint, where it would be a certain 401.
    pub fn endpoint(cfg: &LlmConfig) -> Result<crate::http::Endpoint, LlmError> {
        let mut headers = Vec::new();
        match &cfg.openai_api_key {
            Some(k) => headers.push(("authorization", format!("Bearer {k}"))),
            None if cfg.openai_api_base == DEFAULT_BASE => {
                return Err(LlmError::unavailable("[openai] OPENAI_API_KEY not set"))
            }
            None => {}
        }
        Ok((format!("{}/chat/completions", cfg.openai_api_base), headers))
    }

    pub fn body(&self) -> Value {
        let mut b = json!({
            "model": self.model,
            "max_tokens": self.max_tokens,
            "messages": self.messages,
        });
        match self.structure {
            Structure::Tools => {
                b["tools"] = json!([{
                    "type": "function",
                    "function": {
                        "name": self.name,
                        "description": tool_description(&self.name, &self.schema),
                        "parameters": parameters(&self.schema),
                    }
                }]);
                b["tool_choice"] = json!({"type": "function", "function": {"name": self.name}});
            }
            Structure::JsonSchema => {
                b["response_format"] = json!({
                    "type": "json_schema",
                    "json_schema": {"name": self.name, "schema": self.schema, "strict": false}
                });
            }
        }
        b
    }

    pub fn read(&self, reply: &Value) -> Result<Turn, LlmError> {
        let message = reply
            .get("choices")
            .and_then(|c| c.get(0))
            .and_then(|c| c.get("message"))
            .ok_or_else(|| LlmError::unavailable("[openai] reply has no choices[0].message"))?;
        let usage = reply.get("usage");
        let tok = |k: &str| usage.and_then(|u| u.get(k)).and_then(Value::as_u64).unwrap_or(0);
        let args = message
            .get("tool_calls")
            .and_then(|t| t.get(0))
            .and_then(|t| t.get("function"))
            .and_then(|f| f.get("arguments"));
        let candidate = match (args, message.get("content").and_then(Value::as_str)) {
            (Some(Value::String(s)), _) => parse_json_text(s),
            // Some servers send the arguments already decoded.
            (Some(v @ Value::Object(_)), _) => Ok(v.clone()),
            (_, Some(text)) if !text.trim().is_empty() => parse_json_text(text),
            _ => Err(format!(
                "no {} tool call and no JSON content in the reply; call the {} function",
                self.name, self.name
            )),
        };
        Ok(Turn {
            candidate,
            input_tokens: tok("prompt_tokens"),
            output_tokens: tok("completion_tokens"),
            echo: echo_message(message),
        })
    }

    /// As Instructor: echo the assistant turn, then answer each tool call with a `tool`
    /// message carrying the errors (a bare user message when there was no tool call).
    pub fn reask(&mut self, turn: Turn, error: &str) {
        let calls: Vec<Value> = turn.echo.get("tool_calls").and_then(Value::as_array).cloned().unwrap_or_default();
        self.messages.push(turn.echo);
        if calls.is_empty() {
            self.messages.push(json!({"role": "user", "content": error}));
        }
        for c in calls {
            self.messages.push(json!({
                "role": "tool",
                "tool_call_id": c.get("id").cloned().unwrap_or_default(),
                "name": c.pointer("/function/name").cloned().unwrap_or_default(),
                "content": error,
            }));
        }
    }
}

/// Models often wrap JSON in a Markdown fence when asked for content rather than a tool call.
fn parse_json_text(s: &str) -> Result<Value, String> {
    let t = s.trim();
    let t = t
        .strip_prefix("```json")
        .or_else(|| t.strip_prefix("```"))
        .and_then(|r| r.strip_suffix("```"))
        .unwrap_or(t)
        .trim();
    serde_json::from_str(t).map_err(|e| format!("the answer is not valid JSON: {e}"))
}

fn echo_message(m: &Value) -> Value {
    let mut out = json!({"role": "assistant", "content": m.get("content").cloned().unwrap_or(Value::Null)});
    if let Some(tc) = m.get("tool_calls").filter(|t| t.as_array().is_some_and(|a| !a.is_empty())) {
        out["tool_calls"] = tc.clone();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_like_instructor() {
        let p = parameters(&json!({"title":"T","description":"d","type":"object","required":["b","a"]}));
        assert_eq!(p, json!({"type":"object","required":["a","b"]}));
    }

    #[test]
    fn fenced_json() {
        assert_eq!(parse_json_text("```json\n{\"a\":1}\n```").unwrap(), json!({"a":1}));
    }
}
