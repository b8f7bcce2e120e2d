//! On-disk cache of compiled components.
//!
//! Compiling a module with Cranelift takes ~0.7 s per MB of wasm on this class of machine;
//! loading a precompiled artifact takes well under a millisecond. The key is the wasm's
//! sha256 plus wasmtime's own compatibility hash of the engine (version + every setting that
//! affects codegen), because an artifact from another engine config fails to load — or worse,
//! would be unsound to load.

use std::hash::{Hash, Hasher};
use std::path::PathBuf;

use anyhow::Result;
use wasmtime::component::Component;
use wasmtime::Engine;

use super::compiler::ChildError;

pub struct ArtifactCache {
    dir: Option<PathBuf>,
    engine_key: String,
    /// Where a miss is compiled: this executable in a child process, or in process (None).
    child: Option<PathBuf>,
    /// How long a child may compile.
    timeout: std::time::Duration,
}

/// Whether an artifact came from the cache or had to be compiled (reported in logs and bench).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Cached,
    Compiled,
}

impl ArtifactCache {
    /// `dir = None` disables the cache (every load compiles). A miss compiles in a child
    /// process when the binary asked for it (`compiler::use_child`).
    pub fn new(engine: &Engine, dir: Option<PathBuf>) -> Self {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        let child = super::compiler::child_exe().map(PathBuf::from);
        let timeout = super::compiler::COMPILE_TIMEOUT;
        ArtifactCache { dir, engine_key: format!("{:016x}", h.finish()), child, timeout }
    }

    /// Compile misses by running `exe` (this binary) in a child process, or in process.
    pub fn with_child(mut self, exe: Option<PathBuf>) -> Self {
        self.child = exe;
        self
    }

    /// How long a child may compile before it is stopped and the module refused.
    pub fn with_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.timeout = timeout;
        self
    }

    fn path_for(&self, sha256: &str) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.join(format!("{sha256}-{}.cwasm", self.engine_key)))
    }

    /// Whether a compiled artifact for `sha256` is on disk (it may still turn out unusable).
    pub fn has(&self, sha256: &str) -> bool {
        self.path_for(sha256).is_some_and(|p| p.exists())
    }

    /// Loads the compiled component for `wasm`, compiling and storing it on a miss. A corrupt
    /// or stale cache entry is recompiled and overwritten, never trusted.
    pub fn load(&self, engine: &Engine, wasm: &[u8], sha256: &str) -> Result<(Component, Origin)> {
        if let Some(path) = self.path_for(sha256) {
            if path.exists() {
                // SAFETY: the file was written by `Component::serialize` of an engine with the
                // same compatibility hash (it is in the file name), into a directory only this
                // host writes. wasmtime still checks the header and version on load.
                match unsafe { Component::deserialize_file(engine, &path) } {
                    Ok(c) => return Ok((c, Origin::Cached)),
                    Err(e) => tracing::warn!(path = %path.display(), error = %e, "discarding unusable cached artifact"),
                }
            }
        }
        if let Some(exe) = &self.child {
            match super::compiler::compile_in_child(exe, wasm, self.timeout) {
                Ok(artifact) => match self.keep(engine, sha256, artifact) {
                    Ok(component) => return Ok((component, Origin::Compiled)),
                    Err(e) => tracing::warn!(error = %e,
                        "the compiler process's artifact does not load in this engine; compiling in process"),
                },
                Err(e @ ChildError::Start { .. }) => tracing::warn!(error = %e, "compiling in process"),
                Err(ChildError::Refused(said)) => anyhow::bail!(said),
            }
        }
        let artifact = engine.precompile_component(wasm)?;
        Ok((self.keep(engine, sha256, artifact)?, Origin::Compiled))
    }

    /// A compiled artifact (the child's or our own): stored, then served from the file as a
    /// warm start would be — the compiled code then lives in the file's pages (clean, the
    /// kernel's to reclaim), not in anonymous memory for as long as the module is loaded
    /// (docs/BENCH.md, "Memory"); when the cache cannot be written (no cache, a read-only
    /// directory), loaded from the bytes.
    fn keep(&self, engine: &Engine, sha256: &str, artifact: Vec<u8>) -> Result<Component> {
        if let Some(path) = self.path_for(sha256) {
            match super::compiler::write_atomically(&path, &artifact) {
                // SAFETY: this engine's serialisation (or, from a child, that of this same
                // executable's engine: `/proc/self/exe`), whose compatibility hash is in the
                // file name; wasmtime checks header and version.
                Ok(()) => match unsafe { Component::deserialize_file(engine, &path) } {
                    Ok(c) => return Ok(c),
                    Err(e) => tracing::warn!(path = %path.display(), error = %e, "cannot map the compiled artifact"),
                },
                Err(e) => tracing::warn!(path = %path.display(), error = %e, "could not cache compiled artifact"),
            }
        }
        // SAFETY: as above, from memory.
        Ok(unsafe { Component::deserialize(engine, &artifact) }?)
    }
}

/// Default cache directory: `$NTHLAYER_CACHE_DIR`, else `$XDG_CACHE_HOME/nthlayer-host`, else
/// `~/.cache/nthlayer-host`.
pub fn default_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("NTHLAYER_CACHE_DIR") {
        return Some(PathBuf::from(d));
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
        return Some(PathBuf::from(d).join("nthlayer-host"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache").join("nthlayer-host"))
}
