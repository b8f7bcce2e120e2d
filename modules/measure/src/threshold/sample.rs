//! Prometheus samples for judgment thresholds. Quantiles are computed here from the bucket
//! counts rather than with PromQL's histogram_quantile, which reports a quantile in the +Inf
//! bucket as the top finite boundary and so would read a far-too-slow latency as within.

use nthlayer_sdk::{py, HostError};
use serde_json::Value;

use super::entry::Threshold;

/// Feedback latency is defined over ground truth from the last 30 days; a manifest cannot
/// change it.
pub const FEEDBACK_LATENCY_WINDOW: &str = "30d";
const WINDOW_SECONDS: f64 = 30.0 * 86400.0;
pub const RETENTION_QUERY: &str = "min(prometheus_tsdb_lowest_timestamp_seconds)";
/// Scrape and block-boundary jitter: a retention of exactly 30 d must not flap.
const RETENTION_SLACK: f64 = 3600.0;

/// One bound's measurement.
#[derive(Debug, Clone, PartialEq)]
pub enum Sample {
    Value(f64),
    /// The true value is above this (a quantile in the +Inf bucket).
    AtLeast(f64),
    Missing(&'static str, String),
}

fn no_data(detail: impl Into<String>) -> Sample {
    Sample::Missing("no_data", detail.into())
}

/// How a bound is measured.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// A gauge query answered by one number.
    Gauge {
        metric: &'static str,
        query: String,
    },
    /// A quantile of the histogram answered by `query` (one query per histogram).
    Quantile {
        q: f64,
        query: String,
    },
    Fixed(Sample),
}

impl Plan {
    pub fn query(&self) -> Option<&str> {
        match self {
            Plan::Gauge { query, .. } | Plan::Quantile { query, .. } => Some(query),
            Plan::Fixed(_) => None,
        }
    }
}

fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn selector(labels: &[(&str, String)]) -> String {
    labels.iter().map(|(k, v)| format!("{k}=\"{}\"", label(v))).collect::<Vec<_>>().join(",")
}

/// Whether any bound of `t` needs the retention check.
pub fn needs_retention(t: &Threshold) -> bool {
    t.ttype == "feedback_latency" && t.bounds.iter().any(|(b, _)| b == "maximum_p50" || b == "maximum_p90")
}

/// The plan for each bound, in declared order. `retention` is the run's oldest-sample time
/// (None when the check is off); a window it cannot cover makes latency bounds
/// insufficient_window without querying.
pub fn plan(service: &str, t: &Threshold, now: f64, retention: Option<&Result<f64, String>>) -> Vec<(String, Plan)> {
    let gauge = |metric: &'static str| {
        let sel = selector(&[
            ("service", service.to_string()),
            ("bins", t.bins.map(|b| b.to_string()).unwrap_or_else(|| "None".into())),
            ("window", t.window.clone().unwrap_or_else(|| "None".into())),
        ]);
        Plan::Gauge { metric, query: format!("max({metric}{{{sel}}})") }
    };
    let short = retention.and_then(|r| match r {
        Ok(ret) if ret.is_finite() && *ret <= now && now - ret < WINDOW_SECONDS - RETENTION_SLACK => {
            Some(format!("Prometheus retention starts {}d ago", py::fixed((now - ret) / 86400.0, 1)))
        }
        _ => None,
    });
    let hist = format!(
        "sum by (le) (increase(gen_ai_feedback_latency_seconds_bucket{{{}}}[{FEEDBACK_LATENCY_WINDOW}]))",
        selector(&[("service", service.to_string())])
    );
    t.bounds
        .iter()
        .map(|(bound, _)| {
            let p = match (t.ttype.as_str(), bound.as_str()) {
                ("calibration", "maximum_expected_calibration_error") => gauge("gen_ai_calibration_ece"),
                ("calibration", "maximum_brier_score") => gauge("gen_ai_calibration_brier"),
                ("feedback_latency", b @ ("maximum_p50" | "maximum_p90")) => match &short {
                    Some(why) => Plan::Fixed(Sample::Missing("insufficient_window", why.clone())),
                    None => Plan::Quantile { q: if b == "maximum_p50" { 0.5 } else { 0.9 }, query: hist.clone() },
                },
                (ty, b) if ty == "calibration" || ty == "feedback_latency" => {
                    Plan::Fixed(Sample::Missing("no_data_source", format!("no series for {b}")))
                }
                (ty, _) => Plan::Fixed(Sample::Missing("no_data_source", format!("no {ty} series yet"))),
            };
            (bound.clone(), p)
        })
        .collect()
}

fn result(data: &Value) -> &[Value] {
    data.get("result").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[])
}

fn scalar(data: &Value) -> Option<f64> {
    result(data).first().and_then(|r| r.get("value")).and_then(|v| v.get(1)).and_then(py::float)
}

