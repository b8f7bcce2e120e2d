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

/// A manifest's SLOs to assess; a service's are always assessed in the same cycle.
struct Service<'a> {
    name: &'a str,
    targets: Vec<Target<'a>>,
}

/// When a cycle stops starting new runs, in seconds since it began: half the default
/// `wall_ms` (120 s), which leaves the last run (256 range queries) and its submit the other
/// half. The contract gives a guest no deadline, so this is fixed; a run in flight is never cut.
const BUDGET_SECONDS: f64 = 60.0;

/// `drift_analysis_failed` lines a cycle logs one by one; the rest are only counted in its
/// `drift_cycle` line. At 10,000 services a catalogue without history for two SLOs of
/// three fails 20,000 times, past the host's `log_lines` (10,000), which would drop the
/// summary line with the rest.
const FAILURE_LINES: u32 = 100;

/// The services with SLOs, sorted by name (bytes), one entry per name: the order a sweep
/// takes, so that a cursor (a name) says what is done whatever the catalogue becomes.
fn services<'a>(manifests: &'a [Value], standard: &'a Value) -> Vec<Service<'a>> {
    let mut out: Vec<Service<'a>> = Vec::new();
    for m in manifests {
        let Some(name) = manifest_name(m) else {
            continue;
        };
        let tier = m.get("tier").unwrap_or(standard);
        let targets: Vec<Target<'a>> = manifest_slos(m)
            .iter()
            .filter_map(|slo| {
                let slo_name = slo.get("name").and_then(Value::as_str).filter(|n| !n.is_empty())?;
                Some(Target { service: name, tier, slo: slo_name, window: slo.get("window") })
            })
            .collect();
        if !targets.is_empty() {
            out.push(Service { name, targets });
        }
    }
    out.sort_by(|a, b| a.name.cmp(b.name));
    // Core serves one manifest per name; should two share one, they are assessed together.
    out.dedup_by(|later, first| {
        let same = later.name == first.name;
        if same {
            first.targets.append(&mut later.targets);
        }
        same
    });
    out
}

/// The task's state: the record counter and, mid-sweep, the next service to assess.
fn state(seq: &Seq, cursor: Option<&str>) -> CycleOutput {
    let mut out = output(seq, 0);
    if let (Some(Value::Object(state)), Some(cursor)) = (out.state.as_mut(), cursor) {
        state.insert("cursor".into(), json!(cursor));
    }
    out
}

pub fn run(host: &dyn Host, input: &CycleInput) -> CycleOutput {
    let started = host.now();
    let mut seq = Seq::from_state(input.state.as_ref());
    let cursor = input.state.as_ref().and_then(|s| s.get("cursor")).and_then(Value::as_str);
    let Some(manifests) = fetch_manifests(host) else {
        return state(&seq, cursor);
    };
    let standard = json!("standard");
    let all = services(&manifests, &standard);
    // Resume at the first service at or after the cursor: one removed since is not waited
    // for, one added before it waits for the next sweep.
    let from = cursor.map_or(0, |c| all.partition_point(|s| s.name < c));
    let pending = &all[from..];

    // A run of services' range queries in one batched call (the host runs them concurrently,
    // bounded), then that run's drift_signal records in one batched call; runs keep the
    // histories held bounded. An SLO whose query cannot be formed fails on its own. Once the
    // budget is spent no new run starts; the next cycle goes on from the cursor.
    let (mut emitted, mut done, mut next, mut failed) = (0, 0, None, 0);
    for (i, run) in runs(pending, |s| s.targets.len(), QUERY_BATCH).into_iter().enumerate() {
        if i > 0 && host.now() - started >= BUDGET_SECONDS {
            next = Some(run[0].name);
            break;
        }
        let targets: Vec<&Target> = run.iter().flat_map(|s| &s.targets).collect();
        emitted += assess_run(host, &mut seq, &targets, &mut failed);
        done += run.len();
    }
    let swept = format!("{}/{}", from + done, all.len());
    let (done, failed) = (done.to_string(), failed.to_string());
    host.log(
        Level::Info,
        "drift_cycle",
        &[("services", &done), ("cursor", next.unwrap_or("")), ("swept", &swept), ("failed", &failed)],
    );
    CycleOutput { emitted, ..state(&seq, next) }
}

/// Queries and assesses one run's SLOs, submits its records; how many were accepted.
/// `failed` counts the SLOs that could not be assessed, this cycle so far.
fn assess_run(host: &dyn Host, seq: &mut Seq, run: &[&Target], failed: &mut u32) -> u32 {
    let plans: Vec<Result<(Tier, RangeQuery), String>> = run.iter().map(|t| plan(host, t)).collect();
    let queries: Vec<RangeQuery> = plans.iter().filter_map(|p| p.as_ref().ok().map(|(_, q)| q.clone())).collect();
    let mut answers = host.prom_query_range_batch(&queries).into_iter();
    let mut records = Vec::new();
    for (t, p) in run.iter().zip(plans) {
        let analysed = p.and_then(|(policy, _)| {
            let answer = answers.next().unwrap_or_else(|| Err(HostError::Invalid("no answer for the query".into())));
            analyze(t, &policy, answer)
        });
        match analysed {
            Ok(data) => records.push(assessment(host, seq, "drift_signal", t.service, data)),
            Err(why) => {
                if *failed < FAILURE_LINES {
                    host.log(
                        Level::Warn,
                        "drift_analysis_failed",
                        &[("service", t.service), ("slo", t.slo), ("error", &why)],
                    );
                }
                *failed += 1;
            }
        }
    }
    submit_all(host, &records).into_iter().filter(|ok| *ok).count() as u32
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
#[path = "drift_tests.rs"]
mod tests;
