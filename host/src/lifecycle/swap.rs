//! Watching `--modules` and swapping versions while the host runs.
//!
//! Polling, not inotify: a stat of a few files every half second is free, works the same on
//! bind mounts, network file systems and Kubernetes ConfigMap symlink flips (which inotify
//! watchers famously miss), and gives a natural "is the file done?" test: a changed file is
//! only read once its size and mtime held still across two polls. Even then a truncated
//! file never reaches the scheduler: it must compile, pre-instantiate against our linker,
//! answer `describe()` and keep its module name before it is swapped in.
//!
//! Compilation happens on the blocking pool (`Runtime::load`), off the scheduler's path. At
//! `serve` start-up a large component with no cached artifact (an interpreted guest: Python
//! ~18 MB compiles for ~13 s cold) compiles in the background: the other modules, built-ins
//! included, start at once, and it joins when ready. If it provides a built-in's name it
//! replaces that built-in then, as any swap does.
//!
//! The built-in modules embedded in the binary load after the files, for every name no file
//! provides; a trusted file (byte-identical to a built-in, or under `--trusted-dir`) that
//! provides a built-in's name replaces it (now or later, as a swap), and when that file goes
//! away the embedded version serves again. Every version's grants
//! and limits are resolved anew from what its code is (policy/grants.rs), so a swap can
//! never inherit the rights of the version it replaced.
//!
//! Two files claiming one module name is an error logged with both files and the winner, and
//! the winner never depends on the order files sort in: trusted code (byte-identical to a
//! built-in, or under `--trusted-dir`) wins over untrusted code, and between equals the file
//! already serving keeps serving. A built-in is trusted code, so an untrusted file claiming
//! its name never displaces it, at start-up or later: a stranger's file must not take a
//! working module away just by being there (an operator replaces a built-in with their own
//! build by putting it under `--trusted-dir`, or serves without built-ins: `--no-builtin`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use sha2::{Digest, Sha256};

use crate::lifecycle::config::expand_modules;
use crate::lifecycle::registry::{ModuleSlot, Registry, Serving};
use crate::lifecycle::scheduler::{RunEnv, Scheduler};
use crate::policy::builtin::Embedded;
use crate::policy::grants::{GrantPolicy, Trust};
use crate::runtime::LoadError;
use crate::store::LoadedModule;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    mtime: SystemTime,
}

fn stamp(path: &Path) -> Option<Stamp> {
    let md = std::fs::metadata(path).ok()?;
    md.is_file().then(|| Stamp { len: md.len(), mtime: md.modified().unwrap_or(SystemTime::UNIX_EPOCH) })
}

/// What we know about one file.
#[derive(Default)]
struct Known {
    /// The stamp we last acted on (loaded, or rejected).
    handled: Option<Stamp>,
    /// A new stamp seen once; acted on when seen again unchanged.
    pending: Option<Stamp>,
    sha256: Option<String>,
    /// Module this file provides, once loaded.
    module: Option<String>,
}

/// Start-up loads of components at least this large compile in the background when their
/// artifact is not cached. Our Rust modules are < 1 MB and compile in well under a second;
/// interpreted guests (Python ~18 MB, JavaScript ~12 MB) take 10-20 s.
pub const BACKGROUND_COMPILE_BYTES: u64 = 4 << 20;

/// A start-up load compiling in the background.
struct Deferred {
    path: PathBuf,
    stamp: Option<Stamp>,
    sha256: String,
    started: Instant,
    task: tokio::task::JoinHandle<Result<Arc<LoadedModule>, LoadError>>,
}

pub struct Watcher {
    specs: Vec<String>,
    env: RunEnv,
    registry: Arc<Registry>,
    grants: GrantPolicy,
    rollback_after: u32,
    known: HashMap<PathBuf, Known>,
    builtins: Vec<&'static Embedded>,
    /// Compile large uncached components in the background at start-up (`serve`; the
    /// one-shot commands need their module before they can do anything).
    background: bool,
    deferred: Vec<Deferred>,
}

