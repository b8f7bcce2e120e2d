//! Grafana Tempo HTTP API client: TraceQL metrics range queries and search, as the
//! reference's `TempoTraceBackend` sends them (whole-second `start`/`end`, `X-Scope-OrgID`
//! for multi-tenant Tempo, 30 s timeout).

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use reqwest::Client;
use serde_json::Value;

use crate::backend::describe;
use crate::backend::{user_agent, ClientError};

#[derive(Clone)]
pub struct TempoClient {
    http: Client,
    base: String,
}

impl TempoClient {
    /// `org_id`: the tenant sent as `X-Scope-OrgID` (capability/tempo/config.rs: `TEMPO_ORG_ID`); None or
    /// empty for a single-tenant Tempo.
    pub fn with_org_id(base: &str, timeout: Duration, org_id: Option<&str>) -> anyhow::Result<Self> {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(org) = org_id.filter(|o| !o.is_empty()) {
            let v =
                HeaderValue::from_str(org).map_err(|_| anyhow::anyhow!("TEMPO_ORG_ID is not a valid header value"))?;
            headers.insert("X-Scope-OrgID", v);
        }
        let http = Client::builder().user_agent(user_agent()).default_headers(headers).timeout(timeout).build()?;
        Ok(TempoClient { http, base: base.trim_end_matches('/').to_string() })
    }

    async fn get(&self, path: &str, params: &[(&str, String)]) -> Result<Value, ClientError> {
        let url = format!("{}{}", self.base, path);
        let resp = self.http.get(&url).query(params).send().await.map_err(|e| {
            if e.is_timeout() {
                ClientError::Timeout(format!("Tempo at {} timed out", self.base))
            } else {
                ClientError::Unavailable(format!("Tempo at {} unreachable: {}", self.base, describe(&e)))
            }
        })?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await.map_err(|e| ClientError::Unavailable(describe(&e)))?;
        if status >= 500 {
            return Err(ClientError::Unavailable(format!("Tempo at {} answered HTTP {status}", self.base)));
        }
        if !(200..300).contains(&status) {
            return Err(ClientError::from_response(status, &body));
        }
        let v: Value =
            serde_json::from_slice(&body).map_err(|e| ClientError::Invalid(format!("Tempo sent invalid JSON: {e}")))?;
        if !v.is_object() {
            return Err(ClientError::Invalid("Tempo answered JSON that is not an object".into()));
        }
        Ok(v)
    }

    /// `GET /api/metrics/query_range?q&start&end&step`.
    pub async fn metrics_range(&self, traceql: &str, start: f64, end: f64, step: &str) -> Result<Value, ClientError> {
        let p = [
            ("q", traceql.to_string()),
            ("start", (start as i64).to_string()),
            ("end", (end as i64).to_string()),
            ("step", step.to_string()),
        ];
        self.get("/api/metrics/query_range", &p).await
    }

    /// `GET /api/search?q&start&end&limit`.
    pub async fn search(&self, traceql: &str, start: f64, end: f64, limit: u32) -> Result<Value, ClientError> {
        let p = [
            ("q", traceql.to_string()),
            ("start", (start as i64).to_string()),
            ("end", (end as i64).to_string()),
            ("limit", limit.to_string()),
        ];
        self.get("/api/search", &p).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{HttpFake, Step};

    #[tokio::test]
    async fn query_parameters_and_tenant_header() {
        let fake = HttpFake::start(vec![
            Step::get("/api/metrics/query_range").reply(200, r#"{"series":[]}"#),
            Step::get("/api/search").reply(200, r#"{"traces":[]}"#),
        ]);
        let t = TempoClient::with_org_id(fake.url(), Duration::from_secs(5), Some("tenant-a")).unwrap();
        let q =
            r#"{ resource.service.name = "a" && span.kind = server } | count_over_time() by (resource.service.name)"#;
        t.metrics_range(q, 1_795_532_927.6, 1_795_536_527.6, "180s").await.unwrap();
        t.search(r#"{ resource.service.name = "a" && span.kind = client }"#, 10.9, 20.1, 1000).await.unwrap();
        let seen = fake.seen();
        let line = seen[0].request_line();
        assert!(line.starts_with("GET /api/metrics/query_range?q=%7B+resource.service.name+%3D+%22a%22"), "{line}");
        assert!(line.contains("&start=1795532927&end=1795536527&step=180s "), "{line}");
        assert_eq!(seen[0].header("x-scope-orgid"), Some("tenant-a"));
        let line = seen[1].request_line();
        assert!(line.contains("/api/search?q=") && line.contains("&start=10&end=20&limit=1000 "), "{line}");
        fake.finish();
    }

    #[tokio::test]
    async fn no_tenant_no_header_and_errors_are_typed() {
        let fake = HttpFake::start(vec![
            Step::any().reply(200, "{}"),
            Step::any().reply(503, "down"),
            Step::any().reply(400, "bad query"),
            Step::any().reply(200, "<html>"),
            Step::any().reply(200, "[1]"),
        ]);
        let t = TempoClient::with_org_id(fake.url(), Duration::from_secs(5), None).unwrap();
        t.search("{}", 0.0, 1.0, 1).await.unwrap();
        assert_eq!(fake.seen()[0].header("x-scope-orgid"), None);
        assert!(matches!(t.search("{}", 0.0, 1.0, 1).await, Err(ClientError::Unavailable(_))));
        assert!(matches!(t.search("{}", 0.0, 1.0, 1).await, Err(ClientError::Rejected { status: 400, .. })));
        assert!(matches!(t.search("{}", 0.0, 1.0, 1).await, Err(ClientError::Invalid(_))));
        assert!(matches!(t.search("{}", 0.0, 1.0, 1).await, Err(ClientError::Invalid(_))));
        fake.finish();
    }

    #[tokio::test]
    async fn down_is_unavailable() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let t = TempoClient::with_org_id(&format!("http://127.0.0.1:{port}"), Duration::from_secs(2), None).unwrap();
        assert!(matches!(t.metrics_range("{}", 0.0, 1.0, "15s").await, Err(ClientError::Unavailable(_))));
    }
}
