//! Keys every served threshold and carries state across a re-key, so an open breach keeps
//! its state (and its governance decision) when a sibling entry is added or removed.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::entry::{bounds_digest, canonical, parse, threshold_key, Threshold};

pub struct Entry {
    pub key: String,
    pub service: String,
    pub t: Threshold,
}

/// (where, service, message) for the log.
pub type Problem = (String, String, String);

/// Parses and keys every served entry. Returns the services fully present (safe to retire
/// against: every entry parsed), the entries, and the problems found. Identical entries are
/// kept once; distinct entries sharing a key are all suffixed with `~bounds_digest`.
pub fn collect(manifests: &[Value]) -> (BTreeSet<String>, Vec<Entry>, Vec<Problem>) {
    let mut present = BTreeSet::new();
    let mut partial = BTreeSet::new();
    let mut problems = Vec::new();
    let mut by_base: Vec<(String, Vec<(String, Threshold)>)> = Vec::new();
    for (i, m) in manifests.iter().enumerate() {
        let Some(service) = m.get("name").and_then(Value::as_str).filter(|s| !s.is_empty()) else {
            problems.push((format!("/manifests[{i}]"), String::new(), "manifest without a service name".into()));
            continue;
        };
        let items = match m.get("judgment_thresholds") {
            None | Some(Value::Null) => {
                // A pre-3.0 core serves none: no evidence that any entry was removed.
                partial.insert(service.to_string());
                continue;
            }
            Some(Value::Array(items)) => items,
            Some(other) => {
                let why = format!("judgment_thresholds is not a list: {other}");
                problems.push((format!("/manifests[{i}].judgment_thresholds"), service.into(), why));
                partial.insert(service.to_string());
                continue;
            }
        };
        present.insert(service.to_string());
        for (j, item) in items.iter().enumerate() {
            let t = match parse(item) {
                Ok(t) => t,
                Err(e) => {
                    problems.push((format!("/manifests[{i}].judgment_thresholds[{j}]"), service.into(), e));
                    partial.insert(service.to_string());
                    continue;
                }
            };
            let base = threshold_key(service, &t);
            let slot = match by_base.iter_mut().position(|(b, _)| *b == base) {
                Some(p) => &mut by_base[p].1,
                None => {
                    by_base.push((base.clone(), Vec::new()));
                    &mut by_base.last_mut().expect("just pushed").1
                }
            };
            if slot.iter().any(|(_, o)| canonical(o) == canonical(&t)) {
                continue; // identical: evaluated once
            }
            slot.push((service.to_string(), t));
        }
    }
    let mut entries = Vec::new();
    for (base, distinct) in by_base {
        if distinct.len() == 1 {
            let (service, t) = distinct.into_iter().next().expect("one");
            entries.push(Entry { key: base, service, t });
            continue;
        }
        let mut used = BTreeSet::new();
        for (service, t) in distinct {
            let key = format!("{base}~{}", bounds_digest(&t));
            if !used.insert(key.clone()) {
                problems.push((key.clone(), service, "threshold key collision: keeping the first entry".into()));
                continue;
            }
            entries.push(Entry { key, service, t });
        }
    }
    (present.difference(&partial).cloned().collect(), entries, problems)
}

