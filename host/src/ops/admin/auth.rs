//! Who may use the admin API: a bearer token read from a file, compared in constant time,
//! and a log line for every call (route, caller, outcome), allowed or not.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use super::{AdminCtx, ApiError};

/// Reads a token file: its content without surrounding whitespace, which must not be empty.
pub fn read_token(path: &Path) -> Result<Vec<u8>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read admin token file {}", path.display()))?;
    let token = text.trim();
    if token.is_empty() {
        bail!("admin token file {} is empty", path.display());
    }
    Ok(token.as_bytes().to_vec())
}

/// Ok if the request carries the configured token. No token configured: 403 for everyone
/// (the API exists but is switched off); a missing or wrong token: 401.
fn authorize(ctx: &AdminCtx, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(expected) = ctx.token.load_full() else {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            "the admin API is disabled: serve was started without --admin-token-file".into(),
        ));
    };
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match given {
        None => Err(ApiError(StatusCode::UNAUTHORIZED, "missing Authorization: Bearer <token>".into())),
        // ct_eq compares every byte whatever the first difference (lengths are not secret).
        Some(t) if bool::from(t.as_bytes().ct_eq(&expected)) => Ok(()),
        Some(_) => Err(ApiError(StatusCode::UNAUTHORIZED, "wrong admin token".into())),
    }
}

/// The middleware in front of every admin route.
pub async fn guard(State(ctx): State<Arc<AdminCtx>>, req: Request, next: Next) -> Response {
    let route = format!("{} {}", req.method(), req.uri().path());
    let caller =
        req.extensions().get::<ConnectInfo<SocketAddr>>().map_or_else(|| "unknown".to_string(), |c| c.0.to_string());
    let resp = match authorize(&ctx, req.headers()) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    };
    let status = resp.status().as_u16();
    if resp.status().is_success() {
        tracing::info!(%route, %caller, status, "admin action");
    } else {
        tracing::warn!(%route, %caller, status, "admin action refused or failed");
    }
    resp
}
