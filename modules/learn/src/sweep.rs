//! learn.outcome's state and its walk over the verdicts between the cursor and the age cutoff,
//! a bounded piece per cycle.
//!
//! core answers newest first, at most a page per call, with inclusive time bounds and no
//! offset, so the only walk whose every step is one bounded call goes downwards: each page
//! ends (`created_before`, inclusive) at the last verdict handled. A sweep runs from the age
//! cutoff down to the cursor over as many cycles as it takes; each cycle fetches at most
//! [`PAGES_PER_CYCLE`] pages and makes at most `max_checks_per_cycle` descendant look-ups, and
//! keeps where it stopped (`next`) in state. When a sweep reaches the cursor, the cursor moves
//! up to the newest settled verdict older than every verdict the sweep found open, and the
//! next sweep starts again from the top.
//!
//! A full page may end part-way through one instant; the verdicts of that instant are left to
//! the next page (which starts at that instant and so holds all of them), so ties are never
//! half-handled. More than a page of verdicts at one instant cannot be paged by time: that
//! page is handled whole, logged, and the walk steps one microsecond below it.

use nthlayer_sdk::{time, Host, HostError, Level, VerdictQuery};
use serde_json::{json, Value};

use crate::text;

/// core's largest answer (it clamps `limit` silently).
pub(crate) const PAGE: u32 = 1000;

/// Pages fetched per cycle (each at most [`PAGE`] verdicts, one held at a time): with the
/// look-up budget, what bounds a cycle's calls and memory however large the backlog.
pub(crate) const PAGES_PER_CYCLE: usize = 5;

/// Entries kept in `done` / `reviews` (~100 bytes each, well under the host's state cap).
const MEMO_MAX: usize = 20_000;

pub(crate) type Key = (String, String);

/// Progress of the sweep under way.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Sweep {
    /// `(created_at, id)` of the last verdict handled; the sweep goes on below it.
    pub next: Option<Key>,
    /// `created_at` of the oldest verdict found open so far.
    pub open_min: Option<String>,
    /// `created_at` of the newest settled verdict older than every open one seen so far: where
    /// the cursor goes when the sweep ends.
    pub candidate: Option<String>,
}

impl Sweep {
    /// Verdicts come in descending order, so the open one just seen is the oldest open yet and
    /// the first settled one after it is the newest settled below it.
    pub(crate) fn saw(&mut self, at: &str, open: bool) {
        if open {
            self.open_min = Some(at.to_string());
            self.candidate = None;
        } else if self.candidate.is_none() && self.open_min.as_deref().is_none_or(|m| at < m) {
            self.candidate = Some(at.to_string());
        }
    }

    /// Whether `key` was handled earlier in this sweep.
    pub(crate) fn handled(&self, key: (&str, &str)) -> bool {
        self.next.as_ref().is_some_and(|(a, i)| key >= (a.as_str(), i.as_str()))
    }
}

/// The task state (also the shape persisted in core through the host).
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Memo {
    pub cursor: Option<String>,
    /// `(created_at, id)` of settled verdicts at or after the cursor.
    pub done: Vec<Key>,
    /// `(created_at, id)` of sampled verdicts whose review case exists.
    pub reviews: Vec<Key>,
    pub sweep: Option<Sweep>,
}

fn pairs(state: Option<&Value>, k: &str) -> Vec<Key> {
    state
        .and_then(|s| s.get(k))
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|p| Some((p.get(0)?.as_str()?.into(), p.get(1)?.as_str()?.into()))).collect())
        .unwrap_or_default()
}

fn string(v: Option<&Value>, k: &str) -> Option<String> {
    v.and_then(|s| s.get(k)).and_then(Value::as_str).map(str::to_string)
}

impl Memo {
    /// State written by earlier versions (a `resume` key) starts a fresh sweep.
    pub(crate) fn from_state(state: Option<&Value>) -> Self {
        let sweep = state.and_then(|s| s.get("sweep")).filter(|s| s.is_object()).map(|s| Sweep {
            next: pairs(Some(s), "next").into_iter().next(),
            open_min: string(Some(s), "open_min"),
            candidate: string(Some(s), "candidate"),
        });
        Memo { cursor: string(state, "cursor"), done: pairs(state, "done"), reviews: pairs(state, "reviews"), sweep }
    }

    pub(crate) fn to_state(&self) -> Value {
        let mut s = serde_json::Map::new();
        if let Some(c) = &self.cursor {
            s.insert("cursor".into(), json!(c));
        }
        let list = |l: &[Key]| json!(l.iter().map(|(a, b)| [a, b]).collect::<Vec<_>>());
        s.insert("done".into(), list(&self.done));
        s.insert("reviews".into(), list(&self.reviews));
        if let Some(w) = &self.sweep {
            let next: Vec<Key> = w.next.iter().cloned().collect();
            s.insert("sweep".into(), json!({"next": list(&next), "open_min": w.open_min, "candidate": w.candidate}));
        }
        Value::Object(s)
    }

