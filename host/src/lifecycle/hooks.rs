//! Code that runs around every scheduled cycle, and the adapters of the rooms below that
//! take part. The rooms themselves offer plain methods (the outbox's `admit`); only the
//! lifecycle knows the hook trait, so nothing below it imports the scheduler.

use std::sync::Arc;
use std::time::Duration;

use crate::outbox::Outbox;
use crate::runtime::task_state::TaskState;
use futures_util::future::{try_join_all, BoxFuture};

/// Which cycle a hook is called for.
#[derive(Debug, Clone)]
pub struct CycleInfo {
    pub module: String,
    pub version: String,
    pub task: String,
    /// The task's period (start to start), for hooks that reason in intervals (HA's slot).
    pub interval: Duration,
}

/// How a cycle ended, for after-cycle hooks.
#[derive(Debug, Clone)]
pub struct CycleReport {
    pub cycle: CycleInfo,
    pub ok: bool,
    pub error: Option<String>,
    pub emitted: u32,
    /// The cycle's state was committed: to the spool with its records (serve), or PUT to
    /// core (false: failed cycle, or core unreachable without a spool).
    pub state_saved: bool,
    pub duration: Duration,
}

/// Code that runs around every scheduled cycle: HA's lease check attaches `before` (a lost
/// lease skips the cycle), as does the outbox when its spool is full. Both default to nothing.
pub trait CycleHook: Send + Sync {
    /// Err skips the cycle (logged with the reason; the task's state is kept).
    fn before<'a>(&'a self, _cycle: &'a CycleInfo) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }
    /// A state to start from instead of the task's own (HA's handover); Err skips the cycle.
    fn handover<'a>(&'a self, _cycle: &'a CycleInfo) -> BoxFuture<'a, Result<Option<TaskState>, String>> {
        Box::pin(async { Ok(None) })
    }
    /// Just before a cycle's effects and state are committed (HA's fence); Err drops them.
    fn fence<'a>(&'a self, _cycle: &'a CycleInfo, _state: Option<&'a TaskState>) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }
    /// A seed for the cycle's randomness instead of the real one (HA: runtime/seeded.rs).
    fn seed(&self, _cycle: &CycleInfo, _state: Option<&TaskState>) -> Option<crate::runtime::seeded::Seed> {
        None
    }
    /// After the cycle ran and its state was persisted (or not).
    fn after<'a>(&'a self, _report: &'a CycleReport) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }
}

/// A full spool refuses new cycles of tasks whose records still wait for core.
impl CycleHook for Outbox {
    fn before<'a>(&'a self, cycle: &'a CycleInfo) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(self.admit(&cycle.task))
    }
}

/// Every `before` in order (the first Err skips the cycle), then every `handover`: the first
/// state one hands over, if any.
pub(crate) async fn ready(hooks: &[Arc<dyn CycleHook>], info: &CycleInfo) -> Result<Option<TaskState>, String> {
    for h in hooks {
        h.before(info).await?;
    }
    Ok(try_join_all(hooks.iter().map(|h| h.handover(info))).await?.into_iter().flatten().next())
}

/// Every `fence`; any Err stops the commit.
pub(crate) async fn fenced(
    hooks: &[Arc<dyn CycleHook>],
    info: &CycleInfo,
    state: Option<&TaskState>,
) -> Result<(), String> {
    try_join_all(hooks.iter().map(|h| h.fence(info, state))).await.map(drop)
}
