//! `learn.outcome`: resolve pending verdicts through the five paths and emit a
//! `calibration_signal` for every real resolution.
//!
//! Cursor semantics. The reference moves its cursor past every pending verdict it looked at,
//! so a verdict is examined once, an hour after it was made, and a signal that arrives later
//! (or the 7-day expiry) is never seen. Here `cursor` is a low-water mark: the `created_at` of
//! the newest verdict such that it and everything before it is settled (resolved, expired,
//! reviewed, not learn's business, or malformed and logged). Open verdicts stay in the walk
//! until a path resolves them or they expire; the walk from the age cutoff down to the cursor
//! is done a bounded piece per cycle (sweep.rs: pages and descendant look-ups per cycle, the
//! resume point in state), so a backlog of any size costs every cycle the same. Settled
//! verdicts past the cursor are remembered in `done` (pruned as the cursor passes them) so
//! they cost no further calls.
//!
//! Write order per resolution: the signal first (its id is stable, so a repeat is a 409),
//! then the outcome (core's default id `out-<verdict>`, a repeat is a 409). Both are effects
//! of the cycle: committed together with its new state and delivered to core in that order,
//! or, if the cycle fails, not at all (the verdict is still open next time). A resolution
//! written without its signal — by a host that sent resolutions to core at once and then
//! failed the cycle — is healed: a verdict learn finds already resolved by itself gets its
//! signal again under the same id (a 409 when core has it). Resolutions by expiry carry no
//! signal and get none.

use std::collections::HashSet;

use nthlayer_sdk::host::HostExt;
use nthlayer_sdk::{time, CycleOutput, Host, Level};
use serde_json::{json, Value};

use crate::downstream::SloCache;
use crate::paths::{self, Lineage, Resolution, State, SAMPLING};
use crate::sampling;
use crate::service::Known;
use crate::sweep::{self, Memo, Sweep, PAGES_PER_CYCLE};
use crate::{is_conflict, signal, text, Config};

/// With expiry disabled (0 days) a verdict would stay open forever and hold the cursor; past
/// this age it is let go without an outcome.
const ABANDON_DAYS: u64 = 30;

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
    re_emitted: u32,
    resolved: u32,
    expired: u32,
    open: u32,
    reviews: u32,
    pages: u32,
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
    let done: HashSet<&str> = memo.done.iter().map(|(_, id)| id.as_str()).collect();
    let mut c = Cycle {
        host,
        cfg,
        now,
        known: Known::new(host, &[]),
        slo: SloCache::new(host),
        reviewed: memo.reviews.iter().map(|(_, id)| id.clone()).collect(),
        new_reviews: Vec::new(),
        checks: 0,
        n: Counts::default(),
    };
    let mut sweep = memo.sweep.clone().unwrap_or_default();
    let mut settled: Vec<(String, String)> = memo.done.clone();
    let mut finished = false;
    'pages: for _ in 0..PAGES_PER_CYCLE {
        let before = sweep.next.as_ref().map_or_else(|| cutoff.clone(), |(at, _)| at.clone());
        let page = match sweep::page(host, memo.cursor.clone(), before) {
            Ok(p) => p,
            Err(e) => {
                host.warn("learn_outcome_fetch_failed", &[("error", &e.to_string())]);
                break;
            }
        };
        c.n.pages += 1;
        c.known.add(&page.verdicts);
        for v in &page.verdicts {
            let (Some(id), Some(at)) = (text(v, "id"), text(v, "created_at")) else {
                let id = v.get("id").map(Value::to_string).unwrap_or_else(|| "?".into());
                host.warn(
                    "learn_verdict_malformed",
                    &[("verdict_id", id.as_str()), ("error", "no string id or created_at")],
                );
                continue;
            };
            if sweep.handled((at, id)) {
                continue;
            }
            if page.partial_instant.as_deref() == Some(at) {
                break; // the rest of this instant may be on the next page, which starts here
            }
            let step = if done.contains(id) { Step::Settled } else { c.handle(v, id, at) };
            match step {
                Step::Budget => break 'pages,
                Step::Open => {
                    c.n.open += 1;
                    sweep.saw(at, true);
                }
                Step::Settled => {
                    sweep.saw(at, false);
                    settled.push((at.to_string(), id.to_string()));
                }
            }
            sweep.next = Some((at.to_string(), id.to_string()));
        }
        if let Some(below) = page.below_stuck {
            sweep.next = Some(below);
        } else if !page.full {
            finished = true;
            break;
        }
    }
    let mut next = Memo { cursor: memo.cursor.clone(), done: Vec::new(), reviews: Vec::new(), sweep: None };
    if finished {
        if let Some(candidate) = sweep.candidate.take() {
            next.cursor = Some(candidate);
        }
    } else if sweep != Sweep::default() {
        next.sweep = Some(sweep);
    }
    let mut reviews = memo.reviews.clone();
    reviews.append(&mut c.new_reviews);
    next.done = next.keep(settled);
    next.reviews = next.keep(reviews);
    let n = &c.n;
    let result = json!({"checked": n.checked, "signals": n.signals, "re_emitted": n.re_emitted, "resolved": n.resolved,
                        "expired": n.expired, "open": n.open, "review_cases": n.reviews, "pages": n.pages,
                        "sweep_done": finished, "cursor": next.cursor});
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
            Lineage::AlreadyResolved { status, path } => return self.re_emit(v, id, &status, &path),
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

    /// A verdict learn resolved itself: its signal again, under the id the first attempt used,
    /// so core answers 409 when it has it and takes it when an earlier cycle lost it.
    fn re_emit(&mut self, v: &Value, id: &str, status: &str, path: &str) -> Step {
        let Some(path) = paths::signal_path(path) else { return Step::Settled };
        let step = self.signal(v, id, &Resolution::new(status, String::new(), path));
        if step == Step::Settled {
            self.n.re_emitted += 1;
        }
        step
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

#[cfg(test)]
#[path = "outcome_tests.rs"]
mod tests;
