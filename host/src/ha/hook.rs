//! HA's place around a cycle (the scheduler's `CycleHook`): no leadership, no cycle; the
//! first cycle of a term waits out the interval since the previous leader's last cycle and
//! starts from the state it committed; no commit to the spool without the fence; and the
//! cycle's randomness is seeded from the cycle (runtime/seeded.rs), so two replicas that
//! ever run the same cycle make the same record ids.

use std::sync::Arc;
use std::time::SystemTime;

use futures_util::future::BoxFuture;

use super::elector::Elector;
use crate::lifecycle::hooks::{CycleHook, CycleInfo, CycleReport};
use crate::runtime::seeded;
use crate::runtime::task_state::TaskState;

pub struct LeaderOnly(pub Arc<Elector>);

impl CycleHook for LeaderOnly {
    fn before<'a>(&'a self, cycle: &'a CycleInfo) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            self.0.leads(&cycle.task)?;
            self.0.takeover(&cycle.task, cycle.interval).await?;
            self.0.busy(&cycle.task, true);
            Ok(())
        })
    }

    fn handover<'a>(&'a self, cycle: &'a CycleInfo) -> BoxFuture<'a, Result<Option<TaskState>, String>> {
        Box::pin(async move {
            let state = self.0.handed_state(&cycle.task, &cycle.module).as_ref().map(TaskState::from_value);
            if state.is_some() {
                tracing::info!(task = %cycle.task, "starting from the state the previous leader committed");
            }
            Ok(state)
        })
    }

    fn seed(&self, cycle: &CycleInfo, state: Option<&TaskState>) -> Option<seeded::Seed> {
        Some(seeded::seed(&cycle.task, state, seeded::slot(SystemTime::now(), cycle.interval)))
    }

    fn fence<'a>(&'a self, cycle: &'a CycleInfo, state: Option<&'a TaskState>) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let r = self.0.fence(&cycle.task, &cycle.module, &cycle.version, state, cycle.interval).await;
            if let Err(e) = &r {
                tracing::warn!(task = %cycle.task, replica = %self.0.replica, error = %e,
                    "fence failed: the cycle's records and state are dropped, not committed");
            }
            r
        })
    }

    fn after<'a>(&'a self, report: &'a CycleReport) -> BoxFuture<'a, ()> {
        Box::pin(async move { self.0.busy(&report.cycle.task, false) })
    }
}
