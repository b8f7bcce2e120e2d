//! A scripted loopback HTTP server: a real hyper server on 127.0.0.1:0 that answers from a
//! script and records every request, so a test can assert on what a client sent as well as
//! on what it made of the answer.
//!
//! A request takes the first unused step that matches it (method, path, and any query or
//! body matcher), so concurrent requests (a Prometheus batch) need no fixed order; a step
//! can be used `times(n)`. A request no step matches gets a 500 naming itself and is kept in
//! [`HttpFake::unexpected`]; [`HttpFake::finish`] fails the test on those and on unused
//! steps. The server runs on the caller's tokio runtime until the fake is dropped;
//! [`HttpFake::start_blocking`] gives it a runtime of its own, for synchronous tests.
//!
//! A stand-in whose answer depends on what came before (an LLM provider asked again after a
//! bad answer, a backend switched down mid-test) is one [`Step::serve`] step: a function of
//! the request and the earlier ones. One fake for every test keeps one HTTP stack (hyper,
//! the server the host's own clients are written against) instead of a socket loop per test
//! file; a mock-server crate would add a second stack and no capability the tests need.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

/// What a step expects of a request beyond method and path.
#[derive(Debug, Clone)]
pub enum Matcher {
    /// The raw (percent-encoded) text contains this.
    Contains(String),
    /// The text is exactly this.
    Equals(String),
    /// The text parses as this JSON value.
    Json(serde_json::Value),
}

impl Matcher {
    fn matches(&self, text: &str) -> bool {
        match self {
            Matcher::Contains(s) => text.contains(s.as_str()),
            Matcher::Equals(s) => text == s,
            Matcher::Json(v) => serde_json::from_str::<serde_json::Value>(text).is_ok_and(|t| t == *v),
        }
    }
}

/// How a step answers.
#[derive(Debug, Clone)]
pub enum Reply {
    Respond {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
    /// Close the connection without an answer.
    Close,
    /// Read the request and never answer (the client's timeout decides).
    Hang,
    /// Computed from the request and the ones received before it (see [`Step::serve`]).
    With(Handler),
}

impl Reply {
    /// `status` with a JSON body.
    pub fn json(status: u16, body: &serde_json::Value) -> Self {
        Reply::Respond { status, headers: Vec::new(), body: body.to_string() }
    }
}

/// A computed answer: the request, then every request received before it.
type Answer = dyn Fn(&Seen, &[Seen]) -> Reply + Send + Sync;

/// What [`Step::serve`] answers with.
#[derive(Clone)]
pub struct Handler(Arc<Answer>);

impl std::fmt::Debug for Handler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Handler(..)")
    }
}

/// One expected request and its answer.
#[derive(Debug, Clone)]
pub struct Step {
    method: Option<String>,
    path: Option<String>,
    query: Option<Matcher>,
    body: Option<Matcher>,
    reply: Reply,
    delay: Duration,
    times: usize,
    /// Serves any number of requests and is never reported unused.
    always: bool,
}

impl Step {
    fn new(method: Option<&str>, path: Option<&str>) -> Self {
        Step {
            method: method.map(str::to_string),
            path: path.map(str::to_string),
            query: None,
            body: None,
            reply: Reply::Respond { status: 200, headers: Vec::new(), body: String::new() },
            delay: Duration::ZERO,
            times: 1,
            always: false,
        }
    }
    pub fn get(path: &str) -> Self {
        Self::new(Some("GET"), Some(path))
    }
    pub fn post(path: &str) -> Self {
        Self::new(Some("POST"), Some(path))
    }
    pub fn put(path: &str) -> Self {
        Self::new(Some("PUT"), Some(path))
    }
    /// Any method on any path (for scripts about answers, not requests).
    pub fn any() -> Self {
        Self::new(None, None)
    }
    /// Every request (that no earlier step takes) answered by `f(request, earlier requests)`,
    /// decided under the same lock that records it, so "earlier" is exact under concurrency.
    pub fn serve(f: impl Fn(&Seen, &[Seen]) -> Reply + Send + Sync + 'static) -> Self {
        let mut s = Self::new(None, None).always();
        s.reply = Reply::With(Handler(Arc::new(f)));
        s
    }
    /// The step serves any number of requests (a reply that repeats) and `finish` does not
    /// require it to be used.
    pub fn always(mut self) -> Self {
        self.always = true;
        self
    }
    pub fn query(mut self, m: Matcher) -> Self {
        self.query = Some(m);
        self
    }
    pub fn query_contains(self, s: &str) -> Self {
        self.query(Matcher::Contains(s.into()))
    }
    pub fn body(mut self, m: Matcher) -> Self {
        self.body = Some(m);
        self
    }
    pub fn body_contains(self, s: &str) -> Self {
        self.body(Matcher::Contains(s.into()))
    }
    /// Answer with `status` and `body` (JSON content type unless a header says otherwise).
    pub fn reply(mut self, status: u16, body: &str) -> Self {
        let headers = match self.reply {
            Reply::Respond { headers, .. } => headers,
            _ => Vec::new(),
        };
        self.reply = Reply::Respond { status, headers, body: body.into() };
        self
    }
    pub fn header(mut self, name: &str, value: &str) -> Self {
        if let Reply::Respond { headers, .. } = &mut self.reply {
            headers.push((name.to_ascii_lowercase(), value.into()));
        }
        self
    }
    pub fn close(mut self) -> Self {
        self.reply = Reply::Close;
        self
    }
    pub fn hang(mut self) -> Self {
        self.reply = Reply::Hang;
        self
    }
    /// Wait this long before answering (or closing).
    pub fn delay(mut self, d: Duration) -> Self {
        self.delay = d;
        self
    }
    /// The step serves this many requests.
    pub fn times(mut self, n: usize) -> Self {
        self.times = n;
        self
    }

