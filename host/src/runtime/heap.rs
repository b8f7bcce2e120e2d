//! The host's own heap, tuned for a process that serves for months. glibc's allocator by
//! default gives each busy thread its own arena (up to 8 per core) and keeps freed memory
//! for reuse; a cycle that parses a large answer (1,000 manifests, thousands of query
//! results) leaves its peak resident in whichever arena served it, so RSS ratchets up to the
//! sum of every thread's worst cycle. Measured with every built-in module at 1,000 services
//! (docs/BENCH.md, "Soak"): ~185 MB at four minutes with the defaults, ~120 MB with two
//! arenas, 128 KiB thresholds and a periodic trim.
//!
//! Only on glibc; elsewhere the system allocator is left as it is.

use std::time::Duration;

/// How often freed heap is handed back to the kernel.
const TRIM_EVERY: Duration = Duration::from_secs(10);

/// Call once, before the async runtime starts its threads.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only changes allocator parameters; called before other threads.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
            // Large buffers (answers, held records' vectors) are mapped and unmapped on
            // their own instead of staying in an arena after use.
            libc::mallopt(libc::M_MMAP_THRESHOLD, 128 << 10);
            libc::mallopt(libc::M_TRIM_THRESHOLD, 128 << 10);
        }
        let spawned = std::thread::Builder::new().name("heap-trim".into()).spawn(|| loop {
            std::thread::sleep(TRIM_EVERY);
            // SAFETY: malloc_trim is thread-safe; it returns free pages of every arena.
            unsafe { libc::malloc_trim(0) };
        });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start the heap trimmer; freed memory stays resident");
        }
    }
}