impl Watcher {
    pub fn new(
        specs: Vec<String>,
        env: RunEnv,
        registry: Arc<Registry>,
        grants: GrantPolicy,
        rollback_after: u32,
    ) -> Self {
        Watcher {
            specs,
            env,
            registry,
            grants,
            rollback_after,
            known: HashMap::new(),
            builtins: Vec::new(),
            background: false,
            deferred: Vec::new(),
        }
    }

    /// Compile large uncached components in the background at start-up.
    pub fn with_background_compile(mut self, on: bool) -> Self {
        self.background = on;
        self
    }

    /// Serve these embedded modules where no file provides their name.
    pub fn with_builtins(mut self, builtins: &'static [Embedded]) -> Self {
        self.builtins = builtins.iter().collect();
        self
    }

    /// A loaded version with the rights its identity earns.
    fn serving(&self, module: Arc<LoadedModule>, trust: Trust) -> Serving {
        let name = &module.meta.name;
        Serving {
            grants: self.grants.resolve(name, &module.meta.needs, module.meta.emits.as_ref(), &trust),
            limits: self.env.config.limits_for(name),
            trust,
            module,
        }
    }

    async fn load_embedded(&self, e: &Embedded) -> Result<Serving, String> {
        let path = e.path();
        let loaded = self
            .env
            .runtime
            .load_bytes(&path, e.bytes.to_vec(), self.env.services.clone())
            .await
            .map_err(|e| e.to_string())?;
        if loaded.meta.name != e.name {
            return Err(format!("embedded {} describes itself as {:?}", e.name, loaded.meta.name));
        }
        let serving = self.serving(loaded, Trust::Embedded);
        crate::policy::shares::admit(&serving.module.meta.name, serving.module.meta.tasks.len(), &serving.limits)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(serving)
    }

    /// Loads the embedded modules no file provides. Returns the failures (a broken build).
    async fn load_builtins(&mut self, scheduler: Option<&Arc<Scheduler>>) -> usize {
        let mut failures = 0;
        for e in self.builtins.clone() {
            if self.registry.get(e.name).is_some() {
                tracing::info!(module = e.name, "a module file replaces the embedded built-in");
                continue;
            }
            match self.load_embedded(e).await {
                Ok(serving) => {
                    log_loaded(&serving, "built-in module loaded");
                    let slot = Arc::new(ModuleSlot::new(serving, self.rollback_after));
                    self.registry.insert(e.name, slot.clone());
                    if let Some(s) = scheduler {
                        s.start_module(slot, Duration::ZERO);
                    }
                }
                Err(reason) => {
                    tracing::error!(module = e.name, error = %reason, "embedded built-in module failed to load");
                    self.registry.note_rejected(&e.path(), &reason);
                    failures += 1;
                }
            }
        }
        failures
    }

    fn files(&self) -> Vec<PathBuf> {
        match expand_modules(&self.specs) {
            Ok(files) => files,
            Err(e) => {
                tracing::warn!(error = %e, "cannot expand --modules");
                Vec::new()
            }
        }
    }

    /// Loads every file present now, without the settle wait, trusted files first so a
    /// name conflict never depends on how the files sort. Returns the load failures.
    pub async fn initial_load(&mut self, scheduler: Option<&Arc<Scheduler>>) -> usize {
        let mut failures = 0;
        let mut files = Vec::new();
        for path in self.files() {
            let trusted = match tokio::fs::read(&path).await {
                Ok(bytes) => self.grants.identify(&path, &hex::encode(Sha256::digest(&bytes))).trusted(),
                Err(_) => false, // handle() reports it
            };
            files.push((!trusted, path));
        }
        files.sort_by_key(|(untrusted, _)| *untrusted); // stable: sort order among equals
        for (_, path) in files {
            let s = stamp(&path);
            if self.defer(&path, s).await {
                continue;
            }
            if !self.handle(&path, s, scheduler).await {
                failures += 1;
            }
        }
        failures + self.load_builtins(scheduler).await
    }

