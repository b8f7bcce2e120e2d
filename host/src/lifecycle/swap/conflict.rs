//! Two files claiming one module name: which one serves, and the error naming both.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::{warn_ungranted, Watcher};
use crate::lifecycle::registry::{ModuleSlot, Serving};
use crate::lifecycle::scheduler::Scheduler;

impl Watcher {
    /// `path` claims a module name another file serves. Trusted code wins over untrusted;
    /// between equals the one serving keeps serving. The loser is refused with an error
    /// naming both files and the winner, whichever of the two it is.
    pub(super) fn conflict(
        &mut self,
        path: &Path,
        sha: String,
        serving: Serving,
        slot: &Arc<ModuleSlot>,
        scheduler: Option<&Arc<Scheduler>>,
    ) -> Result<(), String> {
        let name = serving.module.meta.name.clone();
        let current = slot.serving();
        let other = current.module.path.clone();
        if !serving.trust.trusted() || current.trust.trusted() {
            let why = if current.trust.trusted() && !serving.trust.trusted() {
                "trusted code wins over untrusted"
            } else {
                "the file already serving keeps serving"
            };
            return Err(conflict_error(&name, path, &other, &other, why));
        }
        // Trusted code displaces an untrusted file: installed outside probation, since rolling
        // back would hand the name back to the untrusted code.
        let reason = conflict_error(&name, path, &other, path, "trusted code wins over untrusted");
        let old = slot.install(serving);
        if let Some(k) = self.known.values_mut().find(|k| k.module.as_deref() == Some(name.as_str())) {
            k.module = None;
            k.sha256 = None;
        }
        self.registry.note_rejected(&other, &reason);
        let k = self.known.entry(path.to_path_buf()).or_default();
        k.sha256 = Some(sha);
        k.module = Some(name);
        let new = slot.serving();
        tracing::info!(module = %new.module.label(), replaced = %old.module.label(), grants = ?new.grants.names(),
            trust = ?new.trust, "module swapped; in-flight cycles finish on the old version");
        warn_ungranted(&new);
        if let Some(s) = scheduler {
            s.start_module(slot.clone(), Duration::ZERO);
        }
        Ok(())
    }
}

/// Logs a name conflict as an error naming both files and the winner; returns the reason kept
/// for the loser (heartbeats' rejected files).
pub(super) fn conflict_error(name: &str, file: &Path, other: &Path, winner: &Path, why: &str) -> String {
    let (file, other, winner) = (file.display(), other.display(), winner.display());
    tracing::error!(module = %name, %file, %other, %winner,
        "module name conflict: {file} and {other} both provide module {name:?}; {winner} serves ({why})");
    format!("module {name:?} is provided by both {file} and {other}; {winner} serves ({why})")
}
