//! The canned stub: deterministic, schema-valid, no network, reference values.

mod common;

use common::*;
use nthlayer_llm::{LlmClient, LlmConfig, LlmError, CANNED_SCHEMAS};
use serde_json::{json, Value};

fn stub_client() -> LlmClient {
    // Port 9 (discard) on loopback: any attempt to use the network would fail loudly.
    let mut cfg = base_config("http://127.0.0.1:9");
    cfg.stub = true;
    client(cfg)
}

#[tokio::test]
async fn canned_outputs_are_deterministic_and_schema_valid() {
    let c = stub_client();
    let ctx = Ctx::allowed();
    for name in CANNED_SCHEMAS {
        let a = c.structured_call(ctx.get(), request(name, 0, 1000)).await.unwrap();
        let b = c.structured_call(ctx.get(), request(name, 0, 1000)).await.unwrap();
        assert_eq!(a.value, b.value, "{name}");
        assert_eq!(a.value, nthlayer_llm::canned_value(name).unwrap().to_string());
        assert_eq!(a.usage.model, "stub/canned");
        assert_eq!((a.usage.input_tokens, a.usage.output_tokens), (0, 0));
        let schema: Value = serde_json::from_str(&schema(name)).unwrap();
        let value: Value = serde_json::from_str(&a.value).unwrap();
        assert!(jsonschema::is_valid(&schema, &value), "{name}: {value}");
    }
}

#[tokio::test]
async fn canned_values_match_the_reference() {
    let c = stub_client();
    let ctx = Ctx::allowed();
    let summary = c.structured_call(ctx.get(), request("SnapshotSummary", 1, 5000)).await.unwrap();
    assert_eq!(
        summary.value,
        r#"{"summary":"Stub correlation summary: events grouped by domain.","notable_omissions":[],"confidence":0.5}"#
    );
    let triage = c.structured_call(ctx.get(), request("TriageResponse", 3, 15000)).await.unwrap();
    let v: Value = serde_json::from_str(&triage.value).unwrap();
    assert_eq!(
        v,
        json!({"severity":2,"blast_radius":["fraud-detect"],"affected_slos":["reversal_rate"],
               "assigned_team":"payments","reasoning":"Stub triage: severity 2 from canned LLM.",
               "confidence":0.7})
    );
}

#[tokio::test]
async fn unknown_schema_is_invalid() {
    let c = stub_client();
    let ctx = Ctx::allowed();
    let mut req = request("TriageResponse", 0, 1000);
    req.schema_name = "SomethingElse".into();
    let err = c.structured_call(ctx.get(), req).await.unwrap_err();
    assert!(matches!(err, LlmError::Invalid(_)), "{err}");
    assert!(err.to_string().contains("no canned response registered"));
}

#[tokio::test]
async fn stub_still_needs_the_grant() {
    let c = stub_client();
    let mut ctx = Ctx::allowed();
    ctx.policy.allowed = false;
    let err = c.structured_call(ctx.get(), request("SnapshotSummary", 0, 1000)).await.unwrap_err();
    assert!(matches!(err, LlmError::Denied(_)));
}

#[test]
fn stub_env_switch() {
    let cfg = LlmConfig::from_lookup(|k| (k == "NTHLAYER_LLM_STUB").then(|| "Canned ".into()));
    assert!(cfg.stub);
}
