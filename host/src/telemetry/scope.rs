//! Which cycle is running on this task, so a host call deep in a room (which sees no
//! module name at the await point: the store data is not `Sync`) is counted under it. The
//! guest runs on a wasmtime fiber polled inside the cycle's future on the same thread, so
//! a task-local set around that future is visible to every import.

use std::future::Future;
use std::sync::Arc;

use super::TaskLabels;

#[derive(Clone, Debug)]
pub struct Cycle {
    pub module: Arc<str>,
    pub task: Arc<str>,
}

impl Cycle {
    pub(super) fn task_labels(&self) -> TaskLabels {
        TaskLabels { module: self.module.to_string(), task: self.task.to_string() }
    }
}

tokio::task_local! {
    static CYCLE: Cycle;
}

/// Runs `fut` as `module`'s `task` for the recorders that read [`current`].
pub async fn in_cycle<F: Future>(module: &str, task: &str, fut: F) -> F::Output {
    CYCLE.scope(Cycle { module: module.into(), task: task.into() }, fut).await
}

/// The cycle being run, if any.
pub fn current() -> Option<Cycle> {
    CYCLE.try_with(Cycle::clone).ok()
}

/// The span every line of a cycle is logged in (and, with `otel`, its trace's root): its
/// fields are flattened onto each JSON log line written inside it.
pub fn cycle_span(module: &str, version: &str, task: &str) -> tracing::Span {
    tracing::info_span!("cycle", module = %module, version = %version, task = %task)
}
