use crate::capability::shared::{describe, user_agent, ClientError};

#[derive(Clone)]
pub struct WebhookClient {
    http: reqwest::Client,
    url: String,
}

impl WebhookClient {
    pub fn new(url: &str, timeout: std::time::Duration) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder().user_agent(user_agent()).timeout(timeout).build()?;
        Ok(WebhookClient { http, url: url.to_string() })
    }

    pub async fn post(&self, body: &str) -> Result<(), ClientError> {
        let r = self.http.post(&self.url).body(body.to_string()).send().await;
        let r = r.map_err(|e| ClientError::Unavailable(format!("webhook unreachable: {}", describe(&e))))?;
        let status = r.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(());
        }
        Err(ClientError::from_response(status, &r.bytes().await.unwrap_or_default()))
    }
}
