//! `observe.drift`: fits a line to each SLO's remaining error budget over its window and
//! emits a `drift_signal` with a severity, a pattern and advice. A target without usable data
//! is skipped with a warning and emits nothing, as in the reference.

use nthlayer_sdk::batch::QUERY_BATCH;
use nthlayer_sdk::{py, CycleInput, CycleOutput, Host, HostError, Level, RangeQuery};
use serde_json::{json, Value};

use crate::{
    assessment, fetch_manifests, manifest_name, manifest_slos, numeric, output, runs, submit_all, truthy, Seq,
};

/// Per-tier policy (the reference's DRIFT_DEFAULTS; its `enabled` flag is never read).
struct Tier {
    window: &'static str,
    warn_slope: f64,
    critical_slope: f64,
    exhaustion_warn_days: i64,
    exhaustion_critical_days: i64,
    step_threshold: f64,
}

fn tier_policy(tier: &str) -> Tier {
    // Slopes are written as the reference parses "-0.2%/week": float("-0.2") / 100.
    match tier.to_lowercase().as_str() {
        "critical" => Tier {
            window: "30d",
            warn_slope: -0.2 / 100.0,
            critical_slope: -0.5 / 100.0,
            exhaustion_warn_days: 30,
            exhaustion_critical_days: 14,
            step_threshold: 0.05,
        },
        "low" => Tier {
            window: "14d",
            warn_slope: -1.0 / 100.0,
            critical_slope: -2.0 / 100.0,
            exhaustion_warn_days: 7,
            exhaustion_critical_days: 3,
            step_threshold: 0.10,
        },
        _ => Tier {
            window: "30d",
            warn_slope: -0.5 / 100.0,
            critical_slope: -1.0 / 100.0,
            exhaustion_warn_days: 14,
            exhaustion_critical_days: 7,
            step_threshold: 0.05,
        },
    }
}

struct Target<'a> {
    service: &'a str,
    tier: &'a Value,
    slo: &'a str,
    window: Option<&'a Value>,
}

pub fn run(host: &dyn Host, input: &CycleInput) -> CycleOutput {
    let mut seq = Seq::from_state(input.state.as_ref());
    let Some(manifests) = fetch_manifests(host) else {
        return output(&seq, 0);
    };
    let standard = json!("standard");
    let mut targets = Vec::new();
    for m in &manifests {
        let Some(service) = manifest_name(m) else {
            continue;
        };
        let tier = m.get("tier").unwrap_or(&standard);
        for slo in manifest_slos(m) {
            let Some(name) = slo.get("name").and_then(Value::as_str).filter(|n| !n.is_empty()) else {
                continue;
            };
            targets.push(Target { service, tier, slo: name, window: slo.get("window") });
        }
    }

    // A run of SLOs' range queries in one batched call (the host runs them concurrently,
    // bounded), then that run's drift_signal records in one batched call; runs keep the
    // histories held bounded. An SLO whose query cannot be formed fails on its own.
    let mut emitted = 0;
    for run in runs(&targets, |_| 1, QUERY_BATCH) {
        let plans: Vec<Result<(Tier, RangeQuery), String>> = run.iter().map(|t| plan(host, t)).collect();
        let queries: Vec<RangeQuery> = plans.iter().filter_map(|p| p.as_ref().ok().map(|(_, q)| q.clone())).collect();
        let mut answers = host.prom_query_range_batch(&queries).into_iter();
        let mut records = Vec::new();
        for (t, p) in run.iter().zip(plans) {
            let analysed = p.and_then(|(policy, _)| {
                let answer =
                    answers.next().unwrap_or_else(|| Err(HostError::Invalid("no answer for the query".into())));
                analyze(t, &policy, answer)
            });
            match analysed {
                Ok(data) => records.push(assessment(host, &mut seq, "drift_signal", t.service, data)),
                Err(why) => host.log(
                    Level::Warn,
                    "drift_analysis_failed",
                    &[("service", t.service), ("slo", t.slo), ("error", &why)],
                ),
            }
        }
        emitted += submit_all(host, &records).into_iter().filter(|ok| *ok).count() as u32;
    }
    output(&seq, emitted)
}

