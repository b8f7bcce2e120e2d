//! nthlayer-host: runs NthLayer Tier-2 reliability workers as sandboxed WebAssembly
//! components.
//!
//! Where things live (each module's doc says why it is shaped the way it is):
//! - [`bindings`]: the WIT contract, one Rust module per contract version.
//! - [`runtime`]: engine, artifact cache, limits, loading, one fresh instance per cycle.
//! - [`imports`]: the host side of each WIT interface (core, prometheus, tempo, llm, log, arbiter).
//! - [`clients`]: plain async HTTP clients, free of wasm types.
//! - [`capabilities`]: who may call what.
//! - [`registry`]: the loaded modules, each behind a swappable handle with rollback.
//! - [`swap`]: watching module files, validating new versions, swapping them in.
//! - [`builtin`]: the built-in modules embedded in the binary (and the identity they give).
//! - [`scheduler`], [`state`], [`heartbeat`]: running tasks (with before/after-cycle hooks),
//!   persisting their state in core, telling core we are alive.
//! - [`outbox`]: the durable spool between cycles and core (all-or-nothing commits,
//!   ordered delivery, state and manifests without core).
//! - [`status`]: the one place the host's condition is written and read (heartbeats).
//! - [`wake`]: running a task as soon as a record it subscribed to is submitted.
//! - [`serve`], [`gate`]: the CLI commands built from the above.

pub mod bindings;
pub mod builtin;
pub mod capabilities;
pub mod clients;
pub mod config;
pub mod gate;
pub mod heartbeat;
mod imports;
pub mod llm;
pub mod outbox;
pub mod registry;
pub mod runtime;
pub mod scheduler;
pub mod serve;
pub mod services;
pub mod state;
pub mod status;
pub mod swap;
pub mod wake;
