//! Per-key breach hysteresis: a key fires once, then stays quiet until it has been back
//! within bounds for at least three evaluations spanning at least three intervals.

use serde_json::{json, Value};

/// Within evaluations (and intervals of time) a disarmed key needs to re-arm.
pub const REARM_INTERVALS: u32 = 3;

/// A finite JSON number that is not a bool (the reference's `as_timestamp`).
pub fn as_timestamp(v: &Value) -> Option<f64> {
    v.as_f64().filter(|f| f.is_finite())
}

#[derive(Debug, Clone, PartialEq)]
pub struct KeyState {
    /// Last "within" or "breach"; not_evaluable never sets it.
    pub last_evaluable: Option<&'static str>,
    pub armed: bool,
    pub within_since: Option<f64>,
    pub within_count: u64,
}

impl Default for KeyState {
    /// A new key is armed, so a breach at its very first evaluation fires at once.
    fn default() -> Self {
        KeyState { last_evaluable: None, armed: true, within_since: None, within_count: 0 }
    }
}

impl KeyState {
    /// A persisted entry that is not an object, or a field of the wrong type, reads as the
    /// default: corrupt state can re-raise a breach but never silence one.
    pub fn from_value(v: Option<&Value>) -> KeyState {
        let Some(d) = v.and_then(Value::as_object) else { return KeyState::default() };
        KeyState {
            last_evaluable: match d.get("last_evaluable").and_then(Value::as_str) {
                Some("within") => Some("within"),
                Some("breach") => Some("breach"),
                _ => None,
            },
            armed: d.get("armed").and_then(Value::as_bool).unwrap_or(true),
            within_since: d.get("within_since").and_then(as_timestamp),
            within_count: d.get("within_count").and_then(Value::as_u64).unwrap_or(0),
        }
    }

    /// The four fields in the reference's order (callers append the rest).
    pub fn to_value(&self) -> Value {
        json!({
            "last_evaluable": self.last_evaluable,
            "armed": self.armed,
            "within_since": self.within_since,
            "within_count": self.within_count,
        })
    }

    /// Applies one combined status at `now`; returns the new state and whether to fire.
    /// not_evaluable neither starts, extends nor ends a within run. A run that starts in the
    /// future (the clock went back) restarts now, so re-arming is delayed, never stopped.
    pub fn advance(&self, status: &str, now: f64, rearm_seconds: f64) -> (KeyState, bool) {
        match status {
            "within" => {
                let restart = self.within_since.is_none_or(|s| s > now);
                let since = if restart { now } else { self.within_since.unwrap_or(now) };
                let count = if restart { 1 } else { self.within_count + 1 };
                let armed = self.armed || (now - since >= rearm_seconds && count >= REARM_INTERVALS as u64);
                (
                    KeyState { last_evaluable: Some("within"), armed, within_since: Some(since), within_count: count },
                    false,
                )
            }
            "breach" => {
                // last_evaluable also guards a restored armed+breach state.
                let fire = self.armed && self.last_evaluable != Some("breach");
                (
                    KeyState {
                        last_evaluable: Some("breach"),
                        armed: self.armed && !fire,
                        within_since: None,
                        within_count: 0,
                    },
                    fire,
                )
            }
            _ => (self.clone(), false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const I: f64 = 900.0;
    const REARM: f64 = 3.0 * I;

    /// Runs a sequence of (status, seconds since start) and returns which steps fired.
    fn run(seq: &[(&str, f64)]) -> Vec<bool> {
        let mut st = KeyState::default();
        seq.iter()
            .map(|(s, t)| {
                let (next, fire) = st.advance(s, *t, REARM);
                st = next;
                fire
            })
            .collect()
    }

    #[test]
    fn first_breach_fires_at_once_then_stays_quiet() {
        assert_eq!(run(&[("breach", 0.0), ("breach", I), ("breach", 2.0 * I)]), [true, false, false]);
    }

    #[test]
    fn rearms_after_three_within_over_three_intervals() {
        let seq = [
            ("breach", 0.0),
            ("within", I),
            ("within", 2.0 * I),
            ("within", 3.0 * I),
            ("breach", 4.0 * I), // only 2 intervals since the run began: still disarmed
            ("within", 5.0 * I),
            ("within", 6.0 * I),
            ("within", 7.0 * I),
            ("within", 8.0 * I), // 3 intervals and 4 evaluations: armed
            ("breach", 9.0 * I),
        ];
        assert_eq!(run(&seq), [true, false, false, false, false, false, false, false, false, true]);
    }

    #[test]
    fn count_alone_or_time_alone_does_not_rearm() {
        // Many within evaluations close together: count met, time not.
        let mut seq = vec![("breach", 0.0)];
        seq.extend((1..10).map(|i| ("within", 1.0 + i as f64)));
        seq.push(("breach", 20.0));
        assert_eq!(run(&seq).last(), Some(&false));
        // Two within evaluations far apart: time met, count not.
        assert_eq!(
            run(&[("breach", 0.0), ("within", 10.0), ("within", 10.0 * I), ("breach", 11.0 * I)]).last(),
            Some(&false)
        );
    }

    #[test]
    fn not_evaluable_changes_nothing_and_backward_clock_restarts_run() {
        let st = KeyState { last_evaluable: Some("within"), armed: false, within_since: Some(100.0), within_count: 2 };
        assert_eq!(st.advance("not_evaluable", 5000.0, REARM), (st.clone(), false));
        let (back, _) = st.advance("within", 50.0, REARM);
        assert_eq!((back.within_since, back.within_count), (Some(50.0), 1));
    }

    #[test]
    fn restored_armed_breach_does_not_refire_and_junk_reads_armed() {
        let st = KeyState { last_evaluable: Some("breach"), armed: true, within_since: None, within_count: 0 };
        assert!(!st.advance("breach", 1.0, REARM).1);
        let junk = json!({"armed": "no", "within_count": -3, "within_since": true, "last_evaluable": "x"});
        assert_eq!(KeyState::from_value(Some(&junk)), KeyState::default());
        assert_eq!(KeyState::from_value(Some(&json!(7))), KeyState::default());
        let st = KeyState { last_evaluable: Some("within"), armed: false, within_since: Some(3.5), within_count: 2 };
        assert_eq!(KeyState::from_value(Some(&st.to_value())), st);
    }
}
