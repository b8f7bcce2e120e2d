//! The bounded contract: a cap on every string and list a module hands the host.
//!
//! Whatever a module says is copied somewhere — `describe()` into every log line, heartbeat
//! and `check` report; a query into a URL or a request body; a log field into the log — so
//! each has a fixed cap. A value over its cap is refused with `invalid` (at load, for
//! `describe()`, naming the file), never truncated into something else; the message names
//! the cap and its value. Sizes that an operator may need to tune per module (records,
//! responses, state) are [`crate::runtime::limits::Limits`] instead. docs/SANDBOX.md has the
//! table.

use crate::runtime::ModuleMeta;

/// Module and task names (component-state keys, log fields): bytes.
pub const NAME_BYTES: usize = 64;
/// `describe()` version: bytes.
pub const VERSION_BYTES: usize = 64;
/// A task's summary: bytes.
pub const SUMMARY_BYTES: usize = 256;
/// Entries in `needs`.
pub const NEEDS: usize = 16;
/// Entries in `emits` (contract 0.3.0); each kind is at most [`NAME_BYTES`].
pub const EMITS: usize = 64;
/// A wake rule's kind, field path or value: bytes.
pub const WAKE_TEXT_BYTES: usize = 256;
/// One PromQL expression: bytes. Above [`crate::capability::prometheus::client::MAX_GET_PARAMS`] it is
/// sent as a POST form body.
pub const PROMQL_BYTES: usize = 256 << 10;
/// One TraceQL expression: bytes. Tempo takes it in the URL only, so it stays under the
/// 8 KiB request line common proxies accept.
pub const TRACEQL_BYTES: usize = 4096;
/// A range query's `step` (`"15s"`, `"1h"`): bytes.
pub const STEP_BYTES: usize = 32;
/// Queries in one `query-batch`.
pub const BATCH_QUERIES: usize = 256;

/// `Err("<what> of N bytes exceeds the cap of M bytes")` when `len > cap`.
pub fn bytes(what: &str, len: usize, cap: usize) -> Result<(), String> {
    if len > cap {
        return Err(format!("{what} of {len} bytes exceeds the cap of {cap} bytes"));
    }
    Ok(())
}

/// `Err("<what>: N entries exceed the cap of M")` when `len > cap`.
pub fn count(what: &str, len: usize, cap: usize) -> Result<(), String> {
    if len > cap {
        return Err(format!("{what}: {len} entries exceed the cap of {cap}"));
    }
    Ok(())
}

/// At most the first [`NAME_BYTES`] of a name a module gave, for error messages about the
/// module itself (its name may be the oversize value).
pub fn shown(name: &str) -> String {
    let mut end = name.len().min(NAME_BYTES);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    if end < name.len() {
        return format!("{}…", &name[..end]);
    }
    name.to_string()
}

/// Every cap on what `describe()` returned (names' alphabet and namespace are checked
/// after this, in runtime/load.rs).
pub fn describe(m: &ModuleMeta) -> Result<(), String> {
    bytes("module name", m.name.len(), NAME_BYTES)?;
    bytes("version", m.version.len(), VERSION_BYTES)?;
    if m.version.is_empty() || m.version.chars().any(char::is_control) {
        return Err("version must be 1-64 bytes without control characters".into());
    }
    count("needs", m.needs.len(), NEEDS)?;
    for n in &m.needs {
        bytes("a needs entry", n.len(), NAME_BYTES)?;
    }
    for t in &m.tasks {
        bytes("task name", t.name.len(), NAME_BYTES)?;
        let task = &t.name;
        bytes(&format!("summary of task {task:?}"), t.summary.len(), SUMMARY_BYTES)?;
        for r in &t.wake {
            bytes(&format!("task {task:?}: a wake rule's kind"), r.kind.len(), WAKE_TEXT_BYTES)?;
            for test in &r.tests {
                bytes(&format!("task {task:?}: a wake rule's field path"), test.path.len(), WAKE_TEXT_BYTES)?;
                for v in &test.values {
                    bytes(&format!("task {task:?}: a wake rule's value"), v.len(), WAKE_TEXT_BYTES)?;
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::TaskMeta;

    fn meta(version: &str, summary: &str) -> ModuleMeta {
        ModuleMeta {
            name: "m".into(),
            version: version.into(),
            tasks: vec![TaskMeta { name: "m".into(), interval_seconds: 1, summary: summary.into(), wake: vec![] }],
            needs: vec![],
            emits: None,
        }
    }

    #[test]
    fn describe_caps_name_the_cap_and_its_value() {
        assert!(describe(&meta("1.2.3", "fine")).is_ok());
        let big = "9".repeat(2 << 20);
        assert_eq!(describe(&meta(&big, "")).unwrap_err(), "version of 2097152 bytes exceeds the cap of 64 bytes");
        let e = describe(&meta("1", &"s".repeat(300))).unwrap_err();
        assert_eq!(e, "summary of task \"m\" of 300 bytes exceeds the cap of 256 bytes");
        assert!(describe(&meta("1\n2", "")).unwrap_err().contains("control characters"));
        assert!(describe(&meta("", "")).is_err());
    }

    #[test]
    fn shown_cuts_long_names_on_a_char_boundary() {
        assert_eq!(shown("observe"), "observe");
        let long = "é".repeat(100);
        let s = shown(&long);
        assert!(s.ends_with('…') && s.len() <= NAME_BYTES + '…'.len_utf8(), "{s}");
    }
}
