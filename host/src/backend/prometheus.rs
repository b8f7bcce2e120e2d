//! Prometheus HTTP API client (instant, range, batched instant and range queries).
//!
//! Basic auth (capability/prometheus/config.rs: the reference's environment) is sent with every query, not only
//! observe.collect's (the reference's drift, topology and measure go unauthenticated and fail
//! against a protected Prometheus).
//!
//! An answer's `data` is kept as the text Prometheus sent ([`RawValue`]: checked to be JSON,
//! never built into a tree): the guest gets that text, and nothing in the host reads inside
//! it. Parsing it into a `Value` and writing it out again cost a collect cycle at 1,000
//! services ~10 MB of short-lived heap and the CPU of both (docs/BENCH.md, "Memory").
//!
//! Queries whose parameters fit in the URL go over the client's own HTTP/1 connections
//! (backend/core_direct.rs) when Prometheus is plain `http://` without a path prefix or a
//! proxy: the same request line, headers and timeout as reqwest's, without its per-request
//! URL parsing, header map and pool (reqwest's requests with their connection tasks were
//! about a quarter of a 1,000-service collect cycle's host CPU; docs/BENCH.md, "Queries
//! over direct connections"). Everything else, the long queries' POST form included, stays
//! on reqwest.

use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{self, StreamExt};
use reqwest::Client;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use crate::backend::core_direct::Direct;
use crate::backend::describe;
use crate::backend::{user_agent, ClientError};

/// Longest parameter text sent in a URL (4 KiB: well inside the 8 KiB request lines that
/// common proxies accept); longer queries go as a POST form body.
pub const MAX_GET_PARAMS: usize = 4096;

/// A query's answer: the `data` of a successful response, as Prometheus wrote it.
pub type Answer = Box<RawValue>;

/// The API's envelope: `{"status":"success","data":…}` or
/// `{"status":"error","errorType":"bad_data","error":"…"}`; other fields (warnings) ignored.
#[derive(Deserialize)]
struct Envelope {
    status: Option<Value>,
    data: Option<Box<RawValue>>,
    #[serde(rename = "errorType")]
    error_type: Option<Value>,
    error: Option<Value>,
}

#[derive(Clone)]
pub struct PrometheusClient {
    http: Client,
    base: String,
    auth: Option<(String, String)>,
    /// Concurrent queries in one batch.
    batch_parallelism: usize,
    timeout: Duration,
    /// The direct connections, when Prometheus can be reached over them (module doc).
    direct: Option<Arc<Direct>>,
}

impl PrometheusClient {
    /// An empty `base` is "not configured": every query answers unavailable.
    pub fn new(base: &str, timeout: Duration) -> anyhow::Result<Self> {
        let http = Client::builder().user_agent(user_agent()).timeout(timeout).build()?;
        let base = base.trim_end_matches('/').to_string();
        let direct = Direct::for_base(&base, &user_agent(), timeout).map(Arc::new);
        Ok(PrometheusClient { http, base, auth: None, batch_parallelism: 8, timeout, direct })
    }

    pub fn with_basic_auth(mut self, user: &str, password: &str) -> Self {
        self.auth = Some((user.to_string(), password.to_string()));
        // The header reqwest would send, written by reqwest, carried by every direct request.
        let header = self.http.get(&self.base).basic_auth(user, Some(password)).build().ok().and_then(|r| {
            let v = r.headers().get(reqwest::header::AUTHORIZATION)?.clone();
            Some((reqwest::header::AUTHORIZATION, v))
        });
        self.direct = header.and_then(|(name, value)| {
            Direct::for_base(&self.base, &user_agent(), self.timeout).map(|d| Arc::new(d.with_header(name, value)))
        });
        self
    }

    /// Whether short queries go over the direct connections (tests).
    #[cfg(test)]
    fn is_direct(&self) -> bool {
        self.direct.is_some()
    }

    /// GET with the parameters in the URL, as the reference sends them; POST with a form
    /// body once they are longer than [`MAX_GET_PARAMS`] (Prometheus serves both on
    /// /api/v1/query and /api/v1/query_range), so a long but legal query is not lost to a
    /// proxy's or Prometheus' URI length limit.
    async fn get(&self, path: &str, params: &[(&str, String)]) -> Result<Answer, ClientError> {
        if self.base.is_empty() {
            return Err(ClientError::Unavailable("Prometheus not configured (--prometheus-url)".into()));
        }
        let len: usize = params.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
        if let Some(direct) = self.direct.as_ref().filter(|_| len <= MAX_GET_PARAMS) {
            // The query string as reqwest's `query()` writes it (form-urlencoded).
            let mut target = String::with_capacity(path.len() + 1 + len * 3 / 2);
            target.push_str(path);
            target.push('?');
            let start = target.len();
            let target = form_urlencoded::Serializer::for_suffix(target, start).extend_pairs(params).finish();
            let (status, body) = direct.exchange(&http::Method::GET, &target, None).await.map_err(|f| {
                if f.timed_out() {
                    ClientError::Timeout(format!("Prometheus at {} timed out", self.base))
                } else {
                    ClientError::Unavailable(format!("Prometheus at {} unreachable: {}", self.base, f.0))
                }
            })?;
            return self.answer(status, &body);
        }
        let url = format!("{}{}", self.base, path);
        let mut req =
            if len > MAX_GET_PARAMS { self.http.post(&url).form(params) } else { self.http.get(&url).query(params) };
        if let Some((u, p)) = &self.auth {
            req = req.basic_auth(u, Some(p));
        }
        let resp = req.send().await.map_err(|e| {
            if e.is_timeout() {
                ClientError::Timeout(format!("Prometheus at {} timed out", self.base))
            } else {
                ClientError::Unavailable(format!("Prometheus at {} unreachable: {}", self.base, describe(&e)))
            }
        })?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await.map_err(|e| ClientError::Unavailable(describe(&e)))?;
        self.answer(status, &body)
    }

