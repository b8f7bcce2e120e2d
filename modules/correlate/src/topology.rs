//! `correlate.topology`: manifests' declared dependencies against the edges Tempo saw in
//! the last hour → one org-wide `topology_drift` when they differ.
//!
//! The reference's quirk is kept, because consumers may already rely on the totals: only
//! services with server traffic of their own are in the "blast radius", so an observed call
//! to a declared dependency that has no traces itself lands in `observed_not_declared`.

use nthlayer_sdk::host::HostExt;
use nthlayer_sdk::{py, time, CycleInput, CycleOutput, Host};
use serde_json::{json, Value};

use crate::tempo::{self, Edge};
use crate::{latency, manifests, round6};

pub use nthlayer_sdk::py::truthy;

pub fn run(host: &dyn Host, input: &CycleInput) -> CycleOutput {
    let out = |emitted| CycleOutput { state: Some(json!({})), result: None, emitted };
    if input.config.get("tempo_configured").and_then(Value::as_bool) == Some(false) {
        host.info("topology_module_no_trace_backend", &[("reason", "--tempo-endpoint is not set")]);
        return out(0);
    }
    let Some(manifests) = manifests(host, "correlate.topology") else { return out(0) };
    let declared = declared(&manifests);
    if declared.is_empty() {
        return out(0);
    }
    let services: Vec<String> = declared.iter().map(|(s, _)| s.clone()).collect();
    let end = host.now();
    let start = end - tempo::WINDOW_SECONDS;

    let counts = host
        .tempo_metrics_range(&tempo::count_query(&services), start, end, &tempo::step(tempo::WINDOW_SECONDS))
        .map_err(|e| e.to_string())
        .and_then(|a| tempo::mean_by_service(&a));
    let calls = counts.and_then(|c| {
        host.tempo_search(&tempo::search_query(&services), start, end, tempo::SEARCH_LIMIT)
            .map_err(|e| e.to_string())
            .and_then(|a| tempo::calls(&a))
            .map(|calls| (c, calls))
    });
    let (counts, calls) = match calls {
        Ok(v) => v,
        Err(e) => {
            host.warn("topology_trace_query_failed", &[("services", &services.join(",")), ("error", &e)]);
            return out(0);
        }
    };
    let profiled: Vec<&str> =
        services.iter().filter(|s| counts.iter().any(|(k, n)| k == *s && *n > 0.0)).map(String::as_str).collect();
    if profiled.is_empty() {
        return out(0);
    }
    let edges = tempo::edges(&calls);
    let record = drift(host, &manifests, &declared, &profiled, &edges);
    match record {
        None => out(0),
        Some(r) => match host.submit_assessment(&r, None) {
            Ok(_) => out(1),
            Err(e) => {
                host.warn("topology_drift_submit_failed", &[("service", "__topology__"), ("error", &e.to_string())]);
                out(0)
            }
        },
    }
}

/// `{service: [dependency names]}` in manifest order (a repeated name keeps its first slot
/// and its last list, like a Python dict).
pub fn declared(manifests: &[Value]) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for m in manifests {
        let Some(name) = m.get("name").and_then(Value::as_str).filter(|s| !s.is_empty()) else { continue };
        let deps: Vec<String> = m
            .get("dependencies")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|d| d.get("name").and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string))
            .collect();
        match out.iter_mut().find(|(k, _)| k == name) {
            Some(slot) => slot.1 = deps,
            None => out.push((name.to_string(), deps)),
        }
    }
    out
}

type Pair = (String, String);

fn sorted_unique(mut v: Vec<Pair>) -> Vec<Pair> {
    v.sort();
    v.dedup();
    v
}