    /// Starts compiling `path` in the background if it is large and not in the artifact
    /// cache (and background compiles are on). True if it did.
    async fn defer(&mut self, path: &Path, s: Option<Stamp>) -> bool {
        if !self.background || s.is_none_or(|s| s.len < BACKGROUND_COMPILE_BYTES) {
            return false;
        }
        let Ok(bytes) = tokio::fs::read(path).await else { return false };
        let sha256 = hex::encode(Sha256::digest(&bytes));
        if !self.env.runtime.needs_compile(&sha256) {
            return false;
        }
        self.known.entry(path.to_path_buf()).or_default().handled = s;
        self.registry.note_compiling(path, true);
        tracing::info!(file = %path.display(), size_bytes = bytes.len(), "compiling in the background; the other modules start now");
        let (rt, services, p) = (self.env.runtime.clone(), self.env.services.clone(), path.to_path_buf());
        let task = tokio::spawn(async move { rt.load_bytes(&p, bytes, services).await });
        self.deferred.push(Deferred { path: path.to_path_buf(), stamp: s, sha256, started: Instant::now(), task });
        true
    }

    /// Installs the background compiles that finished. A result for a file that changed
    /// meanwhile is dropped: the poll has loaded the newer content.
    async fn finish_deferred(&mut self, scheduler: &Arc<Scheduler>) {
        let (done, pending): (Vec<Deferred>, Vec<Deferred>) =
            std::mem::take(&mut self.deferred).into_iter().partition(|d| d.task.is_finished());
        self.deferred = pending;
        for d in done {
            self.registry.note_compiling(&d.path, false);
            let loaded = match d.task.await {
                Ok(r) => r.map_err(|e| e.to_string()),
                Err(e) => Err(format!("{}: background compile failed: {e}", d.path.display())),
            };
            if self.known.get(&d.path).map(|k| k.handled) != Some(d.stamp) {
                tracing::info!(file = %d.path.display(), "background compile of an outdated version dropped");
                continue;
            }
            if let Ok(m) = &loaded {
                tracing::info!(file = %d.path.display(), module = %m.label(), compile_ms = m.compile_ms,
                    ready_ms = d.started.elapsed().as_millis() as u64, "background compile finished");
            }
            let r = self.install_loaded(&d.path, d.sha256, loaded, d.started, Some(scheduler));
            self.settle(&d.path, r);
            scheduler.status.touch();
        }
    }

    /// Polls until shutdown; `every` zero: only installs the background compiles, then returns.
    pub async fn run(mut self, scheduler: Arc<Scheduler>, every: Duration) {
        loop {
            let tick = if every.is_zero() { Duration::from_millis(200) } else { every };
            tokio::select! {
                _ = scheduler.shutdown.cancelled() => return,
                _ = tokio::time::sleep(tick) => {}
            }
            self.finish_deferred(&scheduler).await;
            if every.is_zero() {
                if self.deferred.is_empty() {
                    return;
                }
                continue;
            }
            self.poll(&scheduler).await;
        }
    }

    async fn poll(&mut self, scheduler: &Arc<Scheduler>) {
        let files = self.files();
        let mut changed = false;
        // Removed files: unload their module after its in-flight cycles.
        let gone: Vec<PathBuf> = self.known.keys().filter(|p| !files.contains(p)).cloned().collect();
        for path in gone {
            self.registry.clear_rejected(&path);
            if let Some(k) = self.known.remove(&path) {
                if let Some(name) = k.module {
                    if self.restore_builtin(&name, &path).await {
                        changed = true;
                        continue;
                    }
                    if let Some(slot) = self.registry.remove(&name) {
                        slot.retire();
                        changed = true;
                        tracing::info!(file = %path.display(), module = %slot.current().label(), "module file removed; unloading after in-flight cycles");
                    }
                }
            }
        }
        for path in files {
            let now = stamp(&path);
            let k = self.known.entry(path.clone()).or_default();
            if now.is_none() || now == k.handled {
                k.pending = None;
                continue;
            }
            if k.pending != now {
                k.pending = now; // first sighting: wait one poll for the writer to finish
                continue;
            }
            k.pending = None;
            self.handle(&path, now, Some(scheduler)).await;
            changed = true;
        }
        // The set of serving versions (or rejected files) changed: tell core now rather than
        // at the next cycle, which for a removed module never comes.
        if changed {
            scheduler.status.touch();
        }
    }

