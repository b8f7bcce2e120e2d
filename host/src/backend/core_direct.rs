//! Requests over hyper's HTTP/1 connections held by the client: the outbox sender's to core,
//! and the Prometheus client's queries.
//!
//! Delivery is one small request per record, thousands a cycle (core 4.0.1 has no batch
//! endpoint), so what a request costs the host beyond the loopback round trip is most of a
//! record's delivery. reqwest adds per request: a URL parsed and joined, a header map built,
//! the redirect, proxy and decompression layers, a boxed body and a pool keyed by host,
//! checked out and back in through a lock. Here a request is the method, a path, the
//! headers reqwest sent (three of them built once) and the body, sent on an idle connection
//! of the sender's own (one per request in flight, so at most `--delivery-concurrency`).
//!
//! Same semantics as the reqwest path for the caller ([`super::core::CoreClient::send`] keeps
//! the breaker, retries and classification): the whole exchange bounded by the client's
//! timeout, an answer's status and body returned as they came, no answer a transport error.
//! A connection core closed while it sat idle (uvicorn drops idle ones after 5 s) is
//! skipped, and a request one could not take before it was written goes on another, as
//! reqwest's pool does. Used only for `http://` cores reached without a proxy; anything
//! else stays on reqwest.
//!
//! Prometheus' instant and range queries take the same path (backend/prometheus.rs): a
//! collect cycle at 1,000 services runs 3,000 of them, and reqwest's requests with their
//! connection tasks were about a quarter of the cycle's host CPU (docs/BENCH.md, "Queries
//! over direct connections").

use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, ACCEPT, CONTENT_TYPE, HOST, USER_AGENT};
use http::{Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

type Conn = SendRequest<Full<Bytes>>;

/// Direct connections to one core.
pub struct Direct {
    /// `host:port` to connect to, and the `Host` header that names it.
    authority: String,
    host: HeaderValue,
    agent: HeaderValue,
    timeout: Duration,
    /// A header every request carries (Prometheus' basic auth), built once.
    extra: Option<(HeaderName, HeaderValue)>,
    /// Connections with no request on them, most recently used last.
    idle: Mutex<Vec<Conn>>,
}

/// How one exchange failed: always a transport failure (an answer of any status is `Ok`).
#[derive(Debug, PartialEq)]
pub struct Failed(pub String);

/// What [`Failed`] says when the exchange ran past the client's timeout.
const TIMED_OUT: &str = "timed out";

impl Failed {
    /// The exchange ran past the client's timeout (a client that tells a timeout from an
    /// unreachable backend, as Prometheus' does, reads it here).
    pub fn timed_out(&self) -> bool {
        self.0 == TIMED_OUT
    }
}

impl Direct {
    /// A direct client for `base` when it can serve it: plain `http://`, no proxy set in
    /// the environment (reqwest would go through it), no path prefix reqwest would join.
    pub fn for_base(base: &str, agent: &str, timeout: Duration) -> Option<Direct> {
        let uri: Uri = base.parse().ok()?;
        if uri.scheme_str() != Some("http") || !matches!(uri.path(), "" | "/") || proxied() {
            return None;
        }
        let auth = uri.authority()?;
        let authority = format!("{}:{}", auth.host(), auth.port_u16().unwrap_or(80));
        Some(Direct {
            host: HeaderValue::from_str(auth.as_str()).ok()?,
            agent: HeaderValue::from_str(agent).ok()?,
            authority,
            timeout,
            extra: None,
            idle: Mutex::default(),
        })
    }

    /// Every request also carries `name: value`.
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.extra = Some((name, value));
        self
    }

    /// One exchange: `path` (with its query, if any) and an optional JSON body. Returns the
    /// status and the whole body of core's answer.
    pub async fn exchange(&self, method: &Method, path: &str, body: Option<Bytes>) -> Result<(u16, Vec<u8>), Failed> {
        let uri: Uri = path.parse().map_err(|e| Failed(format!("request could not be built: {e}")))?;
        let json = body.is_some();
        let mut req = Request::new(Full::new(body.unwrap_or_default()));
        *req.method_mut() = method.clone();
        *req.uri_mut() = uri;
        let h = req.headers_mut();
        h.insert(HOST, self.host.clone());
        h.insert(USER_AGENT, self.agent.clone());
        h.insert(ACCEPT, HeaderValue::from_static("*/*"));
        if json {
            h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        if let Some((name, value)) = &self.extra {
            h.insert(name.clone(), value.clone());
        }
        match tokio::time::timeout(self.timeout, self.send(req)).await {
            Ok(r) => r,
            Err(_) => Err(Failed(TIMED_OUT.into())),
        }
    }

    async fn send(&self, req: Request<Full<Bytes>>) -> Result<(u16, Vec<u8>), Failed> {
        let mut req = req;
        // Idle connections first; a request none of them could take goes on a new one.
        while let Some(mut conn) = self.checkout() {
            if conn.ready().await.is_err() {
                continue;
            }
            match conn.try_send_request(req).await {
                Ok(resp) => return self.read(conn, resp).await,
                Err(mut e) => match e.take_message() {
                    // Not written: the connection was closed under it; another may serve.
                    Some(back) => req = back,
                    None => return Err(Failed(describe("request failed", e.error()))),
                },
            }
        }
        let mut conn = self.connect().await?;
        let resp = conn.send_request(req).await.map_err(|e| Failed(describe("request failed", &e)))?;
        self.read(conn, resp).await
    }

    /// Reads the answer's body, then gives the connection back for the next request.
    async fn read(&self, conn: Conn, resp: http::Response<hyper::body::Incoming>) -> Result<(u16, Vec<u8>), Failed> {
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.map_err(|e| Failed(describe("response body failed", &e)))?;
        if !conn.is_closed() {
            self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(conn);
        }
        Ok((status, body.to_bytes().into()))
    }

    fn checkout(&self) -> Option<Conn> {
        let mut idle = self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        while let Some(c) = idle.pop() {
            if !c.is_closed() {
                return Some(c);
            }
        }
        None
    }

    async fn connect(&self) -> Result<Conn, Failed> {
        let tcp = TcpStream::connect(&self.authority).await.map_err(|e| Failed(format!("connection failed: {e}")))?;
        let _ = tcp.set_nodelay(true);
        let (send, conn) =
            http1::handshake(TokioIo::new(tcp)).await.map_err(|e| Failed(describe("connection failed", &e)))?;
        // The connection's I/O runs as a task on the runtime that opened it (the sender's).
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection to core ended");
            }
        });
        Ok(send)
    }
}

/// Whether the environment names a proxy reqwest would send core's requests through.
fn proxied() -> bool {
    ["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"]
        .iter()
        .any(|k| std::env::var_os(k).is_some_and(|v| !v.is_empty()))
}

/// `what` and the error's causes, as `backend::describe` words reqwest's.
fn describe(what: &str, e: &hyper::Error) -> String {
    let mut s = format!("{what}: {e}");
    let mut src = std::error::Error::source(e);
    while let Some(cause) = src {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        src = cause.source();
    }
    s
}

#[cfg(test)]
#[path = "core_direct_tests.rs"]
mod tests;
