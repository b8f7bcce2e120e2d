//! The sender's direct client against a scripted core: what goes on the wire, and every
//! kind of answer (or none) classified as the reqwest path classifies it.

use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::backend::core::CoreClient;
use crate::backend::envelope::{Emitted, RecordKind};
use crate::backend::retry::RetryPolicy;
use crate::backend::ClientError;
use crate::test_support::{HttpFake, Step};

fn record(id: &str) -> Emitted {
    let Value::Object(m) = json!({"id": id, "kind": "slo_status", "service": "s", "created_at": "t"}) else {
        unreachable!()
    };
    Emitted::new(RecordKind::Assessment, "observe.collect".into(), m)
}

/// The sender's client: its own connections, one attempt per call.
fn direct(url: &str, timeout: Duration) -> CoreClient {
    let c = CoreClient::new(url, RetryPolicy::none(), timeout).unwrap().with_own_connections().unwrap();
    assert!(c.is_direct(), "a plain-HTTP core is not reached directly");
    c
}

fn unavailable(r: Result<String, ClientError>) -> String {
    match r {
        Err(ClientError::Unavailable(m)) => m,
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn a_record_goes_out_as_the_reqwest_path_sent_it() {
    let core = HttpFake::start(vec![Step::post("/assessments").reply(201, r#"{"id":"rec-1"}"#).times(2)]);
    let c = direct(core.url(), Duration::from_secs(30));
    assert_eq!(c.submit(&record("rec-1")).await.unwrap(), "rec-1");
    let reqwest = CoreClient::new(core.url(), RetryPolicy::none(), Duration::from_secs(30)).unwrap();
    assert!(!reqwest.is_direct());
    reqwest.submit(&record("rec-1")).await.unwrap();
    core.finish();
    let [ours, theirs] = &core.seen()[..] else { panic!("{:#?}", core.seen()) };
    assert_eq!(ours.request_line(), theirs.request_line());
    // The body's `time` is the record's own: the same bytes both ways.
    assert_eq!(ours.body, theirs.body);
    let wanted = ["host", "user-agent", "accept", "content-type", "content-length"];
    for h in wanted {
        assert_eq!(ours.header(h), theirs.header(h), "header {h}");
        assert!(ours.header(h).is_some(), "no {h} header");
    }
    let names = |s: &crate::test_support::Seen| {
        let mut n: Vec<String> = s.headers.iter().map(|(k, _)| k.clone()).collect();
        n.sort();
        n
    };
    assert_eq!(names(ours), names(theirs), "a header one path sends and the other does not");
}

#[tokio::test]
async fn core_answers_are_classified_as_before() {
    let err = |code: &str| json!({"error": code, "detail": {"why": code}}).to_string();
    let core = HttpFake::start(vec![
        Step::post("/assessments").body_contains("rec-409").reply(409, &err("duplicate")),
        Step::post("/assessments").body_contains("rec-400").reply(400, &err("assessment_invalid")),
        Step::post("/assessments").body_contains("rec-500").reply(500, &err("internal_error")),
        Step::post("/assessments").body_contains("rec-503").reply(503, "unavailable"),
        Step::post("/assessments").body_contains("rec-ok").reply(201, "not json"),
    ]);
    let c = direct(core.url(), Duration::from_secs(30));
    let rejected = |r: Result<String, ClientError>| match r {
        Err(ClientError::Rejected { status, code, detail }) => (status, code, detail),
        other => panic!("expected Rejected, got {other:?}"),
    };
    // A first attempt's 409 goes back to the sender, which counts it as delivered.
    let (status, code, _) = rejected(c.submit(&record("rec-409")).await);
    assert_eq!((status, code.as_str()), (409, "duplicate"));
    let (status, code, detail) = rejected(c.submit(&record("rec-400")).await);
    assert_eq!((status, code.as_str(), detail), (400, "assessment_invalid", json!({"why": "assessment_invalid"})));
    let (status, code, _) = rejected(c.submit(&record("rec-500")).await);
    assert_eq!((status, code.as_str()), (500, "internal_error"));
    let m = unavailable(c.submit(&record("rec-503")).await);
    assert!(m.contains("answered HTTP 503 on all 1 attempts: unavailable"), "{m}");
    match c.submit(&record("rec-ok")).await {
        Err(ClientError::Invalid(m)) => assert!(m.contains("invalid JSON"), "{m}"),
        other => panic!("a 2xx that is not JSON: {other:?}"),
    }
    core.finish();
}

#[tokio::test]
async fn no_answer_is_a_transport_failure_and_the_next_request_gets_a_new_connection() {
    let core = HttpFake::start(vec![
        Step::post("/assessments").body_contains("rec-closed").close(),
        Step::post("/assessments").body_contains("rec-slow").reply(201, "{}").delay(Duration::from_secs(5)),
        Step::post("/assessments").body_contains("rec-next").reply(201, r#"{"id":"rec-next"}"#),
    ]);
    let c = direct(core.url(), Duration::from_millis(500));
    let m = unavailable(c.submit(&record("rec-closed")).await);
    assert!(m.contains("unreachable after 1 attempts") && m.contains("request failed"), "{m}");
    let m = unavailable(c.submit(&record("rec-slow")).await);
    assert!(m.contains("timed out"), "{m}");
    assert_eq!(c.submit(&record("rec-next")).await.unwrap(), "rec-next");
    core.finish();
}

#[tokio::test]
async fn a_core_that_refuses_connections_is_unreachable() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let c = direct(&format!("http://127.0.0.1:{port}"), Duration::from_secs(5));
    let m = unavailable(c.submit(&record("rec-1")).await);
    assert!(m.contains("unreachable after 1 attempts: connection failed"), "{m}");
}

#[tokio::test]
async fn requests_with_a_query_or_to_another_kind_of_core_stay_on_reqwest() {
    for url in ["https://core.example", "http://core.example/prefix"] {
        let c = CoreClient::new(url, RetryPolicy::none(), Duration::from_secs(1)).unwrap();
        assert!(!c.with_own_connections().unwrap().is_direct(), "{url}");
    }
    let core = HttpFake::start(vec![
        Step::get("/assessments").query_contains("limit=5").reply(200, "[]"),
        Step::put("/component-state/m").reply(200, "{}"),
    ]);
    let c = direct(core.url(), Duration::from_secs(30));
    assert_eq!(c.get_assessments(None, None, 5).await.unwrap(), json!([]));
    c.put_component_state("m", &Value::Object(Map::new())).await.unwrap();
    core.finish();
}

/// Core's head and half its body, then the connection drops. The scripted fake's server
/// cannot send a short body (hyper checks the length it was given), so this one answer is
/// written by hand on a loopback socket.
#[tokio::test]
async fn an_answer_cut_short_is_a_transport_failure() {
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let mut sock = accept_request(&listener).await;
        sock.write_all(
            b"HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-length: 400\r\n\r\n{\"id\":",
        )
        .await
        .unwrap();
        sock.shutdown().await.unwrap();
    });
    let c = direct(&url, Duration::from_secs(30));
    let m = unavailable(c.submit(&record("rec-cut")).await);
    assert!(m.contains("response body failed"), "an answer cut short: {m}");
    server.await.unwrap();
}

/// The next connection, once its whole request (head and the content-length it announces)
/// has been read.
async fn accept_request(listener: &tokio::net::TcpListener) -> tokio::net::TcpStream {
    use tokio::io::AsyncReadExt;
    let (mut sock, _) = listener.accept().await.unwrap();
    let (mut seen, mut buf) = (Vec::new(), [0u8; 4096]);
    while !request_complete(&seen) {
        let n = sock.read(&mut buf).await.unwrap();
        assert!(n > 0, "the client closed before its request was complete");
        seen.extend_from_slice(&buf[..n]);
    }
    sock
}

fn request_complete(seen: &[u8]) -> bool {
    let text = String::from_utf8_lossy(seen);
    let Some((head, body)) = text.split_once("\r\n\r\n") else { return false };
    let length = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap())
        })
        .unwrap_or(0);
    body.len() >= length
}

/// A connection core closed while it sat idle (uvicorn closes idle ones after 5 s) is not
/// a failure: the next request goes on a new connection.
#[tokio::test]
async fn a_connection_core_closed_while_idle_is_replaced() {
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (answered, close) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let mut close = Some(close);
        for id in ["rec-1", "rec-2"] {
            let mut sock = accept_request(&listener).await;
            let body = format!(r#"{{"id":"{id}"}}"#);
            let answer = format!("HTTP/1.1 201 Created\r\ncontent-length: {}\r\n\r\n{body}", body.len());
            sock.write_all(answer.as_bytes()).await.unwrap();
            // Kept alive until the client has taken the answer and put the connection back.
            if let Some(close) = close.take() {
                close.await.unwrap();
            }
        }
    });
    let c = direct(&url, Duration::from_secs(30));
    assert_eq!(c.submit(&record("rec-1")).await.unwrap(), "rec-1");
    answered.send(()).unwrap();
    // Core's close reaches the idle connection.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(c.submit(&record("rec-2")).await.unwrap(), "rec-2");
    server.await.unwrap();
}
