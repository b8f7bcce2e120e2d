//! Served `judgment_thresholds` entries: the reference's per-entry validation (entries are
//! closed per type), and the identity that keys each entry's state.

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use nthlayer_sdk::py;

/// Bound names per threshold type and whether each is a ratio (else a duration).
pub const BOUNDS: [(&str, &[(&str, bool)]); 5] = [
    ("segments", &[("maximum_variance_from_overall", true)]),
    ("stability", &[("maximum_drift", true)]),
    ("calibration", &[("maximum_brier_score", true), ("maximum_expected_calibration_error", true)]),
    ("audit_backlog", &[("maximum_age", false)]),
    ("feedback_latency", &[("maximum_p50", false), ("maximum_p90", false)]),
];
const JUDGMENT_SLO_TYPES: [&str; 5] =
    ["reversal_rate", "high_confidence_failure", "audit_sampling", "outcomes", "escalation"];
const FORBIDDEN: [&str; 4] = ["breach_actions", "target", "judgment_type", "service"];
const SEGMENTS_METRICS: [&str; 4] = ["reversal_rate", "high_confidence_failure", "outcomes", "escalation"];
const SEGMENTS_SOURCES: [&str; 3] = ["lineage", "calibration_sample", "downstream_signal"];
const SEGMENTS_DEFAULT_WINDOW: &str = "30d";
const PROBE_FREQUENCIES: [&str; 3] = ["hourly", "daily", "weekly"];

/// The keys each type defines besides `type` and `bounds`, with the closed key set of the
/// object-valued ones.
fn type_fields(t: &str) -> &'static [(&'static str, Option<&'static [&'static str]>)] {
    match t {
        "segments" => &[
            ("metric", None),
            ("segment_dimension", None),
            ("segment_values", None),
            ("measurement", Some(&["window", "source", "confidence_threshold"])),
            ("outcome_signal", Some(&["source", "window"])),
        ],
        "stability" => &[("probe", Some(&["frozen_input_set", "frequency"]))],
        "calibration" => &[("measurement", Some(&["bins", "window"]))],
        _ => &[],
    }
}

fn required(t: &str) -> &'static [&'static str] {
    match t {
        "segments" => &["metric", "segment_dimension", "segment_values"],
        "stability" => &["probe"],
        "calibration" => &["measurement"],
        _ => &[],
    }
}

pub fn bound_kinds(t: &str) -> Option<&'static [(&'static str, bool)]> {
    BOUNDS.iter().find(|(n, _)| *n == t).map(|(_, b)| *b)
}

/// A bound's limit as declared: a ratio, or a duration string such as `"1h"`.
#[derive(Debug, Clone, PartialEq)]
pub enum Limit {
    Ratio(f64),
    Duration(String),
}

