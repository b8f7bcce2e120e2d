//! Per-module resource limits and the limiter that enforces them inside a store.
//!
//! Every limit has a safe default so an operator who configures nothing still gets a host that
//! a looping or allocating module cannot take down. See docs/SANDBOX.md for the table.

use std::time::Duration;

use serde::Deserialize;

/// Limits applied to one module's cycles. Overridable per module (`--limits name=…`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
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

/// `64 MiB`, or `64.06 MiB` when not a whole number of MiB (a refused growth is often one
/// 64 KiB page past the limit, which whole MiB rounded down would show as "64 of 64").
fn mib(bytes: usize) -> String {
    if bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{:.2} MiB", bytes as f64 / (1u64 << 20) as f64)
    }
}

/// Enforces memory and table limits and remembers the first refusal, so a failed cycle can
/// say "memory limit of 256 MiB exceeded" instead of a bare `unreachable` trap.
pub struct Limiter {
    memory_bytes: usize,
    table_elements: usize,
    pub refused: Option<String>,
}

impl Limiter {
    pub fn new(limits: &Limits) -> Self {
        Limiter { memory_bytes: limits.memory_bytes, table_elements: limits.table_elements, refused: None }
    }
}

impl wasmtime::ResourceLimiter for Limiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            self.refused.get_or_insert_with(|| {
                format!("memory limit of {} exceeded (asked to grow to {})", mib(self.memory_bytes), mib(desired))
            });
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.table_elements {
            self.refused.get_or_insert_with(|| format!("table limit of {} elements exceeded", self.table_elements));
            return Ok(false);
        }
        Ok(true)
    }

    // One component instantiates a handful of core instances; a limit guards against a
    // component that tries to instantiate thousands.
    fn instances(&self) -> usize {
        64
    }
    fn tables(&self) -> usize {
        64
    }
    fn memories(&self) -> usize {
        16
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::ResourceLimiter;

    #[test]
    fn refusal_names_limit_and_request_precisely() {
        let mut l = Limiter::new(&Limits { memory_bytes: 64 << 20, ..Limits::default() });
        assert!(l.memory_growing(0, 64 << 20, None).unwrap());
        assert!(!l.memory_growing(64 << 20, (64 << 20) + 65536, None).unwrap());
        assert_eq!(l.refused.as_deref(), Some("memory limit of 64 MiB exceeded (asked to grow to 64.06 MiB)"));
        assert_eq!(mib(256 << 20), "256 MiB");
    }
}