    /// A file that replaced a built-in went away: the embedded version serves again.
    async fn restore_builtin(&self, name: &str, path: &Path) -> bool {
        let (Some(e), Some(slot)) = (self.builtins.iter().find(|e| e.name == name), self.registry.get(name)) else {
            return false;
        };
        match self.load_embedded(e).await {
            Ok(serving) => {
                let old = slot.install(serving);
                tracing::info!(file = %path.display(), module = %slot.current().label(), replaced = %old.module.label(),
                    "module file removed; the embedded built-in serves again");
                true
            }
            Err(reason) => {
                tracing::error!(module = name, error = %reason, "embedded built-in module failed to load");
                false
            }
        }
    }

    /// Loads (or reloads) one file and installs it. Returns false if the file was rejected;
    /// the reason is kept for heartbeats until the file changes or goes away.
    async fn handle(&mut self, path: &Path, s: Option<Stamp>, scheduler: Option<&Arc<Scheduler>>) -> bool {
        let r = self.install(path, s, scheduler).await;
        self.settle(path, r)
    }

    /// Keeps a rejection's reason for heartbeats, or clears it. True if installed.
    fn settle(&self, path: &Path, r: Result<(), String>) -> bool {
        match r {
            Ok(()) => {
                self.registry.clear_rejected(path);
                true
            }
            Err(reason) => {
                self.registry.note_rejected(path, &reason);
                false
            }
        }
    }

