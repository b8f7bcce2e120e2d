//! A loopback stand-in for Grafana Tempo's HTTP API: `GET /api/metrics/query_range` and
//! `GET /api/search` answered from recordings (`tests/fixtures/correlate/tempo/*.json`, in
//! Tempo's own response shapes), or deliberately down (HTTP 503) or answering garbage
//! (HTML with status 200). Records every request with its decoded query and headers. The
//! scripted HTTP fake with one computed step, on a runtime of its own.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use nthlayer_http_fake::{BlockingHttpFake, HttpFake, Reply, Step};

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

pub struct FakeTempo {
    fake: BlockingHttpFake,
    mode: Arc<Mutex<Mode>>,
}

impl FakeTempo {
    /// Serves `<dir>/query_range.json` and `<dir>/search.json`.
    pub fn start(recordings: &Path) -> FakeTempo {
        let read = |f: &str| {
            let p = recordings.join(f);
            std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        };
        let (query_range, search) = (read("query_range.json"), read("search.json"));
        let mode = Arc::new(Mutex::new(Mode::Recorded));
        let current = mode.clone();
        let fake = HttpFake::start_blocking(vec![Step::serve(move |req, _| {
            let mode = *current.lock().unwrap();
            let (status, ctype, body) = match (mode, req.path.as_str()) {
                (Mode::Down, _) => (503, "text/plain", "upstream unavailable".to_owned()),
                (Mode::Garbage, _) => (200, "text/html", "<html><body>502 Bad Gateway</body></html>".to_owned()),
                (Mode::Recorded, "/api/metrics/query_range") => (200, "application/json", query_range.clone()),
                (Mode::Recorded, "/api/search") => (200, "application/json", search.clone()),
                (Mode::Recorded, _) => (404, "text/plain", "404 page not found".to_owned()),
            };
            Reply::Respond { status, headers: vec![("content-type".into(), ctype.into())], body }
        })]);
        FakeTempo { fake, mode }
    }

    pub fn url(&self) -> &str {
        self.fake.url()
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    pub fn requests(&self) -> Vec<TempoRequest> {
        self.fake
            .seen()
            .into_iter()
            .map(|s| TempoRequest { query: decode(s.query.as_deref().unwrap_or("")), path: s.path, headers: s.headers })
            .collect()
    }
}

/// A query string's pairs, form-decoded (`+` is a space).
fn decode(query: &str) -> BTreeMap<String, String> {
    url::form_urlencoded::parse(query.as_bytes()).into_owned().collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn decodes_form_encoding() {
        let q = super::decode("q=%7B+a+%3D+%22x%22+%7D&limit=100%");
        assert_eq!(q["q"], "{ a = \"x\" }");
        assert_eq!(q["limit"], "100%");
    }
}