    fn matches(&self, r: &Seen) -> bool {
        self.method.as_ref().is_none_or(|m| *m == r.method)
            && self.path.as_ref().is_none_or(|p| *p == r.path)
            && self.query.as_ref().is_none_or(|m| m.matches(r.query.as_deref().unwrap_or("")))
            && self.body.as_ref().is_none_or(|m| m.matches(&r.body))
    }
}

/// A request as the server received it.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    pub method: String,
    pub path: String,
    /// The raw query string, as sent (percent-encoded).
    pub query: Option<String>,
    /// Lower-cased names, in the order sent.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Seen {
    /// `GET /path?query HTTP/1.1`, as the request line went on the wire.
    pub fn request_line(&self) -> String {
        match &self.query {
            Some(q) => format!("{} {}?{q} HTTP/1.1", self.method, self.path),
            None => format!("{} {} HTTP/1.1", self.method, self.path),
        }
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct Book {
    /// Steps with the uses they have left.
    steps: Vec<(Step, usize)>,
    seen: Vec<Seen>,
    unexpected: Vec<Seen>,
}

pub struct HttpFake {
    url: String,
    book: Arc<Mutex<Book>>,
    server: tokio::task::JoinHandle<()>,
}

impl HttpFake {
    /// Starts serving `script` on a fresh loopback port. Call inside a tokio runtime.
    pub fn start(script: Vec<Step>) -> Self {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        std_listener.set_nonblocking(true).expect("non-blocking listener");
        let url = format!("http://{}", std_listener.local_addr().expect("local address"));
        let listener = tokio::net::TcpListener::from_std(std_listener).expect("inside a tokio runtime");
        let steps = script.into_iter().map(|s| (s.clone(), if s.always { usize::MAX } else { s.times })).collect();
        let book = Arc::new(Mutex::new(Book { steps, ..Default::default() }));
        let shared = book.clone();
        let server = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                let book = shared.clone();
                connections.spawn(async move {
                    let svc = service_fn(move |req| answer(book.clone(), req));
                    let _ =
                        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
                });
            }
        });
        HttpFake { url, book, server }
    }

    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Every request received so far, in arrival order (unexpected ones included).
    pub fn seen(&self) -> Vec<Seen> {
        self.lock().seen.clone()
    }

    /// Requests no step matched.
    pub fn unexpected(&self) -> Vec<Seen> {
        self.lock().unexpected.clone()
    }

    /// Panics unless every step was used up and every request was expected.
    pub fn finish(&self) {
        let b = self.lock();
        assert!(b.unexpected.is_empty(), "requests the script did not expect: {:#?}", b.unexpected);
        let unused: Vec<&Step> = b.steps.iter().filter(|(s, left)| *left > 0 && !s.always).map(|(s, _)| s).collect();
        assert!(unused.is_empty(), "steps never requested: {unused:#?}");
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// An [`HttpFake`] on a runtime of its own, for tests without one (the integration harness
/// is synchronous). Dereferences to the fake; dropping it stops the server, then the runtime.
pub struct BlockingHttpFake {
    fake: HttpFake,
    _runtime: tokio::runtime::Runtime,
}

impl std::ops::Deref for BlockingHttpFake {
    type Target = HttpFake;
    fn deref(&self) -> &HttpFake {
        &self.fake
    }
}

impl HttpFake {
    /// [`HttpFake::start`] on one background worker thread; call outside any runtime.
    pub fn start_blocking(script: Vec<Step>) -> BlockingHttpFake {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("http-fake")
            .enable_all()
            .build()
            .expect("a runtime for the HTTP fake");
        let fake = {
            let _inside = runtime.enter();
            HttpFake::start(script)
        };
        BlockingHttpFake { fake, _runtime: runtime }
    }
}

impl Drop for HttpFake {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Why a connection is closed without an answer.
#[derive(Debug)]
struct Closed;

impl std::fmt::Display for Closed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("closed by the script")
    }
}

impl std::error::Error for Closed {}

