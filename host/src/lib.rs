//! nthlayer-host: runs NthLayer Tier-2 reliability workers as sandboxed WebAssembly
//! components.
//!
//! Where things live (each module's doc says why it is shaped the way it is):
//! - [`bindings`]: the WIT contract, one Rust module per contract version.
//! - [`runtime`]: engine, artifact cache, limits, loading, one fresh instance per cycle; the
//!   built-in modules embedded in the binary (and the identity they give).
//! - [`capability`]: one room per capability (core, prometheus, tempo, llm, arbiter, log):
//!   its client, its import (the host side of its WIT interface), its flags; the table;
//!   `Services`, the backends built from it that every cycle shares.
//! - [`policy`]: who may do what — grants and trust, emissions, the bounded contract's caps,
//!   fair shares between modules.
//! - [`lifecycle`]: running tasks and modules — the registry (swappable handles with
//!   rollback), swap (watching and swapping module files), the scheduler (before/after-cycle
//!   hooks), event wake, state in core, heartbeats, the host's status.
//! - [`outbox`]: the durable spool between cycles and core (all-or-nothing commits,
//!   ordered delivery, state and manifests without core).
//! - [`ha`]: several replicas, one active per task, elected through etcd (`--ha-etcd`).
//! - [`ops`]: the operations surface — the authenticated admin API, systemd notifications.
//! - [`settings`]: the config file, turned into the flags it stands for.
//! - [`tape`]: recording cycles' import calls as fixtures and replaying them (`run-once`).
//! - [`command`]: the CLI's commands, one file per subcommand (serve, gate, run, run-once,
//!   check, new, config, status) plus `load`, the flags-to-modules path they share.
//! - `test_support` (feature `test-support`): the scripted HTTP fake and component-free
//!   store data for in-process tests.

pub mod backend;
pub mod bindings;
pub mod capability;
pub mod command;
pub mod ha;
pub mod lifecycle;
pub mod ops;
pub mod outbox;
pub mod policy;
pub mod runtime;
pub mod store;
pub mod tape;
pub mod telemetry;
#[cfg(feature = "test-support")]
pub mod test_support;
pub mod wake;
