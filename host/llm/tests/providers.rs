//! Wire formats against loopback servers: Anthropic tools, OpenAI tools, json_schema fallback,
//! and the validation re-ask.

mod common;

use common::*;
use nthlayer_llm::{LlmError, OpenAiMode};
use serde_json::{json, Value};

#[tokio::test]
async fn anthropic_tool_use_success() {
    let srv = serve(vec![ok(anthropic_reply(triage_value()))]).await;
    let c = client(base_config(&srv.url));
    let ctx = Ctx::allowed();
    let resp = c.structured_call(ctx.get(), request("TriageResponse", 3, 5000)).await.unwrap();
    assert_eq!(serde_json::from_str::<Value>(&resp.value).unwrap(), triage_value());
    assert_eq!(resp.usage.model, "anthropic/claude-test");
    assert_eq!((resp.usage.input_tokens, resp.usage.output_tokens), (120, 30));

    let reqs = srv.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r.path, "/v1/messages");
    assert_eq!(r.header("x-api-key"), Some(ANTHROPIC_KEY));
    assert_eq!(r.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(r.body["model"], "claude-test");
    assert_eq!(r.body["max_tokens"], 1024);
    assert_eq!(r.body["system"], "You are a triage agent.");
    assert_eq!(r.body["messages"], json!([{"role":"user","content":"Service: fraud-detect"}]));
    assert_eq!(r.body["tools"][0]["name"], "TriageResponse");
    assert_eq!(r.body["tools"][0]["description"], "TriageAgent's structured output.");
    let schema: Value = serde_json::from_str(&schema("TriageResponse")).unwrap();
    assert_eq!(r.body["tools"][0]["input_schema"], schema);
    assert_eq!(r.body["tool_choice"]["type"], "tool");
    assert_eq!(r.body["tool_choice"]["name"], "TriageResponse");
}

#[tokio::test]
async fn openai_tool_calls_success() {
    let srv = serve(vec![ok(openai_tool_reply(&triage_value().to_string()))]).await;
    let mut cfg = base_config(&srv.url);
    cfg.model = "openai/gpt-test".into();
    let c = client(cfg);
    let ctx = Ctx::allowed();
    let resp = c.structured_call(ctx.get(), request("TriageResponse", 3, 5000)).await.unwrap();
    assert_eq!(serde_json::from_str::<Value>(&resp.value).unwrap(), triage_value());
    assert_eq!(resp.usage.model, "openai/gpt-test");
    assert_eq!((resp.usage.input_tokens, resp.usage.output_tokens), (200, 40));

    let r = &srv.requests()[0];
    assert_eq!(r.path, "/v1/chat/completions");
    assert_eq!(r.header("authorization"), Some(format!("Bearer {OPENAI_KEY}").as_str()));
    assert_eq!(r.body["model"], "gpt-test");
    assert_eq!(r.body["messages"][0], json!({"role":"system","content":"You are a triage agent."}));
    assert_eq!(r.body["messages"][1], json!({"role":"user","content":"Service: fraud-detect"}));
    let f = &r.body["tools"][0];
    assert_eq!(f["type"], "function");
    assert_eq!(f["function"]["name"], "TriageResponse");
    // Instructor strips title/description from parameters.
    assert!(f["function"]["parameters"].get("title").is_none());
    assert_eq!(f["function"]["parameters"]["required"], json!(["severity"]));
    assert_eq!(r.body["tool_choice"], json!({"type":"function","function":{"name":"TriageResponse"}}));
    assert!(r.body.get("response_format").is_none());
}

#[tokio::test]
async fn openai_json_schema_fallback_after_tools_refused() {
    let refusal = status(
        400,
        json!({"error":{"message":"\"tools\" is not supported by this server","type":"invalid_request_error","code":null}}),
    );
    let content = ok(openai_content_reply(&format!("```json\n{}\n```", triage_value())));
    let srv = serve(vec![refusal, content]).await;
    let mut cfg = base_config(&srv.url);
    cfg.model = "ollama/llama3".into();
    let c = client(cfg);
    let ctx = Ctx::allowed();
    let resp = c.structured_call(ctx.get(), request("TriageResponse", 0, 5000)).await.unwrap();
    assert_eq!(serde_json::from_str::<Value>(&resp.value).unwrap(), triage_value());
    assert_eq!(resp.usage.model, "ollama/llama3");

    // The client remembers: the next call goes straight to json_schema.
    c.structured_call(ctx.get(), request("TriageResponse", 0, 5000)).await.unwrap();
    let reqs = srv.requests();
    assert_eq!(reqs.len(), 3);
    assert!(reqs[0].body.get("tools").is_some());
    for r in &reqs[1..] {
        assert!(r.body.get("tools").is_none());
        assert!(r.body.get("tool_choice").is_none());
        let rf = &r.body["response_format"];
        assert_eq!(rf["type"], "json_schema");
        assert_eq!(rf["json_schema"]["name"], "TriageResponse");
        assert_eq!(rf["json_schema"]["strict"], false);
        assert_eq!(rf["json_schema"]["schema"]["title"], "TriageResponse");
    }
}

#[tokio::test]
async fn openai_json_schema_mode_from_config() {
    let srv = serve(vec![ok(openai_content_reply(&triage_value().to_string()))]).await;
    let mut cfg = base_config(&srv.url);
    cfg.model = "vllm/qwen".into();
    cfg.openai_mode = OpenAiMode::JsonSchema;
    let c = client(cfg);
    let ctx = Ctx::allowed();
    c.structured_call(ctx.get(), request("TriageResponse", 0, 5000)).await.unwrap();
    let r = &srv.requests()[0];
    assert!(r.body.get("tools").is_none());
    assert_eq!(r.body["response_format"]["type"], "json_schema");
}