async fn answer(book: Arc<Mutex<Book>>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Closed> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let seen = Seen {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().map(str::to_string),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect(),
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    let step = {
        let mut b = book.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let found = match b.steps.iter_mut().find(|(s, left)| *left > 0 && s.matches(&seen)) {
            Some((s, left)) => {
                *left -= 1;
                Some(s.clone())
            }
            None => None,
        };
        match found {
            Some(mut s) => {
                if let Reply::With(Handler(f)) = &s.reply {
                    s.reply = f(&seen, &b.seen);
                }
                b.seen.push(seen.clone());
                Some(s)
            }
            None => {
                b.seen.push(seen.clone());
                b.unexpected.push(seen.clone());
                None
            }
        }
    };
    let Some(step) = step else {
        let text = format!("http_fake: no step expects {}", seen.request_line());
        return Ok(response(500, &[], text));
    };
    tokio::time::sleep(step.delay).await;
    match step.reply {
        Reply::Respond { status, headers, body } => Ok(response(status, &headers, body)),
        Reply::Close => Err(Closed),
        Reply::Hang => std::future::pending().await,
        Reply::With(_) => Ok(response(500, &[], "http_fake: a handler answered with a handler".into())),
    }
}

fn response(status: u16, headers: &[(String, String)], body: String) -> Response<Full<Bytes>> {
    let mut r = Response::builder().status(status);
    if !headers.iter().any(|(k, _)| k == "content-type") {
        r = r.header("content-type", "application/json");
    }
    for (k, v) in headers {
        r = r.header(k, v);
    }
    r.body(Full::new(Bytes::from(body))).expect("a valid scripted response")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn answers_from_the_script_and_records_requests() {
        let fake = HttpFake::start(vec![
            Step::post("/x").body(Matcher::Json(serde_json::json!({"a": 1}))).reply(201, r#"{"ok":true}"#),
            Step::get("/y").query_contains("q=1").reply(404, "nope").header("content-type", "text/plain").times(2),
        ]);
        let http = reqwest::Client::new();
        let r = http.post(format!("{}/x", fake.url())).body(r#"{ "a": 1 }"#).send().await.unwrap();
        assert_eq!(r.status(), 201);
        for _ in 0..2 {
            let r = http.get(format!("{}/y?q=1", fake.url())).send().await.unwrap();
            assert_eq!(r.headers()["content-type"], "text/plain");
            assert_eq!(r.text().await.unwrap(), "nope");
        }
        let seen = fake.seen();
        assert_eq!(seen[0].request_line(), "POST /x HTTP/1.1");
        assert_eq!(seen[1].request_line(), "GET /y?q=1 HTTP/1.1");
        fake.finish();
    }

    #[tokio::test]
    async fn unexpected_requests_and_unused_steps_fail_finish() {
        let fake = HttpFake::start(vec![Step::get("/a")]);
        let r = reqwest::get(format!("{}/b", fake.url())).await.unwrap();
        assert_eq!(r.status(), 500);
        assert!(r.text().await.unwrap().contains("GET /b"));
        assert_eq!(fake.unexpected().len(), 1);
        let finish = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fake.finish()));
        assert!(finish.is_err());
    }

    #[tokio::test]
    async fn close_delay_and_hang() {
        let fake = HttpFake::start(vec![
            Step::get("/close").close(),
            Step::get("/slow").delay(Duration::from_millis(200)).reply(200, "{}"),
            Step::get("/hang").hang(),
        ]);
        let http = reqwest::Client::builder().timeout(Duration::from_millis(100)).build().unwrap();
        let e = http.get(format!("{}/close", fake.url())).send().await.unwrap_err();
        assert!(!e.is_timeout(), "{e:?}");
        assert!(http.get(format!("{}/slow", fake.url())).send().await.unwrap_err().is_timeout());
        assert!(http.get(format!("{}/hang", fake.url())).send().await.unwrap_err().is_timeout());
        fake.finish();
    }

    #[tokio::test]
    async fn a_served_step_answers_from_the_request_and_the_ones_before() {
        let fake = HttpFake::start(vec![
            Step::get("/first").reply(200, "{}"),
            Step::serve(|r, earlier| {
                if r.path == "/down" {
                    return Reply::Respond { status: 503, headers: vec![], body: "down".into() };
                }
                Reply::json(200, &serde_json::json!({"path": r.path, "earlier": earlier.len()}))
            }),
        ]);
        let get = |p: &str| reqwest::get(format!("{}{p}", fake.url()));
        assert_eq!(get("/first").await.unwrap().text().await.unwrap(), "{}");
        let v: serde_json::Value = get("/x").await.unwrap().json().await.unwrap();
        assert_eq!(v, serde_json::json!({"path": "/x", "earlier": 1}));
        let v: serde_json::Value = get("/y").await.unwrap().json().await.unwrap();
        assert_eq!(v["earlier"], 2);
        assert_eq!(get("/down").await.unwrap().status(), 503);
        assert_eq!(fake.seen().len(), 4);
        fake.finish();
    }

    #[test]
    fn a_blocking_fake_serves_callers_without_a_runtime() {
        let fake = HttpFake::start_blocking(vec![Step::get("/a").reply(200, r#"{"a":1}"#).always()]);
        for _ in 0..2 {
            let r = reqwest::blocking::get(format!("{}/a", fake.url())).unwrap();
            assert_eq!(r.text().unwrap(), r#"{"a":1}"#);
        }
        assert_eq!(fake.seen().len(), 2);
        fake.finish();
    }
}
