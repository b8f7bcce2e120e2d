//! The one wasmtime `Engine` and its epoch ticker.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
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
    // For profiling (docs/BENCH.md): wasmtime writes perf's map file (perf-<pid>.map), so `perf` names
    // the guests' functions instead of showing their code as anonymous memory.
    if std::env::var_os("NTHLAYER_PERF_MAP").is_some() {
        cfg.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
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
/// when every tokio worker is busy running guest code), but only while some store holds a
/// [`Ticking`]: epochs matter only to running guests, and an idle host woken 100 times a
/// second for nothing showed as most of its context switches between cycles
/// (docs/BENCH.md, "Scale"). Stops when dropped.
pub struct EpochTicker {
    shared: Arc<Shared>,
}

struct Shared {
    stop: AtomicBool,
    /// Ticks given so far (what the tests read: wasmtime does not expose the epoch).
    ticks: AtomicU64,
    /// Stores alive that may run guest code.
    live: Mutex<usize>,
    wake: Condvar,
}

/// Keeps the ticker ticking while it lives: held for as long as a store may run guest code.
pub struct Ticking(Arc<Shared>);

impl EpochTicker {
    pub fn start(engine: Engine) -> Self {
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            ticks: AtomicU64::new(0),
            live: Mutex::new(0),
            wake: Condvar::new(),
        });
        let sh = shared.clone();
        std::thread::Builder::new()
            .name("nthlayer-epoch".into())
            .spawn(move || loop {
                let idle = sh.live.lock().unwrap_or_else(PoisonError::into_inner);
                let idle = sh
                    .wake
                    .wait_while(idle, |live| *live == 0 && !sh.stop.load(Ordering::Relaxed))
                    .unwrap_or_else(PoisonError::into_inner);
                drop(idle);
                if sh.stop.load(Ordering::Relaxed) {
                    break;
                }
                std::thread::sleep(TICK);
                engine.increment_epoch();
                sh.ticks.fetch_add(1, Ordering::Relaxed);
            })
            .expect("spawn epoch ticker thread");
        EpochTicker { shared }
    }

    /// Ticks until the returned guard is dropped (and while any other is alive).
    pub fn hold(&self) -> Ticking {
        let mut live = self.shared.live.lock().unwrap_or_else(PoisonError::into_inner);
        *live += 1;
        if *live == 1 {
            self.shared.wake.notify_one();
        }
        Ticking(self.shared.clone())
    }
}

impl Drop for Ticking {
    fn drop(&mut self) {
        *self.0.live.lock().unwrap_or_else(PoisonError::into_inner) -= 1;
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        let _guard = self.shared.live.lock().unwrap_or_else(PoisonError::into_inner);
        self.shared.wake.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    fn ticks(t: &EpochTicker) -> u64 {
        t.shared.ticks.load(Ordering::Relaxed)
    }

    /// Polls until `f` holds; a loaded machine may take long to schedule the ticker.
    fn eventually(what: &str, f: impl Fn() -> bool) {
        let t0 = Instant::now();
        while !f() {
            assert!(t0.elapsed() < Duration::from_secs(30), "{what}");
            std::thread::sleep(TICK);
        }
    }

    #[test]
    fn the_ticker_ticks_only_while_a_store_holds_it() {
        let ticker = EpochTicker::start(new_engine().unwrap());
        std::thread::sleep(10 * TICK);
        assert_eq!(ticks(&ticker), 0, "no store: no tick");

        let one = ticker.hold();
        let two = ticker.hold();
        eventually("held: it ticks", || ticks(&ticker) >= 3);
        drop(one);
        let n = ticks(&ticker);
        eventually("one guard left: it still ticks", || ticks(&ticker) >= n + 3);
        drop(two);
        // A tick already asleep may still land; after it, none.
        std::thread::sleep(2 * TICK);
        let parked = ticks(&ticker);
        std::thread::sleep(10 * TICK);
        assert_eq!(ticks(&ticker), parked, "every guard dropped: parked");

        let _again = ticker.hold();
        eventually("held again: it wakes", || ticks(&ticker) > parked);
    }
}
