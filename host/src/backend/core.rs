//! nthlayer-core 4.0.1 HTTP client (the reference's CoreAPIClient, with its policy).
//!
//! Differences from the reference, on purpose: errors are typed instead of an `APIResult`
//! that callers forget to check; `ReadError`-class failures are retried like connect errors
//! instead of escaping; and a 409 on a *retried* POST of the same id is reported as stored,
//! because the first attempt committed and only its answer was lost.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use backon::Retryable;
use bytes::Bytes;
use reqwest::header::CONTENT_TYPE;
use reqwest::{Client, Method};
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use crate::backend::breaker::{Admit, Breaker};
use crate::backend::core_direct::Direct;
use crate::backend::envelope::{Emitted, RecordKind};
use crate::backend::retry::RetryPolicy;
use crate::backend::{describe, user_agent, ClientError};

/// The component name the host's heartbeats and deliveries speak for at core: the
/// reference's, so core's views of "the workers" stay the same.
pub const COMPONENT: &str = "workers";

#[derive(Clone)]
pub struct CoreClient {
    http: Client,
    /// Kept to build a client of the same kind with its own connections.
    timeout: Duration,
    base: String,
    retry: RetryPolicy,
    deployment_id: String,
    /// Shared by every clone: one view of whether core is up.
    breaker: Arc<Breaker>,
    /// The sender's own connections (core_direct.rs), used for requests without a query.
    direct: Option<Arc<Direct>>,
}

/// Filters of GET /verdicts.
#[derive(Debug, Clone, Default)]
pub struct VerdictFilter {
    pub service: Option<String>,
    pub verdict_type: Option<String>,
    pub created_after: Option<String>,
    pub created_before: Option<String>,
    pub limit: u32,
}

/// What core answered to a request that succeeded.
enum Answer {
    /// A 2xx with its body.
    Body(Vec<u8>),
    /// A 409 on a retried POST: an earlier attempt stored the record before its reply was
    /// lost, so the record is there — under the id we sent.
    StoredEarlier,
}

enum Attempt {
    Transport(String),
    Status(u16, Vec<u8>),
    /// The breaker is open and this is not the probe: no request was made.
    Open(Duration),
}

impl CoreClient {
    /// A client whose records' CloudEvents source names the deployment `default` (the
    /// reference's when `NTHLAYER_DEPLOYMENT_ID` is unset; see [`Self::with_deployment_id`]).
    pub fn new(base: &str, retry: RetryPolicy, timeout: Duration) -> anyhow::Result<Self> {
        let http = http_client(timeout)?;
        Ok(CoreClient {
            http,
            timeout,
            base: base.trim_end_matches('/').to_string(),
            retry,
            deployment_id: "default".into(),
            breaker: Arc::default(),
            direct: None,
        })
    }

    /// The `<deployment>` in `urn:nthlayer:<component>:<deployment>` (config: NTHLAYER_DEPLOYMENT_ID).
    pub fn with_deployment_id(mut self, id: &str) -> Self {
        self.deployment_id = id.to_string();
        self
    }

    /// A copy with another retry policy (e.g. none at shutdown).
    pub fn with_retry(&self, retry: RetryPolicy) -> Self {
        CoreClient { retry, ..self.clone() }
    }

    /// A copy with its own connections (the breaker still shared): the outbox's sender
    /// runs on its own thread and runtime, and a connection lives on the runtime that opened
    /// it, so sharing the pool would hop every response between runtimes. Requests without
    /// a query go over hyper directly when core is plain HTTP (core_direct.rs: delivery's
    /// per-request cost), the rest over a reqwest client of its own.
    pub fn with_own_connections(&self) -> anyhow::Result<Self> {
        let direct = Direct::for_base(&self.base, &user_agent(), self.timeout).map(Arc::new);
        Ok(CoreClient { http: http_client(self.timeout)?, direct, ..self.clone() })
    }

