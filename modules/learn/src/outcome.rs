//! `learn.outcome`: resolve pending verdicts through the five paths and emit a
//! `calibration_signal` for every real resolution.
//!
//! Cursor semantics. The reference moves its cursor past every pending verdict it looked at,
//! so a verdict is examined once, an hour after it was made, and a signal that arrives later
//! (or the 7-day expiry) is never seen. Here `cursor` is a low-water mark: the `created_at` of
//! the newest verdict such that it and everything before it is settled (resolved, expired,
//! reviewed, not learn's business, or malformed and logged). Everything from the cursor to
//! `now - min_age` is walked oldest first each cycle; open verdicts stay in the walk until a
//! path resolves them or they expire. Settled verdicts past the cursor are remembered in
//! `done` (pruned as the cursor passes them) so they cost no further calls. At most
//! `max_checks_per_cycle` descendant look-ups are made per cycle; when that budget runs out
//! the next cycle resumes after the last verdict checked (`resume`) and wraps round at the
//! end, so every open verdict is looked at in turn however many there are.
//!
//! Write order per resolution: the signal first (its id is stable, so a repeat is a 409),
//! then the outcome (core's default id `out-<verdict>`, a repeat is a 409). A failure of
//! either leaves the verdict open and the next cycle completes it; nothing is written twice.

use std::collections::HashSet;

use nthlayer_sdk::host::HostExt;
use nthlayer_sdk::{time, CycleOutput, Host, Level, VerdictQuery};
use serde_json::{json, Value};

use crate::downstream::SloCache;
use crate::paths::{self, Lineage, Resolution, State};
use crate::sampling;
use crate::service::Known;
use crate::{fetch, is_conflict, signal, text, Config};

/// With expiry disabled (0 days) a verdict would stay open forever and hold the cursor; past
/// this age it is let go without an outcome.
const ABANDON_DAYS: u64 = 30;

/// Entries kept in `done` / `reviews` (~100 bytes each, well under the host's state cap).
const MEMO_MAX: usize = 20_000;

/// The task state (also the shape persisted in core through the host).
#[derive(Debug, Default, Clone, PartialEq)]
struct Memo {
    cursor: Option<String>,
    /// `(created_at, id)` of settled verdicts at or after the cursor.
    done: Vec<(String, String)>,
    /// `(created_at, id)` of sampled verdicts whose review case exists.
    reviews: Vec<(String, String)>,
    /// `(created_at, id)` of the last verdict checked when the budget ran out.
    resume: Option<(String, String)>,
}

impl Memo {
    fn from_state(state: Option<&Value>) -> Self {
        let pairs = |k: &str| -> Vec<(String, String)> {
            state
                .and_then(|s| s.get(k))
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|p| Some((p.get(0)?.as_str()?.to_string(), p.get(1)?.as_str()?.to_string())))
                        .collect()
                })
                .unwrap_or_default()
        };
        Memo {
            cursor: state.and_then(|s| s.get("cursor")).and_then(Value::as_str).map(str::to_string),
            done: pairs("done"),
            reviews: pairs("reviews"),
            resume: pairs("resume").into_iter().next(),
        }
    }

    fn to_state(&self) -> Value {
        let mut s = serde_json::Map::new();
        if let Some(c) = &self.cursor {
            s.insert("cursor".into(), json!(c));
        }
        s.insert("done".into(), json!(self.done.iter().map(|(a, b)| [a, b]).collect::<Vec<_>>()));
        s.insert("reviews".into(), json!(self.reviews.iter().map(|(a, b)| [a, b]).collect::<Vec<_>>()));
        if let Some((a, b)) = &self.resume {
            s.insert("resume".into(), json!([[a, b]]));
        }
        Value::Object(s)
    }
}

/// What became of one verdict this cycle.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Step {
    Settled,
    Open,
    /// The descendant look-up budget is spent; the walk stops here.
    Budget,
}

#[derive(Default)]
struct Counts {
    checked: u32,
    signals: u32,
    resolved: u32,
    expired: u32,
    open: u32,
    reviews: u32,
}

struct Cycle<'a> {
    host: &'a dyn Host,
    cfg: &'a Config,
    now: f64,
    known: Known<'a>,
    slo: SloCache<'a>,
    reviewed: HashSet<String>,
    new_reviews: Vec<(String, String)>,
    checks: u64,
    n: Counts,
}

