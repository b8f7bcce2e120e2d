//! A loopback stand-in for Grafana Tempo's HTTP API: `GET /api/metrics/query_range` and
//! `GET /api/search` answered from recordings (`tests/fixtures/correlate/tempo/*.json`, in
//! Tempo's own response shapes), or deliberately down (HTTP 503) or answering garbage
//! (HTML with status 200). Records every request with its decoded query and headers.
//! Synchronous like the rest of the harness; `Connection: close` per request.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// How the fake answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Recorded,
    Down,
    Garbage,
}

#[derive(Debug, Clone)]
pub struct TempoRequest {
    pub path: String,
    pub query: BTreeMap<String, String>,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
}

impl TempoRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

struct Shared {
    mode: Mutex<Mode>,
    requests: Mutex<Vec<TempoRequest>>,
    query_range: String,
    search: String,
}

pub struct FakeTempo {
    url: String,
    port: u16,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeTempo {
    /// Serves `<dir>/query_range.json` and `<dir>/search.json`.
    pub fn start(recordings: &Path) -> FakeTempo {
        let read = |f: &str| {
            let p = recordings.join(f);
            std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        };
        let shared = Arc::new(Shared {
            mode: Mutex::new(Mode::Recorded),
            requests: Mutex::new(Vec::new()),
            query_range: read("query_range.json"),
            search: read("search.json"),
        });
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let (sh, stopped) = (shared.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(sock) = conn else { continue };
                let sh = sh.clone();
                std::thread::spawn(move || serve_one(sock, &sh));
            }
        });
        FakeTempo { url: format!("http://127.0.0.1:{port}"), port, shared, stop, thread: Some(thread) }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.shared.mode.lock().unwrap() = mode;
    }

    pub fn requests(&self) -> Vec<TempoRequest> {
        self.shared.requests.lock().unwrap().clone()
    }
}

impl Drop for FakeTempo {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve_one(mut sock: TcpStream, sh: &Shared) {
    let _ = sock.set_read_timeout(Some(Duration::from_secs(10)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
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
    let target = lines.next().unwrap_or("").split_whitespace().nth(1).unwrap_or("").to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let (path, qs) = target.split_once('?').unwrap_or((target.as_str(), ""));
    let query = qs
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect();
    sh.requests.lock().unwrap().push(TempoRequest { path: path.to_owned(), query, headers });
    let mode = *sh.mode.lock().unwrap();
    let (status, ctype, body) = match (mode, path) {
        (Mode::Down, _) => (503, "text/plain", "upstream unavailable".to_owned()),
        (Mode::Garbage, _) => (200, "text/html", "<html><body>502 Bad Gateway</body></html>".to_owned()),
        (Mode::Recorded, "/api/metrics/query_range") => (200, "application/json", sh.query_range.clone()),
        (Mode::Recorded, "/api/search") => (200, "application/json", sh.search.clone()),
        (Mode::Recorded, _) => (404, "text/plain", "404 page not found".to_owned()),
    };
    let out = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = sock.write_all(out.as_bytes());
    let _ = sock.flush();
}

/// application/x-www-form-urlencoded decoding (`+` is a space).
fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn decodes_form_encoding() {
        assert_eq!(super::decode("%7B+a+%3D+%22x%22+%7D"), "{ a = \"x\" }");
        assert_eq!(super::decode("100%"), "100%");
    }
}
