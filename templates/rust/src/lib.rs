//! {{name}}: one `slo_snapshot` assessment per service in core: each SLO's current SLI from
//! its indicator query, and whether it meets its objective.
//!
//! The logic is written on the SDK's `Host` trait, so `cargo test` runs it natively against
//! `FakeHost`; the wasm component is the same crate built for wasm32-wasip2, wired by the
//! `export_module!` line at the bottom.

use nthlayer_sdk::{ids, time, CycleInput, CycleOutput, Emission, Host, Level, Module, ModuleInfo, Task};
use serde_json::{json, Value};

pub const NAME: &str = "{{name}}";

pub struct Worker;

impl Module for Worker {
    fn describe() -> ModuleInfo {
        ModuleInfo {
            name: NAME.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            tasks: vec![Task::new(NAME, 300, "slo_snapshot per service: current SLI against objective")],
            // Asking is not getting: the operator grants these (--grant {{name}}=core,prometheus).
            needs: vec!["core".into(), "prometheus".into()],
            // Every record kind run_cycle submits: the host refuses any other, and the
            // operator grants these (--grant {{name}}=core,prometheus,assessment:slo_snapshot).
            emits: vec![Emission::assessment("slo_snapshot")],
        }
    }

    fn run_cycle(host: &dyn Host, input: CycleInput) -> Result<CycleOutput, String> {
        if input.task != NAME {
            return Err(format!("unknown task {:?}", input.task));
        }
        let mut seq = input.state.as_ref().and_then(|s| s["seq"].as_u64()).unwrap_or(1);
        let manifests = host.get_manifests().map_err(|e| format!("manifests: {e}"))?;
        let mut emitted = 0;
        for m in manifests.as_array().into_iter().flatten() {
            let Some(service) = m["name"].as_str() else { continue };
            let slos: Vec<Value> = m["slos"].as_array().into_iter().flatten().map(|s| snapshot(host, service, s)).collect();
            let record = json!({
                "id": ids::asm_id(host, seq),
                "created_at": time::iso(host.now()),
                "kind": "slo_snapshot",
                "service": service,
                "producer": format!("nthlayer-{NAME}"),
                "data": {"slos": slos},
            });
            seq += 1;
            match host.submit_assessment(&record, None) {
                Ok(_) => emitted += 1,
                Err(e) => host.log(Level::Warn, "submit failed", &[("service", service), ("error", &e.to_string())]),
            }
        }
        Ok(CycleOutput { state: Some(json!({"seq": seq})), result: None, emitted })
    }
}

/// One SLO: its SLI now (None without a query or data) and whether it meets the objective.
fn snapshot(host: &dyn Host, service: &str, slo: &Value) -> Value {
    let objective = slo["target"].as_f64();
    let sli = slo["indicator_query"].as_str().filter(|q| !q.is_empty()).and_then(|q| {
        let q = q.replace("${service}", service).replace("$service", service);
        let data = host.prom_query(&q, None).ok()?;
        data["result"][0]["value"][1].as_str()?.parse::<f64>().ok()
    });
    let meeting = match (sli, objective) {
        (Some(s), Some(o)) => json!(s * 100.0 >= o),
        _ => Value::Null,
    };
    json!({"name": slo["name"], "objective": slo["target"], "sli": sli, "meeting": meeting})
}

nthlayer_sdk::export_module!(Worker);

#[cfg(test)]
mod tests {
    use super::*;
    use nthlayer_sdk::testing::FakeHost;

    #[test]
    fn one_snapshot_per_service() {
        let host = FakeHost::new().with_manifests(json!([{"name": "checkout", "slos": [
            {"name": "availability", "target": 99.9, "indicator_query": "sli{service=\"$service\"}"},
            {"name": "latency", "target": 99.0}
        ]}]));
        host.set_scalar("sli{service=\"checkout\"}", "0.9995");
        let input = CycleInput { task: NAME.into(), state: None, config: json!({}), args: None };
        let out = Worker::run_cycle(&host, input).unwrap();
        assert_eq!(out.emitted, 1);
        let posted = host.submitted_of_kind("slo_snapshot");
        assert_eq!(posted[0]["data"]["slos"][0]["meeting"], true);
        assert_eq!(posted[0]["data"]["slos"][1]["sli"], Value::Null);
    }
}
