//! The executable's own pages, given back once they stop being used.
//!
//! The binary's code and read-only data are the largest part of a serving host's RSS: a
//! release host serving the five built-ins at 1,000 services held 23–26 MB of them against a
//! heap of 6–8 MB (docs/BENCH.md, "Memory"). Most of it is code that ran once — argument
//! parsing, loading and deserialising modules, Cranelift when a module is compiled or
//! swapped in, a reload, a daily task's first cycle — and stays mapped until the kernel is
//! short of memory, because nothing tells it those pages went cold. Advising the kernel to
//! page out the executable's read-only mappings after start-up and then every few minutes
//! leaves only what the cycles actually run: measured 23.4 → 14.0 MB on that host, the whole
//! process from 41.9 to 32 MB at rest, and what is paged out comes back on its next use
//! (a page fault from the page cache or the file).
//!
//! Only MADV_PAGEOUT is used, never MADV_DONTNEED: a read-only mapping of the executable
//! also holds pages the dynamic loader wrote before making them read-only (RELRO: the GOT,
//! relocated vtables). DONTNEED would drop those writes and read the unrelocated bytes back
//! from the file; PAGEOUT keeps private data (it can only swap it, or leave it). Pages
//! another process also maps are left alone by the kernel. Linux 5.4 and later; elsewhere,
//! or if the kernel refuses, nothing happens.

use std::time::Duration;

/// How often the executable's cold pages are given back. Each pass costs a page fault for
/// every page the next minutes use again (a few thousand, from the page cache).
pub const EVERY: Duration = Duration::from_secs(300);

/// Pages out the executable's read-only mappings now, then every [`EVERY`] on a plain
/// thread. For long-running commands (`serve`), after start-up.
pub fn keep_releasing() {
    release_code();
    let spawned = std::thread::Builder::new().name("code-pageout".into()).spawn(|| loop {
        std::thread::sleep(EVERY);
        release_code();
    });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the code pageout thread; start-up code stays resident");
    }
}

/// Advises the kernel to page out every read-only mapping of the running executable;
/// returns the bytes advised.
pub fn release_code() -> usize {
    #[cfg(target_os = "linux")]
    {
        let (Ok(exe), Ok(maps)) = (std::fs::read_link("/proc/self/exe"), std::fs::read_to_string("/proc/self/maps"))
        else {
            return 0;
        };
        let Some(exe) = exe.to_str() else { return 0 };
        let mut advised = 0;
        for (start, end) in read_only_ranges(&maps, exe) {
            // SAFETY: the range is a whole mapping of the executable that this process does
            // not write (no `w` permission); PAGEOUT keeps its contents (module docs).
            let r = unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_PAGEOUT) };
            if r != 0 {
                tracing::debug!(error = %std::io::Error::last_os_error(), "cannot page out the executable's code");
                return advised;
            }
            advised += end - start;
        }
        advised
    }
    #[cfg(not(target_os = "linux"))]
    0
}

/// The `/proc/self/maps` ranges of `exe` mapped without write permission.
fn read_only_ranges(maps: &str, exe: &str) -> Vec<(usize, usize)> {
    maps.lines()
        .filter_map(|line| {
            // range, perms, offset, device, inode, then the path (which may hold spaces).
            let mut fields = [""; 5];
            let mut rest = line;
            for field in &mut fields {
                rest = rest.trim_start();
                let end = rest.find(' ').unwrap_or(rest.len());
                (*field, rest) = rest.split_at(end);
            }
            let [range, perms, ..] = fields;
            if rest.trim() != exe || perms.contains('w') {
                return None;
            }
            let (start, end) = range.split_once('-')?;
            Some((usize::from_str_radix(start, 16).ok()?, usize::from_str_radix(end, 16).ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_executables_read_only_mappings() {
        let maps = "\
55db2668b000-55db272d7000 r--p 00000000 fe:00 10029397                   /opt/nthlayer host/bin/nthlayer-host
55db272d7000-55db28f5b000 r-xp 00c4b000 fe:00 10029397                   /opt/nthlayer host/bin/nthlayer-host
55db29063000-55db2906f000 rw-p 029d5000 fe:00 10029397                   /opt/nthlayer host/bin/nthlayer-host
55db2a000000-55db2a100000 rw-p 00000000 00:00 0                          [heap]
7f0000000000-7f0000200000 r-xp 00000000 fe:00 42                         /usr/lib/x86_64-linux-gnu/libc.so.6
7f0000300000-7f0000301000 r--p 00000000 fe:00 43                         /opt/nthlayer host/bin/nthlayer-host.old
7ffe00000000-7ffe00021000 rw-p 00000000 00:00 0                          [stack]";
        assert_eq!(
            read_only_ranges(maps, "/opt/nthlayer host/bin/nthlayer-host"),
            [(0x55db2668b000, 0x55db272d7000), (0x55db272d7000, 0x55db28f5b000)]
        );
    }

    /// The test binary's own code, paged out under its feet, still runs.
    #[test]
    #[cfg(target_os = "linux")]
    fn the_process_keeps_running_after_its_code_is_paged_out() {
        let advised = release_code();
        assert!(advised > 0, "nothing advised: the test binary's mappings were not found");
        let v: Vec<String> = (0..1000).map(|i| format!("{i:x}")).collect();
        assert_eq!(v[255], "ff");
    }
}
