//! Code that runs around every scheduled cycle, and the adapters of the rooms below that
//! take part. The rooms themselves offer plain methods (the outbox's `admit`); only the
//! lifecycle knows the hook trait, so nothing below it imports the scheduler.

use std::time::Duration;

use futures_util::future::BoxFuture;

use crate::outbox::Outbox;

/// Which cycle a hook is called for.
#[derive(Debug, Clone)]
pub struct CycleInfo {
    pub module: String,
    pub version: String,
    pub task: String,
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
