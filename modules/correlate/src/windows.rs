//! Session windows keyed by (service, environment): the reference's open and close rules.
//! Unlike the reference, a window keeps what it has collected in the task state, so a window
//! open at a restart still snapshots with everything it had; it keeps a digest of its
//! events (`digest.rs`), not the events, so its size does not grow with their number.

use nthlayer_sdk::time;
use serde_json::{Map, Value};

use crate::digest::Digest;
use crate::events::{parse_ts, Event};

pub const GAP_SECONDS: f64 = 60.0;
pub const MAX_DURATION_SECONDS: f64 = 900.0;

#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    pub service: String,
    pub environment: String,
    pub opened_at: f64,
    pub last_event_at: f64,
    pub has_trigger: bool,
    pub digest: Digest,
}

impl Window {
    /// `"svc:env"`, the reference's state key and log name for a domain.
    pub fn key(&self) -> String {
        format!("{}:{}", self.service, self.environment)
    }

    /// Priority trigger > max_duration > gap; evaluated against event time, so a backlogged
    /// event closes its window in the cycle it arrives.
    pub fn close_reason(&self, now: f64) -> Option<&'static str> {
        if self.has_trigger {
            Some("trigger")
        } else if micros(now) - micros(self.opened_at) >= micros(MAX_DURATION_SECONDS) {
            Some("max_duration")
        } else if micros(now) - micros(self.last_event_at) >= micros(GAP_SECONDS) {
            Some("gap")
        } else {
            None
        }
    }
}

/// Whole microseconds, as Python's datetime arithmetic sees them.
pub fn micros(t: f64) -> i64 {
    (t * 1e6).round() as i64
}

/// Open windows in the order their domains first appeared (the reference's dict order).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Windows(pub Vec<Window>);

impl Windows {
    pub fn ingest(&mut self, e: Event, now: f64) {
        let i = match self.0.iter().position(|w| w.service == e.service && w.environment == e.environment) {
            Some(i) => i,
            None => {
                self.0.push(Window {
                    service: e.service.clone(),
                    environment: e.environment.clone(),
                    // Capped at now so a future-dated event cannot open a window "later".
                    opened_at: e.ts.min(now),
                    last_event_at: e.ts,
                    has_trigger: false,
                    digest: Digest::default(),
                });
                self.0.len() - 1
            }
        };
        let w = &mut self.0[i];
        if e.ts > w.last_event_at {
            w.last_event_at = e.ts;
        }
        w.has_trigger |= e.trigger;
        w.digest.ingest(e);
    }

    /// Removes and returns every window whose close condition holds at `now`.
    pub fn close_ready(&mut self, now: f64) -> Vec<Window> {
        let (closed, open): (Vec<Window>, Vec<Window>) =
            std::mem::take(&mut self.0).into_iter().partition(|w| w.close_reason(now).is_some());
        self.0 = open;
        closed
    }

    /// The reference's `windows` state (opened_at, last_event_at, event_count, has_trigger)
    /// plus the domain and the digest of the events.
    pub fn to_state(&self) -> Value {
        let mut m = Map::new();
        for w in &self.0 {
            m.insert(
                w.key(),
                serde_json::json!({
                    "opened_at": time::iso(w.opened_at),
                    "last_event_at": time::iso(w.last_event_at),
                    "event_count": w.digest.count,
                    "has_trigger": w.has_trigger,
                    "service": w.service,
                    "environment": w.environment,
                    "digest": w.digest.to_state(),
                }),
            );
        }
        Value::Object(m)
    }

