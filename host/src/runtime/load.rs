//! Turning a file into a [`LoadedModule`]: read, hash, compile (or load from cache),
//! check imports, ask the module to describe itself, validate what it said.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::sandbox::CycleData;
use super::{cycle, LoadedModule, ModuleMeta, Runtime, TaskMeta};
use crate::bindings::WorkerPre;

/// Why a file could not become a module. Every variant names the file; the log line and the
/// `check` command print it as is.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{path}: cannot read: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("{path}: not a WebAssembly component: {reason}")]
    NotComponent { path: PathBuf, reason: String },
    #[error("{path}: {reason}")]
    Version { path: PathBuf, reason: String },
    /// Found by reading the component's declarations, before compiling (inspect.rs).
    #[error("{path}: {reason} (refused before compiling)")]
    Surface { path: PathBuf, reason: String },
    #[error("{path}: the component needs imports or exports this host does not provide: {reason}")]
    Contract { path: PathBuf, reason: String },
    #[error("{path}: describe() failed: {reason}")]
    Describe { path: PathBuf, reason: String },
    #[error("{path}: module {module:?} describes itself invalidly: {reason}")]
    Info { path: PathBuf, module: String, reason: String },
}

/// The 8-byte preamble of a component (`\0asm`, version 0x0d, layer 1). A core module has
/// layer 0; we say so explicitly instead of letting the compiler produce a vaguer error.
fn check_preamble(bytes: &[u8]) -> Result<(), String> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(format!("{} bytes without the \\0asm magic (truncated or not wasm)", bytes.len()));
    }
    if bytes[6..8] == [0, 0] {
        return Err("this is a core wasm module; build a component (cargo build --target wasm32-wasip2, or wasm-tools component new)".into());
    }
    Ok(())
}

impl<T: CycleData> Runtime<T> {
    /// Loads and validates one module file. Compilation runs on the blocking pool so the
    /// scheduler's threads keep serving cycles while a large module compiles.
    /// `env` builds the throwaway store `describe()` runs in.
    pub async fn load(self: &Arc<Self>, path: &Path, env: T::Env) -> Result<Arc<LoadedModule<T>>, LoadError> {
        let p = path.to_path_buf();
        let bytes =
            tokio::fs::read(path).await.map_err(|e| LoadError::Read { path: p.clone(), reason: e.to_string() })?;
        self.load_bytes(path, bytes, env).await
    }

    /// As [`Runtime::load`], for bytes already read (the watcher reads once and hashes).
    pub async fn load_bytes(
        self: &Arc<Self>,
        path: &Path,
        bytes: Vec<u8>,
        env: T::Env,
    ) -> Result<Arc<LoadedModule<T>>, LoadError> {
        let p = path.to_path_buf();
        check_preamble(&bytes).map_err(|reason| LoadError::NotComponent { path: p.clone(), reason })?;
        // Milliseconds, where compiling a Python component takes seconds: refuse early.
        let surface =
            super::inspect::surface(&bytes).map_err(|reason| LoadError::NotComponent { path: p.clone(), reason })?;
        // A contract version this host does not serve is the one thing to say about such a
        // component (its every nthlayer import is foreign to us): say that, not the list.
        let worker_imports = surface.imports.iter().filter(|i| i.starts_with("nthlayer:worker/"));
        if worker_imports.clone().next().is_some() {
            crate::bindings::contract_of_imports(worker_imports.map(String::as_str))
                .map_err(|reason| LoadError::Version { path: p.clone(), reason })?;
        }
        super::inspect::precheck(&surface).map_err(|reason| LoadError::Surface { path: p.clone(), reason })?;
        let sha256 = hex::encode(Sha256::digest(&bytes));
        let size_bytes = bytes.len() as u64;
        let rt = self.clone();
        let sha = sha256.clone();
        let started = std::time::Instant::now();
        let (component, origin) = tokio::task::spawn_blocking(move || rt.cache.load(&rt.engine, &bytes, &sha))
            .await
            .map_err(|e| LoadError::NotComponent { path: p.clone(), reason: e.to_string() })?
            .map_err(|e| LoadError::NotComponent { path: p.clone(), reason: format!("{e:#}") })?;
        let compile_ms = started.elapsed().as_millis() as u64;
        let contract = crate::bindings::contract_of(&component, &self.engine)
            .map_err(|reason| LoadError::Version { path: p.clone(), reason })?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::Contract { path: p.clone(), reason: format!("{e:#}") })?;
        let pre = WorkerPre::new(contract, pre)
            .map_err(|e| LoadError::Contract { path: p.clone(), reason: format!("{e:#}") })?;
        let info = cycle::describe(self, &pre, env)
            .await
            .map_err(|e| LoadError::Describe { path: p.clone(), reason: e.to_string() })?;
        let declares = pre.contract().declares_emissions();
        let mut meta = ModuleMeta {
            name: info.name,
            version: info.version,
            tasks: info
                .tasks
                .into_iter()
                .map(|t| TaskMeta {
                    wake: t.wake.iter().map(crate::wake::WakeRule::from).collect(),
                    name: t.name,
                    interval_seconds: t.interval_seconds,
                    summary: t.summary,
                })
                .collect(),
            needs: info.needs,
            emits: None,
        };
        let checked = meta
            .check_caps()
            .and_then(|()| validate(&meta))
            .and_then(|()| declares.then(|| crate::policy::emissions::declared(&info.emits)).transpose());
        match checked {
            Ok(emits) => meta.emits = emits,
            Err(reason) => {
                return Err(LoadError::Info { path: p, module: crate::policy::caps::shown(&meta.name), reason })
            }
        }
        Ok(Arc::new(LoadedModule {
            meta,
            path: p,
            sha256,
            loaded_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            origin,
            compile_ms,
            size_bytes,
            pre,
        }))
    }
}

