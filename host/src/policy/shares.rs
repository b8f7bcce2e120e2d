//! Fair shares between modules: how one module is kept from taking the host from the rest.
//!
//! Two limits, held at different times:
//! - **Execution slots** (`--max-concurrent-cycles`, global): one is held only while guest
//!   code runs. The store's call hooks (runtime/cycle.rs) give it back whenever the guest
//!   enters the host — an import, a WASI clock wait, the epoch yield every tick — and take
//!   one again before it re-enters. Tokio's semaphore queues waiters first-come first-served,
//!   so a guest coming back from a host call queues behind those already waiting: slots are
//!   shared round-robin at tick granularity, and a module whose cycles sleep or wait on a
//!   backend holds none.
//! - **Shares** (`max_concurrent` per module, `--limits`): a module's cycles in flight. Held
//!   for the whole cycle, so it bounds what a module can keep resident (`max_concurrent` ×
//!   `memory_bytes`) and how many places in the slot queue it can occupy: with every module
//!   at its cap, each gets at most `max_concurrent` of every queue's turns.
//!
//! Declared work is bounded at load: `max_tasks` per module (a module over it is refused,
//! naming the module and the cap) and `min_interval_seconds` under every task's interval.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::policy::limits::Limits;

/// Each module's semaphore of `max_concurrent` permits, made on first use. Limits are
/// resolved per module name from the flags, so a module's cap does not change while the host
/// runs.
#[derive(Default)]
pub struct Shares {
    by_module: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl Shares {
    /// Waits for one of `module`'s shares (held by the returned permit).
    pub async fn acquire(&self, module: &str, cap: usize) -> OwnedSemaphorePermit {
        let sem = self
            .by_module
            .lock()
            .expect("shares lock")
            .entry(module.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(cap.max(1))))
            .clone();
        sem.acquire_owned().await.expect("share semaphores are never closed")
    }
}

/// A task's effective interval: what it declares (or the operator's `--interval`), never
/// below its module's `min_interval_seconds`, never below 1 s.
pub fn interval(configured: u64, min_interval_seconds: u64) -> Duration {
    Duration::from_secs(configured.max(min_interval_seconds).max(1))
}

/// Refuses a module that declares more scheduled work than its limits allow.
pub fn admit(module: &str, tasks: usize, limits: &Limits) -> Result<(), String> {
    if tasks > limits.max_tasks {
        return Err(format!(
            "module {module:?} declares {tasks} tasks; the limit is {} (max_tasks; raise it with --limits {module}='{{\"max_tasks\":N}}')",
            limits.max_tasks,
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_cap_refuses_naming_module_and_cap() {
        let l = Limits::default();
        assert!(admit("many", l.max_tasks, &l).is_ok());
        let e = admit("many", 5000, &l).unwrap_err();
        assert!(e.contains("\"many\" declares 5000 tasks; the limit is 64"), "{e}");
    }

    #[test]
    fn interval_never_below_the_minimum() {
        assert_eq!(interval(0, 0), Duration::from_secs(1));
        assert_eq!(interval(1, 5), Duration::from_secs(5));
        assert_eq!(interval(60, 1), Duration::from_secs(60));
    }

    #[tokio::test]
    async fn a_module_holds_at_most_its_share() {
        let s = Shares::default();
        let a1 = s.acquire("a", 2).await;
        let _a2 = s.acquire("a", 2).await;
        let third = tokio::time::timeout(Duration::from_millis(50), s.acquire("a", 2)).await;
        assert!(third.is_err(), "a third cycle of `a` waits");
        let _b =
            tokio::time::timeout(Duration::from_millis(50), s.acquire("b", 2)).await.expect("b is not blocked by a");
        drop(a1);
        let _again =
            tokio::time::timeout(Duration::from_millis(50), s.acquire("a", 2)).await.expect("a share came back");
    }
}
