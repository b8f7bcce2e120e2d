//! Event-wake test components (wake rules since contract 0.2.0; built on the newest SDK), one
//! crate built two ways (variants.txt):
//! - `wake-emitter` (feature `emitter`): task `wake-emitter` every 3 s posts a
//!   `quality_breach` verdict for service `wake-svc`, severity "high" on odd cycles and
//!   "low" on even ones.
//! - `wake-subscriber` (feature `subscriber`): task `wake-subscriber` every hour, woken by
//!   `quality_breach` verdicts of severity "high". Each cycle reads the newest breach and
//!   posts a `correlation_snapshot` naming it, with the time from the breach's creation to
//!   this snapshot (`latency_ms`): the wake latency, measured between two records in core.

use nthlayer_sdk::serde_json::{json, Value};
use nthlayer_sdk::{export_module, time, CycleInput, CycleOutput, Host, HostError, Level, Module, ModuleInfo, Task};

const SERVICE: &str = "wake-svc";

fn n_of(input: &CycleInput) -> u64 {
    input.state.as_ref().and_then(|s| s.get("n")).and_then(Value::as_u64).unwrap_or(0) + 1
}

fn e(err: HostError) -> String {
    format!("{err:?}")
}

#[cfg(feature = "emitter")]
pub struct Emitter;

#[cfg(feature = "emitter")]
impl Module for Emitter {
    fn describe() -> ModuleInfo {
        ModuleInfo {
            name: "wake-emitter".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            tasks: vec![Task::new("wake-emitter", 3, "posts quality_breach verdicts")],
            needs: vec!["core".into()],
            emits: vec![nthlayer_sdk::Emission::verdict("quality_breach")],
        }
    }

    fn run_cycle(host: &dyn Host, input: CycleInput) -> Result<CycleOutput, String> {
        let n = n_of(&input);
        let now = host.now();
        let severity = if n % 2 == 1 { "high" } else { "low" };
        let verdict = json!({
            "id": format!("vrd-wake-{}-{n}", (now * 1e6) as u64),
            "type": "quality_breach",
            "created_at": time::iso(now),
            "service": SERVICE,
            "data": {"n": n, "severity": severity},
        });
        let id = host.submit_verdict(&verdict, None).map_err(e)?;
        host.log(Level::Info, "breach posted", &[("id", &id), ("severity", severity)]);
        Ok(CycleOutput { state: Some(json!({ "n": n })), result: None, emitted: 1 })
    }
}

#[cfg(feature = "emitter")]
export_module!(Emitter);

#[cfg(feature = "subscriber")]
pub struct Subscriber;

#[cfg(feature = "subscriber")]
impl Module for Subscriber {
    fn describe() -> ModuleInfo {
        use nthlayer_sdk::WakeOn;
        ModuleInfo {
            name: "wake-subscriber".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            tasks: vec![Task::new("wake-subscriber", 3600, "snapshots the newest breach when woken")
                .woken_by(WakeOn::verdict("quality_breach").where_any_of("data.severity", &["high"]))],
            needs: vec!["core".into()],
            emits: vec![nthlayer_sdk::Emission::assessment("correlation_snapshot")],
        }
    }

    fn run_cycle(host: &dyn Host, input: CycleInput) -> Result<CycleOutput, String> {
        let n = n_of(&input);
        let q = nthlayer_sdk::VerdictQuery {
            service: Some(SERVICE.into()),
            verdict_type: Some("quality_breach".into()),
            created_after: None,
            created_before: None,
            limit: 1,
        };
        let newest = host.query_verdicts(&q).map_err(e)?;
        let trigger = newest.get(0).cloned().unwrap_or(Value::Null);
        let now = host.now();
        let latency_ms = trigger["created_at"].as_str().and_then(time::parse_iso).map(|t| ((now - t) * 1000.0).round());
        let snapshot = json!({
            "id": format!("asm-wake-snapshot-{}-{n}", (now * 1e6) as u64),
            "kind": "correlation_snapshot",
            "created_at": time::iso(now),
            "service": SERVICE,
            "data": {
                "n": n,
                "trigger_id": trigger["id"],
                "trigger_severity": trigger["data"]["severity"],
                "latency_ms": latency_ms,
            },
        });
        host.submit_assessment(&snapshot, None).map_err(e)?;
        let latency = latency_ms.map(|l| l.to_string()).unwrap_or_default();
        host.log(Level::Info, "snapshot posted", &[("n", &n.to_string()), ("latency_ms", &latency)]);
        Ok(CycleOutput { state: Some(json!({ "n": n })), result: None, emitted: 1 })
    }
}

#[cfg(feature = "subscriber")]
export_module!(Subscriber);
