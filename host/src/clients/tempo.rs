//! Grafana Tempo HTTP API client: TraceQL metrics range queries and search.

use std::time::Duration;

use reqwest::Client;
use serde_json::Value;

use super::core::describe;
use super::{user_agent, ClientError};

#[derive(Clone)]
pub struct TempoClient {
    http: Client,
    base: String,
}

impl TempoClient {
    pub fn new(base: &str, timeout: Duration) -> anyhow::Result<Self> {
        let http = Client::builder().user_agent(user_agent()).timeout(timeout).build()?;
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
        serde_json::from_slice(&body).map_err(|e| ClientError::Invalid(format!("Tempo sent invalid JSON: {e}")))
    }

    pub async fn metrics_range(&self, traceql: &str, start: f64, end: f64, step: &str) -> Result<Value, ClientError> {
        let p = [
            ("q", traceql.to_string()),
            ("start", (start as i64).to_string()),
            ("end", (end as i64).to_string()),
            ("step", step.to_string()),
        ];
        self.get("/api/metrics/query_range", &p).await
    }

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
