//! The wasm side of the host: one engine, compiled components (cached on disk), and a fresh
//! store + instance for every call into a module.
//!
//! Lifecycle of a module file: [`Runtime::load`] reads and hashes it, compiles it off the
//! async threads (or loads the cached artifact), pre-instantiates it against the linker —
//! which is where an import the host does not offer is caught — and calls `describe()` in a
//! throwaway instance. The result, a [`LoadedModule`], is immutable; a new file version is a
//! new `LoadedModule`, so swapping is replacing an `Arc`.

pub mod cache;
pub mod compiler;
pub mod config;
pub mod cpu;
pub mod cycle;
pub mod engine;
pub mod heap;
pub mod inspect;
pub mod limiter;
pub mod load;
pub mod resident;
pub mod sandbox;
pub mod seeded;
pub mod task_state;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;
use wasmtime::component::Linker;
use wasmtime::Engine;

use crate::bindings::WorkerPre;
use crate::policy::caps;
pub use cycle::CycleError;
pub use load::LoadError;
use sandbox::CycleData;

/// Static description of a loaded module version, as `describe()` returned it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ModuleMeta {
    pub name: String,
    pub version: String,
    pub tasks: Vec<TaskMeta>,
    pub needs: Vec<String>,
    /// The records it declares it emits (contract 0.3.0 on); None: built against an older
    /// contract, which cannot declare (emissions.rs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub emits: Option<crate::policy::emissions::Emits>,
}

impl ModuleMeta {
    /// Every cap on what `describe()` returned (policy/caps.rs; names' alphabet and
    /// namespace are checked after this, in load.rs).
    pub fn check_caps(&self) -> Result<(), String> {
        caps::bytes("module name", self.name.len(), caps::NAME_BYTES)?;
        caps::bytes("version", self.version.len(), caps::VERSION_BYTES)?;
        if self.version.is_empty() || self.version.chars().any(char::is_control) {
            return Err("version must be 1-64 bytes without control characters".into());
        }
        caps::count("needs", self.needs.len(), caps::NEEDS)?;
        for n in &self.needs {
            caps::bytes("a needs entry", n.len(), caps::NAME_BYTES)?;
        }
        for t in &self.tasks {
            caps::bytes("task name", t.name.len(), caps::NAME_BYTES)?;
            let task = &t.name;
            caps::bytes(&format!("summary of task {task:?}"), t.summary.len(), caps::SUMMARY_BYTES)?;
            for r in &t.wake {
                caps::bytes(&format!("task {task:?}: a wake rule's kind"), r.kind.len(), caps::WAKE_TEXT_BYTES)?;
                for test in &r.tests {
                    caps::bytes(
                        &format!("task {task:?}: a wake rule's field path"),
                        test.path.len(),
                        caps::WAKE_TEXT_BYTES,
                    )?;
                    for v in &test.values {
                        caps::bytes(&format!("task {task:?}: a wake rule's value"), v.len(), caps::WAKE_TEXT_BYTES)?;
                    }
                }
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TaskMeta {
    pub name: String,
    pub interval_seconds: u32,
    pub summary: String,
    /// Records that wake the task between intervals (contract 0.2.0; empty before).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub wake: Vec<crate::wake::WakeRule>,
}

/// One compiled, validated version of a module file.
pub struct LoadedModule<T: 'static> {
    pub meta: ModuleMeta,
    pub path: PathBuf,
    pub sha256: String,
    /// RFC 3339 time this version was loaded.
    pub loaded_at: String,
    pub origin: cache::Origin,
    /// Compiling, or loading the cached artifact (`origin` says which), in milliseconds.
    pub compile_ms: u64,
    pub size_bytes: u64,
    pre: WorkerPre<T>,
}

impl<T: Send + 'static> LoadedModule<T> {
    /// Loaded from the bytes embedded in the binary, not from a file.
    pub fn embedded(&self) -> bool {
        self.path.to_string_lossy().starts_with(crate::policy::builtin::EMBEDDED_PREFIX)
    }

    /// The `nthlayer:worker` version the component was built against.
    pub fn contract(&self) -> crate::bindings::Contract {
        self.pre.contract()
    }

    /// A short label for logs and errors: `observe@0.1.0 (observe.wasm, sha256 1a2b3c4d)`.
    pub fn label(&self) -> String {
        let file = self.path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
        format!(
            "{}@{} ({file}, sha256 {})",
            self.meta.name,
            self.meta.version,
            &self.sha256[..8.min(self.sha256.len())]
        )
    }
}

/// Generic over the store data (`CycleData`), which is composed above the runtime
/// (`crate::store`): the runtime knows the sandbox, never a capability.
pub struct Runtime<T: 'static> {
    engine: Engine,
    linker: Linker<T>,
    cache: cache::ArtifactCache,
    ticker: engine::EpochTicker,
}

impl<T: CycleData> Runtime<T> {
    /// `link` defines every import the store data offers.
    pub fn new(cache_dir: Option<PathBuf>, link: impl FnOnce(&Engine) -> Result<Linker<T>>) -> Result<Arc<Self>> {
        let engine = engine::new_engine()?;
        let linker = link(&engine)?;
        let cache = cache::ArtifactCache::new(&engine, cache_dir);
        let ticker = engine::EpochTicker::start(engine.clone());
        Ok(Arc::new(Runtime { engine, linker, cache, ticker }))
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Whether loading a component of `sha256` would compile it (no cached artifact).
    pub fn needs_compile(&self, sha256: &str) -> bool {
        !self.cache.has(sha256)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(meta("1.2.3", "fine").check_caps().is_ok());
        let big = "9".repeat(2 << 20);
        assert_eq!(meta(&big, "").check_caps().unwrap_err(), "version of 2097152 bytes exceeds the cap of 64 bytes");
        let e = meta("1", &"s".repeat(300)).check_caps().unwrap_err();
        assert_eq!(e, "summary of task \"m\" of 300 bytes exceeds the cap of 256 bytes");
        assert!(meta("1\n2", "").check_caps().unwrap_err().contains("control characters"));
        assert!(meta("", "").check_caps().is_err());
    }
}
