//! measure's persisted state, in the reference's layout (§6.4) plus our rotation counter.
//! The reference loses all of it on restart because core drops the keys; the host packs it
//! into a key core keeps, so here it is restored and an open breach stays open.

use std::collections::BTreeSet;

use serde_json::{json, Map, Value};

use crate::threshold::hysteresis::as_timestamp;

/// Bumped when the threshold layout or key scheme changes incompatibly; unknown versions
/// start threshold state afresh (an open breach may re-raise: the safe direction).
pub const THRESHOLD_STATE_VERSION: i64 = 1;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct State {
    /// `svc:slo` -> "healthy" | "breach".
    pub slo_status: Map<String, Value>,
    /// key -> `{decided, decided_at, autonomy_action}`.
    pub breach_decisions: Map<String, Value>,
    /// service -> autonomy level.
    pub autonomy_levels: Map<String, Value>,
    /// key -> "low" | "high" | "critical".
    pub breach_severities: Map<String, Value>,
    /// threshold key -> hysteresis and emission state.
    pub threshold_state: Map<String, Value>,
    pub threshold_last_run: Option<f64>,
    /// Governance keys that are threshold keys, so threshold cleanup never touches an SLO's.
    pub threshold_governed: BTreeSet<String>,
    /// Where the next threshold run starts, so a run cut short does not always starve the
    /// same tail. In memory only in the reference.
    pub threshold_rotation: u64,
}

fn object(v: Option<&Value>) -> Map<String, Value> {
    v.and_then(Value::as_object).cloned().unwrap_or_default()
}

/// Only string values survive: anything else in restored state is noise that would make a
/// later comparison silently wrong.
fn strings(v: Option<&Value>) -> Map<String, Value> {
    object(v).into_iter().filter(|(_, v)| v.is_string()).collect()
}

/// A service's stored level that is not a rung of the ladder (a number, null, an unknown
/// word) restores as `advisor`, the reference's fail-safe for an unknown level: corrupt state
/// must never widen autonomy, and dropping the entry would read as `fully_autonomous`.
fn autonomy(v: Option<&Value>) -> Map<String, Value> {
    object(v)
        .into_iter()
        .map(|(service, level)| {
            let known = level.as_str().filter(|l| crate::governance::LADDER.contains(l));
            (service, json!(known.unwrap_or("advisor")))
        })
        .collect()
}

impl State {
    /// Restored component state is untrusted: wrong shapes read as empty, never as a panic.
    pub fn restore(state: Option<&Value>) -> (State, Option<String>) {
        let Some(s) = state.and_then(Value::as_object).filter(|s| !s.is_empty()) else {
            return (State::default(), None);
        };
        let mut st = State {
            slo_status: strings(s.get("slo_status")),
            breach_decisions: object(s.get("breach_decisions")).into_iter().filter(|(_, v)| v.is_object()).collect(),
            autonomy_levels: autonomy(s.get("autonomy_levels")),
            breach_severities: strings(s.get("breach_severities")),
            threshold_last_run: s.get("threshold_last_run").and_then(as_timestamp),
            threshold_rotation: s.get("threshold_rotation").and_then(Value::as_u64).unwrap_or(0),
            ..State::default()
        };
        let version = s.get("threshold_state_version").cloned().unwrap_or(json!(THRESHOLD_STATE_VERSION));
        if version.as_i64() != Some(THRESHOLD_STATE_VERSION) {
            return (st, Some(version.to_string()));
        }
        st.threshold_state = object(s.get("threshold_state"))
            .into_iter()
            .filter(|(_, v)| v.get("service").is_some_and(Value::is_string))
            .collect();
        if let Some(list) = s.get("threshold_governed").and_then(Value::as_array) {
            st.threshold_governed = list
                .iter()
                .filter_map(Value::as_str)
                .filter(|k| st.threshold_state.contains_key(*k))
                .map(str::to_string)
                .collect();
        }
        (st, None)
    }

    /// The reference's `get_state()` keys, in its order, then ours.
    pub fn to_value(&self) -> Value {
        json!({
            "slo_status": self.slo_status,
            "breach_decisions": self.breach_decisions,
            "autonomy_levels": self.autonomy_levels,
            "breach_severities": self.breach_severities,
            "threshold_state": self.threshold_state,
            "threshold_last_run": self.threshold_last_run,
            "threshold_governed": self.threshold_governed,
            "threshold_state_version": THRESHOLD_STATE_VERSION,
            "threshold_rotation": self.threshold_rotation,
        })
    }

    pub fn is_decided(&self, key: &str) -> bool {
        self.breach_decisions.get(key).and_then(|d| d.get("decided")).is_some_and(crate::truthy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_junk() {
        let mut st = State::default();
        st.slo_status.insert("a:reversal_rate".into(), json!("breach"));
        st.autonomy_levels.insert("a".into(), json!("advisor"));
        st.threshold_state.insert("a:calibration:x".into(), json!({"service": "a", "armed": false}));
        st.threshold_governed.insert("a:calibration:x".into());
        st.threshold_last_run = Some(12.5);
        let (back, problem) = State::restore(Some(&st.to_value()));
        assert_eq!(back, st);
        assert_eq!(problem, None);

        let junk = json!({"slo_status": {"k": 3, "j": "healthy"}, "breach_decisions": [1], "threshold_last_run": true,
            "threshold_state": {"x": 1, "y": {"service": "s"}}, "threshold_governed": ["y", "k", 5]});
        let (st, _) = State::restore(Some(&junk));
        assert_eq!(st.slo_status.len(), 1);
        assert!(st.breach_decisions.is_empty());
        assert_eq!(st.threshold_last_run, None);
        assert_eq!(st.threshold_state.keys().collect::<Vec<_>>(), ["y"]);
        assert_eq!(st.threshold_governed.iter().collect::<Vec<_>>(), ["y"]);

        let (st, problem) =
            State::restore(Some(&json!({"threshold_state_version": 2, "threshold_state": {"y": {"service": "s"}},
            "slo_status": {"k": "breach"}})));
        assert!(st.threshold_state.is_empty());
        assert_eq!(st.slo_status.len(), 1);
        assert_eq!(problem.as_deref(), Some("2"));
        assert_eq!(State::restore(Some(&json!("x"))).0, State::default());
    }

    #[test]
    fn corrupt_autonomy_level_restores_as_advisor() {
        let stored = json!({"autonomy_levels": {"a": 3, "b": null, "c": "supervised", "d": "observer",
            "e": "fully_autonomous", "f": {"level": "observer"}}});
        let (st, _) = State::restore(Some(&stored));
        let level = |s: &str| st.autonomy_levels.get(s).and_then(Value::as_str).map(str::to_string);
        for s in ["a", "b", "c", "f"] {
            assert_eq!(level(s).as_deref(), Some("advisor"), "service {s}");
        }
        assert_eq!(level("d").as_deref(), Some("observer"));
        assert_eq!(level("e").as_deref(), Some("fully_autonomous"));
    }
}
