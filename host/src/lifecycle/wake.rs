//! Event wake: a task declares (in `describe()`, contract 0.2.0) which records wake it; when
//! any module's record matching one of them is accepted by core through the host, the task
//! runs at once instead of at its next interval. Intervals stay the fallback.
//!
//! Why it is shaped this way:
//! - Matching happens when core said yes — for a scheduled cycle's records, when the
//!   outbox delivers them after the cycle committed (outbox/sender.rs): a refused record, or
//!   one of a failed cycle, wakes nobody, and no module sees another module's records except
//!   through core, as before.
//! - Wakes coalesce per task into one pending flag: however many records arrive while a task
//!   runs or waits, it runs once more, not once per record. Records that arrive before that
//!   cycle starts are in core by then, so the cycle sees them all.
//! - A floor per task (default 1 s between starts) bounds how often wakes can run it, and a
//!   task is never woken by its own records, so no module can spin itself or a neighbour
//!   into a busy loop; two tasks waking each other settle at one cycle per floor each.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::sync::Notify;
use tokio::time::{sleep_until, Instant};

use crate::bindings::{MatchOp, RecordKind, WakeOn};

/// Shortest time between two starts of a task that a wake may cause.
pub const FLOOR: Duration = Duration::from_secs(1);
/// Bounds on what `describe()` may ask for: matching runs on every submit.
const MAX_RULES: usize = 16;
const MAX_TESTS: usize = 8;
const MAX_VALUES: usize = 64;

/// Assessment or verdict (the host's one spelling, capability/shared/envelope.rs).
pub use crate::capability::shared::envelope::RecordKind as Record;

/// One `wake-on` of a task, as the host keeps it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct WakeRule {
    pub record: Record,
    pub kind: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tests: Vec<FieldTest>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FieldTest {
    pub path: String,
    /// true: the field must be none of `values` (a missing field passes).
    pub none_of: bool,
    pub values: Vec<String>,
}

impl From<&WakeOn> for WakeRule {
    fn from(w: &WakeOn) -> Self {
        WakeRule {
            record: match w.record {
                RecordKind::Assessment => Record::Assessment,
                RecordKind::Verdict => Record::Verdict,
            },
            kind: w.kind.clone(),
            tests: w
                .where_
                .iter()
                .map(|t| FieldTest { path: t.path.clone(), none_of: t.op == MatchOp::NoneOf, values: t.values.clone() })
                .collect(),
        }
    }
}

/// Checks a task's rules as `describe()` returned them; `Err` says which rule is wrong.
pub fn validate(task: &str, rules: &[WakeRule]) -> Result<(), String> {
    if rules.len() > MAX_RULES {
        return Err(format!("task {task:?} declares {} wake rules (at most {MAX_RULES})", rules.len()));
    }
    for r in rules {
        if r.kind.is_empty() {
            return Err(format!("task {task:?}: a wake rule needs a non-empty kind"));
        }
        if r.tests.len() > MAX_TESTS {
            return Err(format!("task {task:?}: wake rule {:?} has more than {MAX_TESTS} field tests", r.kind));
        }
        for t in &r.tests {
            if t.path.is_empty() || t.path.split('.').any(str::is_empty) {
                return Err(format!("task {task:?}: wake rule {:?} has an invalid field path {:?}", r.kind, t.path));
            }
            if t.values.len() > MAX_VALUES {
                return Err(format!("task {task:?}: wake rule {:?} tests more than {MAX_VALUES} values", r.kind));
            }
        }
    }
    Ok(())
}

fn field<'a>(record: &'a Map<String, Value>, path: &str) -> Option<&'a str> {
    let mut parts = path.split('.');
    let mut v = record.get(parts.next()?)?;
    for p in parts {
        v = v.as_object()?.get(p)?;
    }
    v.as_str()
}

impl WakeRule {
    pub fn matches(&self, record: Record, map: &Map<String, Value>) -> bool {
        if record != self.record || map.get(record.subtype_key()).and_then(Value::as_str) != Some(&self.kind) {
            return false;
        }
        self.tests.iter().all(|t| {
            let hit = field(map, &t.path).is_some_and(|v| t.values.iter().any(|x| x == v));
            hit != t.none_of
        })
    }
}

/// Why a task is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    Interval,
    Woken,
}

