//! The llm import's rules, in-process against the scripted fake speaking the
//! OpenAI-compatible wire: the grant, the request cap, "not configured", the cycle deadline.

use std::time::{Duration, Instant};

use nthlayer_llm::LlmConfig;

use crate::bindings::latest::nthlayer::worker::llm::{Host, StructuredRequest};
use crate::bindings::HostError;
use crate::policy::grants::Grants;
use crate::policy::table::Capability;
use crate::policy::limits::Limits;
use crate::capability::HasRooms;
use crate::store::StoreData;
use crate::test_support::{self, HttpFake, Step};

fn request(user: &str) -> StructuredRequest {
    StructuredRequest {
        system: "You triage.".into(),
        user: user.into(),
        schema: r#"{"type":"object","properties":{"severity":{"type":"integer"}},"required":["severity"]}"#.into(),
        schema_name: "Triage".into(),
        max_tokens: 100,
        timeout_ms: 0,
        max_retries: 0,
    }
}

fn store(fake: Option<&HttpFake>, grants: Grants, limits: Limits) -> StoreData {
    let provider = fake.map(|f| LlmConfig {
        model: "openai/test-model".into(),
        openai_api_base: f.url().into(),
        openai_api_key: Some("test-key".into()),
        http_retries: 0,
        ..LlmConfig::default()
    });
    let services = test_support::services(|c| c.llm.provider = provider);
    test_support::store("mine", services, grants, limits)
}

fn granted() -> Grants {
    test_support::granted(&[Capability::Llm])
}

const ANSWER: &str = r#"{"choices":[{"message":{"content":"{\"severity\":2}"}}],
    "usage":{"prompt_tokens":7,"completion_tokens":3}}"#;

#[tokio::test]
async fn without_the_grant_no_model_is_asked_and_the_error_names_the_flag() {
    let fake = HttpFake::start(vec![]);
    let mut s = store(Some(&fake), Grants::none(), Limits::default());
    let e = s.llm().structured_call(request("db down")).await.unwrap_err();
    let want = "module mine has no 'llm' grant; start the host with --grant mine=llm (currently: log only)";
    assert!(matches!(&e, HostError::Denied(m) if m == want), "{e:?}");
    fake.finish();
}

#[tokio::test]
async fn over_the_cap_is_invalid_and_no_provider_is_unavailable() {
    let fake = HttpFake::start(vec![]);
    let mut s = store(Some(&fake), granted(), Limits { max_request_bytes: 64, ..Limits::default() });
    let e = s.llm().structured_call(request(&"x".repeat(100))).await.unwrap_err();
    assert!(matches!(&e, HostError::Invalid(m) if m.starts_with("llm request of") && m.contains("max_request_bytes")));
    fake.finish();

    let mut s = store(None, granted(), Limits::default());
    let e = s.llm().structured_call(request("db down")).await.unwrap_err();
    assert!(matches!(&e, HostError::Unavailable(m) if m == "not configured"), "{e:?}");
}

#[tokio::test]
async fn a_slow_model_is_cut_at_the_cycle_deadline_and_a_quick_one_answers() {
    let fake = HttpFake::start(vec![
        Step::post("/chat/completions").delay(Duration::from_secs(3)).reply(200, ANSWER),
        Step::post("/chat/completions").body_contains("test-model").reply(200, ANSWER),
    ]);
    let mut s = store(Some(&fake), granted(), test_support::limits_with_wall(Duration::from_millis(300)));
    let t = Instant::now();
    let e = s.llm().structured_call(request("db down")).await.unwrap_err();
    assert!(matches!(&e, HostError::Timeout(m) if m.contains("the cycle deadline")), "{e:?}");
    assert!(t.elapsed() < Duration::from_secs(2), "took {:?}", t.elapsed());

    let mut s = store(Some(&fake), granted(), Limits::default());
    let r = s.llm().structured_call(request("db down")).await.unwrap();
    assert_eq!(serde_json::from_str::<serde_json::Value>(&r.value).unwrap(), serde_json::json!({"severity": 2}));
    assert_eq!((r.usage.input_tokens, r.usage.output_tokens), (7, 3));
    fake.finish();
}
