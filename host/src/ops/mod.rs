//! The operations surface: what SREs point their tooling at.
//! - one HTTP listener (`--listen`, loopback by default) carrying the probes
//!   ([`probes`]), `/metrics` ([`metrics`]) and the status page ([`page`]). Every route
//!   reads [`HostStatus`] (and the event families of [`crate::telemetry`]); none reaches
//!   into the scheduler, the registry's slots or the outbox's spool. It binds before
//!   modules load, so `/health` answers from the first second and `/ready` says what
//!   start-up is still doing;
//! - [`admin`]: the authenticated admin API (modules, tasks, the outbox's set-aside records,
//!   reload), on its own `--admin-listen`; its `routes` can be merged into [`router`];
//! - [`logging`]: the subscriber (JSON lines, OTLP traces);
//! - [`systemd`]: readiness and watchdog notifications to the service manager.

pub mod admin;
pub mod config;
pub mod logging;
pub mod metrics;
pub mod page;
pub mod probes;
pub mod systemd;

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use anyhow::{Context, Result};
use axum::Router;

pub use self::config::{OpsArgs, DEFAULT_LISTEN};
use crate::lifecycle::status::HostStatus;

/// What the routes read. The status arrives once start-up has built it; until then the
/// routes that need it answer "starting".
#[derive(Clone, Default)]
pub struct Ops {
    status: Arc<OnceLock<Arc<HostStatus>>>,
    metrics: bool,
}

impl Ops {
    pub fn status(&self) -> Option<&Arc<HostStatus>> {
        self.status.get()
    }

    /// Hands the routes the host's status (once, after loading).
    pub fn attach(&self, status: Arc<HostStatus>) {
        let _ = self.status.set(status);
    }
}

/// The unauthenticated surface. The admin API (`admin::routes`) runs on its own
/// `--admin-listen`; to serve both on one address, merge it here.
pub fn router(ops: Ops) -> Router {
    let router = Router::new().merge(probes::routes()).merge(page::routes());
    let router = if ops.metrics { router.merge(metrics::routes()) } else { router };
    // ── admin API on the same listener: `.merge(admin::routes(...))` here ──
    router.with_state(ops)
}

/// Binds `--listen` and serves the surface on a background task until the process ends.
/// Binding happens here, before modules load, so a taken port fails start-up at once.
pub async fn start(args: &OpsArgs) -> Result<Ops> {
    crate::telemetry::set_enabled(!args.no_metrics);
    let ops = Ops { status: Arc::default(), metrics: !args.no_metrics };
    if args.listen == "off" {
        return Ok(ops);
    }
    let addr: SocketAddr =
        args.listen.parse().with_context(|| format!("--listen {:?}: expected HOST:PORT or off", args.listen))?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("--listen {addr}: cannot bind (another process on that port?)"))?;
    let bound = listener.local_addr()?;
    tracing::info!(listen = %bound, "HTTP surface: /health /ready /metrics /");
    let app = router(ops.clone());
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "HTTP surface stopped");
        }
    });
    Ok(ops)
}
