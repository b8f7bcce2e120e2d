//! The outbox's set-aside records, through the same functions as `nthlayer-host outbox`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::json;

use super::{ok, AdminCtx, Answer, ApiError};
use crate::outbox::admin as cli;

fn error(e: anyhow::Error) -> ApiError {
    let status =
        if e.downcast_ref::<cli::Missing>().is_some() { StatusCode::NOT_FOUND } else { StatusCode::BAD_REQUEST };
    ApiError(status, format!("{e:#}"))
}

pub async fn list(State(ctx): State<Arc<AdminCtx>>) -> Answer {
    ok(json!(cli::list_json(&ctx.state_dir).map_err(error)?))
}

pub async fn show(State(ctx): State<Arc<AdminCtx>>, Path(id): Path<i64>) -> Answer {
    ok(cli::show(&ctx.state_dir, id).map_err(error)?)
}

/// A non-empty body is the corrected JSON to send instead of the refused one.
pub async fn requeue(State(ctx): State<Arc<AdminCtx>>, Path(id): Path<i64>, body: Bytes) -> Answer {
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError(StatusCode::BAD_REQUEST, format!("the corrected body for entry {id} is not UTF-8")))?;
    let text = Some(text).filter(|t| !t.trim().is_empty());
    let label = || format!("the corrected body for entry {id}");
    ok(json!({"result": cli::requeue(&ctx.state_dir, id, text, &label).map_err(error)?}))
}

pub async fn drop_entry(State(ctx): State<Arc<AdminCtx>>, Path(id): Path<i64>) -> Answer {
    ok(json!({"result": cli::drop_entry(&ctx.state_dir, id).map_err(error)?}))
}
