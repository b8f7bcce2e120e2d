//! burn-rate-rust: one `burn_rate` assessment per SLO of every manifest in core, from the
//! SRE workbook's multi-window multi-burn-rate rules (burn.rs). Written on the nthlayer SDK:
//! the logic is a plain library tested natively with `FakeHost`; the wasm glue is the
//! `export_module!` line at the bottom.

pub mod burn;

use nthlayer_sdk::{ids, time, CycleInput, CycleOutput, Emission, Host, HostError, Level, Module, ModuleInfo, Task};
use serde_json::{json, Value};

pub const NAME: &str = "burn-rate-rust";

pub struct BurnRate;

impl Module for BurnRate {
    fn describe() -> ModuleInfo {
        ModuleInfo {
            name: NAME.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            tasks: vec![Task::new(NAME, 60, "burn_rate per SLO: SRE-workbook multi-window multi-burn-rate alerts")],
            needs: vec!["core".into(), "prometheus".into()],
            // The one kind run_cycle submits; the operator grants it (--grant …=assessment:burn_rate).
            emits: vec![Emission::assessment("burn_rate")],
        }
    }

    fn run_cycle(host: &dyn Host, input: CycleInput) -> Result<CycleOutput, String> {
        if input.task != NAME {
            return Err(format!("unknown task {:?} for module {NAME}", input.task));
        }
        Ok(run(host, &input))
    }
}

/// One SLO to evaluate.
struct Slo {
    service: String,
    name: String,
    objective: Value,
    window: Value,
    /// The indicator with `$service` substituted; None when the manifest has none.
    indicator: Option<String>,
}

/// The SLOs with a name and a numeric target, in manifest order.
fn slos(manifests: &[Value]) -> Vec<Slo> {
    let mut out = Vec::new();
    for m in manifests {
        let Some(service) = m.get("name").and_then(Value::as_str).filter(|s| !s.is_empty()) else { continue };
        for s in m.get("slos").and_then(Value::as_array).into_iter().flatten() {
            let Some(name) = s.get("name").and_then(Value::as_str).filter(|n| !n.is_empty()) else { continue };
            let objective = s.get("target").cloned().unwrap_or(Value::Null);
            if !objective.is_number() {
                continue;
            }
            let text = |k: &str| s.get(k).and_then(Value::as_str).filter(|q| !q.is_empty());
            let indicator = text("indicator_query")
                .map(str::to_string)
                .or_else(|| Some(format!("({}) / ({})", text("good_query")?, text("total_query")?)))
                .map(|q| q.replace("${service}", service).replace("$service", service));
            let window = s.get("window").cloned().unwrap_or(json!("30d"));
            out.push(Slo { service: service.into(), name: name.into(), objective, window, indicator });
        }
    }
    out
}

/// The value of an instant vector's first sample; NaN and empty results are no data.
fn sample(data: &Value) -> Option<f64> {
    let v = data.get("result")?.as_array()?.first()?.get("value")?.as_array()?.get(1)?;
    v.as_str()?.parse::<f64>().ok().filter(|x| x.is_finite())
}

fn describe_error(e: &HostError) -> String {
    match e {
        HostError::Denied(m) => format!("denied: {m}"),
        HostError::Unavailable(m) => format!("unavailable: {m}"),
        HostError::Timeout(m) => format!("timeout: {m}"),
        HostError::Invalid(m) => format!("invalid: {m}"),
        HostError::Rejected { status, code, .. } => format!("rejected: {status} {code}"),
    }
}