/// Names become component-state keys and log fields: keep them to a safe alphabet, and tasks
/// inside their module's namespace so one module can never run (or overwrite the state of)
/// another module's task.
fn validate(m: &ModuleMeta) -> Result<(), String> {
    let ok_name = |s: &str| {
        !s.is_empty()
            && s.len() <= 64
            && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c))
    };
    if !ok_name(&m.name) || m.name.contains('.') {
        return Err("module name must be 1-64 chars of [a-z0-9-_] (no dots)".into());
    }
    if m.tasks.is_empty() {
        return Err("module declares no tasks".into());
    }
    let mut seen = std::collections::HashSet::new();
    for t in &m.tasks {
        if !ok_name(&t.name) || !(t.name == m.name || t.name.starts_with(&format!("{}.", m.name))) {
            return Err(format!("task {:?} must be named \"{0}\" or \"{0}.<task>\" in [a-z0-9-_.]", m.name)
                .replace("{0}", &m.name));
        }
        if !seen.insert(&t.name) {
            return Err(format!("task {:?} declared twice", t.name));
        }
        crate::wake::validate(&t.name, &t.wake)?;
    }
    for n in &m.needs {
        if crate::policy::grants::Capability::parse(n).is_none() {
            return Err(format!(
                "unknown capability {n:?} in needs (known: {}, log)",
                crate::policy::grants::Capability::known()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(name: &str, tasks: &[&str]) -> ModuleMeta {
        ModuleMeta {
            name: name.into(),
            version: "1".into(),
            tasks: tasks
                .iter()
                .map(|t| TaskMeta { name: t.to_string(), interval_seconds: 1, summary: String::new(), wake: vec![] })
                .collect(),
            needs: vec!["core".into()],
            emits: None,
        }
    }

    #[test]
    fn tasks_must_stay_in_their_namespace() {
        assert!(validate(&meta("observe", &["observe.collect", "observe"])).is_ok());
        assert!(validate(&meta("evil", &["observe.collect"])).unwrap_err().contains("must be named"));
        assert!(validate(&meta("evil", &["evil.a", "evil.a"])).unwrap_err().contains("twice"));
        assert!(validate(&meta("Bad Name", &["x"])).is_err());
        assert!(validate(&meta("empty", &[])).is_err());
    }

    #[test]
    fn preamble_distinguishes_core_modules_and_garbage() {
        assert!(check_preamble(b"hello world").unwrap_err().contains("magic"));
        assert!(check_preamble(b"\0asm\x01\0\0\0").unwrap_err().contains("core wasm module"));
        assert!(check_preamble(b"\0asm\x0d\0\x01\0").is_ok());
    }
}
