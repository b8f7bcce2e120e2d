//! `nthlayer:worker/log`: guest log lines into the host's log, tagged and rate-bounded.

use super::State;
use crate::bindings::latest::nthlayer::worker::log::{Host, Level};
use crate::capability::View;

/// Longest message or field value kept; longer ones are cut (with a marker).
const MAX_TEXT: usize = 4096;
const MAX_FIELDS: usize = 32;

pub(super) fn cut(s: &str) -> std::borrow::Cow<'_, str> {
    if s.len() <= MAX_TEXT {
        return s.into();
    }
    let mut end = MAX_TEXT;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…[{} bytes cut]", &s[..end], s.len() - end).into()
}

/// The tracing target of every module's log line: fixed, not this file's module path, so an
/// operator's `RUST_LOG=nthlayer_host::module=warn` or a log pipeline filtering on `target`
/// keeps working when the host's code moves.
pub const TARGET: &str = "nthlayer_host::module";

impl Host for View<'_, State> {
    async fn log(&mut self, level: Level, message: String, fields: Vec<(String, String)>) {
        let (cx, count) = (&self.cx, &mut self.state);
        if count.lines >= cx.limits.log_lines {
            count.dropped += 1;
            return;
        }
        count.lines += 1;
        let fields: Vec<String> =
            fields.iter().take(MAX_FIELDS).map(|(k, v)| format!("{}={}", cut(k), cut(v))).collect();
        let fields = fields.join(" ");
        let msg = cut(&message);
        let (module, version, task) = (&cx.module, &cx.version, &cx.task);
        match level {
            Level::Trace => {
                tracing::trace!(target: TARGET, module = %module, version = %version, task = %task, fields = %fields, "{msg}")
            }
            Level::Debug => {
                tracing::debug!(target: TARGET, module = %module, version = %version, task = %task, fields = %fields, "{msg}")
            }
            Level::Info => {
                tracing::info!(target: TARGET, module = %module, version = %version, task = %task, fields = %fields, "{msg}")
            }
            Level::Warn => {
                tracing::warn!(target: TARGET, module = %module, version = %version, task = %task, fields = %fields, "{msg}")
            }
            Level::Error => {
                tracing::error!(target: TARGET, module = %module, version = %version, task = %task, fields = %fields, "{msg}")
            }
        }
    }
}
