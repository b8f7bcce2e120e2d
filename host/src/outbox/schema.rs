//! Upgrades of a spool written by an older host: columns added since, additive only, so an
//! older host still reads the tables it knows. The spool runs them when it opens.

use rusqlite::{params, Connection};

/// Adds the bookkeeping columns to a spool made by an older host (additive only: an older
/// host still reads the tables it knows).
pub(super) fn upgrade_bookkeeping(db: &Connection) -> rusqlite::Result<()> {
    let add = [
        ("outbox", "attempts", "INTEGER NOT NULL DEFAULT 0"),
        ("outbox", "first_failed_at", "INTEGER"),
        ("outbox", "last_status", "INTEGER"),
        ("outbox", "last_error", "TEXT"),
        ("rejected", "component", "TEXT NOT NULL DEFAULT ''"),
        ("rejected", "spooled_at", "INTEGER"),
        ("rejected", "attempts", "INTEGER NOT NULL DEFAULT 0"),
    ];
    for (table, column, ty) in add {
        let exists: bool = db.query_row(
            &format!("SELECT COUNT(*) FROM pragma_table_info('{table}') WHERE name = ?1"),
            params![column],
            |r| r.get::<_, i64>(0).map(|n| n > 0),
        )?;
        if !exists {
            db.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {ty}"))?;
        }
    }
    Ok(())
}

/// Spools written before local state was tied to a core lack these columns; they read as
/// NULL (not known), which the start-up check treats as "compare with core's row only".
pub(super) fn add_identity_columns(db: &Connection) -> rusqlite::Result<()> {
    let have: Vec<String> = db
        .prepare("SELECT name FROM pragma_table_info('task_state')")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for col in ["saved_at", "core_url", "core_marker"] {
        if !have.iter().any(|h| h == col) {
            db.execute_batch(&format!("ALTER TABLE task_state ADD COLUMN {col} TEXT"))?;
        }
    }
    Ok(())
}
