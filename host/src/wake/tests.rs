use serde_json::{json, Map, Value};

use super::*;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::{sleep_until, Instant};

use crate::backend::envelope::RecordKind as Record;

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
    assert!(unhealthy_slo().matches(Record::Assessment, &rec(json!({"kind": "slo_status"}))), "missing passes none-of");
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

/// A stream of matching records (a large collect reaching core one record at a time) wakes
/// the subscriber once per longest settle, not once per floor; a lone wake runs after the
/// quiet gap.
#[tokio::test]
async fn a_stream_of_wakes_runs_the_task_once_per_settle_not_once_per_floor() {
    let (floor, quiet, longest) = (Duration::from_millis(10), Duration::from_millis(60), Duration::from_millis(300));
    let w = Arc::new(TaskWake::new(floor).with_settle(quiet, longest));
    let w2 = w.clone();
    let stream = Duration::from_millis(3000);
    let feeder = tokio::spawn(async move {
        let end = Instant::now() + stream;
        while Instant::now() < end {
            w2.wake("slo".into());
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    let mut woken = 0;
    let mut started = Instant::now();
    while !feeder.is_finished() {
        let far = Instant::now() + FAR;
        tokio::select! {
            due = w.due(far, started) => {
                assert_eq!(due, Due::Woken);
                woken += 1;
                started = Instant::now();
            }
            _ = tokio::time::sleep(stream) => {}
        }
    }
    // Once per floor would be up to 300 cycles; once per longest settle is at most 11.
    assert!((1..=11).contains(&woken), "{woken} woken cycles during the stream");
    // A lone wake: due after the quiet gap.
    let started = Instant::now() - floor;
    let t = Instant::now();
    w.wake("one".into());
    assert_eq!(w.due(t + FAR, started).await, Due::Woken);
    assert!(t.elapsed() >= quiet);
}