    async fn install(
        &mut self,
        path: &Path,
        s: Option<Stamp>,
        scheduler: Option<&Arc<Scheduler>>,
    ) -> Result<(), String> {
        let started = Instant::now();
        let k = self.known.entry(path.to_path_buf()).or_default();
        k.handled = s;
        let bytes = match tokio::fs::read(path).await {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(file = %path.display(), error = %e, "module file unreadable");
                return Err(format!("unreadable: {e}"));
            }
        };
        let sha = hex::encode(Sha256::digest(&bytes));
        if k.sha256.as_deref() == Some(sha.as_str()) {
            return Ok(()); // touched, not changed
        }
        let loaded =
            self.env.runtime.load_bytes(path, bytes, self.env.services.clone()).await.map_err(|e| e.to_string());
        self.install_loaded(path, sha, loaded, started, scheduler)
    }

    /// Installs a loaded (or refused) version of `path`: new module, swap, or rejection.
    fn install_loaded(
        &mut self,
        path: &Path,
        sha: String,
        loaded: Result<Arc<LoadedModule>, String>,
        started: Instant,
        scheduler: Option<&Arc<Scheduler>>,
    ) -> Result<(), String> {
        let previous_module = self.known.get(path).and_then(|k| k.module.clone());
        let loaded = match loaded {
            Ok(m) => m,
            Err(e) => {
                match previous_module.as_deref().and_then(|n| self.registry.get(n)) {
                    Some(slot) => tracing::error!(file = %path.display(), module = %slot.current().label(), error = %e,
                        "new version rejected; the current version keeps serving"),
                    None => tracing::error!(file = %path.display(), error = %e, "module not loaded"),
                }
                return Err(e);
            }
        };
        let name = loaded.meta.name.clone();
        if let Some(prev) = &previous_module {
            if *prev != name {
                tracing::error!(file = %path.display(), was = %prev, now = %name,
                    "new version rejected: the file now provides another module; remove the file and add it anew to rename");
                return Err(format!("file now provides module {name:?}, was {prev:?}"));
            }
        }
        let serving = self.serving(loaded.clone(), self.grants.identify(path, &sha));
        if let Err(e) = crate::policy::shares::admit(&loaded.meta.name, loaded.meta.tasks.len(), &serving.limits) {
            let e = format!("{}: {e}", path.display());
            tracing::error!(file = %path.display(), module = %name, error = %e, "module not loaded");
            return Err(e);
        }
        let k = self.known.get_mut(path).expect("known entry");
        match self.registry.get(&name) {
            // A built-in is trusted code: only trusted code (an operator's own build under
            // --trusted-dir) replaces it, so a stranger's file cannot take it away by name.
            Some(slot) if previous_module.is_none() && slot.current().embedded() && !serving.trust.trusted() => {
                let builtin = slot.current().path.clone();
                return Err(conflict_error(&name, path, &builtin, &builtin, "trusted code wins over untrusted"));
            }
            Some(slot) if previous_module.is_some() || slot.current().embedded() => {
                let old = slot.swap(serving);
                let new = slot.serving();
                let rights = new.rights_change(&old).unwrap_or_else(|| "unchanged".into());
                k.sha256 = Some(sha);
                k.module = Some(name.clone());
                tracing::info!(module = %loaded.label(), replaced = %old.module.label(), origin = ?loaded.origin,
                    grants = ?new.grants.names(), trust = ?new.trust, %rights,
                    swap_ms = started.elapsed().as_millis() as u64, "module swapped; in-flight cycles finish on the old version");
                warn_ungranted(&new);
                if let Some(s) = scheduler {
                    s.start_module(slot, Duration::ZERO);
                }
            }
            Some(slot) => return self.conflict(path, sha, serving, &slot, scheduler),
            None if !serving.trust.trusted() && self.builtins.iter().any(|e| e.name == name) => {
                let builtin = self.builtins.iter().find(|e| e.name == name).expect("found").path();
                return Err(conflict_error(&name, path, &builtin, &builtin, "trusted code wins over untrusted"));
            }
            None => {
                tracing::info!(load_ms = started.elapsed().as_millis() as u64, compile_ms = loaded.compile_ms,
                    file = %path.display(), "module file read and compiled");
                log_loaded(&serving, "module loaded");
                let slot = Arc::new(ModuleSlot::new(serving, self.rollback_after));
                self.registry.insert(&name, slot.clone());
                k.sha256 = Some(sha);
                k.module = Some(name);
                if let Some(s) = scheduler {
                    s.start_module(slot, Duration::ZERO);
                }
            }
        }
        Ok(())
    }
}

fn log_loaded(s: &Serving, what: &str) {
    let m = &s.module;
    tracing::info!(module = %m.label(), origin = ?m.origin, grants = ?s.grants.names(), trust = ?s.trust,
        tasks = ?m.meta.tasks.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), "{what}");
    warn_ungranted(s);
}

/// Declared needs or emissions not granted are not an error (the module may cope), but the
/// operator should see them once, at load, rather than as denied calls cycle after cycle.
/// Both lines name the same whole `--grant` line, since a second line for the module would
/// replace the first.
fn warn_ungranted(s: &Serving) {
    let (module, version) = (&s.module.meta.name, &s.module.meta.version);
    let needs = s.ungranted_needs();
    if !needs.is_empty() {
        tracing::warn!(%module, %version, needs = ?needs, "module declares needs it is not granted; those calls will be denied (grant with --grant {})", s.grant_line());
    }
    let missing = s.grants.emits.missing().labels();
    if !missing.is_empty() {
        tracing::warn!(%module, %version, emits = ?missing, "module {module}@{version} declares emissions it is not granted; those records will be denied (grant with --grant {})", s.grant_line());
    }
}

mod conflict;
use conflict::conflict_error;

#[cfg(test)]
mod tests;
