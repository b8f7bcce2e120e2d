//! `observe.collect`: one `slo_status` per manifest SLO from an instant Prometheus query,
//! then one `portfolio_status` rollup. No burn rate, hysteresis or dedup, as in the
//! reference.

use std::collections::BTreeMap;

use nthlayer_sdk::batch::QUERY_BATCH;
use nthlayer_sdk::{py, CycleInput, CycleOutput, Host, HostError, Level};
use serde_json::{json, Map, Value};

use crate::{assessment, fetch_manifests, manifest_name, output, runs, submit, submit_all, truthy, Seq};

/// One SLO as the collector sees it.
struct Slo {
    name: String,
    /// The manifest's number, emitted as given (an integer target stays an integer).
    target: Value,
    /// As given: a null window is emitted as `null` and counted as 30 days, like the
    /// reference.
    window: Value,
    query: Option<String>,
}

struct SloResult {
    /// Keys in the reference's order: the five fixed ones, then whichever figures exist.
    data: Map<String, Value>,
    status: &'static str,
}

/// Why a whole service was skipped: the reference raised out of its collector for it.
struct CollectFailure(String);

pub fn run(host: &dyn Host, input: &CycleInput) -> CycleOutput {
    let mut seq = Seq::from_state(input.state.as_ref());
    let Some(manifests) = fetch_manifests(host) else {
        return output(&seq, 0);
    };

    // Each manifest's SLOs are moved out of it (never copied): the manifests and then the
    // raw SLOs are let go as soon as what follows from them is built, so the cycle does not
    // hold the catalogue three times over (observe.collect's memory, docs/BENCH.md).
    let mut by_service: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for m in manifests {
        let Some(service) = manifest_name(&m).map(str::to_string) else {
            continue;
        };
        let Value::Object(mut m) = m else { continue };
        let Some(Value::Array(slos)) = m.remove("slos") else { continue };
        for slo in slos {
            let named = slo.get("name").and_then(Value::as_str).is_some_and(|n| !n.is_empty());
            let targeted = slo.get("target").is_some_and(|t| !t.is_null());
            if named && targeted {
                by_service.entry(service.clone()).or_default().push(slo);
            }
        }
    }
    if by_service.is_empty() {
        return output(&seq, 0);
    }

    let mut collection_errors = 0u64;
    // Every service's SLOs are parsed first: one that does not parse skips its service, as
    // the reference's collector raised for it.
    let mut planned: Vec<(String, Vec<Slo>)> = Vec::new();
    for (service, raw_slos) in by_service {
        match raw_slos.iter().map(parse_slo).collect::<Result<Vec<_>, _>>() {
            Ok(slos) => planned.push((service, slos)),
            Err(CollectFailure(why)) => {
                host.log(Level::Warn, "observe_collect_failed", &[("service", &service), ("error", &why)]);
                collection_errors += 1;
            }
        }
    }
    // The SLI queries of a run of services in one batched call (the host runs them
    // concurrently, bounded), then that run's slo_status records in one batched call, in
    // the order they were built; runs keep what the cycle holds bounded.
    let mut emitted = 0;
    let mut accepted_ids: Vec<Value> = Vec::new();
    let mut collected: Vec<(String, Vec<&'static str>)> = Vec::new();
    for run in runs(&planned, |(_, slos)| slos.len(), QUERY_BATCH) {
        let queries: Vec<String> = run
            .iter()
            .flat_map(|(service, slos)| slos.iter().filter_map(|slo| slo.query.as_ref().map(|q| expand(q, service))))
            .collect();
        let mut answers = host.prom_query_batch(&queries, None).into_iter();
        let mut records: Vec<Value> = Vec::new();
        for (service, slos) in run {
            let results: Vec<SloResult> = slos
                .iter()
                .map(|slo| {
                    let answer = slo.query.as_ref().map(|_| {
                        answers.next().unwrap_or_else(|| Err(HostError::Invalid("no answer for the query".into())))
                    });
                    collect_one(host, service, slo, answer)
                })
                .collect();
            // All of a service's records are built before any is sent, as in the reference.
            records.extend(
                results
                    .iter()
                    .map(|r| assessment(host, &mut seq, "slo_status", service, Value::Object(r.data.clone()))),
            );
            collected.push(((*service).clone(), results.iter().map(|r| r.status).collect()));
        }
        for (record, ok) in records.iter().zip(submit_all(host, &records)) {
            if ok {
                emitted += 1;
                accepted_ids.push(record["id"].clone());
            }
        }
    }

    if !collected.is_empty() {
        let data = portfolio(&collected, collection_errors, accepted_ids);
        let record = assessment(host, &mut seq, "portfolio_status", "__portfolio__", data);
        if submit(host, &record) {
            emitted += 1;
        }
    }
    output(&seq, emitted)
}

/// The SLO's query for one service (`${service}` and `$service` filled in).
fn expand(template: &str, service: &str) -> String {
    template.replace("${service}", service).replace("$service", service)
}

fn parse_slo(raw: &Value) -> Result<Slo, CollectFailure> {
    let name = raw["name"].as_str().unwrap_or_default().to_string();
    let target = raw["target"].clone();
    if !target.is_number() {
        // `100 - "99.9"` is a TypeError in the reference, which fails the whole service.
        return Err(CollectFailure(format!("SLO {name}: target is not a number: {target}")));
    }
    let window = raw.get("window").cloned().unwrap_or_else(|| json!("30d"));
    if truthy(&window) && !window.is_string() {
        return Err(CollectFailure(format!("SLO {name}: window is not a string: {window}")));
    }
    let text = |key: &str| raw.get(key).and_then(Value::as_str).filter(|s| !s.is_empty());
    // An empty indicator_query is still a query (Prometheus will refuse it), as in the reference.
    let mut query = raw.get("indicator_query").and_then(Value::as_str).map(str::to_string);
    if query.as_deref().is_none_or(str::is_empty) {
        if let (Some(good), Some(total)) = (text("good_query"), text("total_query")) {
            query = Some(format!("({good}) / ({total})"));
        }
    }
    Ok(Slo { name, target, window, query })
}

/// Minutes in a window such as "30d" (here `m` is minutes). Anything else is 30 days.
pub(crate) fn window_minutes(window: &Value) -> f64 {
    const DEFAULT: f64 = 30.0 * 24.0 * 60.0;
    let Some(w) = window.as_str() else {
        return DEFAULT;
    };
    let Some(unit) = w.chars().last() else {
        return DEFAULT;
    };
    let per = match unit {
        'd' => 1440,
        'h' => 60,
        'w' => 10080,
        'm' => 1,
        _ => return DEFAULT,
    };
    match py::int_str(&w[..w.len() - unit.len_utf8()]) {
        Some(n) => n.checked_mul(per).map_or(f64::INFINITY, |v| v as f64),
        None => DEFAULT,
    }
}

/// What the instant query said about the SLI.
enum Sli {
    Value(f64),
    NoData,
    Error(String),
}

fn query_sli(answer: Result<Value, HostError>) -> Sli {
    let data = match answer {
        Ok(d) => d,
        Err(e) => return Sli::Error(e.to_string()),
    };
    let first = data.get("result").and_then(Value::as_array).and_then(|r| r.first());
    let value = first.and_then(|r| r.get("value")).and_then(Value::as_array).and_then(|v| v.get(1));
    match value.and_then(py::float) {
        Some(v) => Sli::Value(v),
        None => Sli::NoData,
    }
}

fn status_for(percent_consumed: f64) -> &'static str {
    if percent_consumed >= 100.0 {
        "EXHAUSTED"
    } else if percent_consumed >= 80.0 {
        "CRITICAL"
    } else if percent_consumed >= 50.0 {
        "WARNING"
    } else {
        "HEALTHY"
    }
}

