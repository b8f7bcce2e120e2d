//! The built-in modules, embedded in the binary at build time (`host/build.rs` from
//! `modules/builtin.txt`). They serve when `--modules` is absent, as `nthlayer-workers`
//! serves its modules with no list; a file providing the same module name replaces one.
//!
//! Their bytes are also the host's notion of identity: code the operator installed with the
//! binary is trusted, and a file is trusted only if its sha256 equals an embedded one
//! (docs/SANDBOX.md) — never because of the name it gives itself.

use std::path::PathBuf;
use std::sync::OnceLock;

use sha2::{Digest, Sha256};

/// One embedded component.
pub struct Embedded {
    /// The module name it must describe itself as (checked at load).
    pub name: &'static str,
    pub bytes: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/embedded.rs"));

impl Embedded {
    /// The path this component is reported under (heartbeats, logs): not a file.
    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!("{EMBEDDED_PREFIX}{}.wasm", self.name))
    }

    pub fn sha256(&self) -> &'static str {
        let i = EMBEDDED.iter().position(|e| std::ptr::eq(e, self)).expect("an EMBEDDED entry");
        &hashes()[i]
    }
}

/// How embedded components' paths start; no file path does.
pub const EMBEDDED_PREFIX: &str = "embedded:";

fn hashes() -> &'static [String] {
    static H: OnceLock<Vec<String>> = OnceLock::new();
    H.get_or_init(|| EMBEDDED.iter().map(|e| hex::encode(Sha256::digest(e.bytes))).collect())
}

/// Every embedded component.
pub fn all() -> &'static [Embedded] {
    EMBEDDED
}

pub fn get(name: &str) -> Option<&'static Embedded> {
    EMBEDDED.iter().find(|e| e.name == name)
}

/// Whether `sha256` is the hash of a component embedded in this binary.
pub fn is_embedded_sha256(sha256: &str) -> bool {
    hashes().iter().any(|h| h == sha256)
}
