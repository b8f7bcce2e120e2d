//! The `correlate` task: poll → ingest → close → one `correlation_snapshot` per closed
//! window. A cycle started by a wake-up event runs exactly this too: the event only says
//! "look now", the cycle still reads everything from core through the cursor.

use nthlayer_sdk::host::HostExt;
use nthlayer_sdk::{time, CycleInput, CycleOutput, Host, HostError, Level};
use serde_json::{json, Map, Value};

use crate::poll::{self, Cursor};
use crate::summary;
use crate::windows::{micros, Window, Windows};

/// Summaries stop being requested once a cycle has spent this long, so a burst of closing
/// windows cannot push the cycle past the host's wall-clock limit (a cycle cut short delivers
/// none of its snapshots and keeps its previous state, so the same burst, with its LLM calls,
/// would be done again by the retry, and might be cut short again).
pub const SUMMARY_BUDGET_SECONDS: f64 = 60.0;

pub fn run(host: &dyn Host, input: &CycleInput) -> CycleOutput {
    let started = host.now();
    let state = input.state.as_ref();
    let mut cursor = Cursor::from_state(state);
    let mut bad = Vec::new();
    let mut windows = Windows::from_state(state.and_then(|s| s.get("windows")), &mut bad);
    for key in bad {
        host.warn("correlate_window_state_skipped", &[("domain", &key), ("reason", "unparsable timestamps or digest")]);
    }

    let events = poll::poll(host, &cursor);
    cursor.advance(&events);
    let now = host.now();
    for e in events {
        windows.ingest(e, now);
    }

    let mut emitted = 0;
    for w in windows.close_ready(now) {
        let summarise = host.now() - started < SUMMARY_BUDGET_SECONDS;
        match emit(host, &w, summarise) {
            Emit::Done => emitted += 1,
            Emit::Nothing => {}
            // Core unreachable: keep the window, it is still closable next cycle.
            Emit::Retry => windows.0.push(w),
        }
    }

    let mut out = Map::new();
    cursor.write(&mut out);
    out.insert("windows".into(), windows.to_state());
    CycleOutput { state: Some(Value::Object(out)), result: None, emitted }
}

enum Emit {
    Done,
    Nothing,
    Retry,
}

fn emit(host: &dyn Host, w: &Window, summarise: bool) -> Emit {
    if w.digest.count == 0 {
        return Emit::Nothing;
    }
    // Taken before the LLM call, as in the reference: created_at is the close time.
    let now = host.now();
    let mut data = snapshot_data(w, now);
    data["nl_summary"] = if summarise {
        summary::generate(host, &data, &w.digest).unwrap_or(Value::Null)
    } else {
        host.warn("correlate_summary_skipped", &[("domain", &w.key()), ("reason", "cycle summary budget spent")]);
        Value::Null
    };
    let record = json!({
        "id": format!("csn-{}-{}-{}", w.service, w.environment, host.hex8()),
        "created_at": time::iso(now),
        "kind": "correlation_snapshot",
        "service": w.service,
        "data": data,
    });
    let domain = w.key();
    match host.submit_assessment(&record, None) {
        Ok(_) => {
            let n = w.digest.count.to_string();
            let reason = record["data"]["window"]["close_reason"].as_str().unwrap_or_default();
            host.info(
                "correlate_snapshot_emitted",
                &[("domain", &domain), ("event_count", &n), ("close_reason", reason)],
            );
            Emit::Done
        }
        Err(e) => {
            let retry = matches!(e, HostError::Unavailable(_) | HostError::Timeout(_));
            host.log(
                Level::Warn,
                "correlate_snapshot_submit_failed",
                &[("domain", &domain), ("error", &e.to_string()), ("retry", if retry { "true" } else { "false" })],
            );
            if retry {
                Emit::Retry
            } else {
                Emit::Nothing
            }
        }
    }
}

/// The snapshot's `data` without `nl_summary`, keys in the reference's order.
pub fn snapshot_data(w: &Window, now: f64) -> Value {
    let d = &w.digest;
    let types: Map<String, Value> = d.types.iter().map(|(k, n)| (k.clone(), json!(n))).collect();
    json!({
        "domain": {"service": w.service, "environment": w.environment},
        "window": {
            "opened_at": time::iso(w.opened_at),
            "closed_at": time::iso(now),
            "duration_seconds": (micros(now) - micros(w.opened_at)) as f64 / 1e6,
            "close_reason": w.close_reason(now).unwrap_or("unknown"),
        },
        "event_count": d.count,
        "event_types": types,
        "peak_severity": d.peak.unwrap_or(0.0),
        "affected_services": d.services(),
        "environment_source": "default",
        "parent_ids": d.parents,
    })
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