/// Carries state across a re-key; returns (old key, new key) pairs. Per service and base,
/// each live key without state takes a non-live key's state: first by equal stored digest
/// (when exactly one has it), then a lone leftover pair. Anything ambiguous starts fresh,
/// the safe direction (it may re-raise).
pub fn migrate(state: &mut Map<String, Value>, entries: &[Entry]) -> Vec<(String, String)> {
    for e in entries {
        if let Some(Value::Object(v)) = state.get_mut(&e.key) {
            v.insert("base".into(), threshold_key(&e.service, &e.t).into());
            v.insert("bounds_digest".into(), bounds_digest(&e.t).into());
        }
    }
    let live: BTreeSet<&str> = entries.iter().map(|e| e.key.as_str()).collect();
    let mut new: BTreeMap<(String, String), Vec<(String, String)>> = BTreeMap::new();
    for e in entries.iter().filter(|e| !state.contains_key(&e.key)) {
        new.entry((e.service.clone(), threshold_key(&e.service, &e.t)))
            .or_default()
            .push((e.key.clone(), bounds_digest(&e.t)));
    }
    let mut old: BTreeMap<(String, String), Vec<(String, String)>> = BTreeMap::new();
    for (k, v) in state.iter().filter(|(k, _)| !live.contains(k.as_str())) {
        let field = |f: &str| v.get(f).and_then(Value::as_str).map(str::to_string);
        if let (Some(s), Some(b), Some(d)) = (field("service"), field("base"), field("bounds_digest")) {
            old.entry((s, b)).or_default().push((k.clone(), d));
        }
    }
    let mut renamed = Vec::new();
    for (group, new_keys) in new {
        let Some(olds) = old.get(&group) else { continue };
        let mut pairs: Vec<(String, String, String)> = Vec::new();
        for (nk, digest) in &new_keys {
            let same: Vec<&String> = olds.iter().filter(|(_, d)| d == digest).map(|(k, _)| k).collect();
            if same.len() == 1 {
                pairs.push((same[0].clone(), nk.clone(), digest.clone()));
            }
        }
        let matched_old: BTreeSet<&String> = pairs.iter().map(|p| &p.0).collect();
        if matched_old.len() != pairs.len() {
            pairs.clear(); // two new keys claimed one old key
        }
        let matched_old: BTreeSet<String> = pairs.iter().map(|p| p.0.clone()).collect();
        let matched_new: BTreeSet<String> = pairs.iter().map(|p| p.1.clone()).collect();
        let rest_old: Vec<&String> = olds.iter().map(|(k, _)| k).filter(|k| !matched_old.contains(*k)).collect();
        let rest_new: Vec<&(String, String)> = new_keys.iter().filter(|(k, _)| !matched_new.contains(k)).collect();
        if rest_old.len() == 1 && rest_new.len() == 1 {
            pairs.push((rest_old[0].clone(), rest_new[0].0.clone(), rest_new[0].1.clone()));
        }
        for (ok, nk, digest) in pairs {
            if let Some(Value::Object(mut v)) = state.remove(&ok) {
                v.insert("base".into(), group.1.clone().into());
                v.insert("bounds_digest".into(), digest.into());
                state.insert(nk.clone(), Value::Object(v));
                renamed.push((ok, nk));
            }
        }
    }
    renamed
}

/// Drops state of services present in the answer whose entry is gone, and state that can
/// never match a manifest (not an object, or no service).
pub fn retire(state: &mut Map<String, Value>, present: &BTreeSet<String>, entries: &[Entry]) -> Vec<String> {
    let live: BTreeSet<&str> = entries.iter().map(|e| e.key.as_str()).collect();
    let gone: Vec<String> = state
        .iter()
        .filter(|(k, v)| match v.get("service").and_then(Value::as_str) {
            None => true,
            Some(s) => present.contains(s) && !live.contains(k.as_str()),
        })
        .map(|(k, _)| k.clone())
        .collect();
    for k in &gone {
        state.remove(k);
    }
    gone
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cal(ece: f64) -> Value {
        json!({"type": "calibration", "bounds": {"maximum_expected_calibration_error": ece}, "measurement": {"bins": 10, "window": "30d"}})
    }

    #[test]
    fn siblings_are_suffixed_and_identical_entries_kept_once() {
        let m = json!([{"name": "a", "judgment_thresholds": [cal(0.05), cal(0.05), cal(0.1)]},
                       {"name": "b"}, {"name": "c", "judgment_thresholds": [{"type": "calibration"}]}]);
        let (present, entries, problems) = collect(m.as_array().unwrap());
        assert_eq!(present.into_iter().collect::<Vec<_>>(), ["a"]);
        let keys: Vec<&str> = entries.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0], "a:calibration:e8d1ecdadaae~d9ddcf2e");
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].1, "c");
    }

    #[test]
    fn adding_a_sibling_carries_state_to_the_suffixed_key() {
        let one = json!([{"name": "a", "judgment_thresholds": [cal(0.05)]}]);
        let (_, entries, _) = collect(one.as_array().unwrap());
        let mut state = Map::new();
        state.insert(entries[0].key.clone(), json!({"service": "a", "armed": false}));
        assert!(migrate(&mut state, &entries).is_empty()); // refreshes base and digest
        let two = json!([{"name": "a", "judgment_thresholds": [cal(0.05), cal(0.2)]}]);
        let (present, entries, _) = collect(two.as_array().unwrap());
        let renamed = migrate(&mut state, &entries);
        assert_eq!(
            renamed,
            vec![("a:calibration:e8d1ecdadaae".to_string(), "a:calibration:e8d1ecdadaae~d9ddcf2e".to_string())]
        );
        assert_eq!(state["a:calibration:e8d1ecdadaae~d9ddcf2e"]["armed"], false);
        // Removing the entry entirely retires its state.
        state.insert("a:feedback_latency:x".into(), json!({"service": "a"}));
        state.insert("junk".into(), json!(1));
        state.insert("z:feedback_latency:x".into(), json!({"service": "z"}));
        let gone = retire(&mut state, &present, &entries);
        assert_eq!(gone, ["a:feedback_latency:x", "junk"]);
        assert!(state.contains_key("z:feedback_latency:x"));
    }
}