pub(crate) fn run(host: &dyn Host, cfg: &Config, state: Option<&Value>) -> CycleOutput {
    let memo = Memo::from_state(state);
    let now = host.now();
    let cutoff = time::iso(now - cfg.min_resolution_age_hours as f64 * 3600.0);
    let q = VerdictQuery { created_after: memo.cursor.clone(), created_before: Some(cutoff), ..Default::default() };
    let verdicts = match fetch::window(host, q) {
        Ok(v) => v,
        Err(e) => {
            host.warn("learn_outcome_fetch_failed", &[("error", &e.to_string())]);
            return CycleOutput { state: Some(memo.to_state()), result: None, emitted: 0 };
        }
    };
    let done: HashSet<&str> = memo.done.iter().map(|(_, id)| id.as_str()).collect();
    let mut c = Cycle {
        host,
        cfg,
        now,
        known: Known::new(host, &verdicts),
        slo: SloCache::new(host),
        reviewed: memo.reviews.iter().map(|(_, id)| id.clone()).collect(),
        new_reviews: Vec::new(),
        checks: 0,
        n: Counts::default(),
    };
    let mut cursor = memo.cursor.clone();
    let mut blocked = false;
    let mut resume = None;
    let mut last_checked = None;
    let mut settled: Vec<(String, String)> = memo.done.clone();
    for v in &verdicts {
        let (Some(id), Some(at)) = (text(v, "id"), text(v, "created_at")) else {
            let id = v.get("id").map(Value::to_string).unwrap_or_else(|| "?".into());
            host.warn(
                "learn_verdict_malformed",
                &[("verdict_id", id.as_str()), ("error", "no string id or created_at")],
            );
            continue;
        };
        // Before the resume point: not checked this cycle, so it holds the cursor if open.
        let waiting = memo.resume.as_ref().is_some_and(|(ra, ri)| (at, id) <= (ra.as_str(), ri.as_str()));
        let step = if done.contains(id) {
            Step::Settled
        } else if waiting && matches!(paths::state(v), State::Pending) {
            Step::Open
        } else {
            let before = c.checks;
            let step = c.handle(v, id, at);
            if c.checks > before {
                last_checked = Some((at.to_string(), id.to_string()));
            }
            step
        };
        match step {
            Step::Budget => {
                resume = last_checked.clone();
                break;
            }
            Step::Open => {
                blocked = true;
                c.n.open += 1;
            }
            Step::Settled => {
                if !blocked && cursor.as_deref().is_none_or(|cur| at > cur) {
                    cursor = Some(at.to_string());
                }
                settled.push((at.to_string(), id.to_string()));
            }
        }
    }
    let keep = |list: Vec<(String, String)>| -> Vec<(String, String)> {
        let mut seen = HashSet::new();
        let mut kept: Vec<(String, String)> = list
            .into_iter()
            .filter(|(at, _)| cursor.as_deref().is_none_or(|cur| at.as_str() >= cur))
            .filter(|(_, id)| seen.insert(id.clone()))
            .collect();
        // Bounded state: forgetting the oldest only costs them one more look-up.
        kept.sort();
        let excess = kept.len().saturating_sub(MEMO_MAX);
        kept.drain(..excess);
        kept
    };
    let mut reviews = memo.reviews.clone();
    reviews.append(&mut c.new_reviews);
    let next = Memo { cursor: cursor.clone(), done: keep(settled), reviews: keep(reviews), resume };
    let n = &c.n;
    let result = json!({"checked": n.checked, "signals": n.signals, "resolved": n.resolved, "expired": n.expired,
                        "open": n.open, "review_cases": n.reviews, "cursor": cursor});
    CycleOutput { state: Some(next.to_state()), result: Some(result), emitted: n.signals }
}

