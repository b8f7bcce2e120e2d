//! What every room's import reads and no room owns: who is calling (module, version, task),
//! what it may do (grants, limits), until when (the cycle deadline), whether its effects are
//! held for a commit, and the tape. Built once per cycle and lent to each room alongside the
//! room's own state (capability/mod.rs's `View`), so a room never sees another room's state.

use std::time::Duration;

use tokio::time::Instant;

use crate::bindings::HostError;
use crate::policy::grants::Grants;
use crate::policy::limits::Limits;
use crate::policy::table::Capability;

pub struct Ctx {
    pub module: String,
    /// The module version, on every log line the module writes (wit/log.wit promises it).
    pub version: String,
    pub task: String,
    pub grants: Grants,
    pub limits: Limits,
    /// The whole cycle (guest time plus host calls) must end by then.
    pub deadline: Instant,
    /// A scheduled cycle keeps its external effects for the outbox's commit; a one-shot
    /// command (the gate, `run`) calls core and the arbiter directly.
    pub holding: bool,
    /// Recording or replaying this cycle's imports (`--record`, `run-once`); None: live.
    pub tape: Option<crate::tape::Tape>,
}

impl Ctx {
    /// A context for one call, its deadline `limits.wall_ms` from now.
    pub fn new(module: &str, version: &str, task: &str, grants: Grants, limits: Limits) -> Self {
        Ctx {
            module: module.to_string(),
            version: version.to_string(),
            task: task.to_string(),
            grants,
            deadline: Instant::now() + limits.wall(),
            limits,
            holding: false,
            tape: None,
        }
    }

    /// `what()` when a tape is on, else the default (`Value::Null`, an empty list): what
    /// only the tape reads (a call's arguments, as recorded) is not built on a live cycle,
    /// where a collect cycle makes thousands of calls (docs/BENCH.md, "Queries over direct
    /// connections").
    pub(crate) fn taped<T: Default>(&self, what: impl FnOnce() -> T) -> T {
        if self.tape.is_some() {
            what()
        } else {
            T::default()
        }
    }

    /// The budget of a plain host call: the call timeout cut by the cycle deadline.
    pub(crate) fn budget(&self) -> Duration {
        self.call_budget(self.call_timeout())
    }

    pub(crate) fn guard(&self, cap: Capability) -> Result<(), HostError> {
        if self.grants.allows(cap) {
            return Ok(());
        }
        crate::telemetry::denied(&self.module, &self.task, cap.name());
        Err(HostError::Denied(format!(
            "module {} has no '{}' grant; start the host with --grant {}={} (currently: {})",
            self.module,
            cap.name(),
            self.module,
            self.grants.clone().with(cap).names().join(","),
            match self.grants.names() {
                n if n.is_empty() => "log only".to_string(),
                n => n.join(","),
            }
        )))
    }

    pub(crate) fn check_request(&self, what: &str, len: usize) -> Result<(), HostError> {
        let max = self.limits.max_request_bytes;
        if len > max {
            return Err(HostError::Invalid(format!(
                "{what} of {len} bytes exceeds the limit of {max} bytes (max_request_bytes)"
            )));
        }
        Ok(())
    }

    /// The time a host call may take: its own timeout, cut short by the cycle's deadline.
    pub(crate) fn call_budget(&self, own: Duration) -> Duration {
        let left = self.deadline.saturating_duration_since(Instant::now());
        own.min(left)
    }

    /// Serialises a JSON response for the guest, enforcing the response cap.
    pub(crate) fn respond(&self, what: &str, v: serde_json::Value) -> Result<String, HostError> {
        self.respond_text(what, v.to_string())
    }

    /// [`Self::respond`] for an answer already JSON text (no tree built, none written).
    pub(crate) fn respond_raw(&self, what: &str, raw: Box<serde_json::value::RawValue>) -> Result<String, HostError> {
        self.respond_text(what, Box::<str>::from(raw).into_string())
    }

    fn respond_text(&self, what: &str, text: String) -> Result<String, HostError> {
        let max = self.limits.max_response_bytes;
        if text.len() > max {
            return Err(HostError::Invalid(format!(
                "{what} response of {} bytes exceeds the limit of {max} bytes",
                text.len()
            )));
        }
        Ok(text)
    }

    pub(crate) fn call_timeout(&self) -> Duration {
        Duration::from_millis(self.limits.call_ms)
    }
}
