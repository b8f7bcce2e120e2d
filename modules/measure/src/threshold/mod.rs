//! The judgment-threshold phase: on its own cadence (900 s by default) every served
//! threshold is sampled, decided and run through its hysteresis; an assessment is emitted
//! when something changed (or on the heartbeat) and a firing breach raises a
//! `vrd-tbreach-` quality_breach. Cycles in between only re-key and retire.

pub mod entries;
pub mod entry;
pub mod hysteresis;
pub mod outcome;
pub mod sample;

use std::collections::BTreeMap;

use nthlayer_sdk::host::HostExt;
use nthlayer_sdk::{time, Host, HostError, Level};
use serde_json::{json, Value};

use crate::knobs::{Knobs, EVAL_CONCURRENCY};
use crate::state::State;
use entries::{collect, migrate, retire, Entry};
use entry::{bounds_digest, threshold_key};
use hysteresis::{as_timestamp, KeyState, REARM_INTERVALS};
use sample::{measure, needs_retention, plan, retention, Plan, RETENTION_QUERY};

/// A run stops starting queries after this long, so a hanging Prometheus cannot hold the
/// measure cycle; entries not reached keep their state.
pub const PHASE_TIMEOUT_SECONDS: f64 = 120.0;
/// Threshold breaches are always "high".
pub const BREACH_SEVERITY: &str = "high";

/// A breach core accepted this run: (threshold key, service, verdict id).
pub type Breach = (String, String, String);

#[derive(Default)]
pub struct PhaseResult {
    pub breaches: Vec<Breach>,
    /// (old, new) threshold keys whose state moved.
    pub renamed: Vec<(String, String)>,
    pub emitted: u32,
}

/// Runs the phase when due (never run, the clock went back, or an interval has passed);
/// otherwise only re-keys and retires, since `/manifests` is fresh every cycle.
pub fn maybe_run(host: &dyn Host, knobs: &Knobs, manifests: &[Value], st: &mut State) -> PhaseResult {
    let now = host.now();
    let due = st.threshold_last_run.is_none_or(|last| now < last || now - last >= knobs.threshold_interval);
    let (present, entries, problems) = collect(manifests);
    let mut out = PhaseResult { renamed: migrate(&mut st.threshold_state, &entries), ..PhaseResult::default() };
    if !due {
        retire_logged(host, st, &present, &entries);
        return out;
    }
    // Advanced before the run, so even a run that fails retries after one interval.
    st.threshold_last_run = Some(now);
    let rotation = st.threshold_rotation;
    st.threshold_rotation = st.threshold_rotation.wrapping_add(1);
    for (at, service, error) in &problems {
        host.log(Level::Warn, "threshold_skipped", &[("service", service), ("where", at), ("error", error)]);
    }
    let finished = run(host, knobs, &entries, st, now, rotation as usize, &mut out);
    if finished {
        retire_logged(host, st, &present, &entries);
    }
    out
}

fn retire_logged(host: &dyn Host, st: &mut State, present: &std::collections::BTreeSet<String>, entries: &[Entry]) {
    for key in retire(&mut st.threshold_state, present, entries) {
        host.info("threshold_retired", &[("key", &key)]);
    }
}

/// Samples and evaluates every entry, starting at `rotation`. Returns false when the time
/// budget cut the run short.
fn run(
    host: &dyn Host,
    knobs: &Knobs,
    entries: &[Entry],
    st: &mut State,
    now: f64,
    rotation: usize,
    out: &mut PhaseResult,
) -> bool {
    if entries.is_empty() {
        return true;
    }
    let retention = (knobs.retention_check && entries.iter().any(|e| needs_retention(&e.t)))
        .then(|| retention(&host.prom_query(RETENTION_QUERY, None), now));
    let start = rotation % entries.len();
    let ordered: Vec<&Entry> = entries[start..].iter().chain(&entries[..start]).collect();
    let plans: Vec<Vec<(String, Plan)>> =
        ordered.iter().map(|e| plan(&e.service, &e.t, now, retention.as_ref())).collect();
    let mut queries: Vec<String> = Vec::new();
    for q in plans.iter().flatten().filter_map(|(_, p)| p.query()) {
        if !queries.iter().any(|x| x == q) {
            queries.push(q.to_string());
        }
    }
    let mut answers: BTreeMap<String, Result<Value, HostError>> = BTreeMap::new();
    let began = host.now();
    let mut cut = false;
    for chunk in queries.chunks(EVAL_CONCURRENCY) {
        if host.now() - began >= PHASE_TIMEOUT_SECONDS {
            cut = true;
            break;
        }
        for (q, a) in chunk.iter().zip(host.prom_query_batch(chunk, None)) {
            answers.insert(q.clone(), a);
        }
    }
    let mut unreached = 0;
    for (e, plan) in ordered.iter().zip(&plans) {
        if plan.iter().any(|(_, p)| p.query().is_some_and(|q| !answers.contains_key(q))) {
            unreached += 1;
            continue;
        }
        let samples: Vec<_> =
            plan.iter().map(|(b, p)| (b.clone(), measure(p, p.query().and_then(|q| answers.get(q))))).collect();
        evaluate_entry(host, knobs, e, &samples, st, now, out);
    }
    if cut {
        let n = unreached.to_string();
        host.warn(
            "threshold_phase_timeout",
            &[("unreached", &n), ("accepted_breaches", &out.breaches.len().to_string())],
        );
    }
    !cut
}

