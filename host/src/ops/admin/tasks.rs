//! Pause, resume, run now (lifecycle/control.rs keeps the pauses, in the state directory).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::json;

use super::{ok, AdminCtx, Answer, ApiError};

pub async fn act(State(ctx): State<Arc<AdminCtx>>, Path((task, action)): Path<(String, String)>) -> Answer {
    let owner = ctx.registry.all().into_iter().find_map(|(name, slot)| {
        slot.current().meta.tasks.iter().find(|t| t.name == task).map(|t| (name, t.interval_seconds > 0))
    });
    let Some((module, scheduled)) = owner else {
        return Err(ApiError(StatusCode::NOT_FOUND, format!("no loaded module provides task {task:?}")));
    };
    let failed = |e: anyhow::Error| ApiError(StatusCode::INTERNAL_SERVER_ERROR, format!("task {task:?}: {e:#}"));
    match action.as_str() {
        "pause" | "resume" => {
            let pause = action == "pause";
            let changed = ctx.control.set_paused(&task, pause).map_err(failed)?;
            tracing::warn!(%task, %module, paused = pause, changed, "task {action}d by the operator");
            ctx.status.touch();
            ok(json!({"task": task, "module": module, "paused": pause, "changed": changed}))
        }
        "run" if !scheduled => Err(ApiError(
            StatusCode::CONFLICT,
            format!("task {task:?} is on-demand (no schedule); run it with: nthlayer-host run --task {task}"),
        )),
        "run" => {
            // A paused task waits in its hold: let it through once. A running one waits for
            // its interval: wake it (at most once per wake floor, as any wake).
            if ctx.control.is_paused(&task) {
                ctx.control.run_now(&task);
            } else if !ctx.env.services.wake.wake_task(&task, "the operator (admin API)".into()) {
                return Err(ApiError(StatusCode::CONFLICT, format!("task {task:?} has no running loop right now")));
            }
            tracing::info!(%task, %module, "task run requested by the operator");
            Ok((StatusCode::ACCEPTED, axum::Json(json!({"task": task, "module": module, "run": "requested"}))))
        }
        other => Err(ApiError(StatusCode::NOT_FOUND, format!("no task action {other:?} (pause, resume, run)"))),
    }
}
