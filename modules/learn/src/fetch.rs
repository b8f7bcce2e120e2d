//! Every verdict in a time window, oldest first.
//!
//! core answers newest first, at most 1000 per call, with inclusive bounds and no offset. The
//! reference takes one page of 50 and moves its cursor to the newest, so everything older on a
//! busy core is never seen. Here the window is walked downwards page by page (the next page
//! ends at the oldest `created_at` of the last one; the inclusive bound repeats that instant,
//! so ids are de-duplicated) until a short page, then handed back in ascending order.

use std::collections::HashSet;

use nthlayer_sdk::{Host, HostError, VerdictQuery};
use serde_json::Value;

pub(crate) const PAGE: u32 = 1000;

/// Verdicts with `after <= created_at <= before`, ascending by `(created_at, id)`. Records
/// without a string `created_at` or `id` are returned too (the caller logs and skips them).
pub(crate) fn window(host: &dyn Host, q: VerdictQuery) -> Result<Vec<Value>, HostError> {
    let mut seen: HashSet<String> = HashSet::new();
    let mut out = Vec::new();
    let mut before = q.created_before.clone();
    loop {
        let page = host.query_verdicts(&VerdictQuery { created_before: before.clone(), limit: PAGE, ..q.clone() })?;
        let page = match page {
            Value::Array(a) => a,
            Value::Null => Vec::new(),
            _ => return Err(HostError::Invalid("GET /verdicts did not answer an array".into())),
        };
        let full = page.len() as u32 >= PAGE;
        let mut fresh = 0usize;
        let mut oldest: Option<String> = None;
        for v in page {
            let at = v.get("created_at").and_then(Value::as_str).map(str::to_string);
            if let Some(at) = &at {
                if oldest.as_ref().is_none_or(|o| at < o) {
                    oldest = Some(at.clone());
                }
            }
            let key = match v.get("id") {
                Some(Value::String(s)) => s.clone(),
                other => format!("{other:?}@{at:?}"),
            };
            if seen.insert(key) {
                fresh += 1;
                out.push(v);
            }
        }
        // A short page is the last one; a full page of nothing new means more than a page of
        // verdicts share one instant, which paging by time cannot get past.
        if !full || fresh == 0 || oldest.is_none() || oldest == before {
            if full && fresh == 0 {
                host.log(
                    nthlayer_sdk::Level::Warn,
                    "learn_verdict_page_stuck",
                    &[("created_at", before.as_deref().unwrap_or(""))],
                );
            }
            break;
        }
        before = oldest;
    }
    out.sort_by(|a, b| key(a).cmp(&key(b)));
    Ok(out)
}

fn key(v: &Value) -> (&str, &str) {
    (v.get("created_at").and_then(Value::as_str).unwrap_or(""), v.get("id").and_then(Value::as_str).unwrap_or(""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use nthlayer_sdk::testing::FakeHost;
    use serde_json::json;

    fn at(i: usize) -> String {
        format!("2026-11-24T10:{:02}:{:02}.000000+00:00", i / 60, i % 60)
    }

    #[test]
    fn walks_every_page_and_returns_oldest_first() {
        let host = FakeHost::new();
        // 2500 verdicts, newest first as core stores them; 3 share the page-boundary instants.
        let mut all: Vec<Value> =
            (0..2500).map(|i| json!({"id": format!("v{i:04}"), "created_at": at(i / 2)})).collect();
        all.reverse();
        *host.verdicts.borrow_mut() = all;
        let got = window(&host, VerdictQuery::default()).unwrap();
        assert_eq!(got.len(), 2500);
        assert_eq!(got[0]["id"], "v0000");
        assert_eq!(got[2499]["id"], "v2499");
        assert!(got.windows(2).all(|w| key(&w[0]) <= key(&w[1])));
    }

    #[test]
    fn respects_bounds() {
        let host = FakeHost::new();
        *host.verdicts.borrow_mut() =
            (0..10).rev().map(|i| json!({"id": format!("v{i}"), "created_at": at(i)})).collect();
        let q = VerdictQuery { created_after: Some(at(3)), created_before: Some(at(6)), ..Default::default() };
        let ids: Vec<Value> = window(&host, q).unwrap().iter().map(|v| v["id"].clone()).collect();
        assert_eq!(ids, vec![json!("v3"), json!("v4"), json!("v5"), json!("v6")]);
    }

    #[test]
    fn core_error_is_returned() {
        let host = FakeHost::new();
        *host.core_error.borrow_mut() = Some(HostError::Unavailable("down".into()));
        assert!(window(&host, VerdictQuery::default()).is_err());
    }
}