/// Decides one entry, advances its hysteresis, reports, and records its new state only once
/// everything it owes core was delivered (a rejected breach re-fires next run).
fn evaluate_entry(
    host: &dyn Host,
    knobs: &Knobs,
    e: &Entry,
    samples: &[(String, sample::Sample)],
    st: &mut State,
    now: f64,
    out: &mut PhaseResult,
) {
    let o = outcome::evaluate(&e.t, samples);
    let prev = st.threshold_state.get(&e.key);
    let rearm = REARM_INTERVALS as f64 * knobs.threshold_interval;
    let (next, fire) = KeyState::from_value(prev).advance(o.status, now, rearm);
    let signature = o.signature();
    let mut last_signature = prev.and_then(|p| p.get("last_signature")).cloned().unwrap_or(Value::Null);
    let mut last_emitted_at = prev.and_then(|p| p.get("last_emitted_at")).and_then(as_timestamp);
    let emit = fire
        || last_signature.as_str() != Some(signature.as_str())
        || last_emitted_at.is_none_or(|t| t > now || now - t >= knobs.threshold_heartbeat);
    let (service, ttype) = (e.service.as_str(), e.t.ttype.as_str());
    let jte_id = format!("jte-{service}-{ttype}-{}", host.hex8());
    if emit {
        let record = json!({
            "id": jte_id,
            "created_at": time::iso(host.now()),
            "kind": "judgment_threshold_evaluation",
            "service": service,
            "data": {"threshold_key": e.key, "outcome": o.to_value()},
        });
        match host.submit_assessment(&record, None) {
            Ok(_) => {
                out.emitted += 1;
                last_signature = Value::String(signature);
                last_emitted_at = Some(now);
            }
            Err(err) => host.warn(
                "threshold_assessment_submit_failed",
                &[("service", service), ("key", &e.key), ("assessment_id", &jte_id), ("error", &err.to_string())],
            ),
        }
    }
    if fire {
        let breach_id = format!("vrd-tbreach-{service}-{ttype}-{}", host.hex8());
        let (breaching_bounds, summary) = o.breach_readout(service);
        let verdict = json!({
            "id": breach_id,
            "created_at": time::iso(host.now()),
            "type": "quality_breach",
            "service": service,
            "parent_ids": [jte_id],
            "data": {
                "threshold_key": e.key, "threshold_type": ttype, "severity": BREACH_SEVERITY,
                "outcome": o.to_value(), "breaching_bounds": breaching_bounds, "summary": summary,
            },
        });
        if let Err(err) = host.submit_verdict(&verdict, None) {
            host.warn(
                "threshold_breach_submit_failed",
                &[("service", service), ("key", &e.key), ("error", &err.to_string())],
            );
            return;
        }
        out.emitted += 1;
        out.breaches.push((e.key.clone(), service.to_string(), breach_id));
    }
    let mut v = next.to_value();
    let obj = v.as_object_mut().expect("KeyState is an object");
    obj.insert("service".into(), service.into());
    obj.insert("base".into(), threshold_key(service, &e.t).into());
    obj.insert("bounds_digest".into(), bounds_digest(&e.t).into());
    obj.insert("last_signature".into(), last_signature);
    obj.insert("last_emitted_at".into(), json!(last_emitted_at));
    st.threshold_state.insert(e.key.clone(), v);
}
