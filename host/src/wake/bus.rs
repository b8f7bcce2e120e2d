//! Subscriptions and signals: which tasks a record core took wakes, coalesced per task
//! and held to a floor between starts.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::sync::Notify;
use tokio::time::{sleep_until, Instant};

use super::rules::WakeRule;
use crate::backend::envelope::RecordKind;

/// Shortest time between two starts of a task that a wake may cause.
pub const FLOOR: Duration = Duration::from_secs(1);

/// Why a task is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    Interval,
    Woken,
}

/// One task's wake signal: a pending flag (the coalescing) and a notifier.
pub struct TaskWake {
    pub(super) pending: AtomicBool,
    notify: Notify,
    floor: Duration,
    /// What woke it last, for the log line of the woken cycle.
    cause: Mutex<Option<(String, Instant)>>,
}

impl TaskWake {
    pub fn new(floor: Duration) -> Self {
        TaskWake { pending: AtomicBool::new(false), notify: Notify::new(), floor, cause: Mutex::new(None) }
    }

    pub fn wake(&self, cause: String) {
        *self.cause.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some((cause, Instant::now()));
        self.pending.store(true, Ordering::SeqCst);
        self.notify.notify_one();
    }

    /// What woke the task last and when (the first wake of a coalesced batch is overwritten
    /// by later ones: the log shows the newest).
    pub fn cause(&self) -> Option<(String, Instant)> {
        self.cause.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Waits until the task is due: at `planned` (its interval), or on a wake, but never
    /// before `last_start + floor`. Clears the pending wake as it returns: the cycle that
    /// follows sees every record submitted until now.
    pub async fn due(&self, planned: Instant, last_start: Instant) -> Due {
        loop {
            if self.pending.load(Ordering::SeqCst) {
                let earliest = last_start + self.floor;
                let why = if earliest < planned {
                    sleep_until(earliest).await;
                    Due::Woken
                } else {
                    sleep_until(planned).await;
                    Due::Interval
                };
                self.pending.store(false, Ordering::SeqCst);
                return why;
            }
            tokio::select! {
                _ = sleep_until(planned) => {
                    self.pending.store(false, Ordering::SeqCst);
                    return Due::Interval;
                }
                // A stale permit (a wake already consumed through `pending`) just loops.
                _ = self.notify.notified() => {}
            }
        }
    }
}

struct Subscriber {
    rules: Vec<WakeRule>,
    wake: Arc<TaskWake>,
}

/// Every scheduled task's wake rules, shared by all cycles (it lives in `Services`).
pub struct WakeBus {
    floor: Duration,
    subs: Mutex<BTreeMap<String, Subscriber>>,
}

impl Default for WakeBus {
    fn default() -> Self {
        WakeBus::new(FLOOR)
    }
}

impl WakeBus {
    pub fn new(floor: Duration) -> Self {
        WakeBus { floor, subs: Mutex::new(BTreeMap::new()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Subscriber>> {
        self.subs.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sets `task`'s rules (a swapped-in version may change them) and returns its signal,
    /// the same one for as long as the task stays subscribed, so no pending wake is lost.
    pub fn subscribe(&self, task: &str, rules: &[WakeRule]) -> Arc<TaskWake> {
        let mut subs = self.lock();
        let s = subs
            .entry(task.to_string())
            .or_insert_with(|| Subscriber { rules: Vec::new(), wake: Arc::new(TaskWake::new(self.floor)) });
        if s.rules != rules {
            s.rules = rules.to_vec();
        }
        s.wake.clone()
    }

    /// Wakes one subscribed task (the admin API's run-now); false if it has no loop.
    pub fn wake_task(&self, task: &str, cause: String) -> bool {
        self.lock().get(task).map(|s| s.wake.wake(cause)).is_some()
    }

    pub fn unsubscribe(&self, task: &str) {
        self.lock().remove(task);
    }

    /// Called once core has accepted `map` from `from_task`: wakes every other task with a
    /// matching rule. Returns the tasks woken.
    pub fn publish(&self, from_task: &str, record: RecordKind, map: &Map<String, Value>, id: &str) -> Vec<String> {
        let subs = self.lock();
        let mut woken = Vec::new();
        for (task, s) in subs.iter() {
            if task != from_task && s.rules.iter().any(|r| r.matches(record, map)) {
                let kind = map.get(record.subtype_key()).and_then(Value::as_str).unwrap_or_default();
                s.wake.wake(format!("{from_task} {kind} {id}"));
                woken.push(task.clone());
            }
        }
        woken
    }
}
