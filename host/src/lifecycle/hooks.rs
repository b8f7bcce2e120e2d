//! Running the scheduler's cycle hooks ([`CycleHook`]) at their two points inside a cycle, so
//! the scheduler makes one call at each.

use std::sync::Arc;

use futures_util::future::try_join_all;
use serde_json::Value;

use super::scheduler::{CycleHook, CycleInfo};

/// Every `before` in order (the first Err skips the cycle), then every `handover`: the first
/// state one hands over, if any.
pub(crate) async fn ready(hooks: &[Arc<dyn CycleHook>], info: &CycleInfo) -> Result<Option<Value>, String> {
    for h in hooks {
        h.before(info).await?;
    }
    Ok(try_join_all(hooks.iter().map(|h| h.handover(info))).await?.into_iter().flatten().next())
}

/// Every `fence`; any Err stops the commit.
pub(crate) async fn fenced(
    hooks: &[Arc<dyn CycleHook>],
    info: &CycleInfo,
    state: Option<&Value>,
) -> Result<(), String> {
    try_join_all(hooks.iter().map(|h| h.fence(info, state))).await.map(drop)
}