    /// What an answer means, however it came: `data` as sent, the API's error, or the status.
    fn answer(&self, status: u16, body: &[u8]) -> Result<Answer, ClientError> {
        let parsed: Option<Envelope> = serde_json::from_slice(body).ok();
        match parsed {
            Some(Envelope { status: Some(s), data, .. }) if s.as_str() == Some("success") => {
                Ok(data.unwrap_or_else(|| RawValue::NULL.to_owned()))
            }
            // The API's own error shape.
            Some(Envelope { status: Some(_), error_type, error, .. }) => Err(ClientError::Rejected {
                status,
                code: error_type.as_ref().and_then(Value::as_str).unwrap_or("error").to_string(),
                detail: error.unwrap_or(Value::Null),
            }),
            _ if status >= 500 => {
                Err(ClientError::Unavailable(format!("Prometheus at {} answered HTTP {status}", self.base)))
            }
            _ => Err(ClientError::from_response(status, body)),
        }
    }

    pub async fn query(&self, promql: &str, at: Option<f64>) -> Result<Answer, ClientError> {
        let mut p = vec![("query", promql.to_string())];
        if let Some(t) = at {
            p.push(("time", t.to_string()));
        }
        self.get("/api/v1/query", &p).await
    }

    pub async fn query_range(&self, promql: &str, start: f64, end: f64, step: &str) -> Result<Answer, ClientError> {
        let p = [
            ("query", promql.to_string()),
            ("start", start.to_string()),
            ("end", end.to_string()),
            ("step", step.to_string()),
        ];
        self.get("/api/v1/query_range", &p).await
    }

    /// Runs instant queries concurrently (bounded) and answers in input order.
    pub async fn query_batch(&self, promql: &[String], at: Option<f64>) -> Vec<Result<Answer, ClientError>> {
        // Owned futures: each holds its own client handle and query text.
        let calls: Vec<_> = promql
            .iter()
            .map(|q| {
                let (client, q) = (self.clone(), q.clone());
                async move { client.query(&q, at).await }
            })
            .collect();
        stream::iter(calls).buffered(self.batch_parallelism).collect().await
    }

    /// Instant queries each at its own time, run as [`Self::query_batch`] runs them.
    pub async fn query_at_batch(&self, queries: &[(String, Option<f64>)]) -> Vec<Result<Answer, ClientError>> {
        let calls: Vec<_> = queries
            .iter()
            .map(|(q, at)| {
                let (client, q, at) = (self.clone(), q.clone(), *at);
                async move { client.query(&q, at).await }
            })
            .collect();
        stream::iter(calls).buffered(self.batch_parallelism).collect().await
    }