    /// Keeps what is at or after the cursor, once per id, at most [`MEMO_MAX`] (forgetting
    /// the oldest only costs them one more look-up).
    pub(crate) fn keep(&self, list: Vec<Key>) -> Vec<Key> {
        let mut seen = std::collections::HashSet::new();
        let mut kept: Vec<Key> = list
            .into_iter()
            .filter(|(at, _)| self.cursor.as_deref().is_none_or(|cur| at.as_str() >= cur))
            .filter(|(_, id)| seen.insert(id.clone()))
            .collect();
        kept.sort();
        let excess = kept.len().saturating_sub(MEMO_MAX);
        kept.drain(..excess);
        kept
    }
}

/// One page of the sweep: verdicts with `after <= created_at <= before`, newest first by
/// `(created_at, id)`, and whether core had more (a full page).
pub(crate) struct Page {
    pub verdicts: Vec<Value>,
    pub full: bool,
    /// A full page: the instant its oldest verdicts share, which may go on in the next page.
    pub partial_instant: Option<String>,
    /// Where the next page starts when a whole page shares one instant.
    pub below_stuck: Option<Key>,
}

pub(crate) fn page(host: &dyn Host, after: Option<String>, before: String) -> Result<Page, HostError> {
    let q =
        VerdictQuery { created_after: after, created_before: Some(before.clone()), limit: PAGE, ..Default::default() };
    let mut verdicts = match host.query_verdicts(&q)? {
        Value::Array(a) => a,
        Value::Null => Vec::new(),
        _ => return Err(HostError::Invalid("GET /verdicts did not answer an array".into())),
    };
    let key = |v: &Value| (text(v, "created_at").unwrap_or("").to_string(), text(v, "id").unwrap_or("").to_string());
    verdicts.sort_by_key(|v| std::cmp::Reverse(key(v)));
    let full = verdicts.len() as u32 >= PAGE;
    let (newest, oldest) = (verdicts.first().map(|v| key(v).0), verdicts.last().map(|v| key(v).0));
    let (mut partial_instant, mut below_stuck) = (None, None);
    if full && newest != oldest {
        partial_instant = oldest;
    } else if full {
        let at = oldest.unwrap_or_default();
        host.log(Level::Warn, "learn_verdict_page_stuck", &[("created_at", &at)]);
        // One microsecond below, and every id of that instant.
        below_stuck = time::parse_iso(&at).map(|t| (time::iso(t - 1e-6), "\u{10FFFF}".to_string()));
    }
    Ok(Page { verdicts, full, partial_instant, below_stuck })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_candidate_is_the_newest_settled_below_every_open() {
        let mut s = Sweep::default();
        for (at, open) in [("9", false), ("8", true), ("8", false), ("7", false), ("6", false)] {
            s.saw(at, open);
        }
        assert_eq!((s.open_min.as_deref(), s.candidate.as_deref()), (Some("8"), Some("7")));
        s.saw("5", true);
        assert_eq!(s.candidate, None, "an older open verdict takes the candidate back");
        s.saw("4", false);
        assert_eq!(s.candidate.as_deref(), Some("4"));
        let mut none_open = Sweep::default();
        none_open.saw("9", false);
        none_open.saw("3", false);
        assert_eq!(none_open.candidate.as_deref(), Some("9"));
    }

    #[test]
    fn state_round_trips_and_old_state_starts_a_sweep() {
        let m = Memo {
            cursor: Some("c".into()),
            done: vec![("d".into(), "1".into())],
            reviews: vec![],
            sweep: Some(Sweep { next: Some(("n".into(), "2".into())), open_min: Some("o".into()), candidate: None }),
        };
        assert_eq!(Memo::from_state(Some(&m.to_state())), m);
        let old = json!({"cursor": "c", "done": [], "reviews": [], "resume": [["r", "3"]]});
        assert_eq!(Memo::from_state(Some(&old)).sweep, None);
    }

    /// The bound on `done`/`reviews`: however many verdicts are settled past the cursor, the
    /// state keeps the newest MEMO_MAX, once each, and drops what the cursor has passed.
    #[test]
    fn memo_lists_keep_the_newest_within_the_bound() {
        let m = Memo { cursor: Some("2026-11-24T00:00:00".into()), ..Memo::default() };
        let mut list: Vec<Key> = (0..50_000)
            .map(|i| (format!("2026-11-24T{:02}:{:02}:{:02}", i / 3600 % 24, i / 60 % 60, i % 60), format!("v{i}")))
            .collect();
        list.push(("2026-11-23T23:59:59".into(), "before-cursor".into()));
        list.push(list[49_999].clone());
        let kept = m.keep(list);
        assert_eq!(kept.len(), MEMO_MAX);
        assert_eq!(kept.last().map(|k| k.1.as_str()), Some("v49999"));
        assert!(kept.iter().all(|k| k.1 != "before-cursor"));
        let size = m.to_state().to_string().len() + Memo { done: kept, ..m.clone() }.to_state().to_string().len();
        assert!(size < 2 << 20, "{size} bytes");
    }
}
