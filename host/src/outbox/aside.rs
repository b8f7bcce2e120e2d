//! The spool's failure bookkeeping: attempts and first failure of entries in retry, and the
//! `rejected` table of entries set aside, with what the operator does to them (list, show,
//! requeue, drop).
//!
//! Failures are kept in the spool, not in memory, so a restart neither resets an entry's
//! retry window nor forgets what core answered.

use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use super::spool::{now_ms, Entry, Spool};

/// An entry's failures so far, after the one just recorded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Failures {
    pub attempts: u32,
    /// When it first failed (unix ms).
    pub first_failed_ms: i64,
}

/// One set-aside entry, as the operator sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Aside {
    pub id: i64,
    pub task: String,
    pub what: String,
    pub component: String,
    pub record_id: String,
    /// Core's HTTP status; 0 when core never answered (window ran out) or the body is corrupt.
    pub status: u16,
    /// Why: core's answer (its error body), or the host's reason.
    pub error: String,
    pub attempts: u32,
    pub spooled_at_ms: Option<i64>,
    pub set_aside_at_ms: i64,
    pub body: String,
}

impl Spool {
    /// Records a failed attempt of an entry (status 0: no answer).
    pub fn failed(&mut self, seq: i64, status: u16, error: &str) -> rusqlite::Result<Failures> {
        self.db.query_row(
            "UPDATE outbox SET attempts = attempts + 1, first_failed_at = COALESCE(first_failed_at, ?2),
                    last_status = ?3, last_error = ?4
             WHERE seq = ?1 RETURNING attempts, first_failed_at",
            params![seq, now_ms(), status, error],
            |r| Ok(Failures { attempts: r.get(0)?, first_failed_ms: r.get(1)? }),
        )
    }

    /// Entries in retry, the first failure of the longest-failing one and its last error.
    pub(super) fn failing(&self) -> rusqlite::Result<(u64, Option<i64>, Option<String>)> {
        let n: i64 = self.db.query_row("SELECT COUNT(*) FROM outbox WHERE attempts > 0", [], |r| r.get(0))?;
        let oldest = self
            .db
            .query_row(
                "SELECT first_failed_at, last_error FROM outbox WHERE first_failed_at IS NOT NULL
                 ORDER BY first_failed_at LIMIT 1",
                [],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Option<String>>(1)?)),
            )
            .optional()?;
        Ok((n as u64, oldest.as_ref().map(|o| o.0), oldest.and_then(|o| o.1)))
    }

    /// Sets an entry aside after an answer that is not yet counted in its attempts.
    pub fn reject(&mut self, e: &Entry, status: u16, error: &str) -> rusqlite::Result<()> {
        self.set_aside(e, status, error, 1)
    }

    /// Sets an entry aside: moves it to `rejected` with core's status and answer (or the
    /// host's reason), out of its lane so the lane goes on. `uncounted`: attempts not yet
    /// recorded with [`Spool::failed`] (1 for a fresh refusal, 0 when the window ran out).
    pub fn set_aside(&mut self, e: &Entry, status: u16, error: &str, uncounted: u32) -> rusqlite::Result<()> {
        let tx = self.db.transaction()?;
        tx.execute(
            "INSERT OR REPLACE INTO rejected(seq, lane, what, record_id, body, status, error, rejected_at,
                                             component, spooled_at, attempts)
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10,
                    COALESCE((SELECT attempts FROM outbox WHERE seq = ?1), 0) + ?11",
            params![
                e.seq,
                e.lane,
                e.what.as_str(),
                e.record_id,
                e.body,
                status,
                error,
                now_ms(),
                e.component,
                e.spooled_at_ms,
                uncounted
            ],
        )?;
        tx.execute("DELETE FROM outbox WHERE seq = ?1", params![e.seq])?;
        tx.commit()
    }

    /// Set-aside entries, oldest first.
    pub fn aside(&self) -> rusqlite::Result<Vec<Aside>> {
        let mut st = self.db.prepare(&format!("{SELECT_ASIDE} ORDER BY seq"))?;
        let rows = st.query_map([], aside_row)?;
        rows.collect()
    }

    pub fn aside_one(&self, id: i64) -> rusqlite::Result<Option<Aside>> {
        self.db.query_row(&format!("{SELECT_ASIDE} WHERE seq = ?1"), params![id], aside_row).optional()
    }

    /// Puts a set-aside entry back at the end of its lane (with `body` instead of the
    /// refused one, if given), fresh: no attempts, a new retry window. Returns its new seq,
    /// or None when there is no such entry.
    pub fn requeue(&mut self, id: i64, body: Option<&str>, record_id: Option<&str>) -> rusqlite::Result<Option<i64>> {
        let tx = self.db.transaction()?;
        let inserted = tx.execute(
            "INSERT INTO outbox(lane, what, component, record_id, body, bytes, spooled_at)
             SELECT lane, what, component, COALESCE(?2, record_id), COALESCE(?3, body),
                    LENGTH(CAST(COALESCE(?3, body) AS BLOB)), ?4
             FROM rejected WHERE seq = ?1",
            params![id, record_id, body, now_ms()],
        )?;
        if inserted == 0 {
            return Ok(None);
        }
        let seq = tx.last_insert_rowid();
        tx.execute("DELETE FROM rejected WHERE seq = ?1", params![id])?;
        tx.commit()?;
        Ok(Some(seq))
    }

    /// Removes a set-aside entry for good; false when there is no such entry.
    pub fn drop_aside(&mut self, id: i64) -> rusqlite::Result<bool> {
        Ok(self.db.execute("DELETE FROM rejected WHERE seq = ?1", params![id])? > 0)
    }
}

