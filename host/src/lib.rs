//! nthlayer-host: runs NthLayer Tier-2 reliability workers as sandboxed WebAssembly
//! components.
//!
//! Where things live (each module's doc says why it is shaped the way it is):
//! - [`bindings`]: the WIT contract, one Rust module per contract version.
//! - [`runtime`]: engine, artifact cache, limits, loading, one fresh instance per cycle.
//! - [`capability`]: one room per capability (core, prometheus, tempo, llm, arbiter, log):
//!   its client, its import (the host side of its WIT interface), its flags; the table.
//! - [`policy`]: who may do what — grants and trust, emissions, the bounded contract's caps,
//!   fair shares between modules.
//! - [`registry`]: the loaded modules, each behind a swappable handle with rollback.
//! - [`swap`]: watching module files, validating new versions, swapping them in.
//! - [`builtin`]: the built-in modules embedded in the binary (and the identity they give).
//! - [`scheduler`], [`state`], [`heartbeat`]: running tasks (with before/after-cycle hooks),
//!   persisting their state in core, telling core we are alive.
//! - [`outbox`]: the durable spool between cycles and core (all-or-nothing commits,
//!   ordered delivery, state and manifests without core).
//! - [`status`]: the one place the host's condition is written and read (heartbeats).
//! - [`wake`]: running a task as soon as a record it subscribed to is submitted.
//! - [`tape`]: recording cycles' import calls as fixtures and replaying them (`run-once`).
//! - [`command`]: the CLI's commands, one file per subcommand (serve, gate, run, run-once,
//!   check, new) plus `load`, the flags-to-modules path they share.
//! - `test_support` (feature `test-support`): the scripted HTTP fake and component-free
//!   store data for in-process tests.

pub mod bindings;
pub mod builtin;
pub mod capability;
pub mod command;
pub mod config;
pub mod heartbeat;
pub mod outbox;
pub mod policy;
pub mod registry;
pub mod runtime;
pub mod scheduler;
pub mod services;
pub mod state;
pub mod status;
pub mod swap;
pub mod tape;
#[cfg(feature = "test-support")]
pub mod test_support;
pub mod wake;
