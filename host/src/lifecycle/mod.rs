//! Running tasks and modules: what is loaded, when it runs, what survives it.
//! - [`registry`]: the loaded modules, each behind a swappable handle with rollback.
//! - [`swap`]: watching module files, validating new versions, swapping them in.
//! - [`scheduler`]: one loop per task (with before/after-cycle hooks; [`hooks`] runs them).
//! - [`wake`]: running a task as soon as a record it subscribed to is submitted.
//! - [`state`]: persisting tasks' state in core.
//! - [`heartbeat`]: telling core we are alive.
//! - [`control`]: the operator's pause / resume / run-now of a task (admin API).
//! - [`status`]: the one place the host's condition is written and read (heartbeats).

pub mod config;
pub mod control;
pub mod heartbeat;
pub mod hooks;
pub mod registry;
pub mod scheduler;
pub mod shards;
pub mod status;
pub mod swap;
