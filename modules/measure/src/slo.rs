//! Judgment SLO evaluation: each SLO's indicator query, sent verbatim, gives a ratio that is
//! healthy when `ratio*100 >= target`. One `judgment_slo_evaluation` per SLO per cycle.

use nthlayer_sdk::host::HostExt;
use nthlayer_sdk::{py, time, Host, HostError, Level, Submission};
use serde_json::{json, Value};

use crate::knobs::EVAL_CONCURRENCY;

/// The judgment types the reference evaluates (and the catalogue serves).
pub const JUDGMENT_TYPES: [&str; 5] =
    ["reversal_rate", "high_confidence_failure", "audit_sampling", "outcomes", "escalation"];

/// A judgment SLO worth querying.
pub struct Slo {
    pub service: String,
    pub name: String,
    pub judgment_type: String,
    /// As served (it is echoed verbatim in the payloads).
    pub target: Value,
    pub target_f: f64,
    pub window: Value,
    pub query: String,
}

impl Slo {
    pub fn key(&self) -> String {
        format!("{}:{}", self.service, self.name)
    }
}

/// One evaluated SLO.
pub struct Evaluated {
    pub slo: Slo,
    pub pct: f64,
    pub status: &'static str,
    pub jse_id: String,
}

/// The judgment SLOs of every manifest, in manifest order. SLOs without an indicator query
/// are skipped silently (every v2 judgment SLO); malformed ones are skipped with a warning.
pub fn collect(host: &dyn Host, manifests: &[Value]) -> Vec<Slo> {
    let mut out = Vec::new();
    for m in manifests {
        let Some(service) = m.get("name").and_then(Value::as_str).filter(|s| !s.is_empty()) else { continue };
        let Some(slos) = m.get("slos").and_then(Value::as_array) else { continue };
        for slo in slos {
            let Some(jt) = slo.get("judgment_type").filter(|v| crate::truthy(v)) else { continue };
            let name = match slo.get("name") {
                None => "unknown".to_string(),
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
            };
            let skip =
                |why: &str| host.warn("measure_slo_skipped", &[("service", service), ("slo", &name), ("reason", why)]);
            let query = match slo.get("indicator_query") {
                None | Some(Value::Null) => continue,
                Some(Value::String(q)) if q.is_empty() => continue,
                Some(Value::String(q)) => q.clone(),
                Some(other) => {
                    skip(&format!("indicator_query is not a string: {other}"));
                    continue;
                }
            };
            let Some(jt) = jt.as_str().filter(|t| JUDGMENT_TYPES.contains(t)) else {
                skip(&format!("unknown judgment_type {jt}"));
                continue;
            };
            let target = slo.get("target").cloned().unwrap_or(json!(0));
            let Some(target_f) = target.as_f64().filter(|t| (0.0..=100.0).contains(t)) else {
                skip(&format!("target must be a number from 0 to 100, got {target}"));
                continue;
            };
            out.push(Slo {
                service: service.to_string(),
                name,
                judgment_type: jt.to_string(),
                target,
                target_f,
                window: slo.get("window").cloned().unwrap_or(json!("30d")),
                query,
            });
        }
    }
    out
}

/// The ratio in an instant-query answer. `Ok(None)` is no data (carry forward quietly); an
/// error is an answer of the wrong shape, which the caller reports.
pub fn sli(data: &Value) -> Result<Option<f64>, String> {
    let result = data.get("result");
    match data.get("resultType").and_then(Value::as_str) {
        Some("vector") => {
            let series = result.and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
            match series {
                [] => Ok(None),
                [one] => Ok(one.get("value").and_then(|v| v.get(1)).and_then(py::float)),
                many => Err(format!("query returned {} series; a judgment SLI must be one", many.len())),
            }
        }
        Some("scalar") => Ok(result.and_then(|v| v.get(1)).and_then(py::float)),
        Some(other) => Err(format!("query returned a {other}; a judgment SLI must be one number")),
        None => Ok(None),
    }
}

/// Queries every SLO (at most [`EVAL_CONCURRENCY`] at once) and posts one assessment per
/// SLO that answered. Errors and no data leave the SLO out: its status carries forward.
pub fn evaluate(host: &dyn Host, slos: Vec<Slo>) -> (Vec<Evaluated>, u32) {
    let mut answers: Vec<Result<Value, HostError>> = Vec::with_capacity(slos.len());
    for chunk in slos.chunks(EVAL_CONCURRENCY) {
        let queries: Vec<String> = chunk.iter().map(|s| s.query.clone()).collect();
        answers.extend(host.prom_query_batch(&queries, None));
    }
    let mut out = Vec::new();
    let mut records = Vec::new();
    let mut emitted = 0;
    for (slo, answer) in slos.into_iter().zip(answers) {
        let who = [("service", slo.service.as_str()), ("slo", slo.name.as_str())];
        let value =
            match answer.map_err(|e| (Level::Debug, e.to_string())).and_then(|d| sli(&d).map_err(|e| (Level::Warn, e)))
            {
                Ok(Some(v)) => v,
                Ok(None) => {
                    host.log(Level::Debug, "measure_no_data", &who);
                    continue;
                }
                Err((level, e)) => {
                    host.log(level, "measure_prometheus_failed", &[who[0], who[1], ("error", &e)]);
                    continue;
                }
            };
        let pct = value * 100.0;
        // NaN fails the comparison and so counts as a breach.
        let status = if pct >= slo.target_f { "healthy" } else { "breach" };
        let jse_id = format!("jse-{}-{}-{}", slo.service, slo.name, host.hex8());
        let record = json!({
            "id": jse_id,
            "created_at": time::iso(host.now()),
            "kind": "judgment_slo_evaluation",
            "service": slo.service,
            "data": {
                "slo_name": slo.name,
                "slo_type": slo.judgment_type,
                "target": slo.target,
                "current_value": py::round_n(pct, 6),
                "status": status,
                "window": slo.window,
            },
        });
        records.push(Submission::assessment(record, None));
        out.push(Evaluated { slo, pct, status, jse_id });
    }
    // The cycle's judgment_slo_evaluation records in one batched call, in order.
    for (e, answer) in out.iter().zip(host.submit_batch(&records)) {
        match answer {
            Ok(_) => emitted += 1,
            Err(err) => host.warn(
                "measure_assessment_submit_failed",
                &[("service", &e.slo.service), ("slo", &e.slo.name), ("error", &err.to_string())],
            ),
        }
    }
    (out, emitted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sli_shapes() {
        let v = |r: Value| json!({"resultType": "vector", "result": r});
        assert_eq!(sli(&v(json!([]))), Ok(None));
        assert_eq!(sli(&v(json!([{"metric": {}, "value": [1, "0.92"]}]))), Ok(Some(0.92)));
        assert!(sli(&v(json!([{"metric": {}, "value": [1, "NaN"]}]))).unwrap().unwrap().is_nan());
        assert_eq!(sli(&v(json!([{"metric": {}, "value": [1, "x"]}]))), Ok(None));
        assert!(sli(&v(json!([{"value": [1, "1"]}, {"value": [1, "2"]}]))).unwrap_err().contains("2 series"));
        assert_eq!(sli(&json!({"resultType": "scalar", "result": [1, "0.5"]})), Ok(Some(0.5)));
        assert!(sli(&json!({"resultType": "string", "result": [1, "hi"]})).unwrap_err().contains("string"));
        assert!(sli(&json!({"resultType": "matrix", "result": []})).is_err());
    }
}
