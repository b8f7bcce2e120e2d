//! HA's place around a cycle (the scheduler's `CycleHook`): no leadership, no cycle; the
//! first cycle of a term starts from the state the previous leader committed; and no commit
//! to the spool without the fence.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde_json::Value;

use super::elector::Elector;
use crate::lifecycle::hooks::{CycleHook, CycleInfo};

pub struct LeaderOnly(pub Arc<Elector>);

impl CycleHook for LeaderOnly {
    fn before<'a>(&'a self, cycle: &'a CycleInfo) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move { self.0.leads(&cycle.task).map(|_| ()) })
    }

    fn handover<'a>(&'a self, cycle: &'a CycleInfo) -> BoxFuture<'a, Result<Option<Value>, String>> {
        Box::pin(async move {
            let state = self.0.handed_state(&cycle.task, &cycle.module).await?;
            if state.is_some() {
                tracing::info!(task = %cycle.task, "starting from the state the previous leader committed");
            }
            Ok(state)
        })
    }

    fn fence<'a>(&'a self, cycle: &'a CycleInfo, state: Option<&'a Value>) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let r = self.0.fence(&cycle.task, &cycle.module, &cycle.version, state).await;
            if let Err(e) = &r {
                tracing::warn!(task = %cycle.task, replica = %self.0.replica, error = %e,
                    "fence failed: the cycle's records and state are dropped, not committed");
            }
            r
        })
    }
}