/// Seconds in a drift window: the first `<n>[dhwm]` in it, `m` being a 30-day month;
/// anything else is 30 days.
fn window_seconds(window: &str) -> i128 {
    let digits = window.bytes().take_while(u8::is_ascii_digit).count();
    let unit = window.as_bytes().get(digits).copied();
    let n: Option<i128> = window[..digits].parse().ok();
    match (n, unit) {
        (Some(n), Some(b'd')) => n.saturating_mul(86_400),
        (Some(n), Some(b'h')) => n.saturating_mul(3_600),
        (Some(n), Some(b'w')) => n.saturating_mul(604_800),
        (Some(n), Some(b'm')) => n.saturating_mul(30 * 86_400),
        _ => 30 * 86_400,
    }
}

/// A sample time as the reference holds it: a datetime, i.e. whole microseconds, with the
/// fraction rounded half-to-even.
fn micros(ts: f64) -> Option<i64> {
    // datetime's range: year 1 to year 9999.
    if !ts.is_finite() || !(-62_135_596_800.0..=253_402_300_799.0).contains(&ts) {
        return None;
    }
    let whole = ts.trunc();
    let frac = ((ts - whole) * 1e6).round_ties_even();
    Some(whole as i64 * 1_000_000 + frac as i64)
}

/// The SLO's range query over its window, ending now.
fn history_query(host: &dyn Host, t: &Target, window: &str) -> Result<RangeQuery, String> {
    let query = format!("slo:error_budget_remaining:ratio{{service=\"{}\", slo=\"{}\"}}", t.service, t.slo);
    let end_us = micros(host.now()).ok_or("clock out of range")?;
    let span_us = window_seconds(window).saturating_mul(1_000_000);
    let start_us = i128::from(end_us) - span_us;
    if start_us < -62_135_596_800_000_000 {
        return Err(format!("window {window} reaches before year 1"));
    }
    let (start, end) = (start_us as f64 / 1e6, end_us as f64 / 1e6);
    Ok(RangeQuery { promql: query, start, end, step: "1h".into() })
}

/// `(time in µs, remaining budget ratio)` from the range query's answer, non-finite values dropped.
fn history(t: &Target, answer: Result<Value, HostError>) -> Result<Vec<(i64, f64)>, String> {
    let data = answer.map_err(|e| format!("Failed to query Prometheus: {e}"))?;
    let series = data.get("result").and_then(Value::as_array).and_then(|r| r.first());
    let Some(series) = series else {
        return Err(format!("No data returned for {}/{}", t.service, t.slo));
    };
    let values = series.get("values").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
    let mut points = Vec::with_capacity(values.len());
    // One malformed sample spoils the whole series in the reference too.
    for pair in values {
        let pair = pair.as_array().filter(|p| p.len() == 2).ok_or("malformed sample")?;
        let ts = py::float(&pair[0]).and_then(micros).ok_or("malformed sample time")?;
        let v = py::float(&pair[1]).ok_or("malformed sample value")?;
        if v.is_finite() {
            points.push((ts, v));
        }
    }
    Ok(points)
}

/// The SLO's tier policy and range query, or why it cannot be analysed.
fn plan(host: &dyn Host, t: &Target) -> Result<(Tier, RangeQuery), String> {
    let Some(tier) = t.tier.as_str() else {
        return Err(format!("tier is not a string: {}", t.tier));
    };
    let policy = tier_policy(tier);
    let window = match t.window {
        Some(w) if truthy(w) => w.as_str().ok_or_else(|| format!("window is not a string: {w}"))?,
        _ => policy.window,
    };
    let query = history_query(host, t, window)?;
    Ok((policy, query))
}

