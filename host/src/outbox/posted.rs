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
    let what = match p.record.kind {
        RecordKind::Assessment => "assessment",
        RecordKind::Verdict => "verdict",
    };
    // The subtype and service are read without parsing the record (held records are text);
    // the map the wake rules test is built only when a rule names this subtype.
    let (sub, service) = p.record.labels();
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
