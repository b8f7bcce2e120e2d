//! The admin API: an operator's hands on a running host — which modules run, pause /
//! resume / run-now of a task, upload and unload of modules, the outbox's set-aside
//! records, and re-reading the config file.
//!
//! [`routes`] is an axum Router on its own context, so it can be merged into any listener;
//! `serve` gives it its own (`--admin-listen`) so the unauthenticated probes and metrics can
//! sit on another address than the API that changes things. Every route needs
//! `Authorization: Bearer <token>` (auth.rs); each call is logged with route, caller and
//! outcome. Routes (all JSON):
//!
//! | route | what |
//! | --- | --- |
//! | `GET /-/admin/status` | what the status page shows (heartbeat state + paused tasks + modules) |
//! | `GET /-/admin/modules` | modules: version, sha256, origin, tasks, grants, limits, emissions |
//! | `POST /-/admin/modules?file=NAME.wasm` | upload (body: the component), validated as a dropped file |
//! | `DELETE /-/admin/modules/{name}` | unload |
//! | `POST /-/admin/tasks/{task}/{pause,resume,run}` | pause (persisted), resume, run once now |
//! | `GET /-/admin/outbox/aside`, `GET …/aside/{id}` | set-aside records |
//! | `POST /-/admin/outbox/aside/{id}/requeue` (optional corrected JSON body), `DELETE …/aside/{id}` | requeue, drop |
//! | `POST /-/reload` | re-read the config file and the token file (also SIGHUP) |

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;
use arc_swap::ArcSwapOption;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::lifecycle::control::TaskControl;
use crate::lifecycle::registry::Registry;
use crate::lifecycle::scheduler::RunEnv;
use crate::lifecycle::status::HostStatus;
use crate::policy::grants::GrantPolicy;

mod auth;
pub use auth::read_token;
pub mod config;
mod modules;
mod outbox;
mod tasks;

/// Re-reads the config file and applies it, for the caller named; returns what changed
/// (settings/reload.rs).
pub type Reload = Arc<dyn Fn(&str) -> Result<Value> + Send + Sync>;

/// Everything the admin routes read or change.
pub struct AdminCtx {
    pub registry: Arc<Registry>,
    pub status: Arc<HostStatus>,
    pub control: Arc<TaskControl>,
    pub env: RunEnv,
    pub grants: GrantPolicy,
    /// `--modules`: an upload goes into the first directory one of them watches.
    pub modules: Vec<String>,
    /// The spool's directory (the outbox routes).
    pub state_dir: PathBuf,
    pub token_file: Option<PathBuf>,
    token: ArcSwapOption<Vec<u8>>,
    pub reload: Option<Reload>,
}

/// An error answer: its status and a message naming what was wrong.
pub struct ApiError(pub StatusCode, pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({"error": self.1}))).into_response()
    }
}

type Answer = Result<(StatusCode, Json<Value>), ApiError>;

fn ok(v: Value) -> Answer {
    Ok((StatusCode::OK, Json(v)))
}