/// The assessment, or `None` when declared and observed agree and no guarantee is broken.
pub fn drift(
    host: &dyn Host,
    manifests: &[Value],
    declared: &[(String, Vec<String>)],
    profiled: &[&str],
    edges: &[Edge],
) -> Option<Value> {
    let touches = |e: &&Edge| profiled.contains(&e.source.as_str()) || profiled.contains(&e.target.as_str());
    let observed = sorted_unique(edges.iter().filter(touches).map(|e| (e.source.clone(), e.target.clone())).collect());
    let mut declared_edges = Vec::new();
    for (s, deps) in declared.iter().filter(|(s, _)| profiled.contains(&s.as_str())) {
        for d in deps.iter().filter(|d| profiled.contains(&d.as_str())) {
            declared_edges.push((s.clone(), d.clone()));
        }
    }
    let declared_edges = sorted_unique(declared_edges);
    let missing: Vec<&Pair> = declared_edges.iter().filter(|e| !observed.contains(e)).collect();
    let extra: Vec<&Pair> = observed.iter().filter(|e| !declared_edges.contains(e)).collect();
    let callees: Vec<&Edge> = edges.iter().filter(|e| profiled.contains(&e.source.as_str())).collect();
    let mismatches = guarantee_mismatches(manifests, &callees);
    if missing.is_empty() && extra.is_empty() && mismatches.is_empty() {
        return None;
    }
    let pairs = |v: Vec<&Pair>| v.into_iter().map(|(s, t)| json!({"source": s, "target": t})).collect::<Vec<_>>();
    let total_observed = sorted_unique(callees.iter().map(|e| (e.source.clone(), e.target.clone())).collect()).len();
    Some(json!({
        "id": format!("tdr-topology-{}", host.hex8()),
        "created_at": time::iso(host.now()),
        "kind": "topology_drift",
        "service": "__topology__",
        "data": {
            "declared_not_observed": pairs(missing),
            "observed_not_declared": pairs(extra),
            "guarantee_mismatches": mismatches,
            "total_declared": declared.iter().map(|(_, d)| d.len()).sum::<usize>(),
            "total_observed": total_observed,
            "drift_detected": true,
        },
    }))
}

/// Per manifest dependency with an observed callee edge, its `slo` promises against the
/// edge. Core 4.0.1 does not serialise `dependency.slo`, so against a real core this is empty.
pub fn guarantee_mismatches(manifests: &[Value], callees: &[&Edge]) -> Vec<Value> {
    let mut out = Vec::new();
    for m in manifests {
        let Some(service) = m.get("name").and_then(Value::as_str).filter(|s| !s.is_empty()) else { continue };
        for dep in m.get("dependencies").and_then(Value::as_array).into_iter().flatten() {
            let Some(target) = dep.get("name").and_then(Value::as_str).filter(|s| !s.is_empty()) else { continue };
            // The last edge wins on duplicates, as the reference's dict does.
            let Some(edge) = callees.iter().rev().find(|e| e.source == service && e.target == target) else { continue };
            let Some(slo) = dep.get("slo").filter(|s| s.as_object().is_some_and(|o| !o.is_empty())) else { continue };
            if edge.requests == 0 {
                continue;
            }
            let base = |metric: &str, promised: &Value, observed: Value| {
                json!({"source": service, "target": target, "metric": metric, "promised": promised,
                       "observed": observed, "tempo_window": "1h"})
            };
            if let Some(p) = slo.get("availability").filter(|v| !v.is_null()) {
                let obs = 1.0 - edge.errors as f64 / edge.requests as f64;
                if p.as_f64().is_some_and(|p| obs < p) {
                    out.push(base("availability", p, json!(round6(obs))));
                }
            }
            if let Some(p) = slo.get("latency_p99").filter(|v| !v.is_null()) {
                if p.as_str().and_then(latency::parse_ms).is_some_and(|ms| edge.p99_ms > ms) {
                    out.push(base("latency_p99", p, json!(format!("{}ms", py::fixed(edge.p99_ms, 0)))));
                }
            }
        }
    }
    out
}

#[cfg(test)]
#[path = "topology_tests.rs"]
mod tests;
