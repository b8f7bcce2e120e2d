//! A scripted HTTP/1.1 server on 127.0.0.1 that records requests and plays back canned
//! replies in order (the last one repeats). One request per connection (`Connection: close`),
//! which is all reqwest needs.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nthlayer_llm::{CallContext, CycleBudget, LlmClient, LlmConfig, LlmRequest, Policy};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

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
    pub requests: Arc<Mutex<Vec<Recorded>>>,
}

impl Server {
    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }
}

pub async fn serve(replies: Vec<Reply>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(Mutex::new(Vec::new()));
    let rec = requests.clone();
    let script = Arc::new(Mutex::new((replies, 0usize)));
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                return;
            };
            let rec = rec.clone();
            let script = script.clone();
            tokio::spawn(async move { handle(sock, rec, script).await });
        }
    });
    Server { url, requests }
}

type Script = Arc<Mutex<(Vec<Reply>, usize)>>;

async fn handle(mut sock: TcpStream, rec: Arc<Mutex<Vec<Recorded>>>, script: Script) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        let n = match sock.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let path = lines.next().and_then(|l| l.split_whitespace().nth(1)).unwrap_or("").to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let len: usize = headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
    while buf.len() < head_end + len {
        let n = match sock.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = serde_json::from_slice(&buf[head_end..head_end + len]).unwrap_or(Value::Null);
    rec.lock().unwrap().push(Recorded { path, headers, body });
    let reply = {
        let mut s = script.lock().unwrap();
        let i = s.1.min(s.0.len() - 1);
        s.1 += 1;
        s.0[i].clone()
    };
    match reply {
        Reply::Hang => {
            tokio::time::sleep(Duration::from_secs(120)).await;
        }
        Reply::Json { status, headers, body } => {
            let body = body.to_string();
            let mut out = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
                body.len()
            );
            for (k, v) in headers {
                out.push_str(&format!("{k}: {v}\r\n"));
            }
            out.push_str("\r\n");
            out.push_str(&body);
            let _ = sock.write_all(out.as_bytes()).await;
            let _ = sock.shutdown().await;
        }
    }
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
