//! Operator control (grants, budgets), key hygiene and metrics.

mod common;

use std::time::Duration;

use common::*;
use nthlayer_llm::{Budget, CycleBudget, LlmClient, LlmError, Policy};
use serde_json::json;

#[tokio::test]
async fn not_granted_is_denied_without_a_request() {
    let srv = serve(vec![ok(anthropic_reply(triage_value()))]).await;
    let c = client(base_config(&srv.url));
    let mut ctx = Ctx::allowed();
    ctx.policy = Policy::default();
    let err = c.structured_call(ctx.get(), request("TriageResponse", 0, 5000)).await.unwrap_err();
    match &err {
        LlmError::Denied(t) => {
            assert!(t.starts_with("llm not granted to module respond: add"), "{t}")
        }
        other => panic!("{other}"),
    }
    assert!(srv.requests().is_empty());
    assert_eq!(c.metrics().snapshot()["series"][0]["errors"]["denied"], 1);
}

#[tokio::test]
async fn per_cycle_call_cap() {
    let srv = serve(vec![ok(anthropic_reply(triage_value()))]).await;
    let c = client(base_config(&srv.url));
    let mut ctx = Ctx::allowed();
    ctx.policy.max_calls_per_cycle = Some(2);
    for _ in 0..2 {
        c.structured_call(ctx.get(), request("TriageResponse", 0, 5000)).await.unwrap();
    }
    let err = c.structured_call(ctx.get(), request("TriageResponse", 0, 5000)).await.unwrap_err();
    assert!(matches!(err, LlmError::Denied(_)), "{err}");
    assert!(err.to_string().contains("max_calls_per_cycle=2"), "{err}");
    assert_eq!(srv.requests().len(), 2);
    // A new cycle starts with a fresh counter.
    ctx.cycle = CycleBudget::new();
    c.structured_call(ctx.get(), request("TriageResponse", 0, 5000)).await.unwrap();
}

#[tokio::test]
async fn hourly_token_budget() {
    let srv = serve(vec![ok(anthropic_reply(triage_value()))]).await;
    let c = LlmClient::with_budget(base_config(&srv.url), Budget::with_window(Duration::from_millis(400))).unwrap();
    let mut ctx = Ctx::allowed();
    ctx.policy.max_tokens_per_hour = Some(200);
    // 150 tokens: under the limit, so the call runs.
    c.structured_call(ctx.get(), request("TriageResponse", 0, 5000)).await.unwrap();
    assert_eq!(c.budget().tokens_in_window("respond"), 150);
    // 300 > 200: the next call is refused.
    c.structured_call(ctx.get(), request("TriageResponse", 0, 5000)).await.unwrap();
    let err = c.structured_call(ctx.get(), request("TriageResponse", 0, 5000)).await.unwrap_err();
    match &err {
        LlmError::Denied(t) => assert!(t.starts_with("token budget exhausted:"), "{t}"),
        other => panic!("{other}"),
    }
    assert_eq!(srv.requests().len(), 2);
    // Other modules have their own window.
    let other = CycleBudget::new();
    let ctx2 = nthlayer_llm::CallContext { module: "correlate", policy: &ctx.policy, cycle: &other, deadline: None };
    c.structured_call(ctx2, request("TriageResponse", 0, 5000)).await.unwrap();
    // Spend rolls out of the window.
    tokio::time::sleep(Duration::from_millis(450)).await;
    c.structured_call(ctx.get(), request("TriageResponse", 0, 5000)).await.unwrap();
}

#[tokio::test]
async fn key_like_model_is_rejected_without_echo() {
    let srv = serve(vec![ok(anthropic_reply(triage_value()))]).await;
    for model in [
        "sk-ant-api03-abcdefSECRETvalue123456",
        "sk-proj-SECRETvalue123456",
        "key-SECRETvalue123456",
        "Bearer SECRETvalue123456",
    ] {
        let mut cfg = base_config(&srv.url);
        cfg.model = model.into();
        let c = client(cfg);
        let ctx = Ctx::allowed();
        let err = c.structured_call(ctx.get(), request("TriageResponse", 0, 5000)).await.unwrap_err();
        assert!(matches!(err, LlmError::Unavailable(_)), "{err}");
        let text = err.to_string();
        assert!(text.contains("looks like an API key"), "{text}");
        assert!(!text.contains("SECRET"), "{text}");
        assert!(!format!("{:?}", c.config()).contains("SECRET"));
        assert!(!c.metrics().snapshot().to_string().contains("SECRET"));
    }
    // The same applies to an operator's per-module override.
    let c = client(base_config(&srv.url));
    let mut ctx = Ctx::allowed();
    ctx.policy.model_override = Some("sk-ant-SECRETvalue123456".into());
    let err = c.structured_call(ctx.get(), request("TriageResponse", 0, 5000)).await.unwrap_err();
    assert!(!err.to_string().contains("SECRET"));
    assert!(srv.requests().is_empty());
}

#[tokio::test]
async fn provider_errors_are_redacted() {
    // Providers that echo the credential back, in 4xx and 5xx bodies.
    let echo = format!("invalid x-api-key: {ANTHROPIC_KEY}");
    let srv =
        serve(vec![status(401, json!({"type":"error","error":{"type":"authentication_error","message": echo}}))]).await;
    let c = client(base_config(&srv.url));
    let ctx = Ctx::allowed();
    let err = c.structured_call(ctx.get(), request("TriageResponse", 0, 5000)).await.unwrap_err();
    assert!(matches!(err, LlmError::Rejected { status: 401, .. }), "{err}");
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("TESTKEY"), "{shown}");
    assert!(shown.contains("[REDACTED]"), "{shown}");

    // A key of no recognisable shape is still removed, because the client knows it.
    let odd_key = "zz-plain-credential-42";
    let srv =
        serve(vec![status(502, json!({"error":{"message": format!("upstream rejected Authorization {odd_key}")}}))])
            .await;
    let mut cfg = base_config(&srv.url);
    cfg.model = "openai/gpt-test".into();
    cfg.openai_api_key = Some(odd_key.into());
    cfg.http_retries = 0;
    let c = client(cfg);
    let err = c.structured_call(ctx.get(), request("TriageResponse", 0, 5000)).await.unwrap_err();
    assert!(matches!(err, LlmError::Unavailable(_)), "{err}");
    assert!(!format!("{err} {err:?}").contains("plain-credential"), "{err}");
}

#[tokio::test]
async fn metrics_snapshot_counts_per_module_and_model() {
    let srv = serve(vec![
        ok(anthropic_reply(triage_value())),
        status(400, json!({"error":{"type":"invalid_request_error","message":"no"}})),
    ])
    .await;
    let c = client(base_config(&srv.url));
    let ctx = Ctx::allowed();
    c.structured_call(ctx.get(), request("TriageResponse", 0, 5000)).await.unwrap();
    let _ = c.structured_call(ctx.get(), request("TriageResponse", 0, 5000)).await;
    let snap = c.metrics().snapshot();
    let s = &snap["series"][0];
    assert_eq!(s["module"], "respond");
    assert_eq!(s["model"], "anthropic/claude-test");
    assert_eq!(s["calls"], 2);
    assert_eq!(s["errors"], json!({"rejected": 1}));
    assert_eq!(s["input_tokens"], 120);
    assert_eq!(s["output_tokens"], 30);
    assert_eq!(s["latency_count"], 2);
}