/// `answer` is the instant query's, none when the SLO has no query.
fn collect_one(host: &dyn Host, service: &str, slo: &Slo, answer: Option<Result<Value, HostError>>) -> SloResult {
    let objective = slo.target.as_f64().unwrap_or(f64::NAN);
    let window_min = window_minutes(&slo.window);
    // Operation order matters for the last bit: the reference's figures are compared as is.
    let total_budget_minutes = window_min * ((100.0 - objective) / 100.0);

    let mut data = Map::new();
    data.insert("slo_name".into(), json!(slo.name));
    data.insert("objective".into(), slo.target.clone());
    data.insert("window".into(), slo.window.clone());
    data.insert("total_budget_minutes".into(), json!(total_budget_minutes));

    let status = match answer {
        None => {
            data.insert("status".into(), json!("NO_DATA"));
            data.insert("error".into(), json!("No query defined"));
            "NO_DATA"
        }
        Some(answer) => match query_sli(answer) {
            Sli::Value(sli) => match figures(window_min, total_budget_minutes, sli) {
                Some((current_sli, burned, consumed, status)) => {
                    data.insert("status".into(), json!(status));
                    data.insert("current_sli".into(), json!(current_sli));
                    data.insert("burned_minutes".into(), json!(burned));
                    data.insert("percent_consumed".into(), consumed);
                    status
                }
                None => {
                    host.log(
                        Level::Warn,
                        "non_finite_sli_value",
                        &[("service", service), ("slo", &slo.name), ("value", &py::repr(sli))],
                    );
                    data.insert("status".into(), json!("NO_DATA"));
                    "NO_DATA"
                }
            },
            Sli::NoData => {
                data.insert("status".into(), json!("NO_DATA"));
                "NO_DATA"
            }
            Sli::Error(e) => {
                host.log(
                    Level::Warn,
                    "prometheus_query_failed",
                    &[("service", service), ("slo", &slo.name), ("error", &e)],
                );
                data.insert("status".into(), json!("ERROR"));
                data.insert("error".into(), json!(e));
                "ERROR"
            }
        },
    };
    SloResult { data, status }
}