const SELECT_ASIDE: &str = "SELECT seq, lane, what, component, record_id, status, error, attempts, spooled_at,
    rejected_at, body FROM rejected";

fn aside_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Aside> {
    Ok(Aside {
        id: r.get(0)?,
        task: r.get(1)?,
        what: r.get(2)?,
        component: r.get(3)?,
        record_id: r.get(4)?,
        status: r.get(5)?,
        error: r.get(6)?,
        attempts: r.get(7)?,
        spooled_at_ms: r.get(8)?,
        set_aside_at_ms: r.get(9)?,
        body: r.get(10)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spool_from_an_older_host_gains_the_columns_and_keeps_its_entries() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = rusqlite::Connection::open(dir.path().join("spool.db")).unwrap();
            db.execute_batch(
                "CREATE TABLE outbox(seq INTEGER PRIMARY KEY AUTOINCREMENT, lane TEXT NOT NULL, what TEXT NOT NULL,
                     component TEXT NOT NULL, record_id TEXT NOT NULL, body TEXT NOT NULL, bytes INTEGER NOT NULL,
                     spooled_at INTEGER NOT NULL);
                 CREATE TABLE rejected(seq INTEGER PRIMARY KEY, lane TEXT NOT NULL, what TEXT NOT NULL,
                     record_id TEXT NOT NULL, body TEXT NOT NULL, status INTEGER NOT NULL, error TEXT NOT NULL,
                     rejected_at INTEGER NOT NULL);
                 INSERT INTO outbox(lane, what, component, record_id, body, bytes, spooled_at)
                     VALUES ('t', 'assessment', 'm', 'a', '{}', 2, 1);
                 INSERT INTO rejected VALUES (9, 't', 'verdict', 'v', '{}', 422, 'old', 5);",
            )
            .unwrap();
        }
        let mut s = Spool::open(dir.path()).unwrap();
        let seq = s.head("t", 1).unwrap()[0].seq;
        assert_eq!(s.failed(seq, 500, "locked").unwrap().attempts, 1);
        let old = s.aside_one(9).unwrap().unwrap();
        assert_eq!((old.status, old.error.as_str(), old.attempts, old.spooled_at_ms), (422, "old", 0, None));
        let e = s.head("t", 1).unwrap().remove(0);
        s.set_aside(&e, 500, "window over", 0).unwrap();
        assert_eq!(s.aside_one(seq).unwrap().unwrap().attempts, 1, "the recorded attempt, not one more");
        drop(s);
        Spool::open(dir.path()).expect("a migrated spool opens again");
    }
}
