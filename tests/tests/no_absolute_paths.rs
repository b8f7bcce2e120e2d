//! No test names a path of one machine: a checkout lives anywhere, CI's is not a
//! developer's, and scratch space comes from `tempfile`. This scans the sources of every test
//! (the suites and harness here, the test components, the host's unit and integration tests,
//! the modules' tests) for absolute paths under the roots where checkouts, homes and scratch
//! directories live. Paths derive from `CARGO_MANIFEST_DIR` (tests/paths) instead.

use std::path::{Path, PathBuf};

use nthlayer_tests::util::workspace_root;

/// Roots of machine-specific places; a literal under any of them is one machine's path. (Kept
/// without their slashes so this file does not match itself.)
const ROOTS: &[&str] = &["work", "root", "home", "tmp", "var/tmp", "Users", "var/folders", "mnt", "private"];

/// (file, root) pairs allowed on purpose.
const ALLOWED: &[(&str, &str)] = &[
    // The sandbox suite's hostile-file guest tries to create a file in the host's scratch
    // directory: an absolute path a real attacker would pick. WASI preopens nothing, so the
    // file is never created (tests/tests/sandbox.rs asserts the refusal). Paths that are
    // deliberately absent (`/nonexistent/...`) need no entry: they are under no root above.
    ("tests/components/hostile-file/src/lib.rs", "tmp"),
];

/// What to scan, relative to the workspace root.
const PATTERNS: &[&str] = &[
    "tests/**/*.rs",
    "tests/**/*.toml",
    "tests/**/*.txt",
    "tests/**/*.json",
    "host/src/**/*.rs",
    "host/tests/**/*.rs",
    "host/examples/**/*.rs",
    "host/build.rs",
    "host/build/**/*.rs",
    "modules/*/src/**/*.rs",
    "modules/*/tests/**/*.rs",
];

fn sources(root: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for p in PATTERNS {
        let pattern = root.join(p).display().to_string();
        for f in glob::glob(&pattern).unwrap_or_else(|e| panic!("{pattern}: {e}")) {
            let f = f.unwrap();
            let rel = f.strip_prefix(root).unwrap();
            // Build output and fetched toolchains are not our sources.
            if !rel.components().any(|c| matches!(c.as_os_str().to_str(), Some("target" | "node_modules" | ".work"))) {
                files.push(f);
            }
        }
    }
    files.sort();
    files.dedup();
    files
}

/// `(line number, root, line)` for each machine path in `text`.
fn hits(text: &str) -> Vec<(usize, &'static str, String)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        for root in ROOTS {
            let needle = format!("/{root}/");
            // A path starts at the root: not inside a longer path or a URL (`/api/work/x`).
            let starts_path = line.match_indices(&needle).any(|(at, _)| {
                let before = line[..at].chars().last();
                matches!(before, None | Some('"' | '\'' | '`' | ' ' | '(' | '=' | ':' | ','))
            });
            if starts_path {
                out.push((i + 1, *root, line.trim().to_string()));
            }
        }
    }
    out
}

#[test]
fn no_test_source_names_an_absolute_path_of_a_machine() {
    let root = workspace_root();
    let files = sources(&root);
    // The scan must see what it guards, or it passes by looking nowhere.
    for must in [
        "tests/tests/swap.rs",
        "host/tests/runtime.rs",
        "host/src/lifecycle/registry.rs",
        "tests/components/swapper/src/lib.rs",
    ] {
        assert!(files.contains(&root.join(must)), "{must} not scanned: fix PATTERNS");
    }
    let mut found = Vec::new();
    for f in &files {
        let rel = f.strip_prefix(&root).unwrap().display().to_string();
        let Ok(text) = std::fs::read_to_string(f) else { continue }; // not text
        for (line, r, l) in hits(&text) {
            if !ALLOWED.contains(&(rel.as_str(), r)) {
                found.push(format!("{rel}:{line}: {l}"));
            }
        }
    }
    assert!(
        found.is_empty(),
        "absolute paths of a machine in test sources (use tempfile or tests/paths):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_scan_sees_a_machine_path_and_not_a_url() {
    let home = format!("let p = \"/{}/me/checkout/dist\";", "home");
    assert_eq!(hits(&home).len(), 1, "{home}");
    let scratch = format!("Path::new(\"/{}/x\")", "tmp");
    assert_eq!(hits(&scratch).len(), 1, "{scratch}");
    let url = format!("get(\"/api/{}/items\")", "work");
    assert!(hits(&url).is_empty(), "{url}");
    assert!(hits("std::fs::read(\"/nonexistent/x.wasm\")").is_empty());
}
