//! High availability: several replicas of the host against one core, one active per task,
//! elected through etcd (docs/HA.md). Without `--ha-etcd` nothing here runs.
//!
//! - [`timing`]: lease duration > renew deadline > 1.2 × retry period, on the monotonic clock;
//! - [`elector`]: one lease per replica, one election per task (lease-bound keys, the key's
//!   create revision as fencing token), the fence transaction that also hands the task's
//!   state to the next leader;
//! - [`hook`]: the scheduler's hook: leadership before a cycle, the handover at a term's first
//!   cycle, the fence before the spool commit;
//! - [`relay`]: event wake across replicas, through an etcd watch;
//! - [`ring`], [`presence`]: shards (`--ha-shards`): which replica should lead each shard
//!   (rendezvous hashing over the replicas' lease-bound presence keys), and the release of a
//!   shard to its rightful owner when a replica joins.

pub mod config;
pub mod elector;
pub mod hook;
pub mod presence;
pub mod relay;
pub mod ring;
pub mod timing;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use anyhow::Result;
use tokio_util::sync::CancellationToken;

use crate::lifecycle::scheduler::Scheduler;
use crate::lifecycle::status::HostStatus;
use config::HaArgs;
use elector::Elector;

/// A running HA replica.
pub struct Ha {
    pub elector: Arc<Elector>,
    stop: CancellationToken,
}

/// Starts HA if `--ha-etcd` is given: the election loop, its status in the heartbeat, and
/// the scheduler's hook. `None` without it.
pub async fn start(
    args: &HaArgs,
    replica: &str,
    status: &Arc<HostStatus>,
    scheduler: &Scheduler,
) -> Result<Option<Ha>> {
    let Some(cfg) = args.config()? else { return Ok(None) };
    let elector = Elector::new(&cfg, replica).await?;
    if scheduler.shards.set(cfg.shards.clone()).is_err() {
        anyhow::bail!("HA started twice on one scheduler");
    }
    // Its own token, not the scheduler's: cycles still in flight at shutdown need their
    // fence, so the lease is renewed until `resign`.
    let stop = CancellationToken::new();
    tokio::spawn(elector.clone().run(stop.clone()));
    let (e, s, st) = (elector.clone(), status.clone(), stop.clone());
    tokio::spawn(async move {
        loop {
            s.set_ha(e.status());
            tokio::select! {
                _ = st.cancelled() => return,
                _ = e.changed.notified() => {}
            }
        }
    });
    scheduler.add_hook(Arc::new(hook::LeaderOnly(elector.clone())));
    let services = scheduler.env.services.clone();
    relay::WakeRelay::start(elector.clone(), services.clone(), stop.clone());
    let _ = elector.on_won.set(Box::new(move |task| {
        services.wake.wake_task(task, "leadership acquired".into());
    }));
    tracing::info!(replica, etcd = %cfg.endpoints.join(","), prefix = %cfg.prefix,
        lease_ms = cfg.timing.lease.as_millis() as u64, renew_deadline_ms = cfg.timing.renew_deadline.as_millis() as u64,
        retry_ms = cfg.timing.retry.as_millis() as u64, "high availability through etcd");
    Ok(Some(Ha { elector, stop }))
}

impl Ha {
    /// A stopping replica releases its tasks at once (after its last cycles committed).
    pub async fn resign(&self) {
        self.stop.cancel();
        self.elector.resign().await;
    }
}
