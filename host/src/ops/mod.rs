//! The operations surface: what SREs point their tooling at.
//! - [`admin`]: the authenticated admin API (modules, tasks, the outbox's set-aside records,
//!   reload).
//! - [`systemd`]: readiness and watchdog notifications to the service manager.

pub mod admin;
pub mod systemd;
