//! `correlate.contract`: each manifest contract's availability and p99 latency promises
//! against the service's own SLI queries in Prometheus → `contract_divergence`.

use nthlayer_sdk::host::HostExt;
use nthlayer_sdk::{py, time, CycleInput, CycleOutput, Host, Submission};
use serde_json::{json, Value};

use crate::{latency, manifests, round6};

pub fn run(host: &dyn Host, _input: &CycleInput) -> CycleOutput {
    let mut emitted = 0;
    let mut found: Vec<(String, Submission)> = Vec::new();
    for m in manifests(host, "correlate.contract").unwrap_or_default() {
        let Some(service) = m.get("name").and_then(Value::as_str).filter(|s| !s.is_empty()) else { continue };
        let contracts = match m.get("contracts") {
            Some(Value::Array(c)) if !c.is_empty() => c,
            None | Some(Value::Null) | Some(Value::Array(_)) => continue,
            Some(other) => {
                let t = crate::type_name(other);
                host.warn("contract_check_failed", &[("service", service), ("reason", &format!("contracts is {t}"))]);
                continue;
            }
        };
        let slos = m.get("slos").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
        for c in contracts {
            if let Some(record) = check(host, service, c, slos) {
                found.push((service.to_string(), Submission::assessment(record, None)));
            }
        }
    }
    // The cycle's contract_divergence records in one batched call, in order.
    let batch: Vec<Submission> = found.iter().map(|(_, s)| s.clone()).collect();
    for ((service, _), answer) in found.iter().zip(host.submit_batch(&batch)) {
        match answer {
            Ok(_) => emitted += 1,
            Err(e) => {
                host.warn("contract_divergence_submit_failed", &[("service", service), ("error", &e.to_string())])
            }
        }
    }
    CycleOutput { state: Some(json!({})), result: None, emitted }
}

/// One contract; `Some(assessment)` when a promise is broken. A malformed promise is logged
/// with the service and skipped (the contract, for availability, as in the reference).
pub fn check(host: &dyn Host, service: &str, contract: &Value, slos: &[Value]) -> Option<Value> {
    let empty = json!({});
    let promise = contract.get("promise").filter(|p| p.is_object()).unwrap_or(&empty);
    let mut divergences = Vec::new();
    let bad = |what: &str, value: &Value| {
        host.warn(
            "contract_promise_invalid",
            &[("service", service), ("promise", what), ("value", &value.to_string()), ("action", "contract skipped")],
        )
    };

    match promise.get("availability") {
        None | Some(Value::Null) => {}
        Some(v) => {
            let Some(promised) = v.as_f64() else {
                bad("availability", v);
                return None;
            };
            if promised > 1.0 {
                host.warn("contract_availability_not_ratio", &[("service", service), ("value", &v.to_string())]);
                return None;
            }
            let q = sli_query(slos, |s| s.get("name").and_then(Value::as_str) == Some("availability"));
            if let Some(obs) = q.and_then(|q| sli_value(host, service, q)) {
                if obs < promised {
                    divergences.push(
                        json!({"metric": "availability", "promised": v, "observed": round6(obs), "window": "30d"}),
                    );
                }
            }
        }
    }

    let lat = promise.get("latency_p99").filter(|v| crate::topology::truthy(v));
    if let Some(v) = lat {
        match v.as_str().and_then(latency::parse_ms) {
            None => bad("latency_p99", v),
            Some(promised_ms) => {
                let q = sli_query(slos, |s| s.get("slo_type").and_then(Value::as_str) == Some("latency"));
                if let Some(obs_ms) = q.and_then(|q| sli_value(host, service, q)).map(|s| s * 1000.0) {
                    if obs_ms > promised_ms {
                        divergences.push(json!({
                            "metric": "latency_p99", "promised": v,
                            "observed": format!("{}ms", py::fixed(obs_ms, 0)), "window": "30d",
                        }));
                    }
                }
            }
        }
    }

    if divergences.is_empty() {
        return None;
    }
    let name = match contract.get("name") {
        Some(n) => n.clone(),
        None => json!(format!("{service}-contract")),
    };
    let total = ["availability", "latency_p99"]
        .iter()
        .filter(|k| promise.get(**k).is_some_and(crate::topology::truthy))
        .count();
    Some(json!({
        "id": format!("cdv-{service}-{}", host.hex8()),
        "created_at": time::iso(host.now()),
        "kind": "contract_divergence",
        "service": service,
        "data": {
            "contract_name": name,
            "divergences": divergences,
            "total_promises": total,
            "divergence_count": divergences.len(),
        },
    }))
}

/// The first SLO matching `pick` that has an `indicator_query`.
fn sli_query(slos: &[Value], pick: impl Fn(&Value) -> bool) -> Option<&str> {
    slos.iter()
        .filter(|s| pick(s))
        .find_map(|s| s.get("indicator_query").and_then(Value::as_str).filter(|q| !q.is_empty()))
}

/// An instant query's first sample; errors and empty answers are "no observation".
fn sli_value(host: &dyn Host, service: &str, promql: &str) -> Option<f64> {
    match host.prom_query(promql, None) {
        Ok(data) => data.pointer("/result/0/value/1").and_then(py::float),
        Err(e) => {
            host.log(
                nthlayer_sdk::Level::Debug,
                "contract_query_failed",
                &[("service", service), ("error", &e.to_string())],
            );
            None
        }
    }
}

#[cfg(test)]
#[path = "contract_tests.rs"]
mod tests;
