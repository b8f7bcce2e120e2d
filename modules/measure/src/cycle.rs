//! One measure cycle, in the reference's phase order: evaluate judgment SLOs, run the
//! threshold phase, raise breaches on transitions into breach, govern autonomy, then clear
//! recovered breaches and carry forward what was not evaluated.

use nthlayer_sdk::host::HostExt;
use nthlayer_sdk::{CycleInput, CycleOutput, Host};
use serde_json::{json, Map, Value};

use crate::governance::{reduce, severity, step};
use crate::knobs::Knobs;
use crate::state::State;
use crate::threshold::hysteresis::KeyState;
use crate::threshold::{self, Breach, BREACH_SEVERITY};
use crate::{decision, now_iso, slo, submit_verdicts};

pub fn run(host: &dyn Host, input: &CycleInput) -> CycleOutput {
    let knobs = Knobs::from_config(&input.config);
    let (mut st, bad_version) = State::restore(input.state.as_ref());
    if let Some(v) = bad_version {
        host.warn("threshold_state_version_unknown", &[("version", &v)]);
    }
    let mut emitted = 0;
    let manifests = match host.get_manifests() {
        Ok(Value::Array(list)) if !list.is_empty() => list,
        Ok(Value::Array(_)) | Ok(Value::Null) => return output(&st, 0),
        Ok(other) => {
            host.warn("measure_manifest_fetch_failed", &[("error", &format!("expected a JSON array, got {other}"))]);
            return output(&st, 0);
        }
        Err(e) => {
            host.warn("measure_manifest_fetch_failed", &[("error", &e.to_string())]);
            return output(&st, 0);
        }
    };

    // Phase 1: judgment SLOs.
    let (evaluated, n) = slo::evaluate(host, slo::collect(host, &manifests));
    emitted += n;
    let mut current: Map<String, Value> = Map::new();
    for e in &evaluated {
        current.insert(e.slo.key(), json!(e.status));
    }

    // Phase 1b: thresholds, on their own cadence.
    let phase = threshold::maybe_run(host, &knobs, &manifests, &mut st);
    emitted += phase.emitted;
    rename_governance(&mut st, &phase.renamed);
    if !phase.breaches.is_empty() {
        let keys: Vec<&str> = phase.breaches.iter().map(|b| b.0.as_str()).collect();
        host.info("threshold_breaches", &[("count", &keys.len().to_string()), ("keys", &keys.join(","))]);
    }

    // Phase 2: transitions into breach.
    let mut new_breaches: Vec<String> = Vec::new();
    let mut breach_ids: Map<String, Value> = Map::new();
    let mut breach_verdicts = Vec::new();
    for e in &evaluated {
        let key = e.slo.key();
        let prev = st.slo_status.get(&key).and_then(Value::as_str).unwrap_or("unknown");
        if e.status != "breach" || prev == "breach" {
            continue;
        }
        new_breaches.push(key.clone());
        let sev = severity(Some(&e.slo.judgment_type), e.slo.target_f, e.pct);
        st.breach_severities.insert(key.clone(), json!(sev));
        let id = format!("vrd-breach-{}-{}-{}", e.slo.service, e.slo.name, host.hex8());
        breach_ids.insert(key.clone(), json!(id));
        let verdict = json!({
            "id": id,
            "created_at": now_iso(host),
            "type": "quality_breach",
            "service": e.slo.service,
            "parent_ids": [e.jse_id],
            "data": {
                "slo_name": e.slo.name,
                "slo_key": key,
                "severity": sev,
                "judgment_type": e.slo.judgment_type,
                "target": e.slo.target,
                "current_value": e.pct,
            },
        });
        breach_verdicts.push(verdict);
    }
    // The phase's quality_breach verdicts in one batched call, before any autonomy change
    // that names them as parents.
    emitted += submit_verdicts(host, &breach_verdicts);

    // Phase 2b: threshold breaches into governance, only when the operator asked for it.
    let governed =
        inject_thresholds(&knobs, &mut st, &phase.breaches, &mut current, &mut new_breaches, &mut breach_ids);

    // Phase 3: governance for services with a new breach and an undecided one.
    let mut by_service: Vec<(String, Vec<String>)> = Vec::new();
    for (key, status) in &current {
        if status != "breach" {
            continue;
        }
        let svc = key.split_once(':').map_or(key.as_str(), |(s, _)| s).to_string();
        match by_service.iter_mut().find(|(s, _)| *s == svc) {
            Some((_, keys)) => keys.push(key.clone()),
            None => by_service.push((svc, vec![key.clone()])),
        }
    }
    let mut autonomy_verdicts = Vec::new();
    for (service, keys) in by_service {
        if !keys.iter().any(|k| new_breaches.contains(k)) {
            continue;
        }
        let undecided: Vec<&String> = keys.iter().filter(|k| !st.is_decided(k)).collect();
        if undecided.is_empty() {
            continue;
        }
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let severities = st.breach_severities.clone();
        let how = step(&refs, |k| severities.get(k).and_then(Value::as_str));
        for k in &undecided {
            st.breach_decisions.insert((*k).clone(), decision(host));
        }
        let previous =
            st.autonomy_levels.get(&service).and_then(Value::as_str).unwrap_or("fully_autonomous").to_string();
        let new_level = reduce(&previous, how);
        st.autonomy_levels.insert(service.clone(), json!(new_level));
        let parents: Vec<&Value> = undecided.iter().filter_map(|k| breach_ids.get(k.as_str())).collect();
        let verdict = json!({
            "id": format!("vrd-auto-{service}-{}", host.hex8()),
            "created_at": now_iso(host),
            "type": "autonomy_change",
            "service": service,
            "parent_ids": parents,
            "data": {
                "previous_level": previous,
                "new_level": new_level,
                "breaching_slo_count": keys.len(),
                "reason": format!("Autonomy reduced: {} SLO/threshold breach(es)", keys.len()),
            },
        });
        autonomy_verdicts.push(verdict);
    }
    emitted += submit_verdicts(host, &autonomy_verdicts);

    // Recovery clears the decision; the ratchet never raises autonomy.
    let recovered: Vec<String> = st
        .breach_decisions
        .keys()
        .filter(|k| current.get(*k).and_then(Value::as_str) == Some("healthy"))
        .cloned()
        .collect();
    for k in recovered {
        st.breach_decisions.remove(&k);
        st.breach_severities.remove(&k);
    }
    release_thresholds(&mut st);
    for k in governed {
        current.remove(&k);
    }
    // Keys not evaluated this cycle keep their last status: no false transition on recovery.
    for (k, v) in &st.slo_status {
        if !current.contains_key(k) {
            current.insert(k.clone(), v.clone());
        }
    }
    st.slo_status = current;
    output(&st, emitted)
}

