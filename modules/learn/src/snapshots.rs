//! Which correlation snapshots still need a retrospective, within what core 4.0.1 can answer.
//!
//! `GET /assessments` has no time filter and no offset: only the newest `limit <= 1000` of a
//! `kind`, optionally of one `service`. One query over all services sees every snapshot while
//! fewer than a page are newer than the oldest one not yet written. Beyond that it does not,
//! so the marks (`cursor`, and the ids written at exactly that instant) are kept per service,
//! and when the all-services page is full, every service whose mark is older than that page's
//! oldest snapshot may have snapshots the page does not show (a possible gap): such a service
//! is asked for its own newest page, at most [`SERVICE_QUERIES_PER_CYCLE`] of them a cycle in
//! turn, and until it has been asked, its snapshots are not written, so its mark never moves
//! past one it has not seen. The services come from the marks, the snapshots seen and the
//! manifests. A service with more than a page of unwritten snapshots has some core cannot
//! hand out at all; that is logged loudly with the service and the count (docs/PARITY.md).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use nthlayer_sdk::{Host, HostError, Level};
use serde_json::{json, Map, Value};

use crate::text;

/// core's largest answer.
const PAGE: u32 = 1000;

/// Per-service queries a cycle: what bounds a cycle's calls however many services there are.
pub(crate) const SERVICE_QUERIES_PER_CYCLE: usize = 8;

/// Where a service's retrospectives have got to.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Mark {
    pub cursor: Option<String>,
    pub at_cursor: Vec<String>,
}

impl Mark {
    fn from_value(s: &Value) -> Self {
        Mark {
            cursor: s.get("cursor").and_then(Value::as_str).map(str::to_string),
            at_cursor: s
                .get("at_cursor")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
                .unwrap_or_default(),
        }
    }

    fn is_new(&self, at: &str, id: &str) -> bool {
        match self.cursor.as_deref() {
            None => true,
            Some(c) => at > c || (at == c && !self.at_cursor.iter().any(|i| i == id)),
        }
    }

    fn pass(&mut self, at: &str, id: &str) {
        if self.cursor.as_deref().is_some_and(|c| at < c) {
            return;
        }
        if self.cursor.as_deref() != Some(at) {
            self.cursor = Some(at.to_string());
            self.at_cursor.clear();
        }
        self.at_cursor.push(id.to_string());
    }
}

/// The task state: a mark per service, the mark of state written before marks were per
/// service (`cursor`/`at_cursor`, the floor of every service without its own), and where the
/// per-service queries go on.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Memo {
    pub floor: Mark,
    pub services: BTreeMap<String, Mark>,
    pub rotation: u64,
}

impl Memo {
    pub(crate) fn from_state(state: Option<&Value>) -> Self {
        let s = state.cloned().unwrap_or(Value::Null);
        let services = s
            .get("services")
            .and_then(Value::as_object)
            .map(|m| m.iter().map(|(k, v)| (k.clone(), Mark::from_value(v))).collect())
            .unwrap_or_default();
        let rotation = s.get("rotation").and_then(Value::as_u64).unwrap_or(0);
        Memo { floor: Mark::from_value(&s), services, rotation }
    }

    pub(crate) fn to_state(&self) -> Value {
        let mut s = Map::new();
        if let Some(c) = &self.floor.cursor {
            s.insert("cursor".into(), json!(c));
        }
        s.insert("at_cursor".into(), json!(self.floor.at_cursor));
        let services: Map<String, Value> = self
            .services
            .iter()
            .map(|(k, m)| (k.clone(), json!({"cursor": m.cursor, "at_cursor": m.at_cursor})))
            .collect();
        s.insert("services".into(), Value::Object(services));
        s.insert("rotation".into(), json!(self.rotation));
        Value::Object(s)
    }

    fn mark(&self, service: &str) -> &Mark {
        self.services.get(service).unwrap_or(&self.floor)
    }

    pub(crate) fn pass(&mut self, snap: &Value) {
        let (at, id) = (text(snap, "created_at").unwrap_or(""), text(snap, "id").unwrap_or(""));
        let floor = self.floor.clone();
        self.services.entry(service(snap).to_string()).or_insert(floor).pass(at, id);
    }

    fn is_new(&self, snap: &Value) -> bool {
        match (text(snap, "created_at"), text(snap, "id")) {
            (Some(at), Some(id)) => self.mark(service(snap)).is_new(at, id),
            _ => false,
        }
    }
}

/// The service core filters a snapshot by.
fn service(snap: &Value) -> &str {
    snap.get("service").and_then(Value::as_str).unwrap_or("")
}

fn fetch(host: &dyn Host, service: Option<&str>) -> Result<Vec<Value>, HostError> {
    match host.query_assessments(service, Some("correlation_snapshot"), PAGE)? {
        Value::Array(a) => Ok(a),
        _ => Ok(Vec::new()),
    }
}

fn oldest(page: &[Value]) -> Option<&str> {
    page.iter().filter_map(|s| text(s, "created_at")).min()
}

/// Snapshots without a retrospective that may be written now, oldest first. `known`: the
/// services of the manifests.
pub(crate) fn due(host: &dyn Host, memo: &mut Memo, known: &[String]) -> Result<Vec<Value>, HostError> {
    let global = fetch(host, None)?;
    let mut found: HashMap<String, Value> = HashMap::new();
    let mut held: BTreeSet<String> = BTreeSet::new();
    if global.len() as u32 >= PAGE {
        let edge = oldest(&global).unwrap_or("").to_string();
        let services: BTreeSet<String> = memo
            .services
            .keys()
            .cloned()
            .chain(known.iter().cloned())
            .chain(global.iter().map(|s| service(s).to_string()))
            .collect();
        let gaps: Vec<String> = services
            .into_iter()
            .filter(|s| memo.mark(s).cursor.as_deref().is_none_or(|c| edge.as_str() >= c))
            .collect();
        held = gaps.iter().cloned().collect();
        let start = (memo.rotation % gaps.len().max(1) as u64) as usize;
        let turn = gaps.iter().cycle().skip(start).take(SERVICE_QUERIES_PER_CYCLE.min(gaps.len()));
        for s in turn {
            memo.rotation = memo.rotation.wrapping_add(1);
            let page = match fetch(host, Some(s)) {
                Ok(p) => p,
                Err(e) => {
                    host.log(Level::Warn, "learn_snapshot_fetch_failed", &[("service", s), ("error", &e.to_string())]);
                    continue;
                }
            };
            let unseen = page.iter().filter(|p| memo.is_new(p)).count();
            if page.len() as u32 >= PAGE && oldest(&page).is_some_and(|o| memo.mark(s).cursor.as_deref() < Some(o)) {
                host.log(
                    Level::Error,
                    "learn_snapshots_beyond_reach",
                    &[
                        ("service", s),
                        ("unseen", &unseen.to_string()),
                        ("error", "more than 1000 snapshots of this service have no retrospective; core answers only the newest 1000, so the older ones get none"),
                    ],
                );
            }
            held.remove(s);
            found.extend(page.into_iter().filter_map(|p| Some((text(&p, "id")?.to_string(), p))));
        }
    }
    for s in global {
        if !held.contains(service(&s)) {
            if let Some(id) = text(&s, "id") {
                found.entry(id.to_string()).or_insert(s);
            }
        }
    }
    let mut new: Vec<Value> = found.into_values().filter(|s| memo.is_new(s)).collect();
    new.sort_by(|a, b| (text(a, "created_at"), text(a, "id")).cmp(&(text(b, "created_at"), text(b, "id"))));
    Ok(new)
}
