//! Prometheus HTTP API client (instant, range, batched instant queries).
//!
//! Basic auth comes from `PROMETHEUS_USERNAME|NTHLAYER_METRICS_USER` and
//! `PROMETHEUS_PASSWORD|NTHLAYER_METRICS_PASSWORD` as in the reference — but for every query,
//! not only observe.collect's (the reference's drift, topology and measure go unauthenticated
//! and fail against a protected Prometheus).

use std::time::Duration;

use futures_util::stream::{self, StreamExt};
use reqwest::Client;
use serde_json::Value;

use super::core::describe;
use super::{user_agent, ClientError};

#[derive(Clone)]
pub struct PrometheusClient {
    http: Client,
    base: String,
    auth: Option<(String, String)>,
    /// Concurrent queries in one batch.
    batch_parallelism: usize,
}

impl PrometheusClient {
    pub fn new(base: &str, timeout: Duration) -> anyhow::Result<Self> {
        let http = Client::builder().user_agent(user_agent()).timeout(timeout).build()?;
        let env = |a: &str, b: &str| std::env::var(a).or_else(|_| std::env::var(b)).ok().filter(|v| !v.is_empty());
        let auth = match (
            env("PROMETHEUS_USERNAME", "NTHLAYER_METRICS_USER"),
            env("PROMETHEUS_PASSWORD", "NTHLAYER_METRICS_PASSWORD"),
        ) {
            (Some(u), Some(p)) => Some((u, p)),
            _ => None,
        };
        Ok(PrometheusClient { http, base: base.trim_end_matches('/').to_string(), auth, batch_parallelism: 8 })
    }

    async fn get(&self, path: &str, params: &[(&str, String)]) -> Result<Value, ClientError> {
        if self.base.is_empty() {
            return Err(ClientError::Unavailable("Prometheus not configured (--prometheus-url)".into()));
        }
        let url = format!("{}{}", self.base, path);
        let mut req = self.http.get(&url).query(params);
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
        let parsed: Option<Value> = serde_json::from_slice(&body).ok();
        match parsed {
            Some(v) if v.get("status").and_then(Value::as_str) == Some("success") => {
                Ok(v.get("data").cloned().unwrap_or(Value::Null))
            }
            // The API's own error shape: {"status":"error","errorType":"bad_data","error":"…"}.
            Some(v) if v.get("status").is_some() => Err(ClientError::Rejected {
                status,
                code: v.get("errorType").and_then(Value::as_str).unwrap_or("error").to_string(),
                detail: v.get("error").cloned().unwrap_or(Value::Null),
            }),
            _ if status >= 500 => {
                Err(ClientError::Unavailable(format!("Prometheus at {} answered HTTP {status}", self.base)))
            }
            _ => Err(ClientError::from_response(status, &body)),
        }
    }

    pub async fn query(&self, promql: &str, at: Option<f64>) -> Result<Value, ClientError> {
        let mut p = vec![("query", promql.to_string())];
        if let Some(t) = at {
            p.push(("time", t.to_string()));
        }
        self.get("/api/v1/query", &p).await
    }

    pub async fn query_range(&self, promql: &str, start: f64, end: f64, step: &str) -> Result<Value, ClientError> {
        let p = [
            ("query", promql.to_string()),
            ("start", start.to_string()),
            ("end", end.to_string()),
            ("step", step.to_string()),
        ];
        self.get("/api/v1/query_range", &p).await
    }

    /// Runs instant queries concurrently (bounded) and answers in input order.
    pub async fn query_batch(&self, promql: &[String], at: Option<f64>) -> Vec<Result<Value, ClientError>> {
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
}
