//! The HTTP clients against a scripted loopback server: core's retry policy (retried
//! statuses, 409 after a retried POST counts as stored, no retry on 4xx, typed errors when
//! core is down), the CloudEvents envelope on the wire, and Prometheus basic auth.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nthlayer_host::clients::core::CoreClient;
use nthlayer_host::clients::envelope::RecordKind;
use nthlayer_host::clients::prometheus::PrometheusClient;
use nthlayer_host::clients::retry::RetryPolicy;
use nthlayer_host::clients::ClientError;
use serde_json::{json, Value};

#[derive(Debug, Clone)]
struct Seen {
    request_line: String,
    headers: Vec<(String, String)>,
    body: String,
}

/// Serves one scripted (status, body) per connection, in order; records each request.
fn server(script: Vec<(u16, &'static str)>) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for (status, body) in script {
            let Ok((stream, _)) = listener.accept() else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            let mut headers = Vec::new();
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let line = line.trim_end().to_string();
                if line.is_empty() {
                    break;
                }
                let (k, v) = line.split_once(':').unwrap();
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
            let len = headers.iter().find(|(k, _)| k == "content-length").map(|(_, v)| v.parse().unwrap()).unwrap_or(0);
            let mut buf = vec![0; len];
            reader.read_exact(&mut buf).unwrap();
            log.lock().unwrap().push(Seen {
                request_line: request_line.trim().into(),
                headers,
                body: String::from_utf8(buf).unwrap(),
            });
            let mut s = stream;
            let _ = write!(
                s,
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (url, seen)
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
    let (url, seen) = server(vec![(503, "{}"), (429, "{}"), (201, r#"{"id":"asm-1"}"#)]);
    let core = CoreClient::new(&url, fast(), Duration::from_secs(5)).unwrap();
    let id = core.submit(RecordKind::Assessment, &record(), "observe").await.unwrap();
    assert_eq!(id, "asm-1");
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[0].request_line, "POST /assessments HTTP/1.1");
    let env: Value = serde_json::from_str(&seen[2].body).unwrap();
    assert_eq!(env["specversion"], "1.0");
    assert_eq!(env["type"], "io.nthlayer.assessment.slo_status.v1");
    assert_eq!(env["source"], "urn:nthlayer:observe:default");
    assert_eq!(env["subject"], "component:default/checkout");
    assert_eq!(env["data"]["id"], "asm-1");
}

#[tokio::test]
async fn a_409_after_a_retry_means_stored_but_a_first_409_is_a_duplicate() {
    let (url, _) = server(vec![(502, "{}"), (409, r#"{"error":"duplicate","detail":{"id":"asm-1"}}"#)]);
    let core = CoreClient::new(&url, fast(), Duration::from_secs(5)).unwrap();
    assert_eq!(core.submit(RecordKind::Assessment, &record(), "observe").await.unwrap(), "asm-1");

    let (url, seen) = server(vec![(409, r#"{"error":"duplicate","detail":{"id":"asm-1"}}"#)]);
    let core = CoreClient::new(&url, fast(), Duration::from_secs(5)).unwrap();
    let e = core.submit(RecordKind::Assessment, &record(), "observe").await.unwrap_err();
    assert_eq!(e, ClientError::Rejected { status: 409, code: "duplicate".into(), detail: json!({"id":"asm-1"}) });
    assert_eq!(seen.lock().unwrap().len(), 1, "4xx is not retried");
}

#[tokio::test]
async fn persistent_5xx_and_a_dead_core_are_unavailable_after_four_attempts() {
    let (url, seen) = server(vec![(503, "{}"); 4]);
    let core = CoreClient::new(&url, fast(), Duration::from_secs(5)).unwrap();
    let e = core.get_manifests().await.unwrap_err();
    assert!(matches!(&e, ClientError::Unavailable(m) if m.contains("HTTP 503 on all 4 attempts")), "{e:?}");
    assert_eq!(seen.lock().unwrap().len(), 4);

    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port(); // closed again
    let core = CoreClient::new(&format!("http://127.0.0.1:{port}"), fast(), Duration::from_secs(5)).unwrap();
    let e = core.heartbeat("workers", "w-1", &json!({})).await.unwrap_err();
    assert!(matches!(&e, ClientError::Unavailable(m) if m.contains("unreachable after 4 attempts")), "{e:?}");
}

#[tokio::test]
async fn component_state_404_is_none_and_query_parameters_are_encoded() {
    let (url, seen) = server(vec![(404, r#"{"error":"not_found","detail":{"component":"x"}}"#), (200, "[]")]);
    let core = CoreClient::new(&url, fast(), Duration::from_secs(5)).unwrap();
    assert_eq!(core.get_component_state("observe.collect").await.unwrap(), None);
    let f = nthlayer_host::clients::core::VerdictFilter {
        created_after: Some("2026-11-22T15:00:00.000000+00:00".into()),
        limit: 50,
        ..Default::default()
    };
    core.get_verdicts(&f).await.unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen[0].request_line, "GET /component-state/observe.collect HTTP/1.1");
    // '+' must be percent-encoded or core reads it as a space.
    assert!(
        seen[1].request_line.contains("created_after=2026-11-22T15%3A00%3A00.000000%2B00%3A00"),
        "{}",
        seen[1].request_line
    );
    assert!(seen[1].request_line.contains("limit=50"));
}

#[tokio::test]
async fn prometheus_basic_auth_and_api_errors() {
    // Env is process-wide: this is the only test in this binary that sets it.
    std::env::set_var("PROMETHEUS_USERNAME", "prom");
    std::env::set_var("NTHLAYER_METRICS_PASSWORD", "s3cret");
    let (url, seen) = server(vec![
        (200, r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"NaN"]}]}}"#),
        (400, r#"{"status":"error","errorType":"bad_data","error":"parse error at char 3"}"#),
    ]);
    let prom = PrometheusClient::new(&url, Duration::from_secs(5)).unwrap();
    let data = prom.query("up", Some(1.5)).await.unwrap();
    assert_eq!(data["result"][0]["value"][1], "NaN", "values pass through untouched");
    let e = prom.query("up{", None).await.unwrap_err();
    assert_eq!(
        e,
        ClientError::Rejected { status: 400, code: "bad_data".into(), detail: json!("parse error at char 3") }
    );
    let seen = seen.lock().unwrap();
    let auth = seen[0].headers.iter().find(|(k, _)| k == "authorization").map(|(_, v)| v.clone());
    assert_eq!(auth.as_deref(), Some("Basic cHJvbTpzM2NyZXQ="), "PROMETHEUS_USERNAME + NTHLAYER_METRICS_PASSWORD");
    assert!(seen[0].request_line.starts_with("GET /api/v1/query?query=up&time=1.5 "), "{}", seen[0].request_line);
}
