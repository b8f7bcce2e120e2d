//! Trigger ingestion: correlation snapshots (primary) and orphan quality breaches
//! (fallback), each opening at most one incident per situation.
//!
//! Dedup, beyond the reference's snapshot-id check: a snapshot whose breach ids already
//! belong to an incident joins that incident instead of opening another (correlate may
//! re-emit a snapshot for the same breach), and all of it survives restarts via state.

use nthlayer_sdk::{time, Host, Level, VerdictQuery};
use serde_json::{json, Map, Value};

use crate::config::RespondConfig;
use crate::ids;
use crate::incident::{Incident, State};

/// Merged snapshot ids remembered per incident (older ones are still deduplicated by
/// their breach ids and the snapshot cursor).
const MERGED_KEPT: usize = 20;

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Ingested {
    pub opened: u32,
    pub merged: u32,
    pub duplicates: u32,
    pub cases: u32,
}

fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn id_list(v: &Value) -> Vec<String> {
    v.as_array().map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect()).unwrap_or_default()
}

/// `str()` of a JSON value as Python would print it in an f-string.
fn py_str(v: Option<&Value>, default: &str) -> String {
    match v {
        None | Some(Value::Null) => default.to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => if *b { "True" } else { "False" }.to_string(),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(f) if !n.is_i64() && !n.is_u64() => nthlayer_sdk::py::repr(f),
            _ => n.to_string(),
        },
        Some(other) => other.to_string(),
    }
}

/// Polls snapshots newer than the cursor, oldest first. Returns the unfiltered page too:
/// the fallback skips breaches that a snapshot on it already carries.
pub fn snapshots(host: &dyn Host, cfg: &RespondConfig, st: &mut State, out: &mut Ingested) -> Vec<Value> {
    let page = match host.query_assessments(None, Some("correlation_snapshot"), 100) {
        Ok(Value::Array(a)) => a,
        Ok(_) => Vec::new(),
        Err(e) => {
            host.log(Level::Warn, "respond_snapshot_poll_failed", &[("error", &e.to_string())]);
            return Vec::new();
        }
    };
    let mut fresh: Vec<&Value> = page
        .iter()
        .filter(|s| match (str_of(s, "created_at"), &st.snapshot_after) {
            (Some(at), Some(after)) => at > after.as_str(),
            (Some(_), None) => true,
            (None, _) => false,
        })
        .collect();
    fresh.sort_by(|a, b| str_of(a, "created_at").cmp(&str_of(b, "created_at")));
    for snap in fresh {
        let (Some(id), Some(at)) = (str_of(snap, "id"), str_of(snap, "created_at")) else { continue };
        ingest_snapshot(host, cfg, st, snap, id, out);
        st.snapshot_after = Some(at.to_string());
    }
    page
}

