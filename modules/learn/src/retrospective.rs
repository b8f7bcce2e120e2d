//! `learn.retrospective`: one `retrospective` per `correlation_snapshot`.
//!
//! The reference walks the newest-first list with a `<= cursor` skip and moves the cursor to
//! the newest snapshot it writes, so the older snapshots of a page are never written (about one
//! retrospective per cycle). Here new snapshots are written oldest first and a service's mark
//! moves only past what was written (or skipped as malformed); snapshots.rs finds them however
//! many there are, within what core's API can answer. A failed post stops the walk; the next
//! cycle resumes there. At most [`WRITES_PER_CYCLE`] are written a cycle, so a backlog drains
//! over cycles of bounded cost. Ids are derived from the snapshot id, so a snapshot written
//! again after a crash is a 409 in core, not a second retrospective.
//!
//! A snapshot is written `retrospective_delay_seconds` after it was made, because respond
//! opens the incident and writes its verdicts within a cycle or two of the snapshot, and
//! those verdicts belong in the timeline. They have `service: null` (so the reference's
//! same-service query never finds them); they are found as descendants of the snapshot,
//! which respond names as the first verdict's parent.

use std::collections::{HashMap, HashSet};

use nthlayer_sdk::host::HostExt;
use nthlayer_sdk::{time, CycleOutput, Host, VerdictQuery};
use serde_json::{json, Map, Value};

use crate::snapshots::{self, Memo};
use crate::{is_conflict, stable_hex8, text, Config};

const TIMELINE_MAX: usize = 20;

/// Retrospectives (written or skipped) a cycle; each costs three core queries.
pub(crate) const WRITES_PER_CYCLE: usize = 100;

pub(crate) fn run(host: &dyn Host, cfg: &Config, state: Option<&Value>) -> CycleOutput {
    let mut memo = Memo::from_state(state);
    let mut manifests: Option<Option<Vec<Value>>> = None;
    let known: Vec<String> =
        manifest_list(host, &mut manifests).iter().filter_map(|m| text(m, "name").map(str::to_string)).collect();
    let new = match snapshots::due(host, &mut memo, &known) {
        Ok(n) => n,
        Err(e) => {
            host.warn("learn_snapshot_fetch_failed", &[("error", &e.to_string())]);
            return CycleOutput { state: Some(memo.to_state()), result: None, emitted: 0 };
        }
    };
    let now = host.now();
    let (mut written, mut skipped, mut handled) = (0u32, 0u32, 0usize);
    for snap in &new {
        if handled >= WRITES_PER_CYCLE {
            break;
        }
        let (at, id) = (text(snap, "created_at").unwrap_or(""), text(snap, "id").unwrap_or(""));
        if time::parse_iso(at).is_some_and(|t| now - t < cfg.retrospective_delay_seconds as f64) {
            break;
        }
        handled += 1;
        let record = match build(host, snap, &mut manifests) {
            Ok(r) => r,
            Err(why) => {
                host.warn("learn_retrospective_skipped", &[("snapshot_id", id), ("error", &why)]);
                skipped += 1;
                memo.pass(snap);
                continue;
            }
        };
        match host.submit_assessment(&record, None) {
            Ok(_) => {
                written += 1;
                let n = record["data"]["verdict_count"].to_string();
                host.info("retrospective_emitted", &[("snapshot_id", id), ("verdict_count", &n)]);
            }
            Err(e) if is_conflict(&e) => {}
            Err(e) => {
                host.warn("retrospective_submit_failed", &[("snapshot_id", id), ("error", &e.to_string())]);
                break;
            }
        }
        memo.pass(snap);
    }
    let backlog = new.len().saturating_sub(handled);
    CycleOutput {
        state: Some(memo.to_state()),
        result: Some(json!({"written": written, "skipped": skipped, "backlog": backlog})),
        emitted: written,
    }
}

