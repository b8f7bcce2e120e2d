//! The HTTP clients against the scripted loopback server (test_support::HttpFake): core's retry policy (retried
//! statuses, 409 after a retried POST counts as stored, no retry on 4xx, typed errors when
//! core is down), the CloudEvents envelope on the wire, and Prometheus basic auth.

use std::time::Duration;

use nthlayer_host::backend::core::{CoreClient, VerdictFilter};
use nthlayer_host::backend::envelope::{Emitted, RecordKind};
use nthlayer_host::backend::prometheus::PrometheusClient;
use nthlayer_host::backend::retry::RetryPolicy;
use nthlayer_host::backend::ClientError;
use nthlayer_host::test_support::{HttpFake, Step};
use serde_json::{json, Value};

/// One scripted (status, body) per request, in order, whatever the request.
fn server(script: Vec<(u16, &'static str)>) -> HttpFake {
    HttpFake::start(script.into_iter().map(|(status, body)| Step::any().reply(status, body)).collect())
}

fn fast() -> RetryPolicy {
    RetryPolicy { retries: 3, first_delay: Duration::from_millis(10), max_delay: Duration::from_millis(50) }
}

fn record() -> serde_json::Map<String, Value> {
    json!({"id":"asm-1","created_at":"2026-11-22T15:08:47.615105+00:00","kind":"slo_status","service":"checkout","data":{}})
        .as_object()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn retried_statuses_then_success_and_the_envelope_on_the_wire() {
    let fake = HttpFake::start(vec![
        Step::post("/assessments").reply(503, "{}"),
        Step::post("/assessments").reply(429, "{}"),
        Step::post("/assessments").reply(201, r#"{"id":"asm-1"}"#),
    ]);
    let core = CoreClient::new(fake.url(), fast(), Duration::from_secs(5)).unwrap();
    let id = core.submit(&Emitted::new(RecordKind::Assessment, "observe".into(), record())).await.unwrap();
    assert_eq!(id, "asm-1");
    fake.finish();
    let seen = fake.seen();
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[0].request_line(), "POST /assessments HTTP/1.1");
    let env: Value = serde_json::from_str(&seen[2].body).unwrap();
    assert_eq!(env["specversion"], "1.0");
    assert_eq!(env["type"], "io.nthlayer.assessment.slo_status.v1");
    assert_eq!(env["source"], "urn:nthlayer:observe:default");
    assert_eq!(env["subject"], "component:default/checkout");
    assert_eq!(env["data"]["id"], "asm-1");
}

#[tokio::test]
async fn a_409_after_a_retry_means_stored_but_a_first_409_is_a_duplicate() {
    let fake = server(vec![(502, "{}"), (409, r#"{"error":"duplicate","detail":{"id":"asm-1"}}"#)]);
    let core = CoreClient::new(fake.url(), fast(), Duration::from_secs(5)).unwrap();
    assert_eq!(core.submit(&Emitted::new(RecordKind::Assessment, "observe".into(), record())).await.unwrap(), "asm-1");

    let fake = server(vec![(409, r#"{"error":"duplicate","detail":{"id":"asm-1"}}"#)]);
    let core = CoreClient::new(fake.url(), fast(), Duration::from_secs(5)).unwrap();
    let e = core.submit(&Emitted::new(RecordKind::Assessment, "observe".into(), record())).await.unwrap_err();
    assert_eq!(e, ClientError::Rejected { status: 409, code: "duplicate".into(), detail: json!({"id":"asm-1"}) });
    assert_eq!(fake.seen().len(), 1, "4xx is not retried");
}

#[tokio::test]
async fn persistent_5xx_and_a_dead_core_are_unavailable_after_four_attempts() {
    let fake = HttpFake::start(vec![Step::get("/manifests").reply(503, "{}").times(4)]);
    let core = CoreClient::new(fake.url(), fast(), Duration::from_secs(5)).unwrap();
    let e = core.get_manifests().await.unwrap_err();
    assert!(matches!(&e, ClientError::Unavailable(m) if m.contains("HTTP 503 on all 4 attempts")), "{e:?}");
    fake.finish();

    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port(); // closed again
    let core = CoreClient::new(&format!("http://127.0.0.1:{port}"), fast(), Duration::from_secs(5)).unwrap();
    let e = core.heartbeat("workers", "w-1", &json!({})).await.unwrap_err();
    assert!(matches!(&e, ClientError::Unavailable(m) if m.contains("unreachable after 4 attempts")), "{e:?}");
}

#[tokio::test]
async fn component_state_404_is_none_and_query_parameters_are_encoded() {
    let fake = HttpFake::start(vec![
        Step::get("/component-state/observe.collect").reply(404, r#"{"error":"not_found","detail":{"component":"x"}}"#),
        Step::get("/verdicts").query_contains("limit=50").reply(200, "[]"),
    ]);
    let core = CoreClient::new(fake.url(), fast(), Duration::from_secs(5)).unwrap();
    assert_eq!(core.get_component_state("observe.collect").await.unwrap(), None);
    let f = VerdictFilter {
        created_after: Some("2026-11-22T15:00:00.000000+00:00".into()),
        limit: 50,
        ..Default::default()
    };
    core.get_verdicts(&f).await.unwrap();
    fake.finish();
    let seen = fake.seen();
    // '+' must be percent-encoded or core reads it as a space.
    let line = seen[1].request_line();
    assert!(line.contains("created_after=2026-11-22T15%3A00%3A00.000000%2B00%3A00"), "{line}");
}

#[tokio::test]
async fn prometheus_basic_auth_and_api_errors() {
    let fake = HttpFake::start(vec![
        Step::get("/api/v1/query").reply(
            200,
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"NaN"]}]}}"#,
        ),
        Step::get("/api/v1/query")
            .reply(400, r#"{"status":"error","errorType":"bad_data","error":"parse error at char 3"}"#),
    ]);
    let prom = PrometheusClient::new(fake.url(), Duration::from_secs(5)).unwrap().with_basic_auth("prom", "s3cret");
    let data = prom.query("up", Some(1.5)).await.unwrap();
    assert_eq!(
        data.get(),
        r#"{"resultType":"vector","result":[{"metric":{},"value":[1,"NaN"]}]}"#,
        "passed through untouched"
    );
    let e = prom.query("up{", None).await.unwrap_err();
    assert_eq!(
        e,
        ClientError::Rejected { status: 400, code: "bad_data".into(), detail: json!("parse error at char 3") }
    );
    fake.finish();
    let seen = fake.seen();
    // The environment that sets these is read by the room's config (prometheus/config.rs).
    assert_eq!(seen[0].header("authorization"), Some("Basic cHJvbTpzM2NyZXQ="));
    assert!(seen[0].request_line().starts_with("GET /api/v1/query?query=up&time=1.5 "), "{}", seen[0].request_line());
}