/// The oldest-sample timestamp, or why it is unknown (an empty TSDB reports a sentinel later
/// than now: also unknown).
pub fn retention(answer: &Result<Value, HostError>, now: f64) -> Result<f64, String> {
    match answer {
        Err(e) => Err(e.to_string()),
        Ok(data) => scalar(data).filter(|v| v.is_finite() && *v <= now).ok_or_else(|| "retention unknown".into()),
    }
}

/// Measures one bound from its query's answer.
pub fn measure(plan: &Plan, answer: Option<&Result<Value, HostError>>) -> Sample {
    let answer = match (plan, answer) {
        (Plan::Fixed(s), _) => return s.clone(),
        (_, None) => return no_data("not queried"),
        (_, Some(Err(e))) => return no_data(e.to_string()),
        (_, Some(Ok(data))) => data,
    };
    match plan {
        Plan::Gauge { metric, query } => match scalar(answer) {
            None => no_data(format!("no {metric} series: {query}")),
            Some(v) if !v.is_finite() => no_data("non-finite value"),
            Some(v) => Sample::Value(v),
        },
        Plan::Quantile { q, .. } => {
            let buckets = buckets(answer);
            if buckets.is_empty() {
                return no_data("no gen_ai_feedback_latency_seconds_bucket series");
            }
            quantile(*q, &buckets).unwrap_or_else(|| no_data("no observations in the window, or no +Inf bucket"))
        }
        Plan::Fixed(s) => s.clone(),
    }
}

/// (le, cumulative count) pairs; entries without a parseable `le` or a finite count dropped.
pub fn buckets(data: &Value) -> Vec<(f64, f64)> {
    result(data)
        .iter()
        .filter_map(|r| {
            let le = r.get("metric")?.get("le").and_then(py::float)?;
            let count = r.get("value")?.get(1).and_then(py::float)?;
            (!le.is_nan() && count.is_finite()).then_some((le, count))
        })
        .collect()
}