fn analyze(t: &Target, policy: &Tier, answer: Result<Value, HostError>) -> Result<Value, String> {
    let data = history(t, answer)?;
    if data.len() < 2 {
        return Err(format!(
            "Insufficient data points for {}/{}. Need at least 2 data points, got {}",
            t.service,
            t.slo,
            data.len()
        ));
    }
    Ok(assess(policy, &data)?.into_data(t.slo))
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Pattern {
    Stable,
    GradualDecline,
    GradualImprovement,
    StepChangeDown,
    StepChangeUp,
    Volatile,
}

impl Pattern {
    fn as_str(self) -> &'static str {
        match self {
            Pattern::Stable => "stable",
            Pattern::GradualDecline => "gradual_decline",
            Pattern::GradualImprovement => "gradual_improvement",
            Pattern::StepChangeDown => "step_change_down",
            Pattern::StepChangeUp => "step_change_up",
            Pattern::Volatile => "volatile",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
enum Severity {
    None,
    Info,
    Warn,
    Critical,
}

impl Severity {
    fn as_str(self) -> &'static str {
        match self {
            Severity::None => "none",
            Severity::Info => "info",
            Severity::Warn => "warn",
            Severity::Critical => "critical",
        }
    }
}

#[derive(Debug)]
struct Drift {
    severity: Severity,
    pattern: Pattern,
    slope_per_week: f64,
    days_until_exhaustion: Option<i64>,
    current_budget: f64,
    summary: String,
    recommendation: String,
}

impl Drift {
    fn into_data(self, slo: &str) -> Value {
        json!({
            "slo_name": slo,
            "severity": self.severity.as_str(),
            "pattern": self.pattern.as_str(),
            "slope_per_week": self.slope_per_week,
            "days_until_exhaustion": self.days_until_exhaustion,
            "current_budget": self.current_budget,
            "summary": self.summary,
            "recommendation": self.recommendation,
        })
    }
}

fn assess(policy: &Tier, data: &[(i64, f64)]) -> Result<Drift, String> {
    let times: Vec<f64> = data.iter().map(|(us, _)| *us as f64 / 1e6).collect();
    let x: Vec<f64> = times.iter().map(|t| t - times[0]).collect();
    let y: Vec<f64> = data.iter().map(|(_, v)| *v).collect();
    let fit =
        numeric::linregress(&x, &y).ok_or("Cannot calculate a linear regression if all x values are identical")?;
    let slope = fit.slope;
    let r2 = fit.r * fit.r;
    // Two spellings of "per week" in the reference; they can differ in the last bit.
    let slope_per_week = slope * 86400.0 * 7.0;
    let weekly_for_pattern = slope * 604_800.0;
    let current = y[y.len() - 1];
    let start = y[0];

    let days = exhaustion_days(current, slope)?;
    let pattern = detect_pattern(policy.step_threshold, data, r2, numeric::variance(&y), weekly_for_pattern);
    let severity = if days.is_some_and(|d| d <= policy.exhaustion_critical_days)
        || pattern == Pattern::StepChangeDown
        || slope_per_week <= policy.critical_slope
    {
        Severity::Critical
    } else if days.is_some_and(|d| d <= policy.exhaustion_warn_days) || slope_per_week <= policy.warn_slope {
        Severity::Warn
    } else if slope_per_week < 0.0 {
        Severity::Info
    } else {
        Severity::None
    };

    Ok(Drift {
        severity,
        pattern,
        slope_per_week,
        days_until_exhaustion: days,
        current_budget: current,
        summary: summary(severity, pattern, slope_per_week, r2, start, current),
        recommendation: recommendation(severity, pattern, r2),
    })
}

/// Whole days until the budget runs out at this slope; none when not declining or beyond a
/// year. A NaN projection is an error, as `int(nan)` is in the reference.
fn exhaustion_days(current: f64, slope_per_second: f64) -> Result<Option<i64>, String> {
    if slope_per_second >= 0.0 {
        return Ok(None);
    }
    if current <= 0.0 {
        return Ok(Some(0));
    }
    let days = current / slope_per_second.abs() / 86400.0;
    if days > 365.0 {
        return Ok(None);
    }
    if days.is_nan() {
        return Err("cannot convert float NaN to integer".into());
    }
    Ok(Some(days.trunc() as i64))
}

fn detect_pattern(threshold: f64, data: &[(i64, f64)], r2: f64, variance: f64, weekly_slope: f64) -> Pattern {
    for pair in data.windows(2) {
        let gap = (pair[1].0 - pair[0].0) as f64 / 1e6;
        let delta = pair[1].1 - pair[0].1;
        if gap < 86400.0 * 1.5 {
            if delta < -threshold {
                return Pattern::StepChangeDown;
            } else if delta > threshold {
                return Pattern::StepChangeUp;
            }
        }
    }
    if r2 < 0.3 && variance > 0.01 {
        Pattern::Volatile
    } else if weekly_slope.abs() < 0.001 {
        Pattern::Stable
    } else if weekly_slope < 0.0 {
        Pattern::GradualDecline
    } else {
        Pattern::GradualImprovement
    }
}

fn summary(severity: Severity, pattern: Pattern, slope_per_week: f64, r2: f64, start: f64, current: f64) -> String {
    let pct = py::fixed((slope_per_week * 100.0).abs(), 2);
    let direction = if slope_per_week < 0.0 { "declining" } else { "improving" };
    let fit = py::fixed(r2, 2);
    match severity {
        Severity::None => "Error budget is stable with no significant drift detected.".into(),
        Severity::Info => format!("Minor budget drift detected: {direction} at {pct}% per week. Fit quality: R²={fit}"),
        _ if pattern == Pattern::StepChangeDown => format!(
            "Sudden budget drop detected! Budget changed from {} to {}.",
            py::percent(start, 1),
            py::percent(current, 1)
        ),
        _ => {
            let confidence = if r2 > 0.7 { "high" } else { "moderate" };
            format!("Error budget {direction} at {pct}% per week with {confidence} confidence (R²={fit}).")
        }
    }
}

fn recommendation(severity: Severity, pattern: Pattern, r2: f64) -> String {
    match severity {
        Severity::None => "No action needed. Continue monitoring.".into(),
        Severity::Info => {
            "Monitor for continued decline. Consider reviewing recent deployments if trend persists.".into()
        }
        _ if pattern == Pattern::StepChangeDown => "Investigate immediate cause of step change. Check recent \
             deployments, configuration changes, or dependency issues. Run `nthlayer-observe verify` to check \
             metric coverage."
            .into(),
        _ if pattern == Pattern::Volatile => "High variance suggests intermittent issues. Review error logs and \
             identify patterns in failures. Consider adjusting SLO alerting windows."
            .into(),
        _ => {
            let mut parts = vec![
                "Investigate recent changes.",
                "Common causes: increased traffic, dependency degradation, or configuration drift.",
            ];
            if r2 > 0.7 {
                parts.push("High confidence in trend - proactive investigation recommended.");
            }
            parts.push("Run `nthlayer-observe verify` to check metric coverage.");
            parts.join(" ")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nthlayer_sdk::testing::FakeHost;
    use nthlayer_sdk::HostError;

    const T0: f64 = 1_792_940_927.615;
    const QUERY: &str = "slo:error_budget_remaining:ratio{service=\"svc\", slo=\"availability\"}";

    fn input() -> CycleInput {
        CycleInput { task: "observe.drift".into(), state: None, config: json!({}), args: None }
    }

    fn host(tier: &str) -> FakeHost {
        FakeHost::new().with_manifests(json!([{"name": "svc", "tier": tier, "slos": [
            {"name": "availability", "target": 99.9, "window": "30d"}]}]))
    }

    fn series(n: usize, step: f64, f: impl Fn(f64) -> f64) -> Value {
        // Values travel as Prometheus strings, spelled as Python's repr would.
        let values: Vec<Value> = (0..n).map(|i| json!([T0 + i as f64 * step, py::repr(f(i as f64))])).collect();
        json!({"resultType": "matrix", "result": [{"metric": {}, "values": values}]})
    }

    fn drift_of(tier: &str, data: Value) -> String {
        let h = host(tier);
        h.set_range(QUERY, Ok(data));
        run(&h, &input());
        let sub = h.submitted_of_kind("drift_signal");
        assert_eq!(sub.len(), 1, "logs: {:?}", h.logs.borrow());
        sub[0]["data"].to_string()
    }

    const INVESTIGATE_HIGH: &str = "Investigate recent changes. Common causes: increased traffic, dependency degradation, or configuration drift. High confidence in trend - proactive investigation recommended. Run `nthlayer-observe verify` to check metric coverage.";

    // Every expected payload below is the reference's DriftAnalyzer output for the same
    // series (nthlayer-workers 3.0.3, numpy 2.4.6, scipy 1.17.1).

    #[test]
    fn live_run_decline_0_9_to_0_6() {
        let got = drift_of("critical", series(721, 3600.0, |i| 0.9 - 0.3 * i / 720.0));
        let want = json!({"slo_name":"availability","severity":"critical","pattern":"gradual_decline","slope_per_week":-0.07,
            "days_until_exhaustion":60,"current_budget":0.6000000000000001,
            "summary":"Error budget declining at 7.00% per week with high confidence (R²=1.00).","recommendation":INVESTIGATE_HIGH});
        assert_eq!(got, want.to_string());
    }

    #[test]
    fn range_query_text_window_and_step() {
        let h = host("critical");
        run(&h, &input());
        let calls = h.range_calls.borrow();
        assert_eq!(calls.len(), 1);
        let (q, start, end, step) = &calls[0];
        assert_eq!(q, QUERY);
        assert_eq!(*end, 1_795_532_927.615105);
        assert_eq!(*start, 1_792_940_927.615105);
        assert_eq!(step, "1h");
    }

    #[test]
    fn step_change_down() {
        let got = drift_of("standard", series(721, 3600.0, |i| if i < 400.0 { 0.9 } else { 0.7 }));
        let want = json!({"slo_name":"availability","severity":"critical","pattern":"step_change_down","slope_per_week":-0.06906381948740013,
            "days_until_exhaustion":70,"current_budget":0.7,
            "summary":"Sudden budget drop detected! Budget changed from 90.0% to 70.0%.",
            "recommendation":"Investigate immediate cause of step change. Check recent deployments, configuration changes, or dependency issues. Run `nthlayer-observe verify` to check metric coverage."});
        assert_eq!(got, want.to_string());
    }

    #[test]
    fn step_change_up_on_low_tier() {
        let got = drift_of("low", series(721, 3600.0, |i| if i < 300.0 { 0.5 } else { 0.65 }));
        let want = json!({"slo_name":"availability","severity":"none","pattern":"step_change_up","slope_per_week":0.050950703278379916,
            "days_until_exhaustion":null,"current_budget":0.65,
            "summary":"Error budget is stable with no significant drift detected.","recommendation":"No action needed. Continue monitoring."});
        assert_eq!(got, want.to_string());
    }

    #[test]
    fn volatile_declining_and_improving() {
        let got = drift_of("standard", series(16, 172_800.0, |i| 0.3 + 0.4 * (i % 2.0) - 0.01 * i));
        let want = json!({"slo_name":"availability","severity":"critical","pattern":"volatile","slope_per_week":-0.01852941176470588,
            "days_until_exhaustion":207,"current_budget":0.5499999999999999,
            "summary":"Error budget declining at 1.85% per week with moderate confidence (R²=0.01).",
            "recommendation":"High variance suggests intermittent issues. Review error logs and identify patterns in failures. Consider adjusting SLO alerting windows."});
        assert_eq!(got, want.to_string());
        let got = drift_of("standard", series(16, 172_800.0, |i| 0.2 + 0.4 * (i % 2.0) + 0.01 * i));
        assert!(
            got.contains(r#""severity":"none","pattern":"volatile","slope_per_week":0.05147058823529413"#),
            "{got}"
        );
        assert!(got.contains(r#""current_budget":0.7500000000000001"#), "{got}");
    }

    #[test]
    fn stable_flat_series() {
        let got = drift_of("standard", series(721, 3600.0, |_| 0.95));
        let want = json!({"slo_name":"availability","severity":"none","pattern":"stable","slope_per_week":0.0,
            "days_until_exhaustion":null,"current_budget":0.95,
            "summary":"Error budget is stable with no significant drift detected.","recommendation":"No action needed. Continue monitoring."});
        assert_eq!(got, want.to_string());
    }

    #[test]
    fn info_warn_and_improvement() {
        let got = drift_of("standard", series(721, 3600.0, |i| 0.9 - 0.003 * i / 168.0));
        let want = json!({"slo_name":"availability","severity":"info","pattern":"gradual_decline","slope_per_week":-0.002999999999999999,
            "days_until_exhaustion":null,"current_budget":0.8871428571428571,
            "summary":"Minor budget drift detected: declining at 0.30% per week. Fit quality: R²=1.00",
            "recommendation":"Monitor for continued decline. Consider reviewing recent deployments if trend persists."});
        assert_eq!(got, want.to_string());

        let got = drift_of("standard", series(721, 3600.0, |i| 0.9 - 0.007 * i / 168.0));
        let want = json!({"slo_name":"availability","severity":"warn","pattern":"gradual_decline","slope_per_week":-0.007,
            "days_until_exhaustion":null,"current_budget":0.87,
            "summary":"Error budget declining at 0.70% per week with high confidence (R²=1.00).","recommendation":INVESTIGATE_HIGH});
        assert_eq!(got, want.to_string());

        let got = drift_of("standard", series(721, 3600.0, |i| 0.5 + 0.02 * i / 168.0));
        assert!(
            got.contains(r#""severity":"none","pattern":"gradual_improvement","slope_per_week":0.020000000000000014"#),
            "{got}"
        );
        assert!(got.contains(r#""current_budget":0.5857142857142857"#), "{got}");
    }

    #[test]
    fn near_exhaustion_is_critical_by_days() {
        let got = drift_of("standard", series(721, 3600.0, |i| 0.031 - 0.03 * i / 720.0));
        let want = json!({"slo_name":"availability","severity":"critical","pattern":"gradual_decline","slope_per_week":-0.007,
            "days_until_exhaustion":1,"current_budget":0.0010000000000000044,
            "summary":"Error budget declining at 0.70% per week with high confidence (R²=1.00).","recommendation":INVESTIGATE_HIGH});
        assert_eq!(got, want.to_string());
    }

    #[test]
    fn noisy_decline_confidence_levels() {
        let noise = |amp: f64| move |i: f64| 0.9 - 0.05 * i / 720.0 + amp * ((i as u64 * 7919) % 13) as f64 / 13.0;
        let got = drift_of("standard", series(721, 3600.0, noise(0.02)));
        assert!(got.contains(r#""slope_per_week":-0.011642710309439728"#), "{got}");
        assert!(got.contains("(R²=0.86)") && got.contains("with high confidence"), "{got}");
        let got = drift_of("standard", series(721, 3600.0, noise(0.045)));
        let want = json!({"slo_name":"availability","severity":"critical","pattern":"gradual_decline","slope_per_week":-0.011612764862906057,
            "days_until_exhaustion":null,"current_budget":0.8846153846153846,
            "summary":"Error budget declining at 1.16% per week with moderate confidence (R²=0.55).",
            "recommendation":"Investigate recent changes. Common causes: increased traffic, dependency degradation, or configuration drift. Run `nthlayer-observe verify` to check metric coverage."});
        assert_eq!(got, want.to_string());
    }

    #[test]
    fn unusable_series_emit_nothing() {
        let cases = [
            Ok(json!({"resultType": "matrix", "result": []})),
            Err(HostError::Unavailable("down".into())),
            Ok(series(1, 3600.0, |_| 0.5)),
            // Non-finite samples are dropped before counting.
            Ok(
                json!({"resultType": "matrix", "result": [{"values": [[T0, "NaN"], [T0 + 3600.0, "0.5"], [T0 + 7200.0, "+Inf"]]}]}),
            ),
            // One malformed sample spoils the series.
            Ok(
                json!({"resultType": "matrix", "result": [{"values": [[T0, "0.5"], [T0 + 3600.0, "abc"], [T0 + 7200.0, "0.4"]]}]}),
            ),
            Ok(json!({"resultType": "matrix", "result": [{"values": [[T0, "0.5"], [T0 + 3600.0]]}]})),
            // All samples at one instant: no regression possible.
            Ok(json!({"resultType": "matrix", "result": [{"values": [[T0, "0.5"], [T0, "0.4"]]}]})),
        ];
        for answer in cases {
            let h = host("standard");
            h.set_range(QUERY, answer.clone());
            let out = run(&h, &input());
            assert!(h.submitted.borrow().is_empty(), "{answer:?}");
            assert_eq!(out.emitted, 0);
            assert!(h.logs.borrow().iter().any(|(l, m)| *l == Level::Warn && m == "drift_analysis_failed"));
        }
    }

    #[test]
    fn windows_and_tiers() {
        assert_eq!(window_seconds("30d"), 2_592_000);
        assert_eq!(window_seconds("3m"), 3 * 30 * 86_400);
        assert_eq!(window_seconds("2w"), 1_209_600);
        assert_eq!(window_seconds("12h"), 43_200);
        assert_eq!(window_seconds("1.5d"), 2_592_000);
        assert_eq!(window_seconds("d"), 2_592_000);
        assert_eq!(window_seconds("7dx"), 604_800);
        assert_eq!(tier_policy("CRITICAL").exhaustion_critical_days, 14);
        assert_eq!(tier_policy("tier-1").exhaustion_critical_days, 7);
        assert_eq!(tier_policy("low").step_threshold, 0.10);

        // Missing window: the tier's default (low: 14 days). Null tier: the reference fails.
        let h = FakeHost::new().with_manifests(json!([
            {"name": "a", "tier": "low", "slos": [{"name": "x"}, {"name": ""}, {"target": 1}]},
            {"name": "b", "slos": [{"name": "y", "window": "2w"}]},
            {"name": "c", "tier": null, "slos": [{"name": "z"}]},
            {"name": "d", "slos": [{"name": "w", "window": 30}]}]));
        run(&h, &input());
        let calls = h.range_calls.borrow();
        let spans: Vec<(String, f64)> = calls.iter().map(|(q, s, e, _)| (q.clone(), (e - s).round())).collect();
        assert_eq!(
            spans,
            vec![
                ("slo:error_budget_remaining:ratio{service=\"a\", slo=\"x\"}".to_string(), 1_209_600.0),
                ("slo:error_budget_remaining:ratio{service=\"b\", slo=\"y\"}".to_string(), 1_209_600.0),
            ]
        );
        assert_eq!(h.logs.borrow().iter().filter(|(_, m)| m == "drift_analysis_failed").count(), 4);
    }

    #[test]
    fn exhaustion_projection() {
        assert_eq!(exhaustion_days(0.5, 0.0), Ok(None));
        assert_eq!(exhaustion_days(-0.1, -1e-9), Ok(Some(0)));
        assert_eq!(exhaustion_days(0.5, -0.5 / 86400.0 / 366.0), Ok(None));
        assert_eq!(exhaustion_days(0.5, -0.5 / 86400.0 / 10.5), Ok(Some(10)));
    }

    #[test]
    fn state_counts_records() {
        let h = host("critical");
        h.set_range(QUERY, Ok(series(721, 3600.0, |i| 0.9 - 0.3 * i / 720.0)));
        let out = run(&h, &CycleInput { state: Some(json!({"seq": 9})), ..input() });
        assert_eq!(out.state, Some(json!({"seq": 10})));
        assert!(h.submitted_of_kind("drift_signal")[0]["id"].as_str().unwrap().ends_with("-00009"));
    }
}