/// The retrospective for one snapshot, or why the snapshot cannot have one.
fn build(host: &dyn Host, snap: &Value, manifests: &mut Option<Option<Vec<Value>>>) -> Result<Value, String> {
    let sid = text(snap, "id").unwrap_or("");
    let data = snap.get("data").filter(|d| d.is_object()).ok_or("snapshot has no data object")?;
    let window = data.get("window").filter(|w| w.is_object()).ok_or("snapshot has no window")?;
    let (Some(opened), Some(closed)) = (text(window, "opened_at"), text(window, "closed_at")) else {
        return Err("snapshot window has no opened_at/closed_at".into());
    };
    let domain_service = data.pointer("/domain/service").and_then(Value::as_str);
    let service = text(snap, "service").or(domain_service.filter(|s| !s.trim().is_empty())).unwrap_or("unknown");
    let trigger = [domain_service, snap.get("service").and_then(Value::as_str)]
        .into_iter()
        .flatten()
        .map(str::trim)
        .find(|s| !s.is_empty());

    // Same-service verdicts in the window (the reference's chain), then the incident's own
    // verdicts (descendants of the snapshot), without outcome resolutions.
    let q = VerdictQuery {
        service: Some(service.to_string()),
        created_after: Some(opened.to_string()),
        created_before: Some(closed.to_string()),
        limit: 1000,
        ..Default::default()
    };
    let chain = list(host, host.query_verdicts(&q), "window", sid);
    let mut ids: HashSet<String> = chain.iter().filter_map(|v| text(v, "id").map(str::to_string)).collect();
    let incident: Vec<Value> = list(host, host.verdict_descendants(sid), "descendants", sid)
        .into_iter()
        .filter(|v| text(v, "type") != Some("outcome_resolution"))
        .filter(|v| text(v, "id").is_none_or(|i| ids.insert(i.to_string())))
        .collect();
    let all: Vec<&Value> = chain.iter().chain(incident.iter()).collect();

    // core never changes a verdict's own outcome; resolutions are `outcome_resolution`
    // verdicts naming it as parent, so coverage looks there too.
    let q = VerdictQuery {
        verdict_type: Some("outcome_resolution".into()),
        created_after: Some(opened.to_string()),
        limit: 1000,
        ..Default::default()
    };
    let resolutions: HashMap<String, String> = list(host, host.query_verdicts(&q), "resolutions", sid)
        .iter()
        .filter_map(|r| {
            let parent = r.get("parent_ids")?.as_array()?.first()?.as_str()?;
            Some((parent.to_string(), text(r, "outcome_status").unwrap_or("confirmed").to_string()))
        })
        .collect();
    let status_of = |v: &Value| -> Value {
        let own = v.pointer("/outcome/status").and_then(Value::as_str);
        let resolved = text(v, "id").and_then(|i| resolutions.get(i));
        match (own, resolved) {
            (Some(s), _) if s != "pending" => json!(s),
            (_, Some(r)) => json!(r),
            (Some(s), None) => json!(s),
            (None, None) => Value::Null,
        }
    };

    let mut sorted = all.clone();
    sorted.sort_by_key(|v| v.get("created_at").and_then(Value::as_str).unwrap_or(""));
    let timeline: Vec<Value> = sorted
        .iter()
        .take(TIMELINE_MAX)
        .map(|v| {
            json!({
                "timestamp": v.get("created_at").cloned().unwrap_or(Value::Null),
                "type": v.get("type").and_then(Value::as_str).unwrap_or("unknown"),
                "service": v.get("service").and_then(Value::as_str).unwrap_or(service),
                "id": v.get("id").cloned().unwrap_or(Value::Null),
                "outcome": status_of(v),
            })
        })
        .collect();
    let resolved = all.iter().filter(|v| !matches!(status_of(v).as_str(), None | Some("pending"))).count();
    let breaches = all.iter().filter(|v| text(v, "type") == Some("quality_breach")).count();
    let blast = data.get("affected_services").cloned().unwrap_or_else(|| json!([]));
    let root_cause = data.get("correlation_groups").and_then(Value::as_array).and_then(|g| g.first()).cloned();
    let duration = data.pointer("/window/duration_seconds").and_then(Value::as_f64).filter(|d| *d != 0.0);

    let mut out = Map::new();
    out.insert("correlation_snapshot_id".into(), json!(sid));
    out.insert("duration_minutes".into(), duration.map(|d| json!(d / 60.0)).unwrap_or(json!(0)));
    out.insert("decisions_affected".into(), json!(breaches));
    out.insert("verdict_count".into(), json!(all.len()));
    out.insert("root_cause".into(), root_cause.unwrap_or(Value::Null));
    out.insert("blast_radius".into(), blast.clone());
    out.insert("timeline".into(), json!(timeline));
    out.insert("recommendations".into(), json!(recommendations(breaches, &blast, chain.len())));
    out.insert(
        "outcome_coverage".into(),
        json!({"resolved": resolved, "pending": all.len() - resolved, "total": all.len()}),
    );
    if let Some(t) = trigger {
        out.insert("trigger_service".into(), json!(t));
        if let Some(deps) = declared_dependencies(host, t, manifests) {
            out.insert("declared_dependencies_by_service".into(), json!({ t: deps }));
        }
    }
    Ok(json!({
        "id": format!("retro-{service}-{}", stable_hex8(&format!("retro:{sid}"))),
        "created_at": time::iso(host.now()),
        "kind": "retrospective",
        "service": service,
        "data": out,
    }))
}

