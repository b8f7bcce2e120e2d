//! Deciding and combining bounds into a threshold outcome (the
//! `judgment_threshold_evaluation` payload), its change signature and the breach readout.

use nthlayer_sdk::py;
use serde_json::{json, Value};

use super::entry::{Limit, Threshold};
use super::sample::Sample;

#[derive(Debug, Clone, PartialEq)]
pub struct BoundResult {
    pub bound: String,
    pub status: &'static str,
    pub measured: Option<f64>,
    pub limit: Limit,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SegmentResult {
    pub segment: String,
    pub status: &'static str,
    pub measured: Option<f64>,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub ttype: String,
    pub status: &'static str,
    pub bounds: Vec<BoundResult>,
    pub segments: Vec<SegmentResult>,
}

fn rank(s: &str) -> u8 {
    match s {
        "within" => 0,
        "not_evaluable" => 1,
        _ => 2,
    }
}

/// breach > not_evaluable > within; nothing decided is not_evaluable.
pub fn combine<'a>(statuses: impl IntoIterator<Item = &'a str>) -> &'static str {
    let mut best: Option<&str> = None;
    for s in statuses {
        if best.is_none_or(|b| rank(s) > rank(b)) {
            best = Some(s);
        }
    }
    match best {
        None | Some("not_evaluable") => "not_evaluable",
        Some("within") => "within",
        Some(_) => "breach",
    }
}

/// One measurement against its limit. A lower bound already at the limit is a breach; below
/// it nothing can be decided.
pub fn decide(measured: &Sample, limit: f64) -> (&'static str, Option<f64>, Option<String>) {
    match measured {
        Sample::Missing(reason, _) => ("not_evaluable", None, Some(reason.to_string())),
        Sample::AtLeast(v) if *v >= limit => ("breach", Some(*v), Some("lower_bound".into())),
        Sample::AtLeast(_) => ("not_evaluable", None, Some("beyond_top_bucket".into())),
        Sample::Value(v) if !v.is_finite() => ("not_evaluable", None, Some("no_data".into())),
        Sample::Value(v) => (if *v > limit { "breach" } else { "within" }, Some(*v), None),
    }
}

/// Evaluates every bound from its sample. A segments threshold compares each listed segment
/// with the overall rate; no series exists for them yet, so `overall` is always missing here.
pub fn evaluate(t: &Threshold, samples: &[(String, Sample)]) -> Outcome {
    let missing = Sample::Missing("no_data", String::new());
    if t.ttype == "segments" {
        let (bound, limit) =
            t.bounds.first().cloned().unwrap_or(("maximum_variance_from_overall".into(), Limit::Ratio(0.0)));
        let overall = samples.first().map(|(_, s)| s).unwrap_or(&missing);
        let mut seen: Vec<&str> = Vec::new();
        let segments: Vec<SegmentResult> = t
            .segment_values
            .iter()
            .filter(|v| {
                let new = !seen.contains(&v.as_str());
                seen.push(v);
                new
            })
            .map(|v| {
                let reason = match overall {
                    Sample::Missing(r, _) => r.to_string(),
                    _ => "no_data".into(),
                };
                SegmentResult { segment: v.clone(), status: "not_evaluable", measured: None, reason: Some(reason) }
            })
            .collect();
        let status = combine(segments.iter().map(|s| s.status));
        let reason = segments.iter().find_map(|s| s.reason.clone()).unwrap_or_else(|| "no_data".into());
        return Outcome {
            ttype: t.ttype.clone(),
            status,
            bounds: vec![BoundResult { bound, status, measured: None, limit, reason: Some(reason) }],
            segments,
        };
    }
    let bounds: Vec<BoundResult> = t
        .bounds
        .iter()
        .map(|(bound, limit)| {
            let s = samples.iter().find(|(b, _)| b == bound).map(|(_, s)| s).unwrap_or(&missing);
            let (status, measured, reason) = decide(s, limit.number());
            BoundResult { bound: bound.clone(), status, measured, limit: limit.clone(), reason }
        })
        .collect();
    Outcome { ttype: t.ttype.clone(), status: combine(bounds.iter().map(|b| b.status)), bounds, segments: vec![] }
}

impl Outcome {
    /// The assessment payload, keys in the reference's order.
    pub fn to_value(&self) -> Value {
        json!({
            "type": self.ttype,
            "status": self.status,
            "bounds": self.bounds.iter().map(|b| json!({
                "bound": b.bound, "status": b.status, "measured": b.measured, "limit": b.limit.to_value(), "reason": b.reason,
            })).collect::<Vec<_>>(),
            "segments": self.segments.iter().map(|s| json!({
                "segment": s.segment, "status": s.status, "measured": s.measured, "reason": s.reason,
            })).collect::<Vec<_>>(),
        })
    }

    /// The outcome without measured values: a change re-emits the assessment. A bound's
    /// limit is part of it, so tightening a bound is reported even if no status changes.
    pub fn signature(&self) -> String {
        let mut bounds: Vec<Value> =
            self.bounds.iter().map(|b| json!([b.bound, b.status, b.reason, b.limit.to_value()])).collect();
        bounds.sort_by(|a, b| a[0].as_str().cmp(&b[0].as_str()));
        let mut segments: Vec<Value> = self.segments.iter().map(|s| json!([s.segment, s.status, s.reason])).collect();
        segments.sort_by(|a, b| a[0].as_str().cmp(&b[0].as_str()));
        let v = json!({"type": self.ttype, "status": self.status, "bounds": bounds, "segments": segments});
        py::dumps(&v, true)
    }

