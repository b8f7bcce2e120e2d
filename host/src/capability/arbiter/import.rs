//! `nthlayer:worker/arbiter`: respond's one outward side effect, off unless the operator
//! names an arbiter. The call may take the client's full retry schedule (3 × 10 s), still
//! cut short by the cycle deadline.

use crate::bindings::latest::nthlayer::worker::arbiter::Host;
use crate::bindings::HostError;
use crate::capability::shared::import::bounded;
use crate::capability::Capability;
use crate::runtime::store::StoreData;
use crate::tape::{self, Write};

impl Host for StoreData {
    async fn reduce_autonomy(&mut self, agent: String, reason: String) -> Result<(), HostError> {
        self.guard(Capability::Arbiter)?;
        self.check_request("agent and reason", agent.len() + reason.len())?;
        let arbiter = self.cx.services.backends.arbiter.clone();
        let budget = self.call_budget(arbiter.as_ref().map_or(std::time::Duration::ZERO, |a| a.worst_case()));
        let args = serde_json::json!({"agent": agent, "reason": reason});
        // The configuration check is part of the live call: a replay answers from its fixture
        // whether or not this host has an arbiter.
        let live = async move {
            let arbiter = arbiter.ok_or_else(|| {
                HostError::Unavailable("arbiter not configured: start the host with --arbiter-url".into())
            })?;
            bounded("the arbiter", budget, arbiter.reduce_autonomy(&agent, &reason)).await
        };
        let captured = (Write::Autonomy, args.clone());
        tape::write(self.cx.tape.clone(), "arbiter", "reduce-autonomy", captured, args, || (), live).await
    }
}