fn ingest_snapshot(host: &dyn Host, cfg: &RespondConfig, st: &mut State, snap: &Value, id: &str, out: &mut Ingested) {
    if let Some(i) = st.owner_of(id) {
        out.duplicates += 1;
        let inc = &st.incidents[i].id;
        host.log(Level::Info, "respond_snapshot_duplicate", &[("snapshot_id", id), ("incident_id", inc)]);
        return;
    }
    let data = snap.get("data").filter(|d| d.is_object()).cloned().unwrap_or_else(|| json!({}));
    let breaches = id_list(&data["parent_ids"]);
    if let Some(i) = breaches.iter().find_map(|b| st.owner_of(b)) {
        // Kept apart from trigger_verdict_ids (the verdicts' lineage context), and capped:
        // a correlate that re-emits every cycle must not grow the incident without bound.
        let inc = &mut st.incidents[i];
        let mut merged = id_list(inc.metadata.get("merged_snapshot_ids").unwrap_or(&Value::Null));
        merged.push(id.to_string());
        let skip = merged.len().saturating_sub(MERGED_KEPT);
        let count = inc.metadata.get("merged_snapshots").and_then(Value::as_u64).unwrap_or(0) + 1;
        inc.metadata.insert("merged_snapshot_ids".into(), json!(merged[skip..]));
        inc.metadata.insert("merged_snapshots".into(), json!(count));
        out.merged += 1;
        host.log(Level::Info, "respond_snapshot_merged", &[("snapshot_id", id), ("incident_id", &inc.id)]);
        return;
    }
    let domain_service = str_of(&data["domain"], "service");
    let service = domain_service.or(str_of(snap, "service")).unwrap_or("unknown").to_string();
    let mut affected = id_list(&data["affected_services"]);
    if affected.is_empty() {
        affected.push(domain_service.unwrap_or("unknown").to_string());
    }
    let at = str_of(snap, "created_at").and_then(time::parse_iso).unwrap_or_else(|| host.now());
    let inc_id = ids::incident_id(&service, id, at);
    if !snap.get("data").is_some_and(Value::is_object) {
        host.log(
            Level::Warn,
            "respond_snapshot_without_data",
            &[("snapshot_id", id), ("incident_id", &inc_id), ("service", &service)],
        );
    }
    let now = time::iso(host.now());
    let mut metadata = Map::new();
    metadata
        .insert("blast_radius".into(), data.get("blast_radius").filter(|b| !b.is_null()).cloned().unwrap_or(json!([])));
    metadata.insert("correlation_summary".into(), data.get("nl_summary").cloned().unwrap_or(Value::Null));
    metadata.insert("peak_severity".into(), data.get("peak_severity").cloned().unwrap_or(Value::Null));
    metadata.insert("event_count".into(), data.get("event_count").cloned().unwrap_or(Value::Null));
    metadata.insert("affected_services".into(), data.get("affected_services").cloned().unwrap_or(json!([])));
    metadata.insert("escalation_threshold".into(), json!(cfg.escalation_threshold));
    let mut triggers = vec![id.to_string()];
    triggers.extend(breaches.iter().cloned());
    let inc = Incident {
        id: inc_id.clone(),
        created_at: now.clone(),
        updated_at: now.clone(),
        trigger_source: "nthlayer-correlate".into(),
        trigger_at: time::iso(at),
        trigger_verdict_ids: triggers,
        topology: topology(host, &inc_id, &affected),
        metadata,
        ..Incident::default()
    };
    host.log(Level::Info, "respond_incident_opened", &[("incident_id", &inc_id), ("snapshot_id", id)]);
    st.incidents.push(inc);
    out.opened += 1;
    let Some(anchor) = breaches.first() else {
        // Core requires an underlying verdict; a snapshot with no breach has none to anchor.
        host.log(
            Level::Warn,
            "respond_case_create_skipped_no_anchor",
            &[("incident_id", &inc_id), ("snapshot_id", id)],
        );
        return;
    };
    let environment = str_of(&data["domain"], "environment").unwrap_or("production");
    let briefing =
        data["nl_summary"]["summary"].as_str().filter(|s| !s.is_empty()).map(str::to_string).unwrap_or_else(|| {
            format!("Correlation snapshot: {} event(s) on {service}", py_str(data.get("event_count"), "0"))
        });
    let case_service = domain_service.unwrap_or(&affected[0]).to_string();
    if create_case(host, &inc_id, &now, anchor, &case_service, environment, &briefing) {
        out.cases += 1;
    }
}

/// Tier per service from its manifest; a failed lookup is logged and counts as standard.
fn topology(host: &dyn Host, incident_id: &str, services: &[String]) -> Value {
    let list: Vec<Value> = services
        .iter()
        .map(|svc| {
            let tier = match host.get_manifest(svc) {
                Ok(m) => str_of(&m, "tier").unwrap_or("standard").to_string(),
                Err(e) => {
                    host.log(
                        Level::Warn,
                        "respond_manifest_lookup_failed",
                        &[("incident_id", incident_id), ("service", svc), ("error", &e.to_string())],
                    );
                    "standard".to_string()
                }
            };
            json!({"name": svc, "tier": tier})
        })
        .collect();
    json!({ "services": list })
}

/// `POST /cases`. A 409 means this incident's case already exists (a replayed open after a
/// restart): fine. Any other failure is logged; the incident goes on without a case.
fn create_case(
    host: &dyn Host,
    incident_id: &str,
    created_at: &str,
    underlying: &str,
    service: &str,
    environment: &str,
    briefing: &str,
) -> bool {
    let case = json!({
        "id": format!("case-{incident_id}"),
        "kind": "incident",
        "created_at": created_at,
        "underlying_verdict": underlying,
        "service": service,
        "blast_radius": environment,
        "has_active_incident": true,
        "briefing": briefing,
    });
    match host.create_case(&case) {
        Ok(_) => true,
        Err(nthlayer_sdk::HostError::Rejected { status: 409, .. }) => {
            host.log(Level::Info, "respond_case_exists", &[("incident_id", incident_id)]);
            false
        }
        Err(e) => {
            host.log(
                Level::Warn,
                "respond_case_create_failed",
                &[("incident_id", incident_id), ("error", &e.to_string())],
            );
            false
        }
    }
}

