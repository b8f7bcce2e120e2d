//! `nthlayer:worker/arbiter`: respond's one outward side effect, off unless the operator
//! names an arbiter. A scheduled cycle's reduction is held for its commit and delivered by
//! the outbox's sender; a one-shot command's call may take the client's full retry schedule
//! (3 × 10 s), still cut short by the cycle deadline.

use crate::bindings::latest::nthlayer::worker::arbiter::Host;
use crate::bindings::HostError;
use crate::capability::shared::import::bounded;
use crate::policy::table::Capability;
use super::State;
use crate::capability::View;
use crate::tape::{self, Write};

impl Host for View<'_, State> {
    async fn reduce_autonomy(&mut self, agent: String, reason: String) -> Result<(), HostError> {
        self.cx.guard(Capability::Arbiter)?;
        self.cx.check_request("agent and reason", agent.len() + reason.len())?;
        let arbiter = self.state.client.clone();
        let budget = self.cx.call_budget(arbiter.as_ref().map_or(std::time::Duration::ZERO, |a| a.worst_case()));
        let args = serde_json::json!({"agent": agent, "reason": reason});
        // A scheduled cycle's reduction goes out only once the cycle commits (outbox/). With
        // no arbiter there is nothing to hold: the live path below answers `unavailable` at once.
        if self.cx.holding && arbiter.is_some() {
            let bytes = agent.len() + reason.len();
            let effect = crate::outbox::Effect::Autonomy { agent: agent.clone(), reason: reason.clone() };
            self.state.held.hold(effect, bytes).map_err(HostError::Invalid)?;
            let live = std::future::ready(Ok(()));
            let captured = (Write::Autonomy, args.clone());
            return tape::write(self.cx.tape.clone(), "arbiter", "reduce-autonomy", captured, args, || (), live).await;
        }
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