/// `(current_sli, burned_minutes, percent_consumed, status)` for a sample.
///
/// PARITY: the reference passes Prometheus's "NaN" (and ±Inf) straight through, posting
/// `NaN`/`Infinity` literals. Core 4.0.1 stores them, but its JSON responses refuse
/// non-finite numbers, so every later `GET /assessments` touching that record answers 500
/// (the deploy gate for the service then fails with exit 1). serde_json cannot write them
/// either. A non-finite sample (or one whose figures overflow) is therefore reported as
/// NO_DATA without figures, exactly like an empty result, and logged.
fn figures(window_min: f64, total: f64, sli: f64) -> Option<(f64, f64, Value, &'static str)> {
    let current_sli = sli * 100.0;
    let burned = window_min * (1.0 - sli);
    // The reference's fallback is the integer 0, and it is emitted as such.
    let (consumed, pc) = if total > 0.0 {
        let pc = burned / total * 100.0;
        (json!(pc), pc)
    } else {
        (json!(0), 0.0)
    };
    if !(current_sli.is_finite() && burned.is_finite() && pc.is_finite()) {
        return None;
    }
    Some((current_sli, burned, consumed, status_for(pc)))
}

fn rank(status: &str) -> i32 {
    match status {
        "EXHAUSTED" => 4,
        "CRITICAL" => 3,
        "WARNING" => 2,
        "ERROR" => 1,
        "NO_DATA" => 0,
        "HEALTHY" => -1,
        _ => -2,
    }
}

/// The worst status; on a tie the first one wins (Python's `max`).
fn overall(statuses: &[&'static str]) -> &'static str {
    let mut worst = "UNKNOWN";
    let mut worst_rank = i32::MIN;
    for s in statuses {
        if rank(s) > worst_rank {
            worst = s;
            worst_rank = rank(s);
        }
    }
    worst
}

fn portfolio(services: &[(String, Vec<&'static str>)], collection_errors: u64, parent_ids: Vec<Value>) -> Value {
    let mut counts = [0u64; 4]; // healthy, warning, critical, exhausted
    let mut rows = Vec::new();
    for (service, statuses) in services {
        let status = overall(statuses);
        match status {
            "HEALTHY" => counts[0] += 1,
            "WARNING" => counts[1] += 1,
            "CRITICAL" => counts[2] += 1,
            "EXHAUSTED" => counts[3] += 1,
            _ => {}
        }
        rows.push(json!({"service": service, "overall_status": status, "slo_count": statuses.len()}));
    }
    json!({
        "total_services": services.len(),
        "healthy_count": counts[0],
        "warning_count": counts[1],
        "critical_count": counts[2],
        "exhausted_count": counts[3],
        "services": rows,
        "collection_errors": collection_errors,
        "parent_ids": parent_ids,
    })
}

#[cfg(test)]
#[path = "collect_tests.rs"]
mod tests;
