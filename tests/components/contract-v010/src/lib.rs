//! contract-v010: a module built from the frozen `wit/nthlayer-worker@0.1.0/` with raw
//! wit-bindgen bindings, not through the SDK (the SDK follows the newest contract). It must
//! keep loading and running on every host that serves 0.1.0, so it exercises the imports a
//! 0.1.0 host had to offer: log, prometheus query, core submit and query. Task
//! `contract-v010` every 2 s: queries `vector(42)`, submits a `contract_probe` assessment
//! carrying the answer, reads the previous cycle's back, and keeps `{"n", "prom", "id",
//! "seen"}` as state.

wit_bindgen::generate!({ world: "worker", path: "../../../wit/nthlayer-worker@0.1.0" });

use nthlayer::worker::log::{log, Level};
use nthlayer::worker::core::AssessmentQuery;
use nthlayer::worker::types::{HostError, Task};
use nthlayer::worker::prometheus;
use nthlayer::worker::core as nl_core;
use serde_json::{json, Value};

struct V010;

fn err(e: HostError) -> String {
    format!("{e:?}")
}

/// `YYYY-MM-DDTHH:MM:SS.ffffff+00:00` from the WASI clock (days → civil date, H. Hinnant).
fn now_iso() -> String {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let (secs, micros) = (d.as_secs() as i64, d.subsec_micros());
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{micros:06}+00:00")
}

/// The value of the first sample of an instant-query answer (`{"result":[{"value":[t,"42"]}]}`).
fn first_value(data: &str) -> Option<String> {
    let v: Value = serde_json::from_str(data).ok()?;
    v["result"][0]["value"][1].as_str().map(str::to_string)
}

impl Guest for V010 {
    fn describe() -> ModuleInfo {
        ModuleInfo {
            name: "contract-v010".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            tasks: vec![Task {
                name: "contract-v010".into(),
                interval_seconds: 2,
                summary: "exercises the 0.1.0 imports".into(),
            }],
            needs: vec!["core".into(), "prometheus".into()],
        }
    }

    fn run_cycle(input: CycleInput) -> Result<CycleOutput, String> {
        let state: Value = input.state.as_deref().and_then(|s| serde_json::from_str(s).ok()).unwrap_or(Value::Null);
        let n = state["n"].as_u64().unwrap_or(0) + 1;
        log(Level::Info, &format!("v010 cycle {n}"), &[("n".into(), n.to_string())]);
        let prom = prometheus::query("vector(42)", None).map_err(err).and_then(|d| first_value(&d).ok_or(d));
        let prom = match prom {
            Ok(v) => v,
            Err(e) => return Err(format!("prometheus query failed: {e}")),
        };
        let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_micros();
        let record = json!({
            "id": format!("asm-contract-v010-{secs}-{n}"),
            "created_at": now_iso(),
            "kind": "contract_probe",
            "service": "contract-v010",
            "data": {"n": n, "prom": prom, "contract": "0.1.0"},
        });
        let id = nl_core::submit_assessment(&record.to_string(), None).map_err(err)?;
        // A record is in core once its cycle has committed (docs/OUTBOX.md), so the read-back
        // looks for the previous cycle's record.
        let q = AssessmentQuery { service: Some("contract-v010".into()), kind: Some("contract_probe".into()), limit: 5 };
        let seen = nl_core::query_assessments(&q).map_err(err)?;
        let seen: Value = serde_json::from_str(&seen).map_err(|e| e.to_string())?;
        let seen = seen.as_array().is_some_and(|a| a.iter().any(|r| r["id"] == state["id"]));
        Ok(CycleOutput {
            state: Some(json!({"n": n, "prom": prom, "id": id, "seen": seen}).to_string()),
            result: None,
            emitted: 1,
        })
    }
}

export!(V010);
