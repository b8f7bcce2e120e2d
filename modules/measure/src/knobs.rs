//! The reference's `MEASURE_*` operator settings. Modules cannot read the environment, so the
//! host reads them (host/src/config.rs) and passes them under `config.measure`; they are
//! checked again here so a hand-written config cannot collapse the hysteresis.

use serde_json::Value;

pub const DEFAULT_THRESHOLD_INTERVAL: f64 = 900.0;
pub const DEFAULT_THRESHOLD_HEARTBEAT: f64 = 3600.0;
/// Zero would evaluate every cycle and collapse the re-arm hysteresis; a week is the cap.
pub const MAX_TIMING_SECONDS: f64 = 7.0 * 86400.0;
/// Judgment SLO queries in flight at once, as the reference's semaphore.
pub const EVAL_CONCURRENCY: usize = 5;

#[derive(Debug, Clone, PartialEq)]
pub struct Knobs {
    pub threshold_interval: f64,
    pub threshold_heartbeat: f64,
    pub threshold_autonomy: bool,
    pub retention_check: bool,
}

impl Default for Knobs {
    fn default() -> Self {
        Knobs {
            threshold_interval: DEFAULT_THRESHOLD_INTERVAL,
            threshold_heartbeat: DEFAULT_THRESHOLD_HEARTBEAT,
            threshold_autonomy: false,
            retention_check: true,
        }
    }
}

impl Knobs {
    pub fn from_config(config: &Value) -> Self {
        let d = Knobs::default();
        let Some(m) = config.get("measure") else { return d };
        Knobs {
            threshold_interval: seconds(m.get("threshold_interval_seconds"), d.threshold_interval),
            threshold_heartbeat: seconds(m.get("threshold_heartbeat_seconds"), d.threshold_heartbeat),
            threshold_autonomy: m.get("threshold_autonomy").and_then(Value::as_bool).unwrap_or(d.threshold_autonomy),
            retention_check: m.get("retention_check").and_then(Value::as_bool).unwrap_or(d.retention_check),
        }
    }
}

fn seconds(v: Option<&Value>, default: f64) -> f64 {
    v.and_then(Value::as_f64).filter(|s| s.is_finite() && *s > 0.0 && *s <= MAX_TIMING_SECONDS).unwrap_or(default)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_and_bad_values_fall_back() {
        assert_eq!(Knobs::from_config(&json!({})), Knobs::default());
        let k = Knobs::from_config(
            &json!({"measure": {"threshold_interval_seconds": 2.5, "threshold_heartbeat_seconds": 0,
            "threshold_autonomy": true, "retention_check": false}}),
        );
        assert_eq!(k.threshold_interval, 2.5);
        assert_eq!(k.threshold_heartbeat, 3600.0);
        assert!(k.threshold_autonomy && !k.retention_check);
        let k = Knobs::from_config(&json!({"measure": {"threshold_interval_seconds": 604801}}));
        assert_eq!(k.threshold_interval, 900.0);
    }
}
