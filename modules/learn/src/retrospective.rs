//! `learn.retrospective`: one `retrospective` per `correlation_snapshot`.
//!
//! The reference walks the newest-first list with a `<= cursor` skip and moves the cursor to
//! the newest snapshot it writes, so the older snapshots of a page are never written (about one
//! retrospective per cycle). Here new snapshots are written oldest first and the cursor moves
//! only past what was written (or skipped as malformed): `cursor` is the newest written
//! `created_at`, `at_cursor` the ids written at exactly that instant. A failed post stops the
//! walk; the next cycle resumes there. Ids are derived from the snapshot id, so a snapshot
//! written again after a crash is a 409 in core, not a second retrospective.
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

use crate::{is_conflict, stable_hex8, text, Config};

const TIMELINE_MAX: usize = 20;

#[derive(Debug, Default, Clone, PartialEq)]
struct Memo {
    cursor: Option<String>,
    at_cursor: Vec<String>,
}

impl Memo {
    fn from_state(state: Option<&Value>) -> Self {
        let s = state.cloned().unwrap_or(Value::Null);
        Memo {
            cursor: s.get("cursor").and_then(Value::as_str).map(str::to_string),
            at_cursor: s
                .get("at_cursor")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
                .unwrap_or_default(),
        }
    }

    fn to_state(&self) -> Value {
        let mut s = Map::new();
        if let Some(c) = &self.cursor {
            s.insert("cursor".into(), json!(c));
        }
        s.insert("at_cursor".into(), json!(self.at_cursor));
        Value::Object(s)
    }

    fn is_new(&self, at: &str, id: &str) -> bool {
        match self.cursor.as_deref() {
            None => true,
            Some(c) => at > c || (at == c && !self.at_cursor.iter().any(|i| i == id)),
        }
    }

    fn pass(&mut self, at: &str, id: &str) {
        if self.cursor.as_deref() != Some(at) {
            self.cursor = Some(at.to_string());
            self.at_cursor.clear();
        }
        self.at_cursor.push(id.to_string());
    }
}

pub(crate) fn run(host: &dyn Host, cfg: &Config, state: Option<&Value>) -> CycleOutput {
    let mut memo = Memo::from_state(state);
    let snaps = match host.query_assessments(None, Some("correlation_snapshot"), 1000) {
        Ok(Value::Array(a)) => a,
        Ok(_) => Vec::new(),
        Err(e) => {
            host.warn("learn_snapshot_fetch_failed", &[("error", &e.to_string())]);
            return CycleOutput { state: Some(memo.to_state()), result: None, emitted: 0 };
        }
    };
    let mut new: Vec<&Value> = snaps
        .iter()
        .filter(|s| matches!((text(s, "created_at"), text(s, "id")), (Some(at), Some(id)) if memo.is_new(at, id)))
        .collect();
    new.sort_by_key(|s| (text(s, "created_at"), text(s, "id")));
    let now = host.now();
    let mut manifests: Option<Option<Vec<Value>>> = None;
    let (mut written, mut skipped) = (0u32, 0u32);
    for snap in new {
        let (at, id) = (text(snap, "created_at").unwrap_or(""), text(snap, "id").unwrap_or(""));
        if time::parse_iso(at).is_some_and(|t| now - t < cfg.retrospective_delay_seconds as f64) {
            break;
        }
        let record = match build(host, snap, &mut manifests) {
            Ok(r) => r,
            Err(why) => {
                host.warn("learn_retrospective_skipped", &[("snapshot_id", id), ("error", &why)]);
                skipped += 1;
                memo.pass(at, id);
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
        memo.pass(at, id);
    }
    CycleOutput {
        state: Some(memo.to_state()),
        result: Some(json!({"written": written, "skipped": skipped, "cursor": memo.cursor})),
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
    let list = cache.get_or_insert_with(|| match host.get_manifests() {
        Ok(Value::Array(a)) => Some(a),
        Ok(_) => None,
        Err(e) => {
            host.warn("learn_manifest_fetch_failed", &[("error", &e.to_string())]);
            None
        }
    });
    let m = list.as_ref()?.iter().find(|m| text(m, "name") == Some(trigger))?;
    let deps = m.get("dependencies").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
    Some(deps.iter().filter_map(|d| text(d, "name").map(str::to_string)).collect())
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
