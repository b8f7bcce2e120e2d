//! Retries, timeouts and deadlines against loopback servers.

mod common;

use std::time::{Duration, Instant};

use common::*;
use nthlayer_llm::LlmError;
use serde_json::json;

#[tokio::test]
async fn retry_after_429_then_success() {
    let srv = serve(vec![
        Reply::Json {
            status: 429,
            headers: vec![("retry-after", "0".into())],
            body: json!({"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}),
        },
        ok(anthropic_reply(triage_value())),
    ])
    .await;
    let c = client(base_config(&srv.url));
    let ctx = Ctx::allowed();
    let resp = c.structured_call(ctx.get(), request("TriageResponse", 0, 5000)).await.unwrap();
    assert_eq!(resp.usage.input_tokens, 120);
    assert_eq!(srv.requests().len(), 2);
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let srv = serve(vec![
        Reply::Json { status: 503, headers: vec![("retry-after", "0.3".into())], body: json!({}) },
        ok(anthropic_reply(triage_value())),
    ])
    .await;
    let c = client(base_config(&srv.url));
    let ctx = Ctx::allowed();
    let t = Instant::now();
    c.structured_call(ctx.get(), request("TriageResponse", 0, 5000)).await.unwrap();
    assert!(t.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn persistent_500_is_unavailable() {
    let srv = serve(vec![status(500, json!({"error":{"message":"boom"}}))]).await;
    let mut cfg = base_config(&srv.url);
    cfg.http_retries = 3;
    let c = client(cfg);
    let ctx = Ctx::allowed();
    let err = c.structured_call(ctx.get(), request("TriageResponse", 2, 5000)).await.unwrap_err();
    assert!(matches!(err, LlmError::Unavailable(_)), "{err}");
    let text = err.to_string();
    assert!(text.contains("HTTP 500") && text.contains("4 attempt"), "{text}");
    // Transport retries only: validation re-asks never start without an answer.
    assert_eq!(srv.requests().len(), 4);
}

#[tokio::test]
async fn connection_refused_is_unavailable() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    drop(l);
    let c = client(base_config(&url));
    let ctx = Ctx::allowed();
    let err = c.structured_call(ctx.get(), request("TriageResponse", 0, 5000)).await.unwrap_err();
    assert!(matches!(err, LlmError::Unavailable(_)), "{err}");
}

#[tokio::test]
async fn hang_times_out_within_bound() {
    let srv = serve(vec![Reply::Hang]).await;
    let c = client(base_config(&srv.url));
    let ctx = Ctx::allowed();
    let t = Instant::now();
    let err = c.structured_call(ctx.get(), request("TriageResponse", 3, 300)).await.unwrap_err();
    let took = t.elapsed();
    assert!(matches!(err, LlmError::Timeout(_)), "{err}");
    assert!(err.to_string().contains("300 ms"), "{err}");
    assert!(took >= Duration::from_millis(290) && took < Duration::from_secs(2), "{took:?}");
}

#[tokio::test]
async fn cycle_deadline_shorter_than_timeout() {
    let srv = serve(vec![Reply::Hang]).await;
    let c = client(base_config(&srv.url));
    let mut ctx = Ctx::allowed();
    ctx.deadline = Some(Instant::now() + Duration::from_millis(200));
    let t = Instant::now();
    let err = c.structured_call(ctx.get(), request("TriageResponse", 3, 30_000)).await.unwrap_err();
    assert!(matches!(err, LlmError::Timeout(_)), "{err}");
    assert!(err.to_string().contains("cycle deadline"), "{err}");
    assert!(t.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn past_deadline_fails_without_a_request() {
    let srv = serve(vec![ok(anthropic_reply(triage_value()))]).await;
    let c = client(base_config(&srv.url));
    let mut ctx = Ctx::allowed();
    ctx.deadline = Some(Instant::now());
    let err = c.structured_call(ctx.get(), request("TriageResponse", 0, 5000)).await.unwrap_err();
    assert!(matches!(err, LlmError::Timeout(_)), "{err}");
    assert!(srv.requests().is_empty());
}

#[tokio::test]
async fn missing_key_is_unavailable() {
    let srv = serve(vec![ok(anthropic_reply(triage_value()))]).await;
    let mut cfg = base_config(&srv.url);
    cfg.anthropic_api_key = None;
    let c = client(cfg);
    let ctx = Ctx::allowed();
    let err = c.structured_call(ctx.get(), request("TriageResponse", 0, 5000)).await.unwrap_err();
    assert!(matches!(err, LlmError::Unavailable(_)), "{err}");
    assert!(err.to_string().contains("ANTHROPIC_API_KEY not set"));
    assert!(srv.requests().is_empty());
}

#[tokio::test]
async fn oversized_reply_is_refused_not_buffered() {
    let huge = "x".repeat(9 << 20);
    let srv = serve(vec![ok(json!({"content": [], "padding": huge}))]).await;
    let c = client(base_config(&srv.url));
    let ctx = Ctx::allowed();
    let e = c.structured_call(ctx.get(), request("TriageResponse", 0, 10_000)).await.unwrap_err();
    assert!(matches!(&e, LlmError::Unavailable(m) if m.contains("exceeds")), "{e}");
    assert_eq!(srv.requests().len(), 1, "a too-large reply is not retried");
}
