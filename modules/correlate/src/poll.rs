//! Fetching new events from core, in the reference's order, and the cursor that makes "new"
//! mean new.
//!
//! Core's `created_after` is inclusive, so the reference re-ingests the newest verdict every
//! cycle and snapshots the same breach again and again. The cursor here also remembers the
//! ids already ingested *at* the cursor time and drops them when core returns them again.

use nthlayer_sdk::host::HostExt;
use nthlayer_sdk::{Host, Level, VerdictQuery};
use serde_json::{json, Value};

use crate::events::{self, parse_ts, Event, Unparsable};

pub const VERDICT_TYPES: [&str; 2] = ["quality_breach", "autonomy_change"];
pub const ASSESSMENT_KINDS: [&str; 2] = ["slo_status", "drift_signal"];
pub const PAGE: u32 = 100;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cursor {
    /// Newest event time seen, as core wrote it.
    pub at: Option<String>,
    /// Ids of the events ingested whose time equals `at`.
    pub ids: Vec<String>,
}

impl Cursor {
    pub fn from_state(state: Option<&Value>) -> Cursor {
        let at = state.and_then(|s| s.get("cursor")).and_then(Value::as_str).map(str::to_string);
        let ids = state
            .and_then(|s| s.get("cursor_ids"))
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
            .unwrap_or_default();
        Cursor { at, ids }
    }

    /// Into `state` (an object): `cursor` omitted when there is none, as in the reference.
    pub fn write(&self, state: &mut serde_json::Map<String, Value>) {
        if let Some(at) = &self.at {
            state.insert("cursor".into(), json!(at));
            state.insert("cursor_ids".into(), json!(self.ids));
        }
    }

    fn at_ts(&self) -> Option<f64> {
        self.at.as_deref().and_then(parse_ts)
    }

    /// Moves to the newest of `events` (by time, not by string, so `Z` and `+00:00` forms
    /// order correctly), remembering every id at that instant.
    pub fn advance(&mut self, events: &[Event]) {
        let Some(newest) = events.iter().max_by(|a, b| a.ts.total_cmp(&b.ts)) else { return };
        let same = |t: f64| crate::windows::micros(t) == crate::windows::micros(newest.ts);
        let mut ids: Vec<String> = events.iter().filter(|e| same(e.ts)).map(|e| e.id.clone()).collect();
        if self.at_ts().is_some_and(same) {
            ids.extend(self.ids.iter().cloned());
        }
        ids.sort();
        ids.dedup();
        self.at = Some(newest.timestamp.clone());
        self.ids = ids;
    }

    /// Already ingested: at or before the cursor. Verdicts reach here only when at or after
    /// it (the server filters), assessments whatever their age (no time filter on the API).
    fn seen(&self, e: &Event) -> bool {
        let Some(at) = self.at_ts() else { return false };
        let (t, c) = (crate::windows::micros(e.ts), crate::windows::micros(at));
        t < c || (t == c && self.ids.contains(&e.id))
    }

    /// The reference drops assessments at or before the cursor time, whether seen or not.
    fn assessment_old(&self, e: &Event) -> bool {
        self.at_ts().is_some_and(|c| crate::windows::micros(e.ts) <= crate::windows::micros(c))
    }
}

/// New events in the reference's order (breaches, autonomy changes, slo_status, drift
/// signals; each newest first). A failed query is logged and contributes nothing.
pub fn poll(host: &dyn Host, cursor: &Cursor) -> Vec<Event> {
    let now = host.now();
    let mut out = Vec::new();
    for vtype in VERDICT_TYPES {
        let q = VerdictQuery {
            verdict_type: Some(vtype.into()),
            created_after: cursor.at.clone(),
            limit: PAGE,
            ..Default::default()
        };
        for v in records(host, "verdicts", vtype, host.query_verdicts(&q)) {
            match events::from_verdict(&v, now) {
                Ok(e) if !cursor.seen(&e) => out.push(e),
                Ok(_) => {}
                Err(bad) => skip(host, "verdict", &bad),
            }
        }
    }
    for kind in ASSESSMENT_KINDS {
        for a in records(host, "assessments", kind, host.query_assessments(None, Some(kind), PAGE)) {
            match events::from_assessment(&a, now) {
                Ok(e) if !cursor.assessment_old(&e) => out.push(e),
                Ok(_) => {}
                Err(bad) => skip(host, "assessment", &bad),
            }
        }
    }
    out
}

fn records(host: &dyn Host, what: &str, kind: &str, r: Result<Value, nthlayer_sdk::HostError>) -> Vec<Value> {
    match r {
        Ok(Value::Array(a)) => a,
        Ok(Value::Null) => Vec::new(),
        Ok(other) => {
            let err = format!("expected a JSON array, got {}", crate::type_name(&other));
            host.warn("correlate_poll_failed", &[("records", what), ("kind", kind), ("error", &err)]);
            Vec::new()
        }
        Err(e) => {
            host.warn("correlate_poll_failed", &[("records", what), ("kind", kind), ("error", &e.to_string())]);
            Vec::new()
        }
    }
}

