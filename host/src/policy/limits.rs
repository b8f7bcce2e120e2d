//! Per-module resource limits: what a module may use (`--limits name=…`). The runtime
//! enforces them (runtime/limiter.rs for memory and tables, runtime/cpu.rs for CPU), fair
//! shares read the concurrency they allow (shares.rs).
//!
//! Every limit has a safe default so an operator who configures nothing still gets a host that
//! a looping or allocating module cannot take down. See docs/SANDBOX.md for the table.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Limits applied to one module's cycles. Overridable per module (`--limits name=…`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Guest CPU per cycle, in milliseconds: the OS thread's CPU time while guest code runs,
    /// bracketed by wasmtime's call hooks (runtime/cpu.rs). Time in host calls (HTTP, LLM,
    /// WASI sleeps) and waiting for a slot or the executor does not count.
    pub cpu_ms: u64,
    /// Wall-clock bound for a whole cycle, host calls included.
    pub wall_ms: u64,
    /// Linear memory a module instance may grow to.
    pub memory_bytes: usize,
    /// Table elements (function references) per table.
    pub table_elements: usize,
    /// Largest state JSON a cycle may return (bytes).
    pub max_state_bytes: usize,
    /// Largest result JSON a cycle may return (bytes).
    pub max_result_bytes: usize,
    /// Largest JSON a module may pass to one host call (a record, a query).
    pub max_request_bytes: usize,
    /// Largest response a host call hands back to the module.
    pub max_response_bytes: usize,
    /// `log` calls per cycle; excess calls are dropped and counted.
    pub log_lines: u32,
    /// Bytes of guest stdout/stderr kept per cycle; the rest is dropped.
    pub stdio_bytes: usize,
    /// Timeout of one host call (core, Prometheus, Tempo); LLM calls use their own.
    pub call_ms: u64,
    /// Cycles of this module in flight at once (its share; host/src/policy/shares.rs).
    pub max_concurrent: usize,
    /// Tasks a module may declare; a module declaring more is refused at load.
    pub max_tasks: usize,
    /// No task of the module runs more often than this (seconds), whatever it declares.
    pub min_interval_seconds: u64,
    /// Records (and outcomes, cases) one cycle may hold for its commit; past it the module's
    /// submit fails and so does the cycle. The default fits observe's collect at 10,000
    /// services with 3 SLOs each (30,001 records) with room to spare.
    pub max_records: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            cpu_ms: 10_000,
            wall_ms: 120_000,
            memory_bytes: 256 << 20,
            table_elements: 100_000,
            max_state_bytes: 8 << 20,
            max_result_bytes: 8 << 20,
            max_request_bytes: 16 << 20,
            max_response_bytes: 32 << 20,
            log_lines: 10_000,
            stdio_bytes: 64 << 10,
            call_ms: 30_000,
            max_concurrent: 4,
            max_tasks: 64,
            min_interval_seconds: 1,
            max_records: 50_000,
        }
    }
}

impl Limits {
    pub fn wall(&self) -> Duration {
        Duration::from_millis(self.wall_ms)
    }
}
