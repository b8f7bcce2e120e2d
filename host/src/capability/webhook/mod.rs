pub mod client;
pub mod config;
mod import;

use super::{Shared, Unit};

pub struct Webhook;

impl Unit for Webhook {
    type Config = config::WebhookArgs;
    type Backend = Option<client::WebhookClient>;

    fn build(cfg: &config::WebhookArgs, shared: &Shared) -> anyhow::Result<Self::Backend> {
        cfg.webhook_url.as_deref().map(|u| client::WebhookClient::new(u, shared.http_timeout)).transpose()
    }
}