/// The reference's three rules. `change_control` counts only the service's own verdicts in
/// the window: respond writes about five verdicts for every incident, which says nothing
/// about change control.
fn recommendations(breaches: usize, blast: &Value, window_verdicts: usize) -> Vec<Value> {
    let mut r = Vec::new();
    if breaches > 0 {
        r.push(json!({"type": "slo_gate", "detail": "Block model deploys when judgment SLO is breached"}));
    }
    let n = blast.as_array().map_or(0, Vec::len);
    if n > 3 {
        r.push(json!({"type": "dependency_review", "detail": format!("Blast radius of {n} services suggests tight coupling")}));
    }
    if window_verdicts > 5 {
        r.push(json!({"type": "change_control", "detail": "High verdict volume suggests insufficient change control"}));
    }
    r
}

/// The trigger's declared dependencies, from the first manifest of that name (fetched once).
fn declared_dependencies(
    host: &dyn Host,
    trigger: &str,
    cache: &mut Option<Option<Vec<Value>>>,
) -> Option<Vec<String>> {
    let m = manifest_list(host, cache).iter().find(|m| text(m, "name") == Some(trigger))?;
    let deps = m.get("dependencies").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
    Some(deps.iter().filter_map(|d| text(d, "name").map(str::to_string)).collect())
}

/// The manifests, fetched once a cycle (empty if core cannot answer; logged).
fn manifest_list<'a>(host: &dyn Host, cache: &'a mut Option<Option<Vec<Value>>>) -> &'a [Value] {
    let list = cache.get_or_insert_with(|| match host.get_manifests() {
        Ok(Value::Array(a)) => Some(a),
        Ok(_) => None,
        Err(e) => {
            host.warn("learn_manifest_fetch_failed", &[("error", &e.to_string())]);
            None
        }
    });
    list.as_deref().unwrap_or(&[])
}

/// An array answer, or nothing (logged with the snapshot id).
fn list(host: &dyn Host, r: Result<Value, nthlayer_sdk::HostError>, what: &str, sid: &str) -> Vec<Value> {
    match r {
        Ok(Value::Array(a)) => a,
        Ok(_) => Vec::new(),
        Err(e) => {
            host.warn(
                "learn_retrospective_query_failed",
                &[("snapshot_id", sid), ("query", what), ("error", &e.to_string())],
            );
            Vec::new()
        }
    }
}

#[cfg(test)]
#[path = "retrospective_tests.rs"]
mod tests;
