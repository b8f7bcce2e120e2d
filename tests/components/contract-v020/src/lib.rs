//! contract-v020: a module built from the frozen `wit/nthlayer-worker@0.2.0/` with raw
//! wit-bindgen bindings, not through the SDK (the SDK follows the newest contract). It must
//! keep loading and running on every host that serves 0.2.0, so it exercises what 0.2.0
//! added: a wake subscription. Task `contract-v020` runs hourly and is woken by every
//! `contract_probe` assessment (contract-v010 posts one every 2 s); each cycle reads the
//! newest probe, submits a `contract_wake` assessment naming it (0.2.0 modules declare no
//! emissions: it may emit what it is granted), and keeps `{"n", "probe", "id"}` as state.

wit_bindgen::generate!({ world: "worker", path: "../../../wit/nthlayer-worker@0.2.0" });

use nthlayer::worker::core as nl_core;
use nthlayer::worker::core::AssessmentQuery;
use nthlayer::worker::log::{log, Level};
use nthlayer::worker::types::{HostError, RecordKind, Task, WakeOn};
use serde_json::{json, Value};

struct V020;

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

impl Guest for V020 {
    fn describe() -> ModuleInfo {
        ModuleInfo {
            name: "contract-v020".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            tasks: vec![Task {
                name: "contract-v020".into(),
                interval_seconds: 3600,
                summary: "woken by contract_probe assessments (0.2.0 wake)".into(),
                wake: vec![WakeOn { record: RecordKind::Assessment, kind: "contract_probe".into(), where_: vec![] }],
            }],
            needs: vec!["core".into()],
        }
    }

    fn run_cycle(input: CycleInput) -> Result<CycleOutput, String> {
        let state: Value = input.state.as_deref().and_then(|s| serde_json::from_str(s).ok()).unwrap_or(Value::Null);
        let n = state["n"].as_u64().unwrap_or(0) + 1;
        log(Level::Info, &format!("v020 cycle {n}"), &[("n".into(), n.to_string())]);
        let q =
            AssessmentQuery { service: Some("contract-v010".into()), kind: Some("contract_probe".into()), limit: 1 };
        let probes: Value =
            serde_json::from_str(&nl_core::query_assessments(&q).map_err(err)?).map_err(|e| e.to_string())?;
        let probe = probes[0]["id"].as_str().unwrap_or_default().to_string();
        let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_micros();
        let record = json!({
            "id": format!("asm-contract-v020-{secs}-{n}"),
            "created_at": now_iso(),
            "kind": "contract_wake",
            "service": "contract-v020",
            "data": {"n": n, "probe": probe, "contract": "0.2.0"},
        });
        let id = nl_core::submit_assessment(&record.to_string(), None).map_err(err)?;
        Ok(CycleOutput { state: Some(json!({"n": n, "probe": probe, "id": id}).to_string()), result: None, emitted: 1 })
    }
}

export!(V020);