    /// Entries that do not parse are dropped (reported through `bad`), never fatal.
    pub fn from_state(v: Option<&Value>, bad: &mut Vec<String>) -> Windows {
        let mut out = Vec::new();
        for (key, w) in v.and_then(Value::as_object).into_iter().flatten() {
            let (ks, ke) = key.split_once(':').unwrap_or((key.as_str(), "production"));
            let s = |k: &str| w.get(k).and_then(Value::as_str);
            let (Some(opened_at), Some(last_event_at)) =
                (s("opened_at").and_then(parse_ts), s("last_event_at").and_then(parse_ts))
            else {
                bad.push(key.clone());
                continue;
            };
            let Some(digest) = Digest::from_state(w) else {
                bad.push(key.clone());
                continue;
            };
            out.push(Window {
                service: s("service").unwrap_or(ks).to_string(),
                environment: s("environment").unwrap_or(ke).to_string(),
                opened_at,
                last_event_at,
                has_trigger: w.get("has_trigger").and_then(Value::as_bool).unwrap_or(false),
                digest,
            });
        }
        Windows(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: f64 = 1_795_532_400.0;

    fn ev(id: &str, svc: &str, ts: f64, trigger: bool) -> Event {
        Event {
            id: id.into(),
            timestamp: time::iso(ts),
            ts,
            source: if trigger { "verdict:quality_breach" } else { "assessment:slo_status" }.into(),
            kind: if trigger { "quality_score" } else { "alert" }.into(),
            service: svc.into(),
            environment: "production".into(),
            severity: if trigger { 0.9 } else { 0.1 },
            trigger,
        }
    }

    #[test]
    fn windows_are_per_domain_and_keep_first_seen_order() {
        let mut w = Windows::default();
        w.ingest(ev("a", "b-svc", T0, false), T0);
        w.ingest(ev("b", "a-svc", T0, false), T0);
        w.ingest(ev("c", "b-svc", T0 + 5.0, false), T0 + 5.0);
        assert_eq!(w.0.iter().map(Window::key).collect::<Vec<_>>(), ["b-svc:production", "a-svc:production"]);
        assert_eq!(w.0[0].digest.count, 2);
        assert_eq!(w.0[0].last_event_at, T0 + 5.0);
    }

    #[test]
    fn opened_at_is_capped_at_now_and_never_lowered() {
        let mut w = Windows::default();
        w.ingest(ev("new", "s", T0 + 100.0, false), T0 + 10.0);
        assert_eq!(w.0[0].opened_at, T0 + 10.0);
        w.ingest(ev("old", "s", T0, false), T0 + 10.0);
        assert_eq!(w.0[0].opened_at, T0 + 10.0);
        assert_eq!(w.0[0].last_event_at, T0 + 100.0);
    }

    #[test]
    fn close_on_gap_at_exactly_sixty_seconds() {
        let mut w = Windows::default();
        w.ingest(ev("a", "s", T0, false), T0);
        assert!(w.close_ready(T0 + 59.999999).is_empty());
        let closed = w.close_ready(T0 + 60.0);
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].close_reason(T0 + 60.0), Some("gap"));
        assert!(w.0.is_empty());
    }

    #[test]
    fn close_on_max_duration_under_continuous_events() {
        let mut w = Windows::default();
        let mut t = T0;
        while t < T0 + 900.0 {
            w.ingest(ev(&format!("e{t}"), "s", t, false), t);
            assert!(w.close_ready(t).is_empty(), "closed early at {}", t - T0);
            t += 30.0;
        }
        w.ingest(ev("last", "s", T0 + 900.0, false), T0 + 900.0);
        let closed = w.close_ready(T0 + 900.0);
        assert_eq!(closed[0].close_reason(T0 + 900.0), Some("max_duration"));
    }

    #[test]
    fn trigger_closes_at_once_and_outranks_the_others() {
        let mut w = Windows::default();
        w.ingest(ev("a", "s", T0, false), T0);
        w.ingest(ev("b", "s", T0, true), T0);
        let closed = w.close_ready(T0 + 1000.0);
        assert_eq!(closed[0].close_reason(T0 + 1000.0), Some("trigger"));
        // max_duration outranks gap when both hold.
        let mut w = Windows::default();
        w.ingest(ev("a", "s", T0, false), T0);
        assert_eq!(w.0[0].close_reason(T0 + 1000.0), Some("max_duration"));
    }

    #[test]
    fn backlogged_event_closes_in_the_cycle_it_arrives() {
        let mut w = Windows::default();
        w.ingest(ev("old", "s", T0, false), T0 + 120.0);
        assert_eq!(w.close_ready(T0 + 120.0).len(), 1);
    }

    #[test]
    fn state_round_trip_keeps_events_and_skips_garbage() {
        let mut w = Windows::default();
        w.ingest(ev("a", "s", T0, false), T0);
        w.ingest(ev("b", "t", T0 + 1.5, false), T0 + 2.0);
        let mut state = w.to_state();
        assert_eq!(state["s:production"]["event_count"], 1);
        assert_eq!(state["s:production"]["opened_at"], "2026-11-24T15:00:00.000000+00:00");
        let mut bad = Vec::new();
        assert_eq!(Windows::from_state(Some(&state), &mut bad), w);
        state["x:production"] = serde_json::json!({"opened_at": "never"});
        let back = Windows::from_state(Some(&state), &mut bad);
        assert_eq!((back.0.len(), bad), (2, vec!["x:production".to_string()]));
    }
}
