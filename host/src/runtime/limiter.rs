//! The limiter that enforces a module's memory and table limits inside a store.

use crate::policy::limits::Limits;

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
    /// Linear memory the store's instances hold, all memories together. Memories only grow
    /// (wasmtime calls this hook for the initial size too), so at the end of a cycle this is
    /// its peak: what the cycle cost the host in guest memory, whatever its allocator did.
    pub memory_in_use: usize,
}

impl Limiter {
    pub fn new(limits: &Limits) -> Self {
        Limiter {
            memory_bytes: limits.memory_bytes,
            table_elements: limits.table_elements,
            refused: None,
            memory_in_use: 0,
        }
    }
}

impl wasmtime::ResourceLimiter for Limiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            self.refused.get_or_insert_with(|| {
                format!("memory limit of {} exceeded (asked to grow to {})", mib(self.memory_bytes), mib(desired))
            });
            return Ok(false);
        }
        self.memory_in_use += desired.saturating_sub(current);
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

    #[test]
    fn memory_in_use_sums_every_memory_and_skips_refused_growth() {
        let mut l = Limiter::new(&Limits { memory_bytes: 4 << 20, ..Limits::default() });
        assert!(l.memory_growing(0, 1 << 20, None).unwrap());
        assert!(l.memory_growing(1 << 20, 3 << 20, None).unwrap());
        assert!(l.memory_growing(0, 64 << 10, None).unwrap()); // a second memory
        assert!(!l.memory_growing(3 << 20, 5 << 20, None).unwrap());
        assert_eq!(l.memory_in_use, (3 << 20) + (64 << 10));
    }
}