/// One task's wake signal: a pending flag (the coalescing) and a notifier.
pub struct TaskWake {
    pending: AtomicBool,
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

/// Passes a published record on to other replicas (HA, ha/relay.rs).
pub type Relay = Box<dyn Fn(&str, Record, &Map<String, Value>, &str) + Send + Sync>;

/// Every scheduled task's wake rules, shared by all cycles (it lives in `Services`).
pub struct WakeBus {
    floor: Duration,
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
        WakeBus { floor, subs: Mutex::new(BTreeMap::new()), relay: std::sync::OnceLock::new() }
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

    /// Wakes `task` now if it is subscribed (HA: this replica just became its leader).
    pub fn poke(&self, task: &str, cause: &str) {
        if let Some(s) = self.lock().get(task) {
            s.wake.wake(cause.to_string());
        }
    }

    pub fn unsubscribe(&self, task: &str) {
        self.lock().remove(task);
    }

    /// Sets where published records also go (once; HA's cross-replica wake).
    pub fn set_relay(&self, relay: Relay) {
        let _ = self.relay.set(relay);
    }

    /// The (record, kind) pairs some subscribed task's rules wake on.
    pub fn kinds(&self) -> std::collections::BTreeSet<(Record, String)> {
        self.lock().values().flat_map(|s| s.rules.iter().map(|r| (r.record, r.kind.clone()))).collect()
    }

    /// Called once core has accepted `map` from `from_task`: wakes every other task with a
    /// matching rule, here and (through the relay) on other replicas. Returns the tasks woken here.
    pub fn publish(&self, from_task: &str, record: Record, map: &Map<String, Value>, id: &str) -> Vec<String> {
        if let Some(relay) = self.relay.get() {
            relay(from_task, record, map, id);
        }
        self.publish_here(from_task, record, map, id)
    }