fn output(st: &State, emitted: u32) -> CycleOutput {
    CycleOutput { state: Some(st.to_value()), result: None, emitted }
}

/// Moves governance entries of re-keyed threshold state to the new key, so an open breach
/// keeps its decision (no second autonomy step).
fn rename_governance(st: &mut State, renamed: &[(String, String)]) {
    for (old, new) in renamed {
        if !st.threshold_governed.remove(old) {
            continue;
        }
        for store in [&mut st.breach_decisions, &mut st.breach_severities] {
            if let Some(v) = store.remove(old) {
                store.insert(new.clone(), v);
            }
        }
        st.threshold_governed.insert(new.clone());
    }
}

/// With `MEASURE_THRESHOLD_AUTONOMY` on, open governed threshold breaches count like open SLO
/// breaches every cycle, and this run's new ones enter as new "high" breaches. Returns the
/// keys injected, which never reach `slo_status`.
fn inject_thresholds(
    knobs: &Knobs,
    st: &mut State,
    breaches: &[Breach],
    current: &mut Map<String, Value>,
    new_breaches: &mut Vec<String>,
    breach_ids: &mut Map<String, Value>,
) -> Vec<String> {
    let mut governed = Vec::new();
    if knobs.threshold_autonomy {
        // Open means disarmed: hysteresis, not one within evaluation, defines recovery.
        for (key, v) in &st.threshold_state {
            if !KeyState::from_value(Some(v)).armed && st.breach_decisions.get(key).is_some_and(crate::truthy) {
                current.insert(key.clone(), json!("breach"));
                governed.push(key.clone());
            }
        }
        for (key, _svc, id) in breaches {
            current.insert(key.clone(), json!("breach"));
            new_breaches.push(key.clone());
            breach_ids.insert(key.clone(), json!(id));
            st.breach_severities.insert(key.clone(), json!(BREACH_SEVERITY));
            governed.push(key.clone());
        }
    }
    st.threshold_governed.extend(governed.iter().cloned());
    governed
}

/// Threshold keys leave governance when retired or re-armed; the ratchet stays one-way.
fn release_thresholds(st: &mut State) {
    let keys: Vec<String> = st.threshold_governed.iter().cloned().collect();
    for key in keys {
        let released = st.threshold_state.get(&key).is_none_or(|v| KeyState::from_value(Some(v)).armed);
        if released {
            st.breach_decisions.remove(&key);
            st.breach_severities.remove(&key);
            st.threshold_governed.remove(&key);
        }
    }
}
