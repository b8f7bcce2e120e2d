//! The built-in modules, embedded in the binary at build time (`host/build.rs` from
//! `modules/builtin.txt`). They serve when `--modules` is absent, as `nthlayer-workers`
//! serves its modules with no list; a file providing the same module name replaces one.
//!
//! Their bytes are also the host's notion of identity: code the operator installed with the
//! binary is trusted, and a file is trusted only if its sha256 equals an embedded one
//! (docs/SANDBOX.md) — never because of the name it gives itself.

use std::path::PathBuf;

/// One embedded component.
pub struct Embedded {
    /// The module name it must describe itself as (checked at load).
    pub name: &'static str,
    /// Of `bytes`, computed by the build: knowing a built-in's identity (grants, the
    /// artifact cache) must not read its bytes back in (see [`release_pages`]).
    pub sha256: &'static str,
    pub bytes: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/embedded.rs"));

impl Embedded {
    /// The path this component is reported under (heartbeats, logs): not a file.
    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!("{EMBEDDED_PREFIX}{}.wasm", self.name))
    }

    pub fn sha256(&self) -> &'static str {
        self.sha256
    }
}

/// How embedded components' paths start; no file path does.
pub const EMBEDDED_PREFIX: &str = "embedded:";

/// Every embedded component.
pub fn all() -> &'static [Embedded] {
    EMBEDDED
}

pub fn get(name: &str) -> Option<&'static Embedded> {
    EMBEDDED.iter().find(|e| e.name == name)
}

/// Whether `sha256` is the hash of a component embedded in this binary.
pub fn is_embedded_sha256(sha256: &str) -> bool {
    EMBEDDED.iter().any(|e| e.sha256 == sha256)
}

/// Gives back the resident pages of the embedded components' bytes once they are loaded.
///
/// They are read once at start-up (inspected, compiled or found in the artifact cache) and
/// then not again unless a built-in is loaded anew; left alone they stay in the process's
/// RSS for good — 3.5 MB for the five built-ins, a tenth of an idle host (docs/BENCH.md,
/// "Memory"). The bytes are read-only data of the executable's file mapping, so the kernel
/// reads them back from the file if they are touched again: nothing is lost. Linux only;
/// MADV_PAGEOUT drops them from the page cache too, MADV_DONTNEED (kernels before 5.4) only
/// from this process.
pub fn release_pages() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as usize;
        EMBEDDED.iter().for_each(|e| release(e, page));
    }
}

#[cfg(target_os = "linux")]
fn release(e: &Embedded, page: usize) {
    let (start, end) = (e.bytes.as_ptr() as usize, e.bytes.as_ptr() as usize + e.bytes.len());
    // Whole pages inside the slice only: the pages at either end hold other data too.
    let (first, last) = (start.div_ceil(page) * page, end / page * page);
    if last <= first {
        return;
    }
    let (addr, len) = (first as *mut libc::c_void, last - first);
    // SAFETY: the range lies inside a read-only, file-backed static that nothing writes;
    // advising it away only makes the next read fault the same bytes back in.
    let r = unsafe { libc::madvise(addr, len, libc::MADV_PAGEOUT) };
    if r != 0 && unsafe { libc::madvise(addr, len, libc::MADV_DONTNEED) } != 0 {
        tracing::debug!(module = e.name, error = %std::io::Error::last_os_error(), "cannot release the built-in's pages");
    }
}
