//! The arbiter's governance API: `POST {base}/api/v1/governance/reduce` with
//! `{"agent", "reason"}`, as the reference's remediation agent sends it: up to 3 attempts,
//! 10 s each, no pause between them. Unlike the reference, a 4xx is final (the arbiter
//! understood and refused; asking again changes nothing) and the answer's body is not
//! required to be JSON (nothing reads it).

use std::time::Duration;

use reqwest::header::CONTENT_TYPE;
use reqwest::Client;

use crate::backend::describe;
use crate::backend::{user_agent, ClientError};

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

    /// A copy that makes one attempt: the outbox's sender owns retrying across its passes.
    pub fn once(&self) -> Self {
        ArbiterClient { attempts: 1, ..self.clone() }
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
    use crate::test_support::{HttpFake, Matcher, Step};

    const PATH: &str = "/api/v1/governance/reduce";

    #[tokio::test]
    async fn posts_the_references_body_to_the_governance_path() {
        let body = serde_json::json!({"agent": "deploy-bot", "reason": "rolled back twice \"today\""});
        let fake = HttpFake::start(vec![Step::post(PATH).body(Matcher::Json(body)).reply(200, "{}")]);
        let a = ArbiterClient::new(&format!("{}/", fake.url())).unwrap();
        a.reduce_autonomy("deploy-bot", "rolled back twice \"today\"").await.unwrap();
        let seen = fake.seen();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].header("content-type"), Some("application/json"));
        fake.finish();
    }

    #[tokio::test]
    async fn three_attempts_through_5xx_and_timeouts() {
        let fake = HttpFake::start(vec![
            Step::post(PATH).reply(503, "{}"),
            Step::post(PATH).hang(),
            Step::post(PATH).reply(201, "{}"),
        ]);
        let a = ArbiterClient::with_timeout(fake.url(), Duration::from_millis(500)).unwrap();
        a.reduce_autonomy("a", "r").await.unwrap();
        assert_eq!(fake.seen().len(), 3);
        fake.finish();

        let fake = HttpFake::start(vec![
            Step::post(PATH).reply(500, "{}"),
            Step::post(PATH).reply(502, "{}"),
            Step::post(PATH).reply(503, "{}"),
            Step::post(PATH).reply(200, "{}"),
        ]);
        let a = ArbiterClient::new(fake.url()).unwrap();
        let e = a.reduce_autonomy("a", "r").await.unwrap_err();
        assert!(matches!(&e, ClientError::Unavailable(m) if m.contains("HTTP 503 (3 attempts)")), "{e:?}");
        assert_eq!(fake.seen().len(), 3, "a fourth attempt was made");

        let fake = HttpFake::start(vec![Step::post(PATH).hang().times(3)]);
        let a = ArbiterClient::with_timeout(fake.url(), Duration::from_millis(300)).unwrap();
        assert!(matches!(a.reduce_autonomy("a", "r").await, Err(ClientError::Timeout(_))));
        assert_eq!(fake.seen().len(), 3);
        fake.finish();
    }

    #[tokio::test]
    async fn a_refusal_is_final_and_a_dead_arbiter_is_unavailable() {
        let fake = HttpFake::start(vec![Step::post(PATH).reply(403, "{}"), Step::post(PATH).reply(200, "{}")]);
        let a = ArbiterClient::new(fake.url()).unwrap();
        assert!(matches!(a.reduce_autonomy("a", "r").await, Err(ClientError::Rejected { status: 403, .. })));
        assert_eq!(fake.seen().len(), 1);

        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let a = ArbiterClient::new(&format!("http://127.0.0.1:{port}")).unwrap();
        assert!(matches!(a.reduce_autonomy("a", "r").await, Err(ClientError::Unavailable(_))));
    }
}
