//! The `calibration_signal` assessment: how far a verdict's confidence was from what happened.

use nthlayer_sdk::{time, Host};
use serde_json::{json, Value};

use crate::paths::Resolution;
use crate::{stable_hex8, text};

/// Score of each outcome; `calibration_delta = round(|confidence - score|, 4)`. Outcomes not
/// listed (none of the paths produce them) give a null delta, as in the reference.
fn outcome_score(status: &str) -> Option<f64> {
    match status {
        "confirmed" => Some(1.0),
        "overridden" => Some(0.0),
        "partial" => Some(0.5),
        _ => None,
    }
}

/// Python's `round(x, 4)`: correctly rounded, ties to even on the exact binary value.
fn round4(x: f64) -> f64 {
    format!("{x:.4}").parse().unwrap_or(x)
}

pub(crate) fn delta(confidence: &Value, status: &str) -> Option<f64> {
    let c = confidence.as_f64().filter(|_| !confidence.is_boolean())?;
    Some(round4((c - outcome_score(status)?).abs()))
}

/// The record, keys in the reference's order. The id suffix is derived from the verdict id
/// (the reference draws it at random), so a second post for the same verdict is a 409.
pub(crate) fn record(host: &dyn Host, v: &Value, res: &Resolution, service: &str) -> Value {
    let vid = text(v, "id").unwrap_or("unknown");
    let confidence = v.pointer("/judgment/confidence").cloned().unwrap_or(Value::Null);
    json!({
        "id": format!("cal-{vid}-{}", stable_hex8(&format!("cal:{vid}"))),
        "created_at": time::iso(host.now()),
        "kind": "calibration_signal",
        "service": service,
        "data": {
            "verdict_id": v.get("id").cloned().unwrap_or(Value::Null),
            "verdict_type": v.get("type").cloned().unwrap_or(Value::Null),
            "expressed_confidence": confidence,
            "observed_outcome": res.status,
            "calibration_delta": delta(&confidence, &res.status),
            "resolution_path": res.path,
            "producer_system": v.pointer("/producer/system").cloned().unwrap_or(Value::Null),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use nthlayer_sdk::testing::FakeHost;

    #[test]
    fn delta_follows_the_reference() {
        assert_eq!(delta(&json!(0.8), "confirmed"), Some(0.2));
        assert_eq!(delta(&json!(0.8), "overridden"), Some(0.8));
        assert_eq!(delta(&json!(0.3), "partial"), Some(0.2));
        assert_eq!(delta(&json!(0.12345), "overridden"), Some(0.1235)); // Python: round(0.12345, 4)
        assert_eq!(delta(&json!(0.12345), "confirmed"), Some(0.8765));
        assert_eq!(delta(&json!(0.0), "confirmed"), Some(1.0));
        assert_eq!(delta(&json!(null), "confirmed"), None);
        assert_eq!(delta(&json!("high"), "confirmed"), None);
        assert_eq!(delta(&json!(true), "confirmed"), None);
        assert_eq!(delta(&json!(0.5), "expired"), None);
    }

    #[test]
    fn record_shape_and_stable_id() {
        let host = FakeHost::new();
        let v = json!({"id": "vrd-1", "type": "triage", "service": null, "judgment": {"confidence": 0.8},
                       "producer": {"system": "nthlayer-respond"}});
        let r = Resolution::new("confirmed", "x".into(), "lineage");
        let a = record(&host, &v, &r, "fraud-detect");
        assert_eq!(a["id"], record(&host, &v, &r, "fraud-detect")["id"]);
        assert!(a["id"].as_str().unwrap().starts_with("cal-vrd-1-"));
        assert_eq!(a["service"], "fraud-detect");
        assert_eq!(
            a["data"],
            json!({"verdict_id": "vrd-1", "verdict_type": "triage", "expressed_confidence": 0.8,
                   "observed_outcome": "confirmed", "calibration_delta": 0.2, "resolution_path": "lineage",
                   "producer_system": "nthlayer-respond"})
        );
        let keys: Vec<&String> = a.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["id", "created_at", "kind", "service", "data"]);
    }
}
