//! `nthlayer:worker/arbiter`: respond's one outward side effect, off unless the operator
//! names an arbiter. The call may take the client's full retry schedule (3 × 10 s), still
//! cut short by the cycle deadline.

use super::bounded;
use crate::bindings::latest::nthlayer::worker::arbiter::Host;
use crate::bindings::HostError;
use crate::capabilities::Capability;
use crate::runtime::store::StoreData;

impl Host for StoreData {
    async fn reduce_autonomy(&mut self, agent: String, reason: String) -> Result<(), HostError> {
        self.guard(Capability::Arbiter)?;
        let arbiter = self.cx.services.arbiter.clone().ok_or_else(|| {
            HostError::Unavailable("arbiter not configured: start the host with --arbiter-url".into())
        })?;
        self.check_request("agent and reason", agent.len() + reason.len())?;
        let budget = self.call_budget(arbiter.worst_case());
        bounded("the arbiter", budget, arbiter.reduce_autonomy(&agent, &reason)).await
    }
}