/// Orphan breaches: quality_breach verdicts older than the fallback threshold that no
/// snapshot picked up.
pub fn fallback(host: &dyn Host, cfg: &RespondConfig, st: &mut State, page: &[Value], out: &mut Ingested) {
    let cutoff = time::iso(host.now() - cfg.fallback_threshold_seconds);
    if st.breach_after.as_deref().is_some_and(|a| a >= cutoff.as_str()) {
        return;
    }
    let q = VerdictQuery {
        verdict_type: Some("quality_breach".into()),
        created_before: Some(cutoff),
        created_after: st.breach_after.clone(),
        limit: 100,
        ..VerdictQuery::default()
    };
    let mut list = match host.query_verdicts(&q) {
        Ok(Value::Array(a)) => a,
        Ok(_) => Vec::new(),
        Err(e) => {
            host.log(Level::Warn, "respond_breach_poll_failed", &[("error", &e.to_string())]);
            return;
        }
    };
    list.sort_by(|a, b| str_of(a, "created_at").cmp(&str_of(b, "created_at")));
    let carried: Vec<String> = page.iter().flat_map(|s| id_list(&s["data"]["parent_ids"])).collect();
    for breach in &list {
        let (Some(id), Some(at)) = (str_of(breach, "id"), str_of(breach, "created_at")) else { continue };
        if st.owner_of(id).is_none() && !carried.iter().any(|c| c == id) {
            open_from_breach(host, cfg, st, breach, id, out);
        }
        st.breach_after = Some(at.to_string());
    }
}

fn open_from_breach(
    host: &dyn Host,
    cfg: &RespondConfig,
    st: &mut State,
    breach: &Value,
    id: &str,
    out: &mut Ingested,
) {
    let service =
        str_of(breach, "service").or_else(|| str_of(&breach["subject"], "service")).unwrap_or("unknown").to_string();
    let data = breach.get("data").cloned().unwrap_or(Value::Null);
    let at = str_of(breach, "created_at").and_then(time::parse_iso).unwrap_or_else(|| host.now());
    let inc_id = ids::incident_id(&service, id, at);
    let now = time::iso(host.now());
    let severity = breach.get("severity").filter(|v| crate::truthy(v)).or_else(|| data.get("severity")).cloned();
    let mut metadata = Map::new();
    metadata.insert("fallback_reason".into(), json!("no_correlation_snapshot"));
    metadata.insert("severity".into(), severity.unwrap_or(Value::Null));
    metadata.insert("escalation_threshold".into(), json!(cfg.escalation_threshold));
    let inc = Incident {
        id: inc_id.clone(),
        created_at: now.clone(),
        updated_at: now.clone(),
        trigger_source: "nthlayer-measure-fallback".into(),
        trigger_at: time::iso(at),
        trigger_verdict_ids: vec![id.to_string()],
        topology: topology(host, &inc_id, std::slice::from_ref(&service)),
        metadata,
        ..Incident::default()
    };
    host.log(Level::Info, "respond_incident_opened", &[("incident_id", &inc_id), ("breach_id", id)]);
    st.incidents.push(inc);
    out.opened += 1;
    let briefing = if data.get("threshold_key").is_some() {
        match data["summary"].as_str().filter(|s| !s.is_empty()) {
            Some(s) => s.to_string(),
            None => format!("{} threshold breach on {service}", py_str(data.get("threshold_type"), "unknown")),
        }
    } else {
        format!(
            "{} breach on {service}: {} vs target {}",
            py_str(data.get("slo_name"), "unknown"),
            py_str(data.get("current_value"), "?"),
            py_str(data.get("target"), "?")
        )
    };
    if create_case(host, &inc_id, &now, id, &service, "production", &briefing) {
        out.cases += 1;
    }
}