fn evaluate(host: &dyn Host, slo: &Slo, at: i64) -> Value {
    let Some(indicator) = &slo.indicator else {
        let mut data = burn::evaluate(&slo.name, &slo.objective, &slo.window, at, &[None; 7]);
        data.insert("error".into(), json!("No query defined"));
        return Value::Object(data);
    };
    let queries: Vec<String> = burn::WINDOWS.iter().map(|(w, step)| burn::window_query(indicator, w, step)).collect();
    let answers = host.prom_query_batch(&queries, Some(at as f64));
    let mut first_error = None;
    let slis: Vec<Option<f64>> = answers
        .iter()
        .map(|a| match a {
            Ok(data) => sample(data),
            Err(e) => {
                first_error.get_or_insert_with(|| describe_error(e));
                None
            }
        })
        .collect();
    let mut data = burn::evaluate(&slo.name, &slo.objective, &slo.window, at, &slis);
    if let Some(e) = first_error {
        data.insert("status".into(), json!("ERROR"));
        data.insert("error".into(), json!(e));
    }
    Value::Object(data)
}

pub fn run(host: &dyn Host, input: &CycleInput) -> CycleOutput {
    let mut seq = input.state.as_ref().and_then(|s| s.get("seq")).and_then(Value::as_u64).unwrap_or(1).max(1);
    // The last full minute, so re-runs and replicas within a minute see the same windows;
    // `{"at": <unix seconds>}` evaluates another moment (a backtest).
    let now = input.args.as_ref().and_then(|a| a.get("at")).and_then(Value::as_f64).unwrap_or_else(|| host.now());
    let at = ((now / 60.0).floor() * 60.0) as i64;
    let manifests = match host.get_manifests() {
        Ok(Value::Array(list)) => list,
        Ok(_) => Vec::new(),
        Err(e) => {
            host.log(Level::Warn, "burn_rate_manifests_failed", &[("error", &describe_error(&e))]);
            return CycleOutput { state: Some(json!({"seq": seq})), result: None, emitted: 0 };
        }
    };
    let mut emitted = 0;
    for slo in slos(&manifests) {
        let data = evaluate(host, &slo, at);
        let record = json!({
            "id": ids::asm_id(host, seq),
            "created_at": time::iso(host.now()),
            "kind": "burn_rate",
            "service": slo.service,
            "producer": format!("nthlayer-{NAME}"),
            "data": data,
        });
        seq += 1;
        match host.submit_assessment(&record, None) {
            Ok(_) => emitted += 1,
            Err(e) => host.log(
                Level::Warn,
                "burn_rate_submit_failed",
                &[("service", &slo.service), ("slo", &slo.name), ("error", &describe_error(&e))],
            ),
        }
    }
    CycleOutput { state: Some(json!({"seq": seq})), result: None, emitted }
}

nthlayer_sdk::export_module!(BurnRate);

#[cfg(test)]
mod tests {
    use super::*;
    use nthlayer_sdk::testing::FakeHost;

    #[test]
    fn every_named_slo_with_a_target_gets_one_record() {
        let host = FakeHost::new().with_manifests(json!([
            {"name": "checkout", "slos": [
                {"name": "availability", "target": 99.9, "window": "30d", "indicator_query": "sli{service=\"$service\"}"},
                {"name": "latency", "target": 99.0},
                {"name": "", "target": 99.0},
                {"name": "untargeted"}
            ]}
        ]));
        for (w, step) in burn::WINDOWS {
            host.set_scalar(&burn::window_query("sli{service=\"checkout\"}", w, step), "0.98");
        }
        let out = run(&host, &CycleInput { task: NAME.into(), state: None, config: json!({}), args: None });
        let posted = host.submitted_of_kind("burn_rate");
        assert_eq!(out.emitted, 2);
        assert_eq!(posted.len(), 2);
        assert_eq!(posted[0]["service"], "checkout");
        assert_eq!(posted[0]["data"]["status"], "PAGE");
        // FakeHost's clock is 15:08:47.6: evaluated at the last full minute.
        assert_eq!(posted[0]["data"]["evaluated_at"], 1_795_532_880);
        assert_eq!(posted[1]["data"]["status"], "NO_DATA");
        assert_eq!(posted[1]["data"]["error"], "No query defined");
        assert_eq!(out.state, Some(json!({"seq": 3})));
    }
}
