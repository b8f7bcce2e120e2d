//! A tiny Prometheus exporter: `GET /metrics` on 127.0.0.1:<free port> serves whatever text
//! the test last put in it (Prometheus text exposition format 0.0.4).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

struct Shared {
    body: Mutex<String>,
    stop: AtomicBool,
    scrapes: AtomicU64,
}

/// The exporter; the serving thread stops on Drop.
pub struct Exporter {
    addr: SocketAddr,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Exporter {
    /// Start serving `body` on a free loopback port.
    pub fn start(body: impl Into<String>) -> Exporter {
        let listener = TcpListener::bind("127.0.0.1:0").expect("exporter bind");
        let addr = listener.local_addr().expect("exporter addr");
        let shared = Arc::new(Shared {
            body: Mutex::new(body.into()),
            stop: AtomicBool::new(false),
            scrapes: AtomicU64::new(0),
        });
        let sh = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("exporter-{}", addr.port()))
            .spawn(move || {
                for stream in listener.incoming() {
                    if sh.stop.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(s) = stream {
                        let _ = handle(s, &sh);
                    }
                }
            })
            .expect("spawn exporter thread");
        Exporter { addr, shared, thread: Some(thread) }
    }

    /// `127.0.0.1:<port>` — the scrape target.
    pub fn target(&self) -> String {
        self.addr.to_string()
    }
    /// `http://127.0.0.1:<port>/metrics`.
    pub fn url(&self) -> String {
        format!("http://{}/metrics", self.addr)
    }
    /// Replace the whole exposition text.
    pub fn set(&self, body: impl Into<String>) {
        *self.shared.body.lock().unwrap() = body.into();
    }
    /// Edit the exposition text in place.
    pub fn update(&self, f: impl FnOnce(&mut String)) {
        f(&mut self.shared.body.lock().unwrap());
    }
    /// The current text.
    pub fn body(&self) -> String {
        self.shared.body.lock().unwrap().clone()
    }
    /// How many `/metrics` requests were served so far.
    pub fn scrapes(&self) -> u64 {
        self.shared.scrapes.load(Ordering::SeqCst)
    }
}

fn handle(mut s: TcpStream, sh: &Shared) -> std::io::Result<()> {
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut req = Vec::new();
    let mut buf = [0u8; 2048];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") && req.len() < 64 * 1024 {
        let n = s.read(&mut buf)?;
        if n == 0 {
            break;
        }
        req.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&req);
    let path = head.split_whitespace().nth(1).unwrap_or("/");
    let (status, ctype, body) = if path == "/metrics" || path.starts_with("/metrics?") {
        sh.scrapes.fetch_add(1, Ordering::SeqCst);
        ("200 OK", "text/plain; version=0.0.4; charset=utf-8", sh.body.lock().unwrap().clone())
    } else {
        ("404 Not Found", "text/plain", "not found\n".to_owned())
    };
    write!(
        s,
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    s.flush()
}

impl Drop for Exporter {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Unblock accept().
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(500));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Render one sample line `name{k="v",…} value` (label values escaped).
pub fn sample(name: &str, labels: &[(&str, &str)], value: f64) -> String {
    format!("{}{} {}\n", name, render_labels(labels), fmt_value(value))
}

/// `{k="v",…}` or "" with no labels.
pub fn render_labels(labels: &[(&str, &str)]) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let inner: Vec<String> = labels
        .iter()
        .map(|(k, v)| {
            let v = v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
            format!("{k}=\"{v}\"")
        })
        .collect();
    format!("{{{}}}", inner.join(","))
}

/// A float in exposition syntax (shortest round-trip form; NaN/+Inf/-Inf spelled out).
pub fn fmt_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v:?}")
    }
}