    /// As [`WakeBus::publish`], on this replica only (a record relayed from another one).
    pub fn publish_here(&self, from_task: &str, record: Record, map: &Map<String, Value>, id: &str) -> Vec<String> {
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn rec(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn breach() -> WakeRule {
        WakeRule { record: Record::Verdict, kind: "quality_breach".into(), tests: vec![] }
    }

    fn unhealthy_slo() -> WakeRule {
        WakeRule {
            record: Record::Assessment,
            kind: "slo_status".into(),
            tests: vec![FieldTest { path: "data.status".into(), none_of: true, values: vec!["HEALTHY".into()] }],
        }
    }

    #[test]
    fn rules_match_record_kind_subtype_and_fields() {
        let v = rec(json!({"id": "v1", "type": "quality_breach"}));
        assert!(breach().matches(Record::Verdict, &v));
        assert!(!breach().matches(Record::Assessment, &v), "an assessment never matches a verdict rule");
        assert!(!breach().matches(Record::Verdict, &rec(json!({"type": "other"}))));
        let slo = |status: Value| rec(json!({"kind": "slo_status", "data": {"status": status}}));
        assert!(unhealthy_slo().matches(Record::Assessment, &slo(json!("EXHAUSTED"))));
        assert!(!unhealthy_slo().matches(Record::Assessment, &slo(json!("HEALTHY"))));
        assert!(
            unhealthy_slo().matches(Record::Assessment, &rec(json!({"kind": "slo_status"}))),
            "missing passes none-of"
        );
        let any = WakeRule {
            tests: vec![FieldTest { path: "data.severity".into(), none_of: false, values: vec!["high".into()] }],
            ..breach()
        };
        assert!(any.matches(Record::Verdict, &rec(json!({"type": "quality_breach", "data": {"severity": "high"}}))));
        assert!(!any.matches(Record::Verdict, &rec(json!({"type": "quality_breach", "data": {"severity": 3}}))));
        assert!(!any.matches(Record::Verdict, &rec(json!({"type": "quality_breach"}))), "missing fails any-of");
    }

    #[test]
    fn validation_names_the_task_and_the_rule() {
        assert!(validate("t", &[breach(), unhealthy_slo()]).is_ok());
        let bad = WakeRule { kind: String::new(), ..breach() };
        assert!(validate("t", &[bad]).unwrap_err().contains("non-empty kind"));
        let mut path = unhealthy_slo();
        path.tests[0].path = "data..status".into();
        assert!(validate("t", &[path]).unwrap_err().contains("invalid field path \"data..status\""));
        assert!(validate("t", &vec![breach(); 17]).unwrap_err().contains("at most 16"));
    }

    #[test]
    fn publish_wakes_other_subscribers_never_the_sender() {
        let bus = WakeBus::default();
        let a = bus.subscribe("correlate", &[breach()]);
        let _b = bus.subscribe("measure", &[breach()]);
        let v = rec(json!({"id": "v1", "type": "quality_breach"}));
        assert_eq!(bus.publish("measure", Record::Verdict, &v, "v1"), vec!["correlate".to_string()]);
        assert!(a.pending.load(Ordering::SeqCst));
        assert_eq!(a.cause().unwrap().0, "measure quality_breach v1");
        bus.unsubscribe("correlate");
        assert!(bus.publish("measure", Record::Verdict, &v, "v1").is_empty());
        // Re-subscribing with new rules keeps the same signal.
        let m1 = bus.subscribe("measure", &[breach()]);
        let m2 = bus.subscribe("measure", &[unhealthy_slo()]);
        assert!(Arc::ptr_eq(&m1, &m2));
        assert!(bus.publish("x", Record::Verdict, &v, "v1").is_empty(), "rules were replaced");
    }

    // Real time, scaled down: the floor is a lower bound `sleep_until` guarantees, so the
    // assertions below hold however slow the machine is.
    const F: Duration = Duration::from_millis(200);
    const FAR: Duration = Duration::from_secs(3600);

    #[tokio::test]
    async fn a_wake_runs_the_task_before_its_interval_but_not_before_the_floor() {
        let w = Arc::new(TaskWake::new(F));
        let t0 = Instant::now();
        // Woken after the floor has passed: due at once, long before the interval.
        let w2 = w.clone();
        tokio::spawn(async move {
            tokio::time::sleep(2 * F).await;
            w2.wake("x".into());
        });
        assert_eq!(w.due(t0 + FAR, t0).await, Due::Woken);
        assert!(t0.elapsed() >= 2 * F);
        // Woken right after a start: held until the floor.
        let started = Instant::now();
        w.wake("y".into());
        assert_eq!(w.due(started + FAR, started).await, Due::Woken);
        assert!(started.elapsed() >= F);
        // A wake whose floor falls after the interval is just the interval.
        let started = Instant::now();
        w.wake("z".into());
        assert_eq!(w.due(started + F / 4, started).await, Due::Interval);
        assert!(started.elapsed() < F, "the interval, not the floor, decided");
    }

    #[tokio::test]
    async fn many_wakes_coalesce_into_one_more_cycle() {
        let w = TaskWake::new(F);
        let t0 = Instant::now() - F;
        for i in 0..100 {
            w.wake(format!("r{i}"));
        }
        assert_eq!(w.due(t0 + FAR, t0).await, Due::Woken);
        assert_eq!(w.cause().unwrap().0, "r99");
        // Nothing new arrived: the next wait is the interval, not a second woken cycle.
        let started = Instant::now();
        assert_eq!(w.due(started + F / 2, started).await, Due::Interval);
    }

    #[tokio::test]
    async fn a_wake_loop_between_two_tasks_runs_each_at_most_once_per_floor() {
        // Worst case: every cycle of each task wakes the other at once. Over 10 floors each
        // runs at most 11 times (the floor bounds it), instead of spinning.
        let bus = Arc::new(WakeBus::new(F / 2));
        let rule = |kind: &str| WakeRule { record: Record::Verdict, kind: kind.into(), tests: vec![] };
        let counts = Arc::new(Mutex::new(BTreeMap::<String, u32>::new()));
        let end = Instant::now() + 5 * F;
        let mut handles = Vec::new();
        for (me, listens, emits) in [("a", "from_b", "from_a"), ("b", "from_a", "from_b")] {
            let (bus, counts) = (bus.clone(), counts.clone());
            let w = bus.subscribe(me, &[rule(listens)]);
            handles.push(tokio::spawn(async move {
                loop {
                    let started = Instant::now();
                    if started >= end {
                        return;
                    }
                    *counts.lock().unwrap().entry(me.into()).or_default() += 1;
                    bus.publish(me, Record::Verdict, &rec(json!({"type": emits})), "id");
                    tokio::select! {
                        _ = w.due(started + FAR, started) => {}
                        _ = sleep_until(end) => return,
                    }
                }
            }));
        }
        for h in handles {
            h.await.unwrap();
        }
        let counts = counts.lock().unwrap();
        assert!(counts.values().all(|n| (2..=11).contains(n)), "{counts:?}");
    }
}