impl Limit {
    pub fn to_value(&self) -> Value {
        match self {
            Limit::Ratio(r) => json!(r),
            Limit::Duration(d) => json!(d),
        }
    }
    /// What a measured value is compared with (durations in seconds).
    pub fn number(&self) -> f64 {
        match self {
            Limit::Ratio(r) => *r,
            Limit::Duration(d) => duration_seconds(d).unwrap_or(f64::INFINITY),
        }
    }
    /// `str(limit)` as the reference's summary prints it.
    pub fn text(&self) -> String {
        match self {
            Limit::Ratio(r) => py::repr(*r),
            Limit::Duration(d) => d.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Threshold {
    pub ttype: String,
    pub bounds: Vec<(String, Limit)>,
    pub bins: Option<i64>,
    pub window: Option<String>,
    pub metric: Option<String>,
    pub source: Option<String>,
    pub confidence_threshold: Option<f64>,
    pub outcome_signal: Option<(String, String)>,
    pub segment_dimension: Option<String>,
    pub segment_values: Vec<String>,
    pub probe: Option<(String, String)>,
}

const UNITS: [(&str, f64, f64); 6] = [
    ("ms", 1.0, 1000.0),
    ("s", 1.0, 1.0),
    ("m", 60.0, 1.0),
    ("h", 3600.0, 1.0),
    ("d", 86400.0, 1.0),
    ("w", 604800.0, 1.0),
];

/// `^[0-9]+(ms|s|m|h|d|w)$`, longest unit first.
pub fn is_duration(v: &str) -> bool {
    UNITS.iter().find(|(u, _, _)| v.ends_with(u)).is_some_and(|(u, _, _)| {
        let digits = &v[..v.len() - u.len()];
        !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
    })
}

pub fn duration_seconds(v: &str) -> Option<f64> {
    if !is_duration(v) {
        return None;
    }
    let (u, num, den) = UNITS.iter().find(|(u, _, _)| v.ends_with(u))?;
    let n: f64 = v[..v.len() - u.len()].parse().ok()?;
    Some(n * num / den)
}

fn ratio(name: &str, v: &Value, what: &str) -> Result<f64, String> {
    let r = match v {
        Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
        other => return Err(format!("{what} '{name}' must be a number, got {other}")),
    };
    if !r.is_finite() || !(0.0..=1.0).contains(&r) {
        return Err(format!("{what} '{name}' must be in [0, 1], got {v}"));
    }
    Ok(r)
}

fn str_field(o: &Map<String, Value>, k: &str) -> Option<String> {
    o.get(k).and_then(Value::as_str).map(str::to_string)
}

/// One served entry, validated as the reference's parser validates it. The error names the
/// offending key or bound.
pub fn parse(entry: &Value) -> Result<Threshold, String> {
    let Some(e) = entry.as_object() else { return Err(format!("entry must be a mapping, got {entry}")) };
    let ttype = match e.get("type").and_then(Value::as_str) {
        Some(t) if JUDGMENT_SLO_TYPES.contains(&t) => {
            return Err(format!("'{t}' is a judgment SLO, not a threshold"));
        }
        Some(t) if bound_kinds(t).is_some() => t.to_string(),
        other => return Err(format!("'type' must be a judgment threshold type, got {other:?}")),
    };
    let t = ttype.as_str();
    if let Some(k) = FORBIDDEN.iter().find(|k| e.contains_key(**k)) {
        return Err(format!("'{k}' is not allowed on a '{t}' threshold"));
    }
    let fields = type_fields(t);
    let mut unknown: Vec<&String> =
        e.keys().filter(|k| *k != "type" && *k != "bounds" && !fields.iter().any(|(f, _)| f == k)).collect();
    unknown.sort();
    if !unknown.is_empty() {
        return Err(format!("{unknown:?} not defined on threshold type '{t}'"));
    }
    for name in required(t) {
        let missing = match e.get(*name) {
            None | Some(Value::Null) => true,
            Some(Value::String(s)) => s.is_empty(),
            Some(Value::Array(a)) => a.is_empty(),
            Some(Value::Object(o)) => o.is_empty(),
            _ => false,
        };
        if missing {
            return Err(format!("'{t}' requires '{name}'"));
        }
    }
    for (key, allowed) in fields {
        let (Some(allowed), Some(v)) = (allowed, e.get(*key)) else { continue };
        let Some(o) = v.as_object() else { return Err(format!("'{key}' must be a mapping, got {v}")) };
        if t == "calibration" && o.contains_key("method") {
            return Err("'measurement.method' is not part of a calibration threshold".into());
        }
        if let Some(k) = o.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(format!("'{k}' is not defined on a '{t}' threshold's '{key}'"));
        }
    }
    let mut th = Threshold { ttype: ttype.clone(), ..Threshold::default() };
    match t {
        "calibration" => {
            let m = &e["measurement"];
            let bins = match &m["bins"] {
                Value::Number(n) => n.as_i64().or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
                _ => None,
            };
            th.bins = Some(
                bins.filter(|b| *b >= 2)
                    .ok_or(format!("'measurement.bins' must be an integer >= 2, got {}", m["bins"]))?,
            );
            let window = m["window"].as_str().filter(|w| is_duration(w));
            th.window =
                Some(window.ok_or(format!("'measurement.window' must be a duration, got {}", m["window"]))?.into());
        }
        "stability" => {
            let p = &e["probe"];
            let fis = p["frozen_input_set"].as_str().ok_or("'probe' needs a 'frozen_input_set' string")?;
            let freq = p["frequency"].as_str().filter(|f| PROBE_FREQUENCIES.contains(f));
            let freq =
                freq.ok_or(format!("'probe.frequency' must be hourly, daily or weekly, got {}", p["frequency"]))?;
            th.probe = Some((fis.into(), freq.into()));
        }
        "segments" => parse_segments(e, &mut th)?,
        _ => {}
    }
    th.bounds = parse_bounds(t, e.get("bounds"))?;
    Ok(th)
}

fn parse_segments(e: &Map<String, Value>, th: &mut Threshold) -> Result<(), String> {
    th.segment_dimension =
        Some(str_field(e, "segment_dimension").ok_or("'segment_dimension' must be a non-empty string")?);
    let values = e["segment_values"].as_array().filter(|a| a.iter().all(|v| v.as_str().is_some_and(|s| !s.is_empty())));
    let values = values.ok_or("'segment_values' must be a non-empty list of non-empty strings")?;
    th.segment_values = values.iter().filter_map(Value::as_str).map(str::to_string).collect();
    let metric = e["metric"].as_str().filter(|m| SEGMENTS_METRICS.contains(m));
    let metric = metric.ok_or(format!("'metric' must be one of {SEGMENTS_METRICS:?}, got {}", e["metric"]))?;
    let empty = Map::new();
    let m = e.get("measurement").and_then(Value::as_object).unwrap_or(&empty);
    for (owner, in_measurement, key) in [
        ("reversal_rate", true, "source"),
        ("high_confidence_failure", true, "confidence_threshold"),
        ("outcomes", false, "outcome_signal"),
    ] {
        let present = if in_measurement { m.contains_key(key) } else { e.contains_key(key) };
        if owner == metric && !present {
            return Err(format!("metric '{metric}' requires '{key}'"));
        }
        if owner != metric && present {
            return Err(format!("'{key}' parameterises metric '{owner}' only, not '{metric}'"));
        }
    }
    th.window = Some(match m.get("window") {
        None => SEGMENTS_DEFAULT_WINDOW.into(),
        Some(w) => {
            let w = w.as_str().filter(|w| is_duration(w) && duration_seconds(w) != Some(0.0));
            w.ok_or("'measurement.window' must be a non-zero duration")?.into()
        }
    });
    if let Some(s) = m.get("source") {
        let s = s.as_str().filter(|s| SEGMENTS_SOURCES.contains(s));
        th.source = Some(s.ok_or(format!("'measurement.source' must be one of {SEGMENTS_SOURCES:?}"))?.into());
    }
    if let Some(c) = m.get("confidence_threshold") {
        th.confidence_threshold = Some(ratio("measurement.confidence_threshold", c, "field")?);
    }
    if let Some(sig) = e.get("outcome_signal") {
        let source = sig["source"].as_str().ok_or("'outcome_signal.source' must be a string")?;
        let window =
            sig["window"].as_str().filter(|w| is_duration(w)).ok_or("'outcome_signal.window' must be a duration")?;
        th.outcome_signal = Some((source.into(), window.into()));
    }
    th.metric = Some(metric.into());
    Ok(())
}

fn parse_bounds(t: &str, raw: Option<&Value>) -> Result<Vec<(String, Limit)>, String> {
    let kinds = bound_kinds(t).unwrap_or(&[]);
    let Some(raw) = raw.and_then(Value::as_object) else {
        return Err(format!("bounds must be a mapping, got {raw:?}"));
    };
    let mut unknown: Vec<&String> = raw.keys().filter(|k| !kinds.iter().any(|(n, _)| n == k)).collect();
    unknown.sort();
    if !unknown.is_empty() {
        let names: Vec<&str> = kinds.iter().map(|(n, _)| *n).collect();
        return Err(format!("bound(s) {unknown:?} do not belong to '{t}'; its bounds are {names:?}"));
    }
    if raw.is_empty() {
        return Err(format!("'{t}' requires at least one bound"));
    }
    raw.iter()
        .map(|(name, v)| {
            let is_ratio = kinds.iter().any(|(n, r)| n == name && *r);
            if is_ratio {
                return Ok((name.clone(), Limit::Ratio(ratio(name, v, "bound")?)));
            }
            match v.as_str().filter(|s| is_duration(s)) {
                Some(d) => Ok((name.clone(), Limit::Duration(d.into()))),
                None => Err(format!("bound '{name}' must be a duration such as '24h', got {v}")),
            }
        })
        .collect()
}

fn sha_hex(text: &str, n: usize) -> String {
    let digest = hex::encode(Sha256::digest(text.as_bytes()));
    digest[..n].to_string()
}

/// What identifies an entry within its service: its measurement fields and the *names* of
/// its bounds (tightening a bound keeps the key). None and empty fields are left out so a
/// field added later leaves existing keys alone.
pub fn identity(t: &Threshold) -> Value {
    let mut names: Vec<&str> = t.bounds.iter().map(|(n, _)| n.as_str()).collect();
    names.sort();
    let mut values: Vec<&str> = t.segment_values.iter().map(String::as_str).collect();
    values.sort();
    values.dedup();
    let pair = |p: &Option<(String, String)>| p.as_ref().map(|(a, b)| json!([a, b]));
    let all = [
        ("bounds", json!(names)),
        ("metric", json!(t.metric)),
        ("source", json!(t.source)),
        ("confidence_threshold", json!(t.confidence_threshold)),
        ("outcome_signal", json!(pair(&t.outcome_signal))),
        ("segment_dimension", json!(t.segment_dimension)),
        ("segment_values", json!(values)),
        ("probe", json!(pair(&t.probe))),
        ("window", json!(t.window)),
        ("bins", json!(t.bins)),
    ];
    let kept = all.into_iter().filter(|(_, v)| {
        !(v.is_null() || v.as_array().is_some_and(Vec::is_empty) || v.as_str().is_some_and(str::is_empty))
    });
    Value::Object(kept.map(|(k, v)| (k.to_string(), v)).collect())
}

/// `<svc>:<type>:<sha256(json.dumps(identity, sort_keys=True))[:12]>`.
pub fn threshold_key(service: &str, t: &Threshold) -> String {
    format!("{service}:{}:{}", t.ttype, sha_hex(&py::dumps(&identity(t), true), 12))
}

/// 8 hex of sha256 over the sorted (name, value) bound pairs: what tells apart entries that
/// share a key. It depends on the entry alone, so reordering entries moves no state.
pub fn bounds_digest(t: &Threshold) -> String {
    let mut items: Vec<(&String, &Limit)> = t.bounds.iter().map(|(n, l)| (n, l)).collect();
    items.sort_by(|a, b| a.0.cmp(b.0));
    let list: Vec<Value> = items.into_iter().map(|(n, l)| json!([n, l.to_value()])).collect();
    sha_hex(&py::dumps(&Value::Array(list), false), 8)
}

/// The entry with order-free parts sorted, for the identical-entry check.
pub fn canonical(t: &Threshold) -> Threshold {
    let mut c = t.clone();
    c.bounds.sort_by(|a, b| a.0.cmp(&b.0));
    c.segment_values.sort();
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cal(ece: f64) -> Value {
        json!({"type": "calibration", "bounds": {"maximum_expected_calibration_error": ece}, "measurement": {"bins": 10, "window": "30d"}})
    }

    #[test]
    fn reference_test_vectors() {
        let t = parse(&cal(0.05)).unwrap();
        assert_eq!(
            py::dumps(&identity(&t), true),
            r#"{"bins": 10, "bounds": ["maximum_expected_calibration_error"], "window": "30d"}"#
        );
        assert_eq!(threshold_key("fraud-detect", &t), "fraud-detect:calibration:e8d1ecdadaae");
        assert_eq!(bounds_digest(&t), "d9ddcf2e");
        // Bound values are not part of the key; an integral float bins is the same entry.
        let t2 = parse(&json!({"type": "calibration", "bounds": {"maximum_expected_calibration_error": 0.1},
            "measurement": {"bins": 10.0, "window": "30d"}}))
        .unwrap();
        assert_eq!(threshold_key("fraud-detect", &t2), "fraud-detect:calibration:e8d1ecdadaae");
        assert_ne!(bounds_digest(&t2), "d9ddcf2e");
    }

    #[test]
    fn feedback_latency_and_segments_keys() {
        let t =
            parse(&json!({"type": "feedback_latency", "bounds": {"maximum_p90": "4h", "maximum_p50": "1h"}})).unwrap();
        assert_eq!(py::dumps(&identity(&t), true), r#"{"bounds": ["maximum_p50", "maximum_p90"]}"#);
        assert_eq!(t.bounds[0], ("maximum_p90".to_string(), Limit::Duration("4h".into())));
        let s = parse(&json!({"type": "segments", "metric": "high_confidence_failure", "segment_dimension": "region",
            "segment_values": ["eu", "us", "eu"], "measurement": {"confidence_threshold": 1},
            "bounds": {"maximum_variance_from_overall": 0.02}}))
        .unwrap();
        assert_eq!(
            py::dumps(&identity(&s), true),
            r#"{"bounds": ["maximum_variance_from_overall"], "confidence_threshold": 1.0, "metric": "high_confidence_failure", "segment_dimension": "region", "segment_values": ["eu", "us"], "window": "30d"}"#
        );
    }

    #[test]
    fn bad_entries_are_rejected_with_a_reason() {
        for (bad, needle) in [
            (
                json!({"type": "calibration", "bounds": {"maximum_p50": "1h"}, "measurement": {"bins": 10, "window": "30d"}}),
                "do not belong",
            ),
            (json!({"type": "feedback_latency", "bounds": {}}), "at least one"),
            (json!({"type": "feedback_latency", "bounds": {"maximum_p50": "1 hour"}}), "duration"),
            (json!({"type": "feedback_latency", "bounds": {"maximum_p50": "1h"}, "window": "7d"}), "not defined"),
            (cal(1.5), "[0, 1]"),
            (
                json!({"type": "calibration", "bounds": {"maximum_brier_score": true}, "measurement": {"bins": 10, "window": "30d"}}),
                "number",
            ),
            (
                json!({"type": "calibration", "bounds": {"maximum_brier_score": 0.1}, "measurement": {"bins": 1, "window": "30d"}}),
                "bins",
            ),
            (json!({"type": "calibration", "bounds": {"maximum_brier_score": 0.1}}), "requires 'measurement'"),
            (json!({"type": "reversal_rate", "bounds": {}}), "judgment SLO"),
            (json!({"type": "nope", "bounds": {}}), "'type'"),
            (json!({"type": "audit_backlog", "bounds": {"maximum_age": "1d"}, "target": 3}), "not allowed"),
            (json!("x"), "mapping"),
        ] {
            let err = parse(&bad).unwrap_err();
            assert!(err.contains(needle), "{bad}: {err}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(duration_seconds("5ms"), Some(0.005));
        assert_eq!(duration_seconds("1h"), Some(3600.0));
        assert_eq!(duration_seconds("2w"), Some(1_209_600.0));
        assert_eq!(duration_seconds("h"), None);
        assert_eq!(duration_seconds("1.5h"), None);
        assert_eq!(duration_seconds("-1h"), None);
    }
    #[test]
    fn keys_and_digests_match_the_reference_for_every_type() {
        // Printed by the reference's threshold_key / bounds_digest for the same entries.
        for (entry, key, digest) in [
            (
                json!({"type": "feedback_latency", "bounds": {"maximum_p50": "1h", "maximum_p90": "2h"}}),
                "agent-b:feedback_latency:12fd0f33e552",
                "c7d91099",
            ),
            (
                json!({"type": "stability", "probe": {"frozen_input_set": "golden-v1", "frequency": "daily"}, "bounds": {"maximum_drift": 0.1}}),
                "agent-b:stability:b79bf43d3bd2",
                "1b90571f",
            ),
            (
                json!({"type": "segments", "metric": "outcomes", "segment_dimension": "region", "segment_values": ["us", "eu", "eu"],
                "outcome_signal": {"source": "crm", "window": "0s"}, "bounds": {"maximum_variance_from_overall": 0.02}}),
                "agent-b:segments:ffd51936c60f",
                "c9a5a00f",
            ),
            (
                json!({"type": "audit_backlog", "bounds": {"maximum_age": "3d"}}),
                "agent-b:audit_backlog:5450b1ba66d2",
                "f70f8d88",
            ),
        ] {
            let t = parse(&entry).unwrap();
            assert_eq!((threshold_key("agent-b", &t).as_str(), bounds_digest(&t).as_str()), (key, digest), "{entry}");
        }
    }
}
