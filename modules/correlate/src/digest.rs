//! What a session window keeps of its events: exactly what its snapshot and its summary
//! prompt read, folded in as events arrive, so a window's size does not grow with the number
//! of events it has seen (an unhealthy service reports every collect cycle for up to the
//! 15-minute window, three SLOs at a time).
//!
//! The snapshot needs the count, the count per type (first-seen order), the peak severity,
//! the services and the ids of the breaches (`parent_ids`); the summary prompt needs the
//! earliest event, the first most severe one and the latest per service. Those are kept;
//! the other events are not. The breaches are not capped: each closes its window in the
//! cycle it arrives, so a window holds at most one poll page of them.

use serde_json::{json, Value};

use crate::events::Event;

/// The newest event of one service, and where that service's earliest event sorts (its
/// timestamp string, then arrival), which orders the services in the prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct Latest {
    pub first: String,
    pub first_seq: u64,
    pub event: Event,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Digest {
    pub count: u64,
    pub types: Vec<(String, u64)>,
    pub peak: Option<f64>,
    pub parents: Vec<String>,
    /// Smallest timestamp string; the first to arrive among equals (a stable sort's first).
    pub earliest: Option<Event>,
    /// The first event of the highest severity.
    pub most: Option<Event>,
    /// Per service, in order of arrival of the service (one entry: windows are per service).
    pub latest: Vec<Latest>,
}

impl Digest {
    pub fn ingest(&mut self, e: Event) {
        let seq = self.count;
        self.count += 1;
        match self.types.iter_mut().find(|(k, _)| *k == e.kind) {
            Some((_, n)) => *n += 1,
            None => self.types.push((e.kind.clone(), 1)),
        }
        self.peak = Some(self.peak.map_or(e.severity, |p| p.max(e.severity)));
        if e.kind == "quality_score" {
            self.parents.push(e.id.clone());
        }
        if self.earliest.as_ref().is_none_or(|f| e.timestamp < f.timestamp) {
            self.earliest = Some(e.clone());
        }
        if self.most.as_ref().is_none_or(|m| e.severity > m.severity) {
            self.most = Some(e.clone());
        }
        match self.latest.iter_mut().find(|l| l.event.service == e.service) {
            Some(l) => {
                if e.timestamp < l.first {
                    (l.first, l.first_seq) = (e.timestamp.clone(), seq);
                }
                // A stable sort's last among equal timestamps is the last to arrive.
                if e.timestamp >= l.event.timestamp {
                    l.event = e;
                }
            }
            None => self.latest.push(Latest { first: e.timestamp.clone(), first_seq: seq, event: e }),
        }
    }

    /// Services in sorted order, deduplicated.
    pub fn services(&self) -> Vec<&str> {
        let mut s: Vec<&str> = self.latest.iter().map(|l| l.event.service.as_str()).collect();
        s.sort_unstable();
        s.dedup();
        s
    }

    /// Representative events, deduplicated by id in first-chosen order: the earliest, the
    /// first most severe, then the latest per service (services by their earliest event).
    pub fn samples(&self, max: usize) -> Vec<&Event> {
        let mut latest: Vec<&Latest> = self.latest.iter().collect();
        latest.sort_by(|a, b| a.first.cmp(&b.first).then(a.first_seq.cmp(&b.first_seq)));
        let mut out: Vec<&Event> = Vec::new();
        let chosen = self.earliest.iter().chain(self.most.iter()).chain(latest.into_iter().map(|l| &l.event));
        for e in chosen {
            if !out.iter().any(|o| o.id == e.id) {
                out.push(e);
            }
        }
        out.truncate(max);
        out
    }

    /// Saved compactly (a window's digest is in the state of every unhealthy service): each
    /// sample event once, as an array without the window's own service and environment,
    /// and the picks as indexes into that list.
    pub fn to_state(&self) -> Value {
        fn index<'a>(pool: &mut Vec<&'a Event>, e: &'a Event) -> usize {
            pool.iter().position(|p| **p == *e).unwrap_or_else(|| {
                pool.push(e);
                pool.len() - 1
            })
        }
        let mut pool: Vec<&Event> = Vec::new();
        let earliest = self.earliest.as_ref().map(|e| index(&mut pool, e));
        let most = self.most.as_ref().map(|e| index(&mut pool, e));
        let latest: Vec<Value> =
            self.latest.iter().map(|l| json!([l.first, l.first_seq, index(&mut pool, &l.event)])).collect();
        let events: Vec<Value> = pool
            .iter()
            .map(|e| json!([e.id, e.timestamp, e.source, e.kind, e.service, e.environment, e.severity, e.trigger]))
            .collect();
        json!({
            "types": self.types.iter().map(|(k, n)| json!([k, n])).collect::<Vec<_>>(),
            "peak": self.peak,
            "parents": self.parents,
            "events": events,
            "earliest": earliest,
            "most": most,
            "latest": latest,
        })
    }

    /// A window saved before digests (`events`) is folded event by event; a digest that does
    /// not parse is `None` (the caller drops the window and says so).
    pub fn from_state(w: &Value) -> Option<Digest> {
        if let Some(events) = w.get("events").and_then(Value::as_array) {
            let mut d = Digest::default();
            events.iter().filter_map(Event::from_state).for_each(|e| d.ingest(e));
            return Some(d);
        }
        let d = w.get("digest")?;
        let pool: Vec<Event> = d.get("events")?.as_array()?.iter().map(event).collect::<Option<_>>()?;
        let pick = |v: Option<&Value>| match v {
            None | Some(Value::Null) => Some(None),
            Some(i) => pool.get(i.as_u64()? as usize).cloned().map(Some),
        };
        let types = d.get("types")?.as_array()?.iter().map(|t| Some((t[0].as_str()?.to_string(), t[1].as_u64()?)));
        let latest = d.get("latest")?.as_array()?.iter().map(|l| {
            Some(Latest {
                first: l[0].as_str()?.to_string(),
                first_seq: l[1].as_u64()?,
                event: pool.get(l[2].as_u64()? as usize)?.clone(),
            })
        });
        let parents = d.get("parents")?.as_array()?.iter().map(|p| p.as_str().map(str::to_string));
        Some(Digest {
            count: w.get("event_count")?.as_u64()?,
            types: types.collect::<Option<_>>()?,
            peak: d.get("peak").and_then(Value::as_f64),
            parents: parents.collect::<Option<_>>()?,
            earliest: pick(d.get("earliest"))?,
            most: pick(d.get("most"))?,
            latest: latest.collect::<Option<_>>()?,
        })
    }
}

/// One sample event from its saved array.
fn event(v: &Value) -> Option<Event> {
    let s = |i: usize| v.get(i).and_then(Value::as_str).map(str::to_string);
    let timestamp = s(1)?;
    Some(Event {
        id: s(0)?,
        ts: crate::events::parse_ts(&timestamp)?,
        timestamp,
        source: s(2)?,
        kind: s(3)?,
        service: s(4)?,
        environment: s(5)?,
        severity: v.get(6)?.as_f64()?,
        trigger: v.get(7)?.as_bool()?,
    })
}

#[cfg(test)]
#[path = "digest_tests.rs"]
pub(crate) mod tests;