/// Prometheus's classic bucketQuantile, except that a rank in the +Inf bucket is
/// AtLeast(top finite le). None when there is nothing to measure.
pub fn quantile(q: f64, buckets: &[(f64, f64)]) -> Option<Sample> {
    if q.is_nan() || !(0.0..=1.0).contains(&q) {
        return None;
    }
    let mut merged: Vec<(f64, f64)> = Vec::new();
    for &(le, count) in buckets {
        match merged.iter_mut().find(|(l, _)| *l == le) {
            Some(m) => m.1 += count,
            None => merged.push((le, count)),
        }
    }
    merged.sort_by(|a, b| a.0.total_cmp(&b.0));
    if merged.len() < 2 || merged.last()?.0 != f64::INFINITY {
        return None;
    }
    let mut running = 0.0f64;
    let cumulative: Vec<(f64, f64)> = merged
        .into_iter()
        .map(|(le, c)| {
            running = running.max(c);
            (le, running)
        })
        .collect();
    let total = cumulative.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let b = cumulative.iter().position(|(_, c)| *c >= rank)?;
    if b == cumulative.len() - 1 {
        let top = cumulative[b - 1].0;
        return top.is_finite().then_some(Sample::AtLeast(top));
    }
    let (upper, count) = cumulative[b];
    if b == 0 && upper <= 0.0 {
        return upper.is_finite().then_some(Sample::Value(upper));
    }
    let (lower, below) = if b > 0 { cumulative[b - 1] } else { (0.0, 0.0) };
    if count - below <= 0.0 {
        return None;
    }
    let v = lower + (upper - lower) * (rank - below) / (count - below);
    v.is_finite().then_some(Sample::Value(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const INF: f64 = f64::INFINITY;

    #[test]
    fn quantiles_interpolate_within_buckets() {
        // 10 observations: 4 under 60 s, 8 under 600 s, 10 under 3600 s.
        let b = [(60.0, 4.0), (600.0, 8.0), (3600.0, 10.0), (INF, 10.0)];
        assert_eq!(quantile(0.5, &b), Some(Sample::Value(60.0 + 540.0 * (5.0 - 4.0) / 4.0)));
        assert_eq!(quantile(0.9, &b), Some(Sample::Value(600.0 + 3000.0 * (9.0 - 8.0) / 2.0)));
        assert_eq!(quantile(0.2, &b), Some(Sample::Value(60.0 * 2.0 / 4.0)));
    }

    #[test]
    fn quantile_in_inf_bucket_is_a_lower_bound() {
        let b = [(60.0, 1.0), (3600.0, 2.0), (INF, 10.0)];
        assert_eq!(quantile(0.5, &b), Some(Sample::AtLeast(3600.0)));
        assert_eq!(quantile(0.9, &b), Some(Sample::AtLeast(3600.0)));
    }

    #[test]
    fn degenerate_histograms_measure_nothing() {
        assert_eq!(quantile(0.5, &[(60.0, 3.0)]), None); // no +Inf
        assert_eq!(quantile(0.5, &[(60.0, 0.0), (INF, 0.0)]), None); // no observations
        assert_eq!(quantile(0.5, &[(INF, 5.0)]), None);
        assert_eq!(quantile(1.5, &[(60.0, 3.0), (INF, 3.0)]), None);
        // Unsorted, duplicated and non-monotonic buckets are merged as Prometheus does.
        let b = [(INF, 10.0), (60.0, 2.0), (60.0, 2.0), (600.0, 3.0)];
        assert_eq!(quantile(0.5, &b), Some(Sample::AtLeast(600.0)));
    }

    #[test]
    fn buckets_parse_le_labels() {
        let data = json!({"resultType": "vector", "result": [
            {"metric": {"le": "60"}, "value": [1, "4"]},
            {"metric": {"le": "+Inf"}, "value": [1, "10"]},
            {"metric": {"le": "x"}, "value": [1, "1"]},
            {"metric": {}, "value": [1, "1"]},
            {"metric": {"le": "5"}, "value": [1, "NaN"]}]});
        assert_eq!(buckets(&data), vec![(60.0, 4.0), (INF, 10.0)]);
    }

    #[test]
    fn plans_follow_the_metric_contract() {
        let t = super::super::entry::parse(&json!({"type": "calibration",
            "bounds": {"maximum_expected_calibration_error": 0.05, "maximum_brier_score": 0.2},
            "measurement": {"bins": 10, "window": "30d"}}))
        .unwrap();
        let p = plan("fraud-detect", &t, 0.0, None);
        assert_eq!(
            p[0].1.query(),
            Some(r#"max(gen_ai_calibration_ece{service="fraud-detect",bins="10",window="30d"})"#)
        );
        assert_eq!(
            p[1].1.query(),
            Some(r#"max(gen_ai_calibration_brier{service="fraud-detect",bins="10",window="30d"})"#)
        );
        let f =
            super::super::entry::parse(&json!({"type": "feedback_latency", "bounds": {"maximum_p50": "1h"}})).unwrap();
        let now = 100.0 * 86400.0;
        let p = plan("a\"b", &f, now, Some(&Ok(now - 40.0 * 86400.0)));
        assert_eq!(
            p[0].1.query(),
            Some(r#"sum by (le) (increase(gen_ai_feedback_latency_seconds_bucket{service="a\"b"}[30d]))"#)
        );
        // Retention of 10 days cannot cover the 30-day window.
        let p = plan("a", &f, now, Some(&Ok(now - 10.0 * 86400.0)));
        assert_eq!(
            p[0].1,
            Plan::Fixed(Sample::Missing("insufficient_window", "Prometheus retention starts 10.0d ago".into()))
        );
        // 30 d minus the slack is still enough; unknown retention measures what it can.
        assert!(plan("a", &f, now, Some(&Ok(now - 30.0 * 86400.0 + 3600.0)))[0].1.query().is_some());
        assert!(plan("a", &f, now, Some(&Err("unknown".into())))[0].1.query().is_some());
        let s = super::super::entry::parse(
            &json!({"type": "stability", "probe": {"frozen_input_set": "x", "frequency": "daily"},
            "bounds": {"maximum_drift": 0.1}}),
        )
        .unwrap();
        assert!(matches!(&plan("a", &s, now, None)[0].1, Plan::Fixed(Sample::Missing("no_data_source", _))));
    }
    #[test]
    fn quantiles_match_the_reference_on_awkward_histograms() {
        // Expected values printed by the reference's sampler._quantile.
        use Sample::{AtLeast as L, Value as V};
        /// (le, cumulative count) buckets and the quantiles expected at five q's.
        type Case<'a> = (&'a [(f64, f64)], [Sample; 5]);
        let cases: [Case; 4] = [
            (
                &[(0.1, 3.0), (0.5, 7.0), (2.5, 7.0), (INF, 11.0)],
                [V(0.0), V(0.09166666666666667), V(0.35), L(2.5), L(2.5)],
            ),
            (
                &[(-1.0, 0.0), (0.0, 2.0), (1.0, 5.0), (INF, 5.0)],
                [V(-1.0), V(-0.375), V(0.16666666666666666), V(0.8333333333333334), V(1.0)],
            ),
            (&[(1e-3, 1.0), (7.0, 1.0), (INF, 1.5)], [V(0.0), V(0.000375), V(0.00075), L(7.0), L(7.0)]),
            (&[(0.0, 4.0), (10.0, 9.0), (INF, 9.0)], [V(0.0), V(0.0), V(1.0), V(8.2), V(10.0)]),
        ];
        for (buckets, want) in cases {
            let got: Vec<Sample> = [0.0, 0.25, 0.5, 0.9, 1.0].iter().map(|q| quantile(*q, buckets).unwrap()).collect();
            assert_eq!(got, want, "{buckets:?}");
        }
    }
}
