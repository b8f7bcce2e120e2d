#[derive(Debug, Clone, clap::Args)]
pub struct WebhookArgs {
    /// Where the webhook import posts.
    #[arg(long, env = "NTHLAYER_WEBHOOK_URL")]
    pub webhook_url: Option<String>,
}
