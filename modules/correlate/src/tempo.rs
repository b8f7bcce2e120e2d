//! Trace evidence from Tempo for topology drift: which services served traffic in the last
//! hour, and the service-to-service edges seen in client spans.
//!
//! Only the two queries whose answers reach `topology_drift` are issued (server span counts
//! and the client-span search); the reference also fetches percentiles, baselines, operation
//! breakdowns, top errors and sample traces that it then never reads. Answers are read in
//! both shapes: Tempo's own (label lists, `{timestampMs, value}` samples, `spanSets`) and the
//! flattened one the reference's parser expects.

use serde_json::Value;

pub const WINDOW_SECONDS: f64 = 3600.0;
pub const SEARCH_LIMIT: u32 = 1000;

/// `max(window // 20, 15)` seconds, as the reference computes it (180 s for an hour).
pub fn step(window_seconds: f64) -> String {
    let secs = (window_seconds as i64).max(60);
    format!("{}s", (secs / 20).max(15))
}

/// `resource.service.name = "x"`, or the `||` of several in parentheses.
pub fn service_filter(services: &[String]) -> String {
    match services {
        [] => r#"resource.service.name = "__none__""#.to_string(),
        [one] => format!(r#"resource.service.name = "{one}""#),
        many => {
            let parts: Vec<String> = many.iter().map(|s| format!(r#"resource.service.name = "{s}""#)).collect();
            format!("({})", parts.join(" || "))
        }
    }
}

pub fn count_query(services: &[String]) -> String {
    format!("{{ {} && span.kind = server }} | count_over_time() by (resource.service.name)", service_filter(services))
}

pub fn search_query(services: &[String]) -> String {
    format!("{{ {} && span.kind = client }}", service_filter(services))
}

/// Why an answer could not be used: logged by the caller, the cycle emits nothing.
pub type Garbage = String;

/// `{service: mean of its samples}` from a TraceQL metrics answer.
pub fn mean_by_service(answer: &Value) -> Result<Vec<(String, f64)>, Garbage> {
    let series = match answer.get("series") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(s)) => s,
        Some(_) => return Err("`series` is not a list".into()),
    };
    let mut out: Vec<(String, f64)> = Vec::new();
    for s in series {
        let Some(service) = series_service(s).filter(|x| !x.is_empty()) else { continue };
        let samples = match s.get("samples") {
            Some(Value::Array(a)) if !a.is_empty() => a,
            _ => continue,
        };
        let values: Vec<f64> = samples.iter().filter_map(sample_value).collect();
        let mean = if values.is_empty() { 0.0 } else { values.iter().sum::<f64>() / values.len() as f64 };
        match out.iter_mut().find(|(k, _)| *k == service) {
            Some(slot) => slot.1 = mean,
            None => out.push((service, mean)),
        }
    }
    Ok(out)
}

fn series_service(s: &Value) -> Option<String> {
    let labels = s.get("labels");
    if let Some(Value::Array(list)) = labels {
        return list
            .iter()
            .find(|l| l.get("key").and_then(Value::as_str) == Some("resource.service.name"))
            .and_then(|l| attr_string(l.get("value")?));
    }
    let flat = labels.and_then(|l| l.get("resource.service.name")).and_then(Value::as_str).filter(|x| !x.is_empty());
    flat.or_else(|| s.get("promLabels").and_then(|p| p.get("resource_service_name")).and_then(Value::as_str))
        .map(str::to_string)
}

/// `[ts, value]` (flattened) or `{"timestampMs": "…", "value": v}` (Tempo).
fn sample_value(s: &Value) -> Option<f64> {
    match s {
        Value::Array(a) if a.len() >= 2 => a[1].as_f64(),
        Value::Object(o) => o.get("value").and_then(Value::as_f64),
        _ => None,
    }
}

/// A Tempo attribute value: `{"stringValue": "x"}` and friends, or a bare string.
fn attr_string(v: &Value) -> Option<String> {
    if let Some(s) = v.as_str() {
        return Some(s.to_string());
    }
    v.get("stringValue").and_then(Value::as_str).map(str::to_string)
}

/// One client span: caller, callee, duration and whether it failed.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub source: String,
    pub target: String,
    pub duration_ms: f64,
    pub error: bool,
}

/// Client calls from a search answer.
pub fn calls(answer: &Value) -> Result<Vec<Call>, Garbage> {
    let traces = match answer.get("traces") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(t)) => t,
        Some(_) => return Err("`traces` is not a list".into()),
    };
    let mut out = Vec::new();
    for t in traces {
        if t.get("resource.service.name").is_some() || t.get("span.peer.service").is_some() {
            // The flattened shape: one call per entry.
            let s = |k: &str| t.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            out.push(Call {
                source: s("resource.service.name"),
                target: s("span.peer.service"),
                duration_ms: t.get("durationMs").and_then(Value::as_f64).unwrap_or(0.0),
                error: t.get("status").and_then(Value::as_str) == Some("error"),
            });
            continue;
        }
        let root = t.get("rootServiceName").and_then(Value::as_str).unwrap_or("");
        let sets = t.get("spanSets").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
        let single = t.get("spanSet").map(std::slice::from_ref).unwrap_or(&[]);
        for span in sets.iter().chain(single).filter_map(|ss| ss.get("spans")?.as_array()).flatten() {
            let attr = |keys: &[&str]| {
                span.get("attributes")?
                    .as_array()?
                    .iter()
                    .find(|a| a.get("key").and_then(Value::as_str).is_some_and(|k| keys.contains(&k)))
                    .and_then(|a| attr_string(a.get("value")?))
            };
            let nanos = span.get("durationNanos").and_then(|d| d.as_f64().or_else(|| d.as_str()?.parse().ok()));
            out.push(Call {
                source: attr(&["resource.service.name", "service.name"]).unwrap_or_else(|| root.to_string()),
                target: attr(&["span.peer.service", "peer.service"]).unwrap_or_default(),
                duration_ms: nanos.map_or(0.0, |n| n / 1e6),
                error: attr(&["status"]).as_deref() == Some("error"),
            });
        }
    }
    Ok(out)
}

/// Calls aggregated per (source, target), in first-seen order; self-calls and calls with
/// an unknown end are dropped.
#[derive(Debug, Clone, PartialEq)]
pub struct Edge {
    pub source: String,
    pub target: String,
    pub requests: u64,
    pub errors: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

pub fn edges(calls: &[Call]) -> Vec<Edge> {
    let mut acc: Vec<(String, String, u64, Vec<f64>)> = Vec::new();
    for c in calls {
        if c.source.is_empty() || c.target.is_empty() || c.source == c.target {
            continue;
        }
        let i = match acc.iter().position(|(s, t, _, _)| *s == c.source && *t == c.target) {
            Some(i) => i,
            None => {
                acc.push((c.source.clone(), c.target.clone(), 0, Vec::new()));
                acc.len() - 1
            }
        };
        acc[i].2 += c.error as u64;
        acc[i].3.push(c.duration_ms);
    }
    acc.into_iter()
        .map(|(source, target, errors, mut d)| {
            d.sort_by(f64::total_cmp);
            let n = d.len();
            Edge { source, target, requests: n as u64, errors, p50_ms: d[n / 2], p99_ms: d[(n as f64 * 0.99) as usize] }
        })
        .collect()
}

#[cfg(test)]
#[path = "tempo_tests.rs"]
mod tests;
