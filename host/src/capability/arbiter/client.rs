//! The arbiter's governance API: `POST {base}/api/v1/governance/reduce` with
//! `{"agent", "reason"}`, as the reference's remediation agent sends it: up to 3 attempts,
//! 10 s each, no pause between them. Unlike the reference, a 4xx is final (the arbiter
//! understood and refused; asking again changes nothing) and the answer's body is not
//! required to be JSON (nothing reads it).

use std::time::Duration;

use reqwest::header::CONTENT_TYPE;
use reqwest::Client;

use crate::capability::shared::describe;
use crate::capability::shared::{user_agent, ClientError};

#[derive(Clone)]
pub struct ArbiterClient {
    http: Client,
    base: String,
    attempts: u32,
    attempt_timeout: Duration,
}

impl ArbiterClient {
    pub const ATTEMPTS: u32 = 3;
    pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

    pub fn new(base: &str) -> anyhow::Result<Self> {
        Self::with_timeout(base, Self::ATTEMPT_TIMEOUT)
    }

    /// A shorter per-attempt timeout, so tests need not wait 30 s for a silent server.
    pub fn with_timeout(base: &str, attempt_timeout: Duration) -> anyhow::Result<Self> {
        let http = Client::builder().user_agent(user_agent()).timeout(attempt_timeout).build()?;
        Ok(ArbiterClient {
            http,
            base: base.trim_end_matches('/').to_string(),
            attempts: Self::ATTEMPTS,
            attempt_timeout,
        })
    }

    /// The longest a call can take: every attempt timing out.
    pub fn worst_case(&self) -> Duration {
        self.attempt_timeout * self.attempts
    }

    pub async fn reduce_autonomy(&self, agent: &str, reason: &str) -> Result<(), ClientError> {
        let url = format!("{}/api/v1/governance/reduce", self.base);
        let body = serde_json::json!({"agent": agent, "reason": reason}).to_string();
        let mut last = ClientError::Unavailable(format!("arbiter at {} not tried", self.base));
        for _ in 0..self.attempts {
            let sent = self.http.post(&url).header(CONTENT_TYPE, "application/json").body(body.clone()).send().await;
            let resp = match sent {
                Ok(r) => r,
                Err(e) if e.is_timeout() => {
                    last = ClientError::Timeout(format!("arbiter at {} timed out", self.base));
                    continue;
                }
                Err(e) => {
                    last = ClientError::Unavailable(format!("arbiter at {} unreachable: {}", self.base, describe(&e)));
                    continue;
                }
            };
            let status = resp.status().as_u16();
            let answer = resp.bytes().await.unwrap_or_default();
            if (200..300).contains(&status) {
                return Ok(());
            }
            if status >= 500 {
                last = ClientError::Unavailable(format!("arbiter at {} answered HTTP {status}", self.base));
                continue;
            }
            return Err(ClientError::from_response(status, &answer));
        }
        Err(match last {
            ClientError::Unavailable(m) => ClientError::Unavailable(format!("{m} ({} attempts)", self.attempts)),
            ClientError::Timeout(m) => ClientError::Timeout(format!("{m} ({} attempts)", self.attempts)),
            other => other,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;
    use std::sync::{Arc, Mutex};

    /// (request line, lower-cased headers, body) of every request the server saw.
    type Seen = Arc<Mutex<Vec<(String, Vec<String>, String)>>>;

    /// One scripted answer per connection; `None` reads the request and never answers.
    fn server(script: Vec<Option<u16>>) -> (String, Seen) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen: Seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            let mut silent = Vec::new();
            for status in script {
                let Ok((stream, _)) = listener.accept() else { return };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let (mut headers, mut len) = (Vec::new(), 0);
                loop {
                    let mut h = String::new();
                    reader.read_line(&mut h).unwrap();
                    let h = h.trim().to_ascii_lowercase();
                    if h.is_empty() {
                        break;
                    }
                    if let Some(v) = h.strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap();
                    }
                    headers.push(h);
                }
                let mut body = vec![0; len];
                reader.read_exact(&mut body).unwrap();
                log.lock().unwrap().push((line.trim().to_string(), headers, String::from_utf8(body).unwrap()));
                let mut s = stream;
                match status {
                    Some(status) => {
                        let _ = write!(s, "HTTP/1.1 {status} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{{}}");
                    }
                    None => silent.push(s),
                }
            }
            std::thread::sleep(Duration::from_secs(5));
        });
        (url, seen)
    }

    #[tokio::test]
    async fn posts_the_references_body_to_the_governance_path() {
        let (url, seen) = server(vec![Some(200)]);
        let a = ArbiterClient::new(&format!("{url}/")).unwrap();
        a.reduce_autonomy("deploy-bot", "rolled back twice \"today\"").await.unwrap();
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        let (line, headers, body) = &seen[0];
        assert_eq!(line, "POST /api/v1/governance/reduce HTTP/1.1");
        assert!(headers.contains(&"content-type: application/json".to_string()), "{headers:?}");
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v, serde_json::json!({"agent": "deploy-bot", "reason": "rolled back twice \"today\""}));
    }

    #[tokio::test]
    async fn three_attempts_through_5xx_and_timeouts() {
        let (url, seen) = server(vec![Some(503), None, Some(201)]);
        let a = ArbiterClient::with_timeout(&url, Duration::from_millis(500)).unwrap();
        a.reduce_autonomy("a", "r").await.unwrap();
        assert_eq!(seen.lock().unwrap().len(), 3);

        let (url, seen) = server(vec![Some(500), Some(502), Some(503), Some(200)]);
        let a = ArbiterClient::new(&url).unwrap();
        let e = a.reduce_autonomy("a", "r").await.unwrap_err();
        assert!(matches!(&e, ClientError::Unavailable(m) if m.contains("HTTP 503 (3 attempts)")), "{e:?}");
        assert_eq!(seen.lock().unwrap().len(), 3, "a fourth attempt was made");

        let (url, seen) = server(vec![None, None, None]);
        let a = ArbiterClient::with_timeout(&url, Duration::from_millis(300)).unwrap();
        assert!(matches!(a.reduce_autonomy("a", "r").await, Err(ClientError::Timeout(_))));
        assert_eq!(seen.lock().unwrap().len(), 3);
    }

    #[tokio::test]
    async fn a_refusal_is_final_and_a_dead_arbiter_is_unavailable() {
        let (url, seen) = server(vec![Some(403), Some(200)]);
        let a = ArbiterClient::new(&url).unwrap();
        assert!(matches!(a.reduce_autonomy("a", "r").await, Err(ClientError::Rejected { status: 403, .. })));
        assert_eq!(seen.lock().unwrap().len(), 1);

        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let a = ArbiterClient::new(&format!("http://127.0.0.1:{port}")).unwrap();
        assert!(matches!(a.reduce_autonomy("a", "r").await, Err(ClientError::Unavailable(_))));
    }
}