#[tokio::test]
async fn anthropic_schema_invalid_answer_is_reasked() {
    let mut bad = triage_value();
    bad["severity"] = json!(9);
    let srv = serve(vec![ok(anthropic_reply(bad)), ok(anthropic_reply(triage_value()))]).await;
    let c = client(base_config(&srv.url));
    let ctx = Ctx::allowed();
    let resp = c.structured_call(ctx.get(), request("TriageResponse", 1, 5000)).await.unwrap();
    assert_eq!(serde_json::from_str::<Value>(&resp.value).unwrap(), triage_value());
    // Usage covers both requests.
    assert_eq!((resp.usage.input_tokens, resp.usage.output_tokens), (240, 60));

    let reqs = srv.requests();
    assert_eq!(reqs.len(), 2);
    let msgs = reqs[1].body["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 3);
    assert_eq!(msgs[1]["role"], "assistant");
    assert_eq!(msgs[1]["content"][1]["type"], "tool_use");
    assert_eq!(msgs[1]["content"][1]["input"]["severity"], 9);
    let result = &msgs[2]["content"][0];
    assert_eq!(msgs[2]["role"], "user");
    assert_eq!(result["type"], "tool_result");
    assert_eq!(result["tool_use_id"], "toolu_01");
    assert_eq!(result["is_error"], true);
    let text = result["content"].as_str().unwrap();
    assert!(text.starts_with("Validation Error found:"), "{text}");
    assert!(text.contains("/severity"), "{text}");
    assert!(text.contains('9'), "{text}");
}

#[tokio::test]
async fn openai_malformed_arguments_are_reasked_then_succeed() {
    let srv = serve(vec![
        ok(openai_tool_reply("{\"severity\": ")),
        ok(openai_tool_reply(r#"{"blast_radius": []}"#)),
        ok(openai_tool_reply(&triage_value().to_string())),
    ])
    .await;
    let mut cfg = base_config(&srv.url);
    cfg.model = "gpt-4o".into();
    let c = client(cfg);
    let ctx = Ctx::allowed();
    c.structured_call(ctx.get(), request("TriageResponse", 3, 5000)).await.unwrap();
    let reqs = srv.requests();
    assert_eq!(reqs.len(), 3);
    let second = reqs[1].body["messages"].as_array().unwrap();
    assert_eq!(second[2]["role"], "assistant");
    assert_eq!(second[2]["tool_calls"][0]["id"], "call_1");
    assert_eq!(second[3]["role"], "tool");
    assert_eq!(second[3]["tool_call_id"], "call_1");
    assert!(second[3]["content"].as_str().unwrap().contains("not valid JSON"));
    let third = reqs[2].body["messages"].as_array().unwrap();
    let err = third[5]["content"].as_str().unwrap();
    assert!(err.contains("severity") && err.contains("required"), "{err}");
}

#[tokio::test]
async fn exhausted_reasks_are_invalid() {
    let mut bad = triage_value();
    bad["confidence"] = json!(7.5);
    let srv = serve(vec![ok(anthropic_reply(bad))]).await;
    let c = client(base_config(&srv.url));
    let ctx = Ctx::allowed();
    let err = c.structured_call(ctx.get(), request("TriageResponse", 1, 5000)).await.unwrap_err();
    assert!(matches!(err, LlmError::Invalid(_)), "{err}");
    assert!(err.to_string().contains("/confidence"), "{err}");
    // max_retries + 1 requests, like the reference (summary 2, triage 4).
    assert_eq!(srv.requests().len(), 2);
    // Tokens of failed attempts are still accounted.
    let snap = c.metrics().snapshot();
    assert_eq!(snap["series"][0]["input_tokens"], 240);
    assert_eq!(snap["series"][0]["errors"]["invalid"], 1);
}

#[tokio::test]
async fn bad_request_schema_is_invalid_before_any_request() {
    let srv = serve(vec![ok(anthropic_reply(triage_value()))]).await;
    let c = client(base_config(&srv.url));
    let ctx = Ctx::allowed();
    let mut req = request("TriageResponse", 0, 5000);
    req.schema = "{not json".into();
    let err = c.structured_call(ctx.get(), req).await.unwrap_err();
    assert!(matches!(err, LlmError::Invalid(_)), "{err}");
    let mut req = request("TriageResponse", 0, 5000);
    req.schema_name = "Triage Response!".into();
    let err = c.structured_call(ctx.get(), req).await.unwrap_err();
    assert!(matches!(err, LlmError::Invalid(_)), "{err}");
    assert!(srv.requests().is_empty());
}

#[tokio::test]
async fn client_error_is_rejected_with_code() {
    let srv = serve(vec![status(
        400,
        json!({"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: too large"}}),
    )])
    .await;
    let c = client(base_config(&srv.url));
    let ctx = Ctx::allowed();
    let err = c.structured_call(ctx.get(), request("TriageResponse", 3, 5000)).await.unwrap_err();
    match err {
        LlmError::Rejected { status, code, detail } => {
            assert_eq!(status, 400);
            assert_eq!(code, "invalid_request_error");
            let d: Value = serde_json::from_str(&detail).unwrap();
            assert_eq!(d, "max_tokens: too large");
        }
        other => panic!("{other}"),
    }
    assert_eq!(srv.requests().len(), 1);
}
