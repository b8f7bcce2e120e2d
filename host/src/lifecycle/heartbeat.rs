//! Heartbeats to core, as the reference sends them: `component:"workers"`, the instance id,
//! and the task names under `state.modules` — plus what we add: which version of each
//! component is serving and per-task cycle counters.
//!
//! It reads [`HostStatus`] and nothing else. Every change there (a cycle, a swap) wakes it;
//! changes within one second coalesce into one POST, so a burst of cycle completions costs
//! core one request (the reference sends one per 1 s tick too).

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::backend::core::{CoreClient, COMPONENT};
use crate::backend::retry::RetryPolicy;
use crate::lifecycle::status::HostStatus;
use crate::outbox::Outbox;

pub struct Heartbeat {
    core: CoreClient,
    instance_id: String,
    status: Arc<HostStatus>,
    /// Where a heartbeat core could not take waits (replacing an older one).
    outbox: Option<Arc<Outbox>>,
}

impl Heartbeat {
    pub fn new(
        core: CoreClient,
        instance_id: String,
        status: Arc<HostStatus>,
        outbox: Option<Arc<Outbox>>,
    ) -> Arc<Self> {
        Arc::new(Heartbeat { core, instance_id, status, outbox })
    }

    async fn send(&self, core: &CoreClient) {
        let state = self.status.snapshot();
        if let Err(e) = core.heartbeat(COMPONENT, &self.instance_id, &state).await {
            match &self.outbox {
                // Logged once by the breaker; a spooled heartbeat is sent when core is back.
                Some(o) => {
                    tracing::debug!(error = %e, "heartbeat failed; spooled");
                    o.heartbeat(&state).await;
                }
                None => tracing::warn!(error = %e, "heartbeat failed"),
            }
        }
    }

    /// Sends a heartbeat after each status change, at most one per second, until shutdown.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        // Heartbeats are best effort: a down core must not stall the next one for 7 s.
        let core = self.core.with_retry(RetryPolicy::none());
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.status.changed() => {}
            }
            self.send(&core).await;
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    /// The last heartbeat, bounded so shutdown stays bounded when core is down.
    pub async fn last(&self, within: Duration) {
        let core = self.core.with_retry(RetryPolicy::none());
        if tokio::time::timeout(within, self.send(&core)).await.is_err() {
            tracing::warn!("final heartbeat timed out");
        }
    }
}