impl AdminCtx {
    /// Reads the token file (an unreadable or empty one fails start-up: an operator who
    /// asked for an admin API must not get a silently disabled one).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        registry: Arc<Registry>,
        status: Arc<HostStatus>,
        control: Arc<TaskControl>,
        env: RunEnv,
        grants: GrantPolicy,
        modules: Vec<String>,
        state_dir: PathBuf,
        token_file: Option<PathBuf>,
    ) -> Result<Self> {
        let token = token_file.as_deref().map(auth::read_token).transpose()?.map(Arc::new);
        Ok(AdminCtx {
            registry,
            status,
            control,
            env,
            grants,
            modules,
            state_dir,
            token_file,
            token: ArcSwapOption::new(token),
            reload: None,
        })
    }

    /// SIGHUP and `POST /-/reload`: the token file again and the config file
    /// (settings/reload.rs says what applies live). Both are read before either applies: a
    /// bad one leaves the running configuration and token as they were.
    pub fn reload_all(&self, caller: &str) -> Result<Value> {
        let r = self.reload_both(caller);
        crate::ops::metrics::reload::outcome(r.is_ok());
        r
    }

    fn reload_both(&self, caller: &str) -> Result<Value> {
        let mut out = json!({});
        let token = self.token_file.as_deref().map(auth::read_token).transpose()?;
        if let Some(r) = &self.reload {
            out["config"] = r(caller)?;
        }
        if let Some(t) = token {
            self.token.store(Some(Arc::new(t)));
            out["admin_token_file"] = json!("re-read");
        }
        Ok(out)
    }

    /// The whole picture `nthlayer-host status` prints.
    fn status_report(&self) -> Value {
        json!({
            "host": self.status.snapshot(),
            "paused": self.control.paused(),
            "modules": modules::list(self),
        })
    }
}

/// The admin routes on `ctx`, behind the token check.
pub fn routes(ctx: Arc<AdminCtx>) -> Router {
    Router::new()
        .route("/-/admin/status", get(|s: axum::extract::State<Arc<AdminCtx>>| async move { ok(s.status_report()) }))
        .route("/-/admin/modules", get(modules::get_list).post(modules::upload))
        .route("/-/admin/modules/{name}", delete(modules::unload))
        .route("/-/admin/tasks/{task}/{action}", post(tasks::act))
        .route("/-/admin/outbox/aside", get(outbox::list))
        .route("/-/admin/outbox/aside/{id}", get(outbox::show).delete(outbox::drop_entry))
        .route("/-/admin/outbox/aside/{id}/requeue", post(outbox::requeue))
        .route("/-/reload", post(reload))
        .layer(axum::extract::DefaultBodyLimit::max(modules::MAX_UPLOAD_BYTES))
        .layer(axum::middleware::from_fn_with_state(ctx.clone(), auth::guard))
        .with_state(ctx)
}

/// 400 for a file that does not check: nothing of it applied, the error names the key.
async fn reload(axum::extract::State(ctx): axum::extract::State<Arc<AdminCtx>>, req: axum::extract::Request) -> Answer {
    let caller = req
        .extensions()
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map_or_else(|| "admin API".to_string(), |c| format!("admin API {}", c.0));
    match ctx.reload_all(&caller) {
        Ok(v) => {
            tracing::info!(report = %v, %caller, "configuration re-read on request");
            ok(v)
        }
        Err(e) => {
            let e = format!("{e:#}");
            tracing::error!(error = %e, %caller, "configuration not reloaded; the running one stands");
            Err(ApiError(StatusCode::BAD_REQUEST, e))
        }
    }
}

/// Binds `addr` (a failure fails start-up) and serves the admin routes until `shutdown`.
pub async fn listen(ctx: Arc<AdminCtx>, addr: SocketAddr, shutdown: tokio_util::sync::CancellationToken) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("--admin-listen {addr}: cannot listen: {e}"))?;
    let bound = listener.local_addr()?;
    if ctx.token.load().is_none() {
        tracing::warn!(address = %bound, "admin API listening but disabled: no --admin-token-file, every admin route answers 403");
    } else {
        tracing::info!(address = %bound, "admin API listening");
    }
    let app = routes(ctx).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await {
            tracing::error!(error = %e, "admin API listener failed");
        }
    });
    Ok(())
}

pub async fn on_sighup(ctx: Arc<AdminCtx>, shutdown: tokio_util::sync::CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hup) = signal(SignalKind::hangup()) else { return };
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = hup.recv() => match ctx.reload_all("SIGHUP") {
                Ok(report) => tracing::info!(%report, "SIGHUP: configuration re-read"),
                Err(e) => tracing::error!(error = %format!("{e:#}"), "SIGHUP: configuration not re-read; the running one stands"),
            },
        }
    }
}
