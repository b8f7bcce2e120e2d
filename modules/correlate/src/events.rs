//! Core records as correlation events: the reference's mapping and severities, plus a
//! compact JSON form so open windows can carry their events through a restart.

use nthlayer_sdk::time;
use serde_json::Value;

/// One verdict or assessment as the session windows see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: String,
    /// `created_at` exactly as core returned it (prompts and cursors use the string).
    pub timestamp: String,
    /// `timestamp` parsed, Unix seconds.
    pub ts: f64,
    pub source: String,
    /// `quality_score`, `verdict`, `metric_breach` or `alert`.
    pub kind: String,
    pub service: String,
    pub environment: String,
    pub severity: f64,
    /// A quality_breach verdict: closes its window at once.
    pub trigger: bool,
}

/// Why a record could not become an event: the caller logs it with the service and skips it.
#[derive(Debug, Clone, PartialEq)]
pub struct Unparsable {
    pub id: String,
    pub service: String,
    pub timestamp: String,
}

fn str_or<'a>(v: &'a Value, key: &str, default: &'a str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or(default)
}

/// The reference falls back to "now" for a missing `created_at` but crashes the whole cycle on
/// one it cannot parse; here only that record is dropped.
fn timestamp(record: &Value, now: f64) -> Result<(String, f64), Unparsable> {
    let raw = match record.get("created_at") {
        None | Some(Value::Null) => return Ok((time::iso(now), now)),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    match parse_ts(&raw) {
        Some(ts) => Ok((raw, ts)),
        None => Err(Unparsable {
            id: str_or(record, "id", "unknown").to_string(),
            service: str_or(record, "service", "unknown").to_string(),
            timestamp: raw,
        }),
    }
}

/// ISO-8601 with `Z` or an offset; naive means UTC (the reference's `_parse_event_ts`).
pub fn parse_ts(s: &str) -> Option<f64> {
    time::parse_iso(&s.replace('Z', "+00:00"))
}

/// quality_breach verdicts score 0.9 and trigger; every other verdict type is 0.5.
pub fn from_verdict(v: &Value, now: f64) -> Result<Event, Unparsable> {
    let (timestamp, ts) = timestamp(v, now)?;
    let vtype = str_or(v, "type", "unknown");
    let breach = vtype == "quality_breach";
    Ok(Event {
        id: str_or(v, "id", "unknown").to_string(),
        timestamp,
        ts,
        source: format!("verdict:{vtype}"),
        kind: if breach { "quality_score" } else { "verdict" }.to_string(),
        service: str_or(v, "service", "unknown").to_string(),
        environment: str_or(v, "environment", "production").to_string(),
        severity: if breach { 0.9 } else { 0.5 },
        trigger: breach,
    })
}

/// Assessments carry no environment, so they all land in "production" (as in the reference).
pub fn from_assessment(a: &Value, now: f64) -> Result<Event, Unparsable> {
    let (timestamp, ts) = timestamp(a, now)?;
    let status = a.pointer("/data/status").and_then(Value::as_str).unwrap_or("");
    Ok(Event {
        id: str_or(a, "id", "unknown").to_string(),
        timestamp,
        ts,
        source: format!("assessment:{}", str_or(a, "kind", "unknown")),
        kind: if matches!(status, "EXHAUSTED" | "CRITICAL") { "metric_breach" } else { "alert" }.to_string(),
        service: str_or(a, "service", "unknown").to_string(),
        environment: "production".to_string(),
        severity: status_severity(status),
        trigger: a.get("type").and_then(Value::as_str) == Some("quality_breach"),
    })
}

pub fn status_severity(status: &str) -> f64 {
    match status {
        "EXHAUSTED" => 1.0,
        "CRITICAL" => 0.8,
        "WARNING" => 0.5,
        "HEALTHY" => 0.1,
        _ => 0.3,
    }
}

impl Event {
    /// The form windows saved their events in before digests (digest.rs reads it back);
    /// only tests write it now.
    #[cfg(test)]
    pub fn to_state(&self) -> Value {
        use serde_json::json;
        json!({
            "id": self.id, "timestamp": self.timestamp, "source": self.source, "type": self.kind,
            "service": self.service, "environment": self.environment, "severity": self.severity,
            "trigger": self.trigger,
        })
    }

    /// `None` for anything this module did not write; such an event is simply not restored.
    pub fn from_state(v: &Value) -> Option<Event> {
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        let timestamp = s("timestamp")?;
        Some(Event {
            id: s("id")?,
            ts: parse_ts(&timestamp)?,
            timestamp,
            source: s("source")?,
            kind: s("type")?,
            service: s("service")?,
            environment: s("environment")?,
            severity: v.get("severity").and_then(Value::as_f64)?,
            trigger: v.get("trigger").and_then(Value::as_bool).unwrap_or(false),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: f64 = 1_795_532_927.615105;

    #[test]
    fn verdict_mapping_and_severity() {
        let v =
            json!({"id": "v1", "type": "quality_breach", "service": "s", "created_at": "2026-11-24T15:00:00+00:00"});
        let e = from_verdict(&v, NOW).unwrap();
        assert_eq!(
            (e.source.as_str(), e.kind.as_str(), e.severity, e.trigger),
            ("verdict:quality_breach", "quality_score", 0.9, true)
        );
        assert_eq!(e.environment, "production");
        let v = json!({"id": "v2", "type": "autonomy_change", "created_at": "2026-11-24T15:00:00Z", "environment": "staging"});
        let e = from_verdict(&v, NOW).unwrap();
        assert_eq!((e.kind.as_str(), e.severity, e.trigger), ("verdict", 0.5, false));
        assert_eq!((e.service.as_str(), e.environment.as_str()), ("unknown", "staging"));
        assert_eq!(e.ts, 1_795_532_400.0);
    }

    #[test]
    fn assessment_status_severities() {
        for (status, sev, kind) in [
            ("EXHAUSTED", 1.0, "metric_breach"),
            ("CRITICAL", 0.8, "metric_breach"),
            ("WARNING", 0.5, "alert"),
            ("HEALTHY", 0.1, "alert"),
            ("UNKNOWN", 0.3, "alert"),
        ] {
            let a = json!({"id": "a", "kind": "slo_status", "service": "s", "created_at": "2026-11-24T15:00:00",
                           "data": {"status": status}});
            let e = from_assessment(&a, NOW).unwrap();
            assert_eq!((e.severity, e.kind.as_str()), (sev, kind), "{status}");
            assert_eq!(e.source, "assessment:slo_status");
        }
        let e = from_assessment(&json!({"id": "a", "kind": "drift_signal", "created_at": "2026-11-24T15:00:00"}), NOW);
        assert_eq!(e.unwrap().severity, 0.3);
    }

    #[test]
    fn missing_timestamp_is_now_and_garbage_is_refused() {
        let e = from_verdict(&json!({"id": "v", "type": "x"}), NOW).unwrap();
        assert_eq!(e.ts, NOW);
        let err = from_verdict(&json!({"id": "v", "service": "pay", "created_at": "yesterday"}), NOW).unwrap_err();
        assert_eq!((err.service.as_str(), err.timestamp.as_str()), ("pay", "yesterday"));
        assert!(from_assessment(&json!({"id": "a", "created_at": 12}), NOW).is_err());
    }

    #[test]
    fn state_round_trip() {
        let v =
            json!({"id": "v1", "type": "quality_breach", "service": "s", "created_at": "2026-11-24T15:00:00.5+00:00"});
        let e = from_verdict(&v, NOW).unwrap();
        assert_eq!(Event::from_state(&e.to_state()), Some(e));
        assert_eq!(Event::from_state(&json!({"id": "x"})), None);
    }
}
