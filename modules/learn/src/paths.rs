//! The resolution rules that need only the verdict and its descendants: what state a verdict
//! is in, divergence (path 4), lineage (path 1) and expiry (path 5).

use serde_json::{json, Value};

use crate::text;

/// Written into the `reasoning` of every outcome_resolution learn posts, so learn can tell
/// its own resolutions from a reviewer's (both get core's default id `out-<id>`).
pub(crate) const MARKER: &str = "nthlayer-learn";

/// What a fetched verdict is, for learn.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum State {
    /// Waiting for an outcome.
    Pending,
    /// Its own `outcome.status` was set in place (core's override endpoint, a reviewer):
    /// confirmed, overridden or partial.
    Reviewed(String),
    /// Nothing to do: already terminal, or a type that carries no outcome.
    Settled,
    /// `outcome` is there but unusable; the reason is logged with the id.
    Malformed(String),
}

pub(crate) fn state(v: &Value) -> State {
    let vtype = v.get("type").and_then(Value::as_str).unwrap_or("");
    if vtype == "outcome_resolution" {
        return State::Settled;
    }
    match v.get("outcome") {
        // measure's breaches are loose verdicts without an outcome; whether the breach was
        // real is exactly what learn is for, so they count as pending.
        None if vtype == "quality_breach" => State::Pending,
        None => State::Settled,
        Some(Value::Object(o)) => match o.get("status") {
            Some(Value::String(s)) if s == "pending" => State::Pending,
            Some(Value::String(s)) if matches!(s.as_str(), "confirmed" | "overridden" | "partial") => {
                State::Reviewed(s.clone())
            }
            Some(Value::String(_)) => State::Settled,
            Some(other) => State::Malformed(format!("outcome.status is {other}, not a string")),
            None => State::Malformed("outcome has no status".into()),
        },
        Some(other) => State::Malformed(format!("outcome is {other}, not an object")),
    }
}

/// A resolution to post: core's `outcome_status`, the human-readable `resolution` and which of
/// the five paths found it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Resolution {
    pub status: String,
    pub text: String,
    pub path: &'static str,
}

impl Resolution {
    pub(crate) fn new(status: &str, text: String, path: &'static str) -> Self {
        Resolution { status: status.into(), text, path }
    }

    /// Body of `POST /verdicts/{id}/outcome`; core keeps `outcome_status`, `resolution` and
    /// `reasoning` (where the path is recorded) and drops the rest.
    pub(crate) fn body(&self) -> Value {
        json!({
            "outcome_status": self.status,
            "resolution": self.text,
            "reasoning": format!("{MARKER}: resolution_path={}", self.path),
        })
    }
}

/// What the descendants say about `id`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Lineage {
    /// The verdict is on a parent cycle: one of its parents is also its descendant (core's
    /// closure leaves the verdict itself out, so this is how a cycle shows).
    Cycle,
    /// learn already resolved it (its marked `out-<id>` exists), with this status by this
    /// path (from the marker).
    AlreadyResolved {
        status: String,
        path: String,
    },
    /// A direct outcome_resolution written by someone else (a reviewer), with its status.
    External {
        id: String,
        status: String,
    },
    Resolved(Resolution),
    Nothing,
}

/// Paths 4 and 1 over descendants in hop order: the first overridden descendant wins over the
/// first execution / outcome_resolution descendant, as in the reference.
pub(crate) fn lineage(v: &Value, id: &str, descendants: &[Value]) -> Lineage {
    let parents: Vec<&str> = v
        .get("parent_ids")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if descendants.iter().filter_map(|d| text(d, "id")).any(|d| d == id || parents.contains(&d)) {
        return Lineage::Cycle;
    }
    let own = format!("out-{id}");
    if let Some(out) = descendants.iter().find(|d| text(d, "id") == Some(own.as_str())) {
        let ours = out.get("reasoning").and_then(Value::as_str).is_some_and(|r| r.starts_with(MARKER));
        let status = text(out, "outcome_status").unwrap_or("confirmed").to_string();
        if let Some(reasoning) = out.get("reasoning").and_then(Value::as_str).filter(|_| ours) {
            let path = reasoning.split_once("resolution_path=").map_or("", |(_, p)| p.trim()).to_string();
            return Lineage::AlreadyResolved { status, path };
        }
        return Lineage::External { id: own, status };
    }
    let overridden =
        descendants.iter().find(|d| d.pointer("/outcome/status").and_then(Value::as_str) == Some("overridden"));
    if let Some(d) = overridden {
        let by = text(d, "id").unwrap_or("unknown");
        return Lineage::Resolved(Resolution::new("overridden", format!("Overridden by {by}"), "divergence"));
    }
    let downstream =
        descendants.iter().find(|d| matches!(text(d, "type"), Some("execution") | Some("outcome_resolution")));
    if let Some(d) = downstream {
        let (t, by) = (text(d, "type").unwrap_or(""), text(d, "id").unwrap_or("unknown"));
        return Lineage::Resolved(Resolution::new(
            "confirmed",
            format!("Resolved by downstream {t} verdict {by}"),
            "lineage",
        ));
    }
    Lineage::Nothing
}

