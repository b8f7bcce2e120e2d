//! Loopback stand-ins for LLM providers that speak the real wire formats — the Anthropic
//! Messages API (`POST /v1/messages`, forced `tool_use`) and OpenAI-compatible chat completions
//! (`POST /v1/chat/completions`, forced function `tool_calls`) — plus a launcher for the host
//! binary with an LLM environment of the test's choosing.
//!
//! A [`FakeLlm`] records every request and answers each one with whatever its handler returns,
//! so a test can script answers per schema and per attempt (e.g. a malformed first answer that
//! forces a re-ask). It is the scripted HTTP fake with one computed step, on a runtime of its
//! own (the harness is synchronous).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use nthlayer_http_fake::{BlockingHttpFake, HttpFake, Reply, Seen, Step};
use serde_json::{json, Value};
use tempfile::TempDir;

use crate::host::{host_bin, require_host, state_dir};
use crate::util;

/// Every variable the host's LLM service reads. A launched host gets none of them from the
/// test's own environment, only what the test passes.
pub const LLM_ENV: [&str; 8] = [
    "NTHLAYER_MODEL",
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_BASE_URL",
    "OPENAI_API_BASE",
    "OPENAI_API_KEY",
    "OPENAI_STRUCTURED_MODE",
    "NTHLAYER_LLM_STUB",
    "NTHLAYER_LLM_TIMEOUT",
];

/// One request as the fake received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The forced tool's name, in either wire format (the schema name the guest asked for).
    pub fn tool_name(&self) -> Option<&str> {
        let choice = self.body.get("tool_choice")?;
        choice.get("name").or_else(|| choice.pointer("/function/name")).and_then(Value::as_str)
    }

    /// Number of messages in the conversation (a re-ask carries the earlier turns).
    pub fn message_count(&self) -> usize {
        self.body.get("messages").and_then(Value::as_array).map_or(0, Vec::len)
    }
}

/// What the handler answers: HTTP status and JSON body.
pub type Answer = (u16, Value);

/// A scripted provider on `127.0.0.1:<free port>`. Stops on Drop.
pub struct FakeLlm {
    fake: BlockingHttpFake,
}

impl Recorded {
    fn from_seen(s: &Seen) -> Recorded {
        Recorded {
            method: s.method.clone(),
            path: s.path.clone(),
            headers: s.headers.clone(),
            body: serde_json::from_str(&s.body).unwrap_or(Value::Null),
        }
    }
}

impl FakeLlm {
    /// `handler(request, earlier_requests)` decides each answer; `earlier_requests` are the
    /// ones received before this one, so a handler can tell a first attempt from a re-ask.
    pub fn start(handler: impl Fn(&Recorded, &[Recorded]) -> Answer + Send + Sync + 'static) -> FakeLlm {
        let fake = HttpFake::start_blocking(vec![Step::serve(move |req, earlier| {
            let earlier: Vec<Recorded> = earlier.iter().map(Recorded::from_seen).collect();
            let (status, body) = handler(&Recorded::from_seen(req), &earlier);
            Reply::json(status, &body)
        })]);
        FakeLlm { fake }
    }

    /// `http://127.0.0.1:<port>` — the Anthropic base URL; OpenAI's is [`FakeLlm::openai_base`].
    pub fn url(&self) -> &str {
        self.fake.url()
    }

    /// `http://127.0.0.1:<port>/v1`, what `OPENAI_API_BASE` holds.
    pub fn openai_base(&self) -> String {
        format!("{}/v1", self.fake.url())
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.fake.seen().iter().map(Recorded::from_seen).collect()
    }
}

// ----- the two wire formats -----

/// An Anthropic Messages reply whose only tool call is `name` with `input`.
pub fn anthropic_tool_use(name: &str, input: Value, input_tokens: u64, output_tokens: u64) -> Value {
    json!({
        "id": "msg_01FakeLlm",
        "type": "message",
        "role": "assistant",
        "model": "claude-fake",
        "content": [
            {"type": "text", "text": format!("Calling {name}.")},
            {"type": "tool_use", "id": format!("toolu_{name}"), "name": name, "input": input}
        ],
        "stop_reason": "tool_use",
        "stop_sequence": null,
        "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens}
    })
}