fn skip(host: &dyn Host, what: &str, bad: &Unparsable) {
    host.log(
        Level::Warn,
        "correlate_event_skipped",
        &[
            ("record", what),
            ("id", &bad.id),
            ("service", &bad.service),
            ("reason", "unparsable created_at"),
            ("created_at", &bad.timestamp),
        ],
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use nthlayer_sdk::testing::FakeHost;

    fn breach(id: &str, at: &str) -> Value {
        json!({"id": id, "type": "quality_breach", "service": "s", "created_at": at})
    }

    #[test]
    fn order_is_breaches_autonomy_slo_drift() {
        let h = FakeHost::new();
        *h.verdicts.borrow_mut() = vec![
            json!({"id": "ac", "type": "autonomy_change", "service": "s", "created_at": "2026-11-24T15:00:03+00:00"}),
            breach("qb", "2026-11-24T15:00:01+00:00"),
        ];
        *h.assessments.borrow_mut() = vec![
            json!({"id": "dr", "kind": "drift_signal", "service": "s", "created_at": "2026-11-24T15:00:04+00:00"}),
            json!({"id": "slo", "kind": "slo_status", "service": "s", "created_at": "2026-11-24T15:00:02+00:00"}),
        ];
        let ids: Vec<String> = poll(&h, &Cursor::default()).into_iter().map(|e| e.id).collect();
        assert_eq!(ids, ["qb", "ac", "slo", "dr"]);
    }

    #[test]
    fn the_breach_at_the_cursor_is_not_ingested_twice() {
        let h = FakeHost::new();
        *h.verdicts.borrow_mut() = vec![breach("qb", "2026-11-24T15:00:01+00:00")];
        let mut c = Cursor::default();
        let first = poll(&h, &c);
        assert_eq!(first.len(), 1);
        c.advance(&first);
        assert_eq!(c, Cursor { at: Some("2026-11-24T15:00:01+00:00".into()), ids: vec!["qb".into()] });
        // Core's bound is inclusive: FakeHost returns it again, like core does.
        assert!(poll(&h, &c).is_empty());
        // A second breach at the very same instant is still new.
        h.verdicts.borrow_mut().insert(0, breach("qb2", "2026-11-24T15:00:01Z"));
        let again = poll(&h, &c);
        assert_eq!(again.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["qb2"]);
        c.advance(&again);
        assert_eq!(c.ids, ["qb", "qb2"]);
    }

    #[test]
    fn cursor_is_the_newest_by_time_not_by_string() {
        let h = FakeHost::new();
        let mut c = Cursor::default();
        let evs = vec![
            events::from_verdict(&breach("a", "2026-11-24T15:00:01Z"), 0.0).unwrap(),
            events::from_verdict(&breach("b", "2026-11-24T15:00:00.5+00:00"), 0.0).unwrap(),
        ];
        c.advance(&evs);
        assert_eq!(c.at.as_deref(), Some("2026-11-24T15:00:01Z"));
        drop(h);
    }

    #[test]
    fn assessments_at_or_before_the_cursor_are_dropped() {
        let h = FakeHost::new();
        *h.assessments.borrow_mut() = vec![
            json!({"id": "new", "kind": "slo_status", "service": "s", "created_at": "2026-11-24T15:00:02+00:00"}),
            json!({"id": "eq", "kind": "slo_status", "service": "s", "created_at": "2026-11-24T15:00:01+00:00"}),
            json!({"id": "old", "kind": "slo_status", "service": "s", "created_at": "2026-11-24T15:00:00+00:00"}),
        ];
        let c = Cursor { at: Some("2026-11-24T15:00:01+00:00".into()), ids: vec![] };
        let ids: Vec<String> = poll(&h, &c).into_iter().map(|e| e.id).collect();
        assert_eq!(ids, ["new"]);
    }

    #[test]
    fn bad_timestamp_is_logged_with_its_service_and_skipped() {
        let h = FakeHost::new();
        *h.verdicts.borrow_mut() = vec![
            json!({"id": "bad", "type": "quality_breach", "service": "payments", "created_at": "last tuesday"}),
            breach("good", "2026-11-24T15:00:01+00:00"),
        ];
        let got = poll(&h, &Cursor::default());
        assert_eq!(got.len(), 1);
        assert_eq!(h.logs.borrow()[0], (Level::Warn, "correlate_event_skipped".to_string()));
    }

    #[test]
    fn core_down_yields_nothing_and_logs() {
        let h = FakeHost::new();
        *h.core_error.borrow_mut() = Some(nthlayer_sdk::HostError::Unavailable("down".into()));
        assert!(poll(&h, &Cursor::default()).is_empty());
        assert_eq!(h.logs.borrow().len(), 4);
    }
}