    /// Whether requests without a query go over the direct connections.
    #[cfg(test)]
    pub(crate) fn is_direct(&self) -> bool {
        self.direct.is_some()
    }

    /// The base URL requests go to.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// How often core came back after being down (see `Breaker::comebacks`).
    pub fn comebacks(&self) -> u64 {
        self.breaker.comebacks()
    }

    /// Whether core is known to be down (the breaker is open).
    pub fn is_down(&self) -> bool {
        self.breaker.is_open()
    }

    /// One request with the retry policy, unless the breaker says core is down: then it
    /// fails at once, or makes one attempt when it is the probe. Returns the 2xx body.
    async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<Bytes>,
    ) -> Result<Answer, ClientError> {
        let attempts = AtomicUsize::new(0);
        let probing = std::sync::atomic::AtomicBool::new(false);
        let once = || async {
            match self.breaker.admit() {
                Admit::Go => {}
                Admit::Probe => probing.store(true, Ordering::Relaxed),
                Admit::Reject(down) => return Err(Attempt::Open(down)),
            }
            attempts.fetch_add(1, Ordering::Relaxed);
            let r = self.attempt(&method, path, query, body.clone()).await;
            match &r {
                Err(_) => self.breaker.failed(),
                Ok(_) => self.breaker.answered(),
            }
            r
        };
        // No retries (the sender's client): one attempt, without the retry machinery.
        let result = if self.retry.retries == 0 { once().await } else { self.with_retries(once, &probing, path).await };
        let n = attempts.load(Ordering::Relaxed);
        match result {
            Ok((status, bytes)) if (200..300).contains(&status) => Ok(Answer::Body(bytes)),
            Ok((409, _)) if method == Method::POST && n > 1 => Ok(Answer::StoredEarlier),
            Ok((status, bytes)) => Err(ClientError::from_response(status, &bytes)),
            Err(Attempt::Status(status, body)) => Err(ClientError::Unavailable(format!(
                "core at {} answered HTTP {status} on all {n} attempts: {}",
                self.base,
                String::from_utf8_lossy(&body[..body.len().min(200)])
            ))),
            Err(Attempt::Transport(m)) => {
                Err(ClientError::Unavailable(format!("core at {} unreachable after {n} attempts: {m}", self.base)))
            }
            Err(Attempt::Open(down)) => Err(ClientError::Unavailable(format!(
                "core at {} is down (no answer for {} s; failing fast until a probe gets through)",
                self.base,
                down.as_secs()
            ))),
        }
    }

    /// `once` under the retry policy: retried after a transport failure or a retryable
    /// status, never while the breaker is open or when it was the probe.
    async fn with_retries<F, Fut>(
        &self,
        once: F,
        probing: &std::sync::atomic::AtomicBool,
        path: &str,
    ) -> Result<(u16, Vec<u8>), Attempt>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<(u16, Vec<u8>), Attempt>>,
    {
        once.retry(self.retry.backoff())
            .when(|e| !matches!(e, Attempt::Open(_)) && !probing.load(Ordering::Relaxed))
            .sleep(tokio::time::sleep)
            .notify(|e: &Attempt, after: Duration| {
                let what = match e {
                    Attempt::Transport(m) => m.clone(),
                    Attempt::Status(s, _) => format!("HTTP {s}"),
                    Attempt::Open(_) => "circuit open".into(),
                };
                tracing::debug!(url = %format_args!("{}{path}", self.base), error = %what, retry_in = ?after,
                    "core request failed; retrying");
            })
            .await
    }

    /// One HTTP attempt; retryable statuses come back as errors.
    async fn attempt(
        &self,
        method: &Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<Bytes>,
    ) -> Result<(u16, Vec<u8>), Attempt> {
        let (status, bytes) = match &self.direct {
            Some(direct) if query.is_empty() => {
                direct.exchange(method, path, body).await.map_err(|f| Attempt::Transport(f.0))?
            }
            _ => self.reqwest(method, path, query, body).await?,
        };
        if RetryPolicy::retryable_status(status) {
            return Err(Attempt::Status(status, bytes));
        }
        Ok((status, bytes))
    }

    async fn reqwest(
        &self,
        method: &Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<Bytes>,
    ) -> Result<(u16, Vec<u8>), Attempt> {
        let mut req = self.http.request(method.clone(), format!("{}{path}", self.base));
        if !query.is_empty() {
            req = req.query(query);
        }
        if let Some(b) = body {
            req = req.header(CONTENT_TYPE, "application/json").body(b);
        }
        let resp = req.send().await.map_err(|e| Attempt::Transport(describe(&e)))?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(|e| Attempt::Transport(describe(&e)))?.to_vec();
        Ok((status, bytes))
    }

    /// A GET's answer as `T`: a `Value`, or the text as sent (`Box<RawValue>`).
    async fn get_json<T: DeserializeOwned>(&self, path: &str, query: &[(&str, String)]) -> Result<T, ClientError> {
        match self.send(Method::GET, path, query, None).await? {
            Answer::Body(body) => parse(&body),
            Answer::StoredEarlier => parse(b""), // only POSTs are retried into a 409
        }
    }

    async fn post_json(&self, path: &str, body: &Value) -> Result<Value, ClientError> {
        match self.send(Method::POST, path, &[], Some(json_bytes(body))).await? {
            Answer::Body(bytes) => parse(&bytes),
            Answer::StoredEarlier => {
                Ok(json!({"id": body.get("id").or_else(|| body.pointer("/data/id")).cloned().unwrap_or(Value::Null)}))
            }
        }
    }

    /// The catalogue as core wrote it: modules get the text, and nothing in the host reads
    /// inside it except a shard's filter (capability/core/shard.rs). At 1,000 services it is
    /// the largest answer a cycle fetches; parsed and written out again it was several MB of
    /// short-lived heap per cycle of each of four tasks.
    pub async fn get_manifests(&self) -> Result<Box<RawValue>, ClientError> {
        self.get_json("/manifests", &[]).await
    }

    pub async fn get_manifest(&self, service: &str) -> Result<Box<RawValue>, ClientError> {
        self.get_json(&format!("/manifests/{}", segment(service)), &[]).await
    }

    /// POST /assessments or /verdicts with the envelope; returns the id core stored.
    pub async fn submit(&self, record: &Emitted) -> Result<String, ClientError> {
        let (envelope, _) = self.envelope(record)?;
        self.submit_envelope(record, envelope).await
    }

    /// The record's envelope for this client's deployment, and its labels (subtype,
    /// service) from the same read (the sender logs and wakes with them).
    pub fn envelope(&self, record: &Emitted) -> Result<(Vec<u8>, (String, String)), ClientError> {
        // A record that is not a JSON object never reaches the wire: core would refuse it.
        record.envelope_bytes(&self.deployment_id).map_err(|why| ClientError::Rejected {
            status: 0,
            code: "record".into(),
            detail: Value::String(why),
        })
    }

    /// [`Self::submit`] with the envelope [`Self::envelope`] wrote.
    pub async fn submit_envelope(&self, record: &Emitted, envelope: Vec<u8>) -> Result<String, ClientError> {
        let path = match record.kind {
            RecordKind::Assessment => "/assessments",
            RecordKind::Verdict => "/verdicts",
        };
        // Core's answer is `{"id"}`; an earlier attempt's 409 means it holds the record's own id.
        let reply: Value = match self.send(Method::POST, path, &[], Some(envelope.into())).await? {
            Answer::Body(bytes) => parse(&bytes)?,
            Answer::StoredEarlier => return Ok(record.id.clone()),
        };
        Ok(match reply.get("id") {
            Some(Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
            None => String::new(),
        })
    }

    pub async fn get_assessments(
        &self,
        service: Option<&str>,
        kind: Option<&str>,
        limit: u32,
    ) -> Result<Value, ClientError> {
        let mut q = vec![];
        if let Some(s) = service.filter(|s| !s.is_empty()) {
            q.push(("service", s.to_string()));
        }
        if let Some(k) = kind.filter(|k| !k.is_empty()) {
            q.push(("kind", k.to_string()));
        }
        q.push(("limit", limit.to_string()));
        self.get_json("/assessments", &q).await
    }

    pub async fn get_verdicts(&self, f: &VerdictFilter) -> Result<Value, ClientError> {
        let mut q = vec![];
        let opt = [
            ("service", &f.service),
            ("type", &f.verdict_type),
            ("created_after", &f.created_after),
            ("created_before", &f.created_before),
        ];
        for (k, v) in opt {
            if let Some(v) = v.as_ref().filter(|v| !v.is_empty()) {
                q.push((k, v.clone()));
            }
        }
        q.push(("limit", f.limit.to_string()));
        self.get_json("/verdicts", &q).await
    }

    pub async fn get_descendants(&self, id: &str) -> Result<Value, ClientError> {
        self.get_json(&format!("/verdicts/{}/descendants", segment(id)), &[]).await
    }

    pub async fn resolve_outcome(&self, id: &str, body: &Value) -> Result<String, ClientError> {
        let reply = self.post_json(&format!("/verdicts/{}/outcome", segment(id)), body).await?;
        Ok(reply.get("id").and_then(Value::as_str).map(str::to_string).unwrap_or_else(|| format!("out-{id}")))
    }

    pub async fn create_case(&self, case: &Value) -> Result<Value, ClientError> {
        self.post_json("/cases", case).await
    }

    /// GET /component-state/{name}: `Ok(None)` when core has never seen it (404).
    pub async fn get_component_state(&self, name: &str) -> Result<Option<Value>, ClientError> {
        match self.get_json(&format!("/component-state/{}", segment(name)), &[]).await {
            Ok(v) => Ok(Some(v)),
            Err(ClientError::Rejected { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `body` any JSON: a task's packed state is written from its text, never a tree of it.
    pub async fn put_component_state(
        &self,
        name: &str,
        body: &(impl serde::Serialize + ?Sized),
    ) -> Result<(), ClientError> {
        let path = format!("/component-state/{}", segment(name));
        let bytes =
            serde_json::to_vec(body).map_err(|e| ClientError::Invalid(format!("component-state {name}: {e}")))?;
        self.send(Method::PUT, &path, &[], Some(Bytes::from(bytes))).await.map(|_| ())
    }

    pub async fn heartbeat(&self, component: &str, instance_id: &str, state: &Value) -> Result<(), ClientError> {
        let body = json!({"component": component, "instance_id": instance_id, "state": state});
        self.send(Method::POST, "/heartbeats", &[], Some(json_bytes(&body))).await.map(|_| ())
    }
}

fn http_client(timeout: Duration) -> reqwest::Result<Client> {
    Client::builder().user_agent(user_agent()).timeout(timeout).build()
}

/// A body serialized once, shared by every retry of its request.
fn json_bytes(v: &Value) -> Bytes {
    Bytes::from(v.to_string().into_bytes())
}

/// An empty body is `null`.
fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ClientError> {
    let body = if body.is_empty() { b"null".as_slice() } else { body };
    serde_json::from_slice(body).map_err(|e| ClientError::Invalid(format!("core sent invalid JSON: {e}")))
}

/// Percent-encodes one path segment (ids and names come from module data).
fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b':' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::segment;

    #[test]
    fn path_segments_cannot_escape() {
        assert_eq!(segment("observe.collect"), "observe.collect");
        assert_eq!(segment("../admin"), "..%2Fadmin");
        assert_eq!(segment("a b?c"), "a%20b%3Fc");
    }
}