/// An OpenAI chat-completions reply with one forced function call; `arguments` is JSON text,
/// as the API sends it.
pub fn openai_tool_call(name: &str, arguments: &str, prompt_tokens: u64, completion_tokens: u64) -> Value {
    json!({
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 1_750_000_000,
        "model": "gpt-fake",
        "choices": [{
            "index": 0,
            "finish_reason": "tool_calls",
            "message": {
                "role": "assistant",
                "content": null,
                "tool_calls": [{"id": format!("call_{name}"), "type": "function",
                    "function": {"name": name, "arguments": arguments}}]
            }
        }],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens}
    })
}

/// A provider-style error body (either API accepts this shape in tests).
pub fn error_body(kind: &str, message: &str) -> Value {
    json!({"type": "error", "error": {"type": kind, "message": message}})
}

/// A `SnapshotSummary` a model could have written for the probe's payment-api snapshot.
pub fn snapshot_value() -> Value {
    json!({
        "summary": "payment-api breached availability (99.62%) and p99 latency (1840 ms) between \
                    14:02 and 14:04 UTC, with error rate rising; v2.41.1 was deployed at 14:06 and \
                    checkout-web availability dipped at 14:09.",
        "notable_omissions": ["no fraud-detect or ledger-db signals in the sample"],
        "confidence": 0.72
    })
}

/// A `TriageResponse` for the probe's fraud-detect reversal_rate breach.
pub fn triage_value() -> Value {
    json!({
        "severity": 1,
        "blast_radius": ["fraud-detect", "payment-api", "checkout-web"],
        "affected_slos": ["reversal_rate"],
        "assigned_team": "risk-ml",
        "reasoning": "reversal_rate at 4.6x objective after the fd-2025.06.1 deploy; budget exhausted.",
        "confidence": 0.81
    })
}

/// The value this fake serves for a schema name (`SnapshotSummary`, `TriageResponse`).
pub fn value_for(schema: &str) -> Value {
    match schema {
        "SnapshotSummary" => snapshot_value(),
        "TriageResponse" => triage_value(),
        other => panic!("no fake value for schema {other:?}"),
    }
}

// ----- the host under test, with an LLM environment -----

/// The `llm-probe` test component.
pub fn probe_module() -> PathBuf {
    crate::components::LLM_PROBE.built()
}

/// `nthlayer-host serve …` with exactly the LLM variables in `env` (the test process's own
/// LLM variables are removed). Combined output in a log file; SIGKILLed on Drop, printing the
/// log tail if the test is panicking.
pub struct LlmHost {
    child: Option<std::process::Child>,
    dir: TempDir,
}

impl LlmHost {
    pub fn serve(core_url: &str, instance_id: &str, modules: &[&str], extra: &[&str], env: &[(&str, &str)]) -> LlmHost {
        require_host();
        let dir = tempfile::Builder::new().prefix("nthlayer-host-llm-").tempdir().expect("tempdir");
        let mut cmd = Command::new(host_bin());
        cmd.args(["serve", "--core-url", core_url, "--prometheus-url", "http://127.0.0.1:9"])
            .args(["--instance-id", instance_id, "--start-jitter-ms", "0", "--no-builtin", "--modules"])
            .args(modules)
            .args(extra)
            .env("NTHLAYER_STATE_DIR", state_dir(instance_id))
            .env("NTHLAYER_LISTEN", "127.0.0.1:0") // hosts of a suite run side by side
            .current_dir(dir.path());
        for k in LLM_ENV {
            cmd.env_remove(k);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let log = dir.path().join("nthlayer-host.log");
        let child = util::spawn_logged(&mut cmd, &log).unwrap_or_else(|e| panic!("spawn nthlayer-host: {e:#}"));
        LlmHost { child: Some(child), dir }
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("nthlayer-host.log")
    }

    pub fn log(&self) -> String {
        util::read_log(&self.log_path())
    }

    pub fn log_tail(&self, n: usize) -> String {
        util::log_tail(&self.log_path(), n)
    }

    /// SIGTERM, wait up to `grace`; true if it exited by itself.
    pub fn terminate(&mut self, grace: Duration) -> bool {
        match self.child.as_mut() {
            Some(c) => util::terminate(c, grace).is_some_and(|st| st.success()),
            None => true,
        }
    }
}

impl Drop for LlmHost {
    fn drop(&mut self) {
        if std::thread::panicking() {
            util::print_log_tail("nthlayer-host", &self.log_path());
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
