//! `/health` and `/ready`, for supervisors and load balancers.
//!
//! Health is the process loop answering — nothing else is checked, so a core outage never
//! gets the host restarted (it spools). Ready is start-up done: config read, modules
//! loaded and instantiated (none still compiling in the background), the spool open. Core
//! being down does not make the host unready either: it keeps running cycles into the
//! spool, and taking it out of rotation would help nothing.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;

use super::Ops;

pub fn routes() -> Router<Ops> {
    Router::new().route("/health", get(health)).route("/ready", get(ready))
}

async fn health() -> &'static str {
    "ok\n"
}

async fn ready(State(ops): State<Ops>) -> (StatusCode, String) {
    let why = match ops.status() {
        None => Some("starting: modules loading".to_string()),
        Some(s) => s.not_ready(),
    };
    match why {
        None => (StatusCode::OK, "ready\n".into()),
        Some(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {why}\n")),
    }
}
