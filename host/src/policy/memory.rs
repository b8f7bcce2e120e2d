//! The host-wide memory budget for cycles in flight (`--cycle-memory-budget-mib`).
//!
//! Between cycles the host holds its code, its compiled guests and a few MB of heap; a cycle
//! adds its guest's linear memory and the records it holds for the commit, all of it given
//! back when the cycle ends. Measured with the five built-ins at 1,000 services
//! (docs/BENCH.md, "Memory"): observe.collect ~12 MB, observe.topology ~11 MB, measure,
//! drift and learn.retrospective ~6 MB each. Left alone, every task's first cycle starts at
//! once and the host's peak is the sum of all of them on top of its idle size (79 MB against
//! 41 MB idle), and tasks that share an interval add up again at every tick. The execution
//! slots (`--max-concurrent-cycles`) do not bound this: a cycle waiting on a backend holds no
//! slot but keeps its memory.
//!
//! So cycles are admitted against a budget, each by what its task's last cycle cost
//! ([`crate::store::CycleOutcome::memory_bytes`]: linear memory plus held records, in real
//! bytes). A task whose cost is not known yet (its first cycle, or after a failure that
//! reported none) is admitted as if it needed the whole budget, so it runs alone; a task
//! bigger than the budget also runs alone — never refused, only serialised. The budget
//! bounds what cycles hold at once, not what one cycle may use: that is each module's
//! `memory_bytes` limit. Waiters are served first-come first-served (tokio's semaphore is
//! fair), so a large cycle at the head is not starved by small ones behind it.
//!
//! A cycle waits at most [`PATIENCE`] for room, then runs anyway, over the budget, and says
//! so. Without that bound one cycle that hangs — a first cycle whose backend does not answer,
//! running to its 120 s wall limit with the whole budget — would hold every other task back
//! by as long: the budget trades a little start-up latency for a lower peak, never a task's
//! liveness. Which is what lets it be on by default ([`crate::lifecycle::config`]).
//!
//! Who is admitted: the trusted modules only (embedded, the same bytes as an embedded one,
//! or under `--trusted-dir`) — the host's own workers, whose costs are known and whose
//! cycles end. A module not trusted never enters it: its first cycle's cost is unknown, so it
//! would take the whole budget, and a module that sleeps through its cycles would then delay
//! every trusted task by [`PATIENCE`] at each of its cycles (the sandbox suite's
//! "neighbours keep their share" failed that way: a ticker due every second ran every ten).
//! Such a module is bounded by its own `memory_bytes` and `max_concurrent` instead.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Permits are KiB: a semaphore holds at most `u32::MAX >> 3` permits per acquire call.
const UNIT: usize = 1 << 10;

/// How long a cycle waits for room before it runs over the budget (module docs). Long enough
/// for the built-ins' first cycles to run one after another at 1,000 services (0.1–2.5 s
/// each, docs/BENCH.md "Memory"), short against every default interval.
pub const PATIENCE: Duration = Duration::from_secs(10);

pub struct MemoryBudget {
    permits: Arc<Semaphore>,
    total: u32,
    /// Each task's last measured cost, KiB.
    last: Mutex<HashMap<String, u32>>,
}

/// Held for as long as the admitted cycle runs.
pub struct Admitted {
    /// `None`: admitted over the budget after [`PATIENCE`].
    permit: Option<OwnedSemaphorePermit>,
    pub kib: u32,
}

impl Admitted {
    /// Whether the cycle runs over the budget (it waited [`PATIENCE`] without room).
    pub fn over_budget(&self) -> bool {
        self.permit.is_none()
    }
}

impl MemoryBudget {
    /// `None` for a budget of 0 (no admission: every cycle starts when due).
    pub fn new(mib: u64) -> Option<Self> {
        let total = (mib.saturating_mul(1024)).min(Semaphore::MAX_PERMITS as u64 >> 1).min(u32::MAX as u64 >> 3);
        (total > 0).then(|| MemoryBudget {
            permits: Arc::new(Semaphore::new(total as usize)),
            total: total as u32,
            last: Mutex::default(),
        })
    }