/// The path names of resolutions that carry a calibration signal (all but expiry), as the
/// `&'static str` a [`Resolution`] holds.
pub(crate) fn signal_path(name: &str) -> Option<&'static str> {
    ["divergence", "lineage", "downstream_signal", SAMPLING].into_iter().find(|p| *p == name)
}

pub(crate) const SAMPLING: &str = "calibration_sampling";

/// Path 5's age test: `now - created_at >= days` (inclusive, as the reference), never with 0.
pub(crate) fn past(created_at: f64, now: f64, days: u64) -> bool {
    days > 0 && now - created_at >= days as f64 * 86_400.0
}

pub(crate) fn expiry() -> Resolution {
    Resolution::new("expired", "No outcome signal within threshold".into(), "expiry")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states() {
        assert_eq!(state(&json!({"type": "triage", "outcome": {"status": "pending"}})), State::Pending);
        assert_eq!(state(&json!({"type": "quality_breach"})), State::Pending);
        assert_eq!(state(&json!({"type": "autonomy_change"})), State::Settled);
        assert_eq!(state(&json!({"type": "outcome_resolution", "outcome": {"status": "pending"}})), State::Settled);
        assert_eq!(state(&json!({"outcome": {"status": "expired"}})), State::Settled);
        assert_eq!(state(&json!({"outcome": {"status": "overridden"}})), State::Reviewed("overridden".into()));
        assert!(matches!(state(&json!({"outcome": "garbage"})), State::Malformed(_)));
        assert!(matches!(state(&json!({"outcome": null})), State::Malformed(_)));
        assert!(matches!(state(&json!({"outcome": {"status": 3}})), State::Malformed(_)));
        assert!(matches!(state(&json!({"outcome": {}})), State::Malformed(_)));
    }

    #[test]
    fn divergence_beats_lineage_and_hop_order_decides() {
        let d = vec![
            json!({"id": "e1", "type": "execution"}),
            json!({"id": "o1", "type": "triage", "outcome": {"status": "overridden"}}),
            json!({"id": "o2", "type": "triage", "outcome": {"status": "overridden"}}),
        ];
        assert_eq!(
            lineage(&json!({}), "v", &d),
            Lineage::Resolved(Resolution::new("overridden", "Overridden by o1".into(), "divergence"))
        );
        let d = vec![json!({"id": "x", "type": "triage"}), json!({"id": "r1", "type": "outcome_resolution"})];
        assert_eq!(
            lineage(&json!({}), "v", &d),
            Lineage::Resolved(Resolution::new(
                "confirmed",
                "Resolved by downstream outcome_resolution verdict r1".into(),
                "lineage"
            ))
        );
        assert_eq!(lineage(&json!({}), "v", &[json!({"id": "x", "type": "triage"})]), Lineage::Nothing);
        assert_eq!(lineage(&json!({}), "v", &[]), Lineage::Nothing);
    }

    #[test]
    fn own_resolution_external_resolution_and_cycles() {
        let ours = json!({"id": "out-v", "type": "outcome_resolution", "reasoning": "nthlayer-learn: resolution_path=lineage"});
        assert_eq!(
            lineage(&json!({}), "v", &[ours]),
            Lineage::AlreadyResolved { status: "confirmed".into(), path: "lineage".into() }
        );
        assert_eq!(signal_path("lineage"), Some("lineage"));
        assert_eq!(signal_path("expiry"), None);
        let theirs =
            json!({"id": "out-v", "type": "outcome_resolution", "outcome_status": "partial", "reasoning": null});
        assert_eq!(
            lineage(&json!({}), "v", &[theirs]),
            Lineage::External { id: "out-v".into(), status: "partial".into() }
        );
        assert_eq!(lineage(&json!({}), "v", &[json!({"id": "w"}), json!({"id": "v"})]), Lineage::Cycle);
        // core's answer for a -> b -> a: b only; a's parent b is among its descendants
        assert_eq!(
            lineage(&json!({"parent_ids": ["b"]}), "a", &[json!({"id": "b", "type": "execution"})]),
            Lineage::Cycle
        );
        assert_eq!(
            lineage(&json!({"parent_ids": ["p"]}), "a", &[json!({"id": "b", "type": "triage"})]),
            Lineage::Nothing
        );
    }

    #[test]
    fn expiry_is_inclusive_and_zero_disables() {
        assert!(past(0.0, 7.0 * 86_400.0, 7));
        assert!(!past(1.0, 7.0 * 86_400.0, 7));
        assert!(!past(0.0, 1e12, 0));
        assert_eq!(expiry().body()["outcome_status"], "expired");
        assert_eq!(expiry().body()["resolution"], "No outcome signal within threshold");
    }
}
