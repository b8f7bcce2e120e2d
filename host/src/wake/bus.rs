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

/// A woken task waits until records have stopped arriving for this long...
pub const SETTLE: Duration = Duration::from_millis(250);

/// ...or this long after the first wake of the batch, whichever comes first. A cycle's
/// records reach core one by one at core's pace (a 1,000-service collect: thousands over
/// many seconds); without a settle every floor of that stream was another cycle of the
/// subscriber, each redoing the same poll. With it a burst makes one cycle, and a stream
/// one cycle per `MAX_SETTLE`, while a lone record still wakes within `SETTLE`.
pub const MAX_SETTLE: Duration = Duration::from_secs(5);

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
    settle: (Duration, Duration),
    /// When the pending batch's first wake arrived.
    first: Mutex<Option<Instant>>,
    /// What woke it last, for the log line of the woken cycle.
    cause: Mutex<Option<(String, Instant)>>,
}

impl TaskWake {
    pub fn new(floor: Duration) -> Self {
        TaskWake {
            pending: AtomicBool::new(false),
            notify: Notify::new(),
            floor,
            settle: (SETTLE, MAX_SETTLE),
            first: Mutex::new(None),
            cause: Mutex::new(None),
        }
    }

    /// As [`TaskWake::new`] with its own settle times (quiet gap, longest wait).
    pub fn with_settle(mut self, quiet: Duration, longest: Duration) -> Self {
        self.settle = (quiet, longest);
        self
    }

    pub fn wake(&self, cause: String) {
        let now = Instant::now();
        *self.cause.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some((cause, now));
        self.first.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get_or_insert(now);
        self.pending.store(true, Ordering::SeqCst);
        self.notify.notify_one();
    }

    /// When the pending batch may run: once it has settled, never before the floor.
    fn settled_at(&self, last_start: Instant) -> Instant {
        let now = Instant::now();
        let first = self.first.lock().unwrap_or_else(std::sync::PoisonError::into_inner).unwrap_or(now);
        let last = self.cause().map_or(now, |(_, at)| at);
        let settled = (last + self.settle.0).min(first + self.settle.1);
        settled.max(last_start + self.floor)
    }

    fn clear(&self) {
        self.pending.store(false, Ordering::SeqCst);
        *self.first.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }

    /// What woke the task last and when (the first wake of a coalesced batch is overwritten
    /// by later ones: the log shows the newest).
    pub fn cause(&self) -> Option<(String, Instant)> {
        self.cause.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Waits until the task is due: at `planned` (its interval), or on a wake once the
    /// wakes have settled (`SETTLE`, `MAX_SETTLE`), but never before `last_start + floor`.
    /// Clears the pending wake as it returns: the cycle that follows sees every record
    /// submitted until now.
    pub async fn due(&self, planned: Instant, last_start: Instant) -> Due {
        loop {
            let at = if self.pending.load(Ordering::SeqCst) { self.settled_at(last_start) } else { planned };
            let (at, why) = if at < planned { (at, Due::Woken) } else { (planned, Due::Interval) };
            tokio::select! {
                _ = sleep_until(at) => {
                    self.clear();
                    return why;
                }
                // A new wake may move the settle time; a stale permit just loops.
                _ = self.notify.notified() => {}
            }
        }
    }
}

struct Subscriber {
    rules: Vec<WakeRule>,
    wake: Arc<TaskWake>,
}

/// Passes a published record on to other replicas (HA, ha/relay.rs).
pub type Relay = Box<dyn Fn(&str, RecordKind, &Map<String, Value>, &str) + Send + Sync>;

/// Every scheduled task's wake rules, shared by all cycles (it lives in `Services`).
pub struct WakeBus {
    floor: Duration,
    settle: (Duration, Duration),
    subs: Mutex<BTreeMap<String, Subscriber>>,
    relay: std::sync::OnceLock<Relay>,
}

impl Default for WakeBus {
    fn default() -> Self {
        WakeBus::new(FLOOR)
    }
}

impl WakeBus {
    pub fn new(floor: Duration) -> Self {
        WakeBus {
            floor,
            settle: (SETTLE, MAX_SETTLE),
            subs: Mutex::new(BTreeMap::new()),
            relay: std::sync::OnceLock::new(),
        }
    }

    /// As [`WakeBus::new`] with its subscribers' settle times (tests).
    pub fn with_settle(mut self, quiet: Duration, longest: Duration) -> Self {
        self.settle = (quiet, longest);
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Subscriber>> {
        self.subs.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sets `task`'s rules (a swapped-in version may change them) and returns its signal,
    /// the same one for as long as the task stays subscribed, so no pending wake is lost.
    pub fn subscribe(&self, task: &str, rules: &[WakeRule]) -> Arc<TaskWake> {
        let mut subs = self.lock();
        let (floor, settle) = (self.floor, self.settle);
        let s = subs.entry(task.to_string()).or_insert_with(|| Subscriber {
            rules: Vec::new(),
            wake: Arc::new(TaskWake::new(floor).with_settle(settle.0, settle.1)),
        });
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

    /// Sets where published records also go (once; HA's cross-replica wake).
    pub fn set_relay(&self, relay: Relay) {
        let _ = self.relay.set(relay);
    }

    /// The (record, kind) pairs some subscribed task's rules wake on.
    pub fn kinds(&self) -> std::collections::BTreeSet<(RecordKind, String)> {
        self.lock().values().flat_map(|s| s.rules.iter().map(|r| (r.record, r.kind.clone()))).collect()
    }

    /// Whether a record of this kind and subtype could wake anything: a subscribed task's
    /// rule names it, or a relay passes every record on. Delivery asks first, so the records
    /// nothing listens for (most of a collect cycle's) are never parsed into a map.
    pub fn wants(&self, record: RecordKind, subtype: &str) -> bool {
        self.relay.get().is_some()
            || self.lock().values().any(|s| s.rules.iter().any(|r| r.record == record && r.kind == subtype))
    }

    /// Called once core has accepted `map` from `from_task`: wakes every other task with a
    /// matching rule, here and (through the relay) on other replicas. Returns the tasks woken here.
    pub fn publish(&self, from_task: &str, record: RecordKind, map: &Map<String, Value>, id: &str) -> Vec<String> {
        if let Some(relay) = self.relay.get() {
            relay(from_task, record, map, id);
        }
        self.publish_here(from_task, record, map, id)
    }

    /// As [`WakeBus::publish`], on this replica only (a record relayed from another one).
    pub fn publish_here(&self, from_task: &str, record: RecordKind, map: &Map<String, Value>, id: &str) -> Vec<String> {
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
