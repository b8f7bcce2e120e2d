//! The one wasmtime `Engine` and its epoch ticker.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::policy::limits::Limits;

/// One epoch tick. CPU budgets are counted in ticks, so this is their resolution.
pub const TICK: Duration = Duration::from_millis(10);

pub fn new_engine() -> Result<Engine> {
    let mut cfg = Config::new();
    cfg.wasm_component_model(true)
        // Epochs, not fuel: fuel costs ~10-30 % of guest speed on every instruction, epochs
        // cost one check per loop header and function entry.
        .epoch_interruption(true)
        // Deep recursion must trap cleanly, long before it can touch the host's own stack.
        .max_wasm_stack(1 << 20)
        .cranelift_opt_level(wasmtime::OptLevel::Speed)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool()));
    Ok(Engine::new(&cfg)?)
}

/// Instance slots in the pool: cycles in flight at once, every module's, describe() calls
/// included. Each slot reserves (never commits) a 4 GiB linear-memory region of address
/// space, so the pool stays small enough for many engines in one process (tests).
pub const POOL_SLOTS: u32 = 256;

/// Linear memory is given back (madvise) after each cycle, not kept resident and memset:
/// a trivial cycle touches a few pages, and clearing a kept 1 MiB cost more than faulting
/// those in (docs/BENCH.md). Tables and fiber stacks keep their first 64 KiB.
const KEEP_MEMORY: usize = 0;

/// Every cycle is a fresh instance: the pooling allocator reuses instance, memory, table and
/// fiber-stack slots instead of an mmap/munmap of each per cycle (the largest share of a
/// trivial cycle's cost), and keeps the first pages of a table and stack resident, reset by
/// a memset instead of a page fault on each touch. Per-slot sizes are wasmtime's 32-bit
/// maxima where our own limits (runtime/limits.rs, checked by the store's limiter) are the
/// real bound, so no module is refused by the pool before its limits speak.
fn pool() -> PoolingAllocationConfig {
    let mut p = PoolingAllocationConfig::new();
    p.total_component_instances(POOL_SLOTS)
        .total_core_instances(4 * POOL_SLOTS)
        .total_memories(POOL_SLOTS)
        .total_tables(4 * POOL_SLOTS)
        .total_stacks(POOL_SLOTS)
        .max_memory_size(4 << 30)
        .max_memories_per_module(2)
        .max_tables_per_module(4)
        .table_elements(Limits::default().table_elements.max(100_000))
        .max_core_instance_size(8 << 20)
        .max_component_instance_size(8 << 20)
        .linear_memory_keep_resident(KEEP_MEMORY)
        .table_keep_resident(64 << 10)
        .async_stack_keep_resident(64 << 10);
    p
}

/// Advances the engine's epoch every [`TICK`] on a plain thread (it must keep ticking even
/// when every tokio worker is busy running guest code). Stops when dropped.
pub struct EpochTicker {
    stop: Arc<AtomicBool>,
}

impl EpochTicker {
    pub fn start(engine: Engine) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::Builder::new()
            .name("nthlayer-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(TICK);
                    engine.increment_epoch();
                }
            })
            .expect("spawn epoch ticker thread");
        EpochTicker { stop }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
