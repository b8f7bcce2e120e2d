//! A loopback HTTP proxy in front of the real nthlayer-core, to make core fail on cue the
//! way it does in production: while failing ([`CoreProxy::set_mode`]), every request (or
//! every write: reads still reach core, so a host starts) gets core's own 500 (`internal_error`, what core 4.0.1 answers for any store error, a
//! passing "database is locked" included); a request the refusal rule picks gets a 400 in
//! core's error shape (a payload core will never take); everything else is forwarded to
//! core and core's answer returned as it is.
//!
//! Synchronous like the rest of the harness: one std thread accepts, one thread serves
//! each connection (`Connection: close`), forwarding with a blocking client.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

/// Decides, from a POST's JSON body, whether core "refuses" it with a 400.
pub type Refusal = dyn Fn(&Value) -> bool + Send + Sync;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    Forward = 0,
    /// Every request gets core's 500.
    FailAll = 1,
    /// POST/PUT get core's 500; GETs reach core.
    FailWrites = 2,
}

struct Shared {
    core: String,
    mode: AtomicU8,
    refuse: Box<Refusal>,
    /// Requests answered 500 / 400 by the proxy itself.
    failed: AtomicU64,
    refused: AtomicU64,
    stop: AtomicBool,
}

pub struct CoreProxy {
    url: String,
    shared: Arc<Shared>,
}

impl CoreProxy {
    /// A proxy to `core_url` refusing nothing.
    pub fn start(core_url: &str) -> CoreProxy {
        Self::start_refusing(core_url, |_| false)
    }

    pub fn start_refusing(core_url: &str, refuse: impl Fn(&Value) -> bool + Send + Sync + 'static) -> CoreProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the core proxy");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let shared = Arc::new(Shared {
            core: core_url.trim_end_matches('/').to_string(),
            mode: AtomicU8::new(Mode::Forward as u8),
            refuse: Box::new(refuse),
            failed: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        });
        let sh = shared.clone();
        std::thread::spawn(move || {
            let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
            for sock in listener.incoming() {
                if sh.stop.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(sock) = sock else { continue };
                let (sh, client) = (sh.clone(), client.clone());
                std::thread::spawn(move || serve_one(sock, &sh, &client));
            }
        });
        CoreProxy { url, shared }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn set_mode(&self, mode: Mode) {
        self.shared.mode.store(mode as u8, Ordering::SeqCst);
    }

    /// Requests answered 500 so far.
    pub fn failed(&self) -> u64 {
        self.shared.failed.load(Ordering::Relaxed)
    }

    /// Requests refused with 400 so far.
    pub fn refused(&self) -> u64 {
        self.shared.refused.load(Ordering::Relaxed)
    }
}

impl Drop for CoreProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.url.trim_start_matches("http://"));
    }
}

fn serve_one(mut sock: TcpStream, sh: &Shared, client: &reqwest::blocking::Client) {
    let _ = sock.set_read_timeout(Some(Duration::from_secs(30)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16384];
    let head_end = loop {
        match sock.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or("").split_whitespace();
    let method = first.next().unwrap_or("").to_owned();
    let path = first.next().unwrap_or("").to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let len: usize = headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
    while buf.len() < head_end + len {
        match sock.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let body = buf[head_end..head_end + len].to_vec();
    let failing = match sh.mode.load(Ordering::SeqCst) {
        m if m == Mode::FailAll as u8 => true,
        m if m == Mode::FailWrites as u8 => method != "GET",
        _ => false,
    };
    let (status, content_type, answer) = if failing {
        sh.failed.fetch_add(1, Ordering::Relaxed);
        let e = json!({"error": "internal_error", "detail": {"message": "store operation failed"}});
        (500, "application/json".to_string(), e.to_string().into_bytes())
    } else if method == "POST" && serde_json::from_slice::<Value>(&body).is_ok_and(|v| (sh.refuse)(&v)) {
        sh.refused.fetch_add(1, Ordering::Relaxed);
        let e = json!({"error": "assessment_invalid", "detail": {"message": "refused by the test's rule"}});
        (400, "application/json".to_string(), e.to_string().into_bytes())
    } else {
        forward(sh, client, &method, &path, &headers, body)
    };
    let out = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        answer.len()
    );
    let _ = sock.write_all(out.as_bytes());
    let _ = sock.write_all(&answer);
    let _ = sock.flush();
}

/// Core's answer to the same request; no answer from core becomes a dropped connection's
/// equivalent, a 502, which the host treats as no answer.
fn forward(
    sh: &Shared,
    client: &reqwest::blocking::Client,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: Vec<u8>,
) -> (u16, String, Vec<u8>) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::GET);
    let mut req = client.request(method, format!("{}{path}", sh.core)).body(body);
    for (k, v) in headers {
        if k == "content-type" || k == "user-agent" {
            req = req.header(k.as_str(), v.as_str());
        }
    }
    match req.send() {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let ct = resp
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("application/octet-stream")
                .to_string();
            (status, ct, resp.bytes().map(|b| b.to_vec()).unwrap_or_default())
        }
        Err(e) => (502, "text/plain".into(), format!("core proxy: {e}").into_bytes()),
    }
}