    /// Range queries `(promql, start, end, step)`, run as [`Self::query_batch`] runs them.
    pub async fn query_range_batch(&self, queries: &[(String, f64, f64, String)]) -> Vec<Result<Answer, ClientError>> {
        let calls: Vec<_> = queries
            .iter()
            .map(|(q, start, end, step)| {
                let (client, q, start, end, step) = (self.clone(), q.clone(), *start, *end, step.clone());
                async move { client.query_range(&q, start, end, &step).await }
            })
            .collect();
        stream::iter(calls).buffered(self.batch_parallelism).collect().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{HttpFake, Matcher, Step};

    const EMPTY: &str = r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;

    #[tokio::test]
    async fn short_queries_go_in_the_url_long_ones_in_a_form_body() {
        let fake = HttpFake::start(vec![
            Step::get("/api/v1/query").query(Matcher::Equals("query=up&time=10".into())).reply(200, EMPTY),
            Step::post("/api/v1/query").body_contains("query=vector%281%29+%2B+vector%280%29").reply(200, EMPTY),
            Step::post("/api/v1/query_range").body_contains("&start=0&end=60&step=15s").reply(200, EMPTY),
        ]);
        let p = PrometheusClient::new(fake.url(), Duration::from_secs(5)).unwrap();
        p.query("up", Some(10.0)).await.unwrap();
        let long = format!("vector(1){}", " + vector(0)".repeat(1000));
        p.query(&long, None).await.unwrap();
        p.query_range(&long, 0.0, 60.0, "15s").await.unwrap();
        let seen = fake.seen();
        assert_eq!(seen[0].request_line(), "GET /api/v1/query?query=up&time=10 HTTP/1.1");
        assert_eq!(seen[0].body, "");
        assert!(seen[1].body.starts_with("query=vector%281%29"), "{}", &seen[1].body[..80]);
        assert!(seen[2].body.ends_with("&start=0&end=60&step=15s"), "{}", &seen[2].body[seen[2].body.len() - 40..]);
        fake.finish();
    }

    /// The direct connections send what reqwest sends (request line, headers, basic auth)
    /// and read a timeout as reqwest's path does.
    #[tokio::test]
    async fn direct_queries_are_the_requests_reqwest_sends() {
        let fake = HttpFake::start(vec![
            Step::get("/api/v1/query").reply(200, EMPTY).times(2),
            Step::get("/api/v1/query").hang().times(2),
        ]);
        let direct = PrometheusClient::new(fake.url(), Duration::from_secs(1)).unwrap().with_basic_auth("u", "p:w");
        assert!(direct.is_direct());
        let reqwest = PrometheusClient { direct: None, ..direct.clone() };
        let q = r#"sum(rate(http_requests_total{service="a b",code=~"5.."}[5m])) / 1e3 & ü"#;
        direct.query(q, Some(1733600000.5)).await.unwrap();
        reqwest.query(q, Some(1733600000.5)).await.unwrap();
        for client in [&direct, &reqwest] {
            match client.query("up", None).await {
                Err(ClientError::Timeout(m)) => assert_eq!(m, format!("Prometheus at {} timed out", fake.url())),
                other => panic!("expected a timeout, got {other:?}"),
            }
        }
        let seen = fake.seen();
        let headers = |i: usize| {
            let mut h: Vec<(String, String)> =
                seen[i].headers.iter().map(|(k, v)| (k.to_lowercase(), v.clone())).collect();
            h.sort();
            h
        };
        assert_eq!(seen[0].request_line(), seen[1].request_line());
        assert!(seen[0].request_line().contains("query=sum%28rate%28http_requests_total%7Bservice%3D%22a+b%22"));
        assert_eq!(headers(0), headers(1));
        assert_eq!(seen[0].header("authorization"), Some("Basic dTpwOnc="));
        fake.finish();
    }

    /// A Prometheus behind a path prefix, or over TLS, stays on reqwest.
    #[test]
    fn direct_only_where_reqwest_would_go_straight_there() {
        let t = Duration::from_secs(1);
        assert!(PrometheusClient::new("http://127.0.0.1:9090/", t).unwrap().is_direct());
        assert!(!PrometheusClient::new("http://127.0.0.1:9090/prom", t).unwrap().is_direct());
        assert!(!PrometheusClient::new("https://127.0.0.1:9090", t).unwrap().is_direct());
    }

    #[tokio::test]
    async fn transport_errors_do_not_echo_the_query() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let p = PrometheusClient::new(&format!("http://127.0.0.1:{port}"), Duration::from_secs(2)).unwrap();
        let secret = "sum(rate(secret_metric_name[5m]))";
        let e = p.query(secret, None).await.unwrap_err().to_string();
        assert!(e.contains("unreachable") && !e.contains("secret_metric_name") && !e.contains("query="), "{e}");
    }

    /// The guest gets `data` as Prometheus wrote it (numbers, key order, escapes), whatever
    /// else the envelope holds; the API's error shape stays a rejection naming its type.
    #[tokio::test]
    async fn an_answer_is_the_data_text_as_sent_and_an_error_its_type() {
        let data = r#"{"resultType":"vector","result":[{"metric":{"service":"a\u00e9","__name__":"up"},"value":[1733600000.125,"1e-7"]}]}"#;
        let ok = format!(r#"{{"status":"success","warnings":["w"],"data":{data},"infos":[]}}"#);
        let fake = HttpFake::start(vec![
            Step::get("/api/v1/query").reply(200, &ok),
            Step::get("/api/v1/query").reply(200, r#"{"status":"success"}"#),
            Step::get("/api/v1/query").reply(400, r#"{"status":"error","errorType":"bad_data","error":"parse error"}"#),
            Step::get("/api/v1/query").reply(502, "<html>bad gateway</html>"),
        ]);
        let p = PrometheusClient::new(fake.url(), Duration::from_secs(5)).unwrap();
        assert_eq!(p.query("up", None).await.unwrap().get(), data);
        assert_eq!(p.query("up", None).await.unwrap().get(), "null");
        match p.query("up(", None).await.unwrap_err() {
            ClientError::Rejected { status, code, detail } => {
                assert_eq!((status, code.as_str(), detail), (400, "bad_data", Value::from("parse error")))
            }
            other => panic!("expected a rejection, got {other:?}"),
        }
        assert!(matches!(p.query("up", None).await.unwrap_err(), ClientError::Unavailable(_)));
        fake.finish();
    }
}
