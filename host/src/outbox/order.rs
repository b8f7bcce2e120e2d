//! Which spooled entries may reach core in any order among themselves.
//!
//! A lane (a task's entries) is delivered in commit order because later entries may depend
//! on earlier ones: a `portfolio_status` names its cycle's `slo_status` ids as parents, an
//! outcome resolution or a case names a verdict, a state PUT must not land before the
//! records it accounts for, and every verdict may be a parent of a later one.
//!
//! Order-free are only runs of consecutive assessments whose kind is in [`ORDER_FREE`]: no
//! record names one of them as a parent within its own run, and no reader depends on their
//! arrival order (core lists by `created_at`, never by arrival; correlate reads a page of the
//! newest, docs/OUTBOX.md). Such a run is posted with bounded concurrency; whatever follows
//! it (the cycle's portfolio, the state) waits until every member of the run is delivered.
//! Anything else — another kind, a verdict, an outcome, a case, a state, a heartbeat, a body
//! that does not parse — is a run of one.

use super::spool::{Entry, What};

/// Assessment kinds whose records of one cycle do not depend on each other.
pub const ORDER_FREE: &[&str] = &["slo_status"];

#[derive(serde::Deserialize)]
struct Kind<'a> {
    #[serde(borrow)]
    kind: Option<&'a str>,
}

fn order_free(e: &Entry) -> bool {
    e.what == What::Assessment
        && serde_json::from_str::<Kind<'_>>(&e.body).ok().and_then(|k| k.kind).is_some_and(|k| ORDER_FREE.contains(&k))
}

/// Splits a lane's head into runs, in order: each run is either one entry or a maximal
/// sequence of order-free entries.
pub fn runs(head: Vec<Entry>) -> Vec<Vec<Entry>> {
    let mut out: Vec<Vec<Entry>> = Vec::new();
    let mut open = false;
    for e in head {
        let free = order_free(&e);
        match out.last_mut() {
            Some(run) if free && open => run.push(e),
            _ => out.push(vec![e]),
        }
        open = free;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: i64, what: What, body: &str) -> Entry {
        Entry {
            seq,
            lane: "t".into(),
            what,
            component: "m".into(),
            record_id: format!("r{seq}"),
            body: body.into(),
            spooled_at_ms: 0,
        }
    }

    #[test]
    fn slo_status_runs_group_and_everything_else_stands_alone() {
        let slo = r#"{"id":"x","kind":"slo_status","service":"s"}"#;
        let head = vec![
            entry(1, What::Assessment, slo),
            entry(2, What::Assessment, slo),
            entry(3, What::Assessment, r#"{"kind":"portfolio_status"}"#),
            entry(4, What::Assessment, slo),
            entry(5, What::Verdict, r#"{"type":"slo_status"}"#),
            entry(6, What::Assessment, slo),
            entry(7, What::Assessment, slo),
            entry(8, What::Assessment, "{oops"),
            entry(9, What::State, slo),
            entry(10, What::Assessment, slo),
        ];
        let got: Vec<Vec<i64>> = runs(head).iter().map(|r| r.iter().map(|e| e.seq).collect()).collect();
        assert_eq!(got, vec![vec![1, 2], vec![3], vec![4], vec![5], vec![6, 7], vec![8], vec![9], vec![10]]);
    }
}