    /// What `task` is admitted by: its last cost, at least 1 KiB, at most the whole budget.
    pub fn estimate(&self, task: &str) -> u32 {
        let last = self.last.lock().expect("memory budget lock").get(task).copied();
        last.map_or(self.total, |k| k.clamp(1, self.total))
    }

    /// Waits until `task`'s estimate fits beside the cycles already running, or `patience`.
    pub async fn admit(&self, task: &str, patience: Duration) -> Admitted {
        let kib = self.estimate(task);
        let acquire = self.permits.clone().acquire_many_owned(kib);
        let permit = match tokio::time::timeout(patience, acquire).await {
            Ok(permit) => Some(permit.expect("the budget is never closed")),
            Err(_) => None,
        };
        Admitted { permit, kib }
    }

    /// Records what a finished cycle of `task` cost.
    pub fn observed(&self, task: &str, bytes: usize) {
        let kib = bytes.div_ceil(UNIT).min(u32::MAX as usize) as u32;
        self.last.lock().expect("memory budget lock").insert(task.to_string(), kib);
    }

    /// Budget not held by running cycles, KiB (status and tests).
    pub fn available(&self) -> usize {
        self.permits.available_permits()
    }

    pub fn total_kib(&self) -> u32 {
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: Duration = Duration::from_secs(3600);

    #[tokio::test]
    async fn an_unknown_task_runs_alone_and_a_known_one_by_its_cost() {
        let b = MemoryBudget::new(10).unwrap();
        assert_eq!(b.estimate("observe.collect"), 10 * 1024);
        let first = b.admit("observe.collect", LONG).await;
        // Nothing else fits beside a cycle whose cost is unknown.
        b.observed("measure", 1 << 20);
        assert!(tokio::time::timeout(Duration::from_millis(50), b.admit("measure", LONG)).await.is_err());
        drop(first);
        b.observed("observe.collect", 6 << 20);
        let collect = b.admit("observe.collect", LONG).await;
        let measure = b.admit("measure", LONG).await;
        assert_eq!((collect.kib, measure.kib), (6 * 1024, 1024));
        assert_eq!(b.available(), 3 * 1024);
        // A third that does not fit waits until one ends.
        b.observed("drift", 4 << 20);
        assert!(tokio::time::timeout(Duration::from_millis(50), b.admit("drift", LONG)).await.is_err());
        drop(measure);
        let drift = b.admit("drift", LONG).await;
        assert_eq!(drift.kib, 4 * 1024);
    }

    #[tokio::test]
    async fn a_task_over_the_budget_is_serialised_not_refused() {
        let b = MemoryBudget::new(4).unwrap();
        b.observed("big", 100 << 20);
        b.observed("small", 10);
        assert_eq!(b.estimate("big"), 4 * 1024);
        assert_eq!(b.estimate("small"), 1, "at least one KiB");
        let big = b.admit("big", LONG).await;
        assert!(tokio::time::timeout(Duration::from_millis(50), b.admit("small", LONG)).await.is_err());
        drop(big);
        let _small = b.admit("small", LONG).await;
    }

    #[test]
    fn zero_means_no_budget() {
        assert!(MemoryBudget::new(0).is_none());
        assert_eq!(MemoryBudget::new(3).unwrap().total_kib(), 3 * 1024);
    }

    #[tokio::test]
    async fn a_cycle_that_finds_no_room_runs_over_the_budget_after_its_patience() {
        let b = MemoryBudget::new(8).unwrap();
        let hung = b.admit("observe.collect", LONG).await; // unknown: the whole budget
        assert!(!hung.over_budget());
        b.observed("measure", 1 << 20);
        let waiting = b.admit("measure", Duration::from_millis(20));
        let measure = tokio::time::timeout(Duration::from_secs(30), waiting).await.expect("patience not honoured");
        assert!(measure.over_budget(), "admitted without room");
        // Running over the budget takes nothing from it: when the hung cycle ends, the
        // whole budget is there again, and a later cycle is admitted within it.
        drop(hung);
        assert_eq!(b.available(), 8 * 1024);
        let again = b.admit("measure", LONG).await;
        assert!(!again.over_budget());
        drop((measure, again));
        assert_eq!(b.available(), 8 * 1024);
    }
}