    /// `(breaching_bounds, summary)` for the breach verdict, for readers that do not parse
    /// the outcome. A lower-bound breach measured the boundary, so it reads ">= limit".
    pub fn breach_readout(&self, service: &str) -> (Vec<Value>, String) {
        let rows: Vec<&BoundResult> = self.bounds.iter().filter(|b| b.status == "breach").collect();
        let mut summary = format!("{} threshold breach on {service}", self.ttype);
        if let Some(b) = rows.first() {
            let unit = if matches!(b.limit, Limit::Duration(_)) { "s" } else { "" };
            let value = format!("{}{unit}", py::general(b.measured.unwrap_or(f64::NAN), 12));
            let relation = if b.reason.as_deref() == Some("lower_bound") {
                format!(">= {} (lower bound)", b.limit.text())
            } else {
                format!("> {}", b.limit.text())
            };
            summary.push_str(&format!(": {} {value} {relation}", b.bound));
        }
        let list = rows
            .iter()
            .map(|b| json!({"bound": b.bound, "measured": b.measured, "limit": b.limit.to_value()}))
            .collect();
        (list, summary)
    }
}

#[cfg(test)]
mod tests {
    use super::super::entry::parse;
    use super::*;

    #[test]
    fn decide_and_combine() {
        assert_eq!(decide(&Sample::Value(0.08), 0.05), ("breach", Some(0.08), None));
        assert_eq!(decide(&Sample::Value(0.05), 0.05), ("within", Some(0.05), None));
        assert_eq!(decide(&Sample::AtLeast(3600.0), 3600.0), ("breach", Some(3600.0), Some("lower_bound".into())));
        assert_eq!(decide(&Sample::AtLeast(60.0), 3600.0), ("not_evaluable", None, Some("beyond_top_bucket".into())));
        assert_eq!(
            decide(&Sample::Missing("no_data", "x".into()), 1.0),
            ("not_evaluable", None, Some("no_data".into()))
        );
        assert_eq!(combine(["within", "not_evaluable"]), "not_evaluable");
        assert_eq!(combine(["within", "breach", "not_evaluable"]), "breach");
        assert_eq!(combine(["within", "within"]), "within");
        assert_eq!(combine([]), "not_evaluable");
    }

    #[test]
    fn calibration_breach_payload_matches_the_reference() {
        let t = parse(&json!({"type": "calibration", "bounds": {"maximum_expected_calibration_error": 0.05},
            "measurement": {"bins": 10, "window": "30d"}}))
        .unwrap();
        let o = evaluate(&t, &[("maximum_expected_calibration_error".into(), Sample::Value(0.08))]);
        assert_eq!(
            serde_json::to_string(&o.to_value()).unwrap(),
            r#"{"type":"calibration","status":"breach","bounds":[{"bound":"maximum_expected_calibration_error","status":"breach","measured":0.08,"limit":0.05,"reason":null}],"segments":[]}"#
        );
        let (rows, summary) = o.breach_readout("fraud-detect");
        assert_eq!(
            summary,
            "calibration threshold breach on fraud-detect: maximum_expected_calibration_error 0.08 > 0.05"
        );
        assert_eq!(rows, vec![json!({"bound": "maximum_expected_calibration_error", "measured": 0.08, "limit": 0.05})]);
        assert_eq!(
            o.signature(),
            r#"{"bounds": [["maximum_expected_calibration_error", "breach", null, 0.05]], "segments": [], "status": "breach", "type": "calibration"}"#
        );
    }

    #[test]
    fn latency_lower_bound_summary_and_segments() {
        let t =
            parse(&json!({"type": "feedback_latency", "bounds": {"maximum_p50": "1h", "maximum_p90": "4h"}})).unwrap();
        let o = evaluate(
            &t,
            &[("maximum_p50".into(), Sample::AtLeast(3600.0)), ("maximum_p90".into(), Sample::Value(100.5))],
        );
        assert_eq!(o.status, "breach");
        assert_eq!(
            o.breach_readout("a").1,
            "feedback_latency threshold breach on a: maximum_p50 3600s >= 1h (lower bound)"
        );
        let s = parse(&json!({"type": "segments", "metric": "escalation", "segment_dimension": "r", "segment_values": ["b", "a", "b"],
            "bounds": {"maximum_variance_from_overall": 0.1}})).unwrap();
        let o =
            evaluate(&s, &[("maximum_variance_from_overall".into(), Sample::Missing("no_data_source", String::new()))]);
        assert_eq!(
            serde_json::to_string(&o.to_value()).unwrap(),
            r#"{"type":"segments","status":"not_evaluable","bounds":[{"bound":"maximum_variance_from_overall","status":"not_evaluable","measured":null,"limit":0.1,"reason":"no_data_source"}],"segments":[{"segment":"b","status":"not_evaluable","measured":null,"reason":"no_data_source"},{"segment":"a","status":"not_evaluable","measured":null,"reason":"no_data_source"}]}"#
        );
    }
}
