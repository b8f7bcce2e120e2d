//! The one place a record's arrival in core is announced: the `posted …` log line and the
//! wake of the tasks that subscribed to it. The sender calls it on delivery; a one-shot
//! command (`gate`, `run`), which posts directly, calls it after its own post, so both paths
//! log and wake the same way.

use crate::backend::envelope::{Emitted, RecordKind};
use crate::wake::WakeBus;

/// A record core has taken.
pub struct Posted<'a> {
    /// The task that made it (the sender's lane).
    pub task: &'a str,
    pub record: &'a Emitted,
    /// The id core answered (the record's own, or core's if it assigned one).
    pub id: &'a str,
    /// Core already had it (409): an earlier attempt delivered it.
    pub duplicate: bool,
    /// How long it waited in the spool (0: posted directly).
    pub spooled_ms: i64,
}

/// Logs `posted assessment|verdict` and wakes the tasks the record matches.
pub fn posted(bus: &WakeBus, p: Posted<'_>) {
    // The subtype and service are read without parsing the record (held records are text).
    let labels = p.record.labels();
    posted_labeled(bus, p, labels)
}

/// [`posted`] with the record's labels (subtype, service) already read: the sender has them
/// from writing the envelope (`CoreClient::envelope`), and a second read per record was
/// measurable in delivery's CPU.
pub fn posted_labeled(bus: &WakeBus, p: Posted<'_>, (sub, service): (String, String)) {
    let what = match p.record.kind {
        RecordKind::Assessment => "assessment",
        RecordKind::Verdict => "verdict",
    };
    // The map the wake rules test is built only when a rule names this subtype.
    let component = &p.record.component;
    // Per record, so debug: the sender logs one `delivered to core` line per task and pass.
    tracing::debug!(task = %p.task, component = %component, id = %p.id, kind = %sub, service = %service,
        duplicate = p.duplicate, spooled_ms = p.spooled_ms, "posted {what}");
    if !bus.wants(p.record.kind, &sub) {
        return;
    }
    let map = p.record.record().unwrap_or_default();
    let woken = bus.publish(p.task, p.record.kind, &map, p.id);
    if !woken.is_empty() {
        tracing::debug!(task = %p.task, id = %p.id, ?woken, "record wakes subscribed tasks");
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::wake::{FieldTest, WakeRule};

    fn record(kind: RecordKind, v: Value) -> Emitted {
        let Value::Object(m) = v else { unreachable!() };
        Emitted::new(kind, "observe.collect".into(), m)
    }

    #[test]
    fn a_delivered_record_wakes_the_tasks_whose_rules_match_it_and_no_other() {
        let bus = WakeBus::default();
        let unhealthy = FieldTest { path: "data.status".into(), none_of: true, values: vec!["HEALTHY".into()] };
        let rule = WakeRule { record: RecordKind::Assessment, kind: "slo_status".into(), tests: vec![unhealthy] };
        let correlate = bus.subscribe("correlate", &[rule]);
        let post = |e: &Emitted| {
            posted(&bus, Posted { task: "observe.collect", record: e, id: &e.id, duplicate: false, spooled_ms: 0 })
        };
        let slo = |id: &str, status: &str| {
            record(
                RecordKind::Assessment,
                json!({"id": id, "kind": "slo_status", "service": "s", "data": {"status": status}}),
            )
        };
        post(&slo("asm-1", "HEALTHY"));
        post(&record(
            RecordKind::Assessment,
            json!({"id": "asm-p", "kind": "portfolio_status", "data": {"status": "x"}}),
        ));
        post(&record(RecordKind::Verdict, json!({"id": "v-1", "type": "slo_status", "data": {"status": "x"}})));
        assert!(correlate.cause().is_none(), "{:?}", correlate.cause());
        post(&slo("asm-2", "CRITICAL"));
        assert_eq!(correlate.cause().unwrap().0, "observe.collect slo_status asm-2");
        // Only a subtype some rule names is parsed for the rules; a relay takes every record.
        assert!(bus.wants(RecordKind::Assessment, "slo_status"));
        assert!(!bus.wants(RecordKind::Assessment, "portfolio_status"));
        assert!(!bus.wants(RecordKind::Verdict, "slo_status"));
        bus.set_relay(Box::new(|_, _, _, _| {}));
        assert!(bus.wants(RecordKind::Verdict, "anything"));
    }
}