impl Cycle<'_> {
    fn handle(&mut self, v: &Value, id: &str, at: &str) -> Step {
        let sampled = || sampling::in_sample(&self.cfg.sample_seed, sampling::producer(v), id, self.cfg.sample_rate);
        match paths::state(v) {
            State::Settled => Step::Settled,
            State::Malformed(why) => {
                self.host.warn("learn_outcome_malformed", &[("verdict_id", id), ("error", &why)]);
                Step::Settled
            }
            State::Reviewed(status) if sampled() => {
                let res =
                    Resolution::new(&status, format!("Reviewed in place: {status} (calibration sample)"), SAMPLING);
                self.signal(v, id, &res)
            }
            State::Reviewed(_) => Step::Settled,
            State::Pending => self.pending(v, id, at, sampled()),
        }
    }

    fn pending(&mut self, v: &Value, id: &str, at: &str, sampled: bool) -> Step {
        let Some(made_at) = time::parse_iso(at) else {
            self.host.warn("learn_outcome_malformed", &[("verdict_id", id), ("error", "created_at is not ISO-8601")]);
            return Step::Settled;
        };
        if self.checks >= self.cfg.max_checks_per_cycle {
            return Step::Budget;
        }
        self.checks += 1;
        self.n.checked += 1;
        let descendants = match self.host.verdict_descendants(id) {
            Ok(Value::Array(a)) => a,
            Ok(_) => {
                self.host.warn("learn_descendants_malformed", &[("verdict_id", id)]);
                return Step::Open;
            }
            Err(e) => {
                self.host.warn("learn_descendants_failed", &[("verdict_id", id), ("error", &e.to_string())]);
                return Step::Open;
            }
        };
        let res = match paths::lineage(v, id, &descendants) {
            Lineage::Cycle => {
                self.host.warn("learn_lineage_cycle", &[("verdict_id", id)]);
                return Step::Settled;
            }
            Lineage::AlreadyResolved => return Step::Settled,
            Lineage::External { id: by, status } if sampled => {
                let res = Resolution::new(&status, format!("Reviewed by {by} (calibration sample)"), SAMPLING);
                return self.signal(v, id, &res);
            }
            Lineage::External { .. } => return Step::Settled,
            Lineage::Resolved(res) => Some(res),
            Lineage::Nothing => {
                let (service, _) = self.known.service_of(v);
                self.slo.resolve(v, made_at, &service)
            }
        };
        if let Some(res) = res {
            return match self.signal(v, id, &res) {
                Step::Settled => self.outcome(id, &res),
                other => other,
            };
        }
        if paths::past(made_at, self.now, self.cfg.expiry_threshold_days) {
            let step = self.outcome(id, &paths::expiry());
            if step == Step::Settled {
                self.n.expired += 1;
            }
            return step;
        }
        if self.cfg.expiry_threshold_days == 0 && paths::past(made_at, self.now, ABANDON_DAYS) {
            self.host.log(Level::Info, "learn_outcome_abandoned", &[("verdict_id", id)]);
            return Step::Settled;
        }
        if sampled && !self.reviewed.contains(id) {
            self.review_case(v, id, at);
        }
        Step::Open
    }

    /// Posts the calibration signal; a 409 means an earlier cycle already did.
    fn signal(&mut self, v: &Value, id: &str, res: &Resolution) -> Step {
        let (service, source) = self.known.service_of(v);
        if source == "unknown" {
            self.host.warn("learn_service_unknown", &[("verdict_id", id)]);
        }
        let rec = signal::record(self.host, v, res, &service);
        match self.host.submit_assessment(&rec, None) {
            Ok(_) => {
                self.n.signals += 1;
                self.host.info(
                    "learn_calibration_signal",
                    &[("verdict_id", id), ("path", res.path), ("service", &service), ("service_from", source)],
                );
                Step::Settled
            }
            Err(e) if is_conflict(&e) => Step::Settled,
            Err(e) => {
                self.host.warn("calibration_signal_submit_failed", &[("verdict_id", id), ("error", &e.to_string())]);
                Step::Open
            }
        }
    }

    /// `POST /verdicts/{id}/outcome`; a 409 means it is already resolved.
    fn outcome(&mut self, id: &str, res: &Resolution) -> Step {
        match self.host.resolve_outcome(id, &res.body()) {
            Ok(_) => {
                self.n.resolved += 1;
                Step::Settled
            }
            Err(e) if is_conflict(&e) => Step::Settled,
            Err(e) => {
                self.host.warn("learn_outcome_submit_failed", &[("verdict_id", id), ("error", &e.to_string())]);
                Step::Open
            }
        }
    }

    /// Puts a sampled verdict in front of a human: a `calibration_review` case in core. The
    /// answer comes back as the verdict's own outcome (core's override) or an outcome_resolution.
    fn review_case(&mut self, v: &Value, id: &str, at: &str) {
        let (service, _) = self.known.service_of(v);
        let confidence = v.pointer("/judgment/confidence").map(Value::to_string).unwrap_or_else(|| "null".into());
        let case = json!({
            "id": format!("case-cal-{id}"),
            "kind": "calibration_review",
            "created_at": time::iso(self.now),
            "underlying_verdict": id,
            "service": service,
            "briefing": format!(
                "Calibration sample: review {} verdict {id} from {} (confidence {confidence}); answer with POST /verdicts/{id}/override or /outcome",
                v.get("type").and_then(Value::as_str).unwrap_or("unknown"),
                sampling::producer(v),
            ),
        });
        match self.host.create_case(&case) {
            Ok(_) => self.n.reviews += 1,
            Err(e) if is_conflict(&e) => {}
            Err(e) => {
                self.host.warn("learn_review_case_failed", &[("verdict_id", id), ("error", &e.to_string())]);
                return;
            }
        }
        self.reviewed.insert(id.to_string());
        self.new_reviews.push((at.to_string(), id.to_string()));
    }
}

const SAMPLING: &str = "calibration_sampling";

#[cfg(test)]
#[path = "outcome_tests.rs"]
mod tests;
