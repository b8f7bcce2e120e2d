use super::client::WebhookClient;
use crate::bindings::latest::nthlayer::worker::webhook::Host;
use crate::bindings::HostError;
use crate::capability::shared::import::bounded;
use crate::capability::Capability;
use crate::runtime::store::StoreData;
use crate::tape::{self, Write};

impl Host for StoreData {
    async fn post(&mut self, body: String) -> Result<(), HostError> {
        self.guard(Capability::Webhook)?;
        self.check_request("webhook body", body.len())?;
        let client: Option<WebhookClient> = self.cx.services.backends.webhook.clone();
        let budget = self.budget();
        let args = serde_json::json!({ "body": body });
        let live = async move {
            let c = client.ok_or_else(|| HostError::Unavailable("start the host with --webhook-url".into()))?;
            bounded("the webhook", budget, c.post(&body)).await
        };
        tape::write(self.cx.tape.clone(), "webhook", "post", (Write::Autonomy, args.clone()), args, || (), live).await
    }
}
