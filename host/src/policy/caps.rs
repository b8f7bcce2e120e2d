//! The bounded contract: a cap on every string and list a module hands the host.
//!
//! Whatever a module says is copied somewhere — `describe()` into every log line, heartbeat
//! and `check` report; a query into a URL or a request body; a log field into the log — so
//! each has a fixed cap. A value over its cap is refused with `invalid` (at load, for
//! `describe()`, naming the file), never truncated into something else; the message names
//! the cap and its value. Sizes that an operator may need to tune per module (records,
//! responses, state) are [`crate::policy::limits::Limits`] instead. docs/SANDBOX.md has the
//! table. The caps on `describe()` are applied where its answer is read (runtime/mod.rs,
//! `ModuleMeta::check_caps`), so this file needs nothing from the runtime.

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
/// One PromQL expression: bytes. Above [`crate::backend::prometheus::MAX_GET_PARAMS`] it is
/// sent as a POST form body.
pub const PROMQL_BYTES: usize = 256 << 10;
/// One TraceQL expression: bytes. Tempo takes it in the URL only, so it stays under the
/// 8 KiB request line common proxies accept.
pub const TRACEQL_BYTES: usize = 4096;
/// A range query's `step` (`"15s"`, `"1h"`): bytes.
pub const STEP_BYTES: usize = 32;
/// Queries in one `query-batch`.
pub const BATCH_QUERIES: usize = 256;
/// Records in one `submit-batch` (0.4.0): what the host lifts from the guest in one call;
/// max_records still counts each record.
pub const SUBMIT_BATCH: usize = 1024;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_cuts_long_names_on_a_char_boundary() {
        assert_eq!(shown("observe"), "observe");
        let long = "é".repeat(100);
        let s = shown(&long);
        assert!(s.ends_with('…') && s.len() <= NAME_BYTES + '…'.len_utf8(), "{s}");
    }
}
