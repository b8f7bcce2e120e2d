//! Which service a verdict is about.
//!
//! respond writes every verdict with `service: null` (the incident is in `subject.ref`), and
//! core refuses an assessment without a service (HTTP 500), so the reference's calibration
//! signals for respond are all lost. The service is taken, in order, from the verdict, its
//! `subject.service`, then its trigger lineage: respond's `lineage.context` (and the first
//! verdict's `parent_ids`) name the correlation snapshot and breaches that opened the
//! incident, and the snapshot's service is the incident's service. Parents are followed
//! through verdicts too (bounded, cycle-safe). Only when all of that fails is it "unknown".

use std::cell::OnceCell;
use std::collections::{HashMap, HashSet, VecDeque};

use nthlayer_sdk::{Host, Level, VerdictQuery};
use serde_json::Value;

use crate::text;

/// How far up the lineage the search goes; respond's chains are five verdicts deep.
const MAX_HOPS: usize = 32;

/// Lazily loaded lookups shared by every verdict of one cycle.
pub(crate) struct Known<'a> {
    host: &'a dyn Host,
    verdicts: HashMap<String, Value>,
    snapshots: OnceCell<HashMap<String, String>>,
    breaches: OnceCell<HashMap<String, Value>>,
}

impl<'a> Known<'a> {
    pub(crate) fn new(host: &'a dyn Host, verdicts: &[Value]) -> Self {
        let verdicts = verdicts.iter().filter_map(|v| text(v, "id").map(|id| (id.to_string(), v.clone()))).collect();
        Known { host, verdicts, snapshots: OnceCell::new(), breaches: OnceCell::new() }
    }

    /// More verdicts of this cycle (the next page of the walk), for lineage look-ups.
    pub(crate) fn add(&mut self, verdicts: &[Value]) {
        self.verdicts.extend(verdicts.iter().filter_map(|v| text(v, "id").map(|id| (id.to_string(), v.clone()))));
    }

    fn snapshots(&self) -> &HashMap<String, String> {
        self.snapshots.get_or_init(|| {
            let list = match self.host.query_assessments(None, Some("correlation_snapshot"), 1000) {
                Ok(Value::Array(a)) => a,
                Ok(_) => Vec::new(),
                Err(e) => {
                    self.host.log(Level::Warn, "learn_snapshot_fetch_failed", &[("error", &e.to_string())]);
                    Vec::new()
                }
            };
            list.iter()
                .filter_map(|s| {
                    let svc =
                        text(s, "service").or_else(|| s.pointer("/data/domain/service").and_then(Value::as_str))?;
                    Some((text(s, "id")?.to_string(), svc.to_string()))
                })
                .collect()
        })
    }

    fn verdict(&self, id: &str) -> Option<&Value> {
        if let Some(v) = self.verdicts.get(id) {
            return Some(v);
        }
        self.breaches
            .get_or_init(|| {
                let q = VerdictQuery { verdict_type: Some("quality_breach".into()), limit: 1000, ..Default::default() };
                match self.host.query_verdicts(&q) {
                    Ok(Value::Array(a)) => {
                        a.into_iter().filter_map(|v| Some((text(&v, "id")?.to_string(), v))).collect()
                    }
                    _ => HashMap::new(),
                }
            })
            .get(id)
    }

    /// The verdict's service and where it came from (`verdict`, `subject`, `trigger_lineage`
    /// or `unknown`).
    pub(crate) fn service_of(&self, v: &Value) -> (String, &'static str) {
        if let Some(s) = text(v, "service") {
            return (s.to_string(), "verdict");
        }
        if let Some(s) = v.get("subject").and_then(|s| text(s, "service")) {
            return (s.to_string(), "subject");
        }
        let mut seen: HashSet<String> = HashSet::new();
        let mut queue: VecDeque<(String, usize)> = lineage_ids(v).into_iter().map(|i| (i, 1)).collect();
        while let Some((id, hops)) = queue.pop_front() {
            if hops > MAX_HOPS || !seen.insert(id.clone()) {
                continue;
            }
            if let Some(s) = self.snapshots().get(&id) {
                return (s.clone(), "trigger_lineage");
            }
            if let Some(p) = self.verdict(&id) {
                if let Some(s) = text(p, "service").or_else(|| p.get("subject").and_then(|s| text(s, "service"))) {
                    return (s.to_string(), "trigger_lineage");
                }
                queue.extend(lineage_ids(p).into_iter().map(|i| (i, hops + 1)));
            }
        }
        ("unknown".into(), "unknown")
    }
}

/// Trigger ids first (`lineage.context`), then `parent_ids`, then `lineage.parent`.
fn lineage_ids(v: &Value) -> Vec<String> {
    let strings = |p: &str| -> Vec<String> {
        v.pointer(p)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
            .unwrap_or_default()
    };
    let mut ids = strings("/lineage/context");
    ids.extend(strings("/parent_ids"));
    if let Some(p) = v.pointer("/lineage/parent").and_then(Value::as_str) {
        ids.push(p.to_string());
    }
    ids
}

#[cfg(test)]
mod tests {
    use super::*;
    use nthlayer_sdk::testing::FakeHost;
    use serde_json::json;

    fn respond(id: &str, parents: Value, context: Value) -> Value {
        json!({"id": id, "type": "triage", "service": null, "subject": {"service": null},
               "parent_ids": parents, "lineage": {"parent": null, "context": context}})
    }

    #[test]
    fn own_service_then_subject() {
        let host = FakeHost::new();
        let k = Known::new(&host, &[]);
        assert_eq!(k.service_of(&json!({"service": "a", "subject": {"service": "b"}})), ("a".into(), "verdict"));
        assert_eq!(k.service_of(&json!({"service": null, "subject": {"service": "b"}})), ("b".into(), "subject"));
    }

    #[test]
    fn respond_verdict_takes_the_snapshot_service() {
        let host = FakeHost::new();
        *host.assessments.borrow_mut() =
            vec![json!({"id": "csn-1", "kind": "correlation_snapshot", "service": "fraud-detect"})];
        let first = respond("t", json!(["csn-1", "b1"]), json!(["csn-1", "b1"]));
        // A later chain verdict whose context was lost still finds it through its parent.
        let later = respond("i", json!(["t"]), json!([]));
        let k = Known::new(&host, &[first.clone(), later.clone()]);
        assert_eq!(k.service_of(&first), ("fraud-detect".into(), "trigger_lineage"));
        assert_eq!(k.service_of(&later), ("fraud-detect".into(), "trigger_lineage"));
    }

    #[test]
    fn fallback_breach_and_cycles_and_unknown() {
        let host = FakeHost::new();
        *host.verdicts.borrow_mut() = vec![json!({"id": "b1", "type": "quality_breach", "service": "checkout"})];
        let k = Known::new(&host, &[]);
        assert_eq!(k.service_of(&respond("t", json!(["b1"]), json!(["b1"]))), ("checkout".into(), "trigger_lineage"));
        let a = respond("a", json!(["b"]), json!([]));
        let b = respond("b", json!(["a"]), json!([]));
        let k = Known::new(&host, &[a.clone(), b]);
        assert_eq!(k.service_of(&a), ("unknown".into(), "unknown"));
    }
}
