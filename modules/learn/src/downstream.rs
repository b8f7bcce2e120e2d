//! Path 3, downstream signal: did the service's SLOs recover or worsen after the verdict?
//!
//! observe writes a `slo_status` per SLO every minute, so for each SLO of the verdict's
//! service there is a status in force when the verdict was made (the latest at or before it)
//! and the latest one since. A verdict that raised the alarm (a breach, or a flag / escalate /
//! reject judgment) is confirmed when its SLOs then worsened (the problem was real and
//! growing) or recovered from a degraded state (it was real and got handled). A verdict that
//! let things pass (approve, defer, …) is confirmed by a recovery and overridden when an SLO
//! worsened after it. An unchanged picture is no signal: the verdict stays open and may
//! expire. NO_DATA / ERROR / UNKNOWN statuses say nothing about health and are ignored.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};

use nthlayer_sdk::{time, Host, Level};
use serde_json::Value;

use crate::paths::Resolution;
use crate::text;

fn rank(status: &str) -> Option<u8> {
    match status {
        "HEALTHY" => Some(0),
        "WARNING" => Some(1),
        "CRITICAL" => Some(2),
        "EXHAUSTED" => Some(3),
        _ => None,
    }
}

/// Whether the verdict said "something is wrong".
fn raised_alarm(v: &Value) -> bool {
    if text(v, "type") == Some("quality_breach") {
        return true;
    }
    match v.pointer("/judgment/action").and_then(Value::as_str) {
        Some(a) => matches!(a, "flag" | "escalate" | "reject"),
        None => true,
    }
}

/// One status reading: when, what, and which assessment said so.
struct Reading<'a> {
    at: f64,
    status: &'a str,
    id: &'a str,
}

/// The verdict made at `made_at`, judged against its service's `slo_status` assessments.
pub(crate) fn resolve(v: &Value, made_at: f64, statuses: &[Value]) -> Option<Resolution> {
    let mut before: BTreeMap<&str, Reading> = BTreeMap::new();
    let mut after: BTreeMap<&str, Reading> = BTreeMap::new();
    for a in statuses {
        let (Some(name), Some(status), Some(at)) = (
            a.pointer("/data/slo_name").and_then(Value::as_str),
            a.pointer("/data/status").and_then(Value::as_str),
            text(a, "created_at").and_then(time::parse_iso),
        ) else {
            continue;
        };
        if rank(status).is_none() {
            continue;
        }
        let r = Reading { at, status, id: text(a, "id").unwrap_or("?") };
        let side = if at <= made_at { &mut before } else { &mut after };
        if side.get(name).is_none_or(|o| r.at > o.at) {
            side.insert(name, r);
        }
    }
    let mut worsened = None;
    let mut recovered = None;
    for (name, b) in &before {
        let Some(a) = after.get(name) else { continue };
        let (rb, ra) = (rank(b.status).unwrap_or(0), rank(a.status).unwrap_or(0));
        let change = (*name, b.status, a.status, a.id);
        if ra > rb && worsened.is_none() {
            worsened = Some(change);
        } else if rb > 0 && ra == 0 && recovered.is_none() {
            recovered = Some(change);
        }
    }
    let alarm = raised_alarm(v);
    let (status, (name, b, a, id), how) = match (worsened, recovered) {
        (Some(w), _) => (if alarm { "confirmed" } else { "overridden" }, w, "worsened"),
        (None, Some(r)) => ("confirmed", r, "recovered"),
        (None, None) => return None,
    };
    Some(Resolution::new(
        status,
        format!("Downstream signal: SLO {name} {how} {b} -> {a} after the verdict (slo_status {id})"),
        "downstream_signal",
    ))
}

/// `slo_status` assessments per service, fetched once per cycle.
pub(crate) struct SloCache<'a> {
    host: &'a dyn Host,
    by_service: RefCell<HashMap<String, Vec<Value>>>,
}

impl<'a> SloCache<'a> {
    pub(crate) fn new(host: &'a dyn Host) -> Self {
        SloCache { host, by_service: RefCell::new(HashMap::new()) }
    }

    pub(crate) fn resolve(&self, v: &Value, made_at: f64, service: &str) -> Option<Resolution> {
        if service == "unknown" {
            return None;
        }
        let mut cache = self.by_service.borrow_mut();
        let list = cache.entry(service.to_string()).or_insert_with(|| {
            match self.host.query_assessments(Some(service), Some("slo_status"), 1000) {
                Ok(Value::Array(a)) => a,
                Ok(_) => Vec::new(),
                Err(e) => {
                    self.host.log(
                        Level::Warn,
                        "learn_slo_status_fetch_failed",
                        &[("service", service), ("error", &e.to_string())],
                    );
                    Vec::new()
                }
            }
        });
        resolve(v, made_at, list)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const T: f64 = 1_795_500_000.0;

    fn slo(name: &str, status: &str, dt: f64) -> Value {
        json!({"id": format!("asm-{name}-{dt}"), "created_at": time::iso(T + dt), "kind": "slo_status",
               "data": {"slo_name": name, "status": status}})
    }

    fn verdict(action: &str) -> Value {
        json!({"id": "v", "type": "triage", "judgment": {"action": action, "confidence": 0.8}})
    }

    #[test]
    fn alarm_confirmed_by_recovery_and_by_worsening() {
        let s = [slo("avail", "CRITICAL", -60.0), slo("avail", "WARNING", 60.0), slo("avail", "HEALTHY", 600.0)];
        let r = resolve(&verdict("flag"), T, &s).unwrap();
        assert_eq!((r.status.as_str(), r.path), ("confirmed", "downstream_signal"));
        assert!(r.text.contains("avail recovered CRITICAL -> HEALTHY"), "{}", r.text);
        let s = [slo("lat", "HEALTHY", -1.0), slo("lat", "EXHAUSTED", 300.0)];
        let r = resolve(&json!({"id": "b", "type": "quality_breach"}), T, &s).unwrap();
        assert_eq!(r.status, "confirmed");
        assert!(r.text.contains("lat worsened HEALTHY -> EXHAUSTED"), "{}", r.text);
    }

    #[test]
    fn approval_overridden_by_worsening() {
        let s = [slo("avail", "WARNING", 0.0), slo("avail", "CRITICAL", 60.0)];
        assert_eq!(resolve(&verdict("approve"), T, &s).unwrap().status, "overridden");
        let s = [slo("avail", "WARNING", 0.0), slo("avail", "HEALTHY", 60.0)];
        assert_eq!(resolve(&verdict("approve"), T, &s).unwrap().status, "confirmed");
    }

    #[test]
    fn unchanged_unknown_or_one_sided_is_no_signal() {
        assert_eq!(resolve(&verdict("flag"), T, &[slo("a", "CRITICAL", -5.0), slo("a", "CRITICAL", 5.0)]), None);
        assert_eq!(resolve(&verdict("flag"), T, &[slo("a", "CRITICAL", -5.0), slo("a", "NO_DATA", 5.0)]), None);
        assert_eq!(resolve(&verdict("flag"), T, &[slo("a", "HEALTHY", 5.0), slo("a", "CRITICAL", 50.0)]), None);
        assert_eq!(resolve(&verdict("flag"), T, &[slo("a", "CRITICAL", -5.0), slo("b", "HEALTHY", 5.0)]), None);
        assert_eq!(resolve(&verdict("flag"), T, &[json!({"data": "bad"}), json!(null)]), None);
    }
}
