//! The provider side of these tests: the scripted HTTP fake answering with canned replies
//! in order (the last one repeats), recording what the client sent; and the client side's
//! configuration, requests and provider replies.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use nthlayer_http_fake::{HttpFake, Step};
use nthlayer_llm::{CallContext, CycleBudget, LlmClient, LlmConfig, LlmRequest, Policy};
use serde_json::Value;

#[derive(Clone, Debug)]
pub enum Reply {
    Json {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: Value,
    },
    /// Accept and read the request, then never answer.
    Hang,
}

pub fn ok(body: Value) -> Reply {
    Reply::Json { status: 200, headers: vec![], body }
}

pub fn status(status: u16, body: Value) -> Reply {
    Reply::Json { status, headers: vec![], body }
}

#[derive(Clone, Debug)]
pub struct Recorded {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

pub struct Server {
    pub url: String,
    fake: HttpFake,
}

impl Server {
    pub fn requests(&self) -> Vec<Recorded> {
        self.fake
            .seen()
            .into_iter()
            .map(|s| Recorded {
                path: s.path,
                headers: s.headers,
                body: serde_json::from_str(&s.body).unwrap_or(Value::Null),
            })
            .collect()
    }
}

/// Request n gets `replies[n]`, or the last reply once they run out.
pub async fn serve(replies: Vec<Reply>) -> Server {
    let last = replies.len().saturating_sub(1);
    let steps = replies
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            let step = match r {
                Reply::Hang => Step::any().hang(),
                Reply::Json { status, headers, body } => {
                    headers.iter().fold(Step::any().reply(status, &body.to_string()), |s, (k, v)| s.header(k, v))
                }
            };
            if i == last {
                step.always()
            } else {
                step
            }
        })
        .collect();
    let fake = HttpFake::start(steps);
    Server { url: fake.url().to_string(), fake }
}

pub const ANTHROPIC_KEY: &str = "sk-ant-api03-TESTKEYtestkeyTESTKEY0123456789";
pub const OPENAI_KEY: &str = "sk-proj-OPENAIKEYopenaikey0123456789";

/// Fast backoff so retry tests take milliseconds.
pub fn base_config(url: &str) -> LlmConfig {
    LlmConfig {
        model: "anthropic/claude-test".into(),
        anthropic_api_key: Some(ANTHROPIC_KEY.into()),
        anthropic_base_url: url.into(),
        openai_api_base: format!("{url}/v1"),
        openai_api_key: Some(OPENAI_KEY.into()),
        backoff_min: Duration::from_millis(5),
        backoff_max: Duration::from_millis(20),
        ..LlmConfig::default()
    }
}

pub fn schema(name: &str) -> String {
    let path = format!("{}/schemas/{name}.json", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(path).unwrap()
}

pub fn request(schema_name: &str, max_retries: u32, timeout_ms: u32) -> LlmRequest {
    LlmRequest {
        system: "You are a triage agent.".into(),
        user: "Service: fraud-detect".into(),
        schema: schema(schema_name),
        schema_name: schema_name.into(),
        max_tokens: 1024,
        timeout_ms,
        max_retries,
    }
}

pub fn triage_value() -> Value {
    serde_json::json!({
        "severity": 1,
        "blast_radius": ["fraud-detect"],
        "affected_slos": ["reversal_rate"],
        "assigned_team": "payments",
        "reasoning": "Breach on fraud-detect.",
        "confidence": 0.9
    })
}

pub fn anthropic_reply(input: Value) -> Value {
    serde_json::json!({
        "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-test",
        "content": [
            {"type": "text", "text": "Calling the tool."},
            {"type": "tool_use", "id": "toolu_01", "name": "TriageResponse", "input": input}
        ],
        "stop_reason": "tool_use",
        "usage": {"input_tokens": 120, "output_tokens": 30}
    })
}

pub fn openai_tool_reply(arguments: &str) -> Value {
    serde_json::json!({
        "id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-test",
        "choices": [{
            "index": 0,
            "finish_reason": "tool_calls",
            "message": {
                "role": "assistant", "content": null,
                "tool_calls": [{"id": "call_1", "type": "function",
                    "function": {"name": "TriageResponse", "arguments": arguments}}]
            }
        }],
        "usage": {"prompt_tokens": 200, "completion_tokens": 40, "total_tokens": 240}
    })
}

pub fn openai_content_reply(content: &str) -> Value {
    serde_json::json!({
        "id": "chatcmpl-2", "object": "chat.completion", "model": "local",
        "choices": [{"index": 0, "finish_reason": "stop",
            "message": {"role": "assistant", "content": content}}],
        "usage": {"prompt_tokens": 50, "completion_tokens": 20}
    })
}

pub struct Ctx {
    pub policy: Policy,
    pub cycle: CycleBudget,
    pub deadline: Option<Instant>,
}

impl Ctx {
    pub fn allowed() -> Self {
        Self { policy: Policy::allow(), cycle: CycleBudget::new(), deadline: None }
    }

    pub fn get(&self) -> CallContext<'_> {
        CallContext { module: "respond", policy: &self.policy, cycle: &self.cycle, deadline: self.deadline }
    }
}

pub fn client(cfg: LlmConfig) -> LlmClient {
    LlmClient::new(cfg).unwrap()
}
